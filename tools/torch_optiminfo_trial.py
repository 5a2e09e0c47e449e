"""Drive torch's own optimizer test database (``common_optimizers.optim_db``) on torch and on chainrule.

For every OptimizerInfo and every OptimizerInput of its ``optim_inputs_func`` (float32 and float64;
the inputs carry no parameters, the test fills them in as torch's test_optim does), each with the
implementation flags the info supports (``foreach``, ``differentiable``, CPU ``fused``) one at a
time, the trial builds the same parameters on both libraries (a weight matrix, a bias, a 0-d
scalar, and one that never gets a gradient; a complex set where the optimizer supports complex),
runs ten steps on the same seeded gradients (LBFGS: with a closure over a quadratic loss) and
compares the parameters after every step. Then it compares ``state_dict()`` (state keys, ``step``
as a tensor, values, param_groups' keys and values), loads torch's state dict into a fresh
chainrule optimizer and chainrule's into a fresh torch one, and continues both for three steps.
Each ErrorOptimizerInput of ``optim_error_inputs_func`` is run on both (error type and regex, at
construction or at the step), and each list of ``scheduler_inputs`` (the lambdas, re-bound to
chainrule's schedulers) drives twenty steps comparing learning rates, ``get_last_lr()`` and the
schedulers' state dicts; a few more torch scheduler behaviours (SequentialLR, ChainedScheduler,
OneCycleLR, CyclicLR, warm restarts, scheduler state_dict round trips) are compared the same way.

    python tools/torch_optiminfo_trial.py run --out /tmp/optdb [--filter Adam]

Writes ``DIR/results.json`` and ``DIR/summary.md`` and prints a count table per optimizer. Kinds:
``same``, ``differ``, ``chainrule_raised``, ``torch_raised`` (torch raised, chainrule did not or
raised another type), ``skipped`` (with the reason). Deterministic: every entry draws its values
from its own seeded NumPy generator.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import sys
import traceback
import types
import warnings
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

import chainrule  # noqa: E402
import chainrule.optim.lr_scheduler as cr_schedulers  # noqa: E402

STEPS = 10
MORE_STEPS = 3
SCHEDULER_STEPS = 20
SHAPES = {"weight": (4, 3), "bias": (4,), "scalar": (), "unused": (2,)}
TOLERANCE = {"float32": dict(rtol=1e-5, atol=1e-6), "float64": dict(rtol=1e-10, atol=1e-12)}


def _torch():
    import torch
    from torch.testing._internal import common_optimizers
    return torch, common_optimizers


# ------------------------------------------------------------------ conversion between the libraries
class Converter:
    """Converts torch objects (tensors, Parameters, lists, dicts, tuples) to chainrule's, keeping
    identity: one torch tensor becomes one chainrule tensor however often it appears."""

    def __init__(self, torch):
        self.torch = torch
        self.seen = {}

    def __call__(self, value):
        torch = self.torch
        if isinstance(value, torch.Tensor):
            if id(value) in self.seen:
                return self.seen[id(value)]
            if value.layout != torch.strided:
                converted = chainrule.from_numpy(value.to_dense().detach().numpy().copy()).to_sparse()
            else:
                converted = chainrule.from_numpy(value.detach().numpy().copy())
            if isinstance(value, torch.nn.Parameter):
                converted = chainrule.nn.Parameter(converted, requires_grad=value.requires_grad)
            elif value.requires_grad:
                converted.requires_grad_(True)
            if value.grad is not None:
                converted.grad = self(value.grad)
            self.seen[id(value)] = converted
            return converted
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self(v) for v in value)
        return value


def to_torch(torch, value):
    """chainrule state (a state dict) as torch objects, tensors with their dtype and values."""
    if isinstance(value, chainrule.Tensor):
        return torch.from_numpy(np.array(value.detach().numpy(), copy=True))
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: to_torch(torch, v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_torch(torch, v) for v in value]
    if isinstance(value, tuple):
        return tuple(to_torch(torch, v) for v in value)
    return value


def as_array(value):
    if hasattr(value, "detach"):
        return np.asarray(value.detach().numpy())
    return np.asarray(value)


def close(a, b, dtype_name):
    a, b = as_array(a), as_array(b)
    if a.shape != b.shape:
        return False, f"shapes {a.shape} vs {b.shape}"
    tol = TOLERANCE.get(dtype_name, TOLERANCE["float32"])
    if np.allclose(a, b, equal_nan=True, **tol):
        return True, ""
    diff = np.max(np.abs(a.astype(np.complex128) - b.astype(np.complex128)))
    return False, f"max |diff| {diff:.3g}"


# ------------------------------------------------------------------ the parameters of an entry
def make_params(rng, dtype_name, complex_params):
    """NumPy values of the parameters: weight, bias, scalar, unused (never gets a gradient)."""
    values = {}
    for name, shape in SHAPES.items():
        value = rng.standard_normal(shape)
        if complex_params:
            value = value + 1j * rng.standard_normal(shape)
        values[name] = np.asarray(value).astype(complex_dtype(dtype_name) if complex_params else dtype_name)
    return values


def complex_dtype(dtype_name):
    return {"float32": "complex64", "float64": "complex128"}[dtype_name]


def build_params(lib, values, differentiable):
    params = {}
    for name, value in values.items():
        data = lib.from_numpy(value.copy())
        params[name] = lib.nn.Parameter(data)
    if differentiable:
        # torch's differentiable step writes into the parameters with grad mode on: it needs
        # non-leaf parameters, as torch's test_differentiable builds them (a clone of a leaf)
        params = {name: p.clone() for name, p in params.items()}
    return params


def grads_for(rng, values, sparse=False):
    """One step's gradients (every parameter but 'unused'); ``sparse``: rows of zeros, as an
    embedding's gradient has for the rows a batch did not look up."""
    grads = {}
    for name, value in values.items():
        if name == "unused":
            continue
        grad = rng.standard_normal(value.shape)
        if sparse:
            grad = grad * (rng.random(value.shape[:1]) < 0.5).reshape((-1,) + (1,) * (value.ndim - 1))
        if value.dtype.kind == "c":
            grad = grad + 1j * rng.standard_normal(value.shape)
        grads[name] = np.asarray(grad).astype(value.dtype)
    return grads


