"""Small differences from torch 2.13 noticed on 4 Dec and mended in lane mendL, each compared with
torch itself.

* ``torch.einsum`` of one operand: a repeated label (``'ii->i'``, ``'bii->bi'``) is torch's
  diagonal view (its strides, its ``_base``, a write into it reaching the operand), and a sum
  (``'ij->i'``, ``'ij->'``) is ``SumBackward1`` over a ``PermuteBackward0``, as torch's graph
  walks, where chainrule made a contiguous copy under ``EinsumBackward0``;
* ``torch.einsum`` of two operands is laid out as torch's bmm leaves it (``'bik,oik->bio'`` is a
  permuted view of a (i, b, o) buffer), not always contiguous.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _pair(shapes, seed=0):
    """The same random float32 operands for torch and for chainrule."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    return [torch.tensor(a) for a in arrays], [chainrule.tensor(a) for a in arrays]


def _graph(fn) -> list:
    """The names of a grad_fn and of its first inputs' nodes down to the leaf, as a user walks it."""
    names = []
    while fn is not None:
        names.append(type(fn).__name__)
        inputs = [node for node, _ in fn.next_functions if node is not None]
        fn = inputs[0] if inputs else None
    return names


def _strides_of_dims_over_one(t) -> tuple:
    """Strides of the dims of size > 1 (a size-1 dim's stride is arbitrary, torch's view picks one)."""
    return tuple(stride for size, stride in zip(t.shape, t.stride()) if size != 1)


ONE_OPERAND = [("ii->i", [(3, 3)]), ("bii->bi", [(2, 3, 3)]), ("ii", [(3, 3)]), ("iij->ji", [(3, 3, 4)]),
               ("iji->ij", [(3, 4, 3)]), ("iii->i", [(3, 3, 3)]), ("...ii->...i", [(2, 3, 3)]),
               ("ij->i", [(3, 4)]), ("ij->", [(3, 4)]), ("ji->i", [(3, 4)]), ("ijk->ki", [(2, 3, 4)]),
               ("i...->...", [(2, 3, 4)]), ("ij->ji", [(3, 4)])]


@pytest.mark.parametrize("equation,shapes", ONE_OPERAND, ids=[e for e, _ in ONE_OPERAND])
def test_one_operand_einsum_is_torchs_view_and_graph(equation, shapes):
    (t,), (c,) = _pair(shapes)
    t.requires_grad_(True)
    c.requires_grad_(True)
    expected, got = torch.einsum(equation, t), chainrule.einsum(equation, c)
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=1e-6, atol=1e-6)
    assert got.stride() == expected.stride()
    assert _graph(got.grad_fn) == _graph(expected.grad_fn)
    expected.sum().backward()
    got.sum().backward()
    np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy())


@pytest.mark.parametrize("equation,shape", [("ii->i", (3, 3)), ("bii->bi", (2, 3, 3)), ("iji->ij", (3, 4, 3))])
def test_diagonal_einsum_writes_reach_the_operand(equation, shape):
    (t,), (c,) = _pair([shape])
    expected, got = torch.einsum(equation, t), chainrule.einsum(equation, c)
    assert (got._base is c) == (expected._base is t) is True
    expected.add_(10)
    got.add_(10)
    np.testing.assert_allclose(c.numpy(), t.numpy())


@pytest.mark.parametrize("dtype", ["int32", "bool"])
def test_one_operand_einsum_dtypes_as_torch(dtype):
    values = np.arange(9).reshape(3, 3) % 2
    for equation in ("ij->i", "ii->i", "ii"):
        expected = torch.einsum(equation, torch.tensor(values.astype(dtype)))
        got = chainrule.einsum(equation, chainrule.tensor(values.astype(dtype)))
        assert str(got.dtype).split(".")[-1] == str(expected.dtype).split(".")[-1]
        np.testing.assert_array_equal(got.numpy(), expected.numpy())


