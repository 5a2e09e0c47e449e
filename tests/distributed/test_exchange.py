"""all_to_all(_single), reduce_scatter (list), the object collectives, batch_isend_irecv, subgroups,
monitored_barrier (the last rank arriving late, last in the job) and the stores across processes: real MPI jobs of 2 and 4 ranks, each rank
checking its results against what torch defines, computed with NumPy from every rank's seed."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("mpi4py", reason='MPI tests need mpi4py: pip install "chainrule[mpi]"')

HERE = os.path.dirname(__file__)
SRC = os.path.abspath(os.path.join(HERE, "..", "..", "src"))


def run_job(nprocs: int, scenario: str, tmp_path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", EXCHANGE_FILESTORE=str(tmp_path / "filestore"),
               # the CuPy stand-in is the GPU for the checks on device='cuda' tensors
               CHAINRULE_STANDIN_CUDA="1")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "TORCH_DISTRIBUTED_DEBUG"):
        env.pop(name, None)
    if nprocs == 4:
        # torch's cross-rank checks: correct calls must pass them, mismatched ones fail on every rank
        env["TORCH_DISTRIBUTED_DEBUG"] = "DETAIL"
    command = [sys.executable, "-m", "chainrule.distributed.run", "--nproc-per-node", str(nprocs),
               os.path.join(HERE, "exchange_worker.py"), scenario]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def passed_ranks(result: subprocess.CompletedProcess) -> set[int]:
    return {int(rank) for rank in re.findall(r"PASS rank (\d+)", result.stdout)}


@pytest.mark.parametrize("nprocs", [2, 4])
def test_exchanges_objects_groups_and_stores_across_ranks(nprocs, tmp_path):
    result = run_job(nprocs, "exchange", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert passed_ranks(result) == set(range(nprocs)), result.stdout
    # the last FileStore closed removed the shared file, as torch's does (4 ranks: the one given to
    # init_process_group(store=...) too)
    assert not (tmp_path / "filestore").exists() and not (tmp_path / "filestore.init").exists()

