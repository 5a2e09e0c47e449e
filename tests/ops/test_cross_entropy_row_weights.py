"""cross_entropy / nll_loss without class weights, where every target is a class: the forward keeps
no array of ones and checks the targets with one reduction. Each case against torch: the loss,
the input gradient, the loss node's total weight, and the out-of-range target's error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import chainrule


def _run(lib, logits, target, **kwargs):
    x = lib.tensor(logits, requires_grad=True)
    loss = lib.nn.functional.cross_entropy(x, lib.tensor(target), **kwargs)
    total = loss.grad_fn.next_functions[0][0] if kwargs.get("label_smoothing") else loss.grad_fn
    saved = getattr(total, "_saved_total_weight", None)
    loss.sum().backward()
    return loss.detach().numpy(), x.grad.numpy(), None if saved is None else saved.numpy()


LOGITS = np.random.default_rng(13).standard_normal((6, 5)).astype(np.float32)


@pytest.mark.parametrize("target", [[0, 4, 2, 2, 1, 3], [3, 3, 3, 3, 3, 3]])
@pytest.mark.parametrize("ignore_index", [-100, 2, 7, -1])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_unweighted_class_targets_match_torch(target, ignore_index, reduction, label_smoothing):
    kwargs = dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing)
    ours, theirs = _run(chainrule, LOGITS, target, **kwargs), _run(torch, LOGITS, target, **kwargs)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-5, atol=1e-7)
    if reduction == "mean" and not label_smoothing:
        # ignore_index=2 drops two rows of the first target from the count of six
        assert ours[2] is not None and ours[2].dtype == theirs[2].dtype
        np.testing.assert_array_equal(ours[2], theirs[2])


@pytest.mark.parametrize("bad", [-1, 5, -100 + 1])
@pytest.mark.parametrize("dtype", ["int64", "uint8"])
def test_a_target_outside_the_classes_is_refused_as_torch_does(bad, dtype):
    if dtype == "uint8" and bad < 0:
        pytest.skip("a byte target holds no negative class")
    target = np.array([0, 1, bad, 2], dtype=dtype)
    for lib in (chainrule, torch):
        with pytest.raises(IndexError, match=f"Target {bad} is out of bounds."):
            lib.nn.functional.cross_entropy(lib.tensor(LOGITS[:4]), lib.tensor(target))


def test_every_target_ignored_gives_torch_nan_mean_and_zero_gradient():
    ours, theirs = (_run(lib, LOGITS[:2], [1, 1], ignore_index=1) for lib in (chainrule, torch))
    assert np.isnan(ours[0]) and np.isnan(theirs[0])
    np.testing.assert_array_equal(ours[1], theirs[1])
    np.testing.assert_array_equal(ours[2], theirs[2])


@pytest.mark.parametrize("op, kwargs", [("nll_loss", {}), ("cross_entropy", {}),
                                        ("cross_entropy", {"label_smoothing": 0.1, "reduction": "sum"})])
def test_unweighted_losses_gradcheck_in_float64(op, kwargs):
    target = chainrule.tensor([1, 0, 4])

    def loss(x):
        return getattr(chainrule.nn.functional, op)(x, target, **kwargs)

    x = chainrule.tensor(np.random.default_rng(5).standard_normal((3, 5)), requires_grad=True)
    assert chainrule.autograd.gradcheck(loss, (x,))
    assert chainrule.autograd.gradgradcheck(loss, (x,))


def test_float64_cross_entropy_sums_in_float64_as_torch():
    logits = LOGITS.astype(np.float64)
    ours, theirs = _run(chainrule, logits, [0, 1, 2, 3, 4, 0]), _run(torch, logits, [0, 1, 2, 3, 4, 0])
    assert ours[0].dtype == np.float64 and ours[2].dtype == theirs[2].dtype
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-12)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-12)


@pytest.mark.parametrize("kwargs", [{}, {"reduction": "none"}, {"ignore_index": 1, "label_smoothing": 0.3},
                                    {"weight": np.linspace(0.5, 2.0, 5, dtype=np.float32), "reduction": "sum"}])
def test_a_plain_backward_equals_the_recorded_one_bit_for_bit(kwargs):
    """A plain walk computes the NLL's input gradient on the arrays; create_graph applies the
    backward op. Both must give the same gradient."""
    grads = []
    for create_graph in (False, True):
        x = chainrule.tensor(LOGITS, requires_grad=True)
        options = {k: chainrule.tensor(v) if k == "weight" else v for k, v in kwargs.items()}
        loss = chainrule.nn.functional.cross_entropy(x, chainrule.tensor([0, 4, 1, 1, 2, 3]), **options)
        (grad,) = chainrule.autograd.grad(loss.sum(), (x,), create_graph=create_graph)
        grads.append(grad.detach().numpy())
    np.testing.assert_array_equal(grads[0], grads[1])


def test_strided_targets_are_checked_and_used_as_torch_does():
    logits = np.random.default_rng(3).standard_normal((2, 5, 3, 4)).astype(np.float32)
    classes = np.random.default_rng(4).integers(0, 5, (2, 4, 3))
    results = []
    for lib in (chainrule, torch):
        x = lib.tensor(logits, requires_grad=True)
        loss = lib.nn.functional.cross_entropy(x, lib.tensor(classes).transpose(1, 2))  # a non-contiguous target
        loss.backward()
        results.append((loss.item(), x.grad.numpy()))
        every_other = lib.tensor(np.array([1, 9, 2, 9, -1, 9]))[::2]
        with pytest.raises(IndexError, match="Target -1 is out of bounds."):
            lib.nn.functional.cross_entropy(lib.tensor(logits[0, :, :, 0].T.copy()), every_other)
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-6)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-5, atol=1e-7)
