"""Run under MPI by test_distributed.py: ``worker.py SCENARIO``. Each rank checks its results
against a NumPy reference (or a single-process run) and prints ``PASS rank R: N checks``."""

from __future__ import annotations

import sys
import time

import numpy as np

import chainrule as torch
import chainrule.distributed as dist
from chainrule.nn.parallel import DistributedDataParallel as DDP

SCENARIO = sys.argv[1]
checks = 0


def check(condition: bool, message: str) -> None:
    global checks
    if not condition:
        raise AssertionError(message)
    checks += 1


def close(actual, expected, message: str, tol: float = 1e-6) -> None:
    actual = actual.numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual)
    check(actual.shape == np.shape(expected) and np.allclose(actual, expected, rtol=tol, atol=tol),
          f"{message}: got {actual}, expected {expected}")


def data(rank: int, shape=(3, 4), dtype=np.float32) -> np.ndarray:
    rng = np.random.default_rng(rank)
    if np.dtype(dtype).kind in "iu":
        return rng.integers(1, 5, shape).astype(dtype)
    return (rng.standard_normal(shape) + 2).astype(dtype)


def raises(kind, fn, message: str) -> None:
    try:
        fn()
    except kind:
        check(True, message)
        return
    raise AssertionError(f"{message}: expected {kind.__name__}")


