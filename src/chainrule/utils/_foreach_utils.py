"""torch.utils._foreach_utils: the helpers optimizers written outside torch import to sort their
tensor lists before a foreach update (pytorch_optimizer imports ``_group_tensors_by_device_and_dtype``
at package import). chainrule's foreach ops take any list on any device, so the support checks
answer as torch's do on the CPU."""

from __future__ import annotations

from typing import TypeAlias

from ..autograd.grad_mode import no_grad
from ..tensor import Tensor

__all__: list[str] = []

TensorListList: TypeAlias = list[list[Tensor | None]]
Indices: TypeAlias = list[int]
_foreach_supported_types = [Tensor]


def _get_foreach_kernels_supported_devices() -> list[str]:
    """The device types torch has foreach kernels for (the CPU runs its loop fallback)."""
    return ["cuda", "xpu", "mtia", "privateuseone"]


def _get_fused_kernels_supported_devices() -> list[str]:
    """The device types torch's fused optimizers run on."""
    return ["mps", "cuda", "xpu", "hpu", "cpu", "mtia", "privateuseone"]


@no_grad()
def _group_tensors_by_device_and_dtype(tensorlistlist: TensorListList, with_indices: bool = False) -> dict:
    """``{(device, dtype): (lists, indices)}``: the positions of the first list grouped by its tensors'
    device and dtype, each list cut to those positions (the same tensor objects; None stays None),
    and the positions themselves when ``with_indices`` (else an empty list), as torch's."""
    if not tensorlistlist or not tensorlistlist[0]:
        raise RuntimeError("Expected !nested_tensorlist[0].empty() to be true, but got false.  (Could this error "
                           "message be improved?  If so, please report an enhancement request to PyTorch.)")
    positions: dict = {}
    for index, tensor in enumerate(tensorlistlist[0]):
        positions.setdefault((tensor.device, tensor.dtype), []).append(index)
    return {key: ([[tensors[i] for i in indices] for tensors in tensorlistlist], indices if with_indices else [])
            for key, indices in positions.items()}


def _device_has_foreach_support(device) -> bool:
    return device.type in (*_get_foreach_kernels_supported_devices(), "cpu")


def _has_foreach_support(tensors: list, device) -> bool:
    return _device_has_foreach_support(device) and all(t is None or type(t) in _foreach_supported_types
                                                       for t in tensors)
