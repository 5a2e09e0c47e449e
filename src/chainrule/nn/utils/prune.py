"""torch.nn.utils.prune: zero out parts of a module's parameters with a mask.

Pruning ``module.weight`` moves the Parameter to ``weight_orig``, adds the buffer
``weight_mask`` and makes ``weight`` the product ``weight_orig * weight_mask``, recomputed
by a forward pre-hook before every call — so the optimizer keeps training ``weight_orig``
while the pruned entries contribute nothing and receive a zero gradient. Pruning the same
tensor again combines the masks: the new method only chooses among the entries (or channels)
still unpruned. ``remove`` makes the pruning permanent.

The masks are chosen on the arrays (choosing is not differentiable); random methods draw with
``rand`` from the default generator, the draws torch makes (one number per entry, in the
tensor's dtype, or one float32 number per channel), so a seed chooses the entries torch's does.
"""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from collections.abc import Iterable

from ..._backend import array_module
from ...autograd.grad_mode import no_grad
from ...ops import random as _random
from ...ops.reduce import norm, topk
from ...tensor import Tensor

__all__ = ["BasePruningMethod", "PruningContainer", "Identity", "RandomUnstructured", "L1Unstructured",
           "RandomStructured", "LnStructured", "CustomFromMask", "identity", "random_unstructured",
           "l1_unstructured", "random_structured", "ln_structured", "global_unstructured", "custom_from_mask",
           "remove", "is_pruned"]


def _validate_amount_init(amount) -> None:
    if not isinstance(amount, numbers.Real):
        raise TypeError(f"Invalid type for amount: {amount}. Must be int or float.")
    if (isinstance(amount, numbers.Integral) and amount < 0) or (
            not isinstance(amount, numbers.Integral) and (float(amount) > 1.0 or float(amount) < 0.0)):
        raise ValueError(f"amount={amount} should either be a float in the range [0, 1] or a non-negative integer")


def _count_to_prune(amount, size: int) -> int:
    count = amount if isinstance(amount, numbers.Integral) else round(amount * size)
    if isinstance(amount, numbers.Integral) and amount > size:
        raise ValueError(f"amount={amount} should be smaller than the number of parameters to prune={size}")
    return int(count)


def _check_structured(t: Tensor, dim: int) -> None:
    if t.dim() <= 1:
        raise ValueError("Structured pruning can only be applied to multidimensional tensors. Found tensor of "
                         f"shape {tuple(t.shape)} with {t.dim()} dims")
    if dim >= t.dim():
        raise IndexError(f"Invalid index {dim} for tensor of size {t.shape}")


def _channel_slice(ndim: int, dim: int, selection) -> tuple:
    index = [slice(None)] * ndim
    index[dim] = selection
    return tuple(index)


