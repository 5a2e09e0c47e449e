"""torch.distributed's process groups, collectives and point-to-point sends, on MPI (mpi4py).

Every collective is issued as MPI's non-blocking variant and completed by a ``Work`` handle:
``async_op=True`` returns the handle, otherwise we wait at once. Tensors are passed to MPI
through the buffer protocol: a contiguous tensor is reduced, broadcast or gathered in place in
its own memory; only a non-contiguous view goes through a contiguous copy that is written back,
and a CUDA tensor through a host copy (MPI here is not CUDA-aware; see ``_buffer``).
Arbitrary Python objects travel only through the explicit ``*_object*`` functions, which pickle
on send and unpickle on receive as torch's do.
"""

from __future__ import annotations

import atexit
import datetime
import enum
import itertools
import os
import pickle
import time

import numpy as np

from .. import _backend
from ..futures import Future
from ..tensor import Tensor
from . import _mpi

# torch's default_pg_timeout
DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)
BACKENDS = ("mpi", "gloo")


class ReduceOp(enum.Enum):
    """torch.distributed.ReduceOp: how ``all_reduce``, ``reduce`` and ``reduce_scatter`` combine."""

    # torch's RedOpType numbers (``int(ReduceOp.AVG) == 1`` there)
    SUM = 0
    AVG = 1
    PRODUCT = 2
    MIN = 3
    MAX = 4
    BAND = 5
    BOR = 6
    BXOR = 7


# torch's ReduceOp is a class whose members are ``ReduceOp.RedOpType`` values, and libraries name that
# type in annotations (Lightning: ``RedOpType: TypeAlias = ReduceOp.RedOpType``); here the enum is both
ReduceOp.RedOpType = ReduceOp


class ProcessGroup:
    """A set of ranks with its own MPI communicator (so our traffic never meets the user's)."""

    def __init__(self, comm, ranks: list[int], timeout: float, backend: str) -> None:
        self.comm = comm
        self.ranks = ranks  # global ranks, in group-rank order
        self.timeout = timeout
        self.backend = backend

    def rank(self) -> int:
        return self.comm.Get_rank()

    def size(self) -> int:
        return self.comm.Get_size()

    def __repr__(self) -> str:
        return f"ProcessGroup(backend={self.backend!r}, ranks={self.ranks})"


class GroupMember:
    """torch's sentinels: the default group, and what ``new_group`` returns to non-members."""

    WORLD: ProcessGroup | None = None
    NON_GROUP_MEMBER = object()


class group:
    """``dist.group.WORLD``, as in torch."""

    WORLD: ProcessGroup | None = None


class Work:
    """The handle of a collective: ``wait()`` completes it (or raises after the group's timeout),
    then finishes the op on our side (AVG's division, copying into gathered lists)."""

    def __init__(self, request, what: str, pg: ProcessGroup, finish=None, status=None, result=None,
                 keep=()) -> None:
        self._request = request
        self._keep = keep  # the buffers MPI reads and writes until the request completes
        self._result = [] if result is None else result  # the tensors the op writes, for result()
        self._future: Future | None = None
        self._what = what
        self._pg = pg
        self._finish = finish
        self._status = status  # an MPI.Status for a receive: who sent it
        self._done = False
        self._ticket = None  # its key in _InFlight while the caller holds it unwaited

    def wait(self, timeout: datetime.timedelta | float | None = None) -> bool:
        if not self._done:
            seconds = self._pg.timeout if timeout is None else _seconds(timeout)
            _State.watchdog.wait(self._request, self._what, seconds, self._status)
            self._done = True
            if self._ticket is not None:
                _InFlight.pending.pop(self._ticket, None)
            if self._finish is not None:
                self._finish()
            if self._future is not None:
                self._future.set_result(list(self._result))
        return True

    def get_future(self) -> Future:
        """A ``torch.futures.Future`` completed with ``result()`` when the collective completes;
        waiting on it, or on a Future chained from it with ``then``, waits for the collective
        (MPI progresses only when asked)."""
        if self._future is None:
            self._future = Future(_progress=self.wait)
            if self._done:
                self._future.set_result(list(self._result))
        return self._future

    def is_completed(self) -> bool:
        if not self._done and self._request.Test():
            self.wait()
        return self._done

    def is_success(self) -> bool:
        return self._done

    def result(self) -> list:
        """The op's output tensors, once complete (torch's ``Work.result``; all_reduce's tensor)."""
        self.wait()
        return list(self._result)

    def _source_rank(self) -> int:
        """A completed receive's sender, as a rank of the group (torch's ``Work._source_rank``)."""
        if self._status is None:
            raise RuntimeError(f"_source_rank: {self._what} is not a receive")
        self.wait()
        return self._status.Get_source()

    def _test(self) -> None:
        if not self._done:
            self._request.Test()


