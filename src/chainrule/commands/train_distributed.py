"""``chainrule train --nprocs N``: the same training, data-parallel on N MPI processes.

The parent process re-launches ``chainrule train`` (same arguments) on N ranks through
``mpiexec``. Every rank draws the same shuffled global batches as the one-process run (same
seed, same sampler) and trains on its contiguous share of each; DistributedDataParallel
averages the gradients. Each rank's loss is its share's *sum* scaled by N / global batch size,
so the average over ranks is exactly the global batch's mean, even for a ragged last batch:
N processes follow the one-process run's trajectory (up to float rounding) and reach the same
accuracy. Rank 0 logs, evaluates and writes the outputs.
"""

from __future__ import annotations

import argparse
import math
import os
import time

WORKER_VARIABLE = "CHAINRULE_TRAIN_WORKER"


def run(args) -> int:
    if os.environ.get(WORKER_VARIABLE) == "1":
        return _run_rank(args)
    return _launch(args)


def _launch(args) -> int:
    from ..cli import CommandError
    from ..distributed.run import launch
    from .train import _check_args, _device, choose_out

    _check_args(args)
    _device(args.device)  # a missing GPU or CuPy stops here, once, not on every rank
    # the parent picks the run directory once (versioned, or refused without --overwrite), so
    # the ranks, which each parse the same command line, agree on it
    args.out = choose_out(args.out, args.dataset, args.model, args.overwrite)
    args.overwrite = True
    environment = dict(os.environ, **{WORKER_VARIABLE: "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    try:
        return launch(args.nprocs, ["chainrule.cli", "train", *_argv(args)], module=True, env=environment)
    except FileNotFoundError as exc:
        raise CommandError(str(exc)) from None


def _argv(args) -> list[str]:
    """The command line that gives ``args`` back (so the ranks see exactly the user's options)."""
    from .train import add_arguments

    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    argv = []
    for action in parser._actions:
        value = getattr(args, action.dest, None)
        if not action.option_strings or value == action.default:
            continue
        flag = max(action.option_strings, key=len)
        if isinstance(action, argparse._StoreTrueAction):
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, str(value)]
    return argv


def _run_rank(args) -> int:
    import chainrule
    import chainrule.distributed as dist
    from chainrule.nn import functional as F
    from chainrule.nn.parallel import DistributedDataParallel

    from .. import models
    from ..cli import CommandError
    from ..utils.data import DataLoader, TensorDataset
    from .train import (
        DEFAULTS,
        GradientWatch,
        _check_args,
        _default_lr,
        _device,
        load_dataset,
        make_optimizer,
        report_epoch,
        select_subset,
        write_run,
    )

    _check_args(args)
    dist.init_process_group()
    rank, size = dist.get_rank(), dist.get_world_size()
    lead = rank == 0
    epochs = args.epochs or DEFAULTS[args.dataset][0]
    batch_size = args.batch_size or DEFAULTS[args.dataset][1]
    lr = args.lr or _default_lr(args.dataset, args.optimizer)
    out = args.out or os.path.join("runs", f"{args.dataset}-{args.model}")
    if lead:
        try:
            os.makedirs(out, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"can't create output directory {out!r}: {exc.strerror}") from None

    split = load_dataset(args.dataset)
    x_train, y_train = split.x_train, split.y_train
    if args.limit is not None:
        keep = chainrule.from_numpy(select_subset(y_train._data, args.limit, args.seed))
        x_train, y_train = x_train[keep], y_train[keep]
    device = rank_device(_device(args.device), rank)
    x_train, y_train = x_train.to(device), y_train.to(device)
    chainrule.manual_seed(args.seed)
    model = models.build(args.model, split.input_shape, split.num_classes).to(device)
    if device.type == "cpu":
        ddp = DistributedDataParallel(model)
    else:
        # DistributedDataParallel reduces CPU gradients only (MPI; NCCL through CuPy is not built):
        # on GPUs the ranks start from rank 0's weights and average their gradients after each
        # backward in one all-reduce of the flattened gradients, staged through the host
        with chainrule.no_grad():
            for p in model.parameters():
                host = p.detach().cpu().clone()
                dist.broadcast(host, src=0)
                p.copy_(host.to(device))
        ddp = model
    optimizer = make_optimizer(args.optimizer, ddp.parameters(), lr)
    watch = GradientWatch(model) if args.watch_grads and lead else None
    if lead:
        n_params = sum(p.numel() for p in model.parameters())
        where = "" if device.type == "cpu" else f" on {args.device} (rank r on cuda:r % {_device_count()})"
        print(f"training {args.model} ({n_params:,} parameters) on {args.dataset} with {size} processes{where}: "
              f"{len(y_train)} train / {len(split.y_test)} test examples, {epochs} epochs, global batch "
              f"{batch_size}, {args.optimizer} lr {lr:g}", flush=True)

    # the one-process run's batches, in its order: every rank cuts its share from each
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=batch_size, shuffle=True,
                        generator=chainrule.Generator().manual_seed(args.seed))
    rows, started = [], time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        for xb, yb in loader:
            n = len(yb)
            start, stop = n * rank // size, n * (rank + 1) // size
            # a rank whose share is empty still joins the all-reduce, with a zero gradient
            share = slice(start, stop) if stop > start else slice(0, 1)
            weight = size / n if stop > start else 0.0
            loss = F.cross_entropy(ddp(xb[share]), yb[share], reduction="sum") * weight
            optimizer.zero_grad()
            loss.backward()
            if ddp is model:
                _average_gradients(dist, list(model.parameters()))
            if watch is not None:
                watch.record()
            optimizer.step()
            value = loss.item()  # float(loss) would warn: it drops a graph (torch 2.13)
            if not math.isfinite(value):
                raise CommandError(f"the loss became {value} on rank {rank} in epoch {epoch}: lower --lr (now {lr:g})")
        if lead:
            rows.append(report_epoch(model, x_train, y_train, split, epoch, epochs, started, watch))

    if lead:
        settings = {"dataset": args.dataset, "model": args.model, "epochs": epochs, "batch_size": batch_size,
                    "lr": lr, "optimizer": args.optimizer, "seed": args.seed, "limit": args.limit,
                    "nprocs": size}
        write_run(out, rows, model, split, args, settings, f"{args.model} on {args.dataset} ({size} processes)")
    dist.barrier()
    dist.destroy_process_group()
    return 0



def _device_count() -> int:
    import chainrule

    return chainrule.cuda.device_count()


def rank_device(device, rank: int):
    """Where ``rank`` trains: the CPU; with ``--device cuda``, one GPU per rank (``cuda:rank %
    device_count``, so ranks share GPUs round-robin when there are fewer); ``--device cuda:K`` pins
    every rank to GPU K. The device is made current, so the rank's arrays are allocated there."""
    import chainrule

    if device.type == "cpu":
        return device
    index = device.index if device.index is not None else rank % _device_count()
    if index != chainrule.cuda.current_device():
        chainrule.cuda.set_device(index)
    return chainrule.device("cuda", index)


def _average_gradients(dist, params: list) -> None:
    """Every parameter's gradient replaced by its mean over the ranks, in one all-reduce."""
    import chainrule

    grads = [p.grad for p in params if p.grad is not None]
    with chainrule.no_grad():
        host = chainrule.cat([g.reshape(-1) for g in grads]).cpu()  # MPI reads and writes host memory
        dist.all_reduce(host, op=dist.ReduceOp.AVG)
        flat = host.to(grads[0].device)
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()
