"""What each op does on a jagged nested tensor, written as ordinary chainrule ops on its ``values``.

Elementwise ops run on ``values`` as they are; ops over a dim other than the batch and ragged ones
run on ``values`` at that dim minus one; ops over the ragged dim (sum, mean, max, softmax,
padding) gather the components into a padded block and back, so each is an indexing op with its
own gradient; attention and batched matmul run per component. Anything else raises torch's
NotImplementedError naming the aten op, as torch's NJT does.
"""

from __future__ import annotations

import inspect

import numpy as np

from .. import return_types
from .._torch_function import DisableTorchFunctionSubclass
from ..autograd.grad_mode import is_grad_enabled
from ..ops.creation import full, tensor
from ..ops.elementwise import where
from ..ops.shape import cat
from ..tensor import Tensor
from ._jagged import HANDLERS, NestedTensor, make_nested

__all__ = ["padded", "to_padded_tensor", "unpadded"]

_UNARY = ("abs", "neg", "negative", "pos", "positive", "sin", "cos", "tan", "tanh", "sigmoid", "exp", "exp2", "expm1",
          "log", "log1p", "log2", "log10", "sqrt", "rsqrt", "square", "reciprocal", "erf", "erfc", "erfinv", "floor",
          "ceil", "round", "trunc", "frac", "sign", "sgn", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh",
          "atanh", "relu", "relu6", "gelu", "silu", "elu", "selu", "celu", "leaky_relu", "softplus", "mish",
          "hardswish", "hardsigmoid", "hardtanh", "logsigmoid", "tanhshrink", "softsign", "softshrink",
          "hardshrink", "clamp", "clip", "clamp_min", "clamp_max", "nan_to_num", "logical_not", "bitwise_not",
          "invert", "isnan", "isinf", "isfinite", "dropout", "alpha_dropout", "threshold", "detach", "clone",
          "to", "type", "float", "double", "half", "bfloat16", "long", "int", "short", "bool", "byte", "char",
          "cpu", "cuda", "zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like",
          "fill_", "zero_", "normal_", "uniform_", "type_as", "fill", "conj", "conj_physical", "resolve_conj",
          "resolve_neg", "real", "imag", "angle", "cfloat", "cdouble", "deg2rad", "rad2deg", "sinc", "signbit",
          "isposinf", "isneginf", "isreal", "frexp", "digamma", "lgamma", "logit", "polygamma", "mvlgamma", "i0",
          "i0e", "i1", "i1e", "ndtr", "ndtri", "log_ndtr", "entr", "erfcx", "airy_ai", "bessel_j0", "bessel_j1",
          "bessel_y0", "bessel_y1", "modified_bessel_i0", "modified_bessel_i1", "modified_bessel_k0",
          "modified_bessel_k1", "scaled_modified_bessel_k0", "scaled_modified_bessel_k1", "spherical_bessel_j0")
_BINARY = ("add", "sub", "subtract", "rsub", "mul", "multiply", "div", "divide", "true_divide", "truediv", "floordiv",
           "floor_divide", "remainder", "mod", "fmod", "pow", "float_power", "atan2", "maximum", "minimum", "fmax",
           "fmin", "eq", "ne", "lt", "le", "gt", "ge", "less", "less_equal", "greater", "greater_equal",
           "not_equal", "logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor",
           "and", "or", "xor", "where", "masked_fill", "lerp", "addcmul", "addcdiv", "copysign", "hypot", "xlogy",
           "rdiv", "rpow", "rfloordiv", "rmod", "rand", "ror", "rxor", "ldexp", "logaddexp", "logaddexp2",
           "heaviside", "isclose", "nextafter", "igamma", "igammac", "special_xlog1py", "special_zeta", "gcd", "lcm",
           "bitwise_left_shift", "bitwise_right_shift", "lshift", "rshift", "rlshift", "rrshift",
           *(f"{shifted}{kind}_polynomial_{letter}" for shifted in ("", "shifted_") for kind in ("chebyshev",)
             for letter in "tuvw"),
           "hermite_polynomial_h", "hermite_polynomial_he", "laguerre_polynomial_l", "legendre_polynomial_p")
# reductions over the ragged dim pad the gaps with the value that leaves the result unchanged
_PADDING_FOR = {"sum": 0.0, "mean": 0.0, "nansum": 0.0, "nanmean": np.nan, "amax": -np.inf, "max": -np.inf,
                "amin": np.inf, "min": np.inf, "argmax": -np.inf, "argmin": np.inf, "all": True, "any": False,
                "prod": 1.0}


def handles(*names):
    def register(handler):
        for name in names:
            HANDLERS[name] = handler
        return handler
    return register


def _shape_text(value) -> str:
    return "(" + ", ".join(str(s) for s in value.shape) + ")"


def _wrap_dim(dim: int, ndim: int) -> int:
    if not -ndim <= dim < ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {dim})")
    return dim % ndim


