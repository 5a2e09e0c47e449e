"""chainrule.distributed under MPI: 2 and 4 real processes (oversubscribed on 2 cores is fine),
each started with a hard timeout so that a hang fails the test instead of blocking CI."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("mpi4py", reason='MPI tests need mpi4py: pip install "chainrule[mpi]"')

from chainrule.distributed.run import find_mpiexec  # noqa: E402

try:
    MPIEXEC = find_mpiexec()
except FileNotFoundError:
    pytest.skip("no mpiexec in this environment", allow_module_level=True)

HERE = os.path.dirname(__file__)
WORKER = os.path.join(HERE, "worker.py")
SRC = os.path.abspath(os.path.join(HERE, "..", "..", "src"))
TIME_LIMIT = 120  # seconds: a job that hangs fails here


def run_job(how: str, nprocs: int, scenario: str, debug: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env.pop("TORCH_DISTRIBUTED_DEBUG", None)
    if debug:
        env["TORCH_DISTRIBUTED_DEBUG"] = "DETAIL"
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        env.pop(name, None)
    command = {
        "launcher": [sys.executable, "-m", "chainrule.distributed.run", "--nproc-per-node", str(nprocs)],
        "cli": [sys.executable, "-m", "chainrule.cli", "run", "-n", str(nprocs)],
        "mpiexec": [MPIEXEC, "-n", str(nprocs), sys.executable],
    }[how]
    return subprocess.run(command + [WORKER, scenario], env=env, capture_output=True, text=True,
                          timeout=TIME_LIMIT)


def passed_ranks(result: subprocess.CompletedProcess) -> set[int]:
    # ranks share stdout, so their lines may interleave: search, don't split
    return {int(rank) for rank in re.findall(r"PASS rank (\d+)", result.stdout)}


@pytest.mark.parametrize("how, nprocs, debug", [("launcher", 2, False), ("cli", 4, True)])
def test_collectives_match_numpy(how, nprocs, debug):
    # debug: TORCH_DISTRIBUTED_DEBUG=DETAIL's cross-rank checks must not object to correct calls
    result = run_job(how, nprocs, "collectives", debug)
    assert result.returncode == 0, result.stdout + result.stderr
    assert passed_ranks(result) == set(range(nprocs)), result.stdout


@pytest.mark.parametrize("nprocs", [2, 3])
def test_sync_batchnorm_equals_one_batchnorm_over_the_global_batch(nprocs):
    result = run_job("launcher", nprocs, "sync_bn")
    assert result.returncode == 0, result.stdout + result.stderr
    assert passed_ranks(result) == set(range(nprocs)), result.stdout


@pytest.mark.parametrize("how, nprocs", [("mpiexec", 2), ("launcher", 4)])
def test_ddp_equals_single_process(how, nprocs):
    result = run_job(how, nprocs, "ddp")
    assert result.returncode == 0, result.stdout + result.stderr
    assert passed_ranks(result) == set(range(nprocs)), result.stdout
    differences = [float(d) for d in re.findall(r"single process\| = (\d\.\d+e[+-]\d+)", result.stdout)]
    assert len(differences) == 4 * nprocs and max(differences) < 1e-5


@pytest.mark.parametrize("scenario, expected", [
    ("fail", "rank 1 failed with ValueError: boom on purpose"),
    ("partial", "rank 0 failed with all_reduce timed out after 3 s"),
    ("mismatch", "DDP expects the same model on all ranks, but rank"),
    ("unused_without_flag", "Parameters which did not receive grad for rank"),
    # either rank may report first: both sides are named
    ("different_collectives", ("Detected mismatch between collectives on ranks", "all_reduce on a tensor of "
                               "shape (3,) (float32)", "broadcast on a tensor of shape (4,) (float64)")),
])
def test_a_failing_rank_ends_the_job(scenario, expected):
    # subprocess.run's timeout is the bound: without the tear-down these jobs would hang
    result = run_job("launcher", 2, scenario, debug=scenario == "different_collectives")
    assert result.returncode != 0
    for text in (expected,) if isinstance(expected, str) else expected:
        assert text in result.stderr, result.stderr
    assert "PASS" not in result.stdout


def test_bench_distributed_times_both_libraries_on_the_same_buffers():
    from chainrule.benchmark_distributed import SIZES_MB, _job

    measured = _job("allreduce", 2, 1)
    assert sorted(int(size) for size in measured) == list(SIZES_MB)
    for times in measured.values():
        assert times["chainrule"] > 0 and times["mpi4py"] > 0
