"""torch.nn.DataParallel: single-process data parallelism, kept for the scripts that wrap
their model in it (``if torch.cuda.device_count() > 1: model = nn.DataParallel(model)``).

torch splits each batch over the GPUs of one process; chainrule runs the wrapped module on
one device, so results equal torch's and there is no speed-up. Use DistributedDataParallel
(one process per device, on MPI) to train on several devices at once.
"""

from __future__ import annotations

from ... import cuda
from ..modules.module import Module

__all__ = ["DataParallel"]


class DataParallel(Module):
    """Wrap ``module``; ``forward`` runs it unchanged. ``state_dict()`` keys carry the ``module.``
    prefix, as torch's do; ``dp.module`` is the wrapped model."""

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel: module must be an nn.Module, got {type(module).__name__}")
        self.module = module
        self.dim = dim
        if not cuda.is_available():
            self.device_ids = []
            self.output_device = None
            return
        if device_ids is None:
            device_ids = list(range(cuda.device_count()))
        self.device_ids = [_device_index(d) for d in device_ids]
        self.output_device = _device_index(output_device if output_device is not None else self.device_ids[0])

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)


def _device_index(device) -> int:
    if isinstance(device, int):
        return device
    index = getattr(device, "index", None)
    if index is None and isinstance(device, str):
        index = int(device.split(":")[1]) if ":" in device else 0
    return 0 if index is None else index
