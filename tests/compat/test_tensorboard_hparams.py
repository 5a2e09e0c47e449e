"""utils.tensorboard.summary.hparams, SummaryWriter.add_hparams / add_figure and the public
``file_writer`` (stable-baselines3's logger adds hparams records through it), against torch 2.13."""

from __future__ import annotations

import glob
import os
from importlib import import_module

import numpy as np
import pytest

import chainrule

pytest.importorskip("tensorboard")
torch = pytest.importorskip("torch")
from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader  # noqa: E402
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData  # noqa: E402


def _summary_module(lib):
    return import_module(f"{lib.__name__}.utils.tensorboard.summary")


def _writer_class(lib):
    return import_module(f"{lib.__name__}.utils.tensorboard").SummaryWriter


def _serialized(records):
    # deterministic: a map field's order in the bytes is the protobuf runtime's hash order otherwise
    return [record.SerializeToString(deterministic=True) for record in records]


def _plugin_content(metadata):
    """The hparams plugin's content re-serialized deterministically (its start info is a map)."""
    content = metadata.plugin_data.content
    if metadata.plugin_data.plugin_name != "hparams":
        return content
    data = HParamsPluginData()
    data.ParseFromString(content)
    return data.SerializeToString(deterministic=True)


HPARAM_CASES = [
    ({"lr": 0.01, "batch": 32, "algo": "ppo"}, {"reward": 1.0, "loss": 0.0}, None),
    ({"use_sde": True, "gamma": np.float64(0.99), "skipped": None}, {}, None),
    ({"lr": 0.1, "algo": "a2c"}, {"m": 0}, {"lr": [0.1, 0.01], "algo": ["a2c", "ppo"]}),
    ({"n": 3}, {"m": 0}, {"n": []}),
]


@pytest.mark.parametrize("hparam_dict, metric_dict, domains", HPARAM_CASES)
def test_hparams_records_are_torchs_bytes(hparam_dict, metric_dict, domains):
    ours = _summary_module(chainrule).hparams(hparam_dict, metric_dict, domains)
    theirs = _summary_module(torch).hparams(hparam_dict, metric_dict, domains)
    assert _serialized(ours) == _serialized(theirs)


def test_a_tensor_hyperparameter_keeps_its_first_element():
    ours = _summary_module(chainrule).hparams({"w": chainrule.tensor([2.5, 7.0])}, {})
    theirs = _summary_module(torch).hparams({"w": torch.tensor([2.5, 7.0])}, {})
    assert _serialized(ours) == _serialized(theirs)


@pytest.mark.parametrize("args", [
    ([1, 2], {}),                                   # hparam_dict not a dict
    ({"a": 1}, None),                               # metric_dict not a dict
    ({"a": 1}, {}, [1]),                            # domains not a dict
    ({"a": 1}, {}, {"b": [1]}),                     # a domain for an unknown hyperparameter
    ({"a": 1}, {}, {"a": ["x"]}),                   # a domain of another type
    ({"a": [1, 2]}, {}),                            # a list value
    ({"a": np.float32(0.5)}, {}),                   # NumPy float32 is not a Python float
])
def test_bad_hparams_raise_torchs_error(args):
    with pytest.raises(Exception) as theirs:
        _summary_module(torch).hparams(*args)
    with pytest.raises(type(theirs.value), match=None) as ours:
        _summary_module(chainrule).hparams(*args)
    assert str(ours.value) == str(theirs.value)


def _events(log_dir):
    """Every summary value by (run, tag): its steps with the value's kind and plugin content (the
    hparams records have no value, so TensorBoard's accumulator would skip them)."""
    found = {}
    for path in sorted(glob.glob(os.path.join(log_dir, "**", "events.out.tfevents.*"), recursive=True)):
        run = os.path.relpath(os.path.dirname(path), log_dir)
        for event in LegacyEventFileLoader(path).Load():
            for value in event.summary.value:
                kind = value.WhichOneof("value")
                shown = (value.simple_value if kind == "simple_value"
                         else (value.image.width, value.image.height) if kind == "image" else None)
                found.setdefault((run, value.tag), []).append(
                    (event.step, kind, shown, _plugin_content(value.metadata)))
    return found


def _log_like_a_library(lib, log_dir):
    """What stable-baselines3's TensorBoard output does, plus add_hparams and add_scalars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    writer = _writer_class(lib)(log_dir)
    writer.add_scalar("train/loss", 0.5, 3)
    for record in _summary_module(lib).hparams({"lr": 0.1, "algo": "sac"}, {"train/loss": 0}):
        writer.file_writer.add_summary(record, 3)
    figure = plt.figure(figsize=(2, 1), dpi=50)
    plt.plot([0, 1], [1, 0])
    writer.add_figure("curve", figure, 4)
    assert not plt.fignum_exists(figure.number)  # close=True by default
    writer.add_figure("pair", [plt.figure(figsize=(1, 1), dpi=40), plt.figure(figsize=(1, 1), dpi=40)], 5)
    writer.add_hparams({"lr": 0.01, "layers": 2}, {"hparam/reward": 12.5}, run_name="trial", global_step=6)
    writer.add_scalars("returns", {"train": 1.0, "eval": 2.0}, 7)
    writers = sorted(os.path.relpath(path, log_dir) for path in writer.all_writers)
    writer.close()
    assert writer.file_writer is None and writer.all_writers is None
    return writers


def test_library_style_logging_writes_what_torch_writes(tmp_path):
    ours_writers = _log_like_a_library(chainrule, str(tmp_path / "ours"))
    theirs_writers = _log_like_a_library(torch, str(tmp_path / "theirs"))
    assert ours_writers == theirs_writers == [".", "returns_eval", "returns_train"]
    ours, theirs = _events(str(tmp_path / "ours")), _events(str(tmp_path / "theirs"))
    assert ours == theirs
    assert ("trial", "hparam/reward") in ours and ("trial", "_hparams_/experiment") in ours
    assert ours[(".", "curve")] == [(4, "image", (100, 50), b"")]
    assert ours[(".", "_hparams_/session_start_info")][0][:3] == (3, None, None)


def test_add_hparams_refuses_what_torch_refuses(tmp_path):
    for lib in (torch, chainrule):
        writer = _writer_class(lib)(str(tmp_path / lib.__name__))
        with pytest.raises(TypeError, match="hparam_dict and metric_dict should be dictionary."):
            writer.add_hparams({"a": 1}, [("m", 1)])
        writer.close()


def test_file_writer_stamps_steps_and_fails_to_reopen_as_torchs(tmp_path):
    for lib in (torch, chainrule):
        writer = _writer_class(lib)(str(tmp_path / lib.__name__))
        file_writer = writer.file_writer
        assert file_writer.get_logdir() == str(tmp_path / lib.__name__)
        file_writer.add_summary(_summary_module(lib).hparams({"a": 1}, {})[0], np.int64(2), walltime=5.0)
        file_writer.close()
        # torch's FileWriter.reopen calls a method TensorBoard's EventFileWriter does not have
        with pytest.raises(AttributeError, match="'EventFileWriter' object has no attribute 'reopen'"):
            file_writer.reopen()
    ours, theirs = _events(str(tmp_path / "chainrule")), _events(str(tmp_path / "torch"))
    assert ours == theirs and ours[(".", "_hparams_/experiment")][0][0] == 2
