"""torch's own optimizer database, run on chainrule: every OptimizerInfo of
``torch.testing._internal.common_optimizers.optim_db`` through tools/torch_optiminfo_trial.py on a fixed
budget (float32, each OptimizerInput without the implementation-flag variants, real and complex
parameters, two param groups, the error inputs, the scheduler inputs and the trial's extra schedulers).
Every entry must agree with torch, but the differences named below with their reasons. The full trial
(float64, foreach/differentiable/fused variants) runs outside CI: ``python tools/torch_optiminfo_trial.py
run --out DIR``."""

from __future__ import annotations

import pytest

from tests.compat.trial_tools import load_tool

pytest.importorskip("torch")
pytest.importorskip("expecttest")  # torch.testing._internal imports it


# optim_db's optimizers in torch 2.13 (test_every_optim_db_entry_is_covered notices a new one)
OPTIMIZERS = ["Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW", "Adamax", "ASGD", "LBFGS", "Muon", "NAdam",
              "RAdam", "RMSprop", "Rprop", "SGD", "SparseAdam"]

# entries allowed to differ, by rule, each with its reason
KNOWN_DIFFERENCES = [
    (lambda row: row["optimizer"] == "LBFGS" and row["entry"].startswith("float32/"),
     "LBFGS in float32: its dot products sum in another order than torch's, and its tolerance-based stops "
     "(n_iter 14 vs 15) amplify the last-bit differences into the curvature history"),
]


@pytest.fixture(scope="module")
def results():
    return load_tool("torch_optiminfo_trial").trial(dtypes=("float32",), impl_variants=False, extra_schedulers=True)


def test_every_optim_db_entry_is_covered():
    from torch.testing._internal.common_optimizers import optim_db

    assert sorted(info.optim_cls.__name__ for info in optim_db) == sorted(OPTIMIZERS)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optim_db_entries_agree_with_torch(results, name):
    rows = [row for row in results if row["optimizer"] == name]
    assert len(rows) > 5, f"{name}: the trial ran only {len(rows)} entries"
    differing = [f"{row['entry']}: {row['kind']} {row['detail']}" for row in rows
                 if row["kind"] != "same" and not any(rule(row) for rule, _ in KNOWN_DIFFERENCES)]
    assert not differing, "\n".join(differing)
