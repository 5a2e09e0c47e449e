"""Does one library's idle thread pool slow the other's steps when both live in one process, as in
``chainrule bench``?

The benchmark alternates the libraries step by step. Between their parallel regions both
libraries' worker threads spin rather than sleep: OpenBLAS's for up to about 0.1 s after a GEMM
(yielding the core when asked), torch's OpenMP workers for a few milliseconds (without yielding).
On a machine with as many cores as threads, a step that starts while the other library's workers
still spin shares its cores with them. This script measures both halves of that:

1. the CPU time a process burns while its main thread sleeps right after one parallel op of each
   library (the idle workers spinning), and
2. each library's step right after its own previous step against right after the other library's
   step, alternated in blocks; "after other" is the benchmark's condition.

Run: ``python benchmarks/neighbours.py [--threads 2] [--workload mlp_step] [--blocks 30]`` on a quiet
machine (the 1-minute load average is printed: on busy cores every 2-thread number is noise).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def idle_spin_ms(op, sleep_s: float, repeats: int = 9) -> float:
    """Median CPU milliseconds the process uses while the main thread sleeps ``sleep_s`` right after ``op()``."""
    burnt = []
    for _ in range(repeats):
        op()
        start = time.process_time()
        time.sleep(sleep_s)
        burnt.append(time.process_time() - start)
        time.sleep(0.3)  # every pool asleep before the next repeat
    return 1e3 * statistics.median(burnt)


def after_self_and_after_other(steps: dict, blocks: int, per_block: int = 5) -> dict:
    """Each library's step times (s) right after its own step and right after the other's."""
    names = list(steps)
    times = {(name, when): [] for name in names for when in ("after other", "after self")}
    for _ in range(blocks):
        for name in names:
            other = steps[names[1 - names.index(name)]]
            for _ in range(per_block):
                other()
                start = time.perf_counter()
                steps[name]()
                times[(name, "after other")].append(time.perf_counter() - start)
            steps[name]()
            for _ in range(per_block):
                steps[name]()
                start = time.perf_counter()
                steps[name]()
                times[(name, "after self")].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workload", default="mlp_step")
    parser.add_argument("--blocks", type=int, default=30)
    args = parser.parse_args()

    import torch

    import chainrule
    from chainrule import benchmark

    benchmark.set_threads(args.threads)
    print(f"threads {args.threads}, 1-minute load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cpus")
    a, b = np.ones((256, 784), np.float32), np.ones((784, 128), np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    ops = {"nothing": lambda: None, "NumPy GEMM (OpenBLAS)": lambda: a @ b, "torch mm": lambda: ta @ tb}
    for sleep_s in (0.005, 0.1):
        for name, op in ops.items():
            print(f"CPU burnt in a {1e3 * sleep_s:.0f} ms sleep after {name}: {idle_spin_ms(op, sleep_s):.2f} ms")

    build = getattr(benchmark, args.workload)
    steps = {"chainrule": build(chainrule), "torch": build(torch)}
    for step in steps.values():
        for _ in range(10):
            step()
    for (name, when), ts in after_self_and_after_other(steps, args.blocks).items():
        ts = sorted(ts)
        print(f"{args.workload} {name:9s} {when:11s}: min {1e3 * ts[0]:.3f}  q1 {1e3 * ts[len(ts) // 4]:.3f}  "
              f"median {1e3 * statistics.median(ts):.3f} ms")


if __name__ == "__main__":
    main()
