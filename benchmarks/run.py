"""Run the benchmark suite and record it: ``python benchmarks/run.py [workload ...] [--note TEXT]``.

Same as ``chainrule bench --record``: the run is appended to benchmarks/results.json under this
machine's key (CPU, cores, BLAS library, version and kernel, threads) and compared with the
previous run on the same machine. See src/chainrule/benchmark.py for the workloads and method,
and docs/performance.md for how to measure on a quiet machine.
"""

import sys

from chainrule.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not any(a == "--record" or a.startswith("--record=") for a in argv):
        argv.append("--record")
    sys.exit(main(["bench", *argv]))
