"""torch's top-level losses take ATen's arguments, not nn.functional's: ``torch.kl_div(x, y)`` returns
the unreduced (N, C) loss in torch 2.13 (its binding reads the omitted ``reduction`` as 0), an int
picks the reduction (1 mean, 2 sum, anything else none), nn.functional's string is a TypeError, and
``torch.margin_ranking_loss`` broadcasts where ``F.margin_ranking_loss`` checks ranks."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

CALLS = {
    "kl_div": lambda L, a, b, y, r: L.kl_div(a, b.abs(), *r),
    "binary_cross_entropy_with_logits": lambda L, a, b, y, r: L.binary_cross_entropy_with_logits(
        a, b.sigmoid(), None, None, *r),
    "hinge_embedding_loss": lambda L, a, b, y, r: L.hinge_embedding_loss(a, y, 0.5, *r),
    "margin_ranking_loss": lambda L, a, b, y, r: L.margin_ranking_loss(a, b[0], y[:, :1], 0.1, *r),
    "cosine_embedding_loss": lambda L, a, b, y, r: L.cosine_embedding_loss(a, b, y[:, 0], 0.1, *r),
    "triplet_margin_loss": lambda L, a, b, y, r: L.triplet_margin_loss(a, b, 2 * a, 1.0, 2, 1e-6, False, *r),
    "poisson_nll_loss": lambda L, a, b, y, r: L.poisson_nll_loss(a, b.abs(), True, False, 1e-8, *(r or (0,))),
    "ctc_loss": lambda L, a, b, y, r: L.ctc_loss(a.reshape(3, 2, 2).log_softmax(2), L.tensor([[1], [1]]),
                                                 [3, 3], [1, 1], 0, *r),
}


def _run(lib, name, reduction):
    rng = np.random.default_rng(3)
    a, b = (lib.tensor(rng.standard_normal((4, 3)), requires_grad=True) for _ in range(2))
    y = lib.tensor(np.where(rng.standard_normal((4, 3)) > 0, 1.0, -1.0))
    loss = CALLS[name](lib, a, b, y, reduction)
    loss.sum().backward()
    return [loss.detach().numpy()] + [None if t.grad is None else t.grad.numpy() for t in (a, b)]


@pytest.mark.parametrize("reduction", [(), (0,), (1,), (2,), (7,)], ids=["omitted", "0", "1", "2", "7"])
@pytest.mark.parametrize("name", sorted(CALLS))
def test_top_level_loss_reduces_as_torchs_int_says(name, reduction):
    expected, got = _run(torch, name, reduction), _run(chainrule, name, reduction)
    for want, have in zip(expected, got):
        if want is None or have is None:  # an operand the loss does not use
            assert want is None and have is None
            continue
        assert want.shape == have.shape
        np.testing.assert_allclose(have, want, rtol=1e-6, atol=1e-7)


def test_nn_functional_spelling_of_the_reduction_is_refused_at_the_top_level():
    for lib in (torch, chainrule):
        with pytest.raises(TypeError, match=r"kl_div\(\): argument 'reduction' must be int, not str"):
            lib.kl_div(lib.ones(2), lib.ones(2), reduction="mean")


def test_functional_losses_keep_their_own_defaults():
    x, y = chainrule.ones(4, 3), chainrule.full((4, 3), 0.5)
    assert chainrule.nn.functional.kl_div(x, y).shape == ()
    assert chainrule.kl_div(x, y).shape == (4, 3)
    with pytest.raises(RuntimeError, match="All input tensors should have same dimension"):
        chainrule.nn.functional.margin_ranking_loss(x, y[0], y[:, 0])
