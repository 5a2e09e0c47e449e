"""torch 2.13's own nn test dicts (``torch.testing._internal.common_nn``) keep agreeing with chainrule.

tools/torch_common_nn_trial.py runs every dict on both libraries (forward, input and parameter
gradients, gradgrad, a non-contiguous input, the other float dtype, repr, save/load, and torch's
eval and long-tensor variants); the dicts that agreed, cheapest first within a CPU budget, are
listed in torch_common_nn_ledger.txt (``python tools/torch_common_nn_trial.py ledger``). Each is
run again here and must still agree."""

import pathlib

import pytest

from tests._profile import in_ci
from tests.compat.trial_tools import load_tool

pytest.importorskip("torch")
pytest.importorskip("expecttest")  # torch.testing._internal imports it

LEDGER = pathlib.Path(__file__).with_name("torch_common_nn_ledger.txt")
NAMES = [line.strip() for line in LEDGER.read_text().splitlines() if line.strip() and not line.startswith("#")]
# CI runs 170 of the 282 dicts, at least one of every module or function (the name's first word);
# CHAINRULE_LONG_TESTS=1 runs all of them
IN_CI = in_ci(NAMES, 170, seed=23, key=lambda name: name.split("_")[0])


@pytest.fixture(scope="module")
def trial():
    # about 14 torch.manual_seed calls a dict: the CPU generator alone, not the queued CUDA/XPU/MTIA
    # seeds that each format the stack
    with load_tool("torch_oracle").seeding_the_cpu_alone():
        yield load_tool("torch_common_nn_trial")


@pytest.fixture(scope="module")
def cases(trial):
    return {name: (kind, params) for name, kind, params, _ in trial.collect_cases()}


def test_the_ledger_names_only_dicts_torch_still_has(cases):
    assert NAMES and not [name for name in NAMES if name not in cases]


@pytest.mark.parametrize("name", IN_CI)
def test_common_nn_dict_agrees_with_torch(trial, cases, name):
    import warnings

    kind, params = cases[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        record = trial.run_case(name, kind, params)
    assert record["outcome"] == "same", record
    assert record["compared"] > 0
