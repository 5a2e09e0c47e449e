"""The optimizers' and schedulers' argument checks (optimizer.py's shared validators): torch's
exception class, a message naming the class and the argument, raised before anything is built; and
what torch accepts that chainrule used to refuse (tensor hyper-parameters, named parameters)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

OPTIMIZERS = ["SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad", "Adadelta", "ASGD",
              "Rprop", "Adafactor", "SparseAdam"]


def _raised(make):
    try:
        make()
    except Exception as error:  # noqa: BLE001 - the class is what is compared
        return error
    return None


def _outcome(error):
    return None if error is None else (type(error), str(error))


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("lr", ["0.1", None, -1.0, float("nan")])
def test_a_bad_learning_rate_raises_torchs_error(name, lr):
    """torch's class and words ("Invalid learning rate: -1.0", the comparison's own TypeError for
    "0.1" or None); SGD's check is lr < 0, which NaN passes, in chainrule too."""
    theirs = _raised(lambda: getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], lr=lr))
    ours = _raised(lambda: getattr(chainrule.optim, name)([chainrule.zeros(2, requires_grad=True)], lr=lr))
    assert _outcome(ours) == _outcome(theirs)


@pytest.mark.parametrize("betas", [(0.9,), 0.9, "ab", (0.9, 1.0), (float("nan"), 0.9)])
def test_betas_that_are_no_pair_in_range_raise_torchs_error(betas):
    outcomes = [_outcome(_raised(lambda lib=lib: lib.optim.Adam([lib.zeros(2, requires_grad=True)], betas=betas)))
                for lib in (torch, chainrule)]
    assert outcomes[0] is not None
    assert outcomes[1] == outcomes[0]


def test_a_refused_param_group_leaves_the_optimizer_as_it_was():
    a, b = chainrule.zeros(2, requires_grad=True), chainrule.zeros(2, requires_grad=True)
    opt = chainrule.optim.SGD([a], lr=0.1)
    before = [dict(g) for g in opt.param_groups]
    with pytest.raises(ValueError, match="SGD: can't optimize a non-leaf Tensor"):
        opt.add_param_group({"params": [b * 2]})
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    assert opt.param_groups == before


