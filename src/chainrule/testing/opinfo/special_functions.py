"""chainrule/ops/special_functions.py: the gamma family, erfinv, Bessel I0/I1, incomplete gamma,
ndtri/log_ndtr/erfcx, zeta, logit and the other elementwise math, plus torch's aliases and the
in-place variants (each sampled on a fresh non-leaf, ``x * 1``, so the gradient flows through it)."""

from __future__ import annotations

import numpy as np

from .core import OpCase, OpInfo, positive, randn, rng

_NO_GRAD = [False, False]


def _entry(name: str, *cases: OpCase, **kwargs) -> OpInfo:
    return OpInfo(name, "special_functions", lambda: list(cases), **kwargs)


def _uniform(low: float, high: float, *shape, seed: int = 0) -> np.ndarray:
    return rng(seed).uniform(low, high, shape)


def _off_poles(*shape, seed: int = 0) -> np.ndarray:
    """Values in (-4, 6) at least 0.1 from the non-positive integers (lgamma's and digamma's poles)."""
    x = _uniform(-4, 6, *shape, seed=seed)
    nearest = np.round(x)
    close = (nearest <= 0) & (np.abs(x - nearest) < 0.1)
    return np.where(close, nearest + 0.25, x)


def _unary(name: str, inputs, *, methods=(), aliases=(), fn=None, grad_inputs=None, **case_kwargs) -> OpInfo:
    """An entry for a one-tensor op: the plain call, a 0-d and an empty input, and its method."""
    call = fn or (lambda lib, x: _resolve(lib, name)(x))
    scalar = inputs.reshape(-1)[:1].reshape(())
    cases = [OpCase(name, call, [inputs], **case_kwargs),
             OpCase(f"{name}_0d", call, [scalar], **case_kwargs),
             OpCase(f"{name}_empty", call, [inputs.reshape(-1)[:0].reshape(0, 2) if inputs.size else inputs],
                    gradcheck=False)]
    return _entry(name, *cases, methods=methods, aliases=aliases)


def _resolve(lib, name: str):
    target = lib
    for part in name.split("."):
        target = getattr(target, part)
    return target


def _method(name: str, *args):
    return lambda lib, x: getattr(x, name)(*args)


