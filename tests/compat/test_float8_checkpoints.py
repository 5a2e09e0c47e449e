"""float8 tensors through checkpoints, both ways with torch 2.13: torch's zip format (torch writes
them as untyped byte storages with the dtype, _rebuild_tensor_v3) and safetensors' F8_E4M3,
F8_E5M2 and F8_E8M0 codes, views sharing a storage included. FP8 checkpoints of Hugging Face
models are stored so."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")
pytest.importorskip("ml_dtypes")

_VALUES = [[1.0, -2.5, 500.0], [0.01, 7.0, -0.0]]


def _state(lib):
    w = lib.tensor(_VALUES).to(lib.float8_e4m3fn)
    return {"w": w, "w_t": w.t(), "w_row": w[1], "v": lib.tensor([1.0, 3.0]).to(lib.float8_e5m2),
            "scale": lib.tensor([0.5, 4.0]).to(lib.float8_e8m0fnu), "bias": lib.ones(2)}


def _assert_same(ours: dict, theirs: dict):
    assert sorted(ours) == sorted(theirs)
    for key, t in theirs.items():
        c = ours[key]
        assert c.dtype.name == str(t.dtype).split(".")[1] and tuple(c.shape) == tuple(t.shape), key
        expected = t.contiguous().view(torch.uint8).numpy() if t.dtype.itemsize == 1 else t.numpy()
        got = c.contiguous().view(chainrule.uint8).numpy() if c.dtype.itemsize == 1 else c.numpy()
        np.testing.assert_array_equal(got, expected, err_msg=key)


def test_torch_zip_checkpoints_of_float8_tensors_load_both_ways(tmp_path):
    torch.save(_state(torch), tmp_path / "torch.pt")
    _assert_same(chainrule.load(tmp_path / "torch.pt"), _state(torch))
    chainrule.save(_state(chainrule), tmp_path / "chainrule.pt")
    loaded = torch.load(tmp_path / "chainrule.pt")
    _assert_same(_state(chainrule), loaded)
    # the transposed and row views still share the stored matrix, in torch's reading too
    assert loaded["w_t"].untyped_storage().data_ptr() == loaded["w"].untyped_storage().data_ptr()


def test_safetensors_files_of_float8_tensors_load_both_ways(tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    # safetensors refuses shared and non-contiguous storage
    theirs = {k: v.clone(memory_format=torch.contiguous_format) for k, v in _state(torch).items()}
    safetensors_torch.save_file(theirs, tmp_path / "torch.safetensors")
    _assert_same(chainrule.load(tmp_path / "torch.safetensors"), theirs)
    chainrule.save(_state(chainrule), tmp_path / "chainrule.safetensors")
    _assert_same(_state(chainrule), safetensors_torch.load_file(tmp_path / "chainrule.safetensors"))
