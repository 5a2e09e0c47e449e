"""Lane mendBX (session 50): ops of a ``__torch_dispatch__`` wrapper subclass (torch's test LoggingTensor) that
still read its zero placeholder after mendBT. The linalg ops whose recording forward refused the placeholder's
zeros (inv, solve, cholesky, lu_factor and what is built on them: a singular matrix) now record over the values the
handler handed its run; inv_ex, solve_ex (info read from A's array) and lu_solve (the pivots' array) reach the
handler as torch's one aten op."""
import warnings

import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402

from ._dispatch_checks import assert_wrapped_gives_plain_and_torch, run_wrapped_case, unwrapped_values  # noqa: E402
from ._dispatch_checks import logging_tensor as _logging_tensor  # noqa: E402

_rng = np.random.default_rng(51)
_A = _rng.standard_normal((2, 3, 3)) + 3 * np.eye(3)
_B = _rng.standard_normal((2, 3, 2))


def _lu_solve(lib, a, b):
    LU, pivots = lib.linalg.lu_factor(a)
    return lib.linalg.lu_solve(LU, pivots, b)


def _lu_solve_adjoint_right(lib, a, b):
    LU, pivots = lib.linalg.lu_factor(a)
    return lib.linalg.lu_solve(LU, pivots, b.mT, left=False, adjoint=True)


# name: (program(lib, *tensors), arrays, positions wrapped, positions that require grad)
_CASES = {
    "inv": (lambda lib, a: lib.linalg.inv(a), [_A], (0,), (0,)),
    "inverse": (lambda lib, a: lib.inverse(a), [_A], (0,), (0,)),
    "solve": (lambda lib, a, b: lib.linalg.solve(a, b), [_A, _B], (0, 1), (0, 1)),
    "solve_a_wrapped": (lambda lib, a, b: lib.linalg.solve(a, b), [_A, _B], (0,), (0, 1)),
    "cholesky": (lambda lib, a: lib.linalg.cholesky(a @ a.mT), [_A], (0,), (0,)),
    "cholesky_upper": (lambda lib, a: lib.linalg.cholesky(a @ a.mT, upper=True), [_A], (0,), (0,)),
    "cholesky_solve": (lambda lib, a, b: lib.cholesky_solve(b, lib.linalg.cholesky(a @ a.mT)), [_A, _B], (0, 1),
                       (0, 1)),
    "lu_factor": (lambda lib, a: lib.linalg.lu_factor(a)[0], [_A], (0,), (0,)),
    "lu_factor_pivots": (lambda lib, a: lib.linalg.lu_factor(a)[1], [_A], (0,), ()),
    "inv_ex": (lambda lib, a: lib.linalg.inv_ex(a)[0], [_A], (0,), (0,)),
    "inv_ex_info": (lambda lib, a: lib.linalg.inv_ex(a)[1], [_A], (0,), ()),
    "solve_ex": (lambda lib, a, b: lib.linalg.solve_ex(a, b)[0], [_A, _B], (0, 1), (0, 1)),
    "solve_ex_right": (lambda lib, a, b: lib.linalg.solve_ex(a, b.mT, left=False)[0], [_A, _B], (0,), (0, 1)),
    "lu_solve": (_lu_solve, [_A, _B], (0, 1), (0, 1)),
    "lu_solve_adjoint_right": (_lu_solve_adjoint_right, [_A, _B], (0, 1), (0, 1)),
    "tensorinv": (lambda lib, a: lib.linalg.tensorinv(a[0], ind=1), [_A], (0,), (0,)),
}
# in-place ops built from a lambda on a wrapper that requires grad (they wrote into its placeholder)
_X = _rng.standard_normal((3, 4))
_CASES.update({
    "threshold_": (lambda lib, x: lib.nn.functional.threshold_(x * 1.0, 0.2, -1.0), [_X], (0,), (0,)),
    "hardtanh_inplace": (lambda lib, x: lib.nn.functional.hardtanh(x * 1.0, -0.5, 0.5, inplace=True), [_X], (0,),
                         (0,)),
    "dropout_eval": (lambda lib, x: lib.dropout_(x * 1.0, 0.5, False), [_X], (0,), (0,)),
    "alpha_dropout_eval": (lambda lib, x: lib.alpha_dropout_(x * 1.0, 0.5, False), [_X], (0,), (0,)),
    "feature_dropout_eval": (lambda lib, x: lib.feature_dropout_(x * 1.0, 0.5, False), [_X], (0,), (0,)),
    "feature_alpha_dropout_eval": (lambda lib, x: lib.feature_alpha_dropout_(x * 1.0, 0.5, False), [_X], (0,), (0,)),
    "threshold_then_square": (lambda lib, x: lib.nn.functional.threshold_(x * 1.0, 0.2, -1.0) ** 2, [_X], (0,), (0,)),
})


