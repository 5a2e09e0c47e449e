"""nn.utils.rnn: variable-length batches for recurrent layers, as torch.nn.utils.rnn.

A ``PackedSequence`` holds the time steps of a batch of sequences sorted by decreasing length,
concatenated step by step: ``data[offset_t : offset_t + batch_sizes[t]]`` are the sequences still
running at step t. Packing and unpacking record torch's graphs (PackPaddedSequenceBackward0 after
an IndexSelectBackward0 that sorts the batch; a chain of CopySlices, one per run of steps with one
batch size), so gradients flow back to the padded tensors; padding positions receive none.
"""

from __future__ import annotations

import builtins
import math
from typing import NamedTuple

import numpy as np

from ... import _dtype
from ..._backend import array_module, broadcast_refusal
from ...autograd.function import ctx_value
from ...ops.creation import full, tensor
from ...ops.index import Index
from ...ops.reduce import _unstable_order
from ...ops.shape import cat
from ...tensor import Tensor

__all__ = ["PackedSequence", "invert_permutation", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence", "unpad_sequence",
           "pack_sequence", "unpack_sequence"]


class _PackedSequenceFields(NamedTuple):
    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None
    unsorted_indices: Tensor | None


class PackedSequence(_PackedSequenceFields):
    """torch.nn.utils.rnn.PackedSequence: ``data`` (sum of lengths, *), ``batch_sizes`` (max length,)
    int64, and the permutation from the caller's batch order to decreasing length
    (``sorted_indices``) and back (``unsorted_indices``), both None when the batch came sorted.

    ``unsorted_indices`` left out is the inverse of ``sorted_indices``; ``data`` may be the pair
    ``(data, batch_sizes)`` when ``batch_sizes`` is left out, as torch's. Conversions (``to``,
    ``double``, ``cpu``, ...) convert ``data`` and move the permutations with it; ``batch_sizes``
    stays where it is, as torch keeps it on the CPU."""

    __slots__ = ()

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is None:
            if not (isinstance(data, (list, tuple)) and len(data) == 2):
                # torch asserts it (an AssertionError, in these words)
                raise AssertionError("Expected data to be a list or tuple of length 2")
            data, batch_sizes = data
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs) -> PackedSequence:
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        # the permutations follow data's device, keeping their own dtype
        options = {key: value for key, value in kwargs.items() if key not in ("device", "dtype")}
        return type(self)(data, self.batch_sizes, *(None if index is None else index.to(data.device, **options)
                                                    for index in (self.sorted_indices, self.unsorted_indices)))

    def cpu(self, *args, **kwargs) -> PackedSequence:
        return self.to(*args, device="cpu", **kwargs)

    def cuda(self, *args, **kwargs) -> PackedSequence:
        return self.to(*args, device="cuda", **kwargs)

    def pin_memory(self) -> PackedSequence:
        return type(self)(self.data.pin_memory(), self.batch_sizes,
                          *(None if index is None else index.pin_memory()
                            for index in (self.sorted_indices, self.unsorted_indices)))

    def double(self) -> PackedSequence:
        return self.to(dtype=_dtype.float64)

    def float(self) -> PackedSequence:
        return self.to(dtype=_dtype.float32)

    def half(self) -> PackedSequence:
        return self.to(dtype=_dtype.float16)

    def long(self) -> PackedSequence:
        return self.to(dtype=_dtype.int64)

    def int(self) -> PackedSequence:
        return self.to(dtype=_dtype.int32)

    def short(self) -> PackedSequence:
        return self.to(dtype=_dtype.int16)

    def char(self) -> PackedSequence:
        return self.to(dtype=_dtype.int8)

    def byte(self) -> PackedSequence:
        return self.to(dtype=_dtype.uint8)

    @property
    def is_cuda(self) -> bool:
        return self.data.is_cuda

    def is_pinned(self) -> bool:
        return self.data.is_pinned()


def invert_permutation(permutation: Tensor | None) -> Tensor | None:
    """The permutation that undoes ``permutation`` (None stays None). torch.nn.utils.rnn.invert_permutation."""
    if permutation is None:
        return None
    return permutation.argsort()


def _lengths_array(lengths) -> np.ndarray:
    # torch first makes any lengths a CPU int64 tensor, so its complaint always says "Long"
    array = np.asarray(lengths._data if isinstance(lengths, Tensor) else list(lengths), dtype=np.int64)
    if array.ndim != 1:
        raise RuntimeError(f"'lengths' argument should be a 1D CPU int64 tensor, but got {array.ndim}D cpu Long tensor")
    return array


