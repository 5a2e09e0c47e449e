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
