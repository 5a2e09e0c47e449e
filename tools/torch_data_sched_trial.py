"""Run the same torch.utils.data and torch.optim.lr_scheduler programs on torch and on chainrule,
seeded alike, and compare what each yields, returns, raises and warns.

Users compare epochs and learning-rate curves across frameworks, so where chainrule reproduces
torch's generator the order of a shuffled epoch must be torch's exactly, and every scheduler's
lr (and momentum) sequence torch's to float precision.

Cases (each a small program written once, run with ``torch`` bound to torch and then to chainrule):

* ``loader``: the batches of a DataLoader over a list dataset after ``manual_seed`` or with an
  explicit ``generator`` (shuffle, drop_last, batch_size None, sampler / batch_sampler given), two
  epochs each;
* ``sampler``: RandomSampler (replacement, num_samples), SubsetRandomSampler, WeightedRandomSampler
  (with and without replacement), BatchSampler, SequentialSampler, DistributedSampler (num_replicas,
  rank, shuffle, seed, drop_last, set_epoch), and their argument errors;
* ``dataset``: random_split (lengths, fractions, generator), Subset, ConcatDataset, ChainDataset,
  StackDataset, TensorDataset;
* ``collate``: default_collate / default_convert on nested dicts, tuples, namedtuples, lists, NumPy
  arrays, numbers, strings, bytes, None (exception messages compared too);
* ``iterable``: IterableDataset with 0 and 2 workers, get_worker_info sharding, worker_init_fn,
  persistent workers, argument errors, len() of loaders over iterable datasets, collate_fn=None,
  pin_memory on CPU;
* ``sched``: every scheduler class (and SWALR) with random parameters over 2 parameter groups: the lr
  and momentum sequence over 60 steps with get_last_lr, a state_dict round trip into a fresh
  scheduler, a resume from last_epoch; the warnings torch gives and argument errors.

Kinds per case:

    same                   both returned equal results (or raised the same builtin class), same warnings
    values_differ          both returned, and the results differ (or an exception message, where compared)
    order_differs          both returned the same integers in another order
    error_class_differs    both raised, another builtin class
    torch_only_raised      torch refused, chainrule returned
    chainrule_only_raised
    warning_differs        results agree, the warning categories emitted differ
    missing                chainrule lacks a name the case uses

    python tools/torch_data_sched_trial.py run --out /tmp/datasched            # everything
    python tools/torch_data_sched_trial.py run --out /tmp/datasched --filter sched/OneCycle
    python tools/torch_data_sched_trial.py show --out /tmp/datasched --kind values_differ

``run`` writes ``cases.json`` and prints counts per group and kind.
"""

from __future__ import annotations

import argparse
import builtins
import collections
import json
import math
import os
import random
import re
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_oracle import time_limit  # noqa: E402

SECONDS_PER_CASE = 30
KINDS = ("same", "values_differ", "order_differs", "error_class_differs", "torch_only_raised",
         "chainrule_only_raised", "warning_differs", "missing")
STEPS = 60
VARIANTS = 6


class CaseTimeout(Exception):
    pass


class Case:
    """``program(torch)`` returns a value built from plain Python values, tensors and arrays;
    ``needs``: dotted names under the library the program uses (absent in chainrule: ``missing``);
    ``messages``: exception messages are compared too."""

    def __init__(self, name, program, needs=(), messages=False):
        self.name, self.program, self.needs, self.messages = name, program, needs, messages


CASES: list[Case] = []


def case(name, needs=(), messages=False):
    def register(program):
        CASES.append(Case(name, program, needs, messages))
        return program
    return register


# ----------------------------------------------------------------------------------------------
# loaders and samplers
# ----------------------------------------------------------------------------------------------

def _epochs(iterable, count=2):
    return [list(iterable) for _ in range(count)]


def _loader_cases():
    for seed in range(VARIANTS):
        draw = random.Random(f"loader{seed}")
        n = draw.randint(5, 23)
        batch_size = draw.choice([1, 2, 3, 4, 7, None])
        drop_last = draw.random() < 0.5 and batch_size is not None
        for source in ("manual_seed", "generator"):
            def program(torch, n=n, batch_size=batch_size, drop_last=drop_last, source=source, seed=seed):
                torch.manual_seed(seed)
                generator = torch.Generator().manual_seed(100 + seed) if source == "generator" else None
                loader = torch.utils.data.DataLoader(list(range(n)), batch_size=batch_size, shuffle=True,
                                                     drop_last=drop_last, generator=generator)
                return {"len": len(loader), "epochs": _epochs(loader),
                        "after": torch.randint(0, 10**6, (3,))}
            case(f"loader/shuffle/{source}/n{n}_bs{batch_size}_drop{drop_last}")(program)

    def sampler_given(kind):
        def program(torch, kind=kind):
            data = torch.utils.data
            torch.manual_seed(3)
            g = torch.Generator().manual_seed(7)
            dataset = list(range(11))
            sampler = {
                "random_replacement": lambda: data.RandomSampler(dataset, replacement=True, num_samples=15,
                                                                 generator=g),
                "random_num_samples": lambda: data.RandomSampler(dataset, num_samples=25),
                "subset_random": lambda: data.SubsetRandomSampler([1, 4, 5, 9, 10], generator=g),
                "weighted": lambda: data.WeightedRandomSampler([0.1, 2.0, 0.5, 1.0, 3.0, 0.0, 1.0], 9),
                "sequential": lambda: data.SequentialSampler(dataset),
            }[kind]()
            loader = data.DataLoader(dataset, batch_size=4, sampler=sampler)
            return {"len": len(loader), "epochs": _epochs(loader)}
        return program

    for kind in ("random_replacement", "random_num_samples", "subset_random", "weighted", "sequential"):
        case(f"loader/sampler/{kind}")(sampler_given(kind))

    @case("loader/batch_sampler/random")
    def _(torch):
        data = torch.utils.data
        g = torch.Generator().manual_seed(5)
        batches = data.BatchSampler(data.RandomSampler(range(13), generator=g), 4, drop_last=True)
        loader = data.DataLoader(list(range(100, 113)), batch_sampler=batches)
        return {"len": len(loader), "epochs": _epochs(loader)}

    @case("loader/batch_size_none/shuffle")
    def _(torch):
        torch.manual_seed(11)
        return _epochs(torch.utils.data.DataLoader([[i, i + 1] for i in range(6)], batch_size=None, shuffle=True))

    @case("loader/errors/sampler_and_shuffle")
    def _(torch):
        data = torch.utils.data
        return data.DataLoader(list(range(4)), sampler=data.SequentialSampler(range(4)), shuffle=True)

    @case("loader/errors/batch_sampler_and_batch_size")
    def _(torch):
        data = torch.utils.data
        return data.DataLoader(list(range(4)), batch_sampler=data.BatchSampler(range(4), 2, False), batch_size=3)

    @case("loader/errors/drop_last_without_batching")
    def _(torch):
        return torch.utils.data.DataLoader(list(range(4)), batch_size=None, drop_last=True)


