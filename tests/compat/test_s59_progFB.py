"""The idioms of the GradNorm, REDQ and Mega programs, each against torch: values, gradients,
strides and node names of the pieces the programs build on."""

import copy

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

LIBS = (chainrule, torch)


def _graph(fn, depth=0, limit=6) -> list:
    """The node names under ``fn``, depth first, as (depth, name) pairs."""
    if fn is None or depth > limit:
        return []
    found = [(depth, fn.name().replace("torch::autograd::", ""))]
    for child, _ in fn.next_functions:
        found += _graph(child, depth + 1, limit)
    return found


def _ensemble_run(lib, bias: bool, x_shape: tuple, x_batched: bool, dtype_name: str):
    """REDQ's critics: three MLPs stacked by stack_module_state, run by vmap over functional_call
    on a meta-device copy; the output, its graph, the stacked leaves' gradients, and the per-model
    gradients of vmap(grad(...))."""
    nn, func, dtype = lib.nn, lib.func, getattr(lib, dtype_name)
    rng = np.random.RandomState(7)
    models = [nn.Sequential(nn.Linear(3, 4, bias=bias), nn.ReLU(), nn.Linear(4, 2, bias=bias)) for _ in range(3)]
    for model in models:
        with lib.no_grad():
            for p in model.parameters():
                p.copy_(lib.tensor(rng.randn(*p.shape)))
        model.to(dtype)
    params, buffers = func.stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def fmodel(params, buffers, x):
        return func.functional_call(base, (params, buffers), (x,))

    in_dims = (0, 0, 0 if x_batched else None)
    x = lib.tensor(rng.randn(*((3,) if x_batched else ()), *x_shape), dtype=dtype)
    out = func.vmap(fmodel, in_dims=in_dims)(params, buffers, x)
    weights = lib.tensor(rng.randn(*out.shape), dtype=dtype)
    (out * weights).sum().backward()

    def loss(params, buffers, x):
        return (fmodel(params, buffers, x) ** 2).sum()

    detached = {k: v.detach() for k, v in params.items()}
    per_model = func.vmap(func.grad(loss), in_dims=in_dims)(detached, buffers, x)
    return (out.detach().numpy(), out.stride(), _graph(out.grad_fn),
            {k: v.grad.numpy() for k, v in params.items()}, {k: v.numpy() for k, v in per_model.items()})


@pytest.mark.parametrize("bias, x_shape, x_batched, dtype_name", [
    (True, (5, 3), False, "float32"), (True, (5, 3), True, "float64"),
    (False, (5, 3), True, "float32"), (True, (2, 5, 3), False, "float64")])
def test_vmap_over_stacked_linears_is_torchs_batched_addmm(bias, x_shape, x_batched, dtype_name):
    # a stacked weight (and bias) goes through addmm's batching rule as torch's: bias * 1 viewed
    # with a rows dim plus one batched matmul of the transposed weights (AddBackward0 over
    # ViewBackward0/MulBackward1 and UnsafeViewBackward0/BmmBackward0/TransposeBackward0), not a
    # per-critic run stacked (StackBackward0)
    ours, theirs = (_ensemble_run(lib, bias, x_shape, x_batched, dtype_name) for lib in LIBS)
    tol = 1e-5 if dtype_name == "float32" else 1e-12
    np.testing.assert_allclose(ours[0], theirs[0], rtol=tol, atol=tol)
    assert ours[1] == theirs[1]
    assert ours[2] == theirs[2]
    for key in theirs[3]:
        np.testing.assert_allclose(ours[3][key], theirs[3][key], rtol=tol, atol=tol)
        np.testing.assert_allclose(ours[4][key], theirs[4][key], rtol=tol, atol=tol)


def test_vmap_over_stacked_linears_runs_each_op_once_on_the_batch(monkeypatch):
    # the replay applies a linear of stacked weights to the whole batch: no op falls back to one
    # run per critic (which made REDQ's critic update 2-3x slower than torch's)
    from chainrule import _vmap_batched

    fallbacks = []
    stack_rows = _vmap_batched._stack_rows
    monkeypatch.setattr(_vmap_batched, "_stack_rows", lambda rows: fallbacks.append(len(rows)) or stack_rows(rows))
    _ensemble_run(chainrule, True, (5, 3), False, "float32")
    assert fallbacks == []
