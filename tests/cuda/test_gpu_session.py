"""scripts/gpu_session.sh, the one command a lent GPU session runs: without a GPU, its steps run
against a stand-in interpreter that records what it was asked, so a typo in a step, a section name
gpu_check.py lacks, or a lost environment variable shows here rather than in scarce device time."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from chainrule.ops import _cuda_conv

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu_session.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                                reason="needs bash and coreutils' timeout")


def _gpu_check_sections() -> set[str]:
    spec = importlib.util.spec_from_file_location("gpu_check_for_session", ROOT / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return set(module.SECTIONS)


def _run(tmp_path, *steps):
    """The script's steps against a stand-in interpreter: (exit status, stdout, the interpreter's
    calls, the output folder)."""
    tmp_path.mkdir(exist_ok=True)
    recorder = tmp_path / "python"
    log = tmp_path / "calls.txt"
    recorder.write_text(f"#!/bin/sh\necho \"CONV=${{CHAINRULE_CUDA_CONV:-}} $*\" >> {log}\necho done \"$1\"\n")
    recorder.chmod(0o755)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHON=str(recorder), OUT=str(out), PROGRAMS_SECONDS="30")
    result = subprocess.run(["bash", str(SCRIPT), *steps], capture_output=True, text=True, timeout=60, env=env)
    calls = log.read_text().splitlines() if log.exists() else []
    return result.returncode, result.stdout, calls, out


def test_the_first_call_runs_bench_check_and_pytest(tmp_path):
    status, stdout, calls, out = _run(tmp_path)
    assert status == 0, stdout
    assert calls == [
        "CONV=tf32 -m chainrule bench --device cuda",
        "CONV= -m chainrule bench --device cuda conv2d",
        "CONV= scripts/gpu_check.py --sections environment,conv,models,transfers",
        "CONV= -m pytest tests/cuda tests/device -q -p no:cacheprovider -n 12",
    ]
    assert sorted(p.name for p in out.iterdir()) == ["bench.txt", "check.txt", "pytest.txt"]
    assert (out / "bench.txt").read_text().count("done -m") == 2  # both bench runs kept
    assert [line.split(" (")[0] for line in stdout.splitlines() if line.startswith("== ")] == [
        "== bench", "== bench", "== check", "== pytest"]
    assert all(line.startswith("   exit 0 | done") for line in stdout.splitlines() if line.startswith("   exit"))
    # the limits of one call's steps leave room in the device tool's 10 minutes a command
    limits = [int(n) for n in re.findall(r"at most (\d+) s", stdout)]
    assert len(limits) == 4 and sum(limits) <= 570


def test_the_second_call_and_an_unknown_step(tmp_path):
    status, stdout, calls, out = _run(tmp_path, "profile", "programs")
    assert status == 0 and calls == ["CONV= scripts/gpu_profile.py",
                                     "CONV= scripts/gpu_check.py --sections programs --programs-seconds 30"]
    assert sorted(p.name for p in out.iterdir()) == ["profile.txt", "programs.txt"]
    assert sum(int(n) for n in re.findall(r"at most (\d+) s", stdout)) <= 570
    status, stdout, calls, _ = _run(tmp_path / "again", "bench", "registry")
    assert status == 2 and "unknown step registry" in stdout and len(calls) == 2


def test_the_sections_and_the_environment_switch_it_names_exist():
    text = SCRIPT.read_text()
    sections = {name for group in re.findall(r"--sections ([\w,]+)", text) for name in group.split(",")}
    assert sections and sections <= _gpu_check_sections()
    assert f"{_cuda_conv.ENV_VAR}=tf32" in text and "tf32" in _cuda_conv._ENV_CHOICES
