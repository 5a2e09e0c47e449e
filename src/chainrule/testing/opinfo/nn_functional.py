"""The rest of nn.functional: linear maps, embedding, one_hot, dropout (off, or p = 0), resampling,
pixel and channel shuffles, distances and attention. Today their Functions live in nn/functional.py;
the entries call the public names, so they hold wherever the Functions move."""

from __future__ import annotations

import numpy as np

from .core import OpCase, OpInfo, randn, rng


def _F(lib):
    return lib.nn.functional


def _functional(name: str, samples, **kwargs) -> OpInfo:
    return OpInfo(f"nn.functional.{name}", "nn_functional", samples, **kwargs)


def _dropout(name: str, shape: tuple[int, ...]) -> OpInfo:
    """Dropout draws from chainrule's generator, not torch's: compared where it draws nothing."""

    def samples() -> list[OpCase]:
        return [OpCase(f"{name}_eval", lambda lib, x: getattr(_F(lib), name)(x, 0.5, training=False), [randn(*shape)]),
                OpCase(f"{name}_p0", lambda lib, x: getattr(_F(lib), name)(x, 0.0, training=True), [randn(*shape)])]

    return _functional(name, samples)


def _indices(*shape, high: int, seed: int = 0) -> np.ndarray:
    return rng(seed).integers(0, high, shape)


def _multi_head_attention(lib, q, k, v, w_in, b_in, w_out, b_out):
    out, weights = _F(lib).multi_head_attention_forward(
        q, k, v, 4, 2, w_in, b_in, None, None, False, 0.0, w_out, b_out, training=False, need_weights=True)
    return out, weights


