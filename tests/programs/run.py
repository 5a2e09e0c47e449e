"""Run the corpus programs on real torch and on chainrule, and compare what they print.

A program is a plain script ``tests/programs/<name>.py`` that imports ``torch``, reads its seed
from the ``PROGRAM_SEED`` environment variable and ends by printing one machine-readable line,
``FINAL key=value key=value ...``. On the ``torch`` backend it runs as it is; on the
``chainrule`` backend the ``_alias`` directory goes first on PYTHONPATH, so ``import torch``
(in the program and in any process it starts) is answered by chainrule — the program is never
edited.

On a GPU, or on the CPU's stand-in for CuPy (``--standin-cuda``: ``CHAINRULE_STANDIN_CUDA=1`` in the
program's environment, so ``torch.cuda.is_available()`` is True and a program that picks
``'cuda' if torch.cuda.is_available() else 'cpu'`` takes the GPU path), ``--default-device cuda``
runs every program as a torch user moves a CPU script to the GPU without editing it:
``torch.set_default_device('cuda')`` before the script runs (a small launcher that then runs the
script as ``__main__``), so its creation calls with no ``device=`` make CUDA tensors. Processes the
program starts (DataLoader workers) keep the CPU default, as torch's do.

Command line (prints the corpus table: final values and wall time per backend)::

    python tests/programs/run.py [--backend torch|chainrule|both] [--seed N]
                                 [--standin-cuda] [--default-device DEVICE] [program ...]
"""

from __future__ import annotations

import argparse
import importlib.util
import math
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


# chainrule's class names name its own modules (``<class 'chainrule.Tensor'>``) where torch's name torch
# (its reprs print ``torch.float32`` under the alias, ``chainrule.float32`` without): a deliberate
# difference (README), so the package name is not compared
_PACKAGE = re.compile(r"\bchainrule\.")
# a printed line that names the device a program chose (compared only between runs on one device)
_NAMES_DEVICE = re.compile(r"\b(?:cuda|CUDA|cpu|CPU|GPUs?|mps)\b")


_DEVICE_SUFFIX = re.compile(r",\s*device='(?:cuda|mps|xpu)(?::\d+)?'")
_DEVICE_TYPE_NAME = re.compile(r"\b(torch|chainrule)\.cuda\.(\w+Tensor)\b")


# a tensor repr's suffix (", device='cuda:0'", ", grad_fn=<...>") that passed the line width goes on
# a line of its own; the device suffix makes the line longer on the device, so the two runs wrap
# differently: both are compared with such lines joined to the line before
_WRAPPED_SUFFIX = re.compile(r"^\s+(?:device|dtype|grad_fn|requires_grad|layout|size|nnz)=")


def _join_wrapped_suffixes(lines: list[str]) -> list[tuple[str, list[int]]]:
    """Each line with the suffix lines of a tensor repr that follow it joined on (one space
    between), and the indices of the lines joined."""
    joined: list[tuple[str, list[int]]] = []
    for index, line in enumerate(lines):
        if joined and joined[-1][0].endswith(",") and _WRAPPED_SUFFIX.match(line):
            text, indices = joined[-1]
            joined[-1] = (f"{text} {line.lstrip()}", [*indices, index])
        else:
            joined.append((line, [index]))
    return joined


def _without_device_suffix(line: str) -> str:
    """``line`` as the CPU prints it: no device in a tensor's repr, the CPU's legacy type name in a
    message ([torch.FloatTensor [3]] for [torch.cuda.FloatTensor [3]])."""
    return _DEVICE_TYPE_NAME.sub(r"\1.\2", _DEVICE_SUFFIX.sub("", line))


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


def program_environment(backend: str, seed: int, standin_cuda: bool = False) -> dict[str, str]:
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
    if standin_cuda:
        if backend != "chainrule":
            raise ValueError("standin_cuda needs the chainrule backend: the stand-in is chainrule's, torch has none")
        env["CHAINRULE_STANDIN_CUDA"] = "1"
    return env


# runs the script at argv[2] as __main__ (as `python script.py` would: its directory first on
# sys.path, its own argv) after setting the default device argv[1]
_DEFAULT_DEVICE_LAUNCHER = (
    "import os, runpy, sys, torch; device, path = sys.argv[1:3]; torch.set_default_device(device); "
    "sys.argv = sys.argv[2:]; sys.path[0] = os.path.dirname(path); runpy.run_path(path, run_name='__main__')"
)


def program_command(path: Path, default_device: str | None = None) -> list[str]:
    """The command line that runs one program, with ``torch.set_default_device(default_device)``
    first when one is given."""
    if default_device is None:
        return [sys.executable, str(path)]
    return [sys.executable, "-c", _DEFAULT_DEVICE_LAUNCHER, default_device, str(path)]


