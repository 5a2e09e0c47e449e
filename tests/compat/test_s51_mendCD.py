"""Lane mendCD (session 51): numerics and refusals that differed from torch.

``F.scaled_dot_product_attention`` with a value of another head size (Ev ≠ E) or another length
than the key, grouped-query heads, masks and causality: torch's CPU kernel choice decides which
refusal comes first (the math kernel refuses an explicit mask with ``is_causal=True`` before it
multiplies, and adds the mask in place, so a mask may not grow the scores), and its flash kernel
reads the number of keys from the value. Its arguments' types are parsed as torch parses them."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

B, H, L = 2, 4, 3


def _attend(lib, shapes, mask, **kwargs):
    """``lib``'s attention on fixed float64 inputs of ``shapes``: ("ok", output, grads) or ("error", type, message)."""
    rng = np.random.default_rng(0)
    q, k, v = (lib.tensor(rng.standard_normal(shape), dtype=lib.float64, requires_grad=True) for shape in shapes)
    if mask is not None:
        kind, shape = mask
        values = np.random.default_rng(1).standard_normal(shape)
        kwargs["attn_mask"] = lib.tensor(values > -0.5) if kind == "bool" else lib.tensor(values, dtype=lib.float64)
    try:
        out = lib.nn.functional.scaled_dot_product_attention(q, k, v, **kwargs)
        upstream = np.random.default_rng(2).standard_normal(tuple(out.shape))
        out.backward(lib.tensor(upstream, dtype=lib.float64))
    except Exception as error:  # noqa: BLE001  (the refusal is what is compared)
        return "error", type(error).__name__, str(error)
    return "ok", out.detach().numpy(), [t.grad.numpy() for t in (q, k, v)]


def _assert_same(shapes, mask, **kwargs):
    expected, got = _attend(torch, shapes, mask, **kwargs), _attend(chainrule, shapes, mask, **kwargs)
    assert got[0] == expected[0], (expected, got)
    if expected[0] == "error":
        assert got[1:] == expected[1:]
        return
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-12, atol=1e-12)
    for mine, theirs in zip(got[2], expected[2]):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-12)


# (key shape, value shape): value head sizes other than the key's, value lengths at most the key's
# (a longer value makes torch's flash kernel read past the key), grouped heads
KEY_VALUE = {
    "Ev < E": ((B, H, 5, 6), (B, H, 5, 2)),
    "Ev > E": ((B, H, 5, 6), (B, H, 5, 7)),
    "Ev 1": ((B, H, 5, 6), (B, H, 5, 1)),
    "shorter value": ((B, H, 5, 6), (B, H, 4, 6)),
    "one value row": ((B, H, 5, 6), (B, H, 1, 6)),
    "shorter value, Ev < E": ((B, H, 5, 6), (B, H, 4, 2)),
    "grouped heads": ((B, 2, 5, 6), (B, 2, 5, 6)),
    "grouped, Ev < E": ((B, 2, 5, 6), (B, 2, 5, 3)),
    "key and value heads differ": ((B, 2, 5, 6), (B, 1, 5, 6)),
    "heads that do not divide": ((B, 3, 5, 6), (B, 3, 5, 6)),
    "one key row, longer value": ((B, H, 1, 6), (B, H, 5, 6)),
}
MASKS = {"none": None, "bool": ("bool", (L, 5)), "float": ("float", (L, 5)), "4-d bool": ("bool", (B, 1, L, 5)),
         "one column": ("float", (L, 1)), "value-long": ("float", (L, 4))}


@pytest.mark.parametrize("gqa", [False, True])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("key_value", KEY_VALUE)
@pytest.mark.pairwise_in_ci(seed=61)
def test_sdpa_value_shapes_masks_and_heads_match_torch(key_value, mask, causal, gqa):
    key_shape, value_shape = KEY_VALUE[key_value]
    if key_value == "one key row, longer value" and mask in ("none", "one column") and (gqa or key_shape[1] == H):
        pytest.skip("torch's flash kernel reads past the key here")
    _assert_same(((B, H, L, 6), key_shape, value_shape), MASKS[mask], is_causal=causal, enable_gqa=gqa, scale=0.3)


