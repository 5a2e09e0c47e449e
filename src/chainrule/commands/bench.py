"""``chainrule bench``: chainrule vs PyTorch CPU on the standard workloads, printed as ratios."""

from __future__ import annotations

import os
import sys


def add_arguments(parser) -> None:
    from .. import benchmark

    parser.add_argument("workloads", nargs="*", choices=benchmark.WORKLOADS + [[]], default=None,
                        metavar="WORKLOAD", help=f"any of {', '.join(benchmark.WORKLOADS)} (default: all)")
    parser.add_argument("--reps", type=int, default=None, help="timed repetitions per library")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurements")
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    parser.add_argument("--record", nargs="?", const=benchmark.RESULTS_PATH, default=None, metavar="PATH",
                        help="append the run to PATH (default benchmarks/results.json) under this machine's key "
                             "and compare with the previous run on the same machine")
    parser.add_argument("--note", default=None, help="a note stored with the recorded run (e.g. 'quiet machine')")
    parser.add_argument("--threads", type=int, default=None,
                        help="run chainrule's BLAS and torch on this many threads (default: as they start)")
    parser.add_argument("--distributed", action="store_true",
                        help="data-parallel throughput on 1 and 2 MPI processes and all-reduce bandwidth")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="cuda: issue 12's GPU workloads against torch on the GPU (needs CuPy and a CUDA GPU)")


def run(args) -> int:
    import subprocess

    from .. import benchmark

    if args.device == "cuda":
        return _run_cuda(args)
    if "OPENBLAS_CORETYPE" in os.environ:
        # OpenBLAS reads this once, when NumPy loads: measure in a fresh process without it
        print(f"WARNING: OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} forces one OpenBLAS kernel; "
              "measuring in a fresh process without it", file=sys.stderr, flush=True)
        env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
        argv = list(args.workloads or [])
        if args.reps is not None:
            argv += ["--reps", str(args.reps)]
        if args.no_memory:
            argv.append("--no-memory")
        if args.json:
            argv += ["--json", args.json]
        if args.record:
            argv += ["--record", args.record]
        if args.note:
            argv += ["--note", args.note]
        if args.threads is not None:
            argv += ["--threads", str(args.threads)]
        if args.distributed:
            argv.append("--distributed")
        return subprocess.call([sys.executable, "-m", "chainrule", "bench", *argv], env=env)
    if args.distributed:
        from .. import benchmark_distributed

        benchmark_distributed.main(args.reps, out=args.json)
        return 0
    if args.threads is not None:
        benchmark.set_threads(args.threads)
    benchmark.main(args.workloads or None, args.reps, memory=not args.no_memory, out=args.json,
                   record_to=args.record, note=args.note)
    return 0


def _run_cuda(args) -> int:
    """``--device cuda``: chainrule.benchmark_cuda's workloads, its table, and --json if asked."""
    import json

    from .. import _backend, benchmark_cuda
    from ..cli import CommandError

    if not _backend.cuda_available():
        raise CommandError('--device cuda needs CuPy and a CUDA GPU, and found none; install CuPy for the '
                           'driver\'s CUDA with pip install "chainrule[cuda12]" or "chainrule[cuda13]"')
    unknown = [w for w in args.workloads or [] if w not in benchmark_cuda.WORKLOADS]
    if unknown:
        raise CommandError(f"--device cuda runs {', '.join(benchmark_cuda.WORKLOADS)}; not {', '.join(unknown)}")
    print(benchmark_cuda.gpu_description(), flush=True)
    results = benchmark_cuda.run_cuda_benchmarks(args.workloads or None, args.reps)
    print(benchmark_cuda.format(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0
