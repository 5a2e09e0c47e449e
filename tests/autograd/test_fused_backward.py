"""Fused backwards: one backward per op, differentiable to second order.

Each fused op computes its gradient in one array-level ``*Backward`` Function (no second,
grad-mode-dependent code path); that Function's own backward is the second-order rule. Checked
through the public functions: gradcheck and gradgradcheck in float64, and create_graph results
against torch's double backward.
"""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

import chainrule
import chainrule.nn.functional as F
from chainrule.autograd import gradcheck, gradgradcheck

try:
    import torch
    import torch.nn.functional as torch_F
except ImportError:  # the torch comparison is skipped; the finite-difference checks still run
    torch = None

SRC = pathlib.Path(chainrule.__file__).parent


def _array(seed: int, *shape, zeros_at=None) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal(shape)
    if zeros_at is not None:
        a[zeros_at] = 0.0
    return a


def _case(inputs, fn, compare=True, finite_differences=True):
    """``inputs``: float64 arrays differentiated through; ``fn(lib, functional, *tensors)``;
    ``compare``: against torch; ``finite_differences``: gradcheck and gradgradcheck."""
    return {"inputs": inputs, "fn": fn, "compare": compare, "finite_differences": finite_differences}


_TARGET = np.array([0, 3, 1, 4])
_TARGET_IGNORED = np.array([0, -100, 2, 4])
_INDICES = np.array([[0, 2, 2], [5, 1, 0]])
_CLASS_WEIGHT = np.abs(_array(41, 5)) + 0.5
_RUNNING = (np.array([0.3, -0.1, 0.2]), np.array([1.5, 0.7, 2.0]))

CASES = {
    "linear": _case([_array(0, 4, 5), _array(1, 3, 5), _array(2, 3)],
                    lambda lib, f, x, w, b: f.linear(x, w, b)),
    "linear_no_bias_3d": _case([_array(3, 2, 4, 5), _array(4, 3, 5)], lambda lib, f, x, w: f.linear(x, w)),
    "linear_1d_input": _case([_array(5, 5), _array(6, 3, 5), _array(7, 3)],
                             lambda lib, f, x, w, b: f.linear(x, w, b)),
    "layer_norm_affine": _case([_array(8, 4, 3, 5), _array(9, 5), _array(10, 5)],
                               lambda lib, f, x, w, b: f.layer_norm(x, (5,), w, b)),
    "layer_norm_two_dims": _case([_array(11, 2, 3, 4), _array(12, 3, 4), _array(13, 3, 4)],
                                 lambda lib, f, x, w, b: f.layer_norm(x, (3, 4), w, b)),
    "layer_norm_whole_input": _case([_array(14, 3, 4), _array(15, 3, 4), _array(16, 3, 4)],
                                    lambda lib, f, x, w, b: f.layer_norm(x, (3, 4), w, b)),
    "layer_norm_plain": _case([_array(17, 4, 5)], lambda lib, f, x: f.layer_norm(x, (5,))),
    "group_norm": _case([_array(18, 2, 6, 5), _array(19, 6), _array(20, 6)],
                        lambda lib, f, x, w, b: f.group_norm(x, 3, w, b)),
    "batch_norm_train": _case([_array(21, 4, 3, 5), _array(22, 3), _array(23, 3)],
                              lambda lib, f, x, w, b: f.batch_norm(x, None, None, w, b, training=True)),
    "batch_norm_train_2d_plain": _case([_array(24, 5, 3)],
                                       lambda lib, f, x: f.batch_norm(x, None, None, training=True)),
    "batch_norm_eval": _case(
        [_array(25, 4, 3, 5), _array(26, 3), _array(27, 3)],
        lambda lib, f, x, w, b: f.batch_norm(x, lib.tensor(_RUNNING[0]), lib.tensor(_RUNNING[1]), w, b,
                                             training=False)),
    "instance_norm": _case([_array(28, 2, 3, 5), _array(29, 3), _array(30, 3)],
                           lambda lib, f, x, w, b: f.instance_norm(x, weight=w, bias=b)),
    "normalize": _case([_array(31, 4, 5)], lambda lib, f, x: f.normalize(x, dim=1)),
    "softmax": _case([_array(32, 3, 5)], lambda lib, f, x: f.softmax(x, dim=1)),
    "log_softmax": _case([_array(33, 3, 5)], lambda lib, f, x: f.log_softmax(x, dim=0)),
    "gelu": _case([_array(34, 3, 4)], lambda lib, f, x: f.gelu(x)),
    "gelu_tanh": _case([_array(35, 3, 4)], lambda lib, f, x: f.gelu(x, approximate="tanh")),
    "silu": _case([_array(36, 3, 4)], lambda lib, f, x: f.silu(x)),
    "prod_with_zeros": _case([_array(37, 3, 4, zeros_at=(np.array([0, 1, 1]), np.array([1, 0, 2])))],
                             lambda lib, f, x: x.prod(1)),
    "prod_all_one_zero": _case([_array(38, 2, 3, zeros_at=(1, 2))], lambda lib, f, x: x.prod()),
    "cross_entropy": _case([_array(39, 4, 5)], lambda lib, f, x: f.cross_entropy(x, lib.tensor(_TARGET))),
    "cross_entropy_weighted_smoothed_ignored": _case(
        [_array(40, 4, 5)],
        lambda lib, f, x: f.cross_entropy(x, lib.tensor(_TARGET_IGNORED), weight=lib.tensor(_CLASS_WEIGHT),
                                          label_smoothing=0.2)),
    "cross_entropy_none_spatial": _case(
        [_array(42, 2, 3, 4)],
        lambda lib, f, x: f.cross_entropy(x, lib.tensor(np.array([[0, 2, 1, 1], [2, 2, 0, 1]])),
                                          reduction="none")),
    "nll_loss": _case([_array(43, 4, 5)],
                      lambda lib, f, x: f.nll_loss(f.log_softmax(x, dim=1), lib.tensor(_TARGET), reduction="sum")),
    "embedding": _case([_array(44, 6, 3)], lambda lib, f, w: f.embedding(lib.tensor(_INDICES), w)),
    # the padding row gets no gradient although the output depends on it: torch's rule, not a derivative
    "embedding_padding_idx": _case([_array(44, 6, 3)],
                                   lambda lib, f, w: f.embedding(lib.tensor(_INDICES), w, padding_idx=2),
                                   finite_differences=False),
    # the mask is drawn from each library's own generator: checked by finite differences only
    "dropout": _case([_array(45, 4, 5)], lambda lib, f, x: (lib.manual_seed(0), f.dropout(x, 0.4))[1],
                     compare=False),
}


