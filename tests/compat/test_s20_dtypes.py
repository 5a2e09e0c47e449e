"""Values and result dtypes in torch's other dtypes (small integers, bool, float16, bfloat16, complex),
compared with torch 2.13's CPU results: the differences tools/torch_opinfo_dtypes_trial.py found in
session 20, in our own words."""

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _ours(t):
    """torch tensor -> chainrule tensor of the same dtype and values (bfloat16 bit for bit)."""
    if t.dtype == torch.bfloat16:
        return chainrule.from_numpy(t.view(torch.int16).numpy().copy()).view(chainrule.bfloat16)
    return chainrule.from_numpy(t.numpy().copy())


def _same(ours, theirs, *, exact=True):
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    assert tuple(ours.shape) == tuple(theirs.shape)
    mine, tolerance = ours.detach(), 1e-5
    if theirs.dtype in (torch.float16, torch.bfloat16):
        mine, theirs, tolerance = mine.float(), theirs.float(), 1e-3 if theirs.dtype == torch.float16 else 1e-2
    if exact:
        np.testing.assert_array_equal(mine.numpy(), theirs.detach().numpy())
    else:
        np.testing.assert_allclose(mine.numpy(), theirs.detach().numpy(), rtol=tolerance, atol=tolerance)


# ---- trapezoid: torch's formulas keep an integer y's neighbour sums in its dtype -----------------
@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16"])
@pytest.mark.parametrize("name", ["trapezoid", "cumulative_trapezoid"])
def test_trapezoid_of_small_integers_wraps_its_sums_as_torch(name, dtype):
    # 200 + 200 is 144 in uint8: torch adds neighbours in y's dtype before halving (chainrule cast to float first)
    y = (torch.arange(12).reshape(3, 4) * 37 % 251).to(getattr(torch, dtype))
    x = torch.tensor([1, 4, 200, 90], dtype=torch.uint8)  # its differences wrap too
    for args, kwargs in [((), {}), ((), {"dx": 3}), ((), {"dx": 0.5}), ((x,), {}), ((x.float(),), {})]:
        theirs = getattr(torch, name)(y, *args, **kwargs)
        ours = getattr(chainrule, name)(_ours(y), *[_ours(a) for a in args], **kwargs)
        _same(ours, theirs, exact=False)


def test_trapezoid_refuses_bool_and_keeps_empty_dtypes_as_torch():
    flags = torch.tensor([True, False, True])
    for name in ("trapezoid", "cumulative_trapezoid"):
        for args in [(flags,), (torch.ones(3), flags)]:
            with pytest.raises(RuntimeError) as theirs:
                getattr(torch, name)(*args)
            with pytest.raises(RuntimeError, match="bool is not supported") as ours:
                getattr(chainrule, name)(*[_ours(a) for a in args])
            assert str(ours.value) == str(theirs.value)
    empty = torch.ones(2, 0, dtype=torch.uint8)
    _same(chainrule.trapezoid(_ours(empty)), torch.trapezoid(empty))  # uint8 zeros
    _same(chainrule.cumulative_trapezoid(_ours(empty)), torch.cumulative_trapezoid(empty))  # float32, empty
    y16 = torch.tensor([[1.5, 2.0]], dtype=torch.float16)
    _same(chainrule.cumulative_trapezoid(_ours(y16), _ours(torch.tensor([0, 3], dtype=torch.uint8))),
          torch.cumulative_trapezoid(y16, torch.tensor([0, 3], dtype=torch.uint8)))  # stays float16


