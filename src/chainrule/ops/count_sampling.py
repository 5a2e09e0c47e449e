"""torch's CPU Poisson and binomial samplers (torch.poisson, torch.binomial, and the Poisson and
Binomial distributions' ``sample``), value by value on the CPU stream's double uniforms, so the
same seed gives torch's counts.

Both are rejection samplers whose number of draws shows only as they run, so each value is a
Python loop over a ``DoubleCursor``; the arithmetic keeps torch's types: Poisson all in double,
binomial's count and probability in the tensor's type where torch's template keeps them there
(float32's products, ``sqrt`` and ``log1p`` of a float rounded as float), the rest in double.
The C library's functions are called as torch calls them (math's, and lgamma and log1pf from
the C library itself: Python's math.lgamma is its own).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy as np

__all__: list[str] = []
__not_methods__: set[str] = set()


def _c_math():
    """The C library's lgamma and log1pf, or Python stand-ins where it cannot be loaded."""
    try:
        library = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
        lgamma, log1pf = library.lgamma, library.log1pf
    except (OSError, AttributeError):
        return math.lgamma, lambda x: float(np.float32(math.log1p(x)))
    lgamma.restype, lgamma.argtypes = ctypes.c_double, [ctypes.c_double]
    log1pf.restype, log1pf.argtypes = ctypes.c_float, [ctypes.c_float]
    return lgamma, log1pf


_lgamma, _log1pf = _c_math()


_INT64_MIN = -(2 ** 63)


def _as_int64(x: float) -> int:
    """torch's (int64_t)std::floor(x): x86's conversion gives INT64_MIN for NaN, ±inf and anything
    out of range, which sample_poisson then returns for an infinite (or ≥ 2⁶³) rate."""
    return math.floor(x) if -2.0 ** 63 <= x < 2.0 ** 63 else _INT64_MIN


def torch_poisson_draws(stream, rates: np.ndarray) -> np.ndarray:
    """sample_poisson per rate (as doubles), in order: from λ = 10 Hörmann's transformed
    rejection (PTRS, two uniforms a try), below it the product of uniforms until it falls to
    e^-λ, none drawn for λ = 0. Returns the counts as float64. One Python loop reading the
    uniforms by a local index."""
    values = np.asarray(rates, dtype=np.float64).reshape(-1)
    out = []
    cursor = stream.double_cursor(int(np.nan_to_num(np.minimum(values, 10)).sum()) + 2 * len(values) + 16)
    uniforms, index = cursor.values, 0
    exp, log, sqrt = math.exp, math.log, math.sqrt
    setups: dict = {}  # rate -> PTRS constants, each worked out once
    try:
        for rate in values.tolist():
            if not rate > 0:
                out.append(0.0)
            elif rate < 10:
                bound, count, product = exp(-rate), 0, 1.0
                while True:
                    if index == len(uniforms):
                        uniforms = cursor.grow()
                    product *= uniforms[index]
                    index += 1
                    if product <= bound:
                        break
                    count += 1
                out.append(float(count))
            else:
                known = setups.get(rate)
                if known is None:
                    b = 0.931 + 2.53 * sqrt(rate)
                    known = setups[rate] = (log(rate), b, -0.059 + 0.02483 * b,
                                            log(1.1239 + 1.1328 / (b - 3.4)), 0.9277 - 3.6224 / (b - 2))
                log_rate, b, a, log_inverse_alpha, v_r = known
                while True:
                    if index + 2 > len(uniforms):
                        uniforms = cursor.grow()
                    u = uniforms[index] - 0.5
                    v = uniforms[index + 1]
                    index += 2
                    us = 0.5 - abs(u)
                    if us == 0:  # an infinite k: torch's loop goes round again
                        continue
                    k = _as_int64((2 * a / us + b) * u + rate + 0.43)
                    if us >= 0.07 and v <= v_r:
                        break
                    if k < 0 or (us < 0.013 and v > us):
                        continue
                    if (log(v) + log_inverse_alpha - log(a / (us * us) + b)
                            <= -rate + k * log_rate - _lgamma(k + 1.0)):
                        break
                out.append(float(k))
    finally:
        cursor.close(index)
    return np.array(out, dtype=np.float64)


def torch_binomial_draws(stream, counts: np.ndarray, probs: np.ndarray, scalar_type) -> np.ndarray:
    """sample_binomial per (count, prob) pair, in order: 0 for count ≤ 0 or prob ≤ 0, count for
    prob ≥ 1; else on the smaller of p and 1 - p (the other subtracted from count), BTRS from
    count·p = 10, inversion by geometric waiting times below. ``scalar_type`` (float32 or
    float64) is the tensors' type, in which torch keeps count, p and the draw.

    Each pair's constants are worked out for all pairs at once (NumPy's arithmetic in the
    tensors' type and in double rounds as torch's; logarithms through the C library), then one
    Python loop draws."""
    scalar = np.float32 if np.dtype(scalar_type) == np.float32 else np.float64
    count = np.asarray(counts, dtype=scalar).reshape(-1)
    prob = np.asarray(probs, dtype=scalar).reshape(-1)
    with np.errstate(all="ignore"):
        flip = prob > 0.5
        smaller = np.where(flip, scalar(1) - prob, prob)
        btrs = count * smaller >= 10
        constants = _btrs_constants(count[btrs], smaller[btrs], scalar)
        log_q = _log_one_minus(smaller[~btrs], scalar)
    # count - k + 1, k and k + 1 are exact in float32 for a whole count below 2**23
    plain = (scalar is np.float64) | ((count == np.floor(count)) & (count < 2**23))
    settled = np.full(count.shape, np.nan)  # the draw where no uniform is taken, else NaN
    settled[(count <= 0) | (prob <= 0)] = 0.0
    settled[(prob >= 1) & ~(count <= 0)] = count[(prob >= 1) & ~(count <= 0)]
    drawing = np.isnan(settled) & ~np.isnan(count) & ~np.isnan(prob)
    rows = iter(zip(*constants))
    log_qs = iter(log_q.tolist())
    out = settled.tolist()
    cursor = stream.double_cursor(2 * len(out) + 16)
    try:
        for index, (n, draws, by_btrs, flipped, exact) in enumerate(zip(
                count.tolist(), drawing.tolist(), btrs.tolist(), flip.tolist(), plain.tolist())):
            row = next(rows) if by_btrs else None
            q = None if by_btrs else next(log_qs)
            if not draws:
                continue
            k = _btrs_draw(n, row, cursor, _PLAIN if exact else _rounder(scalar)) if by_btrs else _inversion(n, q, cursor)
            out[index] = float(scalar(n) - scalar(k)) if flipped else k
    finally:
        cursor.close()
    return np.array(out, dtype=np.float64)


