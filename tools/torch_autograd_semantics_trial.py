"""Autograd semantics as users drive them: small programs run on torch and on chainrule, compared.

Two sources of cases, each run once with ``lib`` = torch and once with ``lib`` = chainrule (the modules
swapped, in one process), from the same seeded NumPy values, each under a time limit:

* ``program``: random view + in-place programs. A leaf (requiring grad or not) gives a base (the leaf
  itself, ``x * 1.5``, ``x.clone()`` or a detached product); a chain of up to two views of it (view,
  reshape, transpose, t, permute, narrow, select, slicing with steps, expand, unsqueeze, unbind, split,
  chunk, diagonal, as_strided, squeeze, flatten, movedim, detach); maybe an op whose backward saves the
  view or the base (sin, pow, mul, sigmoid, exp); an in-place op on the view or the base (add_, mul_,
  sub_, div_, clamp_, copy_, zero_, fill_, exp_, sigmoid_, relu_, pow_, addcmul_, index_add_,
  index_fill_, masked_fill_, setitem with an index, a slice or a mask), directly, under ``no_grad``,
  through ``.data`` or through ``.detach()``; then a position-weighted sum of base and view, backward.
* ``scenario``: hand-written cases of what users hit: tensor hooks (leaves, non-leaves, views, order,
  ``remove``, wrong shapes), ``retain_grad``, ``register_post_accumulate_grad_hook``, ``grad_fn`` hooks
  and pre-hooks, ``nn.Module`` full backward hooks and pre-hooks, ``backward(inputs=)``, ``retain_graph``,
  non-scalar ``backward``, ``autograd.grad`` (allow_unused, materialize_grads, grad_outputs,
  create_graph, is_grads_batched), ``.grad`` accumulation and assignment, ``requires_grad_``,
  ``detach``/``.data``, grad modes and ``inference_mode``, saved-tensor hooks, ``save_on_cpu``,
  ``disable_saved_tensors_hooks``, ``detect_anomaly``, ``utils.checkpoint``.

Each case records, as it goes, named items: values, gradients (values, shapes, dtypes, None-ness),
``grad_fn`` names, ``_version`` counters, flags, hook calls, warning classes; and the exception that
ended it (class and first line of the message). Kinds:

    both_ok                neither raised, every item agrees
    values_differ          neither raised (or both, alike), an item that is not a gradient differs
    grad_differ            ... a gradient differs (any item named grad*)
    same_error             both raised the same class and first line, the items before agree
    error_class_differs    both raised, another class
    message_differs        both raised the same class, another first line
    torch_only_raised      torch raised, chainrule went on
    chainrule_only_raised  chainrule raised, torch went on
    skipped                a case torch itself cannot run (time limit)

    python tools/torch_autograd_semantics_trial.py run --out /tmp/ags [--programs 400] [--filter hook]
    python tools/torch_autograd_semantics_trial.py show --out /tmp/ags --kind grad_differ [--filter unbind]

``run`` writes ``cases.json`` and prints counts per source and kind, and the biggest groups.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import re
import sys
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from torch_oracle import time_limit  # noqa: E402

KINDS = ("both_ok", "values_differ", "grad_differ", "same_error", "error_class_differs", "message_differs",
         "torch_only_raised", "chainrule_only_raised", "skipped")
SECONDS_PER_CASE = 10
TOLERANCE = dict(rtol=1e-5, atol=1e-6)


class CaseTimeout(Exception):
    pass


# ----------------------------------------------------------------------------------------------
# recording
# ----------------------------------------------------------------------------------------------

def _is_tensor(value) -> bool:
    return hasattr(value, "grad_fn") and hasattr(value, "shape")


def snapshot(value):
    """A plain, frozen form of a recorded value: tensors become (shape, dtype, requires_grad, values)."""
    if _is_tensor(value):
        array = value.detach().numpy().copy() if value.device.type != "meta" else None
        return {"shape": list(value.shape), "dtype": str(value.dtype).rpartition(".")[2],
                "requires_grad": bool(value.requires_grad), "values": array}
    if isinstance(value, (list, tuple)):
        return [snapshot(item) for item in value]
    if isinstance(value, dict):
        return {key: snapshot(item) for key, item in value.items()}
    if isinstance(value, (bool, int, float, str, type(None))):
        return value
    return type(value).__name__


def jsonable(value):
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return np.round(value.astype(np.float64), 5).tolist() if value.dtype.kind in "fc" else value.tolist()
    return value


class Record:
    """The named items one run of a case records, in order."""

    def __init__(self):
        self.items: list = []

    def __call__(self, name, value):
        self.items.append((name, snapshot(value)))

    def node(self, name, tensor):
        """``tensor.grad_fn``'s class name (None for leaves and tensors outside the graph)."""
        self(name, None if tensor.grad_fn is None else type(tensor.grad_fn).__name__)


def node_name(node):
    return None if node is None else type(node).__name__


def _first_line(error) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""


def execute(lib, case):
    """(items, error, warning classes) of one library's run of ``case``."""
    record = Record()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with time_limit(SECONDS_PER_CASE, CaseTimeout):
                case.run(lib, record, case.data)
            error = None
        except CaseTimeout as timeout:
            error = timeout
        except Exception as exc:  # noqa: BLE001 - an exception is an outcome to compare
            error = exc
    # warnings from outside the library (NumPy's, the trial's own) are not the library's answer
    classes = sorted({w.category.__name__ for w in caught if not _internal_warning(w)})
    return record.items, error, classes


def _internal_warning(w) -> bool:
    return "numpy" in (w.filename or "") or w.category is DeprecationWarning


