"""A launcher like torchrun, on MPI: ``python -m chainrule.distributed.run --nproc-per-node N script.py``.

It starts N processes through ``mpiexec`` (the one installed in this environment by the
``mpi`` extra's wheel, else the first on PATH). Each runs the script under a small bootstrap
that sets the variables torchrun sets (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE,
MASTER_ADDR, MASTER_PORT) and, should the script raise, prints the rank and error and calls
``MPI_Abort``, so the whole job ends at once with a non-zero status instead of hanging.
Past one machine, start the same script with the cluster's MPI launcher (``srun``, ``mpiexec``
with a host file); see docs/distributed.md.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import subprocess
import sys

from . import _mpi

TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK")


def find_mpiexec() -> str:
    """``mpiexec`` from this environment (the MPICH/Open MPI wheel puts it in sys.prefix/bin), then PATH."""
    for directory in (os.path.join(sys.prefix, "bin"), os.path.dirname(sys.executable)):
        candidate = os.path.join(directory, "mpiexec")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("mpiexec") or shutil.which("mpirun")
    if found is None:
        raise FileNotFoundError(f"no mpiexec found in {sys.prefix}/bin or on PATH: {_mpi.INSTALL_HINT} "
                                "installs mpi4py with the MPICH wheel, which provides it")
    return found


@functools.cache
def _is_open_mpi(mpiexec: str) -> bool:
    try:
        version = subprocess.run([mpiexec, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "Open MPI" in version or "OpenRTE" in version


def mpiexec_command(nprocs: int, mpiexec: str | None = None) -> list[str]:
    """The mpiexec prefix for ``nprocs`` local processes; more processes than cores is allowed
    (MPICH allows it as is; Open MPI needs --oversubscribe, and --allow-run-as-root in the root
    containers CI machines often are)."""
    mpiexec = mpiexec or find_mpiexec()
    command = [mpiexec, "-n", str(nprocs)]
    if _is_open_mpi(mpiexec):
        command.append("--oversubscribe")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-run-as-root")
    return command


def launch(nprocs: int, target: list[str], module: bool = False, master_addr: str = "127.0.0.1",
           master_port: int = 29500, env: dict | None = None) -> int:
    """Run ``target`` (a script and its arguments, or a module's with ``module=True``) on
    ``nprocs`` MPI processes; the job's exit status (non-zero if any rank failed)."""
    if nprocs < 1:
        raise ValueError(f"the number of processes must be at least 1, got {nprocs}")
    environment = {k: v for k, v in (env if env is not None else os.environ).items() if k not in TORCHRUN_VARIABLES}
    environment.update(MASTER_ADDR=master_addr, MASTER_PORT=str(master_port), WORLD_SIZE=str(nprocs),
                       LOCAL_WORLD_SIZE=str(nprocs), PYTHONUNBUFFERED="1")
    bootstrap = [sys.executable, "-m", "chainrule.distributed._bootstrap"] + (["-m"] if module else [])
    command = mpiexec_command(nprocs) + bootstrap + list(target)
    process = subprocess.Popen(command, env=environment)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait()
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m chainrule.distributed.run",
        description="Start a script on N processes through MPI, with torchrun's environment variables.")
    parser.add_argument("--nproc-per-node", "--nproc_per_node", dest="nproc_per_node", type=int, default=1,
                        help="processes to start on this machine (default 1)")
    parser.add_argument("--nnodes", type=str, default="1",
                        help="only 1: on several machines use the cluster's MPI launcher (srun, mpiexec)")
    parser.add_argument("--node-rank", "--node_rank", dest="node_rank", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--master-addr", "--master_addr", dest="master_addr", default="127.0.0.1",
                        help="exported as MASTER_ADDR (MPI itself does not need it)")
    parser.add_argument("--master-port", "--master_port", dest="master_port", type=int, default=29500,
                        help="exported as MASTER_PORT (MPI itself does not need it)")
    parser.add_argument("--standalone", action="store_true", help="accepted for torchrun compatibility")
    parser.add_argument("-m", "--module", action="store_true", help="run the target as a module (python -m)")
    parser.add_argument("script", help="the script (or module, with -m) to run")
    parser.add_argument("script_args", nargs=argparse.REMAINDER, help="its arguments")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.nnodes not in ("1", "1:1"):
        parser.error(f"--nnodes {args.nnodes}: this launcher starts processes on one machine; on a "
                     "cluster start the script with its MPI launcher (srun, or mpiexec -f hosts), "
                     "see docs/distributed.md")
    if args.nproc_per_node < 1:
        parser.error(f"--nproc-per-node must be at least 1, got {args.nproc_per_node}")
    try:
        return launch(args.nproc_per_node, [args.script, *args.script_args], module=args.module,
                      master_addr=args.master_addr, master_port=args.master_port)
    except FileNotFoundError as exc:
        print(f"chainrule.distributed.run: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
