"""Run the same torch.nn.utils and nn.Module API code on torch and on chainrule, and compare.

Every case below is one function of the library (``case(torch)``): it seeds the library, builds
modules and inputs, calls the API under trial and returns a dict of what it saw (outputs, gradients,
parameter and state_dict keys, reprs, the exceptions of calls expected to fail). It runs once with
``torch`` and once with ``chainrule`` passed as ``torch``, each library in its own worker process,
each case under a time limit. Both libraries draw the same numbers from the same seed, so seeded
modules, inputs and random masks are comparable value for value. Nothing of torch's source is
copied here; torch is only called.

Groups: ``rnn`` (pad/pack/unpack/unpad, PackedSequence, RNN/LSTM/GRU on packed input), ``parametrize``
(register_parametrization, cached, remove_parametrizations, right_inverse, parametrizations.*, the
older weight_norm / spectral_norm hooks), ``prune``, ``clip`` (clip_grad_*, get_total_norm, vectors,
fusion, functional_call, skip_init, memory format), ``module`` (state_dict and load_state_dict,
buffers, named_*, get_submodule, apply, dtype casts, zero_grad, train/eval, hooks) and ``repr``
(containers with repeated blocks, and the repr of every ``torch.nn`` layer constructible with
defaults or with a few small positional sizes).

What a case returns is compared key by key; the key's name says what a difference means:
``grad...`` → grad_differ, ``keys...`` → keys_differ, ``repr...`` → repr_differs, ``msg...``: an
exception's message (compared in full), anything else → values_differ. Kinds per case:

    same                   everything agrees (both raised the same class, for a case that raises)
    values_differ          outputs, flags, dtypes, messages differ
    grad_differ            gradients differ
    keys_differ            parameter / buffer / state_dict / module names differ
    repr_differs           a repr differs ("chainrule" read as "torch")
    error_class_differs    both raised (the case, or a call it expects to fail), other classes
    torch_only_raised      torch refused, chainrule went on
    chainrule_only_raised  chainrule refused, torch went on
    missing                chainrule lacks the name (AttributeError on a module, ImportError)

    python tools/torch_nn_utils_trial.py run --out /tmp/nnutils
    python tools/torch_nn_utils_trial.py run --out /tmp/nnutils --filter '^rnn'
    python tools/torch_nn_utils_trial.py show --out /tmp/nnutils --kind values_differ
"""

from __future__ import annotations

import argparse
import collections
import importlib
import inspect
import json
import math
import os
import re
import subprocess
import sys
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_oracle import time_limit  # noqa: E402

CASE_SECONDS = 30
TOLERANCE = {"float64": (1e-7, 1e-9), "float16": (1e-2, 1e-3), "bfloat16": (2e-2, 1e-2)}
DEFAULT_TOLERANCE = (1e-4, 1e-5)

KINDS = ("same", "values_differ", "grad_differ", "keys_differ", "repr_differs", "error_class_differs",
         "torch_only_raised", "chainrule_only_raised", "missing")
# when a case differs in several ways, the one reported
SEVERITY = ("missing", "chainrule_only_raised", "torch_only_raised", "error_class_differs", "keys_differ",
            "values_differ", "grad_differ", "repr_differs")

SUBMODULES = ("nn.utils.rnn", "nn.utils.parametrize", "nn.utils.parametrizations", "nn.utils.prune",
              "nn.utils.stateless", "nn.utils.fusion", "func")

CASES: dict = {}


def case(name, **params):
    """Register ``function(torch, **params)`` as case ``name``."""
    def register(function):
        CASES[name] = (function, params)
        return function
    return register


def register(name, function, **params):
    CASES[name] = (function, params)


class Raised:
    """An exception a case caught on purpose (``caught``), compared by class and, under ``msg``, message."""

    def __init__(self, exc):
        self.cls, self.message = type(exc).__name__, str(exc)


def caught(call):
    try:
        call()
    except Exception as exc:  # the point: which class, which message
        return Raised(exc)
    return "returned"


def grads(tensors):
    return [None if t.grad is None else t.grad for t in tensors]


def _seed(torch):
    torch.manual_seed(0)


# ================================================================================================ rnn
def _sequences(torch, lengths=(3, 5, 1), features=2):
    return [torch.randn(n, features, requires_grad=True) for n in lengths]


def pad_sequence_case(torch, batch_first, padding_value, padding_side):
    _seed(torch)
    sequences = _sequences(torch)
    padded = torch.nn.utils.rnn.pad_sequence(sequences, batch_first=batch_first, padding_value=padding_value,
                                             padding_side=padding_side)
    (padded * torch.arange(padded.numel()).reshape(padded.shape).float()).sum().backward()
    return {"out": padded, "grads": grads(sequences)}


for _bf in (False, True):
    for _pv in (0.0, -1.5):
        for _side in ("right", "left"):
            register(f"rnn.pad_sequence[bf={_bf},pv={_pv},{_side}]", pad_sequence_case, batch_first=_bf,
                     padding_value=_pv, padding_side=_side)


@case("rnn.pad_sequence[errors]")
def _(torch):
    pad = torch.nn.utils.rnn.pad_sequence
    return {"empty": caught(lambda: pad([])), "mismatch": caught(lambda: pad([torch.ones(2, 3), torch.ones(2, 4)])),
            "side": caught(lambda: pad([torch.ones(2)], padding_side="top")),
            "tensor_input": pad(torch.ones(2, 3, 4)).shape, "zero_dim": caught(lambda: pad([torch.tensor(1.0)]))}


def _packed_fields(packed):
    return {"data": packed.data, "batch_sizes": packed.batch_sizes, "sorted_indices": packed.sorted_indices,
            "unsorted_indices": packed.unsorted_indices, "type": type(packed).__name__}


def pack_padded_case(torch, batch_first, enforce_sorted, lengths_as):
    _seed(torch)
    lengths = [5, 3, 2, 1] if enforce_sorted else [2, 5, 1, 3]
    x = torch.randn(4, 5, 3, requires_grad=True) if batch_first else torch.randn(5, 4, 3, requires_grad=True)
    given = torch.tensor(lengths) if lengths_as == "tensor" else lengths
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, given, batch_first=batch_first, enforce_sorted=enforce_sorted)
    (packed.data * torch.arange(packed.data.numel()).reshape(packed.data.shape).float()).sum().backward()
    padded, out_lengths = torch.nn.utils.rnn.pad_packed_sequence(packed, batch_first=batch_first)
    return {**_packed_fields(packed), "grad_x": x.grad, "padded": padded, "lengths": out_lengths}


for _bf in (False, True):
    for _es in (True, False):
        for _la in ("list", "tensor"):
            register(f"rnn.pack_padded_sequence[bf={_bf},sorted={_es},{_la}]", pack_padded_case, batch_first=_bf,
                     enforce_sorted=_es, lengths_as=_la)


@case("rnn.pack_padded_sequence[errors]")
def _(torch):
    pack = torch.nn.utils.rnn.pack_padded_sequence
    x = torch.ones(5, 3, 2)
    return {"unsorted": caught(lambda: pack(x, [2, 5, 1])), "msg_unsorted": caught(lambda: pack(x, [2, 5, 1])),
            "zero": caught(lambda: pack(x, [5, 0, 1], enforce_sorted=False)),
            "too_long": caught(lambda: pack(x, [6, 2, 1])),
            "count": caught(lambda: pack(x, [5, 2])),
            "two_d_lengths": caught(lambda: pack(x, torch.tensor([[5, 2, 1]]))),
            "float_lengths": caught(lambda: pack(x, torch.tensor([5.0, 2.0, 1.0])))}


def pad_packed_case(torch, batch_first, total_length, padding_value):
    _seed(torch)
    packed = torch.nn.utils.rnn.pack_sequence(_sequences(torch, (4, 2, 3)), enforce_sorted=False)
    padded, lengths = torch.nn.utils.rnn.pad_packed_sequence(packed, batch_first=batch_first,
                                                             padding_value=padding_value, total_length=total_length)
    padded.sum().backward()
    return {"padded": padded, "lengths": lengths, "lengths_dtype": lengths.dtype}


for _bf in (False, True):
    for _tl in (None, 6):
        register(f"rnn.pad_packed_sequence[bf={_bf},total={_tl}]", pad_packed_case, batch_first=_bf,
                 total_length=_tl, padding_value=-2.0)


@case("rnn.pad_packed_sequence[total_length too short]")
def _(torch):
    packed = torch.nn.utils.rnn.pack_sequence([torch.ones(4, 2), torch.ones(2, 2)])
    return {"short": caught(lambda: torch.nn.utils.rnn.pad_packed_sequence(packed, total_length=3)),
            "msg_short": caught(lambda: torch.nn.utils.rnn.pad_packed_sequence(packed, total_length=3))}


def pack_sequence_case(torch, enforce_sorted):
    _seed(torch)
    sequences = _sequences(torch, (4, 3, 1) if enforce_sorted else (1, 4, 3))
    packed = torch.nn.utils.rnn.pack_sequence(sequences, enforce_sorted=enforce_sorted)
    unpacked = torch.nn.utils.rnn.unpack_sequence(packed)
    sum(u.sum() * (i + 1) for i, u in enumerate(unpacked)).backward()
    return {**_packed_fields(packed), "unpacked": unpacked, "grads": grads(sequences)}


for _es in (True, False):
    register(f"rnn.pack_sequence+unpack_sequence[sorted={_es}]", pack_sequence_case, enforce_sorted=_es)


def unpad_case(torch, batch_first):
    _seed(torch)
    padded = torch.randn(3, 4, 2, requires_grad=True) if batch_first else torch.randn(4, 3, 2, requires_grad=True)
    parts = torch.nn.utils.rnn.unpad_sequence(padded, torch.tensor([4, 1, 3]), batch_first=batch_first)
    sum(p.sum() * (i + 1) for i, p in enumerate(parts)).backward()
    return {"parts": parts, "grad": padded.grad}


for _bf in (False, True):
    register(f"rnn.unpad_sequence[bf={_bf}]", unpad_case, batch_first=_bf)


@case("rnn.PackedSequence.to/double/float")
def _(torch):
    _seed(torch)
    packed = torch.nn.utils.rnn.pack_sequence(_sequences(torch, (1, 3)), enforce_sorted=False)
    as_double = packed.to(torch.float64)
    return {"to": _packed_fields(as_double), "double": packed.double().data.dtype,
            "half": packed.half().data.dtype, "same_object": packed.to(torch.float32) is packed,
            "is_cuda": packed.is_cuda, "len": len(packed), "class": type(as_double).__name__,
            "repr_fields": list(packed._fields)}


