"""Throw hostile argument values at torch's public API and chainrule's, and compare what each raises.

A careless user or a fuzzer passes None where a tensor goes, a string for a dim, 2**63 for a size,
NaN for a length, a bool tensor to a float op, a 'meta' tensor, a ragged list. torch answers with one
of its exception types (RuntimeError, TypeError, ValueError, IndexError, NotImplementedError);
chainrule must answer with the same type, and never leak an internal error of its own or NumPy's.

Base calls, each valid as written:

* ``op_db``: the first float32 sample of every OpInfo in torch's ``op_db`` (the function and, where the
  OpInfo has one, the in-place variant), built from the installed torch 2.13;
* ``CALLS`` below: factories and ``tensor``/``as_tensor``/``from_numpy``, Tensor methods, ``nn`` module
  constructors and forwards, optimizer constructors (with a step), ``utils.data`` utilities.

One argument at a time (the input, each positional, each keyword) is replaced by a value from
``MENU`` (the entries that fit its type: int-like hostiles only where an int or size was given,
tensor hostiles only where a tensor was), and the call is run on torch and on chainrule, seeded
alike, each under a time limit and a cap on the address space. Kinds per case:

    both_ok             both returned; shapes, dtypes and values agree
    values_differ       both returned, and something differs (recorded, not this trial's subject)
    same                both raised, chainrule's exception is an instance of torch's builtin class
    class_differs       both raised, another builtin class
    torch_leaks         torch raised an internal error (its Python code reading ``.size`` off a str:
                        AttributeError), chainrule one of torch's user-facing classes: torch is the
                        unreasonable one, chainrule keeps its error
    torch_only_raised   torch refused and chainrule computed something
    chainrule_only_raised
    leak                chainrule raised an internal error torch did not (AttributeError, KeyError,
                        NameError, UnboundLocalError, AssertionError, ZeroDivisionError,
                        RecursionError, MemoryError, an exception class of NumPy's) or hung
    mutated             an in-place call raised on chainrule and its destination changed anyway
                        (values, shape or ``_version``)
    skipped             not comparable (torch hung, a value chainrule cannot hold), with the reason

    python tools/torch_hostile_args_trial.py run --out /tmp/hostile              # everything
    python tools/torch_hostile_args_trial.py run --out /tmp/hostile --source calls --filter Linear
    python tools/torch_hostile_args_trial.py show --out /tmp/hostile --kind leak

``run`` writes ``cases.json`` and prints counts per kind and the biggest groups (kind, exception
classes, base call).
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import re
import resource
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_oracle import NotComparable, time_limit  # noqa: E402

SECONDS_PER_CALL = 3
# headroom above what the process holds once torch and chainrule are imported: a hostile size that
# asks for gigabytes fails quickly (torch: RuntimeError, NumPy: MemoryError) instead of swapping
ADDRESS_SPACE_HEADROOM = 3 << 30

KINDS = ("both_ok", "values_differ", "same", "class_differs", "torch_leaks", "torch_only_raised",
         "chainrule_only_raised", "leak", "mutated", "skipped")

INTERNAL_ERRORS = (AttributeError, KeyError, NameError, UnboundLocalError, AssertionError, ZeroDivisionError,
                   RecursionError, MemoryError)

# names whose results are random or uninitialised: only shapes and dtypes are compared
UNCOMPARED_VALUES = re.compile(r"empty|rand|normal|bernoulli|multinomial|dropout|uniform|exponential|cauchy|"
                               r"geometric|log_normal|poisson|random|SGD|Adam|RMSprop|Adagrad|Linear|Conv|LSTM|GRU|"
                               r"Embedding|MultiheadAttention|random_split|shuffle")


class CallTimeout(Exception):
    pass


# ----------------------------------------------------------------------------------------------
# the hostile menu
# ----------------------------------------------------------------------------------------------

def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_int_like(value) -> bool:
    """An int, or a non-empty tuple/list of ints (a size or a list of dims)."""
    if _is_int(value):
        return True
    return isinstance(value, (tuple, list)) and len(value) > 0 and all(_is_int(item) for item in value)


def _is_number(value) -> bool:
    return _is_int_like(value) or (isinstance(value, float))


def _is_tensor(value) -> bool:
    import torch

    return isinstance(value, torch.Tensor)


def _anything(value) -> bool:
    return True


def _first(value, replace):
    """``value`` with its (first) int replaced: ints directly, sizes and dim lists at their first entry."""
    if isinstance(value, (tuple, list)):
        return type(value)([replace(value[0]), *value[1:]])
    return replace(value)


def _ndim(context) -> int:
    return context.dim() if _is_tensor(context) else 1


def _tensor_like(original, make):
    import torch

    with torch.no_grad():
        return make(original.detach())


def _mismatched(t):
    import torch

    shape = list(t.shape) or [1]
    shape[-1] += 1
    return torch.randn(shape).to(t.dtype) if t.dtype.is_floating_point else torch.ones(shape, dtype=t.dtype)


def _non_contiguous(t):
    import torch

    wide = torch.zeros((*t.shape, 2), dtype=t.dtype)
    wide[..., 0] = t
    return wide[..., 0]


def _zero_size(t):
    import torch

    return torch.zeros((0, *t.shape[1:]), dtype=t.dtype)


def menu():
    """``[(name, fits(original), make(original, context))]``: ``context`` is the call's first tensor."""
    import torch

    return [
        ("None", _anything, lambda o, c: None),
        ("str", _anything, lambda o, c: "hostile"),
        ("dict", _anything, lambda o, c: {"a": 1}),
        ("list_of_str", _anything, lambda o, c: ["a", "b"]),
        ("ragged_list", _anything, lambda o, c: [[1.0, 2.0], [3.0]]),
        ("bool", _anything, lambda o, c: True),
        ("float_for_int", _is_int_like, lambda o, c: _first(o, lambda i: i + 0.5)),
        ("minus_one", _is_int_like, lambda o, c: _first(o, lambda i: -1)),
        ("2**31", _is_int_like, lambda o, c: _first(o, lambda i: 2**31)),
        ("2**63", _is_int_like, lambda o, c: _first(o, lambda i: 2**63)),
        ("-2**63-1", _is_int_like, lambda o, c: _first(o, lambda i: -2**63 - 1)),
        ("nan", _is_number, lambda o, c: _first(o, lambda i: math.nan)),
        ("inf", _is_number, lambda o, c: _first(o, lambda i: math.inf)),
        ("dim_out_of_range", _is_int_like, lambda o, c: _first(o, lambda i: _ndim(c) + 1)),
        ("negative_size", _is_int_like, lambda o, c: _first(o, lambda i: -3)),
        ("bool_tensor", _is_tensor, lambda o, c: _tensor_like(o, lambda t: t.to(torch.bool))),
        ("int64_tensor", _is_tensor, lambda o, c: _tensor_like(o, lambda t: t.to(torch.int64))),
        ("complex64_tensor", _is_tensor, lambda o, c: _tensor_like(o, lambda t: t.to(torch.complex64))),
        ("float64_tensor", _is_tensor, lambda o, c: _tensor_like(o, lambda t: t.to(torch.float64))),
        ("meta_tensor", _is_tensor, lambda o, c: _tensor_like(o, lambda t: t.to("meta"))),
        ("zero_dim_tensor", _is_tensor, lambda o, c: torch.tensor(0.5).to(o.dtype)),
        ("zero_size_tensor", _is_tensor, lambda o, c: _tensor_like(o, _zero_size)),
        ("mismatched_shape", _is_tensor, lambda o, c: _tensor_like(o, _mismatched)),
        ("non_contiguous", _is_tensor, lambda o, c: _tensor_like(o, _non_contiguous)),
        ("tuple_for_tensor", _is_tensor, lambda o, c: (1.0, 2.0)),
    ]