class BasePruningMethod(ABC):
    """A way to choose a mask; applied to ``module.<name>`` by ``apply`` and re-applied before
    every forward (the instance is the forward pre-hook)."""

    PRUNING_TYPE = "unstructured"
    _tensor_name: str | None = None

    def __call__(self, module, inputs) -> None:
        setattr(module, self._tensor_name, self.apply_mask(module))

    @abstractmethod
    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        """The mask for ``t`` given the mask already in force (ones when none)."""

    def apply_mask(self, module) -> Tensor:
        if self._tensor_name is None:
            raise AssertionError(f"Module {module} has to be pruned")
        mask = getattr(module, self._tensor_name + "_mask")
        orig = getattr(module, self._tensor_name + "_orig")
        return mask.to(dtype=orig.dtype) * orig

    @classmethod
    def apply(cls, module, name: str, *args, importance_scores=None, **kwargs):
        orig = getattr(module, name)
        if not isinstance(orig, Tensor):  # a bias=False layer's None bias: torch's TypeError, nothing changed
            raise TypeError(f"{cls.__name__}: module.{name} must be a Tensor to be pruned, got {type(orig).__name__}")
        method = _composite_method(cls, module, name, *args, **kwargs)
        if importance_scores is not None:
            if tuple(importance_scores.shape) != tuple(orig.shape):
                raise AssertionError(f"importance_scores should have the same shape as parameter {name} of {module}")
        else:
            importance_scores = orig
        first = not isinstance(method, PruningContainer)
        if first:
            module.register_parameter(name + "_orig", orig)
            del module._parameters[name]
            default_mask = Tensor._make(array_module(orig._data).ones_like(orig._data))
        else:
            default_mask = getattr(module, name + "_mask").detach().clone()
        try:
            with no_grad():
                mask = method.compute_mask(importance_scores.detach(), default_mask=default_mask)
            module.register_buffer(name + "_mask", mask)
            setattr(module, name, method.apply_mask(module))
            module.register_forward_pre_hook(method)
        except Exception:
            if first:  # put the parameter back as it was
                orig = getattr(module, name + "_orig")
                module.register_parameter(name, orig)
                del module._parameters[name + "_orig"]
            raise
        return method

    def prune(self, t: Tensor, default_mask: Tensor | None = None, importance_scores: Tensor | None = None) -> Tensor:
        """``t`` with this method's mask applied, without touching any module."""
        scores = importance_scores if importance_scores is not None else t
        if default_mask is None:
            default_mask = Tensor._make(array_module(t._data).ones_like(t._data))
        with no_grad():
            mask = self.compute_mask(scores.detach(), default_mask=default_mask)
        return t * mask

    def remove(self, module) -> None:
        """Make the pruning permanent: ``module.<name>`` becomes a Parameter holding the masked
        values; ``<name>_orig`` and ``<name>_mask`` go."""
        if self._tensor_name is None:
            raise AssertionError(f"Module {module} has to be pruned before pruning can be removed")
        weight = self.apply_mask(module)
        module.__dict__.pop(self._tensor_name, None)
        orig = module._parameters[self._tensor_name + "_orig"]
        orig.data = weight.detach()
        del module._parameters[self._tensor_name + "_orig"]
        del module._buffers[self._tensor_name + "_mask"]
        setattr(module, self._tensor_name, orig)


def _composite_method(cls, module, name: str, *args, **kwargs):
    """The new method, merged with the one already pruning ``name`` into a PruningContainer."""
    old, keys = None, []
    for key, hook in module._forward_pre_hooks.items():
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            old = hook
            keys.append(key)
    if len(keys) > 1:
        raise AssertionError(f"Avoid adding multiple pruning hooks to the same tensor {name} of module {module}. "
                             "Use a PruningContainer.")
    for key in keys:
        del module._forward_pre_hooks[key]
    method = cls(*args, **kwargs)
    method._tensor_name = name
    if old is None:
        return method
    if isinstance(old, PruningContainer):
        old.add_pruning_method(method)
        return old
    container = PruningContainer(old)
    container.add_pruning_method(method)
    return container


class PruningContainer(BasePruningMethod):
    """The pruning methods applied to one tensor, in order; the last one chooses among what the
    earlier ones left."""

    def __init__(self, *args) -> None:
        self._pruning_methods: tuple = ()
        if len(args) == 1 and not isinstance(args[0], Iterable):
            self._tensor_name = args[0]._tensor_name
            self.add_pruning_method(args[0])
        elif len(args) == 1 and isinstance(args[0], Iterable):
            for method in args[0]:
                self.add_pruning_method(method)
        else:
            for method in args:
                self.add_pruning_method(method)

    def add_pruning_method(self, method) -> None:
        if not isinstance(method, BasePruningMethod) and method is not None:
            raise TypeError(f"{type(method)} is not a BasePruningMethod subclass")
        if method is not None and self._tensor_name != method._tensor_name:
            raise ValueError(f"Can only add pruning methods acting on the parameter named '{self._tensor_name}' "
                             f"to PruningContainer {self}. Found '{method._tensor_name}'")
        self._pruning_methods += (method,)

    def __len__(self) -> int:
        return len(self._pruning_methods)

    def __iter__(self):
        return iter(self._pruning_methods)

    def __getitem__(self, index):
        return self._pruning_methods[index]

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        method = self._pruning_methods[-1]
        mask = default_mask._data.astype(t._data.dtype, copy=True)
        if method.PRUNING_TYPE == "unstructured":
            selection = mask == 1
        elif method.PRUNING_TYPE == "structured":
            if not hasattr(method, "dim"):
                raise AttributeError("Pruning methods of PRUNING_TYPE 'structured' need to have the attribute `dim` "
                                     "defined.")
            dim = method.dim if method.dim >= 0 else t.dim() + method.dim
            if dim < 0:
                raise IndexError(f"Index is out of bounds for tensor of size {tuple(t.shape)}")
            keep = mask.sum(axis=tuple(d for d in range(t.dim()) if d != dim)) != 0
            selection = _channel_slice(t.dim(), dim, keep)
        elif method.PRUNING_TYPE == "global":
            selection = (slice(None),) * t.dim()
        else:
            raise ValueError(f"Unrecognized PRUNING_TYPE {method.PRUNING_TYPE}")
        partial = method.compute_mask(Tensor._make(t._data[selection]),
                                      default_mask=Tensor._make(mask[selection]))
        mask[selection] = partial._data.astype(mask.dtype)
        return Tensor._make(mask)