def _leaves(lib, arrays):
    return [lib.tensor(a, dtype=lib.float64, requires_grad=True) for a in arrays]


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c["finite_differences"]])
def test_gradcheck_and_gradgradcheck(name):
    case = CASES[name]
    inputs = _leaves(chainrule, case["inputs"])

    def fn(*tensors):
        return case["fn"](chainrule, F, *tensors)

    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


def _double_backward(lib, functional, case):
    """First-order grads under create_graph, then the gradient of their pairing with fixed
    directions: (first, second) as NumPy arrays."""
    inputs = _leaves(lib, case["inputs"])
    out = case["fn"](lib, functional, *inputs)
    cotangent = lib.tensor(_array(100, *out.shape), dtype=lib.float64)
    first = lib.autograd.grad(out, inputs, cotangent, create_graph=True)
    directions = [lib.tensor(_array(200 + i, *g.shape), dtype=lib.float64) for i, g in enumerate(first)]
    recorded = [(g * d).sum() for g, d in zip(first, directions) if g.requires_grad]
    second = lib.autograd.grad(sum(recorded), inputs, allow_unused=True) if recorded else [None] * len(inputs)
    return [_numpy(g) for g in first], [_numpy(g) for g in second]


def _numpy(t):
    return t.detach().numpy() if t is not None else None


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c["compare"]])
def test_create_graph_matches_torch(name):
    if torch is None:
        pytest.skip("torch is not installed")
    case = CASES[name]
    ours_first, ours_second = _double_backward(chainrule, F, case)
    torch_first, torch_second = _double_backward(torch, torch_F, case)
    for ours, theirs in zip(ours_first, torch_first):
        np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-9)
    for ours, theirs in zip(ours_second, torch_second):
        if theirs is None or ours is None:
            # one library leaves an input out of the second order where the other has zeros
            np.testing.assert_allclose(ours if ours is not None else 0.0, theirs if theirs is not None else 0.0,
                                       atol=1e-9)
            continue
        np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", ["linear", "layer_norm_affine", "batch_norm_train", "group_norm",
                                  "instance_norm", "softmax", "log_softmax", "gelu", "silu",
                                  "prod_with_zeros", "cross_entropy", "dropout"])
def test_plain_backward_records_nothing(name):
    case = CASES[name]
    inputs = _leaves(chainrule, case["inputs"])
    out = case["fn"](chainrule, F, *inputs)
    out.backward(chainrule.ones_like(out))
    for t in inputs:
        assert t.grad is not None
        assert t.grad.grad_fn is None and not t.grad.requires_grad


