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


def _chain(fn) -> list:
    names = []
    while fn is not None and type(fn).__name__ != "AccumulateGrad":
        names.append(type(fn).__name__)
        fn = fn.next_functions[0][0] if fn.next_functions else None
    return names


@pytest.mark.parametrize("key", [0, -1, 2, (1,), (-3,), (0, 1), (2, -1), (-1, 0, 1), (1, 2, 3), (0, 0, 0)])
def test_integer_keys_read_and_record_as_torch(key):
    values = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    for requires_grad in (False, True):
        ours = cr.tensor(values, requires_grad=requires_grad)
        theirs = torch.tensor(values, requires_grad=requires_grad)
        base_ours, base_theirs = ours * 1, theirs * 1  # a non-leaf: an in-place op writes through
        out, expected = base_ours[key], base_theirs[key]
        _same_view(out, expected)
        assert out._version == base_ours._version and out._base is base_ours
        assert _chain(out.grad_fn) == _chain(expected.grad_fn)
        if requires_grad:
            out.mul_(3)  # through the view into its base, with the base's graph rebuilt
            expected.mul_(3)
            np.testing.assert_array_equal(base_ours.detach().numpy(), base_theirs.detach().numpy())
            (base_ours * base_ours).sum().backward()
            (base_theirs * base_theirs).sum().backward()
            np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())


@pytest.mark.parametrize("key", [3, -4, (3,), (0, 4), (0, 1, 5), (0, 1, 2, 0), True, (True,), (0, True), (1, False)])
def test_integer_keys_out_of_range_or_bool_as_torch(key):
    ours, theirs = _both((3, 4, 5))
    try:
        expected = theirs[key]
    except IndexError as error:
        with pytest.raises(IndexError) as raised:
            ours[key]
        assert str(raised.value) == str(error)
    else:
        _same_view(ours[key], expected)


def test_integer_key_of_zero_dim_tensor_as_torch():
    ours, theirs = _both(())
    for key in (0, (0,)):
        with pytest.raises(IndexError) as expected:
            theirs[key]
        with pytest.raises(IndexError) as raised:
            ours[key]
        assert str(raised.value) == str(expected.value)


def test_integer_keys_select_saved_attributes():
    ours = cr.randn(3, 4, requires_grad=True)
    theirs = torch.tensor(ours.detach().numpy(), requires_grad=True)
    for key in (2, -1, (1, -2)):
        out, expected = ours[key], theirs[key]
        for name in ("_saved_dim", "_saved_index", "_saved_self_sym_sizes"):
            assert getattr(out.grad_fn, name) == getattr(expected.grad_fn, name)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "lerp", "maximum"])
def test_elementwise_layout_with_a_row_major_first_operand(op):
    """A row-major first operand with distinct strides orders the output's dims by itself (the
    forward algorithm's ``v + w.expand(1, 5)``); a tie or a broadcast first operand still sorts."""
    rng = np.random.default_rng(0)
    source = rng.standard_normal((6, 6)).astype(np.float32)
    # (shape, the other operand made from a (6, 6) tensor)
    cases = [((1, 5), lambda t: t[0, :1].view(1, -1).expand(1, 5)),
             ((2, 3), lambda t: t[:2, :1].expand(2, 3)),
             ((2, 3), lambda t: t[:3, :2].t()),
             ((2, 3, 4), lambda t: t.reshape(-1)[:24].view(4, 3, 2).permute(2, 1, 0)),
             ((1, 1, 4), lambda t: t.reshape(-1)[:4].view(4, 1, 1).permute(2, 1, 0)),
             ((3, 1), lambda t: t[:1, :3].t())]
    for shape, make_other in cases:
        first = rng.standard_normal(shape).astype(np.float32)
        firsts = [(cr.tensor(first), torch.tensor(first)),  # row-major
                  (cr.tensor(first[..., :1]).expand(*shape), torch.tensor(first[..., :1]).expand(*shape)),  # broadcast
                  (cr.tensor(first.T.copy()).permute(*reversed(range(len(shape)))),
                   torch.tensor(first.T.copy()).permute(*reversed(range(len(shape)))))]  # transposed
        for ours_first, theirs_first in firsts:
            args_ours = (ours_first, make_other(cr.tensor(source)))
            args_theirs = (theirs_first, make_other(torch.tensor(source)))
            if op == "lerp":
                args_ours, args_theirs = args_ours + (0.25,), args_theirs + (0.25,)
            out, expected = getattr(cr, op)(*args_ours), getattr(torch, op)(*args_theirs)
            assert out.stride() == expected.stride(), (shape, op)
            np.testing.assert_array_equal(out.numpy(), expected.numpy())


