"""Losses (chainrule/ops/loss.py and nn.functional): each reduction, class-index and probability
targets, weights, ignore_index; inputs kept off the kinks of the piecewise losses."""

from __future__ import annotations

import numpy as np

from .core import OpCase, OpInfo, positive, randn, rng


def _labels(n: int, classes: int, seed: int = 0) -> np.ndarray:
    return rng(seed).integers(0, classes, n)


def _signs(*shape, seed: int = 0) -> np.ndarray:
    return np.where(rng(seed).integers(0, 2, shape) == 1, 1.0, -1.0)


def _probabilities(*shape, seed: int = 0) -> np.ndarray:
    return rng(seed).uniform(0.05, 0.95, shape)


# torch does not differentiate the class-index NLL with respect to its class weights (it raises
# when they require grad; tests/ops/test_loss_gradients.py); with class probabilities it does
_NOT_THE_WEIGHT = [True, False, False]


def _loss(name: str, samples) -> OpInfo:
    # the public name is nn.functional's; chainrule's top level re-exports most losses as the same object
    return OpInfo(f"nn.functional.{name}", "loss", samples)


def _F(lib):
    return lib.nn.functional


def _pointwise(name: str, **extra) -> OpInfo:
    """A loss of (input, target) of one shape, under each reduction; the target is differentiated too."""

    def samples() -> list[OpCase]:
        x, y = randn(3, 4, seed=1), randn(3, 4, seed=2, low_gap=0.2)
        return [OpCase(f"{name}_{reduction}", lambda lib, a, b, r=reduction: getattr(_F(lib), name)(a, b, reduction=r, **extra),
                       [x, x + y]) for reduction in ("mean", "sum", "none")]

    return _loss(name, samples)


def _cross_entropy() -> list[OpCase]:
    logits, labels = randn(4, 5), _labels(4, 5)
    return [
        OpCase("cross_entropy", lambda lib, x, t: _F(lib).cross_entropy(x, lib.tensor(t)), [logits, labels]),
        OpCase("cross_entropy_weight_ignore", lambda lib, x, t, w: _F(lib).cross_entropy(
            x, lib.tensor(t), weight=w, ignore_index=2, reduction="sum"), [logits, labels, positive(5)],
            grad=_NOT_THE_WEIGHT),
        OpCase("cross_entropy_smoothing", lambda lib, x, t: _F(lib).cross_entropy(x, lib.tensor(t), label_smoothing=0.1),
               [logits, labels]),
        OpCase("cross_entropy_probabilities", lambda lib, x, p: _F(lib).cross_entropy(x, p.softmax(1)),
               [logits, randn(4, 5, seed=3)]),
        OpCase("cross_entropy_probabilities_weight", lambda lib, x, p, w: _F(lib).cross_entropy(
            x, p.softmax(1), weight=w, label_smoothing=0.1), [logits, randn(4, 5, seed=3), positive(5)]),
        OpCase("cross_entropy_spatial", lambda lib, x, t: _F(lib).cross_entropy(x, lib.tensor(t), reduction="none"),
               [randn(2, 3, 4), _labels(8, 3).reshape(2, 4)]),
        OpCase("cross_entropy_unbatched", lambda lib, x, t: _F(lib).cross_entropy(x, lib.tensor(t)),
               [randn(5), np.array(1)]),
    ]


def _nll_loss() -> list[OpCase]:
    log_probs, labels = randn(4, 5), _labels(4, 5, seed=1)
    return [
        OpCase("nll_loss", lambda lib, x, t: _F(lib).nll_loss(x.log_softmax(1), lib.tensor(t)), [log_probs, labels]),
        OpCase("nll_loss_weight_ignore", lambda lib, x, t, w: _F(lib).nll_loss(x, lib.tensor(t), weight=w, ignore_index=0),
               [log_probs, labels, positive(5)], grad=_NOT_THE_WEIGHT),
        OpCase("nll_loss_none", lambda lib, x, t: _F(lib).nll_loss(x, lib.tensor(t), reduction="none"), [log_probs, labels]),
    ]


