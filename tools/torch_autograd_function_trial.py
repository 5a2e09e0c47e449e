"""Drive torch's autograd.Function database (``autograd_function_db``) on torch and on chainrule.

``torch/testing/_internal/autograd_function_db.py`` writes custom ``torch.autograd.Function``s in
the modern style (``forward`` without ctx plus ``setup_context``, ``save_for_forward``, ``jvp``,
``vmap`` staticmethods or ``generate_vmap_rule = True``, ``mark_dirty``, ``mark_non_differentiable``,
NumPy inside forward) and lists them as OpInfos with sample inputs; torch's functorch tests run them
through every transform. This trial builds chainrule twins of those Functions from torch's own
source: the module's class and helper ``def`` statements are executed in a namespace where
``torch`` is chainrule and ``np`` is NumPy (nothing of torch's is copied into this repository), and
each OpInfo's ``op`` (a bound ``apply`` or a lambda) is re-bound to the twins. Each OpInfo's samples
(float32 and float64) then run, on both libraries, through the same code for each transform:

    forward, backward (autograd.grad), backward_twice (grad of grad), forward_ad (dual tensors),
    fwgrad_bwgrad (backward through a forward-AD tangent), inplace (the inplace variant),
    func.grad, func.vjp, func.jvp, func.jacrev, func.jacfwd, func.vmap (every batched/unbatched
    choice of the tensor arguments), vmap(vjp), vjp(vjp), jvp(vjp), vmap(jvp), vjp(vmap),
    jacfwd(jacrev) (torch's hessian)

and values, gradients, dtypes, shapes, strides (not of the batched transforms: see BATCHED_LAYOUT),
``requires_grad`` and exceptions (type and first line of the message) are compared.

    python tools/torch_autograd_function_trial.py run --out /tmp/afdb [--filter Cube]

Writes ``DIR/results.json`` and ``DIR/summary.md`` and prints a count table per OpInfo. Kinds:
``same``, ``differ``, ``chainrule_raised``, ``torch_raised`` (torch raised, chainrule did not or
raised another type), ``skipped`` (with the reason). Deterministic: every entry draws its tangents,
cotangents and batches from its own seeded NumPy generator.
"""

from __future__ import annotations

import argparse
import ast
import collections
import inspect
import itertools
import json
import os
import sys
import types
import warnings
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from torch_oracle import time_limit, torch_tensor_to_chainrule  # noqa: E402

import chainrule  # noqa: E402

DTYPES = ("float32", "float64")
TOLERANCE = {"float32": dict(rtol=1e-5, atol=1e-6), "float64": dict(rtol=1e-10, atol=1e-12)}
BATCH = 2
SECONDS_PER_ENTRY = 20
KINDS = ("same", "differ", "chainrule_raised", "torch_raised", "skipped")

# entries not compared, each with its reason (OpInfo name, transform) -> reason
SKIPPED = {}


def _torch():
    import torch
    from torch.testing._internal import autograd_function_db
    return torch, autograd_function_db


# ------------------------------------------------------------------ chainrule twins of the Functions
def twin_namespace(db_module) -> dict:
    """The db module's classes and helper functions, executed from torch's source with ``torch``
    meaning chainrule. The sample-input generators stay torch's (the samples are torch's)."""
    tree = ast.parse(inspect.getsource(db_module))
    body = [node for node in tree.body if isinstance(node, (ast.ClassDef, ast.FunctionDef))
            and not node.name.startswith("sample_inputs")]
    # a module name outside "chainrule.": the twins are user Functions, not built-in ops
    namespace = {"torch": chainrule, "np": np, "__name__": "autograd_function_db_twins"}
    exec(compile(ast.Module(body=body, type_ignores=[]), "<autograd_function_db twins>", "exec"), namespace)
    return namespace


def twin(function, namespace):
    """``function`` (an OpInfo's op, inplace variant or wrapper) with its Functions replaced by
    the twins: ``Cls.apply`` becomes the twin's ``apply``; a lambda is re-bound to the twins'
    globals."""
    if function is None:
        return None
    owner = getattr(function, "__self__", None)
    if isinstance(owner, type):
        return getattr(namespace[owner.__name__], function.__name__)
    if isinstance(function, types.FunctionType):
        return types.FunctionType(function.__code__, namespace, function.__name__, function.__defaults__,
                                  function.__closure__)
    raise TypeError(f"cannot build a chainrule twin of {function!r}")


