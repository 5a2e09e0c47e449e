"""Run torch's own nn test dicts (``torch.testing._internal.common_nn``) on torch and on chainrule, and compare.

torch's older nn tests are tables of dicts: ``module_tests``, ``get_new_module_tests()`` and
``criterion_tests``, each naming a module (``module_name`` + ``constructor_args``) or a
``constructor`` (a class or a lambda, often ``wrap_functional(lambda i: F.some_loss(i, t, ...))``),
an input (``input_size`` / ``input_fn``), for losses a target, and flags such as ``check_gradgrad``.
Nothing of torch's is stored here: the dicts come from the installed torch 2.13.

For each dict this trial uses torch's own ``NewModuleTest`` / ``CriterionTest`` objects to build the
module and draw the input and target (seeded, under the dict's default dtype), converts them to
chainrule faithfully (dtype, values, requires_grad, strides), builds the same module on chainrule
(a torch class becomes the chainrule class of that name; a lambda or a locally defined module
class is rebuilt with ``torch``/``nn``/``F`` in its globals and closure bound to chainrule), copies
torch's parameters and buffers into it by name, and compares, stage by stage:

- ``forward``: the outputs (shape, dtype, values) in the dict's dtype;
- ``backward``: gradients of the floating inputs and of every parameter for a seeded grad_output;
- ``gradgrad`` (where the dict's ``check_gradgrad`` is true): the gradient of <grad, v> for a seeded
  v, through ``create_graph=True``;
- ``noncontiguous``: forward and gradients again on torch's own non-contiguous copy of the input
  and target (``ModuleTest.noncontiguize``);

After every stage the modules' buffers (running statistics, batch counts) are compared too.
- ``float32`` / ``float64``: the module and the floating inputs cast to the other dtype, forward and
  backward again (torch's tests run both);
- ``repr`` (chainrule's read with "torch" for "chainrule"), and ``pickle``: the module after a
  chainrule.save / chainrule.load round trip against a deep copy of torch's, forward and backward;
- ``eval``: both modules in eval mode (running statistics, no dropout), forward and backward;
- ``float16`` only with ``--half``: torch's CPU tests do not run it, and float16 sums in a different
  order differ visibly (a stage both libraries refuse in the same words agrees).

A case is ``same`` when every stage agrees, else ``differ`` or ``chainrule_raised`` at the first
stage that does not (``torch_raised`` when torch itself cannot run it), or ``skipped`` with a reason.

    python tools/torch_common_nn_trial.py run --out /tmp/nn_trial
    python tools/torch_common_nn_trial.py run --out /tmp/nn_trial --filter CrossEntropy
    python tools/torch_common_nn_trial.py ledger --out /tmp/nn_trial   # the CI test's agreeing cases
"""

from __future__ import annotations

import argparse
import builtins
import collections
import contextlib
import functools
import importlib
import json
import os
import sys
import time
import types
import zlib
from copy import deepcopy

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_oracle import NotComparable, time_limit, torch_tensor_to_chainrule  # noqa: E402

CASE_SECONDS = 60

# dtypes NumPy (and so chainrule's storage) does not hold the way torch does
UNSUPPORTED_DTYPES = {"complex32", "bfloat16", "float8_e4m3fn", "float8_e5m2", "uint16", "uint32", "uint64"}

# dicts left out on purpose, each with the reason, keyed by the case name (none since every dict runs;
# dtypes and layouts out of scope are skipped by rule, with their reason, where they are converted)
SKIPS: dict[str, str] = {}

TOLERANCE = {"float16": (1e-2, 1e-2), "float64": (1e-7, 1e-7), "float32": (1e-4, 1e-5), "complex128": (1e-7, 1e-7), "complex64": (1e-4, 1e-5)}


# the case cannot be run on chainrule for a stated reason that is not a chainrule defect (the shared
# converter's skips — layouts, devices — are of this kind too)
Skip = NotComparable


class Untranslatable(Skip):
    """The constructor uses a torch object with no chainrule counterpart."""


class CaseTimeout(Exception):
    pass


