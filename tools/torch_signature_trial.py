"""Compare torch 2.13's public signatures with chainrule's, and call keyword forms on both.

A keyword chainrule names differently raises TypeError in user code; a different default silently
changes numbers. For every public callable in the namespaces users call (``torch``, ``torch.Tensor``,
``torch.nn.functional``, ``torch.nn`` modules' ``__init__``, optimizers, schedulers, data loading,
``linalg``/``fft``/``special``, autograd, ``func``, distributions, ``nn.utils``, ``amp``,
``utils.checkpoint``) this trial reads torch's signature and chainrule's and compares parameter
names, the order of positionals, keyword-only-ness, defaults and ``*args``/``**kwargs``.

Where torch's callable is implemented in C and has no ``inspect.signature``, torch's overloads come
from the type stubs it ships (``torch/_C/_VariableFunctions.pyi``, ``TensorBase`` in
``torch/_C/__init__.pyi``, ``torch/_C/_nn.pyi``), else from the first lines of its docstring, else
from ``torch.overrides.get_testing_overrides()``. chainrule must accept every keyword form of every
overload. A chainrule callable taking ``*args, **kwargs`` (an overload dispatcher) is not judged by
its signature: it is called instead.

Calls: for every callable with an OpInfo in torch's ``op_db``, its first float32 sample inputs are
bound to each torch overload, passed with every bindable argument as a keyword, and run on torch
and on chainrule; the outcomes (values, or both raising) are compared.

    python tools/torch_signature_trial.py run --out /tmp/sig                 # everything
    python tools/torch_signature_trial.py run --out /tmp/sig --filter norm   # names containing "norm"
    python tools/torch_signature_trial.py show --out /tmp/sig --kind differ

Kinds per callable: ``same``; ``differ`` (what differs, parameter by parameter); ``dispatcher``
(``*args, **kwargs`` in chainrule; its calls decide); ``missing`` (no such name in chainrule);
``skipped`` with a reason. Kinds per call: ``call_same``, ``call_differ``, ``call_raised``
(torch accepted the keyword form, chainrule raised).
"""

from __future__ import annotations

import argparse
import ast
import collections
import functools
import importlib
import inspect
import itertools
import json
import os
import sys
import time
import types
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# (torch module, chainrule module, what is compared): "functions" compares the module's public
# functions, "classes" the ``__init__`` of its public classes, "both" does both
NAMESPACES = [
    ("torch", "chainrule", "functions"),
    ("torch.nn.functional", "chainrule.nn.functional", "functions"),
    ("torch.nn.init", "chainrule.nn.init", "functions"),
    ("torch.nn", "chainrule.nn", "classes"),
    ("torch.optim", "chainrule.optim", "classes"),
    ("torch.optim.lr_scheduler", "chainrule.optim.lr_scheduler", "classes"),
    ("torch.utils.data", "chainrule.utils.data", "both"),
    ("torch.linalg", "chainrule.linalg", "functions"),
    ("torch.fft", "chainrule.fft", "functions"),
    ("torch.special", "chainrule.special", "functions"),
    ("torch.autograd", "chainrule.autograd", "both"),
    ("torch.autograd.functional", "chainrule.autograd.functional", "functions"),
    ("torch.autograd.forward_ad", "chainrule.autograd.forward_ad", "both"),
    ("torch.func", "chainrule.func", "functions"),
    ("torch.distributions", "chainrule.distributions", "classes"),
    ("torch.nn.utils", "chainrule.nn.utils", "functions"),
    ("torch.nn.utils.rnn", "chainrule.nn.utils.rnn", "both"),
    ("torch.nn.utils.parametrize", "chainrule.nn.utils.parametrize", "functions"),
    ("torch.nn.utils.parametrizations", "chainrule.nn.utils.parametrizations", "functions"),
    ("torch.nn.utils.prune", "chainrule.nn.utils.prune", "both"),
    ("torch.amp", "chainrule.amp", "both"),
    ("torch.utils.checkpoint", "chainrule.utils.checkpoint", "functions"),
]

