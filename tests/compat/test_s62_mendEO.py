"""vmap batches the elementwise ops a sweep of the op registry found running once per slice (session 62,
mendEO): inverse trigonometric and hyperbolic functions, rounding, the special functions, the piecewise
activations, and binary ops such as atan2, hypot, logaddexp and xlogy, with the elementwise backward ops
of silu, softplus and logsigmoid. Each runs once on the whole batch, as torch's batching rules run it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

_UNARY = {
    "asin": lambda lib, x: lib.asin(x * 0.5), "acos": lambda lib, x: lib.acos(x * 0.5),
    "atan": lambda lib, x: lib.atan(x), "tan": lambda lib, x: lib.tan(x), "sinh": lambda lib, x: lib.sinh(x),
    "cosh": lambda lib, x: lib.cosh(x), "asinh": lambda lib, x: lib.asinh(x),
    "acosh": lambda lib, x: lib.acosh(x.abs() + 1), "atanh": lambda lib, x: lib.atanh(x * 0.5),
    "exp2": lambda lib, x: lib.exp2(x), "log2": lambda lib, x: lib.log2(x.abs() + 0.5),
    "log10": lambda lib, x: lib.log10(x.abs() + 0.5), "floor": lambda lib, x: lib.floor(x) * x,
    "ceil": lambda lib, x: lib.ceil(x) * x, "trunc": lambda lib, x: lib.trunc(x) + x, "frac": lambda lib, x: lib.frac(x),
    "sinc": lambda lib, x: lib.sinc(x), "erf": lambda lib, x: lib.erf(x), "erfc": lambda lib, x: lib.erfc(x),
    "erfinv": lambda lib, x: lib.erfinv(x * 0.5), "lgamma": lambda lib, x: lib.lgamma(x.abs() + 0.5),
    "digamma": lambda lib, x: lib.digamma(x.abs() + 0.5), "polygamma": lambda lib, x: lib.polygamma(1, x.abs() + 0.5),
    "i0": lambda lib, x: lib.i0(x), "i1": lambda lib, x: lib.special.i1(x), "i0e": lambda lib, x: lib.special.i0e(x),
    "i1e": lambda lib, x: lib.special.i1e(x), "ndtri": lambda lib, x: lib.special.ndtri(x.sigmoid()),
    "log_ndtr": lambda lib, x: lib.special.log_ndtr(x), "erfcx": lambda lib, x: lib.special.erfcx(x),
    "entr": lambda lib, x: lib.special.entr(x.abs()), "logit": lambda lib, x: lib.logit(x.sigmoid(), eps=1e-6),
    "elu": lambda lib, x: lib.nn.functional.elu(x, alpha=0.7), "celu": lambda lib, x: lib.nn.functional.celu(x),
    "selu": lambda lib, x: lib.nn.functional.selu(x),
    "leaky_relu": lambda lib, x: lib.nn.functional.leaky_relu(x, 0.2),
    "hardtanh": lambda lib, x: lib.nn.functional.hardtanh(x, -0.5, 0.5),
    "hardsigmoid": lambda lib, x: lib.nn.functional.hardsigmoid(x),
    "hardswish": lambda lib, x: lib.nn.functional.hardswish(x),
    "hardshrink": lambda lib, x: lib.nn.functional.hardshrink(x, 0.3),
    "softshrink": lambda lib, x: lib.nn.functional.softshrink(x, 0.3), "silu": lambda lib, x: lib.nn.functional.silu(x),
    "softplus": lambda lib, x: lib.nn.functional.softplus(x, beta=2.0),
    "logsigmoid": lambda lib, x: lib.nn.functional.logsigmoid(x), "rpow": lambda lib, x: 2.0 ** x,
}
_BINARY = {
    "atan2": lambda lib, x, y: lib.atan2(x, y), "hypot": lambda lib, x, y: lib.hypot(x, y),
    "logaddexp": lambda lib, x, y: lib.logaddexp(x, y), "xlogy": lambda lib, x, y: lib.xlogy(x, y.abs() + 0.1),
    "xlog1py": lambda lib, x, y: lib.special.xlog1py(x, y.abs()), "copysign": lambda lib, x, y: lib.copysign(x, y),
    "fmax": lambda lib, x, y: lib.fmax(x, y), "fmin": lambda lib, x, y: lib.fmin(x, y),
    "igamma": lambda lib, x, y: lib.igamma(x.abs() + 0.5, y.abs() + 0.5),
    "igammac": lambda lib, x, y: lib.igammac(x.abs() + 0.5, y.abs() + 0.5),
    "remainder": lambda lib, x, y: lib.remainder(x, y.abs() + 0.5),
    "floor_divide": lambda lib, x, y: lib.div(x, y.abs() + 0.5, rounding_mode="floor") * x,
}


# ops whose gradient's replay still fails (so vmap of their gradient runs the function slice by slice): none
# since mendET made the masks of hardshrink's, softshrink's, hardsigmoid's, hardswish's, atan2's, fmax's and
# fmin's backward by recorded ops (tests/compat/test_s62_mendET.py)
_GRADIENT_RUN_PER_SLICE: set = set()
# (igamma and igammac have no derivative in their first argument, in torch either)
_DIFFERENTIATED = {"igamma": (1,), "igammac": (1,)}


def _batch(seed: int, *shape) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((4, *shape)).astype(np.float32)


def _sum_of(fn, lib):
    return lambda *xs: fn(lib, *xs).sum()


@pytest.mark.parametrize("name", sorted(_UNARY) + sorted(_BINARY))
def test_elementwise_ops_run_once_on_the_batch(name, per_slice_ops):
    fn = _UNARY.get(name) or _BINARY[name]
    arrays = [_batch(0, 3, 5)] if name in _UNARY else [_batch(0, 3, 5), _batch(1, 5)]
    ours = chainrule.func.vmap(lambda *xs: fn(chainrule, *xs))(*map(chainrule.tensor, arrays))
    assert per_slice_ops == []
    argnums = _DIFFERENTIATED.get(name, tuple(range(len(arrays))))
    gradients = chainrule.func.vmap(chainrule.func.grad(_sum_of(fn, chainrule), argnums=argnums))(
        *map(chainrule.tensor, arrays))
    if name not in _GRADIENT_RUN_PER_SLICE:
        assert per_slice_ops == []
    # the batch's op gives each slice's own bits
    slices = np.stack([fn(chainrule, *(chainrule.tensor(a[i]) for a in arrays)).numpy() for i in range(4)])
    np.testing.assert_array_equal(ours.numpy(), slices)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch's own fallback warnings, where it has no rule either)
        theirs = torch.func.vmap(lambda *xs: fn(torch, *xs))(*map(torch.tensor, arrays))
        their_gradients = torch.func.vmap(torch.func.grad(_sum_of(fn, torch), argnums=argnums))(
            *map(torch.tensor, arrays))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)
    for g, t in zip(gradients, their_gradients):
        assert g.shape == t.shape
        np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-4, atol=1e-5)


def _cell_call(lib, kind: str, weights):
    if kind == "GRUCell" or kind == "RNNCell":
        cell = getattr(lib.nn, kind)(5, 6)
        with lib.no_grad():
            for p, w in zip(cell.parameters(), weights[kind]):
                p.copy_(lib.tensor(w))
        return cell
    ws = [lib.tensor(w) for w in weights[{"gru_cell": "GRUCell"}.get(kind, "RNNCell")]]
    return lambda x, h: getattr(lib, kind)(x, h, *ws)


@pytest.mark.parametrize("kind", ["GRUCell", "RNNCell", "gru_cell", "rnn_tanh_cell"])
def test_recurrent_cells_under_vmap_warn_as_torchs_fallback(kind):
    """torch has no batching rule for gru_cell, rnn_tanh_cell and rnn_relu_cell: its vmap runs them slice by
    slice with a performance warning, once a call; values and gradients as torch's."""
    rng = np.random.default_rng(62)
    x, h = (rng.standard_normal((3, 4, n)).astype(np.float32) for n in (5, 6))
    weights = {k: [rng.standard_normal(s).astype(np.float32) * 0.3 for s in [(g * 6, 5), (g * 6, 6), (g * 6,), (g * 6,)]]
               for k, g in (("GRUCell", 3), ("RNNCell", 1))}
    found = {}
    for lib in (chainrule, torch):
        call = _cell_call(lib, kind, weights)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = lib.func.vmap(call)(lib.tensor(x), lib.tensor(h))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            grads = lib.func.vmap(lib.func.grad(lambda x, h, call=call: call(x, h).sum(), argnums=(0, 1)))(lib.tensor(x), lib.tensor(h))
        found[lib.__name__] = ([(w.category, str(w.message)) for w in caught],
                               [t.detach().numpy() for t in (out, *grads)])
    assert found["chainrule"][0] == found["torch"][0]
    for ours, theirs in zip(found["chainrule"][1], found["torch"][1]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_recurrent_cells_outside_vmap_do_not_warn():
    cell = chainrule.nn.GRUCell(5, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cell(chainrule.randn(4, 5))
        chainrule.func.grad(lambda x: cell(x).sum())(chainrule.randn(4, 5))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape, dim", [((1000,), None), ((2, 33), None), ((17, 3), None), ((8, 130), 1),
                                        ((3, 2, 70), -1), ((40, 20), "F"), ((5, 6), 1), ((64,), 0)])
