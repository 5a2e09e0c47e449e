"""Lane mendBT (session 50): ops whose code read a ``__torch_dispatch__`` wrapper subclass argument's array (torch's
test LoggingTensor: unwraps, runs the op, rewraps) computed on its zero placeholder, silently: max_unpool with
wrapped indices, grid_sample with a wrapped grid, embedding_bag's indices and offsets, repeat_interleave's
repeats, one_hot, bincount, histc, bucketize/searchsorted, unique, nonzero, ctc_loss's targets and lengths,
``index_put_`` and ``x[idx] = v`` with a wrapped index; the integer and bool kernels no Function records (bitwise
and/or/xor and shifts, isnan/isinf/isfinite/signbit/isneginf/isposinf, any/all, count_nonzero, gcd/lcm, torch.special's
Bessel functions and orthogonal polynomials, argwhere, nonzero_static, isin). Each now reaches the wrapper's handler as torch's aten
op (function.argument_dispatch; an in-place write records its node over the index the handler handed it), and
a float wrapper that requires grad (the grid) is differentiated over the values its handler handed the op."""
import warnings

import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402

from ._dispatch_checks import assert_wrapped_gives_plain_and_torch, run_wrapped_case, unwrapped_values  # noqa: E402
from ._dispatch_checks import logging_tensor as _logging_tensor  # noqa: E402

_rng = np.random.default_rng(50)
_X3 = _rng.standard_normal((2, 3, 4))
_X4 = _rng.standard_normal((2, 3, 4, 4))
_X5 = _rng.standard_normal((1, 2, 3, 4, 4))
_GRID = _rng.uniform(-1, 1, (2, 3, 5, 2))
_W = _rng.standard_normal((10, 3))
_I = np.array([1, 2, 4, 5, 4, 3, 2, 9])
_OFFSETS = np.array([0, 4])
_REPEATS = np.array([1, 0, 3])
_Q = _rng.standard_normal(7)
_BOUNDARIES = np.array([-1.0, 0.0, 0.5, 2.0])
_LOG_PROBS = _rng.standard_normal((6, 2, 5))
_TARGETS = np.array([[1, 2, 2], [3, 4, 0]])


def _pooled(d, x):
    values, indices = getattr(real_torch.nn.functional, f"max_pool{d}d")(real_torch.tensor(x), 2, return_indices=True)
    return values.numpy(), indices.numpy()


def _setitem(lib, x, i):
    y = x * 1
    y[i] = x[:3] * 2
    return y


def _setitem_pair(lib, x, i, j):
    y = x * 1
    y[i, j] = x[0, :3] * 2
    return y


def _F(lib):
    return lib.nn.functional


