"""torch 2.13's own ModuleInfo database (``common_modules.module_db``) run on chainrule, so what
agrees keeps agreeing.

A fixed subset of tools/torch_moduleinfo_trial.py (its ``sample_indices``: for every ModuleInfo,
the first and last float64 input in training and in eval mode, and the first float32 eval
input), each compared with torch as the trial does (state_dict keys, order, shapes and dtypes;
forward; parameter and input gradients for one seeded cotangent; buffers after the step; repr;
the state_dict round trip; train and eval agreeing where torch says they do; double backward in
float64; non-contiguous copies of the inputs; channels-last inputs and modules), and every
ErrorModuleInput (the error's stage, type and message). The full database: ``python
tools/torch_moduleinfo_trial.py run --out DIR``.
"""


import pytest

from tests.compat.trial_tools import load_tool

pytest.importorskip("torch")
pytest.importorskip("expecttest")  # torch.testing._internal imports it


# entries of the subset that differ on purpose, by id, with the reason (none at present)
KNOWN_DIFFERENCES: dict[str, str] = {}


@pytest.fixture(scope="module")
def trial():
    module = load_tool("torch_moduleinfo_trial")
    torch, chainrule, module_db = module.load_module_db()
    # the trial seeds torch before every input, module and forward (2,590 times): the CPU generator
    # alone, not the queued CUDA/XPU/MTIA seeds that each format the stack (a quarter of the test)
    with load_tool("torch_oracle").seeding_the_cpu_alone():
        yield module, torch, chainrule, module_db, module.Converter(torch, chainrule)


def _report(failures):
    return "\n".join(f"{entry_id}: {result}" for entry_id, result in failures[:20])


def test_module_db_sample_agrees_with_torch(trial):
    module, torch, chainrule, module_db, converter = trial
    failures, compared = [], 0
    for entry_id, module_info, dtype_key, training, module_input in module.entries(
            torch, chainrule, module_db, sample=True):
        result = module.run_entry(torch, chainrule, converter, module_info, dtype_key, training, module_input)
        compared += result["status"] == "same"
        if result["status"] == "differ" and result["aspects"] == [module.EMPTY_LAYOUT]:
            continue  # an empty channels-last output, whose strides NumPy does not keep (see the trial)
        if result["status"] not in ("same", "skipped") and entry_id not in KNOWN_DIFFERENCES:
            failures.append((entry_id, result))
    assert not failures, _report(failures)
    assert compared > 300  # the subset ran: every ModuleInfo contributes several entries


def test_module_db_error_inputs_raise_as_torch_says(trial):
    module, torch, chainrule, module_db, converter = trial
    failures, compared = [], 0
    for entry_id, module_info, error_input in module.error_entries(torch, module_db):
        result = module.run_error_entry(torch, chainrule, converter, module_info, error_input)
        compared += 1
        if result["status"] != "same" and entry_id not in KNOWN_DIFFERENCES:
            failures.append((entry_id, result))
    assert not failures, _report(failures)
    assert compared > 50
