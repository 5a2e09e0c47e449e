"""NumPy kernels for torch's special functions (gamma family, erfinv, Bessel I0/I1; the incomplete
gamma functions are ``_incomplete_gamma``'s).

Every kernel takes a floating array and returns its values in float64 or, where torch's CPU kernel
computes float32 in float (digamma, trigamma, Bessel I0/I1, erfcx, log_ndtr), in float32 with that
kernel's roundings. The algorithms are the ones torch's CPU kernels use where matching torch's
numbers matters (Cephes, as ATen's Math.h), and float64-accurate series/continued fractions
elsewhere. NumPy only, on the CPU: ``special_functions.on_device`` routes device
arrays to ``cupyx.scipy.special`` or refuses clearly.
"""

from __future__ import annotations

import math

import numpy as np

_SQRT_PI = math.sqrt(math.pi)


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _lgamma_scalar(v: float) -> float:
    try:
        return math.lgamma(v)
    except (ValueError, OverflowError):  # the poles 0, -1, -2, ...: log|Γ| is +inf there (torch too)
        return math.inf


_LGAMMA = np.frompyfunc(_lgamma_scalar, 1, 1)


def lgamma(x: np.ndarray) -> np.ndarray:
    """log|Γ(x)|: libm's lgamma (math.lgamma) elementwise; +inf at the poles and at ±inf."""
    return np.asarray(_LGAMMA(_f64(x)), dtype=object).astype(np.float64)  # (a 0-d input gives a Python float)


# ---------------------------------------------------------------- digamma, trigamma, zeta
_PSI_10 = 2.25175258906672110764
_PSI_ASYMPTOTIC = (8.33333333333333333333e-2, -2.10927960927960927961e-2, 7.57575757575757575758e-3,
                   -4.16666666666666666667e-3, 3.96825396825396825397e-3, -8.33333333333333333333e-3,
                   8.33333333333333333333e-2)


def _single(x) -> bool:
    """Whether torch's CPU kernel computes ``x``'s dtype in float (float32, and float16/bfloat16,
    which ATen widens to float): its rounding then shows in float32 results near poles."""
    dtype = np.asarray(x).dtype
    return dtype.kind in "fV" and dtype.itemsize <= 4


def digamma(x: np.ndarray) -> np.ndarray:
    """ψ(x) = Γ'(x)/Γ(x), ATen's algorithm: reflection for x < 0, the recurrence
    ψ(x) = ψ(x + 1) - 1/x up to x >= 10, then the asymptotic series. ψ(±0) = ∓inf, NaN at the
    negative integers (and -inf), as torch. float32 (and narrower) runs ATen's float version in
    float32 arithmetic, whose rounding near the poles is torch's."""
    single = _single(x)
    x = np.asarray(x, dtype=np.float32 if single else np.float64)
    real = x.dtype.type
    with np.errstate(all="ignore"):
        negative = x < 0
        # torch takes the fraction in double (modf) and rounds π/tan(πr) once to x's dtype
        fraction = x.astype(np.float64) - np.trunc(x.astype(np.float64))
        reflection = np.where(negative, np.pi / np.tan(np.pi * fraction), 0.0).astype(x.dtype)
        z = np.where(negative, real(1) - x, x)
        total = np.zeros_like(z)
        for _ in range(10):  # z in (0, 10) reaches 10 within ten steps
            below = z < 10
            total = total - np.where(below, real(1) / np.where(below, z, real(1)), real(0))
            z = np.where(below, z + real(1), z)
        zz = np.where(z < real(1e17), real(1) / (z * z), real(0))
        series = zz * _polevl(zz, _PSI_ASYMPTOTIC, real)
        tail = np.where(z == 10, total + real(_PSI_10), total + _libm(np.log, z) - real(0.5) / z - series)
        result = tail - reflection
        result = np.where(negative & (x == np.trunc(x)), np.nan, result)
        return np.where(x == 0, np.copysign(real(np.inf), -x), result)


