"""chainrule.amp: torch.amp's ``autocast`` and ``GradScaler``.

``autocast('cuda')`` (float16, torch's CUDA default) is torch's mixed precision on the GPU: inside
the region, the ops on torch's float16 list (linear, matmul, bmm, conv, the recurrent layers)
cast their float32 CUDA inputs to float16, the ops on its float32 list (softmax, log_softmax,
layer and group norm, the losses, sum, prod, exp, log, pow, ...) cast float16 inputs up to
float32, and every other op runs in its inputs' dtype (mixed float16/float32 inputs promote to
float32, as torch's promotion does). float64 and CPU tensors are never cast. Gradients flow back
in each leaf's own dtype. The casting happens in one place, keyed by the op's label: the device
seam every CUDA op passes through (``_backend.on_one_device``).

``autocast('cpu')`` (bfloat16, torch's CPU default; float16 also) is torch's CPU autocast: the ops
on its CPU lower-precision list (linear, matmul, bmm, einsum, conv, conv_transpose, prelu, the
recurrent layers) cast float32 inputs to bfloat16 and return bfloat16; its CPU float32 list (the
losses, prod, trace, the linalg decompositions) takes bfloat16 inputs up to float32; softmax, the
norms and the rest run in their inputs' dtype, as torch's CPU autocast leaves them. The casts
happen in one place, ``chainrule._opmath`` on the CPU op path; the public functions chainrule composes
of several ops (addmm, the losses, the 3-d pools, ...) carry their list's policy
(``_opmath.cpu_autocast_policy``). A float32 leaf that requires grad (a weight) is cast once per
region and the cast reused, as torch's autocast cache (``clear_autocast_cache``, ``cache_enabled=``).

``autocast('cuda', dtype=bfloat16)`` lowers the same lists to bfloat16, which CuPy 14 holds
through ml_dtypes (experimental in CuPy: ``cuda.is_bf16_supported`` answers for the installed
CuPy); checked on the CPU stand-in, not yet on a GPU. CUDA autocast keeps no cache of casted weights (each
op casts its weight again). As in torch, ``autocast('cuda')`` on a machine without a GPU warns and
disables itself.

``GradScaler`` is torch's dynamic loss scaling, complete: scale, unscale_, skip a step whose
gradients overflowed, grow/back off the scale.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable, Mapping

import numpy as np

from .. import _backend, _dtype, _opmath, _torch_function
from ..autograd.grad_mode import no_grad

__all__ = ["autocast", "GradScaler", "is_autocast_available", "is_autocast_enabled", "get_autocast_dtype",
           "set_autocast_enabled", "set_autocast_dtype", "custom_fwd", "custom_bwd"]

_DEFAULT_DTYPES = {"cpu": "bfloat16", "cuda": "float16"}

# torch's CUDA autocast op lists (torch.amp docs, "CUDA Ops that can autocast to float16" and
# "... to float32"), as the names chainrule's ops give the device seam (Function.torch_name, else the label)
LOWER_PRECISION_OPS = frozenset({"linear", "matmul", "mm", "bmm", "conv", "conv_transpose", "prelu", "rnn", "gru", "lstm",
                                 "recurrent_layer"})
FLOAT32_OPS = frozenset({"acos", "asin", "cosh", "sinh", "tan", "exp", "expm1", "log", "log10", "log1p", "log2",
                         "pow", "square", "reciprocal", "rsqrt", "softplus", "softmax", "log_softmax", "logsumexp",
                         "layer_norm", "group_norm", "norm", "sum", "prod", "cumsum", "cumprod", "cross_entropy",
                         "nll_loss"})
# torch refuses these under autocast: their float16 result is unsafe
_BANNED_OPS = {"binary_cross_entropy": (
    "torch.nn.functional.binary_cross_entropy and torch.nn.BCELoss are unsafe to autocast.\n"
    "Many models use a sigmoid layer right before the binary cross entropy layer.\n"
    "In this case, combine the two layers using torch.nn.functional.binary_cross_entropy_with_logits\n"
    "or torch.nn.BCEWithLogitsLoss.  binary_cross_entropy_with_logits and BCEWithLogits are\n"
    "safe to autocast.")}

_FLOAT16, _FLOAT32 = np.dtype(np.float16), np.dtype(np.float32)


def _cuda_cast(lower: np.dtype):
    """The hook the device seam calls inside ``autocast('cuda', dtype=lower)``: float32 inputs of
    the lower-precision list go down to ``lower``, ``lower`` inputs of the float32 list go up."""
    def cast(arrays: list, op: str) -> list:
        if op in LOWER_PRECISION_OPS:
            source, target = _FLOAT32, lower
        elif op in FLOAT32_OPS:
            source, target = lower, _FLOAT32
        elif op in _BANNED_OPS:
            raise RuntimeError(_BANNED_OPS[op])
        else:
            return arrays
        return [a.astype(target) if getattr(a, "dtype", None) == source else a for a in arrays]

    return cast


_cast_for_float16 = _cuda_cast(_FLOAT16)
_cast_for_bfloat16 = None  # built on first use: bfloat16 arrays need ml_dtypes (the bf16 extra)


def is_autocast_available(device_type: str) -> bool:
    """Whether autocast can run for ``device_type``: 'cpu' (bfloat16/float16) and 'cuda' (float16)."""
    _parse_device_type(device_type)
    return device_type in _DEFAULT_DTYPES


def _parse_device_type(device_type: str) -> None:
    """Refuse a string that names no device, with torch's error (``torch.device``'s own message)."""
    from .._backend import device

    device(device_type)


# each device's autocast state, as torch keeps it: whether a region is on, and the dtype it lowers to
_enabled = {"cpu": False, "cuda": False}
_lower_dtype = {"cpu": _dtype.bfloat16, "cuda": _dtype.float16}


def _check_device_type(device_type: str, caller: str) -> None:
    if device_type not in _DEFAULT_DTYPES:
        _parse_device_type(device_type)
        raise RuntimeError(f"{caller}: unsupported device_type {device_type!r}; expected 'cpu' or 'cuda'")


# torch's other autocast devices and their default dtypes: chainrule runs on none of them, so no region
# for them is ever on, but libraries ask about them all (kornia checks cpu, cuda, mps and xpu in turn)
_OTHER_DEVICE_DTYPES = {"mps": _dtype.float16, "xpu": _dtype.float16, "ipu": _dtype.float16,
                        "mtia": _dtype.float16, "privateuseone": _dtype.float16, "hpu": _dtype.bfloat16,
                        "xla": _dtype.bfloat16, "maia": _dtype.bfloat16}


def is_autocast_enabled(device_type: str | None = None) -> bool:
    """torch.is_autocast_enabled: whether an autocast region for ``device_type`` (default 'cuda') is on."""
    if device_type is None or device_type == "cuda":
        return _backend.autocast_hook.cast is not None
    if device_type in _OTHER_DEVICE_DTYPES:
        return False
    _check_device_type(device_type, "is_autocast_enabled")
    return _enabled["cpu"]


def get_autocast_dtype(device_type: str = "cuda"):
    """torch.get_autocast_dtype: the dtype autocast lowers to for ``device_type`` (bfloat16 on the CPU,
    float16 on CUDA, unless set otherwise)."""
    if device_type in _OTHER_DEVICE_DTYPES:
        return _OTHER_DEVICE_DTYPES[device_type]
    _check_device_type(device_type, "get_autocast_dtype")
    return _lower_dtype[device_type]


def set_autocast_enabled(device_type: str, enabled: bool | None = None) -> None:
    """torch.set_autocast_enabled(device_type, enabled): turn autocast for ``device_type`` on or off
    outside a ``with`` block (what ``autocast`` does on entry and exit). The one-argument form
    ``set_autocast_enabled(enabled)`` is torch's older CUDA spelling."""
    if enabled is None:
        device_type, enabled = "cuda", device_type
    _check_device_type(device_type, "set_autocast_enabled")
    _enabled[device_type] = bool(enabled)
    _sync(device_type)


