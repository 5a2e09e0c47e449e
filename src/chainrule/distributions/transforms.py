"""torch.distributions.transforms: invertible maps with their log-abs-det-Jacobians, so that a
TransformedDistribution's ``log_prob`` is the base's plus the change of variables.

Each transform is y = f(x) (``__call__``), x = f⁻¹(y) (``inv``), and log|det ∂y/∂x|
(``log_abs_det_jacobian(x, y)``), summed over the transform's event dims. Composed from
chainrule's differentiable ops, so gradients reach the parameters through all three.
"""

from __future__ import annotations

import math
import weakref

import numpy as np

from ..nn.functional import logsigmoid, pad, softplus
from ..ops.creation import eye
from ..ops.decompositions import linalg_cholesky
from ..ops.elementwise import exp, log, log1p, sigmoid, tanh
from ..ops.reduce import softmax
from ..ops.shape import cat, stack
from ..ops.special_functions import atanh
from ..tensor import Tensor
from . import constraints
from .utils import _sum_rightmost, tril_matrix_to_vec, vec_to_tril_matrix

__all__ = ["AbsTransform", "AffineTransform", "CatTransform", "ComposeTransform", "CorrCholeskyTransform",
           "CumulativeDistributionTransform", "ExpTransform", "IndependentTransform", "LowerCholeskyTransform",
           "PositiveDefiniteTransform", "PowerTransform", "ReshapeTransform", "SigmoidTransform", "SoftmaxTransform",
           "SoftplusTransform", "StackTransform", "StickBreakingTransform", "TanhTransform", "Transform",
           "identity_transform"]


def _tiny_and_eps(x: Tensor):
    info = np.finfo(x._data.dtype)
    return float(info.tiny), float(info.eps)


class Transform:
    """Base class: subclasses define ``_call``, ``_inverse`` and ``log_abs_det_jacobian``.

    ``cache_size=1`` remembers the last (x, y) pair, so ``inv(f(x))`` returns x itself (torch
    uses this for transforms whose inverse is unstable, such as tanh near ±1)."""

    bijective = False
    domain = constraints.real
    codomain = constraints.real

    def __init__(self, cache_size: int = 0) -> None:
        if cache_size not in (0, 1):
            raise ValueError("cache_size must be 0 or 1")
        self._cache_size = cache_size
        self._cached_x_y = (None, None)
        self._inv = None
        # cooperative, as torch's: a transform that is also an nn.Module (Pyro's TransformModule:
        # Planar, Spline, autoregressive flows) gets Module.__init__ through here
        super().__init__()

    @property
    def event_dim(self) -> int:
        if self.domain.event_dim == self.codomain.event_dim:
            return self.domain.event_dim
        raise ValueError("Please use either .domain.event_dim or .codomain.event_dim")

    @property
    def sign(self):
        raise NotImplementedError(f"{type(self).__name__}.sign")

    @property
    def inv(self) -> Transform:
        inverse = self._inv() if self._inv is not None else None
        if inverse is None:
            inverse = _InverseTransform(self)
            self._inv = weakref.ref(inverse)
        return inverse

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        if type(self).__init__ is Transform.__init__:
            return type(self)(cache_size=cache_size)
        raise NotImplementedError(f"{type(self).__name__}.with_cache is not implemented")

    def __call__(self, x: Tensor) -> Tensor:
        if self._cache_size == 0:
            return self._call(x)
        cached_x, cached_y = self._cached_x_y
        if x is cached_x:
            return cached_y
        y = self._call(x)
        self._cached_x_y = (x, y)
        return y

    def _inv_call(self, y: Tensor) -> Tensor:
        if self._cache_size == 0:
            return self._inverse(y)
        cached_x, cached_y = self._cached_x_y
        if y is cached_y:
            return cached_x
        x = self._inverse(y)
        self._cached_x_y = (x, y)
        return x

    def _call(self, x):
        raise NotImplementedError(f"{type(self).__name__}._call")

    def _inverse(self, y):
        raise NotImplementedError(f"{type(self).__name__}._inverse")

    def log_abs_det_jacobian(self, x, y):
        raise NotImplementedError(f"{type(self).__name__}.log_abs_det_jacobian")

    def forward_shape(self, shape):
        return shape

    def inverse_shape(self, shape):
        return shape

    def __eq__(self, other) -> bool:
        return self is other

    def __ne__(self, other) -> bool:
        return not self.__eq__(other)

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _ParameterFree(Transform):
    """A transform without parameters: any two of its class are equal, as torch's __eq__ says."""

    def __eq__(self, other) -> bool:
        return isinstance(other, type(self))

    __hash__ = object.__hash__


