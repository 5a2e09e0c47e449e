"""torch._C.PyTorchFileReader / PyTorchFileWriter (record access to torch's zip container) and
torch.serialization's public constants and helpers, against torch 2.13."""

import io
import types
import zipfile

import numpy as np
import pytest
import torch
import torch.serialization

import chainrule
import chainrule.serialization

LIBS = [pytest.param(chainrule, id="chainrule"), pytest.param(torch, id="torch")]


def _error(call, *args) -> tuple[type, str]:
    try:
        call(*args)
    except Exception as error:  # noqa: BLE001 - the type and text are what is compared
        return type(error), str(error)
    raise AssertionError("no error raised")


@pytest.fixture
def torch_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"w": torch.arange(6.0).reshape(2, 3), "step": 3}, path)
    return path


def test_the_reader_gives_torchs_records_offsets_and_ids(torch_checkpoint):
    ours, theirs = chainrule.PyTorchFileReader(str(torch_checkpoint)), torch.PyTorchFileReader(str(torch_checkpoint))
    assert chainrule._C.PyTorchFileReader is chainrule.PyTorchFileReader
    assert ours.get_all_records() == theirs.get_all_records()
    for name in theirs.get_all_records():
        assert ours.get_record(name) == theirs.get_record(name)
        assert ours.get_record_offset(name) == theirs.get_record_offset(name)
        assert ours.get_record_size(name) == theirs.get_record_size(name)
        assert ours.get_record_header_offset(name) == theirs.get_record_header_offset(name)
    assert ours.has_record("data.pkl") and not ours.has_record("nope")
    assert ours.serialization_id() == theirs.serialization_id()
    with open(torch_checkpoint, "rb") as stream:
        assert chainrule.PyTorchFileReader(stream).get_all_records() == theirs.get_all_records()
    storage = ours.get_storage_from_record("data/0", 6, chainrule.float32)
    np.testing.assert_array_equal(storage.numpy(), np.arange(6.0, dtype=np.float32))


def test_the_reader_reads_chainrules_checkpoints_as_torchs_does(tmp_path):
    path = tmp_path / "ours.pt"
    chainrule.save({"w": chainrule.ones(4)}, path)
    ours, theirs = chainrule.PyTorchFileReader(str(path)), torch.PyTorchFileReader(str(path))
    assert ours.get_all_records() == theirs.get_all_records()
    assert ours.get_record("data/0") == theirs.get_record("data/0")


def test_reader_errors_are_torchs(tmp_path):
    (tmp_path / "text.pt").write_bytes(b"hello")
    for path in (tmp_path / "missing.pt", tmp_path / "text.pt"):
        assert _error(chainrule.PyTorchFileReader, str(path)) == _error(torch.PyTorchFileReader, str(path))
    chainrule.save({"w": chainrule.ones(1)}, tmp_path / "ok.pt")
    readers = [lib.PyTorchFileReader(str(tmp_path / "ok.pt")) for lib in (chainrule, torch)]
    assert _error(readers[0].get_record, "absent") == _error(readers[1].get_record, "absent")


@pytest.mark.parametrize("lib", LIBS)
def test_the_writer_makes_an_archive_torchs_reader_reads(lib, tmp_path):
    path = tmp_path / "records.bin"
    writer = lib._C.PyTorchFileWriter(str(path))
    writer.write_record("blob", b"hello world", 5)
    writer.write_record("notes.txt", "text", 4)
    assert writer.archive_name() == "records" and writer.serialization_id() == ""
    assert writer.get_all_written_records() == {"blob", "notes.txt"}
    writer.set_min_version(5)
    writer.write_end_of_file()
    assert len(writer.serialization_id()) == 40 and writer.serialization_id().isdigit()
    reader = torch.PyTorchFileReader(str(path))
    assert reader.get_all_records() == ["blob", "notes.txt", "version", "byteorder", ".data/serialization_id"]
    assert (reader.get_record("blob"), reader.get_record("notes.txt"), reader.get_record("version")) == \
        (b"hello", b"text", b"5\n")
    assert reader.serialization_id() == writer.serialization_id()
    assert zipfile.ZipFile(path).namelist()[0] == "records/blob"
    assert reader.get_record_offset("blob") % 64 == 0


@pytest.mark.parametrize("lib", LIBS)
def test_the_writer_to_a_buffer_and_its_errors(lib, tmp_path):
    buffer = io.BytesIO()
    writer = lib._C.PyTorchFileWriter(buffer)
    writer.write_record("a", b"xy", 2)
    assert writer.archive_name() == "archive"
    kind, text = _error(writer.write_record, "a", b"xy", 2)
    assert kind is RuntimeError and text.endswith("Tried to serialize file twice: a")
    writer.write_end_of_file()
    assert torch.PyTorchFileReader(io.BytesIO(buffer.getvalue())).get_record("a") == b"xy"
    assert _error(lib._C.PyTorchFileWriter, str(tmp_path / "absent" / "f.pt")) == \
        (RuntimeError, f"Parent directory {tmp_path / 'absent'} does not exist.")


def test_serialization_constants_are_torchs():
    for name in ("DEFAULT_PROTOCOL", "MAGIC_NUMBER", "PROTOCOL_VERSION", "STORAGE_KEY_SEPARATOR", "LONG_SIZE",
                 "INT_SIZE", "SHORT_SIZE", "MAP_PRIVATE", "MAP_SHARED"):
        assert getattr(chainrule.serialization, name) == getattr(torch.serialization, name), name
    assert [(m.name, m.value) for m in chainrule.serialization.LoadEndianness] == \
        [(m.name, m.value) for m in torch.serialization.LoadEndianness]
    assert issubclass(chainrule.serialization.SourceChangeWarning, Warning)


