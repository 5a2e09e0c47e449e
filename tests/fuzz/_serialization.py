"""Cases of the serialization fuzzer (tests/fuzz/test_serialization.py): drawn from a family and a seed,
run on torch and chainrule, compared.

A case is an object's spec (library-free: what to build, never the values themselves, which a data seed
fixes), how it is saved (a path or an ``io.BytesIO``, the zip or the legacy format, the pickle protocol),
how it is loaded (``weights_only``, ``map_location``, ``mmap``) and, in the ``hostile`` family, how the
saved bytes are mutated before loading. ``run_case`` builds the object in each library, saves it with
each, and loads each file with each library: four (saver, loader) runs. torch's own round trip is the
oracle; ``first_difference`` names the first observable in which one of chainrule's three runs (torch
-> chainrule, chainrule -> torch, chainrule -> chainrule) differs from it: the structure and container
types, a state dict's ``_metadata``, plain values, and of each tensor its class (Parameter or not), dtype,
shape, strides, storage offset, requires_grad, values (bit-exact), and which storage it views (views of
one storage must stay views of one storage, of the same size); or an error's builtin class and, where
torch's message has one of ``KEY_PHRASES``, that phrase. A hostile case's mutated bytes are the same for
both loaders: chainrule must refuse them with torch's error type, or load what torch loads.
"""

from __future__ import annotations

import atexit
import io
import os
import pickle
import random
import shutil
import struct
import tempfile
import warnings
import zipfile
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

FAMILIES = ("tensors", "views", "containers", "state_dicts", "hostile")

DTYPES = ("float32", "float64", "float16", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "bool",
          "complex64", "complex128")
# phrases of torch's messages chainrule's must share (a weights-only refusal, mmap's limits)
KEY_PHRASES = ("Weights only load failed", "f must be a file path in order to use the mmap argument",
               "mmap can only be used with files saved with")


@dataclass(frozen=True)
class Case:
    family: str
    seed: int
    spec: tuple  # the object (see ``build``)
    path: bool  # saved to and loaded from a file path, else an io.BytesIO
    legacy: bool  # _use_new_zipfile_serialization=False
    protocol: int
    weights_only: bool | None
    map_location: str | None  # None, "cpu", "device", "dict", "function"
    mmap: bool | None
    mutation: tuple | None = None  # hostile: how the saved bytes change (see ``mutate``)


# ------------------------------------------------------------------------------------------------ drawing
def _shape(rng: random.Random) -> tuple:
    return rng.choice([(), (0,), (3,), (2, 3), (3, 4), (2, 0, 3), (2, 3, 4), (1, 5), (4, 1, 2)])


def _tensor_spec(rng: random.Random, dtype=None, shape=None) -> tuple:
    dtype = dtype or rng.choice(DTYPES)
    grad = dtype.startswith(("float", "complex", "bfloat")) and rng.random() < 0.3
    return ("tensor", dtype, shape if shape is not None else _shape(rng), rng.randrange(1 << 16), grad)


def _view_ops(rng: random.Random, ndim: int) -> tuple:
    """Ops that keep a view of a tensor of ``ndim`` dims (checked at build time: an op that does not fit
    the shape it meets is skipped alike in both libraries)."""
    ops = []
    for _ in range(rng.randrange(1, 3)):
        kind = rng.choice(["t", "slice", "step", "select", "expand", "unsqueeze", "transpose", "narrow",
                           "flatten", "diagonal", "view_as_real", "conj"])
        ops.append((kind, rng.randrange(4), rng.randrange(3)))
    return tuple(ops)