# ------------------------------------------------------------------ what an entry runs on
class Case:
    """One OpInfo sample: its positional arguments on each library, which of them are
    differentiable (floating tensors), and the op on each library."""

    def __init__(self, torch, info, sample, namespace, dtype_name):
        self.name = info.name
        self.dtype_name = dtype_name
        raw = [sample.input, *sample.args]
        self.kwargs = dict(sample.kwargs)
        self.torch_args = [a.detach().clone() if isinstance(a, torch.Tensor) else a for a in raw]
        self.chainrule_args = [torch_tensor_to_chainrule(a) if isinstance(a, torch.Tensor) else a
                               for a in self.torch_args]
        self.diff = [i for i, a in enumerate(raw) if isinstance(a, torch.Tensor) and a.is_floating_point()]
        self.tensor_positions = [i for i, a in enumerate(raw) if isinstance(a, torch.Tensor)]
        self.ops = {"torch": info.op, "chainrule": twin(info.op, namespace)}
        self.inplace = {"torch": info.inplace_variant, "chainrule": twin(info.inplace_variant, namespace)}
        self.supports_forward_ad = info.supports_forward_ad

    def args(self, lib, requires_grad: bool):
        base = self.torch_args if lib.__name__ == "torch" else self.chainrule_args
        return [a.detach().clone().requires_grad_(requires_grad and i in self.diff)
                if i in self.tensor_positions else a for i, a in enumerate(base)]


def float_outputs(output) -> tuple:
    """The differentiable outputs of an op: its floating-point tensors, as a tuple."""
    leaves = output if isinstance(output, tuple) else (output,)
    return tuple(o for o in leaves if o.is_floating_point())


def of_diff(case, lib, args):
    """The op as a function of its differentiable arguments only (the rest fixed), returning its
    floating outputs — what torch's functorch tests hand to the transforms."""
    op = case.ops[lib.__name__]

    def function(*diff):
        full = list(args)
        for position, value in zip(case.diff, diff):
            full[position] = value
        return float_outputs(op(*full, **case.kwargs))

    return function


def tensor(lib, array):
    return lib.from_numpy(np.array(array, copy=True))


def dot(lib, outputs, vectors):
    """Σ ⟨output, vector⟩: a scalar whose gradient is the vjp with ``vectors``."""
    total = 0
    for o, v in zip(outputs, vectors):
        total = total + (o * v).sum()
    return total


# ------------------------------------------------------------------ the transforms, one code for both libraries
def run_forward(lib, case, draws):
    out = case.ops[lib.__name__](*case.args(lib, True), **case.kwargs)
    leaves = out if isinstance(out, tuple) else (out,)
    return {"outputs": out, "requires_grad": [o.requires_grad for o in leaves]}


def run_backward(lib, case, draws):
    args = case.args(lib, True)
    outs = float_outputs(case.ops[lib.__name__](*args, **case.kwargs))
    cotangents = [tensor(lib, c) for c in draws["cotangents"]]
    return lib.autograd.grad(outs, [args[i] for i in case.diff], cotangents, allow_unused=True)


def run_backward_twice(lib, case, draws):
    args = case.args(lib, True)
    inputs = [args[i] for i in case.diff]
    outs = float_outputs(case.ops[lib.__name__](*args, **case.kwargs))
    cotangents = [tensor(lib, c).requires_grad_() for c in draws["cotangents"]]
    grads = lib.autograd.grad(outs, inputs, cotangents, create_graph=True, allow_unused=True)
    pairs = [(g, tensor(lib, v)) for g, v in zip(grads, draws["tangents"]) if g is not None and g.requires_grad]
    if not pairs:
        return grads, None
    return grads, lib.autograd.grad(dot(lib, *zip(*pairs)), inputs + cotangents, allow_unused=True)


