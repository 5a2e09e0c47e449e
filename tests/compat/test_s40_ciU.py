"""The suite's own machinery for CI time (session 40, lane ciU).

tests/_fresh_process.py runs many fresh-interpreter scripts for one interpreter's start: each
script must see the state a ``python -c script`` sees (torch's warn-once flags unset, ``__main__``,
``<string>``, ``sys.argv == ['-c']``), and a script that fails must fail its own test, by name.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests import _fresh_process

torch = pytest.importorskip("torch")

# torch's deprecated scalar-first overload warns once a process: a script that is not the first
# of its process shows no warning
_WARNS_ONCE = ("import warnings, torch\n"
               "with warnings.catch_warnings(record=True) as caught:\n"
               "    warnings.simplefilter('always')\n"
               "    torch.add(torch.ones(2), 2, torch.ones(2))\n"
               "print(repr([(w.category.__name__, str(w.message), w.filename, w.lineno) for w in caught]))\n")
_WHERE = "import sys\nprint(__name__, sys.argv, repr(sys._getframe().f_code.co_filename))\n"
_FAILS = "import sys\nprint('partial output')\nraise ValueError('the script broke')\n"
_EXITS = "import sys\nsys.exit(3)\n"


@pytest.fixture(scope="module")
def runs():
    return _fresh_process.run_each_fresh("torch", {"first": _WARNS_ONCE, "again": _WARNS_ONCE, "where": _WHERE,
                                                   "fails": _FAILS, "exits": _EXITS})


def _python_c(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)


def test_each_script_sees_the_state_of_a_fresh_interpreter(runs):
    fresh = _python_c(_WARNS_ONCE + _WARNS_ONCE)  # one interpreter: the second call is silent
    first_call, second_call = fresh.stdout.splitlines()
    assert "This overload of add is deprecated" in first_call and second_call == "[]"
    assert runs["first"].output() == runs["again"].output() == first_call + "\n"


def test_a_script_runs_as_python_dash_c_runs_it(runs):
    assert runs["where"].output() == _python_c(_WHERE).stdout == "__main__ ['-c'] '<string>'\n"


def test_a_failing_script_fails_its_test_by_name_and_leaves_the_others_alone(runs):
    assert runs["fails"].returncode == 1 and runs["fails"].stdout == "partial output\n"
    with pytest.raises(pytest.fail.Exception, match=r"(?s)'fails' exited with 1.*ValueError: the script broke"):
        runs["fails"].output()
    assert runs["exits"].returncode == 3 == _python_c(_EXITS).returncode
    with pytest.raises(pytest.fail.Exception, match="'exits' exited with 3"):
        runs["exits"].output()
    assert runs["where"].returncode == 0


def test_batched_runs_every_modules_scripts_once_per_library(monkeypatch):
    started = []
    monkeypatch.setattr(_fresh_process, "_BATCHES", [])
    monkeypatch.setattr(_fresh_process, "_RUNS", {})
    monkeypatch.setattr(_fresh_process, "run_each_fresh", lambda library, scripts: started.append(library) or {
        name: _fresh_process.Run(name, 0, library, "") for name in scripts})
    runs = _fresh_process.batched(lambda library: {"a": f"import {library}", "b": ""})
    other = _fresh_process.batched(lambda library: {"a": "", "c": library})  # another module's, same names

    def refused(library):
        raise ValueError(f"no scripts for {library}")

    failing = _fresh_process.batched(refused)
    assert runs("torch")["a"].stdout == "torch" and runs("torch")["b"].name == "b"
    assert sorted(other("torch")) == ["a", "c"] and other("torch")["c"].name == "c"
    assert runs("chainrule")["a"].stdout == "chainrule"
    assert started == ["torch", "chainrule"]  # one interpreter per library for both modules
    with pytest.raises(ValueError, match="no scripts for torch"):
        failing("torch")
    only_torch = _fresh_process.batched(lambda library: {"d": library}, libraries=("torch",))
    assert only_torch("torch")["d"].stdout == "torch" and started == ["torch", "chainrule", "torch"]
    with pytest.raises(ValueError, match="not 'chainrule'"):
        only_torch("chainrule")
