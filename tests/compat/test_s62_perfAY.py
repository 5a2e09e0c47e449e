"""Session 62 perfAY: fast paths pinned against torch 2.13 (values, gradients, strides)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule import _sum_order

torch = pytest.importorskip("torch")


def _bits(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array).tobytes()


# row lengths around each vector and group of four vectors (float32: 8 and 32 floats; float64: 4
# and 16), so that _short_rows_sum's tail floats, leftover vectors and groups all occur
_LENGTHS = (4, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 40, 47, 63, 64, 65, 95)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_short_rows_sum_is_torchs_to_the_bit(dtype):
    # torch adds each row in its vector lanes (SumKernel's vectorized_inner_sum, on AVX2 and AVX-512
    # CPUs alike), which _sum_order replays; the short-row path must give the same bits
    rng = np.random.default_rng(62)
    for length in _LENGTHS:
        for count in (2, 17, 33, 300):
            x = (rng.standard_normal((count, length)) * rng.uniform(0.01, 1e3, (count, 1))).astype(dtype)
            x[::7] = -0.0
            ours = chainrule.from_numpy(x).sum(1).numpy()
            theirs = torch.from_numpy(x).sum(1).numpy()
            assert _bits(ours) == _bits(theirs), (length, count)


def test_short_rows_sum_is_the_transposing_paths(monkeypatch):
    # the same additions in the same order as the path it replaces, special values included
    rng = np.random.default_rng(7)
    for dtype in (np.float32, np.float64):
        for length in _LENGTHS:
            x = rng.standard_normal((40, length)).astype(dtype)
            x[3, length // 2] = np.inf
            x[5] = np.nan
            x[6] = -0.0
            new = _sum_order.inner_sum(x)
            with monkeypatch.context() as patch:
                patch.setattr(_sum_order, "_SHORT_ROW_GROUPS", 0)
                old = _sum_order.inner_sum(x)
            assert _bits(new) == _bits(old), (dtype, length)


@pytest.mark.parametrize("keepdim", [False, True])
def test_mean_and_its_gradient_over_short_rows(keepdim):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 6, 20)).astype(np.float32)
    results = []
    for lib in (chainrule, torch):
        t = lib.tensor(x, requires_grad=True)
        y = t.mean(-1, keepdim=keepdim)
        y.backward(lib.ones_like(y))
        results.append((y.detach().numpy(), t.grad.numpy(), y.grad_fn.name(), t.grad.stride()))
    (y0, g0, name0, s0), (y1, g1, name1, s1) = results
    assert _bits(y0) == _bits(y1)
    assert _bits(g0) == _bits(g1)
    assert (name0, s0) == (name1, s1)


@pytest.mark.parametrize("column_major", [False, True])
def test_linear_with_a_constant_input_notes_its_strides(column_major):
    # the forward notes the strides of the matrix it does not keep (a plain tuple now); the weight's
    # gradient is laid out by them as torch's
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    w = rng.standard_normal((3, 4)).astype(np.float32)
    results = []
    for lib in (chainrule, torch):
        xt = lib.tensor(x)
        if column_major:
            xt = xt.t().contiguous().t()
        wt = lib.tensor(w, requires_grad=True)
        y = xt @ wt.t()
        y.backward(lib.ones_like(y))
        fn = y.grad_fn
        results.append((fn.name(), tuple(fn._saved_self_sym_strides), wt.grad.stride(), wt.grad.numpy()))
    assert results[0][:3] == results[1][:3]
    assert _bits(results[0][3]) == _bits(results[1][3])


_LIKE_INPUTS = {
    "keepdim_mean": lambda lib: lib.ones(8, 6, 4, 4).mean((-1, -2), keepdim=True),
    "column": lambda lib: lib.ones(5, 1),
    "channels_last": lambda lib: lib.ones(2, 3, 4, 4).contiguous(memory_format=lib.channels_last),
    "transposed": lambda lib: lib.ones(6, 4).t(),
    "size_one_channels_last": lambda lib: lib.ones(2, 3, 1, 1).contiguous(memory_format=lib.channels_last),
}


@pytest.mark.parametrize("dtype", [None, "float64"])
@pytest.mark.parametrize("name", sorted(_LIKE_INPUTS))
def test_like_results_keep_torchs_strides(name, dtype):
    # *_like compares the preserved strides before allocating a relaid copy; the strides stay torch's
    results = []
    for lib in (chainrule, torch):
        like = _LIKE_INPUTS[name](lib)
        kwargs = {} if dtype is None else {"dtype": getattr(lib, dtype)}
        made = [lib.ones_like(like, **kwargs), lib.zeros_like(like, **kwargs), lib.full_like(like, 2.5, **kwargs)]
        results.append([(m.stride(), str(m.dtype).split(".")[-1], m.is_contiguous(), m.sum().item()) for m in made])
    assert results[0] == results[1]