# parameters torch has that chainrule leaves out on purpose, each with why
SKIPPED_PARAMETERS = {
    "_stacklevel": "torch-internal warning bookkeeping",
    "names": "named tensors (a prototype torch feature chainrule does not have)",
    "implicit": "Tensor.expand's flag for torch's tracer (expands it inserted itself)",
}

# (torch default, chainrule default) pairs that mean the same call
EQUIVALENT_DEFAULTS = {
    ("valid", 0),  # conv padding: torch's stub lists its string overload's default beside padding=0
}

# (callable, parameter) whose stated defaults differ but whose calls without the argument were run
# on both libraries and agree (values compared), each with why the defaults read differently
DEFAULTS_SAME_BY_CALL = {
    **{(f"torch.{name}", "reduction"): "torch's stub says reduction=1 (mean), yet torch's binding returns the "
       "unreduced loss without it, as chainrule's reduction=0 does"
       for name in ("kl_div", "hinge_embedding_loss", "binary_cross_entropy_with_logits", "margin_ranking_loss",
                    "triplet_margin_loss", "cosine_embedding_loss", "ctc_loss")},
    **{(name, "unbiased"): "unbiased=None is torch's own default (correction 1) in chainrule"
       for name in ("torch.std", "torch.var", "torch.std_mean", "torch.var_mean", "torch.Tensor.std",
                    "torch.Tensor.var")},
    **{(name, "dx"): "dx=None is a unit spacing in chainrule"
       for name in ("torch.trapezoid", "torch.trapz", "torch.cumulative_trapezoid")},
    ("torch.gradient", "spacing"): "spacing=1 is torch's unit spacing (None in torch)",
    ("torch.cdist", "compute_mode"): "compute_mode=None picks torch's default rule in chainrule",
    ("torch.Tensor.nan_to_num", "nan"): "nan=None is zero in torch",
    ("torch.Tensor.nan_to_num_", "nan"): "nan=None is zero in torch",
}

# (callable, parameter) that torch's stub or docstring lists but torch 2.13's binding refuses (each
# call tried on torch): chainrule refuses it as torch does, so it is not a difference
REFUSED_BY_TORCHS_BINDING = {
    **{("torch.tensor", name): "torch.tensor takes 1 positional argument" for name in
       ("dtype", "device", "requires_grad", "pin_memory")},
    **{("torch.Tensor.new_tensor", name): "new_tensor takes 1 positional argument and no pin_memory=" for name in
       ("dtype", "device", "requires_grad", "pin_memory")},
    ("torch.einsum", "equation"): "einsum(equation=) got an unexpected keyword argument",
    ("torch.from_numpy", "ndarray"): "from_numpy() takes no keyword arguments",
    ("torch.linalg.matrix_exp", "out"): "linalg_matrix_exp() got an unexpected keyword argument 'out'",
    ("torch.Tensor.subtract", "alpha"): "subtract(other, 2): an invalid combination of arguments",
    ("torch.Tensor.subtract_", "alpha"): "subtract_(other, 2): an invalid combination of arguments",
    ("torch.Tensor.requires_grad_", "mode"): "requires_grad_(mode=) is refused; requires_grad= is taken",
    ("torch.Tensor.floor_divide", "out"): "floor_divide(other, out=): an invalid combination of arguments",
    ("torch.linspace", "steps"): "linspace(start, end) without steps: an invalid combination of arguments",
    ("torch.logspace", "steps"): "logspace(start, end) without steps: an invalid combination of arguments",
}

# parameters chainrule adds to a torch signature on purpose (never reported when they have a default)
EXTENSION_REASON = "a chainrule extension keyword with a default; torch code never passes it"

PROPERTY_TYPES = (property, types.GetSetDescriptorType, types.MemberDescriptorType)

STUBS = {  # torch namespace -> (stub file under torch/, class whose methods are read or None)
    "torch": [("_C/_VariableFunctions.pyi", None)],
    "torch.Tensor": [("_C/__init__.pyi", "TensorBase")],
    "torch.nn.functional": [("_C/_nn.pyi", None), ("_C/_VariableFunctions.pyi", None)],
}

# keywords counted apart in the summary: chainrule lacks many, and they rarely decide a program
FACTORY_KEYWORDS = {"out", "pin_memory", "layout"}

