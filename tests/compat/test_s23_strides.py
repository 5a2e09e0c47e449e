"""Strides, memory formats, views and aliasing as torch has them (tools/torch_strides_trial.py's finds)."""

import warnings

import pytest

import chainrule as cr


def test_clone_of_channels_last_tensor_is_a_copy():
    x = cr.arange(24.0).reshape(1, 2, 3, 4).contiguous(memory_format=cr.channels_last)
    for memory_format in (None, cr.preserve_format, cr.channels_last):
        c = x.clone() if memory_format is None else x.clone(memory_format=memory_format)
        c.zero_()
        assert float(x.sum()) == 276.0
        assert c.stride() == (24, 1, 8, 2)


def test_fill_and_zero_write_into_overlapping_views():
    torch = pytest.importorskip("torch")
    for lib in (torch, cr):
        x = lib.arange(6.0)
        x.expand(2, 6).fill_(3.0)
        assert x.tolist() == [3.0] * 6
        x.unfold(0, 3, 1).zero_()  # windows overlapping by two elements
        assert x.tolist() == [0.0] * 6


def test_in_place_arithmetic_into_zero_stride_view_is_refused():
    torch = pytest.importorskip("torch")
    for lib in (torch, cr):
        x = lib.arange(6.0)
        for view, op in ((x.as_strided((2, 2), (0, 1)), "add_"), (x.expand(2, 6), "mul_")):
            with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
                getattr(view, op)(2)
        assert x.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


@pytest.mark.parametrize("expression", ["x.mT", "x.mH", "x.H", "x.adjoint()"])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (2, 2, 3)])
def test_matrix_transposes_by_rank(expression, shape):
    """A 0-D tensor is its own (conjugate) transpose, with a deprecation warning; H takes only 2-D."""
    torch = pytest.importorskip("torch")
    outcomes = []
    for lib in (torch, cr):
        x = lib.zeros(shape)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = eval(expression, {"x": x})  # noqa: S307 - the parametrized expression
        except RuntimeError as error:
            outcomes.append(str(error))
        else:
            outcomes.append((tuple(result.shape), result.stride(), result is x))
    assert outcomes[0] == outcomes[1]


_LAYOUTS = [
    "torch.arange(12.).reshape(3, 4).t()",  # dense, transposed: strides kept
    "torch.arange(24.).reshape(2, 3, 4).permute(2, 0, 1)",
    "torch.arange(6.).reshape(1, 3, 1, 2).transpose(0, 2)",  # size-1 dims' strides kept too
    "torch.arange(24.).reshape(2, 3, 4)[:, :, ::2].transpose(0, 1)",  # not dense: dense in its stride order
    "torch.arange(12.).reshape(3, 4)[:, None].expand(3, 2, 4)",  # a zero stride stays where it is
    "torch.arange(240.).reshape(2, 3, 8, 5).contiguous(memory_format=torch.channels_last)[:, :, ::2]",
]


@pytest.mark.parametrize("layout", _LAYOUTS)
@pytest.mark.parametrize("expression", ["x.clone()", "torch.zeros_like(x)", "torch.empty_like(x)",
                                        "torch.full_like(x, 2.)", "torch.ones_like(x, dtype=torch.float64)"])
def test_preserve_format_strides(layout, expression):
    torch = pytest.importorskip("torch")
    made = [eval(expression, {"torch": lib, "x": eval(layout, {"torch": lib})})  # noqa: S307
            for lib in (torch, cr)]
    assert made[1].stride() == made[0].stride()
    if expression != "torch.empty_like(x)":
        assert made[1].tolist() == made[0].tolist()


@pytest.mark.parametrize("layout", ["torch.arange(12.).reshape(3, 4).t()", "torch.arange(30.).reshape(5, 6)[1:4, ::2]",
                                    "torch.arange(120.).reshape(2, 3, 4, 5).contiguous(memory_format=torch.channels_last)",
                                    "torch.arange(120.).reshape(2, 3, 4, 5)"])
@pytest.mark.parametrize("expression", ["x.to(memory_format=torch.contiguous_format)",
                                        "x.to(memory_format=torch.channels_last)", "x.ravel()"])
def test_to_memory_format_and_ravel_alias_as_torch(layout, expression):
    """``to(memory_format=)`` is self when the strides suggest that format (torch's to_will_alias);
    ravel() copies a non-contiguous input."""
    torch = pytest.importorskip("torch")
    outcomes = []
    for lib in (torch, cr):
        x = eval(layout, {"torch": lib})  # noqa: S307
        try:
            result = eval(expression, {"torch": lib, "x": x})  # noqa: S307
        except RuntimeError as error:
            outcomes.append(type(error))
            continue
        before = result.tolist()
        with lib.no_grad():
            x.add_(1)
        aliased = result.tolist() != before
        outcomes.append((result is x, result.stride(), result.storage_offset(), result.is_contiguous(), aliased))
    assert outcomes[0] == outcomes[1]


