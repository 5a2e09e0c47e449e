"""Session 61, lane fuzzCF: the serialization mismatches the serialization fuzzer (tests/fuzz/test_serialization.py)
found between torch 2.13 and chainrule, each as torch behaves."""

from __future__ import annotations

import io
import pickle
import re
import warnings
import zipfile

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _saved(lib, obj, **options) -> bytes:
    buffer = io.BytesIO()
    lib.save(obj, buffer, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("protocol", [4, 5])
@pytest.mark.parametrize("legacy", [False, True])
def test_weights_only_refuses_the_opcodes_torchs_unpickler_lacks(protocol, legacy):
    """A protocol 4/5 pickle (FRAME, MEMOIZE) is refused by torch's weights-only unpickler: chainrule's refused
    it only for a global and loaded the rest; weights_only=False loads it on both."""
    obj = {"w": torch.arange(3.0)}
    data = _saved(torch, obj, pickle_protocol=protocol, _use_new_zipfile_serialization=not legacy)
    for lib in (torch, chainrule):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(pickle.UnpicklingError, match=r"(?s)Weights only load failed.*Unsupported operand 149"):
                lib.load(io.BytesIO(data), weights_only=True)
        assert any(f"Detected pickle protocol {protocol} in the checkpoint" in str(w.message) for w in caught)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = lib.load(io.BytesIO(data), weights_only=False)
        assert loaded["w"].tolist() == [0.0, 1.0, 2.0]


def test_weights_only_still_loads_a_whole_module_the_user_allowed():
    """chainrule's pickle of a module pops its state setter's result (POP, which torch's unpickler lacks):
    allowed for such files, so safe_globals still loads them."""
    model = chainrule.nn.Sequential(chainrule.nn.Linear(3, 2))
    data = _saved(chainrule, model)
    with chainrule.serialization.safe_globals([chainrule.nn.Sequential, chainrule.nn.Linear]):
        loaded = chainrule.load(io.BytesIO(data))
    assert loaded[0].weight.tolist() == model[0].weight.tolist()


def test_mmap_refuses_a_file_object_and_the_legacy_format_as_torch(tmp_path):
    """torch maps only a zip checkpoint given by path: a file object is a ValueError, a legacy (or any non-zip)
    file a RuntimeError; chainrule ignored mmap and loaded both."""
    zipped, legacy = _saved(torch, [torch.ones(2)]), _saved(torch, [torch.ones(2)], _use_new_zipfile_serialization=False)
    path = tmp_path / "legacy.pt"
    path.write_bytes(legacy)
    for lib in (torch, chainrule):
        with pytest.raises(ValueError, match="^f must be a file path in order to use the mmap argument$"):
            lib.load(io.BytesIO(zipped), mmap=True)
        with pytest.raises(RuntimeError, match=r"^mmap can only be used with files saved with `torch.save\("
                           r"_use_new_zipfile_serialization=True\), please"):
            lib.load(io.BytesIO(legacy), mmap=True)
        with pytest.raises(RuntimeError, match=r"^mmap can only be used with files saved with `torch.save\("
                           + re.escape(str(path)) + ", _use_new"):
            lib.load(str(path), mmap=True)
        assert lib.load(str(path), mmap=False)[0].tolist() == [1.0, 1.0]


def _views_of_another_dtype(lib):
    z = lib.tensor([[1 + 2j, 3 - 4j, 5j], [-1j, 2 + 0j, 7 + 7j]], dtype=lib.complex64)
    return z, lib.view_as_real(z[1]), z.view(lib.float64)


@pytest.mark.parametrize("legacy", [False, True])
def test_one_storage_saved_as_two_dtypes_is_refused_as_torch(legacy):
    """torch.save refuses views of one storage as different dtypes (a complex tensor and its view_as_real);
    chainrule saved the real view as a copy, a storage of its own."""
    for lib in (torch, chainrule):
        z, real, _ = _views_of_another_dtype(lib)
        with pytest.raises(RuntimeError, match="^Cannot save multiple tensors or storages that view the same data as "
                           "different types$"):
            lib.save([z, real], io.BytesIO(), _use_new_zipfile_serialization=not legacy)


def test_a_view_of_another_dtype_saves_its_whole_storage_as_torch():
    """view_as_real / view(dtype) alone: torch writes the complex storage's bytes as the view's dtype, the view
    at its offset; chainrule wrote a copy of the view's elements (another storage size and offset)."""
    for saver in (torch, chainrule):
        _, real, wide = _views_of_another_dtype(saver)
        for loader in (torch, chainrule):
            got_real, got_wide = (loader.load(io.BytesIO(_saved(saver, [t])))[0] for t in (real, wide))
            assert (got_real.storage_offset(), got_real.stride(), got_real.untyped_storage().nbytes()) == (6, (2, 1), 48)
            assert got_real.tolist() == [[0.0, -1.0], [2.0, 0.0], [7.0, 7.0]]
            assert (got_wide.dtype, got_wide.shape, got_wide.untyped_storage().nbytes()) == (loader.float64, (2, 3), 48)


def _rezipped(data: bytes, change) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            changed = change(info.filename, source.read(info))
            if changed is not None:
                target.writestr(*changed)
    return out.getvalue()


@pytest.mark.parametrize("change", [
    lambda name, content: ("archiv}/" + name.split("/", 1)[1], content) if name.endswith("serialization_id")
    else (name, content),
    lambda name, content: None if name == "archive/version" else (name, content),
    lambda name, content: (name, b"99\n") if name == "archive/version" else (name, content),
    lambda name, content: (name, b"x\n") if name == "archive/version" else (name, content),
], ids=["member-outside-the-folder", "no-version", "version-99", "version-unparsable"])
def test_the_archive_checks_of_torchs_reader(change):
    """torch's reader refuses a member outside the archive's folder and a missing, unparsable or unsupported
    version record; chainrule loaded such files."""
    data = _rezipped(_saved(torch, [torch.ones(2)]), change)
    for lib in (torch, chainrule):
        with pytest.raises(RuntimeError):
            lib.load(io.BytesIO(data))
    moved = _rezipped(_saved(torch, [torch.ones(2)]), lambda name, content: (
        "archive/.data/version" if name == "archive/version" else name, content))
    assert chainrule.load(io.BytesIO(moved))[0].tolist() == torch.load(io.BytesIO(moved))[0].tolist() == [1.0, 1.0]


def test_a_legacy_file_cut_inside_its_pickle_raises_eoferror_as_torch():
    """torch's unpickler meets the end of a truncated legacy file and raises EOFError (which callers catch by
    class); chainrule raised a RuntimeError only. Now both: EOFError, and RuntimeError naming the file."""
    data = _saved(torch, {"w": torch.ones(3)}, _use_new_zipfile_serialization=False)
    cut = data[:len(data) // 6]
    with pytest.raises(EOFError):
        torch.load(io.BytesIO(cut))
    with pytest.raises(EOFError) as caught:
        chainrule.load(io.BytesIO(cut))
    assert isinstance(caught.value, RuntimeError) and "truncated" in str(caught.value)


def test_a_member_recorded_past_the_end_of_the_file_is_refused_when_opened_as_torch():
    """A flipped byte of a central-directory entry's local-header offset (a member no load reads): torch's reader
    refuses the archive when it opens it (before the pickle, and before mmap's file-object check); chainrule only
    checked the members it read."""
    data = bytearray(_saved(torch, [torch.ones(2)], pickle_protocol=4))
    entry = data.rindex(b"archive/.storage_alignment") - 46  # its central-directory entry (the name's last copy)
    assert data[entry:entry + 4] == b"PK\x01\x02"
    data[entry + 43] ^= 0xEC  # the offset's second byte
    for lib in (torch, chainrule):
        for options in ({}, {"mmap": True}):
            with pytest.raises(RuntimeError, match="invalid header or archive is corrupted"):
                lib.load(io.BytesIO(bytes(data)), **options)


def test_a_stored_member_with_two_sizes_is_refused_when_opened_as_torch():
    """A flipped byte of a central-directory entry's uncompressed size (a member no load reads): torch's reader
    refuses a stored member whose two sizes differ; chainrule checked only the members it read."""
    data = bytearray(_saved(torch, [torch.ones(2)]))
    entry = data.rindex(b"archive/.format_version") - 46
    assert data[entry:entry + 4] == b"PK\x01\x02"
    data[entry + 24] ^= 0x4D  # the uncompressed size's first byte
    for lib in (torch, chainrule):
        with pytest.raises(RuntimeError, match="invalid header or archive is corrupted"):
            lib.load(io.BytesIO(bytes(data)))
