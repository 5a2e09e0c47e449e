"""RNN / LSTM / GRU and their cells vs torch with copied weights: outputs, states, all gradients."""

import numpy as np
import pytest

import chainrule
import chainrule.optim

torch = pytest.importorskip("torch")


def _copy_weights(ours, theirs):
    for name, p in theirs.named_parameters():
        getattr(ours, name)._data[...] = p.detach().numpy()


def _run(module, x, hx, lib):
    xt = lib.tensor(x, requires_grad=True)
    if hx is None:
        out = module(xt)
        states = []
    elif isinstance(hx, tuple):
        states = [lib.tensor(h, requires_grad=True) for h in hx]
        out = module(xt, tuple(states))
    else:
        states = [lib.tensor(hx, requires_grad=True)]
        out = module(xt, states[0])
    flat = []
    stack = [out]
    while stack:
        item = stack.pop(0)
        if isinstance(item, tuple):
            stack = list(item) + stack
        else:
            flat.append(item)
    rng = np.random.default_rng(11)
    total = sum((o * lib.tensor(rng.standard_normal(tuple(o.shape)).astype(np.float32))).sum() for o in flat)
    total.backward()
    grads = [xt.grad.numpy()] + [s.grad.numpy() for s in states]
    grads += [p.grad.numpy() for _, p in sorted(module.named_parameters())]
    return [o.detach().numpy() for o in flat], grads


CONFIGS = [
    ("RNN", dict(num_layers=2)),
    ("RNN", dict(nonlinearity="relu", bidirectional=True)),
    ("RNN", dict(bias=False, batch_first=True)),
    ("LSTM", dict()),
    ("LSTM", dict(num_layers=2, bidirectional=True, batch_first=True)),
    ("LSTM", dict(bias=False, num_layers=2)),
    ("GRU", dict()),
    ("GRU", dict(num_layers=2, bidirectional=True)),
    ("GRU", dict(batch_first=True, bidirectional=True)),
]


@pytest.mark.parametrize("with_h0", [False, True])
@pytest.mark.parametrize("unbatched", [False, True])
@pytest.mark.parametrize("name,kw", CONFIGS, ids=[f"{n}-{sorted(k.items())}" for n, k in CONFIGS])
def test_recurrent_layer_matches_torch(name, kw, with_h0, unbatched):
    I, H, T, B = 3, 5, 6, 4
    theirs = getattr(torch.nn, name)(I, H, **kw)
    ours = getattr(chainrule.nn, name)(I, H, **kw)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [tuple(p.shape) for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]
    assert repr(ours) == repr(theirs)
    _copy_weights(ours, theirs)
    rng = np.random.default_rng(0)
    shape = (T, I) if unbatched else ((B, T, I) if kw.get("batch_first") else (T, B, I))
    x = rng.standard_normal(shape).astype(np.float32)
    D = 2 if kw.get("bidirectional") else 1
    hshape = (kw.get("num_layers", 1) * D,) + (() if unbatched else (B,)) + (H,)
    hx = None
    if with_h0:
        h = rng.standard_normal(hshape).astype(np.float32)
        hx = (h, rng.standard_normal(hshape).astype(np.float32)) if name == "LSTM" else h
    our_out, our_grads = _run(ours, x, hx, chainrule)
    their_out, their_grads = _run(theirs, x, hx, torch)
    assert len(our_out) == len(their_out)
    for a, b in zip(our_out, their_out):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    for a, b in zip(our_grads, their_grads):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,kw", [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu", "bias": False}),
                                     ("LSTMCell", {}), ("GRUCell", {}), ("GRUCell", {"bias": False})])
@pytest.mark.parametrize("unbatched", [False, True])
def test_cells_match_torch(name, kw, unbatched):
    theirs = getattr(torch.nn, name)(3, 4, **kw)
    ours = getattr(chainrule.nn, name)(3, 4, **kw)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert repr(ours) == repr(theirs)
    _copy_weights(ours, theirs)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3,) if unbatched else (2, 3)).astype(np.float32)
    hshape = (4,) if unbatched else (2, 4)
    h = rng.standard_normal(hshape).astype(np.float32)
    hx = (h, rng.standard_normal(hshape).astype(np.float32)) if name == "LSTMCell" else h
    for state in (None, hx):
        our_out, our_grads = _run(ours, x, state, chainrule)
        their_out, their_grads = _run(theirs, x, state, torch)
        for a, b in zip(our_out + our_grads, their_out + their_grads):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_init_is_uniform_in_plus_minus_one_over_sqrt_hidden():
    gru = chainrule.nn.GRU(4, 16, num_layers=2, bidirectional=True)
    values = np.concatenate([p.detach().numpy().ravel() for p in gru.parameters()])
    assert np.abs(values).max() <= 0.25 and np.abs(values).max() > 0.2 and abs(values.mean()) < 0.02


