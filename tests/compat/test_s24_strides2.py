"""Output strides torch gives where NumPy's layout rule differs (tools/torch_strides_trial.py and
the strides2 lane's probes): elementwise ops of operands in different layouts, reductions with
keepdim, views of empty tensors, resize_ with a memory_format, resized out= tensors, and cat,
stack and roll of channels-last inputs."""

import numpy as np
import pytest

import chainrule as cr

# (N, C, H, W) = (2, 3, 4, 5) in several layouts, and operands that broadcast against it
_LAYOUTS = {
    "contiguous": "lib.arange(120.).reshape(2, 3, 4, 5)",
    "channels_last": "lib.arange(120.).reshape(2, 3, 4, 5).contiguous(memory_format=lib.channels_last)",
    "transposed": "lib.arange(120.).reshape(2, 5, 4, 3).transpose(1, 3)",
    "sliced": "lib.arange(240.).reshape(2, 3, 8, 5)[:, :, ::2]",
    "permuted": "lib.arange(120.).reshape(4, 2, 5, 3).permute(1, 3, 0, 2)",
    "expanded": "lib.arange(5.).expand(2, 3, 4, 5)",
}
_BROADCAST = {
    "transposed_2d": "lib.arange(20.).reshape(5, 4).t()",
    "channels_last_n1": "lib.arange(60.).reshape(1, 3, 4, 5).contiguous(memory_format=lib.channels_last)",
    "column": "lib.arange(3.).reshape(3, 1, 1)",
    "zero_d": "lib.tensor(2.)",
}
_OPS = ["x + y", "y * x", "x - y", "torch_div(x, y)", "lib.where(x > 5, x, y)", "lib.where(y > 5, x, y)",
        "x.lerp(y, 0.5)", "lib.addcmul(y, x, y)", "x.clamp(y, y + 3)", "x < y", "lib.maximum(y, x)",
        "lib.add(x, y, alpha=2)", "lib.atan2(x, y + 1)", "lib.fmax(x, y)", "lib.isclose(x, y)"]


def _evaluate(lib, x_code, y_code, op):
    scope = {"lib": lib, "torch_div": lambda a, b: lib.div(a, b + 1)}
    scope["x"], scope["y"] = eval(x_code, scope), eval(y_code, scope)  # noqa: S307 - the table's text
    result = eval(op, scope)  # noqa: S307
    return tuple(result.shape), result.stride(), round(result.double().sum().item(), 2)


@pytest.mark.parametrize("y_name", [*_LAYOUTS, *_BROADCAST])
@pytest.mark.parametrize("x_name", list(_LAYOUTS))
def test_elementwise_output_follows_torchs_operand_order(x_name, y_name):
    """torch's TensorIterator lays the output out in the first operand's stride order where the
    operands disagree (NumPy keeps row-major order), a broadcast or 0-d operand having no say."""
    torch = pytest.importorskip("torch")
    y_code = {**_LAYOUTS, **_BROADCAST}[y_name]
    for op in _OPS:
        expected = _evaluate(torch, _LAYOUTS[x_name], y_code, op)
        assert _evaluate(cr, _LAYOUTS[x_name], y_code, op) == expected, op


def test_channels_last_plus_contiguous_is_channels_last_and_views_as_torch():
    x = cr.arange(120.).reshape(2, 3, 4, 5).contiguous(memory_format=cr.channels_last)
    y = cr.arange(120.).reshape(2, 3, 4, 5)
    assert (x + y).stride() == (60, 1, 15, 3)
    assert (x + y).is_contiguous(memory_format=cr.channels_last)
    assert (y + x).stride() == (60, 20, 5, 1)
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        (x + y).view(2, -1)
    assert (y + x).view(2, -1).shape == (2, 60)


def test_mixed_layout_gradients_keep_their_values():
    x = cr.arange(24.).reshape(2, 3, 2, 2).contiguous(memory_format=cr.channels_last).requires_grad_()
    y = cr.arange(24.).reshape(2, 3, 2, 2).requires_grad_()
    out = x * y + x
    assert out.stride() == (12, 1, 6, 3)
    out.sum().backward()
    assert x.grad.tolist() == (y.detach() + 1).tolist()
    assert y.grad.tolist() == x.detach().tolist()


