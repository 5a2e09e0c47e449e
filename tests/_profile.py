"""The suite's two profiles, for code that chooses cases (tests/conftest.py marks whole tests).

CI runs a fixed budget of each big parametrised case list; ``CHAINRULE_LONG_TESTS=1`` runs all of
it. The CI subset is the same on every run and on every machine (no hash of a Python object, no
global random state), spread evenly over the list, and keeps at least one case of every key (op,
module, class) so that a regression in any one of them still fails CI.
"""

from __future__ import annotations

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
