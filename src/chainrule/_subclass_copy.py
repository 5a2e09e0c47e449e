"""``copy.deepcopy`` of a tensor of a user's subclass, as torch's ``Tensor.__deepcopy__`` makes it.

A wrapper subclass (``_make_wrapper_subclass``: its values live in its attributes) is copied by its
own ``clone()``; any other subclass gets a fresh instance from its ``new_empty`` and a copy of the
values. Then the gradient, the subclass's own ``__slots__`` and its ``__dict__`` are deep-copied
onto the copy, so inner tensors and metadata come along.
"""

from __future__ import annotations

import copy

import numpy as np

from .autograd.grad_mode import no_grad

__all__ = ["deepcopy_subclass", "own_slots"]


def own_slots(cls) -> list[str]:
    """The ``__slots__`` the subclass and its bases below Tensor declare (Tensor's own fields are not
    the user's state: torch's Tensor has none)."""
    names = []
    for klass in cls.__mro__:
        # Tensor, named, not imported (tensor.py imports this module); it prints as chainrule.Tensor
        if klass.__qualname__ == "Tensor" and klass.__module__ in ("chainrule", "chainrule.tensor"):
            break
        declared = klass.__dict__.get("__slots__", ())
        for name in (declared,) if isinstance(declared, str) else declared:
            if name not in ("__dict__", "__weakref__") and name not in names:
                names.append(name)
    return names


def deepcopy_subclass(tensor, memo: dict):
    if id(tensor) in memo:
        return memo[id(tensor)]
    with no_grad():
        if tensor._wrapper_strides is not None:
            made = tensor.clone()
            if type(made) is not type(tensor):
                raise RuntimeError(
                    "The default implementation of __deepcopy__() for wrapper subclasses only works for subclass "
                    "types that implement clone() and for which cloning returns another instance of the same "
                    "subclass. You should either properly implement clone() for your subclass or override "
                    "__deepcopy__() if it is intended behavior for clone() to return an instance of a different type.")
        else:
            made = tensor.new_empty([])
            if type(made) is not type(tensor):
                raise RuntimeError(
                    "The default implementation of __deepcopy__() for non-wrapper subclasses only works for subclass "
                    "types that implement new_empty() and for which that function returns another instance of the "
                    "same subclass. You should either properly implement new_empty() for your subclass or override "
                    "__deepcopy__() if it is intended behavior for new_empty() to return an instance of a different "
                    "type.")
            made._data = np.array(tensor._data, copy=True, order="K") if isinstance(tensor._data, np.ndarray) \
                else tensor._data.copy()
        if tensor._requires_grad:
            made._set_requires_grad(True)
        if tensor._grad is not None:
            made._grad = copy.deepcopy(tensor._grad, memo)
        for name in own_slots(type(tensor)):
            if hasattr(tensor, name):
                setattr(made, name, copy.deepcopy(getattr(tensor, name), memo))
        made.__dict__ = copy.deepcopy(tensor.__dict__, memo)
    memo[id(tensor)] = made
    return made