@case("rnn.PackedSequence(data, batch_sizes)")
def _(torch):
    packed = torch.nn.utils.rnn.PackedSequence(torch.arange(6.0), torch.tensor([3, 2, 1]))
    return {**_packed_fields(packed), "padded": torch.nn.utils.rnn.pad_packed_sequence(packed)[0]}


@case("rnn.PackedSequence(sorted_indices only, pair)")
def _(torch):
    PS = torch.nn.utils.rnn.PackedSequence
    packed = PS(torch.arange(6.0), torch.tensor([3, 2, 1]), torch.tensor([2, 0, 1]))
    pair = PS((torch.arange(3.0), torch.tensor([2, 1])))
    return {"fields": _packed_fields(packed), "pair": _packed_fields(pair),
            "padded": torch.nn.utils.rnn.pad_packed_sequence(packed)[0]}


def packed_rnn_case(torch, mode, num_layers, bidirectional, batch_first, proj_size, enforce_sorted, with_hx):
    _seed(torch)
    kwargs = {"proj_size": proj_size} if proj_size else {}
    layer = getattr(torch.nn, mode)(3, 4, num_layers=num_layers, bidirectional=bidirectional,
                                    batch_first=batch_first, **kwargs)
    lengths = [5, 3, 2] if enforce_sorted else [3, 5, 2]
    x = torch.randn(3, 5, 3, requires_grad=True) if batch_first else torch.randn(5, 3, 3, requires_grad=True)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=batch_first,
                                                     enforce_sorted=enforce_sorted)
    directions = 2 if bidirectional else 1
    hx = None
    if with_hx:
        h0 = torch.randn(num_layers * directions, 3, proj_size or 4)
        hx = (h0, torch.randn(num_layers * directions, 3, 4)) if mode == "LSTM" else h0
    output, state = layer(packed, hx)
    padded, out_lengths = torch.nn.utils.rnn.pad_packed_sequence(output, batch_first=batch_first)
    states = list(state) if mode == "LSTM" else [state]
    loss = (padded * torch.arange(padded.numel()).reshape(padded.shape).float().cos()).sum()
    loss = loss + sum((s * (i + 2)).sum() for i, s in enumerate(states))
    loss.backward()
    return {"output_fields": _packed_fields(output), "padded": padded, "lengths": out_lengths, "state": states,
            "grad_x": x.grad, "grad_params": {name: p.grad for name, p in layer.named_parameters()}}


for _mode in ("RNN", "LSTM", "GRU"):
    for _layers, _bi, _bf in ((1, False, False), (2, True, False), (2, True, True)):
        for _es in (True, False):
            register(f"rnn.{_mode}(packed)[layers={_layers},bi={_bi},bf={_bf},sorted={_es}]", packed_rnn_case,
                     mode=_mode, num_layers=_layers, bidirectional=_bi, batch_first=_bf, proj_size=0,
                     enforce_sorted=_es, with_hx=False)
    register(f"rnn.{_mode}(packed)[hx,unsorted]", packed_rnn_case, mode=_mode, num_layers=2, bidirectional=True,
             batch_first=False, proj_size=0, enforce_sorted=False, with_hx=True)
for _bi in (False, True):
    register(f"rnn.LSTM(packed)[proj_size=2,bi={_bi}]", packed_rnn_case, mode="LSTM", num_layers=2,
             bidirectional=_bi, batch_first=True, proj_size=2, enforce_sorted=False, with_hx=True)


# ================================================================================================ parametrize
def _symmetric(torch):
    class Symmetric(torch.nn.Module):
        def forward(self, x):
            return x.triu() + x.triu(1).transpose(-1, -2)

        def right_inverse(self, a):
            return a.triu()
    return Symmetric


def _linear(torch, n_in=4, n_out=4, bias=True):
    _seed(torch)
    return torch.nn.Linear(n_in, n_out, bias=bias)


def _names(module):
    return {"keys_params": [n for n, _ in module.named_parameters()],
            "keys_buffers": [n for n, _ in module.named_buffers()],
            "keys_state": list(module.state_dict().keys())}


def _forward_and_grads(torch, module, shape=(2, 4)):
    torch.manual_seed(1)
    x = torch.randn(*shape)
    out = module(x)
    (out * out).sum().backward()
    return {"out": out, "grad_params": {n: p.grad for n, p in module.named_parameters()}}


@case("parametrize.register_parametrization[symmetric]")
def _(torch):
    P = torch.nn.utils.parametrize
    layer = _linear(torch)
    P.register_parametrization(layer, "weight", _symmetric(torch)())
    return {**_names(layer), "is_parametrized": [P.is_parametrized(layer), P.is_parametrized(layer, "weight"),
                                                 P.is_parametrized(layer, "bias")],
            "type": type(layer).__name__, "type_before": P.type_before_parametrizations(layer).__name__,
            "weight": layer.weight, **_forward_and_grads(torch, layer), "repr": repr(layer)}


@case("parametrize.right_inverse[assign]")
def _(torch):
    P = torch.nn.utils.parametrize
    layer = _linear(torch)
    P.register_parametrization(layer, "weight", _symmetric(torch)())
    with torch.no_grad():
        layer.weight = torch.arange(16.0).reshape(4, 4)
    return {"original": layer.parametrizations.weight.original, "weight": layer.weight}


@case("parametrize.cached")
def _(torch):
    P = torch.nn.utils.parametrize
    layer = _linear(torch)
    P.register_parametrization(layer, "weight", _symmetric(torch)())
    with P.cached():
        first = layer.weight
        same = layer.weight is first
    return {"same_inside": same, "different_outside": layer.weight is not first, "weight": first}


def remove_parametrizations_case(torch, leave_parametrized):
    P = torch.nn.utils.parametrize
    layer = _linear(torch)
    P.register_parametrization(layer, "weight", _symmetric(torch)())
    P.remove_parametrizations(layer, "weight", leave_parametrized=leave_parametrized)
    return {**_names(layer), "type": type(layer).__name__, "weight": layer.weight,
            "is_param": isinstance(layer.weight, torch.nn.Parameter), "repr": repr(layer)}


for _leave in (True, False):
    register(f"parametrize.remove_parametrizations[leave={_leave}]", remove_parametrizations_case,
             leave_parametrized=_leave)


@case("parametrize.two parametrizations chained")
def _(torch):
    P = torch.nn.utils.parametrize

    class Double(torch.nn.Module):
        def forward(self, x):
            return 2 * x

    layer = _linear(torch)
    P.register_parametrization(layer, "weight", _symmetric(torch)())
    P.register_parametrization(layer, "weight", Double())
    return {**_names(layer), "weight": layer.weight, **_forward_and_grads(torch, layer), "repr": repr(layer)}


@case("parametrize.register_parametrization[buffer]")
def _(torch):
    P = torch.nn.utils.parametrize
    module = torch.nn.Module()
    module.register_buffer("scale", torch.arange(4.0))

    class Square(torch.nn.Module):
        def forward(self, x):
            return x * x

    P.register_parametrization(module, "scale", Square())
    return {**_names(module), "scale": module.scale}


@case("parametrize.register_parametrization[errors]")
def _(torch):
    P = torch.nn.utils.parametrize
    layer = _linear(torch)

    class WrongShape(torch.nn.Module):
        def forward(self, x):
            return x[0]

    return {"missing_name": caught(lambda: P.register_parametrization(layer, "nope", WrongShape())),
            "wrong_shape": caught(lambda: P.register_parametrization(layer, "weight", WrongShape())),
            "remove_unparametrized": caught(lambda: P.remove_parametrizations(layer, "weight"))}


def orthogonal_case(torch, n_out, n_in, map_name):
    layer = _linear(torch, n_in, n_out)
    kwargs = {"orthogonal_map": map_name} if map_name else {}
    torch.nn.utils.parametrizations.orthogonal(layer, **kwargs)
    w = layer.weight
    gram = w @ w.T if n_out <= n_in else w.T @ w
    return {**_names(layer), "gram": gram, "weight": w, **_forward_and_grads(torch, layer, (2, n_in)),
            "repr": repr(layer)}


for _shape in ((4, 4), (3, 5), (5, 3)):
    for _map in (None, "cayley", "householder"):
        register(f"parametrizations.orthogonal[{_shape},{_map}]", orthogonal_case, n_out=_shape[0], n_in=_shape[1],
                 map_name=_map)


@case("parametrizations.orthogonal[no trivialization, assign, errors]")
def _(torch):
    O = torch.nn.utils.parametrizations.orthogonal
    layer = O(_linear(torch, 3, 5), orthogonal_map="householder", use_trivialization=False)
    with torch.no_grad():
        layer.weight = torch.linalg.qr(torch.randn(5, 3))[0]
    trivial = O(_linear(torch, 4, 4))
    with torch.no_grad():
        trivial.weight = torch.linalg.qr(torch.randn(4, 4))[0] * 2
    return {**_names(layer), "weight": layer.weight, **_forward_and_grads(torch, layer, (2, 3)),
            "assigned": trivial.weight, "keys_trivial": _names(trivial),
            "exp_assign": caught(lambda: setattr(O(_linear(torch), use_trivialization=False), "weight", torch.eye(4))),
            "vector": caught(lambda: O(_linear(torch), "bias")), "msg_vector": caught(lambda: O(_linear(torch), "bias")),
            "bad_map": caught(lambda: O(_linear(torch), orthogonal_map="qr")),
            "msg_bad_map": caught(lambda: O(_linear(torch), orthogonal_map="qr"))}


def new_spectral_norm_case(torch, module_kind):
    _seed(torch)
    layer = torch.nn.Linear(4, 3) if module_kind == "linear" else torch.nn.Conv2d(2, 3, 3)
    torch.nn.utils.parametrizations.spectral_norm(layer)
    shape = (2, 4) if module_kind == "linear" else (1, 2, 5, 5)
    first = _forward_and_grads(torch, layer, shape)
    layer.eval()
    return {**_names(layer), "train": first, "eval_out": layer(torch.ones(*shape)),
            "u": layer.parametrizations.weight[0]._u, "repr": repr(layer)}


for _kind in ("linear", "conv"):
    register(f"parametrizations.spectral_norm[{_kind}]", new_spectral_norm_case, module_kind=_kind)