def run_forward_ad(lib, case, draws):
    forward_ad = lib.autograd.forward_ad
    args = case.args(lib, False)
    with forward_ad.dual_level():
        for i, t in zip(case.diff, draws["tangents"]):
            args[i] = forward_ad.make_dual(args[i], tensor(lib, t))
        outs = float_outputs(case.ops[lib.__name__](*args, **case.kwargs))
        unpacked = [forward_ad.unpack_dual(o) for o in outs]
        return [(u.primal.clone(), None if u.tangent is None else u.tangent.clone()) for u in unpacked]


def run_fwgrad_bwgrad(lib, case, draws):
    forward_ad = lib.autograd.forward_ad
    args = case.args(lib, True)
    inputs = [args[i] for i in case.diff]
    with forward_ad.dual_level():
        duals = list(args)
        for i, t in zip(case.diff, draws["tangents"]):
            duals[i] = forward_ad.make_dual(args[i], tensor(lib, t))
        outs = float_outputs(case.ops[lib.__name__](*duals, **case.kwargs))
        tangents = [forward_ad.unpack_dual(o).tangent for o in outs]
        pairs = [(t, tensor(lib, c)) for t, c in zip(tangents, draws["cotangents"]) if t is not None]
        return lib.autograd.grad(dot(lib, *zip(*pairs)), inputs, allow_unused=True)


def run_inplace(lib, case, draws):
    """The inplace variant on a non-leaf copy of the input: its output, and the gradient through it."""
    args = case.args(lib, True)
    leaf = args[0]
    args[0] = leaf.clone()
    out = case.inplace[lib.__name__](*args, **case.kwargs)
    grads = lib.autograd.grad(out, leaf, tensor(lib, draws["cotangents"][0]))
    return out, out is args[0], grads


def run_inplace_on_leaf(lib, case, draws):
    return case.inplace[lib.__name__](*case.args(lib, True), **case.kwargs)


def run_func_grad(lib, case, draws):
    f = of_diff(case, lib, case.args(lib, False))
    cotangents = [tensor(lib, c) for c in draws["cotangents"]]
    argnums = tuple(range(len(case.diff)))
    return lib.func.grad(lambda *d: dot(lib, f(*d), cotangents), argnums=argnums)(*primals(lib, case))


def primals(lib, case):
    args = case.args(lib, False)
    return [args[i] for i in case.diff]


def run_func_vjp(lib, case, draws):
    out, vjp_fn = lib.func.vjp(of_diff(case, lib, case.args(lib, False)), *primals(lib, case))
    return out, vjp_fn(tuple(tensor(lib, c) for c in draws["cotangents"]))


def run_func_jvp(lib, case, draws):
    return lib.func.jvp(of_diff(case, lib, case.args(lib, False)), tuple(primals(lib, case)),
                        tuple(tensor(lib, t) for t in draws["tangents"]))


def run_func_jacrev(lib, case, draws):
    argnums = tuple(range(len(case.diff)))
    return lib.func.jacrev(of_diff(case, lib, case.args(lib, False)), argnums=argnums)(*primals(lib, case))


def run_func_jacfwd(lib, case, draws):
    argnums = tuple(range(len(case.diff)))
    return lib.func.jacfwd(of_diff(case, lib, case.args(lib, False)), argnums=argnums)(*primals(lib, case))


def batched_args(lib, case, draws, in_dims):
    """The arguments with a batch of BATCH along the dim ``in_dims`` gives: the sample itself
    and, for floating tensors, drawn perturbations of it (index tensors repeat)."""
    args = case.args(lib, False)
    for i, dim in enumerate(in_dims):
        if dim is None:
            continue
        rows = [args[i]]
        for k in range(1, BATCH):
            rows.append(args[i] + tensor(lib, draws["batch"][i][k - 1]) if i in case.diff else args[i].clone())
        args[i] = lib.stack(rows, dim=dim)
    return args


def vmap_in_dims(case) -> list:
    """Every choice of batched (dim 0) or not (None) for the tensor arguments, but none batched,
    and every tensor batched along its last dim (-1)."""
    choices = []
    for combo in itertools.chain(itertools.product((0, None), repeat=len(case.tensor_positions)),
                                 [(-1,) * len(case.tensor_positions)]):
        if all(c is None for c in combo):
            continue
        dims = [None] * len(case.torch_args)
        for position, c in zip(case.tensor_positions, combo):
            dims[position] = c
        choices.append(tuple(dims))
    return choices


