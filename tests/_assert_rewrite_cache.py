"""pytest-xdist workers share one assertion rewrite of each test module.

pytest rewrites every test module's ``assert`` statements when it imports the module, and caches
the rewritten code as a ``.pyc`` in ``__pycache__``: unless ``sys.dont_write_bytecode`` is set, as
``PYTHONDONTWRITEBYTECODE=1`` (the CI machine's environment) sets it. There each worker rewrote
all 460 modules again (about 19 s of CPU each on the 2-core machine, every run). pytest still
reads a cached ``.pyc`` it finds, checked against the source's hash, so here each worker, before
it collects, rewrites its share of the modules it will collect (every ``workercount``-th) and
writes them into the cache; at collection each finds its own share and the other's there. A
module the other worker has not written yet is rewritten as always, and a changed source no longer
matches its hash, so it is rewritten too: the cache only ever saves work.

With a pytest whose internals differ from the ones used here, or ``--assert=plain``, nothing is
done and collection rewrites as it always did.
"""

from __future__ import annotations

import fnmatch
import inspect
import os
from pathlib import Path

import pytest

try:
    from _pytest.assertion import rewrite as _rewrite
except ImportError:  # pragma: no cover - pytest moved its internals
    _rewrite = None


def _internals_known() -> bool:
    """Whether pytest's rewrite cache is the one this module writes (pytest 8.1 to 9.x)."""
    names = ("_rewrite_test", "_write_pyc", "_read_pyc", "get_cache_dir", "PYC_TAIL")
    if _rewrite is None or not all(hasattr(_rewrite, name) for name in names):
        return False
    return list(inspect.signature(_rewrite._write_pyc).parameters) == ["state", "co", "source_hash", "pyc"]


def _modules_to_collect(config: pytest.Config) -> list[Path]:
    """The test modules and conftest.py files under the run's paths that pytest would rewrite."""
    patterns = config.getini("python_files")
    paths = [Path(arg.split("::")[0]) for arg in config.args]
    found: set[Path] = set()
    for path in paths:
        path = path if path.is_absolute() else Path(config.invocation_params.dir) / path
        if path.is_file():
            found.add(path.resolve())
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
            found.update(Path(root, name).resolve() for name in files
                         if name == "conftest.py" or any(fnmatch.fnmatch(name, p) for p in patterns))
    return sorted(found)


def share_the_rewrites(config: pytest.Config) -> list[Path]:
    """In a pytest-xdist worker: rewrite this worker's share of the modules it will collect into
    pytest's cache. Returns the modules it wrote."""
    worker = getattr(config, "workerinput", None)
    if worker is None or config.getoption("assertmode") != "rewrite" or not _internals_known():
        return []
    from _pytest.assertion import assertstate_key

    state = config.stash[assertstate_key]
    index, count = int(worker["workerid"].removeprefix("gw")), int(worker["workercount"])
    written = []
    for module in _modules_to_collect(config)[index::count]:
        pyc = _rewrite.get_cache_dir(module) / (module.name[:-3] + _rewrite.PYC_TAIL)
        if _rewrite._read_pyc(module, pyc, state.trace) is not None:
            continue  # already there (an earlier run, or a module pytest has imported)
        try:
            source_hash, code = _rewrite._rewrite_test(module, config)
        except Exception:  # a module that cannot be read or parsed: its collection reports it, as always
            continue
        pyc.parent.mkdir(exist_ok=True)
        if _rewrite._write_pyc(state, code, source_hash, pyc):  # written under its own name, then renamed
            written.append(module)
    return written


def pytest_configure(config: pytest.Config) -> None:
    """As a plugin (``-p tests._assert_rewrite_cache``), for runs outside this suite's conftest."""
    share_the_rewrites(config)
