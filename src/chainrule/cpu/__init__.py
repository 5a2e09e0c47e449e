"""torch.cpu: the CPU as a device module, with the functions scripts call on any device module
(``getattr(torch, device_type).synchronize()``, ``.device_count()``, ``.is_available()``). The CPU
runs every op to completion before it returns, so streams and events are there to be named and
entered and have nothing to wait for."""

from __future__ import annotations

import functools
import os
import platform
import types

from . import amp

__all__ = ["amp", "is_available", "is_initialized", "device_count", "current_device", "set_device", "synchronize",
           "Stream", "StreamContext", "Event", "current_stream", "stream", "get_capabilities"]


def is_available() -> bool:
    """Always True: chainrule always has the CPU."""
    return True


# torch's capability names for the feature flags Linux lists in /proc/cpuinfo (x86 "flags", ARM "Features")
_CPUINFO_FLAGS = {
    "sse": "sse", "sse2": "sse2", "pni": "sse3", "ssse3": "ssse3", "sse4_1": "sse4_1", "sse4_2": "sse4_2",
    "sse4a": "sse4a", "avx": "avx", "avx2": "avx2", "avx_vnni": "avx_vnni", "avx512f": "avx512_f",
    "avx512cd": "avx512_cd", "avx512dq": "avx512_dq", "avx512bw": "avx512_bw", "avx512vl": "avx512_vl",
    "avx512ifma": "avx512_ifma", "avx512vbmi": "avx512_vbmi", "avx512_vbmi2": "avx512_vbmi2",
    "avx512_bitalg": "avx512_bitalg", "avx512_vpopcntdq": "avx512_vpopcntdq", "avx512_vnni": "avx512_vnni",
    "avx512_bf16": "avx512_bf16", "avx512_fp16": "avx512_fp16", "avx512_vp2intersect": "avx512_vp2intersect",
    "avx512_4vnniw": "avx512_4vnniw", "avx512_4fmaps": "avx512_4fmaps", "amx_bf16": "amx_bf16",
    "amx_tile": "amx_tile", "amx_int8": "amx_int8", "amx_fp16": "amx_fp16", "fma": "fma3", "fma4": "fma4",
    "f16c": "f16c", "bmi1": "bmi", "bmi2": "bmi2", "popcnt": "popcnt", "abm": "lzcnt", "aes": "aes",
    "sha_ni": "sha", "clflush": "clflush", "clflushopt": "clflushopt", "clwb": "clwb",
    "asimd": "neon", "asimdhp": "fp16_arith", "bf16": "bf16", "i8mm": "i8mm", "asimddp": "dot", "sve": "sve",
    "sve2": "sve2", "svebf16": "sve_bf16", "sme": "sme", "sme2": "sme2", "atomics": "atomics", "asimdfhm": "fhm",
    "asimdrdm": "rdm", "crc32": "crc32", "sha1": "sha1", "sha2": "sha2", "pmull": "pmull",
}
_ARM_NAMES = frozenset(("neon", "fp16_arith", "bf16", "i8mm", "dot", "sve", "sve2", "sve_bf16", "sme", "sme2",
                        "atomics", "fhm", "rdm", "crc32", "sha1", "sha2", "pmull"))


@functools.lru_cache(None)
def get_capabilities() -> types.MappingProxyType:
    """torch.cpu.get_capabilities: an immutable mapping of what this CPU supports, ``architecture``
    ('x86_64', 'aarch64', ...) and a True/False per instruction-set feature under torch's names
    ('avx2', 'avx512_f', 'neon', ...). torch asks the cpuinfo library; chainrule reads the features
    Linux lists in /proc/cpuinfo (elsewhere only ``architecture`` and the core count), so cache sizes
    and vector lengths are not reported."""
    capabilities: dict = {"architecture": platform.machine(), "num_logical_cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            listed = next((line.split(":", 1)[1].split() for line in cpuinfo
                           if line.split(":", 1)[0].strip() in ("flags", "Features")), None)
    except OSError:
        listed = None
    if listed is not None:
        arm = platform.machine().lower() in ("aarch64", "arm64")
        for flag, name in _CPUINFO_FLAGS.items():
            if (name in _ARM_NAMES) == arm or name == "aes":
                capabilities[name] = flag in listed
    return types.MappingProxyType(capabilities)


def _is_vnni_supported() -> bool:
    """torch.cpu._is_vnni_supported: whether the CPU has AVX512-VNNI, the instruction x86 int8
    kernels add uint8 x int8 products with in int32 (torch asks for this one alone, not AVX-VNNI)."""
    return bool(get_capabilities().get("avx512_vnni", False))


def is_initialized() -> bool:
    return True


def device_count() -> int:
    """1: torch counts the CPU as one device."""
    return 1


def current_device() -> str:
    return "cpu"


def set_device(device) -> None:
    """Nothing to select: there is one CPU device (torch ignores the argument too)."""


def synchronize(device=None) -> None:
    """Nothing to wait for: a CPU op has finished when it returns."""


class Stream:
    """torch.cpu.Stream: the one, always-idle stream of the CPU."""

    def __init__(self, priority: int = -1) -> None:
        self.priority = priority

    def wait_stream(self, stream) -> None:
        """Nothing to wait for on the CPU."""

    def wait_event(self, event) -> None:
        """Nothing to wait for on the CPU."""

    def record_event(self, event=None):
        return event if event is not None else Event()


class Event:
    """torch.cpu.Event: complete as soon as it is recorded."""

    def record(self, stream=None) -> None:
        """Recorded: the work before it is done already."""

    def wait(self, stream=None) -> None:
        """Nothing to wait for on the CPU."""

    def query(self) -> bool:
        return True

    def synchronize(self) -> None:
        """Nothing to wait for on the CPU."""


_current_stream = Stream()


def current_stream(device=None) -> Stream:
    return _current_stream


class StreamContext:
    """torch.cpu.StreamContext: ``with torch.cpu.stream(s):`` — the CPU has one stream, so it changes nothing."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def __enter__(self):
        return self.stream

    def __exit__(self, *exc) -> None:
        return None


def stream(stream) -> StreamContext:
    return StreamContext(stream)
