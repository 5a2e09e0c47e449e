"""Differential fuzzing of hostile arguments of chainrule.utils.data (DataLoader, datasets, samplers)
and chainrule.distributions against torch.

* DataLoader: each argument hostile (batch_size 0/-1/None/2.5/'2', batch_size with a batch_sampler,
  a sampler together with shuffle, drop_last, num_workers -1, timeout -1, ragged samples to the
  default collate, prefetch_factor without workers...); where both accept it the batches must agree
  (a sequential order; shuffled orders are compared by their sizes only);
* Subset, random_split (lengths that do not sum to the size, fractions summing to other than 1,
  negative lengths), TensorDataset of mismatched sizes, WeightedRandomSampler (negative, NaN, empty
  weights, num_samples 0, replacement=False with too many samples), BatchSampler, RandomSampler,
  SubsetRandomSampler;
* every distribution of chainrule.distributions that torch has, each parameter hostile (negative,
  zero, NaN, inf scales and rates; probabilities outside [0, 1]; both probs and logits; neither),
  with validate_args on and off, then ``log_prob`` of values inside and outside the support and
  the shape of a sample.

What "the same" means: _ctorfuzz.py. Budget: ``CASES`` per test in CI, every case under
``CHAINRULE_LONG_TESTS=1``.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import chainrule

from ._ctorfuzz import (
    INF,
    NAN,
    Lib,
    assert_no_new_mismatches,
    build,
    hostile_for,
    mismatches,
    outcome_mismatch,
    sample,
)

torch = pytest.importorskip("torch")

CASES = 400

# ---------------------------------------------------------------- DataLoader and friends
X = np.arange(20.0).reshape(10, 2)
Y = np.arange(10)

LOADER_HOSTILE = {
    "batch_size": [0, -1, None, 2.5, "2", True, 11, Lib("tensor", 3)],
    "shuffle": [None, "yes", 2],
    "sampler": ["sequential", "random", [0, 1, 2], [0, 11], "foo"],
    "batch_sampler": ["batches", [[0, 1], [2]], [[0, 11]], "foo"],
    "num_workers": [-1, 2.5, None, "0"],
    "collate_fn": ["identity", "foo"],
    "drop_last": [None, "yes", 1],
    "timeout": [-1, NAN, "5", None],
    "prefetch_factor": [2, 0, -1],
    "persistent_workers": [True, None],
    "pin_memory": [None, "yes"],
    "generator": ["foo", 3],
    "in_order": [False, None],
}
# combinations torch refuses or treats specially
LOADER_COMBOS = [
    {"batch_sampler": "batches", "batch_size": 3},
    {"batch_sampler": "batches", "shuffle": True},
    {"batch_sampler": "batches", "drop_last": True},
    {"batch_sampler": "batches", "sampler": "sequential"},
    {"batch_sampler": "batches", "batch_size": None},
    {"sampler": "sequential", "shuffle": True},
    {"batch_size": None, "drop_last": True},
    {"batch_size": None},
    {"batch_size": 3, "drop_last": True},
    {"batch_size": 4, "shuffle": True},
    {"dataset": "ragged"},
    {"dataset": "ragged", "batch_size": None},
    {"dataset": "dicts", "batch_size": 3},
    {"dataset": "strings", "batch_size": 3},
    {"dataset": "mixed_types", "batch_size": 2},
    {"dataset": "empty", "batch_size": 2},
    {"dataset": "list_of_ints", "batch_size": 3},
]


def _dataset(lib, how):
    data = lib.utils.data
    if how == "ragged":
        return [lib.ones(k + 1) for k in range(4)]
    if how == "dicts":
        return [{"x": lib.tensor([float(k)]), "y": k} for k in range(5)]
    if how == "strings":
        return [f"s{k}" for k in range(5)]
    if how == "mixed_types":
        return [lib.tensor([1.0]), lib.tensor([1])]
    if how == "empty":
        return data.TensorDataset(lib.zeros(0, 2))
    if how == "list_of_ints":
        return list(range(7))
    return data.TensorDataset(lib.tensor(X), lib.tensor(Y))


def _loader_argument(lib, name, value, dataset):
    data = lib.utils.data
    if name == "sampler" and isinstance(value, str) and value in ("sequential", "random"):
        return data.SequentialSampler(dataset) if value == "sequential" else data.RandomSampler(dataset)
    if name == "batch_sampler" and value == "batches":
        return data.BatchSampler(data.SequentialSampler(dataset), 3, False)
    if name == "collate_fn" and value == "identity":
        return lambda batch: batch
    return build(value, lib)


def _record_batches(record, batches, ordered: bool):
    if ordered:
        record["batches"] = [leaf for b in batches for leaf in _leaves(b)]
    else:
        record["batch_sizes"] = [len(next(iter(_leaves(b)), [])) for b in batches]


def _leaves(batch):
    if isinstance(batch, (list, tuple)):
        for b in batch:
            yield from _leaves(b)
    elif isinstance(batch, dict):
        for k in sorted(batch):
            yield from _leaves(batch[k])
    else:
        yield batch


def loader_cases() -> list:
    cases = [("DataLoader", {name: v}) for name, values in LOADER_HOSTILE.items() for v in values]
    return cases + [("DataLoader", combo) for combo in LOADER_COMBOS]


def _loader_body(spec):
    def body(lib, record):
        args = dict(spec)
        dataset = _dataset(lib, args.pop("dataset", "tensors"))
        kwargs = {k: _loader_argument(lib, k, v, dataset) for k, v in args.items()}
        loader = lib.utils.data.DataLoader(dataset, **kwargs)
        record["_stage"] = "used"
        record["len"] = _len(loader)
        random = bool(args.get("shuffle")) or args.get("sampler") == "random"
        _record_batches(record, list(loader), ordered=not random)
    return body


def _len(obj):
    try:
        return len(obj)
    except TypeError as e:  # no len(): compared as such, both must refuse it
        return f"TypeError: {type(e).__name__}"


# datasets, splits and samplers: (description, body) pairs
def _split_case(lengths):
    def body(lib, record):
        dataset = lib.utils.data.TensorDataset(lib.tensor(X))
        parts = lib.utils.data.random_split(dataset, build(lengths, lib), generator=lib.Generator().manual_seed(0))
        record["_stage"] = "used"
        record["sizes"] = [len(p) for p in parts]
    return f"random_split({lengths!r})", body, ["random_split", "lengths", "length", "sum", "fraction"]


def _sampler_case(cls, args):
    def body(lib, record):
        sampler = getattr(lib.utils.data, cls)(*build(args, lib))
        record["_stage"] = "used"
        drawn = list(sampler)
        record["len"] = _len(sampler)
        if cls == "BatchSampler":
            record["batches"] = [list(b) for b in drawn]
        else:
            record["count"] = len(drawn)
    return f"{cls}{args!r}", body, [cls, "weights", "num_samples", "batch_size", "drop_last", "replacement",
                                     "sampler", "indices"]


def _dataset_case(cls, build_args, index):
    def body(lib, record):
        dataset = getattr(lib.utils.data, cls)(*build_args(lib))
        record["_stage"] = "used"
        record["len"] = len(dataset)
        record["item"] = list(_leaves(dataset[index]))
    return f"{cls}(... )[{index}]", body, [cls, "size", "indices", "tensors", "datasets"]


def data_cases() -> list:
    cases = [(f"DataLoader({spec})", _loader_body(spec), ["DataLoader", *spec])
             for _, spec in loader_cases()]
    for lengths in ([5, 5], [3, 3], [6, 6], [-1, 11], [0.5, 0.5], [0.3, 0.3], [0.5, 0.6], [0.7, 0.3, 0.0],
                    [1.5, -0.5], [NAN, 1.0], [], [10], [2.5, 7.5], "55", None, [Lib("tensor", 5), 5]):
        cases.append(_split_case(lengths))
    for args in ([[1.0, 2.0, 3.0], 5], [[-1.0, 2.0], 5], [[NAN, 1.0], 5], [[0.0, 0.0], 5], [[], 5], [[1.0, 2.0], 0],
                 [[1.0, 2.0], -1], [[1.0, 2.0], 2.5], [[1.0, 2.0], 5, False], [[1.0, 2.0], 2, False],
                 [[INF, 1.0], 3], [[[1.0, 2.0]], 3], ["ab", 3], [[1.0, 2.0], True], [[1.0, 2.0], None]):
        cases.append(_sampler_case("WeightedRandomSampler", args))
    for args in ([range(5), 2, False], [range(5), 0, False], [range(5), -1, False], [range(5), 2.5, False],
                 [range(5), None, False], [range(5), 2, None], [range(5), 2, "no"], [range(5), True, False],
                 [range(5), "2", False], [range(5), 6, True]):
        cases.append(_sampler_case("BatchSampler", args))
    for args in ([range(5), True, 3], [range(5), False, 3], [range(5), False, 0], [range(5), True, -1],
                 [range(5), True, 2.5], [range(5), "no"], [range(5), None], [[], False], [range(5), False, None]):
        cases.append(_sampler_case("RandomSampler", args))
    for args in ([[0, 3, 3]], [[-1, 2]], [[]], [None], [3]):
        cases.append(_sampler_case("SubsetRandomSampler", args))
    for sizes in ((4, 4), (4, 3), (4, 0), (0, 0)):
        def tensors(lib, sizes=sizes):
            return [lib.zeros(sizes[0], 2), lib.zeros(sizes[1])]
        cases.append(_dataset_case("TensorDataset", tensors, 0))
    for indices, index in (([0, 2], 1), ([0, 20], 1), ([-1], 0), ([], 0), ([0, 2], 5), ([0.5], 0)):
        def subset(lib, indices=indices):
            return [lib.utils.data.TensorDataset(lib.tensor(X)), indices]
        cases.append(_dataset_case("Subset", subset, index))
    for lists, index in ((([1, 2], [3]), 2), (([1, 2], [3]), 3), (([1, 2], [3]), -1), (([1, 2], [3]), -4),
                         ((), 0)):
        def concat(lib, lists=lists):
            return [list(lists)]
        cases.append(_dataset_case("ConcatDataset", concat, index))
    return cases


ALL_DATA_CASES = data_cases()


@pytest.mark.parametrize("part", range(2))
def test_data_matches_torch(part):
    cases = sample(ALL_DATA_CASES, CASES, seed=3)[part::2]
    assert_no_new_mismatches(mismatches(cases, describe_data_case, run_data_case), len(cases))


def describe_data_case(case) -> str:
    return case[0]


def run_data_case(case, seed: int) -> str | None:
    _, body, names = case
    return outcome_mismatch(body, names)


# ---------------------------------------------------------------- distributions
# valid parameters per distribution (floats, lists of floats, or tensors by shape)
DIST_BASE = {
    "Bernoulli": {"probs": [0.3, 0.6]}, "Beta": {"concentration1": [1.5, 2.0], "concentration0": [2.0, 1.0]},
    "Binomial": {"total_count": 5, "probs": [0.3, 0.6]}, "Categorical": {"probs": [0.2, 0.3, 0.5]},
    "Cauchy": {"loc": [0.0, 1.0], "scale": [1.0, 2.0]}, "Chi2": {"df": [2.0, 3.0]},
    "ContinuousBernoulli": {"probs": [0.3, 0.6]}, "Dirichlet": {"concentration": [1.0, 2.0, 3.0]},
    "Exponential": {"rate": [1.0, 2.0]}, "FisherSnedecor": {"df1": [2.0, 3.0], "df2": [4.0, 5.0]},
    "Gamma": {"concentration": [2.0, 3.0], "rate": [1.0, 2.0]}, "Geometric": {"probs": [0.3, 0.6]},
    "Gumbel": {"loc": [0.0, 1.0], "scale": [1.0, 2.0]}, "HalfCauchy": {"scale": [1.0, 2.0]},
    "HalfNormal": {"scale": [1.0, 2.0]}, "InverseGamma": {"concentration": [2.0, 3.0], "rate": [1.0, 2.0]},
    "Kumaraswamy": {"concentration1": [1.5, 2.0], "concentration0": [2.0, 1.0]},
    "Laplace": {"loc": [0.0, 1.0], "scale": [1.0, 2.0]}, "LogNormal": {"loc": [0.0, 1.0], "scale": [1.0, 2.0]},
    "Multinomial": {"total_count": 4, "probs": [0.2, 0.3, 0.5]}, "NegativeBinomial": {"total_count": 3.0,
                                                                                    "probs": [0.3, 0.6]},
    "Normal": {"loc": [0.0, 1.0], "scale": [1.0, 2.0]}, "OneHotCategorical": {"probs": [0.2, 0.3, 0.5]},
    "Pareto": {"scale": [1.0, 2.0], "alpha": [2.0, 3.0]}, "Poisson": {"rate": [1.0, 2.0]},
    "StudentT": {"df": [3.0, 4.0]}, "Uniform": {"low": [0.0, 1.0], "high": [1.0, 3.0]},
    "VonMises": {"loc": [0.0, 1.0], "concentration": [1.0, 2.0]}, "Weibull": {"scale": [1.0, 2.0],
                                                                          "concentration": [1.5, 2.0]},
    "GeneralizedPareto": {"loc": [0.0, 1.0], "scale": [1.0, 2.0], "concentration": [0.1, 0.2]},
}
DIST_HOSTILE = [-1.0, 0.0, NAN, INF, -INF, 1.5, "a", None, [1.0, 2.0, 3.0, 4.0], [[-1.0, 2.0]], 2]
# points for log_prob: inside the support for most, and outside for many
DIST_VALUES = {"Categorical": [[0, 2], [3, 1], [-1, 0]], "OneHotCategorical": [[0.0, 1.0, 0.0], [0.0, 2.0, 0.0]],
               "Multinomial": [[1.0, 1.0, 2.0], [1.0, 1.0, 1.0], [-1.0, 3.0, 2.0]],
               "Dirichlet": [[0.2, 0.3, 0.5], [0.5, 0.5, 0.5]]}
DEFAULT_VALUES = [[0.5, 0.5], [1.0, 2.0], [-1.0, 0.5], [0.0, 0.0], [NAN, 0.5], [3.0, 1.5]]


def _dist_tensor(lib, value):
    if isinstance(value, list):
        return lib.tensor(value, dtype=lib.float64)
    return value


def distribution_cases() -> list:
    cases = []
    for name, base in DIST_BASE.items():
        params = inspect.signature(getattr(torch.distributions, name)).parameters
        for validate in (True, False):
            for value in DIST_VALUES.get(name, DEFAULT_VALUES):
                cases.append((name, base, None, None, validate, value))
            for param in params:
                if param == "validate_args":
                    continue
                for hostile in DIST_HOSTILE:
                    cases.append((name, base, param, hostile, validate, DIST_VALUES.get(name, DEFAULT_VALUES)[0]))
        if "logits" in params:
            cases.append((name, {**base, "logits": [0.0, 1.0][:len(base["probs"])]}, None, None, True, None))
            cases.append((name, {k: v for k, v in base.items() if k != "probs"}, None, None, True, None))
    return cases


def run_distribution_case(case, seed: int = 0) -> str | None:
    name, base, param, hostile, validate, value = case
    args = dict(base) if param is None else {**base, param: hostile}

    def body(lib, record):
        kwargs = {k: _dist_tensor(lib, v) for k, v in args.items()}
        dist = getattr(lib.distributions, name)(**kwargs, validate_args=validate)
        record["_stage"] = "used"
        record["batch_shape"] = tuple(dist.batch_shape)
        record["event_shape"] = tuple(dist.event_shape)
        # hostile parameters can hang torch's samplers (Binomial(total_count=nan) unvalidated,
        # VonMises(concentration=inf)): only valid ones are sampled
        if param is None:
            record["sample_shape"] = tuple(dist.sample((3,)).shape)  # random values: the shape only
        if value is not None:
            record["log_prob"] = dist.log_prob(lib.tensor(value, dtype=lib.int64 if name == "Categorical"
                                                          else lib.float64))
    return outcome_mismatch(body, [name, param, "validate_args", "support", "value"], rtol=1e-6, atol=1e-9,
                            allow=_deliberate_distribution_difference)


def _deliberate_distribution_difference(theirs, ours) -> bool:
    """The differences from torch chainrule keeps on purpose, where torch crashes:

    * torch's GeneralizedPareto.log_prob compares a float64 concentration with a float32
      ``tensor(0.0)`` (``isclose``) and raises "Double did not match Float" for every float64
      distribution; chainrule computes the log-density;
    * a probs/logits/concentration that is no Tensor (a float, a string, None) fails in torch on its
      ``.dim()`` with an AttributeError; chainrule raises a TypeError naming the parameter."""
    if isinstance(theirs, RuntimeError) and "Double did not match Float" in str(theirs):
        return ours is None
    if isinstance(theirs, AttributeError) and "has no attribute 'dim'" in str(theirs):
        return isinstance(ours, TypeError) and "must be a Tensor" in str(ours)
    return False


ALL_DISTRIBUTION_CASES = distribution_cases()


@pytest.mark.parametrize("part", range(2))
def test_distributions_match_torch(part):
    cases = sample(ALL_DISTRIBUTION_CASES, CASES, seed=5)[part::2]
    assert_no_new_mismatches(mismatches(cases, describe_distribution_case, run_distribution_case), len(cases))


def describe_distribution_case(case) -> str:
    name, base, param, hostile, validate, value = case
    changed = f"{param}={hostile!r}" if param else ", ".join(f"{k}={v!r}" for k, v in base.items())
    return f"{name}({changed}, validate_args={validate}).log_prob({value!r})"


def test_every_distribution_with_parameters_is_fuzzed():
    covered = set(DIST_BASE)
    assert len(covered) >= 30
    assert covered <= {n for n in dir(chainrule.distributions)}
    assert hostile_for("float", 1.0)  # the shared table is the one the other families draw from
