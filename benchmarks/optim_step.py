"""Optimizer steps: chainrule vs PyTorch CPU, on one large parameter and on many small ones.

Run: python benchmarks/optim_step.py [repeats]   (or --small [repeats]: the many-small case only)
For each optimizer, the best wall and CPU times of ``repeats`` runs (default 5) of 5 steps on one
parameter of 10^6 float32 values with a fixed gradient; torch's column (and the ratio
chainrule/torch) only when torch is installed. torch runs single-threaded, like NumPy's
elementwise loops, so the ratio compares kernels, not thread counts.

Then the many-small-parameters case, where the per-parameter Python cost is what counts: 200
parameters of 100 float32 values, and the 24 parameters of a 2-layer ``nn.TransformerEncoder``
(d_model 32, 4 heads, feed-forward 2048: four 65,536-element matrices, the other 20 of 32 to
3,072 elements). CPU ms of one step (state already made), best of ``repeats`` runs of 20 steps.

One step's instruction count (exact where the shared machine's times are noise), after three
warm-up steps and ``gc.freeze()``, between ``callgrind_control -i on`` and ``-i off``::

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/optim_cg.out \
        python benchmarks/optim_step.py --callgrind Adam small [--torch] | grep Collected
"""

from __future__ import annotations

import gc
import os
import subprocess
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


SMALL_OPTIMIZERS = [
    ("SGD momentum", "SGD", dict(lr=0.01, momentum=0.9)),
    ("Adam", "Adam", dict(lr=1e-3)),
    ("AdamW", "AdamW", dict(lr=1e-3)),
    ("Adagrad", "Adagrad", dict(lr=0.01)),
    ("RMSprop", "RMSprop", dict(lr=0.01)),
    ("NAdam", "NAdam", dict()),
    ("Rprop", "Rprop", dict()),
    ("Adafactor", "Adafactor", dict()),
]
SMALL_STEPS = 20


def _small_shapes() -> list[tuple]:
    return [(100,)] * 200


def _transformer_shapes() -> list[tuple]:
    import chainrule as lib  # (the shapes only: torch's model has the same parameters)

    layer = lib.nn.TransformerEncoderLayer(d_model=32, nhead=4, batch_first=True)
    model = lib.nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
    return [tuple(p.shape) for p in model.parameters()]


SMALL_CASES = {"small": ("200 x 100", _small_shapes), "transformer": ("TransformerEncoder", _transformer_shapes)}


def _small_optimizer(lib, name: str, kwargs: dict, shapes: list[tuple]):
    """An optimizer over float32 parameters of ``shapes`` with fixed gradients, its state made by one step."""
    generator = np.random.default_rng(0)
    params = []
    for shape in shapes:
        param = lib.nn.Parameter(lib.tensor(generator.standard_normal(shape, dtype=np.float32)))
        param.grad = lib.tensor(generator.standard_normal(shape, dtype=np.float32))
        params.append(param)
    optimizer = getattr(lib.optim, name)(params, **kwargs)
    optimizer.step()
    return optimizer


def _best_step_cpu(optimizer, repeats: int) -> float:
    """The best CPU time of one step, in ms, over ``repeats`` runs of ``SMALL_STEPS`` steps."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(SMALL_STEPS):
            optimizer.step()
        best = min(best, time.process_time() - start)
    return 1000 * best / SMALL_STEPS


def small_parameters(torch, repeats: int) -> None:
    print(f"\none step on many small float32 parameters, best of {repeats} x {SMALL_STEPS} steps: CPU ms")
    print(f"{'optimizer':28s} {'case':20s} {'chainrule':>10s} {'torch':>8s} {'ratio':>6s}")
    for _, (case, shapes_of) in SMALL_CASES.items():
        shapes = shapes_of()
        for label, name, kwargs in SMALL_OPTIMIZERS:
            ours = _best_step_cpu(_small_optimizer(chainrule, name, kwargs, shapes), repeats)
            if torch is None or not hasattr(torch.optim, name):
                print(f"{label:28s} {case:20s} {ours:10.2f}")
                continue
            theirs = _best_step_cpu(_small_optimizer(torch, name, kwargs, shapes), repeats)
            print(f"{label:28s} {case:20s} {ours:10.2f} {theirs:8.2f} {ours / theirs:6.1f}")


def callgrind_step(name: str, case: str, use_torch: bool) -> None:
    """One step of optimizer ``name`` on ``case``'s parameters between callgrind's on and off."""
    if use_torch:
        import torch as lib
        lib.set_num_threads(1)
    else:
        lib = chainrule
    kwargs = next(kwargs for _, optimizer, kwargs in SMALL_OPTIMIZERS if optimizer == name)
    optimizer = _small_optimizer(lib, name, kwargs, SMALL_CASES[case][1]())
    for _ in range(3):
        optimizer.step()
    gc.collect()
    gc.freeze()
    subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True, capture_output=True)
    optimizer.step()
    subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=True, capture_output=True)


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
    small_parameters(torch, repeats)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--callgrind":
        callgrind_step(sys.argv[2], sys.argv[3], "--torch" in sys.argv[4:])
    elif len(sys.argv) > 1 and sys.argv[1] == "--small":
        try:
            import torch as oracle
            oracle.set_num_threads(1)
        except ImportError:
            oracle = None
        small_parameters(oracle, int(sys.argv[2]) if len(sys.argv) > 2 else 5)
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
