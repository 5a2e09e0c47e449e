"""Session 43, lane mendAC: differences from torch closed, each checked against torch on the same inputs."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")



def _tree(fn, depth):
    """A node's name with its next_functions' trees, ``depth`` levels down (None for a missing edge)."""
    if fn is None:
        return None
    if depth == 0:
        return fn.name()
    return fn.name(), [_tree(child, depth - 1) for child, _ in fn.next_functions]


def _values(t):
    return None if t is None else t.detach().numpy()


# ---------------------------------------------------------------- 1. in-place ops on views: CopySlices absorbs the op
# each writes a view of b = a.clone() in place and returns what the op returned (the view)
_VIEW_WRITES = {
    "select_mul_scalar": lambda b, c, u, v: b[0].mul_(2),
    "select_mul_tensor": lambda b, c, u, v: b[0].mul_(c[0]),
    "column_copy": lambda b, c, u, v: b[:, 1].copy_(c[:, 0]),
    "narrow_add_alpha": lambda b, c, u, v: b.narrow(0, 1, 2).add_(c[1:], alpha=2),
    "select_clamp": lambda b, c, u, v: b.select(1, 0).clamp_(0),
    "slice_sigmoid": lambda b, c, u, v: b[1:].sigmoid_(),
    "slice_tanh": lambda b, c, u, v: b[:, 2].tanh_(),
    "select_exp": lambda b, c, u, v: b[0].exp_(),
    "select_div": lambda b, c, u, v: b[:, 0].div_(c[:, 0]),
    "select_sub": lambda b, c, u, v: b[2].sub_(c[2]),
    "select_pow": lambda b, c, u, v: b[2].pow_(2),
    "select_relu": lambda b, c, u, v: b[2].relu_(),
    "select_neg": lambda b, c, u, v: b[1].neg_(),
    "unsqueezed_select_mul": lambda b, c, u, v: b.unsqueeze(0)[0, 1].mul_(3),
    "masked_fill": lambda b, c, u, v: b[0].masked_fill_(c[0] > 0, 0.5),
    "slice_index_add": lambda b, c, u, v: b[1:].index_add_(0, v.new_tensor([0]).long(), c[:1]),
    "transpose_copy": lambda b, c, u, v: b.transpose(0, 1).copy_(c),
    "two_ops_on_one_view": lambda b, c, u, v: b[0].mul_(2).add_(c[0]),
    "view_of_view": lambda b, c, u, v: b[1:][:, 1:].mul_(c[1:, 1:]),
    "leading_one_slice": lambda b, c, u, v: b[0:1].mul_(c[0:1]),
    "strided_flat_mul": lambda b, c, u, v: b.view(-1)[::2].mul_(3),
    "diagonal_zero": lambda b, c, u, v: b.diagonal().zero_(),
    "strided_flat_fill": lambda b, c, u, v: b.view(-1)[::2].fill_(1),
    "select_fill_tensor": lambda b, c, u, v: b[1].fill_(c[0, 0]),
}


def _write_view(lib, case):
    rng = np.random.default_rng(0)
    a, c, u, v = (lib.tensor(rng.standard_normal((3, 3)), requires_grad=True) for _ in range(4))
    b = a.clone()
    view = _VIEW_WRITES[case](b, c, u, v)
    weight = lib.tensor(rng.standard_normal((3, 3)))
    return (a, c, u, v), b, view, weight


@pytest.mark.parametrize("case", sorted(_VIEW_WRITES))
def test_inplace_op_on_a_view_is_absorbed_by_copy_slices(case):
    (ours, b, view, weight), (theirs, tb, tview, tweight) = _write_view(chainrule, case), _write_view(torch, case)
    # the base's node, three levels down: CopySlices over the base's previous node and the op's other inputs
    assert _tree(b.grad_fn, 3) == _tree(tb.grad_fn, 3)
    assert _tree(view.grad_fn, 1) == _tree(tview.grad_fn, 1)  # the view's node regenerated over CopySlices
    assert b._version == tb._version and view._version == tview._version
    assert view._base is b and tview._base is tb
    np.testing.assert_allclose(b.detach().numpy(), tb.detach().numpy(), rtol=1e-15, atol=0)  # (tanh: 1 ulp)
    loss, tloss = ((x * w).sum() + (y * y).sum() for x, y, w in ((b, view, weight), (tb, tview, tweight)))
    grads = chainrule.autograd.grad(loss, ours, create_graph=True, allow_unused=True)
    tgrads = torch.autograd.grad(tloss, theirs, create_graph=True, allow_unused=True)
    for g, tg in zip(grads, tgrads):
        assert (g is None) == (tg is None)
        if g is not None:
            np.testing.assert_allclose(_values(g), _values(tg), rtol=1e-12, atol=1e-12)
    assert (grads[0].grad_fn.name() if grads[0].grad_fn else None) == \
        (tgrads[0].grad_fn.name() if tgrads[0].grad_fn else None)
    second = sum((g * g).sum() for g in grads if g is not None and g.requires_grad)
    tsecond = sum((g * g).sum() for g in tgrads if g is not None and g.requires_grad)
    if isinstance(tsecond, int):
        assert isinstance(second, int)
        return
    grads2 = chainrule.autograd.grad(second, ours, allow_unused=True)
    tgrads2 = torch.autograd.grad(tsecond, theirs, allow_unused=True)
    for g, tg in zip(grads2, tgrads2):
        assert (g is None) == (tg is None)
        if g is not None:
            np.testing.assert_allclose(_values(g), _values(tg), rtol=1e-10, atol=1e-12)


def test_copy_slices_refuses_a_saved_input_changed_since_and_a_second_backward():
    for lib in (chainrule, torch):
        a = lib.randn(3, 3, requires_grad=True)
        c = lib.randn(3, requires_grad=True)
        b = a.clone()
        b[0].mul_(c)  # saves c (for the view's gradient) and the view's old values (for c's)
        c_in_graph = c * 1
        b2 = a.clone()
        b2[1].mul_(c_in_graph)
        c_in_graph.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            b2.sum().backward()
        b.sum().backward()
        with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
            b.sum().backward()


def test_copy_slices_keeps_a_retained_grad_and_the_views_of_the_base():
    results = []
    for lib in (chainrule, torch):
        a = lib.arange(9.0).reshape(3, 3).requires_grad_()
        b = a.clone()
        b.retain_grad()
        row = b[2]  # another live view: regenerated over CopySlices when next read
        b[0].mul_(3)
        (b.sum() + (row * row).sum()).backward()
        results.append((_tree(row.grad_fn, 1), b.grad.numpy(), a.grad.numpy()))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])
    np.testing.assert_array_equal(results[0][2], results[1][2])


def test_a_view_of_a_tensor_outside_the_graph_written_from_one_in_it():
    results = []
    for lib in (chainrule, torch):
        b = lib.zeros(3, 3)
        c = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
        view = b[0]
        view.add_(c, alpha=2)
        (b * lib.arange(9.0).reshape(3, 3)).sum().backward()
        results.append((_tree(b.grad_fn, 3), _tree(view.grad_fn, 1), b._version, c.grad.numpy()))
    assert results[0][:3] == results[1][:3]
    np.testing.assert_array_equal(results[0][3], results[1][3])


# ---------------------------------------------------------------- 2. second-order graphs of reads
_READS = {
    "narrow": lambda lib, x: x.narrow(1, 1, 2),
    "select": lambda lib, x: x.select(0, 1),
    "getitem_int": lambda lib, x: x[1],
    "slice": lambda lib, x: x[:, 1:3],
    "slice_step": lambda lib, x: x[::2],
    "expand_of_slice": lambda lib, x: x[:, :1].expand(4, 3),
    "expand_of_select": lambda lib, x: x[0].expand(2, 4),
    "diagonal": lambda lib, x: x.diagonal(1, 0, 1),
    "unfold": lambda lib, x: x.unfold(1, 2, 1),
    "index_select": lambda lib, x: x.index_select(1, lib.tensor([2, 0, 2])),
    "negative_dim_index_select": lambda lib, x: x.index_select(-2, lib.tensor([3, 3])),
    "gather": lambda lib, x: x.gather(1, lib.tensor([[0, 1], [2, 2], [1, 0], [3, 3]])),
    "take_along_dim": lambda lib, x: lib.take_along_dim(x, lib.tensor([[0, 1], [2, 2], [1, 0], [3, 3]]), 1),
}


def _read_grads(lib, case):
    x = lib.tensor(np.random.default_rng(0).standard_normal((4, 4)), requires_grad=True)
    y = _READS[case](lib, x)
    w = lib.tensor(np.random.default_rng(1).standard_normal(tuple(y.shape)))
    (g,) = lib.autograd.grad((y * y * y * w).sum(), x, create_graph=True)
    (g2,) = lib.autograd.grad((g * g).sum(), x, create_graph=True)
    (g3,) = lib.autograd.grad(g2.sum(), x)
    return g, g2, g3


@pytest.mark.parametrize("case", sorted(_READS))
def test_second_order_graph_of_a_read_names_torchs_nodes(case):
    (g, g2, g3), (tg, tg2, tg3) = _read_grads(chainrule, case), _read_grads(torch, case)
    assert _tree(g.grad_fn, 2) == _tree(tg.grad_fn, 2)
    assert _tree(g2.grad_fn, 1) == _tree(tg2.grad_fn, 1)
    for ours, theirs in ((g, tg), (g2, tg2), (g3, tg3)):
        np.testing.assert_allclose(_values(ours), _values(theirs), rtol=1e-12, atol=1e-12)
    if case in ("diagonal", "unfold"):
        return  # (their backward's nodes declare none of torch's saved names yet)
    # the numbers the first gradient's node saved (its tensors are freed by the last grad, in torch too)
    for name in dir(tg.grad_fn):
        if name.startswith("_saved_") and not name.startswith("_saved_source"):
            try:
                theirs = getattr(tg.grad_fn, name)
            except RuntimeError:  # a saved tensor, freed
                continue
            assert getattr(g.grad_fn, name) == theirs, name


# ---------------------------------------------------------------- 3. pools' second-order graphs
_POOLS = {
    "max_pool1d": (3, lambda lib, x: lib.nn.functional.max_pool1d(x, 2)),
    "max_pool2d_indices": (4, lambda lib, x: lib.nn.functional.max_pool2d(x, 2, return_indices=True)[0]),
    "max_pool3d": (5, lambda lib, x: lib.nn.functional.max_pool3d(x, 2)),
    "avg_pool1d": (3, lambda lib, x: lib.nn.functional.avg_pool1d(x, 2)),
    "avg_pool2d": (4, lambda lib, x: lib.nn.functional.avg_pool2d(x, 3, 2, 1, count_include_pad=False)),
    "avg_pool3d": (5, lambda lib, x: lib.nn.functional.avg_pool3d(x, 2)),
    "adaptive_avg_pool1d": (3, lambda lib, x: lib.nn.functional.adaptive_avg_pool1d(x, 4)),
    "adaptive_avg_pool2d": (4, lambda lib, x: lib.nn.functional.adaptive_avg_pool2d(x, 4)),
    "adaptive_avg_pool3d": (5, lambda lib, x: lib.nn.functional.adaptive_avg_pool3d(x, 3)),
    "adaptive_max_pool1d": (3, lambda lib, x: lib.nn.functional.adaptive_max_pool1d(x, 4)),
    "adaptive_max_pool2d": (4, lambda lib, x: lib.nn.functional.adaptive_max_pool2d(x, 3)),
    "adaptive_max_pool3d": (5, lambda lib, x: lib.nn.functional.adaptive_max_pool3d(x, 3)),
    "fractional_max_pool2d": (4, lambda lib, x: lib.nn.functional.fractional_max_pool2d(
        x, 2, output_size=3, _random_samples=lib.tensor([[[0.3, 0.7], [0.6, 0.2]]], dtype=lib.float64))),
}


def _pool_grads(lib, case):
    ndim, pool = _POOLS[case]
    shape = (1, 2) + (6,) * (ndim - 2)
    # distinct values: no ties, so every max pool routes to one element
    x = lib.tensor(np.random.default_rng(0).permutation(np.prod(shape)).reshape(shape) / 10.0 + 0.1,
                   requires_grad=True)
    y = pool(lib, x)
    w = lib.tensor(np.random.default_rng(1).standard_normal(tuple(y.shape)))
    (g,) = lib.autograd.grad((y * y * w).sum(), x, create_graph=True)
    names = _tree(g.grad_fn, 2)
    (g2,) = lib.autograd.grad((g * g).sum(), x)
    return names, g, g2


@pytest.mark.parametrize("case", sorted(_POOLS))
def test_pool_backward_recorded_under_create_graph_is_torchs_one_node(case):
    (names, g, g2), (tnames, tg, tg2) = _pool_grads(chainrule, case), _pool_grads(torch, case)
    assert names == tnames
    np.testing.assert_allclose(_values(g), _values(tg), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_values(g2), _values(tg2), rtol=1e-12, atol=1e-12)


def test_pool_backward_of_a_constant_cotangent_still_reaches_the_input():
    # a gradient penalty's ones: the first gradient requires grad through the pool's input alone
    results = []
    for lib in (chainrule, torch):
        x = lib.arange(16.0).reshape(1, 1, 4, 4).requires_grad_()
        (g,) = lib.autograd.grad(lib.nn.functional.max_pool2d(x, 2).sum(), x, create_graph=True)
        (g2,) = lib.autograd.grad(g.sum(), x, allow_unused=True)
        results.append((_tree(g.grad_fn, 1), g2.numpy()))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_fill_and_zero_record_one_edge_to_the_tensor_written():
    results = []
    for lib in (chainrule, torch):
        a = lib.tensor([1.5, -2.0, 3.0], requires_grad=True)
        filled, zeroed, ints = a.clone().fill_(2), a.clone().zero_(), lib.arange(3).fill_(7)
        (g,) = lib.autograd.grad((filled * a + zeroed * a).sum(), a)
        results.append((_tree(filled.grad_fn, 1), _tree(zeroed.grad_fn, 1), filled.tolist(), zeroed.tolist(),
                        ints.tolist(), ints.dtype == lib.int64, g.tolist()))
    assert results[0] == results[1]
