"""Checkpoints: ``save(obj, f)`` / ``load(f)``, torch.serialization's API, files treated as untrusted.

``save`` writes torch's zip format (:mod:`chainrule._torch_zip`), which real ``torch.load`` reads
— with ``weights_only=True``, its default, for tensors, containers and plain values (state dicts,
optimizer and scheduler state, ``{"epoch": 3, "model": ...}``) — and ``_use_new_zipfile_serialization
=False`` torch's legacy format. A path ending in ``.safetensors`` gets a safetensors file instead
(see :mod:`chainrule._safetensors`) when the object is tensors and containers with plain values, so
any safetensors reader opens it. A whole ``nn.Module`` pickles its class, so reading it back needs
``weights_only=False`` (and chainrule: torch refuses chainrule's classes, and chainrule torch's).
Writes to a path are atomic: a temporary file in the same directory, flushed and fsynced, then
``os.replace``d over the target, so a crash mid-save leaves the old file intact.

``load`` reads torch's zip and legacy checkpoints and safetensors files without PyTorch: with
``weights_only=True`` (the default) through a restricted unpickler that only rebuilds tensors and
containers. Threat model and limits: ``docs/security.md``. A malformed file raises
``RuntimeError`` naming the file and the problem; a pickle that needs a global outside the
allowlist raises ``pickle.UnpicklingError`` ("Weights only load failed ..."), before anything is
called.
"""

from __future__ import annotations

import contextlib
import enum
import os
import pickle
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable

from . import _safetensors, _torch_zip
from ._backend import device
from .storage import UntypedStorage
from .tensor import Tensor

__all__ = ["save", "load", "add_safe_globals", "safe_globals", "get_safe_globals", "clear_safe_globals", "skip_data"]

_safe_globals: list = []

# the type of ``load``'s map_location, as torch spells it (libraries annotate with it: Pyro's ParamStore)
MAP_LOCATION = Callable[[UntypedStorage, str], UntypedStorage] | device | str | dict[str, str] | None


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
def _safetensors_writer(obj):
    """``write(out)`` of ``obj`` as a safetensors file, or None when safetensors can't hold it."""
    try:
        encoded = _safetensors.header(obj)
    except _safetensors.Unsupported:
        return None
    return lambda out: _safetensors.write(obj, out, encoded)


