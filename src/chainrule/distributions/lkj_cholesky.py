"""torch.distributions.lkj_cholesky: LKJCholesky(dim, concentration), the LKJ distribution over
Cholesky factors of dim x dim correlation matrices (Lewandowski, Kurowicka and Joe, 2009),
sampled by the onion method, vectorised over rows as torch's."""

from __future__ import annotations

import math

import numpy as np

from ..ops.random import randn
from ..ops.shape import cat
from ..ops.special_functions import mvlgamma
from ..tensor import Tensor
from . import constraints
from .distribution import Distribution, broadcast_all
from .gamma import Beta

__all__ = ["LKJCholesky"]


class LKJCholesky(Distribution):
    """torch.distributions.LKJCholesky(dim, concentration=1.0): density of the correlation
    matrix L Lᵀ proportional to det(L Lᵀ)^(concentration - 1)."""

    arg_constraints = {"concentration": constraints.positive}
    support = constraints.corr_cholesky

    def __init__(self, dim: int, concentration=1.0, validate_args=None) -> None:
        if dim < 2:
            raise ValueError(f"Expected dim to be an integer greater than or equal to 2. Found dim={dim}.")
        self.dim = dim
        (self.concentration,) = broadcast_all(concentration)
        # row i's squared off-diagonal norm is Beta(i/2, η + (D - 2)/2 - i/2) (row 0 a dummy)
        marginal_concentration = self.concentration + 0.5 * (dim - 2)
        offset = self.concentration.new_tensor(np.arange(dim - 1))
        offset = cat([offset.new_zeros((1,)), offset])
        self._beta = Beta(offset + 0.5, marginal_concentration.unsqueeze(-1) - 0.5 * offset)
        super().__init__(self.concentration.shape, (dim, dim), validate_args=validate_args)

    def sample(self, sample_shape=()) -> Tensor:
        y = self._beta.sample(sample_shape).unsqueeze(-1)
        u_normal = randn(self._extended_shape(sample_shape), dtype=y.dtype, device=y.device).tril(-1)
        # directions uniform on the sphere; row 0 has none (0/0): it is zeros
        u_hypersphere = u_normal / u_normal.norm(dim=-1, keepdim=True)
        first_row = u_hypersphere.new_zeros(tuple(u_hypersphere.shape[-2:]))
        first_row[0] = 1.0
        u_hypersphere = u_hypersphere.masked_fill(first_row.bool(), 0.0)
        w = y.sqrt() * u_hypersphere
        tiny = float(np.finfo(w._data.dtype).tiny)
        diagonal = (1 - (w ** 2).sum(-1)).clamp(min=tiny).sqrt()
        return w + diagonal.diag_embed()

    def log_prob(self, value: Tensor) -> Tensor:
        # p(L) ∝ Π L_ii^(2(η - 1) + D - i) for i = 2..D: det(L Lᵀ)^(η - 1) times the Jacobian
        # Π L_ii^(D - i) of L ↦ L Lᵀ (Stan's functions reference, LKJ Cholesky)
        self._validate_sample(value)
        diagonal = value.diagonal(dim1=-1, dim2=-2)[..., 1:]
        order = self.concentration.new_tensor(np.arange(2, self.dim + 1))
        order = 2 * (self.concentration - 1).unsqueeze(-1) + self.dim - order
        unnormalized = (order * diagonal.log()).sum(-1)
        dm1 = self.dim - 1
        alpha = self.concentration + 0.5 * dm1
        # the normaliser (LKJ 2009, p. 1999) via the multivariate lgamma, whose π term is
        # (D - 1)(D - 2)/4 · log π where the paper's is D(D - 1)/4 · log π
        normalizer = 0.5 * dm1 * math.log(math.pi) + mvlgamma(alpha - 0.5, dm1) - alpha.lgamma() * dm1
        return unnormalized - normalizer
