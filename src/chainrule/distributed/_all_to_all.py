"""The exchanges in which every rank sends a different piece to every other: ``all_to_all``,
``all_to_all_single`` (even or uneven splits along dim 0), and the list form of
``reduce_scatter``. torch's checks of sizes and dtypes run on the calling rank before anything
is sent, with torch's exception types.

An all-to-all moves bytes without arithmetic, so it goes to MPI as raw bytes
(``MPI_Ialltoallv`` on a ``uint8`` view): every dtype travels, bool and float16 included.
"""

from __future__ import annotations

import numpy as np

from . import distributed_c10d as c10d
from .distributed_c10d import ReduceOp

__all__ = ["all_to_all", "all_to_all_single", "reduce_scatter"]


def all_to_all_single(output, input, output_split_sizes=None, input_split_sizes=None, group=None,
                      async_op: bool = False):
    """Split ``input`` along dim 0 (``input_split_sizes[i]`` rows for rank i; equal parts when None)
    and send part i to rank i; ``output`` receives rank j's part for this rank at rows
    ``output_split_sizes[:j].sum()`` on, in its own memory."""
    what = "all_to_all_single"
    pg = c10d._pg(group, what)
    if pg is None:
        return None
    send, _ = c10d._buffer(input, what, "input")
    receive, write_back = c10d._buffer(output, what, "output")
    _ensure_same_dtype([output, input])
    # which op only: with split sizes, each rank's shapes may rightly differ
    c10d._check_same_call(pg, what, None)
    size = pg.size()
    if not output_split_sizes and not input_split_sizes and send.size != receive.size:
        raise RuntimeError(f"{what}: input of shape {send.shape} and output of shape {receive.shape} must have "
                           "the same number of elements when no split sizes are given")
    send_counts = _byte_counts(send, input_split_sizes, size, what, "input")
    receive_counts = _byte_counts(receive, output_split_sizes, size, what, "output")
    request, keep = c10d._start(pg.comm.Ialltoallv, [_bytes_of(send), _with_offsets(send_counts)],
                                [_bytes_of(receive), _with_offsets(receive_counts)])
    output._bump_version()
    return c10d._issue(request, what, pg, write_back, async_op, keep=keep)


def all_to_all(output_tensor_list, input_tensor_list, group=None, async_op: bool = False):
    """Send ``input_tensor_list[i]`` to rank i; ``output_tensor_list[j]`` receives rank j's tensor
    for this rank. The tensors may differ in size (rank j's piece must fit this rank's slot j)."""
    what = "all_to_all"
    _check_tensor_list(output_tensor_list, "output_tensor_list")
    _check_tensor_list(input_tensor_list, "input_tensor_list")
    _ensure_same_dtype([*output_tensor_list, *input_tensor_list])
    pg = c10d._pg(group, what)
    if pg is None:
        return None
    c10d._check_same_call(pg, what, None)  # which op only: the pieces may differ in size
    size = pg.size()
    for name, tensors in (("output", output_tensor_list), ("input", input_tensor_list)):
        if len(tensors) != size:
            raise RuntimeError(f"{what}: {name} tensor list size {len(tensors)} does not match world size {size}")
    pieces = [np.ascontiguousarray(c10d._to_host(t._data)) for t in input_tensor_list]
    send = np.concatenate([_bytes_of(p) for p in pieces]) if pieces else np.empty(0, np.uint8)
    send_counts = [p.nbytes for p in pieces]
    receive_counts = [t.numel() * t._data.dtype.itemsize for t in output_tensor_list]
    receive = np.empty(sum(receive_counts), np.uint8)
    request, keep = c10d._start(pg.comm.Ialltoallv, [send, _with_offsets(send_counts)],
                                [receive, _with_offsets(receive_counts)])

    def finish() -> None:
        start = 0
        for t, count in zip(output_tensor_list, receive_counts):
            _write_into(t, receive[start:start + count].view(t._data.dtype).reshape(t._data.shape))
            start += count

    return c10d._issue(request, what, pg, finish, async_op, keep=keep)


