"""SummaryWriter.add_pr_curve, and records added after close(), against torch 2.13's writer: the
same calls on both writers, the event files read back with TensorBoard's own reader."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

import chainrule

pytest.importorskip("tensorboard")
torch = pytest.importorskip("torch")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402


def _write_curves(lib, log_dir, num_thresholds):
    """A class-per-tag loop with close() inside it, as a tutorial writes it."""
    from importlib import import_module
    writer = import_module(f"{lib.__name__}.utils.tensorboard").SummaryWriter(log_dir)
    generator = np.random.default_rng(4)
    scores = generator.random((40, 3)).astype(np.float32)
    truth = generator.integers(0, 3, size=40)
    for k in range(3):
        labels = lib.tensor(truth == k)  # boolean labels
        writer.add_pr_curve(str(k), labels, lib.tensor(scores[:, k]), global_step=k,
                            num_thresholds=num_thresholds)
        writer.close()
    return sorted(glob.glob(os.path.join(log_dir, "events.out.tfevents.*")))


def _read_curves(log_dir):
    found = {}
    for path in sorted(glob.glob(os.path.join(log_dir, "events.out.tfevents.*"))):
        events = EventAccumulator(path, size_guidance={"tensors": 0})
        events.Reload()
        for tag in events.Tags()["tensors"]:
            (event,) = events.Tensors(tag)
            content = events.SummaryMetadata(tag).plugin_data
            found[tag] = (event.step, content.plugin_name, tensor_util.make_ndarray(event.tensor_proto))
    return found


@pytest.mark.parametrize("num_thresholds", [127, 11, 500])
def test_pr_curves_match_torch(tmp_path, num_thresholds):
    ours_files = _write_curves(chainrule, str(tmp_path / "ours"), num_thresholds)
    theirs_files = _write_curves(torch, str(tmp_path / "theirs"), num_thresholds)
    assert len(ours_files) == len(theirs_files) == 3  # close() then a new record: a new event file
    ours, theirs = _read_curves(str(tmp_path / "ours")), _read_curves(str(tmp_path / "theirs"))
    assert sorted(ours) == sorted(theirs) == ["0", "1", "2"]
    for tag in theirs:
        assert ours[tag][:2] == theirs[tag][:2] == (int(tag), "pr_curves")
        assert ours[tag][2].shape == theirs[tag][2].shape == (6, min(num_thresholds, 127))
        np.testing.assert_allclose(ours[tag][2], theirs[tag][2], rtol=1e-6)
