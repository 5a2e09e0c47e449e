"""chainrule: a deep-learning framework on NumPy built around reverse-mode autodiff.

``import chainrule as torch`` runs PyTorch-style code: the names, defaults, shapes and error
types follow torch's.
"""

from __future__ import annotations

from . import _malloc_tuning  # noqa: F401  (keeps glibc from unmapping freed temporaries; first, before any work)
from . import _backend, _dtype
from ._backend import device
from ._dtype import (
    bool, double, dtype, float, float16, float32, float64, get_default_dtype, half, int, int8,
    int16, int32, int64, long, promote_types, set_default_dtype, short, uint8,
)
from ._dtype import bfloat16, uint16, uint32, uint64
from ._dtype import (
    float4_e2m1fn_x2, float8_e4m3fn, float8_e4m3fnuz, float8_e5m2, float8_e5m2fnuz, float8_e8m0fnu,
)
from ._dtype import cdouble, cfloat, chalf, complex32, complex64, complex128, get_default_complex_dtype
from ._dtype import qint8, qint32, quint4x2, quint8
from ._dtype import int1, int2, int3, int4, int5, int6, int7, uint1, uint2, uint3, uint4, uint5, uint6, uint7
from .tensor import Size, Tensor
from .autograd.grad_mode import (
    enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad,
    set_grad_enabled,
)
from .ops import activation, bucketing, conv, creation, elementwise, index, linalg, loss, pool, random, reduce, shape
from .ops import decompositions
from .ops import complex as _complex_ops
from .ops import fft as _fft_ops
from .ops import batched_rules as _batched_rules  # noqa: F401  (registers the Jacobians' batched backward rules)
from .ops import batched_rules_nn as _batched_rules_nn  # noqa: F401  (and the nn ops')
from . import _methods
from .ops._arg_parser import BOOLEAN_DISPATCH as _BOOLEAN_DISPATCH
from .ops._arg_parser import namespace_with_out as _namespace_with_out

_OP_MODULES = [creation, elementwise, reduce, shape, index, random, linalg, activation, conv, pool, loss, bucketing,
               decompositions, _complex_ops, _fft_ops]
_methods.bind_all(_OP_MODULES)

from .ops.creation import *  # noqa: E402,F401,F403
from .ops.elementwise import *  # noqa: E402,F401,F403
from .ops.reduce import *  # noqa: E402,F401,F403
from .ops.shape import *  # noqa: E402,F401,F403
from .ops.random import *  # noqa: E402,F401,F403
from .ops.index import *  # noqa: E402,F401,F403
from .ops.quantized import (  # noqa: E402,F401
    dequantize, per_channel_affine, per_channel_affine_float_qparams, per_channel_symmetric, per_tensor_affine,
    per_tensor_symmetric, qscheme, quantize_per_channel, quantize_per_tensor,
)
from .ops.fake_quantize import *  # noqa: E402,F401,F403
from .ops.linalg import *  # noqa: E402,F401,F403
from .ops.decompositions import *  # noqa: E402,F401,F403
from .ops.activation import *  # noqa: E402,F401,F403
from .ops.conv import *  # noqa: E402,F401,F403
from .ops.pool import *  # noqa: E402,F401,F403
from .ops.loss import *  # noqa: E402,F401,F403
from .ops.nn_toplevel import *  # noqa: E402,F401,F403
from .ops.bucketing import *  # noqa: E402,F401,F403
from .ops.complex import *  # noqa: E402,F401,F403
from .ops.fft import *  # noqa: E402,F401,F403
from . import autograd  # noqa: E402

globals().update(_namespace_with_out(_OP_MODULES))  # torch's out= on the namespace functions


