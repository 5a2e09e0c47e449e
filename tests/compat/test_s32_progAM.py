"""Session 32, lane progAM (training-loop utility programs): fixes found while writing the lane's
programs (optim_zoo_resume, resume_midepoch_accum, hooks_optimizer_in_backward), each checked
against torch 2.13 on the same inputs."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _one_step(lib, name, **kwargs):
    """A parameter of a Linear(3, 2) after one step of ``lib.optim.<name>``: the optimizer and the weight."""
    lib.manual_seed(0)
    model = lib.nn.Linear(3, 2)
    optimizer = getattr(lib.optim, name)(model.parameters(), **kwargs)
    model(lib.ones(2, 3)).pow(2).sum().backward()
    optimizer.step()
    return optimizer, model.weight


# ---------------------------------------------------------------- optimizer state and group key order
@pytest.mark.parametrize("name", ["Rprop", "ASGD", "Adafactor", "RAdam", "NAdam", "Adamax", "Adagrad",
                                  "Adadelta", "Adam", "AdamW", "RMSprop"])
def test_optimizer_state_lists_its_keys_in_torchs_order(name):
    """torch creates ``step`` first in a parameter's state (Rprop: step, prev, step_size; ASGD: step,
    eta, mu, ax; Adafactor: step, row_var, col_var); chainrule added it last in those three, so
    ``print(optimizer.state_dict())`` and loops over ``state.items()`` came out in another order."""
    ours, weight = _one_step(chainrule, name)
    theirs, their_weight = _one_step(torch, name)
    assert list(ours.state[weight]) == list(theirs.state[their_weight])
    assert list(ours.state_dict()["state"][0]) == list(theirs.state_dict()["state"][0])


@pytest.mark.parametrize("name", ["RAdam", "NAdam", "Rprop", "ASGD", "Adamax", "Adafactor", "Adam", "AdamW"])
def test_param_group_keys_in_torchs_order(name):
    """RAdam's group listed ``decoupled_weight_decay`` after ``weight_decay``; torch's comes after
    ``capturable`` (lr, betas, eps, weight_decay, maximize, foreach, capturable,
    decoupled_weight_decay, differentiable)."""
    ours, _ = _one_step(chainrule, name)
    theirs, _ = _one_step(torch, name)
    assert list(ours.state_dict()["param_groups"][0]) == list(theirs.state_dict()["param_groups"][0])
    assert list(ours.param_groups[0]) == list(theirs.param_groups[0])


def test_asgd_state_values_match_torch_after_two_steps():
    """The reordered ASGD state still holds torch's values (step, eta, mu, ax)."""
    def run(lib):
        lib.manual_seed(0)
        model = lib.nn.Linear(3, 2)
        optimizer = lib.optim.ASGD(model.parameters(), lr=0.05, t0=1)
        for _ in range(3):
            optimizer.zero_grad()
            model(lib.ones(2, 3)).pow(2).sum().backward()
            optimizer.step()
        return {k: v.detach().numpy().tolist() for k, v in optimizer.state[model.weight].items()}

    assert run(chainrule) == run(torch)
