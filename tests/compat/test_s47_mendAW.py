"""Session 47, lane mendAW: uint16/uint32/uint64 are limited-support dtypes in torch (creation,
copy and conversion, equality, bitwise and/or/xor, mul, sort, sum, cumsum, indexing ... have CPU
kernels; most arithmetic does not). chainrule computed every op with NumPy; each form below is run
on torch and on chainrule with the same inputs and the outcomes (values and dtype, or the exception
type and words) compared."""

from __future__ import annotations

import pytest

import chainrule

torch = pytest.importorskip("torch")

_WIDE_UNSIGNED = ["uint16", "uint32", "uint64"]


def _x(lib, dtype):
    return lib.tensor([[3, 1, 2], [0, 5, 4]], dtype=getattr(lib, dtype))


def _y(lib, dtype):
    return lib.tensor([[1, 2, 2], [3, 1, 4]], dtype=getattr(lib, dtype))


def _inplace(method, *args):
    def form(lib, x, y):
        x = x.clone()
        given = {_Y: y, _Y1: y[1], "index0": lib.tensor([0])}
        out = getattr(x, method)(*(given.get(a, a) for a in args))
        return out, x
    return form


_Y, _Y1 = object(), object()  # (stand for the second operand and its row 1 in an in-place form's arguments)