def reduce_scatter(output, input_list, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduce ``input_list[i]`` over the group into rank i's ``output`` (the list form of
    ``reduce_scatter_tensor``: every entry shaped like ``output``)."""
    what = "reduce_scatter"
    receive, write_back = c10d._buffer(output, what, "output")
    _check_tensor_list(input_list, "input_list")
    _ensure_same_dtype([output, *input_list])
    pg = c10d._pg(group, what)
    if pg is None:
        return None
    c10d._check_same_call(pg, what, receive)
    if len(input_list) != pg.size():
        raise RuntimeError(f"{what}: invalid input tensor list size, must be world size: got {len(input_list)} "
                           f"tensors for a group of {pg.size()}")
    for i, t in enumerate(input_list):
        if tuple(t.shape) != tuple(output.shape):
            raise RuntimeError(f"{what}: input_list[{i}] has shape {tuple(t.shape)} but output has shape "
                               f"{tuple(output.shape)}; every entry must be shaped like output")
    mpi_op = c10d._mpi_op(op, receive.dtype, what)
    send = np.stack([c10d._to_host(t._data) for t in input_list])
    request, keep = c10d._start(pg.comm.Ireduce_scatter_block, send, receive, op=mpi_op)
    output._bump_version()
    return c10d._issue(request, what, pg, c10d._finisher(receive, op, pg.size(), write_back), async_op, keep=keep)


# ------------------------------------------------------------------------------ helpers
def _check_tensor_list(tensors, name: str) -> None:
    """torch's ``_check_tensor_list``: a list (or tuple) of tensors, else TypeError."""
    from ..tensor import Tensor

    if not isinstance(tensors, (list, tuple)) or not all(isinstance(t, Tensor) for t in tensors):
        raise TypeError(f"Invalid function argument. Expected parameter `{name}` of type List[torch.Tensor] "
                        f"but got {type(tensors).__name__} instead.")


def _ensure_same_dtype(tensors) -> None:
    """torch's ``_ensure_all_tensors_same_dtype`` (ValueError, raised before communicating)."""
    first = tensors[0].dtype if tensors else None
    for t in tensors[1:]:
        if t.dtype != first:
            raise ValueError(f"Invalid usage of tensors with different dtypes. Found {first} and {t.dtype}")


def _byte_counts(array: np.ndarray, split_sizes, size: int, what: str, name: str) -> list[int]:
    """How many bytes of ``array`` go to (or come from) each rank: rows along dim 0, torch's checks."""
    if array.ndim == 0:
        raise RuntimeError(f"{what}: {name} must have at least one dimension to split along, got a 0-d tensor")
    rows = array.shape[0]
    row_bytes = int(np.prod(array.shape[1:], dtype=np.int64)) * array.itemsize
    if split_sizes is None or len(split_sizes) == 0:
        if rows % size:
            raise RuntimeError(f"{what}: Tensor's dim 0 does not divide equally across group size ({name} has "
                               f"{rows} rows for {size} ranks; pass {name}_split_sizes for uneven parts)")
        return [rows // size * row_bytes] * size
    splits = [int(s) for s in split_sizes]
    if len(splits) != size:
        raise RuntimeError(f"{what}: Number of tensor splits not equal to group size ({name}_split_sizes has "
                           f"{len(splits)} entries for {size} ranks)")
    if any(s < 0 for s in splits) or sum(splits) != rows:
        raise RuntimeError(f"{what}: Split sizes doesn't match total dim 0 size ({name}_split_sizes {splits} "
                           f"for {rows} rows)")
    return [s * row_bytes for s in splits]


def _with_offsets(counts: list[int]) -> tuple[list[int], list[int]]:
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64).tolist() if counts else []
    return counts, offsets


def _bytes_of(array: np.ndarray) -> np.ndarray:
    """A contiguous array's memory as bytes (a view: MPI writes into the tensor itself)."""
    return array.reshape(-1).view(np.uint8)


def _write_into(tensor, host: np.ndarray) -> None:
    from .. import _backend

    data = tensor._data
    data[...] = host if type(data) is np.ndarray else _backend.to_device(host, _backend.device_of(data))
    tensor._bump_version()