# batch norm / layer norm of wrappers: F.batch_norm wrote the running statistics into a wrapper's placeholder
# (read-only), native_batch_norm and native_layer_norm computed their statistics on the input's placeholder
_N = _rng.standard_normal((4, 3, 2))
_C = _rng.standard_normal(3)
_CASES.update({
    "batch_norm_training": (lambda lib, x, w, b, m, v: lib.nn.functional.batch_norm(x, m, v, w, b, True, 0.1),
                            [_N, _C, _C + 1, _C, _C ** 2], (0, 1, 2, 3, 4), (0, 1, 2)),
    "batch_norm_eval": (lambda lib, x, w, b, m, v: lib.nn.functional.batch_norm(x, m, v, w, b, False),
                        [_N, _C, _C + 1, _C, _C ** 2], (0, 1, 2, 3, 4), (0, 1, 2)),
    "batch_norm_stats_wrapped": (lambda lib, x, m, v: lib.batch_norm(x, None, None, m, v, True, 0.1, 1e-5, False),
                                 [_N, _C, _C ** 2], (1, 2), (0,)),
    "native_batch_norm_out": (lambda lib, x, w, b, m, v: lib.native_batch_norm(x, w, b, m, v, True, 0.1, 1e-5)[0],
                              [_N, _C, _C + 1, _C, _C ** 2], (0, 1, 2, 3, 4), (0, 1, 2)),
    "native_batch_norm_mean": (lambda lib, x, m, v: lib.native_batch_norm(x, None, None, m, v, True, 0.1, 1e-5)[1],
                               [_N, _C, _C ** 2], (0, 1, 2), ()),
    "native_batch_norm_invstd": (lambda lib, x: lib.native_batch_norm(x, None, None, None, None, True, 0.1, 1e-5)[2],
                                 [_N], (0,), ()),
    "native_layer_norm_out": (lambda lib, x, w: lib.native_layer_norm(x, [2], w, None, 1e-5)[0], [_N, _C[:2]],
                              (0, 1), (0, 1)),
    "native_layer_norm_mean": (lambda lib, x: lib.native_layer_norm(x, [3, 2], None, None, 1e-5)[1], [_N], (0,), ()),
    "native_layer_norm_rstd": (lambda lib, x: lib.native_layer_norm(x, [2], None, None, 1e-5)[2], [_N], (0,), ()),
})

# nan_to_num, isclose and isreal read the input's array (its placeholder)
_S = np.array([1.5, -np.inf, np.nan, -0.0, np.inf, 2.5])
_CASES.update({
    "nan_to_num": (lambda lib, x: lib.nan_to_num(x), [_S], (0,), (0,)),
    "nan_to_num_values": (lambda lib, x: x.nan_to_num(nan=0.5, posinf=3.0, neginf=-3.0), [_S], (0,), (0,)),
    "isclose": (lambda lib, a, b: lib.isclose(a, b), [_S, _S + 1e-9], (0, 1), ()),
    "isclose_one_wrapped": (lambda lib, a, b: a.isclose(b, rtol=0.1, atol=0.5, equal_nan=True), [_S, _S * 1.05],
                            (1,), ()),
    "nansum": (lambda lib, x: lib.nansum(x), [_S], (0,), (0,)),
    "nansum_dim": (lambda lib, x: lib.nansum(x.reshape(2, 3), 1, keepdim=True), [_S], (0,), (0,)),
    "nanmean": (lambda lib, x: lib.nanmean(x.reshape(3, 2), 0), [np.where(np.isinf(_S), 1.0, _S)], (0,), (0,)),
    "isreal_complex": (lambda lib, z: lib.isreal(z), [np.array([1 + 0j, 2 + 1j, -1 + 0j, 3 - 2j])], (0,), ()),
})




