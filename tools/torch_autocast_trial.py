"""Drive torch's CPU autocast test lists (``autocast_test_lists.AutocastCPUTestLists``) on torch and on chainrule.

For every entry of the lists torch's test_autocast runs on the CPU (``torch_expect_builtin_promote``,
``methods_expect_builtin_promote``, ``torch_16``, ``nn_16``, ``torch_fp32``, ``nn_fp32``,
``torch_need_autocast_promote``), under ``autocast('cpu', dtype=bfloat16)`` and ``dtype=float16``, the trial
runs the op as torch's ``_run_autocast_outofplace`` does, on both libraries with the same arguments (converted
by tools/torch_oracle.py), and compares:

- the output dtype(s) and values (tolerance of the autocast dtype), of the ``torch.*`` (or ``torch._C._nn.*``,
  chainrule: ``nn.functional``) variant and of the ``Tensor.*`` method where torch has one;
- that chainrule's result equals (bitwise, as torch's test asks of torch) its own control: the op run inside
  ``autocast(enabled=False)`` on the arguments cast to the dtype the list says the op runs in;
- ``is_autocast_enabled('cpu')`` inside the region, inside the nested disabled region and after it;
- the same op outside any region (dtype and values);
- the gradients: each floating argument made a leaf that requires grad, ``out.float().sum()`` backpropagated
  after the region, every leaf's gradient dtype (its own dtype, as torch) and values.

Then the functions torch's lists leave out (``BEYOND_LISTS``: the rest of its CPU policy, and the composites
that inherit it from the ops they call), output dtype and values under bfloat16 autocast; and a few
behaviours torch's autocast tests check beside the lists, each run on both libraries and compared:
nested ``autocast(enabled=False)``, ``get_autocast_dtype``, ``autocast`` as a decorator, the cast cache of
leaf weights (a weight changed in place inside a region keeps its cached cast until ``clear_autocast_cache()``
or the outermost region exits; no cache with ``cache_enabled=False`` or for tensors that are not leaves
requiring grad), the warnings and errors of unsupported dtypes and devices.

    python tools/torch_autocast_trial.py run --out /tmp/autocast [--filter mm]

Writes ``DIR/results.json`` and ``DIR/summary.md`` and prints a count table per list. Kinds: ``same``,
``differ``, ``chainrule_raised``, ``torch_raised`` (torch raised, chainrule did not or raised another type),
``skipped`` (with the reason). Deterministic: torch's lists are built after ``torch.manual_seed(0)``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import traceback
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from torch_oracle import NotComparable, torch_tensor_to_chainrule  # noqa: E402

import chainrule  # noqa: E402

AMP_DTYPES = ("bfloat16", "float16")
# torch.testing's default tolerances by dtype; a comparison under autocast uses the autocast dtype's
TOLERANCE = {"bfloat16": (1.6e-2, 1e-5), "float16": (1e-3, 1e-5), "float32": (1.3e-6, 1e-5),
             "float64": (1e-7, 1e-7)}

# the lists torch's test_autocast runs on the CPU, with the dtype each op runs in (None: the list
# names an out_type per entry) and the namespace of its function variant
LISTS = {
    "torch_expect_builtin_promote": ("float32", "torch"),
    "methods_expect_builtin_promote": ("float32", None),
    "torch_16": ("lower", "torch"),
    "nn_16": ("lower", "nn"),
    "torch_fp32": ("float32", "torch"),
    "nn_fp32": ("float32", "nn"),
    "torch_need_autocast_promote": ("float32", "torch"),
}

# torch 2.13's loss bindings in torch._C._nn reduce nothing when ``reduction`` is left out; chainrule
# spells those through nn.functional, whose default is the mean, so the trial passes chainrule the
# reduction torch's call means (chainrule's top-level losses take ATen's arguments, as torch's do)
_UNREDUCED_BY_DEFAULT = {"l1_loss", "mse_loss", "smooth_l1_loss", "huber_loss", "soft_margin_loss",
                         "binary_cross_entropy", "nll_loss", "nll_loss2d", "multi_margin_loss",
                         "multilabel_margin_loss", "hinge_embedding_loss", "margin_ranking_loss",
                         "triplet_margin_loss", "binary_cross_entropy_with_logits", "cosine_embedding_loss"}

# torch._C._nn's kernels that chainrule spells through nn.functional under another name
_NN_FUNCTIONAL = {
    "nll_loss2d": lambda F, input, target, *rest, **kwargs: F.nll_loss(input, target, *rest, **kwargs),
    "reflection_pad1d": lambda F, input, padding: F.pad(input, padding, mode="reflect"),
}


def _torch():
    import torch
    from torch.testing._internal import autocast_test_lists
    return torch, autocast_test_lists


def name_of(dtype) -> str:
    return str(dtype).rpartition(".")[2]


def entries(torch, autocast_test_lists, filter_text=""):
    """(list name, entry id, op, args per amp dtype, kwargs, out_type name or None) for every entry."""
    torch.manual_seed(0)
    lists = autocast_test_lists.AutocastCPUTestLists(torch.device("cpu"))
    seen = collections.Counter()
    for list_name in LISTS:
        for item in getattr(lists, list_name):
            op = item[0]
            if list_name in ("torch_expect_builtin_promote", "methods_expect_builtin_promote"):
                per_dtype, kwargs, out_type = {"bfloat16": item[1], "float16": item[2]}, {}, name_of(item[3])
            elif list_name == "torch_need_autocast_promote":
                per_dtype, kwargs, out_type = {"bfloat16": item[1], "float16": item[2]}, {}, None
            else:
                args = item[1]
                kwargs = item[2] if len(item) > 2 else {}
                per_dtype, out_type = {"bfloat16": args, "float16": args}, None
            entry = f"{op}#{seen[(list_name, op)]}"
            seen[(list_name, op)] += 1
            if filter_text and filter_text not in op:
                continue
            yield list_name, entry, op, per_dtype, kwargs, out_type


# ------------------------------------------------------------------ running one op on either library
def convert(value, storages):
    import torch

    if isinstance(value, torch.Tensor):
        return torch_tensor_to_chainrule(value, storages)
    if isinstance(value, (tuple, list)):
        return type(value)(convert(v, storages) for v in value)
    return value


def function_of(lib, op, namespace):
    """The op's function variant, or None where the list names none (methods)."""
    if namespace is None:
        return None
    if lib.__name__ == "torch":
        owner = lib if namespace == "torch" else lib._C._nn
        return getattr(owner, op, None)
    if namespace == "torch":
        return getattr(lib, op, None)
    if op in _NN_FUNCTIONAL:
        functional = lib.nn.functional
        return lambda *args, **kwargs: _NN_FUNCTIONAL[op](functional, *args, **kwargs)
    return getattr(lib.nn.functional, op, None)


