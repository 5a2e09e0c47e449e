"""Cases of the distributions fuzzer (tests/fuzz/test_distributions.py): drawn from a family and a seed,
run on torch.distributions and chainrule.distributions, compared.

A case names a distribution class and its parameters (library-free specs: a kind, a shape, a dtype, edge or
invalid values, a Python number instead of a tensor; the values themselves come from the case's seed),
``validate_args`` (True, False, None) and a list of calls: ``log_prob``/``cdf`` of in-support values (drawn
by torch's own sampler, then shared) and out-of-support ones (perturbed) of broadcasting shapes, ``icdf`` of
probabilities, ``entropy``, the moments, ``batch_shape``/``event_shape``/``has_rsample``/``support``,
``expand``, ``sample``/``rsample`` under one manual seed (chainrule's generator draws torch's numbers for
every sampler here), ``enumerate_support``, and gradients of ``log_prob``/``rsample``/``entropy`` w.r.t. the
parameters. The ``kl`` family builds two distributions and calls ``kl_divergence`` (and its gradient).

``run_case`` returns, per call, a library-free outcome: a tensor's dtype, shape and values, a plain value,
or an error's builtin class and key phrase (``error_key``: the parameter and constraint of torch's invalid
parameter ValueError, the support of its out-of-support one, else the message's words). ``first_difference``
names the first call whose outcomes differ (values within a tolerance of the dtype).
"""

from __future__ import annotations

import math
import random
import re
import warnings
from dataclasses import dataclass

import numpy as np

FAMILIES = ("continuous", "discrete", "multivariate", "composite", "kl")

CONTINUOUS = ("Normal", "Uniform", "Exponential", "Laplace", "Cauchy", "Gumbel", "LogNormal", "HalfNormal",
              "HalfCauchy", "Gamma", "Beta", "Chi2", "StudentT", "VonMises", "ContinuousBernoulli", "Kumaraswamy",
              "Weibull", "Pareto", "InverseGamma", "FisherSnedecor", "GeneralizedPareto", "RelaxedBernoulli")
DISCRETE = ("Bernoulli", "Categorical", "OneHotCategorical", "Poisson", "Binomial", "Geometric",
            "NegativeBinomial", "Multinomial")
MULTIVARIATE = ("Dirichlet", "MultivariateNormal", "LowRankMultivariateNormal", "RelaxedOneHotCategorical",
                "LogisticNormal")
COMPOSITE = ("Independent", "MixtureSameFamily", "TransformedDistribution")

