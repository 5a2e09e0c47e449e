"""Loss gradients with respect to the target and the class weights, compared with torch."""

from __future__ import annotations

import warnings

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


# found by tests/fuzz/test_hostile_args.py
def test_cross_entropy_hostile_arguments_like_torch():
    x, target = np.random.default_rng(0).standard_normal((3, 4)), np.array([0, 3, 1])
    for smoothing in (-0.1, 0.2):  # torch smooths only for a positive value
        ours = chainrule.nn.functional.cross_entropy(chainrule.tensor(x), chainrule.tensor(target),
                                                     label_smoothing=smoothing)
        theirs = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(target), label_smoothing=smoothing)
        np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-12)
    for lib in (chainrule, torch):
        with pytest.raises(RuntimeError, match="ignore_index is not supported for floating point target"):
            lib.nn.functional.cross_entropy(lib.zeros(2, 3), lib.zeros(2, 3), ignore_index=0)
        with pytest.raises(ValueError, match="batch_size"):  # the batch sizes before the target's rank
            lib.nn.functional.cross_entropy(lib.zeros(1, 4, 2), lib.zeros(2, dtype=lib.int64))
        with pytest.raises(ValueError, match="1D target must have size 1"):
            lib.nn.functional.nll_loss(lib.zeros(3), lib.zeros(3, dtype=lib.int64))


def test_losses_broadcast_before_reading_the_reduction():
    for lib in (chainrule, torch):
        for loss in (lib.nn.functional.mse_loss, lib.nn.functional.l1_loss):
            with pytest.raises(RuntimeError, match="must match"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                loss(lib.zeros(3), lib.zeros(2), reduction="bogus")
