"""Drive torch's own custom-operator database (``torch.testing._internal.custom_op_db``) on torch and on chainrule.

The operators of that file (numpy_cube, numpy_mul, numpy_sort, numpy_take, numpy_nonzero, numpy_nms,
numpy_view_copy, numpy_cat, numpy_split_copy, ...) are defined with ``torch.library.custom_op``,
``register_fake``, ``register_autograd`` and ``register_vmap``. The trial builds chainrule's twins from
torch's own source (read with ``inspect.getsource``, its imports dropped, executed where ``torch`` is
chainrule and ``np`` NumPy; the ``custom_op_db`` list is read with a stand-in OpInfo that keeps each
entry's name and ``op``), then for every OpInfo of torch's ``custom_op_db`` and each dtype runs the
OpInfo's own samples (drawn from torch, converted with tools/torch_oracle.py) on both libraries:

* ``schema``: the operator's schema text, and ``torch.ops._torch_testing.<op>.default`` reaching it;
* ``forward``: values, dtypes, shapes and strides of every output (tuples, lists and ints too);
* ``backward``: a seeded cotangent per differentiable output, every input's gradient (vjp);
* ``double_backward`` (float64): the gradient of ⟨gradients, seeded vector⟩, recorded with create_graph;
* ``gradcheck`` (float64): ``autograd.gradcheck`` and ``gradgradcheck`` pass or raise on both;
* ``func_grad`` and ``vmap_grad`` (float64): chainrule's ``func.grad`` and ``func.vmap(func.grad)`` of the
  sum of the floating outputs, against ``torch.autograd.grad`` (per batch member): torch 2.13's own
  torch.func refuses custom ops with register_autograd (its generated Function has no setup_context);
* ``vmap``: ``torch.func.vmap`` over a batch of two (the sample's tensors and a shifted copy), through the
  op's ``register_vmap`` rule, values and the error where the rule refuses;
* ``meta``: the op on ``device='meta'`` inputs (its fake kernel): output shapes and dtypes, or the error;
* ``opcheck``: ``torch.library.opcheck``'s schema, autograd-registration and fake-tensor tests, each result
  (not the aot_dispatch tests: chainrule has no ahead-of-time compiler and reports them SKIPPED);
* ``call_errors``: the op called with a missing argument and with a string for a Tensor: type and message.

Then the file's mechanical operators (``source0``..``source5``: fake kernels registered through
``register_fake(..., lib=)``) on meta and CPU inputs, and a few custom-op definitions torch refuses
(``schema_errors``: mutates_args that name no argument or disagree with ``schema=``, missing annotations,
bad names, an output aliasing its input, an undeclared mutation caught by opcheck).

    python tools/torch_custom_op_trial.py run --out /tmp/customopdb [--filter Sort]

Writes ``DIR/results.json`` and ``DIR/summary.md`` and prints a count table per OpInfo. Kinds: ``same``,
``differ``, ``chainrule_raised``, ``torch_raised`` (torch raised, chainrule did not or raised another
type), ``skipped`` (with the reason). Deterministic: torch's sample functions are seeded per entry.
"""



import argparse
import ast
import collections
import functools
import inspect
import json
import os
import sys
import traceback
import typing
import warnings
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from torch_oracle import NotComparable, time_limit, torch_tensor_to_chainrule  # noqa: E402

import chainrule  # noqa: E402

DTYPES = ("float32", "float64", "float16", "int64", "int32", "uint8", "bool")
ALL_CHECKS = ("schema", "forward", "backward", "double_backward", "gradcheck", "func_grad", "vmap", "vmap_dims",
              "vmap_grad", "meta", "opcheck", "call_errors")
OPCHECK_TESTS = ("test_schema", "test_autograd_registration", "test_faketensor")
TOLERANCE = {"float16": dict(rtol=1e-3, atol=1e-3), "float32": dict(rtol=1e-5, atol=1e-6),
             "float64": dict(rtol=1e-10, atol=1e-12)}
SAMPLE_SECONDS = 20


def _torch():
    import torch
    from torch.testing._internal import custom_op_db
    return torch, custom_op_db


# ------------------------------------------------------------------ chainrule's twins of the operators
class _RecordedOpInfo:
    """Stands in for OpInfo while torch's ``custom_op_db`` list is executed: keeps name and op."""

    def __init__(self, name, op=None, **options):
        self.name, self.op, self.options = name, op, options


