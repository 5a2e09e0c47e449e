"""torch.func and torch.autograd.functional as users call them: small cases run on torch and on chainrule.

Each case is a function of ``lib`` (torch, then chainrule, swapped in one process) that builds a few
tensors from the same seeded NumPy values, calls one transform — ``torch.func.{grad, grad_and_value,
vjp, jvp, jacrev, jacfwd, hessian, vmap, functional_call}`` or ``torch.autograd.functional.{jacobian,
hessian, vjp, jvp, hvp, vhp}`` — with a sweep of its options (argnums, has_aux, create_graph, strict,
vectorize, in_dims/out_dims, chunk_size), and returns what it got. The result is recorded as a tree:
per tensor its dtype, shape, requires_grad and values; containers by type; an exception by class.
Gradient-penalty cases (a transform of a function that closes over an ``nn.Parameter``, then
``result.pow(2).sum().backward()``) also record the parameter's ``.grad``.

Kinds:

    same                  both ran and every item agrees (values within rtol 1e-4, atol 1e-5),
                          or both raised the same exception class
    values_differ         both ran, same structure, types, dtypes, shapes, requires_grad; a value differs
    type_differs          both ran; the structure, a type, dtype, shape or requires_grad differs
    error_class_differs   both raised, another class
    torch_only            torch raised, chainrule went on
    chainrule_only        chainrule raised, torch went on

    python tools/torch_func_api_trial.py [--filter jacrev] [--show type_differs | all | message_differs]

The tally also counts, among the "same" errors, those whose first line is worded otherwise.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from torch_oracle import time_limit  # noqa: E402

KINDS = ("same", "values_differ", "type_differs", "error_class_differs", "torch_only", "chainrule_only")
SECONDS_PER_CASE = 20
TOLERANCE = dict(rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------------------------
# recording
# ----------------------------------------------------------------------------------------------

def snapshot(value):
    """A comparable tree of ``value``: tensors by dtype, shape, requires_grad and values."""
    if hasattr(value, "grad_fn") and hasattr(value, "shape"):
        data = value.detach().numpy().copy() if not value.is_complex() else value.detach().numpy().copy()
        return ("tensor", str(value.dtype).replace("torch.", "").replace("chainrule.", ""),
                tuple(value.shape), bool(value.requires_grad), data)
    if isinstance(value, (tuple, list)):  # a named tuple (torch.return_types) by its name, then its items
        kind = "list" if isinstance(value, list) else "tuple"
        named = () if type(value) in (tuple, list) else (("py", type(value).__name__),)
        return (kind, named + tuple(snapshot(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((k, snapshot(v)) for k, v in value.items()))
    if value is None or isinstance(value, (bool, int, float, str)):
        return ("py", value)
    return ("other", type(value).__name__)


def compare(a, b) -> str | None:
    """None when alike, else "type" or "values"."""
    if a[0] != b[0]:
        return "type"
    if a[0] == "tensor":
        if a[1:4] != b[1:4]:
            return "type"
        if a[4].size and not np.allclose(a[4], b[4], equal_nan=True, **TOLERANCE):
            return "values"
        return None
    if a[0] in ("tuple", "list", "dict"):
        if len(a[1]) != len(b[1]):
            return "type"
        found = None
        for x, y in zip(a[1], b[1]):
            if a[0] == "dict":
                if x[0] != y[0]:
                    return "type"
                x, y = x[1], y[1]
            kind = compare(x, y)
            if kind == "type":
                return "type"
            found = found or kind
        return found
    if a[0] == "py" and isinstance(a[1], float) and isinstance(b[1], float):
        return None if np.isclose(a[1], b[1], **TOLERANCE) else "values"
    return None if a == b else "values"


# ----------------------------------------------------------------------------------------------
# functions to transform
# ----------------------------------------------------------------------------------------------

def values(shape, seed: int):
    return np.random.default_rng(seed).uniform(-1, 1, size=shape).astype(np.float32)


def make(lib, shapes, seed: int = 0):
    return [lib.tensor(values(shape, seed + i)) for i, shape in enumerate(shapes)]


# name -> (function of lib and tensors, input shapes)
SCALAR = {
    "sin_sum": (lambda lib, x: x.sin().sum(), [(3,)]),
    "cube_mean": (lambda lib, x: (x ** 3).mean(), [(2, 3)]),
    "trace_gram": (lambda lib, x: (x @ x.T).trace(), [(2, 3)]),
    "log_softmax": (lambda lib, x: lib.nn.functional.log_softmax(x, -1)[..., 0].sum(), [(2, 3)]),
    "dot": (lambda lib, x, y: (x * y).sum(), [(3,), (3,)]),
    "tanh_matvec": (lambda lib, x, y: (x.tanh() @ y).sum(), [(2, 3), (3,)]),
    "sq_dist": (lambda lib, x, y: (x - y).pow(2).sum(), [(4,), (4,)]),
}
VECTOR = {
    "sin": (lambda lib, x: x.sin(), [(3,)]),
    "cumsum": (lambda lib, x: x.cumsum(0), [(4,)]),
    "slice2": (lambda lib, x: x[..., :2] * 2, [(2, 3)]),
    "softmax": (lambda lib, x: x.exp() / x.exp().sum(), [(3,)]),
    "gram": (lambda lib, x: x @ x.T, [(2, 3)]),
    "mul_sin": (lambda lib, x, y: x * y + y.sin(), [(3,), (3,)]),
    "outer": (lambda lib, x, y: x.unsqueeze(-1) * y, [(2,), (3,)]),
}
MULTI = {
    "sin_cos": (lambda lib, x: (x.sin(), x.cos().sum()), [(3,)]),
    "mul_add": (lambda lib, x, y: (x * y, x + y), [(3,), (3,)]),
}


# ----------------------------------------------------------------------------------------------
# cases
# ----------------------------------------------------------------------------------------------

CASES: dict = {}


def case(name):
    def register(fn):
        CASES[name] = fn
        return fn
    return register


def _scalar_cases():
    for fname, (fn, shapes) in SCALAR.items():
        n = len(shapes)
        argnums_options = [0, -1, tuple(range(n)), n, 1.5] + ([1, (1, 0)] if n > 1 else [])
        for argnums in argnums_options:
            for transform in ("grad", "grad_and_value"):
                @case(f"func.{transform}[{fname}, argnums={argnums}]")
                def _(lib, fn=fn, shapes=shapes, argnums=argnums, transform=transform):
                    xs = make(lib, shapes)
                    return getattr(lib.func, transform)(lambda *a: fn(lib, *a), argnums=argnums)(*xs)

        for transform in ("grad", "grad_and_value"):
            @case(f"func.{transform}[{fname}, has_aux]")
            def _(lib, fn=fn, shapes=shapes, transform=transform):
                xs = make(lib, shapes)
                return getattr(lib.func, transform)(lambda *a: (fn(lib, *a), {"aux": a[0] * 2}), has_aux=True)(*xs)

            @case(f"func.{transform}[{fname}, has_aux, not a tuple]")
            def _(lib, fn=fn, shapes=shapes, transform=transform):
                xs = make(lib, shapes)
                return getattr(lib.func, transform)(lambda *a: fn(lib, *a), has_aux=True)(*xs)

            @case(f"func.{transform}[{fname}, requires_grad input]")
            def _(lib, fn=fn, shapes=shapes, transform=transform):
                xs = [x.requires_grad_() for x in make(lib, shapes)]
                return getattr(lib.func, transform)(lambda *a: fn(lib, *a))(*xs)

            @case(f"func.{transform}[{fname}, under no_grad]")
            def _(lib, fn=fn, shapes=shapes, transform=transform):
                xs = [x.requires_grad_() for x in make(lib, shapes)]
                with lib.no_grad():
                    return getattr(lib.func, transform)(lambda *a: fn(lib, *a))(*xs)

        @case(f"func.grad.grad[{fname}]")
        def _(lib, fn=fn, shapes=shapes):
            xs = make(lib, shapes)
            return lib.func.grad(lambda *a: lib.func.grad(lambda *b: fn(lib, *b))(*a).sum())(*xs)

        for argnums in (0, tuple(range(n))):
            @case(f"func.hessian[{fname}, argnums={argnums}]")
            def _(lib, fn=fn, shapes=shapes, argnums=argnums):
                xs = make(lib, shapes)
                return lib.func.hessian(lambda *a: fn(lib, *a), argnums=argnums)(*xs)

        @case(f"func.vjp[{fname}]")
        def _(lib, fn=fn, shapes=shapes):
            xs = make(lib, shapes)
            out, vjp_fn = lib.func.vjp(lambda *a: fn(lib, *a), *xs)
            return out, vjp_fn(lib.tensor(1.5))

        @case(f"func.vmap.grad[{fname}, in_dims=0]")
        def _(lib, fn=fn, shapes=shapes):
            xs = make(lib, [(2,) + s for s in shapes])
            return lib.func.vmap(lib.func.grad(lambda *a: fn(lib, *a)))(*xs)

        if n > 1:
            @case(f"func.vmap.grad[{fname}, in_dims=(0, None)]")
            def _(lib, fn=fn, shapes=shapes):
                xs = make(lib, [(2,) + shapes[0]] + list(shapes[1:]))
                return lib.func.vmap(lib.func.grad(lambda *a: fn(lib, *a), argnums=(0, 1)),
                                     in_dims=(0,) + (None,) * (len(shapes) - 1))(*xs)

        for create_graph in (False, True):
            for vectorize in (False, True):
                @case(f"af.hessian[{fname}, create_graph={create_graph}, vectorize={vectorize}]")
                def _(lib, fn=fn, shapes=shapes, create_graph=create_graph, vectorize=vectorize):
                    xs = make(lib, shapes)
                    arg = tuple(xs) if len(xs) > 1 else xs[0]
                    return lib.autograd.functional.hessian(lambda *a: fn(lib, *a), arg, create_graph=create_graph,
                                                           vectorize=vectorize)
            for transform in ("hvp", "vhp"):
                @case(f"af.{transform}[{fname}, create_graph={create_graph}]")
                def _(lib, fn=fn, shapes=shapes, create_graph=create_graph, transform=transform):
                    xs = make(lib, shapes)
                    vs = make(lib, shapes, seed=10)
                    arg = tuple(xs) if len(xs) > 1 else xs[0]
                    v = tuple(vs) if len(vs) > 1 else vs[0]
                    return getattr(lib.autograd.functional, transform)(lambda *a: fn(lib, *a), arg, v,
                                                                        create_graph=create_graph)
        for transform in ("hvp", "vhp"):
            @case(f"af.{transform}[{fname}, v=None]")
            def _(lib, fn=fn, shapes=shapes, transform=transform):
                xs = make(lib, shapes)
                arg = tuple(xs) if len(xs) > 1 else xs[0]
                return getattr(lib.autograd.functional, transform)(lambda *a: fn(lib, *a), arg)

            @case(f"af.{transform}[{fname}, strict]")
            def _(lib, fn=fn, shapes=shapes, transform=transform):
                xs = make(lib, shapes)
                vs = make(lib, shapes, seed=10)
                arg = tuple(xs) if len(xs) > 1 else xs[0]
                v = tuple(vs) if len(vs) > 1 else vs[0]
                return getattr(lib.autograd.functional, transform)(lambda *a: fn(lib, *a), arg, v, strict=True)

        @case(f"af.vjp[{fname}, v=None]")
        def _(lib, fn=fn, shapes=shapes):
            xs = make(lib, shapes)
            arg = tuple(xs) if len(xs) > 1 else xs[0]
            return lib.autograd.functional.vjp(lambda *a: fn(lib, *a), arg)


def _vector_cases(table, multi: bool):
    for fname, (fn, shapes) in table.items():
        n = len(shapes)
        argnums_options = [0, tuple(range(n))] + ([1] if n > 1 else [])
        for argnums in argnums_options:
            for chunk_size in (None, 1, 2):
                @case(f"func.jacrev[{fname}, argnums={argnums}, chunk_size={chunk_size}]")
                def _(lib, fn=fn, shapes=shapes, argnums=argnums, chunk_size=chunk_size):
                    xs = make(lib, shapes)
                    return lib.func.jacrev(lambda *a: fn(lib, *a), argnums=argnums, chunk_size=chunk_size)(*xs)

            @case(f"func.jacfwd[{fname}, argnums={argnums}]")
            def _(lib, fn=fn, shapes=shapes, argnums=argnums):
                xs = make(lib, shapes)
                return lib.func.jacfwd(lambda *a: fn(lib, *a), argnums=argnums)(*xs)

        for transform in ("jacrev", "jacfwd"):
            @case(f"func.{transform}[{fname}, has_aux]")
            def _(lib, fn=fn, shapes=shapes, transform=transform):
                xs = make(lib, shapes)
                return getattr(lib.func, transform)(lambda *a: (fn(lib, *a), a[0].cos()), has_aux=True)(*xs)

            @case(f"func.{transform}[{fname}, requires_grad input]")
            def _(lib, fn=fn, shapes=shapes, transform=transform):
                xs = [x.requires_grad_() for x in make(lib, shapes)]
                return getattr(lib.func, transform)(lambda *a: fn(lib, *a))(*xs)

            @case(f"func.vmap.{transform}[{fname}]")
            def _(lib, fn=fn, shapes=shapes, transform=transform):
                xs = make(lib, [(2,) + s for s in shapes])
                return lib.func.vmap(getattr(lib.func, transform)(lambda *a: fn(lib, *a)))(*xs)

        @case(f"func.jacrev[{fname}, chunk_size=0]")
        def _(lib, fn=fn, shapes=shapes):
            xs = make(lib, shapes)
            return lib.func.jacrev(lambda *a: fn(lib, *a), chunk_size=0)(*xs)

        @case(f"func.grad[{fname}, not scalar]")
        def _(lib, fn=fn, shapes=shapes):
            xs = make(lib, shapes)
            return lib.func.grad(lambda *a: fn(lib, *a))(*xs)

        @case(f"func.vjp[{fname}]")
        def _(lib, fn=fn, shapes=shapes):
            xs = make(lib, shapes)
            out, vjp_fn = lib.func.vjp(lambda *a: fn(lib, *a), *xs)
            return out, vjp_fn(_like(lib, out, seed=5))

        @case(f"func.vjp[{fname}, has_aux]")
        def _(lib, fn=fn, shapes=shapes):
            xs = make(lib, shapes)
            out, vjp_fn, aux = lib.func.vjp(lambda *a: (fn(lib, *a), a[0] + 1), *xs, has_aux=True)
            return out, vjp_fn(_like(lib, out, seed=5)), aux

        @case(f"func.vjp[{fname}, wrong cotangent shape]")
        def _(lib, fn=fn, shapes=shapes):
            xs = make(lib, shapes)
            out, vjp_fn = lib.func.vjp(lambda *a: fn(lib, *a), *xs)
            return vjp_fn(_like(lib, out, seed=5, extra=True))

        @case(f"func.jvp[{fname}]")
        def _(lib, fn=fn, shapes=shapes):
            xs = make(lib, shapes)
            ts = make(lib, shapes, seed=20)
            return lib.func.jvp(lambda *a: fn(lib, *a), tuple(xs), tuple(ts))

        @case(f"func.jvp[{fname}, has_aux]")
        def _(lib, fn=fn, shapes=shapes):
            xs = make(lib, shapes)
            ts = make(lib, shapes, seed=20)
            return lib.func.jvp(lambda *a: (fn(lib, *a), a[0] * 3), tuple(xs), tuple(ts), has_aux=True)

        @case(f"func.jvp[{fname}, tangent shape]")
        def _(lib, fn=fn, shapes=shapes):
            xs = make(lib, shapes)
            ts = make(lib, [(5,) for _ in shapes], seed=20)
            return lib.func.jvp(lambda *a: fn(lib, *a), tuple(xs), tuple(ts))

        @case(f"func.jvp[{fname}, primals a list]")
        def _(lib, fn=fn, shapes=shapes):
            xs = make(lib, shapes)
            ts = make(lib, shapes, seed=20)
            return lib.func.jvp(lambda *a: fn(lib, *a), list(xs), tuple(ts))

        @case(f"func.jvp[{fname}, requires_grad primals]")
        def _(lib, fn=fn, shapes=shapes):
            xs = [x.requires_grad_() for x in make(lib, shapes)]
            ts = make(lib, shapes, seed=20)
            return lib.func.jvp(lambda *a: fn(lib, *a), tuple(xs), tuple(ts))

        for in_dims, out_dims in ((0, 0), (0, 1), (1, 0), (-1, -1)):
            @case(f"func.vmap[{fname}, in_dims={in_dims}, out_dims={out_dims}]")
            def _(lib, fn=fn, shapes=shapes, in_dims=in_dims, out_dims=out_dims):
                batched = [s[:in_dims % (len(s) + 1)] + (2,) + s[in_dims % (len(s) + 1):] if in_dims >= 0
                           else s + (2,) for s in shapes]
                xs = make(lib, batched)
                return lib.func.vmap(lambda *a: fn(lib, *a), in_dims=in_dims, out_dims=out_dims)(*xs)

        @case(f"func.vmap[{fname}, chunk_size=1]")
        def _(lib, fn=fn, shapes=shapes):
            xs = make(lib, [(3,) + s for s in shapes])
            return lib.func.vmap(lambda *a: fn(lib, *a), chunk_size=1)(*xs)

        @case(f"func.vmap[{fname}, in_dims out of range]")
        def _(lib, fn=fn, shapes=shapes):
            xs = make(lib, shapes)
            return lib.func.vmap(lambda *a: fn(lib, *a), in_dims=5)(*xs)

        if n > 1:
            @case(f"func.vmap[{fname}, sizes differ]")
            def _(lib, fn=fn, shapes=shapes):
                xs = make(lib, [(2,) + shapes[0]] + [(3,) + s for s in shapes[1:]])
                return lib.func.vmap(lambda *a: fn(lib, *a))(*xs)

            @case(f"func.vmap[{fname}, in_dims=(0, None)]")
            def _(lib, fn=fn, shapes=shapes):
                xs = make(lib, [(2,) + shapes[0]] + list(shapes[1:]))
                return lib.func.vmap(lambda *a: fn(lib, *a), in_dims=(0,) + (None,) * (len(shapes) - 1))(*xs)

            @case(f"func.vmap[{fname}, in_dims wrong length]")
            def _(lib, fn=fn, shapes=shapes):
                xs = make(lib, [(2,) + s for s in shapes])
                return lib.func.vmap(lambda *a: fn(lib, *a), in_dims=(0,))(*xs)

        for create_graph in (False, True):
            for vectorize in (False, True):
                @case(f"af.jacobian[{fname}, create_graph={create_graph}, vectorize={vectorize}]")
                def _(lib, fn=fn, shapes=shapes, create_graph=create_graph, vectorize=vectorize):
                    xs = make(lib, shapes)
                    arg = tuple(xs) if len(xs) > 1 else xs[0]
                    return lib.autograd.functional.jacobian(lambda *a: fn(lib, *a), arg, create_graph=create_graph,
                                                            vectorize=vectorize)
            for transform in ("vjp", "jvp"):
                @case(f"af.{transform}[{fname}, create_graph={create_graph}]")
                def _(lib, fn=fn, shapes=shapes, create_graph=create_graph, transform=transform):
                    xs = make(lib, shapes)
                    arg = tuple(xs) if len(xs) > 1 else xs[0]
                    if transform == "vjp":
                        with lib.no_grad():
                            v = _like(lib, fn(lib, *xs), seed=7)
                    else:
                        vs = make(lib, shapes, seed=7)
                        v = tuple(vs) if len(vs) > 1 else vs[0]
                    return getattr(lib.autograd.functional, transform)(lambda *a: fn(lib, *a), arg, v,
                                                                        create_graph=create_graph)

        @case(f"af.jacobian[{fname}, forward-mode, vectorize]")
        def _(lib, fn=fn, shapes=shapes):
            xs = make(lib, shapes)
            arg = tuple(xs) if len(xs) > 1 else xs[0]
            return lib.autograd.functional.jacobian(lambda *a: fn(lib, *a), arg, vectorize=True,
                                                    strategy="forward-mode")

        @case(f"af.jacobian[{fname}, forward-mode without vectorize]")
        def _(lib, fn=fn, shapes=shapes):
            xs = make(lib, shapes)
            arg = tuple(xs) if len(xs) > 1 else xs[0]
            return lib.autograd.functional.jacobian(lambda *a: fn(lib, *a), arg, strategy="forward-mode")

        @case(f"af.jacobian[{fname}, strategy typo]")
        def _(lib, fn=fn, shapes=shapes):
            xs = make(lib, shapes)
            arg = tuple(xs) if len(xs) > 1 else xs[0]
            return lib.autograd.functional.jacobian(lambda *a: fn(lib, *a), arg, strategy="sideways")

        @case(f"af.jacobian[{fname}, strict]")
        def _(lib, fn=fn, shapes=shapes):
            xs = make(lib, shapes)
            arg = tuple(xs) if len(xs) > 1 else xs[0]
            return lib.autograd.functional.jacobian(lambda *a: fn(lib, *a), arg, strict=True)

        @case(f"af.jvp[{fname}, v=None]")
        def _(lib, fn=fn, shapes=shapes):
            xs = make(lib, shapes)
            arg = tuple(xs) if len(xs) > 1 else xs[0]
            return lib.autograd.functional.jvp(lambda *a: fn(lib, *a), arg)

        @case(f"af.vjp[{fname}, v=None]")
        def _(lib, fn=fn, shapes=shapes):
            xs = make(lib, shapes)
            arg = tuple(xs) if len(xs) > 1 else xs[0]
            return lib.autograd.functional.vjp(lambda *a: fn(lib, *a), arg)

        @case(f"af.hessian[{fname}, not scalar]")
        def _(lib, fn=fn, shapes=shapes):
            xs = make(lib, shapes)
            arg = tuple(xs) if len(xs) > 1 else xs[0]
            return lib.autograd.functional.hessian(lambda *a: fn(lib, *a), arg)


def _like(lib, out, seed: int, extra: bool = False):
    """Cotangents shaped like ``out`` (a tensor or a tuple of them); with ``extra`` one dim too many."""
    if isinstance(out, (tuple, list)):
        return type(out)(_like(lib, o, seed + i, extra) for i, o in enumerate(out))
    shape = tuple(out.shape) + ((2,) if extra else ())
    return lib.tensor(values(shape, seed))


def _independent_cases():
    """Outputs that do not depend on an input: strict mode's errors, zeros otherwise."""
    independent = lambda lib, x, y: x * 2  # noqa: E731 - y unused
    constant = lambda lib, x: lib.ones(2)  # noqa: E731
    for strict in (False, True):
        for transform in ("jacobian", "vjp", "jvp"):
            @case(f"af.{transform}[unused input, strict={strict}]")
            def _(lib, strict=strict, transform=transform):
                xs = make(lib, [(2,), (2,)])
                extra = () if transform == "jacobian" else (tuple(make(lib, [(2,), (2,)], seed=3))
                                                           if transform == "jvp" else lib.ones(2),)
                return getattr(lib.autograd.functional, transform)(lambda *a: independent(lib, *a), tuple(xs),
                                                                    *extra, strict=strict)

            @case(f"af.{transform}[constant output, strict={strict}]")
            def _(lib, strict=strict, transform=transform):
                (x,) = make(lib, [(2,)])
                extra = () if transform == "jacobian" else (lib.ones(2),)
                return getattr(lib.autograd.functional, transform)(lambda a: constant(lib, a), x, *extra,
                                                                    strict=strict)
        for transform in ("hessian", "hvp", "vhp"):
            @case(f"af.{transform}[linear function, strict={strict}]")
            def _(lib, strict=strict, transform=transform):
                (x,) = make(lib, [(3,)])
                extra = () if transform == "hessian" else (lib.ones(3),)
                return getattr(lib.autograd.functional, transform)(lambda a: (a * 2).sum(), x, *extra,
                                                                    strict=strict)
    for transform in ("jacrev", "jacfwd"):
        @case(f"func.{transform}[unused input]")
        def _(lib, transform=transform):
            xs = make(lib, [(2,), (2,)])
            return getattr(lib.func, transform)(lambda x, y: x * 2, argnums=(0, 1))(*xs)
    for transform in ("grad", "grad_and_value"):
        @case(f"func.{transform}[unused input]")
        def _(lib, transform=transform):
            xs = make(lib, [(2,), (2,)])
            return getattr(lib.func, transform)(lambda x, y: (x * 2).sum(), argnums=1)(*xs)

        @case(f"func.{transform}[int output]")
        def _(lib, transform=transform):
            xs = make(lib, [(2,)])
            return getattr(lib.func, transform)(lambda x: 3)(*xs)

        @case(f"func.{transform}[dict input]")
        def _(lib, transform=transform):
            xs = make(lib, [(2,), (3,)])
            return getattr(lib.func, transform)(lambda d: (d["a"].sum() * d["b"]).sum())({"a": xs[0], "b": xs[1]})

        @case(f"func.{transform}[argnums=()]")
        def _(lib, transform=transform):
            xs = make(lib, [(2,)])
            return getattr(lib.func, transform)(lambda x: x.sum(), argnums=())(*xs)

        @case(f"func.{transform}[no arguments]")
        def _(lib, transform=transform):
            return getattr(lib.func, transform)(lambda: lib.ones(()))()