def run_func_vmap(lib, case, draws, in_dims):
    args = batched_args(lib, case, draws, in_dims)
    op = case.ops[lib.__name__]
    return lib.func.vmap(lambda *a: op(*a, **case.kwargs), in_dims=in_dims)(*args)


def batched(lib, values, draws_key, draws):
    return [lib.stack([v] + [v + tensor(lib, d) for d in extra]) for v, extra in zip(values, draws[draws_key])]


def run_vmap_vjp(lib, case, draws):
    fixed = case.args(lib, False)

    def vjp_of(*both):
        count = len(case.diff)
        _, vjp_fn = lib.func.vjp(of_diff(case, lib, fixed), *both[:count])
        return vjp_fn(tuple(both[count:]))

    cotangents = [tensor(lib, c) for c in draws["cotangents"]]
    inputs = batched(lib, primals(lib, case), "batch_primals", draws) + batched(lib, cotangents, "batch_cotangents",
                                                                               draws)
    return lib.func.vmap(vjp_of)(*inputs)


def run_vjp_vjp(lib, case, draws):
    fixed = case.args(lib, False)
    count = len(case.diff)

    def vjp_of(*both):
        _, vjp_fn = lib.func.vjp(of_diff(case, lib, fixed), *both[:count])
        return vjp_fn(tuple(both[count:]))

    cotangents = [tensor(lib, c) for c in draws["cotangents"]]
    out, vjp_fn = lib.func.vjp(vjp_of, *primals(lib, case), *cotangents)
    return out, vjp_fn(tuple(tensor(lib, t) for t in draws["tangents"]))


def run_jvp_vjp(lib, case, draws):
    fixed = case.args(lib, False)
    count = len(case.diff)

    def vjp_of(*both):
        _, vjp_fn = lib.func.vjp(of_diff(case, lib, fixed), *both[:count])
        return vjp_fn(tuple(both[count:]))

    cotangents = [tensor(lib, c) for c in draws["cotangents"]]
    tangents = [tensor(lib, t) for t in draws["tangents"]] + [tensor(lib, c) for c in draws["cotangent_tangents"]]
    return lib.func.jvp(vjp_of, (*primals(lib, case), *cotangents), tuple(tangents))


def run_vmap_jvp(lib, case, draws):
    fixed = case.args(lib, False)
    count = len(case.diff)

    def jvp_of(*both):
        return lib.func.jvp(of_diff(case, lib, fixed), tuple(both[:count]), tuple(both[count:]))

    tangents = [tensor(lib, t) for t in draws["tangents"]]
    inputs = batched(lib, primals(lib, case), "batch_primals", draws) + batched(lib, tangents, "batch_tangents", draws)
    return lib.func.vmap(jvp_of)(*inputs)


def run_vjp_vmap(lib, case, draws):
    fixed = case.args(lib, False)
    mapped = lib.func.vmap(of_diff(case, lib, fixed), in_dims=tuple(0 for _ in case.diff))
    inputs = batched(lib, primals(lib, case), "batch_primals", draws)
    out, vjp_fn = lib.func.vjp(mapped, *inputs)
    return out, vjp_fn(tuple(tensor(lib, c) for c in draws["batch_out_cotangents"]))


def run_jacfwd_jacrev(lib, case, draws):
    """Second derivatives as torch's hessian takes them: jacfwd of jacrev."""
    argnums = tuple(range(len(case.diff)))
    inner = lib.func.jacrev(of_diff(case, lib, case.args(lib, False)), argnums=argnums)
    return lib.func.jacfwd(inner, argnums=argnums)(*primals(lib, case))


