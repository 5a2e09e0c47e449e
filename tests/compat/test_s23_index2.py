"""The last indexing differences tools/torch_indexing_trial.py and session 23's probes found, each
run on torch 2.13 and on chainrule and compared: the result's values and shape, or the exception
class and message."""

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(lib, make):
    """What ``make(lib)`` gives: ("ok", shape, values) or (exception class name, message)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = make(lib)
    except Exception as e:  # noqa: BLE001 (the class is what is compared)
        return type(e).__name__, str(e)
    return "ok", tuple(result.shape), result.detach().flatten().tolist()


def _same_as_torch(make):
    assert _outcome(chainrule, make) == _outcome(torch, make)


# ---- writes with an advanced key that reads nothing ---------------------------------------------
def _write(key, value):
    def make(lib):
        x = lib.zeros(2, 0, 3)
        x[key(lib)] = value(lib)
        return x
    return make


@pytest.mark.parametrize("key, value", [
    (lambda lib: [5], lambda lib: 1.0),
    (lambda lib: lib.tensor([5]), lambda lib: lib.ones(3)),
    (lambda lib: (slice(None), slice(None), [7]), lambda lib: 1.0),
    (lambda lib: (slice(None), [4]), lambda lib: 1.0),  # an index into the size-0 dim: refused
    (lambda lib: [5], lambda lib: lib.ones(4)),  # the value must still fit the (1, 0, 3) read
], ids=["list", "tensor", "last-dim", "into-size-0", "bad-value"])
def test_write_with_a_key_reading_nothing_is_checked_as_torch_checks_it(key, value):
    # torch range-checks no index when the indexed result is empty; chainrule raised IndexError
    _same_as_torch(_write(key, value))


def test_index_put_reading_nothing_writes_nothing_and_gives_empty_gradients():
    def make(lib):
        x = lib.zeros(2, 0, 3, requires_grad=True)
        v = lib.ones(3, requires_grad=True)
        y = x.clone().index_put_((lib.tensor([5]),), v)
        y.sum().backward()
        return lib.cat([x.grad.flatten(), v.grad])
    _same_as_torch(make)


# ---- index_put_: a uint8 mask, the dtypes, and a value aliasing the written tensor ----------------
def _u8_mask(lib):
    return lib.tensor([1, 0], dtype=lib.uint8)


@pytest.mark.parametrize("make", [
    lambda lib: lib.arange(6.).reshape(2, 3).index_put_((_u8_mask(lib),), lib.tensor(9.)),
    lambda lib: lib.index_put(lib.arange(6.).reshape(2, 3), (_u8_mask(lib),), lib.tensor(9.)),
    lambda lib: lib.arange(6.).reshape(2, 3).index_put_((_u8_mask(lib),), lib.tensor([1., 2, 3])),
    lambda lib: lib.arange(6.).reshape(2, 3).index_put_((_u8_mask(lib),), lib.tensor(9.), accumulate=True),
    lambda lib: lib.arange(6.).reshape(2, 3).index_put_((lib.tensor([0]),), lib.tensor(1., dtype=lib.float64)),
    lambda lib: lib.index_put(lib.arange(6.).reshape(2, 3), (lib.tensor([0]),), lib.tensor([1.], dtype=lib.float64)),
], ids=["u8-mask-one-value", "u8-mask-function", "u8-mask-row", "u8-mask-accumulate", "float64-value", "float64-value-function"])
def test_index_put_refuses_a_uint8_mask_with_one_value_and_other_dtypes_as_torch(make):
    # torch's index_put_ is a masked_fill_ for one mask and one value, which refuses uint8, and
    # otherwise needs the value in the destination's dtype; chainrule wrote both
    _same_as_torch(make)


@pytest.mark.parametrize("make", [
    lambda lib: (lambda x: x.index_put_((lib.tensor([1, 2]),), x[0]))(lib.arange(6.)),
    lambda lib: (lambda x: x.index_put_((lib.tensor([1, 2]),), x[0], accumulate=True))(lib.arange(6.)),
    lambda lib: (lambda x: x.index_put_((lib.tensor([1, 2]),), x[:2]))(lib.arange(6.)),
    lambda lib: (lambda x: x.index_put_((lib.tensor([1]),), x[0, 1]))(lib.arange(6.).reshape(2, 3)),
    lambda lib: (lambda x: x.__setitem__(lib.tensor([1, 2]), x[0]) or x)(lib.arange(6.)),
    lambda lib: (lambda x: x.__setitem__(lib.tensor([1, 2]), x[0]) or x)(lib.arange(6., requires_grad=True) * 1),
    lambda lib: (lambda x: x.__setitem__(x > 2, x[0]) or x)(lib.arange(6.)),  # a masked_fill_: allowed
    lambda lib: (lambda x: x.__setitem__(slice(1, 3), x[0]) or x)(lib.arange(6.)),  # a copy_: allowed
    lambda lib: (lambda b: b[:6].index_put_((lib.tensor([1]),), b[7]))(lib.arange(8.)),  # outside: allowed
    lambda lib: (lambda x: lib.index_put(x, (lib.tensor([1, 2]),), x[0]))(lib.arange(6.)),  # a copy: allowed
], ids=["0d", "0d-accumulate", "1d", "0d-of-2d", "setitem-0d", "setitem-0d-recorded", "mask-0d", "slice-0d",
        "outside", "function"])
def test_index_put_with_a_value_aliasing_the_written_tensor_is_refused_as_torch(make):
    # torch's index_put_ checks that the value shares no memory with self, a 0-d value too
    _same_as_torch(make)


# ---- torch.index_put / Tensor.index_put_: torch's argument numbering ----------------------------
def _x(lib):
    return lib.arange(6.).reshape(2, 3)


@pytest.mark.parametrize("make", [
    lambda lib: lib.index_put(_x(lib), lib.tensor([0]), lib.tensor(1.)),
    lambda lib: lib.index_put_(_x(lib), lib.tensor([0]), lib.tensor(1.)),
    lambda lib: _x(lib).index_put(lib.tensor([0]), lib.tensor(1.)),
    lambda lib: _x(lib).index_put_(lib.tensor([0]), lib.tensor(1.)),
    lambda lib: lib.index_put(3, (lib.tensor([0]),), lib.tensor(1.)),
    lambda lib: lib.index_put_(3, (lib.tensor([0]),), lib.tensor(1.)),
    lambda lib: lib.index_put(_x(lib), (lib.tensor([0]),), 1.0),
    lambda lib: _x(lib).index_put_((lib.tensor([0]),), 1.0),
    lambda lib: _x(lib).index_put((lib.tensor([0]),), lib.tensor(1.), accumulate=1),
    lambda lib: lib.index_put(_x(lib), (0,), lib.tensor(1.)),
    lambda lib: _x(lib).index_put([[0]], lib.tensor(1.)),
    lambda lib: lib.index_put(_x(lib), (lib.tensor([0]),), lib.ones(2)),
    lambda lib: _x(lib).index_put_((lib.tensor([0]),), lib.ones(2)),
], ids=["f-indices", "f_-indices", "m-indices", "m_-indices", "f-input", "f_-input", "f-values", "m_-values",
        "accumulate", "f-element", "m-element", "f-shape", "m_-shape"])
def test_index_put_argument_errors_number_the_arguments_as_torch(make):
    # the function form counts input as argument 1 (the method form counts indices as 1)
    _same_as_torch(make)


# ---- several Ellipses in one key ------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(4, 1, 3), (2, 0, 3), (5,), ()])
@pytest.mark.parametrize("key", [
    (..., ...), (..., ..., ...), (0, ..., ...), (..., 0, ...), (..., None, ...), (..., ..., slice(None)),
    (..., ..., slice(0, 5)), (..., ..., slice(1, 2)), (..., ..., None), (..., ..., 0), (..., ..., 1),
    (..., ..., [0]), (..., ..., 0, 0, 0), (..., ..., 0, 0, 0, 0),
], ids=repr)
def test_a_key_with_several_ellipses_reads_as_torch_reads_it(shape, key):
    # torch moves its dim pointer past the unindexed dims at every Ellipsis: with nothing to skip
    # the extra ones do nothing, otherwise what follows the second lies beyond the tensor (a whole
    # slice passes; anything else is refused); chainrule refused every second Ellipsis (NumPy's rule)
    def make(lib):
        x = lib.arange(float(np.prod(shape))).reshape(shape)
        return x[tuple(lib.tensor(k) if isinstance(k, list) else k for k in key)]
    _same_as_torch(make)


def test_a_write_with_several_ellipses_writes_as_torch():
    def make(lib):
        x = lib.arange(12.).reshape(4, 1, 3)
        x[..., ...] = 5.0
        x[..., 1, ...] = lib.tensor([7.0])  # the pointer is at dim 2 after the first Ellipsis
        return x
    _same_as_torch(make)


def test_a_read_with_several_ellipses_is_a_view_with_torch_gradient():
    def make(lib):
        x = lib.arange(12.).reshape(4, 1, 3).requires_grad_()
        y = x[..., 0, ...]
        (y * lib.arange(3.)).sum().backward()
        return lib.cat([x.grad.flatten(), lib.tensor([float(y._base is x)])])
    _same_as_torch(make)


# ---- index_add_ on an empty or 0-d tensor ---------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda lib: lib.zeros(0, 3).index_add_(0, lib.tensor([-1, 1]), lib.ones(2, 3), alpha=2),
    lambda lib: lib.zeros(0, 3).index_add_(0, lib.tensor([1, 1]), lib.ones(2, 3)),
    lambda lib: lib.zeros(3, 0).index_add_(1, lib.tensor([5]), lib.ones(3, 1)),
    lambda lib: lib.zeros(2, 0).index_add_(0, lib.tensor([5], dtype=lib.int32), lib.ones(1, 0)),
    lambda lib: lib.zeros(0).index_add_(0, lib.tensor([5]), lib.ones(1)),  # 1-d: still checked
    lambda lib: lib.tensor(3).index_add_(0, lib.tensor([1, 0, 1, 1]), lib.tensor(1), alpha=2),
    lambda lib: lib.tensor(3).index_add_(0, lib.tensor([0, 0]), lib.tensor(1)),
    lambda lib: lib.tensor(3.).index_add_(0, lib.tensor([0]), lib.tensor(1.), alpha=2),
    lambda lib: lib.tensor(3.).index_add_(0, lib.tensor([-1., 0, 0]), lib.tensor(1.), alpha=2),  # dtype first
], ids=["empty-2d", "empty-2d-alpha-1", "empty-dim-1", "empty-int32", "empty-1d", "0d-four-indices", "0d-two",
        "0d-one", "0d-float-index"])
def test_index_add_on_an_empty_or_0d_tensor_as_torch(make):
    # torch's index_add_ of 2-d or more returns at once when self is empty (no index is read);
    # a 0-d self with several indices is refused as reading dim 0
    _same_as_torch(make)


@pytest.mark.parametrize("make", [
    lambda lib: lib.zeros(0, 3).index_copy_(1, lib.tensor([1, 0, 2, -3]), lib.ones(0, 4)),
    lambda lib: lib.zeros(2, 0, 3).index_copy_(0, lib.tensor([5]), lib.ones(1, 0, 3)),
    lambda lib: lib.zeros(0, 3).index_fill_(1, lib.tensor([2, 3, 4]), 1.0),
    lambda lib: lib.zeros(0, 3).index_fill_(1, lib.tensor([-9]), lib.tensor(1.0)),
    lambda lib: lib.zeros(2, 0, 3).index_fill_(0, lib.tensor([5]), 1.0),
], ids=["copy-negative", "copy-3d", "fill", "fill-tensor-value", "fill-3d"])
def test_index_copy_and_fill_on_an_empty_tensor_read_no_index_as_torch(make):
    # along a dim of nonzero size of an empty tensor torch writes nothing and checks no index
    _same_as_torch(make)


# ---- an advanced key beside an empty slice reads nothing ---------------------------------------------
@pytest.mark.parametrize("key", [
    lambda lib: ([4, -1, -1], slice(2, 2), [[1]]),
    lambda lib: ([[4, 2], [2, 4]], slice(None, -3, 3)),
    lambda lib: (lib.tensor([-2, 4, 3], dtype=lib.int32), slice(None, 0, 2)),
    lambda lib: (slice(6, 1), [[1, -1], [-1, 1]], slice(None)),
], ids=["middle", "after", "int32", "before"])
@pytest.mark.parametrize("write", [False, True])
def test_an_advanced_key_beside_an_empty_slice_checks_no_index_as_torch(key, write):
    # the result has no elements, so torch range-checks no index (chainrule refused index 4 of 4)
    def make(lib):
        x = lib.arange(12).reshape(4, 1, 3)
        if not write:
            return x[key(lib)]
        x[key(lib)] = 7
        return x
    _same_as_torch(make)


# ---- torch's order of checks: the dim before the index's dtype; put_'s own checks ---------------------
def _int16_index(lib):
    return lib.tensor([1, 0], dtype=lib.int16).reshape(1, 2)


@pytest.mark.parametrize("make", [
    lambda lib: lib.zeros(4, 5).scatter(2, _int16_index(lib), lib.ones(1, 2)),
    lambda lib: lib.zeros(4, 5).scatter(2, _int16_index(lib), 1.0),
    lambda lib: lib.zeros(4, 5).scatter_add(2, _int16_index(lib), lib.ones(1, 2)),
    lambda lib: lib.tensor(1.).scatter_add_(1, lib.tensor([1, 0], dtype=lib.int16), lib.ones(2)),
    lambda lib: lib.zeros(4, 5).scatter_reduce(2, _int16_index(lib), lib.ones(1, 2), "sum"),
    lambda lib: lib.zeros(4, 5).gather(2, _int16_index(lib)),
    lambda lib: lib.tensor(1.).index_add_(1, lib.tensor([0, 1]), lib.tensor(2.)),
    lambda lib: lib.tensor(1.).index_copy_(1, lib.tensor([0, 1]), lib.tensor(2.)),
    lambda lib: lib.tensor(1.).index_copy_(1, lib.tensor([0.]), lib.tensor(2.)),
    lambda lib: lib.zeros(2, 3).index_add_(2, lib.tensor([1], dtype=lib.int16), lib.ones(2, 1)),
    lambda lib: lib.zeros(0, 3).index_add(2, lib.tensor([1.]), lib.ones(0, 1)),
], ids=["scatter", "scatter-value", "scatter_add", "scatter_add-0d", "scatter_reduce", "gather", "index_add-0d",
        "index_copy-0d", "index_copy-0d-float-index", "index_add-int16", "index_add-float-index"])
def test_a_dim_out_of_range_is_the_first_error_as_torch(make):
    # (chainrule's dim error names the op first: torch's words follow)
    (ours_class, ours), (torch_class, theirs) = _outcome(chainrule, make), _outcome(torch, make)
    assert ours_class == torch_class == "IndexError" and theirs in ours


@pytest.mark.parametrize("make", [
    lambda lib: lib.zeros(0, 3).put_(lib.tensor([3, 0]), lib.ones(2)),
    lambda lib: lib.zeros(0, 3).put_(lib.tensor([0, 1]), lib.ones(2), accumulate=True),
    lambda lib: lib.zeros(0, 3).put(lib.tensor([3, 0]), lib.ones(2)),
    lambda lib: lib.zeros(0, 3).put_(lib.tensor([3, 0]), lib.ones(3)),
    lambda lib: lib.zeros(2, 3).put_(lib.tensor([3, 0]), lib.ones(3)),
    lambda lib: lib.zeros(2, 3).put_(lib.tensor([9, 0]), lib.ones(2)),
    lambda lib: lib.zeros(0, 3).put_(lib.tensor([], dtype=lib.int64), lib.ones(0)),
], ids=["empty", "empty-accumulate", "empty-copy", "empty-numel", "numel", "range", "empty-no-index"])
def test_put_checks_as_torch(make):
    # torch: the numbers of elements first, then an empty self, then the range
    _same_as_torch(make)


@pytest.mark.parametrize("use", [
    lambda lib, x, m: x[m],
    lambda lib, x, m: x.__setitem__(m, lib.tensor([1.0, 2.0, 3.0])),
    lambda lib, x, m: x.index_put_((m,), lib.tensor([1.0, 2.0, 3.0])),
    lambda lib, x, m: x.index_put_((m,), lib.tensor(1.0), accumulate=True),
], ids=["read", "write", "index_put_", "index_put_-accumulate"])
def test_a_uint8_mask_warns_once_as_torch(use):
    def warned(lib):
        x, m = lib.arange(6.).reshape(2, 3), lib.tensor([1, 0], dtype=lib.uint8)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            use(lib, x, m)
        return [str(w.message).split(" (Triggered")[0] for w in caught if issubclass(w.category, UserWarning)]
    assert warned(chainrule) == warned(torch) == [
        "indexing with dtype torch.uint8 is now deprecated, please use a dtype torch.bool instead."]


@pytest.mark.parametrize("self_dtype, source_dtype", [("float32", "float64"), ("float32", "int64"),
                                                      ("float64", "float32"), ("int64", "int32")])
@pytest.mark.parametrize("accumulate", [False, True])
def test_put_refuses_a_source_of_another_dtype_as_torch(self_dtype, source_dtype, accumulate):
    messages = []
    for lib in (torch, chainrule):
        x = lib.zeros(4, dtype=getattr(lib, self_dtype))
        with pytest.raises(RuntimeError) as caught:
            x.put_(lib.tensor([0, 1]), lib.tensor([1, 2], dtype=getattr(lib, source_dtype)), accumulate=accumulate)
        assert x.tolist() == [0, 0, 0, 0]
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