# ------------------------------------------------------------------ collecting the dicts
def collect_cases():
    """Every dict of common_nn as (name, kind, params, group), in torch's order, names made unique."""
    import torch
    from torch.testing._internal import common_nn

    torch.manual_seed(0)  # some dicts draw their targets while the list is built
    tables = [("module", common_nn.module_tests + common_nn.get_new_module_tests()),
              ("criterion", common_nn.criterion_tests)]
    cases, seen = [], collections.Counter()
    for kind, dicts in tables:
        for params in dicts:
            params = dict(params)
            if "constructor" not in params:
                module_name = params.pop("module_name")
                params["constructor"] = getattr(torch.nn, module_name)
                group = module_name
            else:
                group = (params.get("fullname") or params["constructor"].__name__).split("_")[0]
            test_class = common_nn.NewModuleTest if kind == "module" else common_nn.CriterionTest
            variants = [(None, params)]
            # torch's test_nn.py derives these two from the same dicts
            if "check_eval" in params:
                variants.append(("eval", dict(params, desc=_joined(params.get("desc"), "eval"))))
            if "check_with_long_tensor" in params:
                key = "fullname" if params.get("fullname") else "desc"
                variants.append(("long", dict(params, **{key: _joined(params.get(key), "with_long_tensor")})))
            for variant, variant_params in variants:
                name = test_class(**variant_params).get_name()[len("test_"):]
                seen[name] += 1
                if seen[name] > 1:
                    name = f"{name}#{seen[name]}"
                variant_params = dict(variant_params, trial_variant=variant)
                cases.append((name, kind, variant_params, group))
    return cases


def _joined(first, second):
    return second if not first else f"{first}_{second}"


# ------------------------------------------------------------------ torch objects -> chainrule objects
def chainrule_dtype(dtype):
    import chainrule

    name = str(dtype).removeprefix("torch.")
    if name in UNSUPPORTED_DTYPES:
        raise Skip(f"dtype {name} has no NumPy storage")
    return getattr(chainrule, name)


def to_chainrule_tensor(tensor):
    """A chainrule tensor with torch's dtype, values, strides, storage offset and requires_grad."""
    chainrule_dtype(tensor.dtype)  # skips the dtypes NumPy does not hold as torch does
    return torch_tensor_to_chainrule(tensor)


class _ReboundGlobals(dict):
    """A function's globals, each looked up on first use and translated to chainrule."""

    def __init__(self, source, translate):
        super().__init__()
        self.source, self.translate = source, translate
        self["__builtins__"] = source.get("__builtins__", builtins)

    def __missing__(self, key):
        value = self.translate(self.source[key])
        self[key] = value
        return value


