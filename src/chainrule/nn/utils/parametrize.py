"""torch.nn.utils.parametrize: express a module's tensor as a function of other tensors.

``register_parametrization(module, "weight", P())`` keeps the stored tensor as
``module.parametrizations.weight.original`` and makes ``module.weight`` a property that returns
``P()(original)`` on every access, so gradients reach the original through P's ordinary ops.
As in torch, the module's class is swapped for a subclass that carries the property (a property
must live on a class); the subclass is made once per module.

Assigning ``module.weight = X`` stores ``P.right_inverse(X)`` when P defines it. ``cached()``
computes each parametrized tensor once inside its block (for a weight shared by many steps of a
recurrent loop).
"""

from __future__ import annotations

import contextlib

from ..._naming import in_torchs_words  # (register_parametrization is the user's call: no constructor prefix)
from ...autograd.grad_mode import no_grad
from ...tensor import Size, Tensor
from ..modules.container import ModuleDict, ModuleList
from ..modules.module import Module
from ..parameter import Parameter

__all__ = ["register_parametrization", "remove_parametrizations", "is_parametrized", "cached",
           "ParametrizationList", "type_before_parametrizations", "transfer_parametrizations_and_params"]

_cache_depth = 0
_cache: dict = {}


@contextlib.contextmanager
def cached():
    """Inside this block each parametrized tensor is computed on its first access only."""
    global _cache_depth
    _cache_depth += 1
    try:
        yield
    finally:
        _cache_depth -= 1
        if not _cache_depth:
            _cache.clear()


def _set_in_place(target: Tensor, value: Tensor) -> None:
    """Give ``target`` the value (and shape) of ``value`` keeping the object, so an optimizer
    holding ``target`` keeps training it."""
    target.data = value.detach().clone()


def _check_consistent(value, original_dtype, original_shape: tuple) -> None:
    """torch's checks of a parametrization registered without ``unsafe``, in its order and words:
    it returns a tensor, of the original's dtype, then of its shape."""
    if not isinstance(value, Tensor):
        raise in_torchs_words(ValueError(f"A parametrization must return a tensor. Got {type(value).__name__}."))
    if value.dtype != original_dtype:
        raise in_torchs_words(ValueError(
            "Registering a parametrization may not change the dtype of the tensor, unless `unsafe` flag is enabled.\n"
            f"unparametrized dtype: {original_dtype}\nparametrized dtype: {value.dtype}"))
    if tuple(value.shape) != tuple(original_shape):
        raise in_torchs_words(ValueError(
            "Registering a parametrization may not change the shape of the tensor, unless `unsafe` flag is enabled.\n"
            f"unparametrized shape: {Size(original_shape)}\nparametrized shape: {Size(value.shape)}"))


