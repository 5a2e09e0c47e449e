"""Session 28, lane progP: error messages met around the metric-learning, StyleGAN2, MobileNet and
ALiBi programs' idioms, each compared with torch 2.13 on the same call."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _error(library, call):
    with pytest.raises(Exception) as raised:
        call(library)
    return type(raised.value).__name__, str(raised.value)


# ---------------------------------------------------------------- adaptive pools' negative sizes
@pytest.mark.parametrize("call", [
    lambda lib: lib.nn.functional.adaptive_avg_pool1d(lib.zeros(1, 2, 3), -1),
    lambda lib: lib.nn.functional.adaptive_avg_pool2d(lib.zeros(1, 2, 3, 3), -1),
    lambda lib: lib.nn.functional.adaptive_avg_pool2d(lib.zeros(1, 2, 3, 3), (2, -1)),
    lambda lib: lib.nn.functional.adaptive_avg_pool3d(lib.zeros(1, 2, 3, 3, 3), -1),
    lambda lib: lib.nn.functional.adaptive_avg_pool3d(lib.zeros(2, 3, 3, 3), (1, -2, 3)),
    lambda lib: lib.nn.AdaptiveAvgPool2d(-1)(lib.zeros(1, 2, 3, 3)),
    lambda lib: lib.nn.functional.adaptive_max_pool2d(lib.zeros(1, 2, 3, 3), -1),
], ids=["avg1d", "avg2d", "avg2d-pair", "avg3d", "avg3d-unbatched", "module", "max2d"])
def test_adaptive_pool_negative_output_size_says_what_torch_says(call):
    # torch's avg kernels name themselves (1-d runs as 2-d over (1, size)) and print the sizes in braces
    assert _error(chainrule, call) == _error(torch, call)
