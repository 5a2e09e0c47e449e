"""float32 sum and mean in torch's CPU order (session 45, lane mendAL): chainrule's results
compared with torch 2.13's bit for bit over a grid of shapes, dims and layouts
(ops/cpu_sum_order.py replays torch's cascade_sum)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule import _sum_order as cpu_sum_order

torch = pytest.importorskip("torch")

# torch's sum kernel adds in 8-float vectors on AVX2 and (measured) on AVX512 CPUs; on others
# its order was not measured
pytestmark = pytest.mark.skipif(
    torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"),
    reason="the replayed order is that of torch's AVX2/AVX512 sum kernel, 8 floats a vector; this CPU's "
           f"capability is {torch.backends.cpu.get_cpu_capability()}")


def seeded(shape, seed, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def differing(make, x):
    """How many elements of ``make(lib, tensor)`` differ in any bit between torch and chainrule."""
    want = make(torch, torch.from_numpy(x.copy())).numpy()
    got = make(chainrule, chainrule.from_numpy(x.copy())).numpy()
    assert want.shape == got.shape and got.dtype == np.float32
    return int((np.ascontiguousarray(want).view(np.int32) != np.ascontiguousarray(got).view(np.int32)).sum())


REDUCTIONS = {
    "sum(-1)": lambda lib, t: t.sum(-1),
    "mean(-1)": lambda lib, t: lib.mean(t, -1),
    "sum(-1, keepdim)": lambda lib, t: t.sum(-1, keepdim=True),
    "sum()": lambda lib, t: t.sum(),
    "mean()": lambda lib, t: t.mean(),
    "sum(0) of the transpose": lambda lib, t: t.t().contiguous().sum(0),
    "mean(0) of the transpose": lambda lib, t: t.t().contiguous().mean(0),
    "sum(-1) of a transposed view": lambda lib, t: t.t().contiguous().t().sum(-1),
    "sum(0) of a transposed view": lambda lib, t: t.t().sum(0),
}


@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("start", range(1, 301, 30))
def test_two_dim_reductions_match_torch_bit_for_bit(name, start):
    make = REDUCTIONS[name]
    for length in range(start, start + 30):
        for outer in (1, 7, 50):
            assert differing(make, seeded((outer, length), length * 100 + outer)) == 0, (outer, length)


@pytest.mark.parametrize("length", [1, 2, 5, 8, 15, 16, 31, 33, 64, 100, 255, 257])
@pytest.mark.parametrize("make", [lambda lib, t: t.sum(1), lambda lib, t: lib.mean(t, 1, keepdim=True),
                                  lambda lib, t: t.sum((1, 2)), lambda lib, t: t.sum((0, 1)),
                                  lambda lib, t: t.permute(1, 0, 2).sum(0), lambda lib, t: t.permute(1, 0, 2).sum((0, 2)),
                                  lambda lib, t: t.sum(0)])
def test_three_dim_reductions_match_torch(length, make):
    for inner in (1, 3, 8, 37, 70):
        if 3 * length * inner < cpu_sum_order.GRAIN_SIZE:  # (longer ones keep NumPy's order)
            assert differing(make, seeded((3, length, inner), length + inner)) == 0, inner


@pytest.mark.parametrize("shape, dim", [((3, 10000), -1), ((10000, 3), 0), ((4500, 7), 0), ((1, 32767), -1),
                                        ((32767,), 0), ((700, 40), 0), ((2, 5000, 3), 1), ((4099, 7), 0),
                                        ((4097, 6), 0)])
def test_long_reductions_through_the_cascade_levels(shape, dim):
    # 16 terms an accumulator, flushed every 16 and 256 groups: lengths past 256 and 4096 groups
    assert differing(lambda lib, t: t.sum(dim), seeded(shape, sum(shape))) == 0
    assert differing(lambda lib, t: t.mean(dim), seeded(shape, sum(shape) + 1)) == 0


def test_a_sum_of_negative_zeros_is_positive_zero_as_torch():
    for shape, dim in [((3,), 0), ((2, 20), -1), ((20, 2), 0), ((40, 40), 0)]:
        x = -np.zeros(shape, np.float32)
        assert differing(lambda lib, t, dim=dim: t.sum(dim), x) == 0
        assert differing(lambda lib, t: t.sum(), x) == 0


def test_gpt_video_running_mean_allclose_prints_torchs_answer():
    # the video notebook's xbow (a mean over each (t, 2) prefix) against wei @ x: torch says False
    x = seeded((4, 8, 2), 1337)

    def xbows(lib, t):
        xbow = lib.zeros((4, 8, 2))
        for b in range(4):
            for step in range(8):
                xbow[b, step] = lib.mean(t[b, :step + 1], 0)
        return xbow

    assert differing(xbows, x) == 0


def test_float32_gradients_are_unchanged_and_float64_gradcheck_holds():
    x = chainrule.tensor(seeded((6, 37), 5).astype(np.float64), requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda t: t.sum(0).mean(), (x,))
    y = chainrule.tensor(seeded((6, 37), 6), requires_grad=True)
    y.mean(-1).sum().backward()
    t = torch.tensor(seeded((6, 37), 6), requires_grad=True)
    t.mean(-1).sum().backward()
    assert np.array_equal(y.grad.numpy(), t.grad.numpy())


def test_beyond_a_grain_the_numpy_sum_is_kept():
    # torch splits a reduction of GRAIN_SIZE or more elements among its threads: not replayed
    x = seeded((cpu_sum_order.GRAIN_SIZE,), 0)
    assert cpu_sum_order.sum_dims(x, (0,), False) is None
    got = chainrule.from_numpy(x).sum().item()
    assert got == pytest.approx(float(x.astype(np.float64).sum()), rel=1e-5)


@pytest.mark.parametrize("shape, kept", [((32, 27), (32, 1)), ((32, 27), (1, 27)), ((5, 40, 3), (40, 1)),
                                         ((64, 32), (32,))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_broadcast_gradient_is_summed_as_torch_sums_it(shape, kept, dtype):
    # makemore_backprop_ninja: a hand-written dlogit_maxes = (-dnorm_logits).sum(1, keepdim=True)
    # is exactly autograd's gradient of logits - logit_maxes, on torch and so on chainrule
    x, m = seeded(shape, 7, dtype), seeded(kept, 8, dtype)
    upstream = seeded(shape, 9, dtype)
    dims = tuple(d for d in range(len(shape)) if d < len(shape) - len(kept) or kept[d - len(shape) + len(kept)] == 1)

    def grads(lib):
        b = lib.tensor(m, requires_grad=True)
        (lib.tensor(x) - b).backward(lib.tensor(upstream))
        by_hand = (-lib.tensor(upstream)).sum(dims, keepdim=True).reshape(kept)
        return b.grad.numpy(), by_hand.numpy()

    torch_grad, torch_hand = grads(torch)
    grad, hand = grads(chainrule)
    assert grad.dtype == dtype
    assert torch_grad.tobytes() == grad.tobytes()
    assert grad.tobytes() == hand.tobytes()
    assert torch_hand.tobytes() == hand.tobytes()