# a stub's name for a keyword Python cannot spell -> the keyword torch's argument parser takes
STUB_KEYWORDS = {"from_": "from"}

CALL_SAMPLES = 2  # float32 samples per OpInfo whose keyword forms are called


def _stub_value(node, torch):
    text = ast.unparse(node)
    if text == "...":
        return inspect.Parameter.empty, True
    try:
        return eval(text, {"torch": torch, **vars(torch)}), False  # noqa: S307 - torch's own stub text
    except Exception:
        return text, False


def _signature_from_ast(arguments: ast.arguments, torch, drop_self: bool) -> inspect.Signature:
    """An inspect.Signature from a stub's ``def``; a default written ``...`` is marked unknown."""
    P = inspect.Parameter
    parameters = []
    positional = arguments.posonlyargs + arguments.args
    defaults = [None] * (len(positional) - len(arguments.defaults)) + list(arguments.defaults)
    for index, (arg, default) in enumerate(zip(positional, defaults)):
        if drop_self and index == 0 and arg.arg == "self":
            continue
        kind = P.POSITIONAL_ONLY if arg in arguments.posonlyargs else P.POSITIONAL_OR_KEYWORD
        value = P.empty if default is None else _stub_value(default, torch)[0]
        parameters.append(P(arg.arg, kind, default=_UNKNOWN if default is not None and value is P.empty
                            else value))
    if arguments.vararg is not None:
        parameters.append(P(arguments.vararg.arg, P.VAR_POSITIONAL))
    for arg, default in zip(arguments.kwonlyargs, arguments.kw_defaults):
        value = P.empty if default is None else _stub_value(default, torch)[0]
        parameters.append(P(arg.arg, P.KEYWORD_ONLY, default=_UNKNOWN if default is not None and value is P.empty
                            else value))
    if arguments.kwarg is not None:
        parameters.append(P(arguments.kwarg.arg, P.VAR_KEYWORD))
    return inspect.Signature(parameters)


class _Unknown:
    """A default torch's stub writes as ``...``: present, value not stated."""

    def __repr__(self):
        return "<default>"


_UNKNOWN = _Unknown()


@functools.cache
def _stub_overloads(stub: str, class_name: str | None) -> dict:
    import torch

    path = os.path.join(os.path.dirname(torch.__file__), stub)
    with open(path) as handle:
        tree = ast.parse(handle.read())
    body = tree.body
    if class_name is not None:
        body = next(node.body for node in tree.body if isinstance(node, ast.ClassDef) and node.name == class_name)
    overloads = collections.defaultdict(list)
    for node in body:
        if isinstance(node, ast.FunctionDef):
            signature = _signature_from_ast(node.args, torch, class_name is not None)
            if class_name is None and "self" in signature.parameters:
                continue  # a deprecated or number-first overload; nobody writes torch.add(self=...)
            overloads[node.name].append(signature)
    return overloads


# torch namespaces whose C functions are aten operators named with a prefix; torch's binding
# passes the schema's names through (``self`` read as ``input``), which its docstrings do not always show
ATEN_PREFIXES = {"torch.linalg": "linalg_", "torch.fft": "fft_", "torch.special": "special_"}


def _schema_overloads(namespace: str, name: str) -> list:
    import torch

    P = inspect.Parameter
    found = []
    for schema in torch._C._jit_get_schemas_for_operator(f"aten::{ATEN_PREFIXES[namespace]}{name}"):
        if any("Dimname" in str(argument.type) for argument in schema.arguments):
            continue  # named tensors
        parameters = []
        for argument in schema.arguments:
            if argument.is_out:  # the binding takes every output as one optional out= (a tuple when several)
                if "out" not in (p.name for p in parameters):
                    parameters.append(P("out", P.KEYWORD_ONLY, default=None))
                continue
            default = argument.default_value if argument.has_default_value() else P.empty
            parameters.append(P("input" if argument.name == "self" else argument.name,
                                P.KEYWORD_ONLY if argument.kwarg_only else P.POSITIONAL_OR_KEYWORD, default=default))
        try:
            found.append(inspect.Signature(parameters))
        except ValueError:
            continue  # a schema whose defaults inspect's ordering rules refuse
    return found