def _archive_name(path: str) -> str:
    """The folder of torch's zip records: the file's name without its extension, as torch.save names
    it, or "archive" (torch's name for a file object) when that is not a plain ASCII name."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return stem if stem and stem.isascii() and stem.isprintable() and "\\" not in stem else "archive"


class _SerializationLocal(threading.local):
    def __init__(self) -> None:
        super().__init__()
        self.skip_data = False
        self.materialize_fake_tensors = False


_serialization_tls = _SerializationLocal()


class skip_data:
    """torch.serialization.skip_data: within it, ``save`` writes each storage's record at its full size
    but leaves the bytes zero (to be filled in a separate pass), as torch reserves the space. ``load``
    within it reads the file as usual (torch leaves the storages uninitialised: their values are
    undefined there, the file's here). ``materialize_fake_tensors`` is accepted for torch's signature
    (chainrule has no fake tensors to materialise)."""

    def __init__(self, materialize_fake_tensors: bool = False) -> None:
        self.materialize_fake_tensors = materialize_fake_tensors

    def __enter__(self) -> None:
        self._old = (_serialization_tls.skip_data, _serialization_tls.materialize_fake_tensors)
        _serialization_tls.skip_data, _serialization_tls.materialize_fake_tensors = True, self.materialize_fake_tensors

    def __exit__(self, *exc_info) -> None:
        _serialization_tls.skip_data, _serialization_tls.materialize_fake_tensors = self._old


def save(obj, f, pickle_module=None, pickle_protocol=2, _use_new_zipfile_serialization=True,
         _disable_byteorder_record=False) -> None:
    """torch.save: write ``obj`` to ``f`` (a path or a binary file object) in torch's zip format,
    which torch.load reads (with ``weights_only=True`` for tensors, containers and plain values).

    A path ending in ``.safetensors`` gets a safetensors file instead when the object is tensors and
    containers of them with plain values (any safetensors reader opens it; see
    :mod:`chainrule._safetensors`). ``pickle_protocol`` is the pickle's protocol (torch's default 2);
    ``_use_new_zipfile_serialization=False`` writes torch's legacy (pre-1.6) format;
    ``_disable_byteorder_record=True`` writes the ``byteorder`` record last, as torch's archive writer
    does when its Python side leaves it out.
    """
    if pickle_module is not None and pickle_module is not pickle:
        raise ValueError("chainrule.save: pickle_module must be the pickle module; chainrule writes torch's "
                         f"format with its own pickler, got {pickle_module!r}")
    protocol = 2 if pickle_protocol is None else pickle_protocol
    if not (type(protocol) is int and 2 <= protocol <= pickle.HIGHEST_PROTOCOL):
        raise ValueError(f"chainrule.save: pickle_protocol must be an int from 2 to {pickle.HIGHEST_PROTOCOL}, "
                         f"got {pickle_protocol!r}")
    if _serialization_tls.skip_data and not _use_new_zipfile_serialization:
        raise RuntimeError("Cannot use skip_data=True with _use_new_zipfile_serialization=False")
    path = None if hasattr(f, "write") else os.fspath(f)
    skipping = _serialization_tls.skip_data
    write = (_safetensors_writer(obj) if isinstance(path, str) and path.endswith(".safetensors") and not skipping
             else None)
    if write is None and not _use_new_zipfile_serialization:
        def write(out):
            _torch_zip.write_legacy(obj, out, protocol)
    elif write is None:
        name = "archive" if path is None else _archive_name(os.fsdecode(path))

        def write(out):
            _torch_zip.write(obj, out, name, protocol, skip_data=skipping,
                             byteorder_record=not _disable_byteorder_record)

    if path is None:
        write(f)
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise RuntimeError(f"Parent directory {os.fsdecode(directory)} does not exist.")  # torch's words
    if os.path.isdir(path):
        raise IsADirectoryError(f"chainrule.save: {os.fsdecode(path)!r} is a directory; give a file name")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
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


def _restore(t: Tensor, location: str) -> Tensor:
    """``t`` on the device it was saved from (torch's default_restore_location): a deserializer
    registered with ``register_package`` first, then the built-in rules."""
    for _, _, deserializer in _package_registry:
        moved = deserializer(t, location)
        if moved is not None:
            return moved
    return _builtin_restore(t, location)


def _builtin_restore(t: Tensor, location: str) -> Tensor:
    if location == "cpu":
        return t
    from . import cuda
    from ._backend import device

    try:
        target = device(location)
    except (RuntimeError, ValueError):
        target = None
    if target is None or target.type != "cuda":
        raise RuntimeError(f"chainrule.load: a tensor was saved on device {location!r}, which chainrule does not "
                           "have; use chainrule.load with map_location='cpu' to map it to the CPU")
    if not cuda.is_available():
        raise RuntimeError("Attempting to deserialize object on a CUDA device but chainrule.cuda.is_available() is "
                           "False. If you are running on a CPU-only machine, please use chainrule.load with "
                           "map_location=torch.device('cpu') to map your storages to the CPU.")
    if (target.index or 0) >= cuda.device_count():
        raise RuntimeError(f"Attempting to deserialize object on CUDA device {target.index} but "
                           f"chainrule.cuda.device_count() is {cuda.device_count()}. Please use chainrule.load with "
                           "map_location to map your storages to an existing device.")
    # torch restores the storage, so a loaded leaf stays a leaf (a Parameter a Parameter), not a copy
    # recorded by autograd
    from .nn.parameter import Parameter

    moved = t.detach().to(target)
    if type(t) is Parameter:
        return Parameter(moved, t.requires_grad)
    return moved.requires_grad_(t.requires_grad) if t.requires_grad else moved


def _placer(map_location):
    """``place(tensor, location)``: where a loaded tensor goes, given the device it was saved from
    ('cpu', 'cuda:0'), as torch.load's ``map_location`` says: None restores each tensor to its
    own device; a device (str or torch.device) takes them all there; a dict maps saved locations to
    devices (others are restored); a function ``(tensor, location)`` returns the tensor to use, or
    None to restore it. (torch's function gets a storage; chainrule's gets the tensor, on the CPU.)"""
    if map_location is None:
        return _restore
    if isinstance(map_location, dict):
        return lambda t, location: _restore(t, str(map_location.get(location, location)))
    if callable(map_location) and not isinstance(map_location, str):
        def place(t, location):
            out = map_location(t, location)
            return _restore(t, location) if out is None else out

        return place
    target = str(map_location)
    return lambda t, location: _restore(t, target)


_TRUE_WORDS = ("1", "y", "yes", "true")


def _resolve_weights_only(weights_only: bool | None, pickle_module) -> bool:
    """torch.load's choice of ``weights_only``: an explicit argument wins, except that
    ``TORCH_FORCE_WEIGHTS_ONLY_LOAD`` forces True; unset, it is True unless the caller passed its
    own ``pickle_module``, and ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` (what torch's own error tells
    users of pre-2.6 scripts to set) turns it off with torch's warning."""
    force_on = os.getenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "0").lower() in _TRUE_WORDS
    force_off = os.getenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "0").lower() in _TRUE_WORDS
    if force_on and force_off:
        raise RuntimeError("Only one of `TORCH_FORCE_WEIGHTS_ONLY_LOAD` or `TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD` "
                           "should be set, but both were set.")
    if force_on:
        resolved = True
    elif weights_only is not None:
        resolved = bool(weights_only)
    elif force_off:
        warnings.warn("Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD detected, since the `weights_only` "
                      "argument was not explicitly passed to `torch.load`, forcing weights_only=False.",
                      UserWarning, stacklevel=3)
        resolved = False
    else:
        resolved = pickle_module is None
    if resolved and pickle_module is not None:
        raise RuntimeError("Can not safely load weights when explicit pickle_module is specified")
    return resolved


class _EmptyCheckpointError(EOFError, RuntimeError):
    """An empty file or an unrewound buffer: torch's unpickler meets the end of input at once and
    raises EOFError, which callers catch by class; a RuntimeError as well, as every other file
    chainrule.load cannot read."""


def load(f, map_location=None, pickle_module=None, *, weights_only: bool | None = None, mmap=None,
         **pickle_load_args):
    """torch.load: read what ``save`` or ``torch.save`` wrote, from a path or a binary file object.

    Reads chainrule's safetensors files (any safetensors file gives a flat dict of tensors) and
    PyTorch zip checkpoints. ``weights_only`` (default True, as in torch) restricts unpickling to
    tensors and containers; ``False`` unpickles anything and so runs code the file names — only
    for trusted files. ``map_location`` ("cpu", a device, a dict or a function, see ``_placer``)
    places the tensors; without it each goes back to the device it was saved from. Raises an EOFError
    (also a RuntimeError) for an empty file or an unrewound buffer, as torch's unpickler does, a
    RuntimeError naming the file for a truncated, garbled or foreign file, and
    ``pickle.UnpicklingError`` when weights-only loading refuses a global.
    """
    weights_only = _resolve_weights_only(weights_only, pickle_module)
    buffer, name = _read_bytes(f)
    is_path = isinstance(f, (str, os.PathLike))
    # torch maps only its zip format, after giving a path ending in .safetensors to safetensors
    if mmap and not _torch_zip.is_zip(buffer) and not (is_path and os.fsdecode(f).endswith(".safetensors")):
        f_name = f"{f}, " if isinstance(f, str) else ""
        raise RuntimeError("mmap can only be used with files saved with "
                           f"`torch.save({f_name}_use_new_zipfile_serialization=True), please torch.save your "
                           "checkpoint with this option in order to use mmap.")
    elif mmap and not is_path:
        _torch_zip.check_archive(buffer, name)  # torch opens the archive before it looks at mmap
        raise ValueError("f must be a file path in order to use the mmap argument")
    if len(buffer) == 0:
        rewind = " (a file object written by save() is read from where it stands: seek(0) first)" \
            if not isinstance(f, (str, os.PathLike)) else ""
        raise _EmptyCheckpointError(f"chainrule.load: {name!r} is empty: there is no checkpoint to read{rewind}")
    place = _placer(map_location)
    if _torch_zip.is_zip(buffer):
        extra = dict(_global_name(entry) for entry in _safe_globals)
        return _torch_zip.load(buffer, name, weights_only, extra, place)
    if _torch_zip.is_legacy_torch(buffer):
        extra = dict(_global_name(entry) for entry in _safe_globals)
        return _torch_zip.load_legacy(buffer, name, weights_only, extra, place)
    arrays, metadata = _safetensors.parse(buffer, name)
    return _safetensors.rebuild(arrays, metadata, name, lambda array, location: place(Tensor._make(array), location))



