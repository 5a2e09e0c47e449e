"""Differential fuzzing of indexing against torch: ``x[key]``, ``x[key] = v``, index_put_,
index_select, gather/scatter/scatter_add/scatter_reduce, and writes through views.

Every case is drawn from a seeded NumPy generator (the same cases on every run), written once
against the shared torch/chainrule API and run on both libraries. What must agree:

* torch raises -> chainrule raises an exception of the same builtin class, with a message;
* the result's values, shape and dtype, and whether it is a view (a write through it reaches the base);
* the gradients of every input for a random-weighted sum of the output, including through an in-place
  ``__setitem__`` on a non-leaf.

Keys are built from ints (negative, out of range), slices (negative steps: torch raises), None,
Ellipsis, bool masks (full, partial, wrong-sized, 0-d), integer tensors of int64/int32/uint8 and
lists (broadcast against each other, adjacent or separated by slices, which moves the broadcast
dims to the front), Python lists of bools, and Python bools. Where torch leaves the result
unspecified (which of several writes to one element wins), only the defined elements are compared.

Budget: ``CASES`` per test in CI (a few seconds), ``LONG_CASES`` under ``CHAINRULE_LONG_TESTS=1``.
"""

from __future__ import annotations

import builtins
import dataclasses
import os
import re
import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

CASES = 300
LONG_CASES = 20000


def _builtin_class(exc: BaseException) -> type:
    """The first builtin exception class in ``exc``'s MRO (torch's own errors derive from them)."""
    for cls in type(exc).__mro__:
        if cls.__module__ == "builtins":
            return cls
    return Exception


# ---------------------------------------------------------------- index keys, drawn once, built per library
@dataclasses.dataclass
class IndexTensor:
    """An index given as a tensor (of ``dtype``) or as a Python list (``dtype`` is ``"list"``)."""

    array: np.ndarray
    dtype: str

    def build(self, lib):
        if self.dtype == "list":
            return self.array.tolist()
        return lib.tensor(self.array, dtype=getattr(lib, self.dtype))

    def __repr__(self):
        return f"{self.dtype}({self.array.tolist()!r})"


def _build(key, lib):
    if isinstance(key, tuple):
        return tuple(_build(k, lib) for k in key)
    return key.build(lib) if isinstance(key, IndexTensor) else key


def _draw_shape(rng, max_dims=4) -> tuple:
    ndim = int(rng.integers(0, max_dims + 1))
    return tuple(int(rng.choice([0, 1, 2, 3, 4], p=[0.08, 0.17, 0.25, 0.25, 0.25])) for _ in range(ndim))


def _draw_int(rng, size: int) -> int:
    if size and rng.random() < 0.9:
        return int(rng.integers(-size, size))
    return int(rng.choice([size, -size - 1, size + 2]))  # out of range


def _draw_slice(rng, size: int) -> slice:
    def bound():
        return None if rng.random() < 0.4 else int(rng.integers(-size - 2, size + 3))
    step = None if rng.random() < 0.5 else int(rng.choice([1, 2, 3, -1] if rng.random() < 0.1 else [1, 2, 3]))
    return slice(bound(), bound(), step)


def _draw_index_array(rng, size: int, shape: tuple, out_of_range: float = 0.05) -> np.ndarray:
    if size == 0 or rng.random() < out_of_range:
        return rng.integers(-size - 2, size + 3, shape)
    return rng.integers(-size, size, shape)


