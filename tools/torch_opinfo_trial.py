"""Run torch's own OpInfo sample inputs (``op_db``) on torch and on chainrule, and compare.

torch 2.13 ships its operator test database in ``torch.testing._internal.common_methods_invocations``:
about 700 OpInfos, each with a ``sample_inputs`` generator of torch's choosing (broadcasting,
non-contiguous and zero-size tensors, 0-d tensors, hostile values). This trial draws those samples
(nothing of torch's is stored here), converts every tensor to a chainrule tensor with the same dtype,
values, strides and ``requires_grad``, runs the op on both, and compares the outputs (dtype, shape
and values with ``torch.testing.assert_close``'s default tolerances). For float64 samples of
differentiable ops it also backpropagates one seeded cotangent on both and compares every input's
gradient.

    python tools/torch_opinfo_trial.py run --out /tmp/opdb                 # every OpInfo
    python tools/torch_opinfo_trial.py run --out /tmp/opdb --filter conv   # names containing "conv"
    python tools/torch_opinfo_trial.py ledger --out /tmp/opdb              # write the CI ledger
    python tools/torch_opinfo_trial.py run --out /tmp/ref --inputs reference --limit 0
    python tools/torch_opinfo_trial.py ledger --out /tmp/ref --inputs reference

``--inputs reference`` draws each OpInfo's ``reference_inputs`` instead of its ``sample_inputs``:
the sample inputs followed by torch's extended ones (extremal values such as inf, nan, -0.0 and
huge or tiny numbers, type-promotion pairs, broadcasting corners, noncontiguous and large
tensors), which torch's test_ops.py compares against NumPy references. OpInfos without a
``reference_inputs_func`` get one skipped record there (their sample inputs are the default run's).
``--limit N`` keeps the first N inputs per (OpInfo, dtype); 0 keeps all of them.

Kinds per sample: ``same``; ``differ`` (values, dtype or shape of an output); ``grad_differ``;
``chainrule_raised`` (torch ran); ``torch_raised``; ``both_raised``; ``skipped`` with a reason
(``missing`` op, ``closure`` when the rebuilt function still reaches real torch, a dtype or layout
chainrule does not have, ...).

How chainrule's callable is found: an OpInfo whose ``op`` is a public torch function or Tensor
method is looked up under the same path in chainrule (``torch.nn.functional.conv2d`` ->
``chainrule.nn.functional.conv2d``); one whose ``op`` is a lambda or wrapper in torch's test files is
rebuilt with its ``torch``/``F``/``np``-style globals bound to chainrule. Each sample is also run
through the OpInfo's ``method_variant`` (forward only, float32) where there is one.
"""

from __future__ import annotations

import argparse
import cmath
import collections
import contextlib
import functools
import itertools
import json
import os
import sys
import time
import types
import warnings
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_oracle import NotComparable, seeding_the_cpu_alone, time_limit, torch_tensor_to_chainrule  # noqa: E402

LEDGER = os.path.join(ROOT, "tests", "compat", "data", "torch_op_db_ledger.json")
REFERENCE_LEDGER = os.path.join(ROOT, "tests", "compat", "data", "torch_op_db_reference_ledger.json")
# --inputs: which of an OpInfo's generators draws the inputs
INPUTS = {"samples": "sample_inputs", "reference": "reference_inputs"}

SAMPLES_PER_DTYPE = 24    # torch's generators yield up to a few hundred; the first ones cover the shapes
SAMPLE_TIMEOUT_S = 10

# torch namespaces whose public objects are looked up under the same path in chainrule, in
# priority order (a function reachable under several names takes the first)
NAMESPACES = [
    ("", "torch"), ("nn.functional", "torch.nn.functional"), ("linalg", "torch.linalg"),
    ("special", "torch.special"), ("fft", "torch.fft"), ("signal.windows", "torch.signal.windows"),
    ("masked", "torch.masked"), ("Tensor", "torch.Tensor"), ("functional", "torch.functional"),
]

# OpInfos deliberately not run, each with why
SKIPPED_OPS = {
    "jiterator_": "CUDA jiterator kernels: no CPU op",
    "_refs.": "reference implementations, not public ops",
    "max_pool2d_with_indices_backward": "an internal aten backward kernel (torch.ops.aten), not public API",
    "chalf": "complex32 (chalf): NumPy has no complex32",
}
# OpInfos whose gradients are deliberately not compared, each with why (values still are)
GRADIENTS_NOT_COMPARED = {
    "as_strided_scatter": "torch 2.13's backward gives the input the gradient of the overwritten positions "
                          "(its own OpInfo marks test_fn_grad an expected failure; gradcheck fails); chainrule's "
                          "zeroes them and passes gradcheck",
}
# OpInfos whose gradient is not compared where the input is NaN: torch's SIMD loop (contiguous data,
# all but a short tail) and its scalar loop (strided data, the tail) disagree there, so torch's
# answer depends on the layout and the machine's vector width (chainrule gives the vectorised loop's,
# which contiguous tensors get: NaN for the elu family, 0 for hardtanh, relu6 and the shrinks)
_NAN_LAYOUT = "torch's gradient at NaN differs between its vectorised and scalar CPU loops"
GRADIENT_AT_NAN_NOT_COMPARED = {name: _NAN_LAYOUT for name in (
    "nn.functional.elu", "nn.functional.selu", "nn.functional.celu", "nn.functional.hardtanh",
    "nn.functional.relu6", "nn.functional.softshrink", "nn.functional.hardshrink")}
