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
                   "value before an out-of-range index (which only its kernel finds); chainrule checks slice "
                   "steps before the other items, and index bounds before the value",
    "empty_read_bounds": "torch checks index bounds only while it copies elements, so a read or write of no "
                         "elements skips the check; chainrule (NumPy) checks every index",
}


def _has_negative_step(key) -> bool:
    items = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, slice) and k.step is not None and k.step < 0 for k in items)


def _allowed_difference(key, theirs: Outcome, ours: Outcome) -> str | None:
    if key is None or ours.error is None:
        return None
    out_of_bounds = isinstance(ours.error, IndexError) and "out of bounds" in str(ours.error)
    if theirs.error is not None:
        if isinstance(ours.error, ValueError) and "step" in str(ours.error) and _has_negative_step(key):
            return "error_order"
        value_fault = ("shape mismatch: value", "dtypes match", "masked_fill_", "expand")
        if out_of_bounds and any(m in str(theirs.error) for m in value_fault):
            return "error_order"
        return None
    if out_of_bounds and theirs.values.get("_read_numel") == 0:
        return "empty_read_bounds"
    return None


def _compare(what: str, body, defined=None, key=None) -> None:
    """Run ``body(lib, record)`` on torch and chainrule; compare errors and every recorded value.

    ``defined(record) -> {name: bool mask}`` limits a comparison to the elements torch defines;
    ``key`` (an index key) lets the deliberate differences in ``ALLOWED`` through."""
    theirs = _attempt(body, torch)
    ours = _attempt(body, chainrule)
    if _allowed_difference(key, theirs, ours):
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
        assert str(ours.error), f"{what}: chainrule raised {type(ours.error).__name__} with no message"
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
            np.testing.assert_allclose(o, t, rtol=1e-9, atol=1e-12, err_msg=f"{what}: {name}")
        else:
            np.testing.assert_array_equal(o, t, err_msg=f"{what}: {name}")


def _cases(count: int, long_count: int):
    from tests.conftest import LONG

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