FORMS = {
    # arithmetic operators and their functions
    "add": lambda lib, x, y: x + y,
    "add_scalar": lambda lib, x, y: x + 1,
    "add_float_scalar": lambda lib, x, y: x + 1.5,
    "add_alpha": lambda lib, x, y: lib.add(x, y, alpha=2),
    "radd": lambda lib, x, y: 1 + x,
    "sub": lambda lib, x, y: x - y,
    "rsub": lambda lib, x, y: 7 - x,
    "mul": lambda lib, x, y: x * y,
    "mul_scalar": lambda lib, x, y: x * 2,
    "truediv": lambda lib, x, y: x / y,
    "floordiv": lambda lib, x, y: x // y,
    "floor_divide": lambda lib, x, y: lib.floor_divide(x, y),
    "div_floor": lambda lib, x, y: lib.div(x, y, rounding_mode="floor"),
    "div_trunc": lambda lib, x, y: lib.div(x, y, rounding_mode="trunc"),
    "mod": lambda lib, x, y: x % y,
    "fmod": lambda lib, x, y: lib.fmod(x, y),
    "pow": lambda lib, x, y: x ** y,
    "pow_scalar": lambda lib, x, y: x ** 2,
    "rpow": lambda lib, x, y: 2 ** x,
    "neg": lambda lib, x, y: -x,
    "abs": lambda lib, x, y: abs(x),
    "sign": lambda lib, x, y: lib.sign(x),
    "square": lambda lib, x, y: lib.square(x),
    "maximum": lambda lib, x, y: lib.maximum(x, y),
    "minimum": lambda lib, x, y: lib.minimum(x, y),
    # bitwise
    "and": lambda lib, x, y: x & y,
    "or": lambda lib, x, y: x | y,
    "xor": lambda lib, x, y: x ^ y,
    "lshift": lambda lib, x, y: x << y,
    "rshift": lambda lib, x, y: x >> y,
    "invert": lambda lib, x, y: ~x,
    # comparisons
    "eq": lambda lib, x, y: x == y,
    "ne": lambda lib, x, y: x != y,
    "lt": lambda lib, x, y: x < y,
    "le": lambda lib, x, y: x <= y,
    "gt": lambda lib, x, y: x > y,
    "ge": lambda lib, x, y: x >= y,
    "eq_scalar": lambda lib, x, y: x == 2,
    "gt_scalar": lambda lib, x, y: x > 2,
    "equal": lambda lib, x, y: lib.equal(x, y),
    "isclose": lambda lib, x, y: lib.isclose(x, y),
    "allclose": lambda lib, x, y: lib.allclose(x, y),
    "logical_and": lambda lib, x, y: lib.logical_and(x, y),
    "logical_not": lambda lib, x, y: lib.logical_not(x),
    "isnan": lambda lib, x, y: lib.isnan(x),
    "isfinite": lambda lib, x, y: lib.isfinite(x),
    "nonzero": lambda lib, x, y: lib.nonzero(x),
    "bool": lambda lib, x, y: x.bool(),
    # in-place forms
    "iadd": _inplace("add_", _Y),
    "isub": _inplace("sub_", _Y),
    "imul": _inplace("mul_", _Y),
    "iand": _inplace("bitwise_and_", _Y),
    "ifloor_divide": _inplace("floor_divide_", _Y),
    "iremainder": _inplace("remainder_", _Y),
    "ineg": _inplace("neg_"),
    "iclamp": _inplace("clamp_", 1, 3),
    "fill_": _inplace("fill_", 2),
    "zero_": _inplace("zero_"),
    "copy_": _inplace("copy_", _Y),
    # reductions and scans
    "sum": lambda lib, x, y: x.sum(),
    "sum_dim": lambda lib, x, y: x.sum(1),
    "sum_dtype": lambda lib, x, y: x.sum(dtype=lib.int64),
    "prod": lambda lib, x, y: x.prod(),
    "mean": lambda lib, x, y: x.mean(),
    "min": lambda lib, x, y: x.min(),
    "max": lambda lib, x, y: x.max(),
    "max_dim": lambda lib, x, y: x.max(1),
    "amax": lambda lib, x, y: x.amax(1),
    "aminmax": lambda lib, x, y: lib.aminmax(x),
    "argmax": lambda lib, x, y: x.argmax(),
    "argmin": lambda lib, x, y: x.argmin(1),
    "cumsum": lambda lib, x, y: x.cumsum(1),
    "cumprod": lambda lib, x, y: x.cumprod(1),
    "cummax": lambda lib, x, y: x.cummax(1),
    "any": lambda lib, x, y: x.any(),
    "all": lambda lib, x, y: x.all(1),
    "count_nonzero": lambda lib, x, y: lib.count_nonzero(x),
    # sorting and selection
    "sort": lambda lib, x, y: x.sort(1),
    "argsort": lambda lib, x, y: x.argsort(1),
    "topk": lambda lib, x, y: x.topk(2),
    "kthvalue": lambda lib, x, y: x.kthvalue(2),
    "unique": lambda lib, x, y: lib.unique(x),
    "unique_counts": lambda lib, x, y: lib.unique(x, return_counts=True),
    "median": lambda lib, x, y: x.median(),
    "clamp": lambda lib, x, y: x.clamp(1, 3),
    "clamp_min": lambda lib, x, y: x.clamp(min=1),
    "clamp_tensor": lambda lib, x, y: x.clamp(y, y + y),
    "where": lambda lib, x, y: lib.where(x == y, x, y),
    "where_cond": lambda lib, x, y: lib.where(x > 1, x, y),
    "masked_fill": lambda lib, x, y: x.masked_fill(x == y, 7),
    # linear algebra
    "matmul": lambda lib, x, y: x @ y.T,
    "mm": lambda lib, x, y: lib.mm(x, y.T),
    "dot": lambda lib, x, y: lib.dot(x[0], y[0]),
    # shape, joining, indexing
    "cat": lambda lib, x, y: lib.cat([x, y]),
    "stack": lambda lib, x, y: lib.stack([x, y]),
    "flip": lambda lib, x, y: x.flip(0),
    "transpose_contiguous": lambda lib, x, y: x.T.contiguous(),
    "index_list": lambda lib, x, y: x[[1, 0]],
    "index_mask": lambda lib, x, y: x[x == y],
    "index_put": lambda lib, x, y: x.clone().index_put_((lib.tensor([0]),), y[1]),
    "setitem": _inplace("__setitem__", 0, 9),
    "gather": lambda lib, x, y: x.gather(1, lib.tensor([[0, 0], [1, 2]])),
    "scatter": lambda lib, x, y: x.scatter(1, lib.tensor([[0], [1]]), y),
    "scatter_add": lambda lib, x, y: x.scatter_add(1, lib.tensor([[0], [1]]), y),
    "index_select": lambda lib, x, y: x.index_select(1, lib.tensor([2, 0])),
    "take": lambda lib, x, y: lib.take(x, lib.tensor([4, 0])),
    "repeat": lambda lib, x, y: x.repeat(2, 1),
    # conversion and printing
    "to_float": lambda lib, x, y: x.to(lib.float32),
    "to_int64": lambda lib, x, y: x.long(),
    "from_float": lambda lib, x, y: lib.tensor([1.5, 2.0]).to(x.dtype),
    "type_double": lambda lib, x, y: x.double(),
    "tolist": lambda lib, x, y: x.tolist(),
    "item": lambda lib, x, y: x[0, 1].item(),
    "repr": lambda lib, x, y: repr(x).replace(lib.__name__, "torch"),
    "str": lambda lib, x, y: str(x[0]).replace(lib.__name__, "torch"),
    "zeros_like": lambda lib, x, y: lib.zeros_like(x),
    "full": lambda lib, x, y: lib.full((2,), 7, dtype=x.dtype),
    "arange": lambda lib, x, y: lib.arange(4, dtype=x.dtype),
    # more of torch's kernels, each with its own name
    "mv": lambda lib, x, y: x @ y[0],
    "vm": lambda lib, x, y: y[0] @ x.T,
    "bmm": lambda lib, x, y: x[None] @ y.T[None],
    "torch_bmm": lambda lib, x, y: lib.bmm(x[None], y.T[None].contiguous()),
    "torch_mv": lambda lib, x, y: lib.mv(x, y[0]),
    "outer": lambda lib, x, y: lib.outer(x[0], y[0]),
    "clamp_max": lambda lib, x, y: x.clamp(max=2),
    "clamp_tensors": lambda lib, x, y: x.clamp(y, y),
    "clamp_tensor_min": lambda lib, x, y: x.clamp(min=y),
    "median_dim": lambda lib, x, y: x.median(1),
    "cummin": lambda lib, x, y: x.cummin(1),
    "amin": lambda lib, x, y: x.amin(),
    "min_dim": lambda lib, x, y: x.min(1),
    "max_other": lambda lib, x, y: lib.max(x, y),
    "logical_or": lambda lib, x, y: lib.logical_or(x, y),
    "logical_xor": lambda lib, x, y: lib.logical_xor(x, y),
    "masked_fill_tensor": lambda lib, x, y: x.masked_fill(x == y, lib.tensor(7, dtype=x.dtype)),
    "index_put_accumulate": lambda lib, x, y: x.clone().index_put_((lib.tensor([0]),), y[1], accumulate=True),
    "setitem_tensor": _inplace("__setitem__", "index0", _Y1),
    "index_add": lambda lib, x, y: x.index_add(0, lib.tensor([0]), y[:1]),
    "index_copy": lambda lib, x, y: x.index_copy(0, lib.tensor([0]), y[:1]),
    "index_fill": lambda lib, x, y: x.index_fill(0, lib.tensor([0]), 3),
    "masked_scatter": lambda lib, x, y: x.masked_scatter(x == y, y),
    "masked_select": lambda lib, x, y: x.masked_select(x == y),
    "scatter_value": lambda lib, x, y: x.scatter(1, lib.tensor([[0], [1]]), 7),
    "take_along_dim": lambda lib, x, y: lib.take_along_dim(x, lib.tensor([[0], [1]]), 1),
    "put": lambda lib, x, y: x.put(lib.tensor([0]), y[0, :1]),
    "linspace": lambda lib, x, y: lib.linspace(0, 3, 4, dtype=x.dtype),
    "eye": lambda lib, x, y: lib.eye(2, dtype=x.dtype),
    "fmax": lambda lib, x, y: lib.fmax(x, y),
    "and_scalar": lambda lib, x, y: x & 3,
    "roll": lambda lib, x, y: x.roll(1),
    "tril": lambda lib, x, y: x.tril(),
    "triu_": _inplace("triu_"),
    "diag": lambda lib, x, y: x.diag(),
    "trace": lambda lib, x, y: x.trace(),
    "unique_consecutive": lambda lib, x, y: lib.unique_consecutive(x),
    "bincount": lambda lib, x, y: y[0].bincount(),
    "histc": lambda lib, x, y: x.histc(),
    "searchsorted": lambda lib, x, y: lib.searchsorted(y[0], y[0]),
    "isin": lambda lib, x, y: lib.isin(x, y),
    "lerp": lambda lib, x, y: lib.lerp(x, y, 0.5),
    "addcmul": lambda lib, x, y: lib.addcmul(x, x, y),
    "repeat_interleave": lambda lib, x, y: x.repeat_interleave(2),
    "pad": lambda lib, x, y: lib.nn.functional.pad(x, (1, 1)),
    "fill_diagonal_": _inplace("fill_diagonal_", 1),
    "sgn": lambda lib, x, y: x.sgn(),
    "gcd": lambda lib, x, y: lib.gcd(x, y),
    "hypot": lambda lib, x, y: lib.hypot(x, y),
    "round": lambda lib, x, y: x.round(),
    "floor": lambda lib, x, y: x.floor(),
    "trunc": lambda lib, x, y: x.trunc(),
    "frac": lambda lib, x, y: x.frac(),
    "relu": lambda lib, x, y: lib.relu(x),
    "nan_to_num": lambda lib, x, y: x.nan_to_num(),
    "heaviside": lambda lib, x, y: lib.heaviside(x, y),
    "prod_dim": lambda lib, x, y: x.prod(1),
    "mode": lambda lib, x, y: x.mode(1),
    "msort": lambda lib, x, y: lib.msort(x),
    "std_float": lambda lib, x, y: x.float().std(),
    "count_nonzero_dims": lambda lib, x, y: lib.count_nonzero(x, 0),
    "rsub_tensors": lambda lib, x, y: lib.rsub(x, y),
    "hardtanh": lambda lib, x, y: lib.nn.functional.hardtanh(x),
    "hardtanh_positive": lambda lib, x, y: lib.nn.functional.hardtanh(x, 0, 2),
    "relu6": lambda lib, x, y: lib.nn.functional.relu6(x),
    "nanmedian": lambda lib, x, y: x.nanmedian(),
    "nanmedian_dim": lambda lib, x, y: x.nanmedian(1),
    "randperm": lambda lib, x, y: lib.randperm(3, dtype=x.dtype).sort().values,
    "logspace": lambda lib, x, y: lib.logspace(0, 1, 3, dtype=x.dtype),
    "cross": lambda lib, x, y: lib.cross(x, y, dim=1),
    "addr": lambda lib, x, y: lib.addr(x, x[:, 0], y[0]),
    "baddbmm": lambda lib, x, y: lib.baddbmm(x[None, :, :2], x[None], y.T[None, :, :2]),
    "addmv": lambda lib, x, y: lib.addmv(x[:, 0], x, y[0]),
    "vdot": lambda lib, x, y: lib.vdot(x[0], y[0]),
    "kron": lambda lib, x, y: lib.kron(x, y),
    "flipud": lambda lib, x, y: x.flipud(),
    "cumsum_int64": lambda lib, x, y: x.cumsum(0, dtype=lib.int64),
    "randint": lambda lib, x, y: lib.randint(0, 1, (3,), dtype=x.dtype),  # (one value: no seed needed)
    "index_select_rows": lambda lib, x, y: x.index_select(0, lib.tensor([1])),
    "mul_out": lambda lib, x, y: lib.mul(x, y, out=lib.empty(2, 3, dtype=x.dtype)),
    "minimum_float": lambda lib, x, y: lib.minimum(x, lib.tensor(1.5)),
    "clamp_float": lambda lib, x, y: x.clamp(0.5, 2.5),
    "eq_float": lambda lib, x, y: x == 2.5,
    "unique_inverse": lambda lib, x, y: lib.unique(x, return_inverse=True),
    "copy_from_int64": lambda lib, x, y: x.clone().copy_(lib.tensor([[1, 2, 3], [4, 5, 6]])),
    "tensordot": lambda lib, x, y: lib.tensordot(x, y, dims=([1], [1])),
    "inner": lambda lib, x, y: lib.inner(x, y),
    "einsum_contraction": lambda lib, x, y: lib.einsum("ij,kj->ik", x, y),
    "einsum_product": lambda lib, x, y: lib.einsum("i,j->ij", x[0], y[0]),
    "einsum_one_operand": lambda lib, x, y: lib.einsum("ij->ji", x),
    "einsum_sum": lambda lib, x, y: lib.einsum("ij->i", x),
    "sum_to_own_dtype": lambda lib, x, y: x.sum(dtype=x.dtype),
    "sum_int32_to_it": lambda lib, x, y: x.int().sum(1, dtype=x.dtype),
    "nansum_to_it": lambda lib, x, y: x.nansum(dtype=x.dtype),
    "prod_to_it": lambda lib, x, y: x.prod(1, dtype=x.dtype),
    "cumsum_to_it": lambda lib, x, y: x.cumsum(0, dtype=x.dtype),
    "cumprod_to_it": lambda lib, x, y: x.cumprod(0, dtype=x.dtype),
    "sum_to_float": lambda lib, x, y: x.sum(dtype=lib.float32),
    # floating math (computed in the default float dtype)
    "exp": lambda lib, x, y: lib.exp(x),
    "sqrt": lambda lib, x, y: x.sqrt(),
    "sigmoid": lambda lib, x, y: x.sigmoid(),
    "reciprocal": lambda lib, x, y: x.reciprocal(),
    "copysign": lambda lib, x, y: lib.copysign(x, y),
    "lt_float_scalar": lambda lib, x, y: x < 1.5,
    # promotion with other dtypes
    "add_int8": lambda lib, x, y: x + lib.tensor([1], dtype=lib.int8),
    "add_uint8": lambda lib, x, y: x + lib.tensor([1], dtype=lib.uint8),
    "add_int64": lambda lib, x, y: x + lib.tensor([1]),
    "add_float32": lambda lib, x, y: x + lib.tensor([1.0]),
    "mul_int32": lambda lib, x, y: x * lib.tensor([2], dtype=lib.int32),
    "eq_int8": lambda lib, x, y: x == lib.tensor([1], dtype=lib.int8),
    "eq_bool": lambda lib, x, y: x == lib.tensor([True]),
    "mul_bool": lambda lib, x, y: x * lib.tensor([True]),
    "cat_int64": lambda lib, x, y: lib.cat([x, lib.tensor([[1, 2, 3]])]),
    "where_float": lambda lib, x, y: lib.where(x == y, x, 0.5),
}


