"""Differences from torch found by the programs gru_d_missing_values, han_document_classification
and pspnet_pyramid_pooling and by probing around the APIs they use, each checked against torch."""

import pytest

torch = pytest.importorskip("torch")

import chainrule  # noqa: E402


def _raised(lib, build):
    with pytest.raises(Exception) as info:
        build(lib)
    return type(info.value), str(info.value)


# torch raises these in its own constructors, bare: chainrule's constructor prefix
# ("Dropout2d(p=1.5): ...") must not be put in front of torch's own words
CONSTRUCTOR_REFUSALS = {
    "Dropout p>1": lambda t: t.nn.Dropout(1.5),
    "Dropout2d p>1": lambda t: t.nn.Dropout2d(1.5),
    "Dropout1d p<0": lambda t: t.nn.Dropout1d(-0.1),
    "Dropout3d p>1": lambda t: t.nn.Dropout3d(2),
    "AlphaDropout p>1": lambda t: t.nn.AlphaDropout(2),
    "FeatureAlphaDropout p<0": lambda t: t.nn.FeatureAlphaDropout(-1),
    "GRU dropout>1": lambda t: t.nn.GRU(2, 3, dropout=2),
    "GRU bias int": lambda t: t.nn.GRU(2, 3, bias=1),
    "GRU batch_first None": lambda t: t.nn.GRU(2, 3, batch_first=None),
    "GRU input_size float": lambda t: t.nn.GRU(2.0, 3),
    "GRU input_size 0": lambda t: t.nn.GRU(0, 3),
    "GRU hidden_size float": lambda t: t.nn.GRU(2, 3.0),
    "GRU hidden_size 0": lambda t: t.nn.GRU(2, 0),
    "LSTM num_layers 0": lambda t: t.nn.LSTM(2, 3, num_layers=0),
    "LSTM proj_size negative": lambda t: t.nn.LSTM(2, 3, proj_size=-1),
    "LSTM proj_size too big": lambda t: t.nn.LSTM(2, 3, proj_size=3),
    "RNN nonlinearity": lambda t: t.nn.RNN(2, 3, nonlinearity="gelu"),
    "Embedding padding_idx past the end": lambda t: t.nn.Embedding(4, 2, padding_idx=4),
    "Embedding padding_idx before the start": lambda t: t.nn.Embedding(4, 2, padding_idx=-5),
    "Embedding _weight shape": lambda t: t.nn.Embedding(4, 2, _weight=t.zeros(3, 2)),
    "EmbeddingBag padding_idx": lambda t: t.nn.EmbeddingBag(3, 2, padding_idx=3),
    "EmbeddingBag _weight shape": lambda t: t.nn.EmbeddingBag(3, 2, _weight=t.zeros(2, 2)),
}


@pytest.mark.parametrize("case", sorted(CONSTRUCTOR_REFUSALS))
def test_constructor_refusals_in_torchs_bare_words(case):
    build = CONSTRUCTOR_REFUSALS[case]
    assert _raised(chainrule, build) == _raised(torch, build)


def test_a_deep_constructor_error_still_names_the_call():
    # the prefix stays where torch's words do not say which call failed (an empty() deep inside)
    _, message = _raised(chainrule, lambda t: t.nn.Linear(-1, 2))
    assert message.startswith("Linear(in_features=-1, out_features=2): ")
    assert message.endswith(_raised(torch, lambda t: t.nn.Linear(-1, 2))[1])


@pytest.mark.parametrize("weights_only", [True, False])
def test_load_of_an_unrewound_buffer_is_an_eoferror_as_torchs(weights_only):
    # han_document_classification's checkpoint round trip, without the buffer.seek(0)
    import io

    raised = {}
    for lib in (torch, chainrule):
        buffer = io.BytesIO()
        lib.save({"epoch": 1, "weight": lib.ones(2)}, buffer)
        with pytest.raises(Exception) as info:
            lib.load(buffer, weights_only=weights_only)
        raised[lib] = info.value
    assert type(raised[torch]) is EOFError
    # caught by torch's class, and by the RuntimeError every other unreadable file raises
    assert isinstance(raised[chainrule], EOFError) and isinstance(raised[chainrule], RuntimeError)
    assert "seek(0)" in str(raised[chainrule])


