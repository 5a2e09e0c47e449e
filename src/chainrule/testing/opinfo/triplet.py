"""The triplet losses of nn.functional (compositions of pairwise_distance, minimum and clamp_min)."""

from __future__ import annotations

from .core import OpCase, OpInfo, randn


def _F(lib):
    return lib.nn.functional


def _triplets(*shape):
    return [randn(*shape), randn(*shape, seed=1), randn(*shape, seed=2)]


def _cosine_distance(lib):
    return lambda a, b: 1 - _F(lib).cosine_similarity(a, b)


op_db: list[OpInfo] = [
    OpInfo("nn.functional.triplet_margin_loss", "triplet", lambda: [
        OpCase("triplet_margin_loss", lambda lib, a, p, n: _F(lib).triplet_margin_loss(a, p, n), _triplets(4, 3)),
        OpCase("triplet_margin_loss_p1_swap_sum", lambda lib, a, p, n: _F(lib).triplet_margin_loss(
            a, p, n, margin=2.0, p=1, swap=True, reduction="sum"), _triplets(5, 3)),
        OpCase("triplet_margin_loss_none", lambda lib, a, p, n: _F(lib).triplet_margin_loss(
            a, p, n, margin=0.5, reduction="none"), _triplets(3, 4)),
        OpCase("triplet_margin_loss_unbatched", lambda lib, a, p, n: _F(lib).triplet_margin_loss(a, p, n),
               _triplets(4)),
    ]),
    OpInfo("nn.functional.triplet_margin_with_distance_loss", "triplet", lambda: [
        OpCase("triplet_margin_with_distance_loss", lambda lib, a, p, n: _F(lib).triplet_margin_with_distance_loss(
            a, p, n), _triplets(4, 3)),
        OpCase("triplet_margin_with_distance_loss_cosine_swap", lambda lib, a, p, n:
               _F(lib).triplet_margin_with_distance_loss(a, p, n, distance_function=_cosine_distance(lib),
                                                         margin=0.3, swap=True, reduction="none"), _triplets(5, 3)),
    ]),
]
