"""Run under MPI by test_exchange.py: ``exchange_worker.py SCENARIO``. Every rank builds every
other rank's data from its seed, so it can compute what torch defines for each collective with
NumPy, and checks its own results against that; it prints ``PASS rank R: N checks``."""

from __future__ import annotations

import datetime
import os
import sys
import time

import numpy as np

import chainrule as torch
import chainrule.distributed as dist

SCENARIO = sys.argv[1]
checks = 0


def check(condition: bool, message: str) -> None:
    global checks
    if not condition:
        raise AssertionError(message)
    checks += 1


def same(actual, expected, message: str) -> None:
    actual = actual.numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual)
    expected = np.asarray(expected)
    check(actual.dtype == expected.dtype and actual.shape == expected.shape and np.allclose(actual, expected),
          f"{message}: got {actual!r}, expected {expected!r}")


def raises(kind, fn, text: str, message: str) -> None:
    try:
        fn()
    except kind as exc:
        check(text in str(exc), f"{message}: the error says {str(exc)!r}, expected it to contain {text!r}")
        return
    raise AssertionError(f"{message}: expected {kind.__name__}")


def values(rank: int, rows: int, dtype, width: int = 2) -> np.ndarray:
    """Rank ``rank``'s input: rows tagged with the rank, so a misplaced row is visible."""
    base = np.arange(rows * width).reshape(rows, width) + 100 * rank
    return (base % 2 == 0) if dtype is np.bool_ else base.astype(dtype)


def uneven_splits(rank: int, size: int) -> list[int]:
    """How many rows rank ``rank`` sends to each rank: differs per pair, zero included."""
    return [(rank + 2 * peer) % 3 for peer in range(size)]


# ---------------------------------------------------------------------- tensors
def all_to_all_checks(rank: int, size: int) -> None:
    for dtype in (np.float32, np.float64, np.int64, np.bool_):
        # even split: rank r's rows [k*2, k*2+2) go to rank k
        mine = values(rank, 2 * size, dtype)
        out = torch.from_numpy(np.zeros_like(mine))
        memory = out.numpy().ctypes.data
        dist.all_to_all_single(out, torch.from_numpy(mine.copy()))
        expected = np.concatenate([values(r, 2 * size, dtype)[2 * rank:2 * rank + 2] for r in range(size)])
        same(out, expected, f"all_to_all_single even {dtype.__name__}")
        check(out.numpy().ctypes.data == memory, "all_to_all_single writes into the output's own memory")

        # uneven: split sizes differ per pair of ranks, some are zero
        sent = uneven_splits(rank, size)
        received = [uneven_splits(r, size)[rank] for r in range(size)]
        mine = values(rank, sum(sent), dtype, width=3)
        out = torch.from_numpy(np.zeros((sum(received), 3), dtype))
        work = dist.all_to_all_single(out, torch.from_numpy(mine), received, sent, async_op=True)
        check(work.wait() is True, "async all_to_all_single returns a Work whose wait() is True")
        expected = [values(r, sum(uneven_splits(r, size)), dtype, width=3) for r in range(size)]
        pieces = [expected[r][sum(uneven_splits(r, size)[:rank]):][:received[r]] for r in range(size)]
        same(out, np.concatenate(pieces), f"all_to_all_single uneven {dtype.__name__}")
        check(out.dtype == torch.from_numpy(mine).dtype, "all_to_all_single keeps the dtype")

        # list form, tensors of different sizes per peer
        inputs = [torch.from_numpy(values(rank, 1 + peer, dtype)) for peer in range(size)]
        outputs = [torch.from_numpy(np.zeros((1 + rank, 2), dtype)) for _ in range(size)]
        dist.all_to_all(outputs, inputs)
        for r in range(size):
            same(outputs[r], values(r, 1 + rank, dtype), f"all_to_all from rank {r} {dtype.__name__}")

    # a non-contiguous output is written back through a copy
    base = torch.zeros(2, 2 * size)
    dist.all_to_all_single(base.t(), torch.from_numpy(values(rank, 2 * size, np.float32)))
    expected = np.concatenate([values(r, 2 * size, np.float32)[2 * rank:2 * rank + 2] for r in range(size)])
    same(base.t(), expected, "all_to_all_single into a transposed view")

    # errors on the calling rank, before anything is sent (torch's types and words)
    raises(RuntimeError, lambda: dist.all_to_all_single(torch.zeros(size), torch.zeros(size), [1] * (size + 1),
                                                        [1] * size), "Number of tensor splits not equal to group size",
           "split list of the wrong length")
    raises(RuntimeError, lambda: dist.all_to_all_single(torch.zeros(size), torch.zeros(size), [1] * size,
                                                        [2] + [1] * (size - 1)),
           "Split sizes doesn't match total dim 0 size", "splits that don't add up")
    raises(RuntimeError, lambda: dist.all_to_all_single(torch.zeros(size + 1), torch.zeros(size + 1)),
           "does not divide equally", "rows not divisible by the group")
    raises(ValueError, lambda: dist.all_to_all_single(torch.zeros(size), torch.zeros(size, dtype=torch.float64)),
           "Invalid usage of tensors with different dtypes", "all_to_all_single dtypes differ")
    raises(RuntimeError, lambda: dist.all_to_all([torch.zeros(1)], [torch.zeros(1)] * size),
           f"output tensor list size 1 does not match world size {size}", "all_to_all list length")
    raises(ValueError, lambda: dist.all_to_all([torch.zeros(1)] * size, [torch.zeros(1, dtype=torch.int64)] * size),
           "Invalid usage of tensors with different dtypes", "all_to_all dtypes differ")
    raises(TypeError, lambda: dist.all_to_all(torch.zeros(size), [torch.zeros(1)] * size),
           "Expected parameter `output_tensor_list` of type List[torch.Tensor]", "all_to_all of a tensor")


