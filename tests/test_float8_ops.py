"""Float8 tensors take the ops torch 2.13's CPU kernels take (copies, views, casts, indexing,
where, ==, abs, the product of two float8 tensors) and refuse the others with torch's error."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("ml_dtypes")

import chainrule  # noqa: E402

FLOAT8 = ["float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu"]


def _ops(lib):
    F = lib.nn.functional
    return {
        # refused by torch
        "add": lambda x, y: x + y, "sub": lambda x, y: x - y, "rsub": lambda x, y: 1 - x,
        "div": lambda x, y: x / y, "rdiv": lambda x, y: 1 / x, "mul_number": lambda x, y: x * 2,
        "mul_0d": lambda x, y: x * y[0], "neg": lambda x, y: -x, "add_": lambda x, y: x.clone().add_(y),
        "lt": lambda x, y: x < y, "le": lambda x, y: x <= y, "gt": lambda x, y: x > y, "ge": lambda x, y: x >= y,
        "sum": lambda x, y: x.sum(), "sum_dim": lambda x, y: x.reshape(2, 2).sum(0), "mean": lambda x, y: x.mean(),
        "prod": lambda x, y: x.prod(), "max": lambda x, y: x.max(), "min": lambda x, y: x.min(),
        "amax": lambda x, y: x.amax(), "max_dim": lambda x, y: x.reshape(2, 2).max(0)[0],
        "maximum": lambda x, y: lib.maximum(x, y), "minimum": lambda x, y: lib.minimum(x, y),
        "argmax": lambda x, y: x.argmax(), "argmin": lambda x, y: x.argmin(),
        "var": lambda x, y: x.var(), "std": lambda x, y: x.std(), "norm": lambda x, y: x.norm(),
        "cumsum": lambda x, y: x.cumsum(0), "sort": lambda x, y: x.sort()[0], "topk": lambda x, y: x.topk(2)[0],
        "exp": lambda x, y: x.exp(), "log": lambda x, y: x.log(), "sqrt": lambda x, y: x.sqrt(),
        "rsqrt": lambda x, y: x.rsqrt(), "sin": lambda x, y: x.sin(), "cos": lambda x, y: x.cos(),
        "tanh": lambda x, y: x.tanh(), "pow": lambda x, y: x ** 2, "square": lambda x, y: x.square(),
        "sign": lambda x, y: x.sign(), "round": lambda x, y: x.round(), "floor": lambda x, y: x.floor(),
        "ceil": lambda x, y: x.ceil(), "trunc": lambda x, y: x.trunc(), "clamp": lambda x, y: x.clamp(0, 1),
        "relu": lambda x, y: lib.relu(x), "sigmoid": lambda x, y: lib.sigmoid(x), "gelu": lambda x, y: F.gelu(x),
        "silu": lambda x, y: F.silu(x), "leaky_relu": lambda x, y: F.leaky_relu(x),
        "softmax": lambda x, y: lib.softmax(x, 0), "log_softmax": lambda x, y: lib.log_softmax(x, 0),
        "bmm": lambda x, y: lib.bmm(x.reshape(1, 2, 2), y.reshape(1, 2, 2)), "dot": lambda x, y: lib.dot(x, y),
        "flip": lambda x, y: x.flip(0), "tril": lambda x, y: x.reshape(2, 2).tril(),
        "masked_fill": lambda x, y: x.masked_fill(x.float() > 1, 0),
        "gather": lambda x, y: x.gather(0, lib.tensor([0, 1])),
        "scatter_": lambda x, y: x.clone().scatter_(0, lib.tensor([0]), y),
        "isclose": lambda x, y: lib.isclose(x, y), "allclose": lambda x, y: lib.allclose(x, y),
        "nonzero": lambda x, y: x.nonzero(), "nonzero_tuple": lambda x, y: x.nonzero(as_tuple=True)[0],
        "argwhere": lambda x, y: lib.argwhere(x), "unique": lambda x, y: lib.unique(x),
        "unique_inverse": lambda x, y: lib.unique(x, return_inverse=True)[1],
        "unique_dim": lambda x, y: lib.unique(x.reshape(2, 2), dim=0),
        # taken for some float8 types only (isinf: float8_e5m2; isfinite: it and float8_e8m0fnu)
        "isinf": lambda x, y: lib.isinf(x), "isfinite": lambda x, y: lib.isfinite(x),
        # taken by torch (abs and mm not for float8_e8m0fnu)
        "mul": lambda x, y: x * y, "mul_": lambda x, y: x.clone().mul_(y), "abs": lambda x, y: x.abs(),
        "matmul": lambda x, y: x.reshape(2, 2) @ y.reshape(2, 2), "mm": lambda x, y: lib.mm(x.reshape(2, 2), y.reshape(2, 2)),
        "linear": lambda x, y: F.linear(x.reshape(2, 2), y.reshape(2, 2)),
        "eq": lambda x, y: x == y, "ne": lambda x, y: x != y, "eq_number": lambda x, y: x == 1,
        "isnan": lambda x, y: lib.isnan(x), "any": lambda x, y: x.any(), "all": lambda x, y: x.all(),
        "cat": lambda x, y: lib.cat([x, y]), "stack": lambda x, y: lib.stack([x, y]),
        "view": lambda x, y: x.view(2, 2), "reshape": lambda x, y: x.reshape(2, 2), "t": lambda x, y: x.reshape(2, 2).t(),
        "permute": lambda x, y: x.reshape(2, 2).permute(1, 0), "contiguous": lambda x, y: x.reshape(2, 2).t().contiguous(),
        "expand": lambda x, y: x[:1].expand(3), "slice": lambda x, y: x[1:3], "select": lambda x, y: x[1],
        "index": lambda x, y: x[lib.tensor([0, 2])], "index_select": lambda x, y: x.index_select(0, lib.tensor([1])),
        "masked_select": lambda x, y: x[x.float() > 1], "roll": lambda x, y: x.roll(1), "repeat": lambda x, y: x.repeat(2),
        "clone": lambda x, y: x.clone(), "copy_": lambda x, y: x.clone().copy_(y), "fill_": lambda x, y: x.clone().fill_(1),
        "zero_": lambda x, y: x.clone().zero_(), "setitem": lambda x, y: _setitem(x.clone(), y[1]),
        "where": lambda x, y: lib.where(x.float() > 0, x, y), "zeros_like": lambda x, y: lib.zeros_like(x),
        "ones_like": lambda x, y: lib.ones_like(x), "full_like": lambda x, y: lib.full_like(x, 2),
        "to_float32": lambda x, y: x.to(lib.float32), "to_bfloat16": lambda x, y: x.to(lib.bfloat16),
        "to_int32": lambda x, y: x.to(lib.int32), "to_e5m2": lambda x, y: x.to(lib.float8_e5m2),
        "tolist": lambda x, y: x.tolist(), "item": lambda x, y: x[0].item(),
    }


def _setitem(x, value):
    x[0] = value
    return x


def _run(lib, dtype_name, op):
    dtype = getattr(lib, dtype_name)
    x = lib.tensor([1.0, 2.0, 0.5, 4.0]).to(dtype)
    y = lib.tensor([2.0, 1.0, 0.25, 8.0]).to(dtype)
    try:
        return _ops(lib)[op](x, y), None
    except Exception as error:  # noqa: BLE001 - the error itself is compared with torch's
        return None, error


def _as_list(value):
    if hasattr(value, "dtype") and hasattr(value, "float"):
        return value.float().tolist() if value.is_floating_point() else value.tolist()
    return value


@pytest.mark.parametrize("op", sorted(_ops(torch)))
@pytest.mark.parametrize("dtype_name", FLOAT8)
def test_float8_op_runs_or_refuses_as_torch(dtype_name, op):
    expected, expected_error = _run(torch, dtype_name, op)
    got, error = _run(chainrule, dtype_name, op)
    if expected_error is not None:
        assert type(error) is type(expected_error), (error, expected_error)
        assert str(error) == str(expected_error)
        return
    assert error is None, error
    if hasattr(expected, "dtype"):
        assert str(got.dtype).split(".")[-1] == str(expected.dtype).split(".")[-1]
        assert tuple(got.shape) == tuple(expected.shape)
    assert _as_list(got) == _as_list(expected)


def test_float8_repr_prints_dtype_like_torch():
    values = [1.0, 2.0, 0.5]
    for name in FLOAT8:
        text = repr(chainrule.tensor(values).to(getattr(chainrule, name)))
        assert f"dtype=chainrule.{name}" in text
        assert text.replace("chainrule", "torch") == repr(torch.tensor(values).to(getattr(torch, name)))


def test_float32_and_bfloat16_arithmetic_unchanged_once_float8_is_loaded():
    chainrule.zeros(1, dtype=chainrule.float8_e4m3fn)  # loads float8 (and the op seam)
    for name in ("float32", "float64", "float16", "bfloat16"):
        a = chainrule.tensor([1.5, -2.0, 3.25]).to(getattr(chainrule, name))
        t = torch.tensor([1.5, -2.0, 3.25]).to(getattr(torch, name))
        for got, expected in (((a + a) * 2 - a / 3).sum(), ((t + t) * 2 - t / 3).sum()), ((a < 0).sum(), (t < 0).sum()):
            assert got.item() == expected.item()