def _value_spec(rng: random.Random, depth: int, tensors: bool = True) -> tuple:
    roll = rng.random()
    if depth > 0 and roll < 0.35:
        kind = rng.choice(["dict", "odict", "list", "tuple"])
        items = [_value_spec(rng, depth - 1, tensors) for _ in range(rng.randrange(0, 4))]
        if kind in ("dict", "odict"):
            keys = [rng.choice(["w", "b", "step", "x.y", "", "é", 0, 1, -2, 2.5, None, True])
                    for _ in items]
            return (kind, tuple(zip(keys, items)))
        return (kind, tuple(items))
    if tensors and roll < 0.75:
        choice = rng.random()
        if choice < 0.15:
            return ("param", _tensor_spec(rng, rng.choice(("float32", "float64", "float16", "bfloat16"))),
                    rng.random() < 0.7)
        if choice < 0.3:
            return ("views", _tensor_spec(rng, shape=rng.choice([(4, 5), (3, 4, 2), (6,)])),
                    tuple(_view_ops(rng, 2) for _ in range(rng.randrange(1, 4))), rng.random() < 0.5)
        if choice < 0.38:
            return ("nonleaf", _tensor_spec(rng, rng.choice(("float32", "float64")), rng.choice([(3,), (2, 2)])))
        return _tensor_spec(rng)
    return rng.choice([("int", rng.choice([0, -1, 7, 2 ** 40, -2 ** 63])), ("float", rng.choice([0.5, -0.0, 1e300,
                       float("inf"), float("nan")])), ("str", rng.choice(["", "lr", "é\n"])), ("none",),
                       ("bool", rng.random() < 0.5), ("bytes", b"\x00\xff"), ("complex", 1 - 2j)])


MODULES = ("Linear", "Conv1d", "BatchNorm1d", "Sequential", "Embedding", "LayerNorm")
OPTIMIZERS = ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad")


def draw_case(family: str, seed: int) -> Case:
    rng = random.Random(f"serialization:{family}:{seed}")
    if family == "tensors":
        spec = ("list", tuple(_tensor_spec(rng) for _ in range(rng.randrange(1, 5))))
    elif family == "views":
        spec = ("list", tuple(("views", _tensor_spec(rng, shape=rng.choice([(4, 5), (3, 4, 2), (6,), (2, 3)])),
                                tuple(_view_ops(rng, 2) for _ in range(rng.randrange(1, 4))), rng.random() < 0.5)
                               for _ in range(rng.randrange(1, 3))))
    elif family == "containers":
        spec = _value_spec(rng, 3)
        spec = spec if spec[0] in ("dict", "odict", "list", "tuple") else ("dict", (("x", spec),))
    elif family == "state_dicts":
        parts = []
        if rng.random() < 0.8:
            parts.append(("model", ("module_state", rng.choice(MODULES), rng.randrange(1 << 16))))
        if rng.random() < 0.6:
            parts.append(("optim", ("optim_state", rng.choice(OPTIMIZERS), rng.choice(MODULES),
                                    rng.randrange(1 << 16), rng.randrange(0, 3))))
        if rng.random() < 0.4:
            parts.append(("epoch", ("int", rng.randrange(100))))
        spec = ("dict", tuple(parts))
    else:  # hostile
        spec = ("dict", (("w", _tensor_spec(rng, rng.choice(DTYPES[:4]), (3, 4))),
                         ("v", ("views", _tensor_spec(rng, "float32", (4, 5)), (_view_ops(rng, 2),), False)),
                         ("n", ("int", 3))))
    legacy = family != "hostile" and rng.random() < 0.15 or family == "hostile" and rng.random() < 0.2
    path = rng.random() < 0.4
    mutation = _draw_mutation(rng, legacy) if family == "hostile" else None
    return Case(family, seed, spec, path, legacy, rng.choice([2, 2, 2, 4, 5]),
                rng.choice([True, True, False, None]), rng.choice([None, None, "cpu", "device", "dict", "function"]),
                rng.choice([None, None, False, True]) if path or rng.random() < 0.2 else None, mutation)


def _draw_mutation(rng: random.Random, legacy: bool) -> tuple:
    if legacy:
        kind = rng.choice(["truncate", "flip", "empty"])
    else:
        kind = rng.choice(["truncate", "flip_pickle", "flip_storage", "short_storage", "rename", "drop",
                           "global", "global", "empty", "flip"])
    return (kind, rng.random(), rng.randrange(1, 256))