def build_twins() -> dict:
    """Execute custom_op_db.py's source with ``torch`` bound to chainrule: returns its namespace,
    with ``custom_op_db`` a list of _RecordedOpInfo and ``_definition_errors`` what failed to run
    (statement line -> error)."""
    _, module = _torch()
    tree = ast.parse(inspect.getsource(module))
    tree.body = [node for node in tree.body if not isinstance(node, (ast.Import, ast.ImportFrom))]
    namespace = {"__name__": "custom_op_db_twins", "torch": chainrule, "np": np, "functools": functools,
                 "Tensor": chainrule.Tensor, "Number": chainrule.types.Number,
                 **{name: getattr(typing, name) for name in typing.__all__},
                 "OpInfo": _RecordedOpInfo, "SampleInput": None, "make_tensor": chainrule.testing.make_tensor,
                 "all_types_and": lambda *dtypes: dtypes}
    # the sample functions imported from autograd_function_db: torch's samples are used instead
    namespace.update(dict.fromkeys([name for node in ast.parse(inspect.getsource(module)).body
                                    if isinstance(node, ast.ImportFrom) for name in (a.name for a in node.names)
                                    if name.startswith("sample_inputs")]))
    errors = {}
    module_name = namespace["__name__"]
    sys.modules.setdefault(module_name, type(sys)(module_name))
    for node in tree.body:
        # torch's file name: the messages that name a kernel's source line name the same one
        code = compile(ast.Module([node], []), inspect.getsourcefile(module), "exec")
        try:
            exec(code, namespace)
        except Exception as error:  # noqa: BLE001 - each statement's failure is a finding
            errors[node.lineno] = f"{type(error).__name__}: {error}"
    namespace["_definition_errors"] = errors
    return namespace


# ------------------------------------------------------------------ conversion and comparison
def _map_structure(value, on_tensor, tensor_type):
    if isinstance(value, tensor_type):
        return on_tensor(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_map_structure(v, on_tensor, tensor_type) for v in value)
    if isinstance(value, dict):
        return {k: _map_structure(v, on_tensor, tensor_type) for k, v in value.items()}
    return value


def _leaves(value, tensor_type) -> list:
    found = []
    _map_structure(value, found.append, tensor_type)
    return found


class Converted:
    """A torch sample and its chainrule twin, torch tensor -> chainrule tensor kept one to one."""

    def __init__(self, torch, sample):
        self.torch = torch
        self.storages, self.twins = {}, {}
        self.torch_call = (sample.input, list(sample.args), dict(sample.kwargs))
        self.chainrule_call = _map_structure(self.torch_call, self._convert, torch.Tensor)

    def _convert(self, tensor):
        if id(tensor) not in self.twins:
            self.twins[id(tensor)] = torch_tensor_to_chainrule(tensor, self.storages)
        return self.twins[id(tensor)]

    def leaves(self):
        """(torch leaf, chainrule leaf) of every input tensor that requires grad."""
        pairs = []
        for tensor in _leaves(self.torch_call, self.torch.Tensor):
            if tensor.requires_grad and all(tensor is not t for t, _ in pairs):
                pairs.append((tensor, self.twins[id(tensor)]))
        return pairs


def call(op, arguments):
    first, args, kwargs = arguments
    return op(first, *args, **kwargs)


def _as_numpy(tensor):
    array = tensor.detach()
    if array.device.type == "meta":
        return None
    return np.asarray(array.cpu().numpy() if hasattr(array, "cpu") else array.numpy())