def set_autocast_dtype(device_type: str, dtype) -> None:
    """torch.set_autocast_dtype: the dtype autocast for ``device_type`` lowers to while it is on."""
    _check_device_type(device_type, "set_autocast_dtype")
    _lower_dtype[device_type] = _dtype.to_dtype(dtype)
    _sync(device_type)


# where torch 2.13 raises each deprecation (torch/csrc/autograd/init.cpp), named in its text
_DEPRECATION_LINES = {"is_autocast_cpu_enabled": 883, "set_autocast_cpu_enabled": 874, "get_autocast_cpu_dtype": 1016,
                      "set_autocast_cpu_dtype": 967, "get_autocast_gpu_dtype": 1007, "set_autocast_gpu_dtype": 952}


def _deprecated(old: str, new: str) -> None:
    line = _DEPRECATION_LINES[old.partition("(")[0]]
    warnings.warn(f"torch.{old} is deprecated. Please use torch.{new} instead. (Triggered internally at "
                  f"/__w/pytorch/pytorch/torch/csrc/autograd/init.cpp:{line}.)", DeprecationWarning,
                  stacklevel=_torch_function.user_stacklevel())


# torch's older per-device spellings, deprecated in torch (they warn as torch's do)
def is_autocast_cpu_enabled() -> bool:
    _deprecated("is_autocast_cpu_enabled()", "is_autocast_enabled('cpu')")
    return is_autocast_enabled("cpu")


