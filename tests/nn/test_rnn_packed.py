"""nn.utils.rnn (pad/pack/unpack) and recurrent layers on packed batches vs torch: values,
lengths, hidden states at each sequence's own end, and gradients to padded inputs and weights."""

import numpy as np
import pytest

import chainrule
from chainrule.nn.utils import rnn as ours_rnn

torch = pytest.importorskip("torch")
torch_rnn = torch.nn.utils.rnn

LENGTHS = [3, 5, 1, 4]


def _padded(batch_first, seed=0, features=3):
    rng = np.random.default_rng(seed)
    shape = (len(LENGTHS), max(LENGTHS), features) if batch_first else (max(LENGTHS), len(LENGTHS), features)
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("enforce_sorted", [False, True])
def test_pack_then_pad_round_trip_matches_torch(batch_first, enforce_sorted):
    lengths = sorted(LENGTHS, reverse=True) if enforce_sorted else LENGTHS
    x = _padded(batch_first)
    results = []
    for lib, rnn in ((chainrule, ours_rnn), (torch, torch_rnn)):
        xt = lib.tensor(x, requires_grad=True)
        packed = rnn.pack_padded_sequence(xt, lengths, batch_first=batch_first, enforce_sorted=enforce_sorted)
        padded, out_lengths = rnn.pad_packed_sequence(packed, batch_first=batch_first, padding_value=-1.0,
                                                      total_length=6)
        (padded * lib.arange(padded.numel()).reshape(padded.shape).float()).sum().backward()
        results.append((packed, padded, out_lengths, xt.grad))
    (ours, theirs) = results
    np.testing.assert_allclose(ours[0].data.detach().numpy(), theirs[0].data.detach().numpy())
    assert ours[0].batch_sizes.tolist() == theirs[0].batch_sizes.tolist()
    for mine, reference in zip(ours[0][2:], theirs[0][2:]):
        assert (mine is None and reference is None) or mine.tolist() == reference.tolist()
    np.testing.assert_allclose(ours[1].detach().numpy(), theirs[1].detach().numpy())
    assert ours[2].tolist() == theirs[2].tolist() and ours[2].dtype == chainrule.int64
    np.testing.assert_allclose(ours[3].numpy(), theirs[3].numpy())


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_pad_sequence_matches_torch(batch_first, padding_side):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((n, 2)).astype(np.float32) for n in LENGTHS]
    ours = ours_rnn.pad_sequence([chainrule.tensor(a) for a in arrays], batch_first, 7.0, padding_side)
    theirs = torch_rnn.pad_sequence([torch.tensor(a) for a in arrays], batch_first, 7.0, padding_side)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy())
    unpadded = ours_rnn.unpad_sequence(ours, chainrule.tensor(LENGTHS), batch_first) if padding_side == "right" else []
    for piece, array in zip(unpadded, arrays):
        np.testing.assert_allclose(piece.numpy(), array)


def test_pack_sequence_and_unpack_sequence_round_trip():
    arrays = [np.arange(n, dtype=np.float32) for n in LENGTHS]
    packed = ours_rnn.pack_sequence([chainrule.tensor(a) for a in arrays], enforce_sorted=False)
    reference = torch_rnn.pack_sequence([torch.tensor(a) for a in arrays], enforce_sorted=False)
    assert packed.data.tolist() == reference.data.tolist()
    for piece, array in zip(ours_rnn.unpack_sequence(packed), arrays):
        assert piece.tolist() == array.tolist()


def test_pack_errors_match_torch():
    x = chainrule.zeros(5, 4, 2)
    with pytest.raises(RuntimeError, match="must be sorted in decreasing order"):
        ours_rnn.pack_padded_sequence(x, LENGTHS)
    with pytest.raises(RuntimeError, match="greater than 0"):
        ours_rnn.pack_padded_sequence(x, [3, 0, 1, 1])
    packed = ours_rnn.pack_padded_sequence(x, LENGTHS, enforce_sorted=False)
    with pytest.raises(ValueError, match="total_length=2 and max sequence length being 5"):
        ours_rnn.pad_packed_sequence(packed, total_length=2)


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_recurrent_layer_on_packed_batch_matches_torch(mode, bidirectional):
    x = _padded(batch_first=True, seed=2)
    torch.manual_seed(0)
    theirs = getattr(torch.nn, mode)(3, 4, num_layers=2, batch_first=True, bidirectional=bidirectional)
    ours = getattr(chainrule.nn, mode)(3, 4, num_layers=2, batch_first=True, bidirectional=bidirectional)
    for name, p in theirs.named_parameters():
        getattr(ours, name)._data[...] = p.detach().numpy()
    num_states = 4 if bidirectional else 2
    h0 = np.random.default_rng(3).standard_normal((num_states, len(LENGTHS), 4)).astype(np.float32)
    results = []
    for lib, rnn, module in ((chainrule, ours_rnn, ours), (torch, torch_rnn, theirs)):
        xt = lib.tensor(x, requires_grad=True)
        h0t = lib.tensor(h0, requires_grad=True)
        state = (h0t, lib.zeros_like(h0t)) if mode == "LSTM" else h0t
        packed = rnn.pack_padded_sequence(xt, LENGTHS, batch_first=True, enforce_sorted=False)
        output, hidden = module(packed, state)
        padded, _ = rnn.pad_packed_sequence(output, batch_first=True)
        h_n = hidden[0] if mode == "LSTM" else hidden
        extra = hidden[1].square().sum() if mode == "LSTM" else 0
        (padded.sin().sum() + (h_n * h_n).sum() + extra).backward()
        results.append([padded, h_n] + ([hidden[1]] if mode == "LSTM" else [])
                       + [xt.grad, h0t.grad] + [p.grad for _, p in sorted(module.named_parameters())])
    for mine, reference in zip(*results):
        np.testing.assert_allclose(mine.detach().numpy(), reference.detach().numpy(), rtol=1e-4, atol=1e-5)
