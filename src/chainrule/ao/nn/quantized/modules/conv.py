"""torch.ao.nn.quantized.Conv2d: a static quantized 2-d convolution (quint8 in, quint8 out)."""

from __future__ import annotations

import numpy as np

from ..... import _dtype
from .....nn import functional as F
from .....nn.modules.utils import _pair
from .....ops import quantized as _quantized
from .....tensor import Tensor
from . import kernels

__all__ = ["Conv2d"]


class Conv2d(kernels.WeightedLayer):
    """torch.ao.nn.quantized.Conv2d: a convolution of a quint8 (N, C, H, W) input with an int8
    weight (per tensor or per output channel), stored with the output ``scale``/``zero_point``."""

    _version = 3
    _relu = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None) -> None:
        super().__init__()
        if padding_mode != "zeros":
            raise NotImplementedError(f"chainrule's quantized Conv2d supports padding_mode='zeros', got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding, self.dilation = _pair(padding), _pair(dilation)
        self.output_padding, self.transposed, self.padding_mode = (0, 0), False, padding_mode
        weight = _quantized.make_quantized(
            np.zeros((out_channels, in_channels // groups, *self.kernel_size), np.int8), _dtype.qint8,
            _quantized.per_tensor_affine, 1.0, 0)
        self.set_weight_bias(weight, Tensor._make(np.zeros(out_channels, np.float32)) if bias else None)
        self.scale, self.zero_point = 1.0, 0

    def _get_name(self) -> str:
        return "QuantizedConv2d"

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"scale={self.scale}, zero_point={self.zero_point}")
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self._bias is None:
            text += ", bias=False"
        return text

    def forward(self, input: Tensor) -> Tensor:
        if input.dim() != 4:
            raise ValueError("Input shape must be `(N, C, H, W)`!")
        kernels.refuse_float_input(input, "quantized::conv2d.new")
        sums = F.conv2d(Tensor._make(kernels.centred_input(input)), Tensor._make(kernels.centred_weight(self._weight)),
                        None, self.stride, self.padding, self.dilation, self.groups)._data
        if kernels.pair_sums_can_saturate(input):
            batch, _, height, width = sums.shape
            excess = kernels.saturated_pair_excess(self._input_patches(input), self._grouped_weight())
            sums += excess.reshape(batch, height, width, self.out_channels).transpose(0, 3, 1, 2)
        bias = None if self._bias is None else self._bias._data
        return kernels.requantize(sums, 1, input.q_scale(), self._weight, bias, self.scale, self.zero_point,
                                  relu=self._relu)

    def _input_patches(self, input: Tensor) -> np.ndarray:
        """The raw uint8 input under each output position, as fbgemm's NHWC im2col lays it out:
        (positions, groups, kh * kw * in-channels of the group), in-channel fastest, the padding
        filled with the input's zero point."""
        (pad_h, pad_w), (kernel_h, kernel_w) = self.padding, self.kernel_size
        (dilation_h, dilation_w), (stride_h, stride_w) = self.dilation, self.stride
        padded = np.pad(input._data, ((0, 0), (0, 0), (pad_h, pad_h), (pad_w, pad_w)),
                        constant_values=input.q_zero_point()).transpose(0, 2, 3, 1)
        windows = np.lib.stride_tricks.sliding_window_view(
            padded, ((kernel_h - 1) * dilation_h + 1, (kernel_w - 1) * dilation_w + 1), axis=(1, 2))
        windows = windows[:, ::stride_h, ::stride_w, :, ::dilation_h, ::dilation_w]  # N, OH, OW, C, KH, KW
        batch, out_h, out_w = windows.shape[:3]
        group_channels = self.in_channels // self.groups
        windows = windows.reshape(batch, out_h, out_w, self.groups, group_channels, kernel_h, kernel_w)
        return windows.transpose(0, 1, 2, 3, 5, 6, 4).reshape(batch * out_h * out_w, self.groups,
                                                               kernel_h * kernel_w * group_channels)

    def _grouped_weight(self) -> np.ndarray:
        """The raw int8 weight as (groups, out-channels of the group, kh * kw * in-channels), in
        the order of ``_input_patches``."""
        weight = self._weight._data.transpose(0, 2, 3, 1)
        return weight.reshape(self.groups, self.out_channels // self.groups, -1)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        """The quantized layer for a calibrated float ``mod`` (a Conv2d, or a ConvReLU2d whose first
        child is the Conv2d): weight quantized by ``mod.qconfig.weight``, output parameters from
        ``mod.activation_post_process``. A QAT layer brings its trained ``weight_fake_quant``
        instead, and a QAT ConvBn2d first folds its BatchNorm's running statistics into the weight."""
        from ...intrinsic import qat as _intrinsic_qat

        activation_observer = mod.activation_post_process
        if hasattr(mod, "weight_fake_quant"):
            if isinstance(mod, _intrinsic_qat.ConvBn2d):
                mod.weight, mod.bias = mod.fold_bn_weights()
            conv, weight_observer = mod, mod.weight_fake_quant
        else:
            conv = mod[0] if cls._relu else mod
            weight_observer = mod.qconfig.weight()
        weight_observer(conv.weight)
        qconv = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                    conv.groups, conv.bias is not None, conv.padding_mode)
        qconv.set_weight_bias(kernels.quantize_weight(conv.weight, weight_observer), conv.bias)
        scale, zero_point = activation_observer.calculate_qparams()
        qconv.scale, qconv.zero_point = float(scale._data[0]), int(zero_point._data[0])
        return qconv

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        destination[prefix + "weight"] = self._weight
        destination[prefix + "bias"] = self._bias
        destination[prefix + "scale"] = Tensor._make(np.array(self.scale, dtype=np.float32))
        destination[prefix + "zero_point"] = Tensor._make(np.array(self.zero_point, dtype=np.int64))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        for key in ("weight", "bias", "scale", "zero_point"):
            if prefix + key not in state_dict:
                if strict:
                    missing_keys.append(prefix + key)
                return
        self.set_weight_bias(state_dict[prefix + "weight"], state_dict[prefix + "bias"])
        self.scale = float(state_dict[prefix + "scale"])
        self.zero_point = int(state_dict[prefix + "zero_point"])
