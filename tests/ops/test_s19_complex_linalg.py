"""Complex convolution and complex linear algebra against torch 2.13: forward values and dtypes, and
gradients in torch's convention (``.grad`` holds dL/d(conj z) for a real loss L), checked with
chainrule's gradcheck in complex128 and against torch's gradient on the same inputs. Singular and
eigen vectors are fixed only up to a phase, so their losses are gauge-invariant ones."""

import numpy as np
import pytest

import chainrule
from chainrule.autograd import gradcheck, gradgradcheck

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _torch_on_one_thread():
    # the oracle only: torch's complex convolutions on its OpenMP pool took 0.8 s a call on the loaded
    # 2-core machine, 10 ms on one thread
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _complex(shape, seed, dtype=np.complex128):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


def _pair(array, requires_grad=True):
    return (chainrule.tensor(array, requires_grad=requires_grad), torch.tensor(array, requires_grad=requires_grad))


def _close(ours, theirs, rtol=1e-7, atol=1e-9):
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().resolve_conj().numpy(), rtol=rtol, atol=atol)


def _real_loss(outputs, seed):
    """A real loss of (possibly complex) outputs: Σ Re⟨c, out⟩, the same c for both libraries."""
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    loss = 0
    for k, out in enumerate(outputs):
        lib = chainrule if isinstance(out, chainrule.Tensor) else torch
        c = _complex(tuple(out.shape), seed + k)
        loss = loss + (out * lib.tensor(c.conj() if out.is_complex() else c.real)).sum().real
    return loss


def _same_gradients(f_ours, f_theirs, arrays, seed=7, rtol=1e-7, atol=1e-9):
    """f's values and the gradients of a real loss of them, chainrule against torch."""
    ours, theirs = zip(*(_pair(a) for a in arrays))
    out_ours, out_theirs = f_ours(*ours), f_theirs(*theirs)
    for a, b in zip(*(o if isinstance(o, tuple) else (o,) for o in (out_ours, out_theirs))):
        _close(a, b, rtol, atol)
    _real_loss(out_ours, seed).backward()
    _real_loss(out_theirs, seed).backward()
    for a, b in zip(ours, theirs):
        _close(a.grad, b.grad, rtol, atol)


# ---- convolution --------------------------------------------------------------------------------
@pytest.mark.parametrize("d", [1, 2])
def test_complex_conv_and_its_transpose_match_torch(d):
    F = chainrule.nn.functional
    x, w, b = _complex((2, 4) + (6,) * d, 0), _complex((4, 2) + (3,) * d, 1), _complex((4,), 2)
    conv = f"conv{d}d"
    _same_gradients(lambda x, w, b: getattr(F, conv)(x, w, b, stride=2, padding=1, groups=2),
                    lambda x, w, b: getattr(torch.nn.functional, conv)(x, w, b, stride=2, padding=1, groups=2),
                    [x, w, b])
    transpose = f"conv_transpose{d}d"
    wt = _complex((4, 3) + (2,) * d, 3)
    _same_gradients(lambda x, w: getattr(F, transpose)(x, w, stride=2, dilation=2),
                    lambda x, w: getattr(torch.nn.functional, transpose)(x, w, stride=2, dilation=2), [x, wt])


def test_complex_conv_gradcheck_and_complex64_dtype():
    x, w = (chainrule.tensor(_complex(s, i), requires_grad=True) for i, s in enumerate([(1, 2, 5), (2, 2, 3)]))
    assert gradcheck(lambda x, w: chainrule.nn.functional.conv1d(x, w, padding=1), (x, w))
    small = chainrule.nn.functional.conv2d(chainrule.tensor(_complex((1, 1, 3, 3), 4, np.complex64)),
                                           chainrule.tensor(_complex((1, 1, 2, 2), 5, np.complex64)))
    assert small.dtype == chainrule.complex64


# ---- linear algebra -----------------------------------------------------------------------------
def _hermitian_pd(L, a):
    """A Hermitian positive-definite matrix made of ``a`` (differentiable), for cholesky and friends."""
    return a @ a.mH + 3 * L.eye(a.shape[-1], dtype=a.dtype)