def new_weight_norm_case(torch, dim):
    layer = _linear(torch, 4, 3)
    torch.nn.utils.parametrizations.weight_norm(layer, dim=dim)
    return {**_names(layer), **_forward_and_grads(torch, layer),
            "original0": layer.parametrizations.weight.original0, "repr": repr(layer)}


for _dim in (0, 1, None):
    register(f"parametrizations.weight_norm[dim={_dim}]", new_weight_norm_case, dim=_dim)


def old_weight_norm_case(torch, dim, remove):
    layer = _linear(torch, 4, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.nn.utils.weight_norm(layer, dim=dim)
    result = {**_names(layer), **_forward_and_grads(torch, layer), "weight_g": layer.weight_g}
    if remove:
        torch.nn.utils.remove_weight_norm(layer)
        result.update({"keys_after": _names(layer), "weight_after": layer.weight})
    return result


for _dim in (0, 1, None):
    register(f"utils.weight_norm[dim={_dim}]", old_weight_norm_case, dim=_dim, remove=False)
register("utils.remove_weight_norm", old_weight_norm_case, dim=0, remove=True)


def old_spectral_norm_case(torch, remove):
    layer = _linear(torch, 4, 3)
    torch.nn.utils.spectral_norm(layer)
    result = {**_names(layer), "train": _forward_and_grads(torch, layer), "u": layer.weight_u}
    layer.eval()
    result["eval_out"] = layer(torch.ones(2, 4))
    if remove:
        torch.nn.utils.remove_spectral_norm(layer)
        result.update({"keys_after": _names(layer), "weight_after": layer.weight})
    return result


register("utils.spectral_norm", old_spectral_norm_case, remove=False)
register("utils.remove_spectral_norm", old_spectral_norm_case, remove=True)


@case("utils.weight_norm[errors]")
def _(torch):
    layer = _linear(torch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.nn.utils.weight_norm(layer)
        twice = caught(lambda: torch.nn.utils.weight_norm(layer))
    return {"twice": twice, "msg_twice": twice,
            "remove_missing": caught(lambda: torch.nn.utils.remove_weight_norm(_linear(torch))),
            "msg_remove_missing": caught(lambda: torch.nn.utils.remove_weight_norm(_linear(torch))),
            "spectral_remove_missing": caught(lambda: torch.nn.utils.remove_spectral_norm(_linear(torch)))}


# ================================================================================================ prune
def _pruned_report(torch, module, name="weight"):
    P = torch.nn.utils.prune
    out = {**_names(module), "is_pruned": P.is_pruned(module),
           "pre_hooks": len(module._forward_pre_hooks),
           "masks": {n: b for n, b in module.named_buffers() if n.endswith("_mask")},
           "weight": getattr(module, name)}
    torch.manual_seed(1)
    x = torch.randn(2, module.weight.shape[1]) if isinstance(module, torch.nn.Linear) else None
    if x is not None:
        y = module(x)
        y.sum().backward()
        out["out"] = y
        out["grad_orig"] = getattr(module, name + "_orig").grad
    return out


def prune_case(torch, method, kwargs):
    layer = _linear(torch, 5, 4)
    torch.manual_seed(3)
    getattr(torch.nn.utils.prune, method)(layer, "weight", **kwargs)
    return _pruned_report(torch, layer)


PRUNE_CASES = {
    "identity": {}, "random_unstructured[0.3]": {"amount": 0.3}, "random_unstructured[7]": {"amount": 7},
    "l1_unstructured[0.5]": {"amount": 0.5}, "l1_unstructured[0]": {"amount": 0},
    "random_structured[dim0]": {"amount": 0.5, "dim": 0}, "random_structured[dim1]": {"amount": 2, "dim": 1},
    "ln_structured[n2,dim0]": {"amount": 0.5, "n": 2, "dim": 0},
    "ln_structured[n1,dim1]": {"amount": 0.4, "n": 1, "dim": 1},
    "ln_structured[inf,dim-1]": {"amount": 1, "n": float("inf"), "dim": -1},
}
for _label, _kwargs in PRUNE_CASES.items():
    register(f"prune.{_label}", prune_case, method=_label.split("[")[0], kwargs=_kwargs)


@case("prune.custom_from_mask + remove")
def _(torch):
    P = torch.nn.utils.prune
    layer = _linear(torch, 5, 4)
    P.custom_from_mask(layer, "weight", (torch.arange(20).reshape(4, 5) % 3 != 0))
    before = _pruned_report(torch, layer)
    P.remove(layer, "weight")
    return {"before": before, "after": _names(layer), "weight_after": layer.weight,
            "is_param": isinstance(layer.weight, torch.nn.Parameter), "pruned_after": P.is_pruned(layer),
            "hooks_after": len(layer._forward_pre_hooks)}


@case("prune.repeated (PruningContainer)")
def _(torch):
    P = torch.nn.utils.prune
    layer = _linear(torch, 5, 4)
    torch.manual_seed(3)
    P.l1_unstructured(layer, "weight", amount=0.3)
    P.random_structured(layer, "weight", amount=1, dim=0)
    P.ln_structured(layer, "weight", amount=1, n=2, dim=1)
    hook = next(iter(layer._forward_pre_hooks.values()))
    return {**_pruned_report(torch, layer), "hook_class": type(hook).__name__,
            "history": [type(h).__name__ for h in hook] if hasattr(hook, "__iter__") else None}


@case("prune.global_unstructured")
def _(torch):
    P = torch.nn.utils.prune
    _seed(torch)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    P.global_unstructured([(model[0], "weight"), (model[1], "weight"), (model[1], "bias")],
                          pruning_method=P.L1Unstructured, amount=6)
    return {**_names(model), "masks": {n: b for n, b in model.named_buffers()},
            "out": model(torch.ones(2, 4))}


@case("prune.errors")
def _(torch):
    P = torch.nn.utils.prune
    return {"amount>1": caught(lambda: P.l1_unstructured(_linear(torch), "weight", amount=1.5)),
            "negative": caught(lambda: P.l1_unstructured(_linear(torch), "weight", amount=-1)),
            "too_many": caught(lambda: P.l1_unstructured(_linear(torch), "weight", amount=100)),
            "msg_too_many": caught(lambda: P.l1_unstructured(_linear(torch), "weight", amount=100)),
            "no_param": caught(lambda: P.l1_unstructured(_linear(torch), "nope", amount=1)),
            "remove_unpruned": caught(lambda: P.remove(_linear(torch), "weight")),
            "msg_remove_unpruned": caught(lambda: P.remove(_linear(torch), "weight")),
            "global_not_iterable": caught(lambda: P.global_unstructured(_linear(torch), P.L1Unstructured, amount=1)),
            "structured_bad_dim": caught(lambda: P.ln_structured(_linear(torch), "weight", 1, 2, dim=3))}


@case("prune.state_dict round trip")
def _(torch):
    P = torch.nn.utils.prune
    layer = _linear(torch, 5, 4)
    P.l1_unstructured(layer, "weight", amount=0.4)
    fresh = _linear(torch, 5, 4)
    P.identity(fresh, "weight")
    result = fresh.load_state_dict(layer.state_dict())
    return {"missing": list(result.missing_keys), "unexpected": list(result.unexpected_keys),
            "weight": fresh.weight, "keys_state": list(layer.state_dict())}


# ================================================================================================ clip & co
def _params_with_grads(torch, nonfinite=None):
    _seed(torch)
    params = [torch.randn(3, 2, requires_grad=True), torch.randn(4, requires_grad=True),
              torch.randn(2, requires_grad=True)]
    for p in params[:2]:
        p.grad = torch.randn(p.shape) * 3
    if nonfinite is not None:
        params[0].grad[0, 0] = nonfinite
    return params


def clip_norm_case(torch, norm_type, foreach, max_norm):
    params = _params_with_grads(torch)
    total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type, foreach=foreach)
    return {"total": total, "total_dtype": total.dtype, "grads": grads(params)}


for _nt in (2, 2.0, 1, float("inf"), "inf", 0.5, 3):
    for _fe in (None, True):
        register(f"clip.clip_grad_norm_[norm={_nt!r},foreach={_fe}]", clip_norm_case, norm_type=_nt, foreach=_fe,
                 max_norm=1.0)
register("clip.clip_grad_norm_[max_norm=0]", clip_norm_case, norm_type=2, foreach=None, max_norm=0.0)
register("clip.clip_grad_norm_[max_norm=1000]", clip_norm_case, norm_type=2, foreach=None, max_norm=1000.0)


@case("clip.clip_grad_norm_[nonfinite]")
def _(torch):
    clip = torch.nn.utils.clip_grad_norm_
    params = _params_with_grads(torch, float("nan"))
    quiet = clip(params, 1.0)
    return {"quiet": quiet, "grads": grads(params),
            "error": caught(lambda: clip(_params_with_grads(torch, float("inf")), 1.0, error_if_nonfinite=True)),
            "msg_error": caught(lambda: clip(_params_with_grads(torch, float("inf")), 1.0, error_if_nonfinite=True))}


@case("clip.clip_grad_norm_[single tensor, empty, no grads]")
def _(torch):
    clip = torch.nn.utils.clip_grad_norm_
    params = _params_with_grads(torch)
    return {"single": clip(params[0], 0.5), "grad": params[0].grad, "empty": clip([], 1.0),
            "no_grads": clip([torch.ones(2, requires_grad=True)], 1.0),
            "generator": clip((p for p in _params_with_grads(torch)), 1.0)}


def clip_value_case(torch, foreach):
    params = _params_with_grads(torch)
    returned = torch.nn.utils.clip_grad_value_(params, 0.7, foreach=foreach)
    return {"returned": returned, "grads": grads(params)}


for _fe in (None, True, False):
    register(f"clip.clip_grad_value_[foreach={_fe}]", clip_value_case, foreach=_fe)


@case("clip.get_total_norm + clip_grads_with_norm_")
def _(torch):
    U = torch.nn.utils
    params = _params_with_grads(torch)
    total = U.get_total_norm([p.grad for p in params if p.grad is not None], norm_type=3.0)
    U.clip_grads_with_norm_(params, 1.0, total)
    return {"total": total, "grads": grads(params), "inf": U.get_total_norm([torch.ones(2), -3 * torch.ones(3)], "inf"),
            "empty": U.get_total_norm([])}


@case("clip.parameters_to_vector + vector_to_parameters")
def _(torch):
    U = torch.nn.utils
    _seed(torch)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    vector = U.parameters_to_vector(model.parameters())
    U.vector_to_parameters(torch.arange(vector.numel()).float(), model.parameters())
    return {"vector": vector, "params": list(model.parameters()),
            "not_tensor": caught(lambda: U.vector_to_parameters([1.0, 2.0], model.parameters())),
            "msg_not_tensor": caught(lambda: U.vector_to_parameters([1.0, 2.0], model.parameters()))}


def fuse_conv_case(torch, transpose):
    _seed(torch)
    conv = (torch.nn.ConvTranspose2d if transpose else torch.nn.Conv2d)(2, 3, 3)
    bn = torch.nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(3))
        bn.running_var.copy_(torch.rand(3) + 0.5)
        bn.weight.copy_(torch.randn(3))
        bn.bias.copy_(torch.randn(3))
    conv.eval()
    bn.eval()
    fused = torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn, transpose=transpose)
    x = torch.randn(1, 2, 5, 5)
    return {"fused": fused(x), "reference": bn(conv(x)), **_names(fused), "training": fused.training,
            "train_mode": caught(lambda: torch.nn.utils.fusion.fuse_conv_bn_eval(conv.train(), bn))}


