"""Indexing as torch does it: the order of its key checks, float lists, index dtypes, strides of
views, grad_fn names, index ops' errors (tools/torch_indexing_trial.py draws many more cases)."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


def outcome(lib, fn):
    try:
        out = fn(lib)
    except Exception as error:  # noqa: BLE001 — the class and message are what is compared
        return type(error).__name__, str(error)
    return tuple(out.shape), out.detach().numpy().tolist()


def same_as_torch(fn):
    expected = outcome(torch, fn)
    assert outcome(chainrule, fn) == expected
    return expected


def x34(lib):
    return lib.arange(60.0).reshape(3, 4, 5)


@pytest.mark.parametrize("key", [
    (0, 0, 0, slice(None, None, -1)),  # too many indices comes before the step
    (0, 0, 0, slice(None, None, 0)),
    (1, 9),  # an integer out of range: torch names its position in the key
    (None, slice(1, None), 9),
    (Ellipsis, 9),
    (slice(None, None, -1), [1.0]),  # the step before the index tensor
    (7, [1]),
])
def test_key_checks_in_torch_order(key):
    kind, message = same_as_torch(lambda lib: x34(lib)[key])
    assert kind in ("IndexError", "ValueError")


def test_key_order_int16_tensor_after_integer():
    kind, _ = same_as_torch(lambda lib: x34(lib)[lib.tensor([1], dtype=lib.int16), 7])
    assert kind == "IndexError"


@pytest.mark.filterwarnings("ignore:Using a non-tuple sequence")
@pytest.mark.parametrize("key", [[0.0, 1.0], [1.5, 2.0], [1, 2.0], [[0.0, 1.0], [1.0, 0.0]]])
def test_float_lists_index_as_int64(key):
    shape, _ = same_as_torch(lambda lib: lib.arange(20.0).reshape(4, 5)[key])
    assert shape in ((2, 5), (2,))


@pytest.mark.parametrize("dtype", ["int16", "int8"])
def test_odd_integer_index_dtypes_refused(dtype):
    kind, message = same_as_torch(lambda lib: lib.arange(5.0)[lib.tensor([1, 2], dtype=getattr(lib, dtype))])
    assert (kind, message) == ("IndexError", "tensors used as indices must be long, int, byte or bool tensors")


def write(key):
    def fn(lib):
        z = lib.tensor(3.0)
        z[key] = 1.0
        return z
    return fn


@pytest.mark.parametrize("key", [1, -1, 0, slice(None), slice(None, None, -1), (0,), (slice(None, None, -1),),
                                 [0], (Ellipsis, 0), (None, slice(None, None, 0))])
def test_zero_dim_keys_read_and_written(key):
    for fn in (lambda lib: lib.tensor(3.0)[key], write(key)):
        kind, _ = same_as_torch(fn)
        assert kind in ("IndexError", "ValueError")


def x3(lib):
    return lib.arange(12.0).reshape(3, 4)


INDEX_OPS = {
    "index_add": lambda lib, i: x3(lib).index_add(0, i, lib.ones(i.numel(), 4)),
    "index_add_": lambda lib, i: x3(lib).index_add_(0, i, lib.ones(i.numel(), 4)),
    "index_copy": lambda lib, i: x3(lib).index_copy(0, i, lib.ones(i.numel(), 4)),
    "index_copy_": lambda lib, i: x3(lib).index_copy_(0, i, lib.ones(i.numel(), 4)),
    "index_fill_": lambda lib, i: x3(lib).index_fill_(0, i, 1.0),
    "index_select": lambda lib, i: x3(lib).index_select(0, i),
    "take": lambda lib, i: x3(lib).take(i),
    "put_": lambda lib, i: x3(lib).put_(i, lib.ones(i.numel())),
    "index_put_": lambda lib, i: x3(lib).index_put_((i,), lib.tensor(1.0)),
}


@pytest.mark.parametrize("values", [[0, 1], [0, 5], [-1, 1], [2, 13]])
@pytest.mark.parametrize("dtype", ["int64", "int32", "int16", "float32"])
@pytest.mark.parametrize("op", sorted(INDEX_OPS))
@pytest.mark.pairwise_in_ci(seed=61)
def test_index_ops_index_dtypes_and_ranges(op, dtype, values):
    same_as_torch(lambda lib: INDEX_OPS[op](lib, lib.tensor(values).to(getattr(lib, dtype))))


@pytest.mark.parametrize("fn", [
    lambda lib: lib.tensor(1.0).index_copy_(0, lib.tensor([0, 0]), lib.tensor(2.0)),
    lambda lib: lib.zeros(0).take(lib.tensor([0])),
    lambda lib: x3(lib).index_put_((lib.tensor([0]), lib.tensor([0]), lib.tensor([0])), lib.tensor(1.0)),
])
def test_index_ops_corner_errors(fn):
    kind, _ = same_as_torch(fn)
    assert kind in ("IndexError", "RuntimeError")


@pytest.mark.parametrize("indices", [(None, [1, 2]), ([1, 2], None)])
def test_index_put_refuses_none_like_torch(indices):
    # chainrule wrote x[:, idx] or x[idx] here, where torch refuses a None among the indices
    fn = lambda lib: x3(lib).index_put_(tuple(None if i is None else lib.tensor(i) for i in indices),  # noqa: E731
                                        lib.tensor(1.0))
    assert same_as_torch(fn)[0] == "TypeError"


def node_after_write(lib, shape, key, value):
    x = lib.zeros(shape, requires_grad=True).clone()
    x[key] = value(lib) if callable(value) else value
    return type(x.grad_fn).__name__


@pytest.mark.parametrize("shape, key, value", [
    ((4, 5), slice(0, 4, 1), 1.5),  # a slice keeping its dim whole is no view: fill_
    ((4, 5), Ellipsis, lambda lib: lib.ones(4, 5)),  # copy_
    ((4, 5), Ellipsis, lambda lib: lib.ones(5)),  # copy_ of the expanded value
    ((), Ellipsis, 2.0),  # a number of x's shape: copy_
    ((5,), (True,), lambda lib: lib.ones(5)),  # a bool is a new dim, a view: CopySlices
    ((2, 3), (False, slice(None)), lambda lib: lib.ones(3)),
    ((4, 5), (slice(1, None),), 1.0),
    ((4, 5), ([0, 1],), 1.0),
])
def test_write_node_names(shape, key, value):
    assert node_after_write(chainrule, shape, key, value) == node_after_write(torch, shape, key, value)


def test_index_fill_with_a_tensor_value_is_the_tensor_overload():
    def name(lib):
        x = lib.zeros(4, requires_grad=True).clone()
        return type(x.index_fill(0, lib.tensor([1]), lib.tensor(2.0)).grad_fn).__name__
    assert name(chainrule) == name(torch) == "IndexFillBackward1"


@pytest.mark.parametrize("shape, key", [
    ((4, 5), None),
    ((5,), (None, None)),
    ((1, 4), (None, -1)),
    ((3, 4, 5), (Ellipsis, None, slice(3, None))),
    ((2, 3, 4), (slice(None), None)),
    ((1, 4), (slice(-2, 1, 3), [True, True, False, True])),  # a copy: contiguous strides
    ((4, 1, 3), ([3], None)),
    ((4, 5), (None, [True, True, True, True])),
    ((4, 1, 3), (Ellipsis, True)),
])
def test_strides_of_size_one_dims(shape, key):
    def strides(lib):
        return lib.arange(float(torch.Size(shape).numel())).reshape(shape)[key].stride()
    assert strides(chainrule) == strides(torch)


def overlapping_write(key, value):
    def fn(lib):
        x = lib.arange(12.0).reshape(4, 3)
        x[key] = value(x)
        return x
    return fn


@pytest.mark.parametrize("key, value", [
    (slice(1, None), lambda x: x[:-1]),  # partial overlap: refused
    (slice(0, 3), lambda x: x[1:]),
    (slice(1, None), lambda x: x[None, 0:3]),  # the leading 1 dropped: the same copy
    ([0, 1], lambda x: x[1:3]),  # index_put_ refuses any overlap with x
    ([0, 1, 2, 3], lambda x: x),
    (slice(None), lambda x: x),  # the very same elements: fine
    (0, lambda x: x[1]),
    (slice(None, None, 2), lambda x: x[1::2]),  # not dense: torch lets it through
    (slice(1, None), lambda x: x[0]),  # expanded: let through
])
def test_overlapping_writes(key, value):
    same_as_torch(overlapping_write(key, value))


@pytest.mark.parametrize("shape, dim, alpha", [((3, 4), 0, 1), ((3, 4), 0, 2), ((3, 4), 1, 2), ((3,), 0, 1)])
def test_index_add_range_error_follows_torchs_kernel(shape, dim, alpha):
    def fn(lib):
        source_shape = list(shape)
        source_shape[dim] = 2
        return lib.zeros(shape).index_add(dim, lib.tensor([0, 7]), lib.ones(source_shape), alpha=alpha)
    assert same_as_torch(fn)[0] in ("IndexError", "RuntimeError")


@pytest.mark.parametrize("shape, key, value_shape, requires_grad", [
    ((5,), slice(None, None, 2), (3, 2), False),  # expand's 'number of sizes provided'
    ((4, 5), slice(None), (3, 3), False),  # expand's 'expanded size', naming the last dim that does not fit
    ((4, 5), 0, (1, 1, 3), False),  # the leading 1s dropped first
    ((), Ellipsis, (2,), False),
    ((4, 5), slice(1, 3), (2, 2), True),
    ((4, 5), [0], (1, 5, 2), False),  # index_put_'s 'shape mismatch'
    ((4, 5), [0], (1, 5, 2), True),
    ((4, 5), (slice(None), [0, 1]), (4, 3), False),
])
def test_value_shape_mismatch_words(shape, key, value_shape, requires_grad):
    def fn(lib):
        x = lib.zeros(shape, requires_grad=True).clone()
        x[key] = lib.ones(value_shape, requires_grad=requires_grad)
        return x
    assert same_as_torch(fn)[0] == "RuntimeError"


@pytest.mark.parametrize("shape, key", [
    ((2, 0, 3), [5]),  # reads nothing: not range-checked
    ((2, 0, 3), (slice(None), slice(None), [7])),
    ((2, 0, 3), ([5], slice(None), [7])),
    ((2, 0, 3), (slice(None), [1])),  # reads elements of a size-0 dim: refused
    ((0,), [3]),
    ((4, 5), ([7], [])),  # broadcasts to nothing
    ((4, 5), (False, [9])),
    ((2, 0, 3), ([[2, 2], [2, 2]], [0, 0, -1])),  # cannot broadcast
])
def test_advanced_keys_reading_nothing(shape, key):
    same_as_torch(lambda lib: lib.zeros(shape)[key])


@pytest.mark.parametrize("fn", [
    lambda lib: lib.zeros(3, 4).index_select(5, lib.tensor([1.0])),  # the dim first
    lambda lib: lib.zeros(3, 4).index_select(0, lib.tensor([[1.0]])),  # then the rank
    lambda lib: lib.zeros(()).index_select(0, lib.tensor([], dtype=lib.int16)),  # then a 0-d self's count
    lambda lib: lib.zeros(()).index_add_(0, lib.tensor([1, 0]), lib.ones(2)),  # the source before the index
    lambda lib: lib.zeros(()).index_add_(0, lib.tensor([0]), lib.ones(1)),
])
def test_index_op_check_order(fn):
    kind, message = outcome(torch, fn)
    ours = outcome(chainrule, fn)
    assert kind in ("IndexError", "RuntimeError")
    assert ours[0] == kind and ours[1].endswith(message)  # (chainrule may name the op first)
