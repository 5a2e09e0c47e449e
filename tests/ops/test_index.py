"""Indexing: reads and writes (x[key], x[key] = v) and gather/scatter/index_*/masked_*/take/nonzero,
checked against torch (forward, gradients incl. repeated indices), by gradcheck/gradgradcheck, and
for torch's errors.

The sample-table cases (torch agreement, gradcheck, gradgradcheck) are registry entries in
``chainrule/testing/opinfo/index.py``, run by ``test_op_db.py``; the tests here are the hand-written ones.
"""

import warnings

import numpy as np
import pytest

import chainrule

try:
    import torch
except ImportError:  # the oracle is optional
    torch = None


def test_setitem_without_grad_and_version():
    x = chainrule.zeros(3, 4)
    x[1] = 5.0
    x[:, -1] = chainrule.tensor([1.0, 2.0, 3.0])
    x[x == 5.0] = 7.0
    assert x._version == 3
    assert x.tolist() == [[0, 0, 0, 1], [7, 7, 7, 2], [0, 0, 0, 3]]


def test_setitem_leaf_requiring_grad_raises():
    x = chainrule.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        x[0] = 1.0


def test_repeated_indices_sum_gradients():
    x = chainrule.zeros(4, requires_grad=True)
    x[chainrule.tensor([1, 1, 3, 1])].sum().backward()
    assert x.grad.tolist() == [0.0, 3.0, 0.0, 1.0]
    y = chainrule.zeros(2, 3, requires_grad=True)
    y.index_select(1, chainrule.tensor([2, 2])).sum().backward()
    assert y.grad.tolist() == [[0, 0, 2], [0, 0, 2]]
    z = chainrule.zeros(3, requires_grad=True)
    z.gather(0, chainrule.tensor([0, 0, 0])).sum().backward()
    assert z.grad.tolist() == [3.0, 0.0, 0.0]


def test_basic_read_is_view():
    x = chainrule.arange(12.0).reshape(3, 4)
    row = x[1, 1:]
    x.add_(1)
    assert row._version == x._version and row.tolist() == [6.0, 7.0, 8.0]
    fancy = x[chainrule.tensor([0])]
    assert not np.shares_memory(fancy.numpy(), x.numpy())


def test_nonzero_and_argwhere():
    for values in ([[0, 1, 0], [2, 0, 3]], [0.0, 1.5, 0.0], 3.0, 0.0, []):
        ours = chainrule.tensor(values)
        expected = np.argwhere(np.asarray(values)) if np.ndim(values) else np.zeros((int(bool(values)), 0))
        assert chainrule.nonzero(ours).tolist() == expected.tolist()
        assert ours.argwhere().tolist() == expected.tolist()
        assert chainrule.nonzero(ours).dtype is chainrule.int64
        if torch is not None:
            theirs = torch.tensor(values)
            assert tuple(chainrule.nonzero(ours).shape) == tuple(torch.nonzero(theirs).shape)
            for a, b in zip(chainrule.nonzero(ours, as_tuple=True), torch.nonzero(theirs, as_tuple=True)):
                assert a.tolist() == b.tolist()
    assert [t.tolist() for t in chainrule.where(chainrule.tensor([0, 2, 3]) > 1)] == [[1, 2]]


def test_inplace_index_ops():
    x = chainrule.zeros(2, 3)
    x.index_fill_(1, chainrule.tensor([0]), 1.0)
    x.masked_fill_(chainrule.tensor([False, True, False]), 2.0)
    x.index_add_(0, chainrule.tensor([1]), chainrule.ones(1, 3))
    x.scatter_(1, chainrule.tensor([[2], [2]]), chainrule.full((2, 1), 5.0))
    assert x.tolist() == [[1, 2, 5], [2, 3, 5]]


def test_larger_src_uses_its_leading_block():
    # torch reads only src[:index.shape], and its backward refuses such a src (its gradient has the
    # index's shape), as chainrule's does
    x = chainrule.zeros(2, 3)
    src = chainrule.arange(1.0, 10.0).reshape(3, 3).requires_grad_()
    y = x.scatter_add(1, chainrule.tensor([[0, 0], [2, 1]]), src)
    assert y.tolist() == [[3, 0, 0], [0, 5, 4]]
    with pytest.raises(RuntimeError, match=r"ScatterAddBackward0 returned an invalid gradient at index 1 - got "
                                           r"\[2, 2\] but expected shape compatible with \[3, 3\]"):
        (y * chainrule.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])).sum().backward()


