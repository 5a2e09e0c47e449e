"""torch.quasirandom: ``SobolEngine``, the Sobol low-discrepancy sequence.

The sequence is SciPy's ``scipy.stats.qmc.Sobol`` (the "scipy" extra): the same Joe–Kuo direction
numbers, 30 bits and Gray-code order as torch's, so unscrambled points equal torch's. Scrambled
points (linear matrix scramble and digital shift) are drawn from a seed — ``seed`` or, without one,
chainrule's generator, so ``manual_seed`` makes them repeat — but cannot equal torch's, whose
scramble comes from torch's generator."""

from __future__ import annotations

import warnings

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
        rng_seed = None
        if scramble:
            rng_seed = seed if seed is not None else int(_random.randint(0, 2**31 - 1, (1,)).item())
        self._sequence = _scipy_qmc().Sobol(dimension, scramble=scramble, bits=self.MAXBIT, seed=rng_seed)
        self.num_generated = 0

    def draw(self, n: int = 1, out: Tensor | None = None, dtype=None) -> Tensor:
        with warnings.catch_warnings():  # SciPy warns when n is not a power of 2; torch does not
            warnings.simplefilter("ignore", UserWarning)
            points = self._sequence.random(n)  # float64, exact: each coordinate is k / 2**30
        result = creation.tensor(points, dtype=_dtype.get_default_dtype() if dtype is None else dtype)
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
        self._sequence.reset()
        self.num_generated = 0
        return self

    def fast_forward(self, n: int) -> SobolEngine:
        self._sequence.fast_forward(n)
        self.num_generated += n
        return self

    def __repr__(self) -> str:
        fields = [f"dimension={self.dimension}"]
        if self.scramble:
            fields.append("scramble=True")
        if self.seed is not None:
            fields.append(f"seed={self.seed}")
        return f"{type(self).__name__}({', '.join(fields)})"