TWO_OPERANDS = [("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]), ("bhqk,bhkd->bhqd", [(2, 3, 4, 6), (2, 3, 6, 5)]),
                ("nqhd,nkhd->nhqk", [(2, 4, 3, 5), (2, 6, 3, 5)]), ("nhqk,nkhd->nqhd", [(2, 3, 4, 6), (2, 6, 3, 5)]),
                ("bhqd,bhkd->bqhk", [(2, 3, 4, 5), (2, 3, 6, 5)]), ("bik,oik->bio", [(2, 3, 4), (5, 3, 4)]),
                ("bchw,bkc->bkhw", [(2, 3, 4, 5), (2, 6, 3)]), ("nchw,kc->nkhw", [(2, 3, 4, 5), (6, 3)]),
                ("ij,jk->ki", [(3, 4), (4, 5)]), ("bqd,bkd->bkq", [(2, 3, 4), (2, 5, 4)]),
                ("bld,bmd->lmb", [(2, 3, 4), (2, 5, 4)]), ("bn,anm->bam", [(2, 3), (4, 3, 5)]),
                ("i,j->ij", [(3,), (4,)]), ("bi,bj->bij", [(2, 3), (2, 4)]), ("ij,j->i", [(3, 4), (4,)]),
                ("...ij,...kj->...ki", [(3, 4), (2, 5, 4)]), ("b...d,od->b...o", [(2, 3, 4, 5), (6, 5)]),
                ("bij,bjk->bik", [(1, 3, 4), (2, 4, 5)]), ("bij,bkj->bki", [(2, 1, 4), (2, 5, 4)]),
                ("bhqd,bhkd->bhqk", [(0, 3, 4, 5), (0, 3, 6, 5)])]


@pytest.mark.parametrize("equation,shapes", TWO_OPERANDS, ids=[e for e, _ in TWO_OPERANDS])
def test_two_operand_einsum_is_laid_out_as_torchs(equation, shapes):
    ts, cs = _pair(shapes)
    for t, c in zip(ts, cs):
        t.requires_grad_(True)
        c.requires_grad_(True)
    expected, got = torch.einsum(equation, *ts), chainrule.einsum(equation, *cs)
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert _strides_of_dims_over_one(got) == _strides_of_dims_over_one(expected)
    assert got.is_contiguous() == expected.is_contiguous()
    weights = np.random.default_rng(1).standard_normal(tuple(expected.shape)).astype(np.float32)
    (expected * torch.tensor(weights)).sum().backward()
    (got * chainrule.tensor(weights)).sum().backward()
    for t, c in zip(ts, cs):
        np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_two_operand_einsum_view_takes_torchs_view_and_reshape():
    ts, cs = _pair([(2, 3, 4), (5, 3, 4)])
    expected, got = torch.einsum("bik,oik->bio", *ts), chainrule.einsum("bik,oik->bio", *cs)
    with pytest.raises(RuntimeError):
        expected.view(-1)
    with pytest.raises(RuntimeError):
        got.view(-1)
    np.testing.assert_allclose(got.reshape(-1).numpy(), expected.reshape(-1).numpy(), rtol=1e-6)


@pytest.mark.parametrize("equation,shapes", [("bik,oik->bio", [(2, 3, 4), (5, 3, 4)]),
                                             ("...ij,...kj->...ki", [(3, 4), (2, 5, 4)]),
                                             ("ij,jk->ki", [(3, 4), (4, 5)])])
def test_two_operand_einsum_layout_on_the_device_stand_in(equation, shapes):
    from chainrule._backend import use_standin_cuda

    ts, cs = _pair(shapes)
    expected = torch.einsum(equation, *ts)
    with use_standin_cuda():
        operands = [c.to("cuda").requires_grad_(True) for c in cs]
        got = chainrule.einsum(equation, *operands)
        assert got.device.type == "cuda"
        assert got.stride() == expected.stride()
        got.sum().backward()
        np.testing.assert_allclose(got.detach().cpu().numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
        assert all(o.grad.shape == o.shape for o in operands)


# ---------------------------------------------------------------- 2. the add* products' device errors
_PRODUCTS_ACROSS_DEVICES = {
    "addmm": lambda lib, a, b: lib.addmm(a.reshape(2, 2), a.reshape(2, 2), b.reshape(2, 2)),
    "addmm input elsewhere": lambda lib, a, b: lib.addmm(b.reshape(2, 2), a.reshape(2, 2), a.reshape(2, 2)),
    "addmm method": lambda lib, a, b: a.reshape(2, 2).addmm(a.reshape(2, 2), b.reshape(2, 2)),
    "addmm_": lambda lib, a, b: a.reshape(2, 2).clone().addmm_(a.reshape(2, 2), b.reshape(2, 2)),
    "addmv": lambda lib, a, b: lib.addmv(a[:2], a.reshape(2, 2), b[:2]),
    "addmv input elsewhere": lambda lib, a, b: lib.addmv(b[:2], a.reshape(2, 2), a[:2]),
    "addmv method": lambda lib, a, b: a[:2].addmv(a.reshape(2, 2), b[:2]),
    "addmv_": lambda lib, a, b: a[:2].clone().addmv_(a.reshape(2, 2), b[:2]),
    "addr": lambda lib, a, b: lib.addr(a.reshape(2, 2), a[:2], b[:2]),
    "addr input elsewhere": lambda lib, a, b: lib.addr(b.reshape(2, 2), a[:2], a[:2]),
    "addr method": lambda lib, a, b: a.reshape(2, 2).addr(a[:2], b[:2]),
    "addr_": lambda lib, a, b: a.reshape(2, 2).clone().addr_(a[:2], b[:2]),
    "baddbmm": lambda lib, a, b: lib.baddbmm(a.reshape(1, 2, 2), a.reshape(1, 2, 2), b.reshape(1, 2, 2)),
    "baddbmm input elsewhere": lambda lib, a, b: lib.baddbmm(b.reshape(1, 2, 2), a.reshape(1, 2, 2),
                                                             a.reshape(1, 2, 2)),
    "baddbmm method": lambda lib, a, b: a.reshape(1, 2, 2).baddbmm(a.reshape(1, 2, 2), b.reshape(1, 2, 2)),
    "baddbmm_": lambda lib, a, b: a.reshape(1, 2, 2).clone().baddbmm_(a.reshape(1, 2, 2), b.reshape(1, 2, 2)),
}


@pytest.mark.parametrize("case", list(_PRODUCTS_ACROSS_DEVICES))
@pytest.mark.parametrize("other_device", ["cpu", "cuda:1"])
def test_mixed_devices_name_the_added_product(case, other_device):
    from chainrule._backend import use_standin_cuda

    op = case.split()[0].rstrip("_")
    with use_standin_cuda(devices=2):
        a = chainrule.ones(4, device="cuda:0")
        b = chainrule.ones(4, device=other_device)
        with pytest.raises(RuntimeError, match=rf"\(when checking the arguments of {op}\)$"):
            _PRODUCTS_ACROSS_DEVICES[case](chainrule, a, b)


@pytest.mark.parametrize("case", [c for c in _PRODUCTS_ACROSS_DEVICES if "elsewhere" not in c])
def test_added_products_on_one_device_still_compute_as_torch(case):
    values = np.arange(1, 5, dtype=np.float32)
    expected = _PRODUCTS_ACROSS_DEVICES[case](torch, torch.tensor(values), torch.tensor(values[::-1].copy()))
    got = _PRODUCTS_ACROSS_DEVICES[case](chainrule, chainrule.tensor(values), chainrule.tensor(values[::-1].copy()))
    np.testing.assert_allclose(got.numpy(), expected.numpy())
