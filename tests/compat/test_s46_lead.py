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


@pytest.mark.parametrize("number", [0.0, -0.0, 0, 0j, False])
def test_a_zero_operand_is_saved_as_torchs_wrapped_number(number):
    """``x * 0`` saves torch's wrapped number (float64 -0.0 for -0.0, int64 0 for 0) as ``_saved_other``,
    as ``x * 2`` does: zeros were never cached, so the operator's fast path saved them in x's dtype."""
    torch = pytest.importorskip("torch")
    shown = []
    for lib in (torch, chainrule):
        x = lib.ones(2, requires_grad=True)
        saved = (x * number).grad_fn._saved_other
        shown.append((str(saved.dtype).split(".")[1], saved.item(), np.signbit(np.real(saved.item()))))
    assert shown[0] == shown[1]


def test_importing_chainrule_arms_no_torch_function_dispatch():
    """No class of chainrule's own arms __torch_function__ dispatch at import: nn.Parameter's sparse COO
    subclass inherited mendAP's sparse router, and Tensor.__init_subclass__ took it for a user's
    overriding subclass, so every Tensor property read went through the dispatching getter (callgrind
    mlp_step +1.4%). Checked in a fresh process, since a test may define an overriding subclass."""
    import subprocess
    import sys

    code = ("import chainrule, chainrule._torch_function as tf, chainrule.nn\n"
            "print(tf._overriding_subclass_seen)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    s = chainrule.sparse_coo_tensor(chainrule.tensor([[0, 1], [1, 0]]), chainrule.tensor([1.0, 2.0]), (2, 2))
    p = chainrule.nn.Parameter(s)
    assert chainrule.transpose(p, 0, 1).layout is chainrule.sparse_coo  # still routed as its base
    with pytest.raises(NotImplementedError, match="SparseCPU"):
        chainrule.max(p)
