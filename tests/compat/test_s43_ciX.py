"""Session 43, lane ciX: the suite's CI budgets keep what the long profile (CHAINRULE_LONG_TESTS=1)
proves, kind by kind."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import providers

from tests import _profile

torch = pytest.importorskip("torch")

from tests.fuzz import conftest as fuzz_conftest  # noqa: E402  (after torch: the fuzz module needs it)
from tests.fuzz import test_differential as fuzz  # noqa: E402

# How many (op, kind) pairs of the 981 the fuzz's 25 cases an op draw its 12 CI cases may miss: 2 in
# one process, another 2 after other draws in it (flatten's transposed input, cross_entropy's empty
# one; avg_pool1d's strided, clamp's transposed), each op keeping cases of its other kinds in CI
FUZZ_KINDS_CI_MAY_MISS = 4


def _drawn_kinds(fuzz_op, examples: int) -> set:
    """The dtypes, layouts, 0-d and empty tensor arguments of the op's first ``examples`` derandomized
    cases, drawn as test_matches_torch draws them (nothing is run)."""
    seen: set = set()

    @settings(settings.get_profile("chainrule-fuzz-ci"), max_examples=examples)
    @given(data=st.data())
    def draw(data):
        inputs, _ = data.draw(st.composite(lambda draw: fuzz_op.case(draw))(), label="case")
        data.draw(st.integers(0, 1000), label="upstream")
        for arg in inputs:
            if isinstance(arg, fuzz.Arg):
                seen.update({("dtype", str(arg.array.dtype)), ("layout", arg.layout),
                             ("0-d", arg.array.ndim == 0), ("empty", arg.array.size == 0)})

    draw()
    return seen


@pytest.mark.long  # 38 s of CPU to draw both budgets: more than CI's 12 cases an op save
def test_the_fuzz_ci_budget_draws_every_kind_the_long_profile_draws(monkeypatch):
    # as tests/fuzz/conftest.py does: no constants of loaded modules in the draws
    monkeypatch.setattr(providers, "_get_local_constants", lambda: providers.Constants())
    providers.CONSTANTS_CACHE.cache.clear()
    missed, pairs = set(), 0
    for fuzz_op in fuzz.OPS:
        long_kinds = _drawn_kinds(fuzz_op, fuzz_conftest.LONG_BUDGET)
        pairs += len(long_kinds)
        missed |= {(fuzz_op.name, kind) for kind in long_kinds - _drawn_kinds(fuzz_op, fuzz_conftest.CI_BUDGET)}
    providers.CONSTANTS_CACHE.cache.clear()
    assert pairs > 900  # every op drew its kinds
    assert len(missed) <= FUZZ_KINDS_CI_MAY_MISS, sorted(missed)


def test_the_blocked_batch_norm_ci_subset_takes_every_kind_of_the_grid(monkeypatch):
    from tests.compat import test_s30_perf4 as perf4

    long_profile = _profile.LONG
    monkeypatch.setattr(_profile, "LONG", False)  # CI's subset, in either profile
    runnable = [case for case in perf4._GRID if not (case[0][0] and len(case[2]) < 4)]
    ci = _profile.in_ci(runnable, 36, seed=43, kinds=perf4._grid_kinds)
    assert len(runnable) == 80 and len(ci) == 36
    grid_kinds = {kind for case in runnable for kind in perf4._grid_kinds(case)}
    assert grid_kinds == {kind for case in ci for kind in perf4._grid_kinds(case)}
    assert len(grid_kinds) == 22 + 8 + 14  # (dtype, shape), (dtype, settings), (settings, rank)
    assert perf4._CASES == (perf4._GRID if long_profile else ci)
