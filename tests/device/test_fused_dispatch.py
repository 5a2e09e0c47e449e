"""The ops call the fused CuPy kernels (ops/_cuda_kernels.py) when the array module is CuPy.

CI has no GPU and the kernels compile CUDA C, so here the stand-in plays CuPy: ``available`` is
patched to accept stand-in arrays and each kernel is replaced by a fake that records the call and
runs the kernel's NumPy reference. The tests check that each dispatch is taken, that its result is
wired into the op as the CPU path's is (forward, gradient, optimizer state), and that the
stand-in alone (``available`` unpatched: not CuPy) takes the composed path.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import chainrule
from chainrule import nn
from chainrule.nn import functional as F
from chainrule.ops import _cuda_kernels
from chainrule.testing import standin

KERNELS = ("softmax", "log_softmax", "cross_entropy", "cross_entropy_backward", "layer_norm", "layer_norm_backward",
           "gelu", "gelu_backward", "adam_step", "adam_multi_tensor_step")


def _host(value):
    if isinstance(value, standin.ndarray):
        return value.get()
    if isinstance(value, list):
        return [_host(v) for v in value]
    return value


def _device(value):
    if isinstance(value, (np.ndarray, np.generic)):
        return standin.module.asarray(value)
    if isinstance(value, tuple):
        return tuple(_device(v) for v in value)
    return value


def _fake(name: str, calls: list):
    reference = getattr(_cuda_kernels, f"{name}_reference")

    def kernel(*args, **kwargs):
        calls.append(name)
        host_args = [_host(a) for a in args]
        host_kwargs = {k: _host(v) for k, v in kwargs.items()}
        out = reference(*host_args, **host_kwargs)
        if name.startswith("adam"):  # in place: write the updated host copies back to the device arrays
            lists = [*args[:4]] + ([kwargs["max_exp_avg_sqs"]] if kwargs.get("max_exp_avg_sqs") else [])
            host_lists = [*host_args[:4]] + ([host_kwargs["max_exp_avg_sqs"]] if lists[4:] else [])
            for arrays, host_arrays in zip(lists, host_lists):
                for array, host_array in zip(arrays, host_arrays):
                    array[...] = standin.module.asarray(host_array)
        return _device(out)

    return kernel


@pytest.fixture
def fused(cuda, monkeypatch):
    """The stand-in as CuPy for the kernels: the names of the fake kernels called, in order."""
    calls: list = []
    monkeypatch.setattr(_cuda_kernels, "available",
                        lambda x: isinstance(x, standin.ndarray) and x.dtype in (np.float32, np.float64))
    for name in KERNELS:
        monkeypatch.setattr(_cuda_kernels, name, _fake(name, calls))
    return calls


def _both(fn, *arrays):
    """fn's output and its inputs' gradients on the CPU and on 'cuda', as host arrays."""
    results = []
    for device in ("cpu", "cuda"):
        inputs = [chainrule.tensor(a, device=device, requires_grad=True) for a in arrays]
        out = fn(*inputs)
        out.backward(chainrule.tensor(np.linspace(-1, 1, out.numel(), dtype=np.float32).reshape(tuple(out.shape)),
                                      device=device))
        results.append([out.detach().cpu().numpy()] + [t.grad.cpu().numpy() for t in inputs])
    return results


X = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
W, B = np.linspace(0.5, 1.5, 20, dtype=np.float32).reshape(4, 5), np.linspace(-1, 1, 20, dtype=np.float32).reshape(4, 5)
TARGET = np.array([0, 4, 2, -100, 1, 3, 3, 0, 4, -100, 2, 1])


def _cross_entropy(reduction: str):
    def fn(x):
        target = chainrule.tensor(TARGET, device=x.device)
        return F.cross_entropy(x.reshape(12, 5), target, reduction=reduction)

    return fn


# op -> (function of leaf tensors, the kernels it calls forward and backward, the leaves' values)
OPS = {
    "softmax": (lambda x: chainrule.softmax(x, dim=-1), ["softmax"], (X,)),
    "log_softmax": (lambda x: F.log_softmax(x, dim=2), ["log_softmax"], (X,)),
    "layer_norm": (lambda x: F.layer_norm(x, (4, 5)), ["layer_norm", "layer_norm_backward"], (X,)),
    "layer_norm_affine": (lambda x, w, b: F.layer_norm(x, (4, 5), w, b), ["layer_norm", "layer_norm_backward"],
                          (X, W, B)),
    "cross_entropy_mean": (_cross_entropy("mean"), ["cross_entropy", "cross_entropy_backward"], (X,)),
    "cross_entropy_sum": (_cross_entropy("sum"), ["cross_entropy", "cross_entropy_backward"], (X,)),
    "cross_entropy_none": (_cross_entropy("none"), ["cross_entropy", "cross_entropy_backward"], (X,)),
    "gelu": (F.gelu, ["gelu", "gelu_backward"], (X,)),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), ["gelu"], (X,)),
}


@pytest.mark.parametrize("op", OPS, ids=OPS.keys())
def test_op_calls_its_fused_kernel(fused, op):
    fn, expected_calls, arrays = OPS[op]
    cpu, device = _both(fn, *arrays)
    assert fused == expected_calls
    for c, d in zip(cpu, device):
        np.testing.assert_allclose(d, c, rtol=1e-5, atol=1e-6)


def test_cross_entropy_takes_the_composed_path_where_the_kernel_has_no_case(fused):
    x = chainrule.tensor(X.reshape(12, 5), device="cuda", requires_grad=True)
    target = chainrule.tensor(TARGET, device="cuda")
    F.cross_entropy(x, target, label_smoothing=0.1).backward()
    F.cross_entropy(x, target, weight=chainrule.ones(5, device="cuda")).backward()
    F.cross_entropy(x.reshape(3, 4, 5).transpose(1, 2), target.reshape(3, 4).clamp(min=0)).backward()
    assert "cross_entropy" not in fused and "cross_entropy_backward" not in fused


@pytest.mark.parametrize("op", ["cross_entropy_mean", "cross_entropy_none", "layer_norm", "layer_norm_affine"])
def test_fused_gradients_differentiate_again(fused, op):
    """create_graph through a kernel's backward: the second order comes from the Tensor-op rule."""
    fn, _, arrays = OPS[op]
    results = []
    for device in ("cpu", "cuda"):
        inputs = [chainrule.tensor(a, device=device, requires_grad=True) for a in arrays]
        out = fn(*inputs)
        u = chainrule.tensor(np.linspace(-1, 1, out.numel(), dtype=np.float32).reshape(tuple(out.shape)),
                             device=device)
        grads = chainrule.autograd.grad(out, inputs, u, create_graph=True)
        second = chainrule.autograd.grad(sum((g * g.detach().cos()).sum() for g in grads), inputs, allow_unused=True)
        results.append([g.detach().cpu().numpy() for g in grads + second if g is not None])
    assert "cross_entropy_backward" in fused or "layer_norm_backward" in fused
    for c, d in zip(*results):
        np.testing.assert_allclose(d, c, rtol=1e-4, atol=1e-5)