for _tr in (False, True):
    register(f"fusion.fuse_conv_bn_eval[transpose={_tr}]", fuse_conv_case, transpose=_tr)


@case("fusion.fuse_linear_bn_eval")
def _(torch):
    _seed(torch)
    linear, bn = torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(3))
        bn.running_var.copy_(torch.rand(3) + 0.5)
    linear.eval()
    bn.eval()
    fused = torch.nn.utils.fusion.fuse_linear_bn_eval(linear, bn)
    x = torch.randn(2, 4)
    bad = torch.nn.BatchNorm1d(5).eval()
    return {"fused": fused(x), "reference": bn(linear(x)), **_names(fused),
            "mismatch": caught(lambda: torch.nn.utils.fusion.fuse_linear_bn_eval(linear, bad))}


@case("func.functional_call")
def _(torch):
    _seed(torch)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    params = {n: torch.randn(p.shape, requires_grad=True) for n, p in model.named_parameters()}
    x = torch.randn(4, 3)
    out = torch.func.functional_call(model, params, (x,))
    out.pow(2).sum().backward()
    return {"out": out, "grads": {n: p.grad for n, p in params.items()}, "running_mean": model[1].running_mean,
            "module_weight_unchanged": model[0].weight,
            "partial": torch.func.functional_call(model, {"0.bias": torch.zeros(2)}, x),
            "strict": caught(lambda: torch.func.functional_call(model, {"0.bias": torch.zeros(2)}, x, strict=True)),
            "two_dicts": torch.func.functional_call(model, ({"0.weight": torch.ones(2, 3)}, {"0.bias": torch.ones(2)}),
                                                    x),
            "kwargs": torch.func.functional_call(torch.nn.Linear(3, 2), {"weight": torch.ones(2, 3),
                                                                         "bias": torch.ones(2)}, (), {"input": x})}


@case("func.functional_call[tie_weights]")
def _(torch):
    _seed(torch)
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 3))
    model[1].weight = model[0].weight
    x = torch.ones(1, 3)
    tied = torch.func.functional_call(model, {"0.weight": torch.eye(3)}, x)
    untied = torch.func.functional_call(model, {"0.weight": torch.eye(3)}, x, tie_weights=False)
    return {"tied": tied, "untied": untied}


@case("stateless.functional_call")
def _(torch):
    _seed(torch)
    layer = torch.nn.Linear(3, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = torch.nn.utils.stateless.functional_call(layer, {"weight": torch.ones(2, 3)}, (torch.ones(1, 3),))
    return {"out": out}


@case("utils.skip_init")
def _(torch):
    layer = torch.nn.utils.skip_init(torch.nn.Linear, 3, 4, bias=False)
    conv = torch.nn.utils.skip_init(torch.nn.Conv1d, 2, 3, 3, dtype=torch.float64)
    return {**_names(layer), "shape": layer.weight.shape, "conv_dtype": conv.weight.dtype, "repr": repr(conv),
            "not_module": caught(lambda: torch.nn.utils.skip_init(int, 3)),
            "no_device_kwarg": caught(lambda: torch.nn.utils.skip_init(torch.nn.Flatten))}


@case("utils.convert_conv2d_weight_memory_format")
def _(torch):
    _seed(torch)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.ReLU(), torch.nn.ConvTranspose2d(3, 2, 3))
    returned = torch.nn.utils.convert_conv2d_weight_memory_format(model, torch.channels_last)
    return {"same": returned is model,
            "channels_last": [m.weight.is_contiguous(memory_format=torch.channels_last) for m in (model[0], model[2])],
            "strides": [m.weight.stride() for m in (model[0], model[2])],
            "out": model(torch.ones(1, 2, 5, 5))}


# ================================================================================================ module API
def _net(torch):
    _seed(torch)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU())
            self.head = torch.nn.Linear(4, 2)
            self.register_buffer("steps", torch.tensor(0))
            self.register_buffer("scratch", torch.zeros(2), persistent=False)

        def forward(self, x):
            return self.head(self.body(x))
    return Net()


@case("module.state_dict keys")
def _(torch):
    net = _net(torch)
    state = net.state_dict(prefix="model.", keep_vars=True)
    return {"keys_state": list(net.state_dict()), "keys_prefixed": list(state),
            "kept_vars": [isinstance(v, torch.nn.Parameter) for v in state.values()],
            "detached": [v.requires_grad for v in net.state_dict().values()],
            "keys_buffers": [n for n, _ in net.named_buffers()], "type": type(net.state_dict()).__name__,
            "metadata": sorted(net.state_dict()._metadata.keys()) if hasattr(net.state_dict(), "_metadata") else None}


@case("module.load_state_dict strict=False")
def _(torch):
    net = _net(torch)
    state = net.state_dict()
    del state["head.bias"]
    state["extra.weight"] = torch.ones(1)
    result = net.load_state_dict(state, strict=False)
    return {"keys_missing": list(result.missing_keys), "keys_unexpected": list(result.unexpected_keys),
            "repr": repr(result), "type": type(result).__name__, "ok_repr": repr(net.load_state_dict(net.state_dict()))}


@case("module.load_state_dict strict errors")
def _(torch):
    net = _net(torch)
    state = net.state_dict()
    del state["head.bias"]
    state["extra.weight"] = torch.ones(1)
    size = net.state_dict()
    size["head.weight"] = torch.ones(3, 4)
    not_tensor = net.state_dict()
    not_tensor["head.bias"] = [1.0, 2.0]
    return {"strict": caught(lambda: net.load_state_dict(state)), "msg_strict": caught(lambda: net.load_state_dict(state)),
            "size": caught(lambda: net.load_state_dict(size, strict=False)),
            "msg_size": caught(lambda: net.load_state_dict(size, strict=False)),
            "msg_not_tensor": caught(lambda: net.load_state_dict(not_tensor)),
            "not_mapping": caught(lambda: net.load_state_dict([1, 2])),
            "msg_not_mapping": caught(lambda: net.load_state_dict([1, 2]))}


