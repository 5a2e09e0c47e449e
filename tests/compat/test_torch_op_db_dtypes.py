"""torch 2.13's OpInfo samples (``op_db``) in float16, bfloat16, complex64/128, int8/16/32 and uint8
that agree on chainrule keep agreeing.

tools/torch_opinfo_dtypes_trial.py runs every OpInfo's samples in the dtypes the float32/float64/
int64/bool trial leaves out; its ``ledger`` command keeps one agreeing sample per OpInfo, the dtype
taken in turn so that all eight are covered (tests/compat/data/torch_op_db_dtypes_ledger.json).
This test draws those samples again from the installed torch and compares values and dtypes (and,
in complex128, gradients), naming the op, dtype and sample index of any that no longer agrees.
"""

import json

import pytest

from tests.compat.trial_tools import load_tool, within_budget

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")  # torch.testing._internal imports it
if not torch.__version__.startswith("2.13"):
    pytest.skip("the ledger was drawn from torch 2.13's op_db", allow_module_level=True)


def test_ledger_samples_of_torch_op_db_in_more_dtypes_still_agree():
    trial = load_tool("torch_opinfo_dtypes_trial")
    with open(trial.LEDGER) as handle:
        ledger = json.load(handle)
    assert len(ledger) > 300  # the ledger is the trial's, not an empty file
    assert {dtype for entry in ledger.values() for dtype in entry} == set(trial.DTYPES)
    failures = trial.run_ledger(within_budget(ledger))
    report = "\n".join(f"{f['op']} {f['dtype']} {f['variant']} #{f['index']}: {f['kind']}: {f['detail']}"
                       for f in failures)
    assert not failures, f"{len(failures)} op_db samples that agreed no longer do:\n{report}"
