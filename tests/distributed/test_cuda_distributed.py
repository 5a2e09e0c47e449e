"""chainrule.distributed and DDP on device='cuda' tensors: in CI the CuPy stand-in is the GPU
(CHAINRULE_STANDIN_CUDA=1 in every rank), so a host/device mix-up in a collective, in DDP's
buckets or in its broadcasts fails here as it would on a GPU. MPI is not CUDA-aware: the ranks
check that each collective stages through the host with exactly one copy each way."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("mpi4py", reason='MPI tests need mpi4py: pip install "chainrule[mpi]"')

from chainrule.distributed.run import find_mpiexec  # noqa: E402

try:
    find_mpiexec()
except FileNotFoundError:
    pytest.skip("no mpiexec in this environment", allow_module_level=True)

HERE = os.path.dirname(__file__)
WORKER = os.path.join(HERE, "worker.py")
SRC = os.path.abspath(os.path.join(HERE, "..", "..", "src"))
TIME_LIMIT = 120  # seconds: a job that hangs fails here


def run_on_standin_gpus(nprocs: int, scenario: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", CHAINRULE_STANDIN_CUDA="1")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "TORCH_DISTRIBUTED_DEBUG"):
        env.pop(name, None)
    # one process: a world of size 1 (MPI's singleton start, no launcher), as a single-GPU script runs
    launcher = [] if nprocs == 1 else [sys.executable, "-m", "chainrule.distributed.run", "--nproc-per-node",
                                       str(nprocs)]
    command = launcher + ([WORKER] if launcher else [sys.executable, WORKER]) + [scenario]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIME_LIMIT)


def passed_ranks(result: subprocess.CompletedProcess) -> set[int]:
    return {int(rank) for rank in re.findall(r"PASS rank (\d+)", result.stdout)}


# the two-rank scenarios, run in turn by one launch per pytest process (each launch starts two
# interpreters that import chainrule: seconds on the 2-core CI machine); each test reads its own
# scenario's PASS lines, so a failing check fails the test of its scenario (and, as the failure
# ends the job, those of the scenarios after it, which then did not run)
TWO_RANK_SCENARIOS = ("cuda_collectives", "point_to_point", "sync_bn_cuda", "ddp_cuda")


@functools.cache
def _two_rank_job() -> subprocess.CompletedProcess:
    return run_on_standin_gpus(2, ",".join(TWO_RANK_SCENARIOS))


def two_rank_result(scenario: str) -> subprocess.CompletedProcess:
    """The two-rank launch, after checking that ``scenario`` passed on both ranks."""
    result = _two_rank_job()
    passed = {int(rank) for rank in re.findall(rf"PASS {scenario} rank (\d+)", result.stdout)}
    assert passed == {0, 1}, (f"{scenario} did not pass on both ranks (the launch runs "
                              f"{', '.join(TWO_RANK_SCENARIOS)} in turn; the first failure ends it):\n"
                              + result.stdout + result.stderr)
    return result


def test_collectives_on_cuda_tensors_match_numpy_in_place_in_one_process():
    result = run_on_standin_gpus(1, "cuda_collectives")
    assert result.returncode == 0, result.stdout + result.stderr
    assert passed_ranks(result) == {0}, result.stdout


def test_collectives_on_cuda_tensors_match_numpy_in_place_on_two_ranks():
    two_rank_result("cuda_collectives")


def test_ddp_on_cuda_equals_one_process_on_the_whole_batch():
    result = two_rank_result("ddp_cuda")
    differences = [float(d) for d in re.findall(r"single process\| = (\d\.\d+e[+-]\d+)", result.stdout)]
    assert len(differences) == 5 * 2 and max(differences) < 1e-5


def test_send_and_recv_on_cpu_and_cuda_tensors_on_two_ranks():
    two_rank_result("point_to_point")


def test_send_and_recv_on_cpu_and_cuda_tensors_on_three_ranks():
    result = run_on_standin_gpus(3, "point_to_point")
    assert result.returncode == 0, result.stdout + result.stderr
    assert passed_ranks(result) == {0, 1, 2}, result.stdout


def test_sync_batchnorm_on_cuda_equals_one_batchnorm_over_the_global_batch():
    two_rank_result("sync_bn_cuda")


def test_the_two_rank_launch_ends_cleanly():
    result = _two_rank_job()
    assert result.returncode == 0, result.stdout + result.stderr