class memory_format:
    """torch.memory_format: accepted wherever torch takes ``memory_format=``. ``contiguous``,
    ``clone``, ``Tensor.to`` and ``Module.to`` lay tensors out channels-last when asked (the same
    (N, C, H, W) shape over (N, H, W, C) memory, as torch); other ops make C-contiguous outputs."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return _dtype.package_prefix() + self._name

    def __reduce__(self):
        return self._name  # unpickles to the module attribute of that name: the same object, as torch's


contiguous_format = memory_format("contiguous_format")
preserve_format = memory_format("preserve_format")
channels_last = memory_format("channels_last")
channels_last_3d = memory_format("channels_last_3d")
_dtype.as_torch_c_type(memory_format, "torch.memory_format", creatable=False)


# the keyword names of torch.result_type's overloads: two tensors, a number and a tensor, two numbers
_RESULT_TYPE_FORMS = (("tensor", "other"), ("scalar", "tensor"), ("scalar1", "scalar2"))


def result_type(*operands, **named) -> dtype:
    """torch.result_type of two tensors or numbers, given by position or by the keywords of one of
    torch's overloads: ``(tensor, other)``, ``(scalar, tensor)`` or ``(scalar1, scalar2)``."""
    if named:
        for form in _RESULT_TYPE_FORMS:
            rest = form[len(operands):]
            if len(operands) < 2 and set(named) == set(rest):
                operands = (*operands, *(named[name] for name in rest))
                break
        else:
            got = ", ".join([type(value).__name__ for value in operands] + [f"{name}={type(value).__name__}"
                                                                           for name, value in named.items()])
            raise TypeError(f"result_type() received an invalid combination of arguments - got ({got}), but expected "
                            "one of:\n * (Tensor tensor, Tensor other)\n * (Number scalar, Tensor tensor)\n"
                            " * (Tensor tensor, Number other)\n * (Number scalar1, Number scalar2)")
    if len(operands) != 2:
        raise TypeError(f"result_type() takes 2 arguments ({len(operands)} given)")
    return _dtype.result_type(*operands)


def can_cast(from_: dtype, to: dtype) -> bool:
    """torch.can_cast: whether torch's casting rules allow ``from_`` to ``to``; they refuse only
    floating to integral and anything but bool to bool."""
    for position, (name, value) in enumerate((("from_", from_), ("to", to)), start=1):
        if not isinstance(value, dtype):
            raise TypeError(f"can_cast(): argument '{name}' (position {position}) must be chainrule.dtype, "
                            f"not {type(value).__name__}")
    if from_.is_complex and not to.is_complex:
        return False
    if from_.is_floating_point and not (to.is_floating_point or to.is_complex):
        return False
    return not (to is bool and from_ is not bool)


def is_tensor(obj) -> bool:
    """is_tensor(obj) -> bool

    Whether ``obj`` is a Tensor (torch.is_tensor)."""
    return isinstance(obj, Tensor)


def is_storage(obj) -> bool:
    """torch.is_storage: whether ``obj`` is a storage (typed, untyped, or a legacy FloatStorage-style
    class's instance)."""
    from .storage import _Storage

    return isinstance(obj, _Storage)


def is_floating_point(input: Tensor) -> bool:
    """is_floating_point(input) -> bool

    Whether ``input``'s dtype is a floating-point one (torch.is_floating_point)."""
    return input.is_floating_point()


def _assert(condition, message) -> None:
    """torch._assert: an ``assert`` that torch's symbolic tracing can record (torchvision's box
    checks, e3nn's generated shape checks use it): a condition that overrides ``__torch_function__``
    (an fx Proxy) is handed to it, as torch's; eagerly, a plain assert."""
    if type(condition) is not Tensor and _torch_function.has_torch_function((condition,)):
        return _torch_function.handle_torch_function(_assert, (condition,), condition, message)
    assert condition, message


def numel(input: Tensor) -> int:
    """numel(input) -> int

    The number of elements of ``input`` (torch.numel)."""
    return input.numel()


from .torch_version import __version__  # noqa: E402  (a TorchVersion, as torch.__version__)

# subpackages torch exposes as attributes after `import torch`
from . import nn  # noqa: E402
from . import optim  # noqa: E402
from . import utils  # noqa: E402
from . import viz  # noqa: E402

# the explainer is viz's, reachable from autograd too; attached here so autograd never imports viz
autograd.explain = viz.explain
from .serialization import load, save  # noqa: E402


# ---- what scripts ask before they start: devices, backends, threads, printing, determinism
import importlib as _importlib  # noqa: E402
import builtins as _builtins  # noqa: E402
import math as _math  # noqa: E402

import numpy as _np  # noqa: E402

