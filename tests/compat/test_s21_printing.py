"""Session 21's printing trial (tools/torch_repr_trial.py): what users see printed, against torch."""

import pytest

import chainrule


def _torch():
    return pytest.importorskip("torch")


def test_optimizer_repr_leaves_an_empty_line_between_param_groups():
    weight, bias = chainrule.nn.Linear(2, 2).parameters()
    optimizer = chainrule.optim.SGD([{"params": [weight], "momentum": 0.5}, {"params": [bias]}], lr=0.1)
    text = repr(optimizer)
    assert text.startswith("SGD (\nParameter Group 0\n    dampening: 0\n")
    assert "    weight_decay: 0\n\nParameter Group 1\n" in text
    assert text.endswith("    weight_decay: 0\n)")


def test_optimizer_repr_matches_torch_with_groups():
    torch = _torch()

    def build(lib):
        weight, bias = lib.nn.Linear(2, 2).parameters()
        return lib.optim.AdamW([{"params": [weight]}, {"params": [bias], "lr": 1e-2, "weight_decay": 0.0}], lr=1e-3)

    assert repr(build(chainrule)) == repr(build(torch))