# name: (program(lib, *tensors), arrays, positions wrapped, positions that require grad)
_CASES = {
    **{f"max_unpool{d}d": (lambda lib, v, i, d=d: getattr(_F(lib), f"max_unpool{d}d")(v, i, 2), list(_pooled(d, x)),
                           (1,), (0,)) for d, x in ((1, _X3), (2, _X4), (3, _X5))},
    "max_unpool2d_both_wrapped": (lambda lib, v, i: _F(lib).max_unpool2d(v, i, 2), list(_pooled(2, _X4)), (0, 1), (0,)),
    "grid_sample_grid": (lambda lib, x, g: _F(lib).grid_sample(x, g, align_corners=False), [_X4, _GRID], (1,), (0, 1)),
    "grid_sample_nearest": (lambda lib, x, g: _F(lib).grid_sample(x, g, mode="nearest", align_corners=True),
                            [_X4, _GRID], (0, 1), (0,)),
    "grid_sample_bicubic_border": (lambda lib, x, g: _F(lib).grid_sample(x, g, mode="bicubic", padding_mode="border",
                                                                         align_corners=False), [_X4, _GRID], (0, 1), (0, 1)),
    "embedding_bag_indices": (lambda lib, w, i, o: _F(lib).embedding_bag(i, w, o), [_W, _I, _OFFSETS], (1,), (0,)),
    "embedding_bag_offsets": (lambda lib, w, i, o: _F(lib).embedding_bag(i, w, o), [_W, _I, _OFFSETS], (2,), (0,)),
    "embedding_bag_max": (lambda lib, w, i, o: _F(lib).embedding_bag(i, w, o, mode="max"), [_W, _I, _OFFSETS], (1, 2),
                          (0,)),
    "embedding_bag_2d_sum": (lambda lib, w, i: _F(lib).embedding_bag(i, w, mode="sum"), [_W, _I.reshape(2, 4)], (1,),
                             (0,)),
    "repeat_interleave_repeats": (lambda lib, v, r: lib.repeat_interleave(v, r), [_Q[:3], _REPEATS], (1,), (0,)),
    "repeat_interleave_counts": (lambda lib, r: lib.repeat_interleave(r), [_REPEATS], (0,), ()),
    "repeat_interleave_dim": (lambda lib, v, r: v.repeat_interleave(r, dim=0), [_X3[0], _REPEATS], (1,), (0,)),
    "one_hot": (lambda lib, i: _F(lib).one_hot(i), [_I], (0,), ()),
    "one_hot_num_classes": (lambda lib, i: _F(lib).one_hot(i, 12), [_I], (0,), ()),
    "bincount": (lambda lib, i: lib.bincount(i), [_I], (0,), ()),
    "bincount_minlength_weights": (lambda lib, i, w: lib.bincount(i, w, minlength=12), [_I, _Q[:1].repeat(8)], (0, 1),
                                   ()),
    "histc": (lambda lib, q: lib.histc(q, 4, -2, 2), [_Q], (0,), ()),
    "histc_data_range": (lambda lib, q: lib.histc(q, 5), [_Q], (0,), ()),
    "bucketize_boundaries": (lambda lib, q, b: lib.bucketize(q, b), [_Q, _BOUNDARIES], (1,), ()),
    "bucketize_right": (lambda lib, q, b: lib.bucketize(q, b, right=True), [_Q, _BOUNDARIES], (0,), ()),
    "searchsorted": (lambda lib, q, b: lib.searchsorted(b, q), [_Q, _BOUNDARIES], (1,), ()),
    "searchsorted_values_right": (lambda lib, q, b: lib.searchsorted(b, q, side="right"), [_Q, _BOUNDARIES], (0,), ()),
    "unique": (lambda lib, i: lib.unique(i), [_I], (0,), ()),
    "unique_inverse_counts": (lambda lib, i: lib.unique(i, return_inverse=True, return_counts=True)[2], [_I], (0,), ()),
    "unique_consecutive": (lambda lib, i: lib.unique_consecutive(i), [np.sort(_I)], (0,), ()),
    "nonzero": (lambda lib, i: lib.nonzero(i - 4), [_I], (0,), ()),
    "nonzero_as_tuple": (lambda lib, i: lib.nonzero(i.reshape(2, 4) - 4, as_tuple=True)[1], [_I], (0,), ()),
    "ctc_loss_lengths": (lambda lib, lp, t, il, tl: _F(lib).ctc_loss(lp.log_softmax(-1), t, il, tl),
                         [_LOG_PROBS, _TARGETS, np.array([6, 5]), np.array([3, 2])], (2, 3), (0,)),
    "ctc_loss_targets_sum": (lambda lib, lp, t, il, tl: _F(lib).ctc_loss(lp.log_softmax(-1), t, il, tl, reduction="sum"),
                             [_LOG_PROBS, _TARGETS, np.array([6, 5]), np.array([3, 2])], (1,), (0,)),
    "index_put_": (lambda lib, x, i: x.clone().index_put_((i,), x[:3] * 2), [_W, np.array([4, 0, 7])], (1,), (0,)),
    "index_put_accumulate_": (lambda lib, x, i: x.clone().index_put_((i,), x[:3] * 2, accumulate=True),
                              [_W, np.array([4, 0, 4])], (1,), (0,)),
    "setitem": (_setitem, [_W, np.array([4, 0, 7])], (1,), (0,)),
    "setitem_two_indices": (_setitem_pair, [_W, np.array([4, 0, 7]), np.array([2, 1, 0])], (1,), (0,)),
}