def compare(torch, theirs, ours, dtype_name, what="output", metadata_only=False) -> str:
    """'' when equal, else what differs."""
    if isinstance(theirs, torch.Tensor):
        if not isinstance(ours, chainrule.Tensor):
            return f"{what}: torch gives a Tensor, chainrule {type(ours).__name__}"
        if str(theirs.dtype).rpartition(".")[2] != str(ours.dtype).rpartition(".")[2]:
            return f"{what}: dtype {theirs.dtype} vs {ours.dtype}"
        if tuple(theirs.shape) != tuple(ours.shape):
            return f"{what}: shape {tuple(theirs.shape)} vs {tuple(ours.shape)}"
        if theirs.device.type != ours.device.type:
            return f"{what}: device {theirs.device} vs {ours.device}"
        if metadata_only:
            return ""
        if theirs.numel() > 1 and tuple(theirs.stride()) != tuple(ours.stride()):
            return f"{what}: strides {theirs.stride()} vs {ours.stride()}"
        a, b = _as_numpy(theirs), _as_numpy(ours)
        if a.dtype.kind in "biu":
            equal = np.array_equal(a, b)
        else:
            equal = np.allclose(a, b, equal_nan=True, **TOLERANCE.get(dtype_name, TOLERANCE["float32"]))
        if not equal:
            worst = np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))) if a.size else 0
            return f"{what}: values differ (max |diff| {worst:.3g})"
        return ""
    if isinstance(theirs, (list, tuple)):
        if not isinstance(ours, (list, tuple)) or type(theirs) is not type(ours) and not (
                isinstance(theirs, tuple) and isinstance(ours, tuple)):
            return f"{what}: torch gives {type(theirs).__name__}, chainrule {type(ours).__name__}"
        if len(theirs) != len(ours):
            return f"{what}: {len(theirs)} vs {len(ours)} items"
        for index, (a, b) in enumerate(zip(theirs, ours)):
            found = compare(torch, a, b, dtype_name, f"{what}[{index}]", metadata_only)
            if found:
                return found
        return ""
    if theirs is None and ours is None:
        return ""
    if theirs != ours or type(theirs) is not type(ours):
        return f"{what}: {theirs!r} vs {ours!r}"
    return ""


def _outcome(function):
    """(result, None) or (None, exception)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return function(), None
    except NotComparable:
        raise
    except Exception as error:  # noqa: BLE001 - the error is compared
        return None, error


def both(torch, torch_side, chainrule_side, dtype_name, *, messages=True, metadata_only=False,
         compare_results=None) -> tuple[str, str]:
    """Run both sides and classify: (kind, detail)."""
    theirs, their_error = _outcome(torch_side)
    ours, our_error = _outcome(chainrule_side)
    if their_error is not None or our_error is not None:
        return errors_agree(their_error, our_error, messages)
    detail = (compare_results or functools.partial(compare, torch, dtype_name=dtype_name,
                                                   metadata_only=metadata_only))(theirs, ours)
    return ("differ", detail) if detail else ("same", "")


def errors_agree(their_error, our_error, messages=True) -> tuple[str, str]:
    if their_error is None:
        return "chainrule_raised", f"{type(our_error).__name__}: {_short(our_error)}"
    if our_error is None:
        return "torch_raised", f"torch raised {type(their_error).__name__}: {_short(their_error)}; chainrule did not"
    if type(their_error).__name__ != type(our_error).__name__:
        return "torch_raised", (f"torch raised {type(their_error).__name__}: {_short(their_error)}; chainrule "
                                f"{type(our_error).__name__}: {_short(our_error)}")
    if messages and _first_line(their_error) != _first_line(our_error):
        return "differ", f"messages: {_first_line(their_error)!r} vs {_first_line(our_error)!r}"
    return "same", f"both raised {type(their_error).__name__}"


def _first_line(error) -> str:
    """The message's first line, the library's own names read as torch's (``chainrule.tensor.Tensor``
    in a printed signature is ``torch.Tensor``), and a dispatcher error's list of backends left out
    (torch lists its dispatch keys, chainrule the devices it has kernels for)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    text = text.replace("chainrule.tensor.Tensor", "torch.Tensor").replace("chainrule.", "torch.")
    return text.partition(" is only available for these backends")[0]


def _short(error) -> str:
    return _first_line(error)[:300]


# ------------------------------------------------------------------ the checks of one sample
def _float_outputs(torch, out, tensor_type):
    return [o for o in _leaves(out, tensor_type) if o.is_floating_point() and o.requires_grad]


def _cotangents(lib, outputs, rng):
    return [lib.from_numpy(rng.standard_normal(tuple(o.shape)).astype(str(o.dtype).rpartition(".")[2]))
            if lib.__name__ == "torch" else lib.from_numpy(rng.standard_normal(tuple(o.shape))).to(o.dtype)
            for o in outputs]


