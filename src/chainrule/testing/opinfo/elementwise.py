"""Elementwise ops (chainrule/ops/elementwise.py): broadcast pairs, 0-d, empty and non-contiguous inputs."""

from __future__ import annotations

import numpy as np

from .core import OpCase, OpInfo, cached, noncontig, positive, randn, rng, select


@cached
def _cases() -> list[OpCase]:
    B = randn(3, 4)
    ROW = randn(4, seed=1)
    COL = randn(3, 1, seed=2)
    SCALAR = randn(seed=3)  # 0-d
    EMPTY = randn(0, 4)

    BINARY = [
        ("add", lambda lib, a, b: a + b),
        ("sub", lambda lib, a, b: a - b),
        ("mul", lambda lib, a, b: a * b),
        ("div", lambda lib, a, b: a / b),
        ("maximum", lambda lib, a, b: lib.maximum(a, b)),
        ("minimum", lambda lib, a, b: lib.minimum(a, b)),
        ("atan2", lambda lib, a, b: lib.atan2(a, b)),
        ("add_alpha", lambda lib, a, b: lib.add(a, b, alpha=2.5)),
        ("sub_alpha", lambda lib, a, b: lib.sub(a, b, alpha=0.5)),
    ]
    PAIRS = [(B, randn(3, 4, seed=5, low_gap=0.3)), (B, ROW), (COL, ROW), (SCALAR, B), (B, SCALAR),
             (noncontig(B), ROW), (EMPTY, randn(4, seed=6))]

    UNARY = [
        ("neg", lambda lib, x: -x, randn(3, 4)),
        ("abs", lambda lib, x: x.abs(), randn(3, 4, low_gap=0.1)),
        ("exp", lambda lib, x: x.exp(), randn(3, 4)),
        ("exp2", lambda lib, x: lib.exp2(x), randn(3, 4)),
        ("expm1", lambda lib, x: x.expm1(), randn(3, 4)),
        ("log", lambda lib, x: x.log(), positive(3, 4)),
        ("log1p", lambda lib, x: x.log1p(), positive(3, 4)),
        ("log2", lambda lib, x: x.log2(), positive(3, 4)),
        ("log10", lambda lib, x: x.log10(), positive(3, 4)),
        ("sqrt", lambda lib, x: x.sqrt(), positive(3, 4)),
        ("rsqrt", lambda lib, x: x.rsqrt(), positive(3, 4)),
        ("square", lambda lib, x: x.square(), randn(3, 4)),
        ("reciprocal", lambda lib, x: x.reciprocal(), positive(3, 4)),
        ("sin", lambda lib, x: x.sin(), randn(3, 4)),
        ("cos", lambda lib, x: x.cos(), randn(3, 4)),
        ("tan", lambda lib, x: x.tan(), randn(3, 4) * 0.5),
        ("asin", lambda lib, x: x.asin(), randn(3, 4) * 0.3),
        ("acos", lambda lib, x: x.acos(), randn(3, 4) * 0.3),
        ("atan", lambda lib, x: x.atan(), randn(3, 4)),
        ("sinh", lambda lib, x: x.sinh(), randn(3, 4)),
        ("cosh", lambda lib, x: x.cosh(), randn(3, 4)),
        ("tanh", lambda lib, x: x.tanh(), randn(3, 4)),
        ("sigmoid", lambda lib, x: x.sigmoid(), randn(3, 4) * 3),
        ("erf", lambda lib, x: lib.erf(x), randn(3, 4)),
        ("pow_scalar", lambda lib, x: x ** 3, randn(3, 4)),
        ("pow_half", lambda lib, x: x ** 0.5, positive(3, 4)),
        ("rpow", lambda lib, x: 2.0 ** x, randn(3, 4)),
        ("pow_tensor", lambda lib, x: x ** (x * 0.5), positive(3, 4)),
        ("clamp", lambda lib, x: x.clamp(-0.5, 0.5), randn(3, 4, low_gap=0.1)),
        ("clamp_min", lambda lib, x: x.clamp(min=0.2), randn(3, 4, low_gap=0.1) + 0.05),
        ("clamp_max", lambda lib, x: lib.clamp(x, max=0.1), randn(3, 4, low_gap=0.1) + 0.05),
        ("sign", lambda lib, x: x.sign() * x, randn(3, 4, low_gap=0.1)),
        ("floor", lambda lib, x: x.floor() + x, randn(3, 4)),
        ("ceil", lambda lib, x: x.ceil() + x, randn(3, 4)),
        ("round", lambda lib, x: x.round() + x, randn(3, 4)),
        ("trunc", lambda lib, x: x.trunc() + x, randn(3, 4)),
        ("frac", lambda lib, x: x.frac(), randn(3, 4) + 0.05),
        ("remainder", lambda lib, x: x % 0.7, randn(3, 4) + 0.01),
        ("fmod", lambda lib, x: lib.fmod(x, 0.7), randn(3, 4) + 0.01),
        ("rsub", lambda lib, x: 1.5 - x, randn(3, 4)),
        ("rdiv", lambda lib, x: 2.0 / x, positive(3, 4)),
        ("unary_0d", lambda lib, x: (x * 2).exp(), randn()),
        ("unary_empty", lambda lib, x: x.tanh(), randn(0, 3)),
        ("unary_noncontig", lambda lib, x: x.sin(), noncontig(randn(3, 4))),
        ("where", lambda lib, x: lib.where(x > 0, x * 2, x.exp()), randn(3, 4, low_gap=0.1)),
        # two numbers: their promoted dtype (a float pair -> the default float, an int pair -> int64)
        ("where_scalars", lambda lib, x: x * lib.where(x > 0, 1.0, -0.5), randn(3, 4, low_gap=0.1)),
        ("where_int_scalars", lambda lib, x: lib.where(x > 0, 2, 0) + x, randn(3, 4, low_gap=0.1)),
        ("xlogy", lambda lib, x: lib.xlogy(x, x + 3), positive(3, 4)),
        # x = 0 in places: the value is 0 there, the x-gradient still log y (torch's rule)
        ("xlogy_zeros", lambda lib, x: lib.xlogy(x * (x > 1.2), x + 3), positive(3, 4)),
        ("lerp", lambda lib, x: lib.lerp(x, x * x, 0.3), randn(3, 4)),
        ("addcmul", lambda lib, x: lib.addcmul(x, x, x.exp(), value=0.5), randn(3, 4)),
        ("addcdiv", lambda lib, x: lib.addcdiv(x, x, x.exp(), value=0.5), randn(3, 4)),
    ]

    CASES = [OpCase(f"{name}", fn, [a, b]) for name, fn in BINARY for a, b in PAIRS]
    CASES += [OpCase(name, fn, [x]) for name, fn, x in UNARY]
    return CASES + _inplace_cases()


