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

from ._data_pipeline import FAMILIES, draw_case, first_difference, run_case
from ._differential import Differential

CI_CASES, LONG_CASES = 40, 1500
# worker processes cost a fork each (about 2 s of wall time a case on the loaded 2-core machine, little CPU):
# CI runs one such case, the long profile a few dozen
CASES_OF = {"workers": (1, 40)}

# case repr -> why it differs: the open defects, found and not fixed yet
OPEN: dict[str, str] = {}

# (reason, test of (case, problem)): whole kinds of open defect, found and not fixed yet
OPEN_KINDS: list = []


def mismatch(case) -> str | None:
    """How chainrule's run of ``case`` differs from torch's, or None."""
    import torch

    return first_difference(case, run_case(case, chainrule), run_case(case, torch))


FUZZER = Differential(list(FAMILIES), draw_case, mismatch, OPEN, OPEN_KINDS, CI_CASES, LONG_CASES, CASES_OF)
known, hunt = FUZZER.known, FUZZER.hunt


@pytest.mark.parametrize("family", list(FAMILIES))
def test_data_pipelines_agree_with_torch(family):
    pytest.importorskip("torch")
    found = FUZZER.unlisted(family)
    assert not found, "\n".join(found)


if __name__ == "__main__":
    FUZZER.main(sys.argv[1:])