# ---- linspace in integer dtypes: start and end converted first, each value a truncated fma -------
@pytest.mark.parametrize("dtype", ["uint8", "int8", "int32", "int64"])
def test_integer_linspace_truncates_its_ends_and_values_as_torch(dtype):
    cases = [(4.3, 0, 50), (4.3, 50, 50), (-3.7, 50, 50), (0, 4.3, 7), (-128, 7, 1000), (-7, 3, 10001), (5, 9, 1)]
    for start, end, steps in cases:
        if dtype == "uint8" and isinstance(start, float) and start < 0:
            continue  # a negative float does not fit uint8 (refused below)
        theirs = torch.linspace(start, end, steps, dtype=getattr(torch, dtype))
        _same(chainrule.linspace(start, end, steps, dtype=getattr(chainrule, dtype)), theirs)
    with pytest.raises(RuntimeError) as theirs:
        torch.linspace(-3.7, 5, 1, dtype=torch.uint8)
    with pytest.raises(RuntimeError) as ours:
        chainrule.linspace(-3.7, 5, 1, dtype=chainrule.uint8)
    assert str(ours.value) == str(theirs.value)


# ---- uint8 images: torch's fixed-point separable kernel (chainrule computed the weights in uint8) --
@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("antialias", [False, True])
def test_uint8_interpolate_rounds_each_pass_as_torch(mode, antialias):
    import chainrule.nn.functional as F

    image = torch.randint(0, 256, (2, 3, 7, 5), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    cases = [{"size": (5, 9)}, {"size": (3, 3)}, {"size": (7, 12)}, {"scale_factor": 1.7},
             {"scale_factor": (1.0, 2.5)}, {"size": (13, 4), "align_corners": True}]
    for kwargs in cases:
        theirs = torch.nn.functional.interpolate(image, mode=mode, antialias=antialias, **kwargs)
        _same(F.interpolate(_ours(image), mode=mode, antialias=antialias, **kwargs), theirs)
    last = image.contiguous(memory_format=torch.channels_last)
    ours = F.interpolate(_ours(image).contiguous(memory_format=chainrule.channels_last), size=(4, 6), mode=mode)
    theirs = torch.nn.functional.interpolate(last, size=(4, 6), mode=mode)
    _same(ours, theirs)
    assert ours.stride() == theirs.stride()


# ---- dtypes torch's CPU kernels refuse: the same error, naming torch's kernel and ScalarType -----
def _same_refusal(torch_call, chainrule_call):
    """torch's error, raised by chainrule too; except where torch's CPU kernel refuses float16 or
    bfloat16 and chainrule computes (in float32, rounded once: tests/test_bfloat16.py's documented
    difference), whose result keeps the dtype."""
    with pytest.raises(Exception) as theirs:
        torch_call()
    try:
        results = chainrule_call()
    except Exception as ours:
        assert type(ours) is type(theirs.value)
        assert str(ours) == str(theirs.value)
    else:
        assert "'Half'" in str(theirs.value) or "'BFloat16'" in str(theirs.value), str(theirs.value)
        for result in results if isinstance(results, tuple) else (results,):
            assert str(result.dtype).split(".")[-1] in ("float16", "bfloat16", "int64")


POOLS = [("avg_pool1d", 3), ("avg_pool2d", 4), ("avg_pool3d", 5), ("adaptive_avg_pool1d", 3),
         ("adaptive_avg_pool2d", 4), ("adaptive_avg_pool3d", 5), ("adaptive_max_pool2d", 4), ("max_pool1d", 3),
         ("max_pool3d", 5)]


@pytest.mark.parametrize("name,ndim", POOLS)
@pytest.mark.parametrize("dtype", ["int8", "bool", "complex64", "float16"])
def test_pools_refuse_the_dtypes_torch_refuses(name, ndim, dtype):
    shape = (2, 3, 4, 6, 6)[5 - ndim:]
    x = torch.ones(shape, dtype=getattr(torch, dtype))
    try:
        expected = getattr(torch.nn.functional, name)(x, 2)
    except NotImplementedError:
        _same_refusal(lambda: getattr(torch.nn.functional, name)(x, 2),
                      lambda: getattr(chainrule.nn.functional, name)(_ours(x), 2))
        if ndim == 4:  # a channels-last input names torch's channels-last kernel
            last = x.contiguous(memory_format=torch.channels_last)
            _same_refusal(lambda: getattr(torch.nn.functional, name)(last, 2),
                          lambda: getattr(chainrule.nn.functional, name)(
                              _ours(x).contiguous(memory_format=chainrule.channels_last), 2))
    else:
        _same(getattr(chainrule.nn.functional, name)(_ours(x), 2), expected)


@pytest.mark.parametrize("mode,ndim", [("linear", 3), ("bilinear", 4), ("bicubic", 4), ("trilinear", 5),
                                       ("nearest", 3), ("nearest", 4), ("nearest-exact", 5), ("area", 4)])
@pytest.mark.parametrize("dtype", ["int32", "uint8", "bool", "complex64"])
def test_interpolate_refuses_the_dtypes_torch_refuses(mode, ndim, dtype):
    x = torch.ones((1, 2, 3, 4, 5)[5 - ndim:], dtype=getattr(torch, dtype))
    try:
        expected = torch.nn.functional.interpolate(x, scale_factor=1.5, mode=mode)
    except NotImplementedError:
        _same_refusal(lambda: torch.nn.functional.interpolate(x, scale_factor=1.5, mode=mode),
                      lambda: chainrule.nn.functional.interpolate(_ours(x), scale_factor=1.5, mode=mode))
    else:
        _same(chainrule.nn.functional.interpolate(_ours(x), scale_factor=1.5, mode=mode), expected)


NORMS = [
    ("layer_norm", lambda F, x: F.layer_norm(x, [4])),
    ("group_norm", lambda F, x: F.group_norm(x, 1)),
    ("batch_norm", lambda F, x: F.batch_norm(x, None, None, training=True)),
    ("instance_norm", lambda F, x: F.instance_norm(x)),
    ("rms_norm", lambda F, x: F.rms_norm(x, [4])),
    ("local_response_norm", lambda F, x: F.local_response_norm(x, 2)),
    ("local_response_norm 4-d", lambda F, x: F.local_response_norm(x.unsqueeze(-1), 2)),
]


@pytest.mark.parametrize("name,call", NORMS, ids=[n for n, _ in NORMS])
@pytest.mark.parametrize("dtype", ["int32", "int64", "bool", "complex64", "float16"])
def test_norms_refuse_the_dtypes_torch_refuses(name, call, dtype):
    x = (torch.arange(24).reshape(2, 3, 4) % 5).to(getattr(torch, dtype))
    try:
        expected = call(torch.nn.functional, x)
    except NotImplementedError:
        _same_refusal(lambda: call(torch.nn.functional, x), lambda: call(chainrule.nn.functional, _ours(x)))
    else:
        _same(call(chainrule.nn.functional, _ours(x)), expected, exact=dtype not in ("float16", "complex64"))


ACTIVATIONS = [
    ("elu", lambda F, x: F.elu(x)), ("selu", lambda F, x: F.selu(x)), ("leaky_relu", lambda F, x: F.leaky_relu(x)),
    ("gelu", lambda F, x: F.gelu(x)), ("softplus", lambda F, x: F.softplus(x)), ("mish", lambda F, x: F.mish(x)),
    ("hardshrink", lambda F, x: F.hardshrink(x)), ("hardtanh", lambda F, x: F.hardtanh(x)),
    ("threshold", lambda F, x: F.threshold(x, 0.5, 0.0)), ("glu", lambda F, x: F.glu(x)),
    ("prelu", lambda F, x: F.prelu(x, x[0, :, 0])), ("prelu of a float64 weight", lambda F, x: F.prelu(x, x[0, :, 0].double())),
    ("rrelu eval", lambda F, x: F.rrelu(x)), ("silu", lambda F, x: F.silu(x)),
    ("softmax", lambda F, x: F.softmax(x, -1)), ("log_softmax dim 0", lambda F, x: F.log_softmax(x, 0)),
    ("softmax into int64", lambda F, x: F.softmax(x.real if x.is_complex() else x, 0, dtype=x.new_zeros(()).long().dtype)),
]


@pytest.mark.parametrize("name,call", ACTIVATIONS, ids=[n for n, _ in ACTIVATIONS])
@pytest.mark.parametrize("dtype", ["int8", "bool", "complex64"])
def test_activations_refuse_the_dtypes_torch_refuses(name, call, dtype):
    x = (torch.arange(24).reshape(2, 3, 4) % 5 - 2).to(getattr(torch, dtype))
    try:
        expected = call(torch.nn.functional, x)
    except (NotImplementedError, RuntimeError):
        _same_refusal(lambda: call(torch.nn.functional, x), lambda: call(chainrule.nn.functional, _ours(x)))
    else:
        _same(call(chainrule.nn.functional, _ours(x)), expected, exact=False)


SPECIALS = [
    ("special.bessel_j0", lambda S, x: S.special.bessel_j0(x)),
    ("special.chebyshev_polynomial_t", lambda S, x: S.special.chebyshev_polynomial_t(x, 3)),
    ("special.zeta", lambda S, x: S.special.zeta(x, 2.0)), ("special.erfcx", lambda S, x: S.special.erfcx(x)),
    ("special.ndtri", lambda S, x: S.special.ndtri(x)), ("lgamma", lambda S, x: S.lgamma(x)),
    ("special.i1e", lambda S, x: S.special.i1e(x)), ("erfc", lambda S, x: S.erfc(x)), ("sinc", lambda S, x: S.sinc(x)),
]


@pytest.mark.parametrize("name,call", SPECIALS, ids=[n for n, _ in SPECIALS])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "complex64", "int16"])
def test_special_functions_refuse_the_dtypes_torch_refuses(name, call, dtype):
    x = (torch.arange(6).reshape(2, 3) / 7 + 0.25).to(getattr(torch, dtype))
    try:
        expected = call(torch, x)
    except NotImplementedError:
        _same_refusal(lambda: call(torch, x), lambda: call(chainrule, _ours(x)))
    else:
        _same(call(chainrule, _ours(x)), expected, exact=False)


