"""chainrule.distributions: the distributions VAE and RL scripts use, after torch.distributions.

Normal, Uniform, Bernoulli and Categorical (and Independent over any of them) with ``sample``/``rsample``/``log_prob``/``entropy``
and ``kl_divergence`` for matching pairs. Everything is composed from chainrule's
differentiable ops, so ``rsample`` (the reparameterisation trick) and ``log_prob`` carry
gradients to the parameters. Arguments and values are validated as torch does by default
(``validate_args``), raising its ValueError wording.
"""

from .bernoulli import Bernoulli
from .categorical import Categorical
from .distribution import Distribution
from .independent import Independent
from .kl import kl_divergence, register_kl
from .normal import Normal
from .uniform import Uniform

__all__ = ["Distribution", "Normal", "Uniform", "Bernoulli", "Categorical", "Independent", "kl_divergence",
           "register_kl"]