class _InverseTransform(Transform):
    """f⁻¹ of a transform f, sharing its cache."""

    def __init__(self, transform: Transform) -> None:
        super().__init__(cache_size=transform._cache_size)
        self._inv = transform  # a strong reference: the inverse keeps its forward alive

    @property
    def inv(self) -> Transform:
        return self._inv

    @property
    def domain(self):
        return self._inv.codomain

    @property
    def codomain(self):
        return self._inv.domain

    @property
    def bijective(self) -> bool:
        return self._inv.bijective

    @property
    def sign(self):
        return self._inv.sign

    def __call__(self, x):
        return self._inv._inv_call(x)

    def log_abs_det_jacobian(self, x, y):
        return -self._inv.log_abs_det_jacobian(y, x)

    def forward_shape(self, shape):
        return self._inv.inverse_shape(shape)

    def inverse_shape(self, shape):
        return self._inv.forward_shape(shape)

    def __eq__(self, other) -> bool:
        return isinstance(other, _InverseTransform) and self._inv == other._inv

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"_InverseTransform({self._inv!r})"


class ComposeTransform(Transform):
    """Applies ``parts`` in order; the Jacobian terms add up, each summed to the common event dims."""

    def __init__(self, parts, cache_size: int = 0) -> None:
        if cache_size:
            parts = [part.with_cache(cache_size) for part in parts]
        super().__init__(cache_size=cache_size)
        self.parts = list(parts)

    @property
    def domain(self):
        if not self.parts:
            return constraints.real
        domain = self.parts[0].domain
        event_dim = self.parts[-1].codomain.event_dim
        for part in reversed(self.parts):
            event_dim += part.domain.event_dim - part.codomain.event_dim
            event_dim = max(event_dim, part.domain.event_dim)
        if event_dim > domain.event_dim:
            domain = constraints.independent(domain, event_dim - domain.event_dim)
        return domain

    @property
    def codomain(self):
        if not self.parts:
            return constraints.real
        codomain = self.parts[-1].codomain
        event_dim = self.parts[0].domain.event_dim
        for part in self.parts:
            event_dim += part.codomain.event_dim - part.domain.event_dim
            event_dim = max(event_dim, part.codomain.event_dim)
        if event_dim > codomain.event_dim:
            codomain = constraints.independent(codomain, event_dim - codomain.event_dim)
        return codomain

    @property
    def bijective(self) -> bool:
        return all(part.bijective for part in self.parts)

    @property
    def sign(self):
        sign = 1
        for part in self.parts:
            sign = sign * part.sign
        return sign

    @property
    def inv(self) -> Transform:
        inverse = self._inv() if self._inv is not None else None
        if inverse is None:
            inverse = ComposeTransform([part.inv for part in reversed(self.parts)])
            self._inv = weakref.ref(inverse)
            inverse._inv = weakref.ref(self)
        return inverse

    def with_cache(self, cache_size: int = 1) -> Transform:
        return self if self._cache_size == cache_size else ComposeTransform(self.parts, cache_size=cache_size)

    def __call__(self, x):
        for part in self.parts:
            x = part(x)
        return x

    def log_abs_det_jacobian(self, x, y):
        if not self.parts:
            return x.new_zeros(tuple(x.shape)) if isinstance(x, Tensor) else 0.0  # log 1 at every element
        xs = [x]
        for part in self.parts[:-1]:
            xs.append(part(xs[-1]))
        xs.append(y)
        terms = []
        event_dim = self.domain.event_dim
        for part, x_k, y_k in zip(self.parts, xs[:-1], xs[1:]):
            terms.append(_sum_rightmost(part.log_abs_det_jacobian(x_k, y_k), event_dim - part.domain.event_dim))
            event_dim += part.codomain.event_dim - part.domain.event_dim
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total

    def forward_shape(self, shape):
        for part in self.parts:
            shape = part.forward_shape(shape)
        return shape

    def inverse_shape(self, shape):
        for part in reversed(self.parts):
            shape = part.inverse_shape(shape)
        return shape

    def __eq__(self, other) -> bool:
        return isinstance(other, ComposeTransform) and self.parts == other.parts

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return "ComposeTransform(\n    " + ",\n    ".join(repr(p) for p in self.parts) + "\n)"


