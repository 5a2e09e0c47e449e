"""float16 and bfloat16 values rounded where torch 2.13's CPU kernels round them, compared bit for bit
with torch: the differences tools/torch_opinfo_dtypes_trial.py found, in our own words."""

import numpy as np
import pytest

import chainrule
import chainrule.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

HALF_DTYPES = ["float16", "bfloat16"]


def _pair(values: np.ndarray, dtype: str, *, requires_grad: bool = False):
    """One float32 array as a chainrule and a torch tensor of ``dtype`` (rounded the same way)."""
    theirs = torch.from_numpy(values).to(getattr(torch, dtype))
    bits = theirs.view(torch.int16).numpy().copy()
    ours = chainrule.from_numpy(bits).view(getattr(chainrule, dtype))
    return ours.requires_grad_(requires_grad), theirs.requires_grad_(requires_grad)


def _bits_equal(ours, theirs):
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.detach().float().numpy(), theirs.detach().float().numpy())


def _bits_equal_but_for_an_ulp(ours, theirs, at_most=0.01):
    """Bit-equal except for a few elements an ulp apart: torch's vectorised kernels round differently with
    the machine's vector width (AVX2 against AVX-512), so the same call differs by an ulp between CPUs."""
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    assert tuple(ours.shape) == tuple(theirs.shape)
    mine, reference = ours.detach().float().numpy(), theirs.detach().float().numpy()
    ulp = np.spacing(np.abs(reference).astype(np.float16)).astype(np.float32)
    if "bfloat16" in str(theirs.dtype):
        ulp = np.spacing(np.abs(reference)) * 2.0 ** 16
    differing = mine != reference
    assert differing.sum() <= max(1, at_most * reference.size), f"{differing.sum()} of {reference.size} differ"
    np.testing.assert_array_less(np.abs(mine - reference)[differing], ulp[differing] * 1.0001)


