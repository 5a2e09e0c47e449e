"""torch.distributions.relaxed_bernoulli: the module path scripts import LogitRelaxedBernoulli, RelaxedBernoulli from; the class lives in ``relaxed.py``."""

from .relaxed import LogitRelaxedBernoulli, RelaxedBernoulli

__all__ = ["LogitRelaxedBernoulli", "RelaxedBernoulli"]
