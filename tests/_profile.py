"""The suite's two profiles, for code that chooses cases (tests/conftest.py marks whole tests).

CI runs a fixed budget of each big parametrised case list; ``CHAINRULE_LONG_TESTS=1`` runs all of
it. The CI subset is the same on every run and on every machine (no hash of a Python object, no
global random state), spread evenly over the list, and keeps at least one case of every key (op,
module, class) so that a regression in any one of them still fails CI.
"""

from __future__ import annotations

import heapq
import itertools
import os
import zlib
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TypeVar

LONG = os.environ.get("CHAINRULE_LONG_TESTS") == "1"

# Gradchecks of big inputs (a float64 conv, a gradient through vmap, a second derivative) check the
# Jacobian along random directions in CI (torch's ``fast_mode``: one vector-Jacobian and one
# Jacobian-vector product against a finite difference per output) and element by element in the
# long profile: a wrong rule still fails both, at a fraction of CI's time.
DIRECTIONAL_GRADCHECK = not LONG

Case = TypeVar("Case")


def _position(seed: int, text: str, modulus: int) -> int:
    """A number in ``range(modulus)`` fixed by the seed and the text (crc32: stable across runs,
    unlike ``hash``)."""
    return zlib.crc32(f"{seed}:{text}".encode()) % modulus


def in_ci(cases: Sequence[Case], budget: int, seed: int,
          key: Callable[[Case], Hashable] | None = None,
          kinds: Callable[[Case], Iterable[Hashable]] | None = None) -> list[Case]:
    """``budget`` of ``cases`` in CI, all of them in the long profile (``CHAINRULE_LONG_TESTS=1``).

    One case of every ``key(case)`` is taken first (which one of the key's cases is fixed by
    ``seed``), then the rest of the budget evenly spread over the cases not yet taken, from an
    offset fixed by ``seed``. When there are more keys than ``budget``, every key still gets its
    one case: coverage of each key wins over the budget. The cases keep their order.

    ``kinds`` instead of ``key``, for a case that is of several kinds at once (a convolution
    geometry's stride, padding and groups kinds): every kind of ``kinds(case)`` gets at least one
    case, taken kind by kind in the order they first appear, a kind an earlier case already covers
    taking none of its own.
    """
    if key is not None and kinds is not None:
        raise TypeError("in_ci takes key or kinds, not both")
    cases = list(cases)
    if LONG or len(cases) <= budget:
        return cases
    kinds_of = kinds if kinds is not None else (lambda case: (case if key is None else key(case),))
    groups: dict[Hashable, list[int]] = {}
    case_kinds = []
    for index, case in enumerate(cases):
        case_kinds.append(tuple(dict.fromkeys(kinds_of(case))))  # a set's order would vary between runs
        for kind in case_kinds[-1]:
            groups.setdefault(kind, []).append(index)
    taken: set[int] = set()
    covered: set[Hashable] = set()
    for kind, members in groups.items():
        if kind not in covered:
            choice = members[_position(seed, repr(kind), len(members))]
            taken.add(choice)
            covered.update(case_kinds[choice])
    rest = [index for index in range(len(cases)) if index not in taken]
    wanted = budget - len(taken)
    if wanted > 0:
        step = len(rest) / wanted
        offset = _position(seed, "offset", 1000) / 1000 * step
        taken.update(rest[int(offset + k * step)] for k in range(wanted))
    return [cases[index] for index in sorted(taken)]


def value_pairs(case: Sequence, strength: int = 2) -> list[tuple]:
    """The kinds of a case that is a tuple of parameters, for ``smallest_cover`` or ``in_ci``: every
    pair (``strength`` 3: every triple) of its positions' values. A product of parameter lists (ops x
    dtypes x modes ...) then keeps in CI a case of every value of each parameter beside every value of
    each other one (the pairwise cover of combinatorial testing: a mismatch that needs two parameters'
    values together still fails CI), a small fraction of the product; the long profile runs the whole
    product. Values are compared by ``repr`` (lists and NaN are kinds too)."""
    return [tuple(x for i in positions for x in (i, repr(case[i])))
            for positions in itertools.combinations(range(len(case)), strength)]


_PLAIN = (str, int, float, complex, bool, bytes, type(None))


def _plain(value) -> bool:
    if type(value) is dict:
        return all(_plain(key) and _plain(v) for key, v in value.items())
    return isinstance(value, _PLAIN) or (type(value) in (tuple, list) and all(_plain(v) for v in value))


def parameter_kinds(items: Sequence, strength: int = 2) -> Callable:
    """``value_pairs`` of the collected cases (pytest items) of one parametrised test, by their
    parameters named by argument: a plain value (numbers, strings, None, tuples, lists and dicts of
    them) by its ``repr``, any other (a module, a function, an object whose repr holds an address)
    by the order in which the cases first pass it, so that both pytest-xdist workers choose the same
    cases. (pytest's ``callspec.indices`` number the cases, not a value's place in its list.)"""
    firsts: dict[str, dict[int, int]] = {}
    for item in items:
        for name, value in item.callspec.params.items():
            if not _plain(value):
                seen = firsts.setdefault(name, {})
                seen.setdefault(id(value), len(seen))

    def kinds(item) -> list[tuple]:
        values = [(name, repr(value) if _plain(value) else ("value", firsts[name][id(value)]))
                  for name, value in sorted(item.callspec.params.items())]
        return value_pairs(values, strength)
    return kinds


def smallest_cover(cases: Sequence[Case], seed: int, kinds: Callable[[Case], Iterable[Hashable]]) -> list[Case]:
    """Few of ``cases`` that still take every kind of ``kinds(case)``: greedily, the case taking the
    most kinds not yet taken first (ties broken by a position fixed by ``seed``; lazily re-counted
    from a heap, as a case's count only falls), all of them in the long profile. The cases keep their
    order. (``in_ci``'s one case a kind takes most of a product when each case is of many kinds.)"""
    cases = list(cases)
    if LONG:
        return cases
    case_kinds = [frozenset(kinds(case)) for case in cases]
    untaken = set().union(*case_kinds)
    heap = [(-len(of), _position(seed, str(index), 1 << 30), index) for index, of in enumerate(case_kinds)]
    heapq.heapify(heap)
    taken = []
    while untaken:
        count, tie, index = heapq.heappop(heap)
        now = len(case_kinds[index] & untaken)
        if now == -count:
            taken.append(index)
            untaken -= case_kinds[index]
        elif now:
            heapq.heappush(heap, (-now, tie, index))
    return [cases[index] for index in sorted(taken)]


def pairwise_in_ci(items: Sequence, seed: int, strength: int = 2) -> list:
    """The collected cases (pytest items) of one test function that CI runs for its
    ``pairwise_in_ci`` mark: few cases that hold every pair of two parameters' values
    (``parameter_kinds``; ``strength`` 3: every triple of three parameters' values, for geometry
    sweeps whose edge cases need three sizes together); every case in the long profile. Their ids are
    the same in both profiles, as the test's parametrize lists are."""
    return smallest_cover(items, seed, parameter_kinds(items, strength))