class _InFlight:
    """Every request handed out in a ``Work`` (``async_op=True``, isend, irecv), held here until
    MPI completes it, with the buffers MPI reads and writes: mpi4py's Request does not keep them
    alive, and a caller may drop the Work and its tensor before ``wait()``, leaving MPI to write
    into freed memory. torch's Work keeps its tensors alive until completion; this registry
    does so even without the Work. Blocking collectives never enter it."""

    # ticket -> (request, status, is_point_to_point, buffers)
    pending: dict[int, tuple] = {}
    tickets = itertools.count()

    @classmethod
    def hold(cls, work: Work, point_to_point: bool = False) -> Work:
        cls.prune()
        work._ticket = next(cls.tickets)
        cls.pending[work._ticket] = (work._request, work._status, point_to_point, work._keep)
        return work

    @classmethod
    def prune(cls) -> None:
        """Forget the requests MPI has completed (Test drives MPI's progress as well)."""
        if cls.pending:
            # a request the Work completed itself is null: testing it again would blank its status
            done = [ticket for ticket, (request, status, _, _) in cls.pending.items()
                    if not request or request.Test(status)]
            for ticket in done:
                del cls.pending[ticket]

    @classmethod
    def drain(cls) -> None:
        """At ``destroy_process_group`` and exit: finish what is still in flight. Every rank
        issued the collectives, so they complete (under the watchdog's timeout); a send or
        receive nobody matched is cancelled, and held on (never freed) if MPI cannot cancel it."""
        cls.prune()
        for ticket, (request, status, point_to_point, _) in list(cls.pending.items()):
            if not point_to_point:
                timeout = _State.world.timeout if _State.world is not None else _seconds(DEFAULT_TIMEOUT)
                _State.watchdog.wait(request, "a collective started with async_op=True and never waited", timeout)
                del cls.pending[ticket]
                continue
            request.Cancel()
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                if request.Test(status):
                    del cls.pending[ticket]
                    break
                time.sleep(0.001)


class _State:
    MPI = None
    world: ProcessGroup | None = None
    abort_on_error: _mpi.AbortOnError | None = None
    store = None  # the store given to init_process_group, if any
    watchdog: _mpi.Watchdog | None = None
    # TORCH_DISTRIBUTED_DEBUG=DETAIL, read at init_process_group as torch reads its debug level
    detail = False


# ------------------------------------------------------------------------------ set-up
def is_available() -> bool:
    """True when mpi4py (the communication engine) can be imported."""
    return _mpi.mpi_available()


def is_mpi_available() -> bool:
    return _mpi.mpi_available()


def is_nccl_available() -> bool:
    return False


def is_gloo_available() -> bool:
    return False


def is_torchelastic_launched() -> bool:
    return False


def is_initialized() -> bool:
    return _State.world is not None


def init_process_group(backend: str | None = None, init_method: str | None = None,
                       timeout: datetime.timedelta | None = None, world_size: int = -1, rank: int = -1,
                       store=None, group_name: str = "", pg_options=None, device_id=None) -> None:
    """Join the default process group: every process started by ``mpiexec`` (or our launcher,
    or srun) is one rank. ``backend`` None, ``"mpi"`` or ``"gloo"`` (a torch CPU script's choice)
    all use MPI; ``rank``/``world_size`` and the RANK/WORLD_SIZE variables are checked against
    MPI's, since MPI, not a store, decides them. A ``store=`` (with ``rank`` and ``world_size``,
    as torch requires) is accepted and kept, but the ranks still meet through MPI."""
    if _State.world is not None:
        raise ValueError("trying to initialize the default process group twice!")
    name = (backend or "mpi").lower()
    if name not in BACKENDS:
        hint = " (NCCL between GPUs is not supported yet; use backend='mpi')" if name == "nccl" else ""
        raise ValueError(f"init_process_group: unknown backend {backend!r}; chainrule supports "
                         f"{', '.join(repr(b) for b in BACKENDS)} (both run on MPI){hint}")
    if store is not None:
        if init_method is not None:
            raise ValueError("Cannot specify both init_method and store.")
        if not world_size > 0:
            raise AssertionError("world_size must be positive if using store")
        if not rank >= 0:
            raise AssertionError("rank must be non-negative if using store")
    seconds = _seconds(timeout if timeout is not None else DEFAULT_TIMEOUT)
    if not seconds > 0:
        raise ValueError(f"init_process_group: timeout must be positive, got {timeout!r}")
    _mpi.export_torchrun_environment()
    MPI = _mpi.load_mpi()
    world = MPI.COMM_WORLD
    mpi_rank, mpi_size = world.Get_rank(), world.Get_size()
    for what, given, actual in (("rank", rank, mpi_rank), ("world_size", world_size, mpi_size),
                                ("RANK", _env_int("RANK"), mpi_rank),
                                ("WORLD_SIZE", _env_int("WORLD_SIZE"), mpi_size)):
        if given is not None and given >= 0 and given != actual:
            raise ValueError(
                f"init_process_group: {what}={given} but MPI started this process as rank {mpi_rank} of "
                f"{mpi_size}; start the job with `python -m chainrule.distributed.run --nproc-per-node N "
                "script.py` or `mpiexec -n N python script.py`"
            )
    comm = world.Dup()
    _State.MPI = MPI
    # MPI's launcher connected the ranks; a given store is kept for the program (torch's default
    # store), not used to connect them
    _State.store = store
    _State.detail = os.environ.get("TORCH_DISTRIBUTED_DEBUG", "").upper() == "DETAIL"
    _set_world(ProcessGroup(comm, list(range(mpi_size)), seconds, name))
    node = world.Split_type(MPI.COMM_TYPE_SHARED, key=mpi_rank)
    for key, value in (("RANK", mpi_rank), ("WORLD_SIZE", mpi_size), ("LOCAL_RANK", node.Get_rank()),
                       ("LOCAL_WORLD_SIZE", node.Get_size()), ("MASTER_ADDR", "127.0.0.1"),
                       ("MASTER_PORT", 29500)):
        os.environ.setdefault(key, str(value))
    node.Free()
    if _State.watchdog is None:
        _State.watchdog = _mpi.Watchdog(MPI, mpi_rank)
        # before mpi4py's MPI_Finalize (atexit runs last-registered first)
        atexit.register(_InFlight.drain)
    _State.abort_on_error = _mpi.AbortOnError(MPI, mpi_rank)
    _State.abort_on_error.install()


