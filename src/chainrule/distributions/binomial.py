"""torch.distributions.binomial: the module path scripts import Binomial from; the class lives in ``discrete.py``."""

from .discrete import Binomial

__all__ = ["Binomial"]
