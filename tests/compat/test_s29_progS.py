"""Session 29, lane progS: chainrule bugs found around the sequence, audio and forecasting programs
(packed_sequence_tagging, stft_audio_classifier, conformer_block, nbeats_forecasting,
deepar_distributions), each checked against torch 2.13."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

# lengths with many ties, as a collate_fn that sorts by length hands them over
_TIED_LENGTHS = [12, 12, 12, 11, 11, 11, 11, 10, 10, 10, 10, 9, 9, 8, 8, 8, 8, 7, 7, 6, 6, 6, 6, 6, 6, 5, 5,
                 4, 4, 3, 3, 3]


def test_pack_padded_sequence_orders_equal_lengths_as_torch_sort_does():
    # torch sorts the lengths with its unstable sort; argsort's stable order put tied sequences
    # elsewhere in .data, so per-row ops on the packed data (dropout masks) hit other sequences
    lengths = _TIED_LENGTHS[::-1]
    x = np.arange(32 * 12, dtype=np.float32).reshape(32, 12)

    def call(lib):
        packed = lib.nn.utils.rnn.pack_padded_sequence(lib.tensor(x), lib.tensor(lengths), batch_first=True,
                                                       enforce_sorted=False)
        return packed.sorted_indices.tolist(), packed.unsorted_indices.tolist(), packed.data.tolist()

    expected = call(torch)
    assert expected[0] != sorted(range(32), key=lambda i: -lengths[i])  # not the stable order
    assert call(chainrule) == expected


def test_pack_sequence_orders_equal_lengths_as_torch():
    lengths = _TIED_LENGTHS[5:] + _TIED_LENGTHS[:5]

    def call(lib):
        sequences = [lib.full((n,), float(i)) for i, n in enumerate(lengths)]
        packed = lib.nn.utils.rnn.pack_sequence(sequences, enforce_sorted=False)
        return packed.sorted_indices.tolist(), packed.data.tolist()

    assert call(chainrule) == call(torch)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("lengths", [[3, 5, 2], _TIED_LENGTHS[::-1]])
def test_dropout_between_layers_of_a_packed_batch_draws_torch_mask(mode, lengths):
    # torch draws the inter-layer dropout mask over the packed data (one row per real step); a mask
    # drawn over the padded block used other random numbers, so a seeded run trained otherwise
    rng = np.random.RandomState(0)
    x = rng.randn(len(lengths), max(lengths), 3).astype(np.float32)

    def run(lib):
        lib.manual_seed(0)
        rnn = getattr(lib.nn, mode)(3, 4, num_layers=3, bidirectional=True, dropout=0.5, batch_first=True)
        inputs = lib.tensor(x, requires_grad=True)
        packed = lib.nn.utils.rnn.pack_padded_sequence(inputs, lib.tensor(lengths), batch_first=True,
                                                       enforce_sorted=False)
        out, hidden = rnn(packed)
        h = hidden[0] if mode == "LSTM" else hidden
        (out.data.sum() + h.sum()).backward()
        return (out.data.detach().numpy(), h.detach().numpy(), inputs.grad.numpy(),
                rnn.weight_ih_l1.grad.numpy(), lib.rand(1).item())

    expected, actual = run(torch), run(chainrule)
    for want, got in zip(expected[:4], actual[:4]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert actual[4] == expected[4]  # the same number of random draws


def test_packed_output_keeps_the_inputs_permutation_among_equal_lengths():
    # a PackedSequence built by hand with its own order of two equal-length sequences: the output
    # has the input's rows, not a re-sorted order
    data = np.arange(12, dtype=np.float32).reshape(6, 2)

    def run(lib):
        lib.manual_seed(0)
        rnn = lib.nn.RNN(2, 3)
        packed = lib.nn.utils.rnn.PackedSequence(lib.tensor(data), lib.tensor([2, 2, 2]), lib.tensor([1, 0]))
        out, h = rnn(packed)
        return out.data.detach().numpy(), out.sorted_indices.tolist(), h.detach().numpy()

    expected, actual = run(torch), run(chainrule)
    np.testing.assert_allclose(actual[0], expected[0], rtol=1e-6, atol=1e-6)
    assert actual[1] == expected[1]
    np.testing.assert_allclose(actual[2], expected[2], rtol=1e-6, atol=1e-6)