# ops returning uninitialised memory: their values are not compared
UNINITIALISED = {"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "empty_permuted"}
# dtypes sampled: forward for every one the op supports, gradients for float64 only
DTYPES = ("float32", "float64", "int64", "bool")


_GRAD_MODE_TOGGLES = {"_set_grad_enabled", "set_grad_enabled"}


class ReachedTorch(Exception):
    """The rebuilt function called real torch (a closure or default argument held a torch object)."""


class Unconvertible(Exception):
    """A sample holds something chainrule does not represent (a sparse layout, bfloat16, a Generator)."""


class SampleTimeout(Exception):
    pass


class Trial:
    """Converts torch values to chainrule values and finds chainrule's callable for an OpInfo."""

    def __init__(self):
        import torch

        import chainrule

        self.torch = torch
        self.chainrule = chainrule
        self._rebound = {}
        self._paths = {}
        for chainrule_prefix, torch_module in NAMESPACES:
            namespace = functools.reduce(getattr, torch_module.split(".")[1:], torch)
            for name in dir(namespace):
                if name.startswith("__") and torch_module != "torch.Tensor":
                    continue
                try:
                    obj = getattr(namespace, name)
                except Exception:
                    continue
                key = self._key(obj)
                if key is not None and key not in self._paths:
                    self._paths[key] = f"{chainrule_prefix}.{name}".lstrip(".")

        class _RefuseTorch(torch.overrides.TorchFunctionMode):
            def __torch_function__(mode, func, types_, args=(), kwargs=None):
                if getattr(func, "__name__", "") in _GRAD_MODE_TOGGLES:
                    # a torch sample generator being collected meanwhile restores its grad mode
                    return func(*args, **(kwargs or {}))
                raise ReachedTorch(getattr(func, "__name__", repr(func)))

        self._refuse_torch = _RefuseTorch

    @staticmethod
    def _key(obj):
        try:
            hash(obj)
        except TypeError:
            return None
        if isinstance(obj, (int, float, str, bool, type(None))):
            return None
        return ("obj", id(obj))

    # ---- values -------------------------------------------------------------------------------
    def dtype(self, torch_dtype):
        name = str(torch_dtype).split(".")[-1]
        if name in ("bfloat16", "complex32") or name.startswith(("float8", "float4", "q")) or name in {
                f"{sign}int{bits}" for sign in ("", "u") for bits in range(1, 8)}:
            raise Unconvertible(f"dtype {name}")
        dtype = getattr(self.chainrule, name, None)
        if dtype is None:
            raise Unconvertible(f"dtype {name}")
        return dtype

    def tensor(self, t, memo):
        """A chainrule tensor with ``t``'s dtype, values, strides and storage offset (over a copy of
        its storage, shared by the sample's tensors that share it in torch) and ``requires_grad``;
        one tensor passed twice stays one leaf."""
        if id(t) in memo:
            return memo[id(t)]
        self.dtype(t.dtype)  # the dtypes this trial leaves out, with their reason
        try:
            result = torch_tensor_to_chainrule(t, memo.setdefault("storages", {}))
        except NotComparable as reason:
            raise Unconvertible(str(reason)) from None
        memo[id(t)] = result
        return result

    def value(self, v, memo):
        torch, chainrule = self.torch, self.chainrule
        if isinstance(v, torch.Tensor):
            return self.tensor(v, memo)
        if isinstance(v, torch.dtype):
            return self.dtype(v)
        if isinstance(v, torch.device):
            return chainrule.device(str(v))
        if isinstance(v, torch.Size):
            return chainrule.Size(v)
        if isinstance(v, torch.memory_format):
            return getattr(chainrule, str(v).split(".")[-1])
        if isinstance(v, torch.layout):
            return getattr(chainrule, str(v).split(".")[-1])
        if isinstance(v, torch.Generator):
            raise Unconvertible("a torch.Generator argument")
        if isinstance(v, tuple) and hasattr(v, "_fields"):
            return type(v)(*(self.value(x, memo) for x in v))
        if isinstance(v, (list, tuple)):
            return type(v)(self.value(x, memo) for x in v)
        if isinstance(v, dict):
            return {k: self.value(x, memo) for k, x in v.items()}
        if isinstance(v, types.FunctionType):
            return self.rebind(v)
        return v

    # ---- callables ----------------------------------------------------------------------------
    def rebind(self, function):
        """``function`` rebuilt with its globals naming torch, F, ... bound to chainrule's."""
        if function in self._rebound:
            return self._rebound[function]
        # a placeholder first, so that helpers naming each other do not recurse forever
        self._rebound[function] = function
        chainrule = self.chainrule
        import chainrule.nn.functional as chainrule_functional

        torch = self.torch
        replacements = {}
        for name, value in function.__globals__.items():
            if value is torch:
                replacements[name] = chainrule
            elif value is torch.nn.functional:
                replacements[name] = chainrule_functional
            elif value is getattr(torch, "nn", None):
                replacements[name] = chainrule.nn
            elif isinstance(value, types.ModuleType) and value.__name__.startswith("torch."):
                path = value.__name__.split(".")[1:]
                try:
                    replacements[name] = functools.reduce(getattr, path, chainrule)
                except AttributeError:
                    pass
            elif (isinstance(value, types.FunctionType) and value is not function
                  and value.__module__.startswith("torch.testing")):
                # a helper of torch's test files (wrapper_set_seed, ...): bound to chainrule in turn
                replacements[name] = self._rebound.get(value) or self.rebind(value)
            elif self._key(value) in self._paths and not isinstance(value, types.ModuleType):
                resolved = self.resolve_path(self._paths[self._key(value)])
                if resolved is not None:
                    replacements[name] = resolved
        rebuilt = types.FunctionType(function.__code__, {**function.__globals__, **replacements},
                                     function.__name__, function.__defaults__, function.__closure__)
        rebuilt.__kwdefaults__ = function.__kwdefaults__
        self._rebound[function] = rebuilt
        return rebuilt

    def resolve_path(self, path):
        target = self.chainrule
        for part in path.split("."):
            target = getattr(target, part, None)
            if target is None:
                return None
        return target

    def resolve(self, torch_callable):
        """chainrule's counterpart of ``torch_callable``, and how it was found; None if missing."""
        if isinstance(torch_callable, functools.partial):
            inner, how = self.resolve(torch_callable.func)
            if inner is None:
                return None, how
            memo = {}
            return functools.partial(inner, *self.value(torch_callable.args, memo),
                                     **self.value(torch_callable.keywords, memo)), how
        key = self._key(torch_callable)
        if key in self._paths:
            path = self._paths[key]
            found = self.resolve_path(path)
            return found, path
        if isinstance(torch_callable, types.FunctionType) and torch_callable.__module__.startswith("torch.testing"):
            return self.rebind(torch_callable), "rebound " + torch_callable.__qualname__
        return None, f"unmapped {getattr(torch_callable, '__module__', '')}.{getattr(torch_callable, '__name__', '')}"

    @contextlib.contextmanager
    def chainrule_only(self):
        with self._refuse_torch():
            yield


# ---- comparing --------------------------------------------------------------------------------
def _leaves(value, torch, path="out"):
    """(path, leaf) pairs of a nested output; tensors, numbers and None are leaves."""
    if isinstance(value, (list, tuple)) and type(value).__name__ != "Size":
        out = [(f"{path}.len", len(value))]
        for i, item in enumerate(value):
            out += _leaves(item, torch, f"{path}[{i}]")
        return out
    return [(path, value)]


def _to_torch(value, torch):
    import numpy as np

    if hasattr(value, "numpy") and hasattr(value, "grad_fn"):
        # (a conjugate view, as torch returns ifft's of a real input, is resolved as torch's side is below)
        array = np.array(value.detach().resolve_conj().numpy(), order="C")
        if array.dtype.name == "bfloat16":  # ml_dtypes' bfloat16, which torch.from_numpy does not take
            return torch.from_numpy(array.astype(np.float32)).to(torch.bfloat16)
        return torch.from_numpy(array)
    return value


def compare_outputs(expected, actual, torch, values=True, tolerance=None):
    """None when ``actual`` (chainrule) agrees with ``expected`` (torch), else why not; with
    ``values=False`` only tensors' dtypes and shapes are compared; ``tolerance``: assert_close's
    ``atol``/``rtol`` in place of its defaults."""
    expected_leaves, actual_leaves = _leaves(expected, torch), _leaves(actual, torch)
    if len(expected_leaves) != len(actual_leaves):
        return f"structure: torch {len(expected_leaves)} leaves, chainrule {len(actual_leaves)}"
    for (path, e), (_, a) in zip(expected_leaves, actual_leaves):
        if isinstance(e, torch.Tensor):
            if not (hasattr(a, "grad_fn") and hasattr(a, "numpy")):
                return f"{path}: torch gave a tensor, chainrule {type(a).__name__}"
            if str(a.dtype).split(".")[-1] != str(e.dtype).split(".")[-1]:
                return f"{path}: dtype torch {e.dtype}, chainrule {a.dtype}"
            if tuple(a.shape) != tuple(e.shape):
                return f"{path}: shape torch {tuple(e.shape)}, chainrule {tuple(a.shape)}"
            if not values:
                continue
            e_resolved = e.detach().resolve_conj().resolve_neg()
            try:
                torch.testing.assert_close(_to_torch(a, torch), e_resolved, equal_nan=True, check_device=False,
                                           **(tolerance or {}))
            except AssertionError as error:
                return f"{path}: " + " ".join(str(error).split("\n")[:4])
        elif isinstance(e, torch.Size):
            if not isinstance(a, tuple) or tuple(e) != tuple(a):
                return f"{path}: torch {tuple(e)}, chainrule {a}"
        elif isinstance(e, (bool, int, float, complex)) and not isinstance(a, (str, type(None))):
            try:
                a_value = a.item() if hasattr(a, "item") else a
                if isinstance(e, bool) or isinstance(e, int):
                    ok = a_value == e
                else:
                    # (cmath: a complex number too, which math.isnan refuses)
                    ok = (cmath.isnan(e) and cmath.isnan(a_value)) or cmath.isclose(a_value, e, rel_tol=1.3e-6,
                                                                                    abs_tol=1e-5)
            except Exception:
                ok = False
            if not ok:
                return f"{path}: torch {e!r}, chainrule {a!r}"
        elif isinstance(e, torch.dtype):
            if str(e).split(".")[-1] != str(a).split(".")[-1]:
                return f"{path}: torch {e}, chainrule {a}"
        elif e is None or isinstance(e, str):
            if a != e:
                return f"{path}: torch {e!r}, chainrule {a!r}"
    return None


def _differentiable_leaves(value, torch):
    return [leaf for _, leaf in _leaves(value, torch)
            if isinstance(leaf, torch.Tensor) and leaf.requires_grad
            and (leaf.is_floating_point() or leaf.is_complex())]


def _has_autograd_edge(t, torch):
    """False for the leaf views that torch's ``SampleInput.noncontiguous()`` makes under no_grad:
    they say ``requires_grad`` but autograd gives them no edge (their gradient is always None)."""
    return t.view_as(t).grad_fn.next_functions[0][0] is not None


def _cotangent(seed, t, torch):
    generator = torch.Generator().manual_seed(seed)
    if t.is_complex():
        return torch.randn(t.shape, dtype=t.dtype, generator=generator)
    return torch.randn(t.shape, dtype=t.dtype, generator=generator)


# ---- running ----------------------------------------------------------------------------------
def _short(error):
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:300]}"