# ---- torch.serialization's public constants and helpers
DEFAULT_PROTOCOL = 2
MAGIC_NUMBER = _torch_zip.LEGACY_MAGIC_NUMBER
PROTOCOL_VERSION = _torch_zip.LEGACY_PROTOCOL_VERSION
STORAGE_KEY_SEPARATOR = ","
LONG_SIZE, INT_SIZE, SHORT_SIZE = 4, 4, 2  # the legacy format's sys_info
MAP_SHARED, MAP_PRIVATE = 1, 2  # mmap's flags, as torch names them (Linux values)


class SourceChangeWarning(Warning):
    """torch warns with it when a pickled Module's source differs from the class loaded now."""


class LoadEndianness(enum.Enum):
    NATIVE = 1
    LITTLE = 2
    BIG = 3


_load_endianness: LoadEndianness | None = None
_BYTEORDER = {LoadEndianness.NATIVE: sys.byteorder, LoadEndianness.LITTLE: "little", LoadEndianness.BIG: "big"}


def get_default_load_endianness() -> LoadEndianness | None:
    """The byte order assumed for a checkpoint that records none (None: little-endian, torch's default)."""
    return _load_endianness


def set_default_load_endianness(endianness) -> None:
    """Set the byte order ``load`` assumes for a checkpoint with no ``byteorder`` record (None resets)."""
    global _load_endianness
    if endianness is not None and not isinstance(endianness, LoadEndianness):
        raise TypeError("Invalid argument type in function set_default_load_endianness")
    _load_endianness = endianness
    _torch_zip.default_load_byteorder = "little" if endianness is None else _BYTEORDER[endianness]