def set_autocast_cpu_enabled(enabled: bool) -> None:
    _deprecated("set_autocast_cpu_enabled(enabled)", "set_autocast_enabled('cpu', enabled)")
    set_autocast_enabled("cpu", enabled)


def get_autocast_cpu_dtype():
    _deprecated("get_autocast_cpu_dtype()", "get_autocast_dtype('cpu')")
    return get_autocast_dtype("cpu")


def set_autocast_cpu_dtype(dtype) -> None:
    _deprecated("set_autocast_cpu_dtype(dtype)", "set_autocast_dtype('cpu', dtype)")
    set_autocast_dtype("cpu", dtype)


def get_autocast_gpu_dtype():
    _deprecated("get_autocast_gpu_dtype()", "get_autocast_dtype('cuda')")
    return get_autocast_dtype("cuda")


def set_autocast_gpu_dtype(dtype) -> None:
    _deprecated("set_autocast_gpu_dtype(dtype)", "set_autocast_dtype('cuda', dtype)")
    set_autocast_dtype("cuda", dtype)


# how many autocast regions are open (any device): the outermost one's exit clears the cast cache
_nesting = 0


def is_autocast_cache_enabled() -> bool:
    """torch.is_autocast_cache_enabled: whether CPU autocast reuses a weight's cast inside a region."""
    return _opmath.cache.enabled


def set_autocast_cache_enabled(enabled: bool) -> None:
    _opmath.cache.enabled = bool(enabled)


def clear_autocast_cache() -> None:
    """torch.clear_autocast_cache: forget the casts of weights kept inside the current regions, so
    the next listed op casts each weight again (from its current values)."""
    _opmath.cache.casts.clear()


def autocast_increment_nesting() -> int:
    global _nesting
    _nesting += 1
    return _nesting


def autocast_decrement_nesting() -> int:
    global _nesting
    _nesting -= 1
    return _nesting


def _sync(device_type: str) -> None:
    """Point the op path's hooks at this device's state."""
    lower = _lower_dtype[device_type]
    if device_type == "cpu":
        if _enabled["cpu"] and lower in (_dtype.bfloat16, _dtype.float16):
            _opmath.install()
            _backend.autocast_hook.cpu_dtype = lower.np
        else:
            _backend.autocast_hook.cpu_dtype = None
    elif not _enabled["cuda"] or lower is _dtype.float32:
        _backend.autocast_hook.cast = None
    elif lower is _dtype.float16:
        _backend.autocast_hook.cast = _cast_for_float16
    else:  # bfloat16: CuPy 14 holds bfloat16 arrays through ml_dtypes (cuda.is_bf16_supported says so)
        global _cast_for_bfloat16
        if _cast_for_bfloat16 is None:
            _cast_for_bfloat16 = _cuda_cast(lower.np)
        _opmath.install()  # reductions and matmuls of bfloat16 accumulate in float32, rounded once
        _backend.autocast_hook.cast = _cast_for_bfloat16


