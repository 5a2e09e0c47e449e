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
import sys

import numpy as np

from . import _meta

__all__ = ["device", "array_module", "cuda_module", "cuda_available", "device_of", "to_device", "subtract_contiguous",
           "module_for_device", "use_standin_cuda", "ufunc_at", "amax_with_initial", "checked_linalg",
           "broadcast_solve", "accumulate", "has_values"]

_ndarray = np.ndarray
_generic = np.generic
_MetaArray = _meta.ndarray


class _GpuModule:
    """The 'cuda' array module, resolved once: CuPy, the stand-in, or None."""

    __slots__ = ("module", "resolved", "standin")

    def __init__(self) -> None:
        self.module = None
        self.resolved = False
        self.standin = os.environ.get("CHAINRULE_STANDIN_CUDA", "") not in ("", "0")


_gpu = _GpuModule()


def _fault_in_blas_scratch() -> None:
    """One float64 (256, 256) by (256, 256) product, once, when chainrule is imported.

    NumPy's OpenBLAS packs each GEMM's operands into a scratch buffer that it maps once and whose
    pages the kernel faults in as products touch them. While the buffer holds only the pages the
    process's own small products touch, those products run several times slower than once a larger
    product has faulted in more of it: measured one process per case on this project's CPU machine
    (AMD EPYC, OpenBLAS 0.3.31 with its Haswell kernels, one thread), a (128, 256) by (256, 256)
    float32 product ran at 3.8-4.0 GFLOPS with 268 KB of the buffer faulted in, 32.1-32.6 after this
    product (560 KB), and a (1024, 1152) by (1152, 128) one at 4.8-4.9 -> 15.2-20.6. An MLP of such
    layers (a VAE's encoder and decoder at batch 128) never runs a product large enough by itself,
    so every one of its GEMMs stayed slow for the whole run. This one costs about 8 ms once; it
    changes no product's value (the same kernels run; only the buffer's pages differ)."""
    square = np.ones((256, 256))
    square @ square


_fault_in_blas_scratch()


def cuda_module():
    """cupy (or the CPU stand-in while it is switched on), or None when neither is there."""
    if not _gpu.resolved:
        if _gpu.standin:
            from . import _standin
            value = os.environ.get("CHAINRULE_STANDIN_CUDA", "1")
            if value.isdigit() and int(value) > 1 and _standin._devices.count == 1:
                _standin.set_device_count(int(value))  # CHAINRULE_STANDIN_CUDA=n: n stand-in GPUs
            _gpu.module = _standin.module
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
def use_standin_cuda(devices: int | None = None):
    """Run device='cuda' on the NumPy-backed stand-in (for tests on machines with no GPU);
    ``devices=n`` pretends n GPUs for the block (device 0 current)."""
    from . import _standin

    saved = (_gpu.module, _gpu.resolved, _gpu.standin)
    saved_devices = (_standin._devices.count, _standin._devices.current, selected_gpu.index, selected_gpu.module)
    _gpu.standin, _gpu.resolved = True, False
    if devices is not None:
        _standin.set_device_count(devices)
        selected_gpu.set(_standin.module, 0)
    try:
        yield cuda_module()
    finally:
        _gpu.module, _gpu.resolved, _gpu.standin = saved
        (_standin._devices.count, _standin._devices.current, selected_gpu.index,
         selected_gpu.module) = saved_devices


# torch's device types: any of them names a device (torch.device('mps') is fine to construct on any
# machine); chainrule computes on 'cpu' and 'cuda', and using another raises (module_for_device)
DEVICE_TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve", "fpga", "maia",
                "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia", "privateuseone")
_MAX_DEVICE_INDEX = 2**31 - 1


