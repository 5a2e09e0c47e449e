"""The suite's CI profile (tests/_profile.py): the subsets it runs are fixed, spread over the whole
case list and keep every op; the long profile runs everything. And the trials' oracle answers
torch's unittest-method lookup at once in every module that holds it (tools/torch_oracle.py)."""

from __future__ import annotations

import pytest

from tests import _profile
from tests.compat import trial_tools

CASES = [(f"op{k % 37}", k) for k in range(400)]  # 37 ops, 10 or 11 cases each


def _op(case):
    return case[0]


def test_ci_subset_is_fixed_by_the_seed(monkeypatch):
    monkeypatch.setattr(_profile, "LONG", False)
    first = _profile.in_ci(CASES, 120, seed=3, key=_op)
    assert first == _profile.in_ci(CASES, 120, seed=3, key=_op)
    assert first != _profile.in_ci(CASES, 120, seed=4, key=_op)
    assert len(first) == 120
    assert first == sorted(first, key=lambda case: case[1])  # the cases keep their order
    # evenly spread: every tenth of the list holds about a tenth of the subset
    assert all(8 <= sum(40 * part <= k < 40 * (part + 1) for _, k in first) <= 16 for part in range(10))


def test_ci_subset_keeps_every_op_even_past_the_budget(monkeypatch):
    monkeypatch.setattr(_profile, "LONG", False)
    assert {_op(case) for case in _profile.in_ci(CASES, 100, seed=0, key=_op)} == {f"op{k}" for k in range(37)}
    tight = _profile.in_ci(CASES, 10, seed=0, key=_op)  # fewer cases than ops: one of each op
    assert len(tight) == 37 and len({_op(case) for case in tight}) == 37
    assert _profile.in_ci(CASES[:50], 80, seed=0, key=_op) == CASES[:50]  # within the budget: all


def test_long_profile_runs_every_case(monkeypatch):
    monkeypatch.setattr(_profile, "LONG", True)
    assert _profile.in_ci(CASES, 10, seed=0, key=_op) == CASES
    ledger = {"op1": {"float32/function": [0, 1, 2]}, "op0": [3, 4]}
    assert trial_tools.within_budget(ledger) is ledger


def test_ledger_subset_keeps_every_op_and_about_half_the_entries(monkeypatch):
    monkeypatch.setattr(_profile, "LONG", False)
    ledger = {f"op{k}": {"float32/function": list(range(k % 4 + 1)), "float64/function": [0]} for k in range(60)}
    ledger["one"] = [0, 1, 2, 3]  # a list of indices per op
    ledger["scalar"] = {"float16": 0}  # one index per dtype
    entries = 4 + 1 + sum(k % 4 + 2 for k in range(60))
    chosen = trial_tools.within_budget(ledger)
    assert sorted(chosen) == sorted(ledger)
    kept = sum(len(v) if isinstance(v, list) else 1 for value in chosen.values()
               for v in (value.values() if isinstance(value, dict) else [value]))
    assert kept == (entries + 1) // 2
    for name, value in chosen.items():  # entries only from the ledger, in its shape
        for variant, indices in (value.items() if isinstance(value, dict) else [(None, value)]):
            original = ledger[name] if variant is None else ledger[name][variant]
            assert set(indices if isinstance(indices, list) else [indices]) <= set(
                original if isinstance(original, list) else [original])
    assert trial_tools.within_budget(ledger) == chosen


def test_oracle_answers_the_unittest_lookup_in_opinfo_core_too():
    pytest.importorskip("torch")
    pytest.importorskip("expecttest")
    # in a CI worker opinfo.core may be imported before any trial loads the oracle (the hop_db tests)
    from torch.testing._internal import common_utils
    from torch.testing._internal.opinfo import core

    trial_tools.load_tool("torch_oracle")
    assert core.extract_test_fn is common_utils.extract_test_fn
    assert core.extract_test_fn() is None
