"""torch.quasirandom: ``SobolEngine``, the Sobol low-discrepancy sequence, point for point torch's.

The direction numbers are SciPy's (``scipy.stats.qmc.Sobol``, the "scipy" extra: the same
Joe–Kuo numbers at 30 bits as torch's state). Points follow torch's Gray-code order from a start
``shift``; scrambling is torch's: a digital shift and lower-triangular bit matrices drawn with
``randint(2, ...)`` from a generator seeded with ``seed`` (or the default generator), applied to
the direction numbers as torch's ``_sobol_engine_scramble_`` does — so scrambled points equal
torch's too (BoTorch's SobolQMCNormalSampler draws through them)."""

from __future__ import annotations

import numpy as np

from . import _dtype
from .ops import creation
from .ops import random as _random
from .tensor import Tensor, write_out

__all__ = ["SobolEngine"]


def _scipy_qmc():
    try:
        from scipy.stats import qmc
    except ImportError:
        raise ImportError('SobolEngine needs SciPy (its Sobol direction numbers): pip install "chainrule[scipy]"') \
            from None
    return qmc


def _direction_numbers(dimension: int, bits: int) -> np.ndarray:
    """torch's initial ``sobolstate``: (dimension, bits) int64, column j the j-th direction number
    left-aligned to ``bits`` bits (SciPy keeps the same numbers as its ``_sv``)."""
    return _scipy_qmc().Sobol(dimension, scramble=False, bits=bits)._sv.astype(np.int64)


def _scrambled(state: np.ndarray, lower: np.ndarray, bits: int) -> np.ndarray:
    """torch's ``_sobol_engine_scramble_``: each direction number v goes to L v over GF(2), with L
    the dimension's lower-triangular bit matrix (unit diagonal), bit p of the result read from row
    ``bits - 1 - p`` of L."""
    lower = lower.copy()
    lower[:, np.arange(bits), np.arange(bits)] = 1
    row_words = lower @ (np.int64(1) << np.arange(bits - 1, -1, -1, dtype=np.int64))  # (dimension, bits)
    out = np.zeros_like(state)
    for p in range(bits):
        # parity of (row word & v), folded down to bit 0: bit (bits - 1 - p) of the scrambled number
        word = row_words[:, p, None] & state
        for half in (16, 8, 4, 2, 1):
            word = word ^ (word >> half)
        out |= (word & 1) << (bits - 1 - p)
    return out


class SobolEngine:
    """torch.quasirandom.SobolEngine(dimension, scramble=False, seed=None): ``draw(n)`` returns the
    next n points of the sequence in [0, 1)^dimension as an (n, dimension) tensor (the default dtype,
    or ``dtype``); ``draw_base2(m)`` the next 2**m, keeping the count a power of 2; ``fast_forward(n)``
    skips n points; ``reset()`` starts again."""

    MAXBIT = 30
    MAXDIM = 21201

    def __init__(self, dimension, scramble: bool = False, seed=None) -> None:
        if dimension > self.MAXDIM or dimension < 1:
            raise ValueError(f"Supported range of dimensionality for SobolEngine is [1, {self.MAXDIM}]")
        self.seed = seed
        self.scramble = scramble
        self.dimension = dimension
        self.sobolstate = _direction_numbers(dimension, self.MAXBIT)
        if scramble:
            # torch's draws, in its order: the shift's bits, then the matrices
            generator = None
            if seed is not None:
                generator = _random.Generator()
                generator.manual_seed(seed)
            shift_bits = _random.randint(2, (dimension, self.MAXBIT), generator=generator)._data
            self.shift = shift_bits @ (np.int64(1) << np.arange(self.MAXBIT, dtype=np.int64))
            lower = np.tril(_random.randint(2, (dimension, self.MAXBIT, self.MAXBIT), generator=generator)._data)
            self.sobolstate = _scrambled(self.sobolstate, lower, self.MAXBIT)
        else:
            self.shift = np.zeros(dimension, dtype=np.int64)
        # torch divides the start point once, here, in the default dtype of the moment: a float64
        # draw's first row then carries float32 rounding, as torch's
        self._first_point = creation.tensor(self.shift / float(2**self.MAXBIT)).to(_dtype.get_default_dtype())
        self.num_generated = 0

    def _points(self, start: int, n: int) -> np.ndarray:
        """Points ``start .. start + n - 1`` of the sequence as integers: point k is the shift XOR the
        direction numbers of the bits set in k's Gray code (torch's draw order)."""
        index = np.arange(start, start + n, dtype=np.int64)
        gray = index ^ (index >> 1)
        quasi = np.broadcast_to(self.shift, (n, self.dimension)).copy()
        for bit in range(self.MAXBIT):
            chosen = ((gray >> bit) & 1).astype(bool)
            if chosen.any():
                quasi[chosen] ^= self.sobolstate[:, bit]
        return quasi

    def draw(self, n: int = 1, out: Tensor | None = None, dtype=None) -> Tensor:
        dtype = _dtype.get_default_dtype() if dtype is None else dtype
        points = self._points(self.num_generated, n) / float(2**self.MAXBIT)  # exact: k / 2**30
        result = creation.tensor(points, dtype=dtype)
        if self.num_generated == 0 and n:
            result[0] = self._first_point.to(dtype)
        self.num_generated += n
        return write_out(result, out, "SobolEngine.draw") if out is not None else result
    def draw_base2(self, m: int, out: Tensor | None = None, dtype=None) -> Tensor:
        n = 2**m
        total_n = self.num_generated + n
        if not (total_n & (total_n - 1) == 0):
            raise ValueError("The balance properties of Sobol' points require n to be a power of 2. "
                             f"{self.num_generated} points have been previously generated, then: "
                             f"n={self.num_generated}+2**{m}={total_n}. If you still want to do this, please use "
                             "'SobolEngine.draw()' instead.")
        return self.draw(n=n, out=out, dtype=dtype)

    def reset(self) -> SobolEngine:
        self.num_generated = 0
        return self

    def fast_forward(self, n: int) -> SobolEngine:
        self.num_generated += n
        return self

    def __repr__(self) -> str:
        fields = [f"dimension={self.dimension}"]
        if self.scramble:
            fields.append("scramble=True")
        if self.seed is not None:
            fields.append(f"seed={self.seed}")
        return f"{type(self).__name__}({', '.join(fields)})"
