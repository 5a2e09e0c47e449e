"""Loss gradients with respect to the target and the class weights, compared with torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import chainrule

LIBS = [chainrule, torch]


def _poisson_full_grads(lib):
    x = lib.tensor([0.7, 1.5, 2.0, 1.0], requires_grad=True)
    t = lib.tensor([0.5, 2.0, 3.0, 0.0], requires_grad=True)  # <= 1 (no Stirling term), > 1, and 0
    loss = lib.nn.functional.poisson_nll_loss(x, t, log_input=False, full=True, reduction="sum")
    loss.backward()
    return loss.item(), x.grad.numpy(), t.grad.numpy()


def test_poisson_nll_loss_full_differentiates_the_stirling_term_in_the_target():
    ours, theirs = _poisson_full_grads(chainrule), _poisson_full_grads(torch)
    assert ours[0] == pytest.approx(theirs[0], rel=1e-6)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-6)
    # [0.357, 0.538, 0.572, nan]: torch's NaN at a target of 0 (0 * log 0) is kept
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-6)


@pytest.mark.parametrize("lib", LIBS, ids=["chainrule", "torch"])
@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_class_index_loss_refuses_a_weight_that_requires_grad(lib, loss):
    weight = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x, target = lib.tensor([[0.1, 0.2, 0.3], [0.3, -0.2, 0.1]], requires_grad=True), lib.tensor([0, 2])
    with pytest.raises(RuntimeError, match="The function 'nll_loss_forward' is not differentiable with respect "
                                           "to argument 'weight'. This input cannot have requires_grad True."):
        getattr(lib.nn.functional, loss)(x, target, weight=weight)
    with lib.no_grad():  # nothing is recorded, so nothing to refuse
        getattr(lib.nn.functional, loss)(x, target, weight=weight)


def _probability_weight_grad(lib):
    weight = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x = lib.tensor([[0.1, 0.2, 0.3], [0.3, -0.2, 0.1]], requires_grad=True)
    p = lib.tensor([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])
    lib.nn.functional.cross_entropy(x, p, weight=weight).backward()
    return weight.grad.numpy(), x.grad.numpy()


def test_cross_entropy_with_class_probabilities_differentiates_the_weight():
    for o, t in zip(_probability_weight_grad(chainrule), _probability_weight_grad(torch)):
        np.testing.assert_allclose(o, t, rtol=1e-6)
