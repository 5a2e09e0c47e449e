"""Decompositions (chainrule/ops/decompositions.py) as scripts use them, run on chainrule and on
torch and compared: GP regression (cholesky, cholesky_solve, solve_triangular, the log-determinant
from the factor), PCA and whitening (svd, eigh), an orthogonal parametrization (matrix_exp) and
orthogonal init (qr), least squares (lstsq, pinv); then torch's errors for bad input, ``out=``, and
the ops on the CuPy stand-in. Per-op values and gradients (float32 against torch, float64
gradcheck/gradgradcheck, batches, empty batches) are the registry's samples in
chainrule/testing/opinfo/decompositions.py, run by tests/ops/test_op_db.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule import _backend

torch = pytest.importorskip("torch")
LIBS = (chainrule, torch)


def _numpy(t):
    return t.detach().cpu().numpy() if hasattr(t, "cpu") else t.detach().numpy()


def _both(program, *arrays, **kwargs):
    """``program(lib, *tensors)`` on chainrule and torch (float64 inputs), as NumPy results."""
    results = []
    for lib in LIBS:
        out = program(lib, *[lib.tensor(a) for a in arrays], **kwargs)
        results.append([_numpy(o) if hasattr(o, "detach") else np.asarray(o) for o in out])
    return results


def _assert_same(ours, theirs, rtol=1e-7, atol=1e-9):
    assert len(ours) == len(theirs)
    for k, (o, t) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(o, t, rtol=rtol, atol=atol, err_msg=f"result {k}")


# ---------------------------------------------------------------- whole programs
def _gp_regression(lib, X, y, X_test, steps=6):
    """Fit an RBF kernel's length scale and noise by the marginal likelihood (Adam), then predict."""
    log_scale = lib.zeros((), dtype=X.dtype, requires_grad=True)
    log_noise = lib.full((), -1.0, dtype=X.dtype, requires_grad=True)
    optimizer = lib.optim.Adam([log_scale, log_noise], lr=0.1)
    n = X.shape[0]

    def kernel(a, b):
        squared = ((a.unsqueeze(1) - b.unsqueeze(0)) ** 2).sum(-1)
        return lib.exp(-0.5 * squared / lib.exp(2 * log_scale))

    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        K = kernel(X, X) + lib.exp(log_noise) * lib.eye(n, dtype=X.dtype)
        L = lib.linalg.cholesky(K)
        alpha = lib.cholesky_solve(y.unsqueeze(-1), L)
        # -log p(y) = ½ yᵀK⁻¹y + ½ log det K + n/2 log 2π, with log det K = 2 Σ log Lᵢᵢ
        nll = 0.5 * (y.unsqueeze(-1) * alpha).sum() + lib.log(lib.diagonal(L)).sum() + 0.5 * n * np.log(2 * np.pi)
        nll.backward()
        optimizer.step()
        losses.append(nll.item())
    with lib.no_grad():
        K = kernel(X, X) + lib.exp(log_noise) * lib.eye(n, dtype=X.dtype)
        L, info = lib.linalg.cholesky_ex(K)
        K_star = kernel(X_test, X)
        mean = K_star @ lib.cholesky_solve(y.unsqueeze(-1), L)
        v = lib.linalg.solve_triangular(L, K_star.mT, upper=False)
        variance = 1.0 - (v * v).sum(0)
        logdet_from_factor = 2 * lib.log(lib.diagonal(L)).sum()
        inverse = lib.cholesky_inverse(L)
    return (lib.tensor(losses), mean.squeeze(-1), variance, logdet_from_factor, lib.logdet(K), inverse, info,
            log_scale, log_noise)


def test_gp_regression_program_matches_torch():
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, (20, 2))
    y = np.sin(X[:, 0]) + 0.1 * rng.standard_normal(20)
    ours, theirs = _both(_gp_regression, X, y, rng.uniform(-3, 3, (7, 2)))
    _assert_same(ours, theirs, rtol=1e-6, atol=1e-8)
    logdet_factor, logdet = ours[3], ours[4]
    np.testing.assert_allclose(logdet_factor, logdet, rtol=1e-10)
    assert ours[0][-1] < ours[0][0]  # the marginal likelihood was optimized