class Identity(BasePruningMethod):
    """Prunes nothing: the mask is all ones (a hook and a mask, for code that expects them)."""

    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        return default_mask

    @classmethod
    def apply(cls, module, name: str):
        return super().apply(module, name)


class _Unstructured(BasePruningMethod):
    """Prunes ``amount`` entries (a count, or a fraction): the first ones in ``_order``."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount) -> None:
        _validate_amount_init(amount)
        self.amount = amount

    @abstractmethod
    def _pruned(self, t: Tensor, count: int) -> Tensor:
        """The flat indices of the ``count`` entries of ``t`` to prune. Chosen by ``topk``, as
        torch chooses them: among equal scores topk's order, not the first index, decides."""

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        count = _count_to_prune(self.amount, t.numel())
        mask = default_mask._data.copy()
        if count:
            mask.reshape(-1)[self._pruned(t, count)._data] = 0
        return Tensor._make(mask)


class RandomUnstructured(_Unstructured):
    """Prunes ``amount`` entries (a count, or a fraction) chosen at random."""

    def _pruned(self, t: Tensor, count: int) -> Tensor:
        # the entries that drew the largest numbers go
        return topk(_random.rand_like(t).reshape(-1), count).indices

    @classmethod
    def apply(cls, module, name: str, amount):
        return super().apply(module, name, amount=amount)


class L1Unstructured(_Unstructured):
    """Prunes the ``amount`` entries of smallest absolute value."""

    def _pruned(self, t: Tensor, count: int) -> Tensor:
        return topk(t.abs().reshape(-1), count, largest=False).indices

    @classmethod
    def apply(cls, module, name: str, amount, importance_scores=None):
        return super().apply(module, name, amount=amount, importance_scores=importance_scores)