def _parse_device(text: str) -> tuple[str, int | None]:
    """(type, index) of a device string by torch's grammar: a known type, then optionally ':' and a
    decimal index with no sign, space or leading zero ('cuda:1'); torch's RuntimeError otherwise."""
    if text == "cpu" or text == "cuda":
        return text, None
    if not text:
        raise RuntimeError("Device string must not be empty")
    kind, colon, digits = text.partition(":")
    name_ok = kind.isascii() and kind.replace("_", "a").isalpha()
    index_ok = not colon or (digits.isascii() and digits.isdigit() and (digits == "0" or digits[0] != "0"))
    if not (name_ok and index_ok):
        raise RuntimeError(f"Invalid device string: '{text}'")
    if kind not in DEVICE_TYPES:
        raise RuntimeError(f"Expected one of {', '.join(DEVICE_TYPES)} device type at start of device string: {kind}")
    if not colon:
        return kind, None
    if len(digits) > 10 or int(digits) > _MAX_DEVICE_INDEX:
        raise RuntimeError(f"Could not parse device index '{digits}' in device string '{text}'")
    return kind, int(digits)


class device:
    """torch.device: ``device('cpu')``, ``device('cuda')``, ``device('cuda', 0)``, ``device('cuda:0')``;
    an int is the accelerator's index. Any index is fine to construct; using one the machine lacks
    raises then ("CUDA error: invalid device ordinal"), as in torch."""

    __slots__ = ("type", "index")

    def __init__(self, type: str | device | int, index: int | None = None) -> None:
        if isinstance(type, device) and index is None:
            type, index = type.type, type.index
        elif isinstance(type, str):
            kind, parsed = _parse_device(type)
            if index is not None:
                if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
                    raise TypeError(f"device(): argument 'index' (position 2) must be int, not "
                                    f"{index.__class__.__name__}")
                if parsed is not None:
                    raise RuntimeError("type (string) must not include an index because index was passed "
                                       f"explicitly: {type}")
                if index < 0:
                    raise RuntimeError("Device index must not be negative")
                parsed = int(index)
            type, index = kind, parsed
        elif isinstance(type, (int, np.integer)) and not isinstance(type, bool) and index is None:
            # torch.device(1): the accelerator's device 1
            if type < 0:  # torch checks the sign first, with or without an accelerator
                raise RuntimeError("Device index must not be negative")
            if not cuda_available():
                raise RuntimeError("Cannot access accelerator device when none is available.")
            type, index = "cuda", int(type)
        else:
            raise TypeError(f"device(): expected a string like 'cpu' or 'cuda' (and an optional int index), got "
                            f"{type!r}" + ("" if index is None else f" and {index!r}"))
        self.type = type
        self.index = index

    def __eq__(self, other) -> bool:
        # as torch: 'cuda' (no index: whichever GPU is current) is not 'cuda:0', nor 'cpu' 'cpu:0'.
        # A string is never equal, not even 'cpu' (torch compares devices only with devices), and is
        # not parsed: libraries probe ``device == "npu"`` on any device (accelerate's send_to_device)
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and self.index == other.index

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def _no_order(self, other):
        raise TypeError("comparison not implemented")  # torch's words: devices have no order

    __lt__ = __le__ = __gt__ = __ge__ = _no_order

    # ``with torch.device('meta'):``: creation functions given no device= create there (torch's
    # DeviceContext); the block restores the default it found, so blocks nest and
    # set_default_device inside one lasts until the block ends
    def __enter__(self) -> device:
        _DEVICE_BLOCKS.append(default_device.device)
        default_device.device = None if self.type == "cpu" else self
        return self

    def __exit__(self, *exc) -> None:
        default_device.device = _DEVICE_BLOCKS.pop()

    def __repr__(self) -> str:
        return f"device(type='{self.type}'" + (f", index={self.index})" if self.index is not None else ")")

    def __str__(self) -> str:
        return self.type + (f":{self.index}" if self.index is not None else "")


CPU = device("cpu")
META = device("meta")
_DEVICE_BLOCKS: list = []  # the default device each open ``with device(...)`` block restores


class _DefaultDevice:
    """Where creation functions put a tensor when they are given no device= (torch.set_default_device)."""

    __slots__ = ("device",)

    def __init__(self) -> None:
        self.device = None  # None: the CPU, with no lookup on the creation fast path


default_device = _DefaultDevice()


def _device_count(cp) -> int:
    try:
        return int(cp.cuda.runtime.getDeviceCount())
    except Exception:
        return 0