_compute_crc32 = True
_mmap_flags = MAP_PRIVATE


def get_crc32_options() -> bool:
    """Whether ``save`` computes each record's CRC32 (always, in chainrule: zip members carry one)."""
    return _compute_crc32


def set_crc32_options(compute_crc32: bool) -> None:
    """Kept for torch's API; chainrule's writer always computes the CRC32s (zipfile needs them)."""
    global _compute_crc32
    _compute_crc32 = bool(compute_crc32)


def get_default_mmap_options() -> int:
    return _mmap_flags


def set_default_mmap_options(flags: int) -> None:
    """torch's mmap flags for ``load(mmap=True)``: MAP_PRIVATE (the default) or MAP_SHARED."""
    global _mmap_flags
    if flags not in (MAP_PRIVATE, MAP_SHARED):
        raise ValueError("Invalid argument in function set_default_mmap_options, expected mmap.MAP_PRIVATE or "
                         f"mmap.MAP_SHARED, but got {flags}")
    _mmap_flags = flags


# (priority, tagger, deserializer), lowest priority first; the built-in CPU/CUDA rules come after
_package_registry: list[tuple[int, object, object]] = []


def register_package(priority: int, tagger, deserializer) -> None:
    """torch.serialization.register_package: ``tagger(storage)`` names a storage's device at save time
    and ``deserializer(storage, location)`` moves it at load time, tried by ascending priority until
    one returns something other than None. chainrule passes tensors where torch passes storages; the
    deserializers run in ``load`` for each tensor restored to its saved location."""
    _package_registry.append((priority, tagger, deserializer))
    _package_registry.sort(key=lambda entry: entry[0])


