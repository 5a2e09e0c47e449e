"""Reproduce the MNIST-1D paper's baseline table with chainrule.

Greydanus, "Scaling down deep learning" (2020), Table: test accuracy of a logistic regression
(32%), an MLP (68%), a CNN (94%) and a GRU (91%) on MNIST-1D. Same recipe as the paper's code:
Adam with lr 1e-2, batches of 100 taken in order (``(step * 100) % 4000``), 6000 steps, seed 42.

    python examples/mnist1d_table.py               # the full recipe (several minutes)
    python examples/mnist1d_table.py --steps 600   # a quick look
"""

from __future__ import annotations

import argparse
import time

import chainrule
from chainrule import datasets, models, optim
from chainrule.nn import functional as F

PAPER = {"logistic": 0.32, "mlp": 0.68, "cnn": 0.94, "gru": 0.91}


def accuracy(model, x, y) -> float:
    model.eval()
    with chainrule.no_grad():
        predicted = model(x)._data.argmax(axis=1)
    model.train()
    return float((predicted == y._data).mean())


def train(name: str, data, steps: int, batch_size: int, lr: float, seed: int, eval_every: int) -> dict:
    chainrule.manual_seed(seed)
    model = models.build(name, data.input_shape, data.num_classes)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    n, best, started = len(data.y_train), 0.0, time.perf_counter()
    for step in range(steps + 1):
        start = (step * batch_size) % n
        x, y = data.x_train[start:start + batch_size], data.y_train[start:start + batch_size]
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % eval_every == 0 or step == steps:
            best = max(best, accuracy(model, data.x_test, data.y_test))
    return {"final": accuracy(model, data.x_test, data.y_test), "best": best,
            "seconds": time.perf_counter() - started,
            "parameters": sum(p.numel() for p in model.parameters())}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6000, help="training steps per model (paper: 6000)")
    parser.add_argument("--models", default="logistic,mlp,cnn,gru", help="comma-separated model names")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--eval-every", type=int, default=250, help="steps between test evaluations")
    args = parser.parse_args(argv)

    data = datasets.mnist1d()
    print(f"MNIST-1D: {len(data.y_train)} train / {len(data.y_test)} test, {args.steps} steps of "
          f"{args.batch_size}, Adam lr {args.lr:g}, seed {args.seed}")
    print(f"{'model':<10}{'params':>8}{'paper':>8}{'ours':>8}{'best':>8}{'time':>9}")
    for name in args.models.split(","):
        r = train(name, data, args.steps, args.batch_size, args.lr, args.seed, args.eval_every)
        print(f"{name:<10}{r['parameters']:>8,}{PAPER.get(name, float('nan')):>8.0%}{r['final']:>8.1%}"
              f"{r['best']:>8.1%}{r['seconds']:>8.1f}s", flush=True)


if __name__ == "__main__":
    main()