def param_groups(params, grouped):
    """The optimizer's params: one list, or two groups (the second with its own lr)."""
    if not grouped:
        return list(params.values())
    names = list(params)
    return [{"params": [params[n] for n in names[::2]]}, {"params": [params[n] for n in names[1::2]], "lr": 0.005}]


def set_grads(lib, params, grads, sparse):
    for key, grad in grads.items():
        grad = lib.from_numpy(grad.copy())
        params[key].grad = grad.to_sparse() if sparse else grad


def closure_for(lib, params, target):
    """LBFGS's closure: a quadratic loss (with a cross term) whose gradient both libraries compute."""
    def closure():
        for p in params.values():
            p.grad = None
        loss = 0
        for name, p in params.items():
            if name == "unused":
                continue
            t = lib.from_numpy(target[name].copy())
            loss = loss + ((p - t) ** 2).sum() * 0.5 + (p.sum() * 0.1) ** 2
        loss.backward()
        return loss
    return closure


# ------------------------------------------------------------------ one optimizer input
class Result:
    def __init__(self, out):
        self.out = out

    def add(self, optim, name, kind, detail=""):
        self.out.append({"optimizer": optim, "entry": name, "kind": kind, "detail": detail[:500]})


def short_error(error):
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:300]


def run_input(torch, info, dtype_name, kwargs, desc, complex_params, results, seed, grouped=False):
    optim = info.optim_cls.__name__
    name = f"{dtype_name}{'/complex' if complex_params else ''}/{desc}"
    sparse_grads = info.only_supports_sparse_grads
    cr_cls = getattr(chainrule.optim, optim)
    rng = np.random.default_rng(seed)
    values = make_params(rng, dtype_name, complex_params)
    if sparse_grads:  # an embedding table's rows: no 0-d parameter
        values.pop("scalar")
    differentiable = bool(kwargs.get("differentiable"))
    torch_params = build_params(torch, values, differentiable)
    cr_params = build_params(chainrule, values, differentiable)
    torch_kwargs = kwargs
    cr_kwargs = Converter(torch)(kwargs)
    outcomes = {}
    for lib, params, cls, kw in ((torch, torch_params, info.optim_cls, torch_kwargs),
                                 (chainrule, cr_params, cr_cls, cr_kwargs)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                outcomes[lib.__name__] = cls(param_groups(params, grouped), **kw)
        except Exception as error:  # noqa: BLE001 - the trial records what each raised
            outcomes[lib.__name__] = error
    torch_opt, cr_opt = outcomes["torch"], outcomes["chainrule"]
    if isinstance(torch_opt, Exception) or isinstance(cr_opt, Exception):
        compare_raised(results, optim, name + " (construction)", torch_opt, cr_opt)
        return
    grad_rng = np.random.default_rng(seed + 1)
    target = make_params(np.random.default_rng(seed + 2), dtype_name, complex_params)

    def step_both(step_index):
        grads = grads_for(grad_rng, values, sparse_grads)
        errors = {}
        for lib, params, opt in ((torch, torch_params, torch_opt), (chainrule, cr_params, cr_opt)):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if info.step_requires_closure:
                        opt.step(closure_for(lib, params, target))
                    else:
                        set_grads(lib, params, grads, sparse_grads)
                        opt.step()
            except Exception as error:  # noqa: BLE001
                errors[lib.__name__] = error
        return errors

    for step_index in range(STEPS):
        errors = step_both(step_index)
        if errors:
            compare_raised(results, optim, f"{name} (step {step_index + 1})", errors.get("torch"),
                           errors.get("chainrule"), traceback_of=errors.get("chainrule"))
            return
        for key in values:
            same, why = close(torch_params[key], cr_params[key], dtype_name)
            if not same:
                results.add(optim, name + " (steps)", "differ", f"step {step_index + 1}, param {key}: {why}")
                return
    results.add(optim, name + " (steps)", "same")
    problems = [f"{key}: {why}" for key in sorted(set(torch_opt.defaults) | set(cr_opt.defaults))
                for same, why in [compare_values(torch_opt.defaults.get(key, "<missing>"),
                                                 cr_opt.defaults.get(key, "<missing>"), dtype_name)] if not same]
    results.add(optim, name + " (defaults)", "differ" if problems else "same", "; ".join(problems))
    compare_state_dicts(torch, results, optim, name, torch_opt.state_dict(), cr_opt.state_dict(), dtype_name)
    # one state dict (torch's, then chainrule's) loaded into a fresh optimizer of each library, both
    # continued: loading casts state to the parameters' dtype, so each side must load the same dict
    source_values = {key: as_array(torch_params[key]).copy() for key in values}
    dicts = {"torch": torch_opt.state_dict(), "chainrule": cr_opt.state_dict()}
    dicts["an older torch"] = older_state_dict(torch, dicts["torch"], info)
    for source in dicts:
        entry = f"{name} (load {source}'s state_dict into both)"
        if source == "an older torch" and differentiable:
            results.add(optim, entry, "skipped", "an older dict drops `differentiable`, and torch's plain step then "
                        "refuses the non-leaf parameters built for the differentiable one")
            continue
        try:
            new_torch = build_params(torch, source_values, differentiable)
            new_cr = build_params(chainrule, source_values, differentiable)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                loaded_torch = info.optim_cls(param_groups(new_torch, grouped), **kwargs)
                loaded_cr = cr_cls(param_groups(new_cr, grouped), **cr_kwargs)
                state = dicts[source]
                try:
                    loaded_torch.load_state_dict(to_torch(torch, state))
                except Exception as error:  # noqa: BLE001
                    results.add(optim, entry, "torch_raised", short_error(error))
                    continue
                loaded_cr.load_state_dict(state)
                more_rng = np.random.default_rng(seed + 3)
                errors = {}
                for _ in range(MORE_STEPS):
                    grads = grads_for(more_rng, values, sparse_grads)
                    for lib, params, opt in ((torch, new_torch, loaded_torch), (chainrule, new_cr, loaded_cr)):
                        try:
                            if info.step_requires_closure:
                                opt.step(closure_for(lib, params, target))
                            else:
                                set_grads(lib, params, grads, sparse_grads)
                                opt.step()
                        except Exception as error:  # noqa: BLE001
                            errors[lib.__name__] = error
                    if errors:
                        break
            if errors:
                compare_raised(results, optim, entry + " (continued steps)", errors.get("torch"),
                               errors.get("chainrule"))
                continue
            differing = [f"{key}: {why}" for key in values
                         for same, why in [close(new_torch[key], new_cr[key], dtype_name)] if not same]
            results.add(optim, entry, "differ" if differing else "same", "; ".join(differing))
        except Exception as error:  # noqa: BLE001
            results.add(optim, entry, "chainrule_raised", short_error(error) + " | " + last_frame(error))


def older_state_dict(torch, state_dict, info):
    """torch's state dict as an older torch wrote it (its test_can_load_older_state_dict): ``step`` a
    number, not a tensor, and the flags added since the optimizer's release missing from its groups."""
    older = to_torch(torch, state_dict)
    for state in older["state"].values():
        if isinstance(state.get("step"), torch.Tensor):
            state["step"] = state["step"].item()
    for group in older["param_groups"]:
        for flag in info.not_og_supported_flags:
            group.pop(flag, None)
    return older


def last_frame(error):
    frames = traceback.extract_tb(error.__traceback__)
    return f"{os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else ""


def compare_raised(results, optim, name, torch_error, cr_error, traceback_of=None):
    if torch_error is not None and not isinstance(torch_error, Exception):
        torch_error = None
    if cr_error is not None and not isinstance(cr_error, Exception):
        cr_error = None
    if torch_error is None and cr_error is not None:
        results.add(optim, name, "chainrule_raised", short_error(cr_error) + " | " + last_frame(cr_error))
    elif torch_error is not None and cr_error is None:
        results.add(optim, name, "torch_raised", short_error(torch_error))
    elif type(torch_error) is type(cr_error) or isinstance(cr_error, type(torch_error)):
        results.add(optim, name, "same", f"both raised {type(torch_error).__name__}")
    else:
        results.add(optim, name, "differ", f"torch {short_error(torch_error)}; chainrule {short_error(cr_error)}")


def describe(value):
    """A state-dict value's kind, for the structure comparison."""
    if hasattr(value, "detach"):
        return ("tensor", str(value.dtype).replace("chainrule.", "torch."), tuple(value.shape))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(describe(v) for v in value))
    return (type(value).__name__,)