MENU_NAMES = ("None", "str", "dict", "list_of_str", "ragged_list", "bool", "float_for_int", "minus_one", "2**31",
              "2**63", "-2**63-1", "nan", "inf", "dim_out_of_range", "negative_size", "bool_tensor", "int64_tensor",
              "complex64_tensor", "float64_tensor", "meta_tensor", "zero_dim_tensor", "zero_size_tensor",
              "mismatched_shape", "non_contiguous", "tuple_for_tensor")


# ----------------------------------------------------------------------------------------------
# base calls written here (op_db's come from torch)
# ----------------------------------------------------------------------------------------------

class Base:
    """One valid call: ``function(lib)`` gives the callable on ``torch`` or ``chainrule``; ``build(torch)``
    the torch-side ``(args, kwargs)``, converted for chainrule; ``inplace``: the call writes its first
    argument (checked for mutation when it raises)."""

    def __init__(self, name, function, build, inplace=False, source="calls", module=None):
        self.name, self.function, self.build, self.inplace = name, function, build, inplace
        self.source, self.module = source, module


def _data(torch):
    torch.manual_seed(0)
    return torch.randn(4, 3), torch.arange(4)


def _params(torch):
    torch.manual_seed(0)
    weight = torch.randn(3, 2, requires_grad=True)
    weight.grad = torch.randn(3, 2)
    return [weight]


def _stepped(optimizer):
    """A constructor followed by one step: the parameters it updated."""
    def call(params, *args, **kwargs):
        params = list(params)
        optimizer(params, *args, **kwargs).step()
        return [p.detach() for p in params]
    return call


