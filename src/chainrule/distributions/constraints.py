"""torch.distributions.constraints: the sets a distribution's parameters and values live in.

``check(value)`` answers elementwise (over the event dims, for ``event_dim > 0``) with a boolean
tensor for a Tensor and a boolean array for an array, as torch's. ``biject_to``/``transform_to``
(in ``constraint_registry``) map each to a transform from the reals onto it.
"""

from __future__ import annotations

import numpy as np

from .._backend import array_module
from ..ops.shape import _infer_shape
from ..tensor import Tensor

__all__ = ["Constraint", "MixtureSameFamilyConstraint", "boolean", "cat", "corr_cholesky", "dependent",
           "dependent_property", "greater_than", "greater_than_eq", "half_open_interval", "independent",
           "integer_interval", "interval", "is_dependent", "less_than", "lower_cholesky", "lower_triangular",
           "multinomial", "nonnegative", "nonnegative_integer", "one_hot", "positive", "positive_definite",
           "positive_integer", "positive_semidefinite", "real", "real_vector", "simplex", "square", "stack",
           "symmetric", "unit_interval"]


def _data(value):
    if isinstance(value, Tensor):
        return value._data
    # numbers as they are and arrays of any module (a device array stays on its device): both
    # compare with a device array, which a NumPy array does not; lists through NumPy
    if isinstance(value, (int, float, bool)) or (hasattr(value, "shape") and hasattr(value, "dtype")):
        return value
    return np.asarray(value)


class Constraint:
    """A set of values; ``check`` tells which (batch) elements are in it."""

    is_discrete = False
    event_dim = 0

    def __init__(self, description: str | None = None, check=None) -> None:
        # (description, check-on-arrays): the way chainrule's first distributions declared theirs
        self._description = description
        self._check_array = check

    def _holds(self, a):
        if self._check_array is None:
            raise NotImplementedError(f"{type(self).__name__}.check")
        return self._check_array(a)

    def check(self, value):
        """Which elements of ``value`` satisfy the constraint: a bool Tensor for a Tensor."""
        data = _data(value)
        result = self._holds(np.asarray(data) if isinstance(data, (int, float, bool)) else data)
        return Tensor._make(array_module(result).asarray(result)) if isinstance(value, Tensor) else result

    def __repr__(self) -> str:
        # torch drops the class name's first character, the underscore of its private classes
        # (``_Simplex`` reads ``Simplex()``); a library's own constraints are named that way too
        return self._description if self._description is not None else type(self).__name__[1:] + "()"


class _Dependent(Constraint):
    """A constraint that depends on other parameters (e.g. Uniform's support); not checkable."""

    def __init__(self, *, is_discrete: bool = False, event_dim: int = 0) -> None:
        super().__init__()
        self.is_discrete, self.event_dim = is_discrete, event_dim

    def __call__(self, *, is_discrete=None, event_dim=None):
        return _Dependent(is_discrete=self.is_discrete if is_discrete is None else is_discrete,
                          event_dim=self.event_dim if event_dim is None else event_dim)

    def check(self, value):
        raise ValueError("Cannot determine validity of dependent constraint")


def is_dependent(constraint) -> bool:
    return isinstance(constraint, _Dependent)


class dependent_property(property):  # noqa: N801 - torch's name
    """A property that also acts as a dependent constraint (torch's ``constraints.dependent_property``)."""

    def __init__(self, fn=None, *, is_discrete: bool = False, event_dim: int = 0) -> None:
        super().__init__(fn)
        self.is_discrete, self.event_dim = is_discrete, event_dim

    def __call__(self, fn):
        return dependent_property(fn, is_discrete=self.is_discrete, event_dim=self.event_dim)


class _Boolean(Constraint):
    is_discrete = True

    def _holds(self, a):
        return (a == 0) | (a == 1)


class _OneHot(Constraint):
    is_discrete = True
    event_dim = 1

    def _holds(self, a):
        xp = array_module(a)
        return xp.all((a == 0) | (a == 1), axis=-1) & (a.sum(-1) == 1)


class _IntegerInterval(Constraint):
    is_discrete = True

    def __init__(self, lower_bound, upper_bound) -> None:
        super().__init__()
        self.lower_bound, self.upper_bound = lower_bound, upper_bound

    def _holds(self, a):
        return (a % 1 == 0) & (a >= _data(self.lower_bound)) & (a <= _data(self.upper_bound))

    def __repr__(self) -> str:
        return f"IntegerInterval(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _IntegerGreaterThan(Constraint):
    is_discrete = True

    def __init__(self, lower_bound) -> None:
        super().__init__()
        self.lower_bound = lower_bound

    def _holds(self, a):
        return (a % 1 == 0) & (a >= self.lower_bound)

    def __repr__(self) -> str:
        return f"IntegerGreaterThan(lower_bound={self.lower_bound})"


