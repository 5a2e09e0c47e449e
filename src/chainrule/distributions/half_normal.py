"""torch.distributions.half_normal: the module path scripts import HalfNormal from; the class lives in ``transformed_families.py``."""

from .transformed_families import HalfNormal

__all__ = ["HalfNormal"]
