"""Round 27 (fixes4): the optimisers' float32 arithmetic as torch 2.13's CPU kernels round it, and
small differences in cumsum's gradient, embedding_bag and addbmm, each compared with torch."""

import numpy as np
import pytest

from chainrule._opmath import fused_addcmul, fused_lerp

torch = pytest.importorskip("torch")


def _bits(array) -> np.ndarray:
    return np.ascontiguousarray(array).view(np.uint32)


def _random(seed: int, *shape) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------- the one lerp and addcmul helper
@pytest.mark.parametrize("weight", [0.1, 0.3, 0.49999999, 0.5, 0.7, 0.95, 1.5, -0.2])
def test_fused_lerp_is_torchs_float32_lerp_to_the_bit(weight):
    # 0.49999999 rounds to 0.5 in float32: torch compares the rounded weight, so it lerps from the end
    start, end = _random(0, 10007), _random(1, 10007)
    expected = torch.from_numpy(start).lerp(torch.from_numpy(end), weight).numpy()
    assert (_bits(fused_lerp(start, end, weight)) == _bits(expected)).all()


@pytest.mark.parametrize("value", [1.0, 0.001, -0.3])
def test_fused_addcmul_is_torchs_float32_addcmul_to_the_bit(value):
    start, t1, t2 = _random(2, 10007), _random(3, 10007), _random(4, 10007)
    expected = torch.from_numpy(start).addcmul(torch.from_numpy(t1), torch.from_numpy(t2), value=value).numpy()
    assert (_bits(fused_addcmul(start, t1, t2, value)) == _bits(expected)).all()
