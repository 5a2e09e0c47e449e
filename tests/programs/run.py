"""Run the corpus programs on real torch and on chainrule, and compare what they print.

A program is a plain script ``tests/programs/<name>.py`` that imports ``torch``, reads its seed
from the ``PROGRAM_SEED`` environment variable and ends by printing one machine-readable line,
``FINAL key=value key=value ...``. On the ``torch`` backend it runs as it is; on the
``chainrule`` backend the ``_alias`` directory goes first on PYTHONPATH, so ``import torch``
(in the program and in any process it starts) is answered by chainrule — the program is never
edited.

Command line (prints the corpus table: final values and wall time per backend)::

    python tests/programs/run.py [--backend torch|chainrule|both] [--seed N] [program ...]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PROGRAMS_DIR = Path(__file__).resolve().parent
ALIAS_DIR = PROGRAMS_DIR / "_alias"
BACKENDS = ("torch", "chainrule")
# scripts in this directory that are the harness, not programs of the corpus
HARNESS_FILES = {"__init__", "run", "calibrate", "test_programs", "conftest"}
DEFAULT_TIMEOUT_S = 180

_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|\b(?:nan|inf)\b")


def program_names() -> list[str]:
    return sorted(path.stem for path in PROGRAMS_DIR.glob("*.py") if path.stem not in HARNESS_FILES)


def source_sha256(program: str) -> str:
    """The program's source digest: calibration records it, so an edited program whose bands were
    not learned again on torch is caught without running torch."""
    import hashlib

    return hashlib.sha256((PROGRAMS_DIR / f"{program}.py").read_bytes()).hexdigest()


# chainrule's reprs name their own package (``chainrule.float32``, ``chainrule.Size([2, 3])``) where
# torch's name torch: a deliberate difference (README), so the package name is not compared
_PACKAGE = re.compile(r"\bchainrule\.")


def line_shape(line: str) -> str:
    """A printed line with every number replaced by ``#``: what must match between backends."""
    return _NUMBER.sub("#", _PACKAGE.sub("torch.", line.rstrip()))


def line_numbers(line: str) -> list[str]:
    """The numbers printed on a line, as printed."""
    return _NUMBER.findall(line.rstrip())


def is_integer_text(number: str) -> bool:
    return number.lstrip("+-").isdigit()


def parse_final(stdout: str) -> dict[str, float] | None:
    """The ``key=value`` pairs of the last ``FINAL`` line, or None when there is none."""
    final_lines = [line for line in stdout.splitlines() if line.startswith("FINAL ")]
    if not final_lines:
        return None
    values = {}
    for item in final_lines[-1].split()[1:]:
        key, _, value = item.partition("=")
        values[key] = float(value)
    return values


@dataclass
class Result:
    program: str
    backend: str
    seed: int
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    final: dict[str, float] | None = field(default=None)

    @property
    def shapes(self) -> list[str]:
        return [line_shape(line) for line in self.stdout.splitlines()]

    def describe_failure(self) -> str:
        tail = "\n".join(self.stderr.splitlines()[-25:])
        return (f"{self.program} on {self.backend} (seed {self.seed}) exited with {self.returncode}\n"
                f"--- stdout (last lines) ---\n{self._stdout_tail()}\n--- stderr (last lines) ---\n{tail}")

    def _stdout_tail(self) -> str:
        return "\n".join(self.stdout.splitlines()[-10:])


def _chainrule_source_dir() -> str:
    """The directory that holds the chainrule package this process would import."""
    spec = importlib.util.find_spec("chainrule")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("chainrule is not importable: put its src directory on PYTHONPATH")
    return str(Path(list(spec.submodule_search_locations)[0]).parent)


def program_environment(backend: str, seed: int) -> dict[str, str]:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    env = dict(os.environ)
    env["PROGRAM_SEED"] = str(seed)
    env["PYTHONHASHSEED"] = "0"
    # one BLAS/OpenMP thread per program: results do not depend on the machine's core count,
    # and programs run side by side under pytest-xdist do not oversubscribe the cores
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[variable] = "1"
    inherited = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep)
                 if entry and Path(entry).resolve() != ALIAS_DIR]
    if backend == "chainrule":
        inherited = [str(ALIAS_DIR), _chainrule_source_dir(), *inherited]
    env["PYTHONPATH"] = os.pathsep.join(inherited)
    return env


def run_program(program: str, backend: str, seed: int = 0, timeout: float = DEFAULT_TIMEOUT_S) -> Result:
    """Run one program in a fresh interpreter, in a scratch working directory."""
    path = PROGRAMS_DIR / f"{program}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no program {program!r} in {PROGRAMS_DIR}")
    env = program_environment(backend, seed)
    with tempfile.TemporaryDirectory(prefix=f"program-{program}-") as workdir:
        start = time.perf_counter()
        try:
            completed = subprocess.run([sys.executable, str(path)], cwd=workdir, env=env,
                                       capture_output=True, text=True, timeout=timeout)
            returncode, stdout, stderr = completed.returncode, completed.stdout, completed.stderr
        except subprocess.TimeoutExpired as expired:
            returncode = -1
            stdout = _text(expired.stdout)
            stderr = _text(expired.stderr) + f"\n(timed out after {timeout} s)"
        seconds = time.perf_counter() - start
    final = parse_final(stdout) if returncode == 0 else None
    return Result(program, backend, seed, returncode, stdout, stderr, seconds, final)


def _text(output) -> str:
    if output is None:
        return ""
    return output.decode(errors="replace") if isinstance(output, bytes) else output


def _format_final(result: Result | None) -> str:
    if result is None:
        return "-"
    if result.final is None:
        return f"FAILED (exit {result.returncode})"
    return " ".join(f"{key}={value:.4g}" for key, value in result.final.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("programs", nargs="*", help="program names (default: all)")
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show-output", action="store_true", help="print each run's stdout and stderr")
    args = parser.parse_args(argv)
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    programs = args.programs or program_names()
    print("| program | torch final | chainrule final | torch s | chainrule s |")
    print("|---|---|---|---|---|")
    failed = False
    for program in programs:
        results = {backend: run_program(program, backend, args.seed) for backend in backends}
        for result in results.values():
            failed |= result.returncode != 0
            if args.show_output or result.returncode != 0:
                print(result.describe_failure() if result.returncode else result.stdout, file=sys.stderr)
        seconds = {backend: f"{result.seconds:.1f}" for backend, result in results.items()}
        print(f"| {program} | {_format_final(results.get('torch'))} | {_format_final(results.get('chainrule'))} "
              f"| {seconds.get('torch', '-')} | {seconds.get('chainrule', '-')} |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