# ---------------------------------------------------------------------- collectives vs NumPy
def collectives(rank: int, size: int) -> None:
    import os

    launcher = {name: os.environ.get(name) for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")}
    check(launcher == {"RANK": str(rank), "WORLD_SIZE": str(size), "LOCAL_RANK": str(rank),
                       "LOCAL_WORLD_SIZE": str(size)}, f"torchrun's variables: {launcher}")
    check("MASTER_ADDR" in os.environ and "MASTER_PORT" in os.environ, "MASTER_ADDR and MASTER_PORT are set")
    everyone = {dtype: [data(r, dtype=dtype) for r in range(size)] for dtype in (np.float32, np.float64, np.int64)}
    references = {
        dist.ReduceOp.SUM: lambda xs: np.sum(xs, axis=0),
        dist.ReduceOp.AVG: lambda xs: np.mean(xs, axis=0),
        dist.ReduceOp.MIN: lambda xs: np.min(xs, axis=0),
        dist.ReduceOp.MAX: lambda xs: np.max(xs, axis=0),
        dist.ReduceOp.PRODUCT: lambda xs: np.prod(xs, axis=0),
    }
    for dtype, values in everyone.items():
        for op, reference in references.items():
            if op is dist.ReduceOp.AVG and dtype is np.int64:
                continue
            t = torch.from_numpy(values[rank].copy())
            memory = t.numpy().ctypes.data
            dist.all_reduce(t, op=op)
            close(t, reference(values).astype(dtype), f"all_reduce {op} {dtype.__name__}", 1e-5)
            check(t.numpy().ctypes.data == memory, "all_reduce works in the tensor's own memory")
    flags = torch.tensor([rank == 0, True, False])
    dist.all_reduce(flags, op=dist.ReduceOp.SUM)
    check(flags.tolist() == [True, True, False], f"bool all_reduce is logical or: {flags.tolist()}")
    floats = everyone[np.float32]

    # a non-contiguous view is reduced through a copy written back into it
    base = torch.from_numpy(floats[rank].copy())
    view = base.t()
    dist.all_reduce(view)
    close(base, np.sum(floats, axis=0), "all_reduce of a transposed view")

    dst = size - 1
    t = torch.from_numpy(floats[rank].copy())
    dist.reduce(t, dst=dst, op=dist.ReduceOp.MAX)
    close(t, np.max(floats, axis=0) if rank == dst else floats[rank], "reduce to the last rank")

    t = torch.from_numpy(floats[rank].copy())
    dist.broadcast(t, src=dst)
    close(t, floats[dst], "broadcast from the last rank")

    gathered = [torch.zeros(3, 4) for _ in range(size)]
    dist.all_gather(gathered, torch.from_numpy(floats[rank]))
    for r in range(size):
        close(gathered[r], floats[r], f"all_gather entry {r}")

    flat = torch.zeros(size * 3, 4)
    dist.all_gather_into_tensor(flat, torch.from_numpy(floats[rank]))
    close(flat, np.concatenate(floats), "all_gather_into_tensor, concatenated")
    stacked = torch.zeros(size, 3, 4)
    dist.all_gather_into_tensor(stacked, torch.from_numpy(floats[rank]))
    close(stacked, np.stack(floats), "all_gather_into_tensor, stacked")

    inputs = [data(10 + r, (size * 2, 3)) for r in range(size)]
    for op in (dist.ReduceOp.SUM, dist.ReduceOp.AVG, dist.ReduceOp.MAX):
        out = torch.zeros(2, 3)
        dist.reduce_scatter_tensor(out, torch.from_numpy(inputs[rank]), op=op)
        close(out, references[op](inputs)[rank * 2:rank * 2 + 2], f"reduce_scatter_tensor {op}", 1e-5)

    targets = [torch.zeros(3, 4) for _ in range(size)] if rank == 0 else None
    dist.gather(torch.from_numpy(floats[rank]), targets, dst=0)
    if rank == 0:
        for r in range(size):
            close(targets[r], floats[r], f"gather entry {r}")

    pieces = [torch.full((2,), float(r * 10)) for r in range(size)] if rank == 0 else None
    received = torch.zeros(2)
    dist.scatter(received, pieces, src=0)
    close(received, np.full(2, rank * 10.0, np.float32), "scatter")

    objects = [None] * size
    dist.all_gather_object(objects, {"rank": rank, "name": f"r{rank}"})
    check(objects == [{"rank": r, "name": f"r{r}"} for r in range(size)], f"all_gather_object: {objects}")
    shared = [{"lr": 0.1}, "text", 3] if rank == 0 else [None, None, None]
    dist.broadcast_object_list(shared, src=0)
    check(shared == [{"lr": 0.1}, "text", 3], f"broadcast_object_list: {shared}")

    t = torch.from_numpy(floats[rank].copy())
    work = dist.all_reduce(t, async_op=True)
    check(work.wait() is True and work.is_completed(), "async all_reduce completes on wait()")
    close(t, np.sum(floats, axis=0), "async all_reduce")

    members = [0, size - 1]
    sub = dist.new_group(members)
    t = torch.from_numpy(floats[rank].copy())
    result = dist.all_reduce(t, group=sub)
    if rank in members:
        check(dist.get_rank(sub) == members.index(rank) and dist.get_world_size(sub) == 2, "new_group rank/size")
        close(t, floats[0] + floats[size - 1], "all_reduce in a subgroup")
        t = torch.full((2,), float(rank))
        dist.broadcast(t, src=size - 1, group=sub)  # src is a global rank, as in torch
        close(t, np.full(2, size - 1.0, np.float32), "broadcast in a subgroup from a global rank")
    else:
        check(result is None and dist.get_rank(sub) == -1, "a non-member's collective does nothing")
        close(t, floats[rank], "a non-member's tensor is untouched")
    dist.barrier()

    # errors are raised before anything is sent, naming the op
    raises(ValueError, lambda: dist.all_gather([torch.zeros(3, 4)] * (size + 1), torch.zeros(3, 4)),
           "all_gather with a list of the wrong length")
    raises(ValueError, lambda: dist.broadcast(torch.zeros(2), src=size), "broadcast from a rank that doesn't exist")
    raises(TypeError, lambda: dist.all_reduce(np.zeros(2)), "all_reduce of a non-Tensor")
    raises(ValueError, lambda: dist.init_process_group(), "init_process_group twice")
    dist.barrier()


def cuda_collectives(rank: int, size: int) -> None:
    """Every collective on CUDA tensors (the stand-in in CI): the same results as on the CPU, in
    place on the tensor's device, staged through the host with one copy each way."""
    from chainrule.testing import standin

    floats = [data(r) for r in range(size)]

    def on_gpu(array):
        return torch.from_numpy(np.array(array)).to("cuda")

    for op, reference in ((dist.ReduceOp.SUM, np.sum), (dist.ReduceOp.AVG, np.mean), (dist.ReduceOp.MAX, np.max)):
        t = on_gpu(floats[rank])
        memory, before = t._data, standin.transfers()
        dist.all_reduce(t, op=op)
        check(standin.transfers() - before == 2, f"all_reduce {op} stages through the host: one copy each way")
        check(t.device.type == "cuda" and t._data is memory, f"all_reduce {op} stays in the GPU tensor's memory")
        close(t.cpu(), reference(floats, axis=0), f"all_reduce {op} on cuda", 1e-5)
    ints = on_gpu(data(rank, dtype=np.int64))
    dist.all_reduce(ints)
    close(ints.cpu(), np.sum([data(r, dtype=np.int64) for r in range(size)], axis=0), "int64 all_reduce on cuda")

    base = on_gpu(floats[rank])
    dist.all_reduce(base.t())
    close(base.cpu(), np.sum(floats, axis=0), "all_reduce of a transposed view of a cuda tensor")

    dst = size - 1
    t = on_gpu(floats[rank])
    dist.reduce(t, dst=dst, op=dist.ReduceOp.MAX)
    close(t.cpu(), np.max(floats, axis=0) if rank == dst else floats[rank], "reduce on cuda")
    t = on_gpu(floats[rank])
    dist.broadcast(t, src=dst)
    check(t.device.type == "cuda", "broadcast leaves the tensor on its device")
    close(t.cpu(), floats[dst], "broadcast on cuda")

    gathered = [torch.zeros(3, 4, device="cuda") for _ in range(size)]
    dist.all_gather(gathered, on_gpu(floats[rank]))
    for r in range(size):
        check(gathered[r].device.type == "cuda", "all_gather fills cuda tensors on their device")
        close(gathered[r].cpu(), floats[r], f"all_gather entry {r} on cuda")
    flat = torch.zeros(size * 3, 4, device="cuda")
    dist.all_gather_into_tensor(flat, on_gpu(floats[rank]))
    close(flat.cpu(), np.concatenate(floats), "all_gather_into_tensor on cuda")
    inputs = [data(10 + r, (size * 2, 3)) for r in range(size)]
    out = torch.zeros(2, 3, device="cuda")
    dist.reduce_scatter_tensor(out, on_gpu(inputs[rank]), op=dist.ReduceOp.AVG)
    close(out.cpu(), np.mean(inputs, axis=0)[rank * 2:rank * 2 + 2], "reduce_scatter_tensor AVG on cuda", 1e-5)

    targets = [torch.zeros(3, 4, device="cuda") for _ in range(size)] if rank == 0 else None
    dist.gather(on_gpu(floats[rank]), targets, dst=0)
    if rank == 0:
        for r in range(size):
            close(targets[r].cpu(), floats[r], f"gather entry {r} on cuda")
    pieces = [torch.full((2,), float(r * 10), device="cuda") for r in range(size)] if rank == 0 else None
    received = torch.zeros(2, device="cuda")
    dist.scatter(received, pieces, src=0)
    close(received.cpu(), np.full(2, rank * 10.0, np.float32), "scatter on cuda")

    t = on_gpu(floats[rank])
    work = dist.all_reduce(t, async_op=True)
    check(work.wait() is True, "async all_reduce on cuda completes on wait()")
    close(t.cpu(), np.sum(floats, axis=0), "async all_reduce on cuda: written back on wait")

    import chainrule.distributed.nn as dist_nn

    x = torch.tensor([float(rank + 1), 2.0], device="cuda", requires_grad=True)
    total = dist_nn.all_reduce(x)
    (total * (rank + 1)).sum().backward()
    check(total.device.type == "cuda" and x.grad.device.type == "cuda", "distributed.nn.all_reduce stays on cuda")
    close(x.grad.cpu(), np.full(2, float(sum(r + 1 for r in range(size)))), "distributed.nn.all_reduce's gradient")
    dist.barrier()


def point_to_point(rank: int, size: int) -> None:
    """send/recv and isend/irecv around a ring, on CPU tensors and on (stand-in) CUDA tensors:
    each rank receives its left neighbour's values, in place, on the tensor's device."""
    right, left = (rank + 1) % size, (rank - 1) % size
    for device in ("cpu", "cuda"):
        mine = torch.from_numpy(data(rank)).to(device)
        received = torch.zeros(3, 4, device=device)
        memory = received._data
        # even ranks send first, odd ranks receive first: blocking calls that cannot deadlock
        if rank % 2 == 0:
            dist.send(mine, dst=right)
            sender = dist.recv(received, src=left)
        else:
            sender = dist.recv(received, src=left)
            dist.send(mine, dst=right)
        check(sender == left and received._data is memory and received.device.type == device,
              f"recv on {device}: from rank {sender}, in place")
        close(received.cpu(), data(left), f"send/recv around the ring on {device}")

        incoming = torch.zeros(4, 3, device=device).t()  # a non-contiguous view receives through a copy
        work_in = dist.irecv(incoming, group_src=left, tag=7)
        work_out = dist.isend(mine, dst=right, tag=7)
        work_out.wait()
        work_in.wait()
        close(incoming.cpu(), data(left), f"isend/irecv with a tag into a transposed view on {device}")

        if rank == 0:
            senders = set()
            for _ in range(size - 1):
                anyone = torch.zeros(2, device=device)
                sender = dist.recv(anyone)  # from any rank: the sender is returned
                close(anyone.cpu(), np.full(2, float(sender), np.float32), f"recv from any rank on {device}")
                senders.add(sender)
            check(senders == set(range(1, size)), f"recv from any rank names each sender: {senders}")
        else:
            dist.send(torch.full((2,), float(rank), device=device), dst=0)
        dist.barrier()
    raises(ValueError, lambda: dist.send(torch.zeros(2), dst=rank), "send to oneself")
    raises(ValueError, lambda: dist.recv(torch.zeros(2), src=right, group_src=0), "both src and group_src")
    raises(ValueError, lambda: dist.isend(torch.zeros(2), dst=right, tag=-1), "a negative tag")
    raises(ValueError, lambda: dist.isend(torch.zeros(2)), "no destination")
    dist.barrier()


# ---------------------------------------------------------------------- DDP vs one process
class WithUnusedBranch(torch.nn.Module):
    def __init__(self, body) -> None:
        super().__init__()
        self.body = body
        self.unused = torch.nn.Linear(4, 4)  # never in the loss: find_unused_parameters' case

    def forward(self, x):
        return self.body(x)


def make_model(seed: int, unused_branch: bool = False):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 16),
                                torch.nn.ReLU(), torch.nn.Linear(16, 3))
    return WithUnusedBranch(model) if unused_branch else model