def check_backward(torch, op, twin, converted, dtype_name, seed, double):
    pairs = converted.leaves()
    if not pairs:
        raise NotComparable("no input requires grad")

    def run(lib, fn, arguments, leaves):
        out = call(fn, arguments)
        outputs = _float_outputs(lib, out, lib.Tensor)
        if not outputs:
            raise NotComparable("no differentiable output")
        rng = np.random.default_rng(seed)
        seeds = _cotangents(lib, outputs, rng)
        grads = lib.autograd.grad(outputs, leaves, seeds, allow_unused=True, create_graph=double)
        if not double:
            return list(grads)
        reached = [(g, leaf) for g, leaf in zip(grads, leaves) if g is not None and g.requires_grad]
        if not reached:
            return [None] * len(leaves)
        vectors = _cotangents(lib, [g for g, _ in reached], rng)
        total = sum((g * v).sum() for (g, _), v in zip(reached, vectors))
        return list(lib.autograd.grad(total, leaves, allow_unused=True))

    return both(torch, lambda: run(torch, op, converted.torch_call, [t for t, _ in pairs]),
                lambda: run(chainrule, twin, converted.chainrule_call, [c for _, c in pairs]), dtype_name)


def check_gradcheck(torch, op, twin, converted, dtype_name, wrapper):
    pairs = converted.leaves()
    if not pairs:
        raise NotComparable("no input requires grad")

    def run(lib, fn, arguments, leaves):
        def function(*inputs):
            replaced = {id(leaf): value for leaf, value in zip(leaves, inputs)}
            rebuilt = _map_structure(arguments, lambda t: replaced.get(id(t), t), lib.Tensor)
            out = call(fn, rebuilt) if wrapper is None else wrapper(fn, rebuilt)
            return tuple(o for o in _leaves(out, lib.Tensor) if o.is_floating_point())

        inputs = tuple(leaf.detach().requires_grad_(True) for leaf in leaves)
        first = lib.autograd.gradcheck(function, inputs, atol=1e-5, rtol=1e-3)
        second = lib.autograd.gradgradcheck(function, inputs, atol=1e-5, rtol=1e-3)
        return [bool(first), bool(second)]

    return both(torch, lambda: run(torch, op, converted.torch_call, [t for t, _ in pairs]),
                lambda: run(chainrule, twin, converted.chainrule_call, [c for _, c in pairs]), dtype_name,
                messages=False)


def _shifted(lib, tensor):
    """A second batch member: the tensor plus one (its logical not for bool), in its dtype."""
    if tensor.dtype == lib.bool:
        return ~tensor
    return tensor + 1


def check_vmap(torch, op, twin, converted, dtype_name, batch_dim=0, out_dims=0, nested=False):
    """vmap over a batch of two stacked at ``batch_dim``, results at ``out_dims``; ``nested``: a
    vmap of a vmap over a batch of two batches (the inner rule runs once per outer slice)."""
    def run(lib, fn, arguments):
        first, args, kwargs = arguments

        def batch(t):
            return lib.stack([t.detach(), _shifted(lib, t.detach())], dim=batch_dim if t.dim() else 0)

        first = _map_structure(first, batch, lib.Tensor)
        if nested:
            first = _map_structure(first, batch, lib.Tensor)
        args = [a.detach() if isinstance(a, lib.Tensor) else a for a in args]
        in_dims = (_map_structure(first, lambda t: batch_dim, lib.Tensor),) + (None,) * len(args)
        mapped = lib.func.vmap(lambda *a: fn(*a, **kwargs), in_dims=in_dims, out_dims=out_dims)
        if nested:
            mapped = lib.func.vmap(mapped, in_dims=in_dims, out_dims=out_dims)
        return mapped(first, *args)

    return both(torch, lambda: run(torch, op, converted.torch_call),
                lambda: run(chainrule, twin, converted.chainrule_call), dtype_name)


def _summed(lib, fn, args, kwargs):
    """first -> the sum of the op's floating outputs: a scalar function of the first argument."""
    def function(first):
        out = fn(first, *args, **kwargs)
        return sum(o.sum() for o in _leaves(out, lib.Tensor) if o.is_floating_point())
    return function


def _reference_grad(torch, function, first):
    """torch.autograd.grad of ``function`` at ``first`` (a tensor or a list of them)."""
    leaves = _map_structure(first, lambda t: t.detach().requires_grad_(True), torch.Tensor)
    flat = _leaves(leaves, torch.Tensor)
    grads = torch.autograd.grad(function(leaves), flat, allow_unused=True)
    grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, flat)]
    return grads if isinstance(first, list) else grads[0]