def _draw_key(rng, shape: tuple):
    """A key for a tensor of ``shape``: one item per indexed dim, left to right."""
    # the advanced indices of one key broadcast together: draw their common shape first
    common = tuple(int(s) for s in rng.integers(0, 4, int(rng.integers(0, 3))))
    items, dim = [], 0
    ndim = len(shape)
    wanted = int(rng.integers(0, ndim + 1)) if ndim else int(rng.integers(0, 2))
    while dim < wanted or (rng.random() < 0.15 and len(items) < 6):
        size = shape[dim] if dim < ndim else 1
        kind = rng.choice(["int", "slice", "none", "mask", "itensor", "list", "boollist", "pybool", "tensor0"],
                          p=[0.2, 0.25, 0.08, 0.1, 0.17, 0.08, 0.04, 0.03, 0.05])
        if kind == "int":
            items.append(_draw_int(rng, size))
        elif kind == "slice":
            items.append(_draw_slice(rng, size))
        elif kind == "none":
            items.append(None)
            continue
        elif kind == "pybool":
            items.append(bool(rng.random() < 0.7))
            continue
        elif kind == "tensor0":
            items.append(IndexTensor(np.array(_draw_int(rng, size)), str(rng.choice(["int64", "int32"]))))
        elif kind == "mask":
            span = int(rng.integers(0, builtins.max(0, ndim - dim) + 1))
            mask_shape = list(shape[dim:dim + span])
            if mask_shape and rng.random() < 0.1:
                mask_shape[-1] += 1  # a mask of the wrong size: torch raises IndexError
            dtype = "uint8" if rng.random() < 0.15 else "bool"
            items.append(IndexTensor((rng.random(mask_shape) < 0.5).astype(dtype), dtype))
            dim += span
            continue
        elif kind == "boollist":
            length = size if rng.random() < 0.85 else size + 1
            items.append(IndexTensor(rng.random(length) < 0.5, "list"))
        else:  # integer tensors and lists, of a shape that broadcasts to ``common`` (or not, sometimes)
            cut = int(rng.integers(0, len(common) + 1))
            ishape = tuple(1 if rng.random() < 0.3 else s for s in common[cut:])
            if rng.random() < 0.04:
                ishape = ishape + (5,)
            if kind == "list":
                if not ishape:
                    ishape = (int(rng.integers(1, 3)),)
                items.append(IndexTensor(_draw_index_array(rng, size, ishape), "list"))
            else:
                dtype = str(rng.choice(["int64", "int64", "int32"]))
                items.append(IndexTensor(_draw_index_array(rng, size, ishape), dtype))
        dim += 1
    if items and rng.random() < 0.3:  # an Ellipsis stands for the dims between two items
        at = int(rng.integers(0, len(items) + 1))
        items.insert(at, Ellipsis)
    if len(items) == 1 and rng.random() < 0.5:
        return items[0]
    return tuple(items)


def _draw_values(rng, shape: tuple, dtype: str) -> np.ndarray:
    if dtype == "float64":
        return rng.standard_normal(shape)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    return rng.integers(-9, 10, shape).astype(dtype)


# ---------------------------------------------------------------- running a case
@dataclasses.dataclass
class Outcome:
    error: BaseException | None = None
    values: dict = dataclasses.field(default_factory=dict)  # name -> ndarray


def _attempt(body, lib) -> Outcome:
    outcome = Outcome()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # uint8 masks are deprecated in torch
        try:
            body(lib, outcome.values)
        except Exception as e:  # noqa: BLE001 - the class is what is compared
            outcome.error = e
    return outcome


def _np(t) -> np.ndarray:
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


# Deliberate differences: (name, reason). ``_allowed_difference`` recognises each one.
ALLOWED = {
    "error_order": "a case with two faults: torch reports the first item's fault left to right, and a bad "
                   "value before an out-of-range index (which only its kernel finds) except on some paths "
                   "(an empty dim, a leading index); chainrule checks slice steps before the other items, "
                   "and index bounds before the value",
    "empty_read_bounds": "torch checks index bounds only while it copies elements, so a read or write of no "
                         "elements skips the check; chainrule (NumPy) checks every index",
}


def _has_negative_step(key) -> bool:
    items = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, slice) and k.step is not None and k.step < 0 for k in items)


def _allowed_difference(key, theirs: Outcome, ours: Outcome) -> str | None:
    if ours.error is None:
        return None
    out_of_bounds = isinstance(ours.error, IndexError) and "out of bounds" in str(ours.error)
    if theirs.error is not None:
        if isinstance(ours.error, ValueError) and "step" in str(ours.error) and _has_negative_step(key):
            return "error_order"
        value_fault = ("shape mismatch: value", "dtypes match", "masked_fill_", "expand", "must match the size")
        if out_of_bounds and any(m in str(theirs.error) for m in value_fault):
            return "error_order"
        theirs_bounds = isinstance(theirs.error, IndexError) and "out of bounds" in str(theirs.error)
        if theirs_bounds and any(m in str(ours.error) for m in value_fault):
            return "error_order"  # and the other way round: torch finds some bad indices before the value
        return None
    if out_of_bounds and theirs.values.get("_read_numel") == 0:
        return "empty_read_bounds"
    return None


