"""Session 57, lane progEX: what the tdmpc2_simnorm_planning / rome_rank_one_editing /
popart_adaptive_normalization programs' probes found.

mish under vmap runs once on the batch (its batching rule), as torch's: the result's node is
MishBackward0 (it was the per-slice fallback's StackBackward0), with torch's values and gradients;
TD-MPC2's Q ensemble calls its Mish layers through vmap(functional_call) over stacked parameters.
"""
import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _ensemble(lib, x, w, inplace):
    def head(w, x):
        return lib.nn.functional.mish(x @ w.T, inplace=inplace)
    return lib.vmap(head, (0, None))(w, x)


@pytest.mark.parametrize("inplace", [False, True])
def test_mish_under_vmap_batched_as_torch(inplace):
    rng = np.random.RandomState(0)
    x_np, w_np = rng.randn(3, 4).astype(np.float32), rng.randn(2, 5, 4).astype(np.float32)
    g_np = rng.randn(2, 3, 5).astype(np.float32)
    found = {}
    for lib in (torch, chainrule):
        x = lib.from_numpy(x_np.copy()).requires_grad_(True)
        w = lib.from_numpy(w_np.copy()).requires_grad_(True)
        y = _ensemble(lib, x, w, inplace)
        grads = lib.autograd.grad(y, [x, w], lib.from_numpy(g_np))
        found[lib] = (type(y.grad_fn).__name__, y.stride(), y.detach().numpy(), [g.numpy() for g in grads])
    t, c = found[torch], found[chainrule]
    assert c[0] == t[0] == "MishBackward0"
    assert c[1] == t[1]
    np.testing.assert_allclose(c[2], t[2], rtol=1e-6, atol=1e-6)
    for a, b in zip(c[3], t[3]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)

