"""Checkpoints: ``save(obj, f)`` / ``load(f)``, torch.serialization's API, files treated as untrusted.

``save`` writes a plain safetensors file (see :mod:`chainrule._safetensors`) for anything made of
tensors, arrays, dicts, lists, tuples and plain values — state dicts, optimizer and scheduler
state, ``{"epoch": 3, "model": ...}`` — so any safetensors reader can open it and loading it
never unpickles. An object safetensors can't hold (a whole ``nn.Module``) is pickled into
PyTorch's zip layout instead, and reading that back needs ``weights_only=False``, as in torch.
Writes to a path are atomic: a temporary file in the same directory, flushed and fsynced, then
``os.replace``d over the target, so a crash mid-save leaves the old file intact.

``load`` reads safetensors files and PyTorch's zip checkpoints (``torch.save`` output) without
PyTorch: with ``weights_only=True`` (the default) through a restricted unpickler that only
rebuilds tensors and containers (:mod:`chainrule._torch_zip`). Threat model and limits:
``docs/security.md``. A malformed file raises ``RuntimeError`` naming the file and the problem; a
pickle that needs a global outside the allowlist raises ``pickle.UnpicklingError`` ("Weights only
load failed ..."), before anything is called.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

from . import _safetensors, _torch_zip
from .tensor import Tensor

__all__ = ["save", "load", "add_safe_globals", "safe_globals", "get_safe_globals", "clear_safe_globals"]

_safe_globals: list = []


# ---------------------------------------------------------------------------------------- allowlist
def _global_name(entry) -> tuple[str, object]:
    if isinstance(entry, tuple):
        if len(entry) != 2 or not isinstance(entry[1], str):
            raise TypeError(f"add_safe_globals: expected an object or (object, 'module.name'), got {entry!r}")
        return entry[1], entry[0]
    module, name = getattr(entry, "__module__", None), getattr(entry, "__qualname__", None)
    if module is None or name is None:
        raise TypeError(f"add_safe_globals: {entry!r} has no __module__ and __qualname__; pass "
                        "(object, 'module.name') instead")
    return f"{module}.{name}", entry


def add_safe_globals(safe_globals: list) -> None:
    """torch.serialization.add_safe_globals: let ``load(weights_only=True)`` use these classes and
    functions (or ``(object, "module.name")`` pairs) from a file. Only add what you trust."""
    for entry in safe_globals:
        _global_name(entry)
    _safe_globals.extend(safe_globals)


def get_safe_globals() -> list:
    """The objects added with :func:`add_safe_globals`."""
    return list(_safe_globals)


def clear_safe_globals() -> None:
    """Forget every object added with :func:`add_safe_globals`."""
    _safe_globals.clear()


@contextlib.contextmanager
def safe_globals(safe_globals: list):
    """torch.serialization.safe_globals: :func:`add_safe_globals` for the duration of a ``with``."""
    before = list(_safe_globals)
    add_safe_globals(safe_globals)
    try:
        yield
    finally:
        _safe_globals[:] = before


# ---------------------------------------------------------------------------------------- save
def _write_arrays(f, arrays: list) -> None:
    for array in arrays:
        f.write(memoryview(array.reshape(-1)).cast("B") if array.size else b"")


def _encode(obj) -> tuple[bytes, list]:
    """The bytes to write: a safetensors header and its arrays, or a pickle archive (no arrays)."""
    try:
        return _safetensors.header(obj)
    except _safetensors.Unsupported:
        return _torch_zip.dumps(obj), []


def save(obj, f, pickle_module=None, pickle_protocol=None, _use_new_zipfile_serialization=True) -> None:
    """torch.save: write ``obj`` to ``f`` (a path or a binary file object).

    Tensors and containers of them with plain values go to a safetensors file; other objects (a
    whole Module) are pickled in PyTorch's zip layout and need ``load(weights_only=False)``.
    """
    head, arrays = _encode(obj)
    if hasattr(f, "write"):
        f.write(head)
        _write_arrays(f, arrays)
        return
    path = os.fspath(f)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(head)
            _write_arrays(out, arrays)
            out.flush()
            os.fsync(out.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable; not possible on every platform
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# ---------------------------------------------------------------------------------------- load
def _read_bytes(f) -> tuple[bytearray, str]:
    """The whole file in one buffer (the only allocation its size costs) and a name for errors."""
    if isinstance(f, (bytes, bytearray)):
        return bytearray(f), "<bytes>"
    if hasattr(f, "read"):
        if hasattr(f, "readinto") and hasattr(f, "seek") and hasattr(f, "tell"):
            try:
                here = f.tell()
                size = f.seek(0, os.SEEK_END) - here
                f.seek(here)
                buffer = bytearray(size)
                got = f.readinto(buffer)
                return (buffer[:got] if got != size else buffer), str(getattr(f, "name", "<file object>"))
            except (OSError, ValueError):
                pass
        return bytearray(f.read()), str(getattr(f, "name", "<file object>"))
    path = os.fspath(f)
    if not os.path.exists(path):
        raise FileNotFoundError(f"[Errno 2] No such file or directory: '{path}'")
    if os.path.isdir(path):
        raise IsADirectoryError(f"[Errno 21] Is a directory: '{path}'")
    size = os.path.getsize(path)
    buffer = bytearray(size)
    with open(path, "rb") as stream:
        got = stream.readinto(buffer)
    return (buffer[:got] if got != size else buffer), path


def _placer(map_location):
    """A function that puts a loaded tensor on the device ``map_location`` asks for."""
    if callable(map_location) and not isinstance(map_location, (str, dict)):
        return lambda t: map_location(t, "cpu")
    if isinstance(map_location, dict):
        map_location = map_location.get("cpu", "cpu")
    if map_location is None or str(map_location) == "cpu":
        return None
    return lambda t: t.to(map_location)


def load(f, map_location=None, pickle_module=None, *, weights_only: bool | None = None, mmap=None,
         **pickle_load_args):
    """torch.load: read what ``save`` or ``torch.save`` wrote, from a path or a binary file object.

    Reads chainrule's safetensors files (any safetensors file gives a flat dict of tensors) and
    PyTorch zip checkpoints. ``weights_only`` (default True, as in torch) restricts unpickling to
    tensors and containers; ``False`` unpickles anything and so runs code the file names — only
    for trusted files. ``map_location`` ("cpu", a device, a dict or a function) places the
    tensors. Raises RuntimeError naming the file for a truncated, garbled or foreign file, and
    ``pickle.UnpicklingError`` when weights-only loading refuses a global.
    """
    weights_only = True if weights_only is None else bool(weights_only)
    buffer, name = _read_bytes(f)
    place = _placer(map_location)
    if _torch_zip.is_zip(buffer):
        extra = dict(_global_name(entry) for entry in _safe_globals)
        return _torch_zip.load(buffer, name, weights_only, extra, place)
    if _torch_zip.is_legacy_torch(buffer):
        raise RuntimeError(f"chainrule.load: {name!r} is a PyTorch checkpoint in the legacy format (torch < 1.6 "
                           "or _use_new_zipfile_serialization=False), which chainrule does not read: re-save "
                           "it with a current torch.save")
    arrays, metadata = _safetensors.parse(buffer, name)
    to_tensor = Tensor._make if place is None else (lambda a: place(Tensor._make(a)))
    return _safetensors.rebuild(arrays, metadata, name, to_tensor)

