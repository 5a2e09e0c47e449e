"""The new collectives, object functions, batch_isend_irecv, the differentiable collectives and
their errors, compared with torch's own gloo backend: the same script runs as 2 torch processes
(forked by ``mp.start_processes``, gloo over localhost) and as 2 chainrule ranks (MPI), and every result must match."""

from __future__ import annotations

import os

import pytest
from _gloo_oracle import run_on_gloo_and_mpi  # this folder is on sys.path (no __init__.py)

pytest.importorskip("mpi4py", reason='MPI tests need mpi4py: pip install "chainrule[mpi]"')
torch_distributed = pytest.importorskip("torch.distributed")
if not torch_distributed.is_available() or not torch_distributed.is_gloo_available():
    pytest.skip("this torch has no gloo backend to compare with", allow_module_level=True)

WORKER = os.path.join(os.path.dirname(__file__), "gloo_compare_worker.py")


def test_exchanges_match_torch_gloo(tmp_path):
    theirs, ours = run_on_gloo_and_mpi(WORKER, tmp_path)
    for rank in range(2):
        expected, found = theirs[rank], ours[rank]
        assert found.keys() == expected.keys()
        different = {key: (found[key], expected[key]) for key in expected if found[key] != expected[key]}
        assert not different, f"rank {rank}: chainrule vs torch gloo: {different}"
