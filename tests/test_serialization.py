"""chainrule.save / chainrule.load: round trips, atomic writes, clear errors on bad files."""

import json
import os
import struct
from collections import OrderedDict

import numpy as np
import pytest

import chainrule
from chainrule import serialization


def _np(t):
    return t._data


def _assert_tensor(got, want):
    assert isinstance(got, chainrule.Tensor)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(_np(got), _np(want))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "uint8", "int8", "int16", "int32",
                                   "int64", "bool"])
def test_every_dtype_round_trips(tmp_path, dtype):
    values = (np.arange(-6, 6).reshape(3, 4) % 5).astype(dtype)
    t = chainrule.from_numpy(values)
    chainrule.save(t, tmp_path / "t.safetensors")
    _assert_tensor(chainrule.load(tmp_path / "t.safetensors"), t)


@pytest.mark.parametrize("make", [
    lambda x: x.t(), lambda x: x[:, ::2], lambda x: x[1:, 1:3], lambda x: x.flip(0, 1)[:, ::2],
    lambda x: x.expand(2, 3, 4), lambda x: x[0, 0], lambda x: x[:0],
], ids=["transposed", "strided", "sliced", "reversed", "expanded", "0-d", "empty"])
def test_non_contiguous_0d_and_empty_tensors(tmp_path, make):
    view = make(chainrule.arange(12, dtype=chainrule.float32).reshape(3, 4))
    chainrule.save({"v": view}, tmp_path / "v.safetensors")
    got = chainrule.load(tmp_path / "v.safetensors")["v"]
    _assert_tensor(got, view)
    assert got.is_contiguous()


def test_nested_state_with_plain_leaves_round_trips(tmp_path):
    w = chainrule.randn(3, 2)
    optimizer_state = {
        "state": {0: {"step": chainrule.tensor(3.0), "exp_avg": chainrule.zeros(3, 2)}, 1: {"step": 5}},
        "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1], "amsgrad": False,
                          "name": "all", "foreach": None, "eps": float("inf")}],
    }
    obj = {"model": OrderedDict([("layer.weight", w), ("layer.bias", chainrule.zeros(2))]),
           "optimizer": optimizer_state, "epoch": 7, "array": np.arange(3), "dtype": chainrule.float64}
    chainrule.save(obj, tmp_path / "ckpt.safetensors")
    got = chainrule.load(tmp_path / "ckpt.safetensors")
    assert isinstance(got["model"], OrderedDict) and list(got["model"]) == ["layer.weight", "layer.bias"]
    _assert_tensor(got["model"]["layer.weight"], w)
    assert list(got["optimizer"]["state"]) == [0, 1], "int keys stay ints"
    _assert_tensor(got["optimizer"]["state"][0]["exp_avg"], chainrule.zeros(3, 2))
    assert got["optimizer"]["state"][1] == {"step": 5}
    group = got["optimizer"]["param_groups"][0]
    assert group["betas"] == (0.9, 0.999) and group["params"] == [0, 1] and group["foreach"] is None
    assert group["eps"] == float("inf") and group["amsgrad"] is False and group["name"] == "all"
    assert got["epoch"] == 7 and got["dtype"] is chainrule.float64
    np.testing.assert_array_equal(got["array"], np.arange(3))