def test_scatter_multiply_has_no_gradient():
    x = chainrule.ones(2, 3, requires_grad=True)
    y = chainrule.scatter(x * 2, 0, chainrule.tensor([[1, 0, 1]]), chainrule.full((1, 3), 3.0), reduce="multiply")
    assert y.tolist() == [[2, 6, 2], [6, 2, 6]]
    with pytest.raises(RuntimeError, match="derivative for aten::scatter is not implemented"):
        y.sum().backward()


# ---------------------------------------------------------------- errors
ERRORS = [
    ("negative_step", lambda lib: lib.ones(4)[::-1], ValueError, "step must be greater than zero"),
    ("zero_step", lambda lib: lib.ones(4)[::0], ValueError, "slice step cannot be zero"),
    ("negative_step_set", lambda lib: lib.ones(4).__setitem__(slice(None, None, -1), 1.0), ValueError, "step must be greater than zero"),
    ("int_out_of_range", lambda lib: lib.ones(2, 3)[2], IndexError, "out of"),
    ("tensor_out_of_range", lambda lib: lib.ones(2, 3)[:, lib.tensor([3])], IndexError, "out of"),
    ("float_index", lambda lib: lib.ones(3)[lib.tensor([0.0])], IndexError, "tensors used as indices must be long"),
    ("too_many_indices", lambda lib: lib.ones(3)[0, 0], IndexError, "too many indices"),
    ("gather_ndim", lambda lib: lib.gather(lib.ones(2, 3), 1, lib.zeros(2, dtype=lib.int64)), RuntimeError, "same number of dimensions"),
    ("gather_range", lambda lib: lib.gather(lib.ones(2, 3), 1, lib.full((2, 1), 3)), RuntimeError, "index 3 is out of bounds for dimension 1 with size 3"),
    ("gather_negative", lambda lib: lib.gather(lib.ones(2, 3), 1, lib.full((2, 1), -1)), RuntimeError, "out of bounds"),
    ("gather_size", lambda lib: lib.gather(lib.ones(2, 3), 1, lib.zeros(3, 1, dtype=lib.int64)), RuntimeError, "Size does not match at dimension 0"),
    ("gather_dtype", lambda lib: lib.gather(lib.ones(2, 3), 1, lib.zeros(2, 1)), RuntimeError, "int"),
    ("scatter_dtype", lambda lib: lib.ones(2, 3).scatter(0, lib.zeros(1, 1, dtype=lib.int64), lib.ones(1, 1, dtype=lib.float64)), RuntimeError, "Expected self.dtype to be equal to src.dtype"),
    ("scatter_reduce_arg", lambda lib: lib.ones(2, 3).scatter(0, lib.zeros(1, 1, dtype=lib.int64), 1.0, reduce="max"), RuntimeError, "reduce argument must be either add or multiply"),
    ("index_select_matrix", lambda lib: lib.ones(2, 3).index_select(0, lib.zeros(1, 1, dtype=lib.int64)), IndexError, "Index is supposed to be a vector"),
    ("index_select_range", lambda lib: lib.ones(2, 3).index_select(1, lib.tensor([5])), RuntimeError, "out of DATA bounds"),
    ("index_select_negative", lambda lib: lib.ones(2, 3).index_select(0, lib.tensor([-1])), IndexError, "index out of range in self"),
    ("index_select_dtype", lambda lib: lib.ones(2, 3).index_select(1, lib.tensor([0.0])), RuntimeError, "Expected dtype int32 or int64 for index"),
    ("index_add_count", lambda lib: lib.ones(2, 3).index_add(1, lib.tensor([0]), lib.ones(2, 2)), RuntimeError, "Number of indices \\(1\\) should be equal to source.size\\(dim\\)"),
    ("index_add_shape", lambda lib: lib.ones(2, 3).index_add(0, lib.tensor([0]), lib.ones(1, 4)), RuntimeError, "source tensor shape must match self tensor shape"),
    ("index_copy_count", lambda lib: lib.ones(2, 3).index_copy(1, lib.tensor([0]), lib.ones(2, 3)), IndexError, "Number of indices"),
    ("masked_fill_mask_dtype", lambda lib: lib.ones(3).masked_fill(lib.ones(3), 1.0), RuntimeError, "only supports boolean masks"),
    ("masked_fill_value_dim", lambda lib: lib.ones(3).masked_fill(lib.ones(3, dtype=lib.bool), lib.ones(2)), RuntimeError, "0-dimensional value tensor"),
    ("masked_select_dtype", lambda lib: lib.masked_select(lib.ones(3), lib.ones(3)), RuntimeError, "expected BoolTensor for mask"),
    ("masked_scatter_short", lambda lib: lib.ones(3).masked_scatter(lib.ones(3, dtype=lib.bool), lib.ones(2)), RuntimeError, "Number of elements of source < number of ones in mask"),
    ("take_range", lambda lib: lib.take(lib.ones(2, 3), lib.tensor([6])), IndexError, "out of range: tried to access index 6 on a tensor of 6 elements"),
    ("take_along_dim_shapes", lambda lib: lib.take_along_dim(lib.ones(3, 4), lib.zeros(2, 1, dtype=lib.int64), 1), RuntimeError, "must match the size"),
]


