"""``chainrule train --nprocs 2`` follows the one-process run: same batches, averaged gradients."""

from __future__ import annotations

import csv

import pytest

from chainrule.cli import main

pytest.importorskip("sklearn")
pytest.importorskip("mpi4py", reason='MPI tests need mpi4py: pip install "chainrule[mpi]"')


def _metrics(path):
    return list(csv.DictReader(open(path / "metrics.csv")))


def test_two_processes_reach_the_one_process_accuracy(tmp_path):
    argv = ["train", "--model", "mlp", "--limit", "300", "--epochs", "2", "--batch-size", "25", "--optimizer", "momentum"]
    assert main(argv + ["--out", str(tmp_path / "one")]) == 0
    assert main(argv + ["--out", str(tmp_path / "two"), "--nprocs", "2"]) == 0
    one, two = _metrics(tmp_path / "one"), _metrics(tmp_path / "two")
    assert len(one) == len(two) == 2
    for a, b in zip(one, two):
        for key in ("train_loss", "test_loss"):
            assert abs(float(a[key]) - float(b[key])) < 1e-4, (key, a, b)
        for key in ("train_acc", "test_acc"):
            assert abs(float(a[key]) - float(b[key])) < 1 / 300, (key, a, b)
    assert (tmp_path / "two" / "model.safetensors").exists()


def test_nprocs_must_be_positive(capsys):
    assert main(["train", "--nprocs", "0"]) == 2
    assert "--nprocs must be a positive integer, got 0" in capsys.readouterr().err
