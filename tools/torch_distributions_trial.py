"""torch.distributions against chainrule.distributions: the same families, transforms, constraints and
KL pairs built on both, every public property and method called on both, the answers compared.

Sections (``--section``):

* ``family``: each family torch exports, in several parameterisations (a batch, a scalar, broadcast
  parameters, probs vs logits, float32 and float64): batch_shape, event_shape, support, has_rsample,
  has_enumerate_support, mean, mode, variance, stddev, entropy, perplexity, log_prob / cdf / icdf on
  in-support values (torch's own seeded sample; uniforms in [0.1, 0.9] for icdf), log_prob with
  validate_args on an out-of-support value and on a value of the wrong shape (the exception class),
  enumerate_support (expanded and not), expand (batch_shape and log_prob), sample and rsample shapes
  and values (seeded alike: chainrule reproduces torch's CPU stream, tests/compat/test_rng_torch_streams.py),
  the gradient of rsample (pathwise), of log_prob and of entropy with respect to the parameters;
* ``kl``: kl_divergence for every pair in torch's registry (``torch.distributions.kl._KL_REGISTRY``, a
  concrete family standing for ExponentialFamily and TransformedDistribution) and each family with itself;
* ``transform``: forward, inv, log_abs_det_jacobian, sign, bijective, domain/codomain (repr and
  event_dim), forward_shape/inverse_shape of each transform torch exports;
* ``constraint``: ``check`` of each constraint on the same values, its repr, is_discrete and event_dim;
* ``validate``: constructors given invalid arguments (validate_args on) or mismatched shapes.

Each case runs on torch and on chainrule in one worker process, both seeded alike before each call,
under a time limit; a case that ends the process is recorded and the worker resumes after it.
Kinds:

    same                   both returned equal answers (tensors: shape, dtype and values within
                           rtol 1e-4, atol 1e-5), or both raised the same builtin exception class
    values_differ          both returned, and a value, dtype or string differs
    shape_differs          both returned tensors (or sizes) of different shapes
    error_class_differs    both raised, another builtin class
    torch_only_raised      torch refused, chainrule returned
    chainrule_only_raised  chainrule refused (not for want of the method), torch returned
    missing                chainrule lacks the class or method (AttributeError or NotImplementedError
                           where torch answered)

    python tools/torch_distributions_trial.py run --out /tmp/dist
    python tools/torch_distributions_trial.py run --out /tmp/dist --section kl --filter Normal
    python tools/torch_distributions_trial.py show --out /tmp/dist --kind values_differ

``run`` writes ``cases.json`` and prints the counts per section and kind, and per family.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import re
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_oracle import time_limit, torch_tensor_to_chainrule  # noqa: E402

SECONDS_PER_CALL = 5
KINDS = ("same", "values_differ", "shape_differs", "error_class_differs", "torch_only_raised",
         "chainrule_only_raised", "missing")
SECTIONS = ("family", "kl", "transform", "constraint", "validate")


class CallTimeout(Exception):
    pass


# ----------------------------------------------------------------------------------------------
# building on either library
# ----------------------------------------------------------------------------------------------

class Maker:
    """Builds on one library: ``T(values)`` is a parameter tensor of the case's dtype (requiring grad
    when the case differentiates, collected in ``params``), ``T.D`` the distributions module."""

    def __init__(self, lib, dtype="float32", grad=False, reverse=False):
        self.lib, self.D, self.dtype, self.grad, self.params = lib, lib.distributions, getattr(lib, dtype), grad, []
        self.reverse = reverse

    def __call__(self, values, grad=True):
        if self.reverse and isinstance(values, list):
            values = values[::-1]  # KL's q: the batch (or event) entries in reverse, other parameters, same validity
        tensor = self.lib.tensor(values, dtype=self.dtype)
        if self.grad and grad:
            tensor.requires_grad_(True)
            self.params.append(tensor)
        return tensor


def _seed(lib, seed=0):
    lib.manual_seed(seed)


def _call(function, *args):
    """(exception or None, result) of ``function(*args)`` under the time limit, warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with time_limit(SECONDS_PER_CALL, CallTimeout):
                return None, function(*args)
        except Exception as exc:  # any exception is an outcome to compare
            return exc, None


# ----------------------------------------------------------------------------------------------
# the families
# ----------------------------------------------------------------------------------------------

def _mvn_cov(T):
    return T([[2.0, 0.5], [0.5, 1.0]])


