"""Property tests (hypothesis): broadcasting binary ops on random shapes — forward equals NumPy,
each input's gradient has the input's shape and equals torch's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule

OPS = {
    "add": (lambda lib, a, b: a + b, np.add),
    "sub": (lambda lib, a, b: a - b, np.subtract),
    "mul": (lambda lib, a, b: a * b, np.multiply),
    "div": (lambda lib, a, b: a / b, np.divide),
    "maximum": (lambda lib, a, b: lib.maximum(a, b), np.maximum),
    "minimum": (lambda lib, a, b: lib.minimum(a, b), np.minimum),
    "pow": (lambda lib, a, b: a.abs() ** b, lambda a, b: np.abs(a) ** b),
    "atan2": (lambda lib, a, b: lib.atan2(a, b), np.arctan2),
    "where": (lambda lib, a, b: lib.where(a > b, a, b * 2), lambda a, b: np.where(a > b, a, b * 2)),
}

shape_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=0, max_side=3)


def _values(shape, seed):
    # bounded away from 0 so div and pow are smooth, and tie-free for maximum/minimum
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    return v.astype(np.float64)


@pytest.mark.parametrize("op", list(OPS))
@settings(max_examples=25, deadline=None)
@given(shapes=shape_pairs, seed=st.integers(0, 2 ** 16))
def test_broadcasting_binary_op(op, shapes, seed):
    fn, reference = OPS[op]
    (shape_a, shape_b), out_shape = shapes.input_shapes, shapes.result_shape
    a, b = _values(shape_a, seed), _values(shape_b, seed + 1) + 0.01
    ca = chainrule.tensor(a, requires_grad=True)
    cb = chainrule.tensor(b, requires_grad=True)
    out = fn(chainrule, ca, cb)
    assert tuple(out.shape) == tuple(out_shape)
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(out.detach().numpy(), reference(a, b), rtol=1e-12)
    cotangent = np.random.default_rng(seed + 2).standard_normal(out_shape)
    out.backward(chainrule.tensor(cotangent))
    ta = torch.tensor(a, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    fn(torch, ta, tb).backward(torch.tensor(cotangent))
    for ours, ref, shape in ((ca.grad, ta.grad, shape_a), (cb.grad, tb.grad, shape_b)):
        assert tuple(ours.shape) == tuple(shape)
        assert ours.dtype is chainrule.float64
        np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(shapes=shape_pairs, seed=st.integers(0, 2 ** 16),
       dtypes=st.tuples(st.sampled_from(["float32", "float64", "int32", "int64", "bool"]),
                        st.sampled_from(["float32", "float64", "int32", "int64", "bool"])))
def test_broadcasting_add_dtype_and_values_match_torch(shapes, seed, dtypes):
    (shape_a, shape_b) = shapes.input_shapes
    rng = np.random.default_rng(seed)
    a = (rng.integers(-3, 4, shape_a)).astype(dtypes[0])
    b = (rng.integers(-3, 4, shape_b)).astype(dtypes[1])
    ours = chainrule.from_numpy(a) * 2 + chainrule.from_numpy(b)
    ref = torch.from_numpy(a) * 2 + torch.from_numpy(b)
    assert str(ours.dtype).split(".")[1] == str(ref.dtype).split(".")[1]
    np.testing.assert_array_equal(ours.numpy(), ref.numpy())