# torch 2.13's torch.func refuses custom ops with register_autograd (its generated autograd.Function
# defines forward(ctx, ...), not setup_context: "In order to use an autograd.Function with functorch
# transforms ... it must override the setup_context staticmethod"); chainrule's transforms run them,
# and their numbers are compared with torch.autograd.grad's
def check_func_grad(torch, op, twin, converted, dtype_name):
    def theirs():
        first, args, kwargs = converted.torch_call
        args = [a.detach() if isinstance(a, torch.Tensor) else a for a in args]
        return _reference_grad(torch, _summed(torch, op, args, kwargs), first)

    def ours():
        first, args, kwargs = converted.chainrule_call
        first = _map_structure(first, lambda t: t.detach(), chainrule.Tensor)
        args = [a.detach() if isinstance(a, chainrule.Tensor) else a for a in args]
        return chainrule.func.grad(_summed(chainrule, twin, args, kwargs))(first)

    return both(torch, theirs, ours, dtype_name)


def check_vmap_grad(torch, op, twin, converted, dtype_name):
    """vmap(grad(f)) over a batch of two against torch.autograd.grad of each member."""
    def theirs():
        first, args, kwargs = converted.torch_call
        args = [a.detach() if isinstance(a, torch.Tensor) else a for a in args]
        members = [first, _map_structure(first, lambda t: _shifted(torch, t.detach()), torch.Tensor)]
        grads = [_reference_grad(torch, _summed(torch, op, args, kwargs), member) for member in members]
        if isinstance(first, list):
            return [torch.stack(column) for column in zip(*grads)]
        return torch.stack(grads)

    def ours():
        first, args, kwargs = converted.chainrule_call
        first = _map_structure(first, lambda t: chainrule.stack([t.detach(), _shifted(chainrule, t.detach())]),
                               chainrule.Tensor)
        args = [a.detach() if isinstance(a, chainrule.Tensor) else a for a in args]
        return chainrule.func.vmap(chainrule.func.grad(_summed(chainrule, twin, args, kwargs)))(first)

    return both(torch, theirs, ours, dtype_name)


def check_meta(torch, op, twin, converted, dtype_name):
    def to_meta(lib, arguments):
        return _map_structure(arguments, lambda t: t.detach().to("meta"), lib.Tensor)

    return both(torch, lambda: call(op, to_meta(torch, converted.torch_call)),
                lambda: call(twin, to_meta(chainrule, converted.chainrule_call)), dtype_name, metadata_only=True)


def check_opcheck(torch, op, twin, converted, dtype_name):
    first, args, kwargs = converted.torch_call
    theirs = torch.library.opcheck(op, (first, *args), kwargs, test_utils=OPCHECK_TESTS, raise_exception=False)
    first, args, kwargs = converted.chainrule_call
    ours, error = _outcome(lambda: chainrule.library.opcheck(twin, (first, *args), kwargs, test_utils=OPCHECK_TESTS,
                                                             raise_exception=False))
    if error is not None:
        return "chainrule_raised", f"{type(error).__name__}: {_short(error)}"
    shown = {k: v if isinstance(v, str) else type(v).__name__ for k, v in theirs.items()}
    ours_shown = {k: v if isinstance(v, str) else type(v).__name__ for k, v in ours.items()}
    if shown != ours_shown:
        return "differ", f"torch {shown} vs chainrule {ours_shown}"
    return "same", ""


def check_call_errors(torch, op, twin, converted, dtype_name):
    def missing(lib, fn, arguments):
        return fn()

    def wrong_type(lib, fn, arguments):
        first, args, kwargs = arguments
        return fn("not a tensor", *args, **kwargs)

    results = [both(torch, lambda: missing(torch, op, converted.torch_call),
                    lambda: missing(chainrule, twin, converted.chainrule_call), dtype_name),
               both(torch, lambda: wrong_type(torch, op, converted.torch_call),
                    lambda: wrong_type(chainrule, twin, converted.chainrule_call), dtype_name)]
    for kind, detail in results:
        if kind != "same":
            return kind, detail
    return "same", ""


# ------------------------------------------------------------------ the trial
def _schema_text(op):
    overload = getattr(op, "default", op)
    return str(overload._schema)


def _row(rows, opinfo, entry, kind, detail=""):
    rows.append({"opinfo": opinfo, "entry": entry, "kind": kind, "detail": detail})


