"""Optimizer steps: chainrule vs PyTorch CPU, 5 steps on 10^6 float32 parameters.

Run: python benchmarks/optim_step.py [repeats]
For each optimizer, the best wall and CPU times of ``repeats`` runs (default 5) of 5 steps on one
parameter of 10^6 float32 values with a fixed gradient; torch's column (and the ratio
chainrule/torch) only when torch is installed. torch runs single-threaded, like NumPy's
elementwise loops, so the ratio compares kernels, not thread counts.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import chainrule

SIZE = 10**6
STEPS = 5

OPTIMIZERS = [
    # name, optimizer class name, keyword arguments
    ("SGD momentum", "SGD", dict(lr=0.01, momentum=0.9)),
    ("Adam", "Adam", dict(lr=1e-3)),
    ("AdamW", "AdamW", dict(lr=1e-3)),
    ("Adagrad", "Adagrad", dict(lr=0.01)),
    ("RMSprop centered+momentum", "RMSprop", dict(lr=0.01, centered=True, momentum=0.9)),
    ("Adadelta", "Adadelta", dict()),
    ("Adamax", "Adamax", dict()),
    ("NAdam", "NAdam", dict()),
    ("RAdam", "RAdam", dict()),
    ("ASGD", "ASGD", dict()),
]


def _steps(lib, name: str, kwargs: dict, weights: np.ndarray, gradient: np.ndarray):
    """A function that builds a fresh optimizer and takes ``STEPS`` steps (state creation included)."""
    def run():
        param = lib.nn.Parameter(lib.tensor(weights))
        param.grad = lib.tensor(gradient)
        optimizer = getattr(lib.optim, name)([param], **kwargs)
        for _ in range(STEPS):
            optimizer.step()
    return run


def _best(run, repeats: int) -> tuple[float, float]:
    """The best wall time and the best CPU time of ``repeats`` runs, in ms (the best filters out a
    busy machine; on a shared one the CPU time is the steadier of the two)."""
    run()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return 1000 * min(wall), 1000 * min(cpu)


def main(repeats: int = 5) -> None:
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        torch = None
    generator = np.random.default_rng(0)
    weights = generator.standard_normal(SIZE, dtype=np.float32)
    gradient = generator.standard_normal(SIZE, dtype=np.float32)
    print(f"{STEPS} steps on {SIZE} float32 parameters, best of {repeats}: wall and CPU ms")
    print(f"{'optimizer':28s} {'chainrule':>10s} {'torch':>8s} {'ratio':>6s} {'cpu':>7s} {'torch':>7s} {'ratio':>6s}")
    for label, name, kwargs in OPTIMIZERS:
        ours, ours_cpu = _best(_steps(chainrule, name, kwargs, weights, gradient), repeats)
        if torch is None:
            print(f"{label:28s} {ours:10.1f} {'':15s} {ours_cpu:7.1f}")
            continue
        theirs, theirs_cpu = _best(_steps(torch, name, kwargs, weights, gradient), repeats)
        print(f"{label:28s} {ours:10.1f} {theirs:8.1f} {ours / theirs:6.1f} {ours_cpu:7.1f} {theirs_cpu:7.1f} "
              f"{ours_cpu / theirs_cpu:6.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