FAMILIES = [
    # (family, label, build(T), dtypes)
    ("Normal", "batch", lambda T: T.D.Normal(T([0.0, 1.0, -2.0]), T([1.0, 0.5, 2.0])), ("float32", "float64")),
    ("Normal", "numbers", lambda T: T.D.Normal(0.5, 2.0), ("float32",)),
    ("Normal", "broadcast", lambda T: T.D.Normal(T([[0.0], [1.0]]), T([1.0, 2.0, 3.0])), ("float32",)),
    ("Bernoulli", "probs", lambda T: T.D.Bernoulli(probs=T([0.2, 0.5, 0.9])), ("float32", "float64")),
    ("Bernoulli", "logits", lambda T: T.D.Bernoulli(logits=T([[-1.0, 0.0, 2.0]])), ("float32",)),
    ("Bernoulli", "scalar", lambda T: T.D.Bernoulli(T(0.3)), ("float32",)),
    ("Categorical", "probs", lambda T: T.D.Categorical(probs=T([[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]])),
     ("float32", "float64")),
    ("Categorical", "logits", lambda T: T.D.Categorical(logits=T([0.5, -1.0, 2.0, 0.0])), ("float32",)),
    ("OneHotCategorical", "probs", lambda T: T.D.OneHotCategorical(probs=T([[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]])),
     ("float32", "float64")),
    ("OneHotCategorical", "logits", lambda T: T.D.OneHotCategorical(logits=T([0.5, -1.0, 2.0, 0.0])), ("float32",)),
    ("OneHotCategoricalStraightThrough", "probs",
     lambda T: T.D.OneHotCategoricalStraightThrough(probs=T([[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]])), ("float32",)),
    ("Beta", "batch", lambda T: T.D.Beta(T([0.5, 2.0, 3.0]), T([1.5, 1.0, 4.0])), ("float32", "float64")),
    ("Beta", "numbers", lambda T: T.D.Beta(2.0, 3.0), ("float32",)),
    ("Gamma", "batch", lambda T: T.D.Gamma(T([0.5, 2.0, 3.0]), T([1.0, 2.0, 0.5])), ("float32", "float64")),
    ("Gamma", "scalar", lambda T: T.D.Gamma(T(2.0), T(3.0)), ("float32",)),
    ("Dirichlet", "batch", lambda T: T.D.Dirichlet(T([[0.5, 1.0, 2.0], [3.0, 1.0, 0.2]])), ("float32", "float64")),
    ("Dirichlet", "single", lambda T: T.D.Dirichlet(T([1.0, 1.0, 1.0, 1.0])), ("float32",)),
    ("MultivariateNormal", "covariance",
     lambda T: T.D.MultivariateNormal(T([[0.0, 1.0], [1.0, -1.0], [2.0, 0.0]]), covariance_matrix=_mvn_cov(T)),
     ("float32", "float64")),
    ("MultivariateNormal", "scale_tril",
     lambda T: T.D.MultivariateNormal(T([1.0, 2.0]), scale_tril=T([[1.0, 0.0], [0.3, 0.7]])), ("float32",)),
    ("MultivariateNormal", "precision",
     lambda T: T.D.MultivariateNormal(T([1.0, 2.0]), precision_matrix=_mvn_cov(T)), ("float32",)),
    ("LowRankMultivariateNormal", "batch",
     lambda T: T.D.LowRankMultivariateNormal(T([[0.0, 1.0, 2.0], [1.0, 0.0, -1.0]]), T([[1.0], [0.5], [-0.3]]),
                                             T([1.0, 2.0, 0.5])), ("float32", "float64")),
    ("Binomial", "probs", lambda T: T.D.Binomial(T([5.0, 10.0, 20.0], grad=False), probs=T([0.2, 0.5, 0.8])),
     ("float32", "float64")),
    ("Binomial", "logits", lambda T: T.D.Binomial(10, logits=T([-1.0, 0.0, 1.0])), ("float32",)),
    ("Multinomial", "probs", lambda T: T.D.Multinomial(10, probs=T([0.2, 0.3, 0.5])), ("float32", "float64")),
    ("Multinomial", "logits", lambda T: T.D.Multinomial(4, logits=T([[1.0, 2.0, -1.0, 0.0], [0.0, 0.0, 3.0, 1.0]])),
     ("float32",)),
    ("Poisson", "batch", lambda T: T.D.Poisson(T([0.5, 3.0, 10.0])), ("float32", "float64")),
    ("Poisson", "scalar", lambda T: T.D.Poisson(T(2.0)), ("float32",)),
    ("Exponential", "batch", lambda T: T.D.Exponential(T([0.5, 1.0, 2.0])), ("float32", "float64")),
    ("Exponential", "number", lambda T: T.D.Exponential(1.5), ("float32",)),
    ("Laplace", "batch", lambda T: T.D.Laplace(T([0.0, 1.0]), T([1.0, 2.0])), ("float32", "float64")),
    ("Cauchy", "batch", lambda T: T.D.Cauchy(T([0.0, 1.0]), T([1.0, 0.1])), ("float32", "float64")),
    ("HalfNormal", "batch", lambda T: T.D.HalfNormal(T([1.0, 2.0])), ("float32", "float64")),
    ("HalfCauchy", "batch", lambda T: T.D.HalfCauchy(T([1.0, 2.0])), ("float32", "float64")),
    ("LogNormal", "batch", lambda T: T.D.LogNormal(T([0.0, 1.0]), T([0.5, 1.0])), ("float32", "float64")),
    ("Gumbel", "batch", lambda T: T.D.Gumbel(T([0.0, 1.0]), T([1.0, 2.0])), ("float32", "float64")),
    ("StudentT", "batch", lambda T: T.D.StudentT(T([1.5, 3.0, 30.0]), T([0.0, 1.0, -1.0]), T([1.0, 2.0, 0.5])),
     ("float32", "float64")),
    ("StudentT", "df_only", lambda T: T.D.StudentT(T([4.0, 2.5])), ("float32",)),
    ("Chi2", "batch", lambda T: T.D.Chi2(T([1.0, 3.5])), ("float32", "float64")),
    ("Uniform", "batch", lambda T: T.D.Uniform(T([0.0, -1.0]), T([1.0, 2.0])), ("float32", "float64")),
    ("Uniform", "numbers", lambda T: T.D.Uniform(0.0, 5.0), ("float32",)),
    ("VonMises", "batch", lambda T: T.D.VonMises(T([0.0, 1.0]), T([0.5, 4.0])), ("float32", "float64")),
    ("Weibull", "batch", lambda T: T.D.Weibull(T([1.0, 2.0]), T([0.5, 3.0])), ("float32", "float64")),
    ("Pareto", "batch", lambda T: T.D.Pareto(T([1.0, 2.0]), T([2.0, 3.0])), ("float32", "float64")),
    ("Kumaraswamy", "batch", lambda T: T.D.Kumaraswamy(T([0.5, 2.0]), T([2.0, 3.0])), ("float32", "float64")),
    ("LKJCholesky", "dim3", lambda T: T.D.LKJCholesky(3, T(1.5)), ("float32", "float64")),
    ("LKJCholesky", "number", lambda T: T.D.LKJCholesky(2, 0.5), ("float32",)),
    ("Wishart", "covariance", lambda T: T.D.Wishart(T(4.0), covariance_matrix=_mvn_cov(T)), ("float32", "float64")),
    ("Wishart", "scale_tril", lambda T: T.D.Wishart(T([3.0, 5.0]), scale_tril=T([[1.0, 0.0], [0.3, 0.7]])),
     ("float32",)),
    ("ContinuousBernoulli", "probs", lambda T: T.D.ContinuousBernoulli(probs=T([0.2, 0.5, 0.8])),
     ("float32", "float64")),
    ("ContinuousBernoulli", "logits", lambda T: T.D.ContinuousBernoulli(logits=T([-1.0, 0.5])), ("float32",)),
    ("FisherSnedecor", "batch", lambda T: T.D.FisherSnedecor(T([3.0, 5.0]), T([4.0, 10.0])), ("float32", "float64")),
    ("Geometric", "probs", lambda T: T.D.Geometric(probs=T([0.2, 0.5, 0.9])), ("float32", "float64")),
    ("Geometric", "logits", lambda T: T.D.Geometric(logits=T([-1.0, 0.5])), ("float32",)),
    ("NegativeBinomial", "probs", lambda T: T.D.NegativeBinomial(T([3.0, 5.0]), probs=T([0.3, 0.6])),
     ("float32", "float64")),
    ("NegativeBinomial", "logits", lambda T: T.D.NegativeBinomial(4.0, logits=T([-1.0, 0.5])), ("float32",)),
    ("RelaxedBernoulli", "probs", lambda T: T.D.RelaxedBernoulli(T(0.5), probs=T([0.2, 0.7])), ("float32", "float64")),
    ("RelaxedBernoulli", "logits", lambda T: T.D.RelaxedBernoulli(T(2.0), logits=T([-1.0, 1.0])), ("float32",)),
    ("RelaxedOneHotCategorical", "probs",
     lambda T: T.D.RelaxedOneHotCategorical(T(0.5), probs=T([0.1, 0.2, 0.7])), ("float32", "float64")),
    ("RelaxedOneHotCategorical", "logits",
     lambda T: T.D.RelaxedOneHotCategorical(T(1.5), logits=T([[0.0, 1.0, 2.0], [1.0, 1.0, -1.0]])), ("float32",)),
    ("LogisticNormal", "batch", lambda T: T.D.LogisticNormal(T([0.0, 1.0]), T([1.0, 0.5])), ("float32", "float64")),
    ("InverseGamma", "batch", lambda T: T.D.InverseGamma(T([2.0, 3.0]), T([1.0, 2.0])), ("float32", "float64")),
    ("GeneralizedPareto", "batch",
     lambda T: T.D.GeneralizedPareto(T([0.0, 1.0]), T([1.0, 2.0]), T([0.2, -0.3])), ("float32", "float64")),
    ("MixtureSameFamily", "normal",
     lambda T: T.D.MixtureSameFamily(T.D.Categorical(T([0.3, 0.7])), T.D.Normal(T([0.0, 2.0]), T([1.0, 0.5]))),
     ("float32", "float64")),
    ("MixtureSameFamily", "batched_mvn",
     lambda T: T.D.MixtureSameFamily(T.D.Categorical(logits=T([[0.0, 1.0], [1.0, -1.0]])),
                                     T.D.Independent(T.D.Normal(T([[[0.0, 1.0], [2.0, 0.0]], [[1.0, 1.0], [0.0, 0.0]]]),
                                                                T([[[1.0, 1.0], [0.5, 2.0]], [[1.0, 1.0], [1.0, 1.0]]])),
                                                     1)), ("float32",)),
    ("Independent", "normal",
     lambda T: T.D.Independent(T.D.Normal(T([[0.0, 1.0], [2.0, 3.0]]), T([[1.0, 1.0], [2.0, 2.0]])), 1),
     ("float32", "float64")),
    ("Independent", "bernoulli", lambda T: T.D.Independent(T.D.Bernoulli(probs=T([[0.1, 0.9], [0.5, 0.5]])), 2),
     ("float32",)),
    ("TransformedDistribution", "affine_exp",
     lambda T: T.D.TransformedDistribution(T.D.Normal(T([0.0, 1.0]), T([1.0, 2.0])),
                                           [T.D.AffineTransform(1.0, 2.0), T.D.ExpTransform()]),
     ("float32", "float64")),
    ("TransformedDistribution", "sigmoid",
     lambda T: T.D.TransformedDistribution(T.D.Uniform(T([0.0]), T([1.0])), T.D.SigmoidTransform()), ("float32",)),
]