# each: a function of (library, *complex128 tensors) and the shapes of those tensors; the outputs
# that depend on a phase choice (singular and eigen vectors) enter through their magnitudes only
LINALG_CASES = {
    "inv": (lambda L, a: L.linalg.inv(a), [(3, 3)]),
    "det": (lambda L, a: L.linalg.det(a), [(2, 3, 3)]),
    "slogdet": (lambda L, a: tuple(L.linalg.slogdet(a)), [(3, 3)]),
    "logdet": (lambda L, a: L.logdet(a), [(3, 3)]),
    "solve": (lambda L, a, b: L.linalg.solve(a, b), [(3, 3), (3, 2)]),
    "solve_left_false": (lambda L, a, b: L.linalg.solve(a, b, left=False), [(3, 3), (2, 3)]),
    "solve_triangular": (lambda L, a, b: L.linalg.solve_triangular(a, b, upper=True), [(3, 3), (3, 2)]),
    "triangular_solve": (lambda L, b, a: tuple(L.triangular_solve(b, a, upper=False, transpose=True)),
                         [(3, 2), (3, 3)]),
    "cholesky": (lambda L, a: L.linalg.cholesky(_hermitian_pd(L, a)), [(3, 3)]),
    "cholesky_upper": (lambda L, a: L.linalg.cholesky(_hermitian_pd(L, a), upper=True), [(3, 3)]),
    "cholesky_solve": (lambda L, b, a: L.cholesky_solve(b, L.linalg.cholesky(_hermitian_pd(L, a))), [(3, 2), (3, 3)]),
    "cholesky_inverse": (lambda L, a: L.cholesky_inverse(L.linalg.cholesky(_hermitian_pd(L, a)), upper=False),
                         [(3, 3)]),
    "qr_tall": (lambda L, a: tuple(L.linalg.qr(a)), [(4, 3)]),
    "qr_wide": (lambda L, a: tuple(L.linalg.qr(a)), [(2, 4)]),
    "svd": (lambda L, a: (lambda u, s, vh: (u.abs(), s, vh.abs()))(*L.linalg.svd(a, full_matrices=False)), [(4, 3)]),
    "svd_wide_low_rank_product": (lambda L, a: (lambda u, s, vh: (u[..., :2] * s[..., :2]) @ vh[..., :2, :])(
        *L.linalg.svd(a, full_matrices=False)), [(3, 5)]),
    "torch_svd_v": (lambda L, a: (lambda u, s, v: (u * s) @ v.mH)(*L.svd(a)), [(3, 3)]),
    "svdvals_nuclear_spectral_cond": (lambda L, a: (L.linalg.svdvals(a), L.linalg.matrix_norm(a, "nuc"),
                                                     L.linalg.matrix_norm(a, 2), L.linalg.cond(a)), [(3, 4)]),
    "eigh": (lambda L, a: (lambda w, v: (w, v.abs()))(*L.linalg.eigh(a + a.mH)), [(3, 3)]),
    "pinv": (lambda L, a: L.linalg.pinv(a), [(4, 3)]),
    "pinv_hermitian": (lambda L, a: L.linalg.pinv(_hermitian_pd(L, a), hermitian=True), [(3, 3)]),
    "lstsq": (lambda L, a, b: L.linalg.lstsq(a, b, driver="gelsd")[:2], [(4, 3), (4, 2)]),
    "lu": (lambda L, a: tuple(L.linalg.lu(a)[1:]), [(4, 3)]),
    "lu_factor_and_solve": (lambda L, a, b: (lambda lu, piv: (lu, L.linalg.lu_solve(lu, piv, b, adjoint=True),
                                                              L.linalg.lu_solve(lu, piv, b.mT, left=False)))(
        *L.linalg.lu_factor(a)), [(3, 3), (3, 2)]),
    "matrix_power": (lambda L, a: L.linalg.matrix_power(a, -2), [(3, 3)]),
    "matrix_exp": (lambda L, a: L.linalg.matrix_exp(a), [(3, 3)]),
}


@pytest.mark.filterwarnings("ignore:torch.triangular_solve is deprecated")
@pytest.mark.parametrize("name", sorted(LINALG_CASES))
def test_complex_linalg_values_and_gradients_match_torch(name):
    f, shapes = LINALG_CASES[name]
    arrays = [_complex(shape, seed) for seed, shape in enumerate(shapes)]
    _same_gradients(lambda *t: f(chainrule, *t), lambda *t: f(torch, *t), arrays, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ["inv", "slogdet", "cholesky_upper", "cholesky_solve", "qr_wide", "svd", "eigh",
                                  "pinv", "lstsq", "lu"])