TRANSFORMS = {
    "forward": run_forward,
    "backward": run_backward,
    "backward_twice": run_backward_twice,
    "forward_ad": run_forward_ad,
    "fwgrad_bwgrad": run_fwgrad_bwgrad,
    "inplace": run_inplace,
    "inplace_on_leaf": run_inplace_on_leaf,
    "func.grad": run_func_grad,
    "func.vjp": run_func_vjp,
    "func.jvp": run_func_jvp,
    "func.jacrev": run_func_jacrev,
    "func.jacfwd": run_func_jacfwd,
    "func.vmap": run_func_vmap,
    "vmap(vjp)": run_vmap_vjp,
    "vjp(vjp)": run_vjp_vjp,
    "jvp(vjp)": run_jvp_vjp,
    "vmap(jvp)": run_vmap_jvp,
    "vjp(vmap)": run_vjp_vmap,
    "jacfwd(jacrev)": run_jacfwd_jacrev,
}


# ------------------------------------------------------------------ comparison
def leaves_of(value):
    if isinstance(value, (tuple, list)):
        return [leaf for v in value for leaf in leaves_of(v)]
    if isinstance(value, dict):
        return [leaf for k in sorted(value) for leaf in leaves_of(value[k])]
    return [value]


# Transforms whose results' strides are not compared: torch's come from its batching rules and the
# Functions' vmap staticmethods (a batch dim moved in place, a zero-stride expand), chainrule's from
# one run per slice stacked into a new contiguous tensor; values, dtypes and shapes still are.
BATCHED_LAYOUT = ("vmap", "jac")


def compare(theirs, ours, dtype_name, strides=True):
    """'' when the two results agree, else what differs first."""
    a, b = leaves_of(theirs), leaves_of(ours)
    if len(a) != len(b):
        return f"{len(a)} values vs {len(b)}"
    for index, (x, y) in enumerate(zip(a, b)):
        x_tensor, y_tensor = hasattr(x, "detach"), hasattr(y, "detach")
        if x_tensor != y_tensor:
            return f"value {index}: {type(x).__name__} vs {type(y).__name__}"
        if not x_tensor:
            if x != y:
                return f"value {index}: {x!r} vs {y!r}"
            continue
        if str(x.dtype).rpartition(".")[2] != str(y.dtype).rpartition(".")[2]:
            return f"value {index}: dtype {x.dtype} vs {y.dtype}"
        x_array, y_array = x.detach().numpy(), np.asarray(y.detach().numpy())
        if x_array.shape != y_array.shape:
            return f"value {index}: shape {x_array.shape} vs {y_array.shape}"
        if x.requires_grad != y.requires_grad:
            return f"value {index}: requires_grad {x.requires_grad} vs {y.requires_grad}"
        if strides and x.numel() > 1 and tuple(x.stride()) != tuple(y.stride()):
            return f"value {index}: strides {tuple(x.stride())} vs {tuple(y.stride())}"
        if not np.allclose(x_array, y_array, equal_nan=True, **TOLERANCE[dtype_name]):
            difference = np.max(np.abs(x_array.astype(np.float64) - y_array.astype(np.float64)))
            return f"value {index}: max |diff| {difference:.3g}"
    return ""


def short_error(error) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def classify(theirs, ours, dtype_name, strides=True):
    """(kind, detail) for torch's outcome and chainrule's (each a value or an exception)."""
    torch_failed, ours_failed = isinstance(theirs, Exception), isinstance(ours, Exception)
    if torch_failed and ours_failed:
        if type(theirs).__name__ != type(ours).__name__:
            return "torch_raised", f"torch {short_error(theirs)} | chainrule {short_error(ours)}"
        if short_error(theirs) != short_error(ours):
            return "differ", f"message: torch {short_error(theirs)} | chainrule {short_error(ours)}"
        return "same", ""
    if torch_failed:
        return "torch_raised", f"torch {short_error(theirs)}"
    if ours_failed:
        return "chainrule_raised", short_error(ours)
    difference = compare(theirs, ours, dtype_name, strides)
    return ("differ", difference) if difference else ("same", "")


# ------------------------------------------------------------------ driver
def stable_seed(*parts) -> int:
    return zlib.crc32("/".join(map(str, parts)).encode()) % (2 ** 31)