def reduce_scatter_checks(rank: int, size: int) -> None:
    everyone = [[values(r, 2, np.float64) * (k + 1) for k in range(size)] for r in range(size)]
    for op, reference in ((dist.ReduceOp.SUM, np.sum), (dist.ReduceOp.MAX, np.max), (dist.ReduceOp.AVG, np.mean),
                          (dist.ReduceOp.PRODUCT, np.prod)):
        out = torch.zeros(2, 2, dtype=torch.float64)
        dist.reduce_scatter(out, [torch.from_numpy(a.copy()) for a in everyone[rank]], op=op)
        same(out, reference([everyone[r][rank] for r in range(size)], axis=0), f"reduce_scatter {op}")
    ints = torch.zeros(2, 2, dtype=torch.int64)
    work = dist.reduce_scatter(ints, [torch.from_numpy(values(rank, 2, np.int64) + k) for k in range(size)],
                               async_op=True)
    work.wait()
    same(ints, np.sum([values(r, 2, np.int64) + rank for r in range(size)], axis=0), "async int64 reduce_scatter")
    flags = torch.zeros(2, 2, dtype=torch.bool)
    dist.reduce_scatter(flags, [torch.from_numpy(values(rank, 2, np.bool_)) for _ in range(size)])
    same(flags, values(0, 2, np.bool_), "bool reduce_scatter is a logical or")
    raises(RuntimeError, lambda: dist.reduce_scatter(torch.zeros(2), [torch.zeros(2)] * (size + 1)),
           "invalid input tensor list size, must be world size", "reduce_scatter list length")
    raises(RuntimeError, lambda: dist.reduce_scatter(torch.zeros(2), [torch.zeros(3)] * size),
           "has shape (3,) but output has shape (2,)", "reduce_scatter shapes")
    raises(ValueError, lambda: dist.reduce_scatter(torch.zeros(2), [torch.zeros(2, dtype=torch.int64)] * size),
           "Invalid usage of tensors with different dtypes", "reduce_scatter dtypes")