def cast_args(lib, value, dtype_name):
    """torch's test's ``cast``: floating tensors (also inside tuples) to ``dtype_name``."""
    if isinstance(value, lib.Tensor):
        return value.to(getattr(lib, dtype_name)) if value.is_floating_point() else value
    if isinstance(value, (tuple, list)):
        return type(value)(cast_args(lib, v, dtype_name) for v in value)
    return value


def call(lib, op, namespace, args, kwargs):
    """(function result or None, method result or None, whether the library has each variant)."""
    function = function_of(lib, op, namespace)
    if lib is chainrule and namespace == "nn" and op in _UNREDUCED_BY_DEFAULT and function is not None:
        kwargs = {"reduction": "none", **kwargs}
    result = function(*args, **kwargs) if function is not None else None
    method_result = None
    has_method = hasattr(lib.Tensor, op)
    if has_method:
        method_result = getattr(args[0], op)(*args[1:], **kwargs)
    return result, method_result, function is not None, has_method


def tensors_of(value, lib):
    if isinstance(value, lib.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in tensors_of(v, lib)]
    return []


# ------------------------------------------------------------------ comparison
def as_numpy(tensor):
    return tensor.detach().float().numpy() if tensor.is_floating_point() else tensor.detach().numpy()


def compare_values(theirs, ours, tolerance_dtype, what):
    """A list of differences between torch's and chainrule's results (tensors, tuples, Python values)."""
    import numpy as np
    import torch

    if isinstance(theirs, torch.Tensor):
        if not isinstance(ours, chainrule.Tensor):
            return [f"{what}: torch gives a tensor, chainrule {type(ours).__name__}"]
        problems = []
        if name_of(theirs.dtype) != name_of(ours.dtype):
            problems.append(f"{what}: dtype {name_of(ours.dtype)}, torch {name_of(theirs.dtype)}")
        if tuple(theirs.shape) != tuple(ours.shape):
            return problems + [f"{what}: shape {tuple(ours.shape)}, torch {tuple(theirs.shape)}"]
        expected, found = as_numpy(theirs), as_numpy(ours)
        if expected.dtype == bool or expected.dtype.kind in "iu":
            same = np.array_equal(expected, found)
        else:
            rtol, atol = TOLERANCE.get(tolerance_dtype or name_of(theirs.dtype), TOLERANCE["float32"])
            finite = np.abs(expected[np.isfinite(expected)])
            scale = float(finite.max()) if finite.size else 0.0
            same = np.allclose(found, expected, rtol=rtol, atol=max(atol, rtol * scale), equal_nan=True)
        if not same:
            worst = float(np.nanmax(np.abs(found.astype(np.float64) - expected))) if expected.size else 0.0
            problems.append(f"{what}: values differ (max abs {worst:.3g})")
        return problems
    if isinstance(theirs, (tuple, list)):
        if not isinstance(ours, (tuple, list)) or len(ours) != len(theirs):
            return [f"{what}: torch gives {len(theirs)} results, chainrule {type(ours).__name__}"]
        return [p for i, (t, o) in enumerate(zip(theirs, ours)) for p in
                compare_values(t, o, tolerance_dtype, f"{what}[{i}]")]
    if theirs != ours:
        return [f"{what}: {ours!r}, torch {theirs!r}"]
    return []


def bitwise_equal(first, second) -> bool:
    """torch's test's ``compare``: tensors equal exactly, iterables elementwise, other values by ==."""
    if isinstance(first, chainrule.Tensor):
        return isinstance(second, chainrule.Tensor) and first.dtype == second.dtype and bool(
            chainrule.equal(first, second))
    if isinstance(first, (tuple, list)):
        return all(bitwise_equal(f, s) for f, s in zip(first, second))
    return first == second


