"""The LSTM language model's speed paths give the simple path's numbers and torch's.

``lstm_lm_step`` (Embedding -> LSTM -> Linear over a 10k vocabulary -> cross-entropy) runs
through paths the op registry's small samples reach only in part: the linear layer folds inputs
of any rank into one GEMM and splits its bias add and bias gradient over threads; log-softmax
along the last dim on the CPU works in cached blocks of rows over threads and keeps its softmax
for the backward. Each is compared here with the plain NumPy formula (tight, or bit for bit
where the path promises it) and with torch (float32 values and gradients), on shapes large
enough to be split over two threads. No timings are asserted.
"""

import numpy as np
import pytest

import chainrule
from chainrule import _config, _parallel
from chainrule.ops import linear as linear_ops
from chainrule.ops import reduce as reduce_ops
from chainrule.ops import rnn as rnn_ops

torch = pytest.importorskip("torch")

# rows x columns above 2 * _parallel.MIN_ELEMENTS_PER_PIECE: split in two under a two-thread budget
BIG = (300, 1000)


@pytest.fixture
def two_threads(monkeypatch):
    monkeypatch.setattr(_config, "_thread_budget", 2)


def _rand(shape, seed, dtype=np.float32, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def test_shapes_here_are_split_over_two_threads(two_threads):
    # the bit-identity tests below mean something only if the work is really cut in pieces
    assert _parallel.pieces(BIG[0], BIG[0] * BIG[1]) == 2


# ---------------------------------------------------------------- linear
def test_bias_add_and_column_sums_are_bit_identical_to_numpy(two_threads):
    g = _rand(BIG, 0)
    b = _rand(BIG[1], 1)
    out = g.copy()
    linear_ops._add_bias(out, b)
    np.testing.assert_array_equal(out, g + b)
    np.testing.assert_array_equal(linear_ops._column_sums(g), g.sum(0))
    transposed = np.asfortranarray(g)  # a gradient handed over in another layout
    np.testing.assert_array_equal(linear_ops._column_sums(transposed), transposed.sum(0))


LINEAR_INPUTS = [
    ("3d", (7, 5, 16)),
    ("4d", (2, 3, 4, 16)),
    ("1d", (16,)),
    ("empty_rows", (0, 4, 16)),
]


@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("name,shape", LINEAR_INPUTS, ids=[c[0] for c in LINEAR_INPUTS])
def test_linear_of_any_rank_matches_per_row_products_and_torch(name, shape, bias, contiguous):
    x = _rand(shape, 0)
    w = _rand((9, 16), 1)
    b = _rand(9, 2) if bias else None
    g = _rand(shape[:-1] + (9,), 3)

    def run(lib):
        xt = lib.tensor(x.copy(), requires_grad=True)
        inp = xt if contiguous or xt.ndim < 2 else xt.transpose(0, -2).contiguous().transpose(0, -2)
        wt = lib.tensor(w, requires_grad=True)
        bt = lib.tensor(b, requires_grad=True) if bias else None
        y = lib.nn.functional.linear(inp, wt, bt)
        y.backward(lib.tensor(g))
        grads = [xt.grad.numpy(), wt.grad.numpy()] + ([bt.grad.numpy()] if bias else [])
        return [y.detach().numpy()] + grads

    ours, theirs = run(chainrule), run(torch)
    # the plain formulas, one output row at a time, in float64
    x64, w64, g64 = x.astype(np.float64), w.astype(np.float64), g.astype(np.float64)
    rows_x, rows_g = x64.reshape(-1, 16), g64.reshape(-1, 9)
    plain = [np.einsum("...i,oi->...o", x64, w64) + (b if bias else 0), np.einsum("...o,oi->...i", g64, w64),
             rows_g.T @ rows_x] + ([rows_g.sum(0)] if bias else [])
    for what, a, t, p in zip(("output", "input grad", "weight grad", "bias grad"), ours, theirs, plain):
        assert a.dtype == np.float32 and a.shape == t.shape, what
        np.testing.assert_allclose(a, t, rtol=1e-5, atol=1e-5, err_msg=what)
        np.testing.assert_allclose(a, p, rtol=1e-5, atol=1e-5, err_msg=what)
    assert chainrule.nn.functional.linear(chainrule.tensor(x), chainrule.tensor(w)).is_contiguous()


def test_linear_of_a_3d_input_passes_gradcheck_and_gradgradcheck():
    x = chainrule.tensor(_rand((3, 2, 4), 0, np.float64), requires_grad=True)
    w = chainrule.tensor(_rand((5, 4), 1, np.float64), requires_grad=True)
    b = chainrule.tensor(_rand(5, 2, np.float64), requires_grad=True)
    fn = chainrule.nn.functional.linear
    assert chainrule.autograd.gradcheck(fn, [x, w, b])
    assert chainrule.autograd.gradgradcheck(fn, [x, w, b])


@pytest.mark.parametrize("bias", [False, True])
def test_linear_folds_a_3d_input_into_one_matrix_product(monkeypatch, bias):
    # the speed path is one GEMM of (rows, features), not one per leading index (torch's graph:
    # addmm / mm of the input viewed as rows)
    shapes = []
    for cls in (linear_ops.Mm, linear_ops.Addmm):
        original = cls.forward

        def recording(ctx, *args, original=original):
            shapes.append(tuple(a.shape for a in args))
            return original(ctx, *args)

        monkeypatch.setattr(cls, "forward", staticmethod(recording))
    x = chainrule.tensor(_rand((35, 20, 8), 0), requires_grad=True)
    w = chainrule.tensor(_rand((6, 8), 1), requires_grad=True)
    b = chainrule.tensor(_rand((6,), 2), requires_grad=True) if bias else None
    chainrule.nn.functional.linear(x, w, b).sum().backward()
    assert shapes == [((6,), (700, 8), (8, 6)) if bias else ((700, 8), (8, 6))]


# ---------------------------------------------------------------- log_softmax
def _log_softmax_numpy(x):
    """The whole-array formula the blocked path must reproduce bit for bit (float32 sums and logs
    as cpu_softmax_order rounds them nearer torch's)."""
    from chainrule.ops import cpu_softmax_order

    out = x - x.max(axis=-1, keepdims=True)
    terms = np.exp(out)
    if x.dtype == np.float32:
        rows = terms.reshape(-1, x.shape[-1])
        out -= cpu_softmax_order.logf(cpu_softmax_order.row_sum(rows)).reshape(x.shape[:-1] + (1,))
    else:
        out -= np.log(np.sum(terms, axis=-1, keepdims=True))
    return out


@pytest.mark.parametrize("shape", [BIG, (3, 7, 1000), (5,), (1, 40000), (40000, 1)])
@pytest.mark.parametrize("requires_grad", [True, False])
def test_log_softmax_last_dim_is_bit_identical_to_the_whole_array_formula(two_threads, shape, requires_grad):
    x = _rand(shape, 0, scale=4.0)
    y = chainrule.log_softmax(chainrule.tensor(x, requires_grad=requires_grad), -1)
    np.testing.assert_array_equal(y.detach().numpy(), _log_softmax_numpy(x))
    assert y.is_contiguous()


def test_log_softmax_of_huge_and_infinite_logits_stays_finite_where_torch_does(two_threads):
    x = _rand(BIG, 0) * 1e4
    x[0, 5] = -np.inf
    x[1, :] = -1e30
    ours = chainrule.log_softmax(chainrule.tensor(x, requires_grad=True), -1).detach().numpy()
    theirs = torch.log_softmax(torch.tensor(x), -1).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-3)


