"""Session 48, lane progCX (corpus programs trpo_conjugate_gradient, impala_vtrace,
pets_cem_ensemble): ``topk(x, 0)`` raised a NumPy ValueError where a row along ``dim`` held tied
values (the tie replay reshaped its k = 0 columns with ``-1``); torch returns empty values and
indices. Each form runs on torch and on chainrule with the same input, values, dtypes and shapes
compared."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

# rows with ties along every dim, and one without
_DATA = np.array([[[1.0, 2.0, 2.0, 1.0], [3.0, 1.0, 1.0, 0.0]],
                  [[0.0, 0.0, 5.0, 5.0], [2.0, 2.0, 2.0, 2.0]]], dtype=np.float32)


def _compare(form):
    expected, got = form(torch), form(chainrule)
    assert len(expected) == len(got) == 2
    for want, have in zip(expected, got):
        assert str(have.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
        assert tuple(have.shape) == tuple(want.shape)
        assert have.is_contiguous() == want.is_contiguous()
        np.testing.assert_array_equal(have.numpy(), want.numpy())


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
@pytest.mark.parametrize("dim", [-1, 0, 1])
@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("sorted_", [True, False])
def test_topk_of_zero_elements_along_a_dim_with_ties(dtype, dim, largest, sorted_):
    _compare(lambda lib: lib.topk(lib.tensor(_DATA.astype(dtype)), 0, dim=dim, largest=largest, sorted=sorted_))


def test_topk_of_zero_elements_on_a_transposed_input_and_as_a_method():
    _compare(lambda lib: lib.tensor(_DATA).transpose(0, 2).topk(0, 1))
    _compare(lambda lib: lib.tensor([[float("nan"), 1.0, 1.0]]).topk(0))


def test_topk_of_zero_elements_passes_an_empty_gradient_back():
    def form(lib):
        x = lib.tensor(_DATA, requires_grad=True)
        values, indices = lib.topk(x, 0, dim=1)
        values.sum().backward()
        return x.grad, indices

    _compare(form)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_topk_with_ties_still_matches_for_positive_k(k):
    _compare(lambda lib: lib.topk(lib.tensor(_DATA), k, largest=False))


# ---- kl_divergence's refusals: torch's exception types and exact words (probing around the
# trpo_conjugate_gradient program's kl_divergence(Normal, Normal))

def _kl_refusal(build):
    outcomes = []
    for lib in (torch, chainrule):
        p, q = build(lib, lib.distributions)
        with pytest.raises(Exception) as caught:
            lib.distributions.kl_divergence(p, q)
        outcomes.append((caught.type.__name__, str(caught.value)))
    return outcomes


_KL_REFUSALS = {
    "independent_reinterpreted_ndims": lambda lib, D: (
        D.Independent(D.Normal(lib.zeros(2, 3), 1.0), 1), D.Independent(D.Normal(lib.zeros(2, 3), 1.0), 2)),
    "transformed_different_transforms": lambda lib, D: (D.Weibull(1.0, 2.0), D.Gumbel(0.0, 1.0)),
    "transformed_different_event_shapes": lambda lib, D: (
        D.TransformedDistribution(D.Normal(lib.zeros(2), 1.0), []),
        D.TransformedDistribution(D.Independent(D.Normal(lib.zeros(2), 1.0), 1), [])),
    "mvn_event_shapes": lambda lib, D: (
        D.MultivariateNormal(lib.zeros(2), lib.eye(2)), D.MultivariateNormal(lib.zeros(3), lib.eye(3))),
    "lowrank_lowrank_event_shapes": lambda lib, D: (
        D.LowRankMultivariateNormal(lib.zeros(2), lib.ones(2, 1), lib.ones(2)),
        D.LowRankMultivariateNormal(lib.zeros(3), lib.ones(3, 1), lib.ones(3))),
    "mvn_lowrank_event_shapes": lambda lib, D: (
        D.MultivariateNormal(lib.zeros(2), lib.eye(2)),
        D.LowRankMultivariateNormal(lib.zeros(3), lib.ones(3, 1), lib.ones(3))),
    "lowrank_mvn_event_shapes": lambda lib, D: (
        D.LowRankMultivariateNormal(lib.zeros(3), lib.ones(3, 1), lib.ones(3)),
        D.MultivariateNormal(lib.zeros(2), lib.eye(2))),
    "binomial_total_count": lambda lib, D: (D.Binomial(5, lib.tensor(0.3)), D.Binomial(10, lib.tensor(0.5))),
    "no_rule": lambda lib, D: (D.Normal(0.0, 1.0), D.Categorical(logits=lib.zeros(2))),
}


@pytest.mark.parametrize("name", sorted(_KL_REFUSALS))
def test_kl_divergence_refuses_with_torchs_type_and_words(name):
    expected, got = _kl_refusal(_KL_REFUSALS[name])
    assert got == expected
