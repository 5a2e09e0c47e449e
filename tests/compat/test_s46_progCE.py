"""Session 46, lane progCE (grpo_group_advantage, deep_svdd_anomaly, arcface_margin_softmax):
fixes found while probing around the lane's programs, each checked against torch 2.13 on the
same inputs."""

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