def _inner_dim(nested: NestedTensor, dim: int, name: str, batch: bool = False) -> int:
    """``dim`` of ``nested`` wrapped, refused with torch's message when it is the ragged dim (or
    the batch dim, unless ``batch``)."""
    dim = _wrap_dim(dim, nested.dim())
    if dim == nested._ragged_idx:
        raise RuntimeError(f"{name}(): not supported for NestedTensor on ragged dim")
    if dim == 0 and not batch:
        raise RuntimeError(f"{name}(): not supported for NestedTensor on dim=0")
    return dim


def _require_contiguous(nested: NestedTensor, signature: str, argument: str = "self") -> None:
    """torch's schema check for ops that take only a contiguous NJT ragged in dim 1 ("jt")."""
    if nested._lengths is not None or nested._ragged_idx != 1:
        raise ValueError(f"NestedTensor {signature}: expected {argument} to be a contiguous jagged layout "
                         "NestedTensor")


def _first_nested(values) -> NestedTensor:
    for value in values:
        if isinstance(value, NestedTensor):
            return value
        if isinstance(value, (list, tuple)):
            found = _first_nested(value)
            if found is not None:
                return found
    return None


def _batch_index(nested: NestedTensor) -> Tensor:
    """For each position along the packed dim, the component it belongs to (0 in gaps)."""
    owner = np.zeros(nested._values.shape[nested._ragged_idx - 1], dtype=np.int64)
    for i, (start, length) in enumerate(nested.component_bounds()):
        owner[start:start + length] = i
    return tensor(owner, device=nested.device)


def _dense_operand(nested: NestedTensor, dense: Tensor, name: str) -> Tensor:
    """``dense`` shaped to broadcast against ``nested``'s values: a leading batch dim (size B or 1)
    is spread over each component's positions; the ragged dim must be absent or of size 1."""
    ndim, ragged = nested.dim(), nested._ragged_idx
    mismatch = RuntimeError(f"cannot call binary pointwise function {name}.Tensor with inputs of shapes "
                            f"{_shape_text(nested)} and {_shape_text(dense)}")
    if dense.dim() > ndim:
        raise mismatch
    if dense.dim() == ndim:
        if dense.shape[0] == 1:
            dense = dense.squeeze(0)
        elif dense.shape[0] == len(nested) and dense.shape[ragged] == 1:
            if nested._lengths is not None:
                # torch makes the rows an NJT on the offsets alone, whose raggedness is not the one
                # of an NJT with holes (its lengths), and refuses the two as of different shapes
                raise mismatch
            # one row per component: each spread over its positions along the packed dim
            return dense.squeeze(ragged)[_batch_index(nested)].movedim(0, ragged - 1)
        else:
            raise mismatch
    reach = dense.dim() - (ndim - ragged)  # dense's dim aligned with the ragged one, if it reaches it
    if reach >= 0 and dense.shape[reach] != 1:
        raise mismatch
    return dense


def _unwrap(value, first: NestedTensor, name: str):
    if isinstance(value, NestedTensor):
        if value._ragged is not first._ragged or len(value) != len(first):
            raise RuntimeError(f"cannot call binary pointwise function {name}.Tensor with inputs of shapes "
                               f"{_shape_text(first)} and {_shape_text(value)}")
        return value._values
    if isinstance(value, Tensor) and value.dim() > 0:
        return _dense_operand(first, value, name)
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(item, first, name) for item in value)
    return value


def _wrap(first: NestedTensor, result):
    if isinstance(result, Tensor):
        return first._like(result)
    if isinstance(result, tuple):
        items = (_wrap(first, item) for item in result)
        return type(result)(*items) if hasattr(result, "_fields") else type(result)(items)
    return result


def _gap_mask(nested: NestedTensor) -> Tensor:
    """True at the positions of ``nested``'s values that lie in no component (its holes), shaped to
    broadcast against the values."""
    packed = nested._ragged_idx - 1
    inside = np.zeros(nested._values.shape[packed], dtype=bool)
    for start, length in nested.component_bounds():
        inside[start:start + length] = True
    shape = [1] * nested._values.dim()
    shape[packed] = len(inside)
    return tensor(~inside.reshape(shape), device=nested.device)


def _outside_gaps(value, gaps: Tensor):
    """An operand of an elementwise op on values with holes, its gradient kept out of the holes: the
    op runs there on whatever the gaps hold (log of 0, a negative base's power), and a zero cotangent
    times an infinite derivative would write NaN into the operand's gradient."""
    if not (isinstance(value, Tensor) and value.requires_grad):
        return value
    full = value.expand(np.broadcast_shapes(tuple(value.shape), tuple(gaps.shape)))
    return where(gaps, full.detach(), full)