def _sorted_positions(sequence: PackedSequence) -> np.ndarray:
    """For each batch entry in the caller's order, its position in the length-sorted batch."""
    batch_size = int(sequence.batch_sizes.cpu()._data[0]) if sequence.batch_sizes.numel() else 0
    if sequence.unsorted_indices is None:
        return np.arange(batch_size)
    return np.asarray(sequence.unsorted_indices.cpu()._data, dtype=np.int64)  # (moved with .to(device))


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """torch.nn.utils.rnn.pack_padded_sequence: ``input`` (T, B, *) or (B, T, *) with
    ``batch_first``, ``lengths`` (B,) a list or CPU int64 tensor. With ``enforce_sorted=False``
    the batch may come in any order; it is sorted here and the permutation recorded."""
    if isinstance(lengths, Tensor) and lengths.device.type != "cpu":  # torch reads them on the host only
        raise RuntimeError(f"'lengths' argument should be a 1D CPU int64 tensor, but got {lengths.dim()}D "
                           f"{lengths.device} Long tensor")
    if not enforce_sorted and np.ndim(lengths._data if isinstance(lengths, Tensor) else lengths) >= 2:
        # torch sorts them (along the last dim) and index_selects the batch with the indices first
        raise IndexError("index_select(): Index is supposed to be a vector")
    lengths_np = _lengths_array(lengths)
    if input.dim() < 2:  # torch's transpose(0, 1) or index_select(1, ...) of the input says it
        raise IndexError("Dimension specified as 1 but tensor has no dimensions" if input.dim() == 0 else
                         "Dimension out of range (expected to be in range of [-1, 0], but got 1)")
    if input.numel() == 0:
        raise RuntimeError("Cannot pack empty tensors.")
    batch_dim = 0 if batch_first else 1
    batch = input.shape[batch_dim]
    if len(lengths_np) > batch and not enforce_sorted:  # torch's index_select of the sorted batch meets it
        if batch_first:  # (its kernel along dim 0 says it in other words)
            raise IndexError("index out of range in self")
        beyond = _unstable_order(lengths_np.astype(np.int64), 0, descending=True)
        raise RuntimeError(f"INDICES element is out of DATA bounds, id={beyond[beyond >= batch][0]} "
                           f"axis_dim={batch}")
    # with fewer lengths than sequences and enforce_sorted=False, torch's index_select of the sorted
    # batch keeps the first len(lengths) sequences, and packs those
    if len(lengths_np) != batch and (enforce_sorted or len(lengths_np) > batch):
        raise RuntimeError(f"Expected `len(lengths)` to be equal to batch_size, but got {len(lengths_np)} "
                           f"(batch_size={batch})")
    if len(lengths_np) and lengths_np.min() <= 0:
        raise RuntimeError("Length of all samples has to be greater than 0, but found an element in 'lengths' "
                           "that is <= 0")
    if enforce_sorted:
        if np.any(np.diff(lengths_np) > 0):
            raise RuntimeError("`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. "
                               "You can pass `enforce_sorted=False` to pack_padded_sequence and/or pack_sequence "
                               "to sidestep this requirement if you do not need ONNX exportability.")
        order = np.arange(len(lengths_np))
        sorted_indices = unsorted_indices = None
    else:
        # torch sorts by its unstable sort, whose order among equal lengths is not argsort's
        order = _unstable_order(lengths_np.astype(np.int64), 0, descending=True)
        # on the CPU whatever the default device (torch's follow the input to its device: reading
        # them back here would then cost a host transfer)
        sorted_indices = tensor(order, dtype=_dtype.int64, device="cpu")
        unsorted_indices = tensor(np.argsort(order), dtype=_dtype.int64, device="cpu")
    steps = int(lengths_np.max()) if len(lengths_np) else 0
    sorted_lengths = lengths_np[order]
    batch_sizes = (sorted_lengths[None, :] > np.arange(steps)[:, None]).sum(1)
    if sorted_indices is not None:  # torch sorts the batch first, a node of its own (IndexSelectBackward0)
        input = input.index_select(batch_dim, sorted_indices.to(input.device))
    # step-major order of (time, sequence) pairs that are not padding; torch does not check a length
    # against the padded length: its batch sizes count the steps beyond it, its data stops at it
    padded_steps = builtins.min(steps, input.shape[1 - batch_dim])
    time_index = np.repeat(np.arange(padded_steps), batch_sizes[:padded_steps])
    batch_index = np.concatenate([np.arange(n) for n in batch_sizes[:padded_steps]]) if padded_steps else \
        np.zeros(0, np.int64)
    xp = array_module(input._data)
    rows, steps_index = xp.asarray(batch_index), xp.asarray(time_index)
    data = PackPaddedSequence.apply(input, key=(rows, steps_index) if batch_first else (steps_index, rows),
                                    mode="assign", batch_first=batch_first, batch_sizes=batch_sizes)
    # batch_sizes live on the CPU whatever the data's device, as torch's
    return PackedSequence(data, tensor(batch_sizes, dtype=_dtype.int64, device="cpu"), sorted_indices,
                          unsorted_indices)


