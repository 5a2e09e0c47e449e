"""View-scatter ops and empty views compared with torch 2.13 (CPU): the differences
tools/torch_strides_trial.py still found in session 23, in our own words."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _both(expression: str):
    """``expression`` evaluated with ``lib`` as torch and as chainrule."""
    return eval(expression, {"lib": torch}), eval(expression, {"lib": chainrule})


def _same_layout(ours, theirs):
    np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())
    assert tuple(ours.stride()) == tuple(theirs.stride())
    assert ours.storage_offset() == theirs.storage_offset()
    assert ours.is_contiguous() == theirs.is_contiguous()


# ---- as_strided_scatter: offsets count in the input's (copied) storage, its strides kept -------------
_INPUTS = {
    "transposed": "lib.arange(12.).reshape(3, 4).t()",
    "sliced": "lib.arange(30.).reshape(5, 6)[1:4, ::2]",
    "row_offset": "lib.arange(12.).reshape(4, 3)[1:]",
    "channels_last": "lib.arange(24.).reshape(1, 2, 3, 4).contiguous(memory_format=lib.channels_last)",
    "channels_last_sliced": "lib.arange(48.).reshape(2, 2, 4, 3).contiguous(memory_format=lib.channels_last)"
                            "[:, :, ::2]",
    "expanded": "lib.arange(3.).expand(2, 3)",
}
_VIEWS = [((2,), (1,), None), ((2,), (1,), 7), ((2, 2), (1, 3), None), ((2, 2), (3, 1), 1)]


@pytest.mark.parametrize("view", _VIEWS, ids=str)
@pytest.mark.parametrize("name", sorted(_INPUTS))
def test_as_strided_scatter_writes_where_torch_writes(name, view):
    size, stride, offset = view
    x_t, x_c = _both(_INPUTS[name])
    src_t = -torch.arange(1., 1. + int(np.prod(size))).reshape(size)
    src_c = chainrule.tensor(src_t.numpy())
    try:
        expected = torch.as_strided_scatter(x_t, src_t, size, stride, offset)
    except RuntimeError as error:  # (an expanded input's copy is dense: 6 elements, offset 7 is past them)
        with pytest.raises(RuntimeError) as ours:
            chainrule.as_strided_scatter(x_c, src_c, size, stride, offset)
        assert str(ours.value) == str(error)
        return
    got = chainrule.as_strided_scatter(x_c, src_c, size, stride, offset)
    _same_layout(got, expected)
    np.testing.assert_array_equal(x_c.numpy(), x_t.numpy())  # the input is untouched


def test_as_strided_scatter_on_sliced_input_keeps_untouched_elements():
    # storage[6:8] is written: x[0, 0] (storage 6) becomes 0, x[0, 1] (storage 8) keeps 8
    x = chainrule.arange(30.).reshape(5, 6)[1:4, ::2]
    got = chainrule.as_strided_scatter(x, chainrule.zeros(2), (2,), (1,))
    assert got.tolist()[0] == [0.0, 8.0, 10.0]
    assert (got.stride(), got.storage_offset()) == ((6, 2), 6)


@pytest.mark.parametrize("expression, view", [
    ("lib.tensor(3.)", ((2,), (1,), None)),
    ("lib.arange(30.).reshape(5, 6)[1:4, ::2]", ((2,), (1,), 29)),  # its storage holds 30, not 9
    ("lib.arange(6.).reshape(2, 3)", ((2,), (-1,), None)),
])
def test_as_strided_scatter_errors_as_torch(expression, view):
    x_t, x_c = _both(expression)
    size = view[0]
    with pytest.raises(RuntimeError) as theirs:
        torch.as_strided_scatter(x_t, torch.zeros(size), *view)
    with pytest.raises(RuntimeError) as ours:
        chainrule.as_strided_scatter(x_c, chainrule.zeros(size), *view)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("offset", [None, 2])
def test_as_strided_scatter_gradients_on_contiguous_input(offset):
    # src's gradient as torch's; input's by value: torch 2.13's own input gradient fails its gradcheck
    # (it returns the window's gradient where the rest belongs), so it is no oracle for it
    grads = []
    for lib in (torch, chainrule):
        x = lib.arange(12., dtype=lib.float64).reshape(3, 4).requires_grad_()
        src = lib.ones(2, 2, dtype=lib.float64, requires_grad=True)
        y = lib.as_strided_scatter(x, src, (2, 2), (4, 1), offset)
        y.backward(lib.arange(12., dtype=lib.float64).reshape(3, 4) + 1)
        grads.append((x.grad, src.grad))
    np.testing.assert_array_equal(grads[1][1].numpy(), grads[0][1].numpy())
    start = offset or 0
    expected = np.arange(12.) + 1
    expected[[start, start + 1, start + 4, start + 5]] = 0
    np.testing.assert_array_equal(grads[1][0].numpy(), expected.reshape(3, 4))


@pytest.mark.parametrize("layout, view", [
    ("x.t()", ((2, 2), (1, 3), 1)),
    ("x[1:4, ::2]", ((3,), (2,), 7)),           # storage 9 lies under no element of the slice
    ("x[1:]", ((2,), (1,), None)),
    ("x.reshape(1, 2, 3, 4).contiguous(memory_format=chainrule.channels_last)", ((2, 3), (1, 2), 3)),
    ("x.expand(2, 4, 6)", ((4,), (6,), 1)),
])
def test_as_strided_scatter_gradcheck_through_strided_inputs(layout, view):
    size, stride, offset = view

    def f(x, src):
        return chainrule.as_strided_scatter(eval(layout, {"x": x, "chainrule": chainrule}), src, size, stride, offset)

    x = chainrule.randn(4, 6, dtype=chainrule.float64, requires_grad=True)
    src = chainrule.randn(*size, dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradcheck(f, (x, src))


def test_as_strided_scatter_gradient_of_transposed_input_by_hand():
    # x.t() of a (2, 3): the copy's storage is x's row-major; positions 1, 2 are x[0, 1], x[0, 2]
    x = chainrule.arange(6., dtype=chainrule.float64).reshape(2, 3).requires_grad_()
    src = chainrule.zeros(2, dtype=chainrule.float64, requires_grad=True)
    y = chainrule.as_strided_scatter(x.t(), src, (2,), (1,), 1)
    assert y.tolist() == [[0.0, 3.0], [0.0, 4.0], [0.0, 5.0]]
    y.backward(chainrule.arange(6., dtype=chainrule.float64).reshape(3, 2) + 1)
    assert x.grad.tolist() == [[1.0, 0.0, 0.0], [2.0, 4.0, 6.0]]
    assert src.grad.tolist() == [3.0, 5.0]


# ---- empty slices: torch moves the start of an empty slice as of any other; NumPy does not ---------
_EMPTY_READS = [
    "x[5:]", "x[7:3]", "x[:, 6:]", "x[2:][5:]", "x[1:][:, 3:3]", "x[-1:][1:]", "x.narrow(0, 3, 0)",
    "x.narrow(1, 6, 0)", "x.tensor_split(7)[-1]", "x.tensor_split([2, 2], 1)[1]", "x.view(-1)[30:]",
    "x.split([5, 0])[1]", "x.t()[:, 5:]", "x[..., 4:2]", "x[None, 2, 6:]",
]


@pytest.mark.parametrize("read", _EMPTY_READS)
def test_empty_slice_storage_offset_as_torch(read):
    ours = eval(read, {"x": chainrule.arange(30.).reshape(5, 6)})
    theirs = eval(read, {"x": torch.arange(30.).reshape(5, 6)})
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert ours.storage_offset() == theirs.storage_offset()


def test_empty_slice_of_zero_dim_view_as_torch():
    for lib in (torch, chainrule):
        assert lib.tensor(3.).view(-1)[1:3].fill_(5.).storage_offset() == 1


@pytest.mark.parametrize("expression", ["lib.arange(6.).reshape(1, 3, 1, 2)", "lib.arange(12.).reshape(3, 4)[1:]"])
def test_as_strided_of_empty_slice_checks_bounds_as_torch(expression):
    # x[3:] starts at the end of the storage: 2 elements from there lie outside it
    x_t, x_c = _both(expression)
    end = x_t.shape[0]
    with pytest.raises(RuntimeError) as theirs:
        x_t[end:].as_strided((2,), (1,))
    with pytest.raises(RuntimeError) as ours:
        x_c[end:].as_strided((2,), (1,))
    assert str(ours.value) == str(theirs.value)
    assert x_c[end:].as_strided((2,), (1,), 0).tolist() == x_t[end:].as_strided((2,), (1,), 0).tolist()


def test_empty_slice_stays_a_view_and_writes_nothing():
    for lib in (torch, chainrule):
        x = lib.arange(6.).reshape(2, 3)
        empty, version = x[2:], x._version
        empty.add_(1)  # an in-place op on the empty view: no value changes, the shared version moves
        assert x.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
        assert (x._version - version, empty._is_view(), empty.storage_offset()) == (1, True, 6)


@pytest.mark.parametrize("expression, args", [
    ("lib.arange(6.).reshape(1, 3, 1, 2)", (-1,)),
    ("lib.arange(12.).reshape(3, 4)", (5,)),
    ("lib.arange(12.).reshape(3, 4)[1:]", (-2,)),
    ("lib.arange(24.).reshape(2, 3, 4)[:, 1:]", (-3, 1, 2)),
])
def test_empty_diagonal_storage_offset_as_torch(expression, args):
    # torch adds no offset for an empty diagonal; NumPy's diagonal moves to where it would start
    x_t, x_c = _both(expression)
    theirs, ours = torch.diagonal(x_t, *args), chainrule.diagonal(x_c, *args)
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert ours.storage_offset() == theirs.storage_offset()


@pytest.mark.parametrize("offset", [None, 1])
def test_as_strided_scatter_under_vmap_counts_offsets_per_sample(offset):
    # torch 2.13 has no batching rule for it (it raises); chainrule gives each sample what it gives
    # that sample alone, its explicit offset counted from the sample's start as vmap's as_strided does
    x = chainrule.arange(12.).reshape(3, 4)
    batched = chainrule.vmap(lambda r: chainrule.as_strided_scatter(r, chainrule.zeros(2), (2,), (1,), offset))(x)
    one_by_one = [chainrule.as_strided_scatter(r.clone(), chainrule.zeros(2), (2,), (1,), offset).tolist() for r in x]
    assert batched.tolist() == one_by_one
    assert one_by_one[1] == ([0.0, 0.0, 6.0, 7.0] if offset is None else [4.0, 0.0, 0.0, 7.0])


@pytest.mark.parametrize("make", [
    lambda L: L.zeros(3, 4)[:, 4:], lambda L: L.zeros(3, 4).t()[0:0], lambda L: L.zeros(5, 6).narrow(1, 2, 0),
    lambda L: L.zeros(1, 3, 1, 2).diagonal(-1), lambda L: L.zeros(0, 3), lambda L: L.zeros(2, 0, 3),
    lambda L: L.zeros(5, 6)[5:], lambda L: L.zeros(0, 6).reshape(0, 2, 3), lambda L: L.zeros(3, 0) + 1,
])
def test_empty_views_keep_their_strides_as_torchs_do(make):
    assert make(chainrule).stride() == make(torch).stride()