def _plain(value):
    if isinstance(value, (tuple, list)):
        return type(value).__name__, [_plain(v) for v in value]
    if hasattr(value, "dtype") and hasattr(value, "numpy"):
        return "tensor", str(value.dtype).rpartition(".")[2], value.numpy().tolist()
    return value


def outcome(lib, form: str, dtype: str):
    try:
        return "ok", _plain(FORMS[form](lib, _x(lib, dtype), _y(lib, dtype)))
    except Exception as error:  # noqa: BLE001  (the type and words are what is compared)
        return type(error).__name__, str(error).replace(lib.__name__, "torch")


def _differences() -> list[str]:
    return [f"{form}[{dtype}]" for form in FORMS for dtype in _WIDE_UNSIGNED
            if outcome(chainrule, form, dtype) != outcome(torch, form, dtype)]


@pytest.mark.parametrize("dtype", _WIDE_UNSIGNED)
@pytest.mark.parametrize("form", sorted(FORMS))
def test_wide_unsigned_form_as_torch(form, dtype):
    assert outcome(chainrule, form, dtype) == outcome(torch, form, dtype)


@pytest.mark.parametrize("dtype", ["uint8", "int16", "int32", "int64", "float32"])
@pytest.mark.parametrize("form", sorted(FORMS))
def test_other_dtypes_form_as_torch(form, dtype):
    """The same forms on the dtypes torch has kernels for: the refusals above take nothing from them."""
    assert outcome(chainrule, form, dtype) == outcome(torch, form, dtype)


