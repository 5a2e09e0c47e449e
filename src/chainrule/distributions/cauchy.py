"""torch.distributions.cauchy: the module path scripts import Cauchy from; the class lives in ``exponential.py``."""

from .exponential import Cauchy

__all__ = ["Cauchy"]
