"""The new collectives, object functions, batch_isend_irecv, the differentiable collectives and
their errors, compared with torch's own gloo backend: the same script runs as 2 torch processes
(``mp.spawn``, gloo over localhost) and as 2 chainrule ranks (MPI), and every result must match."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

pytest.importorskip("mpi4py", reason='MPI tests need mpi4py: pip install "chainrule[mpi]"')
torch_distributed = pytest.importorskip("torch.distributed")
if not torch_distributed.is_available() or not torch_distributed.is_gloo_available():
    pytest.skip("this torch has no gloo backend to compare with", allow_module_level=True)

HERE = os.path.dirname(__file__)
WORKER = os.path.join(HERE, "gloo_compare_worker.py")
SRC = os.path.abspath(os.path.join(HERE, "..", "..", "src"))


def _free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def test_exchanges_match_torch_gloo(tmp_path):
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "TORCH_DISTRIBUTED_DEBUG"):
        env.pop(name, None)
    theirs = subprocess.run([sys.executable, WORKER, "--torch", str(tmp_path), _free_port()], env=env,
                            capture_output=True, text=True, timeout=120)
    assert theirs.returncode == 0, theirs.stdout + theirs.stderr
    ours = subprocess.run([sys.executable, "-m", "chainrule.distributed.run", "--nproc-per-node", "2", WORKER,
                           str(tmp_path)], env=env, capture_output=True, text=True, timeout=120)
    assert ours.returncode == 0, ours.stdout + ours.stderr
    for rank in range(2):
        expected = json.loads((tmp_path / f"torch_{rank}.json").read_text())
        found = json.loads((tmp_path / f"chainrule_{rank}.json").read_text())
        assert found.keys() == expected.keys()
        different = {key: (found[key], expected[key]) for key in expected if found[key] != expected[key]}
        assert not different, f"rank {rank}: chainrule vs torch gloo: {different}"