def _listed(loader):
    return lambda *args, **kwargs: list(loader(*args, **kwargs))


def _attr(path):
    def resolve(lib):
        value = lib
        for part in path.split("."):
            value = getattr(value, part)
        return value
    return resolve


def _method(name):
    return lambda lib: getattr(lib.Tensor, name)


def hand_written_calls():
    import numpy as np

    def x23(torch):
        torch.manual_seed(0)
        return torch.randn(2, 3)

    calls = [
        Base("tensor", _attr("tensor"), lambda t: ([[1.0, 2.0], [3.0, 4.0]], {"dtype": t.float32})),
        Base("as_tensor", _attr("as_tensor"), lambda t: ([1.0, 2.0, 3.0], {"dtype": t.float32})),
        Base("from_numpy", _attr("from_numpy"), lambda t: ([np.ones((2, 3), np.float32)], {})),
        Base("zeros", _attr("zeros"), lambda t: ([2, 3], {"dtype": t.float32})),
        Base("ones", _attr("ones"), lambda t: ([(2, 3)], {})),
        Base("full", _attr("full"), lambda t: ([(2, 3), 1.5], {})),
        Base("empty", _attr("empty"), lambda t: ([(2, 3)], {})),
        Base("arange", _attr("arange"), lambda t: ([0, 6, 2], {})),
        Base("linspace", _attr("linspace"), lambda t: ([0.0, 1.0, 5], {})),
        Base("eye", _attr("eye"), lambda t: ([3, 2], {})),
        Base("randn", _attr("randn"), lambda t: ([2, 3], {})),
        Base("randint", _attr("randint"), lambda t: ([0, 5, (2, 3)], {})),
        Base("randperm", _attr("randperm"), lambda t: ([5], {})),
        Base("Tensor.view", _method("view"), lambda t: ([x23(t), 3, 2], {})),
        Base("Tensor.reshape", _method("reshape"), lambda t: ([x23(t), (3, 2)], {})),
        Base("Tensor.permute", _method("permute"), lambda t: ([x23(t), (1, 0)], {})),
        Base("Tensor.transpose", _method("transpose"), lambda t: ([x23(t), 0, 1], {})),
        Base("Tensor.sum", _method("sum"), lambda t: ([x23(t)], {"dim": 1, "keepdim": True})),
        Base("Tensor.unsqueeze", _method("unsqueeze"), lambda t: ([x23(t), 1], {})),
        Base("Tensor.expand", _method("expand"), lambda t: ([x23(t)[:1], 4, 3], {})),
        Base("Tensor.repeat", _method("repeat"), lambda t: ([x23(t), 2, 1], {})),
        Base("Tensor.narrow", _method("narrow"), lambda t: ([x23(t), 1, 0, 2], {})),
        Base("Tensor.select", _method("select"), lambda t: ([x23(t), 0, 1], {})),
        Base("Tensor.index_select", _method("index_select"), lambda t: ([x23(t), 1, t.tensor([0, 2])], {})),
        Base("Tensor.to", _method("to"), lambda t: ([x23(t), t.float64], {})),
        Base("Tensor.new_zeros", _method("new_zeros"), lambda t: ([x23(t), (2, 2)], {})),
        Base("Tensor.fill_", _method("fill_"), lambda t: ([x23(t), 2.0], {}), inplace=True),
        Base("Tensor.add_", _method("add_"), lambda t: ([x23(t), x23(t)], {"alpha": 2}), inplace=True),
        Base("Tensor.copy_", _method("copy_"), lambda t: ([x23(t), x23(t)[:1]], {}), inplace=True),
        Base("Tensor.masked_fill_", _method("masked_fill_"),
             lambda t: ([x23(t), x23(t) > 0, 0.0], {}), inplace=True),
        Base("Tensor.clamp_", _method("clamp_"), lambda t: ([x23(t)], {"min": -0.5, "max": 0.5}), inplace=True),
        Base("Tensor.index_fill_", _method("index_fill_"),
             lambda t: ([x23(t), 1, t.tensor([0, 2]), -1.0], {}), inplace=True),
        Base("Tensor.scatter_", _method("scatter_"),
             lambda t: ([x23(t), 1, t.tensor([[0, 1], [2, 0]]), x23(t)], {}), inplace=True),
        Base("Tensor.index_put_", _method("index_put_"),
             lambda t: ([x23(t), (t.tensor([0, 1]),), t.tensor(9.0)], {}), inplace=True),
        Base("Tensor.uniform_", _method("uniform_"), lambda t: ([x23(t), -1.0, 1.0], {}), inplace=True),
        Base("Tensor.requires_grad_", _method("requires_grad_"), lambda t: ([x23(t), True], {})),
        Base("Tensor.resize_", _method("resize_"), lambda t: ([x23(t), (3, 2)], {}), inplace=True),
        Base("nn.Linear", _attr("nn.Linear"), lambda t: ([3, 4], {"bias": True})),
        Base("nn.Conv2d", _attr("nn.Conv2d"), lambda t: ([2, 4, 3], {"stride": 1, "padding": 1, "groups": 2})),
        Base("nn.BatchNorm1d", _attr("nn.BatchNorm1d"), lambda t: ([3], {"eps": 1e-5, "momentum": 0.1})),
        Base("nn.LayerNorm", _attr("nn.LayerNorm"), lambda t: ([4], {"eps": 1e-5})),
        Base("nn.Embedding", _attr("nn.Embedding"), lambda t: ([5, 3], {"padding_idx": 0})),
        Base("nn.LSTM", _attr("nn.LSTM"), lambda t: ([3, 4], {"num_layers": 1, "dropout": 0.0})),
        Base("nn.GRU", _attr("nn.GRU"), lambda t: ([3, 4], {"num_layers": 2})),
        Base("nn.Dropout", _attr("nn.Dropout"), lambda t: ([], {"p": 0.5})),
        Base("nn.MaxPool2d", _attr("nn.MaxPool2d"), lambda t: ([2], {"stride": 2, "padding": 0})),
        Base("nn.AvgPool2d", _attr("nn.AvgPool2d"), lambda t: ([2], {"stride": 2})),
        Base("nn.Flatten", _attr("nn.Flatten"), lambda t: ([1, -1], {})),
        Base("nn.Softmax", _attr("nn.Softmax"), lambda t: ([], {"dim": 1})),
        Base("nn.MultiheadAttention", _attr("nn.MultiheadAttention"), lambda t: ([4, 2], {"dropout": 0.0})),
        Base("nn.GroupNorm", _attr("nn.GroupNorm"), lambda t: ([2, 4], {})),
        Base("nn.Upsample", _attr("nn.Upsample"), lambda t: ([], {"scale_factor": 2, "mode": "nearest"})),
        Base("nn.PixelShuffle", _attr("nn.PixelShuffle"), lambda t: ([2], {})),
        Base("nn.Unflatten", _attr("nn.Unflatten"), lambda t: ([1, (2, 2)], {})),
        Base("nn.Linear.forward", None, lambda t: ([t.randn(2, 3)], {}), module=lambda nn: nn.Linear(3, 4)),
        Base("nn.Conv2d.forward", None, lambda t: ([t.randn(1, 2, 5, 5)], {}),
             module=lambda nn: nn.Conv2d(2, 4, 3)),
        Base("nn.LSTM.forward", None, lambda t: ([t.randn(2, 5, 3)], {}), module=lambda nn: nn.LSTM(3, 4)),
        Base("nn.Embedding.forward", None, lambda t: ([t.tensor([[0, 2], [4, 1]])], {}),
             module=lambda nn: nn.Embedding(5, 3)),
        Base("nn.BatchNorm1d.forward", None, lambda t: ([t.randn(4, 3)], {}), module=lambda nn: nn.BatchNorm1d(3)),
        Base("nn.LayerNorm.forward", None, lambda t: ([t.randn(2, 4)], {}), module=lambda nn: nn.LayerNorm(4)),
        Base("nn.MultiheadAttention.forward", None,
             lambda t: ([t.randn(2, 3, 4), t.randn(2, 3, 4), t.randn(2, 3, 4)], {"need_weights": True}),
             module=lambda nn: nn.MultiheadAttention(4, 2)),
        Base("nn.CrossEntropyLoss.forward", None, lambda t: ([t.randn(4, 3), t.tensor([0, 2, 1, 0])], {}),
             module=lambda nn: nn.CrossEntropyLoss()),
        Base("optim.SGD", lambda lib: _stepped(lib.optim.SGD),
             lambda t: ([_params(t)], {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01})),
        Base("optim.Adam", lambda lib: _stepped(lib.optim.Adam),
             lambda t: ([_params(t)], {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8})),
        Base("optim.AdamW", lambda lib: _stepped(lib.optim.AdamW), lambda t: ([_params(t)], {"weight_decay": 0.1})),
        Base("optim.RMSprop", lambda lib: _stepped(lib.optim.RMSprop),
             lambda t: ([_params(t)], {"lr": 0.01, "alpha": 0.99})),
        Base("optim.Adagrad", lambda lib: _stepped(lib.optim.Adagrad),
             lambda t: ([_params(t)], {"lr": 0.01, "lr_decay": 0.0})),
        Base("utils.data.TensorDataset", _attr("utils.data.TensorDataset"), lambda t: ([*_data(t)], {})),
        Base("utils.data.DataLoader", lambda lib: _listed(lib.utils.data.DataLoader),
             lambda t: ([t.utils.data.TensorDataset(*_data(t))], {"batch_size": 2, "shuffle": False,
                                                                   "drop_last": False})),
        Base("utils.data.random_split", _attr("utils.data.random_split"),
             lambda t: ([t.utils.data.TensorDataset(*_data(t)), [3, 1]], {})),
        Base("utils.data.Subset", lambda lib: lambda *a, **k: list(lib.utils.data.Subset(*a, **k)),
             lambda t: ([t.utils.data.TensorDataset(*_data(t)), [0, 2]], {})),
    ]
    return calls


