"""Session 44, lane progBV (listen_attend_spell, retinanet_focal_anchors, music_transformer_relative):
what writing the lane's programs found, each checked against torch 2.13 on the same inputs."""

import math
import sys
import warnings

import pytest

import chainrule

torch = pytest.importorskip("torch")


_CONVERSIONS = {
    "float": float,
    "complex": complex,
    "math.isnan": math.isnan,
    "percent format": lambda x: "%.3f" % x,  # noqa: UP031  (the idiom under test)
    "int": int,
    "item": lambda x: x.item(),
    "float of a detached": lambda x: float(x.detach()),
}


def _warnings_of(lib, convert):
    x = lib.ones(1, requires_grad=True) * 2
    was = lib.is_warn_always_enabled()
    lib.set_warn_always(True)  # torch's TORCH_WARN_ONCE may have fired earlier in this process
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            convert(x)
            convert(x)
    finally:
        lib.set_warn_always(was)
    return [(w.category, str(w.message), w.filename) for w in caught]


@pytest.mark.parametrize("conversion", list(_CONVERSIONS))
def test_scalar_of_a_recorded_tensor_warns_as_torch_under_warn_always(conversion):
    """``epoch_cls += float(classification_loss)`` (yhenon's RetinaNet): torch's warning ends in
    "(Triggered internally at .../python_variable_methods.cpp:822.)" and, being TORCH_WARN_ONCE,
    repeats at every call under set_warn_always(True); chainrule's had no tail and never repeated."""
    convert = _CONVERSIONS[conversion]
    expected = _warnings_of(torch, convert)
    got = _warnings_of(chainrule, convert)
    assert got == expected
    assert all(filename == __file__ for _, _, filename in got)


def _read_only_array():
    import numpy as np

    array = np.arange(3.0)
    array.setflags(write=False)
    return array


_CXX_WARNINGS = {
    ".grad of a non-leaf": lambda lib: (lib.ones(2, requires_grad=True) * 2).grad,
    ".T of a 0-d tensor": lambda lib: lib.tensor(1.0).T,
    ".T of a 3-d tensor": lambda lib: lib.ones(2, 3, 4).T,
    "torch.lu": lambda lib: lib.lu(lib.eye(2)),
    "uint8 mask index": lambda lib: lib.arange(3)[lib.tensor([1, 0, 1], dtype=lib.uint8)],
    "from_numpy of a read-only array": lambda lib: lib.from_numpy(_read_only_array()),
    "as_tensor of a read-only array": lambda lib: lib.as_tensor(_read_only_array()),
}


@pytest.mark.parametrize("call", list(_CXX_WARNINGS))
def test_cxx_warnings_keep_torchs_triggered_internally_tail(call):
    """The probe around float()'s warning: torch's C++ warnings end in "(Triggered internally at
    <torch source>:<line>.)"; these five lacked the tail (and .grad's text was an older torch's), and
    the read-only array warning never repeated under set_warn_always(True)."""
    make = _CXX_WARNINGS[call]

    def caught(lib):
        was = lib.is_warn_always_enabled()
        lib.set_warn_always(True)
        try:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                make(lib)
        finally:
            lib.set_warn_always(was)
        return [(w.category, str(w.message)) for w in seen]

    expected = caught(torch)
    assert expected and all("(Triggered internally at /__w/pytorch/pytorch/" in m for _, m in expected)
    assert caught(chainrule) == expected


_NDARRAY_LISTS = {
    "three 1-d": lambda lib, np: lib.tensor([np.ones(2)] * 3),
    "nested": lambda lib, np: lib.tensor([[np.ones(2)], [np.ones(2)]]),
    "beside a list": lambda lib, np: lib.tensor([[1, 2], np.array([3, 4])]),
    "0-d in a tuple": lambda lib, np: lib.as_tensor((np.int64(3), np.array(2))),
    "LongTensor": lambda lib, np: lib.LongTensor([np.asarray([3, 1]), np.asarray([1, 5])]),
    "two 2x2": lambda lib, np: lib.tensor([np.ones((2, 2)), np.ones((2, 2))]),
    "3-d": lambda lib, np: lib.tensor([np.ones((3, 2, 2))]),
    "empty rows": lambda lib, np: lib.tensor([np.ones((0, 2))]),
    "empty columns": lambda lib, np: lib.tensor([np.ones((2, 0))]),
}


@pytest.mark.parametrize("build", list(_NDARRAY_LISTS))
def test_list_of_ndarrays_warns_per_array_met_under_warn_always(build):
    """torch's TORCH_WARN_ONCE for a list of ndarrays fires, under set_warn_always(True), at every
    array it meets copying the values (each row of a 2-d array too), and not at all when there are
    no values to copy; chainrule warned once a call, and for an empty result."""
    import numpy as np

    def count(lib):
        was = lib.is_warn_always_enabled()
        lib.set_warn_always(True)
        try:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                _NDARRAY_LISTS[build](lib, np)
        finally:
            lib.set_warn_always(was)
        return [str(w.message) for w in seen]

    assert count(chainrule) == count(torch)


_ONCE_PROBE = """
import sys, warnings, numpy as np
import {lib} as lib
x = lib.ones(1, requires_grad=True) * 2
array = np.ones(2)
array.setflags(write=False)
calls = [lambda: float(x), lambda: lib.from_numpy(array), lambda: lib.tensor([np.ones(2)])]
def counts():
    out = []
    for call in calls:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            call()
        out.append(len(seen))
    return out
lib.set_warn_always(True)
first = counts()
lib.set_warn_always(False)
print([first, counts(), counts()])
"""


def test_warnings_under_warn_always_spend_no_once():
    """torch's TORCH_WARN_ONCE warns under set_warn_always(True) without using up its once: the next
    call after it is switched off still warns (float() of a recorded tensor, a read-only array, a
    list of ndarrays); chainrule had spent it. Each library in a fresh process (the once is a
    process's)."""
    import os
    import subprocess

    def run(lib):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        done = subprocess.run([sys.executable, "-c", _ONCE_PROBE.format(lib=lib)], capture_output=True,
                              text=True, timeout=120, check=True, env=env)
        return done.stdout.strip()

    expected = run("torch")
    assert expected == "[[1, 1, 1], [1, 1, 1], [0, 0, 0]]"
    assert run("chainrule") == expected
