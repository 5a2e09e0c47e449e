"""Building a tensor from a Python list that holds NumPy arrays (graykode/nlp-tutorial's
``torch.LongTensor([np.asarray(ids) for ids in sentences])``): torch warns once a process that
this is slow, naming the script's line, and builds the same tensor. Each case runs in a fresh
torch process (its warning is once a process, in C++) and in chainrule with the flag reset."""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
import warnings

import numpy as np
import pytest

import chainrule
from chainrule.ops import creation

torch = pytest.importorskip("torch")

# (expression over `lib` and `np`); each builds a tensor from data holding a NumPy array somewhere
HOLDING_ARRAYS = [
    "lib.LongTensor([np.asarray([3, 1, 4]), np.asarray([1, 5, 9])])",
    "lib.tensor([[1, 2], np.array([3, 4])])",
    "lib.tensor([[np.array([1.5, 2.5])]], dtype=lib.float64)",
    "lib.as_tensor((np.int64(3), np.array(2)))",
]
PLAIN = ["lib.tensor([[1, 2], [3, 4]])", "lib.tensor(np.array([[1, 2]]))", "lib.tensor([np.float32(1.5), 2.0])"]

# One torch process builds every expression, each in a child forked before torch has warned (its
# warning is once a process, so each child warns afresh), which costs one torch import, not seven
_PROBE = """
import os, warnings, numpy as np, torch as lib
for expr in {exprs!r}:
    read_end, write_end = os.pipe()
    if os.fork() == 0:
        os.close(read_end)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            built = eval(expr)
            again = eval(expr)
        lines = [repr(built.tolist()) + " " + str(built.dtype).split(".")[-1]]
        lines += [" ".join((w.category.__name__, str(w.message), str(w.filename == "<string>"))) for w in seen]
        os.write(write_end, "\\n".join(lines).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as answer:
        print(repr(answer.read().decode()))
    os.wait()
"""


@functools.cache
def _torch_runs() -> dict:
    exprs = HOLDING_ARRAYS + PLAIN
    done = subprocess.run([sys.executable, "-c", _PROBE.format(exprs=exprs)], capture_output=True, text=True,
                          timeout=120, check=True)
    return {expr: ast.literal_eval(line).split("\n") for expr, line in zip(exprs, done.stdout.splitlines())}


def _torch_run(expr):
    return _torch_runs()[expr]


def _chainrule_run(expr, monkeypatch):
    monkeypatch.setattr(chainrule._config, "_warned_once", set())
    code = compile(expr, __file__, "eval")  # so that the warning's line is in this file, as the script's
    names = {"lib": chainrule, "np": np}
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        built = eval(code, names)
        eval(code, names)  # a second build in the same process stays silent
    lines = [f"{built.tolist()!r} {str(built.dtype).split('.')[-1]}"]
    lines += [f"{w.category.__name__} {w.message} {w.filename == __file__}" for w in seen]
    return lines


@pytest.mark.parametrize("expr", HOLDING_ARRAYS)
def test_list_holding_arrays_warns_once_at_the_callers_line(expr, monkeypatch):
    expected = _torch_run(expr)
    assert len(expected) == 2 and expected[1].startswith("UserWarning Creating a tensor from a list of numpy")
    assert _chainrule_run(expr, monkeypatch) == expected


def test_plain_data_does_not_warn(monkeypatch):
    for expr in PLAIN:
        assert _chainrule_run(expr, monkeypatch) == _torch_run(expr)


def test_long_lists_of_numbers_are_searched_without_a_python_loop_per_number():
    # the search looks at one nesting level at a time; a NumPy array deep inside is still found
    numbers = [[float(j) for j in range(4)] for _ in range(1000)]
    assert creation._nested_types(numbers) == {float}
    assert creation._nested_types(numbers + [[0.0, 1.0, 2.0, np.float64(3.0)], [np.zeros(4)]]) == {
        float, np.float64, np.ndarray}
