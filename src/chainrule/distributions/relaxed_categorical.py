"""torch.distributions.relaxed_categorical: the module path scripts import ExpRelaxedCategorical, RelaxedOneHotCategorical from; the class lives in ``relaxed.py``."""

from .relaxed import ExpRelaxedCategorical, RelaxedOneHotCategorical

__all__ = ["ExpRelaxedCategorical", "RelaxedOneHotCategorical"]
