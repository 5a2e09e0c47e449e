"""Session 21: differences earlier trials left open (hostile arguments, dtypes, nested, signatures).

Each test runs the same call on chainrule and on torch 2.13 where torch is cheap to call (torch's
meta kernels are not: their first call imports its meta registrations, seconds, so meta results
are checked against the shapes and dtypes of torch's CPU results).
"""

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- mvlgamma's p
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("p", [1, 3, 40])
def test_mvlgamma_and_its_gradient_agree_with_torch(dtype, p):
    values = np.random.default_rng(p).uniform(p, p + 4, (4, 3)).astype(dtype)
    theirs = torch.tensor(values, requires_grad=True)
    ours = chainrule.tensor(values, requires_grad=True)
    torch.mvlgamma(theirs, p).sum().backward()
    result = chainrule.mvlgamma(ours, p)
    result.sum().backward()
    assert result.dtype == getattr(chainrule, dtype)
    expected = torch.mvlgamma(theirs.detach(), p).numpy()
    np.testing.assert_allclose(result.detach().numpy(), expected, rtol=2e-6 if dtype == "float32" else 1e-13)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=2e-6 if dtype == "float32" else 1e-12)


def test_mvlgamma_of_a_p_beyond_memory_fails_at_once_as_torch():
    # torch adds the p shifts to the input as one (..., p) tensor: p = 2**31 asks 24 GiB of its
    # allocator and fails (RuntimeError); chainrule looped 2**31 times (a hang)
    x = chainrule.rand(3) + 1
    with pytest.raises(RuntimeError, match="mvlgamma"):
        chainrule.mvlgamma(x, 2**60)


def test_special_functions_on_meta_give_meta_results():
    a = chainrule.ones(2, 3, device="meta")
    results = [chainrule.lgamma(a), chainrule.mvlgamma(a, 3), chainrule.special.i1e(a),
               chainrule.special.modified_bessel_i0(a), chainrule.special.airy_ai(a),
               chainrule.special.chebyshev_polynomial_t(a, a), chainrule.polygamma(2, a),
               chainrule.special.zeta(a, a)]
    for result in results:
        assert result.device.type == "meta" and tuple(result.shape) == (2, 3) and result.dtype == chainrule.float32


# ---------------------------------------------------------------- torch.linalg on meta
def _meta_like(t):
    return chainrule.empty(tuple(t.shape), dtype=getattr(chainrule, str(t.dtype).split(".")[-1]), device="meta")


def _as_tuple(result):
    return tuple(result) if isinstance(result, tuple) else (result,)


@pytest.mark.parametrize("name, call", [
    ("cholesky", lambda L, A, B: L.linalg.cholesky(A)),
    ("cholesky_ex", lambda L, A, B: L.linalg.cholesky_ex(A)),
    ("eig", lambda L, A, B: L.linalg.eig(A)),
    ("eigvals", lambda L, A, B: L.linalg.eigvals(A)),
    ("inv_ex", lambda L, A, B: L.linalg.inv_ex(A)),
    ("solve_ex", lambda L, A, B: L.linalg.solve_ex(A, B)),
    ("ldl_factor", lambda L, A, B: L.linalg.ldl_factor(A)),
    ("ldl_factor_ex", lambda L, A, B: L.linalg.ldl_factor_ex(A)),
    ("lu_factor", lambda L, A, B: L.linalg.lu_factor(A)),
    ("lu_factor_ex", lambda L, A, B: L.linalg.lu_factor_ex(A)),
    ("matrix_exp", lambda L, A, B: L.linalg.matrix_exp(A)),
    ("cholesky_inverse", lambda L, A, B: L.cholesky_inverse(A)),
])
def test_linalg_on_meta_gives_torchs_shapes_and_dtypes(name, call):
    # chainrule's checks of the values (NaN, singular, zero pivots) read a meta result with .item()
    A = torch.eye(3, dtype=torch.float64).expand(2, 3, 3) * 2
    B = torch.ones(2, 3, 4, dtype=torch.float64)
    expected = _as_tuple(call(torch, A, B))
    got = _as_tuple(call(chainrule, _meta_like(A), _meta_like(B)))
    assert len(got) == len(expected)
    for want, have in zip(expected, got):
        assert have.device.type == "meta" and tuple(have.shape) == tuple(want.shape)
        assert str(have.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]


