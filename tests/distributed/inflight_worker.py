"""Run by test_inflight.py on 2 ranks: async collectives and receives whose Work and tensor are
dropped before ``wait()``. MPI still writes into their buffers when they complete, so the
buffers must outlive the caller's references; if they did not, the freed memory would be handed
to the garbage arrays allocated next and MPI would overwrite (or fault on) them."""

import gc
import sys

import numpy as np

import chainrule as torch
import chainrule.distributed as dist
from chainrule.distributed.distributed_c10d import _InFlight

# 1 MiB of float32: MPI's rendezvous path (the receiver's buffer is written late), and large
# enough that the allocator reuses freed blocks for the garbage below
N = 1 << 18


def check(condition: bool, message: str) -> None:
    if not condition:
        print(f"FAIL rank {dist.get_rank()}: {message}", flush=True)
        sys.exit(1)


def garbage() -> list:
    return [np.full(N, 7.0, np.float32) for _ in range(16)]


def untouched(junk: list) -> bool:
    return all(bool((block == 7.0).all()) for block in junk)


def main() -> None:
    dist.init_process_group("gloo")
    rank, size = dist.get_rank(), dist.get_world_size()
    expected = float(sum(range(1, size + 1)))

    # an async all_reduce dropped at once, Work and tensor, then collectives after it
    for round_ in range(3):
        dist.all_reduce(torch.full((N,), float(rank + 1)), async_op=True)
        gc.collect()
        junk = garbage()
        later = torch.full((N,), float(rank + 1))
        dist.all_reduce(later)
        check(bool((later.numpy() == expected).all()), f"round {round_}: the next all_reduce gave "
              f"{np.unique(later.numpy())[:4]} instead of {expected}")
        check(untouched(junk), f"round {round_}: a dropped all_reduce wrote into memory allocated after it")

    # the other collectives' buffers: a broadcast into a non-contiguous view (staged through a
    # copy), an all_gather_into_tensor's output, a reduce_scatter_tensor's input and output
    for name, start in (
        ("broadcast", lambda: dist.broadcast(torch.zeros(N, 2)[:, 0], src=0, async_op=True)),
        ("all_gather_into_tensor",
         lambda: dist.all_gather_into_tensor(torch.zeros(size * N), torch.ones(N), async_op=True)),
        ("reduce_scatter_tensor",
         lambda: dist.reduce_scatter_tensor(torch.zeros(N), torch.ones(size * N), async_op=True)),
    ):
        start()
        gc.collect()
        junk = garbage()
        later = torch.full((N,), float(rank + 1))
        dist.all_reduce(later)
        check(bool((later.numpy() == expected).all()), f"the all_reduce after a dropped {name} went wrong")
        check(untouched(junk), f"a dropped {name} wrote into memory allocated after it")

    # an irecv dropped before its sender even starts
    junk = None
    if rank == 1:
        dist.irecv(torch.zeros(N), src=0)
        gc.collect()
        junk = garbage()
    dist.barrier()
    if rank == 0:
        dist.send(torch.full((N,), 3.0), dst=1)
        dist.send(torch.full((N,), 5.0), dst=1)
    else:
        received = torch.zeros(N)
        dist.recv(received, src=0)
        # the first message went to the dropped receive, posted earlier with the same tag
        check(bool((received.numpy() == 5.0).all()), f"recv got {np.unique(received.numpy())[:4]}, not 5.0")
    dist.barrier()
    if junk is not None:
        check(untouched(junk), "a dropped irecv wrote into memory allocated after it")

    # the registry lets go of what MPI completed, and of what the caller waited for
    _InFlight.prune()
    check(not _InFlight.pending, f"{len(_InFlight.pending)} completed requests still held")
    held = torch.ones(4)
    work = dist.all_reduce(held, async_op=True)
    check(len(_InFlight.pending) == 1, f"an unwaited Work is not held: {len(_InFlight.pending)}")
    work.wait()
    check(not _InFlight.pending, f"a waited Work stays held: {_InFlight.pending}")
    check(held.tolist() == [float(size)] * 4, f"the held all_reduce gave {held.tolist()}")

    # destroy_process_group finishes a dropped collective and cancels a receive nobody matches
    dist.all_reduce(torch.ones(N), async_op=True)
    dist.irecv(torch.zeros(4), src=1 - rank, tag=7)
    gc.collect()
    dist.destroy_process_group()
    check(not _InFlight.pending, f"{len(_InFlight.pending)} requests outlive destroy_process_group")
    print(f"PASS rank {rank}", flush=True)


if __name__ == "__main__":
    main()