def test_training_step_on_sequence_classifier_matches_torch():
    """A bidirectional GRU + loss + Adam step: weights after 3 steps equal torch's."""
    results = []
    for lib in (torch, chainrule):
        lib_torch = lib is torch
        if lib_torch:
            torch.manual_seed(0)
        gru = lib.nn.GRU(1, 6, batch_first=True, bidirectional=True)
        if lib_torch:
            initial = {n: p.detach().numpy().copy() for n, p in gru.named_parameters()}
        else:
            for n, p in gru.named_parameters():
                p._data[...] = initial[n]
        opt = (chainrule.optim if not lib_torch else torch.optim).Adam(gru.parameters(), lr=0.01)
        rng = np.random.default_rng(3)
        x = lib.tensor(rng.standard_normal((8, 10, 1)).astype(np.float32))
        y = lib.tensor(rng.integers(0, 6, 8))
        for _ in range(3):
            opt.zero_grad()
            out, h = gru(x)
            loss = lib.nn.functional.cross_entropy(out[:, -1, :6] + h[1], y)
            loss.backward()
            opt.step()
        results.append([p.detach().numpy().copy() for p in gru.parameters()])
    theirs, ours = results
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_errors():
    gru = chainrule.nn.GRU(3, 4)
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size"):
        gru(chainrule.zeros(5, 2, 7))
    with pytest.raises(ValueError, match="Expected input to be 2D or 3D"):
        gru(chainrule.zeros(5, 2, 3, 1))
    with pytest.raises(RuntimeError, match="Expected hidden size"):
        gru(chainrule.zeros(5, 2, 3), chainrule.zeros(2, 2, 4))
    with pytest.raises(ValueError, match="dropout should be a number"):
        chainrule.nn.LSTM(3, 4, dropout=2.0)
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        chainrule.nn.RNN(3, 4, nonlinearity="sigmoid")
    x = chainrule.zeros(5, 2, 3, requires_grad=True)
    out, _ = gru(x)
    (g,) = chainrule.autograd.grad(out.sum(), x)
    assert tuple(g.shape) == (5, 2, 3)


def test_dropout_between_layers_only_in_training():
    lstm = chainrule.nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    x = chainrule.tensor(np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32))
    lstm.eval()
    a, _ = lstm(x)
    b, _ = lstm(x)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    lstm.train()
    c, _ = lstm(x)
    assert not np.allclose(a.detach().numpy(), c.detach().numpy())


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_gradcheck_float64(name):
    module = getattr(chainrule.nn, name)(2, 3, num_layers=2, bidirectional=True, dtype=chainrule.float64)
    x = chainrule.tensor(np.random.default_rng(2).standard_normal((4, 2, 2)), requires_grad=True)
    weights = list(module.parameters())

    def fn(x, w_first, w_last):
        out = module(x)
        return out[0]

    assert chainrule.autograd.gradcheck(fn, [x, weights[0], weights[-1]], eps=1e-6, atol=1e-5, rtol=1e-3)


def test_create_graph_through_rnn_records_the_gradient():
    # issue 11: the recurrent backward is differentiable (it used to raise here)
    gru = chainrule.nn.GRU(2, 3)
    x = chainrule.ones(4, 1, 2, requires_grad=True)
    out, _ = gru(x)
    (grad_x,) = chainrule.autograd.grad(out.sum(), x, create_graph=True)
    assert type(grad_x.grad_fn).__name__ == "GruBackwardBackward0"
    (grad_x_plain,) = chainrule.autograd.grad(gru(x)[0].sum(), x)
    assert grad_x_plain.grad_fn is None
    np.testing.assert_allclose(grad_x.detach().numpy(), grad_x_plain.numpy(), rtol=1e-6)