_IN_PLACE = {
    "add_": lambda x, y: x.add_(y),
    "iadd": lambda x, y: x.__iadd__(y),
    "sub_": lambda x, y: x.sub_(1),
    "neg_": lambda x, y: x.neg_(),
    "abs_": lambda x, y: x.abs_(),
    "clamp_": lambda x, y: x.clamp_(1, 3),
    "floor_divide_": lambda x, y: x.floor_divide_(y),
    "remainder_": lambda x, y: x.remainder_(y),
    "pow_": lambda x, y: x.pow_(2),
    "index_put_": lambda x, y: x.index_put_((chainrule.tensor([0]),), y[1]),
    "masked_fill_": lambda x, y: x.masked_fill_(x == y, 7),
    "setitem_mask": lambda x, y: x.__setitem__(x == y, 7),
    "setitem_index": lambda x, y: x.__setitem__(chainrule.tensor([1]), y[0]),
    "scatter_": lambda x, y: x.scatter_(1, chainrule.tensor([[0], [1]]), y),
    "index_copy_": lambda x, y: x.index_copy_(0, chainrule.tensor([0]), y[:1]),
    "triu_": lambda x, y: x.triu_(),
    "add_out": lambda x, y: chainrule.add(y, y, out=x),
    "maximum_out": lambda x, y: chainrule.maximum(y, y, out=x),
}


