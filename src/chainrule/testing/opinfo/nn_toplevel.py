"""torch's top-level ATen spellings of nn ops (chainrule/ops/nn_toplevel.py) added in s7: the native_*
forms with their statistics, constant_pad_nd, convolution, grid_sampler, the recurrent functions over
a flat weight list, segment_reduce, and the in-place dropouts (eval mode: random draws are not
comparable with torch's generator). Statistics that torch defines no gradient for are compared
detached."""

from __future__ import annotations

import numpy as np

from .core import OpCase, OpInfo, cached, randn, select


def _rnn_weights(gates: int, hidden: int, inputs: int, layers: int, directions: int, seed: int) -> list:
    weights = []
    for layer in range(layers):
        width = inputs if layer == 0 else hidden * directions
        for direction in range(directions):
            s = seed + 10 * layer + 5 * direction
            weights += [randn(gates * hidden, width, seed=s) * 0.5, randn(gates * hidden, hidden, seed=s + 1) * 0.5,
                        randn(gates * hidden, seed=s + 2) * 0.5, randn(gates * hidden, seed=s + 3) * 0.5]
    return weights


def _network(function: str, lstm: bool, **options):
    layers = options.get("num_layers", 1)
    bidirectional = options.get("bidirectional", False)
    batch_first = options.get("batch_first", False)

    def run(lib, x, h, *rest):
        c, weights = (rest[0], list(rest[1:])) if lstm else (None, list(rest))
        hx = (h, c) if lstm else h
        return tuple(getattr(lib, function)(x, hx, weights, True, layers, 0.0, False, bidirectional, batch_first))

    return run


def _network_inputs(gates: int, lstm: bool, *, num_layers: int = 1, bidirectional: bool = False,
                    batch_first: bool = False) -> list:
    directions = 2 if bidirectional else 1
    x = randn(2, 3, 4, seed=40)  # (T, B, I), or (B, T, I) with batch_first
    states = [randn(num_layers * directions, 2 if batch_first else 3, 5, seed=41 + k) for k in range(2 if lstm else 1)]
    return [x] + states + _rnn_weights(gates, 5, 4, num_layers, directions, seed=50)


