"""s55 mendDD: what session 54 found and left alone. An out= call under a dispatch mode is handed to the mode as
torch's out overload (aten.add.out with out= among the kwargs; sum's IntList_out without the dtype the front takes
from out), matmul's as mm.out, an integer op no Function records (remainder, bitwise_and) reaches the mode, and
take_along_dim shows torch's decomposition (both broadcast, the indices taken modulo the dim's size, gather). Each
logged sequence is compared live with torch's."""

import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402
from tests.compat.test_s45_mendAI import _logged  # noqa: E402

# (inputs as test_s45_mendAI's: x, y (2, 3), m (3, 4), b1 (5, 2, 3), b2 (5, 3, 4), x3 (2, 3, 4), idx [1, 0])
OUT_PROGRAMS = {
    "add": lambda lib, a: lib.add(a["x"], a["y"], out=lib.empty(2, 3)),
    "add_alpha": lambda lib, a: lib.add(a["x"], a["y"], alpha=2, out=lib.empty(2, 3)),
    "mul": lambda lib, a: lib.mul(a["x"], a["y"], out=lib.empty(2, 3)),
    "div": lambda lib, a: lib.div(a["x"], a["y"], out=lib.empty(2, 3)),
    "matmul": lambda lib, a: lib.matmul(a["x"], a["m"], out=lib.empty(2, 4)),
    "bmm": lambda lib, a: lib.bmm(a["b1"], a["b2"], out=lib.empty(5, 2, 4)),
    "addmm": lambda lib, a: lib.addmm(a["lb"], a["x"], a["m"], out=lib.empty(2, 4)),
    "sum": lambda lib, a: lib.sum(a["x"], 1, out=lib.empty(2)),
    "mean": lambda lib, a: lib.mean(a["x"], 1, out=lib.empty(2)),
    "cat": lambda lib, a: lib.cat([a["x"], a["y"]], out=lib.empty(4, 3)),
    "clamp": lambda lib, a: lib.clamp(a["x"], -0.5, 0.5, out=lib.empty(2, 3)),
    "where": lambda lib, a: lib.where(a["x"] > 0, a["x"], a["y"], out=lib.empty(2, 3)),
    "bitwise_and": lambda lib, a: lib.bitwise_and(a["idx"], a["idx"], out=lib.empty(2, dtype=lib.int64)),
    "index_select": lambda lib, a: lib.index_select(a["x"], 1, a["idx"], out=lib.empty(2, 2)),
    "exp": lambda lib, a: lib.exp(a["x"], out=lib.empty(2, 3)),
    "pow": lambda lib, a: lib.pow(a["x"], 2, out=lib.empty(2, 3)),
    "add_resized": lambda lib, a: lib.add(a["x"], a["y"], out=lib.empty(0)),
    "remainder_int": lambda lib, a: lib.remainder(a["idx"], 2),
    "take_along_dim": lambda lib, a: lib.take_along_dim(a["x"], lib.tensor([[0, 2], [1, 1]]), 1),
    "take_along_dim_broadcast": lambda lib, a: lib.take_along_dim(a["x3"], lib.tensor([[[0], [1], [2]]]), 2),
    "take_along_dim_negative": lambda lib, a: lib.take_along_dim(a["x"], lib.tensor([[-1, 2], [1, -3]]), 1),
    "take_along_dim_out": lambda lib, a: lib.take_along_dim(a["x"], lib.tensor([[0, 2], [1, 1]]), 1,
                                                             out=lib.empty(2, 2)),
}


@pytest.mark.parametrize("name", list(OUT_PROGRAMS))
def test_a_mode_sees_an_out_call_as_torchs_out_overload(name):
    assert _logged(chainrule, OUT_PROGRAMS[name]) == _logged(real_torch, OUT_PROGRAMS[name])


def test_an_out_call_under_a_mode_writes_out_and_gives_it_back():
    from tests.compat.test_s45_mendAI import _line_logger

    x = chainrule.tensor([[1.0, -2.0], [3.0, 4.0]])
    out = chainrule.empty(2, 2)
    lines = []
    with _line_logger(chainrule, lines):
        made = chainrule.mm(x, x, out=out)
        summed = chainrule.add(x, 1, out=chainrule.empty(2, 2))
    assert made is out
    assert out.tolist() == (x @ x).tolist()
    assert summed.tolist() == (x + 1).tolist()
    assert lines[-1].startswith("aten.add.out")


def test_nested_modes_both_see_the_out_overload():
    from tests.compat.test_s45_mendAI import _line_logger

    def run(lib):
        outer, inner = [], []
        x = lib.tensor([[1.0, 2.0]])
        with _line_logger(lib, outer), _line_logger(lib, inner):
            lib.exp(x, out=lib.empty(1, 2))
        return outer, inner

    assert run(chainrule) == run(real_torch)


# ---- a unary op's output strides: torch's TensorIterator (fresh row-major for a row-major input whatever its
# size-1 dims' strides, channels-last for a channels-last one, the input's own for any other dense one, else dense
# in the input's stride order); nan_to_num and deg2rad as torch's empty_like(input)
def _view(lib, kind: str, shape, arg, integer: bool = False):
    values = lib.arange(1, 1 + int(np.prod(shape)), dtype=lib.int64 if integer else lib.float32).reshape(shape)
    if kind == "permute":
        return values.permute(*arg)
    if kind == "unsqueeze":
        return values.unsqueeze(arg)
    return values.expand(*arg)