def _sampler_cases():
    for seed in range(VARIANTS):
        draw = random.Random(f"sampler{seed}")
        n = draw.randint(3, 17)
        replacement = draw.random() < 0.5
        num_samples = draw.choice([None, draw.randint(1, 40)])
        weights = [round(draw.uniform(0, 3), 3) for _ in range(n)]
        num_weighted = draw.randint(1, n) if not replacement else draw.randint(1, 30)
        indices = draw.sample(range(50), draw.randint(1, 10))
        for source in ("manual_seed", "generator"):
            def generator_of(torch, source=source, seed=seed):
                torch.manual_seed(seed)
                return torch.Generator().manual_seed(200 + seed) if source == "generator" else None

            def random_sampler(torch, n=n, replacement=replacement, num_samples=num_samples, g=generator_of):
                sampler = torch.utils.data.RandomSampler(range(n), replacement=replacement,
                                                         num_samples=num_samples, generator=g(torch))
                return {"len": len(sampler), "epochs": _epochs(sampler, 3)}

            def subset_random(torch, indices=indices, g=generator_of):
                sampler = torch.utils.data.SubsetRandomSampler(indices, generator=g(torch))
                return {"len": len(sampler), "epochs": _epochs(sampler, 3)}

            def weighted(torch, weights=weights, num=num_weighted, replacement=replacement, g=generator_of):
                sampler = torch.utils.data.WeightedRandomSampler(weights, num, replacement=replacement,
                                                                 generator=g(torch))
                return {"len": len(sampler), "epochs": _epochs(sampler, 3)}

            case(f"sampler/RandomSampler/{source}/n{n}_repl{replacement}_num{num_samples}")(random_sampler)
            case(f"sampler/SubsetRandomSampler/{source}/{len(indices)}")(subset_random)
            case(f"sampler/WeightedRandomSampler/{source}/n{n}_repl{replacement}_num{num_weighted}")(weighted)

        batch_size, drop_last = draw.randint(1, 6), draw.random() < 0.5

        def batch_sampler(torch, n=n, batch_size=batch_size, drop_last=drop_last):
            data = torch.utils.data
            sampler = data.BatchSampler(data.SequentialSampler(range(n)), batch_size, drop_last)
            return {"len": len(sampler), "epochs": _epochs(sampler, 1),
                    "over_list": list(data.BatchSampler(list(range(n)), batch_size, drop_last))}
        case(f"sampler/BatchSampler/n{n}_bs{batch_size}_drop{drop_last}")(batch_sampler)

        replicas = draw.randint(1, 4)
        rank = draw.randint(0, replicas - 1)
        shuffle, drop, dist_seed = draw.random() < 0.7, draw.random() < 0.5, draw.randint(0, 99)

        def distributed(torch, n=n, replicas=replicas, rank=rank, shuffle=shuffle, drop=drop, dist_seed=dist_seed):
            sampler = torch.utils.data.DistributedSampler(range(n), num_replicas=replicas, rank=rank,
                                                          shuffle=shuffle, seed=dist_seed, drop_last=drop)
            epochs = []
            for epoch in (0, 1, 5):
                sampler.set_epoch(epoch)
                epochs.append(list(sampler))
            return {"len": len(sampler), "epochs": epochs, "total_size": sampler.total_size}
        case(f"sampler/DistributedSampler/n{n}_r{replicas}_rank{rank}_sh{shuffle}_drop{drop}")(distributed)

    for n, num_samples, replacement in ((7, None, False), (5, 10, False), (6, 14, False), (4, None, True),
                                        (9, 64, True), (3, 33, True)):
        def on_generator(torch, n=n, num_samples=num_samples, replacement=replacement):
            generator = torch.Generator().manual_seed(n)
            sampler = torch.utils.data.RandomSampler(range(n), replacement, num_samples, generator=generator)
            return _epochs(sampler, 3), torch.randint(0, 1000, (2,), generator=generator)
        case(f"sampler/RandomSampler/generator_state/n{n}_num{num_samples}_repl{replacement}")(on_generator)

    @case("sampler/WeightedRandomSampler/tensor_weights")
    def _(torch):
        torch.manual_seed(1)
        sampler = torch.utils.data.WeightedRandomSampler(torch.tensor([0.5, 0.0, 2.0, 1.0], dtype=torch.float64), 6)
        return _epochs(sampler, 2), torch.randint(0, 1000, (2,))

    @case("sampler/SubsetRandomSampler/tensor_indices")
    def _(torch):
        sampler = torch.utils.data.SubsetRandomSampler(torch.tensor([3, 5, 7]), generator=torch.Generator().manual_seed(0))
        return list(sampler), list(torch.utils.data.DataLoader(list(range(10)), sampler=sampler, batch_size=2))

    @case("sampler/WeightedRandomSampler/weights_attribute")
    def _(torch):
        sampler = torch.utils.data.WeightedRandomSampler([1.0, 2.0, 0.5], 4, generator=torch.Generator().manual_seed(2))
        weights = sampler.weights
        sampler.weights = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
        return weights, list(sampler)

    @case("sampler/list_as_sampler")
    def _(torch):
        return list(torch.utils.data.DataLoader(list(range(10, 16)), sampler=[5, 0, 3], batch_size=2))

    @case("sampler/SequentialSampler")
    def _(torch):
        return list(torch.utils.data.SequentialSampler(range(7)))

    errors = {
        "RandomSampler_replacement_int": lambda d: d.RandomSampler(range(3), replacement=1),
        "RandomSampler_num_samples_0": lambda d: d.RandomSampler(range(3), num_samples=0),
        "RandomSampler_num_samples_float": lambda d: d.RandomSampler(range(3), num_samples=2.0),
        "RandomSampler_empty": lambda d: d.RandomSampler([]),
        "WeightedRandomSampler_num_samples_0": lambda d: d.WeightedRandomSampler([1.0, 2.0], 0),
        "WeightedRandomSampler_replacement_int": lambda d: d.WeightedRandomSampler([1.0, 2.0], 1, replacement=0),
        "WeightedRandomSampler_2d": lambda d: d.WeightedRandomSampler([[1.0, 2.0]], 1),
        "WeightedRandomSampler_too_many": lambda d: list(d.WeightedRandomSampler([1.0, 2.0], 3, replacement=False)),
        "WeightedRandomSampler_negative": lambda d: list(d.WeightedRandomSampler([1.0, -2.0], 3)),
        "BatchSampler_batch_size_0": lambda d: d.BatchSampler(range(3), 0, False),
        "BatchSampler_batch_size_bool": lambda d: d.BatchSampler(range(3), True, False),
        "BatchSampler_drop_last_int": lambda d: d.BatchSampler(range(3), 2, 1),
        "DistributedSampler_rank_too_big": lambda d: d.DistributedSampler(range(3), num_replicas=2, rank=2),
        "DistributedSampler_rank_negative": lambda d: d.DistributedSampler(range(3), num_replicas=2, rank=-1),
        "DistributedSampler_no_process_group": lambda d: d.DistributedSampler(range(3)),
        "RandomSampler_generator_int": lambda d: list(d.RandomSampler(range(3), generator=5)),
        "RandomSampler_replacement_generator_int": lambda d: list(d.RandomSampler(range(3), True, generator=5)),
        "SubsetRandomSampler_generator_int": lambda d: list(d.SubsetRandomSampler([1, 2], generator=5)),
        "WeightedRandomSampler_generator_int": lambda d: list(d.WeightedRandomSampler([1.0, 2.0], 2, generator=5)),
        "random_split_generator_int": lambda d: d.random_split(range(4), [2, 2], generator=5),
        "DataLoader_generator_int": lambda d: list(d.DataLoader(range(3), shuffle=True, generator=5)),
        "DataLoader_prefetch_factor_0": lambda d: list(d.DataLoader(range(3), num_workers=1, prefetch_factor=0)),
    }
    for name, build in errors.items():
        case(f"sampler/errors/{name}")(lambda torch, build=build: build(torch.utils.data))


# ----------------------------------------------------------------------------------------------
# datasets
# ----------------------------------------------------------------------------------------------

