"""torch.distributions.chi2: the module path scripts import Chi2 from; the class lives in ``gamma.py``."""

from .gamma import Chi2

__all__ = ["Chi2"]