def _libm(function, x):
    """``function`` of x as glibc's float version gives it (correctly rounded, which NumPy's own
    float32 loops are not always: an ulp apart in about one value in twenty)."""
    return function(x.astype(np.float64)).astype(x.dtype) if x.dtype == np.float32 else function(x)


def _polevl(z, coefficients, real):
    result = np.zeros_like(z)
    for c in coefficients:
        result = result * z + real(c)
    return result


def trigamma(x: np.ndarray) -> np.ndarray:
    """ψ'(x), ATen's algorithm (reflection below 1/2, six recurrence steps, a four-term series)
    so the values are torch's, which are accurate to about 1e-8 relative, not round-off; in
    float32 arithmetic for float32 input (ATen's float overload: sinf(π_f·x) near the poles)."""
    single = _single(x)
    x = np.asarray(x, dtype=np.float32 if single else np.float64)
    real = x.dtype.type
    with np.errstate(all="ignore"):
        reflect = x < 0.5
        sin_pi_x = _libm(np.sin, real(np.pi) * x)
        total = np.where(reflect, -(real(np.pi) * real(np.pi)) / (sin_pi_x * sin_pi_x), real(0))
        z = np.where(reflect, real(1) - x, x)
        for _ in range(6):
            total = total + real(1) / (z * z)
            z = z + real(1)
        ixx = real(1) / (z * z)
        series = real(1) + real(1) / (real(2) * z) + ixx * (real(1 / 6) - ixx * (real(1 / 30) - ixx * real(1 / 42)))
        total = total + series / z
        return np.where(reflect, -total, total)


# Euler-Maclaurin coefficients (2k)!/B_2k of Cephes' zeta.c
_ZETA_A = (12.0, -720.0, 30240.0, -1209600.0, 47900160.0, -1.8924375803183791606e9, 7.47242496e10,
           -2.950130727918164224e12, 1.1646782814350067249e14, -4.5979787224074726105e15,
           1.8152105401943546773e17, -7.1661652561756670113e18)
_MACHEP = 1.11022302462515654042e-16


