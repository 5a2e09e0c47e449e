"""d2l's data modules ask for four loader workers on any machine: with fewer CPUs torch warns
that the workers outnumber them, once when the loader is built and again when an epoch starts its
workers, each time naming the line inside the DataLoader that checked (not the caller's line).
The same warnings, at the library's own lines, from chainrule."""

from __future__ import annotations

import os
import warnings

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _construct_then_iterate(lib, monkeypatch, *, persistent_workers):
    # one CPU, two workers: the warning's condition without depending on the test machine
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    dataset = lib.utils.data.TensorDataset(lib.arange(4.0))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        loader = lib.utils.data.DataLoader(dataset, batch_size=2, num_workers=2,
                                           persistent_workers=persistent_workers)
        built = len(seen)
        for _ in range(2):  # two epochs
            batches = [batch[0].tolist() for batch in loader]
    if persistent_workers:
        del loader._iterator  # end the persistent workers now, not at interpreter exit
    where = [(os.path.basename(w.filename), w.category) for w in seen]
    return built, where, [str(w.message) for w in seen], batches


@pytest.mark.parametrize("persistent_workers", [False, True])
def test_worker_count_warning_matches_torch(monkeypatch, persistent_workers):
    ours = _construct_then_iterate(chainrule, monkeypatch, persistent_workers=persistent_workers)
    theirs = _construct_then_iterate(torch, monkeypatch, persistent_workers=persistent_workers)
    assert ours[0] == theirs[0] == 1
    # both name their own dataloader.py: the construction check, then one per new worker iterator
    assert ours[1] == theirs[1]
    assert ours[1][0] == ("dataloader.py", UserWarning)
    assert ours[2] == theirs[2]
    assert "will create 2 worker processes in total" in ours[2][0]
    assert ours[3] == theirs[3] == [[0.0, 1.0], [2.0, 3.0]]


def test_enough_cpus_stay_silent(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        chainrule.utils.data.DataLoader(chainrule.utils.data.TensorDataset(chainrule.arange(4.0)), num_workers=2)
    assert seen == []