# ------------------------------------------------------------------------------------------------ building
def _numbers(dtype: str, count: int, seed: int) -> np.ndarray:
    generator = np.random.default_rng(seed)
    if dtype == "bool":
        return generator.random(count) < 0.5
    if dtype.startswith("complex"):
        return (generator.standard_normal(count) + 1j * generator.standard_normal(count)).astype(dtype)
    if dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        return generator.integers(info.min, info.max, count, dtype=dtype, endpoint=True)
    values = generator.standard_normal(count) * 4
    values[generator.random(count) < 0.1] = np.nan
    return values.astype("float32" if dtype == "bfloat16" else dtype)


def _tensor(lib, spec):
    _, dtype, shape, data_seed, grad = spec
    count = int(np.prod(shape)) if shape else 1
    values = _numbers(dtype, count, data_seed)
    # from a list: torch.tensor of an empty ndarray keeps NumPy's strides, chainrule's does not
    t = lib.tensor(values.tolist(), dtype=getattr(lib, str(values.dtype))).reshape(shape)
    if dtype == "bfloat16":
        t = t.to(lib.bfloat16)
    return t.requires_grad_(grad) if grad else t


def _view(lib, t, ops):
    for kind, a, b in ops:
        n = t.dim()
        try:
            if kind == "t" and n <= 2:
                t = t.t()
            elif kind == "slice" and n and t.shape[a % n] > 1:
                t = t.narrow(a % n, 1, t.shape[a % n] - 1)
            elif kind == "step" and n:
                t = t[::2] if a % 2 else t[..., ::2]
            elif kind == "select" and n and t.shape[a % n]:
                t = t.select(a % n, b % t.shape[a % n])
            elif kind == "expand" and n:
                t = t.unsqueeze(0).expand(2, *t.shape)
            elif kind == "unsqueeze":
                t = t.unsqueeze(a % (n + 1))
            elif kind == "transpose" and n >= 2:
                t = t.transpose(a % n, b % n)
            elif kind == "narrow" and n and t.shape[0] > b:
                t = t.narrow(0, b, t.shape[0] - b)
            elif kind == "flatten" and n >= 2 and t.is_contiguous():
                t = t.flatten()
            elif kind == "diagonal" and n >= 2:
                t = t.diagonal()
            elif kind == "view_as_real" and t.is_complex() and not t.is_conj():
                t = lib.view_as_real(t)
            elif kind == "conj" and t.is_complex():
                t = t.conj()
        except (RuntimeError, ValueError, IndexError):
            continue
    return t


def _fill(lib, t, seed):
    """``t`` overwritten in place with numbers fixed by ``seed`` (optimizer state: its arithmetic is not
    what this fuzzer compares)."""
    dtype = str(t.dtype).split(".")[-1]
    with lib.no_grad():
        values = lib.tensor(_numbers(dtype if dtype != "bfloat16" else "float32", max(t.numel(), 1), seed))
        t.copy_(values[:t.numel()].reshape(t.shape).to(t.dtype))


def _module(lib, kind, seed):
    nn = lib.nn
    lib.manual_seed(0)
    module = {"Linear": lambda: nn.Linear(3, 2), "Conv1d": lambda: nn.Conv1d(2, 3, 2),
              "BatchNorm1d": lambda: nn.BatchNorm1d(3), "Embedding": lambda: nn.Embedding(4, 2),
              "LayerNorm": lambda: nn.LayerNorm(3),
              "Sequential": lambda: nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.BatchNorm1d(4))}[kind]()
    for index, (_, tensor) in enumerate(list(module.named_parameters()) + list(module.named_buffers())):
        if tensor.is_floating_point():
            _fill(lib, tensor, seed + index)
    return module


