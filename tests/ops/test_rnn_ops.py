"""ops.rnn: the recurrent layer op's backward is differentiable (issue 11).

Finite differences (float64 gradgradcheck) through RNN tanh/relu, LSTM and GRU — stacked,
bidirectional, packed — and torch's second (and third) derivatives through nn.GRU/LSTM/RNN with
the same weights, gradient-penalty style.
"""

import numpy as np
import pytest

import chainrule
from chainrule.nn.utils import rnn as ours_rnn
from chainrule.ops import rnn as rnn_ops
from tests._profile import LONG

torch = pytest.importorskip("torch")

LENGTHS = [3, 1]  # unsorted, one sequence shorter than the batch's longest


def _module(lib, kind, num_layers, bidirectional, seed=0):
    lib.manual_seed(seed)
    kw = dict(num_layers=num_layers, bidirectional=bidirectional, dtype=lib.float64)
    if kind in ("tanh", "relu"):
        return lib.nn.RNN(2, 2, nonlinearity=kind, **kw)
    return getattr(lib.nn, kind)(2, 2, **kw)


def _copy_weights(ours, theirs):
    for name, p in theirs.named_parameters():
        getattr(ours, name)._data[...] = p.detach().numpy()


def _layer_fn(lib, module, packed):
    """(x, first weight, last weight) -> (output, h_n[, c_n]), through the packed path if asked."""

    def fn(x, w_first, w_last):
        if packed:
            seq = lib.nn.utils.rnn.pack_padded_sequence(x, LENGTHS, enforce_sorted=False)
            out, hidden = module(seq)
            out = lib.nn.utils.rnn.pad_packed_sequence(out)[0]
        else:
            out, hidden = module(x)
        return (out,) + (hidden if isinstance(hidden, tuple) else (hidden,))

    return fn


@pytest.mark.parametrize("kind", ["tanh", "relu", "LSTM", "GRU"])
@pytest.mark.parametrize("num_layers, bidirectional, packed", [
    (1, False, False), (1, True, True),
    # two layers repeat the one-layer step on its own output: the long profile (minutes in all)
    pytest.param(2, True, False, marks=pytest.mark.long), pytest.param(2, False, True, marks=pytest.mark.long)])
def test_gradgradcheck_float64(kind, num_layers, bidirectional, packed):
    module = _module(chainrule, kind, num_layers, bidirectional)
    x = chainrule.tensor(np.random.default_rng(3).standard_normal((3, 2, 2)), requires_grad=True)
    weights = list(module.parameters())
    fn = _layer_fn(chainrule, module, packed)
    # first order is gradchecked in tests/nn/test_rnn.py; here the gradient of the gradient.
    # CI checks the bidirectional packed layer along random directions (torch's fast_mode: <u, J v>
    # by central differences against <J^T u, v>), each kind keeping its one-direction unpacked
    # layer element by element; the long profile checks every layer element by element
    directional = not LONG and bidirectional and packed
    assert chainrule.autograd.gradgradcheck(fn, [x, weights[0], weights[-1]], eps=1e-6, atol=1e-5, rtol=1e-3,
                                            fast_mode=directional)


def _gradient_penalty(lib, module, x, hx, order):
    """Derivatives of a WGAN-GP-style penalty ||d(loss)/d(x, params)||² w.r.t. x and the params;
    order 3 differentiates one of those once more (a scalar of them, against the params)."""
    params = list(module.parameters())
    out = module(x, hx)
    hidden = out[1] if isinstance(out[1], tuple) else (out[1],)
    loss = (out[0] * out[0]).sum() + sum(h.sum() for h in hidden)
    first = lib.autograd.grad(loss, [x] + params, create_graph=True)
    penalty = sum((g * g).sum() for g in first)
    second = lib.autograd.grad(penalty, [x] + params, create_graph=order > 2)
    if order == 2:
        return second
    third_loss = sum((g * g).sum() for g in second)
    return lib.autograd.grad(third_loss, params)


@pytest.mark.parametrize("kind, order", [("GRU", 2), ("LSTM", 2), ("tanh", 2), ("relu", 2), ("GRU", 3),
                                         ("LSTM", 3)])