def _docstring_overloads(name: str, obj) -> list:
    """torch documents a C function's overloads in its docstring's first lines: ``f(a, b=1, *, out=None)``."""
    import torch

    doc = getattr(obj, "__doc__", None) or ""
    found = []
    for line in doc.strip().splitlines()[:8]:
        line = line.strip().rstrip(":")
        head = line.split("->")[0].strip()
        short = head.split("(")[0].split(".")[-1]
        if short != name or not head.endswith(")"):
            if found:
                break
            continue
        try:
            function = ast.parse(f"def f{head[head.index('('):]}: pass").body[0]
        except SyntaxError:
            continue
        found.append(_signature_from_ast(function.args, torch, False))
    return found


def _informative(signature: inspect.Signature) -> bool:
    kinds = [p.kind for p in signature.parameters.values()]
    return kinds != [inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD]


def torch_overloads(namespace: str, name: str, obj, overrides: dict) -> tuple[list, str]:
    """torch's signatures of one callable and where they were read."""
    try:
        signature = inspect.signature(obj)
        if _informative(signature):
            return [signature], "inspect"
    except (TypeError, ValueError):
        pass
    for stub, class_name in STUBS.get(namespace, []):
        found = _stub_overloads(stub, class_name).get(name)
        if found:
            return found, "stub"
    if namespace in ATEN_PREFIXES:
        found = _schema_overloads(namespace, name)
        if found:
            return found, "schema"
    found = _docstring_overloads(name, obj)
    if found:
        return found, "docstring"
    if obj in overrides:
        return [inspect.signature(overrides[obj])], "overrides"
    return [], "none"


def _comparable(value):
    if isinstance(value, (list, tuple)):
        return tuple(_comparable(item) for item in value)
    if isinstance(value, (bool, int, float, str, type(None))):
        return value
    return str(value).replace("chainrule.", "torch.").split("torch.")[-1]


def _same_default(torch_default, chainrule_default) -> bool:
    if torch_default is _UNKNOWN:
        return True
    if chainrule_default is None and (torch_default in ((), []) or not isinstance(
            torch_default, (bool, int, float, str, type(None), tuple, list))):
        return True  # None standing for "unset" (an empty size, torch's default generator, layout, module)
    if callable(torch_default) and getattr(torch_default, "__name__", None) == chainrule_default:
        return True  # an activation named instead of passed: nn.Transformer's activation="relu" is F.relu
    if (_comparable(torch_default), _comparable(chainrule_default)) in EQUIVALENT_DEFAULTS:
        return True
    try:
        return bool(_comparable(torch_default) == _comparable(chainrule_default))
    except Exception:
        return False