VIEWS = [("permute", (2, 1, 3), (1, 2, 0)), ("permute", (2, 1, 3), (2, 0, 1)), ("permute", (1, 2, 1, 3), (0, 3, 2, 1)),
         ("permute", (1, 2, 1, 3), (3, 1, 2, 0)), ("permute", (1, 3), (1, 0)), ("permute", (1, 1, 3), (2, 0, 1)),
         ("unsqueeze", (2, 3), 1), ("expand", (1, 3), (2, 3)), ("expand", (1, 3, 1), (2, 3, 1))]
UNARY = {
    "abs": lambda lib, x: x.abs(), "neg": lambda lib, x: -x, "relu": lambda lib, x: lib.relu(x),
    "exp": lambda lib, x: x.exp(), "isnan": lambda lib, x: x.isnan(), "signbit": lambda lib, x: lib.signbit(x),
    "logical_not": lambda lib, x: lib.logical_not(x), "angle": lambda lib, x: lib.angle(x),
    "nan_to_num": lambda lib, x: lib.nan_to_num(x), "deg2rad": lambda lib, x: lib.deg2rad(x),
}


@pytest.mark.parametrize("op", list(UNARY))
def test_a_unary_op_lays_out_its_output_as_torch(op):
    for kind, shape, arg in VIEWS:
        ours, theirs = (UNARY[op](lib, _view(lib, kind, shape, arg)) for lib in (chainrule, real_torch))
        assert ours.stride() == theirs.stride(), (op, kind, shape, arg)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_bitwise_not_of_an_integer_view_lays_out_its_output_as_torch():
    for kind, shape, arg in VIEWS:
        ours, theirs = (_view(lib, kind, shape, arg, integer=True).bitwise_not() for lib in (chainrule, real_torch))
        assert ours.stride() == theirs.stride(), (kind, shape, arg)
        assert ours.tolist() == theirs.tolist()


def test_a_unary_op_of_a_channels_last_3d_input_is_channels_last_3d():
    for lib in (chainrule, real_torch):
        x = lib.arange(24.0).reshape(1, 2, 3, 4, 1).contiguous(memory_format=lib.channels_last_3d)
        assert x.abs().stride() == x.stride() == (24, 1, 8, 2, 2)


# ---- a conv's (and a transposed conv's) weight gradient strides: its kernel's layout (channels-last in oneDNN and
# slow_conv_dilated2d where the input or weight suggests it, else contiguous), then
# .contiguous(weight.suggest_memory_format()), which keeps a gradient already in that format whatever its size-1
# dims' strides; stolen as .grad as it is
CONV_CASES = [  # (dims, batch, in, out, groups, kernel, stride, dilation, input channels-last, weight channels-last, dtype
    # [, transposed])
    (3, 1, 2, 4, 1, 1, 2, 1, True, False, "float32"), (3, 1, 2, 4, 1, 1, 2, 1, False, False, "float64"),
    (3, 1, 4, 4, 2, 1, 1, 1, True, False, "float32"), (3, 2, 2, 2, 2, 2, 1, 1, True, False, "float32"),
    (3, 1, 2, 2, 2, 2, 2, 1, False, False, "float64"), (3, 2, 2, 4, 1, 2, 1, 1, True, True, "float64"),
    (3, 1, 4, 4, 2, 2, 1, 2, False, True, "float32"),
    (2, 1, 2, 4, 1, 1, 1, 2, True, False, "float64"), (2, 2, 2, 4, 1, 1, 1, 1, True, False, "float64"),
    (2, 1, 2, 4, 1, 1, 1, 1, True, False, "float32"), (2, 2, 2, 2, 2, 2, 1, 1, True, True, "float64"),
    # transposed (slow_conv_transpose2d's dilated weight gradient is contiguous)
    (3, 1, 2, 4, 1, 1, 1, 1, False, False, "float32", True), (3, 2, 4, 4, 2, 1, 2, 1, True, False, "float32", True),
    (2, 1, 2, 4, 1, 1, 1, 2, True, False, "float64", True), (3, 1, 2, 2, 2, 2, 1, 1, True, True, "float64", True),
]


def _conv_weight_grad(lib, dims, n, cin, cout, groups, k, stride, dilation, x_last, w_last, dtype, transposed=False):
    rng = np.random.default_rng(0)
    fmt = lib.channels_last_3d if dims == 3 else lib.channels_last
    x = lib.tensor(rng.standard_normal((n, cin) + (5,) * dims), dtype=getattr(lib, dtype))
    w_shape = (cin, cout // groups) if transposed else (cout, cin // groups)
    w = lib.tensor(rng.standard_normal(w_shape + (k,) * dims), dtype=getattr(lib, dtype))
    x = (x.contiguous(memory_format=fmt) if x_last else x).requires_grad_()
    w = (w.contiguous(memory_format=fmt) if w_last else w).requires_grad_()
    if transposed:
        getattr(lib.nn.functional, f"conv_transpose{dims}d")(x, w, None, stride, 0, 0, groups, dilation).sum().backward()
    else:
        getattr(lib.nn.functional, f"conv{dims}d")(x, w, None, stride, 0, dilation, groups).sum().backward()
    return w.grad, x.grad


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_a_conv_weight_gradient_is_laid_out_as_torch(case):
    (w_grad, x_grad), (torch_w_grad, torch_x_grad) = (_conv_weight_grad(lib, *case) for lib in (chainrule, real_torch))
    assert w_grad.stride() == torch_w_grad.stride()
    assert x_grad.stride() == torch_x_grad.stride()
    np.testing.assert_allclose(w_grad.numpy(), torch_w_grad.numpy(), rtol=1e-5, atol=1e-5)