# each class's parameters: (name, kind); alternatives (probs | logits, the MVN's three matrices) are drawn
PARAMS = {
    "Normal": (("loc", "real"), ("scale", "pos")),
    "Uniform": (("low", "real"), ("high", "above_low")),
    "Exponential": (("rate", "pos"),),
    "Laplace": (("loc", "real"), ("scale", "pos")),
    "Cauchy": (("loc", "real"), ("scale", "pos")),
    "Gumbel": (("loc", "real"), ("scale", "pos")),
    "LogNormal": (("loc", "real"), ("scale", "pos")),
    "HalfNormal": (("scale", "pos"),),
    "HalfCauchy": (("scale", "pos"),),
    "Gamma": (("concentration", "pos"), ("rate", "pos")),
    "Beta": (("concentration1", "pos"), ("concentration0", "pos")),
    "Chi2": (("df", "pos"),),
    "StudentT": (("df", "pos"), ("loc", "real"), ("scale", "pos")),
    "VonMises": (("loc", "real"), ("concentration", "pos")),
    "ContinuousBernoulli": (("probs|logits", "prob"),),
    "Kumaraswamy": (("concentration1", "pos"), ("concentration0", "pos")),
    "Weibull": (("scale", "pos"), ("concentration", "pos")),
    "Pareto": (("scale", "pos"), ("alpha", "pos")),
    "InverseGamma": (("concentration", "pos"), ("rate", "pos")),
    "FisherSnedecor": (("df1", "pos"), ("df2", "pos")),
    "GeneralizedPareto": (("loc", "real"), ("scale", "pos"), ("concentration", "real")),
    "RelaxedBernoulli": (("temperature", "temp"), ("probs|logits", "prob")),
    "Bernoulli": (("probs|logits", "prob"),),
    "Categorical": (("probs|logits", "simplex"),),
    "OneHotCategorical": (("probs|logits", "simplex"),),
    "Poisson": (("rate", "pos"),),
    "Binomial": (("total_count", "count"), ("probs|logits", "prob")),
    "Geometric": (("probs|logits", "prob"),),
    "NegativeBinomial": (("total_count", "pos"), ("probs|logits", "prob")),
    "Multinomial": (("total_count", "int"), ("probs|logits", "simplex")),
    "Dirichlet": (("concentration", "vector_pos"),),
    "MultivariateNormal": (("loc", "vector"), ("covariance_matrix|precision_matrix|scale_tril", "matrix")),
    "LowRankMultivariateNormal": (("loc", "vector"), ("cov_factor", "factor"), ("cov_diag", "vector_pos")),
    "RelaxedOneHotCategorical": (("temperature", "temp"), ("probs|logits", "simplex")),
    "LogisticNormal": (("loc", "vector"), ("scale", "vector_pos")),
}
# parameters that must be one number (a 0-d tensor or a Python number)
SCALAR_KINDS = ("temp", "int")
BATCHES = ((), (1,), (3,), (2, 3), (2, 1), (1, 3), (4,), (2, 2, 2))
EVENT_SIZES = (1, 2, 3)
TRANSFORMS = ("exp", "affine", "sigmoid", "tanh", "softplus", "power", "abs")
KL_PAIRS = (("Normal", "Normal"), ("Bernoulli", "Bernoulli"), ("Beta", "Beta"), ("Gamma", "Gamma"),
            ("Exponential", "Exponential"), ("Laplace", "Laplace"), ("Uniform", "Uniform"), ("Poisson", "Poisson"),
            ("Categorical", "Categorical"), ("OneHotCategorical", "OneHotCategorical"), ("Dirichlet", "Dirichlet"),
            ("Geometric", "Geometric"), ("Gumbel", "Gumbel"), ("Pareto", "Pareto"), ("Binomial", "Binomial"),
            ("MultivariateNormal", "MultivariateNormal"), ("ContinuousBernoulli", "ContinuousBernoulli"),
            ("LowRankMultivariateNormal", "MultivariateNormal"), ("Uniform", "Normal"), ("Normal", "Gumbel"),
            ("Exponential", "Gamma"), ("Beta", "Normal"), ("Gamma", "Normal"), ("Laplace", "Normal"),
            ("Uniform", "Gumbel"), ("Cauchy", "Cauchy"), ("HalfNormal", "HalfNormal"), ("Normal", "Laplace"),
            ("Kumaraswamy", "Beta"), ("LogNormal", "LogNormal"), ("Uniform", "Beta"), ("Exponential", "Normal"),
            ("Independent", "Independent"), ("Gamma", "Exponential"), ("Beta", "Uniform"), ("VonMises", "VonMises"))


@dataclass(frozen=True)
class Param:
    name: str  # the keyword of the class's constructor
    kind: str  # how its values are drawn (see ``_values``)
    shape: tuple
    number: bool  # passed as a Python number, not a tensor
    edge: bool  # values near the support's boundary
    invalid: bool  # one value outside the constraint


@dataclass(frozen=True)
class Dist:
    cls: str
    params: tuple  # of Param
    options: tuple = ()  # composite: ("base", Dist) / ("ndims", k) / ("transforms", names), ...


@dataclass(frozen=True)
class Case:
    family: str
    seed: int
    dtype: str
    validate_args: bool | None
    dist: Dist
    calls: tuple
    other: Dist | None = None  # kl: the second distribution


# ------------------------------------------------------------------------------------------------ drawing
def _broadcastable(rng: random.Random, batch: tuple) -> tuple:
    """``batch`` or a shape that broadcasts to it (leading dims dropped, dims set to 1)."""
    roll = rng.random()
    if roll < 0.55 or not batch:
        return batch
    if roll < 0.75:
        return batch[rng.randrange(1, len(batch) + 1):]
    return tuple(1 if rng.random() < 0.5 else size for size in batch)


