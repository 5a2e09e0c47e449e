"""Session 29, lane progU: chainrule bugs found by the probabilistic-programming, mixed-precision,
torch.func, sparse and tensor-network programs (distributions_vi, amp_gradscaler_accumulation,
func_hessian_newton, sparse_coo_gcn, tensor_network_mps), each checked against torch 2.13."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(lib, call):
    """What ``call(lib)`` returns, or the class and text of what it raises."""
    try:
        return ("ok", call(lib))
    except Exception as e:  # noqa: BLE001  (the class is what is compared)
        return (type(e), str(e))


# ----------------------------------------------------------------- GradScaler (amp_gradscaler_accumulation)

def _scaled_linear(lib, init_scale=2.0 ** 16, **kwargs):
    """A Linear(3, 2) with SGD and a CPU GradScaler whose scale() has run once on its loss."""
    lib.manual_seed(0)
    model = lib.nn.Linear(3, 2)
    optimizer = lib.optim.SGD(model.parameters(), lr=0.1)
    scaler = lib.amp.GradScaler("cpu", init_scale=init_scale, **kwargs)
    scaler.scale(model(lib.ones(2, 3)).sum()).backward()
    return model, optimizer, scaler


def _unscale_then(lib, *calls):
    _, optimizer, scaler = _scaled_linear(lib)
    for call in calls:
        getattr(scaler, call)(*((optimizer,) if call != "update" else ()))


@pytest.mark.parametrize("call", [
    lambda lib: lib.amp.GradScaler("cpu").unscale_(lib.optim.SGD(lib.nn.Linear(2, 2).parameters(), lr=0.1)),
    lambda lib: lib.amp.GradScaler("cpu").step(lib.optim.SGD(lib.nn.Linear(2, 2).parameters(), lr=0.1)),
    lambda lib: lib.amp.GradScaler("cpu").update(),
    lambda lib: _scaled_linear(lib)[2].scale(3.0),
    lambda lib: _scaled_linear(lib)[2].update(),
    lambda lib: _unscale_then(lib, "step", "step"),
    lambda lib: _unscale_then(lib, "step", "unscale_"),
    lambda lib: _unscale_then(lib, "unscale_", "unscale_"),
    lambda lib: lib.amp.GradScaler("cpu", growth_factor=0.5),
    lambda lib: lib.amp.GradScaler("cpu", backoff_factor=1.5),
    lambda lib: _scaled_linear(lib)[2].update(lib.tensor([2.0, 4.0])),
    lambda lib: _scaled_linear(lib)[2].step(lib.optim.SGD([lib.nn.Parameter(lib.ones(1))], lr=0.1)),
], ids=["unscale-before-scale", "step-before-scale", "update-before-scale", "scale-a-float", "update-before-step",
        "step-twice", "unscale-after-step", "unscale-twice", "growth-factor", "backoff-factor",
        "update-two-element-scale", "step-without-grads"])
def test_grad_scaler_misuse_raises_torchs_error(call):
    # the AMP recipe with its calls out of order (or before any scale()): torch's class and text
    expected = _outcome(torch, call)
    assert expected[0] in (AssertionError, RuntimeError, ValueError)
    assert _outcome(chainrule, call) == expected


@pytest.mark.parametrize("call", [
    lambda lib: lib.amp.GradScaler("cpu", growth_factor=0.5, enabled=False).is_enabled(),
    lambda lib: lib.amp.GradScaler("cpu", backoff_factor=-1.0).get_backoff_factor(),
    lambda lib: lib.amp.GradScaler("cpu", init_scale=1000.3).state_dict(),
    lambda lib: _scaled_linear(lib, init_scale=1000.3)[2].state_dict(),
    lambda lib: [t.item() for t in _scaled_linear(lib)[2].scale(t for t in [lib.ones(1), lib.ones(1) * 2])],
], ids=["disabled-skips-checks", "negative-backoff", "lazy-scale", "float32-scale", "generator"])
def test_grad_scaler_state_matches_torch(call):
    # torch checks the factors only when enabled, keeps init_scale as given until the first scale()
    # and the scale in float32 after it, and scales any iterable of tensors
    assert _outcome(chainrule, call) == _outcome(torch, call)


def _scale_history(lib):
    model, optimizer, scaler = _scaled_linear(lib, init_scale=1000.3, growth_factor=1.7, growth_interval=2)
    history = []
    for step in range(6):
        if step == 3:
            model.bias.grad[0] = float("inf")
        scaler.step(optimizer)
        scaler.update()
        history.append(scaler.state_dict())
        optimizer.zero_grad()
        scaler.scale(model(lib.ones(2, 3)).sum()).backward()
    return history, model.weight.detach().tolist()


def test_grad_scaler_grows_and_backs_off_in_float32_as_torch():
    # scale 1000.3 grown by 1.7 every 2 clean steps, one overflow in between: torch keeps the scale
    # in a float32 tensor, so every value is a float32 (1000.2999877929688, 1700.510009765625, ...)
    expected = _scale_history(torch)
    assert _scale_history(chainrule) == expected