identity_transform = ComposeTransform([])


class IndependentTransform(Transform):
    """``base_transform`` with its rightmost ``reinterpreted_batch_ndims`` dims read as event dims."""

    def __init__(self, base_transform: Transform, reinterpreted_batch_ndims: int, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)
        self.base_transform = base_transform.with_cache(cache_size) if cache_size else base_transform
        self.reinterpreted_batch_ndims = reinterpreted_batch_ndims

    @property
    def domain(self):
        return constraints.independent(self.base_transform.domain, self.reinterpreted_batch_ndims)

    @property
    def codomain(self):
        return constraints.independent(self.base_transform.codomain, self.reinterpreted_batch_ndims)

    @property
    def bijective(self) -> bool:
        return self.base_transform.bijective

    @property
    def sign(self):
        return self.base_transform.sign

    def _call(self, x):
        return self.base_transform(x)

    def _inverse(self, y):
        return self.base_transform.inv(y)

    def log_abs_det_jacobian(self, x, y):
        return _sum_rightmost(self.base_transform.log_abs_det_jacobian(x, y), self.reinterpreted_batch_ndims)

    def __repr__(self) -> str:
        return f"IndependentTransform({self.base_transform!r}, {self.reinterpreted_batch_ndims})"


class ReshapeTransform(Transform):
    """Reshapes the rightmost dims from ``in_shape`` to ``out_shape`` (same number of elements)."""

    bijective = True

    def __init__(self, in_shape, out_shape, cache_size: int = 0) -> None:
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        if math.prod(self.in_shape) != math.prod(self.out_shape):
            raise ValueError("in_shape, out_shape have different numbers of elements")
        super().__init__(cache_size=cache_size)

    @property
    def domain(self):
        return constraints.independent(constraints.real, len(self.in_shape))

    @property
    def codomain(self):
        return constraints.independent(constraints.real, len(self.out_shape))

    def with_cache(self, cache_size: int = 1) -> Transform:
        return self if self._cache_size == cache_size else ReshapeTransform(self.in_shape, self.out_shape, cache_size)

    def _call(self, x):
        batch = tuple(x.shape[:x.dim() - len(self.in_shape)])
        return x.reshape(batch + self.out_shape)

    def _inverse(self, y):
        batch = tuple(y.shape[:y.dim() - len(self.out_shape)])
        return y.reshape(batch + self.in_shape)

    def log_abs_det_jacobian(self, x, y):
        return x.new_zeros(tuple(x.shape[:x.dim() - len(self.in_shape)]))

    def forward_shape(self, shape):
        return tuple(shape[:len(shape) - len(self.in_shape)]) + self.out_shape

    def inverse_shape(self, shape):
        return tuple(shape[:len(shape) - len(self.out_shape)]) + self.in_shape


class ExpTransform(_ParameterFree):
    """y = exp(x); log|dy/dx| = x."""

    domain = constraints.real
    codomain = constraints.positive
    bijective = True
    sign = 1

    def _call(self, x):
        return exp(x)

    def _inverse(self, y):
        return log(y)

    def log_abs_det_jacobian(self, x, y):
        return x


