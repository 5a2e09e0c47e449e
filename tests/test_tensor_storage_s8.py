"""Tensor.set_, is_set_to, storage_type, as_subclass and the deprecated resize/resize_as against
torch: the same script on both libraries, compared (values, shared memory, classes, warnings,
exception types)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _script(lib):
    """What a user's script does with these methods; every observable result, in order."""
    seen = []
    a = lib.arange(4.0)
    b = lib.zeros(2)
    b.set_(a)
    seen += [tuple(b.shape), b.is_set_to(a), a.is_set_to(b)]
    b[0] = 100.0  # one memory: the write shows in a
    seen.append(a.tolist())
    c = lib.zeros(3).set_(a, 1, (2,), (1,))
    seen += [c.tolist(), c.storage_offset(), c.is_set_to(a), a[1:3].is_set_to(a)]
    c[1] = -5.0
    seen.append(a.tolist())
    d = lib.zeros(5).set_(a.untyped_storage())
    seen += [d.tolist(), tuple(lib.zeros(5).set_().shape)]
    e = lib.zeros(1).set_(a, 0, (2, 2), (1, 2))  # a transposed view of a's memory
    seen.append(e.tolist())
    seen += [a.storage_type().__name__, lib.zeros(1, dtype=lib.int64).storage_type().__name__,
             lib.zeros(1, dtype=lib.bool).storage_type().__name__, a.storage_type() is lib.FloatStorage]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x = lib.arange(6.0, requires_grad=True)
        r = x.resize(2, 3)
        s = x.resize_as(lib.zeros(3, 2))
    seen += [tuple(r.shape), tuple(s.shape), type(r.grad_fn).__name__,
             sorted({str(w.message) for w in caught if "resize" in str(w.message)})]
    (r * lib.arange(6.0).reshape(2, 3)).sum().backward()
    seen.append(x.grad.tolist())

    class Marked(lib.Tensor):
        pass

    y = lib.ones(3, requires_grad=True)
    m = y.as_subclass(Marked)
    seen += [type(m).__name__, isinstance(m, lib.Tensor), m.data_ptr() == y.data_ptr(), type(m.grad_fn).__name__]
    (m * 2).sum().backward()
    seen.append(y.grad.tolist())
    return seen


def test_script_matches_torch():
    assert _script(chainrule) == _script(torch)


def _error(lib, case):
    a = lib.arange(4.0)
    calls = {
        "set_on_leaf_requiring_grad": lambda: lib.zeros(2, requires_grad=True).set_(a),
        "set_dtype_mismatch": lambda: lib.zeros(2, dtype=lib.int64).set_(a),
        "set_not_a_source": lambda: lib.zeros(2).set_(5),
        "set_out_of_bounds": lambda: lib.zeros(2).set_(a, 2, (3,), (1,)),
        "resize_changes_numel": lambda: lib.arange(6.0).resize(4),
        "as_subclass_of_non_tensor": lambda: lib.zeros(2).as_subclass(dict),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            calls[case]()
        except Exception as error:  # the exception's type (and for set_'s dtype, its text) is compared
            return type(error).__name__, str(error) if case in ("set_dtype_mismatch", "resize_changes_numel") else ""
    return None


@pytest.mark.parametrize("case", ["set_on_leaf_requiring_grad", "set_dtype_mismatch", "set_not_a_source",
                                  "resize_changes_numel", "as_subclass_of_non_tensor"])
def test_errors_match_torch(case):
    assert _error(chainrule, case) == _error(torch, case)


def test_set_past_the_memory_is_an_error():
    """torch grows the storage under a set_ past its end (every tensor on it sees the new size);
    chainrule's memory is a fixed array, so it refuses with the sizes it would need."""
    assert _error(torch, "set_out_of_bounds") is None
    assert _error(chainrule, "set_out_of_bounds")[0] == "RuntimeError"


def test_set_shares_until_a_new_array():
    """The documented limit: set_ shares the array, so an op that gives a tensor a new array ends it."""
    a, b = chainrule.arange(4.0), chainrule.zeros(1)
    b.set_(a)
    b.resize_(8)  # torch grows the shared storage; chainrule's b gets a new array of its own
    b[0] = 7.0
    assert a[0].item() == 0.0 and np.asarray(b.tolist())[:4].tolist() == [7.0, 1.0, 2.0, 3.0]
