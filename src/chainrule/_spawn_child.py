"""One rank of ``multiprocessing.spawn`` run under ``mpiexec``: ``python -m chainrule._spawn_child DIR``.

``spawn`` starts its ranks as one MPI job when MPI is there, so that ``init_process_group`` in
them finds a world of ``nprocs`` ranks (processes started one by one are MPI singletons, which
MPICH cannot join). Each rank prepares ``__main__`` as multiprocessing's spawn start method does
(the parent's script imported as ``__mp_main__``), unpickles ``fn`` and ``args`` from DIR, runs
``fn(rank, *args)`` with its MPI rank, and on a failure leaves its traceback in DIR for the parent
to raise, then ends the whole job (a rank waiting in a collective would wait forever).
"""

from __future__ import annotations

import multiprocessing.spawn
import os
import pickle
import sys
import traceback


def main(directory: str) -> int:
    from .distributed import _mpi

    _mpi.export_torchrun_environment()
    rank = int(os.environ.get("RANK", "0"))
    try:
        with open(os.path.join(directory, "payload"), "rb") as payload:
            multiprocessing.spawn.prepare(pickle.load(payload))
            fn, args = pickle.load(payload)  # (fails here when fn cannot be found from this rank)
        fn(rank, *args)
    except KeyboardInterrupt:
        return 130
    except BaseException as error:  # noqa: BLE001 - reported to the parent, then the job ends
        code = error.code if isinstance(error, SystemExit) and isinstance(error.code, int) else 1
        if code == 0:
            return 0
        if not isinstance(error, SystemExit):
            with open(os.path.join(directory, f"error-{rank}"), "w") as report:
                report.write(traceback.format_exc())
        MPI = sys.modules.get("mpi4py.MPI")
        if MPI is not None and MPI.Is_initialized() and not MPI.Is_finalized():
            MPI.COMM_WORLD.Abort(code)
        return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