def _params(rng: random.Random, cls: str, batch: tuple, allow_invalid: bool, event: int) -> tuple:
    params = []
    # one parameter carries the full batch shape, so the distribution's batch shape is ``batch``
    full = rng.randrange(len(PARAMS[cls]))
    for index, (name, kind) in enumerate(PARAMS[cls]):
        if "|" in name:
            name = rng.choice(name.split("|"))
        if "logits" == name:
            kind = "logit" if kind == "prob" else "simplex_logit"
        shape = batch if index == full else _broadcastable(rng, batch)
        if kind in SCALAR_KINDS:
            shape = ()
        elif kind in ("simplex", "simplex_logit", "vector", "vector_pos"):
            shape = shape + (event,)
        elif kind == "matrix":
            shape = shape + (event, event)
        elif kind == "factor":
            shape = shape + (event, rng.choice((1, 2)))
        number = shape == () and kind not in ("matrix",) and rng.random() < (0.6 if kind in SCALAR_KINDS else 0.15)
        # torch's VonMises sampler loops for ever on a concentration <= 0 (unvalidated): no such case
        invalid = allow_invalid and cls != "VonMises" and rng.random() < 0.08
        params.append(Param(name, kind, shape, number, rng.random() < 0.15, invalid))
    return tuple(params)


def _dist(rng: random.Random, cls: str, batch: tuple, allow_invalid: bool, depth: int = 0) -> Dist:
    event = rng.choice(EVENT_SIZES)
    if cls == "Independent":
        base_batch = batch + rng.choice(((), (2,), (3, 2)))
        base = _dist(rng, rng.choice(("Normal", "Bernoulli", "Beta", "Laplace", "MultivariateNormal")),
                     base_batch, allow_invalid, depth + 1)
        return Dist(cls, (), (("base", base), ("ndims", rng.randrange(0, len(base_batch) - len(batch) + 1))))
    if cls == "MixtureSameFamily":
        components = rng.choice((1, 2, 3))
        mixture = _dist(rng, "Categorical", batch, allow_invalid, depth + 1)
        mixture = Dist("Categorical", tuple(Param(p.name, p.kind, p.shape[:-1] + (components,), p.number, p.edge,
                                                  p.invalid) for p in mixture.params))
        component = rng.choice(("Normal", "Gamma", "Independent", "MultivariateNormal", "Laplace"))
        return Dist(cls, (), (("mixture", mixture),
                              ("component", _dist(rng, component, batch + (components,), allow_invalid, depth + 1))))
    if cls == "TransformedDistribution":
        base = _dist(rng, rng.choice(("Normal", "Uniform", "Exponential", "Gamma")), batch, allow_invalid, depth + 1)
        chain = tuple((rng.choice(TRANSFORMS), round(rng.uniform(-2, 2), 2), round(rng.uniform(0.2, 2), 2))
                      for _ in range(rng.randrange(1, 4)))
        return Dist(cls, (), (("base", base), ("transforms", chain)))
    return Dist(cls, _params(rng, cls, batch, allow_invalid, event))


def _value_calls(rng: random.Random, discrete: bool) -> list:
    calls = []
    for _ in range(rng.randrange(1, 4)):
        method = rng.choice(("log_prob", "log_prob", "cdf") if not discrete else ("log_prob",))
        # how the value's shape relates to sample_shape + batch_shape + event_shape
        layout = rng.choice(("full", "full", "sample", "ones", "trailing", "scalar"))
        calls.append((method, rng.choice(("in", "in", "in", "out")), layout, rng.randrange(1 << 16)))
    return calls


def draw_case(family: str, seed: int) -> Case:
    rng = random.Random(f"distributions:{family}:{seed}")
    dtype = rng.choice(("float32", "float32", "float64"))
    validate = rng.choice((True, False, None))
    batch = rng.choice(BATCHES)
    if family == "kl":
        first, second = rng.choice(KL_PAIRS)
        # one batch shape, broadcast between the two
        p = _dist(rng, first, batch, False)
        q = _dist(rng, second, _broadcastable(rng, batch), False)
        if first in ("MultivariateNormal", "LowRankMultivariateNormal", "Dirichlet", "Categorical",
                     "OneHotCategorical") or second == "MultivariateNormal":
            p, q = _same_event(p, q)
        calls = [("kl",), ("kl_grad", rng.randrange(1 << 16))]
        return Case(family, seed, dtype, validate, p, tuple(calls), q)
    pool = {"continuous": CONTINUOUS, "discrete": DISCRETE, "multivariate": MULTIVARIATE,
            "composite": COMPOSITE}[family]
    dist = _dist(rng, rng.choice(pool), batch, True)
    discrete = family == "discrete"
    calls = [("shapes",)] + _value_calls(rng, discrete)
    calls += [(name,) for name in rng.sample(("mean", "mode", "variance", "stddev", "entropy"), rng.randrange(1, 4))]
    if not discrete and rng.random() < 0.4:
        calls.append(("icdf", rng.choice(("full", "ones", "scalar")), rng.random() < 0.2, rng.randrange(1 << 16)))
    if rng.random() < 0.5:
        calls.append(("expand", rng.choice(((2,), (3,), (2, 1)))))
    sample_shape = rng.choice(((), (2,), (3, 1), (5,), (20,)))
    calls.append((rng.choice(("sample", "rsample")), sample_shape, rng.randrange(1 << 16)))
    if rng.random() < (0.5 if discrete else 0.2):
        calls.append(("enumerate_support", rng.random() < 0.5))
    calls.append(("grad", rng.choice(("log_prob", "rsample", "entropy", "mean")), rng.randrange(1 << 16)))
    return Case(family, seed, dtype, validate, dist, tuple(calls))