_REDUCED = {
    "channels_last": "lib.arange(120.).reshape(2, 3, 4, 5).contiguous(memory_format=lib.channels_last)",
    "transposed": "lib.arange(12.).reshape(3, 4).t()",
    "permuted": "lib.arange(24.).reshape(2, 3, 4).permute(2, 0, 1)",
}
_REDUCTIONS = ["x.sum({d}, keepdim=True)", "x.mean({d}, keepdim=True)", "x.amax({d}, keepdim=True)",
               "x.var({d}, keepdim=True)", "x.std({d}, keepdim=True)", "x.nanmean({d}, keepdim=True)",
               "x.norm(dim={d}, keepdim=True)", "x.max({single}, keepdim=True)[0]", "x.prod({single}, keepdim=True)"]


@pytest.mark.parametrize("x_name", list(_REDUCED))
def test_reduction_with_keepdim_is_contiguous_with_torchs_strides(x_name):
    """torch's reductions return contiguous tensors whose kept size-1 dims have the stride of the
    dims after them; NumPy's kept dim keeps the reduced input's stride."""
    torch = pytest.importorskip("torch")
    for reduction in _REDUCTIONS:
        for dims in ("0", "-1", "(0, -1)"):
            if dims.startswith("(") and "{single}" in reduction:
                continue
            code = reduction.format(d=dims, single=dims)
            results = []
            for lib in (torch, cr):
                result = eval(code, {"x": eval(_REDUCED[x_name], {"lib": lib})})  # noqa: S307 - the table's text
                results.append((tuple(result.shape), result.stride(), round(result.double().sum().item(), 3)))
            assert results[1] == results[0], code


def test_sum_over_channels_of_channels_last_batch():
    x = cr.arange(120.).reshape(2, 3, 4, 5).contiguous(memory_format=cr.channels_last)
    assert x.sum(1, keepdim=True).stride() == (20, 20, 5, 1)
    assert x.mean((1, 2), keepdim=True).stride() == (5, 5, 5, 1)


_EMPTY = ["lib.zeros(0, 3)", "lib.zeros(2, 3, 0)", "lib.zeros(2, 0, 3)", "lib.zeros(0)",
          "lib.zeros(2, 0, 4, 3)", "lib.zeros(2, 3, 0, 4).contiguous(memory_format=lib.channels_last)"]
_EMPTY_VIEWS = ["x.t() if x.dim() <= 2 else x.mT", "x.transpose(0, -1)", "x.permute(*reversed(range(x.dim())))",
                "x.unsqueeze(0)", "x.unsqueeze(-1)", "x.movedim(0, -1)", "x.expand(2, *x.shape)",
                "x.unflatten(0, (1, x.shape[0]))", "x.view(*x.shape)", "x.reshape(-1)", "x.squeeze()",
                "x.unsqueeze(0).expand(3, *x.shape)", "x.clone()", "x.contiguous()"]


@pytest.mark.parametrize("x_code", _EMPTY)
def test_views_of_empty_tensors_keep_torchs_strides(x_code):
    """NumPy zeroes an empty array's strides; torch's empty tensor has its shape's contiguous (or
    channels-last) strides, and its views transform them."""
    torch = pytest.importorskip("torch")
    for view in _EMPTY_VIEWS:
        results = []
        for lib in (torch, cr):
            result = eval(view, {"x": eval(x_code, {"lib": lib})})  # noqa: S307 - the table's text
            results.append((tuple(result.shape), result.stride()))
        assert results[1] == results[0], view


def test_transposed_empty_matrix_strides():
    assert cr.zeros(0, 3).t().stride() == (1, 3)
    assert cr.zeros(0, 3).unsqueeze(0).stride() == (0, 3, 1)
    assert cr.zeros(2, 3, 0, 4).contiguous(memory_format=cr.channels_last).stride() == (0, 1, 12, 3)