from . import accelerator, amp, backends, cuda, distributions, fft, hub, jit, onnx, special, testing  # noqa: E402
from . import compiler, func, fx, multiprocessing, sparse, version  # noqa: E402
from . import library  # noqa: E402  (torch.library; torch.ops is the ops package's namespaces)
from . import _custom_op  # noqa: E402,F401  (torch._custom_op.impl.get_ctx, called by older fake kernels)
from . import types  # noqa: E402
# ``from .ops import random`` above bound the op module; torch.random is the state module
random = _importlib.import_module(".random", __name__)
from . import _dynamo  # noqa: E402,F401  (torch._dynamo.config, set by scripts before compile)
from . import _higher_order_ops  # noqa: E402,F401  (torch._higher_order_ops.scan, map, ...)
from . import _C  # noqa: E402,F401  (the few torch._C helpers libraries call from Python)
from ._C import PyTorchFileReader, PyTorchFileWriter, ScriptModule  # noqa: E402,F401  (torch exports them at the top level)
from . import profiler  # noqa: E402
from ._layout import jagged, layout, sparse_bsc, sparse_bsr, sparse_coo, sparse_csc, sparse_csr, strided  # noqa: E402,F401

# the public types print under the package's name as torch's do (print(type(x)) shows <class
# 'torch.Tensor'>, not the defining module); pickles name them there too, and the old names still load
for _public_type in (Tensor, Size, dtype, device, layout):
    _public_type.__module__ = __name__
_dtype.as_torch_c_type(device, "torch.device", read_only=False)
from .sparse import (  # noqa: E402,F401
    hspmm,
    smm,
    sparse_compressed_tensor,
    sparse_coo_tensor,
    sparse_csc_tensor,
    sparse_csr_tensor,
    spmm,
    sspaddmm,
)
# torch.utils.checkpoint is reachable right after `import torch`; importing it binds utils.checkpoint
from .utils import checkpoint as _checkpoint  # noqa: E402,F401
from ._config import (  # noqa: E402
    are_deterministic_algorithms_enabled, get_float32_matmul_precision,
    get_num_interop_threads, get_num_threads, is_deterministic_algorithms_warn_only_enabled,
    set_float32_matmul_precision, set_num_interop_threads, set_num_threads,
    use_deterministic_algorithms,
)
from ._config import is_warn_always_enabled, set_flush_denormal, set_warn_always  # noqa: E402
from ._config import get_deterministic_debug_mode, set_deterministic_debug_mode  # noqa: E402
from . import cpu, mps, quasirandom, signal, xpu  # noqa: E402
from .amp import GradScaler  # noqa: E402
from .cuda import OutOfMemoryError  # noqa: E402

import functools as _functools  # noqa: E402


@_functools.cache  # torch caches it too: its cache refuses an unhashable argument before the body runs
def get_device_module(device=None):
    """torch.get_device_module: the module of a device type (chainrule.cuda for 'cuda:1', ...); without
    an argument, the accelerator's if there is one, else chainrule.cpu."""
    if isinstance(device, _backend.device):
        kind = device.type
    elif isinstance(device, str):
        kind = _backend.device(device).type
    elif device is None:
        kind = "cuda" if cuda.is_available() else "cpu"
    else:
        raise RuntimeError(f"Invalid value of device '{device}', expect torch.device, str, or None")
    module = globals().get(kind)
    if module is None:
        raise RuntimeError(f"Device '{kind}' does not have a corresponding module registered as 'torch.{kind}'.")
    return module


from ._format import get_printoptions, set_printoptions  # noqa: E402
from .compiler import compile  # noqa: E402
from .compiler import disable as _disable_dynamo  # noqa: E402,F401  (tensor subclasses decorate __init__ with it)
from .amp import (  # noqa: E402
    autocast, autocast_decrement_nesting, autocast_increment_nesting, clear_autocast_cache, get_autocast_cpu_dtype,
    get_autocast_dtype, get_autocast_gpu_dtype, is_autocast_cache_enabled, is_autocast_cpu_enabled,
    is_autocast_enabled, set_autocast_cache_enabled, set_autocast_cpu_dtype, set_autocast_cpu_enabled,
    set_autocast_dtype, set_autocast_enabled, set_autocast_gpu_dtype,
)

