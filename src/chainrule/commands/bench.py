"""``chainrule bench``: chainrule vs PyTorch CPU on the standard workloads, printed as ratios."""

from __future__ import annotations

import os


def add_arguments(parser) -> None:
    from ..benchmark import WORKLOADS

    parser.add_argument("workloads", nargs="*", choices=WORKLOADS + [[]], default=None,
                        metavar="WORKLOAD", help=f"any of {', '.join(WORKLOADS)} (default: all)")
    parser.add_argument("--reps", type=int, default=None, help="timed repetitions per library")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurements")
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    parser.add_argument("--distributed", action="store_true",
                        help="data-parallel throughput on 1 and 2 MPI processes and all-reduce bandwidth")


def run(args) -> int:
    import subprocess
    import sys

    from .. import benchmark

    if "OPENBLAS_CORETYPE" in os.environ:
        # OpenBLAS reads this once, when NumPy loads: measure in a fresh process without it
        env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
        argv = list(args.workloads or [])
        if args.reps is not None:
            argv += ["--reps", str(args.reps)]
        if args.no_memory:
            argv.append("--no-memory")
        if args.json:
            argv += ["--json", args.json]
        if args.distributed:
            argv.append("--distributed")
        return subprocess.call([sys.executable, "-m", "chainrule", "bench", *argv], env=env)
    if args.distributed:
        from .. import benchmark_distributed

        benchmark_distributed.main(args.reps, out=args.json)
        return 0
    benchmark.main(args.workloads or None, args.reps, memory=not args.no_memory, out=args.json)
    return 0
