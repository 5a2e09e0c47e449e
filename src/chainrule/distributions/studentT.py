"""torch.distributions.studentT: the module path scripts import StudentT from; the class lives in ``gamma.py``."""

from .gamma import StudentT

__all__ = ["StudentT"]