def _sample_torch(dist, torch, shape=(2,)):
    torch.manual_seed(1)
    with torch.no_grad():
        return dist.sample(shape)


def _out_of_support(dist, value, torch):
    """A value of ``value``'s shape outside ``dist``'s support, by torch's check, or None."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for bad in (-value - 1, value + 0.5, value * 2 + 3, value * math.nan):
            try:
                if not bool(dist.support.check(bad).all()):
                    return bad
            except Exception:
                return None
    return None


def _wrong_shape(dist, value, torch):
    """A value whose last dim does not broadcast with batch_shape + event_shape, or None."""
    full = tuple(dist.batch_shape) + tuple(dist.event_shape)
    if not full:
        return None
    return torch.zeros(full[:-1] + (full[-1] + 4,), dtype=value.dtype)


def _grads(T, output):
    """The gradients of ``output.sum()`` with respect to the parameters ``T`` made (None where none arrived)."""
    if not getattr(output, "requires_grad", False):
        return "no graph"
    output.sum().backward()
    return [p.grad for p in T.params]


def family_probes():
    """``(probe, needs, run(d, T, data))``: ``needs`` names the precomputed torch data the probe uses."""
    return [
        ("batch_shape", (), lambda d, T, data: tuple(d.batch_shape)),
        ("event_shape", (), lambda d, T, data: tuple(d.event_shape)),
        ("support", (), lambda d, T, data: repr(d.support)),
        ("has_rsample", (), lambda d, T, data: d.has_rsample),
        ("has_enumerate_support", (), lambda d, T, data: d.has_enumerate_support),
        ("mean", (), lambda d, T, data: d.mean),
        ("mode", (), lambda d, T, data: d.mode),
        ("variance", (), lambda d, T, data: d.variance),
        ("stddev", (), lambda d, T, data: d.stddev),
        ("entropy", (), lambda d, T, data: d.entropy()),
        ("perplexity", (), lambda d, T, data: d.perplexity()),
        ("log_prob", ("x",), lambda d, T, data: d.log_prob(data["x"])),
        ("cdf", ("x",), lambda d, T, data: d.cdf(data["x"])),
        ("icdf", ("u",), lambda d, T, data: d.icdf(data["u"])),
        ("log_prob_out_of_support", ("bad",), lambda d, T, data: d.log_prob(data["bad"])),
        ("log_prob_wrong_shape", ("wrong",), lambda d, T, data: d.log_prob(data["wrong"])),
        ("enumerate_support", (), lambda d, T, data: d.enumerate_support()),
        ("enumerate_support_unexpanded", (), lambda d, T, data: d.enumerate_support(expand=False)),
        ("expand", ("x",), lambda d, T, data: (lambda e: (tuple(e.batch_shape), e.log_prob(data["x"])))(
            d.expand((2,) + tuple(d.batch_shape)))),
        ("sample_shape", (), lambda d, T, data: tuple(d.sample((4, 1)).shape)),
        ("sample", (), lambda d, T, data: d.sample((3,))),
        ("rsample", (), lambda d, T, data: d.rsample((3,))),
        ("rsample_grad", (), lambda d, T, data: _grads(T, d.rsample((3,)))),
        ("log_prob_grad", ("x",), lambda d, T, data: _grads(T, d.log_prob(data["x"]))),
        ("entropy_grad", (), lambda d, T, data: _grads(T, d.entropy())),
    ]


def _family_data(build, dtype):
    """torch's in-support values for log_prob/cdf, uniforms for icdf, an out-of-support value and one
    of the wrong shape: computed once on torch, given to both."""
    import torch

    data = {}
    dist = build(Maker(torch, dtype))
    try:
        data["x"] = _sample_torch(dist, torch)
    except Exception:
        return data
    torch.manual_seed(2)
    data["u"] = torch.rand(tuple(dist.batch_shape), dtype=getattr(torch, dtype)) * 0.8 + 0.1
    bad = _out_of_support(dist, data["x"], torch)
    if bad is not None:
        data["bad"] = bad
    wrong = _wrong_shape(dist, data["x"], torch)
    if wrong is not None:
        data["wrong"] = wrong
    return data


def family_cases(pattern=None):
    cases = []
    for family, label, build, dtypes in FAMILIES:
        for dtype in dtypes:
            name = f"{family}[{label},{dtype}]"
            if pattern and not re.search(pattern, name):
                continue
            memo: dict = {}

            def data(build=build, dtype=dtype, memo=memo):
                if "data" not in memo:
                    memo["data"] = _family_data(build, dtype)
                return memo["data"]

            for probe, needs, run in family_probes():
                cases.append({"section": "family", "family": family, "name": name, "probe": probe,
                              "build": build, "dtype": dtype, "needs": needs, "run": run, "data": data})
    return cases


def run_family_case(case):
    import torch

    import chainrule

    data = case["data"]()
    if any(need not in data for need in case["needs"]):
        return None  # no such value (a real support has no out-of-support value)
    results = []
    for lib in (torch, chainrule):
        converted = data if lib is torch else {key: torch_tensor_to_chainrule(value) for key, value in data.items()}
        T = Maker(lib, case["dtype"], grad=case["probe"].endswith("_grad"))
        _seed(lib)
        exc, dist = _call(case["build"], T)
        if exc is not None:
            results.append((exc, None))
            continue
        _seed(lib)
        results.append(_call(case["run"], dist, T, converted))
    return results


# ----------------------------------------------------------------------------------------------
# KL pairs
# ----------------------------------------------------------------------------------------------

KL_FAMILIES = {
    # batch (3,), parameters inside every support where they can be
    "Bernoulli": lambda T: T.D.Bernoulli(probs=T([0.2, 0.5, 0.9])),
    "Poisson": lambda T: T.D.Poisson(T([0.5, 1.0, 3.0])),
    "Beta": lambda T: T.D.Beta(T([0.5, 2.0, 3.0]), T([1.5, 1.0, 4.0])),
    "ContinuousBernoulli": lambda T: T.D.ContinuousBernoulli(probs=T([0.2, 0.6, 0.9])),
    "Exponential": lambda T: T.D.Exponential(T([0.5, 1.0, 2.0])),
    "Gamma": lambda T: T.D.Gamma(T([0.5, 2.0, 3.0]), T([1.0, 2.0, 0.5])),
    "Normal": lambda T: T.D.Normal(T([0.0, 1.0, -2.0]), T([1.0, 0.5, 2.0])),
    "Pareto": lambda T: T.D.Pareto(T([1.0, 2.0, 0.5]), T([2.0, 3.0, 4.0])),
    "Uniform": lambda T: T.D.Uniform(T([0.1, -1.0, 0.2]), T([0.9, 2.0, 3.0])),
    "Binomial": lambda T: T.D.Binomial(10, probs=T([0.2, 0.5, 0.8])),
    "Categorical": lambda T: T.D.Categorical(probs=T([[0.1, 0.2, 0.7], [0.3, 0.3, 0.4], [0.5, 0.25, 0.25]])),
    "OneHotCategorical": lambda T: T.D.OneHotCategorical(
        probs=T([[0.1, 0.2, 0.7], [0.3, 0.3, 0.4], [0.5, 0.25, 0.25]])),
    "Cauchy": lambda T: T.D.Cauchy(T([0.0, 1.0, -1.0]), T([1.0, 0.1, 2.0])),
    "Dirichlet": lambda T: T.D.Dirichlet(T([[0.5, 1.0, 2.0], [3.0, 1.0, 0.2], [1.0, 1.0, 1.0]])),
    "Geometric": lambda T: T.D.Geometric(probs=T([0.2, 0.5, 0.9])),
    "Gumbel": lambda T: T.D.Gumbel(T([0.0, 1.0, -1.0]), T([1.0, 2.0, 0.5])),
    "HalfNormal": lambda T: T.D.HalfNormal(T([1.0, 2.0, 0.5])),
    "Laplace": lambda T: T.D.Laplace(T([0.0, 1.0, -1.0]), T([1.0, 2.0, 0.5])),
    "LowRankMultivariateNormal": lambda T: T.D.LowRankMultivariateNormal(
        T([[0.0, 1.0], [1.0, 0.0], [2.0, -1.0]]), T([[[1.0], [0.5]], [[0.2], [0.1]], [[-1.0], [0.3]]]),
        T([[1.0, 2.0], [0.5, 0.5], [1.0, 1.0]])),
    "MultivariateNormal": lambda T: T.D.MultivariateNormal(
        T([[0.5, 1.0], [1.0, 0.0], [0.0, -1.0]]), scale_tril=T([[[1.0, 0.0], [0.3, 0.7]], [[2.0, 0.0], [0.0, 1.0]],
                                                                  [[0.5, 0.0], [-0.2, 1.5]]])),
    "Independent": lambda T: T.D.Independent(T.D.Normal(T([[0.0, 1.0], [2.0, 3.0], [0.0, 0.0]]),
                                                        T([[1.0, 1.0], [2.0, 2.0], [0.5, 3.0]])), 1),
    "TransformedDistribution": lambda T: T.D.TransformedDistribution(
        T.D.Normal(T([0.0, 1.0, -2.0]), T([1.0, 0.5, 2.0])), [T.D.ExpTransform()]),
    "Chi2": lambda T: T.D.Chi2(T([1.0, 3.5, 2.0])),
    "HalfCauchy": lambda T: T.D.HalfCauchy(T([1.0, 2.0, 0.5])),
    "LogNormal": lambda T: T.D.LogNormal(T([0.0, 1.0, -1.0]), T([0.5, 1.0, 2.0])),
    "StudentT": lambda T: T.D.StudentT(T([1.5, 3.0, 30.0])),
    "VonMises": lambda T: T.D.VonMises(T([0.0, 1.0, 2.0]), T([0.5, 4.0, 1.0])),
    "Weibull": lambda T: T.D.Weibull(T([1.0, 2.0, 0.5]), T([0.5, 3.0, 1.0])),
    "Kumaraswamy": lambda T: T.D.Kumaraswamy(T([0.5, 2.0, 1.0]), T([2.0, 3.0, 1.0])),
    "FisherSnedecor": lambda T: T.D.FisherSnedecor(T([3.0, 5.0, 2.0]), T([4.0, 10.0, 3.0])),
    "NegativeBinomial": lambda T: T.D.NegativeBinomial(T([3.0, 5.0, 1.0]), probs=T([0.3, 0.6, 0.5])),
    "InverseGamma": lambda T: T.D.InverseGamma(T([2.0, 3.0, 1.0]), T([1.0, 2.0, 0.5])),
    "Multinomial": lambda T: T.D.Multinomial(5, probs=T([[0.1, 0.2, 0.7], [0.3, 0.3, 0.4], [0.5, 0.25, 0.25]])),
    "RelaxedBernoulli": lambda T: T.D.RelaxedBernoulli(T(0.5), probs=T([0.2, 0.5, 0.9])),
    "LogisticNormal": lambda T: T.D.LogisticNormal(T([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]]), T([1.0, 0.5])),
    "GeneralizedPareto": lambda T: T.D.GeneralizedPareto(T([0.0, 1.0, 0.5]), T([1.0, 2.0, 1.0]),
                                                         T([0.2, -0.3, 0.1])),
}


def kl_cases(pattern=None):
    """q is built with its parameter lists reversed; each family is also paired with an equal copy of
    itself (torch compares a TransformedDistribution's transforms by value)."""
    from torch.distributions.kl import _KL_REGISTRY

    pairs = sorted({(p.__name__, q.__name__) for p, q in _KL_REGISTRY if p.__name__ != "ExponentialFamily"})
    pairs = [(p, q, True) for p, q in pairs] + [(name, name, True) for name in KL_FAMILIES if (name, name) not in
                                                pairs] + [(name, name, False) for name in KL_FAMILIES]
    cases = []
    for p, q, reverse in pairs:
        name = f"kl({p}, {q}{'' if reverse else ' equal'})"
        if pattern and not re.search(pattern, name):
            continue
        for dtype in ("float32", "float64"):
            cases.append({"section": "kl", "family": p, "name": f"{name}[{dtype}]", "probe": "kl_divergence",
                          "p": KL_FAMILIES[p], "q": KL_FAMILIES[q], "dtype": dtype, "reverse": reverse})
    return cases


def run_kl_case(case):
    import torch

    import chainrule

    results = []
    for lib in (torch, chainrule):
        p_maker, q_maker = Maker(lib, case["dtype"]), Maker(lib, case["dtype"], reverse=case["reverse"])
        exc, pair = _call(lambda p_maker=p_maker, q_maker=q_maker: (case["p"](p_maker), case["q"](q_maker)))
        results.append((exc, None) if exc is not None else _call(lib.distributions.kl_divergence, *pair))
    return results


# ----------------------------------------------------------------------------------------------
# transforms
# ----------------------------------------------------------------------------------------------

def _positive_definite(T):
    return T([[2.0, 0.5, 0.1], [0.5, 1.0, 0.2], [0.1, 0.2, 3.0]])


TRANSFORMS = [
    # (name, build(T), x(T))
    ("ExpTransform", lambda T: T.D.ExpTransform(), lambda T: T([-1.0, 0.0, 2.0])),
    ("ExpTransform.inv", lambda T: T.D.ExpTransform().inv, lambda T: T([0.5, 1.0, 3.0])),
    ("AffineTransform[tensor]", lambda T: T.D.AffineTransform(T([1.0, 2.0]), T([2.0, -0.5])),
     lambda T: T([[0.3, -1.0], [2.0, 1.0]])),
    ("AffineTransform[event_dim=1]", lambda T: T.D.AffineTransform(0.5, 3.0, event_dim=1),
     lambda T: T([[0.3, -1.0, 1.0], [2.0, 1.0, 0.0]])),
    ("AffineTransform[negative]", lambda T: T.D.AffineTransform(0.0, -2.0), lambda T: T([0.3, -1.0])),
    ("SigmoidTransform", lambda T: T.D.SigmoidTransform(), lambda T: T([-3.0, 0.0, 2.0])),
    ("TanhTransform", lambda T: T.D.TanhTransform(), lambda T: T([-3.0, 0.0, 0.5])),
    ("SoftmaxTransform", lambda T: T.D.SoftmaxTransform(), lambda T: T([[0.0, 1.0, 2.0, -1.0], [1.0, 1.0, 1.0, 1.0]])),
    ("StickBreakingTransform", lambda T: T.D.StickBreakingTransform(), lambda T: T([[0.0, 1.0, -2.0], [0.5, 0.5, 0.5]])),
    ("LowerCholeskyTransform", lambda T: T.D.LowerCholeskyTransform(),
     lambda T: T([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0], [0.2, 0.3, 0.4]])),
    ("PowerTransform", lambda T: T.D.PowerTransform(T(2.5)), lambda T: T([0.5, 1.0, 3.0])),
    ("PowerTransform[negative]", lambda T: T.D.PowerTransform(T(-1.5)), lambda T: T([0.5, 1.0, 3.0])),
    ("ComposeTransform", lambda T: T.D.ComposeTransform([T.D.AffineTransform(1.0, 2.0), T.D.ExpTransform()]),
     lambda T: T([-1.0, 0.0, 0.5])),
    ("ComposeTransform[empty]", lambda T: T.D.ComposeTransform([]), lambda T: T([-1.0, 0.0])),
    ("AbsTransform", lambda T: T.D.AbsTransform(), lambda T: T([-1.0, 0.0, 2.0])),
    ("SoftplusTransform", lambda T: T.D.SoftplusTransform(), lambda T: T([-3.0, 0.0, 2.0])),
    ("CorrCholeskyTransform", lambda T: T.D.CorrCholeskyTransform(), lambda T: T([[0.5, -1.0, 0.2], [0.0, 0.0, 0.0]])),
    ("PositiveDefiniteTransform", lambda T: T.D.PositiveDefiniteTransform(),
     lambda T: T([[1.0, 0.0, 0.0], [0.5, -1.0, 0.0], [0.2, 0.3, 0.4]])),
    ("ReshapeTransform", lambda T: T.D.ReshapeTransform((4,), (2, 2)), lambda T: T([[1.0, 2.0, 3.0, 4.0]])),
    ("IndependentTransform", lambda T: T.D.IndependentTransform(T.D.ExpTransform(), 1),
     lambda T: T([[0.0, 1.0], [2.0, -1.0]])),
    ("CatTransform", lambda T: T.D.CatTransform([T.D.ExpTransform(), T.D.AffineTransform(0.0, 2.0)], 0, [2, 2]),
     lambda T: T([0.0, 1.0, 2.0, -1.0])),
    ("StackTransform", lambda T: T.D.StackTransform([T.D.ExpTransform(), T.D.AffineTransform(1.0, 3.0)], 1),
     lambda T: T([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5]])),
    ("CumulativeDistributionTransform", lambda T: T.D.CumulativeDistributionTransform(T.D.Normal(0.0, 1.0)),
     lambda T: T([-1.0, 0.0, 2.0])),
    ("identity_transform", lambda T: T.D.identity_transform, lambda T: T([1.0, 2.0])),
    ("biject_to(simplex)", lambda T: T.D.biject_to(T.D.constraints.simplex), lambda T: T([[0.0, 1.0, -2.0]])),
    ("transform_to(positive)", lambda T: T.D.transform_to(T.D.constraints.positive), lambda T: T([-1.0, 2.0])),
    ("biject_to(interval)", lambda T: T.D.biject_to(T.D.constraints.interval(-1.0, 3.0)), lambda T: T([-1.0, 2.0])),
    ("transform_to(lower_cholesky)", lambda T: T.D.transform_to(T.D.constraints.lower_cholesky),
     lambda T: T([[1.0, 2.0], [0.5, -1.0]])),
    ("biject_to(corr_cholesky)", lambda T: T.D.biject_to(T.D.constraints.corr_cholesky), lambda T: T([0.5, -1.0, 0.2])),
]