@pytest.mark.parametrize("grad_kind", ["dense", "one_hot", "broadcast"])
def test_log_softmax_backward_from_the_kept_softmax_matches_the_simple_path_and_torch(two_threads, grad_kind):
    x = _rand((3, 100, 1000), 0, np.float64, scale=3.0)
    if grad_kind == "dense":
        g = _rand(x.shape, 1, np.float64)
    elif grad_kind == "one_hot":  # what nll_loss hands back
        g = np.zeros(x.shape)
        g.reshape(-1, 1000)[np.arange(300), np.arange(300) * 7 % 1000] = -1 / 300
    else:
        g = None  # y.sum().backward(): an expanded scalar gradient

    def run(lib, dtype, transposed=False):
        xt = lib.tensor(x.astype(dtype), requires_grad=True)
        # along dim 0 of the transposed array: the same values through the general path
        y = lib.log_softmax(xt.transpose(0, 2), 0).transpose(0, 2) if transposed else lib.log_softmax(xt, -1)
        if g is None:
            y.sum().backward()
        else:
            y.backward(lib.tensor(g.astype(dtype)))
        return y.detach().numpy(), xt.grad.numpy()

    fast, simple = run(chainrule, np.float64), run(chainrule, np.float64, transposed=True)
    for a, s in zip(fast, simple):
        np.testing.assert_allclose(a, s, rtol=1e-10, atol=1e-12)
    ours, theirs = run(chainrule, np.float32), run(torch, np.float32)
    # g - softmax * sum(g) cancels: float32 rounding is relative to the row sums of g
    scale = 1000.0 if g is None else np.abs(g.sum(-1)).max()
    for a, t in zip(ours, theirs):
        np.testing.assert_allclose(a, t, rtol=1e-5, atol=1e-6 * max(scale, 1.0))


