"""nn.utils.weight_norm / remove_weight_norm against torch: parameters, outputs and gradients."""

import warnings

import numpy as np
import pytest
import torch

import chainrule

RNG = np.random.default_rng(0)
WEIGHT = RNG.standard_normal((4, 3, 2)).astype(np.float32)
BIAS = RNG.standard_normal(4).astype(np.float32)
X = RNG.standard_normal((2, 3, 5)).astype(np.float32)


def _run(lib, dim):
    conv = lib.nn.Conv1d(3, 4, 2)
    with lib.no_grad():
        conv.weight.copy_(lib.tensor(WEIGHT))
        conv.bias.copy_(lib.tensor(BIAS))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch deprecates this API in favour of parametrizations
        conv = lib.nn.utils.weight_norm(conv, dim=dim)
    names = sorted(name for name, _ in conv.named_parameters())
    out = conv(lib.tensor(X))
    (out * out).sum().backward()
    with lib.no_grad():
        conv.weight_g.mul_(2)  # the next forward sees the new magnitude
    second = conv(lib.tensor(X)).detach().numpy()
    grads = [conv.weight_g.grad.numpy(), conv.weight_v.grad.numpy()]
    lib.nn.utils.remove_weight_norm(conv)
    after = sorted(name for name, _ in conv.named_parameters())
    return names, out.detach().numpy(), second, grads, after, conv.weight.detach().numpy()


@pytest.mark.parametrize("dim", [0, 1, -1, None])
def test_weight_norm_matches_torch(dim):
    mine, theirs = _run(chainrule, dim), _run(torch, dim)
    assert mine[0] == theirs[0] and mine[4] == theirs[4]
    for a, b in zip(mine[1:4], theirs[1:4]):
        for x, y in zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b]):
            assert x.shape == y.shape
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mine[5], theirs[5], rtol=1e-5, atol=1e-6)


def test_weight_norm_errors():
    layer = chainrule.nn.utils.weight_norm(chainrule.nn.Linear(3, 2))
    with pytest.raises(RuntimeError, match="two weight_norm hooks"):
        chainrule.nn.utils.weight_norm(layer)
    with pytest.raises(ValueError, match="not found"):
        chainrule.nn.utils.remove_weight_norm(chainrule.nn.Linear(3, 2))