@pytest.mark.parametrize("fn,exc,match", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_like_torch(fn, exc, match):
    with pytest.raises(exc, match=match):
        fn(chainrule)
    if torch is not None:
        with pytest.raises(exc):
            fn(torch)


@pytest.mark.parametrize("key", [0, (slice(1, None),), (0, slice(None, None, 2)), (Ellipsis, 2), (None,), ([0, 1],)],
                         ids=["int", "slice", "int-slice", "ellipsis-int", "none", "list"])
def test_read_node_names_match_torch(key):
    import chainrule as cr

    torch = pytest.importorskip("torch")
    ours = cr.ones(3, 4, requires_grad=True)[key].grad_fn.name()
    theirs = torch.ones(3, 4, requires_grad=True)[key].grad_fn.name()
    assert ours == theirs


@pytest.mark.skipif(torch is None, reason="needs torch as the oracle")
@pytest.mark.parametrize("make, exc, match", [
    (lambda lib: lib.zeros(3).fill_diagonal_(1.0), RuntimeError, "dimensions must larger than 1"),
    (lambda lib: lib.zeros(2, 3, 4).fill_diagonal_(1.0), RuntimeError, "all dimensions of input must be of equal"),
    (lambda lib: lib.zeros(3, 3).fill_diagonal_(lib.tensor([2.0])), TypeError, "must be Number, not Tensor"),
    (lambda lib: lib.zeros(3, 3).fill_diagonal_("1"), TypeError, "must be Number, not str"),
    (lambda lib: lib.zeros(3, 3, requires_grad=True).fill_diagonal_(1.0), RuntimeError, "leaf Variable"),
])
def test_fill_diagonal_errors_like_torch_and_leaves_the_tensor_unchanged(make, exc, match):
    # word2vec/contrastive scripts mask self-similarity with sim.fill_diagonal_(-inf) before topk
    for lib in (chainrule, torch):
        with pytest.raises(exc, match=match):
            make(lib)
    x = chainrule.ones(2, 3, 4)
    with pytest.raises(RuntimeError):
        x.fill_diagonal_(0.0)
    assert x._version == 0 and bool((x == 1).all())


def test_fill_diagonal_values_and_dtypes_match_torch():
    if torch is None:
        pytest.skip("needs torch as the oracle")
    for shape, value, wrap, dtype in [((7, 3), 5, True, "float32"), ((7, 3), 5, False, "float64"),
                                      ((3, 5), 2.7, True, "int64"), ((2, 2), 1, False, "bool"),
                                      ((4, 4), float("-inf"), False, "float32"), ((3, 3), "0-d", False, "float32")]:
        value = chainrule.tensor(-1.5) if value == "0-d" else value
        ours = chainrule.zeros(shape, dtype=getattr(chainrule, dtype)).fill_diagonal_(value, wrap=wrap)
        torch_value = torch.tensor(value.item()) if isinstance(value, chainrule.Tensor) else value
        theirs = torch.zeros(shape, dtype=getattr(torch, dtype)).fill_diagonal_(torch_value, wrap=wrap)
        assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.skipif(torch is None, reason="needs torch as the oracle")
@pytest.mark.parametrize("make, exc", [
    (lambda lib: lib.repeat_interleave(lib.ones(3), lib.tensor([1, 2])), RuntimeError),
    (lambda lib: lib.repeat_interleave(lib.ones(3), -1), RuntimeError),
    (lambda lib: lib.repeat_interleave(lib.ones(3), lib.tensor([1, -1, 1])), RuntimeError),
    (lambda lib: lib.repeat_interleave(lib.ones(3), lib.tensor([[1, 2, 3]])), RuntimeError),
    (lambda lib: lib.repeat_interleave(lib.ones(3), lib.tensor([1.0, 2.0, 3.0])), RuntimeError),
    (lambda lib: lib.repeat_interleave(lib.ones(3), 2, dim=3), IndexError),
    (lambda lib: lib.repeat_interleave(lib.tensor(1.0), 2, dim=0), IndexError),
    (lambda lib: lib.repeat_interleave(lib.ones(3), "2"), TypeError),
    (lambda lib: lib.repeat_interleave(lib.tensor([1.0, 2.0])), RuntimeError),
])
def test_repeat_interleave_rejects_what_torch_rejects(make, exc):
    for lib in (chainrule, torch):
        with pytest.raises(exc):
            make(lib)


def test_repeat_interleave_counts_form_and_gradient_match_torch():
    if torch is None:
        pytest.skip("needs torch as the oracle")
    # the batch-index idiom of graph and detection code: which sample each row belongs to
    np.testing.assert_array_equal(chainrule.repeat_interleave(chainrule.tensor([2, 0, 3])).numpy(),
                                  torch.repeat_interleave(torch.tensor([2, 0, 3])).numpy())
    grads = []
    for lib in (chainrule, torch):
        x = lib.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
        out = x.repeat_interleave(lib.tensor([3, 1]), dim=0, output_size=4)
        (out * lib.arange(12.0).reshape(4, 3)).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_array_equal(*grads)


# found by tests/fuzz/test_indexing_fuzz.py
def test_full_integer_read_is_a_view_an_inplace_op_writes_through():
    # NumPy returns a scalar copy for x[1]; torch a 0-d view, so x[1].mul_(2) changes x
    for lib in (chainrule, torch) if torch is not None else (chainrule,):
        x = lib.tensor([1.0, 2.0, 3.0])
        x[1].mul_(2)
        x[lib.tensor(2)].zero_()
        scalar = lib.tensor(5.0)
        scalar[()].add_(1)
        np.testing.assert_array_equal(x.numpy(), [1.0, 4.0, 0.0])
        assert scalar.item() == 6.0


def test_uint8_index_is_a_mask():
    for lib in (chainrule, torch) if torch is not None else (chainrule,):
        x = lib.tensor([1.0, 2.0, 3.0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch deprecates uint8 masks
            np.testing.assert_array_equal(x[lib.tensor([1, 0, 1], dtype=lib.uint8)].numpy(), [1.0, 3.0])


def test_python_bool_with_integers_adds_a_dim():
    # a bool in a key with integers and an index list: a new size-1 dim, consuming none of x's
    for lib in (chainrule, torch) if torch is not None else (chainrule,):
        x = lib.arange(6.0).reshape(2, 3, 1)
        assert tuple(x[True, :, 0, [0]].shape) == (1, 2)
        assert tuple(x[0, True, [1, 2]].shape) == (2, 1)
        with pytest.raises(IndexError):  # False indexes the new dim by [], which [1, 2] cannot broadcast with
            x[0, False, [1, 2]]


def test_a_short_list_of_sequences_is_a_tuple_key():
    # torch's (and old NumPy's) rule: x[[rows, cols]] is x[rows, cols], with a deprecation warning
    for lib in (chainrule, torch) if torch is not None else (chainrule,):
        x = lib.arange(9).reshape(3, 3)
        with pytest.warns(UserWarning, match="non-tuple sequence"):
            np.testing.assert_array_equal(x[[[0, 1], [1, 2]]].numpy(), [1, 5])
        with pytest.warns(UserWarning, match="non-tuple sequence"):
            x[[[0, 1], [1, 2]]] = 100
        assert x[0, 1].item() == x[1, 2].item() == 100
        assert tuple(x[[0, 1]].shape) == (2, 3)  # a list of ints stays one index


def test_python_bool_among_integers_without_index_arrays():
    for lib in (chainrule, torch) if torch is not None else (chainrule,):
        x = lib.zeros(1, 2, 3)
        assert tuple(x[-1, ..., True].shape) == (2, 3, 1)
        assert tuple(x[0, :, True].shape) == (2, 1, 3)
        assert tuple(x[0, lib.tensor(True)].shape) == (1, 2, 3)  # a 0-d bool tensor is a bool


def test_setitem_errors_like_torch():
    for lib in (chainrule, torch) if torch is not None else (chainrule,):
        x = lib.zeros(3, 4)
        with pytest.raises(RuntimeError, match="dtypes match"):  # an advanced write keeps the dtype
            x[[0]] = lib.ones(4, dtype=lib.int64)
        x[0] = lib.ones(4, dtype=lib.int64)  # a basic write casts
        x[lib.tensor([True, False, True])] = lib.tensor(2)  # one mask, one value: a masked fill, cast
        with pytest.raises(RuntimeError, match="masked_fill_ only supports boolean masks"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                x[lib.tensor([1, 0, 1], dtype=lib.uint8)] = 1.0
        with pytest.raises(RuntimeError, match="shape"):  # not NumPy's ValueError
            x[[0, 1]] = lib.ones(5)
        with pytest.raises(RuntimeError):
            x[0] = lib.ones(2, 4)
        with pytest.raises(RuntimeError):
            x[lib.tensor([[True] * 4, [False] * 4, [True] * 4])] = lib.ones(3, 3)
        np.testing.assert_array_equal(x.numpy(), [[2.0] * 4, [0.0] * 4, [2.0] * 4])


def test_an_ellipsis_of_no_dims_does_not_separate_index_arrays():
    # NumPy would move the index dims to the front (separated advanced indices); torch does not
    for lib in (chainrule, torch) if torch is not None else (chainrule,):
        x = lib.arange(12.0).reshape(3, 4, 1)
        assert tuple(x[:, [0, 1], ..., [0]].shape) == (3, 2)
        x[:, [0, 1], ..., [0]] = lib.zeros(3, 2)
        assert x[:, :2].abs().sum().item() == 0


def test_setitem_with_a_bare_false_key_writes_and_checks_nothing():
    for lib in (chainrule, torch) if torch is not None else (chainrule,):
        leaf = lib.ones(2, requires_grad=True)
        x, value = leaf * 1, lib.ones(5, requires_grad=True)
        x[False] = value  # the value does not even broadcast
        x.sum().backward()
        assert value.grad is None


@pytest.mark.parametrize("make, exc", [
    # torch's CPU kernels: the dim-1 path of a matrix or more says "out of DATA bounds" (RuntimeError),
    # every other dim "index out of range in self" (IndexError)
    (lambda lib: lib.zeros(3, 2, 2).index_select(2, lib.tensor([2])), IndexError),
    (lambda lib: lib.zeros(3, 2, 2).index_select(1, lib.tensor([-1])), RuntimeError),
    (lambda lib: lib.zeros(()).index_select(0, lib.tensor([0, 0])), RuntimeError),  # a scalar takes one index
    (lambda lib: lib.zeros(()).index_select(0, lib.tensor([1])), IndexError),
    (lambda lib: lib.zeros(2, 0).index_select(1, lib.tensor([0])), RuntimeError),  # an empty dim
    (lambda lib: lib.zeros(0, 3).index_select(1, lib.tensor([-1])), RuntimeError),
])
def test_index_select_errors_like_torch(make, exc):
    for lib in (chainrule, torch) if torch is not None else (chainrule,):
        with pytest.raises(exc):
            make(lib)


def test_index_select_of_a_scalar_and_of_an_empty_index():
    for lib in (chainrule, torch) if torch is not None else (chainrule,):
        x = lib.tensor(2.0, requires_grad=True)
        out = x.index_select(0, lib.tensor([0]))
        assert out.shape == () and out.item() == 2.0
        out.backward()
        assert x.grad.item() == 1.0
        assert tuple(lib.zeros(2, 3).index_select(1, lib.tensor([], dtype=lib.int64)).shape) == (2, 0)


def test_gather_scatter_with_an_empty_index_check_no_shapes():
    for lib in (chainrule, torch) if torch is not None else (chainrule,):
        x, empty = lib.zeros(2, 3), lib.zeros(0, 4, 1, dtype=lib.int64)
        assert tuple(x.gather(1, empty).shape) == (0, 4, 1)
        for out in (x.scatter(1, empty, lib.ones(5, 5)), x.scatter_add(1, empty, lib.ones(5, 5)),
                    x.scatter_reduce(1, empty, lib.ones(5, 5), "amax")):
            assert tuple(out.shape) == (2, 3) and out.abs().sum().item() == 0


def test_scatter_into_a_scalar():
    for lib in (chainrule, torch) if torch is not None else (chainrule,):
        x, src = lib.tensor(1.0, requires_grad=True), lib.tensor(3.0, requires_grad=True)
        assert lib.zeros(()).scatter(0, lib.tensor([0]), src).item() == 3.0
        assert lib.zeros(()).scatter_add(0, lib.tensor([0]), src).item() == 3.0
        out = lib.scatter_reduce(x * 1, 0, lib.tensor(0), src, "amax", include_self=False)
        out.backward()
        assert out.item() == 3.0 and src.grad.item() == 1.0  # was inf: the tie count stayed a NumPy scalar


@pytest.mark.parametrize("read, match", [
    (lambda x: x[5], "index 5 is out of bounds for dimension 0 with size 3"),
    (lambda x: x[0, 0, 0], "too many indices for tensor of dimension 2"),
    (lambda x: x[[0, 1], [[0], [1], [2]], [0]], "too many indices for tensor of dimension 2"),
    (lambda x: x[[0, 1], [0, 1, 2]], "indexing tensors could not be broadcast"),
    (lambda x: x[chainrule.tensor([True, False])], "mask"),
    (lambda x: x.index_put_((chainrule.tensor([7]),), chainrule.tensor(1.0)), "out of bounds for dimension 0"),
])
def test_index_errors_in_torch_words(read, match):
    with pytest.raises(IndexError, match=match):
        read(chainrule.zeros(3, 4))


def test_ellipsis_on_a_scalar_reports_too_many_indices():
    with pytest.raises(IndexError, match="too many indices for tensor of dimension 0"):
        chainrule.tensor(1.0)[None, ..., 0]  # used to fail inside the node-naming code (tuple index)
    assert tuple(chainrule.tensor(1.0)[None, ...].shape) == (1,)


def test_indexing_a_0d_tensor_says_what_torch_says():
    # a pre-0.4 script reads its loss by loss.data[0]; torch's IndexError points at .item()
    libs = (chainrule, torch) if torch is not None else (chainrule,)
    for lib in libs:
        loss = lib.nn.functional.mse_loss(lib.ones(3), lib.zeros(3))
        with pytest.raises(IndexError, match=r"invalid index of a 0-dim tensor. Use `tensor.item\(\)`"):
            loss.data[0]
        with pytest.raises(IndexError, match=r"slice\(\) cannot be applied to a 0-dim tensor"):
            loss[1:]
        for key in (lib.tensor(0), [0], (0, 0)):
            with pytest.raises(IndexError, match="too many indices for tensor of dimension 0"):
                loss[key]


def test_an_empty_mask_must_match_its_dim_and_a_bare_true_write_casts():
    for lib in (chainrule, torch) if torch is not None else (chainrule,):
        with pytest.raises(IndexError, match="shape of the mask"):
            lib.zeros(0, 4)[..., lib.tensor([], dtype=lib.bool)]  # NumPy lets an empty mask through
        x = lib.zeros(3, 2)
        x[True] = lib.ones(2, dtype=lib.int64)  # a copy into x[None], not an index_put
        assert x.sum().item() == 6.0


def test_the_new_key_rules_run_on_the_standin_device():
    from chainrule._backend import use_standin_cuda

    def run(device):
        x = chainrule.arange(12.0, device=device).reshape(3, 4)
        x[0, True, [1]] = 7.0  # a bool among integers and an index list: index arrays made on x's device
        x[[[1, 2], [0, 3]]] = 5.0  # a list of lists is a tuple key
        x[1].mul_(2)  # a 0-d view writes through
        reads = [x[0, True], x[..., chainrule.tensor([True, False, True, False], device=device)],
                 x.index_select(1, chainrule.tensor([2], device=device))]
        return [t.cpu().numpy() for t in [x, *reads]]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecated list-of-lists key
        cpu = run("cpu")
    with use_standin_cuda(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        device = run("cuda")
    for a, b in zip(cpu, device):
        np.testing.assert_array_equal(a, b)
