"""torch.distributions.log_normal: the module path scripts import LogNormal from; the class lives in ``transformed_families.py``."""

from .transformed_families import LogNormal

__all__ = ["LogNormal"]