class PowerTransform(Transform):
    """y = x ** exponent on the positive reals; log|dy/dx| = log|exponent · y / x|."""

    domain = constraints.positive
    codomain = constraints.positive
    bijective = True

    def __init__(self, exponent, cache_size: int = 0) -> None:
        from .distribution import broadcast_all

        super().__init__(cache_size=cache_size)
        self.exponent, = broadcast_all(exponent)  # a number becomes a tensor, as torch's

    @property
    def sign(self):
        return self.exponent.sign()

    def __eq__(self, other) -> bool:
        # equal exponents, compared by value (a TransformedDistribution's KL needs equal transforms)
        return isinstance(other, PowerTransform) and bool(self.exponent.eq(other.exponent).all())

    __hash__ = object.__hash__

    def with_cache(self, cache_size: int = 1) -> Transform:
        return self if self._cache_size == cache_size else PowerTransform(self.exponent, cache_size)

    def _call(self, x):
        return x.pow(self.exponent)

    def _inverse(self, y):
        return y.pow(1 / self.exponent)

    def log_abs_det_jacobian(self, x, y):
        return (self.exponent * y / x).abs().log()


class SigmoidTransform(_ParameterFree):
    """y = sigmoid(x), kept inside (0, 1) in floating point; log|dy/dx| = -softplus(-x) - softplus(x)."""

    domain = constraints.real
    codomain = constraints.unit_interval
    bijective = True
    sign = 1

    def _call(self, x):
        tiny, eps = _tiny_and_eps(x)
        return sigmoid(x).clamp(tiny, 1 - eps)

    def _inverse(self, y):
        tiny, eps = _tiny_and_eps(y)
        y = y.clamp(tiny, 1 - eps)
        return log(y) - log1p(-y)

    def log_abs_det_jacobian(self, x, y):
        return -softplus(-x) - softplus(x)


class TanhTransform(_ParameterFree):
    """y = tanh(x); log|dy/dx| = 2 (log 2 - x - softplus(-2x)), stable for large |x|."""

    domain = constraints.real
    codomain = constraints.interval(-1.0, 1.0)
    bijective = True
    sign = 1

    def _call(self, x):
        return tanh(x)

    def _inverse(self, y):
        # atanh is inaccurate near ±1: torch advises cache_size=1 for exact round trips
        return atanh(y)

    def log_abs_det_jacobian(self, x, y):
        return 2.0 * (math.log(2.0) - x - softplus(-2.0 * x))


class SoftplusTransform(_ParameterFree):
    """y = softplus(x) = log(1 + exp(x)); x = y + log(-expm1(-y)); log|dy/dx| = -softplus(-x)."""

    domain = constraints.real
    codomain = constraints.positive
    bijective = True
    sign = 1

    def _call(self, x):
        return softplus(x)

    def _inverse(self, y):
        return y + log(-(-y).expm1())

    def log_abs_det_jacobian(self, x, y):
        return -softplus(-x)


class AbsTransform(_ParameterFree):
    """y = |x| (not bijective: ``inv`` gives the non-negative preimage)."""

    domain = constraints.real
    codomain = constraints.positive

    def _call(self, x):
        return x.abs()

    def _inverse(self, y):
        return y


def _same_value(a, b) -> bool:
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        return a == b
    return bool((a == b).all()) if isinstance(a, Tensor) else bool((b == a).all())


class AffineTransform(Transform):
    """y = loc + scale · x; log|dy/dx| = log|scale|, summed over ``event_dim`` rightmost dims."""

    bijective = True

    def __init__(self, loc, scale, event_dim: int = 0, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)
        self.loc, self.scale, self._event_dim = loc, scale, event_dim

    @property
    def event_dim(self) -> int:
        return self._event_dim

    @property
    def domain(self):
        return constraints.real if self._event_dim == 0 else constraints.independent(constraints.real, self._event_dim)

    codomain = domain

    @property
    def sign(self):
        if isinstance(self.scale, Tensor):
            return self.scale.sign()
        return (self.scale > 0) - (self.scale < 0)  # an int, as torch's

    def __eq__(self, other) -> bool:
        # loc and scale compared by value, numbers as numbers and tensors elementwise
        return isinstance(other, AffineTransform) and _same_value(self.loc, other.loc) and \
            _same_value(self.scale, other.scale)

    __hash__ = object.__hash__

    def with_cache(self, cache_size: int = 1) -> Transform:
        return self if self._cache_size == cache_size else AffineTransform(self.loc, self.scale, self._event_dim,
                                                                           cache_size)

    def _call(self, x):
        return self.loc + self.scale * x

    def _inverse(self, y):
        return (y - self.loc) / self.scale

    def log_abs_det_jacobian(self, x, y):
        scale = self.scale
        if isinstance(scale, Tensor):
            result = scale.abs().log()
        else:  # one term per element of x, so that event_dim sums them
            result = x.new_full(tuple(x.shape), math.log(abs(scale)))
        shape = tuple(x.shape)
        if self._event_dim:
            result_size = tuple(result.shape[:result.dim() - self._event_dim]) + (-1,)
            result = result.reshape(result_size).sum(-1)
            shape = shape[:len(shape) - self._event_dim]
        return result.expand(shape)

    def forward_shape(self, shape):
        return tuple(np.broadcast_shapes(tuple(shape), tuple(getattr(self.loc, "shape", ())),
                                         tuple(getattr(self.scale, "shape", ()))))

    inverse_shape = forward_shape