def _run(lib, name, wrap):
    return run_wrapped_case(lib, _CASES[name], wrap)[:3]


@pytest.mark.parametrize("name", sorted(_CASES))
def test_a_wrapper_argument_gives_the_plain_values_and_gradients(name):
    assert_wrapped_gives_plain_and_torch(_CASES[name])


@pytest.mark.parametrize("name, op", [("inv_ex", "aten.linalg_inv_ex.default"),
                                      ("lu_solve", "aten.linalg_lu_solve.default"),
                                      ("solve_ex", "aten.linalg_solve_ex.default")])
def test_the_handler_sees_the_forward_as_one_aten_op(name, op):
    """inv_ex and lu_solve as torch's; solve_ex as aten.linalg_solve_ex (torch's handler sees the
    _linalg_solve_ex beneath it, four results where linalg_solve_ex has two)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seen = _run(chainrule, name, True)[2]
        torch_seen = _run(real_torch, name, True)[2]
    assert op in seen
    assert op in torch_seen or op.replace("aten.linalg", "aten._linalg") in torch_seen
    assert not any(op.startswith("aten.where") for op in seen)


def test_a_singular_wrapper_still_raises_torchs_error():
    for lib in (real_torch, chainrule):
        logging_tensor, _ = _logging_tensor(lib)
        a = logging_tensor(lib.zeros(3, 3, dtype=lib.float64, requires_grad=True))
        with pytest.raises(lib.linalg.LinAlgError, match="singular"):
            lib.linalg.inv(a)


def test_plain_calls_keep_their_node_names():
    a = chainrule.tensor(_A, requires_grad=True)
    b = chainrule.tensor(_B, requires_grad=True)
    assert type(chainrule.linalg.inv_ex(a)[0].grad_fn).__name__ == type(
        real_torch.linalg.inv_ex(real_torch.tensor(_A, requires_grad=True))[0].grad_fn).__name__
    assert type(chainrule.linalg.inv(a).grad_fn).__name__ == "LinalgInvExBackward0"
    LU, pivots = chainrule.linalg.lu_factor(a)
    assert chainrule.linalg.lu_solve(LU, pivots, b).grad_fn is not None


def test_an_in_place_lambda_op_on_a_wrapper_leaf_that_requires_grad_is_still_refused():
    for lib in (real_torch, chainrule):
        logging_tensor, _ = _logging_tensor(lib)
        x = logging_tensor(lib.tensor(_X, requires_grad=True))
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
            lib.nn.functional.threshold_(x, 0.2, -1.0)


@pytest.mark.parametrize("program", [
    lambda lib, x, m, v: lib.nn.functional.batch_norm(x, m, v, training=True, momentum=0.3),
    lambda lib, x, m, v: lib.native_batch_norm(x, None, None, m, v, True, 0.3, 1e-5)[0],
], ids=["F.batch_norm", "native_batch_norm"])
def test_wrapped_running_statistics_are_updated_once_as_torchs(program):
    found = {}
    for lib in (real_torch, chainrule):
        logging_tensor, _ = _logging_tensor(lib)
        x = logging_tensor(lib.tensor(_N, requires_grad=True))
        m, v = (logging_tensor(lib.tensor(a)) for a in (_C, _C ** 2))
        program(lib, x, m, v).sum().backward()
        found[lib] = unwrapped_values(m), unwrapped_values(v), unwrapped_values(x.grad)
    for ours, theirs in zip(found[chainrule], found[real_torch]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("wrapped_target", [False, True])
def test_an_in_place_op_with_a_wrapper_that_requires_grad_bumps_the_version_once(wrapped_target):
    found = {}
    for lib in (real_torch, chainrule):
        logging_tensor, _ = _logging_tensor(lib)
        # (a wrapper target needing no grad: one that requires grad is a leaf, refused in place)
        p = logging_tensor(lib.tensor(_C)) if wrapped_target else lib.tensor(_C, requires_grad=True) * 1
        w = logging_tensor(lib.tensor(_C ** 2, requires_grad=True))
        before = p._version
        p.add_(w)
        found[lib] = p._version - before, type(p.grad_fn).__name__, unwrapped_values(p)
    assert found[chainrule][:2] == found[real_torch][:2]
    np.testing.assert_allclose(found[chainrule][2], found[real_torch][2], rtol=1e-12)
