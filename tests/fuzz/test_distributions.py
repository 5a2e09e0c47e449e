"""A differential fuzzer of torch.distributions: random distributions built and queried alike on torch and on
chainrule, every observable compared.

A case (``draw_case`` in ``_distributions.py``, drawn from its family and seed alone) picks a distribution
class (continuous, discrete, multivariate, composite: Independent, MixtureSameFamily, TransformedDistribution
with common transforms; or a ``kl`` pair), parameters of random broadcasting batch shapes (0-d, size-1 dims,
Python numbers, float32/float64, probs or logits, values near the support's boundary, an invalid one),
``validate_args`` True/False/None, and calls: ``log_prob``/``cdf`` of in- and out-of-support values of
broadcasting shapes, ``icdf``, ``entropy``, the moments, the shapes, ``expand``, ``sample``/``rsample`` under
one manual seed, ``enumerate_support``, ``kl_divergence``, and gradients w.r.t. the parameters. Values are
compared within the dtype's tolerance, dtypes and shapes exactly, errors by builtin class and key phrase.

CI runs ``CI_CASES`` seeds a family; ``CHAINRULE_LONG_TESTS=1`` runs ``LONG_CASES``.
``python -m tests.fuzz.test_distributions N [family ...]`` runs N seeds a family and prints the mismatches,
for hunting (``--all``: the listed ones too; ``--start=K``: seeds from K). A mismatch found and not fixed
goes into ``OPEN`` (the case's repr -> the reason), a whole kind of them into ``OPEN_KINDS``, so a new one
fails CI.
"""

from __future__ import annotations

import sys

import pytest

import chainrule

from ._differential import Differential
from ._distributions import FAMILIES, draw_case, first_difference, run_case

# a case builds its distributions some five times (values, gradients) on both libraries: about 0.1 s of CPU
CI_CASES, LONG_CASES = 6, 1500

# case repr -> why it differs: the open defects, found and not fixed yet
OPEN: dict[str, str] = {}


def _edge_cov_diag(case) -> bool:
    return any(param.name == "cov_diag" and param.edge for dist in (case.dist, case.other) if dist
               for param in dist.params)


# (reason, test of (case, problem)): whole kinds of open defect, found and not fixed yet
OPEN_KINDS: list = [
    ("a Python-number parameter torch's own code cannot take: RelaxedBernoulli's log_prob calls "
     "temperature.log() ('float' object has no attribute 'log'), RelaxedOneHotCategorical's full_like(temperature) "
     "(must be Tensor, not float); chainrule computes the result: torch's defect",
     lambda case, problem: "a result vs torch" in problem and ("'float' object has no attribute" in problem
                                                               or "must be Tensor, not float" in problem)),
    ("GeneralizedPareto of float64 parameters: torch's log_prob/cdf mixes in a float32 tensor and raises "
     "'Double did not match Float'; chainrule keeps float64: torch's defect",
     lambda case, problem: "GeneralizedPareto" in repr(case) and "Double did not match Float" in problem),
    ("a kl_divergence pair of broadcasting batch shapes: torch's _kl_beta_uniform (and its kin) index the result "
     "with a mask of the unbroadcast shape and raise IndexError; chainrule broadcasts: torch's defect",
     lambda case, problem: case.family == "kl" and "vs torch IndexError (The shape of the mask" in problem),
    ("LowRankMultivariateNormal with a cov_diag of 1e-30 (an edge value): log_prob's Woodbury terms are ~1e30 and "
     "cancel, so both libraries' float64 results are rounding noise of different summation orders",
     lambda case, problem: _edge_cov_diag(case) and "values at" in problem),
    ("a Gamma's rsample gradient at an invalid, unvalidated concentration <= 0: torch's _standard_gamma_grad gives "
     "-inf, chainrule's 0; no value is meaningful there",
     lambda case, problem: problem.startswith("('grad', 'rsample'") and "Gamma" in repr(case)
     and "invalid=True" in repr(case) and case.validate_args is False),
    ("float32 (multivariate) normals with edge values (a loc or cov_factor of 1e3): log_prob and the KL's gradient "
     "cancel terms ~1e6, so float32 results differ in the 3rd-4th digit with the summation order",
     lambda case, problem: case.dtype == "float32" and "values at" in problem
     and ("MultivariateNormal" in repr(case) or "LowRankMultivariateNormal" in repr(case)) and "edge=True" in repr(case)),
]


def mismatch(case) -> str | None:
    """How chainrule's run of ``case`` differs from torch's, or None."""
    import torch

    return first_difference(case, run_case(case, torch, chainrule))


FUZZER = Differential(FAMILIES, draw_case, mismatch, OPEN, OPEN_KINDS, CI_CASES, LONG_CASES)
known, hunt = FUZZER.known, FUZZER.hunt


@pytest.mark.parametrize("family", list(FAMILIES))
def test_distributions_agree_with_torch(family):
    pytest.importorskip("torch")
    found = FUZZER.unlisted(family)
    assert not found, "\n".join(found)


if __name__ == "__main__":
    FUZZER.main(sys.argv[1:])