class autocast:
    """torch.autocast(device_type, dtype=None, enabled=True, cache_enabled=None), as a context
    manager or a decorator: bfloat16 (or float16) mixed precision on the CPU, float16 on CUDA (see
    the module doc). Regions nest; ``enabled=False`` inside one turns it off until it exits, as in
    torch."""

    def __init__(self, device_type: str, dtype=None, enabled: bool = True, cache_enabled=None) -> None:
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        _check_device_type(device_type, "autocast")
        self.device_type = device_type
        self.device = device_type  # (torch's attribute: code reads autocast_obj.device)
        self.fast_dtype = get_autocast_dtype(device_type) if dtype is None else _dtype.to_dtype(dtype)
        self._enabled = bool(enabled)
        self._cache_enabled = is_autocast_cache_enabled() if cache_enabled is None else bool(cache_enabled)
        if self._enabled and device_type == "cuda":
            from .. import cuda

            if not cuda.is_available():
                # torch's behaviour on a machine without a GPU: warn, then run as if disabled
                warnings.warn("CUDA is not available or torch_xla is imported. Disabling autocast.", stacklevel=2)
                self._enabled = False
            elif self.fast_dtype is _dtype.bfloat16 and not cuda.is_bf16_supported():
                raise RuntimeError("Current CUDA Device does not support bfloat16. Please switch dtype to float16.")
            elif self.fast_dtype not in (_dtype.float16, _dtype.bfloat16, _dtype.float32):
                # torch's answer to any other dtype: a warning, and the region off
                warnings.warn("In CUDA autocast, but the target dtype is not supported. Disabling autocast.\n"
                              "CUDA Autocast only supports dtypes of torch.float16, torch.bfloat16 currently.",
                              stacklevel=2)
                self._enabled = False
        if self._enabled and device_type == "cpu" and self.fast_dtype not in (_dtype.bfloat16, _dtype.float16):
            warnings.warn("In CPU autocast, but the target dtype is not supported. Disabling autocast.\n"
                          "CPU Autocast only supports dtypes of torch.bfloat16, torch.float16 currently.",
                          stacklevel=2)
            self._enabled = False

    def __enter__(self) -> autocast:
        # a region of the other device type leaves this one's state alone
        self._previous = (_enabled[self.device_type], _lower_dtype[self.device_type], is_autocast_cache_enabled())
        _enabled[self.device_type] = self._enabled
        # torch sets the dtype even for a region that is off (a refused float64 is still what
        # get_autocast_dtype answers inside it)
        _lower_dtype[self.device_type] = self.fast_dtype
        autocast_increment_nesting()
        set_autocast_cache_enabled(self._cache_enabled)
        _sync(self.device_type)
        return self

    def __exit__(self, *exc_info) -> None:
        if autocast_decrement_nesting() == 0:
            clear_autocast_cache()
        _enabled[self.device_type], _lower_dtype[self.device_type], cache_enabled = self._previous
        set_autocast_cache_enabled(cache_enabled)
        _sync(self.device_type)
        return None

    def __call__(self, func):
        @functools.wraps(func)
        def run_in_autocast(*args, **kwargs):
            with self:
                return func(*args, **kwargs)

        return run_in_autocast


# where an optimizer is in the current iteration (torch's OptState): each call may only move forward
_READY, _UNSCALED, _STEPPED = "ready", "unscaled", "stepped"


def _float32(value: float) -> float:
    """``value`` rounded as torch's float32 scale tensor holds it."""
    return float(np.float32(value))