# ``from .ops import linalg`` above bound the op module itself; torch.linalg is the namespace
# module (the same functions, plus NotImplementedError for the decompositions not yet written)
linalg = _importlib.import_module(".linalg", __name__)
# the linear-algebra functions torch removed in 1.9 raise its message naming the replacement
from .ops.decompositions import lstsq, solve  # noqa: E402
from .ops.linalg import _removed_eig as eig, _removed_matrix_rank as matrix_rank  # noqa: E402
from .ops.linalg import _removed_symeig as symeig  # noqa: E402
# torch's private samplers, which distribution libraries (Pyro, NumPyro's torch backend) call
from .ops.gamma_sampling import sample_dirichlet as _sample_dirichlet  # noqa: E402
from .ops.gamma_sampling import standard_gamma as _standard_gamma  # noqa: E402
from .ops.gamma_sampling import dirichlet_grad_tensor as _dirichlet_grad  # noqa: E402
from .ops.gamma_sampling import standard_gamma_grad_tensor as _standard_gamma_grad  # noqa: E402

def is_anomaly_enabled() -> bool:
    return autograd.anomaly.is_anomaly_enabled()


def is_anomaly_check_nan_enabled() -> bool:
    return autograd.anomaly.is_anomaly_check_nan_enabled()


def set_anomaly_enabled(enabled: bool, check_nan: bool = True) -> None:
    """torch.set_anomaly_enabled: switch anomaly detection (autograd.set_detect_anomaly) on or off."""
    autograd.set_detect_anomaly(enabled, check_nan)


def is_complex(input: Tensor) -> bool:
    """Whether ``input``'s dtype is complex (complex64 or complex128)."""
    return input.dtype.is_complex


def get_default_device() -> device:
    """torch.get_default_device: the device of ``set_default_device`` or the innermost ``with
    device(...)`` block ('cuda' as the selected GPU, cuda:0 unless set_device chose another)."""
    chosen = _backend.default_device.device or device("cpu")
    if chosen.type == "cuda" and chosen.index is None:
        return device("cuda", _backend.selected_gpu.of(_backend.cuda_module()))
    return chosen


def set_default_device(device) -> None:  # torch's parameter name; the class is _backend.device here
    """torch.set_default_device: where creation functions (tensor, zeros, randn, arange, ...) put
    tensors given no ``device=``; ``None`` or 'cpu' restores the CPU."""
    chosen = None if device is None else _backend.device(device)
    if chosen is not None and chosen.type == "cpu":
        chosen = None
    if chosen is not None:
        _backend.module_for_device(chosen)  # CuPy and a GPU are there, or a clear error now
        if chosen.index is None and chosen.type == "cuda":
            chosen = _backend.device(chosen.type, 0)
    _backend.default_device.device = chosen


inf = _math.inf
nan = _math.nan
pi = _math.pi
e = _math.e


def _info_dtype(name: str, type):
    """The dtype ``finfo``/``iinfo`` were given: a torch dtype or a Python scalar type (float -> float64),
    as torch's parser takes; a name, a NumPy type or a number is refused in its words."""
    if isinstance(type, _dtype.dtype) or type in (_builtins.float, _builtins.int, _builtins.bool, _builtins.complex):
        return _dtype.to_dtype(type)
    raise TypeError(f"{name}(): argument 'type' (position 1) must be torch.dtype, not {_dtype.parser_type_name(type)}")


class finfo:
    """torch.finfo(dtype): machine limits of a floating dtype (the default dtype if omitted)."""

    def __init__(self, type=None) -> None:
        # in this module float and int are chainrule dtypes, hence _builtins.float and _builtins.int
        dtype = _info_dtype("finfo", type) if type is not None else get_default_dtype()
        dtype = dtype.to_real()  # torch: a complex dtype's limits are its parts' (finfo(cfloat) is float32's)
        if not dtype.is_floating_point:
            raise TypeError("torch.finfo() requires a floating point input type. Use torch.iinfo to handle "
                            "'torch.finfo'")
        limits = _dtype.finfo_of(dtype.np)
        # c10 gives float8_e5m2fnuz an epsilon of 2^-3 (ml_dtypes the spacing above 1, 2^-2): torch's is reported
        eps = 0.125 if dtype.name == "float8_e5m2fnuz" else _builtins.float(limits.eps)
        smallest_normal = _builtins.float(limits.smallest_normal)
        # (read-only afterwards, as torch's: set through __dict__, which as_torch_c_type's __setattr__ guards)
        self.__dict__.update(
            dtype=dtype.name,  # torch's finfo.dtype is the name, a str
            bits=limits.bits, eps=eps, max=_builtins.float(limits.max), min=_builtins.float(limits.min),
            tiny=smallest_normal, smallest_normal=smallest_normal,
            # exactly 10^-digits, the digits floor(-log10(eps)), as torch reports it (ml_dtypes' precision
            # for the float8 types is one digit more)
            resolution=10.0 ** -_math.floor(-_math.log10(eps)))

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
                f"smallest_normal={self.smallest_normal:g}, tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:
    """torch.iinfo(dtype): the range of an integer dtype."""

    def __init__(self, type) -> None:
        dtype = _info_dtype("iinfo", type)
        if dtype is bool:
            raise TypeError("torch.bool is not supported by torch.iinfo")
        if dtype.is_floating_point or dtype.is_complex:
            raise TypeError("torch.iinfo() requires an integer input type. Use torch.finfo to handle 'torch.iinfo'")
        limits = _np.iinfo(dtype.np)
        # (read-only afterwards, as torch's: set through __dict__, which as_torch_c_type's __setattr__ guards)
        self.__dict__.update(dtype=dtype.name,  # a str, as torch's iinfo.dtype
                             bits=limits.bits, max=_builtins.int(limits.max), min=_builtins.int(limits.min))

    def __repr__(self) -> str:
        return f"iinfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype})"