@case("module.load_state_dict assign=True")
def _(torch):
    net = _net(torch)
    new = {k: v.double() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    net.load_state_dict(new, assign=True)
    kept = _net(torch)
    kept.load_state_dict(new)
    return {"assigned_dtype": net.head.weight.dtype, "is_param": isinstance(net.head.weight, torch.nn.Parameter),
            "requires_grad": net.head.weight.requires_grad, "copied_dtype": kept.head.weight.dtype}


@case("module.register_buffer / register_parameter errors")
def _(torch):
    module = torch.nn.Linear(2, 2)
    return {"dot": caught(lambda: module.register_buffer("a.b", torch.ones(1))),
            "msg_dot": caught(lambda: module.register_buffer("a.b", torch.ones(1))),
            "empty": caught(lambda: module.register_buffer("", torch.ones(1))),
            "exists": caught(lambda: module.register_buffer("weight", torch.ones(1))),
            "msg_exists": caught(lambda: module.register_buffer("weight", torch.ones(1))),
            "not_tensor": caught(lambda: module.register_buffer("b", [1.0])),
            "param_not_param": caught(lambda: module.register_parameter("p", torch.ones(1))),
            "msg_param_not_param": caught(lambda: module.register_parameter("p", torch.ones(1))),
            "name_not_str": caught(lambda: module.register_buffer(1, torch.ones(1))),
            "none_buffer": caught(lambda: module.register_buffer("nothing", None)),
            "keys_buffers": [n for n, _ in module.named_buffers()], "keys_state": list(module.state_dict())}


@case("module.named_* (remove_duplicate, prefix, recurse)")
def _(torch):
    _seed(torch)
    shared = torch.nn.Linear(2, 2)
    model = torch.nn.Sequential(shared, torch.nn.ReLU(), shared, torch.nn.BatchNorm1d(2))
    return {"keys_modules": [n for n, _ in model.named_modules()],
            "keys_modules_dup": [n for n, _ in model.named_modules(remove_duplicate=False)],
            "keys_modules_prefix": [n for n, _ in model.named_modules(prefix="m")],
            "keys_params": [n for n, _ in model.named_parameters()],
            "keys_params_dup": [n for n, _ in model.named_parameters(remove_duplicate=False)],
            "keys_params_prefix": [n for n, _ in model.named_parameters(prefix="net")],
            "keys_params_norecurse": [n for n, _ in model[0].named_parameters(recurse=False)],
            "keys_top_norecurse": [n for n, _ in model.named_parameters(recurse=False)],
            "keys_buffers": [n for n, _ in model.named_buffers(prefix="x")],
            "keys_buffers_norecurse": [n for n, _ in model.named_buffers(recurse=False)],
            "keys_children": [n for n, _ in model.named_children()],
            "count_params": len(list(model.parameters())), "count_modules": len(list(model.modules())),
            "keys_state": list(model.state_dict())}


@case("module.get_submodule / get_parameter / get_buffer")
def _(torch):
    net = _net(torch)
    return {"sub": type(net.get_submodule("body.1")).__name__, "empty": net.get_submodule("") is net,
            "param": net.get_parameter("head.bias").shape, "buffer": net.get_buffer("body.1.running_mean").shape,
            "missing": caught(lambda: net.get_submodule("body.7")),
            "msg_missing": caught(lambda: net.get_submodule("body.7")),
            "msg_missing_attr": caught(lambda: net.get_submodule("tail")),
            "not_module": caught(lambda: net.get_submodule("head.weight")),
            "msg_not_module": caught(lambda: net.get_submodule("head.weight")),
            "param_missing": caught(lambda: net.get_parameter("head.nope")),
            "msg_param_missing": caught(lambda: net.get_parameter("head.nope")),
            "param_not_param": caught(lambda: net.get_parameter("steps")),
            "msg_param_not_param": caught(lambda: net.get_parameter("steps")),
            "buffer_not_buffer": caught(lambda: net.get_buffer("head.weight")),
            "msg_buffer_not_buffer": caught(lambda: net.get_buffer("head.weight"))}


@case("module.set_submodule")
def _(torch):
    net = _net(torch)
    net.set_submodule("body.2", torch.nn.Tanh())
    net.set_submodule("extra", torch.nn.ReLU())
    tanh = torch.nn.Tanh()
    return {"repr": repr(net), "msg_missing": caught(lambda: net.set_submodule("nope.x", tanh)),
            "msg_strict": caught(lambda: net.set_submodule("newone", tanh, strict=True)),
            "msg_empty": caught(lambda: net.set_submodule("", tanh)),
            "msg_not_module": caught(lambda: net.set_submodule("head", 3)),
            "msg_not_module_parent": caught(lambda: net.set_submodule("head.weight.x", tanh)),
            "msg_replace_parameter": caught(lambda: net.set_submodule("head.weight", tanh)),
            "msg_replace_attribute": caught(lambda: net.set_submodule("training", tanh))}


@case("module.apply order")
def _(torch):
    net = _net(torch)
    seen = []
    returned = net.apply(lambda m: seen.append(type(m).__name__))
    return {"order": seen, "returns_self": returned is net}


def dtype_cast_case(torch, how):
    net = _net(torch)
    net = getattr(net, how)() if how != "to" else net.to(torch.float64)
    return {"dtypes": {n: t.dtype for n, t in list(net.named_parameters()) + list(net.named_buffers())},
            "is_param": isinstance(net.head.weight, torch.nn.Parameter),
            "out": net.eval()(torch.ones(2, 3, dtype=net.head.weight.dtype))}


for _how in ("to", "double", "half", "float", "bfloat16"):
    register(f"module.{_how}()", dtype_cast_case, how=_how)


@case("module.to(...) arguments")
def _(torch):
    net = _net(torch)
    return {"int": caught(lambda: net.to(torch.int64)), "msg_int": caught(lambda: net.to(torch.int64)),
            "tensor": net.to(torch.ones(1, dtype=torch.float64)).head.weight.dtype,
            "string": net.to("cpu").head.weight.dtype,
            "complex": caught(lambda: _net(torch).to(torch.complex64))}


def zero_grad_case(torch, set_to_none):
    net = _net(torch)
    net(torch.ones(2, 3)).sum().backward()
    net.zero_grad(set_to_none=set_to_none)
    return {"grads": {n: p.grad for n, p in net.named_parameters()}}


for _stn in (True, False):
    register(f"module.zero_grad[set_to_none={_stn}]", zero_grad_case, set_to_none=_stn)


@case("module.train / eval / requires_grad_")
def _(torch):
    net = _net(torch)
    flags = [net.training]
    net.eval()
    flags.append([m.training for m in net.modules()])
    net.train(False)
    net.body.train()
    flags.append([m.training for m in net.modules()])
    net.requires_grad_(False)
    return {"flags": flags, "requires_grad": [p.requires_grad for p in net.parameters()],
            "train_str": caught(lambda: net.train("yes")), "msg_train_str": caught(lambda: net.train("yes"))}


@case("module.forward pre/post hooks with_kwargs")
def _(torch):
    _seed(torch)
    layer = torch.nn.Linear(3, 2)
    calls = []

    def pre(module, args, kwargs):
        calls.append(("pre", len(args), sorted(kwargs)))
        return (args[0] * 2,), kwargs

    def post(module, args, kwargs, output):
        calls.append(("post", len(args), sorted(kwargs)))
        return output + 1

    def plain_pre(module, args):
        calls.append(("plain_pre", len(args)))

    h1 = layer.register_forward_pre_hook(pre, with_kwargs=True)
    layer.register_forward_pre_hook(plain_pre, prepend=True)
    h2 = layer.register_forward_hook(post, with_kwargs=True)
    out = layer(torch.ones(1, 3))
    h1.remove()
    h2.remove()
    out_after = layer(torch.ones(1, 3))
    return {"out": out, "out_after": out_after, "calls": calls}


@case("module.forward hook always_call")
def _(torch):
    class Broken(torch.nn.Module):
        def forward(self, x):
            raise ValueError("broken forward")

    calls = []
    module = Broken()
    module.register_forward_hook(lambda m, a, o: calls.append("always"), always_call=True)
    module.register_forward_hook(lambda m, a, o: calls.append("normal"))
    raised = caught(lambda: module(torch.ones(1)))
    return {"raised": raised, "msg_raised": raised, "calls": calls}


@case("module.forward hooks: kwargs forward and returning None")
def _(torch):
    _seed(torch)
    layer = torch.nn.Linear(3, 2)
    calls = []
    layer.register_forward_pre_hook(lambda m, a: calls.append(("pre", type(a).__name__, len(a))))
    layer.register_forward_hook(lambda m, a, o: calls.append(("post", type(a).__name__, len(a))))
    out = layer(input=torch.ones(1, 3))
    return {"out": out, "calls": calls}


@case("module.state_dict pre/post hooks")
def _(torch):
    net = _net(torch)
    calls = []
    net.register_state_dict_pre_hook(lambda module, prefix, keep_vars: calls.append(("pre", prefix, keep_vars)))

    def post(module, state_dict, prefix, local_metadata):
        calls.append(("post", prefix))
        state_dict[prefix + "added"] = torch.ones(1)

    net.head.register_state_dict_post_hook(post)
    state = net.state_dict(prefix="p.")
    return {"keys_state": list(state), "calls": calls}


@case("module.load_state_dict pre/post hooks")
def _(torch):
    net = _net(torch)
    calls = []

    def post(module, incompatible):
        calls.append(("post", list(incompatible.missing_keys), list(incompatible.unexpected_keys)))
        incompatible.missing_keys.clear()

    def pre(module, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
        calls.append(("pre", prefix, strict))

    net.register_load_state_dict_post_hook(post)
    net.head.register_load_state_dict_pre_hook(pre)
    state = net.state_dict()
    del state["head.bias"]
    result = net.load_state_dict(state)
    return {"calls": calls, "keys_missing": list(result.missing_keys)}


@case("module.__setattr__ / __delattr__ corners")
def _(torch):
    net = _net(torch)
    out = {"assign_tensor_to_param": caught(lambda: setattr(net.head, "weight", torch.ones(2, 4))),
           "msg_assign_tensor_to_param": caught(lambda: setattr(net.head, "weight", torch.ones(2, 4))),
           "module_before_init": caught(lambda: _no_init_module(torch))}
    net.head.weight = None
    net.steps = torch.tensor(5)
    del net.scratch
    out.update({"keys_params": [n for n, _ in net.named_parameters()], "keys_buffers": [n for n, _ in net.named_buffers()],
                "dir_has": [name in dir(net) for name in ("body", "head", "steps")]})
    return out


def _no_init_module(torch):
    class NoInit(torch.nn.Module):
        def __init__(self):
            self.layer = torch.nn.Linear(1, 1)
    return NoInit()


# ================================================================================================ repr
@case("repr.Sequential repeated blocks")
def _(torch):
    _seed(torch)
    nn = torch.nn
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3), nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 2))
    return {"repr": repr(model)}


@case("repr.ModuleList repeated blocks")
def _(torch):
    nn = torch.nn
    blocks = nn.ModuleList([nn.Sequential(nn.Linear(2, 2), nn.ReLU()) for _ in range(4)] + [nn.Linear(2, 1)])
    return {"repr": repr(blocks), "repr_empty": repr(nn.ModuleList()), "repr_single": repr(nn.ModuleList([nn.ReLU()]))}


@case("repr.ModuleDict / ParameterList / ParameterDict")
def _(torch):
    nn = torch.nn
    _seed(torch)
    return {"repr_dict": repr(nn.ModuleDict({"a": nn.ReLU(), "b": nn.ReLU(), "c": nn.Linear(2, 2)})),
            "repr_plist": repr(nn.ParameterList([nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(2, 3))])),
            "repr_pdict": repr(nn.ParameterDict({"w": nn.Parameter(torch.ones(2))})),
            "repr_nested": repr(nn.Sequential(nn.Sequential(nn.ReLU(), nn.ReLU()), nn.Sequential(nn.ReLU(), nn.ReLU())))}


@case("repr.custom module with extra_repr and parameters")
def _(torch):
    class Custom(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(2))
            self.inner = torch.nn.Linear(2, 2)

        def extra_repr(self):
            return "line one\nline two"
    return {"repr": repr(Custom()), "repr_plain": repr(torch.nn.Module())}


# layers that need positional sizes: the smallest arguments torch accepts, tried in this order
SIZE_ARGUMENTS = ((), (4,), (4, 4), (4, 4, 3), (4, 4, 3, 3))
NOT_LAYERS = {"Module", "Container", "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"}


def _layer_names():
    import torch

    names = []
    for name in sorted(dir(torch.nn)):
        value = getattr(torch.nn, name)
        if (inspect.isclass(value) and issubclass(value, torch.nn.Module) and name not in NOT_LAYERS
                and not name.startswith("_") and not name.startswith("Lazy")):
            names.append(name)
    return names