# ---- float16 transposed convolutions: torch's col2im adds each kernel offset's columns in float16 --
@pytest.mark.parametrize("d", [1, 2, 3])
def test_float16_conv_transpose_rounds_as_torchs_col2im(d):
    generator = torch.Generator().manual_seed(d)
    x = torch.randn((2, 4) + (5, 4, 3)[:d], generator=generator).half()
    w = torch.randn((4, 3) + (3, 2, 3)[:d], generator=generator).half()
    b = torch.randn(6, generator=generator).half()
    name = f"conv_transpose{d}d"
    for kwargs in [{"stride": 2, "padding": 1, "output_padding": 1, "groups": 2}, {"dilation": 2}]:
        bias = b if kwargs.get("groups") else b[:3]
        # on a CPU with AVX512-FP16 torch hands float16 to oneDNN, which rounds otherwise; the
        # kernel matched here is its col2im path, the one every other CPU takes
        with torch.backends.mkldnn.flags(enabled=False):
            theirs = getattr(torch.nn.functional, name)(x, w, bias, **kwargs)
        ours = getattr(chainrule.nn.functional, name)(_ours(x).requires_grad_(), _ours(w), _ours(bias), **kwargs)
        _same(ours, theirs)
        assert ours.grad_fn is not None


# ---- index_reduce(mean) of half dtypes: torch adds the slices one by one in the dtype --------------
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("include_self", [True, False])
def test_half_index_reduce_mean_adds_in_its_dtype(dtype, include_self):
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(3, 6, 2, generator=generator).to(getattr(torch, dtype))
    source = (torch.randn(3, 7, 2, generator=generator) * 3).to(getattr(torch, dtype))
    index = torch.tensor([5, 5, 1, 0, 5, 5, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's "index_reduce() is in beta", once per process
        theirs = x.index_reduce(1, index, source, "mean", include_self=include_self)
    ours = _ours(x).requires_grad_().index_reduce(1, _ours(index), _ours(source), "mean", include_self=include_self)
    _same(ours, theirs)
    assert ours.grad_fn is not None


def test_clamp_with_tensor_bounds_keeps_the_three_tensors_dtype():
    # a float16 input with an int32 upper bound is float16 in torch (chainrule's NaN guard made it float32)
    x = torch.tensor([0.5, -3.0, 7.0], dtype=torch.float16)
    for low, high in [(torch.zeros(3, dtype=torch.float16), torch.full((3,), 2, dtype=torch.int32)),
                      (torch.full((3,), -1, dtype=torch.int32), torch.ones(3, dtype=torch.bfloat16))]:
        _same(chainrule.clamp(_ours(x), _ours(low), _ours(high)), torch.clamp(x, low, high))


# ---- complex logsumexp: shifted by the real parts' max, its gradient conjugated -----------------
def test_complex_logsumexp_keeps_torchs_branch_and_conjugate_gradient():
    z = torch.complex(torch.tensor([[3.0, 1.0, -2.0], [0.5, 4.0, 4.0]], dtype=torch.float64),
                      torch.tensor([[2.5, -3.0, 1.0], [3.1, -2.9, 3.0]], dtype=torch.float64))
    ours = _ours(z).requires_grad_()
    theirs_out, ours_out = torch.logsumexp(z, 1), chainrule.logsumexp(ours, 1)
    _same(ours_out, theirs_out, exact=False)  # (the imaginary parts differed by 2π)
    cotangent = torch.tensor([1.0 - 2.0j, 0.5 + 1.0j], dtype=torch.complex128)
    ours_out.backward(_ours(cotangent))
    # torch's rule (derivatives.yaml, logsumexp_backward): grad · conj(exp(z - out))
    _same(ours.grad, cotangent[:, None] * (z - theirs_out[:, None]).exp().conj(), exact=False)
    assert chainrule.autograd.gradcheck(lambda t: chainrule.logsumexp(t, 1), (ours.detach().requires_grad_(),))


def test_complex_logaddexp_gradient_is_conjugated_as_torchs():
    a = torch.tensor([1.0 + 2.0j, -0.5 + 0.3j], dtype=torch.complex128)
    b = torch.tensor([0.2 - 1.0j, 2.0 + 0.0j], dtype=torch.complex128)
    ours_a, ours_b = (_ours(t).requires_grad_() for t in (a, b))
    cotangent = torch.tensor([1.0 + 1.0j, 0.5 - 2.0j], dtype=torch.complex128)
    chainrule.logaddexp(ours_a, ours_b).backward(_ours(cotangent))
    # torch's rule: grad · conj(1 / (1 + exp(b - a))) for a, and the same with a and b swapped
    _same(ours_a.grad, cotangent * (1 / (1 + (b - a).exp())).conj(), exact=False)
    _same(ours_b.grad, cotangent * (1 / (1 + (a - b).exp())).conj(), exact=False)
    assert chainrule.autograd.gradcheck(chainrule.logaddexp, (ours_a.detach().requires_grad_(),
                                                              ours_b.detach().requires_grad_()))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_embedding_max_norm_takes_torchs_float32_row_norms(dtype):
    weight = (torch.randn(5, 5, generator=torch.Generator().manual_seed(0)) * 8).to(getattr(torch, dtype))
    index = torch.tensor([[0, 2], [4, 1]])
    theirs_weight, ours_weight = weight.clone(), _ours(weight)
    theirs = torch.nn.functional.embedding_bag(index, theirs_weight, max_norm=1.0, mode="sum")
    ours = chainrule.nn.functional.embedding_bag(_ours(index), ours_weight, max_norm=1.0, mode="sum")
    _same(ours_weight, theirs_weight)  # the rows renormalised in place
    _same(ours, theirs)


@pytest.mark.parametrize("seed", [9, 19, 21])
def test_float16_attention_weights_add_the_mask_inside_the_product(seed):
    # torch scores q·sqrt(1/E)·kᵀ with the additive mask inside one baddbmm (one rounding; chainrule
    # rounded the product, then the sum): op_db's unbatched one-head sample with bias_k/bias_v
    generator = torch.Generator().manual_seed(seed)  # (seeds where the two roundings differed)
    q, k, v = ((torch.randn(3, 2, generator=generator) * 4).half() for _ in range(3))
    w_in, b_in = (torch.randn(6, 2, generator=generator) * 4).half(), (torch.randn(6, generator=generator) * 4).half()
    bias_k, bias_v = (torch.randn(2, generator=generator) * 4).half(), (torch.randn(2, generator=generator) * 4).half()
    w_out, b_out = (torch.randn(2, 2, generator=generator) * 4).half(), (torch.randn(2, generator=generator) * 4).half()
    mask = (torch.randn(3, 3, generator=generator) * 4).half()
    args = (q, k, v, 2, 1, w_in, b_in, bias_k, bias_v, False, 0.0, w_out, b_out)
    theirs = torch.nn.functional.multi_head_attention_forward(*args, attn_mask=mask, training=False)
    ours = chainrule.nn.functional.multi_head_attention_forward(
        *[_ours(a) if isinstance(a, torch.Tensor) else a for a in args], attn_mask=_ours(mask), training=False)
    _same(ours[1], theirs[1])


def test_istft_of_a_full_spectrum_to_a_real_signal_inverts_its_first_half_as_torch():
    spectrum = torch.randn(10, 3, dtype=torch.complex128, generator=torch.Generator().manual_seed(5))
    window = torch.ones(10, dtype=torch.float64)
    for kwargs in [{}, {"center": False}, {"onesided": False}]:
        theirs = torch.istft(spectrum, n_fft=10, window=window, **kwargs)
        _same(chainrule.istft(_ours(spectrum), n_fft=10, window=_ours(window), **kwargs), theirs, exact=False)


def test_multi_dot_multiplies_in_torchs_chain_order():
    # float16 rounds each product: the order shows (chainrule multiplied left to right)
    generator = torch.Generator().manual_seed(6)
    shapes = [(2, 4), (4, 3), (3, 5), (5, 3), (3, 2)]
    chain = [(torch.randn(s, generator=generator) * 3).half() for s in shapes]
    _same(chainrule.linalg.multi_dot([_ours(m) for m in chain]), torch.linalg.multi_dot(chain))
    vectors = [chain[0][0], chain[1], chain[2], chain[3][:, 0]]
    _same(chainrule.linalg.multi_dot([_ours(m) for m in vectors]), torch.linalg.multi_dot(vectors))


ELEMENTWISE = [
    ("bitwise_and", lambda L, x: L.bitwise_and(x, x)), ("operator &", lambda L, x: 5 & x),
    ("bitwise_not", lambda L, x: L.bitwise_not(x)), ("operator ~", lambda L, x: ~x),
    ("hypot", lambda L, x: L.hypot(x, x)), ("igamma", lambda L, x: L.igamma(x, x)),
    ("logaddexp2", lambda L, x: L.logaddexp2(x, x)), ("round", lambda L, x: L.round(x)),
    ("frac", lambda L, x: L.frac(x)), ("xlogy", lambda L, x: L.xlogy(x, x)), ("logit", lambda L, x: L.logit(x)),
    ("heaviside", lambda L, x: L.heaviside(x, x)),
]


@pytest.mark.parametrize("name,call", ELEMENTWISE, ids=[n for n, _ in ELEMENTWISE])
@pytest.mark.parametrize("dtype", ["float32", "float16", "complex64", "int16", "bool"])
def test_elementwise_ops_refuse_the_dtypes_torch_refuses(name, call, dtype):
    x = (torch.arange(6).reshape(2, 3) % 3).to(getattr(torch, dtype))
    try:
        expected = call(torch, x)
    except (NotImplementedError, RuntimeError, TypeError):
        _same_refusal(lambda: call(torch, x), lambda: call(chainrule, _ours(x)))
    else:
        _same(call(chainrule, _ours(x)), expected, exact=False)


ORDERING = [
    ("sort", lambda L, x: L.sort(x)), ("argsort", lambda L, x: L.argsort(x)), ("topk", lambda L, x: L.topk(x, 2)),
    ("argmin", lambda L, x: L.argmin(x)), ("median", lambda L, x: L.median(x)),
    ("median dim", lambda L, x: L.median(x, 1)), ("nanmedian", lambda L, x: L.nanmedian(x)),
    ("kthvalue", lambda L, x: L.kthvalue(x, 1)), ("mode", lambda L, x: L.mode(x)),
    ("cummax", lambda L, x: L.cummax(x, 1)), ("unique", lambda L, x: L.unique(x)),
    ("isin", lambda L, x: L.isin(x, x)), ("trace", lambda L, x: L.trace(x[:, :2])),
    ("dot", lambda L, x: L.dot(x[0], x[1])), ("cdist", lambda L, x: L.cdist(x, x)),
]


@pytest.mark.parametrize("name,call", ORDERING, ids=[n for n, _ in ORDERING])
@pytest.mark.parametrize("dtype", ["complex64", "bool", "int32", "float16"])
def test_ordering_and_products_refuse_the_dtypes_torch_refuses(name, call, dtype):
    x = (torch.arange(6).reshape(2, 3) % 4).to(getattr(torch, dtype))
    try:
        expected = call(torch, x)
    except (NotImplementedError, RuntimeError):
        _same_refusal(lambda: call(torch, x), lambda: call(chainrule, _ours(x)))
    else:
        result = call(chainrule, _ours(x))
        for ours, theirs in zip(result if isinstance(result, tuple) else (result,),
                                expected if isinstance(expected, tuple) else (expected,)):
            _same(ours, theirs, exact=False)


LOSSES_AND_FOLDS = [
    ("nll_loss", lambda L, x: L.nn.functional.nll_loss(x.reshape(1, 2), L.tensor([0]))),
    ("cross_entropy", lambda L, x: L.nn.functional.cross_entropy(x.reshape(1, 2), L.tensor([0]))),
    ("multi_margin_loss", lambda L, x: L.nn.functional.multi_margin_loss(x.reshape(1, 2), L.tensor([0]))),
    ("multilabel_soft_margin_loss", lambda L, x: L.nn.functional.multilabel_soft_margin_loss(x.reshape(1, 2),
                                                                                             x.reshape(1, 2))),
    ("binary_cross_entropy", lambda L, x: L.nn.functional.binary_cross_entropy(x, x)),
    ("mse_loss", lambda L, x: L.nn.functional.mse_loss(x, x)),
    ("smooth_l1_loss", lambda L, x: L.nn.functional.smooth_l1_loss(x, x)),
    ("one_hot", lambda L, x: L.nn.functional.one_hot(x.abs())), ("nansum", lambda L, x: L.nansum(x)),
    ("unfold", lambda L, x: L.nn.functional.unfold(x.reshape(1, 1, 1, 2), 1)),
    ("fold", lambda L, x: L.nn.functional.fold(x.reshape(1, 1, 2), (1, 2), 1)),
    ("max_unpool2d", lambda L, x: L.nn.functional.max_unpool2d(x.reshape(1, 1, 1, 2), L.tensor([[[[1, 3]]]]), 2)),
]


@pytest.mark.parametrize("name,call", LOSSES_AND_FOLDS, ids=[n for n, _ in LOSSES_AND_FOLDS])
@pytest.mark.parametrize("dtype", ["complex64", "int32", "bool"])
def test_losses_and_folds_refuse_the_dtypes_torch_refuses(name, call, dtype):
    x = torch.tensor([1.0, 0.0]).to(getattr(torch, dtype))
    try:
        expected = call(torch, x)
    except (NotImplementedError, RuntimeError):
        _same_refusal(lambda: call(torch, x), lambda: call(chainrule, _ours(x)))
    else:
        _same(call(chainrule, _ours(x)), expected, exact=False)