@pytest.mark.parametrize("shapes", [
    ((L, 4), (5, 4), (5, 2)), ((2, L, 4), (2, 5, 4), (2, 5, 7)), ((L, 4), (5, 4), (4, 2)),
    ((2, L, 4), (1, 5, 4), (2, 5, 3)), ((2, 1, L, 4), (1, 2, 5, 4), (2, 2, 5, 3)), ((L, 4), (5, 3), (5, 2)),
])
@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_lower_ranks_and_broadcast_batches_match_torch(shapes, causal):
    _assert_same(shapes, None, is_causal=causal)


def test_sdpa_value_head_size_gradcheck():
    rng = np.random.default_rng(3)
    q, k, v = (chainrule.tensor(rng.standard_normal(shape), dtype=chainrule.float64, requires_grad=True)
               for shape in ((2, 3, 4), (2, 5, 4), (2, 5, 2)))
    mask = chainrule.tensor(rng.standard_normal((3, 5)))
    attention = chainrule.nn.functional.scaled_dot_product_attention
    assert chainrule.autograd.gradcheck(lambda *t: attention(*t, attn_mask=mask), (q, k, v))
    assert chainrule.autograd.gradgradcheck(lambda *t: attention(*t, is_causal=True, scale=0.7), (q, k, v))


ARGUMENTS = {
    "dropout_p str by position": ((None, "0.1"), {}),
    "dropout_p str by keyword": ((), {"dropout_p": "0.1"}),
    "dropout_p None": ((), {"dropout_p": None}),
    "dropout_p 1-d tensor": ((None, [0.0]), {}),
    "is_causal int": ((), {"is_causal": 1}),
    "is_causal str": ((), {"is_causal": "x"}),
    "scale str": ((), {"scale": "x"}),
    "scale tensor requiring grad": ((), {"scale": "grad"}),
    "enable_gqa int": ((), {"enable_gqa": 1}),
    "scale by position": ((None, 0.0, False, 0.5), {}),
    "dropout_p 0-d tensor": ((), {"dropout_p": 0.0}),
    "dropout_p bool": ((), {"dropout_p": False}),
}


@pytest.mark.parametrize("case", ARGUMENTS)
def test_sdpa_argument_types_are_parsed_as_torch_does(case):
    def call(lib):
        args, kwargs = ARGUMENTS[case]
        args = tuple(lib.tensor(a) if isinstance(a, list) else a for a in args)
        kwargs = dict(kwargs)
        if case == "dropout_p 0-d tensor":
            kwargs["dropout_p"] = lib.tensor(0.0)
        if kwargs.get("scale") == "grad":
            kwargs["scale"] = lib.tensor(0.5, requires_grad=True)
        q = lib.tensor(np.arange(24.0).reshape(2, 3, 4) / 10)
        try:
            return lib.nn.functional.scaled_dot_product_attention(q, q, q, *args, **kwargs).numpy()
        except Exception as error:  # noqa: BLE001
            return type(error).__name__, str(error)

    expected, got = call(torch), call(chainrule)
    if isinstance(expected, tuple):
        assert got == expected
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-6)


# ---------------------------------------------------------------- out=
def _m(lib):
    return lib.tensor([[2.0, 0.5, 0.1], [0.5, 3.0, 0.2], [0.1, 0.2, 4.0]], dtype=lib.float64)


def _v(lib):
    return lib.tensor([0.3, -1.2, 0.7, 2.0], dtype=lib.float64)