def batches(steps: int, global_batch: int):
    rng = np.random.default_rng(1234)
    return [(rng.standard_normal((global_batch, 6)).astype(np.float32), rng.integers(0, 3, global_batch))
            for _ in range(steps)]


def forward_loss(model, x, y, device="cpu"):
    return torch.nn.functional.cross_entropy(model(torch.from_numpy(x).to(device)), torch.from_numpy(y).to(device))


def train_ddp(rank: int, size: int, accumulate: int, device="cpu", **ddp_options) -> list[np.ndarray]:
    """Per rank: its slice of each global batch; ranks start from different seeds."""
    model = DDP(make_model(100 + rank, ddp_options.pop("unused_branch", False)).to(device), **ddp_options)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    per_rank = 8
    for x, y in batches(4, per_rank * size * accumulate):
        optimizer.zero_grad()
        for micro in range(accumulate):
            start = (micro * size + rank) * per_rank
            xs, ys = x[start:start + per_rank], y[start:start + per_rank]
            if micro < accumulate - 1:
                with model.no_sync():
                    forward_loss(model, xs, ys, device).backward()
            else:
                forward_loss(model, xs, ys, device).backward()
        optimizer.step()
    return [p.detach().cpu().numpy().copy() for p in model.module.parameters()]


def train_single(size: int, accumulate: int, unused_branch: bool = False, device="cpu") -> list[np.ndarray]:
    """One process on the same global batches: the loss of each micro-step's global batch."""
    model = make_model(100, unused_branch).to(device)  # rank 0's initial values, which DDP broadcasts
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    per_rank = 8
    for x, y in batches(4, per_rank * size * accumulate):
        optimizer.zero_grad()
        for micro in range(accumulate):
            chunk = slice(micro * size * per_rank, (micro + 1) * size * per_rank)
            forward_loss(model, x[chunk], y[chunk], device).backward()
        optimizer.step()
    return [p.detach().cpu().numpy().copy() for p in model.parameters()]


