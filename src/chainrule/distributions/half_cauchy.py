"""torch.distributions.half_cauchy: the module path scripts import HalfCauchy from; the class lives in ``transformed_families.py``."""

from .transformed_families import HalfCauchy

__all__ = ["HalfCauchy"]