def test_log_softmax_backward_reads_the_kept_softmax(monkeypatch):
    calls = []
    original = reduce_ops._log_softmax_backward_block  # one call per block of rows (one block here)
    monkeypatch.setattr(reduce_ops, "_log_softmax_backward_block",
                        lambda *a: calls.append(1) or original(*a))
    x = chainrule.tensor(_rand((4, 6), 0), requires_grad=True)
    chainrule.log_softmax(x, -1).sum().backward()
    chainrule.log_softmax(x, 0).sum().backward()  # not the last dim: the general path
    assert calls == [1]


def test_log_softmax_last_dim_passes_gradcheck_and_gradgradcheck():
    x = chainrule.tensor(_rand((3, 5), 0, np.float64), requires_grad=True)
    fn = lambda t: chainrule.log_softmax(t, -1)  # noqa: E731
    assert chainrule.autograd.gradcheck(fn, [x])
    assert chainrule.autograd.gradgradcheck(fn, [x])


def test_log_softmax_without_grad_keeps_no_softmax():
    x = chainrule.tensor(_rand((4, 6), 0), requires_grad=True)
    with chainrule.no_grad():
        y = chainrule.log_softmax(x, -1)
    assert y.grad_fn is None
    y = chainrule.log_softmax(x, -1)
    assert y.grad_fn.softmax.shape == (4, 6)


# ---------------------------------------------------------------- cross entropy over a vocabulary
CROSS_ENTROPY_CASES = [
    ("mean", {}),
    ("sum", {}),
    ("none", {}),
    ("ignore_index", dict(ignore_index=3)),
    ("label_smoothing", dict(label_smoothing=0.1)),
    ("weights", dict(weight="w")),
    ("weights_smoothing_none", dict(weight="w", label_smoothing=0.2, reduction="none")),
]


@pytest.mark.parametrize("name,kwargs", CROSS_ENTROPY_CASES, ids=[c[0] for c in CROSS_ENTROPY_CASES])
def test_cross_entropy_over_a_large_vocabulary_matches_torch(two_threads, name, kwargs):
    rows, vocab = 300, 1000
    x = _rand((rows, vocab), 0, scale=3.0)
    target = np.random.default_rng(1).integers(0, vocab, rows)
    target[::7] = 3  # some rows at ignore_index
    weight = np.random.default_rng(2).uniform(0.5, 2.0, vocab).astype(np.float32)
    reduction = kwargs.get("reduction", name if name in ("sum", "none") else "mean")

    def run(lib):
        xt = lib.tensor(x, requires_grad=True)
        kw = {k: (lib.tensor(weight) if v == "w" else v) for k, v in kwargs.items() if k != "reduction"}
        loss = lib.nn.functional.cross_entropy(xt, lib.tensor(target), reduction=reduction, **kw)
        loss.backward(lib.tensor(_rand(loss.shape, 3)) if reduction == "none" else None)
        return loss.detach().numpy(), xt.grad.numpy()

    ours, theirs = run(chainrule), run(torch)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name,kwargs", CROSS_ENTROPY_CASES, ids=[c[0] for c in CROSS_ENTROPY_CASES])
def test_cross_entropy_passes_gradcheck_in_float64(name, kwargs):
    x = chainrule.tensor(_rand((6, 5), 0, np.float64), requires_grad=True)
    target = chainrule.tensor(np.array([0, 3, 4, 3, 1, 2]))
    weight = chainrule.tensor(np.linspace(0.5, 2.0, 5))
    reduction = kwargs.get("reduction", name if name in ("sum", "none") else "mean")
    kw = {k: (weight if v == "w" else v) for k, v in kwargs.items() if k != "reduction"}

    def fn(t):
        return chainrule.nn.functional.cross_entropy(t, target, reduction=reduction, **kw)

    assert chainrule.autograd.gradcheck(fn, [x])
    assert chainrule.autograd.gradgradcheck(fn, [x])