def _pca(lib, X):
    """Centre, project on the principal axes by svd and by eigh of the covariance, whiten; and the
    gradient of the explained-variance ratio of the top two components."""
    X = X.clone().requires_grad_(True)
    centred = X - X.mean(0)
    U, S, Vh = lib.linalg.svd(centred, full_matrices=False)
    n = X.shape[0]
    covariance = centred.mT @ centred / (n - 1)
    eigenvalues, eigenvectors = lib.linalg.eigh(covariance)
    whitened = centred @ Vh.mT / S * np.sqrt(n - 1)
    ratio = (S[:2] ** 2).sum() / (S ** 2).sum()
    ratio.backward()
    # component signs are arbitrary: compare sign-free quantities
    return (S, eigenvalues.flip(0), lib.abs(Vh), lib.abs(eigenvectors.flip(-1).mT), whitened.mT @ whitened / (n - 1),
            lib.abs(whitened), X.grad, lib.linalg.svdvals(centred), lib.linalg.eigvalsh(covariance))


def test_pca_whitening_program_matches_torch():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 4)) @ np.diag([3.0, 2.0, 1.0, 0.5]) @ rng.standard_normal((4, 4))
    ours, theirs = _both(_pca, X)
    _assert_same(ours, theirs, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours[4], np.eye(4), atol=1e-10)  # whitened covariance
    np.testing.assert_allclose(ours[0] ** 2 / 29, ours[1], rtol=1e-10)  # svd and eigh agree


def _orthogonal_fit(lib, A0, target, steps=8):
    """Learn a rotation R = exp(A - Aᵀ) mapping points onto targets (SGD), as an orthogonal
    parametrization does; and check qr gives an orthonormal basis of a tall matrix."""
    A = A0.clone().requires_grad_(True)
    optimizer = lib.optim.SGD([A], lr=0.1)
    points = lib.eye(3, dtype=A0.dtype)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        R = lib.linalg.matrix_exp(A - A.mT)
        loss = ((points @ R - target) ** 2).sum()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    R = lib.linalg.matrix_exp(A - A.mT).detach()
    Q, Rq = lib.linalg.qr(target @ A0.mT)
    return lib.tensor(losses), R, R @ R.mT, Q.mT @ Q, Q @ Rq, A.grad


