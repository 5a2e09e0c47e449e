"""chainrule.distributions: torch.distributions' families, transforms, constraints and KL pairs.

Every family and module path of torch 2.13's ``torch.distributions`` (``from
chainrule.distributions.normal import Normal`` works as torch's does): continuous (Normal,
MultivariateNormal, LowRankMultivariateNormal, Uniform, Exponential, Laplace, Cauchy, Gumbel,
LogNormal, HalfNormal, HalfCauchy, Gamma, Chi2, Beta, Dirichlet, StudentT, Weibull, Pareto,
Kumaraswamy, InverseGamma, GeneralizedPareto, FisherSnedecor, ContinuousBernoulli, VonMises,
LogisticNormal, LKJCholesky, Wishart), discrete (Bernoulli, Categorical, OneHotCategorical,
Geometric, Poisson, Binomial, NegativeBinomial, Multinomial), relaxed (RelaxedBernoulli,
RelaxedOneHotCategorical), Independent, MixtureSameFamily, ExponentialFamily and
TransformedDistribution with the transforms, constraints and utils modules, with
``sample``/``rsample``/``log_prob``/``entropy``/``cdf``/``icdf`` and ``kl_divergence`` for torch's
registered pairs. Everything is composed from chainrule's differentiable ops, so ``rsample`` (the
reparameterisation trick) and ``log_prob`` carry gradients to the parameters. Arguments and values
are validated as torch does by default (``validate_args``), raising its ValueError wording.
"""

from . import constraints, transforms  # noqa: F401  (attributes, as torch's, outside __all__)
from .bernoulli import Bernoulli
from .categorical import Categorical
from .constraint_registry import biject_to, transform_to
from .continuous_bernoulli import ContinuousBernoulli
from .discrete import (
    Binomial,
    Geometric,
    Multinomial,
    OneHotCategorical,
    OneHotCategoricalStraightThrough,
    Poisson,
)
from .distribution import Distribution
from .exp_family import ExponentialFamily
from .exponential import Cauchy, Exponential, Laplace
from .fishersnedecor import FisherSnedecor
from .gamma import Beta, Chi2, Dirichlet, Gamma, StudentT
from .generalized_pareto import GeneralizedPareto
from .independent import Independent
from .inverse_gamma import InverseGamma
from .kl import kl_divergence, register_kl
from .kumaraswamy import Kumaraswamy
from .lkj_cholesky import LKJCholesky
from .logistic_normal import LogisticNormal
from .lowrank_multivariate_normal import LowRankMultivariateNormal
from .mixture_same_family import MixtureSameFamily
from .multivariate_normal import MultivariateNormal
from .negative_binomial import NegativeBinomial
from .normal import Normal
from .pareto import Pareto
from .relaxed import RelaxedBernoulli, RelaxedOneHotCategorical
from .transformed_distribution import TransformedDistribution
from .transformed_families import Gumbel, HalfCauchy, HalfNormal, LogNormal
from .transforms import (
    AbsTransform,
    AffineTransform,
    CatTransform,
    ComposeTransform,
    CorrCholeskyTransform,
    CumulativeDistributionTransform,
    ExpTransform,
    IndependentTransform,
    LowerCholeskyTransform,
    PositiveDefiniteTransform,
    PowerTransform,
    ReshapeTransform,
    SigmoidTransform,
    SoftmaxTransform,
    SoftplusTransform,
    StackTransform,
    StickBreakingTransform,
    TanhTransform,
    Transform,
    identity_transform,
)
from .uniform import Uniform
from .von_mises import VonMises
from .weibull import Weibull
from .wishart import Wishart

# torch's __all__: constraints and transforms are attributes but not exported by a star import; the
# helper families ExpRelaxedCategorical and LogitRelaxedBernoulli live in their modules only
__all__ = ["Distribution", "Normal", "Uniform", "Bernoulli", "Categorical", "Independent", "kl_divergence",
           "register_kl", "biject_to", "transform_to", "Binomial", "Geometric",
           "Multinomial", "OneHotCategorical", "OneHotCategoricalStraightThrough", "Poisson", "Cauchy",
           "Exponential", "Laplace", "Beta", "Chi2", "Dirichlet", "Gamma", "StudentT", "MultivariateNormal",
           "MixtureSameFamily", "RelaxedBernoulli", "RelaxedOneHotCategorical", "TransformedDistribution", "Gumbel", "HalfCauchy",
           "HalfNormal", "LogNormal", "AbsTransform", "AffineTransform", "ComposeTransform", "ExpTransform",
           "IndependentTransform", "PowerTransform", "ReshapeTransform", "SigmoidTransform", "SoftmaxTransform",
           "SoftplusTransform", "StickBreakingTransform", "TanhTransform", "Transform", "identity_transform",
           "ContinuousBernoulli", "ExponentialFamily", "FisherSnedecor", "GeneralizedPareto", "InverseGamma",
           "Kumaraswamy", "LogisticNormal", "LowRankMultivariateNormal", "NegativeBinomial", "Pareto", "VonMises",
           "Weibull", "CatTransform", "CorrCholeskyTransform", "CumulativeDistributionTransform",
           "LowerCholeskyTransform", "PositiveDefiniteTransform", "StackTransform", "LKJCholesky", "Wishart"]

# torch binds each family's module as an attribute after ``import torch`` (torch.distributions.beta.Beta);
# _kl_cross_families registers the KL pairs across families (normal, gamma, Gumbel, ... targets)
from . import (  # noqa: E402,F401
    _kl_cross_families,
    beta,
    binomial,
    cauchy,
    chi2,
    dirichlet,
    geometric,
    gumbel,
    half_cauchy,
    half_normal,
    laplace,
    log_normal,
    multinomial,
    one_hot_categorical,
    poisson,
    relaxed_bernoulli,
    relaxed_categorical,
    studentT,
)

# discrete, relaxed and transformed_families (modules holding several families) are chainrule's
# layout, not torch's: importing them bound them here, so they are unbound again and
# dir(torch.distributions) lists torch's names (d2l.ai's "Documentation" section prints it)
for _internal in ("discrete", "relaxed", "transformed_families"):
    globals().pop(_internal, None)
del _internal
