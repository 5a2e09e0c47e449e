"""Activation and recurrent-cell leftovers (session 57, lane mendDJ): the activations' own gradient
rules and forwards lay out their results as torch's kernels do where a size-1 dim exists."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
import chainrule.nn.functional as CF

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _functional(lib):
    return TF if lib is torch else CF


ACTIVATIONS = {
    "relu": lambda F, x: F.relu(x),
    "hardtanh": lambda F, x: F.hardtanh(x, -0.5, 0.5),
    "relu6": lambda F, x: F.relu6(x * 8),
    "leaky_relu": lambda F, x: F.leaky_relu(x, 0.1),
    "softplus": lambda F, x: F.softplus(x, beta=2.0, threshold=1.0),
    "logsigmoid": lambda F, x: F.logsigmoid(x),
    "silu": lambda F, x: F.silu(x),
    "gelu": lambda F, x: F.gelu(x),
    "gelu_tanh": lambda F, x: F.gelu(x, approximate="tanh"),
    "mish": lambda F, x: F.mish(x),
    "elu": lambda F, x: F.elu(x),
    "celu": lambda F, x: F.celu(x, 0.7),
    "selu": lambda F, x: F.selu(x),
    "hardswish": lambda F, x: F.hardswish(x * 4),
    "hardsigmoid": lambda F, x: F.hardsigmoid(x * 4),
    "hardshrink": lambda F, x: F.hardshrink(x, 0.3),
    "softshrink": lambda F, x: F.softshrink(x, 0.3),
    "threshold": lambda F, x: F.threshold(x, 0.1, 2.0),
    "rrelu_eval": lambda F, x: F.rrelu(x, training=False),
}


def _view(leaf, view):
    if view == "transposed":
        return leaf.transpose(0, -1)
    if view == "permuted":
        return leaf.permute(1, 2, 0)
    return leaf


def _backward(lib, y, seed):
    if seed == "sum":  # an expanded gradient, every stride 0
        y.sum().backward()
    elif seed == "ones":  # ones_like(y): the forward's layout
        y.backward(lib.ones_like(y))
    else:  # a gradient laid out in reversed dim order
        w = np.linspace(0.5, 1.5, y.numel(), dtype=np.float32).reshape(tuple(reversed(y.shape)))
        y.backward(lib.tensor(w).permute(*reversed(range(y.dim()))))


# one case of each kind that differed: a transposed (1, 5) under sum (hardtanh's (1, 1) for torch's
# (5, 1)); threshold_backward's and leaky_relu_backward's (input, grad) operand order; the forward's
# layout of a permuted input, which ones_like passes on; logsigmoid's empty_like(grad)
LAYOUT_CASES = [((1, 5), "transposed", "sum"), ((3, 1, 2), "plain", "reversed"), ((3, 1, 2), "permuted", "ones"),
                ((1, 2, 1, 3), "transposed", "ones"), ((1, 5), "plain", "reversed"), ((4, 1), "transposed", "sum")]


@pytest.mark.parametrize("op", list(ACTIVATIONS))
def test_an_activations_forward_and_leaf_gradient_have_torchs_strides(op):
    # NumPy's strides on a size-1 dim (and NumPy's layout of a permuted input's result) where torch's
    # kernels sort them: 698 of 4,620 leaf gradients of 22 activations differed in strides -> 40
    # (those through an alias view or tanhshrink's sum, the engine's), forwards 396 -> 0
    rng = np.random.default_rng(0)
    fn = ACTIVATIONS[op]
    for shape, view, seed in LAYOUT_CASES:
        data = rng.standard_normal(shape).astype(np.float32)
        results = []
        for lib in (torch, chainrule):
            leaf = lib.tensor(data, requires_grad=True)
            y = fn(_functional(lib), _view(leaf, view) if view != "permuted" or leaf.dim() == 3 else leaf)
            forward_strides = y.stride()
            _backward(lib, y, seed)
            results.append((forward_strides, leaf.grad.stride(), leaf.grad.numpy()))
        (want_forward, want_strides, want), (got_forward, strides, got) = results
        assert got_forward == want_forward, (shape, view, seed)
        assert strides == want_strides, (shape, view, seed)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_training_rrelu_is_contiguous_and_its_gradient_laid_out_by_the_noise():
    # torch writes training rrelu into a contiguous empty_like, and its backward is noise * grad
    strides = []
    for lib in (torch, chainrule):
        leaf = lib.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 1, 2), requires_grad=True)
        y = _functional(lib).rrelu(leaf.permute(1, 2, 0), training=True)
        _backward(lib, y, "reversed")
        strides.append((y.stride(), leaf.grad.stride()))
    assert strides[1] == strides[0]
