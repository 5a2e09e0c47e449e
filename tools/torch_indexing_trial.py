"""Index tensors on torch and on chainrule the same way, and compare what comes back.

About 1,250 generated cases (seeded, so every run draws the same ones) of ``x[key]`` and
``x[key] = v`` over basic slices (negative steps, which torch refuses), ints, None, Ellipsis, bool
masks, integer tensors of every dtype, lists (float and nested lists too), advanced indices mixed
with basic ones, 0-d and zero-size tensors; and of index_select, index_add_, index_copy_,
index_fill_, index_put_ (accumulate or not), take, put_, masked_fill_, masked_scatter_, gather,
scatter and scatter_add. Each case is run on both libraries and compared: every result's values,
shape, dtype and strides, the output's grad_fn name, the gradient of a weighted sum with respect to
each leaf, and when torch raises, the exception class and the first words of its message.

    python tools/torch_indexing_trial.py                 # the tally
    python tools/torch_indexing_trial.py --show differ   # and each case of that kind

Kinds: ``same``; ``differ`` (values, shape, dtype, strides, grad_fn name or gradient);
``error_class`` (both raised, different classes); ``error_words`` (same class, torch's first words
missing from chainrule's message); ``torch_only`` (torch raised, chainrule did not);
``chainrule_only`` (chainrule raised, torch did not).
"""

from __future__ import annotations

import argparse
import collections
import random
import re
import warnings

import numpy as np

SEED = 23
INDEX_DTYPES = ("int64", "int64", "int64", "int32", "int16", "int8", "uint8", "float32")


# ---- keys, described without a library, built for either -------------------------------------
def build(lib, item):
    """A key item (or a value) for ``lib`` from its description."""
    if isinstance(item, tuple) and item and item[0] == "T":
        _, dtype, values = item
        return lib.tensor(values, dtype=getattr(lib, dtype))
    if isinstance(item, tuple) and item and item[0] == "K":
        return tuple(build(lib, i) for i in item[1])
    return item


def random_key_item(rng: random.Random, size: int, shape: tuple, dim: int):
    kind = rng.choice(("int", "int", "slice", "slice", "slice", "none", "ell", "bool", "mask", "long",
                       "long", "list", "list", "floatlist", "nested", "boollist"))
    if kind == "int":
        return rng.randint(-size - 1, size) if size else rng.choice((0, -1))
    if kind == "slice":
        def end():
            return rng.choice((None, None, rng.randint(-size - 2, size + 2)))
        return slice(end(), end(), rng.choice((None, None, 1, 2, 3, -1, 0)) if rng.random() < 0.9 else -2)
    if kind == "none":
        return None
    if kind == "ell":
        return Ellipsis
    if kind == "bool":
        return rng.choice((True, False))
    high = max(size, 1)
    if kind == "mask":
        n = size if rng.random() < 0.9 else size + 1
        if rng.random() < 0.3 and dim + 2 <= len(shape):  # a mask over two dims
            sub = shape[dim:dim + 2]
            return ("T", "bool", np.asarray([rng.random() < 0.5 for _ in range(int(np.prod(sub)))])
                    .reshape(sub).tolist())
        return ("T", "bool", [rng.random() < 0.5 for _ in range(n)])
    values = [rng.randint(-high, high - (0 if rng.random() < 0.9 else -1)) for _ in range(rng.randint(0, 4))]
    if kind == "long":
        dtype = rng.choice(INDEX_DTYPES)
        if dtype == "uint8" or dtype.startswith("int") and rng.random() < 0.5:
            values = [abs(v) % high for v in values]
        if rng.random() < 0.3 and len(values) >= 2:
            values = np.asarray(values[:2] * 2).reshape(2, 2).tolist()
        return ("T", dtype, values if dtype != "float32" else np.asarray(values, dtype=float).tolist())
    if kind == "list":
        return values
    if kind == "floatlist":
        return [float(v) for v in values]
    if kind == "nested":
        return [values[:2], values[:2][::-1]] if len(values) >= 2 else [[v] for v in values]
    return [rng.random() < 0.5 for _ in range(size)]


SHAPES = ((5,), (4, 5), (3, 4, 5), (2, 3, 4), (2, 0, 3), (), (0,), (1, 4), (4, 1, 3))


def random_key(rng: random.Random, shape: tuple):
    n = rng.choice((1, 1, 2, 2, 3)) if shape else rng.choice((1, 1, 2))
    items = []
    dim = 0
    for _ in range(n):
        size = shape[dim] if dim < len(shape) else 1
        item = random_key_item(rng, size, shape, dim)
        items.append(item)
        if item is not None and not isinstance(item, bool):
            dim += 2 if isinstance(item, tuple) and item[1] == "bool" and np.ndim(item[2]) == 2 else 1
    if len(items) == 1 and rng.random() < 0.5:
        return items[0]
    return ("K", tuple(items))