def ddp(rank: int, size: int) -> None:
    model = DDP(make_model(100 + rank))
    flat = np.concatenate([p.detach().numpy().ravel() for p in model.parameters()])
    everyone = torch.zeros(size * flat.size)
    dist.all_gather_into_tensor(everyone, torch.from_numpy(flat))
    check(np.array_equal(everyone.numpy().reshape(size, -1), np.tile(flat, (size, 1))),
          "construction broadcasts rank 0's parameters")
    check(list(model.state_dict())[0] == "module.0.weight", "state_dict keys carry module., as torch's")
    check(len(model._buckets) == 1, "one bucket by default for a small model")

    cases = [("plain", 1, {}), ("no_sync accumulation", 3, {}), ("tiny buckets", 1, {"bucket_cap_mb": 0.0005}),
             ("unused parameters", 2, {"find_unused_parameters": True, "unused_branch": True,
                                       "bucket_cap_mb": 0.0005})]
    for name, accumulate, options in cases:
        reference = train_single(size, accumulate, options.get("unused_branch", False))
        result = train_ddp(rank, size, accumulate, **dict(options))
        worst = max(float(np.abs(a - b).max()) for a, b in zip(result, reference))
        print(f"rank {rank}: {name}: max |DDP - single process| = {worst:.2e}", flush=True)
        check(worst < 1e-5, f"DDP ({name}) equals the single-process run: max difference {worst:.2e}")
    check(len(DDP(make_model(0), bucket_cap_mb=0.0005)._buckets) > 2, "a small cap makes several buckets")


