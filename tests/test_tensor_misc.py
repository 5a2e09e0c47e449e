"""Tensor's small methods torch scripts call: queries (is_cpu, is_signed, is_nonzero, storage_offset,
dim_order, output_nr), index_put/put, sum_to_size, fill_diagonal_, resize_, apply_/map_, the random
fills, the aliases and in-place variants; each against torch, with torch's errors.

Values and gradients of the differentiable ones on ordinary inputs are in the OpInfo registry
(chainrule/testing/opinfo/special_functions.py); here are the edges and the whole-program checks.
"""

from __future__ import annotations

import weakref

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _both(fn):
    return fn(chainrule), fn(torch)


def test_queries_match_torch():
    def queries(lib):
        x = lib.arange(24.0).reshape(2, 3, 4)
        ints = lib.tensor([1, 2], dtype=lib.uint8)
        return (x.is_cpu, x.is_meta, x.is_signed(), ints.is_signed(), lib.tensor([True]).is_signed(),
                x[1:].storage_offset(), x[:, 1, 2:].storage_offset(), x.permute(2, 0, 1).dim_order(),
                x.transpose(0, 1).dim_order(), x.is_same_size(lib.zeros(2, 3, 4)), x.is_same_size(lib.zeros(3)),
                lib.tensor([0.0]).is_nonzero(), lib.tensor([[2]]).is_nonzero(), (x * 1).output_nr,
                lib.zeros(4).new_empty_strided((2, 3), (3, 1)).shape)
    ours, theirs = _both(queries)
    assert ours[:-1] == theirs[:-1]
    assert tuple(ours[-1]) == tuple(theirs[-1])


def test_is_nonzero_refuses_more_or_fewer_than_one_value():
    for lib in (chainrule, torch):
        with pytest.raises(RuntimeError, match="more than one value is ambiguous"):
            lib.tensor([1.0, 2.0]).is_nonzero()
        with pytest.raises(RuntimeError, match="no values is ambiguous"):
            lib.tensor([]).is_nonzero()


def test_index_put_put_and_fill_diagonal_program_matches_torch():
    """A small program mixing the writes, differentiated end to end."""
    def program(lib):
        x = lib.tensor(np.linspace(-1, 1, 20).reshape(4, 5), dtype=lib.float64, requires_grad=True)
        y = x * 2
        y.index_put_((lib.tensor([0, 3, 0]), lib.tensor([1, 4, 1])), lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64),
                     accumulate=True)
        y = y.put(lib.tensor([-1, 7]), lib.tensor([5.0, -5.0], dtype=lib.float64), accumulate=True)
        z = y.clone()
        z.fill_diagonal_(0.25, wrap=True)
        mask = x > 0.3
        z = z.masked_scatter(mask, lib.arange(20, dtype=lib.float64))
        loss = (z * z).sum() + y.sum_to_size(1, 5).pow(2).sum() + lib.index_put(x, (mask,), lib.tensor(0.0, dtype=lib.float64)).sum()
        loss.backward()
        return loss.detach().numpy(), x.grad.numpy()

    (ours_loss, ours_grad), (theirs_loss, theirs_grad) = _both(program)
    np.testing.assert_allclose(ours_loss, theirs_loss, rtol=1e-12)
    np.testing.assert_allclose(ours_grad, theirs_grad, rtol=1e-12)


def test_index_put_errors_match_torch_types():
    for lib in (chainrule, torch):
        x = lib.zeros(3, 4)
        with pytest.raises(RuntimeError, match="shape mismatch"):
            x.index_put((lib.tensor([0, 1]),), lib.ones(3, 5))
        with pytest.raises(IndexError):
            x.put_(lib.tensor([12]), lib.tensor([1.0]))
        with pytest.raises(RuntimeError, match="not expandable to size"):
            x.sum_to_size(2, 4)
        with pytest.raises(RuntimeError, match="dimensions must larger than 1"):
            lib.zeros(3).fill_diagonal_(1.0)
        with pytest.raises(RuntimeError, match="all dimensions of input must be of equal length"):
            lib.zeros(2, 3, 4).fill_diagonal_(1.0)
        leaf = lib.zeros(3, requires_grad=True)
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
            leaf.index_put_((lib.tensor([0]),), lib.tensor(1.0))


