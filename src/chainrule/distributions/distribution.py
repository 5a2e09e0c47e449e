"""Distribution: shapes, argument/support validation and the sampling entry points."""

from __future__ import annotations

import warnings

import numpy as np

from .. import _dtype
from .._naming import naming_the_class
from .._torch_function import user_stacklevel
from ..autograd.grad_mode import no_grad
from ..tensor import Size, Tensor
from .constraints import Constraint, boolean, is_dependent, positive, real, simplex, unit_interval  # noqa: F401 (re-exported)

__all__ = ["Distribution", "Constraint", "broadcast_all"]


def broadcast_all(*values) -> list:
    """Tensors broadcast to one shape; Python numbers become tensors of the first tensor's dtype and
    device (the default dtype and device if none is a tensor), as torch.distributions.utils.broadcast_all."""
    from ..ops.creation import tensor
    from ..ops.shape import broadcast_tensors

    for value in values:
        # torch's test: a Python int, float or bool (np.float64 is a float, np.float32 is not) or
        # anything tensor-like (a NumPy array is neither)
        if not (isinstance(value, (Tensor, int, float, bool)) or hasattr(type(value), "__torch_function__")):
            raise ValueError("Input arguments must all be instances of Number, torch.Tensor or objects "
                             "implementing __torch_function__.")
    first = next((v for v in values if isinstance(v, Tensor)), None)
    dtype, device = (first.dtype, first.device) if first is not None else (_dtype.get_default_dtype(), None)
    tensors = [v if isinstance(v, Tensor) else tensor(v, dtype=dtype, device=device) for v in values]
    return list(broadcast_tensors(*tensors))


def _describe(value) -> str:
    # torch formats a one-element parameter as itself (a 0-d one as its number), others by shape
    if value.numel() != 1:
        return repr(value.shape)
    return str(value.item()) if value.dim() == 0 else str(value)


def _all_true(checked) -> bool:
    """Whether a constraint's answer (a bool Tensor, array or Python bool) holds everywhere."""
    return bool(np.all(checked._data if isinstance(checked, Tensor) else checked))


