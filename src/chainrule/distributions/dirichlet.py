"""torch.distributions.dirichlet: the module path scripts import Dirichlet from; the class lives in ``gamma.py``."""

from .gamma import Dirichlet

__all__ = ["Dirichlet"]
