"""Lane mendK: renorm's speed without losing a bit, the TransformerEncoder fast path, vmap over
modules with state, *_copy out= lists, NaN bits of half precision, mixed-device error names;
each compared with torch 2.13 (CPU)."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- 1. renorm in blocks, same bits
@pytest.mark.parametrize("shape", [(3000, 40), (40, 30, 20), (600, 5)])
def test_renorm_two_norm_gradient_in_blocks_keeps_torchs_bits(shape):
    # (3000, 40) and (40, 30, 20) take the backward in blocks of whole slices; (600, 5) in one pass
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape).astype(np.float32)
    a[3] = 0  # a zero slice: norm_backward's 0 there
    g = rng.standard_normal(shape).astype(np.float32)
    tx = torch.tensor(a, requires_grad=True)
    cx = chainrule.tensor(a, requires_grad=True)
    ty, cy = torch.renorm(tx, 2, 0, 1.0), chainrule.renorm(cx, 2, 0, 1.0)
    ty.backward(torch.tensor(g))
    cy.backward(chainrule.tensor(g))
    np.testing.assert_array_equal(cy.detach().numpy().view(np.int32), ty.detach().numpy().view(np.int32))
    np.testing.assert_array_equal(cx.grad.numpy().view(np.int32), tx.grad.numpy().view(np.int32))


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("p", [2, 1, float("inf")])
def test_renorm_without_grad_scales_as_torchs_kernel(dtype, p):
    rng = np.random.default_rng(1)
    a = (rng.standard_normal((64, 32)) * 2).astype(np.float32)
    with torch.no_grad():
        expected = torch.renorm(torch.tensor(a).to(getattr(torch, dtype)), p, 0, 1.5).float().numpy()
    with chainrule.no_grad():
        got = chainrule.renorm(chainrule.tensor(a).to(getattr(chainrule, dtype)), p, 0, 1.5).float().numpy()
    np.testing.assert_array_equal(got.view(np.int32), expected.view(np.int32))


def test_renorm_gradient_of_unscaled_slices_is_a_fresh_array():
    # every slice within maxnorm: the gradient is the incoming one, copied (accumulation may write it)
    x = chainrule.ones(4, 3, requires_grad=True)
    g = chainrule.full((4, 3), 2.0)
    chainrule.renorm(x, 2, 0, 10.0).backward(g)
    x.grad.add_(1.0)
    assert g.tolist() == [[2.0] * 3] * 4


# ---------------------------------------------------------------- 2. the encoder layer's fast path
def _encoder_pair(nhead=2, norm_first=False, batch_first=True, layers=None, nested=True):
    torch.manual_seed(0)
    theirs = torch.nn.TransformerEncoderLayer(8, nhead, 16, dropout=0.0, batch_first=batch_first,
                                              norm_first=norm_first)
    ours = chainrule.nn.TransformerEncoderLayer(8, nhead, 16, dropout=0.0, batch_first=batch_first,
                                                norm_first=norm_first)
    ours.load_state_dict({k: chainrule.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    if layers is not None:
        theirs = torch.nn.TransformerEncoder(theirs, layers, enable_nested_tensor=nested)
        ours = chainrule.nn.TransformerEncoder(ours, layers, enable_nested_tensor=nested)
    return theirs.eval(), ours.eval()


def _source(lib):
    return lib.arange(2 * 3 * 8, dtype=lib.float32).reshape(2, 3, 8).sin()


def _assert_same(ours, theirs):
    np.testing.assert_array_equal(np.isnan(ours.numpy()), np.isnan(theirs.numpy()))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-5)


_FULL_ROW = [[False, False, True], [True, True, True]]


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("case", ["padding", "bool_attn", "float_attn_3d", "both"])
def test_fast_path_gives_nan_for_queries_without_keys(case, norm_first):
    theirs, ours = _encoder_pair(norm_first=norm_first)
    outs = []
    for lib, layer in ((torch, theirs), (chainrule, ours)):
        row_mask = lib.tensor([[True, True, True], [False, True, True], [False, False, False]])
        kwargs = {"padding": {"src_key_padding_mask": lib.tensor(_FULL_ROW)},
                  "bool_attn": {"src_mask": row_mask},
                  "float_attn_3d": {"src_mask": lib.zeros(3, 3).masked_fill(row_mask, float("-inf")).expand(4, 3, 3)},
                  "both": {"src_mask": row_mask, "src_key_padding_mask": lib.tensor(_FULL_ROW)}}[case]
        with lib.no_grad():
            outs.append(layer(_source(lib), **kwargs))
    _assert_same(outs[1], outs[0])
    assert np.isnan(outs[1].numpy()).any()


def test_composed_path_keeps_fully_masked_rows_finite():
    # training mode, or a gradient wanted: torch's composed path attends to nothing there
    theirs, ours = _encoder_pair()
    outs = [layer(_source(lib), src_key_padding_mask=lib.tensor(_FULL_ROW))
            for lib, layer in ((torch, theirs), (chainrule, ours))]
    _assert_same(outs[1].detach(), outs[0].detach())
    assert not np.isnan(outs[1].detach().numpy()).any()


@pytest.mark.parametrize("layers", [None, 2])
def test_fast_path_drops_is_causal_without_a_mask(layers):
    theirs, ours = _encoder_pair(layers=layers)
    with torch.no_grad():
        expected = theirs(_source(torch), is_causal=True)
    with chainrule.no_grad():
        got = ours(_source(chainrule), is_causal=True)
    _assert_same(got, expected)


@pytest.mark.parametrize("why", ["grad", "odd_heads", "not_batched", "not_batch_first"])
def test_composed_path_still_refuses_is_causal_without_a_mask(why):
    nhead = 1 if why == "odd_heads" else 2
    pair = _encoder_pair(nhead=nhead, batch_first=why != "not_batch_first")
    for lib, layer in zip((torch, chainrule), pair):
        src = _source(lib)[0] if why == "not_batched" else _source(lib)
        context = lib.enable_grad() if why == "grad" else lib.no_grad()
        with context, pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
            layer(src, is_causal=True)


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
@pytest.mark.parametrize("nested", [True, False])
def test_encoder_with_a_fully_padded_sequence(nested):
    # nested: torch packs the rows away and pads the output with zeros; else each layer's fast path
    theirs, ours = _encoder_pair(layers=2, nested=nested)
    with torch.no_grad():
        expected = theirs(_source(torch), src_key_padding_mask=torch.tensor(_FULL_ROW))
    with chainrule.no_grad():
        got = ours(_source(chainrule), src_key_padding_mask=chainrule.tensor(_FULL_ROW))
    assert not expected.is_nested and not got.is_nested
    _assert_same(got, expected)


# ---------------------------------------------------------------- 3. vmap over modules with state
def _stateful_modules(lib):
    class Counter(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.calls = 0
            self.lin = lib.nn.Linear(5, 2)

        def forward(self, x):
            self.calls += 1
            return self.lin(x)

    class StepBuffer(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("steps", lib.zeros(()))

        def forward(self, x):
            self.steps += 1  # unbatched: lands once
            return x * 2

    class BatchedIntoBuffer(lib.nn.Module):
        def __init__(self, write):
            super().__init__()
            self.write = write
            self.register_buffer("mean", lib.zeros(5))

        def forward(self, x):
            getattr(self.mean, self.write)(x.mean(0))  # batched into unbatched: refused
            return x

    return Counter, StepBuffer, BatchedIntoBuffer


def _vmap_outcome(lib, case):
    Counter, StepBuffer, BatchedIntoBuffer = _stateful_modules(lib)
    lib.manual_seed(0)
    x = lib.arange(60, dtype=lib.float32).reshape(4, 3, 5)
    module = {"counter": Counter, "buffer": StepBuffer, "add_": lambda: BatchedIntoBuffer("add_"),
              "copy_": lambda: BatchedIntoBuffer("copy_"),
              "batchnorm": lambda: lib.nn.BatchNorm1d(5)}[case]()
    try:
        out = lib.func.vmap(module)(x)
    except RuntimeError as error:
        return "raises", str(error).split("\n")[0]
    state = module.calls if case == "counter" else module.steps.item()
    return tuple(out.shape), state


@pytest.mark.parametrize("case", ["counter", "buffer", "add_", "copy_", "batchnorm"])
def test_vmap_runs_a_modules_side_effects_once(case):
    assert _vmap_outcome(chainrule, case) == _vmap_outcome(torch, case)


# ---------------------------------------------------------------- 4. *_copy out= lists
def _copy_into_outs(lib, op, outs_kind):
    import warnings

    x = lib.arange(10.0).reshape(5, 2)
    call, count = {"split_copy": (lambda o: lib.split_copy(x, 2, out=o), 3),
                   "split_with_sizes_copy": (lambda o: lib.split_with_sizes_copy(x, [1, 4], out=o), 2),
                   "unbind_copy": (lambda o: lib.unbind_copy(x, 1, out=o), 2)}[op]
    outs = {"empty": lambda: lib.empty(0), "non_empty": lambda: lib.zeros(3),
            "empty_long": lambda: lib.empty(0, dtype=lib.int64)}[outs_kind]
    outs = [outs() for _ in range(count)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            call(outs)
        except RuntimeError as error:
            return "raises", str(error)
    return ([(tuple(o.shape), o.tolist()) for o in outs],
            [(str(w.message), w.filename == __file__) for w in caught])


@pytest.mark.parametrize("op", ["split_copy", "split_with_sizes_copy", "unbind_copy"])
@pytest.mark.parametrize("outs_kind", ["empty", "non_empty", "empty_long"])
def test_copy_variants_resize_their_out_lists_as_torch(op, outs_kind):
    # split_with_sizes_copy and unbind_copy resize each out (warning when it held elements) and take
    # one dtype only; split_copy copies into the outs as they are
    assert _copy_into_outs(chainrule, op, outs_kind) == _copy_into_outs(torch, op, outs_kind)


def test_resized_copy_outs_on_another_device_are_refused():
    from chainrule._backend import use_standin_cuda

    with use_standin_cuda():
        x = chainrule.arange(10.0).reshape(5, 2).cuda()
        outs = [chainrule.empty(0), chainrule.empty(0)]
        with pytest.raises(RuntimeError, match="Expected out tensor to have device cuda:0, but got cpu instead"):
            chainrule.unbind_copy(x, 1, out=outs)
        assert [tuple(o.shape) for o in outs] == [(0,), (0,)]


# ---------------------------------------------------------------- 5. NaN bits of half precision
def _bits16(lib, t):
    return [v & 0xFFFF for v in t.reshape(-1).view(lib.int16).tolist()]


def _double(bits: int) -> float:
    return np.array([bits], dtype=np.uint64).view(np.float64)[0].item()


_PYTHON_NANS = [float("nan"), -float("nan"), _double(0x7FF8000000000123), _double(0x7FF0000000000001),
                _double(0xFFF0000000000001)]


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("make", ["tensor", "list", "full"])
def test_nan_from_python_numbers_has_torchs_bits(dtype, make):
    pytest.importorskip("ml_dtypes")

    def bits(lib):
        d = getattr(lib, dtype)
        made = {"tensor": lambda v: lib.tensor(v, dtype=d), "list": lambda v: lib.tensor([v, 1.0], dtype=d),
                "full": lambda v: lib.full((2,), v, dtype=d)}[make]
        return [_bits16(lib, made(v)) for v in _PYTHON_NANS]

    assert bits(chainrule) == bits(torch)


_FLOAT32_NANS = np.array([0x7FC00000, 0xFFC00000, 0x7FC12345, 0xFFC12345, 0x7F800001, 0xFF800001, 0x7FA00000,
                          0x3F800000], dtype=np.uint32)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("source", ["float32", "float64"])
@pytest.mark.parametrize("layout", ["dense", "0-d", "strided", "long", "rows"])
def test_nan_cast_to_half_precision_has_torchs_bits(dtype, source, layout):
    pytest.importorskip("ml_dtypes")
    with np.errstate(invalid="ignore"):  # (a signalling NaN widened to float64)
        values = np.tile(_FLOAT32_NANS.view(np.float32), 5).astype(source)  # 40: float64 runs of 16 and a tail

    def bits(lib):
        t = lib.from_numpy(values.copy())
        t = {"dense": t, "0-d": t[0], "strided": t[::3], "long": t.reshape(2, 20), "rows": t.reshape(4, 10)[:, :8]}[layout]
        return _bits16(lib, t.to(getattr(lib, dtype)))

    assert bits(chainrule) == bits(torch)


@pytest.mark.parametrize("source_bits", [0x7C01, 0xFC01, 0x7D00, 0x7E00, 0xFE00])
def test_float16_signalling_nan_is_quieted_when_widened(source_bits):
    pytest.importorskip("ml_dtypes")

    def bits(lib):
        signed = source_bits - 0x10000 if source_bits >= 0x8000 else source_bits
        half = lib.tensor([signed] * 16, dtype=lib.int16).view(lib.float16)
        return ([v & 0xFFFFFFFF for v in half.float().view(lib.int32).tolist()][:1],
                [v & 0xFFFFFFFFFFFFFFFF for v in half.double().view(lib.int64).tolist()][:1],
                _bits16(lib, half.clone())[:1], _bits16(lib, half.to(lib.bfloat16))[:1])

    assert bits(chainrule) == bits(torch)


@pytest.mark.parametrize("source_bits", [0x7F81, 0xFF81, 0x7FC1])
def test_bfloat16_nan_to_float16_keeps_its_payload(source_bits):
    pytest.importorskip("ml_dtypes")

    def bits(lib):
        signed = source_bits - 0x10000 if source_bits >= 0x8000 else source_bits
        return _bits16(lib, lib.tensor([signed] * 16, dtype=lib.int16).view(lib.bfloat16).half())[:1]

    assert bits(chainrule) == bits(torch)


# ---------------------------------------------------------------- 6. mixed-device errors name the op
# torch here has no GPU: the words are chainrule's "(when checking the arguments of <op>)", with
# the op torch's CUDA kernel names, as test_s35_mendG checks for the functions
_ACROSS_DEVICES = {
    "true_divide method": lambda lib, a, b: a.true_divide(b),
    "true_divide_ method": lambda lib, a, b: a.clone().true_divide_(b),
    "addbmm": lambda lib, a, b: lib.addbmm(a.reshape(2, 2)[:1], a.reshape(1, 1, 4).expand(3, 1, 4),
                                           b.reshape(1, 4, 1).expand(3, 4, 1)),
    "addbmm input elsewhere": lambda lib, a, b: lib.addbmm(b.reshape(2, 2), a.reshape(1, 2, 2), a.reshape(1, 2, 2)),
    "addbmm method": lambda lib, a, b: a.reshape(2, 2).addbmm(a.reshape(1, 2, 2), b.reshape(1, 2, 2)),
    "addbmm_": lambda lib, a, b: a.reshape(2, 2).clone().addbmm_(a.reshape(1, 2, 2), b.reshape(1, 2, 2)),
    "addbmm mismatched shapes": lambda lib, a, b: lib.addbmm(a.reshape(2, 2), a.reshape(1, 4, 1), b.reshape(1, 2, 2)),
}


@pytest.mark.parametrize("case", list(_ACROSS_DEVICES))
@pytest.mark.parametrize("other_device", ["cpu", "cuda:1"])
def test_mixed_devices_name_true_divide_and_addbmm(case, other_device):
    from chainrule._backend import use_standin_cuda

    op = case.split()[0].rstrip("_")
    with use_standin_cuda(devices=2):
        a = chainrule.ones(4, device="cuda:0")
        b = chainrule.ones(4, device=other_device)
        with pytest.raises(RuntimeError, match=rf"\(when checking the arguments of {op}\)$"):
            _ACROSS_DEVICES[case](chainrule, a, b)


def test_true_divide_method_still_divides_as_torch():
    def run(lib):
        x = lib.tensor([3.0, 4.0], requires_grad=True)
        y = x.true_divide(lib.tensor([2.0, 8.0]))
        return y.tolist(), y.grad_fn.name(), lib.tensor([3, 4]).true_divide(2).tolist()

    assert run(chainrule) == run(torch)


# ---------------------------------------------------------------- 1b. normalize without the expand when unwatched
def _normalize_cases(lib):
    rng = np.random.default_rng(0)
    four_d = lib.tensor(rng.standard_normal((2, 3, 4, 5)).astype(np.float32))
    return [(lib.tensor(rng.standard_normal((64, 32)).astype(np.float32)), 2.0, 1),
            (four_d.to(memory_format=lib.channels_last), 2.0, 1),
            (lib.tensor(rng.standard_normal((32, 64)).astype(np.float32)).t(), 2.0, 0),
            (lib.tensor(rng.standard_normal((5, 7)).astype(np.float32)), 3.0, -1)]


@pytest.mark.parametrize("mode", ["no_grad", "grad_mode_on", "recorded"])
def test_normalize_keeps_torchs_bits_layout_and_graph(mode):
    def run(lib):
        found = []
        for x, p, dim in _normalize_cases(lib):
            if mode == "recorded":
                x = x.detach().requires_grad_()
            with lib.no_grad() if mode == "no_grad" else lib.enable_grad():
                y = lib.nn.functional.normalize(x, p=p, dim=dim)
            graph = None if y.grad_fn is None else (y.grad_fn.name(), y.grad_fn.next_functions[1][0].name())
            found.append((y.detach().numpy().tobytes(), y.stride(), graph))
        return found

    assert run(chainrule) == run(torch)


# ---------------------------------------------------------------- 2b. MultiheadAttention's own fast path
def _attention_pair(nhead=2):
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(8, nhead, batch_first=True)
    ours = chainrule.nn.MultiheadAttention(8, nhead, batch_first=True)
    ours.load_state_dict({k: chainrule.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    return theirs.eval(), ours.eval()


_ATTENTION_MASKS = {
    "padding": lambda lib: {"key_padding_mask": lib.tensor([[False, False, False], [True, True, True]])},
    "float padding": lambda lib: {"key_padding_mask": lib.zeros(2, 3).masked_fill(
        lib.tensor([[False, False, False], [True, True, True]]), float("-inf"))},
    "attention": lambda lib: {"attn_mask": lib.tensor([[True, True, True], [False, True, True],
                                                       [False, False, False]])},
    "causal hint alone": lambda lib: {"is_causal": True},
    "causal hint and padding": lambda lib: {"is_causal": True, "key_padding_mask": lib.tensor(_FULL_ROW)},
}


@pytest.mark.parametrize("need_weights", [False, True])
@pytest.mark.parametrize("case", list(_ATTENTION_MASKS))
def test_attention_fast_path_nan_rows_and_causal_hint(case, need_weights):
    outs = []
    for lib, attention in zip((torch, chainrule), _attention_pair()):
        x = _source(lib)
        with lib.no_grad():
            out, weights = attention(x, x, x, need_weights=need_weights, **_ATTENTION_MASKS[case](lib))
        outs.append((out, weights))
    _assert_same(outs[1][0], outs[0][0])
    if need_weights:
        _assert_same(outs[1][1], outs[0][1])


@pytest.mark.parametrize("why", ["cross_attention", "grad", "odd_heads"])
def test_attention_composed_path_still_refuses_a_bare_causal_hint(why):
    for lib, attention in zip((torch, chainrule), _attention_pair(nhead=1 if why == "odd_heads" else 2)):
        x = _source(lib)
        key = x.clone() if why == "cross_attention" else x
        with lib.enable_grad() if why == "grad" else lib.no_grad(), \
                pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
            attention(x, key, key, is_causal=True)


def test_backends_mha_switch_turns_the_fast_paths_off():
    def run(lib):
        lib.manual_seed(0)
        layer = lib.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True).eval()
        attention = lib.nn.MultiheadAttention(8, 2, batch_first=True).eval()
        x = _source(lib)
        pad = lib.tensor(_FULL_ROW)
        found = [lib.backends.mha.get_fastpath_enabled()]
        lib.backends.mha.set_fastpath_enabled(False)
        try:
            found.append(lib.backends.mha.get_fastpath_enabled())
            with lib.no_grad():
                found.append(np.isnan(layer(x, src_key_padding_mask=pad).numpy()).any())
                found.append(np.isnan(attention(x, x, x, key_padding_mask=pad, need_weights=False)[0].numpy()).any())
                for call in (lambda: layer(x, is_causal=True), lambda: attention(x, x, x, is_causal=True)):
                    with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
                        call()
        finally:
            lib.backends.mha.set_fastpath_enabled(True)
        return found

    assert run(chainrule) == run(torch) == [True, False, False, False]
