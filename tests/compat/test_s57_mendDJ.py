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


def _node_names(t):
    """The node's name and its inputs' (a squeezed, unbatched output: those of the node below)."""
    fn = t.grad_fn
    if type(fn).__name__ == "SqueezeBackward1":
        fn = fn.next_functions[0][0]
    return type(fn).__name__


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("given", [True, False])
def test_an_lstm_cells_outputs_take_torchs_node_names(bias, batched, given):
    # torch's h' is o * tanh(c') (MulBackward0), its c' f * c + i * g added in place (AddBackward0); one
    # fused LstmBackward0 gave both: 8 of 8 (bias, batch, hx) cases differing -> 0 (values and gradients
    # were and are torch's)
    results = []
    rng = np.random.default_rng(3)
    data = rng.standard_normal((3, 5) if batched else (5,)).astype(np.float32)
    states = [rng.standard_normal((3, 4) if batched else (4,)).astype(np.float32) for _ in range(2)]
    for lib in (torch, chainrule):
        lib.manual_seed(0)
        cell = lib.nn.LSTMCell(5, 4, bias=bias)
        x = lib.tensor(data, requires_grad=True)
        hx = tuple(lib.tensor(s, requires_grad=True) for s in states) if given else None
        h, c = cell(x, hx)
        (h.sum() * 2 + (c * c).sum()).backward()
        results.append(((_node_names(h), _node_names(c)), h.detach().numpy(), c.detach().numpy(), x.grad.numpy(),
                        [p.grad.numpy() for p in cell.parameters()]))
    (want_names, *want), (names, *got) = results
    assert names == want_names == ("MulBackward0", "AddBackward0")
    for a, b in zip(got[:3], want[:3]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(got[3], want[3]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_the_functional_cells_take_torchs_node_names():
    # torch.lstm_cell and torch.gru_cell recorded the layer's node (MkldnnRnnLayerBackward0, StackBackward0)
    names = []
    for lib in (torch, chainrule):
        x, h, c = lib.ones(3, 5, requires_grad=True), lib.zeros(3, 4), lib.zeros(3, 4)
        hy, cy = lib.lstm_cell(x, (h, c), lib.ones(16, 5) * 0.1, lib.ones(16, 4) * 0.1)
        g = lib.gru_cell(x, h, lib.ones(12, 5) * 0.1, lib.ones(12, 4) * 0.1)
        names.append((hy.grad_fn.name(), cy.grad_fn.name(), g.grad_fn.name()))
        (hy.sum() + cy.sum() + g.sum()).backward()
        names.append(x.grad.numpy().round(5).tolist())
    assert names[2:] == names[:2]


_GELU_EDGES = np.array([0, -0.0, 1e-45, -1e-45, 1e-38, -1e-38, 3.4e38, -3.4e38, np.inf, -np.inf, 0.5, -0.5, 3.9, -3.9,
                        4.0, -4.0, 5.5, -5.5, 9.3, -9.3, 13.0, -13.0], np.float32)


def test_exact_gelus_gradient_from_the_forwards_kept_parts_keeps_torchs_bits():
    # the AVX2 forward keeps e^{-r²} and erf(r) for the backward, which then skips recomputing them (on
    # (64, 512, 256): the kernels' forward + backward 322 -> 199 ms); 0 of 5,000,030 random and edge
    # values differing from torch's bits before and after
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.standard_normal(6000).astype(np.float32) * 4, _GELU_EDGES])
    g = rng.standard_normal(x.size).astype(np.float32)
    results = []
    for lib in (torch, chainrule):
        t = lib.tensor(x, requires_grad=True)
        y = _functional(lib).gelu(t)
        y.backward(lib.tensor(g))
        results.append((y.detach().numpy().view(np.uint32), t.grad.numpy().view(np.uint32)))
    (want_y, want_g), (got_y, got_g) = results
    np.testing.assert_array_equal(got_y, want_y)
    np.testing.assert_array_equal(got_g, want_g)


def _bits_differing(a, b):
    return int(((a.view(np.uint32) != b.view(np.uint32)) & ~(np.isnan(a) & np.isnan(b))).sum())


def _forward_and_gradient(op, x, g):
    results = []
    for lib in (torch, chainrule):
        t = lib.tensor(x, requires_grad=True)
        y = op(_functional(lib), t)
        y.backward(lib.tensor(g))
        results.append((y.detach().numpy(), t.grad.numpy()))
    return results


def test_hardsigmoid_keeps_torchs_bits():
    # torch's min(max(x + 3, 0), 6) / 6 (x / 6 + 1/2 rounded otherwise) and a +0 gradient outside (-3, 3),
    # where g * 0 gave -0: 3,992 and 6,044 of 20,032 values differing -> 0 and 0
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.uniform(-5, 5, 3000).astype(np.float32), _GELU_EDGES, [3, -3, np.nan]]).astype(np.float32)
    g = rng.standard_normal(x.size).astype(np.float32)
    (want_y, want_g), (got_y, got_g) = _forward_and_gradient(lambda F, t: F.hardsigmoid(t), x, g)
    assert _bits_differing(got_y, want_y) == 0
    assert _bits_differing(got_g, want_g) == 0


@pytest.mark.parametrize("op, before", [("silu", (4433, 7880)), ("elu", (553, 830))])
def test_silu_and_elu_round_in_torchs_order(op, before):
    # silu: x / (1 + e^-x) and the gradient (g s)(1 + x (1 - s)) with a fused multiply-add (4,433 / 7,880 of
    # 20,032 differing -> 838 / 672, its exp's); elu: expm1 rounded from float64 (553 -> 109 forward). What
    # remains is the transcendental's last bit: asserted below a tenth of the values, as before it was not
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.standard_normal(2000).astype(np.float32) * 3, rng.uniform(-30, 30, 2000).astype(np.float32)])
    g = rng.standard_normal(x.size).astype(np.float32)
    fn = (lambda F, t: F.silu(t)) if op == "silu" else (lambda F, t: F.elu(t))
    (want_y, want_g), (got_y, got_g) = _forward_and_gradient(fn, x, g)
    np.testing.assert_allclose(got_y, want_y, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got_g, want_g, rtol=1e-5, atol=1e-7)
    assert _bits_differing(got_y, want_y) < x.size // 10
    if op == "silu":
        assert _bits_differing(got_g, want_g) < x.size // 10