def describe(item) -> str:
    if isinstance(item, tuple) and item and item[0] == "K":
        return "[" + ", ".join(describe(i) for i in item[1]) + "]"
    if isinstance(item, tuple) and item and item[0] == "T":
        return f"tensor({item[2]}, {item[1]})"
    if isinstance(item, slice):
        return ":".join("" if v is None else str(v) for v in (item.start, item.stop, item.step))
    if item is Ellipsis:
        return "..."
    return repr(item)


# ---- running a case on one library -----------------------------------------------------------
def base(lib, shape, dtype="float32", requires_grad=True):
    n = int(np.prod(shape)) if shape else 1
    x = (lib.arange(n, dtype=lib.float64) * 0.5 - 1).to(getattr(lib, dtype)).reshape(shape)
    if requires_grad and dtype.startswith("float"):
        x.requires_grad_(True)
    return x


def record(lib, fn):
    """What ``fn(lib)`` returns, as comparable data: ``("raised", class, message)``, or each
    output's (shape, dtype, strides, values, grad_fn name) and the leaves' gradients."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outputs, leaves = fn(lib)
            facts = []
            for out in outputs:
                if not isinstance(out, lib.Tensor):
                    facts.append(("value", repr(out)))
                    continue
                values = out.detach().numpy().copy()
                facts.append((tuple(out.shape), str(out.dtype).rsplit(".", 1)[-1], tuple(out.stride()),
                              values, type(out.grad_fn).__name__ if out.grad_fn is not None else None))
            grads = []
            first = outputs[0] if outputs else None
            if isinstance(first, lib.Tensor) and first.requires_grad and first.numel():
                weight = lib.arange(first.numel(), dtype=first.dtype).reshape(first.shape) + 1
                (first * weight).sum().backward()
                for leaf in leaves:
                    grads.append(None if leaf.grad is None else leaf.grad.numpy().copy())
            return ("ok", facts, grads)
    except Exception as error:  # noqa: BLE001 — the class is what is compared
        return ("raised", type(error).__name__, str(error))


def first_words(message: str) -> list:
    return [w.lower() for w in re.findall(r"[A-Za-z_]{4,}", message)][:3]


def same_array(a, b) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")


def compare(torch_record, ours) -> tuple:
    if torch_record[0] == "raised":
        if ours[0] != "raised":
            return "torch_only", f"torch raised {torch_record[1]}: {torch_record[2][:150]}"
        if ours[1] != torch_record[1]:
            return "error_class", f"torch {torch_record[1]}: {torch_record[2][:120]} | ours {ours[1]}: {ours[2][:120]}"
        missing = [w for w in first_words(torch_record[2]) if w not in ours[2].lower()]
        if missing:
            return "error_words", f"torch: {torch_record[2][:120]} | ours: {ours[2][:120]}"
        return "same", ""
    if ours[0] == "raised":
        return "chainrule_only", f"ours raised {ours[1]}: {ours[2][:150]}"
    for i, (t, c) in enumerate(zip(torch_record[1], ours[1])):
        if t[0] == "value" or c[0] == "value":
            if t != c:
                return "differ", f"output {i}: {t} vs {c}"
            continue
        for what, a, b in (("shape", t[0], c[0]), ("dtype", t[1], c[1]), ("grad_fn", t[4], c[4])):
            if a != b:
                return "differ", f"output {i} {what}: torch {a} ours {b}"
        if not same_array(t[3], c[3]) and not (t[3].shape == c[3].shape and t[3].dtype.kind == "f"
                                               and np.allclose(t[3], c[3], equal_nan=True)):
            return "differ", f"output {i} values: torch {t[3].ravel()[:8]} ours {c[3].ravel()[:8]}"
        if t[2] != c[2] and np.prod(t[0]) > 1:
            return "differ", f"output {i} strides: torch {t[2]} ours {c[2]}"
    if len(torch_record[2]) != len(ours[2]):
        return "differ", f"gradients: torch {len(torch_record[2])} ours {len(ours[2])}"
    for i, (a, b) in enumerate(zip(torch_record[2], ours[2])):
        if (a is None) != (b is None) or a is not None and not (a.shape == b.shape and np.allclose(a, b)):
            return "differ", f"gradient of leaf {i}: torch {None if a is None else a.ravel()[:8]} " \
                             f"ours {None if b is None else b.ravel()[:8]}"
    return "same", ""


# ---- the cases -------------------------------------------------------------------------------
def getitem_case(shape, key, dtype):
    def fn(lib):
        x = base(lib, shape, dtype)
        return [x[build(lib, key)]], [x]
    return f"x{shape}:{dtype}[{describe(key)}]", fn


def setitem_case(shape, key, value_kind, dtype):
    def fn(lib):
        leaf = base(lib, shape, dtype)
        x = leaf.clone() if leaf.requires_grad else leaf
        k = build(lib, key)
        leaves = [leaf]
        if value_kind == "scalar":
            value = 7.5 if dtype.startswith("float") else 7
        else:
            target = x.detach()[k].shape
            if value_kind == "row" and target:
                target = target[-1:]
            elif value_kind == "wrong":
                target = tuple(target) + (2,)
            value = (lib.arange(int(np.prod(target)) if target else 1, dtype=lib.float64) + 10).to(
                getattr(lib, "int64" if value_kind == "int" else dtype)).reshape(target)
            if value.dtype.is_floating_point:
                value.requires_grad_(True)
                leaves.append(value)
        x[k] = value
        return [x], leaves
    return f"x{shape}:{dtype}[{describe(key)}] = {value_kind}", fn


def overlap_cases():
    cases = []
    for text, key_w, key_r in (("x[1:] = x[:-1]", slice(1, None), slice(None, -1)),
                               ("x[:-1] = x[1:]", slice(None, -1), slice(1, None)),
                               ("x[:] = x", slice(None), slice(None)),
                               ("x[0] = x[1]", 0, 1),
                               ("x[::2] = x[1::2]", slice(None, None, 2), slice(1, None, 2))):
        def fn(lib, key_w=key_w, key_r=key_r):
            x = base(lib, (4, 3), requires_grad=False)
            x[key_w] = x[key_r]
            return [x], []
        cases.append((text, fn))
    # index_put_ compares its value with the whole of x, a 0-d one too, unless it is a masked_fill_
    for text, write in (("x.index_put_((i,), x[0])", lambda lib, x: x.index_put_((lib.tensor([1, 2]),), x[0, 0])),
                        ("x.index_put_((i,), x[0], accumulate=True)",
                         lambda lib, x: x.index_put_((lib.tensor([1, 2]),), x[0, 0], accumulate=True)),
                        ("x[i] = x[0]", lambda lib, x: x.__setitem__(lib.tensor([1, 2]), x[0])),
                        ("x[x > 2] = x[0, 0]", lambda lib, x: x.__setitem__(x > 2, x[0, 0])),
                        ("x.index_put_((uint8 mask,), 0-d)",
                         lambda lib, x: x.index_put_((lib.tensor([1, 0, 0, 1], dtype=lib.uint8),), lib.tensor(5.0)))):
        def fn(lib, write=write):
            x = base(lib, (4, 3), requires_grad=False)
            write(lib, x)
            return [x], []
        cases.append((text, fn))
    return cases


def several_ellipses_cases():
    """Keys with more than one Ellipsis (torch moves its dim pointer at each), read and written."""
    cases = []
    for shape in ((4, 1, 3), (2, 0, 3), (5,), ()):
        for key in ((..., ...), (0, ..., ...), (..., 0, ...), (..., None, ...), (..., ..., slice(None)),
                    (..., ..., slice(1, 2)), (..., ..., None), (..., ..., 0), (..., ..., ("T", "int64", [0]))):
            cases.append(getitem_case(shape, ("K", key), "float32"))
            cases.append(setitem_case(shape, ("K", key), "scalar", "float32"))
    return cases


def index_tensor(rng, size, n=None, dtype=None):
    n = rng.randint(0, 4) if n is None else n
    dtype = dtype or rng.choice(("int64", "int64", "int64", "int32", "int16", "float32"))
    high = max(size, 1)
    values = [rng.randint(-high if rng.random() < 0.15 else 0, high - (0 if rng.random() < 0.92 else -1))
              for _ in range(n)]
    return ("T", dtype, [float(v) for v in values] if dtype == "float32" else values)


def op_cases(rng: random.Random, count: int):
    cases = []
    shapes = ((5,), (4, 5), (3, 4, 2), (0, 3), ())
    for _ in range(count):
        shape = rng.choice(shapes)
        ndim = max(len(shape), 1)
        dim = rng.randint(-ndim, ndim - 1) if rng.random() < 0.95 else ndim
        size = (shape[dim] if -ndim <= dim < ndim and shape else 1)
        op = rng.choice(("index_select", "index_add_", "index_copy_", "index_fill_", "index_put_", "take",
                         "put_", "masked_fill_", "masked_scatter_", "gather", "scatter", "scatter_add",
                         "scatter_value"))
        dtype = rng.choice(("float32", "float32", "float64", "int64"))
        idx = index_tensor(rng, size)
        accumulate = rng.random() < 0.5
        seed = rng.random()

        def fn(lib, shape=shape, dim=dim, op=op, dtype=dtype, idx=idx, accumulate=accumulate, seed=seed, size=size):
            leaf = base(lib, shape, dtype)
            x = leaf.clone() if leaf.requires_grad else leaf
            index = build(lib, idx)
            leaves = [leaf]

            def source(src_shape):
                s = (lib.arange(int(np.prod(src_shape)) if src_shape else 1, dtype=lib.float64) + 3).to(
                    x.dtype).reshape(src_shape)
                if s.dtype.is_floating_point:
                    s.requires_grad_(True)
                    leaves.append(s)
                return s

            along = list(shape) if shape else []
            if along and -len(along) <= dim < len(along):
                along[dim] = index.numel()
            if op == "index_select":
                return [x.index_select(dim, index)], leaves
            if op == "index_add_":
                return [x.index_add_(dim, index, source(tuple(along)), alpha=2)], leaves
            if op == "index_copy_":
                return [x.index_copy_(dim, index, source(tuple(along)))], leaves
            if op == "index_fill_":
                return [x.index_fill_(dim, index, -2.0 if seed < 0.5 else source(()).detach())], leaves
            if op == "index_put_":
                if seed < 0.3 and len(shape) >= 2:  # a row index broadcast against index
                    indices = (lib.tensor([0, shape[0] - 1]).reshape(2, 1), index.reshape(1, -1))
                else:
                    indices = (index,)
                target = x.detach()[indices].shape
                return [x.index_put_(indices, source(tuple(target)), accumulate=accumulate)], leaves
            if op == "take":
                return [x.take(index)], leaves
            if op == "put_":
                return [x.put_(index, source(tuple(index.shape)), accumulate=accumulate)], leaves
            mask = (lib.arange(max(x.numel(), 1)) % 3 == (1 if seed < 0.5 else 0))[:x.numel()].reshape(shape)
            if op == "masked_fill_":
                return [x.masked_fill_(mask, 9.0 if seed < 0.7 else source(()).detach())], leaves
            if op == "masked_scatter_":
                return [x.masked_scatter_(mask, source((x.numel() + 1,)))], leaves
            gidx = (lib.arange(x.numel()) * 7 % max(size, 1)).reshape(shape)
            if seed < 0.4:
                gidx = gidx.to(index.dtype) if index.dtype in (lib.int64, lib.int32, lib.int16) else gidx
            if op == "gather":
                return [x.gather(dim, gidx)], leaves
            if op == "scatter":
                return [x.scatter(dim, gidx, source(tuple(shape)))], leaves
            if op == "scatter_add":
                return [x.scatter_add(dim, gidx, source(tuple(shape)))], leaves
            return [x.scatter(dim, gidx, 4.0)], leaves
        cases.append((f"{op} x{shape}:{dtype} dim={dim} index={describe(idx)}"
                      + (" accumulate" if accumulate and op in ("index_put_", "put_") else ""), fn))
    return cases


def all_cases(seed: int = SEED) -> list:
    rng = random.Random(seed)
    cases = []
    for _ in range(600):
        shape = rng.choice(SHAPES)
        cases.append(getitem_case(shape, random_key(rng, shape), rng.choice(("float32",) * 4 + ("int64", "bool"))))
    for _ in range(350):
        shape = rng.choice(SHAPES)
        cases.append(setitem_case(shape, random_key(rng, shape),
                                  rng.choice(("scalar", "full", "full", "row", "int", "wrong")),
                                  rng.choice(("float32",) * 3 + ("int64",))))
    cases.extend(overlap_cases())
    cases.extend(op_cases(rng, 300))
    cases.extend(several_ellipses_cases())
    return cases


def run(cases, show=()):
    import torch

    import chainrule
    tally = collections.Counter()
    shown = []
    for name, fn in cases:
        kind, detail = compare(record(torch, fn), record(chainrule, fn))
        tally[kind] += 1
        if kind in show:
            shown.append(f"{kind}: {name}\n    {detail}")
    return tally, shown


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", action="append", default=[], help="print each case of this kind")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    cases = all_cases(args.seed)
    tally, shown = run(cases, set(args.show))
    for line in shown:
        print(line)
    print(f"{len(cases)} cases: " + ", ".join(f"{k} {tally[k]}" for k in
                                               ("same", "differ", "error_class", "error_words", "torch_only",
                                                "chainrule_only")))


if __name__ == "__main__":
    main()