def _dataset_cases():
    for seed in range(VARIANTS):
        draw = random.Random(f"split{seed}")
        n = draw.randint(2, 30)
        if draw.random() < 0.5:
            cuts = sorted(draw.sample(range(n + 1), 2))
            lengths = [cuts[0], cuts[1] - cuts[0], n - cuts[1]]
        else:
            lengths = [0.5, 0.3, 0.2] if draw.random() < 0.5 else [0.25, 0.75]
        for source in ("manual_seed", "generator"):
            def split(torch, n=n, lengths=lengths, source=source, seed=seed):
                torch.manual_seed(seed)
                kwargs = {"generator": torch.Generator().manual_seed(300 + seed)} if source == "generator" else {}
                parts = torch.utils.data.random_split(range(n), lengths, **kwargs)
                return [list(part.indices) for part in parts], [list(part) for part in parts]
            case(f"dataset/random_split/{source}/n{n}_{lengths}")(split)

    errors = {
        "random_split_bad_sum": lambda t: t.utils.data.random_split(range(5), [2, 2]),
        "random_split_bad_fraction": lambda t: t.utils.data.random_split(range(5), [1.5, -0.5]),
        "TensorDataset_size_mismatch": lambda t: t.utils.data.TensorDataset(t.zeros(3), t.zeros(4)),
        "StackDataset_size_mismatch": lambda t: t.utils.data.StackDataset(range(3), range(4)),
        "StackDataset_args_and_kwargs": lambda t: t.utils.data.StackDataset(range(3), b=range(3)),
        "StackDataset_nothing": lambda t: t.utils.data.StackDataset(),
        "ConcatDataset_empty": lambda t: t.utils.data.ConcatDataset([]),
        "ConcatDataset_iterable": lambda t: t.utils.data.ConcatDataset([_counting(t, 3)]),
        "ConcatDataset_index_too_big": lambda t: t.utils.data.ConcatDataset([range(2), range(3)])[5],
        "ConcatDataset_index_too_negative": lambda t: t.utils.data.ConcatDataset([range(2), range(3)])[-6],
        "Subset_index_too_big": lambda t: t.utils.data.Subset(range(4), [0, 9])[1],
    }
    for name, build in errors.items():
        case(f"dataset/errors/{name}")(build)

    @case("dataset/random_split/zero_length_warning")
    def _(torch):
        torch.manual_seed(0)
        parts = torch.utils.data.random_split(range(3), [0.1, 0.1, 0.8])
        return [list(part) for part in parts]

    @case("dataset/random_split/of_a_subset")
    def _(torch):
        generator = torch.Generator().manual_seed(8)
        subset = torch.utils.data.Subset(list(range(100, 110)), [9, 7, 5, 3, 1])
        parts = torch.utils.data.random_split(subset, [2, 3], generator=generator)
        return [list(part) for part in parts], [list(part.indices) for part in parts]

    @case("dataset/ConcatDataset_in_loader")
    def _(torch):
        data = torch.utils.data
        concat = data.ConcatDataset([data.TensorDataset(torch.arange(4.0)), data.TensorDataset(torch.arange(10.0, 13.0))])
        torch.manual_seed(5)
        return list(data.DataLoader(concat, batch_size=3, shuffle=True))

    @case("dataset/get_worker_info_in_main_process")
    def _(torch):
        return torch.utils.data.get_worker_info()

    @case("dataset/Subset")
    def _(torch):
        subset = torch.utils.data.Subset(list(range(10, 20)), [3, 1, 4, 1])
        return len(subset), list(subset), subset[-1], subset[[0, 2]]

    @case("dataset/ConcatDataset")
    def _(torch):
        data = torch.utils.data
        concat = data.ConcatDataset([range(3), list(range(10, 14)), data.Subset(range(20, 25), [4, 0])])
        return len(concat), list(concat), concat[-1], concat[-9], list(concat.cumulative_sizes)

    @case("dataset/ConcatDataset_add")
    def _(torch):
        data = torch.utils.data
        concat = data.TensorDataset(torch.arange(3)) + data.TensorDataset(torch.arange(5, 7))
        return type(concat).__name__, len(concat), [concat[i] for i in range(len(concat))]

    @case("dataset/ChainDataset")
    def _(torch):
        data = torch.utils.data
        chain = data.ChainDataset([_counting(torch, 3), _counting(torch, 2)])
        return list(chain), len(chain)

    @case("dataset/ChainDataset_add")
    def _(torch):
        chain = _counting(torch, 3) + _counting(torch, 2)
        return type(chain).__name__, list(chain)

    @case("dataset/StackDataset")
    def _(torch):
        data = torch.utils.data
        by_position = data.StackDataset(range(3), list("abc"))
        by_name = data.StackDataset(x=range(3), y=list("abc"))
        return len(by_position), by_position[1], by_name[2], by_name.__getitems__([0, 2])

    @case("dataset/TensorDataset")
    def _(torch):
        data = torch.utils.data
        dataset = data.TensorDataset(torch.arange(6).reshape(3, 2), torch.tensor([1.0, 2.0, 3.0]))
        loader = data.DataLoader(dataset, batch_size=2)
        return len(dataset), dataset[1], dataset[-1], list(loader)


