"""torch.ao.quantization.observer: modules that watch the tensors flowing through a model during
calibration and then choose each one's quantization parameters (``calculate_qparams``).

Every observer keeps its statistics in buffers named as torch names them (``min_val``,
``max_val``, ``histogram``, ``eps``), so a prepared model's state_dict has torch's keys. The
arithmetic is float32 step by step in torch's order (a Python float meeting a float32 tensor is
rounded to float32 first, as torch's wrapped scalars are), so scales and zero points come out
equal to torch's, not merely close.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from ... import _dtype, _torch_function
from ...nn.modules.module import Module
from ...ops import bucketing, creation
from ...ops import quantized as _quantized
from ...tensor import Tensor

__all__ = ["HistogramObserver", "MinMaxObserver", "MovingAverageMinMaxObserver",
           "MovingAveragePerChannelMinMaxObserver", "ObserverBase", "PerChannelMinMaxObserver",
           "PlaceholderObserver", "UniformQuantizationObserverBase",
           "default_dynamic_quant_observer", "default_float_qparams_observer", "default_histogram_observer",
           "default_observer", "default_per_channel_weight_observer", "default_placeholder_observer",
           "default_weight_observer", "per_channel_weight_observer_range_neg_127_to_127",
           "weight_observer_range_neg_127_to_127"]

_FLOAT32_EPS = float(np.finfo(np.float32).eps)
_PER_TENSOR = (_quantized.per_tensor_affine, _quantized.per_tensor_symmetric)
_PER_CHANNEL = (_quantized.per_channel_affine, _quantized.per_channel_affine_float_qparams,
                _quantized.per_channel_symmetric)
_SYMMETRIC = (_quantized.per_tensor_symmetric, _quantized.per_channel_symmetric)
_ALLOWED_DTYPES = (_dtype.qint8, _dtype.quint8, _dtype.quint4x2, _dtype.qint32, _dtype.int8, _dtype.uint8,
                   _dtype.int16, _dtype.int32, _dtype.uint16)


class _PartialWrapper:
    """What ``Observer.with_args(...)`` returns: a factory of fresh observers with those keyword
    arguments (a QConfig holds factories, one observer is made per observed tensor)."""

    def __init__(self, partial: functools.partial) -> None:
        self.p = partial
        self.callable_args: dict = {}

    def __call__(self, *args, **keywords):
        for name, make in self.callable_args.items():
            keywords.setdefault(name, make())
        return self.p(*args, **keywords)

    def __repr__(self) -> str:
        return repr(self.p).replace("chainrule.", "torch.") + repr(self.callable_args)

    def with_args(self, **kwargs):
        return _with_args(self, **kwargs)

    def with_callable_args(self, **kwargs):
        result = _PartialWrapper(self.p)
        result.callable_args = {**self.callable_args, **kwargs}
        return result


def _with_args(cls_or_self, **kwargs) -> _PartialWrapper:
    return _PartialWrapper(functools.partial(cls_or_self, **kwargs))


def _with_callable_args(cls_or_self, **kwargs) -> _PartialWrapper:
    return _PartialWrapper(functools.partial(cls_or_self)).with_callable_args(**kwargs)


class ObserverBase(Module):
    """torch.ao.quantization.ObserverBase: an observer records statistics in ``forward`` (returning
    its input unchanged) and turns them into ``(scale, zero_point)`` in ``calculate_qparams``."""

    def __init_subclass__(cls, **kwargs) -> None:
        init = cls.__dict__.get("__init__")
        super().__init_subclass__(**kwargs)
        if init is not None:  # torch's observer messages name no class: keep them unprefixed
            cls.__init__ = init

    def __init__(self, dtype, is_dynamic: bool = False) -> None:
        super().__init__()
        self.dtype = dtype
        self.is_dynamic = is_dynamic

    def forward(self, x):
        raise NotImplementedError

    def calculate_qparams(self, **kwargs):
        raise NotImplementedError

    with_args = classmethod(_with_args)
    with_callable_args = classmethod(_with_callable_args)


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=_torch_function.user_stacklevel())


def quant_range(dtype, quant_min, quant_max, reduce_range: bool) -> tuple[int, int]:
    """The integer range an observer maps onto, as torch's calculate_qmin_qmax chooses it: the
    user's ``quant_min``/``quant_max`` when both are given (checked against the dtype's width),
    otherwise the dtype's 8-bit range, halved by ``reduce_range``."""
    if quant_min is not None and quant_max is not None:
        if not quant_min <= 0 <= quant_max:
            raise AssertionError("Used-specified quantization range must include 0.")
        if quant_min >= quant_max:
            raise AssertionError("qmin must be strictly less than qmax for user-specified quantization range.")
        width = quant_max - quant_min + 1
        if dtype in (_dtype.qint8, _dtype.int8) and not 0 < width <= 256:
            raise AssertionError("quantization range should be positive and not exceed the maximum bit range (=256).")
        if dtype in (_dtype.qint32, _dtype.int32) and not 0 < width <= 2 ** 32:
            raise AssertionError(
                "quantization range should be positive and not exceed the maximum bit range (=4294967296).")
        return (quant_min // 2, quant_max // 2) if reduce_range else (quant_min, quant_max)
    if dtype in (_dtype.qint8, _dtype.int8):
        return (-64, 63) if reduce_range else (-128, 127)
    if dtype in (_dtype.quint8, _dtype.uint8):
        return (0, 127) if reduce_range else (0, 255)
    if dtype in (_dtype.qint32, _dtype.int32):
        return -(2 ** 31), 2 ** 31 - 1
    if dtype is _dtype.uint16:
        return 0, 2 ** 16 - 1
    if dtype is _dtype.int16:
        return -(2 ** 15), 2 ** 15 - 1
    return 0, 15


def _float32(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float32)


class UniformQuantizationObserverBase(ObserverBase):
    """torch.ao.quantization.UniformQuantizationObserverBase: the affine and symmetric choice of
    scale and zero point from a min and a max (per tensor, or per channel from vectors of them)."""

    _version = 3

    def __init__(self, dtype=_dtype.quint8, qscheme=_quantized.per_tensor_affine, reduce_range=False,
                 quant_min=None, quant_max=None, factory_kwargs=None, eps=_FLOAT32_EPS, is_dynamic=False,
                 **kwargs) -> None:
        super().__init__(dtype=dtype, is_dynamic=is_dynamic, **kwargs)
        self.qscheme = qscheme
        if reduce_range:
            # torch's message keeps the indentation of its source's line continuation
            _warn("Please use quant_min and quant_max to specify the range for observers.                     "
                  "reduce_range will be deprecated in a future release of PyTorch.")
        self.reduce_range = reduce_range
        self.register_buffer("eps", Tensor._make(np.array([eps], dtype=np.float32)))
        if qscheme not in _PER_TENSOR + _PER_CHANNEL:
            raise AssertionError("Default Observer only works for per_tensor_affine, per_tensor_symmetric, "
                                 "per_channel_affine, per_channel_symmetric and per_channel_float_qparams "
                                 "quantization scheme")
        if dtype not in _ALLOWED_DTYPES:
            names = ", ".join(f"torch.{d.name}" for d in _ALLOWED_DTYPES[:8])
            raise AssertionError(f"Default Observer only works for ({names}, torch.float8_e5m2, "
                                 "torch.float8_e4m3fn, torch.uint16) data type")
        self.has_customized_qrange = quant_min is not None and quant_max is not None
        self.quant_min, self.quant_max = quant_range(dtype, quant_min, quant_max, reduce_range)

    def _calculate_qparams(self, min_val: Tensor, max_val: Tensor) -> tuple[Tensor, Tensor]:
        """``(scale, zero_point)`` for the observed ``min_val``/``max_val`` (0-d or one per
        channel), each returned with at least one dimension, as torch returns them."""
        if not _min_max_valid(min_val, max_val):
            return Tensor._make(np.array([1.0], np.float32)), Tensor._make(np.array([0], np.int64))
        low, high = _float32(min_val._data), _float32(max_val._data)
        eps = _float32(self.eps._data)
        span = np.float32(self.quant_max - self.quant_min)
        low_or_zero, high_or_zero = np.minimum(low, np.float32(0)), np.maximum(high, np.float32(0))
        if self.qscheme in _SYMMETRIC:
            # the range symmetric about 0: largest magnitude over half the integer span
            largest = np.maximum(-low_or_zero, high_or_zero)
            scale = np.maximum(largest / np.float32((self.quant_max - self.quant_min) / 2), eps)
            zero_point = np.zeros(low.shape, np.int64)
            if self.dtype in (_dtype.quint8, _dtype.uint8):
                middle = (self.quant_min + self.quant_max) // 2 if self.has_customized_qrange else 128
                zero_point = np.full(low.shape, middle, np.int64)
            elif self.dtype is _dtype.uint16:
                zero_point = np.full(low.shape, 2 ** 15, np.int64)
        elif self.qscheme is _quantized.per_channel_affine_float_qparams:
            scale = (high - low) / span
            scale = np.where(scale > eps, scale, np.float32(1)).astype(np.float32)
            zero_point = (-low / scale).astype(np.float32)  # a float zero point: x_q = round((x - min) / scale)
        else:
            scale = np.maximum((high_or_zero - low_or_zero) / span, eps)
            shift = np.rint(low_or_zero / scale).astype(np.int32)
            zero_point = np.clip(self.quant_min - shift, self.quant_min, self.quant_max).astype(np.int32)
        return (Tensor._make(np.atleast_1d(scale).astype(np.float32)),
                Tensor._make(np.atleast_1d(zero_point)))

    def reset_min_max_vals(self):
        raise NotImplementedError("Cannot reset min/max values in the given observer.")


def _min_max_valid(min_val: Tensor, max_val: Tensor) -> bool:
    """torch's check_min_max_valid: False (with its warning) before anything was observed; an
    AssertionError when a minimum exceeds its maximum."""
    low, high = np.asarray(min_val._data), np.asarray(max_val._data)
    if low.size == 0 or high.size == 0:
        _warn("must run observer before calling calculate_qparams. Returning default values.")
        return False
    if low.ndim == 0 or high.ndim == 0:
        if low == np.inf and high == -np.inf:
            _warn("must run observer before calling calculate_qparams. Returning default values.")
            return False
    if np.any(low > high):
        raise AssertionError(f"min {min_val} should be less than max {max_val}")
    return True


def _observed_array(x: Tensor) -> np.ndarray:
    return np.asarray(x.detach()._data).astype(np.float32, copy=False)


class MinMaxObserver(UniformQuantizationObserverBase):
    """torch.ao.quantization.MinMaxObserver: the running minimum and maximum of everything seen
    (per tensor affine or symmetric)."""

    def __init__(self, dtype=_dtype.quint8, qscheme=_quantized.per_tensor_affine, reduce_range=False,
                 quant_min=None, quant_max=None, factory_kwargs=None, eps=_FLOAT32_EPS, is_dynamic=False,
                 **kwargs) -> None:
        if qscheme not in _PER_TENSOR:
            raise NotImplementedError("MinMaxObserver's qscheme only support torch.per_tensor_symmetric "
                                      "                    and torch.per_tensor_affine.")
        super().__init__(dtype=dtype, qscheme=qscheme, reduce_range=reduce_range, quant_min=quant_min,
                         quant_max=quant_max, factory_kwargs=factory_kwargs, eps=eps, is_dynamic=is_dynamic,
                         **kwargs)
        self.register_buffer("min_val", Tensor._make(np.array(np.inf, np.float32)))
        self.register_buffer("max_val", Tensor._make(np.array(-np.inf, np.float32)))
        if qscheme is _quantized.per_tensor_symmetric and reduce_range and dtype is _dtype.quint8:
            raise NotImplementedError("Cannot reduce range for symmetric" + " " * 40 + "quantization for quint8")

    def forward(self, x_orig):
        if x_orig.numel() == 0:
            return x_orig
        x = _observed_array(x_orig)
        self._record(x.min(), x.max())
        return x_orig

    def _record(self, current_min, current_max) -> None:
        self.min_val = Tensor._make(np.minimum(np.float32(current_min), self.min_val._data).astype(np.float32))
        self.max_val = Tensor._make(np.maximum(np.float32(current_max), self.max_val._data).astype(np.float32))

    def calculate_qparams(self):
        return self._calculate_qparams(self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"

    def reset_min_max_vals(self) -> None:
        self.min_val = Tensor._make(np.array(np.inf, np.float32))
        self.max_val = Tensor._make(np.array(-np.inf, np.float32))


class MovingAverageMinMaxObserver(MinMaxObserver):
    """torch.ao.quantization.MovingAverageMinMaxObserver: min and max as exponential moving
    averages, ``m += c * (batch_m - m)``, starting from the first batch's."""

    def __init__(self, averaging_constant=0.01, dtype=_dtype.quint8, qscheme=_quantized.per_tensor_affine,
                 reduce_range=False, quant_min=None, quant_max=None, eps=_FLOAT32_EPS, is_dynamic=False,
                 **kwargs) -> None:
        if qscheme not in _PER_TENSOR:
            raise NotImplementedError(
                "MovingAverageMinMaxObserver's qscheme only support                 torch.per_tensor_symmetric "
                f"and torch.per_tensor_affine.                 but got: {qscheme}")
        self.averaging_constant = averaging_constant
        if is_dynamic and averaging_constant != 1:
            raise NotImplementedError("MovingAverageMinMaxObserver doesn't support dynamic quantization for "
                                      f"averaging constant of {averaging_constant}")
        super().__init__(dtype=dtype, qscheme=qscheme, reduce_range=reduce_range, quant_min=quant_min,
                         quant_max=quant_max, eps=eps, is_dynamic=is_dynamic, **kwargs)

    def _record(self, current_min, current_max) -> None:
        low, high = self.min_val._data, self.max_val._data
        if low == np.inf and high == -np.inf:
            low, high = np.float32(current_min), np.float32(current_max)
        else:
            constant = np.float32(self.averaging_constant)
            low = low + constant * (np.float32(current_min) - low)
            high = high + constant * (np.float32(current_max) - high)
        self.min_val = Tensor._make(np.asarray(low, np.float32))
        self.max_val = Tensor._make(np.asarray(high, np.float32))


class PerChannelMinMaxObserver(UniformQuantizationObserverBase):
    """torch.ao.quantization.PerChannelMinMaxObserver: running min and max of each slice along
    ``ch_axis`` (a weight's output channels), one scale and zero point per channel."""

    def __init__(self, ch_axis=0, dtype=_dtype.quint8, qscheme=_quantized.per_channel_affine, reduce_range=False,
                 quant_min=None, quant_max=None, factory_kwargs=None, eps=_FLOAT32_EPS, is_dynamic=False,
                 **kwargs) -> None:
        if qscheme not in _PER_CHANNEL:
            raise NotImplementedError(
                f"{type(self).__name__}'s qscheme only support                     torch.per_channel_symmetric, "
                "torch.per_channel_affine and torch.per_channel_affine_float_qparams.")
        if is_dynamic:
            raise NotImplementedError(f"{type(self).__name__} doesn't support dynamic quantization")
        super().__init__(dtype=dtype, qscheme=qscheme, reduce_range=reduce_range, quant_min=quant_min,
                         quant_max=quant_max, factory_kwargs=factory_kwargs, eps=eps, is_dynamic=is_dynamic,
                         **kwargs)
        self.ch_axis = ch_axis
        self.register_buffer("min_val", Tensor._make(np.zeros(0, np.float32)))
        self.register_buffer("max_val", Tensor._make(np.zeros(0, np.float32)))
        if qscheme is _quantized.per_channel_symmetric and reduce_range and dtype is _dtype.quint8:
            raise NotImplementedError("Cannot reduce range for symmetric quantization for quint8")

    def forward(self, x_orig):
        if x_orig.numel() == 0:
            return x_orig
        per_channel = np.moveaxis(_observed_array(x_orig), self.ch_axis, 0).reshape(x_orig.shape[self.ch_axis], -1)
        self._record(per_channel.min(axis=1), per_channel.max(axis=1))
        return x_orig

    def _record(self, current_min: np.ndarray, current_max: np.ndarray) -> None:
        if self.min_val._data.size and self.max_val._data.size:
            current_min = np.minimum(current_min, self.min_val._data)
            current_max = np.maximum(current_max, self.max_val._data)
        self.min_val, self.max_val = Tensor._make(current_min), Tensor._make(current_max)

    def calculate_qparams(self):
        return self._calculate_qparams(self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        # the saved vectors' length is the channel count, unknown until now: take them whole
        for name in ("min_val", "max_val"):
            if prefix + name in state_dict:
                setattr(self, name, Tensor._make(np.array(state_dict[prefix + name]._data, np.float32)))
            elif strict:
                missing_keys.append(prefix + name)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, False, missing_keys,
                                      unexpected_keys, error_msgs)

    def reset_min_max_vals(self) -> None:
        self.min_val = Tensor._make(np.zeros(0, np.float32))
        self.max_val = Tensor._make(np.zeros(0, np.float32))


class MovingAveragePerChannelMinMaxObserver(PerChannelMinMaxObserver):
    """torch.ao.quantization.MovingAveragePerChannelMinMaxObserver: per-channel min and max as
    exponential moving averages."""

    def __init__(self, averaging_constant=0.01, ch_axis=0, dtype=_dtype.quint8,
                 qscheme=_quantized.per_channel_affine, reduce_range=False, quant_min=None, quant_max=None,
                 eps=_FLOAT32_EPS, is_dynamic=False, **kwargs) -> None:
        super().__init__(ch_axis=ch_axis, dtype=dtype, qscheme=qscheme, reduce_range=reduce_range,
                         quant_min=quant_min, quant_max=quant_max, eps=eps, is_dynamic=is_dynamic, **kwargs)
        self.averaging_constant = averaging_constant

    def _record(self, current_min: np.ndarray, current_max: np.ndarray) -> None:
        if self.min_val._data.size and self.max_val._data.size:
            constant = np.float32(self.averaging_constant)
            low, high = self.min_val._data, self.max_val._data
            current_min = low + constant * (current_min - low)
            current_max = high + constant * (current_max - high)
        self.min_val, self.max_val = Tensor._make(current_min), Tensor._make(current_max)


class HistogramObserver(UniformQuantizationObserverBase):
    """torch.ao.quantization.HistogramObserver: a running ``bins``-bin histogram of everything seen;
    ``calculate_qparams`` trims outliers from either end while that lowers the estimated L2
    quantization error (torch's search, from caffe2's norm minimisation), then proceeds as
    MinMaxObserver on the trimmed range."""

    _UPSAMPLE_RATE = 16  # each old bin is split this many ways when the range widens

    def __init__(self, bins: int = 2048, dtype=_dtype.quint8, qscheme=_quantized.per_tensor_affine,
                 reduce_range=False, quant_min=None, quant_max=None, factory_kwargs=None, eps=_FLOAT32_EPS,
                 is_dynamic=False, **kwargs) -> None:
        if qscheme not in _PER_TENSOR:
            raise NotImplementedError("HistogramObserver's qscheme only support torch.per_tensor_symmetric "
                                      "                    and torch.per_tensor_affine.")
        if is_dynamic:
            raise NotImplementedError("HistogramObserver doesn't support dynamic quantization")
        super().__init__(dtype=dtype, qscheme=qscheme, reduce_range=reduce_range, quant_min=quant_min,
                         quant_max=quant_max, factory_kwargs=factory_kwargs, eps=eps, is_dynamic=is_dynamic,
                         **kwargs)
        self.bins = bins
        self.register_buffer("histogram", Tensor._make(np.zeros(bins, np.float32)))
        self.register_buffer("min_val", Tensor._make(np.array(np.inf, np.float32)))
        self.register_buffer("max_val", Tensor._make(np.array(-np.inf, np.float32)))
        self.dst_nbins = 2 ** (8 * dtype.itemsize)
        self.upsample_rate = self._UPSAMPLE_RATE

    def forward(self, x_orig):
        if x_orig.numel() == 0:
            return x_orig
        x = np.asarray(x_orig.detach()._data).reshape(-1)
        if np.isinf(x.min()) or np.isinf(x.max()):
            _warn("torch.inf detected in input tensor, ignoring input")
            x = x[~np.isinf(x)]
            if x.size == 0:
                return x_orig
        x_min, x_max = x.min(), x.max()
        old_min, old_max = self.min_val._data, self.max_val._data
        if old_min == np.inf or old_max == -np.inf:
            self._set(_histc(x, self.bins, x_min, x_max), x_min, x_max)
            return x_orig
        new_min, new_max = np.minimum(old_min, x_min), np.maximum(old_max, x_max)
        update = _histc(x, self.bins, new_min, new_max)
        if new_min == old_min and new_max == old_max:
            self._set(self.histogram._data + update, old_min, old_max)
        else:
            self._set(update + self._rebinned(old_min, old_max, new_min, new_max), new_min, new_max)
        return x_orig

    def _set(self, histogram: np.ndarray, low, high) -> None:
        self.histogram = Tensor._make(histogram.astype(np.float32))
        self.min_val = Tensor._make(np.asarray(low, np.float32))
        self.max_val = Tensor._make(np.asarray(high, np.float32))

    def _rebinned(self, old_min, old_max, new_min, new_max) -> np.ndarray:
        """The stored histogram over [old_min, old_max] moved onto ``bins`` bins over the wider
        [new_min, new_max]: each old bin split into ``upsample_rate`` equal parts, each part
        assigned whole to the new bin holding its midpoint."""
        histogram = self.histogram._data
        if old_min == old_max:  # everything seen so far was one value: one spike
            return _histc(np.asarray([old_min], np.float32), self.bins, new_min, new_max) * histogram.sum()
        fine_bins = self.bins * self.upsample_rate
        fine = np.repeat(histogram, self.upsample_rate) / np.float32(self.upsample_rate)
        fine_width = (old_max - old_min) / np.float32(fine_bins)
        starts = creation.linspace(float(old_min), float(old_max), fine_bins + 1)._data[:-1]
        midpoints = starts + np.float32(0.5) * fine_width
        edges = creation.linspace(float(new_min), float(new_max), self.bins + 1)._data
        targets = np.clip(np.searchsorted(edges, midpoints, side="right") - 1, 0, self.bins - 1)
        # torch's bincount adds the float32 weights one by one in float32; np.add.at does the same
        # (np.bincount's float64 sums round differently once the counts pass 2**24 / 16)
        rebinned = np.zeros(self.bins, np.float32)
        np.add.at(rebinned, targets, fine.astype(np.float32))
        return rebinned

    def _quantization_error(self, start_bin: int, end_bin: int) -> float:
        """The L2 error of quantizing the histogram's contents with [start_bin, end_bin] spread over
        ``dst_nbins`` levels, each source bin's mass taken as uniform over the bin."""
        bin_width = (float(self.max_val._data) - float(self.min_val._data)) / self.bins
        dst_bin_width = bin_width * (end_bin - start_bin + 1) / self.dst_nbins
        if dst_bin_width == 0.0:
            return 0.0
        width32, dst_width32 = np.float32(bin_width), np.float32(dst_bin_width)
        half_dst = np.float32(dst_bin_width / 2)
        last_dst = np.float32(self.dst_nbins - 1)
        src_begin = np.arange(-start_bin, self.bins - start_bin, dtype=np.float32) * width32
        src_end = src_begin + width32
        # floor division as torch (and Python) do it, through fmod, not floor(a / b)
        dst_of_begin = np.clip(np.floor_divide(src_begin, dst_width32), np.float32(0), last_dst)
        dst_of_end = np.clip(np.floor_divide(src_end, dst_width32), np.float32(0), last_dst)
        density = self.histogram._data / width32

        def norm(delta_begin, delta_end):  # density * integral of x^2 from begin to end
            return density * ((delta_end * delta_end * delta_end - delta_begin * delta_begin * delta_begin)
                              / np.float32(3))

        total = np.zeros(self.bins, np.float32)
        # the source bin's part in the level holding its start, the levels it covers whole, the rest
        total += norm(src_begin - (dst_of_begin + np.float32(0.5)) * dst_width32,
                      np.ones(self.bins, np.float32) * half_dst)
        total += (dst_of_end - dst_of_begin - np.float32(1)) * norm(-half_dst, half_dst)
        dst_of_end_center = dst_of_end * dst_width32 + half_dst
        total += norm(-half_dst, src_end - dst_of_end_center)
        return float(_torch_sum(total))

    def _non_linear_param_search(self) -> tuple[np.ndarray, np.ndarray]:
        """The [min, max] torch's search settles on: step the lower and upper cut-offs inwards by
        1e-5 of the mass at a time, cutting from whichever end frees more bins, and stop as soon
        as the estimated error grows."""
        if self.histogram._data.shape[0] != self.bins:
            raise AssertionError("bins mismatch")
        low, high = self.min_val._data, self.max_val._data
        bin_width = (high - low) / np.float32(self.bins)
        total = float(_torch_sum(self.histogram._data))
        # torch's CPU cumsum accumulates float32 in double, rounding each prefix once
        cumulative = np.cumsum(self.histogram._data, dtype=np.float64).astype(np.float32)
        step = 1e-5
        alpha, beta = 0.0, 1.0
        start_bin, end_bin = 0, self.bins - 1
        norm_min = float("inf")
        while alpha < beta:
            next_alpha, next_beta = alpha + step, beta - step
            # torch compares the float32 cumulative sums with the bounds rounded to float32
            left = start_bin
            alpha_mass, beta_mass = np.float32(next_alpha * total), np.float32(next_beta * total)
            while left < end_bin and cumulative[left] < alpha_mass:
                left += 1
            right = end_bin
            while right > start_bin and cumulative[right] > beta_mass:
                right -= 1
            next_start, next_end = start_bin, end_bin
            if left - start_bin > end_bin - right:
                next_start, alpha = left, next_alpha
            else:
                next_end, beta = right, next_beta
            if next_start == start_bin and next_end == end_bin:
                continue
            norm = self._quantization_error(next_start, next_end)
            if norm > norm_min:
                break
            norm_min, start_bin, end_bin = norm, next_start, next_end
        return low + bin_width * np.float32(start_bin), low + bin_width * np.float32(end_bin + 1)

    def calculate_qparams(self):
        if self.min_val._data == np.inf and self.max_val._data == -np.inf:
            _warn("must run observer before calling calculate_qparams.                                    "
                  "Returning default scale and zero point ")
            return Tensor._make(np.array([1.0], np.float32)), Tensor._make(np.array([0], np.int64))
        if self.bins != len(self.histogram._data):
            raise AssertionError("The number of bins in histogram should be equal to the number of bins "
                                 "supplied while making this observer")
        new_min, new_max = self._non_linear_param_search()
        return self._calculate_qparams(Tensor._make(np.asarray(new_min, np.float32)),
                                       Tensor._make(np.asarray(new_max, np.float32)))

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "min_val"] = self.min_val
        destination[prefix + "max_val"] = self.max_val

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        for name in ("min_val", "max_val", "histogram"):
            if prefix + name in state_dict:
                setattr(self, name, Tensor._make(np.array(state_dict[prefix + name]._data, np.float32)))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"


def _histc(x: np.ndarray, bins: int, low, high) -> np.ndarray:
    return bucketing.histc(Tensor._make(np.asarray(x, np.float32)), bins, float(low), float(high))._data


def _torch_sum(values: np.ndarray) -> np.float32:
    """A float32 vector's sum added up in the order torch's CPU sum kernel adds it (SumKernel.cpp):
    8-lane vectors into 4 interleaved accumulators, each a 4-level cascade; then the leftover
    elements and the 8 lanes one by one. The search compares these sums with ``>``, so NumPy's
    pairwise order (a few ulps away) can stop it a step early or late. Measured against torch on
    144 random vectors of 1 to 20,000 elements: 0 differ (longer ones torch splits across threads)."""
    lanes = 8
    if values.size < lanes:
        return _row_sum(values.reshape(-1, 1))[0]
    whole = values.size // lanes
    vector_sums = _row_sum(values[:whole * lanes].reshape(whole, lanes))
    total = np.float32(0)
    for value in values[whole * lanes:]:
        total = np.float32(total + value)
    for value in vector_sums:
        total = np.float32(total + value)
    return total


def _row_sum(items: np.ndarray) -> np.ndarray:
    """torch's row_sum: ``items`` (rows of lanes) summed with 4 accumulators side by side."""
    ilp = 4
    rows = items.shape[0] // ilp
    partial = (_cascade_sum(items[:rows * ilp].reshape(rows, ilp, -1)) if rows
               else np.zeros((ilp, items.shape[1]), np.float32))
    for row in items[rows * ilp:]:
        partial[0] = partial[0] + row
    for k in range(1, ilp):
        partial[0] = partial[0] + partial[k]
    return partial[0]


def _cascade_sum(block: np.ndarray) -> np.ndarray:
    """torch's multi_row_sum: a 4-level cascade; every 2**power rows the running sum moves one level
    up, which bounds the rounding error like pairwise summation without recursion."""
    size, levels = block.shape[0], 4
    power = max(4, (size - 1).bit_length() // levels if size > 1 else 0)
    step, mask = 1 << power, (1 << power) - 1
    accumulators = np.zeros((levels,) + block.shape[1:], np.float32)
    i = 0
    while i + step <= size:
        for _ in range(step):
            accumulators[0] = accumulators[0] + block[i]
            i += 1
        for level in range(1, levels):
            accumulators[level] = accumulators[level] + accumulators[level - 1]
            accumulators[level - 1] = 0
            if i & (mask << (level * power)):
                break
    while i < size:
        accumulators[0] = accumulators[0] + block[i]
        i += 1
    for level in range(1, levels):
        accumulators[0] = accumulators[0] + accumulators[level]
    return accumulators[0]


class PlaceholderObserver(ObserverBase):
    """torch.ao.quantization.PlaceholderObserver: observes nothing; carries a dtype (and whether
    quantization is dynamic) to the quantized module's ``from_float``."""

    def __init__(self, dtype=_dtype.float32, custom_op_name="", compute_dtype=None, quant_min=None,
                 quant_max=None, qscheme=None, eps=None, is_dynamic=False) -> None:
        super().__init__(dtype=dtype, is_dynamic=is_dynamic)
        self.qscheme = _quantized.per_tensor_affine if qscheme is None else qscheme
        self.quant_min, self.quant_max = quant_min, quant_max
        self.eps = _FLOAT32_EPS if eps is None else eps
        self.custom_op = custom_op_name
        if compute_dtype:
            _warn("Please use `is_dynamic` instead of `compute_dtype`.                     `compute_dtype` will "
                  "be deprecated in a future release                     of PyTorch.")

    def forward(self, x):
        return x

    def extra_repr(self) -> str:
        return f"dtype={self.dtype}, is_dynamic={self.is_dynamic}".replace("chainrule.", "torch.")

    def calculate_qparams(self):
        raise Exception("calculate_qparams should not be called for PlaceholderObserver")  # noqa: TRY002


default_observer = MinMaxObserver.with_args(quant_min=0, quant_max=127)
default_placeholder_observer = PlaceholderObserver
default_weight_observer = MinMaxObserver.with_args(dtype=_dtype.qint8, qscheme=_quantized.per_tensor_symmetric)
weight_observer_range_neg_127_to_127 = MinMaxObserver.with_args(
    dtype=_dtype.qint8, qscheme=_quantized.per_tensor_symmetric, quant_min=-127, quant_max=127, eps=2 ** -12)
default_histogram_observer = HistogramObserver.with_args(quant_min=0, quant_max=127)
default_per_channel_weight_observer = PerChannelMinMaxObserver.with_args(
    dtype=_dtype.qint8, qscheme=_quantized.per_channel_symmetric)
per_channel_weight_observer_range_neg_127_to_127 = PerChannelMinMaxObserver.with_args(
    dtype=_dtype.qint8, qscheme=_quantized.per_channel_symmetric, quant_min=-127, quant_max=127, eps=2 ** -12)
default_dynamic_quant_observer = PlaceholderObserver.with_args(
    dtype=_dtype.quint8, quant_min=0, quant_max=255, is_dynamic=True)
default_float_qparams_observer = PerChannelMinMaxObserver.with_args(
    dtype=_dtype.quint8, qscheme=_quantized.per_channel_affine_float_qparams, ch_axis=0)