def compare(overloads: list, theirs: inspect.Signature, qualified: str = "") -> list:
    """What in ``theirs`` (chainrule's signature) rejects or changes a call written against torch's."""
    P = inspect.Parameter
    problems = []
    ours = [p for p in theirs.parameters.values()]
    by_name = {p.name: p for p in ours if p.kind not in (P.VAR_POSITIONAL, P.VAR_KEYWORD)}
    positional = [p for p in ours if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
    takes_args = any(p.kind == P.VAR_POSITIONAL for p in ours)
    takes_kwargs = any(p.kind == P.VAR_KEYWORD for p in ours)
    torch_names = set()
    names_at = collections.defaultdict(set)  # position -> torch's names for it across overloads
    for overload in overloads:
        at_positions = [p for p in overload.parameters.values()
                        if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
        for index, parameter in enumerate(at_positions):
            names_at[index].add(parameter.name)
    for overload in overloads:
        index = 0
        for parameter in overload.parameters.values():
            torch_names.add(parameter.name)
            if parameter.name in SKIPPED_PARAMETERS:
                index += parameter.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)
                continue
            if parameter.kind == P.VAR_POSITIONAL:
                if not takes_args:
                    problems.append(f"*{parameter.name}: torch takes varargs, chainrule does not")
                continue
            if parameter.kind == P.VAR_KEYWORD:
                if not takes_kwargs:
                    problems.append(f"**{parameter.name}: torch takes **kwargs, chainrule does not")
                continue
            mine = by_name.get(parameter.name)
            if parameter.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD):
                at = positional[index] if index < len(positional) else None
                if at is None and not takes_args:
                    problems.append(f"{parameter.name}: positional #{index} in torch, chainrule takes "
                                    f"{len(positional)} positionals")
                elif at is not None and at.name != parameter.name and parameter.kind != P.POSITIONAL_ONLY \
                        and at.kind != P.POSITIONAL_ONLY and len(names_at[index]) == 1:
                    problems.append(f"{parameter.name}: positional #{index} in torch, chainrule's is {at.name!r}")
                index += 1
            if mine is None or mine.kind == P.POSITIONAL_ONLY:
                if parameter.kind != P.POSITIONAL_ONLY and not takes_kwargs:
                    problems.append(f"{parameter.name}: keyword missing in chainrule")
                continue
            if parameter.default is not P.empty and mine.default is P.empty:
                problems.append(f"{parameter.name}: default {parameter.default!r} in torch, required in chainrule")
            elif parameter.default is not P.empty and not _same_default(parameter.default, mine.default) \
                    and (qualified, parameter.name) not in DEFAULTS_SAME_BY_CALL:
                problems.append(f"{parameter.name}: default torch {parameter.default!r}, chainrule {mine.default!r}")
    for parameter in ours:
        if parameter.name not in torch_names and parameter.default is P.empty \
                and parameter.kind in (P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY):
            problems.append(f"{parameter.name}: required in chainrule, torch has no such parameter")
    problems = [problem for problem in problems
                if (qualified, problem.split(":")[0]) not in REFUSED_BY_TORCHS_BINDING]
    return list(dict.fromkeys(problems))


def _is_dispatcher(signature: inspect.Signature) -> bool:
    kinds = {p.kind for p in signature.parameters.values()}
    return inspect.Parameter.VAR_POSITIONAL in kinds and inspect.Parameter.VAR_KEYWORD in kinds \
        and len(signature.parameters) <= 3


def _public(module) -> list:
    names = getattr(module, "__all__", None) or dir(module)
    return sorted(name for name in set(names) if not name.startswith("_"))


def _targets(torch, name_filter: str | None):
    """(qualified name, torch namespace, short name, torch object, chainrule owner path, kind)."""
    for torch_module, chainrule_module, what in NAMESPACES:
        module = importlib.import_module(torch_module)
        for name in _public(module):
            obj = getattr(module, name, None)
            if obj is None or inspect.ismodule(obj) or not callable(obj):
                continue
            is_class = inspect.isclass(obj)
            if is_class and what == "functions" or not is_class and what == "classes":
                continue
            if getattr(obj, "__module__", "torch") and not str(getattr(obj, "__module__", "torch")).startswith("torch"):
                continue
            yield f"{torch_module}.{name}", torch_module, name, obj, chainrule_module, "class" if is_class else "function"
    for name in _public(torch.Tensor):
        obj = inspect.getattr_static(torch.Tensor, name, None)
        kind = "property" if isinstance(obj, PROPERTY_TYPES) else "method"
        yield f"torch.Tensor.{name}", "torch.Tensor", name, getattr(torch.Tensor, name), "chainrule.Tensor", kind


def _chainrule_object(path: str, name: str):
    import chainrule

    owner = functools.reduce(getattr, path.split(".")[1:], chainrule)
    if path == "chainrule.Tensor":
        return inspect.getattr_static(owner, name, None) is not None, getattr(owner, name, None)
    return hasattr(owner, name), getattr(owner, name, None)


def _skip_reason(qualified: str, kind: str, torch_obj) -> str | None:
    if kind == "class" and qualified.startswith("torch.") and qualified.count(".") == 1:
        return "a class of torch's top namespace (storage, dtype, generator types): constructors not compared"
    if kind == "class" and isinstance(torch_obj, type) and issubclass(torch_obj, BaseException):
        return "an exception class"
    return None