@handles(*_UNARY, *_BINARY, *(name + "_" for name in _UNARY + _BINARY if not name.endswith("_")))
def _elementwise(func, name, args, kwargs):
    first = _first_nested((*args, *kwargs.values()))
    plain_args = tuple(_unwrap(value, first, name) for value in args)
    plain_kwargs = {key: _unwrap(value, first, name) for key, value in kwargs.items()}
    if first._lengths is not None and not name.endswith("_") and is_grad_enabled():
        gaps = _gap_mask(first)
        plain_args = tuple(_outside_gaps(value, gaps) for value in plain_args)
        plain_kwargs = {key: _outside_gaps(value, gaps) for key, value in plain_kwargs.items()}
    result = func(*plain_args, **plain_kwargs)
    if name.endswith("_") and args and isinstance(args[0], NestedTensor) and result is plain_args[0]:
        args[0]._data = args[0]._values._data  # an in-place op: the nested tensor is the result
        return args[0]
    return _wrap(first, result)


@handles("is_cuda", "is_cpu", "is_meta", "itemsize", "nbytes", "element_size", "get_device", "is_floating_point",
         "is_complex", "is_signed", "data_ptr", "output_nr", "retains_grad", "name", "_version")
def _metadata(func, name, args, kwargs):
    with DisableTorchFunctionSubclass():
        return func(*args, **kwargs)


@handles("data")
def _data(func, name, args, kwargs):
    return args[0]._like(args[0]._values.data)


@handles("format")
def _format(func, name, args, kwargs):
    return format(repr(args[0]), args[1] if len(args) > 1 else "")


@handles("tolist")
def _tolist(func, name, args, kwargs):
    raise RuntimeError(".tolist() is not supported for tensor subclasses, got NestedTensor")


@handles("numpy")
def _numpy(func, name, args, kwargs):
    raise RuntimeError(".numpy() is not supported for tensor subclasses.")


@handles("item")
def _item(func, name, args, kwargs):
    raise RuntimeError(f"a Tensor with {args[0].numel()} elements cannot be converted to Scalar")


# ---------------------------------------------------------------------------- padding and back
def padded(nested: NestedTensor, padding, length: int | None = None) -> Tensor:
    """The dense (B, ..., max length, ...) block of ``nested`` (the ragged dim where it is), gaps
    filled with ``padding``: one gather from the packed values plus a padding row, so its gradient
    is the gather's (each value's gradient from its one place in the block)."""
    values, packed = nested._values, nested._ragged_idx - 1
    rows = values.movedim(packed, 0) if packed else values
    bounds = nested.component_bounds()
    if length is None:
        length = max((n for _, n in bounds), default=0)
    total = rows.shape[0]
    index = np.full((len(bounds), length), total, dtype=np.int64)
    for i, (start, n) in enumerate(bounds):
        n = min(n, length)
        index[i, :n] = np.arange(start, start + n)
    fill = full((1, *rows.shape[1:]), padding, dtype=values.dtype, device=values.device)
    block = cat([rows, fill])[tensor(index, device=values.device)]
    return block.movedim(1, packed + 1) if packed else block


def unpadded(nested: NestedTensor, block: Tensor) -> Tensor:
    """The inverse of ``padded``: packed values laid out as ``nested``'s (zeros in any gaps)."""
    packed = nested._ragged_idx - 1
    rows = block.movedim(packed + 1, 1) if packed else block
    batch, length = rows.shape[0], rows.shape[1]
    flat = rows.reshape(batch * length, *rows.shape[2:])
    total = nested._values.shape[packed]
    index = np.full(total, batch * length, dtype=np.int64)
    for i, (start, n) in enumerate(nested.component_bounds()):
        index[start:start + n] = i * length + np.arange(n)
    zero = full((1, *flat.shape[1:]), 0, dtype=flat.dtype, device=flat.device)
    values = cat([flat, zero])[tensor(index, device=flat.device)]
    return values.movedim(0, packed) if packed else values


def to_padded_tensor(nested: NestedTensor, padding: float, output_size=None) -> Tensor:
    ragged = nested._ragged_idx
    if output_size is None:
        return padded(nested, padding)
    if len(output_size) != nested.dim():
        raise RuntimeError(f"to_padded_tensor(): output_size {list(output_size)} must have {nested.dim()} dims "
                           f"for a nested tensor of shape {_shape_text(nested)}")
    if not nested._strided_layout:
        # torch's jagged layout reads only the ragged dim's entry: the other dims keep their sizes
        return padded(nested, padding, int(output_size[ragged]))
    block = padded(nested, padding)
    if any(int(want) < have for want, have in zip(output_size, block.shape)):
        raise RuntimeError("Value in output_size is less than NestedTensor padded size. Truncation is not supported.")
    for dim in range(1, block.dim()):
        extra = list(block.shape)
        extra[dim] = int(output_size[dim]) - block.shape[dim]
        if extra[dim]:
            block = cat([block, full(extra, padding, dtype=block.dtype, device=block.device)], dim)
    return block


# ---------------------------------------------------------------------------- dims
def _argument(args, kwargs, position: int, keyword: str, default=None):
    if len(args) > position:
        return args[position]
    return kwargs.get(keyword, default)