def test_files_are_plain_safetensors(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    x = chainrule.arange(6, dtype=chainrule.float64).reshape(2, 3)
    chainrule.save({"a": x.t(), "b": {"c": x[:, 1]}}, tmp_path / "f.safetensors")
    arrays = safetensors_numpy.load_file(tmp_path / "f.safetensors")
    np.testing.assert_array_equal(arrays["a"], _np(x).T)
    np.testing.assert_array_equal(arrays["b.c"], _np(x)[:, 1])
    # and a file written by the safetensors package loads as a flat dict of tensors
    safetensors_numpy.save_file({"w": np.ones((2, 2), np.float32)}, tmp_path / "g.safetensors")
    _assert_tensor(chainrule.load(tmp_path / "g.safetensors")["w"], chainrule.ones(2, 2))


def test_colliding_flattened_names_are_kept_apart(tmp_path):
    obj = {"a.b": chainrule.ones(1), "a": {"b": chainrule.zeros(1)}}
    chainrule.save(obj, tmp_path / "c.safetensors")
    got = chainrule.load(tmp_path / "c.safetensors")
    _assert_tensor(got["a.b"], chainrule.ones(1))
    _assert_tensor(got["a"]["b"], chainrule.zeros(1))


def test_file_objects_and_map_location(tmp_path):
    import io

    buffer = io.BytesIO()
    chainrule.save({"x": chainrule.ones(2)}, buffer)
    buffer.seek(0)
    _assert_tensor(chainrule.load(buffer, map_location="cpu", weights_only=True)["x"], chainrule.ones(2))
    path = tmp_path / "m.safetensors"
    chainrule.save(chainrule.ones(2), str(path))
    _assert_tensor(chainrule.load(str(path), map_location=lambda t, loc: t * 2), chainrule.full((2,), 2.0))


def test_saved_values_do_not_share_memory_with_the_originals(tmp_path):
    x = chainrule.zeros(3, requires_grad=True)
    chainrule.save(x, tmp_path / "x.safetensors")
    loaded = chainrule.load(tmp_path / "x.safetensors")
    assert not loaded.requires_grad
    loaded._data[0] = 5.0
    assert _np(chainrule.load(tmp_path / "x.safetensors"))[0] == 0.0


@pytest.mark.parametrize("name", ["ckpt.pt", "ckpt.safetensors"])
def test_a_crash_mid_save_keeps_the_old_file(tmp_path, monkeypatch, name):
    path = tmp_path / name
    chainrule.save({"w": chainrule.ones(4)}, path)
    before = path.read_bytes()
    real_fsync = os.fsync

    def failing_fsync(fd):
        os.write(fd, b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(serialization.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        chainrule.save({"w": chainrule.zeros(4), "v": chainrule.zeros(100)}, path)
    monkeypatch.setattr(serialization.os, "fsync", real_fsync)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [name], "the temporary file is removed"
    _assert_tensor(chainrule.load(path)["w"], chainrule.ones(4))


def test_objects_safetensors_cannot_hold_are_pickled(tmp_path):
    path = tmp_path / "obj.pt"
    chainrule.save({(1, 2): chainrule.ones(1), "n": 3}, path)
    got = chainrule.load(path)  # tensors, tuples and dicts: weights-only loading allows them
    _assert_tensor(got[(1, 2)], chainrule.ones(1))
    assert got["n"] == 3


def test_a_whole_module_loads_only_with_weights_only_false(tmp_path):
    import pickle

    model = chainrule.nn.Sequential(chainrule.nn.Linear(3, 2), chainrule.nn.ReLU())
    chainrule.save(model, tmp_path / "model.pt")
    with pytest.raises(pickle.UnpicklingError, match="(?s)Weights only load failed.*Unsupported global: GLOBAL "
                       "chainrule.nn.modules.container.Sequential"):
        chainrule.load(tmp_path / "model.pt")
    got = chainrule.load(tmp_path / "model.pt", weights_only=False)
    assert type(got) is chainrule.nn.Sequential
    assert isinstance(got[0].weight, chainrule.nn.Parameter) and got[0].weight.requires_grad
    _assert_tensor(got[0].weight.detach(), model[0].weight.detach())
    x = chainrule.randn(4, 3)
    np.testing.assert_array_equal(_np(got(x)), _np(model(x)))
    with chainrule.serialization.safe_globals([chainrule.nn.Sequential, chainrule.nn.Linear, chainrule.nn.ReLU]):
        allowed = chainrule.load(tmp_path / "model.pt")  # the user vouched for these classes
    assert type(allowed) is chainrule.nn.Sequential
    np.testing.assert_array_equal(_np(allowed(x)), _np(model(x)))
    assert chainrule.serialization.get_safe_globals() == []


def test_weights_only_follows_torchs_environment_switches_and_pickle_module(tmp_path, monkeypatch):
    # scripts written before torch 2.6 (torch.load of a pickled object with no weights_only) are
    # run by setting TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD, as torch's own refusal message suggests
    import pickle

    path = tmp_path / "model.pt"
    chainrule.save(chainrule.nn.Linear(2, 2), path)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.warns(UserWarning, match="TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD detected"):
        assert type(chainrule.load(path)) is chainrule.nn.Linear
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        chainrule.load(path, weights_only=True)  # an explicit argument is not overridden
    monkeypatch.setenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "yes")
    with pytest.raises(RuntimeError, match="Only one of .* should be set"):
        chainrule.load(path)
    monkeypatch.delenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        chainrule.load(path, weights_only=False)  # forcing weights-only wins over the argument
    monkeypatch.delenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    # the caller's own pickle_module means a full unpickle, and can't be combined with weights_only
    assert type(chainrule.load(path, pickle_module=pickle)) is chainrule.nn.Linear
    with pytest.raises(RuntimeError, match="explicit pickle_module"):
        chainrule.load(path, pickle_module=pickle, weights_only=True)


def test_unpicklable_objects_raise_before_writing(tmp_path):
    path = tmp_path / "bad.pt"
    with pytest.raises((TypeError, AttributeError, Exception), match="lambda|pickle"):
        chainrule.save({"f": lambda: 0}, path)
    assert not path.exists() and os.listdir(tmp_path) == []


def _write_raw(path, header: dict, data: bytes = b""):
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


def test_corrupt_files_give_clear_errors(tmp_path):
    good = tmp_path / "good.safetensors"
    chainrule.save({"weight": chainrule.ones(10), "bias": chainrule.zeros(2)}, good)
    raw = good.read_bytes()

    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(raw[:-5])
    with pytest.raises(RuntimeError, match="tensor 'bias'.*truncated"):
        chainrule.load(truncated)

    short = tmp_path / "short.safetensors"
    short.write_bytes(raw[:5])
    with pytest.raises(RuntimeError, match="too short"):
        chainrule.load(short)

    text = tmp_path / "notes.txt"
    text.write_text("this is a text file, not a checkpoint at all")
    with pytest.raises(RuntimeError, match="not a valid checkpoint"):
        chainrule.load(text)

    garbled = tmp_path / "garbled.safetensors"
    _write_raw(garbled, {"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 12)
    with pytest.raises(RuntimeError, match="tensor 'w'.*does not hold shape"):
        chainrule.load(garbled)
    _write_raw(garbled, {"w": {"dtype": "Q7", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4)
    with pytest.raises(RuntimeError, match="tensor 'w'.*unknown dtype 'Q7'"):
        chainrule.load(garbled)

    missing = tmp_path / "missing.safetensors"
    structure = json.dumps({"version": 1, "structure": {"dict": [["w", {"tensor": "w"}]]}})
    _write_raw(missing, {"__metadata__": {"chainrule": structure}})
    with pytest.raises(RuntimeError, match="missing tensor 'w'"):
        chainrule.load(missing)

    with pytest.raises(FileNotFoundError):
        chainrule.load(tmp_path / "nope.safetensors")