def test_matrix_exp_rotation_fit_matches_torch():
    rng = np.random.default_rng(2)
    ours, theirs = _both(_orthogonal_fit, 0.3 * rng.standard_normal((3, 3)), rng.standard_normal((3, 3)))
    _assert_same(ours, theirs, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(ours[2], np.eye(3), atol=1e-12)
    assert ours[0][-1] < ours[0][0]


def test_orthogonal_init_is_orthogonal():
    weight = chainrule.empty(6, 4)
    chainrule.nn.init.orthogonal_(weight)
    Q, R = chainrule.linalg.qr(weight)
    np.testing.assert_allclose(_numpy(weight.mT @ weight), np.eye(4), atol=1e-5)
    np.testing.assert_allclose(np.abs(np.diag(_numpy(R))), np.ones(4), atol=1e-5)


def _least_squares(lib, A, B):
    A = A.clone().requires_grad_(True)
    B = B.clone().requires_grad_(True)
    solution = lib.linalg.lstsq(A, B).solution
    via_pinv = lib.linalg.pinv(A) @ B
    loss = (solution ** 2).sum() + (via_pinv * B[:3]).sum()
    loss.backward()
    full = lib.linalg.lstsq(A.detach(), B.detach(), driver="gelsd")
    return (solution, via_pinv, A.grad, B.grad, full.residuals, full.rank, full.singular_values,
            lib.linalg.matrix_rank(A.detach()), lib.linalg.cond(A.detach()), lib.pinverse(A.detach()))


def test_least_squares_program_matches_torch():
    rng = np.random.default_rng(3)
    ours, theirs = _both(_least_squares, rng.standard_normal((6, 3)), rng.standard_normal((6, 3)))
    _assert_same(ours, theirs, rtol=1e-7, atol=1e-10)


def test_lstsq_vector_right_hand_side_and_rank_deficient_matrix():
    rng = np.random.default_rng(4)
    deficient = rng.standard_normal((5, 2)) @ rng.standard_normal((2, 4))
    for driver in ("gelsy", "gelsd", "gelss", "gels"):
        ours, theirs = _both(lambda lib, a, b, driver=driver: tuple(lib.linalg.lstsq(a, b, driver=driver)),
                             rng.standard_normal((5, 3)), rng.standard_normal(5))
        _assert_same(ours, theirs)
        for o, t in zip(ours, theirs):
            assert o.shape == t.shape and o.dtype == t.dtype, driver
    ours, theirs = _both(lambda lib, a: (lib.linalg.pinv(a), lib.linalg.matrix_rank(a),
                                         lib.linalg.matrix_rank(a, atol=1.0, rtol=0.0)), deficient)
    _assert_same(ours, theirs)
    assert ours[1] == 2


def _lu_program(lib, A, rhs):
    """Factor once, solve for several right-hand sides (both sides, transposed), differentiate."""
    A = A.clone().requires_grad_(True)
    rhs = rhs.clone().requires_grad_(True)
    LU, pivots = lib.linalg.lu_factor(A)
    X = lib.linalg.lu_solve(LU, pivots, rhs)
    Y = lib.linalg.lu_solve(LU, pivots, rhs.mT, left=False)
    Z = lib.linalg.lu_solve(LU, pivots, rhs, adjoint=True)
    P, L, U = lib.linalg.lu(A)
    loss = (X ** 2).sum() + (Y * rhs.mT).sum() + Z.sum() + (L * U.mT).sum()
    loss.backward()
    LU_ex, pivots_ex, info = lib.linalg.lu_factor_ex(A.detach())
    return X, Y, Z, P, L, U, A.grad, rhs.grad, pivots, pivots_ex, info, (P @ L @ U).detach()


def test_lu_solve_program_matches_torch():
    rng = np.random.default_rng(6)
    A = rng.standard_normal((3, 4, 4)) + 2 * np.eye(4)
    ours, theirs = _both(_lu_program, A, rng.standard_normal((3, 4, 2)))
    _assert_same(ours, theirs, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(ours[-1], A, atol=1e-12)
    assert ours[8].dtype == np.int32 and ours[10].dtype == np.int32


def test_lu_factor_ex_of_singular_matrices_reports_info_as_torch():
    singular = np.array([[[1.0, 2.0], [2.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]]])
    ours, theirs = _both(lambda lib, a: tuple(lib.linalg.lu_factor_ex(a)), singular)
    _assert_same(ours, theirs)
    for o, t in zip(ours, theirs):
        assert o.dtype == t.dtype


# ---------------------------------------------------------------- errors
def _error_of(lib, program):
    with pytest.raises(Exception) as caught:
        program(lib)
    return caught.value


def _same_error(program):
    """``program`` raises on both libraries: the same type family and message."""
    ours, theirs = _error_of(chainrule, program), _error_of(torch, program)
    assert isinstance(ours, RuntimeError) == isinstance(theirs, RuntimeError)
    assert str(ours) == str(theirs)
    return ours


def test_cholesky_of_a_non_positive_definite_matrix_raises_linalg_error_as_torch():
    indefinite = [[4.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]  # the order-2 minor is singular
    error = _same_error(lambda lib: lib.linalg.cholesky(lib.tensor(indefinite)))
    assert isinstance(error, chainrule.linalg.LinAlgError)
    assert "the leading minor of order 2 is not positive-definite" in str(error)
    batch = [np.eye(3).tolist(), indefinite, (-np.eye(3)).tolist()]
    error = _same_error(lambda lib: lib.linalg.cholesky(lib.tensor(batch)))
    assert "(Batch element 1)" in str(error)
    ours, theirs = _both(lambda lib, a: tuple(lib.linalg.cholesky_ex(a)), np.array(batch))
    np.testing.assert_array_equal(ours[1], theirs[1])  # info: 0, 2, 1
    np.testing.assert_allclose(ours[0][0], theirs[0][0])  # the factorable element
    assert ours[1].dtype == np.int32
    error = _same_error(lambda lib: lib.linalg.cholesky_ex(lib.tensor(batch), check_errors=True))
    assert isinstance(error, chainrule.linalg.LinAlgError)
    _same_error(lambda lib: lib.linalg.cholesky(lib.tensor([[1.0, 0.0], [0.0, float("nan")]])))  # order 2
    _same_error(lambda lib: lib.cholesky(lib.tensor([[1.0, 2.0], [5.0, 1.0]]), upper=True))  # reads the upper triangle


@pytest.mark.parametrize("program", [
    lambda lib: lib.linalg.cholesky(lib.ones(2, 3)),
    lambda lib: lib.linalg.cholesky(lib.ones(3)),
    lambda lib: lib.linalg.cholesky(lib.ones(3, 3, dtype=lib.int64)),
    lambda lib: lib.linalg.eigh(lib.ones(2, 3)),
    lambda lib: lib.linalg.solve_triangular(lib.eye(3), lib.ones(4, 2), upper=True),
    lambda lib: lib.linalg.solve_triangular(lib.eye(3), lib.ones(2, 4), upper=True, left=False),
    lambda lib: lib.linalg.qr(lib.ones(3, 3), mode="thin"),
    lambda lib: lib.linalg.matrix_exp(lib.ones(2, 3)),
    lambda lib: lib.linalg.cholesky_ex(lib.ones(2, 3)),
    lambda lib: lib.cholesky_solve(lib.ones(3), lib.eye(3)),
    lambda lib: lib.cholesky_solve(lib.ones(4, 2), lib.eye(3)),
    lambda lib: lib.cholesky_inverse(lib.ones(2, 3)),
    lambda lib: lib.linalg.solve_triangular(lib.eye(3), lib.ones(3), upper=True),
    lambda lib: lib.linalg.eigh(lib.eye(3), UPLO="X"),
    lambda lib: lib.linalg.lstsq(lib.eye(3), lib.ones(4, 2)),
    lambda lib: lib.linalg.lstsq(lib.eye(3), lib.ones(3, 2), driver="gelsx"),
    lambda lib: lib.linalg.svd(lib.ones(3)),
    lambda lib: lib.linalg.qr(lib.ones(3)),
    lambda lib: lib.linalg.pinv(lib.ones(3)),
    lambda lib: lib.linalg.vander(lib.tensor(1.0)),
    lambda lib: lib.cholesky_solve(lib.ones(3, 2), lib.eye(3, dtype=lib.float64)),
    lambda lib: lib.linalg.lstsq(lib.eye(3), lib.ones(3, 2, dtype=lib.float64)),
    lambda lib: lib.linalg.lu_factor(lib.zeros(2, 2)),
    lambda lib: lib.linalg.lu_factor(lib.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 2.0], [2.0, 4.0]]])),
    lambda lib: lib.linalg.lu_factor_ex(lib.tensor([[1.0, 2.0], [2.0, 4.0]]), check_errors=True),
    lambda lib: lib.linalg.lu_factor(lib.eye(3), pivot=False),
    lambda lib: lib.linalg.lu_factor(lib.ones(3)),
    lambda lib: lib.linalg.lu_solve(*lib.linalg.lu_factor(lib.eye(3)), lib.ones(4, 2)),
], ids=["cholesky_not_square", "cholesky_1d", "cholesky_int", "eigh_not_square", "solve_triangular_rows",
        "solve_triangular_right_cols", "qr_mode", "matrix_exp_not_square", "cholesky_ex_not_square",
        "cholesky_solve_1d", "cholesky_solve_rows", "cholesky_inverse_not_square", "solve_triangular_1d",
        "eigh_uplo", "lstsq_rows", "lstsq_driver", "svd_1d", "qr_1d", "pinv_1d", "vander_0d", "cholesky_solve_dtypes",
        "lstsq_dtypes", "lu_factor_singular",
        "lu_factor_singular_batch", "lu_factor_ex_check_errors", "lu_factor_no_pivot", "lu_factor_1d",
        "lu_solve_rows"])
