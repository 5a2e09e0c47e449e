"""torch.distributions.poisson: the module path scripts import Poisson from; the class lives in ``discrete.py``."""

from .discrete import Poisson

__all__ = ["Poisson"]
