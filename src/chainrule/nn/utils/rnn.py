"""nn.utils.rnn: padding variable-length sequences into one batch (torch.nn.utils.rnn).

``pad_sequence``/``unpad_sequence`` are compositions of ``pad``, ``stack`` and slicing, so
gradients flow back to every sequence. Packed sequences need the recurrent layers to skip the
padding, which chainrule's RNN/LSTM/GRU do not do yet: the packing functions raise
NotImplementedError naming themselves, instead of being absent.
"""

from __future__ import annotations

from ...ops.shape import stack
from ...tensor import Tensor
from ..functional import pad

__all__ = ["pad_sequence", "unpad_sequence"]

_PACKING = {"PackedSequence", "pack_padded_sequence", "pad_packed_sequence", "pack_sequence", "unpack_sequence"}


def __getattr__(name: str):
    if name in _PACKING:
        raise NotImplementedError(f"chainrule.nn.utils.rnn.{name} is not implemented: chainrule's recurrent "
                                  "layers do not take packed sequences yet; pad with pad_sequence and mask "
                                  "the padded steps instead")
    raise AttributeError(f"module 'chainrule.nn.utils.rnn' has no attribute '{name}'")


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stack tensors of shape (L_i, *) into (L_max, B, *) — (B, L_max, *) with ``batch_first`` —
    filling with ``padding_value`` on the ``padding_side`` ('right' or 'left')."""
    if padding_side not in ("right", "left"):
        raise ValueError(f"Expected padding_side to be one of left or right, but got {padding_side}.")
    sequences = list(sequences.unbind(0)) if isinstance(sequences, Tensor) else list(sequences)
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    trailing = tuple(sequences[0].shape[1:])
    for i, sequence in enumerate(sequences):
        if tuple(sequence.shape[1:]) != trailing:
            raise RuntimeError(f"pad_sequence: every sequence must have the trailing shape {trailing} of the "
                               f"first, but sequence {i} has shape {tuple(sequence.shape)}")
    longest = max(sequence.shape[0] for sequence in sequences)
    padded = []
    for sequence in sequences:
        missing = longest - sequence.shape[0]
        # F.pad lists (begin, end) pairs from the last dim backwards; only dim 0 is padded
        widths = [0, 0] * len(trailing) + ([0, missing] if padding_side == "right" else [missing, 0])
        padded.append(pad(sequence, widths, value=padding_value) if missing else sequence)
    return stack(padded, 1 if not batch_first else 0)


def unpad_sequence(padded_sequences: Tensor, lengths, batch_first: bool = False) -> list:
    """The inverse of ``pad_sequence`` (right padding): the first ``lengths[i]`` steps of each."""
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    lengths = lengths.tolist() if isinstance(lengths, Tensor) else list(lengths)
    return [padded_sequences[i, :int(length)] for i, length in enumerate(lengths)]
