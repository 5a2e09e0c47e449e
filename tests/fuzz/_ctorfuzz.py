"""The shared engine of the hostile-constructor fuzz tests (test_hostile_constructors*.py).

A case is ``body(lib, record)``: it builds something (a module, a loss, an optimizer, a scheduler,
a DataLoader, a distribution) from arguments one of which is hostile, uses it on valid input and
records what came out. ``outcome_mismatch`` runs the body on torch and on chainrule and says how
they differ, or returns None:

* torch raises -> chainrule raises an exception of the same builtin class with a message; one
  raised while building (before the body records ``_stage = "used"``) names the class or the
  argument (``names``), so the user knows what to fix;
* torch succeeds -> chainrule succeeds and every recorded value agrees (shapes, dtypes, numbers).

Hostile values are drawn per kind of parameter from ``HOSTILE``; a ``Lib`` value is built per library
(a tensor, a dtype), so one case runs unchanged on both.
"""

from __future__ import annotations

import math
import re
import zlib

import numpy as np

import chainrule
from tests._profile import in_ci

from .test_indexing_fuzz import _attempt, _builtin_class, _np


class Lib:
    """A value built per library: ``Lib("tensor", [1.0, 2.0])`` is ``lib.tensor([1.0, 2.0])``."""

    def __init__(self, how: str, *args):
        self.how, self.args = how, args

    def build(self, lib):
        if self.how == "dtype":
            return getattr(lib, self.args[0])
        if self.how == "tensor":
            value, dtype = self.args if len(self.args) == 2 else (self.args[0], None)
            return lib.tensor(value, dtype=getattr(lib, dtype) if dtype else None)
        raise AssertionError(self.how)

    def __repr__(self):
        return f"{self.how}{self.args!r}"


def build(value, lib):
    """``value`` with every ``Lib`` inside it (lists, tuples, dicts) built for ``lib``."""
    if isinstance(value, Lib):
        return value.build(lib)
    if isinstance(value, (list, tuple)):
        return type(value)(build(v, lib) for v in value)
    if isinstance(value, dict):
        return {k: build(v, lib) for k, v in value.items()}
    return value


NAN, INF = math.nan, math.inf

# hostile values per kind of parameter; sizes stay small (a huge size would allocate on torch)
HOSTILE = {
    "size": [0, -1, -3, 2.5, 2.0, True, None, "3", "foo", (2, 2), Lib("tensor", 3), NAN],
    "int": [0, -1, -7, 2.5, 2.0, True, None, "3", (2, 2), Lib("tensor", 1), 2 ** 62, NAN],
    "ntuple": [0, -1, 2.5, (2,), (2, 2, 2, 2, 2), (), (0, 2), (-1, 2), [2, 2], (2.5, 2), (None, 2), "2", None],
    "float": [-1.0, 0.0, 1.5, NAN, INF, -INF, "0.5", None, True, Lib("tensor", 0.5), 1e308, -1e-12, 3],
    "prob": [-0.1, 0.0, 1.0, 1.5, NAN, INF, "0.5", None, Lib("tensor", 0.5), 1],
    "bool": [None, "no", 2, 0.5, Lib("tensor", True)],
    "str": ["foo", "", None, 3, "MEAN", "Mean"],
    "dtype": [Lib("dtype", "int64"), Lib("dtype", "bool"), Lib("dtype", "float16"), "float32", 3],
    "weight": [Lib("tensor", [1.0, 2.0]), Lib("tensor", [1, 2, 3], "int64"), Lib("tensor", [-1.0, 0.0, 2.0]),
               [1.0, 2.0, 3.0], Lib("tensor", [[1.0, 2.0, 3.0]]), Lib("tensor", [NAN, 1.0, 1.0]), "foo", 3.0],
}


def message_names(error: BaseException, names) -> bool:
    """Whether ``error``'s message names one of ``names`` (a class, an argument), in any case and
    spelling (``kernel_size`` or ``kernel size``)."""
    message = str(error).lower().replace("_", " ")
    return any(n.lower().replace("_", " ") in message for n in names if n)