class SoftmaxTransform(_ParameterFree):
    """y = softmax(x) over the last dim (not bijective: ``inv`` gives log y, one of the preimages)."""

    domain = constraints.real_vector
    codomain = constraints.simplex

    def _call(self, x):
        return softmax(x, -1)

    def _inverse(self, y):
        return log(y)


class StickBreakingTransform(_ParameterFree):
    """Reals of length K - 1 onto the K-simplex by stick breaking (bijective), as torch's."""

    domain = constraints.real_vector
    codomain = constraints.simplex
    bijective = True

    @staticmethod
    def _offset_log(x: Tensor) -> Tensor:
        # log of (K - 1 + 1 - k) for k = 1 .. K - 1: centres each break at an even split
        k = x.shape[-1]
        return Tensor._make(np.log(np.arange(k, 0, -1, dtype=x._data.dtype))).to(x.device)

    def _call(self, x):
        tiny, eps = _tiny_and_eps(x)
        z = sigmoid(x - self._offset_log(x)).clamp(tiny, 1 - eps)
        z_cumprod = (1 - z).cumprod(-1)
        return pad(z, (0, 1), value=1.0) * pad(z_cumprod, (1, 0), value=1.0)

    def _inverse(self, y):
        tiny, _ = _tiny_and_eps(y)
        y_crop = y[..., :-1]
        k = y_crop.shape[-1]
        offset = Tensor._make(np.arange(k, 0, -1, dtype=y._data.dtype)).to(y.device)
        remaining = (1 - y_crop.cumsum(-1)).clamp(min=tiny)
        return log(y_crop) - log(remaining) + log(offset)

    def log_abs_det_jacobian(self, x, y):
        x = x - self._offset_log(x)
        return (-x + logsigmoid(x) + log(y[..., :-1])).sum(-1)

    def forward_shape(self, shape):
        return tuple(shape[:-1]) + (shape[-1] + 1,)

    def inverse_shape(self, shape):
        return tuple(shape[:-1]) + (shape[-1] - 1,)


class CorrCholeskyTransform(_ParameterFree):
    """A real vector of length D(D-1)/2 onto the Cholesky factor of a D x D correlation matrix:
    tanh to (-1, 1), the vector into a strictly lower triangle, and stick breaking on the squares
    so that every row has unit norm (Stan's construction, as torch's)."""

    domain = constraints.real_vector
    codomain = constraints.corr_cholesky
    bijective = True

    def _call(self, x):
        _, eps = _tiny_and_eps(x)
        r = vec_to_tril_matrix(tanh(x).clamp(min=-1 + eps, max=1 - eps), diag=-1)
        # y = sign(r)·sqrt(z·Π(1 - z)) = r·sqrt(Π(1 - z)) with z = r² (the stick left before each entry)
        remaining = (1 - r ** 2).sqrt().cumprod(-1)
        r = r + _eye_like(r)
        return r * pad(remaining[..., :-1], (1, 0), value=1.0)

    def _inverse(self, y):
        remaining = 1 - (y * y).cumsum(-1)
        remaining_shifted = pad(remaining[..., :-1], (1, 0), value=1.0)
        t = tril_matrix_to_vec(y, diag=-1) / tril_matrix_to_vec(remaining_shifted, diag=-1).sqrt()
        return (log1p(t) - log1p(-t)) / 2  # atanh

    def log_abs_det_jacobian(self, x, y):
        # of x and the flattened strict lower triangle of y (the spaces' dimensions differ)
        remaining = tril_matrix_to_vec(1 - (y * y).cumsum(-1), diag=-2)
        stick_breaking_logdet = 0.5 * log(remaining).sum(-1)
        tanh_logdet = -2 * (x + softplus(-2 * x) - math.log(2.0)).sum(-1)
        return stick_breaking_logdet + tanh_logdet

    def forward_shape(self, shape):
        if len(shape) < 1:
            raise ValueError("Too few dimensions on input")
        n = shape[-1]
        d = round((0.25 + 2 * n) ** 0.5 + 0.5)
        if d * (d - 1) // 2 != n:
            raise ValueError("Input is not a flattened lower-diagonal number")
        return tuple(shape[:-1]) + (d, d)

    def inverse_shape(self, shape):
        if len(shape) < 2:
            raise ValueError("Too few dimensions on input")
        if shape[-2] != shape[-1]:
            raise ValueError("Input is not square")
        d = shape[-1]
        return tuple(shape[:-2]) + (d * (d - 1) // 2,)


def _eye_like(matrix: Tensor) -> Tensor:
    return eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device)


