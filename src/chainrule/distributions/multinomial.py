"""torch.distributions.multinomial: the module path scripts import Multinomial from; the class lives in ``discrete.py``."""

from .discrete import Multinomial

__all__ = ["Multinomial"]
