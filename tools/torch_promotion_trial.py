"""Type promotion against torch: every op in ``BINARY``, ``UNARY`` and ``REDUCTIONS`` run on torch and on
chainrule over the dtypes in ``DTYPES``, with operands as 1-d tensors, 0-d tensors and Python scalars,
plus ``out=`` tensors of every dtype and the in-place variants (whose result type must cast to the
destination: "result type Float can't be cast to the desired output type Long").

Each case compares, in this order: whether each side raised and with which builtin class, the result's
dtype, then its values. Kinds:

    same             both raised the same builtin class, or both returned equal dtypes and values
    error_class      one side raised and the other did not, or the classes differ
    dtype            both returned, dtypes differ
    values           both returned with the same dtype, values differ
    leak             chainrule raised a class torch never uses for argument errors (AttributeError, ...)

    python tools/torch_promotion_trial.py                    # everything, a tally and the biggest groups
    python tools/torch_promotion_trial.py --filter '^add'    # cases whose name matches
    python tools/torch_promotion_trial.py --show dtype       # every case of one kind

Torch is a test oracle only; chainrule never imports it.
"""

from __future__ import annotations

import argparse
import collections
import math
import warnings

import numpy as np

DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64",
          "complex64", "complex128")

# Python scalars an operand may be; one of each kind (bool, int, float, complex)
SCALARS = (True, 2, 2.5, 1 + 1j)

BINARY = ("add", "sub", "mul", "div", "true_divide", "floor_divide", "remainder", "fmod", "pow", "atan2",
          "maximum", "minimum", "fmax", "fmin", "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
          "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift", "bitwise_right_shift",
          "hypot", "copysign", "nextafter", "ldexp", "xlogy", "logaddexp", "logaddexp2", "heaviside", "gcd", "lcm",
          "float_power", "isclose", "polar", "vecdot", "dot", "matmul", "outer", "inner", "cross", "complex",
          "special.xlog1py", "special.zeta", "igamma", "igammac", "dist", "kron", "vdot", "ger", "linalg.vecdot",
          "fmax", "masked_fill", "lerp", "where", "clamp", "clamp_min", "clamp_max", "bucketize", "searchsorted",
          "hypot", "true_divide", "subtract", "multiply", "divide", "rsub", "not_equal", "greater", "less_equal")

# unary ops whose out= tensor takes every dtype
OUT_UNARY = ("exp", "sqrt", "abs", "neg", "ceil", "sign", "sigmoid", "isnan", "bitwise_not", "logical_not", "round",
             "angle", "reciprocal", "square", "sin", "signbit", "frac", "trunc")

# matrix products: (name, shapes of the operands), every dtype pair over the first two operands, the
# rest (where there are three) taking the first's dtype, and the three-operand ones with the first
# (the added term) differing instead
MATRIX = (("mm", ((2, 3), (3, 2))), ("bmm", ((1, 2, 3), (1, 3, 2))), ("mv", ((2, 3), (3,))),
          ("matmul", ((2, 3), (3, 2))), ("addmm", ((2, 2), (2, 3), (3, 2))), ("addmv", ((2,), (2, 3), (3,))),
          ("addr", ((2, 3), (2,), (3,))), ("baddbmm", ((1, 2, 2), (1, 2, 3), (1, 3, 2))),
          ("addbmm", ((2, 2), (1, 2, 3), (1, 3, 2))), ("tensordot", ((2, 3), (3, 2))),
          ("chain_matmul", ((2, 3), (3, 2))), ("linalg.multi_dot", ((2, 3), (3, 2))))

# ternary elementwise ops: the three operand dtypes vary over a smaller set
TERNARY = ("addcmul", "addcdiv", "lerp", "where", "clamp")
TERNARY_DTYPES = ("bool", "int64", "float16", "float32", "float64", "complex64")

# the in-place spelling of a binary op where torch has one (Tensor methods)
INPLACE = ("add", "sub", "mul", "div", "true_divide", "floor_divide", "remainder", "fmod", "pow", "atan2",
           "maximum", "fmax", "fmin", "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
           "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift",
           "bitwise_right_shift", "hypot", "copysign", "nextafter", "ldexp", "xlogy", "heaviside", "gcd", "lcm",
           "float_power")