def _guarded(rows, opinfo, entry, check, *args):
    try:
        with time_limit(SAMPLE_SECONDS):
            kind, detail = check(*args)
    except NotComparable as reason:
        kind, detail = "skipped", str(reason)
    except Exception as error:  # noqa: BLE001 - the trial itself failed on this entry: reported
        kind, detail = "chainrule_raised", f"trial error {type(error).__name__}: {_short(error)} " + \
            traceback.format_exc(limit=-2).replace("\n", " | ")[-400:]
    _row(rows, opinfo, entry, kind, detail)


def trial(*, dtypes=DTYPES, checks=ALL_CHECKS, name_filter=None, extras=True) -> list:
    torch, module = _torch()
    twins = build_twins()
    rows = []
    for line, error in twins["_definition_errors"].items():
        _row(rows, "definitions", f"custom_op_db.py line {line}", "chainrule_raised", error)
    recorded = {info.name: info for info in twins["custom_op_db"]}
    for info in module.custom_op_db:
        if name_filter and name_filter not in info.name:
            continue
        twin_info = recorded.get(info.name)
        if twin_info is None:
            _row(rows, info.name, "definition", "chainrule_raised", "no twin was defined")
            continue
        op, twin = info.op, twin_info.op
        run_opinfo(rows, torch, info, op, twin, dtypes, checks)
    if extras and (not name_filter or name_filter in "extras"):
        run_mechanical(rows, torch, twins)
        run_schema_errors(rows, torch)
    return rows


def run_opinfo(rows, torch, info, op, twin, dtypes, checks):
    if "schema" in checks:
        _guarded(rows, info.name, "schema", lambda: both(
            torch, lambda: (_schema_text(op), str(getattr(torch.ops._torch_testing, op.__name__.split(".")[0])
                                                 .default._schema)),
            lambda: (_schema_text(twin), str(getattr(chainrule.ops._torch_testing, twin.__name__.split(".")[0])
                                             .default._schema)), "float32"))
    for dtype_name in dtypes:
        torch_dtype = getattr(torch, dtype_name)
        if torch_dtype not in info.dtypes:
            continue
        differentiable = info.supports_autograd and torch_dtype.is_floating_point and dtype_name != "float16"
        seed = zlib.crc32(f"{info.name}/{dtype_name}".encode())
        torch.manual_seed(seed)
        try:
            samples = list(info.sample_inputs("cpu", torch_dtype, requires_grad=differentiable))
        except Exception as error:  # noqa: BLE001
            _row(rows, info.name, f"{dtype_name}/samples", "skipped", f"torch's samples raised {error}")
            continue
        for index, sample in enumerate(samples):
            entry = f"{dtype_name}/{index}"
            try:
                converted = Converted(torch, sample)
            except NotComparable as reason:
                _row(rows, info.name, entry, "skipped", str(reason))
                continue
            if "forward" in checks:
                _guarded(rows, info.name, f"{entry}/forward", both, torch,
                         functools.partial(call, op, converted.torch_call),
                         functools.partial(call, twin, converted.chainrule_call), dtype_name)
            if differentiable and "backward" in checks:
                _guarded(rows, info.name, f"{entry}/backward", check_backward, torch, op, twin, converted,
                         dtype_name, seed, False)
            if differentiable and dtype_name == "float64" and "double_backward" in checks:
                _guarded(rows, info.name, f"{entry}/double_backward", check_backward, torch, op, twin, converted,
                         dtype_name, seed, True)
            if differentiable and dtype_name == "float64" and "gradcheck" in checks:
                wrapper = info.gradcheck_wrapper if info.name.endswith("WithIntCustomOp") else None
                _guarded(rows, info.name, f"{entry}/gradcheck", check_gradcheck, torch, op, twin, converted,
                         dtype_name, wrapper)
            if differentiable and dtype_name == "float64" and "func_grad" in checks:
                _guarded(rows, info.name, f"{entry}/func_grad", check_func_grad, torch, op, twin, converted,
                         dtype_name)
            if differentiable and dtype_name == "float64" and "vmap_grad" in checks:
                _guarded(rows, info.name, f"{entry}/vmap_grad", check_vmap_grad, torch, op, twin, converted,
                         dtype_name)
            if dtype_name in ("float32", "int64") and "vmap" in checks:
                _guarded(rows, info.name, f"{entry}/vmap", check_vmap, torch, op, twin, converted, dtype_name)
            if dtype_name == "float32" and "vmap_dims" in checks:
                _guarded(rows, info.name, f"{entry}/vmap_in_dim_last_out_dim_1", functools.partial(
                    check_vmap, batch_dim=-1, out_dims=1), torch, op, twin, converted, dtype_name)
                _guarded(rows, info.name, f"{entry}/vmap_nested", functools.partial(check_vmap, nested=True),
                         torch, op, twin, converted, dtype_name)
            if dtype_name in ("float32", "int64") and "meta" in checks:
                _guarded(rows, info.name, f"{entry}/meta", check_meta, torch, op, twin, converted, dtype_name)
            if dtype_name == "float32" and "opcheck" in checks:
                _guarded(rows, info.name, f"{entry}/opcheck", check_opcheck, torch, op, twin, converted, dtype_name)
            if dtype_name == "float32" and "call_errors" in checks:
                _guarded(rows, info.name, f"{entry}/call_errors", check_call_errors, torch, op, twin, converted,
                         dtype_name)