def run_sample(trial, op, function, sample, dtype_name, seed, want_grad, process_output, uninitialised=False,
               tolerance=None):
    """One sample on both; returns (kind, detail). ``uninitialised``: the op returns uninitialised
    memory, so only dtypes and shapes are compared; ``tolerance``: see ``compare_outputs``."""
    torch, chainrule = trial.torch, trial.chainrule
    memo = {}
    try:
        chainrule_input = trial.value(sample.input, memo)
        chainrule_args = trial.value(tuple(sample.args), memo)
        chainrule_kwargs = trial.value(dict(sample.kwargs), memo)
    except Unconvertible as error:
        return "skipped", f"unconvertible: {error}"
    torch_inputs = [v for _, v in _leaves((sample.input, tuple(sample.args), tuple(sample.kwargs.values())), torch)
                    if isinstance(v, torch.Tensor) and v.requires_grad]
    unreachable = sum(1 for t in torch_inputs if not _has_autograd_edge(t, torch))
    torch_inputs = [t for t in torch_inputs if _has_autograd_edge(t, torch)]

    torch_error = chainrule_error = None
    torch.manual_seed(seed)
    try:
        with time_limit(SAMPLE_TIMEOUT_S, SampleTimeout):
            expected = op.op(sample.input, *sample.args, **sample.kwargs)
            expected = sample.output_process_fn_grad(expected)
    except SampleTimeout:
        return "skipped", "torch took too long"
    except Exception as error:
        torch_error = error
    torch.manual_seed(seed)
    chainrule.manual_seed(seed)
    try:
        with time_limit(SAMPLE_TIMEOUT_S, SampleTimeout), trial.chainrule_only():
            actual = function(chainrule_input, *chainrule_args, **chainrule_kwargs)
            actual = process_output(actual)
    except ReachedTorch as error:
        return "skipped", f"closure: reached torch.{error}"
    except SampleTimeout as error:
        chainrule_error = error
    except Exception as error:
        chainrule_error = error
    if torch_error is not None and chainrule_error is not None:
        return "both_raised", f"torch {_short(torch_error)} | chainrule {_short(chainrule_error)}"
    if torch_error is not None:
        return "torch_raised", _short(torch_error)
    if chainrule_error is not None:
        return "chainrule_raised", _short(chainrule_error)

    mismatch = compare_outputs(expected, actual, torch, values=not uninitialised, tolerance=tolerance)
    if mismatch is not None:
        return "differ", mismatch
    if want_grad and unreachable and not torch_inputs:
        return "same", "gradient not compared: torch's noncontiguous sample has no autograd edge"
    if not (want_grad and torch_inputs):
        return "same", ""
    if op.name in GRADIENTS_NOT_COMPARED:
        return "same", f"gradient not compared: {GRADIENTS_NOT_COMPARED[op.name]}"

    # one seeded cotangent per differentiable output, the same on both
    torch_outputs = _differentiable_leaves(expected, torch)
    if not torch_outputs:
        return "same", ""
    positions = [i for i, (_, leaf) in enumerate(_leaves(expected, torch))
                 if any(leaf is out for out in torch_outputs)]
    chainrule_leaves = [leaf for _, leaf in _leaves(actual, chainrule)]
    chainrule_outputs = [chainrule_leaves[i] for i in positions]
    cotangents = [_cotangent(seed + i, out, torch) for i, out in enumerate(torch_outputs)]
    try:
        expected_grads = torch.autograd.grad(torch_outputs, torch_inputs, cotangents, allow_unused=True)
    except Exception as error:
        return "same", f"torch backward raised ({_short(error)})"
    chainrule_inputs = [memo[id(t)] for t in torch_inputs]
    try:
        chainrule_cotangents = [trial.value(c, {}) for c in cotangents]
    except Unconvertible as error:
        return "same", f"gradient not compared: {error}"
    try:
        with time_limit(SAMPLE_TIMEOUT_S, SampleTimeout), trial.chainrule_only():
            if not all(getattr(out, "requires_grad", False) for out in chainrule_outputs):
                raise RuntimeError("an output that requires grad in torch does not in chainrule")
            actual_grads = chainrule.autograd.grad(chainrule_outputs, chainrule_inputs, chainrule_cotangents,
                                                   allow_unused=True)
    except ReachedTorch as error:
        return "skipped", f"closure in backward: reached torch.{error}"
    except Exception as error:
        return "grad_raised", _short(error)
    for i, (e, a) in enumerate(zip(expected_grads, actual_grads)):
        if e is None and a is None:
            continue
        if e is None:
            e = torch.zeros_like(torch_inputs[i])
        if a is None:
            a = chainrule.zeros(tuple(torch_inputs[i].shape), dtype=chainrule_inputs[i].dtype)
        if op.name in GRADIENT_AT_NAN_NOT_COMPARED and e.shape == torch_inputs[i].shape:
            at_nan = torch_inputs[i].detach().isnan()
            e, a = e.masked_fill(at_nan, 0), _to_torch(a, torch).masked_fill(at_nan, 0)
        mismatch = compare_outputs(e, a, torch, tolerance=tolerance)
        if mismatch is not None:
            return "grad_differ", f"input {i}: {mismatch}"
    return "same", ""