def describe(value) -> str:
    return value if isinstance(value, str) else "ran"


def short_error(error) -> str:
    return f"{type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else ''}"


# ------------------------------------------------------------------ one entry
def run_side(lib, op, namespace, args, kwargs, amp_dtype, run_as):
    """One library's run of torch's ``_run_autocast_outofplace``: what it saw, or the exception."""
    seen = {"problems": []}
    amp = getattr(lib, amp_dtype)
    seen["enabled_before"] = lib.is_autocast_enabled("cpu")
    with lib.autocast("cpu", dtype=amp):
        seen["enabled_inside"] = lib.is_autocast_enabled("cpu")
        seen["output"], seen["method"], seen["has_function"], seen["has_method"] = call(lib, op, namespace, args,
                                                                                        kwargs)
        with lib.autocast("cpu", enabled=False):
            seen["enabled_nested"] = lib.is_autocast_enabled("cpu")
            if namespace is not None:
                seen["control"] = call(lib, op, namespace, cast_args(lib, args, run_as), kwargs)[0]
            else:
                seen["control"] = getattr(args[0].to(getattr(lib, run_as)), op)(*cast_args(lib, args[1:], run_as),
                                                                                **kwargs)
        seen["enabled_after_nested"] = lib.is_autocast_enabled("cpu")
    seen["enabled_after"] = lib.is_autocast_enabled("cpu")
    try:  # outside autocast the op may refuse the list's lower-precision arguments (torch has no kernel)
        seen["plain"] = call(lib, op, namespace, args, kwargs)[0 if namespace is not None else 1]
    except Exception as exc:
        seen["plain"] = f"raised {type(exc).__name__}"
    return seen


def gradients(lib, op, namespace, args, kwargs, amp_dtype):
    """Each floating leaf's gradient of ``sum(out.float())`` for the op run under autocast (backward after it)."""
    leaves = [t for t in tensors_of(args, lib) if t.is_floating_point() and t.requires_grad]
    with lib.autocast("cpu", dtype=getattr(lib, amp_dtype)):
        out = call(lib, op, namespace, args, kwargs)[0 if namespace is not None else 1]
    outputs = [o for o in (out if isinstance(out, (tuple, list)) else [out])
               if isinstance(o, lib.Tensor) and o.is_floating_point() and o.requires_grad]
    if not outputs:
        return None
    sum(o.float().sum() for o in outputs).backward()
    return [leaf.grad for leaf in leaves]


