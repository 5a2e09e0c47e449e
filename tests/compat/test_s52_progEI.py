"""s52 progEI: what the corpus programs r2d2_burn_in_lstm, icm_curiosity_forward_inverse and
began_equilibrium found. A convolution with one output channel returned strides that read as
channels-last (NumPy ignores a size-1 dim's stride), so the next conv wrote a channels-last result
and ``x.view(x.size(0), -1)`` after it raised where torch's works (BEGAN's encoder on the
generator's one-channel images)."""

import itertools

import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402


def _run(lib, op, d, n, cin, cout, size, k, dtype, x_np, w_np, b_np):
    fn = getattr(lib.nn.functional, f"{op}{d}d")
    x = lib.tensor(x_np, dtype=dtype, requires_grad=True)
    y = fn(x, lib.tensor(w_np, dtype=dtype), lib.tensor(b_np, dtype=dtype))
    y.sum().backward()
    return y, x.grad


CASES = list(itertools.product((1, 2, 3), ("conv", "conv_transpose"), (1, 2), (1, 3), (1, 4), (1, 5), (1, 3), ("float32", "float64")))


@pytest.mark.parametrize("d, op, n, cin, cout, size, k, dtype", [c for c in CASES if not (c[1] == "conv" and c[5] < c[6])])
@pytest.mark.pairwise_in_ci(seed=61, strength=3)
def test_conv_output_and_input_grad_strides_match_torch(d, op, n, cin, cout, size, k, dtype):
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((n, cin, *[size] * d))
    w_np = rng.standard_normal(((cout, cin) if op == "conv" else (cin, cout)) + (k,) * d)
    b_np = rng.standard_normal(cout)
    ours = _run(chainrule, op, d, n, cin, cout, size, k, getattr(chainrule, dtype), x_np, w_np, b_np)
    theirs = _run(real_torch, op, d, n, cin, cout, size, k, getattr(real_torch, dtype), x_np, w_np, b_np)
    for a, b in zip(ours, theirs):
        assert a.stride() == b.stride()
        assert a.is_contiguous() == b.is_contiguous()
        assert a.is_contiguous(memory_format=chainrule.channels_last if a.dim() == 4 else chainrule.contiguous_format) == \
            b.is_contiguous(memory_format=real_torch.channels_last if b.dim() == 4 else real_torch.contiguous_format)
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-5)


def _began_encoder_input(lib):
    lib.manual_seed(0)
    to_image = lib.nn.Conv2d(16, 1, 3, 1, 1)
    encoder = lib.nn.Sequential(lib.nn.Conv2d(1, 16, 3, 1, 1), lib.nn.ELU(True), lib.nn.Conv2d(16, 32, 3, 2, 1))
    image = to_image(lib.randn(2, 16, 8, 8))
    features = encoder(image.detach())
    return image, features, features.view(features.size(0), -1)


def test_one_channel_conv_output_feeds_a_conv_whose_output_views_flat():
    image, features, flat = _began_encoder_input(chainrule)
    t_image, t_features, t_flat = _began_encoder_input(real_torch)
    assert image.stride() == t_image.stride() == (64, 64, 8, 1)
    assert features.stride() == t_features.stride()
    assert flat.shape == t_flat.shape == (2, 512)
    np.testing.assert_allclose(flat.detach().numpy(), t_flat.detach().numpy(), rtol=1e-4, atol=1e-5)