def test_complex_linalg_gradcheck(name):
    f, shapes = LINALG_CASES[name]
    inputs = tuple(chainrule.tensor(_complex(shape, seed), requires_grad=True) for seed, shape in enumerate(shapes))
    assert gradcheck(lambda *t: f(chainrule, *t), inputs)


def test_complex_rules_differentiate_again():
    # the rules are written in chainrule ops, conjugate_rule included: create_graph records them
    a = chainrule.tensor(_complex((2, 2), 0), requires_grad=True)
    assert gradgradcheck(chainrule.linalg.inv, (a,))
    x, w = (chainrule.tensor(_complex(s, i), requires_grad=True) for i, s in enumerate([(1, 1, 3), (1, 1, 2)]))
    assert gradgradcheck(lambda x, w: chainrule.nn.functional.conv1d(x, w), (x, w))


def test_complex_lu_pivots_on_lapacks_magnitude():
    # LAPACK's izamax ranks |Re| + |Im|: 2+2j (4) outranks 3 (3), though |2+2j| < 3
    a = np.array([[3, 1], [2 + 2j, 5]], np.complex128)
    ours, theirs = chainrule.linalg.lu_factor(chainrule.tensor(a)), torch.linalg.lu_factor(torch.tensor(a))
    assert ours.pivots.tolist() == theirs.pivots.tolist() == [2, 2]
    _close(ours.LU, theirs.LU)


def test_complex_results_have_torch_real_dtypes():
    a = chainrule.tensor(_complex((3, 3), 0, np.complex64))
    assert chainrule.linalg.svdvals(a).dtype == chainrule.float32
    assert chainrule.linalg.slogdet(a).logabsdet.dtype == chainrule.float32
    assert chainrule.linalg.slogdet(a).sign.dtype == chainrule.complex64
    assert chainrule.linalg.cond(a).dtype == chainrule.float32
    assert chainrule.logdet(a).dtype == chainrule.complex64


def test_complex_householder_product_and_ormqr_conjugate_the_reflectors():
    # Hᵢ = I - τᵢ vᵢ vᵢᴴ: the Q of geqrf's complex reflectors is unitary
    a = _complex((4, 3), 0)
    packed, tau = torch.geqrf(torch.tensor(a))
    f = lambda L, p, t: L.linalg.householder_product(p, t)  # noqa: E731
    _same_gradients(lambda p, t: f(chainrule, p, t), lambda p, t: f(torch, p, t),
                    [packed.numpy(), tau.numpy()])
    c = _complex((4, 2), 1)
    _close(chainrule.ormqr(chainrule.tensor(packed.numpy()), chainrule.tensor(tau.numpy()), chainrule.tensor(c),
                           transpose=True),
           torch.ormqr(packed, tau, torch.tensor(c), transpose=True))


@pytest.mark.parametrize("hermitian", [False, True])
def test_complex_ldl_factor_pivots_as_lapack(hermitian):
    # a small diagonal makes Bunch-Kaufman swap rows and take 2x2 blocks; zhetf2 conjugates what it
    # reflects, zsytf2 does not, and both rank entries by |Re| + |Im|
    for seed in range(4):
        a = _complex((5, 5), seed)
        a = a + a.conj().T if hermitian else a + a.T
        a[np.arange(5), np.arange(5)] *= 0.01
        ours = chainrule.linalg.ldl_factor_ex(chainrule.tensor(a), hermitian=hermitian)
        theirs = torch.linalg.ldl_factor_ex(torch.tensor(a), hermitian=hermitian)
        assert ours.pivots.tolist() == theirs.pivots.tolist()
        _close(ours.LD, theirs.LD)


