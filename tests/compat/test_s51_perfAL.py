"""Session 51, lane perfAL: the cheaper routes of topk, sort/argsort and max/min(dim) on one row
(1-d gather by plain indexing, topk's NaN-free check folded into its order test, sort's tie search
from its own order), preserve_layout's contiguous case, svd's QR route through NumPy's LAPACK
gufuncs, and torch.linalg's cached public faces: values, indices, layouts and gradients as torch's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import chainrule
from chainrule.autograd import gradcheck
from chainrule.ops import cpu_sort_order, decompositions


def _values(kind: str, shape, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "distinct":
        return rng.standard_normal(shape)
    if kind == "ties":
        return rng.integers(0, 4, shape).astype(np.float64)
    if kind == "nan":
        x = rng.standard_normal(shape)
        x[rng.random(shape) < 0.15] = np.nan
        return x
    return rng.choice([0.0, -0.0, 1.0, -1.0], shape)  # signed zeros


def _both(x: np.ndarray, dtype: str, grad: bool):
    ours = chainrule.from_numpy(x.copy(order="K")).to(getattr(chainrule, dtype))
    theirs = torch.from_numpy(x.copy(order="K")).to(getattr(torch, dtype))
    if grad:
        ours.requires_grad_(True)
        theirs.requires_grad_(True)
    return ours, theirs


def _same(ours, theirs) -> None:
    np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())
    assert ours.dtype == getattr(chainrule, str(theirs.dtype).split(".")[1])
    assert tuple(ours.shape) == tuple(theirs.shape)
    if theirs.numel():  # (torch's gradient of a zero-size input has zero strides; nothing reads them)
        assert ours.stride() == theirs.stride()


def _same_result(x: np.ndarray, dtype: str, op: str, *args, view=None, **kwargs) -> None:
    """``op(view(x), *args, **kwargs)``'s outputs on chainrule and torch, and (float dtypes) the
    gradient of a weighted sum of its first output."""
    grad = dtype != "int64"
    ours_in, theirs_in = _both(x, dtype, grad)
    ours, theirs = (getattr(lib, op)(t if view is None else view(t), *args, **kwargs)
                    for lib, t in ((chainrule, ours_in), (torch, theirs_in)))
    ours, theirs = (tuple(ours), tuple(theirs)) if isinstance(theirs, tuple) else ((ours,), (theirs,))
    for a, b in zip(ours, theirs):
        _same(a, b)
    if grad and ours[0].dtype.is_floating_point:
        weights = np.arange(1, ours[0].numel() + 1, dtype=np.float64).reshape(tuple(ours[0].shape))
        (ours[0] * chainrule.from_numpy(weights).to(ours[0].dtype)).sum().backward()
        (theirs[0] * torch.from_numpy(weights).to(theirs[0].dtype)).sum().backward()
        _same(ours_in.grad, theirs_in.grad)


def _transposed(t):
    return t.t()


def _every_other_row(t):
    return t[::2]


def _every_other_column(t):
    return t[:, ::2]


KINDS = ["distinct", "ties", "nan", "zeros"]
DTYPES = ["float32", "float64", "int64"]


def _cases():
    for kind in KINDS:
        for dtype in DTYPES:
            if not (dtype == "int64" and kind == "nan"):
                yield kind, dtype


# --- 1. topk ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,dtype", list(_cases()))
@pytest.mark.parametrize("shape,dim", [((300,), 0), ((300,), -1), ((7,), 0), ((6, 40), -1), ((40, 6), 0),
                                       ((3, 4, 50), 1)])
@pytest.mark.pairwise_in_ci(seed=61)
def test_topk_is_torchs(kind, dtype, shape, dim):
    x = _values(kind, shape, seed=len(shape) * 100 + shape[0])
    n = shape[dim]
    for k in sorted({1, 3, n - 1, n}):
        for largest in (True, False):
            for sorted_ in (True, False):
                _same_result(x, dtype, "topk", k, dim, largest, sorted_)


def test_topk_of_a_transposed_input_and_of_zero_rows_is_torchs():
    x = _values("distinct", (50, 6), seed=1)
    for dtype in ("float32", "int64"):
        _same_result(x, dtype, "topk", 3, -1, view=_transposed)
        _same_result(x, dtype, "topk", 3, 0, largest=False, view=_every_other_row)
    empty = np.zeros((0, 5))
    for k, dim in [(2, 1), (0, 1), (0, 0)]:
        _same_result(empty, "float32", "topk", k, dim)


def test_topk_of_one_row_with_a_nan_beside_ties_is_torchs():
    # a NaN chosen among the k beside a tie at the k-th: the order test, not the count, sends it to the replay
    x = np.array([np.nan, 3.0, 3.0, 1.0, 3.0, -2.0])
    for k in range(1, 6):
        for largest in (True, False):
            _same_result(x, "float64", "topk", k, largest=largest)


def test_topk_of_rows_whose_counts_only_add_up_is_torchs():
    # one row short of k at its k-th best (a NaN among the k), another over (a tie there): the total
    # count is k per row, and the strict order test sends both to the replay
    x = np.array([[np.nan, 5.0, 4.0, 1.0, 0.5], [5.0, 4.0, 4.0, 1.0, 0.5], [3.0, 2.0, 1.0, 0.0, -1.0]])
    for k in (1, 2, 3):
        for largest in (True, False):
            _same_result(x, "float64", "topk", k, 1, largest)
            _same_result(np.ascontiguousarray(x.T), "float32", "topk", k, 0, largest)


# --- 2. sort and argsort ------------------------------------------------------------------------

@pytest.mark.parametrize("kind,dtype", list(_cases()))
@pytest.mark.parametrize("shape,dim", [((300,), 0), ((300,), -1), ((2,), 0), ((8, 16), 1), ((16, 8), -2),
                                       ((3, 5, 7), 1)])
def test_sort_and_argsort_are_torchs(kind, dtype, shape, dim):
    x = _values(kind, shape, seed=len(shape) * 10 + shape[0])
    for descending in (False, True):
        _same_result(x, dtype, "sort", dim, descending)
        _same_result(x, dtype, "argsort", dim, descending)
        _same_result(x, dtype, "sort", stable=True, dim=dim, descending=descending)


@pytest.mark.parametrize("kind", KINDS)
def test_sort_of_non_contiguous_and_empty_inputs_is_torchs(kind):
    x = _values(kind, (12, 9), seed=3)
    for dim in (0, 1, -1):
        _same_result(x, "float32", "sort", dim, view=_transposed)  # transposed: transposed values
        _same_result(x, "float64", "sort", dim, True, view=_every_other_column)  # strided: contiguous
    for shape in [(0,), (0, 4), (4, 0), (1, 5)]:
        _same_result(np.zeros(shape), "float32", "sort", -1)


# --- 3. max / min / argmax along a dim ------------------------------------------------------------

@pytest.mark.parametrize("kind,dtype", list(_cases()))
@pytest.mark.parametrize("shape", [(300,), (1,), (6, 9)])
def test_max_min_along_a_dim_are_torchs(kind, dtype, shape):
    x = _values(kind, shape, seed=shape[0])
    for dim in range(-len(shape), len(shape)):
        for keepdim in (False, True):
            _same_result(x, dtype, "max", dim, keepdim)
            _same_result(x, dtype, "min", dim, keepdim)
            _same_result(x, dtype, "argmax", dim, keepdim)
            _same_result(x, dtype, "kthvalue", 1, dim, keepdim)


@pytest.mark.parametrize("shape", [(5, 7), (1, 4), (6, 1), (3, 0), (9,), (2, 3, 4)])
def test_gather_forward_is_take_along_axis_bit_for_bit(shape):
    from chainrule.ops.reduce import Gather

    class Context:
        pass

    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    for dim in range(-len(shape), len(shape)):
        for k in (1, 3) if shape[dim] else (0,):  # (nothing to pick from an empty dim)
            index_shape = [k if i == dim % len(shape) else s for i, s in enumerate(shape)]
            index = rng.integers(0, max(shape[dim], 1), index_shape)
            for keepdim in (True, False) if k == 1 else (True,):
                ours = Gather.forward(Context(), x, index, dim, keepdim)
                expected = np.take_along_axis(x, index, axis=dim)
                expected = expected if keepdim else expected.squeeze(dim)
                assert ours.shape == expected.shape and ours.strides == expected.strides
                assert ours.tobytes() == expected.tobytes()


def test_the_changed_routes_pass_gradcheck_in_float64():
    x = chainrule.from_numpy(_values("distinct", (40,), seed=5)).requires_grad_(True)
    assert gradcheck(lambda t: chainrule.topk(t, 5)[0], (x,))
    assert gradcheck(lambda t: chainrule.topk(t, 5, largest=False, sorted=False)[0], (x,))
    assert gradcheck(lambda t: chainrule.sort(t, descending=True)[0], (x,))
    assert gradcheck(lambda t: chainrule.max(t, 0)[0], (x,))
    assert gradcheck(lambda t: chainrule.kthvalue(t, 7, 0)[0], (x,))
    a = chainrule.from_numpy(_values("distinct", (4, 3), seed=6)).requires_grad_(True)

    def svd_invariants(t):  # (sign-free functions of the factors)
        U, S, Vh = chainrule.linalg.svd(t, full_matrices=False)
        return S, U @ Vh

    assert gradcheck(svd_invariants, (a,))


# --- 4. svd of a tall matrix through QR ---------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(4, 3), (6, 4), (8, 5), (12, 8), (2, 4, 3), (3, 7, 5)])
@pytest.mark.parametrize("full_matrices", [False, True])
def test_svd_through_qr_by_gufuncs_is_numpys_route_bit_for_bit(monkeypatch, dtype, shape, full_matrices):
    A = _values("distinct", shape, seed=sum(shape)).astype(dtype)
    assert decompositions._takes_qr_path(np, A)
    by_gufuncs = decompositions._svd_through_qr(np, A, full_matrices)
    monkeypatch.setattr(decompositions, "_LAPACK", None)  # numpy.linalg.qr and svd, as before
    by_numpy = decompositions._svd_through_qr(np, A, full_matrices)
    for ours, numpys in zip(by_gufuncs, by_numpy):
        assert ours.dtype == numpys.dtype and ours.shape == numpys.shape
        assert ours.tobytes() == numpys.tobytes()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(4, 3), (6, 4), (8, 5), (2, 4, 3)])
def test_svd_through_qr_has_torchs_signs(dtype, shape):
    x = _values("distinct", shape, seed=sum(shape) + 1)
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == "float32" else {"rtol": 1e-10, "atol": 1e-12}
    for full_matrices in (False, True):
        ours_in, theirs_in = _both(x, dtype, grad=True)
        ours = chainrule.linalg.svd(ours_in, full_matrices=full_matrices)
        theirs = torch.linalg.svd(theirs_in, full_matrices=full_matrices)
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), **tol)
            assert a.dtype == getattr(chainrule, dtype) and a.stride() == b.stride()
        k = min(shape[-2:])
        for U, S, Vh in (ours, theirs):
            (S.sum() + (U[..., :k] @ Vh[..., :k, :]).pow(2).sum()).backward()
        np.testing.assert_allclose(ours_in.grad.numpy(), theirs_in.grad.numpy(), **tol)
    ours, theirs = chainrule.svd(_both(x, dtype, False)[0]), torch.svd(_both(x, dtype, False)[1])
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), b.numpy(), **tol)


def test_svd_through_qr_that_does_not_converge_falls_back_to_numpys_error(monkeypatch):
    # (a NaN singular value from the gufuncs: numpy.linalg.svd's route runs and answers as before)
    class NaNSvd:
        def __getattr__(self, name):
            return getattr(np.linalg._umath_linalg, name)

        @staticmethod
        def svd_s(R, signature):
            U, S, Vh = np.linalg._umath_linalg.svd_s(R, signature=signature)
            return U, np.full_like(S, np.nan), Vh

    A = _values("distinct", (4, 3), seed=9)
    expected = decompositions._svd_through_qr(np, A, False)
    monkeypatch.setattr(decompositions, "_LAPACK", NaNSvd())
    assert decompositions._qr_and_svd_by_gufuncs(A, False) is None
    for ours, numpys in zip(decompositions._svd_through_qr(np, A, False), expected):
        assert ours.tobytes() == numpys.tobytes()


# --- 5. mode of short rows holding NaN: std::sort's insertion sort replayed for all rows at once ---

@pytest.mark.parametrize("n", [1, 2, 3, 7, 16])
def test_mode_index_rows_is_the_one_row_replay(n):
    rng = np.random.default_rng(n)
    for fraction in (0.0, 0.2, 0.6, 1.0):
        for rows in (rng.integers(0, 4, (60, n)).astype(np.float64), rng.standard_normal((60, n)).astype(np.float32)):
            rows[rng.random(rows.shape) < fraction] = np.nan
            expected = [cpu_sort_order.mode_index(row.tolist()) for row in rows]
            np.testing.assert_array_equal(cpu_sort_order.mode_index_rows(rows), expected)
    bits = rng.random((30, n)) < 0.5
    np.testing.assert_array_equal(cpu_sort_order.mode_index_rows(bits), [cpu_sort_order.mode_index(r.tolist()) for r in bits])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(3, 4, 70), (16, 5), (17, 4), (6,)])
@pytest.mark.parametrize("ties", [False, True])
def test_mode_of_rows_with_nan_is_torchs(dtype, shape, ties):
    rng = np.random.default_rng(sum(shape))
    x = rng.integers(0, 4, shape).astype(np.float64) if ties else rng.standard_normal(shape)
    x[rng.random(shape) < 0.2] = np.nan
    for dim in range(-len(shape), len(shape)):
        for keepdim in (False, True):
            _same_result(x, dtype, "mode", dim, keepdim)


# --- 6. torch.linalg's public faces -------------------------------------------------------------

def test_linalg_functions_are_the_same_object_on_each_access_as_in_torch():
    for name in ("svd", "qr", "norm", "matmul", "diagonal"):
        assert (getattr(chainrule.linalg, name) is getattr(chainrule.linalg, name)) == \
            (getattr(torch.linalg, name) is getattr(torch.linalg, name))
    assert chainrule.linalg.svd.__name__ == torch.linalg.svd.__name__
    assert (chainrule.linalg.matmul is chainrule.matmul) == (torch.linalg.matmul is torch.matmul)
