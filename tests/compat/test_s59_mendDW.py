"""Session 59, lane mendDW: vmap's out_dims=None for batched outputs and out_dims=0 for unbatched
ones; empty NumPy arrays' strides; string indices' errors — each checked against torch 2.13."""
import functools

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _vmap_outcome(lib, make_fn, out_dims):
    fn = make_fn(lib)
    x = lib.arange(12.0).reshape(4, 3)
    try:
        out = lib.func.vmap(fn, out_dims=out_dims)(x)
    except Exception as error:  # noqa: BLE001 -- the outcome compared is the exception itself
        return type(error).__name__, str(error)
    leaves = out if isinstance(out, tuple) else (out,)
    return [(tuple(o.shape), o.stride(), o.tolist()) for o in leaves]


def _mul(x):
    return x * 2


_VMAP_CASES = [
    (lambda lib: _mul, None),
    (lambda lib: (lambda x: x.sum() + 1), None),
    (lambda lib: (lambda x: x[0]), None),
    (lambda lib: (lambda x: x.clone().add_(1)), None),  # (an in-place write: no replay, slices run)
    (lambda lib: (lambda x: (x * 2, lib.ones(2))), (None, 0)),
    (lambda lib: (lambda x: (x * 2, lib.ones(2))), (0, None)),
    (lambda lib: functools.partial(_mul), None),
    (lambda lib: (lambda x: lib.ones(3)), None),
    (lambda lib: (lambda x: lib.ones(3)), 0),
    (lambda lib: (lambda x: lib.ones(3).view(3, 1)), 0),
]


@pytest.mark.parametrize("case", range(len(_VMAP_CASES)))
def test_vmap_out_dims_none_batched_and_unbatched_expanded(case):
    make_fn, out_dims = _VMAP_CASES[case]
    assert _vmap_outcome(chainrule, make_fn, out_dims) == _vmap_outcome(torch, make_fn, out_dims)


def test_vmap_unbatched_output_with_grad_is_an_expand():
    outcomes = []
    for lib in (torch, chainrule):
        w = lib.ones(3, requires_grad=True)
        out = lib.func.vmap(lambda x: w * 2)(lib.zeros(4, 3))  # noqa: B023 -- called at once
        out.sum().backward()
        outcomes.append((tuple(out.shape), out.stride(), out.grad_fn.name(), w.grad.tolist()))
    assert outcomes[0] == outcomes[1]


def _empty_arrays():
    import numpy as np

    for shape in [(0,), (3, 0), (0, 3), (2, 0, 4), (1, 0), (0, 1, 2)]:
        for dtype in (np.float32, np.float64, np.int64, np.bool_):
            base = np.zeros(shape, dtype)
            yield base
            yield base.T
            yield np.broadcast_to(np.zeros(shape[-1:], dtype), shape)
            yield np.zeros(tuple(size + 2 for size in shape), dtype)[tuple(slice(1, 1 + size) for size in shape)]


_CONSTRUCTORS = {
    "tensor": lambda lib, a: lib.tensor(a),
    "tensor_float64": lambda lib, a: lib.tensor(a, dtype=lib.float64),
    "as_tensor": lambda lib, a: lib.as_tensor(a),
    "as_tensor_float64": lambda lib, a: lib.as_tensor(a, dtype=lib.float64),
    "from_numpy": lambda lib, a: lib.from_numpy(a),
    "asarray_copy": lambda lib, a: lib.asarray(a, copy=True),
    "Tensor": lambda lib, a: lib.Tensor(a),
}


@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable")  # (the broadcast arrays)
@pytest.mark.parametrize("constructor", sorted(_CONSTRUCTORS))
def test_empty_ndarray_keeps_numpys_strides(constructor):
    make = _CONSTRUCTORS[constructor]

    def outcome(lib, a):
        made = make(lib, a)
        return tuple(made.shape), made.stride(), made.is_contiguous()

    mismatches = [(a.shape, a.strides, outcome(torch, a), outcome(chainrule, a)) for a in _empty_arrays()
                  if outcome(torch, a) != outcome(chainrule, a)]
    assert mismatches == []


def test_fresh_empty_tensors_keep_contiguous_strides():
    for lib in (torch, chainrule):
        assert lib.zeros(2, 0, 3).stride() == (3, 3, 1)
        assert (lib.from_numpy(__import__("numpy").zeros((3, 0))) + 1).stride() == (1, 1)


_TEXT_KEYS = ["a", "ab", "", "x" * 40, ("a",), ("a", 5), (5, "a"), (0, "a"), ["a"], [0, "a"], [None, "a"],
              ["a"] * 40, b"ab", (..., "ab"), ([0], "a")]


def _text_index_outcome(lib, shape, key, write: bool):
    import warnings

    t = lib.zeros(shape)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if write:
                t[key] = 1.0
            else:
                t[key]
            outcome = ("no error",)
        except Exception as error:  # noqa: BLE001 -- the outcome compared is the exception itself
            outcome = (type(error).__name__, str(error))
    return outcome, [(w.category.__name__, str(w.message), w.filename) for w in caught]


@pytest.mark.parametrize("shape", [(3,), (3, 4), (2, 3, 4), ()])
@pytest.mark.parametrize("write", [False, True])
def test_string_index_errors_and_warnings(shape, write):
    mismatches = [(key, _text_index_outcome(torch, shape, key, write), _text_index_outcome(chainrule, shape, key, write))
                  for key in _TEXT_KEYS]
    assert [m for m in mismatches if m[1] != m[2]] == []
