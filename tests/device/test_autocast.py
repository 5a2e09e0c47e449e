"""torch.autocast('cuda') (float16) on the stand-in: each op runs in the dtype torch's CUDA
autocast lists give it, its values are those of the same op on explicitly cast inputs, and the
gradients come back in the leaves' own dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import chainrule
import chainrule.nn.functional as F

rng = np.random.default_rng(0)
X = rng.standard_normal((6, 4)).astype(np.float32)
W = rng.standard_normal((3, 4)).astype(np.float32)
B = rng.standard_normal(3).astype(np.float32)
IMG = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
KERNEL = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
TARGET = np.array([0, 1, 2, 0, 1, 2])


def _cuda(a):
    return chainrule.tensor(a, device="cuda")


# op -> (chainrule function of (x, w, b) on 'cuda', the dtype torch's CUDA autocast gives its result)
DTYPES = {
    "linear": (lambda x, w, b: F.linear(x, w, b), "float16"),
    "matmul": (lambda x, w, b: x @ w.T, "float16"),
    "mm": (lambda x, w, b: chainrule.mm(x, w.T), "float16"),
    "bmm": (lambda x, w, b: chainrule.bmm(x[None], w.T[None]), "float16"),
    "conv2d": (lambda x, w, b: F.conv2d(_cuda(IMG), _cuda(KERNEL)), "float16"),
    "softmax_of_half": (lambda x, w, b: F.softmax(F.linear(x, w, b), -1), "float32"),
    "log_softmax_of_half": (lambda x, w, b: F.log_softmax(F.linear(x, w, b), -1), "float32"),
    "layer_norm_of_half": (lambda x, w, b: F.layer_norm(F.linear(x, w, b), (3,)), "float32"),
    "sum_of_half": (lambda x, w, b: F.linear(x, w, b).sum(), "float32"),
    "exp_of_half": (lambda x, w, b: F.linear(x, w, b).exp(), "float32"),
    "cross_entropy_of_half": (lambda x, w, b: F.cross_entropy(F.linear(x, w, b), _cuda(TARGET)), "float32"),
    "mse_loss_of_half": (lambda x, w, b: F.mse_loss(F.linear(x, w, b), _cuda(np.zeros((6, 3), np.float32))),
                         "float32"),
    "relu_of_half": (lambda x, w, b: F.relu(F.linear(x, w, b)), "float16"),  # not listed: its input's dtype
    "mean_of_half": (lambda x, w, b: F.linear(x, w, b).mean(), "float16"),
    "half_plus_float": (lambda x, w, b: F.linear(x, w, b) + b, "float32"),  # promotion, as torch's
    "float_relu": (lambda x, w, b: F.relu(x), "float32"),
    "double_linear": (lambda x, w, b: F.linear(x.double(), w.double()), "float64"),  # float64 is never cast
}


@pytest.mark.parametrize("op", DTYPES)
def test_each_op_runs_in_the_dtype_of_torchs_cuda_autocast_lists(cuda, op):
    fn, expected = DTYPES[op]
    with chainrule.autocast("cuda"):
        out = fn(_cuda(X), _cuda(W), _cuda(B))
    assert str(out.dtype) == f"chainrule.{expected}"
    assert str(fn(_cuda(X), _cuda(W), _cuda(B)).dtype) in ("chainrule.float32", "chainrule.float64")  # outside


def test_values_and_gradients_are_those_of_explicit_casts(cuda):
    """An autocast step equals torch (CPU) running the same casts by hand: linear in float16,
    cross-entropy in float32, gradients reaching the float32 leaves as float32."""
    leaves = [_cuda(a).requires_grad_() for a in (X, W, B)]
    with chainrule.autocast("cuda", dtype=chainrule.float16):
        hidden = F.linear(*leaves)
        loss = F.cross_entropy(hidden, _cuda(TARGET))
    loss.backward()
    reference = [torch.tensor(a, requires_grad=True) for a in (X, W, B)]
    x, w, b = reference
    torch_hidden = torch.nn.functional.linear(x.half(), w.half(), b.half())
    torch_loss = torch.nn.functional.cross_entropy(torch_hidden.float(), torch.tensor(TARGET))
    torch_loss.backward()
    assert hidden.dtype == chainrule.float16 and loss.dtype == chainrule.float32
    np.testing.assert_allclose(hidden.detach().cpu().numpy(), torch_hidden.detach().numpy(), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(loss.item(), torch_loss.item(), rtol=1e-3)  # float16 rounding of the hidden layer
    for ours, theirs in zip(leaves, reference):
        assert ours.grad.dtype == chainrule.float32
        np.testing.assert_allclose(ours.grad.cpu().numpy(), theirs.grad.numpy(), rtol=1e-2, atol=2e-3)


def test_regions_nest_and_restore(cuda):
    x, w = _cuda(X), _cuda(W)
    with chainrule.autocast("cuda"):
        assert chainrule.amp.is_autocast_enabled("cuda")
        with chainrule.autocast("cuda", enabled=False):
            assert (x @ w.T).dtype == chainrule.float32 and not chainrule.amp.is_autocast_enabled("cuda")
        with chainrule.autocast("cpu", enabled=False):  # another device type's region changes nothing here
            assert (x @ w.T).dtype == chainrule.float16
        with pytest.raises(ZeroDivisionError):
            with chainrule.autocast("cuda", enabled=False):
                raise ZeroDivisionError  # an error inside a region still restores the outer one
        assert (x @ w.T).dtype == chainrule.float16
    assert (x @ w.T).dtype == chainrule.float32 and not chainrule.amp.is_autocast_enabled("cuda")
    assert chainrule.amp.get_autocast_dtype("cuda") == chainrule.float16


def test_cpu_tensors_are_left_alone_by_cuda_autocast(cuda):
    with chainrule.autocast("cuda"):
        assert (chainrule.tensor(X) @ chainrule.tensor(W).T).dtype == chainrule.float32


def test_binary_cross_entropy_is_refused_as_torch_refuses_it(cuda):
    with chainrule.autocast("cuda"), pytest.raises(RuntimeError, match="unsafe to autocast"):
        F.binary_cross_entropy(_cuda(X).sigmoid(), _cuda(np.zeros_like(X)))


def test_bfloat16_needs_a_cupy_that_holds_it_and_other_dtypes_disable_the_region(cuda, monkeypatch):
    monkeypatch.setattr(chainrule.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    with pytest.raises(RuntimeError, match="does not support bfloat16. Please switch dtype to float16"):
        chainrule.autocast("cuda", dtype="bfloat16")
    with pytest.warns(UserWarning, match="target dtype is not supported. Disabling autocast"):
        region = chainrule.autocast("cuda", dtype=chainrule.float64)
    with region:
        assert not chainrule.is_autocast_enabled("cuda")


def test_a_mixed_precision_training_step_with_grad_scaler(cuda):
    chainrule.manual_seed(0)
    model = chainrule.nn.Sequential(chainrule.nn.Linear(4, 8), chainrule.nn.ReLU(), chainrule.nn.Linear(8, 3)).to("cuda")
    optimizer = chainrule.optim.AdamW(model.parameters(), lr=0.05)
    scaler = chainrule.amp.GradScaler("cuda")
    losses = []
    for _ in range(5):
        optimizer.zero_grad()
        with chainrule.autocast("cuda"):
            loss = F.cross_entropy(model(_cuda(X)), _cuda(TARGET))
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        losses.append(loss.item())
    assert all(p.dtype == chainrule.float32 and p.grad.dtype == chainrule.float32 for p in model.parameters())
    assert losses[-1] < losses[0]