def _optimizer_state(lib, kind, module_kind, seed, steps):
    module = _module(lib, module_kind, seed)
    parameters = list(module.parameters())
    options = {"SGD": {"lr": 0.1, "momentum": 0.9}, "Adam": {"lr": 0.01}, "AdamW": {"lr": 0.01, "amsgrad": True},
               "RMSprop": {"lr": 0.01, "centered": True}, "Adagrad": {"lr": 0.1}}[kind]
    optimizer = getattr(lib.optim, kind)(parameters, **options)
    for step in range(steps):
        for index, p in enumerate(parameters):
            p.grad = lib.ones_like(p) * (step + index + 1)
        optimizer.step()
    for index, state in enumerate(optimizer.state.values()):
        for name in sorted(state):
            if hasattr(state[name], "copy_") and state[name].dim():
                _fill(lib, state[name], seed + 100 * index + len(name))
    return optimizer.state_dict()


def build(lib, spec):
    """The object ``spec`` describes, made of ``lib``'s tensors."""
    kind = spec[0]
    if kind == "tensor":
        return _tensor(lib, spec)
    if kind == "param":
        return lib.nn.Parameter(_tensor(lib, spec[1]).detach(), requires_grad=spec[2])
    if kind == "nonleaf":
        leaf = _tensor(lib, spec[1][:4] + (True,))
        return leaf * 2
    if kind == "views":
        base = _tensor(lib, spec[1])
        if base.requires_grad:
            base = base.detach()
        views = [_view(lib, base, ops) for ops in spec[2]]
        return tuple([base, *views]) if spec[3] else [base, *views]
    if kind in ("dict", "odict"):
        made = (dict if kind == "dict" else OrderedDict)((key, build(lib, value)) for key, value in spec[1])
        return made
    if kind == "list":
        return [build(lib, value) for value in spec[1]]
    if kind == "tuple":
        return tuple(build(lib, value) for value in spec[1])
    if kind == "module_state":
        return _module(lib, spec[1], spec[2]).state_dict()
    if kind == "optim_state":
        return _optimizer_state(lib, *spec[1:])
    if kind == "none":
        return None
    return spec[1]


# ------------------------------------------------------------------------------------------------ mutating
def _member_spans(data: bytes) -> dict:
    """Each stored zip member's name -> (begin, end) of its bytes in ``data``."""
    spans = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            at = info.header_offset
            name_length, extra_length = struct.unpack("<HH", data[at + 26:at + 30])
            begin = at + 30 + name_length + extra_length
            spans[info.filename] = (begin, begin + info.compress_size)
    return spans


def _rezip(data: bytes, change) -> bytes:
    """``data``'s zip rewritten (stored, in order) with ``change(name, bytes)`` -> (name, bytes) or None (dropped)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            changed = change(info.filename, source.read(info))
            if changed is not None:
                target.writestr(changed[0], changed[1])
    return out.getvalue()


class _Len:
    """Pickles as a call of ``len``: a callable weights-only loading must refuse (harmless if run)."""

    def __reduce__(self):
        return (len, ("abcd",))


def mutate(data: bytes, mutation: tuple) -> bytes:
    kind, where, byte = mutation
    if kind == "empty":
        return b""
    if kind == "truncate":
        return data[:int(len(data) * where)]
    if kind == "flip":
        at = int(len(data) * where) % max(len(data), 1)
        return data[:at] + bytes([data[at] ^ byte]) + data[at + 1:]
    spans = _member_spans(data)
    pickle_name = next(name for name in spans if name.endswith("/data.pkl"))
    storages = sorted(name for name in spans if "/data/" in name)
    if kind in ("flip_pickle", "flip_storage"):
        name = pickle_name if kind == "flip_pickle" or not storages else storages[int(where * len(storages))]
        begin, end = spans[name]
        if end == begin:
            return data
        at = begin + int((end - begin) * where) % (end - begin)
        return data[:at] + bytes([data[at] ^ byte]) + data[at + 1:]
    if not storages and kind in ("short_storage", "rename", "drop"):
        return data
    target = storages[int(where * len(storages))] if storages else ""
    if kind == "short_storage":
        return _rezip(data, lambda name, content: (name, content[:len(content) * byte // 256]
                                                   if name == target else content))
    if kind == "rename":
        renamed = pickle_name[:-len("data.pkl")] + ("data.pk1" if byte % 2 else "data/99")
        pick = pickle_name if byte % 2 else target
        return _rezip(data, lambda name, content: (renamed if name == pick else name, content))
    if kind == "drop":
        gone = target if byte % 3 else pickle_name[:-len("data.pkl")] + ("version" if byte % 2 else "byteorder")
        return _rezip(data, lambda name, content: None if name == gone else (name, content))
    evil = pickle.dumps({"w": _Len()}, protocol=2)  # "global"
    return _rezip(data, lambda name, content: (name, evil if name == pickle_name else content))


# ------------------------------------------------------------------------------------------------ running
_DIRECTORY = tempfile.mkdtemp(prefix="chainrule-fuzz-serialization-")
atexit.register(shutil.rmtree, _DIRECTORY, ignore_errors=True)


def _location(lib, case):
    return {None: None, "cpu": "cpu", "device": lib.device("cpu"), "dict": {"cpu": "cpu"},
            "function": lambda storage, location: storage}[case.map_location]


def _save(lib, obj, case) -> bytes:
    """``obj`` saved by ``lib`` as ``case`` says, the file's bytes."""
    options = {"pickle_protocol": case.protocol}
    if case.legacy:
        options["_use_new_zipfile_serialization"] = False
    if case.path:
        path = os.path.join(_DIRECTORY, lib.__name__, "checkpoint.pt")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        lib.save(obj, path, **options)
        with open(path, "rb") as stream:
            return stream.read()
    buffer = io.BytesIO()
    lib.save(obj, buffer, **options)
    return buffer.getvalue()