def _linear_cross_entropy() -> list[OpCase]:
    x, labels = randn(4, 3), _labels(4, 5, seed=2)
    return [
        OpCase("linear_cross_entropy", lambda lib, x, w, t: _F(lib).linear_cross_entropy(x, w, lib.tensor(t)),
               [x, randn(5, 3, seed=4), labels]),
        OpCase("linear_cross_entropy_bias_smoothing", lambda lib, x, w, b, t: _F(lib).linear_cross_entropy(
            x, w, lib.tensor(t), linear_bias=b, label_smoothing=0.1, reduction="sum"),
            [x, randn(5, 3, seed=4), randn(5, seed=5), labels]),
        OpCase("linear_cross_entropy_k_dim", lambda lib, x, w, t: _F(lib).linear_cross_entropy(
            x, w, lib.tensor(t), reduction="none"), [x, randn(5, 2, 3, seed=6), _labels(8, 5).reshape(4, 2)]),
        OpCase("linear_cross_entropy_probabilities", lambda lib, x, w, p: _F(lib).linear_cross_entropy(
            x, w, p.softmax(1)), [x, randn(5, 3, seed=4), randn(4, 5, seed=7)]),
    ]


op_db: list[OpInfo] = [
    _loss("cross_entropy", _cross_entropy),
    _loss("linear_cross_entropy", _linear_cross_entropy),
    _loss("nll_loss", _nll_loss),
    _pointwise("mse_loss"),
    _pointwise("l1_loss"),
    _pointwise("smooth_l1_loss", beta=0.5),
    _pointwise("huber_loss", delta=0.7),
    _loss("binary_cross_entropy", lambda: [
        OpCase("binary_cross_entropy", lambda lib, p, t: _F(lib).binary_cross_entropy(p, t),
               [_probabilities(3, 4), _probabilities(3, 4, seed=1)]),
        OpCase("binary_cross_entropy_weight_sum", lambda lib, p, t, w: _F(lib).binary_cross_entropy(
            p, t, weight=w, reduction="sum"), [_probabilities(3, 4), _probabilities(3, 4, seed=1), positive(4)],
            grad=[True, True, False])]),
    _loss("binary_cross_entropy_with_logits", lambda: [
        OpCase("bce_with_logits", lambda lib, x, t: _F(lib).binary_cross_entropy_with_logits(x, t),
               [randn(3, 4) * 3, _probabilities(3, 4, seed=1)]),
        OpCase("bce_with_logits_pos_weight", lambda lib, x, t, w: _F(lib).binary_cross_entropy_with_logits(
            x, t, pos_weight=w, reduction="none"), [randn(3, 4), _probabilities(3, 4, seed=1), positive(4)],
            grad=[True, True, False])]),
    _loss("kl_div", lambda: [
        OpCase("kl_div_batchmean", lambda lib, x, t: _F(lib).kl_div(x.log_softmax(1), t.softmax(1), reduction="batchmean"),
               [randn(3, 4), randn(3, 4, seed=1)]),
        OpCase("kl_div_log_target", lambda lib, x, t: _F(lib).kl_div(x, t, reduction="sum", log_target=True),
               [randn(3, 4), randn(3, 4, seed=1)])]),
    _loss("poisson_nll_loss", lambda: [
        OpCase("poisson_nll_loss", lambda lib, x, t: _F(lib).poisson_nll_loss(x, t), [randn(3, 4), positive(3, 4)]),
        # full=True: the Stirling term (where target > 1) is differentiated in the target too
        OpCase("poisson_nll_loss_full", lambda lib, x, t: _F(lib).poisson_nll_loss(
            x, t, log_input=False, full=True, reduction="sum"), [positive(3, 4), positive(3, 4, seed=1) * 3])]),
    _loss("margin_ranking_loss", lambda: [
        OpCase("margin_ranking_loss", lambda lib, a, b, y: _F(lib).margin_ranking_loss(a, b, y, margin=0.2),
               [randn(6), randn(6, seed=1), _signs(6)], grad=[True, True, False])]),
    _loss("hinge_embedding_loss", lambda: [
        OpCase("hinge_embedding_loss", lambda lib, x, y: _F(lib).hinge_embedding_loss(x, y, margin=0.5),
               [randn(3, 4, low_gap=0.1) + 0.03, _signs(3, 4)], grad=[True, False])]),
    _loss("soft_margin_loss", lambda: [
        OpCase("soft_margin_loss", lambda lib, x, y: _F(lib).soft_margin_loss(x, y), [randn(3, 4), _signs(3, 4)],
               grad=[True, False])]),
    _loss("cosine_embedding_loss", lambda: [
        OpCase("cosine_embedding_loss", lambda lib, a, b, y: _F(lib).cosine_embedding_loss(a, b, y, margin=-0.9),
               [randn(4, 3), randn(4, 3, seed=1), _signs(4)], grad=[True, True, False])]),
]


