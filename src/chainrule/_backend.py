"""The array-module seam: which module runs the math — NumPy on the CPU, CuPy for device='cuda'.

An op body never names ``numpy`` for math on a tensor's data: it asks ``xp = array_module(x)``
and calls ``xp.exp(x)``, ``xp.zeros(shape, dtype=...)``, so one code path serves both devices.
NumPy's dispatch protocols do *not* carry CuPy arrays through ``np.`` calls: creation
(``np.zeros``), ``np.asarray``, NumPy 0-d constants and many functions either convert
implicitly (which CuPy refuses) or hand CuPy a host array (which it rejects). Hence the seam.

Chainer's ``get_array_module`` is the precedent. ``array_api_compat.array_namespace`` does the
same job, but chainrule's runtime dependency is NumPy alone and the ops use NumPy/CuPy names
beyond the array API (``np.add.at``, ``lib.stride_tricks``, ``einsum`` paths), so the seam is
these few functions instead.

CI has no GPU: ``use_standin_cuda()`` (or ``CHAINRULE_STANDIN_CUDA=1``) makes a NumPy-backed
stand-in that refuses implicit host conversion (``chainrule.testing.standin``) the 'cuda'
module, so the GPU code path runs, and fails where CuPy would, on the CPU.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

__all__ = ["device", "array_module", "cuda_module", "cuda_available", "device_of", "to_device",
           "module_for_device", "use_standin_cuda"]

_ndarray = np.ndarray
_generic = np.generic


class _GpuModule:
    """The 'cuda' array module, resolved once: CuPy, the stand-in, or None."""

    __slots__ = ("module", "resolved", "standin")

    def __init__(self) -> None:
        self.module = None
        self.resolved = False
        self.standin = os.environ.get("CHAINRULE_STANDIN_CUDA", "") not in ("", "0")


_gpu = _GpuModule()


def cuda_module():
    """cupy (or the CPU stand-in while it is switched on), or None when neither is there."""
    if not _gpu.resolved:
        if _gpu.standin:
            from ._standin import module as standin
            _gpu.module = standin
        else:
            try:
                import cupy
            except ImportError:
                cupy = None
            _gpu.module = cupy
        _gpu.resolved = True
    return _gpu.module


# the name chainrule.cuda and backends.cuda import
_cupy = cuda_module


@contextlib.contextmanager
def use_standin_cuda():
    """Run device='cuda' on the NumPy-backed stand-in (for tests on machines with no GPU)."""
    saved = (_gpu.module, _gpu.resolved, _gpu.standin)
    _gpu.standin, _gpu.resolved = True, False
    try:
        yield cuda_module()
    finally:
        _gpu.module, _gpu.resolved, _gpu.standin = saved


class device:
    """torch.device: ``device('cpu')``, ``device('cuda')``, ``device('cuda', 0)``, ``device('cuda:0')``."""

    __slots__ = ("type", "index")

    def __init__(self, type: str | device, index: int | None = None) -> None:
        if isinstance(type, device):
            type, index = type.type, type.index
        if not isinstance(type, str):
            raise TypeError(f"device(): expected a string like 'cpu' or 'cuda', got {type!r}")
        if ":" in type:
            type, _, idx = type.partition(":")
            index = int(idx)
        if type not in ("cpu", "cuda"):
            raise RuntimeError(f"Expected one of cpu, cuda device type at start of device string: {type}")
        self.type = type
        self.index = index

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = device(other)
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and (self.index or 0) == (other.index or 0)

    def __hash__(self) -> int:
        return hash((self.type, self.index or 0))

    def __repr__(self) -> str:
        return f"device(type='{self.type}'" + (f", index={self.index})" if self.index is not None else ")")

    def __str__(self) -> str:
        return self.type + (f":{self.index}" if self.index is not None else "")


CPU = device("cpu")


class _DefaultDevice:
    """Where creation functions put a tensor when they are given no device= (torch.set_default_device)."""

    __slots__ = ("device",)

    def __init__(self) -> None:
        self.device = None  # None: the CPU, with no lookup on the creation fast path


default_device = _DefaultDevice()


def cuda_available() -> bool:
    cp = cuda_module()
    if cp is None:
        return False
    try:
        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def array_module(*arrays):
    """The module that runs math on these arrays: numpy, cupy or the stand-in.

    NumPy arrays and scalars, Python numbers and None say nothing; the first device array decides.
    """
    for array in arrays:
        kind = type(array)
        if kind is _ndarray or kind is float or kind is int or array is None or isinstance(array, _generic):
            continue
        cp = cuda_module()
        if cp is not None and isinstance(getattr(array, "_data", array), cp.ndarray):  # an array or a Tensor
            return cp
    return np


def is_array(value) -> bool:
    """A NumPy or device array (not a scalar, list or Tensor)."""
    if isinstance(value, _ndarray):
        return True
    cp = cuda_module()
    return cp is not None and isinstance(value, cp.ndarray)


def writeable(array) -> bool:
    """NumPy's read-only flag (set on overlapping strided views); CuPy arrays have none."""
    return array.flags.writeable if type(array) is _ndarray else True


