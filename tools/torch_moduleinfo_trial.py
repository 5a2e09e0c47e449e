"""Drive torch's own ModuleInfo database (``common_modules.module_db``) on torch and on chainrule, and compare.

torch 2.13 describes 114 ``nn`` modules in ``torch.testing._internal.common_modules.module_db``: for
each, a function producing ``ModuleInput``s (constructor arguments and forward arguments) and, for
some, ``ErrorModuleInput``s. This trial calls every inputs function for float32 and float64, training
and eval, builds each module on torch and the same-named class under ``chainrule.nn`` with the same
arguments (tensors converted with their dtype, values, strides and ``requires_grad``), compares the
state_dict's keys, order, shapes and dtypes, copies torch's parameters and buffers in by name, runs
forward with the same seed, compares outputs, then backward with one seeded cotangent per output and
compares parameter and input gradients and the buffers after the step. It also compares ``repr`` of
the constructed modules, round-trips chainrule's ``state_dict`` through torch's
``load_state_dict(strict=True)`` and back, checks that modules whose ``train_and_eval_differ`` is
False give chainrule the same output in both modes, and runs the error inputs (type and regex).
Three checks after torch's test_modules: double backward in float64 (where the ModuleInfo supports
it), non-contiguous copies of the forward inputs, and channels-last inputs and/or modules (values,
and whether each output is channels-last).

    python tools/torch_moduleinfo_trial.py run --out /tmp/moddb               # everything
    python tools/torch_moduleinfo_trial.py run --out /tmp/moddb --filter LSTM  # names containing LSTM
    python tools/torch_moduleinfo_trial.py run --out /tmp/moddb --sample       # the CI test's subset

Each entry ends as ``same``, ``differ`` (with the aspects that differ), ``chainrule_raised`` (torch
ran, chainrule raised; with the stage), ``torch_raised`` or ``skipped`` (with the reason). The run
writes ``results.json`` and ``summary.md`` under ``--out`` and prints the count table.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import functools
import json
import os
import re
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_oracle import time_limit, torch_tensor_to_chainrule  # noqa: E402

SEED_INPUTS, SEED_MODULE, SEED_FORWARD, SEED_COTANGENT = 0, 1, 2, 3
ENTRY_TIME_LIMIT_S = 30
DTYPES = ("float32", "float64")
MODES = ("train", "eval")
# |chainrule - torch| <= atol * max(1, max|torch|) + rtol * |torch|, elementwise
TOLERANCES = {"float32": (1e-4, 1e-5), "float64": (1e-7, 1e-9)}
# float32 tolerances of modules whose float32 rounding exceeds the default, with what was measured
FLOAT32_TOLERANCES = {
    # the alpha-beta recursion over 50 time steps in log space: chainrule's and torch's float32
    # gradients are each up to 4e-5 from the float64 result, so they differ from each other that much
    "nn.CTCLoss": (1e-4, 1e-4),
}


def tolerance_for(module_name: str, dtype_key: str) -> tuple[float, float]:
    if dtype_key == "float32" and module_name in FLOAT32_TOLERANCES:
        return FLOAT32_TOLERANCES[module_name]
    return TOLERANCES[dtype_key]

# Entries left out on purpose, by module name: the reason is reported with each skipped entry.
SKIPPED_MODULES: dict[str, str] = {}

# The one layout chainrule cannot follow (the "empty layout" aspect, still reported as differ, and
# tolerated by the CI test): an empty channels-last tensor. torch keeps its channels-last strides
# through a clone (batch norm's shortcut for an empty batch); NumPy keeps no strides for an empty
# array, so chainrule's stride() reports the contiguous ones and is_contiguous answers for those.
EMPTY_LAYOUT = "empty layout"


# ---------------------------------------------------------------- loading torch's database
def load_module_db():
    """torch, chainrule and torch's module_db."""
    import torch
    from torch.testing._internal.common_modules import module_db

    import chainrule

    return torch, chainrule, module_db


@contextlib.contextmanager
def recording_constructor_arguments(torch_nn):
    """While inputs are made, torch's nn classes record the arguments each instance was built with.

    Some constructor inputs hold torch modules (TransformerEncoder's encoder_layer); building the
    chainrule counterpart needs those arguments. The classes are restored afterwards.
    """
    patched = []
    for name in dir(torch_nn):
        cls = getattr(torch_nn, name)
        if not (isinstance(cls, type) and issubclass(cls, torch_nn.Module)) or "__init__" not in vars(cls):
            continue
        original = vars(cls)["__init__"]

        @functools.wraps(original)
        def recording_init(self, *args, _original=original, _cls=cls, **kwargs):
            _original(self, *args, **kwargs)
            if type(self) is _cls:
                object.__setattr__(self, "_trial_constructor", (args, kwargs))

        patched.append((cls, original))
        cls.__init__ = recording_init
    try:
        yield
    finally:
        for cls, original in patched:
            cls.__init__ = original