def _top_level(name: str, cases, **extra) -> OpInfo:
    # torch's top-level losses: ATen's signatures, the reduction an int (torch 2.13 reads its omitted
    # default as 0, none; 1 mean, 2 sum)
    return OpInfo(name, "loss", cases, **extra)


op_db += [
    _top_level("kl_div", lambda: [
        OpCase("aten_kl_div_default", lambda lib, x, t: lib.kl_div(x, t), [randn(3, 4), _probabilities(3, 4, seed=1)]),
        OpCase("aten_kl_div_mean_log_target", lambda lib, x, t: lib.kl_div(x, t, 1, log_target=True),
               [randn(3, 4), randn(3, 4, seed=1)])]),
    _top_level("binary_cross_entropy_with_logits", lambda: [
        OpCase("aten_bce_with_logits_sum", lambda lib, x, t, w: lib.binary_cross_entropy_with_logits(x, t, None, w, 2),
               [randn(3, 4), _probabilities(3, 4, seed=1), positive(4)], grad=[True, True, False])]),
    _top_level("hinge_embedding_loss", lambda: [
        OpCase("aten_hinge_embedding_loss", lambda lib, x, y: lib.hinge_embedding_loss(x, y, 0.5),
               [randn(3, 4, low_gap=0.1) + 0.03, _signs(3, 4)], grad=[True, False])]),
    _top_level("margin_ranking_loss", lambda: [
        # ATen broadcasts the operands (nn.functional's wrapper refuses different ranks)
        OpCase("aten_margin_ranking_loss_broadcast", lambda lib, a, b, y: lib.margin_ranking_loss(a, b, y, 0.2, 1),
               [randn(4, 3), randn(3, seed=1), _signs(4, 1)], grad=[True, True, False])]),
    _top_level("cosine_embedding_loss", lambda: [
        OpCase("aten_cosine_embedding_loss", lambda lib, a, b, y: lib.cosine_embedding_loss(a, b, y, -0.9, 2),
               [randn(4, 3), randn(4, 3, seed=1), _signs(4)], grad=[True, True, False])]),
    _top_level("triplet_margin_loss", lambda: [
        OpCase("aten_triplet_margin_loss", lambda lib, a, p, n: lib.triplet_margin_loss(a, p, n, 1.0, 2, 1e-6, True),
               [randn(4, 3), randn(4, 3, seed=1), randn(4, 3, seed=2)])]),
    _top_level("poisson_nll_loss", lambda: [
        OpCase("aten_poisson_nll_loss", lambda lib, x, t: lib.poisson_nll_loss(x, t, True, False, 1e-8, 1),
               [randn(3, 4), positive(3, 4)], grad=[True, False])]),
    _top_level("ctc_loss", lambda: [
        OpCase("aten_ctc_loss_default", lambda lib, x: lib.ctc_loss(
            x.log_softmax(2), lib.tensor([[1, 2], [1, 1]]), [5, 5], [2, 2]), [randn(5, 2, 4)])],
        supports_gradgrad=False),  # torch's CTC backward is not differentiable again
]
