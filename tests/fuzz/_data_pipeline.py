"""Random data pipelines, drawn from a seed and run on torch.utils.data and on chainrule.utils.data (the
interpreter of tests/fuzz/test_data_pipeline.py).

A case is plain data (``Case.spec``): a dataset recipe (a TensorDataset of 1-3 tensors, 0-d, empty,
int, bool ones too; a Python list; a custom Dataset whose samples are tensors, dicts, tuples,
namedtuples, NumPy arrays and scalars, numbers, strings, bytes, None, nested or ragged lists; Subset,
ConcatDataset, random_split by lengths or fractions, StackDataset; an IterableDataset with and without
``__len__``, ChainDataset), a sampler and batch sampler recipe (Sequential, Random with replacement,
num_samples and a generator, SubsetRandom, WeightedRandom, BatchSampler, a plain list, custom ones)
and the DataLoader's arguments (valid and invalid combinations). A ``collate`` case is a batch given
to ``default_collate`` and a sample given to ``default_convert``. Nothing in a recipe depends on the
library, so one case is the same pipeline on both.

``run_case`` builds the pipeline and records, step by step, what each step gives: ``len()`` of the
dataset, sampler, batch sampler and loader, every batch of two epochs (structure, types, dtypes,
shapes, strides, values; the first epoch sometimes abandoned after a few batches), a draw from the
default generator and from the loader's generator after them (so a library that consumes its random
stream differently shows), each error (its builtin class
and its message's first line, library names and addresses taken out) and the warnings.
``first_difference`` names the first step where two records differ.
"""

from __future__ import annotations

import collections
import dataclasses
import random
import re
import warnings

import numpy as np

DTYPES = ["float32", "float32", "float64", "int64", "int32", "bool", "uint8"]
TRAILING = [(), (), (2,), (3,), (2, 1), (0,)]
SAMPLE_KINDS = ["tensor", "dict", "tuple", "namedtuple", "numpy", "npscalar", "int", "float", "bool",
                "str", "bytes", "none", "nested", "ragged_tensor", "ragged_list", "int_then_float", "list_of_str",
                "ordered_dict", "defaultdict", "complex", "big_int", "numpy_str", "requires_grad", "float_then_int",
                "dtype_mix", "set", "numpy_0d"]
# samples only default_collate sees directly: batches no dataset would give
COLLATE_KINDS = ["mixed", "numpy_dtypes", "mapping_keys", "unequal_tuples", "empty_batch"]
FAMILIES = {
    # family -> weights of dataset kinds, and how often the loader's arguments are hostile
    "tensors": ({"tensors": 6, "list": 1, "subset": 2, "concat": 1, "split": 2, "stack": 1}, 0.1),
    "custom": ({"custom": 6, "subset": 1, "concat": 1, "split": 1, "stack": 1}, 0.1),
    "samplers": ({"tensors": 3, "custom": 2, "list": 1, "split": 1}, 0.05),
    "iterable": ({"iterable": 4, "chain": 2}, 0.2),
    "arguments": ({"tensors": 2, "custom": 1, "iterable": 1}, 1.0),
    "workers": ({"tensors": 2, "custom": 2, "iterable": 2, "subset": 1}, 0.05),
    "collate": ({}, 0.0),
}

Point = collections.namedtuple("Point", ["x", "y"])


@dataclasses.dataclass
class Case:
    family: str
    seed: int
    spec: dict

    def __repr__(self):
        return f"{self.family}#{self.seed}: {_short(self.spec)}"


def _short(value) -> str:
    if isinstance(value, np.ndarray):
        return f"array{value.shape}:{value.dtype}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_short(v) for v in value[:12]) + (", ..." if len(value) > 12 else "")
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    return repr(value)


