"""torch.amp.custom_fwd/custom_bwd on the stand-in 'cuda': cast_inputs runs the forward in the
given dtype with autocast off; the backward runs under the autocast state of its forward (off, where it cast)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule.amp import custom_bwd, custom_fwd


def _function(cast_inputs, seen):
    class Scale(chainrule.autograd.Function):
        @staticmethod
        @custom_fwd(device_type="cuda", cast_inputs=cast_inputs)
        def forward(ctx, x, w):
            seen["forward"] = (x.dtype, chainrule.amp.is_autocast_enabled("cuda"))
            ctx.save_for_backward(x, w)
            return x @ w

        @staticmethod
        @custom_bwd(device_type="cuda")
        def backward(ctx, grad):
            x, w = ctx.saved_tensors
            seen["backward"] = chainrule.amp.is_autocast_enabled("cuda")
            return grad @ w.T, x.T @ grad

    return Scale


@pytest.mark.parametrize("cast_inputs", [None, chainrule.float32])
def test_custom_fwd_and_bwd_under_autocast(cuda, cast_inputs):
    seen: dict = {}
    x = chainrule.tensor(np.ones((2, 3), np.float16), device="cuda", requires_grad=True)
    w = chainrule.tensor(np.full((3, 2), 0.5, np.float32), device="cuda", requires_grad=True)
    with chainrule.autocast("cuda", dtype=chainrule.float16):
        out = _function(cast_inputs, seen).apply(x, w)
    out.sum().backward()
    if cast_inputs is None:
        # the forward sees the caller's autocast region and its inputs as given
        assert seen["forward"] == (chainrule.float16, True) and seen["backward"] is True
    else:
        # torch's custom_fwd records _fwd_used_autocast = False when it casts (the forward ran with
        # autocast off), so custom_bwd runs the backward with autocast off too (checked against torch
        # on the CPU in tests/compat/test_s48_progDD.py)
        assert seen["forward"] == (chainrule.float32, False) and seen["backward"] is False
        assert out.dtype == chainrule.float32
    assert x.grad.dtype == chainrule.float16 and w.grad.dtype == chainrule.float32


def test_custom_fwd_outside_autocast_runs_as_is(cuda):
    seen: dict = {}
    x = chainrule.ones(2, 3, device="cuda", requires_grad=True)
    w = chainrule.ones(3, 2, device="cuda", requires_grad=True)
    _function(chainrule.float16, seen).apply(x, w).sum().backward()
    assert seen["forward"] == (chainrule.float32, False) and seen["backward"] is False


def test_custom_fwd_needs_a_device_type_string():
    with pytest.raises(TypeError):
        custom_fwd(lambda ctx, x: x)  # device_type is keyword-only and required, as in torch
    with pytest.raises(ValueError, match="Expected `device_type` of type `str`"):
        custom_fwd(device_type=None)
