"""embedding_bag, the margin, Gaussian and CTC losses and the 3-d adaptive pools of nn.functional.

Integer inputs (indices, offsets, targets, lengths) are constants of each case; float inputs are
differentiated. Max-reducing cases use tie-free values, so the gradient's route is unambiguous.
"""

from __future__ import annotations

import numpy as np

from .core import OpCase, OpInfo, distinct, positive, randn


def _F(lib):
    return lib.nn.functional


def _bag(indices, offsets=None, **kwargs):
    def fn(lib, weight, *per_sample_weights):
        return _F(lib).embedding_bag(lib.tensor(indices), weight, None if offsets is None else lib.tensor(offsets),
                                     per_sample_weights=per_sample_weights[0] if per_sample_weights else None,
                                     **kwargs)
    return fn


_WORDS = np.array([1, 2, 4, 5, 4, 3, 2, 9])
_LABELS = np.array([0, 3, 4, 3])
_MULTILABEL = np.array([[3, 0, -1, 1, 2], [0, 1, 2, 3, 4], [-1, 2, 0, 0, 0], [4, 4, 1, -1, 0]])


def _gaussian(**kwargs):
    return lambda lib, x, t, v: _F(lib).gaussian_nll_loss(x, t, v, **kwargs)


def _multi_margin(labels, **kwargs):
    return lambda lib, x, *w: _F(lib).multi_margin_loss(x, lib.tensor(labels), weight=w[0] if w else None, **kwargs)


def _multilabel(labels, **kwargs):
    return lambda lib, x: _F(lib).multilabel_margin_loss(x, lib.tensor(labels), **kwargs)


def _ctc(targets, input_lengths, target_lengths, **kwargs):
    # through log_softmax: torch's CTC gradient is the logits' (ops/ctc.py), which gradcheck can verify
    return lambda lib, logits: _F(lib).ctc_loss(logits.log_softmax(-1), lib.tensor(targets), input_lengths,
                                                target_lengths, **kwargs)


def _indices_of(name: str, *args):
    return lambda lib, x: getattr(_F(lib), name)(x, *args)


def _soft_targets(*shape):
    return (np.random.default_rng(5).random(shape) > 0.5).astype(np.float64)

