"""Session 46, lane perfAE: `import chainrule` raises glibc's mmap and trim thresholds, so freed
multi-MB temporaries stay in the process instead of being unmapped and faulted back in on the
next op; ``CHAINRULE_MALLOC_TUNING=0`` leaves glibc's defaults.

Each check runs in a fresh interpreter: the thresholds are process-wide and set once at import.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys

import pytest


def _glibc() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return False
    return hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt")


needs_glibc = pytest.mark.skipif(not _glibc(), reason="the malloc tuning applies to Linux with glibc only")

# Three 20 MiB blocks at once, freed together. Under glibc's defaults the first free of an mmap'd
# 20 MiB block raises the mmap threshold to 20 MiB and the trim threshold to twice that, so later
# blocks come from the heap, and freeing all three leaves 60 MiB free at its top: more than 40 MiB,
# so the heap is trimmed and the next round faults its pages in again. With chainrule's 32 MiB /
# 128 MiB the blocks stay on the heap and are reused.
_PROBE = """
import json, resource
import numpy as np
import chainrule
from chainrule import _malloc_tuning

def round_of_blocks():
    blocks = [np.ones(20 << 17) for _ in range(3)]  # 20 MiB of float64 each, every page written
    return sum(float(block[-1]) for block in blocks)

rounds = 20
for _ in range(3):  # the first rounds fault in either way
    round_of_blocks()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(rounds):
    round_of_blocks()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"applied": _malloc_tuning.applied, "faults": faults, "rounds": rounds}))
"""


def _probe(tuning: str | None) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("CHAINRULE_MALLOC_TUNING", None)
    if tuning is not None:
        env["CHAINRULE_MALLOC_TUNING"] = tuning
    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@needs_glibc
def test_import_keeps_freed_large_blocks_in_the_process():
    probe = _probe(None)
    assert probe["applied"] is True
    # reused from the heap: no new pages for the repeated blocks (a few for the interpreter at most)
    assert probe["faults"] < probe["rounds"], probe


@needs_glibc
def test_opt_out_leaves_glibcs_defaults():
    probe = _probe("0")
    assert probe["applied"] is False
    # the trimmed heap grows again each round and faults in at least once
    assert probe["faults"] >= probe["rounds"], probe


def test_tune_malloc_honours_the_opt_out_and_never_raises(monkeypatch):
    from chainrule import _malloc_tuning

    monkeypatch.setenv("CHAINRULE_MALLOC_TUNING", "0")
    assert _malloc_tuning.tune_malloc() is False
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.delenv("CHAINRULE_MALLOC_TUNING")
    assert _malloc_tuning.tune_malloc() is False
