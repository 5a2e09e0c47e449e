"""torch 2.13's foreach OpInfo samples (``foreach_*_op_db``) that agree on chainrule keep agreeing.

tools/torch_foreach_trial.py runs every ForeachFuncInfo's samples on torch and on chainrule (the
out-of-place op, the in-place op on clones, higher-kind scalars; values, dtypes, float64 gradients)
and a few error cases of its own; its ``ledger`` command keeps a spread of the agreeing samples of
each (dtype, variant) and the agreeing error cases (tests/compat/data/torch_foreach_db_ledger.json).
This test draws those samples again from the installed torch and compares them.
"""

import json

import pytest

from tests.compat.trial_tools import load_tool, within_budget

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")  # torch.testing._internal imports it
if not torch.__version__.startswith("2.13."):
    pytest.skip("the ledger holds torch 2.13's foreach samples", allow_module_level=True)


def test_ledger_samples_of_torch_foreach_db_still_agree():
    trial = load_tool("torch_foreach_trial")
    with open(trial.LEDGER) as handle:
        ledger = json.load(handle)
    assert len(ledger) > 40 and len(ledger["errors"]["cases"]) > 5  # the trial's ledger, not an empty file
    # torch seeds before every sample: the CPU generator alone, not the queued CUDA/XPU/MTIA seeds
    # that each format the stack (about a sixth of the replay's CPU time)
    with load_tool("torch_oracle").seeding_the_cpu_alone():
        failures = trial.run_ledger(within_budget(ledger))  # half in CI (every op, the error cases' half), all in the long profile
    report = "\n".join(f"{f['op']} {f['dtype']} {f['variant']} #{f['index']}: {f['kind']}: {f['detail']}"
                       for f in failures)
    assert not failures, f"{len(failures)} foreach samples that agreed no longer do:\n{report}"
