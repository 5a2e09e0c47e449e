"""torch.ao.quantization.fake_quantize: modules that, during quantization-aware training, observe
a tensor and round it onto the integer grid and back (fake quantization), so the float model
trains against the error the quantized one will make; the straight-through gradient passes
where nothing was clamped.

FakeQuantize asks its observer for scale and zero point as post-training quantization would;
FusedMovingAvgObsFakeQuantize (what torch's default QAT qconfigs build) does the moving average
and the choice of scale and zero point in one step, with torch's C++ rule for them, which is not
the observer's (see _choose_qparams)."""

from __future__ import annotations

import numpy as np

from ... import _dtype
from ...nn.modules.module import Module
from ...ops import fake_quantize as _fake_quantize
from ...ops import quantized as _quantized
from ...tensor import Tensor
from .observer import (
    HistogramObserver,
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
    _with_args,
)

__all__ = ["FakeQuantize", "FakeQuantizeBase", "FusedMovingAvgObsFakeQuantize",
           "default_dynamic_fake_quant", "default_fake_quant", "default_fused_act_fake_quant",
           "default_fused_per_channel_wt_fake_quant", "default_fused_wt_fake_quant", "default_histogram_fake_quant",
           "default_per_channel_weight_fake_quant", "default_weight_fake_quant", "disable_fake_quant",
           "disable_observer", "enable_fake_quant", "enable_observer",
           "fused_per_channel_wt_fake_quant_range_neg_127_to_127", "fused_wt_fake_quant_range_neg_127_to_127"]

_PER_CHANNEL = (_quantized.per_channel_symmetric, _quantized.per_channel_affine,
                _quantized.per_channel_affine_float_qparams)
_PER_TENSOR = (_quantized.per_tensor_symmetric, _quantized.per_tensor_affine)
_SYMMETRIC = (_quantized.per_tensor_symmetric, _quantized.per_channel_symmetric)
# torch.iinfo of the dtypes a fake quantizer may emulate
_INTEGER_RANGE = {_dtype.quint8: (0, 255), _dtype.qint8: (-128, 127), _dtype.qint32: (-(2 ** 31), 2 ** 31 - 1),
                  _dtype.uint8: (0, 255), _dtype.int8: (-128, 127), _dtype.int16: (-(2 ** 15), 2 ** 15 - 1),
                  _dtype.int32: (-(2 ** 31), 2 ** 31 - 1), _dtype.uint16: (0, 2 ** 16 - 1),
                  _dtype.quint4x2: (0, 15)}


class FakeQuantizeBase(Module):
    """torch.ao.quantization.FakeQuantizeBase: the two switches every fake quantizer has,
    ``fake_quant_enabled`` and ``observer_enabled`` (one-element uint8 buffers, so they travel in
    the state_dict)."""

    def __init_subclass__(cls, **kwargs) -> None:
        init = cls.__dict__.get("__init__")
        super().__init_subclass__(**kwargs)
        if init is not None:  # torch's messages name no class: keep them unprefixed
            cls.__init__ = init

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("fake_quant_enabled", Tensor._make(np.array([1], np.uint8)))
        self.register_buffer("observer_enabled", Tensor._make(np.array([1], np.uint8)))

    def forward(self, x):
        raise NotImplementedError

    def calculate_qparams(self, **kwargs):
        raise NotImplementedError

    def enable_fake_quant(self, enabled: bool = True) -> None:
        self.fake_quant_enabled[0] = 1 if enabled else 0

    def disable_fake_quant(self) -> None:
        self.enable_fake_quant(False)

    def enable_observer(self, enabled: bool = True) -> None:
        self.observer_enabled[0] = 1 if enabled else 0

    def disable_observer(self) -> None:
        self.enable_observer(False)

    @classmethod
    def with_args(cls, **kwargs):
        return _with_args(cls, **kwargs)


