"""What each process started by the launcher runs: ``python -m chainrule.distributed._bootstrap
[-m] target [args]``. Sets torchrun's variables from MPI's, runs the target as ``__main__``, and
turns a failure on one rank into a tear-down of the whole job (``MPI_Abort``)."""

from __future__ import annotations

import os
import runpy
import sys
import traceback

from . import _mpi
from .run import TORCHRUN_VARIABLES


def _set_rank_variables() -> None:
    for name in TORCHRUN_VARIABLES:
        os.environ.pop(name, None)
    _mpi.export_torchrun_environment()
    if "RANK" not in os.environ:
        # an MPI whose launcher variables we do not know: ask MPI itself
        world = _mpi.load_mpi().COMM_WORLD
        os.environ.update(RANK=str(world.Get_rank()), WORLD_SIZE=str(world.Get_size()),
                          LOCAL_RANK=str(world.Get_rank()), LOCAL_WORLD_SIZE=str(world.Get_size()))


def main(argv: list[str]) -> int:
    module = bool(argv) and argv[0] == "-m"
    if module:
        argv = argv[1:]
    if not argv:
        print("usage: python -m chainrule.distributed._bootstrap [-m] target [args]", file=sys.stderr)
        return 2
    _set_rank_variables()
    rank = int(os.environ["RANK"])
    target = argv[0]
    sys.argv = list(argv)
    try:
        if module:
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
            runpy.run_path(target, run_name="__main__")
    except SystemExit as exc:
        code = exc.code
        if code is None or code == 0:
            return 0
        if not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
        _mpi.abort_job(_mpi.load_mpi(), rank, "", f"exit status {code}")
        return code
    except BaseException as exc:  # noqa: BLE001 - any failure must end the whole job
        if isinstance(exc, KeyboardInterrupt):
            raise
        _mpi.abort_job(_mpi.load_mpi(), rank, traceback.format_exc(), f"{type(exc).__name__}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