def compare_values(a, b, dtype_name):
    if hasattr(a, "detach") or hasattr(b, "detach"):
        if not (hasattr(a, "detach") and hasattr(b, "detach")):
            return False, f"{describe(a)} vs {describe(b)}"
        return close(a, b, dtype_name)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        for x, y in zip(a, b):
            same, why = compare_values(x, y, dtype_name)
            if not same:
                return same, why
        return True, ""
    if isinstance(a, float) and isinstance(b, float):
        return bool(np.isclose(a, b, rtol=1e-12) or a == b), f"{a!r} vs {b!r}"
    return a == b, f"{a!r} vs {b!r}"


def compare_state_dicts(torch, results, optim, name, theirs, ours, dtype_name):
    problems = []
    if sorted(theirs) != sorted(ours):
        problems.append(f"top keys {sorted(theirs)} vs {sorted(ours)}")
    if sorted(theirs["state"]) != sorted(ours["state"]):
        problems.append(f"state indices {sorted(theirs['state'])} vs {sorted(ours['state'])}")
    for index in sorted(set(theirs["state"]) & set(ours["state"])):
        t_state, c_state = theirs["state"][index], ours["state"][index]
        if sorted(t_state) != sorted(c_state):
            problems.append(f"state[{index}] keys {sorted(t_state)} vs {sorted(c_state)}")
        for key in sorted(set(t_state) & set(c_state)):
            if describe(t_state[key]) != describe(c_state[key]):
                problems.append(f"state[{index}][{key}] {describe(t_state[key])} vs {describe(c_state[key])}")
                continue
            same, why = compare_values(t_state[key], c_state[key], dtype_name)
            if not same:
                problems.append(f"state[{index}][{key}] {why}")
    for number, (t_group, c_group) in enumerate(zip(theirs["param_groups"], ours["param_groups"])):
        if sorted(t_group) != sorted(c_group):
            problems.append(f"group {number} keys: torch only {sorted(set(t_group) - set(c_group))}, "
                            f"chainrule only {sorted(set(c_group) - set(t_group))}")
        for key in sorted(set(t_group) & set(c_group)):
            same, why = compare_values(t_group[key], c_group[key], dtype_name)
            if not same:
                problems.append(f"group {number}[{key}] {why}")
    results.add(optim, name + " (state_dict)", "differ" if problems else "same", "; ".join(problems))