# ---------------------------------------------------------------- entries
def sample_indices(count: int, dtype_key: str, mode: str) -> list[int]:
    """The inputs the CI test runs (tests/compat/test_torch_module_db.py) of a ModuleInfo's ``count``:
    float64 train and eval, the first and last; float32 eval, the first."""
    if dtype_key == "float64":
        return sorted({0, count - 1}) if count else []
    return [0] if count and mode == "eval" else []


def entries(torch, chainrule, module_db, name_filter=None, sample=False):
    """Yield (entry id, module_info, dtype name, training, ModuleInput), deterministic; ``sample``
    keeps the CI test's subset (``sample_indices``)."""
    for module_info in module_db:
        if name_filter and name_filter not in module_info.name:
            continue
        for dtype_name in DTYPES:
            dtype = getattr(torch, dtype_name)
            for mode in MODES:
                training = mode == "train"
                torch.manual_seed(SEED_INPUTS)
                if dtype not in module_info.dtypes:
                    if sample:
                        continue
                    yield f"{module_info.name}|{dtype_name}|{mode}|-", module_info, dtype_name, training, None
                    continue
                with recording_constructor_arguments(torch.nn):
                    inputs = module_info.module_inputs_func(
                        module_info, device="cpu", dtype=dtype, requires_grad=True, training=training)
                kept = sample_indices(len(inputs), dtype_name, mode) if sample else range(len(inputs))
                for index in kept:
                    module_input = inputs[index]
                    entry_id = f"{module_info.name}|{dtype_name}|{mode}|{index}"
                    yield entry_id, module_info, dtype_name, training, module_input


def error_entries(torch, module_db, name_filter=None):
    for module_info in module_db:
        if module_info.module_error_inputs_func is None:
            continue
        if name_filter and name_filter not in module_info.name:
            continue
        torch.manual_seed(SEED_INPUTS)
        with recording_constructor_arguments(torch.nn):
            inputs = module_info.module_error_inputs_func(
                module_info, device="cpu", dtype=torch.float32, requires_grad=False, training=True)
        for index, error_input in enumerate(inputs):
            yield f"{module_info.name}|error|{index}", module_info, error_input


# ---------------------------------------------------------------- converting torch objects
class Converter:
    """Turns torch values (tensors with their strides, dtypes, devices, modules, functions) into chainrule's."""

    def __init__(self, torch, chainrule, noncontiguous=False):
        self.torch, self.chainrule = torch, chainrule
        # every tensor of two or more elements becomes a view taking every other element of a larger
        # storage (the same values, other strides): torch's test_non_contiguous_tensors, for chainrule
        self.noncontiguous = noncontiguous
        # torch tensors already converted, by id: an input passed twice (KLDivLoss's scalar entries pass
        # one tensor as input and target) stays one chainrule tensor, so its gradients add up as torch's
        self.converted: dict[int, tuple] = {}

    def forget(self):
        self.converted.clear()

    def tensor(self, value):
        known = self.converted.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        converted = self._new_tensor(value)
        self.converted[id(value)] = (value, converted)
        return converted

    def _new_tensor(self, value):
        chainrule = self.chainrule
        data = value.detach()
        # the whole storage, then the same view over it, so strides and offset survive
        converted = torch_tensor_to_chainrule(data)
        if self.noncontiguous and data.ndim and data.numel() > 1:
            wide = chainrule.zeros(tuple(data.shape[:-1]) + (2 * data.shape[-1],), dtype=converted.dtype)
            wide[..., ::2] = converted
            converted = wide[..., ::2]
        converted = converted.detach()
        if value.requires_grad:
            converted.requires_grad_(True)
        return converted

    def __call__(self, value):
        torch, chainrule = self.torch, self.chainrule
        if isinstance(value, torch.Tensor):
            return self.tensor(value)
        if isinstance(value, torch.dtype):
            return getattr(chainrule, str(value).split(".")[-1])
        if isinstance(value, torch.device):
            return chainrule.device(str(value))
        if isinstance(value, torch.nn.utils.rnn.PackedSequence):
            return chainrule.nn.utils.rnn.PackedSequence(*[self(part) for part in value])
        if isinstance(value, torch.nn.Module):
            return self.module(value)
        if isinstance(value, torch.Size):
            return tuple(value)
        if type(value).__name__ == "LinearCrossEntropyOptions":
            fields = {field.name: self(getattr(value, field.name)) for field in dataclasses.fields(value)}
            return chainrule.nn.LinearCrossEntropyOptions(**fields)
        if isinstance(value, tuple):
            return type(value)(self(item) for item in value) if type(value) is tuple else tuple(map(self, value))
        if isinstance(value, list):
            return [self(item) for item in value]
        if isinstance(value, dict):
            return {key: self(item) for key, item in value.items()}
        if callable(value) and getattr(value, "__module__", "") and value.__module__.startswith("torch"):
            return self.function(value)
        return value

    def function(self, value):
        chainrule = self.chainrule
        name = value.__name__
        for namespace in (chainrule.nn.functional, chainrule):
            if hasattr(namespace, name):
                return getattr(namespace, name)
        raise LookupError(f"no chainrule counterpart of torch function {value.__module__}.{name}")

    def module(self, value):
        """A chainrule module built like ``value`` with ``value``'s parameters and buffers."""
        arguments = getattr(value, "_trial_constructor", None)
        if arguments is None:
            raise LookupError(f"the arguments torch's {type(value).__name__} was built with were not recorded")
        args, kwargs = arguments
        module = getattr(self.chainrule.nn, type(value).__name__)(*self(args), **self(kwargs))
        copy_state(self, value, module)
        module.train(value.training)
        return module


