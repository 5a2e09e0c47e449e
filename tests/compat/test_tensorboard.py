"""utils.tensorboard.SummaryWriter writes event files that TensorBoard's own reader loads."""

import os
import subprocess
import sys

import numpy as np
import pytest

import chainrule

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from chainrule.utils.tensorboard import SummaryWriter  # noqa: E402


def test_scalars_histograms_and_text_round_trip(tmp_path):
    values = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    with SummaryWriter(str(tmp_path)) as writer:
        for step in range(5):
            writer.add_scalar("loss", chainrule.tensor(1.0 / (step + 1)), step)
            writer.add_scalars("accuracy", {"train": step * 0.1, "val": step * 0.05}, step)
        writer.add_histogram("weights", chainrule.tensor(values), 7)
        writer.add_histogram("weights_auto", values, 7, bins="auto", max_bins=10)
        writer.add_text("note", "hello **world**", 1)
        writer.flush()
    events = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0}).Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [
        (s, pytest.approx(1.0 / (s + 1), rel=1e-6)) for s in range(5)]
    histogram = events.Histograms("weights")[0]
    assert histogram.step == 7
    proto = histogram.histogram_value
    assert proto.num == 1000 and sum(proto.bucket) == 1000
    assert proto.min == pytest.approx(values.min()) and proto.max == pytest.approx(values.max())
    assert proto.sum == pytest.approx(values.sum(), abs=1e-3)
    capped = events.Histograms("weights_auto")[0].histogram_value
    assert sum(capped.bucket) == 1000 and len(capped.bucket) <= 11  # max_bins + the empty left bucket
    assert events.Tensors("note/text_summary")[0].tensor_proto.string_val == [b"hello **world**"]
    # add_scalars writes one run per curve, as torch's writer does
    assert {"accuracy_train", "accuracy_val"} <= set(os.listdir(tmp_path))
    train = EventAccumulator(str(tmp_path / "accuracy_train")).Reload()
    assert [round(e.value, 6) for e in train.Scalars("accuracy")] == [0.0, 0.1, 0.2, 0.3, 0.4]


def test_default_log_dir_is_runs_with_a_time_stamp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    writer = SummaryWriter(comment="_lr0.1")
    writer.close()
    assert os.path.dirname(writer.get_logdir()) == "runs"
    assert writer.get_logdir().endswith("_lr0.1")
    assert os.listdir(writer.get_logdir())[0].startswith("events.out.tfevents.")


def test_import_without_tensorboard_names_the_extra(tmp_path):
    # a stub module named tensorboard that fails to import stands in for a missing package
    (tmp_path / "tensorboard.py").write_text("raise ImportError('no tensorboard here')\n")
    code = ("import chainrule\n"
            "try:\n    import chainrule.utils.tensorboard\n"
            "except ImportError as e:\n    print(e)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.path.dirname(os.path.dirname(chainrule.__file__))]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert 'pip install "chainrule[tensorboard]"' in out.stdout
