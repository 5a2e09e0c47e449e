"""Threads under contention: ``chainrule train`` and the same training loop on torch, with 1
thread, with all cores and with each library's default, on the machine as it is and beside a
competing busy process.

Run: ``python benchmarks/threads.py [--epochs 3] [--repeats 3]``. Every run is a fresh process
(thread pools are fixed when NumPy / torch load) with ``OPENBLAS_NUM_THREADS`` and
``OMP_NUM_THREADS`` set, or unset for "default" (chainrule then fits its BLAS threads to the
idle cores, torch takes all); the settings alternate within each repeat so that drift in the
machine's load hits all of them alike, and the table reports median wall seconds.

The loop is the digits CNN of ``chainrule train`` (two 3×3 convs, 2×2 max-pool, two linear layers;
Adam, batch 32), written once against the shared API and run on either library.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

LOOP = r"""
import sys, time
import numpy as np
lib = __import__(sys.argv[1])
if sys.argv[1] == "torch" and sys.argv[3] != "default":
    lib.set_num_threads(int(sys.argv[3]))
from chainrule import datasets
split = datasets.digits()
x, y = split.x_train.numpy(), split.y_train.numpy()
nn = lib.nn
lib.manual_seed(0)
model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))
optimizer = lib.optim.Adam(model.parameters(), lr=3e-3)
rng = np.random.default_rng(0)
for epoch in range(int(sys.argv[2])):
    order = rng.permutation(len(y))
    for start in range(0, len(y), 32):
        idx = order[start:start + 32]
        optimizer.zero_grad()
        loss = lib.nn.functional.cross_entropy(model(lib.from_numpy(x[idx])), lib.from_numpy(y[idx]))
        loss.backward()
        optimizer.step()
"""


CONDITIONS = ("as it is", "one busy process")


def _run(argv: list[str], threads) -> float:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CHAINRULE_NUM_THREADS")}
    if threads != "default":
        env.update(OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--conditions", nargs="+", choices=CONDITIONS, default=list(CONDITIONS))
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    thread_counts = [*sorted({1, cpus}), "default"]
    out = tempfile.mkdtemp(prefix="chainrule-threads-")
    runners = {
        "chainrule train": lambda t: [sys.executable, "-m", "chainrule", "train", "--epochs", str(args.epochs),
                                      "--out", out, "--overwrite"],
        "chainrule loop": lambda t: [sys.executable, "-c", LOOP, "chainrule", str(args.epochs), str(t)],
        "torch loop": lambda t: [sys.executable, "-c", LOOP, "torch", str(args.epochs), str(t)],
    }
    times: dict = {}
    load_before = os.getloadavg()[0]
    for condition in args.conditions:
        busy = None
        if condition != "as it is":
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            for _ in range(args.repeats):
                for threads in thread_counts:
                    for name, argv in runners.items():
                        seconds = _run(argv(threads), threads)
                        times.setdefault((condition, name, threads), []).append(seconds)
                        print(f"{condition:17s} {name:16s} threads {threads}: {seconds:6.2f} s", flush=True)
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
    print(f"\nmedian wall seconds, {args.epochs} epochs of the digits CNN, {cpus} cpus, load average "
          f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} at the end")
    header = "| condition | runner | " + " | ".join(f"threads {t}" for t in thread_counts) + " |"
    print(header)
    print("|" + "---|" * (2 + len(thread_counts)))
    for condition in args.conditions:
        for name in runners:
            cells = " | ".join(f"{statistics.median(times[(condition, name, t)]):.2f}" for t in thread_counts)
            print(f"| {condition} | {name} | {cells} |")


if __name__ == "__main__":
    main()