class PackPaddedSequence(Index):
    """The packed rows of a padded batch sorted by decreasing length: torch's
    ``_pack_padded_sequence`` (its node PackPaddedSequenceBackward0), an index read of distinct
    (step, sequence) pairs."""

    node_name = "PackPaddedSequenceBackward0"
    label = "pack_padded_sequence"
    rule = "places each packed row's gradient at its (step, sequence) position of the padded input, zeros at the padding"
    host_params = frozenset({"batch_sizes"})  # kept on the CPU, as torch's
    saved_attributes = {"_saved_batch_first": ctx_value("batch_first"),
                        "_saved_input_sym_sizes": ctx_value("shape", tuple),
                        "_saved_result1": ctx_value("batch_sizes", lambda sizes: tensor(sizes, dtype=_dtype.int64),
                                                    tensor=True)}

    @staticmethod
    def forward(ctx, x, key, mode, batch_first, batch_sizes):
        ctx.batch_first, ctx.batch_sizes = batch_first, batch_sizes
        return Index.forward(ctx, x, key, mode)


def _refuse_short_data(batch_sizes: np.ndarray, data: Tensor) -> None:
    """torch's error for packed data holding fewer rows than its batch sizes count (what
    pack_padded_sequence makes of a length beyond the padded length): its unpacking views the rows
    of each run of steps with one batch size as (steps, batch size, *), and the first run the
    data cannot fill fails that view."""
    if int(batch_sizes.sum()) <= data.shape[0]:
        return
    offset, start, features = 0, 0, data.shape[1:]
    for stop in range(1, len(batch_sizes) + 1):
        if stop < len(batch_sizes) and batch_sizes[stop] == batch_sizes[start]:
            continue
        rows = int(batch_sizes[start]) * (stop - start)
        if offset + rows > data.shape[0]:
            shape = ", ".join(map(str, (stop - start, int(batch_sizes[start]), *features)))
            size = builtins.max(0, data.shape[0] - offset) * math.prod(features)
            raise RuntimeError(f"shape '[{shape}]' is invalid for input of size {size}")
        offset, start = offset + rows, stop


def _refuse_short_steps(batch_sizes: np.ndarray, data: Tensor) -> None:
    """torch's error when a recurrent layer reads packed data holding fewer rows than its batch
    sizes count: it narrows the data to each step's rows in turn."""
    offset = 0
    for size in batch_sizes.tolist():
        if offset + size > data.shape[0]:
            raise RuntimeError(f"start ({offset}) + length ({size}) exceeds dimension size ({data.shape[0]}).")
        offset += size


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0,
                        total_length: int | None = None) -> tuple[Tensor, Tensor]:
    """torch.nn.utils.rnn.pad_packed_sequence: the inverse of pack_padded_sequence. Returns the
    padded tensor (T, B, *) or (B, T, *) in the caller's batch order and the lengths (B,) int64."""
    batch_sizes = np.asarray(sequence.batch_sizes.cpu()._data, dtype=np.int64)  # (a user's may be elsewhere)
    steps = len(batch_sizes)
    if total_length is None:
        total_length = steps
    elif total_length < steps:
        raise ValueError("Expected total_length to be at least the length of the longest sequence in input, "
                         f"but got total_length={total_length} and max sequence length being {steps}")
    _refuse_short_data(batch_sizes, sequence.data)
    data = sequence.data
    batch, features = (int(batch_sizes[0]) if steps else 0), tuple(data.shape[1:])
    # torch fills a full output and copies each run of steps with one batch size into its block,
    # viewed (steps, batch size, *): a chain of CopySlices, as torch's
    padded = full((total_length, batch, *features), padding_value, dtype=data.dtype, device=data.device)
    offset = start = 0
    for stop in range(1, steps + 1):
        if stop < steps and batch_sizes[stop] == batch_sizes[start]:
            continue
        size = int(batch_sizes[start])
        rows = size * (stop - start)
        padded[start:stop, :size] = data[offset:offset + rows].view(stop - start, size, *features)
        offset, start = offset + rows, stop
    if batch_first:
        padded = padded.transpose(0, 1)
    positions = _sorted_positions(sequence)
    if sequence.unsorted_indices is not None:
        padded = padded.index_select(0 if batch_first else 1, sequence.unsorted_indices.to(data.device))
    sorted_lengths = (batch_sizes[None, :] > np.arange(len(positions))[:, None]).sum(1)
    return padded, tensor(sorted_lengths[positions], dtype=_dtype.int64, device="cpu")  # on the CPU, as torch's


