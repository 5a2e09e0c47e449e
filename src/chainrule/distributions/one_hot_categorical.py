"""torch.distributions.one_hot_categorical: the module path scripts import OneHotCategorical, OneHotCategoricalStraightThrough from; the class lives in ``discrete.py``."""

from .discrete import OneHotCategorical, OneHotCategoricalStraightThrough

__all__ = ["OneHotCategorical", "OneHotCategoricalStraightThrough"]