def _load(lib, data: bytes, case):
    options = {"map_location": _location(lib, case)}
    if case.weights_only is not None:
        options["weights_only"] = case.weights_only
    if case.mmap is not None:
        options["mmap"] = case.mmap
    if case.path:
        path = os.path.join(_DIRECTORY, lib.__name__, "loaded.pt")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as stream:
            stream.write(data)
        return lib.load(path, **options)
    return lib.load(io.BytesIO(data), **options)


@dataclass
class Failure:
    error: BaseException
    stage: str


def run_case(case: Case, torch, chainrule) -> dict:
    """Each (saver, loader) pair's record of what it loaded, or a Failure (at saving or loading)."""
    libraries = {"torch": torch, "chainrule": chainrule}
    files, records = {}, {}
    for saver, lib in libraries.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                obj = build(lib, case.spec)
                records["built", saver] = record(obj, lib)
                data = _save(lib, obj, case)
                files[saver] = mutate(data, case.mutation) if case.mutation else data
        except Exception as error:
            files[saver] = Failure(error, "save")
    for saver in libraries:
        for loader, lib in libraries.items():
            if isinstance(files[saver], Failure):
                records[saver, loader] = files[saver]
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    records[saver, loader] = record(_load(lib, files[saver], case), lib)
            except Exception as error:
                records[saver, loader] = Failure(error, "load")
    return records


def _bits(t, lib) -> bytes:
    t = t.detach().resolve_conj() if t.is_complex() else t.detach()
    if t.dtype == lib.bfloat16:
        t = t.view(lib.int16)
    return np.ascontiguousarray(t.numpy()).tobytes()


def record(obj, lib, storages=None, depth=0):
    """A library-free picture of ``obj``: nested tuples of every observable."""
    storages = {} if storages is None else storages
    if depth > 50:
        return ("deep",)
    if isinstance(obj, lib.Tensor):
        storage = obj.untyped_storage()
        # torch's storages of no bytes all point at address 0: none shares anything
        index = storages.setdefault(storage.data_ptr(), len(storages)) if storage.nbytes() else None
        return ("tensor", type(obj).__name__, str(obj.dtype).split(".")[-1], tuple(obj.shape), tuple(obj.stride()),
                obj.storage_offset(), obj.requires_grad, obj.is_leaf, obj.is_conj(), index, storage.nbytes(),
                _bits(obj, lib))
    if isinstance(obj, dict):
        items = tuple((record(key, lib, storages, depth + 1), record(value, lib, storages, depth + 1))
                      for key, value in obj.items())
        metadata = getattr(obj, "_metadata", None)
        return (type(obj).__name__, items, record(metadata, lib, storages, depth + 1))
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, tuple(record(value, lib, storages, depth + 1) for value in obj))
    if isinstance(obj, float):
        return ("float", struct.pack("<d", obj))
    return (type(obj).__name__, repr(obj))