class LowerCholeskyTransform(_ParameterFree):
    """A square matrix onto a lower-triangular one with a positive diagonal: the strict lower
    triangle kept, the diagonal exponentiated (no log_abs_det_jacobian, as torch's)."""

    domain = constraints.independent(constraints.real, 2)
    codomain = constraints.lower_cholesky

    def _call(self, x):
        return x.tril(-1) + exp(x.diagonal(dim1=-2, dim2=-1)).diag_embed()

    def _inverse(self, y):
        return y.tril(-1) + log(y.diagonal(dim1=-2, dim2=-1)).diag_embed()


class PositiveDefiniteTransform(_ParameterFree):
    """A square matrix onto a positive-definite one: L Lᵀ for L = LowerCholeskyTransform(x)."""

    domain = constraints.independent(constraints.real, 2)
    codomain = constraints.positive_definite

    def _call(self, x):
        x = LowerCholeskyTransform()(x)
        return x @ x.mT

    def _inverse(self, y):
        return LowerCholeskyTransform().inv(linalg_cholesky(y))


def _check_dim(transform, name: str, value: Tensor, size: int, what: str) -> None:
    if not -value.dim() <= transform.dim < value.dim():
        raise AssertionError(f"dim {transform.dim} out of range for tensor with {value.dim()} dimensions")
    if value.shape[transform.dim] != size:
        raise AssertionError(f"{name}.size({transform.dim}) = {value.shape[transform.dim]} must equal {what} {size}")


class CatTransform(Transform):
    """Transforms applied to consecutive slices of ``dim`` (of the given ``lengths``, 1 each by
    default), the results concatenated; as torch.distributions.transforms.CatTransform."""

    def __init__(self, tseq, dim: int = 0, lengths=None, cache_size: int = 0) -> None:
        if not all(isinstance(t, Transform) for t in tseq):
            raise AssertionError("All elements of tseq must be Transform instances")
        if cache_size:
            tseq = [t.with_cache(cache_size) for t in tseq]
        super().__init__(cache_size=cache_size)
        self.transforms = list(tseq)
        self.lengths = list(lengths) if lengths is not None else [1] * len(self.transforms)
        if len(self.lengths) != len(self.transforms):
            raise AssertionError(f"lengths ({len(self.lengths)}) must match transforms ({len(self.transforms)})")
        self.dim = dim

    @property
    def event_dim(self) -> int:
        return max(t.event_dim for t in self.transforms)

    @property
    def length(self) -> int:
        return sum(self.lengths)

    @property
    def bijective(self) -> bool:
        return all(t.bijective for t in self.transforms)

    @property
    def domain(self):
        return constraints.cat([t.domain for t in self.transforms], self.dim, self.lengths)

    @property
    def codomain(self):
        return constraints.cat([t.codomain for t in self.transforms], self.dim, self.lengths)

    def with_cache(self, cache_size: int = 1) -> Transform:
        return self if self._cache_size == cache_size else CatTransform(self.transforms, self.dim, self.lengths,
                                                                        cache_size)

    def _slices(self, value: Tensor):
        start = 0
        for transform, length in zip(self.transforms, self.lengths):
            yield transform, value.narrow(self.dim, start, length)
            start += length

    def _call(self, x):
        _check_dim(self, "x", x, self.length, "length")
        return cat([transform(piece) for transform, piece in self._slices(x)], dim=self.dim)

    def _inverse(self, y):
        _check_dim(self, "y", y, self.length, "length")
        return cat([transform.inv(piece) for transform, piece in self._slices(y)], dim=self.dim)

    def log_abs_det_jacobian(self, x, y):
        _check_dim(self, "x", x, self.length, "length")
        _check_dim(self, "y", y, self.length, "length")
        terms = []
        for (transform, x_piece), (_, y_piece) in zip(self._slices(x), self._slices(y)):
            term = transform.log_abs_det_jacobian(x_piece, y_piece)
            if transform.event_dim < self.event_dim:
                term = _sum_rightmost(term, self.event_dim - transform.event_dim)
            terms.append(term)
        # a dim inside the batch dims keeps the pieces apart; one inside the event dims sums them
        dim = (self.dim - x.dim() if self.dim >= 0 else self.dim) + self.event_dim
        return cat(terms, dim=dim) if dim < 0 else sum(terms)