def run_mechanical(rows, torch, twins):
    """source0..source5: operators whose fake kernel came through register_fake(..., lib=)."""
    for index in range(6):
        name = f"source{index}"

        for device in ("meta", "cpu"):
            theirs = functools.partial(_call_source, torch, name, device)
            ours = functools.partial(_call_source, chainrule, name, device)
            _guarded(rows, "extras", f"{name}/{device}", functools.partial(
                both, torch, theirs, ours, "float32", metadata_only=device == "meta"))


def _call_source(lib, name, device):
    return getattr(lib.ops._torch_testing, name)(lib.ones(2, 3, device=device))


def _schema_error_cases(lib, namespace):
    Tensor = lib.Tensor

    def mutates_unknown():
        def f(x: Tensor) -> Tensor:
            return x.clone()
        lib.library.custom_op(f"{namespace}::mutates_unknown", f, mutates_args=("y",))

    def schema_disagrees():
        def f(x: Tensor) -> None:
            x.add_(1)
        lib.library.custom_op(f"{namespace}::schema_disagrees", f, mutates_args=(),
                              schema="(Tensor(a!) x) -> ()")

    def unannotated():
        def f(x, y: Tensor) -> Tensor:
            return y.clone()
        lib.library.custom_op(f"{namespace}::unannotated", f, mutates_args=())

    def bad_name():
        def f(x: Tensor) -> Tensor:
            return x.clone()
        lib.library.custom_op(f"{namespace}::bad-name", f, mutates_args=())

    def returns_input():
        def f(x: Tensor) -> Tensor:
            return x
        op = lib.library.custom_op(f"{namespace}::returns_input", f, mutates_args=())
        return op(lib.ones(3))

    def undeclared_mutation():
        def f(x: Tensor) -> Tensor:
            x.add_(1)
            return x.clone()
        op = lib.library.custom_op(f"{namespace}::undeclared_mutation", f, mutates_args=())
        result = lib.library.opcheck(op, (lib.ones(3),), test_utils="test_schema", raise_exception=False)
        return {k: v if isinstance(v, str) else type(v).__name__ for k, v in result.items()}

    def no_autograd_formula():
        def f(x: Tensor) -> Tensor:
            return lib.from_numpy(x.detach().numpy() * 2)
        op = lib.library.custom_op(f"{namespace}::no_autograd_formula", f, mutates_args=())
        op(lib.ones(3, requires_grad=True)).sum().backward()

    def vmap_without_rule():
        def f(x: Tensor) -> Tensor:
            return x * 2
        op = lib.library.custom_op(f"{namespace}::vmap_without_rule", f, mutates_args=())
        return lib.func.vmap(op)(lib.ones(2, 3))

    def autograd_of_mutating_op():
        def f(x: Tensor) -> None:
            x.add_(1)
        op = lib.library.custom_op(f"{namespace}::autograd_of_mutating_op", f, mutates_args=("x",))
        op.register_autograd(lambda ctx, grad: grad)

    def bad_device_type():
        def f(x: Tensor) -> Tensor:
            return x.clone()
        lib.library.custom_op(f"{namespace}::bad_device_type", f, mutates_args=(), device_types="gpu")

    def fake_for_missing_op():
        lib.library.register_fake(f"{namespace}::missing", lambda x: x)

    def bad_schema_text():
        library = lib.library.Library(namespace, "FRAGMENT")
        library.define("broken(Tensor x -> Tensor")

    def wrong_fake_shape():
        def f(x: Tensor) -> Tensor:
            return x.sum(0)
        op = lib.library.custom_op(f"{namespace}::wrong_fake_shape", f, mutates_args=())
        op.register_fake(lambda x: x.clone())
        result = lib.library.opcheck(op, (lib.ones(2, 3),), test_utils="test_faketensor", raise_exception=False)
        return {k: v if isinstance(v, str) else type(v).__name__ for k, v in result.items()}

    def missing_fake():
        def f(x: Tensor) -> Tensor:
            return x.clone()
        op = lib.library.custom_op(f"{namespace}::missing_fake", f, mutates_args=())
        result = lib.library.opcheck(op, (lib.ones(2),), test_utils="test_faketensor", raise_exception=False)
        return {k: v if isinstance(v, str) else type(v).__name__ for k, v in result.items()}

    def opcheck_bad_test_name():
        def f(x: Tensor) -> Tensor:
            return x.clone()
        op = lib.library.custom_op(f"{namespace}::opcheck_bad_test_name", f, mutates_args=())
        lib.library.opcheck(op, (lib.ones(2),), test_utils="test_everything")

    def wrong_gradient_count():
        def f(x: Tensor, y: Tensor) -> Tensor:
            return x * y
        op = lib.library.custom_op(f"{namespace}::wrong_gradient_count", f, mutates_args=())
        op.register_autograd(lambda ctx, grad: (grad, grad, grad))
        op(lib.ones(2, requires_grad=True), lib.ones(2)).sum().backward()

    def gradient_for_non_tensor():
        def f(x: Tensor, k: float) -> Tensor:
            return x * k
        op = lib.library.custom_op(f"{namespace}::gradient_for_non_tensor", f, mutates_args=())
        op.register_autograd(lambda ctx, grad: (grad, grad))
        op(lib.ones(2, requires_grad=True), 2.0).sum().backward()

    return {"autograd_of_mutating_op": autograd_of_mutating_op, "bad_device_type": bad_device_type,
            "fake_for_missing_op": fake_for_missing_op, "bad_schema_text": bad_schema_text,
            "wrong_fake_shape": wrong_fake_shape, "missing_fake": missing_fake,
            "opcheck_bad_test_name": opcheck_bad_test_name, "wrong_gradient_count": wrong_gradient_count,
            "gradient_for_non_tensor": gradient_for_non_tensor,
            "mutates_unknown": mutates_unknown, "schema_disagrees": schema_disagrees, "unannotated": unannotated,
            "bad_name": bad_name, "returns_input": returns_input, "undeclared_mutation": undeclared_mutation,
            "no_autograd_formula": no_autograd_formula, "vmap_without_rule": vmap_without_rule}