# ------------------------------------------------------------------ error inputs
def run_error_input(torch, common, info, dtype_name, error_input, results):
    optim = info.optim_cls.__name__
    optim_input = error_input.optimizer_error_input
    name = f"{dtype_name}/error/{optim_input.desc}"
    convert = Converter(torch)
    try:
        params = convert(optim_input.params)
        kwargs = convert(optim_input.kwargs)
    except Exception as error:  # noqa: BLE001
        results.add(optim, name, "skipped", f"the input has no chainrule counterpart: {short_error(error)}")
        return
    cr_cls = getattr(chainrule.optim, optim)
    expected_type, regex = error_input.error_type, error_input.error_regex
    on_step = error_input.error_on == common.OptimizerErrorEnum.STEP_ERROR
    outcome = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            optimizer = cr_cls(params, **kwargs)
            if on_step:
                optimizer.step()
        except Exception as error:  # noqa: BLE001
            outcome = error
    if issubclass(expected_type, Warning):
        matching = [w for w in caught if issubclass(w.category, expected_type) and re.search(regex, str(w.message))]
        if matching:
            results.add(optim, name, "same", f"warned {expected_type.__name__}")
        elif outcome is not None:
            results.add(optim, name, "chainrule_raised", short_error(outcome))
        else:
            results.add(optim, name, "torch_raised",
                        f"torch warns {expected_type.__name__} /{regex}/; chainrule warned "
                        f"{[str(w.message)[:80] for w in caught]}")
        return
    if outcome is None:
        results.add(optim, name, "torch_raised", f"torch raises {expected_type.__name__} /{regex}/; chainrule did not"
                    + (" (at the step)" if on_step else ""))
    elif not isinstance(outcome, expected_type):
        results.add(optim, name, "differ", f"torch {expected_type.__name__} /{regex}/; chainrule {short_error(outcome)}")
    elif not re.search(regex, str(outcome)):
        results.add(optim, name, "differ", f"message: torch /{regex}/; chainrule {short_error(outcome)}")
    else:
        results.add(optim, name, "same", f"raised {expected_type.__name__}")