op_db: list[OpInfo] = [
    _functional("linear", lambda: [
        OpCase("linear", lambda lib, x, w, b: _F(lib).linear(x, w, b), [randn(2, 3, 4), randn(5, 4, seed=1),
                                                                        randn(5, seed=2)]),
        OpCase("linear_no_bias", lambda lib, x, w: _F(lib).linear(x, w), [randn(4), randn(3, 4, seed=1)]),
        # each of torch's graphs: addmm and mm for rows, matmul's for a non-contiguous input (the bias
        # added after), a bias of rows that addmm broadcasts, a vector input with a bias
        OpCase("linear_rows", lambda lib, x, w, b: _F(lib).linear(x, w, b), [randn(3, 4), randn(5, 4, seed=1),
                                                                             randn(5, seed=2)]),
        OpCase("linear_rows_no_bias", lambda lib, x, w: _F(lib).linear(x, w), [randn(3, 4), randn(5, 4, seed=1)]),
        OpCase("linear_noncontiguous", lambda lib, x, w, b: _F(lib).linear(x.transpose(0, 1), w, b),
               [randn(3, 2, 4), randn(5, 4, seed=1), randn(5, seed=2)]),
        OpCase("linear_bias_of_rows", lambda lib, x, w, b: _F(lib).linear(x, w, b),
               [randn(3, 4), randn(5, 4, seed=1), randn(3, 5, seed=2)]),
        OpCase("linear_vector", lambda lib, x, w, b: _F(lib).linear(x, w, b), [randn(4), randn(3, 4, seed=1),
                                                                               randn(3, seed=2)]),
    ]),
    _functional("bilinear", lambda: [
        OpCase("bilinear", lambda lib, a, b, w, c: _F(lib).bilinear(a, b, w, c),
               [randn(3, 2), randn(3, 4, seed=1), randn(5, 2, 4, seed=2), randn(5, seed=3)]),
    ]),
    _functional("embedding", lambda: [
        OpCase("embedding", lambda lib, i, w: _F(lib).embedding(lib.tensor(i), w), [_indices(2, 3, high=5), randn(5, 4)]),
        # the padding row gets no gradient by definition, so it is not the finite-difference Jacobian;
        # the comparison with torch checks that zero row
        OpCase("embedding_padding_idx", lambda lib, i, w: _F(lib).embedding(lib.tensor(i), w, padding_idx=1),
               [np.array([[1, 2, 1], [0, 4, 4]]), randn(5, 4)], gradcheck=False, gradgradcheck=False),
        # each row's gradient divided by its index's count in the batch: not the Jacobian either
        OpCase("embedding_scale_grad_by_freq",
               lambda lib, i, w: _F(lib).embedding(lib.tensor(i), w, scale_grad_by_freq=True),
               [np.array([[1, 2, 1], [0, 1, 4]]), randn(5, 4)], gradcheck=False, gradgradcheck=False),
    ]),
    _functional("one_hot", lambda: [
        OpCase("one_hot", lambda lib, i: _F(lib).one_hot(lib.tensor(i)), [np.array([0, 3, 1, 3])]),
        OpCase("one_hot_classes", lambda lib, i: _F(lib).one_hot(lib.tensor(i), 6), [_indices(2, 3, high=6)]),
    ], supports_autograd=False),
    _dropout("dropout", (3, 4)),
    _dropout("dropout1d", (2, 3, 4)),
    _dropout("dropout2d", (2, 3, 4, 2)),
    _dropout("dropout3d", (2, 3, 2, 2, 2)),
    _functional("alpha_dropout", lambda: [
        OpCase("alpha_dropout_eval", lambda lib, x: _F(lib).alpha_dropout(x, 0.3, training=False), [randn(3, 4)]),
    ]),
    _functional("interpolate", lambda: [
        OpCase("interpolate_nearest", lambda lib, x: _F(lib).interpolate(x, scale_factor=2), [randn(1, 2, 3, 4)]),
        OpCase("interpolate_nearest_size", lambda lib, x: _F(lib).interpolate(x, size=(5, 3)), [randn(1, 2, 3, 4)]),
        OpCase("interpolate_bilinear", lambda lib, x: _F(lib).interpolate(x, size=(5, 7), mode="bilinear"),
               [randn(2, 2, 3, 4)]),
        OpCase("interpolate_bilinear_corners", lambda lib, x: _F(lib).interpolate(
            x, scale_factor=2, mode="bilinear", align_corners=True), [randn(1, 2, 3, 3)]),
        OpCase("interpolate_linear", lambda lib, x: _F(lib).interpolate(x, size=7, mode="linear"), [randn(2, 3, 4)]),
        OpCase("interpolate_bicubic", lambda lib, x: _F(lib).interpolate(x, size=(7, 3), mode="bicubic"),
               [randn(2, 2, 4, 5)]),
        OpCase("interpolate_bicubic_corners", lambda lib, x: _F(lib).interpolate(
            x, scale_factor=(1.5, 2.3), mode="bicubic", align_corners=True), [randn(1, 2, 4, 3)]),
        OpCase("interpolate_bicubic_down", lambda lib, x: _F(lib).interpolate(x, scale_factor=0.5, mode="bicubic"),
               [randn(1, 1, 6, 5)]),
        OpCase("interpolate_area", lambda lib, x: _F(lib).interpolate(x, size=(2, 3), mode="area"), [randn(1, 2, 5, 7)]),
        OpCase("interpolate_area_1d", lambda lib, x: _F(lib).interpolate(x, scale_factor=0.5, mode="area"),
               [randn(2, 3, 6)]),
    ]),
    _functional("upsample", lambda: [
        OpCase("upsample", lambda lib, x: _F(lib).upsample(x, scale_factor=2), [randn(1, 2, 3, 3)]),
    ]),
    _functional("upsample_nearest", lambda: [
        OpCase("upsample_nearest", lambda lib, x: _F(lib).upsample_nearest(x, size=(4, 6)), [randn(1, 2, 2, 3)]),
    ]),
    _functional("upsample_bilinear", lambda: [
        OpCase("upsample_bilinear", lambda lib, x: _F(lib).upsample_bilinear(x, scale_factor=2), [randn(1, 2, 2, 3)]),
    ]),
    _functional("pixel_shuffle", lambda: [
        OpCase("pixel_shuffle", lambda lib, x: _F(lib).pixel_shuffle(x, 2), [randn(2, 8, 3, 2)]),
    ]),
    _functional("pixel_unshuffle", lambda: [
        OpCase("pixel_unshuffle", lambda lib, x: _F(lib).pixel_unshuffle(x, 2), [randn(2, 2, 4, 6)]),
    ]),
    _functional("channel_shuffle", lambda: [
        OpCase("channel_shuffle", lambda lib, x: _F(lib).channel_shuffle(x, 3), [randn(2, 6, 2, 2)]),
    ]),
    # its own op in torch, with no derivative (a backward through it raises: tests/compat/test_s35_mendF.py)
    _functional("native_channel_shuffle", lambda: [
        OpCase("native_channel_shuffle", lambda lib, x: _F(lib).native_channel_shuffle(x, 3), [randn(2, 6, 2, 2)],
               grad=[False], gradcheck=False, gradgradcheck=False),
    ], aliases=("native_channel_shuffle",), supports_autograd=False),
    _functional("cosine_similarity", lambda: [
        OpCase("cosine_similarity", lambda lib, a, b: _F(lib).cosine_similarity(a, b), [randn(3, 4), randn(3, 4, seed=1)]),
        OpCase("cosine_similarity_broadcast", lambda lib, a, b: _F(lib).cosine_similarity(a, b, dim=-1),
               [randn(2, 1, 4), randn(3, 4, seed=1)]),
    ]),
    _functional("pairwise_distance", lambda: [
        OpCase("pairwise_distance", lambda lib, a, b: _F(lib).pairwise_distance(a, b), [randn(3, 4), randn(3, 4, seed=1)]),
        OpCase("pairwise_distance_p1_keepdim", lambda lib, a, b: _F(lib).pairwise_distance(a, b, p=1.0, keepdim=True),
               [randn(3, 4), randn(3, 4, seed=1, low_gap=0.3)]),
    ]),
    _functional("pdist", lambda: [
        OpCase("pdist", lambda lib, x: _F(lib).pdist(x), [randn(4, 3)]),
        OpCase("pdist_p3", lambda lib, x: _F(lib).pdist(x, p=3.0), [randn(5, 2, seed=1)]),
    ], supports_gradgrad=False),  # torch's _pdist_backward is not differentiable again
    _functional("scaled_dot_product_attention", lambda: [
        OpCase("sdpa", lambda lib, q, k, v: _F(lib).scaled_dot_product_attention(q, k, v),
               [randn(2, 3, 4), randn(2, 5, 4, seed=1), randn(2, 5, 2, seed=2)]),
        OpCase("sdpa_causal_scale", lambda lib, q, k, v: _F(lib).scaled_dot_product_attention(
            q, k, v, is_causal=True, scale=0.3), [randn(1, 2, 4, 3), randn(1, 2, 4, 3, seed=1), randn(1, 2, 4, 3, seed=2)]),
        OpCase("sdpa_float_mask", lambda lib, q, k, v, m: _F(lib).scaled_dot_product_attention(q, k, v, attn_mask=m),
               [randn(2, 3, 4), randn(2, 5, 4, seed=1), randn(2, 5, 2, seed=2), randn(3, 5, seed=3)],
               grad=[True, True, True, False]),
    ]),
    _functional("multi_head_attention_forward", lambda: [
        # second order is checked on its parts (linear, softmax, matmul); here it would cost seconds
        OpCase("multi_head_attention_forward", _multi_head_attention,
               [randn(2, 1, 4), randn(3, 1, 4, seed=1), randn(3, 1, 4, seed=2), randn(12, 4, seed=3) * 0.5,
                randn(12, seed=4), randn(4, 4, seed=5) * 0.5, randn(4, seed=6)], gradgradcheck=False),
        # one tensor as query, key and value (self-attention), and as key and value (encoder-decoder
        # attention): torch packs those projections into one linear, and so does chainrule
        OpCase("multi_head_attention_forward_self",
               lambda lib, x, *params: _multi_head_attention(lib, x, x, x, *params),
               [randn(3, 1, 4), randn(12, 4, seed=3) * 0.5, randn(12, seed=4), randn(4, 4, seed=5) * 0.5,
                randn(4, seed=6)], gradgradcheck=False),
        OpCase("multi_head_attention_forward_memory",
               lambda lib, q, memory, *params: _multi_head_attention(lib, q, memory, memory, *params),
               [randn(2, 1, 4), randn(3, 1, 4, seed=1), randn(12, 4, seed=3) * 0.5, randn(12, seed=4),
                randn(4, 4, seed=5) * 0.5, randn(4, seed=6)], gradgradcheck=False),
    ]),
    # torch's top-level ATen forms (the weight first for embedding; dropout's train flag is positional)
    OpInfo("embedding", "nn_functional", lambda: [
        OpCase("aten_embedding", lambda lib, w, i: lib.embedding(w, lib.tensor(i)), [randn(5, 4), _indices(2, 3, high=5)]),
        OpCase("aten_embedding_padding_idx", lambda lib, w, i: lib.embedding(w, lib.tensor(i), 1),
               [randn(5, 4), _indices(2, 3, high=5, seed=1)]),
    ]),
    OpInfo("dropout", "nn_functional", lambda: [
        OpCase("aten_dropout_eval", lambda lib, x: lib.dropout(x, 0.5, False), [randn(3, 4)]),
    ]),
    OpInfo("alpha_dropout", "nn_functional", lambda: [
        OpCase("aten_alpha_dropout_eval", lambda lib, x: lib.alpha_dropout(x, 0.5, False), [randn(3, 4)]),
    ]),
    OpInfo("feature_dropout", "nn_functional", lambda: [
        OpCase("aten_feature_dropout_eval", lambda lib, x: lib.feature_dropout(x, 0.5, False), [randn(2, 3, 4)]),
    ]),
]
