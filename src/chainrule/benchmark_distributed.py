"""``chainrule bench --distributed``: data-parallel throughput and all-reduce bandwidth on MPI.

1. Throughput (samples/s) of the ``mlp_step`` and ``cnn_step`` workloads (the same models, batch
   sizes and SGD step as ``chainrule bench``) on 1 process, then on 2 processes under
   DistributedDataParallel, each process with one BLAS thread and its own batch of that size
   (weak scaling: 2 processes train on twice the samples per step).
2. ``dist.all_reduce`` of 1-64 MB float32 tensors against ``mpi4py``'s ``Allreduce`` on the same
   buffers, alternating the two so drift in the machine's speed hits both alike: the median
   times, the bandwidth (bytes / time) and our overhead on top of MPI.

Each measurement runs in a fresh MPI job started like ``chainrule run``; rank 0 reports.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

SIZES_MB = (1, 4, 16, 64)
WORKLOADS = ("mlp_step", "cnn_step")
RESULT_PREFIX = "RESULT "


# ------------------------------------------------------------------------------ in each rank
def _model(lib, name: str):
    """The model, batch and loss of ``chainrule.benchmark``'s workload ``name``."""
    from .benchmark import _data, _labels

    nn = lib.nn
    lib.manual_seed(0)
    if name == "mlp_step":
        model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
        return model, lib.from_numpy(_data(128, 784)), lib.from_numpy(_labels(128))
    model = nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(800, 120), nn.ReLU(), nn.Linear(120, 10))
    return model, lib.from_numpy(_data(64, 1, 28, 28)), lib.from_numpy(_labels(64))


def _time_steps(dist, step, reps: int) -> float:
    """Seconds for ``reps`` calls of ``step`` on every rank, after 3 warm-up calls."""
    for _ in range(3):
        step()
    dist.barrier()
    started = time.perf_counter()
    for _ in range(reps):
        step()
    dist.barrier()
    return time.perf_counter() - started


def _train_step(lib, model, x, y):
    optimizer = lib.optim.SGD(model.parameters(), lr=0.01)

    def step():
        optimizer.zero_grad()
        lib.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    return step


def _throughput(reps: int) -> dict:
    import chainrule as lib
    import chainrule.distributed as dist
    from chainrule.nn.parallel import DistributedDataParallel

    size = dist.get_world_size()
    results = {}
    for name in WORKLOADS:
        model, x, y = _model(lib, name)
        if size > 1:
            model = DistributedDataParallel(model)
        elapsed = _time_steps(dist, _train_step(lib, model, x, y), reps)
        results[name] = size * len(y) * reps / elapsed
    return results


def _bandwidth(reps: int) -> dict:
    from mpi4py import MPI

    import chainrule as lib
    import chainrule.distributed as dist

    comm = MPI.COMM_WORLD.Dup()
    results = {}
    for megabytes in SIZES_MB:
        tensor = lib.ones(megabytes * 1024 * 1024 // 4)
        contenders = {"chainrule": lambda t=tensor: dist.all_reduce(t),
                      "mpi4py": lambda buffer=tensor.numpy(): comm.Allreduce(MPI.IN_PLACE, buffer)}  # same memory
        times = {label: [] for label in contenders}
        count = max(5, min(reps, 256 // megabytes))
        for i in range(count + 1):
            for label in sorted(contenders, reverse=bool(i % 2)):
                comm.Barrier()
                started = time.perf_counter()
                contenders[label]()
                if i:  # the first round warms up
                    times[label].append(time.perf_counter() - started)
        results[megabytes] = {label: statistics.median(values) for label, values in times.items()}
    comm.Free()
    return results


def _worker(kind: str, reps: int) -> None:
    import chainrule.distributed as dist

    dist.init_process_group()
    result = _throughput(reps) if kind == "throughput" else _bandwidth(reps)
    if dist.get_rank() == 0:
        print(RESULT_PREFIX + json.dumps(result), flush=True)
    dist.destroy_process_group()


# ------------------------------------------------------------------------------ the driver
def _job(kind: str, nprocs: int, reps: int) -> dict:
    from .distributed.run import mpiexec_command

    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = mpiexec_command(nprocs) + [sys.executable, "-m", "chainrule.benchmark_distributed", kind, str(reps)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in result.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"bench --distributed: the {kind} job on {nprocs} processes failed:\n{result.stderr[-2000:]}")
    return json.loads(lines[0][len(RESULT_PREFIX):])


def main(reps: int | None = None, out: str | None = None) -> dict:
    reps = reps or 20
    print("chainrule bench --distributed: 1 BLAS thread per process; "
          f"{os.cpu_count()} CPUs on this machine", flush=True)
    one, two = _job("throughput", 1, reps), _job("throughput", 2, reps)
    print(f"\n{'workload':<10} {'1 process':>14} {'2 processes':>14} {'speed-up':>9} {'efficiency':>11}")
    throughput = {}
    for name in WORKLOADS:
        speedup = two[name] / one[name]
        throughput[name] = {"1": one[name], "2": two[name], "speedup": speedup}
        print(f"{name:<10} {one[name]:>10.0f} s/s {two[name]:>10.0f} s/s {speedup:>8.2f}x {speedup / 2:>10.0%}")
    bandwidth = {}
    measured = _job("allreduce", 2, reps)
    print(f"\nall_reduce on 2 processes (float32, in place; median of up to {reps} alternating runs)")
    print(f"{'size':>6} {'chainrule':>11} {'mpi4py':>11} {'chainrule':>11} {'mpi4py':>11} {'overhead':>9}")
    for megabytes, times in measured.items():
        nbytes = int(megabytes) * 1024 * 1024
        ours, theirs = times["chainrule"], times["mpi4py"]
        overhead = ours / theirs - 1
        bandwidth[megabytes] = {"chainrule_s": ours, "mpi4py_s": theirs, "overhead": overhead}
        print(f"{megabytes:>4}MB {ours * 1e3:>8.2f} ms {theirs * 1e3:>8.2f} ms "
              f"{nbytes / ours / 1e9:>6.2f} GB/s {nbytes / theirs / 1e9:>6.2f} GB/s {overhead:>+8.1%}")
    results = {"throughput_samples_per_s": throughput, "allreduce": bandwidth,
               "numpy": np.__version__, "cpus": os.cpu_count()}
    if out:
        with open(out, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    _worker(sys.argv[1], int(sys.argv[2]))