# ------------------------------------------------------------------ schedulers
# torch scheduler behaviours beyond optim_db's scheduler_inputs: each a list of constructors over
# the scheduler module S and the optimizer
EXTRA_SCHEDULERS = {
    "MultiStepLR": [lambda S, o: S.MultiStepLR(o, milestones=[3, 7, 7], gamma=0.5)],
    "CosineAnnealingLR": [lambda S, o: S.CosineAnnealingLR(o, T_max=6, eta_min=1e-4)],
    "CosineAnnealingWarmRestarts": [lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=1e-5)],
    "OneCycleLR": [lambda S, o: S.OneCycleLR(o, max_lr=0.1, total_steps=SCHEDULER_STEPS + 1)],
    "OneCycleLR linear three_phase": [lambda S, o: S.OneCycleLR(o, max_lr=0.1, total_steps=SCHEDULER_STEPS + 1,
                                                                anneal_strategy="linear", three_phase=True)],
    "CyclicLR triangular2": [lambda S, o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=3,
                                                     mode="triangular2", cycle_momentum=False)],
    "CyclicLR exp_range": [lambda S, o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=2, step_size_down=4,
                                                   mode="exp_range", gamma=0.9, cycle_momentum=False)],
    "MultiplicativeLR": [lambda S, o: S.MultiplicativeLR(o, lr_lambda=lambda epoch: 0.95)],
    "LambdaLR": [lambda S, o: S.LambdaLR(o, lr_lambda=lambda epoch: 1.0 / (epoch + 1))],
    "SequentialLR": [lambda S, o: S.SequentialLR(o, schedulers=[S.ConstantLR(o, factor=0.5, total_iters=3),
                                                                S.ExponentialLR(o, gamma=0.9)], milestones=[4])],
    "ChainedScheduler": [lambda S, o: S.ChainedScheduler([S.ConstantLR(o, factor=0.5, total_iters=5),
                                                          S.ExponentialLR(o, gamma=0.9)])],
    "ReduceLROnPlateau patience 2 cooldown 1": [lambda S, o: S.ReduceLROnPlateau(o, patience=2, cooldown=1,
                                                                                  factor=0.5, min_lr=1e-3)],
    "ReduceLROnPlateau max threshold abs": [lambda S, o: S.ReduceLROnPlateau(o, mode="max", threshold_mode="abs",
                                                                              threshold=0.1, patience=1)],
    "LinearLR + StepLR, two groups": [lambda S, o: S.LinearLR(o, start_factor=0.25, total_iters=5),
                                      lambda S, o: S.StepLR(o, step_size=3, gamma=0.5)],
}