def padded_by_gather(sequence: PackedSequence, total_length: int) -> tuple[Tensor, np.ndarray]:
    """The padded (total_length, B, *) tensor of a packed batch and its lengths (B,), in the caller's
    batch order, zeros at the padding: pad_packed_sequence's values by one gather, for the recurrent layers' own
    unpacking, which no user sees; pad_packed_sequence records torch's graph, a CopySlices per run
    of steps with one batch size, whose backward passes the whole gradient once per run."""
    batch_sizes = np.asarray(sequence.batch_sizes.cpu()._data, dtype=np.int64)
    _refuse_short_data(batch_sizes, sequence.data)
    positions = _sorted_positions(sequence)
    offsets = np.concatenate([[0], np.cumsum(batch_sizes)[:-1]]).astype(np.int64)
    data = sequence.data
    rows = np.full((total_length, len(positions)), data.shape[0], dtype=np.int64)  # the padding row
    running = positions[None, :] < batch_sizes[:, None]  # (steps, batch)
    rows[:len(batch_sizes)] = np.where(running, offsets[:, None] + positions[None, :], data.shape[0])
    # one gather from data with a padding row appended: differentiable back to data
    extended = cat([data, full((1, *data.shape[1:]), 0.0, dtype=data.dtype, device=data.device)], 0)
    lengths = running.sum(0) if len(batch_sizes) else np.zeros(len(positions), np.int64)
    return extended[tensor(rows, device="cpu")], lengths


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """torch.nn.utils.rnn.pad_sequence: stack tensors of shapes (L_i, *) into (max L, B, *), or
    (B, max L, *) with ``batch_first``, filling with ``padding_value`` on ``padding_side``."""
    if padding_side not in ("left", "right"):
        raise RuntimeError(f"Expected padding_side to be one of left or right, but got {padding_side}.")
    sequences = list(sequences)
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    if sequences[0].dim() == 0:  # torch's slice of the first sequence's sizes past its length says it
        raise RuntimeError("ArrayRef: invalid slice, N = 1; size = 0")
    if any(s.dim() == 0 for s in sequences):  # torch's size(0) of each sequence says it
        raise IndexError("Dimension specified as 0 but tensor has no dimensions")
    trailing = tuple(sequences[0].shape[1:])
    max_length = max(s.shape[0] for s in sequences)
    # torch fills an output of the first sequence's dtype (no promotion) and copies each sequence
    # into its slice: the graph is a chain of CopySlices, as torch's
    shape = (len(sequences), max_length) if batch_first else (max_length, len(sequences))
    padded = full((*shape, *trailing), padding_value, dtype=sequences[0].dtype, device=sequences[0].device)
    for i, s in enumerate(sequences):
        length = s.shape[0]
        steps = slice(0, length) if padding_side == "right" else slice(max_length - length, max_length)
        padded[(i, steps) if batch_first else (steps, i)] = _broadcast_into_slot(s, (length, *trailing))
    return padded


def _broadcast_into_slot(sequence: Tensor, slot: tuple) -> Tensor:
    """``sequence`` as torch's pad_sequence copies it into its slot (length, *the first sequence's
    trailing dims*): broadcast, with copy_'s errors where it cannot be."""
    shape = tuple(sequence.shape)
    if shape == slot:
        return sequence
    ndim = max(len(shape), len(slot))
    padded_slot, padded_shape = (1,) * (ndim - len(slot)) + slot, (1,) * (ndim - len(shape)) + shape
    for dim in reversed(range(ndim)):
        a, b = padded_slot[dim], padded_shape[dim]
        if a != b and a != 1 and b != 1:
            raise RuntimeError(f"The size of tensor a ({a}) must match the size of tensor b ({b}) at "
                               f"non-singleton dimension {dim}")
    broadcast = tuple(max(a, b) for a, b in zip(padded_slot, padded_shape))
    if broadcast != slot:
        raise broadcast_refusal(slot, broadcast)
    return sequence.expand(slot)


def unpad_sequence(padded_sequences: Tensor, lengths, batch_first: bool = False) -> list[Tensor]:
    """torch.nn.utils.rnn.unpad_sequence: the list of unpadded sequences (L_i, *)."""
    if not batch_first:
        # torch transposes the caller's tensor in place: it is batch-first afterwards, and a leaf
        # that requires grad is refused as any in-place op on it
        padded_sequences.transpose_(0, 1)
    xp = array_module(padded_sequences._data)
    steps = np.arange(padded_sequences.shape[1])
    # each row cut by a boolean mask, as torch's: every piece is an IndexBackward0 of its row
    return [row[Tensor._make(xp.asarray(steps < length))]
            for row, length in zip(padded_sequences, _lengths_array(lengths))]


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    """torch.nn.utils.rnn.pack_sequence: pad_sequence then pack_padded_sequence."""
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    """torch.nn.utils.rnn.unpack_sequence: the list of sequences, in the caller's order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
