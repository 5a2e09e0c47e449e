"""torch 2.13's own OpInfo samples (``op_db``) whose double backward agrees on chainrule keep agreeing.

tools/torch_opinfo_gradgrad_trial.py differentiates each ``supports_gradgrad`` OpInfo's first samples
twice on torch and on chainrule (``create_graph=True`` with a seeded cotangent v, then a seeded w per
first-order gradient, differentiated with respect to the inputs and v) and compares every second-order
gradient; its ``ledger`` command keeps, per OpInfo and variant, the first agreeing sample
(tests/compat/data/torch_op_db_gradgrad_ledger.json). This test draws those samples again from the
installed torch: a rule that stops being differentiable, or loses a term of its second derivative,
shows here with the op, variant and sample index.
"""

import json

import pytest

from tests.compat.trial_tools import load_tool, within_budget

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")  # torch.testing._internal imports it
if not torch.__version__.startswith("2.13."):
    pytest.skip(f"the ledger was drawn from torch 2.13's op_db, not {torch.__version__}", allow_module_level=True)


def test_ledger_samples_of_torch_op_db_still_agree_under_double_backward():
    trial = load_tool("torch_opinfo_gradgrad_trial")
    with open(trial.LEDGER) as handle:
        ledger = json.load(handle)
    assert len(ledger) > 300  # the ledger is the trial's, not an empty file
    failures = trial.run_ledger(within_budget(ledger))  # half in CI, all in the long profile
    report = "\n".join(f"{f['op']} {f['variant']} #{f['index']}: {f['kind']}: {f['detail']}" for f in failures)
    assert not failures, f"{len(failures)} op_db double-backward samples that agreed no longer do:\n{report}"
