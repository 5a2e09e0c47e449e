"""The parts of chainrule.distributed that need no MPI job: DistributedSampler against torch's,
the post-accumulate-grad hook DDP is built on, errors before init, and the launcher's arguments."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import chainrule
import chainrule.distributed as dist
from chainrule.utils.data import DistributedSampler


@pytest.mark.parametrize("n", [0, 1, 7, 10, 12])
@pytest.mark.parametrize("replicas", [1, 3, 4])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_partitions_like_torch(n, replicas, drop_last):
    dataset = list(range(n))
    for rank in range(replicas):
        ours = DistributedSampler(dataset, num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last)
        theirs = torch.utils.data.DistributedSampler(dataset, num_replicas=replicas, rank=rank, shuffle=False,
                                                     drop_last=drop_last)
        assert list(ours) == list(theirs)
        assert len(ours) == len(theirs)


def test_sampler_shuffles_the_same_way_on_every_rank_and_reshuffles_per_epoch():
    # torch's randperm stream is not NumPy's: the order differs from torch's, the partition rules don't
    def epoch(e):
        samplers = [DistributedSampler(range(11), num_replicas=3, rank=r, seed=5) for r in range(3)]
        for s in samplers:
            s.set_epoch(e)
        return [list(s) for s in samplers]

    first, again, second = epoch(0), epoch(0), epoch(1)
    assert first == again and first != second
    assert [len(part) for part in first] == [4, 4, 4]
    everything = sorted(sum(first, []))
    assert set(everything) == set(range(11)) and len(everything) == 12  # one index repeated as padding
    assert sorted(sum(second, [])) != list(range(12))


def test_sampler_errors_like_torch():
    with pytest.raises(ValueError, match=r"Invalid rank 3, rank should be in the interval \[0, 2\]"):
        DistributedSampler(range(4), num_replicas=3, rank=3)
    # torch's RuntimeError "Requires distributed package" is for builds without torch.distributed;
    # where it is available (as chainrule.distributed is), get_world_size raises this ValueError
    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        DistributedSampler(range(4))


def test_sampler_in_a_dataloader():
    data = chainrule.utils.data.TensorDataset(chainrule.arange(10))
    loader = chainrule.utils.data.DataLoader(
        data, batch_size=2, sampler=DistributedSampler(data, num_replicas=2, rank=1, shuffle=False))
    assert [b[0].tolist() for b in loader] == [[1, 3], [5, 7], [9]]


def _post_accumulate_calls(lib):
    w = lib.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    w.register_post_accumulate_grad_hook(lambda t: seen.append((t is w, t.grad.tolist())))
    (w * 3).sum().backward()
    (w * w).sum().backward()
    lib.autograd.grad((w * 2).sum(), w)  # .grad is not accumulated: no call
    return seen


def test_post_accumulate_grad_hook_like_torch():
    assert _post_accumulate_calls(chainrule) == _post_accumulate_calls(torch) == [
        (True, [3.0, 3.0]), (True, [5.0, 7.0])]


def test_post_accumulate_grad_hook_errors_and_removal():
    w = chainrule.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="post accumulate grad hooks cannot be registered on non-leaf"):
        (w * 2).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        chainrule.ones(2).register_post_accumulate_grad_hook(lambda t: None)
    calls = []
    handle = w.register_post_accumulate_grad_hook(calls.append)
    handle.remove()
    w.sum().backward()
    assert calls == []


def test_collectives_before_init_raise_torchs_error():
    assert not dist.is_initialized()
    for call in (lambda: dist.all_reduce(chainrule.ones(2)), dist.get_rank, dist.barrier,
                 lambda: chainrule.nn.parallel.DistributedDataParallel(chainrule.nn.Linear(2, 2))):
        with pytest.raises(ValueError, match="Default process group has not been initialized"):
            call()


def test_init_rejects_unknown_backends_before_starting_mpi():
    with pytest.raises(ValueError, match="unknown backend 'nccl'.*not supported yet"):
        dist.init_process_group("nccl")
    with pytest.raises(ValueError, match="unknown backend 'tcp'"):
        dist.init_process_group("tcp")
    assert not dist.is_initialized()


def test_reduce_op_names_match_torch():
    assert {op.name for op in dist.ReduceOp} >= {"SUM", "AVG", "PRODUCT", "MIN", "MAX"}
    assert {"SUM", "AVG", "PRODUCT", "MIN", "MAX"} <= set(dir(torch.distributed.ReduceOp))


def test_launcher_refuses_several_nodes_with_a_pointer_to_mpi():
    result = subprocess.run([sys.executable, "-m", "chainrule.distributed.run", "--nnodes", "2", "x.py"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "srun" in result.stderr


def test_mpi_import_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    from chainrule.distributed import _mpi

    with pytest.raises(ImportError, match=r'pip install "chainrule\[mpi\]"'):
        _mpi.load_mpi()


def test_sampler_indices_are_int64_arrays_for_the_fast_loader_path():
    indices = DistributedSampler(range(9), num_replicas=2, rank=0, shuffle=True)._indices()
    assert indices.dtype == np.int64 and len(indices) == 5


def test_launcher_variables_become_torchruns(monkeypatch):
    from chainrule.distributed import _mpi

    launcher = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "PMI_",
                "MPI_LOCAL", "OMPI_", "PMIX_", "SLURM_")
    # a private copy of the environment: what the function exports must not leak into other tests
    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items() if not k.startswith(launcher)})
    # a Slurm batch script (no srun step): one plain process, nothing exported
    monkeypatch.setenv("SLURM_PROCID", "0")
    monkeypatch.setenv("SLURM_NTASKS", "8")
    _mpi.export_torchrun_environment()
    assert "RANK" not in os.environ and "WORLD_SIZE" not in os.environ
    # Open MPI's mpirun
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "5")
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "8")
    monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1")
    monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "4")
    _mpi.export_torchrun_environment()
    assert [os.environ[k] for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")] == ["5", "8", "1", "4"]
    assert os.environ["MASTER_PORT"] == "29500"
