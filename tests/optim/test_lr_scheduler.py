"""Learning-rate schedulers: the lr (and momentum) sequence vs torch over 40 steps."""

import warnings

import numpy as np
import pytest

import chainrule
import chainrule.optim as optim
from chainrule.optim import lr_scheduler

torch = pytest.importorskip("torch")

STEPS = 40


def _sequence(lib, make_opt, make_sched, metrics=None):
    if lib is chainrule:
        params = [chainrule.zeros(2, requires_grad=True), chainrule.zeros(3, requires_grad=True)]
        opt_mod, sched_mod = optim, lr_scheduler
    else:
        params = [torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)]
        opt_mod, sched_mod = torch.optim, torch.optim.lr_scheduler
    opt = make_opt(opt_mod, [{"params": [params[0]]}, {"params": [params[1]], "lr": 0.05}])
    sched = make_sched(sched_mod, opt)
    lrs, momenta = [sched.get_last_lr()], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(STEPS):
            opt.step()
            if metrics is not None:
                sched.step(metrics[i])
            else:
                sched.step()
            lrs.append(list(sched.get_last_lr()))
            momenta.append([g.get("momentum", g.get("betas", (None,))[0]) for g in opt.param_groups])
    return np.array(lrs, dtype=float), momenta, sched


def _sgd(o, p):
    return o.SGD(p, lr=0.1, momentum=0.9)


CASES = {
    "step": (_sgd, lambda s, o: s.StepLR(o, step_size=7, gamma=0.5)),
    "multistep": (_sgd, lambda s, o: s.MultiStepLR(o, milestones=[3, 10, 10, 25], gamma=0.3)),
    "exponential": (_sgd, lambda s, o: s.ExponentialLR(o, gamma=0.93)),
    "cosine": (_sgd, lambda s, o: s.CosineAnnealingLR(o, T_max=12, eta_min=0.001)),
    "cosine_no_min": (_sgd, lambda s, o: s.CosineAnnealingLR(o, T_max=7)),
    "lambda": (_sgd, lambda s, o: s.LambdaLR(o, lambda e: 1.0 / (1 + e))),
    "lambda_list": (_sgd, lambda s, o: s.LambdaLR(o, [lambda e: 0.9 ** e, lambda e: 1 + e % 3])),
    "multiplicative": (_sgd, lambda s, o: s.MultiplicativeLR(o, lambda e: 0.95)),
    "linear": (_sgd, lambda s, o: s.LinearLR(o, start_factor=0.25, end_factor=0.9, total_iters=10)),
    "constant": (_sgd, lambda s, o: s.ConstantLR(o, factor=0.5, total_iters=6)),
    "onecycle_cos": (_sgd, lambda s, o: s.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=STEPS)),
    "onecycle_linear_3phase": (_sgd, lambda s, o: s.OneCycleLR(o, max_lr=0.3, epochs=4, steps_per_epoch=10,
                                                                anneal_strategy="linear", three_phase=True,
                                                                pct_start=0.25)),
    "onecycle_adam_betas": (lambda o, p: o.Adam(p, lr=0.1),
                            lambda s, o: s.OneCycleLR(o, max_lr=0.2, total_steps=STEPS + 5, div_factor=10.0,
                                                      final_div_factor=100.0)),
    "onecycle_no_momentum": (_sgd, lambda s, o: s.OneCycleLR(o, max_lr=0.2, total_steps=STEPS,
                                                             cycle_momentum=False)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_schedule_matches_torch(name):
    make_opt, make_sched = CASES[name]
    ours, our_momenta, _ = _sequence(chainrule, make_opt, make_sched)
    theirs, their_momenta, _ = _sequence(torch, make_opt, make_sched)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.array(our_momenta, dtype=float), np.array(their_momenta, dtype=float),
                               rtol=1e-10)


METRICS = [1.0, 0.9, 0.9, 0.9, 0.95, 0.8, 0.8, 0.8, 0.8, 0.8] * 4


@pytest.mark.parametrize("kw", [dict(), dict(patience=1), dict(patience=2, cooldown=2, factor=0.5),
                                dict(mode="max", patience=1), dict(threshold_mode="abs", threshold=0.05,
                                                                    patience=0, min_lr=[0.01, 0.02]),
                                dict(patience=0, factor=0.5, min_lr=0.004)], ids=str)
def test_reduce_on_plateau_matches_torch(kw):
    make_sched = lambda s, o: s.ReduceLROnPlateau(o, **kw)  # noqa: E731
    ours, _, sched = _sequence(chainrule, _sgd, make_sched, METRICS)
    theirs, _, tsched = _sequence(torch, _sgd, make_sched, METRICS)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert sched.num_bad_epochs == tsched.num_bad_epochs and sched.best == tsched.best


def test_scheduler_state_dict_round_trip():
    _, _, sched = _sequence(chainrule, _sgd, CASES["cosine"][1])
    state = sched.state_dict()
    assert state["last_epoch"] == STEPS and "optimizer" not in state
    p = chainrule.zeros(1, requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    fresh = lr_scheduler.CosineAnnealingLR(opt, T_max=3)
    fresh.load_state_dict(state)
    assert fresh.last_epoch == STEPS and fresh.T_max == 12 and fresh.get_last_lr() == sched.get_last_lr()


def test_scheduler_errors_match_torch():
    for lib, sched_mod in ((chainrule, lr_scheduler), (torch, torch.optim.lr_scheduler)):
        p = lib.zeros(1, requires_grad=True)
        opt = (optim if lib is chainrule else torch.optim).SGD([p], lr=0.1, momentum=0.9)
        with pytest.raises(ValueError, match="total_steps OR"):
            sched_mod.OneCycleLR(opt, max_lr=0.1)
        with pytest.raises(ValueError, match="anneal_strategy"):
            sched_mod.OneCycleLR(opt, max_lr=0.1, total_steps=3, anneal_strategy="exp")
        with pytest.raises(ValueError, match="Factor should be"):
            sched_mod.ReduceLROnPlateau(opt, factor=1.5)
        with pytest.raises(ValueError, match="Expected 1 lr_lambdas"):
            sched_mod.LambdaLR(opt, [lambda e: 1.0, lambda e: 2.0])
        one = sched_mod.OneCycleLR(opt, max_lr=0.1, total_steps=2)
        one.step()
        one.step()
        with pytest.raises(ValueError, match="Tried to step 3 times"):
            one.step()
