"""randperm and multinomial on 'cuda' draw on the device's generator stream: no host copy, seeded
by chainrule.cuda.manual_seed, with the distributions torch's have (checked by frequencies)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import chainrule


def _draw_without_transfers(standin, fn):
    before = standin.transfers()
    out = fn()
    assert standin.transfers() == before, "the draw copied between host and device"
    assert out.device.type == "cuda"
    return out.cpu().numpy()


def test_randperm_draws_on_the_device(cuda):
    chainrule.cuda.manual_seed(3)
    first = _draw_without_transfers(cuda, lambda: chainrule.randperm(1000, device="cuda"))
    assert first.dtype == np.int64 and sorted(first) == list(range(1000))
    chainrule.cuda.manual_seed(3)
    again = _draw_without_transfers(cuda, lambda: chainrule.randperm(1000, device="cuda"))
    np.testing.assert_array_equal(again, first)
    other = _draw_without_transfers(cuda, lambda: chainrule.randperm(1000, device="cuda", dtype=chainrule.int32))
    assert other.dtype == np.int32 and not np.array_equal(other, first)
    assert _draw_without_transfers(cuda, lambda: chainrule.randperm(0, device="cuda")).shape == (0,)


def test_multinomial_with_replacement_draws_on_the_device_with_the_given_frequencies(cuda):
    weights = chainrule.tensor([[1.0, 0.0, 3.0, 6.0], [5.0, 5.0, 0.0, 0.0]], device="cuda")
    chainrule.cuda.manual_seed(0)
    draws = _draw_without_transfers(cuda, lambda: chainrule.multinomial(weights, 20000, replacement=True))
    assert draws.shape == (2, 20000) and draws.dtype == np.int64
    for row, p in zip(draws, ([0.1, 0.0, 0.3, 0.6], [0.5, 0.5, 0.0, 0.0])):
        frequencies = np.bincount(row, minlength=4) / row.size
        np.testing.assert_allclose(frequencies, p, atol=0.015)  # ~4 standard errors
        assert not (frequencies[np.array(p) == 0]).any()  # a zero weight is never drawn
    one_row = _draw_without_transfers(cuda, lambda: chainrule.multinomial(weights[0], 5, replacement=True))
    assert one_row.shape == (5,)


def test_multinomial_without_replacement_draws_sequentially_on_the_device(cuda):
    rows = 20000
    weights = chainrule.tensor([[1.0, 2.0, 7.0, 0.0]] * rows, device="cuda")
    chainrule.cuda.manual_seed(1)
    draws = _draw_without_transfers(cuda, lambda: chainrule.multinomial(weights, 3))
    assert (np.sort(draws, axis=1) == [0, 1, 2]).all()  # distinct, and the zero weight only when forced
    np.testing.assert_allclose(np.bincount(draws[:, 0], minlength=4) / rows, [0.1, 0.2, 0.7, 0], atol=0.015)
    # the second draw, given the first: P(first 2, then 1) = 0.7 * 0.2 / 0.3
    np.testing.assert_allclose(np.mean((draws[:, 0] == 2) & (draws[:, 1] == 1)), 0.7 * 0.2 / 0.3, atol=0.015)
    all_four = _draw_without_transfers(cuda, lambda: chainrule.multinomial(weights[:2], 4))
    assert (all_four[:, 3] == 3).all()  # the zero-weight category comes last, as in torch


@pytest.mark.parametrize("args", [((3,), 5, False), ((3,), 0, True), ((2, 2, 2), 1, True)],
                         ids=["more_than_categories", "no_samples", "three_dims"])
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_multinomial_argument_errors_are_torchs(cuda, device, args):
    shape, num_samples, replacement = args
    with pytest.raises(RuntimeError) as expected:
        torch.multinomial(torch.ones(shape), num_samples, replacement)
    with pytest.raises(RuntimeError, match=str(expected.value).replace("(", r"\(").replace(")", r"\)")):
        chainrule.multinomial(chainrule.ones(shape, device=device), num_samples, replacement)


def test_multinomial_refuses_integer_weights_as_torch(cuda):
    with pytest.raises(RuntimeError, match="multinomial only supports floating-point dtypes for input, got: Long"):
        chainrule.multinomial(chainrule.ones(3, dtype=chainrule.int64, device="cuda"), 1)


def test_rrelu_draws_its_slopes_on_the_device(cuda):
    x = chainrule.tensor(np.linspace(-2, 2, 40, dtype=np.float32), device="cuda")
    out = _draw_without_transfers(cuda, lambda: chainrule.nn.functional.rrelu(x, 0.1, 0.3, training=True))
    ratios = out[:20] / np.linspace(-2, 2, 40, dtype=np.float32)[:20]
    assert ((ratios >= 0.1) & (ratios <= 0.3)).all() and np.array_equal(out[20:], x.cpu().numpy()[20:])


def test_normal_with_a_size_draws_on_the_device(cuda):
    out = _draw_without_transfers(cuda, lambda: chainrule.normal(2.0, 0.5, (20000,), device="cuda"))
    assert out.dtype == np.float32 and abs(out.mean() - 2.0) < 0.02 and abs(out.std() - 0.5) < 0.02
    assert chainrule.normal(0.0, 1.0, (3,), dtype=chainrule.float64).dtype == chainrule.float64


def test_one_double_samplers_and_distributions_draw_on_the_device(cuda):
    # CuPy's Generator has no standard_cauchy or lognormal: cauchy_ and log_normal_ transform
    # device uniforms and normals; the distributions built on them stay on the device
    # (the distributions are made first: validating their parameters reads them on the host)
    cauchy = chainrule.distributions.Cauchy(chainrule.zeros(2, device="cuda"), chainrule.ones(2, device="cuda"))
    binomial = chainrule.distributions.Binomial(chainrule.full((3,), 10.0, device="cuda"),
                                                chainrule.full((3,), 0.5, device="cuda"))
    values = {
        "cauchy_": lambda: chainrule.empty(20000, device="cuda").cauchy_(1.0, 2.0),
        "log_normal_": lambda: chainrule.empty(20000, device="cuda").log_normal_(0.0, 0.5),
        "Cauchy": lambda: cauchy.rsample((5,)),
        "Binomial": lambda: binomial.sample((4,)),
        "_sample_dirichlet": lambda: chainrule._sample_dirichlet(chainrule.ones(4, 3, device="cuda")),
    }
    draws = {name: _draw_without_transfers(cuda, fn) for name, fn in values.items()}
    assert abs(np.median(draws["cauchy_"]) - 1.0) < 0.1  # the median, ~4 standard errors
    assert abs(np.median(np.log(draws["log_normal_"]))) < 0.03
    assert draws["Cauchy"].shape == (5, 2) and draws["Binomial"].shape == (4, 3)
    assert ((draws["Binomial"] >= 0) & (draws["Binomial"] <= 10)).all()
    np.testing.assert_allclose(draws["_sample_dirichlet"].sum(-1), 1.0, rtol=1e-6)
