"""Special functions NumPy lacks (erf), accurate to float64 round-off, vectorised; and torch's float32
GELU kernels (oneDNN's), which compute their own erf."""

from __future__ import annotations

import numpy as np

from .._backend import array_module

_SERIES_TERMS = 64
_FRACTION_TERMS = 40
_SWITCH = 3.0


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, elementwise, in x's floating dtype.

    |x| < 3: erf(x) = 2/sqrt(pi) e^{-x^2} sum_n 2^n x^{2n+1} / (2n+1)!!  (all terms positive, so
    no cancellation); |x| >= 3: erfc from its continued fraction, evaluated bottom-up.
    """
    xp = array_module(x)
    if xp is not np:
        return _erf_device(xp, x)
    x = np.asarray(x)
    if x.ndim == 0:  # NumPy ufuncs turn 0-d arrays into scalars, which the masked writes below need
        return erf(x.reshape(1)).reshape(())
    dtype = x.dtype if x.dtype.kind in "fV" else np.float64
    if dtype != np.float64:
        return _erf_single(x).astype(dtype, copy=False)
    z = np.abs(x.astype(np.float64))
    result = np.empty_like(z)
    small = z < _SWITCH
    if small.any():
        zs = z[small]
        z2 = zs * zs
        term = zs.copy()
        total = zs.copy()
        for n in range(1, _SERIES_TERMS):
            term = term * (2.0 * z2) / (2 * n + 1)
            total += term
        result[small] = 2.0 / np.sqrt(np.pi) * np.exp(-z2) * total
    large = ~small & ~np.isnan(z)
    if large.any():
        zl = z[large]
        # erfc(z) = e^{-z^2}/sqrt(pi) * 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + ...))))
        fraction = zl.copy()
        for k in range(_FRACTION_TERMS, 0, -1):
            fraction = zl + (k / 2.0) / fraction
        result[large] = 1.0 - np.exp(-zl * zl) / np.sqrt(np.pi) / fraction
    result[np.isnan(z)] = np.nan
    return np.copysign(result, x).astype(dtype, copy=False)  # erf(-0.0) = -0.0, as torch's


def _erf_device(xp, x):
    """erf on a device array, branch-free: both formulas evaluated everywhere and selected with
    ``where``, so nothing waits on the host (no ``.any()``, no data-dependent shapes)."""
    dtype = x.dtype if x.dtype.kind in "fV" else np.float64
    z = xp.abs(x.astype(np.float64))
    small = z < _SWITCH
    zs = xp.where(small, z, 0.0)
    z2 = zs * zs
    term = zs.copy()
    total = zs.copy()
    for n in range(1, _SERIES_TERMS):
        term = term * (2.0 * z2) / (2 * n + 1)
        total += term
    series = 2.0 / np.sqrt(np.pi) * xp.exp(-z2) * total
    zl = xp.where(small, _SWITCH, z)
    fraction = zl.copy()
    for k in range(_FRACTION_TERMS, 0, -1):
        fraction = zl + (k / 2.0) / fraction
    tail = 1.0 - xp.exp(-zl * zl) / np.sqrt(np.pi) / fraction
    result = xp.where(small, series, xp.where(xp.isnan(z), z, tail))
    return xp.copysign(result, x).astype(dtype, copy=False)


# _erf_single works through the input this many elements at a time, so that its dozen float64
# temporaries (256 KiB each) stay in cache across its ~40 passes; each element's arithmetic is the
# same in any block. (983,040 float32 elements, GELU's size in decision_transformer, one thread:
# 34-38 ms unblocked with boolean-mask indexing, 14.7-16.4 ms in blocks of 2^13-2^16.)
_ERF_SINGLE_BLOCK = 1 << 15
_A_S_COEFFICIENTS = (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)
_TWO_OVER_SQRT_PI = 2.0 / np.sqrt(np.pi)


def _erf_single(x: np.ndarray) -> np.ndarray:
    """erf for float32/float16, in float64: |error| <= 1.5e-7 (below float32's resolution near 1).

    |x| < 0.5: the Maclaurin series (10 terms, exact to float64 there, so small inputs keep their
    relative accuracy); elsewhere Abramowitz & Stegun 7.1.26, a 5-term rational fit.
    """
    flat = x.reshape(-1)
    out = np.empty(flat.shape, dtype=np.float64)
    for start in range(0, flat.size, _ERF_SINGLE_BLOCK):
        stop = start + _ERF_SINGLE_BLOCK
        _erf_single_block(flat[start:stop], out[start:stop])
    if x.flags.c_contiguous:
        return out.reshape(x.shape)
    # in x's memory layout, as elementwise NumPy results are (gelu's output keeps its input's strides)
    laid_out = np.empty_like(x, dtype=np.float64)
    laid_out[...] = out.reshape(x.shape)
    return laid_out


def _erf_single_block(x: np.ndarray, out: np.ndarray) -> None:
    """``_erf_single`` of a 1-D block into ``out``: in place, each operation the one the formulas
    name (the same roundings as evaluating them expression by expression)."""
    z = np.abs(x.astype(np.float64))
    t = np.multiply(z, 0.3275911)
    t += 1.0
    np.divide(1.0, t, out=t)
    poly = np.multiply(t, _A_S_COEFFICIENTS[0])
    for coefficient in _A_S_COEFFICIENTS[1:]:  # Horner: t (c + t (...))
        poly += coefficient
        poly *= t
    result = t  # 1 - poly e^{-z^2}, in t's buffer
    np.multiply(z, z, out=result)
    np.negative(result, out=result)
    np.exp(result, out=result)
    result *= poly
    np.subtract(1.0, result, out=result)
    # integer positions: a boolean mask's gather and scatter cost 4 ms each on 10^6 elements
    small = np.flatnonzero(z < 0.5)
    if small.size:
        zs = z.take(small)
        neg_z2 = zs * zs
        np.negative(neg_z2, out=neg_z2)
        # erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
        term = zs.copy()
        total = zs
        piece = np.empty_like(zs)
        for n in range(1, 10):
            term *= neg_z2
            term /= n
            np.divide(term, 2 * n + 1, out=piece)
            total += piece
        total *= _TWO_OVER_SQRT_PI
        result[small] = total
    np.copysign(result, x, out=out)


# ---------------------------------------------------------------- torch's float32 GELU (exact)
# torch's CPU F.gelu(approximate='none') of a contiguous float32 tensor of more than one element, and
# its gradient, run oneDNN's eltwise gelu_erf kernels (ATen hands them to oneDNN when MKLDNN is on, its
# default), not ATen's x/2 (1 + erf(x/√2)). The forward depends on the CPU: on avx512_core it is a
# piecewise minimax polynomial of |x| with fused multiply-adds (gelu_float32); below it (AVX2) it is
# Abramowitz & Stegun 7.1.26 with oneDNN's own polynomial exp (gelu_float32_abramowitz_stegun). The
# backward is one kernel on both, A&S and the same exp. Every operation is rounded to float32, and the
# kernels below evaluate the same operations in the same order: a fused multiply-add as a float64
# product (exact for two float32 factors) and sum, rounded to float32 (a double rounding that differs
# from the fused one about once in 2^29). On 1,102,315 probe values (normals at 5 scales, uniforms,
# tails, ±0, ±inf, nan, subnormals, interval edges) on an AVX2 CPU, torch's forward and backward
# are all matched bitwise by the A&S forward and the backward, where 30 % and 87 % were before (the
# minimax forward; a 1/√π one ulp off oneDNN's); on AVX-512 the minimax forward matched 10^6 such values.

def _float32_table(*words: int) -> np.ndarray:
    return np.array(words, dtype=np.uint32).view(np.float32)


# gelu_erf's polynomials: erf(x/√2) ≈ p_i(|x|), degree 5, on 24 intervals of |x| picked by its
# exponent and two leading mantissa bits (index 1: |x| < 2^-24 ... index 23: the saturation 1.0;
# index 24: nan/inf, p(x) = x); row d holds the coefficients of x^d.
_GELU_ERF_POLYNOMIALS = np.stack([_float32_table(*row) for row in (
    (0, 0x32827792, 0x3381cc0c, 0x34523d4a, 0x351ac44d, 0x35f36d88, 0x36ee8229, 0x37b8a3bb, 0x3867a213,
     0x3940033b, 0x3a2a5a1d, 0x3ae35863, 0x3b7828f2, 0x3c08b14b, 0x3c515ed3, 0xbb503236, 0xbd8d8e5e, 0xbe8abcd9,
     0xbf0c19a2, 0xbeccb328, 0x3e176ced, 0x3f470d99, 0x3f7abb28, 0x3f800000, 0x00000000),
    (0, 0x3f4c421f, 0x3f4c4207, 0x3f4c41cb, 0x3f4c413b, 0x3f4c3fad, 0x3f4c3a2f, 0x3f4c2d40, 0x3f4c146a,
     0x3f4bc341, 0x3f4ad08c, 0x3f48f8cf, 0x3f45fac7, 0x3f404e07, 0x3f3b980f, 0x3f48dff3, 0x3f78b21b, 0x3fbb0704,
     0x40019c32, 0x3fe536d6, 0x3f81331e, 0x3e6c8684, 0x3c98f936, 0x00000000, 0x3f800000),
    (0, 0x3735e4cf, 0x37f2ff89, 0x388c23be, 0x3917535c, 0x39ab2ab0, 0x3a60fadb, 0x3af9b960, 0x3b6e5491,
     0x3c0a4ec5, 0x3ca5aa8c, 0x3d2138d9, 0x3d8737d4, 0x3ddfb660, 0x3e0f27ab, 0x3d94004b, 0xbe0efdeb, 0xbf1d96c3,
     0xbf89db58, 0xbf6d9897, 0xbef69fb8, 0xbdc4f8a8, 0xbbde6422, 0x00000000, 0x00000000),
    (0, 0xbe084570, 0xbe08639b, 0xbe089837, 0xbe08f409, 0xbe09ab95, 0xbe0b66d0, 0xbe0e400a, 0xbe124df8,
     0xbe1bde02, 0xbe2f19c9, 0xbe4931bf, 0xbe685fbc, 0xbe89c95f, 0xbe96cbca, 0xbe8044aa, 0xbe0550f2, 0x3dcfd6a1,
     0x3e94c826, 0x3e79345f, 0x3decec91, 0x3ca46568, 0x3aa1e00a, 0x00000000, 0x00000000),
    (0, 0x39f097a3, 0x3a5845dc, 0x3ab1fa35, 0x3b0cefb8, 0x3b653ab6, 0x3bcae527, 0x3c221712, 0x3c6c5840,
     0x3cc0a703, 0x3d1dcc19, 0x3d63656d, 0x3d955907, 0x3dbf9910, 0x3dd53f69, 0x3db7dcef, 0x3d639ebe, 0xba6ede48,
     0xbd22be69, 0xbd041cf1, 0xbc64f5ab, 0xbb097a32, 0xb8ebf380, 0x00000000, 0x00000000),
    (0, 0x3c9b6050, 0x3c978d11, 0x3c92e850, 0x3c8d058b, 0x3c848454, 0x3c6cd623, 0x3c4c824b, 0x3c2a7935,
     0x3be0b390, 0x3b0651ac, 0xbb232f53, 0xbbd42fa0, 0xbc2c5366, 0xbc492c9e, 0xbc2a7aa6, 0xbbd55d04, 0xba823a76,
     0x3b102aa8, 0x3ae25a7e, 0x3a31f792, 0x38b84375, 0x3689bb5a, 0x00000000, 0x00000000),
)]).astype(np.float64)
# the interval index is (bits(|x|) - 0x3de00001) >> 21, clamped to [1, 24]; above this bound, 23
_GELU_ERF_INDEX_BIAS = np.int32(-0x3DE00001)
_GELU_ERF_SATURATION = _float32_table(0x40B15CEE)[0]

# oneDNN's exp: e^x = 2 · 2^(n-1) · p(x - n ln2), n = floor(x log2(e) + 1/2), p of degree 5
_EXP_LOG2E, _EXP_LN2, _EXP_LOG_MIN = _float32_table(0x3FB8AA3B, 0x3F317218, 0xC2AEAC50)
_EXP_POLYNOMIAL = tuple(np.float32(c) for c in (0.00828929059, 0.0418978221, 0.166676521, 0.499991506, 0.999999701, 1.0))
_A_S_FLOAT32 = tuple(np.float32(c) for c in _A_S_COEFFICIENTS)
_GELU_BLOCK = 1 << 14  # cache-sized blocks, as _erf_single's


def _operand(value, dtype) -> np.ndarray:
    """``value`` as a 0-d array of ``dtype``: the same operand as the number of that dtype, which a
    ufunc takes without converting a Python or NumPy scalar first (NumPy 2.4, a float32 multiply of
    4096 values: 0.7 us with the array, 2.6 us with np.float32(0.5)); the kernels make a few dozen calls."""
    array = np.full((), value, dtype)
    array.flags.writeable = False
    return array


_I32 = {k: _operand(k, np.int32) for k in (1, 21, 23, 24, 126)}
_F32_ONE, _F32_HALF, _F32_TWO = (_operand(v, np.float32) for v in (1.0, 0.5, 2.0))
_F64_ONE = _operand(1.0, np.float64)
_SIGN_BIT = _operand(0x80000000, np.uint32)
_INDEX_BIAS = _operand(_GELU_ERF_INDEX_BIAS, np.int32)
_SATURATION = _operand(_GELU_ERF_SATURATION, np.float32)


def _copy_sign_bit(values: np.ndarray, signs: np.ndarray, scratch: np.ndarray) -> None:
    """values ^= the sign bit of signs, in place (float32; oneDNN's xor, cheaper than np.copysign)."""
    np.bitwise_and(signs.view(np.uint32), _SIGN_BIT, out=scratch)
    np.bitwise_xor(values.view(np.uint32), scratch, out=values.view(np.uint32))


def _round_float32(wide: np.ndarray, narrow: np.ndarray) -> None:
    """wide (float64) rounded to float32, into narrow and back into wide. (The kernels cast by
    assignment: np.copyto's cast, without its Python dispatcher.)"""
    narrow[...] = wide
    wide[...] = narrow


def gelu_float32(x: np.ndarray) -> np.ndarray:
    """torch's float32 gelu(x) (oneDNN's gelu_erf): x/2 · (1 + sign(x) p_i(|x|)), C-contiguous."""
    flat = x.reshape(-1)
    out = np.empty(flat.shape, dtype=np.float32)
    size = min(_GELU_BLOCK, flat.size)
    magnitude, polynomial = np.empty(size, np.float32), np.empty(size, np.float32)
    bits, step, index = np.empty(size, np.int32), np.empty(size, np.int32), np.empty(size, np.intp)
    saturated, sign = np.empty(size, bool), np.empty(size, np.uint32)
    magnitude64, wide, coefficient = np.empty(size, np.float64), np.empty(size, np.float64), np.empty(size, np.float64)
    for start in range(0, flat.size, _GELU_BLOCK):
        block = flat[start:start + _GELU_BLOCK]
        n = block.size
        z, p, b, d, i, sat = magnitude[:n], polynomial[:n], bits[:n], step[:n], index[:n], saturated[:n]
        z64, w, c = magnitude64[:n], wide[:n], coefficient[:n]
        np.abs(block, out=z)
        np.add(z.view(np.int32), _INDEX_BIAS, out=b)
        np.right_shift(b, _I32[21], out=b)  # arithmetic: subnormals map below 1, then clamp
        np.maximum(b, _I32[1], out=b)  # (np.clip: the same, through a Python wrapper costing more than both)
        np.minimum(b, _I32[24], out=b)
        np.greater(z, _SATURATION, out=sat)  # b = 23 there, by arithmetic (a masked write costs 10x)
        np.subtract(_I32[23], b, out=d)
        d *= sat
        b += d
        i[...] = b
        z64[...] = z
        _GELU_ERF_POLYNOMIALS[5].take(i, out=w, mode="clip")
        for degree in (4, 3, 2, 1, 0):  # Horner, each step one float32 fused multiply-add
            w *= z64
            _GELU_ERF_POLYNOMIALS[degree].take(i, out=c, mode="clip")
            w += c
            if degree:
                _round_float32(w, p)
        p[...] = w
        _copy_sign_bit(p, block, sign[:n])
        p += _F32_ONE
        result = out[start:start + n]
        np.multiply(block, p, out=result)
        result *= _F32_HALF
    return out.reshape(x.shape)


def _horner_float32(acc: np.ndarray, z: np.ndarray, coefficients: tuple, narrow: np.ndarray) -> np.ndarray:
    """p(z) by Horner into narrow (float32), each step one float32 fused multiply-add; acc and z
    are float64 (z holding float32 values), acc is scratch."""
    np.multiply(z, coefficients[0], out=acc)
    for coefficient in coefficients[1:-1]:
        acc += coefficient
        _round_float32(acc, narrow)
        acc *= z
    acc += coefficients[-1]
    narrow[...] = acc
    return narrow


def _exp_negative_square(r: np.ndarray, q: np.ndarray, t: np.ndarray, a: np.ndarray, z: np.ndarray,
                         acc: np.ndarray, scale: np.ndarray) -> None:
    """q = e^{-r²} (float32) as oneDNN's exp: 2 · 2^(k-1) · p(-r² - k ln2), k = floor(-r² log2(e) + 1/2);
    t, a (float32), z, acc (float64) and scale (int32) are scratch of r's size.

    oneDNN zeroes the result below log(FLT_MIN), where it clamps: there k = -126 and 2^(k-1)'s bits
    are already 0. This carries r² (not -r²; each negation is exact) and clamps it once, as r² >= 0.
    (Every step is a same-dtype ufunc or a cast by assignment: a float32-by-float64 ufunc casts
    through a buffer, 9.5 us on 16384 values against 6.6 us for the cast and the float64 product.)"""
    np.multiply(r, r, out=q)
    # q = min(q, -log(FLT_MIN)) with a NaN clamped too, as by oneDNN's minps (np.fmin's rule), on the
    # bits: r² is +0, positive, +inf or a NaN of either sign, and as uint32 the first three order as
    # floats while every NaN lies above the bound (6.5 us on 16384 values against fmin's 8.7)
    bits = q.view(np.uint32)
    np.minimum(bits, _NEGATIVE_LOG_MIN_BITS, out=bits)
    np.multiply(q, _NEGATIVE_LOG2E, out=t)
    t += _F32_HALF
    np.floor(t, out=t)
    z[...] = t
    z *= _NEGATIVE_LN2_64  # exact: k and ln2 are floats
    acc[...] = q
    z -= acc
    _round_float32(z, a)
    _horner_float32(acc, z, _EXP_POLYNOMIAL_64, a)
    scale[...] = t
    scale += _I32[126]
    np.left_shift(scale, _I32[23], out=scale)  # the bits of 2^(k-1)
    a *= scale.view(np.float32)
    np.multiply(a, _F32_TWO, out=q)


def gelu_float32_abramowitz_stegun(x: np.ndarray, keep: bool = False):
    """torch's float32 gelu(x) on a CPU without AVX-512 (oneDNN's gelu_erf for AVX2): x/2 + x/2 · erf(r),
    r = x/√2, erf(r) = sign(r) (1 - e^{-r²} w p(w)), w = 1 / (1 + 0.3275911 |r|), C-contiguous. With
    ``keep``, (gelu, e^{-r²}, erf(r)): the backward's two dear parts, the same bits it would compute
    (``gelu_backward_float32``'s ``kept``)."""
    flat = x.reshape(-1)
    out = np.empty(flat.shape, dtype=np.float32)
    kept_exp = np.empty(flat.shape, dtype=np.float32) if keep else None
    kept_erf = np.empty(flat.shape, dtype=np.float32) if keep else None
    size = min(_GELU_BLOCK, flat.size)
    r, t = np.empty(size, np.float32), np.empty(size, np.float32)
    q, a = (None, None) if keep else (np.empty(size, np.float32), np.empty(size, np.float32))
    z, acc = np.empty(size, np.float64), np.empty(size, np.float64)
    scale, sign = np.empty(size, np.int32), np.empty(size, np.uint32)
    for start in range(0, flat.size, _GELU_BLOCK):
        block = flat[start:start + _GELU_BLOCK]
        n = block.size
        rb, tb, zb, accb, kb, sb = r[:n], t[:n], z[:n], acc[:n], scale[:n], sign[:n]
        # with keep, e^{-r²} and erf(r) are computed in the kept arrays, not copied there
        qb, ab = (kept_exp[start:start + n], kept_erf[start:start + n]) if keep else (q[:n], a[:n])
        np.multiply(block, _SQRT_HALF_32, out=rb)
        _exp_negative_square(rb, qb, tb, ab, zb, accb, kb)  # q = e^{-r²}
        _erf_abramowitz_stegun(rb, qb, tb, ab, zb, accb)  # a = erf(|r|)
        _copy_sign_bit(ab, block, sb)  # (r's sign is x's: r = x · √½ rounds no sign away)
        # gelu = x/2 · erf + x/2, one fused multiply-add (x/2 in float32: halving a subnormal rounds)
        np.multiply(block, _F32_HALF, out=tb)
        zb[...] = tb
        accb[...] = ab
        accb *= zb
        accb += zb
        out[start:start + n] = accb
    if keep:
        return out.reshape(x.shape), kept_exp, kept_erf
    return out.reshape(x.shape)


def _erf_abramowitz_stegun(r: np.ndarray, q: np.ndarray, w: np.ndarray, a: np.ndarray, z: np.ndarray,
                           acc: np.ndarray) -> None:
    """a = erf(|r|) = 1 - q w p(w), w = 1 / (1 + 0.3275911 |r|), given q = e^{-r²}, as oneDNN's
    gelu_erf: w's denominator and each Horner step one fused multiply-add, q w rounded, then one
    more fused multiply-add (oneDNN's -q w · p(w) + 1). q is left as it is (the forward keeps it for
    the backward, written in place); w, z and acc are scratch."""
    np.abs(r, out=w)
    z[...] = w
    z *= _A_S_SCALE_64
    z += _F64_ONE
    w[...] = z
    np.divide(_F32_ONE, w, out=w)
    z[...] = w
    w *= q  # q w, rounded
    _horner_float32(acc, z, _A_S_FLOAT32_64, a)
    z[...] = a
    acc[...] = w
    acc *= z
    np.subtract(_F64_ONE, acc, out=acc)
    a[...] = acc


def gelu_backward_float32(grad: np.ndarray, x: np.ndarray, kept: tuple | None = None) -> np.ndarray:
    """torch's float32 gelu_backward(grad, x) (oneDNN's gelu_erf, on any x86 CPU): grad · (1/2 + r e^{-r²}/√π
    + erf(r)/2), r = x/√2, erf by Abramowitz & Stegun 7.1.26, x and grad C-contiguous. ``kept``: the flat
    (e^{-r²}, erf(r)) the AVX2 forward computed (``gelu_float32_abramowitz_stegun``), which then are not
    computed again (of the kernel's 212 ms on 8.4M values, about 180)."""
    if kept is not None:
        return _gelu_backward_from_kept(grad, x, *kept)
    flat, grad_flat = x.reshape(-1), grad.reshape(-1)
    out = np.empty(flat.shape, dtype=np.float32)
    size = min(_GELU_BLOCK, flat.size)
    r, q, t, a, b = (np.empty(size, np.float32) for _ in range(5))
    z, acc = np.empty(size, np.float64), np.empty(size, np.float64)
    scale, sign = np.empty(size, np.int32), np.empty(size, np.uint32)
    for start in range(0, flat.size, _GELU_BLOCK):
        block, g = flat[start:start + _GELU_BLOCK], grad_flat[start:start + _GELU_BLOCK]
        n = block.size
        rb, qb, tb, ab, bb, zb, accb, kb, sb = r[:n], q[:n], t[:n], a[:n], b[:n], z[:n], acc[:n], scale[:n], sign[:n]
        np.multiply(block, _SQRT_HALF_32, out=rb)
        _exp_negative_square(rb, qb, tb, ab, zb, accb, kb)  # q = e^{-r²}
        # t = r/√π · q
        np.multiply(rb, _INV_SQRT_PI_32, out=tb)
        tb *= qb
        _erf_abramowitz_stegun(rb, qb, bb, ab, zb, accb)  # a = erf(|r|)
        _copy_sign_bit(ab, rb, sb)
        # 1/2 + t + erf/2: oneDNN's fused erf·(1/2) + (t + 1/2), whose product is exact
        ab *= _F32_HALF
        tb += _F32_HALF
        ab += tb
        np.multiply(g, ab, out=out[start:start + n])
    return out.reshape(x.shape)


def _gelu_backward_from_kept(grad: np.ndarray, x: np.ndarray, kept_exp: np.ndarray, kept_erf: np.ndarray) -> np.ndarray:
    """gelu_backward_float32's last steps on the forward's e^{-r²} and signed erf(r), in its order."""
    flat, grad_flat = x.reshape(-1), grad.reshape(-1)
    out = np.empty(flat.shape, dtype=np.float32)
    size = min(_GELU_BLOCK, flat.size)
    t, a = np.empty(size, np.float32), np.empty(size, np.float32)
    for start in range(0, flat.size, _GELU_BLOCK):
        stop = start + _GELU_BLOCK
        block, g = flat[start:stop], grad_flat[start:stop]
        n = block.size
        tb, ab = t[:n], a[:n]
        # t = r/√π · q, r = x · √½
        np.multiply(block, _SQRT_HALF_32, out=tb)
        tb *= _INV_SQRT_PI_32
        tb *= kept_exp[start:stop]
        np.multiply(kept_erf[start:stop], _F32_HALF, out=ab)
        tb += _F32_HALF
        ab += tb
        np.multiply(g, ab, out=out[start:stop])
    return out.reshape(x.shape)


_SQRT_HALF_32 = _operand(np.sqrt(0.5), np.float32)
# oneDNN's 1/√π is 0x3F106EBA, one ulp below the nearest float (0x3F106EBB)
_INV_SQRT_PI_32 = _operand(_float32_table(0x3F106EBA)[0], np.float32)
_EXP_POLYNOMIAL_64 = tuple(_operand(c, np.float64) for c in _EXP_POLYNOMIAL)
_A_S_FLOAT32_64 = tuple(_operand(c, np.float64) for c in _A_S_FLOAT32)
_A_S_SCALE_64 = _operand(np.float32(0.3275911), np.float64)
_NEGATIVE_LOG2E, _NEGATIVE_LOG_MIN = (_operand(-c, np.float32) for c in (_EXP_LOG2E, _EXP_LOG_MIN))
_NEGATIVE_LOG_MIN_BITS = _operand(_NEGATIVE_LOG_MIN.view(np.uint32), np.uint32)
_NEGATIVE_LN2_64 = _operand(-np.float64(_EXP_LN2), np.float64)
