"""Session 21: differences earlier trials left open (hostile arguments, dtypes, nested, signatures).

Each test runs the same call on chainrule and on torch 2.13 where torch is cheap to call (torch's
meta kernels are not: their first call imports its meta registrations, seconds, so meta results
are checked against the shapes and dtypes of torch's CPU results).
"""

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
