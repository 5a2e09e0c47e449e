"""The per-op savings of session 13 (small ops) keep torch's results: a reduction's backward
computed on the arrays in a plain backward gives torch's gradients (dtype, values, a writable
.grad), and under create_graph it still records, so second derivatives match torch's."""

import numpy as np
import pytest
import torch

import chainrule as cr

REDUCTIONS = [("sum", {}), ("sum", {"dim": 1}), ("sum", {"dim": (0, 2), "keepdim": True}),
              ("mean", {}), ("mean", {"dim": -1}), ("mean", {"dim": 0, "keepdim": True})]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize(("op", "kwargs"), REDUCTIONS)
def test_a_reductions_plain_backward_gives_torchs_gradient(op, kwargs, dtype):
    data = np.random.default_rng(3).standard_normal((3, 5, 7)).astype(dtype)
    grads = {}
    for lib in (cr, torch):
        x = lib.from_numpy(data.copy()).requires_grad_(True)
        y = getattr(x, op)(**kwargs)
        seed = np.random.default_rng(4).standard_normal(tuple(y.shape)).astype(dtype)
        y.backward(lib.from_numpy(seed))
        grads[lib] = x.grad
    assert str(grads[cr].dtype).split(".")[-1] == str(grads[torch].dtype).split(".")[-1] == dtype
    np.testing.assert_array_equal(grads[cr].numpy(), grads[torch].numpy())
    grads[cr].add_(1.0)  # the leaf's .grad is its own, writable array, not a broadcast view


@pytest.mark.parametrize(("op", "kwargs"), REDUCTIONS)
def test_a_reductions_backward_still_records_under_create_graph(op, kwargs):
    data = np.random.default_rng(5).standard_normal((3, 5, 7))
    results = {}
    for lib in (cr, torch):
        x = lib.from_numpy(data.copy()).requires_grad_(True)
        y = (getattr(x * x, op)(**kwargs) ** 2).sum()
        (gx,) = lib.autograd.grad(y, x, create_graph=True)
        assert gx.requires_grad and gx.grad_fn is not None
        (ggx,) = lib.autograd.grad(gx.sum(), x)
        results[lib] = gx.detach().numpy(), ggx.numpy()
    for mine, theirs in zip(results[cr], results[torch]):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12)


def test_a_mean_gradient_seen_by_a_hook_is_torchs():
    seen = {}
    for lib in (cr, torch):
        x = lib.ones(4, 6, requires_grad=True)
        y = x * 2.0
        y.register_hook(lambda g, lib=lib: seen.setdefault(lib, g.clone()))
        y.mean().backward()
    assert tuple(seen[cr].shape) == tuple(seen[torch].shape) == (4, 6)
    np.testing.assert_array_equal(seen[cr].numpy(), seen[torch].numpy())


@pytest.mark.parametrize(("dtype", "other"), [("float32", 0.9), ("float64", 3), ("float32", "int64"),
                                              ("float32", "float64"), ("complex64", "complex64")])
def test_a_products_gradient_in_a_plain_backward_is_torchs(dtype, other):
    rng = np.random.default_rng(6)
    data = rng.standard_normal((4, 5)) + 1j * rng.standard_normal((4, 5))
    data = data.astype(dtype) if dtype.startswith("complex") else data.real.astype(dtype)
    factor = other if not isinstance(other, str) else _row_of_factors(rng, other)
    grads = {}
    for lib in (cr, torch):
        x = lib.from_numpy(data.copy()).requires_grad_(True)
        y = x * (lib.from_numpy(factor.copy()) if isinstance(factor, np.ndarray) else factor)
        (y.abs() if dtype.startswith("complex") else y).sum().backward()
        grads[lib] = x.grad
    assert str(grads[cr].dtype).split(".")[-1] == str(grads[torch].dtype).split(".")[-1]
    np.testing.assert_allclose(grads[cr].numpy(), grads[torch].numpy(), rtol=1e-6)


def _row_of_factors(rng, dtype: str) -> np.ndarray:
    """Five factors of ``dtype``, broadcast over the rows of the other operand."""
    if dtype == "int64":
        return np.arange(1, 6)
    values = rng.standard_normal(5) * 4 + (1j if dtype.startswith("complex") else 0)
    return values.astype(dtype)


def test_a_products_second_derivative_still_records():
    results = {}
    for lib in (cr, torch):
        x = lib.tensor([0.5, -1.5, 2.0], dtype=lib.float64, requires_grad=True)
        w = lib.tensor([3.0, 0.25, -2.0], dtype=lib.float64, requires_grad=True)
        (gx,) = lib.autograd.grad((x * w * x).sum(), x, create_graph=True)
        (gw,) = lib.autograd.grad(gx.sum(), w)
        results[lib] = gx.detach().numpy(), gw.numpy()
    for mine, theirs in zip(results[cr], results[torch]):
        np.testing.assert_array_equal(mine, theirs)
