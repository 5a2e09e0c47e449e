"""vmap replays the gradients of hardshrink, softshrink, hardsigmoid, hardswish, atan2, fmax and fmin on the
whole batch (session 62, mendET): their backward's masks are made by recorded ops (a comparison, isnan,
isinf) under a vmap recording its ops, where they were arrays the replay could not map to the batch, so the
function ran slice by slice. roll, tril, triu and cumprod have replay rules."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

_OPS = {
    "hardshrink": (lambda lib, x: lib.nn.functional.hardshrink(x, 0.3), 1),
    "softshrink": (lambda lib, x: lib.nn.functional.softshrink(x, 0.3), 1),
    "hardsigmoid": (lambda lib, x: lib.nn.functional.hardsigmoid(x * 4), 1),
    "hardswish": (lambda lib, x: lib.nn.functional.hardswish(x * 4), 1),
    "atan2": (lambda lib, x, y: lib.atan2(x, y), 2),
    "fmax": (lambda lib, x, y: lib.fmax(x, y), 2),
    "fmin": (lambda lib, x, y: lib.fmin(x, y), 2),
}


def _arrays(n: int, dtype: str):
    rng = np.random.default_rng(62)
    arrays = [rng.standard_normal((4, 3, 5)).round(1).astype(dtype) for _ in range(n)]
    if n == 2:  # ties, and a NaN on either side (fmax's and fmin's rule takes the number)
        arrays[1][0, 0, :2] = arrays[0][0, 0, :2]
        arrays[0][1, 1, 1], arrays[1][2, 2, 2] = np.nan, np.nan
    return arrays


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(_OPS))
def test_gradients_replay_on_the_batch(name, dtype, per_slice_ops):
    fn, n = _OPS[name]
    arrays = _arrays(n, dtype)
    argnums = tuple(range(n))

    def gradients(lib, *xs):
        return lib.func.grad(lambda *ys: fn(lib, *ys).sum(), argnums=argnums)(*xs)

    ours = chainrule.func.vmap(lambda *xs: gradients(chainrule, *xs))(*map(chainrule.tensor, arrays))
    assert per_slice_ops == []
    # each slice's own gradients, bit for bit
    for i in range(4):
        alone = gradients(chainrule, *(chainrule.tensor(a[i]) for a in arrays))
        for g, s in zip(ours, alone):
            np.testing.assert_array_equal(g[i].numpy(), s.numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = torch.func.vmap(lambda *xs: gradients(torch, *xs))(*map(torch.tensor, arrays))
    for g, t in zip(ours, theirs):
        assert g.dtype == chainrule.float64 if dtype == "float64" else g.dtype == chainrule.float32
        np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-6, atol=1e-7)


# (torch has no derivative of hardsigmoid_backward)
@pytest.mark.parametrize("name", sorted(set(_OPS) - {"hardsigmoid"}))
def test_second_order_under_vmap_as_torchs(name):
    """A create_graph gradient: its node as torch's, and vmap of the gradient of the squared gradient."""
    fn, n = _OPS[name]
    arrays = _arrays(n, "float64")
    found = []
    for lib in (chainrule, torch):
        xs = [lib.tensor(a[0], requires_grad=True) for a in arrays]
        (g,) = lib.autograd.grad(fn(lib, *xs).sum(), xs[0], create_graph=True)

        def squared_gradient(*ys, lib=lib):
            return (lib.func.grad(lambda *zs: fn(lib, *zs).sum())(*ys) ** 2).sum()

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            second = lib.func.vmap(lib.func.grad(squared_gradient))(*map(lib.tensor, arrays))
        found.append((g.grad_fn.name() if g.grad_fn is not None else None, second.numpy()))
    assert found[0][0] == found[1][0]
    np.testing.assert_allclose(found[0][1], found[1][1], rtol=1e-6, atol=1e-9)


_SHAPED = {
    "roll": lambda lib, x: lib.roll(x, 2, 1) * x,
    "roll_dims": lambda lib, x: lib.roll(x, (1, -1), (0, -1)) * x,
    "roll_flattened": lambda lib, x: lib.roll(x, 3) * x,
    "tril": lambda lib, x: lib.tril(x, 1) * x,
    "triu": lambda lib, x: lib.triu(x, -1) * x,
    "cumprod": lambda lib, x: lib.cumprod(x, 1) * x,
}


@pytest.mark.parametrize("name", sorted(_SHAPED))
def test_roll_triangles_cumprod_replay_on_the_batch(name, per_slice_ops):
    """roll, tril, triu and cumprod have replay rules: vmap and vmap(grad) run them once on the batch (but
    cumprod's gradient, which vmap runs slice by slice: see the test below)."""
    fn = _SHAPED[name]
    array = np.random.default_rng(62).standard_normal((4, 3, 5)).astype(np.float32)
    found = []
    for lib in (chainrule, torch):
        values = lib.func.vmap(lambda x, lib=lib: fn(lib, x))(lib.tensor(array))
        gradients = lib.func.vmap(lib.func.grad(lambda x, lib=lib: fn(lib, x).sum()))(lib.tensor(array))
        found.append((values.numpy(), gradients.numpy()))
    assert per_slice_ops == []
    slices = np.stack([fn(chainrule, chainrule.tensor(a)).numpy() for a in array])
    np.testing.assert_array_equal(found[0][0], slices)
    np.testing.assert_array_equal(found[0][0], found[1][0])
    np.testing.assert_allclose(found[0][1], found[1][1], rtol=1e-5, atol=1e-6)


def test_cumprod_gradient_under_vmap_with_a_zero_in_a_later_slice():
    """cumprod's backward picks its formula by whether the input has a zero, which slice 0 cannot tell for
    the others: vmap runs it slice by slice (the replay of slice 0's division gave NaN where slice 2 had a
    zero), with torch's values."""
    array = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    array[2, 1] = 0
    ours, theirs = (lib.func.vmap(lib.func.grad(lambda x, lib=lib: lib.cumprod(x, 0).sum()))(lib.tensor(array)).numpy()
                    for lib in (chainrule, torch))
    assert not np.isnan(ours).any()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
