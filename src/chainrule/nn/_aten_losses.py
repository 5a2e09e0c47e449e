"""torch's top-level losses (``torch.kl_div``, ``torch.hinge_embedding_loss``, ...): ATen's signatures,
not nn.functional's. The positional order has no legacy ``size_average``/``reduce`` flags, and
``reduction`` is an int: 1 mean, 2 sum, anything else none. torch 2.13's Python binding reads the
schema's default (``at::Reduction::Mean``) as none, so called without a reduction these return the
unreduced loss — ``torch.kl_div(x, y)`` is a (N, C) tensor where ``F.kl_div(x, y)`` is a number.
The same here, so code written against torch's top level gets torch's numbers and shapes."""

from __future__ import annotations

from .._opmath import cpu_autocast_policy
from ..ops import loss as _loss
from ..ops._arg_parser import check_bool, check_float, check_int
from ..tensor import Tensor
from . import functional as F

__all__ = ["binary_cross_entropy_with_logits", "cosine_embedding_loss", "ctc_loss", "hinge_embedding_loss",
           "kl_div", "margin_ranking_loss", "poisson_nll_loss", "triplet_margin_loss"]

_NAMED = {1: "mean", 2: "sum"}


def _reduction(code, op: str) -> str:
    """nn.functional's name for ATen's reduction code (``at::Reduction``: 0 none, 1 mean, 2 sum)."""
    if isinstance(code, str):  # nn.functional's spelling given to the top level: torch's TypeError
        raise TypeError(f"{op}(): argument 'reduction' must be int, not str")
    return _NAMED.get(check_int(code, op, "reduction"), "none")


def kl_div(input: Tensor, target: Tensor, reduction: int = 0, *, log_target: bool = False) -> Tensor:
    """torch.kl_div: F.kl_div's pointwise loss; "mean" is over every element (no batchmean)."""
    return _loss.kl_div(input, target, reduction=_reduction(reduction, "kl_div"), log_target=log_target)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     pos_weight: Tensor | None = None, reduction: int = 0) -> Tensor:
    return _loss.binary_cross_entropy_with_logits(
        input, target, weight, reduction=_reduction(reduction, "binary_cross_entropy_with_logits"),
        pos_weight=pos_weight)


def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0, reduction: int = 0) -> Tensor:
    return _loss.hinge_embedding_loss(input, target, margin, reduction=_reduction(reduction, "hinge_embedding_loss"))


@cpu_autocast_policy("float32")
def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                        reduction: int = 0) -> Tensor:
    """torch.margin_ranking_loss: ``max(0, -y (x1 - x2) + margin)`` with the operands broadcast
    (ATen's kernel has no check that they have one rank; nn.functional's wrapper adds it)."""
    named = _reduction(reduction, "margin_ranking_loss")
    margin = check_float(margin, "margin_ranking_loss", "margin")
    return _loss._reduce(_loss._margin_ranking(input1, input2, target, margin), named)


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                          reduction: int = 0) -> Tensor:
    return _loss.cosine_embedding_loss(input1, input2, target, margin,
                                       reduction=_reduction(reduction, "cosine_embedding_loss"))


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0, p: float = 2,
                        eps: float = 1e-6, swap: bool = False, reduction: int = 0) -> Tensor:
    return F.triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap,
                                 reduction=_reduction(reduction, "triplet_margin_loss"))


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool, full: bool, eps: float,
                     reduction: int) -> Tensor:
    """torch.poisson_nll_loss: every argument required, as ATen's schema has no defaults for it."""
    named = _reduction(reduction, "poisson_nll_loss")
    return _loss.poisson_nll_loss(input, target, check_bool(log_input, "poisson_nll_loss", "log_input"),
                                  check_bool(full, "poisson_nll_loss", "full"), eps=eps, reduction=named)


def ctc_loss(log_probs: Tensor, targets: Tensor, input_lengths, target_lengths, blank: int = 0,
             reduction: int = 0, zero_infinity: bool = False) -> Tensor:
    return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank,
                      reduction=_reduction(reduction, "ctc_loss"), zero_infinity=zero_infinity)