def rebind(function, namespace):
    """``function`` (a lambda of optim_db's scheduler_inputs, which names torch's schedulers as
    globals) with those names bound to ``namespace``'s schedulers instead."""
    scope = dict(function.__globals__)
    scope.update({name: getattr(namespace, name) for name in function.__code__.co_names if hasattr(namespace, name)})
    return types.FunctionType(function.__code__, scope, function.__name__, function.__defaults__,
                              function.__closure__)


def metric(step_index):
    """ReduceLROnPlateau's metric: it improves, then plateaus (so the schedule reduces)."""
    return max(1.0 - 0.1 * step_index, 0.5)


def scheduler_state(scheduler):
    state = {k: v for k, v in scheduler.state_dict().items() if k not in ("optimizer", "_schedulers", "_get_lr_called_within_step")}
    return state


def run_schedulers(torch, optim_name, torch_cls, cr_cls, label, constructors, results, two_groups=False):
    name = f"scheduler/{label}"
    libs = {}
    for lib, cls, module in ((torch, torch_cls, torch.optim.lr_scheduler), (chainrule, cr_cls, cr_schedulers)):
        values = np.arange(6, dtype=np.float32).reshape(2, 3)
        params = [lib.nn.Parameter(lib.from_numpy(values.copy())), lib.nn.Parameter(lib.from_numpy(values[0].copy()))]
        groups = [{"params": params[:1]}, {"params": params[1:], "lr": 0.05}] if two_groups else params
        kwargs = {"lr": 0.1, "momentum": 0.9} if optim_name == "SGD" else {"lr": 0.01}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                optimizer = cls(groups, **kwargs)
                schedulers = [make(module, optimizer) for make in constructors]
        except Exception as error:  # noqa: BLE001
            libs[lib.__name__] = error
            continue
        libs[lib.__name__] = (optimizer, schedulers, params)
    if any(isinstance(v, Exception) for v in libs.values()):
        compare_raised(results, optim_name, name + " (construction)",
                       libs["torch"] if isinstance(libs["torch"], Exception) else None,
                       libs["chainrule"] if isinstance(libs["chainrule"], Exception) else None)
        return
    problems = []
    for step_index in range(SCHEDULER_STEPS):
        seen = {}
        for lib_name, (optimizer, schedulers, params) in libs.items():
            lib = torch if lib_name == "torch" else chainrule
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    for p in params:
                        p.grad = lib.ones_like(p).to_sparse() if optim_name == "SparseAdam" else lib.ones_like(p)
                    optimizer.step()
                    for scheduler in schedulers:
                        if type(scheduler).__name__ == "ReduceLROnPlateau":
                            scheduler.step(metric(step_index))
                        else:
                            scheduler.step()
                    seen[lib_name] = ([g["lr"] for g in optimizer.param_groups],
                                      [s.get_last_lr() for s in schedulers],
                                      [scheduler_state(s) for s in schedulers])
            except Exception as error:  # noqa: BLE001
                seen[lib_name] = error
        if any(isinstance(v, Exception) for v in seen.values()):
            compare_raised(results, optim_name, f"{name} (step {step_index + 1})",
                           seen["torch"] if isinstance(seen["torch"], Exception) else None,
                           seen["chainrule"] if isinstance(seen["chainrule"], Exception) else None)
            return
        (t_lrs, t_last, t_states), (c_lrs, c_last, c_states) = seen["torch"], seen["chainrule"]
        same, why = compare_values([float(x) for x in t_lrs], [float(x) for x in c_lrs], "float64")
        if not same:
            problems.append(f"step {step_index + 1} lr {t_lrs} vs {c_lrs}")
        same, why = compare_values(plain(t_last), plain(c_last), "float64")
        if not same:
            problems.append(f"step {step_index + 1} get_last_lr {t_last} vs {c_last}")
        for number, (t_state, c_state) in enumerate(zip(t_states, c_states)):
            if sorted(t_state) != sorted(c_state):
                problems.append(f"scheduler {number} state_dict keys: torch only {sorted(set(t_state) - set(c_state))}, "
                                f"chainrule only {sorted(set(c_state) - set(t_state))}")
            for key in sorted(set(t_state) & set(c_state)):
                same, why = compare_values(plain(t_state[key]), plain(c_state[key]), "float64")
                if not same:
                    problems.append(f"step {step_index + 1} scheduler {number} state[{key}] {why}")
        if problems:
            break
    results.add(optim_name, name, "differ" if problems else "same", "; ".join(problems[:3]))
    if problems:
        return
    # torch's scheduler state dicts load into chainrule's, and chainrule's into torch's
    entry = f"{name} (state_dict round trip)"
    try:
        (_, t_schedulers, _), (_, c_schedulers, _) = libs["torch"], libs["chainrule"]
        for t_sched, c_sched in zip(t_schedulers, c_schedulers):
            c_sched.load_state_dict(plain_state(t_sched.state_dict()))
            t_sched.load_state_dict(plain_state(c_sched.state_dict()))
        results.add(optim_name, entry, "same")
    except Exception as error:  # noqa: BLE001
        results.add(optim_name, entry, "chainrule_raised", short_error(error) + " | " + last_frame(error))