def run_schema_errors(rows, torch):
    theirs = _schema_error_cases(torch, "_customop_trial")
    ours = _schema_error_cases(chainrule, "_customop_trial")
    for name in theirs:
        _guarded(rows, "extras", f"schema_errors/{name}", both, torch, theirs[name], ours[name], "float32")


# ------------------------------------------------------------------ output
def summarise(rows) -> str:
    counts = collections.OrderedDict()
    for row in rows:
        counts.setdefault(row["opinfo"], collections.Counter())[row["kind"]] += 1
    kinds = ["same", "differ", "chainrule_raised", "torch_raised", "skipped"]
    lines = ["| OpInfo | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    total = collections.Counter()
    for name, counter in counts.items():
        total.update(counter)
        lines.append(f"| {name} | " + " | ".join(str(counter[k]) for k in kinds) + " |")
    lines.append("| **total** | " + " | ".join(str(total[k]) for k in kinds) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the trial and write results.json and summary.md")
    run.add_argument("--out", required=True)
    run.add_argument("--filter", default=None, help="only OpInfos whose name contains this ('extras' for the rest)")
    options = parser.parse_args(argv)
    rows = trial(name_filter=options.filter)
    os.makedirs(options.out, exist_ok=True)
    with open(os.path.join(options.out, "results.json"), "w") as handle:
        json.dump(rows, handle, indent=1)
    table = summarise(rows)
    notes = [f"- {row['opinfo']} {row['entry']}: {row['kind']} {row['detail']}" for row in rows
             if row["kind"] != "same"]
    with open(os.path.join(options.out, "summary.md"), "w") as handle:
        handle.write("# torch custom_op_db on chainrule\n\n" + table + "\n\n" + "\n".join(notes) + "\n")
    print(table)
    for note in notes:
        print(note[:400])
    return 0


if __name__ == "__main__":
    sys.exit(main())
