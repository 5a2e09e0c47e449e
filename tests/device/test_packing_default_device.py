"""Packing sequences under ``set_default_device('cuda')`` (tests/programs/packed_sequence_tagging on the
stand-in): batch_sizes and the padded lengths stay on the CPU, as torch's, whatever the default device."""

from __future__ import annotations

import numpy as np

import chainrule
from chainrule.nn.utils.rnn import pack_padded_sequence, pack_sequence, pad_packed_sequence


def test_packing_under_a_cuda_default_device_keeps_batch_sizes_on_the_cpu(cuda):
    chainrule.set_default_device("cuda")
    sequences = [chainrule.tensor([5.0, 6.0, 7.0, 8.0]), chainrule.tensor([9.0, 10.0]), chainrule.tensor([11.0, 12.0, 13.0])]
    packed = pack_sequence(sequences, enforce_sorted=False)
    assert packed.data.device.type == "cuda" and packed.batch_sizes.device.type == "cpu"
    padded, lengths = pad_packed_sequence(packed, batch_first=True, padding_value=-1)
    assert padded.device.type == "cuda" and lengths.device.type == "cpu"
    np.testing.assert_array_equal(padded.cpu().numpy(), [[5, 6, 7, 8], [9, 10, -1, -1], [11, 12, 13, -1]])
    np.testing.assert_array_equal(lengths.numpy(), [4, 2, 3])
    # a CPU batch packs on the CPU although the default device is cuda
    batch = chainrule.zeros(2, 3, device="cpu")
    assert pack_padded_sequence(batch, [3, 1], batch_first=True).data.device.type == "cpu"


def test_unpacking_on_the_device_cuts_each_row_there(cuda):
    from chainrule.nn.utils.rnn import unpack_sequence, unpad_sequence

    sequences = [chainrule.tensor([5.0, 6.0, 7.0], device="cuda"), chainrule.tensor([9.0], device="cuda")]
    pieces = unpack_sequence(pack_sequence(sequences, enforce_sorted=False))
    assert [p.device.type for p in pieces] == ["cuda", "cuda"]
    assert [p.cpu().tolist() for p in pieces] == [[5.0, 6.0, 7.0], [9.0]]
    padded = chainrule.tensor([[1.0, 2.0], [3.0, 0.0]], device="cuda")  # (time, batch)
    assert [p.cpu().tolist() for p in unpad_sequence(padded, chainrule.tensor([2, 1]))] == [[1.0, 3.0], [2.0]]
