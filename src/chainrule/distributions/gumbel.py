"""torch.distributions.gumbel: the module path scripts import Gumbel from; the class lives in ``transformed_families.py``."""

from .transformed_families import Gumbel

__all__ = ["Gumbel"]