def test_bad_input_raises_as_torch(program):
    _same_error(program)


@pytest.mark.parametrize("mode,shape", [("r", (4, 3)), ("complete", (4, 3))])
def test_qr_backward_where_torch_has_none_raises_as_torch(mode, shape):
    def program(lib):
        A = lib.ones(*shape, dtype=lib.float64).cumsum(0).requires_grad_(True)
        Q, R = lib.linalg.qr(A + lib.eye(*shape, dtype=lib.float64), mode=mode)
        R.sum().backward()

    _same_error(program)


def test_linalg_namespace_has_torch_names_only():
    # every torch.linalg function is there now (eig, eigvals and the LDL ones since s7); a name torch.linalg
    # does not have is an AttributeError, and ops/linalg.py's top-level-only functions stay out
    assert {"cholesky", "matrix_exp", "eig", "eigvals", "ldl_factor", "ldl_solve"} <= set(dir(chainrule.linalg))
    for name in ("geqrf", "ormqr", "no_such_function"):
        with pytest.raises(AttributeError, match=f"has no attribute '{name}'"):
            getattr(chainrule.linalg, name)
    assert chainrule.linalg.vander is not chainrule.vander


def test_out_arguments_are_written():
    A = chainrule.tensor([[4.0, 2.0], [2.0, 3.0]])
    out = chainrule.empty(2, 2)
    result = chainrule.linalg.cholesky(A, out=out)
    assert result is out
    np.testing.assert_allclose(_numpy(out), np.linalg.cholesky(_numpy(A)), rtol=1e-6)
    Q, R = chainrule.empty(2, 2), chainrule.empty(2, 2)
    returned = chainrule.linalg.qr(A, out=(Q, R))
    assert returned[0] is Q and returned[1] is R
    np.testing.assert_allclose(_numpy(Q @ R), _numpy(A), atol=1e-6)


