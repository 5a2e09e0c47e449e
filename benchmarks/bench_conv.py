"""Quick conv benchmark: chainrule vs PyTorch CPU (2 threads), forward + backward to input and weight.

Run: OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 python benchmarks/bench_conv.py [threads]
(set the BLAS thread variables to the same count as the torch threads argument, default 2).
Prints the best wall and CPU time of each side and the ratio ours/torch per shape.
"""

from __future__ import annotations

import functools
import time

import numpy as np

import chainrule

SHAPES = [
    # name, conv dims, input shape, (out_channels, kernel), keyword args
    ("bench 32->64 3x3 p1", 2, (32, 32, 32, 32), (64, 3), dict(padding=1)),
    ("lenet1 1->16 5x5 p2", 2, (64, 1, 28, 28), (16, 5), dict(padding=2)),
    ("lenet2 16->32 5x5", 2, (64, 16, 14, 14), (32, 5), dict()),
    ("mnist1d 1->25 k5 s2 p1", 1, (100, 1, 40), (25, 5), dict(stride=2, padding=1)),
    ("mnist1d 25->25 k3 s2 p1", 1, (100, 25, 19), (25, 3), dict(stride=2, padding=1)),
]


POOLS = [
    # name, input shape, call on the functional namespace
    ("max_pool2d 2x2", (64, 16, 28, 28), lambda F, x: F.max_pool2d(x, 2)),
    ("max_pool2d 3x3 s2 p1", (32, 64, 32, 32), lambda F, x: F.max_pool2d(x, 3, 2, 1)),
    ("avg_pool2d 2x2", (64, 16, 28, 28), lambda F, x: F.avg_pool2d(x, 2)),
    ("adaptive_avg_pool2d 1", (32, 64, 8, 8), lambda F, x: F.adaptive_avg_pool2d(x, 1)),
    ("max_pool1d 2", (100, 25, 19), lambda F, x: F.max_pool1d(x, 2)),
]


def _pool_step(lib, call, functional, x):
    x.grad = None
    y = call(functional, x)
    y.backward(lib.ones_like(y))


def _step(lib, fn, x, w, b, kwargs):
    x.grad = w.grad = b.grad = None
    y = fn(x, w, b, **kwargs)
    y.backward(lib.ones_like(y))


def _time(run, repeats: int) -> tuple[float, float]:
    """Best wall time and best CPU time of ``repeats`` runs (the best filters out a busy machine)."""
    run()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(wall), min(cpu)


def main(threads: int = 2, repeats: int = 15) -> None:
    import torch

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    for name, d, shape, (out_channels, k), kwargs in SHAPES:
        x = rng.standard_normal(shape).astype(np.float32)
        w = rng.standard_normal((out_channels, shape[1]) + (k,) * d).astype(np.float32)
        b = rng.standard_normal(out_channels).astype(np.float32)
        times = []
        for lib, fn in ((chainrule, getattr(chainrule, f"conv{d}d")),
                        (torch, getattr(torch.nn.functional, f"conv{d}d"))):
            tensors = [lib.tensor(a, requires_grad=True) for a in (x, w, b)]
            times.append(_time(functools.partial(_step, lib, fn, *tensors, kwargs), repeats))
        _report(name, times)
    for name, shape, call in POOLS:
        x = rng.standard_normal(shape).astype(np.float32)
        times = []
        for lib, functional in ((chainrule, chainrule), (torch, torch.nn.functional)):
            tensor = lib.tensor(x, requires_grad=True)
            times.append(_time(functools.partial(_pool_step, lib, call, functional, tensor), repeats))
        _report(name, times)


def _report(name: str, times) -> None:
    (ours, ours_cpu), (theirs, theirs_cpu) = times
    print(f"{name:26s} wall: ours {ours * 1e3:7.2f} ms torch {theirs * 1e3:7.2f} ms ratio {ours / theirs:5.2f}"
          f" | cpu: ours {ours_cpu * 1e3:7.2f} ms torch {theirs_cpu * 1e3:7.2f} ms ratio {ours_cpu / theirs_cpu:5.2f}")


if __name__ == "__main__":
    import sys

    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