def destroy_process_group(group: ProcessGroup | None = None) -> None:
    """Leave the default group (all groups) or free one group; MPI itself stays initialised."""
    if group is not None and group is not _State.world:
        if isinstance(group, ProcessGroup):
            group.comm.Free()
        return
    if _State.world is None:
        raise ValueError("Default process group has not been initialized, please make sure to call "
                         "init_process_group.")
    _InFlight.drain()
    _State.world.comm.Free()
    _State.abort_on_error.uninstall()
    _State.abort_on_error = None
    _State.store = None
    _set_world(None)


def _get_default_store():
    """The store given to ``init_process_group(store=...)`` (torch's default store). Without one
    there is none: MPI's launcher connected the ranks, no store was made."""
    _world("_get_default_store")
    if _State.store is None:
        raise ValueError("_get_default_store: this process group was initialised without store=; chainrule's ranks "
                         "meet through MPI, so there is no default store (pass store= to init_process_group, or "
                         "make a TCPStore or FileStore yourself)")
    return _State.store


def new_group(ranks: list[int] | None = None, timeout: datetime.timedelta | None = None, backend=None,
              pg_options=None, use_local_synchronization: bool = False, group_desc=None):
    """A group of a subset of ranks; every rank must call it (as in torch). Group ranks follow
    the sorted global ranks; non-members get ``GroupMember.NON_GROUP_MEMBER``."""
    world = _world("new_group")
    size = world.size()
    members = sorted(range(size) if ranks is None else ranks)
    if len(set(members)) != len(members) or any(not 0 <= r < size for r in members):
        raise ValueError(f"new_group: ranks must be distinct global ranks in [0, {size - 1}], got {ranks}")
    MPI = _State.MPI
    member = world.rank() in members
    comm = world.comm.Split(0 if member else MPI.UNDEFINED, key=world.rank())
    if not member:
        return GroupMember.NON_GROUP_MEMBER
    seconds = world.timeout if timeout is None else _seconds(timeout)
    return ProcessGroup(comm, members, seconds, world.backend)


def get_rank(group: ProcessGroup | None = None) -> int:
    """This process's rank in ``group`` (default: the world); -1 when it is not a member."""
    if group is GroupMember.NON_GROUP_MEMBER:
        return -1
    return _pg(group, "get_rank").rank()


def get_world_size(group: ProcessGroup | None = None) -> int:
    if group is GroupMember.NON_GROUP_MEMBER:
        return -1
    return _pg(group, "get_world_size").size()


def get_backend(group: ProcessGroup | None = None) -> str:
    return _pg(group, "get_backend").backend


def get_process_group_ranks(group: ProcessGroup) -> list[int]:
    return list(_pg(group, "get_process_group_ranks").ranks)


def get_global_rank(group: ProcessGroup, group_rank: int) -> int:
    pg = _pg(group, "get_global_rank")
    if not 0 <= group_rank < pg.size():
        raise ValueError(f"Group rank {group_rank} is not part of group {pg.ranks}")
    return pg.ranks[group_rank]