op_db: list[OpInfo] = [
    # ---- the gamma family
    _unary("lgamma", _off_poles(3, 4), methods=("lgamma", "lgamma_"), aliases=("special.gammaln",)),
    _unary("digamma", _off_poles(3, 4, seed=1), methods=("digamma", "digamma_"),
           aliases=("special.digamma", "special.psi")),
    _entry("polygamma",
           OpCase("polygamma_1", lambda lib, x: lib.polygamma(1, x), [_off_poles(3, 4, seed=2)]),
           OpCase("polygamma_3", lambda lib, x: lib.polygamma(3, x), [positive(3, 4, seed=3)]),
           OpCase("polygamma_0", lambda lib, x: lib.special.polygamma(0, x), [positive(4, seed=4)]),
           OpCase("polygamma_method", _method("polygamma", 2), [positive(2, 3, seed=5)]),
           # (* 1: torch names the in-place node PolygammaBackward1)
           OpCase("polygamma_inplace", lambda lib, x: (x * 1).polygamma_(1) * 1, [positive(2, 3, seed=6)]),
           methods=("polygamma", "polygamma_"), aliases=("special.polygamma",)),
    _entry("mvlgamma",
           OpCase("mvlgamma", lambda lib, x: lib.mvlgamma(x, 3), [positive(3, 4) + 1.5]),
           OpCase("multigammaln", lambda lib, x: lib.special.multigammaln(x, 1), [positive(4, seed=1)]),
           OpCase("mvlgamma_method", lambda lib, x: (x * 1).mvlgamma_(2) + x.mvlgamma(2), [positive(2, 3, seed=2) + 1]),
           methods=("mvlgamma", "mvlgamma_"), aliases=("special.multigammaln",)),
    # ---- erfinv, erfc and the normal distribution's functions
    _unary("erfinv", _uniform(-0.95, 0.95, 3, 4), methods=("erfinv", "erfinv_"), aliases=("special.erfinv",)),
    _unary("erfc", randn(3, 4) * 2, methods=("erfc", "erfc_"), aliases=("special.erfc", "erfc_")),
    _unary("special.ndtri", _uniform(0.02, 0.98, 3, 4)),
    _unary("special.log_ndtr", randn(3, 4) * 4),
    _unary("special.erfcx", randn(3, 4) * 3),
    # ---- modified Bessel functions (0 included: i1's and i1e's derivative is 1/2 there)
    _unary("i0", np.append(randn(11) * 4, 0.0).reshape(3, 4), methods=("i0", "i0_"), aliases=("special.i0", "i0_")),
    _unary("special.i0e", randn(3, 4, seed=1) * 4),
    _unary("special.i1", np.append(randn(11, seed=2) * 4, 0.0).reshape(3, 4)),
    _unary("special.i1e", np.append(randn(11, seed=3) * 4, 0.0).reshape(3, 4)),
    # ---- incomplete gamma (differentiable in x only, as torch) and zeta (not differentiable)
    _entry("igamma",
           OpCase("igamma", lambda lib, a, x: lib.igamma(a, x), [positive(3, 4) * 3, positive(3, 4, seed=1) * 3],
                  grad=[False, True]),
           OpCase("igamma_broadcast", lambda lib, a, x: lib.special.gammainc(a, x), [positive(3, 1) * 5, positive(4, seed=2) * 8],
                  grad=[False, True]),
           OpCase("igamma_method", lambda lib, a, x: a.igamma(x) + (a * 1).igamma_(x), [positive(2, 3) * 2, positive(2, 3, seed=3)],
                  grad=[False, True]),
           methods=("igamma", "igamma_"), aliases=("special.gammainc",)),
    _entry("igammac",
           OpCase("igammac", lambda lib, a, x: lib.igammac(a, x), [positive(3, 4) * 3, positive(3, 4, seed=1) * 3],
                  grad=[False, True]),
           OpCase("igammac_broadcast", lambda lib, a, x: lib.special.gammaincc(a, x), [positive(3, 1) * 5, positive(4, seed=2) * 8],
                  grad=[False, True]),
           OpCase("igammac_method", lambda lib, a, x: a.igammac(x) + (a * 1).igammac_(x), [positive(2, 3) * 2, positive(2, 3, seed=3)],
                  grad=[False, True]),
           methods=("igammac", "igammac_"), aliases=("special.gammaincc",)),
    _entry("special.zeta",
           OpCase("zeta", lambda lib, x, q: lib.special.zeta(x, q), [_uniform(1.5, 5, 3, 4), positive(3, 4) * 3],
                  grad=_NO_GRAD),
           OpCase("zeta_number", lambda lib, q: lib.special.zeta(2.0, q), [positive(4)], grad=[False]),
           supports_autograd=False),
    # ---- logit (eps clamps the input to [eps, 1 - eps]: samples stay off the clamp's edges)
    _entry("logit",
           OpCase("logit", lambda lib, x: lib.logit(x), [_uniform(0.05, 0.95, 3, 4)]),
           OpCase("logit_eps", lambda lib, x: lib.special.logit(x, eps=0.01), [_uniform(0.05, 0.95, 3, 4, seed=1)]),
           OpCase("logit_method", lambda lib, x: x.logit(0.2) + (x * 1).logit_(), [_uniform(0.05, 0.95, 2, 3, seed=2)]),
           OpCase("logit_inplace", lambda lib, x: lib.logit_(x * 1), [_uniform(0.05, 0.95, 3, seed=3)]),
           methods=("logit", "logit_"), aliases=("special.logit", "logit_")),
    # ---- more elementwise math
    _unary("acosh", positive(3, 4) + 1, methods=("acosh", "acosh_", "arccosh", "arccosh_"),
           aliases=("arccosh", "acosh_", "arccosh_")),
    _unary("asinh", randn(3, 4) * 2, methods=("asinh", "asinh_", "arcsinh", "arcsinh_"),
           aliases=("arcsinh", "asinh_", "arcsinh_")),
    _unary("atanh", _uniform(-0.9, 0.9, 3, 4), methods=("atanh", "atanh_", "arctanh", "arctanh_"),
           aliases=("arctanh", "atanh_", "arctanh_")),
    _unary("sinc", randn(3, 4, low_gap=0.05), methods=("sinc", "sinc_"), aliases=("special.sinc", "sinc_")),
    _unary("deg2rad", randn(3, 4) * 90, methods=("deg2rad", "deg2rad_"), aliases=("deg2rad_",)),
    _unary("rad2deg", randn(3, 4), methods=("rad2deg", "rad2deg_"), aliases=("rad2deg_",)),
    # sgn's gradient is zero (torch's is a ZeroTensor, which cannot be compared): + x makes it 1
    _unary("sgn", randn(3, 4, low_gap=0.05), methods=("sgn", "sgn_"), fn=lambda lib, x: lib.sgn(x) + x),
    _unary("positive", randn(3, 4), methods=("positive",)),
    _entry("copysign",
           OpCase("copysign", lambda lib, a, b: lib.copysign(a, b), [randn(3, 4, low_gap=0.05), randn(4, seed=1)]),
           OpCase("copysign_method", lambda lib, a, b: (a * 1).copysign_(b) + a.copysign(-1.5), [randn(2, 3, low_gap=0.05),
                                                                                              randn(2, 3, seed=2)]),
           methods=("copysign", "copysign_")),
    _entry("logaddexp2",
           OpCase("logaddexp2", lambda lib, a, b: lib.logaddexp2(a, b), [randn(3, 4) * 3, randn(4, seed=1) * 3]),
           OpCase("logaddexp2_method", lambda lib, a, b: a.logaddexp2(b), [randn(2, 3), randn(2, 3, seed=2)]),
           methods=("logaddexp2",)),
    _entry("float_power",
           OpCase("float_power", lambda lib, a, b: lib.float_power(a, b), [positive(3, 4), randn(4, seed=1)]),
           OpCase("float_power_scalar", lambda lib, a: lib.float_power(a, 2), [randn(3, 4)]),
           OpCase("float_power_method", lambda lib, a: (a.double() * 1).float_power_(3) + a.float_power(0.5), [positive(2, 3)]),
           methods=("float_power", "float_power_")),
    _entry("ldexp",
           # non-negative integer exponents: torch's gradient is 0 for negative ones (see ldexp)
           OpCase("ldexp", lambda lib, a, e: lib.ldexp(a, e), [randn(3, 4), np.arange(0, 4).astype(np.int64)]),
           OpCase("ldexp_float", lambda lib, a, e: lib.ldexp(a, e), [randn(3, 4), randn(4, seed=1)]),
           OpCase("ldexp_method", lambda lib, a, e: a.ldexp(e) + lib.ldexp_(a * 1, e), [randn(2, 3), np.array([1, 0, 3])]),
           methods=("ldexp", "ldexp_"), aliases=("ldexp_",)),
    _entry("frexp",
           OpCase("frexp", lambda lib, x: lib.frexp(x), [randn(3, 4) * 100]),
           OpCase("frexp_method", lambda lib, x: x.frexp(), [np.array([0.1, 1.3, -3.0, 0.2])]),  # off the powers of 2
           methods=("frexp",)),
    _entry("heaviside",
           OpCase("heaviside", lambda lib, x, v: lib.heaviside(x, v), [np.array([-1.5, 0.0, 2.0, 0.0]), np.array([0.5])],
                  grad=_NO_GRAD),
           OpCase("heaviside_method", lambda lib, x, v: (x * 1).heaviside_(v) + x.heaviside(v),
                  [np.array([[0.0, -1.0], [3.0, 0.0]]), np.array([0.25, 0.75])], grad=_NO_GRAD),
           methods=("heaviside", "heaviside_"), supports_autograd=False),
    _entry("nextafter",
           # one ulp is below the comparison's tolerance: the direction of each step is compared
           # (the float64 values bit for bit in tests/ops/test_special_functions.py)
           OpCase("nextafter", lambda lib, a, b: lib.stack([lib.nextafter(a, b) > a, lib.nextafter(a, b) < a]),
                  [randn(3, 4), np.append(randn(3, seed=1), 0.0)]),
           OpCase("nextafter_method", lambda lib, a, b: (a * 1).nextafter_(b) > a.nextafter(a),
                  [randn(2, 3), randn(2, 3, seed=2)]),
           methods=("nextafter", "nextafter_"), supports_autograd=False),
    _entry("gcd",
           OpCase("gcd", lambda lib, a, b: lib.gcd(a, b), [np.array([12, -18, 0, 7]), np.array([8, 12, 5, 0])]),
           OpCase("gcd_method", lambda lib, a, b: a.gcd(b) + lib.gcd_(a * 1, b) + (a * 1).gcd_(b),
                  [np.array([[4, 9], [10, 0]]), np.array([6, 3])]),
           methods=("gcd", "gcd_"), aliases=("gcd_",), supports_autograd=False),
    _entry("lcm",
           OpCase("lcm", lambda lib, a, b: lib.lcm(a, b), [np.array([12, -18, 0, 7]), np.array([8, 12, 5, 3])]),
           OpCase("lcm_method", lambda lib, a, b: a.lcm(b) + lib.lcm_(a * 1, b) + (a * 1).lcm_(b),
                  [np.array([[4, 9], [10, 1]]), np.array([6, 3])]),
           methods=("lcm", "lcm_"), aliases=("lcm_",), supports_autograd=False),
]


