"""Session 60, lane mendED: autograd leftovers of the differential fuzzer, each against torch 2.13."""

from __future__ import annotations

import pytest

import chainrule


def _outcome(fn):
    try:
        result = fn()
    except Exception as e:  # the class and the message's first line are compared
        return type(e).__name__, str(e).split("\n")[0]
    return "ok", tuple(result.shape), result.tolist()


@pytest.mark.parametrize("shape", [(), (1,), (2,)])
@pytest.mark.parametrize("mask", [True, False])
@pytest.mark.parametrize("value_shape", [(), (3,)])
@pytest.mark.parametrize("form", ["index_put", "index_put_", "setitem"])
def test_zero_dim_bool_mask_as_the_sole_index(shape, mask, value_shape, form):
    torch = pytest.importorskip("torch")

    def run(lib):
        def put():
            x = lib.zeros(shape)
            index, value = lib.tensor(mask), lib.full(value_shape, 7.0)
            if form == "setitem":
                x[index] = value
                return x
            return getattr(x, form)((index,), value)
        return _outcome(put)

    assert run(chainrule) == run(torch)


def test_more_index_tensors_than_dims_refused_by_count():
    torch = pytest.importorskip("torch")
    for lib_outcomes in [_outcome(lambda lib=lib: lib.zeros(2).index_put((lib.tensor(True), lib.tensor(True)),
                                                                         lib.tensor(1.0)))
                         for lib in (chainrule, torch)]:
        assert lib_outcomes == ("IndexError", "too many indices for tensor of dimension 1 (got 2)")