def _same(a, b) -> bool:
    if isinstance(a, dict) and "values" in a and isinstance(b, dict) and "values" in b:
        if (a["shape"], a["dtype"], a["requires_grad"]) != (b["shape"], b["dtype"], b["requires_grad"]):
            return False
        if a["values"] is None or b["values"] is None:
            return True
        x, y = a["values"], b["values"]
        if x.dtype.kind in "fc":
            return x.shape == y.shape and bool(np.allclose(x, y, equal_nan=True, **TOLERANCE))
        return bool(np.array_equal(x, y))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return bool(np.isclose(a, b, equal_nan=True, **TOLERANCE))
    return a == b


def _describe(item):
    if isinstance(item, dict) and "values" in item:
        values = item["values"]
        text = "" if values is None else np.array2string(values, precision=4, threshold=12)
        return f"{item['dtype']}{item['shape']} rg={item['requires_grad']} {text}"
    if isinstance(item, list):
        return "[" + ", ".join(_describe(x) for x in item) + "]"
    return repr(item)


def first_difference(torch_items, chainrule_items):
    """(item name, what differs) for the first item that differs, or None."""
    for (name, want), (other, got) in zip(torch_items, chainrule_items):
        if name != other:
            return name, f"item {other!r} where torch recorded {name!r}"
        if not _same(want, got):
            return name, f"torch {_describe(want)} | chainrule {_describe(got)}"
    if len(torch_items) != len(chainrule_items):
        longer = torch_items if len(torch_items) > len(chainrule_items) else chainrule_items
        name = longer[min(len(torch_items), len(chainrule_items))][0]
        return name, f"torch recorded {len(torch_items)} items, chainrule {len(chainrule_items)}"
    return None


def classify(case):
    import torch

    import chainrule

    torch.manual_seed(0)
    theirs, torch_error, torch_warnings = execute(torch, case)
    if isinstance(torch_error, CaseTimeout):
        return {"kind": "skipped", "reason": "torch ran past the time limit"}
    chainrule.manual_seed(0)
    ours, our_error, our_warnings = execute(chainrule, case)
    record = {}
    if torch_error is not None:
        record["torch"] = f"{type(torch_error).__name__}: {_first_line(torch_error)[:300]}"
    if our_error is not None:
        record["chainrule"] = f"{type(our_error).__name__}: {_first_line(our_error)[:300]}"
    if torch_error is not None and our_error is None:
        return {**record, "kind": "torch_only_raised"}
    if our_error is not None and torch_error is None:
        return {**record, "kind": "chainrule_only_raised"}
    if torch_error is not None and type(torch_error).__name__ != type(our_error).__name__:
        return {**record, "kind": "error_class_differs"}
    difference = first_difference(theirs, ours)
    if difference is None and torch_warnings != our_warnings:
        difference = ("warnings", f"torch {torch_warnings} | chainrule {our_warnings}")
    if difference is not None:
        name, detail = difference
        kind = "grad_differ" if name.startswith("grad") else "values_differ"
        return {**record, "kind": kind, "item": name, "difference": detail}
    if torch_error is not None and _first_line(torch_error) != _first_line(our_error):
        return {**record, "kind": "message_differs"}
    return {**record, "kind": "same_error" if torch_error is not None else "both_ok"}


class Case:
    def __init__(self, source, name, run, data=None):
        self.source, self.name, self.run, self.data = source, name, run, data


def tensor(lib, array, requires_grad=False):
    """A library tensor with ``array``'s values (float32 unless the array says otherwise)."""
    return lib.from_numpy(np.array(array, copy=True)).requires_grad_(requires_grad)


def weights(lib, t):
    """Position-dependent weights of ``t``'s shape: a weighted sum tells which element a gradient hit."""
    return (lib.arange(t.numel(), dtype=t.dtype) * 0.25 + 1).reshape(t.shape)


# ----------------------------------------------------------------------------------------------
# random view + in-place programs
# ----------------------------------------------------------------------------------------------

SHAPES = ((4, 3), (2, 3, 4), (6,), (3, 3), (1, 4))
BASES = ("leaf", "leaf", "mul", "mul", "clone", "detached")
VIA = ("direct", "direct", "direct", "direct", "no_grad", "data", "detach")
SAVED = ("sin", "pow", "mul", "sigmoid", "exp")


def view_choices(shape):
    """[(name, args)] of the views that apply to a tensor of ``shape``."""
    ndim = len(shape)
    choices = [("view_flat", ()), ("reshape_flat", ()), ("unsqueeze", (0,)), ("detach", ()), ("flatten", ()),
               ("expand", (2,)), ("squeeze", ())]
    if ndim >= 1 and shape[0] >= 1:
        choices += [("select", (0, shape[0] - 1)), ("narrow", (ndim - 1, 1 if shape[-1] > 1 else 0,
                                                              max(shape[-1] - 1, 1))),
                    ("slice_step", (ndim - 1,)), ("unbind", (0, 0)), ("split", (0, 1)), ("chunk", (ndim - 1, 1)),
                    ("as_strided", ()), ("view_split", ())]
    if ndim >= 2:
        choices += [("transpose", (0, 1)), ("permute", ()), ("diagonal", ()), ("movedim", (0, -1))]
    if ndim <= 2:
        choices += [("t", ())]
    return choices