def _inplace_cases() -> list[OpCase]:
    """Each in-place method on a copy of the input (``x * 1.0``: autograd refuses in-place writes
    into a leaf that requires grad), so the write is recorded and differentiated."""
    unary = {"neg_": randn(3, 4), "abs_": randn(3, 4, low_gap=0.1), "exp_": randn(3, 4), "expm1_": randn(3, 4),
             "log_": positive(3, 4), "log1p_": positive(3, 4), "sqrt_": positive(3, 4), "rsqrt_": positive(3, 4),
             "square_": randn(3, 4), "reciprocal_": positive(3, 4), "sin_": randn(3, 4), "cos_": randn(3, 4),
             "tan_": randn(3, 4) * 0.5, "tanh_": randn(3, 4), "sigmoid_": randn(3, 4), "erf_": randn(3, 4),
             "frac_": randn(3, 4) + 0.05}
    # piecewise-constant results: added to x so the gradient is 1 away from the jumps
    stepped = {"sign_": randn(3, 4, low_gap=0.1), "floor_": randn(3, 4), "ceil_": randn(3, 4),
               "round_": randn(3, 4), "trunc_": randn(3, 4)}
    cases = [OpCase(m, lambda lib, x, m=m: getattr(x * 1.0, m)(), [x]) for m, x in unary.items()]
    cases += [OpCase(m, lambda lib, x, m=m: getattr(x * 1.0, m)() + x, [x]) for m, x in stepped.items()]
    a, b, p = randn(3, 4, seed=21), randn(4, seed=22, low_gap=0.3), positive(3, 4, seed=23)
    binary = {"add_": [a, b], "sub_": [a, b], "subtract_": [a, b], "mul_": [a, b], "multiply_": [a, b],
              "div_": [a, b], "divide_": [a, b], "true_divide_": [a, b], "atan2_": [a, b], "pow_": [p, b]}
    cases += [OpCase(m, lambda lib, x, y, m=m: getattr(x * 1.0, m)(y), inputs) for m, inputs in binary.items()]
    cases += [
        OpCase("add_alpha_", lambda lib, x, y: (x * 1.0).add_(y, alpha=-1.5), [a, b]),
        OpCase("pow_scalar_", lambda lib, x: (x * 1.0).pow_(3), [a]),
        OpCase("remainder_", lambda lib, x: (x * 1.0).remainder_(0.7), [a + 0.01]),
        OpCase("fmod_", lambda lib, x: (x * 1.0).fmod_(0.7), [a + 0.01]),
        OpCase("clamp_", lambda lib, x: (x * 1.0).clamp_(-0.5, 0.5), [randn(3, 4, seed=24, low_gap=0.1)]),
        OpCase("clip_", lambda lib, x: (x * 1.0).clip_(max=0.2), [randn(3, 4, seed=25, low_gap=0.1) + 0.05]),
        OpCase("lerp_", lambda lib, x, y: (x * 1.0).lerp_(y, 0.3), [a, b]),
        OpCase("addcmul_", lambda lib, x, y, z: (x * 1.0).addcmul_(y, z, value=0.5), [a, b, p]),
        OpCase("addcdiv_", lambda lib, x, y, z: (x * 1.0).addcdiv_(y, z, value=0.5), [a, b, p]),
    ]
    augmented = {"iadd": "__iadd__", "isub": "__isub__", "imul": "__imul__", "itruediv": "__itruediv__",
                 "ipow": "__ipow__", "imod": "__imod__"}  # x += y and friends
    divisors = {"imod": np.full(4, 0.7)}  # x % y jumps where x is a multiple of y: keep y away from x
    cases += [OpCase(name, lambda lib, x, y, op=op: getattr(x * 1.0, op)(y), [p, divisors.get(name, b)])
              for name, op in augmented.items()]
    return cases