OUT_BINARY = ("add", "sub", "mul", "div", "floor_divide", "remainder", "pow", "maximum", "eq", "lt",
              "logical_and", "bitwise_and", "atan2", "hypot")

UNARY = ("neg", "abs", "exp", "exp2", "expm1", "log", "log2", "log1p", "sqrt", "rsqrt", "sin", "cos", "tan",
         "asin", "atan", "sinh", "tanh", "sigmoid", "erf", "erfc", "erfinv", "lgamma", "digamma", "ceil", "floor",
         "round", "trunc", "frac", "sign", "sgn", "signbit", "reciprocal", "square", "bitwise_not", "logical_not",
         "isnan", "isinf", "isfinite", "isreal", "angle", "real", "imag", "conj", "positive", "deg2rad", "rad2deg",
         "nan_to_num", "logit", "i0", "sinc", "relu", "fix", "absolute", "negative", "clone")

REDUCTIONS = ("sum", "prod", "mean", "nansum", "nanmean", "amax", "amin", "max", "min", "argmax", "argmin",
              "cumsum", "cumprod", "logcumsumexp", "std", "var", "norm", "all", "any", "logsumexp",
              "count_nonzero", "median", "nanmedian", "aminmax", "cummax", "trace")

# reductions that take dtype=: every DTYPES entry as the accumulation dtype
DTYPE_REDUCTIONS = ("sum", "prod", "mean", "nansum", "nanmean", "cumsum", "cumprod")

# reductions that need a dim
NEEDS_DIM = ("cumsum", "cumprod", "logcumsumexp", "cummax")

INTERNAL = (AttributeError, KeyError, NameError, UnboundLocalError, AssertionError, ZeroDivisionError,
            RecursionError, MemoryError, np.exceptions.DTypePromotionError if hasattr(np, "exceptions") else TypeError)


def _values(dtype: str, second: bool, zero_d: bool):
    if dtype == "bool":
        return True if zero_d else ([True, True, True] if second else [True, False, True])
    if zero_d:
        return 2 if second else 3
    return [2, 3, 1] if second else [5, 2, 7]


def _operand(lib, kind, dtype, second):
    """kind: 't' a 1-d tensor, 'z' a 0-d tensor, 's' a Python scalar (dtype then holds the scalar)."""
    if kind == "s":
        return dtype
    return lib.tensor(_values(dtype, second, kind == "z"), dtype=getattr(lib, dtype))


def _matrix(lib, shape, dtype):
    n = 1
    for size in shape:
        n *= size
    values = [True] * n if dtype == "bool" else [(i % 3) + 1 for i in range(n)]
    return lib.tensor(values, dtype=getattr(lib, dtype)).reshape(shape)


def _resolve(lib, name):
    """``special.zeta`` -> lib.special.zeta."""
    for part in name.split("."):
        lib = getattr(lib, part)
    return lib


def _describe(operand_kind, dtype):
    return f"{operand_kind}:{dtype!r}" if operand_kind == "s" else f"{operand_kind}:{dtype}"


