"""Checkpoints as attacker-controlled input, PyTorch zip files read without torch, and torch's
save/load idioms round-tripping (issue 14's checkpoint table, issue 10's serialization items)."""

import io
import json
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

import chainrule
from chainrule import serialization


def _safetensors(header: dict, data: bytes = b"") -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def _structure(structure) -> dict:
    return {"chainrule": json.dumps({"version": 1, "structure": structure})}


# ------------------------------------------------------------------ the seen defects, one row each
_F32_4 = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
CRAFTED = {
    "nested 100,000 deep": struct.pack("<Q", 200_006) + b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "overlapping offsets": _safetensors({"a": _F32_4, "b": _F32_4}, b"\0" * 16),
    "shape 2**64": _safetensors({"a": {"dtype": "F32", "shape": [2**64], "data_offsets": [0, 16]}}, b"\0" * 16),
    "shape wraps in int64": _safetensors(
        {"a": {"dtype": "U8", "shape": [2**32, 2**32], "data_offsets": [0, 0]}}),
    "negative shape": _safetensors({"a": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}, b"\0" * 16),
    "gap between tensors": _safetensors(
        {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
         "b": {"dtype": "F32", "shape": [1], "data_offsets": [12, 16]}}, b"\0" * 16),
    "trailing bytes": _safetensors({"a": _F32_4}, b"\0" * 20),
    "offsets past the end": _safetensors({"a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}},
                                         b"\0" * 16),
    "non-dict __metadata__": _safetensors({"__metadata__": [1, 2], "a": _F32_4}, b"\0" * 16),
    "non-string metadata value": _safetensors({"__metadata__": {"chainrule": 3}}),
    "structure of the wrong type": _safetensors({"__metadata__": _structure([1, 2])}),
    "unhashable key": _safetensors({"__metadata__": _structure({"dict": [[[1], {"value": 1}]]})}),
    "bool key": _safetensors({"__metadata__": _structure({"dict": [[True, {"value": 1}]]})}),
    "value of a JSON object": _safetensors({"__metadata__": _structure({"value": {"a": 1}})}),
    "tensor used twice": _safetensors({"a": _F32_4, "__metadata__": _structure(
        {"list": [{"tensor": "a"}, {"tensor": "a"}]})}, b"\0" * 16),
    "structure nested 100 deep": _safetensors({"__metadata__": _structure(
        json.loads('{"list": [' * 100 + '{"value": 1}' + "]}" * 100))}),
    "duplicate header keys": struct.pack("<Q", 24) + b'{"a": {}, "a": {}}      ',
    "unknown dtype": _safetensors({"a": {"dtype": "F6_E3M2", "shape": [1], "data_offsets": [0, 1]}}, b"\0"),
    "huge int in metadata": _safetensors({"__metadata__": _structure({"value": 1})}).replace(
        b'{\\"value\\": 1}', b'{\\"value\\": ' + b"9" * 5000 + b"}"),
    "legacy torch pickle": b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02M\xe9\x03.",
    "empty file": b"",
}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_crafted_files_raise_one_runtime_error_naming_the_file(tmp_path, name):
    path = tmp_path / "crafted.safetensors"
    path.write_bytes(CRAFTED[name])
    with pytest.raises(RuntimeError, match=r"chainrule\.load: '.*crafted\.safetensors'") as info:
        chainrule.load(path)
    assert "\n" not in str(info.value) and len(str(info.value)) < 600


def test_legacy_torch_files_are_named(tmp_path):
    path = tmp_path / "old.pt"
    path.write_bytes(CRAFTED["legacy torch pickle"])
    with pytest.raises(RuntimeError, match="legacy format"):
        chainrule.load(path)


def test_loaded_tensors_never_share_memory(tmp_path):
    path = tmp_path / "two.safetensors"
    chainrule.save({"a": chainrule.zeros(4), "b": chainrule.zeros(4)}, path)
    got = chainrule.load(path)
    got["a"]._data[:] = 1.0
    assert not np.shares_memory(got["a"]._data, got["b"]._data) and float(got["b"].sum()) == 0.0


# ------------------------------------------------------------------ PyTorch zip checkpoints
torch = pytest.importorskip("torch")


def _torch_bytes(obj) -> io.BytesIO:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return buffer


def test_torch_training_checkpoint_loads_without_torch():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2)
    model(torch.randn(5, 3)).sum().backward()
    optimizer.step()
    scheduler.step()
    ckpt = {"epoch": 3, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "half": torch.ones(2, dtype=torch.float16) / 3,
            "bf16": torch.tensor([1.5, -2.25], dtype=torch.bfloat16), "ints": torch.arange(5),
            "flags": torch.tensor([True, False]), "view": torch.arange(12.0).reshape(3, 4)[:, 1],
            "expanded": torch.ones(3)[:1].expand(4), "empty": torch.zeros(0, 3), "size": torch.Size([2, 3]),
            "dtype": torch.float64, "bytes": b"\x00\xff", "set": {1, 2}}
    got = chainrule.load(_torch_bytes(ckpt))
    assert got["epoch"] == 3 and got["size"] == (2, 3) and got["dtype"] is chainrule.float64
    assert got["bytes"] == b"\x00\xff" and got["set"] == {1, 2}
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(got["model"][key].numpy(), value.numpy())
    state = got["optimizer"]["state"]
    np.testing.assert_array_equal(state[0]["exp_avg"].numpy(), optimizer.state_dict()["state"][0]["exp_avg"].numpy())
    assert got["optimizer"]["param_groups"][0]["lr"] == optimizer.param_groups[0]["lr"]
    assert got["scheduler"]["last_epoch"] == 1
    for key in ("half", "ints", "flags", "view", "expanded", "empty"):
        assert got[key].shape == tuple(ckpt[key].shape)
        np.testing.assert_array_equal(got[key].numpy(), ckpt[key].numpy())
    assert got["bf16"].dtype == chainrule.bfloat16  # (widened to float32 when ml_dtypes is missing)
    np.testing.assert_array_equal(got["bf16"].float().numpy(), ckpt["bf16"].float().numpy())
    # the state dict drives a chainrule model of the same architecture to torch's outputs
    mirror = chainrule.nn.Sequential(chainrule.nn.Linear(3, 4), chainrule.nn.ReLU(), chainrule.nn.Linear(4, 2))
    mirror.load_state_dict(got["model"])
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(mirror(chainrule.from_numpy(x)).detach().numpy(),
                               model(torch.from_numpy(x)).detach().numpy(), rtol=1e-6)