# ---------------------------------------------------------------- drawing
class _Drawer:
    def __init__(self, family: str, seed: int):
        self.family = family
        self.rng = random.Random(f"data:{family}:{seed}")
        self.data = np.random.default_rng([seed, len(family), 59])

    def chance(self, p):
        return self.rng.random() < p

    def array(self, n, trailing=None, dtype=None):
        trailing = self.rng.choice(TRAILING) if trailing is None else trailing
        dtype = dtype or self.rng.choice(DTYPES)
        values = self.data.integers(-5, 6, size=(n, *trailing))
        if dtype == "bool":
            return values > 0
        if dtype == "uint8":
            return np.abs(values).astype(np.uint8)
        if dtype.startswith("float"):
            return (values + self.data.uniform(-0.5, 0.5, size=values.shape)).round(3).astype(dtype)
        return values.astype(dtype)

    def length(self):
        return self.rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])

    def dataset(self, kinds, depth=0, n=None):
        names = list(kinds)
        kind = self.rng.choices(names, [kinds[k] for k in names])[0]
        if depth >= 1 and kind in ("subset", "concat", "split", "stack", "chain"):
            kind = "tensors" if "tensors" in kinds or "iterable" not in kinds else "iterable"
        n = self.length() if n is None else n
        if kind == "tensors":
            count = self.rng.choice([1, 1, 2, 2, 3])
            arrays = [self.array(n) for _ in range(count)]
            if self.chance(0.04):
                arrays[-1] = arrays[-1][:max(n - 1, 0)] if n else self.array(1)  # a size mismatch
            if self.chance(0.03):
                arrays[0] = np.asarray(arrays[0].reshape(-1)[:1].sum())  # a 0-d tensor
            return {"kind": "tensors", "arrays": arrays}
        if kind == "list":
            items = [self.rng.choice([self.rng.randint(-9, 9), round(self.rng.uniform(-2, 2), 3)])
                     if self.chance(0.5) else (self.rng.randint(0, 9), round(self.rng.uniform(0, 1), 3))
                     for _ in range(n)]
            if items and self.chance(0.6):  # one type throughout, as a real list dataset is
                items = [items[0] if not isinstance(items[0], tuple) else (i, float(i) / 4) for i in range(n)]
            return {"kind": "list", "items": items}
        if kind == "custom":
            sample = self.rng.choice(SAMPLE_KINDS)
            return {"kind": "custom", "n": n, "sample": sample, "data": self.array(max(n, 1), dtype=None)}
        if kind == "subset":
            base = self.dataset({k: v for k, v in kinds.items() if k not in ("subset",)} | {"tensors": 1}, depth + 1)
            size = _spec_len(base)
            indices = [self.rng.randrange(-size, size) if self.chance(0.1) else self.rng.randrange(size)
                       for _ in range(self.rng.randint(0, 6))] if size else []
            if self.chance(0.1):
                indices = self.rng.sample(range(size), size) if size else []
            return {"kind": "subset", "base": base, "indices": indices}
        if kind == "concat":
            parts = [self.dataset({"tensors": 3, "custom": 1, "list": 1}, depth + 1)
                     for _ in range(self.rng.choice([1, 2, 2, 3]))]
            return {"kind": "concat", "parts": parts}
        if kind == "split":
            base = self.dataset({"tensors": 3, "custom": 1, "list": 1}, depth + 1)
            size = _spec_len(base)
            parts = self.rng.choice([1, 2, 2, 3])
            if self.chance(0.5):
                fractions = [self.rng.choice([0.1, 0.2, 0.25, 0.3, 0.5]) for _ in range(parts - 1)]
                fractions.append(round(1 - sum(fractions), 10))
                if self.chance(0.1):
                    fractions[-1] += 0.1  # fractions summing to other than 1
                lengths = fractions
            else:
                cuts = sorted(self.rng.randint(0, size) for _ in range(parts - 1))
                lengths = [b - a for a, b in zip([0, *cuts], [*cuts, size])]
                if self.chance(0.1):
                    lengths[-1] += self.rng.choice([-1, 1])
            generator = self.rng.choice([None, self.rng.randint(0, 10**6)])
            return {"kind": "split", "base": base, "lengths": lengths, "which": self.rng.randrange(parts),
                    "generator": generator}
        if kind == "stack":
            parts = [self.dataset({"tensors": 3, "custom": 1, "list": 1}, depth + 1, n=n)
                     for _ in range(self.rng.choice([1, 2, 3]))]
            if self.chance(0.08):
                parts.append(self.dataset({"tensors": 1}, depth + 1, n=n + 1))  # a size mismatch
            return {"kind": "stack", "parts": parts, "named": self.chance(0.5)}
        if kind == "iterable":
            sample = self.rng.choice(["tensor", "tensor", "dict", "tuple", "int", "float", "numpy", "str"])
            has_len = self.rng.choice([None, "right", "short", "long"])
            return {"kind": "iterable", "n": n, "sample": sample, "data": self.array(max(n, 1)), "len": has_len}
        if kind == "chain":
            parts = [self.dataset({"iterable": 1}, depth + 1) for _ in range(self.rng.choice([1, 2, 3]))]
            return {"kind": "chain", "parts": parts}
        raise AssertionError(kind)

    def generator(self):
        return self.rng.randint(0, 10**6) if self.chance(0.5) else None

    def sampler(self, size):
        kind = self.rng.choice(["sequential", "random", "random", "subset_random", "weighted", "list", "custom"])
        if kind == "sequential":
            return {"kind": kind}
        if kind == "random":
            spec = {"kind": kind, "replacement": self.chance(0.3), "generator": self.generator()}
            if self.chance(0.4):
                spec["num_samples"] = self.rng.choice([1, 3, 5, 11, 0, -1]) if self.chance(0.9) else 2.5
            return spec
        if kind == "subset_random":
            indices = [self.rng.randrange(size) for _ in range(self.rng.randint(0, 6))] if size else []
            return {"kind": kind, "indices": indices, "generator": self.generator()}
        if kind == "weighted":
            count = self.rng.choice([size, size, 3, 1]) or 1
            weights = [round(self.rng.uniform(0, 2), 3) for _ in range(count)]
            if self.chance(0.1):
                weights[0] = 0.0
            return {"kind": kind, "weights": weights, "num_samples": self.rng.choice([1, 2, 4, 7, 0, -1]),
                    "replacement": self.chance(0.6), "generator": self.generator()}
        indices = [self.rng.randrange(size) for _ in range(self.rng.randint(0, 8))] if size else []
        return {"kind": kind, "indices": indices}

    def batch_sampler(self, size):
        kind = self.rng.choice(["batch", "batch", "list", "custom"])
        if kind == "batch":
            batch_size = self.rng.choice([1, 2, 3, 4]) if self.chance(0.93) else self.rng.choice([0, -2, 2.0, True])
            drop_last = self.chance(0.5) if self.chance(0.95) else self.rng.choice([1, None, "yes"])
            return {"kind": kind, "sampler": self.sampler(size), "batch_size": batch_size, "drop_last": drop_last}
        batches = [[self.rng.randrange(size) for _ in range(self.rng.randint(1, 4))]
                   for _ in range(self.rng.randint(0, 4))] if size else []
        return {"kind": kind, "batches": batches}

    def loader(self, dataset, hostile_rate):
        size = _spec_len(dataset) if dataset["kind"] not in ("iterable", "chain") else (dataset.get("n") or 3)
        args: dict = {}
        draw = self.rng.random()
        if draw < 0.15:
            args["batch_sampler"] = self.batch_sampler(size)
        else:
            if self.chance(0.8):
                args["batch_size"] = self.rng.choice([1, 2, 2, 3, 3, 4, 5, None])
            if self.chance(0.3):
                args["sampler"] = self.sampler(size)
            elif self.chance(0.5):
                args["shuffle"] = self.rng.choice([True, True, False, None])
            if self.chance(0.4):
                args["drop_last"] = self.chance(0.7)
        if self.chance(0.4):
            args["generator"] = self.rng.randint(0, 10**6)
        if self.chance(0.25):
            args["collate_fn"] = self.rng.choice(["custom", "identity", "default_convert"])
        if self.chance(0.1):
            args["worker_init_fn"] = True
        if self.chance(0.05):
            args["pin_memory"] = True
        if self.chance(0.15):
            args["stop_after"] = self.rng.choice([0, 1, 2])  # the first epoch abandoned after so many batches
        if self.family == "workers":
            args["num_workers"] = self.rng.choice([1, 2])
            args["persistent_workers"] = self.chance(0.3)
            if self.chance(0.3):
                args["prefetch_factor"] = self.rng.choice([1, 3])
        if self.chance(hostile_rate):
            hostile = self.rng.choice(["bs_with_batch_sampler", "shuffle_with_batch_sampler",
                                       "sampler_with_batch_sampler", "drop_last_with_batch_sampler",
                                       "shuffle_with_sampler", "negative_batch_size", "zero_batch_size",
                                       "negative_timeout", "drop_last_without_batching",
                                       "shuffle_iterable", "sampler_iterable", "batch_sampler_iterable",
                                       "float_batch_size", "timeout_without_workers"])
            args["hostile"] = hostile
            if hostile.endswith("with_batch_sampler") or hostile == "batch_sampler_iterable":
                args.pop("batch_size", None)
                args.setdefault("batch_sampler", self.batch_sampler(size))
                args.pop("sampler", None)
                args.pop("shuffle", None)
                args.pop("drop_last", None)
            if hostile == "bs_with_batch_sampler":
                args["batch_size"] = self.rng.choice([2, 3, None])
            elif hostile == "shuffle_with_batch_sampler":
                args["shuffle"] = True
            elif hostile == "sampler_with_batch_sampler":
                args["sampler"] = self.sampler(size)
            elif hostile == "drop_last_with_batch_sampler":
                args["drop_last"] = True
            elif hostile == "shuffle_with_sampler":
                args["sampler"] = self.sampler(size)
                args["shuffle"] = True
            elif hostile == "negative_batch_size":
                args["batch_size"] = -1
            elif hostile == "zero_batch_size":
                args["batch_size"] = 0
            elif hostile == "negative_timeout":
                args["timeout"] = -1
            elif hostile == "timeout_without_workers":
                args["timeout"] = 1
            elif hostile == "drop_last_without_batching":
                args["batch_size"] = None
                args["drop_last"] = True
            elif hostile == "shuffle_iterable":
                args["shuffle"] = True
            elif hostile == "sampler_iterable":
                args["sampler"] = self.sampler(size)
            elif hostile == "float_batch_size":
                args["batch_size"] = 2.0
        return args

    def collate_batch(self):
        kind = self.rng.choice(SAMPLE_KINDS + COLLATE_KINDS)
        size = self.rng.choice([1, 2, 3, 4])
        return {"kind": kind, "size": size, "data": self.array(max(size, 2)),
                "convert": self.rng.choice(SAMPLE_KINDS)}


