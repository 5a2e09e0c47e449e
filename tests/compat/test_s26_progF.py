"""Session 26, progF lane: what the vqvae, pinn_burgers, pixelcnn_masked, bayes_by_backprop and
set_transformer programs of tests/programs/ showed, each compared with torch."""

from __future__ import annotations

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _raised(fn):
    with pytest.raises(Exception) as info:
        fn()
    return info.type, str(info.value)


def test_kl_divergence_without_a_rule_names_both_types_in_torchs_words():
    # a user pairing distributions with no registered KL (a Bayes-by-Backprop prior swapped for a
    # Categorical) reads torch's sentence, word for word
    def pair(lib):
        return lib.distributions.Normal(0.0, 1.0), lib.distributions.Categorical(lib.tensor([0.5, 0.5]))

    want = _raised(lambda: torch.distributions.kl_divergence(*pair(torch)))
    got = _raised(lambda: chainrule.distributions.kl_divergence(*pair(chainrule)))
    assert want == (NotImplementedError, "No KL(p || q) is implemented for p type Normal and q type Categorical")
    assert got == want


@pytest.mark.parametrize("size", [1, 7, 8, 33, 4099])
def test_add_and_sub_with_alpha_round_once_in_float32_as_torchs_fused_multiply_add(size):
    # torch's CPU add kernel is a fused multiply-add: a + alpha*b rounded once. Rounding the
    # product first (NumPy's a + b * alpha) differed in about a fifth of the elements, so
    # hand-written updates (p.data.add_(p.grad, alpha=-lr), the PINN's and the EMA codebooks')
    # drifted from torch's in the last bit
    generator = torch.Generator().manual_seed(size)
    a, b = torch.randn(size, generator=generator), torch.randn(size, generator=generator)
    mine_a, mine_b = chainrule.tensor(a.numpy()), chainrule.tensor(b.numpy())
    for alpha in (0.3712345678901, -0.0123, 2.5, 1e-3):
        assert torch.add(a, b, alpha=alpha).numpy().tobytes() == chainrule.add(mine_a, mine_b, alpha=alpha).numpy().tobytes()
        assert torch.sub(a, b, alpha=alpha).numpy().tobytes() == chainrule.sub(mine_a, mine_b, alpha=alpha).numpy().tobytes()
        in_place = mine_a.clone()
        in_place.add_(mine_b, alpha=alpha)
        assert a.clone().add_(b, alpha=alpha).numpy().tobytes() == in_place.numpy().tobytes()


def test_add_with_alpha_broadcasts_and_keeps_its_gradient():
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 7, generator=generator), torch.randn(7, generator=generator)
    for x, y in ((a, b), (b, a)):
        want = torch.add(x, y, alpha=0.37)
        got = chainrule.add(chainrule.tensor(x.numpy()), chainrule.tensor(y.numpy()), alpha=0.37)
        assert want.numpy().tobytes() == got.numpy().tobytes()
    x, y = chainrule.ones(3, requires_grad=True), chainrule.ones(3, requires_grad=True)
    chainrule.sub(x, y, alpha=0.5).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0] and y.grad.tolist() == [-0.5, -0.5, -0.5]
    special = chainrule.add(chainrule.tensor([float("inf"), float("nan"), 3e38]), chainrule.tensor([1.0, 1.0, 3e38]),
                            alpha=2.0)
    assert str(special) == str(torch.add(torch.tensor([float("inf"), float("nan"), 3e38]),
                                         torch.tensor([1.0, 1.0, 3e38]), alpha=2.0))


@pytest.mark.parametrize("options", [
    dict(lr=0.0123),
    dict(lr=0.0123, momentum=0.9),
    dict(lr=0.0123, momentum=0.9, dampening=0.1),
    dict(lr=0.0123, momentum=0.9, nesterov=True, weight_decay=1e-4),
    dict(lr=0.0123, momentum=0.5, maximize=True, weight_decay=0.01),
])
def test_sgd_steps_equal_torchs_bit_for_bit_in_float32(options):
    # torch's SGD is add(..., alpha=) throughout (weight decay, dampened momentum, Nesterov, the
    # step): each rounded once; chainrule's NumPy step rounded twice and differed from torch in
    # 233 of 10,000 weights after one plain step, 769 after three momentum steps
    generator = torch.Generator().manual_seed(0)
    start, gradient = torch.randn(4099, generator=generator), torch.randn(4099, generator=generator)
    finals = []
    for lib in (torch, chainrule):
        p = lib.nn.Parameter(lib.tensor(start.numpy()))
        optimizer = lib.optim.SGD([p], **options)
        g = lib.tensor(gradient.numpy())
        for _ in range(5):
            p.grad = g * p.detach()
            optimizer.step()
        finals.append(p.detach().numpy().tobytes())
    assert finals[0] == finals[1]
