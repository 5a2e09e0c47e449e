"""The last indexing differences tools/torch_indexing_trial.py and session 23's probes found, each
run on torch 2.13 and on chainrule and compared: the result's values and shape, or the exception
class and message."""

import warnings

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
