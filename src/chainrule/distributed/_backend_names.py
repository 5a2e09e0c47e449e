"""torch.distributed.Backend: the names of communication backends, which device each serves, and
the registry third-party backends add themselves to. Every built-in name runs on MPI here; the
table reports torch's names so code that compares strings (``get_backend() == Backend.GLOO``)
reads the same."""

from __future__ import annotations

import warnings
from collections import namedtuple

from .._backend import device as Device

__all__ = ["Backend", "backend_config", "get_default_backend_for_device", "is_backend_available"]


class Backend(str):
    """A lower-case backend name. ``Backend("GLOO") == "gloo"``; an unknown name is lower-cased
    and kept, as torch does (``init_process_group`` decides whether it can run it)."""

    UNDEFINED = "undefined"
    GLOO = "gloo"
    NCCL = "nccl"
    UCC = "ucc"
    MPI = "mpi"
    XCCL = "xccl"
    FAKE = "fake"

    _BackendPlugin = namedtuple("_BackendPlugin", ["creator_fn", "extended_api"])
    _plugins: dict[str, _BackendPlugin] = {}

    backend_list = [UNDEFINED, GLOO, NCCL, XCCL, UCC, MPI, FAKE]
    default_device_backend_map: dict[str, str] = {"cpu": GLOO, "cuda": NCCL, "xpu": XCCL, "mps": GLOO}
    backend_capability: dict[str, list[str]] = {
        GLOO: ["cpu", "cuda"], NCCL: ["cuda"], XCCL: ["xpu"], UCC: ["cpu", "cuda"], MPI: ["cpu", "cuda"],
        FAKE: ["cpu", "cuda", "hpu", "xpu"],
    }

    def __new__(cls, name: str):
        if not isinstance(name, str):
            raise ValueError("Backend constructor parameter must be string-ish")
        value = getattr(Backend, name.upper(), Backend.UNDEFINED)
        return name.lower() if value == Backend.UNDEFINED else value

    @classmethod
    def register_backend(cls, name: str, func, extended_api: bool = False, devices=None) -> None:
        """Add a third-party backend's name (torch's registry). chainrule records it, so
        ``Backend.NAME``, ``is_backend_available`` and ``get_default_backend_for_device`` know
        it, but cannot run it: ``func`` is kept, never called, and ``init_process_group`` with
        that name raises (every group here is an MPI communicator)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"Backend.register_backend: name must be a non-empty string, got {name!r}")
        if not callable(func):
            raise TypeError(f"Backend.register_backend: func must be callable (it creates the backend), "
                            f"got {type(func).__name__}")
        if not hasattr(Backend, name.upper()):
            setattr(Backend, name.upper(), name.lower())
        if name.lower() not in Backend.backend_list:
            Backend.backend_list.append(name.lower())
        if devices is None:
            warnings.warn(f"Device capability of {name} unspecified, assuming `cpu` and `cuda` or `xpu`. "
                          "Please specify it via the `devices` argument of `register_backend`.", stacklevel=2)
            devices = ["cpu", "cuda"]
        elif isinstance(devices, str):
            devices = [devices]
        for device in devices:
            current = Backend.default_device_backend_map.get(device)
            if current is None or (current == Backend.FAKE and name.lower() != Backend.FAKE):
                Backend.default_device_backend_map[device] = name.lower()
        Backend.backend_capability[name.lower()] = list(devices)
        Backend._plugins[name.upper()] = Backend._BackendPlugin(func, extended_api)


def backend_config(name: str) -> str:
    """torch's ``BackendConfig`` string for a backend name: ``"cpu:gloo,cuda:gloo"``."""
    if ":" in name:
        return name.lower()
    devices = Backend.backend_capability.get(name.lower(), ["cpu", "cuda"])
    return ",".join(f"{device}:{name.lower()}" for device in devices)


def get_default_backend_for_device(device) -> str:
    """torch.distributed.get_default_backend_for_device: ``"cpu"`` -> ``"gloo"``, ``"cuda:1"`` -> ``"nccl"``."""
    kind = device.type if isinstance(device, Device) else Device(device).type
    backend = Backend.default_device_backend_map.get(kind)
    if backend is None:
        raise ValueError(f"Default backend not registered for device : {device}")
    return backend


def is_backend_available(backend: str) -> bool:
    """torch.distributed.is_backend_available: the built-in names we run (all on MPI) when mpi4py
    is installed, and any registered name; ``"cpu:gloo,cuda:gloo"`` needs each of its names.
    (``is_gloo_available()`` stays False: no gloo library is here, only its name on MPI.)"""
    from ._mpi import mpi_available
    from .distributed_c10d import BACKENDS

    if ":" in backend:
        pairs = [pair.split(":", 1) for pair in backend.lower().split(",")]
        return all(len(pair) == 2 and is_backend_available(pair[1]) for pair in pairs)
    name = backend.lower()
    if name in BACKENDS:
        return mpi_available()
    return name.upper() in Backend._plugins