def _penalty_cases():
    """A transform of a function closing over an nn.Parameter, then a gradient penalty's backward."""
    scalar = lambda lib, w, x: ((w @ x).tanh() * x[:2]).sum()  # noqa: E731
    vector = lambda lib, w, x: (w @ x).tanh()  # noqa: E731
    transforms = {
        "func.grad": lambda lib, w, x: lib.func.grad(lambda x: scalar(lib, w, x))(x),
        "func.grad_and_value": lambda lib, w, x: lib.func.grad_and_value(lambda x: scalar(lib, w, x))(x),
        "func.vjp": lambda lib, w, x: lib.func.vjp(lambda x: vector(lib, w, x), x)[1](lib.ones(2))[0],
        "func.jvp": lambda lib, w, x: lib.func.jvp(lambda x: vector(lib, w, x), (x,), (lib.ones(3),))[1],
        "func.jacrev": lambda lib, w, x: lib.func.jacrev(lambda x: vector(lib, w, x))(x),
        "func.jacfwd": lambda lib, w, x: lib.func.jacfwd(lambda x: vector(lib, w, x))(x),
        "func.hessian": lambda lib, w, x: lib.func.hessian(lambda x: scalar(lib, w, x))(x),
        "func.vmap.grad": lambda lib, w, x: lib.func.vmap(lib.func.grad(lambda x: scalar(lib, w, x)))(
            lib.stack([x, 2 * x])),
        "func.vmap.jacrev": lambda lib, w, x: lib.func.vmap(lib.func.jacrev(lambda x: vector(lib, w, x)))(
            lib.stack([x, 2 * x])),
        "func.grad.grad": lambda lib, w, x: lib.func.grad(lambda x: lib.func.grad(
            lambda x: scalar(lib, w, x))(x).sum())(x),
        "af.jacobian": lambda lib, w, x: lib.autograd.functional.jacobian(lambda x: vector(lib, w, x), x),
        "af.jacobian create_graph": lambda lib, w, x: lib.autograd.functional.jacobian(
            lambda x: vector(lib, w, x), x, create_graph=True),
        "af.vjp": lambda lib, w, x: lib.autograd.functional.vjp(lambda x: scalar(lib, w, x), x)[1],
        "af.vjp create_graph": lambda lib, w, x: lib.autograd.functional.vjp(
            lambda x: scalar(lib, w, x), x, create_graph=True)[1],
        "af.hvp create_graph": lambda lib, w, x: lib.autograd.functional.hvp(
            lambda x: scalar(lib, w, x), x, lib.ones(3), create_graph=True)[1],
        "af.hessian create_graph": lambda lib, w, x: lib.autograd.functional.hessian(
            lambda x: scalar(lib, w, x), x, create_graph=True),
    }
    for name, transform in transforms.items():
        for input_requires_grad in (False, True):
            @case(f"penalty[{name}, x.requires_grad={input_requires_grad}]")
            def _(lib, transform=transform, input_requires_grad=input_requires_grad):
                w = lib.nn.Parameter(lib.tensor((np.arange(6, dtype=np.float32).reshape(2, 3) - 2) / 5))
                x = lib.tensor(values((3,), 1)).requires_grad_(input_requires_grad)
                result = transform(lib, w, x)
                leaves = [r for r in (result if isinstance(result, tuple) else (result,))]
                penalty = sum(r.pow(2).sum() for r in leaves if r.requires_grad)
                if hasattr(penalty, "backward"):
                    penalty.backward()
                return result, w.grad, x.grad