def _counting(torch, count):
    class Counting(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(range(count))

        def __len__(self):
            return count
    return Counting()


# ----------------------------------------------------------------------------------------------
# collate
# ----------------------------------------------------------------------------------------------

Point = collections.namedtuple("Point", "x y")


def _collate_cases():
    import numpy as np

    batches = {
        "ints": [1, 2, 3],
        "floats": [1.5, 2.5],
        "bools": [True, False],
        "strings": ["a", "bc"],
        "bytes": [b"a", b"bc"],
        "tensors": "tensors",
        "numpy_arrays": [np.arange(3, dtype=np.float64), np.arange(3, dtype=np.float64) + 1],
        "numpy_int32": [np.int32(3), np.int32(4)],
        "numpy_float_scalars": [np.float64(0.5), np.float64(1.5)],
        "numpy_0d": [np.array(2.0, dtype=np.float32), np.array(3.0, dtype=np.float32)],
        "nested_dicts": [{"a": {"b": 1, "c": [1.0, 2.0]}, "d": "x"}, {"a": {"b": 2, "c": [3.0, 4.0]}, "d": "y"}],
        "tuples": [(1, 2.0, "s"), (3, 4.0, "t")],
        "namedtuples": [Point(1, 2.0), Point(3, 4.0)],
        "lists": [[1, 2], [3, 4]],
        "None": [None, None],
        "unequal_lists": [[1, 2], [3]],
        "numpy_strings": [np.array(["a"]), np.array(["b"])],
        "numpy_objects": [np.array([object()], dtype=object), np.array([object()], dtype=object)],
        "unequal_tensors": "unequal_tensors",
        "objects": "objects",
        "empty_dict": [{}, {}],
    }
    for name, batch in batches.items():
        for function in ("default_collate", "default_convert"):
            def program(torch, batch=batch, function=function):
                if batch == "tensors":
                    batch = [torch.arange(3), torch.arange(3) * 2]
                elif batch == "unequal_tensors":
                    batch = [torch.arange(3), torch.arange(2)]
                elif batch == "objects":
                    batch = [Point, Point]
                return getattr(torch.utils.data, function)(batch)
            case(f"collate/{function}/{name}", messages=True)(program)

    @case("collate/default_collate/ordered_and_default_dicts")
    def _(torch):
        ordered = [collections.OrderedDict(b=1, a=2.0), collections.OrderedDict(b=3, a=4.0)]
        default = [collections.defaultdict(int, x=1), collections.defaultdict(int, x=2)]
        collated = torch.utils.data.default_collate(ordered), torch.utils.data.default_collate(default)
        return [type(c).__name__ for c in collated], collated

    @case("collate/default_collate/int_then_float")
    def _(torch):
        return torch.utils.data.default_collate([2, 1.5]), torch.utils.data.default_collate([1.5, 2])

    @case("collate/default_collate/mixed_bool_int")
    def _(torch):
        return torch.utils.data.default_collate([True, 2, False])

    @case("collate/default_collate/tensors_of_two_dtypes")
    def _(torch):
        return torch.utils.data.default_collate([torch.tensor([1, 2]), torch.tensor([1.5, 2.5])])

    @case("collate/default_collate/sets", messages=True)
    def _(torch):
        return torch.utils.data.default_collate([{1, 2}, {3, 4}])

    @case("collate/default_convert/ndarray_alone")
    def _(torch):
        return torch.utils.data.default_convert(np.ones((2, 2), dtype=np.int32))

    @case("collate/default_collate/tuple_of_namedtuples_in_loader")
    def _(torch):
        samples = [(Point(i, float(i)), {"k": np.full(2, i)}) for i in range(5)]
        return list(torch.utils.data.DataLoader(samples, batch_size=2))


# ----------------------------------------------------------------------------------------------
# iterable datasets and workers
# ----------------------------------------------------------------------------------------------

def _ranged(torch, start, end, with_len=False, worker_details=False):
    """torch's documentation example: a range split among the workers by get_worker_info()."""
    data = torch.utils.data

    class Ranged(data.IterableDataset):
        def __init__(self):
            self.start, self.end = start, end

        def __iter__(self):
            info = data.get_worker_info()
            low, high = self.start, self.end
            if info is not None:
                per_worker = int(math.ceil((self.end - self.start) / float(info.num_workers)))
                low = self.start + info.id * per_worker
                high = min(low + per_worker, self.end)
            if worker_details:
                drawn = torch.randint(0, 1000, (1,)).item()
                return iter([(i, -1 if info is None else info.id, drawn) for i in range(low, high)])
            return iter(range(low, high))

    if with_len:  # the length as built: a case that widens the range afterwards yields more than it reports
        Ranged.__len__ = lambda self: end - start
    return Ranged()


def _whole_range(torch, start, end):
    """The documentation's second example: the whole range, cut by worker_init_fn."""
    data = torch.utils.data

    class Whole(data.IterableDataset):
        def __init__(self):
            self.start, self.end = start, end

        def __iter__(self):
            return iter(range(self.start, self.end))

    def worker_init_fn(worker_id):
        info = data.get_worker_info()
        dataset = info.dataset
        per_worker = int(math.ceil((dataset.end - dataset.start) / float(info.num_workers)))
        dataset.start = dataset.start + worker_id * per_worker
        dataset.end = min(dataset.start + per_worker, dataset.end)

    return Whole(), worker_init_fn


def _iterable_cases():
    for workers in (0, 2):
        for batch_size in (None, 1, 3):
            for drop_last in (False, True):
                if batch_size is None and drop_last:
                    continue

                def program(torch, workers=workers, batch_size=batch_size, drop_last=drop_last):
                    torch.manual_seed(4)
                    loader = torch.utils.data.DataLoader(_ranged(torch, 3, 10), num_workers=workers,
                                                         batch_size=batch_size, drop_last=drop_last)
                    return list(loader)
                case(f"iterable/workers{workers}/bs{batch_size}_drop{drop_last}")(program)

    @case("iterable/worker_seeds/manual_seed")
    def _(torch):
        torch.manual_seed(9)
        return list(torch.utils.data.DataLoader(_ranged(torch, 0, 6, worker_details=True), num_workers=2,
                                                batch_size=None))

    @case("iterable/worker_seeds/generator")
    def _(torch):
        loader = torch.utils.data.DataLoader(_ranged(torch, 0, 6, worker_details=True), num_workers=2,
                                             batch_size=2, generator=torch.Generator().manual_seed(12))
        return list(loader), torch.randint(0, 1000, (2,))

    @case("iterable/worker_init_fn")
    def _(torch):
        dataset, init = _whole_range(torch, 3, 10)
        return list(torch.utils.data.DataLoader(dataset, num_workers=2, worker_init_fn=init, batch_size=None))

    @case("iterable/persistent_workers")
    def _(torch):
        torch.manual_seed(2)
        loader = torch.utils.data.DataLoader(_ranged(torch, 0, 5, worker_details=True), num_workers=2,
                                             persistent_workers=True, batch_size=2)
        return _epochs(loader)

    @case("iterable/map_style_workers_shuffle")
    def _(torch):
        torch.manual_seed(6)
        return _epochs(torch.utils.data.DataLoader(list(range(9)), batch_size=2, shuffle=True, num_workers=2))

    @case("iterable/map_style_workers_generator")
    def _(torch):
        loader = torch.utils.data.DataLoader(list(range(9)), batch_size=2, shuffle=True, num_workers=2,
                                             generator=torch.Generator().manual_seed(21))
        return _epochs(loader)

    @case("iterable/map_style_worker_seeds")
    def _(torch):
        class Seeds(torch.utils.data.Dataset):
            def __len__(self):
                return 4

            def __getitem__(self, index):
                info = torch.utils.data.get_worker_info()
                return index, info.id, info.num_workers, info.seed % 1000, torch.randint(0, 1000, (1,)).item()

        torch.manual_seed(17)
        return list(torch.utils.data.DataLoader(Seeds(), batch_size=None, num_workers=2))

    @case("iterable/prefetch_factor_3")
    def _(torch):
        return list(torch.utils.data.DataLoader(_ranged(torch, 0, 7), num_workers=2, prefetch_factor=3))

    for with_len in (True, False):
        for batch_size, drop_last in ((None, False), (1, False), (2, False), (2, True), (4, True)):
            def length(torch, with_len=with_len, batch_size=batch_size, drop_last=drop_last):
                loader = torch.utils.data.DataLoader(_ranged(torch, 0, 7, with_len=with_len), batch_size=batch_size,
                                                     drop_last=drop_last)
                return len(loader)
            case(f"iterable/len/with_len{with_len}_bs{batch_size}_drop{drop_last}")(length)

    for workers in (0, 2):
        for batch_size in (None, 1, 2):
            def exceeded(torch, workers=workers, batch_size=batch_size):
                dataset = _ranged(torch, 0, 5, with_len=True)
                dataset.end = 9  # yields more than __len__ reports
                loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers)
                return len(loader), list(loader)
            case(f"iterable/len_exceeded_warning/workers{workers}_bs{batch_size}")(exceeded)

    errors = {
        "prefetch_factor_without_workers": dict(prefetch_factor=2),
        "prefetch_factor_negative": dict(num_workers=2, prefetch_factor=-1),
        "timeout_negative": dict(timeout=-1),
        "num_workers_negative": dict(num_workers=-1),
        "persistent_without_workers": dict(persistent_workers=True),
        "shuffle_iterable": dict(shuffle=True),
        "sampler_iterable": dict(sampler=[0, 1]),
        "batch_sampler_iterable": dict(batch_sampler=[[0, 1]]),
        "multiprocessing_context_without_workers": dict(multiprocessing_context="fork"),
        "multiprocessing_context_bad": dict(num_workers=1, multiprocessing_context="nope"),
    }
    for name, kwargs in errors.items():
        case(f"iterable/errors/{name}")(
            lambda torch, kwargs=kwargs: torch.utils.data.DataLoader(_ranged(torch, 0, 3), **kwargs))

    @case("iterable/errors/timeout_without_workers_iterated")
    def _(torch):
        return list(torch.utils.data.DataLoader(list(range(3)), timeout=1))

    @case("iterable/collate_fn_none/batch_size_none_numpy")
    def _(torch):
        import numpy as np

        samples = [{"x": np.arange(2) + i, "y": (np.float32(i), "s")} for i in range(3)]
        return list(torch.utils.data.DataLoader(samples, batch_size=None, collate_fn=None))

    @case("iterable/collate_fn_none/batched")
    def _(torch):
        return list(torch.utils.data.DataLoader([(i, float(i)) for i in range(5)], batch_size=2, collate_fn=None))

    @case("iterable/collate_fn_list")
    def _(torch):
        return list(torch.utils.data.DataLoader(list(range(5)), batch_size=2, collate_fn=lambda batch: batch))

    @case("iterable/pin_memory_cpu")
    def _(torch):
        batches = list(torch.utils.data.DataLoader(list(range(5)), batch_size=2, pin_memory=True))
        return batches, [batch.is_pinned() for batch in batches]


# ----------------------------------------------------------------------------------------------
# schedulers
# ----------------------------------------------------------------------------------------------

def _optimizer(torch, draw, kind="sgd"):
    torch.manual_seed(0)
    first, second = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(3))
    for parameter in (first, second):
        parameter.grad = torch.full_like(parameter, 0.5)
    lr, second_lr = round(draw.uniform(0.01, 1.0), 4), round(draw.uniform(0.01, 1.0), 4)
    groups = [{"params": [first]}, {"params": [second], "lr": second_lr}]
    if kind == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.99))
    return torch.optim.SGD(groups, lr=lr, momentum=0.9)


def _momenta(optimizer):
    values = []
    for group in optimizer.param_groups:
        if "betas" in group:
            values.append(float(group["betas"][0]))
        elif "momentum" in group:
            values.append(float(group["momentum"]))
    return values