def test_resize_keeps_the_leading_elements_and_refuses_grad():
    for lib in (chainrule, torch):
        x = lib.arange(6.0)
        assert x.resize_(2, 3).tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
        assert x.resize_(4).tolist() == [0.0, 1.0, 2.0, 3.0]
        assert x.resize_as_(lib.zeros(2, 2)).shape == (2, 2)
        assert x.resize_((1, 2)).tolist() == [[0.0, 1.0]]
        with pytest.raises(RuntimeError, match="cannot resize variables that require grad"):
            lib.zeros(2, requires_grad=True).resize_(3)


def test_apply_and_map_match_torch():
    def program(lib):
        x = lib.arange(6.0).reshape(2, 3)
        x.apply_(lambda v: v * v - 1)
        x.map_(lib.tensor([10.0, 20.0, 30.0]), lambda a, b: a + b / 10)
        return x.tolist()

    ours, theirs = _both(program)
    assert ours == theirs


def test_random_fills_have_their_distributions():
    chainrule.manual_seed(0)
    n = 40000
    log_normal = chainrule.empty(n, dtype=chainrule.float64).log_normal_(0.5, 0.25).numpy()
    np.testing.assert_allclose(np.log(log_normal).mean(), 0.5, atol=0.01)
    np.testing.assert_allclose(np.log(log_normal).std(), 0.25, atol=0.01)
    cauchy = chainrule.empty(n, dtype=chainrule.float64).cauchy_(2.0, 3.0).numpy()
    np.testing.assert_allclose(np.median(cauchy), 2.0, atol=0.1)
    np.testing.assert_allclose(np.percentile(cauchy, 75) - np.percentile(cauchy, 25), 6.0, rtol=0.05)
    geometric = chainrule.empty(n).geometric_(0.25).numpy()
    assert geometric.min() >= 1 and np.all(geometric == np.round(geometric))  # trials to the first success, as torch
    np.testing.assert_allclose(geometric.mean(), 4.0, rtol=0.03)
    # the default generator drives them: the same seed gives the same draws
    chainrule.manual_seed(7)
    first = chainrule.empty(5).cauchy_()
    chainrule.manual_seed(7)
    assert chainrule.equal(first, chainrule.empty(5).cauchy_())


def test_aliases_compute_as_their_ops_and_inplace_variants_write_in_place():
    # (as in torch, an alias is a function of its own, named as it is called: its refusals name it)
    for alias in (chainrule.arccos, chainrule.fix, chainrule.greater, chainrule.multiply, chainrule.negative):
        assert alias.__name__ == [name for name in dir(chainrule) if getattr(chainrule, name) is alias][0]
    assert chainrule.arccos is not chainrule.acos and chainrule.fix is not chainrule.trunc
    assert chainrule.greater is not chainrule.gt and chainrule.Tensor.arctan2 is not chainrule.Tensor.atan2
    a, b = chainrule.tensor([1.0, -2.0]), chainrule.tensor([0.5, 3.0])
    for alias, op in ((chainrule.greater, chainrule.gt), (chainrule.not_equal, chainrule.ne),
                      (chainrule.multiply, chainrule.mul), (chainrule.divide, chainrule.div),
                      (chainrule.Tensor.arctan2, chainrule.Tensor.atan2)):
        assert chainrule.equal(alias(a, b), op(a, b))
    assert chainrule.equal(chainrule.arccos(b / 4), chainrule.acos(b / 4))
    assert chainrule.equal(chainrule.fix(a * 1.5), chainrule.trunc(a * 1.5))
    x = chainrule.tensor([0.25, -0.5])
    version = x._version
    assert chainrule.arcsin_(x) is x and x._version == version + 1
    np.testing.assert_allclose(x.numpy(), np.arcsin([0.25, -0.5]), rtol=1e-6)
    y = chainrule.zeros(2, 3)
    assert y.swapaxes_(0, 1).shape == (3, 2) and y.swapdims_(0, 1).shape == (2, 3)


