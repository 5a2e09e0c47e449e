"""float64 add/sub/rsub with an alpha, and the float64 optimizer steps built on them, on 'cuda'
(the stand-in): the host's exact fused multiply-add (BLAS daxpy or its emulation over NumPy
buffers) must not take a device array, which refuses to become a NumPy one; the device computes
its own a + alpha·b, equal to the CPU's within float64 rounding, with no host transfer."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule


@pytest.mark.parametrize("form", ["add", "sub", "rsub", "add_", "sub_", "method"])
def test_float64_scaled_add_on_device(cuda, form):
    rng = np.random.default_rng(0)
    a_host, b_host = rng.standard_normal(1000), rng.standard_normal(1000)
    a = chainrule.tensor(a_host, device="cuda")
    b = chainrule.tensor(b_host, device="cuda")
    cuda.reset_transfers()
    if form in ("add_", "sub_"):
        out = getattr(a, form)(b, alpha=0.3)
    elif form == "method":
        out = a.add(b, alpha=0.3)
    else:
        out = getattr(chainrule, form)(a, b, alpha=0.3)
    assert out.device.type == "cuda"
    assert cuda.transfers() == 0
    expected = {"add": a_host + 0.3 * b_host, "add_": a_host + 0.3 * b_host, "method": a_host + 0.3 * b_host,
                "sub": a_host - 0.3 * b_host, "sub_": a_host - 0.3 * b_host, "rsub": b_host - 0.3 * a_host}[form]
    np.testing.assert_allclose(out.cpu().numpy(), expected, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("name, kwargs", [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("ASGD", dict(lr=0.01, lambd=0.001)),
])
def test_float64_optimizer_steps_on_device(cuda, name, kwargs):
    rng = np.random.default_rng(1)
    start, grad = rng.standard_normal(50), rng.standard_normal(50)
    results = {}
    for device in ("cpu", "cuda"):
        p = chainrule.nn.Parameter(chainrule.tensor(start, device=device))
        optimizer = getattr(chainrule.optim, name)([p], **kwargs)
        for _ in range(3):
            p.grad = chainrule.tensor(grad, device=device)
            optimizer.step()
        results[device] = p.detach().cpu().numpy()
    np.testing.assert_allclose(results["cuda"], results["cpu"], rtol=1e-13, atol=1e-15)