def with_grad_leaves(torch, value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone().requires_grad_(value.is_floating_point())
    if isinstance(value, (tuple, list)):
        return type(value)(with_grad_leaves(torch, v) for v in value)
    return value


def run_entry(torch, list_name, entry, op, args, kwargs, out_type, amp_dtype):
    row = {"list": list_name, "entry": entry, "op": op, "amp": amp_dtype}
    run_as_rule, namespace = LISTS[list_name]
    run_as = amp_dtype if run_as_rule == "lower" else run_as_rule
    expected_dtype = out_type or run_as
    if function_of(chainrule, op, namespace) is None and not hasattr(chainrule.Tensor, op):
        return dict(row, kind="chainrule_raised", detail=f"chainrule has no torch.{op}")
    try:
        ours_args = convert(args, {})
    except NotComparable as exc:
        return dict(row, kind="skipped", detail=str(exc))
    theirs = ours = None
    torch_error = ours_error = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = run_side(torch, op, namespace, args, kwargs, amp_dtype, run_as)
    except Exception as exc:  # torch's own list entry failing is reported, not hidden
        torch_error = exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = run_side(chainrule, op, namespace, ours_args, kwargs, amp_dtype, run_as)
    except Exception as exc:
        ours_error = exc
        row["traceback"] = traceback.format_exc(limit=-4)
    if torch_error is not None or ours_error is not None:
        if torch_error is None:
            return dict(row, kind="chainrule_raised", detail=short_error(ours_error))
        if ours_error is None or type(ours_error).__name__ != type(torch_error).__name__:
            return dict(row, kind="torch_raised", detail=f"torch {short_error(torch_error)}; chainrule "
                                                          f"{short_error(ours_error) if ours_error else 'ran'}")
        return dict(row, kind="same", detail=f"both raised {type(torch_error).__name__}")
    problems = []
    for key in ("enabled_before", "enabled_inside", "enabled_nested", "enabled_after_nested", "enabled_after"):
        if theirs[key] != ours[key]:
            problems.append(f"is_autocast_enabled('cpu') {key[8:]}: {ours[key]}, torch {theirs[key]}")
    if theirs["has_method"] != ours["has_method"]:
        problems.append(f"Tensor.{op}: {'present' if ours['has_method'] else 'missing'} in chainrule, "
                        f"{'present' if theirs['has_method'] else 'missing'} in torch")
    if theirs["has_function"] != ours["has_function"]:
        problems.append(f"function {op}: missing in {'chainrule' if theirs['has_function'] else 'torch'}")
    torch_result = theirs["output"] if theirs["output"] is not None else theirs["method"]
    if isinstance(torch_result, torch.Tensor) and name_of(torch_result.dtype) != expected_dtype:
        row["torch_note"] = f"torch's dtype {name_of(torch_result.dtype)}, its list expects {expected_dtype}"
    for variant in ("output", "method"):
        if theirs[variant] is not None and ours[variant] is not None:
            problems += compare_values(theirs[variant], ours[variant], amp_dtype, variant)
    our_result = ours["output"] if ours["output"] is not None else ours["method"]
    if our_result is not None and not bitwise_equal(our_result, ours["control"]):
        problems.append(f"not bitwise equal to chainrule's own control run in {run_as}")
    if isinstance(theirs["plain"], str) or isinstance(ours["plain"], str):
        if theirs["plain"] != ours["plain"]:
            problems.append(f"outside autocast: chainrule {describe(ours['plain'])}, torch {describe(theirs['plain'])}")
    else:
        problems += compare_values(theirs["plain"], ours["plain"], None, "outside autocast")
    problems += compare_grads(torch, op, namespace, args, kwargs, amp_dtype)
    return dict(row, kind="differ" if problems else "same", detail="; ".join(problems))


def compare_grads(torch, op, namespace, args, kwargs, amp_dtype):
    torch_args = with_grad_leaves(torch, args)
    ours_args = convert(torch_args, {})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = gradients(torch, op, namespace, torch_args, kwargs, amp_dtype)
    except Exception:  # noqa: BLE001 - an op torch cannot differentiate: nothing to compare
        return []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = gradients(chainrule, op, namespace, ours_args, kwargs, amp_dtype)
    except Exception as exc:
        return [f"backward: chainrule raised {short_error(exc)}"]
    if theirs is None:
        return [] if ours is None else ["backward: chainrule's output requires grad, torch's does not"]
    if ours is None:
        return ["backward: torch's output requires grad, chainrule's does not"]
    problems = []
    for i, (t, o) in enumerate(zip(theirs, ours)):
        if (t is None) != (o is None):
            problems.append(f"grad of input {i}: {'None' if o is None else 'a tensor'} in chainrule, "
                            f"{'None' if t is None else 'a tensor'} in torch")
        elif t is not None:
            problems += compare_values(t, o, amp_dtype, f"grad of input {i}")
    return problems


# ------------------------------------------------------------------ behaviours beside the lists
def _nested(lib):
    a = lib.ones(2, 2)
    with lib.autocast("cpu"):
        outer = lib.mm(a, a).dtype
        with lib.autocast("cpu", enabled=False):
            inner = (lib.is_autocast_enabled("cpu"), lib.mm(a, a).dtype)
            with lib.autocast("cpu", dtype=lib.float16):
                innermost = (lib.get_autocast_dtype("cpu"), lib.mm(a, a).dtype)
        after = (lib.is_autocast_enabled("cpu"), lib.get_autocast_dtype("cpu"), lib.mm(a, a).dtype)
    return outer, inner, innermost, after, lib.is_autocast_enabled("cpu")


def _dtypes(lib):
    found = [lib.get_autocast_dtype("cpu"), lib.get_autocast_dtype("cuda")]
    with lib.autocast("cpu", dtype=lib.float16):
        found.append(lib.get_autocast_dtype("cpu"))
    found.append(lib.get_autocast_dtype("cpu"))
    lib.set_autocast_dtype("cpu", lib.float16)
    found.append(lib.get_autocast_dtype("cpu"))
    with lib.autocast("cpu"):
        found.append(lib.mm(lib.ones(2, 2), lib.ones(2, 2)).dtype)
    lib.set_autocast_dtype("cpu", lib.bfloat16)
    return found


def _decorator(lib):
    @lib.autocast("cpu")
    def product(a, b):
        return lib.is_autocast_enabled("cpu"), lib.mm(a, b).dtype

    @lib.autocast("cpu", enabled=False)
    def plain(a, b):
        return lib.is_autocast_enabled("cpu"), lib.mm(a, b).dtype

    a = lib.ones(2, 2)
    with lib.autocast("cpu"):
        inside_disabled = plain(a, a)
    return product(a, a), inside_disabled, lib.is_autocast_enabled("cpu")


def _weights(lib):
    lib.manual_seed(0)
    return lib.tensor([[0.5, -1.25, 2.0], [1.5, 0.75, -0.5]]), lib.nn.Parameter(lib.linspace(-1, 1, 9).reshape(3, 3))


def _bump(lib, weight):
    with lib.no_grad():
        weight.add_(0.3)


def _cache_in_place(lib):
    """A weight changed in place inside a region: its cached cast stays until the cache is cleared."""
    x, w = _weights(lib)
    with lib.autocast("cpu"):
        first = lib.mm(x, w)
        _bump(lib, w)
        stale = lib.equal(first, lib.mm(x, w))
        lib.clear_autocast_cache()
        cleared = lib.mm(x, w)
        with lib.autocast("cpu"):
            pass
        _bump(lib, w)
        nested_exit_keeps = lib.equal(cleared, lib.mm(x, w))
    _bump(lib, w)
    with lib.autocast("cpu"):
        outer_exit_clears = not lib.equal(cleared, lib.mm(x, w))
    return stale, bool(lib.equal(first, cleared)), nested_exit_keeps, outer_exit_clears


def _cache_disabled(lib):
    x, w = _weights(lib)
    with lib.autocast("cpu", cache_enabled=False):
        first = lib.mm(x, w)
        _bump(lib, w)
        return bool(lib.equal(first, lib.mm(x, w)))


def _cache_only_leaves_requiring_grad(lib):
    x, w = _weights(lib)
    plain = w.detach().clone()
    view = w.t()
    with lib.autocast("cpu"):
        first_plain, first_view = lib.mm(x, plain), lib.mm(x, view)
        _bump(lib, w)
        plain.add_(0.3)
        return bool(lib.equal(first_plain, lib.mm(x, plain))), bool(lib.equal(first_view, lib.mm(x, w.t())))


def _cache_gradients(lib):
    """Two forward/backward passes through one cached cast, and a cast first made under no_grad."""
    x, w = _weights(lib)
    with lib.autocast("cpu"):
        with lib.no_grad():
            lib.mm(x, w)
        out = lib.mm(x, w)
        requires = out.requires_grad
        out.float().sum().backward()
        lib.mm(x, w).float().pow(2).sum().backward()
    return requires, w.grad.dtype, [round(v, 3) for v in w.grad.flatten().tolist()]


def _cache_with_float16_after_bfloat16(lib):
    x, w = _weights(lib)
    with lib.autocast("cpu"):
        first = lib.mm(x, w).dtype
        with lib.autocast("cpu", dtype=lib.float16):
            second = lib.mm(x, w).dtype
    return first, second


def _unsupported_dtype(lib):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with lib.autocast("cpu", dtype=lib.float64):
            enabled = lib.is_autocast_enabled("cpu")
            dtype = lib.mm(lib.ones(2, 2), lib.ones(2, 2)).dtype
        with lib.autocast("cpu", dtype=lib.float32, enabled=False):
            lib.ones(10)
    return enabled, dtype, [f"{w.category.__name__}: {w.message}" for w in caught]


def _deprecated_cpu_amp(lib):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with lib.cpu.amp.autocast():
            dtype = lib.mm(lib.ones(2, 2), lib.ones(2, 2)).dtype
    return dtype, [f"{w.category.__name__}: {w.message}" for w in caught]


def _raised(function):
    try:
        function()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ran"


def _bad_devices(lib):
    return (_raised(lambda: lib.autocast(device_type="not a real device")),
            _raised(lambda: lib.amp.is_autocast_available(device_type="not a real device")),
            _raised(lambda: lib.autocast(device_type=lib.device("cpu"))))


BEHAVIOURS = {
    "nested autocast(enabled=False)": _nested,
    "get_autocast_dtype / set_autocast_dtype": _dtypes,
    "autocast as a decorator": _decorator,
    "cache: weight changed in place, clear_autocast_cache, region exits": _cache_in_place,
    "cache: cache_enabled=False": _cache_disabled,
    "cache: only leaves that require grad, not views": _cache_only_leaves_requiring_grad,
    "cache: gradients through a cached cast": _cache_gradients,
    "cache: float16 region inside a bfloat16 one": _cache_with_float16_after_bfloat16,
    "unsupported dtype warns and disables": _unsupported_dtype,
    "torch.cpu.amp.autocast deprecation": _deprecated_cpu_amp,
    "invalid and non-string device_type": _bad_devices,
}


def plain(value):
    """A value with library names dropped (torch.bfloat16 and chainrule.bfloat16 both 'bfloat16')."""
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return value.replace("chainrule.", "torch.")
    if isinstance(value, chainrule.dtype) or type(value).__name__ == "dtype":
        return name_of(value)
    if hasattr(value, "item") and not isinstance(value, (int, float, bool)):
        return bool(value)
    return value


def run_behaviour(torch, name, function):
    row = {"list": "behaviour", "entry": name, "op": name, "amp": "-"}
    results = []
    for lib in (torch, chainrule):
        try:
            results.append(plain(function(lib)))
        except Exception as exc:
            results.append(f"raised {short_error(exc)}")
    theirs, ours = results
    if theirs == ours:
        return dict(row, kind="same", detail="")
    kind = "chainrule_raised" if str(ours).startswith("raised") else "differ"
    return dict(row, kind=kind, detail=f"chainrule {ours!r}; torch {theirs!r}")


# ------------------------------------------------------------------ functions beyond the lists
# torch's lists name few ops; these are the rest of its CPU autocast policy as it acts on public
# functions (aten's autocast_mode.cpp lists, and what composites inherit from the ops they call):
# float32 inputs for the lower-precision side, bfloat16 (float16 for the FFTs) for the float32 side,
# and the functions that run in their inputs' dtype. Output dtype and values are compared.
def _inputs_for_beyond():
    import numpy as np

    rng = np.random.default_rng(17)
    return {"v": rng.standard_normal(4), "m": rng.standard_normal((4, 4)), "m2": rng.standard_normal((4, 4)),
            "b": rng.standard_normal((2, 4, 4)), "img": rng.standard_normal((1, 2, 4, 4)),
            "vol": rng.standard_normal((1, 1, 4, 4, 4)), "seq": rng.standard_normal((3, 1, 4)),
            "p": rng.uniform(0.1, 0.9, (4, 4)), "grid": rng.uniform(-1, 1, (1, 2, 2, 2)),
            "sig": rng.standard_normal(64), "w3": rng.standard_normal((4, 4, 3)), "pos": rng.uniform(1, 2, (4, 4)),
            "spd": np.eye(4) * 4 + 0.1}


def _t(lib, key, dtype="float32"):
    return lib.tensor(_BEYOND_INPUTS[key]).to(getattr(lib, dtype))


def _b(lib, key):
    return _t(lib, key, "bfloat16")


def _module_output(lib, make, key, dtype="float32"):
    lib.manual_seed(0)
    module = make(lib)
    out = module(_t(lib, key, dtype))
    return out[0] if isinstance(out, tuple) else out


_BEYOND_INPUTS = _inputs_for_beyond()
BEYOND_LISTS = {
    # lower precision (float32 inputs)
    "mv": lambda lib, F: lib.mv(_t(lib, "m"), _t(lib, "v")),
    "dot": lambda lib, F: lib.dot(_t(lib, "v"), _t(lib, "v")),
    "matmul of vectors": lambda lib, F: lib.matmul(_t(lib, "v"), _t(lib, "v")),
    "matmul vector-matrix": lambda lib, F: lib.matmul(_t(lib, "v"), _t(lib, "m")),
    "einsum": lambda lib, F: lib.einsum("ij,jk->ik", _t(lib, "m"), _t(lib, "m2")),
    "addmv": lambda lib, F: lib.addmv(_t(lib, "v"), _t(lib, "m"), _t(lib, "v")),
    "addr": lambda lib, F: lib.addr(_t(lib, "m"), _t(lib, "v"), _t(lib, "v")),
    "tensordot full contraction": lambda lib, F: lib.tensordot(_t(lib, "m"), _t(lib, "m2")),
    "tensordot": lambda lib, F: lib.tensordot(_t(lib, "m"), _t(lib, "m2"), dims=([1], [1])),
    "inner": lambda lib, F: lib.inner(_t(lib, "m"), _t(lib, "m2")),
    "inner of vectors": lambda lib, F: lib.inner(_t(lib, "v"), _t(lib, "v")),
    "outer": lambda lib, F: lib.outer(_t(lib, "v"), _t(lib, "v")),
    "kron": lambda lib, F: lib.kron(_t(lib, "v"), _t(lib, "v")),
    "linalg.multi_dot": lambda lib, F: lib.linalg.multi_dot([_t(lib, "m"), _t(lib, "m2"), _t(lib, "m")]),
    "linalg.vecdot": lambda lib, F: lib.linalg.vecdot(_t(lib, "m"), _t(lib, "m2")),
    "linalg.matmul": lambda lib, F: lib.linalg.matmul(_t(lib, "m"), _t(lib, "m2")),
    "bilinear": lambda lib, F: F.bilinear(_t(lib, "m"), _t(lib, "m2"), _t(lib, "b")),
    "scaled_dot_product_attention": lambda lib, F: F.scaled_dot_product_attention(*(_t(lib, "img"),) * 3),
    "conv1d": lambda lib, F: F.conv1d(_t(lib, "b"), _t(lib, "w3")),
    "conv_transpose1d": lambda lib, F: F.conv_transpose1d(_t(lib, "b"), _t(lib, "w3")),
    "prelu": lambda lib, F: F.prelu(_t(lib, "m"), _t(lib, "v")),
    "unfold": lambda lib, F: F.unfold(_t(lib, "img"), 2),
    "LSTM": lambda lib, F: _module_output(lib, lambda lib: lib.nn.LSTM(4, 3), "seq"),
    "GRU": lambda lib, F: _module_output(lib, lambda lib: lib.nn.GRU(4, 3), "seq"),
    "RNN": lambda lib, F: _module_output(lib, lambda lib: lib.nn.RNN(4, 3), "seq"),
    "LSTMCell": lambda lib, F: _module_output(lib, lambda lib: lib.nn.LSTMCell(4, 3), "m"),
    "GRUCell": lambda lib, F: _module_output(lib, lambda lib: lib.nn.GRUCell(4, 3), "m"),
    "RNNCell": lambda lib, F: _module_output(lib, lambda lib: lib.nn.RNNCell(4, 3), "m"),
    "MultiheadAttention": lambda lib, F: _module_output(lib, lambda lib: _self_attention(lib), "seq"),
    # float32 (bfloat16 inputs)
    "sum": lambda lib, F: lib.sum(_b(lib, "v")),
    "cumsum": lambda lib, F: lib.cumsum(_b(lib, "v"), 0),
    "softmax": lambda lib, F: lib.softmax(_b(lib, "v"), 0),
    "log_softmax": lambda lib, F: lib.log_softmax(_b(lib, "v"), 0),
    "layer_norm": lambda lib, F: F.layer_norm(_b(lib, "m"), (4,)),
    "group_norm": lambda lib, F: F.group_norm(_b(lib, "m"), 2),
    "batch_norm": lambda lib, F: F.batch_norm(_b(lib, "m"), None, None, training=True),
    "exp": lambda lib, F: lib.exp(_b(lib, "v")),
    "pow": lambda lib, F: lib.pow(_b(lib, "v"), 2),
    "norm": lambda lib, F: lib.norm(_b(lib, "v")),
    "linalg.vector_norm": lambda lib, F: lib.linalg.vector_norm(_b(lib, "v")),
    "linalg.matrix_norm": lambda lib, F: lib.linalg.matrix_norm(_b(lib, "m")),
    "dist": lambda lib, F: lib.dist(_b(lib, "v"), _b(lib, "v") * 2),
    "cosine_similarity": lambda lib, F: F.cosine_similarity(_b(lib, "m"), _b(lib, "m2")),
    "logsumexp": lambda lib, F: lib.logsumexp(_b(lib, "v"), 0),
    "gelu": lambda lib, F: F.gelu(_b(lib, "v")),
    "std": lambda lib, F: lib.std(_b(lib, "v")),
    "prod": lambda lib, F: lib.prod(_b(lib, "v")),
    "trace": lambda lib, F: lib.trace(_b(lib, "m")),
    "cdist": lambda lib, F: lib.cdist(_b(lib, "m"), _b(lib, "m2")),
    "pdist": lambda lib, F: F.pdist(_b(lib, "m")),
    "quantile": lambda lib, F: lib.quantile(_b(lib, "v"), 0.5),
    "cross_entropy": lambda lib, F: F.cross_entropy(_b(lib, "m"), lib.tensor([0, 1, 2, 3])),
    "nll_loss": lambda lib, F: F.nll_loss(_b(lib, "m"), lib.tensor([0, 1, 2, 3])),
    "kl_div": lambda lib, F: F.kl_div(_b(lib, "m"), _b(lib, "p"), reduction="batchmean"),
    "mse_loss": lambda lib, F: F.mse_loss(_b(lib, "m"), _b(lib, "m2")),
    "l1_loss": lambda lib, F: F.l1_loss(_b(lib, "m"), _b(lib, "m2")),
    "gaussian_nll_loss": lambda lib, F: F.gaussian_nll_loss(_b(lib, "m"), _b(lib, "m2"), _b(lib, "pos")),
    "multilabel_soft_margin_loss": lambda lib, F: F.multilabel_soft_margin_loss(_b(lib, "m"), _b(lib, "p")),
    "binary_cross_entropy": lambda lib, F: F.binary_cross_entropy(_b(lib, "p"), _b(lib, "p")),
    "ctc_loss": lambda lib, F: F.ctc_loss(_b(lib, "seq").log_softmax(2), lib.tensor([[1, 2]]), lib.tensor([3]),
                                          lib.tensor([2])),
    "avg_pool2d": lambda lib, F: F.avg_pool2d(_b(lib, "img"), 2),
    "max_pool2d": lambda lib, F: F.max_pool2d(_b(lib, "img"), 2),
    "max_pool3d": lambda lib, F: F.max_pool3d(_b(lib, "vol"), 2),
    "adaptive_avg_pool2d": lambda lib, F: F.adaptive_avg_pool2d(_b(lib, "img"), 2),
    "adaptive_avg_pool3d": lambda lib, F: F.adaptive_avg_pool3d(_b(lib, "vol"), 2),
    "adaptive_max_pool3d": lambda lib, F: F.adaptive_max_pool3d(_b(lib, "vol"), 2),
    "max_unpool2d": lambda lib, F: F.max_unpool2d(*F.max_pool2d(_b(lib, "img"), 2, return_indices=True), 2),
    "pad reflect 1-d": lambda lib, F: F.pad(_b(lib, "b"), (1, 1), mode="reflect"),
    "pad reflect 2-d": lambda lib, F: F.pad(_b(lib, "img"), (1, 1, 1, 1), mode="reflect"),
    "pad reflect 3-d": lambda lib, F: F.pad(_b(lib, "vol"), (1,) * 6, mode="reflect"),
    "pad replicate 3-d": lambda lib, F: F.pad(_b(lib, "vol"), (1,) * 6, mode="replicate"),
    "pad circular": lambda lib, F: F.pad(_b(lib, "b"), (1, 1), mode="circular"),
    "grid_sample": lambda lib, F: F.grid_sample(_b(lib, "img"), _b(lib, "grid"), align_corners=False),
    "interpolate bilinear": lambda lib, F: F.interpolate(_b(lib, "img"), scale_factor=2, mode="bilinear"),
    "fft.rfft of float16": lambda lib, F: lib.fft.rfft(_t(lib, "v", "float16")).abs(),
    "fft.fft2 of float16": lambda lib, F: lib.fft.fft2(_t(lib, "m", "float16")).abs(),
    "stft": lambda lib, F: lib.stft(_b(lib, "sig"), 16, window=lib.ones(16), return_complex=True).abs(),
    "linalg.inv": lambda lib, F: lib.linalg.inv(_b(lib, "spd")),
    "linalg.det": lambda lib, F: lib.linalg.det(_b(lib, "spd")),
    "linalg.slogdet": lambda lib, F: lib.linalg.slogdet(_b(lib, "spd"))[1],
    "linalg.svdvals": lambda lib, F: lib.linalg.svdvals(_b(lib, "m")),
    "linalg.eigvalsh": lambda lib, F: lib.linalg.eigvalsh(_b(lib, "spd")),
    "linalg.eigvals": lambda lib, F: lib.linalg.eigvals(_b(lib, "spd")).abs(),
    "linalg.cholesky": lambda lib, F: lib.linalg.cholesky(_b(lib, "spd")),
    "linalg.solve": lambda lib, F: lib.linalg.solve(_b(lib, "spd"), _b(lib, "v")),
    "linalg.lstsq": lambda lib, F: lib.linalg.lstsq(_b(lib, "spd"), _b(lib, "m")).solution,
    "linalg.matrix_rank": lambda lib, F: lib.linalg.matrix_rank(_b(lib, "m")),
    "linalg.pinv": lambda lib, F: lib.linalg.pinv(_b(lib, "spd")),
    "linalg.matrix_exp": lambda lib, F: lib.linalg.matrix_exp(_b(lib, "m") / 4),
    "linalg.lu_factor": lambda lib, F: lib.linalg.lu_factor(_b(lib, "spd"))[0],
    "linalg.householder_product": lambda lib, F: lib.linalg.householder_product(_b(lib, "m"), _b(lib, "v")),
    "polar": lambda lib, F: lib.polar(_b(lib, "pos"), _b(lib, "m")).abs(),
    "view_as_complex": lambda lib, F: lib.view_as_complex(_b(lib, "m").reshape(8, 2)).abs(),
}


def _self_attention(lib):
    attention = lib.nn.MultiheadAttention(4, 2)
    return lambda x: attention(x, x, x)


def run_beyond(torch, name, program):
    """One function beyond the lists under bfloat16 autocast: output dtype and values against torch."""
    row = {"list": "beyond_lists", "entry": name, "op": name, "amp": "bfloat16"}
    results = []
    for lib in (torch, chainrule):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with lib.autocast("cpu"):
                    results.append(program(lib, lib.nn.functional))
        except Exception as exc:
            results.append(exc)
    theirs, ours = results
    if isinstance(theirs, Exception) or isinstance(ours, Exception):
        if not isinstance(ours, Exception):
            return dict(row, kind="torch_raised", detail=f"torch {short_error(theirs)}; chainrule ran")
        if not isinstance(theirs, Exception):
            return dict(row, kind="chainrule_raised", detail=short_error(ours))
        same = type(ours).__name__ == type(theirs).__name__
        return dict(row, kind="same" if same else "differ",
                    detail=f"both raised: torch {short_error(theirs)}; chainrule {short_error(ours)}")
    problems = compare_values(theirs, ours, "bfloat16", "output")
    return dict(row, kind="differ" if problems else "same", detail="; ".join(problems))


# ------------------------------------------------------------------ the trial
def trial(filter_text="", amp_dtypes=AMP_DTYPES, behaviours=True, skip=None):
    """Every row; ``skip`` maps (entry, amp dtype) to the reason an entry is not run (CI's budget)."""
    torch, autocast_test_lists = _torch()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:  # (restored: a test process's later torch comparisons would run single-threaded, with other roundings)
        return _rows(torch, autocast_test_lists, filter_text, amp_dtypes, behaviours, skip)
    finally:
        torch.set_num_threads(threads)


def _rows(torch, autocast_test_lists, filter_text, amp_dtypes, behaviours, skip):
    skip = skip or {}
    rows = []
    for list_name, entry, op, per_dtype, kwargs, out_type in entries(torch, autocast_test_lists, filter_text):
        for amp_dtype in amp_dtypes:
            if (entry, amp_dtype) in skip:
                rows.append({"list": list_name, "entry": entry, "op": op, "amp": amp_dtype, "kind": "skipped",
                             "detail": skip[(entry, amp_dtype)]})
                continue
            rows.append(run_entry(torch, list_name, entry, op, per_dtype[amp_dtype], kwargs, out_type, amp_dtype))
    if behaviours:
        for name, function in BEHAVIOURS.items():
            if not filter_text or filter_text in name:
                rows.append(run_behaviour(torch, name, function))
        for name, program in BEYOND_LISTS.items():
            if not filter_text or filter_text in name:
                rows.append(run_beyond(torch, name, program))
    return rows


KINDS = ("same", "differ", "chainrule_raised", "torch_raised", "skipped")


def counts(rows):
    table = collections.OrderedDict()
    for row in rows:
        table.setdefault(row["list"], collections.Counter())[row["kind"]] += 1
    return table


def write(rows, directory):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "results.json"), "w") as handle:
        json.dump(rows, handle, indent=1)
    table = counts(rows)
    lines = ["# torch CPU autocast lists on chainrule", "", "| list | " + " | ".join(KINDS) + " |",
             "|---" * (len(KINDS) + 1) + "|"]
    for list_name, counter in table.items():
        lines.append(f"| {list_name} | " + " | ".join(str(counter[k]) for k in KINDS) + " |")
    lines += ["", "## Not the same", ""]
    lines += [f"- {row['list']} {row['entry']} ({row['amp']}): {row['kind']} — {row['detail']}" for row in rows
              if row["kind"] != "same"]
    with open(os.path.join(directory, "summary.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return table


def command_run(args):
    rows = trial(args.filter)
    table = write(rows, args.out)
    print(f"{'list':34}" + "".join(f"{k:>18}" for k in KINDS))
    for list_name, counter in table.items():
        print(f"{list_name:34}" + "".join(f"{counter[k]:>18}" for k in KINDS))
    total = collections.Counter(row["kind"] for row in rows)
    print(f"{'total':34}" + "".join(f"{total[k]:>18}" for k in KINDS))
    for row in rows:
        if row["kind"] != "same":
            print(f"  {row['list']} {row['entry']} ({row['amp']}): {row['kind']} {row['detail']}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--out", required=True)
    run.add_argument("--filter", default="")
    run.set_defaults(handler=command_run)
    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