# ----------------------------------------------------------------------------------------------
# converting and running
# ----------------------------------------------------------------------------------------------

def _to_chainrule(value, storages):
    """torch_value_to_chainrule, also for torch's datasets (rebuilt on chainrule's tensors)."""
    import torch
    from torch_opinfo_errors_trial import torch_value_to_chainrule

    import chainrule

    if isinstance(value, torch.utils.data.TensorDataset):
        return chainrule.utils.data.TensorDataset(*[_to_chainrule(t, storages) for t in value.tensors])
    if isinstance(value, (list, tuple)):
        converted = [_to_chainrule(item, storages) for item in value]
        return converted if isinstance(value, list) else tuple(converted)
    converted = torch_value_to_chainrule(value, storages)
    if isinstance(value, torch.Tensor) and value.grad is not None:
        converted.grad = torch_value_to_chainrule(value.grad, storages)
    return converted


def _positions(args, kwargs):
    return [("args", index) for index in range(len(args))] + [("kwargs", key) for key in kwargs]


def _replaced(args, kwargs, position, value):
    args, kwargs = list(args), dict(kwargs)
    if position[0] == "args":
        args[position[1]] = value
    else:
        kwargs[position[1]] = value
    return args, kwargs


def _context(args, kwargs):
    for value in [*args, *kwargs.values()]:
        if _is_tensor(value):
            return value
    return None