class _Structured(BasePruningMethod):
    """Prunes ``amount`` whole channels along ``dim``: all but those ``_kept`` chooses."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount, dim: int = -1) -> None:
        _validate_amount_init(amount)
        self.amount = amount
        self.dim = dim

    @abstractmethod
    def _kept(self, t: Tensor, dim: int, count: int, xp):
        """The channels to keep (indices or a boolean selection) when ``count`` are pruned."""

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        _check_structured(t, self.dim)
        count = _count_to_prune(self.amount, t.shape[self.dim])
        if not count:
            return default_mask
        xp = array_module(t._data)
        dim = self.dim % t.dim()
        mask = xp.zeros_like(t._data)
        mask[_channel_slice(t.dim(), dim, self._kept(t, dim, count, xp))] = 1
        return Tensor._make(mask * default_mask._data.astype(mask.dtype))


class RandomStructured(_Structured):
    """Prunes ``amount`` whole channels along ``dim``, chosen at random."""

    def _kept(self, t: Tensor, dim: int, count: int, xp):
        # the channels that drew the ``count`` smallest numbers go (and any that tie with the largest of those)
        draws = _random.rand(t.shape[dim], device=t.device)._data
        return draws > xp.sort(draws)[count - 1]

    @classmethod
    def apply(cls, module, name: str, amount, dim: int = -1):
        return super().apply(module, name, amount=amount, dim=dim)


class LnStructured(_Structured):
    """Prunes the ``amount`` channels along ``dim`` with the smallest L``n`` norm."""

    def __init__(self, amount, n, dim: int = -1) -> None:
        super().__init__(amount, dim)
        self.n = n

    def _kept(self, t: Tensor, dim: int, count: int, xp):
        if self.n == "nuc":
            raise ValueError("ln_structured: the nuclear norm of a channel is not supported; use a number or 'fro'")
        # torch.norm over every dim but ``dim``, in t's dtype, and topk's choice among equal norms
        norms = norm(t, p=self.n, dim=[d for d in range(t.dim()) if d != dim])
        return topk(norms, t.shape[dim] - count).indices._data

    @classmethod
    def apply(cls, module, name: str, amount, n, dim, importance_scores=None):
        return super().apply(module, name, amount=amount, n=n, dim=dim, importance_scores=importance_scores)


class CustomFromMask(BasePruningMethod):
    """Prunes where a given mask is zero."""

    PRUNING_TYPE = "global"

    def __init__(self, mask: Tensor) -> None:
        self.mask = mask

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        if tuple(default_mask.shape) != tuple(self.mask.shape):
            raise AssertionError(f"default_mask shape {default_mask.shape} must match self.mask shape "
                                 f"{self.mask.shape}")
        return Tensor._make(default_mask._data * self.mask._data.astype(default_mask._data.dtype))

    @classmethod
    def apply(cls, module, name: str, mask):
        return super().apply(module, name, mask=mask)


def identity(module, name: str):
    Identity.apply(module, name)
    return module


def random_unstructured(module, name: str, amount):
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(module, name: str, amount, importance_scores=None):
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_structured(module, name: str, amount, dim: int):
    RandomStructured.apply(module, name, amount, dim)
    return module


def ln_structured(module, name: str, amount, n, dim: int, importance_scores=None):
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def custom_from_mask(module, name: str, mask: Tensor):
    CustomFromMask.apply(module, name, mask)
    return module


def global_unstructured(parameters, pruning_method, importance_scores=None, **kwargs) -> None:
    """Prune across several tensors at once, e.g. the 20 % smallest weights of the whole
    network: ``parameters`` is an iterable of (module, name) pairs."""
    if not isinstance(parameters, Iterable):
        raise TypeError("global_unstructured(): parameters is not an Iterable")
    parameters = list(parameters)
    importance_scores = importance_scores if importance_scores is not None else {}
    if not isinstance(importance_scores, dict):
        raise TypeError("global_unstructured(): importance_scores must be of type dict")
    scores = [importance_scores.get((module, name), getattr(module, name)).detach() for module, name in parameters]
    masks = [getattr(module, name + "_mask", None) for module, name in parameters]
    xp = array_module(scores[0]._data)
    flat_scores = Tensor._make(xp.concatenate([s._data.reshape(-1) for s in scores]))
    flat_mask = Tensor._make(xp.concatenate([
        (m._data if m is not None else xp.ones_like(s._data)).reshape(-1).astype(s._data.dtype)
        for m, s in zip(masks, scores)]))
    method = pruning_method(**kwargs)
    method._tensor_name = "temp"
    if method.PRUNING_TYPE != "unstructured":
        raise TypeError('Only "unstructured" PRUNING_TYPE supported for the `pruning_method`. Found method '
                        f"{pruning_method} of type {method.PRUNING_TYPE}")
    container = PruningContainer()
    container._tensor_name = "temp"
    container.add_pruning_method(method)
    final = container.compute_mask(flat_scores, flat_mask)
    start = 0
    for (module, name), score in zip(parameters, scores):
        count = score.numel()
        custom_from_mask(module, name, mask=Tensor._make(final._data[start:start + count].reshape(score._data.shape)))
        start += count


def remove(module, name: str):
    """Make ``module.<name>``'s pruning permanent (see BasePruningMethod.remove)."""
    for key, hook in module._forward_pre_hooks.items():
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            hook.remove(module)
            del module._forward_pre_hooks[key]
            return module
    raise ValueError(f"Parameter '{name}' of module {module} has to be pruned before pruning can be removed")


def is_pruned(module) -> bool:
    """Whether any submodule of ``module`` has a pruning hook."""
    return any(isinstance(hook, BasePruningMethod)
               for _, submodule in module.named_modules() for hook in submodule._forward_pre_hooks.values())