def _module_cases():
    def model(lib):
        lib.manual_seed(0)
        m = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.Tanh(), lib.nn.Linear(4, 2))
        with lib.no_grad():
            for i, p in enumerate(m.parameters()):
                p.copy_(lib.tensor(values(tuple(p.shape), 30 + i)))
        return m

    def params(lib, m):
        return {k: v.detach() for k, v in m.named_parameters()}

    @case("functional_call[plain]")
    def _(lib):
        m = model(lib)
        return lib.func.functional_call(m, params(lib, m), (lib.tensor(values((5, 3), 2)),))

    @case("functional_call[args not a tuple]")
    def _(lib):
        m = model(lib)
        return lib.func.functional_call(m, params(lib, m), lib.tensor(values((5, 3), 2)))

    @case("functional_call[tuple of dicts]")
    def _(lib):
        m = model(lib)
        p = params(lib, m)
        keys = list(p)
        return lib.func.functional_call(m, ({k: p[k] for k in keys[:2]}, {k: p[k] for k in keys[2:]}),
                                        (lib.tensor(values((5, 3), 2)),))

    @case("functional_call[overlapping dicts]")
    def _(lib):
        m = model(lib)
        p = params(lib, m)
        return lib.func.functional_call(m, (p, p), (lib.tensor(values((5, 3), 2)),))

    @case("functional_call[strict, missing key]")
    def _(lib):
        m = model(lib)
        p = params(lib, m)
        p.pop("0.bias")
        return lib.func.functional_call(m, p, (lib.tensor(values((5, 3), 2)),), strict=True)

    @case("functional_call[strict, unexpected key]")
    def _(lib):
        m = model(lib)
        p = params(lib, m)
        p["extra"] = lib.ones(1)
        return lib.func.functional_call(m, p, (lib.tensor(values((5, 3), 2)),), strict=True)

    @case("functional_call[not strict, partial]")
    def _(lib):
        m = model(lib)
        return lib.func.functional_call(m, {"0.weight": lib.zeros(4, 3)}, (lib.tensor(values((5, 3), 2)),))

    @case("functional_call[kwargs]")
    def _(lib):
        m = lib.nn.Linear(3, 2)
        p = {"weight": lib.tensor(values((2, 3), 4)), "bias": lib.tensor(values((2,), 5))}
        return lib.func.functional_call(m, p, (), {"input": lib.tensor(values((3,), 6))})

    @case("functional_call[module restored]")
    def _(lib):
        m = model(lib)
        lib.func.functional_call(m, {k: v * 0 for k, v in params(lib, m).items()}, (lib.ones(1, 3),))
        return m(lib.ones(1, 3))

    @case("functional_call[tied weights]")
    def _(lib):
        m = lib.nn.Sequential(lib.nn.Linear(3, 3, bias=False), lib.nn.Linear(3, 3, bias=False))
        m[1].weight = m[0].weight
        return lib.func.functional_call(m, {"0.weight": lib.tensor(values((3, 3), 8))}, (lib.ones(1, 3),))

    @case("functional_call[tied weights, two values]")
    def _(lib):
        m = lib.nn.Sequential(lib.nn.Linear(3, 3, bias=False), lib.nn.Linear(3, 3, bias=False))
        m[1].weight = m[0].weight
        return lib.func.functional_call(m, {"0.weight": lib.tensor(values((3, 3), 8)),
                                            "1.weight": lib.tensor(values((3, 3), 9))}, (lib.ones(1, 3),))

    @case("functional_call[tied weights, tie_weights=False]")
    def _(lib):
        m = lib.nn.Sequential(lib.nn.Linear(3, 3, bias=False), lib.nn.Linear(3, 3, bias=False))
        m[1].weight = m[0].weight
        return lib.func.functional_call(m, {"0.weight": lib.tensor(values((3, 3), 8))}, (lib.ones(1, 3),),
                                        tie_weights=False)

    @case("functional_call[buffers]")
    def _(lib):
        m = lib.nn.BatchNorm1d(3)
        m.eval()
        return lib.func.functional_call(m, {"running_mean": lib.ones(3), "running_var": lib.ones(3) * 4},
                                        (lib.tensor(values((4, 3), 2)),))

    @case("func.grad[functional_call, dict of params]")
    def _(lib):
        m = model(lib)
        x, y = lib.tensor(values((5, 3), 2)), lib.tensor(values((5, 2), 3))
        return lib.func.grad(lambda p: ((lib.func.functional_call(m, p, (x,)) - y) ** 2).mean())(params(lib, m))

    @case("func.grad[functional_call, params requiring grad]")
    def _(lib):
        m = model(lib)
        x, y = lib.tensor(values((5, 3), 2)), lib.tensor(values((5, 2), 3))
        p = dict(m.named_parameters())
        return lib.func.grad(lambda p: ((lib.func.functional_call(m, p, (x,)) - y) ** 2).mean())(p)

    @case("func.vmap.grad[per-sample gradients]")
    def _(lib):
        m = model(lib)
        x, y = lib.tensor(values((5, 3), 2)), lib.tensor(values((5, 2), 3))

        def loss(p, xi, yi):
            return ((lib.func.functional_call(m, p, (xi.unsqueeze(0),)) - yi) ** 2).mean()
        return lib.func.vmap(lib.func.grad(loss), in_dims=(None, 0, 0))(params(lib, m), x, y)

    @case("func.vmap.grad[per-sample gradients, chunk_size=2]")
    def _(lib):
        m = model(lib)
        x, y = lib.tensor(values((5, 3), 2)), lib.tensor(values((5, 2), 3))

        def loss(p, xi, yi):
            return ((lib.func.functional_call(m, p, (xi.unsqueeze(0),)) - yi) ** 2).mean()
        return lib.func.vmap(lib.func.grad(loss), in_dims=(None, 0, 0), chunk_size=2)(params(lib, m), x, y)

    @case("func.vmap[ensemble, stack_module_state]")
    def _(lib):
        models = [model(lib) for _ in range(3)]
        with lib.no_grad():
            for i, mm in enumerate(models):
                for p in mm.parameters():
                    p.mul_(i + 1)
        p, b = lib.func.stack_module_state(models)
        x = lib.tensor(values((5, 3), 2))
        return lib.func.vmap(lambda p, b, x: lib.func.functional_call(models[0], (p, b), (x,)),
                             in_dims=(0, 0, None))(p, b, x), {k: v.requires_grad for k, v in p.items()}

    @case("func.jacrev[functional_call, params]")
    def _(lib):
        m = model(lib)
        x = lib.tensor(values((2, 3), 2))
        return lib.func.jacrev(lambda p: lib.func.functional_call(m, p, (x,)))(params(lib, m))

    @case("func.hessian[functional_call, last bias]")
    def _(lib):
        m = model(lib)
        x = lib.tensor(values((2, 3), 2))
        p = params(lib, m)
        return lib.func.hessian(lambda b: lib.func.functional_call(m, {**p, "2.bias": b}, (x,)).pow(2).sum())(
            p["2.bias"])

    @case("func.jacfwd[functional_call, input]")
    def _(lib):
        m = model(lib)
        return lib.func.jacfwd(lambda x: lib.func.functional_call(m, params(lib, m), (x,)))(
            lib.tensor(values((3,), 2)))

    @case("func.grad[module closed over, parameters get no grad]")
    def _(lib):
        m = model(lib)
        g = lib.func.grad(lambda x: m(x).sum())(lib.tensor(values((3,), 2)))
        return g, [p.grad for p in m.parameters()]


