"""biject_to(constraint) and transform_to(constraint): a transform from unconstrained reals onto
a constraint's set, as torch.distributions.constraint_registry (for optimising constrained
parameters: ``x = transform_to(constraints.positive)(unconstrained)``)."""

from __future__ import annotations

from . import constraints
from .transforms import (
    AffineTransform,
    CatTransform,
    ComposeTransform,
    CorrCholeskyTransform,
    ExpTransform,
    IndependentTransform,
    LowerCholeskyTransform,
    PositiveDefiniteTransform,
    SigmoidTransform,
    SoftmaxTransform,
    StackTransform,
    StickBreakingTransform,
    identity_transform,
)

__all__ = ["ConstraintRegistry", "biject_to", "transform_to"]


class ConstraintRegistry:
    """Constraint type -> factory(constraint) -> Transform."""

    def __init__(self) -> None:
        self._registry: dict = {}

    def register(self, constraint, factory=None):
        if factory is None:
            return lambda factory: self.register(constraint, factory)
        if isinstance(constraint, constraints.Constraint):
            constraint = type(constraint)
        self._registry[constraint] = factory
        return factory

    def __call__(self, constraint):
        try:
            factory = self._registry[type(constraint)]
        except KeyError:
            raise NotImplementedError(f"Cannot transform {type(constraint).__name__} constraints") from None
        return factory(constraint)


biject_to = ConstraintRegistry()
transform_to = ConstraintRegistry()


def _real(constraint):
    return identity_transform


def _independent_bijection(constraint):
    return IndependentTransform(biject_to(constraint.base_constraint), constraint.reinterpreted_batch_ndims)


def _independent_transform(constraint):
    return IndependentTransform(transform_to(constraint.base_constraint), constraint.reinterpreted_batch_ndims)


def _greater_than(constraint):
    return ComposeTransform([ExpTransform(), AffineTransform(constraint.lower_bound, 1)])


def _less_than(constraint):
    return ComposeTransform([ExpTransform(), AffineTransform(constraint.upper_bound, -1)])


def _interval(constraint):
    lower, upper = constraint.lower_bound, constraint.upper_bound
    if isinstance(lower, (int, float)) and isinstance(upper, (int, float)) and (lower, upper) == (0, 1):
        return SigmoidTransform()
    return ComposeTransform([SigmoidTransform(), AffineTransform(lower, upper - lower)])


for _registry in (biject_to, transform_to):
    _registry.register(constraints._Real, _real)
    # positive and nonnegative too: torch registers them by their classes, which greater_than's own
    # registration then takes over (so torch gives exp followed by x + 0, never a bare ExpTransform)
    _registry.register(constraints._GreaterThan, _greater_than)
    _registry.register(constraints._GreaterThanEq, _greater_than)
    _registry.register(constraints._LessThan, _less_than)
    _registry.register(constraints._Interval, _interval)
    _registry.register(constraints._HalfOpenInterval, _interval)
biject_to.register(constraints._IndependentConstraint, _independent_bijection)
transform_to.register(constraints._IndependentConstraint, _independent_transform)
biject_to.register(constraints._Simplex, lambda c: StickBreakingTransform())
transform_to.register(constraints._Simplex, lambda c: SoftmaxTransform())


# the matrix constraints and the sliced ones, as torch registers them (biject_to takes the
# bijective transform of each slice, transform_to any transform); torch gives biject_to only
# corr_cholesky, so biject_to(lower_cholesky) and the positive (semi)definite ones raise
# NotImplementedError("Cannot transform _LowerCholesky constraints") there as here
for _registry in (biject_to, transform_to):
    _registry.register(constraints._CorrCholesky, lambda c: CorrCholeskyTransform())
transform_to.register(constraints._LowerCholesky, lambda c: LowerCholeskyTransform())
transform_to.register(constraints._PositiveDefinite, lambda c: PositiveDefiniteTransform())
transform_to.register(constraints._PositiveSemidefinite, lambda c: PositiveDefiniteTransform())
biject_to.register(constraints._Cat, lambda c: CatTransform([biject_to(part) for part in c.cseq], c.dim, c.lengths))
transform_to.register(constraints._Cat, lambda c: CatTransform([transform_to(part) for part in c.cseq], c.dim,
                                                                c.lengths))
biject_to.register(constraints._Stack, lambda c: StackTransform([biject_to(part) for part in c.cseq], c.dim))
transform_to.register(constraints._Stack, lambda c: StackTransform([transform_to(part) for part in c.cseq], c.dim))
