"""float32 sum and mean in torch's CPU order over any layout and past GRAIN_SIZE (session 46, lane
mendAR): permuted inputs whose kept dims lie out of memory order, reductions over dims that are
not one run, strided (sliced) inputs, and (switched on: _sum_order.LARGE) reductions past 32,768
floats with torch's thread split, compared with torch 2.13's results bit for bit (chainrule/_sum_order.py)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule import _config, _sum_order

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.skipif(
    torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"),
    reason="the replayed order is that of torch's AVX2/AVX512 sum kernel, 8 floats a vector; this CPU's "
           f"capability is {torch.backends.cpu.get_cpu_capability()}")

# past GRAIN_SIZE torch splits a reduction among its threads: chainrule replays the split for the
# thread count torch starts with (or was given through chainrule.set_num_threads). The tests compare
# the replay with torch on the count torch runs now: a count read when the file was collected (a
# skipif) went stale when an earlier test in the worker set chainrule's count and put back only the
# BLAS pool's (test_s48_progDA's helper did: 5 of these failed after it, chainrule replaying 1 thread
# against torch's 2).
@pytest.fixture
def _replay_torchs_thread_count(monkeypatch):
    monkeypatch.setattr(_config, "torch_intra_op_threads", torch.get_num_threads)


same_threads = pytest.mark.usefixtures("_replay_torchs_thread_count")


def differing(make, x):
    """How many elements of ``make(lib, tensor)`` differ in any bit between torch and chainrule."""
    want = make(torch, torch.from_numpy(x.copy())).numpy()
    got = make(chainrule, chainrule.from_numpy(x.copy())).numpy()
    assert want.shape == got.shape and got.dtype == np.float32
    return int((np.ascontiguousarray(want).view(np.int32) != np.ascontiguousarray(got).view(np.int32)).sum())


def seeded(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def channels_last(lib, t):
    return t.contiguous(memory_format=lib.channels_last)


LAYOUTS = {
    "NCHW sum((0, 2, 3))": lambda lib, t: t.sum((0, 2, 3)),
    "NCHW mean((0, 2, 3), keepdim)": lambda lib, t: t.mean((0, 2, 3), keepdim=True),
    "NCHW sum((0, 2))": lambda lib, t: t.sum((0, 2)),
    "NCHW sum((1, 3))": lambda lib, t: t.sum((1, 3)),
    "channels-last sum((0, 2, 3))": lambda lib, t: channels_last(lib, t).sum((0, 2, 3)),
    "channels-last sum((0, 1))": lambda lib, t: channels_last(lib, t).sum((0, 1)),
    "permute(0, 2, 3, 1).sum(1)": lambda lib, t: t.permute(0, 2, 3, 1).sum(1),
    "permute(2, 0, 3, 1).sum(3)": lambda lib, t: t.permute(2, 0, 3, 1).sum(3),
    "permute(3, 1, 2, 0).mean(0)": lambda lib, t: t.permute(3, 1, 2, 0).mean(0),
    "permute(3, 1, 2, 0).sum((0, 2))": lambda lib, t: t.permute(3, 1, 2, 0).sum((0, 2)),
    "sliced sum(3)": lambda lib, t: t[:, :, 1:, 1:].sum(3),
    "sliced sum(0)": lambda lib, t: t[:, :, :, ::2].sum(0),
    "sliced sum((1, 2))": lambda lib, t: t[1:, :, ::2].sum((1, 2)),
    "sliced sum()": lambda lib, t: t[:, 1:, :, 1:].sum(),
    "sliced mean()": lambda lib, t: t[..., ::3].mean(),
    "strided transposed sum(0)": lambda lib, t: t[:, ::2].transpose(0, 3).sum(0),
}


@pytest.mark.parametrize("name", LAYOUTS)
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (4, 16, 8, 8), (3, 9, 13, 17), (8, 32, 7, 7), (2, 64, 4, 33)])
def test_any_layout_below_grain_matches_torch_bit_for_bit(name, shape):
    x = seeded(shape, sum(shape))
    assert x.size < _sum_order.GRAIN_SIZE
    assert differing(LAYOUTS[name], x) == 0


def test_random_layouts_below_grain_match_torch_bit_for_bit():
    rng = np.random.default_rng(46)
    checked = 0
    for _ in range(150):
        ndim = int(rng.integers(1, 5))
        shape = tuple(int(n) for n in rng.integers(1, 20, ndim))
        perm = tuple(int(d) for d in rng.permutation(ndim))
        index = tuple(slice(int(rng.integers(0, 2)), None, int(rng.choice([1, 2]))) for _ in range(ndim))
        dims = tuple(sorted(int(d) for d in rng.choice(ndim, int(rng.integers(1, ndim + 1)), replace=False)))
        keepdim = bool(rng.integers(0, 2))

        def make(lib, t, perm=perm, index=index, dims=dims, keepdim=keepdim):
            return t.permute(*perm)[index].sum(dims, keepdim=keepdim)

        x = seeded(shape, checked)
        if torch.from_numpy(x).permute(*perm)[index].numel() == 0:
            continue
        assert differing(make, x) == 0, (shape, perm, index, dims, keepdim)
        checked += 1
    assert checked > 100


LARGE_OUTER = {
    "sum(0)": (lambda lib, t: t.sum(0), (1000, 64)),
    "mean(0)": (lambda lib, t: t.mean(0), (300, 400)),
    "sum(0) of a square": (lambda lib, t: t.sum(0), (700, 700)),
    "transposed sum(1)": (lambda lib, t: t.t().sum(1), (9000, 7)),
    "sum(0, keepdim) NCHW": (lambda lib, t: t.sum(0, keepdim=True), (32, 64, 4, 4)),
    "channels-last sum((0, 2, 3))": (lambda lib, t: channels_last(lib, t).sum((0, 2, 3)), (32, 64, 16, 16)),
    "permute(1, 2, 3, 0).sum(3)": (lambda lib, t: t.permute(1, 2, 3, 0).sum(3), (16, 128, 8, 8)),
    "strided kept dim": (lambda lib, t: t.permute(1, 2, 0)[:, ::2, 1:].sum((0, 2)), (59, 80, 67)),
}


@same_threads
@pytest.mark.parametrize("name", LARGE_OUTER)
def test_large_outer_reductions_replayed_match_torch_bit_for_bit(name, monkeypatch):
    make, shape = LARGE_OUTER[name]
    monkeypatch.setattr(_sum_order, "LARGE", True)
    x = seeded(shape, 7)
    assert x.size >= _sum_order.GRAIN_SIZE
    assert differing(make, x) == 0


LARGE_INNER = {
    "sum() 32,768": (lambda lib, t: t.sum(), (32768,)),
    "mean() 40,000": (lambda lib, t: t.mean(), (40000,)),
    "sum() 123,457": (lambda lib, t: t.sum(), (123457,)),
    "mean() 1,000,000": (lambda lib, t: t.mean(), (1000, 1000)),
    "sum(1)": (lambda lib, t: t.sum(1), (300, 400)),
    "mean(1, keepdim)": (lambda lib, t: t.mean(1, keepdim=True), (9000, 7)),
    "transposed sum(0)": (lambda lib, t: t.t().sum(0), (50, 1000)),
    "channels-last sum()": (lambda lib, t: channels_last(lib, t).sum(), (8, 3, 64, 64)),
    "NCHW mean((2, 3))": (lambda lib, t: t.mean((2, 3)), (32, 64, 16, 16)),
    "permute(3, 1, 2, 0).sum(0)": (lambda lib, t: t.permute(3, 1, 2, 0).sum(0), (16, 128, 8, 8)),
}


@same_threads
@pytest.mark.parametrize("name", LARGE_INNER)
def test_large_inner_reductions_replayed_match_torch_bit_for_bit(name, monkeypatch):
    """Past GRAIN_SIZE a sum keeps NumPy's order by default (the replay costs 1.5-5x NumPy's);
    switched on, the replay (thread split included) is torch's to the bit."""
    make, shape = LARGE_INNER[name]
    monkeypatch.setattr(_sum_order, "LARGE", True)
    x = seeded(shape, 11)
    assert x.size >= _sum_order.GRAIN_SIZE
    assert differing(make, x) == 0