def _normal(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ---- norms: torch folds the affine map into one scale and shift, and batch norm keeps its
# statistics in the input's dtype ------------------------------------------------------------------
@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_group_norm_rounds_once_after_its_affine_map(dtype):
    # composing x̂ (rounded), · weight (rounded), + bias (rounded) missed by an ulp in a quarter of the values
    (x, tx), (w, tw), (b, tb) = (_pair(_normal(4, 6, 5, 5), dtype), _pair(_normal(6, seed=1), dtype),
                                 _pair(_normal(6, seed=2), dtype))
    _bits_equal(F.group_norm(x, 3, w, b), TF.group_norm(tx, 3, tw, tb))
    _bits_equal(F.group_norm(x, 2), TF.group_norm(tx, 2))


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_batch_norm_keeps_mean_and_inverse_std_in_the_input_dtype(dtype):
    (x, tx), (w, tw), (b, tb) = (_pair(_normal(4, 6, 9), dtype), _pair(_normal(6, seed=1), dtype),
                                 _pair(_normal(6, seed=2), dtype))
    _bits_equal(F.batch_norm(x, None, None, w, b, training=True), TF.batch_norm(tx, None, None, tw, tb, training=True))
    _bits_equal(F.batch_norm(x, None, None, training=True), TF.batch_norm(tx, None, None, training=True))
    (mean, tmean), (var, tvar) = _pair(_normal(6, seed=3), dtype), _pair(np.abs(_normal(6, seed=4)), dtype)
    _bits_equal(F.batch_norm(x, mean, var, w, b), TF.batch_norm(tx, tmean, tvar, tw, tb))
    ours, theirs = chainrule.native_batch_norm(x, w, b, None, None, True, 0.1, 1e-5), \
        torch.native_batch_norm(tx, tw, tb, None, None, True, 0.1, 1e-5)
    for o, t in zip(ours, theirs):
        _bits_equal(o, t)


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_instance_norm_rounds_as_batch_norm_of_every_sample_and_channel(dtype):
    (x, tx), (w, tw), (b, tb) = (_pair(_normal(3, 4, 6, 6), dtype), _pair(_normal(4, seed=1), dtype),
                                 _pair(_normal(4, seed=2), dtype))
    x_last, tx_last = (t.contiguous(memory_format=m.channels_last) for t, m in ((x, chainrule), (tx, torch)))
    ours, theirs = F.instance_norm(x_last, weight=w, bias=b), TF.instance_norm(tx_last, weight=tw, bias=tb)
    _bits_equal(ours, theirs)
    assert ours.is_contiguous() and theirs.is_contiguous()
    _bits_equal(F.instance_norm(x), TF.instance_norm(tx))


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_layer_norm_is_x_times_rstd_plus_a_shift_then_the_affine_map(dtype):
    # torch's kernel: fma(x, rstd, -rstd·mean) in float32, then fma(·, w, b), rounded once; a single
    # value keeps x·rstd's rounding error (6.1e-05 for -3.25) where (x - mean)·rstd gives 0
    (x, tx), (w, tw), (b, tb) = (_pair(_normal(16, 5) * 3 + 1, dtype), _pair(_normal(5, seed=1), dtype),
                                 _pair(_normal(5, seed=2), dtype))
    _bits_equal(F.layer_norm(x, [5], w, b), TF.layer_norm(tx, [5], tw, tb))
    (one, tone) = _pair(np.array([[-3.25], [0.1], [7.0]], np.float32), dtype)
    _bits_equal(F.layer_norm(one, [1]), TF.layer_norm(tone, [1]))
    ours, theirs = chainrule.native_layer_norm(one, [1], None, None, 1e-5), torch.native_layer_norm(tone, [1], None,
                                                                                                    None, 1e-5)
    for a, t in zip(ours, theirs):
        _bits_equal(a, t)


def test_half_norms_still_differentiate():
    # (against chainrule's float32 gradient: torch's first half-precision backward takes seconds to set up)
    x, tx = _pair(_normal(2, 4, 3, 3), "float16", requires_grad=True)
    w, tw = _pair(_normal(4, seed=1), "float16", requires_grad=True)
    ours, theirs = F.group_norm(x, 2, w), TF.group_norm(tx, 2, tw)
    assert type(ours.grad_fn).__name__ == type(theirs.grad_fn).__name__ == "NativeGroupNormBackward0"
    grad = chainrule.from_numpy(_normal(2, 4, 3, 3, seed=5))
    ours.backward(grad.half())
    x32, w32 = (t.detach().float().requires_grad_() for t in (x, w))
    F.group_norm(x32, 2, w32).backward(grad)
    assert x.grad.dtype == chainrule.float16 and w.grad.dtype == chainrule.float16
    np.testing.assert_allclose(x.grad.float().numpy(), x32.grad.numpy(), atol=1e-2, rtol=1e-2)
    np.testing.assert_allclose(w.grad.float().numpy(), w32.grad.numpy(), atol=1e-2, rtol=1e-2)


# ---- attention: torch's CPU kernels compute in float32 and round the output once; the flash kernel
# (4-d inputs) stores each exponential in the inputs' dtype before it weighs the values ----------------
@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_attention_rounds_as_torchs_cpu_kernels(dtype):
    # six keys: fewer than one vector of floats, so torch takes its exact exp for every one of them
    # (a full vector gets a 20-ulp polynomial, which this does not reproduce)
    (q, tq), (k, tk), (v, tv) = (_pair(_normal(2, 3, 5 if s == 1 else 6, 8, seed=s), dtype) for s in (1, 2, 3))
    sdpa, tsdpa = F.scaled_dot_product_attention, TF.scaled_dot_product_attention
    _bits_equal_but_for_an_ulp(sdpa(q, k, v), tsdpa(tq, tk, tv))
    _bits_equal(sdpa(q, k, v, is_causal=True), tsdpa(tq, tk, tv, is_causal=True))
    keep = np.random.default_rng(4).random((5, 6)) > 0.4
    keep[0] = False  # a query that may attend to nothing gives zeros
    _bits_equal(sdpa(q, k, v, attn_mask=chainrule.from_numpy(keep)), tsdpa(tq, tk, tv, attn_mask=torch.from_numpy(keep)))
    # 3-d inputs take torch's math kernel: float32 throughout
    _bits_equal(sdpa(q[0], k[0], v[0]), tsdpa(tq[0], tk[0], tv[0]))


# ---- interpolation: float32 throughout, rounded once; torch's generic kernel (linear, bicubic, and
# bilinear/trilinear off its channels-last path) keeps its weights in the input's dtype ---------------
@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("mode, shape, size", [
    ("linear", (2, 3, 7), (12,)), ("bicubic", (1, 2, 5, 6), (9, 4)), ("trilinear", (1, 2, 3, 4, 5), (5, 3, 7)),
    ("bilinear", (1, 2, 5, 6), (9, 4)), ("bilinear", (1, 2, 5, 6), (90, 41)),
])
def test_interpolation_rounds_as_torchs_upsample_kernels(dtype, mode, shape, size):
    # (9, 4) takes torch's channels-last bilinear kernel (output height + width <= 128), float32 weights;
    # (90, 41) its generic one, whose weights are rounded to the input's dtype
    x, tx = _pair(_normal(*shape), dtype)
    for align_corners in (False, True):
        _bits_equal(F.interpolate(x, size=size, mode=mode, align_corners=align_corners),
                    TF.interpolate(tx, size=size, mode=mode, align_corners=align_corners))


# ---- grid_sample: torch's float16/bfloat16 kernel rounds after every step; its trilinear weights
# multiply x's factor by y's, then by z's, and its bicubic goes along x for each row, then along y -------
@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_grid_sample_rounds_as_torchs_kernel(dtype):
    grid_values = np.random.default_rng(7).random((1, 3, 4, 5, 3)).astype(np.float32) * 2.4 - 1.2
    (x, tx), (grid, tgrid) = _pair(_normal(1, 2, 4, 5, 6), dtype), _pair(grid_values, dtype)
    for padding_mode in ("zeros", "reflection"):
        _bits_equal(F.grid_sample(x, grid, padding_mode=padding_mode, align_corners=False),
                    TF.grid_sample(tx, tgrid, padding_mode=padding_mode, align_corners=False))
    (x2, tx2), (grid2, tgrid2) = _pair(_normal(1, 2, 5, 6), dtype), _pair(np.ascontiguousarray(grid_values[0, 0, :, :, :2]), dtype)
    for align_corners in (False, True):
        _bits_equal(F.grid_sample(x2, grid2[None], mode="bicubic", align_corners=align_corners),
                    TF.grid_sample(tx2, tgrid2[None], mode="bicubic", align_corners=align_corners))


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_bilinear_contracts_the_second_input_with_a_matmul(dtype):
    # x1·W is rounded, then contracted with x2 in float32 (torch's bmm), then the bias is added
    (x1, tx1), (x2, tx2) = _pair(_normal(6, 5), dtype), _pair(_normal(6, 4, seed=1), dtype)
    (w, tw), (b, tb) = _pair(_normal(3, 5, 4, seed=2), dtype), _pair(_normal(3, seed=3), dtype)
    _bits_equal(F.bilinear(x1, x2, w, b), TF.bilinear(tx1, tx2, tw, tb))


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_embedding_bag_sums_in_float32_and_divides_the_rounded_sum(dtype):
    weight, tweight = _pair(_normal(10, 6), dtype)
    indices = np.random.default_rng(8).integers(0, 10, 12)
    offsets = np.array([0, 3, 7])
    for mode in ("sum", "mean"):
        _bits_equal(F.embedding_bag(chainrule.from_numpy(indices), weight, chainrule.from_numpy(offsets), mode=mode),
                    TF.embedding_bag(torch.from_numpy(indices), tweight, torch.from_numpy(offsets), mode=mode))


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_adaptive_avg_pool3d_sums_and_divides_in_the_input_dtype(dtype):
    # torch's 3-d kernel adds each window's values in float16/bfloat16, then divides by depth, height, width
    x, tx = _pair(_normal(2, 3, 5, 7, 6) * 4, dtype, requires_grad=True)
    ours, theirs = F.adaptive_avg_pool3d(x, (3, 4, 2)), TF.adaptive_avg_pool3d(tx, (3, 4, 2))
    _bits_equal(ours, theirs)
    _bits_equal(F.interpolate(x, size=(3, 4, 2), mode="area"), TF.interpolate(tx, size=(3, 4, 2), mode="area"))
    assert type(ours.grad_fn).__name__ == "AdaptiveAvgPool3DBackward0"
    ours.sum().backward()
    assert x.grad.dtype == x.dtype and float(x.grad.float().sum()) == pytest.approx(3 * 4 * 2 * 6, rel=1e-2)


def test_bfloat16_ties_are_ordered_as_torchs_sort_and_topk_order_them():
    # torch orders bfloat16 as its float32 widening, ties included (its std::sort / partial_sort order)
    values = np.round(_normal(4, 40) * 2).astype(np.float32)
    x, tx = _pair(values, "bfloat16")
    np.testing.assert_array_equal(chainrule.sort(x)[1].numpy(), torch.sort(tx)[1].numpy())
    np.testing.assert_array_equal(chainrule.argsort(x, descending=True).numpy(),
                                  torch.argsort(tx, descending=True).numpy())
    np.testing.assert_array_equal(chainrule.topk(x, 5)[1].numpy(), torch.topk(tx, 5)[1].numpy())


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_logaddexp_and_logaddexp2_compute_in_float32_and_round_once(dtype):
    (a, ta), (b, tb) = _pair(_normal(200) * 3, dtype), _pair(_normal(200, seed=1) * 3, dtype)
    _bits_equal(chainrule.logaddexp(a, b), torch.logaddexp(ta, tb))
    _bits_equal(chainrule.logaddexp2(a, b), torch.logaddexp2(ta, tb))


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_logit_rounds_each_step_as_torchs_half_precision_kernel(dtype):
    # torch computes log(p / (1 - p)) in the input's dtype, eps clamped there too (not float32 once)
    values = np.random.default_rng(9).random(300).astype(np.float32)
    values[:3] = (0.0, 1.0, 0.5)
    x, tx = _pair(values, dtype)
    for eps in (None, 0.2):
        _bits_equal(chainrule.logit(x, eps), torch.logit(tx, eps))


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_soft_margin_loss_is_log1p_of_exp_rounded_at_each_step(dtype):
    # float16's exp(13) overflows to inf in torch's composition: the loss is inf and its gradient nan
    (x, tx), (y, ty) = _pair(np.array([-13, -3, 0.5, 12, 2.25], np.float32), dtype, requires_grad=True), \
        _pair(np.array([1, 1, -1, -1, 0.75], np.float32), dtype)
    ours, theirs = F.soft_margin_loss(x, y, reduction="none"), TF.soft_margin_loss(tx, ty, reduction="none")
    _bits_equal(ours, theirs)
    ours.sum().backward()
    theirs.sum().backward()
    # the gradient is the composition's (torch's backward rounds -y·z / (1 + z): an ulp apart at most),
    # nan where the loss overflowed, as torch's
    np.testing.assert_allclose(x.grad.float().numpy(), tx.grad.float().numpy(), rtol=1e-2, atol=0)
    _bits_equal(F.soft_margin_loss(x, y), TF.soft_margin_loss(tx, ty))


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_huber_loss_computes_float16_in_float32_and_bfloat16_step_by_step(dtype):
    (a, ta), (b, tb) = _pair(_normal(64, seed=3) * 4, dtype, requires_grad=True), _pair(_normal(64, seed=4) * 4, dtype)
    for delta in (0.5, 2.5):
        ours, theirs = F.huber_loss(a, b, reduction="none", delta=delta), TF.huber_loss(ta, tb, reduction="none",
                                                                                         delta=delta)
        _bits_equal(ours, theirs)
    ours.float().sum().backward()
    theirs.float().sum().backward()
    np.testing.assert_allclose(a.grad.float().numpy(), ta.grad.float().numpy(), rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_cumsum_with_its_own_dtype_named_still_accumulates_in_float32(dtype):
    x, tx = _pair(_normal(5, 5, 5, seed=5) * 3, dtype)
    for dim in (0, 2):
        _bits_equal(chainrule.cumsum(x, dim, dtype=getattr(chainrule, dtype)),
                    torch.cumsum(tx, dim, dtype=getattr(torch, dtype)))


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_linspace_rounds_the_step_each_product_and_each_sum(dtype):
    for start, end, steps in ((-3.0, 7.0, 50), (2.5, -9.25, 33), (3.0, 4.0, 1), (0.0, 10.0, 2)):
        _bits_equal(chainrule.linspace(start, end, steps, dtype=getattr(chainrule, dtype)),
                    torch.linspace(start, end, steps, dtype=getattr(torch, dtype)))


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_sinc_computes_in_float32_and_rounds_once(dtype):
    x, tx = _pair(np.concatenate([_normal(64, seed=6) * 5, [0.0, 1.0, -2.0]]).astype(np.float32), dtype)
    _bits_equal(chainrule.sinc(x), torch.sinc(tx))
