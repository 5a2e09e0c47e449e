"""Session 52, lane mendCM: a float32 interpolation's forward + backward keeps nothing per shape and
needs memory of the order of its own tensors. Lane mendCK replayed torch's backward kernels from
term lists kept per shape (16 bytes a term, 4 to 16 terms an output element, up to 8 shapes) and
needed up to 128.7 times the output's bytes at its peak; interpolate's input gradient is the composed
plan's transpose again (test_s52_mendCK.py checks its values against torch's)."""
import gc
import tracemalloc

import numpy as np
import pytest

import chainrule
import chainrule.nn.functional as CF
from tests._heap import frozen_heap


def _step(shape, size, mode):
    x = chainrule.tensor(np.random.default_rng(0).standard_normal(shape).astype(np.float32), requires_grad=True)
    CF.interpolate(x, size=size, mode=mode, align_corners=False).sum().backward()
    return x.grad.shape


@pytest.mark.parametrize("mode, shape", [("bilinear", (1, 2, 96, 80)), ("bicubic", (1, 2, 97, 81)),
                                         ("trilinear", (1, 2, 20, 24, 16))])
def test_float32_interpolation_step_keeps_nothing_per_shape(mode, shape):
    if tracemalloc.is_tracing():
        pytest.skip("tracemalloc is tracing already")
    _step(tuple(shape[:2]) + tuple(n // 2 for n in shape[2:]), tuple(n + 3 for n in shape[2:]), mode)  # warm the code
    size = tuple(2 * n + 3 for n in shape[2:])
    output_bytes = 4 * shape[0] * shape[1] * int(np.prod(size))
    # what exists now is not traced: frozen, the collection below walks only what the step made
    # (a full collection of a pytest-xdist worker's heap, half a million objects late in the run,
    # took seconds of CI each)
    with frozen_heap():
        tracemalloc.start()
        try:
            assert _step(shape, size, mode) == shape
            gc.collect()
            kept, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert kept < output_bytes // 4  # (mendCK: 8.0 to 32.3 times the output's bytes kept; now 0.002 to 0.003)
    assert peak < 10 * output_bytes  # (mendCK: 32.6 to 128.7 times; now 2.6 to 3.9)
