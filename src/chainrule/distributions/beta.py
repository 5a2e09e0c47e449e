"""torch.distributions.beta: the module path scripts import Beta from; the class lives in ``gamma.py``."""

from .gamma import Beta

__all__ = ["Beta"]