def plain(value):
    """Numbers and tensors of a scheduler's state as Python floats (torch keeps some as tensors)."""
    if hasattr(value, "detach"):
        return value.detach().numpy().tolist()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def plain_state(state):
    return {k: v for k, v in state.items()}


# ------------------------------------------------------------------ driver
DTYPES = ("float32", "float64")


def stable_seed(*parts) -> int:
    """An entry's seed from its name, so a filtered run draws what the full run draws."""
    return zlib.crc32("/".join(map(str, parts)).encode()) % (2 ** 31)


def trial(filter_text=None, names=None, dtypes=DTYPES, impl_variants=True, complex_variants=True,
          extra_schedulers=None):
    """Run the trial; ``names``: exact optimizer names (``filter_text``: a substring of them);
    ``extra_schedulers``: whether to run EXTRA_SCHEDULERS (default: when SGD is in the run)."""
    torch, common = _torch()
    torch.manual_seed(0)
    chainrule.manual_seed(0)
    out = []
    results = Result(out)
    selected = []
    for info in common.optim_db:
        optim = info.optim_cls.__name__
        if filter_text and filter_text.lower() not in optim.lower() or names is not None and optim not in names:
            continue
        selected.append(optim)
        if not hasattr(chainrule.optim, optim):
            results.add(optim, "all", "skipped", "chainrule has no such optimizer")
            continue
        impls = [flag for flag in info.supported_impls if flag != "fused" or "cpu" in info.supports_fused_on]
        for dtype_name in dtypes:
            inputs = [(i.kwargs, i.desc) for i in info.optim_inputs_func(device="cpu", dtype=getattr(torch, dtype_name))]
            cuda_only = [(i.kwargs, i.desc + " [CUDA config, on the CPU]")
                         for i in info.optim_inputs_func(device="cuda", dtype=getattr(torch, dtype_name))
                         if i.desc not in {d for _, d in inputs}]
            for number, (kwargs, desc) in enumerate(inputs + cuda_only):
                variants = [(dict(kwargs, **{flag: False for flag in impls}), desc, False)]
                if impl_variants:
                    variants += [(dict(kwargs, **{f: f == flag for f in impls}), f"{desc} & {flag}", False)
                                 for flag in impls]
                if number == 0 and info.supports_param_groups:
                    variants.append((dict(kwargs), f"{desc} (two param groups)", True))
                for variant_kwargs, variant_desc, grouped in variants:
                    for complex_params in (False, True) if complex_variants else (False,):
                        if complex_params and not info.supports_complex:
                            continue
                        seed = stable_seed(optim, dtype_name, variant_desc, complex_params)
                        try:
                            run_input(torch, info, dtype_name, variant_kwargs, variant_desc, complex_params, results,
                                      seed, grouped)
                        except Exception as error:  # noqa: BLE001 - a trial bug, recorded not hidden
                            results.add(optim, f"{dtype_name}/{variant_desc}", "chainrule_raised",
                                        "trial: " + short_error(error) + " | " + last_frame(error))
            if info.optim_error_inputs_func is not None:
                torch.manual_seed(0)
                for error_input in info.optim_error_inputs_func(device="cpu", dtype=getattr(torch, dtype_name)):
                    run_error_input(torch, common, info, dtype_name, error_input, results)
        cr_cls = getattr(chainrule.optim, optim)
        for number, constructors in enumerate(info.scheduler_inputs or ()):
            label = f"db {number}: " + ", ".join(describe_lambda(c) for c in constructors)
            run_schedulers(torch, optim, info.optim_cls, cr_cls, label,
                           [lambda S, o, c=c: rebind(c, S)(o) for c in constructors], results)
    if extra_schedulers is None:
        extra_schedulers = "SGD" in selected
    if extra_schedulers:
        for label, constructors in EXTRA_SCHEDULERS.items():
            run_schedulers(torch, "SGD", torch.optim.SGD, chainrule.optim.SGD, label, constructors, results,
                           two_groups="two groups" in label)
    return out