def get_group_rank(group: ProcessGroup, global_rank: int) -> int:
    pg = _pg(group, "get_group_rank")
    if global_rank not in pg.ranks:
        raise ValueError(f"Global rank {global_rank} is not part of group {pg.ranks}")
    return pg.ranks.index(global_rank)


# ------------------------------------------------------------------------------ collectives
def barrier(group: ProcessGroup | None = None, async_op: bool = False, device_ids=None):
    """Wait until every rank of the group has reached the barrier."""
    pg = _pg(group, "barrier")
    if pg is None:
        return None
    _check_same_call(pg, "barrier", None)
    return _issue(pg.comm.Ibarrier(), "barrier", pg, None, async_op)


def all_reduce(tensor, op: ReduceOp = ReduceOp.SUM, group: ProcessGroup | None = None, async_op: bool = False):
    """Reduce ``tensor`` over the group, in place on every rank (MPI_Iallreduce, IN_PLACE)."""
    pg = _pg(group, "all_reduce")
    if pg is None:
        return None
    buffer, write_back = _buffer(tensor, "all_reduce", "tensor")
    _check_same_call(pg, "all_reduce", buffer)
    mpi_op = _mpi_op(op, buffer.dtype, "all_reduce")
    request, keep = _start(pg.comm.Iallreduce, _State.MPI.IN_PLACE, buffer, op=mpi_op)
    tensor._bump_version()
    return _issue(request, "all_reduce", pg, _finisher(buffer, op, pg.size(), write_back), async_op, [tensor], keep=keep)


def reduce(tensor, dst: int = 0, op: ReduceOp = ReduceOp.SUM, group: ProcessGroup | None = None,
           async_op: bool = False, group_dst: int | None = None):
    """Reduce ``tensor`` over the group into rank ``dst``'s tensor (others' are left unchanged)."""
    pg = _pg(group, "reduce")
    if pg is None:
        return None
    root = _group_rank(pg, dst, group_dst, "reduce", "dst")
    buffer, write_back = _buffer(tensor, "reduce", "tensor")
    _check_same_call(pg, "reduce", buffer)
    mpi_op = _mpi_op(op, buffer.dtype, "reduce")
    MPI = _State.MPI
    if pg.rank() == root:
        request, keep = _start(pg.comm.Ireduce, MPI.IN_PLACE, buffer, op=mpi_op, root=root)
        tensor._bump_version()
        finish = _finisher(buffer, op, pg.size(), write_back)
    else:
        request, keep = _start(pg.comm.Ireduce, buffer, None, op=mpi_op, root=root)
        finish = None
    return _issue(request, "reduce", pg, finish, async_op, keep=keep)


def broadcast(tensor, src: int = 0, group: ProcessGroup | None = None, async_op: bool = False,
              group_src: int | None = None):
    """Copy rank ``src``'s tensor into every rank's tensor, in place."""
    pg = _pg(group, "broadcast")
    if pg is None:
        return None
    root = _group_rank(pg, src, group_src, "broadcast", "src")
    buffer, write_back = _buffer(tensor, "broadcast", "tensor")
    _check_same_call(pg, "broadcast", buffer)
    request, keep = _start(pg.comm.Ibcast, buffer, root=root)
    if pg.rank() != root:
        tensor._bump_version()
    return _issue(request, "broadcast", pg, write_back, async_op, keep=keep)


def all_gather(tensor_list: list, tensor, group: ProcessGroup | None = None, async_op: bool = False):
    """Fill ``tensor_list[i]`` with rank i's ``tensor`` on every rank."""
    pg = _pg(group, "all_gather")
    if pg is None:
        return None
    buffer, _ = _buffer(tensor, "all_gather", "tensor")
    _check_same_call(pg, "all_gather", buffer)
    _check_list(tensor_list, pg.size(), tensor, "all_gather", "tensor_list")
    gathered = np.empty((pg.size(),) + buffer.shape, buffer.dtype)
    request, keep = _start(pg.comm.Iallgather, buffer, gathered)
    return _issue(request, "all_gather", pg, _scatter_into(tensor_list, gathered), async_op, keep=keep)


def all_gather_into_tensor(output_tensor, input_tensor, group: ProcessGroup | None = None,
                           async_op: bool = False):
    """Gather every rank's ``input_tensor`` into ``output_tensor``, shaped (world * n, ...) or
    (world, n, ...), straight into the output's memory when it is contiguous."""
    pg = _pg(group, "all_gather_into_tensor")
    if pg is None:
        return None
    what = "all_gather_into_tensor"
    send, _ = _buffer(input_tensor, what, "input_tensor")
    receive, write_back = _buffer(output_tensor, what, "output_tensor")
    _check_same_call(pg, what, send)
    _check_chunks(receive, send, pg.size(), what, "output_tensor", "input_tensor")
    request, keep = _start(pg.comm.Iallgather, send, receive)
    output_tensor._bump_version()
    return _issue(request, what, pg, write_back, async_op, keep=keep)