# name: (call given the library, the input and the out; a maker of the input)
OUT_CALLS = {
    "fft.fft": (lambda L, x, o: L.fft.fft(x, out=o), _v),
    "fft.rfft": (lambda L, x, o: L.fft.rfft(x, out=o), _v),
    "fft.irfft": (lambda L, x, o: L.fft.irfft(x, out=o), _v),
    "fft.ihfft": (lambda L, x, o: L.fft.ihfft(x, out=o), _v),
    "diff": (lambda L, x, o: L.diff(x, out=o), _v),
    "msort": (lambda L, x, o: L.msort(x, out=o), _m),
    "take_along_dim": (lambda L, x, o: L.take_along_dim(x, L.zeros(3, 1, dtype=L.long), 1, out=o), _m),
    "nanmean": (lambda L, x, o: L.nanmean(x, 0, out=o), _m),
    "linalg.det": (lambda L, x, o: L.linalg.det(x, out=o), _m),
    "linalg.solve_ex": (lambda L, x, o: L.linalg.solve_ex(x, x, out=(o, L.zeros((), dtype=L.int32))), _m),
    "qr": (lambda L, x, o: L.qr(x, out=(o, L.zeros(3, 3, dtype=L.float64))), _m),
    "frobenius_norm": (lambda L, x, o: L.frobenius_norm(x, (0, 1), out=o), _m),
    "special.ndtri": (lambda L, x, o: L.special.ndtri(x.sigmoid(), out=o), _v),
    "special.entr": (lambda L, x, o: L.special.entr(x, out=o), _v),
    "softmax": (lambda L, x, o: L.softmax(x, 0, out=o), _v),
    "permute_copy": (lambda L, x, o: L.permute_copy(x, (1, 0), out=o), _m),
    "special.bessel_j0": (lambda L, x, o: L.special.bessel_j0(x, out=o), _v),
    "special.chebyshev_polynomial_t": (lambda L, x, o: L.special.chebyshev_polynomial_t(x, 3, out=o), _v),
    "eq": (lambda L, x, o: L.eq(x, 0.7, out=o), _v),
    "quantile": (lambda L, x, o: L.quantile(x, 0.5, out=o), _v),
    "nanquantile": (lambda L, x, o: L.nanquantile(x, 0.5, out=o), _v),
    "nuclear_norm": (lambda L, x, o: L.nuclear_norm(x, out=o), _m),
    "linalg.cholesky": (lambda L, x, o: L.linalg.cholesky(x, out=o), _m),
    "linalg.cross": (lambda L, x, o: L.linalg.cross(x, x.flip(0), out=o), _m),
    "scatter_add": (lambda L, x, o: L.scatter_add(x, 0, L.zeros(3, 3, dtype=L.long), x, out=o), _m),
    "renorm": (lambda L, x, o: L.renorm(x, 2, 0, 1.0, out=o), _m),
    "index_add": (lambda L, x, o: L.index_add(x, 0, L.tensor([0, 2, 1]), x, out=o), _m),
    "triangular_solve": (lambda L, x, o: L.triangular_solve(x, x.triu(), out=(o, L.zeros(3, 3, dtype=L.float64))),
                         _m),
    "linalg.pinv": (lambda L, x, o: L.linalg.pinv(x, out=o), _m),
    "linalg.matrix_rank": (lambda L, x, o: L.linalg.matrix_rank(x, out=o), _m),
    "cholesky_inverse": (lambda L, x, o: L.cholesky_inverse(x.tril(), out=o), _m),
    "linalg.householder_product": (lambda L, x, o: L.linalg.householder_product(x, x[0], out=o), _m),
}
OUT_VARIANTS = ("input requires grad", "leaf out requires grad", "non-leaf out requires grad", "float32 out",
                "int32 out")


def _out_template(call, make):
    """torch's result (the first of a tuple) for a plain call, from an empty out it resizes."""
    for dtype in (torch.float64, torch.complex128, torch.bool):
        try:
            result = call(torch, make(torch), torch.empty(0, dtype=dtype))
        except RuntimeError:
            continue
        return result if isinstance(result, torch.Tensor) else result[0]
    raise AssertionError("no out dtype takes the result")


