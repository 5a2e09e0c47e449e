"""torch.distributions.geometric: the module path scripts import Geometric from; the class lives in ``discrete.py``."""

from .discrete import Geometric

__all__ = ["Geometric"]
