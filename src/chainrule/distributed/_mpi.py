"""The MPI seam: importing mpi4py, the torchrun environment, waiting with a deadline, tear-down.

Everything that names ``mpi4py`` lives here, so the rest of ``chainrule.distributed`` reads as
torch's API and ``import chainrule`` never starts MPI (``from mpi4py import MPI`` calls
``MPI_Init``; we do that only when a process group is created).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback

INSTALL_HINT = 'pip install "chainrule[mpi]"'

# where the common MPI launchers put a process's rank, size and node-local rank and size:
# MPICH/Hydra (PMI_*, MPI_LOCAL*), Open MPI (OMPI_*), PMIx, Slurm's srun (SLURM_*)
_LAUNCHER_VARIABLES = {
    "RANK": ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID"),
    "WORLD_SIZE": ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS"),
    "LOCAL_RANK": ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"),
    "LOCAL_WORLD_SIZE": ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE"),
}


def load_mpi():
    """The ``mpi4py.MPI`` module (initialising MPI on first use); a clear ImportError without it."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(
            f"chainrule.distributed needs mpi4py and an MPI library: {INSTALL_HINT} "
            f"(installs mpi4py and the MPICH wheel); the import failed with: {exc}"
        ) from exc
    return MPI


def mpi_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("mpi4py") is not None


def export_torchrun_environment() -> None:
    """Set RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE (and MASTER_ADDR/PORT) from the MPI
    launcher's own variables, so a torchrun script reading ``os.environ["LOCAL_RANK"]`` before
    ``init_process_group`` also runs under plain ``mpiexec`` or ``srun``. Values already set
    (by torchrun or our launcher) win."""
    # Slurm sets SLURM_PROCID in a batch script too, where one plain process runs: trust it
    # only inside an srun job step, whose step id is a number
    in_srun_step = os.environ.get("SLURM_STEP_ID", "").isdigit()
    for name, sources in _LAUNCHER_VARIABLES.items():
        if name in os.environ:
            continue
        for source in sources:
            if source.startswith("SLURM_") and not in_srun_step:
                continue
            value = os.environ.get(source, "")
            if value.isdigit():
                os.environ[name] = value
                break
    if "RANK" in os.environ:
        # a launcher that does not say which ranks share a node: assume one node
        os.environ.setdefault("LOCAL_RANK", os.environ["RANK"])
        os.environ.setdefault("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1"))
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29500")


class Watchdog:
    """Ends the job when a collective outlives its timeout.

    MPI's waits have no deadline, and polling ``Test`` from Python instead costs up to twice
    the time of a small all-reduce, so the calling thread blocks in ``MPI_Wait`` (mpi4py lets
    go of the GIL there) while this thread watches the clock. A collective that some rank never
    calls, or a rank stuck elsewhere, then ends the whole job with an error naming the rank and
    the op (``MPI_Abort``, as torch's NCCL watchdog tears a job down) instead of hanging.
    """

    # how often the watchdog looks at the clock: the tear-down comes at most this late
    PERIOD = 0.2

    def __init__(self, MPI, rank: int) -> None:
        self.MPI = MPI
        self.rank = rank
        # (deadline, what, timeout) while a wait is in progress; a plain attribute, so arming
        # it costs the waiting thread no lock and no wake-up of this one
        self._armed = None
        threading.Thread(target=self._watch, name="chainrule-collective-watchdog", daemon=True).start()

    def wait(self, request, what: str, timeout: float, status=None) -> None:
        """Complete an MPI request (filling ``status``, an ``MPI.Status``, when given: a receive's
        sender), or abort the job after ``timeout`` seconds."""
        if request.Test(status):
            return
        self._armed = (time.monotonic() + timeout, what, timeout)
        try:
            request.Wait(status)
        except self.MPI.Exception as exc:
            raise RuntimeError(f"{what} failed in MPI: {exc.Get_error_string().splitlines()[0]} (do all ranks "
                               "call the same collectives with tensors of the same shape and dtype? "
                               "TORCH_DISTRIBUTED_DEBUG=DETAIL checks that)") from exc
        finally:
            self._armed = None

    def _watch(self) -> None:
        while True:
            time.sleep(self.PERIOD)
            armed = self._armed
            if armed is not None and time.monotonic() > armed[0]:
                _, what, timeout = armed
                abort_job(self.MPI, self.rank, "",
                          f"{what} timed out after {timeout:g} s: some rank did not reach the same collective "
                          "(a collective called on only some ranks, or a rank that failed or is still "
                          "computing); raise init_process_group's timeout= if it is just slow")


class AbortOnError:
    """Replaces ``sys.excepthook`` while a process group exists: an uncaught exception on any
    rank prints the rank and its error, then ``MPI_Abort`` tears the whole job down, so the
    launcher exits non-zero at once instead of the other ranks waiting forever."""

    def __init__(self, MPI, rank: int) -> None:
        self.MPI = MPI
        self.rank = rank
        self.previous = None

    def install(self) -> None:
        self.previous = sys.excepthook
        sys.excepthook = self

    def uninstall(self) -> None:
        if sys.excepthook is self:
            sys.excepthook = self.previous

    def __call__(self, kind, value, tb) -> None:
        if issubclass(kind, KeyboardInterrupt):
            self.previous(kind, value, tb)
            return
        abort_job(self.MPI, self.rank, "".join(traceback.format_exception(kind, value, tb)),
                  f"{kind.__name__}: {value}")


def abort_job(MPI, rank: int, details: str, summary: str) -> None:
    sys.stderr.write(details)
    sys.stderr.write(f"chainrule.distributed: rank {rank} failed with {summary}; aborting the job\n")
    sys.stderr.flush()
    sys.stdout.flush()
    # MPI_Abort kills the launcher's output forwarders too; on a loaded machine they may not
    # yet have passed on the lines above, and the job would end without saying why
    time.sleep(1.0)
    MPI.COMM_WORLD.Abort(1)