def test_gradient_penalty_matches_torch(kind, order):
    theirs = _module(torch, kind, 2, True)
    ours = _module(chainrule, kind, 2, True)
    _copy_weights(ours, theirs)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3, 2))
    h0 = rng.standard_normal((4, 3, 2))
    results = []
    for lib, module in ((chainrule, ours), (torch, theirs)):
        xt = lib.tensor(x, requires_grad=True)
        h0t = lib.tensor(h0, requires_grad=True)
        hx = (h0t, lib.tensor(h0 * 0.5)) if kind == "LSTM" else h0t
        results.append([g.detach().numpy() for g in _gradient_penalty(lib, module, xt, hx, order)])
    for got, expected in zip(*results):
        np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("mode", rnn_ops.MODES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, np.array([3, 1, 2])])
def test_step_composition_is_the_fused_forward(mode, reverse, lengths):
    # the second-order rule differentiates _layer_steps; it must be the very function forward computes
    rng = np.random.default_rng(7)
    G = 2 * (4 if mode == "LSTM" else 3 if mode == "GRU" else 1)
    arrays = [rng.standard_normal(s) for s in ((3, 3, 4), (G, 4), (G, 2), (G,), (G,), (3, 2))]
    if mode == "LSTM":
        arrays.append(rng.standard_normal((3, 2)))
    tensors = [chainrule.tensor(a) for a in arrays]
    fused = rnn_ops.recurrent_layer(mode, *tensors, reverse=reverse, lengths=lengths)
    steps = rnn_ops._layer_steps(mode, *tensors, reverse=reverse, lengths=lengths)
    assert len(fused) == len(steps)
    for a, b in zip(fused, steps):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-14)


def test_plain_backward_records_no_second_order_graph():
    gru = chainrule.nn.GRU(2, 3)
    x = chainrule.ones(4, 2, 2, requires_grad=True)
    out, h_n = gru(x)
    assert type(out.grad_fn).__name__ == "StackBackward0"  # (torch's last node: the steps stacked)
    (out.sum() + h_n.sum()).backward()
    assert x.grad.grad_fn is None and not x.grad.requires_grad
    assert all(p.grad.grad_fn is None for p in gru.parameters())


def test_backward_twice_without_retain_graph_raises():
    lstm = chainrule.nn.LSTM(2, 3)
    out, _ = lstm(chainrule.ones(4, 2, 2, requires_grad=True))
    out.sum().backward(retain_graph=True)
    out.sum().backward()
    with pytest.raises(RuntimeError, match="(?s)Trying to backward through the graph a second time.*MkldnnRnnLayerBackward0"):
        out.sum().backward()


def test_weight_changed_in_place_before_backward_raises():
    rnn = chainrule.nn.RNN(2, 3)
    out, _ = rnn(chainrule.ones(4, 2, 2))
    with chainrule.no_grad():
        rnn.weight_hh_l0.mul_(2)
    # torch's message: a leaf weight has no "output 0 of" clause
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation: \[torch.FloatTensor \[3, 3\]\] is "
                                           r"at version \d+; expected version \d+ instead"):
        out.sum().backward()


def test_unknown_mode_raises():
    t = chainrule.zeros(1, 1, 1)
    with pytest.raises(ValueError, match="recurrent_layer: unknown mode 'SRU'"):
        rnn_ops.recurrent_layer("SRU", t, t, t, None, None, t)


def test_packed_cells_and_unused_outputs_double_backward():
    # a cell (one time step) and a layer whose h_n gets no gradient: both differentiate twice
    cell = chainrule.nn.GRUCell(2, 3, dtype=chainrule.float64)
    x = chainrule.tensor(np.random.default_rng(1).standard_normal((2, 2)), requires_grad=True)
    assert chainrule.autograd.gradgradcheck(lambda x: cell(x), [x])
    lstm = chainrule.nn.LSTM(2, 2, dtype=chainrule.float64)
    seq = chainrule.tensor(np.random.default_rng(2).standard_normal((3, 2, 2)), requires_grad=True)
    assert chainrule.autograd.gradgradcheck(lambda s: ours_rnn.pad_packed_sequence(
        lstm(ours_rnn.pack_padded_sequence(s, LENGTHS, enforce_sorted=False))[0])[0], [seq])