def zeta(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The Hurwitz zeta function Σ_k (k + q)^-x, Cephes' algorithm step for step, as ATen: terms
    summed directly (nine at least, and until k + q > 9 or a term drops below round-off), then the
    Euler-Maclaurin tail, stopping where Cephes stops. +inf at x = 1 and at the poles q = 0, -1, ...;
    NaN for x < 1 and for q < 0 with x not an integer. ATen sums in double for every dtype, but
    its first term is ``pow(q, -x)`` in the input's dtype (float32's rounding there is torch's)."""
    single = _single(x) or _single(q)
    x, q = np.broadcast_arrays(_f64(x), _f64(q))
    shape = x.shape
    x, q = x.reshape(-1), q.reshape(-1)
    result = np.full(x.shape, np.nan)
    with np.errstate(all="ignore"):
        defined = ~(x < 1) & (x != 1)
        pole = defined & (q <= 0) & (q == np.floor(q))
        work = np.flatnonzero(defined & ~pole & ~((q <= 0) & (x != np.floor(x))))
        result[x == 1] = np.inf
        result[pole] = np.inf
        if work.size:
            result[work] = _zeta_cephes(x[work], q[work], single)
    return result.reshape(shape)


_ZETA_BLOCK = 4096


def _zeta_climb(x, s, a, b, steps):
    """Cephes' first loop for a very negative q, a block of terms at a time (in place): while k + q
    stays below -1 the terms grow in size towards the pole, so its stopping test cannot fire and
    summing them in blocks takes the same terms (a q of -5e6 took five million NumPy steps)."""
    while True:
        far = np.flatnonzero(a + _ZETA_BLOCK <= -1)
        if not far.size:
            return
        for rows in np.array_split(far, -(-far.size // 256)):
            ks = a[rows, None] + np.arange(1, _ZETA_BLOCK + 1)
            terms = ks ** -x[rows, None]
            s[rows] += terms.sum(axis=1)
            climbed = ks[:, -1]
            stuck = climbed == a[rows]  # |q| past 2^53: q + 1 == q, and Cephes would never finish
            a[rows] = np.where(stuck, -1.0, climbed)
            b[rows] = terms[:, -1]
            steps[rows] += _ZETA_BLOCK


def _zeta_cephes(x, q, single):
    s = q ** -x
    if single:  # glibc's powf is correctly rounded (NumPy's float32 power can be an ulp off it)
        s = s.astype(np.float32).astype(np.float64)
    a, b = q.copy(), np.zeros_like(q)
    done = np.zeros(q.shape, dtype=bool)
    steps = np.zeros(q.shape)
    _zeta_climb(x, s, a, b, steps)
    while True:
        # each element adds terms while it has fewer than nine or k + q <= 9 (a negative q climbs)
        active = np.flatnonzero(~done & ((steps < 9) | (a <= 9)))
        if not active.size:
            break
        a[active] += 1
        b[active] = a[active] ** -x[active]
        s[active] += b[active]
        done[active] = (-_MACHEP * s[active] < b[active]) & (b[active] < _MACHEP * s[active])
        steps[active] += 1
    tail = np.flatnonzero(~done)
    if tail.size:
        xt, st, bt, w = x[tail], s[tail], b[tail], a[tail]
        st = st + bt * w / (xt - 1) - 0.5 * bt
        finished = np.zeros(tail.shape, dtype=bool)
        factor = np.ones_like(st)
        k = 0.0
        for coefficient in _ZETA_A:
            factor = factor * (xt + k)
            bt = bt / w
            st = np.where(finished, st, st + factor * bt / coefficient)
            finished |= np.abs(factor * bt / coefficient / st) < _MACHEP
            k += 1
            factor = factor * (xt + k)
            bt = bt / w
            k += 1
        s[tail] = st
    return s


def polygamma(n: int, x: np.ndarray) -> np.ndarray:
    """ψ^(n)(x) = (-1)^(n+1) n! ζ(n + 1, x) for n >= 2; digamma and trigamma for n = 0, 1 (as ATen,
    whose float32 product rounds ζ and n! = exp(lgamma(n + 1)) to float first)."""
    if n == 0:
        return digamma(x)
    if n == 1:
        return trigamma(x)
    real = np.float32 if _single(x) else np.float64
    with np.errstate(all="ignore"):
        factorial = np.exp(real(math.lgamma(n + 1.0)))
        return real(1.0 if n % 2 else -1.0) * factorial * zeta(real(n + 1), x).astype(real)


# ---------------------------------------------------------------- erfc and its inverses
# Cephes' ndtr.c rational approximations: erf(x) = x·T(x²)/U(x²) for |x| < 1, and
# exp(x²)·erfc(x) = P(x)/Q(x) for 1 <= x < 8, R(x)/S(x) past 8 (relative errors near 1e-16)
_ERFC_SWITCH = 1.0
_ERF_T = (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3, 7.00332514112805075473e3,
          5.55923013010394962768e4)
_ERF_U = (1.0, 3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
          2.26290000613890934246e4, 4.92673942608635921086e4)
_ERFC_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0, 4.86371970985681366614e1,
           1.96520832956077098242e2, 5.26445194995477358631e2, 9.34528527171957607540e2, 1.02755188689515710272e3,
           5.57535335369399327526e2)
_ERFC_Q = (1.0, 1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2, 9.75708501743205489753e2,
           1.82390916687909736289e3, 2.24633760818710981792e3, 1.65666309194161350182e3, 5.57535340817727675546e2)
_ERFC_R = (5.64189583547755073984e-1, 1.27536670759978104416e0, 5.01905042251180477414e0, 6.16021097993053585195e0,
           7.40974269950448939160e0, 2.97886665372100240670e0)
_ERFC_S = (1.0, 2.26052863220117276590e0, 9.39603524938001434673e0, 1.20489539808096656605e1,
           1.70814450747565897222e1, 9.60896809063285878198e0, 3.36907645100081516050e0)


def _erf_small(x: np.ndarray) -> np.ndarray:
    """erf(x) for |x| <= 1 (Cephes' T/U)."""
    z = x * x
    return x * _polevl(z, _ERF_T, np.float64) / _polevl(z, _ERF_U, np.float64)


def _erfc_scaled_tail(z: np.ndarray) -> np.ndarray:
    """exp(z²)·erfc(z) for z >= 1 (Cephes' P/Q below 8, R/S above)."""
    near = _polevl(z, _ERFC_P, np.float64) / _polevl(z, _ERFC_Q, np.float64)
    far = _polevl(z, _ERFC_R, np.float64) / _polevl(z, _ERFC_S, np.float64)
    far = np.where(z > 1e8, 1 / (_SQRT_PI * z), far)  # R/S's powers would overflow; 1/(sqrt(π) z) is exact there
    return np.where(z < 8, near, far)


def erfc(x: np.ndarray) -> np.ndarray:
    """1 - erf(x) with relative accuracy in the right tail."""
    x = _f64(x)
    z = np.abs(x)
    with np.errstate(all="ignore"):
        tail_z = np.maximum(z, _ERFC_SWITCH)
        tail = np.exp(-tail_z * tail_z) * _erfc_scaled_tail(tail_z)
        e = np.where(z >= _ERFC_SWITCH, tail, 1 - _erf_small(np.minimum(z, _ERFC_SWITCH)))
        return np.where(np.isnan(x), x, np.where(x >= 0, e, 2 - e))


def _log_erfc_nonnegative(z: np.ndarray) -> np.ndarray:
    """log erfc(z) for z >= 0, without underflow in the tail."""
    with np.errstate(all="ignore"):
        tail_z = np.maximum(z, _ERFC_SWITCH)
        tail = -tail_z * tail_z + np.log(_erfc_scaled_tail(tail_z))
        return np.where(z >= _ERFC_SWITCH, tail, np.log(1 - _erf_small(np.minimum(z, _ERFC_SWITCH))))


def _erfcx_nonnegative(z: np.ndarray) -> np.ndarray:
    """exp(z²) erfc(z) for z >= 0 in float64, with no overflow: Cephes' tail past 1, and past 50
    ATen's own five-term fraction (past 5e7 its one term), so that log_ndtr, which subtracts z²
    from its log, cancels to torch's digits."""
    with np.errstate(all="ignore"):
        tail = _erfc_scaled_tail(np.clip(z, _ERFC_SWITCH, 50.0))
        near = np.exp(z * z) * erfc(np.minimum(z, _ERFC_SWITCH))
        z2 = z * z
        far = (z2 * (z2 + 4.5) + 2) / (z * (z2 * (z2 + 5) + 3.75)) / _SQRT_PI
        far = np.where(z > 5e7, 1 / _SQRT_PI / z, far)
        return np.where(z > 50, far, np.where(z >= _ERFC_SWITCH, tail, near))


def erfcx(x: np.ndarray) -> np.ndarray:
    """exp(x²) erfc(x). Below 0 it is ATen's 2·exp(x²) - erfcx(-x) in the input's dtype (the
    float32 rounding of x² shows in the result: a relative 1e-5 at x = -8), just 2·exp(x²)
    below -6.1 and +inf below -26.7."""
    real = np.float32 if _single(x) else np.float64
    x = np.asarray(x, dtype=real)
    with np.errstate(all="ignore"):
        mirrored = _erfcx_nonnegative(np.abs(x.astype(np.float64))).astype(real)  # erfcx(|x|)
        twice_exp = real(2) * _libm(np.exp, x * x)
        negative = np.where(x < -6.1, twice_exp, twice_exp - mirrored)
        negative = np.where(x < -26.7, real(np.inf), negative)
        return np.where(x < 0, negative, mirrored)


def log_ndtr(x: np.ndarray) -> np.ndarray:
    """log Φ(x) for the standard normal CDF Φ, ATen's formula in the input's dtype: below -1,
    log(erfcx(-t)/2) - t² with t = x/sqrt(2) (torch's gradient, exp(-(log Φ + x²/2)), cancels
    against these very roundings far in the left tail); above, log1p(-erfc(t)/2)."""
    real = np.float32 if _single(x) else np.float64
    x = np.asarray(x, dtype=real)
    with np.errstate(all="ignore"):
        t = x * real(math.sqrt(0.5))  # c10::frac_sqrt_2, which 1/sqrt(2) misses by an ulp
        scaled = _erfcx_nonnegative(np.maximum(-t, 0.0).astype(np.float64)).astype(real)
        left = _libm(np.log, scaled / real(2)) - t * t
        right = np.log1p(-0.5 * erfc(t.astype(np.float64))).astype(real)
        return np.where(np.isnan(x), x, np.where(x < -1, left, right))


# torch's starting rational approximations for erfinv (ATen's calc_erfinv)
_ERFINV_A = (0.886226899, -1.645349621, 0.914624893, -0.140543331)
_ERFINV_B = (-2.118377725, 1.442710462, -0.329097515, 0.012229801)
_ERFINV_C = (-1.970840454, -1.624906493, 3.429567803, 1.641345311)
_ERFINV_D = (3.543889200, 1.637067800)


def _erfinv_start(y: np.ndarray, c: np.ndarray) -> np.ndarray:
    """A rough |erfinv| from |y| and c = 1 - |y| (given exactly by the caller)."""
    with np.errstate(all="ignore"):
        z = y * y
        a, b = _ERFINV_A, _ERFINV_B
        center = y * (((a[3] * z + a[2]) * z + a[1]) * z + a[0]) / ((((b[3] * z + b[2]) * z + b[1]) * z + b[0]) * z + 1)
        w = np.sqrt(-np.log(np.maximum(c, 1e-300) / 2.0))
        cc, d = _ERFINV_C, _ERFINV_D
        tail = (((cc[3] * w + cc[2]) * w + cc[1]) * w + cc[0]) / ((d[1] * w + d[0]) * w + 1)
        return np.where(y <= 0.7, center, tail)


def _erfc_inverse(c: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z >= 0 with erfc(z) = c, for c in (0, 1] with y = 1 - c: Newton steps on log erfc, whose
    residual stays relative in the tail (erf(z) - y there would lose every digit to rounding)."""
    z = np.abs(_erfinv_start(y, c))
    log_c = np.log(c)
    with np.errstate(all="ignore"):
        for _ in range(4):  # the start is good to 1e-3 or better; Newton squares the error each step
            log_e = _log_erfc_nonnegative(z)
            slope = -2 / _SQRT_PI * np.exp(-z * z - log_e)  # d/dz log erfc(z)
            z = np.maximum(z - (log_e - log_c) / slope, 0.0)
    return z


def erfinv(x: np.ndarray) -> np.ndarray:
    """The inverse of erf on [-1, 1] (±inf at ±1, NaN outside): torch's starting approximation,
    then Newton steps on erf near 0 and on log erfc(|x|) past |x| = 1/2."""
    x = _f64(x)
    y = np.abs(x)
    z = np.where(y == 1, np.inf, np.nan)  # the edges; NaN stays NaN and |x| > 1 becomes NaN
    with np.errstate(all="ignore"):
        center = y <= 0.5
        if center.any():
            yc = y[center]
            zc = _erfinv_start(yc, 1 - yc)
            for _ in range(3):
                zc = zc - (_erf_small(zc) - yc) / (2 / _SQRT_PI * np.exp(-zc * zc))
            z[center] = zc
        tail = (y > 0.5) & (y < 1)
        if tail.any():
            yt = y[tail]
            z[tail] = _erfc_inverse(1 - yt, yt)  # 1 - y is exact there (Sterbenz)
        return np.where(np.isnan(x), x, np.copysign(z, x))


def ndtri(p: np.ndarray) -> np.ndarray:
    """The inverse standard normal CDF: Φ⁻¹(p) = -sqrt(2)·erfcinv(2p), taken from the nearer end
    so that tiny tail probabilities keep their digits; ∓inf at 0 and 1, NaN outside [0, 1]."""
    p = _f64(p)
    with np.errstate(all="ignore"):
        lower = p < 0.5
        q = np.where(lower, p, 1 - p)  # 1 - p is exact for p >= 1/2
        c = 2 * q
        ok = (c > 0) & (c <= 1)
        z = _erfc_inverse(np.where(ok, c, 1.0), np.where(ok, 1 - c, 0.0))
        x = np.where(lower, -math.sqrt(2.0) * z, math.sqrt(2.0) * z)
        x = np.where(p == 0, -np.inf, np.where(p == 1, np.inf, x))
        return np.where((p < 0) | (p > 1) | np.isnan(p), np.nan, x)


# ---------------------------------------------------------------- modified Bessel functions I0, I1
# Cephes' Chebyshev coefficients (ATen's Math.h): exp(-x)·I0(x) on [0, 8] (A) and
# exp(-x)·sqrt(x)·I0(x) on (8, inf) (B), the same for float and double
_I0E_A = (
    -4.41534164647933937950E-18, 3.33079451882223809783E-17, -2.43127984654795469359E-16,
    1.71539128555513303061E-15, -1.16853328779934516808E-14, 7.67618549860493561688E-14,
    -4.85644678311192946090E-13, 2.95505266312963983461E-12, -1.72682629144155570723E-11,
    9.67580903537323691224E-11, -5.18979560163526290666E-10, 2.65982372468238665035E-9,
    -1.30002500998624804212E-8, 6.04699502254191894932E-8, -2.67079385394061173391E-7,
    1.11738753912010371815E-6, -4.41673835845875056359E-6, 1.64484480707288970893E-5,
    -5.75419501008210370398E-5, 1.88502885095841655729E-4, -5.76375574538582365885E-4,
    1.63947561694133579842E-3, -4.32430999505057594430E-3, 1.05464603945949983183E-2,
    -2.37374148058994688156E-2, 4.93052842396707084878E-2, -9.49010970480476444210E-2,
    1.71620901522208775349E-1, -3.04682672343198398683E-1, 6.76795274409476084995E-1,
)
_I0E_B = (
    -7.23318048787475395456E-18, -4.83050448594418207126E-18, 4.46562142029675999901E-17,
    3.46122286769746109310E-17, -2.82762398051658348494E-16, -3.42548561967721913462E-16,
    1.77256013305652638360E-15, 3.81168066935262242075E-15, -9.55484669882830764870E-15,
    -4.15056934728722208663E-14, 1.54008621752140982691E-14, 3.85277838274214270114E-13,
    7.18012445138366623367E-13, -1.79417853150680611778E-12, -1.32158118404477131188E-11,
    -3.14991652796324136454E-11, 1.18891471078464383424E-11, 4.94060238822496958910E-10,
    3.39623202570838634515E-9, 2.26666899049817806459E-8, 2.04891858946906374183E-7, 2.89137052083475648297E-6,
    6.88975834691682398426E-5, 3.36911647825569408990E-3, 8.04490411014108831608E-1,
)
# exp(-x)·I1(x)/x on [0, 8] and exp(-x)·sqrt(x)·I1(x) past 8; ATen's float kernels take the last 17
# and 7 of them
_I1E_A = (
    2.77791411276104639959E-18, -2.11142121435816608115E-17, 1.55363195773620046921E-16,
    -1.10559694773538630805E-15, 7.60068429473540693410E-15, -5.04218550472791168711E-14,
    3.22379336594557470981E-13, -1.98397439776494371520E-12, 1.17361862988909016308E-11,
    -6.66348972350202774223E-11, 3.62559028155211703701E-10, -1.88724975172282928790E-9,
    9.38153738649577178388E-9, -4.44505912879632808065E-8, 2.00329475355213526229E-7,
    -8.56872026469545474066E-7, 3.47025130813767847674E-6, -1.32731636560394358279E-5,
    4.78156510755005422638E-5, -1.61760815825896745588E-4, 5.12285956168575772895E-4,
    -1.51357245063125314899E-3, 4.15642294431288815669E-3, -1.05640848946261981558E-2,
    2.47264490306265168283E-2, -5.29459812080949914269E-2, 1.02643658689847095384E-1,
    -1.76416518357834055153E-1, 2.52587186443633654823E-1,
)
_I1E_B = (
    7.51729631084210481353E-18, 4.41434832307170791151E-18, -4.65030536848935832153E-17,
    -3.20952592199342395980E-17, 2.96262899764595013876E-16, 3.30820231092092828324E-16,
    -1.88035477551078244854E-15, -3.81440307243700780478E-15, 1.04202769841288027642E-14,
    4.27244001671195135429E-14, -2.10154184277266431302E-14, -4.08355111109219731823E-13,
    -7.19855177624590851209E-13, 2.03562854414708950722E-12, 1.41258074366137813316E-11,
    3.25260358301548823856E-11, -1.89749581235054123450E-11, -5.58974346219658380687E-10,
    -3.83538038596423702205E-9, -2.63146884688951950684E-8, -2.51223623787020892529E-7,
    -3.88256480887769039346E-6, -1.10588938762623716291E-4, -9.76109749136146840777E-3,
    7.78576235018280120474E-1,
)
_I1E_FLOAT_TERMS = (17, 7)


def _chbevl(z, coefficients):
    """Cephes' chbevl, in z's dtype: ½(b₀ - b₂) of the Chebyshev series' Clenshaw recurrence."""
    real = z.dtype.type
    b0, b1, b2 = np.full_like(z, real(coefficients[0])), np.zeros_like(z), np.zeros_like(z)
    for coefficient in coefficients[1:]:
        b2, b1 = b1, b0
        b0 = z * b1 - b2 + real(coefficient)
    return real(0.5) * (b0 - b2)


def _bessel_i(order: int, x: np.ndarray, scaled: bool) -> np.ndarray:
    """I_order(x) (order 0 or 1), times e^{-|x|} when ``scaled``: ATen's kernels (Cephes' Chebyshev
    series on [0, 8] and past 8), in float32 arithmetic for float32 and narrower input as torch's
    float kernels (whose exp(|x|) overflows past 88.7, so float32 I0 and I1 are inf there)."""
    single = _single(x)
    real = np.float32 if single else np.float64
    x = np.asarray(x, dtype=real)
    z = np.abs(x)
    a, b = (_I0E_A, _I0E_B) if order == 0 else (_I1E_A, _I1E_B)
    if order == 1 and single:
        a, b = a[-_I1E_FLOAT_TERMS[0]:], b[-_I1E_FLOAT_TERMS[1]:]
    with np.errstate(all="ignore"):
        near = _chbevl(z / real(2) - real(2), a)
        far = _chbevl(real(32) / z - real(2), b)
        if order == 1:
            near = near * z if scaled else _libm(np.exp, z) * z * near
        elif not scaled:
            near = _libm(np.exp, z) * near
        far = far / np.sqrt(z) if scaled else _libm(np.exp, z) * far / np.sqrt(z)
        result = np.where(z <= 8, near, far)
        return np.where(x < 0, -result, result) if order == 1 else result


def i0(x):
    return _bessel_i(0, x, scaled=False)


def i0e(x):
    return _bessel_i(0, x, scaled=True)


def i1(x):
    return _bessel_i(1, x, scaled=False)


def i1e(x):
    return _bessel_i(1, x, scaled=True)