class _Real(Constraint):
    def _holds(self, a):
        return a == a  # not NaN


class _GreaterThan(Constraint):
    def __init__(self, lower_bound) -> None:
        super().__init__()
        self.lower_bound = lower_bound

    def _holds(self, a):
        return a > _data(self.lower_bound)

    def __repr__(self) -> str:
        return f"GreaterThan(lower_bound={self.lower_bound})"


class _GreaterThanEq(_GreaterThan):
    def _holds(self, a):
        return a >= _data(self.lower_bound)

    def __repr__(self) -> str:
        return f"GreaterThanEq(lower_bound={self.lower_bound})"


class _LessThan(Constraint):
    def __init__(self, upper_bound) -> None:
        super().__init__()
        self.upper_bound = upper_bound

    def _holds(self, a):
        return a < _data(self.upper_bound)

    def __repr__(self) -> str:
        return f"LessThan(upper_bound={self.upper_bound})"


class _Interval(Constraint):
    def __init__(self, lower_bound, upper_bound) -> None:
        super().__init__()
        self.lower_bound, self.upper_bound = lower_bound, upper_bound

    def _holds(self, a):
        return (a >= _data(self.lower_bound)) & (a <= _data(self.upper_bound))

    def __repr__(self) -> str:
        return f"Interval(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _HalfOpenInterval(_Interval):
    def _holds(self, a):
        return (a >= _data(self.lower_bound)) & (a < _data(self.upper_bound))

    def __repr__(self) -> str:
        return f"HalfOpenInterval(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _Simplex(Constraint):
    event_dim = 1

    def _holds(self, a):
        xp = array_module(a)
        return xp.all(a >= 0, axis=-1) & (xp.abs(a.sum(-1) - 1) < 1e-6)


def _require_matrices(a) -> None:
    # torch's matrix checks start with tril, which refuses fewer than two dims in its own words
    if a.ndim < 2:
        raise RuntimeError("tril: input tensor must have at least 2 dimensions")


def _require_dim(a, dim: int) -> None:
    # torch's cat and stack constraints assert the dim (an AssertionError, as there)
    if not -a.ndim <= dim < a.ndim:
        raise AssertionError(f"dim {dim} out of range for value with {a.ndim} dimensions")


class _LowerTriangular(Constraint):
    event_dim = 2

    def _holds(self, a):
        _require_matrices(a)
        xp = array_module(a)
        return xp.all(xp.tril(a) == a, axis=(-2, -1))


class _LowerCholesky(Constraint):
    event_dim = 2

    def _holds(self, a):
        _require_matrices(a)
        xp = array_module(a)
        return xp.all(xp.tril(a) == a, axis=(-2, -1)) & xp.all(xp.diagonal(a, axis1=-2, axis2=-1) > 0, axis=-1)


class _CorrCholesky(Constraint):
    """Lower-Cholesky factors of correlation matrices: every row of unit norm (to within
    10·eps·D, as torch's check)."""

    event_dim = 2

    def _holds(self, a):
        xp = array_module(a)
        if a.dtype.kind not in "fc":  # the tolerance comes from the dtype's eps, first, as torch's
            raise TypeError("torch.finfo() requires a floating point input type. Use torch.iinfo to handle "
                            "'torch.finfo'")
        _require_matrices(a)
        tolerance = float(np.finfo(a.dtype).eps) * a.shape[-1] * 10
        unit_rows = xp.all(xp.abs(xp.linalg.norm(a, axis=-1) - 1) <= tolerance, axis=-1)
        return _LowerCholesky()._holds(a) & unit_rows


class _Multinomial(Constraint):
    """Count vectors of total at most ``upper_bound``."""

    is_discrete = True
    event_dim = 1

    def __init__(self, upper_bound) -> None:
        super().__init__()
        self.upper_bound = upper_bound

    def _holds(self, a):
        xp = array_module(a)
        return xp.all(a >= 0, axis=-1) & (a.sum(-1) <= _data(self.upper_bound))


class MixtureSameFamilyConstraint(Constraint):
    """A MixtureSameFamily's support: a value is in it when every component's support holds it
    (checked with a component dim inserted before the event dims)."""

    def __init__(self, base_constraint: Constraint) -> None:
        if not isinstance(base_constraint, Constraint):
            raise AssertionError(f"base_constraint must be a Constraint, got {type(base_constraint).__name__}")
        super().__init__()
        self.base_constraint = base_constraint

    @property
    def is_discrete(self) -> bool:
        return self.base_constraint.is_discrete

    @property
    def event_dim(self) -> int:
        return self.base_constraint.event_dim

    def _holds(self, a):
        if a.ndim < self.event_dim:
            raise ValueError(f"Expected value.dim() >= {self.event_dim} but got {a.ndim}")
        result = self.base_constraint._holds(array_module(a).expand_dims(a, -1 - self.event_dim))
        return result.reshape(result.shape[:a.ndim - self.event_dim] + (-1,)).all(-1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_constraint!r})"


