"""Session 46 lead fixes found while integrating the lanes."""
import numpy as np
import pytest

import chainrule
from chainrule.utils._python_dispatch import TorchDispatchMode


class _PassThrough(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("mode", [False, True])
def test_sparse_sum_backward_under_a_dispatch_mode(mode):
    """torch.sparse.sum's gradient reaches the values under a TorchDispatchMode too: the reduction's
    backward took its Tensor path there (a mode sees the backward's ops) and reshaped the sparse
    gradient, which sparse tensors refuse."""
    values = chainrule.tensor([1.0, -2.0, 3.0, 0.5], dtype=chainrule.float64, requires_grad=True)
    a = chainrule.sparse_coo_tensor(chainrule.tensor([[0, 1, 2, 2], [1, 0, 3, 1]]), values, (3, 4))
    out = chainrule.sparse.sum(a, 1)
    weights = chainrule.tensor([1.0, 2.0, 3.0], dtype=chainrule.float64)
    if mode:
        with _PassThrough():
            (grad,) = chainrule.autograd.grad((out.to_dense() * weights).sum(), values)
    else:
        (grad,) = chainrule.autograd.grad((out.to_dense() * weights).sum(), values)
    np.testing.assert_array_equal(grad.numpy(), [1.0, 2.0, 3.0, 3.0])