def _vmap_misc_cases():
    @case("func.vmap[non-tensor with in_dim]")
    def _(lib):
        return lib.func.vmap(lambda x, n: x * n, in_dims=(0, 0))(lib.ones(2, 3), 3)

    @case("func.vmap[non-tensor, in_dim None]")
    def _(lib):
        return lib.func.vmap(lambda x, n: x * n, in_dims=(0, None))(lib.ones(2, 3), 3)

    @case("func.vmap[scalar input]")
    def _(lib):
        return lib.func.vmap(lambda x: x * 2)(lib.tensor(1.0))

    @case("func.vmap[returns a number]")
    def _(lib):
        return lib.func.vmap(lambda x: 1.0)(lib.ones(2, 3))

    @case("func.vmap[returns a tuple, out_dims tuple]")
    def _(lib):
        return lib.func.vmap(lambda x: (x.sum(), x * 2), out_dims=(0, 1))(lib.tensor(values((2, 3), 1)))

    @case("func.vmap[out_dims wrong length]")
    def _(lib):
        return lib.func.vmap(lambda x: (x.sum(), x * 2), out_dims=(0, 1, 0))(lib.tensor(values((2, 3), 1)))

    @case("func.vmap[dict input, nested in_dims]")
    def _(lib):
        d = {"a": lib.tensor(values((2, 3), 1)), "b": lib.tensor(values((3,), 2))}
        return lib.func.vmap(lambda d: d["a"] * d["b"], in_dims=({"a": 0, "b": None},))(d)

    @case("func.vmap[randomness error]")
    def _(lib):
        return lib.func.vmap(lambda x: x + lib.rand(3))(lib.ones(2, 3))

    @case("func.vmap[randomness invalid]")
    def _(lib):
        return lib.func.vmap(lambda x: x, randomness="sometimes")(lib.ones(2, 3))

    @case("func.vmap[no tensor inputs]")
    def _(lib):
        return lib.func.vmap(lambda x: x)(3)

    @case("func.vmap[in_dims a list]")
    def _(lib):
        return lib.func.vmap(lambda x, y: x + y, in_dims=[0, 0])(lib.ones(2, 3), lib.ones(2, 3))

    @case("func.vmap[nested vmap]")
    def _(lib):
        x = lib.tensor(values((2, 3, 4), 1))
        return lib.func.vmap(lib.func.vmap(lambda r: r.sum() * r))(x)

    @case("func.vmap[matmul batched vs unbatched]")
    def _(lib):
        a, b = lib.tensor(values((4, 2, 3), 1)), lib.tensor(values((3, 5), 2))
        return lib.func.vmap(lambda a: a @ b)(a)

    @case("func.vmap[in_dims=1, out_dims=None on unbatched result]")
    def _(lib):
        return lib.func.vmap(lambda x: lib.ones(2), out_dims=None)(lib.ones(3, 2))

    @case("func.vmap[requires_grad input, backward]")
    def _(lib):
        x = lib.tensor(values((3, 2), 1)).requires_grad_()
        y = lib.func.vmap(lambda r: r.sin() * r.sum())(x)
        y.sum().backward()
        return y, x.grad

    @case("func.vmap[chunk_size=0]")
    def _(lib):
        return lib.func.vmap(lambda x: x * 2, chunk_size=0)(lib.ones(2, 3))

    @case("func.vmap[chunk_size float]")
    def _(lib):
        return lib.func.vmap(lambda x: x * 2, chunk_size=1.5)(lib.ones(2, 3))

    @case("func.grad[argnums bool]")
    def _(lib):
        return lib.func.grad(lambda x: x.sum(), argnums=True)(lib.ones(2))

    @case("func.grad[integer input]")
    def _(lib):
        return lib.func.grad(lambda x: x.sum())(lib.ones(2, dtype=lib.int64))

    @case("func.jacrev[integer input]")
    def _(lib):
        return lib.func.jacrev(lambda x: x * 2)(lib.ones(2, dtype=lib.int64))

    @case("func.jacfwd[integer input]")
    def _(lib):
        return lib.func.jacfwd(lambda x: x * 2)(lib.ones(2, dtype=lib.int64))

    @case("func.grad[float64]")
    def _(lib):
        return lib.func.grad(lambda x: (x ** 2).sum())(lib.tensor(values((3,), 1).astype(np.float64)))

    @case("func.jacrev[float64]")
    def _(lib):
        return lib.func.jacrev(lambda x: x.exp())(lib.tensor(values((3,), 1).astype(np.float64)))

    @case("func.jacfwd[float64]")
    def _(lib):
        return lib.func.jacfwd(lambda x: x.exp())(lib.tensor(values((3,), 1).astype(np.float64)))

    @case("func.hessian[float64]")
    def _(lib):
        return lib.func.hessian(lambda x: x.exp().sum())(lib.tensor(values((3,), 1).astype(np.float64)))

    @case("af.jacobian[float64]")
    def _(lib):
        return lib.autograd.functional.jacobian(lambda x: x.exp(), lib.tensor(values((3,), 1).astype(np.float64)))

    @case("af.jacobian[function returns a list]")
    def _(lib):
        return lib.autograd.functional.jacobian(lambda x: [x.sin(), x.cos()], lib.tensor(values((3,), 1)))

    @case("af.jacobian[inputs a list]")
    def _(lib):
        xs = make(lib, [(2,), (2,)])
        return lib.autograd.functional.jacobian(lambda x, y: x * y, list(xs))

    @case("af.jacobian[function returns a number]")
    def _(lib):
        return lib.autograd.functional.jacobian(lambda x: 3.0, lib.tensor(values((3,), 1)))

    @case("af.jacobian[input not a tensor]")
    def _(lib):
        return lib.autograd.functional.jacobian(lambda x: x * 2, 3.0)

    @case("af.vjp[v wrong shape]")
    def _(lib):
        return lib.autograd.functional.vjp(lambda x: x * 2, lib.tensor(values((3,), 1)), lib.ones(4))

    @case("af.jvp[v wrong shape]")
    def _(lib):
        return lib.autograd.functional.jvp(lambda x: x * 2, lib.tensor(values((3,), 1)), lib.ones(4))

    @case("af.hvp[v wrong shape]")
    def _(lib):
        return lib.autograd.functional.hvp(lambda x: x.pow(3).sum(), lib.tensor(values((3,), 1)), lib.ones(4))

    @case("af.vjp[v for a scalar output is a 0-d tensor]")
    def _(lib):
        return lib.autograd.functional.vjp(lambda x: x.pow(3).sum(), lib.tensor(values((3,), 1)), lib.tensor(2.0))

    @case("af.hessian[outer_jacobian_strategy forward-mode, vectorize]")
    def _(lib):
        return lib.autograd.functional.hessian(lambda x: x.pow(3).sum(), lib.tensor(values((3,), 1)),
                                               vectorize=True, outer_jacobian_strategy="forward-mode")

    @case("af.hessian[outer_jacobian_strategy forward-mode, no vectorize]")
    def _(lib):
        return lib.autograd.functional.hessian(lambda x: x.pow(3).sum(), lib.tensor(values((3,), 1)),
                                               outer_jacobian_strategy="forward-mode")

    @case("af.jacobian[inputs require grad, leaves untouched]")
    def _(lib):
        x = lib.tensor(values((3,), 1)).requires_grad_()
        j = lib.autograd.functional.jacobian(lambda x: x.exp(), x)
        return j, x.grad, x.requires_grad

    @case("af.jacobian[input requires grad, create_graph, backward]")
    def _(lib):
        x = lib.tensor(values((3,), 1)).requires_grad_()
        j = lib.autograd.functional.jacobian(lambda x: x.exp() * x, x, create_graph=True)
        j.sum().backward()
        return j, x.grad


