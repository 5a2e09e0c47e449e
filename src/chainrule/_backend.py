"""Which array module runs the math: NumPy on the CPU, CuPy for device='cuda' when installed.

Ops are written with ``numpy`` functions and ufuncs; those dispatch to CuPy arrays through
NumPy's ``__array_function__``/``__array_ufunc__`` protocols, so one code path serves both.
Only array *creation* needs the module chosen explicitly, which ``array_module`` does.
"""

from __future__ import annotations

import numpy as np

__all__ = ["device", "array_module", "cuda_available"]


def _cupy():
    try:
        import cupy
    except ImportError:
        return None
    return cupy


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


def cuda_available() -> bool:
    cp = _cupy()
    if cp is None:
        return False
    try:
        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def array_module(array):
    """numpy for NumPy arrays, cupy for CuPy arrays."""
    if type(array) is np.ndarray or isinstance(array, np.generic):
        return np
    cp = _cupy()
    if cp is not None and isinstance(array, cp.ndarray):
        return cp
    return np


def module_for_device(dev) -> object:
    dev = device(dev) if not isinstance(dev, device) else dev
    if dev.type == "cpu":
        return np
    cp = _cupy()
    if cp is None:
        raise RuntimeError("device='cuda' needs CuPy: install it with pip install 'chainrule[cuda]'")
    if not cuda_available():
        raise RuntimeError("device='cuda' was requested but no CUDA GPU is available")
    return cp


def device_of(array) -> device:
    if type(array) is np.ndarray:
        return CPU
    cp = _cupy()
    if cp is not None and isinstance(array, cp.ndarray):
        return device("cuda", array.device.id)
    return CPU


def to_device(array, dev: device):
    xp = module_for_device(dev)
    if xp is np:
        return array.get() if not isinstance(array, np.ndarray) and hasattr(array, "get") else array
    return xp.asarray(array)