def test_ldl_solve_on_meta_gives_torchs_shape():
    LD, pivots = torch.linalg.ldl_factor(torch.eye(3, dtype=torch.float64) * 2)
    B = torch.ones(3, 2, dtype=torch.float64)
    expected = torch.linalg.ldl_solve(LD, pivots, B)
    got = chainrule.linalg.ldl_solve(_meta_like(LD), _meta_like(pivots), _meta_like(B))
    assert got.device.type == "meta" and tuple(got.shape) == tuple(expected.shape) and got.dtype == chainrule.float64


# ---------------------------------------------------------------- torch.nested
def _jagged_with_holes(lib):
    values = lib.tensor(np.arange(18, dtype=np.int64).reshape(9, 2))
    offsets = lib.tensor(np.array([0, 2, 6, 9], dtype=np.int64))
    return lib.nested.nested_tensor_from_jagged(values, offsets, lib.tensor(np.array([1, 3, 2], dtype=np.int64)))


@pytest.mark.parametrize("op", ["bitwise_and", "gcd", "add", "mul"])
def test_rows_broadcast_over_an_njt_with_holes_are_refused_as_by_torch(op):
    # torch 2.13 makes the (B, 1, ...) operand an NJT on the offsets alone, of another raggedness
    # than the one with holes, and refuses the pair with this RuntimeError (its NJT is not called
    # here: its first use costs seconds); chainrule computed (add, mul) or refused the float dtype
    nested = _jagged_with_holes(chainrule)
    rows = chainrule.ones(3, 1, 2, dtype=chainrule.int64)
    for args in ((nested, rows), (rows, nested)):
        with pytest.raises(RuntimeError, match=rf"cannot call binary pointwise function {op}\.Tensor"):
            getattr(chainrule, op)(*args)
    holes_free = chainrule.nested.nested_tensor_from_jagged(nested.values(), nested.offsets())
    assert getattr(chainrule, op)(holes_free, rows).unbind()[0].shape == (2, 2)