def _same_event(p: Dist, q: Dist) -> tuple:
    """``p`` and ``q`` with ``p``'s event size (KL of vector distributions needs one)."""
    def event_of(dist: Dist):
        for param in dist.params:
            if param.kind in ("simplex", "simplex_logit", "vector", "vector_pos"):
                return param.shape[-1]
        return None

    size = event_of(p)

    def resized(dist: Dist) -> Dist:
        params = []
        for param in dist.params:
            shape = param.shape
            if param.kind in ("simplex", "simplex_logit", "vector", "vector_pos", "factor"):
                shape = shape[:-1] + (size,) if param.kind != "factor" else shape[:-2] + (size, shape[-1])
            elif param.kind == "matrix":
                shape = shape[:-2] + (size, size)
            params.append(Param(param.name, param.kind, shape, param.number, param.edge, param.invalid))
        return Dist(dist.cls, tuple(params), dist.options)

    return p, resized(q) if size is not None else q


# ------------------------------------------------------------------------------------------------ building
def _values(param: Param, rng: np.random.Generator) -> np.ndarray | float:
    shape, kind = param.shape, param.kind
    if kind in ("real", "logit", "vector", "factor", "above_low"):
        values = rng.normal(0, 3 if kind == "logit" else 1.5, shape)
        if kind == "above_low":  # Uniform's high: above low's values (normal, scale 1.5) but for a rare one
            values = 4.5 + np.exp(rng.normal(0, 0.5, shape))
        edges = (30.0, -30.0, 1e4) if kind == "logit" else (1e3, -1e3, 0.0)
        invalid = math.nan
    elif kind in ("pos", "vector_pos", "temp"):
        values = np.exp(rng.normal(0, 0.7, shape))
        edges, invalid = (1e-4, 1e3, 1e-30), rng.choice((0.0, -1.0))
    elif kind == "prob":
        values = rng.uniform(0.05, 0.95, shape)
        edges, invalid = (1e-6, 1 - 1e-6, 0.0, 1.0), rng.choice((1.5, -0.1))
    elif kind == "simplex":
        values = rng.dirichlet(np.ones(shape[-1]), shape[:-1]) if shape[-1] else np.zeros(shape)
        edges, invalid = (0.0,), -0.2
    elif kind == "simplex_logit":
        values = rng.normal(0, 2, shape)
        edges, invalid = (-50.0, 50.0, -math.inf), math.nan
    elif kind == "count":
        values = rng.integers(0, 8, shape).astype(float)
        edges, invalid = (0.0, 50.0), rng.choice((-1.0, 2.5))
    elif kind == "int":
        return int(rng.integers(1, 6)) if not param.invalid else -1
    elif kind == "matrix":
        size = shape[-1]
        a = rng.normal(0, 1, shape)
        if param.name == "scale_tril":
            values = np.tril(a, -1) + np.eye(size) * np.exp(rng.normal(0, 0.5, shape[:-1]))[..., None]
            edges, invalid = (), None
        else:
            values = a @ np.swapaxes(a, -1, -2) + size * np.eye(size)
            edges, invalid = (), None
        if param.invalid:
            return values - 3 * size * np.eye(size) if param.name != "scale_tril" else -values
        return values
    else:
        raise ValueError(kind)
    values = np.asarray(values, dtype=float)
    if param.edge and values.size and edges:
        flat = values.reshape(-1).copy()
        for index in rng.choice(flat.size, size=max(1, flat.size // 3), replace=False):
            flat[index] = edges[rng.integers(len(edges))]
        values = flat.reshape(values.shape)
        if kind == "simplex":
            values = values / np.maximum(values.sum(-1, keepdims=True), 1e-12)
    if param.invalid and values.size:
        flat = values.reshape(-1).copy()
        flat[rng.integers(flat.size)] = invalid
        values = flat.reshape(values.shape)
    if param.number:
        return float(values.reshape(-1)[0]) if values.size else 0.0
    return values


def _param_seed(case_seed: int, name: str, index: int) -> int:
    return (case_seed * 7919 + index * 104729 + sum(map(ord, name))) % (1 << 32)


class Builder:
    """Builds a case's distributions in one library: ``leaves`` holds the tensors that require grad."""

    def __init__(self, lib, case: Case, grad: bool):
        self.lib, self.case, self.grad = lib, case, grad
        self.dtype = getattr(lib, case.dtype)
        self.leaves: list = []
        self.counter = 0

    def tensor(self, values):
        t = self.lib.tensor(np.asarray(values), dtype=self.dtype)
        if self.grad:
            t.requires_grad_(True)
            self.leaves.append(t)
        return t

    def params(self, dist: Dist) -> dict:
        kwargs = {}
        for param in dist.params:
            self.counter += 1
            seed = _param_seed(self.case.seed, param.name, self.counter)
            values = _values(param, np.random.default_rng(seed))
            if param.kind == "int" or param.number:
                kwargs[param.name] = values
            else:
                kwargs[param.name] = self.tensor(values)
        return kwargs

    def build(self, dist: Dist):
        d = self.lib.distributions
        options = dict(dist.options)
        validate = self.case.validate_args
        if dist.cls == "Independent":
            return d.Independent(self.build(options["base"]), options["ndims"], validate_args=validate)
        if dist.cls == "MixtureSameFamily":
            return d.MixtureSameFamily(self.build(options["mixture"]), self.build(options["component"]),
                                       validate_args=validate)
        if dist.cls == "TransformedDistribution":
            return d.TransformedDistribution(self.build(options["base"]), self.transforms(options["transforms"]),
                                             validate_args=validate)
        return getattr(d, dist.cls)(**self.params(dist), validate_args=validate)

    def transforms(self, chain: tuple) -> list:
        t = self.lib.distributions.transforms
        made = []
        for name, a, b in chain:
            if name == "exp":
                made.append(t.ExpTransform())
            elif name == "affine":
                made.append(t.AffineTransform(self.tensor(a), self.tensor(b)))
            elif name == "sigmoid":
                made.append(t.SigmoidTransform())
            elif name == "tanh":
                made.append(t.TanhTransform(cache_size=1))
            elif name == "softplus":
                made.append(t.SoftplusTransform())
            elif name == "power":
                made.append(t.PowerTransform(self.tensor(b)))
            else:
                made.append(t.AbsTransform())
        return made


# ------------------------------------------------------------------------------------------------ running
def error_key(error: BaseException) -> str:
    """The phrase of an error's message that chainrule's must share with torch's: the parameter and constraint
    of an invalid parameter, the support of an out-of-support value, else the message's words (chainrule's may
    add the call it was raised in, as its constructors do)."""
    text = str(error).replace("chainrule", "torch")
    first = (text.splitlines() or [""])[0]
    found = re.search(r"Expected parameter (\w+) .* to satisfy the constraint (.*), but found invalid values", first)
    if found:
        return f"parameter {found.group(1)} must satisfy {found.group(2)}"
    found = re.search(r"Expected value argument .* to be within the support \((.*)\) of the distribution", first)
    if found:
        return f"value must be within {found.group(1)}"
    words = re.sub(r"<class '[\w.]*?(\w+)'>", r"\1", text)
    words = re.sub(r"tensor\(.*?\)|torch\.Size\(\[.*?\]\)|\[[^\]]*\]|\([^)]*\)|[-+.\deE]+\b", " ", words)
    return " ".join(words.split())


def _same_key(mine: str, theirs: str) -> bool:
    """Whether chainrule's key phrase says torch's: the same phrase, or the first words of torch's message of
    no known form among chainrule's (none when torch's message is empty)."""
    return mine == theirs or not theirs.startswith(("parameter ", "value must")) and set(
        theirs.split()[:8]) <= set(mine.split())


def _builtin(error: BaseException) -> type:
    for cls in type(error).__mro__:
        if cls.__module__ == "builtins":
            return cls
    return Exception


def _outcome(value, lib):
    if isinstance(value, lib.Tensor):
        data = value.detach()
        return ("tensor", str(value.dtype).split(".")[-1], tuple(value.shape),
                np.asarray(data.double().numpy() if data.dtype != lib.bool else data.numpy(), dtype=float))
    if isinstance(value, (tuple, list)) and all(isinstance(v, int) for v in value):
        return ("shape", tuple(value))
    return ("value", repr(value).replace("chainrule", "torch"))


def _value(torch_dist, seed: int, where: str, layout: str):
    """A value (numpy) for ``log_prob``/``cdf`` of ``torch_dist``: drawn by torch's sampler (in-support) or
    perturbed out of it, of a shape that broadcasts as ``layout`` says."""
    import torch

    rng = np.random.default_rng(seed)
    batch, event = tuple(torch_dist.batch_shape), tuple(torch_dist.event_shape)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        extra = (2,) if layout == "sample" else ()
        values = torch_dist.sample(extra).detach().double().numpy()
    if layout == "ones" and batch:
        values = values[tuple(slice(0, 1) for _ in batch)]
    elif layout == "trailing" and batch:
        values = values[(0,) * rng.integers(1, len(batch) + 1)]
    elif layout == "scalar" and not event:
        values = values.reshape(-1)[:1].reshape(())
    if where == "out" and values.size:
        flat = values.reshape(-1).copy()
        flat[rng.integers(flat.size)] = rng.choice((-1.5, 2.5, 1e6, -1e6, 0.5, math.nan))
        values = flat.reshape(values.shape)
    return values


def _call(call: tuple, dist, lib, case: Case, builder_of):
    """One call's result (a tensor, a shape, a value), or raises."""
    torch = __import__("torch")
    name = call[0]
    if name == "shapes":
        return (tuple(dist.batch_shape), tuple(dist.event_shape), dist.has_rsample, dist.has_enumerate_support,
                type(dist.support).__name__)
    if name in ("log_prob", "cdf"):
        values = _value(builder_of(torch).build(case.dist), call[3], call[1], call[2])
        return getattr(dist, name)(lib.tensor(values, dtype=getattr(lib, case.dtype)))
    if name == "icdf":
        rng = np.random.default_rng(call[3])
        shape = {"full": tuple(dist.batch_shape), "ones": (1,) * len(dist.batch_shape), "scalar": ()}[call[1]]
        values = rng.uniform(0, 1, shape)
        if call[2] and values.size:
            values.reshape(-1)[0] = rng.choice((0.0, 1.0, 1.5))
        return dist.icdf(lib.tensor(values, dtype=getattr(lib, case.dtype)))
    if name in ("mean", "mode", "variance", "stddev"):
        return getattr(dist, name)
    if name == "entropy":
        return dist.entropy()
    if name == "expand":
        expanded = dist.expand(call[1] + tuple(dist.batch_shape))
        return (tuple(expanded.batch_shape), expanded.mean if not isinstance(expanded, lib.distributions.Categorical)
                else expanded.probs)
    if name in ("sample", "rsample"):
        lib.manual_seed(call[2])
        return getattr(dist, name)(call[1])
    if name == "enumerate_support":
        return dist.enumerate_support(call[1])
    raise ValueError(name)


def _grad(call: tuple, lib, case: Case):
    """The gradients of a weighted sum of one method's result w.r.t. every parameter."""
    builder = Builder(lib, case, grad=True)
    dist = builder.build(case.dist)
    if call[0] == "kl_grad":
        out = lib.distributions.kl_divergence(dist, builder.build(case.other))
    elif call[1] == "log_prob":
        torch_dist = Builder(__import__("torch"), case, grad=False).build(case.dist)
        values = _value(torch_dist, call[2], "in", "full")
        out = dist.log_prob(lib.tensor(values, dtype=getattr(lib, case.dtype)))
    elif call[1] == "rsample":
        lib.manual_seed(call[2])
        out = dist.rsample((2,))
    elif call[1] == "entropy":
        out = dist.entropy()
    else:
        out = dist.mean
    weights = np.random.default_rng(call[-1]).normal(0, 1, tuple(out.shape))
    total = (out * lib.tensor(weights, dtype=out.dtype)).sum()
    leaves = [leaf for leaf in builder.leaves]
    if not total.requires_grad:
        return ("no graph", len(leaves))
    grads = lib.autograd.grad(total, leaves, allow_unused=True)
    return ("grads", tuple(_outcome(g, lib) if g is not None else ("none",) for g in grads))


def run_case(case: Case, torch, chainrule) -> dict:
    """Each library's outcome of each call: ``{library: [(label, outcome), ...]}`` (``build`` first)."""
    results = {}
    for label, lib in (("torch", torch), ("chainrule", chainrule)):
        outcomes = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                dist = Builder(lib, case, grad=False).build(case.dist)
                other = Builder(lib, case, grad=False).build(case.other) if case.other else None
                outcomes.append(("build", ("ok",)))
            except Exception as error:
                outcomes.append(("build", ("error", _builtin(error).__name__, error_key(error), str(error)[:300])))
                results[label] = outcomes
                continue
            for call in case.calls:
                try:
                    if call[0] == "kl":
                        result = lib.distributions.kl_divergence(dist, other)
                    elif call[0] in ("grad", "kl_grad"):
                        result = _grad(call, lib, case)
                    else:
                        result = _call(call, dist, lib, case, lambda library: Builder(library, case, grad=False))
                    if call[0] in ("grad", "kl_grad"):
                        outcome = result
                    elif isinstance(result, tuple) and call[0] != "shapes":
                        outcome = tuple(_outcome(part, lib) for part in result)
                    else:
                        outcome = _outcome(result, lib)
                except Exception as error:
                    outcome = ("error", _builtin(error).__name__, error_key(error), str(error)[:300])
                outcomes.append((repr(call), outcome))
        results[label] = outcomes
    return results


# relative to max(|torch's value|, 1): float64 gradients of log_prob lose digits to cancellation near the edges
TOLERANCE = {"float32": (2e-4, 2e-5), "float64": (1e-7, 1e-9)}


def _differ(mine, theirs) -> str | None:
    if not mine or not theirs:
        return None if mine == theirs else f"{mine} vs torch {theirs}"
    if mine[0] == "tensor" and theirs[0] == "tensor":
        if mine[1:3] != theirs[1:3]:
            return f"dtype/shape {mine[1:3]} vs torch {theirs[1:3]}"
        rtol, atol = TOLERANCE["float64" if theirs[1] == "float64" else "float32"]
        a, b = mine[3], theirs[3]
        if a.shape != b.shape:
            return f"values of shape {a.shape} vs torch {b.shape}"
        if np.array_equal(a, b, equal_nan=True):
            return None
        scale = np.maximum(np.abs(b), 1.0) if theirs[1] in ("float32", "float64") else 1.0
        with np.errstate(invalid="ignore"):
            close = np.isclose(a / scale, b / scale, rtol=rtol, atol=atol, equal_nan=True) | (a == b)
        if not close.all():
            where = np.argwhere(~close)
            at = tuple(where[0]) if len(where) else ()
            return f"values at {at}: {a[at] if a.ndim else a} vs torch {b[at] if b.ndim else b}"
        return None
    if mine[0] == "error" and theirs[0] == "error":
        if mine[1] != theirs[1] or not _same_key(mine[2], theirs[2]):
            return f"{mine[1]} ({mine[3][:160]}) vs torch {theirs[1]} ({theirs[3][:160]})"
        return None
    if mine[0] == "error" or theirs[0] == "error":
        shown = lambda o: f"{o[1]} ({o[3][:200]})" if o[0] == "error" else "a result"  # noqa: E731
        return f"{shown(mine)} vs torch {shown(theirs)}"
    if mine[0] == "grads" and theirs[0] == "grads":
        mine, theirs = mine[1], theirs[1]
    if isinstance(mine[0], tuple) and isinstance(theirs[0], tuple):
        if len(mine) != len(theirs):
            return f"{len(mine)} parts vs torch {len(theirs)}"
        for index, (a, b) in enumerate(zip(mine, theirs)):
            problem = _differ(a, b)
            if problem:
                return f"[{index}] {problem}"
        return None
    if mine != theirs:
        return f"{str(mine)[:200]} vs torch {str(theirs)[:200]}"
    return None


def first_difference(case: Case, results: dict) -> str | None:
    """The first call whose outcome differs between the libraries, or None."""
    mine, theirs = results["chainrule"], results["torch"]
    for (label, a), (_, b) in zip(mine, theirs):
        problem = _differ(a, b)
        if problem:
            return f"{label}: {problem}"
    if len(mine) != len(theirs):
        return f"{len(mine)} outcomes vs torch {len(theirs)}"
    return None
