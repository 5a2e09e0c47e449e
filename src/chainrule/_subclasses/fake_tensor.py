"""torch._subclasses.fake_tensor: ``is_fake``, the one name of it libraries call from eager code,
``MetadataMismatchError``, what opcheck's fake-tensor test raises, and ``_is_tensor_constructor``,
which dispatch modes (torch's TwoTensorMode) ask of the ``func`` they receive."""

from __future__ import annotations

__all__ = ["MetadataMismatchError", "is_fake"]

# aten ops that take no tensor and return one, of those that reach a dispatch mode here
# (torch reads this from the op's schema; chainrule's overloads carry none)
_TENSOR_CONSTRUCTORS = frozenset({"empty", "empty_strided", "zeros", "ones", "full", "arange", "rand", "randn",
                                  "randint", "randperm", "linspace", "logspace", "eye", "scalar_tensor"})


class MetadataMismatchError(RuntimeError):
    """A fake kernel's output disagrees with the real kernel's in shape, dtype or device."""


def is_fake(x) -> bool:
    """Whether ``x`` is a FakeTensor (a tensor with metadata but no values, made while torch.compile or
    export traces) or wraps one. chainrule's compile runs eagerly and makes none, so every value,
    meta-device tensors included (torch answers False for those too), is not fake."""
    return False


def _is_tensor_constructor(func) -> bool:
    """Whether aten overload ``func`` makes a tensor from no tensor (``aten.ones.default`` does,
    ``aten.ones_like.default`` does not)."""
    from ..ops.namespaces import OpOverload

    if not isinstance(func, OpOverload):
        raise AssertionError(f"func must be an OpOverload, got {type(func)}")
    return func.namespace == "aten" and func._op_name in _TENSOR_CONSTRUCTORS