class FakeQuantize(FakeQuantizeBase):
    """torch.ao.quantization.FakeQuantize: ``forward`` updates the observer (when
    ``observer_enabled``), copies its scale and zero point into this module's buffers, and returns
    ``(clamp(round(x / scale) + zero_point, quant_min, quant_max) - zero_point) * scale`` (when
    ``fake_quant_enabled``; otherwise ``x`` itself)."""

    def __init__(self, observer=MovingAverageMinMaxObserver, quant_min=None, quant_max=None, is_dynamic=False,
                 **observer_kwargs) -> None:
        super().__init__()
        if quant_min is not None and quant_max is not None:
            if quant_min > quant_max:
                raise AssertionError("quant_min must be less than or equal to quant_max")
            dtype = observer_kwargs.get("dtype", _dtype.quint8)
            if hasattr(observer, "p"):  # a with_args factory may name the dtype itself
                dtype = observer.p.keywords.get("dtype", dtype)
            low, high = _INTEGER_RANGE[dtype]
            if low > quant_min:
                raise AssertionError("quant_min out of bound")
            if quant_max > high:
                raise AssertionError("quant_max out of bound")
            observer_kwargs.update({"quant_min": quant_min, "quant_max": quant_max})
        observer_kwargs["is_dynamic"] = is_dynamic
        self.activation_post_process = observer(**observer_kwargs)
        self.quant_min = self.activation_post_process.quant_min
        self.quant_max = self.activation_post_process.quant_max
        self.is_dynamic = self.activation_post_process.is_dynamic
        float_qparams = self.activation_post_process.qscheme is _quantized.per_channel_affine_float_qparams
        self.register_buffer("scale", Tensor._make(np.array([1.0], np.float32)))
        self.register_buffer("zero_point", Tensor._make(np.array([0], np.float32 if float_qparams else np.int32)))
        self.dtype = self.activation_post_process.dtype
        self.qscheme = self.activation_post_process.qscheme
        self.ch_axis = getattr(self.activation_post_process, "ch_axis", -1)
        if self.qscheme not in _PER_CHANNEL + _PER_TENSOR:
            raise AssertionError("Only per channel and per tensor quantization are supported in fake quantize"
                                 f" got qscheme: {self.qscheme}")
        self.is_per_channel = self.qscheme in _PER_CHANNEL

    def calculate_qparams(self):
        return self.activation_post_process.calculate_qparams()

    def _store_qparams(self, scale: np.ndarray, zero_point: np.ndarray) -> None:
        # the buffers keep their dtypes (torch copies into them) and take the observer's length
        self.scale = Tensor._make(np.asarray(scale, np.float32).reshape(-1))
        self.zero_point = Tensor._make(np.asarray(zero_point).astype(self.zero_point._data.dtype).reshape(-1))

    def forward(self, X):
        if self.observer_enabled[0] == 1:
            self.activation_post_process(X.detach())
            scale, zero_point = self.calculate_qparams()
            self._store_qparams(scale._data, zero_point._data)
        if self.fake_quant_enabled[0] == 1:
            quant_min, quant_max = self.activation_post_process.quant_min, self.activation_post_process.quant_max
            if self.is_per_channel:
                X = _fake_quantize.fake_quantize_per_channel_affine(X, self.scale, self.zero_point, self.ch_axis,
                                                                    quant_min, quant_max)
            else:
                X = _fake_quantize.fake_quantize_per_tensor_affine(X, self.scale, self.zero_point, quant_min,
                                                                   quant_max)
        return X

    def extra_repr(self) -> str:
        return (f"fake_quant_enabled={self.fake_quant_enabled}, observer_enabled={self.observer_enabled}, "
                f"quant_min={self.activation_post_process.quant_min}, "
                f"quant_max={self.activation_post_process.quant_max}, dtype={self.dtype}, qscheme={self.qscheme}, "
                f"ch_axis={self.ch_axis}, scale={self.scale}, zero_point={self.zero_point}")

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        # per-channel qparams' length is the channel count, unknown until now: take them whole
        for name in ("scale", "zero_point"):
            if prefix + name in state_dict:
                dtype = getattr(self, name)._data.dtype
                setattr(self, name, Tensor._make(np.array(state_dict[prefix + name]._data, dtype)))
            elif strict:
                missing_keys.append(prefix + name)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, False, missing_keys,
                                      unexpected_keys, error_msgs)


