"""Run the benchmark suite: ``python benchmarks/run.py [workload ...] [--json results.json]``.

Same as ``chainrule bench``; see src/chainrule/benchmark.py for the workloads and method.
"""

import sys

from chainrule.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
