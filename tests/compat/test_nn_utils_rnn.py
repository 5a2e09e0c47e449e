"""nn.utils.rnn.pad_sequence / unpad_sequence against torch, gradients included."""

import numpy as np
import pytest
import torch

import chainrule

LENGTHS = (3, 5, 1)


def _sequences(lib):
    rng = np.random.default_rng(0)
    return [lib.tensor(rng.standard_normal((n, 2)).astype(np.float32), requires_grad=True) for n in LENGTHS]


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_pad_sequence_matches_torch_with_gradients(batch_first, padding_side):
    outs = []
    for lib in (chainrule, torch):
        sequences = _sequences(lib)
        padded = lib.nn.utils.rnn.pad_sequence(sequences, batch_first=batch_first, padding_value=-7.0,
                                               padding_side=padding_side)
        weights = lib.tensor(np.arange(padded.numel(), dtype=np.float32).reshape(tuple(padded.shape)))
        (padded * weights).sum().backward()
        outs.append((padded.detach().numpy(), [s.grad.numpy() for s in sequences]))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    for mine, theirs in zip(outs[0][1], outs[1][1]):
        np.testing.assert_array_equal(mine, theirs)


def test_unpad_sequence_inverts_pad_sequence():
    sequences = _sequences(chainrule)
    padded = chainrule.nn.utils.rnn.pad_sequence(sequences)
    for original, recovered in zip(sequences, chainrule.nn.utils.rnn.unpad_sequence(padded, chainrule.tensor(LENGTHS))):
        np.testing.assert_array_equal(original.detach().numpy(), recovered.detach().numpy())


def test_errors_and_skip_init():
    with pytest.raises(RuntimeError, match="empty list"):
        chainrule.nn.utils.rnn.pad_sequence([])
    with pytest.raises(RuntimeError, match=r"size of tensor a \(3\) must match the size of tensor b \(4\)"):
        chainrule.nn.utils.rnn.pad_sequence([chainrule.ones(2, 3), chainrule.ones(2, 4)])
    with pytest.raises(RuntimeError, match="padding_side"):
        chainrule.nn.utils.rnn.pad_sequence([chainrule.ones(2)], padding_side="top")
    layer = chainrule.nn.utils.skip_init(chainrule.nn.Linear, 3, 2)
    assert isinstance(layer, chainrule.nn.Linear) and tuple(layer.weight.shape) == (2, 3)