def test_zero_d_refusals():
    torch = pytest.importorskip("torch")
    for lib in (torch, cr):
        x = lib.tensor(3.0)
        with pytest.raises(TypeError, match='missing 1 required positional arguments: "dims"'):
            x.permute()
        assert x.permute(()).shape == ()
        with pytest.raises(RuntimeError, match="Dimension specified as 0 but tensor has no dimensions"):
            x.unflatten(0, (1, -1))


@pytest.mark.parametrize("expression", [
    "torch.arange(6.).reshape(1, 3, 1, 2).expand(2, 1, 3, 4, 2)",  # a kept size-1 dim keeps its stride
    "torch.arange(3.).expand(1, 2, 1, 3)",
    "torch.tensor(3.).expand(2, 1)",
    "torch.arange(12.).reshape(3, 4).t().expand(2, 1, 4, 3)",
    "torch.arange(12.).reshape(3, 4).t().unsqueeze(-1)",  # a new last dim's stride is 1
    "torch.arange(48.).reshape(1, 2, 3, 4, 2).contiguous(memory_format=torch.channels_last_3d).unsqueeze(0)",
    "torch.arange(30.).reshape(5, 6)[1:4, ::2].unsqueeze(1)",
    "torch.atleast_3d(torch.arange(12.).reshape(3, 4).t())",
])
def test_expand_and_unsqueeze_strides(expression):
    torch = pytest.importorskip("torch")
    expected, got = (eval(expression, {"torch": lib}) for lib in (torch, cr))  # noqa: S307
    assert (got.stride(), got.tolist()) == (expected.stride(), expected.tolist())


def test_expand_without_repeats_writes_through():
    x = cr.arange(3.0)
    x.expand(1, 3).add_(1)
    assert x.tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("key", ["x[None]", "x[..., None]", "x[None, None]", "x[None, ::2]", "x[1, None]",
                                 "x[:, None, 1:]", "x[None, ..., None]"])
@pytest.mark.parametrize("layout", ["torch.arange(24.).reshape(2, 3, 4)",
                                    "torch.arange(24.).reshape(2, 3, 4).transpose(0, 2)[:, ::2]"])
def test_none_index_strides(key, layout):
    """A None in an index adds torch's unsqueeze stride (the extent of the next dim), not NumPy's 0."""
    torch = pytest.importorskip("torch")
    expected, got = (eval(key, {"x": eval(layout, {"torch": lib})}) for lib in (torch, cr))  # noqa: S307
    assert (got.stride(), got.tolist()) == (expected.stride(), expected.tolist())


@pytest.mark.parametrize("expression", ["x.roll(1, 0)", "x.roll((1, 1), (0, -1))", "x.roll(1)"])
@pytest.mark.parametrize("layout", ["torch.arange(120.).reshape(2, 3, 4, 5).contiguous(memory_format=torch.channels_last)",
                                    "torch.arange(48.).reshape(1, 2, 3, 4, 2).contiguous(memory_format=torch.channels_last_3d)",
                                    "torch.arange(12.).reshape(3, 4).t()", "torch.tensor(3.)"])
def test_roll_layout(expression, layout):
    """roll keeps a 4-d channels-last input's layout along dims; otherwise (5-d, flattened) it is contiguous."""
    torch = pytest.importorskip("torch")
    outcomes = []
    for lib in (torch, cr):
        try:
            made = eval(expression, {"x": eval(layout, {"torch": lib})})  # noqa: S307
        except (RuntimeError, IndexError) as error:
            outcomes.append(type(error))
        else:
            outcomes.append((made.stride(), made.tolist()))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("expression", ["x.view(x.shape)", "x.reshape(1, -1)", "x.reshape(-1, 1)", "x.view(1, *x.shape, 1)",
                                        "x.squeeze().unsqueeze(0).view(-1, 1)"])
@pytest.mark.parametrize("layout", ["torch.arange(48.).reshape(1, 2, 3, 4, 2).contiguous(memory_format=torch.channels_last_3d)",
                                    "torch.arange(6.).reshape(1, 3, 1, 2)", "torch.arange(30.).reshape(5, 6)[1:4, ::2]"])
def test_view_strides_of_size_one_dims(expression, layout):
    """A view's size-1 dims take torch's computeStride strides (NumPy picks its own)."""
    torch = pytest.importorskip("torch")
    outcomes = []
    for lib in (torch, cr):
        try:
            made = eval(expression, {"x": eval(layout, {"torch": lib})})  # noqa: S307
        except RuntimeError as error:
            outcomes.append(type(error))
        else:
            outcomes.append((made.stride(), made.tolist()))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("layout", ["torch.arange(6.)[1:5]", "torch.arange(6.)[::2]", "torch.arange(8.).reshape(4, 2).t()",
                                    "torch.arange(12.).reshape(2, 6)[:, :4]", "torch.arange(12.).reshape(2, 6)[:, 1:5]",
                                    "torch.arange(16.).reshape(8, 2).t()[:, 1:]", "torch.arange(6.).reshape(2, 3)"])