def check_signatures(name_filter: str | None) -> list:
    import torch

    overrides = torch.overrides.get_testing_overrides()
    records = []
    for qualified, namespace, name, obj, chainrule_path, kind in _targets(torch, name_filter):
        if name_filter and name_filter not in qualified:
            continue
        record = {"name": qualified, "kind": None, "what": []}
        records.append(record)
        reason = _skip_reason(qualified, kind, obj)
        try:
            present, mine = _chainrule_object(chainrule_path, name)
        except AttributeError:
            present, mine = False, None
        if not present:
            record["kind"] = "skipped" if reason else "missing"
            record["what"] = [reason] if reason else []
            continue
        if reason:
            record["kind"], record["what"] = "skipped", [reason]
            continue
        if kind == "property":
            record["kind"] = "same"
            continue
        torch_callable = obj.__init__ if kind == "class" else obj
        found, source = torch_overloads(namespace, name, torch_callable, overrides) if kind != "class" else ([], "")
        if kind == "class":
            try:
                found = [_without_self(inspect.signature(obj.__init__))]
                source = "inspect"
            except (TypeError, ValueError):
                found = []
            if found and not _informative(found[0]):
                record["kind"], record["what"] = "skipped", ["torch's __init__ takes (*args, **kwargs)"]
                continue
        elif kind == "method":
            found = [_without_self(signature) for signature in found]
        record["source"] = source
        if not found:
            record["kind"], record["what"] = "skipped", ["torch states no signature: (*args, **kwargs), no stub, schema or documented overload"]
            continue
        try:
            theirs = inspect.signature(mine.__init__ if kind == "class" else mine)
        except (TypeError, ValueError):
            record["kind"], record["what"] = "skipped", ["chainrule's callable has no signature"]
            continue
        if kind == "class":
            theirs = _without_self(theirs)
        elif kind == "method":
            theirs = _without_receiver(theirs)
        if _is_dispatcher(theirs) and kind != "class":
            theirs = _beneath_wrappers(mine)
            if theirs is None:
                record["kind"] = "dispatcher"
                continue
            if kind == "method":
                theirs = _without_receiver(theirs)
            record["source"] += ", chainrule's function beneath its wrappers"
        problems = compare(found, theirs, qualified)
        record["kind"] = "differ" if problems else "same"
        record["what"] = problems
    return records


def _beneath_wrappers(function) -> inspect.Signature | None:
    """The first signature down a chainrule function's ``__wrapped__`` chain that names its parameters
    (its dispatch and ``out=`` wrappers take ``*args, **kwargs`` and pass them on), or None when the
    function parses its arguments itself. An ``out=`` front (``honours_out``) met on the way above it
    adds its keyword ``out``, which the function beneath does not declare."""
    takes_out = False
    while function is not None:
        takes_out = takes_out or getattr(function, "honours_out", False)
        try:
            signature = inspect.signature(function, follow_wrapped=False)
        except (TypeError, ValueError):
            return None
        if not _is_dispatcher(signature):
            kinds = {p.kind for p in signature.parameters.values()}
            parses_itself = {inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD} <= kinds
            if parses_itself:
                return None
            if takes_out and "out" not in signature.parameters:
                signature = _with_out_keyword(signature)
            return signature
        function = getattr(function, "__wrapped__", None)
    return None


def _with_out_keyword(signature: inspect.Signature) -> inspect.Signature:
    parameters = list(signature.parameters.values())
    at = next((i for i, p in enumerate(parameters) if p.kind is inspect.Parameter.VAR_KEYWORD), len(parameters))
    out = inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, default=None)
    return signature.replace(parameters=parameters[:at] + [out] + parameters[at:])


def _without_self(signature: inspect.Signature) -> inspect.Signature:
    parameters = list(signature.parameters.values())
    if parameters and parameters[0].name == "self":
        parameters = parameters[1:]
    return signature.replace(parameters=parameters)


def _without_receiver(signature: inspect.Signature) -> inspect.Signature:
    """A Tensor method's signature as its callers see it: chainrule's methods are often the op
    function itself, whose first parameter (``input``) is the receiver."""
    parameters = list(signature.parameters.values())
    if parameters and parameters[0].kind in (inspect.Parameter.POSITIONAL_ONLY,
                                             inspect.Parameter.POSITIONAL_OR_KEYWORD):
        parameters = parameters[1:]
    return signature.replace(parameters=parameters)


