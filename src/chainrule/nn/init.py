"""nn.init: in-place parameter initialisers with torch's formulas (all run under no_grad)."""

from __future__ import annotations

import math
import warnings

import numpy as _np

from .. import _dtype
from .._backend import array_module as _array_module
from ..autograd import function as _function
from ..autograd.grad_mode import no_grad as _no_grad
from ..ops import random as _random
from ..ops._arg_parser import fill_value as _fill_value
from ..tensor import Tensor

__all__ = ["calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_",
           "eye_", "dirac_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
           "orthogonal_", "sparse_",
           # torch's deprecated aliases, defined at the end: torch's __all__ (so its star import) has them too
           "uniform", "normal", "constant", "eye", "dirac", "xavier_uniform", "xavier_normal", "kaiming_uniform",
           "kaiming_normal", "orthogonal", "sparse"]


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for ``nonlinearity`` (torch.nn.init.calculate_gain)."""
    linear_fns = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d"]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _rng(tensor: Tensor, generator):
    """The generator's stream on the tensor's device: the draws are made where the tensor lives."""
    return _random._rng(generator, _array_module(tensor))


def _fill(tensor: Tensor, values) -> Tensor:
    with _no_grad():
        tensor._data[...] = values.astype(tensor._data.dtype, copy=False)
        tensor._version_box[0] += 1
    return tensor


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    # Tensor.uniform_'s checks and values: a complex tensor's real and imaginary parts each drawn, as torch's
    _random._floating_only(tensor, "check_uniform_bounds")
    _random._check_uniform_bounds(tensor, a, b)
    if _function.active_dispatch is not None and generator is None:
        # torch's init calls tensor.uniform_(a, b): a dispatch mode sees its aten.uniform_
        made = _function.method_dispatch("uniform_", _uniform_drawn, tensor, _schema_floats((a, b), (0.0, 1.0)))
        if made is not _function.RUN_UNDISPATCHED:
            return made
    return _fill(tensor, _random.uniform_values(tensor, a, b, generator))


def _schema_floats(values: tuple, defaults: tuple) -> tuple:
    """``values`` as torch's schema hands a mode its ``double`` arguments: floats, trailing defaults left out."""
    values = tuple(float(v) for v in values)
    while values and values[-1] == defaults[len(values) - 1]:
        values = values[:-1]
    return values


def _uniform_drawn(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    return _fill(tensor, _random.uniform_values(tensor, a, b, None))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    _check_normal(tensor, std)
    if _function.active_dispatch is not None and generator is None:
        # torch's init calls tensor.normal_(mean, std): a dispatch mode sees its aten.normal_
        made = _function.method_dispatch("normal_", _normal_drawn, tensor, _schema_floats((mean, std), (0.0, 1.0)))
        if made is not _function.RUN_UNDISPATCHED:
            return made
    return _fill(tensor, _random.normal_values(tensor, mean, std, generator))


def _normal_drawn(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    return _fill(tensor, _random.normal_values(tensor, mean, std, None))


def _check_normal(tensor: Tensor, std: float) -> None:
    """Tensor.normal_'s refusals, which torch's init functions meet by calling it: a negative std,
    and an integer or bool tensor (no kernel draws normals into one)."""
    _random._check_std(std)
    _random._floating_only(tensor, "normal_kernel_cpu")


def _refuse_complex(tensor: Tensor, kernel: str) -> None:
    """torch's trunc_normal_ compares its draws with the bounds, which no complex kernel does."""
    if tensor._data.dtype.kind == "c":
        raise NotImplementedError(f'"{kernel}" not implemented for \'{_dtype.scalar_name(tensor.dtype)}\'')


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator=None) -> Tensor:
    """N(mean, std²) truncated to [a, b] by torch's rejection sampling, draw for draw: when the
    interval holds more than 0.3 of the mass, normal draws for the whole tensor redrawn (whole
    tensors again) where they fall outside; else uniforms on [a, b] accepted against the density
    by a second uniform, redrawn where rejected. So a seeded stream stays torch's."""
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
                      "The distribution of values may be incorrect.", stacklevel=2)

    if tensor.is_meta:  # no storage: nothing drawn, nothing checked, as torch's
        return tensor

    def normal_cdf(x: float) -> float:
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    xp = _array_module(tensor)
    dtype = tensor._data.dtype
    if normal_cdf((b - mean) / std) - normal_cdf((a - mean) / std) > 0.3:
        # the bounds as the tensor holds them, converted as torch's new_tensor(a).item() does
        low, high = tensor.new_tensor(a, device="cpu").item(), tensor.new_tensor(b, device="cpu").item()
        _check_normal(tensor, std)
        _refuse_complex(tensor, "lt_cpu")
        values = _random.normal_values(tensor, mean, std, generator).astype(dtype)
        while True:
            outside = (values < low) | (values > high)
            if not bool(outside.any()):
                break
            values = xp.where(outside, _random.normal_values(tensor, mean, std, generator).astype(dtype), values)
        return _fill(tensor, values)

    mode = max(a, min(mean, b))
    log_peak = -0.5 * ((mode - mean) / std) ** 2

    def log_density(x):  # torch's in-place sequence, in the tensor's dtype
        return ((((x - mean) / std) ** 2) * -0.5 - log_peak).astype(dtype)

    def rejected(candidates):
        return xp.log(_random.uniform_values(tensor, 0.0, 1.0, generator).astype(dtype)) > log_density(candidates)

    # torch's first draw is tensor.uniform_(a, b): an integer tensor or b < a raises there
    _random._floating_only(tensor, "check_uniform_bounds")
    _random._check_uniform_bounds(tensor, a, b)
    _refuse_complex(tensor, "gt_cpu")
    values = _random.uniform_values(tensor, a, b, generator).astype(dtype)
    pending = rejected(values)
    while bool(pending.any()):
        candidates = _random.uniform_values(tensor, a, b, generator).astype(dtype)
        values = xp.where(pending, candidates, values)
        pending = xp.where(pending, rejected(candidates), pending)
    return _fill(tensor, values)


