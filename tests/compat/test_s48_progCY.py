"""Session 48, lane progCY: what probing around the SVGP / SVGD / Sophia-Adafactor corpus programs found,
compared with torch."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

FLOAT_DTYPES = ["float64", "float32", "float16", "bfloat16"]
INTEGER_DTYPES = ["int8", "int16", "int32", "int64", "uint8"]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("op", ["median", "nanmedian", "Tensor.median", "Tensor.nanmedian"])
def test_median_of_an_empty_tensor_stays_on_the_graph_like_torch(op, dtype):
    # torch's full reduction of no elements is NaN with a grad_fn, whose gradient is the empty tensor
    def run(lib):
        x = lib.zeros(0, 3, dtype=getattr(lib, dtype), requires_grad=True)
        name = op.split(".")[-1]
        out = getattr(x, name)() if op.startswith("Tensor.") else getattr(lib, name)(x)
        (grad,) = lib.autograd.grad(out, x)
        return out, grad

    ours, our_grad = run(chainrule)
    theirs, their_grad = run(torch)
    assert ours.grad_fn.name() == theirs.grad_fn.name()
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1] and ours.shape == theirs.shape == ()
    assert np.isnan(ours.float().item()) and np.isnan(theirs.float().item())
    assert tuple(our_grad.shape) == tuple(their_grad.shape) == (0, 3)
    assert str(our_grad.dtype).split(".")[-1] == dtype


@pytest.mark.parametrize("dtype", INTEGER_DTYPES)
@pytest.mark.parametrize("op", ["median", "nanmedian"])
def test_median_of_an_empty_integer_tensor_is_torchs_cast_nan(op, dtype):
    # torch fills NaN cast to the type: int32/int64's minimum, 0 for the narrower types
    ours = getattr(chainrule, op)(chainrule.zeros(0, dtype=getattr(chainrule, dtype)))
    theirs = getattr(torch, op)(torch.zeros(0, dtype=getattr(torch, dtype)))
    assert ours.item() == theirs.item()
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1] == dtype
    assert not ours.requires_grad


def test_median_of_an_empty_tensor_without_grad_has_no_grad_fn():
    for lib in (chainrule, torch):
        out = lib.median(lib.zeros(0))
        assert out.grad_fn is None and not out.requires_grad


def _sophia_like(lib, calls):
    # Liuhong99/Sophia's SophiaG fills a flag its older state dicts lack in __setstate__
    class SophiaLike(lib.optim.Optimizer):
        def __init__(self, params, lr=1e-3):
            super().__init__(params, dict(lr=lr))

        def __setstate__(self, state):
            calls.append(sorted(state))
            super().__setstate__(state)
            for group in self.param_groups:
                group.setdefault("maximize", False)

        @lib.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = lib.zeros((1,), dtype=lib.float)
                        state["exp_avg"] = lib.zeros_like(p)
                    state["step"] += 1
                    state["exp_avg"].mul_(0.9).add_(p.grad, alpha=0.1)
                    p.add_(state["exp_avg"].sign(), alpha=-group["lr"])

    return SophiaLike


def _load_round_trip(lib):
    calls = []
    optimizer_class = _sophia_like(lib, calls)
    w = lib.nn.Parameter(lib.tensor([[1.0, -2.0], [0.5, 3.0]]))
    b = lib.nn.Parameter(lib.tensor([0.1, 0.2]))
    optimizer = optimizer_class([{"params": [w]}, {"params": [b], "lr": 1e-2}])
    for t in range(2):
        w.grad = lib.ones_like(w) * (t + 1)
        b.grad = -lib.ones_like(b)
        optimizer.step()
    saved = optimizer.state_dict()
    fresh = optimizer_class([{"params": [w]}, {"params": [b], "lr": 5.0}])
    fresh.load_state_dict(saved)
    state = fresh.state[w]
    return (calls, [sorted(group) for group in fresh.param_groups], [group["lr"] for group in fresh.param_groups],
            state["step"].tolist(), state["exp_avg"].tolist())


def test_load_state_dict_runs_the_subclass_setstate_like_torch():
    assert _load_round_trip(chainrule) == _load_round_trip(torch)
    calls, keys, _, _, _ = _load_round_trip(chainrule)
    assert calls == [["param_groups", "state"]] and all("maximize" in k for k in keys)


@pytest.mark.parametrize("lib", [chainrule, torch], ids=["chainrule", "torch"])
def test_load_state_dict_keeps_hooks_and_builtin_flags(lib):
    # the base __setstate__ the load now goes through must not drop the hooks registered before it
    w = lib.nn.Parameter(lib.ones(2))
    optimizer = lib.optim.Adam([w], lr=0.1)
    seen = []
    optimizer.register_step_post_hook(lambda opt, args, kwargs: seen.append("post"))
    optimizer.register_load_state_dict_post_hook(lambda opt: seen.append("loaded"))
    w.grad = lib.ones(2)
    optimizer.step()
    optimizer.load_state_dict(optimizer.state_dict())
    w.grad = lib.ones(2)
    optimizer.step()
    assert seen == ["post", "loaded", "post"]
    assert optimizer.param_groups[0]["maximize"] is False and optimizer.defaults["differentiable"] is False


SINGULAR = {
    "ones": np.ones((3, 3)),
    "rank-one": [[1.0, 2.0], [3.0, 6.0]],
    "zero-column": [[0.0, 1.0, 2.0], [0.0, 3.0, 4.0], [0.0, 5.0, 7.0]],
    "zero-pivot": np.diag([1.0, 0.0, 2.0]),
    "zeros": np.zeros((2, 2)),
    "arange": np.arange(1.0, 10.0).reshape(3, 3),
    "batch": np.stack([np.ones((2, 2)), 3 * np.eye(2)]),
}
LOGDETS = {
    "logdet": lambda lib, a: lib.logdet(a),
    "linalg.slogdet": lambda lib, a: lib.linalg.slogdet(a).logabsdet,
    "slogdet": lambda lib, a: lib.slogdet(a)[1],
}


def _logdet_grad(lib, name, matrix, dtype, create_graph):
    a = lib.tensor(np.asarray(matrix), dtype=getattr(lib, dtype), requires_grad=True)
    (grad,) = lib.autograd.grad(LOGDETS[name](lib, a).sum(), a, create_graph=create_graph)
    return grad.detach().numpy()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("matrix", list(SINGULAR), ids=list(SINGULAR))
@pytest.mark.parametrize("name", list(LOGDETS))
def test_logdet_gradient_at_a_singular_matrix_is_torchs_not_an_error(name, matrix, dtype):
    # torch's plain backward solves with the LU of A^T and returns the infs and NaNs its zero pivot leaves
    ours = _logdet_grad(chainrule, name, SINGULAR[matrix], dtype, False)
    theirs = _logdet_grad(torch, name, SINGULAR[matrix], dtype, False)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("name", list(LOGDETS))
def test_recorded_logdet_gradient_at_a_singular_matrix_raises_torchs_error(name):
    errors = []
    for lib in (chainrule, torch):
        with pytest.raises(RuntimeError) as caught:  # torch's _LinAlgError is a RuntimeError
            _logdet_grad(lib, name, SINGULAR["ones"], "float64", True)
        errors.append((type(caught.value).__name__, str(caught.value)))
    assert errors[0] == errors[1]


@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("name", list(LOGDETS))
def test_logdet_gradient_of_invertible_matrices_still_matches_torch(name, create_graph):
    rng = np.random.RandomState(0)
    batch = rng.randn(3, 4, 4)
    ours = _logdet_grad(chainrule, name, batch, "float64", create_graph)
    theirs = _logdet_grad(torch, name, batch, "float64", create_graph)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_logdet_is_still_twice_differentiable():
    a = chainrule.tensor(np.random.RandomState(1).randn(3, 3) + 3 * np.eye(3), requires_grad=True)
    assert chainrule.autograd.gradcheck(chainrule.logdet, (a,))
    assert chainrule.autograd.gradgradcheck(lambda m: chainrule.linalg.slogdet(m).logabsdet, (a,))
