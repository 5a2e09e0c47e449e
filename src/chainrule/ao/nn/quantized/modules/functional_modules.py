"""torch.ao.nn.quantized.FloatFunctional and QFunctional: the add / mul / cat of a residual
connection as modules, so that prepare() can observe their outputs and convert() can swap in
the quantized kernels (a bare ``x + y`` has nowhere to keep an observer)."""

from __future__ import annotations

import numpy as np

from .....nn import functional as F
from .....nn.modules.linear import Identity
from .....nn.modules.module import Module
from .....ops import elementwise, linalg, shape
from .....ops import quantized as _quantized
from .....tensor import Tensor
from . import kernels

__all__ = ["FloatFunctional", "QFunctional"]


class FloatFunctional(Module):
    """torch.ao.nn.quantized.FloatFunctional: float ``add``, ``mul``, ``cat``, ``add_relu``,
    ``add_scalar``, ``mul_scalar`` whose results pass through ``activation_post_process`` (an
    Identity until prepare() puts an observer there)."""

    def __init__(self) -> None:
        super().__init__()
        self.activation_post_process = Identity()

    def forward(self, x):
        raise RuntimeError("FloatFunctional is not intended to use the 'forward'. Please use the underlying operation")

    def add(self, x: Tensor, y: Tensor) -> Tensor:
        return self.activation_post_process(elementwise.add(x, y))

    def add_scalar(self, x: Tensor, y: float) -> Tensor:
        return elementwise.add(x, y)  # torch leaves it unobserved: the quantized op needs no new range

    def mul(self, x: Tensor, y: Tensor) -> Tensor:
        return self.activation_post_process(elementwise.mul(x, y))

    def mul_scalar(self, x: Tensor, y: float) -> Tensor:
        return elementwise.mul(x, y)

    def cat(self, x, dim: int = 0) -> Tensor:
        return self.activation_post_process(shape.cat(x, dim=dim))

    def add_relu(self, x: Tensor, y: Tensor) -> Tensor:
        return self.activation_post_process(F.relu(elementwise.add(x, y)))

    def matmul(self, x: Tensor, y: Tensor) -> Tensor:
        return self.activation_post_process(linalg.matmul(x, y))


class QFunctional(Module):
    """torch.ao.nn.quantized.QFunctional: the quantized counterparts, each result stored with the
    ``scale``/``zero_point`` calibration chose for it."""

    def __init__(self) -> None:
        super().__init__()
        self.scale, self.zero_point = 1.0, 0
        self.activation_post_process = Identity()

    def _get_name(self) -> str:
        return "QFunctional"

    def extra_repr(self) -> str:
        return f"scale={self.scale}, zero_point={self.zero_point}"

    def forward(self, x):
        raise RuntimeError("Functional is not intended to use the 'forward'. Please use the underlying operation")

    def _elementwise(self, x: Tensor, y: Tensor, combine, relu: bool = False) -> Tensor:
        values = combine(x._dequantized_array(), y._dequantized_array())
        if relu:
            values = np.maximum(values, np.float32(0))
        return self.activation_post_process(kernels.requantize_float(values, self.scale, self.zero_point,
                                                                     x.dtype))

    def add(self, x: Tensor, y: Tensor) -> Tensor:
        return self._elementwise(x, y, np.add)

    def mul(self, x: Tensor, y: Tensor) -> Tensor:
        return self._elementwise(x, y, np.multiply)

    def add_relu(self, x: Tensor, y: Tensor) -> Tensor:
        return self._elementwise(x, y, np.add, relu=True)

    def cat(self, x, dim: int = 0) -> Tensor:
        tensors = list(x)
        values = np.concatenate([t._dequantized_array() for t in tensors], axis=dim)
        return self.activation_post_process(_quantized.quantize_per_tensor(
            Tensor._make(values), self.scale, self.zero_point, tensors[0].dtype))

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        scale, zero_point = mod.activation_post_process.calculate_qparams()
        qfunctional = cls()
        qfunctional.scale, qfunctional.zero_point = float(scale._data[0]), int(zero_point._data[0])
        return qfunctional

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "scale"] = Tensor._make(np.array(self.scale, dtype=np.float32))
        destination[prefix + "zero_point"] = Tensor._make(np.array(self.zero_point, dtype=np.int64))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        self.scale = float(state_dict.pop(prefix + "scale"))
        self.zero_point = int(state_dict.pop(prefix + "zero_point"))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, False, missing_keys,
                                      unexpected_keys, error_msgs)

