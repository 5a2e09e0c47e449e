"""Found after the lanes merged, by the long profile's hostile-argument fuzz: each compared with torch 2.13."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("shape, dim", [((4, 3, 2), -3), ((7,), 0), ((3, 5), 1), ((2, 6, 3), 1)])
def test_cumsum_to_a_narrower_dtype_sums_its_gradient_in_the_input_dtype(shape, dim):
    # torch's cumsum_backward(grad.to(self.scalar_type()), dim): a float64 input summed with
    # dtype=float32 gets its gradient's running sums in float64 (chainrule summed in float32 and
    # differed in the last float32 bit: 41 of 60 random cases)
    rng = np.random.default_rng(sum(shape) + dim)
    x, g = rng.standard_normal(shape), rng.standard_normal(shape)
    grads = []
    for lib in (torch, chainrule):
        t = lib.tensor(x, dtype=lib.float64, requires_grad=True)
        y = lib.cumsum(t, dim, dtype=lib.float32)
        y.backward(lib.tensor(g, dtype=lib.float32))
        assert t.grad.dtype == lib.float64
        grads.append(t.grad.numpy())
    np.testing.assert_array_equal(grads[1], grads[0])


@pytest.mark.parametrize("dtype, to", [("float32", None), ("float64", "float32"), ("float32", "float16"),
                                       ("bfloat16", None)])
def test_cumsum_keeps_torchs_running_total_on_the_cpu(dtype, to):
    # torch's CPU kernel keeps a float32 running total in float64 (float16/bfloat16 in float32) and
    # rounds each total: NumPy's float32 total differed in 44 of 50 random float32 cases, now 0
    rng = np.random.default_rng(26)
    x, g = rng.standard_normal((37, 29)), rng.standard_normal((37, 29))
    values, grads = [], []
    for lib in (torch, chainrule):
        t = lib.tensor(x, dtype=getattr(lib, dtype), requires_grad=True)
        y = lib.cumsum(t, 0, dtype=None if to is None else getattr(lib, to))
        y.backward(lib.tensor(g, dtype=y.dtype))
        values.append(y.detach().double().numpy())
        grads.append(t.grad.double().numpy())
    np.testing.assert_array_equal(values[1], values[0])
    np.testing.assert_array_equal(grads[1], grads[0])