@pytest.mark.parametrize("name", ["SGD", "Adam", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad", "Adafactor"])
def test_tensor_hyper_parameters_step_as_torchs(name):
    rng = np.random.default_rng(0)
    w, grads = rng.standard_normal(3), rng.standard_normal((3, 3))
    results = []
    for lib in (torch, chainrule):
        p = lib.tensor(w, requires_grad=True)
        options = {"lr": lib.tensor(0.25)}
        if name in ("Adamax", "NAdam", "RAdam"):
            options["betas"] = (lib.tensor(0.8), lib.tensor(0.99))
        opt = getattr(lib.optim, name)([p], **options)
        for g in grads:
            p.grad = lib.tensor(g)
            opt.step()
        assert type(opt.param_groups[0]["lr"]) is lib.Tensor  # the group keeps the tensor, as torch's
        results.append(p.detach().numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-6)


def test_named_parameters_give_param_names_as_torchs():
    groups = []
    for lib in (torch, chainrule):
        model = lib.nn.Linear(2, 1)
        opt = lib.optim.Adam(model.named_parameters(), lr=0.1)
        groups.append(opt.state_dict()["param_groups"][0]["param_names"])
        with pytest.raises(ValueError, match="with/without names"):
            opt.add_param_group({"params": [lib.zeros(1, requires_grad=True)]})
    assert groups[0] == groups[1] == ["weight", "bias"]


def test_capturable_on_the_cpu_fails_at_the_step_before_any_update():
    for lib in (torch, chainrule):
        p = lib.ones(2, requires_grad=True)
        opt = lib.optim.Adam([p], lr=0.1, capturable=True)  # accepted at construction, as torch
        p.grad = lib.ones(2)
        with pytest.raises(AssertionError):
            opt.step()
        assert p.detach().numpy().tolist() == [1.0, 1.0]
    assert not opt.state.get(p)  # chainrule checks before it builds any state (torch's has zero moments)


_CAPTURABLE = ["Adam", "AdamW", "NAdam", "RAdam", "Adamax", "ASGD", "Adadelta", "RMSprop", "Rprop"]


@pytest.mark.parametrize("foreach", [None, False, True])
@pytest.mark.parametrize("name", _CAPTURABLE)
def test_capturable_on_the_cpu_raises_torchs_assertion_with_the_fix_after_it(name, foreach):
    messages = []
    for lib in (torch, chainrule):
        p = lib.nn.Parameter(lib.tensor([1.0, -2.0]))
        opt = getattr(lib.optim, name)([p], lr=0.1, capturable=True, foreach=foreach)
        (p * p).sum().backward()
        with pytest.raises(AssertionError) as raised:
            opt.step()
        assert p.detach().numpy().tolist() == [1.0, -2.0]
        messages.append(str(raised.value))
    ours, theirs = messages[1], messages[0]
    assert ours.startswith(theirs) and "leave capturable=False on the CPU" in ours[len(theirs):]
    assert not opt.state.get(p)


def test_a_bool_weight_decay_fails_as_torchs_boolean_alpha():
    with pytest.raises(RuntimeError, match="SGD: weight_decay"):
        chainrule.optim.SGD([chainrule.zeros(2, requires_grad=True)], lr=0.1, weight_decay=True)
    opt = chainrule.optim.AdamW([chainrule.zeros(2, requires_grad=True)], weight_decay=True)  # decoupled: fine
    assert opt.defaults["weight_decay"] is True


@pytest.mark.parametrize("last_epoch", [-1, 2, 5])
def test_sequential_lr_resumed_at_an_epoch_moves_its_later_members_on_as_torchs(last_epoch):
    lrs = []
    for lib in (torch, chainrule):
        p = lib.zeros(2, requires_grad=True)
        opt = lib.optim.SGD([p], lr=0.1)
        sched = lib.optim.lr_scheduler
        members = [sched.LinearLR(opt, 0.5, total_iters=2), sched.ExponentialLR(opt, 0.9)]
        seq = sched.SequentialLR(opt, members, milestones=[2], last_epoch=last_epoch)
        run = []
        for _ in range(5):
            opt.step()
            seq.step()
            run.append(opt.param_groups[0]["lr"])
        lrs.append(run)
    np.testing.assert_allclose(lrs[1], lrs[0], rtol=1e-12)


@pytest.mark.parametrize("make, expected", [
    (lambda s, opt: s.LinearLR(opt, start_factor="0.5"), TypeError),
    (lambda s, opt: s.LinearLR(opt, end_factor=1.5), ValueError),
    (lambda s, opt: s.CyclicLR(opt, 0.01, 0.1, step_size_up=0), ZeroDivisionError),
    (lambda s, opt: s.OneCycleLR(opt, 0.1, total_steps=8, div_factor=None), TypeError),
    (lambda s, opt: s.ReduceLROnPlateau(opt, mode=None), TypeError),
    (lambda s, opt: s.MultiStepLR(opt, milestones=3), TypeError),
    (lambda s, opt: s.LambdaLR(opt, lr_lambda=0.5), TypeError),
])
def test_scheduler_arguments_raise_torchs_class_naming_the_scheduler(make, expected):
    for lib in (torch, chainrule):
        opt = lib.optim.SGD([lib.zeros(2, requires_grad=True)], lr=0.1, momentum=0.9)
        with pytest.raises(expected):
            make(lib.optim.lr_scheduler, opt)
    opt = chainrule.optim.SGD([chainrule.zeros(2, requires_grad=True)], lr=0.1, momentum=0.9)
    error = _raised(lambda: make(chainrule.optim.lr_scheduler, opt))
    assert "LR" in str(error) or "ReduceLROnPlateau" in str(error)
