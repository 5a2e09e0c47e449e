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


def torch_poisson_draws(stream, rates: np.ndarray) -> np.ndarray:
    """sample_poisson per rate (as doubles), in order: from λ = 10 Hörmann's transformed
    rejection (two uniforms a try), below it the product of uniforms until it falls to e^-λ,
    none drawn for λ = 0. Returns the counts as float64."""
    values = np.asarray(rates, dtype=np.float64).reshape(-1).tolist()
    out = np.empty(len(values), dtype=np.float64)
    cursor = stream.double_cursor(2 * len(values) + 16)
    try:
        for index, rate in enumerate(values):
            out[index] = _poisson_one(rate, cursor) if rate > 0 else 0.0
    finally:
        cursor.close()
    return out


def _poisson_one(rate: float, cursor) -> float:
    if rate < 10:
        bound, count, product = math.exp(-rate), 0, 1.0
        while True:
            product *= cursor.uniform()
            if product <= bound:
                return float(count)
            count += 1
    log, floor = math.log, math.floor
    root, log_rate = math.sqrt(rate), log(rate)
    b = 0.931 + 2.53 * root
    a = -0.059 + 0.02483 * b
    log_inverse_alpha = log(1.1239 + 1.1328 / (b - 3.4))
    v_r = 0.9277 - 3.6224 / (b - 2)
    while True:
        u = cursor.uniform() - 0.5
        v = cursor.uniform()
        us = 0.5 - abs(u)
        k = floor((2 * a / us + b) * u + rate + 0.43)
        if us >= 0.07 and v <= v_r:
            return float(k)
        if k < 0 or (us < 0.013 and v > us):
            continue
        if (log(v) + log_inverse_alpha - log(a / (us * us) + b)) <= -rate + k * log_rate - _lgamma(k + 1.0):
            return float(k)


def torch_binomial_draws(stream, counts: np.ndarray, probs: np.ndarray, scalar_type) -> np.ndarray:
    """sample_binomial per (count, prob) pair, in order: 0 for count ≤ 0 or prob ≤ 0, count for
    prob ≥ 1; else on the smaller of p and 1 - p (the other subtracted from count), BTRS from
    count·p = 10, inversion by geometric waiting times below. ``scalar_type`` (float32 or
    float64) is the tensors' type, in which torch keeps count, p and the draw."""
    scalar = np.float32 if np.dtype(scalar_type) == np.float32 else np.float64
    pairs = zip(np.asarray(counts, dtype=scalar).reshape(-1).tolist(), np.asarray(probs, dtype=scalar).reshape(-1).tolist())
    out = np.empty(np.asarray(counts).size, dtype=np.float64)
    cursor = stream.double_cursor(2 * out.size + 16)
    try:
        for index, (count, prob) in enumerate(pairs):
            out[index] = _binomial_one(count, prob, cursor, scalar)
    finally:
        cursor.close()
    return out


def _binomial_one(count: float, prob: float, cursor, scalar) -> float:
    if math.isnan(count):  # torch's waiting-time loop never ends on a NaN count: NaN here
        return math.nan
    if count <= 0 or prob <= 0:
        return 0.0
    if prob >= 1:
        return count
    if prob <= 0.5:
        product = float(scalar(count) * scalar(prob))
        return _btrs(count, prob, cursor, scalar) if product >= 10 else _inversion(count, prob, cursor, scalar)
    if prob > 0.5:
        q = float(scalar(1.0) - scalar(prob))
        product = float(scalar(count) * scalar(q))
        taken = _btrs(count, q, cursor, scalar) if product >= 10 else _inversion(count, q, cursor, scalar)
        return float(scalar(count) - scalar(taken))
    return math.nan


def _inversion(count: float, prob: float, cursor, scalar) -> float:
    """Geometric waiting times ceil(log u / log(1 - p)) summed until they pass ``count``."""
    log_q = _log1pf(-prob) if scalar is np.float32 else math.log1p(-prob)
    total, successes = 0.0, 0
    while True:
        total += math.ceil(math.log(cursor.uniform()) / log_q)
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


def _btrs(count: float, prob: float, cursor, scalar) -> float:
    """Hörmann's BTRS (transformed rejection with squeeze), torch's variant of TensorFlow's:
    count·p·(1 - p), its square root and (count + 1)·p in the tensors' type, the rest double."""
    n, p = scalar(count), scalar(prob)
    deviation = float(np.sqrt(n * p * (scalar(1) - p)))
    b = 1.15 + 2.53 * deviation
    a = -0.0873 + 0.0248 * b + 0.01 * prob
    c = float(n * p) + 0.5
    v_r = 0.92 - 4.2 / b
    r = float(p / (scalar(1) - p))  # a quotient of two values of the tensors' type
    alpha = (2.83 + 5.1 / b) * deviation
    m = float(np.floor((n + scalar(1)) * p))
    log, floor = math.log, math.floor
    while True:
        u = cursor.uniform() - 0.5
        v = cursor.uniform()
        us = 0.5 - abs(u)
        k = float(scalar(floor((2 * a / us + b) * u + c)))
        if k < 0 or k > count:
            continue
        if us >= 0.07 and v <= v_r:
            return k
        v = log(v * alpha / (a / (us * us) + b))
        remaining = float(n - scalar(k) + scalar(1))  # count - k + 1, in the tensors' type
        bound = ((m + 0.5) * log((m + 1) / (r * (count - m + 1)))
                 + float(n + scalar(1)) * log((count - m + 1) / remaining)
                 + (k + 0.5) * log(r * remaining / float(scalar(k) + scalar(1)))
                 + _stirling_tail(m) + _stirling_tail(count - m) - _stirling_tail(k) - _stirling_tail(count - k))
        if v <= bound:
            return k
