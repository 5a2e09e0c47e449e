"""Per-call time of common ops on small tensors, chainrule against torch in one process:
``OPENBLAS_NUM_THREADS=1 python benchmarks/small_ops.py [--repeats 7] [--number 200] [-k NAME]``.

Each op runs on the same float32 inputs in both libraries at the shapes (32, 128), (64, 512) and
(8, 64, 64), forward alone and forward plus ``backward`` of the output's sum (where it has one).
A case is timed as the minimum over ``--repeats`` runs of ``--number`` calls, so the table reads in
microseconds per call; the last column is chainrule / torch. At this scale a call costs mostly
Python and array-library overhead, which is what the ratios show. Times are the thread's CPU time
(``time.thread_time``; torch runs on one thread): on a loaded machine wall time also counts the
time the thread waits for a core. Compare ratios from one run, not microseconds across runs.
"""

from __future__ import annotations

import argparse
import os
import time
import timeit

import numpy as np

SHAPES = [(32, 128), (64, 512), (8, 64, 64)]


def cases(torch):
    """(name, fn(x) -> output, needs_grad_variant) for one library answering ``import torch``."""
    F = torch.nn.functional

    def batch_norm_eval(x):
        c = x.shape[1]
        return F.batch_norm(x, stats[c][0], stats[c][1], weights[c][0], weights[c][1], training=False)

    def layer_norm(x):
        n = x.shape[-1]
        return F.layer_norm(x, (n,), weights[n][0], weights[n][1])

    def rms_norm(x):
        n = x.shape[-1]
        return F.rms_norm(x, (n,), weights[n][0])

    def linear(x):
        n = x.shape[-1]
        return linears[n](x)

    def cat(x):
        return torch.cat([x, x], dim=0)

    def view(x):
        return x.view(-1)

    def reshape(x):
        return x.reshape(x.shape[0], -1)

    def transpose(x):
        return x.transpose(0, 1)

    def unsqueeze(x):
        return x.unsqueeze(1)

    gen = np.random.default_rng(1)
    stats, weights, linears = {}, {}, {}
    for n in {s[1] for s in SHAPES} | {s[-1] for s in SHAPES}:
        stats[n] = (torch.tensor(gen.standard_normal(n).astype(np.float32)),
                    torch.tensor(gen.uniform(0.5, 2.0, n).astype(np.float32)))
        weights[n] = tuple(torch.tensor(gen.standard_normal(n).astype(np.float32)).requires_grad_()
                           for _ in range(2))
        torch.manual_seed(0)
        linears[n] = torch.nn.Linear(n, 16)
    return [
        ("batch_norm eval", batch_norm_eval),
        ("layer_norm", layer_norm),
        ("rms_norm", rms_norm),
        ("gelu", F.gelu),
        ("gelu tanh", lambda x: F.gelu(x, approximate="tanh")),
        ("silu", F.silu),
        ("softmax", lambda x: F.softmax(x, dim=-1)),
        ("dropout eval", lambda x: F.dropout(x, 0.5, training=False)),
        ("cat", cat),
        ("view", view),
        ("reshape", reshape),
        ("transpose", transpose),
        ("unsqueeze", unsqueeze),
        ("Linear", linear),
    ]


def time_case(fn, x, backward: bool, repeats: int, number: int) -> float:
    if backward:
        def call():
            fn(x).sum().backward()
    else:
        def call():
            fn(x)
    call()
    return min(timeit.repeat(call, repeat=repeats, number=number, timer=time.thread_time)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--number", type=int, default=200)
    parser.add_argument("-k", default="", help="only cases whose name contains this")
    args = parser.parse_args()
    if os.environ.get("OPENBLAS_NUM_THREADS") != "1":
        print("note: set OPENBLAS_NUM_THREADS=1 for comparable numbers")

    import torch

    import chainrule

    torch.set_num_threads(1)
    libs = {"chainrule": chainrule, "torch": torch}
    table = {name: dict(cases(lib)) for name, lib in libs.items()}
    names = [n for n, _ in cases(chainrule) if args.k in n]
    gen = np.random.default_rng(0)
    print(f"{'op':<18}{'shape':<14}{'pass':<9}{'chainrule us':>13}{'torch us':>10}{'ratio':>8}")
    for shape in SHAPES:
        data = gen.standard_normal(shape).astype(np.float32)
        for name in names:
            for backward in (False, True):
                us = {}
                for lib_name, lib in libs.items():
                    x = lib.tensor(data)
                    if backward:
                        x.requires_grad_()
                    us[lib_name] = time_case(table[lib_name][name], x, backward, args.repeats, args.number)
                print(f"{name:<18}{str(shape):<14}{'fwd+bwd' if backward else 'fwd':<9}"
                      f"{us['chainrule']:>13.1f}{us['torch']:>10.1f}{us['chainrule'] / us['torch']:>8.1f}")


if __name__ == "__main__":
    main()
