"""Fixes found by the s25 programs of the progE lane (bert_mlm, cyclegan_lite, perceiver_io,
pruning_finetune, mamba_selective_scan), each compared with torch."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _both(fn):
    """fn(module) on torch and on chainrule, with the same float input; its results as arrays."""
    x = np.sin(np.arange(2 * 4 * 5 * 5, dtype=np.float32)).reshape(2, 4, 5, 5)
    return [fn(lib, x) for lib in (torch, chainrule)]


NORMS_WITHOUT_AFFINE = {
    "instance_norm": lambda lib, x: lib.nn.functional.instance_norm(x),
    "layer_norm": lambda lib, x: lib.nn.functional.layer_norm(x, x.shape[-1:]),
    "batch_norm": lambda lib, x: lib.nn.functional.batch_norm(x, None, None, training=True),
    "group_norm": lambda lib, x: lib.nn.functional.group_norm(x, 2),
    "InstanceNorm2d": lambda lib, x: lib.nn.InstanceNorm2d(4)(x),
    "LayerNorm(elementwise_affine=False)": lambda lib, x: lib.nn.LayerNorm(5, elementwise_affine=False)(x),
}


@pytest.mark.parametrize("norm", sorted(NORMS_WITHOUT_AFFINE))
def test_norm_output_written_in_place_keeps_torchs_gradient(norm):
    # CycleGAN's ResnetGenerator: InstanceNorm2d (no affine) then nn.ReLU(True). torch saves the
    # statistics, not the output, so the in-place ReLU is allowed; chainrule saved the output and
    # raised "modified by an inplace operation" (group_norm's gradient was silently wrong instead)
    def run(lib, x):
        leaf = lib.tensor(x, requires_grad=True)
        out = NORMS_WITHOUT_AFFINE[norm](lib, leaf)
        out.relu_()
        weights = lib.cos(lib.arange(out.numel(), dtype=lib.float32)).reshape(out.shape)
        (out * weights).sum().backward()
        return out.detach().numpy(), leaf.grad.numpy()

    (want_out, want_grad), (got_out, got_grad) = _both(run)
    np.testing.assert_allclose(got_out, want_out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_grad, want_grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("norm", ["instance_norm", "group_norm"])
def test_norm_output_view_written_in_place_keeps_torchs_gradient(norm):
    # a write through a view of the output counts too (the views share its version counter)
    def run(lib, x):
        leaf = lib.tensor(x, requires_grad=True)
        out = NORMS_WITHOUT_AFFINE[norm](lib, leaf)
        out[:, 1].mul_(3.0)
        (out * out * lib.linspace(-1.0, 2.0, 5)).sum().backward()
        return leaf.grad.numpy()

    want, got = _both(run)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_norm_input_written_in_place_still_refused_as_torch():
    # the input is still saved: writing it in place after the forward is torch's RuntimeError
    messages = []
    for lib in (torch, chainrule):
        leaf = lib.ones(2, 3, 4, requires_grad=True)
        x = leaf * lib.arange(4.0)
        out = lib.nn.functional.instance_norm(x)
        x.add_(1.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation") as info:
            out.sum().backward()
        messages.append(str(info.value).split(":")[0])
    assert messages[0] == messages[1]


def test_instance_norm_relu_inplace_generator_block_trains_as_torch():
    # the ResnetBlock pattern end to end: reflection pad, conv, InstanceNorm2d, ReLU(True), a skip
    def run(lib, x):
        lib.manual_seed(0)
        block = lib.nn.Sequential(lib.nn.ReflectionPad2d(1), lib.nn.Conv2d(4, 4, 3), lib.nn.InstanceNorm2d(4),
                                  lib.nn.ReLU(True))
        with lib.no_grad():
            for p in block.parameters():
                p.copy_(lib.linspace(-0.3, 0.3, p.numel()).reshape(p.shape))
        inp = lib.tensor(x)
        (inp + block(inp)).pow(2).mean().backward()
        return block[1].weight.grad.numpy()

    want, got = _both(run)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def _linear_with(lib, weight):
    module = lib.nn.Linear(weight.shape[1], weight.shape[0])
    with lib.no_grad():
        module.weight.copy_(lib.tensor(weight))
        module.bias.copy_(lib.tensor([0.5, -2.0, 1.0]))
    return module


TIED = (np.arange(12, dtype=np.float32) - 5.5).reshape(3, 4)  # |w| comes in equal pairs


def _masks(prune_steps):
    masks = []
    for lib in (torch, chainrule):
        lib.manual_seed(0)
        prune = __import__(f"{lib.__name__}.nn.utils.prune", fromlist=["prune"])
        masks.append(prune_steps(lib, prune))
    return masks


def test_l1_unstructured_chooses_among_equal_magnitudes_as_torch():
    # torch picks the entries with topk(largest=False), whose order among ties is not "first index
    # first"; chainrule's stable argsort pruned other weights of the same magnitude
    def steps(lib, prune):
        module = _linear_with(lib, TIED)
        prune.l1_unstructured(module, "weight", amount=0.25)
        first = module.weight_mask.tolist()
        prune.l1_unstructured(module, "weight", amount=0.5)  # a PruningContainer: among the 9 left
        return first, module.weight_mask.tolist()

    want, got = _masks(steps)
    assert got == want


def test_global_unstructured_chooses_among_equal_magnitudes_as_torch():
    def steps(lib, prune):
        a, b = _linear_with(lib, TIED), _linear_with(lib, TIED)
        prune.global_unstructured([(a, "weight"), (b, "bias")], pruning_method=prune.L1Unstructured, amount=5)
        return a.weight_mask.tolist(), b.bias_mask.tolist()

    want, got = _masks(steps)
    assert got == want


@pytest.mark.parametrize("n", [1, 2, float("inf"), "fro"])
def test_ln_structured_chooses_among_equal_norms_as_torch(n):
    # channel norms by torch.norm in the weight's dtype, the kept channels by topk
    weight = np.array([[1, 0, 2, 0], [0, 2, 0, 1], [2, 1, 0, 0], [3, 0, 0, 0], [0, 0, 1, 2], [1, 1, 1, 1]], np.float32)

    def steps(lib, prune):
        module = lib.nn.Linear(4, 6)
        with lib.no_grad():
            module.weight.copy_(lib.tensor(weight))
        prune.ln_structured(module, "weight", amount=3, n=n, dim=0)
        return module.weight_mask.sum(1).tolist()

    want, got = _masks(steps)
    assert got == want


def test_random_unstructured_prunes_torchs_entries_for_a_seed():
    # chainrule's rand_like draws torch's numbers for a seed; topk of them picks torch's entries
    def steps(lib, prune):
        module = lib.nn.Conv2d(2, 3, 3)
        prune.random_unstructured(module, "weight", amount=0.4)
        return module.weight_mask.flatten().tolist()

    want, got = _masks(steps)
    assert got == want


@pytest.mark.parametrize("call", ["ln_structured", "custom_from_mask"])
def test_prune_argument_errors_read_as_torchs(call):
    def steps(lib, prune):
        module = _linear_with(lib, TIED)
        with pytest.raises((IndexError, AssertionError)) as info:
            if call == "ln_structured":
                prune.ln_structured(module, "weight", amount=1, n=2, dim=5)
            else:
                prune.custom_from_mask(module, "bias", lib.tensor([1.0, 0.0]))
        return type(info.value), str(info.value).replace("chainrule.", "torch.")

    want, got = _masks(steps)
    assert got == want


@pytest.mark.parametrize("case", ["key width", "value width", "no q_proj_weight"])
def test_multihead_attention_kdim_vdim_mismatch_is_torchs_assertion(case):
    # a Perceiver's cross-attention with kdim/vdim: torch's _in_projection asserts the separate
    # projection weights against the key's and value's widths before any matmul
    def steps(lib, prune):
        mha = lib.nn.MultiheadAttention(8, 2, kdim=5, vdim=3, batch_first=True)
        query, key, value = lib.zeros(1, 2, 8), lib.zeros(1, 3, 5), lib.zeros(1, 3, 3)
        with pytest.raises(AssertionError) as info:
            if case == "key width":
                mha(query, lib.zeros(1, 3, 4), value)
            elif case == "value width":
                mha(query, key, lib.zeros(1, 3, 6))
            else:
                lib.nn.functional.multi_head_attention_forward(
                    query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1), 8, 2, None, mha.in_proj_bias,
                    None, None, False, 0.0, mha.out_proj.weight, mha.out_proj.bias, use_separate_proj_weight=True,
                    q_proj_weight=None, k_proj_weight=mha.k_proj_weight, v_proj_weight=mha.v_proj_weight)
        return str(info.value).replace("chainrule.", "torch.")

    want, got = _masks(steps)
    assert got == want


SPECIAL_UNARY = {
    "sinc": lambda lib, x: lib.sinc(x),
    "lgamma": lambda lib, x: lib.lgamma(x),
    "digamma": lambda lib, x: lib.digamma(x),
    "erfinv": lambda lib, x: lib.erfinv(x * 0.3 - 0.5),
    "i0": lambda lib, x: lib.i0(x),
    "entr": lambda lib, x: lib.special.entr(x),
    "acosh": lambda lib, x: lib.acosh(x + 0.5),
    "asinh": lambda lib, x: lib.asinh(x),
    "atanh": lambda lib, x: lib.atanh(x * 0.4),
    "erfc": lambda lib, x: lib.erfc(x),
    "i1 (saves its result)": lambda lib, x: lib.special.i1(x),
    "ndtri (input written)": lambda lib, x: lib.special.ndtri(x),
}


@pytest.mark.parametrize("op", sorted(SPECIAL_UNARY))
def test_special_function_saves_what_torch_saves(op):
    # torch.sinc's backward reads its input only, so its output may be written in place (as after
    # any activation); chainrule saved every special function's input and output, and refused
    def run(lib, x):
        x0 = lib.tensor(x[0, 0, :2], dtype=lib.float64, requires_grad=True)
        x = (x0.abs() + 1.1) * (0.2 if op.startswith("ndtri") else 1.0)
        y = SPECIAL_UNARY[op](lib, x)
        written = x if op.startswith("ndtri") else y
        try:
            written.mul_(2.0)
            (y * lib.linspace(-1.0, 1.0, 5, dtype=lib.float64)).sum().backward()
        except RuntimeError as error:
            return str(error).split(":")[0]
        return x0.grad.numpy()

    want, got = _both(run)
    if isinstance(want, str):
        assert got == want
    else:
        np.testing.assert_allclose(got, want, rtol=1e-10)


@pytest.mark.parametrize("kernel, dilation", [(4, 1), (3, 1), (4, 2), ((3, 4), 1)])
def test_conv_same_padding_asymmetric_warns_once_as_torch(monkeypatch, kernel, dilation):
    # mamba's depthwise conv written with padding='same' and an even kernel: torch pads one side
    # more and says so once per process (TORCH_WARN_ONCE), with its C++ location
    import warnings

    monkeypatch.setattr(chainrule._config, "_warned_once", set())
    torch.set_warn_always(True)  # torch's once-per-process warning, on every call while this holds
    try:
        messages = []
        for lib in (torch, chainrule):
            size = (kernel,) if isinstance(kernel, int) else kernel
            conv = (lib.nn.functional.conv1d if len(size) == 1 else lib.nn.functional.conv2d)
            x = lib.ones((1, 2) + (7,) * len(size))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                out = conv(x, lib.ones((2, 1) + size), padding="same", groups=2, dilation=dilation)
            messages.append(([str(w.message) for w in caught], tuple(out.shape)))
    finally:
        torch.set_warn_always(False)
    assert messages[1] == messages[0]


DROPOUT_LAYOUTS = {
    "transposed": lambda lib: lib.ones(5, 2, 3).transpose(0, 1),
    "channels_last": lambda lib: lib.ones(2, 3, 2, 2).to(memory_format=lib.channels_last),
    "permuted": lambda lib: lib.ones(2, 3, 4).permute(2, 0, 1),
    "transposed and sliced": lambda lib: lib.ones(6, 4).t()[:, ::2],
    "expanded": lambda lib: lib.ones(4, 1).expand(4, 3),
}


@pytest.mark.parametrize("layout", sorted(DROPOUT_LAYOUTS))
@pytest.mark.parametrize("kind", ["dropout", "alpha_dropout"])
def test_dropout_of_a_strided_input_draws_torchs_mask_for_a_seed(layout, kind):
    # torch draws the mask into empty_like(input), in that layout's memory order; chainrule drew it
    # in logical order, so a seeded transformer layer (its dropout1 on nn.MultiheadAttention's
    # transposed batch-first output) dropped other units than torch's
    def run(lib, x):
        lib.manual_seed(5)
        out = getattr(lib.nn.functional, kind)(DROPOUT_LAYOUTS[layout](lib), 0.5, training=True)
        return out.flatten().numpy(), lib.rand(1).item()

    (want, want_next), (got, got_next) = _both(run)
    np.testing.assert_allclose(got, want, rtol=1e-6)  # (alpha dropout's affine map rounds its own way)
    assert got_next == want_next


def test_transformer_encoder_layer_training_step_is_torchs_for_a_seed():
    def run(lib, x):
        lib.manual_seed(0)
        layer = lib.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, activation="gelu", batch_first=True,
                                               norm_first=True)
        src = lib.tensor(x[0, :, :, :4]).repeat(1, 1, 2)
        lib.manual_seed(1)
        return layer(src, src_key_padding_mask=lib.tensor([[False] * 5] * 3 + [[False] * 3 + [True] * 2])).detach().numpy()

    want, got = _both(run)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("loss", ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"])
def test_regression_loss_warns_of_a_broadcast_target_as_torch(loss):
    # (N, 1) predictions against (N,) targets broadcast to an (N, N) loss: torch warns, at the
    # caller's line; chainrule said nothing
    import warnings

    def run(lib, x):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = getattr(lib.nn.functional, loss)(lib.ones(3, 1), lib.zeros(3)).item()
            getattr(lib.nn.functional, loss)(lib.ones(3), lib.zeros(3))  # same sizes: silent
        return value, [(w.category, str(w.message), w.filename) for w in caught]

    want, got = _both(run)
    assert got == want and len(want[1]) == 1 and want[1][0][2] == __file__


WARNING_CALLS = {
    "meshgrid without indexing (once)": lambda lib: [lib.meshgrid(lib.arange(2.0), lib.arange(2.0)) for _ in range(2)],
    "cross without dim (once)": lambda lib: [lib.cross(lib.ones(3, 3), lib.ones(3, 3)) for _ in range(2)],
    "std and var with no degrees of freedom": lambda lib: (lib.ones(1).std(), lib.ones(3, 1).var(1)),
    "upsample": lambda lib: lib.nn.functional.upsample(lib.ones(1, 1, 2, 2), scale_factor=2),
    "upsample_nearest": lambda lib: lib.nn.functional.upsample_nearest(lib.ones(1, 1, 2, 2), scale_factor=2),
    "upsample_bilinear": lambda lib: lib.nn.functional.upsample_bilinear(lib.ones(1, 1, 2, 2), scale_factor=2),
}


@pytest.mark.parametrize("call", sorted(WARNING_CALLS))
def test_deprecation_and_numerics_warnings_read_as_torchs(monkeypatch, call):
    # torch's words (with the C++ location of a TORCH_WARN), category and count: once per process
    # for a TORCH_WARN_ONCE, on every call otherwise
    import warnings

    monkeypatch.setattr(chainrule._config, "_warned_once", set())

    def run(lib, x):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            WARNING_CALLS[call](lib)
        return [(w.category, str(w.message)) for w in caught]

    want, got = _both(run)
    if "once" in call and not want:  # torch's once-per-process warning already given in this process
        pytest.skip("torch warned earlier in this process")
    assert got == want and want


def test_integer_parameter_error_reads_as_torchs():
    messages = []
    for lib in (torch, chainrule):
        with pytest.raises(RuntimeError) as info:
            lib.nn.Parameter(lib.ones(2, dtype=lib.long))
        messages.append(str(info.value))
    assert messages[1] == messages[0]