def _compare(what: str, body, defined=None, key=(), rtol: float = 1e-9, atol: float = 1e-12, allow=None) -> None:
    """Run ``body(lib, record)`` on torch and chainrule; compare errors and every recorded value.

    ``defined(record) -> {name: bool mask}`` limits a comparison to the elements torch defines;
    ``key`` (the index key, if any) lets the deliberate differences in ``ALLOWED`` through, and
    ``allow(torch's error, chainrule's error) -> bool`` those of another table."""
    theirs = _attempt(body, torch)
    ours = _attempt(body, chainrule)
    if _allowed_difference(key, theirs, ours) or (allow is not None and allow(theirs.error, ours.error)):
        return
    theirs.values.pop("_read_numel", None)
    ours.values.pop("_read_numel", None)
    if theirs.error is not None:
        expected = _builtin_class(theirs.error)
        assert ours.error is not None, (
            f"{what}: torch raised {expected.__name__}({theirs.error}), chainrule did not: {ours.values.keys()}")
        assert isinstance(ours.error, expected), (
            f"{what}: torch raised {expected.__name__}({theirs.error}), "
            f"chainrule {type(ours.error).__name__}({ours.error})")
        message = str(ours.error)
        assert message, f"{what}: chainrule raised {type(ours.error).__name__} with no message"
        # torch's words (tensor, dimension), not NumPy's, which would name chainrule's insides
        assert not re.search(r"\barray\b|tuple index|(for|along) axis", message), f"{what}: NumPy's words in {message!r}"
        return
    if ours.error is not None:
        raise AssertionError(f"{what}: chainrule raised {type(ours.error).__name__}: {ours.error}; "
                             f"torch did not") from ours.error
    masks = defined(theirs.values) if defined else {}
    assert ours.values.keys() == theirs.values.keys(), what
    for name, t in theirs.values.items():
        o = ours.values[name]
        if isinstance(t, (bool, int, float, tuple)) or t is None:
            assert o == t, f"{what}: {name} {o!r} vs torch {t!r}"
            continue
        o, t = _np(o), _np(t)
        assert o.shape == t.shape, f"{what}: {name} shape {o.shape} vs torch {t.shape}"
        assert o.dtype == t.dtype, f"{what}: {name} dtype {o.dtype} vs torch {t.dtype}"
        if name in masks:
            o, t = o[masks[name]], t[masks[name]]
        if t.dtype.kind == "f":
            single = t.dtype == np.float32  # float32 results: float32 rounding
            np.testing.assert_allclose(o, t, rtol=max(rtol, 2e-6) if single else rtol,
                                       atol=max(atol, 1e-6) if single else atol, err_msg=f"{what}: {name}")
        else:
            np.testing.assert_array_equal(o, t, err_msg=f"{what}: {name}")


# the long profile (tests/conftest.py): CHAINRULE_LONG_TESTS=1 runs the larger budgets
LONG = os.environ.get("CHAINRULE_LONG_TESTS") == "1"


def _cases(count: int, long_count: int):
    return range(long_count if LONG else count)


# ---------------------------------------------------------------- getitem
def _getitem_case(seed: int):
    rng = np.random.default_rng(seed)
    shape = _draw_shape(rng)
    key = _draw_key(rng, shape)
    dtype = str(rng.choice(["float64", "float64", "float64", "int64", "bool"]))
    x = _draw_values(rng, shape, dtype)
    weight_seed = int(rng.integers(2 ** 31))

    def body(lib, record):
        leaf = lib.tensor(x, requires_grad=dtype == "float64")
        out = leaf[_build(key, lib)]
        record["out"] = out
        record["_read_numel"] = out.numel()
        record["view"] = out._base is not None
        if dtype == "float64":
            w = np.random.default_rng(weight_seed).standard_normal(tuple(out.shape))
            (out * lib.tensor(w)).sum().backward()
            record["grad"] = leaf.grad
        # a basic read is a view: a write through it reaches the base (torch's views are the
        # same memory; an advanced read is a copy and the base keeps its values)
        base = lib.tensor(x)
        view = base[_build(key, lib)]
        if view.numel():
            view.mul_(2) if dtype != "bool" else view.logical_not_()
        record["base_after_write"] = base

    return shape, key, dtype, body


