"""Session 61, lane mendEL: bits and saved values, each pinned against torch 2.13."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


# ------------------------------------------------------------ add-a-product gradients: alpha and beta
# Integer-valued operands make every product exact whatever the BLAS kernel, so the only rounding
# left is where alpha and beta are applied: torch scales each factor's gradient after its product
# (grad.mm(mat2.t()) * alpha) and input's gradient before its sum to input's shape (grad * beta).

_SHAPES = {
    "addmm": [(4,), (4, 5), (5, 4)],
    "addmv": [(4,), (4, 6), (6,)],
    "baddbmm": [(1, 3, 4), (2, 3, 5), (2, 5, 4)],
    "addbmm": [(3, 4), (2, 3, 5), (2, 5, 4)],
    "addr": [(5,), (4,), (5,)],
}


def _grads(lib, op, arrays, beta, alpha, transposed):
    tensors = [lib.from_numpy(a.copy()) for a in arrays]
    if transposed and op == "addmm":  # a column-major mat2
        tensors[2] = lib.from_numpy(np.ascontiguousarray(arrays[2].T)).t()
    tensors = [t.requires_grad_() for t in tensors]
    y = getattr(lib, op)(*tensors, beta=beta, alpha=alpha)
    g = np.arange(y.numel()).reshape(tuple(y.shape)) % 7 - 3
    y.backward(lib.from_numpy(g.astype(arrays[0].dtype)))
    return [t.grad.numpy() for t in tensors], [tuple(t.grad.stride()) for t in tensors], type(y.grad_fn).__name__


@pytest.mark.parametrize("op", sorted(_SHAPES))
def test_add_a_product_gradients_scale_where_torch_does(op):
    rng = np.random.default_rng(61)
    for dtype, (beta, alpha), transposed in [(np.float32, (0.5, 0.3), False), (np.float64, (-1.1, -0.7), True),
                                             (np.float32, (3, 1), True), (np.float64, (1, 1), False)]:
        arrays = [rng.integers(-9, 10, shape).astype(dtype) for shape in _SHAPES[op]]
        got, want = (_grads(lib, op, arrays, beta, alpha, transposed) for lib in (chainrule, torch))
        for mine, theirs in zip(got[0], want[0]):
            np.testing.assert_array_equal(mine, theirs)
        assert got[1:] == want[1:]



@pytest.mark.parametrize("op", sorted(_SHAPES))
def test_beta_zero_ignores_input_but_scales_its_gradient_by_zero(op):
    """torch's input gradient at beta 0 is grad·0 (NaN where grad is inf, -0 where negative), and its
    value is the product alone (a -0 product stays -0; addbmm's accumulates into zeros: +0)."""
    shapes = _SHAPES[op]
    arrays = [np.full(shapes[0], np.nan, np.float32)] + [
        (np.arange(int(np.prod(shape))).reshape(shape) % 5 - 2).astype(np.float32) for shape in shapes[1:]]
    results = []
    for lib in (chainrule, torch):
        tensors = [lib.from_numpy(a.copy()).requires_grad_() for a in arrays]
        y = getattr(lib, op)(*tensors, beta=0, alpha=-2)
        g = (np.arange(y.numel()).reshape(tuple(y.shape)) % 3 - 1.0).astype(np.float32)
        g.flat[0] = np.inf
        y.backward(lib.from_numpy(g))
        results.append([np.where(np.isnan(a), 9, a).tobytes()  # (-0 and +0 differ as bytes)
                        for a in (y.detach().numpy(), *(t.grad.numpy() for t in tensors[:1]))])
    assert results[0] == results[1]

# ------------------------------------------------------------ saved values: nanmean, nansum, tensordot, kron

def _saved(node) -> dict:
    out = {}
    for name in dir(node):
        if name.startswith("_saved_"):
            value = getattr(node, name)
            out[name] = (str(value.dtype).rpartition(".")[2], tuple(value.shape),
                         np.nan_to_num(value.detach().double().numpy(), nan=7.5).tolist()) \
                if hasattr(value, "grad_fn") else value
    return out


def _top_nodes(make):
    rng = np.random.default_rng(3)
    arrays = make(rng)
    return [(type(y.grad_fn).__name__, _saved(y.grad_fn), tuple(y.shape)) for y in
            (make.call(lib, *[lib.from_numpy(a.copy()).requires_grad_() for a in arrays]) for lib in (chainrule, torch))]


def _with_nans(shape):
    def make(rng):
        a = rng.standard_normal(shape).astype(np.float32)
        a[rng.random(shape) < 0.3] = np.nan
        return [a]
    return make


@pytest.mark.parametrize(("op", "shape", "kwargs"), [
    ("nanmean", (3, 4), {}), ("nanmean", (3, 4), {"dim": 1, "keepdim": True}), ("nanmean", (2, 3, 4), {"dim": (0, -1)}),
    ("nansum", (3, 4), {}), ("nansum", (3, 4), {"dim": -1}), ("nansum", (2, 3, 4), {"dim": (0, 2), "keepdim": True}),
    ("mean", (3, 4), {"dim": 0}),
])
def test_reduction_saved_values_are_torchs(op, shape, kwargs):
    make = _with_nans(shape)
    make.call = lambda lib, x: getattr(lib, op)(x, **kwargs)
    mine, theirs = _top_nodes(make)
    assert mine == theirs


@pytest.mark.parametrize(("op", "shapes", "kwargs"), [
    ("tensordot", ((3, 2, 4), (4, 5)), {"dims": 1}), ("tensordot", ((3, 4), (3, 4)), {"dims": 2}),
    ("tensordot", ((2, 3, 4), (4, 3, 2)), {"dims": ([1, 2], [1, 0])}),
    ("inner", ((2, 3, 4), (5, 4)), {}), ("inner", ((4,), (2, 4)), {}), ("inner", ((3,), (3,)), {}),
    ("kron", ((2, 3), (4, 2)), {}), ("kron", ((2,), (3, 2)), {}), ("outer", ((3,), (4,)), {}),
])
def test_product_views_keep_torchs_sizes(op, shapes, kwargs):
    def make(rng):
        return [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    make.call = lambda lib, a, b: getattr(lib, op)(a, b, **kwargs)
    mine, theirs = _top_nodes(make)
    assert mine == theirs
