"""Session 56, lane progEU: what the diffusion_policy_1d_unet, noise2void_blind_spot and
prodlda_topic_model programs found. A 1-d convolution's (and transposed one's) weight gradient is a
fresh contiguous tensor in torch, which runs it as a 2-d layer on an unsqueezed view; a kernel of width 1
got NumPy's transposed-GEMM strides on its size-1 dim ((8, 1, 8) where torch has (8, 1, 1))."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule


def _weight_grad(lib, op, x, w, **kwargs):
    w = lib.tensor(w, requires_grad=True)
    getattr(lib.nn.functional, op)(lib.tensor(x), w, **kwargs).pow(2).sum().backward()
    return w.grad


@pytest.mark.parametrize("op, w_shape, x_shape, kwargs", [
    ("conv1d", (8, 8, 1), (3, 8, 8), {}),
    ("conv1d", (8, 4, 1), (3, 8, 8), {"groups": 2}),
    ("conv1d", (6, 4, 1), (4, 9), {}),
    ("conv1d", (6, 4, 3), (2, 4, 9), {"stride": 2, "padding": 1}),
    ("conv_transpose1d", (8, 6, 1), (3, 8, 5), {}),
    ("conv_transpose1d", (8, 8, 4), (2, 8, 8), {"stride": 2, "padding": 1}),
], ids=["k1", "k1-groups", "k1-unbatched", "k3-strided", "transposed-k1", "transposed-upsample"])
def test_conv1d_weight_gradient_strides_as_torch(op, w_shape, x_shape, kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(56)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    expected = _weight_grad(torch, op, x, w, **kwargs)
    got = _weight_grad(chainrule, op, x, w, **kwargs)
    assert got.stride() == expected.stride()
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-4)
