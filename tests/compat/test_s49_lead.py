"""Lead's merge checks for session 49: where two lanes' changes meet."""
import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("enabled", [True, False])
def test_conv_input_gradient_follows_the_mkldnn_switch(enabled):
    # mendBR routes float32 input gradients through oneDNN's blocked order; with
    # torch.backends.mkldnn.enabled off (mendBP) torch runs its slow kernel, whose order chainrule had
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 64, 10, 10)).astype(np.float32)
    w = rng.standard_normal((32, 64, 3, 3)).astype(np.float32) * 0.1
    g = rng.standard_normal((4, 32, 10, 10)).astype(np.float32)
    grads, strides = [], []
    for lib in (torch, chainrule):
        with lib.backends.mkldnn.flags(enabled=enabled):  # (torch refuses bare assignments once frozen)
            xt = lib.tensor(x, requires_grad=True)
            lib.nn.functional.conv2d(xt, lib.tensor(w), padding=1).backward(lib.tensor(g))
            grads.append(np.asarray(xt.grad.detach().numpy()))
            strides.append(xt.grad.stride())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5, atol=1e-5)
    assert grads[1].dtype == grads[0].dtype == np.float32 and strides[0] == strides[1]
    if not chainrule.ops.cpu_features.AVX512_CORE:
        # chainrule replays oneDNN's avx512_core blocked kernel and, switched off, ATen's slow kernel
        # as it rounds on an AVX-512 CPU; without AVX-512 torch runs oneDNN's jit:avx2 kernel (one
        # FMA chain from zero over (8-channel block, kh, kw, channel in block), 25,600 of 25,600
        # equal in a NumPy probe) and MKL's AVX2 sgemm (a chain from zero over the output channels,
        # then col2im by kernel offset: 25,600 of 25,600), which chainrule does not replay for a
        # layer this size: each is one NumPy pass per product term (the probe's slow-kernel
        # replay took 74 ms here). Measured on an AMD EPYC (AVX2+FMA): 23,179 of 25,600 differing with oneDNN and
        # 3,841 without, |Δ| ≤ 2.3e-6·(|torch's| + 1)
        diff = np.abs(grads[1].astype(np.float64) - grads[0])
        assert np.all(diff <= 5e-6 * (np.abs(grads[0]) + 1.0)), diff.max()
        return
    equal = np.mean(grads[1] == grads[0])
    assert equal == 1.0, f"{equal:.4f} of the input gradient bitwise torch's (mkldnn.enabled={enabled})"


def test_mkldnn_flags_context_sets_and_restores_as_torchs():
    # torch code switches oneDNN off with `with torch.backends.mkldnn.flags(enabled=False):`
    for lib in (torch, chainrule):
        before = lib.backends.mkldnn.enabled
        with lib.backends.mkldnn.flags(enabled=False):
            assert lib.backends.mkldnn.enabled is False
        assert lib.backends.mkldnn.enabled == before
        with lib.backends.mkldnn.flags(enabled=True, deterministic=True):
            assert lib.backends.mkldnn.enabled is True and lib.backends.mkldnn.deterministic is True
        assert lib.backends.mkldnn.deterministic is False
