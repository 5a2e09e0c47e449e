"""Norms (batch, layer, group, instance) with a float16/bfloat16 input and float32 parameters on
'cuda' (the stand-in): they run "mixed" as on the CPU (and as torch's AMP batch norm on a GPU):
normalised in float32, returned in the input's dtype, float32 parameter gradients, float32 running
statistics; no host copy. Inside autocast('cuda') batch norm stays mixed while layer and group
norm (torch's float32 list) get float32 inputs and return float32."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import chainrule
from chainrule import nn

rng = np.random.default_rng(0)
X = rng.standard_normal((4, 6, 3, 5)).astype(np.float32)
NORMS = {
    "batch_norm_train": lambda lib: lib.nn.BatchNorm2d(6),
    "batch_norm_eval": lambda lib: lib.nn.BatchNorm2d(6).eval(),
    "layer_norm": lambda lib: lib.nn.LayerNorm((3, 5)),
    "group_norm": lambda lib: lib.nn.GroupNorm(3, 6),
    "instance_norm": lambda lib: lib.nn.InstanceNorm2d(6, affine=True, track_running_stats=True),
}
LOW = ("float16", "bfloat16")


def _randomize(module, lib) -> None:
    """Weights, biases and running statistics away from their 1/0 defaults, the same in both libraries."""
    values = np.random.default_rng(1)
    with lib.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            if t.dtype == lib.float32:
                data = values.uniform(0.5, 1.5, tuple(t.shape)).astype(np.float32)
                t.copy_(lib.tensor(data))


def _run(lib, norm: str, dtype: str, device: str, before_step=lambda: None):
    module = NORMS[norm](lib)
    _randomize(module, lib)
    module = module.to(device)
    x = lib.tensor(X, device=device).to(getattr(lib, dtype)).requires_grad_(True)
    weight = lib.tensor(np.linspace(-1, 1, X.size, dtype=np.float32).reshape(X.shape), device=device)
    before_step()
    y = module(x)
    (y.float() * weight).sum().backward()
    params = [p.grad for p in module.parameters()]
    buffers = [b for b in module.buffers() if b.dtype.is_floating_point]
    return y, x.grad, params, buffers


def _host(t) -> np.ndarray:
    return t.detach().cpu().float().numpy()


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("norm", NORMS)
def test_a_low_precision_input_with_float32_parameters_runs_mixed_as_on_the_cpu(cuda, norm, dtype):
    cpu = _run(chainrule, norm, dtype, "cpu")
    y, x_grad, params, buffers = _run(chainrule, norm, dtype, "cuda", before_step=cuda.reset_transfers)
    assert cuda.transfers() == 0
    assert y.device.type == "cuda" and str(y.dtype) == f"chainrule.{dtype}" and x_grad.dtype == y.dtype
    assert all(p.dtype == chainrule.float32 and p.is_cuda for p in params + buffers)
    for ours, theirs in zip([y, x_grad, *buffers], [cpu[0], cpu[1], *cpu[3]]):
        np.testing.assert_array_equal(_host(ours), _host(theirs))
    # the parameter gradients are float32 sums over several dims: the CPU adds them in torch's CPU
    # order (chainrule/_sum_order.py), a device in its own, so they may differ in the last bits
    for ours, theirs in zip(params, cpu[2]):
        np.testing.assert_allclose(_host(ours), _host(theirs), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("norm", NORMS)
def test_the_mixed_norm_matches_torch(norm, dtype):
    # torch's CPU runs these mixed too; the device result is checked against chainrule's CPU above
    ours = _run(chainrule, norm, dtype, "cpu")
    theirs = _run(torch, norm, dtype, "cpu")
    tolerance = 1e-2 if dtype == "float16" else 4e-2
    # torch sums layer norm's bfloat16 parameter gradients over the batch in bfloat16, in an order set by its
    # thread count: bias[2, 0] is 0.4375 with 2 threads, 0.4648 with 1, exactly 0.3988 (chainrule's)
    summed = 1e-1 if (dtype, norm) == ("bfloat16", "layer_norm") else tolerance
    tolerances = [tolerance, tolerance] + [summed] * len(ours[2]) + [tolerance] * len(ours[3])
    for a, b, tol in zip([ours[0], ours[1], *ours[2], *ours[3]], [theirs[0], theirs[1], *theirs[2], *theirs[3]],
                         tolerances):
        assert str(a.dtype).split(".")[1] == str(b.dtype).split(".")[1]
        np.testing.assert_allclose(_host(a), b.detach().float().numpy(), rtol=tol, atol=tol)


def test_float16_batch_norm_with_float16_parameters_on_the_device(cuda):
    # torch's CPU kernel keeps the mean and 1/sigma in float16 (chainrule's CPU does as it does);
    # its CUDA kernels compute in float32 and round once, and so does chainrule's device path: its
    # values and gradients are those of a float32 batch norm rounded once to float16
    results = []
    for device in ("cpu", "cuda"):
        module = nn.BatchNorm2d(6).to(device).half()
        x = chainrule.tensor(X, device=device).half().requires_grad_(True)
        y = module(x)
        y.float().square().sum().backward()
        results.append((y, x.grad, module.weight.grad, module.running_var))
    module = nn.BatchNorm2d(6)
    x = chainrule.tensor(X).half().float().requires_grad_(True)
    y = module(x)
    y.half().float().square().sum().backward()
    float32_rounded_once = (y, x.grad, module.weight.grad)
    for ours, reference in zip(results[1], float32_rounded_once):
        assert ours.dtype == chainrule.float16 and ours.is_cuda
        np.testing.assert_array_equal(_host(ours), _host(reference.half()))
    # the CPU's running variance takes torch's CPU update (float64 arithmetic, one rounding to
    # float16); the device's is updated in float16 steps: an ulp apart at most
    np.testing.assert_allclose(_host(results[1][3]), _host(results[0][3]), rtol=2 ** -10, atol=0)
    # the two roundings differ by the float16 mean and 1/sigma of the CPU's: a few ulps near zero
    np.testing.assert_allclose(_host(results[1][0]), _host(results[0][0]), atol=2e-3, rtol=1e-3)
    module = torch.nn.BatchNorm2d(6).half()
    x = torch.tensor(X).half().requires_grad_(True)
    module(x).float().square().sum().backward()
    np.testing.assert_allclose(_host(results[1][0]), module(x).detach().float().numpy(), atol=2e-2, rtol=1e-2)
    np.testing.assert_allclose(_host(results[1][1]), x.grad.float().numpy(), atol=5e-2, rtol=2e-2)


def test_autocast_keeps_batch_norm_mixed_and_casts_layer_and_group_norm_up(cuda):
    chainrule.manual_seed(0)
    conv, batch, group, layer = nn.Conv2d(6, 4, 3).cuda(), nn.BatchNorm2d(4).cuda(), nn.GroupNorm(2, 4).cuda(), \
        nn.LayerNorm(4).cuda()
    x = chainrule.tensor(X, device="cuda")
    cuda.reset_transfers()  # (the modules and x were copied to the device above)
    with chainrule.autocast("cuda"):
        h = conv(x)
        b = batch(h)
        g = group(b)
        out = layer(b.transpose(1, 3))
    (g.sum() + out.sum()).backward()
    assert cuda.transfers() == 0
    # torch's CUDA autocast: conv on its float16 list; batch_norm on neither list (cuDNN's mixed batch
    # norm returns the input's dtype); group_norm and layer_norm on its float32 list
    assert (h.dtype, b.dtype, g.dtype, out.dtype) == (chainrule.float16, chainrule.float16, chainrule.float32,
                                                      chainrule.float32)
    assert all(p.grad.dtype == chainrule.float32 for m in (conv, batch, group, layer) for p in m.parameters())
    # the values are those of the same casts made by hand outside autocast
    with chainrule.no_grad():
        h_by_hand = nn.functional.conv2d(x.half(), conv.weight.half(), conv.bias.half())
        b_by_hand = batch.train()(h_by_hand)  # the second training step: the same batch statistics
        g_by_hand = group(b_by_hand.float())
    np.testing.assert_array_equal(_host(b), _host(b_by_hand))
    np.testing.assert_array_equal(_host(g), _host(g_by_hand))


@pytest.mark.parametrize("norm", NORMS)
def test_the_meta_device_gives_the_mixed_norms_dtype_as_torchs(norm):
    # the same rule off the CPU: torch's meta kernels return the input's dtype (float32 before)
    results = []
    for lib in (chainrule, torch):
        module = NORMS[norm](lib).to("meta")
        results.append(str(module(lib.empty(X.shape, device="meta", dtype=lib.float16)).dtype).split(".")[1])
    assert results == ["float16", "float16"]
