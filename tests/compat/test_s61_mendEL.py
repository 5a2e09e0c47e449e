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