def ddp_cuda(rank: int, size: int) -> None:
    """DDP of a module on the (stand-in) GPU: the same cases as on the CPU, each equal to one
    process training on the whole batch; its gradients never leave the GPU except for the
    staging copies of the all-reduce (one each way per bucket)."""
    from chainrule.testing import standin

    check(torch.cuda.is_available() and torch.cuda.device_count() == 1, "the stand-in is the one GPU")
    model = DDP(make_model(100 + rank).to("cuda:0"), device_ids=[0])
    check(model.device_ids == [0] and model.output_device == 0 and model.device == torch.device("cuda", 0),
          "device_ids and output_device as torch keeps them")
    check(all(p.device.type == "cuda" for p in model.parameters()), "the parameters stay on the GPU")
    flat = np.concatenate([p.detach().cpu().numpy().ravel() for p in model.parameters()])
    everyone = torch.zeros(size * flat.size)
    dist.all_gather_into_tensor(everyone, torch.from_numpy(flat))
    check(np.array_equal(everyone.numpy().reshape(size, -1), np.tile(flat, (size, 1))),
          "construction broadcasts rank 0's parameters into the GPU tensors")

    x, y = batches(1, 8 * size)[0]
    out = model(torch.from_numpy(x[rank * 8:(rank + 1) * 8]))  # device_ids: forward moves the input
    check(out.device.type == "cuda", "a CPU input is moved to device_ids[0] as torch does")
    loss = torch.nn.functional.cross_entropy(out, torch.from_numpy(y[rank * 8:(rank + 1) * 8]).cuda())
    before = standin.transfers()
    loss.backward()
    buckets = len(model._buckets)
    check(standin.transfers() - before == 2 * buckets,
          f"backward copies only the staged buckets ({standin.transfers() - before} copies, {buckets} buckets)")
    check(all(p.grad.device.type == "cuda" for p in model.parameters()), "averaged gradients are on the GPU")

    cases = [("plain", 1, {}), ("no_sync accumulation", 3, {}), ("tiny buckets", 1, {"bucket_cap_mb": 0.0005}),
             ("unused parameters", 2, {"find_unused_parameters": True, "unused_branch": True,
                                       "bucket_cap_mb": 0.0005}),
             ("device_ids=None", 1, {"device_ids": None})]
    for name, accumulate, options in cases:
        options = dict({"device_ids": [0]}, **options)
        reference = train_single(size, accumulate, options.get("unused_branch", False), device="cuda")
        on_cpu = train_single(size, accumulate, options.get("unused_branch", False))
        result = train_ddp(rank, size, accumulate, device="cuda", **options)
        worst = max(float(np.abs(a - b).max()) for a, b in zip(result, reference))
        print(f"rank {rank}: cuda {name}: max |DDP - single process| = {worst:.2e}", flush=True)
        check(worst < 1e-5, f"DDP on cuda ({name}) equals the single-process run: max difference {worst:.2e}")
        worst = max(float(np.abs(a - b).max()) for a, b in zip(result, on_cpu))
        check(worst < 1e-5, f"DDP on cuda ({name}) equals the single-process CPU run: max difference {worst:.2e}")

    cpu_model, gpu_model = make_model(0), make_model(0).cuda()
    raises(ValueError, lambda: DDP(cpu_model, device_ids=[0]), "device_ids for a CPU module")
    raises(ValueError, lambda: DDP(gpu_model, device_ids=[0, 1]), "two device_ids")
    raises(RuntimeError, lambda: DDP(gpu_model, device_ids=[1]), "device_ids naming another GPU than the module's")
    mixed = make_model(0)
    mixed[0].cuda()
    raises(ValueError, lambda: DDP(mixed), "a module with CPU and CUDA parameters")