def _resized(lib, make, sizes, memory_format):
    x = make(lib)
    try:
        if memory_format is None:
            x.resize_(*sizes)
        else:
            x.resize_(*sizes, memory_format=getattr(lib, memory_format))
    except RuntimeError as error:
        return str(error)
    return tuple(x.shape), x.stride(), x.reshape(-1)[:6].tolist()


@pytest.mark.parametrize("memory_format", [None, "channels_last", "contiguous_format", "preserve_format"])
@pytest.mark.parametrize("sizes", [(1, 2, 3, 4), (2, 2, 3, 4), (2, 12), (3, 8)])
def test_resize_restrides_to_the_memory_format_given(sizes, memory_format):
    """torch's resize_ keeps a tensor of the same sizes as it is, and restrides the resized one to
    a memory_format given, reading the same memory in the new order; preserve_format, and a
    channels-last format of another rank, are refused."""
    torch = pytest.importorskip("torch")
    for make in (lambda lib: lib.arange(24.).reshape(1, 2, 3, 4), lambda lib: lib.arange(24.).reshape(3, 8).t()):
        if sizes[0] == 2 and len(sizes) == 4 and memory_format is None:
            continue  # (grown: the new elements are uninitialised in torch)
        expected = _resized(torch, make, sizes, memory_format)
        if isinstance(expected, tuple) and expected[0] != (1, 2, 3, 4) and len(expected[0]) == 4:
            expected = expected[:2]  # (grown: the values past the old storage are uninitialised)
        got = _resized(cr, make, sizes, memory_format)
        assert (got[:2] if isinstance(got, tuple) and len(expected) == 2 else got) == expected


@pytest.mark.parametrize("call", ["lib.add(y, y, out=z)", "lib.neg(x, out=z)", "lib.mul(t, t, out=z)",
                                  "lib.clamp(t, 0, 3, out=z)", "lib.where(x > 3, x, lib.zeros(()), out=z)",
                                  "lib.sum(x, 1, keepdim=True, out=z)", "lib.mm(lib.ones(4, 3).t(), t, out=z)"])
def test_resized_out_is_laid_out_as_the_fresh_result(call):
    """An out= of the wrong shape is resized (with torch's deprecation warning) to the layout the
    op's fresh output has (channels-last, transposed), not to row-major."""
    torch = pytest.importorskip("torch")
    results = []
    for lib in (torch, cr):
        scope = {"lib": lib, "z": lib.zeros(7),
                 "x": lib.arange(24.).reshape(1, 2, 3, 4).contiguous(memory_format=lib.channels_last),
                 "y": lib.arange(60.).reshape(1, 3, 4, 5).contiguous(memory_format=lib.channels_last),
                 "t": lib.arange(12.).reshape(3, 4).t()}
        with pytest.warns(UserWarning, match="was resized"):
            eval(call, scope)  # noqa: S307 - the parametrized call
        results.append((tuple(scope["z"].shape), scope["z"].stride(), scope["z"].sum().item()))
    assert results[1] == results[0]


@pytest.mark.parametrize("call", ["lib.cat([x, x])", "lib.cat([x, x], 1)", "lib.cat([x, x], 3)", "lib.cat([x, c])",
                                  "lib.cat([c, x])", "lib.cat([x[:, :, ::2], x], 2)", "lib.cat([x5, x5], 2)"])
def test_cat_of_channels_last_inputs_is_channels_last(call):
    torch = pytest.importorskip("torch")
    results = []
    for lib in (torch, cr):
        scope = {"lib": lib, "c": lib.arange(24.).reshape(1, 2, 3, 4),
                 "x": lib.arange(24.).reshape(1, 2, 3, 4).contiguous(memory_format=lib.channels_last),
                 "x5": lib.arange(48.).reshape(1, 2, 3, 4, 2).contiguous(memory_format=lib.channels_last_3d)}
        result = eval(call, scope)  # noqa: S307 - the parametrized call
        results.append((tuple(result.shape), result.stride(), result.reshape(-1).tolist()))
    assert results[1] == results[0]


