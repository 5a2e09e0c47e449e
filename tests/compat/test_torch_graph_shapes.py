"""The autograd graphs that had torch 2.13's shape keep it.

tools/torch_graph_shape_trial.py builds common user expressions and the first float32 sample of
each differentiable OpInfo in torch's op_db on torch and on chainrule, and compares the node-name
tree under the output's grad_fn to depth 3 (names, edge counts, None edges, AccumulateGrad
leaves, output numbers). Its ``ledger`` command keeps the entries that agreed
(tests/compat/data/torch_graph_shape_ledger.json); this test builds them again from the installed
torch, so a graph that stops matching shows here with both trees written out.
"""

import json

import pytest

from tests.compat.trial_tools import load_tool, within_budget

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")  # torch.testing._internal imports it
if not torch.__version__.startswith("2.13."):
    pytest.skip(f"the ledger was written against torch 2.13, not {torch.__version__}", allow_module_level=True)


def test_ledger_graphs_still_have_torchs_shape():
    trial = load_tool("torch_graph_shape_trial")
    with open(trial.LEDGER) as handle:
        ledger = json.load(handle)
    assert len(ledger) > 400  # the trial's ledger, not an empty file
    failures = trial.run_ledger(within_budget(ledger))
    report = "\n".join(f"{f['entry']}: {f['kind']}: {f['detail']}" for f in failures)
    assert not failures, f"{len(failures)} graphs that had torch's shape no longer do:\n{report}"