def apply_view(lib, t, name, args):
    if name == "view_flat":
        return t.view(-1)
    if name == "view_split":
        return t.view(t.shape[0], -1)
    if name == "reshape_flat":
        return t.reshape(-1)
    if name == "unsqueeze":
        return t.unsqueeze(*args)
    if name == "detach":
        return t.detach()
    if name == "flatten":
        return t.flatten()
    if name == "expand":
        return t.unsqueeze(0).expand(args[0], *t.shape)
    if name == "squeeze":
        return t.squeeze()
    if name == "select":
        return t.select(*args)
    if name == "narrow":
        return t.narrow(*args)
    if name == "slice_step":
        return t[(slice(None),) * args[0] + (slice(None, None, 2),)]
    if name == "unbind":
        return t.unbind(args[0])[args[1]]
    if name == "split":
        return t.split(1, args[0])[args[1]]
    if name == "chunk":
        return t.chunk(2, args[0])[args[1]]
    if name == "as_strided":
        return t.as_strided((min(2, t.numel()),), (t.stride(-1) if t.dim() else 1,))
    if name == "transpose":
        return t.transpose(*args)
    if name == "permute":
        return t.permute(*reversed(range(t.dim())))
    if name == "diagonal":
        return t.diagonal()
    if name == "movedim":
        return t.movedim(*args)
    if name == "t":
        return t.t()
    raise ValueError(name)


def inplace_choices(shape):
    ndim = len(shape)
    choices = ["add_", "mul_", "sub_", "div_", "clamp_", "copy_", "zero_", "fill_", "exp_", "sigmoid_", "relu_",
               "pow_", "addcmul_", "mul_other_", "add_other_"]
    if ndim >= 1 and shape[0] >= 1:
        choices += ["index_add_", "index_fill_", "masked_fill_", "setitem_index", "setitem_slice", "setitem_mask",
                    "setitem_other"]
    return choices


def apply_inplace(lib, t, name, other, mask):
    """``name`` applied in place to ``t``; ``other`` a tensor of ``t``'s shape, ``mask`` a bool array."""
    if name == "add_":
        return t.add_(1.5)
    if name == "mul_":
        return t.mul_(2.0)
    if name == "sub_":
        return t.sub_(0.5)
    if name == "div_":
        return t.div_(4.0)
    if name == "clamp_":
        return t.clamp_(-0.3, 0.4)
    if name == "copy_":
        return t.copy_(other)
    if name == "zero_":
        return t.zero_()
    if name == "fill_":
        return t.fill_(0.75)
    if name == "exp_":
        return t.exp_()
    if name == "sigmoid_":
        return t.sigmoid_()
    if name == "relu_":
        return t.relu_()
    if name == "pow_":
        return t.pow_(2)
    if name == "addcmul_":
        return t.addcmul_(other, other, value=0.5)
    if name == "mul_other_":
        return t.mul_(other)
    if name == "add_other_":
        return t.add_(other, alpha=2)
    index = lib.tensor([0], dtype=lib.int64)
    if name == "index_add_":
        return t.index_add_(0, index, other[:1] * 3)
    if name == "index_fill_":
        return t.index_fill_(0, index, -1.0)
    if name == "masked_fill_":
        return t.masked_fill_(tensor(lib, mask), 0.0)
    if name == "setitem_index":
        t[0] = 5.0
        return t
    if name == "setitem_slice":
        t[..., :1] = -2.0
        return t
    if name == "setitem_mask":
        t[tensor(lib, mask)] = 0.25
        return t
    if name == "setitem_other":
        t[0] = other[0] * 2
        return t
    raise ValueError(name)


def apply_saved(lib, t, name, other):
    if name == "sin":
        return t.sin()
    if name == "pow":
        return t.pow(3)
    if name == "mul":
        return t * other
    if name == "sigmoid":
        return t.sigmoid()
    return t.exp()


def make_program(seed):
    """One program as data: its choices and the NumPy values it uses (drawn here, once)."""
    import torch

    chooser = random.Random(seed)
    rng = np.random.default_rng(seed)
    shape = chooser.choice(SHAPES)
    program = {"shape": shape, "x": rng.uniform(-1, 1, shape).astype(np.float32),
               "leaf_requires_grad": chooser.random() < 0.8, "base": chooser.choice(BASES),
               "views_in_no_grad": chooser.random() < 0.1, "views": []}
    probe = torch.zeros(shape)
    for _ in range(chooser.choice((0, 1, 1, 2))):
        name, args = chooser.choice(view_choices(tuple(probe.shape)))
        try:
            probe = apply_view(torch, probe, name, args)
        except Exception:  # noqa: BLE001 - a view torch refuses here is still a case: it ends the chain
            program["views"].append((name, args))
            break
        program["views"].append((name, args))
    program["target"] = chooser.choice(("view", "view", "base"))
    target_shape = tuple(probe.shape) if program["target"] == "view" else shape
    program["inplace"] = chooser.choice(inplace_choices(target_shape))
    program["via"] = chooser.choice(VIA)
    program["other_requires_grad"] = chooser.random() < 0.5
    program["other"] = rng.uniform(-1, 1, target_shape).astype(np.float32)
    program["mask"] = rng.uniform(0, 1, target_shape) < 0.5
    program["saved"] = chooser.choice((None, None) + SAVED)
    program["saved_on"] = chooser.choice(("view", "base"))
    program["saved_other"] = rng.uniform(-1, 1, tuple(probe.shape) if program["saved_on"] == "view"
                                         else shape).astype(np.float32)
    program["retain_view_grad"] = chooser.random() < 0.2
    return program


def program_name(program) -> str:
    views = "+".join(name for name, _ in program["views"]) or "none"
    saved = f" saved={program['saved']}({program['saved_on']})" if program["saved"] else ""
    return (f"{program['base']}{'' if program['leaf_requires_grad'] else '(no grad)'} views={views} "
            f"{program['inplace']}({program['target']}, {program['via']}){saved}")