def module_for_device(dev) -> object:
    dev = device(dev) if not isinstance(dev, device) else dev
    if dev.type == "cpu":
        return np
    cp = cuda_module()
    if cp is None:
        raise RuntimeError("device='cuda' needs CuPy: install it with pip install 'chainrule[cuda]'")
    if not cuda_available():
        raise RuntimeError("device='cuda' was requested but no CUDA GPU is available")
    return cp


CUDA0 = device("cuda", 0)


def device_of(array) -> device:
    if type(array) is _ndarray:
        return CPU
    cp = cuda_module()
    if cp is not None and isinstance(array, cp.ndarray):
        index = array.device.id
        return CUDA0 if index == 0 else device("cuda", index)
    return CPU


def mixed_device_error(first: device, second: device, op: str) -> RuntimeError:
    return RuntimeError(f"Expected all tensors to be on the same device, but found at least two devices, "
                        f"{first} and {second}! (when checking the arguments of {op})")


class _AutocastHook:
    """``cast(arrays, op)`` while a CUDA autocast region is active (set by ``chainrule.amp``), else None.

    Every op on device arrays passes through ``on_one_device``, so this is the one place where
    CUDA autocast changes an op's input dtypes, by the op's label (torch's autocast is a dispatch
    key, the same idea); CPU arrays never reach it, and CUDA autocast leaves CPU tensors alone."""

    __slots__ = ("cast", "cpu_dtype")

    def __init__(self) -> None:
        self.cast = None
        self.cpu_dtype = None  # the NumPy dtype CPU autocast lowers to inside its region (chainrule._opmath)


autocast_hook = _AutocastHook()


def autocast_unifies(array) -> bool:
    """Inside an autocast region of the array's device: the seam casts a lower-precision-list op's
    float inputs, so the op's front end skips its same-dtype check (torch casts first)."""
    if type(array) is _ndarray:  # CPU autocast casts on the CPU op path (chainrule._opmath)
        return autocast_hook.cpu_dtype is not None
    return autocast_hook.cast is not None


def on_one_device(arrays: list, op: str) -> list:
    """The arrays of one op application, all on one device, or torch's RuntimeError naming both.

    Called only when some array is not a NumPy array (the CPU path never gets here). As in torch,
    a 0-d CPU tensor mixes with device tensors: it joins them as a device scalar, made by a fill
    on the device rather than a host-to-device copy.
    """
    xp = array_module(*arrays)
    if xp is np:
        return arrays
    first = None
    for array in arrays:
        if isinstance(array, xp.ndarray):
            if first is None:
                first = array.device.id
            elif array.device.id != first:
                raise mixed_device_error(device("cuda", first), device("cuda", array.device.id), op)
    moved = list(arrays)
    for i, array in enumerate(arrays):
        if isinstance(array, xp.ndarray):
            continue
        if getattr(array, "ndim", 0) != 0:
            raise mixed_device_error(device("cuda", first), CPU, op)
        moved[i] = xp.full((), array[()], dtype=array.dtype)
    if autocast_hook.cast is not None:
        moved = autocast_hook.cast(moved, op)
    return moved


def to_device(array, dev: device):
    """A copy of ``array`` on ``dev`` (the array itself when it is already there)."""
    xp = module_for_device(dev)
    if xp is np:
        if type(array) is _ndarray:
            return array
        cp = cuda_module()
        return cp.asnumpy(array) if cp is not None and isinstance(array, cp.ndarray) else np.asarray(array)
    index = dev.index if dev.index is not None else int(xp.cuda.runtime.getDevice())
    if isinstance(array, xp.ndarray):
        if array.device.id == index:
            return array
        with xp.cuda.Device(index):  # another GPU's array: a peer copy onto the asked one
            return xp.array(array, copy=True)
    with xp.cuda.Device(index):  # made on the GPU the device names, not the current one
        try:
            return xp.asarray(np.asarray(array, order="C"))
        except (TypeError, ValueError) as error:
            if getattr(array, "dtype", None) is None or array.dtype.name != "bfloat16":
                raise
            raise TypeError(f"a bfloat16 tensor can't move to {dev}: CuPy {getattr(xp, '__version__', '?')} has no "
                            "bfloat16 arrays (CuPy 14 added them through ml_dtypes); upgrade CuPy, or keep "
                            "bfloat16 on the CPU") from error
