"""Hand-made hostile PyTorch zip checkpoints, one named defect per row: wrong and huge storage sizes,
tensors reaching past their storage, missing or oddly named records, duplicate and renamed zip
members, compressed members, corrupted bytes, truncations, and pickles naming globals outside the
allowlist. Each load raises the documented error — RuntimeError "chainrule.load: ... is not a valid
PyTorch checkpoint: <the problem>" on one line, or pickle.UnpicklingError "Weights only load
failed ..." naming the refused global, as torch's does — before anything is called, and costs no
allocation beyond a small multiple of the file."""

import io
import os
import pickle
import re
import struct
import subprocess
import sys
import tracemalloc
import warnings
import zipfile
import zlib
from collections import OrderedDict

import numpy as np
import pytest

import chainrule
from chainrule import _torch_zip


class _Reduce:
    """Pickles as ``func(*args)``: a REDUCE of whatever global ``func`` names."""

    def __init__(self, func, args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def _record(key="0", kind=_torch_zip.FloatStorage, array=None, numel=None):
    record = _torch_zip._StorageRecord(kind, key, "cpu", np.arange(4, dtype=kind.dtype) if array is None else array)
    if numel is not None:
        record.numel = numel
    return record


def _tensor(record, offset=0, size=(4,), stride=(1,), requires_grad=False, hooks=None):
    hooks = OrderedDict() if hooks is None else hooks
    return _Reduce(_torch_zip._WRITE_TENSOR_V2, (record, offset, size, stride, requires_grad, hooks))


def _checkpoint(obj, records=(), members=None, byteorder=b"little") -> bytes:
    """A torch-layout archive of ``obj`` pickled by chainrule's writer, with ``records``' bytes, or
    exactly the (name, bytes) ``members`` given (then data.pkl must be among them)."""
    pickled = io.BytesIO()
    _torch_zip._Pickler(pickled, 2).dump(obj)
    if members is None:
        members = [("archive/data.pkl", pickled.getvalue()), ("archive/byteorder", byteorder)]
        members += [(f"archive/data/{r.key}", r.array.tobytes()) for r in records]
        members.append(("archive/version", b"3\n"))
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w") as archive:
        warnings.simplefilter("ignore", UserWarning)  # zipfile's "Duplicate name": that row wants one
        for name, data in members:
            archive.writestr(name, data(pickled.getvalue()) if callable(data) else data)
    return out.getvalue()


def _valid() -> bytes:
    buffer = io.BytesIO()
    chainrule.save({"w": chainrule.arange(6.0).reshape(2, 3), "b": chainrule.ones(3, dtype=chainrule.int64),
                    "epoch": 3}, buffer)
    return buffer.getvalue()


def _rename_local(data: bytes, old: bytes, new: bytes) -> bytes:
    """The archive with one local header's name changed (same length), its central entry kept."""
    at = data.index(old)  # local headers come before the central directory
    return data[:at] + new + data[at + len(old):]


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


def _data_offset(data: bytes, name: str) -> int:
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    return info.header_offset + 30 + name_length + extra_length


def _compressed() -> bytes:
    source = zipfile.ZipFile(io.BytesIO(_valid()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            archive.writestr(info.filename, source.read(info))
    return out.getvalue()


def _big_endian() -> bytes:
    record = _record(array=np.arange(4, dtype=">f4"))
    return _checkpoint({"w": _tensor(record)}, [record], byteorder=b"big")


def _local_header_past_the_end() -> bytes:
    data = bytearray(_valid())
    entry = bytes(data).index(b"archive/data/0", bytes(data).index(b"PK\x01\x02")) - 46  # its central entry
    data[entry + 42:entry + 46] = struct.pack("<I", len(data) + 1000)  # the local header's offset
    return bytes(data)


LARGE = 2**62
HOSTILE = {
    # storages
    "storage shorter than its numel": (lambda: _checkpoint({"w": _tensor(r := _record(numel=5))}, [r]),
                                       r"storage '0' should hold 5 elements of torch.FloatStorage but has 16 bytes"),
    "storage claiming 2**62 elements": (lambda: _checkpoint({"w": _tensor(r := _record(numel=LARGE))}, [r]),
                                        rf"should hold {LARGE} elements"),
    "storage record missing": (lambda: _checkpoint({"w": _tensor(_record(key="7"))}, []),
                               r"it has no member 'archive/data/7'"),
    "storage key with a path": (lambda: _checkpoint({"w": _tensor(_record(key="../0"))}, []),
                                r"a persistent id is not a storage"),
    "one storage as two types": (
        lambda: _checkpoint({"a": _tensor(r := _record()),
                             "b": _tensor(_record(kind=_torch_zip.IntStorage), size=(1,))}, [r]),
        r"storage '0' is used with two element types"),
    # tensors over their storage
    "size past the storage": (lambda: _checkpoint({"w": _tensor(r := _record(), size=(5,))}, [r]),
                              r"reaches past its storage of 4 elements"),
    "offset past the storage": (lambda: _checkpoint({"w": _tensor(r := _record(), offset=4, size=(1,))}, [r]),
                                r"reaches past its storage"),
    "stride past the storage": (lambda: _checkpoint({"w": _tensor(r := _record(), size=(2, 2), stride=(3, 1))}, [r]),
                                r"reaches past its storage"),
    "2**62 rows of stride 1": (lambda: _checkpoint({"w": _tensor(r := _record(), size=(LARGE,))}, [r]),
                               r"reaches past its storage"),
    "negative stride": (lambda: _checkpoint({"w": _tensor(r := _record(), size=(2,), stride=(-1,))}, [r]),
                        r"bad size"),
    "negative offset": (lambda: _checkpoint({"w": _tensor(r := _record(), offset=-1, size=(1,))}, [r]),
                        r"bad size"),
    "size of floats": (lambda: _checkpoint({"w": _tensor(r := _record(), size=(2.0,))}, [r]), r"bad size"),
    "size and stride of different ranks": (lambda: _checkpoint({"w": _tensor(r := _record(), stride=(1, 1))}, [r]),
                                           r"bad size"),
    "65 dimensions": (lambda: _checkpoint({"w": _tensor(r := _record(), size=(1,) * 65, stride=(1,) * 65)}, [r]),
                      r"bad size"),
    "backward hooks": (lambda: _checkpoint({"w": _tensor(r := _record(), hooks={"hook": 1})}, [r]),
                       r"backward hooks or metadata"),
    "an int tensor requiring grad": (
        lambda: _checkpoint({"w": _tensor(r := _record(kind=_torch_zip.LongStorage), requires_grad=True)}, [r]),
        r"a tensor of dtype int64 requires grad"),
    # allowlisted callables given hostile arguments
    "torch.Size of strings": (lambda: _checkpoint(_Reduce(_torch_zip._WRITE_SIZE, (("a",),))),
                              r"torch.Size holds something other than ints"),
    "_codecs.encode with rot13": (lambda: _checkpoint(_Reduce(_torch_zip._TorchGlobal("_codecs", "encode", None),
                                                              ("x", "rot13"))),
                                  r"_codecs.encode is only allowed with a str and 'latin1'"),
    "a parameter of a string": (lambda: _checkpoint(_Reduce(_torch_zip._WRITE_PARAMETER, ("weights", True))),
                                r"a parameter is not a tensor"),
    # the zip layer
    "two members of one name": (lambda: _checkpoint(None, members=[
        ("archive/data.pkl", lambda p: p), ("archive/data.pkl", pickle.dumps({"evil": 1}, 2))]),
        r"it has two members named 'archive/data.pkl'"),
    "a local header naming another member": (
        lambda: _rename_local(_valid(), b"archive/data/0", b"archive/data/1"),
        r"member 'archive/data/0' has another name in its local header \(b'archive/data/1'\)"),
    "no data.pkl": (lambda: _checkpoint(None, members=[("archive/version", b"3\n")]),
                    r"without exactly one <name>/data.pkl"),
    "two data.pkl": (lambda: _checkpoint(None, members=[("a/data.pkl", lambda p: p), ("b/data.pkl", lambda p: p)]),
                     r"without exactly one <name>/data.pkl"),
    "a compressed member": (_compressed, r"is compressed; torch.save stores members uncompressed"),
    "a byteorder of 'middle'": (lambda: _checkpoint({"n": 1}, byteorder=b"middle"), r"its byteorder is b'middle'"),
    "a local header past the end": (_local_header_past_the_end, r"invalid header or archive is corrupted: member "
                                    r"'archive/data/0' lies past the end of the file"),
    "a flipped bit in a tensor's bytes": (lambda: _flip(_valid(), _data_offset(_valid(), "archive/data/0") + 5),
                                          r"member 'archive/data/0' fails its CRC check \(corrupted\)"),
    "a flipped bit in the pickle": (lambda: _flip(_valid(), _data_offset(_valid(), "archive/data.pkl") + 20),
                                    r"member 'archive/data.pkl' fails its CRC check"),
    "the central directory cut off": (lambda: _valid()[:-30], r"BadZipFile|not a zip file|truncated"),
}


def _load(data: bytes):
    return chainrule.load(io.BytesIO(data))


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_checkpoints_raise_one_line_naming_the_problem(name):
    build, problem = HOSTILE[name]
    data = build()
    tracemalloc.start()
    try:
        with pytest.raises(RuntimeError, match=r"^chainrule\.load: '<file object>' is not a valid PyTorch checkpoint: "
                                               r"|^chainrule\.load: '<bytes>'") as caught:
            _load(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert re.search(problem, message), message
    assert "\n" not in message and len(message) < 1000
    assert peak <= 8 * len(data) + 512 * 1024, peak


REFUSED = {
    "os.system": _Reduce(os.system, ("echo pwned",)),
    "builtins.eval": _Reduce(eval, ("1",)),
    "builtins.getattr": _Reduce(getattr, (1, "real")),
    "subprocess.Popen": _Reduce(subprocess.Popen, (["true"],)),
    "numpy array (numpy's _reconstruct)": np.arange(3),
    "torch.load itself": _Reduce(_torch_zip._TorchGlobal("torch", "load", None), ("x",)),
    "a storage type called": _Reduce(_torch_zip._TorchGlobal("torch", "FloatStorage", None), (4,)),
}
# protocol 2 (torch's) writes Python 2 module names (__builtin__, commands); the refusal names a global as
# Python 3 does where torch's unpickler maps it (__builtin__ -> builtins, named bare: eval), as torch's
REFUSED_GLOBAL = {"os.system": "GLOBAL posix.system", "builtins.eval": "GLOBAL eval",
                  "builtins.getattr": "GLOBAL getattr", "subprocess.Popen": "GLOBAL commands.Popen",
                  "numpy array (numpy's _reconstruct)": "GLOBAL numpy", "torch.load itself": "GLOBAL torch.load",
                  "a storage type called": "Trying to call reduce for unrecognized function"}


@pytest.mark.parametrize("name", list(REFUSED))
def test_globals_outside_the_allowlist_are_refused_as_torch_refuses_them(name, monkeypatch):
    data = _checkpoint({"payload": REFUSED[name]})
    called = []
    for module in (os, sys.modules[os.name]):  # the pickle names posix.system, os re-exports it
        monkeypatch.setattr(module, "system", lambda *a: called.append(a))
    with pytest.raises(pickle.UnpicklingError, match="^Weights only load failed") as caught:
        _load(data)
    assert REFUSED_GLOBAL[name] in str(caught.value) and not called
    torch = pytest.importorskip("torch")
    if name != "a storage type called":  # torch refuses the same files with the same exception type
        with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
            torch.load(io.BytesIO(data))


def test_every_truncation_raises():
    data = _valid()
    for end in range(0, len(data), max(1, len(data) // 64)):
        with pytest.raises(RuntimeError, match=r"^chainrule\.load: "):
            _load(data[:end])


def test_a_big_endian_file_loads_its_values():
    """torch writes a big-endian machine's bytes with byteorder 'big': read, not misread."""
    np.testing.assert_array_equal(_load(_big_endian())["w"].numpy(), np.arange(4, dtype=np.float32))


def test_the_unread_records_can_change_without_changing_the_data():
    """Bytes outside what the loader reads and checks (.format_version, local header times) may
    change; the tensors are the same, never silently other values."""
    data = bytearray(_valid())
    at = _data_offset(bytes(data), "archive/.format_version")
    data[at] = ord("9")
    data[10:14] = b"\xff\xff\xff\xff"  # the first local header's time and date
    got, want = _load(bytes(data)), _load(_valid())
    assert got["epoch"] == want["epoch"] and np.array_equal(got["w"].numpy(), want["w"].numpy())


def test_crc_is_checked_for_every_record_that_is_read():
    source = zipfile.ZipFile(io.BytesIO(_valid()))
    read = [n for n in source.namelist() if n.endswith(("data.pkl", "byteorder")) or "/data/" in n]
    for name in read:
        data = bytearray(_valid())
        info = source.getinfo(name)
        if info.file_size == 0:
            continue
        data[_data_offset(bytes(data), name)] ^= 0x20
        with pytest.raises(RuntimeError, match="fails its CRC check"):
            _load(bytes(data))
        assert zlib.crc32(bytes(data)) != zlib.crc32(_valid())


# ------------------------------------------------------------------------ torch's legacy format
def _legacy(obj, keys, data: bytes) -> bytes:
    """magic number, protocol, system info, ``obj`` (legacy persistent ids), ``keys``, then ``data``."""
    main = io.BytesIO()
    _torch_zip._Pickler(main, 2, legacy=True).dump(obj)
    system = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    head = b"".join(pickle.dumps(v, 2) for v in (_torch_zip.LEGACY_MAGIC_NUMBER, 1001, system))
    return head + main.getvalue() + pickle.dumps(keys, 2) + data


def _storage_bytes(count: int, payload: bytes) -> bytes:
    return struct.pack("<q", count) + payload


FOUR = np.arange(4, dtype=np.float32).tobytes()
LEGACY = {
    "a valid file": (lambda: _legacy({"w": _tensor(_record())}, ["0"], _storage_bytes(4, FOUR)), None),
    "a record count unlike its pickle's": (lambda: _legacy({"w": _tensor(_record())}, ["0"], _storage_bytes(3, FOUR)),
                                           r"storage '0' holds 3 elements but its pickle says 4"),
    "2**62 elements claimed": (lambda: _legacy({"w": _tensor(_record(numel=LARGE))}, ["0"],
                                               _storage_bytes(LARGE, FOUR)),
                               r"storage '0' ends past the end of the file \(truncated\)"),
    "bytes after the last storage": (lambda: _legacy({"w": _tensor(_record())}, ["0"], _storage_bytes(4, FOUR) + b"x"),
                                     r"1 bytes after the last storage belong to no storage"),
    "a truncated storage": (lambda: _legacy({"w": _tensor(_record())}, ["0"], _storage_bytes(4, FOUR)[:-1]),
                            r"ends past the end of the file"),
    "a missing storage": (lambda: _legacy({"w": _tensor(_record())}, ["0"], b""), r"storage '0' is missing"),
    "keys unlike the pickle's storages": (lambda: _legacy({"w": _tensor(_record())}, ["1"], _storage_bytes(4, FOUR)),
                                          r"its list of storage keys does not match"),
    "keys that are not strings": (lambda: _legacy({"w": _tensor(_record())}, [0], _storage_bytes(4, FOUR)),
                                  r"its list of storage keys does not match"),
    "one storage with two sizes": (
        lambda: _legacy({"a": _tensor(_record()), "b": _tensor(_record(numel=2), size=(1,))}, ["0"],
                        _storage_bytes(4, FOUR)),
        r"storage '0' is named with two types, sizes or devices"),
    "a storage of an unknown type": (
        lambda: _legacy({"w": _tensor(_record(kind=_torch_zip.StorageType("EvilStorage", np.float32)))}, ["0"],
                        _storage_bytes(4, FOUR)),
        r"a storage has the unknown type torch.EvilStorage"),
    "a wrong magic number": (lambda: _legacy({}, [], b"").replace(b"\x8a\x0al\xfc", b"\x8a\x0al\xfd", 1), None),
}


@pytest.mark.parametrize("name", list(LEGACY))
def test_hostile_legacy_files_raise_one_line_naming_the_problem(name):
    build, problem = LEGACY[name]
    data = build()
    if problem is None and name == "a valid file":
        np.testing.assert_array_equal(_load(data)["w"].numpy(), np.arange(4, dtype=np.float32))
        return
    with pytest.raises(RuntimeError, match=r"^chainrule\.load: '<file object>' ") as caught:
        _load(data)
    if problem is not None:
        assert "(legacy format)" in str(caught.value) and re.search(problem, str(caught.value)), str(caught.value)


def test_a_legacy_file_is_checked_before_its_pickle_runs(monkeypatch):
    """weights_only=False runs the pickle's code, but only after the file checked out: the dry run
    that finds the storages calls and imports nothing."""
    data = _legacy({"w": _tensor(_record()), "run": _Reduce(os.system, ("echo",))}, ["0"], _storage_bytes(3, FOUR))
    called = []
    for module in (os, sys.modules[os.name]):  # the pickle names posix.system, os re-exports it
        monkeypatch.setattr(module, "system", lambda *a: called.append(a))
    with pytest.raises(RuntimeError, match="holds 3 elements"):
        chainrule.load(io.BytesIO(data), weights_only=False)
    assert not called
    with pytest.raises(pickle.UnpicklingError, match="GLOBAL posix.system"):
        _load(data.replace(_storage_bytes(3, FOUR), _storage_bytes(4, FOUR)))
    assert not called