def test_large_reductions_keep_numpy_order_by_default(monkeypatch):
    x = seeded((1000, 100), 3)
    monkeypatch.setattr(_sum_order, "LARGE", False)
    assert _sum_order.sum_dims(x, (0, 1), False) is None
    assert _sum_order.sum_dims(x, (0,), False) is None
    assert _sum_order.sum_dims(x[:327], (0,), False) is not None
    monkeypatch.setattr(_sum_order, "LARGE", True)
    assert _sum_order.sum_dims(x, (0,), False) is not None
    assert _sum_order.sum_dims(x.T, (1,), False) is not None


def test_broadcast_gradient_of_a_permuted_input_matches_torch():
    """sum_to_size of a bias gradient over a permuted (kept dims out of memory order) gradient."""
    x = seeded((6, 5, 9), 5)
    b = seeded((9,), 6)
    grads = []
    for lib in (torch, chainrule):
        bias = lib.from_numpy(b.copy()).requires_grad_()
        t = lib.from_numpy(x.copy()).permute(2, 0, 1)
        (t.permute(1, 2, 0) * 1.5 + bias).square().sum().backward()
        grads.append(bias.grad.numpy())
    assert (grads[0].view(np.int32) == grads[1].view(np.int32)).all()


def test_overlapping_inputs_keep_numpy_order():
    """A broadcast (stride-0) input is not replayed; a strided one is."""
    x = seeded((4, 6), 1)
    assert _sum_order.sum_dims(x[:, ::2], (0,), False) is not None
    assert _sum_order.sum_dims(np.broadcast_to(x[:1], (4, 6)), (0,), False) is None
