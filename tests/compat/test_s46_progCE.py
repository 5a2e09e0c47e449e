"""Session 46, lane progCE (grpo_group_advantage, deep_svdd_anomaly, arcface_margin_softmax):
fixes found while probing around the lane's programs, each checked against torch 2.13 on the
same inputs."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


# ----------------------------------------- multinomial of expanded weights: draws in C order
def _expanded(lib, case, dtype):
    g = lib.Generator().manual_seed(2)
    if case == "rows":  # (4, 3), strides (0, 1)
        return lib.tensor([[0.1, 0.2, 0.7]], dtype=dtype).expand(4, 3)
    if case == "columns_t":  # (4, 3), strides (0, 1) by transposing a column expand
        return lib.rand(3, 1, generator=g, dtype=dtype).expand(3, 4).t()
    if case == "columns":  # (3, 4), strides (1, 0)
        return lib.rand(3, 1, generator=g, dtype=dtype).expand(3, 4)
    if case == "sliced":  # non-dense but not overlapping
        return lib.rand(4, 6, generator=g, dtype=dtype)[:, ::2]
    if case == "transposed":
        return lib.rand(3, 5, generator=g, dtype=dtype).t()
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["rows", "columns_t", "columns", "sliced", "transposed"])
@pytest.mark.parametrize("num_samples,replacement", [(1, False), (2, False), (3, False), (1, True), (3, True)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_multinomial_of_strided_weights_matches_torch(case, num_samples, replacement, dtype):
    # torch draws the exponential races into empty_like(weights): an expanded input gets dense
    # row-major strides there (infer_dense_strides never moves a zero-stride dim), so its draws
    # are laid out as a contiguous copy's, not in the expanded array's stride order
    results = []
    for lib in (torch, chainrule):
        weights = _expanded(lib, case, getattr(lib, dtype))
        for seed in range(6):
            g = lib.Generator().manual_seed(seed)
            results.append((lib.__name__, seed, lib.multinomial(weights, num_samples, replacement, generator=g).tolist()))
    half = len(results) // 2
    assert [r[1:] for r in results[half:]] == [r[1:] for r in results[:half]]


# ------------------------------------------- alpha dropout: torch's affine map, rounded as torch
@pytest.mark.parametrize("fn", ["alpha_dropout", "feature_alpha_dropout", "alpha_dropout_inplace", "AlphaDropout"])
@pytest.mark.parametrize("p", [0.1, 0.2, 0.5, 0.75])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_alpha_dropout_matches_torch_bitwise(fn, p, dtype):
    # torch: noise.bernoulli_(1 - p); b = noise.add(-1).mul_(alpha * a).add_(alpha * a * p);
    # noise.mul_(a); input * noise + b, each step (and each double scalar) rounded to the input's
    # dtype, with a = 1 / sqrt((alpha * alpha * p + 1) * (1 - p))
    outputs, grads = [], []
    for lib in (torch, chainrule):
        F = lib.nn.functional
        lib.manual_seed(11)
        x = lib.linspace(-2.0, 3.0, 60, dtype=getattr(lib, dtype)).reshape(3, 4, 5).requires_grad_(True)
        if fn == "alpha_dropout":
            y = F.alpha_dropout(x, p, True)
        elif fn == "feature_alpha_dropout":
            y = F.feature_alpha_dropout(x, p, True)
        elif fn == "alpha_dropout_inplace":
            y = F.alpha_dropout(x * 1.0, p, True, inplace=True)
        else:
            y = lib.nn.AlphaDropout(p)(x)
        (g,) = lib.autograd.grad((y * lib.arange(60.0, dtype=x.dtype).reshape(3, 4, 5)).sum(), x)
        assert y.dtype == getattr(lib, dtype)
        outputs.append(y.detach().to(lib.float64).numpy())  # exact for every dtype here
        grads.append(g.to(lib.float64).numpy())
    assert outputs[0].tobytes() == outputs[1].tobytes()
    assert grads[0].tobytes() == grads[1].tobytes()


# ------------------------- ATen's Loss.cpp EPSILON is a float constant, also in float64 losses
def _bce_input_grad(lib, dtype, weighted):
    p = lib.tensor([1e-13, 0.0, 1 - 1e-16, 0.5, 1e-300, 1.0], dtype=dtype, requires_grad=True)
    t = lib.tensor([0.0, 1.0, 0.0, 1.0, 0.3, 0.0], dtype=dtype)
    weight = lib.linspace(0.5, 2.0, 6, dtype=dtype) if weighted else None
    loss = lib.nn.functional.binary_cross_entropy(p, t, weight=weight, reduction="sum")
    (grad,) = lib.autograd.grad(loss, p)
    return grad.tolist()


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_binary_cross_entropy_gradient_clamps_at_float_epsilon(dtype, weighted):
    # grad = (p - t) / max((1 - p) p, EPSILON) with EPSILON = 1e-12f: in float64 that is
    # 9.999999960041972e-13, so p = 0 against t = 1 gives -1000000003995.8029, not -1e12
    assert _bce_input_grad(chainrule, getattr(chainrule, dtype), weighted) == \
        _bce_input_grad(torch, getattr(torch, dtype), weighted)


def _cosine_embedding(lib, dtype, scale):
    x1 = (lib.linspace(-1.0, 1.0, 12, dtype=dtype).reshape(4, 3) * scale).requires_grad_(True)
    x2 = lib.linspace(0.5, 2.0, 12, dtype=dtype).reshape(4, 3).flip(0).requires_grad_(True)
    y = lib.tensor([1, -1, 1, -1])
    loss = lib.nn.functional.cosine_embedding_loss(x1, x2, y, margin=-0.5, reduction="none")
    g1, g2 = lib.autograd.grad((loss * lib.arange(1.0, 5.0, dtype=dtype)).sum(), (x1, x2))
    return loss.tolist(), g1.tolist(), g2.tolist()


@pytest.mark.parametrize("scale", [0.0, 1e-7, 1e-6, 1.0])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cosine_embedding_loss_epsilon_is_torchs(dtype, scale):
    # mag_square = (x * x).sum(-1) + EPSILON (1e-12f): near-zero float64 inputs see its float value
    # (1e-12 instead moved the gradients by 2e-9 relative; the tolerance leaves the last bits of
    # the backward's own roundings)
    ours = _cosine_embedding(chainrule, getattr(chainrule, dtype), scale)
    theirs = _cosine_embedding(torch, getattr(torch, dtype), scale)
    assert ours[0] == theirs[0]
    for got, want in zip(ours[1:], theirs[1:]):
        np.testing.assert_allclose(got, want, rtol=1e-12 if dtype == "float64" else 1e-6, atol=0)


# ------------------------------ binary_cross_entropy's double backward: torch's own formulas
def _bce_second_order(lib, values, reduction, weighted):
    dtype = lib.float64
    p = lib.tensor(values, dtype=dtype, requires_grad=True)
    t = lib.tensor([0.0, 1.0, 0.0, 1.0, 0.3], dtype=dtype, requires_grad=True)
    weight = lib.tensor([2.0, 1.0, 1.0, 0.5, 1.0], dtype=dtype) if weighted else None
    loss = lib.nn.functional.binary_cross_entropy(p, t, weight=weight, reduction=reduction)
    gp, gt = lib.autograd.grad(loss.sum(), (p, t), create_graph=True)
    second = lib.autograd.grad((gp * lib.arange(1.0, 6.0, dtype=dtype)).sum() + gt.sum(), (p, t))
    return gp.grad_fn.name(), gp.tolist(), [g.tolist() for g in second]


@pytest.mark.parametrize("values", [[1e-13, 0.0, 0.5, 0.9, 0.2], [0.3, 0.7, 0.5, 0.9, 0.2]])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy_double_backward_matches_torch(values, reduction, weighted):
    # FunctionsManual: d/dp of the input gradient is g (p² - 2pt + t) / ((p + 1e-12)² (1 - p + 1e-12)²),
    # d/dt is -g / max((1 - p) p, 1e-12): not the derivative of the clamped first-order expression
    name, first, second = _bce_second_order(chainrule, values, reduction, weighted)
    torch_name, torch_first, torch_second = _bce_second_order(torch, values, reduction, weighted)
    assert name == torch_name
    np.testing.assert_allclose(first, torch_first, rtol=1e-14, atol=0)  # weighted mean: last bits
    for got, want in zip(second, torch_second):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
