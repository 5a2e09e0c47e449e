"""torch._subclasses.fake_tensor: ``is_fake``, the one name of it libraries call from eager code, and
``MetadataMismatchError``, what opcheck's fake-tensor test raises."""

from __future__ import annotations

__all__ = ["MetadataMismatchError", "is_fake"]


class MetadataMismatchError(RuntimeError):
    """A fake kernel's output disagrees with the real kernel's in shape, dtype or device."""


def is_fake(x) -> bool:
    """Whether ``x`` is a FakeTensor (a tensor with metadata but no values, made while torch.compile or
    export traces) or wraps one. chainrule's compile runs eagerly and makes none, so every value,
    meta-device tensors included (torch answers False for those too), is not fake."""
    return False