@pytest.mark.parametrize("dtype", _WIDE_UNSIGNED)
@pytest.mark.parametrize("form", sorted(_IN_PLACE))
def test_refused_write_changes_nothing(form, dtype):
    """torch raises from the kernel before it writes: the tensor keeps its values and version."""
    x, y = _x(chainrule, dtype), _y(chainrule, dtype)
    before, version = x.tolist(), x._version
    with pytest.raises(NotImplementedError, match=f"not implemented for 'UInt{dtype[4:]}'"):
        _IN_PLACE[form](x, y)
    assert (x.tolist(), x._version) == (before, version)


def test_every_function_class_in_the_table_exists():
    """A table key naming a Function class ("module.Class") must name one, or its refusal is lost."""
    from chainrule._dtype import NO_WIDE_UNSIGNED_KERNEL
    from chainrule.autograd.function import Function

    found, pending = {}, [Function]
    while pending:
        for cls in pending.pop().__subclasses__():
            found[f"{cls.__module__.removeprefix('chainrule.ops.')}.{cls.__name__}"] = cls
            pending.append(cls)
    classes = [key for key in NO_WIDE_UNSIGNED_KERNEL if key.rpartition(".")[2][:1].isupper()]
    assert classes
    for key in classes:
        assert key in found, key
        assert found[key]._wide_unsigned_kernel == NO_WIDE_UNSIGNED_KERNEL[key], key


if __name__ == "__main__":  # the probe's count: python tests/compat/test_s47_mendAW.py
    differing = _differences()
    print(f"{len(differing)} of {len(FORMS) * len(_WIDE_UNSIGNED)} differ:", " ".join(differing))