def layer_repr_case(torch, layer_name, arguments):
    _seed(torch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layer = getattr(torch.nn, layer_name)(*arguments)
    return {"repr": repr(layer), "keys_state": list(layer.state_dict())}


def register_layer_reprs():
    """One case per torch.nn layer, with the first SIZE_ARGUMENTS torch constructs it from (chosen in
    the torch worker and the runner alike, so both sides build the same layer)."""
    import torch

    for name in _layer_names():
        for arguments in SIZE_ARGUMENTS:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    getattr(torch.nn, name)(*arguments)
            except Exception:
                continue
            register(f"repr.{name}{arguments}", layer_repr_case, layer_name=name, arguments=arguments)
            break


# ================================================================================================ more corners
@case("rnn.unpad_sequence[bf=False, non-leaf]")
def _(torch):
    _seed(torch)
    leaf = torch.randn(4, 3, 2, requires_grad=True)
    padded = leaf * 1
    parts = torch.nn.utils.rnn.unpad_sequence(padded, torch.tensor([4, 1, 3]))
    sum(p.sum() * (i + 1) for i, p in enumerate(parts)).backward()
    return {"parts": parts, "grad": leaf.grad, "padded_shape_after": padded.shape}


@case("rnn.PackedSequence methods")
def _(torch):
    _seed(torch)
    packed = torch.nn.utils.rnn.pack_sequence(_sequences(torch, (3, 1, 2)), enforce_sorted=False)
    return {"float": packed.float().data.dtype, "cpu": _packed_fields(packed.cpu()),
            "long": packed.long().data.dtype, "is_pinned": packed.is_pinned(),
            "to_kwarg": packed.to(dtype=torch.float64).data.dtype, "index": packed[1], "count": packed.count(None),
            "fields": list(packed._fields), "asdict": sorted(packed._asdict())}


def packed_rnn_relu_case(torch, mode):
    _seed(torch)
    layer = torch.nn.RNN(3, 4, nonlinearity="relu") if mode == "RNN" else getattr(torch.nn, mode)(3, 4, bias=False)
    packed = torch.nn.utils.rnn.pack_sequence([torch.randn(4, 3), torch.randn(2, 3), torch.randn(3, 3)],
                                              enforce_sorted=False)
    output, state = layer(packed)
    unpacked = torch.nn.utils.rnn.unpack_sequence(output)
    return {"unpacked": unpacked, "state": state}


for _mode in ("RNN", "LSTM", "GRU"):
    register(f"rnn.{_mode}(pack_sequence)->unpack_sequence", packed_rnn_relu_case, mode=_mode)


@case("rnn.packed input errors")
def _(torch):
    _seed(torch)
    layer = torch.nn.LSTM(3, 4)
    packed = torch.nn.utils.rnn.pack_sequence([torch.randn(4, 3), torch.randn(2, 3)])
    return {"wrong_hx": caught(lambda: layer(packed, (torch.zeros(1, 3, 4), torch.zeros(1, 3, 4)))),
            "msg_wrong_hx": caught(lambda: layer(packed, (torch.zeros(1, 3, 4), torch.zeros(1, 3, 4)))),
            "wrong_features": caught(lambda: layer(torch.nn.utils.rnn.pack_sequence([torch.randn(2, 5)]))),
            "msg_wrong_features": caught(lambda: layer(torch.nn.utils.rnn.pack_sequence([torch.randn(2, 5)])))}


@case("parametrize.right_inverse returning a tuple")
def _(torch):
    P = torch.nn.utils.parametrize

    class Split(torch.nn.Module):
        def forward(self, a, b):
            return a + b

        def right_inverse(self, x):
            return x / 2, x / 2

    layer = _linear(torch)
    P.register_parametrization(layer, "weight", Split())
    return {**_names(layer), **_forward_and_grads(torch, layer), "repr": repr(layer)}


@case("parametrize.unsafe shape change")
def _(torch):
    P = torch.nn.utils.parametrize

    class Transposed(torch.nn.Module):
        def forward(self, x):
            return x.T

    layer = _linear(torch, 3, 4)
    P.register_parametrization(layer, "weight", Transposed(), unsafe=True)
    return {**_names(layer), "shape": layer.weight.shape,
            "original_shape": layer.parametrizations.weight.original.shape}


@case("parametrize.state_dict round trip and deepcopy")
def _(torch):
    import copy

    P = torch.nn.utils.parametrize
    layer = _linear(torch)
    P.register_parametrization(layer, "weight", _symmetric(torch)())
    other = _linear(torch)
    torch.manual_seed(5)
    with torch.no_grad():
        other.weight.normal_()
    P.register_parametrization(other, "weight", _symmetric(torch)())
    result = other.load_state_dict(layer.state_dict())
    clone = copy.deepcopy(layer)
    return {"missing": list(result.missing_keys), "weight": other.weight, "clone_weight": clone.weight,
            "keys_clone": list(clone.state_dict())}


@case("parametrize.transfer_parametrizations_and_params")
def _(torch):
    P = torch.nn.utils.parametrize
    source = _linear(torch)
    P.register_parametrization(source, "weight", _symmetric(torch)())
    target = torch.nn.Linear(4, 4)
    P.transfer_parametrizations_and_params(source, target)
    return {**_names(target), "weight": target.weight, "parametrized": P.is_parametrized(target, "weight")}


@case("prune.importance_scores + conv ln_structured")
def _(torch):
    P = torch.nn.utils.prune
    _seed(torch)
    conv = torch.nn.Conv2d(2, 4, 3)
    P.ln_structured(conv, "weight", amount=2, n=1, dim=0)
    layer = _linear(torch, 5, 4)
    P.l1_unstructured(layer, "weight", amount=5, importance_scores=torch.arange(20.0).reshape(4, 5))
    P.l1_unstructured(layer, "bias", amount=0.5)
    return {"conv_mask": conv.weight_mask, "keys_conv": _names(conv), "linear_masks": _names(layer),
            "weight_mask": layer.weight_mask, "bias_mask": layer.bias_mask, "repr": repr(layer)}


@case("prune.method classes")
def _(torch):
    P = torch.nn.utils.prune
    _seed(torch)
    t = torch.randn(3, 4)
    default = torch.ones(3, 4)
    return {"l1": P.L1Unstructured(amount=3).compute_mask(t, default),
            "ln": P.LnStructured(amount=1, n=2, dim=1).compute_mask(t, default),
            "identity": P.Identity().compute_mask(t, default), "prune": P.L1Unstructured(amount=0.25).prune(t),
            "type": P.L1Unstructured.PRUNING_TYPE, "ln_type": P.LnStructured.PRUNING_TYPE,
            "applied": type(P.L1Unstructured.apply(_linear(torch), "weight", amount=2)).__name__}


@case("clip.clip_grad_norm_[norm 0, tensor max_norm, mixed dtypes]")
def _(torch):
    clip = torch.nn.utils.clip_grad_norm_
    params = _params_with_grads(torch)
    zero = clip(params, 1.0, norm_type=0)
    mixed = [torch.ones(2, requires_grad=True), torch.ones(3, dtype=torch.float64, requires_grad=True)]
    for p in mixed:
        p.grad = torch.full_like(p, 2.0)
    return {"zero": zero, "grads": grads(params), "mixed": clip(mixed, 1.0), "mixed_grads": grads(mixed),
            "tensor_max": clip(_params_with_grads(torch), torch.tensor(0.5))}


@case("module.containers API")
def _(torch):
    nn = torch.nn
    _seed(torch)
    seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    sliced = seq[1:]
    seq.append(nn.Tanh())
    seq.insert(0, nn.Identity())
    popped = seq.pop(1)
    del seq[0]
    added = seq + nn.Sequential(nn.ReLU())
    mlist = nn.ModuleList([nn.ReLU()])
    mlist.extend([nn.Tanh(), nn.Sigmoid()])
    mlist.insert(1, nn.Identity())
    mlist += nn.ModuleList([nn.ReLU()])
    del mlist[0]
    mdict = nn.ModuleDict({"b": nn.ReLU(), "a": nn.Tanh()})
    mdict.update({"c": nn.Identity()})
    removed = mdict.pop("b")
    plist = nn.ParameterList([torch.ones(2)])
    plist.append(torch.zeros(1))
    return {"keys_seq": [n for n, _ in seq.named_children()], "sliced": type(sliced).__name__,
            "keys_sliced": [n for n, _ in sliced.named_children()], "popped": type(popped).__name__,
            "keys_added": [n for n, _ in added.named_children()], "keys_mlist": [n for n, _ in mlist.named_children()],
            "mlist_types": [type(m).__name__ for m in mlist], "keys_mdict": list(mdict.keys()),
            "removed": type(removed).__name__, "keys_plist": [n for n, _ in plist.named_parameters()],
            "plist_is_param": [isinstance(p, nn.Parameter) for p in plist], "negative": type(seq[-1]).__name__,
            "out_of_range": caught(lambda: seq[10]), "msg_out_of_range": caught(lambda: seq[10]),
            "mul": [type(m).__name__ for m in (nn.Sequential(nn.ReLU()) * 2)],
            "repr": repr(seq), "repr_mlist": repr(mlist)}


@case("module.extra state, to_empty, type, cpu")
def _(torch):
    class WithState(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.value = 1
            self.lin = torch.nn.Linear(2, 2)

        def get_extra_state(self):
            return {"value": self.value}

        def set_extra_state(self, state):
            self.value = state["value"]

    source, target = WithState(), WithState()
    source.value = 7
    target.load_state_dict(source.state_dict())
    empty = torch.nn.Linear(2, 3).to_empty(device="cpu")
    typed = torch.nn.Linear(2, 3).type(torch.float64)
    return {"keys_state": list(source.state_dict()), "extra": target.value, "empty_shape": empty.weight.shape,
            "typed": typed.weight.dtype, "cpu": type(torch.nn.Linear(2, 2).cpu()).__name__,
            "keys_after_load": list(target.state_dict())}


@case("module.full backward hooks")
def _(torch):
    _seed(torch)
    layer = torch.nn.Linear(3, 2)
    seen = []

    def pre(module, grad_output):
        seen.append(("pre", [g.shape for g in grad_output]))
        return (grad_output[0] * 2,)

    def post(module, grad_input, grad_output):
        seen.append(("post", [None if g is None else g.shape for g in grad_input]))

    layer.register_full_backward_pre_hook(pre)
    layer.register_full_backward_hook(post)
    x = torch.randn(4, 3, requires_grad=True)
    layer(x).sum().backward()
    return {"seen": seen, "grad_x": x.grad, "grad_w": layer.weight.grad}


@case("module.global forward hooks")
def _(torch):
    modules = torch.nn.modules.module
    calls = []
    pre = modules.register_module_forward_pre_hook(lambda m, a: calls.append(("pre", type(m).__name__)))
    post = modules.register_module_forward_hook(lambda m, a, o: calls.append(("post", type(m).__name__)))
    try:
        torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Tanh())(torch.ones(2))
    finally:
        pre.remove()
        post.remove()
    return {"calls": calls}


@case("module.add_module / register_module errors")
def _(torch):
    module = torch.nn.Module()
    module.add_module("a", torch.nn.ReLU())
    module.register_module("b", None)
    return {"keys_children": [n for n, _ in module.named_children()],
            "not_module": caught(lambda: module.add_module("c", 3)), "msg_not_module": caught(lambda: module.add_module("c", 3)),
            "dot": caught(lambda: module.add_module("c.d", torch.nn.ReLU())),
            "msg_dot": caught(lambda: module.add_module("c.d", torch.nn.ReLU())),
            "empty": caught(lambda: module.add_module("", torch.nn.ReLU())),
            "attr_exists": caught(lambda: module.add_module("training", torch.nn.ReLU())),
            "repr": repr(module)}


@case("module.load_state_dict tied weights and num_batches_tracked")
def _(torch):
    _seed(torch)
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    model[1].weight = model[0].weight
    state = model.state_dict()
    del state["2.num_batches_tracked"]
    result = model.load_state_dict(state, strict=False)
    return {"keys_state": list(model.state_dict()), "missing": list(result.missing_keys),
            "tied": model[1].weight is model[0].weight}



# ================================================================================================ third batch
NON_DEFAULT_LAYERS = {
    "Linear": ((3, 4), {"bias": False}), "Bilinear": ((2, 3, 4), {"bias": False}),
    "Conv1d": ((2, 4, 3), {"stride": 2, "padding": 1, "dilation": 2, "groups": 2, "bias": False,
                           "padding_mode": "reflect"}),
    "Conv2d": ((2, 4, (3, 1)), {"padding": "same", "padding_mode": "circular"}),
    "Conv3d": ((2, 2, 1), {"stride": (1, 2, 1), "padding": "valid"}),
    "ConvTranspose2d": ((2, 4, 3), {"stride": 2, "output_padding": 1, "groups": 2, "dilation": 1}),
    "BatchNorm2d": ((4,), {"affine": False, "track_running_stats": False, "momentum": None, "eps": 1e-3}),
    "LayerNorm": (((2, 3),), {"elementwise_affine": False, "bias": False}),
    "GroupNorm": ((2, 4), {"affine": False}), "InstanceNorm1d": ((3,), {"affine": True}),
    "Embedding": ((5, 3), {"padding_idx": 0, "max_norm": 1.0, "scale_grad_by_freq": True, "sparse": True}),
    "EmbeddingBag": ((5, 3), {"mode": "max", "padding_idx": 1}),
    "LSTM": ((3, 4), {"num_layers": 2, "dropout": 0.5, "bidirectional": True, "batch_first": True, "proj_size": 2}),
    "GRU": ((3, 4), {"bias": False}), "RNN": ((3, 4), {"nonlinearity": "relu"}),
    "LSTMCell": ((3, 4), {"bias": False}), "RNNCell": ((3, 4), {"nonlinearity": "relu"}),
    "MaxPool2d": ((3,), {"stride": 1, "padding": 1, "dilation": 2, "return_indices": True, "ceil_mode": True}),
    "AvgPool1d": ((3,), {"count_include_pad": False, "ceil_mode": True}),
    "AvgPool2d": ((2,), {"divisor_override": 3}), "LPPool2d": ((2, 3), {"stride": 1}),
    "AdaptiveAvgPool2d": (((None, 3),), {}), "AdaptiveMaxPool1d": ((3,), {"return_indices": True}),
    "Upsample": ((), {"scale_factor": 2.0, "mode": "bilinear", "align_corners": True}),
    "Dropout": ((0.3,), {"inplace": True}), "ReLU": ((), {"inplace": True}), "LeakyReLU": ((0.2, True), {}),
    "ELU": ((), {"alpha": 0.5, "inplace": True}), "Hardtanh": ((-2.0, 2.0), {}), "Softmax": ((), {"dim": 1}),
    "Softplus": ((), {"beta": 2.0, "threshold": 10.0}), "PReLU": ((3,), {"init": 0.1}),
    "Threshold": ((0.1, 20.0), {}), "GELU": ((), {"approximate": "tanh"}), "Flatten": ((0, 2), {}),
    "Unflatten": ((1, (2, 3)), {}), "MultiheadAttention": ((4, 2), {"dropout": 0.1, "bias": False,
                                                                  "kdim": 3, "vdim": 5, "batch_first": True}),
    "TransformerEncoderLayer": ((4, 2), {"dim_feedforward": 8, "norm_first": True, "activation": "gelu"}),
    "CrossEntropyLoss": ((), {"ignore_index": 3, "label_smoothing": 0.1, "reduction": "sum"}),
    "Fold": (((4, 5), (2, 2)), {"dilation": 1, "padding": 1, "stride": 2}), "Unfold": ((2,), {"padding": 1}),
    "PixelShuffle": ((2,), {}), "ZeroPad2d": (((1, 2, 0, 3),), {}), "ReflectionPad1d": ((2,), {}),
    "ConstantPad1d": ((2, 3.5), {}), "CosineSimilarity": ((), {"dim": 0, "eps": 1e-6}),
    "PairwiseDistance": ((), {"p": 1.0, "keepdim": True}), "Hardshrink": ((0.3,), {}),
    "RMSNorm": (([3],), {"eps": 1e-6, "elementwise_affine": False}), "ChannelShuffle": ((2,), {}),
    "CELU": ((0.5,), {}), "SyncBatchNorm": ((3,), {"momentum": 0.3}), "LocalResponseNorm": ((2,), {"k": 2.0}),
    "Transformer": ((), {"d_model": 4, "nhead": 2, "num_encoder_layers": 1, "num_decoder_layers": 1,
                         "dim_feedforward": 8}),
}


def non_default_repr_case(torch, layer_name):
    _seed(torch)
    args, kwargs = NON_DEFAULT_LAYERS[layer_name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layer = getattr(torch.nn, layer_name)(*args, **kwargs)
    return {"repr": repr(layer), "keys_state": list(layer.state_dict())}


for _name in NON_DEFAULT_LAYERS:
    register(f"repr.{_name}[non-default]", non_default_repr_case, layer_name=_name)


@case("module.load_state_dict strict: every error in one message")
def _(torch):
    net = _net(torch)
    state = net.state_dict()
    del state["head.bias"]
    state["extra.weight"] = torch.ones(1)
    state["body.0.weight"] = torch.ones(5, 3)
    return {"msg": caught(lambda: net.load_state_dict(state))}


@case("parametrizations.weight_norm loads an old weight_g/weight_v state_dict")
def _(torch):
    old = _linear(torch, 4, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.nn.utils.weight_norm(old)
    new = torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(4, 3))
    result = caught(lambda: new.load_state_dict(old.state_dict()))
    return {"result": result if not isinstance(result, str) else "returned", "weight": new.weight,
            "keys_state": list(new.state_dict())}


@case("fusion.fuse_*_weights")
def _(torch):
    fusion = torch.nn.utils.fusion
    _seed(torch)
    w, b = torch.randn(3, 2, 3, 3), torch.randn(3)
    mean, var, gamma, beta = torch.randn(3), torch.rand(3) + 0.5, torch.randn(3), torch.randn(3)
    conv_w, conv_b = fusion.fuse_conv_bn_weights(w, b, mean, var, 1e-5, gamma, beta)
    conv_none = fusion.fuse_conv_bn_weights(w, None, mean, var, 1e-5, None, None)
    lin_w, lin_b = fusion.fuse_linear_bn_weights(torch.randn(3, 4), torch.randn(3), mean, var, 1e-5, gamma, beta)
    return {"conv": [conv_w, conv_b], "is_param": [isinstance(t, torch.nn.Parameter) for t in (conv_w, conv_b)],
            "conv_none": list(conv_none), "linear": [lin_w, lin_b],
            "transpose": list(fusion.fuse_conv_bn_weights(w, b, mean, var, 1e-5, gamma, beta, transpose=True))}


@case("func.functional_call errors")
def _(torch):
    _seed(torch)
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 3))
    model[1].weight = model[0].weight
    x = torch.ones(1, 3)
    call = torch.func.functional_call
    return {"msg_strict": caught(lambda: call(torch.nn.Linear(3, 3), {"weight": torch.eye(3)}, x, strict=True)),
            "msg_unexpected": caught(lambda: call(torch.nn.Linear(3, 3), {"nope": torch.eye(3)}, x, strict=True)),
            "msg_tied_conflict": caught(lambda: call(model, {"0.weight": torch.eye(3), "1.weight": torch.ones(3, 3)},
                                                     x)),
            "msg_duplicate": caught(lambda: call(torch.nn.Linear(3, 3), ({"weight": torch.eye(3)},
                                                                         {"weight": torch.eye(3)}), x)),
            "unknown_ok": call(torch.nn.Linear(3, 3), {"nope": torch.eye(3), "weight": torch.eye(3),
                                                       "bias": torch.zeros(3)}, x)}