def cuda_available() -> bool:
    cp = cuda_module()
    return cp is not None and _device_count(cp) > 0


def refuse_pinning(pin_memory) -> None:
    """torch's factories asked for pinned (page-locked) host memory where no accelerator can use it."""
    if pin_memory and not cuda_available():
        raise RuntimeError("pin_memory=True requires a CUDA or other accelerator backend; no pinned memory "
                           "allocator is available on this system.")


def array_module(*arrays):
    """The module that runs math on these arrays: numpy, cupy or the stand-in.

    NumPy arrays and scalars, Python numbers and None say nothing; the first device array decides.
    """
    for array in arrays:
        kind = type(array)
        if kind is _ndarray or kind is float or kind is int or array is None or isinstance(array, _generic):
            continue
        gpu = _gpu.module
        if gpu is not None and kind is gpu.ndarray and _gpu.resolved:
            # (a GPU array, the common case on the device path: decided without looking for a
            # Tensor's _data on it, an AttributeError raised and swallowed, dearer on the stand-in)
            make_current(gpu, array.device.id)
            return gpu
        data = getattr(array, "_data", array)  # an array or a Tensor
        if type(data) is _MetaArray:
            return _meta.module
        cp = cuda_module()
        if cp is not None and isinstance(data, cp.ndarray):
            make_current(cp, data.device.id)  # the math that follows runs on this array's GPU
            return cp
    return np


def is_gpu_array(array) -> bool:
    """Whether ``array`` is exactly the 'cuda' module's array type (CuPy's, or the stand-in's while
    it is on): no meta array, no subclass, no host array."""
    gpu = _gpu.module
    return gpu is not None and _gpu.resolved and type(array) is gpu.ndarray


def is_array(value) -> bool:
    """A NumPy or device array (not a scalar, list or Tensor)."""
    if isinstance(value, (_ndarray, _MetaArray)):
        return True
    cp = cuda_module()
    return cp is not None and isinstance(value, cp.ndarray)


def dense_non_overlapping(array) -> bool:
    """Whether ``array``'s elements fill its memory block exactly once, in some order of its dims."""
    expected = array.itemsize
    for stride, size in sorted((abs(st), n) for n, st in zip(array.shape, array.strides) if n != 1):
        if stride != expected:
            return False
        expected *= size
    return True


# torch's stride-ordering walk, innermost dim first: channels, then the spatial dims from the last
_CHANNELS_LAST_WALK = {4: (1, 3, 2, 0), 5: (1, 4, 3, 2, 0)}