def p2p_batch_checks(rank: int, size: int) -> None:
    # a ring in both directions at once, as pipeline-parallel code exchanges with its neighbours
    right, left = (rank + 1) % size, (rank - 1) % size
    from_left, from_right = torch.zeros(3), torch.zeros(3, dtype=torch.int64)
    ops = [dist.P2POp(dist.irecv, from_left, left), dist.P2POp(dist.isend, torch.full((3,), float(rank)), right),
           dist.P2POp(dist.irecv, from_right, right, tag=5),
           dist.P2POp(dist.isend, torch.arange(3) + 10 * rank, left, tag=5)]
    works = dist.batch_isend_irecv(ops)
    check(len(works) == 4, "one Work per op")
    for work in works:
        work.wait()
    same(from_left, np.full(3, float(left), np.float32), "batch_isend_irecv from the left")
    same(from_right, np.arange(3) + 10 * right, "batch_isend_irecv from the right")
    check(repr(ops[1]).startswith("P2POp(isend pg=") and f"group_src={rank}, group_dst={right}" in repr(ops[1]),
          f"P2POp's repr: {ops[1]!r}")
    raises(ValueError, lambda: dist.P2POp(dist.send, torch.ones(1), right), "Invalid ``op``", "P2POp with send")
    raises(ValueError, lambda: dist.batch_isend_irecv([1]), "Invalid ``p2p_op_list``", "a batch of non-P2POps")


def object_checks(rank: int, size: int) -> None:
    last = size - 1
    gathered = [None] * size if rank == last else None
    dist.gather_object({"rank": rank, "tail": "x" * rank}, gathered, dst=last)
    if rank == last:
        check(gathered == [{"rank": r, "tail": "x" * r} for r in range(size)], f"gather_object: {gathered}")
    plain = [None] * size if rank == 0 else None
    dist.gather_object(rank * 1.5, plain)
    check(plain is None or plain == [r * 1.5 for r in range(size)], "gather_object to rank 0 by default")
    raises(ValueError, lambda: dist.gather_object(1, [None] * size, dst=(rank + 1) % size),
           "must NOT be specified on non-destination ranks", "gather_object list on a non-destination rank")

    landed = [None]
    dist.scatter_object_list(landed, [[r] * r for r in range(size)] if rank == 0 else None, src=0)
    check(landed == [[rank] * rank], f"scatter_object_list: {landed}")
    raises(ValueError, lambda: dist.scatter_object_list([], None), "a list of size at least 1",
           "scatter_object_list into an empty list")

    peer = rank ^ 1
    if peer < size:
        if rank % 2 == 0:
            dist.send_object_list([rank, {"from": rank}, None], dst=peer)
            back = [None]
            check(dist.recv_object_list(back) == peer, "recv_object_list returns the sender")
            check(back == [("reply", peer)], f"recv_object_list: {back}")
        else:
            got = [None, None, None]
            check(dist.recv_object_list(got, src=peer) == peer, "recv_object_list from a named rank")
            check(got == [peer, {"from": peer}, None], f"recv_object_list: {got}")
            dist.send_object_list([("reply", rank)], dst=peer)
    raises(ValueError, lambda: dist.send_object_list([1], dst=rank), "destination rank should not be the same",
           "send_object_list to oneself")