def _cases():
    """Yield (name, call) where call(lib) runs the case on one library."""
    kinds = [("t", d) for d in DTYPES] + [("z", d) for d in DTYPES]
    for op in BINARY:
        pairs = [(a, b) for a in kinds for b in kinds if a[0] == "t" or b[0] == "t" or (a[0] == b[0] == "z"
                                                                                        and a[1] == b[1])]
        pairs += [(a, ("s", s)) for a in kinds if a[0] == "t" for s in SCALARS]
        pairs += [(("s", s), b) for b in kinds if b[0] == "t" for s in SCALARS]
        for (ka, da), (kb, db) in pairs:
            def call(lib, op=op, ka=ka, da=da, kb=kb, db=db):
                a, b = _operand(lib, ka, da, False), _operand(lib, kb, db, True)
                if op == "masked_fill":
                    return lib.masked_fill(a, lib.tensor([True, False, True]), b)
                if op in ("where", "clamp", "lerp"):  # two operands given: where(cond=a > 2, a, b), lerp weight 0.5
                    return lib.where(a > 2, a, b) if op == "where" else \
                        (lib.clamp(a, b) if op == "clamp" else lib.lerp(a, b, 0.5))
                if op in ("bucketize", "searchsorted"):
                    return lib.bucketize(a, b) if op == "bucketize" else lib.searchsorted(b, a)
                return _resolve(lib, op)(a, b)
            yield f"{op}({_describe(ka, da)}, {_describe(kb, db)})", call
    for op in INPLACE:
        for da in DTYPES:
            for kb, db in [("t", d) for d in DTYPES] + [("s", s) for s in SCALARS]:
                def call(lib, op=op, da=da, kb=kb, db=db):
                    return getattr(_operand(lib, "t", da, False), op + "_")(_operand(lib, kb, db, True))
                yield f"Tensor.{op}_(t:{da}, {_describe(kb, db)})", call
    for op in OUT_BINARY:
        for da in DTYPES:
            for do in DTYPES:
                def call(lib, op=op, da=da, do=do):
                    out = lib.empty(3, dtype=getattr(lib, do))
                    result = getattr(lib, op)(_operand(lib, "t", da, False), _operand(lib, "t", da, True), out=out)
                    assert result is out
                    return result
                yield f"{op}(t:{da}, t:{da}, out={do})", call
    for op in OUT_UNARY:
        for da in DTYPES:
            for do in DTYPES:
                def call(lib, op=op, da=da, do=do):
                    out = lib.empty(3, dtype=getattr(lib, do))
                    result = _resolve(lib, op)(_operand(lib, "t", da, False), out=out)
                    assert result is out
                    return result
                yield f"{op}(t:{da}, out={do})", call
    for op, shapes in MATRIX:
        for da in DTYPES:
            for db in DTYPES:
                def call(lib, op=op, shapes=shapes, da=da, db=db):
                    dtypes = (da, db, da) if len(shapes) == 2 or op not in ("addmm", "addmv", "addr", "baddbmm",
                                                                             "addbmm") else (db, da, da)
                    operands = [_matrix(lib, shape, d) for shape, d in zip(shapes, dtypes)]
                    if op in ("chain_matmul", "linalg.multi_dot"):
                        return _resolve(lib, op)(operands) if op == "linalg.multi_dot" else \
                            _resolve(lib, op)(*operands)
                    if op == "tensordot":
                        return lib.tensordot(*operands, dims=1)
                    return _resolve(lib, op)(*operands)
                yield f"{op}(t:{da}, t:{db})", call
    for op in TERNARY:
        for da in TERNARY_DTYPES:
            for db in TERNARY_DTYPES:
                for dc in TERNARY_DTYPES:
                    def call(lib, op=op, da=da, db=db, dc=dc):
                        a, b, c = (_operand(lib, "t", d, i == 1) for i, d in enumerate((da, db, dc)))
                        if op == "where":
                            return lib.where(a > 2 if da != "bool" else a, b, c)
                        if op == "clamp":
                            return lib.clamp(a, b, c)
                        return getattr(lib, op)(a, b, c)
                    yield f"{op}(t:{da}, t:{db}, t:{dc})", call
    for op in UNARY:
        for k, d in kinds:
            def call(lib, op=op, k=k, d=d):
                return getattr(lib, op)(_operand(lib, k, d, False))
            yield f"{op}({_describe(k, d)})", call
    for op in REDUCTIONS:
        for d in DTYPES:
            dims = [0] if op in NEEDS_DIM else [None, 0]
            if op == "trace":
                def call(lib, d=d):
                    return lib.trace(lib.tensor([[3, 1], [2, 5]], dtype=getattr(lib, d)))
                yield f"trace(t:{d})", call
                continue
            for dim in dims:
                def call(lib, op=op, d=d, dim=dim):
                    x = _operand(lib, "t", d, False)
                    return getattr(lib, op)(x) if dim is None else getattr(lib, op)(x, dim)
                yield f"{op}(t:{d}{'' if dim is None else ', dim=0'})", call
    for op in DTYPE_REDUCTIONS:
        for d in DTYPES:
            for acc in DTYPES:
                def call(lib, op=op, d=d, acc=acc):
                    x = _operand(lib, "t", d, False)
                    if op in NEEDS_DIM:
                        return getattr(lib, op)(x, 0, dtype=getattr(lib, acc))
                    return getattr(lib, op)(x, dtype=getattr(lib, acc))
                yield f"{op}(t:{d}, dtype={acc})", call