class GradScaler:
    """torch.amp.GradScaler: multiply the loss by ``scale`` before backward, divide the gradients
    by it before the step, skip steps whose gradients hold inf/NaN and shrink the scale then, and
    grow it after ``growth_interval`` clean steps. ``enabled=False`` passes everything through.
    For device 'cuda' without a GPU it warns and disables itself, as torch does.

    As in torch, the scale is held in float32 and only comes to life at the first ``scale()``:
    ``unscale_``, ``step`` and ``update`` before it raise, and each optimizer moves through
    ready -> unscaled -> stepped once per iteration, misordered calls raising torch's errors."""

    def __init__(self, device: str = "cuda", init_scale: float = 2.0**16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000, enabled: bool = True) -> None:
        if enabled and device == "cuda":
            from .. import cuda

            if not cuda.is_available():
                # torch's text names the old spelling whichever one was used
                warnings.warn("torch.cuda.amp.GradScaler is enabled, but CUDA is not available.  Disabling.",
                              stacklevel=2)
                enabled = False
        # torch checks the factors only for a scaler that stays enabled
        if enabled:
            if growth_factor <= 1.0:
                raise AssertionError("The growth factor must be > 1.0.")
            if backoff_factor >= 1.0:
                raise AssertionError("The backoff factor must be < 1.0.")
        self._device = device
        self._enabled = enabled
        self._init_scale = init_scale
        self._scale = None            # float32 value once scale() has run
        self._growth_factor = growth_factor
        self._backoff_factor = backoff_factor
        self._growth_interval = growth_interval
        self._init_growth_tracker = 0
        self._growth_tracker = None   # int once scale() has run
        # id(optimizer) -> {"stage": _READY/_UNSCALED/_STEPPED,
        #                  "found_inf_per_device": {device: bool tensor}, "found_inf": bool once read}
        self._per_optimizer = {}

    def _optimizer_state(self, optimizer) -> dict:
        return self._per_optimizer.setdefault(id(optimizer), {"stage": _READY, "found_inf_per_device": {},
                                                              "found_inf": None})

    def _check_started(self, funcname: str) -> None:
        if self._scale is None:
            raise AssertionError(f"Attempted {funcname} but _scale is None.  This may indicate your script "
                                 "did not use scaler.scale(loss or outputs) earlier in the iteration.")

    def is_enabled(self) -> bool:
        return self._enabled

    def get_scale(self) -> float:
        if not self._enabled:
            return 1.0
        return self._init_scale if self._scale is None else self._scale

    def scale(self, outputs):
        """``outputs * scale`` for a tensor or a (nested) iterable of tensors; lists and tuples keep
        their type, other iterables come back as a lazy ``map`` (as torch's)."""
        if not self._enabled:
            return outputs
        from ..tensor import Tensor

        if isinstance(outputs, Tensor):
            if self._scale is None:
                self._scale = _float32(self._init_scale)
                self._growth_tracker = int(self._init_growth_tracker)
            return outputs * self._scale
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(output) for output in outputs)
        if isinstance(outputs, Iterable):
            return map(self.scale, outputs)
        raise ValueError("outputs must be a Tensor or an iterable of Tensors")

    def unscale_(self, optimizer) -> None:
        """Divide ``optimizer``'s gradients by the scale, once per step, noting any inf/NaN."""
        if not self._enabled:
            return
        self._check_started("unscale_")
        state = self._optimizer_state(optimizer)
        if state["stage"] == _UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        if state["stage"] == _STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        from .. import float16
        from ..ops.elementwise import isfinite

        inverse_scale = _float32(1.0 / self._scale)
        # one "any non-finite" flag per device, kept on that device as torch's found_inf_per_device:
        # reading it back is step()'s single host read, not one per gradient here
        found_inf_per_device: dict = {}
        with no_grad():
            for group in optimizer.param_groups:
                for param in group["params"]:
                    if param.grad is None:
                        continue
                    if param.grad.dtype == float16:
                        raise ValueError("Attempting to unscale FP16 gradients.")
                    param.grad.mul_(inverse_scale)
                    nonfinite = isfinite(param.grad).all().logical_not()
                    previous = found_inf_per_device.get(param.grad.device)
                    found_inf_per_device[param.grad.device] = (nonfinite if previous is None
                                                               else previous.logical_or(nonfinite))
        state.update(stage=_UNSCALED, found_inf_per_device=found_inf_per_device, found_inf=None)

    @staticmethod
    def _found_inf(state: dict) -> bool:
        """Whether an optimizer's gradients overflowed: one host read per device, the first time asked."""
        if state["found_inf"] is None:
            state["found_inf"] = any(bool(flag) for flag in state["found_inf_per_device"].values())
        return state["found_inf"]

    def step(self, optimizer, *args, **kwargs):
        """Unscale (if not done yet) and run ``optimizer.step`` unless a gradient overflowed."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        self._check_started("step")
        state = self._optimizer_state(optimizer)
        if state["stage"] == _STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if state["stage"] == _READY:
            self.unscale_(optimizer)
        if not state["found_inf_per_device"]:
            raise AssertionError("No inf checks were recorded for this optimizer.")
        result = None if self._found_inf(state) else optimizer.step(*args, **kwargs)
        state["stage"] = _STEPPED
        return result

    def update(self, new_scale=None) -> None:
        """Back off after an overflow, grow after ``growth_interval`` clean steps (or set ``new_scale``)."""
        if not self._enabled:
            return
        self._check_started("update")
        if new_scale is not None:
            if not isinstance(new_scale, float):
                reason = ("new_scale should be a float or a 1-element torch.cuda.FloatTensor or "
                          "torch.FloatTensor with requires_grad=False.")
                if new_scale.device.type != self._device or new_scale.numel() != 1 or new_scale.requires_grad:
                    raise AssertionError(reason)
            self._scale = _float32(new_scale if isinstance(new_scale, float) else new_scale.item())
        else:
            states = [state for state in self._per_optimizer.values() if state["found_inf_per_device"]]
            if not states:
                raise AssertionError("No inf checks were recorded prior to update.")
            # torch's _amp_update_scale_, in float32: a grown scale that overflows is not taken
            if any(self._found_inf(state) for state in states):
                self._scale = _float32(self._scale * self._backoff_factor)
                self._growth_tracker = 0
            elif self._growth_tracker + 1 == self._growth_interval:
                grown = _float32(self._scale * self._growth_factor)
                if np.isfinite(grown):
                    self._scale = grown
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
        self._per_optimizer = {}

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = new_factor

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = new_factor

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = new_interval

    def _get_growth_tracker(self) -> int:
        if not self._enabled:
            return 0
        return self._init_growth_tracker if self._growth_tracker is None else self._growth_tracker

    def state_dict(self) -> dict:
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._get_growth_tracker()}

    def load_state_dict(self, state_dict: dict) -> None:
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved "
                               "from a disabled instance of GradScaler.")
        self._init_scale = state_dict["scale"]
        if self._scale is not None:
            self._scale = _float32(state_dict["scale"])
        self._growth_factor = state_dict["growth_factor"]
        self._backoff_factor = state_dict["backoff_factor"]
        self._growth_interval = state_dict["growth_interval"]
        self._init_growth_tracker = state_dict["_growth_tracker"]
        if self._growth_tracker is not None:
            self._growth_tracker = int(state_dict["_growth_tracker"])


def custom_fwd(fwd=None, *, device_type: str, cast_inputs=None):
    """torch.amp.custom_fwd: decorate a custom Function's ``forward``. Inside an autocast region
    with ``cast_inputs`` set, the forward runs with autocast off and its floating-point tensor
    inputs cast to ``cast_inputs``; otherwise it runs under the caller's autocast state, which
    ``custom_bwd`` then restores for the backward."""
    if not isinstance(device_type, str):
        raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)

    @functools.wraps(fwd)
    def decorate_fwd(*args, **kwargs):
        # torch's steps: the ctx records the autocast dtype; with cast_inputs the backward runs with
        # autocast off (the forward did), without it in the forward's autocast state
        args[0]._dtype = get_autocast_dtype(device_type)
        if cast_inputs is None:
            args[0]._fwd_used_autocast = is_autocast_enabled(device_type)
            return fwd(*args, **kwargs)
        autocast_context = is_autocast_enabled(device_type)
        args[0]._fwd_used_autocast = False
        if autocast_context:
            with autocast(device_type, enabled=False):
                return fwd(*_cast_floating(args, device_type, cast_inputs),
                           **_cast_floating(kwargs, device_type, cast_inputs))
        return fwd(*args, **kwargs)

    return decorate_fwd


def custom_bwd(bwd=None, *, device_type: str):
    """torch.amp.custom_bwd: decorate a custom Function's ``backward`` so it runs with the autocast
    state its forward ran with (the backward pass itself runs outside any autocast region)."""
    if not isinstance(device_type, str):
        raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)

    @functools.wraps(bwd)
    def decorate_bwd(*args, **kwargs):
        with autocast(device_type, enabled=args[0]._fwd_used_autocast, dtype=args[0]._dtype):
            return bwd(*args, **kwargs)

    return decorate_bwd


def _cast_floating(value, device_type: str, dtype):
    """torch's amp._cast: ``value`` with its floating-point tensors on ``device_type`` other than float64 cast
    to ``dtype``, also inside mappings (keys too) and iterables (lists and tuples keep their type, other
    iterables become generators, as torch's do); strings and NumPy arrays as they are."""
    from ..tensor import Tensor

    if isinstance(value, Tensor):
        eligible = value.is_floating_point() and value.device.type == device_type and value.dtype is not _dtype.float64
        return value.to(dtype) if eligible else value
    if isinstance(value, (str, bytes, np.ndarray)):
        return value
    if isinstance(value, Mapping):
        return {_cast_floating(k, device_type, dtype): _cast_floating(v, device_type, dtype)
                for k, v in value.items()}
    if isinstance(value, Iterable):
        iterable = (_cast_floating(v, device_type, dtype) for v in value)
        return type(value)(iterable) if isinstance(value, (list, tuple)) else iterable
    return value
