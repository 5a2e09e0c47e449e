"""Session 44, lane progBT (electra_albert, dkt_knowledge_tracing, vnet_conv3d): fixes found while
probing the ops around the lane's programs, each checked against torch 2.13 on the same inputs."""

import math

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

INF = math.inf
VALUES = [[0.0, 1.0, -2.0], [3.0, 0.0, INF]]


def _grads(lib, reduce, **grad_kwargs):
    """autograd.grad of ``reduce(x)`` with respect to x: the gradient (None or a list), or the refusal."""
    x = lib.tensor(VALUES, requires_grad=True)
    try:
        (grad,) = lib.autograd.grad(reduce(lib, x), x, **grad_kwargs)
    except RuntimeError as error:
        return ("RuntimeError", str(error))
    return None if grad is None else grad.tolist()


ORD0_REDUCTIONS = {
    "norm p=0": lambda lib, x: lib.norm(x, p=0),
    "norm p=0 dim": lambda lib, x: lib.norm(x, p=0, dim=1).sum(),
    "vector_norm ord=0 dims keepdim": lambda lib, x: lib.linalg.vector_norm(x, 0, (0, 1), True).sum(),
    "Tensor.norm(0, 0)": lambda lib, x: x.norm(0, 0).sum(),
    "linalg.norm ord=0": lambda lib, x: lib.linalg.norm(x.flatten(), 0),
}


@pytest.mark.parametrize("grad_kwargs", [{}, {"allow_unused": True}, {"allow_unused": True, "materialize_grads": True}],
                         ids=["plain", "allow_unused", "materialize_grads"])
@pytest.mark.parametrize("reduction", list(ORD0_REDUCTIONS))
def test_zero_norm_gives_no_gradient(reduction, grad_kwargs):
    """The 0-"norm" counts nonzeros; torch's backward gives an undefined gradient: autograd.grad calls
    the input unused (None with allow_unused, zeros when materialised). chainrule returned 0 * x, a
    gradient of zeros, NaN where x is inf."""
    reduce = ORD0_REDUCTIONS[reduction]
    assert _grads(chainrule, reduce, **grad_kwargs) == _grads(torch, reduce, **grad_kwargs)


def test_zero_norm_beside_other_terms_leaves_their_gradient():
    def backward(lib):
        x = lib.tensor(VALUES, requires_grad=True)
        (lib.norm(x, p=0) + 2 * x[0, 1]).backward()
        return x.grad.tolist()

    assert backward(chainrule) == backward(torch) == [[0.0, 2.0, 0.0], [0.0, 0.0, 0.0]]


@pytest.mark.parametrize("batched", [False, True])
def test_cdist_p0_gradient_is_zeros(batched):
    """torch's cdist backward gives zeros for p = 0 (a count): kept when the 0-norm's own rule stopped
    giving a gradient, and zeros, not NaN, where a coordinate is inf."""
    def run(lib):
        a = lib.tensor([[0.0, 1.0], [2.0, INF]], requires_grad=True)
        b = lib.tensor([[1.0, 1.0], [0.0, 5.0], [2.0, 2.0]], requires_grad=True)
        out = lib.cdist(a[None].expand(2, 2, 2), b[None], p=0) if batched else lib.cdist(a, b, p=0)
        grads = lib.autograd.grad((out * lib.arange(1.0, 1.0 + out.numel()).view(out.shape)).sum(), (a, b))
        return out.tolist(), type(out.grad_fn).__name__, [g.tolist() for g in grads]

    assert run(chainrule) == run(torch)


NUC_CASES = [((2, 3, 4), {}), ((2, 3, 4), {"keepdim": True}), ((2, 3, 4), {"dim": 1}),
             ((2, 3, 4), {"dim": (0, 1, 2)}), ((3,), {}), ((), {}), ((3,), {"dim": 0}),
             ((3, 4), {}), ((2, 3, 4), {"dim": (0, 2)}), ((3, 4), {"dim": (1, 0), "keepdim": True})]