def _run(call, lib):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return call(lib), None
    except Exception as exc:  # the exception is the answer being compared
        return None, exc


def _flatten(result):
    """A result (a tensor or a tuple of them, e.g. max with dim) as a list of tensors."""
    if isinstance(result, tuple):
        return list(result)
    return [result]


def _as_array(tensor):
    values = tensor.tolist()
    return np.asarray(values, dtype=complex if tensor.is_complex() else float)


def _tolerance(dtype_name):
    return {"float16": 2e-3, "bfloat16": 2e-2, "float32": 1e-5, "complex64": 1e-5}.get(dtype_name, 1e-7)


def _builtin(exc_type):
    for cls in exc_type.__mro__:
        if cls.__module__ == "builtins":
            return cls
    return Exception


def compare(call):
    import torch

    import chainrule

    expected, torch_error = _run(call, torch)
    got, chainrule_error = _run(call, chainrule)
    if torch_error is not None or chainrule_error is not None:
        if chainrule_error is not None and isinstance(chainrule_error, INTERNAL) and not isinstance(
                torch_error, INTERNAL):
            return "leak", f"torch {type(torch_error).__name__}, chainrule {type(chainrule_error).__name__}: " \
                           f"{chainrule_error}"
        if torch_error is not None and chainrule_error is not None and isinstance(
                chainrule_error, _builtin(type(torch_error))):
            return "same", ""
        return "error_class", (f"torch {type(torch_error).__name__ if torch_error else 'ok'}"
                               f"{': ' + str(torch_error).splitlines()[0][:100] if torch_error else ''}, "
                               f"chainrule {type(chainrule_error).__name__ if chainrule_error else 'ok'}"
                               f"{': ' + str(chainrule_error).splitlines()[0][:100] if chainrule_error else ''}")
    expected, got = _flatten(expected), _flatten(got)
    for e, g in zip(expected, got):
        e_dtype, g_dtype = str(e.dtype).rpartition(".")[2], str(g.dtype).rpartition(".")[2]
        if e_dtype != g_dtype:
            return "dtype", f"torch {e_dtype}, chainrule {g_dtype}"
        if tuple(e.shape) != tuple(g.shape):
            return "values", f"shape torch {tuple(e.shape)}, chainrule {tuple(g.shape)}"
        ea, ga = _as_array(e), _as_array(g)
        tol = _tolerance(e_dtype)
        if not np.allclose(ga, ea, rtol=tol, atol=tol, equal_nan=True):
            return "values", f"torch {ea.tolist()}, chainrule {ga.tolist()}"
    return "same", ""


def _group(name):
    """A case name without its operand dtypes: the op and the operand kinds."""
    head, _, rest = name.partition("(")
    kinds = ",".join(part.strip()[0] for part in rest.rstrip(")").split(",") if part.strip())
    return f"{head}({kinds})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--filter", default=None, help="regular expression searched in the case name")
    parser.add_argument("--show", default=None, help="print every case of this kind")
    parser.add_argument("--top", type=int, default=25, help="how many of the biggest groups to print")
    args = parser.parse_args(argv)
    import re

    pattern = re.compile(args.filter) if args.filter else None
    tally = collections.Counter()
    groups = collections.Counter()
    examples = {}
    for name, call in _cases():
        if pattern is not None and not pattern.search(name):
            continue
        kind, detail = compare(call)
        tally[kind] += 1
        if kind != "same":
            key = (kind, _group(name), re.sub(r"\d+|'[^']*'|\[.*?\]", "#", detail)[:90])
            groups[key] += 1
            examples.setdefault(key, (name, detail))
            if args.show == kind:
                print(f"{kind:12} {name}: {detail}")
    total = sum(tally.values())
    print(f"cases {total}: " + ", ".join(f"{k} {tally[k]:,}" for k in ("same", "error_class", "dtype", "values",
                                                                        "leak")))
    for (kind, group, _), count in groups.most_common(args.top):
        name, detail = examples[(kind, group, _)]
        print(f"{count:6} {kind:12} {group:28} e.g. {name}: {detail[:150]}")
    return 0 if math.isfinite(total) else 1


if __name__ == "__main__":
    raise SystemExit(main())
