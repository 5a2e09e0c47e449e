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


@pytest.mark.parametrize("weight", [0.1, -0.3, 0.5, 0.9, 1.7, "tensor", "0-d float64"])
def test_float32_lerp_is_torchs_two_fused_branches(weight):
    # torch's lerp kernel: |w| < 0.5 ? fma(w, end - input, input) : fma(w - 1, end - input, end);
    # chainrule's input + w * (end - input) rounded twice and took the near-input branch for every
    # weight: 11,257 (w = 0.1) and 46,236 (w = 0.9) of 100,003 values differed (an EMA's
    # ema.lerp_(param, 1 - decay) drifted from torch's)
    generator = torch.Generator().manual_seed(1)
    start, end = torch.randn(4099, generator=generator), torch.randn(4099, generator=generator)
    if weight == "tensor":
        want_weight = torch.rand(4099, generator=generator) * 3 - 1
        mine_weight = chainrule.tensor(want_weight.numpy())
    elif weight == "0-d float64":
        want_weight, mine_weight = torch.tensor(0.7, dtype=torch.float64), chainrule.tensor(0.7, dtype=chainrule.float64)
    else:
        want_weight = mine_weight = weight
    mine_start, mine_end = chainrule.tensor(start.numpy()), chainrule.tensor(end.numpy())
    assert torch.lerp(start, end, want_weight).numpy().tobytes() == \
        chainrule.lerp(mine_start, mine_end, mine_weight).numpy().tobytes()
    in_place = mine_start.clone()
    in_place.lerp_(mine_end, mine_weight)
    assert start.clone().lerp_(end, want_weight).numpy().tobytes() == in_place.numpy().tobytes()


def test_float32_lerp_keeps_torchs_node_and_gradients():
    values = [torch.tensor([0.3, -1.2, 2.0]), torch.tensor([1.5, 0.4, -0.7]), torch.tensor([0.2, 0.8, -0.4])]
    theirs = [v.clone().requires_grad_(True) for v in values]
    mine = [chainrule.tensor(v.numpy(), requires_grad=True) for v in values]
    out_theirs, out_mine = torch.lerp(*theirs), chainrule.lerp(*mine)
    assert type(out_mine.grad_fn).__name__ == out_theirs.grad_fn.name() == "LerpBackward1"
    out_theirs.pow(2).sum().backward()
    out_mine.pow(2).sum().backward()
    for a, b in zip(theirs, mine):
        assert b.grad.numpy() == pytest.approx(a.grad.numpy(), abs=1e-6)


@pytest.mark.parametrize("value", [1, 0.001, -0.37, 2.0])
def test_float32_addcmul_is_torchs_fused_multiply_add(value):
    # torch's float32 kernel rounds value·tensor1, then fma(·, tensor2, input) rounds once more;
    # chainrule's input + value·(tensor1·tensor2) differed in 225 (value 0.001) to 26,514 (value 2)
    # of 100,003 values (an Adam-style exp_avg_sq.addcmul_(grad, grad, value=1 - beta2))
    generator = torch.Generator().manual_seed(2)
    a, b, c = (torch.randn(4099, generator=generator) for _ in range(3))
    mine = [chainrule.tensor(t.numpy()) for t in (a, b, c)]
    assert torch.addcmul(a, b, c, value=value).numpy().tobytes() == \
        chainrule.addcmul(*mine, value=value).numpy().tobytes()
    in_place = mine[0].clone()
    in_place.addcmul_(mine[1], mine[2], value=value)
    assert a.clone().addcmul_(b, c, value=value).numpy().tobytes() == in_place.numpy().tobytes()
    # broadcast operands, and the node torch names
    want = torch.addcmul(a[:5], b.view(-1, 1)[:3], c[:5], value=value)
    got = chainrule.addcmul(mine[0][:5], mine[1].view(-1, 1)[:3], mine[2][:5], value=value)
    assert want.numpy().tobytes() == got.numpy().tobytes()
    leaf = chainrule.tensor([1.0, 2.0], requires_grad=True)
    node = chainrule.addcmul(leaf, leaf, leaf, value=value).grad_fn
    assert type(node).__name__ == "AddcmulBackward0" and node._saved_value == value


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_sgd_computes_in_float32_as_torch(dtype):
    # torch's bfloat16/float16 add(..., alpha=) and mul_(momentum) compute in float32 and round
    # once; chainrule's NumPy step rounded momentum and each product to the half type: 271 to
    # 1,073 of 10,000 weights differed after 5 steps, now at most a few (a float32 fused
    # multiply-add whose last rounding NumPy cannot fuse)
    generator = torch.Generator().manual_seed(3)
    start, gradient = torch.randn(4099, generator=generator), torch.randn(4099, generator=generator)
    finals = []
    for lib in (torch, chainrule):
        half = getattr(lib, dtype)
        p = lib.nn.Parameter(lib.tensor(start.numpy()).to(half))
        optimizer = lib.optim.SGD([p], lr=0.0123, momentum=0.9, nesterov=True, weight_decay=1e-2)
        g = lib.tensor(gradient.numpy()).to(half)
        for _ in range(5):
            p.grad = g * p.detach()
            optimizer.step()
        finals.append(p.detach().float().numpy())
    assert (finals[0] != finals[1]).sum() <= 4


@pytest.mark.parametrize(("name", "options"), [
    ("Adam", dict(lr=0.0123, betas=(0.9, 0.0))),
    ("Adam", dict(lr=0.0123, betas=(0.6, 0.0), weight_decay=0.01)),
    ("AdamW", dict(lr=0.0123, betas=(0.9, 0.0))),
])
def test_float32_adam_rounds_as_torchs_kernels(name, options):
    # torch's float32 Adam: lerp_ and addcmul_ are fused multiply-adds, addcdiv_ divides value·m by
    # the denominator; chainrule's NumPy step rounded differently and 423 to 461 of 4,099 weights
    # differed after 5 steps. beta2 = 0 with gradients of 12 significant bits keeps the second
    # moment a perfect square, so torch's float32 sqrt (which on this AVX-512 build is not correctly
    # rounded for ~18% of other inputs) is exact here and the steps must agree bit for bit
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(4099, generator=generator)
    gradients = [torch.randint(-2000, 2000, (4099,), generator=generator).float() / 256 for _ in range(5)]
    finals = []
    for lib in (torch, chainrule):
        p = lib.nn.Parameter(lib.tensor(start.numpy()))
        optimizer = getattr(lib.optim, name)([p], **options)
        for gradient in gradients:
            p.grad = lib.tensor(gradient.numpy())
            optimizer.step()
        finals.append(p.detach().numpy().tobytes())
    assert finals[0] == finals[1]
