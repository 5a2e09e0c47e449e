"""torch 2.13's reference inputs of its op_db (``OpInfo.reference_inputs``) that agree on chainrule
keep agreeing.

Beyond the sample inputs, 252 OpInfos have a ``reference_inputs_func``: extremal values (inf, nan,
-0.0, huge and tiny numbers), type-promotion pairs, broadcasting corners, noncontiguous and large
tensors. ``python tools/torch_opinfo_trial.py run --inputs reference --limit 0`` runs all of them;
its ``ledger --inputs reference`` command keeps, per OpInfo, the first agreeing reference inputs
that are not also sample inputs (tests/compat/data/torch_op_db_reference_ledger.json), and this
test draws those again from the installed torch and compares values, dtypes, shapes and float64
gradients.
"""

import json

import pytest

from tests.compat.trial_tools import load_tool, within_budget

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")  # torch.testing._internal imports it
if not torch.__version__.startswith("2.13."):
    pytest.skip(f"the ledger was drawn from torch 2.13's op_db, not {torch.__version__}", allow_module_level=True)


def test_ledger_reference_inputs_of_torch_op_db_still_agree():
    trial = load_tool("torch_opinfo_trial")
    with open(trial.REFERENCE_LEDGER) as handle:
        ledger = json.load(handle)
    assert len(ledger) > 100  # the ledger is the trial's, not an empty file
    failures = trial.run_ledger(within_budget(ledger), inputs="reference")
    report = "\n".join(f"{f['op']} {f['dtype']} {f['variant']} #{f['index']}: {f['kind']}: {f['detail']}"
                       for f in failures)
    assert not failures, f"{len(failures)} op_db reference inputs that agreed no longer do:\n{report}"