def _replace_argument(args, kwargs, position: int, keyword: str, value):
    """``args``/``kwargs`` with the argument at ``position`` (or named ``keyword``) set to ``value``."""
    if len(args) > position:
        return (*args[:position], value, *args[position + 1:]), kwargs
    return args, {**kwargs, keyword: value}


@handles("sum", "mean", "nansum", "nanmean", "amax", "amin", "max", "min", "argmax", "argmin", "all", "any", "prod")
def _reduction(func, name, args, kwargs):
    nested = args[0]
    dim = _argument(args, kwargs, 1, "dim")
    if isinstance(dim, Tensor):  # torch.max(a, b): the elementwise maximum
        return _elementwise(func, name, args, kwargs)
    plain_args = (nested._values, *args[1:])
    if dim is None:
        return func(*plain_args, **kwargs)
    keepdim = bool(_argument(args, kwargs, 2, "keepdim", False))
    dims = sorted({_wrap_dim(d, nested.dim()) for d in (dim if isinstance(dim, (list, tuple)) else (dim,))})
    ragged = nested._ragged_idx
    if 0 in dims and ragged not in dims:
        raise RuntimeError(f"{name}(): reducing along the batch dimension but not the ragged dimension is not "
                           "supported for nested tensors")
    if ragged in dims and len(dims) > 1 and 0 not in dims:
        raise RuntimeError(f"{name}(): reducing along a ragged and non-batch dimension is not supported for "
                           "nested tensors")
    if 0 in dims:  # the batch and ragged dims together: every component's elements at once
        inner = [d - 1 for d in dims if d != 0]
        args, kwargs = _replace_argument(plain_args, kwargs, 1, "dim", inner[0] if len(inner) == 1 else tuple(inner))
        result = func(*args, **kwargs)
        return result.unsqueeze(0) if keepdim and isinstance(result, Tensor) else result
    if ragged in dims:
        return _ragged_reduction(nested, name, ragged, keepdim, kwargs.get("dtype"))
    inner = [d - 1 for d in dims]
    args, kwargs = _replace_argument(plain_args, kwargs, 1, "dim", inner[0] if len(inner) == 1 else tuple(inner))
    result = func(*args, **kwargs)
    new_ragged = ragged if keepdim else ragged - sum(d < ragged for d in dims)
    if isinstance(result, tuple):  # max/min with a dim: (values, indices), both nested
        return type(result)(*(nested._like(item, new_ragged) for item in result))
    return nested._like(result, new_ragged)


def _ragged_reduction(nested: NestedTensor, name: str, ragged: int, keepdim: bool, dtype):
    block = padded(nested, _PADDING_FOR[name])
    if name in ("max", "min"):
        values, indices = getattr(block, name)(ragged, keepdim)
        return getattr(return_types, name)(values, indices)
    if name == "mean":
        total = block.sum(ragged, keepdim=keepdim, dtype=dtype)
        counts = [n for _, n in nested.component_bounds()]
        shape = (len(counts),) + (1,) * (total.dim() - 1)
        return total / tensor(counts, dtype=total.dtype, device=total.device).reshape(shape)
    reduce = getattr(block, name)
    if name in ("sum", "nansum", "nanmean", "prod"):
        return reduce(ragged, keepdim=keepdim, dtype=dtype)
    return reduce(ragged, keepdim)


@handles("softmax", "log_softmax")
def _softmax(func, name, args, kwargs):
    nested = args[0]
    dim = _wrap_dim(_argument(args, kwargs, 1, "dim"), nested.dim())
    if dim == 0:
        raise RuntimeError(f"{name}(): not supported when reducing across the batch dimension for NestedTensor")
    plain = (nested._values, *args[1:])
    if dim == nested._ragged_idx:
        if name == "log_softmax":
            raise RuntimeError("log_softmax(): not supported when reducing along the ragged dimension for NestedTensor")
        block = padded(nested, -np.inf)
        args, kwargs = _replace_argument((block, *args[1:]), kwargs, 1, "dim", dim)
        return nested._like(unpadded(nested, func(*args, **kwargs)))
    args, kwargs = _replace_argument(plain, kwargs, 1, "dim", dim - 1)
    return nested._like(func(*args, **kwargs))


@handles("unsqueeze")
def _unsqueeze(func, name, args, kwargs):
    nested = args[0]
    dim = _wrap_dim(_argument(args, kwargs, 1, "dim"), nested.dim() + 1)
    if dim == 0:
        raise RuntimeError("unsqueeze(): not supported for NestedTensor on dim=0")
    ragged = nested._ragged_idx + (dim <= nested._ragged_idx)
    return nested._like(nested._values.unsqueeze(dim - 1), ragged)


@handles("squeeze")
def _squeeze(func, name, args, kwargs):
    nested = args[0]
    dim = _argument(args, kwargs, 1, "dim")
    if dim is None or isinstance(dim, (list, tuple)):  # torch's NJT has no squeeze of all or several dims
        raise NotImplementedError("aten.squeeze.default" if dim is None else "aten.squeeze.dims")
    dim = _inner_dim(nested, dim, "squeeze")
    ragged = nested._ragged_idx - (dim < nested._ragged_idx and nested.shape[dim] == 1)
    return nested._like(nested._values.squeeze(dim - 1), ragged)


