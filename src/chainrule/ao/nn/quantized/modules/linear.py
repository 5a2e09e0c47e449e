"""torch.ao.nn.quantized.Linear: a static quantized linear layer (quint8 in, quint8 out)."""

from __future__ import annotations

import numpy as np

from ..... import _dtype
from .....ops import quantized as _quantized
from .....tensor import Tensor
from . import kernels

__all__ = ["Linear"]


class Linear(kernels.WeightedLayer):
    """torch.ao.nn.quantized.Linear: ``y = x W^T + b`` on a quint8 ``x`` with an int8 ``W``, stored
    with the output ``scale``/``zero_point`` calibration chose. Made by ``from_float`` (convert)."""

    _version = 3
    _FLOAT_MODULE = None  # set below: the float class (or fused class) convert swaps for this one
    _relu = False

    def __init__(self, in_features: int, out_features: int, bias_: bool = True, dtype=_dtype.qint8) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        weight = _quantized.make_quantized(np.zeros((out_features, in_features), np.int8), dtype,
                                           _quantized.per_tensor_affine, 1.0, 0)
        self.set_weight_bias(weight, Tensor._make(np.zeros(out_features, np.float32)) if bias_ else None)
        self._dtype = dtype
        self.scale, self.zero_point = 1.0, 0

    def _get_name(self) -> str:
        return "QuantizedLinear"

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, scale={self.scale}, "
                f"zero_point={self.zero_point}, qscheme={self._weight.qscheme()}").replace("chainrule.", "torch.")

    def forward(self, x: Tensor) -> Tensor:
        kernels.refuse_float_input(x, "quantized::linear")
        flat = kernels.centred_input(x).reshape(-1, x.shape[-1])
        sums = flat @ kernels.centred_weight(self._weight).T
        if kernels.pair_sums_can_saturate(x):
            integers = x._data.reshape(-1, 1, x.shape[-1])
            sums += kernels.saturated_pair_excess(integers, self._weight._data[None])[:, 0]
        bias = None if self._bias is None else self._bias._data
        out = kernels.requantize(sums, 1, x.q_scale(), self._weight, bias, self.scale, self.zero_point,
                                 relu=self._relu)
        return out.reshape(*x.shape[:-1], self.out_features)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        """The quantized layer for a calibrated float ``mod`` (a Linear, or a LinearReLU whose first
        child is the Linear): its weight observed and quantized by ``mod.qconfig.weight``, its
        output scale and zero point from ``mod.activation_post_process``. A QAT layer brings its
        trained ``weight_fake_quant`` instead."""
        activation_observer = mod.activation_post_process
        if hasattr(mod, "weight_fake_quant"):
            linear, weight_observer = mod, mod.weight_fake_quant
        else:
            linear = mod[0] if cls._relu else mod
            weight_observer = mod.qconfig.weight()
        weight_observer(linear.weight)
        qlinear = cls(linear.in_features, linear.out_features, linear.bias is not None, dtype=weight_observer.dtype)
        qlinear.set_weight_bias(kernels.quantize_weight(linear.weight, weight_observer), linear.bias)
        scale, zero_point = activation_observer.calculate_qparams()
        qlinear.scale, qlinear.zero_point = float(scale._data[0]), int(zero_point._data[0])
        return qlinear

    # torch's layout: the output's scale and zero point as 0-d tensors, then the packed weight and bias
    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        destination[prefix + "scale"] = Tensor._make(np.array(self.scale, dtype=np.float32))
        destination[prefix + "zero_point"] = Tensor._make(np.array(self.zero_point, dtype=np.int64))
        destination[prefix + "_packed_params.dtype"] = self._dtype
        destination[prefix + "_packed_params._packed_params"] = (self._weight, self._bias)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        for key in ("scale", "zero_point", "_packed_params.dtype", "_packed_params._packed_params"):
            if prefix + key not in state_dict:
                if strict:
                    missing_keys.append(prefix + key)
                return
        self.scale = float(state_dict[prefix + "scale"])
        self.zero_point = int(state_dict[prefix + "zero_point"])
        self.set_weight_bias(*state_dict[prefix + "_packed_params._packed_params"])