@pytest.mark.parametrize("shape, kwargs", NUC_CASES, ids=[f"{s}-{k}" for s, k in NUC_CASES])
def test_norm_nuc_takes_torchs_dims(shape, kwargs):
    """torch.norm(p="nuc") takes all dims when none are given, so a 3-d input is refused (chainrule
    took the last two), and names a one-dim ``dim`` as torch prints it ("Got 1", not "Got (1,)")."""
    x = np.arange(1.0, 1.0 + math.prod(shape)).reshape(shape) % 5

    def run(lib):
        try:
            return lib.norm(lib.tensor(x), p="nuc", **kwargs).double().numpy()
        except RuntimeError as error:
            return str(error)

    expected, got = run(torch), run(chainrule)
    if isinstance(expected, str):
        assert got == expected
    else:  # an SVD's last bits
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        assert got.shape == expected.shape


# ---------------------------------------------------------------- probed around electra_albert
BCE_WITH_LOGITS_CALLS = {
    "plain": lambda lib, z, y: lib.nn.functional.binary_cross_entropy_with_logits(z, y),
    "pos_weight": lambda lib, z, y: lib.nn.functional.binary_cross_entropy_with_logits(z, y, pos_weight=lib.ones(4)),
    "weight, none": lambda lib, z, y: lib.nn.functional.binary_cross_entropy_with_logits(
        z, y, weight=lib.ones(4), reduction="none"),
    "float64 input": lambda lib, z, y: lib.nn.functional.binary_cross_entropy_with_logits(z.double(), y),
    "module": lambda lib, z, y: lib.nn.BCEWithLogitsLoss()(z, y),
    "int target": lambda lib, z, y: lib.nn.functional.binary_cross_entropy_with_logits(z, y.int()),
}


@pytest.mark.parametrize("call", list(BCE_WITH_LOGITS_CALLS))
def test_bce_with_logits_refuses_a_bool_target_as_torch(call):
    """ELECTRA's ``is_replaced`` mask passed without ``.float()``: torch's loss starts with ``1 - target``
    and refuses the bool tensor there; chainrule raised the cast error meant for integer targets."""
    def run(lib):
        z = lib.tensor(np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4))
        y = lib.tensor(np.arange(12).reshape(3, 4) % 3 == 0)
        with pytest.raises(RuntimeError) as caught:
            BCE_WITH_LOGITS_CALLS[call](lib, z, y)
        return str(caught.value)

    assert run(chainrule) == run(torch)


@pytest.mark.parametrize("build", [
    lambda lib: lib.nn.TransformerEncoderLayer(8, 2, 16, 0.0, activation="tanh", batch_first=True),
    lambda lib: lib.nn.TransformerDecoderLayer(8, 2, activation="tanh"),
    lambda lib: lib.nn.Transformer(8, 2, activation="tanh"),
], ids=["encoder layer", "decoder layer", "transformer"])
def test_transformer_activation_refusal_in_torchs_words(build):
    """torch raises "activation should be relu/gelu, not tanh" bare from the constructor; chainrule's
    constructor wrapper prefixed it with the layer and its arguments."""
    def message(lib):
        with pytest.raises(RuntimeError) as caught:
            build(lib)
        return str(caught.value)

    assert message(chainrule) == message(torch) == "activation should be relu/gelu, not tanh"