def make_bn_model(seed: int):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Linear(4 * 3 * 3, 2))


def sync_bn(rank: int, size: int, device: str = "cpu") -> None:
    """SyncBatchNorm under DDP equals one BatchNorm over the global batch: outputs, gradients
    (DDP averages the per-rank means of equal-sized slices) and running statistics, over
    three SGD steps; and distributed.nn.all_reduce's gradient is the all-reduced gradient."""
    import chainrule.distributed.nn as dist_nn

    per_rank = 3
    rng = np.random.default_rng(7)
    steps = [(rng.standard_normal((per_rank * size, 3, 5, 5)).astype(np.float32) * 2 + 1) for _ in range(3)]
    single = make_bn_model(0).to(device)
    single_opt = torch.optim.SGD(single.parameters(), lr=0.05)
    synced = DDP(torch.nn.SyncBatchNorm.convert_sync_batchnorm(make_bn_model(0)).to(device))
    check(isinstance(synced.module[1], torch.nn.SyncBatchNorm), "convert_sync_batchnorm replaced BatchNorm2d")
    synced_opt = torch.optim.SGD(synced.parameters(), lr=0.05)
    for x in steps:
        single_opt.zero_grad()
        whole = single(torch.from_numpy(x).to(device))
        (whole ** 2).mean().backward()
        synced_opt.zero_grad()
        mine = synced(torch.from_numpy(x[rank * per_rank:(rank + 1) * per_rank]).to(device))
        (mine ** 2).mean().backward()
        close(mine.detach().cpu(), whole.detach().cpu().numpy()[rank * per_rank:(rank + 1) * per_rank],
              "SyncBatchNorm output",
              1e-5)
        for (name, p), q in zip(synced.module.named_parameters(), single.parameters()):
            close(p.grad.cpu(), q.grad.cpu().numpy(), f"SyncBatchNorm gradient of {name}", 1e-5)
        single_opt.step()
        synced_opt.step()
    bn, reference = synced.module[1], single[1]
    close(bn.running_mean.cpu(), reference.running_mean.cpu().numpy(), "running_mean", 1e-5)
    close(bn.running_var.cpu(), reference.running_var.cpu().numpy(), "running_var", 1e-5)
    check(int(bn.num_batches_tracked) == 3, "num_batches_tracked counts the steps")
    synced.eval()
    single.eval()
    close(synced(torch.from_numpy(steps[0][:2]).to(device)).detach().cpu(),
          single(torch.from_numpy(steps[0][:2]).to(device)).detach().cpu().numpy(), "eval mode uses the running statistics",
          1e-5)
    if device != "cpu":
        return

    x = torch.tensor([float(rank + 1), 2.0 * rank], requires_grad=True)
    total = dist_nn.all_reduce(x)
    close(total.detach(), [sum(r + 1.0 for r in range(size)), sum(2.0 * r for r in range(size))], "all_reduce value")
    (total * (rank + 1)).sum().backward()
    expected = float(sum(r + 1 for r in range(size)))
    close(x.grad, [expected, expected], "all_reduce's gradient is the sum of every rank's upstream gradient")
    mean = dist_nn.all_reduce(x, op=dist.ReduceOp.AVG)
    close(mean.detach(), total.detach().numpy() / size, "all_reduce AVG")