def _log_one_minus(prob: np.ndarray, scalar) -> np.ndarray:
    """log1p(-p) as torch's inversion computes it: the C library's log1pf for float32."""
    if scalar is np.float32:
        return np.array([_log1pf(-x) for x in prob.tolist()], dtype=np.float64)
    return np.array([math.log1p(-x) if x < 1 else -math.inf for x in prob.tolist()], dtype=np.float64)


def _inversion(count: float, log_q: float, cursor) -> float:
    """Geometric waiting times ceil(log u / log(1 - p)) summed until they pass ``count``."""
    uniform, log, ceil = cursor.uniform, math.log, math.ceil
    total, successes = 0.0, 0
    while True:
        total += ceil(log(uniform()) / log_q)
        if total > count:
            return float(successes)
        successes += 1


_STIRLING_TAILS = (0.0810614667953272, 0.0413406959554092, 0.0276779256849983, 0.02079067210376509,
                   0.0166446911898211, 0.0138761288230707, 0.0118967099458917, 0.0104112652619720,
                   0.00925546218271273, 0.00833056343336287)


def _stirling_tail(k: float) -> float:
    """log k! minus its Stirling approximation: tabulated to 9, the series beyond."""
    if k <= 9:
        return _STIRLING_TAILS[int(k)]
    square = (k + 1) * (k + 1)
    return (1.0 / 12 - (1.0 / 360 - 1.0 / 1260 / square) / square) / (k + 1)


def _btrs_constants(count: np.ndarray, prob: np.ndarray, scalar) -> list:
    """BTRS's constants for every pair: count·p·(1 - p), its square root, count·p, p/(1 - p)
    and (count + 1)·p in the tensors' type, the rest double; columns of Python floats."""
    deviation = np.sqrt(count * prob * (scalar(1) - prob)).astype(np.float64)
    p = prob.astype(np.float64)
    b = 1.15 + 2.53 * deviation
    a = -0.0873 + 0.0248 * b + 0.01 * p
    c = (count * prob).astype(np.float64) + 0.5
    v_r = 0.92 - 4.2 / b
    r = (prob / (scalar(1) - prob)).astype(np.float64)
    alpha = (2.83 + 5.1 / b) * deviation
    m = np.floor((count + scalar(1)) * prob).astype(np.float64)
    n = count.astype(np.float64)
    ratio = ((m + 1) / (r * (n - m + 1))).tolist()
    first = (m + 0.5) * np.array([math.log(x) for x in ratio], dtype=np.float64)
    tail_m = [_stirling_tail(x) for x in m.tolist()]
    tail_rest = [_stirling_tail(x) for x in (n - m).tolist()]
    count_plus_one = (count + scalar(1)).astype(np.float64)
    return [column.tolist() if isinstance(column, np.ndarray) else column
            for column in (a, b, c, v_r, r, alpha, m, first, tail_m, tail_rest, count_plus_one)]


def _PLAIN(value: float) -> float:
    return value


def _rounder(scalar):
    def rounded(value: float) -> float:
        return float(scalar(value))

    return rounded


def _btrs_draw(count: float, constants: tuple, cursor, rounded) -> float:
    """Hörmann's BTRS (transformed rejection with squeeze), torch's variant of TensorFlow's, for
    one pair; ``rounded`` rounds k, count - k + 1 and k + 1 to the tensors' type (a no-op where
    they are exact)."""
    a, b, c, v_r, r, alpha, m, first_term, tail_m, tail_rest, count_plus_one = constants
    uniform, log, floor = cursor.uniform, math.log, math.floor
    while True:
        u = uniform() - 0.5
        v = uniform()
        us = 0.5 - abs(u)
        if us == 0:  # an infinite k, rejected below in torch's loop
            continue
        k = rounded(float(floor((2 * a / us + b) * u + c)))
        if k < 0 or k > count:
            continue
        if us >= 0.07 and v <= v_r:
            return k
        v = log(v * alpha / (a / (us * us) + b))
        remaining = rounded(rounded(count - k) + 1)  # count - k + 1, in the tensors' type
        bound = (first_term + count_plus_one * log((count - m + 1) / remaining)
                 + (k + 0.5) * log(r * remaining / rounded(k + 1))
                 + tail_m + tail_rest - _stirling_tail(k) - _stirling_tail(count - k))
        if v <= bound:
            return k