def _call(function, args, kwargs, seed):
    """(exception or None, result)."""
    import torch

    import chainrule

    torch.manual_seed(seed)
    chainrule.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with time_limit(SECONDS_PER_CALL, CallTimeout):
                return None, function(*args, **kwargs)
        except CallTimeout as exc:
            return exc, None
        except Exception as exc:  # hostile arguments are meant to raise: any exception is an outcome
            return exc, None


def builtin_class(exc) -> type:
    """The first builtin exception class in ``exc``'s MRO (torch's _LinAlgError is a RuntimeError)."""
    for cls in type(exc).__mro__:
        if cls.__module__ == "builtins":
            return cls
    return Exception


def is_internal(exc) -> bool:
    return isinstance(exc, INTERNAL_ERRORS + (CallTimeout,)) or (type(exc).__module__ or "").startswith("numpy")


def _leaves(value):
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    else:
        yield value


def _difference(expected, actual, values: bool) -> str | None:
    """None when torch's result and chainrule's agree; else what differs."""
    import numpy as np
    import torch

    import chainrule

    if isinstance(expected, torch.nn.Module):
        return None if isinstance(actual, chainrule.nn.Module) else f"returned {type(actual).__name__}"
    expected_leaves, actual_leaves = list(_leaves(expected)), list(_leaves(actual))
    if len(expected_leaves) != len(actual_leaves):
        return f"{len(actual_leaves)} results, torch {len(expected_leaves)}"
    for want, got in zip(expected_leaves, actual_leaves):
        if isinstance(want, torch.Tensor):
            if not isinstance(got, chainrule.Tensor):
                return f"returned {type(got).__name__} for a tensor"
            if tuple(want.shape) != tuple(got.shape) or str(want.dtype)[6:] != str(got.dtype).rpartition(".")[2]:
                return f"{tuple(got.shape)} {got.dtype}, torch {tuple(want.shape)} {want.dtype}"
            if values and want.device.type != "meta" and got.device.type != "meta":
                want_array = want.detach().resolve_conj().resolve_neg().numpy()
                got_array = got.detach().numpy()
                if want_array.dtype.kind in "fc":
                    if not np.allclose(got_array, want_array, rtol=1e-4, atol=1e-5, equal_nan=True):
                        return "values"
                elif not np.array_equal(got_array, want_array):
                    return "values"
        elif isinstance(want, (bool, int, float, str, type(None))) and want != got \
                and not (isinstance(want, float) and math.isnan(want)):
            return f"{got!r}, torch {want!r}"
    return None


def _describe(exc) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def _snapshot(tensor):
    return (tuple(tensor.shape), tensor._version, tensor.detach().clone() if tensor.device.type != "meta" else None)


