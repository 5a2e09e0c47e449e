"""Lane mendCA (session 50): ops of a ``__torch_dispatch__`` wrapper subclass (torch's test LoggingTensor) that
still read its zero placeholder after mendBT and mendBX: the values (NaNs, norms, exponents, points, flat indices)
were read from the wrapper's array. They now reach the wrapper's handler as one aten op, as mendBX's nansum."""
import warnings

import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402

from ._dispatch_checks import assert_wrapped_gives_plain_and_torch, run_wrapped_case, unwrapped_values  # noqa: E402
from ._dispatch_checks import logging_tensor as _logging_tensor  # noqa: E402

_rng = np.random.default_rng(50)
_X = _rng.standard_normal((3, 4))
_NAN = np.where(_rng.random((3, 4)) < 0.3, np.nan, _rng.standard_normal((3, 4)))
_P = _rng.standard_normal((6, 2))

# name: (program(lib, *tensors), arrays, positions wrapped, positions that require grad)
_CASES = {
    "nanquantile": (lambda lib, x: lib.nanquantile(x, 0.3, dim=1), [_NAN], (0,), (0,)),
    "nanquantile_all": (lambda lib, x: x.nanquantile(0.75), [_NAN], (0,), (0,)),
    "nanquantile_q_tensor": (lambda lib, x, q: lib.nanquantile(x, q, dim=0, keepdim=True), [_NAN, np.array([.2, .9])],
                             (0, 1), (0,)),
    "quantile_with_nan": (lambda lib, x: lib.quantile(x, 0.5, dim=1), [_NAN], (0,), (0,)),
    "renorm": (lambda lib, x: lib.renorm(x, 2, 0, 1.0), [_X * 3], (0,), (0,)),
    "renorm_p1_dim1": (lambda lib, x: x.renorm(1, 1, 0.5), [_X * 3], (0,), (0,)),
    "renorm_no_grad": (lambda lib, x: lib.renorm(x, 3, 1, 0.7), [_X * 3], (0,), ()),
    "frexp_mantissa": (lambda lib, x: lib.frexp(x)[0], [_X * 10], (0,), (0,)),
    "frexp_exponent": (lambda lib, x: x.frexp()[1], [_X * 10], (0,), ()),
    "histogram": (lambda lib, x: lib.histogram(x, 5)[0], [_X], (0,), ()),
    "histogram_edges": (lambda lib, x: lib.histogram(x, 5)[1], [_X], (0,), ()),
    "histogram_weight": (lambda lib, x, w: lib.histogram(x, 4, range=(-1.0, 1.0), weight=w, density=True)[0],
                         [_X, np.abs(_X)], (0, 1), ()),
    "histogram_bins_tensor": (lambda lib, x, b: lib.histogram(x, b)[0], [_X, np.array([-2.0, -0.5, 0.0, 1.5])],
                              (0, 1), ()),
    "histogramdd": (lambda lib, x: lib.histogramdd(x, [3, 2])[0], [_P], (0,), ()),
    "histogramdd_edges": (lambda lib, x: lib.histogramdd(x, 3)[1][1], [_P], (0,), ()),
    "unravel_index": (lambda lib, i: lib.unravel_index(i, (3, 4))[0], [np.array([0, 5, 11, -1])], (0,), ()),
    "unravel_index_last": (lambda lib, i: lib.unravel_index(i, (2, 3, 2))[2], [np.array([[1, 7], [10, 4]])], (0,),
                           ()),
}
# binary_cross_entropy_with_logits read pos_weight from its array
_T = (_rng.random((3, 4)) > 0.5).astype(float)
_W = _rng.random(4) + 0.5
_CASES.update({
    "bce_with_logits_pos_weight": (lambda lib, x, t, pw: lib.nn.functional.binary_cross_entropy_with_logits(
        x, t, pos_weight=pw), [_X, _T, _W], (0, 1, 2), (0,)),
    "bce_with_logits_only_pos_weight_wrapped": (lambda lib, x, t, pw: lib.nn.functional.binary_cross_entropy_with_logits(
        x, t, pos_weight=pw, reduction="sum"), [_X, _T, _W], (2,), (0,)),
    "bce_with_logits_weights_none": (lambda lib, x, t, w, pw: lib.nn.functional.binary_cross_entropy_with_logits(
        x, t, w, pos_weight=pw, reduction="none"), [_X, _T, _W * 2, _W], (0, 1, 2, 3), (0, 1)),
    "bce_with_logits_no_pos_weight": (lambda lib, x, t: lib.nn.functional.binary_cross_entropy_with_logits(x, t),
                                      [_X, _T], (0, 1), (0, 1)),
})
# linalg: lstsq's rank and singular values, matrix_rank's singular values, ldl_solve's and lu_unpack's pivots were
# read from the placeholders
_A = _rng.standard_normal((2, 5, 3))
_B = _rng.standard_normal((2, 5, 2))
_Q = _rng.standard_normal((4, 4))
_SYM = _Q + _Q.T
_R = _rng.standard_normal((4, 2))


def _ldl_solve(lib, a, b):
    LD, pivots = lib.linalg.ldl_factor(a)
    return lib.linalg.ldl_solve(LD, pivots, b)


def _lu_unpack(lib, a, part):
    LU, pivots = lib.linalg.lu_factor(a)
    return lib.lu_unpack(LU, pivots)[part]