def reduce_scatter_tensor(output, input, op: ReduceOp = ReduceOp.SUM, group: ProcessGroup | None = None,
                          async_op: bool = False):
    """Reduce ``input`` (world * n, ...) over the group; rank i receives the i-th chunk in ``output``."""
    pg = _pg(group, "reduce_scatter_tensor")
    if pg is None:
        return None
    what = "reduce_scatter_tensor"
    send, _ = _buffer(input, what, "input")
    receive, write_back = _buffer(output, what, "output")
    _check_same_call(pg, what, send)
    _check_chunks(send, receive, pg.size(), what, "input", "output")
    mpi_op = _mpi_op(op, send.dtype, what)
    request, keep = _start(pg.comm.Ireduce_scatter_block, send, receive, op=mpi_op)
    output._bump_version()
    return _issue(request, what, pg, _finisher(receive, op, pg.size(), write_back), async_op, keep=keep)


def gather(tensor, gather_list: list | None = None, dst: int = 0, group: ProcessGroup | None = None,
           async_op: bool = False, group_dst: int | None = None):
    """Collect every rank's ``tensor`` into ``gather_list`` on rank ``dst`` only."""
    pg = _pg(group, "gather")
    if pg is None:
        return None
    root = _group_rank(pg, dst, group_dst, "gather", "dst")
    buffer, _ = _buffer(tensor, "gather", "tensor")
    _check_same_call(pg, "gather", buffer)
    if pg.rank() == root:
        _check_list(gather_list, pg.size(), tensor, "gather", "gather_list")
        gathered = np.empty((pg.size(),) + buffer.shape, buffer.dtype)
        request, keep = _start(pg.comm.Igather, buffer, gathered, root=root)
        return _issue(request, "gather", pg, _scatter_into(gather_list, gathered), async_op, keep=keep)
    if gather_list:
        raise ValueError("Argument ``gather_list`` must NOT be specified on non-destination ranks.")
    request, keep = _start(pg.comm.Igather, buffer, None, root=root)
    return _issue(request, "gather", pg, None, async_op, keep=keep)


def scatter(tensor, scatter_list: list | None = None, src: int = 0, group: ProcessGroup | None = None,
            async_op: bool = False, group_src: int | None = None):
    """Rank ``src`` sends ``scatter_list[i]`` to rank i, which receives it into ``tensor``."""
    pg = _pg(group, "scatter")
    if pg is None:
        return None
    root = _group_rank(pg, src, group_src, "scatter", "src")
    buffer, write_back = _buffer(tensor, "scatter", "tensor")
    _check_same_call(pg, "scatter", buffer)
    if pg.rank() == root:
        _check_list(scatter_list, pg.size(), tensor, "scatter", "scatter_list")
        send = np.stack([_to_host(t._data) for t in scatter_list])
    elif scatter_list:
        raise ValueError("Argument ``scatter_list`` must NOT be specified on non-source ranks.")
    else:
        send = None
    request, keep = _start(pg.comm.Iscatter, send, buffer, root=root)
    tensor._bump_version()
    return _issue(request, "scatter", pg, write_back, async_op, keep=keep)


# ------------------------------------------------------------------------------ point-to-point
def isend(tensor, dst: int | None = None, group: ProcessGroup | None = None, tag: int = 0,
          group_dst: int | None = None):
    """Start sending ``tensor`` to rank ``dst`` (a global rank; ``group_dst`` a group rank); the
    returned ``Work``'s ``wait()`` completes it. Do not change the tensor before then."""
    pg = _pg(group, "isend")
    if pg is None:
        return None
    peer = _peer(pg, dst, group_dst, "isend", "dst")
    _check_tag(tag, "isend")
    buffer, _ = _buffer(tensor, "isend", "tensor")
    request, keep = _start(pg.comm.Isend, buffer, dest=peer, tag=tag)
    return _InFlight.hold(Work(request, f"send to rank {pg.ranks[peer]}", pg, keep=keep), point_to_point=True)


def irecv(tensor, src: int | None = None, group: ProcessGroup | None = None, tag: int = 0,
          group_src: int | None = None):
    """Start receiving into ``tensor`` from rank ``src`` (any rank when ``src`` and ``group_src``
    are None); the returned ``Work``'s ``wait()`` completes it, in the tensor's own memory (a CUDA
    tensor's data is written back onto its device then)."""
    pg = _pg(group, "irecv")
    if pg is None:
        return None
    anyone = src is None and group_src is None
    peer = _State.MPI.ANY_SOURCE if anyone else _peer(pg, src, group_src, "irecv", "src")
    _check_tag(tag, "irecv")
    buffer, write_back = _buffer(tensor, "irecv", "tensor")
    request, keep = _start(pg.comm.Irecv, buffer, source=peer, tag=tag)
    tensor._bump_version()
    what = "recv from any rank" if anyone else f"recv from rank {pg.ranks[peer]}"
    return _InFlight.hold(Work(request, what, pg, write_back, status=_State.MPI.Status(), keep=keep),
                          point_to_point=True)