def unused_without_flag(rank: int, size: int) -> None:
    model = DDP(make_model(0, unused_branch=True))
    forward_loss(model, *batches(1, 4)[0]).backward()
    model(torch.zeros(2, 6))  # raises: the reduction never finished


# ---------------------------------------------------------------------- failures
def fail(rank: int, size: int) -> None:
    if rank == 1:
        raise ValueError("boom on purpose")
    dist.all_reduce(torch.ones(3))  # would wait forever for rank 1 without the tear-down


def partial(rank: int, size: int) -> None:
    if rank == 0:
        dist.all_reduce(torch.ones(3))  # the others never call it: times out, names the op
    else:
        time.sleep(60)


def different_collectives(rank: int, size: int) -> None:
    dist.all_reduce(torch.ones(2, 3))
    if rank == 0:
        dist.all_reduce(torch.ones(3))
    else:
        dist.broadcast(torch.ones(4, dtype=torch.float64), src=0)


def mismatch(rank: int, size: int) -> None:
    torch.manual_seed(0)
    width = 5 if rank == 1 else 4
    DDP(torch.nn.Sequential(torch.nn.Linear(3, width), torch.nn.Linear(width, 2)))


def main() -> None:
    """Runs SCENARIO; ``a,b,...`` runs several in turn in one launch (starting MPI ranks costs
    seconds), each printing ``PASS <scenario> rank R`` when its checks pass; the first failure
    ends the job."""
    import datetime

    global checks
    timeout = datetime.timedelta(seconds=3) if SCENARIO == "partial" else None
    dist.init_process_group("gloo" if SCENARIO == "collectives" else None, timeout=timeout)
    rank, size = dist.get_rank(), dist.get_world_size()
    scenarios = SCENARIO.split(",")
    for name in scenarios:
        checks = 0
        {"collectives": collectives, "ddp": ddp, "fail": fail, "partial": partial, "mismatch": mismatch,
         "different_collectives": different_collectives, "unused_without_flag": unused_without_flag,
         "sync_bn": sync_bn, "ddp_cuda": ddp_cuda, "cuda_collectives": cuda_collectives,
         "point_to_point": point_to_point, "sync_bn_cuda": lambda rank, size: sync_bn(rank, size, "cuda")}[name](
            rank, size)
        print(f"PASS {name} rank {rank}: {checks} checks" if len(scenarios) > 1 else f"PASS rank {rank}: {checks} checks",
              flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
