"""chainrule.save records where each tensor was (as torch's checkpoints do) and chainrule.load
puts it back there, or where ``map_location`` says: a device, a dict of locations, a function."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

import chainrule
from chainrule import _safetensors as _safetensors_format
from chainrule import _torch_zip


def _checkpoint(save) -> bytes:
    """A state with a 'cuda' tensor, a CPU tensor and a 'cuda' parameter, saved by ``save``."""
    state = {"on_gpu": chainrule.arange(3.0, device="cuda"), "on_cpu": chainrule.ones(2),
             "param": chainrule.nn.Parameter(chainrule.full((2,), 5.0, device="cuda"))}
    return save(state)


def _safetensors(state) -> bytes:
    buffer = io.BytesIO()
    _safetensors_format.write(state, buffer)  # chainrule.save writes safetensors only to a .safetensors path
    return buffer.getvalue()


FORMATS = {"safetensors": _safetensors, "torch_zip": _torch_zip.dumps}


def _devices(loaded) -> dict:
    return {key: str(t.device) for key, t in loaded.items()}


def _values(loaded) -> dict:
    return {key: t.detach().cpu().numpy().tolist() for key, t in loaded.items()}


EXPECTED_VALUES = {"on_gpu": [0.0, 1.0, 2.0], "on_cpu": [1.0, 1.0], "param": [5.0, 5.0]}


@pytest.mark.parametrize("fmt", FORMATS)
def test_tensors_go_back_to_the_device_they_were_saved_from(cuda, fmt):
    loaded = chainrule.load(_checkpoint(FORMATS[fmt]))
    assert _devices(loaded) == {"on_gpu": "cuda:0", "on_cpu": "cpu", "param": "cuda:0"}
    assert _values(loaded) == EXPECTED_VALUES


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("map_location", ["cpu", chainrule.device("cpu"), torch.device("cpu"), {"cuda:0": "cpu"},
                                          lambda tensor, location: tensor],
                         ids=["str", "device", "torch_device", "dict", "function"])
def test_map_location_takes_them_to_the_cpu(cuda, fmt, map_location):
    loaded = chainrule.load(_checkpoint(FORMATS[fmt]), map_location=map_location)
    assert set(_devices(loaded).values()) == {"cpu"}
    assert _values(loaded) == EXPECTED_VALUES


@pytest.mark.parametrize("fmt", FORMATS)
def test_map_location_takes_cpu_tensors_to_the_gpu(cuda, fmt):
    data = FORMATS[fmt]({"w": chainrule.ones(2)})
    for map_location in ("cuda", "cuda:0", chainrule.device("cuda", 0), {"cpu": "cuda:0"}):
        assert str(chainrule.load(data, map_location=map_location)["w"].device) == "cuda:0"


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_map_location_function_sees_each_saved_location(cuda, fmt):
    seen = []

    def to_cpu_or_restore(tensor, location):
        seen.append((location, str(tensor.device)))
        return None if location == "cpu" else tensor * 2  # None: restored to its saved device

    loaded = chainrule.load(_checkpoint(FORMATS[fmt]), map_location=to_cpu_or_restore)
    assert sorted(seen) == [("cpu", "cpu"), ("cuda:0", "cpu"), ("cuda:0", "cpu")]  # given on the CPU, as torch
    assert _values(loaded)["on_gpu"] == [0.0, 2.0, 4.0] and str(loaded["on_cpu"].device) == "cpu"


class cuda_unavailable:  # noqa: N801 (read as a context, like pytest.raises)
    """chainrule.cuda reporting no GPU, as on a CPU-only machine."""

    def __enter__(self):
        self.patch = pytest.MonkeyPatch()
        self.patch.setattr(chainrule.cuda, "is_available", lambda: False)
        return self

    def __exit__(self, *exc):
        self.patch.undo()


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_gpu_checkpoint_on_a_machine_without_one_needs_map_location(cuda, fmt):
    data = _checkpoint(FORMATS[fmt])
    with cuda_unavailable():
        with pytest.raises(RuntimeError, match="Attempting to deserialize object on a CUDA device but "
                                               r"chainrule.cuda.is_available\(\) is False"):
            chainrule.load(data)
        assert _values(chainrule.load(data, map_location="cpu")) == EXPECTED_VALUES


def test_a_device_the_machine_lacks_is_named(cuda):
    data = _safetensors({"w": chainrule.ones(2, device="cuda")}).replace(b"cuda:0", b"cuda:7")  # same length
    with pytest.raises(RuntimeError, match="Attempting to deserialize object on CUDA device 7 but "
                                           r"chainrule.cuda.device_count\(\) is 1"):
        chainrule.load(data)
    assert str(chainrule.load(data, map_location={"cuda:7": "cuda:0"})["w"].device) == "cuda:0"


def test_a_garbled_device_in_the_stored_structure_is_refused(cuda):
    data = _safetensors({"w": chainrule.ones(2, device="cuda")})
    assert data.count(b"cuda:0") == 1
    with pytest.raises(RuntimeError, match="names an unknown device 'gpu:00'"):
        chainrule.load(data.replace(b"cuda:0", b"gpu:00"))


def test_cpu_entries_are_unchanged_so_older_readers_still_read_cpu_checkpoints():
    data = _safetensors({"w": chainrule.ones(2)})
    assert b"device" not in data


def test_the_loaded_values_are_the_saved_ones_bit_for_bit(cuda):
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    loaded = chainrule.load(_safetensors({"x": chainrule.tensor(x, device="cuda")}))
    np.testing.assert_array_equal(loaded["x"].cpu().numpy(), x)