def test_torch_parameters_and_map_location():
    got = chainrule.load(_torch_bytes({"p": torch.nn.Parameter(torch.ones(2))}), map_location="cpu")
    assert isinstance(got["p"], chainrule.nn.Parameter) and got["p"].requires_grad
    doubled = chainrule.load(_torch_bytes({"w": torch.ones(2)}), map_location=lambda t, loc: t * 2)
    np.testing.assert_array_equal(doubled["w"].numpy(), [2.0, 2.0])


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_malicious_torch_pickle_fails_without_side_effects(tmp_path):
    target = str(tmp_path / "pwned")
    buffer = _torch_bytes({"w": torch.ones(1), "x": _Evil(target)})
    with pytest.raises(pickle.UnpicklingError, match=r"(?s)Weights only load failed.*GLOBAL posix\.mkdir"):
        chainrule.load(buffer)
    assert not os.path.exists(target)


def test_a_pickled_torch_module_is_named_not_imported():
    import subprocess
    import sys

    buffer = _torch_bytes(torch.nn.Linear(2, 3))
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        chainrule.load(io.BytesIO(buffer.getvalue()))
    with pytest.raises(RuntimeError, match="pickles the PyTorch object torch.nn.modules.linear.Linear.*state_dict"):
        chainrule.load(io.BytesIO(buffer.getvalue()), weights_only=False)
    script = ("import io, sys, chainrule\n"
              "data = sys.stdin.buffer.read()\n"
              "try:\n    chainrule.load(io.BytesIO(data), weights_only=False)\nexcept RuntimeError:\n    pass\n"
              "print('torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], input=buffer.getvalue(), capture_output=True,
                            cwd=os.path.dirname(__file__), timeout=120)
    assert result.stdout.strip() == b"False", result.stderr


def _zip_with_pickle(data: bytes) -> io.BytesIO:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("archive/data.pkl", data)
        archive.writestr("archive/byteorder", "little")
    out.seek(0)
    return out


