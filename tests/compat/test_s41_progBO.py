"""Found by the corpus programs conv_tasnet_pit, sasrec_sequential_rec and pointnet2_set_abstraction,
each case checked against torch."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _both(array):
    return torch.from_numpy(array.copy()), chainrule.from_numpy(array.copy())


def _ball_query_indices(batch, centroids, points, rng):
    """PointNet++'s query_ball_point before its sort: point indices, those outside the ball set to N."""
    inside = rng.random((batch, centroids, points)) < 0.2
    return np.where(inside, np.arange(points), points).astype(np.int64)


@pytest.mark.parametrize("batch", [24, 64])  # 64 x 32 x 128 is past the old 100,000-element replay limit
def test_sort_of_ball_query_rows_gives_torchs_tie_order(batch):
    group_idx = _ball_query_indices(batch, 32, 128, np.random.default_rng(batch))
    t, c = _both(group_idx)
    t_values, t_indices = t.sort(dim=-1)
    c_values, c_indices = c.sort(dim=-1)
    np.testing.assert_array_equal(c_values.numpy(), t_values.numpy())
    np.testing.assert_array_equal(c_indices.numpy(), t_indices.numpy())
    assert c_indices.dtype == chainrule.int64 and c_indices.shape == t_indices.shape


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("dtype", ["int64", "float32", "float64", "bool", "uint8"])
def test_sort_and_argsort_of_many_tied_rows_match_torch(dtype, descending):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2 if dtype == "bool" else 20, size=(900, 130)).astype(dtype)
    if dtype.startswith("float"):
        x[rng.random(x.shape) < 0.05] = np.nan  # NaNs tie with each other, as the largest value
    t, c = _both(x)
    for dim in (1, 0):
        np.testing.assert_array_equal(chainrule.sort(c, dim=dim, descending=descending)[1].numpy(),
                                      torch.sort(t, dim=dim, descending=descending)[1].numpy())
        np.testing.assert_array_equal(chainrule.argsort(c, dim=dim, descending=descending).numpy(),
                                      torch.argsort(t, dim=dim, descending=descending).numpy())


def test_sort_of_a_non_contiguous_tied_input_matches_torch():
    x = np.random.default_rng(5).integers(0, 6, size=(40, 300))
    t, c = _both(x)
    np.testing.assert_array_equal(c.t().sort(dim=0)[1].numpy(), t.t().sort(dim=0)[1].numpy())
    np.testing.assert_array_equal(c[:, ::2].sort(dim=-1, descending=True)[1].numpy(),
                                  t[:, ::2].sort(dim=-1, descending=True)[1].numpy())


def test_sort_of_tied_rows_keeps_its_gradient_routing():
    x = np.random.default_rng(6).integers(0, 4, size=(50, 40)).astype(np.float64)
    t, c = _both(x)
    t.requires_grad_(True)
    c.requires_grad_(True)
    weights = np.arange(40, dtype=np.float64)
    t_values = t.sort(dim=1)[0]
    c_values = c.sort(dim=1)[0]
    assert c_values.grad_fn.name() == t_values.grad_fn.name()
    (t_values * torch.from_numpy(weights)).sum().backward()
    (c_values * chainrule.from_numpy(weights)).sum().backward()
    np.testing.assert_array_equal(c.grad.numpy(), t.grad.numpy())


@pytest.mark.parametrize("equation, shapes", [
    ("bij,pij->bp", [(2, 2, 2), (3, 2, 2)]),  # kaituoxu's Conv-TasNet PIT: permutations by one-hot matrices
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ij,jk->ki", [(2, 3), (3, 4)]),
    ("ij,k->ik", [(2, 3), (4,)]),
    ("ii,i->", [(3, 3), (3,)]),
    ("i...,i...->...", [(2, 3), (2, 3)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("ab,c,c,dc->dac", [(2, 3), (4,), (4,), (5, 4)]),
    ("b l d, d n -> b l d n", [(2, 3, 4), (4, 5)]),  # no label summed: a broadcast product
    ("ij,ij->ji", [(2, 3), (2, 3)]),
    ("ii,j->ij", [(3, 3), (2,)]),
    ("...,...->...", [(2, 3), (3,)]),
    (",->", [(), ()]),
])
def test_einsum_of_several_operands_is_named_as_torchs_last_node(equation, shapes):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    t_ops = [torch.tensor(a, requires_grad=True) for a in arrays]
    c_ops = [chainrule.tensor(a, requires_grad=True) for a in arrays]
    t_out, c_out = torch.einsum(equation, *t_ops), chainrule.einsum(equation, *c_ops)
    assert c_out.grad_fn.name() == t_out.grad_fn.name()
    np.testing.assert_allclose(c_out.detach().numpy(), t_out.detach().numpy(), rtol=1e-5, atol=1e-6)
    t_out.sum().backward()
    c_out.sum().backward()
    for t_op, c_op in zip(t_ops, c_ops):
        np.testing.assert_allclose(c_op.grad.numpy(), t_op.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_einsum_of_a_list_of_operands_is_named_as_torchs():
    source = np.random.default_rng(1).standard_normal((4, 2, 2)).astype(np.float32)
    perms = [[0, 1], [1, 0]]
    names = []
    for lib in (torch, chainrule):
        snr = lib.tensor(source, requires_grad=True)
        index = lib.tensor(perms).unsqueeze(2)
        one_hot = snr.new_zeros((*index.shape[:2], 2)).scatter_(2, index, 1)
        names.append(lib.einsum("bij,pij->bp", [snr, one_hot]).grad_fn.name())
    assert names[1] == names[0] == "ViewBackward0"