# ---- torch's other names for ops chainrule has, and the in-place variants: each sampled on a
# fresh non-leaf (x * 1), so the values, the gradient through the write and the node all compare
def _inplace(name: str, *inputs, args=(), grad=None, top_level: bool = False, method_names=(),
             then_times_one: bool = False) -> OpInfo:
    """``then_times_one``: the result is multiplied by 1, so its node is not compared (where
    torch names the in-place node with another overload number)."""
    def call(lib, x, *rest):
        result = getattr(lib, name)(x * 1, *rest, *args) if top_level else getattr(x * 1, name)(*rest, *args)
        return result * 1 if then_times_one else result

    return _entry(name if top_level else f"Tensor.{name}", OpCase(name, call, list(inputs), grad=grad),
                  methods=method_names or (() if top_level else (name,)))


def _unit(*shape, seed=0):
    return _uniform(-0.9, 0.9, *shape, seed=seed)


op_db += [
    # top-level in-place functions (torch.abs_(x) is x.abs_())
    *[_inplace(f"{name}_", randn(3, 4, low_gap=0.05) * 2, top_level=True)
      for name in ("abs", "ceil", "cos", "cosh", "erf", "exp", "expm1", "floor", "frac", "neg", "negative",
                   "reciprocal", "relu", "round", "sigmoid", "sin", "sinh", "square", "tan", "tanh", "trunc",
                   "exp2", "nan_to_num")],
    _inplace("fix_", randn(3, 4) * 3, top_level=True, method_names=("fix_", "fix")),
    *[_inplace(f"{name}_", _unit(3, 4), top_level=True)
      for name in ("acos", "asin", "atan", "arccos", "arcsin", "arctan")],
    *[_inplace(f"{name}_", positive(3, 4), top_level=True) for name in ("log", "log10", "log1p", "log2", "sqrt", "rsqrt")],
    _inplace("clamp_", randn(3, 4), args=(-0.5, 0.5), top_level=True),
    _inplace("clip_", randn(3, 4), args=(-0.5, 0.5), top_level=True),
    # (torch names these in-place nodes ClampMaxBackward0/ClampMinBackward0; chainrule's clamp_max
    # records ClampBackward1, as its out-of-place form does)
    _inplace("clamp_max_", randn(3, 4), args=(0.5,), top_level=True, then_times_one=True),
    _inplace("clamp_min_", randn(3, 4), args=(-0.5,), top_level=True, then_times_one=True),
    _inplace("addmv_", randn(3), randn(3, 4, seed=1), randn(4, seed=2), top_level=True, method_names=("addmv_",)),
    _inplace("xlogy_", randn(3, 4), positive(3, 4, seed=1), top_level=True, method_names=("xlogy_",)),
    # Tensor-only in-place variants and aliases
    *[_inplace(f"{name}_", _unit(3, 4), method_names=(f"{name}_", name))
      for name in ("acos", "asin", "atan", "arccos", "arcsin", "arctan")],
    *[_inplace(f"{name}_", randn(3, 4)) for name in ("cosh", "sinh", "exp2", "negative", "absolute")],
    *[_inplace(f"{name}_", positive(3, 4)) for name in ("log10", "log2")],
    _inplace("arctan2_", randn(3, 4), randn(4, seed=1), method_names=("arctan2_", "arctan2")),
    _inplace("hypot_", randn(3, 4), randn(4, seed=1)),
    *[_inplace(f"{name}_", randn(3, 4), randn(4, seed=1), grad=_NO_GRAD,
               method_names=(f"{name}_", name) if len(name) > 2 else (f"{name}_",))
      for name in ("eq", "ne", "lt", "le", "gt", "ge", "greater", "greater_equal", "less", "less_equal", "not_equal")],
    _inplace("addmm_", randn(2, 3), randn(2, 4, seed=1), randn(4, 3, seed=2)),
    _inplace("addbmm_", randn(2, 3), randn(5, 2, 4, seed=1), randn(5, 4, 3, seed=2)),
    _inplace("baddbmm_", randn(5, 2, 3), randn(5, 2, 4, seed=1), randn(5, 4, 3, seed=2)),
    _inplace("addr_", randn(2, 3), randn(2, seed=1), randn(3, seed=2)),
    _inplace("cumsum_", randn(3, 4), args=(1,)),
    _inplace("cumprod_", randn(3, 4), args=(0,)),
    # (torch names the in-place transpose node TransposeBackward1)
    _inplace("swapaxes_", randn(3, 4), args=(0, 1), then_times_one=True),
    _inplace("swapdims_", randn(2, 3, 4), args=(0, 2), then_times_one=True),
]