def _type_name(obj) -> str:
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}"


def location_tag(storage) -> str:
    """The location a tensor or storage is saved with: 'cpu', 'cuda:0', or a registered tagger's."""
    for _, tagger, _ in _package_registry:
        tag = tagger(storage)
        if tag is not None:
            return tag
    device = getattr(storage, "device", None)
    if device is not None:
        kind = getattr(device, "type", str(device))
        if kind == "cpu":
            return "cpu"
        if kind == "cuda":
            return f"cuda:{device.index or 0}"
    raise RuntimeError(f"don't know how to determine data location of {_type_name(storage)}")


def default_restore_location(storage, location: str):
    """``storage`` (a tensor in chainrule) moved to ``location`` by the registered deserializers, else
    the built-in CPU and CUDA rules; torch's RuntimeError for a location nothing knows."""
    for _, _, deserializer in _package_registry:
        result = deserializer(storage, location)
        if result is not None:
            return result
    if location == "cpu" or location.startswith("cuda"):
        return _builtin_restore(storage, location)
    raise RuntimeError(f"don't know how to restore data location of {_type_name(storage)} (tagged with {location})")


def validate_cuda_device(location) -> int:
    """The index of the CUDA device ``location`` names, or torch's error when there is none."""
    from . import cuda
    from ._backend import device

    target = device(location)
    if not cuda.is_available():
        raise RuntimeError("Attempting to deserialize object on a CUDA device but torch.cuda.is_available() is False. "
                           "If you are running on a CPU-only machine, please use torch.load with "
                           "map_location=torch.device('cpu') to map your storages to the CPU.")
    index = target.index or 0
    if index >= cuda.device_count():
        raise RuntimeError(f"Attempting to deserialize object on CUDA device {index} but torch.cuda.device_count() is "
                           f"{cuda.device_count()}. Please use torch.load with map_location to map your storages to "
                           "an existing device.")
    return index


def normalize_storage_type(storage_type):
    """The top-level storage class of that name (chainrule.FloatStorage for any FloatStorage)."""
    import chainrule

    return getattr(chainrule, storage_type.__name__)


def check_module_version_greater_or_equal(module, req_version_tuple, error_if_malformed: bool = True) -> bool:
    """Whether ``module.__version__`` is at least ``req_version_tuple`` (compared field by field,
    each field cast to the type of the required one)."""
    try:
        fields = module.__version__.split(".")
        version = tuple(type(required)(fields[i]) for i, required in enumerate(req_version_tuple))
        return version >= tuple(req_version_tuple)
    except Exception as error:
        message = (f"'{module.__name__}' module version string is malformed '{module.__version__}' and cannot be "
                   f"compared with tuple {req_version_tuple}")
        if error_if_malformed:
            raise RuntimeError(message) from error
        warnings.warn(message + ", but continuing assuming that requirement is met", stacklevel=2)
        return True


def get_unsafe_globals_in_checkpoint(f) -> list[str]:
    """The globals in a zip checkpoint that ``load(weights_only=True)`` would refuse (beyond those
    allowed with ``add_safe_globals``), found without importing or running anything."""
    buffer, name = _read_bytes(f)
    if not _torch_zip.is_zip(buffer):
        raise ValueError("Expected input to be a checkpoint returned by torch.save")
    extra = dict(_global_name(entry) for entry in _safe_globals)
    return _torch_zip.globals_outside_allowlist(buffer, name, extra)
