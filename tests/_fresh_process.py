"""Scripts that must each run as the first thing of a fresh interpreter (torch warns once a process,
for all its deprecated overloads), many of them for one interpreter's start.

Starting Python and importing torch or chainrule costs seconds on the 2-core CI machine; a fork of
an interpreter that has imported the library and done nothing else costs milliseconds and starts
each script from the same state a ``python -c script`` would: no warning shown yet, no op run.
``run_each_fresh`` starts one interpreter, imports the library, then forks one child per script;
each child's stdout, stderr and exit status come back under the script's name, so a test still
checks (and fails for) one script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

import chainrule

# chainrule's src directory first, as the tests' own ``PYTHONPATH``
_SOURCE_DIR = str(Path(chainrule.__file__).resolve().parents[1])

# Reads {name: script} from stdin; imports the library (argv[1]) and nothing else, then runs every
# script in a forked child whose file descriptors 1 and 2 are temporary files, as `python -c script`
# (``__main__``, ``<string>``, sys.argv ``['-c']``) would; prints {name: [status, stdout, stderr]}.
_DRIVER = r"""
import importlib, json, os, sys, tempfile, traceback
scripts = json.loads(sys.stdin.read())
importlib.import_module(sys.argv[1])
sys.argv = ["-c"]
results = {}
for name, script in scripts.items():
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        status = 0
        try:
            exec(compile(script, "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
        except SystemExit as exit:
            status = exit.code if isinstance(exit.code, int) else (exit.code is not None)
        except BaseException:
            traceback.print_exc()
            status = 1
        sys.stdout.flush(); sys.stderr.flush()
        os._exit(status)
    status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    results[name] = [status] + [(f.seek(0), f.read().decode(errors="replace"))[1] for f in (out, err)]
print(json.dumps(results))
"""


@dataclass(frozen=True)
class Run:
    """One script's run: its exit status and what it wrote."""

    name: str
    returncode: int
    stdout: str
    stderr: str

    def output(self) -> str:
        """The script's stdout; a failure (as ``subprocess.run(check=True)``) names the script."""
        if self.returncode != 0:
            pytest.fail(f"the script {self.name!r} exited with {self.returncode} in its fresh process:\n{self.stderr}")
        return self.stdout


def run_each_fresh(library: str, scripts: dict[str, str], env: dict[str, str] | None = None,
                   timeout: float = 900) -> dict[str, Run]:
    """Each of ``scripts`` run as the first code of a fresh interpreter that has imported ``library``
    (``"torch"`` or ``"chainrule"``): {name: Run}. ``env`` is the interpreter's environment
    (``os.environ`` with chainrule's src on ``PYTHONPATH`` when not given)."""
    if env is None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([_SOURCE_DIR, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", _DRIVER, library], input=json.dumps(scripts), env=env,
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"the fresh-process driver for {library} exited with {done.returncode}:\n{done.stderr}")
    return {name: Run(name, *result) for name, result in json.loads(done.stdout).items()}


# every batched() test module's script maker, in import order (collection imports them all before a
# test runs), and the runs made so far: {(maker's index, library): {name: Run} or the maker's error}
_BATCHES: list = []
_RUNS: dict = {}


def batched(make_scripts, libraries: tuple[str, ...] = ("torch", "chainrule")):
    """Memoise a ``library -> {name: script}`` function as ``library -> {name: Run}``. The first
    test to ask for a library's runs runs the scripts of every batched module not yet run for it
    (among the modules that name it in ``libraries``) in one interpreter: one start of torch
    (seconds on the CI machine) serves all of this pytest process's modules, whichever of their
    tests asks first."""
    index = len(_BATCHES)
    _BATCHES.append((make_scripts, libraries))

    def runs(library: str) -> dict[str, Run]:
        if (index, library) not in _RUNS:
            if library not in libraries:
                raise ValueError(f"these scripts are batched for {libraries}, not {library!r}")
            _run_pending(library)
        made = _RUNS[(index, library)]
        if isinstance(made, BaseException):
            raise made
        return made
    return runs


def _run_pending(library: str) -> None:
    pending, scripts = [], {}
    for index, (make_scripts, libraries) in enumerate(_BATCHES):
        if (index, library) in _RUNS or library not in libraries:
            continue
        try:
            made = make_scripts(library)
        except Exception as error:  # (raised again for that module's tests alone)
            _RUNS[(index, library)] = error
            continue
        pending.append((index, list(made)))
        scripts.update({f"{index}\x1f{name}": script for name, script in made.items()})
    done = run_each_fresh(library, scripts) if scripts else {}
    for index, names in pending:
        _RUNS[(index, library)] = {name: replace(done[f"{index}\x1f{name}"], name=name) for name in names}