def _out_outcome(lib, name, variant):
    call, make = OUT_CALLS[name]
    x = make(lib)
    first = _out_template(call, make)
    dtype = getattr(lib, str(first.dtype).split(".")[-1])
    if variant == "float32 out" and dtype.is_floating_point:
        dtype = lib.float32
    elif variant == "int32 out":
        dtype = lib.int32
    out = lib.zeros(tuple(first.shape), dtype=dtype)
    if variant == "input requires grad":
        x.requires_grad_(True)
    elif variant != "float32 out" and variant != "int32 out":
        if not (dtype.is_floating_point or dtype.is_complex):
            return None
        out.requires_grad_(True)
        if variant.startswith("non-leaf"):
            out = out.clone()
    try:
        call(lib, x, out)
    except Exception as error:  # noqa: BLE001
        return type(error).__name__, str(error)
    grad_fn = None if out.grad_fn is None else type(out.grad_fn).__name__
    return "written", out.detach().numpy(), out.dtype.is_floating_point, out.requires_grad, grad_fn


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("variant", OUT_VARIANTS)
@pytest.mark.parametrize("name", OUT_CALLS)
def test_out_refusals_name_torchs_kernel_and_rule(name, variant):
    if name == "nanmean" and variant.endswith("32 out"):
        pytest.skip("left alone: torch sums a float32 out in float32, and refuses an int32 one by nansum's kernel")
    expected = _out_outcome(torch, name, variant)
    got = _out_outcome(chainrule, name, variant)
    if expected is None or expected[0] != "written":
        assert got == expected
        return
    assert got is not None and got[0] == "written", got
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-10, atol=1e-12)
    assert got[2:] == expected[2:]


# ---------------------------------------------------------------- cdist's second derivative, scatter's src
CDIST_MODES = ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist", "donot_use_mm_for_euclid_dist")


def _cdist_twice(lib, p, mode, rows):
    rng = np.random.default_rng(0)
    a = lib.tensor(rng.standard_normal((2, rows, 3)), requires_grad=True)
    b = lib.tensor(rng.standard_normal((1, rows + 1, 3)), requires_grad=True)
    distances = lib.cdist(a, b, p=p, compute_mode=mode)
    first = lib.autograd.grad(distances.sum(), (a, b), create_graph=True)
    try:
        second = lib.autograd.grad(sum((g * g).sum() for g in first), (a, b))
    except Exception as error:  # noqa: BLE001
        return type(error).__name__, str(error)
    return [g.detach().numpy() for g in (*first, *second)]


@pytest.mark.parametrize("rows", [4, 30])
@pytest.mark.parametrize("mode", CDIST_MODES)
@pytest.mark.parametrize("p", [0.0, 0.5, 1.0, 2.0, 3.0, float("inf")])
def test_cdist_second_derivative_only_on_torchs_matrix_product_path(p, mode, rows):
    expected, got = _cdist_twice(torch, p, mode, rows), _cdist_twice(chainrule, p, mode, rows)
    if isinstance(expected, tuple):
        assert got == expected
        return
    assert not isinstance(got, tuple), got
    for mine, theirs in zip(got, expected):
        np.testing.assert_allclose(mine, theirs, rtol=1e-9, atol=1e-12)


def test_cdist_first_derivative_graph_is_torchs():
    a = chainrule.randn(4, 3, dtype=chainrule.float64, requires_grad=True)
    b = chainrule.randn(5, 3, dtype=chainrule.float64, requires_grad=True)
    distances = chainrule.cdist(a, b, p=3.0)
    assert distances.grad_fn.name() == "CdistBackward0"
    assert [type(node).__name__ for node, _ in distances.grad_fn.next_functions] == ["AccumulateGrad"] * 2
    grad_a, _ = chainrule.autograd.grad(distances.sum(), (a, b), create_graph=True)
    assert grad_a.grad_fn.name() == "CdistBackwardBackward0"
    assert chainrule.autograd.gradcheck(lambda x, y: chainrule.cdist(x, y, p=3.0), (a, b))


