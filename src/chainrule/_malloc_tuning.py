"""Keep glibc from handing freed memory back to the OS between ops (Linux with glibc only).

chainrule's ops are NumPy compositions: conv's im2col, pooling, attention, grid_sample and the
losses allocate temporaries of several MB and free them before the op returns. glibc serves a
block above ``M_MMAP_THRESHOLD`` with its own ``mmap`` and unmaps it on free, and trims the heap's
top once more than ``M_TRIM_THRESHOLD`` bytes are free there, so the next call maps the pages
again and takes a minor page fault for every 4 KiB it touches: a spatial transformer's
``grid_sample`` step took ~2,200 faults and twice its compute time per call. torch's kernels
allocate little beside their outputs, so its plain ``malloc`` does not meet this.

At import, chainrule raises both thresholds once (``mallopt``; setting one alone does not stop
the faults), so freed blocks stay in the process and are reused. ``CHAINRULE_MALLOC_TUNING=0``
in the environment leaves glibc's defaults. Elsewhere (macOS, Windows, musl) nothing happens,
and nothing here may stop ``import chainrule``.
"""

from __future__ import annotations

import os
import sys

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "tune_malloc"]

# glibc's mallopt parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

# blocks below this are served from the heap and kept on free. 32 MiB is the most older glibc
# accepts on 64-bit (mallopt refuses more than HEAP_MAX_SIZE / 2; 2.36 takes more) and held every
# temporary of the measured workloads (docs/performance.md, "Session 46"); 64 MiB measured the same
MMAP_THRESHOLD = 32 << 20
# free memory at the heap's top beyond this goes back to the OS (128 MiB and 256 MiB measured alike)
TRIM_THRESHOLD = 128 << 20

applied = False


def tune_malloc() -> bool:
    """Raise glibc's mmap and trim thresholds unless ``CHAINRULE_MALLOC_TUNING=0``; returns
    whether they were set. A no-op off Linux/glibc; never raises."""
    global applied
    if os.environ.get("CHAINRULE_MALLOC_TUNING", "").strip() == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        # musl and other C libraries have no gnu_get_libc_version; their malloc has no such knobs
        if not (hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt")):
            return False
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.mallopt.restype = ctypes.c_int
        mmap_set = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        trim_set = libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        applied = bool(mmap_set) and bool(trim_set)
    except Exception:  # noqa: BLE001 - an unusual libc must not break the import
        return False
    return applied


tune_malloc()
