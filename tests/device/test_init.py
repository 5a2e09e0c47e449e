"""nn.init on 'cuda' (the stand-in): every initialiser draws and fills on the tensor's device,
with no host<->device copy (trunc_normal_ reads back one count per rejection round), and gives
values with the distribution's shape, as on the CPU."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule import nn

INITS = {
    "uniform_": lambda t: nn.init.uniform_(t, -0.5, 0.5),
    "normal_": lambda t: nn.init.normal_(t, 1.0, 0.1),
    "constant_": lambda t: nn.init.constant_(t, 0.25),
    "ones_": nn.init.ones_,
    "zeros_": nn.init.zeros_,
    "eye_": nn.init.eye_,
    "xavier_uniform_": nn.init.xavier_uniform_,
    "xavier_normal_": nn.init.xavier_normal_,
    "kaiming_uniform_": nn.init.kaiming_uniform_,
    "kaiming_normal_": nn.init.kaiming_normal_,
    "orthogonal_": nn.init.orthogonal_,
    "sparse_": lambda t: nn.init.sparse_(t, 0.5),
}


@pytest.mark.parametrize("init", INITS.values(), ids=INITS.keys())
def test_init_draws_on_the_device(cuda, init):
    chainrule.manual_seed(0)
    t = chainrule.empty(8, 6, device="cuda")
    cuda.reset_transfers()
    out = init(t)
    assert cuda.transfers() == 0, f"{cuda.transfers()} host<->device copies"
    assert out is t and t.device.type == "cuda" and t.dtype == chainrule.float32
    chainrule.manual_seed(0)
    reference = init(chainrule.empty(8, 6))
    values, expected = t.cpu().numpy(), reference.numpy()
    assert np.isfinite(values).all()
    # the device stream differs from the host one (as in torch); the deterministic ones agree
    # exactly, the random ones in range and scale
    if init in (nn.init.ones_, nn.init.zeros_, nn.init.eye_, INITS["constant_"]):
        np.testing.assert_array_equal(values, expected)
    else:
        assert not np.array_equal(values, np.zeros_like(values))
        assert np.abs(values).max() <= 3 * np.abs(expected).max() + 1e-6


def test_orthogonal_on_the_device_is_orthogonal(cuda):
    t = nn.init.orthogonal_(chainrule.empty(4, 9, device="cuda"))
    q = t.cpu().numpy().astype(np.float64)
    np.testing.assert_allclose(q @ q.T, np.eye(4), atol=1e-5)


def test_sparse_on_the_device_zeros_each_column(cuda):
    values = nn.init.sparse_(chainrule.empty(10, 7, device="cuda"), 0.3).cpu().numpy()
    assert ((values == 0).sum(axis=0) >= 3).all()


def test_trunc_normal_on_the_device_stays_in_bounds(cuda):
    t = nn.init.trunc_normal_(chainrule.empty(2000, device="cuda"), 0.0, 1.0, -0.5, 0.5)
    assert t.device.type == "cuda"
    values = t.cpu().numpy()
    assert values.min() >= -0.5 and values.max() <= 0.5 and values.std() > 0.2


def test_normal_on_the_device_like_torch_snippet(cuda):
    t = nn.init.normal_(chainrule.empty(3, device="cuda"))
    assert t.device == chainrule.device("cuda:0") and tuple(t.shape) == (3,)