def test_views_of_inference_tensors_keep_torchs_refusal():
    for lib in (cr, torch):
        with lib.inference_mode():
            x = lib.ones(2, 3)
            y = x.view(3, 2)
            y.add_(1)  # allowed inside inference mode, through to x
        assert x.sum().item() == 12.0
    errors = []
    for lib in (cr, torch):
        with lib.inference_mode():
            y = lib.ones(2, 3).view(6)[1]
        try:
            y.add_(1)
        except RuntimeError as error:
            errors.append(type(error))
    assert errors == [RuntimeError, RuntimeError]


@pytest.mark.parametrize("dtypes", [("float32",) * 5, ("float64", "float64"), ("float32", "float64", "float32"),
                                    ("int64", "float32"), ("int32", "int64"), ("bool", "bool"), ("float16", "float32")])
def test_cat_of_small_tensors_promotes_as_torch(dtypes):
    rng = np.random.default_rng(1)
    pieces = [(rng.standard_normal(2) * 3).astype(d) for d in dtypes]
    differentiable = all(np.dtype(d).kind == "f" for d in dtypes)
    ours = [cr.tensor(p, requires_grad=differentiable and np.dtype(p.dtype).kind == "f") for p in pieces]
    theirs = [torch.tensor(p, requires_grad=differentiable and np.dtype(p.dtype).kind == "f") for p in pieces]
    out, expected = cr.cat(ours), torch.cat(theirs)
    assert str(out.dtype).rpartition(".")[2] == str(expected.dtype).rpartition(".")[2]
    np.testing.assert_array_equal(out.detach().numpy(), expected.detach().numpy())
    if differentiable:
        assert type(out.grad_fn).__name__ == type(expected.grad_fn).__name__
        weights = np.arange(out.shape[0], dtype=out.detach().numpy().dtype)
        (out * cr.tensor(weights)).sum().backward()
        (expected * torch.tensor(weights)).sum().backward()
        for a, b in zip(ours, theirs):
            assert str(a.grad.dtype).rpartition(".")[2] == str(b.grad.dtype).rpartition(".")[2]
            np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())
    legacy = [cr.tensor(pieces[0]), cr.zeros(0, dtype=cr.float64)]  # a legacy empty still promotes
    assert str(cr.cat(legacy).dtype) == "chainrule." + str(torch.cat([torch.tensor(pieces[0]),
                                                                        torch.zeros(0, dtype=torch.float64)]).dtype).rpartition(".")[2]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "bool", "float16"])
def test_sum_and_broadcast_gradients_as_torch(dtype):
    rng = np.random.default_rng(2)
    values = (rng.standard_normal((2, 3, 4)) * 4).astype(dtype)
    ours, theirs = cr.tensor(values), torch.tensor(values)
    for args in [(), (1,), ((0, 2),), (-1, True), ((), False)]:
        out, expected = ours.sum(*args), theirs.sum(*args)
        assert str(out.dtype).rpartition(".")[2] == str(expected.dtype).rpartition(".")[2]
        assert tuple(out.shape) == tuple(expected.shape) and out.stride() == expected.stride()
        # (a float sum's order of additions is NumPy's pairwise one, not torch's: the last bit may differ)
        np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-3 if dtype == "float16" else 1e-6)
    if values.dtype.kind == "f":
        small = rng.standard_normal((3, 1)).astype(dtype)
        a, b = cr.tensor(small, requires_grad=True), torch.tensor(small, requires_grad=True)
        (a * ours).sum().backward()  # the gradient of a broadcast input is summed back to (3, 1)
        (b * theirs).sum().backward()
        assert a.grad.dtype == getattr(cr, dtype) and tuple(a.grad.shape) == (3, 1)
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-3 if dtype == "float16" else 1e-6)


def test_view_backward_under_create_graph_as_torch():
    values = np.random.default_rng(3).standard_normal((2, 3))
    ours, theirs = cr.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
    grads = []
    for lib, x in ((cr, ours), (torch, theirs)):
        y = (x.view(3, 2) ** 3).view(-1).sum()
        (g,) = lib.autograd.grad(y, x, create_graph=True)
        assert tuple(g.shape) == (2, 3)
        g.view(6).pow(2).sum().backward()
        grads.append((g.detach().numpy(), x.grad.numpy()))
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-12)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-12)
