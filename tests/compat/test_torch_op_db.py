"""torch 2.13's own OpInfo samples (``op_db``) that agree on chainrule keep agreeing.

tools/torch_opinfo_trial.py runs every OpInfo's sample inputs on torch and on chainrule (values,
dtypes, shapes, and float64 gradients under one seeded cotangent); its ``ledger`` command keeps, per
OpInfo, the first few samples of each dtype that agreed (tests/compat/data/torch_op_db_ledger.json).
This test draws those samples again from the installed torch and compares them: a regression in any
of about 600 ops shows here with the op, dtype, sample index and what differed.
"""

import json

import pytest

from tests.compat.trial_tools import load_tool, within_budget

pytest.importorskip("torch")
pytest.importorskip("expecttest")  # torch.testing._internal imports it


def test_ledger_samples_of_torch_op_db_still_agree():
    trial = load_tool("torch_opinfo_trial")
    with open(trial.LEDGER) as handle:
        ledger = json.load(handle)
    assert len(ledger) > 400  # the ledger is the trial's, not an empty file
    failures = trial.run_ledger(within_budget(ledger))
    report = "\n".join(f"{f['op']} {f['dtype']} {f['variant']} #{f['index']}: {f['kind']}: {f['detail']}"
                       for f in failures)
    assert not failures, f"{len(failures)} op_db samples that agreed no longer do:\n{report}"
