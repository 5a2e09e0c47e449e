"""chainrule.utils: data loading (``chainrule.utils.data``) and ``swap_tensors``, as ``torch.utils``."""

import weakref

from . import _python_dispatch as _python_dispatch  # torch.utils._python_dispatch, likewise
from . import _pytree as _pytree  # torch.utils._pytree, reached as an attribute by libraries
from . import data
from . import hooks as hooks  # torch.utils.hooks.RemovableHandle, named in captum's annotations

__all__ = ["data", "swap_tensors"]


def _poisoned_accumulator(grad_outputs):
    raise RuntimeError(
        "Trying to execute AccumulateGrad node that was poisoned by swap_tensors this can happen when you try to "
        "run backward on a tensor that was swapped. For a module m with "
        "`torch.__future__.set_swap_module_params_on_conversion(True)` you should not change the device or dtype "
        "of the module (e.g. `m.cpu()` or `m.half()`) between running forward and backward. To resolve this, "
        "please only change the device/dtype before running forward (or after both forward and backward).")


def _slot_names(cls) -> set:
    # copyreg._slotnames (torch's) would cache __slotnames__ on Tensor as a new class attribute
    names = set()
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names.update((slots,) if isinstance(slots, str) else slots)
    return names - {"__dict__", "__weakref__"}


def swap_tensors(t1, t2) -> None:
    """torch.utils.swap_tensors: t1 takes t2's whole content (class, attributes, data, autograd
    state) and t2 takes t1's, each keeping its identity, so references held elsewhere (an
    optimizer's parameter list) see the new content."""
    from ..tensor import Tensor

    for name, t in (("t1", t1), ("t2", t2)):
        if not isinstance(t, Tensor):
            raise TypeError(f"swap_tensors(): argument '{name}' must be Tensor, not {type(t).__name__}")
        if weakref.getweakrefs(t):
            raise RuntimeError(f"Cannot swap {name} because it has weakref associated with it")
    slots = _slot_names(type(t1))
    if slots != _slot_names(type(t2)):
        raise RuntimeError("Cannot swap t1 and t2 if they have different slots")
    for t in (t1, t2):
        # a leaf's gradient accumulator points at the object, not its content: a graph recorded
        # before the swap would fill the wrong tensor's .grad, so it fails as torch's does
        accumulator = t.__dict__.pop("_accumulator", None)  # a weak reference to the node
        accumulator = accumulator() if accumulator is not None else None
        if accumulator is not None:
            accumulator.register_prehook(_poisoned_accumulator)
    t1.__class__, t2.__class__ = t2.__class__, t1.__class__
    t1.__dict__, t2.__dict__ = t2.__dict__, t1.__dict__
    for slot in slots:
        missing = object()
        a, b = getattr(t1, slot, missing), getattr(t2, slot, missing)
        for t, value in ((t1, b), (t2, a)):
            if value is missing:
                if hasattr(t, slot):
                    delattr(t, slot)
            else:
                setattr(t, slot, value)