def send(tensor, dst: int | None = None, group: ProcessGroup | None = None, tag: int = 0,
         group_dst: int | None = None) -> None:
    """Send ``tensor`` to rank ``dst``, which receives it with ``recv``/``irecv``; not to oneself."""
    pg = _pg(group, "send")
    if pg is not None and _peer(pg, dst, group_dst, "send", "dst") == pg.rank():
        raise ValueError("Invalid destination rank: destination rank should not be the same as the rank of the "
                         "current process.")
    work = isend(tensor, dst, group, tag, group_dst)
    if work is not None:
        work.wait()


def recv(tensor, src: int | None = None, group: ProcessGroup | None = None, tag: int = 0,
         group_src: int | None = None) -> int:
    """Receive into ``tensor`` from rank ``src`` (any rank when None); returns the sender's global
    rank, or -1 on a rank outside ``group``."""
    pg = _pg(group, "recv")
    if pg is not None and (src is not None or group_src is not None) and \
            _peer(pg, src, group_src, "recv", "src") == pg.rank():
        raise ValueError("Invalid source rank: source rank should not be the same as the rank of the current "
                         "process.")
    work = irecv(tensor, src, group, tag, group_src)
    if work is None:
        return -1
    work.wait()
    return pg.ranks[work._source_rank()]


def all_gather_object(object_list: list, obj, group: ProcessGroup | None = None) -> None:
    """Fill ``object_list[i]`` with rank i's picklable ``obj`` (unpickled here, as torch does:
    call it only with ranks you trust)."""
    pg = _pg(group, "all_gather_object")
    if pg is None:
        return None
    if not isinstance(object_list, list) or len(object_list) != pg.size():
        raise ValueError(f"all_gather_object: object_list must be a list of {pg.size()} (the group's "
                         f"size) entries, got {_describe(object_list)}")
    payload = np.frombuffer(pickle.dumps(obj), np.uint8)
    sizes = np.empty(pg.size(), np.int64)
    _State.watchdog.wait(pg.comm.Iallgather(np.array([payload.size], np.int64), sizes),
              "all_gather_object", pg.timeout)
    received = np.empty(int(sizes.sum()), np.uint8)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    request = pg.comm.Iallgatherv(payload, [received, (sizes, offsets), _State.MPI.BYTE])
    _State.watchdog.wait(request, "all_gather_object", pg.timeout)
    for i, (start, size) in enumerate(zip(offsets, sizes)):
        object_list[i] = pickle.loads(received[start:start + size].tobytes())
    return None


def broadcast_object_list(object_list: list, src: int = 0, group: ProcessGroup | None = None,
                          device=None, group_src: int | None = None) -> None:
    """Replace ``object_list``'s entries on every rank by rank ``src``'s (pickled there,
    unpickled here)."""
    pg = _pg(group, "broadcast_object_list")
    if pg is None:
        return None
    root = _group_rank(pg, src, group_src, "broadcast_object_list", "src")
    if not isinstance(object_list, list):
        raise ValueError(f"broadcast_object_list: object_list must be a list, got {_describe(object_list)}")
    what = "broadcast_object_list"
    payload = np.frombuffer(pickle.dumps(object_list), np.uint8) if pg.rank() == root else None
    size = np.array([payload.size if payload is not None else 0], np.int64)
    _State.watchdog.wait(pg.comm.Ibcast(size, root=root), what, pg.timeout)
    if payload is None:
        payload = np.empty(int(size[0]), np.uint8)
    _State.watchdog.wait(pg.comm.Ibcast(payload, root=root), what, pg.timeout)
    if pg.rank() != root:
        received = pickle.loads(payload.tobytes())
        if len(received) != len(object_list):
            raise ValueError(f"broadcast_object_list: rank {src} sent {len(received)} objects but this rank's "
                             f"object_list has {len(object_list)} entries")
        object_list[:] = received
    return None


# ------------------------------------------------------------------------------ helpers
def _set_world(pg: ProcessGroup | None) -> None:
    _State.world = GroupMember.WORLD = group.WORLD = pg


def _start(mpi_call, *args, **kwargs):
    """Start a non-blocking MPI call: its request, and the arguments whose memory MPI uses until
    it completes (mpi4py's request does not keep them alive; the Work and _InFlight do)."""
    return mpi_call(*args, **kwargs), args