def _more_cases():
    """Pytrees, kwargs, randomness, linearize, nesting, and the transforms' own argument errors."""
    x3 = lambda lib: lib.tensor(values((3,), 1))  # noqa: E731

    @case("func.grad[kwargs not differentiated]")
    def _(lib):
        return lib.func.grad(lambda x, scale=1.0: (x * scale).sin().sum())(x3(lib), scale=2.0)

    @case("func.grad[tensor kwarg]")
    def _(lib):
        return lib.func.grad(lambda x, w=None: (x * w).sum())(x3(lib), w=lib.ones(3) * 2)

    @case("func.jacrev[dict output]")
    def _(lib):
        return lib.func.jacrev(lambda x: {"s": x.sin(), "c": x.cos().sum()})(x3(lib))

    @case("func.jacfwd[dict output]")
    def _(lib):
        return lib.func.jacfwd(lambda x: {"s": x.sin(), "c": x.cos().sum()})(x3(lib))

    @case("func.jacrev[list input]")
    def _(lib):
        return lib.func.jacrev(lambda xs: xs[0] * xs[1])([x3(lib), x3(lib) + 1])

    @case("func.jacfwd[tuple input]")
    def _(lib):
        return lib.func.jacfwd(lambda xs: xs[0] * xs[1])((x3(lib), x3(lib) + 1))

    @case("func.hessian[dict input]")
    def _(lib):
        return lib.func.hessian(lambda d: (d["a"] ** 3).sum() * d["b"].sum())({"a": x3(lib), "b": lib.ones(2)})

    @case("func.vjp[dict output, dict cotangent]")
    def _(lib):
        out, fn = lib.func.vjp(lambda x: {"s": x.sin(), "c": x.cos()}, x3(lib))
        return out, fn({"s": lib.ones(3), "c": lib.ones(3) * 2})

    @case("func.vjp[cotangent structure differs]")
    def _(lib):
        out, fn = lib.func.vjp(lambda x: (x.sin(), x.cos()), x3(lib))
        return fn(lib.ones(3))

    @case("func.vjp[non-tensor output]")
    def _(lib):
        return lib.func.vjp(lambda x: 3.0, x3(lib))[0]

    @case("func.jvp[non-tensor output]")
    def _(lib):
        return lib.func.jvp(lambda x: 3.0, (x3(lib),), (lib.ones(3),))

    @case("func.jvp[tangent dtype differs]")
    def _(lib):
        return lib.func.jvp(lambda x: x.sin(), (x3(lib),), (lib.ones(3, dtype=lib.float64),))

    @case("func.jvp[dict primal]")
    def _(lib):
        return lib.func.jvp(lambda d: d["a"] * d["b"], ({"a": x3(lib), "b": lib.ones(3)},),
                            ({"a": lib.ones(3), "b": lib.ones(3)},))

    @case("func.linearize")
    def _(lib):
        out, fn = lib.func.linearize(lambda x: x.sin() * x, x3(lib))
        return out, fn(lib.ones(3)), fn(x3(lib))

    @case("func.vmap[randomness different]")
    def _(lib):
        lib.manual_seed(0)
        y = lib.func.vmap(lambda x: x + lib.rand(3), randomness="different")(lib.zeros(4, 3))
        return y.shape, bool((y[0] != y[1]).any())

    @case("func.vmap[randomness same]")
    def _(lib):
        lib.manual_seed(0)
        y = lib.func.vmap(lambda x: x + lib.rand(3), randomness="same")(lib.zeros(4, 3))
        return y.shape, bool((y[0] == y[1]).all())

    @case("func.vmap[kwargs unmapped]")
    def _(lib):
        return lib.func.vmap(lambda x, scale: x * scale)(lib.ones(2, 3), scale=lib.tensor(3.0))

    @case("func.vmap[in_dims nested tuple]")
    def _(lib):
        return lib.func.vmap(lambda p: p[0] * p[1], in_dims=((0, None),))((lib.ones(2, 3), x3(lib)))

    @case("func.vmap[out_dims None for one output]")
    def _(lib):
        return lib.func.vmap(lambda x: (x * 2, lib.ones(2)), out_dims=(0, None))(lib.ones(4, 3))

    @case("func.vmap[item inside]")
    def _(lib):
        return lib.func.vmap(lambda x: x.sum().item())(lib.ones(2, 3))

    @case("func.vmap[data-dependent if]")
    def _(lib):
        return lib.func.vmap(lambda x: x if x.sum() > 0 else -x)(lib.tensor(values((2, 3), 1)))

    @case("func.vmap[in-place on mapped input]")
    def _(lib):
        x = lib.tensor(values((2, 3), 1))
        lib.func.vmap(lambda r: r.mul_(2))(x)
        return x

    @case("func.vmap[in-place into unmapped tensor]")
    def _(lib):
        y = lib.zeros(3)
        return lib.func.vmap(lambda r: y.add_(r))(lib.tensor(values((2, 3), 1)))

    @case("func.vmap[jacrev, per-sample Jacobians]")
    def _(lib):
        return lib.func.vmap(lib.func.jacrev(lambda x: x.sin() * x.sum()))(lib.tensor(values((4, 3), 1)))

    @case("func.vmap[hessian]")
    def _(lib):
        return lib.func.vmap(lib.func.hessian(lambda x: (x ** 3).sum()))(lib.tensor(values((4, 3), 1)))

    @case("func.vmap[vmap, in_dims=1 inner]")
    def _(lib):
        return lib.func.vmap(lib.func.vmap(lambda v: v.sum(), in_dims=0), in_dims=1)(lib.tensor(values((2, 3, 4), 1)))

    @case("func.grad[vmap inside]")
    def _(lib):
        return lib.func.grad(lambda x: lib.func.vmap(lambda r: r.sin().sum())(x).sum())(lib.tensor(values((2, 3), 1)))

    @case("func.jacrev[jacrev]")
    def _(lib):
        return lib.func.jacrev(lib.func.jacrev(lambda x: x.sin() * x.sum()))(x3(lib))

    @case("func.jacfwd[jacfwd]")
    def _(lib):
        return lib.func.jacfwd(lib.func.jacfwd(lambda x: x.sin() * x.sum()))(x3(lib))

    @case("func.jacfwd[jacrev, argnums=1]")
    def _(lib):
        return lib.func.jacfwd(lib.func.jacrev(lambda x, y: (x * y.exp()).sum(), argnums=1), argnums=1)(
            x3(lib), x3(lib) + 1)

    @case("func.grad[grad, argnums=(0, 1)]")
    def _(lib):
        return lib.func.grad(lambda x, y: lib.func.grad(lambda a, b: (a * b.sin()).sum(), argnums=1)(x, y).sum(),
                             argnums=(0, 1))(x3(lib), x3(lib) + 1)

    @case("func.grad[max with ties]")
    def _(lib):
        return lib.func.grad(lambda x: x.max())(lib.tensor([1.0, 3.0, 3.0]))

    @case("func.grad[relu at 0]")
    def _(lib):
        return lib.func.grad(lambda x: lib.relu(x).sum())(lib.tensor([-1.0, 0.0, 2.0]))

    @case("func.grad[norm at 0]")
    def _(lib):
        return lib.func.grad(lambda x: x.norm())(lib.zeros(3))

    @case("func.grad[detach inside]")
    def _(lib):
        return lib.func.grad(lambda x: (x * x.detach()).sum())(x3(lib))

    @case("func.grad[no_grad inside]")
    def _(lib):
        def f(x):
            with lib.no_grad():
                c = x * 2
            return (x * c).sum()
        return lib.func.grad(f)(x3(lib))

    @case("func.grad[float64 output of float32 input]")
    def _(lib):
        return lib.func.grad(lambda x: x.double().pow(2).sum())(x3(lib))

    @case("func.grad[complex output]")
    def _(lib):
        return lib.func.grad(lambda x: (x * 1j).sum())(x3(lib))

    @case("func.jacrev[complex output]")
    def _(lib):
        return lib.func.jacrev(lambda x: x * 1j)(x3(lib))

    @case("func.grad[backward inside]")
    def _(lib):
        def f(x):
            y = (x * 2).sum()
            y.backward()
            return y
        return lib.func.grad(f)(x3(lib))

    @case("func.grad[autograd.grad inside]")
    def _(lib):
        def f(x):
            y = x.pow(3).sum()
            (g,) = lib.autograd.grad(y, x, create_graph=True)
            return g.sum()
        return lib.func.grad(f)(x3(lib))

    @case("func.grad[not callable]")
    def _(lib):
        return lib.func.grad(3)(x3(lib))

    @case("func.grad[no positional args]")
    def _(lib):
        return lib.func.grad(lambda x=None: x.sum())(x=x3(lib))

    @case("func.jacrev[argnums out of range]")
    def _(lib):
        return lib.func.jacrev(lambda x: x * 2, argnums=2)(x3(lib))

    @case("func.jacfwd[argnums out of range]")
    def _(lib):
        return lib.func.jacfwd(lambda x: x * 2, argnums=2)(x3(lib))

    @case("func.jacfwd[randomness invalid]")
    def _(lib):
        return lib.func.jacfwd(lambda x: x * 2, randomness="sometimes")(x3(lib))

    @case("func.jacfwd[randomness same]")
    def _(lib):
        lib.manual_seed(0)
        return lib.func.jacfwd(lambda x: x * lib.rand(3), randomness="same")(x3(lib)).shape

    @case("func.jacfwd[random op, randomness error]")
    def _(lib):
        return lib.func.jacfwd(lambda x: x * lib.rand(3))(x3(lib))

    @case("func.jacrev[random op]")
    def _(lib):
        lib.manual_seed(0)
        return lib.func.jacrev(lambda x: x * lib.rand(3))(x3(lib)).shape

    @case("func.hessian[argnums=1]")
    def _(lib):
        return lib.func.hessian(lambda x, y: (x * y.pow(3)).sum(), argnums=1)(x3(lib), x3(lib) + 1)

    @case("func.hessian[non-scalar output]")
    def _(lib):
        return lib.func.hessian(lambda x: x.pow(3))(x3(lib))

    @case("func.functional_call[in grad, strict]")
    def _(lib):
        m = lib.nn.Linear(3, 2)
        p = {"weight": lib.tensor(values((2, 3), 4)), "bias": lib.tensor(values((2,), 5))}
        return lib.func.grad(lambda p: lib.func.functional_call(m, p, (x3(lib),), strict=True).sum())(p)

    @case("af.jacobian[0-d input and output]")
    def _(lib):
        return lib.autograd.functional.jacobian(lambda x: x.sin(), lib.tensor(0.5))

    @case("af.hessian[0-d input]")
    def _(lib):
        return lib.autograd.functional.hessian(lambda x: x.sin(), lib.tensor(0.5))

    @case("af.jvp[0-d input, v=None]")
    def _(lib):
        return lib.autograd.functional.jvp(lambda x: x.sin() * lib.ones(2), lib.tensor(0.5))

    @case("af.hvp[0-d input, v=None]")
    def _(lib):
        return lib.autograd.functional.hvp(lambda x: x.sin(), lib.tensor(0.5))

    @case("af.vjp[scalar output, v=None]")
    def _(lib):
        return lib.autograd.functional.vjp(lambda x: x.pow(2).sum(), x3(lib))

    @case("af.vjp[input requires grad, create_graph, backward]")
    def _(lib):
        x = x3(lib).requires_grad_()
        out, g = lib.autograd.functional.vjp(lambda x: x.pow(3).sum(), x, create_graph=True)
        g.sum().backward()
        return out, g, x.grad

    @case("af.hvp[input requires grad, create_graph, backward]")
    def _(lib):
        x = x3(lib).requires_grad_()
        out, hv = lib.autograd.functional.hvp(lambda x: x.pow(4).sum(), x, lib.ones(3), create_graph=True)
        hv.sum().backward()
        return out, hv, x.grad

    @case("af.jvp[input requires grad, no create_graph]")
    def _(lib):
        x = x3(lib).requires_grad_()
        return lib.autograd.functional.jvp(lambda x: x.pow(3), x, lib.ones(3)), x.grad

    @case("af.jacobian[vectorize, create_graph, backward]")
    def _(lib):
        x = x3(lib).requires_grad_()
        j = lib.autograd.functional.jacobian(lambda x: x.pow(3), x, create_graph=True, vectorize=True)
        j.sum().backward()
        return j, x.grad

    @case("af.hessian[tuple of inputs, vectorize]")
    def _(lib):
        return lib.autograd.functional.hessian(lambda x, y: (x.pow(2) * y.exp()).sum(), (x3(lib), x3(lib) + 1),
                                               vectorize=True)

    @case("af.hessian[float64]")
    def _(lib):
        return lib.autograd.functional.hessian(lambda x: x.pow(3).sum(), lib.tensor(values((3,), 1).astype(np.float64)))

    @case("af.jacobian[integer input]")
    def _(lib):
        return lib.autograd.functional.jacobian(lambda x: x * 2, lib.ones(3, dtype=lib.int64))

    @case("af.vjp[func raises]")
    def _(lib):
        def f(x):
            raise KeyError("inside")
        return lib.autograd.functional.vjp(f, x3(lib), lib.ones(3))

    @case("af.vjp[grad mode off outside]")
    def _(lib):
        with lib.no_grad():
            return lib.autograd.functional.vjp(lambda x: x.pow(3), x3(lib), lib.ones(3))

    @case("af.hessian[grad mode off outside]")
    def _(lib):
        with lib.no_grad():
            return lib.autograd.functional.hessian(lambda x: x.pow(3).sum(), x3(lib))