def describe_lambda(function):
    names = [n for n in function.__code__.co_names if n[0].isupper()]
    return "+".join(names) or "lambda"


def write(out, directory):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "results.json"), "w") as handle:
        json.dump(out, handle, indent=1)
    table = collections.defaultdict(collections.Counter)
    for row in out:
        table[row["optimizer"]][row["kind"]] += 1
    kinds = ["same", "differ", "chainrule_raised", "torch_raised", "skipped"]
    lines = ["| optimizer | entries | " + " | ".join(kinds) + " |", "|---" * (len(kinds) + 2) + "|"]
    total = collections.Counter()
    for optim in sorted(table):
        counts = table[optim]
        total.update(counts)
        lines.append(f"| {optim} | {sum(counts.values())} | " + " | ".join(str(counts[k]) for k in kinds) + " |")
    lines.append(f"| **all** | {sum(total.values())} | " + " | ".join(str(total[k]) for k in kinds) + " |")
    details = [f"- {r['optimizer']} {r['entry']}: **{r['kind']}** {r['detail']}" for r in out
               if r["kind"] not in ("same",)]
    with open(os.path.join(directory, "summary.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n\n" + "\n".join(details) + "\n")
    print("\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--out", required=True)
    run.add_argument("--filter", default=None, help="only optimizers whose name contains this")
    args = parser.parse_args(argv)
    out = trial(args.filter)
    write(out, args.out)


if __name__ == "__main__":
    main()