def _builtin(error: BaseException) -> type:
    for cls in type(error).__mro__:
        if cls.__module__ in ("builtins", "_pickle", "pickle"):
            return cls
    return Exception


def _first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [""])[0][:400]


def _error_difference(mine, theirs) -> str | None:
    if isinstance(theirs, Failure):
        expected = _builtin(theirs.error)
        if not isinstance(mine, Failure):
            return (f"torch raised {expected.__name__} at {theirs.stage} ({_first_line(theirs.error)}), "
                    "chainrule did not")
        if not isinstance(mine.error, expected) or mine.stage != theirs.stage:
            return (f"torch raised {expected.__name__} at {theirs.stage} ({_first_line(theirs.error)}), chainrule "
                    f"{type(mine.error).__name__} at {mine.stage} ({_first_line(mine.error)})")
        phrase = next((p for p in KEY_PHRASES if p.lower() in str(theirs.error).lower()), None)
        if phrase and phrase.lower() not in str(mine.error).lower():
            return f"message: torch's says {phrase!r}, chainrule's {_first_line(mine.error)!r}"
        return None
    if isinstance(mine, Failure):
        return f"chainrule raised {type(mine.error).__name__} at {mine.stage} ({_first_line(mine.error)})"
    return None


_TENSOR_FIELDS = ("class", "dtype", "shape", "stride", "storage_offset", "requires_grad", "is_leaf", "is_conj",
                  "storage", "storage nbytes", "values")


def _difference(mine, theirs, path: str) -> str | None:
    if type(mine) is not type(theirs) or not isinstance(mine, tuple):
        return None if mine == theirs else f"{path}: {str(mine)[:200]} vs torch {str(theirs)[:200]}"
    if not mine or not theirs or mine[0] != theirs[0]:
        return None if mine == theirs else f"{path}: {str(mine)[:200]} vs torch {str(theirs)[:200]}"
    if mine[0] == "tensor":
        for field, a, b in zip(_TENSOR_FIELDS, mine[1:], theirs[1:]):
            if a != b:
                shown = (lambda v: v.hex()[:64]) if field == "values" else repr
                return f"{path}.{field}: {shown(a)} vs torch {shown(b)}"
        return None
    if len(mine) != len(theirs):
        return f"{path}: {len(mine)} parts vs torch {len(theirs)}"
    for index, (a, b) in enumerate(zip(mine, theirs)):
        if isinstance(a, tuple) and isinstance(b, tuple) and len(a) != len(b) and mine[0] not in ("tensor",):
            return f"{path}[{index}]: {len(a)} items vs torch {len(b)}"
        problem = _difference(a, b, f"{path}[{index}]")
        if problem:
            return problem
    return None


def first_difference(case: Case, records: dict) -> str | None:
    """The first way one of chainrule's runs differs from torch's own round trip, or None."""
    built = records.get(("built", "chainrule")), records.get(("built", "torch"))
    if built[0] != built[1]:  # a difference of the object saved, not of serialization
        return f"build: {_difference(*built, 'obj') if None not in built else 'not built'}"
    oracle = records["torch", "torch"]
    for pair in (("torch", "chainrule"), ("chainrule", "torch"), ("chainrule", "chainrule")):
        if case.mutation is not None:  # the same mutated bytes, loaded by torch: the oracle for this file
            theirs = records[pair[0], "torch"]
            if pair[1] == "torch":
                continue
        else:
            theirs = oracle
        mine = records[pair]
        label = f"{pair[0]}.save -> {pair[1]}.load"
        problem = _error_difference(mine, theirs)
        if problem is None and not isinstance(mine, Failure) and not isinstance(theirs, Failure):
            problem = _difference(mine, theirs, "obj")
        if problem:
            return f"{label}: {problem}"
    return None
