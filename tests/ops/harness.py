"""The op-test harness: one lambda, run on chainrule and on torch, compared both ways.

An ``OpCase`` (defined with the op registry, ``chainrule.testing.opinfo``) names an op, a function
``fn(lib, *tensors)`` written once against the shared torch/chainrule API, and sample inputs as
NumPy arrays. This module holds the checks that need torch, the oracle; the registry never imports it:

1. runs ``fn`` on chainrule and (if installed) torch, in float32, with the same inputs, and
   compares the outputs (values, shape, dtype) and every input's gradient for a random
   cotangent;
2. runs chainrule's ``gradcheck`` in float64 (central differences);
3. runs ``gradgradcheck`` when the case says the op is twice differentiable.

The sample helpers (``randn``, ``positive``, ``distinct``, ``noncontig``) live in the registry and are
re-exported here for the hand-written tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

import chainrule
from chainrule.testing.opinfo import OpCase, distinct, noncontig, positive, randn, rng  # noqa: F401  (re-exported)

try:
    import torch
except ImportError:  # torch is the oracle only; chainrule's own checks still run
    torch = None

requires_torch = pytest.mark.skipif(torch is None, reason="PyTorch (the test oracle) is not installed")


def _wants_grad(case: OpCase, i: int, x) -> bool:
    if case.grad is not None:
        return bool(case.grad[i])
    return isinstance(x, np.ndarray) and x.dtype.kind in "fc"


_COMPLEX_OF = {"float32": "complex64", "float64": "complex128"}  # complex samples: the same precision


def _make(lib, case: OpCase, dtype_name: str):
    tensors = []
    for i, x in enumerate(case.inputs):
        if isinstance(x, np.ndarray):
            array = (x.astype(dtype_name) if x.dtype.kind == "f" else
                     x.astype(_COMPLEX_OF[dtype_name]) if x.dtype.kind == "c" else x.copy())
            if not array.flags.c_contiguous and array.ndim >= 1:
                array = noncontig(array)
            t = lib.from_numpy(array) if lib is not chainrule else chainrule.from_numpy(array)
            if _wants_grad(case, i, x):
                t.requires_grad_(True)
            tensors.append(t)
        else:
            tensors.append(x)
    return tensors


def _as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _numpy(t) -> np.ndarray:
    return t.detach().resolve_conj().numpy() if hasattr(t, "detach") else np.asarray(t)


def compare_with_torch(case: OpCase) -> None:
    """Forward values and gradients of chainrule vs torch on identical float32 inputs."""
    if torch is None:
        pytest.skip("PyTorch (the test oracle) is not installed")
    ours_in = _make(chainrule, case, "float32")
    theirs_in = _make(torch, case, "float32")
    ours = _as_list(case.fn(chainrule, *ours_in))
    theirs = _as_list(case.fn(torch, *theirs_in))
    assert len(ours) == len(theirs), f"{case.id}: {len(ours)} outputs vs torch's {len(theirs)}"
    for k, (o, t) in enumerate(zip(ours, theirs)):
        assert tuple(o.shape) == tuple(t.shape), f"{case.id} output {k}: shape {tuple(o.shape)} vs torch {tuple(t.shape)}"
        if case.check_dtype:
            assert str(o.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], f"{case.id} output {k}: dtype {o.dtype} vs torch {t.dtype}"
        np.testing.assert_allclose(_numpy(o), _numpy(t), rtol=case.rtol, atol=case.atol,
                                   err_msg=f"{case.id} output {k} forward")
    diff = [(o, t) for o, t in zip(ours, theirs) if t.requires_grad]
    assert len(diff) == sum(o.requires_grad for o in ours), f"{case.id}: requires_grad of outputs differs from torch"
    if not diff:
        return
    cotangents = [_cotangent(7 + k, t) for k, (_, t) in enumerate(diff)]
    chainrule.autograd.backward([o for o, _ in diff], [chainrule.tensor(c) for c in cotangents])
    torch.autograd.backward([t for _, t in diff], [torch.tensor(c) for c in cotangents])
    for i, (a, b) in enumerate(zip(ours_in, theirs_in)):
        if getattr(b, "requires_grad", False):
            if b.grad is None:
                assert a.grad is None or not np.any(_numpy(a.grad)), f"{case.id}: input {i} got a gradient, torch's is None"
                continue
            assert a.grad is not None, f"{case.id}: input {i} has no gradient, torch's is {b.grad}"
            assert tuple(a.grad.shape) == tuple(b.grad.shape), f"{case.id}: grad {i} shape {tuple(a.grad.shape)} vs {tuple(b.grad.shape)}"
            np.testing.assert_allclose(_numpy(a.grad), _numpy(b.grad), rtol=case.rtol * 10, atol=case.atol * 10,
                                       err_msg=f"{case.id} gradient of input {i}")


def _cotangent(seed: int, t) -> np.ndarray:
    values = rng(seed).standard_normal(tuple(t.shape))
    if t.is_complex():  # a complex output's gradient is complex: both parts random
        return (values + 1j * rng(seed + 100).standard_normal(tuple(t.shape))).astype(np.complex64)
    return values.astype(np.float32)


def perturbed_elements(case: OpCase) -> int:
    """How many elements gradcheck perturbs: those of the inputs that require grad."""
    wanted = case.grad or [True] * len(case.inputs)
    return sum(a.size for a, grad in zip(case.inputs, wanted)
               if grad and isinstance(a, np.ndarray) and a.dtype.kind in "fc")


def check_gradients(case: OpCase, fast_mode: bool = False, gradgrad_fast_mode: bool | None = None) -> None:
    """chainrule's gradcheck (and gradgradcheck) in float64; ``fast_mode`` checks along random
    directions (torch's fast_mode) instead of every input element; ``gradgrad_fast_mode`` does so
    for the gradgradcheck alone (``fast_mode`` when not given)."""
    inputs = _make(chainrule, case, "float64")
    if not any(getattr(t, "requires_grad", False) for t in inputs):
        return

    def fn(*xs):
        return case.fn(chainrule, *xs)

    if case.gradcheck:
        assert chainrule.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=fast_mode)
    if case.gradgradcheck:
        gradgrad_fast = fast_mode if gradgrad_fast_mode is None else gradgrad_fast_mode
        assert chainrule.autograd.gradgradcheck(fn, inputs, eps=1e-6, atol=1e-4, rtol=1e-3, fast_mode=gradgrad_fast)


def parametrize(cases: Sequence[OpCase]):
    return pytest.mark.parametrize("case", list(cases), ids=[c.id for c in cases])
