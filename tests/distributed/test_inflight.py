"""Async collectives and receives that outlive their Work (see inflight_worker.py), on 2 real
ranks. torch keeps a pending op's tensors alive in its Work until completion; here a registry
of in-flight requests does, so dropping the Work and the tensor is safe."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("mpi4py", reason='MPI tests need mpi4py: pip install "chainrule[mpi]"')

HERE = os.path.dirname(__file__)
SRC = os.path.abspath(os.path.join(HERE, "..", "..", "src"))


def test_dropped_async_work_keeps_its_buffers_until_mpi_completes_it():
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "TORCH_DISTRIBUTED_DEBUG"):
        env.pop(name, None)
    result = subprocess.run([sys.executable, "-m", "chainrule.distributed.run", "--nproc-per-node", "2",
                             os.path.join(HERE, "inflight_worker.py")],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {int(r) for r in re.findall(r"PASS rank (\d+)", result.stdout)} == {0, 1}, result.stdout
