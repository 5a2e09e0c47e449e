"""Numeric edges (issue 14): ops at ±0, ±inf, NaN, huge and tiny magnitudes, compared with torch.

Two parts:

* ``SEEN``: the edge cases reported in issue 14, one test each (each failed before its fix);
* ``EDGE_OPS`` × ``SPECIAL``: a table of ops, each run on a vector holding every special value of
  a dtype (float32 and float64), forward values and the gradient for a fixed upstream compared
  with torch, NaN positions included.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _run(lib, fn, arrays, grad=True):
    """fn(lib, *tensors) on fresh leaves; returns (outputs as NumPy, gradients as NumPy)."""
    leaves = [lib.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = fn(lib, *leaves)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        diff = [o for o in outs if o.requires_grad]
        if diff:
            ups = [lib.tensor(np.linspace(0.5, 1.5, max(o.numel(), 1))[: o.numel()].reshape(tuple(o.shape)).astype(
                str(o.dtype).split(".")[-1])) for o in diff]
            lib.autograd.backward(diff, ups)
    values = [o.detach().numpy() for o in outs]
    grads = [None if x.grad is None else x.grad.numpy() for x in leaves if x.requires_grad]
    return values, grads


def _same(ours, theirs, what, rtol, atol=0.0):
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} vs torch {theirs.shape}"
    assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype} vs torch {theirs.dtype}"
    if ours.dtype.kind in "fc":
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg=f"{what}: NaN positions")
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


def _compare(fn, arrays, rtol=1e-6, atol=0.0, grad=True):
    ours_v, ours_g = _run(chainrule, fn, arrays, grad)
    theirs_v, theirs_g = _run(torch, fn, arrays, grad)
    assert len(ours_v) == len(theirs_v)
    for k, (o, t) in enumerate(zip(ours_v, theirs_v)):
        _same(o, t, f"output {k}", rtol, atol)
    for k, (o, t) in enumerate(zip(ours_g, theirs_g)):
        if t is None:
            assert o is None or not np.any(o), f"gradient {k}: torch's is None"
            continue
        assert o is not None, f"gradient {k}: None, torch's is {t}"
        _same(o, t, f"gradient {k}", rtol, atol)


# ---------------------------------------------------------------- the cases seen in issue 14
F32 = np.float32


def test_binary_cross_entropy_gradient_at_0_and_1_is_finite():
    # torch clamps p(1-p) from below at 1e-12 in the gradient, as it clamps the logs at -100
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.5], F32)
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0], F32)
    for reduction in ("mean", "sum", "none"):
        _compare(lambda lib, p, y, r=reduction: lib.nn.functional.binary_cross_entropy(p, y, reduction=r), [p, y])
    w = np.array([2.0, 1.0, 0.5, 1.0, 3.0], F32)
    _compare(lambda lib, p, y, w: lib.nn.functional.binary_cross_entropy(p, y, weight=w),
             [p, y, w], grad=False)
    _compare(lambda lib, p, y: lib.nn.functional.binary_cross_entropy(p, y.detach()), [p, y])


def test_binary_cross_entropy_target_gradient():
    p = np.array([0.0, 1.0, 0.25, 0.5], F32)
    y = np.array([1.0, 0.0, 0.0, 1.0], F32)
    _compare(lambda lib, p, y: lib.nn.functional.binary_cross_entropy(p.detach(), y), [p, y])


def test_atan2_gradient_at_origin_is_zero():
    a = np.array([0.0, -0.0, 0.0, 1e-30, 1e30, 1.0], F32)
    b = np.array([0.0, 0.0, -0.0, 0.0, 1e30, 2.0], F32)
    _compare(lambda lib, a, b: lib.atan2(a, b), [a, b])
    _compare(lambda lib, a, b: lib.atan2(a, b), [a.astype(np.float64), b.astype(np.float64)])


@pytest.mark.parametrize("dim", [None, 0, 1])
def test_std_of_constant_has_zero_gradient(dim):
    x = np.ones((3, 4), F32)
    x[1] = np.arange(4)
    if dim is None:
        _compare(lambda lib, x: lib.std(x), [np.ones((3, 4), F32)])
        _compare(lambda lib, x: lib.std(x, unbiased=False), [np.ones(5, F32)])
    else:
        _compare(lambda lib, x: lib.std(x, dim), [x])
        _compare(lambda lib, x: lib.std_mean(x, dim, keepdim=True), [x])


def test_std_node_name_is_torchs():
    x = chainrule.ones(3, requires_grad=True)
    assert type(chainrule.std(x).grad_fn).__name__ == "StdBackward0"


NAN_X = np.array([[1.0, np.nan, 3.0, 2.0, -np.inf, np.inf], [np.nan, 0.0, np.nan, -1.0, 5.0, 4.0]], F32)


@pytest.mark.parametrize("op", [
    lambda lib, x: lib.sort(x),
    lambda lib, x: lib.sort(x, descending=True),
    lambda lib, x: lib.sort(x, dim=0, descending=True),
    lambda lib, x: lib.argsort(x, descending=True),
    lambda lib, x: lib.topk(x, 3),
    lambda lib, x: lib.topk(x, 3, largest=False),
    lambda lib, x: lib.topk(x, 2, dim=0),
    lambda lib, x: lib.max(x, 1),
    lambda lib, x: lib.min(x, 1),
    lambda lib, x: x.max(),
    lambda lib, x: x.min(),
    lambda lib, x: x.argmax(1),
    lambda lib, x: x.argmin(1),
    lambda lib, x: x.argmax(),
    lambda lib, x: lib.amax(x, 1),
    lambda lib, x: lib.maximum(x, x.flip(1)),
    lambda lib, x: lib.cummax(x, 1),
    lambda lib, x: lib.kthvalue(x, 2, 1),
    lambda lib, x: lib.median(x, 1),
    lambda lib, x: lib.median(x),
], ids=["sort", "sort_desc", "sort_dim0_desc", "argsort_desc", "topk", "topk_smallest", "topk_dim0", "max_dim",
        "min_dim", "max", "min", "argmax_dim", "argmin_dim", "argmax", "amax", "maximum", "cummax",
        "kthvalue", "median_dim", "median"])
def test_nan_orders_as_the_largest_value(op):
    _compare(op, [NAN_X])


@pytest.mark.parametrize("expr", [
    lambda lib, a, b: a // b,
    lambda lib, a, b: a % b,
    lambda lib, a, b: lib.fmod(a, b),
    lambda lib, a, b: lib.div(a, b, rounding_mode="trunc"),
    lambda lib, a, b: lib.div(a, b, rounding_mode="floor"),
    lambda lib, a, b: lib.remainder(a, 0),
    lambda lib, a, b: a // 0,
], ids=["floordiv", "mod", "fmod", "trunc", "floor", "remainder_scalar", "floordiv_scalar"])
@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8"])
def test_integer_division_by_zero_raises(expr, dtype):
    a = chainrule.tensor(np.array([5, 3], dtype))
    b = chainrule.tensor(np.array([0, 2], dtype))
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        expr(chainrule, a, b)
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        expr(torch, torch.from_numpy(a.numpy()), torch.from_numpy(b.numpy()))


def test_float_division_by_zero_does_not_raise():
    _compare(lambda lib, a, b: (a // b, a % b, lib.fmod(a, b)),
             [np.array([5.0, -3.0, 0.0], F32), np.array([0.0, 0.0, 0.0], F32)], grad=False)


@pytest.mark.parametrize("dtype", ["int32", "int16", "int8", "bool"])
@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_class_index_target_must_be_long_or_byte(loss, dtype):
    x = np.zeros((3, 4), F32)
    t = np.array([0, 1, 1], dtype)
    for lib in (torch, chainrule):
        with pytest.raises(RuntimeError, match="expected target dtype to be Long or Byte"):
            getattr(lib.nn.functional, loss)(lib.tensor(x), lib.tensor(t))
    _compare(lambda lib, x, t: getattr(lib.nn.functional, loss)(x, t), [x, t.astype(np.uint8)])