def entry_name(op):
    return op.name + (f".{op.variant_test_name}" if op.variant_test_name else "")


def _draw(op, inputs, dtype, want_grad, limit, count_samples=True):
    """The first ``limit`` (None: all) inputs of ``op`` in ``dtype``, and how many of the drawn
    ones are among its sample inputs (the rest are reference inputs' extensions; not counted,
    and taken as all, without ``count_samples``)."""
    generator = getattr(op, INPUTS[inputs])("cpu", dtype, requires_grad=want_grad)
    samples = list(itertools.islice(generator, limit))
    if hasattr(generator, "close"):
        generator.close()  # now, not when collected (inside a chainrule call)
    if inputs == "samples" or not count_samples:
        return samples, len(samples)
    # torch's reference generators open with the sample inputs; counted, not assumed
    plain = op.sample_inputs_func(op, "cpu", dtype, False)
    return samples, sum(1 for _ in itertools.islice(plain, len(samples)))


def _draw_quietly(*args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # drawn before any op runs: each op call reseeds torch's generator
        return _draw(*args)


def run_op(trial, op, dtypes=DTYPES, limit=SAMPLES_PER_DTYPE, plan=None, inputs="samples"):
    """Every (dtype, variant) of one OpInfo; returns a list of per-sample records. ``plan``, when
    given, maps ``(dtype, variant)`` to the sample indices to run (the CI ledger's selection).
    ``inputs`` is "samples" (``op.sample_inputs``) or "reference" (``op.reference_inputs``, whose
    records say whether each input is ``extended`` beyond the sample inputs); ``limit`` None or 0
    draws every input."""
    torch = trial.torch
    name = entry_name(op)
    for prefix, reason in SKIPPED_OPS.items():
        if name.startswith(prefix) or name == prefix:
            return [{"op": name, "dtype": "-", "variant": "function", "index": -1, "kind": "skipped",
                     "detail": reason}]
    if inputs == "reference" and op.reference_inputs_func is None:
        return [{"op": name, "dtype": "-", "variant": "function", "index": -1, "kind": "skipped",
                 "detail": "no reference_inputs_func: its sample inputs are the default run's"}]
    function, how = trial.resolve(op.op)
    if function is None:
        return [{"op": name, "dtype": "-", "variant": "function", "index": -1, "kind": "skipped",
                 "detail": f"missing: {how}"}]
    method, method_how = (None, None)
    if op.method_variant is not None:
        method_name = getattr(op.method_variant, "__name__", None)
        if method_name and hasattr(trial.chainrule.Tensor, method_name):
            method = getattr(trial.chainrule.Tensor, method_name)
            method_how = method_name
        elif isinstance(op.method_variant, types.FunctionType):
            method, method_how = trial.resolve(op.method_variant)
    records = []
    supported = {str(d).split(".")[-1] for d in op.supported_dtypes("cpu")}
    for dtype_name in dtypes:
        if dtype_name not in supported:
            continue
        wanted = None
        if plan is not None:
            wanted = {variant: plan.get((dtype_name, variant), set()) for variant in ("function", "method")}
            if not any(wanted.values()):
                continue
            limit = max(max(indices, default=-1) for indices in wanted.values()) + 1
        dtype = getattr(torch, dtype_name)
        want_grad = dtype_name == "float64" and op.supports_autograd
        seed = zlib.crc32(f"{name}/{dtype_name}".encode())
        torch.manual_seed(seed)
        try:
            samples, sample_count = _draw_quietly(op, inputs, dtype, want_grad, limit or None, plan is None)
        except Exception as error:
            if not want_grad:
                records.append({"op": name, "dtype": dtype_name, "variant": "function", "index": -1,
                                "kind": "skipped", "detail": f"{INPUTS[inputs]} raised {_short(error)}"})
                continue
            # some of torch's generators build integer tensors with requires_grad (addcmul's
            # promotion pairs) and refuse; the values are still compared
            records.append({"op": name, "dtype": dtype_name, "variant": "function", "index": -1,
                            "kind": "skipped", "detail": f"gradients not compared: {INPUTS[inputs]} with "
                                                         f"requires_grad raised {_short(error)}"})
            want_grad = False
            torch.manual_seed(seed)
            try:
                samples, sample_count = _draw_quietly(op, inputs, dtype, want_grad, limit or None, plan is None)
            except Exception as error:
                records.append({"op": name, "dtype": dtype_name, "variant": "function", "index": -1,
                                "kind": "skipped", "detail": f"{INPUTS[inputs]} raised {_short(error)}"})
                continue
        for index, sample in enumerate(samples):
            process = sample.output_process_fn_grad
            if isinstance(process, types.FunctionType) and process.__module__.startswith("torch.testing"):
                process = trial.rebind(process)
            variants = [("function", op, function, want_grad, how)]
            if method is not None and dtype_name == "float32":
                variants.append(("method", types.SimpleNamespace(op=op.method_variant), method, False, method_how))
            for variant, torch_op, chainrule_callable, grad, found in variants:
                if wanted is not None and index not in wanted[variant]:
                    continue
                started = time.process_time()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        kind, detail = run_sample(trial, torch_op, chainrule_callable, sample, dtype_name,
                                                  seed + index, grad, process, op.name in UNINITIALISED)
                    except Exception as error:
                        kind, detail = "differ", f"comparison failed: {_short(error)}"
                record = {"op": name, "dtype": dtype_name, "variant": variant, "index": index,
                          "kind": kind, "detail": detail, "how": found}
                if inputs == "reference":
                    record["extended"] = index >= sample_count
                    record["sample_seconds"] = round(time.process_time() - started, 4)  # CPU, not wall
                records.append(record)
    return records


KINDS = ("same", "differ", "grad_differ", "grad_raised", "chainrule_raised", "torch_raised", "both_raised",
         "skipped")


def summarise(records):
    per_op = collections.defaultdict(collections.Counter)
    for record in records:
        per_op[record["op"]][record["kind"]] += 1
    totals = collections.Counter(record["kind"] for record in records)
    return per_op, totals


def write_reports(records, out, elapsed):
    per_op, totals = summarise(records)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "records.json"), "w") as handle:
        json.dump(records, handle, indent=0)
    failing = {op: counts for op, counts in per_op.items()
               if any(counts[k] for k in ("differ", "grad_differ", "grad_raised", "chainrule_raised"))}
    ranked = sorted(failing, key=lambda op: -sum(failing[op][k] for k in
                                                 ("differ", "grad_differ", "grad_raised", "chainrule_raised")))
    lines = ["# torch OpInfo trial", "", f"{len(per_op)} OpInfos, {len(records)} samples, {elapsed:.0f} s", "",
             "| kind | samples |", "|---|---|"]
    lines += [f"| {kind} | {totals[kind]} |" for kind in KINDS]
    lines += ["", "## Failing OpInfos (most failing samples first)", "",
              "| op | " + " | ".join(KINDS) + " | first failure |", "|---" * (len(KINDS) + 2) + "|"]
    first = {}
    for record in records:
        if record["kind"] in ("differ", "grad_differ", "grad_raised", "chainrule_raised"):
            first.setdefault(record["op"], f"{record['dtype']} {record['variant']} #{record['index']} "
                                           f"{record['kind']}: {record['detail']}")
    for op in ranked:
        counts = per_op[op]
        cell = first[op].replace("|", "/")[:240]
        lines.append(f"| {op} | " + " | ".join(str(counts[k]) for k in KINDS) + f" | {cell} |")
    skipped = collections.Counter()
    for record in records:
        if record["kind"] == "skipped":
            skipped[record["detail"].split(":")[0] + (":" + record["detail"].split(":")[1][:60]
                                                     if record["detail"].startswith(("missing", "closure")) else "")] += 1
    lines += ["", "## Skipped samples by reason", "", "| reason | samples |", "|---|---|"]
    lines += [f"| {reason.replace('|', '/')} | {count} |" for reason, count in skipped.most_common()]
    with open(os.path.join(out, "summary.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    summary = {"elapsed_s": round(elapsed, 1), "totals": dict(totals),
               "per_op": {op: dict(counts) for op, counts in sorted(per_op.items())}}
    with open(os.path.join(out, "summary.json"), "w") as handle:
        json.dump(summary, handle, indent=1, sort_keys=True)
    print(f"{len(per_op)} OpInfos, {len(records)} samples, {elapsed:.0f} s")
    for kind in KINDS:
        print(f"  {kind:18s} {totals[kind]:6d}")
    agreeing = sum(1 for counts in per_op.values() if counts["same"] and set(counts) <= {"same", "skipped",
                                                                                          "torch_raised"})
    print(f"  OpInfos whose every run sample agrees: {agreeing}")


def load_op_db():
    from torch.testing._internal.common_methods_invocations import op_db

    return op_db


@contextlib.contextmanager
def _without_test_function_lookup():
    """torch's sample iterators look for the running unittest method by walking the whole stack
    with ``inspect.stack()`` for every sample list (most of a ledger run's time, and always None
    here: these are not unittest methods); skip that walk while the trial draws samples."""
    from torch.testing._internal import common_utils

    original = common_utils.extract_test_fn
    common_utils.extract_test_fn = lambda: None
    try:
        yield
    finally:
        common_utils.extract_test_fn = original


def command_run(args):
    import numpy as np
    import torch

    torch.set_num_threads(1)
    np.random.seed(0)
    trial = Trial()
    start = time.time()
    with _without_test_function_lookup():
        records = _run_all(trial, args)
    write_reports(records, args.out, time.time() - start)


def _run_all(trial, args):
    records = []
    for op in load_op_db():
        name = entry_name(op)
        if args.filter and args.filter not in name:
            continue
        if args.only and name not in args.only.split(","):
            continue
        op_start = time.time()
        op_records = run_op(trial, op, limit=args.limit, inputs=args.inputs)
        for record in op_records:
            record["seconds"] = round((time.time() - op_start) / len(op_records), 4)
        records += op_records
        if args.verbose:
            print(f"{name}: {time.time() - op_start:.2f} s", file=sys.stderr)
    return records


def command_show(args):
    """Print one sample of one OpInfo and what torch and chainrule return for it."""
    import torch

    trial = Trial()
    op = next(op for op in load_op_db() if entry_name(op) == args.op)
    dtype = getattr(torch, args.dtype)
    seed = zlib.crc32(f"{args.op}/{args.dtype}".encode())
    torch.manual_seed(seed)
    want_grad = args.dtype == "float64" and op.supports_autograd
    sample = _draw(op, args.inputs, dtype, want_grad, args.index + 1)[0][args.index]

    def describe(v):
        if isinstance(v, torch.Tensor):
            return f"tensor{tuple(v.shape)} {v.dtype} stride={v.stride()} offset={v.storage_offset()}"
        if isinstance(v, (list, tuple)):
            return type(v)(describe(x) for x in v)
        return v

    print("input:", describe(sample.input))
    print("args:", describe(tuple(sample.args)))
    print("kwargs:", {k: describe(v) for k, v in sample.kwargs.items()})
    function, how = trial.resolve(op.op)
    print("chainrule callable:", how)
    process = sample.output_process_fn_grad
    if isinstance(process, types.FunctionType) and process.__module__.startswith("torch.testing"):
        process = trial.rebind(process)
    print(run_sample(trial, op, function, sample, args.dtype, seed + args.index, want_grad, process,
                     op.name in UNINITIALISED))


# the CI ledger's budget: per OpInfo, the first agreeing samples of each (dtype, variant)
LEDGER_BUDGET = {("float64", "function"): 2, ("float32", "function"): 1, ("int64", "function"): 1,
                 ("bool", "function"): 1, ("float32", "method"): 1}
LEDGER_SLOW_OP_S = 1.5  # OpInfos whose samples took longer than this in the trial stay out of CI
# the reference-input ledger's budget: only inputs beyond the sample inputs (which the first ledger
# covers), and fewer of them, as drawing a late reference input draws every one before it
REFERENCE_LEDGER_BUDGET = {("float64", "function"): 1}  # values and gradients; the CI budget holds one
# an OpInfo has hundreds of reference inputs, some of them large, so its whole time says little:
# inputs that took longer than this (CPU seconds, both libraries, gradients included) stay out of CI
REFERENCE_LEDGER_SLOW_INPUT_S = 0.004


def command_ledger(args):
    """From the run at ``--out``: per OpInfo, the first samples of each (dtype, variant) that agreed,
    within LEDGER_BUDGET, for tests/compat/test_torch_op_db.py to keep agreeing; with ``--inputs
    reference``, the first agreeing extended reference inputs within REFERENCE_LEDGER_BUDGET, for
    tests/compat/test_torch_op_db_reference.py."""
    reference = args.inputs == "reference"
    budget, path = (REFERENCE_LEDGER_BUDGET, REFERENCE_LEDGER) if reference else (LEDGER_BUDGET, LEDGER)
    with open(os.path.join(args.out, "records.json")) as handle:
        records = json.load(handle)
    seconds = collections.Counter()
    for record in records:
        seconds[record["op"]] += record.get("seconds", 0.0)
    ledger = collections.defaultdict(dict)
    for record in records:
        key = (record["dtype"], record["variant"])
        too_slow = (record.get("sample_seconds", 0.0) > REFERENCE_LEDGER_SLOW_INPUT_S if reference
                    else seconds[record["op"]] > LEDGER_SLOW_OP_S)
        if record["kind"] != "same" or key not in budget or too_slow:
            continue
        if reference and not record.get("extended"):
            continue
        chosen = ledger[record["op"]].setdefault(f"{key[0]}/{key[1]}", [])
        if len(chosen) < budget[key]:
            chosen.append(record["index"])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(dict(sorted(ledger.items())), handle, indent=0, sort_keys=True)
        handle.write("\n")
    total = sum(len(indices) for entry in ledger.values() for indices in entry.values())
    print(f"{total} agreeing samples of {len(ledger)} OpInfos -> {os.path.relpath(path, ROOT)}")


def replay_ledger(ledger: dict, trial, run) -> list:
    """Every op_db OpInfo a trial's ledger names, run again as ``run(trial, op, entry)`` (its records);
    the records that are not ``same``. The op_db trials' CI ledger tests share this walk."""
    import torch

    torch.set_num_threads(1)
    failures = []
    with _without_test_function_lookup(), seeding_the_cpu_alone():
        for op in load_op_db():
            entry = ledger.get(entry_name(op))
            if entry:
                failures += [record for record in run(trial, op, entry) if record["kind"] != "same"]
    return failures


def run_ledger(ledger: dict, inputs: str = "samples") -> list:
    """Run the ledger's samples (drawn by ``inputs``, as the ledger was); the records of those that
    no longer agree."""
    def run(trial, op, entry):
        plan = {tuple(key.split("/")): set(indices) for key, indices in entry.items()}
        return [record for record in run_op(trial, op, plan=plan, inputs=inputs)
                if not record["detail"].startswith("gradients not compared")]

    return replay_ledger(ledger, Trial(), run)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--out", required=True)
    run.add_argument("--filter", default="")
    run.add_argument("--only", default="", help="comma-separated exact OpInfo names")
    run.add_argument("--limit", type=int, default=SAMPLES_PER_DTYPE, help="inputs per (OpInfo, dtype); 0: all")
    run.add_argument("--inputs", choices=INPUTS, default="samples")
    run.add_argument("--verbose", action="store_true")
    run.set_defaults(handler=command_run)
    show = sub.add_parser("show")
    show.add_argument("op")
    show.add_argument("dtype")
    show.add_argument("index", type=int)
    show.add_argument("--inputs", choices=INPUTS, default="samples")
    show.set_defaults(handler=command_show)
    ledger = sub.add_parser("ledger")
    ledger.add_argument("--out", required=True)
    ledger.add_argument("--inputs", choices=INPUTS, default="samples")
    ledger.set_defaults(handler=command_ledger)
    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