def copy_state(converter, torch_module, chainrule_module):
    """Copy torch's parameters and buffers into chainrule's by name (shapes and dtypes taken from torch)."""
    chainrule = converter.chainrule
    targets = dict(chainrule_module.named_parameters())
    targets.update(dict(chainrule_module.named_buffers()))
    with chainrule.no_grad():
        for name, value in list(torch_module.named_parameters()) + list(torch_module.named_buffers()):
            if value is None or name not in targets or targets[name] is None:
                continue
            target = targets[name]
            source = converter.tensor(value.detach())
            if tuple(target.shape) != tuple(source.shape) or target.dtype != source.dtype:
                raise ValueError(f"{name}: chainrule {tuple(target.shape)} {target.dtype}, "
                                 f"torch {tuple(source.shape)} {source.dtype}")
            target.copy_(source)


# ---------------------------------------------------------------- comparing
def to_numpy(value):
    if hasattr(value, "detach"):
        value = value.detach()
    if hasattr(value, "resolve_conj"):
        value = value.resolve_conj()
    try:
        return np.asarray(value.numpy())
    except RuntimeError:  # torch's efficient zero tensors (double backward) ask for force=True
        return np.asarray(value.numpy(force=True))


def flatten(value, prefix="out"):
    """[(path, leaf)] of a nested output: tensors, numbers, None; tuples/lists/namedtuples/dicts opened."""
    if isinstance(value, (tuple, list)):
        leaves = []
        for index, item in enumerate(value):
            leaves += flatten(item, f"{prefix}[{index}]")
        return leaves
    if isinstance(value, dict):
        leaves = []
        for key in value:
            leaves += flatten(value[key], f"{prefix}[{key!r}]")
        return leaves
    return [(prefix, value)]


def dtype_name(tensor) -> str:
    return str(tensor.dtype).split(".")[-1]


def compare_tensor(path, mine, theirs, tolerance):
    """None when they agree, else a short description of the first difference."""
    if not hasattr(mine, "shape"):
        return f"{path}: chainrule gave {type(mine).__name__}, torch a tensor"
    if tuple(mine.shape) != tuple(theirs.shape):
        return f"{path}: shape {tuple(mine.shape)} vs torch {tuple(theirs.shape)}"
    if dtype_name(mine) != dtype_name(theirs):
        return f"{path}: dtype {dtype_name(mine)} vs torch {dtype_name(theirs)}"
    a, b = to_numpy(mine), to_numpy(theirs)
    if a.dtype.kind not in "fc":
        return None if np.array_equal(a, b) else f"{path}: values differ (exact dtype {a.dtype})"
    rtol, atol = tolerance
    finite = np.isfinite(b)
    scale = max(1.0, float(np.abs(b[finite]).max())) if finite.any() else 1.0
    close = np.isclose(a, b, rtol=rtol, atol=atol * scale, equal_nan=True)
    if close.all():
        return None
    difference = np.abs(a.astype(np.float64) - b.astype(np.float64))
    worst = float(np.nanmax(np.where(close, 0, difference))) if difference.size else 0.0
    return f"{path}: {int((~close).sum())}/{close.size} values differ, largest {worst:.3g} (scale {scale:.3g})"