def suggests_channels_last(a) -> bool:
    """torch's ``suggest_memory_format() == channels_last(_3d)``: a 4-d or 5-d array whose strides
    order it channels-last (``is_channels_last_strides_2d/3d``), a strided slice of one included.

    Ambiguous strides count as contiguous, as torch's: a zero-size dim, a zero channel stride, or
    N111-like tensors whose batch stride equals the channel stride."""
    walk = _CHANNELS_LAST_WALK.get(a.ndim)
    if walk is None:
        return False
    itemsize = a.itemsize or 1
    strides = [s // itemsize for s in a.strides]
    if strides[1] == 0:
        return False
    smallest = 0
    for d in walk:
        if a.shape[d] == 0 or strides[d] < smallest or (d == 0 and smallest == strides[1]):
            return False
        smallest = strides[d] * max(a.shape[d], 1)
    return True


def has_expanded_dims(array) -> bool:
    """Whether ``array`` has a zero stride over more than one element (an expanded view, torch's
    MemOverlap::Yes): several of its elements are one memory location. An empty array has no
    elements to share (NumPy gives its dims zero strides)."""
    return array.size != 0 and any(stride == 0 and size > 1 for stride, size in zip(getattr(array, "strides", ()), array.shape))


def contiguous_strides(shape, order=None) -> tuple:
    """torch's strides, in elements, of a fresh tensor of ``shape``: a 0-length dim counts as 1
    ((2, 0, 3) → (3, 3, 1)), where NumPy gives an empty array zero strides. With ``order`` (the
    dims from the outermost in memory to the innermost) those of a dense tensor laid out so
    (channels-last, a permuted result), size-1 dims given their place in it too."""
    if order is None:
        strides, step = [], 1
        for length in reversed(shape):
            strides.append(step)
            step *= max(length, 1)
        return tuple(reversed(strides))
    strides, step = [0] * len(shape), 1
    for d in reversed(order):
        strides[d] = step
        step *= max(shape[d], 1)
    return tuple(strides)


def memory_order(array) -> tuple | None:
    """The dims of a dense, non-overlapping ``array`` from the outermost in memory to the innermost,
    where that is not row-major (channels-last, transposed); None for a row-major array or one with
    gaps, overlaps or negative strides."""
    if array.ndim < 2 or array.size == 0 or array.flags.c_contiguous:
        return None
    order = sorted(range(array.ndim), key=lambda d: -array.strides[d])
    step = array.itemsize
    for d in reversed(order):
        if array.shape[d] != 1 and array.strides[d] != step:
            return None
        step *= array.shape[d]
    return tuple(order)


def strided_view(array, shape, strides, writeable: bool = True):
    """``array`` seen with ``shape`` and byte ``strides`` (NumPy's ``as_strided``, the device's on a
    device). ml_dtypes' float8 types have an array-interface name NumPy cannot read back, so their
    bytes are strided and viewed as float8 again."""
    if type(array) is not _ndarray:
        return array_module(array).lib.stride_tricks.as_strided(array, shape, strides)
    # (the element size first: a dtype's name is computed in Python on each read, and float8 is one byte)
    if array.itemsize == 1 and array.dtype.name.startswith("float8_"):
        raw = np.lib.stride_tricks.as_strided(array.view(np.uint8), shape, strides, writeable=writeable)
        return raw.view(array.dtype)
    return np.lib.stride_tricks.as_strided(array, shape, strides, writeable=writeable)


def writeable(array) -> bool:
    """NumPy's read-only flag (set on broadcast and overlapping strided views). CuPy arrays have
    none and take any write, so there an array with a zero stride over more than one element (an
    expanded view: torch's MemOverlap::Yes) counts as read-only, as NumPy's broadcast views are:
    an in-place op on it raises torch's error on the GPU too instead of racing on one element."""
    if type(array) is _ndarray:
        return array.flags.writeable
    return not has_expanded_dims(array)


def write_refusal(array) -> RuntimeError:
    """The error for an in-place write into a read-only ``array``: torch's words where its elements
    overlap (an expanded view); otherwise the memory is a non-writable NumPy array's, shared by
    from_numpy/as_tensor, which torch writes into anyway (undefined behaviour: such memory may be
    a bytes object or a read-only file mapping) and chainrule refuses."""
    extent = array.itemsize
    for stride, size in sorted((abs(st), n) for st, n in zip(array.strides, array.shape) if n > 1):
        if stride < extent:
            return RuntimeError("unsupported operation: more than one element of the written-to tensor refers to "
                                "a single memory location. Please clone() the tensor before performing the "
                                "operation.")
        extent = stride * (size - 1) + extent
    return RuntimeError(f"cannot write in place into a tensor of shape {list(array.shape)} that shares the memory "
                        "of a non-writable NumPy array (torch.from_numpy or torch.as_tensor of it, which warned): "
                        "torch writes into such memory anyway, which is undefined behaviour. Copy the array "
                        "first (np.array(a)), make it writable, or clone() the tensor before the operation.")


class CudaUnavailableError(RuntimeError, AssertionError):
    """device='cuda' on a machine without CuPy or a GPU: torch built without CUDA raises
    AssertionError ("Torch not compiled with CUDA enabled") there, chainrule always raised
    RuntimeError; this is both, so either ``except`` catches it."""


def broadcast_refusal(shape, broadcast) -> RuntimeError:
    """torch's error for an op writing into a tensor of ``shape`` (in place, or an output it was
    given) whose operands broadcast to the larger ``broadcast`` shape; both shown as lists."""
    return RuntimeError(f"output with shape {list(shape)} doesn't match the broadcast shape {list(broadcast)}")


def invalid_ordinal(dev, count: int) -> RuntimeError:
    """torch's error for a CUDA device index the machine lacks."""
    return RuntimeError(f"CUDA error: invalid device ordinal: {dev} was asked for, but this machine has {count} CUDA "
                        f"device{'' if count == 1 else 's'} (cuda:0 to cuda:{count - 1})")


def module_for_device(dev) -> object:
    dev = device(dev) if not isinstance(dev, device) else dev
    if dev.type == "cpu":
        return np
    if dev.type == "meta":
        return _meta.module
    if dev.type != "cuda":
        raise NotImplementedError(f"chainrule has no '{dev.type}' backend: tensors live on the 'cpu' or on 'cuda' "
                                  f"(device={str(dev)!r})")
    cp = cuda_module()
    if cp is None:
        raise CudaUnavailableError("device='cuda' needs CuPy: install it with pip install 'chainrule[cuda]'")
    count = _device_count(cp)
    if count == 0:
        raise CudaUnavailableError("device='cuda' was requested but no CUDA GPU is available")
    if dev.index is not None and dev.index >= count:
        raise invalid_ordinal(dev, count)
    return cp


CUDA0 = device("cuda", 0)


def resolve(dev) -> device:
    """The device a tensor put on ``dev`` ends up on: 'cuda' (no index) is the selected GPU and
    'cpu:0' the CPU. ``device('cuda') != device('cuda:0')`` as in torch, so a request is resolved
    before it is compared with a tensor's device (``t.to('cuda')`` of a cuda:0 tensor is ``t``)."""
    dev = device(dev) if not isinstance(dev, device) else dev
    if dev.index is None:
        if dev.type != "cuda":
            return dev
        return device("cuda", selected_gpu.of(cuda_module()))
    return CPU if dev.type == "cpu" else dev


def device_of(array) -> device:
    if type(array) is _ndarray:
        return CPU
    if type(array) is _MetaArray:
        return META
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


def on_one_device(arrays: list, op: str, params: dict | None = None, host_params: frozenset = frozenset()) -> list:
    """The arrays of one op application, all on one device, or torch's RuntimeError naming both.

    Called only when some array is not a NumPy array (the CPU path never gets here). As in torch,
    a 0-d CPU tensor mixes with device tensors: it joins them as a device scalar, made by a fill
    on the device rather than a host-to-device copy. ``params``, the op's keyword arguments, may
    carry more tensors' arrays (an index, a mask, a target): a host one of them is a CPU tensor
    among CUDA ones too, refused with the same error (CuPy would raise a TypeError in the op),
    except those named in ``host_params``, host arrays by design (a packed batch's lengths).
    """
    gpu = _gpu.module
    if gpu is not None and _gpu.resolved and autocast_hook.cast is None:
        # the common case first: every array the GPU module's own, on one GPU, which is made
        # current, or a 0-d CPU one (a number's constant); what the general steps below would do
        # for them, with one device read per array
        first = None
        host_scalars = False
        for array in arrays:
            kind = type(array)
            if kind is gpu.ndarray:
                index = array.device.id
                if first is None:
                    first = index
                elif index != first:
                    break
            elif kind is _ndarray and not array.ndim:
                host_scalars = True
            else:
                break
        else:
            if first is not None:
                make_current(gpu, first)
                if host_scalars:
                    arrays = [_device_scalar(gpu, array, first) if type(array) is _ndarray else array
                              for array in arrays]
                if params:
                    _refuse_host_params(params, host_params, first, op)
                return arrays
    xp = array_module(*arrays)
    if xp is np:
        return arrays
    if xp is _meta.module:
        return _meta.on_meta(arrays, op)
    first = None
    for array in arrays:
        if isinstance(array, xp.ndarray):
            if first is None:
                first = array.device.id
            elif array.device.id != first:
                raise mixed_device_error(device("cuda", first), device("cuda", array.device.id), op)
    if first is not None:
        make_current(xp, first)  # run the op on its arrays' GPU
    moved = list(arrays)
    for i, array in enumerate(arrays):
        if isinstance(array, xp.ndarray):
            continue
        if getattr(array, "ndim", 0) != 0:
            raise mixed_device_error(device("cuda", first), CPU, op)
        moved[i] = _device_scalar(xp, array, first)
    if params:
        _refuse_host_params(params, host_params, first, op)
    if autocast_hook.cast is not None:
        moved = autocast_hook.cast(moved, op)
    return moved


def _refuse_host_params(params: dict, host_params: frozenset, gpu: int, op: str) -> None:
    """torch's mixed-device RuntimeError for a CPU tensor among an op's keyword arguments on GPU
    ``gpu`` (but those named in ``host_params``)."""
    for name, value in params.items():
        value = getattr(value, "_data", value)  # (a Tensor parameter: its array)
        if type(value) is _ndarray and value.ndim and name not in host_params:
            raise mixed_device_error(device("cuda", gpu), CPU, op)


def refuse_device_params(params: dict, op: str) -> None:
    """torch's mixed-device RuntimeError when an op on CPU arrays got a device array (a CUDA index,
    mask or target) among its keyword arguments; nothing otherwise."""
    for value in params.values():
        value = getattr(value, "_data", value)
        if getattr(value, "ndim", 0) and device_of(value).type == "cuda":
            raise mixed_device_error(device_of(value), CPU, op)


# ---------------------------------------------------------------- the current GPU
# CuPy allocates and launches on its *current* device; torch runs an op on its tensors' device,
# whatever device is current (``model.to(rank)`` without ``set_device``, a model split over two
# GPUs). So chainrule keeps two notions apart: the device the user selected (``cuda.set_device``,
# ``with cuda.device(i)``; what 'cuda' without an index means, and what ``current_device()``
# answers), and CuPy's current device, which follows the data: an op on another GPU's arrays
# makes that GPU CuPy's current one first (as Chainer's functions do with
# ``get_device_from_array``). It is left there, so the raw array code after it runs there too.
class _SelectedGpu:
    """The user's device index, for the CUDA module that set it (a test's fake CuPy, the stand-in
    and CuPy each start at device 0, as a fresh CUDA context does)."""

    __slots__ = ("index", "module")

    def __init__(self) -> None:
        self.index = 0
        self.module = None

    def of(self, cp) -> int:
        return self.index if self.module is cp else 0

    def set(self, cp, index: int) -> None:
        self.module, self.index = cp, int(index)


selected_gpu = _SelectedGpu()


def gpu_in_use() -> bool:
    """Whether CuPy (or the stand-in) has been asked for: only then can an array be on a GPU."""
    return _gpu.module is not None


def make_current(cp, index: int) -> None:
    """Make GPU ``index`` CuPy's (``cp``'s) current device, if it is not."""
    runtime = cp.cuda.runtime
    if runtime.getDevice() != index:
        runtime.setDevice(index)


def follow_device(array) -> None:
    """Make ``array``'s GPU CuPy's current device, if it is not (``array`` is a device array)."""
    if type(array) is _MetaArray:
        return  # a meta array is on no GPU
    make_current(_gpu.module, array.device.id)


def allocate_on(dev) -> None:
    """Make the GPU a creation's ``device=`` names CuPy's current one ('cuda' without an index: the
    selected device); nothing for the CPU."""
    dev = device(dev) if not isinstance(dev, device) else dev
    if dev.type == "cuda":
        cp = module_for_device(dev)
        make_current(cp, selected_gpu.of(cp) if dev.index is None else dev.index)


def _device_scalar(xp, array, device_id):
    """A 0-d CPU array as a 0-d array on the device, one per value: the constants of a training
    loop (``y * 0.9 + 0.1``) are filled on the device once, not once per op (a fill and an
    allocation, about a fifth of the op_overhead step on an H200). Keyed by the value's bytes, so
    -0.0 and 0.0 stay apart and a NaN is found again; ops never write into their inputs."""
    key = (array.tobytes(), array.dtype, device_id, xp)
    scalar = _DEVICE_SCALARS.get(key)
    if scalar is None:
        if len(_DEVICE_SCALARS) > 4096:  # bounded, like the CPU constants
            _DEVICE_SCALARS.clear()
        with xp.cuda.Device(device_id):
            scalar = _DEVICE_SCALARS[key] = xp.full((), array[()], dtype=array.dtype)
    return scalar


_DEVICE_SCALARS: dict = {}


def to_device(array, dev: device):
    """A copy of ``array`` on ``dev`` (the array itself when it is already there)."""
    xp = module_for_device(dev)
    if type(array) is _MetaArray or xp is _meta.module:
        if xp is not _meta.module:
            raise NotImplementedError(_meta.NO_DATA)
        return _meta.from_array(array)
    if xp is np:
        if type(array) is _ndarray:
            return array
        cp = cuda_module()
        return cp.asnumpy(array) if cp is not None and isinstance(array, cp.ndarray) else np.asarray(array)
    index = dev.index if dev.index is not None else selected_gpu.of(xp)
    if isinstance(array, xp.ndarray) and array.device.id == index:
        return array
    # made on the GPU the device names, which stays CuPy's current one: what comes next works on
    # the copy (see follow_device)
    make_current(xp, index)
    if isinstance(array, xp.ndarray):
        return xp.array(array, copy=True)  # another GPU's array: a peer copy onto this one
    try:
        return xp.asarray(np.asarray(array, order="C"))
    except (TypeError, ValueError) as error:
        if getattr(array, "dtype", None) is None or array.dtype.name != "bfloat16":
            raise
        raise TypeError(f"a bfloat16 tensor can't move to {dev}: CuPy {getattr(xp, '__version__', '?')} has no "
                        "bfloat16 arrays (CuPy 14 added them through ml_dtypes); upgrade CuPy, or keep "
                        "bfloat16 on the CPU") from error


def subtract_contiguous(xp, a, b):
    """``a - b`` written C-contiguous whatever the inputs' layout, as torch's fresh outputs are.
    NumPy does it in the ufunc (``order="C"``); CuPy's ufuncs take no ``order=`` (TypeError), so
    there the result is made contiguous after (a no-op when it already is)."""
    if xp is np:
        return np.subtract(a, b, order="C")
    return xp.ascontiguousarray(xp.subtract(a, b))


def ufunc_at(xp, name: str, a, key, values) -> None:
    """``xp.<name>.at(a, key, values)``: NumPy's unbuffered in-place op, repeated positions applied
    once per occurrence. CuPy's ``ufunc.at`` is a scatter kernel on CUDA atomics, so it exists only
    for add, subtract, maximum, minimum and bitwise and/or/xor, and compiles only for the dtypes
    with atomics (``_cupy_surface.SCATTER_DTYPES``: no bool, int8/16, uint8/16, complex); anything
    else is applied in rounds here (``_ufunc_at_in_rounds``)."""
    ufunc = getattr(xp, name)
    if xp is np:
        ufunc.at(a, key, values)
        return
    from ._cupy_surface import SCATTER_DTYPES

    if a.dtype.name in SCATTER_DTYPES.get(name, ()):
        ufunc.at(a, key, values)
    else:
        _ufunc_at_in_rounds(xp, ufunc, a, key, values)


def _ufunc_at_in_rounds(xp, ufunc, a, key, values) -> None:
    """``ufunc.at`` from plain indexing: the flat positions ``key`` addresses are read off an arange
    indexed by it (so any key works: slices, integer or boolean arrays, ellipsis), each
    occurrence gets its rank among the occurrences of its position (a stable sort), and round r
    applies the r-th occurrence of every position. No position repeats within a round, so
    ``flat[at] = ufunc(flat[at], v)`` is exact, and the occurrences come in NumPy's order. One
    host read (the number of rounds)."""
    positions = xp.arange(a.size).reshape(a.shape)[key]
    if isinstance(values, xp.ndarray):
        values = xp.broadcast_to(values, positions.shape).ravel()
    positions = positions.ravel()
    if positions.size == 0:
        return
    order = xp.argsort(positions, kind="stable")
    ordered = positions[order]
    rank = xp.empty_like(order)
    rank[order] = xp.arange(positions.size) - xp.searchsorted(ordered, ordered)
    flat = a.reshape(-1) if a.flags.c_contiguous else a.ravel()  # a view, or a copy written back below
    for r in range(int(rank.max()) + 1):
        take = rank == r
        at = positions[take]
        flat[at] = ufunc(flat[at], values[take] if isinstance(values, xp.ndarray) else values)
    if not a.flags.c_contiguous:
        a[...] = flat.reshape(a.shape)


def amax_with_initial(xp, a, axis, keepdims: bool, initial):
    """``np.max(a, axis, keepdims=, initial=)``: the max with ``initial`` as one more candidate, so an
    empty reduction gives ``initial``. CuPy's max takes no ``initial=`` (TypeError), so there it is
    the max of the non-empty axes joined with ``initial`` by ``maximum`` (NaN stays NaN, as in
    NumPy), or ``initial`` itself where a reduced axis is empty."""
    if xp is np:
        return np.max(a, axis=axis, keepdims=keepdims, initial=initial)
    axes = tuple(range(a.ndim)) if axis is None else tuple(
        d % a.ndim for d in (axis if isinstance(axis, tuple) else (axis,)))
    if any(a.shape[d] == 0 for d in axes):
        shape = tuple(1 if d in axes else n for d, n in enumerate(a.shape) if keepdims or d not in axes)
        return xp.full(shape, initial, dtype=a.dtype)
    return xp.maximum(xp.max(a, axis=axis, keepdims=keepdims), initial)  # a Python number: no copy to the device


def has_values(array) -> bool:
    """False for a meta array, which has a shape and a dtype and nothing to read: a check of the
    values (singular, NaN, not positive-definite) or a loop over them has nothing to look at, and
    torch's meta kernels give the result's shape without one."""
    return type(array) is not _MetaArray


def checked_linalg(xp):
    """A context in which ``xp.linalg``'s inv/solve/cholesky raise LinAlgError on a singular or
    non-positive-definite input, as NumPy's always do. CuPy's do not check by default (it costs a
    device sync; the result is then silently inf/NaN): ``cupyx.errstate(linalg='raise')`` makes
    them check, as torch's CUDA linalg does (it syncs to raise too). NumPy always checks; the meta
    device has no values to be singular: neither needs (nor may import) cupyx."""
    if xp is np or xp is _meta.module:
        return contextlib.nullcontext()
    standin = sys.modules.get("chainrule._standin")
    if standin is not None and xp is standin.module:
        return standin.errstate(linalg="raise")
    import cupyx

    return cupyx.errstate(linalg="raise")


def broadcast_solve(xp, a, b):
    """``xp.linalg.solve(a, b)`` for a matrix ``b``, batch dims broadcast as in NumPy 2. CuPy's
    solve does not broadcast them (ValueError unless ``b``'s batch dims equal ``a``'s), so on the
    device both are broadcast first (views, no copy)."""
    if xp is np or a.shape[:-2] == b.shape[:-2]:
        return xp.linalg.solve(a, b)
    batch = xp.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return xp.linalg.solve(xp.broadcast_to(a, batch + a.shape[-2:]), xp.broadcast_to(b, batch + b.shape[-2:]))


def accumulate(xp, name: str, x, axis: int):
    """``xp.<name>.accumulate(x, axis=axis)``: the running ``name`` (maximum, minimum, logaddexp...)
    along ``axis``. CuPy implements ``ufunc.accumulate`` only for add and multiply
    (NotImplementedError otherwise), so there the scan is built by doubling (Hillis-Steele):
    step k combines every element with the one 2^k before it, log2(n) launches in all. Exact for
    maximum and minimum (NaN propagates as in NumPy); for logaddexp the terms associate in another
    order than NumPy's left-to-right loop, so the last bits may differ."""
    ufunc = getattr(xp, name)
    if xp is np or name in ("add", "multiply"):
        return ufunc.accumulate(x, axis=axis)
    out = x.copy()  # C order, as NumPy's result
    lead = (slice(None),) * (axis % x.ndim)
    n, shift = x.shape[axis], 1
    while shift < n:
        later, earlier = lead + (slice(shift, None),), lead + (slice(None, n - shift),)
        out[later] = ufunc(out[later], out[earlier])  # the right side is read before the write
        shift *= 2
    return out
