"""The scaffolding the seed-drawn differential fuzzers share (tests/fuzz/test_module_api.py,
test_data_pipeline.py, test_autograd_programs.py, test_serialization.py, test_distributions.py).

A fuzzer draws a case from a family and a seed alone (``draw_case(family, seed)``), runs it on torch and on
chainrule and names the first difference (``mismatch(case)``, None when they agree). A mismatch found and
not fixed is listed: the case's repr in ``OPEN`` (-> the reason), or a whole kind of them in ``OPEN_KINDS``
(reason, test of (case, problem)), so CI fails only on a new one. ``Differential`` holds these and gives the
per-family test's loop (``unlisted``), the hunt (``hunt``: many seeds, the mismatches printed) and the
command line (``main``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from tests._profile import LONG


@dataclass
class Differential:
    """One fuzzer's families, its case drawing and comparison, its listed mismatches and its budgets:
    ``ci_cases`` seeds a family in CI, ``long_cases`` under ``CHAINRULE_LONG_TESTS=1``, ``cases_of`` a
    family's own (ci, long) pair where it differs."""

    families: Sequence[str]
    draw_case: Callable[[str, int], object]
    mismatch: Callable[[object], str | None]
    open_cases: Mapping[str, str]
    open_kinds: Sequence[tuple[str, Callable[[object, str], bool]]]
    ci_cases: int
    long_cases: int
    cases_of: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def known(self, case, problem: str) -> bool:
        """Whether ``problem`` is listed: ``case`` in OPEN, or of an OPEN_KINDS kind."""
        return repr(case) in self.open_cases or any(test(case, problem) for _, test in self.open_kinds)

    def seeds(self, family: str) -> range:
        """The seeds the test of ``family`` runs in this profile."""
        ci_cases, long_cases = self.cases_of.get(family, (self.ci_cases, self.long_cases))
        return range(long_cases if LONG else ci_cases)

    def unlisted(self, family: str) -> list[str]:
        """The mismatches of the profile's seeds of ``family`` that are not listed, as 'case: problem'
        lines (what the per-family test asserts empty)."""
        found = []
        for seed in self.seeds(family):
            case = self.draw_case(family, seed)
            problem = self.mismatch(case)
            if problem and not self.known(case, problem):
                found.append(f"{case!r}: {problem}")
        return found

    def hunt(self, per_family: int, families=(), with_known=False, start=0) -> None:
        """Runs ``per_family`` seeds (from ``start``) of every family (or of ``families``) and prints the
        mismatches (the listed ones too with ``with_known``)."""
        for family in families or self.families:
            differing = []
            for seed in range(start, start + per_family):
                case = self.draw_case(family, seed)
                problem = self.mismatch(case)
                if problem and (with_known or not self.known(case, problem)):
                    differing.append((problem, case))
            print(f"## {family}: {len(differing)} of {per_family} cases differing", flush=True)
            for problem, case in sorted(differing, key=lambda pair: pair[0].split(": ", 1)[-1])[:12]:
                print("   ", problem[:500], "\n       ", repr(case)[:700], flush=True)

    def main(self, arguments: Sequence[str], per_family: int = 100) -> None:
        """``python -m tests.fuzz.test_X [N] [family ...] [--all] [--start=K]``: hunts N seeds a family
        (from K; ``--all``: the listed mismatches too)."""
        plain = [a for a in arguments if a != "--all" and not a.startswith("--start=")]
        starts = [int(a.split("=", 1)[1]) for a in arguments if a.startswith("--start=")]
        self.hunt(int(plain[0]) if plain else per_family, plain[1:], with_known="--all" in arguments,
                  start=starts[0] if starts else 0)