# torch's finfo and iinfo are C types: read-only attributes, and unhashable (in torch's words)
def _unhashable(self):
    raise TypeError(f"unhashable type: 'torch.{type(self).__name__}'")


finfo.__hash__ = iinfo.__hash__ = _unhashable
_dtype.as_torch_c_type(finfo, "torch.finfo")
_dtype.as_torch_c_type(iinfo, "torch.iinfo")


# ---- torch's legacy tensor types (FloatTensor, ..., torch.cuda.FloatTensor) and autograd.Variable
from . import _legacy_types  # noqa: E402

globals().update(_legacy_types.cpu_types)
for _name, _legacy in _legacy_types.cuda_types.items():
    setattr(cuda, _name, _legacy)
autograd.Variable = _legacy_types.Variable
# `from torch.autograd.variable import Variable` (older scripts) finds a module of that name, while
# the attribute autograd.variable stays torch's deprecated function
_sys_modules = _importlib.import_module("sys").modules
_sys_modules.setdefault(__name__ + ".autograd.variable", _legacy_types.variable_module(__name__ + ".autograd.variable"))


def set_default_tensor_type(t) -> None:
    """torch.set_default_tensor_type (deprecated in torch 2.1): the default floating dtype, and for a
    CUDA type the default device, from a legacy type (chainrule.DoubleTensor) or its name. Its
    deprecation warning is torch's TORCH_WARN_ONCE: once a process."""
    from . import _config

    legacy = _legacy_types.resolve(t)  # (a bad name fails in its lookup, before torch's warning)
    _config.warn_once("torch.set_default_tensor_type() is deprecated as of PyTorch 2.1, please use "
                      "torch.set_default_dtype() and torch.set_default_device() as alternatives. (Triggered "
                      "internally at /__w/pytorch/pytorch/torch/csrc/tensor/python_tensor.cpp:434.)")
    if not isinstance(legacy, _legacy_types.tensortype):
        raise TypeError("invalid type object: only floating-point types are supported as the default type")
    _legacy_types.check_available(legacy)  # torch refuses a CUDA type it has no GPU for before its dtype
    if not legacy.dtype.is_floating_point:
        raise TypeError("only floating-point types are supported as the default type")
    set_default_device("cuda" if legacy.is_cuda else None)
    set_default_dtype(legacy.dtype)


# --- opsA: structural/statistics ---
from .ops import statistics as _statistics, structural as _structural, windows as _windows  # noqa: E402

for _module in (_structural, _statistics, _windows):
    _methods.bind_module(_module)
from .ops.structural import *  # noqa: E402,F401,F403
from .ops.statistics import *  # noqa: E402,F401,F403
from .ops.windows import *  # noqa: E402,F401,F403
# torch's top-level spellings of these nn.functional ops are the same functions
from .nn.functional import (  # noqa: E402,F401
    bilinear, channel_shuffle, cosine_similarity, native_channel_shuffle, pairwise_distance, pdist, pixel_shuffle,
    pixel_unshuffle,
)

# --- s6 names: scatter views, as_strided, and torch's other small names (bound before the in-place variants)
from .ops import compat as _compat, scatter_views as _scatter_views  # noqa: E402

