"""An inf or NaN upstream gradient where a piecewise rule blocks the gradient.

torch's piecewise backwards (threshold_backward, hardtanh_backward, clamp, where, max-pool...)
*select* the gradient, so a blocked position gets 0 whatever arrives; a few (leaky_relu, dropout,
abs) multiply, so ``inf * 0`` gives NaN there. Each case runs the same lambda on both libraries
with an upstream gradient of inf and of NaN and compares the input gradient, NaN for NaN.
"""

import numpy as np
import pytest

import chainrule

from .harness import requires_torch

try:
    import torch
except ImportError:  # the oracle is optional
    torch = None

# points below, at and above every kink the cases use
POINTS = [-5.0, -3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 4.0, 6.0, 7.0]

CASES = {
    "relu": lambda lib, x: lib.relu(x),
    "relu_inplace": lambda lib, x: lib.relu_(x * 1),
    "relu6": lambda lib, x: lib.nn.functional.relu6(x),
    "hardtanh": lambda lib, x: lib.nn.functional.hardtanh(x, -1.0, 1.0),
    "threshold": lambda lib, x: lib.nn.functional.threshold(x, 0.5, 9.0),
    "hardshrink": lambda lib, x: lib.nn.functional.hardshrink(x, 0.5),
    "softshrink": lambda lib, x: lib.nn.functional.softshrink(x, 0.5),
    "hardsigmoid": lambda lib, x: lib.nn.functional.hardsigmoid(x),
    "hardswish": lambda lib, x: lib.nn.functional.hardswish(x),
    "leaky_relu": lambda lib, x: lib.nn.functional.leaky_relu(x, 0.0),  # torch multiplies: NaN
    "abs": lambda lib, x: lib.abs(x),  # torch multiplies by sign: NaN at 0
    "clamp": lambda lib, x: lib.clamp(x, -1.0, 1.0),
    "where": lambda lib, x: lib.where(x > 0, x, lib.zeros(len(POINTS))),
    "masked_fill": lambda lib, x: x.masked_fill(x > 0, 0.0),
    "max_pool1d": lambda lib, x: lib.nn.functional.max_pool1d(x.reshape(1, 1, -1), 3).flatten(),
}


def _input_grad(lib, case, upstream, dtype_name, create_graph):
    x = lib.tensor(POINTS, dtype=getattr(lib, dtype_name), requires_grad=True)
    y = CASES[case](lib, x)
    (grad,) = lib.autograd.grad(y, x, lib.full(y.shape, upstream, dtype=y.dtype), create_graph=create_graph)
    return grad.detach().numpy()


@requires_torch
@pytest.mark.parametrize("create_graph", [False, True], ids=["plain", "create_graph"])
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize("upstream", [float("inf"), float("nan")], ids=["inf", "nan"])
@pytest.mark.parametrize("case", list(CASES))
def test_blocked_positions_match_torch(case, upstream, dtype_name, create_graph):
    ours = _input_grad(chainrule, case, upstream, dtype_name, create_graph)
    theirs = _input_grad(torch, case, upstream, dtype_name, create_graph)
    np.testing.assert_array_equal(ours, theirs)


def test_relu_keeps_a_nan_input_and_a_finite_gradient_exact():
    x = chainrule.tensor([float("nan"), -1.0, 0.0, 2.0], requires_grad=True)
    (grad,) = chainrule.autograd.grad(chainrule.relu(x), x, chainrule.tensor([1.5, float("inf"), -float("inf"), 2.5]))
    # NaN passes the gradient as torch (its result is not <= 0); the blocked infinities become 0
    np.testing.assert_array_equal(grad.numpy(), [1.5, 0.0, 0.0, 2.5])


@pytest.mark.parametrize("shape", [(), (0,), (0, 3)])
def test_relu_select_on_scalar_and_empty(shape):
    x = chainrule.zeros(shape, requires_grad=True)
    (grad,) = chainrule.autograd.grad(chainrule.relu(x), x, chainrule.full(shape, float("inf")))
    assert grad.shape == x.shape and not np.isnan(grad.numpy()).any()
