"""torch.normal of tensors (slot-attention's ``torch.normal(mu, sigma)`` of two parameters).

torch records the sample (NormalBackward1/2/3) with a zero gradient for mean and std, so a
``backward`` through it works and both parameters get a gradient; and it refuses a negative or
NaN std before drawing.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

CASES = {
    "tensor_tensor": (lambda lib, m, s: lib.normal(m, s), "NormalBackward3"),
    "tensor_float": (lambda lib, m, s: lib.normal(m, 2.0), "NormalBackward1"),
    "float_tensor": (lambda lib, m, s: lib.normal(0.5, s), "NormalBackward2"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_sample_of_parameters_is_recorded_with_torchs_zero_gradient(case):
    draw, node_name = CASES[case]
    grads = {}
    for lib in (torch, chainrule):
        mean = lib.zeros(1, 3, requires_grad=True)  # broadcast against std's (2, 3)
        std = lib.ones(2, 3, requires_grad=True)
        sample = draw(lib, mean, std)
        assert type(sample.grad_fn).__name__ == node_name
        (sample * 3).sum().backward()
        grads[lib] = [None if t.grad is None else t.grad.numpy() for t in (mean, std)]
    for ours, theirs in zip(grads[chainrule], grads[torch]):
        assert (ours is None) == (theirs is None)
        if theirs is not None:
            assert ours.shape == theirs.shape and not ours.any() and not theirs.any()


def test_a_sample_is_not_recorded_without_grad_or_under_no_grad():
    mean = chainrule.zeros(3, requires_grad=True)
    assert chainrule.normal(mean.detach(), 1.0).grad_fn is None
    with chainrule.no_grad():
        assert not chainrule.normal(mean, chainrule.ones(3)).requires_grad


def test_the_sample_keeps_its_statistics():
    chainrule.manual_seed(0)
    sample = chainrule.normal(chainrule.full((200_000,), 3.0, requires_grad=True), chainrule.full((200_000,), 2.0))
    assert sample.dtype == chainrule.float32
    values = sample.detach().numpy()
    assert abs(values.mean() - 3.0) < 0.03 and abs(values.std() - 2.0) < 0.03


@pytest.mark.parametrize("call", [
    lambda lib: lib.normal(lib.zeros(2), -lib.ones(2)),
    lambda lib: lib.normal(0.0, lib.tensor([1.0, -1.0])),
    lambda lib: lib.normal(lib.zeros(2), lib.tensor([1.0, math.nan])),
    lambda lib: lib.normal(lib.zeros(2), -1.0),
    lambda lib: lib.normal(0.0, -0.5, (2,)),
    lambda lib: lib.zeros(2).normal_(0.0, -1.0),
], ids=["tensor_std", "float_mean", "nan_std", "float_std", "sizes", "in_place"])
def test_a_negative_std_is_refused_in_torchs_words(call):
    with pytest.raises(RuntimeError) as theirs:
        call(torch)
    with pytest.raises(RuntimeError) as ours:
        call(chainrule)
    assert str(ours.value) == str(theirs.value)


def test_in_place_refusal_leaves_the_tensor_unchanged():
    t = chainrule.zeros(3)
    with pytest.raises(RuntimeError):
        t.normal_(0.0, -2.0)
    assert np.array_equal(t.numpy(), np.zeros(3, dtype=np.float32)) and t._version == 0