@pytest.mark.parametrize("dtype", ["float64", "complex128", "float16", "uint8"])
def test_view_dtype_checks(layout, dtype):
    """view(dtype) with another element size: torch's checks (last size, last stride, offset,
    other strides) in torch's order, with its messages."""
    torch = pytest.importorskip("torch")
    outcomes = []
    for lib in (torch, cr):
        x = eval(layout, {"torch": lib})  # noqa: S307
        try:
            made = x.view(getattr(lib, dtype))
        except RuntimeError as error:
            outcomes.append(str(error))
        else:
            outcomes.append((tuple(made.shape), made.stride(), made.storage_offset()))
    assert outcomes[0] == outcomes[1]


def test_single_window_unfold_is_writable():
    """One window overlaps nothing: torch writes through it in place (it refused as read-only memory)."""
    torch = pytest.importorskip("torch")
    for lib in (torch, cr):
        x = lib.arange(6.0).reshape(3, 2)
        x.unfold(-1, 2, 1).add_(1)
        assert x.tolist() == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]


@pytest.mark.parametrize("expression", ["torch.select_scatter(x, torch.zeros_like(x.select(0, 0)), 0, 0)",
                                        "torch.slice_scatter(x, torch.zeros_like(x[:1]), 0, 0, 1)",
                                        "torch.diagonal_scatter(x, torch.zeros_like(x.diagonal()))"])
@pytest.mark.parametrize("layout", ["torch.arange(30.).reshape(5, 6)[1:4, ::2]", "torch.arange(15.).reshape(3, 5)[:, :3]",
                                    "torch.arange(12.).reshape(3, 4).t()"])
def test_scatter_views_keep_strides_and_offset(expression, layout):
    """The *_scatter ops write into torch's clone_preserve_strides copy: the input's strides and offset."""
    torch = pytest.importorskip("torch")
    made = [eval(expression, {"torch": lib, "x": eval(layout, {"torch": lib})}) for lib in (torch, cr)]  # noqa: S307
    assert [(m.stride(), m.storage_offset(), m.tolist()) for m in made[1:]] == \
        [(made[0].stride(), made[0].storage_offset(), made[0].tolist())]


@pytest.mark.parametrize("expression", ["x.squeeze()", "x.squeeze(1)", "x.squeeze(-1)", "x.squeeze((0, 2))",
                                        "x.unsqueeze(1).squeeze()"])
@pytest.mark.parametrize("layout", ["torch.arange(48.).reshape(1, 2, 3, 4, 2).contiguous(memory_format=torch.channels_last_3d)",
                                    "torch.arange(6.).reshape(1, 3, 1, 2).transpose(0, 2)"])
def test_squeeze_keeps_strides(expression, layout):
    """squeeze drops dims and keeps the other dims' strides, size-1 dims' included."""
    torch = pytest.importorskip("torch")
    made = [eval(expression, {"x": eval(layout, {"torch": lib})}) for lib in (torch, cr)]  # noqa: S307
    assert (made[1].stride(), made[1].tolist()) == (made[0].stride(), made[0].tolist())


def test_resize_keeps_the_storage():
    """resize_ reads the storage row-major from the tensor's offset (a sliced or transposed tensor's
    memory order) and, when it fits, stays a view of it, as torch's."""
    torch = pytest.importorskip("torch")
    outcomes = []
    for lib in (torch, cr):
        x = lib.arange(6.0)
        v = x[2:]
        v.resize_(2)
        v.fill_(9.0)
        y = lib.arange(6.0).reshape(2, 3).t()
        y.resize_(6)
        z = lib.arange(30.0).reshape(5, 6)[1:4, ::2]
        z.resize_(9)
        outcomes.append((x.tolist(), v.storage_offset(), y.tolist(), z.tolist(), z.storage_offset()))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("expression", ["torch.transpose_copy(x, 0, 1)", "torch.permute_copy(x, (2, 0, 1))",
                                        "torch.as_strided_copy(x, (2, 2), (1, 2))", "torch.alias_copy(x.transpose(0, 1))",
                                        "torch.select_copy(x.transpose(0, 2), 0, 0)"])
def test_copy_variants_are_row_major(expression):
    torch = pytest.importorskip("torch")
    made = [eval(expression, {"torch": lib, "x": lib.arange(24.0).reshape(2, 3, 4)}) for lib in (torch, cr)]  # noqa: S307
    assert (made[1].stride(), made[1].tolist()) == (made[0].stride(), made[0].tolist())


def test_writes_into_empty_tensors_are_not_overlap_refusals():
    # NumPy gives an empty array's dims zero strides; with no elements nothing overlaps (torch writes)
    torch = pytest.importorskip("torch")
    for lib in (torch, cr):
        y = lib.zeros(1, 0, 3).permute(2, 0, 1)
        assert y.copy_(lib.tensor(1.0)).shape == (3, 1, 0)
        x = lib.zeros(4, 2, 0)
        assert x.add_(1).shape == (4, 2, 0)
        assert x.index_put_((lib.tensor(1),), lib.tensor(2.0)).shape == (4, 2, 0)
