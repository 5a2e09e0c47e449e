"""Lane ciAA (session 61): CI runs a pairwise (or three-wise) cover of the biggest parametrised
products, marked ``pairwise_in_ci``; the long profile (CHAINRULE_LONG_TESTS=1) runs every case
under the same ids. These tests pin the cover's promises: every pair (triple) of parameter values
kept, the same choice on every run and in both pytest-xdist workers, everything in the long
profile, and the conftest hook deselecting (not skipping) the rest."""

from __future__ import annotations

import itertools
import types

import pytest

from tests import _profile, conftest

PRODUCT = list(itertools.product(["max", "min", "median", "nanmedian"], range(6),
                                 [float("nan"), float("inf"), 2.0, None], ["backward", "grad", "vjp"]))


def _covered(cases, strength):
    return {kind for case in cases for kind in _profile.value_pairs(case, strength)}


@pytest.mark.parametrize("strength", [2, 3])
def test_the_cover_keeps_every_pair_or_triple_of_values_and_few_cases(monkeypatch, strength):
    monkeypatch.setattr(_profile, "LONG", False)
    chosen = _profile.smallest_cover(PRODUCT, 61, lambda case: _profile.value_pairs(case, strength))
    assert _covered(chosen, strength) == _covered(PRODUCT, strength)
    assert len(chosen) < len(PRODUCT) // (4 if strength == 2 else 2)
    assert chosen == [case for case in PRODUCT if case in chosen]  # the product's order kept
    # the same choice on every run (no hash(), no global random state); another seed may differ
    assert chosen == _profile.smallest_cover(PRODUCT, 61, lambda case: _profile.value_pairs(case, strength))


def test_the_long_profile_takes_every_case(monkeypatch):
    monkeypatch.setattr(_profile, "LONG", True)
    assert _profile.smallest_cover(PRODUCT, 61, _profile.value_pairs) == PRODUCT


def test_nan_is_one_kind_and_unplain_values_are_named_by_their_first_case():
    lib_a, lib_b, nan = object(), object(), float("nan")
    items = [types.SimpleNamespace(callspec=types.SimpleNamespace(params={"lib": lib, "scale": scale}))
             for lib in (lib_b, lib_a) for scale in (nan, float("nan"), {"size": 2})]
    kinds = _profile.parameter_kinds(items)
    # an object's repr holds its address: the two xdist workers would name it differently
    assert [kinds(item) for item in items] == [
        [(0, repr(("lib", ("value", lib))), 1, repr(("scale", scale)))]
        for lib in (0, 1) for scale in ("nan", "nan", "{'size': 2}")]


class _Item:
    def __init__(self, name, params, marked=True, strength=None):
        self.nodeid = f"tests/x.py::{name}[{'-'.join(map(str, params.values()))}]"
        self.parent = types.SimpleNamespace(nodeid="tests/x.py")
        self.originalname = name
        self.callspec = types.SimpleNamespace(params=params)
        kwargs = {"seed": 61} if strength is None else {"seed": 61, "strength": strength}
        self._mark = pytest.mark.pairwise_in_ci(**kwargs).mark if marked else None

    def get_closest_marker(self, name):
        return self._mark if name == "pairwise_in_ci" else None


def test_the_hook_deselects_the_uncovered_cases_of_marked_tests_only(monkeypatch):
    monkeypatch.setattr(_profile, "LONG", False)
    marked = [_Item("test_a", dict(zip("abcd", case))) for case in itertools.product(range(3), range(3), range(2), range(4))]
    plain = [_Item("test_b", {"a": a, "b": b}, marked=False) for a in range(3) for b in range(3)]
    items = marked[:40] + plain + marked[40:]
    deselected = []
    config = types.SimpleNamespace(hook=types.SimpleNamespace(pytest_deselected=lambda items: deselected.extend(items)))
    conftest._run_pairwise_covers_in_ci(config, items)
    kept = [item for item in items if item in marked]
    assert all(item in items for item in plain)
    assert len(kept) + len(deselected) == len(marked) and len(kept) < len(marked) // 3
    kinds = _profile.parameter_kinds(marked)
    assert {kind for item in kept for kind in kinds(item)} == {kind for item in marked for kind in kinds(item)}
    # a case asked for alone (by its id) still runs
    one = [marked[7]]
    conftest._run_pairwise_covers_in_ci(config, one)
    assert one == [marked[7]]
