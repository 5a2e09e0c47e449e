"""The per-op fast paths of session 27 (benchmarks/overhead.py measures them) behave as the general
paths did and as torch does: sizes parsed from plain ints, views of row-major tensors (their
strides, version counters, bases and nodes), reshapes, and strided views of one-byte dtypes."""

import itertools

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")


def _both(shape, dtype="float32"):
    values = np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)
    return cr.tensor(values), torch.tensor(values)


def _same_view(ours, theirs):
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert ours.stride() == theirs.stride()
    assert ours.storage_offset() == theirs.storage_offset()
    np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())


@pytest.mark.parametrize("sizes", [(1, -1), (-1, 1), (1, 1, 6), (6,), (2, 3), (3, 1, 2), ((1, -1),), ([2, 1, 3],),
                                   (cr.Size([6, 1]),)])
def test_view_and_reshape_of_row_major_input(sizes):
    for shape in [(6,), (2, 3), (3, 2), (1, 6), (6, 1), (2, 1, 3)]:
        ours, theirs = _both(shape)
        their_sizes = tuple(torch.Size(s) if isinstance(s, cr.Size) else s for s in sizes)
        for name in ("view", "reshape"):
            out, expected = getattr(ours, name)(*sizes), getattr(theirs, name)(*their_sizes)
            _same_view(out, expected)
            assert out._base is ours and out._version == ours._version
            ours.add_(1)  # one version counter, and the memory shared
            theirs.add_(1)
            assert out._version == ours._version
            _same_view(out, expected)


def test_views_of_zero_dim_and_strided_inputs_keep_torchs_strides():
    ours, theirs = _both(())
    for sizes in [(1,), (1, 1), (1, -1), (1, 1, 1)]:
        _same_view(ours.view(*sizes), theirs.view(*sizes))
    ours, theirs = _both((4, 6))
    for key in [(slice(None), slice(None, None, 2)), (slice(None, None, 2),), (0,), (slice(None), 1)]:
        a, b = ours[key], theirs[key]
        for sizes in [(1, -1), (-1, 1), (-1,), (1, 1, -1)]:
            try:
                expected = b.view(*sizes)
            except RuntimeError:
                with pytest.raises(RuntimeError, match="view size is not compatible"):
                    a.view(*sizes)
            else:
                _same_view(a.view(*sizes), expected)
            _same_view(a.reshape(*sizes), b.reshape(*sizes))
    t = theirs.t()  # transposed: the size-1 dims' strides come from computeStride
    _same_view(ours.t().reshape(1, 4, 1, 6), t.reshape(1, 4, 1, 6))
    t = theirs[:1].t()  # (6, 1) with strides (1, 6): row-major with a size-1 dim
    _same_view(ours[:1].t().view(1, 6, 1), t.view(1, 6, 1))


def test_view_records_torchs_nodes_and_gradients():
    for shape, sizes in [((6,), (1, -1)), ((2, 3), (3, 2)), ((), (1, 1)), ((1, 6), (6,))]:
        ours = cr.randn(shape, requires_grad=True)
        theirs = torch.tensor(ours.detach().numpy(), requires_grad=True)
        out, expected = ours.view(*sizes) * 2, theirs.view(*sizes) * 2
        assert type(out.grad_fn.next_functions[0][0]).__name__ == type(expected.grad_fn.next_functions[0][0]).__name__
        out.sum().backward()
        expected.sum().backward()
        np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())
    ours = cr.randn(4, 3, requires_grad=True).t()
    theirs = torch.tensor(ours.detach().numpy().T, requires_grad=True).t()
    assert type(ours.reshape(-1).grad_fn).__name__ == type(theirs.reshape(-1).grad_fn).__name__  # a copy
    assert type(ours.reshape(3, 1, 4).grad_fn).__name__ == type(theirs.reshape(3, 1, 4).grad_fn).__name__


@pytest.mark.parametrize("sizes", [(2.0, 3), (True, 6), (6, True), (2, "3"), (2**63, 1), ((2, None),)])
def test_size_arguments_other_than_plain_ints(sizes):
    ours, theirs = _both((6,))
    try:
        expected = theirs.view(*sizes)
    except (TypeError, RuntimeError) as error:
        with pytest.raises(type(error)):
            ours.view(*sizes)
    else:
        _same_view(ours.view(*sizes), expected)


def test_empty_and_full_sizes():
    ours, theirs = _both((0, 3))
    for sizes in [(3, 0), (-1, 3), (0, 1, 3)]:
        _same_view(ours.view(*sizes), theirs.view(*sizes))
    assert cr.zeros(2, 3).shape == torch.zeros(2, 3).shape
    assert cr.ones([2, 3]).shape == torch.ones([2, 3]).shape
    assert cr.empty(cr.Size([2, 3])).shape == torch.empty(torch.Size([2, 3])).shape


@pytest.mark.parametrize("dtype", ["float8_e5m2", "float8_e4m3fn", "uint8", "int8", "bool"])
def test_expand_of_one_byte_dtypes(dtype):
    ours = cr.zeros(3, 1, dtype=getattr(cr, dtype))
    theirs = torch.zeros(3, 1, dtype=getattr(torch, dtype))
    for sizes in [(3, 4), (2, 3, 4), (1, 3, 1)]:
        out, expected = ours.expand(*sizes), theirs.expand(*sizes)
        assert tuple(out.shape) == tuple(expected.shape) and out.stride() == expected.stride()
        assert str(out.dtype).rpartition(".")[2] == str(expected.dtype).rpartition(".")[2]


def test_views_of_many_shapes_match_torch():
    for shape, sizes in itertools.product([(2, 3), (6,), (1, 2, 3), ()], [(-1,), (1, -1), (-1, 1, 1)]):
        ours, theirs = _both(shape, "float64")
        _same_view(ours.view(*sizes), theirs.view(*sizes))
        _same_view(ours.reshape(*sizes), theirs.reshape(*sizes))