def test_prod_multiplies_in_torchs_order(shape, dim, dtype):
    """torch's CPU prod of a contiguous run: four vector accumulators over blocks of four vectors, folded,
    the lanes then the tail left to right (NumPy's order differed in 111 of 264 random cases)."""
    from chainrule.ops import cpu_features

    array = (1 + 0.1 * np.random.default_rng(62).standard_normal(shape)).astype(dtype)
    if dim == "F":  # (a column-major array's whole product: torch's iterator takes it in memory order)
        array, dim = np.asfortranarray(array), None
    found = []
    for lib in (chainrule, torch):
        x = lib.from_numpy(array).requires_grad_()
        out = lib.prod(x) if dim is None else lib.prod(x, dim)
        out.sum().backward()
        found.append((out.detach().numpy(), x.grad.numpy(), out.grad_fn.name()))
    assert found[0][2] == found[1][2]
    if cpu_features.AVX512_CORE:  # (the order modelled for torch's AVX512 kernels, checked on AVX2 alone)
        np.testing.assert_allclose(found[0][0], found[1][0], rtol=1e-6)
    else:
        np.testing.assert_array_equal(found[0][0], found[1][0])
    np.testing.assert_allclose(found[0][1], found[1][1], rtol=1e-5)


def _logsumexp_composed(lib, x, dim, keepdim):
    """torch's logsumexp kernel op by op: the max (kept), exp of the shifted input, its sum, log, max added."""
    m = lib.amax(x, dim, keepdim=True)
    total = (x - m).exp().sum(dim, keepdim=True).log() + m
    return total if keepdim else total.squeeze(dim)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape, dim, keepdim", [((5, 6), 0, False), ((5, 6), 1, True), ((2, 33), 1, False),
                                                 ((3, 4, 5), (0, 1), True), ((8, 130), 0, False), ((7,), 0, False)])