class Distribution:
    """Base class (torch.distributions.Distribution): ``batch_shape``, ``event_shape``,
    ``sample`` (no gradient) and ``rsample`` (differentiable, where the family allows it)."""

    has_rsample = False
    has_enumerate_support = False
    arg_constraints: dict = {}
    support: Constraint = real
    # torch's default, as Python's assert: on, off under ``python -O``; an instance given
    # validate_args shadows it, and set_default_validate_args replaces it
    _validate_args = __debug__

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        # chainrule's own families only: a user's subclass keeps its own errors as it raised them
        if cls.__module__.startswith("chainrule.") and "__init__" in cls.__dict__:
            cls.__init__ = naming_the_class(cls.__dict__["__init__"])

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None) -> None:
        self._batch_shape = Size(batch_shape)
        self._event_shape = Size(event_shape)
        if validate_args is not None:
            self._validate_args = bool(validate_args)
        if self._validate_args:
            for name, constraint in self.arg_constraints.items():
                if is_dependent(constraint):
                    continue  # torch skips what cannot be checked (Pyro's Delta declares its value so)
                if name not in self.__dict__ and not isinstance(getattr(type(self), name, None), property):
                    continue  # a parameter given the other way (probs vs logits), not computed yet
                value = getattr(self, name)
                # the Tensor itself, as torch passes it: a library's own constraints check with tensor ops
                if not _all_true(constraint.check(value)):
                    raise ValueError(
                        f"Expected parameter {name} (Tensor of shape {tuple(value.shape)}) of distribution "
                        f"{self!r} to satisfy the constraint {constraint!r}, but found invalid values:\n{value}")
        super().__init__()  # cooperative, as torch's (a family mixed with another base class)

    def expand(self, batch_shape, _instance=None) -> Distribution:
        """A copy with its batch dims broadcast to ``batch_shape``, sharing memory (torch's expand):
        the parameters (the names in ``arg_constraints``, given or derived) are expanded views,
        and so are inner distributions of the same batch (a Beta's Dirichlet, an Independent's or
        a TransformedDistribution's base); other cached tensors broadcast where they are used."""
        batch_shape = tuple(batch_shape)
        old_batch = tuple(self._batch_shape)
        if len(batch_shape) < len(old_batch) or any(
                old not in (1, new) for old, new in zip(old_batch[::-1], batch_shape[::-1])):
            # torch's families expand their parameters (or the inner distribution holding them: a
            # Beta's Dirichlet, an Independent's base) and let Tensor.expand's words out
            for name in self.arg_constraints:
                value = self.__dict__.get(name)
                if isinstance(value, Tensor):
                    value.expand(batch_shape + tuple(value.shape[len(old_batch):]))
            for value in self.__dict__.values():
                if isinstance(value, Distribution) and tuple(value.batch_shape[:len(old_batch)]) == old_batch:
                    value.expand(batch_shape + tuple(value.batch_shape[len(old_batch):]))
            raise RuntimeError(f"The expanded size of the batch {batch_shape} must match the existing size "
                               f"{old_batch} at each non-singleton dimension")
        new = type(self).__new__(type(self)) if _instance is None else _instance
        new.__dict__.update(self.__dict__)
        parameters = set(self.arg_constraints)
        for name, value in self.__dict__.items():
            if isinstance(value, Tensor) and name in parameters:
                new.__dict__[name] = value.expand(batch_shape + tuple(value.shape[len(old_batch):]))
            elif isinstance(value, Distribution) and tuple(value.batch_shape[:len(old_batch)]) == old_batch:
                new.__dict__[name] = value.expand(batch_shape + tuple(value.batch_shape[len(old_batch):]))
        new._batch_shape = Size(batch_shape)
        return new

    def _get_checked_instance(self, cls, _instance=None):
        """The blank instance an ``expand`` fills: torch's protocol, which libraries' families
        (Pyro's Delta, its wrappers) call from their own ``expand``."""
        if _instance is None and type(self).__init__ != cls.__init__:
            raise NotImplementedError(
                f"Subclass {self.__class__.__name__} of {cls.__name__} that defines a custom __init__ method "
                "must also define a custom .expand() method.")
        return self.__new__(type(self)) if _instance is None else _instance

    def enumerate_support(self, expand: bool = True) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not enumerate its support")

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        if value not in [True, False]:
            raise ValueError
        Distribution._validate_args = value

    @property
    def batch_shape(self) -> Size:
        return self._batch_shape

    @property
    def event_shape(self) -> Size:
        return self._event_shape

    def _extended_shape(self, sample_shape=()) -> tuple:
        return tuple(sample_shape) + tuple(self._batch_shape) + tuple(self._event_shape)

    def sample(self, sample_shape=()) -> Tensor:
        """A sample of shape ``sample_shape + batch_shape + event_shape``, outside the graph."""
        with no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=()) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no reparameterised sampler (rsample); "
                                  "use sample() together with log_prob for a score-function estimator")

    def sample_n(self, n: int) -> Tensor:
        """``sample((n,))``, which torch deprecates (FutureWarning at the caller's line, before sampling)."""
        warnings.warn("`sample_n(n)` will be deprecated. Use `sample((n,))` instead.", FutureWarning,
                      stacklevel=user_stacklevel())
        return self.sample((n,))

    def log_prob(self, value: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.log_prob is not implemented")

    def entropy(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.entropy is not implemented")

    def cdf(self, value: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.cdf is not implemented")

    def icdf(self, value: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.icdf is not implemented")

    @property
    def mean(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement mean")

    @property
    def mode(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement mode")

    @property
    def variance(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement variance")

    def perplexity(self) -> Tensor:
        return self.entropy().exp()

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()

    def _validate_sample(self, value: Tensor) -> None:
        if not self._validate_args:
            return
        if not isinstance(value, Tensor):
            raise ValueError("The value argument to log_prob must be a Tensor")
        shape, event_shape = tuple(value.shape), tuple(self._event_shape)
        if shape[len(shape) - len(event_shape):] != event_shape:
            raise ValueError(f"The right-most size of value must match event_shape: {Size(shape)} vs "
                             f"{Size(event_shape)}.")
        expected = tuple(self._batch_shape) + event_shape
        if any(i != 1 and j != 1 and i != j for i, j in zip(reversed(shape), reversed(expected))):
            raise ValueError(f"Value is not broadcastable with batch_shape+event_shape: {Size(shape)} vs "
                             f"{Size(expected)}.")
        if not _all_true(self.support.check(value)):
            raise ValueError(
                f"Expected value argument (Tensor of shape {tuple(value.shape)}) to be within the support "
                f"({self.support!r}) of the distribution {self!r}, but found invalid values:\n{value}")

    def __repr__(self) -> str:
        shown = [name for name in self.arg_constraints if name in self.__dict__]
        return f"{type(self).__name__}(" + ", ".join(f"{n}: {_describe(self.__dict__[n])}" for n in shown) + ")"