def _entry(name: str, *patterns: str, **kwargs) -> OpInfo:
    return OpInfo(name, "elementwise", select(_cases, *(patterns or (name,))), **kwargs)


op_db: list[OpInfo] = [
    _entry("add", "add", "add_alpha", "add_", "add_alpha_", "iadd", methods=("add", "add_", "__add__", "__radd__", "__iadd__")),
    _entry("sub", "sub", "sub_alpha", "sub_", "subtract_", "isub", methods=("sub", "sub_", "__sub__", "__isub__", "subtract", "subtract_")),
    _entry("mul", "mul", "mul_", "multiply_", "imul", methods=("mul", "mul_", "__mul__", "__rmul__", "__imul__", "multiply", "multiply_")),
    _entry("div", "div", "rdiv", "div_", "divide_", "true_divide_", "itruediv", methods=("div", "div_", "__truediv__", "__rtruediv__", "__rdiv__", "__itruediv__", "__div__", "__idiv__", "divide", "divide_", "true_divide", "true_divide_"), aliases=("true_divide",)),
    _entry("maximum", methods=("maximum",)),
    _entry("minimum", methods=("minimum",)),
    _entry("atan2", "atan2", "atan2_", methods=("atan2", "atan2_")),
    _entry("neg", "neg", "neg_", methods=("neg", "neg_", "__neg__", "negative"), aliases=("negative",)),
    _entry("abs", "abs", "abs_", methods=("abs", "abs_", "__abs__", "absolute"), aliases=("absolute",)),
    _entry("exp", "exp", "unary_0d", "exp_", methods=("exp", "exp_")),
    _entry("exp2", methods=("exp2",)),
    _entry("expm1", "expm1", "expm1_", methods=("expm1", "expm1_")),
    _entry("log", "log", "log_", methods=("log", "log_")),
    _entry("log1p", "log1p", "log1p_", methods=("log1p", "log1p_")),
    _entry("log2", methods=("log2",)),
    _entry("log10", methods=("log10",)),
    _entry("sqrt", "sqrt", "sqrt_", methods=("sqrt", "sqrt_")),
    _entry("rsqrt", "rsqrt", "rsqrt_", methods=("rsqrt", "rsqrt_")),
    _entry("square", "square", "square_", methods=("square", "square_")),
    _entry("reciprocal", "reciprocal", "reciprocal_", methods=("reciprocal", "reciprocal_")),
    _entry("sin", "sin", "unary_noncontig", "sin_", methods=("sin", "sin_")),
    _entry("cos", "cos", "cos_", methods=("cos", "cos_")),
    _entry("tan", "tan", "tan_", methods=("tan", "tan_")),
    _entry("asin", methods=("asin",)),
    _entry("acos", methods=("acos",)),
    _entry("atan", methods=("atan",)),
    _entry("sinh", methods=("sinh",)),
    _entry("cosh", methods=("cosh",)),
    _entry("tanh", "tanh", "unary_empty", "tanh_", methods=("tanh", "tanh_")),
    _entry("sigmoid", "sigmoid", "sigmoid_", methods=("sigmoid", "sigmoid_")),
    _entry("erf", "erf", "erf_", methods=("erf", "erf_")),
    _entry("pow", "pow_*", "rpow", "ipow", methods=("pow", "pow_", "__pow__", "__rpow__", "__ipow__")),
    _entry("clamp", "clamp", "clamp_min", "clamp_max", "clamp_", "clip_", methods=("clamp", "clamp_", "clip", "clip_"), aliases=("clip",)),
    _entry("sign", "sign", "sign_", methods=("sign", "sign_")),
    _entry("floor", "floor", "floor_", methods=("floor", "floor_")),
    _entry("ceil", "ceil", "ceil_", methods=("ceil", "ceil_")),
    _entry("round", "round", "round_", methods=("round", "round_")),
    _entry("trunc", "trunc", "trunc_", methods=("trunc", "trunc_")),
    _entry("frac", "frac", "frac_", methods=("frac", "frac_")),
    _entry("remainder", "remainder", "remainder_", "imod", methods=("remainder", "remainder_", "__mod__", "__rmod__", "__imod__")),
    _entry("fmod", "fmod", "fmod_", methods=("fmod", "fmod_")),
    _entry("rsub", methods=("__rsub__",)),
    _entry("where", "where", "where_scalars", "where_int_scalars", methods=("where",)),
    _entry("xlogy", "xlogy", "xlogy_zeros", methods=("xlogy",)),
    _entry("lerp", "lerp", "lerp_", methods=("lerp", "lerp_")),
    _entry("addcmul", "addcmul", "addcmul_", methods=("addcmul", "addcmul_")),
    _entry("addcdiv", "addcdiv", "addcdiv_", methods=("addcdiv", "addcdiv_")),
]