def constant_(tensor: Tensor, val: float) -> Tensor:
    val = _fill_value(val, tensor._data.dtype)  # torch's constant_ is a fill_: its checks
    if _function.active_dispatch is not None:  # (a dispatch mode sees torch's aten.fill_.Scalar)
        with _no_grad():
            return tensor.fill_(val)
    return _fill(tensor, _array_module(tensor).full(tensor._data.shape, val))


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def zeros_(tensor: Tensor) -> Tensor:
    if _function.active_dispatch is not None:  # (torch's zeros_ is a zero_: aten.zero_.default)
        with _no_grad():
            return tensor.zero_()
    return constant_(tensor, 0.0)


def eye_(tensor: Tensor) -> Tensor:
    if tensor.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return _fill(tensor, _array_module(tensor).eye(*tensor._data.shape))


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    dims = tensor.ndim
    if dims not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    sizes = tensor.shape
    if sizes[0] % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    out_per_group = sizes[0] // groups
    min_dim = min(out_per_group, sizes[1])
    values = _array_module(tensor).zeros(tensor._data.shape)
    centre = tuple(s // 2 for s in sizes[2:])
    for g in range(groups):
        for d in range(min_dim):
            values[(g * out_per_group + d, d) + centre] = 1
    return _fill(tensor, values)


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    if tensor.ndim < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive = math.prod(tensor.shape[2:]) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of {['fan_in', 'fan_out']}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std  # torch's order: the bound's last bit depends on it
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator=None) -> Tensor:
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound = math.sqrt(3.0) * std  # torch's order: the bound's last bit depends on it
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator=None) -> Tensor:
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan), generator)


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """A (semi-)orthogonal matrix from the QR of a Gaussian one, sign-corrected as torch does."""
    if tensor.ndim < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0 or tensor.is_meta:
        return tensor
    _check_normal(tensor, 1.0)
    # torch's QR (geqrf) has no half-precision kernel, and its sign correction refuses complex
    if tensor.dtype in (_dtype.float16, _dtype.bfloat16):
        raise NotImplementedError(f'"geqrf_cpu" not implemented for \'{_dtype.scalar_name(tensor.dtype)}\'')
    if tensor._data.dtype.kind == "c":
        raise NotImplementedError("Unlike NumPy, torch.sign is not intended to support complex numbers. "
                                  "Please use torch.sgn instead.")
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    xp = _array_module(tensor)
    flat = _random.normal_values(Tensor._make(xp.empty((rows, cols), tensor._data.dtype)), 0.0, 1.0, generator)
    if rows < cols:
        flat = flat.T
    q, r = xp.linalg.qr(flat)
    q = q * xp.sign(xp.diag(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, gain * q.reshape(tensor._data.shape))


def sparse_(tensor: Tensor, sparsity: float, std: float = 0.01, generator=None) -> Tensor:
    if tensor.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    if tensor.is_meta:
        return tensor
    _check_normal(tensor, std)
    rows, cols = tensor.shape
    xp = _array_module(tensor)
    # torch's loop calls torch.randperm(rows) without the generator: the zeroed rows come from the
    # default generator even when `generator` draws the values
    rng = _rng(tensor, None)
    values = _random.normal_values(tensor, 0.0, std, generator)
    num_zeros = int(math.ceil(sparsity * rows))
    for col in range(cols):
        # the rows to zero: torch's randperm on the CPU; on a device the order of random keys
        # (CuPy's Generator has no permutation)
        order = rng.permutation(rows) if xp is _np else xp.argsort(rng.random(rows))
        values[order[:num_zeros], col] = 0
    return _fill(tensor, values)


def _deprecated(function):
    """torch's deprecated non-underscore alias of an init function: the same fill, with its FutureWarning."""
    old_name = function.__name__[:-1]

    def alias(*args, **kwargs):
        warnings.warn(f"`nn.init.{old_name}` is now deprecated in favor of `nn.init.{function.__name__}`.",
                      FutureWarning, stacklevel=2)
        return function(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old_name
    alias.__doc__ = f"Deprecated alias of :func:`{function.__name__}` (torch warns, and so do we)."
    return alias


uniform = _deprecated(uniform_)
normal = _deprecated(normal_)
constant = _deprecated(constant_)
xavier_uniform = _deprecated(xavier_uniform_)
xavier_normal = _deprecated(xavier_normal_)
kaiming_uniform = _deprecated(kaiming_uniform_)
kaiming_normal = _deprecated(kaiming_normal_)
orthogonal = _deprecated(orthogonal_)
sparse = _deprecated(sparse_)
dirac = _deprecated(dirac_)
eye = _deprecated(eye_)

# bound by the __future__ import; dir(torch.nn.init) has no such name
del annotations