def run_program(lib, record, program):
    x = tensor(lib, program["x"], program["leaf_requires_grad"])
    base = {"leaf": lambda: x, "mul": lambda: x * 1.5, "clone": lambda: x.clone(),
            "detached": lambda: (x * 1.5).detach()}[program["base"]]()
    record.node("base.grad_fn", base)
    view = base
    with lib.no_grad() if program["views_in_no_grad"] else contextlib.nullcontext():
        for name, args in program["views"]:
            view = apply_view(lib, view, name, args)
            record.node(f"view.grad_fn after {name}", view)
    record("view._is_view", view._is_view())
    if program["retain_view_grad"]:
        view.retain_grad()
    target = view if program["target"] == "view" else base
    other = tensor(lib, program["other"], program["other_requires_grad"])
    saved = None
    if program["saved"]:
        saved_on = view if program["saved_on"] == "view" else base
        saved = apply_saved(lib, saved_on, program["saved"], tensor(lib, program["saved_other"]))
    via = program["via"]
    if via == "no_grad":
        with lib.no_grad():
            apply_inplace(lib, target, program["inplace"], other, program["mask"])
    elif via == "data":
        apply_inplace(lib, target.data, program["inplace"], other, program["mask"])
    elif via == "detach":
        apply_inplace(lib, target.detach(), program["inplace"], other, program["mask"])
    else:
        apply_inplace(lib, target, program["inplace"], other, program["mask"])
    record("versions x/base/view", [x._version, base._version, view._version])
    record.node("base.grad_fn after", base)
    record.node("view.grad_fn after", view)
    record("requires_grad base/view", [base.requires_grad, view.requires_grad])
    record("base", base)
    record("view", view)
    loss = (base * weights(lib, base)).sum() + (view * weights(lib, view)).sum()
    if saved is not None:
        loss = loss + (saved * weights(lib, saved)).sum()
    record("loss", loss)
    if not loss.requires_grad:
        return
    loss.backward()
    record("grad x", x.grad)
    record("grad other", other.grad)
    if program["retain_view_grad"]:
        record("grad view (retained)", view.grad)


def program_cases(count, start=0):
    cases = []
    for seed in range(start, start + count):
        program = make_program(seed)
        cases.append(Case("program", f"#{seed} {program_name(program)}", run_program, program))
    return cases


# ----------------------------------------------------------------------------------------------
# hand-written scenarios
# ----------------------------------------------------------------------------------------------

SCENARIOS: list = []


def scenario(*variants):
    """Register a scenario ``f(lib, record, variant)``, once per variant (a single None when none)."""
    def register(function):
        for variant in variants or (None,):
            label = function.__name__ if variant is None else f"{function.__name__}[{variant}]"
            SCENARIOS.append(Case("scenario", label, function, variant))
        return function
    return register