def make_draws(torch, case, seed):
    """The entry's random values (NumPy, the case's dtype): tangents, cotangents, batches."""
    rng = np.random.default_rng(seed)
    dtype = case.dtype_name
    out = float_outputs(case.ops["torch"](*case.args(torch, False), **case.kwargs))
    in_shapes = [tuple(case.torch_args[i].shape) for i in case.diff]
    out_shapes = [tuple(o.shape) for o in out]

    def draw(shape):
        return rng.uniform(-1, 1, shape).astype(dtype)

    def perturbations(shape):
        return [draw(shape) * 0.1 for _ in range(BATCH - 1)]

    return {
        "tangents": [draw(s) for s in in_shapes],
        "cotangents": [draw(s) for s in out_shapes],
        "cotangent_tangents": [draw(s) for s in out_shapes],
        "batch": {i: perturbations(tuple(case.torch_args[i].shape)) for i in case.diff},
        "batch_primals": [perturbations(s) for s in in_shapes],
        "batch_cotangents": [perturbations(s) for s in out_shapes],
        "batch_tangents": [perturbations(s) for s in in_shapes],
        "batch_out_cotangents": [draw((BATCH, *s)) for s in out_shapes],
    }


def outcome(function, *args):
    try:
        with time_limit(SECONDS_PER_ENTRY):
            return function(*args)
    except Exception as error:  # noqa: BLE001 - an exception is an outcome to compare
        return error


def run_case(torch, case, draws, results, transforms):
    for name in transforms:
        if name.startswith("inplace") and case.inplace["torch"] is None:
            continue
        variants = [((), name)]
        if name == "func.vmap":
            variants = [((dims,), f"func.vmap in_dims={dims}") for dims in vmap_in_dims(case)]
        for extra, label in variants:
            entry = f"{case.dtype_name}/{label}"
            reason = SKIPPED.get((case.name, name))
            if reason:
                results.append({"op": case.name, "entry": entry, "kind": "skipped", "detail": reason})
                continue
            transform = TRANSFORMS[name]
            torch.manual_seed(0)
            theirs = outcome(transform, torch, case, draws, *extra)
            chainrule.manual_seed(0)
            ours = outcome(transform, chainrule, case, draws, *extra)
            strides = not any(word in name for word in BATCHED_LAYOUT)
            kind, detail = classify(theirs, ours, case.dtype_name, strides)
            results.append({"op": case.name, "entry": entry, "kind": kind, "detail": detail})


def trial(filter_text=None, dtypes=DTYPES, transforms=tuple(TRANSFORMS)):
    torch, db = _torch()
    namespace = twin_namespace(db)
    results = []
    for info in db.autograd_function_db:
        if filter_text and filter_text.lower() not in info.name.lower():
            continue
        for dtype_name in dtypes:
            torch.manual_seed(0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                samples = list(info.sample_inputs("cpu", getattr(torch, dtype_name), requires_grad=True))
            for number, sample in enumerate(samples):
                case = Case(torch, info, sample, namespace, dtype_name)
                draws = make_draws(torch, case, stable_seed(info.name, dtype_name, number))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    run_case(torch, case, draws, results, transforms)
    return results


def write(results, directory):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "results.json"), "w") as handle:
        json.dump(results, handle, indent=1)
    table = collections.defaultdict(collections.Counter)
    for row in results:
        table[row["op"]][row["kind"]] += 1
    lines = ["| OpInfo | entries | " + " | ".join(KINDS) + " |", "|---" * (len(KINDS) + 2) + "|"]
    total = collections.Counter()
    for op in table:
        counts = table[op]
        total.update(counts)
        lines.append(f"| {op} | {sum(counts.values())} | " + " | ".join(str(counts[k]) for k in KINDS) + " |")
    lines.append(f"| **all** | {sum(total.values())} | " + " | ".join(str(total[k]) for k in KINDS) + " |")
    details = [f"- {r['op']} {r['entry']}: **{r['kind']}** {r['detail']}" for r in results if r["kind"] != "same"]
    with open(os.path.join(directory, "summary.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n\n" + "\n".join(details) + "\n")
    print("\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--out", required=True)
    run.add_argument("--filter", default=None, help="only OpInfos whose name contains this")
    args = parser.parse_args(argv)
    write(trial(args.filter), args.out)


if __name__ == "__main__":
    main()