def _spec_len(spec) -> int:
    kind = spec["kind"]
    if kind == "tensors":
        return len(spec["arrays"][0]) if spec["arrays"][0].ndim else 0
    if kind == "list":
        return len(spec["items"])
    if kind in ("custom", "iterable"):
        return spec["n"]
    if kind == "subset":
        return len(spec["indices"])
    if kind == "concat":
        return sum(_spec_len(p) for p in spec["parts"])
    if kind == "split":
        return max(_spec_len(spec["base"]) // len(spec["lengths"]), 0)
    if kind == "stack":
        return _spec_len(spec["parts"][0])
    if kind == "chain":
        return sum(_spec_len(p) for p in spec["parts"])
    raise AssertionError(kind)


def draw_case(family: str, seed: int) -> Case:
    drawer = _Drawer(family, seed)
    kinds, hostile_rate = FAMILIES[family]
    if family == "collate":
        return Case(family, seed, {"collate": drawer.collate_batch(), "default_seed": seed})
    dataset = drawer.dataset(kinds)
    spec = {"dataset": dataset, "loader": drawer.loader(dataset, hostile_rate), "default_seed": seed}
    if family == "samplers" and "sampler" not in spec["loader"] and "batch_sampler" not in spec["loader"]:
        spec["loader"]["sampler"] = drawer.sampler(_spec_len(dataset))
        spec["loader"].pop("shuffle", None)
    return Case(family, seed, spec)


# ---------------------------------------------------------------- building, per library
_CLASSES: dict = {}


def _sample(lib, kind, data, i):
    """Sample ``i`` of a custom dataset whose samples are of ``kind``."""
    row = data[i % len(data)]
    if kind == "tensor":
        return lib.tensor(row)
    if kind == "dict":
        return {"x": lib.tensor(row), "y": i, "name": f"s{i}"}
    if kind == "tuple":
        return (lib.tensor(row), float(i) / 2)
    if kind == "namedtuple":
        return Point(lib.tensor(row), i)
    if kind == "numpy":
        return np.array(row)
    if kind == "npscalar":
        return row.reshape(-1)[0] if row.size else np.float32(i)
    if kind == "int":
        return i - 3
    if kind == "float":
        return i / 4
    if kind == "bool":
        return bool(i % 2)
    if kind == "str":
        return f"item{i}"
    if kind == "bytes":
        return b"b%d" % i
    if kind == "none":
        return None
    if kind == "nested":
        return [[i, i + 1], [float(i), 0.5], {"k": i}]
    if kind == "ragged_tensor":
        return lib.arange(i % 3 + 1)
    if kind == "ragged_list":
        return list(range(i % 3 + 1))
    if kind == "int_then_float":
        return i if i % 2 == 0 else i + 0.5
    if kind == "list_of_str":
        return [f"a{i}", f"b{i}"]
    if kind == "mixed":
        return [lib.tensor(row), np.array(row), i, float(i)][i % 4]
    if kind == "numpy_dtypes":
        # one dtype a batch, which the data's length picks
        return np.array(row).astype(["float16", "int16", "int8", "uint8", "float64", "bool"][len(data) % 6])
    if kind == "mapping_keys":
        return {"a": i, "b": float(i)} if i == 0 else {"a": i, "c": float(i)}
    if kind == "unequal_tuples":
        return tuple(range(i + 1))
    if kind == "ordered_dict":
        return collections.OrderedDict([("b", lib.tensor(row)), ("a", i)])
    if kind == "defaultdict":
        return collections.defaultdict(list, {"x": float(i), "y": [i, i]})
    if kind == "complex":
        return complex(i, 1)
    if kind == "big_int":
        return 2**62 * (i + 1)  # past int64 from the second sample on
    if kind == "numpy_str":
        return np.array([f"s{i}", "t"])
    if kind == "requires_grad":
        return lib.tensor(row.astype(np.float32)).requires_grad_() * 2
    if kind == "float_then_int":
        return float(i) if i == 0 else i
    if kind == "dtype_mix":
        return lib.tensor(row.astype(["float32", "int64", "float64", "bool"][i % 4]))
    if kind == "set":
        return {i, i + 1}
    if kind == "numpy_0d":
        return np.array(row.reshape(-1)[0] if row.size else i)
    raise AssertionError(kind)


def _classes(lib):
    if lib.__name__ in _CLASSES:
        return _CLASSES[lib.__name__]
    data = lib.utils.data

    class CustomDataset(data.Dataset):
        def __init__(self, n, sample, array):
            self.n, self.sample, self.array = n, sample, array

        def __getitem__(self, index):
            if not isinstance(index, int) or not -self.n <= index < self.n:
                raise IndexError(f"index {index} out of range")
            return _sample(lib, self.sample, self.array, index % self.n)

        def __len__(self):
            return self.n

    class Stream(data.IterableDataset):
        def __init__(self, n, sample, array):
            self.n, self.sample, self.array = n, sample, array

        def __iter__(self):
            return (_sample(lib, self.sample, self.array, i) for i in range(self.n))

    class SizedStream(Stream):
        def __init__(self, n, sample, array, length):
            super().__init__(n, sample, array)
            self.length = length

        def __len__(self):
            return self.length

    class ListSampler(data.Sampler):
        def __init__(self, indices):
            self.indices = indices

        def __iter__(self):
            return iter(self.indices)

        def __len__(self):
            return len(self.indices)

    class ListBatchSampler(data.Sampler):
        def __init__(self, batches):
            self.batches = batches

        def __iter__(self):
            return (list(b) for b in self.batches)

        def __len__(self):
            return len(self.batches)

    _CLASSES[lib.__name__] = classes = {"custom": CustomDataset, "stream": Stream, "sized_stream": SizedStream,
                                        "sampler": ListSampler, "batch_sampler": ListBatchSampler}
    return classes


def _generator(lib, seed):
    return None if seed is None else lib.Generator().manual_seed(seed)


def build_dataset(lib, spec):
    data, kind = lib.utils.data, spec["kind"]
    classes = _classes(lib)
    if kind == "tensors":
        return data.TensorDataset(*(lib.tensor(a) for a in spec["arrays"]))
    if kind == "list":
        return list(spec["items"])
    if kind == "custom":
        return classes["custom"](spec["n"], spec["sample"], spec["data"])
    if kind == "subset":
        return data.Subset(build_dataset(lib, spec["base"]), spec["indices"])
    if kind == "concat":
        return data.ConcatDataset([build_dataset(lib, p) for p in spec["parts"]])
    if kind == "split":
        splits = data.random_split(build_dataset(lib, spec["base"]), spec["lengths"],
                                   generator=_generator(lib, spec["generator"])
                                   if spec["generator"] is not None else lib.default_generator)
        return splits[spec["which"]]
    if kind == "stack":
        parts = [build_dataset(lib, p) for p in spec["parts"]]
        return data.StackDataset(**{f"d{i}": p for i, p in enumerate(parts)}) if spec["named"] \
            else data.StackDataset(*parts)
    if kind == "iterable":
        n = spec["n"]
        if spec["len"] is None:
            return classes["stream"](n, spec["sample"], spec["data"])
        length = {"right": n, "short": max(n - 2, 0), "long": n + 2}[spec["len"]]
        return classes["sized_stream"](n, spec["sample"], spec["data"], length)
    if kind == "chain":
        return data.ChainDataset([build_dataset(lib, p) for p in spec["parts"]])
    raise AssertionError(kind)


def build_sampler(lib, spec, dataset):
    data, kind = lib.utils.data, spec["kind"]
    if kind == "sequential":
        return data.SequentialSampler(dataset)
    if kind == "random":
        kwargs = {"num_samples": spec["num_samples"]} if "num_samples" in spec else {}
        return data.RandomSampler(dataset, replacement=spec["replacement"], generator=_generator(lib, spec["generator"]),
                                  **kwargs)
    if kind == "subset_random":
        return data.SubsetRandomSampler(spec["indices"], generator=_generator(lib, spec["generator"]))
    if kind == "weighted":
        return data.WeightedRandomSampler(spec["weights"], spec["num_samples"], replacement=spec["replacement"],
                                          generator=_generator(lib, spec["generator"]))
    if kind == "list":
        return list(spec["indices"])
    if kind == "custom":
        return _classes(lib)["sampler"](spec["indices"])
    raise AssertionError(kind)


def build_batch_sampler(lib, spec, dataset):
    if spec["kind"] == "batch":
        return lib.utils.data.BatchSampler(build_sampler(lib, spec["sampler"], dataset), spec["batch_size"],
                                           spec["drop_last"])
    if spec["kind"] == "list":
        return [list(b) for b in spec["batches"]]
    return _classes(lib)["batch_sampler"](spec["batches"])


def _custom_collate(batch):
    return ("custom", len(batch), list(batch))


def _not_called(worker_id):
    raise AssertionError("worker_init_fn is not called without workers")


def _worker_init(worker_id):
    np.random.seed(worker_id)  # something a worker_init_fn does, with no effect on the batches


def loader_kwargs(lib, args, dataset):
    kwargs = {}
    for key, value in args.items():
        if key in ("hostile", "stop_after"):
            continue
        if key == "sampler":
            kwargs[key] = build_sampler(lib, value, dataset)
        elif key == "batch_sampler":
            kwargs[key] = build_batch_sampler(lib, value, dataset)
        elif key == "generator":
            kwargs[key] = _generator(lib, value)
        elif key == "collate_fn":
            kwargs[key] = {"custom": _custom_collate, "identity": lambda batch: batch,
                           "default_convert": lib.utils.data.default_convert}[value]
        elif key == "worker_init_fn":
            kwargs[key] = _worker_init if args.get("num_workers") else _not_called
        else:
            kwargs[key] = value
    return kwargs


# ---------------------------------------------------------------- recording
def normalize(value, lib, depth=0):
    """What we compare of a value: its structure, types, dtypes, shapes, strides and values."""
    if depth > 8:
        return ("deep",)
    if isinstance(value, lib.Tensor):
        # an empty tensor's strides are left out: torch.tensor(ndarray) keeps NumPy's (zeros for an empty
        # array), chainrule's are the contiguous ones, and no batch of an empty tensor reads them
        strides = tuple(value.stride()) if value.numel() else None
        return ("Tensor", str(value.dtype).split(".")[-1], tuple(value.shape), strides,
                repr(value.tolist()), value.requires_grad)
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, repr(value.tolist()))
    if isinstance(value, np.generic):
        return ("npscalar", value.dtype.str, repr(value.item()))
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return ("namedtuple", type(value).__name__, tuple(normalize(v, lib, depth + 1) for v in value))
    if isinstance(value, dict):
        return (type(value).__name__, tuple((k, normalize(v, lib, depth + 1)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(normalize(v, lib, depth + 1) for v in value))
    if value is None or isinstance(value, (str, bytes, int, float, bool)):
        return (type(value).__name__, repr(value))
    return ("object", _library_free(type(value).__qualname__))


def _library_free(text: str) -> str:
    text = re.sub(r"\b(torch|chainrule)\b", "LIB", text)
    return re.sub(r"0x[0-9a-fA-F]+", "0x?", text)


def _builtin_class(error: BaseException) -> str:
    for cls in type(error).__mro__:
        if cls.__module__ == "builtins":
            return cls.__name__
    return type(error).__name__


def error_key(error: BaseException) -> str:
    """The error's builtin class and the first line of its message, library names and addresses out."""
    message = str(error).strip().split("\n")[0]
    return f"{_builtin_class(error)}: {_library_free(message)[:120]}"


class Recorder:
    def __init__(self):
        self.events: list = []

    def step(self, label, thunk):
        """Runs ``thunk``, recording its result (normalized by the thunk), error and warnings; returns
        (ok, result)."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = thunk()
            except Exception as error:  # noqa: BLE001 - the error is what we compare
                self.events.append((label, "raises", error_key(error), _warning_keys(caught)))
                return False, None
        self.events.append((label, "gives", result[0], _warning_keys(caught)))
        return True, result[1]


def _warning_keys(caught) -> tuple:
    keys = []
    for w in caught:
        if issubclass(w.category, DeprecationWarning) and "chainrule" not in str(w.filename):
            continue
        keys.append(f"{w.category.__name__}: {_library_free(str(w.message).split(chr(10))[0])[:100]}")
    return tuple(keys)


def _length(value):
    return (len(value), None)


def run_case(case: Case, lib) -> list:
    """The record of ``case`` on ``lib`` (torch or chainrule): a list of (step, outcome, what, warnings)."""
    recorder = Recorder()
    lib.manual_seed(case.spec["default_seed"])
    if case.family == "collate":
        _run_collate(case.spec["collate"], lib, recorder)
        return recorder.events
    spec, args = case.spec["dataset"], case.spec["loader"]
    ok, dataset = recorder.step("dataset", lambda: (None, build_dataset(lib, spec)))
    if not ok:
        return recorder.events
    recorder.step("len(dataset)", lambda: _length(dataset))
    ok, kwargs = recorder.step("arguments", lambda: (None, loader_kwargs(lib, args, dataset)))
    if not ok:
        return recorder.events
    for name in ("sampler", "batch_sampler"):
        if name in kwargs and hasattr(kwargs[name], "__len__"):
            recorder.step(f"len({name})", lambda name=name: _length(kwargs[name]))
    ok, loader = recorder.step("DataLoader", lambda: (None, lib.utils.data.DataLoader(dataset, **kwargs)))
    if not ok:
        return recorder.events
    recorder.step("len(loader)", lambda: _length(loader))
    for name in ("sampler", "batch_sampler"):
        recorder.step(f"loader.{name}", lambda name=name: (normalize(getattr(loader, name), lib), None))
    for epoch in range(2):
        ok, iterator = recorder.step(f"iter {epoch}", lambda: (None, iter(loader)))
        if not ok:
            break
        batches = 40 if epoch or "stop_after" not in args else args["stop_after"]
        for index in range(batches):  # a sampler with replacement draws as long as asked: 40 batches are plenty
            ok, batch = recorder.step(f"epoch {epoch} batch {index}", lambda iterator=iterator: _next(iterator, lib))
            if not ok or batch is StopIteration:
                break
        del iterator  # a worker iterator's workers stop now, not when a later fork's child collects it
    if getattr(loader, "_iterator", None) is not None:  # persistent workers
        loader._iterator._shutdown_workers()
    recorder.step("default generator after", lambda: (lib.randint(0, 10**6, (2,)).tolist(), None))
    if kwargs.get("generator") is not None:
        recorder.step("generator after", lambda: (lib.randint(0, 10**6, (2,), generator=kwargs["generator"]).tolist(),
                                                  None))
    return recorder.events


def _next(iterator, lib):
    try:
        batch = next(iterator)
    except StopIteration:
        return ("StopIteration", StopIteration)
    return (normalize(batch, lib), batch)


def _run_collate(spec, lib, recorder):
    data = lib.utils.data
    batch = [] if spec["kind"] == "empty_batch" else [_sample(lib, spec["kind"], spec["data"], i)
                                                      for i in range(spec["size"])]
    recorder.step("default_collate", lambda: (normalize(data.default_collate(batch), lib), None))
    sample = _sample(lib, spec["convert"], spec["data"], 1)
    recorder.step("default_convert", lambda: (normalize(data.default_convert(sample), lib), None))
    recorder.step("default_convert(batch)", lambda: (normalize(data.default_convert(batch), lib), None))


def first_difference(case: Case, ours: list, theirs: list) -> str | None:
    """The first step where chainrule's record (``ours``) differs from torch's (``theirs``), or None."""
    for mine, torchs in zip(ours, theirs):
        if mine != torchs:
            label = torchs[0] if torchs[0] == mine[0] else f"{mine[0]} vs torch {torchs[0]}"
            if mine[1:3] != torchs[1:3]:
                return f"{label}: {mine[1]} {_short_repr(mine[2])} vs torch {torchs[1]} {_short_repr(torchs[2])}"
            return f"{label}: warnings {mine[3]} vs torch {torchs[3]}"
    if len(ours) != len(theirs):
        return f"{len(ours)} steps vs torch {len(theirs)}: next {(ours + theirs)[min(len(ours), len(theirs))][:2]}"
    return None


def _short_repr(value) -> str:
    text = repr(value)
    return text if len(text) < 300 else text[:300] + "..."
