"""Forward-mode AD mends found by running torch's op_db through dual tensors
(tools/torch_opinfo_fwdad_trial.py): each tangent compared with torch 2.13's and with central
differences in float64."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
import chainrule.autograd.forward_ad as fwAD

torch = pytest.importorskip("torch")


def _tangent(lib, function, primals, tangents):
    """``function`` on dual tensors of ``lib``: (outputs, their tangents) as NumPy arrays."""
    fwd = lib.autograd.forward_ad
    with fwd.dual_level():
        duals = [fwd.make_dual(lib.from_numpy(p.copy()), lib.from_numpy(t.copy())) for p, t in zip(primals, tangents)]
        out = function(*duals)
        outs = out if isinstance(out, tuple) else (out,)
        unpacked = [fwd.unpack_dual(o) for o in outs]
        return ([u.primal.detach().numpy().copy() for u in unpacked],
                [None if u.tangent is None else u.tangent.detach().numpy().copy() for u in unpacked])


def _central_difference(function, primals, tangents, h=1e-6):
    """(f(x + h t) - f(x - h t)) / 2h of chainrule's ``function``, per output."""
    def at(step):
        with chainrule.no_grad():
            out = function(*(chainrule.from_numpy(p + step * t) for p, t in zip(primals, tangents)))
        return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]

    return [(a - b) / (2 * h) for a, b in zip(at(h), at(-h))]


# ---------------------------------------------------------------- held operators

@pytest.mark.parametrize("name", ["__radd__", "__rmul__", "__add__", "__mul__", "__sub__", "__rsub__", "__truediv__"])
@pytest.mark.parametrize("other", ["number", "tensor"])
def test_an_operator_taken_before_the_level_carries_the_tangent(name, other):
    # torch's op_db calls Tensor.__radd__ held in a variable: taken before the level was entered,
    # it was the unrecorded fast path, and gave no tangent
    rng = np.random.default_rng(0)
    x, tx = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    y, ty = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    results = {}
    for lib in (torch, chainrule):
        held = getattr(lib.Tensor, name)

        def program(a, b, held=held):
            return held(a, 2.5) if other == "number" else held(a, b)

        results[lib.__name__] = _tangent(lib, program, [x, y], [tx, ty])
    (theirs,), (their_tangent,) = results["torch"]
    (ours,), (our_tangent,) = results["chainrule"]
    assert our_tangent is not None
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    np.testing.assert_allclose(our_tangent, their_tangent, rtol=1e-12)
    held = getattr(chainrule.Tensor, name)
    (difference,) = _central_difference(lambda a, b: held(a, 2.5) if other == "number" else held(a, b),
                                        [x, y], [tx, ty])
    np.testing.assert_allclose(our_tangent, difference, rtol=1e-6, atol=1e-8)


def test_the_fast_operators_stay_unrecorded_outside_a_level():
    held = chainrule.Tensor.__radd__
    with fwAD.dual_level():
        pass
    out = held(chainrule.ones(2), 1.0)
    assert out.grad_fn is None and out.tolist() == [2.0, 2.0]


# ---------------------------------------------------------------- eig, eigvals

_A = np.array([[0.9, -1.3, 0.4, 0.2],
               [1.1, 0.3, -0.7, 0.5],
               [-0.2, 0.8, 1.4, -0.6],
               [0.6, 0.1, -0.9, -1.2]])
_T = np.random.default_rng(1).standard_normal((4, 4))


def test_eigvals_of_a_dual_real_matrix_has_torch_tangent():
    # eigvals took LAPACK's eigenvalue-only path unless A required grad, dropping A's tangent
    (theirs,), (their_tangent,) = _tangent(torch, torch.linalg.eigvals, [_A], [_T])
    (ours,), (our_tangent,) = _tangent(chainrule, chainrule.linalg.eigvals, [_A], [_T])
    assert np.iscomplexobj(ours) and our_tangent is not None and np.iscomplexobj(our_tangent)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    np.testing.assert_allclose(our_tangent, their_tangent, rtol=1e-10, atol=1e-12)
    (difference,) = _central_difference(chainrule.linalg.eigvals, [_A], [_T])
    np.testing.assert_allclose(our_tangent, difference, rtol=1e-6, atol=1e-8)


def test_eig_tangents_of_values_and_vectors_match_torch():
    # eig's backward refuses a cotangent on which the loss would depend on each vector's phase;
    # the pushforward's all-ones cotangent is one, so forward AD raised where torch gives tangents
    def eig(lib):
        return lambda a: tuple(lib.linalg.eig(a))

    theirs, their_tangents = _tangent(torch, eig(torch), [_A], [_T])
    ours, our_tangents = _tangent(chainrule, eig(chainrule), [_A], [_T])
    # NumPy's LAPACK and torch's may pick another phase for a vector (here -1); the vector's
    # tangent turns with it (dV = V (E - diag Re(Vᴴ V E)) is linear in V's columns)
    phase = np.sum(theirs[1] * ours[1].conj(), axis=0)
    phase /= np.abs(phase)
    ours[1], our_tangents[1] = ours[1] * phase, our_tangents[1] * phase
    for mine, their in zip(ours + our_tangents, theirs + their_tangents):
        np.testing.assert_allclose(mine, their, rtol=1e-10, atol=1e-12)
    difference, _ = _central_difference(eig(chainrule), [_A], [_T])
    np.testing.assert_allclose(our_tangents[0], difference, rtol=1e-6, atol=1e-8)