def values(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def leaf(lib, shape=(3, 4), seed=0, requires_grad=True):
    return tensor(lib, values(shape, seed), requires_grad)


# --- tensor hooks ---
@scenario("leaf", "nonleaf", "view", "leaf_twice_used")
def tensor_hook_returning_none(lib, record, where):
    x = leaf(lib)
    seen = []
    y = x * 2
    target = {"leaf": x, "nonleaf": y, "view": y[1], "leaf_twice_used": x}[where]
    target.register_hook(lambda g: seen.append(g.clone()))
    loss = (y * weights(lib, y)).sum()
    if where == "leaf_twice_used":
        loss = loss + (x * x).sum()
    loss.backward()
    record("hook calls", seen)
    record("grad x", x.grad)


@scenario("leaf", "nonleaf", "view")
def tensor_hook_returning_new_grad(lib, record, where):
    x = leaf(lib)
    y = x * 2
    target = {"leaf": x, "nonleaf": y, "view": y[1:, :2]}[where]
    target.register_hook(lambda g: g * 10 + 1)
    (y * weights(lib, y)).sum().backward()
    record("grad x", x.grad)


@scenario("leaf", "nonleaf")
def hook_order_and_remove(lib, record, where):
    x = leaf(lib)
    y = x * 2
    target = x if where == "leaf" else y
    order = []
    first = target.register_hook(lambda g: order.append("first") or g * 2)
    target.register_hook(lambda g: order.append("second") or g + 1)
    third = target.register_hook(lambda g: order.append("third"))
    third.remove()
    (y * weights(lib, y)).sum().backward(retain_graph=True)
    record("order", order)
    record("grad x", x.grad)
    first.remove()
    first.remove()
    x.grad = None
    (y * weights(lib, y)).sum().backward()
    record("order after remove", order)
    record("grad x after remove", x.grad)


@scenario("hook_then_retain", "retain_then_hook")
def retain_grad_and_hooks(lib, record, order):
    x = leaf(lib)
    y = x * 2
    if order == "retain_then_hook":
        y.retain_grad()
        y.register_hook(lambda g: g * 3)
    else:
        y.register_hook(lambda g: g * 3)
        y.retain_grad()
    z = y.sin()
    (z * weights(lib, z)).sum().backward()
    record("grad y", y.grad)
    record("grad x", x.grad)
    record("y.retains_grad", y.retains_grad)


@scenario("wrong_shape", "wrong_dtype", "no_requires_grad", "not_callable_returns_int")
def tensor_hook_errors(lib, record, how):
    x = leaf(lib, requires_grad=how != "no_requires_grad")
    if how == "wrong_shape":
        x.register_hook(lambda g: g.sum(0))
    elif how == "wrong_dtype":
        x.register_hook(lambda g: g.double())
    elif how == "no_requires_grad":
        x.register_hook(lambda g: g)
    else:
        x.register_hook(lambda g: 3)
    (x * 2).sum().backward()
    record("grad x", x.grad)


@scenario("leaf", "nonleaf")
def retain_grad_corners(lib, record, where):
    x = leaf(lib, requires_grad=where == "leaf")
    y = x * 2
    record("retain on", where)
    (x if where == "leaf" else y).retain_grad()
    record("y.retains_grad", y.retains_grad)
    record("x.retains_grad", x.retains_grad)


@scenario("leaf", "nonleaf", "twice")
def post_accumulate_grad_hook(lib, record, where):
    x = leaf(lib)
    seen = []
    target = x if where != "nonleaf" else x * 2

    def hook(tensor):
        seen.append(tensor.grad.clone())
        tensor.grad.mul_(0.5)
    target.register_post_accumulate_grad_hook(hook)
    for _ in range(2 if where == "twice" else 1):
        (x * weights(lib, x)).sum().backward()
    record("hook saw", seen)
    record("grad x", x.grad)


@scenario("hook", "prehook", "prehook_returns", "hook_returns")
def grad_fn_hooks(lib, record, which):
    a, b = leaf(lib, seed=1), leaf(lib, seed=2)
    y = a * b
    seen = []
    if which == "hook":
        y.grad_fn.register_hook(lambda grad_inputs, grad_outputs: seen.append((list(grad_inputs),
                                                                               list(grad_outputs))))
    elif which == "hook_returns":
        y.grad_fn.register_hook(lambda grad_inputs, grad_outputs: (grad_inputs[0] * 0, grad_inputs[1]))
    elif which == "prehook":
        y.grad_fn.register_prehook(lambda grad_outputs: seen.append(list(grad_outputs)))
    else:
        y.grad_fn.register_prehook(lambda grad_outputs: (grad_outputs[0] * 2,))
    (y * weights(lib, y)).sum().backward()
    record("seen", seen)
    record("grad a", a.grad)
    record("grad b", b.grad)


@scenario("full_hook", "full_hook_returns", "pre_hook", "pre_hook_returns", "input_without_grad", "both_hooks")
def module_backward_hooks(lib, record, which):
    lib.manual_seed(0)
    layer = lib.nn.Linear(4, 3)
    with lib.no_grad():
        layer.weight.copy_(tensor(lib, values((3, 4), 5)))
        layer.bias.copy_(tensor(lib, values((3,), 6)))
    seen = []
    if which in ("full_hook", "input_without_grad", "both_hooks"):
        layer.register_full_backward_hook(lambda m, gi, go: seen.append(("hook", list(gi), list(go))))
    if which == "full_hook_returns":
        layer.register_full_backward_hook(lambda m, gi, go: (gi[0] * 2,))
    if which in ("pre_hook", "both_hooks"):
        layer.register_full_backward_pre_hook(lambda m, go: seen.append(("pre", list(go))))
    if which == "pre_hook_returns":
        layer.register_full_backward_pre_hook(lambda m, go: (go[0] * 3,))
    x = leaf(lib, (2, 4), requires_grad=which != "input_without_grad")
    out = layer(x)
    record.node("out.grad_fn", out)
    (out * weights(lib, out)).sum().backward()
    record("seen", seen)
    record("grad x", x.grad)
    record("grad weight", layer.weight.grad)


# --- backward and autograd.grad ---
@scenario("leaf", "nonleaf", "empty", "not_in_graph")
def backward_inputs(lib, record, which):
    a, b = leaf(lib, seed=1), leaf(lib, seed=2)
    h = a * b
    loss = (h.sin() * weights(lib, h)).sum()
    inputs = {"leaf": [a], "nonleaf": [h], "empty": [], "not_in_graph": [leaf(lib, seed=3)]}[which]
    loss.backward(inputs=inputs)
    record("grad a", a.grad)
    record("grad b", b.grad)
    record("grad h", h.grad)


@scenario("without", "with", "grad_then_backward")
def retain_graph(lib, record, which):
    x = leaf(lib)
    y = (x.sin() * weights(lib, x)).sum()
    if which == "grad_then_backward":
        record("grad", lib.autograd.grad(y, x))
        y.backward()
    else:
        y.backward(retain_graph=which == "with")
        y.backward()
    record("grad x", x.grad)


@scenario("scalar_mul", "clone", "sum_only")
def second_backward_without_saved_tensors(lib, record, which):
    x = leaf(lib)
    y = {"scalar_mul": lambda: (x * 2).sum(), "clone": lambda: x.clone().sum(), "sum_only": lambda: x.sum()}[which]()
    y.backward()
    y.backward()
    record("grad x", x.grad)


@scenario("implicit", "gradient", "wrong_shape_gradient", "no_grad_fn", "int_gradient")
def nonscalar_backward(lib, record, which):
    x = leaf(lib, requires_grad=which != "no_grad_fn")
    y = x * 2
    if which == "implicit" or which == "no_grad_fn":
        y.backward()
    elif which == "gradient":
        y.backward(tensor(lib, values((3, 4), 9)))
    elif which == "wrong_shape_gradient":
        y.backward(tensor(lib, values((4,), 9)))
    else:
        y.backward(lib.ones(3, 4, dtype=lib.int64))
    record("grad x", x.grad)


@scenario("default", "allow_unused", "materialize", "materialize_without_allow")
def grad_unused(lib, record, which):
    a, b = leaf(lib, seed=1), leaf(lib, seed=2)
    y = (a.exp() * weights(lib, a)).sum()
    kwargs = {"default": {}, "allow_unused": {"allow_unused": True},
              "materialize": {"allow_unused": True, "materialize_grads": True},
              "materialize_without_allow": {"materialize_grads": True}}[which]
    record("grads", lib.autograd.grad(y, (a, b), **kwargs))
    record("a.grad stays", a.grad)


@scenario("tensor", "list", "none_for_scalar", "wrong_shape", "none_for_nonscalar")
def grad_outputs(lib, record, which):
    x = leaf(lib)
    y, z = x * 2, (x ** 2).sum()
    if which == "tensor":
        record("grad", lib.autograd.grad(y, x, grad_outputs=tensor(lib, values((3, 4), 4))))
    elif which == "list":
        record("grad", lib.autograd.grad([y, z], [x], grad_outputs=[tensor(lib, values((3, 4), 4)), None]))
    elif which == "none_for_scalar":
        record("grad", lib.autograd.grad([z], [x], grad_outputs=[None]))
    elif which == "wrong_shape":
        record("grad", lib.autograd.grad(y, x, grad_outputs=tensor(lib, values((4, 3), 4))))
    else:
        record("grad", lib.autograd.grad([y], [x], grad_outputs=[None]))


@scenario("create_graph", "no_create_graph", "third_order")
def higher_order(lib, record, which):
    x = leaf(lib, (5,))
    y = (x ** 3).sum()
    (g,) = lib.autograd.grad(y, x, create_graph=which != "no_create_graph")
    record("grad", g)
    record.node("grad.grad_fn", g)
    (gg,) = lib.autograd.grad(g.sum(), x, create_graph=which == "third_order")
    record("grad2", gg)
    if which == "third_order":
        record("grad3", lib.autograd.grad(gg.sum(), x))


@scenario("eye", "random", "two_outputs")
def grads_batched(lib, record, which):
    x = leaf(lib, (3,))
    y = x.sin() * 2
    if which == "eye":
        record("grad", lib.autograd.grad(y, x, lib.eye(3), is_grads_batched=True))
    elif which == "random":
        record("grad", lib.autograd.grad(y, x, tensor(lib, values((5, 3), 3)), is_grads_batched=True))
    else:
        z = x.exp()
        record("grad", lib.autograd.grad([y, z], x, [lib.eye(3), lib.eye(3) * 2], is_grads_batched=True))


@scenario("accumulate", "set_none", "zero_", "nonleaf_grad_access")
def grad_accumulation(lib, record, which):
    x = leaf(lib)
    for step in range(2):
        (x * weights(lib, x) * (step + 1)).sum().backward()
        record(f"grad x after {step}", x.grad)
        if which == "set_none":
            x.grad = None
        elif which == "zero_":
            x.grad.zero_()
    if which == "nonleaf_grad_access":
        y = x * 2
        y.sum().backward()
        record("grad y (non-leaf, not retained)", y.grad)


@scenario("right", "wrong_shape", "wrong_dtype", "int", "not_a_tensor", "nonleaf_set", "then_backward")
def grad_assigned(lib, record, which):
    x = leaf(lib)
    if which == "right":
        x.grad = lib.ones(3, 4)
    elif which == "wrong_shape":
        x.grad = lib.ones(4, 3)
    elif which == "wrong_dtype":
        x.grad = lib.ones(3, 4, dtype=lib.float64)
    elif which == "int":
        x.grad = lib.ones(3, 4, dtype=lib.int64)
    elif which == "not_a_tensor":
        x.grad = [1.0]
    elif which == "nonleaf_set":
        y = x * 2
        y.grad = lib.ones(3, 4)
        record("grad y", y.grad)
    else:
        x.grad = lib.ones(3, 4)
        (x * weights(lib, x)).sum().backward()
    record("grad x", x.grad)


@scenario("nonleaf_false", "nonleaf_true", "int_leaf", "leaf_false_then_backward", "detached")
def requires_grad_flags(lib, record, which):
    x = leaf(lib)
    if which == "nonleaf_false":
        (x * 2).requires_grad_(False)
    elif which == "nonleaf_true":
        y = (x * 2).requires_grad_(True)
        record("y.requires_grad", y.requires_grad)
    elif which == "int_leaf":
        lib.ones(3, dtype=lib.int64).requires_grad_()
    elif which == "leaf_false_then_backward":
        x.requires_grad_(False)
        (x * 2).sum().backward()
    else:
        d = (x * 2).detach()
        record("d", [d.requires_grad, d.is_leaf, d.grad_fn is None])
        d.requires_grad_()
        (d * 3).sum().backward()
        record("grad d", d.grad)
    record("x.requires_grad", x.requires_grad)


@scenario("detach_inplace", "data_inplace", "detach_then_backward", "data_assign")
def detach_and_data(lib, record, which):
    x = leaf(lib)
    y = x * 1
    z = y.sin()
    if which == "detach_inplace":
        d = y.detach()
        d.add_(1)
        record("versions", [y._version, d._version])
        record("y", y)
    elif which == "data_inplace":
        y.data.add_(1)
        record("versions", [y._version, y.data._version])
        record("y", y)
    elif which == "data_assign":
        x.data = lib.zeros(3, 4)
        record("x", x)
        record("x is leaf", [x.is_leaf, x.requires_grad])
    else:
        y.detach().mul_(0)
    (z * weights(lib, z)).sum().backward()
    record("grad x", x.grad)


# --- grad modes ---
@scenario("no_grad", "enable_inside_no_grad", "set_grad_enabled_fn", "set_grad_enabled_ctx", "decorator",
          "no_grad_inplace_leaf", "is_grad_enabled")
def grad_modes(lib, record, which):
    x = leaf(lib)
    if which == "no_grad":
        with lib.no_grad():
            y = x * 2
        record("y", [y.requires_grad, y.grad_fn is None])
    elif which == "enable_inside_no_grad":
        with lib.no_grad():
            with lib.enable_grad():
                y = x * 2
        record("y", [y.requires_grad, node_name(y.grad_fn)])
    elif which == "set_grad_enabled_fn":
        lib.set_grad_enabled(False)
        try:
            y = x * 2
        finally:
            lib.set_grad_enabled(True)
        record("y", [y.requires_grad])
    elif which == "set_grad_enabled_ctx":
        with lib.set_grad_enabled(False):
            y = x * 2
        record("y", [y.requires_grad, lib.is_grad_enabled()])
    elif which == "decorator":
        @lib.no_grad()
        def double(t):
            return t * 2
        record("y", [double(x).requires_grad, lib.is_grad_enabled()])
    elif which == "no_grad_inplace_leaf":
        with lib.no_grad():
            x.mul_(2)
        record("x", [x.requires_grad, x.is_leaf, x._version, node_name(x.grad_fn)])
        (x * weights(lib, x)).sum().backward()
        record("grad x", x.grad)
    else:
        with lib.no_grad():
            record("inside", lib.is_grad_enabled())
        record("outside", lib.is_grad_enabled())


@scenario("flags", "use_in_autograd", "inplace_outside", "requires_grad_inside", "view_outside", "mixed_add",
          "disabled")
def inference_mode(lib, record, which):
    x = leaf(lib)
    mode = lib.inference_mode(which != "disabled")
    with mode:
        t = lib.ones(3, 4) * 2
        if which == "requires_grad_inside":
            t.requires_grad_()
        record("inside is_inference_mode_enabled", lib.is_inference_mode_enabled())
    record("t", [t.is_inference(), t.requires_grad])
    if which == "use_in_autograd":
        (x * t).sum().backward()
        record("grad x", x.grad)
    elif which == "inplace_outside":
        t.add_(1)
    elif which == "view_outside":
        v = t[0]
        record("v", [v.is_inference(), v.requires_grad])
    elif which == "mixed_add":
        s = x + t
        record("s", [s.is_inference(), s.requires_grad])
        s.sum().backward()
        record("grad x", x.grad)


# --- saved tensors ---
@scenario("count", "modify_on_unpack", "nested")
def saved_tensors_hooks(lib, record, which):
    x = leaf(lib)
    packed = []

    def pack(t):
        packed.append(tuple(t.shape))
        return t

    def unpack(t):
        return t * 2 if which == "modify_on_unpack" else t

    with lib.autograd.graph.saved_tensors_hooks(pack, unpack):
        if which == "nested":
            with lib.autograd.graph.saved_tensors_hooks(lambda t: ("inner", t), lambda p: p[1]):
                y = x.sin() * x
        else:
            y = x.sin() * x
    record("packed", packed)
    (y * weights(lib, y)).sum().backward()
    record("grad x", x.grad)


@scenario("plain", "pin_memory")
def save_on_cpu(lib, record, which):
    x = leaf(lib)
    with lib.autograd.graph.save_on_cpu(pin_memory=which == "pin_memory"):
        y = (x.exp() * x).sin()
    (y * weights(lib, y)).sum().backward()
    record("grad x", x.grad)


@scenario("forward_saves", "no_saves", "hooks_inside")
def disable_saved_tensors_hooks(lib, record, which):
    x = leaf(lib)
    with lib.autograd.graph.disable_saved_tensors_hooks("saved tensors hooks are off here"):
        if which == "forward_saves":
            y = x.sin()
            record("y", y)
        elif which == "no_saves":
            y = x + 1
            record("y", y)
        else:
            with lib.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
                x.sin()


@scenario("nan_in_backward", "no_nan", "check_nan_false", "set_detect_anomaly", "nan_forward")
def detect_anomaly(lib, record, which):
    x = tensor(lib, np.array([0.0, 1.0, 4.0], dtype=np.float32), True)
    if which == "nan_in_backward":
        with lib.autograd.detect_anomaly():
            lib.where(x > 0, x.sqrt(), x * 0).sum().backward()
    elif which == "no_nan":
        with lib.autograd.detect_anomaly():
            (x * 2).sum().backward()
    elif which == "check_nan_false":
        with lib.autograd.detect_anomaly(check_nan=False):
            lib.where(x > 0, x.sqrt(), x * 0).sum().backward()
    elif which == "set_detect_anomaly":
        with lib.autograd.set_detect_anomaly(True):
            record("enabled", lib.is_anomaly_enabled())
            lib.where(x > 0, x.sqrt(), x * 0).sum().backward()
    else:
        with lib.autograd.detect_anomaly():
            (x - 2).sqrt().sum().backward()
    record("grad x", x.grad)


# --- checkpoint ---
@scenario("reentrant", "non_reentrant", "reentrant_no_grad_input", "non_reentrant_no_grad_input",
          "non_reentrant_kwargs", "sequential")
def checkpoint(lib, record, which):
    from importlib import import_module

    checkpoint_module = import_module(f"{lib.__name__}.utils.checkpoint")
    lib.manual_seed(0)
    layer = lib.nn.Linear(4, 4)
    with lib.no_grad():
        layer.weight.copy_(tensor(lib, values((4, 4), 7)))
        layer.bias.copy_(tensor(lib, values((4,), 8)))

    def block(t, scale=1.0):
        return layer(t).tanh() * scale

    x = leaf(lib, (2, 4), requires_grad="no_grad_input" not in which)
    if which == "sequential":
        model = lib.nn.Sequential(layer, lib.nn.Tanh(), lib.nn.Linear(4, 4))
        with lib.no_grad():
            model[2].weight.copy_(tensor(lib, values((4, 4), 9)))
            model[2].bias.zero_()
        out = checkpoint_module.checkpoint_sequential(model, 2, x, use_reentrant=False)
    elif which == "non_reentrant_kwargs":
        out = checkpoint_module.checkpoint(block, x, scale=3.0, use_reentrant=False)
    else:
        out = checkpoint_module.checkpoint(block, x, use_reentrant=which.startswith("reentrant"))
    record("out", out)
    record.node("out.grad_fn", out)
    if out.requires_grad:
        (out * weights(lib, out)).sum().backward()
    record("grad x", x.grad)
    record("grad weight", layer.weight.grad)


# --- in-place corners users hit by hand ---
@scenario("leaf", "view_of_leaf", "unbind_output", "split_output", "chunk_output", "no_grad_unbind",
          "view_created_in_no_grad", "saved_input_modified", "saved_output_modified", "leaf_no_grad_then_use")
def inplace_errors(lib, record, which):
    x = leaf(lib)
    if which == "leaf":
        x.add_(1)
    elif which == "view_of_leaf":
        x[0].mul_(2)
    elif which in ("unbind_output", "split_output", "chunk_output"):
        y = x * 1
        part = {"unbind_output": lambda: y.unbind(0)[1], "split_output": lambda: y.split(2)[0],
                "chunk_output": lambda: y.chunk(2, 1)[1]}[which]()
        part.add_(1)
        (y * weights(lib, y)).sum().backward()
    elif which == "no_grad_unbind":
        y = x * 1
        with lib.no_grad():
            y.unbind(0)[1].add_(1)
        (y * weights(lib, y)).sum().backward()
        record("grad x", x.grad)
    elif which == "view_created_in_no_grad":
        y = x * 1
        with lib.no_grad():
            v = y[0]
        v.add_(1)
    elif which == "saved_input_modified":
        y = x * 1
        z = y.sin()
        y.add_(1)
        z.sum().backward()
    elif which == "saved_output_modified":
        y = x.exp()
        y.add_(1)
        y.sum().backward()
    else:
        with lib.no_grad():
            x.add_(1)
        x.sin().sum().backward()
        record("grad x", x.grad)
    record("x._version", x._version)


@scenario("base_then_view", "view_then_base", "two_views", "hook_before_inplace", "retain_before_inplace")
def view_inplace_gradients(lib, record, which):
    x = leaf(lib)
    y = x * 1
    if which == "base_then_view":
        y.mul_(2)
        v = y[:, 1]
        v.mul_(3)
    elif which == "view_then_base":
        v = y[:, 1]
        y.mul_(2)
        record.node("v.grad_fn", v)
        v = v * 1
    elif which == "two_views":
        a, b = y[0], y.t()[1]
        a.mul_(5)
        b.add_(1)
        record.node("b.grad_fn", b)
        v = b
    elif which == "hook_before_inplace":
        seen = []
        y.register_hook(lambda g: seen.append(g.clone()))
        y.mul_(2)
        v = y
    else:
        y.retain_grad()
        y.mul_(2)
        v = y
    record.node("y.grad_fn", y)
    record("y", y)
    loss = (y * weights(lib, y)).sum() + (v * weights(lib, v)).sum()
    loss.backward()
    record("grad x", x.grad)
    if which == "hook_before_inplace":
        record("hook saw", seen)
    if which == "retain_before_inplace":
        record("grad y", y.grad)


def scenario_cases():
    return list(SCENARIOS)


# ----------------------------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------------------------

def run(out, programs=400, pattern=None):
    import torch  # noqa: F401  (imported once, before the first case)

    import chainrule  # noqa: F401

    os.makedirs(out, exist_ok=True)
    cases = scenario_cases() + program_cases(programs)
    records = []
    for case in cases:
        if pattern and not re.search(pattern, case.name):
            continue
        result = classify(case)
        records.append({"source": case.source, "case": case.name, **{k: jsonable(v) for k, v in result.items()}})
    with open(os.path.join(out, "cases.json"), "w") as handle:
        json.dump(records, handle, indent=1)
    print(count_table(records))
    print()
    print(groups_table(records))
    return records


def count_table(records) -> str:
    by_source = collections.defaultdict(collections.Counter)
    for record in records:
        by_source[record["source"]][record["kind"]] += 1
        by_source["all"][record["kind"]] += 1
    lines = ["| source | " + " | ".join(KINDS) + " | cases |", "|---" * (len(KINDS) + 2) + "|"]
    for source in sorted(by_source, key=lambda s: (s == "all", s)):
        counts = by_source[source]
        lines.append(f"| {source} | " + " | ".join(str(counts[k]) for k in KINDS) + f" | {sum(counts.values())} |")
    return "\n".join(lines)


def group_of(record) -> str:
    """What a difference is about, without the case's own numbers: the kind, the item, the errors."""
    def head(text):
        return re.sub(r"\d+", "N", (text or "-").split(":", 1)[0] if record["kind"] != "message_differs"
                      else (text or "-"))[:90]
    if record["kind"] in ("values_differ", "grad_differ"):
        return f"{record['kind']}: {re.sub(r' after .*', '', record['item'])}"
    return f"{record['kind']}: torch {head(record.get('torch'))} | chainrule {head(record.get('chainrule'))}"


def groups_table(records, top=40) -> str:
    groups = collections.Counter(group_of(r) for r in records if r["kind"] not in ("both_ok", "same_error"))
    return "\n".join(f"{count:5d}  {group}" for group, count in groups.most_common(top))


def show(out, kind, pattern=None):
    with open(os.path.join(out, "cases.json")) as handle:
        records = json.load(handle)
    for record in records:
        if record["kind"] == kind and (not pattern or re.search(pattern, json.dumps(record))):
            print(json.dumps(record))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run")
    run_parser.add_argument("--out", required=True)
    run_parser.add_argument("--programs", type=int, default=400, help="how many random programs (seeds 0..N-1)")
    run_parser.add_argument("--filter", help="regular expression searched in the case's name")
    show_parser = commands.add_parser("show")
    show_parser.add_argument("--out", required=True)
    show_parser.add_argument("--kind", required=True, choices=KINDS)
    show_parser.add_argument("--filter", help="regular expression searched in the record")
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.out, args.programs, args.filter)
    else:
        show(args.out, args.kind, args.filter)


if __name__ == "__main__":
    main()
