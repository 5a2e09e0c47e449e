"""Session 30, lane progZ: what the training-technique programs (SAM, PCGrad, Mixup/CutMix + EMA,
stochastic depth, knowledge distillation) turned up, each checked against torch 2.13.
"""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- Optimizer.load_state_dict's groups
def _loaded_groups(lib, optimizer_class, **options):
    """An optimizer whose param_groups list (and its first group) a wrapper held on to, as SAM holds
    its base optimizer's, then a load of its own state dict."""
    params = [lib.nn.Parameter(lib.ones(2)), lib.nn.Parameter(lib.ones(3))]
    optimizer = optimizer_class([{"params": params[:1]}, {"params": params[1:], "lr": 0.5}], lr=0.1, **options)
    held_list, held_group = optimizer.param_groups, optimizer.param_groups[0]
    saved = optimizer.state_dict()
    saved["param_groups"][0]["lr"] = 0.25
    optimizer.load_state_dict(saved)
    return optimizer, held_list, held_group, params


@pytest.mark.parametrize(("name", "options"), [("SGD", {"momentum": 0.9}), ("Adam", {}), ("AdamW", {})])
def test_load_state_dict_replaces_the_param_groups_list_and_dicts_as_torch(name, options):
    """torch's load_state_dict builds new group dicts from the saved ones in a new list (its update_group),
    so a wrapper sharing the old list (davda54/sam's ``self.param_groups = self.base_optimizer
    .param_groups``) no longer sees the optimizer's groups until its own load_state_dict re-shares them.
    chainrule updated the old dicts in place: ``base.param_groups is sam.param_groups`` printed True
    where torch prints False."""
    results = {}
    for lib in (torch, chainrule):
        optimizer, held_list, held_group, params = _loaded_groups(lib, getattr(lib.optim, name), **options)
        results[lib.__name__] = (optimizer.param_groups is held_list, optimizer.param_groups[0] is held_group,
                                 held_group["lr"], optimizer.param_groups[0]["lr"], optimizer.param_groups[1]["lr"],
                                 list(optimizer.param_groups[0].keys()),
                                 [p is q for p, q in zip(optimizer.param_groups[0]["params"], params[:1])])
    assert results["chainrule"] == results["torch"]
    assert results["torch"][:2] == (False, False)


def test_loaded_groups_step_the_same_parameters_as_torch():
    """After the load, the new groups still hold the optimizer's own parameters and its step uses the
    loaded lr: one SGD step after loading lr=0.25 moves the first parameter by 0.25 * grad."""
    values = {}
    for lib in (torch, chainrule):
        optimizer, _, _, params = _loaded_groups(lib, lib.optim.SGD)
        (params[0] * lib.tensor([1.0, 2.0])).sum().backward()
        optimizer.step()
        values[lib.__name__] = params[0].detach().numpy().copy()
    np.testing.assert_array_equal(values["chainrule"], values["torch"])