def test_inplace_variants_keep_gradients_right_as_torch():
    """In-place variants of composite ops (whose inner nodes saved self) and of saving ops."""
    def program(lib):
        x = lib.tensor([0.5, 1.5, 2.5], dtype=lib.float64, requires_grad=True)
        y = x * 1
        y.xlogy_(x + 1)
        y.lgamma_()
        y.addcmul_(x, x)
        z = (x * 1).ldexp_(lib.tensor([1, 2, 3]))
        w = (x * 3).float_power_(2)
        v = (x / 4).erfinv_().digamma_()
        m = lib.eye(3, dtype=lib.float64) * x
        m.addmm_(m.t() + 1, x.expand(3, 3), beta=0.5)  # (m itself as an operand: both raise on backward)
        loss = y.sum() + z.sum() + w.sum() + v.sum() + m.sum()
        loss.backward()
        return loss.detach().numpy(), x.grad.numpy()

    (ours_loss, ours_grad), (theirs_loss, theirs_grad) = _both(program)
    np.testing.assert_allclose(ours_loss, theirs_loss, rtol=1e-12)
    np.testing.assert_allclose(ours_grad, theirs_grad, rtol=1e-11)


def test_inplace_refuses_a_leaf_that_requires_grad_and_a_wider_result():
    for lib in (chainrule, torch):
        leaf = lib.tensor([0.5], requires_grad=True)
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
            leaf.lgamma_()
        ints = lib.tensor([1, 2])
        with pytest.raises(RuntimeError, match="can't be cast to the desired output type"):
            ints.digamma_()
        with pytest.raises(RuntimeError, match="float_power_ has dtype Float but .* requires dtype Double"):
            lib.ones(2).float_power_(2)


def test_stride_of_an_empty_tensor_is_torchs_contiguous_one():
    # NumPy reports (0, 0, 0) for every empty array; torch's fresh empty tensors keep the
    # contiguous strides of their shape, a 0-length dim counted as 1 (checkpoints record them)
    assert chainrule.zeros(2, 0, 3).stride() == (3, 3, 1)
    assert chainrule.empty(0, 4).stride() == (4, 1)
    assert chainrule.zeros(0).stride(0) == 1


def test_swap_tensors_swaps_content_and_keeps_identity():
    # the swap_tensors recipe: a reference held elsewhere (an optimizer's param list) sees the new content
    t1, t2 = chainrule.arange(2), chainrule.arange(3)
    ids = id(t1), id(t2)
    chainrule.utils.swap_tensors(t1, t2)
    assert (id(t1), id(t2)) == ids and t1.tolist() == [0, 1, 2] and t2.tolist() == [0, 1]
    lin = chainrule.nn.Linear(2, 1)
    opt = chainrule.optim.SGD(lin.parameters(), lr=1.0)
    lin(chainrule.ones(1, 2)).sum().backward()  # the weight now has a gradient accumulator
    new = chainrule.nn.Parameter(chainrule.full((1, 2), 5.0))
    chainrule.utils.swap_tensors(lin.weight, new)
    assert type(lin.weight) is chainrule.nn.Parameter and opt.param_groups[0]["params"][0] is lin.weight
    assert lin.weight.tolist() == [[5.0, 5.0]] and lin.weight.grad is None and new.grad.tolist() == [[1.0, 1.0]]
    lin.weight.grad = None
    lin(chainrule.ones(1, 2)).sum().backward()  # a fresh accumulator fills the swapped-in tensor
    opt.step()
    assert lin.weight.tolist() == [[4.0, 4.0]]
    pending = lin(chainrule.ones(1, 2)).sum()  # recorded before the swap: its accumulator is refused, as torch's
    chainrule.utils.swap_tensors(lin.weight, new)
    with pytest.raises(RuntimeError, match="poisoned by swap_tensors"):
        pending.backward()
    with pytest.raises(RuntimeError, match="weakref"):
        keep = weakref.ref(t1)  # noqa: F841
        chainrule.utils.swap_tensors(t1, t2)