@pytest.mark.parametrize("hermitian", [False, True])
def test_complex_ldl_solve_of_torchs_factor(hermitian):
    # torch's LDLᴴ (hermitian) or complex-symmetric LDLᵀ factor, solved by chainrule (zhetrs / zsytrs)
    a = _complex((4, 4), 2)
    a = a + a.conj().T if hermitian else a + a.T
    LD, pivots = torch.linalg.ldl_factor(torch.tensor(a), hermitian=hermitian)
    b = _complex((4, 2), 3)
    ours = chainrule.linalg.ldl_solve(chainrule.tensor(LD.numpy()), chainrule.tensor(pivots.numpy()),
                                      chainrule.tensor(b), hermitian=hermitian)
    _close(ours, torch.linalg.ldl_solve(LD, pivots, torch.tensor(b), hermitian=hermitian))


def test_complex_renorm_scales_slices_by_their_real_norms():
    _same_gradients(lambda a: chainrule.renorm(a, 2, 0, 1.5), lambda a: torch.renorm(a, 2, 0, 1.5),
                    [_complex((3, 4), 5)])


def test_complex_conv_module_initialises_and_trains_as_torch():
    # nn.init.uniform_ draws a complex tensor's real and imaginary parts, as Tensor.uniform_ does
    torch.manual_seed(0)
    chainrule.manual_seed(0)
    theirs = torch.nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular", dtype=torch.complex64)
    ours = chainrule.nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular", dtype=chainrule.complex64)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    x = _complex((1, 2, 5, 5), 6, np.complex64)
    ours(chainrule.tensor(x)).abs().sum().backward()
    theirs(torch.tensor(x)).abs().sum().backward()
    _close(ours.weight.grad, theirs.weight.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 3), (5, 7)])  # below and above torch's 16-value Box-Muller blocks
def test_complex_normal_draws_are_torchs(shape):
    # torch fills view_as_real with N(mean, std²/2); randn and nn.init's normal initialisers with it
    draws = {}
    for lib in (chainrule, torch):
        lib.manual_seed(0)
        weight = lib.nn.init.xavier_normal_(lib.empty(*shape, dtype=lib.complex64))
        shifted = lib.empty(*shape, dtype=lib.complex128).mT.normal_(0.5, 2.0)
        draws[lib] = (weight, shifted, lib.randn(*shape, dtype=lib.complex64), lib.rand(2))
    for ours, theirs in zip(draws[chainrule], draws[torch]):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def _keyword_samples(lib):
    """Positional arguments for each function, built alike in both libraries from the same numbers."""
    spd = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])
    A, B, v = lib.tensor(spd), lib.tensor(spd[:, :2].copy()), lib.tensor(spd[0].copy())
    LU, pivots = lib.linalg.lu_factor(A)
    LD, ldl_pivots = lib.linalg.ldl_factor(A)
    return {
        "linalg.cholesky": [A], "linalg.cholesky_ex": [A], "linalg.cond": [A], "linalg.cross": [v, v],
        "linalg.det": [A], "linalg.diagonal": [A], "linalg.eig": [A], "linalg.eigh": [A], "linalg.eigvals": [A],
        "linalg.eigvalsh": [A], "linalg.householder_product": [A, v[:2]], "linalg.inv": [A], "linalg.inv_ex": [A],
        "linalg.ldl_factor": [A], "linalg.ldl_factor_ex": [A], "linalg.ldl_solve": [LD, ldl_pivots, B],
        "linalg.lstsq": [A, B], "linalg.lu": [A], "linalg.lu_factor": [A], "linalg.lu_factor_ex": [A],
        "linalg.lu_solve": [LU, pivots, B], "linalg.matmul": [A, B], "linalg.matrix_exp": [A],
        "linalg.matrix_norm": [A], "linalg.matrix_power": [A, 2], "linalg.matrix_rank": [A],
        "linalg.multi_dot": [[A, B]], "linalg.norm": [A], "linalg.pinv": [A], "linalg.qr": [A],
        "linalg.slogdet": [A], "linalg.solve": [A, B], "linalg.solve_ex": [A, B], "linalg.svd": [A],
        "linalg.svdvals": [A], "linalg.tensorinv": [A.reshape(3, 3)], "linalg.tensorsolve": [A, v],
        "linalg.vander": [v], "linalg.vecdot": [v, v], "linalg.vector_norm": [v],
        "det": [A], "slogdet": [A], "logdet": [A], "lu_solve": [B, LU, pivots], "triangular_solve": [B, A],
    }