def compare_structures(mine, theirs, tolerance, torch, prefix="out"):
    mine_leaves, their_leaves = flatten(mine, prefix), flatten(theirs, prefix)
    if [p for p, _ in mine_leaves] != [p for p, _ in their_leaves]:
        return [f"{prefix} structure: {[p for p, _ in mine_leaves]} vs torch {[p for p, _ in their_leaves]}"]
    problems = []
    for (path, a), (_, b) in zip(mine_leaves, their_leaves):
        if isinstance(b, torch.Tensor):
            problem = compare_tensor(path, a, b, tolerance)
        elif b is None or isinstance(b, (bool, int, float, str)):
            problem = None if (a == b or (isinstance(b, float) and b != b and a != a)) else f"{path}: {a!r} vs {b!r}"
        else:
            problem = None
        if problem:
            problems.append(problem)
    return problems


def gradient_targets(module, args, kwargs):
    """[(name, tensor)] to differentiate: parameters by name, then forward inputs requiring grad."""
    targets = [(f"param:{name}", p) for name, p in module.named_parameters() if p.requires_grad]
    for path, leaf in flatten(args, "arg") + flatten(kwargs, "kwarg"):
        if hasattr(leaf, "requires_grad") and leaf.requires_grad:
            targets.append((path, leaf))
    return targets


def differentiable_outputs(output, lib):
    return [leaf for _, leaf in flatten(output)
            if isinstance(leaf, lib.Tensor) and leaf.requires_grad and leaf.is_floating_point()]


# ---------------------------------------------------------------- running one entry
class EntryTimeout(Exception):
    pass


def describe(error) -> str:
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:300]


def build_torch(torch, module_info, module_input, dtype, training):
    args, kwargs = module_input.constructor_input.args, module_input.constructor_input.kwargs
    torch.manual_seed(SEED_MODULE)
    module = module_info.module_cls(*args, **kwargs)
    module.to(dtype)
    module.train(training)
    return module


