"""``P2POp`` and ``batch_isend_irecv``: a list of sends and receives started together, as
pipeline-parallel code exchanges activations with both neighbours at once. MPI's non-blocking
sends and receives never deadlock on their order, so the batch simply starts each one."""

from __future__ import annotations

from . import distributed_c10d as c10d

__all__ = ["P2POp", "batch_isend_irecv"]


class P2POp:
    """One send (``op=dist.isend``) or receive (``op=dist.irecv``) of ``tensor`` with rank ``peer``
    (a global rank; ``group_peer`` a rank of ``group``), for ``batch_isend_irecv``."""

    def __new__(cls, op, tensor, peer: int | None = None, group=None, tag: int = 0, group_peer: int | None = None):
        from ..tensor import Tensor

        if op not in (c10d.isend, c10d.irecv):
            raise ValueError("Invalid ``op``. Expected ``op`` to be of type ``torch.distributed.isend`` or "
                             "``torch.distributed.irecv``.")
        if not isinstance(tensor, Tensor):
            raise TypeError(f"Invalid function argument. Expected parameter `tensor` of type torch.Tensor but got "
                            f"{type(tensor).__name__} instead.")
        return object.__new__(cls)

    def __init__(self, op, tensor, peer: int | None = None, group=None, tag: int = 0,
                 group_peer: int | None = None) -> None:
        self.op = op
        self.tensor = tensor
        self.group = c10d._world("P2POp") if group is None else group
        pg = c10d._pg(self.group, "P2POp")
        self.group_peer = c10d._peer(pg, peer, group_peer, "P2POp", "peer") if pg is not None else group_peer
        self.peer = pg.ranks[self.group_peer] if pg is not None else peer
        self.tag = tag

    def __repr__(self) -> str:
        me = c10d.get_rank(self.group)
        source, destination = (me, self.group_peer) if self.op is c10d.isend else (self.group_peer, me)
        return (f"P2POp({self.op.__name__} pg={self.group!r}, group_src={source}, group_dst={destination},  "
                f"{self.tensor.shape}, {self.tensor.dtype})")


def batch_isend_irecv(p2p_op_list: list) -> list:
    """Start every send and receive of ``p2p_op_list`` (all on one group) and return their
    ``Work`` handles; ``wait()`` on each completes it."""
    if not isinstance(p2p_op_list, list) or not all(isinstance(op, P2POp) for op in p2p_op_list):
        raise ValueError("Invalid ``p2p_op_list``. Each op is expected to to be of type "
                         "``torch.distributed.P2POp``.")
    if not p2p_op_list:
        # torch indexes the first op for its group: an empty batch is an IndexError there too
        raise IndexError("batch_isend_irecv: p2p_op_list is empty")
    group = p2p_op_list[0].group
    if not all(op.group is group for op in p2p_op_list):
        raise ValueError("All ops need to use the same group.")
    works = []
    for op in p2p_op_list:
        peer = {"group_dst": op.group_peer} if op.op is c10d.isend else {"group_src": op.group_peer}
        work = op.op(op.tensor, group=op.group, tag=op.tag, **peer)
        if work is not None:
            works.append(work)
    return works