def test_logsumexp_sums_its_terms_in_torchs_sum_order(shape, dim, keepdim, dtype):
    """logsumexp adds its exp terms with torch's sum order (its kernel calls sum), not NumPy's pairwise one:
    bit for bit the composition of chainrule's own amax, exp, sum and log, as torch's is of torch's."""
    array = (3 * np.random.default_rng(62).standard_normal(shape)).astype(dtype)
    for lib in (chainrule, torch):
        x = lib.tensor(array)
        np.testing.assert_array_equal(lib.logsumexp(x, dim, keepdim).numpy(),
                                      _logsumexp_composed(lib, x, dim, keepdim).numpy())
    # (exp's last bits are torch's Sleef's there, NumPy's here)
    np.testing.assert_allclose(chainrule.logsumexp(chainrule.tensor(array), dim, keepdim).numpy(),
                               torch.logsumexp(torch.tensor(array), dim, keepdim).numpy(), rtol=1e-6)


_ADD_PRODUCTS = {
    "addmm": (lambda lib, c, a, b: lib.addmm(c, a, b, beta=0.5, alpha=2.0), [(6, 7), (6, 5), (5, 7)]),
    "addmm_beta0": (lambda lib, c, a, b: lib.addmm(c, a, b, beta=0, alpha=0.3), [(6, 7), (6, 5), (5, 7)]),
    "addmv": (lambda lib, c, a, v: lib.addmv(c, a, v, alpha=0.5, beta=2.0), [(6,), (6, 5), (5,)]),
    "baddbmm": (lambda lib, c, a, b: lib.baddbmm(c, a, b, alpha=0.5, beta=0.7), [(3, 6, 7), (3, 6, 5), (3, 5, 7)]),
    "addbmm": (lambda lib, c, a, b: lib.addbmm(c, a, b, alpha=0.5), [(6, 7), (3, 6, 5), (3, 5, 7)]),
    "addr": (lambda lib, c, a, b: lib.addr(c, a, b, alpha=0.5), [(6, 7), (6,), (7,)]),
}


@pytest.mark.parametrize("name", sorted(_ADD_PRODUCTS))
def test_jacobians_of_add_product_ops_with_alpha_run_once_on_the_batch(name, monkeypatch):
    """jacrev's batched backward has rules for the alpha-scaled products (AlphaMm, AlphaBmm, AlphaMv,
    AlphaOuter) and for beta = 0's ProductIgnoringInput: no node runs row by row."""
    from chainrule.autograd import batched_walk

    by_rows = []
    row_by_row = batched_walk._row_by_row
    monkeypatch.setattr(batched_walk, "_row_by_row",
                        lambda node, grads, batch: by_rows.append(node.name()) or row_by_row(node, grads, batch))
    fn, shapes = _ADD_PRODUCTS[name]
    rng = np.random.default_rng(62)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    found = []
    for lib in (chainrule, torch):
        found.append(lib.func.jacrev(lambda *xs, lib=lib: fn(lib, *xs), argnums=(0, 1, 2))(*map(lib.tensor, arrays)))
    assert by_rows == []
    for ours, theirs in zip(*found):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-6)