def transform_probes():
    def y_of(t, T):
        return t(T.x)

    return [
        ("forward", lambda t, T: t(T.x)),
        ("inv", lambda t, T: t.inv(y_of(t, T))),
        ("log_abs_det_jacobian", lambda t, T: t.log_abs_det_jacobian(T.x, y_of(t, T))),
        ("sign", lambda t, T: t.sign),
        ("bijective", lambda t, T: t.bijective),
        ("domain", lambda t, T: (repr(t.domain), t.domain.event_dim)),
        ("codomain", lambda t, T: (repr(t.codomain), t.codomain.event_dim)),
        ("forward_shape", lambda t, T: tuple(t.forward_shape(tuple(T.x.shape)))),
        ("inverse_shape", lambda t, T: tuple(t.inverse_shape(tuple(y_of(t, T).shape)))),
        ("repr", lambda t, T: repr(t)),
        ("forward_grad", lambda t, T: _grads(T, t(T.x))),
    ]


def transform_cases(pattern=None):
    cases = []
    for name, build, x in TRANSFORMS:
        if pattern and not re.search(pattern, name):
            continue
        for probe, run in transform_probes():
            cases.append({"section": "transform", "family": name.split("[")[0], "name": name, "probe": probe,
                          "build": build, "x": x, "run": run})
    return cases