def _binary(name: str, fn, a=None, b=None, **kwargs) -> list[OpCase]:
    """``fn`` on a same-shape pair and on a broadcast pair."""
    a = randn(3, 4, seed=11) if a is None else a
    b = randn(3, 4, seed=12) if b is None else b
    return [OpCase(name, fn, [a, b], **kwargs), OpCase(f"{name}_broadcast", fn, [a, b[:1]], **kwargs)]


def _with_specials() -> np.ndarray:
    """Finite values, both infinities, NaN and signed zeros."""
    return np.array([[1.5, -np.inf, np.nan, 0.0], [-0.0, np.inf, -2.5, 1e300]])


def _ints(seed: int = 0) -> np.ndarray:
    return rng(seed).integers(-8, 8, (3, 4))


def _bools(seed: int = 0) -> np.ndarray:
    return rng(seed).integers(0, 2, (3, 4)).astype(bool)


_COMPARISONS = {"eq": "__eq__", "ne": "__ne__", "lt": "__lt__", "le": "__le__", "gt": "__gt__", "ge": "__ge__"}
_BITWISE = {"bitwise_and": ("__and__", "__rand__", "__iand__"), "bitwise_or": ("__or__", "__ror__", "__ior__"),
            "bitwise_xor": ("__xor__", "__rxor__", "__ixor__")}
def _comparison(name: str, operator: str) -> OpInfo:
    def samples() -> list[OpCase]:
        ties = np.round(randn(3, 4, seed=13))  # integers in float: equal pairs occur
        return [OpCase(name, lambda lib, a, b: getattr(lib, name)(a, b), [ties, np.round(randn(3, 4, seed=14))]),
                OpCase(f"{name}_operator_scalar", lambda lib, a: getattr(a, operator)(0.0), [ties]),
                OpCase(f"{name}_method_broadcast", lambda lib, a, b: getattr(a, name)(b), [ties, ties[1]])]

    return OpInfo(name, "elementwise", samples, methods=(name, operator), supports_autograd=False)


