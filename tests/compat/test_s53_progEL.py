"""What the s53 progEL programs (multi-token prediction heads, DreamerV3's two-hot critic, liquid
time-constant cells) found: F.one_hot returns a fresh contiguous tensor whatever the index layout, as
torch's zeros + scatter_ does (OneHotCategorical.sample((n,)) feeds it a transposed index tensor);
quantile/nanquantile with keepdim and a 1-d q give torch's strides, size-1 dims included (torch computes
the (*kept, Q) quantiles and moves Q to the front), as in RewardEMA's ``torch.quantile(x, q_tensor)``."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _both(array):
    return torch.tensor(array), chainrule.tensor(array)


@pytest.mark.parametrize("make", [
    lambda t: t.t(),                      # transposed 2-d
    lambda t: t[:, ::2],                  # stepped slice
    lambda t: t.unsqueeze(0).expand(3, -1, -1),  # broadcast view (zero strides)
    lambda t: t.permute(1, 0)[1:],        # transposed and offset
    lambda t: t,                          # contiguous
])
@pytest.mark.parametrize("num_classes", [-1, 7])
def test_one_hot_is_contiguous_for_any_index_layout(make, num_classes):
    idx = np.random.default_rng(0).integers(0, 6, size=(4, 6))
    ours_in, theirs_in = _both(idx)[1], _both(idx)[0]
    theirs = torch.nn.functional.one_hot(make(theirs_in), num_classes)
    ours = chainrule.nn.functional.one_hot(make(ours_in), num_classes)
    assert ours.shape == theirs.shape and ours.dtype == chainrule.int64
    assert ours.stride() == theirs.stride() and ours.is_contiguous()
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert ours.view(-1).shape == theirs.view(-1).shape  # a view works where torch's does


def test_one_hot_categorical_sample_shape_is_contiguous():
    for lib in (torch, chainrule):
        lib.manual_seed(0)
    logits = np.zeros((3, 4), np.float32)
    theirs = torch.distributions.OneHotCategorical(logits=torch.tensor(logits)).sample((2,))
    ours = chainrule.distributions.OneHotCategorical(logits=chainrule.tensor(logits)).sample((2,))
    assert ours.shape == theirs.shape and ours.stride() == theirs.stride() == (12, 4, 1)
    np.testing.assert_array_equal(ours.sum(-1).numpy(), np.ones((2, 3), np.float32))


def test_one_hot_scalar_and_empty():
    for value, n in [(3, -1), (0, 2)]:
        assert chainrule.nn.functional.one_hot(chainrule.tensor(value), n).tolist() == \
            torch.nn.functional.one_hot(torch.tensor(value), n).tolist()
    ours = chainrule.nn.functional.one_hot(chainrule.zeros(0, 2, dtype=chainrule.long), 3)
    theirs = torch.nn.functional.one_hot(torch.zeros(0, 2, dtype=torch.long), 3)
    assert ours.shape == theirs.shape and ours.stride() == theirs.stride()


@pytest.mark.parametrize("op", ["quantile", "nanquantile"])
@pytest.mark.parametrize("shape, dim", [((5,), None), ((5,), -1), ((3, 5), None), ((3, 5), 0), ((3, 5), 1),
                                        ((2, 3, 4), 1), ((1, 4), 0), ((4, 1), None), ((), None)])
@pytest.mark.parametrize("q", [[0.05, 0.95], 0.3])
def test_quantile_keepdim_strides_values_and_grads(op, shape, dim, q):
    data = np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32)
    results = []
    for lib in (torch, chainrule):
        x = lib.tensor(data, requires_grad=True)
        out = getattr(lib, op)(x, lib.tensor(q) if isinstance(q, list) else q, dim=dim, keepdim=True)
        out.backward(lib.arange(out.numel(), dtype=lib.float32).reshape(out.shape))
        results.append((tuple(out.shape), out.stride(), out.detach().numpy(), x.grad.numpy()))
    (t_shape, t_stride, t_out, t_grad), (c_shape, c_stride, c_out, c_grad) = results
    assert (c_shape, c_stride) == (t_shape, t_stride)
    np.testing.assert_allclose(c_out, t_out, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(c_grad, t_grad, rtol=1e-6, atol=1e-7)
