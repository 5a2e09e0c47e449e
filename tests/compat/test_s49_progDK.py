"""Session 49, lane progDK: Optimizer.load_state_dict takes the state's tensors as torch does.

torch deep-copies the loaded param_groups but casts the state's tensors by ``value.to(dtype=param.dtype,
device=param.device)``, which returns a tensor that already matches: an optimizer loaded from another's
live ``state_dict()`` shares its exp_avg/momentum/step tensors, and the two then step the same buffers.
chainrule copied every state tensor, so such a pair trained differently from torch's.
"""

import io

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _restore_rng_states():
    """The tests seed both frameworks' global generators; later tests in the worker get theirs back."""
    states = torch.get_rng_state(), chainrule.get_rng_state()
    yield
    torch.set_rng_state(states[0])
    chainrule.set_rng_state(states[1])


OPTIMIZERS = [
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("Adam", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "amsgrad": True}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.5}),
    ("Adagrad", {"lr": 0.1}),
    ("NAdam", {"lr": 0.01}),
    ("Rprop", {"lr": 0.01}),
]


def _two_optimizers_after_load(lib, name, kwargs, foreach, how):
    """Train one optimizer 2 steps, load its state into a second (``how``), step both 3 times; returns
    both models' parameters."""
    lib.manual_seed(0)
    first, second = lib.nn.Linear(4, 3), lib.nn.Linear(4, 3)
    second.load_state_dict(first.state_dict())
    opt_first = getattr(lib.optim, name)(first.parameters(), foreach=foreach, **kwargs)
    opt_second = getattr(lib.optim, name)(second.parameters(), foreach=foreach, **kwargs)
    x = lib.randn(8, 4)

    def step(model, optimizer):
        optimizer.zero_grad()
        model(x).pow(2).sum().backward()
        optimizer.step()

    step(first, opt_first)
    step(first, opt_first)
    if how == "live":
        opt_second.load_state_dict(opt_first.state_dict())
    else:
        buffer = io.BytesIO()
        lib.save(opt_first.state_dict(), buffer)
        buffer.seek(0)
        opt_second.load_state_dict(lib.load(buffer, weights_only=True))
    for _ in range(3):
        step(first, opt_first)
        step(second, opt_second)
    return np.concatenate([p.detach().numpy().ravel() for p in [*first.parameters(), *second.parameters()]])


@pytest.mark.parametrize("how", ["live", "saved"])
@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize(("name", "kwargs"), OPTIMIZERS, ids=[name for name, _ in OPTIMIZERS])
def test_optimizer_loaded_from_a_live_state_dict_trains_as_torchs(name, kwargs, foreach, how):
    expected = _two_optimizers_after_load(torch, name, kwargs, foreach, how)
    got = _two_optimizers_after_load(chainrule, name, kwargs, foreach, how)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def _sharing(lib):
    lib.manual_seed(0)
    model = lib.nn.Linear(3, 2)
    optimizer = lib.optim.Adam(model.parameters(), lr=0.1)
    model(lib.ones(4, 3)).sum().backward()
    optimizer.step()
    saved = optimizer.state_dict()
    other = lib.nn.Linear(3, 2)
    loaded = lib.optim.Adam(other.parameters(), lr=0.1)
    loaded.load_state_dict(saved)
    state, saved_state = loaded.state[other.weight], saved["state"][0]
    doubled = lib.nn.Linear(3, 2).double()
    cast = lib.optim.Adam(doubled.parameters(), lr=0.1)
    cast.load_state_dict(saved)
    return {
        "exp_avg shared": state["exp_avg"] is saved_state["exp_avg"],
        "step shared": state["step"] is saved_state["step"],
        "state dict new": state is not saved_state,
        "groups copied": loaded.param_groups[0] is not saved["param_groups"][0],
        "betas equal": loaded.param_groups[0]["betas"] == saved["param_groups"][0]["betas"],
        "cast is new": cast.state[doubled.weight]["exp_avg"] is not saved_state["exp_avg"],
        "cast dtype": str(cast.state[doubled.weight]["exp_avg"].dtype).split(".")[-1],
        "step dtype kept": str(cast.state[doubled.weight]["step"].dtype).split(".")[-1],
    }


def test_load_state_dict_shares_matching_state_tensors_and_copies_groups_as_torch():
    assert _sharing(chainrule) == _sharing(torch)


def test_load_state_dict_still_converts_a_torch_state_dict():
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.ones(2, 4)).sum().backward()
    optimizer.step()
    saved = optimizer.state_dict()
    ours = chainrule.nn.Linear(4, 3)
    loaded = chainrule.optim.Adam(ours.parameters(), lr=0.01)
    loaded.load_state_dict(saved)
    state = loaded.state[ours.weight]
    assert all(isinstance(v, chainrule.Tensor) for v in state.values())
    np.testing.assert_array_equal(state["exp_avg"].numpy(), saved["state"][0]["exp_avg"].numpy())
    ours(chainrule.ones(2, 4)).sum().backward()
    loaded.step()
    assert float(saved["state"][0]["step"]) == 1.0 and float(state["step"]) == 2.0
