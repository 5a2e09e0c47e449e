"""A differential fuzzer of the nn.Module API: random sequences of moves run alike on torch.nn and on
chainrule.nn, every observable result compared.

A case (``draw_case`` in ``_module_api.py``, drawn from its family and seed alone) builds a small tree of
modules (Linear, Conv1d, BatchNorm1d, Embedding, LayerNorm, ReLU, custom modules, Sequential, ModuleList,
ModuleDict, ParameterList, ParameterDict), registers and deletes parameters, buffers and submodules in every
way torch offers (and the ways it refuses), runs the containers' moves, queries names and state dicts,
loads mutated state dicts, changes flags and dtypes, registers and removes hooks, runs forward and backward,
and deep-copies. Each step's result, error (builtin class and message, library names out), warnings, hook
calls and a snapshot of the module it touched are compared (``first_difference``).

CI runs ``CI_CASES`` seeds a family; ``CHAINRULE_LONG_TESTS=1`` runs ``LONG_CASES``.
``python -m tests.fuzz.test_module_api N [family ...]`` runs N seeds a family and prints the mismatches,
for hunting (``--all``: the listed ones too; ``--start=K``: seeds from K). A mismatch found and not fixed
goes into ``OPEN`` (the case's repr -> the reason), a whole kind of them into ``OPEN_KINDS``, so a new one
fails CI.
"""

from __future__ import annotations

import sys

import pytest

import chainrule

from ._differential import Differential
from ._module_api import FAMILIES, draw_case, first_difference, run_case

CI_CASES, LONG_CASES = 8, 1500

# case repr -> why it differs: the open defects, found and not fixed yet
OPEN: dict[str, str] = {}


def _refused_parameter_dict_entry(case) -> bool:
    """Whether ``case`` stores into a ParameterDict an entry torch refuses after adding its key."""
    for op, *args in case.steps:
        if op in ("pdict_set", "pdict_set_tensor", "pdict_update", "pdict_setdefault", "pdict_or", "pdict_ior"):
            key, param, tensor = args[1:]
            stored = [tensor] if op == "pdict_set_tensor" else [param] + ([tensor] if op == "pdict_update" else [])
            if "." in key or any(spec[0] == "tensor" and spec[3] in ("int64", "bool") for spec in stored):
                return True
    return False


# (reason, test of (case, problem)): whole kinds of open defect, found and not fixed yet
OPEN_KINDS: list = [
    ("a ParameterDict entry whose value torch refuses (a key with '.', a tensor that cannot require grad): "
     "torch keeps the key though no parameter was stored (so later keys(), repr, del differ or raise); "
     "chainrule keeps no key for a refused value, deliberately",
     lambda case, problem: _refused_parameter_dict_entry(case)),
    ("a LayerNorm given a parameter of another dtype and shape (a tied parameter of another module): torch's "
     "CPU kernel refuses the mixed dtypes first, chainrule's layer_norm the shape",
     lambda case, problem: problem.startswith("forward(") and "mixed dtype (CPU)" in problem),
    ("a BatchNorm whose running_mean/var became a Parameter (load_state_dict(assign=True) of a Parameter onto the "
     "buffer) and another dtype: torch's batch_norm refuses the running stat that requires grad first, "
     "chainrule's the mixed dtypes",
     lambda case, problem: problem.startswith("forward(") and "not differentiable with respect to argument "
     "'running_" in problem),
]


def mismatch(case) -> str | None:
    """How chainrule's run of ``case`` differs from torch's, or None."""
    import torch

    return first_difference(case, run_case(case, chainrule), run_case(case, torch))


FUZZER = Differential(list(FAMILIES), draw_case, mismatch, OPEN, OPEN_KINDS, CI_CASES, LONG_CASES)
known, hunt = FUZZER.known, FUZZER.hunt


@pytest.mark.parametrize("family", list(FAMILIES))
def test_module_api_agrees_with_torch(family):
    pytest.importorskip("torch")
    found = FUZZER.unlisted(family)
    assert not found, "\n".join(found)


if __name__ == "__main__":
    FUZZER.main(sys.argv[1:])