@cached
def _cases() -> list[OpCase]:
    x4 = randn(2, 3, 5, 4, seed=1)
    grid = np.clip(randn(2, 4, 3, 2, seed=2) * 0.6, -1, 1)
    return [
        OpCase("aten_native_layer_norm", lambda lib, x, w, b: (lambda o, m, r: (o, m.detach(), r.detach()))(
            *lib.native_layer_norm(x, [4], w, b, 1e-5)), [randn(2, 3, 4), randn(4, seed=1), randn(4, seed=2)]),
        OpCase("aten_native_batch_norm_training", lambda lib, x, w, b: (lambda o, m, r: (o, m.detach(), r.detach()))(
            *lib.native_batch_norm(x, w, b, None, None, True, 0.1, 1e-5)),
            [randn(4, 3, 2), randn(3, seed=1), randn(3, seed=2)]),
        OpCase("aten_native_batch_norm_eval", lambda lib, x, w, m, v: lib.native_batch_norm(
            x, w, None, lib.tensor(m), lib.tensor(v), False, 0.1, 1e-5)[0],
            [randn(4, 3), randn(3, seed=1), randn(3, seed=2), np.abs(randn(3, seed=3)) + 0.5], grad=[True, True, False, False]),
        OpCase("aten_native_dropout_eval", lambda lib, x: tuple(lib.native_dropout(x, 0.5, False)), [randn(3, 4)]),
        OpCase("aten_dropout_inplace_eval", lambda lib, x: lib.dropout_(x * 1, 0.5, False), [randn(3, 4)]),
        OpCase("aten_alpha_dropout_inplace_eval", lambda lib, x: lib.alpha_dropout_(x * 1, 0.5, False), [randn(3, 4)]),
        OpCase("aten_feature_dropout_inplace_eval", lambda lib, x: lib.feature_dropout_(x * 1, 0.5, False),
               [randn(2, 3, 4)]),
        OpCase("aten_feature_alpha_dropout_eval", lambda lib, x: lib.feature_alpha_dropout(x, 0.5, False), [randn(2, 3, 4)]),
        OpCase("aten_feature_alpha_dropout_inplace_eval", lambda lib, x: lib.feature_alpha_dropout_(x * 1, 0.5, False),
               [randn(2, 3, 4)]),
        OpCase("aten_constant_pad_nd", lambda lib, x: lib.constant_pad_nd(x, [1, 2, 0, -1], 0.5), [randn(2, 3, 4)]),
        OpCase("aten_convolution", lambda lib, x, w, b: lib.convolution(x, w, b, [1, 2], [1, 0], [1, 1], False, [0, 0], 1),
               [x4, randn(2, 3, 3, 2, seed=3), randn(2, seed=4)]),
        OpCase("aten_convolution_transposed_1d", lambda lib, x, w: lib.convolution(x, w, None, [2], [1], [1], True, [1], 1),
               [randn(2, 3, 5, seed=5), randn(3, 2, 3, seed=6)]),
        OpCase("aten_grid_sampler", lambda lib, x, g: lib.grid_sampler(x, g, 0, 1, False), [x4, grid]),
        OpCase("aten_grid_sampler_2d", lambda lib, x, g: lib.grid_sampler_2d(x, g, 1, 0, True), [x4, grid], grad=[True, False]),
        OpCase("aten_grid_sampler_3d", lambda lib, x, g: lib.grid_sampler_3d(x, g, 0, 2, False),
               [randn(1, 2, 3, 4, 3, seed=7), np.clip(randn(1, 2, 2, 3, 3, seed=8) * 0.6, -1, 1)]),
        OpCase("aten_rnn_tanh", _network("rnn_tanh", False), _network_inputs(1, False), gradgradcheck=False),
        OpCase("aten_rnn_relu_bidirectional", _network("rnn_relu", False, bidirectional=True),
               _network_inputs(1, False, bidirectional=True), gradgradcheck=False),
        OpCase("aten_gru_two_layers", _network("gru", False, num_layers=2), _network_inputs(3, False, num_layers=2),
               gradgradcheck=False),
        OpCase("aten_lstm_batch_first", _network("lstm", True, batch_first=True), _network_inputs(4, True, batch_first=True),
               gradgradcheck=False),
        OpCase("aten_rnn_tanh_cell", lambda lib, x, h, wi, wh, bi, bh: lib.rnn_tanh_cell(x, h, wi, wh, bi, bh),
               [randn(3, 4), randn(3, 5, seed=1)] + _rnn_weights(1, 5, 4, 1, 1, seed=60)),
        OpCase("aten_rnn_relu_cell", lambda lib, x, h, wi, wh: lib.rnn_relu_cell(x, h, wi, wh),
               [randn(3, 4), randn(3, 5, seed=1)] + _rnn_weights(1, 5, 4, 1, 1, seed=61)[:2]),
        OpCase("aten_gru_cell", lambda lib, x, h, wi, wh, bi, bh: lib.gru_cell(x, h, wi, wh, bi, bh),
               [randn(3, 4), randn(3, 5, seed=1)] + _rnn_weights(3, 5, 4, 1, 1, seed=62), gradgradcheck=False),
        OpCase("aten_lstm_cell", lambda lib, x, h, c, wi, wh, bi, bh: tuple(lib.lstm_cell(x, (h, c), wi, wh, bi, bh)),
               [randn(3, 4), randn(3, 5, seed=1), randn(3, 5, seed=2)] + _rnn_weights(4, 5, 4, 1, 1, seed=63),
               gradgradcheck=False),
        OpCase("segment_reduce_sum_lengths", lambda lib, x: lib.segment_reduce(x, "sum", lengths=lib.tensor([2, 0, 3])),
               [randn(5, 3)]),
        OpCase("segment_reduce_mean_offsets", lambda lib, x: lib.segment_reduce(x, "mean", offsets=lib.tensor([0, 2, 5])),
               [randn(5)]),
        OpCase("segment_reduce_max_initial", lambda lib, x: lib.segment_reduce(x, "max", lengths=lib.tensor([3, 2]),
                                                                               initial=0.0), [randn(5, 2)]),
        OpCase("segment_reduce_prod", lambda lib, x: lib.segment_reduce(x, "prod", lengths=lib.tensor([1, 4])), [randn(5)]),
    ]


def _entry(name: str, *patterns: str) -> OpInfo:
    return OpInfo(name, "nn_toplevel", select(_cases, *patterns))


op_db: list[OpInfo] = [
    _entry("native_layer_norm", "aten_native_layer_norm"),
    _entry("native_batch_norm", "aten_native_batch_norm_*"),
    _entry("native_dropout", "aten_native_dropout_eval"),
    _entry("dropout_", "aten_dropout_inplace_eval"),
    _entry("alpha_dropout_", "aten_alpha_dropout_inplace_eval"),
    _entry("feature_dropout_", "aten_feature_dropout_inplace_eval"),
    _entry("feature_alpha_dropout", "aten_feature_alpha_dropout_eval"),
    _entry("feature_alpha_dropout_", "aten_feature_alpha_dropout_inplace_eval"),
    _entry("constant_pad_nd", "aten_constant_pad_nd"),
    _entry("convolution", "aten_convolution*"),
    _entry("grid_sampler", "aten_grid_sampler"),
    _entry("grid_sampler_2d", "aten_grid_sampler_2d"),
    _entry("grid_sampler_3d", "aten_grid_sampler_3d"),
    _entry("rnn_tanh", "aten_rnn_tanh"),
    _entry("rnn_relu", "aten_rnn_relu_bidirectional"),
    _entry("gru", "aten_gru_two_layers"),
    _entry("lstm", "aten_lstm_batch_first"),
    _entry("rnn_tanh_cell", "aten_rnn_tanh_cell"),
    _entry("rnn_relu_cell", "aten_rnn_relu_cell"),
    _entry("gru_cell", "aten_gru_cell"),
    _entry("lstm_cell", "aten_lstm_cell"),
    _entry("segment_reduce", "segment_reduce_*"),
]
