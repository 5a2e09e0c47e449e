"""nn.init: statistics and bounds against torch's formulas; in place, under no_grad."""

import math

import numpy as np
import pytest

import chainrule
import chainrule.nn as nn
from chainrule.nn import init

torch = pytest.importorskip("torch")


def param(*shape):
    return nn.Parameter(chainrule.empty(*shape))


@pytest.mark.parametrize("name,args", [
    ("linear", ()), ("conv2d", ()), ("sigmoid", ()), ("tanh", ()), ("relu", ()), ("leaky_relu", ()),
    ("leaky_relu", (0.2,)), ("selu", ()),
])
def test_calculate_gain_matches_torch(name, args):
    assert init.calculate_gain(name, *args) == pytest.approx(torch.nn.init.calculate_gain(name, *args))


def test_calculate_gain_errors():
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="negative_slope"):
        init.calculate_gain("leaky_relu", "a")


@pytest.mark.parametrize("shape", [(5, 3), (4, 2, 3, 3), (6, 3, 5)])
def test_fan_in_fan_out_matches_torch(shape):
    ours = init._calculate_fan_in_and_fan_out(chainrule.empty(*shape))
    assert ours == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(chainrule.empty(3))


def test_uniform_normal_constant_in_place_on_parameters():
    p = param(200, 100)
    data = p._data
    assert init.uniform_(p, -2.0, 3.0) is p and p._data is data and p.requires_grad
    values = p.detach().numpy()
    assert values.min() >= -2.0 and values.max() <= 3.0 and abs(values.mean() - 0.5) < 0.05
    init.normal_(p, 1.0, 2.0)
    values = p.detach().numpy()
    assert abs(values.mean() - 1.0) < 0.05 and abs(values.std() - 2.0) < 0.05
    init.constant_(p, 0.3)
    assert np.all(p.detach().numpy() == np.float32(0.3))
    init.zeros_(p)
    assert not p.detach().numpy().any()
    init.ones_(p)
    assert np.all(p.detach().numpy() == 1)
    assert p.grad_fn is None and p.dtype is chainrule.float32


def test_eye_and_dirac():
    p = param(3, 4)
    init.eye_(p)
    assert np.array_equal(p.detach().numpy(), np.eye(3, 4))
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions"):
        init.eye_(param(2, 2, 2))
    w = param(4, 2, 3, 3)
    init.dirac_(w)
    t = torch.empty(4, 2, 3, 3)
    torch.nn.init.dirac_(t)
    assert np.array_equal(w.detach().numpy(), t.numpy())


@pytest.mark.parametrize("shape", [(300, 200), (64, 32, 3, 3)])
def test_xavier_bounds_and_std(shape):
    p = param(*shape)
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(p)
    bound = math.sqrt(6.0 / (fan_in + fan_out)) * 2.0
    init.xavier_uniform_(p, gain=2.0)
    values = p.detach().numpy()
    assert values.max() <= bound and values.min() >= -bound and values.max() > 0.98 * bound
    init.xavier_normal_(p)
    assert abs(p.detach().numpy().std() - math.sqrt(2.0 / (fan_in + fan_out))) / math.sqrt(2.0 / (fan_in + fan_out)) < 0.03


@pytest.mark.parametrize("mode,nonlinearity,a", [("fan_in", "relu", 0), ("fan_out", "leaky_relu", 0.1),
                                                 ("fan_in", "leaky_relu", math.sqrt(5))])
def test_kaiming_bounds_and_std(mode, nonlinearity, a):
    p = param(128, 64, 3, 3)
    fan = 64 * 9 if mode == "fan_in" else 128 * 9
    std = init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    init.kaiming_uniform_(p, a=a, mode=mode, nonlinearity=nonlinearity)
    values = p.detach().numpy()
    bound = math.sqrt(3.0) * std
    assert np.abs(values).max() <= bound + 1e-7 and np.abs(values).max() > 0.99 * bound
    init.kaiming_normal_(p, a=a, mode=mode, nonlinearity=nonlinearity)
    assert abs(p.detach().numpy().std() / std - 1) < 0.02
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(p, mode="fan_avg")


def test_orthogonal():
    for shape in [(6, 4), (4, 6), (3, 2, 2)]:
        p = param(*shape)
        init.orthogonal_(p, gain=2.0)
        flat = p.detach().numpy().reshape(shape[0], -1).astype(np.float64)
        gram = flat @ flat.T if shape[0] <= flat.shape[1] else flat.T @ flat
        assert np.allclose(gram, 4.0 * np.eye(gram.shape[0]), atol=1e-5)


def test_trunc_normal():
    p = param(300, 300)
    init.trunc_normal_(p, mean=0.5, std=1.0, a=-0.5, b=1.0)
    values = p.detach().numpy()
    assert values.min() >= -0.5 and values.max() <= 1.0
    t = torch.empty(300, 300)
    torch.nn.init.trunc_normal_(t, mean=0.5, std=1.0, a=-0.5, b=1.0)
    assert abs(values.mean() - t.numpy().mean()) < 0.01 and abs(values.std() - t.numpy().std()) < 0.01


def test_init_does_not_record_and_bumps_version():
    p = param(3, 3)
    version = p._version
    init.normal_(p)
    assert p._version > version and p.grad_fn is None and p.is_leaf


def test_sparse():
    p = param(10, 6)
    init.sparse_(p, sparsity=0.3)
    zeros = (p.detach().numpy() == 0).sum(0)
    assert np.all(zeros >= 3)