def _unchanged(before, tensor) -> bool:
    shape, version, values = before
    if tuple(tensor.shape) != shape or tensor._version != version:
        return False
    if values is None:
        return True
    import chainrule

    return bool(chainrule.equal(values, tensor.detach())) or bool(
        (values.isnan() & tensor.detach().isnan()).logical_or(values == tensor.detach()).all())


def classify(torch_function, chainrule_function, torch_args, torch_kwargs, seed, inplace, compare_values):
    """One record: what torch and chainrule did with the same (already hostile) arguments."""
    try:
        storages: dict = {}
        chainrule_args = _to_chainrule(list(torch_args), storages)
        chainrule_kwargs = {key: _to_chainrule(value, storages) for key, value in torch_kwargs.items()}
    except NotComparable as reason:
        return {"kind": "skipped", "reason": str(reason)}
    destination = chainrule_args[0] if inplace and chainrule_args and _is_chainrule_tensor(chainrule_args[0]) else None
    before = _snapshot(destination) if destination is not None else None
    _calling("torch")
    torch_exc, torch_result = _call(torch_function, torch_args, torch_kwargs, seed)
    if isinstance(torch_exc, CallTimeout):
        return {"kind": "skipped", "reason": "torch ran past the time limit"}
    _calling("chainrule")
    chainrule_exc, chainrule_result = _call(chainrule_function, chainrule_args, chainrule_kwargs, seed)
    record = {}
    if torch_exc is not None:
        record["torch"] = _describe(torch_exc)
    if chainrule_exc is not None:
        record["chainrule"] = _describe(chainrule_exc)
    if chainrule_exc is not None and is_internal(chainrule_exc) and \
            (torch_exc is None or builtin_class(torch_exc) is not builtin_class(chainrule_exc)):
        return {**record, "kind": "leak"}
    if chainrule_exc is not None and before is not None and not _unchanged(before, destination):
        return {**record, "kind": "mutated"}
    if torch_exc is None and chainrule_exc is None:
        try:
            difference = _difference(torch_result, chainrule_result, compare_values)
        except Exception as exc:  # an odd result type: recorded, not fatal
            difference = f"comparing raised {_describe(exc)}"
        return {**record, "kind": "values_differ", "difference": difference} if difference else \
            {**record, "kind": "both_ok"}
    if torch_exc is None:
        return {**record, "kind": "chainrule_only_raised"}
    if chainrule_exc is None:
        return {**record, "kind": "torch_only_raised"}
    if isinstance(chainrule_exc, builtin_class(torch_exc)):
        return {**record, "kind": "same"}
    if is_internal(torch_exc) and not is_internal(chainrule_exc):
        return {**record, "kind": "torch_leaks"}
    return {**record, "kind": "class_differs"}


def _is_chainrule_tensor(value) -> bool:
    import chainrule

    return isinstance(value, chainrule.Tensor)


# ----------------------------------------------------------------------------------------------
# cases
# ----------------------------------------------------------------------------------------------

def _module_pair(base):
    """torch's module and chainrule's, with torch's parameters and buffers."""
    import torch

    import chainrule

    torch.manual_seed(0)
    torch_module = base.module(torch.nn)
    chainrule_module = base.module(chainrule.nn)
    state = {key: _to_chainrule(value, {}) for key, value in torch_module.state_dict().items()}
    chainrule_module.load_state_dict(state)
    return torch_module, chainrule_module


def valid_call_fails(base) -> str | None:
    """Why the base call, unmodified, is no base for hostile variants (it raises on torch or on
    chainrule: an op chainrule lacks, a sample torch itself refuses), or None."""
    import torch

    import chainrule

    torch.manual_seed(0)
    args, kwargs = base.build(torch)
    if base.module is not None:
        torch_function, chainrule_function = _module_pair(base)
    else:
        torch_function, chainrule_function = base.function(torch), base.function(chainrule)
    record = classify(torch_function, chainrule_function, args, kwargs, 0, base.inplace, False)
    if record["kind"] in ("both_ok", "values_differ"):
        return None
    return f"the valid call: {record.get('reason') or record.get('torch') or record.get('chainrule')}"


def cases_of(base, hostile_names=None):
    """``(position, hostile name)`` pairs of one base call, in a fixed order."""
    import torch

    torch.manual_seed(0)
    args, kwargs = base.build(torch)
    context = _context(args, kwargs)
    pairs = []
    for position in _positions(args, kwargs):
        original = args[position[1]] if position[0] == "args" else kwargs[position[1]]
        for name, fits, _ in menu():
            if fits(original) and (hostile_names is None or name in hostile_names):
                pairs.append((position, name))
    if base.inplace and args and _is_tensor(args[0]) and args[0].is_floating_point():
        pairs.append((("args", 0), "leaf_requiring_grad"))
    del context
    return pairs