# ---------------------------------------------------------------- probed around dkt_knowledge_tracing
def _pack_and_unpack(lib, lengths, batch_first, enforce_sorted=False):
    """pack_padded_sequence -> LSTM -> pad_packed_sequence, with the input's gradient; or the refusal."""
    x = np.arange(60, dtype=np.float32).reshape(4, 5, 3) / 60
    if not batch_first:
        x = np.ascontiguousarray(x.transpose(1, 0, 2))
    lib.manual_seed(0)
    lstm = lib.nn.LSTM(3, 2, batch_first=batch_first)
    inputs = lib.tensor(x, requires_grad=True)
    rnn = lib.nn.utils.rnn
    try:
        packed = rnn.pack_padded_sequence(inputs, lengths(lib), batch_first=batch_first, enforce_sorted=enforce_sorted)
    except (RuntimeError, IndexError) as error:
        return type(error).__name__, str(error)
    out, (h, _) = lstm(packed)
    padded, out_lengths = rnn.pad_packed_sequence(out, batch_first=batch_first)
    (padded.sum() + h.sum()).backward()
    return ([packed.data.tolist(), packed.batch_sizes.tolist(), packed.sorted_indices.tolist(),
             packed.unsorted_indices.tolist(), out_lengths.tolist(), inputs.grad.tolist()],
            [np.asarray(padded.tolist()), np.asarray(h.tolist())])


PACK_LENGTHS = {
    "fewer lengths (tensor)": lambda lib: lib.tensor([3, 5, 2]),
    "fewer lengths (list)": lambda lib: [2, 4],
    "one length": lambda lib: lib.tensor([4]),
    "2-d lengths": lambda lib: lib.tensor([[3, 5, 2, 4]]),
    "2-d list": lambda lib: [[3], [5], [2], [4]],
    "more lengths": lambda lib: lib.tensor([3, 5, 2, 4, 1]),
}


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("lengths", list(PACK_LENGTHS))
def test_pack_padded_sequence_unsorted_takes_lengths_as_torch(lengths, batch_first):
    """With enforce_sorted=False torch sorts the lengths and index_selects the batch by the sort's
    indices before its checks: fewer lengths than sequences pack the first len(lengths) sequences
    (chainrule refused them), and 2-d lengths meet index_select's IndexError (chainrule raised the
    RuntimeError that torch raises with enforce_sorted=True)."""
    expected = _pack_and_unpack(torch, PACK_LENGTHS[lengths], batch_first)
    got = _pack_and_unpack(chainrule, PACK_LENGTHS[lengths], batch_first)
    if isinstance(expected[0], str):
        assert got == expected
    else:
        assert got[0][:5] == expected[0][:5]
        np.testing.assert_allclose(got[0][5], expected[0][5], rtol=1e-5, atol=1e-6)
        for a, b in zip(got[1], expected[1]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("lengths", ["fewer lengths (tensor)", "2-d lengths"])
def test_pack_padded_sequence_sorted_refusals_unchanged(lengths):
    assert (_pack_and_unpack(chainrule, PACK_LENGTHS[lengths], True, enforce_sorted=True)
            == _pack_and_unpack(torch, PACK_LENGTHS[lengths], True, enforce_sorted=True))


# ---------------------------------------------------------------- probed around vnet_conv3d
@pytest.mark.parametrize("weight_shape", [(2,), (4,), (3,), (1, 3), (3, 1)])
@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4), (2, 3, 4, 2), (2, 3, 2, 2, 2)])
def test_class_weight_count_checked_as_torch(shape, fn, reduction, weight_shape):
    """An input of three or more dims goes through torch's nll_loss2d, which only counts the
    weights ("weight tensor should be defined either for all or no classes", and a (1, C) weight
    passes); 1-d and 2-d inputs keep nll_loss's longer message. chainrule gave the longer one to all."""
    def run(lib):
        x = lib.tensor(np.linspace(-1, 1, math.prod(shape), dtype=np.float32).reshape(shape), requires_grad=True)
        target = lib.tensor(np.arange(math.prod((shape[0],) + shape[2:])).reshape((shape[0],) + shape[2:]) % 3)
        weight = lib.arange(1.0, 1.0 + math.prod(weight_shape)).reshape(weight_shape)
        try:
            out = getattr(lib.nn.functional, fn)(x, target, weight=weight, reduction=reduction)
        except RuntimeError as error:
            return str(error)
        out.sum().backward()
        return np.asarray(out.tolist()), np.asarray(x.grad.tolist())

    expected, got = run(torch), run(chainrule)
    if isinstance(expected, str):
        assert got == expected
    else:
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("weights_dtype", ["float32", "float64"])
def test_bincount_of_weights_that_require_grad_records_torchs_node(weights_dtype):
    """dkt's per-skill counts: torch.bincount(skills, weights=w) with w requiring grad records
    torch's NotImplemented node (its result requires grad) whose backward raises; chainrule's result
    had no graph, so backward complained that nothing required grad."""
    def run(lib):
        w = lib.tensor(np.linspace(0, 1, 8), dtype=getattr(lib, weights_dtype), requires_grad=True)
        out = lib.bincount(lib.tensor([3, 1, 4, 1, 5, 9, 2, 6]), weights=w, minlength=12)
        with lib.no_grad():
            untracked = lib.bincount(lib.tensor([1, 2]), weights=w[:2])
        with pytest.raises(RuntimeError) as caught:
            out.sum().backward()
        return (out.tolist(), str(out.dtype).split(".")[1], out.requires_grad, out.grad_fn.name(),
                untracked.requires_grad, str(caught.value))

    assert run(chainrule) == run(torch)


