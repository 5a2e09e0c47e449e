"""torch 2.13's own OpInfo samples (``op_db``) that agree under vmap on chainrule keep agreeing.

tools/torch_opinfo_vmap_trial.py batches each OpInfo's first samples (three seeded variants of
every tensor argument stacked along a new dim) and runs ``func.vmap`` of the op on torch and on
chainrule, per-sample gradients (``vmap(grad(...))``) of float64 samples, and random ops in each
of vmap's ``randomness`` modes; its ``ledger`` command keeps, per OpInfo, the first agreeing cases
(tests/compat/data/torch_op_db_vmap_ledger.json). This test draws them again from the installed
torch and compares: a regression shows with the op, the case and the sample index.
"""

import json

import pytest

from tests.compat.trial_tools import load_tool, within_budget

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")  # torch.testing._internal imports it
if not torch.__version__.startswith("2.13."):
    pytest.skip("the ledger holds torch 2.13's op_db samples", allow_module_level=True)


def test_ledger_cases_of_torch_op_db_under_vmap_still_agree():
    trial = load_tool("torch_opinfo_vmap_trial")
    with open(trial.LEDGER) as handle:
        ledger = json.load(handle)
    cases = sum(len(indices) for entry in ledger.values() for indices in entry.values())
    assert len(ledger) > 300 and cases > 350  # the ledger is the trial's, not an empty file
    assert any("random" in entry for entry in ledger.values()) and any("grad" in entry for entry in ledger.values())
    failures = trial.run_ledger(within_budget(ledger))  # half in CI, all in the long profile
    report = "\n".join(f"{f['op']} {f['case']} #{f['index']}: {f['kind']}: {f['detail']}" for f in failures)
    assert not failures, f"{len(failures)} op_db cases under vmap that agreed no longer do:\n{report}"