def run_case(base, position, hostile_name, seed=0):
    """The record of one base call with one argument made hostile."""
    import torch

    import chainrule

    torch.manual_seed(0)
    args, kwargs = base.build(torch)
    context = _context(args, kwargs)
    original = args[position[1]] if position[0] == "args" else kwargs[position[1]]
    if hostile_name == "leaf_requiring_grad":
        value = original.detach().clone().requires_grad_(True)
    elif hostile_name not in MENU_NAMES:
        raise NotComparable(f"no hostile value {hostile_name!r}")
    else:
        make = {name: make for name, _, make in menu()}[hostile_name]
        torch.manual_seed(1)
        try:
            value = make(original, context)
        except Exception as exc:  # a sample tensor the menu cannot imitate (sparse, nested)
            raise NotComparable(f"making the hostile value raised {_describe(exc)}") from exc
    args, kwargs = _replaced(args, kwargs, position, value)
    if base.module is not None:
        torch_function, chainrule_function = _module_pair(base)
    else:
        torch_function, chainrule_function = base.function(torch), base.function(chainrule)
    record = {"base": base.name, "source": base.source, "position": f"{position[0]}[{position[1]!r}]",
              "hostile": hostile_name}
    compare_values = UNCOMPARED_VALUES.search(base.name) is None
    return {**record, **classify(torch_function, chainrule_function, args, kwargs, seed, base.inplace,
                                 compare_values)}


def op_db_bases(pattern=None):
    """A Base per OpInfo's first float32 sample (and its in-place variant), skipped ones with reasons."""
    import torch
    from torch_opinfo_errors_trial import full_name, load_op_db, resolve_chainrule_callable

    op_db = load_op_db()
    if op_db is None:
        sys.exit("torch with expecttest is needed: pip install torch expecttest")
    bases, skipped = [], []
    for opinfo in op_db:
        name = full_name(opinfo)
        if pattern and not re.search(pattern, name):
            continue
        if not opinfo.supports_dtype(torch.float32, "cpu"):
            continue
        try:
            chainrule_function = resolve_chainrule_callable(opinfo)
        except NotComparable as reason:
            skipped.append({"base": name, "source": "op_db", "kind": "skipped", "reason": str(reason)})
            continue
        torch.manual_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                sample = next(iter(opinfo.sample_inputs("cpu", torch.float32)))
            except Exception as exc:
                skipped.append({"base": name, "source": "op_db", "kind": "skipped",
                                "reason": f"no sample: {_describe(exc)}"})
                continue

        def build(torch, sample=sample):
            return _cloned([sample.input, *sample.args]), _cloned(dict(sample.kwargs))

        torch_op = opinfo.op
        bases.append(Base(name, lambda lib, op=torch_op, counterpart=chainrule_function:
                          op if lib.__name__ == "torch" else counterpart, build, source="op_db"))
        inplace = opinfo.inplace_variant
        chainrule_inplace = getattr(chainrule_function, "__name__", "") and _inplace_counterpart(opinfo)
        if inplace is not None and chainrule_inplace is not None:
            bases.append(Base(f"{name}_", lambda lib, op=inplace, counterpart=chainrule_inplace:
                              op if lib.__name__ == "torch" else counterpart, build, inplace=True, source="op_db"))
    return bases, skipped