def _issue(request, what: str, pg: ProcessGroup, finish, async_op: bool, result=None, keep=()):
    if async_op:
        return _InFlight.hold(Work(request, what, pg, finish, result=result, keep=keep))
    # waited at once, so no Work is built; the caller's references keep the buffers alive
    _State.watchdog.wait(request, what, pg.timeout)
    if finish is not None:
        finish()
    return None


def _world(what: str) -> ProcessGroup:
    if _State.world is None:
        raise ValueError("Default process group has not been initialized, please make sure to call "
                         "init_process_group.")
    return _State.world


def _pg(group, what: str) -> ProcessGroup | None:
    """The group to use, None for a non-member (whose collectives do nothing, as in torch)."""
    world = _world(what)
    if group is None:
        return world
    if group is GroupMember.NON_GROUP_MEMBER:
        return None
    if not isinstance(group, ProcessGroup):
        raise TypeError(f"{what}: group must be a ProcessGroup from new_group(), got {type(group).__name__}")
    return group


def _group_rank(pg: ProcessGroup, global_rank: int, group_rank: int | None, what: str, name: str) -> int:
    """torch's ``src``/``dst`` are global ranks (``group_src``/``group_dst`` are group ranks)."""
    if group_rank is not None:
        if not 0 <= group_rank < pg.size():
            raise ValueError(f"{what}: group_{name}={group_rank} is not a rank of the group (size {pg.size()})")
        return group_rank
    if global_rank not in pg.ranks:
        raise ValueError(f"{what}: {name}={global_rank} is not a rank of the group (global ranks {pg.ranks})")
    return pg.ranks.index(global_rank)


def _peer(pg: ProcessGroup, global_rank: int | None, group_rank: int | None, what: str, name: str) -> int:
    """The group rank of a point-to-point peer, given as exactly one of a global or a group rank."""
    if global_rank is not None and group_rank is not None:
        raise ValueError(f"{what}: Can't specify both group_{name} and {name}")
    if global_rank is None and group_rank is None:
        raise ValueError(f"{what}: Must specify {name} (a global rank) or group_{name}")
    return _group_rank(pg, global_rank, group_rank, what, name)


def _check_tag(tag, what: str) -> None:
    # MPI's tags are non-negative and at most MPI_TAG_UB (at least 32767 by the standard)
    if not isinstance(tag, (int, np.integer)) or isinstance(tag, bool) or not 0 <= tag <= 32767:
        raise ValueError(f"{what}: tag must be an integer in [0, 32767] (MPI's guaranteed range), got {tag!r}")


_CHECKED_OPS = ("all_reduce", "reduce", "broadcast", "all_gather", "all_gather_into_tensor",
                "reduce_scatter_tensor", "gather", "scatter", "barrier",
                # the exchanges of _all_to_all.py
                "reduce_scatter", "all_to_all_single", "all_to_all")
_MAX_DIMS = 8


def _check_same_call(pg: ProcessGroup, what: str, array: np.ndarray | None) -> None:
    """With TORCH_DISTRIBUTED_DEBUG=DETAIL, as in torch, the ranks first compare which collective
    they are in and their tensor's shape and dtype: a mismatch (which MPI may not notice, e.g.
    all_reduce of 3 elements against 4) becomes an error naming both sides. One small
    all-gather per collective."""
    if not _State.detail:
        return
    shape = array.shape[:_MAX_DIMS] if array is not None else ()
    mine = np.full(3 + _MAX_DIMS, -1, np.int64)
    mine[:3] = (_CHECKED_OPS.index(what), array.dtype.num if array is not None else -1, len(shape))
    mine[3:3 + len(shape)] = shape
    everyone = np.empty((pg.size(), mine.size), np.int64)
    _State.watchdog.wait(pg.comm.Iallgather(mine, everyone), f"{what} (TORCH_DISTRIBUTED_DEBUG check)",
                         pg.timeout)
    other = next((r for r in range(pg.size()) if not np.array_equal(everyone[r], mine)), None)
    if other is not None:
        raise RuntimeError(f"Detected mismatch between collectives on ranks. Rank {pg.ranks[pg.rank()]} is "
                           f"running {_describe_call(mine)}, but rank {pg.ranks[other]} is running "
                           f"{_describe_call(everyone[other])}")


def _describe_call(fingerprint: np.ndarray) -> str:
    op, dtype_num, ndim = (int(v) for v in fingerprint[:3])
    if dtype_num < 0:
        return _CHECKED_OPS[op]
    dtype = next(np.dtype(t).name for t in np.sctypeDict.values() if np.dtype(t).num == dtype_num)
    return f"{_CHECKED_OPS[op]} on a tensor of shape {tuple(int(d) for d in fingerprint[3:3 + ndim])} ({dtype})"