def _training_cases():
    """Whole training idioms: MAML's inner step, a penalty on a vmapped gradient, an ensemble trained
    through vmap, a Jacobian penalty with chunks; every parameter's .grad recorded."""
    def model(lib):
        m = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.Tanh(), lib.nn.Linear(4, 2))
        with lib.no_grad():
            for i, p in enumerate(m.parameters()):
                p.copy_(lib.tensor(values(tuple(p.shape), 40 + i)))
        return m

    def grads_of(m):
        return [None if p.grad is None else p.grad for p in m.parameters()]

    @case("training[MAML inner step through func.grad]")
    def _(lib):
        m = model(lib)
        x, y = lib.tensor(values((5, 3), 2)), lib.tensor(values((5, 2), 3))
        params = dict(m.named_parameters())

        def loss(p, x, y):
            return ((lib.func.functional_call(m, p, (x,)) - y) ** 2).mean()
        g = lib.func.grad(loss)(params, x, y)
        fast = {k: params[k] - 0.1 * g[k] for k in params}
        loss(fast, x * 2, y).backward()
        return grads_of(m)

    @case("training[penalty on per-sample input gradients]")
    def _(lib):
        m = model(lib)
        x = lib.tensor(values((4, 3), 2))
        g = lib.func.vmap(lib.func.grad(lambda xi: m(xi).sum()))(x)
        (m(x).pow(2).mean() + g.pow(2).sum()).backward()
        return g, grads_of(m)

    @case("training[Jacobian penalty, jacrev chunk_size=1]")
    def _(lib):
        m = model(lib)
        j = lib.func.jacrev(lambda xi: m(xi), chunk_size=1)(lib.tensor(values((3,), 2)))
        j.pow(2).sum().backward()
        return j, grads_of(m)

    @case("training[Jacobian penalty, jacfwd]")
    def _(lib):
        m = model(lib)
        j = lib.func.jacfwd(lambda xi: m(xi))(lib.tensor(values((3,), 2)))
        j.pow(2).sum().backward()
        return j, grads_of(m)

    @case("training[hessian trace penalty]")
    def _(lib):
        m = model(lib)
        h = lib.func.hessian(lambda xi: m(xi).sum())(lib.tensor(values((3,), 2)))
        h.diagonal().sum().backward()
        return h, grads_of(m)

    @case("training[vmap over closed-over model, backward]")
    def _(lib):
        m = model(lib)
        out = lib.func.vmap(lambda xi: m(xi))(lib.tensor(values((4, 3), 2)))
        out.sum().backward()
        return out, grads_of(m)

    @case("training[ensemble, vmap functional_call, backward to stacked params]")
    def _(lib):
        models = [model(lib) for _ in range(2)]
        params, buffers = lib.func.stack_module_state(models)
        out = lib.func.vmap(lambda p, b, x: lib.func.functional_call(models[0], (p, b), (x,)),
                            in_dims=(0, 0, None))(params, buffers, lib.tensor(values((5, 3), 2)))
        out.pow(2).mean().backward()
        return out, {k: v.grad for k, v in params.items()}

    @case("training[grad_and_value, value backward]")
    def _(lib):
        m = model(lib)
        g, v = lib.func.grad_and_value(lambda xi: m(xi).pow(2).sum())(lib.tensor(values((3,), 2)))
        (v + g.sum()).backward()
        return g, v, grads_of(m)

    @case("training[vjp_fn called twice, penalty]")
    def _(lib):
        m = model(lib)
        out, fn = lib.func.vjp(lambda xi: m(xi), lib.tensor(values((3,), 2)))
        (a,) = fn(lib.ones(2))
        (b,) = fn(lib.tensor([1.0, -1.0]))
        (a * b).sum().backward()
        return a, b, grads_of(m)

    @case("training[func.grad under torch.no_grad, weights get nothing]")
    def _(lib):
        m = model(lib)
        with lib.no_grad():
            g = lib.func.grad(lambda xi: m(xi).sum())(lib.tensor(values((3,), 2)))
        return g, grads_of(m)