class Translator:
    """Turns torch objects (tensors, dtypes, modules, classes, functions, lambdas) into chainrule's."""

    def __init__(self):
        self.memo = {}

    def __call__(self, obj):
        key = id(obj)
        if key in self.memo:
            return self.memo[key][1]
        result = self._translate(obj)
        # the source is kept alive with its translation, so its id cannot be reused by a new object
        self.memo[key] = (obj, result)
        return result

    def _translate(self, obj):
        import torch

        import chainrule

        if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, range, slice)):
            return obj
        if isinstance(obj, torch.Tensor):
            return to_chainrule_tensor(obj)
        if isinstance(obj, torch.dtype):
            return chainrule_dtype(obj)
        if isinstance(obj, torch.device):
            return chainrule.device(str(obj))
        if isinstance(obj, torch.Size):
            return chainrule.Size(tuple(obj))
        if isinstance(obj, types.ModuleType):
            return self._module(obj)
        if isinstance(obj, list):
            out = []
            self.memo[id(obj)] = (obj, out)
            out.extend(self(item) for item in obj)
            return out
        if isinstance(obj, tuple):
            items = [self(item) for item in obj]
            return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
        if isinstance(obj, dict):
            return {key: self(value) for key, value in obj.items()}
        if isinstance(obj, functools.partial):
            return functools.partial(self(obj.func), *self(obj.args), **self(obj.keywords))
        if isinstance(obj, type):
            return self._class(obj)
        if isinstance(obj, types.FunctionType):
            return self._function(obj)
        if isinstance(obj, (types.BuiltinFunctionType, types.MethodDescriptorType, types.WrapperDescriptorType)):
            return self._builtin(obj)
        return obj

    @staticmethod
    def _module(module):
        name = module.__name__
        if name != "torch" and not name.startswith("torch."):
            return module
        try:
            return importlib.import_module("chainrule" + name[len("torch"):])
        except ImportError as error:
            raise Untranslatable(f"module {name} has no chainrule counterpart") from error

    @staticmethod
    def _public(module_name, qualname):
        import chainrule

        target = chainrule
        path = module_name.split(".")[1:] + qualname.split(".")
        if module_name.startswith("torch.nn.modules"):
            path = ["nn"] + qualname.split(".")
        elif module_name.startswith("torch._C._nn"):
            path = ["nn", "functional"] + qualname.split(".")  # F.gelu and friends are torch._C._nn builtins
        for part in path:
            if not hasattr(target, part):
                raise Untranslatable(f"{module_name}.{qualname} has no chainrule counterpart")
            target = getattr(target, part)
        return target

    def _class(self, cls):
        import torch

        module_name = cls.__module__ or ""
        if module_name.startswith("torch.") and not module_name.startswith("torch.testing"):
            if "<locals>" in cls.__qualname__:
                raise Untranslatable(f"local torch class {cls.__qualname__}")
            return self._public(module_name, cls.__qualname__)
        if not issubclass(cls, torch.nn.Module):
            return cls
        # a module class written in the test file: the same class over chainrule's bases
        bases = tuple(self(base) for base in cls.__bases__)
        rebuilt = type(cls.__name__, bases, {"__module__": cls.__module__, "__qualname__": cls.__qualname__})
        self.memo[id(cls)] = (cls, rebuilt)
        for attribute, value in vars(cls).items():
            if attribute in ("__dict__", "__weakref__", "__module__", "__qualname__", "__doc__"):
                continue
            setattr(rebuilt, attribute, self(value))
        return rebuilt

    def _function(self, function):
        module_name = function.__module__ or ""
        if module_name.startswith("torch.") and not module_name.startswith("torch.testing"):
            return self._public(module_name, function.__qualname__)
        key = ("globals", id(function.__globals__))
        if key not in self.memo:
            self.memo[key] = (function.__globals__, _ReboundGlobals(function.__globals__, self))
        globals_ = self.memo[key][1]
        closure = None
        if function.__closure__:
            closure = tuple(self._cell(cell) for cell in function.__closure__)
        rebuilt = types.FunctionType(function.__code__, globals_, function.__name__,
                                     self(function.__defaults__), closure)
        rebuilt.__kwdefaults__ = self(function.__kwdefaults__)
        return rebuilt

    def _cell(self, cell):
        try:
            contents = cell.cell_contents
        except ValueError:
            return types.CellType()
        return types.CellType(self(contents))

    @staticmethod
    def _builtin(function):
        import chainrule

        owner = getattr(function, "__objclass__", None)
        if owner is not None:
            if owner.__name__ in ("TensorBase", "Tensor"):
                if not hasattr(chainrule.Tensor, function.__name__):
                    raise Untranslatable(f"Tensor.{function.__name__}")
                return getattr(chainrule.Tensor, function.__name__)
            return function
        module_name = getattr(function, "__module__", None) or "torch"
        if not module_name.startswith("torch"):
            return function
        if module_name in ("torch", "torch._C", "torch._C._VariableFunctions"):
            module_name = "torch"
        return Translator._public(module_name, function.__name__)


# ------------------------------------------------------------------ comparing
def _flatten(value):
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in _flatten(item)]
    return [value]


def _as_array(value):
    if value is None:
        return None
    if hasattr(value, "detach"):
        value = value.detach()
        if getattr(value, "is_sparse", False):
            value = value.to_dense()  # Embedding(sparse=True)'s weight gradient, compared as values
        try:
            return np.asarray(value.numpy(force=True))  # torch's ZeroTensor gradients need force
        except TypeError:
            return np.asarray(value.numpy())
    return np.asarray(value)


