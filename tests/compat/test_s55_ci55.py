"""Session 55, lead: fast-mode gradcheck pairs each output with its own finite differences when a
float output outside the graph comes before a differentiable one (found when CI's op registry
gradgradcheck went directional: copy_'s zero gradient for its destination shifted the pairing).
torch 2.13's fast mode has the same misalignment (pytorch/pytorch#77230; the fix proposed in #194222
drops those outputs' differences as chainrule now does): chainrule answers as torch's slow mode."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule


def _detached_first(lib):
    def fn(a, b):
        return a.detach() * 2, a * b.sin()
    return fn


@pytest.mark.parametrize("fast_mode", [False, True], ids=["element-wise", "fast"])
def test_gradcheck_skips_a_float_output_outside_the_graph_as_torch(fast_mode):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(55)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal(4)
    inputs = (torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True))
    assert torch.autograd.gradcheck(_detached_first(torch), inputs)  # torch's slow mode: the reference
    inputs = (chainrule.tensor(a, requires_grad=True), chainrule.tensor(b, requires_grad=True))
    assert chainrule.autograd.gradcheck(_detached_first(chainrule), inputs, fast_mode=fast_mode)


def test_fast_gradgradcheck_of_copy_into_a_broadcast_destination_passes_as_torchs_slow_mode():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(56)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal(4)
    for lib, fast_mode in ((torch, False), (chainrule, False), (chainrule, True)):
        inputs = (lib.tensor(a, requires_grad=True), lib.tensor(b, requires_grad=True))
        assert lib.autograd.gradgradcheck(lambda x, y: x.clone().copy_(y) * y, inputs, fast_mode=fast_mode)


def test_fast_gradcheck_still_catches_a_wrong_gradient_after_such_an_output():
    class WrongSin(chainrule.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.sin()

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * x.cos() * 1.5

    x = chainrule.tensor(np.linspace(-1.0, 1.0, 6), requires_grad=True)
    with pytest.raises(chainrule.autograd.GradcheckError, match="fast gradcheck"):
        chainrule.autograd.gradcheck(lambda t: (t.detach() + 1, WrongSin.apply(t)), (x,), fast_mode=True)


def test_two_gradients_summed_where_the_first_runs_backwards_are_torchs():
    """Integration of mendDC's fan-out sum in the first gradient's strides: cumsum's gradient (a
    reversed view, negative strides) met softmax's; the sum was laid over the first's strides and
    read other elements (test_structural's augment program caught it)."""
    torch = pytest.importorskip("torch")
    scores = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
    grads = []
    for lib in (chainrule, torch):
        s = lib.tensor(scores, requires_grad=True)
        ((lib.diag_embed(s.softmax(-1), offset=1) ** 2).sum()
         + (lib.diff(s.cumsum(-1), prepend=lib.zeros(2, 1)) * lib.arange(3.0)).sum()).backward()
        grads.append(s.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6, atol=1e-7)
