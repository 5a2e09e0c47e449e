"""torch.distributions.laplace: the module path scripts import Laplace from; the class lives in ``exponential.py``."""

from .exponential import Laplace

__all__ = ["Laplace"]
