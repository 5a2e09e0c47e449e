"""``chainrule train --device cuda --nprocs N``: each rank trains on its own GPU (cuda:rank %
device_count) and the ranks average their gradients, following the one-process run."""

from __future__ import annotations

import csv

import pytest

import chainrule
from chainrule.cli import main
from chainrule.commands import train_distributed


@pytest.mark.parametrize("requested, expected", [("cuda", [0, 1, 2, 0, 1]), ("cuda:1", [1, 1, 1, 1, 1])])
def test_each_rank_gets_a_gpu_round_robin_unless_one_is_named(cuda, monkeypatch, requested, expected):
    current = [0]
    monkeypatch.setattr(chainrule.cuda, "device_count", lambda: 3)
    monkeypatch.setattr(chainrule.cuda, "current_device", lambda: current[0])
    monkeypatch.setattr(chainrule.cuda, "set_device", lambda index: current.__setitem__(0, index))
    got = []
    for rank in range(5):
        device = train_distributed.rank_device(chainrule.device(requested), rank)
        assert current[0] == device.index  # made current, so the rank allocates there
        got.append(device.index)
    assert got == expected
    assert train_distributed.rank_device(chainrule.device("cpu"), 3) == chainrule.device("cpu")


def _metrics(path):
    return list(csv.DictReader(open(path / "metrics.csv")))


def test_two_ranks_on_the_device_follow_the_one_process_cpu_run(cuda, monkeypatch, tmp_path, capfd):
    pytest.importorskip("sklearn")
    pytest.importorskip("mpi4py", reason='MPI tests need mpi4py: pip install "chainrule[mpi]"')
    monkeypatch.setenv("CHAINRULE_STANDIN_CUDA", "1")  # the ranks' 'cuda' is the stand-in too
    argv = ["train", "--model", "mlp", "--limit", "100", "--epochs", "1", "--batch-size", "25", "--optimizer", "adam"]
    assert main(argv + ["--out", str(tmp_path / "one")]) == 0
    assert main(argv + ["--out", str(tmp_path / "two"), "--nprocs", "2", "--device", "cuda"]) == 0
    assert "with 2 processes on cuda (rank r on cuda:r % 1)" in capfd.readouterr().out
    one, two = _metrics(tmp_path / "one"), _metrics(tmp_path / "two")
    assert len(one) == len(two) == 1
    for a, b in zip(one, two):
        for key in ("train_loss", "test_loss"):
            assert abs(float(a[key]) - float(b[key])) < 1e-4, (key, a, b)
    # trained on the device: its checkpoint says so, and loads back on the CPU by map_location
    state = chainrule.load(tmp_path / "two" / "model.safetensors", map_location="cpu")
    assert all(t.device.type == "cpu" for t in state["state_dict"].values())
    restored = chainrule.load(tmp_path / "two" / "model.safetensors")["state_dict"]
    assert all(t.device.type == "cuda" for t in restored.values())