_SMALL_SCALE_THRESHOLD = np.float32(6.1e-5)


def _choose_qparams(low: np.float32, high: np.float32, quant_min: int, quant_max: int,
                    symmetric: bool) -> tuple[np.float32, int]:
    """torch's C++ ChooseQuantizationParams (the fused QAT op's rule), step for step in its float
    and double precisions: a symmetric range is widened to [-(span/2 + 1), span/2] steps of the
    larger side's scale, a scale too small is raised to 6.1e-5, and the zero point comes from
    whichever end loses less to rounding."""
    low, high = np.float32(low), np.float32(high)
    if not low <= high:
        raise RuntimeError(f"In ChooseQuantizationParams, min should be less than or equal to max. "
                           f"min: {low} max: {high}")
    span = quant_max - quant_min
    if symmetric and low < 0 < high:
        symmetric_min, symmetric_max = -(span // 2 + 1), span // 2
        largest_scale = np.float64(max(abs(low / np.float32(symmetric_min)), abs(high / np.float32(symmetric_max))))
        low, high = np.float32(largest_scale * symmetric_min), np.float32(largest_scale * symmetric_max)
    low, high = min(low, np.float32(0)), max(high, np.float32(0))
    scale = (np.float64(high) - np.float64(low)) / span
    if np.float32(scale) == 0 or np.isinf(np.float32(1) / np.float32(scale)):
        scale = 0.1
    if scale < _SMALL_SCALE_THRESHOLD:
        original = np.float32(scale)
        scale = np.float64(_SMALL_SCALE_THRESHOLD)
        if low == 0:
            high = np.float32(_SMALL_SCALE_THRESHOLD * np.float32(span))
        elif high == 0:
            low = np.float32(-_SMALL_SCALE_THRESHOLD * np.float32(span))
        else:
            amplifier = np.float32(_SMALL_SCALE_THRESHOLD / original)
            low, high = np.float32(low * amplifier), np.float32(high * amplifier)
    scale64 = np.float64(np.float32(scale))
    from_min, from_max = quant_min - low / scale64, quant_max - high / scale64
    error_min = abs(quant_min) - abs(low / scale64)
    error_max = abs(quant_max) - abs(high / scale64)
    initial = from_min if error_min < error_max else from_max
    if symmetric and low < 0 < high:
        initial = (quant_min + quant_max) / 2
    if initial < quant_min:
        return np.float32(scale), quant_min
    if initial > quant_max:
        return np.float32(scale), quant_max
    return np.float32(scale), int(np.rint(initial))


class FusedMovingAvgObsFqHelper(_fake_quantize._FakeQuantizeCachemask):
    """torch.fused_moving_avg_obs_fake_quant's output: x fake-quantized, or (no ``scale``: fake
    quantization off) a copy of x; the gradient passes straight through where nothing was clamped."""

    @staticmethod
    def forward(ctx, x, scale=None, zero_point=None, quant_min=None, quant_max=None, per_channel=False):
        if scale is None:
            ctx.mask = np.ones(x.shape, bool)
            return x.copy()
        return _fake_quantize._FakeQuantizeCachemask.forward(ctx, x, scale, zero_point, quant_min, quant_max,
                                                             per_channel)


class FusedMovingAvgObsFakeQuantize(FakeQuantize):
    """torch.ao.quantization.FusedMovingAvgObsFakeQuantize: FakeQuantize whose moving-average
    min/max update, choice of scale and zero point, and fake quantization are one step, as torch's
    fused op: the scale comes from torch's C++ rule (see _choose_qparams), recomputed on every
    call while fake quantization is on, even with the observer off."""

    def __init__(self, observer=MovingAverageMinMaxObserver, quant_min: int = 0, quant_max: int = 255,
                 **observer_kwargs) -> None:
        super().__init__(observer, quant_min, quant_max, **observer_kwargs)
        if not isinstance(self.activation_post_process,
                          (MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver)):
            raise AssertionError("Fused observer+fake_quant module only works with MovingAverageMinMaxObserver")
        # torch's fused module keeps its switches as int64, where FakeQuantize's are uint8
        self.register_buffer("fake_quant_enabled", Tensor._make(np.array([1], np.int64)))
        self.register_buffer("observer_enabled", Tensor._make(np.array([1], np.int64)))
        self.is_symmetric_quant = self.activation_post_process.qscheme in _SYMMETRIC

    def calculate_qparams(self):
        return self.activation_post_process.calculate_qparams()

    def extra_repr(self) -> str:
        return (f"fake_quant_enabled={self.fake_quant_enabled}, observer_enabled={self.observer_enabled}, "
                f"scale={self.scale}, zero_point={self.zero_point}, dtype={self.dtype}, "
                f"quant_min={self.activation_post_process.quant_min}, "
                f"quant_max={self.activation_post_process.quant_max}, qscheme={self.qscheme}, "
                f"reduce_range={self.activation_post_process.reduce_range}")

    def forward(self, X):
        observer = self.activation_post_process
        if self.ch_axis >= X.dim():
            raise RuntimeError("Error in fused_moving_avg_obs_fake_quant_cpu: ch_axis must be < self.dim()")
        if X.numel() == 0:  # torch's fused op leaves statistics and qparams alone
            return FusedMovingAvgObsFqHelper.apply(X)
        values = np.asarray(X.detach()._data)
        if self.is_per_channel:
            if X.dim() == 1:  # torch reduces the flattened rows along dim 1, which a vector lacks
                raise IndexError("Dimension out of range (expected to be in range of [-1, 0], but got 1)")
            if self.ch_axis != 0 and self.observer_enabled[0] == 1:
                raise RuntimeError("Per-channel FakeQuant in fused_moving_avg_obs_fake_quant is only supported on "
                                   "axis == 0")
            rows = np.moveaxis(values, self.ch_axis, 0).reshape(values.shape[self.ch_axis], -1)
            if observer.min_val._data.size == 0:
                channels = values.shape[self.ch_axis]
                observer.min_val = Tensor._make(np.full(channels, np.inf, np.float32))
                observer.max_val = Tensor._make(np.full(channels, -np.inf, np.float32))
            current_min, current_max = rows.min(axis=1), rows.max(axis=1)
        else:
            current_min, current_max = values.min(), values.max()
        if self.observer_enabled[0] == 1:
            self._update_moving_average(current_min, current_max)
        if self.fake_quant_enabled[0] != 1:
            return FusedMovingAvgObsFqHelper.apply(X)
        quant_min, quant_max = observer.quant_min, observer.quant_max
        chosen = [_choose_qparams(low, high, quant_min, quant_max, self.is_symmetric_quant)
                  for low, high in zip(np.atleast_1d(observer.min_val._data), np.atleast_1d(observer.max_val._data))]
        scale = np.array([s for s, _ in chosen], np.float32)
        zero_point = np.array([z for _, z in chosen], np.int32)
        self._store_qparams(scale, zero_point)
        if self.is_per_channel:
            along_axis = (-1,) + (1,) * (X.dim() - 1 - self.ch_axis)
            return FusedMovingAvgObsFqHelper.apply(X, scale=scale.reshape(along_axis),
                                                   zero_point=zero_point.reshape(along_axis), quant_min=quant_min,
                                                   quant_max=quant_max, per_channel=True)
        return FusedMovingAvgObsFqHelper.apply(X, scale=scale[0], zero_point=int(zero_point[0]),
                                               quant_min=quant_min, quant_max=quant_max)

    def _update_moving_average(self, current_min, current_max) -> None:
        # an infinite running value (nothing seen yet) is replaced, others move by the constant
        observer = self.activation_post_process
        constant = np.float32(observer.averaging_constant)
        low, high = np.asarray(observer.min_val._data, np.float32), np.asarray(observer.max_val._data, np.float32)
        current_min, current_max = np.float32(current_min), np.float32(current_max)
        low = np.where(np.isinf(low), current_min, low + constant * (current_min - low)).astype(np.float32)
        high = np.where(np.isinf(high), current_max, high + constant * (current_max - high)).astype(np.float32)
        observer.min_val, observer.max_val = Tensor._make(low), Tensor._make(high)


def _is_fake_quantize(module) -> bool:
    return isinstance(module, FakeQuantizeBase)


def disable_fake_quant(mod) -> None:
    """torch.ao.quantization.disable_fake_quant: for ``model.apply``: turns fake quantization off
    in a fake quantizer (other modules are left alone)."""
    if _is_fake_quantize(mod):
        mod.disable_fake_quant()


def enable_fake_quant(mod) -> None:
    """torch.ao.quantization.enable_fake_quant: for ``model.apply``: turns fake quantization on."""
    if _is_fake_quantize(mod):
        mod.enable_fake_quant()


def disable_observer(mod) -> None:
    """torch.ao.quantization.disable_observer: for ``model.apply``: freezes a fake quantizer's
    statistics (its scale and zero point stop moving)."""
    if _is_fake_quantize(mod):
        mod.disable_observer()


def enable_observer(mod) -> None:
    """torch.ao.quantization.enable_observer: for ``model.apply``: lets statistics update again."""
    if _is_fake_quantize(mod):
        mod.enable_observer()


default_fake_quant = FakeQuantize.with_args(observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
                                            dtype=_dtype.quint8, qscheme=_quantized.per_tensor_affine,
                                            reduce_range=True)
default_weight_fake_quant = FakeQuantize.with_args(observer=MovingAverageMinMaxObserver, quant_min=-128,
                                                   quant_max=127, dtype=_dtype.qint8,
                                                   qscheme=_quantized.per_tensor_symmetric, reduce_range=False)
default_dynamic_fake_quant = FakeQuantize.with_args(observer=MovingAverageMinMaxObserver, quant_min=0,
                                                    quant_max=255, is_dynamic=True, dtype=_dtype.quint8,
                                                    averaging_constant=1)
default_per_channel_weight_fake_quant = FakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127, dtype=_dtype.qint8,
    qscheme=_quantized.per_channel_symmetric, reduce_range=False, ch_axis=0)
default_histogram_fake_quant = FakeQuantize.with_args(observer=HistogramObserver, quant_min=0, quant_max=255,
                                                      dtype=_dtype.quint8, qscheme=_quantized.per_tensor_affine,
                                                      reduce_range=True)
default_fused_act_fake_quant = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, dtype=_dtype.quint8)
default_fused_wt_fake_quant = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=-128, quant_max=127, dtype=_dtype.qint8,
    qscheme=_quantized.per_tensor_symmetric)
default_fused_per_channel_wt_fake_quant = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127, dtype=_dtype.qint8,
    qscheme=_quantized.per_channel_symmetric)
fused_wt_fake_quant_range_neg_127_to_127 = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=-127, quant_max=127, dtype=_dtype.qint8,
    qscheme=_quantized.per_tensor_symmetric, eps=2 ** -12)
fused_per_channel_wt_fake_quant_range_neg_127_to_127 = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver, quant_min=-127, quant_max=127, dtype=_dtype.qint8,
    qscheme=_quantized.per_channel_symmetric, eps=2 ** -12)
