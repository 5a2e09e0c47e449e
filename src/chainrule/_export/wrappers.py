"""torch._export.wrappers: ``mark_subclass_constructor_exportable_experimental``.

torch's decorator makes a subclass's ``__init__`` visible to ``torch.export``'s pre-dispatch
tracer; outside export it only calls ``__init__``. chainrule's export traces no subclass
constructors, so the decorator checks what torch checks and returns ``__init__`` unchanged.
"""

from __future__ import annotations

__all__ = ["mark_subclass_constructor_exportable_experimental"]


def mark_subclass_constructor_exportable_experimental(constructor_subclass):
    """Mark a tensor subclass's ``__init__`` as exportable (torch's check: it must be an ``__init__``)."""
    if getattr(constructor_subclass, "__name__", None) != "__init__":
        raise RuntimeError(
            "torch._export.wrappers.mark_constructor_exportable_experimental can only be applied on subclass "
            f"tensor.__init__But, you are adding it on {constructor_subclass.__name__} which is not supported. "
            "If __init__ doesn't exist on your subclass, please add it. Look at DTensor.__init__ implementation "
            "for example")
    return constructor_subclass
