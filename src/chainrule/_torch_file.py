"""torch._C.PyTorchFileReader / PyTorchFileWriter: record-level access to torch's zip container.

torch.save's file is a zip of stored records under one folder (``archive/data.pkl``,
``archive/data/0``, ``archive/version``, ...). The reader lists and returns records by their names
inside that folder; the writer adds records (each 64-byte aligned, as _torch_zip writes them) and,
at ``write_end_of_file``, torch's ``version``, ``byteorder`` and ``.data/serialization_id``
records. Lightning and other checkpoint tools read records this way without unpickling.

Differences from torch: ``get_storage_from_record`` returns a 1-d tensor of the record's elements
(torch's is an empty tensor over the record's storage); ``write_record`` takes bytes or str (not a
raw pointer or a storage), and refuses a size larger than the data instead of reading past it; the
writer does not take a C writer function.
"""

from __future__ import annotations

import io
import os
import secrets
import sys
import zipfile

import numpy as np

from . import _dtype, _torch_zip
from .tensor import Tensor

__all__ = ["PyTorchFileReader", "PyTorchFileWriter"]

_CORRUPT_HINT = (" This is an internal miniz error. If you are seeing this error, there is a high likelihood that your "
                 "checkpoint file is corrupted. This can happen if the checkpoint was not saved properly, was "
                 "transferred incorrectly, or the file was modified after saving.")


class PyTorchFileReader:
    """Records of a torch zip container, from a path or a binary file object."""

    def __init__(self, file) -> None:
        if isinstance(file, (str, os.PathLike)):
            path = os.fspath(file)
            if not os.path.exists(path):
                raise RuntimeError(f"open file failed because of errno 2 on fopen: No such file or directory, file "
                                   f"path: {path}")
            with open(path, "rb") as stream:
                self._buffer = stream.read()
        else:
            self._buffer = file.read()
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(self._buffer))
        except zipfile.BadZipFile:
            raise RuntimeError("PytorchStreamReader failed reading zip archive: not a ZIP archive." + _CORRUPT_HINT) \
                from None
        names = [info.filename for info in self._zip.infolist()]
        self._prefix = names[0].split("/")[0] + "/" if names and "/" in names[0] else ""
        self._infos = {info.filename[len(self._prefix):]: info for info in self._zip.infolist()
                       if info.filename.startswith(self._prefix)}

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = self._infos.get(name)
        if info is None:
            raise RuntimeError(f"PytorchStreamReader failed locating file {name}: file not found." + _CORRUPT_HINT)
        return info

    def get_all_records(self) -> list[str]:
        return list(self._infos)

    def has_record(self, name: str) -> bool:
        return name in self._infos

    def get_record(self, name: str) -> bytes:
        return self._zip.read(self._info(name))

    def get_record_size(self, name: str) -> int:
        return self._info(name).file_size

    def get_record_header_offset(self, name: str) -> int:
        """Where the record's local zip header starts in the file."""
        return self._info(name).header_offset

    def get_record_offset(self, name: str) -> int:
        """Where the record's bytes start in the file (after its local header)."""
        info = self._info(name)
        at = info.header_offset
        name_length = int.from_bytes(self._buffer[at + 26:at + 28], "little")
        extra_length = int.from_bytes(self._buffer[at + 28:at + 30], "little")
        return at + 30 + name_length + extra_length

    get_record_offset_no_read = get_record_offset

    def get_storage_from_record(self, name: str, numel: int, dtype) -> Tensor:
        """The record's first ``numel`` elements of ``dtype`` as a 1-d tensor; for a storage class
        (``UntypedStorage``, as torch.load passes) ``numel`` counts bytes and the tensor is uint8."""
        data = self.get_record(name)
        element = dtype.np if isinstance(dtype, _dtype.dtype) else np.dtype(np.uint8)
        if numel * element.itemsize > len(data):
            raise RuntimeError(f"PytorchStreamReader: record {name} has {len(data)} bytes, fewer than the "
                               f"{numel} elements of {element.itemsize} bytes asked for")
        return Tensor._make(np.frombuffer(data, dtype=element, count=numel).copy())

    def serialization_id(self) -> str:
        name = ".data/serialization_id"
        return self.get_record(name).decode() if name in self._infos else ""


class PyTorchFileWriter:
    """A torch zip container written record by record, to a path or a binary file object; the
    folder inside is the file's name without extension ("archive" for a file object)."""

    def __init__(self, file, compute_crc32: bool = True, storage_alignment: int = _torch_zip.ALIGNMENT) -> None:
        if isinstance(file, (str, os.PathLike)):
            path = os.fspath(file)
            parent = os.path.dirname(path)
            if parent and not os.path.isdir(parent):
                raise RuntimeError(f"Parent directory {parent} does not exist.")
            self._archive_name = os.path.splitext(os.path.basename(path))[0]
            self._stream, self._owned = open(path, "wb"), True
        elif callable(file) and not hasattr(file, "write"):
            raise TypeError("PyTorchFileWriter: chainrule cannot write through a C writer function; pass a path or "
                            "a binary file object")
        else:
            self._archive_name, self._stream, self._owned = "archive", file, False
        self._zip = zipfile.ZipFile(self._stream, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        self._alignment = int(storage_alignment)
        self._written: list[str] = []
        self._min_version = 3  # torch's kMinProducedFileFormatVersion
        self._serialization_id = ""
        self._finalized = False

    def archive_name(self) -> str:
        return self._archive_name

    def serialization_id(self) -> str:
        return self._serialization_id

    def get_all_written_records(self) -> set[str]:
        return set(self._written)

    def set_min_version(self, version: int) -> None:
        self._min_version = max(self._min_version, int(version))

    def write_record(self, name: str, data, size: int) -> None:
        """Add record ``name`` holding the first ``size`` bytes of ``data`` (bytes, or str)."""
        if self._finalized:
            raise RuntimeError(f"PyTorchFileWriter: cannot write record {name!r} after write_end_of_file")
        if name in self._written:
            raise RuntimeError(f"Tried to serialize file twice: {name}")
        payload = data.encode() if isinstance(data, str) else bytes(data)
        if size > len(payload):
            raise RuntimeError(f"PyTorchFileWriter.write_record: record {name!r} has {len(payload)} bytes, fewer than "
                               f"the size {size} given")
        _torch_zip.write_aligned(self._zip, f"{self._archive_name}/{name}", payload[:size], self._alignment)
        self._written.append(name)

    def write_record_metadata(self, name: str, size: int) -> None:
        """torch records a name and size without data (for a later write); chainrule writes zeros."""
        self.write_record(name, bytes(size), size)

    def write_end_of_file(self) -> None:
        """Add torch's closing records and close the archive (the file too, when it was a path)."""
        if self._finalized:
            return
        if "version" not in self._written:
            self.write_record("version", f"{self._min_version}\n", len(f"{self._min_version}\n"))
        if "byteorder" not in self._written:
            self.write_record("byteorder", sys.byteorder, len(sys.byteorder))
        self._serialization_id = "".join(str(secrets.randbelow(10)) for _ in range(40))
        self.write_record(".data/serialization_id", self._serialization_id, 40)
        self._zip.close()
        if self._owned:
            self._stream.close()
        self._finalized = True
