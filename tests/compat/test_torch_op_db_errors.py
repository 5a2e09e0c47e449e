"""torch's OpInfo error inputs that chainrule answers as torch does stay answered so.

tools/torch_opinfo_errors_trial.py runs every ``error_inputs`` entry of torch's ``op_db`` on torch
and on chainrule; ``torch_op_db_errors.json`` beside this file lists the ones where chainrule raised
torch's exception type with a message matching torch's regex. This test re-runs exactly those (a
few hundred calls, well under a minute) and fails when one stops agreeing. It needs torch with its
test databases (and expecttest, which they import); the ledger was written with torch 2.13, whose
error inputs it indexes, so another torch minor version skips.
"""

from __future__ import annotations

import json
import pathlib

import pytest

from tests.compat.trial_tools import load_tool, within_budget

LEDGER = pathlib.Path(__file__).with_name("torch_op_db_errors.json")


@pytest.fixture(scope="module")
def agreeing_opinfos():
    torch = pytest.importorskip("torch")
    pytest.importorskip("expecttest")
    ledger = json.loads(LEDGER.read_text())
    if torch.__version__.split("+")[0].rsplit(".", 1)[0] != ledger["torch"].rsplit(".", 1)[0]:
        pytest.skip(f"the ledger indexes torch {ledger['torch']}'s error inputs, this is torch {torch.__version__}")
    trial = load_tool("torch_opinfo_errors_trial")
    op_db = trial.load_op_db()
    if op_db is None:
        pytest.skip("torch.testing._internal.common_methods_invocations is not importable")
    by_name = {trial.full_name(opinfo): opinfo for opinfo in op_db}
    return trial, by_name, ledger["same"]


def test_ledger_is_not_empty():
    assert len(json.loads(LEDGER.read_text())["same"]) > 100


def test_error_inputs_that_agreed_still_agree(agreeing_opinfos):
    trial, by_name, agreeing = agreeing_opinfos
    regressions = []
    for name, indices in within_budget(agreeing).items():
        opinfo = by_name.get(name)
        if opinfo is None:
            regressions.append(f"{name}: no longer in op_db")
            continue
        records = {record["index"]: record for record in trial.run_opinfo(opinfo, only=set(indices))}
        for index in indices:
            record = records.get(index, {"kind": "missing"})
            if record["kind"] != "same":
                regressions.append(f"{name}#{index} {record['kind']}: torch {record.get('torch')} / "
                                   f"chainrule {record.get('chainrule')}")
    assert not regressions, "\n".join(regressions)