@handles("transpose", "swapaxes", "swapdims")
def _transpose(func, name, args, kwargs):
    nested = args[0]
    first = _wrap_dim(_argument(args, kwargs, 1, "dim0"), nested.dim())
    second = _wrap_dim(_argument(args, kwargs, 2, "dim1"), nested.dim())
    if 0 in (first, second):
        raise ValueError("Transpose is not supported on the batch dimension for jagged NT")
    ragged = nested._ragged_idx
    ragged = second if ragged == first else first if ragged == second else ragged
    return nested._like(nested._values.transpose(first - 1, second - 1), ragged)


@handles("flatten")
def _flatten(func, name, args, kwargs):
    nested = args[0]
    start = _wrap_dim(_argument(args, kwargs, 1, "start_dim", 0), nested.dim())
    end = _wrap_dim(_argument(args, kwargs, 2, "end_dim", -1), nested.dim())
    ragged = nested._ragged_idx
    if start == 0:
        raise RuntimeError("flatten(): not supported for NestedTensor on dim=0")
    if start <= ragged <= end and start != end:
        raise RuntimeError("flatten(): not supported for NestedTensor on ragged dim")
    if start >= end:
        return nested
    return nested._like(nested._values.flatten(start - 1, end - 1), ragged - (end - start) * (ragged > end))


@handles("unflatten")
def _unflatten(func, name, args, kwargs):
    nested = args[0]
    dim = _wrap_dim(_argument(args, kwargs, 1, "dim"), nested.dim())
    sizes = tuple(_argument(args, kwargs, 2, "sizes"))
    ragged = nested._ragged_idx
    if dim in (0, ragged):
        raise RuntimeError(f"unflatten(): not supported for NestedTensor on dim={dim}")
    return nested._like(nested._values.unflatten(dim - 1, sizes), ragged + (len(sizes) - 1) * (ragged > dim))


