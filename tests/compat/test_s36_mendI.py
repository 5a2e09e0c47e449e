"""torch's last bits in softmax, interpolation, distances, norms and windows, session 36 (lane
mendI), each compared with torch 2.13 on the CPU bit for bit, or by ulps where a comment says why."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def both(make):
    """``make(lib)`` run on torch and on chainrule, as NumPy arrays."""
    return make(torch).detach().numpy(), make(chainrule).detach().numpy()


def seeded(shape, seed, scale=3.0, dtype=np.float32):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


# --- 1. log_softmax: torch's order of additions for short rows, and its logf ----------------------

@pytest.mark.parametrize("length", range(1, 48))
def test_log_softmax_of_equal_logits_takes_torchs_log(length):
    # exp(0) = 1 in every library and the sum of ones is exact in any order, so only the log
    # shows: NumPy's float32 log missed Sleef's logf of 7, 37 and 47
    x = np.full((3, length), 0.75, np.float32)
    expected, got = both(lambda lib: lib.log_softmax(lib.tensor(x), -1))
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("length", [2, 5, 7, 8, 11, 15])
@pytest.mark.parametrize("dim", [-1, 0])
def test_log_softmax_short_rows_mostly_match_torch_bits(length, dim):
    # torch adds a row shorter than a vector left to right and takes Sleef's expf of each term;
    # chainrule replays the order but keeps NumPy's exp (Sleef's costs thirty passes, see
    # cpu_softmax_order), so a few rows stay an ulp or two apart: NumPy's pairwise sum and
    # float32 log left 30-55 % of these rows apart, the replay under 15 %
    x = seeded((2000, length), seed=length)
    if dim == 0:
        x = np.ascontiguousarray(x.T)
    expected, got = both(lambda lib: lib.log_softmax(lib.tensor(x), dim))
    rows_apart = (np.moveaxis(expected, dim, -1) != np.moveaxis(got, dim, -1)).any(-1).mean()
    assert rows_apart < 0.15
    np.testing.assert_allclose(got, expected, rtol=4e-7, atol=4e-7)



@pytest.mark.parametrize("count", [1, 3])
def test_log_softmax_sums_of_single_rows_add_in_order(count):
    # torch adds a row shorter than a vector (and any vertical sum) left to right; NumPy would
    # add one row of 8 or more pairwise
    from chainrule.ops.cpu_softmax_order import add_in_order

    rows = seeded((count, 13), seed=count, scale=1e4)
    running = rows[:, 0].copy()
    for column in rows.T[1:]:
        running = running + column
    np.testing.assert_array_equal(add_in_order(rows)[:, 0], running)


# --- 2. interpolate: torch's float32 source coordinates, weights and multiply-adds ----------------

INTERPOLATIONS = [
    ("bicubic", (2, 3, 9, 10), dict(scale_factor=2.0)), ("bicubic", (2, 3, 9, 10), dict(scale_factor=1.7)),
    ("bicubic", (2, 3, 10, 9), dict(size=(40, 50))), ("bicubic", (1, 4, 7, 13), dict(scale_factor=(0.6, 3.3))),
    ("bicubic", (2, 11, 5, 6), dict(size=(13, 5))), ("bicubic", (1, 1, 1, 9), dict(size=(1, 50))),
    ("linear", (3, 5, 11), dict(scale_factor=2.5)), ("linear", (2, 3, 17), dict(size=7)),
    ("trilinear", (2, 3, 4, 5, 6), dict(size=(7, 3, 11))), ("trilinear", (1, 11, 3, 4, 2), dict(scale_factor=1.9)),
]


@pytest.mark.parametrize("mode, shape, size_or_scale", INTERPOLATIONS)
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "transposed"])
def test_interpolate_float32_matches_torch_bits(mode, shape, size_or_scale, align_corners, layout):
    # before: 1747 of 2250 bicubic elements (and 4271 of 8498 linear ones) an ulp or more apart
    x = seeded(shape, seed=len(shape) + shape[-1])

    def run(lib):
        t = lib.tensor(x)
        if layout == "channels_last" and t.ndim in (4, 5):
            t = t.contiguous(memory_format=lib.channels_last if t.ndim == 4 else lib.channels_last_3d)
        elif layout == "transposed":
            t = t.transpose(-1, -2)
        return lib.nn.functional.interpolate(t, mode=mode, align_corners=align_corners, **size_or_scale)

    expected, got = both(run)
    np.testing.assert_array_equal(got, expected)


# --- 3. cdist: torch's direct kernel's order of additions and its root ----------------------------

CDIST_ROWS = [((10, 12), 5), ((7, 9), 3), ((30, 40), 7), ((100, 100), 16), ((64, 64), 128), ((1, 1), 13),
              ((25, 3), 1)]


def cdists(p, rows, length):
    x1 = seeded((rows[0], length), seed=1)
    x2 = seeded((rows[1], length), seed=2)
    return both(lambda lib: lib.cdist(lib.tensor(x1), lib.tensor(x2), p=p, compute_mode="donot_use_mm_for_euclid_dist"))


@pytest.mark.parametrize("rows, length", CDIST_ROWS)
def test_cdist_direct_two_norm_matches_torch_bits(rows, length):
    # before: 1614 of 10000 (M = 16) and 85 of 1200 (M = 7) distances apart
    expected, got = cdists(2.0, rows, length)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("p", [3.0, 1.5])
@pytest.mark.parametrize("rows, length", CDIST_ROWS)
def test_cdist_direct_p_norm_within_an_ulp_of_torch(p, rows, length):
    # torch's terms are glibc's powf, replayed as float64's power rounded: an ulp apart on a few
    # (4 and 6 of 10000, 2 of 4096); the order and the double-precision root are torch's
    # (before: 151 of 625 3-norms apart, many by more than an ulp)
    expected, got = cdists(p, rows, length)
    ulps = np.abs(expected.view(np.int32).astype(np.int64) - got.view(np.int32))
    assert ulps.max() <= 1 and (ulps > 0).mean() < 0.002


def test_cdist_direct_kernel_of_batches_matches_torch_bits():
    x1 = seeded((2, 1, 6, 5), seed=3)
    x2 = seeded((3, 7, 5), seed=4)
    expected, got = both(lambda lib: lib.cdist(lib.tensor(x1), lib.tensor(x2)))
    np.testing.assert_array_equal(got, expected)


# --- 5. batch norm on a transposed input: the running variance keeps torch's bits ----------------

@pytest.mark.parametrize("layout", ["transposed", "sliced"])
def test_batch_norm_running_variance_of_a_strided_input_matches_torch(layout):
    # the update reuses the forward's float64 channel sums (a pass over the strided input fewer);
    # its float64 variance sum and momentum step keep torch's bits
    modules = [torch.nn.BatchNorm2d(6), chainrule.nn.BatchNorm2d(6)]
    for step in range(3):
        x = seeded((4, 6, 5, 8), seed=step) + np.float32(2.5)
        for lib, module in zip((torch, chainrule), modules):
            t = lib.tensor(x)
            module(t.transpose(2, 3) if layout == "transposed" else t[:, :, :, ::2])
        np.testing.assert_array_equal(modules[1].running_var.numpy(), modules[0].running_var.numpy())


# --- 6. windows: kaiser's float32 kernel; the cosine windows' formula and order -------------------

@pytest.mark.parametrize("beta", [0.5, 3.0, 8.0, 12.0, 20.0, 88.0])
@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_kaiser_window_matches_torch_bits(beta, periodic, dtype):
    # before: 1870 of 6828 float32 values (beta 3) and 1134 (beta 12) an ulp or more apart
    for length in list(range(0, 40)) + [100, 255, 1000]:
        expected, got = both(lambda lib, length=length: lib.kaiser_window(length, periodic, beta, dtype=getattr(lib, dtype)).float())
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", ["hann_window", "hamming_window", "blackman_window"])
def test_cosine_windows_take_torchs_order_around_its_cosine(name):
    # torch: arange(n).mul_(2π/(n - 1)).cos_().mul_(-β).add_(α) (blackman: cos(4w)·0.08 - cos(2w)·0.5
    # + 0.42), each step rounded to float32; its float32 cos is MKL's (vmsCos, within an ulp, not
    # NumPy's nor the correctly rounded one: 4.8 % of these cosines differ), so every value is
    # compared to within a cosine's ulp (2⁻²³ near 1), and the windows whose cosines every
    # library rounds alike bit for bit
    for length in range(2, 120):
        expected, got = both(lambda lib, length=length: getattr(lib, name)(length, False))
        np.testing.assert_allclose(got, expected, rtol=0, atol=2.0 ** -23)
    for length in (1, 2, 3):  # cosines of 0, 2π and π only
        expected, got = both(lambda lib, length=length: getattr(lib, name)(length, False))
        np.testing.assert_array_equal(got, expected)


# --- 4. norms: float16 batch norm's running statistics --------------------------------------------

@pytest.mark.parametrize("shape", [(8, 4, 5, 5), (16, 6), (4, 3, 7, 9), (32, 5)])
def test_float16_batch_norm_running_statistics_match_torch(shape):
    # before: 14 of 24 running means and 13 of 24 variances (BatchNorm2d), 19 and 18 of 36
    # (BatchNorm1d) differed after three steps
    channels = shape[1]
    modules = [(lib.nn.BatchNorm2d(channels) if len(shape) == 4 else lib.nn.BatchNorm1d(channels)).half()
               for lib in (torch, chainrule)]
    for step in range(3):
        x = seeded(shape, seed=step, scale=2.0, dtype=np.float16) + np.float16(1)
        for lib, module in zip((torch, chainrule), modules):
            module(lib.tensor(x))
    for name in ("running_mean", "running_var"):
        np.testing.assert_array_equal(getattr(modules[1], name).numpy(), getattr(modules[0], name).numpy())
