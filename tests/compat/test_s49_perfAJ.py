"""Session 49, lane perfAJ: the one-step basic getitem route, checked against torch.

A tuple key of integers in range and plain slices that torch applies as at most one step
(``x[:, 3]``, ``x[1:, :]``, ``x[:, ::2]``) is read without the general key conversion. Each key is
compared with torch (and with the general path: the same key holding a NumPy integer, which the
route leaves to it) for values, shape, strides, storage offset, the node's name, the gradient of
a weighted sum and an in-place write through the view; keys next to the route (several steps,
None, Ellipsis, out of range, zero or negative steps) still give torch's results and errors.
"""

import numpy as np
import pytest
import torch as real_torch

import chainrule as torch
from chainrule.autograd import gradcheck

KEYS = [
    (slice(None), 3),
    (slice(None), -1),
    (slice(None), slice(None), 0),
    (slice(1, None),),
    (slice(1, 3), slice(None)),
    (slice(None), slice(None, None, 2)),
    (slice(None), slice(-3, -1)),
    (slice(None), slice(2, 2)),          # empty slice
    (slice(None), slice(5, 1)),          # stop before start: empty
    (slice(0, 100),),                    # whole dim: an alias
    (slice(None), slice(None)),
    (2,),
    (-2, slice(None)),
    (1, slice(1, None)),                 # two steps: the general path
    (slice(1, None), 2),                 # two steps
    (slice(None), None, 1),              # a None: the general path
    (Ellipsis, 1),
    (1, Ellipsis, slice(0, 2)),
]


def _pair(shape, dtype=np.float32, layout="contiguous", seed=0):
    rng = np.random.default_rng(seed)
    if layout == "non_contiguous":
        array = rng.standard_normal(shape[::-1]).astype(dtype)
        ours, theirs = torch.tensor(array).permute(2, 1, 0), real_torch.tensor(array).permute(2, 1, 0)
    else:
        array = rng.standard_normal(shape).astype(dtype)
        ours, theirs = torch.tensor(array), real_torch.tensor(array)
    return ours.requires_grad_(), theirs.requires_grad_()


def _compare(ours, theirs):
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert ours.stride() == theirs.stride()
    assert ours.storage_offset() == theirs.storage_offset()
    assert np.array_equal(ours.detach().numpy(), theirs.detach().numpy())
    assert type(ours.grad_fn).__name__ == type(theirs.grad_fn).__name__
    assert ours.is_contiguous() == theirs.is_contiguous()


@pytest.mark.parametrize("layout", ["contiguous", "non_contiguous"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("key", KEYS, ids=repr)
def test_getitem_matches_torch(key, dtype, layout):
    ours_x, theirs_x = _pair((4, 5, 3), dtype, layout)
    ours, theirs = ours_x[key], theirs_x[key]
    _compare(ours, theirs)
    weights = np.random.default_rng(1).standard_normal(tuple(theirs.shape)).astype(dtype)
    (ours * torch.tensor(weights)).sum().backward()
    (theirs * real_torch.tensor(weights)).sum().backward()
    assert np.array_equal(ours_x.grad.numpy(), theirs_x.grad.numpy())


@pytest.mark.parametrize("key", KEYS, ids=repr)
def test_getitem_same_as_general_path(key):
    # a NumPy integer is not a route item, so the key with one goes the general way
    ours_x, _ = _pair((4, 5, 3))
    general = tuple(np.int64(k) if type(k) is int else slice(np.int64(k.start), k.stop, k.step)
                    if type(k) is slice and type(k.start) is int else k for k in key)
    fast, slow = ours_x[key], ours_x[general]
    assert fast.shape == slow.shape and fast.stride() == slow.stride()
    assert fast.storage_offset() == slow.storage_offset()
    assert np.array_equal(fast.detach().numpy(), slow.detach().numpy())
    assert type(fast.grad_fn) is type(slow.grad_fn)


@pytest.mark.parametrize("key", [(slice(None), 3), (slice(1, 3), slice(None)), (slice(None), slice(None, None, 2))],
                         ids=repr)
def test_getitem_view_writes_through(key):
    ours_x, theirs_x = _pair((4, 5))
    ours_y, theirs_y = ours_x.detach().clone(), theirs_x.detach().clone()
    ours_y.requires_grad_(False)[key].mul_(3)
    theirs_y.requires_grad_(False)[key].mul_(3)
    assert np.array_equal(ours_y.numpy(), theirs_y.numpy())
    # an in-place op on the view of a tensor in the graph, as torch rebases it
    ours_b, theirs_b = ours_x * 1, theirs_x * 1
    ours_b[key].mul_(2)
    theirs_b[key].mul_(2)
    assert type(ours_b.grad_fn).__name__ == type(theirs_b.grad_fn).__name__
    ours_b.sum().backward()
    theirs_b.sum().backward()
    assert np.array_equal(ours_x.grad.numpy(), theirs_x.grad.numpy())


def test_getitem_zero_size():
    # (strides of an empty read are not compared with torch's: chainrule gives an empty result
    # contiguous strides on every path, where torch keeps the view's; see the lane's report)
    for shape, keys in [((0, 5), [(slice(None), 2), (slice(None), slice(1, 3)), (slice(0, 0),)]),
                        ((4, 0), [(2,), (slice(1, None), slice(None)), (-1, slice(None))])]:
        ours_x, theirs_x = torch.zeros(shape, requires_grad=True), real_torch.zeros(shape, requires_grad=True)
        for key in keys:
            ours, theirs = ours_x[key], theirs_x[key]
            general = ours_x[tuple(np.int64(k) if type(k) is int else k for k in key) + (Ellipsis,)]
            assert tuple(ours.shape) == tuple(theirs.shape)
            assert type(ours.grad_fn).__name__ == type(theirs.grad_fn).__name__
            assert ours.stride() == general.stride()
            ours.sum().backward()
            theirs.sum().backward()
            assert ours_x.grad.shape == theirs_x.grad.shape


def test_getitem_no_grad():
    ours_x, theirs_x = _pair((4, 5))
    with torch.no_grad():
        ours = ours_x[:, 3]
    with real_torch.no_grad():
        theirs = theirs_x[:, 3]
    assert ours.grad_fn is None and theirs.grad_fn is None
    assert ours.requires_grad == theirs.requires_grad  # (a view of a leaf, made without grad: True in torch)
    assert np.array_equal(ours.detach().numpy(), theirs.detach().numpy()) and ours.stride() == theirs.stride()


@pytest.mark.parametrize("key", [(slice(None), 5), (slice(None), -6), (slice(None), slice(None, None, 0)),
                                 (slice(None), slice(None, None, -1)), (0, 0, 0),
                                 (slice(None), slice(None), slice(None))], ids=repr)
def test_getitem_errors_match_torch(key):
    ours_x, theirs_x = _pair((4, 5))
    with pytest.raises(Exception) as theirs_error:
        theirs_x[key]
    with pytest.raises(type(theirs_error.value)) as ours_error:
        ours_x[key]
    assert str(ours_error.value) == str(theirs_error.value)


@pytest.mark.parametrize("key", [(slice(None), 3), (slice(1, 4), slice(None)), (slice(None), slice(None, None, 2))],
                         ids=repr)
def test_getitem_gradcheck(key):
    x = torch.tensor(np.random.default_rng(2).standard_normal((5, 6)), requires_grad=True)
    assert gradcheck(lambda t: t[key] * 1.5, (x,))