_SPECIAL = np.array([1.0, -np.inf, np.nan, -0.0, np.inf, 2.5])
_INTS, _SHIFTS = np.array([5, -3, 12, 7, 0, 1]), np.array([1, 2, 0, 3, 4, 1])
# integer and bool kernels no Function records (their handler's aten op: the log equals torch's unless noted)
_CASES.update({
    "bitwise_and": (lambda lib, a, b: a & b, [_INTS, _SHIFTS], (0, 1), ()),
    "bitwise_and_one_wrapped": (lambda lib, a, b: lib.bitwise_and(a, b), [_INTS, _SHIFTS], (1,), ()),
    "bitwise_or_masks": (lambda lib, a, b: a | b, [_INTS > 2, _INTS < 0], (0,), ()),
    "bitwise_xor_number": (lambda lib, a: a ^ 6, [_INTS], (0,), ()),
    "bitwise_left_shift": (lambda lib, a, b: lib.bitwise_left_shift(a, b), [_INTS, _SHIFTS], (0, 1), ()),
    "bitwise_right_shift_number": (lambda lib, a: lib.bitwise_right_shift(a, 1), [_INTS], (0,), ()),
    "isnan": (lambda lib, a: lib.isnan(a), [_SPECIAL], (0,), ()),
    "isinf": (lambda lib, a: a.isinf(), [_SPECIAL], (0,), ()),
    "isfinite": (lambda lib, a: lib.isfinite(a), [_SPECIAL], (0,), ()),
    "signbit": (lambda lib, a: lib.signbit(a), [_SPECIAL], (0,), ()),
    "isneginf": (lambda lib, a: lib.isneginf(a), [_SPECIAL], (0,), ()),
    "isposinf": (lambda lib, a: lib.isposinf(a), [_SPECIAL], (0,), ()),
    "masked_by_isnan": (lambda lib, x, a: x.masked_fill(lib.isnan(a), 0.0), [np.ones(6), _SPECIAL], (1,), (0,)),
    "any": (lambda lib, m: m.any(), [_INTS > 2], (0,), ()),
    "any_dim": (lambda lib, m: m.any(1), [(_INTS > 2).reshape(2, 3)], (0,), ()),
    "all_dim_keepdim": (lambda lib, m: lib.all(m, 0, keepdim=True), [(_INTS > 2).reshape(2, 3)], (0,), ()),
    "all_dims": (lambda lib, m: lib.all(m, (0, 1)), [(_INTS > -5).reshape(2, 3)], (0,), ()),
    "count_nonzero": (lambda lib, a: lib.count_nonzero(a), [_INTS], (0,), ()),
    "count_nonzero_dim": (lambda lib, a: lib.count_nonzero(a.reshape(2, 3), 1), [_INTS], (0,), ()),
    "gcd": (lambda lib, a, b: lib.gcd(a, b), [_INTS, _SHIFTS], (1,), ()),
    "lcm": (lambda lib, a, b: lib.lcm(a, b), [_INTS, _SHIFTS], (0, 1), ()),
})
# torch.special's kernels no Function records: the Bessel/Airy functions and the orthogonal polynomials
_POINTS, _DEGREES = np.array([0.3, 1.7, 2.5, 0.9]), np.array([0, 1, 3, 5])
_CASES.update({f"special_{name}": (lambda lib, a, name=name: getattr(lib.special, name)(a), [_POINTS], (0,), ())
               for name in ("airy_ai", "bessel_j0", "bessel_y1", "modified_bessel_i1", "modified_bessel_k0",
                            "scaled_modified_bessel_k1", "spherical_bessel_j0")})
_CASES.update({f"special_{name}": (lambda lib, a, n, name=name: getattr(lib.special, name)(a, n), [_POINTS, _DEGREES],
                                   (0, 1), ())
               for name in ("chebyshev_polynomial_t", "shifted_chebyshev_polynomial_w", "hermite_polynomial_he",
                            "laguerre_polynomial_l", "legendre_polynomial_p")})
_NONZEROS, _TESTED = np.array([[0, 3, 0], [5, 0, 7]]), np.array([3, 7, 9])
_CASES.update({
    "argwhere": (lambda lib, a: lib.argwhere(a), [_NONZEROS], (0,), ()),
    "nonzero_static": (lambda lib, a: lib.nonzero_static(a, size=4), [_NONZEROS], (0,), ()),
    "nonzero_static_fill_value": (lambda lib, a: lib.nonzero_static(a, size=2, fill_value=9), [_NONZEROS], (0,), ()),
    "isin": (lambda lib, a, b: lib.isin(a, b), [_NONZEROS, _TESTED], (0, 1), ()),
    "isin_test_elements_invert": (lambda lib, a, b: lib.isin(a, b, invert=True), [_NONZEROS, _TESTED], (1,), ()),
    "isin_number": (lambda lib, a: lib.isin(a, 5), [_NONZEROS], (0,), ()),
    "isin_number_elements": (lambda lib, b: lib.isin(3, b), [_TESTED], (0,), ()),
    "special_legendre_degrees_wrapped": (lambda lib, a, n: lib.special.legendre_polynomial_p(a, n), [_POINTS, _DEGREES],
                                         (1,), ()),
    "special_hermite_number_degree": (lambda lib, a: lib.special.hermite_polynomial_h(a, 3), [_POINTS], (0,), ()),
})