for _module in (_scatter_views, _compat):
    _methods.bind_module(_module)
from .ops.scatter_views import *  # noqa: E402,F401,F403
from .ops.compat import *  # noqa: E402,F401,F403
globals().update(_namespace_with_out([_statistics, _scatter_views, _compat]))  # and their torch out=
# torch._foreach_*: optimizer code's list-at-a-time updates
from .ops.foreach import *  # noqa: E402,F401,F403

# --- opsB: special/aliases/in-place ---
from .ops import special_functions as _special_functions  # noqa: E402

_methods.bind_module(_special_functions)
_methods.bind_inplace_variants()
_methods.bind_tensor_misc()
from .ops.special_functions import *  # noqa: E402,F401,F403

for _alias, _name in _methods.ALIASES.items():
    if _name in globals():
        globals().setdefault(_alias, globals()[_name])
for _name in _methods.TOP_LEVEL_INPLACE:
    globals().setdefault(_name + "_", _methods.top_level_inplace(_name))
multiply, divide, subtract = mul, div, sub  # noqa: F405
adjoint, index_put, index_put_, put = Tensor.adjoint, Tensor.index_put, Tensor.index_put_, Tensor.put
del _alias, _name

# --- s6 names: torch's top-level spellings of Tensor methods and nn.functional ops
from .func import vmap  # noqa: E402,F401
from .nn.functional import rms_norm  # noqa: E402,F401
# torch's top-level losses take ATen's arguments (an int reduction), not nn.functional's
from .nn._aten_losses import *  # noqa: E402,F401,F403

detach, fill_, zero_ = Tensor.detach, Tensor.fill_, Tensor.zero_
# --- s7 names: more top-level spellings of Tensor methods and of nn.functional's in-place ops
detach_, resize_as_, as_strided_ = Tensor.detach_, Tensor.resize_as_, Tensor.as_strided_
from .nn.functional import celu_, rrelu_, selu_, threshold_  # noqa: E402,F401
get_device, is_nonzero, is_same_size, is_signed = Tensor.get_device, Tensor.is_nonzero, Tensor.is_same_size, Tensor.is_signed
row_stack = vstack  # noqa: F405
newaxis = None
is_inference = Tensor.is_inference
from . import storage  # noqa: E402
from . import _utils  # noqa: E402,F401  (torch._utils, for checkpoint readers that rebuild tensors themselves)
from .storage import TypedStorage, UntypedStorage  # noqa: E402,F401

globals().update(storage.LEGACY_STORAGES)  # torch.FloatStorage, ..., what Tensor.storage_type() returns
from .accelerator import Event, Stream  # noqa: E402,F401  torch's accelerator-generic classes

# --- NumPy's axis=/keepdims= on the public functions torch's argument parser gives them to
import inspect as _inspect  # noqa: E402
import sys as _sys  # noqa: E402

from .ops import numpy_names as _numpy_names  # noqa: E402
from . import special as _special_namespace  # noqa: E402

_numpy_names.install(_sys.modules[__name__], _numpy_names.PUBLIC_NAMES["torch"], Tensor)
_numpy_names.install(linalg, _numpy_names.PUBLIC_NAMES["linalg"])
_numpy_names.install(_special_namespace, _numpy_names.PUBLIC_NAMES["special"])
_numpy_names.install(nn.functional, _numpy_names.PUBLIC_NAMES["nn.functional"])
_numpy_names.install(fft, _numpy_names.PUBLIC_NAMES["fft"])
_numpy_names.install_methods(Tensor, _numpy_names.PUBLIC_NAMES["Tensor"])

# --- names PyTorch Geometric and kornia reach for at import (docs/compatibility-trials.md, session 14)
from . import __config__, _subclasses, _tensor_str, futures  # noqa: E402,F401
from ._symbolic_sizes import SymBool, SymFloat, SymInt  # noqa: E402,F401
from ._symbolic_sizes import sym_float, sym_int, sym_ite, sym_max, sym_min, sym_not, sym_sqrt, sym_sum  # noqa: E402,F401
from .futures import Future  # noqa: E402,F401  (torch.Future: captum's ablations test isinstance(out, torch.Future))
from .utils import dlpack as _dlpack  # noqa: E402,F401  (binds utils.dlpack, as `import torch` does)