@case("clip.get_total_norm foreach / nonfinite, vector conversions errors")
def _(torch):
    U = torch.nn.utils
    tensors = [torch.tensor([3.0, 4.0]), torch.tensor([float("inf")])]
    mixed = [torch.ones(2, requires_grad=True), torch.ones(3, dtype=torch.float64, requires_grad=True)]
    return {"foreach": U.get_total_norm([torch.tensor([3.0, 4.0]), torch.ones(3)], 2.0, foreach=True),
            "nonfinite": caught(lambda: U.get_total_norm(tensors, error_if_nonfinite=True)),
            "msg_nonfinite": caught(lambda: U.get_total_norm(tensors, error_if_nonfinite=True)),
            "inf_quiet": U.get_total_norm(tensors), "mixed_vector": U.parameters_to_vector(mixed),
            "msg_short_vector": caught(lambda: U.vector_to_parameters(torch.ones(3), [torch.ones(2), torch.ones(3)])),
            "long_vector": caught(lambda: U.vector_to_parameters(torch.ones(9), [torch.ones(2), torch.ones(3)]))}


@case("module.non-persistent buffer in a strict load, hooks with_kwargs and always_call together")
def _(torch):
    net = _net(torch)
    state = net.state_dict()
    state["scratch"] = torch.ones(2)
    calls = []

    def hook(module, args, kwargs, output):
        calls.append((len(args), sorted(kwargs)))

    net.head.register_forward_hook(hook, with_kwargs=True, always_call=True)
    net.eval()(torch.ones(1, 3))
    return {"msg_strict": caught(lambda: net.load_state_dict(state)), "calls": calls}

# ================================================================================================ fourth batch
@case("rnn.invert_permutation, empty pack, pad_sequence dtype")
def _(torch):
    rnn = torch.nn.utils.rnn
    return {"invert": rnn.invert_permutation(torch.tensor([2, 0, 1])), "invert_none": rnn.invert_permutation(None),
            "empty": caught(lambda: rnn.pack_padded_sequence(torch.ones(3, 0, 1), [])),
            "msg_empty": caught(lambda: rnn.pack_padded_sequence(torch.ones(3, 0, 1), [])),
            "mixed": rnn.pad_sequence([torch.ones(2, dtype=torch.int64), torch.full((3,), 2.5)]),
            "int_padding": rnn.pad_sequence([torch.ones(2, dtype=torch.int64), torch.ones(3, dtype=torch.int64)],
                                            padding_value=-1.5)}


