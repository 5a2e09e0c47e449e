"""torch._dynamo.utils: the one helper libraries call to choose a code path by device."""

from __future__ import annotations

from .._backend import device

__all__ = ["is_compile_supported"]


def is_compile_supported(device_type) -> bool:
    """Whether ``torch.compile`` works for ``device_type`` ("cpu", "cuda", a device): with chainrule
    it always does, since ``chainrule.compile`` runs its argument eagerly on every device."""
    device(device_type)  # an unknown device type raises as torch's does
    return True
