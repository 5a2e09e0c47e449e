"""A differential fuzzer of the data pipeline: random datasets, samplers and DataLoaders built alike on
torch.utils.data and chainrule.utils.data, every batch of two epochs compared.

A case (``draw_case`` in ``_data_pipeline.py``, drawn from its family and seed alone) is a dataset
(TensorDataset, a list, a custom Dataset of tensors / dicts / tuples / namedtuples / NumPy arrays and
scalars / numbers / strings / bytes / None / nested and ragged lists, Subset, ConcatDataset,
random_split, StackDataset, IterableDataset with and without ``__len__``, ChainDataset), a sampler or
batch sampler, and the DataLoader's arguments (batch_size incl. None, shuffle, drop_last, collate_fn,
generator, worker_init_fn without workers, pin_memory, and the combinations torch refuses); or, in
the ``collate`` family, a batch given to ``default_collate`` and a sample to ``default_convert``; the
``workers`` family loads with 1-2 worker processes (persistent or not, prefetch_factor, worker_init_fn). Both
libraries start from the same ``manual_seed`` and generators, so shuffled orders are compared exactly.
We compare every step's outcome: ``len()`` of the dataset, samplers and loader, each batch (structure,
types, dtypes, shapes, strides, values), the default and the loader's generator after two epochs,
errors (builtin class and the first line of torch's message) and warnings.

CI runs ``CI_CASES`` seeds a family; ``CHAINRULE_LONG_TESTS=1`` runs ``LONG_CASES`` (``CASES_OF`` for workers).
``python -m tests.fuzz.test_data_pipeline N [family ...]`` runs N seeds a family and prints the
mismatches, for hunting (``--all``: the listed ones too). A mismatch found and not fixed goes into
``OPEN`` (the case's repr -> the reason), a whole kind of them into ``OPEN_KINDS``, so a new one fails CI.
"""

from __future__ import annotations

import sys

import pytest

import chainrule
from tests._profile import LONG

from ._data_pipeline import FAMILIES, draw_case, first_difference, run_case

CI_CASES, LONG_CASES = 40, 1500
# worker processes cost a fork each (about 2 s of wall time a case on the loaded 2-core machine, little CPU):
# CI runs one such case, the long profile a few dozen
CASES_OF = {"workers": (1, 40)}

# case repr -> why it differs: the open defects, found and not fixed yet
OPEN: dict[str, str] = {}

# (reason, test of (case, problem)): whole kinds of open defect, found and not fixed yet
OPEN_KINDS: list = []


def known(case, problem: str) -> bool:
    """Whether ``problem`` is listed: ``case`` in OPEN, or of an OPEN_KINDS kind."""
    return repr(case) in OPEN or any(test(case, problem) for _, test in OPEN_KINDS)


def mismatch(case) -> str | None:
    """How chainrule's run of ``case`` differs from torch's, or None."""
    import torch

    return first_difference(case, run_case(case, chainrule), run_case(case, torch))


def hunt(per_family: int, families=(), with_known=False, start=0) -> None:
    """Runs ``per_family`` seeds of every family (or of ``families``) and prints the mismatches (the
    listed ones too with ``with_known``: ``--all``)."""
    for family in families or FAMILIES:
        differing = []
        for seed in range(start, start + per_family):
            case = draw_case(family, seed)
            problem = mismatch(case)
            if problem and (with_known or not known(case, problem)):
                differing.append((problem, case))
        print(f"## {family}: {len(differing)} of {per_family} cases differing", flush=True)
        for problem, case in sorted(differing, key=lambda pair: pair[0].split(": ", 1)[-1])[:12]:
            print("   ", problem[:500], "\n       ", repr(case)[:700], flush=True)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_data_pipelines_agree_with_torch(family):
    pytest.importorskip("torch")
    found = []
    ci_cases, long_cases = CASES_OF.get(family, (CI_CASES, LONG_CASES))
    for seed in range(long_cases if LONG else ci_cases):
        case = draw_case(family, seed)
        problem = mismatch(case)
        if problem and not known(case, problem):
            found.append(f"{case!r}: {problem}")
    assert not found, "\n".join(found)


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "--all"]
    hunt(int(arguments[0]) if arguments else 100, arguments[1:], with_known="--all" in sys.argv)