# ---------------------------------------------------------------- LSTM layer
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, np.array([5, 2, 6, 1])])
def test_lstm_fused_bptt_matches_autograd_through_the_step_composition(reverse, lengths):
    # the array BPTT (one tanh for all gates, the local derivatives precomputed over the whole
    # sequence) against the plain per-step Tensor ops, every output and every input's gradient
    T, B, I, H = 6, 4, 3, 5
    shapes = ((T, B, I), (4 * H, I), (4 * H, H), (4 * H,), (4 * H,), (B, H), (B, H))
    arrays = [_rand(shape, seed, np.float64) for seed, shape in enumerate(shapes)]
    upstream = [_rand(shape, 10 + seed, np.float64) for seed, shape in enumerate(((T, B, H), (B, H), (B, H)))]

    def run(layer):
        inputs = [chainrule.tensor(a, requires_grad=True) for a in arrays]
        outputs = layer(*inputs)
        chainrule.autograd.backward(outputs, [chainrule.tensor(u) for u in upstream])
        return [o.detach().numpy() for o in outputs], [t.grad.numpy() for t in inputs]

    fused = run(lambda *a: rnn_ops.recurrent_layer("LSTM", *a, reverse=reverse, lengths=lengths))
    steps = run(lambda *a: rnn_ops._layer_steps("LSTM", *a, reverse=reverse, lengths=lengths))
    for a, b in zip(fused[0] + fused[1], steps[0] + steps[1]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_lstm_matches_torch_in_float32_bidirectional_two_layers():
    theirs = torch.nn.LSTM(8, 16, num_layers=2, bidirectional=True)
    ours = chainrule.nn.LSTM(8, 16, num_layers=2, bidirectional=True)
    for name, p in theirs.named_parameters():
        getattr(ours, name)._data[...] = p.detach().numpy()
    x = _rand((12, 5, 8), 0)

    def run(lib, module):
        xt = lib.tensor(x, requires_grad=True)
        out, (h_n, c_n) = module(xt)
        (out.pow(2).sum() + h_n.sum() + 2 * c_n.sum()).backward()
        return [out.detach().numpy(), xt.grad.numpy()] + [p.grad.numpy() for _, p in module.named_parameters()]

    for a, b in zip(run(chainrule, ours), run(torch, theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- the whole language-model step
def _language_model(lib, vocab, emb, hidden):
    nn = lib.nn

    class LanguageModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(vocab, emb)
            self.lstm = nn.LSTM(emb, hidden)
            self.decoder = nn.Linear(hidden, vocab)

        def forward(self, tokens):
            out, _ = self.lstm(self.embedding(tokens))
            return self.decoder(out).reshape(-1, vocab)

    return LanguageModel()


def test_language_model_step_matches_torch(two_threads):
    vocab, emb, hidden, seq, batch = 2000, 16, 32, 9, 20
    theirs = _language_model(torch, vocab, emb, hidden)
    ours = _language_model(chainrule, vocab, emb, hidden)
    for name, p in theirs.named_parameters():
        ours.get_parameter(name)._data[...] = p.detach().numpy()
    tokens = np.random.default_rng(0).integers(0, vocab, (seq + 1, batch))
    tokens[3, :4] = tokens[5, :4]  # repeated tokens: the embedding gradient sums them

    def step(lib, model):
        x, y = lib.tensor(tokens[:-1]), lib.tensor(tokens[1:].reshape(-1))
        loss = lib.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss.item(), {n: p.grad.numpy() for n, p in model.named_parameters()}

    loss_ours, grads_ours = step(chainrule, ours)
    loss_theirs, grads_theirs = step(torch, theirs)
    assert loss_ours == pytest.approx(loss_theirs, rel=1e-6)
    assert grads_ours.keys() == grads_theirs.keys()
    for name in grads_theirs:
        np.testing.assert_allclose(grads_ours[name], grads_theirs[name], rtol=1e-4, atol=1e-7, err_msg=name)