op_db: list[OpInfo] = [
    OpInfo("nn.functional.embedding_bag", "nn_missing", lambda: [
        OpCase("embedding_bag_2d_mean", _bag(np.array([[1, 2, 4], [4, 3, 9]])), [randn(10, 3)]),
        OpCase("embedding_bag_sum_empty_bag", _bag(_WORDS, np.array([0, 4, 4, 6]), mode="sum"), [randn(10, 3)]),
        OpCase("embedding_bag_mean_padding", _bag(_WORDS, np.array([0, 3, 5]), padding_idx=4), [randn(10, 3)]),
        OpCase("embedding_bag_max", _bag(_WORDS, np.array([0, 3, 3, 5]), mode="max"), [distinct(10, 3)]),
        OpCase("embedding_bag_per_sample_weights", _bag(_WORDS, np.array([0, 3, 3, 5]), mode="sum"),
               [randn(10, 3), randn(8, seed=1)]),
        OpCase("embedding_bag_include_last_offset", _bag(_WORDS, np.array([0, 2, 5, 8]), mode="sum",
                                                         include_last_offset=True), [randn(10, 3)]),
    ]),
    # torch.embedding_bag: ATen's form (weight first, an int mode), its bags compared (the index
    # results in tests/compat/test_s27_fixes4.py)
    OpInfo("embedding_bag", "nn_missing", lambda: [
        OpCase("aten_embedding_bag_mean", lambda lib, weight: lib.embedding_bag(
            weight, lib.tensor(_WORDS), lib.tensor(np.array([0, 3, 3, 5])), False, 1)[0], [randn(10, 3)]),
        OpCase("aten_embedding_bag_max", lambda lib, weight: lib.embedding_bag(
            weight, lib.tensor(_WORDS), lib.tensor(np.array([0, 3, 5])), False, 2)[0], [distinct(10, 3)]),
    ]),
    OpInfo("nn.functional.gaussian_nll_loss", "nn_missing", lambda: [
        OpCase("gaussian_nll_loss", _gaussian(), [randn(4, 5), randn(4, 5, seed=1), positive(4, 5, seed=2)]),
        OpCase("gaussian_nll_loss_full_sum", _gaussian(full=True, reduction="sum"),
               [randn(4, 5), randn(4, 5, seed=1), positive(4, 5, seed=2)]),
        OpCase("gaussian_nll_loss_homoscedastic_none", _gaussian(reduction="none"),
               [randn(4, 5), randn(4, 5, seed=1), positive(4, seed=2)]),
    ]),
    OpInfo("nn.functional.multi_margin_loss", "nn_missing", lambda: [
        OpCase("multi_margin_loss", _multi_margin(_LABELS), [randn(4, 5)]),
        OpCase("multi_margin_loss_p2_weight_sum", _multi_margin(_LABELS, p=2, margin=0.7, reduction="sum"),
               [randn(4, 5), positive(5, seed=1)], grad=[True, False]),
        OpCase("multi_margin_loss_unbatched_none", _multi_margin(np.array(2), reduction="none"), [randn(5)]),
    ]),
    OpInfo("nn.functional.multilabel_margin_loss", "nn_missing", lambda: [
        OpCase("multilabel_margin_loss", _multilabel(_MULTILABEL), [randn(4, 5)]),
        OpCase("multilabel_margin_loss_none", _multilabel(_MULTILABEL, reduction="none"), [randn(4, 5)]),
        OpCase("multilabel_margin_loss_unbatched", _multilabel(_MULTILABEL[3]), [randn(5)]),
    ]),
    OpInfo("nn.functional.multilabel_soft_margin_loss", "nn_missing", lambda: [
        OpCase("multilabel_soft_margin_loss", lambda lib, x, t: _F(lib).multilabel_soft_margin_loss(x, t),
               [randn(4, 5), _soft_targets(4, 5)]),
        OpCase("multilabel_soft_margin_loss_weight_none", lambda lib, x, t, w: _F(lib).multilabel_soft_margin_loss(
            x, t, weight=w, reduction="none"), [randn(4, 5), _soft_targets(4, 5), positive(5, seed=1)]),
    ]),
    # torch's CTC backward is not differentiable again; neither is chainrule's
    OpInfo("nn.functional.ctc_loss", "nn_missing", lambda: [
        OpCase("ctc_loss", _ctc(np.array([[1, 2, 2], [3, 1, 0], [4, 0, 0]]), [6, 5, 4], [3, 2, 1]),
               [randn(6, 3, 5)]),
        OpCase("ctc_loss_concatenated_sum", _ctc(np.array([1, 2, 2, 3, 1, 4]), [6, 5, 4], [3, 2, 1], reduction="sum"),
               [randn(6, 3, 5)]),
        OpCase("ctc_loss_blank_none", _ctc(np.array([[1, 0], [3, 3]]), [5, 6], [2, 2], blank=4, reduction="none"),
               [randn(6, 2, 5)]),
    ], supports_gradgrad=False),
    OpInfo("nn.functional.adaptive_avg_pool3d", "nn_missing", lambda: [
        OpCase("adaptive_avg_pool3d", lambda lib, x: _F(lib).adaptive_avg_pool3d(x, (2, None, 3)), [randn(2, 2, 3, 4, 5)]),
        OpCase("adaptive_avg_pool3d_unbatched_global", lambda lib, x: _F(lib).adaptive_avg_pool3d(x, 1),
               [randn(2, 3, 4, 5)]),
    ]),
    OpInfo("nn.functional.adaptive_max_pool3d", "nn_missing", lambda: [
        OpCase("adaptive_max_pool3d", lambda lib, x: _F(lib).adaptive_max_pool3d(x, (2, 3, 2), return_indices=True),
               [distinct(2, 2, 3, 5, 4)]),
    ]),
    OpInfo("nn.functional.adaptive_max_pool3d_with_indices", "nn_missing", lambda: [
        OpCase("adaptive_max_pool3d_with_indices", _indices_of("adaptive_max_pool3d_with_indices", 2),
               [distinct(2, 3, 5, 4)]),
    ]),
    OpInfo("nn.functional.adaptive_max_pool1d_with_indices", "nn_missing", lambda: [
        OpCase("adaptive_max_pool1d_with_indices", _indices_of("adaptive_max_pool1d_with_indices", 3),
               [distinct(2, 3, 7)]),
    ]),
    OpInfo("nn.functional.adaptive_max_pool2d_with_indices", "nn_missing", lambda: [
        OpCase("adaptive_max_pool2d_with_indices", _indices_of("adaptive_max_pool2d_with_indices", (3, 2)),
               [distinct(2, 3, 7, 5)]),
    ]),
    OpInfo("nn.functional.max_pool1d_with_indices", "nn_missing", lambda: [
        OpCase("max_pool1d_with_indices", _indices_of("max_pool1d_with_indices", 3, 2), [distinct(2, 3, 7)]),
    ]),
    OpInfo("nn.functional.max_pool2d_with_indices", "nn_missing", lambda: [
        OpCase("max_pool2d_with_indices", _indices_of("max_pool2d_with_indices", 3, 2, 1), [distinct(2, 3, 7, 5)]),
    ]),
    OpInfo("nn.functional.max_pool3d_with_indices", "nn_missing", lambda: [
        OpCase("max_pool3d_with_indices", _indices_of("max_pool3d_with_indices", 2), [distinct(1, 2, 4, 4, 5)]),
    ]),
    # eval mode, the fixed slope (lower + upper) / 2; written into a copy of the input, as activation.py's _inplace
    OpInfo("nn.functional.rrelu_", "nn_missing", lambda: [
        OpCase("rrelu_", lambda lib, x: _F(lib).rrelu_(x * 1.0, 0.1, 0.3), [randn(3, 5, seed=6, low_gap=0.1)]),
    ]),
    OpInfo("nn.functional.feature_alpha_dropout", "nn_missing", lambda: [
        OpCase("feature_alpha_dropout_eval", lambda lib, x: _F(lib).feature_alpha_dropout(x, 0.3), [randn(2, 3, 4)]),
    ]),
]
