"""torch.jit.isinstance in eager mode: ``isinstance`` that also checks the element types of
typing containers (``List[int]``, ``Dict[str, Tensor]``, ``Tuple[int, str]``, ``Optional[...]``),
with torch's refusals of bare containers and its warning for empty ones (whose element type
cannot be seen)."""

from __future__ import annotations

import builtins
import collections.abc
import types
import typing
import warnings

_BARE_CONTAINER_NAMES = {dict: "dict", list: "list", tuple: "tuple", typing.Dict: "Dict",  # noqa: UP006
                         typing.List: "List", typing.Optional: "Optional", typing.Tuple: "Tuple"}  # noqa: UP006


def _refuse_bare_container(target_type) -> None:
    name = _BARE_CONTAINER_NAMES.get(target_type)
    if name is None:
        return
    if name.endswith("ict"):
        raise RuntimeError(f"Attempted to use {name} without contained types. Please add contained type, "
                           f"e.g. {name}[int, int]")
    raise RuntimeError(f"Attempted to use {name} without a contained type. Please add a contained type, "
                       f"e.g. {name}[int]")


def _warn_if_empty(obj) -> None:
    if obj == [] or obj == {} or obj == ():
        warnings.warn("The inner type of a container is lost when calling torch.jit.isinstance in eager mode. "
                      "For example, List[int] would become list and therefore falsely return True for "
                      "List[float] or List[str].", stacklevel=3)


def _element_matches(value, element_type) -> bool:
    if typing.get_origin(element_type):
        return _container_matches(value, element_type)
    return builtins.isinstance(value, element_type)


def _container_matches(obj, target_type) -> bool:
    origin = typing.get_origin(target_type)
    _refuse_bare_container(target_type)
    args = typing.get_args(target_type)
    if origin is list:
        _warn_if_empty(obj)
        return builtins.isinstance(obj, list) and all(_element_matches(el, args[0]) for el in obj)
    if origin is dict:
        _warn_if_empty(obj)
        return builtins.isinstance(obj, dict) and all(
            builtins.isinstance(key, args[0]) and _element_matches(value, args[1]) for key, value in obj.items())
    if origin is tuple:
        _warn_if_empty(obj)
        return builtins.isinstance(obj, tuple) and len(obj) == len(args) and all(
            _element_matches(el, el_type) for el, el_type in zip(obj, args))
    if origin is typing.Union or origin is types.UnionType:
        if obj is None:
            return True
        for inner in args:
            if typing.get_origin(inner):
                return _container_matches(obj, inner)  # torch answers from the first container type
            if builtins.isinstance(obj, inner):
                return True
    return False


def isinstance(obj, target_type) -> bool:
    """torch.jit.isinstance: whether ``obj`` is of ``target_type``, a type, a typing container with its
    element types, or a tuple of those."""
    if builtins.isinstance(target_type, collections.abc.Container):
        if not builtins.isinstance(target_type, tuple):
            raise RuntimeError("The second argument to `torch.jit.isinstance` must be a type or a tuple of types")
        return any(isinstance(obj, t) for t in target_type)
    if typing.get_origin(target_type):
        return _container_matches(obj, target_type)
    _refuse_bare_container(target_type)
    return builtins.isinstance(obj, target_type)