def _dtype_name(value):
    return str(getattr(value, "dtype", type(value).__name__)).split(".")[-1]


def compare(theirs, mine, what):
    """None when they agree, else a line saying how they differ."""
    theirs, mine = _flatten(theirs), _flatten(mine)
    if len(theirs) != len(mine):
        return f"{what}: torch gave {len(theirs)} values, chainrule {len(mine)}"
    for index, (expected, actual) in enumerate(zip(theirs, mine)):
        label = f"{what}[{index}]" if len(theirs) > 1 else what
        expected_array, actual_array = _as_array(expected), _as_array(actual)
        if expected_array is None or actual_array is None:
            # an unused input's gradient: None on one side may be zeros on the other
            present = expected_array if actual_array is None else actual_array
            if present is not None and np.any(present != 0):
                return f"{label}: torch {'None' if expected_array is None else 'values'}, chainrule " \
                       f"{'None' if actual_array is None else 'values'}"
            continue
        if hasattr(expected, "dtype") and _dtype_name(expected) != _dtype_name(actual):
            return f"{label}: dtype torch {_dtype_name(expected)}, chainrule {_dtype_name(actual)}"
        if expected_array.shape != actual_array.shape:
            return f"{label}: shape torch {expected_array.shape}, chainrule {actual_array.shape}"
        if expected_array.dtype.kind in "biu" or expected_array.dtype == np.bool_:
            if not np.array_equal(expected_array, actual_array):
                return f"{label}: integer values differ"
            continue
        rtol, atol = TOLERANCE.get(_dtype_name(expected), (1e-3, 1e-3))
        if not np.allclose(actual_array, expected_array, rtol=rtol, atol=atol, equal_nan=True):
            with np.errstate(invalid="ignore"):
                error = np.nanmax(np.abs(actual_array.astype(np.complex128) - expected_array))
            return f"{label}: values differ (max abs error {error:.3g})"
    return None


# ------------------------------------------------------------------ running one case
@contextlib.contextmanager
def _default_dtype(torch_dtype):
    import torch

    import chainrule

    saved = torch.get_default_dtype(), chainrule.get_default_dtype()
    torch.set_default_dtype(torch_dtype)
    chainrule.set_default_dtype(chainrule_dtype(torch_dtype))
    try:
        yield
    finally:
        torch.set_default_dtype(saved[0])
        chainrule.set_default_dtype(saved[1])


class _Side:
    """One library's module, inputs and the calls on them, so both sides run the same code."""

    def __init__(self, lib, module, inputs, target, extra_args, kind):
        self.lib, self.module, self.inputs, self.target = lib, module, inputs, target
        self.extra_args, self.kind = extra_args, kind

    def forward(self, inputs=None):
        inputs = self.inputs if inputs is None else inputs
        if self.kind == "criterion":
            return self.module(*inputs, self.target, *self.extra_args)
        return self.module(*inputs)

    def parameters(self):
        return [parameter for _, parameter in self.module.named_parameters()]

    @staticmethod
    def grad_inputs(inputs):
        return [tensor for tensor in _flatten(list(inputs))
                if hasattr(tensor, "requires_grad") and tensor.requires_grad]

    def gradients(self, output, grad_outputs, inputs, create_graph=False):
        wrt = self.grad_inputs(inputs) + [p for p in self.parameters() if p.requires_grad]
        outputs = [o for o in _flatten(output) if hasattr(o, "requires_grad") and o.requires_grad]
        if not outputs or not wrt:
            return []
        grads = [g for o, g in zip(_flatten(output), grad_outputs) if hasattr(o, "requires_grad") and o.requires_grad]
        return list(self.lib.autograd.grad(outputs, wrt, grads, allow_unused=True, create_graph=create_graph))


def _seed(seed):
    import torch

    import chainrule

    torch.manual_seed(seed)
    chainrule.manual_seed(seed)


