"""Session 38, machA lane: quantized layers on CPUs without AVX512-VNNI.

There torch's x86 engine runs every quantized linear and convolution on fbgemm's AVX2 kernels,
which add each neighbouring pair of uint8 x int8 products saturated to int16; chainrule replays
that saturation where this CPU's features say torch runs it, and adds exactly elsewhere.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule
from chainrule.ao.nn.quantized.modules import kernels

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")]


def test_vnni_query_matches_torchs():
    assert chainrule.cpu._is_vnni_supported() is torch.cpu._is_vnni_supported()


def test_onednn_default_qconfig_warns_as_torch_at_the_callers_line():
    def caught(lib):
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            lib.ao.quantization.get_default_qconfig("onednn")
        return [(w.category, str(w.message), w.filename) for w in records]

    theirs = caught(torch)
    assert caught(chainrule) == theirs
    assert bool(theirs) is not torch.cpu._is_vnni_supported()  # torch warns exactly where VNNI is missing
    assert all(filename == __file__ for _, _, filename in theirs)


def _brute_force_excess(activations: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Every pair of products summed, saturated to int16 and compared with its exact sum."""
    rows, groups, depth = activations.shape
    a = np.zeros((rows, groups, depth + depth % 2), np.int64)
    w = np.zeros((groups, weights.shape[1], depth + depth % 2), np.int64)
    a[..., :depth], w[..., :depth] = activations, weights
    products = a[:, :, None, :] * w[None]  # (rows, groups, outputs, depth)
    pairs = products[..., 0::2] + products[..., 1::2]
    return (np.clip(pairs, -32768, 32767) - pairs).sum(-1)


@pytest.mark.parametrize("rows, groups, outputs, depth", [(40, 1, 9, 48), (33, 1, 5, 7), (20, 3, 4, 27),
                                                          (64, 16, 1, 9), (5, 2, 3, 1), (0, 1, 3, 6)])
def test_saturated_pair_excess_is_every_pairs_overflow(rows, groups, outputs, depth):
    rng = np.random.default_rng(rows + depth)
    activations = rng.integers(100, 256, (rows, groups, depth), dtype=np.uint8)
    weights = rng.integers(-128, 128, (groups, outputs, depth), dtype=np.int8)
    expected = _brute_force_excess(activations, weights)
    assert rows == 0 or depth < 2 or expected.any()  # the data overflows, so the comparison means something
    np.testing.assert_array_equal(kernels.saturated_pair_excess(activations, weights), expected)


def _pairs_overflow(patches: np.ndarray, weights: np.ndarray) -> int:
    return int(np.count_nonzero(_brute_force_excess(patches, weights)))


# (in, out, kernel, stride, padding, dilation, groups): im2col, groupwise, depthwise and pointwise
# paths of fbgemm; measured on an AVX2 CPU, exact sums left 11661 of 37734 outputs of thirteen such
# shapes different from torch's, the replay 0
@pytest.mark.parametrize("shape", [(3, 4, 3, 1, 1, 1, 1), (8, 8, 3, 1, 1, 1, 2), (16, 16, 3, 1, 1, 1, 4),
                                   (8, 8, 3, 2, 1, 1, 4), (5, 7, 1, 2, 0, 1, 1), (6, 6, 5, 1, 2, 1, 6),
                                   (12, 12, 3, 1, 1, 2, 12), (3, 5, 2, 1, 0, 1, 1), (64, 64, 1, 1, 0, 1, 1)])
def test_quantized_conv2d_on_overflowing_pairs_equals_torchs(shape):
    in_channels, out_channels, kernel, stride, padding, dilation, groups = shape
    rng = np.random.default_rng(in_channels * 100 + kernel)
    x = np.abs(rng.standard_normal((2, in_channels, 9, 10)) * 3).astype(np.float32)
    w = rng.standard_normal((out_channels, in_channels // groups, kernel, kernel)).astype(np.float32)
    scales = (np.abs(w.reshape(out_channels, -1)).max(1) / 127.5).astype(np.float64)
    layers, outputs = [], []
    for lib in (chainrule, torch):
        layer = lib.ao.nn.quantized.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding,
                                           dilation=dilation, groups=groups)
        weight = lib.quantize_per_channel(lib.from_numpy(w.copy()), lib.from_numpy(scales),
                                          lib.zeros(out_channels, dtype=lib.int64), 0, lib.qint8)
        layer.set_weight_bias(weight, None)
        layer.scale, layer.zero_point = 0.5, 128
        qx = lib.quantize_per_tensor(lib.from_numpy(x.copy()), 0.012, 3, lib.quint8)
        layers.append((layer, qx))
        outputs.append(layer(qx).int_repr().numpy())
    ours, qx = layers[0]
    assert _pairs_overflow(ours._input_patches(qx), ours._grouped_weight()) > 0
    np.testing.assert_array_equal(outputs[0], outputs[1])


# measured on an AVX2 CPU: exact sums left 53 of 1918 outputs of nine such shapes different, the replay 0
@pytest.mark.parametrize("rows, features, outputs, weight_zero_point", [(9, 6, 4, 0), (11, 7, 13, 0), (8, 33, 17, 0),
                                                                        (16, 100, 20, 0), (20, 64, 48, 4),
                                                                        (5, 4096, 8, 0)])
def test_quantized_linear_on_overflowing_pairs_equals_torchs(rows, features, outputs, weight_zero_point):
    rng = np.random.default_rng(features)
    x = np.abs(rng.standard_normal((rows, features)) * 3).astype(np.float32)
    w = rng.standard_normal((outputs, features)).astype(np.float32)
    results = []
    for lib in (chainrule, torch):
        layer = lib.ao.nn.quantized.Linear(features, outputs)
        weight = lib.quantize_per_tensor(lib.from_numpy(w.copy()), float(np.abs(w).max() / 120), weight_zero_point,
                                         lib.qint8)
        layer.set_weight_bias(weight, lib.zeros(outputs))
        layer.scale, layer.zero_point = 0.5 * np.sqrt(features) / 4, 128
        qx = lib.quantize_per_tensor(lib.from_numpy(x.copy()), 0.012, 3, lib.quint8)
        results.append((layer, qx, layer(qx).int_repr().numpy()))
    (ours, qx, our_out), (_, _, their_out) = results
    assert _pairs_overflow(qx._data[:, None, :], ours._weight._data[None]) > 0
    np.testing.assert_array_equal(our_out, their_out)


def test_seven_bit_activations_never_reach_the_saturating_replay():
    # torch's reduce_range keeps activations below 128, where no pair can leave int16
    qx = chainrule.quantize_per_tensor(chainrule.full((2, 3), 1.27), 0.01, 0, chainrule.quint8)
    assert int(qx.int_repr().max()) == 127
    assert not kernels.pair_sums_can_saturate(qx)
