"""torch 2.13's own OpInfo samples whose forward-mode tangents agree on chainrule keep agreeing.

tools/torch_opinfo_fwdad_trial.py runs the float64 samples of every OpInfo torch marks
``supports_forward_ad`` through dual tensors (and ``func.jvp``) on torch and on chainrule and
compares primals and tangents; its ``ledger`` command keeps, per OpInfo, the first sample of each
variant that agreed (tests/compat/data/torch_op_db_fwdad_ledger.json). This test draws those
samples again from the installed torch and compares them: a tangent that regresses shows here
with the op, variant, sample index and what differed.
"""

import json

import pytest

from tests.compat.trial_tools import load_tool, within_budget

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")  # torch.testing._internal imports it
if not torch.__version__.startswith("2.13."):
    pytest.skip(f"the ledger was written against torch 2.13, not {torch.__version__}", allow_module_level=True)


def test_ledger_tangents_of_torch_op_db_still_agree():
    trial = load_tool("torch_opinfo_fwdad_trial")
    with open(trial.LEDGER) as handle:
        ledger = json.load(handle)
    assert len(ledger) > 400  # the trial's ledger, not an empty file
    failures = trial.run_ledger(within_budget(ledger))  # half in CI, all in the long profile
    report = "\n".join(f"{f['op']} {f['variant']} #{f['index']}: {f['kind']}: {f['detail']}" for f in failures)
    assert not failures, f"{len(failures)} op_db samples whose tangents agreed no longer do:\n{report}"
