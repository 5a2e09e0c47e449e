"""MixtureSameFamily(mixture_distribution, component_distribution): a Categorical choice among
the components of one batched distribution (a Gaussian mixture is Categorical + Normal)."""

from __future__ import annotations

from ..autograd.grad_mode import no_grad
from ..ops.reduce import log_softmax, logsumexp
from ..tensor import Tensor
from . import constraints
from .categorical import Categorical
from .distribution import Distribution

__all__ = ["MixtureSameFamily"]


class MixtureSameFamily(Distribution):
    """torch.distributions.MixtureSameFamily: the component batch dim is the rightmost batch dim."""

    arg_constraints: dict = {}
    has_rsample = False

    def __init__(self, mixture_distribution: Categorical, component_distribution: Distribution,
                 validate_args=None) -> None:
        if not isinstance(mixture_distribution, Categorical):
            raise ValueError(" The Mixture distribution needs to be an  instance of torch.distributions.Categorical")
        if not isinstance(component_distribution, Distribution):
            raise ValueError("The Component distribution needs to be an instance of torch.distributions.Distribution")
        mixture_batch = tuple(mixture_distribution.batch_shape)
        component_batch = tuple(component_distribution.batch_shape)
        if len(component_batch) < 1:
            raise ValueError("`component_distribution.batch_shape` must have at least one dimension (the components)")
        for size1, size2 in zip(reversed(mixture_batch), reversed(component_batch[:-1])):
            if size1 != 1 and size2 != 1 and size1 != size2:
                raise ValueError(f"`mixture_distribution.batch_shape` ({mixture_distribution.batch_shape}) is not "
                                 f"compatible with `component_distribution.batch_shape`({component_distribution.batch_shape[:-1]})")
        k = mixture_distribution.logits.shape[-1]
        if k != component_batch[-1]:
            raise ValueError(f"`mixture_distribution component` ({k}) does not equal "
                             f"`component_distribution.batch_shape[-1]` ({component_batch[-1]})")
        self._mixture_distribution = mixture_distribution
        self._component_distribution = component_distribution
        self._num_component = k
        self._event_ndims = len(component_distribution.event_shape)
        super().__init__(component_batch[:-1], tuple(component_distribution.event_shape), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None) -> MixtureSameFamily:
        # torch's own: the component first (so a bad shape is reported against its tensor), then the
        # mixture to the full batch, which also fills in a mixture that only broadcast against it
        batch_shape = tuple(batch_shape)
        new = self._get_checked_instance(MixtureSameFamily, _instance)
        new._component_distribution = self._component_distribution.expand(batch_shape + (self._num_component,))
        new._mixture_distribution = self._mixture_distribution.expand(batch_shape)
        new._num_component = self._num_component
        new._event_ndims = self._event_ndims
        Distribution.__init__(new, batch_shape, tuple(new._component_distribution.event_shape), validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def mixture_distribution(self) -> Categorical:
        return self._mixture_distribution

    @property
    def component_distribution(self) -> Distribution:
        return self._component_distribution

    @property
    def support(self):
        return constraints.MixtureSameFamilyConstraint(self._component_distribution.support)

    def _pad_mixture_dims(self, x: Tensor) -> Tensor:
        # the mixture's probs over the components, shaped to broadcast against component values
        dist_batch_ndims = len(self.batch_shape)
        cat_batch_ndims = len(self.mixture_distribution.batch_shape)
        pad_ndims = 0 if cat_batch_ndims == 1 else dist_batch_ndims - cat_batch_ndims
        shape = tuple(x.shape)
        return x.reshape(shape[:-1] + (1,) * pad_ndims + shape[-1:] + (1,) * self._event_ndims)

    def _pad(self, x: Tensor) -> Tensor:
        return x.unsqueeze(-1 - self._event_ndims)

    @property
    def mean(self) -> Tensor:
        probs = self._pad_mixture_dims(self.mixture_distribution.probs)
        return (probs * self.component_distribution.mean).sum(-1 - self._event_ndims)

    @property
    def variance(self) -> Tensor:
        # law of total variance: E[Var(X | k)] + Var(E[X | k])
        probs = self._pad_mixture_dims(self.mixture_distribution.probs)
        dim = -1 - self._event_ndims
        mean_cond_var = (probs * self.component_distribution.variance).sum(dim)
        var_cond_mean = (probs * (self.component_distribution.mean - self._pad(self.mean)).pow(2)).sum(dim)
        return mean_cond_var + var_cond_mean

    def cdf(self, value: Tensor) -> Tensor:
        value = self._pad(value)
        cdf_x = self.component_distribution.cdf(value)
        mix_prob = self.mixture_distribution.probs
        return (cdf_x * mix_prob).sum(-1)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = self._pad(value)
        log_prob_x = self.component_distribution.log_prob(value)  # (..., K)
        log_mix_prob = log_softmax(self.mixture_distribution.logits, -1)
        return logsumexp(log_prob_x + log_mix_prob, -1)

    def sample(self, sample_shape=()) -> Tensor:
        with no_grad():
            sample_shape = tuple(sample_shape)
            mix_sample = self.mixture_distribution.sample(sample_shape)  # (*sample, *batch)
            comp_samples = self.component_distribution.sample(sample_shape)  # (*sample, *batch, K, *event)
            index = mix_sample.reshape(tuple(mix_sample.shape) + (1,) * (self._event_ndims + 1))
            event = tuple(self.event_shape)
            index = index.expand(tuple(mix_sample.shape) + (1,) + event)
            gather_dim = len(sample_shape) + len(self.batch_shape)
            return comp_samples.gather(gather_dim, index).squeeze(gather_dim)

    def __repr__(self) -> str:
        return (f"MixtureSameFamily(\n  {self.mixture_distribution!r},\n  {self.component_distribution!r})")
