"""Instructions per training step, counted by callgrind: the hot-path reference between sessions.

Two workloads of small tensors, where the per-op Python path (dispatch, Tensor methods, the
autograd engine) is the cost and the arithmetic is not:

- ``op_overhead``: 200 chained ops (``(y * 0.9 + 0.1).tanh()`` repeated) on a (64,) float32 leaf
  that requires grad, then ``backward``;
- ``mlp_step``: a 2-layer MLP (Linear 64->64, ReLU, Linear 64->10) on a batch of 32,
  ``cross_entropy``, SGD with momentum: zero_grad, forward, backward, step.

Each runs 3 warm-up steps, then ``gc.collect(); gc.freeze()``, then ``--steps`` measured steps.
The instructions of one step are the total of a run with N steps minus that of a run with 0 steps
(import, model building and warm-up cancel), divided by N::

    export PYTHONHASHSEED=0 OPENBLAS_NUM_THREADS=1 PYTHONPATH=src PYTHONDONTWRITEBYTECODE=1
    for n in 0 200; do
        valgrind --tool=callgrind --callgrind-out-file=/tmp/cg_mlp_$n.out \\
            python benchmarks/callgrind_steps.py mlp_step --steps $n 2>&1 | grep Collected
    done
    # Ir per step = (Collected(200) - Collected(0)) / 200

A run's total still moves by a few hundred thousand Ir between identical runs (two 0-step runs
of one commit: 6,913,586,778 and 6,913,200,099), so N must make that small per step: 20 steps
resolve op_overhead (about 12.4M Ir a step) to under 1% (its two repeats of one commit: 0.7% apart),
while mlp_step (about 2.0M a step) needs 200 (at 20 steps its two repeats were 4.4% apart; at 200, 0.08%).

Compare two commits by running this same file in two worktrees of them, in the same environment.
``callgrind_annotate /tmp/cg_mlp_200.out`` (or diffing the per-function counts of two commits'
outputs) shows where a change went. ``--torch`` runs the same step on PyTorch.
"""

from __future__ import annotations

import argparse
import gc

import numpy as np

WARMUP = 3


def op_overhead(torch):
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(64).astype(np.float32))
    x.requires_grad_(True)

    def step():
        y = x
        for _ in range(200 // 3):
            y = (y * 0.9 + 0.1).tanh()
        x.grad = None
        y.sum().backward()

    return step


def mlp_step(torch):
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(32, 64)
    y = torch.randint(0, 10, (32,))

    def step():
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()

    return step


WORKLOADS = {"op_overhead": op_overhead, "mlp_step": mlp_step}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--steps", type=int, default=20, help="measured steps after the warm-up")
    parser.add_argument("--torch", action="store_true", help="run on PyTorch instead of chainrule")
    args = parser.parse_args()
    if args.torch:
        import torch
    else:
        import chainrule as torch
    step = WORKLOADS[args.workload](torch)
    for _ in range(WARMUP):
        step()
    gc.collect()
    gc.freeze()
    for _ in range(args.steps):
        step()


if __name__ == "__main__":
    main()