@handles("chunk", "split", "split_with_sizes")
def _split(func, name, args, kwargs):
    nested = args[0]
    signature = {"chunk": "chunk_default(self: jt, chunks: any, dim: any?)",
                 "split": "split_tensor(self: jt, split_size: any, dim: any?)",
                 "split_with_sizes": "split_with_sizes_default(self: jt, split_sizes: any, dim: any?)"}[name]
    _require_contiguous(nested, signature)
    dim = _inner_dim(nested, _argument(args, kwargs, 2, "dim", 0), name, batch=name == "chunk")
    if dim == 0:  # chunks of whole components (as dense chunk sizes them), each with offsets of its own
        size = -(-len(nested) // _argument(args, kwargs, 1, "chunks"))
        return [_batch_chunk(nested, range(first, min(first + size, len(nested))))
                for first in range(0, len(nested), size)]
    args, kwargs = _replace_argument((nested._values, *args[1:]), kwargs, 2, "dim", dim - 1)
    pieces = tuple(nested._like(piece) for piece in func(*args, **kwargs))
    return list(pieces) if name == "split_with_sizes" else pieces


def _batch_chunk(nested: NestedTensor, group) -> NestedTensor:
    from . import _offsets_of
    bounds = [nested.component_bounds()[i] for i in group]
    start, end = bounds[0][0], bounds[-1][0] + bounds[-1][1]
    values = nested._values.narrow(0, start, end - start)
    return make_nested(values, _offsets_of([n for _, n in bounds], values.device), None, 1)


@handles("narrow")
def _narrow(func, name, args, kwargs):
    nested = args[0]
    _require_contiguous(nested, "narrow(self: jt, dim: any, start: any, length: any)")
    dim = _inner_dim(nested, _argument(args, kwargs, 1, "dim"), name)
    args, kwargs = _replace_argument((nested._values, *args[1:]), kwargs, 1, "dim", dim - 1)
    return nested._like(func(*args, **kwargs))


@handles("select")
def _select(func, name, args, kwargs):
    nested = args[0]
    dim = _inner_dim(nested, _argument(args, kwargs, 1, "dim"), name, batch=True)
    index = _argument(args, kwargs, 2, "index")
    if dim == 0:
        return nested.unbind()[index]
    if nested._lengths is not None:
        raise ValueError("select(): not yet supported on dim != 0 for non-contiguous nested tensor with holes")
    return nested._like(nested._values.select(dim - 1, index), nested._ragged_idx - (dim < nested._ragged_idx))


@handles("cat", "concat", "concatenate", "stack")
def _join(func, name, args, kwargs):
    tensors = list(_argument(args, kwargs, 0, "tensors"))
    first = _first_nested(tensors)
    stacking = name == "stack"
    for t in tensors:
        if not isinstance(t, NestedTensor):
            raise RuntimeError(f"{name}(): expected all nested tensors inputs")
        if t.dim() != first.dim() or t._ragged is not first._ragged or t._ragged_idx != first._ragged_idx:
            raise RuntimeError(f"{name}(): expected all nested tensors to have the same nested structure, got "
                               f"shapes {_shape_text(first)} and {_shape_text(t)}")
    # stack's dim counts in the result's dims (one more), where torch refuses the ragged dim's index
    dim = _inner_dim(first._like(first._values.unsqueeze(0)) if stacking else first,
                     _argument(args, kwargs, 1, "dim", 0), name)
    if stacking:
        ragged = first._ragged_idx + (dim < first._ragged_idx)
        from ..ops.shape import stack
        return first._like(stack([t._values for t in tensors], dim - 1), ragged)
    return first._like(cat([t._values for t in tensors], dim - 1))


@handles("index_put", "index_put_")
def _index_put(func, name, args, kwargs):
    nested = _argument(args, kwargs, 0, "input")
    indices = list(_argument(args, kwargs, 1, "indices"))
    source = _argument(args, kwargs, 2, "values")
    accumulate = bool(_argument(args, kwargs, 3, "accumulate", False))
    ragged = nested._ragged_idx
    if len(indices) < ragged + 1:  # the ragged dim not indexed: index the padded block, then repack
        if not nested.is_contiguous():
            raise RuntimeError("index_put(): If ragged dimension is not part of indices, this only works on "
                               "contiguous NJTs")
        block = padded(nested, 0.0).index_put(tuple(indices), source, accumulate)
        values = unpadded(nested, block)
    else:  # batch and ragged indices name one packed position: offsets[batch] + position
        lengths = np.array([n for _, n in nested.component_bounds()])
        batch, position = np.asarray(indices[0].tolist()), np.asarray(indices[ragged].tolist())
        if np.any(position >= lengths[batch]):
            raise RuntimeError("Some indices in the ragged dimension are out of bounds!")
        packed = nested._offsets[indices[0]] + indices[ragged]
        inner = (*indices[1:ragged], packed, *indices[ragged + 1:])
        if name == "index_put_":
            nested._values.index_put_(inner, source, accumulate)
            nested._data = nested._values._data
            return nested
        values = nested._values.index_put(inner, source, accumulate)
    if name == "index_put_":
        nested._values.copy_(values)
        return nested
    return nested._like(values)


@handles("unbind")
def _unbind(func, name, args, kwargs):
    nested = args[0]
    dim = _wrap_dim(_argument(args, kwargs, 1, "dim", 0), nested.dim())
    if dim != 0:
        raise RuntimeError("unbind(): only supported for NestedTensor on dim=0")
    packed = nested._ragged_idx - 1
    return tuple(nested._values.narrow(packed, start, length) for start, length in nested.component_bounds())


@handles("getitem")
def _getitem(func, name, args, kwargs):
    nested, index = args[0], args[1]
    rest = ()
    if isinstance(index, tuple) and index:
        index, rest = index[0], index[1:]
    if isinstance(index, slice):
        if index == slice(None) and not rest:
            return nested
        raise RuntimeError("slice(): not supported for NestedTensor on dim=0")
    if not isinstance(index, int) or isinstance(index, bool):
        raise NotImplementedError("aten.index.Tensor")
    component = nested.unbind()[_wrap_dim(index, len(nested))]
    return component[rest] if rest else component


@handles("expand")
def _expand(func, name, args, kwargs):
    nested = args[0]
    sizes = args[1] if len(args) == 2 and isinstance(args[1], (tuple, list)) else args[1:]
    sizes = tuple(kwargs.get("size", sizes))
    shape, ragged = nested.shape, nested._ragged_idx
    if len(sizes) != len(shape) or sizes[0] not in (-1, len(nested)) or \
            not (sizes[ragged] is nested._ragged or sizes[ragged] == -1):
        raise RuntimeError(f"expand(): cannot expand shape {_shape_text(nested)} -> {list(sizes)}")
    # the normal dims expand as a dense tensor's do (size-1 dims to any size)
    return nested._like(nested._values.expand([-1 if d == ragged else sizes[d] for d in range(1, len(shape))]))


@handles("expand_as")
def _expand_as(func, name, args, kwargs):
    source, other = _argument(args, kwargs, 0, "input"), _argument(args, kwargs, 1, "other")
    if isinstance(source, NestedTensor):
        return _expand(func, "expand", (source, tuple(other.shape)), {})
    # a dense tensor spread over a nested one's values (it broadcasts against each of its rows)
    return other._like(source.expand_as(other._values))


@handles("permute")
def _permute(func, name, args, kwargs):
    nested = args[0]
    dims = args[1] if len(args) == 2 and isinstance(args[1], (tuple, list)) else args[1:]
    dims = tuple(kwargs.get("dims", dims))
    if len(dims) != nested.dim():
        raise ValueError(f"permute(): number of dimensions in the tensor input ({nested.dim()}) does not match the "
                         f"length of the desired ordering of dimensions ({len(dims)}).")
    dims = tuple(_wrap_dim(d, nested.dim()) for d in dims)
    if len(set(dims)) != len(dims):
        raise ValueError("permute(): duplicate dims are not allowed.")
    if nested._lengths is not None:
        raise ValueError("permute(): not supported on jagged layout nested tensor with holes")
    if dims[0] != 0:
        raise ValueError("Permute is not supported on the batch dimension for jagged NT")
    return nested._like(nested._values.permute([d - 1 for d in dims[1:]]), dims.index(nested._ragged_idx))


@handles("view", "reshape")
def _view(func, name, args, kwargs):
    nested = args[0]
    sizes = args[1] if len(args) == 2 and isinstance(args[1], (tuple, list)) else args[1:]
    sizes = tuple(kwargs.get("shape", sizes))
    shape, ragged = nested.shape, nested._ragged_idx
    unchanged_front = len(sizes) > ragged and all(sizes[i] == shape[i] for i in range(ragged) if i != ragged)
    ragged_kept = len(sizes) > ragged and (sizes[ragged] == -1 or sizes[ragged] is nested._ragged)
    if not (unchanged_front and ragged_kept and -1 not in sizes[ragged + 1:]):
        raise RuntimeError(f"{name}(): cannot view shape {_shape_text(nested)} as {list(sizes)}")
    values = nested._values
    target = (*values.shape[:ragged], *sizes[ragged + 1:])
    return nested._like(getattr(values, name)(target))


@handles("contiguous")
def _contiguous(func, name, args, kwargs):
    nested = args[0]
    if nested._lengths is None:
        return nested
    from . import as_packed
    return as_packed(list(nested.unbind()), nested._ragged_idx - 1, nested._strided_layout)


# ---------------------------------------------------------------------------- nn ops on the last dims
@handles("layer_norm")
def _layer_norm(func, name, args, kwargs):
    nested = args[0]
    normalized = _argument(args, kwargs, 1, "normalized_shape")
    count = 1 if isinstance(normalized, int) else len(normalized)
    if count >= nested.dim() - nested._ragged_idx:
        raise RuntimeError(f"layer_norm(): normalizing over the ragged or batch dimension is not supported for "
                           f"nested tensors (input of shape {_shape_text(nested)}, normalized_shape "
                           f"{list(normalized) if count > 1 or not isinstance(normalized, int) else [normalized]})")
    return nested._like(func(nested._values, *args[1:], **kwargs))


@handles("rms_norm")
def _rms_norm(func, name, args, kwargs):
    nested = args[0]
    normalized = _argument(args, kwargs, 1, "normalized_shape")
    count = 1 if isinstance(normalized, int) else len(normalized)
    if count > nested.dim() - nested._ragged_idx - 1:
        raise ValueError("rms_norm(): Normalization over the ragged dim not supported for nested tensors")
    return nested._like(func(nested._values, *args[1:], **kwargs))


@handles("embedding")
def _embedding(func, name, args, kwargs):
    indices, weight = _argument(args, kwargs, 0, "input"), _argument(args, kwargs, 1, "weight")
    if not isinstance(indices, NestedTensor) or isinstance(weight, NestedTensor):
        raise NotImplementedError("aten.embedding.default")
    _require_contiguous(indices, "embedding_default(weight: t, indices: jt, padding_idx: any?, "
                                 "scale_grad_by_freq: any?, sparse: any?)", "indices")
    rest = {key: value for key, value in kwargs.items() if key not in ("input", "weight")}
    return indices._like(func(indices._values, weight, *args[2:], **rest))


@handles("embedding_bag")
def _embedding_bag(func, name, args, kwargs):
    # torch's F.embedding_bag reads a 2-D nested input as its bags: values flattened, offsets with the last
    bound = inspect.signature(func).bind(*args, **kwargs)
    given = bound.arguments
    indices = given["input"]
    if not (isinstance(indices, NestedTensor) and indices.dim() == 2) or isinstance(given["weight"], NestedTensor):
        raise NotImplementedError("aten.embedding_bag.default")
    given["offsets"], given["input"] = indices._offsets, indices._values.reshape(-1)
    given["include_last_offset"] = True
    weights = given.get("per_sample_weights")
    if weights is not None:
        if not isinstance(weights, NestedTensor):
            raise ValueError("If input is nested, then per_sample_weights must be nested if specified")
        given["per_sample_weights"] = weights._values.reshape(-1)
    return func(*bound.args, **bound.kwargs)


@handles("masked_select")
def _masked_select(func, name, args, kwargs):
    nested, mask = _argument(args, kwargs, 0, "input"), _argument(args, kwargs, 1, "mask")
    _require_contiguous(nested, "masked_select_default(self: jt, mask: any)")
    if nested.dim() > 2:
        raise RuntimeError("masked_select only support 2-D selections currently")
    if not isinstance(mask, NestedTensor) or mask._ragged is not nested._ragged:
        raise RuntimeError(f"Mask with shape {_shape_text(mask)} is not compatible with input's shape "
                           f"{_shape_text(nested)}")
    from . import _offsets_of
    kept = mask._values.reshape(-1)
    counts = [int(kept[start:start + length].sum()) for start, length in nested.component_bounds()]
    values = nested._values.masked_select(kept)
    return make_nested(values, _offsets_of(counts, values.device), None, 1)


@handles("linear")
def _linear(func, name, args, kwargs):
    nested = args[0]
    if not isinstance(nested, NestedTensor) or any(isinstance(value, NestedTensor) for value in (*args[1:], *kwargs.values())):
        raise NotImplementedError("aten.linear.default")
    if nested._ragged_idx == nested.dim() - 1:
        raise ValueError("NestedTensor linear_default(input: jt, weight: t, bias: t?): expected input to be a "
                         "contiguous jagged layout NestedTensor")
    return nested._like(func(nested._values, *args[1:], **kwargs))


@handles("matmul", "bmm")
def _matmul(func, name, args, kwargs):
    left = _argument(args, kwargs, 0, "input")
    right = _argument(args, kwargs, 1, "mat2" if name == "bmm" else "other")
    if name == "bmm":
        if left.dim() != 3:
            raise ValueError("bmm(): input must be 3D")
        if right.dim() != 3:
            raise ValueError("bmm(): mat2 must be 3D")
    left_nested, right_nested = isinstance(left, NestedTensor), isinstance(right, NestedTensor)
    if left_nested and not right_nested:
        ragged_before_last = left._ragged_idx < left.dim() - 1
        if left.dim() >= 3 and left.dim() == right.dim() and ragged_before_last:  # (B, j, D) @ (B, D, E)
            return _per_component(left, [piece.matmul(right[i]) for i, piece in enumerate(left.unbind())])
        if right.dim() == 2 and left.dim() > 2 and ragged_before_last:  # (B, j, D) @ (D, E)
            return left._like(left._values.matmul(right))
    elif right_nested and not left_nested:
        if right.dim() >= 3 and right.dim() == left.dim() and right._ragged_idx >= 2:  # (B, D, E) @ (B, E, j)
            return _per_component(right, [left[i].matmul(piece) for i, piece in enumerate(right.unbind())])
        if left.dim() == 2 and right.dim() > 2 and right._ragged_idx >= 2:  # (D, E) @ (B, E, j)
            return right._like(left.matmul(right._values))
    elif left_nested and right_nested:
        if left.dim() > 3 and right.dim() > 3 and left._ragged is right._ragged \
                and left._ragged_idx == right._ragged_idx:  # (B, j, D, E) @ (B, j, E, F)
            return left._like(left._values.matmul(right._values))
        if left.dim() == right.dim() == 3 and left._ragged_idx == 2 and right._ragged_idx == 1 \
                and left._ragged is right._ragged:  # (B, D, j) @ (B, j, E): dense (B, D, E)
            from ..ops.shape import stack
            return stack([a.matmul(b) for a, b in zip(left.unbind(), right.unbind())])
    left_shape = _shape_text(left) if left_nested else str(tuple(left.shape))
    right_shape = _shape_text(right) if right_nested else str(tuple(right.shape))
    raise RuntimeError(f"matmul(): not supported between inputs of shapes {left_shape} and {right_shape}")


@handles("rmatmul")
def _rmatmul(func, name, args, kwargs):
    return _matmul(func, "matmul", (args[1], args[0]), {})


def _per_component(nested: NestedTensor, pieces: list) -> NestedTensor:
    """Per-component results packed again: with ``nested``'s offsets where it has no holes (so the
    result combines with it elementwise, as torch's does), else end to end with offsets of their own."""
    packed = nested._ragged_idx - 1
    if nested._lengths is None:
        return nested._like(cat(pieces, packed))
    from . import as_packed
    return as_packed(pieces, packed, nested._strided_layout)


@handles("scaled_dot_product_attention")
def _attention(func, name, args, kwargs):
    names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
    given = dict(zip(names, args), **kwargs)
    query, key, value = given["query"], given["key"], given["value"]
    if given.get("attn_mask") is not None or given.get("is_causal"):
        raise RuntimeError("No viable backend for scaled_dot_product_attention was found.")
    if not isinstance(query, NestedTensor):
        raise RuntimeError("scaled_dot_product_attention(): a nested key or value needs a nested query")
    batch = len(query)
    pieces = []
    parts = [operand.unbind() if isinstance(operand, NestedTensor) else operand for operand in (query, key, value)]
    for i in range(batch):
        q, k, v = (part[i] for part in parts)
        pieces.append(func(q, k, v, dropout_p=given.get("dropout_p", 0.0), scale=given.get("scale"),
                           enable_gqa=given.get("enable_gqa", False)))
    packed = query._ragged_idx - 1
    if query._lengths is None:
        return query._like(cat(pieces, packed))
    from . import as_packed
    return as_packed(pieces, packed, query._strided_layout)