# ---------------------------------------------------------------- complex logcumsumexp
_LOGCUMSUMEXP_INPUT = [[0.5 + 2j, -1 + 3j, 2 - 2.5j, complex(-np.inf, 0)], [1.5 - 0.5j, 3 + 3j, -2 + 1j, 0.25 - 3j]]
_LOGCUMSUMEXP_COTANGENT = [[1 - 1j, 0j, 0.5 + 2j, -1 + 0.5j], [2 + 0j, -0.5 - 0.5j, 1 + 1j, 0.25j]]
# torch 2.13's values and gradients (its first complex backward costs seconds, so they are written out)
_LOGCUMSUMEXP_TORCH = {
    0: ([[0.5 + 2j, -1 + 3j, 2 - 2.5j, complex(-np.inf, 0)],
         [1.197328130725 - 0.19741622431j, 3.018149927918 + 3j, 1.982720766779 - 2.506536846108j, 0.25 - 3j]],
        [[0.416036451716 - 1.806634698851j, -0.008993104981 - 0.008993104981j, 1.524058377201 + 3.010756913329j,
          complex(np.nan, np.nan)],
         [2.583963548284 + 0.806634698851j, -0.491006895019 - 0.491006895019j, -0.024058377201 - 0.010756913329j,
          0.25j]]),
    1: ([[0.5 + 2j, 0.627670811844 + 2.166015050149j, 2.019978314165 - 2.750856835798j,
          2.019978314165 - 2.750856835798j],
         [1.5 - 0.5j, 2.770474966154 + 3.098624047829j, 2.766223685969 + 3.091270035602j,
          2.842620851388 + 3.105542340611j]],
        [[0.449407197317 - 1.088248700003j, -0.08294758417 + 0.092738894929j, 0.133540386852 + 2.495509805074j, 0j],
         [1.961888762937 - 0.246912304509j, 0.548120513421 + 0.976353424561j, -0.013314801885 + 0.002147335888j,
          0.003305525526 + 0.01841154406j]]),
}


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("dim", [0, 1])
def test_complex_logcumsumexp_and_its_gradient_are_torchs(dtype, dim):
    # chainrule refused complex input ("logcumsumexp_out_cpu" not implemented); torch scans with
    # its complex log-add-exp (imaginary parts unwrapped) and has a complex gradient
    values = chainrule.tensor(np.array(_LOGCUMSUMEXP_INPUT, dtype=dtype), requires_grad=True)
    result = chainrule.logcumsumexp(values, dim)
    result.backward(chainrule.tensor(np.array(_LOGCUMSUMEXP_COTANGENT, dtype=dtype)))
    expected_values, expected_gradient = _LOGCUMSUMEXP_TORCH[dim]
    assert result.dtype == getattr(chainrule, dtype)
    tolerance = 1e-5 if dtype == "complex64" else 1e-11
    np.testing.assert_allclose(result.detach().numpy(), np.array(expected_values), rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(values.grad.resolve_conj().numpy(), np.array(expected_gradient), rtol=tolerance,
                               atol=tolerance)


# ---------------------------------------------------------------- signatures
@pytest.mark.parametrize("win_length", [5, 8])
@pytest.mark.parametrize("align", [None, False, True])
def test_stft_align_to_window_frames_as_torch(win_length, align):
    # torch 2.13's stft(align_to_window=): frames start where a window shorter than n_fft starts
    rng = np.random.default_rng(win_length)
    signal, window = rng.standard_normal((2, 37)).astype(np.float32), rng.standard_normal(win_length).astype(np.float32)
    expected = torch.stft(torch.tensor(signal), 8, hop_length=3, win_length=win_length, window=torch.tensor(window),
                          center=False, return_complex=True, align_to_window=align)
    result = chainrule.stft(chainrule.tensor(signal), 8, 3, win_length, chainrule.tensor(window), False, "reflect",
                            False, None, True, align)
    assert tuple(result.shape) == tuple(expected.shape)
    np.testing.assert_allclose(result.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_stft_align_to_window_with_center_is_refused_as_by_torch():
    for lib in (torch, chainrule):
        with pytest.raises(RuntimeError, match="align_to_window should only be set when center = false"):
            lib.ones(20).stft(8, return_complex=True, align_to_window=False)


def test_pin_memory_takes_torchs_deprecated_device():
    """Without an accelerator torch's pin_memory raises (session 29: chainrule returned self);
    the deprecated ``device`` is warned about before that, as torch does."""
    x = chainrule.ones(2)
    if chainrule.cuda.is_available():
        assert x.pin_memory() is x
        return
    with pytest.raises(RuntimeError, match="Cannot access accelerator device when none is available"):
        x.pin_memory()
    with pytest.warns(DeprecationWarning, match="The argument 'device' of Tensor.pin_memory"):
        with pytest.raises(RuntimeError, match="CPU device type not an accelerator"):
            x.pin_memory("cpu")


# ---------------------------------------------------------------- hostile arguments: torch's classes and texts
@pytest.mark.parametrize("call", [
    lambda lib, a: lib.cholesky(a.long()),
    lambda lib, a: lib.cholesky_inverse(a.int()),
    lambda lib, a: lib.linalg.eigh(a.long()),
    lambda lib, a: lib.linalg.eigvalsh(a.bool()),
    lambda lib, a: lib.linalg.lu_factor(a.long()),
    lambda lib, a: lib.linalg.lu_factor_ex(a.long()),
    lambda lib, a: lib.linalg.lu(a.long()),
    lambda lib, a: lib.linalg.lu_factor(None),
    lambda lib, a: lib.linalg.lu_factor_ex("A"),
    lambda lib, a: lib.linalg.lu_factor(a, pivot=None),
    lambda lib, a: lib.linalg.eigh(a, UPLO=None),
    lambda lib, a: lib.linalg.eigvalsh(a, UPLO=1),
    lambda lib, a: lib.linalg.solve_ex(a, lib.tensor(1.0)),
    lambda lib, a: lib.linalg.solve(a, lib.tensor(1.0), left=False),
    lambda lib, a: lib.linalg.solve(a, lib.ones(3, 2, dtype=lib.float64)),
    lambda lib, a: lib.linalg.solve_ex(a.double(), lib.ones(3, dtype=lib.int64)),
    lambda lib, a: lib.linalg.cholesky(a, upper=None),
    lambda lib, a: lib.linalg.cholesky_ex(a, upper="U"),
    lambda lib, a: lib.cholesky(a, upper=[]),
    lambda lib, a: lib.linalg.ldl_factor(a, hermitian=None),
    lambda lib, a: lib.linalg.ldl_factor_ex(a, hermitian=1),
], ids=["cholesky-long", "cholesky_inverse-int", "eigh-long", "eigvalsh-bool", "lu_factor-long",
        "lu_factor_ex-long", "lu-long", "lu_factor-None", "lu_factor_ex-str", "lu_factor-pivot-None",
        "eigh-UPLO-None", "eigvalsh-UPLO-int", "solve_ex-0d-B", "solve-right-0d-B", "solve-float64-B",
        "solve_ex-int64-B", "cholesky-upper-None", "cholesky_ex-upper-str", "torch.cholesky-upper-list",
        "ldl_factor-hermitian-None", "ldl_factor_ex-hermitian-int"])
def test_linalg_refusals_have_torchs_class_and_text(call):
    errors = []
    for lib in (torch, chainrule):
        with warnings.catch_warnings(), pytest.raises(Exception) as raised:
            warnings.simplefilter("ignore")  # torch.cholesky's deprecation
            call(lib, lib.eye(3))
        errors.append(raised.value)
    expected, got = errors
    assert type(got) is type(expected) and str(got) == str(expected).split(" (Triggered internally")[0]


def _log_probs(lib):
    return lib.tensor(np.log(np.full((5, 2, 4), 0.25, dtype=np.float32)))


@pytest.mark.parametrize("call", [
    lambda lib: lib.tensor_split(lib.ones(6), "ab"),
    lambda lib: lib.tensor_split(lib.ones(6), ["a"]),
    lambda lib: lib.tensor_split(lib.ones(6), True),
    lambda lib: lib.tensor_split(lib.ones(6), lib.tensor([1.0])),
    lambda lib: lib.tensor_split(lib.ones(6), lib.tensor([[1]])),
    lambda lib: lib.hsplit(lib.ones(6, 6), ["a"]),
    lambda lib: lib.hsplit(lib.ones(6, 6), 2**63),
    lambda lib: lib.vsplit(lib.ones(6, 6), -2**63 - 1),
    lambda lib: lib.dsplit(lib.ones(2, 2, 6), lib.tensor([1, 3])),
    lambda lib: lib.nn.functional.normalize(lib.ones(3, 4), dim=2**63),
    lambda lib: lib.ones(3, 4).norm(2, -2**63 - 1),
    lambda lib: lib.nn.functional.unfold(lib.tensor(1.0), 2),
    lambda lib: lib.nn.functional.unfold(lib.ones(3, 3), 2),
    lambda lib: lib.nn.functional.ctc_loss(_log_probs(lib).to(lib.complex64), lib.ones(2, 3, dtype=lib.int64), [5, 5], [2, 2]),
    lambda lib: lib.nn.functional.ctc_loss(_log_probs(lib).long(), lib.ones(2, 3, dtype=lib.int64), [5, 5], [2, 2]),
    lambda lib: lib.nn.functional.ctc_loss(lib.tensor(1.0), lib.ones(2, 3, dtype=lib.int64), [5, 5], [2, 2]),
    lambda lib: lib.nn.functional.ctc_loss(lib.ones(5), lib.ones(2, 3, dtype=lib.int64), [5, 5], [2, 2]),
    lambda lib: lib.nn.functional.ctc_loss(_log_probs(lib), lib.zeros(0, 3, dtype=lib.int64), [5, 5], [2, 2]),
    lambda lib: lib.nn.functional.grid_sample(lib.ones(1, 1, 3, 3, dtype=lib.int64), lib.zeros(1, 2, 2, 2),
                                              align_corners=False),
    lambda lib: lib.grid_sampler_2d(lib.ones(1, 1, 3, 3, dtype=lib.bool), lib.zeros(1, 2, 2, 2), 0, 0, False),
    lambda lib: lib.grid_sampler_3d(lib.ones(1, 1, 3, 3, 3, dtype=lib.complex64), lib.zeros(1, 2, 2, 2, 3), 0, 0, False),
], ids=["tensor_split-str", "tensor_split-list-of-str", "tensor_split-bool", "tensor_split-float-tensor",
        "tensor_split-2d-tensor", "hsplit-list-of-str", "hsplit-2**63", "vsplit-below-int64", "dsplit-1d-tensor",
        "normalize-dim-2**63", "norm-dim-below-int64", "unfold-0d", "unfold-2d", "ctc-complex", "ctc-long",
        "ctc-0d", "ctc-1d", "ctc-empty-targets", "grid_sample-long", "grid_sampler_2d-bool", "grid_sampler_3d-complex"])
def test_argument_refusals_have_torchs_class(call):
    # the class always; the text where torch's is not its overload parser's list of signatures
    errors = []
    for lib in (torch, chainrule):
        with pytest.raises(Exception) as raised:
            call(lib)
        errors.append(raised.value)
    expected, got = errors
    assert type(got) is type(expected)
    if "invalid combination" not in str(expected) and "must be tuple of ints" not in str(got):
        # (torch's unpacking error carries a C++ backtrace after its text, and no closing quote)
        assert str(got).startswith(str(expected).split("\nException raised from")[0])