def _cloned(value):
    """The sample's tensors cloned (strides kept), so that an in-place call leaves the next case's alone."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().clone().requires_grad_(value.requires_grad)
    if isinstance(value, (list, tuple)):
        items = [_cloned(item) for item in value]
        return items if isinstance(value, list) else type(value)(items) if type(value) is tuple else value
    if isinstance(value, dict):
        return {key: _cloned(item) for key, item in value.items()}
    return value


def _inplace_counterpart(opinfo):
    """chainrule's in-place method for an OpInfo's in-place variant (``Tensor.<name>_``), or None."""
    import chainrule

    method_name = getattr(opinfo.inplace_variant, "__name__", None)
    return getattr(chainrule.Tensor, method_name, None) if method_name else None


def _cap_address_space():
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[0])
    limit = pages * resource.getpagesize() + ADDRESS_SPACE_HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))


def _work(out, source, pattern, start):
    """Run the cases from number ``start`` on, appending each record to ``cases.jsonl`` under ``out``
    and, before each call, the case's number and which library it is calling to ``progress``: a
    hostile argument that crashes the interpreter (torch 2.13's lu_unpack given a zero-size pivots
    tensor segfaults) ends this process, and ``run`` resumes after that case."""
    import chainrule  # noqa: F401  (imported before the address space is capped)

    bases, skipped = [], []
    if source in ("all", "calls"):
        bases += [base for base in hand_written_calls() if not pattern or re.search(pattern, base.name)]
    if source in ("all", "op_db"):
        found, skipped = op_db_bases(pattern)
        bases += found
    _cap_address_space()
    number = 0
    with open(os.path.join(out, "cases.jsonl"), "a") as records:
        def write(record):
            records.write(json.dumps(record) + "\n")
            records.flush()

        if start == 0:
            for record in skipped:
                write(record)
        for base in bases:
            print(f"{base.name}", file=sys.stderr, flush=True)
            try:
                reason = valid_call_fails(base)
                pairs = [] if reason else cases_of(base)
            except Exception as exc:
                pairs, reason = [], f"building the call raised {_describe(exc)}"
            if reason and start == 0:
                write({"base": base.name, "source": base.source, "kind": "skipped", "reason": reason})
            for position, hostile in pairs:
                number += 1
                if number <= start:
                    continue
                _PROGRESS.update(path=os.path.join(out, "progress"), number=number)
                head = {"base": base.name, "source": base.source, "position": f"{position[0]}[{position[1]!r}]",
                        "hostile": hostile}
                try:
                    write(run_case(base, position, hostile))
                except CallTimeout:
                    write({**head, "kind": "skipped", "reason": "building ran past the limit"})
                except NotComparable as reason:
                    write({**head, "kind": "skipped", "reason": str(reason)})


_PROGRESS: dict = {}


def _calling(library: str) -> None:
    """Note, before a call, which case and library it is (read back if the call crashes the process)."""
    if _PROGRESS:
        with open(_PROGRESS["path"], "w") as handle:
            handle.write(f"{_PROGRESS['number']} {library}")


def run(out, source="all", pattern=None):
    """Every case, in worker processes that a crash ends; a crashed case is recorded as skipped."""
    import subprocess

    os.makedirs(out, exist_ok=True)
    for name in ("cases.jsonl", "progress"):
        if os.path.exists(os.path.join(out, name)):
            os.remove(os.path.join(out, name))
    start, crashes = 0, []
    while True:
        command = [sys.executable, os.path.abspath(__file__), "work", "--out", out, "--source", source,
                   "--start", str(start)] + (["--filter", pattern] if pattern else [])
        finished = subprocess.run(command)
        if finished.returncode == 0:
            break
        with open(os.path.join(out, "progress")) as handle:
            number, library = handle.read().split()
        crashes.append({"number": int(number), "library": library, "returncode": finished.returncode})
        start = int(number)
    with open(os.path.join(out, "cases.jsonl")) as handle:
        records = [json.loads(line) for line in handle]
    for crash in crashes:
        records.append({"base": f"case {crash['number']}", "source": "crash", "kind": "skipped",
                        "reason": f"{crash['library']} ended the process (exit status {crash['returncode']})"})
    with open(os.path.join(out, "cases.json"), "w") as handle:
        json.dump(records, handle, indent=1)
    print(count_table(records))
    print(groups_table(records))
    return records


def count_table(records) -> str:
    by_source = collections.defaultdict(collections.Counter)
    for record in records:
        by_source[record["source"]][record["kind"]] += 1
    lines = ["| source | " + " | ".join(KINDS) + " | all |", "|---" * (len(KINDS) + 2) + "|"]
    for source, counts in sorted(by_source.items()):
        lines.append(f"| {source} | " + " | ".join(str(counts[kind]) for kind in KINDS)
                     + f" | {sum(counts.values())} |")
    return "\n".join(lines)


def _exception_name(text) -> str:
    return (text or "returned").split(":", 1)[0]


def groups_table(records, kinds=("leak", "mutated", "class_differs", "torch_only_raised"), top=40) -> str:
    groups = collections.Counter()
    for record in records:
        if record["kind"] in kinds:
            groups[(record["kind"], _exception_name(record.get("torch")),
                    _exception_name(record.get("chainrule")))] += 1
    return "\n".join(f"{count:6d}  {kind:18s} torch {t:22s} chainrule {c}"
                     for (kind, t, c), count in groups.most_common(top))


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
    run_parser.add_argument("--source", choices=("all", "calls", "op_db"), default="all")
    run_parser.add_argument("--filter", help="regular expression searched in the base call's name")
    work_parser = commands.add_parser("work", help="(run's worker process)")
    work_parser.add_argument("--out", required=True)
    work_parser.add_argument("--source", default="all")
    work_parser.add_argument("--filter")
    work_parser.add_argument("--start", type=int, default=0)
    show_parser = commands.add_parser("show")
    show_parser.add_argument("--out", required=True)
    show_parser.add_argument("--kind", required=True, choices=KINDS)
    show_parser.add_argument("--filter", help="regular expression searched in the record")
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.out, args.source, args.filter)
    elif args.command == "work":
        _work(args.out, args.source, args.filter, args.start)
    else:
        show(args.out, args.kind, args.filter)


if __name__ == "__main__":
    main()