def run_transform_case(case):
    import torch

    import chainrule

    results = []
    for lib in (torch, chainrule):
        T = Maker(lib, "float32", grad=case["probe"].endswith("_grad"))
        exc, transform = _call(case["build"], T)
        if exc is None:
            exc, T.x = _call(case["x"], T)
        results.append((exc, None) if exc is not None else _call(case["run"], transform, T))
    return results


# ----------------------------------------------------------------------------------------------
# constraints
# ----------------------------------------------------------------------------------------------

VECTOR = [-1.0, 0.0, 0.5, 1.0, 2.5, math.nan, math.inf]
MATRICES = [[[1.0, 0.0], [0.5, 2.0]], [[1.0, 2.0], [0.0, 1.0]], [[2.0, 1.0], [1.0, 2.0]], [[1.0, 2.0], [2.0, 1.0]],
            [[0.0, 0.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.6, 0.8]], [[1.0, 0.0], [0.0, -1.0]]]
ROWS = [[0.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.2, 0.3, 0.5], [0.5, 0.6, -0.1], [2.0, 3.0, 0.0]]

CONSTRAINTS = [
    ("real", lambda C: C.real), ("positive", lambda C: C.positive), ("nonnegative", lambda C: C.nonnegative),
    ("unit_interval", lambda C: C.unit_interval), ("boolean", lambda C: C.boolean), ("simplex", lambda C: C.simplex),
    ("integer_interval", lambda C: C.integer_interval(0, 3)), ("interval", lambda C: C.interval(-1.0, 2.0)),
    ("half_open_interval", lambda C: C.half_open_interval(0.0, 1.0)),
    ("greater_than", lambda C: C.greater_than(1.5)), ("greater_than_eq", lambda C: C.greater_than_eq(2.0)),
    ("less_than", lambda C: C.less_than(0.0)), ("positive_integer", lambda C: C.positive_integer),
    ("nonnegative_integer", lambda C: C.nonnegative_integer), ("lower_cholesky", lambda C: C.lower_cholesky),
    ("lower_triangular", lambda C: C.lower_triangular), ("positive_definite", lambda C: C.positive_definite),
    ("positive_semidefinite", lambda C: C.positive_semidefinite), ("corr_cholesky", lambda C: C.corr_cholesky),
    ("real_vector", lambda C: C.real_vector), ("one_hot", lambda C: C.one_hot),
    ("multinomial", lambda C: C.multinomial(2)), ("square", lambda C: C.square), ("symmetric", lambda C: C.symmetric),
    ("independent", lambda C: C.independent(C.positive, 1)),
    ("cat", lambda C: C.cat([C.real, C.positive], 1, [1, 2])),
    ("stack", lambda C: C.stack([C.real, C.positive, C.unit_interval], 1)),
    ("positive_vector", lambda C: C.independent(C.positive, 1)),
]