def run_program(program: str, backend: str, seed: int = 0, timeout: float = DEFAULT_TIMEOUT_S, *,
                standin_cuda: bool = False, default_device: str | None = None,
                extra_env: dict[str, str] | None = None) -> Result:
    """Run one program in a fresh interpreter, in a scratch working directory; ``standin_cuda``
    switches chainrule's CPU stand-in for CuPy on, ``default_device`` is set before the program runs,
    ``extra_env`` adds environment variables (``CUDA_VISIBLE_DEVICES=''`` hides a GPU)."""
    path = PROGRAMS_DIR / f"{program}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no program {program!r} in {PROGRAMS_DIR}")
    env = {**program_environment(backend, seed, standin_cuda), **(extra_env or {})}
    with tempfile.TemporaryDirectory(prefix=f"program-{program}-") as workdir:
        start = time.perf_counter()
        try:
            completed = subprocess.run(program_command(path, default_device), cwd=workdir, env=env,
                                       capture_output=True, text=True, timeout=timeout)
            returncode, stdout, stderr = completed.returncode, completed.stdout, completed.stderr
        except subprocess.TimeoutExpired as expired:
            returncode = -1
            stdout = _text(expired.stdout)
            stderr = _text(expired.stderr) + f"\n(timed out after {timeout} s)"
        seconds = time.perf_counter() - start
    final = parse_final(stdout) if returncode == 0 else None
    return Result(program, backend, seed, returncode, stdout, stderr, seconds, final)


def calibration_problems(result: Result, expected: dict, on_device: bool = False) -> list[str]:
    """What differs between a run and torch's calibration (one program's entry of expected.json):
    the exit status, the printed line shapes and fixed integers, the FINAL keys and whether each
    value lies in its band; empty when the run prints what torch does. test_programs.py asserts the
    same with pytest; this form serves scripts/gpu_check.py, which runs without pytest. A run
    ``on_device`` (calibrated on the CPU) skips the lines that name a device on either side: a
    program prints its choice ('Using device: cuda', 'using CPU, this will be slow', '1 GPUs seen')."""
    if result.returncode != 0:
        return [result.describe_failure()]
    problems = []
    lines = list(zip(result.stdout.splitlines(), result.shapes))
    wanted = list(zip(expected["line_shapes"], expected["fixed_integers"]))
    if on_device:
        # a tensor printed on the device says so in its repr ("tensor([1.], device='cuda:0')"), the
        # same line on the CPU does not: that is dropped first, then lines naming a device skipped
        joined = (_without_device_suffix(line) for line, _ in _join_wrapped_suffixes(result.stdout.splitlines()))
        lines = [(line, line_shape(line)) for line in joined if not _NAMES_DEVICE.search(line)]
        wanted = [(shape, [integer for index in indices for integer in expected["fixed_integers"][index]])
                  for shape, indices in _join_wrapped_suffixes(expected["line_shapes"])]
        wanted = [(shape, fixed) for shape, fixed in wanted if not _NAMES_DEVICE.search(shape)]
    if len(lines) != len(wanted):
        problems.append(f"printed {len(lines)} lines, torch printed {len(wanted)}")
    for number, ((line, got), (want, fixed)) in enumerate(zip(lines, wanted), start=1):
        if got != want:
            problems.append(f"line {number} differs in shape from torch's: {got!r}, torch {want!r}")
        problems.extend(f"line {number} has {printed} where torch printed {integer}: {line!r}"
                        for printed, integer in zip(line_numbers(line), fixed) if integer is not None and printed != integer)
    bands = expected["final"]
    if result.final is None or set(result.final) != set(bands):
        return [*problems, f"FINAL keys {result.final} differ from torch's {list(bands)}"]
    problems.extend(f"{key}={value:.6g} outside the band [{bands[key]['low']:.6g}, {bands[key]['high']:.6g}]"
                    for key, value in result.final.items() if not bands[key]["low"] <= value <= bands[key]["high"])
    return problems


def final_differences(result: Result, reference: Result, expected: dict) -> list[str]:
    """The FINAL values of ``result`` farther from ``reference``'s (the same program on another
    device) than the program's tolerance in expected.json (half its band's width)."""
    if result.final is None or reference.final is None:
        return [f"no FINAL line to compare ({result.backend} exit {result.returncode}, "
                f"{reference.backend} exit {reference.returncode})"]
    bands = expected["final"]
    return [f"{key}={value:.6g}, {reference.final.get(key, math.nan):.6g} on the reference run "
            f"(tolerance {bands[key]['tolerance']:.3g})"
            for key, value in result.final.items()
            if key in bands and not abs(value - reference.final.get(key, math.nan)) <= bands[key]["tolerance"]]


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
    parser.add_argument("--standin-cuda", action="store_true",
                        help="chainrule only: device 'cuda' on the CPU stand-in for CuPy (CHAINRULE_STANDIN_CUDA=1)")
    parser.add_argument("--default-device", default=None, metavar="DEVICE",
                        help="torch.set_default_device(DEVICE) before each program runs (e.g. cuda)")
    args = parser.parse_args(argv)
    if args.standin_cuda and args.backend != "chainrule":
        parser.error("--standin-cuda needs --backend chainrule")
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    programs = args.programs or program_names()
    print("| program | torch final | chainrule final | torch s | chainrule s |")
    print("|---|---|---|---|---|")
    failed = False
    for program in programs:
        results = {backend: run_program(program, backend, args.seed, standin_cuda=args.standin_cuda,
                                        default_device=args.default_device) for backend in backends}
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