@pytest.mark.parametrize("bad", [INF, math.nan])
@pytest.mark.parametrize("foreach", [None, True, False])
def test_clip_grad_norm_of_a_nonfinite_gradient_is_silent_as_torch(bad, foreach):
    """clip_grad_norm_'s rescale of an inf gradient is inf * 0 = NaN: silent in torch, where
    chainrule's array multiply let NumPy's "invalid value encountered in multiply" through."""
    import warnings

    def run(lib):
        p = lib.nn.Parameter(lib.zeros(3))
        p.grad = lib.tensor([bad, 1.0, -2.0])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            total = lib.nn.utils.clip_grad_norm_([p], 1.0, foreach=foreach)
        return str(total.item()), [str(v) for v in p.grad.tolist()]

    assert run(chainrule) == run(torch)


def _packed_rnn_with_initial_state(lib, mode, hidden_batch, bidirectional):
    lib.manual_seed(0)
    sequences = [np.linspace(0, 1, 6).reshape(3, 2), np.linspace(1, 2, 10).reshape(5, 2), np.ones((1, 2))]
    rnn = getattr(lib.nn, mode)(2, 4, bidirectional=bidirectional)
    directions = 2 if bidirectional else 1
    h = lib.tensor(np.linspace(-1, 1, directions * hidden_batch * 4, dtype=np.float32).reshape(
        directions, hidden_batch, 4), requires_grad=True)
    hx = (h, h * 2) if mode == "LSTM" else h
    packed = lib.nn.utils.rnn.pack_sequence([lib.tensor(s, dtype=lib.float32) for s in sequences], enforce_sorted=False)
    try:
        out, hn = rnn(packed, hx)
    except RuntimeError as error:
        return str(error)
    hn = hn[0] if mode == "LSTM" else hn
    (out.data.sum() + hn.sum()).backward()
    return [np.asarray(out.data.tolist()), np.asarray(hn.tolist()), np.asarray(h.grad.tolist())]


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("hidden_batch", [1, 2, 3, 5])
@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_unsorted_packed_rnn_permutes_its_initial_state_first_as_torch(mode, hidden_batch, bidirectional):
    """torch's permute_hidden index_selects hx by the packed batch's sorted_indices before checking
    it: a state for fewer sequences meets that kernel's "INDICES element is out of DATA bounds" and
    one for more keeps the batch's first; chainrule checked the size first ("Expected hidden[0] size")."""
    expected = _packed_rnn_with_initial_state(torch, mode, hidden_batch, bidirectional)
    got = _packed_rnn_with_initial_state(chainrule, mode, hidden_batch, bidirectional)
    if isinstance(expected, str):
        assert got == expected
    else:
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