@pytest.mark.parametrize("name, expected", [
    ("batch_norm_train", "NativeBatchNormBackwardBackward0"),
    ("batch_norm_train_2d_plain", "NativeBatchNormBackwardBackward0"),
    ("layer_norm_affine", "NativeLayerNormBackwardBackward0"),
    ("layer_norm_plain", "NativeLayerNormBackwardBackward0"),
    ("softmax", "SoftmaxBackwardDataBackward0"),
    ("log_softmax", "LogSoftmaxBackwardDataBackward0"),
    ("gelu", "GeluBackwardBackward0"),
])
def test_create_graph_gradient_node_is_the_fused_backward(name, expected):
    case = CASES[name]
    inputs = _leaves(chainrule, case["inputs"])
    out = case["fn"](chainrule, F, *inputs)
    (grad_x,) = chainrule.autograd.grad((out * out).sum(), inputs[:1], create_graph=True)
    assert type(grad_x.grad_fn).__name__ == expected


def test_third_order_through_fused_backwards():
    # the second-order rules are Tensor ops again, so a third derivative is recorded too: the
    # gradient function passes gradgradcheck. (Not compared with torch: torch 2.13's third
    # derivative through layer_norm is not zero where the function it differentiates is.)
    x = chainrule.tensor(_array(50, 3, 4), dtype=chainrule.float64, requires_grad=True)
    w = chainrule.tensor(_array(51, 4), dtype=chainrule.float64, requires_grad=True)
    b = chainrule.tensor(_array(52, 4), dtype=chainrule.float64, requires_grad=True)

    def gradient(x, w, b):
        out = F.log_softmax(F.silu(F.batch_norm(F.layer_norm(x, (4,), w, b), None, None, training=True)), 1)
        return chainrule.autograd.grad((out * out).sum(), x, create_graph=True)[0]

    assert gradgradcheck(gradient, (x, w, b))


def test_grad_mode_is_read_only_in_autograd():
    # one backward per op: no op reads the grad mode to pick a second code path
    readers = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
               if "_grad_state.enabled" in p.read_text() and p.parent.name != "autograd"]
    assert readers == []


def test_nn_defines_no_functions():
    # every Function lives in ops/ or autograd/; nn only composes them
    pattern = re.compile(r"^class \w+\((\w+\.)?Function\)", re.MULTILINE)
    defining = [str(p.relative_to(SRC)) for p in (SRC / "nn").rglob("*.py") if pattern.search(p.read_text())]
    assert defining == []


_TOP_LEVEL_CALLS = {
    "batch_norm_train": lambda lib, x, w: lib.batch_norm(x, w, w, None, None, True, 0.1, 1e-5, False),
    "batch_norm_eval": lambda lib, x, w: lib.batch_norm(x, w, None, lib.tensor(_RUNNING[0]), lib.tensor(_RUNNING[1]),
                                                        False, 0.1, 1e-5, True),
    "instance_norm": lambda lib, x, w: lib.instance_norm(x, w, w, None, None, True, 0.1, 1e-5, False),
    "layer_norm": lambda lib, x, w: lib.layer_norm(x, (3, 5), None, None, 1e-3, True),
    "group_norm": lambda lib, x, w: lib.group_norm(x, 3, w, w, 1e-5, True),
    "embedding_padding": lambda lib, x, w: lib.embedding(x[0], lib.tensor(np.array([[1, 2], [0, 1]])), 1),
    "embedding_no_padding": lambda lib, x, w: lib.embedding(x[0], lib.tensor(np.array([[1, 2], [0, 1]]))),
    "dropout_eval": lambda lib, x, w: lib.dropout(x, 0.3, False),
    "alpha_dropout_eval": lambda lib, x, w: lib.alpha_dropout(x, 0.3, False),
    "feature_dropout_p0": lambda lib, x, w: lib.feature_dropout(x, 0.0, True),
}


@pytest.mark.parametrize("name", list(_TOP_LEVEL_CALLS))
def test_top_level_spellings_match_torch(name):
    # torch.batch_norm & co take ATen's argument order, not torch.nn.functional's
    if torch is None:
        pytest.skip("torch is not installed")
    results = []
    for lib in (chainrule, torch):
        x = lib.tensor(_array(60, 4, 3, 5), requires_grad=True)
        w = lib.tensor(_array(61, 3), requires_grad=True)
        out = _TOP_LEVEL_CALLS[name](lib, x, w)
        out.backward(lib.tensor(_array(62, *out.shape)))
        results.append([out.detach().numpy(), x.grad.numpy(), None if w.grad is None else w.grad.numpy()])
    for ours, theirs in zip(*results):
        if theirs is None:
            assert ours is None
            continue
        np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-9)


def test_feature_dropout_drops_whole_channels():
    chainrule.manual_seed(0)
    out = chainrule.feature_dropout(chainrule.ones(6, 4, 5), 0.5, True).numpy()
    per_channel = out.reshape(24, 5)
    assert set(np.unique(per_channel)) <= {0.0, 2.0}
    assert (per_channel == per_channel[:, :1]).all()
    assert 0 < (per_channel[:, 0] == 0).sum() < 24