def _run(lib, name, wrap):
    """(value, the gradients of the inputs that require grad, the ops the handler saw, the result's class)."""
    return run_wrapped_case(lib, _CASES[name], wrap)


@pytest.mark.parametrize("name", sorted(_CASES))
def test_a_wrapper_argument_gives_the_plain_values_and_gradients(name):
    kind, torch_kind = assert_wrapped_gives_plain_and_torch(_CASES[name])
    assert kind == torch_kind  # (a LoggingTensor, but the plain tensor an in-place write returns)


# the cases whose forward torch's handler sees as one aten op, chainrule's too (the others torch composes)
_ONE_OP = sorted(name for name in _CASES if name.startswith((
    "grid_sample", "embedding_bag", "bincount", "histc", "bucketize", "searchsorted", "unique", "nonzero", "index_put",
    "setitem", "repeat_interleave_counts", "bitwise", "isnan", "isinf", "signbit", "isneginf", "isposinf", "any",
    "all", "count_nonzero", "gcd", "lcm", "special", "argwhere", "isin")))


@pytest.mark.parametrize("name", _ONE_OP)
def test_the_handler_sees_the_forward_as_torchs_aten_op(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seen = _run(chainrule, name, True)[2]
        torch_seen = _run(real_torch, name, True)[2]
    assert seen == torch_seen
    assert any(op.startswith(("aten.grid_sampler", "aten._embedding_bag", "aten.bincount", "aten.histc",
                              "aten.bucketize", "aten.searchsorted", "aten._unique2", "aten.unique_consecutive",
                              "aten.nonzero", "aten.index_put_", "aten.repeat_interleave", "aten.bitwise", "aten.is",
                              "aten.signbit", "aten.any", "aten.all", "aten.count_nonzero", "aten.gcd", "aten.lcm",
                              "aten.special_", "aten.isin"))
               for op in seen)


def test_an_in_place_write_through_a_wrapper_index_is_recorded_as_torchs():
    """``x[idx] = v`` / ``index_put_``: the handler writes the values, the node is torch's (IndexPutBackward0),
    the written tensor's version moves once, and the gradient reaches both the old values and v."""
    found = {}
    for lib in (real_torch, chainrule):
        logging_tensor, _ = _logging_tensor(lib)
        w = lib.tensor(_W, requires_grad=True)
        y = w * 1
        before = y._version
        y.index_put_((logging_tensor(lib.tensor([4, 0, 4])),), w[:3] * 2, accumulate=True)
        gw, = lib.autograd.grad((y * lib.tensor(np.arange(30.0).reshape(10, 3))).sum(), [w])
        found[lib] = (type(y.grad_fn).__name__, y._version - before, unwrapped_values(y), unwrapped_values(gw))
    ours, theirs = found[chainrule], found[real_torch]
    assert ours[:2] == theirs[:2] == ("IndexPutBackward0", 1)
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-12)
    np.testing.assert_allclose(ours[3], theirs[3], rtol=1e-12)


def test_plain_calls_keep_their_node_names():
    """Without a wrapper nothing changes: the ops' nodes keep torch's names."""
    x = chainrule.tensor(_X4, requires_grad=True)
    g = chainrule.tensor(_GRID, requires_grad=True)
    assert type(chainrule.nn.functional.grid_sample(x, g, align_corners=False).grad_fn).__name__ == \
        "GridSampler2DBackward0"
    values, indices = _pooled(2, _X4)
    out = chainrule.nn.functional.max_unpool2d(chainrule.tensor(values, requires_grad=True),
                                               chainrule.tensor(indices), 2)
    assert type(out.grad_fn).__name__ == "MaxUnpool2DBackward0"