def constraint_probes():
    return [
        ("check_vector", lambda c, lib: c.check(lib.tensor(VECTOR))),
        ("check_matrices", lambda c, lib: c.check(lib.tensor(MATRICES))),
        ("check_rows", lambda c, lib: c.check(lib.tensor(ROWS))),
        ("check_int", lambda c, lib: c.check(lib.tensor([[-1, 0, 1], [2, 3, 4]]))),
        ("repr", lambda c, lib: repr(c)),
        ("is_discrete", lambda c, lib: c.is_discrete),
        ("event_dim", lambda c, lib: c.event_dim),
    ]


def constraint_cases(pattern=None):
    cases = []
    for name, build in CONSTRAINTS:
        if pattern and not re.search(pattern, name):
            continue
        for probe, run in constraint_probes():
            cases.append({"section": "constraint", "family": name, "name": name, "probe": probe, "build": build,
                          "run": run})
    return cases


def run_constraint_case(case):
    import torch

    import chainrule

    results = []
    for lib in (torch, chainrule):
        exc, constraint = _call(case["build"], lib.distributions.constraints)
        results.append((exc, None) if exc is not None else _call(case["run"], constraint, lib))
    return results


# ----------------------------------------------------------------------------------------------
# constructor validation
# ----------------------------------------------------------------------------------------------

def _eye(T, n):
    return T([[1.0 if i == j else 0.0 for j in range(n)] for i in range(n)])


