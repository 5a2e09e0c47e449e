"""Session 26, progF lane: what the vqvae, pinn_burgers, pixelcnn_masked, bayes_by_backprop and
set_transformer programs of tests/programs/ showed, each compared with torch."""

from __future__ import annotations

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _raised(fn):
    with pytest.raises(Exception) as info:
        fn()
    return info.type, str(info.value)


def test_kl_divergence_without_a_rule_names_both_types_in_torchs_words():
    # a user pairing distributions with no registered KL (a Bayes-by-Backprop prior swapped for a
    # Categorical) reads torch's sentence, word for word
    def pair(lib):
        return lib.distributions.Normal(0.0, 1.0), lib.distributions.Categorical(lib.tensor([0.5, 0.5]))

    want = _raised(lambda: torch.distributions.kl_divergence(*pair(torch)))
    got = _raised(lambda: chainrule.distributions.kl_divergence(*pair(chainrule)))
    assert want == (NotImplementedError, "No KL(p || q) is implemented for p type Normal and q type Categorical")
    assert got == want