def test_load_of_an_empty_file_is_an_eoferror_as_torchs(tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    for lib in (torch, chainrule):
        with pytest.raises(EOFError):
            lib.load(empty)
    with pytest.raises(EOFError, match="empty.pt' is empty"):
        chainrule.load(empty)


def _packed_run(lib, mode, enforce_sorted, bidirectional):
    lib.manual_seed(0)
    rnn = getattr(lib.nn, mode)(2, 3, bidirectional=bidirectional)
    x = lib.randn(4, 3, 2, requires_grad=True)
    lengths = [4, 3, 2] if enforce_sorted else [2, 4, 3]
    packed = lib.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=enforce_sorted)
    output, hidden = rnn(packed)
    states = hidden if mode == "LSTM" else (hidden,)
    (output.data.sum() + sum(s.pow(2).sum() for s in states)).backward()
    return output, states, x.grad


@pytest.mark.parametrize("mode", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("enforce_sorted", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_recurrent_nodes_are_named_as_torchs(mode, enforce_sorted, bidirectional):
    # han_document_classification's bidirectional GRU on pack_padded_sequence(enforce_sorted=False)
    ours = _packed_run(chainrule, mode, enforce_sorted, bidirectional)
    theirs = _packed_run(torch, mode, enforce_sorted, bidirectional)
    assert ours[0].data.grad_fn.name() == theirs[0].data.grad_fn.name() == "CatBackward0"
    assert [s.grad_fn.name() for s in ours[1]] == [s.grad_fn.name() for s in theirs[1]]
    torch.testing.assert_close(torch.from_numpy(ours[0].data.detach().numpy()), theirs[0].data.detach())
    for mine, reference in zip(ours[1], theirs[1]):
        torch.testing.assert_close(torch.from_numpy(mine.detach().numpy()), reference.detach())
    torch.testing.assert_close(torch.from_numpy(ours[2].numpy()), theirs[2])


@pytest.mark.parametrize("input_shape,weight_shape", [((), (4, 1)), ((), (4,)), ((3,), ()), ((), ()), ((2, 3), ())])
@pytest.mark.parametrize("with_bias", [False, True])
def test_linear_of_a_0d_argument_is_refused_in_torchs_words(input_shape, weight_shape, with_bias):
    # GRU-D's F.linear(input, mask.mul(weight), bias), called on a 0-d tensor
    def call(lib):
        bias = lib.ones(4) if with_bias else None
        return lib.nn.functional.linear(lib.ones(input_shape), lib.ones(weight_shape), bias)

    assert _raised(chainrule, call) == _raised(torch, call)


def test_linear_of_empty_features_still_sums_to_the_bias():
    for lib in (torch, chainrule):
        out = lib.nn.functional.linear(lib.ones(0), lib.ones(4, 0), lib.arange(4.0))
        assert out.tolist() == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.parametrize("args", ["tensor", "list of one", "triple"])
def test_packed_sequence_without_batch_sizes_asserts_as_torch(args):
    # the HAN tutorial's PackedSequence(data=..., batch_sizes=...) with batch_sizes left out
    def build(lib):
        data = {"tensor": lib.zeros(3), "list of one": [lib.zeros(3)],
                "triple": (lib.zeros(3), lib.tensor([2, 1]), 1)}[args]
        return lib.nn.utils.rnn.PackedSequence(data)

    assert _raised(chainrule, build) == _raised(torch, build)
    pair = chainrule.nn.utils.rnn.PackedSequence((chainrule.zeros(3), chainrule.tensor([2, 1])))
    assert pair.batch_sizes.tolist() == [2, 1]


def _unpad(lib, leaf):
    x = lib.arange(6.0, requires_grad=True)
    padded = x.view(3, 2).detach().requires_grad_() if leaf else x.view(3, 2) * 1
    pieces = lib.nn.utils.rnn.unpad_sequence(padded, lib.tensor([3, 1]))
    (pieces[0].sum() * 2 + pieces[1].sum()).backward()
    return pieces, padded, x


def test_unpad_sequence_transposes_the_callers_tensor_in_place_as_torch():
    (ours, ours_padded, ours_x), (theirs, theirs_padded, theirs_x) = _unpad(chainrule, False), _unpad(torch, False)
    # torch's transpose_ leaves the caller's (time, batch) tensor batch-first
    assert tuple(ours_padded.shape) == tuple(theirs_padded.shape) == (2, 3)
    assert [p.grad_fn.name() for p in ours] == [p.grad_fn.name() for p in theirs] == ["IndexBackward0"] * 2
    assert [p.tolist() for p in ours] == [p.tolist() for p in theirs]
    assert ours_x.grad.tolist() == theirs_x.grad.tolist()


def test_unpad_sequence_of_a_leaf_that_requires_grad_is_refused_as_torch():
    assert _raised(chainrule, lambda lib: _unpad(lib, True)) == _raised(torch, lambda lib: _unpad(lib, True))