VALIDATE = [
    ("Normal", "negative_scale", lambda T: T.D.Normal(T([0.0, 1.0]), T([1.0, -1.0]))),
    ("Normal", "nan_loc", lambda T: T.D.Normal(T([math.nan]), T([1.0]))),
    ("Normal", "shapes", lambda T: T.D.Normal(T([0.0, 1.0]), T([1.0, 1.0, 1.0]))),
    ("Normal", "not_validated", lambda T: T.D.Normal(T([0.0]), T([-1.0]), validate_args=False).scale),
    ("Normal", "string", lambda T: T.D.Normal("a", 1.0)),
    ("Bernoulli", "neither", lambda T: T.D.Bernoulli()),
    ("Bernoulli", "both", lambda T: T.D.Bernoulli(probs=T([0.5]), logits=T([0.0]))),
    ("Bernoulli", "probs_above_one", lambda T: T.D.Bernoulli(probs=T([1.5]))),
    ("Categorical", "zero_dim", lambda T: T.D.Categorical(probs=T(0.5))),
    ("Categorical", "negative", lambda T: T.D.Categorical(probs=T([-0.1, 1.1]))),
    ("Categorical", "neither", lambda T: T.D.Categorical()),
    ("Categorical", "unnormalised", lambda T: T.D.Categorical(probs=T([2.0, 2.0])).probs),
    ("OneHotCategorical", "zero_dim", lambda T: T.D.OneHotCategorical(logits=T(0.5))),
    ("Beta", "negative", lambda T: T.D.Beta(T([-1.0]), T([1.0]))),
    ("Beta", "shapes", lambda T: T.D.Beta(T([1.0, 2.0]), T([1.0, 2.0, 3.0]))),
    ("Gamma", "zero", lambda T: T.D.Gamma(T([0.0]), T([1.0]))),
    ("Dirichlet", "zero_dim", lambda T: T.D.Dirichlet(T(1.0))),
    ("Dirichlet", "negative", lambda T: T.D.Dirichlet(T([[1.0, -1.0]]))),
    ("MultivariateNormal", "not_pd", lambda T: T.D.MultivariateNormal(T([0.0, 0.0]), T([[1.0, 2.0], [2.0, 1.0]]))),
    ("MultivariateNormal", "no_matrix", lambda T: T.D.MultivariateNormal(T([0.0, 0.0]))),
    ("MultivariateNormal", "two_matrices",
     lambda T: T.D.MultivariateNormal(T([0.0, 0.0]), _eye(T, 2), scale_tril=_eye(T, 2))),
    ("MultivariateNormal", "vector_cov", lambda T: T.D.MultivariateNormal(T([0.0, 0.0]), T([1.0, 1.0]))),
    ("MultivariateNormal", "scalar_loc", lambda T: T.D.MultivariateNormal(T(0.0), _eye(T, 2))),
    ("MultivariateNormal", "mismatched", lambda T: T.D.MultivariateNormal(T([0.0, 0.0, 0.0]), _eye(T, 2))),
    ("MultivariateNormal", "scale_tril_upper",
     lambda T: T.D.MultivariateNormal(T([0.0, 0.0]), scale_tril=T([[1.0, 1.0], [0.0, 1.0]]))),
    ("LowRankMultivariateNormal", "scalar_loc",
     lambda T: T.D.LowRankMultivariateNormal(T(0.0), T([[1.0]]), T([1.0]))),
    ("LowRankMultivariateNormal", "factor_vector",
     lambda T: T.D.LowRankMultivariateNormal(T([0.0, 0.0]), T([1.0, 1.0]), T([1.0, 1.0]))),
    ("LowRankMultivariateNormal", "diag_mismatch",
     lambda T: T.D.LowRankMultivariateNormal(T([0.0, 0.0]), T([[1.0], [1.0]]), T([1.0, 1.0, 1.0]))),
    ("LowRankMultivariateNormal", "negative_diag",
     lambda T: T.D.LowRankMultivariateNormal(T([0.0, 0.0]), T([[1.0], [1.0]]), T([1.0, -1.0]))),
    ("Binomial", "negative_count", lambda T: T.D.Binomial(T([-1.0]), probs=T([0.5]))),
    ("Binomial", "fractional_count", lambda T: T.D.Binomial(T([2.5]), probs=T([0.5]))),
    ("Binomial", "neither", lambda T: T.D.Binomial(10)),
    ("Multinomial", "neither", lambda T: T.D.Multinomial(10)),
    ("Multinomial", "zero_dim", lambda T: T.D.Multinomial(10, probs=T(0.5))),
    ("Multinomial", "tensor_count", lambda T: T.D.Multinomial(T([3.0, 4.0]), probs=T([0.5, 0.5]))),
    ("Poisson", "negative", lambda T: T.D.Poisson(T([-1.0]))),
    ("Exponential", "zero", lambda T: T.D.Exponential(T([0.0]))),
    ("Uniform", "reversed", lambda T: T.D.Uniform(T([1.0]), T([0.0]))),
    ("Uniform", "empty", lambda T: T.D.Uniform(T([0.0]), T([0.0]))),
    ("StudentT", "negative_df", lambda T: T.D.StudentT(T([-1.0]))),
    ("Chi2", "zero", lambda T: T.D.Chi2(T([0.0]))),
    ("VonMises", "negative", lambda T: T.D.VonMises(T([0.0]), T([-1.0]))),
    ("Weibull", "negative", lambda T: T.D.Weibull(T([-1.0]), T([1.0]))),
    ("Pareto", "zero", lambda T: T.D.Pareto(T([1.0]), T([0.0]))),
    ("Kumaraswamy", "negative", lambda T: T.D.Kumaraswamy(T([-1.0]), T([1.0]))),
    ("LKJCholesky", "dim1", lambda T: T.D.LKJCholesky(1, 1.0)),
    ("LKJCholesky", "negative", lambda T: T.D.LKJCholesky(3, T(-1.0))),
    ("Wishart", "small_df", lambda T: T.D.Wishart(T(1.0), covariance_matrix=_eye(T, 3))),
    ("Wishart", "no_matrix", lambda T: T.D.Wishart(T(4.0))),
    ("Wishart", "two_matrices", lambda T: T.D.Wishart(T(4.0), _eye(T, 2), scale_tril=_eye(T, 2))),
    ("Wishart", "vector", lambda T: T.D.Wishart(T(4.0), T([1.0, 1.0]))),
    ("ContinuousBernoulli", "above_one", lambda T: T.D.ContinuousBernoulli(T([1.5]))),
    ("FisherSnedecor", "negative", lambda T: T.D.FisherSnedecor(T([-1.0]), T([1.0]))),
    ("Geometric", "zero", lambda T: T.D.Geometric(T([0.0]))),
    ("Geometric", "one", lambda T: T.D.Geometric(T([1.0])).mean),
    ("NegativeBinomial", "negative_count", lambda T: T.D.NegativeBinomial(T([-1.0]), T([0.5]))),
    ("NegativeBinomial", "probs_one", lambda T: T.D.NegativeBinomial(T([1.0]), T([1.0]))),
    ("RelaxedOneHotCategorical", "neither", lambda T: T.D.RelaxedOneHotCategorical(T(0.5))),
    ("RelaxedBernoulli", "probs_above_one", lambda T: T.D.RelaxedBernoulli(T(0.5), T([1.5]))),
    ("LogisticNormal", "negative", lambda T: T.D.LogisticNormal(T([0.0]), T([-1.0]))),
    ("HalfNormal", "zero", lambda T: T.D.HalfNormal(T([0.0]))),
    ("HalfCauchy", "negative", lambda T: T.D.HalfCauchy(T([-1.0]))),
    ("LogNormal", "negative", lambda T: T.D.LogNormal(T([0.0]), T([-1.0]))),
    ("Gumbel", "zero", lambda T: T.D.Gumbel(T([0.0]), T([0.0]))),
    ("Laplace", "negative", lambda T: T.D.Laplace(T([0.0]), T([-1.0]))),
    ("Cauchy", "zero", lambda T: T.D.Cauchy(T([0.0]), T([0.0]))),
    ("InverseGamma", "negative", lambda T: T.D.InverseGamma(T([-1.0]), T([1.0]))),
    ("GeneralizedPareto", "negative_scale", lambda T: T.D.GeneralizedPareto(T([0.0]), T([-1.0]), T([0.1]))),
    ("MixtureSameFamily", "mismatch",
     lambda T: T.D.MixtureSameFamily(T.D.Categorical(T([0.3, 0.7])), T.D.Normal(T([0.0, 1.0, 2.0]), T([1.0, 1.0, 1.0])))),
    ("MixtureSameFamily", "not_categorical",
     lambda T: T.D.MixtureSameFamily(T.D.Normal(T([0.0]), T([1.0])), T.D.Normal(T([0.0]), T([1.0])))),
    ("MixtureSameFamily", "not_distribution", lambda T: T.D.MixtureSameFamily(T.D.Categorical(T([0.3, 0.7])), 3)),
    ("Independent", "too_many", lambda T: T.D.Independent(T.D.Normal(T([0.0, 1.0]), T([1.0, 1.0])), 2)),
    ("TransformedDistribution", "not_transform",
     lambda T: T.D.TransformedDistribution(T.D.Normal(T([0.0]), T([1.0])), [3])),
    ("TransformedDistribution", "event_dim_too_big",
     lambda T: T.D.TransformedDistribution(T.D.Normal(T(0.0), T(1.0)), T.D.SoftmaxTransform()).event_shape),
    ("Distribution", "set_default_validate_args", lambda T: T.D.Distribution.set_default_validate_args("yes")),
    ("kl_divergence", "unregistered",
     lambda T: T.D.kl_divergence(T.D.Normal(T([0.0]), T([1.0])), T.D.Bernoulli(T([0.5])))),
    ("kl_divergence", "shapes",
     lambda T: T.D.kl_divergence(T.D.Normal(T([0.0, 1.0]), T([1.0, 1.0])), T.D.Normal(T([0.0, 1.0, 2.0]),
                                                                                    T([1.0, 1.0, 1.0])))),
    ("Distribution", "expand_smaller", lambda T: T.D.Normal(T([0.0, 1.0]), T([1.0, 1.0])).expand((3,))),
]


def validate_cases(pattern=None):
    cases = []
    for family, label, build in VALIDATE:
        name = f"{family}[{label}]"
        if pattern and not re.search(pattern, name):
            continue
        cases.append({"section": "validate", "family": family, "name": name, "probe": "construct", "build": build})
    return cases


def run_validate_case(case):
    import torch

    import chainrule

    results = []
    for lib in (torch, chainrule):
        _seed(lib)
        outcome = _call(case["build"], Maker(lib))
        if outcome[0] is None and isinstance(outcome[1], (torch.distributions.Distribution,
                                                          chainrule.distributions.Distribution)):
            outcome = (None, ("a distribution", tuple(outcome[1].batch_shape), tuple(outcome[1].event_shape)))
        results.append(outcome)
    return results


RUNNERS = {"family": run_family_case, "kl": run_kl_case, "transform": run_transform_case,
           "constraint": run_constraint_case, "validate": run_validate_case}


def all_cases(section="all", pattern=None):
    builders = {"family": family_cases, "kl": kl_cases, "transform": transform_cases,
                "constraint": constraint_cases, "validate": validate_cases}
    cases = []
    for name in SECTIONS:
        if section in ("all", name):
            cases += builders[name](pattern)
    return cases


# ----------------------------------------------------------------------------------------------
# comparing
# ----------------------------------------------------------------------------------------------

def builtin_class(exc) -> type:
    for cls in type(exc).__mro__:
        if cls.__module__ == "builtins":
            return cls
    return Exception