# every keyword spelling either library's signatures used for a function's tensors
_KEYWORD_SPELLINGS = ["A", "B", "b", "input", "other", "x", "y", "LU", "LD", "pivots", "tau", "n", "tensors",
                      "LU_data", "LU_pivots", "self"]


def _outcome(f, positional, keywords):
    try:
        result = f(*positional, **keywords)
    except Exception as error:  # noqa: BLE001 - the exception type is the outcome compared
        return type(error).__name__
    first = result[0] if isinstance(result, tuple) else result
    return np.asarray(first.detach().numpy() if hasattr(first, "detach") else first, dtype=complex).round(6).tolist()


def test_linalg_functions_take_the_keyword_names_torchs_bindings_take():
    # torch's Python bindings name most linalg tensors `input` (their schema says self) and refuse `A=`,
    # while torch.linalg.det/solve/lu_solve keep A/B; torch.det and torch.slogdet take input=
    ours, theirs = _keyword_samples(chainrule), _keyword_samples(torch)
    ours["linalg.solve_triangular"], theirs["linalg.solve_triangular"] = ours["linalg.solve"], theirs["linalg.solve"]
    mismatches = []
    for name in ours:
        f_ours, f_theirs = chainrule, torch
        for part in name.split("."):
            f_ours, f_theirs = getattr(f_ours, part), getattr(f_theirs, part)
        # the last argument by keyword, the earlier ones positional
        *leading_ours, last_ours = ours[name]
        *leading_theirs, last_theirs = theirs[name]
        extra = {"upper": True} if name == "linalg.solve_triangular" else {}
        for spelling in _KEYWORD_SPELLINGS:
            outcome = (_outcome(f_ours, leading_ours, {spelling: last_ours, **extra}),
                       _outcome(f_theirs, leading_theirs, {spelling: last_theirs, **extra}))
            # torch's argument parser also takes NumPy's x for any `input` (torch.abs(x=t) runs);
            # chainrule takes no NumPy aliases anywhere yet: a project-wide gap, not this test's
            numpy_alias = spelling == "x" and _outcome(f_ours, leading_ours, {"input": last_ours, **extra}) != "TypeError"
            if outcome[0] != outcome[1] and not numpy_alias:
                mismatches.append((name, spelling, outcome))
    assert not mismatches, mismatches[:5]


@pytest.mark.parametrize("case", ["eigh_vectors", "svd_u", "svd_vh", "svd_full_u"])
def test_a_loss_on_the_phase_of_complex_vectors_is_refused_as_torch_refuses_it(case):
    # Re(V) turns with V's arbitrary phase e^{iφ}: torch's backward refuses it rather than return
    # one gauge's gradient; |V| and the values are phase-free and keep their gradients
    hermitian = _complex((3, 3), 11)
    hermitian = hermitian + hermitian.conj().T
    tall = _complex((3, 2), 12)

    def phase_loss(lib, array):
        a = lib.tensor(array, requires_grad=True)
        if case == "eigh_vectors":
            return lib.linalg.eigh(a)[1].real.sum()
        U, _, Vh = lib.linalg.svd(a, full_matrices=case == "svd_full_u")
        return (Vh if case == "svd_vh" else U).real.sum()

    array = hermitian if case == "eigh_vectors" else tall
    messages = []
    for lib in (chainrule, torch):
        with pytest.raises(RuntimeError) as refused:
            phase_loss(lib, array).backward()
        messages.append(str(refused.value))
    assert messages[0] == messages[1]
    assert "e^{i phi}" in messages[0]


def test_a_phase_free_loss_of_complex_vectors_keeps_torchs_gradient():
    hermitian = _complex((3, 3), 13)
    _same_gradients(lambda a: (lambda out: (out[0], out[1].abs()))(chainrule.linalg.eigh(a + a.mH)),
                    lambda a: (lambda out: (out[0], out[1].abs()))(torch.linalg.eigh(a + a.mH)), [hermitian])
    _same_gradients(lambda a: (lambda out: (out[0].abs(), out[1], out[2].abs()))(chainrule.linalg.svd(a)),
                    lambda a: (lambda out: (out[0].abs(), out[1], out[2].abs()))(torch.linalg.svd(a)),
                    [_complex((3, 2), 14)])