def _buffer(tensor, what: str, name: str):
    """The NumPy array MPI reads and writes, and what copies it back into ``tensor`` afterwards
    (nothing for a contiguous CPU tensor: MPI works in its memory). MPI here is not CUDA-aware,
    so a CUDA tensor is staged through host memory, as torch's gloo backend does for CUDA
    tensors: one copy to the host now, one back onto the tensor's device (into its own memory,
    so the collective stays in place) when the collective completes."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{what}: {name} must be a Tensor, got {type(tensor).__name__}")
    data = tensor._data
    if type(data) is np.ndarray:
        flags = data.flags
        if flags.c_contiguous and flags.writeable:
            return data, None
    host = np.ascontiguousarray(_to_host(data))
    if host is data:
        host = host.copy()

    def write_back() -> None:
        data[...] = host if type(data) is np.ndarray else _backend.to_device(host, _backend.device_of(data))

    return host, write_back


def _to_host(data) -> np.ndarray:
    """A tensor's array in host memory (a device array is copied through the array-module seam)."""
    return data if type(data) is np.ndarray else _backend.to_device(data, _backend.CPU)


def _finisher(buffer: np.ndarray, op: ReduceOp, size: int, write_back):
    if op is not ReduceOp.AVG and write_back is None:
        return None

    def finish() -> None:
        if op is ReduceOp.AVG:
            # MPI has no average: sum, then divide (integers truncate, as NCCL's avg does)
            np.divide(buffer, size, out=buffer, casting="unsafe")
        if write_back is not None:
            write_back()

    return finish


def _scatter_into(tensor_list: list, gathered: np.ndarray):
    def finish() -> None:
        for t, row in zip(tensor_list, gathered):
            t._data[...] = row if type(t._data) is np.ndarray else _backend.to_device(row, _backend.device_of(t._data))
            t._bump_version()

    return finish


_OPS = {ReduceOp.SUM: "SUM", ReduceOp.AVG: "SUM", ReduceOp.PRODUCT: "PROD", ReduceOp.MIN: "MIN",
        ReduceOp.MAX: "MAX", ReduceOp.BAND: "BAND", ReduceOp.BOR: "BOR", ReduceOp.BXOR: "BXOR"}
# MPI reduces booleans only logically; torch's bool sum/max is "any", min/product "all"
_BITWISE_OPS = frozenset((ReduceOp.BAND, ReduceOp.BOR, ReduceOp.BXOR))
_BOOL_OPS = {ReduceOp.SUM: "LOR", ReduceOp.MAX: "LOR", ReduceOp.BOR: "LOR", ReduceOp.MIN: "LAND",
             ReduceOp.PRODUCT: "LAND", ReduceOp.BAND: "LAND", ReduceOp.BXOR: "LXOR"}


def _mpi_op(op, dtype: np.dtype, what: str):
    if not isinstance(op, ReduceOp):
        raise TypeError(f"{what}: op must be a dist.ReduceOp, got {op!r}")
    kind = dtype.kind
    if kind == "b":
        if op is ReduceOp.AVG:
            raise ValueError(f"{what}: ReduceOp.AVG is not defined for bool tensors")
        return getattr(_State.MPI, _BOOL_OPS[op])
    if op in _BITWISE_OPS and kind not in "iu":
        raise ValueError(f"{what}: {op} needs an integer or bool tensor, got {dtype}")
    return getattr(_State.MPI, _OPS[op])


def _check_list(tensors, size: int, like, what: str, name: str) -> None:
    if not isinstance(tensors, (list, tuple)) or len(tensors) != size:
        raise ValueError(f"{what}: {name} must be a list of {size} tensors (the group's size), got "
                         f"{_describe(tensors)}")
    for i, t in enumerate(tensors):
        if getattr(t, "shape", None) != like.shape or t.dtype != like.dtype:
            raise ValueError(f"{what}: {name}[{i}] has shape {tuple(getattr(t, 'shape', ()))} and dtype "
                             f"{getattr(t, 'dtype', None)}; expected {tuple(like.shape)} and {like.dtype} "
                             "like the tensor")


def _check_chunks(whole: np.ndarray, chunk: np.ndarray, size: int, what: str, whole_name: str,
                  chunk_name: str) -> None:
    if whole.size != size * chunk.size or whole.dtype != chunk.dtype:
        raise ValueError(f"{what}: {whole_name} of shape {whole.shape} ({whole.dtype}) must hold {size} "
                         f"(the group's size) times {chunk_name} of shape {chunk.shape} ({chunk.dtype})")


def _describe(value) -> str:
    return f"a {type(value).__name__} of length {len(value)}" if hasattr(value, "__len__") else type(value).__name__


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() else None


def _seconds(timeout) -> float:
    return timeout.total_seconds() if isinstance(timeout, datetime.timedelta) else float(timeout)