def _random_like(values, seed):
    """Seeded torch normals shaped like each floating tensor (None for the others)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    out = []
    for value in _flatten(values):
        if isinstance(value, torch.Tensor) and (value.is_floating_point() or value.is_complex()):
            out.append(torch.randn(value.shape, dtype=value.dtype, generator=generator))
        else:
            out.append(None)
    return out


def _cast_floating(values, torch_dtype, translate):
    """torch inputs cast to ``torch_dtype`` (floating ones only), with their chainrule twins."""
    import torch

    def cast(value):
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return value.detach().to(torch_dtype).requires_grad_(value.requires_grad)
        if isinstance(value, (list, tuple)):
            return type(value)(cast(item) for item in value)
        return value

    theirs = cast(values)
    return theirs, translate(theirs)


def run_case(name, kind, params, half=False):
    """Run one dict on both libraries: a record with the outcome and, where not same, the stage and why."""
    import torch
    from torch.testing._internal import common_nn

    if name in SKIPS:
        return {"outcome": "skipped", "reason": SKIPS[name]}
    seed = zlib.crc32(name.encode())
    try:
        with time_limit(CASE_SECONDS, CaseTimeout):
            test_class = common_nn.NewModuleTest if kind == "module" else common_nn.CriterionTest
            params = dict(params)
            variant = params.pop("trial_variant", None)
            test = test_class(**params)
            with _default_dtype(test.default_dtype):
                if variant == "long":
                    return _run_long_tensor(test, seed)
                return _run_stages(test, kind, seed, torch, eval_mode=variant == "eval", half=half)
    except CaseTimeout as error:
        return {"outcome": "skipped", "reason": f"timeout: {error}"}


def _run_long_tensor(test, seed):
    """torch's ``_with_long_tensor`` variant: the module's floating tensors and the input become int64
    (random integers in [-1000, 1000)), forward only, compared exactly."""
    import torch

    translate = Translator()
    stage = "build"
    try:
        _seed(seed)
        module = test.constructor(*test.constructor_args)
        module._apply(lambda t: torch.randint(-1000, 1000, t.shape).double() if t.is_floating_point() else t)
        for parameter in module.parameters():
            parameter.requires_grad_(False)
        module._apply(lambda t: t.long())
        input_ = torch.randint(-1000, 1000, test._extra_kwargs["input_size"]).long()
        output = module(input_)
    except Exception as error:  # noqa: BLE001
        return {"outcome": "torch_raised", "stage": stage, "error": f"{type(error).__name__}: {error}"}
    try:
        cr_module = translate(test.constructor)(*translate(test.constructor_args))
        for parameter in cr_module.parameters():
            parameter.requires_grad_(False)
        cr_module._apply(lambda t: t.long())
        cr_module.load_state_dict({k: translate(v) for k, v in module.state_dict().items()}, strict=True)
        stage = "forward"
        my_output = cr_module(translate(input_))
    except Skip as error:
        return {"outcome": "skipped", "reason": str(error)}
    except Exception as error:  # noqa: BLE001
        return {"outcome": "chainrule_raised", "stage": stage, "error": f"{type(error).__name__}: {error}"[:400]}
    difference = compare(output, my_output, "output")
    if difference is not None:
        return {"outcome": "differ", "stage": "forward", "error": difference}
    return {"outcome": "same", "compared": 1}


def _run_stages(test, kind, seed, torch, eval_mode=False, half=False):
    import chainrule

    translate = Translator()
    stage = "build"
    try:
        _seed(seed)
        torch_module = test.constructor(*test.constructor_args)
        if eval_mode:
            torch_module.training = False  # as test_nn.py's eval variant: the flag, not .eval()
        input_ = test._get_input()
        target = test._get_target() if kind == "criterion" else None
        extra_args = test.extra_args
    except Exception as error:  # noqa: BLE001 - torch's own failure is recorded, not raised
        return {"outcome": "torch_raised", "stage": stage, "error": f"{type(error).__name__}: {error}"}
    inputs = input_ if isinstance(input_, tuple) else (input_,)
    try:
        constructor = translate(test.constructor)
        constructor_args = translate(test.constructor_args)
        cr_inputs, cr_target, cr_extra = translate(inputs), translate(target), translate(extra_args)
    except Skip as error:
        return {"outcome": "skipped", "reason": str(error)}
    try:
        _seed(seed)
        cr_module = constructor(*constructor_args)
        if eval_mode:
            cr_module.training = False
        state = {key: translate(value) for key, value in torch_module.state_dict().items()}
        cr_module.load_state_dict(state, strict=True)
    except Skip as error:
        return {"outcome": "skipped", "reason": str(error)}
    except Exception as error:  # noqa: BLE001
        return {"outcome": "chainrule_raised", "stage": stage, "error": f"{type(error).__name__}: {error}"}

    stage = "repr"
    if repr(cr_module).replace("chainrule", "torch") != repr(torch_module):
        return {"outcome": "differ", "stage": stage,
                "error": f"repr torch {repr(torch_module)!r}, chainrule {repr(cr_module)!r}"[:400]}
    theirs = _Side(torch, torch_module, inputs, target, extra_args, kind)
    mine = _Side(chainrule, cr_module, cr_inputs, cr_target, cr_extra, kind)
    other = torch.float32 if test.default_dtype == torch.float64 else torch.float64
    stages = [("forward", None), ("backward", None)]
    if test.check_gradgrad:
        stages.append(("gradgrad", None))
    stages.append(("noncontiguous", None))
    if kind == "module" and test.should_test_pickle:
        stages.append(("pickle", None))
    stages.append(("eval", None))
    stages.append((str(other).removeprefix("torch."), other))
    if half:
        stages.append(("float16", torch.float16))
    compared = 0
    for stage, cast_to in stages:
        outcome = _run_stage(stage, cast_to, theirs, mine, test, seed, translate)
        if isinstance(outcome, dict):
            outcome["stage"] = stage
            return outcome
        compared += outcome
    return {"outcome": "same", "compared": compared}


def _pickled(module):
    """``module`` after a chainrule.save / chainrule.load round trip (torch's tests pickle theirs)."""
    import io

    import chainrule

    buffer = io.BytesIO()
    chainrule.save(module, buffer)
    buffer.seek(0)
    return chainrule.load(buffer, weights_only=False)


def _call(side, seed, inputs, grads=None, create_graph=False, second_order=False):
    """One forward (so stateful modules advance once per stage on both sides), then the gradients
    for ``grads``: (grad_outputs, vectors), or a function making them from the output and inputs."""
    _seed(seed)
    output = side.forward(inputs)
    if grads is None:
        return output, None, None, None
    if callable(grads):
        grads = grads(output, inputs)
    first = side.gradients(output, grads[0], inputs, create_graph=create_graph)
    if not second_order:
        return output, first, None, grads
    pairs = [(g, v) for g, v in zip(first, grads[1]) if g is not None and g.requires_grad]
    wrt = side.grad_inputs(inputs) + [p for p in side.parameters() if p.requires_grad]
    if not pairs:
        # a first gradient with no graph (piecewise-linear ops): every second gradient is zero
        return output, first, [None] * len(wrt), grads
    products = [(g * v).sum() for g, v in pairs]
    total = sum(product.real if product.is_complex() else product for product in products)
    second = side.lib.autograd.grad(total, wrt, allow_unused=True)
    return output, first, list(second), grads


def _run_stage(stage, cast_to, theirs, mine, test, seed, translate):
    import torch
    from torch.testing._internal import common_nn

    inputs_theirs, inputs_mine = theirs.inputs, mine.inputs
    if stage == "noncontiguous":
        if any(isinstance(t, torch.Tensor) and t.dim() == 0 for t in inputs_theirs):
            return 0
        noncontiguize = functools.partial(common_nn.ModuleTest.noncontiguize, test)
        inputs_theirs = tuple(noncontiguize(t) if isinstance(t, torch.Tensor) else t for t in inputs_theirs)
        inputs_mine = translate(inputs_theirs)
        if isinstance(theirs.target, torch.Tensor) and theirs.target.dim() > 0:
            # the target too, and it stays so for the later stages
            theirs.target = noncontiguize(theirs.target)
            mine.target = translate(theirs.target)
    if cast_to is not None:
        theirs.module.to(cast_to)
        inputs_theirs, inputs_mine = _cast_floating(inputs_theirs, cast_to, translate)
        # a floating target follows (as torch's test_cuda does); the sides keep their cast targets
        theirs.target, mine.target = _cast_floating(theirs.target, cast_to, translate)
        try:
            mine.module.to(chainrule_dtype(cast_to))
        except Exception as error:  # noqa: BLE001
            return {"outcome": "chainrule_raised", "error": f"{type(error).__name__}: {error}"}
    if stage == "pickle":
        # the round-tripped chainrule module against a deep copy of torch's: the originals stay in step
        try:
            copy = _pickled(mine.module)
        except Exception as error:  # noqa: BLE001
            return {"outcome": "chainrule_raised", "error": f"{type(error).__name__}: {error}"[:400]}
        theirs = _Side(theirs.lib, deepcopy(theirs.module), theirs.inputs, theirs.target, theirs.extra_args,
                       theirs.kind)
        mine = _Side(mine.lib, copy, mine.inputs, mine.target, mine.extra_args, mine.kind)
    if stage == "eval":
        theirs.module.eval()
        mine.module.eval()
    want_grads = stage != "forward"
    second_order = stage == "gradgrad"

    def make_grads(output, inputs):
        wrt = theirs.grad_inputs(inputs) + [p for p in theirs.parameters() if p.requires_grad]
        return _random_like(output, seed + 1), _random_like(wrt, seed + 2)

    try:
        output, first, second, grads_theirs = _call(theirs, seed, inputs_theirs, make_grads if want_grads else None,
                                                    create_graph=second_order, second_order=second_order)
    except Exception as error:  # noqa: BLE001
        theirs_raised = f"{type(error).__name__}: {error}"
        try:  # the stage agrees when chainrule refuses it in the same words (torch's CPU half kernels)
            _call(mine, seed, inputs_mine)
        except Exception as my_error:  # noqa: BLE001
            if f"{type(my_error).__name__}: {my_error}" == theirs_raised:
                return 0
        return {"outcome": "torch_raised", "error": theirs_raised}
    grads_mine = None if grads_theirs is None else translate(grads_theirs)
    try:
        my_output, my_first, my_second, _ = _call(mine, seed, inputs_mine, grads_mine,
                                                  create_graph=second_order, second_order=second_order)
    except Exception as error:  # noqa: BLE001
        return {"outcome": "chainrule_raised", "error": f"{type(error).__name__}: {error}"[:400]}
    compared = 0
    for what, expected, actual in (("output", output, my_output), ("gradient", first, my_first),
                                   ("second gradient", second, my_second)):
        if expected is None and actual is None:
            continue
        difference = compare(expected, actual, what)
        if difference is not None:
            return {"outcome": "differ", "error": difference}
        compared += len(_flatten(expected))
    buffers = _compare_buffers(theirs.module, mine.module)
    return buffers if isinstance(buffers, dict) else compared + buffers


def _compare_buffers(theirs, mine):
    """The modules' buffers (running statistics, batch counts) after a stage: the count compared,
    or the outcome when they differ."""
    their_buffers, my_buffers = dict(theirs.named_buffers()), dict(mine.named_buffers())
    if sorted(their_buffers) != sorted(my_buffers):
        return {"outcome": "differ", "error": f"buffers torch {sorted(their_buffers)}, chainrule {sorted(my_buffers)}"}
    for name, buffer in their_buffers.items():
        difference = compare(buffer, my_buffers[name], f"buffer {name}")
        if difference is not None:
            return {"outcome": "differ", "error": difference}
    return len(their_buffers)


# ------------------------------------------------------------------ the command line
OUTCOMES = ["same", "differ", "chainrule_raised", "torch_raised", "skipped"]


def run(out, name_filter=None, half=False):
    import warnings

    warnings.simplefilter("ignore")
    os.makedirs(out, exist_ok=True)
    records = []
    started = time.perf_counter()
    for name, kind, params, group in collect_cases():
        if name_filter and name_filter.lower() not in name.lower():
            continue
        record = {"name": name, "kind": kind, "group": group}
        case_started = time.process_time()
        try:
            record.update(run_case(name, kind, params, half=half))
        except Exception as error:  # noqa: BLE001 - a case the trial itself cannot drive is reported
            record.update(outcome="skipped", reason=f"trial error {type(error).__name__}: {error}"[:300])
        record["cpu_seconds"] = round(time.process_time() - case_started, 3)
        records.append(record)
    elapsed = time.perf_counter() - started
    counts = collections.Counter(record["outcome"] for record in records)
    with open(os.path.join(out, "common_nn.json"), "w") as handle:
        json.dump({"counts": dict(counts), "seconds": round(elapsed, 1), "cases": records}, handle, indent=1)
    with open(os.path.join(out, "common_nn.md"), "w") as handle:
        handle.write(summary_markdown(records))
    print(f"{len(records)} cases in {elapsed:.0f} s")
    print(" | ".join(f"{outcome} {counts.get(outcome, 0)}" for outcome in OUTCOMES))
    by_group = collections.defaultdict(collections.Counter)
    for record in records:
        if record["outcome"] in ("differ", "chainrule_raised"):
            by_group[record["group"]][record["outcome"]] += 1
    for group, group_counts in sorted(by_group.items(), key=lambda item: -sum(item[1].values())):
        print(f"  {group}: " + ", ".join(f"{k} {v}" for k, v in sorted(group_counts.items())))
    return records


def summary_markdown(records):
    counts = collections.Counter(record["outcome"] for record in records)
    lines = ["# torch common_nn dicts on chainrule", "",
             "| " + " | ".join(OUTCOMES) + " |", "|" + "---|" * len(OUTCOMES),
             "| " + " | ".join(str(counts.get(outcome, 0)) for outcome in OUTCOMES) + " |", ""]
    for record in records:
        if record["outcome"] != "same":
            detail = record.get("error") or record.get("reason", "")
            lines.append(f"- `{record['name']}` {record['outcome']} at {record.get('stage', '-')}: {detail}")
    return "\n".join(lines) + "\n"


LEDGER = os.path.join(ROOT, "tests", "compat", "torch_common_nn_ledger.txt")


def write_ledger(out, budget_seconds):
    """The agreeing cases of a run, cheapest first, up to ``budget_seconds`` of CPU time: the set
    tests/compat/test_torch_common_nn.py keeps agreeing."""
    with open(os.path.join(out, "common_nn.json")) as handle:
        records = json.load(handle)["cases"]
    agreeing = sorted((r for r in records if r["outcome"] == "same"), key=lambda r: (r["cpu_seconds"], r["name"]))
    chosen, spent = [], 0.0
    for record in agreeing:
        if spent + record["cpu_seconds"] > budget_seconds:
            break
        chosen.append(record["name"])
        spent += record["cpu_seconds"]
    order = {record["name"]: index for index, record in enumerate(records)}
    with open(LEDGER, "w") as handle:
        handle.write("# torch common_nn dicts that agree with chainrule (tools/torch_common_nn_trial.py ledger)\n")
        handle.writelines(name + "\n" for name in sorted(chosen, key=order.__getitem__))
    print(f"{len(chosen)} of {len(agreeing)} agreeing cases, {spent:.1f} s of CPU, in {LEDGER}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run every dict on torch and chainrule and compare")
    run_parser.add_argument("--out", required=True)
    run_parser.add_argument("--filter", default=None, help="only cases whose name contains this")
    run_parser.add_argument("--half", action="store_true",
                            help="a float16 stage too (not in torch's CPU tests; accumulation order shows)")
    ledger_parser = commands.add_parser("ledger", help="write the CI ledger from a run's agreeing cases")
    ledger_parser.add_argument("--out", required=True, help="the folder of a finished run")
    ledger_parser.add_argument("--budget", type=float, default=30.0, help="CPU seconds the CI test may spend")
    arguments = parser.parse_args(argv)
    if arguments.command == "run":
        run(arguments.out, arguments.filter, arguments.half)
    else:
        write_ledger(arguments.out, arguments.budget)


if __name__ == "__main__":
    main()