@case("module.to positional non_blocking, complex warning, state_dict positional")
def _(torch):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        double = torch.nn.Linear(2, 2).to("cpu", torch.float64, True)
        complex_layer = torch.nn.Linear(2, 2).to(torch.complex64)
        keys = list(torch.nn.Linear(2, 2).state_dict(None, "a."))
    return {"double": double.weight.dtype, "complex": complex_layer.weight.dtype, "keys": keys,
            "warnings": [(w.category.__name__, str(w.message)) for w in record]}


@case("prune.a None parameter")
def _(torch):
    layer = torch.nn.Linear(3, 2, bias=False)
    return {"none": caught(lambda: torch.nn.utils.prune.l1_unstructured(layer, "bias", amount=1))}


# ================================================================================================ running
def encode(value, lib):
    """What a case returned as JSON: tensors as dtype, shape and values, exceptions as class and message."""
    if isinstance(value, Raised):
        return {"__raised__": value.cls, "message": value.message.replace("chainrule", "torch")}
    if isinstance(value, lib.Tensor):
        detached = value.detach()
        dtype = str(detached.dtype).rpartition(".")[2]
        if detached.dtype in (lib.float16, lib.bfloat16):
            detached = detached.float()
        values = detached.tolist()
        return {"__tensor__": dtype, "shape": list(detached.shape), "values": values,
                "parameter": isinstance(value, lib.nn.Parameter)}
    if isinstance(value, lib.dtype):
        return {"__dtype__": str(value).rpartition(".")[2]}
    if isinstance(value, str):
        return value.replace("chainrule", "torch")
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if isinstance(value, dict):
        return {"__dict__": [[str(k), encode(v, lib)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [encode(item, lib) for item in value]
    if isinstance(value, lib.nn.Module):
        return {"__module__": type(value).__name__}
    return {"__object__": type(value).__name__}


def _missing(record) -> bool:
    """chainrule lacks a name torch has: an AttributeError naming a module or class, an ImportError."""
    cls, message = record["raised"], record["message"]
    if cls in ("ImportError", "ModuleNotFoundError"):
        return True
    return cls == "AttributeError" and bool(re.search(r"(module|type object) '[\w.]+' has no attribute", message))


def _kind_of_key(key: str) -> str:
    for prefix, kind in (("grad", "grad_differ"), ("keys", "keys_differ"), ("repr", "repr_differs")):
        if key.startswith(prefix):
            return kind
    return "values_differ"


def _close(a, b, rtol, atol) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, rtol, atol) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return a == b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= atol + rtol * abs(b)


def differences(t, c, key, path, found):
    """Append (kind, path, torch's, chainrule's) for each place ``c`` differs from ``t``."""
    def note(kind):
        found.append((kind, path, _short(t), _short(c)))

    t_raised = isinstance(t, dict) and "__raised__" in t
    c_raised = isinstance(c, dict) and "__raised__" in c
    if t_raised or c_raised:
        if t_raised and c_raised:
            if t["__raised__"] != c["__raised__"]:
                note("error_class_differs")
            elif key.startswith("msg") and t["message"] != c["message"]:
                note("values_differ")
        else:
            note("torch_only_raised" if t_raised else "chainrule_only_raised")
        return
    if isinstance(t, dict) and "__tensor__" in t:
        if not (isinstance(c, dict) and "__tensor__" in c):
            note(_kind_of_key(key))
        elif t["__tensor__"] != c["__tensor__"] or t["shape"] != c["shape"]:
            note(_kind_of_key(key))
        elif not _close(t["values"], c["values"], *TOLERANCE.get(t["__tensor__"], DEFAULT_TOLERANCE)):
            note(_kind_of_key(key))
        return
    if isinstance(t, dict) and "__dict__" in t:
        if not (isinstance(c, dict) and "__dict__" in c):
            note(_kind_of_key(key))
            return
        if [k for k, _ in t["__dict__"]] != [k for k, _ in c["__dict__"]]:
            found.append(("keys_differ", path, [k for k, _ in t["__dict__"]], [k for k, _ in c["__dict__"]]))
            return
        for (k, tv), (_, cv) in zip(t["__dict__"], c["__dict__"]):
            differences(tv, cv, key if path else k, f"{path}.{k}" if path else k, found)
        return
    if isinstance(t, list) and isinstance(c, list) and len(t) == len(c):
        for index, (tv, cv) in enumerate(zip(t, c)):
            differences(tv, cv, key, f"{path}[{index}]", found)
        return
    if isinstance(t, float) and isinstance(c, (int, float)) and not isinstance(c, bool):
        if not _close(t, c, *DEFAULT_TOLERANCE):
            note(_kind_of_key(key))
        return
    if t != c:
        note(_kind_of_key(key))


def _short(value, limit=400):
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit] + "..."


def classify(torch_record, chainrule_record):
    """The case's kind and the differences behind it."""
    t_raised, c_raised = "raised" in torch_record, "raised" in chainrule_record
    if t_raised or c_raised:
        if t_raised and c_raised:
            if torch_record["raised"] == chainrule_record["raised"]:
                return "same", []
            if _missing(chainrule_record):
                return "missing", []
            return "error_class_differs", []
        if c_raised:
            return ("missing" if _missing(chainrule_record) else "chainrule_only_raised"), []
        return "torch_only_raised", []
    found = []
    differences(torch_record["result"], chainrule_record["result"], "", "", found)
    if not found:
        return "same", []
    kinds = {kind for kind, *_ in found}
    return next(kind for kind in SEVERITY if kind in kinds), found


def _import_library(name):
    lib = importlib.import_module(name)
    for sub in SUBMODULES:
        try:
            importlib.import_module(f"{name}.{sub}")
        except ImportError:
            pass
    return lib


def work(out, library, pattern, start):
    """Run the cases (from number ``start``) on one library, one JSON line each to ``<library>.jsonl``."""
    lib = _import_library(library)
    register_layer_reprs()
    names = [name for name in CASES if not pattern or re.search(pattern, name)]
    with open(os.path.join(out, f"{library}.jsonl"), "a") as records:
        for number, name in enumerate(names):
            if number < start:
                continue
            with open(os.path.join(out, f"{library}.progress"), "w") as progress:
                progress.write(str(number))
            function, params = CASES[name]
            record = {"case": name}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    with time_limit(CASE_SECONDS):
                        record["result"] = encode(function(lib, **params), lib)
                except Exception as exc:  # the case's outcome: compared by class
                    record.update(raised=type(exc).__name__, message=str(exc).replace("chainrule", "torch")[:600])
            records.write(json.dumps(record) + "\n")
            records.flush()


def _run_library(out, library, pattern):
    """The worker for one library, restarted past a case that ends the process."""
    path = os.path.join(out, f"{library}.jsonl")
    for stale in (path, os.path.join(out, f"{library}.progress")):
        if os.path.exists(stale):
            os.remove(stale)
    start, crashes = 0, {}
    while True:
        command = [sys.executable, os.path.abspath(__file__), "work", "--out", out, "--library", library,
                   "--start", str(start)] + (["--filter", pattern] if pattern else [])
        finished = subprocess.run(command)
        if finished.returncode == 0:
            break
        progress = os.path.join(out, f"{library}.progress")
        if not os.path.exists(progress):
            sys.exit(f"the {library} worker failed before its first case")
        with open(progress) as handle:
            number = int(handle.read())
        crashes[number] = finished.returncode
        start = number + 1
    with open(path) as handle:
        records = {record["case"]: record for record in map(json.loads, handle)}
    return records, crashes


def run(out, pattern=None):
    os.makedirs(out, exist_ok=True)
    torch_records, torch_crashes = _run_library(out, "torch", pattern)
    chainrule_records, chainrule_crashes = _run_library(out, "chainrule", pattern)
    cases = []
    for name, torch_record in torch_records.items():
        chainrule_record = chainrule_records.get(name, {"raised": "Crash", "message": "the worker process ended"})
        kind, found = classify(torch_record, chainrule_record)
        cases.append({"case": name, "kind": kind, "differences": found,
                      "torch": {k: v for k, v in torch_record.items() if k in ("raised", "message")},
                      "chainrule": {k: v for k, v in chainrule_record.items() if k in ("raised", "message")}})
    with open(os.path.join(out, "cases.json"), "w") as handle:
        json.dump(cases, handle, indent=1)
    print(count_table(cases))
    if torch_crashes or chainrule_crashes:
        print(f"crashes: torch {torch_crashes}, chainrule {chainrule_crashes}")
    return cases


def count_table(cases) -> str:
    by_group = collections.defaultdict(collections.Counter)
    for record in cases:
        by_group[record["case"].split(".")[0]][record["kind"]] += 1
    by_group["all"] = sum(by_group.values(), collections.Counter())
    lines = ["| group | " + " | ".join(KINDS) + " | cases |", "|---" * (len(KINDS) + 2) + "|"]
    for group, counts in by_group.items():
        lines.append(f"| {group} | " + " | ".join(str(counts[kind]) for kind in KINDS) + f" | {sum(counts.values())} |")
    return "\n".join(lines)


def show(out, kind, pattern=None):
    with open(os.path.join(out, "cases.json")) as handle:
        cases = json.load(handle)
    for record in cases:
        if record["kind"] == kind and (not pattern or re.search(pattern, record["case"])):
            print(json.dumps(record)[:2000])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run")
    run_parser.add_argument("--out", required=True)
    run_parser.add_argument("--filter", help="regular expression searched in the case's name")
    work_parser = commands.add_parser("work", help="(run's worker process)")
    work_parser.add_argument("--out", required=True)
    work_parser.add_argument("--library", choices=("torch", "chainrule"), required=True)
    work_parser.add_argument("--filter")
    work_parser.add_argument("--start", type=int, default=0)
    show_parser = commands.add_parser("show")
    show_parser.add_argument("--out", required=True)
    show_parser.add_argument("--kind", required=True, choices=KINDS)
    show_parser.add_argument("--filter", help="regular expression searched in the case's name")
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.out, args.filter)
    elif args.command == "work":
        work(args.out, args.library, args.filter, args.start)
    else:
        show(args.out, args.kind, args.filter)


if __name__ == "__main__":
    main()