def _check_appended(module: Module, tensor_name: str, parametrization: Module) -> None:
    """torch's checks of a parametrization appended without ``unsafe`` to a parametrized tensor Y:
    X = parametrization(Y) is a tensor of Y's dtype and shape, and so is its right_inverse(X)."""
    name = f"module.{tensor_name}"
    Y = getattr(module, tensor_name)
    X = parametrization(Y)
    if not isinstance(X, Tensor):
        raise ValueError(f"A parametrization must return a tensor. Got {type(X).__name__}.")
    for what, got in (("dtype", X.dtype), ("shape", X.shape)):
        if got != getattr(Y, what):
            raise ValueError(f"Registering a parametrization may not change the {what} of the tensor, unless the "
                             f"`unsafe` flag is enabled.\n{name}.{what}: {getattr(Y, what)}\n"
                             f"parametrization({name}).{what}: {got}")
    if hasattr(parametrization, "right_inverse"):
        try:
            Z = parametrization.right_inverse(X)
        except NotImplementedError:
            return
        if not isinstance(Z, Tensor):
            raise ValueError(f"parametrization.right_inverse must return a tensor. Got: {type(Z).__name__}")
        for what, got in (("dtype", Z.dtype), ("shape", Z.shape)):
            if got != getattr(Y, what):
                raise ValueError(f"The tensor returned by parametrization.right_inverse must have the same {what} as "
                                 f"{name}, unless the `unsafe` flag is enabled.\n{name}.{what}: {getattr(Y, what)}\n"
                                 f"returned {what}: {got}")


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, applied in order, and the tensor(s) they start from:
    ``original``, or ``original0``, ``original1``, ... when the first one's ``right_inverse``
    returns several."""

    def __init__(self, modules, original: Tensor, unsafe: bool = False) -> None:
        if len(modules) == 0:
            raise ValueError("ParametrizationList requires one or more modules.")
        super().__init__(modules)
        self.unsafe = unsafe
        original_shape, original_dtype = tuple(original.shape), original.dtype
        with no_grad():
            new = original
            for module in reversed(self):
                if hasattr(module, "right_inverse"):
                    try:
                        new = module.right_inverse(new)
                    except NotImplementedError:  # torch takes it for the identity
                        pass
        if not isinstance(new, (Tensor, tuple, list)):
            raise in_torchs_words(ValueError("'right_inverse' must return a Tensor or a Sequence of tensors "
                                              f"(list, tuple...). Got {type(new).__name__}"))
        self.is_tensor = isinstance(new, Tensor)
        self.ntensors = 1 if self.is_tensor else len(new)
        if self.is_tensor:
            if new.dtype != original_dtype:  # torch checks the dtype only here, unsafe or not
                raise in_torchs_words(ValueError(
                    "When `right_inverse` outputs one tensor, it may not change the dtype.\n"
                    f"original.dtype: {original_dtype}\nright_inverse(original).dtype: {new.dtype}"))
            _set_in_place(original, new)
            _register_tensor(self, "original", original)
        else:
            for index, tensor in enumerate(new):
                if not isinstance(tensor, Tensor):
                    raise in_torchs_words(ValueError(
                        "'right_inverse' must return a Tensor or a Sequence of tensors (list, tuple...). "
                        f"Got element {index} of the sequence with type {type(tensor).__name__}."))
                stored = Parameter(tensor.detach().clone(), original.requires_grad) \
                    if isinstance(original, Parameter) else tensor.detach().clone()
                _register_tensor(self, f"original{index}", stored)
        if not unsafe:
            _check_consistent(self(), original_dtype, original_shape)

    def originals(self) -> tuple:
        if self.is_tensor:
            return (self.original,)
        return tuple(getattr(self, f"original{index}") for index in range(self.ntensors))

    def right_inverse(self, value: Tensor) -> None:
        """Store ``value`` as the parametrized tensor: run the right inverses back to the
        original(s) and overwrite them in place."""
        with no_grad():
            for module in reversed(self):
                if hasattr(module, "right_inverse"):
                    value = module.right_inverse(value)
                else:
                    raise RuntimeError(f"parametrization {type(module).__name__} does not implement right_inverse.")
            if self.is_tensor:
                if not isinstance(value, Tensor):
                    raise ValueError(f"`right_inverse` should return a tensor. Got {type(value).__name__}")
                _set_in_place(self.original, value)
                return
            if not isinstance(value, (list, tuple)) or len(value) != self.ntensors:
                raise ValueError(f"'right_inverse' must return a sequence of tensors of length {self.ntensors}.")
            for original, tensor in zip(self.originals(), value):
                _set_in_place(original, tensor)

    def forward(self) -> Tensor:
        value = self[0](*self.originals())
        for module in list(self)[1:]:
            value = module(value)
        return value


def _register_tensor(owner: Module, name: str, tensor: Tensor) -> None:
    if isinstance(tensor, Parameter):
        owner.register_parameter(name, tensor)
    else:
        owner.register_buffer(name, tensor)


def _parametrized_value(module: Module, name: str) -> Tensor:
    if _cache_depth:
        key = (id(module), name)
        if key not in _cache:
            _cache[key] = module.parametrizations[name]()
        return _cache[key]
    return module.parametrizations[name]()


def _inject_property(module: Module, name: str) -> None:
    def getter(self, name=name):
        return _parametrized_value(self, name)

    def setter(self, value, name=name):
        self.parametrizations[name].right_inverse(value)

    setattr(module.__class__, name, property(getter, setter))


def _make_class_parametrized(module: Module) -> None:
    original_class = module.__class__
    module.__class__ = type(f"Parametrized{original_class.__name__}", (original_class,),
                            {"_original_class": original_class})


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    """Whether ``module`` (or its ``tensor_name``) has a parametrization."""
    parametrizations = module.__dict__.get("_modules", {}).get("parametrizations")
    if parametrizations is None or not isinstance(parametrizations, ModuleDict):
        return False
    return len(parametrizations) > 0 if tensor_name is None else tensor_name in parametrizations


def type_before_parametrizations(module: Module) -> type:
    return module.__class__._original_class if is_parametrized(module) else type(module)


def register_parametrization(module: Module, tensor_name: str, parametrization: Module, *,
                             unsafe: bool = False) -> Module:
    """Make ``module.<tensor_name>`` return ``parametrization(original)``; a second call on the
    same tensor appends to its list. Returns the module."""
    if not isinstance(parametrization, Module):
        raise TypeError(f"parametrization must be an nn.Module, got {type(parametrization).__name__}")
    if is_parametrized(module, tensor_name):
        plist = module.parametrizations[tensor_name]
        if not unsafe:
            _check_appended(module, tensor_name, parametrization)
        plist.append(parametrization)
        plist.unsafe = plist.unsafe or unsafe
        return module
    if tensor_name in module._parameters or tensor_name in module._buffers:
        original = getattr(module, tensor_name)
        plist = ParametrizationList([parametrization], original, unsafe=unsafe)
        delattr(module, tensor_name)
        if not is_parametrized(module):
            _make_class_parametrized(module)
            module.parametrizations = ModuleDict()
        module.parametrizations[tensor_name] = plist
        _inject_property(module, tensor_name)
        return module
    raise ValueError(f"Module '{module}' does not have a parameter, a buffer, or a parametrized element with name "
                     f"'{tensor_name}'")


def remove_parametrizations(module: Module, tensor_name: str, leave_parametrized: bool = True) -> Module:
    """Undo ``register_parametrization``: ``module.<tensor_name>`` becomes a stored tensor again,
    holding the parametrized value (``leave_parametrized``) or the original."""
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {module} does not have a parametrization on {tensor_name}")
    plist = module.parametrizations[tensor_name]
    if plist.is_tensor:
        original = plist.original
        if leave_parametrized:
            with no_grad():
                value = getattr(module, tensor_name)
            if tuple(value.shape) == tuple(original.shape) and value.dtype == original.dtype:
                _set_in_place(original, value)
            else:
                original = Parameter(value.detach().clone(), original.requires_grad) \
                    if isinstance(original, Parameter) else value.detach().clone()
    else:
        if not leave_parametrized:
            raise ValueError("Cannot leave unparametrized (`leave_parametrized=False`) a tensor that is parametrized "
                             "in terms of a sequence of tensors.")
        with no_grad():
            value = getattr(module, tensor_name).detach().clone()
        first = plist.original0
        original = Parameter(value, first.requires_grad) if isinstance(first, Parameter) else value
    delattr(module.__class__, tensor_name)
    del module.parametrizations[tensor_name]
    _register_tensor(module, tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        module.__class__ = module.__class__._original_class
    return module


def transfer_parametrizations_and_params(from_module: Module, to_module: Module,
                                         tensor_name: str | None = None) -> Module:
    """Give ``to_module`` the parametrizations of ``from_module`` (all, or ``tensor_name``'s),
    with copies of their original tensors."""
    if not is_parametrized(from_module):
        return to_module
    names = list(from_module.parametrizations) if tensor_name is None else [tensor_name]
    for name in names:
        source = from_module.parametrizations[name]
        if name not in to_module._parameters and name not in to_module._buffers and \
                not is_parametrized(to_module, name):
            to_module.register_parameter(name, Parameter(getattr(from_module, name).detach().clone()))
        if not is_parametrized(to_module, name):
            for parametrization in source:
                register_parametrization(to_module, name, parametrization, unsafe=True)
        with no_grad():
            for mine, theirs in zip(to_module.parametrizations[name].originals(), source.originals()):
                _set_in_place(mine, theirs)
    return to_module
