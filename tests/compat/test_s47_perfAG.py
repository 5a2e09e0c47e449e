"""einsum of several operands runs torch's pairwise steps (since s51 mendCG; before, NumPy's optimised
einsum), planned once per (equation, shapes) where nothing records: float values bit for bit torch's,
the layout torch's, and the gradients those of a finite difference."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule.ops import linalg

torch = pytest.importorskip("torch")

from tests.compat.test_s51_mendCG import _torch_bmm_goes_to_blas  # noqa: E402

# (equation, shapes): attention, batched and plain matmuls, dot products, outer products,
# ellipsis broadcasting, repeated labels, one-sided sums, zero-size dims, 0-d outputs, 3 operands
CASES = [
    ("bhqd,bhkd->bhqk", [(2, 3, 5, 4), (2, 3, 6, 4)]),
    ("bhqk,bhkd->bhqd", [(2, 3, 5, 6), (2, 3, 6, 4)]),
    ("bhnd,bhkd->bhnk", [(3, 2, 7, 4), (3, 2, 5, 4)]),
    ("bij,bjk->bik", [(3, 4, 5), (3, 5, 6)]),
    ("ij,jk->ik", [(4, 5), (5, 6)]),
    ("ij,jk", [(4, 5), (5, 6)]),
    ("bi,bi->b", [(4, 7), (4, 7)]),
    ("i,j->ij", [(4,), (5,)]),
    ("i,i->", [(6,), (6,)]),
    ("ik,jk->", [(3, 4), (5, 4)]),
    ("...ij,...jk->...ik", [(2, 3, 4, 5), (3, 5, 6)]),
    ("...ij,...jk->...ik", [(2, 1, 4, 5), (3, 5, 6)]),
    ("b...d,b...d->b...", [(2, 3, 4), (2, 3, 4)]),
    ("bn,nd->bd", [(4, 6), (6, 3)]),
    ("ijk,kl->lij", [(3, 4, 5), (5, 6)]),
    ("bij,bkj->bki", [(3, 4, 5), (3, 6, 5)]),
    ("xyz,xz->y", [(3, 4, 5), (3, 5)]),
    ("ii,ij->j", [(4, 4), (4, 5)]),
    ("iij,jk->ik", [(3, 3, 4), (4, 2)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]),
    ("abc,cd->abd", [(4, 1, 5), (5, 3)]),
    ("bqd,bkd->bqk", [(0, 3, 4), (0, 5, 4)]),
    ("ij,jk->ik", [(0, 5), (5, 6)]),
    ("ij,jk->ik", [(4, 0), (0, 6)]),
    ("ij,jk,kl->il", [(3, 4), (4, 5), (5, 2)]),
    ("bi,bj,bk->bijk", [(2, 3), (2, 4), (2, 5)]),
    ("ab,bc,cd,de->ae", [(2, 3), (3, 4), (4, 5), (5, 2)]),
]


def _arrays(shapes, dtype, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape) for shape in shapes]
    if np.dtype(dtype).kind == "c":
        arrays = [a + 1j * rng.standard_normal(a.shape) for a in arrays]
    return [a.astype(dtype) for a in arrays]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
@pytest.mark.parametrize("equation,shapes", CASES)
def test_values_and_layout_match_torch_and_numpy(equation, shapes, dtype):
    arrays = _arrays(shapes, dtype, seed=len(equation))
    ours = chainrule.einsum(equation, *[chainrule.tensor(a) for a in arrays])
    theirs = torch.einsum(equation, *[torch.tensor(a) for a in arrays])
    assert ours.shape == theirs.shape
    assert ours.stride() == theirs.stride()
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=tolerance, atol=tolerance)
    if dtype != np.complex128 and not (_torch_bmm_goes_to_blas(equation, arrays, None)
                                       and not chainrule.ops.cpu_features.AVX512_CORE):
        # torch's own steps (permute/reshape/bmm), so bit for bit its values: on a CPU without
        # AVX-512 but where a bmm of 400+ multiply-adds runs MKL's AVX2 gemm, whose order is not
        # replayed (21 of ...ij,...jk->...ik's 144 float64 elements differed on an AMD EPYC, by up
        # to 8.9e-16: its (1, 8, 5) @ (1, 5, 18) product's last 6 columns); the tolerance above holds
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("equation,shapes", [(e, s) for e, s in CASES if 0 not in sum(s, ())])
def test_gradcheck_float64(equation, shapes):
    tensors = [chainrule.tensor(a, requires_grad=True) for a in _arrays(shapes, np.float64, seed=3)]
    assert chainrule.autograd.gradcheck(lambda *ts: chainrule.einsum(equation, *ts), tuple(tensors))


@pytest.mark.parametrize("equation,shapes", [("bhqd,bhkd->bhqk", [(2, 3, 5, 4), (2, 3, 6, 4)]),
                                             ("ij,jk,kl->il", [(3, 4), (4, 5), (5, 2)])])
def test_gradients_match_torch_complex(equation, shapes):
    arrays = _arrays(shapes, np.complex128, seed=5)
    ours = [chainrule.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    chainrule.einsum(equation, *ours).abs().sum().backward()
    torch.einsum(equation, *theirs).abs().sum().backward()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_non_contiguous_operands():
    base = _arrays([(6, 5, 8), (8, 6, 5)], np.float64, seed=7)
    ours = [chainrule.tensor(a) for a in base]
    theirs = [torch.tensor(a) for a in base]
    # a transposed view and a strided slice
    got = chainrule.einsum("bij,bkj->bik", ours[0].transpose(1, 2)[:, ::2], ours[1].permute(1, 0, 2)[:, ::2])
    want = torch.einsum("bij,bkj->bik", theirs[0].transpose(1, 2)[:, ::2], theirs[1].permute(1, 0, 2)[:, ::2])
    assert got.stride() == want.stride()
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-12)


def test_path_is_planned_once_per_equation_and_shapes():
    arrays = _arrays([(3, 4), (4, 5), (5, 2)], np.float64, seed=9)
    tensors = [chainrule.tensor(a) for a in arrays]
    first = chainrule.einsum("ij,jk,kl->il", *tensors)
    before = linalg._array_steps.cache_info()
    second = chainrule.einsum("ij,jk,kl->il", *tensors)
    after = linalg._array_steps.cache_info()
    assert after.misses == before.misses and after.hits > before.hits
    np.testing.assert_array_equal(first.numpy(), second.numpy())