def _keyword_forms(overloads: list, args: tuple, kwargs: dict, method: bool):
    """Each overload's binding of a positional call, rewritten with every bindable argument passed
    by keyword (a method's ``self`` stays the receiver)."""
    P = inspect.Parameter
    forms = []
    for overload in overloads:
        try:
            bound = overload.bind(*args, **kwargs)
        except TypeError:
            continue
        positional, keywords = [], {}
        for parameter_name, value in bound.arguments.items():
            parameter = overload.parameters[parameter_name]
            if parameter.kind == P.VAR_POSITIONAL:
                positional.extend(value)
            elif parameter.kind == P.VAR_KEYWORD:
                keywords.update(value)
            elif parameter.kind == P.POSITIONAL_ONLY or positional and parameter.kind == P.POSITIONAL_OR_KEYWORD \
                    and any(overload.parameters[n].kind == P.VAR_POSITIONAL for n in bound.arguments):
                positional.append(value)
            else:
                keywords[STUB_KEYWORDS.get(parameter_name, parameter_name)] = value
        form = (tuple(positional), keywords)
        if form not in forms and keywords:
            forms.append(form)
    return forms


def check_calls(name_filter: str | None, records: list) -> list:
    """Call each OpInfo'd callable with its samples' keyword forms on torch and on chainrule."""
    import torch
    from torch_opinfo_trial import (
        UNINITIALISED,
        Trial,
        Unconvertible,
        _without_test_function_lookup,
        compare_outputs,
        load_op_db,
    )
    from torch_oracle import NotComparable, time_limit

    overrides = torch.overrides.get_testing_overrides()
    trial = Trial()
    wanted = {r["name"] for r in records if r["kind"] in ("same", "differ", "dispatcher")}
    calls = []
    seen = set()
    with _without_test_function_lookup(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for op in load_op_db():
            for variant, namespace in ((op.op, None), (op.method_variant, "torch.Tensor")):
                if variant is None:
                    continue
                qualified, short, space = _torch_path(variant, namespace, torch)
                if qualified is None or qualified not in wanted or (qualified, op.variant_test_name) in seen:
                    continue
                if name_filter and name_filter not in qualified:
                    continue
                seen.add((qualified, op.variant_test_name))
                overloads, _ = torch_overloads(space, short, variant, overrides)
                mine = trial.resolve_path(_chainrule_path(qualified))
                if mine is None or not overloads:
                    continue
                try:
                    # the first few only: torch reseeds (and formats the stack) for every sample drawn
                    samples = list(itertools.islice(op.sample_inputs("cpu", torch.float32, requires_grad=False),
                                                    CALL_SAMPLES))
                except Exception:
                    continue
                for sample in samples:
                    args = (sample.input, *sample.args)
                    receiver = args[0] if namespace else None
                    for positional, keywords in _keyword_forms(overloads, args[1:] if namespace else args,
                                                               sample.kwargs, bool(namespace)):
                        calls.append(_call_both(trial, qualified, variant, mine, receiver, positional, keywords,
                                                torch, compare_outputs, time_limit,
                                                (Unconvertible, NotComparable), UNINITIALISED))
    return [c for c in calls if c is not None]


def _torch_path(variant, namespace, torch):
    """(qualified name, name, namespace) under which torch exposes an OpInfo's callable."""
    if namespace:
        name = getattr(variant, "__name__", None)
        if name and getattr(torch.Tensor, name, None) is not None:
            return f"torch.Tensor.{name}", name, "torch.Tensor"
        return None, None, None
    return _public_paths(torch).get(id(variant), (None, None, None))


@functools.lru_cache(maxsize=1)
def _public_paths(torch) -> dict:
    paths = {}
    for module_name in ("torch", "torch.nn.functional", "torch.linalg", "torch.fft", "torch.special"):
        module = importlib.import_module(module_name)
        for name in _public(module):
            paths.setdefault(id(getattr(module, name, None)), (f"{module_name}.{name}", name, module_name))
    return paths


def _chainrule_path(qualified: str) -> str:
    return qualified[len("torch."):]


def _invoke(receiver, function, positional, keywords, time_limit):
    """``function(*positional, **keywords)``, or the method of that name on ``receiver`` when there is one."""
    with time_limit(5):
        if receiver is not None:
            return getattr(receiver, function.__name__)(*positional, **keywords)
        return function(*positional, **keywords)


def _call_both(trial, qualified, torch_fn, mine, receiver, positional, keywords, torch, compare_outputs, time_limit,
               unconvertible, uninitialised):
    form = ", ".join([*("<positional>" for _ in positional), *(f"{k}=" for k in keywords)])
    record = {"name": qualified, "form": form}
    try:
        expected = _invoke(receiver, torch_fn, positional, keywords, time_limit)
    except Exception:
        return None  # torch does not take this keyword form either
    memo = {}
    try:
        converted_receiver = trial.value(receiver, memo) if receiver is not None else None
        converted_positional = [trial.value(v, memo) for v in positional]
        converted_keywords = {k: trial.value(v, memo) for k, v in keywords.items()}
    except unconvertible:
        return None
    try:
        # a method is looked up on the chainrule receiver by torch's name; a function is chainrule's own
        function = torch_fn if converted_receiver is not None else mine
        actual = _invoke(converted_receiver, function, converted_positional, converted_keywords, time_limit)
    except Exception as error:
        record["kind"], record["what"] = "call_raised", f"{type(error).__name__}: {str(error)[:200]}"
        return record
    why = compare_outputs(expected, actual, torch, values=qualified.split(".")[-1] not in uninitialised)
    record["kind"] = "call_differ" if why else "call_same"
    if why:
        record["what"] = why
    return record


def command_run(args):
    start = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        records = check_signatures(args.filter)
    calls = [] if args.no_calls else check_calls(args.filter, records)
    elapsed = time.perf_counter() - start
    with open(os.path.join(args.out, "signatures.json"), "w") as handle:
        json.dump({"callables": records, "calls": calls, "elapsed_s": elapsed}, handle, indent=1, default=str)
    summary = collections.Counter(r["kind"] for r in records)
    call_summary = collections.Counter(c["kind"] for c in calls)
    callables_called = collections.defaultdict(set)
    for call in calls:
        callables_called[call["kind"]].add(call["name"])
    print(f"{len(records)} callables in {elapsed:.1f} s: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.items())))
    factory_only = sum(1 for r in records if r["kind"] == "differ" and all(
        w.split(":")[0] in FACTORY_KEYWORDS and "keyword missing" in w for w in r["what"]))
    print(f"  of the differing, {factory_only} lack only out=/pin_memory=/layout= keywords")
    dispatchers = {r["name"] for r in records if r["kind"] == "dispatcher"}
    called = {call["name"] for call in calls} & dispatchers
    agreeing = called - {call["name"] for call in calls if call["kind"] != "call_same"}
    print(f"  dispatchers called with keyword forms: {len(called)} of {len(dispatchers)}, "
          f"{len(agreeing)} agreeing in every call")
    print(f"{len(calls)} keyword-form calls: " + ", ".join(
        f"{k} {v} ({len(callables_called[k])} callables)" for k, v in sorted(call_summary.items())))


def command_show(args):
    with open(os.path.join(args.out, "signatures.json")) as handle:
        data = json.load(handle)
    for record in data["callables"] + data["calls"]:
        if args.kind and record["kind"] != args.kind:
            continue
        what = record.get("what") or ""
        if isinstance(what, list):
            what = "; ".join(what)
        print(f"{record['kind']:12s} {record['name']}{' (' + record['form'] + ')' if 'form' in record else ''}  "
              f"{what}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="compare signatures and call keyword forms")
    run.add_argument("--out", required=True)
    run.add_argument("--filter", help="only callables whose qualified name contains this")
    run.add_argument("--no-calls", action="store_true", help="signatures only (no OpInfo calls)")
    run.set_defaults(handler=command_run)
    show = commands.add_parser("show", help="list the records of a run")
    show.add_argument("--out", required=True)
    show.add_argument("--kind")
    show.set_defaults(handler=command_show)
    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