def _bitwise(name: str, operators: tuple[str, ...]) -> OpInfo:
    def samples() -> list[OpCase]:
        def inplace(lib, a, b):
            out = a.clone()
            getattr(out, operators[2])(b)
            return out

        cases = [OpCase(f"{name}_int", lambda lib, a, b: getattr(lib, name)(a, b), [_ints(1), _ints(2)]),
                 OpCase(f"{name}_bool", lambda lib, a, b: getattr(a, operators[0])(b), [_bools(1), _bools(2)]),
                 OpCase(f"{name}_scalar", lambda lib, a: getattr(a, operators[1])(3), [_ints(3)]),
                 OpCase(f"{name}_inplace", inplace, [_ints(4), _ints(5)]),
                 OpCase(f"{name}_method_", lambda lib, a, b: getattr(a.clone(), f"{name}_")(b), [_ints(6), _ints(7)])]
        return cases

    return OpInfo(name, "elementwise", samples, methods=(name, f"{name}_", *operators), supports_autograd=False)


def _logical(name: str) -> OpInfo:
    def samples() -> list[OpCase]:
        zeros_in = randn(3, 4) * (randn(3, 4, seed=1) > 0)
        return [OpCase(name, lambda lib, a, b: getattr(lib, name)(a, b), [_bools(1), _bools(2)]),
                OpCase(f"{name}_float", lambda lib, a, b: getattr(a, name)(b), [zeros_in, randn(4, seed=2)]),
                OpCase(f"{name}_", lambda lib, a, b: getattr(a.clone(), f"{name}_")(b), [_bools(3), _bools(4)]),
                # in place on a float tensor: the bool result is written back as 0.0 / 1.0
                OpCase(f"{name}_float_", lambda lib, a, b: getattr(a.clone(), f"{name}_")(b), [zeros_in, _bools(5)])]

    return OpInfo(name, "elementwise", samples, methods=(name, f"{name}_"), supports_autograd=False)


def _predicate(name: str) -> OpInfo:
    def samples() -> list[OpCase]:
        return [OpCase(name, lambda lib, x: getattr(lib, name)(x), [_with_specials()]),
                OpCase(f"{name}_method_int", lambda lib, x: getattr(x, name)(), [_ints()])]

    return OpInfo(name, "elementwise", samples, methods=(name,), supports_autograd=False)