@pytest.mark.parametrize("chunk", range(4))
def test_getitem(chunk):
    for seed in _cases(CASES // 4, LONG_CASES // 4):
        seed = seed * 4 + chunk
        shape, key, dtype, body = _getitem_case(seed)
        _compare(f"seed {seed}: {dtype}{list(shape)}[{key!r}]", body, key=key)


# ---------------------------------------------------------------- setitem
def _setitem_case(seed: int):
    rng = np.random.default_rng(seed)
    shape = _draw_shape(rng)
    key = _draw_key(rng, shape)
    x = rng.standard_normal(shape)
    # the value: a Python scalar, or a tensor whose shape broadcasts to the read's (or, sometimes, not)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            read_shape = tuple(torch.tensor(x)[_build(key, torch)].shape)
        except Exception:  # noqa: BLE001 - an invalid key: any value will do
            read_shape = (2,)
    kind = rng.choice(["scalar", "tensor", "tensor", "int_tensor"])
    value = float(rng.standard_normal()) if kind == "scalar" else None
    if kind != "scalar":
        cut = int(rng.integers(0, len(read_shape) + 1))
        vshape = tuple(1 if rng.random() < 0.3 else s for s in read_shape[cut:])
        if rng.random() < 0.05:
            vshape = (3,) + vshape if rng.random() < 0.5 else vshape + (5,)
        value = rng.standard_normal(vshape) if kind == "tensor" else rng.integers(-5, 5, vshape)
    weight = np.random.default_rng(int(rng.integers(2 ** 31))).standard_normal(shape)

    def body(lib, record):
        leaf = lib.tensor(x, requires_grad=True)
        target = leaf * 1  # a non-leaf: the write is recorded, and leaf's gradient flows around it
        v = value
        if isinstance(value, np.ndarray):
            v = lib.tensor(value, requires_grad=value.dtype.kind == "f")
        key_built = _build(key, lib)
        if lib is torch:
            record["_read_numel"] = target[key_built].numel()
        target[key_built] = v
        record["out"] = target
        (target * lib.tensor(weight)).sum().backward()
        record["grad"] = leaf.grad
        if isinstance(v, lib.Tensor) and v.requires_grad:
            record["value_grad"] = v.grad
        if lib is torch:  # which element each write went to: repeated ones leave the result unspecified
            positions = torch.arange(max(x.size, 1))[:x.size].reshape(shape)[key_built].reshape(-1)
            counts = torch.bincount(positions, minlength=x.size).reshape(shape)
            record["_repeated"] = (counts > 1).numpy()

    def defined(record):
        repeated = record.pop("_repeated")
        if kind in ("scalar",) or not repeated.any():
            return {}
        return {"out": ~repeated}

    return shape, key, kind, body, defined


@pytest.mark.parametrize("chunk", range(4))
def test_setitem(chunk):
    for seed in _cases(CASES // 4, LONG_CASES // 4):
        seed = seed * 4 + chunk
        shape, key, kind, body, defined = _setitem_case(seed)
        _compare(f"seed {seed}: x{list(shape)}[{key!r}] = {kind}", body, defined, key=key)


# ---------------------------------------------------------------- index_put_, index_select, gather/scatter
def _dim(rng, ndim: int) -> int:
    """A dim in [-ndim, ndim), sometimes one out of range."""
    n = builtins.max(ndim, 1)
    return int(rng.integers(-n, n)) if rng.random() < 0.92 else int(rng.choice([n, -n - 1]))


def _weighted_backward(lib, out, seed: int) -> None:
    w = np.random.default_rng(seed).standard_normal(tuple(out.shape))
    (out * lib.tensor(w)).sum().backward()


def _index_put_case(seed: int):
    rng = np.random.default_rng(seed)
    shape = _draw_shape(rng, 3)
    count = int(rng.integers(1, len(shape) + 1)) if shape and rng.random() < 0.95 else len(shape) + 1
    common = tuple(int(s) for s in rng.integers(0, 4, int(rng.integers(0, 3))))
    indices = []
    for d in range(count):
        size = shape[d] if d < len(shape) else 1
        ishape = tuple(1 if rng.random() < 0.3 else s for s in common[int(rng.integers(0, len(common) + 1)):])
        indices.append(IndexTensor(_draw_index_array(rng, size, ishape), str(rng.choice(["int64", "int32"]))))
    try:
        read_shape = tuple(np.broadcast_shapes(*(i.array.shape for i in indices))) + shape[count:]
    except ValueError:
        read_shape = (1,)
    vshape = read_shape[int(rng.integers(0, len(read_shape) + 1)):]
    if rng.random() < 0.05:
        vshape = vshape + (5,)
    values = rng.standard_normal(vshape)
    accumulate = bool(rng.random() < 0.5)
    x = rng.standard_normal(shape)
    weight_seed = int(rng.integers(2 ** 31))

    def body(lib, record):
        leaf = lib.tensor(x, requires_grad=True)
        v = lib.tensor(values, requires_grad=True)
        target = leaf * 1
        built = tuple(i.build(lib) for i in indices)
        if lib is torch:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    record["_read_numel"] = target[built].numel()
                except IndexError:
                    pass
        out = target.index_put_(built, v, accumulate=accumulate)
        record["same"] = out is target
        record["out"] = target
        _weighted_backward(lib, target, weight_seed)
        record["grad"], record["value_grad"] = leaf.grad, v.grad
        if lib is torch:
            positions = torch.arange(x.size).reshape(shape)[built].reshape(-1)
            record["_repeated"] = (torch.bincount(positions, minlength=x.size).reshape(shape) > 1).numpy()

    def defined(record):
        repeated = record.pop("_repeated")
        return {} if accumulate or not repeated.any() else {"out": ~repeated}

    return f"x{list(shape)}.index_put_({indices!r}, {list(vshape)}, accumulate={accumulate})", body, defined


def _index_select_case(seed: int):
    rng = np.random.default_rng(seed)
    shape = _draw_shape(rng, 3)
    dim = _dim(rng, len(shape))
    size = shape[dim] if -len(shape) <= dim < len(shape) and shape else 1
    ishape = [(), (int(rng.integers(0, 5)),), (2, 2)][int(rng.choice(3, p=[0.15, 0.75, 0.1]))]
    index = _draw_index_array(rng, size, tuple(ishape))
    index = np.abs(index) if rng.random() < 0.7 else index  # negative indices: torch raises
    dtype = str(rng.choice(["int64", "int32"]))
    x = rng.standard_normal(shape)
    weight_seed = int(rng.integers(2 ** 31))

    def body(lib, record):
        leaf = lib.tensor(x, requires_grad=True)
        out = lib.index_select(leaf, dim, lib.tensor(index, dtype=getattr(lib, dtype)))
        record["out"] = out
        _weighted_backward(lib, out, weight_seed)
        record["grad"] = leaf.grad

    return f"index_select(x{list(shape)}, {dim}, {dtype}{index.tolist()})", body, None


def _gather_index(rng, shape: tuple, dim: int, src_shape: tuple | None = None) -> np.ndarray:
    """An index for gather/scatter along ``dim``: no larger than ``shape`` off ``dim`` (or than
    ``src_shape`` everywhere), values in range; sometimes too large, of the wrong rank or out of range."""
    ndim = len(shape)
    if not ndim:
        ishape = ()
    else:
        d = dim % ndim if -ndim <= dim < ndim else 0
        limits = [s if i != d else 4 for i, s in enumerate(shape)]
        if src_shape is not None:
            limits = [min(a, b) for a, b in zip(limits, src_shape)]
        ishape = tuple(int(rng.integers(0, lim + 1)) for lim in limits)
    if rng.random() < 0.05:
        ishape = ishape + (1,)  # the wrong rank
    elif ishape and rng.random() < 0.05:
        ishape = ishape[:-1] + (ishape[-1] + 2,)  # too large
    size = shape[dim] if ndim and -ndim <= dim < ndim else 1
    if size == 0 or rng.random() < 0.05:
        return rng.integers(-1, size + 2, ishape)
    return rng.integers(0, size, ishape)


GATHER_OPS = ["gather", "scatter", "scatter_value", "scatter_add", "scatter_reduce"]


def _gather_case(seed: int):
    rng = np.random.default_rng(seed)
    op = GATHER_OPS[seed % len(GATHER_OPS)]
    shape = _draw_shape(rng, 3)
    dim = _dim(rng, len(shape))
    # src may be larger than index (its leading block is used); torch's backward then fails ("returned
    # an invalid gradient", a torch bug), so only an index-shaped src requires grad
    src_shape = tuple(s + int(rng.integers(0, 2)) for s in shape)
    index = _gather_index(rng, shape, dim, None if op == "gather" else src_shape)
    reduce = str(rng.choice(["sum", "prod", "mean", "amax", "amin"]))
    include_self = bool(rng.random() < 0.5)
    if op != "gather" and rng.random() < 0.6 and index.ndim == len(shape):
        src_shape = index.shape
    x, src = rng.standard_normal(shape), rng.standard_normal(src_shape)
    value = float(rng.standard_normal())
    weight_seed = int(rng.integers(2 ** 31))

    def body(lib, record):
        leaf = lib.tensor(x, requires_grad=True)
        source = lib.tensor(src, requires_grad=src.shape == index.shape)
        i = lib.tensor(index)
        if op == "gather":
            out = lib.gather(leaf, dim, i)
        elif op == "scatter":
            out = lib.scatter(leaf, dim, i, source)
        elif op == "scatter_value":
            out = leaf.scatter(dim, i, value)
        elif op == "scatter_add":
            out = lib.scatter_add(leaf, dim, i, source)
        else:
            out = lib.scatter_reduce(leaf, dim, i, source, reduce, include_self=include_self)
        record["out"] = out
        if op == "scatter_reduce" and src.shape != index.shape:
            return  # torch's backward fails with a src larger than the index (the bug above)
        _weighted_backward(lib, out, weight_seed)
        record["grad"] = leaf.grad
        if source.requires_grad and op not in ("gather", "scatter_value"):
            record["src_grad"] = source.grad
        if lib is torch and op == "scatter":  # which elements more than one write reaches: unspecified
            hits = torch.zeros(shape).scatter_add(dim, i, torch.ones(src_shape))
            record["_repeated"] = (hits > 1).numpy()

    def defined(record):
        repeated = record.pop("_repeated", None)
        return {"out": ~repeated} if repeated is not None and repeated.any() else {}

    described = (f"{op}(x{list(shape)}, dim={dim}, index{list(index.shape)}={index.tolist()}, src{list(src_shape)}"
                 + (f", {reduce}, include_self={include_self})" if op == "scatter_reduce" else ")"))
    return described, body, defined


@pytest.mark.parametrize("name", ["index_put", "index_select", "gather"])
def test_index_ops(name):
    make = {"index_put": _index_put_case, "index_select": _index_select_case, "gather": _gather_case}[name]
    for seed in _cases(CASES // 2, LONG_CASES // 2):
        described, body, defined = make(seed)
        _compare(f"seed {seed}: {described}", body, defined)


# ---------------------------------------------------------------- writes through views
def _basic_key(rng, shape: tuple):
    """A key of ints, positive-step slices, None and Ellipsis: a read that is a view."""
    items = []
    for size in shape[:int(rng.integers(0, len(shape) + 1))]:
        kind = rng.choice(["int", "slice", "none"], p=[0.3, 0.6, 0.1])
        if kind == "int" and size:
            items.append(int(rng.integers(-size, size)))
        elif kind == "none":
            items.append(None)
            items.append(slice(None))
        else:
            items.append(slice(int(rng.integers(-size - 1, size + 1)) if rng.random() < 0.5 else None, None,
                               int(rng.integers(1, 3))))
    if rng.random() < 0.3:
        items.insert(int(rng.integers(0, len(items) + 1)), Ellipsis)
    return tuple(items)


def _draw_view(rng, shape: tuple):
    """(description, fn(tensor) -> view) for a view op valid on ``shape``."""
    ndim = len(shape)
    choices = ["key"] + (["transpose", "narrow", "select", "unsqueeze", "permute"] if ndim else ["unsqueeze"])
    if ndim >= 2:
        choices += ["diagonal", "t"] if ndim == 2 else ["diagonal"]
    kind = str(rng.choice(choices))
    if kind == "key":
        key = _basic_key(rng, shape)
        return f"[{key!r}]", lambda t: t[key]
    if kind == "transpose":
        a, b = (int(v) for v in rng.integers(-ndim, ndim, 2))
        return f".transpose({a}, {b})", lambda t: t.transpose(a, b)
    if kind == "t":
        return ".t()", lambda t: t.t()
    if kind == "unsqueeze":
        d = int(rng.integers(-ndim - 1, ndim + 1))
        return f".unsqueeze({d})", lambda t: t.unsqueeze(d)
    if kind == "permute":
        order = tuple(int(v) for v in rng.permutation(ndim))
        return f".permute{order}", lambda t: t.permute(*order)
    if kind == "diagonal":
        offset = int(rng.integers(-2, 3))
        return f".diagonal({offset})", lambda t: t.diagonal(offset)
    d = int(rng.integers(0, ndim))
    if kind == "select":
        if not shape[d]:
            return ".unsqueeze(0)", lambda t: t.unsqueeze(0)
        i = int(rng.integers(-shape[d], shape[d]))
        return f".select({d}, {i})", lambda t: t.select(d, i)
    start = int(rng.integers(0, shape[d] + 1))
    length = int(rng.integers(0, shape[d] - start + 1))
    return f".narrow({d}, {start}, {length})", lambda t: t.narrow(d, start, length)


def _draw_write(rng, shape: tuple):
    """(description, fn(lib, view)) for an in-place write into a view of ``shape``."""
    kind = str(rng.choice(["add_", "mul_", "fill_", "zero_", "copy_", "clamp_", "setitem", "iadd"]))
    other = rng.standard_normal(shape[int(rng.integers(0, len(shape) + 1)):])
    number = float(rng.standard_normal())
    if kind == "add_":
        return f".add_(t{list(other.shape)})", lambda lib, v: v.add_(lib.tensor(other))
    if kind == "mul_":
        return f".mul_({number})", lambda lib, v: v.mul_(number)
    if kind == "fill_":
        return f".fill_({number})", lambda lib, v: v.fill_(number)
    if kind == "zero_":
        return ".zero_()", lambda lib, v: v.zero_()
    if kind == "copy_":
        return f".copy_(t{list(other.shape)})", lambda lib, v: v.copy_(lib.tensor(other))
    if kind == "clamp_":
        return ".clamp_(-0.5, 0.5)", lambda lib, v: v.clamp_(-0.5, 0.5)
    if kind == "iadd":
        def iadd(lib, v):
            v += lib.tensor(other)
        return f" += t{list(other.shape)}", iadd
    key = _basic_key(rng, shape)

    def setitem(lib, v):
        v[key] = number
    return f"[{key!r}] = {number}", setitem


def _view_case(seed: int):
    rng = np.random.default_rng(seed)
    shape = _draw_shape(rng, 3)
    x = rng.standard_normal(shape)
    views = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe = torch.tensor(x)
        for _ in range(int(rng.integers(1, 3))):
            described, fn = _draw_view(rng, tuple(probe.shape))
            try:
                probe = fn(probe)
            except (IndexError, RuntimeError):
                pass  # an invalid view: the error is compared, and nothing after it is drawn
            views.append((described, fn))
    write_described, write = _draw_write(rng, tuple(probe.shape))
    grad = bool(rng.random() < 0.5)
    weight_seed = int(rng.integers(2 ** 31))

    def body(lib, record):
        leaf = lib.tensor(x, requires_grad=grad)
        base = leaf * 1 if grad else leaf
        view = base
        for _, fn in views:
            view = fn(view)
        write(lib, view)
        record["base"], record["view"] = base, view
        if grad:
            _weighted_backward(lib, base, weight_seed)
            record["grad"] = leaf.grad

    described = f"x{list(shape)}" + "".join(d for d, _ in views) + write_described + (" (grad)" if grad else "")
    return described, body, None


def test_writes_through_views():
    for seed in _cases(CASES, LONG_CASES):
        described, body, defined = _view_case(seed)
        _compare(f"seed {seed}: {described}", body, defined)