def test_softmax_over_an_inner_dim_takes_the_composed_path(fused):
    chainrule.softmax(chainrule.tensor(X, device="cuda"), dim=1)
    assert fused == []


def test_the_standin_alone_takes_the_composed_path(cuda):
    for fn, _, arrays in OPS.values():
        inputs = [chainrule.tensor(a, device="cuda", requires_grad=True) for a in arrays]
        fn(*inputs).sum().backward()  # the real kernels would raise TypeError on stand-in arrays
        assert all(t.grad.device.type == "cuda" for t in inputs)


@pytest.mark.parametrize("optimizer, kernel, calls", [
    (lambda ps: chainrule.optim.Adam(ps, lr=0.01, weight_decay=0.1), "adam_multi_tensor_step", 2),
    (lambda ps: chainrule.optim.AdamW(ps, lr=0.01, amsgrad=True, fused=True), "adam_multi_tensor_step", 2),
    (lambda ps: chainrule.optim.Adam(ps, lr=0.01, maximize=True, foreach=False), "adam_step", 2),
], ids=["adam_l2", "adamw_amsgrad_fused", "adam_maximize_for_loop"])
def test_adam_step_calls_the_fused_kernel(fused, optimizer, kernel, calls):
    """One call per step over the whole group: the multi-tensor kernel (one launch, torch's
    foreach/fused default on CUDA), or with foreach=False ``adam_step`` (one launch per parameter,
    torch's for-loop implementation)."""
    chainrule.manual_seed(0)
    model = nn.Linear(5, 3)
    on_device = copy.deepcopy(model).to("cuda")
    cpu_opt, device_opt = optimizer(model.parameters()), optimizer(on_device.parameters())
    x = chainrule.tensor(X.reshape(-1, 5)[:6])
    for _ in range(2):
        for m, opt, inp in ((model, cpu_opt, x), (on_device, device_opt, x.to("cuda"))):
            opt.zero_grad()
            m(inp).square().mean().backward()
            opt.step()
    assert fused == [kernel] * calls  # two steps
    for p, q in zip(model.parameters(), on_device.parameters()):
        np.testing.assert_allclose(q.detach().cpu().numpy(), p.detach().numpy(), rtol=1e-5, atol=1e-7)
        assert q._version == p._version  # the in-place update is seen by autograd's version check
    for p, q in zip(model.parameters(), on_device.parameters()):
        for key, value in cpu_opt.state[p].items():
            np.testing.assert_allclose(device_opt.state[q][key].cpu().numpy(), value.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["Adam", "AdamW", "SGD"])
def test_fused_and_foreach_flags_are_checked_as_torch_checks_them(name):
    params = [nn.Parameter(chainrule.zeros(3))]
    with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True` together."):
        getattr(chainrule.optim, name)(params, lr=0.1, fused=True, foreach=True)
    with pytest.raises(RuntimeError, match="`fused` does not support `differentiable`"):
        getattr(chainrule.optim, name)(params, lr=0.1, fused=True, differentiable=True)