_CASES.update({
    "lstsq_solution": (lambda lib, a, b: lib.linalg.lstsq(a, b).solution, [_A, _B], (0, 1), (0, 1)),
    "lstsq_rank": (lambda lib, a, b: lib.linalg.lstsq(a, b).rank, [_A, _B], (0, 1), ()),
    "lstsq_gelsd_singular_values": (lambda lib, a, b: lib.linalg.lstsq(a, b, driver="gelsd").singular_values,
                                    [_A, _B], (0,), ()),
    "lstsq_gelsd_residuals": (lambda lib, a, b: lib.linalg.lstsq(a, b, driver="gelsd").residuals, [_A, _B], (0, 1),
                              (0, 1)),
    "matrix_rank": (lambda lib, a: lib.linalg.matrix_rank(a), [_A], (0,), ()),
    "matrix_rank_rank_deficient": (lambda lib, a: lib.linalg.matrix_rank(a @ a.mT, hermitian=True, atol=1e-8),
                                   [_A], (0,), ()),
    "ldl_solve": (_ldl_solve, [_SYM, _R], (0, 1), ()),
    "ldl_solve_b_wrapped": (_ldl_solve, [_SYM, _R], (1,), ()),
    "lu_unpack_P": (lambda lib, a: _lu_unpack(lib, a, 0), [_Q], (0,), ()),
    "lu_unpack_L": (lambda lib, a: _lu_unpack(lib, a, 1), [_Q], (0,), (0,)),
    "lu_unpack_U": (lambda lib, a: _lu_unpack(lib, a, 2), [_Q], (0,), (0,)),
})

# view_as_complex checked the placeholder's strides, as_strided the placeholder's storage size
_Z = _rng.standard_normal((3, 4, 2))
_CASES.update({
    "view_as_complex": (lambda lib, x: lib.view_as_real(lib.view_as_complex(x) * (1 + 2j)), [_Z], (0,), (0,)),
    "view_as_complex_transposed": (lambda lib, x: lib.view_as_real(lib.view_as_complex(x.transpose(0, 1)) * 2),
                                   [_Z], (0,), (0,)),
    "view_as_complex_copy": (lambda lib, x: lib.view_as_real(lib.view_as_complex_copy(x)) * 3, [_Z], (0,), ()),
    "as_strided": (lambda lib, x: lib.as_strided(x, (2, 2), (1, 2), 1), [_X], (0,), (0,)),
    "as_strided_overlapping": (lambda lib, x: x.as_strided((3, 3), (1, 1)), [_X], (0,), (0,)),
    "as_strided_copy": (lambda lib, x: lib.as_strided_copy(x, (2, 2), (1, 2), 1), [_X], (0,), (0,)),
})




def _run(lib, name, wrap):
    return run_wrapped_case(lib, _CASES[name], wrap)[:3]


@pytest.mark.parametrize("name", sorted(_CASES))
def test_a_wrapper_argument_gives_the_plain_values_and_gradients(name):
    # (torch's own wrapper fails the gradient of quantile along a dim, and a tensor q with keepdim: the
    # reference is torch on the plain values)
    assert_wrapped_gives_plain_and_torch(_CASES[name], torch_wrapped=False)


@pytest.mark.parametrize("name, op", [("renorm", "aten.renorm.default"), ("frexp_mantissa", "aten.frexp.Tensor"),
                                      ("histogram", "aten.histogram.bin_ct"),
                                      ("histogram_bins_tensor", "aten.histogram.bins_tensor"),
                                      ("bce_with_logits_pos_weight", "aten.binary_cross_entropy_with_logits.default"),
                                      ("bce_with_logits_no_pos_weight",
                                       "aten.binary_cross_entropy_with_logits.default")])
def test_the_handler_sees_the_forward_as_torchs_one_aten_op(name, op):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seen = _run(chainrule, name, True)[2]
        torch_seen = _run(real_torch, name, True)[2]
    assert op in seen and op in torch_seen


def test_plain_calls_keep_their_node_names():
    x = chainrule.tensor(_NAN, requires_grad=True)
    t = real_torch.tensor(_NAN, requires_grad=True)
    assert type(chainrule.nanquantile(x, 0.3, dim=1).grad_fn).__name__ == \
        type(real_torch.nanquantile(t, 0.3, dim=1).grad_fn).__name__
    x = chainrule.tensor(_X * 3, requires_grad=True)
    t = real_torch.tensor(_X * 3, requires_grad=True)
    assert type(chainrule.renorm(x, 2, 0, 1.0).grad_fn).__name__ == type(real_torch.renorm(t, 2, 0, 1.0).grad_fn).__name__
    assert type(chainrule.frexp(x)[0].grad_fn).__name__ == type(real_torch.frexp(t)[0].grad_fn).__name__
    found = [type(lib.nn.functional.binary_cross_entropy_with_logits(
        x, lib.tensor(_T), pos_weight=lib.tensor(_W)).grad_fn).__name__ for lib, x in ((chainrule, x), (real_torch, t))]
    assert found[0] == found[1]


@pytest.mark.parametrize("program, message", [
    (lambda lib, x: lib.view_as_complex(x.transpose(1, 2)), "Tensor must have a last dimension with stride 1"),
    (lambda lib, x: lib.view_as_complex(x[:, ::2]), None),
    (lambda lib, x: lib.as_strided(x, (3, 3), (4, 4), 2), "setStorage: sizes"),
], ids=["last_stride", "every_other_row", "storage_size"])
def test_a_wrapper_is_refused_or_viewed_as_torchs(program, message):
    found, values = {}, np.random.default_rng(5).standard_normal((4, 2, 2))
    for lib in (real_torch, chainrule):
        logging_tensor, _ = _logging_tensor(lib)
        x = logging_tensor(lib.tensor(values))
        try:
            found[lib] = unwrapped_values(lib.view_as_real(program(lib, x)) if message is None else program(lib, x))
        except RuntimeError as error:
            found[lib] = str(error)
    if isinstance(found[real_torch], str):
        assert message in found[real_torch]
        assert found[chainrule] == found[real_torch]
    else:
        np.testing.assert_array_equal(found[chainrule], found[real_torch])