def _floor_divide() -> list[OpCase]:
    def inplace(lib, a, b):
        out = a * 1.0
        out //= b
        return out

    # torch marks a float floor_divide's output as requiring grad but has no derivative for it; ours
    # records none: the samples compare values only
    a, b = randn(3, 4, seed=15) * 4, positive(3, 4, seed=16) * np.array([1, -1, 1, -1])
    no_grad = [False, False]
    return [OpCase("floor_divide", lambda lib, a, b: lib.floor_divide(a, b), [a, b], grad=no_grad),
            OpCase("floor_divide_operator", lambda lib, a, b: a // b, [a, b[0]], grad=no_grad),
            OpCase("floor_divide_rfloordiv", lambda lib, a: 7.0 // a, [b], grad=[False]),
            OpCase("floor_divide_inplace", inplace, [a, b], grad=no_grad),
            OpCase("floor_divide_method_", lambda lib, a, b: (a * 1.0).floor_divide_(b), [a, b], grad=no_grad),
            OpCase("floor_divide_int", lambda lib, a, b: a.floor_divide(b), [_ints(8), _ints(9) | 1])]


def _clamp_bound(name: str) -> OpInfo:
    def samples() -> list[OpCase]:
        x = randn(3, 4, seed=17, low_gap=0.1) + 0.05  # no sample on the bound 0.05
        # named *_fn: the clamp entry's cases "clamp_min"/"clamp_max" are clamp(min=)/clamp(max=)
        return [OpCase(f"{name}_fn", lambda lib, x: getattr(lib, name)(x, 0.05), [x]),
                OpCase(f"{name}_fn_tensor_bound", lambda lib, x, b: getattr(x, name)(b), [x, randn(4, seed=18, low_gap=0.1)]),
                OpCase(f"{name}_fn_", lambda lib, x: getattr(x * 1.0, f"{name}_")(0.05), [x])]

    return OpInfo(name, "elementwise", samples, methods=(name, f"{name}_"))


op_db += [
    *(_comparison(name, operator) for name, operator in _COMPARISONS.items()),
    *(_bitwise(name, operators) for name, operators in _BITWISE.items()),
    OpInfo("bitwise_not", "elementwise", lambda: [
        OpCase("bitwise_not", lambda lib, a: lib.bitwise_not(a), [_ints(1)]),
        OpCase("bitwise_not_invert", lambda lib, a: ~a, [_bools(1)])],
        methods=("bitwise_not", "__invert__", "bitwise_not_"), supports_autograd=False),
    *(_logical(name) for name in ("logical_and", "logical_or", "logical_xor")),
    OpInfo("logical_not", "elementwise", lambda: [
        OpCase("logical_not", lambda lib, a: lib.logical_not(a), [randn(3, 4) * (randn(3, 4, seed=1) > 0)]),
        OpCase("logical_not_", lambda lib, a: a.clone().logical_not_(), [_bools(2)])],
        methods=("logical_not", "logical_not_"), supports_autograd=False),
    *(_predicate(name) for name in ("isnan", "isinf", "isfinite", "signbit")),
    OpInfo("isclose", "elementwise", lambda: [
        OpCase("isclose", lambda lib, a, b: lib.isclose(a, b), [_with_specials(), _with_specials() + 1e-9]),
        OpCase("isclose_tolerances", lambda lib, a, b: a.isclose(b, rtol=0.1, atol=0.5, equal_nan=True),
               [_with_specials(), _with_specials() * 1.05])],
        methods=("isclose",), supports_autograd=False),
    OpInfo("floor_divide", "elementwise", _floor_divide,
           methods=("floor_divide", "floor_divide_", "__floordiv__", "__rfloordiv__", "__ifloordiv__"),
           supports_autograd=False),
    OpInfo("fmax", "elementwise", lambda: [
        *_binary("fmax", lambda lib, a, b: lib.fmax(a, b), b=randn(3, 4, seed=12, low_gap=0.3)),
        OpCase("fmax_nan", lambda lib, a, b: a.fmax(b), [_with_specials(), randn(2, 4)], gradcheck=False)],
        methods=("fmax",)),
    OpInfo("fmin", "elementwise", lambda: [
        *_binary("fmin", lambda lib, a, b: lib.fmin(a, b), b=randn(3, 4, seed=12, low_gap=0.3)),
        OpCase("fmin_nan", lambda lib, a, b: a.fmin(b), [_with_specials(), randn(2, 4)], gradcheck=False)],
        methods=("fmin",)),
    OpInfo("hypot", "elementwise", lambda: [
        *_binary("hypot", lambda lib, a, b: lib.hypot(a, b)),
        OpCase("hypot_method", lambda lib, a, b: a.hypot(b), [randn(3, 4), randn(3, 4, seed=1)])],
        methods=("hypot",)),
    OpInfo("logaddexp", "elementwise", lambda: [
        *_binary("logaddexp", lambda lib, a, b: lib.logaddexp(a, b)),
        OpCase("logaddexp_huge", lambda lib, a, b: a.logaddexp(b * 1000.0), [randn(3, 4), randn(3, 4, seed=1)])],
        methods=("logaddexp",)),
    OpInfo("nan_to_num", "elementwise", lambda: [
        # NaN and infinities are replaced by constants: no gradient flows through them, 1 elsewhere
        OpCase("nan_to_num", lambda lib, x: lib.nan_to_num(x), [_with_specials()], gradcheck=False),
        OpCase("nan_to_num_values", lambda lib, x: x.nan_to_num(nan=0.5, posinf=3.0, neginf=-3.0),
               [_with_specials()], gradcheck=False),
        OpCase("nan_to_num_finite", lambda lib, x: lib.nan_to_num(x * 2.0), [randn(3, 4)]),
        OpCase("nan_to_num_", lambda lib, x: (x * 1.0).nan_to_num_(nan=1.0), [_with_specials()], gradcheck=False)],
        methods=("nan_to_num", "nan_to_num_")),
    _clamp_bound("clamp_min"),
    _clamp_bound("clamp_max"),
    OpInfo("Tensor.__pos__", "elementwise", lambda: [
        OpCase("pos", lambda lib, x: +x, [randn(3, 4)])],
           methods=("__pos__",)),
]
