"""docs/distributed.md's program runs on two processes and prints what the doc says it prints."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

pytest.importorskip("mpi4py", reason='MPI tests need mpi4py: pip install "chainrule[mpi]"')

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "distributed.md"


def test_the_documented_program_prints_the_documented_accuracy(tmp_path):
    text = DOC.read_text(encoding="utf-8")
    program = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    claimed = re.search(r"`chainrule run -n 2 program.py` prints `([^`]+)`", text).group(1)
    (tmp_path / "program.py").write_text(program, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-m", "chainrule.cli", "run", "-n", "2", "program.py"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == claimed
