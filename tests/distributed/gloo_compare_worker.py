"""The same exchanges run on torch's gloo (``--torch``: 2 processes forked by ``mp.start_processes``) and on
chainrule under our launcher; each rank writes what it got to ``OUT_DIR/<library>_<rank>.json``
and test_exchange_vs_gloo.py compares the two libraries' files entry by entry."""

from __future__ import annotations

import json
import os
import sys


def results(torch, dist, rank: int, size: int) -> dict:
    """Every outcome as plain JSON: tensors as (dtype name, nested list), errors as (type, words)."""
    out: dict = {}

    def tensor(t):
        return [str(t.dtype).split(".")[-1], t.tolist()]

    def attempt(name, fn):
        try:
            value = fn()
            out[name] = ["ok", value]
        except Exception as exc:  # noqa: BLE001 - the error's type is what is compared
            out[name] = ["error", type(exc).__name__]

    def rows(r, n, dtype, width=2):
        base = torch.arange(n * width).reshape(n, width) + 100 * r
        return (base % 2 == 0) if dtype == torch.bool else base.to(dtype)

    for dtype in (torch.float32, torch.float64, torch.int64, torch.bool):
        name = str(dtype).split(".")[-1]
        o = torch.zeros(2 * size, 2, dtype=dtype)
        dist.all_to_all_single(o, rows(rank, 2 * size, dtype))
        out[f"a2as even {name}"] = tensor(o)
        sent = [(rank + 2 * p) % 3 for p in range(size)]
        received = [((r + 2 * rank) % 3) for r in range(size)]
        o = torch.zeros(sum(received), 3, dtype=dtype)
        dist.all_to_all_single(o, rows(rank, sum(sent), dtype, 3), received, sent)
        out[f"a2as uneven {name}"] = tensor(o)
        # gloo wants every tensor of the lists shaped alike (chainrule, like NCCL, takes any sizes)
        outs = [torch.zeros(2, 2, dtype=dtype) for _ in range(size)]
        dist.all_to_all(outs, [rows(rank + 10 * p, 2, dtype) for p in range(size)])
        out[f"a2a {name}"] = [tensor(t) for t in outs]
    for op in ("SUM", "MAX", "MIN", "PRODUCT"):
        o = torch.zeros(2, 2, dtype=torch.float64)
        dist.reduce_scatter(o, [rows(rank, 2, torch.float64) * (k + 1) for k in range(size)],
                            op=getattr(dist.ReduceOp, op))
        out[f"reduce_scatter {op}"] = tensor(o)
    gathered = [None] * size if rank == 0 else None
    dist.gather_object({"rank": rank, "text": "x" * rank}, gathered, dst=0)
    out["gather_object"] = gathered
    landed = [None]
    dist.scatter_object_list(landed, [[r, str(r)] for r in range(size)] if rank == 0 else None, src=0)
    out["scatter_object_list"] = landed
    if rank == 0:
        dist.send_object_list([{"a": 1}, "two", 3.0], dst=1)
    else:
        got = [None, None, None]
        out["recv_object_list sender"] = dist.recv_object_list(got, src=0)
        out["recv_object_list"] = got
    right, left = (rank + 1) % size, (rank - 1) % size
    received_tensor = torch.zeros(3)
    for work in dist.batch_isend_irecv([dist.P2POp(dist.irecv, received_tensor, left),
                                        dist.P2POp(dist.isend, torch.full((3,), float(rank)), right)]):
        work.wait()
    out["batch_isend_irecv"] = tensor(received_tensor)
    out["get_backend_config"] = dist.get_backend_config()

    # the differentiable collectives: outputs and gradients, each rank weighting its loss by rank + 1
    import importlib

    F = importlib.import_module(dist.__name__ + ".nn.functional")
    x = torch.arange(4.0, dtype=torch.float64).reshape(2, 2).add(10 * rank).requires_grad_()
    gathered_tensors = F.all_gather(x)
    sum((k + 1) * (rank + 1) * g.sum() for k, g in enumerate(gathered_tensors)).backward()
    out["nn all_gather"] = [[tensor(g.detach()) for g in gathered_tensors], tensor(x.grad)]
    x = torch.arange(4.0 * size, dtype=torch.float64).reshape(2 * size, 2).add(10 * rank).requires_grad_()
    y = F.all_to_all_single(torch.empty(2 * size, 2, dtype=torch.float64), x)
    ((rank + 1) * y * y).sum().backward()
    out["nn all_to_all_single"] = [tensor(y.detach()), tensor(x.grad)]
    x = torch.arange(4.0, dtype=torch.float64).add(rank).requires_grad_()
    y = F.broadcast(x, src=1)
    ((rank + 1) * y).sum().backward()
    out["nn broadcast"] = [tensor(y.detach()), tensor(x.grad)]

    x = torch.arange(4.0, dtype=torch.float64).add(rank).requires_grad_()
    pieces = F.gather(x, dst=1)
    # weights that vary along the tensor: torch's gloo scatters an expanded gradient (a plain .sum()'s)
    # from its one stored element, and the receiving ranks read memory past it
    sum(((k + 1) * (rank + 1) * torch.arange(1.0, 5.0, dtype=torch.float64) * p).sum()
        for k, p in enumerate(pieces)).backward()
    out["nn gather"] = [[tensor(p.detach()) for p in pieces], tensor(x.grad)]
    parts = [torch.arange(3.0, dtype=torch.float64).add(10 * rank + k).requires_grad_() for k in range(size)]
    y = F.scatter(parts, src=0)
    ((rank + 1) * y * y).sum().backward()
    out["nn scatter"] = [tensor(y.detach()), [tensor(p.grad) for p in parts]]
    x = torch.arange(4.0, dtype=torch.float64).add(rank).requires_grad_()
    y = F.reduce(x, dst=1)
    ((rank + 1) * y).sum().backward()
    # off rank dst torch leaves gloo's scratch values in the output (its docs: only dst's is defined)
    out["nn reduce"] = [tensor(y.detach()) if rank == 1 else None, tensor(x.grad)]
    parts = [torch.arange(3.0, dtype=torch.float64).add(10 * rank + k).requires_grad_() for k in range(size)]
    received = F.all_to_all([torch.empty(3, dtype=torch.float64) for _ in range(size)], parts)
    sum((k + 1) * (rank + 1) * r.sum() for k, r in enumerate(received)).backward()
    out["nn all_to_all"] = [[tensor(r.detach()) for r in received], [tensor(p.grad) for p in parts]]
    parts = [torch.arange(3.0, dtype=torch.float64).add(10 * rank + k).requires_grad_() for k in range(size)]
    y = F.reduce_scatter(torch.empty(3, dtype=torch.float64), parts)
    ((rank + 1) * y).sum().backward()
    out["nn reduce_scatter"] = [tensor(y.detach()), [tensor(p.grad) for p in parts]]

    # errors raised on the calling rank before anything is sent
    attempt("error split count", lambda: dist.all_to_all_single(torch.zeros(4), torch.zeros(4), [2, 2], [4]))
    attempt("error split sum", lambda: dist.all_to_all_single(torch.zeros(4), torch.zeros(4), [2, 2], [1, 2]))
    attempt("error a2as dtypes", lambda: dist.all_to_all_single(torch.zeros(4), torch.zeros(4, dtype=torch.float64)))
    attempt("error a2a list", lambda: dist.all_to_all([torch.zeros(2)], [torch.zeros(2)] * size))
    attempt("error a2a dtypes", lambda: dist.all_to_all([torch.zeros(2)] * size,
                                                        [torch.zeros(2, dtype=torch.int64)] * size))
    attempt("error a2a not a list", lambda: dist.all_to_all(torch.zeros(2), [torch.zeros(2)] * size))
    attempt("error reduce_scatter list", lambda: dist.reduce_scatter(torch.zeros(2), [torch.zeros(2)]))
    attempt("error reduce_scatter dtypes", lambda: dist.reduce_scatter(
        torch.zeros(2), [torch.zeros(2, dtype=torch.int64)] * size))
    attempt("error send_object_list self", lambda: dist.send_object_list([1], dst=rank))
    attempt("error P2POp op", lambda: dist.P2POp(dist.send, torch.ones(1), right))
    attempt("error batch not P2POps", lambda: dist.batch_isend_irecv([1]))
    attempt("error new_subgroups size", lambda: dist.new_subgroups(size + 1))
    attempt("error subgroups overlap", lambda: dist.new_subgroups_by_enumeration([[0, 1], [1]]))
    return out


def run(torch, dist, rank: int, size: int, out_dir: str, library: str) -> None:
    found = results(torch, dist, rank, size)
    with open(os.path.join(out_dir, f"{library}_{rank}.json"), "w") as handle:
        json.dump(found, handle)
    dist.barrier()
    dist.destroy_process_group()


def _torch_rank(rank: int, size: int, out_dir: str, port: str) -> None:
    import torch
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    dist.init_process_group("gloo", rank=rank, world_size=size)
    run(torch, dist, rank, size, out_dir, "torch")


if __name__ == "__main__":
    if sys.argv[1] == "--torch":
        import torch.multiprocessing as mp

        # forked from this interpreter, which has imported torch: spawn's children each imported it again
        mp.start_processes(_torch_rank, args=(2, sys.argv[2], sys.argv[3]), nprocs=2, start_method="fork")
    else:
        import chainrule
        import chainrule.distributed as cdist

        cdist.init_process_group("gloo")
        run(chainrule, cdist, cdist.get_rank(), cdist.get_world_size(), sys.argv[1], "chainrule")