def _schedule_builders():
    """``name -> build(torch, draw) -> (optimizer, scheduler, metric or None)``; ``draw`` is a
    random.Random seeded per variant, so torch and chainrule get the same parameters."""
    def lr_scheduler(torch):
        return torch.optim.lr_scheduler

    def step_lr(torch, draw, optimizer, last_epoch=-1):
        return lr_scheduler(torch).StepLR(optimizer, draw.randint(1, 10), gamma=round(draw.uniform(0.1, 0.9), 3),
                                          last_epoch=last_epoch)

    def multi_step(torch, draw, optimizer, last_epoch=-1):
        milestones = sorted(draw.choices(range(1, STEPS), k=draw.randint(1, 5)))
        return lr_scheduler(torch).MultiStepLR(optimizer, milestones, gamma=round(draw.uniform(0.1, 0.9), 3),
                                               last_epoch=last_epoch)

    def constant(torch, draw, optimizer, last_epoch=-1):
        return lr_scheduler(torch).ConstantLR(optimizer, factor=round(draw.uniform(0.1, 1.0), 3),
                                              total_iters=draw.randint(0, 20), last_epoch=last_epoch)

    def linear(torch, draw, optimizer, last_epoch=-1):
        return lr_scheduler(torch).LinearLR(optimizer, start_factor=round(draw.uniform(0.05, 1.0), 3),
                                            end_factor=round(draw.uniform(0.0, 1.0), 3),
                                            total_iters=draw.randint(1, 30), last_epoch=last_epoch)

    def exponential(torch, draw, optimizer, last_epoch=-1):
        return lr_scheduler(torch).ExponentialLR(optimizer, round(draw.uniform(0.8, 0.99), 3), last_epoch=last_epoch)

    def polynomial(torch, draw, optimizer, last_epoch=-1):
        return lr_scheduler(torch).PolynomialLR(optimizer, total_iters=draw.randint(1, 50),
                                                power=round(draw.uniform(0.5, 3.0), 3), last_epoch=last_epoch)

    def cosine(torch, draw, optimizer, last_epoch=-1):
        return lr_scheduler(torch).CosineAnnealingLR(optimizer, draw.randint(1, 30),
                                                     eta_min=round(draw.uniform(0, 0.01), 4), last_epoch=last_epoch)

    def warm_restarts(torch, draw, optimizer, last_epoch=-1):
        return lr_scheduler(torch).CosineAnnealingWarmRestarts(optimizer, draw.randint(1, 10), T_mult=draw.randint(1, 3),
                                                               eta_min=round(draw.uniform(0, 0.01), 4),
                                                               last_epoch=last_epoch)

    def cyclic(torch, draw, optimizer, last_epoch=-1):
        mode = draw.choice(["triangular", "triangular2", "exp_range"])
        base = [round(draw.uniform(0.001, 0.01), 4), round(draw.uniform(0.001, 0.01), 4)]
        return lr_scheduler(torch).CyclicLR(
            optimizer, base_lr=draw.choice([base, base[0]]), max_lr=round(draw.uniform(0.05, 0.5), 3),
            step_size_up=draw.randint(1, 10), step_size_down=draw.choice([None, draw.randint(1, 10)]), mode=mode,
            gamma=round(draw.uniform(0.9, 1.0), 3), cycle_momentum=draw.random() < 0.7,
            base_momentum=round(draw.uniform(0.7, 0.85), 3), max_momentum=round(draw.uniform(0.86, 0.95), 3),
            last_epoch=last_epoch)

    def one_cycle(torch, draw, optimizer, last_epoch=-1):
        three_phase = draw.random() < 0.4
        return lr_scheduler(torch).OneCycleLR(
            optimizer, max_lr=draw.choice([round(draw.uniform(0.1, 1.0), 3), [0.5, 0.25]]), total_steps=STEPS + 5,
            pct_start=round(draw.uniform(0.1, 0.45), 3), anneal_strategy=draw.choice(["cos", "linear"]),
            cycle_momentum=draw.random() < 0.7, base_momentum=round(draw.uniform(0.7, 0.85), 3),
            max_momentum=round(draw.uniform(0.86, 0.95), 3), div_factor=round(draw.uniform(5, 30), 2),
            final_div_factor=round(draw.uniform(100, 10000), 1), three_phase=three_phase, last_epoch=last_epoch)

    def plateau(torch, draw, optimizer, last_epoch=-1):
        return lr_scheduler(torch).ReduceLROnPlateau(
            optimizer, mode=draw.choice(["min", "max"]), factor=round(draw.uniform(0.1, 0.9), 3),
            patience=draw.randint(0, 5), threshold=round(draw.uniform(1e-4, 0.1), 4),
            threshold_mode=draw.choice(["rel", "abs"]), cooldown=draw.randint(0, 3),
            min_lr=draw.choice([0.0, 0.01, [0.02, 0.001]]), eps=draw.choice([1e-8, 1e-3]))

    def lambda_lr(torch, draw, optimizer, last_epoch=-1):
        a, b = round(draw.uniform(0.9, 0.99), 3), draw.randint(1, 10)
        functions = draw.choice([lambda e: a ** e, [lambda e: a ** e, lambda e: 1.0 / (1 + e // b)]])
        return lr_scheduler(torch).LambdaLR(optimizer, functions, last_epoch=last_epoch)

    def multiplicative(torch, draw, optimizer, last_epoch=-1):
        a = round(draw.uniform(0.9, 0.99), 3)
        return lr_scheduler(torch).MultiplicativeLR(optimizer, lambda e: a if e % 3 else 1.0, last_epoch=last_epoch)

    def sequential(torch, draw, optimizer, last_epoch=-1):
        s = lr_scheduler(torch)
        warmup = draw.randint(1, 10)
        members = [s.LinearLR(optimizer, start_factor=round(draw.uniform(0.05, 0.5), 3), total_iters=warmup),
                   draw.choice([s.ExponentialLR(optimizer, 0.9), s.StepLR(optimizer, 3, 0.5),
                                s.CosineAnnealingLR(optimizer, 20)])]
        milestones = [warmup]
        if draw.random() < 0.5:
            members.append(s.ConstantLR(optimizer, factor=0.5, total_iters=5))
            milestones.append(warmup + draw.randint(1, 20))
        return s.SequentialLR(optimizer, members, milestones, last_epoch=last_epoch)

    def chained(torch, draw, optimizer, last_epoch=-1):
        s = lr_scheduler(torch)
        members = [s.ConstantLR(optimizer, factor=round(draw.uniform(0.1, 0.9), 3), total_iters=draw.randint(1, 10)),
                   s.ExponentialLR(optimizer, gamma=round(draw.uniform(0.8, 0.99), 3))]
        if draw.random() < 0.5:
            members.append(s.StepLR(optimizer, draw.randint(2, 10), 0.5))
        return s.ChainedScheduler(members, optimizer=optimizer)

    def swalr(torch, draw, optimizer, last_epoch=-1):
        return torch.optim.swa_utils.SWALR(optimizer, swa_lr=draw.choice([0.05, [0.05, 0.01]]),
                                           anneal_epochs=draw.randint(0, 10),
                                           anneal_strategy=draw.choice(["cos", "linear"]), last_epoch=last_epoch)

    return {"StepLR": step_lr, "MultiStepLR": multi_step, "ConstantLR": constant, "LinearLR": linear,
            "ExponentialLR": exponential, "PolynomialLR": polynomial, "CosineAnnealingLR": cosine,
            "CosineAnnealingWarmRestarts": warm_restarts, "CyclicLR": cyclic, "OneCycleLR": one_cycle,
            "ReduceLROnPlateau": plateau, "LambdaLR": lambda_lr, "MultiplicativeLR": multiplicative,
            "SequentialLR": sequential, "ChainedScheduler": chained, "SWALR": swalr}


def _needs(name):
    return ("optim.swa_utils.SWALR",) if name == "SWALR" else (f"optim.lr_scheduler.{name}",)


def _step(scheduler, optimizer, metric_draw, epoch=None):
    optimizer.step()
    if metric_draw is not None:
        scheduler.step(round(metric_draw.uniform(0, 1) + 0.5 * math.sin(scheduler.last_epoch / 3), 4))
    elif epoch is not None:
        scheduler.step(epoch)
    else:
        scheduler.step()


def _record(scheduler, optimizer):
    return {"lr": [float(g["lr"]) for g in optimizer.param_groups], "last": [float(x) for x in scheduler.get_last_lr()],
            "momentum": _momenta(optimizer), "last_epoch": scheduler.last_epoch}


def _scheduler_cases():
    builders = _schedule_builders()
    for name, build in builders.items():
        for variant in range(VARIANTS):
            seed = f"{name}{variant}"

            def setup(torch, build=build, seed=seed, name=name, last_epoch=-1, optimizer=None):
                draw = random.Random(seed)
                kind = "adam" if name in ("CyclicLR", "OneCycleLR") and draw.random() < 0.4 else "sgd"
                optimizer = optimizer or _optimizer(torch, draw, kind)
                metrics = random.Random(seed + "metrics") if name == "ReduceLROnPlateau" else None
                return optimizer, build(torch, draw, optimizer, last_epoch), metrics

            def sequence(torch, setup=setup):
                optimizer, scheduler, metrics = setup(torch)
                records = [_record(scheduler, optimizer)]
                for _ in range(STEPS):
                    _step(scheduler, optimizer, metrics)
                    records.append(_record(scheduler, optimizer))
                return records

            def round_trip(torch, setup=setup):
                optimizer, scheduler, metrics = setup(torch)
                for _ in range(STEPS // 3):
                    _step(scheduler, optimizer, metrics)
                state, optimizer_state = scheduler.state_dict(), optimizer.state_dict()
                fresh_optimizer, fresh, _ = setup(torch)
                fresh_optimizer.load_state_dict(optimizer_state)
                fresh.load_state_dict(state)
                records = []
                for _ in range(STEPS // 3):
                    _step(fresh, fresh_optimizer, metrics)
                    records.append(_record(fresh, fresh_optimizer))
                return records

            def resume(torch, setup=setup):
                optimizer, scheduler, metrics = setup(torch)
                for _ in range(STEPS // 3):
                    _step(scheduler, optimizer, metrics)
                _, resumed, _ = setup(torch, last_epoch=scheduler.last_epoch, optimizer=optimizer)
                records = [_record(resumed, optimizer)]
                for _ in range(STEPS // 3):
                    _step(resumed, optimizer, metrics)
                    records.append(_record(resumed, optimizer))
                return records

            def by_epoch(torch, setup=setup, name=name):
                optimizer, scheduler, metrics = setup(torch)
                records = []
                for epoch in (1, 2, 5, 3, 11, 12, 30):
                    _step(scheduler, optimizer, metrics, None if name in ("SequentialLR", "ChainedScheduler")
                          else epoch)
                    records.append(_record(scheduler, optimizer))
                return records

            def state_values(torch, setup=setup):
                optimizer, scheduler, metrics = setup(torch)
                for _ in range(STEPS // 3):
                    _step(scheduler, optimizer, metrics)
                # in key order: which attribute a scheduler sets first is no difference a user sees
                return {key: value for key, value in sorted(scheduler.state_dict().items())
                        if isinstance(value, (int, float, str, bool, list, tuple, type(None)))
                        and key != "_schedulers"}

            case(f"sched/{name}/{variant}/sequence", _needs(name))(sequence)
            case(f"sched/{name}/{variant}/by_epoch", _needs(name))(by_epoch)
            case(f"sched/{name}/{variant}/state_values", _needs(name))(state_values)
            case(f"sched/{name}/{variant}/state_dict", _needs(name))(round_trip)
            if name not in ("ReduceLROnPlateau", "ChainedScheduler"):  # they take no last_epoch
                case(f"sched/{name}/{variant}/resume", _needs(name))(resume)

        def keys(torch, build=build, name=name):
            draw = random.Random(name)
            optimizer = _optimizer(torch, draw)
            scheduler = build(torch, draw, optimizer)
            return sorted(key for key in scheduler.state_dict())
        case(f"sched/{name}/state_dict_keys", _needs(name))(keys)

    @case("sched/CosineAnnealingWarmRestarts/fractional_epochs")
    def _(torch):
        optimizer = _optimizer(torch, random.Random(1))
        scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=3, T_mult=2, eta_min=0.001)
        records, iterations = [], 4
        for epoch in range(12):
            for i in range(iterations):
                _step(scheduler, optimizer, None, epoch + i / iterations)
                records.append(_record(scheduler, optimizer) | {"epoch": scheduler.last_epoch,
                                                                "T_cur": scheduler.T_cur, "T_i": scheduler.T_i})
        return records

    @case("sched/OneCycleLR/epochs_and_steps_per_epoch")
    def _(torch):
        optimizer = _optimizer(torch, random.Random(5), "adam")
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, [0.3, 0.2], epochs=4, steps_per_epoch=7)
        records = [_record(scheduler, optimizer)]
        for _ in range(27):
            _step(scheduler, optimizer, None)
            records.append(_record(scheduler, optimizer))
        return records, scheduler.total_steps

    @case("sched/CyclicLR/custom_scale_fn")
    def _(torch):
        optimizer = _optimizer(torch, random.Random(6))
        records = []
        for scale_mode in ("cycle", "iterations"):
            scheduler = torch.optim.lr_scheduler.CyclicLR(optimizer, 0.01, 0.1, step_size_up=3,
                                                          scale_fn=lambda x: 0.9 ** x, scale_mode=scale_mode)
            for _ in range(15):
                _step(scheduler, optimizer, None)
                records.append(_record(scheduler, optimizer))
        return records

    @case("sched/ReduceLROnPlateau/counters")
    def _(torch):
        optimizer = _optimizer(torch, random.Random(7))
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=1, cooldown=2, factor=0.5)
        records = []
        for metric in (1.0, 1.0, 1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.3, 0.3, 0.3, 0.3):
            _step(scheduler, optimizer, None, metric)
            records.append(_record(scheduler, optimizer) | {"best": scheduler.best, "bad": scheduler.num_bad_epochs,
                                                            "cooldown": scheduler.cooldown_counter})
        return records

    @case("sched/ChainedScheduler/optimizer_none")
    def _(torch):
        optimizer = _optimizer(torch, random.Random(8))
        s = torch.optim.lr_scheduler
        chained = s.ChainedScheduler([s.ConstantLR(optimizer, 0.5, 3), s.ExponentialLR(optimizer, 0.9)])
        records = [_record(chained, optimizer)]
        for _ in range(6):
            _step(chained, optimizer, None)
            records.append(_record(chained, optimizer))
        return records

    @case("sched/user_subclass")
    def _(torch):
        class Halving(torch.optim.lr_scheduler.LRScheduler):
            def get_lr(self):
                return [base * 0.5 ** self.last_epoch for base in self.base_lrs]

        optimizer = _optimizer(torch, random.Random(9))
        scheduler = Halving(optimizer)
        records = [_record(scheduler, optimizer)]
        for _ in range(4):
            _step(scheduler, optimizer, None)
            records.append(_record(scheduler, optimizer))
        return records, scheduler.get_lr(), sorted(scheduler.state_dict())

    @case("sched/tensor_lr")
    def _(torch):
        parameter = torch.nn.Parameter(torch.ones(2))
        parameter.grad = torch.ones(2)
        optimizer = torch.optim.Adam([parameter], lr=torch.tensor(0.1))
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, 0.5)
        for _ in range(3):
            _step(scheduler, optimizer, None)
        return optimizer.param_groups[0]["lr"], scheduler.get_last_lr()

    tensor_lr_schedulers = {
        "OneCycleLR": lambda s, o: s.OneCycleLR(o, max_lr=0.1, total_steps=8),
        "CyclicLR": lambda s, o: s.CyclicLR(o, 0.01, 0.1, step_size_up=2, cycle_momentum=False),
        "ReduceLROnPlateau": lambda s, o: s.ReduceLROnPlateau(o, patience=0),
        "StepLR": lambda s, o: s.StepLR(o, 2, 0.5),
        "ChainedScheduler": lambda s, o: s.ChainedScheduler([s.ConstantLR(o, 0.5, 2), s.ExponentialLR(o, 0.9)]),
    }
    for name, build in tensor_lr_schedulers.items():
        def tensor_lr_kept(torch, build=build, name=name):
            parameter = torch.nn.Parameter(torch.ones(2))
            parameter.grad = torch.ones(2)
            lr = torch.tensor(0.05)
            optimizer = torch.optim.Adam([parameter], lr=lr)
            scheduler = build(torch.optim.lr_scheduler, optimizer)
            records = []
            for step in range(5):
                optimizer.step()
                scheduler.step(1.0 + step) if name == "ReduceLROnPlateau" else scheduler.step()
                last = scheduler.get_last_lr()[0]
                records.append([float(optimizer.param_groups[0]["lr"]), float(last),
                                optimizer.param_groups[0]["lr"] is lr, last is optimizer.param_groups[0]["lr"]])
            return records
        case(f"sched/tensor_lr/{name}")(tensor_lr_kept)

    @case("sched/StepLR/step_with_epoch")
    def _(torch):
        optimizer = _optimizer(torch, random.Random(2))
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 3, 0.5)
        records = []
        for epoch in (1, 2, 7, 3, 10):
            _step(scheduler, optimizer, None, epoch)
            records.append(_record(scheduler, optimizer))
        return records

    warned = {
        "step_before_optimizer": lambda s, o: s.StepLR(o, 2).step(),
        "get_lr_directly": lambda s, o: s.StepLR(o, 2).get_lr(),
        "get_lr_directly_cosine": lambda s, o: s.CosineAnnealingLR(o, 5).get_lr(),
        "epoch_argument": lambda s, o: (o.step(), s.ExponentialLR(o, 0.9).step(3)),
        "optimizer_step_twice_then_scheduler": lambda s, o: (o.step(), o.step(), s.StepLR(o, 2).step()),
        "plateau_epoch_argument": lambda s, o: (o.step(), s.ReduceLROnPlateau(o).step(1.0, 3)),
        "sequential_step_order": lambda s, o: s.SequentialLR(o, [s.ConstantLR(o), s.ExponentialLR(o, 0.9)], [2]).step(),
    }
    for name, program in warned.items():
        def warning_case(torch, program=program):
            optimizer = _optimizer(torch, random.Random(3))
            result = program(torch.optim.lr_scheduler, optimizer)
            return result, [float(g["lr"]) for g in optimizer.param_groups]
        case(f"sched/warnings/{name}")(warning_case)

    errors = {
        "StepLR_step_size_str": lambda s, o: s.StepLR(o, "2"),
        "MultiStepLR_milestones_int": lambda s, o: s.MultiStepLR(o, 3),
        "ConstantLR_factor_above_1": lambda s, o: s.ConstantLR(o, factor=1.5),
        "ConstantLR_factor_negative": lambda s, o: s.ConstantLR(o, factor=-0.1),
        "LinearLR_start_factor_0": lambda s, o: s.LinearLR(o, start_factor=0),
        "LinearLR_start_factor_above_1": lambda s, o: s.LinearLR(o, start_factor=1.5),
        "LinearLR_end_factor_above_1": lambda s, o: s.LinearLR(o, end_factor=1.5),
        "ExponentialLR_gamma_str": lambda s, o: s.ExponentialLR(o, "a"),
        "PolynomialLR_total_iters_0": lambda s, o: s.PolynomialLR(o, total_iters=0),
        "CosineAnnealingLR_T_max_0": lambda s, o: (o.step(), s.CosineAnnealingLR(o, 0).step()),
        "CosineAnnealingWarmRestarts_T_0_0": lambda s, o: s.CosineAnnealingWarmRestarts(o, 0),
        "CosineAnnealingWarmRestarts_T_0_float": lambda s, o: s.CosineAnnealingWarmRestarts(o, 2.5),
        "CosineAnnealingWarmRestarts_T_mult_0": lambda s, o: s.CosineAnnealingWarmRestarts(o, 2, T_mult=0),
        "CosineAnnealingWarmRestarts_T_mult_float": lambda s, o: s.CosineAnnealingWarmRestarts(o, 2, T_mult=1.5),
        "CosineAnnealingWarmRestarts_eta_min_str": lambda s, o: s.CosineAnnealingWarmRestarts(o, 2, eta_min="a"),
        "CosineAnnealingWarmRestarts_negative_epoch": lambda s, o: s.CosineAnnealingWarmRestarts(o, 2).step(-1),
        "CyclicLR_bad_mode": lambda s, o: s.CyclicLR(o, 0.01, 0.1, mode="nope"),
        "CyclicLR_max_lr_list_length": lambda s, o: s.CyclicLR(o, 0.01, [0.1, 0.2, 0.3]),
        "CyclicLR_no_momentum": lambda s, o: s.CyclicLR(_plain_sgd(o), 0.01, 0.1),
        "OneCycleLR_no_steps": lambda s, o: s.OneCycleLR(o, 0.1),
        "OneCycleLR_total_steps_0": lambda s, o: s.OneCycleLR(o, 0.1, total_steps=0),
        "OneCycleLR_total_steps_float": lambda s, o: s.OneCycleLR(o, 0.1, total_steps=2.5),
        "OneCycleLR_epochs_0": lambda s, o: s.OneCycleLR(o, 0.1, epochs=0, steps_per_epoch=3),
        "OneCycleLR_steps_per_epoch_0": lambda s, o: s.OneCycleLR(o, 0.1, epochs=2, steps_per_epoch=0),
        "OneCycleLR_pct_start_above_1": lambda s, o: s.OneCycleLR(o, 0.1, total_steps=10, pct_start=1.5),
        "OneCycleLR_bad_strategy": lambda s, o: s.OneCycleLR(o, 0.1, total_steps=10, anneal_strategy="x"),
        "OneCycleLR_past_total_steps": lambda s, o: [_step(sch, o, None) for sch in [s.OneCycleLR(o, 0.1, total_steps=3)]
                                                     for _ in range(4)],
        "ReduceLROnPlateau_factor_1": lambda s, o: s.ReduceLROnPlateau(o, factor=1.0),
        "ReduceLROnPlateau_bad_mode": lambda s, o: s.ReduceLROnPlateau(o, mode="x"),
        "ReduceLROnPlateau_bad_threshold_mode": lambda s, o: s.ReduceLROnPlateau(o, threshold_mode="x"),
        "ReduceLROnPlateau_min_lr_list_length": lambda s, o: s.ReduceLROnPlateau(o, min_lr=[0.1]),
        "ReduceLROnPlateau_step_without_metric": lambda s, o: s.ReduceLROnPlateau(o).step(),
        "LambdaLR_list_length": lambda s, o: s.LambdaLR(o, [lambda e: 1.0]),
        "MultiplicativeLR_list_length": lambda s, o: s.MultiplicativeLR(o, [lambda e: 1.0] * 3),
        "SequentialLR_milestones_count": lambda s, o: s.SequentialLR(o, [s.ConstantLR(o), s.ConstantLR(o)], [1, 2]),
        "SequentialLR_empty": lambda s, o: s.SequentialLR(o, [], []),
        "SequentialLR_plateau": lambda s, o: s.SequentialLR(o, [s.ConstantLR(o), s.ReduceLROnPlateau(o)], [1]),
        "ChainedScheduler_empty": lambda s, o: s.ChainedScheduler([]),
        "ChainedScheduler_other_optimizer": lambda s, o: s.ChainedScheduler([s.ConstantLR(o), s.ConstantLR(_plain_sgd(o))]),
        "resume_without_initial_lr": lambda s, o: s.StepLR(o, 2, last_epoch=3),
        "not_an_optimizer": lambda s, o: s.StepLR(object(), 2),
    }
    for name, program in errors.items():
        def error_case(torch, program=program):
            optimizer = _optimizer(torch, random.Random(4))
            result = program(torch.optim.lr_scheduler, optimizer)
            return result if isinstance(result, (list, tuple, type(None))) else type(result).__name__
        case(f"sched/errors/{name}")(error_case)

    swa_errors = {
        "SWALR_bad_strategy": lambda u, o: u.SWALR(o, 0.05, anneal_strategy="x"),
        "SWALR_anneal_epochs_negative": lambda u, o: u.SWALR(o, 0.05, anneal_epochs=-1),
        "SWALR_anneal_epochs_float": lambda u, o: u.SWALR(o, 0.05, anneal_epochs=2.5),
        "SWALR_swa_lr_list_length": lambda u, o: u.SWALR(o, [0.05, 0.01, 0.1]),
    }
    for name, program in swa_errors.items():
        case(f"sched/errors/{name}", ("optim.swa_utils.SWALR",))(
            lambda torch, program=program: type(program(torch.optim.swa_utils, _optimizer(torch, random.Random(4))))
            .__name__)


def _plain_sgd(optimizer):
    """An optimizer without momentum, of the same library as ``optimizer``."""
    library = sys.modules[type(optimizer).__module__.split(".")[0]]
    return library.optim.SGD([library.nn.Parameter(library.ones(1))], lr=0.1)


_loader_cases()
_sampler_cases()
_dataset_cases()
_collate_cases()
_iterable_cases()
_scheduler_cases()


# ----------------------------------------------------------------------------------------------
# running and comparing
# ----------------------------------------------------------------------------------------------

def plain(value):
    """A JSON-able description of a result: tensors as dtype, shape and values; containers tagged
    with their type (so a tuple returned for a list, or a list for a namedtuple, is a difference)."""
    import numpy as np

    type_name = type(value).__name__
    if type_name in ("Tensor", "Parameter"):
        return {"tensor": str(value.dtype).rpartition(".")[2], "shape": list(value.shape),
                "values": value.detach().tolist()}
    if isinstance(value, np.ndarray):
        return {"ndarray": str(value.dtype), "values": value.tolist()}
    if isinstance(value, np.generic):
        return {"numpy": str(value.dtype), "value": value.item()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return {"namedtuple": type_name, "items": [plain(item) for item in value]}
    if isinstance(value, dict):
        return {"dict": [[plain(key), plain(item)] for key, item in value.items()]}
    if isinstance(value, (list, tuple)):
        return {type(value).__name__ if type(value) in (list, tuple) else "sequence": [plain(item) for item in value]}
    if isinstance(value, bytes):
        return {"bytes": repr(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return {"object": type_name}


def _run(case, library):
    """(exception description or None, plain result, [warning categories], [warning messages])."""
    import numpy as np

    random.seed(0)
    np.random.seed(0)
    library.manual_seed(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with time_limit(SECONDS_PER_CASE, CaseTimeout):
                result = plain(case.program(library))
            error = None
        except CaseTimeout as exc:
            result, error = None, {"class": "CaseTimeout", "builtin": "CaseTimeout", "message": str(exc)}
        except Exception as exc:  # the programs are meant to raise where torch does: any exception is an outcome
            result, error = None, {"class": type(exc).__name__, "builtin": _builtin_class(exc).__name__,
                                   "message": str(exc)[:400]}
    relevant = [w for w in caught if not _is_noise(w)]
    return error, result, sorted({w.category.__name__ for w in relevant}), [str(w.message)[:200] for w in relevant]


def _is_noise(warning) -> bool:
    # multiprocessing's fork-with-threads DeprecationWarning depends on which threads the process has
    return "fork()" in str(warning.message) or "os.fork" in str(warning.message)


def _builtin_class(exc) -> type:
    for cls in type(exc).__mro__:
        if cls.__module__ == "builtins":
            return cls
    return Exception


def _ints(value):
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _ints(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _ints(item)


def _skeleton(value):
    """``value`` with every int (not bool) replaced by 0: equal skeletons and equal multisets of
    ints mean the same integers in another order."""
    if isinstance(value, int) and not isinstance(value, bool):
        return 0
    if isinstance(value, list):
        return [_skeleton(item) for item in value]
    if isinstance(value, dict):
        return {key: _skeleton(item) for key, item in value.items()}
    return value


def _close(expected, actual) -> bool:
    if isinstance(expected, float) and isinstance(actual, (int, float)) and not isinstance(actual, bool):
        if math.isnan(expected):
            return isinstance(actual, float) and math.isnan(actual)
        return math.isclose(expected, actual, rel_tol=1e-6, abs_tol=1e-12)
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(_close(e, a) for e, a in zip(expected, actual))
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(_close(expected[k], actual[k]) for k in expected)
    return type(expected) is type(actual) and expected == actual


def _missing(case):
    import chainrule

    for dotted in case.needs:
        value = chainrule
        for part in dotted.split("."):
            if not hasattr(value, part):
                return dotted
            value = getattr(value, part)
    return None


def run_case(case):
    import torch

    import chainrule

    record = {"case": case.name, "group": case.name.split("/")[0]}
    torch_error, torch_result, torch_warnings, torch_messages = _run(case, torch)
    absent = _missing(case)
    if absent:
        return {**record, "kind": "missing", "missing": absent}
    error, result, chainrule_warnings, chainrule_messages = _run(case, chainrule)
    if torch_error:
        record["torch"] = f"{torch_error['class']}: {torch_error['message']}"
    if error:
        record["chainrule"] = f"{error['class']}: {error['message']}"
    if torch_warnings or chainrule_warnings:
        record["warnings"] = {"torch": torch_messages, "chainrule": chainrule_messages}
    if error and error["class"] == "AttributeError" and "chainrule" in error["message"] and "has no attribute" in \
            error["message"]:
        return {**record, "kind": "missing"}
    if torch_error and error:
        if not issubclass(getattr(builtins, error["builtin"], Exception),
                          getattr(builtins, torch_error["builtin"], Exception)):
            return {**record, "kind": "error_class_differs"}
        if case.messages and torch_error["message"] != error["message"]:
            return {**record, "kind": "values_differ", "difference": "exception message"}
    elif torch_error:
        return {**record, "kind": "torch_only_raised", "chainrule_result": str(result)[:300]}
    elif error:
        return {**record, "kind": "chainrule_only_raised"}
    elif not _close(torch_result, result):
        expected_ints, actual_ints = list(_ints(torch_result)), list(_ints(result))
        reordered = expected_ints and sorted(expected_ints) == sorted(actual_ints) and \
            _close(_skeleton(torch_result), _skeleton(result))
        kind = "order_differs" if reordered else "values_differ"
        return {**record, "kind": kind, "torch_result": str(torch_result)[:600], "chainrule_result": str(result)[:600]}
    if torch_warnings != chainrule_warnings:
        return {**record, "kind": "warning_differs"}
    return {**record, "kind": "same"}


def run(out, pattern=None):
    import torch  # noqa: F401  (both imported before any case, so the timings are the cases')

    import chainrule  # noqa: F401

    os.makedirs(out, exist_ok=True)
    records = []
    for case in CASES:
        if pattern and not re.search(pattern, case.name):
            continue
        records.append(run_case(case))
    with open(os.path.join(out, "cases.json"), "w") as handle:
        json.dump(records, handle, indent=1)
    print(count_table(records))
    return records


def count_table(records) -> str:
    by_group = collections.defaultdict(collections.Counter)
    for record in records:
        by_group[record["group"]][record["kind"]] += 1
    by_group["all"] = sum(by_group.values(), collections.Counter())
    lines = ["| group | " + " | ".join(KINDS) + " | cases |", "|---" * (len(KINDS) + 2) + "|"]
    for group, counts in by_group.items():
        lines.append(f"| {group} | " + " | ".join(str(counts[kind]) for kind in KINDS) + f" | {sum(counts.values())} |")
    return "\n".join(lines)


def show(out, kind, pattern=None):
    with open(os.path.join(out, "cases.json")) as handle:
        records = json.load(handle)
    for record in records:
        if record["kind"] == kind and (not pattern or re.search(pattern, json.dumps(record))):
            print(json.dumps(record))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run")
    run_parser.add_argument("--out", required=True)
    run_parser.add_argument("--filter", help="regular expression searched in the case's name")
    show_parser = commands.add_parser("show")
    show_parser.add_argument("--out", required=True)
    show_parser.add_argument("--kind", required=True, choices=KINDS)
    show_parser.add_argument("--filter", help="regular expression searched in the record")
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.out, args.filter)
    else:
        show(args.out, args.kind, args.filter)


if __name__ == "__main__":
    main()