SCATTER_SHAPES = [((3, 5), (2, 3), (3, 4), 0), ((3, 5), (2, 3), (3, 4), 1), ((4,), (2,), (5,), 0),
                  ((3, 5), (2, 0), (3, 4), 0), ((3, 5), (3, 4), (3, 4), 1), ((2, 3, 4), (2, 2, 2), (2, 3, 4), 2)]


@pytest.mark.parametrize("op", ["scatter_add", "scatter", "scatter_reduce"])
@pytest.mark.parametrize("shapes", SCATTER_SHAPES)
def test_scatter_with_an_index_smaller_than_src_matches_torch(op, shapes):
    def run(lib):
        self_shape, index_shape, src_shape, dim = shapes
        rng = np.random.default_rng(0)
        x = lib.tensor(rng.standard_normal(self_shape), requires_grad=True)
        src = lib.tensor(rng.standard_normal(src_shape), requires_grad=True)
        index = lib.tensor(rng.integers(0, self_shape[dim], index_shape))
        out = (lib.scatter_reduce(x, dim, index, src, "sum") if op == "scatter_reduce"
               else getattr(lib, op)(x, dim, index, src))
        try:
            out.backward(lib.tensor(np.random.default_rng(1).standard_normal(tuple(out.shape))))
        except RuntimeError as error:
            return out.detach().numpy(), str(error)
        return out.detach().numpy(), x.grad.numpy(), src.grad.numpy()

    expected, got = run(torch), run(chainrule)
    assert len(got) == len(expected)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-12)
    if len(expected) == 2:
        assert got[1] == expected[1]
    else:
        for mine, theirs in zip(got[1:], expected[1:]):
            np.testing.assert_allclose(mine, theirs, rtol=1e-12)


# ---------------------------------------------------------------- singular values' gradient
SINGULAR = {
    "zero 2x2": np.zeros((2, 2)), "zero 2x3": np.zeros((2, 3)), "zero 3x2": np.zeros((3, 2)),
    "diag 1, 0": np.diag([1.0, 0.0]), "diag 2, 2, 0": np.diag([2.0, 2.0, 0.0]), "identity": np.eye(3),
    "rotation": np.array([[0.0, 2.0], [-2.0, 0.0]]), "rank 1 3x4": np.outer([1.0, 2, 3], [0.5, -1, 2, 1]),
    "batch": np.stack([np.zeros((2, 2)), np.outer([1.0, 2], [3, 4]), np.diag([1.0, -3.0])]),
}
SINGULAR_CALLS = {
    "matrix_norm nuc": lambda L, A: L.linalg.matrix_norm(A, "nuc"),
    "matrix_norm -2": lambda L, A: L.linalg.matrix_norm(A, -2),
    "matrix_norm 2": lambda L, A: L.linalg.matrix_norm(A, 2),
    "svdvals": lambda L, A: L.linalg.svdvals(A) * L.arange(1.0, 1 + min(A.shape[-2:]), dtype=A.dtype),
}


@pytest.mark.parametrize("call", SINGULAR_CALLS)
@pytest.mark.parametrize("matrix", SINGULAR)
def test_singular_value_gradients_at_rank_deficient_inputs_match_torch(matrix, call):
    def gradient(lib):
        A = lib.tensor(SINGULAR[matrix], dtype=lib.float64, requires_grad=True)
        SINGULAR_CALLS[call](lib, A).sum().backward()
        return A.grad.numpy()

    np.testing.assert_allclose(gradient(chainrule), gradient(torch), rtol=1e-10, atol=1e-12)


def test_singular_values_alone_gradcheck_and_full_svd_unchanged():
    rng = np.random.default_rng(5)
    A = chainrule.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda a: chainrule.linalg.svdvals(a), (A,))
    assert chainrule.autograd.gradgradcheck(lambda a: chainrule.linalg.matrix_norm(a, "nuc"), (A,))
    # U and Vh used too: the general rule
    assert chainrule.autograd.gradcheck(lambda a: chainrule.linalg.svd(a, full_matrices=False)[0].abs().sum()
                                        + chainrule.linalg.svd(a)[1].sum(), (A,))