def test_eig_under_func_jvp_matches_torch_func():
    primal, tangent = torch.from_numpy(_A), torch.from_numpy(_T)
    their_out, their_tangent = torch.func.jvp(lambda a: torch.linalg.eig(a).eigenvectors, (primal,), (tangent,))
    our_out, our_tangent = chainrule.func.jvp(lambda a: chainrule.linalg.eig(a).eigenvectors,
                                              (chainrule.from_numpy(_A.copy()),), (chainrule.from_numpy(_T.copy()),))
    phase = np.sum(their_out.numpy() * our_out.numpy().conj(), axis=0)
    phase /= np.abs(phase)  # each vector's phase as torch's LAPACK picks it (see above)
    np.testing.assert_allclose(our_out.numpy() * phase, their_out.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(our_tangent.numpy() * phase, their_tangent.numpy(), rtol=1e-10, atol=1e-12)


def test_eig_backward_still_refuses_a_phase_dependent_loss():
    a = chainrule.from_numpy(_A.copy()).requires_grad_()
    vectors = chainrule.linalg.eig(a).eigenvectors
    with pytest.raises(RuntimeError, match=r"linalg_eig_backward: The eigenvectors in the complex case"):
        vectors.sum().abs().backward()


# ---------------------------------------------------------------- holomorphic special functions

_Z = np.array([0.3 + 0.4j, -1.2 + 0.7j, 2.0 - 0.5j, 0.5 - 1.5j, -3.0 + 0.1j, -0.5 - 0.2j])
_DZ = np.array([1.0 - 0.5j, 0.2 + 0.3j, -0.7 + 1.0j, 1.0 + 1.0j, 0.3 + 0.0j, 1.0j])


@pytest.mark.parametrize("name", ["acosh", "asinh", "atanh", "sinc"])
def test_complex_special_functions_have_torchs_gradient_and_tangent(name):
    # their rules were written for real numbers: f'(z) where torch's convention takes conj(f'(z)),
    # and acosh's √(z²-1) is on another branch than torch's √(z-1)·√(z+1)
    their_input = torch.tensor(_Z, requires_grad=True)
    getattr(torch, name)(their_input).backward(torch.tensor(_DZ))
    our_input = chainrule.tensor(_Z, requires_grad=True)
    getattr(chainrule, name)(our_input).backward(chainrule.tensor(_DZ))
    np.testing.assert_allclose(our_input.grad.numpy(), their_input.grad.numpy(), rtol=1e-12, atol=1e-14)
    (_,), (their_tangent,) = _tangent(torch, getattr(torch, name), [_Z], [_DZ])
    (_,), (our_tangent,) = _tangent(chainrule, getattr(chainrule, name), [_Z], [_DZ])
    np.testing.assert_allclose(our_tangent, their_tangent, rtol=1e-12, atol=1e-14)
    (difference,) = _central_difference(getattr(chainrule, name), [_Z], [_DZ])
    np.testing.assert_allclose(our_tangent, difference, rtol=1e-6, atol=1e-8)
    assert chainrule.autograd.gradcheck(getattr(chainrule, name), (chainrule.tensor(_Z, requires_grad=True),))


def test_real_acosh_keeps_its_gradient_below_minus_one():
    x = chainrule.tensor([-2.0, 0.5, 2.0], dtype=chainrule.float64, requires_grad=True)
    chainrule.acosh(x).sum().backward()
    expected = torch.tensor([-2.0, 0.5, 2.0], dtype=torch.float64, requires_grad=True)
    torch.acosh(expected).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), expected.grad.numpy(), equal_nan=True)


# ---------------------------------------------------------------- istft's window

@pytest.mark.parametrize("dtype", ["float64", "complex128"])
def test_istft_window_gradient_and_tangent_include_the_envelope(dtype):
    # the output is divided by the overlap-added squared window; that envelope was detached, so a
    # window that requires grad (or carries a tangent) lost its part of the derivative
    rng = np.random.default_rng(0)
    window = rng.uniform(0.5, 1.5, 10).astype(dtype)
    onesided = dtype == "float64"
    if onesided:
        spectrum = rng.standard_normal((6, 5)) + 1j * rng.standard_normal((6, 5))
        spectrum[0] = spectrum[0].real
    else:
        window = window + 1j * rng.uniform(-0.3, 0.3, 10)
        spectrum = rng.standard_normal((10, 5)) + 1j * rng.standard_normal((10, 5))
    options = dict(n_fft=10, hop_length=3, center=True, onesided=onesided, return_complex=not onesided)
    window_tangent = rng.standard_normal(10).astype(dtype)

    def istft(lib):
        return lambda w: lib.istft(lib.tensor(spectrum), window=w, **options)

    found = {}
    for lib in (torch, chainrule):
        w = lib.tensor(window, requires_grad=True)
        out = istft(lib)(w)
        cotangent = np.random.default_rng(1).standard_normal(tuple(out.shape)).astype(str(out.dtype).split(".")[-1])
        (grad,) = lib.autograd.grad(out, [w], lib.tensor(cotangent))
        (_,), (tangent,) = _tangent(lib, istft(lib), [window], [window_tangent])
        found[lib.__name__] = (grad.numpy(), tangent)
    for ours, theirs in zip(found["chainrule"], found["torch"]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    (difference,) = _central_difference(istft(chainrule), [window], [window_tangent])
    np.testing.assert_allclose(found["chainrule"][1], difference, rtol=1e-6, atol=1e-8)