def run_entry(torch, chainrule, converter, module_info, dtype_key, training, module_input):
    """Compare one ModuleInput; returns {status, aspects, differences, detail, stage}."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _run_entry(torch, chainrule, converter, module_info, dtype_key, training, module_input)


def _run_entry(torch, chainrule, converter, module_info, dtype_key, training, module_input):
    if module_info.name in SKIPPED_MODULES:
        return {"status": "skipped", "detail": SKIPPED_MODULES[module_info.name]}
    if module_input is None:
        return {"status": "skipped", "detail": f"torch's ModuleInfo does not list {dtype_key}"}
    if module_input.forward_input is None:
        return {"status": "skipped", "detail": "the ModuleInput has no forward input"}
    dtype, cr_dtype = getattr(torch, dtype_key), getattr(chainrule, dtype_key)
    converter.forget()
    tolerance = tolerance_for(module_info.name, dtype_key)
    forward_args, forward_kwargs = module_input.forward_input.args, module_input.forward_input.kwargs

    # torch first: a torch failure makes the entry torch_raised whatever chainrule does
    try:
        torch_module = build_torch(torch, module_info, module_input, dtype, training)
        if module_info.is_lazy:
            with torch.no_grad():
                torch_module(*forward_args, **forward_kwargs)
        torch_state_before = {k: v.clone() for k, v in torch_module.state_dict().items()}
        cr_args, cr_kwargs = converter(forward_args), converter(forward_kwargs)
        torch.manual_seed(SEED_FORWARD)
        torch_output = torch_module(*forward_args, **forward_kwargs)
        torch_targets = gradient_targets(torch_module, forward_args, forward_kwargs)
        torch_outputs = differentiable_outputs(torch_output, torch)
        generator = torch.Generator().manual_seed(SEED_COTANGENT)
        cotangents = [torch.randn(o.shape, dtype=o.dtype, generator=generator) for o in torch_outputs]
        torch_grads = None
        gradgrad = dtype_key == "float64" and module_info.supports_gradgrad
        if torch_outputs and torch_targets:
            torch_grads = torch.autograd.grad(torch_outputs, [t for _, t in torch_targets], cotangents,
                                              allow_unused=True, create_graph=gradgrad)
        torch_second = None
        if gradgrad and torch_grads:
            try:
                torch_second = second_gradients(torch, torch_targets, torch_grads)
            except RuntimeError:  # torch has no double backward here: nothing to compare
                torch_second = None
    except EntryTimeout:
        raise
    except Exception as error:  # noqa: BLE001 - torch refusing an entry of its own database is recorded
        return {"status": "torch_raised", "detail": describe(error)}

    aspects, details = [], []

    def differ(aspect, problems):
        if problems:
            aspects.append(aspect)
            details.extend(f"{aspect}: {p}" for p in problems[:3])

    stage = "construct"
    try:
        args = converter(module_input.constructor_input.args)
        kwargs = converter(module_input.constructor_input.kwargs)
        chainrule.manual_seed(SEED_MODULE)
        cr_module = getattr(chainrule.nn, module_info.module_cls.__name__)(*args, **kwargs)
        cr_module.to(cr_dtype)
        cr_module.train(training)
        if module_info.is_lazy:
            stage = "lazy initialisation"
            with chainrule.no_grad():
                cr_module(*converter(forward_args), **converter(forward_kwargs))

        stage = "state_dict"
        mine = [(k, tuple(v.shape), dtype_name(v)) for k, v in cr_module.state_dict().items()]
        theirs = [(k, tuple(v.shape), dtype_name(v)) for k, v in torch_state_before.items()]
        if mine != theirs:
            differ("state_dict", _describe_state_difference(mine, theirs))

        stage = "repr"
        if repr(cr_module) != repr(torch_module):
            differ("repr", [f"{repr(cr_module)!r} vs torch {repr(torch_module)!r}"[:400]])

        stage = "copy state"
        load_into_chainrule(converter, torch_state_before, cr_module)

        stage = "forward"
        chainrule.manual_seed(SEED_FORWARD)
        cr_output = cr_module(*cr_args, **cr_kwargs)
        differ("forward", compare_structures(cr_output, torch_output, tolerance, torch))

        stage = "backward"
        cr_targets = gradient_targets(cr_module, cr_args, cr_kwargs)
        cr_outputs = differentiable_outputs(cr_output, chainrule)
        if [n for n, _ in cr_targets] != [n for n, _ in torch_targets]:
            differ("gradient targets", [f"{[n for n, _ in cr_targets]} vs torch {[n for n, _ in torch_targets]}"])
        elif len(cr_outputs) != len(torch_outputs):
            differ("backward", [f"{len(cr_outputs)} differentiable outputs vs torch {len(torch_outputs)}"])
        elif torch_grads is not None:
            cr_grads = chainrule.autograd.grad(cr_outputs, [t for _, t in cr_targets],
                                               [converter(c) for c in cotangents], allow_unused=True,
                                               create_graph=torch_second is not None)
            differ("backward", compare_gradients(torch_targets, cr_grads, torch_grads, tolerance))
            if torch_second is not None:
                stage = "double backward"
                directions, their_second = torch_second
                my_second = second_gradients(chainrule, cr_targets, cr_grads, directions)[1]
                differ("double backward", compare_gradients(torch_targets, my_second, their_second, tolerance))

        stage = "buffers after forward"
        problems = []
        cr_state = cr_module.state_dict()
        for key, value in torch_module.state_dict().items():
            if key in cr_state:
                problem = compare_tensor(key, cr_state[key], value, tolerance)
                if problem:
                    problems.append(problem)
        differ("buffers", problems)

        # after the buffers are compared: a second training step moves running statistics again
        stage = "non-contiguous inputs"
        differ("non-contiguous", noncontiguous_problems(torch, chainrule, converter, cr_module, forward_args,
                                                        forward_kwargs, torch_output, torch_grads, torch_targets,
                                                        cotangents, tolerance))

        stage = "memory format"
        layout_problems = memory_format_problems(torch, chainrule, converter, module_info, module_input,
                                                 dtype_key, training, torch_state_before, tolerance)
        differ("memory format", [p for p in layout_problems if not p.startswith(EMPTY_LAYOUT)])
        differ(EMPTY_LAYOUT, [p.removeprefix(EMPTY_LAYOUT + ": ") for p in layout_problems if p.startswith(EMPTY_LAYOUT)])

        if not module_info.train_and_eval_differ and not training:
            stage = "train_and_eval_differ"
            cr_module.train(True)
            chainrule.manual_seed(SEED_FORWARD)
            trained_output = cr_module(*cr_args, **cr_kwargs)
            cr_module.train(False)
            differ("train_and_eval_differ", compare_structures(trained_output, torch_output, tolerance, torch))

        stage = "state_dict round trip"
        differ("round trip", round_trip(torch, chainrule, converter, cr_module, torch_module, tolerance))
    except EntryTimeout:
        raise
    except Exception as error:  # noqa: BLE001 - the trial records what chainrule raised
        result = {"status": "chainrule_raised", "stage": stage, "detail": describe(error)}
        if aspects:
            result["aspects"], result["differences"] = aspects, details
        return result
    if aspects:
        return {"status": "differ", "aspects": aspects, "differences": details}
    return {"status": "same"}


def compare_gradients(targets, mine, theirs, tolerance):
    """Problems of two gradient lists, by target name; None and all-zero count as the same."""
    problems = []
    for (name, _), mine_grad, their_grad in zip(targets, mine, theirs):
        if their_grad is None or mine_grad is None:
            other = mine_grad if their_grad is None else their_grad
            if other is not None and bool((to_numpy(other) != 0).any()):
                problems.append(f"{name}: gradient None on one side only")
            continue
        problem = compare_tensor(name, mine_grad, their_grad, tolerance)
        if problem:
            problems.append(problem)
    return problems


def second_gradients(lib, targets, grads, directions=None):
    """(directions, d<v, grads>/d targets): one seeded direction v_i (a NumPy array, by index) for each
    first gradient; those that are not differentiable on this side contribute nothing (torch records
    some constant first gradients, such as leaky_relu's, as differentiable, chainrule does not)."""
    if directions is None:
        generator = np.random.default_rng(SEED_COTANGENT + 1)
        directions = {i: generator.standard_normal(tuple(g.shape)) for i, g in enumerate(grads)
                      if g is not None and g.requires_grad}
        if not directions:
            return None
    used = [i for i in directions if grads[i] is not None and grads[i].requires_grad]
    if not used:
        return directions, [None] * len(targets)
    second = lib.autograd.grad([grads[i] for i in used], [t for _, t in targets],
                               [lib.tensor(directions[i], dtype=grads[i].dtype) for i in used], allow_unused=True)
    return directions, second


def noncontiguous_problems(torch, chainrule, converter, cr_module, forward_args, forward_kwargs, torch_output,
                           torch_grads, torch_targets, cotangents, tolerance):
    """chainrule's forward and input gradients on non-contiguous copies of the inputs, against torch's."""
    strided = Converter(torch, chainrule, noncontiguous=True)
    args, kwargs = strided(forward_args), strided(forward_kwargs)
    if not any(hasattr(t, "is_contiguous") and not t.is_contiguous() for _, t in flatten((args, kwargs))):
        return []
    chainrule.manual_seed(SEED_FORWARD)
    output = cr_module(*args, **kwargs)
    problems = compare_structures(output, torch_output, tolerance, torch)
    inputs = [(path, t) for path, t in flatten(args, "arg") + flatten(kwargs, "kwarg")
              if hasattr(t, "requires_grad") and t.requires_grad]
    outputs = differentiable_outputs(output, chainrule)
    if problems or not inputs or not outputs or torch_grads is None or len(outputs) != len(cotangents):
        return problems
    grads = chainrule.autograd.grad(outputs, [t for _, t in inputs], [strided(c) for c in cotangents],
                                    allow_unused=True)
    theirs = dict(zip([name for name, _ in torch_targets], torch_grads))
    return compare_gradients(inputs, grads, [theirs.get(name) for name, _ in inputs], tolerance)


def memory_format_problems(torch, chainrule, converter, module_info, module_input, dtype_key, training,
                           torch_state, tolerance):
    """torch's test_memory_format: 4-d and 5-d inputs and/or the module in channels_last(_3d); chainrule's
    outputs must have torch's values and be channels-last exactly where torch's are."""
    args, kwargs = module_input.forward_input.args, module_input.forward_input.kwargs
    ranks = {t.ndim for _, t in flatten((args, kwargs)) if isinstance(t, torch.Tensor) and t.is_floating_point()}
    if module_info.is_lazy or not ranks & {4, 5}:
        return []
    rank = 4 if 4 in ranks else 5
    formats = {lib: lib.channels_last if rank == 4 else lib.channels_last_3d for lib in (torch, chainrule)}

    def to_format(value):
        if isinstance(value, torch.Tensor) and value.ndim == rank:
            return value.detach().to(memory_format=formats[torch]).requires_grad_(value.requires_grad)
        return value

    problems = []
    for inputs_in_format, module_in_format in ((True, False), (False, True), (True, True)):
        label = f"inputs {'channels-last' if inputs_in_format else 'contiguous'}, module " \
                f"{'channels-last' if module_in_format else 'contiguous'}"
        torch_args = [to_format(a) for a in args] if inputs_in_format else list(args)
        torch_kwargs = {k: to_format(v) for k, v in kwargs.items()} if inputs_in_format else dict(kwargs)
        try:
            theirs = build_torch(torch, module_info, module_input, getattr(torch, dtype_key), training)
            theirs.load_state_dict(torch_state)
            if module_in_format:
                theirs.to(memory_format=formats[torch])
            torch.manual_seed(SEED_FORWARD)
            their_output = theirs(*torch_args, **torch_kwargs)
        except Exception:  # noqa: BLE001 - torch refusing the layout leaves nothing to compare
            continue
        converter.forget()
        mine = getattr(chainrule.nn, module_info.module_cls.__name__)(*converter(module_input.constructor_input.args),
                                                                     **converter(module_input.constructor_input.kwargs))
        mine.to(getattr(chainrule, dtype_key))
        mine.train(training)
        load_into_chainrule(converter, torch_state, mine)
        if module_in_format:
            mine.to(memory_format=formats[chainrule])
        chainrule.manual_seed(SEED_FORWARD)
        my_output = mine(*converter(torch_args), **converter(torch_kwargs))
        problems += [f"{label}: {p}" for p in compare_structures(my_output, their_output, tolerance, torch)]
        for (path, a), (_, b) in zip(flatten(my_output), flatten(their_output)):
            if isinstance(b, torch.Tensor) and b.ndim == rank and hasattr(a, "is_contiguous"):
                expected = b.is_contiguous(memory_format=formats[torch])
                if a.is_contiguous(memory_format=formats[chainrule]) != expected:
                    where = "torch's, not chainrule's" if expected else "chainrule's, not torch's"
                    problems.append(f"{EMPTY_LAYOUT + ': ' if b.numel() == 0 else ''}{label}: {path} channels-last "
                                    f"in {where} (strides {tuple(a.stride())}, torch {tuple(b.stride())})")
    return problems


def _describe_state_difference(mine, theirs):
    mine_keys, their_keys = [k for k, *_ in mine], [k for k, *_ in theirs]
    problems = []
    if set(mine_keys) != set(their_keys):
        problems.append(f"keys only in chainrule {sorted(set(mine_keys) - set(their_keys))}, "
                        f"only in torch {sorted(set(their_keys) - set(mine_keys))}")
    elif mine_keys != their_keys:
        problems.append(f"key order {mine_keys} vs torch {their_keys}")
    theirs_by_key = {k: rest for k, *rest in theirs}
    for key, *rest in mine:
        if key in theirs_by_key and rest != theirs_by_key[key]:
            problems.append(f"{key}: {rest} vs torch {theirs_by_key[key]}")
    return problems


def load_into_chainrule(converter, torch_state, cr_module):
    """Copy a torch state_dict's values into chainrule's tensors by name (keys torch lacks are left)."""
    chainrule = converter.chainrule
    targets = cr_module.state_dict(keep_vars=True)
    with chainrule.no_grad():
        for key, value in torch_state.items():
            if key in targets and targets[key] is not None:
                source = converter.tensor(value)
                if tuple(targets[key].shape) != tuple(source.shape):
                    raise ValueError(f"{key}: chainrule shape {tuple(targets[key].shape)}, torch {tuple(source.shape)}")
                targets[key].copy_(source)


def round_trip(torch, chainrule, converter, cr_module, torch_module, tolerance):
    """chainrule's state_dict loads into torch's module (strict) and torch's back into chainrule's."""
    mine = {k: torch.from_numpy(to_numpy(v).copy()) for k, v in cr_module.state_dict().items()}
    try:
        torch_module.load_state_dict(mine, strict=True)
    except Exception as error:  # noqa: BLE001 - torch refusing chainrule's state_dict is the finding
        return [f"torch's load_state_dict(strict=True) refused chainrule's: {describe(error)}"]
    theirs = {k: converter.tensor(v) for k, v in torch_module.state_dict().items()}
    cr_module.load_state_dict(theirs, strict=True)
    problems = []
    for key, value in cr_module.state_dict().items():
        problem = compare_tensor(key, value, mine[key], tolerance)
        if problem:
            problems.append(problem)
    return problems


def run_error_entry(torch, chainrule, converter, module_info, error_input):
    """Build and run one ErrorModuleInput on chainrule: the error's stage, type and message against torch's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _run_error_entry(torch, chainrule, converter, module_info, error_input)


def _run_error_entry(torch, chainrule, converter, module_info, error_input):
    from torch.testing._internal.common_modules import ModuleErrorEnum

    module_input = error_input.module_error_input
    at_forward = error_input.error_on == ModuleErrorEnum.FORWARD_ERROR
    expected = f"{error_input.error_type.__name__} matching {error_input.error_regex!r}"
    converter.forget()
    try:
        args = converter(module_input.constructor_input.args)
        kwargs = converter(module_input.constructor_input.kwargs)
        forward = module_input.forward_input
        stage = "construction"
        module = getattr(chainrule.nn, module_info.module_cls.__name__)(*args, **kwargs)
        if at_forward:
            stage = "forward"
            module(*converter(forward.args), **converter(forward.kwargs))
    except EntryTimeout:
        raise
    except Exception as error:  # noqa: BLE001 - the error itself is compared
        wanted_stage = "forward" if at_forward else "construction"
        problems = []
        if stage != wanted_stage:
            problems.append(f"raised at {stage}, torch at {wanted_stage}")
        if not isinstance(error, error_input.error_type):
            problems.append(f"type {type(error).__name__}, torch {error_input.error_type.__name__}")
        if not re.search(error_input.error_regex, str(error)):
            problems.append(f"message {str(error)[:200]!r} does not match {error_input.error_regex!r}")
        if problems:
            return {"status": "differ", "aspects": ["error"], "differences": problems}
        return {"status": "same"}
    return {"status": "differ", "aspects": ["error"],
            "differences": [f"chainrule raised nothing; torch raises {expected}"]}


# ---------------------------------------------------------------- the command
def run(out, name_filter=None, verbose=False, sample=False):
    torch, chainrule, module_db = load_module_db()
    converter = Converter(torch, chainrule)
    torch.set_num_threads(1)
    results = []
    started = time.perf_counter()

    def record(entry_id, module_name, call, *arguments):
        begun = time.perf_counter()
        try:
            with time_limit(ENTRY_TIME_LIMIT_S, EntryTimeout):
                result = call(torch, chainrule, converter, *arguments)
        except EntryTimeout as error:
            result = {"status": "chainrule_raised", "stage": "time limit", "detail": str(error)}
        result = {"id": entry_id, "module": module_name, **result,
                  "seconds": round(time.perf_counter() - begun, 3)}
        results.append(result)
        if verbose and result["status"] != "same":
            print(entry_id, result["status"], result.get("detail", ""), result.get("differences", ""))

    for entry_id, module_info, dtype_key, training, module_input in entries(torch, chainrule, module_db,
                                                                             name_filter, sample):
        desc = getattr(module_input, "desc", "")
        record(entry_id + (f" {desc}" if desc else ""), module_info.name, run_entry, module_info, dtype_key, training,
               module_input)
    for entry_id, module_info, error_input in error_entries(torch, module_db, name_filter):
        record(entry_id, module_info.name, run_error_entry, module_info, error_input)

    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as handle:
        json.dump({"seconds": round(time.perf_counter() - started, 1), "entries": results}, handle, indent=1)
    table = summarise(results)
    with open(os.path.join(out, "summary.md"), "w") as handle:
        handle.write(table)
    print(table)
    print(f"{len(results)} entries in {time.perf_counter() - started:.0f} s; results in {out}/results.json")
    return results


def summarise(results) -> str:
    statuses = ("same", "differ", "chainrule_raised", "torch_raised", "skipped")
    totals = collections.Counter(r["status"] for r in results)
    aspects = collections.Counter(a for r in results for a in r.get("aspects", ()))
    stages = collections.Counter(r.get("stage") for r in results if r["status"] == "chainrule_raised")
    per_module = collections.defaultdict(collections.Counter)
    for r in results:
        per_module[r["module"]][r["status"]] += 1
    lines = ["| entries | " + " | ".join(statuses) + " |", "|---" * (len(statuses) + 1) + "|",
             f"| {len(results)} | " + " | ".join(str(totals[s]) for s in statuses) + " |", "",
             "Aspects that differ (entries): " + ", ".join(f"{a} {n}" for a, n in aspects.most_common()),
             "chainrule raised at: " + ", ".join(f"{s} {n}" for s, n in stages.most_common()), "",
             "| module | " + " | ".join(statuses) + " |", "|---" * (len(statuses) + 1) + "|"]
    failing = sorted(per_module.items(), key=lambda item: -(item[1]["differ"] + item[1]["chainrule_raised"]))
    for module_name, counts in failing:
        lines.append(f"| {module_name} | " + " | ".join(str(counts[s]) for s in statuses) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run module_db on torch and chainrule and compare")
    run_parser.add_argument("--out", required=True)
    run_parser.add_argument("--filter", help="only ModuleInfos whose name contains this")
    run_parser.add_argument("--verbose", action="store_true", help="print each entry that is not the same")
    run_parser.add_argument("--sample", action="store_true", help="only the CI test's subset (sample_indices)")
    options = parser.parse_args(argv)
    run(options.out, options.filter, options.verbose, options.sample)


if __name__ == "__main__":
    sys.exit(main())