def _vmap_shape_cases():
    """vmap's dims, sizes and containers."""
    t = lambda lib, shape, seed=1: lib.tensor(values(shape, seed))  # noqa: E731
    bodies = {
        "identity": lambda lib, x: x,
        "sum": lambda lib, x: x.sum(),
        "sum dim 0": lambda lib, x: x.sum(0),
        "transpose": lambda lib, x: x.T,
        "matmul self": lambda lib, x: x @ x.T,
        "unsqueeze": lambda lib, x: x.unsqueeze(0),
        "index 0": lambda lib, x: x[0],
        "reshape": lambda lib, x: x.reshape(-1),
        "softmax": lambda lib, x: x.softmax(-1),
        "max dim": lambda lib, x: x.max(-1),
        "tuple out": lambda lib, x: (x.sum(), x * 2),
        "dict out": lambda lib, x: {"a": x.mean(), "b": x.cumsum(0)},
        "int tensor": lambda lib, x: (x > 0).long().sum(),
        "new_zeros": lambda lib, x: x.new_zeros(2) + x.sum(),
        "zeros_like": lambda lib, x: lib.zeros_like(x) + 1,
        "cat with constant": lambda lib, x: lib.cat([x, lib.ones(1, x.shape[-1])]),
        "where": lambda lib, x: lib.where(x > 0, x, lib.zeros(())),
        "gather": lambda lib, x: x.gather(-1, lib.zeros(x.shape[0], 1, dtype=lib.int64)),
    }
    for name, body in bodies.items():
        for in_dims, out_dims in ((0, 0), (1, -1), (-1, 0)):
            @case(f"func.vmap[{name}, in_dims={in_dims}, out_dims={out_dims}]")
            def _(lib, body=body, in_dims=in_dims, out_dims=out_dims):
                x = t(lib, (4, 2, 3)).movedim(0, in_dims)
                return lib.func.vmap(lambda x: body(lib, x), in_dims=in_dims, out_dims=out_dims)(x)

    @case("func.vmap[batch of size 1]")
    def _(lib):
        return lib.func.vmap(lambda x: x.sin())(t(lib, (1, 3)))

    @case("func.vmap[batch of size 0]")
    def _(lib):
        return lib.func.vmap(lambda x: x.sin())(lib.zeros(0, 3))

    @case("func.vmap[out_dims out of range]")
    def _(lib):
        return lib.func.vmap(lambda x: x.sin(), out_dims=3)(t(lib, (2, 3)))

    @case("func.vmap[int64 input]")
    def _(lib):
        return lib.func.vmap(lambda x: x * 2)(lib.arange(6).reshape(2, 3))

    @case("func.vmap[returns input, is it a view]")
    def _(lib):
        x = t(lib, (2, 3))
        y = lib.func.vmap(lambda r: r)(x)
        return y, y.data_ptr() == x.data_ptr()

    @case("func.vmap[in_dims a float]")
    def _(lib):
        return lib.func.vmap(lambda x: x, in_dims=0.5)(t(lib, (2, 3)))

    @case("func.vmap[in_dims a list]")
    def _(lib):
        return lib.func.vmap(lambda x: x, in_dims=[0])(t(lib, (2, 3)))

    @case("func.vmap[func not callable]")
    def _(lib):
        return lib.func.vmap(3)(t(lib, (2, 3)))

    @case("func.vmap[returns None]")
    def _(lib):
        return lib.func.vmap(lambda x: None)(t(lib, (2, 3)))

    @case("func.vmap[grad of vmap of grad]")
    def _(lib):
        f = lambda x: lib.func.vmap(lib.func.grad(lambda r: (r ** 3).sum()))(x).sum()  # noqa: E731
        return lib.func.grad(f)(t(lib, (2, 3)))


