"""Differential fuzzing of hostile optimizer and learning-rate-scheduler arguments against torch.

* every optimizer in chainrule.optim, each hyper-parameter of its signature (torch's) replaced by
  each hostile value of its kind (negative, zero, NaN, inf, strings, None, tensors, tuples of the
  wrong length); where both libraries accept it, three steps on fixed gradients must move the
  parameters alike;
* hostile parameter lists and groups: an empty list, a duplicated parameter, a non-leaf tensor, a
  dict without 'params', a generator consumed twice, a bare tensor, None, an integer tensor;
* every scheduler, each argument hostile (step_size 0, gamma NaN, unsorted milestones, T_max 0,
  last_epoch without initial_lr, total_steps 0, anneal_strategy='foo', ...); six steps must give
  the same learning rates.

What "the same" means for errors and values: _ctorfuzz.py. Budget: ``CASES`` per test in CI, every
case under ``CHAINRULE_LONG_TESTS=1``.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import chainrule

from ._ctorfuzz import (
    NAN,
    Lib,
    assert_no_new_mismatches,
    build,
    hostile_for,
    mismatches,
    outcome_mismatch,
    sample,
)

torch = pytest.importorskip("torch")

CASES = 300

PAIR = [(0.9,), (0.9, 0.999, 0.9), (-0.1, 0.999), (0.9, 1.0), (0.9, -0.5), (NAN, 0.999), "ab", 0.9, None,
        (Lib("tensor", 0.9), 0.999)]
# iteration counts: no huge values (LBFGS would iterate for ever)
OPTIM_HOSTILE = {"pair": PAIR, "count": [0, -1, 2.5, None, "3", True, NAN]}
# parameters not fuzzed: fused kernels (torch's CPU fused path differs in what it accepts, and
# chainrule has none), and the Muon/Adafactor internals whose meaning is torch's implementation
OPTIM_SKIP = {"params", "fused", "adjust_lr_fn", "ns_coefficients"}


def _optim_kind(name, default):
    if isinstance(default, tuple):
        return "pair"
    if isinstance(default, bool) or name in ("foreach", "capturable", "differentiable"):
        return "bool"
    if isinstance(default, int) and name in ("max_iter", "history_size", "ns_steps", "max_eval"):
        return "count"
    if isinstance(default, (int, float)):
        return "float"
    if isinstance(default, str):
        return "str"
    return None


def _optimizer_names():
    return sorted(n for n in dir(chainrule.optim)
                  if isinstance(getattr(chainrule.optim, n), type)
                  and issubclass(getattr(chainrule.optim, n), chainrule.optim.Optimizer) and n != "Optimizer")


def _steps(lib, name, params, options, grads, record):
    opt = getattr(lib.optim, name)(params, **options)
    record["_stage"] = "used"
    tensors = [p for g in opt.param_groups for p in g["params"]]
    for k in range(len(grads[0])):
        for p, g in zip(tensors, grads):
            p.grad = lib.tensor(g[k])
        if name == "LBFGS":
            opt.step(lambda: sum((p * p).sum() for p in tensors))
        elif name != "SparseAdam":  # SparseAdam steps only on sparse gradients
            opt.step()
    record["params"] = tensors


def optimizer_cases() -> list:
    cases = []
    for name in _optimizer_names():
        for p in inspect.signature(getattr(torch.optim, name)).parameters.values():
            kind = _optim_kind(p.name, p.default)
            if p.name in OPTIM_SKIP or kind is None:
                continue
            values = OPTIM_HOSTILE[kind] if kind in OPTIM_HOSTILE else hostile_for(kind, p.default)
            cases.extend(("hyper", name, {p.name: v}) for v in values)
    for name in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad"):
        cases.extend(("params", name, group) for group in PARAM_LISTS)
    return cases


# hostile parameter lists: how each is built from two leaf tensors (a, b) on one library
PARAM_LISTS = ["empty", "duplicate", "nonleaf", "no_params_key", "generator_twice", "bare_tensor", "none",
               "int_tensor", "overlapping_groups", "group_lr_string", "group_unknown_key", "named"]


def _params(lib, how, a, b):
    if how == "empty":
        return []
    if how == "duplicate":
        return [a, b, a]
    if how == "nonleaf":
        return [a * 2, b]
    if how == "no_params_key":
        return [{"lr": 0.1}]
    if how == "generator_twice":
        gen = (t for t in (a, b))
        list(gen)  # another optimizer took them first
        return gen
    if how == "bare_tensor":
        return a
    if how == "none":
        return [a, None]
    if how == "int_tensor":
        return [lib.tensor([1, 2])]
    if how == "overlapping_groups":
        return [{"params": [a]}, {"params": [a, b]}]
    if how == "group_lr_string":
        return [{"params": [a], "lr": "0.1"}, {"params": [b]}]
    if how == "group_unknown_key":
        return [{"params": [a], "gamma": 3}, {"params": [b]}]
    if how == "named":
        return [("a", a), ("b", b)]
    raise AssertionError(how)


ALL_OPTIMIZER_CASES = optimizer_cases()


def _refuses_nan(theirs, ours) -> bool:
    return theirs is None and isinstance(ours, ValueError) and ": nan (" in str(ours)


def _history_size_at_construction(theirs, ours) -> bool:
    return isinstance(theirs, IndexError) and isinstance(ours, ValueError) and "history_size" in str(ours)


_NAN_REASON = ("torch's SGD checks `lr < 0`, which NaN passes, and its first step turns every parameter NaN; "
               "chainrule refuses NaN as every other optimizer does")
# Deliberate differences: (optimizer, parameter) -> (recognise(torch's error, chainrule's error), reason)
OPTIM_ALLOWED: dict = {
    ("SGD", "lr"): (_refuses_nan, _NAN_REASON),
    ("SGD", "momentum"): (_refuses_nan, _NAN_REASON),
    ("SGD", "weight_decay"): (_refuses_nan, _NAN_REASON),
    ("LBFGS", "history_size"): (_history_size_at_construction,
                                "torch takes history_size < 1 and fails at a later step with a list IndexError "
                                "(pop from empty list); chainrule says at construction that it must be >= 1"),
}


def run_optimizer_case(case, seed: int) -> str | None:
    what, name, spec = case
    rng = np.random.default_rng(seed)
    shape = (2, 3) if name == "Muon" else (3,)
    x = [rng.standard_normal(shape), rng.standard_normal(shape)]
    grads = [rng.standard_normal((3, *shape)) for _ in x]

    def body(lib, record):
        a, b = (lib.tensor(v, requires_grad=True) for v in x)
        if what == "hyper":
            _steps(lib, name, [a, b], build(spec, lib), grads, record)
        else:
            _steps(lib, name, _params(lib, spec, a, b), {"lr": 0.1}, grads, record)
    names = [name, *(spec if isinstance(spec, dict) else ["param"])]
    allow = OPTIM_ALLOWED.get((name, next(iter(spec)) if isinstance(spec, dict) else spec), (None,))[0]
    return outcome_mismatch(body, names, allow=allow)


def describe_optimizer_case(case) -> str:
    what, name, spec = case
    return f"{name}({spec!r})" if what == "hyper" else f"{name}(params={spec})"


@pytest.mark.parametrize("part", range(2))
def test_optimizers_match_torch(part):
    cases = sample(ALL_OPTIMIZER_CASES, CASES, seed=7, key=lambda case: case[:2])[part::2]  # kind and class
    assert_no_new_mismatches(mismatches(cases, describe_optimizer_case, run_optimizer_case), len(cases))


# ---------------------------------------------------------------- schedulers
SCHEDULERS = {
    "StepLR": {"step_size": 2},
    "MultiStepLR": {"milestones": [1, 3]},
    "ConstantLR": {},
    "LinearLR": {},
    "ExponentialLR": {"gamma": 0.9},
    "PolynomialLR": {},
    "CosineAnnealingLR": {"T_max": 4},
    "CosineAnnealingWarmRestarts": {"T_0": 3},
    "CyclicLR": {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2},
    "OneCycleLR": {"max_lr": 0.1, "total_steps": 8},
    "ReduceLROnPlateau": {"patience": 1},
    "LambdaLR": {"lr_lambda": "halving"},
    "MultiplicativeLR": {"lr_lambda": "halving"},
    "SequentialLR": {"schedulers": "two", "milestones": [2]},
    "ChainedScheduler": {"schedulers": "two"},
}
SCHED_HOSTILE = {
    "milestones": [[3, 1], [1, 1], [], [-1, 2], [1.5, 3], "13", None, [None], 3],
    "schedulers": ["empty", "other_optimizer", [None], None, "one"],
    "lr_lambda": [None, 0.5, "halving_list_of_3", "raises"],
    "base_lr": [-0.1, NAN, [0.01, 0.02], "0.1", None], "max_lr": [-0.1, 0.0, NAN, [0.1, 0.2], "0.1", None],
    "min_lr": [-1.0, [0.0, 0.0], NAN, "0"],
}
SCHED_SKIP = {"optimizer", "scale_fn", "verbose"}


def _sched_kind(name, default):
    if name in SCHED_HOSTILE:
        return name
    if name in ("step_size", "T_max", "T_0", "T_mult", "total_iters", "total_steps", "epochs", "steps_per_epoch",
                "step_size_up", "step_size_down", "patience", "cooldown", "last_epoch"):
        return "int"
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, str):
        return "str"
    if isinstance(default, (int, float)):
        return "float"
    return None


def scheduler_cases() -> list:
    cases = []
    for name, base in SCHEDULERS.items():
        for p in inspect.signature(getattr(torch.optim.lr_scheduler, name)).parameters.values():
            if p.name in SCHED_SKIP:
                continue
            valid = base.get(p.name, p.default)
            kind = _sched_kind(p.name, valid)
            if kind is None:
                continue
            values = SCHED_HOSTILE[kind] if kind in SCHED_HOSTILE else hostile_for(kind, valid)
            cases.extend((name, base, p.name, v) for v in values)
    return cases


def _halving(epoch):
    return 0.5 ** epoch


def _raises(epoch):
    raise ValueError("lr_lambda failed on purpose")


def _sched_argument(lib, opt, name, value):
    """A scheduler argument given by name in the tables (the callables and sub-schedulers)."""
    if name == "lr_lambda":
        return {"halving": _halving, "halving_list_of_3": [_halving] * 3, "raises": _raises}.get(value, value) \
            if isinstance(value, str) else value
    if name == "schedulers" and isinstance(value, str):
        sched = lib.optim.lr_scheduler
        if value == "empty":
            return []
        if value == "one":
            return [sched.StepLR(opt, 2)]
        if value == "other_optimizer":
            other = lib.optim.SGD([lib.zeros(1, requires_grad=True)], lr=0.1)
            return [sched.StepLR(opt, 2), sched.ExponentialLR(other, 0.9)]
        return [sched.StepLR(opt, 2), sched.ExponentialLR(opt, 0.9)]
    return build(value, lib)


def run_scheduler_case(case, seed: int) -> str | None:
    name, base, param, value = case
    args = {**base, param: value}

    def body(lib, record):
        p = lib.zeros(2, requires_grad=True)
        opt = lib.optim.SGD([p], lr=0.1, momentum=0.9)
        kwargs = {k: _sched_argument(lib, opt, k, v) for k, v in args.items()}
        sched = getattr(lib.optim.lr_scheduler, name)(opt, **kwargs)
        record["_stage"] = "used"
        lrs = []
        for _ in range(6):
            opt.step()
            sched.step(1.0) if name == "ReduceLROnPlateau" else sched.step()
            lrs.append(tuple(float(g["lr"]) for g in opt.param_groups))
        record["lrs"] = tuple(lrs)
        record["momentum"] = tuple(float(g["momentum"]) for g in opt.param_groups)
    return outcome_mismatch(body, [name, param], rtol=1e-9, atol=1e-12)


ALL_SCHEDULER_CASES = scheduler_cases()


def describe_scheduler_case(case) -> str:
    return f"{case[0]}({case[2]}={case[3]!r})"


@pytest.mark.parametrize("part", range(2))
def test_schedulers_match_torch(part):
    cases = sample(ALL_SCHEDULER_CASES, CASES, seed=11)[part::2]
    assert_no_new_mismatches(mismatches(cases, describe_scheduler_case, run_scheduler_case), len(cases))


def test_every_optimizer_and_scheduler_is_fuzzed():
    assert {c[1] for c in ALL_OPTIMIZER_CASES} == set(_optimizer_names())
    assert set(SCHEDULERS) == {n for n in dir(chainrule.optim.lr_scheduler)
                               if isinstance(getattr(chainrule.optim.lr_scheduler, n), type)
                               and n not in ("LRScheduler", "_LRScheduler", "Optimizer", "Counter", "ref",
                                             "_SchedulerOfSchedulers")}