@pytest.mark.parametrize("data", [
    b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00echo\x85R.",           # GLOBAL + REDUCE
    b"\x80\x04\x8c\x02os\x8c\x06system\x93X\x04\x00\x00\x00echo\x85R.",  # STACK_GLOBAL
    b"(X\x04\x00\x00\x00echoios\nsystem\n.",                       # INST
    b"\x80\x02cbuiltins\neval\n.",                                 # a bare dangerous global
    b"\x80\x02ccollections\nOrderedDict\n)R}X\x01\x00\x00\x00a\x8c\x01bsb\x86.",  # BUILD on a tuple
    b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x04\x00\x00\x00zlib\x86R.",  # a codec other than latin1
], ids=["global-reduce", "stack-global", "inst", "eval", "build", "codec"])
def test_hand_made_malicious_pickles_are_refused(data):
    with pytest.raises((pickle.UnpicklingError, RuntimeError)) as info:
        chainrule.load(_zip_with_pickle(data))
    assert "Weights only load failed" in str(info.value) or "not a valid PyTorch checkpoint" in str(info.value)


def test_torch_tensor_reaching_past_its_storage_is_refused():
    buffer = _torch_bytes({"w": torch.ones(4)})
    data = bytearray(buffer.getvalue())
    archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    pkl = archive.read("archive/data.pkl").replace(b"K\x04\x85", b"K\x09\x85")  # size (4,) -> (9,)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as rewritten:
        for info in archive.infolist():
            rewritten.writestr(info.filename, pkl if info.filename.endswith("data.pkl") else archive.read(info))
    out.seek(0)
    with pytest.raises(RuntimeError, match="reaches past its storage"):
        chainrule.load(out)


# ------------------------------------------------------------------ torch's script idioms
def test_training_checkpoint_idiom_round_trips(tmp_path):
    model = chainrule.nn.Sequential(chainrule.nn.Linear(3, 4), chainrule.nn.Tanh(), chainrule.nn.Linear(4, 2))
    optimizer = chainrule.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = chainrule.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    for _ in range(3):
        optimizer.zero_grad()
        model(chainrule.randn(5, 3)).pow(2).sum().backward()
        optimizer.step()
        scheduler.step()
    path = tmp_path / "ckpt.pt"
    chainrule.save({"epoch": 3, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict()}, path)
    buffer = io.BytesIO()
    chainrule.save({"epoch": 3, "model": model.state_dict()}, buffer)
    buffer.seek(0)
    for ckpt in (chainrule.load(path), chainrule.load(path, map_location="cpu", weights_only=True),
                 chainrule.load(open(path, "rb")), chainrule.load(buffer)):
        assert ckpt["epoch"] == 3
        twin = chainrule.nn.Sequential(chainrule.nn.Linear(3, 4), chainrule.nn.Tanh(), chainrule.nn.Linear(4, 2))
        twin.load_state_dict(ckpt["model"])
        for a, b in zip(twin.parameters(), model.parameters()):
            np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    ckpt = chainrule.load(path)
    twin_optimizer = chainrule.optim.Adam(twin.parameters(), lr=1e-2)
    twin_scheduler = chainrule.optim.lr_scheduler.StepLR(twin_optimizer, step_size=2, gamma=0.5)
    twin_optimizer.load_state_dict(ckpt["optimizer"])
    twin_scheduler.load_state_dict(ckpt["scheduler"])
    assert twin_scheduler.get_last_lr() == scheduler.get_last_lr()
    x = chainrule.randn(5, 3)
    for m, o, s in ((model, optimizer, scheduler), (twin, twin_optimizer, twin_scheduler)):
        o.zero_grad()
        m(x).pow(2).sum().backward()
        o.step()
        s.step()
    for a, b in zip(twin.parameters(), model.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_safe_globals_allowlist_a_users_class(tmp_path):
    chainrule.save({"point": _Point(1, 2)}, tmp_path / "p.pt")
    with pytest.raises(pickle.UnpicklingError, match="_Point"):
        chainrule.load(tmp_path / "p.pt")
    with serialization.safe_globals([_Point]):
        assert chainrule.load(tmp_path / "p.pt")["point"] == _Point(1, 2)
    serialization.add_safe_globals([_Point])
    try:
        assert serialization.get_safe_globals() == [_Point]
        assert chainrule.load(tmp_path / "p.pt")["point"] == _Point(1, 2)
    finally:
        serialization.clear_safe_globals()
    assert chainrule.load(tmp_path / "p.pt", weights_only=False)["point"] == _Point(1, 2)


class _Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return isinstance(other, _Point) and (self.x, self.y) == (other.x, other.y)
