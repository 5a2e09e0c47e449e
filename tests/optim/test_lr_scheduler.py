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
    "polynomial": (_sgd, lambda s, o: s.PolynomialLR(o, total_iters=15, power=2.0)),
    "polynomial_linear": (_sgd, lambda s, o: s.PolynomialLR(o)),
    "warm_restarts": (_sgd, lambda s, o: s.CosineAnnealingWarmRestarts(o, T_0=5, eta_min=0.001)),
    "warm_restarts_mult": (_sgd, lambda s, o: s.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2)),
    "cyclic_triangular": (_sgd, lambda s, o: s.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4)),
    "cyclic_triangular2": (_sgd, lambda s, o: s.CyclicLR(o, base_lr=[0.01, 0.02], max_lr=0.1, step_size_up=3,
                                                         step_size_down=5, mode="triangular2")),
    "cyclic_exp_range_adam": (lambda o, p: o.Adam(p, lr=0.1),
                              lambda s, o: s.CyclicLR(o, base_lr=0.001, max_lr=0.01, step_size_up=6,
                                                      mode="exp_range", gamma=0.97)),
    "cyclic_custom_fn": (_sgd, lambda s, o: s.CyclicLR(o, 0.01, 0.1, step_size_up=4, cycle_momentum=False,
                                                       scale_fn=lambda x: 0.5 ** x, scale_mode="iterations")),
    "sequential_warmup_cosine": (_sgd, lambda s, o: s.SequentialLR(
        o, [s.LinearLR(o, start_factor=0.1, total_iters=5), s.CosineAnnealingLR(o, T_max=30)], milestones=[5])),
    "sequential_three": (_sgd, lambda s, o: s.SequentialLR(
        o, [s.ConstantLR(o, factor=0.5, total_iters=4), s.ExponentialLR(o, gamma=0.9),
            s.StepLR(o, step_size=4, gamma=0.5)], milestones=[6, 20])),
    "chained": (_sgd, lambda s, o: s.ChainedScheduler(
        [s.ConstantLR(o, factor=0.5, total_iters=4), s.ExponentialLR(o, gamma=0.9)])),
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


CLOSED_FORM = {
    "step": lambda s, o: s.StepLR(o, step_size=3, gamma=0.5),
    "multistep": lambda s, o: s.MultiStepLR(o, milestones=[2, 5, 5], gamma=0.3),
    "exponential": lambda s, o: s.ExponentialLR(o, gamma=0.9),
    "linear": lambda s, o: s.LinearLR(o, start_factor=0.2, total_iters=6),
    "constant": lambda s, o: s.ConstantLR(o, factor=0.5, total_iters=4),
    "polynomial": lambda s, o: s.PolynomialLR(o, total_iters=8, power=1.5),
    "cosine": lambda s, o: s.CosineAnnealingLR(o, T_max=9),
    "warm_restarts_fractional": lambda s, o: s.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=2),
}


@pytest.mark.parametrize("name", list(CLOSED_FORM))
def test_step_with_an_epoch_uses_the_closed_form_as_torch(name):
    """``step(epoch)`` jumps to an epoch (fractional, for warm restarts stepped per batch)."""
    epochs = [3, 0, 7, 7, 2, 11, 1.5, 4.25, 6.75, 13.5] if "fractional" in name else [3, 0, 7, 7, 2, 11, 1, 5]
    results = []
    for lib, opt_mod, sched_mod in ((chainrule, optim, lr_scheduler),
                                    (torch, torch.optim, torch.optim.lr_scheduler)):
        opt = opt_mod.SGD([lib.zeros(2, requires_grad=True)], lr=0.1)
        sched = CLOSED_FORM[name](sched_mod, opt)
        lrs = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for epoch in epochs:
                sched.step(epoch)
                lrs.append(sched.get_last_lr()[0])
        results.append(lrs)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12)


def test_sequential_state_dict_round_trip_resumes_the_schedule():
    def build(opt):
        return lr_scheduler.SequentialLR(opt, [lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=3),
                                               lr_scheduler.CosineAnnealingLR(opt, T_max=10)], milestones=[3])

    opt = optim.SGD([chainrule.zeros(1, requires_grad=True)], lr=0.1)
    sched = build(opt)
    for _ in range(5):
        opt.step()
        sched.step()
    state = sched.state_dict()
    assert isinstance(state["_schedulers"], list) and len(state["_schedulers"]) == 2
    expected = []
    for _ in range(4):
        opt.step()
        sched.step()
        expected.append(sched.get_last_lr())
    opt2 = optim.SGD([chainrule.zeros(1, requires_grad=True)], lr=0.1)
    resumed = build(opt2)
    resumed.load_state_dict(state)
    opt2.param_groups[0]["lr"] = state["_last_lr"][0]
    got = []
    for _ in range(4):
        opt2.step()
        resumed.step()
        got.append(resumed.get_last_lr())
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_composite_and_cyclic_errors_match_torch():
    for lib, opt_mod, sched_mod in ((chainrule, optim, lr_scheduler),
                                    (torch, torch.optim, torch.optim.lr_scheduler)):
        p = lib.zeros(1, requires_grad=True)
        opt, other = opt_mod.SGD([p], lr=0.1, momentum=0.9), opt_mod.SGD([p], lr=0.1)
        with pytest.raises(ValueError, match="number of milestone points"):
            sched_mod.SequentialLR(opt, [sched_mod.ExponentialLR(opt, 0.9)], milestones=[3])
        with pytest.raises(ValueError, match="same optimizer"):
            sched_mod.SequentialLR(opt, [sched_mod.ExponentialLR(opt, 0.9), sched_mod.ExponentialLR(other, 0.9)],
                                   milestones=[3])
        with pytest.raises(ValueError, match="ReduceLROnPlateau"):
            sched_mod.ChainedScheduler([sched_mod.ReduceLROnPlateau(opt)])
        with pytest.raises(ValueError, match="Expected positive integer T_0"):
            sched_mod.CosineAnnealingWarmRestarts(opt, T_0=0)
        with pytest.raises(ValueError, match="Expected integer T_mult >= 1"):
            sched_mod.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=0)
        with pytest.raises(ValueError, match="must support momentum"):
            sched_mod.CyclicLR(opt_mod.Adagrad([p], lr=0.1), 0.01, 0.1)
        with pytest.raises(ValueError, match="mode is invalid"):
            sched_mod.CyclicLR(opt, 0.01, 0.1, mode="sawtooth")