def group_checks(rank: int, size: int) -> None:
    check(dist.get_backend_config() == "cpu:gloo,cuda:gloo", f"get_backend_config: {dist.get_backend_config()}")
    check(dist.get_backend() == dist.Backend.GLOO, "get_backend compares equal to Backend.GLOO")
    mine, pairs = dist.new_subgroups(2)
    check(len(pairs) == size // 2 and dist.get_process_group_ranks(mine) == [rank - rank % 2, rank - rank % 2 + 1],
          "new_subgroups(2): consecutive pairs")
    # every collective takes a subgroup: all_to_all_single within the pair
    out = torch.zeros(2)
    dist.all_to_all_single(out, torch.tensor([float(rank), float(rank) + 0.5]), group=mine)
    pair = dist.get_process_group_ranks(mine)
    same(out, np.array([pair[0] + 0.5 * (rank % 2), pair[1] + 0.5 * (rank % 2)], np.float32),
         "all_to_all_single in a subgroup")
    gathered = [None, None] if rank == pair[0] else None
    dist.gather_object(rank, gathered, dst=pair[0], group=mine)
    check(gathered is None or gathered == pair, "gather_object in a subgroup, dst a global rank")
    evens = [r for r in range(size) if r % 2 == 0]
    odds = [r for r in range(size) if r % 2]
    own, both = dist.new_subgroups_by_enumeration([evens, odds])
    check(dist.get_process_group_ranks(own) == (evens if rank % 2 == 0 else odds), "new_subgroups_by_enumeration")
    check(len(both) == 2 and both[1 - rank % 2] is dist.GroupMember.NON_GROUP_MEMBER,
          "the subgroup a rank is not in is NON_GROUP_MEMBER there")
    raises(ValueError, lambda: dist.new_subgroups(size + 1), f"must not exceed the world size ({size})",
           "new_subgroups larger than the world")
    raises(ValueError, lambda: dist.new_subgroups(0), "must be positive", "new_subgroups(0)")
    raises(ValueError, lambda: dist.new_subgroups_by_enumeration([[0, 1], [1]]),
           "Rank 1 has appeared in both subgroup [0, 1] and [1]", "overlapping subgroups")
    dist.monitored_barrier(timeout=datetime.timedelta(seconds=30))
    dist.monitored_barrier(group=mine, timeout=datetime.timedelta(seconds=30), wait_all_ranks=True)
    check(True, "monitored_barrier passes when every rank arrives")