def _describe(exc) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def _difference(want, got):
    """None when torch's answer and chainrule's agree, else ``(kind, what)``."""
    import numpy as np
    import torch

    import chainrule

    if isinstance(want, torch.Tensor):
        if not isinstance(got, chainrule.Tensor):
            return "values_differ", f"returned {type(got).__name__} for a tensor"
        if tuple(want.shape) != tuple(got.shape):
            return "shape_differs", f"{tuple(got.shape)}, torch {tuple(want.shape)}"
        if str(want.dtype).rpartition(".")[2] != str(got.dtype).rpartition(".")[2]:
            return "values_differ", f"dtype {got.dtype}, torch {want.dtype}"
        want_array, got_array = want.detach().numpy(), got.detach().numpy()
        if want_array.dtype.kind in "fc":
            if not np.allclose(got_array, want_array, rtol=1e-4, atol=1e-5, equal_nan=True):
                return "values_differ", f"max |difference| {np.nanmax(np.abs(got_array - want_array))}"
        elif not np.array_equal(got_array, want_array):
            return "values_differ", "values"
        return None
    if isinstance(want, (list, tuple)):
        if not isinstance(got, (list, tuple)):
            return "values_differ", f"returned {type(got).__name__}, torch {type(want).__name__}"
        if len(want) != len(got):
            shapes = all(isinstance(item, int) for item in (*want, *got))
            return ("shape_differs" if shapes else "values_differ"), f"{got!r}, torch {want!r}"
        if want and all(isinstance(item, int) and not isinstance(item, bool) for item in (*want, *got)):
            return None if tuple(want) == tuple(got) else ("shape_differs", f"{tuple(got)}, torch {tuple(want)}")
        for want_item, got_item in zip(want, got):
            difference = _difference(want_item, got_item)
            if difference:
                return difference
        return None
    if isinstance(want, float) and isinstance(got, (int, float)):
        return None if math.isclose(want, got, rel_tol=1e-6) or (math.isnan(want) and math.isnan(got)) else \
            ("values_differ", f"{got!r}, torch {want!r}")
    if isinstance(want, str) and isinstance(got, str):
        # a tensor inside a repr names its dtype by the library's module (torch.float64, chainrule.float64):
        # the printing of dtypes is not this trial's subject
        return None if want == got.replace("chainrule.", "torch.") else ("values_differ", f"{got!r}, torch {want!r}")
    if want is None or isinstance(want, (bool, int, str)):
        return None if want == got and type(want) is type(got) else ("values_differ", f"{got!r}, torch {want!r}")
    return None if type(got).__name__ == type(want).__name__ else \
        ("values_differ", f"{type(got).__name__}, torch {type(want).__name__}")


def classify(results):
    (torch_exc, torch_value), (chainrule_exc, chainrule_value) = results
    record = {}
    if torch_exc is not None:
        record["torch"] = _describe(torch_exc)
    if chainrule_exc is not None:
        record["chainrule"] = _describe(chainrule_exc)
    if torch_exc is not None and chainrule_exc is not None:
        same = isinstance(chainrule_exc, builtin_class(torch_exc))
        return {**record, "kind": "same" if same else "error_class_differs"}
    if torch_exc is not None:
        return {**record, "kind": "torch_only_raised"}
    if chainrule_exc is not None:
        lacking = isinstance(chainrule_exc, (AttributeError, NotImplementedError))
        return {**record, "kind": "missing" if lacking else "chainrule_only_raised"}
    try:
        difference = _difference(torch_value, chainrule_value)
    except Exception as exc:  # an odd answer: recorded, not fatal
        difference = ("values_differ", f"comparing raised {_describe(exc)}")
    if difference is None:
        return {**record, "kind": "same"}
    return {**record, "kind": difference[0], "difference": difference[1]}


# ----------------------------------------------------------------------------------------------
# running
# ----------------------------------------------------------------------------------------------

def _work(out, section, pattern, start):
    import torch

    import chainrule  # noqa: F401

    torch.set_default_dtype(torch.float32)
    cases = all_cases(section, pattern)
    with open(os.path.join(out, "cases.jsonl"), "a") as records:
        for number, case in enumerate(cases):
            if number < start:
                continue
            with open(os.path.join(out, "progress"), "w") as handle:
                handle.write(str(number))
            head = {key: case[key] for key in ("section", "family", "name", "probe")}
            try:
                results = RUNNERS[case["section"]](case)
            except Exception as exc:  # the trial's own preparation failed on torch: not comparable
                results = None
                head["reason"] = f"preparing raised {_describe(exc)}"
            if results is None:
                continue
            records.write(json.dumps({**head, **classify(results)}) + "\n")
            records.flush()


def run(out, section="all", pattern=None):
    import subprocess

    os.makedirs(out, exist_ok=True)
    for name in ("cases.jsonl", "progress"):
        if os.path.exists(os.path.join(out, name)):
            os.remove(os.path.join(out, name))
    start, crashes = 0, []
    while True:
        command = [sys.executable, os.path.abspath(__file__), "work", "--out", out, "--section", section,
                   "--start", str(start)] + (["--filter", pattern] if pattern else [])
        finished = subprocess.run(command)
        if finished.returncode == 0:
            break
        with open(os.path.join(out, "progress")) as handle:
            number = int(handle.read())
        crashes.append({"section": "crash", "family": "", "name": f"case {number}", "probe": "",
                        "kind": "chainrule_only_raised", "chainrule": f"the process ended ({finished.returncode})"})
        start = number + 1
    with open(os.path.join(out, "cases.jsonl")) as handle:
        records = [json.loads(line) for line in handle] + crashes
    with open(os.path.join(out, "cases.json"), "w") as handle:
        json.dump(records, handle, indent=1)
    print(count_table(records))
    print()
    print(family_table(records))
    return records


def _table(records, key) -> str:
    groups = collections.defaultdict(collections.Counter)
    for record in records:
        groups[record[key]][record["kind"]] += 1
    lines = [f"| {key} | " + " | ".join(KINDS) + " | all |", "|---" * (len(KINDS) + 2) + "|"]
    for name, counts in sorted(groups.items()):
        lines.append(f"| {name} | " + " | ".join(str(counts[kind]) for kind in KINDS) + f" | {sum(counts.values())} |")
    total = collections.Counter(record["kind"] for record in records)
    lines.append("| all | " + " | ".join(str(total[kind]) for kind in KINDS) + f" | {len(records)} |")
    return "\n".join(lines)


def count_table(records) -> str:
    return _table(records, "section")


def family_table(records) -> str:
    """Per family, the families with a case that is not ``same``."""
    family_records = [record for record in records if record["section"] == "family"]
    differing = {record["family"] for record in family_records if record["kind"] != "same"}
    return _table([record for record in family_records if record["family"] in differing], "family")


def show(out, kind, pattern=None):
    with open(os.path.join(out, "cases.json")) as handle:
        records = json.load(handle)
    for record in records:
        if record["kind"] == kind and (not pattern or re.search(pattern, json.dumps(record))):
            print(json.dumps(record))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for command in ("run", "work"):
        sub = commands.add_parser(command)
        sub.add_argument("--out", required=True)
        sub.add_argument("--section", choices=("all", *SECTIONS), default="all")
        sub.add_argument("--filter", help="regular expression searched in the case's name")
        if command == "work":
            sub.add_argument("--start", type=int, default=0)
    show_parser = commands.add_parser("show")
    show_parser.add_argument("--out", required=True)
    show_parser.add_argument("--kind", required=True, choices=KINDS)
    show_parser.add_argument("--filter", help="regular expression searched in the record")
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.out, args.section, args.filter)
    elif args.command == "work":
        _work(args.out, args.section, args.filter, args.start)
    else:
        show(args.out, args.kind, args.filter)


if __name__ == "__main__":
    main()