class StackTransform(Transform):
    """Transform i applied to slice i of ``dim``, the results stacked; as torch's StackTransform."""

    def __init__(self, tseq, dim: int = 0, cache_size: int = 0) -> None:
        if not all(isinstance(t, Transform) for t in tseq):
            raise AssertionError("All elements of tseq must be Transform instances")
        if cache_size:
            tseq = [t.with_cache(cache_size) for t in tseq]
        super().__init__(cache_size=cache_size)
        self.transforms = list(tseq)
        self.dim = dim

    @property
    def bijective(self) -> bool:
        return all(t.bijective for t in self.transforms)

    @property
    def domain(self):
        return constraints.stack([t.domain for t in self.transforms], self.dim)

    @property
    def codomain(self):
        return constraints.stack([t.codomain for t in self.transforms], self.dim)

    def with_cache(self, cache_size: int = 1) -> Transform:
        return self if self._cache_size == cache_size else StackTransform(self.transforms, self.dim, cache_size)

    def _slice(self, value: Tensor) -> list:
        return [value.select(self.dim, i) for i in range(value.shape[self.dim])]

    def _map(self, value: Tensor, name: str, method) -> Tensor:
        _check_dim(self, name, value, len(self.transforms), "len(transforms)")
        return stack([method(transform)(piece) for piece, transform in zip(self._slice(value), self.transforms)],
                     dim=self.dim)

    def _call(self, x):
        return self._map(x, "x", lambda transform: transform)

    def _inverse(self, y):
        return self._map(y, "y", lambda transform: transform.inv)

    def log_abs_det_jacobian(self, x, y):
        _check_dim(self, "x", x, len(self.transforms), "len(transforms)")
        _check_dim(self, "y", y, len(self.transforms), "len(transforms)")
        return stack([transform.log_abs_det_jacobian(x_piece, y_piece) for x_piece, y_piece, transform
                      in zip(self._slice(x), self._slice(y), self.transforms)], dim=self.dim)


class CumulativeDistributionTransform(Transform):
    """x ↦ F(x), the cdf of ``distribution`` (onto the unit interval; the inverse is its icdf,
    the log-Jacobian its log density)."""

    bijective = True
    codomain = constraints.unit_interval
    sign = +1

    def __init__(self, distribution, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)
        self.distribution = distribution

    @property
    def domain(self):
        return self.distribution.support

    def _call(self, x):
        return self.distribution.cdf(x)

    def _inverse(self, y):
        return self.distribution.icdf(y)

    def log_abs_det_jacobian(self, x, y):
        return self.distribution.log_prob(x)

    def with_cache(self, cache_size: int = 1) -> Transform:
        return self if self._cache_size == cache_size else CumulativeDistributionTransform(self.distribution,
                                                                                            cache_size)
