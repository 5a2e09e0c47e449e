"""Adadelta, Adamax, NAdam and RAdam: 25-step parameter trajectories against torch's from the
same weights (the harness of tests/optim), and state dicts torch can load."""

import itertools

import numpy as np
import pytest
import torch

import chainrule
from tests.optim.test_optim import _compare, _trajectory


@pytest.mark.parametrize("kw", [dict(), dict(rho=0.5, eps=1e-4), dict(weight_decay=0.1), dict(maximize=True),
                                dict(lr=0.5)], ids=str)
def test_adadelta(kw):
    _compare(lambda o, p: o.Adadelta(p, **kw), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kw", [dict(), dict(betas=(0.5, 0.9)), dict(weight_decay=0.1), dict(maximize=True)],
                         ids=str)
def test_adamax(kw):
    _compare(lambda o, p: o.Adamax(p, lr=0.05, **kw), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kw", [dict(weight_decay=w, decoupled_weight_decay=d, momentum_decay=m, maximize=x)
                                for w, d, m, x in itertools.product([0.0, 0.1], [False, True], [4e-3, 0.1],
                                                                    [False, True]) if w or not d], ids=str)
def test_nadam(kw):
    _compare(lambda o, p: o.NAdam(p, lr=0.05, **kw), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kw", [dict(weight_decay=w, decoupled_weight_decay=d, betas=b, maximize=x)
                                for w, d, b, x in itertools.product([0.0, 0.1], [False, True],
                                                                    [(0.9, 0.999), (0.5, 0.9)], [False, True])
                                if w or not d], ids=str)
def test_radam(kw):
    # betas (0.5, 0.9) reach rho_t > 5 within the 25 steps, so both branches are compared
    _compare(lambda o, p: o.RAdam(p, lr=0.05, **kw), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["Adadelta", "Adamax", "NAdam", "RAdam"])
def test_state_dict_keys_match_torch_and_load_into_torch(name):
    _, mine = _trajectory(chainrule, lambda o, p: getattr(o, name)(p), steps=3)
    _, theirs = _trajectory(torch, lambda o, p: getattr(o, name)(p), steps=3)
    mine_state, their_state = mine.state_dict(), theirs.state_dict()
    assert set(mine_state["param_groups"][0]) == set(their_state["param_groups"][0])
    for index in their_state["state"]:
        assert set(mine_state["state"][index]) == set(their_state["state"][index])
        for key, value in their_state["state"][index].items():
            np.testing.assert_allclose(mine_state["state"][index][key].numpy(), value.numpy(), rtol=1e-4, atol=1e-6)


def test_constructor_errors():
    p = [chainrule.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match="Invalid rho value"):
        chainrule.optim.Adadelta(p, rho=1.5)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        chainrule.optim.Adamax(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Invalid momentum_decay value"):
        chainrule.optim.NAdam(p, momentum_decay=-1)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        chainrule.optim.RAdam(p, lr=-0.1)
