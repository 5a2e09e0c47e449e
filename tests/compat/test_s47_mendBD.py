"""Lane mendBD (session 47): small value gaps against torch, each proven on the same call."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _pair(name):
    """(torch's, chainrule's) function named name in torch.nn.functional / torch."""
    if name in ("erf",):
        return getattr(torch, name), getattr(chainrule, name)
    return getattr(torch.nn.functional, name), getattr(chainrule.nn.functional, name)


# ---------------------------------------------------------------- signed zeros
# torch's elu family takes x <= 0 to alpha·expm1(x), and expm1(-0.0) = -0.0, expm1(+0.0) = +0.0; its
# erf keeps the sign of zero too
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["elu", "selu", "celu", "erf"])
def test_signed_zero_kept_as_torch(name, dtype):
    values = [-0.0, 0.0, -1.5, 2.0]
    torch_fn, fn = _pair(name)
    expected = torch_fn(torch.tensor(values, dtype=getattr(torch, dtype))).numpy()
    got = fn(chainrule.tensor(values, dtype=getattr(chainrule, dtype))).numpy()
    assert np.signbit(expected[:2]).tolist() == [True, False]
    assert np.signbit(got).tolist() == np.signbit(expected).tolist()
    np.testing.assert_allclose(got, expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["elu", "selu", "celu"])
def test_elu_family_gradient_at_signed_zero(name, dtype):
    values = [-0.0, 0.0]
    tx = torch.tensor(values, dtype=getattr(torch, dtype), requires_grad=True)
    cx = chainrule.tensor(values, dtype=getattr(chainrule, dtype), requires_grad=True)
    torch_fn, fn = _pair(name)
    torch_fn(tx).sum().backward()
    fn(cx).sum().backward()
    np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), rtol=1e-6)