def store_checks(rank: int, size: int) -> None:
    """One TCPStore server on rank 0 with every rank a client, and one FileStore file shared by all."""
    port = [None]
    master = dist.TCPStore("127.0.0.1", 0, size, True, timeout=datetime.timedelta(seconds=30),
                           wait_for_workers=False) if rank == 0 else None
    if rank == 0:
        port[0] = master.port
    dist.broadcast_object_list(port, src=0)
    store = master if rank == 0 else dist.TCPStore("127.0.0.1", port[0], size, False,
                                                   timeout=datetime.timedelta(seconds=30))
    store.set(f"rank{rank}", str(rank * 7))
    check(store.add("arrived", 1) >= 1, "TCPStore.add returns the new count")
    store.wait([f"rank{r}" for r in range(size)])
    check([store.get(f"rank{r}") for r in range(size)] == [str(r * 7).encode() for r in range(size)],
          "every rank reads every rank's key through the server")
    dist.barrier()
    check(store.get("arrived") == str(size).encode(), "the counter saw every rank")
    check(store.compare_set("winner", "", f"r{rank}") in [f"r{r}".encode() for r in range(size)],
          "compare_set elects one rank")
    path = os.environ["EXCHANGE_FILESTORE"]
    shared = dist.FileStore(path, size)
    shared.add("count", rank + 1)
    shared.set(f"k{rank}", b"\x00" * rank)
    shared.wait([f"k{r}" for r in range(size)])
    dist.barrier()
    check(int(shared.get("count")) == size * (size + 1) // 2, "FileStore.add from every process")
    check(shared.get(f"k{(rank + 1) % size}") == b"\x00" * ((rank + 1) % size), "FileStore values from another rank")
    dist.barrier()


def debug_checks(rank: int, size: int) -> None:
    """With TORCH_DISTRIBUTED_DEBUG=DETAIL (the 4-rank job), ranks that enter different exchanges
    all raise torch's mismatch error before anything is sent, and the job goes on."""
    if os.environ.get("TORCH_DISTRIBUTED_DEBUG") != "DETAIL":
        return
    try:
        if rank == 0:
            dist.all_to_all_single(torch.zeros(size), torch.zeros(size))
        else:
            dist.reduce_scatter(torch.zeros(2), [torch.zeros(2)] * size)
    except RuntimeError as exc:
        check("Detected mismatch between collectives on ranks" in str(exc) and "all_to_all_single" in str(exc)
              and "reduce_scatter on a tensor of shape (2,) (float32)" in str(exc), f"the mismatch error: {exc}")
    else:
        raise AssertionError("different exchanges on different ranks should raise under DETAIL")


def differentiable_checks(rank: int, size: int) -> None:
    """distributed.nn.functional: each rank's loss weights its output by (rank + 1), so the
    gradient of every input is known in closed form (each exchange is linear)."""
    import chainrule.distributed.nn.functional as F

    weights = sum(r + 1 for r in range(size))
    x = torch.tensor(values(rank, 2, np.float64), requires_grad=True)
    gathered = F.all_gather(x)
    check(len(gathered) == size and all(g.dtype == torch.float64 for g in gathered), "all_gather returns a tuple")
    for r in range(size):
        same(gathered[r].detach(), values(r, 2, np.float64), f"nn all_gather entry {r}")
    sum((k + 1) * (rank + 1) * g.sum() for k, g in enumerate(gathered)).backward()
    same(x.grad, np.full((2, 2), (rank + 1.0) * weights), "nn all_gather's gradient is a reduce-scatter")

    # double backward: the backward exchange is itself recorded (create_graph=True)
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    loss = sum((k + 1) * (g * g).sum() for k, g in enumerate(F.all_gather(x)))
    (first,) = torch.autograd.grad(loss, x, create_graph=True)
    same(first.detach(), 2 * size * (rank + 1) * np.array([1.0, 2.0]), "nn all_gather's first derivative")
    first.sum().backward()
    same(x.grad, np.full(2, 2.0 * size * (rank + 1)), "nn all_gather's second derivative")

    x = torch.tensor(values(rank, 2 * size, np.float64), requires_grad=True)
    y = F.all_to_all_single(torch.empty(2 * size, 2, dtype=torch.float64), x)
    same(y.detach(), np.concatenate([values(r, 2 * size, np.float64)[2 * rank:2 * rank + 2] for r in range(size)]),
         "nn all_to_all_single")
    ((rank + 1) * y).sum().backward()
    same(x.grad, np.repeat(np.arange(1.0, size + 1), 4).reshape(2 * size, 2),
         "nn all_to_all_single's gradient goes back to the sender")

    sent = uneven_splits(rank, size)
    received = [uneven_splits(r, size)[rank] for r in range(size)]
    x = torch.tensor(values(rank, sum(sent), np.float64, width=3), requires_grad=True)
    y = F.all_to_all_single(torch.empty(sum(received), 3, dtype=torch.float64), x, received, sent)
    ((rank + 1) * y).sum().backward()
    same(x.grad, np.repeat(np.repeat(np.arange(1.0, size + 1), sent), 3).reshape(-1, 3),
         "nn all_to_all_single uneven: each row's gradient is its receiver's weight")

    x = torch.tensor(values(rank, 2, np.float64), requires_grad=True)
    y = F.broadcast(x, src=size - 1)
    same(y.detach(), values(size - 1, 2, np.float64), "nn broadcast")
    ((rank + 1) * y).sum().backward()
    same(x.grad, np.full((2, 2), float(weights) if rank == size - 1 else 0.0),
         "nn broadcast's gradient is summed to the source")

    inputs = [torch.tensor(values(rank, 2, np.float64) * (k + 1), requires_grad=True) for k in range(size)]
    y = F.reduce_scatter(torch.empty(2, 2, dtype=torch.float64), inputs)
    same(y.detach(), sum(values(r, 2, np.float64) * (rank + 1) for r in range(size)), "nn reduce_scatter")
    ((rank + 1) * y).sum().backward()
    for k in range(size):
        same(inputs[k].grad, np.full((2, 2), k + 1.0), f"nn reduce_scatter's gradient of input_list[{k}]")


def cuda_checks(rank: int, size: int) -> None:
    """The new collectives on device='cuda' tensors (the CuPy stand-in here): results land on the
    tensor's device, all_to_all_single's in the output's own memory."""
    import chainrule.distributed.nn.functional as F

    def gpu(array):
        return torch.from_numpy(np.ascontiguousarray(array)).to("cuda")

    out = torch.zeros(2 * size, 2, device="cuda")
    memory = out._data
    dist.all_to_all_single(out, gpu(values(rank, 2 * size, np.float32)))
    check(out.device.type == "cuda" and out._data is memory, "cuda all_to_all_single stays in the output's memory")
    same(out.cpu(), np.concatenate([values(r, 2 * size, np.float32)[2 * rank:2 * rank + 2] for r in range(size)]),
         "cuda all_to_all_single")
    outs = [torch.zeros(1 + rank, 2, dtype=torch.int64, device="cuda") for _ in range(size)]
    dist.all_to_all(outs, [gpu(values(rank, 1 + peer, np.int64)) for peer in range(size)])
    for r in range(size):
        check(outs[r].device.type == "cuda", "cuda all_to_all fills tensors on their device")
        same(outs[r].cpu(), values(r, 1 + rank, np.int64), f"cuda all_to_all from rank {r}")
    reduced = torch.zeros(2, 2, dtype=torch.float64, device="cuda")
    dist.reduce_scatter(reduced, [gpu(values(rank, 2, np.float64) * (k + 1)) for k in range(size)])
    check(reduced.device.type == "cuda", "cuda reduce_scatter stays on the device")
    same(reduced.cpu(), sum(values(r, 2, np.float64) * (rank + 1) for r in range(size)), "cuda reduce_scatter")
    x = gpu(values(rank, 2, np.float64)).requires_grad_()
    gathered = F.all_gather(x)
    sum((k + 1) * g.sum() for k, g in enumerate(gathered)).backward()
    check(all(g.device.type == "cuda" for g in gathered) and x.grad.device.type == "cuda",
          "nn all_gather's outputs and gradient stay on cuda")
    same(x.grad.cpu(), np.full((2, 2), size * (rank + 1.0)), "nn all_gather's gradient on cuda")


def monitored_timeout(rank: int, size: int) -> None:
    """The last rank arrives late: rank 0 names it (torch's message), the others are not released."""
    late = size - 1
    if rank == late:
        time.sleep(0.8)
    for wait_all in (False, True):
        try:
            dist.monitored_barrier(timeout=datetime.timedelta(seconds=0.3), wait_all_ranks=wait_all)
        except RuntimeError as exc:
            if rank == 0:
                expected = f"[Rank 0]: Ranks {late} failed" if wait_all else f"[Rank 0]: Rank {late} failed"
                check(str(exc).startswith(expected) and "to pass monitoredBarrier in 300 ms" in str(exc),
                      f"rank 0's monitored_barrier error: {exc}")
            else:
                check("did not release" in str(exc), f"a waiting rank's error: {exc}")
        else:
            raise AssertionError("monitored_barrier should have timed out")
        if rank == late:
            time.sleep(0.8)
    dist.barrier()


def main() -> None:
    if os.environ["WORLD_SIZE"] == "4":
        # torch's store= form: the store is kept as the default store; MPI still connects the ranks
        rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        store = dist.FileStore(os.environ["EXCHANGE_FILESTORE"] + ".init", size)
        dist.init_process_group("gloo", store=store, rank=rank, world_size=size)
        from chainrule.distributed.distributed_c10d import _get_default_store

        check(_get_default_store() is store, "init_process_group keeps the store it was given")
        store.set(f"up{rank}", "1")
        store.wait([f"up{r}" for r in range(size)], datetime.timedelta(seconds=30))
        dist.barrier()
        store.close()
    else:
        dist.init_process_group("gloo")
    rank, size = dist.get_rank(), dist.get_world_size()
    scenarios = {"exchange": (all_to_all_checks, reduce_scatter_checks, p2p_batch_checks, object_checks,
                              group_checks, store_checks, debug_checks, differentiable_checks, cuda_checks, monitored_timeout)}
    for scenario in scenarios[SCENARIO]:
        scenario(rank, size)
    print(f"PASS rank {rank}: {checks} checks", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