def __getattr__(name: str):
    # torch.nested is imported on first use: its Tensor subclass overrides __torch_function__, and the
    # first such class makes every dispatched property check for handlers, which a program that never
    # builds a nested tensor should not pay for
    if name == "nested":
        return _importlib.import_module(".nested", __name__)
    if name == "masked":  # torch.masked: also imported on first use, like torch.nested
        return _importlib.import_module(".masked", __name__)
    if name in ("ao", "quantization"):  # torch.ao (and its old alias): on first use, most programs never quantize
        return _importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


torch = _sys.modules[__name__]  # torch.torch is torch: its own submodules' `import torch` binds it

# --- torch's __torch_function__ protocol (chainrule.overrides): every public op, method, operator and
# the properties torch dispatches hand their calls to TorchFunctionModes and overriding arguments
from . import _torch_function  # noqa: E402
from . import overrides  # noqa: E402,F401

_methods.bind_torch_function()
_torch_function.wrap_module(_sys.modules[__name__], "torch", skip=overrides._UNDISPATCHED_TOP_LEVEL,
                            builtin=lambda name: name not in _torch_function.PYTHON_FUNCTIONS_AT_TOP_LEVEL,
                            aliases=_methods.TOP_LEVEL_ALIASES)
# the top-level spellings taken from Tensor's methods above stay those methods (built-ins, as torch's)
# (their tensor keyword is torch's input=, not self=)
for _name in ("detach", "fill_", "zero_", "detach_", "resize_as_", "as_strided_", "get_device", "is_nonzero",
              "is_same_size", "is_signed", "is_inference", "adjoint", "index_put", "index_put_", "put"):
    _method = getattr(Tensor, _name)
    if getattr(_method, "function_form", None) is not None:  # one numbering its arguments from input
        _method = _torch_function.dispatching(_method.function_form, "torch")
    # (parsed as torch's function first where the parser knows its signatures: fill_'s input, value)
    _function = _torch_function.signature_check(_methods.method_as_function(_method), (__name__, _name))
    globals()[_name] = _torch_function.as_builtin(_function, (__name__, _name))
from .nn._handler_arguments import torch_spelling as _torch_spelling  # noqa: E402

_torch_function.wrap_module(nn.functional, "torch.nn.functional", skip=overrides._UNDISPATCHED_FUNCTIONAL,
                            builtin=_torch_function.BUILTINS_IN_FUNCTIONAL.__contains__,
                            spelling=_torch_spelling)
for _namespace, _owner in ((linalg, "torch.linalg"), (fft, "torch.fft"), (special, "torch.special")):
    _torch_function.wrap_module(_namespace, _owner, builtin=lambda name: True)
# torch's boolean_dispatch functions (F.max_pool2d, torch.unique, ...) take (*args, **kwargs), read the
# flag and call one of two functions: inspect.signature shows that, not the branches' parameters
for _module_name, _name in _BOOLEAN_DISPATCH:
    _sys.modules[_module_name].__dict__[_name].__signature__ = _inspect.Signature(
        [_inspect.Parameter("args", _inspect.Parameter.VAR_POSITIONAL),
         _inspect.Parameter("kwargs", _inspect.Parameter.VAR_KEYWORD)])
del _inspect, _BOOLEAN_DISPATCH
for _name in ("constant_", "kaiming_uniform_", "normal_", "uniform_"):  # the nn.init functions torch dispatches
    setattr(nn.init, _name, _torch_function.dispatching(getattr(nn.init, _name), "torch.nn.init",
                                                        home=(nn.init.__name__, _name)))
_modules = [nn.Module]
for _module_class in _modules:  # every Module class defined so far, subclasses of subclasses included
    _modules.extend(_module_class.__subclasses__())
_torch_function.rewrap_captured(_modules)
_torch_function.wired = True
del _modules, _module_class, _namespace, _owner, _name, _function, _torch_spelling
from ._C import DisableTorchFunction, DisableTorchFunctionSubclass  # noqa: E402,F401
from . import functional  # noqa: E402,F401  (torch.functional names the wired top-level objects)

# the autograd engine's own modules were bound on chainrule.autograd as they loaded (all have by
# now); torch.autograd has no such names. They stay importable: `from chainrule.autograd.engine import`
for _name in ("batched_grad", "batched_walk", "engine", "engine_options", "hooks", "second_order"):
    delattr(autograd, _name)
del _name
