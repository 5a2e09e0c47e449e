"""Python objects between ranks: ``gather_object``, ``scatter_object_list``, ``send_object_list``
and ``recv_object_list`` (``all_gather_object`` and ``broadcast_object_list`` live beside the
tensor collectives). Objects are pickled by the sender and unpickled by the receiver, exactly
as torch's are: use them only between ranks you trust.

Each exchange sends the pickles' sizes first, then the bytes (``MPI_Igatherv`` and friends),
so no rank needs to know another's sizes in advance.
"""

from __future__ import annotations

import pickle

import numpy as np

from . import distributed_c10d as c10d

__all__ = ["gather_object", "scatter_object_list", "send_object_list", "recv_object_list"]


def gather_object(obj, object_gather_list: list | None = None, dst: int | None = None, group=None,
                  group_dst: int | None = None) -> None:
    """Collect every rank's picklable ``obj`` into ``object_gather_list`` on rank ``dst`` (global
    rank 0 when neither ``dst`` nor ``group_dst`` is given); other ranks pass None."""
    what = "gather_object"
    pg = c10d._pg(group, what)
    if pg is None:
        return None
    root = _root(pg, dst, group_dst, what, "dst")
    if pg.rank() == root:
        if not object_gather_list:
            raise ValueError("Argument ``gather_list`` must be specified on destination rank.")
        if len(object_gather_list) < pg.size():
            raise ValueError(f"{what}: object_gather_list has {len(object_gather_list)} entries but the group has "
                             f"{pg.size()} ranks")
    elif object_gather_list:
        raise ValueError("Argument ``gather_list`` must NOT be specified on non-destination ranks.")
    payload = _pickled(obj)
    sizes = np.empty(pg.size(), np.int64) if pg.rank() == root else None
    _wait(pg.comm.Igather(np.array([payload.size], np.int64), sizes, root=root), what, pg)
    if pg.rank() != root:
        _wait(pg.comm.Igatherv(payload, None, root=root), what, pg)
        return None
    received = np.empty(int(sizes.sum()), np.uint8)
    offsets = _offsets(sizes)
    _wait(pg.comm.Igatherv(payload, [received, (sizes, offsets), c10d._State.MPI.BYTE], root=root), what, pg)
    for i, (start, size) in enumerate(zip(offsets, sizes)):
        object_gather_list[i] = pickle.loads(received[start:start + size].tobytes())
    return None


def scatter_object_list(scatter_object_output_list: list, scatter_object_input_list: list | None = None,
                        src: int | None = None, group=None, group_src: int | None = None) -> None:
    """Rank ``src`` sends ``scatter_object_input_list[i]`` to rank i, which stores it as
    ``scatter_object_output_list[0]``."""
    what = "scatter_object_list"
    pg = c10d._pg(group, what)
    if pg is None:
        return None
    if not isinstance(scatter_object_output_list, list) or len(scatter_object_output_list) < 1:
        raise ValueError("Expected argument scatter_object_output_list to be a list of size at least 1.")
    root = _root(pg, src, group_src, what, "src")
    MPI = c10d._State.MPI
    if pg.rank() == root:
        if not isinstance(scatter_object_input_list, (list, tuple)) or len(scatter_object_input_list) != pg.size():
            raise ValueError(f"{what}: scatter_object_input_list must be a list of {pg.size()} (the group's size) "
                             f"objects on the source rank, got {c10d._describe(scatter_object_input_list)}")
        pickles = [_pickled(o) for o in scatter_object_input_list]
        sizes = np.array([p.size for p in pickles], np.int64)
        send = [np.concatenate(pickles), (sizes, _offsets(sizes)), MPI.BYTE]
    else:
        sizes, send = None, None
    mine = np.empty(1, np.int64)
    _wait(pg.comm.Iscatter(sizes, mine, root=root), what, pg)
    received = np.empty(int(mine[0]), np.uint8)
    _wait(pg.comm.Iscatterv(send, received, root=root), what, pg)
    scatter_object_output_list[0] = pickle.loads(received.tobytes())
    return None


def send_object_list(object_list: list, dst: int | None = None, group=None, device=None,
                     group_dst: int | None = None) -> None:
    """Send ``object_list``'s picklable entries to rank ``dst``, which receives them with
    ``recv_object_list`` into a list of the same length."""
    what = "send_object_list"
    pg = c10d._pg(group, what)
    if pg is None:
        return None
    peer = c10d._peer(pg, dst, group_dst, what, "dst")
    if peer == pg.rank():
        raise ValueError("Invalid destination rank: destination rank should not be the same as the rank of the "
                         "current process.")
    if not isinstance(object_list, list):
        raise ValueError(f"{what}: object_list must be a list, got {type(object_list).__name__}")
    pickles = [_pickled(o) for o in object_list]
    sizes = np.array([p.size for p in pickles], np.int64)
    payload = np.concatenate(pickles) if pickles else np.empty(0, np.uint8)
    _wait(pg.comm.Isend(sizes, dest=peer, tag=_OBJECT_TAG), what, pg)
    _wait(pg.comm.Isend(payload, dest=peer, tag=_OBJECT_TAG), what, pg)
    return None


def recv_object_list(object_list: list, src: int | None = None, group=None, device=None,
                     group_src: int | None = None) -> int:
    """Fill ``object_list`` with the objects rank ``src`` (any rank when None) sent with
    ``send_object_list``; returns the sender's global rank (-1 outside ``group``)."""
    what = "recv_object_list"
    pg = c10d._pg(group, what)
    if pg is None:
        return -1
    MPI = c10d._State.MPI
    if src is None and group_src is None:
        peer = MPI.ANY_SOURCE
    else:
        peer = c10d._peer(pg, src, group_src, what, "src")
        if peer == pg.rank():
            raise ValueError("Invalid source rank: source rank should not be the same as the rank of the current "
                             "process.")
    if not isinstance(object_list, list):
        raise ValueError(f"{what}: object_list must be a list, got {type(object_list).__name__}")
    sizes = np.empty(len(object_list), np.int64)
    status = MPI.Status()
    c10d._State.watchdog.wait(pg.comm.Irecv(sizes, source=peer, tag=_OBJECT_TAG), what, pg.timeout, status)
    sender = status.Get_source()
    if status.Get_count(MPI.INT64_T) != len(object_list):
        raise RuntimeError(f"{what}: rank {pg.ranks[sender]} sent {status.Get_count(MPI.INT64_T)} objects but "
                           f"object_list has {len(object_list)} entries")
    payload = np.empty(int(sizes.sum()), np.uint8)
    _wait(pg.comm.Irecv(payload, source=sender, tag=_OBJECT_TAG), what, pg)
    for i, (start, size) in enumerate(zip(_offsets(sizes), sizes)):
        object_list[i] = pickle.loads(payload[start:start + size].tobytes())
    return pg.ranks[sender]


# objects travel on a tag user code cannot pick (isend's tags stop at 32767), so a tensor sent
# with send() is never taken for an object's pickle, nor the other way round
_OBJECT_TAG = 32768


def _root(pg, global_rank, group_rank, what: str, name: str) -> int:
    if global_rank is None and group_rank is None:
        global_rank = 0
    if global_rank is not None and group_rank is not None:
        raise ValueError(f"{what}: Can't specify both group_{name} and {name}")
    return c10d._group_rank(pg, global_rank, group_rank, what, name)


def _pickled(obj) -> np.ndarray:
    return np.frombuffer(pickle.dumps(obj), np.uint8)


def _offsets(sizes: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)


def _wait(request, what: str, pg) -> None:
    c10d._State.watchdog.wait(request, what, pg.timeout)