def _without_byteorder(source, target) -> None:
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as copy:
        for info in original.infolist():
            if not info.filename.endswith("/byteorder"):
                copy.writestr(info, original.read(info))


@pytest.mark.parametrize("lib", LIBS)
def test_the_default_load_endianness_reads_a_checkpoint_without_byteorder(lib, tmp_path):
    torch.save(torch.tensor([1.0, 2.0]), tmp_path / "full.pt")
    _without_byteorder(tmp_path / "full.pt", tmp_path / "bare.pt")
    serialization = lib.serialization
    assert serialization.get_default_load_endianness() is None
    with pytest.raises(TypeError, match="^Invalid argument type in function set_default_load_endianness$"):
        serialization.set_default_load_endianness("big")
    try:
        serialization.set_default_load_endianness(serialization.LoadEndianness.BIG)
        assert serialization.get_default_load_endianness() is serialization.LoadEndianness.BIG
        swapped = lib.load(tmp_path / "bare.pt")
    finally:
        serialization.set_default_load_endianness(None)
    expected = np.array([1.0, 2.0], dtype=np.float32).byteswap()
    np.testing.assert_array_equal(swapped.numpy(), expected)
    assert lib.load(tmp_path / "bare.pt").tolist() == [1.0, 2.0]


@pytest.mark.parametrize("lib", LIBS)
def test_crc_and_mmap_options(lib):
    serialization = lib.serialization
    assert serialization.get_crc32_options() is True
    assert serialization.get_default_mmap_options() == serialization.MAP_PRIVATE
    with pytest.raises(ValueError, match="^Invalid argument in function set_default_mmap_options, expected "
                                         "mmap.MAP_PRIVATE or mmap.MAP_SHARED, but got 5$"):
        serialization.set_default_mmap_options(5)


def test_location_tags_and_restoring():
    for lib in (chainrule, torch):
        tensor = lib.ones(2)
        assert lib.serialization.location_tag(tensor) == "cpu"
        assert lib.serialization.default_restore_location(tensor, "cpu").tolist() == [1.0, 1.0]
        kind, text = _error(lib.serialization.default_restore_location, tensor, "tpu")
        assert kind is RuntimeError and text.startswith("don't know how to restore data location of ")
        assert text.endswith("(tagged with tpu)")
    assert chainrule.serialization.normalize_storage_type(chainrule.FloatStorage) is chainrule.FloatStorage


def test_a_registered_deserializer_sees_each_restored_tensor(monkeypatch, tmp_path):
    monkeypatch.setattr(chainrule.serialization, "_package_registry", [])
    seen = []
    chainrule.serialization.register_package(5, lambda storage: None,
                                             lambda storage, location: seen.append(location))
    chainrule.serialization.register_package(1, lambda storage: "elsewhere", lambda storage, location: None)
    torch.save({"a": torch.ones(1), "b": torch.zeros(2)}, tmp_path / "two.pt")
    loaded = chainrule.load(tmp_path / "two.pt")
    assert seen == ["cpu", "cpu"] and loaded["b"].tolist() == [0.0, 0.0]
    assert chainrule.serialization.location_tag(chainrule.ones(1)) == "elsewhere"  # the lower priority number wins


def test_module_version_checks_match_torchs():
    module = types.ModuleType("fake")
    for version, required in (("1.10.2", (1, 9)), ("1.2", (1, 10)), ("2.0.0", (2, 0, 0))):
        module.__version__ = version
        assert chainrule.serialization.check_module_version_greater_or_equal(module, required) == \
            torch.serialization.check_module_version_greater_or_equal(module, required)
    module.__version__ = "one.two"
    assert _error(chainrule.serialization.check_module_version_greater_or_equal, module, (1, 0)) == \
        _error(torch.serialization.check_module_version_greater_or_equal, module, (1, 0))


def test_unsafe_globals_are_listed_as_torch_lists_them(tmp_path):
    torch.save({"w": torch.ones(1), "layer": torch.nn.Linear(1, 1)}, tmp_path / "module.pt")
    torch.save({"w": torch.ones(1)}, tmp_path / "weights.pt")
    for name in ("module.pt", "weights.pt"):
        assert chainrule.serialization.get_unsafe_globals_in_checkpoint(tmp_path / name) == \
            torch.serialization.get_unsafe_globals_in_checkpoint(tmp_path / name)


@pytest.mark.skipif(torch.cuda.is_available() or chainrule.cuda.is_available(), reason="the message without a GPU")
def test_validate_cuda_device_without_a_gpu():
    assert _error(chainrule.serialization.validate_cuda_device, "cuda:0") == \
        _error(torch.serialization.validate_cuda_device, "cuda:0")


def test_storage_records_as_torch_load_asks_for_them(torch_checkpoint):
    ours = chainrule.PyTorchFileReader(str(torch_checkpoint))
    raw = ours.get_storage_from_record("data/0", 24, chainrule.UntypedStorage)  # torch.load passes bytes and the class
    assert raw.dtype == chainrule.uint8 and bytes(raw.numpy()) == torch.PyTorchFileReader(
        str(torch_checkpoint)).get_record("data/0")
    with pytest.raises(RuntimeError, match="record data/0 has 24 bytes, fewer than the 7 elements of 4 bytes"):
        ours.get_storage_from_record("data/0", 7, chainrule.float32)