def _module_state_cases():
    """Modules with state or randomness under vmap, and stack_module_state's checks."""
    x = lambda lib: lib.tensor(values((4, 2, 3), 1))  # noqa: E731

    @case("func.vmap[BatchNorm1d training, running stats]")
    def _(lib):
        m = lib.nn.BatchNorm1d(3)
        out = lib.func.vmap(m)(x(lib))
        return out, m.running_mean

    @case("func.vmap[BatchNorm1d eval]")
    def _(lib):
        m = lib.nn.BatchNorm1d(3).eval()
        return lib.func.vmap(m)(x(lib))

    @case("func.vmap[BatchNorm1d after replace_all_batch_norm_modules_]")
    def _(lib):
        m = lib.func.replace_all_batch_norm_modules_(lib.nn.Sequential(lib.nn.BatchNorm1d(3)))
        return lib.func.vmap(m)(x(lib)), m[0].running_mean, m[0].track_running_stats

    @case("func.vmap[Dropout training, randomness error]")
    def _(lib):
        return lib.func.vmap(lib.nn.Dropout(0.5))(x(lib))

    @case("func.vmap[Dropout eval]")
    def _(lib):
        return lib.func.vmap(lib.nn.Dropout(0.5).eval())(x(lib))

    @case("func.vmap[Dropout p=0 training]")
    def _(lib):
        return lib.func.vmap(lib.nn.Dropout(0.0))(x(lib))

    @case("func.vmap[LayerNorm]")
    def _(lib):
        return lib.func.vmap(lib.nn.LayerNorm(3))(x(lib))

    @case("func.vmap[Conv1d on unbatched slices]")
    def _(lib):
        m = lib.nn.Conv1d(2, 2, 2)
        with lib.no_grad():
            m.weight.copy_(lib.tensor(values((2, 2, 2), 5)))
            m.bias.zero_()
        return lib.func.vmap(m)(x(lib))

    @case("stack_module_state[no models]")
    def _(lib):
        return lib.func.stack_module_state([])

    @case("stack_module_state[train and eval mixed]")
    def _(lib):
        return lib.func.stack_module_state([lib.nn.Linear(2, 2), lib.nn.Linear(2, 2).eval()])

    @case("stack_module_state[requires_grad and leaves]")
    def _(lib):
        lib.manual_seed(0)
        p, b = lib.func.stack_module_state([lib.nn.Linear(2, 2), lib.nn.Linear(2, 2)])
        return {k: (tuple(v.shape), v.requires_grad, v.is_leaf) for k, v in p.items()}, b

    @case("functional_call[module with buffers, vmap over buffers]")
    def _(lib):
        m = lib.nn.BatchNorm1d(3).eval()
        buffers = {"running_mean": lib.tensor(values((4, 3), 2)), "running_var": lib.ones(4, 3)}
        return lib.func.vmap(lambda b, xi: lib.func.functional_call(m, b, (xi,)), in_dims=(0, 0))(buffers, x(lib))


def build_cases():
    _scalar_cases()
    _vector_cases(VECTOR, multi=False)
    _vector_cases(MULTI, multi=True)
    _independent_cases()
    _penalty_cases()
    _module_cases()
    _vmap_misc_cases()
    _more_cases()
    _training_cases()
    _vmap_shape_cases()
    _module_state_cases()
    return CASES


# ----------------------------------------------------------------------------------------------
# running
# ----------------------------------------------------------------------------------------------

def run_one(lib, fn):
    try:
        with warnings.catch_warnings(), time_limit(SECONDS_PER_CASE):
            warnings.simplefilter("ignore")
            return ("ok", snapshot(fn(lib)))
    except Exception as error:  # noqa: BLE001 - the class is what is compared
        return ("error", type(error).__name__, str(error).splitlines()[0] if str(error) else "")


def classify(t, c) -> str:
    if t[0] == "error" and c[0] == "error":
        return "same" if t[1] == c[1] else "error_class_differs"
    if t[0] == "error":
        return "torch_only"
    if c[0] == "error":
        return "chainrule_only"
    kind = compare(t[1], c[1])
    return {None: "same", "type": "type_differs", "values": "values_differ"}[kind]


def describe(result, limit: int = 300) -> str:
    if result[0] == "error":
        return f"{result[1]}: {result[2]}"[:limit]

    def short(s):
        if s[0] == "tensor":
            return f"T({s[1]}, {s[2]}, rg={s[3]})"
        if s[0] in ("tuple", "list"):
            return s[0][0] + "[" + ", ".join(short(x) for x in s[1]) + "]"
        if s[0] == "dict":
            return "{" + ", ".join(f"{k}: {short(v)}" for k, v in s[1]) + "}"
        return repr(s[1])
    return short(result[1])[:limit]


def _unnamed(message: str) -> str:
    return message.replace("torch.", "").replace("chainrule.", "")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filter", default="")
    parser.add_argument("--show", default="", help="a kind whose cases to list, or 'all' for every difference")
    args = parser.parse_args(argv)
    import torch

    import chainrule

    cases = {name: fn for name, fn in build_cases().items() if args.filter in name}
    counts = collections.Counter()
    shown = []
    messages_differ = 0
    for name, fn in cases.items():
        t = run_one(torch, fn)
        c = run_one(chainrule, fn)
        kind = classify(t, c)
        counts[kind] += 1
        # of the "same" errors, those whose first lines differ (the library's name aside)
        worded_otherwise = kind == "same" and t[0] == "error" and _unnamed(t[2]) != _unnamed(c[2])
        messages_differ += worded_otherwise
        if args.show and ((kind != "same" and args.show in (kind, "all")) or
                          (worded_otherwise and args.show == "message_differs")):
            shown.append((kind, name, describe(t), describe(c)))
    for kind, name, t, c in shown:
        print(f"{kind:20s} {name}\n    torch:     {t}\n    chainrule: {c}")
    print(f"{len(cases)} cases: " + ", ".join(f"{kind} {counts[kind]}" for kind in KINDS) +
          f" (of the same errors, {messages_differ} worded otherwise)")
    return dict(counts)


if __name__ == "__main__":
    main()
