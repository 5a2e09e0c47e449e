"""Run the op registry on the stand-in 'cuda' device against the CPU path (shared by the test and a
report script)."""

from __future__ import annotations

import numpy as np

import chainrule
from chainrule._backend import resolve, use_standin_cuda

from ..ops.harness import OpCase, _as_list, _make, rng


def _on_cuda(tensors: list, device: str = "cuda") -> list:
    moved = []
    for t in tensors:
        if isinstance(t, chainrule.Tensor):
            t = t.detach().to(device).requires_grad_(t.requires_grad)
        moved.append(t)
    return moved


def _host(t) -> np.ndarray:
    # a gradient torch returns as a conjugate view (hfft, ifft of a real input, resolve_conj's) carries the
    # conj bit, and numpy() refuses it as torch's does
    return t.detach().cpu().resolve_conj().numpy()


def run_on_both(case: OpCase, device: str = "cuda", gpus: int | None = None) -> None:
    """Forward values and input gradients of ``case`` on ``device`` (the stand-in, with ``gpus``
    GPUs) equal to those on the CPU; every output and gradient on ``device``."""
    cpu_in = _make(chainrule, case, "float32")
    cpu_out = _as_list(case.fn(chainrule, *cpu_in))
    with use_standin_cuda(devices=gpus):
        cuda_in = _on_cuda(cpu_in, device)
        # tensors the case creates inside fn (index tensors, say) go to the device too
        chainrule.set_default_device(device)
        try:
            cuda_out = _as_list(case.fn(chainrule, *cuda_in))
        finally:
            chainrule.set_default_device(None)
        assert len(cuda_out) == len(cpu_out)
        for k, (c, g) in enumerate(zip(cpu_out, cuda_out)):
            if not isinstance(c, chainrule.Tensor):
                assert c == g, f"{case.id} output {k}: {g!r} on cuda vs {c!r} on cpu"
                continue
            assert g.device == resolve(device), f"{case.id} output {k} is on {g.device}"
            assert g.dtype == c.dtype and tuple(g.shape) == tuple(c.shape), f"{case.id} output {k}"
            np.testing.assert_allclose(_host(g), _host(c), rtol=1e-5, atol=1e-6, equal_nan=True,
                                       err_msg=f"{case.id} output {k} forward")
        pairs = [(c, g) for c, g in zip(cpu_out, cuda_out)
                 if isinstance(c, chainrule.Tensor) and c.requires_grad]
        if not pairs:
            return
        cotangents = [rng(7 + k).standard_normal(tuple(c.shape)).astype(np.float32) for k, (c, _) in enumerate(pairs)]
        chainrule.autograd.backward([c for c, _ in pairs], [chainrule.tensor(v, dtype=c.dtype) for v, (c, _) in zip(cotangents, pairs)])
        chainrule.autograd.backward([g for _, g in pairs], [chainrule.tensor(v, dtype=g.dtype, device=device) for v, (_, g) in zip(cotangents, pairs)])
        for i, (c, g) in enumerate(zip(cpu_in, cuda_in)):
            if isinstance(c, chainrule.Tensor) and c.requires_grad:
                if c.grad is None:
                    assert g.grad is None, f"{case.id} input {i}: gradient on cuda only"
                    continue
                assert g.grad is not None and g.grad.device == resolve(device), f"{case.id} input {i} gradient"
                np.testing.assert_allclose(_host(g.grad), _host(c.grad), rtol=1e-5, atol=1e-6, equal_nan=True,
                                           err_msg=f"{case.id} input {i} gradient")