def outcome_mismatch(body, names, rtol=1e-6, atol=1e-9, allow=None) -> str | None:
    """How chainrule's outcome of ``body`` differs from torch's, or None where it does not (or where
    ``allow(torch's error, chainrule's error)`` says the difference is a deliberate one)."""
    theirs = _attempt(body, _torch())
    ours = _attempt(body, chainrule)
    if allow is not None and allow(theirs.error, ours.error):
        return None
    if theirs.error is not None:
        expected = _builtin_class(theirs.error)
        if ours.error is None:
            return f"torch raised {expected.__name__}({_short(theirs.error)}), chainrule did not"
        if not isinstance(ours.error, expected):
            return (f"torch raised {expected.__name__}({_short(theirs.error)}), "
                    f"chainrule {type(ours.error).__name__}({_short(ours.error)})")
        if str(ours.error) == str(theirs.error):  # torch's own words (whatever they name)
            return None
        # a construction error names the class or the argument; one in the later use (a forward, a
        # step) comes from the op that failed, as torch's does, and needs only the same class
        built = ours.values.get("_stage") == "used"
        if not built and not message_names(ours.error, names):
            return f"chainrule's {type(ours.error).__name__}({_short(ours.error)}) names none of {names}"
        if re.search(r"\barray\b|tuple index|(for|along) axis|numpy", str(ours.error)):
            return f"NumPy's words in chainrule's {_short(ours.error)}"
        return None
    if ours.error is not None:
        return f"chainrule raised {type(ours.error).__name__}({_short(ours.error)}); torch did not"
    theirs.values.pop("_stage", None)
    ours.values.pop("_stage", None)
    return _values_mismatch(theirs.values, ours.values, rtol, atol)


def _values_mismatch(theirs: dict, ours: dict, rtol, atol) -> str | None:
    if ours.keys() != theirs.keys():
        return f"recorded {sorted(ours)} vs torch {sorted(theirs)}"
    for name, t in theirs.items():
        o = ours[name]
        if t is None or isinstance(t, (bool, int, float, str, tuple, list)) and not _tensor_list(t):
            if not _same_plain(o, t, rtol, atol):
                return f"{name}: {o!r} vs torch {t!r}"
            continue
        if isinstance(t, (tuple, list)):
            if len(o) != len(t):
                return f"{name}: {len(o)} items vs torch {len(t)}"
            pairs = list(zip(o, t))
        else:
            pairs = [(o, t)]
        for o_k, t_k in pairs:
            o_k, t_k = _np(o_k), _np(t_k)
            if o_k.shape != t_k.shape:
                return f"{name}: shape {o_k.shape} vs torch {t_k.shape}"
            if o_k.dtype != t_k.dtype:
                return f"{name}: dtype {o_k.dtype} vs torch {t_k.dtype}"
            if t_k.dtype.kind in "fc":
                if not np.allclose(o_k, t_k, rtol=rtol, atol=atol, equal_nan=True):
                    return f"{name}: values {o_k.ravel()[:6]} vs torch {t_k.ravel()[:6]}"
            elif not np.array_equal(o_k, t_k):
                return f"{name}: values {o_k.ravel()[:6]} vs torch {t_k.ravel()[:6]}"
    return None


def _tensor_list(value) -> bool:
    return isinstance(value, (tuple, list)) and any(hasattr(v, "detach") for v in value)


def _same_plain(o, t, rtol, atol) -> bool:
    if isinstance(t, float) and isinstance(o, (int, float)):
        return math.isclose(o, t, rel_tol=rtol, abs_tol=atol) or (math.isnan(o) and math.isnan(t))
    if isinstance(t, (tuple, list)) and isinstance(o, (tuple, list)) and len(o) == len(t):
        return all(_same_plain(a, b, rtol, atol) for a, b in zip(o, t))
    return o == t


def _short(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return text[:160]


def _torch():
    import torch  # the oracle; imported here so the tests skip cleanly without it
    return torch


def sample(cases: list, budget: int, seed: int, key=lambda case: case[0]) -> list:
    """``budget`` of ``cases``, the same on every run, with at least one case of every class
    (``key``: a case's first item); all of them in the long profile (``CHAINRULE_LONG_TESTS=1``).
    tests/_profile.py's ``in_ci`` chooses them."""
    return in_ci(cases, budget, seed, key=key)


def hostile_for(kind: str, base) -> list:
    """The hostile values of ``kind`` that differ from the valid ``base``."""
    return [v for v in HOSTILE[kind] if not (type(v) is type(base) and v == base)]


def mismatches(cases: list, describe, run) -> list[tuple[str, str]]:
    """(description, how it differs) of every case of ``cases`` whose ``run(case, k)`` finds a difference."""
    found = []
    for case in cases:
        what = describe(case)
        problem = run(case, zlib.crc32(what.encode()))  # a case's data depends on the case alone
        if problem:
            found.append((what, problem))
    return found


def assert_no_new_mismatches(found: list[tuple[str, str]], total: int) -> None:
    """Fails on every mismatch not yet listed in _ctorfuzz_open.OPEN (the ones found and not fixed)."""
    from ._ctorfuzz_open import OPEN
    new = [f"{what}: {problem}" for what, problem in found if what not in OPEN]
    assert not new, f"{len(new)} of {total} cases differ from torch:\n" + "\n".join(new)
