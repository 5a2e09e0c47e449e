"""torch.linalg.eig / eigvals: values, gradients beside torch's on the same inputs, finite differences,
torch's errors, and the linear-algebra names torch removed in 1.9."""

import numpy as np
import pytest
import torch

import chainrule
from chainrule.autograd import gradcheck, gradgradcheck

RNG = np.random.default_rng(7)
REAL = RNG.standard_normal((2, 4, 4))
COMPLEX = RNG.standard_normal((3, 3)) + 1j * RNG.standard_normal((3, 3))

# losses that do not depend on each eigenvector's phase e^{iφ} (torch's "gauge"), so both libraries
# define the same gradient: moduli of V, the products V[i, j] conj(V[k, j]), and the eigenvalues
GAUGE_FREE = {
    "values": lambda lib, L, V: (L.real ** 2 + 3 * L.imag).sum(),
    "moduli": lambda lib, L, V: (V.abs() ** 3).sum() + L.real.sum(),
    "projectors": lambda lib, L, V: ((V @ lib.diag_embed(L) @ V.mH).real ** 2).sum(),
    "weighted": lambda lib, L, V: ((V * V.conj()).real * lib.arange(V.shape[-1], dtype=V.real.dtype)).sum()
    * L.abs().sum(),
}


def _run(lib, array, loss):
    A = lib.tensor(array, requires_grad=True)
    L, V = lib.linalg.eig(A)
    loss(lib, L, V).backward()
    return L.detach().numpy(), V.detach().abs().numpy(), A.grad.numpy(), type(L.grad_fn).__name__


@pytest.mark.parametrize("array", [REAL, COMPLEX], ids=["float64", "complex128"])
@pytest.mark.parametrize("loss", GAUGE_FREE, ids=list(GAUGE_FREE))
def test_eig_values_and_gradient_match_torch(array, loss):
    ours, theirs = _run(chainrule, array, GAUGE_FREE[loss]), _run(torch, array, GAUGE_FREE[loss])
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-8, atol=1e-10)
    assert ours[3] == theirs[3] == "LinalgEigBackward0"
    assert ours[2].dtype == theirs[2].dtype


def test_eig_dtypes_layout_and_reconstruction():
    a = REAL[0].astype(np.float32)
    L, V = chainrule.linalg.eig(chainrule.tensor(a))
    tL, tV = torch.linalg.eig(torch.tensor(a))
    assert (L.dtype, V.dtype) == (chainrule.complex64, chainrule.complex64)
    assert (L.is_contiguous(), V.is_contiguous()) == (tL.is_contiguous(), tV.is_contiguous())
    assert V.stride() == tV.stride()
    # A V = V diag(L), columns of unit norm
    lhs = a.astype(np.complex64) @ V.numpy()
    np.testing.assert_allclose(lhs, V.numpy() * L.numpy(), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(V.numpy(), axis=0), 1, atol=1e-6)
    named = chainrule.linalg.eig(chainrule.tensor(a))
    assert type(named).__name__ == "linalg_eig" and named.eigenvalues is named[0]
    # real eigenvalues still come back complex (LAPACK's geev returns real arrays then)
    sym = chainrule.linalg.eigvals(chainrule.tensor(REAL[0] + REAL[0].T))
    assert sym.dtype == chainrule.complex128