class _Square(Constraint):
    event_dim = 2

    def _holds(self, a):
        xp = array_module(a)
        return xp.full(a.shape[:-2], a.shape[-2] == a.shape[-1], dtype=bool)


class _Symmetric(_Square):
    def _holds(self, a):
        xp = array_module(a)
        square = super()._holds(a)
        if not square.all():
            return square
        return xp.all(xp.isclose(a, xp.swapaxes(a, -2, -1), atol=1e-6), axis=(-2, -1))


class _PositiveDefinite(_Symmetric):
    def _holds(self, a):
        xp = array_module(a)
        symmetric = super()._holds(a)
        if not symmetric.all():
            return symmetric
        return xp.linalg.eigvalsh(a).min(-1) > 0


class _PositiveSemidefinite(_Symmetric):
    def _holds(self, a):
        xp = array_module(a)
        symmetric = super()._holds(a)
        if not symmetric.all():
            return symmetric
        return xp.linalg.eigvalsh(a).min(-1) >= 0


class _IndependentConstraint(Constraint):
    """``base`` with its rightmost ``reinterpreted_batch_ndims`` dims read as event dims."""

    def __init__(self, base_constraint: Constraint, reinterpreted_batch_ndims: int) -> None:
        super().__init__()
        self.base_constraint = base_constraint
        self.reinterpreted_batch_ndims = reinterpreted_batch_ndims
        self.is_discrete = base_constraint.is_discrete
        self.event_dim = base_constraint.event_dim + reinterpreted_batch_ndims

    def _holds(self, a):
        result = self.base_constraint._holds(a)
        if self.reinterpreted_batch_ndims:
            # torch flattens the event dims by reshape(batch + (-1,)), so an empty batch raises its
            # reshape error ("cannot reshape tensor of 0 elements ..."), a RuntimeError, not NumPy's
            flat = _infer_shape(result.shape[:result.ndim - self.reinterpreted_batch_ndims] + (-1,), result.size,
                                "reshape")
            result = result.reshape(flat).all(-1)
        return result

    def __repr__(self) -> str:
        return f"IndependentConstraint({self.base_constraint!r}, {self.reinterpreted_batch_ndims})"


class _Cat(Constraint):
    """Constraints applied to consecutive slices of ``dim`` of the given lengths."""

    def __init__(self, cseq, dim: int = 0, lengths=None) -> None:
        super().__init__()
        self.cseq, self.dim = list(cseq), dim
        self.lengths = list(lengths) if lengths is not None else [1] * len(self.cseq)

    def _holds(self, a):
        _require_dim(a, self.dim)
        xp = array_module(a)
        pieces, start = [], 0
        for constraint, length in zip(self.cseq, self.lengths):
            if start + length > a.shape[self.dim]:
                raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size "
                                   f"({a.shape[self.dim]}).")
            pieces.append(constraint._holds(xp.take(a, xp.arange(start, start + length), axis=self.dim)))
            start += length
        return xp.concatenate(pieces, self.dim)


class _Stack(Constraint):
    """Constraints applied to the slices of ``dim``."""

    def __init__(self, cseq, dim: int = 0) -> None:
        super().__init__()
        self.cseq, self.dim = list(cseq), dim

    def _holds(self, a):
        _require_dim(a, self.dim)
        xp = array_module(a)
        # as torch's zip of the constraints with the slices: the shorter of the two decides
        slices = range(min(len(self.cseq), a.shape[self.dim]))
        return xp.stack([self.cseq[i]._holds(xp.take(a, i, axis=self.dim)) for i in slices], self.dim)


dependent = _Dependent()
boolean = _Boolean()
one_hot = _OneHot()
nonnegative_integer = _IntegerGreaterThan(0)
positive_integer = _IntegerGreaterThan(1)
integer_interval = _IntegerInterval
real = _Real()
real_vector = _IndependentConstraint(real, 1)
positive = _GreaterThan(0.0)
nonnegative = _GreaterThanEq(0.0)
greater_than = _GreaterThan
greater_than_eq = _GreaterThanEq
less_than = _LessThan
unit_interval = _Interval(0.0, 1.0)
interval = _Interval
half_open_interval = _HalfOpenInterval
simplex = _Simplex()
lower_triangular = _LowerTriangular()
lower_cholesky = _LowerCholesky()
corr_cholesky = _CorrCholesky()
multinomial = _Multinomial
square = _Square()
symmetric = _Symmetric()
positive_definite = _PositiveDefinite()
positive_semidefinite = _PositiveSemidefinite()
independent = _IndependentConstraint
cat = _Cat
stack = _Stack
