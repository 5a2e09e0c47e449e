"""scripts/gpu_check.py's device default: the stand-in exists to run 'cuda', so a dry run with it does."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.py"


def _parse(argv):
    spec = importlib.util.spec_from_file_location("gpu_check_args", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.parse_args(argv)


def test_device_defaults():
    assert _parse([]).device == "cuda"
    assert _parse(["--dry-run"]).device == "cpu"
    assert _parse(["--dry-run", "--standin"]).device == "cuda"
    assert _parse(["--dry-run", "--standin", "--device", "cpu"]).device == "cpu"
