"""Subgroups (``new_subgroups``, ``new_subgroups_by_enumeration``), ``monitored_barrier`` and
the backend questions that need a process group (``get_backend_config``)."""

from __future__ import annotations

import datetime
import time
import warnings

import numpy as np

from . import distributed_c10d as c10d
from ._backend_names import backend_config

__all__ = ["new_subgroups", "new_subgroups_by_enumeration", "monitored_barrier", "get_backend_config"]


def new_subgroups(group_size: int | None = None, group=None, timeout=None, backend=None, pg_options=None,
                  group_desc=None):
    """Split ``group``'s ranks into consecutive subgroups of ``group_size``; returns this rank's
    subgroup and the list of all of them (a rank outside one gets ``GroupMember.NON_GROUP_MEMBER``
    in its place). Every rank must call it."""
    if group_size is None:
        from .. import cuda

        if not cuda.is_available():
            raise ValueError("Default group size only takes effect when CUDA is available.If your subgroup using "
                             "a backend that does not depend on CUDA,please pass in 'group_size' correctly.")
        group_size = cuda.device_count()
    if group_size <= 0:
        raise ValueError(f"The arg 'group_size' ({group_size}) must be positive")
    world_size = c10d.get_world_size(group)
    if world_size < group_size:
        raise ValueError(f"The arg 'group_size' ({group_size}) must not exceed the world size ({world_size})")
    if world_size % group_size != 0:
        raise ValueError(f"The world size ({world_size}) must be divisible by 'group_size={group_size}'")
    ranks = c10d.get_process_group_ranks(c10d._world("new_subgroups") if group is None else group)
    return new_subgroups_by_enumeration([ranks[i:i + group_size] for i in range(0, len(ranks), group_size)],
                                        timeout=timeout, backend=backend, pg_options=pg_options,
                                        group_desc=group_desc)


def new_subgroups_by_enumeration(ranks_per_subgroup_list, timeout=None, backend=None, pg_options=None,
                                 group_desc=None):
    """One subgroup per list of global ranks (the lists must not overlap); returns this rank's
    subgroup (None if it is in none) and the list of all of them. Every rank must call it."""
    if ranks_per_subgroup_list is None or len(ranks_per_subgroup_list) == 0:
        raise ValueError("The arg 'ranks_per_subgroup_list' cannot be empty")
    # overlap is checked before any group is made (torch finds it while making them): every rank
    # sees the same lists, so every rank raises and none is left waiting in a new_group
    owner: dict[int, list[int]] = {}
    for ranks in ranks_per_subgroup_list:
        for rank in ranks:
            if rank in owner:
                raise ValueError(f"Rank {rank} has appeared in both subgroup {owner[rank]} and {ranks}")
            owner[rank] = ranks
    me = c10d.get_rank()
    subgroups, mine = [], None
    for ranks in ranks_per_subgroup_list:
        subgroup = c10d.new_group(ranks=ranks, timeout=timeout, backend=backend, pg_options=pg_options,
                                  group_desc=group_desc)
        subgroups.append(subgroup)
        if me in ranks:
            mine = subgroup
    return mine, subgroups


def get_backend_config(group=None) -> str:
    """The group's backend per device, as torch writes it: ``"cpu:gloo,cuda:gloo"``."""
    pg = c10d._pg(group, "get_backend_config")
    if pg is None:
        raise ValueError("Invalid process group specified")
    return backend_config(pg.backend)


# monitored_barrier's messages use tags above the 32767 user code may pick, one per call
# (cycling), so a late rank's arrival is never taken for a later barrier's
_MONITOR_TAG_BASE = 40000
_MONITOR_TAG_CYCLE = 10000


def monitored_barrier(group=None, timeout=None, wait_all_ranks: bool = False) -> None:
    """A barrier that names the ranks that did not arrive: every rank reports to the group's
    rank 0, which waits up to ``timeout`` and then raises torch's ``RuntimeError`` ("Rank 1
    failed to pass monitoredBarrier in 1000 ms"; with ``wait_all_ranks=True`` every missing
    rank is named), instead of the job hanging. The other ranks wait for rank 0's release and
    raise if it does not come in time."""
    pg = c10d._pg(group, "monitored_barrier")
    if pg is None:
        return None
    if timeout is None:
        timeout = datetime.timedelta(seconds=pg.timeout)
    elif isinstance(timeout, (int, float)):
        warnings.warn("Please specify timeout arg as a timedelta. "
                      f"Converting current value of {timeout} assuming it represents seconds", stacklevel=2)
        timeout = datetime.timedelta(seconds=timeout)
    if not isinstance(timeout, datetime.timedelta):
        raise TypeError(f"Expected timeout argument to be of type datetime.timedelta, got {type(timeout)}")
    calls = getattr(pg, "_monitored_barriers", 0)
    pg._monitored_barriers = calls + 1
    tag = _MONITOR_TAG_BASE + calls % _MONITOR_TAG_CYCLE
    milliseconds = int(timeout.total_seconds() * 1000)
    deadline = time.monotonic() + timeout.total_seconds()
    me, comm = pg.rank(), pg.comm
    token = np.zeros(1, np.int8)
    if me != 0:
        arrival = comm.Isend(token, dest=0, tag=tag)
        release = comm.Irecv(np.zeros(1, np.int8), source=0, tag=tag)
        if not _wait_until(release, deadline):
            _cancel(release)
            # our arrival stays posted: rank 0 keeps listening for it (see below)
            raise RuntimeError(f"[Rank {pg.ranks[me]}]: monitoredBarrier: rank 0 of the group did not release this "
                               f"rank within {milliseconds} ms (rank 0 failed, or found another rank missing)")
        arrival.Wait()  # rank 0 released us, so it has our arrival: this returns at once
        return None
    arrivals = {rank: comm.Irecv(np.zeros(1, np.int8), source=rank, tag=tag) for rank in range(1, pg.size())}
    missing = []
    for rank, request in arrivals.items():
        if not _wait_until(request, deadline):
            missing.append(rank)
            if not wait_all_ranks:
                break
    if missing:
        # the late ranks' arrivals are still to come: leave their receives posted (kept on the
        # group) so the messages land there, instead of cancelling them, which leaves each late
        # message unmatched and costs MPI_Finalize seconds
        pg._late_arrivals = getattr(pg, "_late_arrivals", []) + [r for r in arrivals.values() if not r.Test()]
        names = [pg.ranks[r] for r in missing]
        if wait_all_ranks:
            raise RuntimeError(f"[Rank {pg.ranks[0]}]: Ranks {', '.join(map(str, names))} failed to pass "
                               f"monitoredBarrier in {milliseconds} ms")
        raise RuntimeError(f"[Rank {pg.ranks[0]}]: Rank {names[0]} failed to pass monitoredBarrier in "
                           f"{milliseconds} ms")
    for rank in arrivals:
        comm.Isend(token, dest=rank, tag=tag).Wait()
    return None


def _wait_until(request, deadline: float) -> bool:
    """Poll ``request`` until it completes (True) or ``deadline`` passes (False). Polling, not the
    watchdog: running out of time here is an answer, not a reason to end the job."""
    while not request.Test():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.001)
    return True


def _cancel(request) -> None:
    # a cancelled receive must still be completed to free it
    request.Cancel()
    request.Wait()