@pytest.mark.parametrize("call", ["lib.remainder(x, y)", "lib.fmod(x, y)", "x // y", "lib.div(x, y, rounding_mode='trunc')",
                                  "lib.fmin(x.float(), y.float())", "lib.eq(x, y)", "x & y"])
def test_integer_elementwise_of_channels_last_and_contiguous(call):
    torch = pytest.importorskip("torch")
    results = []
    for lib in (torch, cr):
        x = lib.arange(1, 121).reshape(2, 3, 4, 5).contiguous(memory_format=lib.channels_last)
        y = lib.arange(1, 121).reshape(2, 3, 4, 5).flip(0)
        result = eval(call, {"lib": lib, "x": x, "y": y})  # noqa: S307 - the parametrized call
        results.append((result.stride(), result.sum().item()))
    assert results[1] == results[0] and results[0][0] == (60, 1, 15, 3)


@pytest.mark.parametrize("shape", [(1, 2, 3, 4, 2), (2, 3, 4, 5, 2), (1, 3, 4, 5), (2, 1, 4, 5)])
def test_roll_of_channels_last_is_channels_last_unless_a_piece_is_empty(shape):
    """torch rolls one dim at a time as cat of two narrows: channels-last in, channels-last out,
    unless a shift by a multiple of the dim's size leaves an empty piece (then contiguous)."""
    torch = pytest.importorskip("torch")
    for args in [(1, 0), (1, 2), (4, 2), ((1, 1), (2, 3)), ((0, 1), (1, 2)), (-1, 1)]:
        results = []
        for lib in (torch, cr):
            memory_format = lib.channels_last if len(shape) == 4 else lib.channels_last_3d
            x = lib.arange(float(np.prod(shape))).reshape(shape).contiguous(memory_format=memory_format)
            rolled = x.roll(*args)
            results.append((rolled.stride(), rolled.reshape(-1).tolist()))
        assert results[1] == results[0], args


@pytest.mark.parametrize("dim", [0, 1, 2, 3, 4, -1])
def test_stack_of_channels_last_is_a_view_of_their_channels_last_cat(dim):
    torch = pytest.importorskip("torch")
    results = []
    for lib in (torch, cr):
        x = lib.arange(120.).reshape(2, 3, 4, 5).contiguous(memory_format=lib.channels_last)
        n11 = lib.arange(6.).reshape(1, 3, 1, 2).contiguous(memory_format=lib.channels_last)
        stacked = (lib.stack([x, x + 1], dim), lib.stack([n11, n11], dim))
        results.append([(s.stride(), s.reshape(-1).tolist()) for s in stacked])
    assert results[1] == results[0]


@pytest.mark.parametrize("call", ["lib.lerp(b, c, t / 200)", "lib.lerp(b, t, c / 200)", "lib.lerp(r, c, x / 200)",
                                  "b.clamp(c, t + 50)", "b.clamp(t, c + 50)", "lib.addcmul(b, c, t)"])
def test_ternary_composites_follow_their_first_operand(call):
    """addcmul, addcdiv, lerp and clamp with tensor bounds are one TensorIterator kernel in torch:
    the first operand's layout decides, not that of the composite's last step."""
    torch = pytest.importorskip("torch")
    results = []
    for lib in (torch, cr):
        scope = {"lib": lib, "c": lib.arange(24.).reshape(2, 3, 4), "b": lib.arange(12.).reshape(4, 3).t(),
                 "r": lib.arange(3.).reshape(3, 1),
                 "t": lib.arange(24.).reshape(4, 3, 2).permute(2, 1, 0),
                 "x": lib.arange(24.).reshape(2, 4, 3).transpose(1, 2)}
        result = eval(call, scope)  # noqa: S307 - the parametrized call
        results.append((result.stride(), round(result.sum().item(), 3)))
    assert results[1] == results[0]