def test_torch_cholesky_warns_it_is_deprecated(monkeypatch):
    monkeypatch.setattr(chainrule._config, "_warned_once", set())  # (it warns once per process, as torch's)
    with pytest.warns(UserWarning, match="torch.cholesky is deprecated"):
        chainrule.cholesky(chainrule.eye(2))


# ---------------------------------------------------------------- the CuPy stand-in
def _device_program(lib, device, A, B):
    A = lib.tensor(A, device=device, requires_grad=True)
    B = lib.tensor(B, device=device, requires_grad=True)
    spd = A.mT @ A + lib.eye(3, device=device, dtype=A.dtype)
    L = lib.linalg.cholesky(spd)
    Q, R = lib.linalg.qr(A)
    S = lib.linalg.svdvals(A)
    eigenvalues = lib.linalg.eigvalsh(spd)
    outputs = [L, lib.cholesky_solve(B[:3], L), lib.cholesky_inverse(L), Q * Q, R * R, S, eigenvalues,
               lib.linalg.solve_triangular(L, B[:3], upper=False), lib.linalg.pinv(A), lib.linalg.lstsq(A, B).solution,
               lib.linalg.matrix_exp(0.2 * spd), lib.linalg.cond(spd), lib.linalg.vander(S)]
    sum(o.sum() for o in outputs).backward()
    ranks = lib.linalg.matrix_rank(A)
    return [o.detach() for o in outputs] + [A.grad, B.grad, ranks]


def test_decompositions_run_on_the_cupy_standin_as_on_the_cpu():
    rng = np.random.default_rng(5)
    A, B = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    on_cpu = _device_program(chainrule, "cpu", A, B)
    with _backend.use_standin_cuda() as cp:
        on_device = _device_program(chainrule, "cuda", A, B)
        assert all(isinstance(t._data, cp.ndarray) for t in on_device)
        on_device = [cp.asnumpy(t._data) for t in on_device]
    theirs = [_numpy(t) for t in _device_program(torch, "cpu", A, B)]
    for k, (device_result, cpu_result, torch_result) in enumerate(zip(on_device, on_cpu, theirs)):
        np.testing.assert_allclose(device_result, _numpy(cpu_result), rtol=1e-12, atol=1e-12, err_msg=f"output {k}")
        np.testing.assert_allclose(device_result, torch_result, rtol=1e-7, atol=1e-9, err_msg=f"output {k} vs torch")
