"""nn.utils.fusion (conv/linear + eval BatchNorm folded into one layer), weight memory-format
conversion and stateless.functional_call, against torch."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)


BN_STATS = [RNG.standard_normal(4), RNG.uniform(0.5, 2.0, 4), RNG.standard_normal(4), RNG.standard_normal(4)]
INPUTS = {"linear": RNG.standard_normal((3, 6)), "conv_transpose": RNG.standard_normal((2, 3, 5, 5)),
          "conv": RNG.standard_normal((2, 3, 6, 6))}


def _set(lib, tensor, values):
    with lib.no_grad():
        tensor.copy_(lib.tensor(np.asarray(values, dtype=np.float32).reshape(tuple(tensor.shape))))


def _bn_stats(lib, bn, channels):
    for tensor, values in zip((bn.running_mean, bn.running_var, bn.weight, bn.bias), BN_STATS):
        _set(lib, tensor, values)


@pytest.mark.parametrize("kind", ["conv", "conv_nobias", "conv_transpose", "linear"])
def test_fused_layer_computes_the_eval_pair_and_matches_torch(kind):
    outputs = []
    for lib in (chainrule, torch):
        nn, utils = lib.nn, lib.nn.utils
        if kind == "linear":
            layer, bn = nn.Linear(6, 4), nn.BatchNorm1d(4)
        elif kind == "conv_transpose":
            layer, bn = nn.ConvTranspose2d(3, 4, 3), nn.BatchNorm2d(4)
        else:
            layer, bn = nn.Conv2d(3, 4, 3, bias=kind == "conv"), nn.BatchNorm2d(4)
        x = INPUTS.get(kind, INPUTS["conv"])
        _set(lib, layer.weight, np.linspace(-1, 1, layer.weight.numel()))
        if layer.bias is not None:
            _set(lib, layer.bias, np.linspace(0.5, -0.5, layer.bias.numel()))
        _bn_stats(lib, bn, 4)
        layer.eval()
        bn.eval()
        x = lib.tensor(x.astype(np.float32))
        if kind == "linear":
            fused = utils.fuse_linear_bn_eval(layer, bn)
        else:
            fused = utils.fuse_conv_bn_eval(layer, bn, transpose=kind == "conv_transpose")
        assert isinstance(fused.weight, nn.Parameter) and isinstance(fused.bias, nn.Parameter)
        with lib.no_grad():
            np.testing.assert_allclose(fused(x).numpy(), bn(layer(x)).numpy(), rtol=1e-4, atol=1e-5)
            outputs.append(fused(x).numpy())
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-4, atol=1e-5)


def test_fusion_refuses_training_mode():
    conv, bn = chainrule.nn.Conv2d(1, 2, 1), chainrule.nn.BatchNorm2d(2)
    with pytest.raises(AssertionError, match="Fusion only for eval"):
        chainrule.nn.utils.fuse_conv_bn_eval(conv, bn)


def test_convert_conv2d_weight_memory_format_and_stateless_call():
    model = chainrule.nn.Sequential(chainrule.nn.Conv2d(3, 4, 3), chainrule.nn.ReLU(), chainrule.nn.Linear(2, 2))
    out = chainrule.nn.utils.convert_conv2d_weight_memory_format(model, chainrule.channels_last)
    assert out is model and model[0].weight.is_contiguous(memory_format=chainrule.channels_last)
    linear = chainrule.nn.Linear(2, 1)
    weight = chainrule.ones(1, 2, requires_grad=True)
    y = chainrule.nn.utils.stateless.functional_call(linear, {"weight": weight, "bias": chainrule.zeros(1)},
                                                     (chainrule.tensor([[1.0, 2.0]]),))
    assert y.item() == 3.0
    y.sum().backward()
    assert weight.grad.tolist() == [[1.0, 2.0]] and linear.weight.grad is None