def test_eigvals_matches_torch_with_and_without_grad():
    for requires_grad in (False, True):
        A, tA = chainrule.tensor(REAL, requires_grad=requires_grad), torch.tensor(REAL, requires_grad=requires_grad)
        ours, theirs = chainrule.linalg.eigvals(A), torch.linalg.eigvals(tA)
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
        assert (ours.grad_fn is None) == (theirs.grad_fn is None)
        if requires_grad:
            (ours.imag ** 2 + ours.real).sum().backward()
            (theirs.imag ** 2 + theirs.real).sum().backward()
            np.testing.assert_allclose(A.grad.numpy(), tA.grad.numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("array", [REAL[0], COMPLEX], ids=["float64", "complex128"])
def test_eig_gradcheck_and_gradgradcheck(array):
    def phase_free(A):
        L, V = chainrule.linalg.eig(A)
        return L, V.abs()

    A = chainrule.tensor(array, requires_grad=True)
    assert gradcheck(phase_free, (A,))
    assert gradcheck(chainrule.linalg.eigvals, (A,))
    assert gradgradcheck(phase_free, (A,))


def test_phase_dependent_loss_raises_torch_error():
    a = np.array([[0.0, -2.0, 1.0], [1.0, 0.5, 0.0], [0.3, 1.0, 0.2]])  # a complex pair of eigenvalues
    messages = []
    for lib in (torch, chainrule):
        L, V = lib.linalg.eig(lib.tensor(a, requires_grad=True))
        with pytest.raises(RuntimeError) as info:
            V.sum().abs().backward()
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert "e^{i phi}" in messages[1]


BAD_INPUTS = {
    "integer": np.ones((3, 3), dtype=np.int64),
    "not square": np.ones((3, 4)),
    "vector": np.ones(3),
    "half": np.ones((3, 3), dtype=np.float16),
    "nan": np.full((2, 2), np.nan),
    "inf": np.full((2, 2), np.inf),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_eig_errors_match_torch(name):
    array = BAD_INPUTS[name]
    functions = ("eig",) if name in ("nan", "inf") else ("eig", "eigvals")  # torch's eigvals crashes on NaN
    for function in functions:
        with pytest.raises(Exception) as theirs:
            getattr(torch.linalg, function)(torch.tensor(array))
        with pytest.raises(type(theirs.value)) as ours:
            getattr(chainrule.linalg, function)(chainrule.tensor(array))
        assert str(ours.value) == str(theirs.value)


def test_eig_of_empty_matrices_matches_torch():
    for shape in [(0, 3, 3), (2, 0, 0)]:
        L, V = chainrule.linalg.eig(chainrule.zeros(shape))
        tL, tV = torch.linalg.eig(torch.zeros(shape))
        assert (tuple(L.shape), tuple(V.shape), str(L.dtype)) == (tuple(tL.shape), tuple(tV.shape),
                                                                  str(tL.dtype).replace("torch", "chainrule"))


def test_eig_on_the_standin_device_matches_the_cpu():
    with chainrule._backend.use_standin_cuda():
        A = chainrule.tensor(REAL[0], device="cuda", requires_grad=True)
        L, V = chainrule.linalg.eig(A)
        GAUGE_FREE["moduli"](chainrule, L, V).backward()
        assert A.grad.device.type == "cuda"
        grad = A.grad.cpu().numpy()
        values = chainrule.linalg.eigvals(A.detach()).cpu().numpy()
    np.testing.assert_allclose(grad, _run(torch, REAL[0], GAUGE_FREE["moduli"])[2], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(values, np.linalg.eigvals(REAL[0]), rtol=1e-10)


@pytest.mark.parametrize("name", ["eig", "symeig", "lstsq", "solve", "matrix_rank"])
def test_removed_names_raise_torch_message(name):
    with pytest.raises(RuntimeError) as theirs:
        getattr(torch, name)(torch.eye(2), torch.eye(2))
    with pytest.raises(RuntimeError) as ours:
        getattr(chainrule, name)(chainrule.eye(2), chainrule.eye(2))
    assert str(ours.value) == str(theirs.value)
    if name in ("eig", "symeig"):
        with pytest.raises(RuntimeError, match="linalg"):
            getattr(chainrule.eye(2), name)()


# ---- linalg.ldl_factor(_ex) / ldl_solve: LAPACK's Bunch-Kaufman, pivots equal to torch's
def test_ldl_pivots_and_factors_match_torch_on_many_symmetric_matrices():
    rng = np.random.default_rng(0)
    for trial in range(60):
        n = int(rng.integers(1, 8))
        a = rng.standard_normal((n, n))
        a = a + a.T
        if trial % 3 == 0:
            np.fill_diagonal(a, rng.standard_normal(n) * 0.01)  # small diagonals: 2x2 pivots and interchanges
        ours, theirs = chainrule.linalg.ldl_factor(chainrule.tensor(a)), torch.linalg.ldl_factor(torch.tensor(a))
        np.testing.assert_array_equal(ours.pivots.numpy(), theirs.pivots.numpy())
        np.testing.assert_allclose(ours.LD.numpy(), theirs.LD.numpy(), rtol=1e-10, atol=1e-12)
        assert ours.LD.stride() == theirs.LD.stride() and ours.pivots.dtype == chainrule.int32
        b = rng.standard_normal((n, 2))
        solution = chainrule.linalg.ldl_solve(ours.LD, ours.pivots, chainrule.tensor(b))
        np.testing.assert_allclose(a @ solution.numpy(), b, atol=1e-8 * max(1.0, np.abs(a).max()) * n)


def test_ldl_singular_input_batches_and_errors():
    ex = chainrule.linalg.ldl_factor_ex(chainrule.zeros(3, 3))
    theirs = torch.linalg.ldl_factor_ex(torch.zeros(3, 3))
    assert ex.info.item() == theirs.info.item() == 1
    np.testing.assert_array_equal(ex.pivots.numpy(), theirs.pivots.numpy())
    with pytest.raises(RuntimeError, match="singular"):
        chainrule.linalg.ldl_factor(chainrule.zeros(3, 3))
    with pytest.raises(RuntimeError, match="singular"):
        chainrule.linalg.ldl_factor_ex(chainrule.zeros(3, 3), check_errors=True)
    for bad in (np.ones(3), np.ones((2, 3)), np.ones((2, 2), dtype=np.int64)):
        with pytest.raises(RuntimeError) as theirs:
            torch.linalg.ldl_factor_ex(torch.tensor(bad))
        with pytest.raises(RuntimeError) as ours:
            chainrule.linalg.ldl_factor_ex(chainrule.tensor(bad))
        assert str(ours.value) == str(theirs.value)
    LD, pivots = chainrule.linalg.ldl_factor(chainrule.eye(5, dtype=chainrule.float64))
    tLD, tpivots = torch.linalg.ldl_factor(torch.eye(5, dtype=torch.float64))
    with pytest.raises(RuntimeError) as theirs:
        torch.linalg.ldl_solve(tLD, tpivots, torch.ones(4, 2, dtype=torch.float64))
    with pytest.raises(RuntimeError) as ours:
        chainrule.linalg.ldl_solve(LD, pivots, chainrule.ones(4, 2, dtype=chainrule.float64))
    assert str(ours.value) == str(theirs.value)


def test_ldl_outputs_are_recorded_without_a_derivative_as_torch():
    a = REAL[0] + REAL[0].T
    for lib, message in ((torch, "derivative for aten::linalg_ldl_factor_ex is not implemented"),
                         (chainrule, "derivative for aten::linalg_ldl_factor_ex is not implemented")):
        LD, pivots = lib.linalg.ldl_factor(lib.tensor(a, requires_grad=True))
        assert LD.requires_grad and not pivots.requires_grad
        with pytest.raises(RuntimeError, match=message):
            LD.sum().backward()
