"""s58 mendDO: vmap over in-place activations and of products, against torch 2.13."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

_IN_PLACE = {
    "relu_": lambda lib, y: lib.nn.functional.relu_(y),
    "Tensor.relu_": lambda lib, y: y.relu_(),
    "ReLU(inplace=True)": lambda lib, y: lib.nn.ReLU(inplace=True)(y),
    "hardtanh_": lambda lib, y: lib.nn.functional.hardtanh_(y),
    "leaky_relu_": lambda lib, y: lib.nn.functional.leaky_relu_(y, 0.1),
    "elu_": lambda lib, y: lib.nn.functional.elu_(y),
    "silu(inplace=True)": lambda lib, y: lib.nn.functional.silu(y, inplace=True),
    "Tensor.tanh_": lambda lib, y: y.tanh_(),
}


@pytest.mark.parametrize("name", sorted(_IN_PLACE))
def test_vmap_grad_of_in_place_activation_after_layer_norm_runs_once_on_the_batch(name):
    # the write into layer_norm's output (which its node's x̂ shares) was replayed nowhere: each slice ran alone
    x = np.random.default_rng(58).standard_normal((4, 3, 5))
    weights = np.random.default_rng(59).standard_normal(5)

    def build(lib):
        calls = []

        def loss(xi):
            calls.append(1)
            y = _IN_PLACE[name](lib, lib.nn.functional.layer_norm(xi, (5,)))
            return (y * lib.tensor(weights)).sum()

        out = lib.func.vmap(lib.func.grad(loss))(lib.tensor(x))
        return out.detach().numpy(), len(calls)

    (ours, our_calls), (theirs, their_calls) = build(chainrule), build(torch)
    assert our_calls == their_calls == 1
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)

