"""Two things the session-17 helpers met and left: ``as_strided`` of a tensor viewed with another
dtype read the storage in the storage's dtype (``zeros(4).view(int16).as_strided(...)`` came back
float32), and torch's Python 2 spellings ``Tensor.__div__``/``__idiv__`` were missing."""

from __future__ import annotations

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _strided_reads(lib):
    as_int32 = lib.arange(6.0).view(lib.int32)
    offset = lib.arange(6, dtype=lib.int64).view(lib.float64)[1:].view(lib.int32)  # storage offset 2, in int32s
    halves = lib.zeros(4).view(lib.int16).as_strided((2,), (1,))
    return [
        str(halves.dtype).split(".")[-1],
        as_int32.as_strided((3,), (2,)).tolist(),
        as_int32.as_strided((2, 2), (1, 2), 1).tolist(),
        offset.storage_offset(),
        offset.as_strided((3,), (1,)).tolist(),
    ]


def test_as_strided_of_a_dtype_view_strides_in_the_views_own_elements():
    assert _strided_reads(chainrule) == _strided_reads(torch)


def test_as_strided_of_a_dtype_view_writes_through_and_checks_bounds_in_its_elements():
    def run(lib):
        floats = lib.arange(4.0)
        floats.view(lib.int32).as_strided((2,), (2,), 1).fill_(0)
        with pytest.raises(RuntimeError) as refused:
            lib.arange(6.0).view(lib.int32).as_strided((7,), (1,))
        return floats.tolist(), str(refused.value)

    assert run(chainrule) == run(torch)


def test_python2_division_spellings_are_true_division():
    def run(lib):
        x = lib.tensor([3.0, 4.0])
        quotient = x.__div__(2).tolist()
        x.__idiv__(lib.tensor(2.0))
        return quotient, x.tolist(), lib.Tensor.__itruediv__ is lib.Tensor.__idiv__

    assert run(chainrule) == run(torch)