# ---- Tensor misc: index_put/put, sum_to_size, fill_diagonal_, masked_scatter_, scatter_reduce_, mH/adjoint
_ROWS = np.array([0, 2, 0])
_COLS = np.array([1, 3, 1])
op_db += [
    _entry("index_put",
           OpCase("index_put", lambda lib, x, v, i, j: lib.index_put(x, (i, j), v), [randn(3, 4), randn(2, seed=1), _ROWS[:2], _COLS[:2]]),
           OpCase("index_put_accumulate", lambda lib, x, v, i, j: x.index_put((i, j), v, accumulate=True),
                  [randn(3, 4), randn(3, seed=1), _ROWS, _COLS]),
           OpCase("index_put_mask", lambda lib, x, v, m: x.index_put((m,), v), [randn(3, 4), randn(1, seed=2), np.array([True, False, True])]),
           # (* 1: torch records the in-place form as IndexPutBackward0 too, but through CopySlices on views)
           OpCase("index_put_inplace", lambda lib, x, v, i: (x * 1).index_put_((i,), v) * 1, [randn(3, 4), randn(4, seed=3), np.array([1])]),
           methods=("index_put", "index_put_"), aliases=("index_put_",)),
    _entry("put",
           OpCase("put", lambda lib, x, i, v: lib.put(x, i, v), [randn(3, 4), np.array([0, -1, 5]), randn(3, seed=1)]),
           OpCase("put_accumulate", lambda lib, x, i, v: x.put(i, v, accumulate=True), [randn(3, 4), np.array([[0, 5], [0, 11]]), randn(2, 2, seed=2)]),
           OpCase("put_inplace", lambda lib, x, i, v: (x * 1).put_(i, v), [randn(2, 3), np.array([4, 1]), randn(2, seed=3)]),
           methods=("put", "put_")),
    _entry("Tensor.sum_to_size",
           OpCase("sum_to_size", lambda lib, x: x.sum_to_size(1, 4), [randn(3, 4)]),
           OpCase("sum_to_size_leading", lambda lib, x: x.sum_to_size((3, 1)), [randn(2, 3, 4)]),
           OpCase("sum_to_size_same", lambda lib, x: x.sum_to_size(3, 4) * 1, [randn(3, 4)]),
           methods=("sum_to_size",)),
    _entry("Tensor.masked_scatter_",
           OpCase("masked_scatter_", lambda lib, x, m, s: (x * 1).masked_scatter_(m, s),
                  [randn(3, 4), np.array([True, False, True, False]), randn(12, seed=1)]),
           methods=("masked_scatter_",)),
    _entry("Tensor.scatter_reduce_",
           OpCase("scatter_reduce_", lambda lib, x, i, s: (x * 1).scatter_reduce_(1, i, s, "sum"),
                  [randn(2, 4), np.array([[0, 1, 0], [3, 3, 2]]), randn(2, 3, seed=1)]),
           methods=("scatter_reduce_",)),
    _entry("adjoint",
           OpCase("adjoint", lambda lib, x: lib.adjoint(x), [randn(3, 4)]),
           OpCase("mH", lambda lib, x: x.mH + x.adjoint(), [randn(2, 3, 3)]),
           methods=("adjoint", "mH")),
]
