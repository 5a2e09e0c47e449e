"""Session 27, lane progK: chainrule bugs found by the fast.ai and pytorch.org recipe programs
(fastai_matmul_scratch, fastai_init_hooks, recipe_parametrize_prune, recipe_saving_loading,
recipe_func_jacobians, recipe_channels_last_amp), each checked against torch 2.13."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _error(lib, call):
    try:
        call(lib)
    except Exception as e:  # noqa: BLE001  (the class is what is compared)
        return type(e), str(e)
    return None


@pytest.mark.parametrize("call", [
    lambda lib: lib.zeros(2, 3, 4).to(memory_format=lib.channels_last),
    lambda lib: lib.zeros(2, 3, 4, 5, 6).to(memory_format=lib.channels_last),
    lambda lib: lib.zeros(2, 3, 4).contiguous(memory_format=lib.channels_last),
    lambda lib: lib.zeros(2, 3, 4).to(memory_format=lib.channels_last_3d),
    lambda lib: lib.zeros(2, 3, 4, 5).contiguous(memory_format=lib.channels_last_3d),
    lambda lib: lib.zeros(2, 3, 4).clone(memory_format=lib.channels_last),
    lambda lib: lib.zeros(2, 3, 4, 5, 6).clone(memory_format=lib.channels_last),
    lambda lib: lib.empty(2, 3, 4, memory_format=lib.channels_last),
    lambda lib: lib.empty_like(lib.zeros(2, 3, 4), memory_format=lib.channels_last),
], ids=["to", "to-rank5", "contiguous", "to-3d", "contiguous-3d", "clone", "clone-rank5", "empty", "empty_like"])
def test_channels_last_of_the_wrong_rank_raises_torchs_message(call):
    # the Channels Last tutorial, as a user tries it on a 3-d tensor: torch's RuntimeError text
    # exactly ("required rank 4 tensor to use channels_last format"), whichever op asks
    expected = _error(torch, call)
    assert expected is not None and expected[0] is RuntimeError
    assert _error(chainrule, call) == expected


def _memory_format(lib, ndim):
    return lib.channels_last if ndim == 4 else lib.channels_last_3d


# how the input is laid out in memory, made with each library's own ops from the same values
_LAYOUTS = {
    "channels_last": lambda lib, x: x.contiguous(memory_format=_memory_format(lib, x.ndim)),
    "contiguous": lambda lib, x: x,
    # a strided slice of a channels-last tensor: not dense, still suggests channels-last
    "sliced_channels_last": lambda lib, x: lib.cat([x, x], -1).contiguous(
        memory_format=_memory_format(lib, x.ndim))[..., ::2],
    # (N, W, H, C) memory: permuted, but not channels-last, so torch's kernels write contiguous
    "width_major": lambda lib, x: x.transpose(2, -1).contiguous().transpose(2, -1),
}

_UPSAMPLINGS = [
    ((2, 3, 6, 7), dict(scale_factor=2, mode="nearest")),
    ((2, 3, 6, 7), dict(size=(5, 9), mode="nearest-exact")),
    ((2, 3, 6, 7), dict(scale_factor=2, mode="bilinear", align_corners=False)),
    ((2, 5, 6, 7), dict(size=(9, 11), mode="bilinear", align_corners=True)),
    ((2, 3, 6, 7), dict(scale_factor=1.5, mode="bicubic", align_corners=False)),
    ((2, 3, 6, 7), dict(scale_factor=2, mode="bilinear", antialias=True)),
    ((2, 3, 4, 5, 6), dict(scale_factor=2, mode="nearest")),
    ((2, 3, 4, 5, 6), dict(size=(3, 4, 5), mode="trilinear", align_corners=False)),
]


@pytest.mark.parametrize("layout", list(_LAYOUTS))
@pytest.mark.parametrize("shape,kwargs", _UPSAMPLINGS,
                         ids=[f"{kw['mode']}{len(s) - 2}d{'-aa' if kw.get('antialias') else ''}" for s, kw in _UPSAMPLINGS])
def test_upsampling_writes_the_layout_the_input_suggests(shape, kwargs, layout):
    # the Channels Last tutorial's promise for a U-Net decoder: F.interpolate / nn.Upsample of a
    # channels-last input is channels-last, as torch's upsample kernels write it (contiguous for a
    # contiguous or merely permuted input); values, the input's gradient and the node unchanged
    values = torch.randn(*shape, generator=torch.Generator().manual_seed(0)).numpy()
    results = {}
    for lib in (torch, chainrule):
        x = _LAYOUTS[layout](lib, lib.tensor(values)).requires_grad_()
        y = lib.nn.functional.interpolate(x, **kwargs)
        y.backward(lib.ones_like(y))
        results[lib] = (y, x.grad)
    (y_t, g_t), (y_c, g_c) = results[torch], results[chainrule]
    assert y_c.stride() == y_t.stride()
    assert y_c.is_contiguous(memory_format=_memory_format(chainrule, len(shape))) == \
        y_t.is_contiguous(memory_format=_memory_format(torch, len(shape)))
    assert g_c.stride() == g_t.stride()
    assert type(y_c.grad_fn).__name__ == type(y_t.grad_fn).__name__
    assert torch.allclose(torch.from_numpy(y_c.detach().numpy()), y_t.detach(), atol=1e-5, rtol=1e-5)
    assert torch.allclose(torch.from_numpy(g_c.numpy()), g_t, atol=1e-4, rtol=1e-5)


def test_upsample_module_output_of_a_channels_last_batch_is_channels_last():
    # the tutorial's check after model.to(memory_format=torch.channels_last)
    for lib in (torch, chainrule):
        x = lib.ones(2, 3, 4, 4).contiguous(memory_format=lib.channels_last)
        y = lib.nn.Upsample(scale_factor=2)(x)
        assert y.stride() == (192, 1, 24, 3)
        assert y.is_contiguous(memory_format=lib.channels_last) and not y.is_contiguous()


@pytest.mark.parametrize("shape", [(2, 3, 1, 1), (1, 3, 1, 1), (2, 1, 4, 5), (2, 3, 4, 5), (2, 3, 4, 1), (2, 3, 1, 5)])
@pytest.mark.parametrize("start", ["contiguous", "channels_last"])
@pytest.mark.parametrize("call", [
    lambda lib, t: t.to(memory_format=lib.channels_last),
    lambda lib, t: t.to(lib.float64, memory_format=lib.channels_last),
    lambda lib, t: t.double(memory_format=lib.channels_last),
    lambda lib, t: t.to(memory_format=lib.contiguous_format),
], ids=["to", "to-float64", "double", "to-contiguous_format"])
def test_to_memory_format_copies_as_torchs_to_copy(shape, start, call):
    # the Channels Last tutorial's x.to(memory_format=torch.channels_last) then x.stride(): torch's
    # _to_copy gives the format's own strides over size-1 dims too ((2, 3, 1, 1) -> (3, 1, 3, 3)),
    # a new tensor unless the input's strides already suggest the format, one ToCopyBackward0 node
    seen = {}
    for lib in (torch, chainrule):
        x = lib.arange(float(np_prod(shape))).reshape(shape).requires_grad_()
        if start == "channels_last":
            x = x.contiguous(memory_format=lib.channels_last)
        y = call(lib, x)
        y.sum().backward()
        grad = x.grad if x.is_leaf else None
        seen[lib] = (y.stride(), y is x, type(y.grad_fn).__name__ if y is not x else None, y.tolist(),
                     None if grad is None else grad.tolist())
    assert seen[chainrule] == seen[torch]


def np_prod(shape):
    count = 1
    for n in shape:
        count *= n
    return count


@pytest.mark.parametrize("call", [
    lambda lib: lib.tensor([1, 2, 3]).histc(3),
    lambda lib: lib.tensor([1, 2, 3], dtype=lib.int32).histc(3, 0, 3),
    lambda lib: lib.tensor([0, 0, 0], dtype=lib.uint8).histc(3),
    lambda lib: lib.tensor([1, 2, 3], dtype=lib.uint8).histc(3),
    lambda lib: lib.tensor([], dtype=lib.uint8).histc(3),
    lambda lib: lib.tensor([True, False]).histc(3, 0, 1),
    lambda lib: lib.tensor([1, 2], dtype=lib.complex64).histc(3),
    lambda lib: lib.tensor([1, 2], dtype=lib.complex64).histc(3, 0, 3),
    lambda lib: lib.tensor([1.0, 2.0]).histc(3, 3, 1),
    lambda lib: lib.tensor([1.0, 2.0]).histc(3, 1.5, 0.5),
    lambda lib: lib.tensor([1.0, 2.0]).histc(3, float("inf"), 5),
    lambda lib: lib.tensor([1.0, 2.0]).histc(3, 0, float("nan")),
], ids=["int64", "int32-range", "uint8-zeros", "uint8", "uint8-empty", "bool", "complex", "complex-range",
        "max-below-min", "max-below-min-float", "inf", "nan"])
def test_histc_errors_are_torchs(call):
    # fast.ai's activation histograms, outp.data.histc(40, 0, 10), on the wrong tensor: torch's class
    # and text, from the step of its kernel that meets the dtype first
    expected = _error(torch, call)
    assert expected is not None
    assert _error(chainrule, call) == expected


def test_histc_of_activation_statistics_counts_as_torch():
    # get_hist / get_min of the fast.ai hooks notebook: histc(40, 0, 10) of |activations|
    values = torch.randn(4, 8, 5, 5, generator=torch.Generator().manual_seed(0)).mul(3).numpy()
    got = chainrule.tensor(values).abs().histc(40, 0, 10)
    want = torch.tensor(values).abs().histc(40, 0, 10)
    assert got.tolist() == want.tolist()
    h1 = chainrule.stack([got, got]).t().float()
    assert (h1[:2].sum(0) / h1.sum(0)).tolist() == (want[:2].sum() / want.sum()).repeat(2).tolist()


@pytest.mark.parametrize("init_name", ["kaiming_normal_", "kaiming_uniform_"])
def test_kaiming_of_an_unknown_mode_raises_torchs_message(init_name):
    # fast.ai's init_cnn with a mistyped mode: torch lists the valid modes as a Python list
    call = lambda lib: getattr(lib.nn.init, init_name)(lib.empty(3, 3), mode="fan")  # noqa: E731
    expected = _error(torch, call)
    assert expected == (ValueError, "Mode fan not supported, please use one of ['fan_in', 'fan_out']")
    assert _error(chainrule, call) == expected


def test_full_backward_hook_warning_names_the_users_line():
    # the Hooks notebook's backward hooks on a first layer whose input needs no gradient: torch's
    # UserWarning points at the user's .backward() line, not inside the library
    import warnings

    for lib in (torch, chainrule):
        model = lib.nn.Linear(2, 2)
        model.register_full_backward_hook(lambda module, grad_input, grad_output: None)
        out = model(lib.ones(3, 2)).sum()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out.backward()  # the line the warning must name
        firing = [w for w in caught if "Full backward hook is firing" in str(w.message)]
        assert len(firing) == 1 and firing[0].category is UserWarning
        assert firing[0].filename == __file__, lib.__name__


@pytest.mark.parametrize("make", [
    lambda lib: lib.amp.GradScaler("cuda"),
    lambda lib: lib.amp.GradScaler(),
    lambda lib: lib.cuda.amp.GradScaler(),
    lambda lib: lib.cuda.amp.GradScaler(enabled=False),
    lambda lib: lib.cuda.amp.autocast(),
    lambda lib: lib.autocast("cuda", dtype=lib.float16),
    lambda lib: lib.amp.autocast("cuda", enabled=False),
], ids=["amp.GradScaler-cuda", "amp.GradScaler", "cuda.amp.GradScaler", "cuda.amp.GradScaler-disabled",
        "cuda.amp.autocast", "autocast-cuda", "autocast-cuda-disabled"])
def test_cuda_amp_on_a_cpu_only_machine_warns_as_torch(make):
    # the AMP recipe run as written (device 'cuda') on a CPU-only machine: torch's deprecation
    # FutureWarnings for the torch.cuda.amp spellings, then its 'Disabling' UserWarnings, word for word
    import warnings

    if torch.cuda.is_available():
        pytest.skip("a CPU-only machine's warnings")
    seen = {}
    for lib in (torch, chainrule):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            make(lib)
        seen[lib] = [(w.category, str(w.message)) for w in caught]
    assert seen[chainrule] == seen[torch]


_GLOBAL_POOLS = [
    ((2, 3, 4, 5), lambda lib, x: lib.nn.functional.adaptive_avg_pool2d(x, 1)),
    ((2, 3, 4, 5), lambda lib, x: lib.nn.AdaptiveAvgPool2d((1, 1))(x)),
    ((2, 3, 1, 5), lambda lib, x: lib.nn.functional.adaptive_avg_pool2d(x, 1)),
    ((2, 3, 4, 5, 6), lambda lib, x: lib.nn.functional.adaptive_avg_pool3d(x, 1)),
]


@pytest.mark.parametrize("layout", list(_LAYOUTS))
@pytest.mark.parametrize("shape,pool", _GLOBAL_POOLS, ids=["2d", "module-2d", "2d-height-1", "3d"])
def test_global_average_pool_of_channels_last_is_restrided_as_torchs(shape, pool, layout):
    # a channels-last ResNet's AdaptiveAvgPool2d((1, 1)): torch takes the mean, then as_strided_s it to
    # channels-last (C, 1, C, C) when the input suggests that layout, an AsStridedBackward1 node
    values = torch.randn(*shape, generator=torch.Generator().manual_seed(0)).numpy()
    seen = {}
    for lib in (torch, chainrule):
        x = _LAYOUTS[layout](lib, lib.tensor(values)).requires_grad_()
        y = pool(lib, x)
        y.backward(lib.ones_like(y))
        seen[lib] = (y.stride(), type(y.grad_fn).__name__, x.grad.stride(), y.detach().numpy(), x.grad.numpy())
    assert seen[chainrule][:3] == seen[torch][:3]
    assert abs(seen[chainrule][3] - seen[torch][3]).max() < 1e-6
    assert abs(seen[chainrule][4] - seen[torch][4]).max() < 1e-7


def _outer():
    class Local:
        pass

    def local_function():
        return 1

    return Local, local_function


_Local, _local_function = _outer()


@pytest.mark.parametrize("make", [
    lambda lib: {"x": _Local()},
    lambda lib: {"c": _Local},
    lambda lib: {"f": _local_function},
    lambda lib: {"model": lib.nn.Linear(1, 1), "hook": [_local_function]},
], ids=["instance", "class", "function", "in-a-checkpoint"])
def test_saving_a_local_object_raises_torchs_pickling_error(make):
    # the checkpoint recipes' torch.save of something pickle cannot name: torch's C pickler's
    # AttributeError "Can't pickle local object '_outer.<locals>.Local'", not pickle's pure-Python text
    import io

    expected = _error(torch, lambda lib: lib.save(make(lib), io.BytesIO()))
    assert expected is not None and expected[0] is AttributeError
    assert _error(chainrule, lambda lib: lib.save(make(lib), io.BytesIO())) == expected


def test_saved_module_level_functions_still_load():
    import io
    import math

    buffer = io.BytesIO()
    chainrule.save({"f": math.sqrt, "g": test_saved_module_level_functions_still_load, "t": chainrule.ones(2)}, buffer)
    buffer.seek(0)
    loaded = chainrule.load(buffer, weights_only=False)
    assert loaded["f"] is math.sqrt and loaded["g"] is test_saved_module_level_functions_still_load
    assert loaded["t"].tolist() == [1.0, 1.0]


class _ToDouble(chainrule.nn.Module):
    def forward(self, X):
        return X.double()


class _FirstRow(chainrule.nn.Module):
    def forward(self, X):
        return X[:1]


class _Identity(chainrule.nn.Module):
    def __init__(self, inverse=None):
        super().__init__()
        if inverse is not None:
            self.right_inverse = inverse

    def forward(self, *Xs):
        return Xs[0]


def _not_implemented(X):
    raise NotImplementedError


_PARAMETRIZATIONS = {
    "dtype": lambda: _ToDouble(),
    "shape": lambda: _FirstRow(),
    "not-a-tensor": lambda: _Identity(inverse=lambda X: 3),
    "sequence-element": lambda: _Identity(inverse=lambda X: (X, 3)),
    "right_inverse-dtype": lambda: _Identity(inverse=lambda X: X.double()),
    "right_inverse-shape": lambda: _Identity(inverse=lambda X: X[:1]),
    "right_inverse-not-implemented": lambda: _Identity(inverse=_not_implemented),
}


@pytest.mark.parametrize("appended", [False, True], ids=["first", "appended"])
@pytest.mark.parametrize("unsafe", [False, True], ids=["safe", "unsafe"])
@pytest.mark.parametrize("kind", list(_PARAMETRIZATIONS))
def test_register_parametrization_refuses_as_torch(kind, unsafe, appended):
    # the Parametrizations tutorial's consistency checks: torch's class and words (dtype checked before
    # shape, right_inverse's own messages, NotImplementedError taken for the identity), with no prefix
    # naming chainrule's internal ParametrizationList
    def register(lib):
        layer = lib.nn.Linear(2, 2)
        if appended:
            lib.nn.utils.parametrize.register_parametrization(layer, "weight", lib.nn.Identity())
        module = _PARAMETRIZATIONS[kind]()
        if lib is torch:  # the same module, as torch's class
            module = _as_torch_module(module)
        lib.nn.utils.parametrize.register_parametrization(layer, "weight", module, unsafe=unsafe)

    expected, got = _error(torch, register), _error(chainrule, register)
    normalise = (lambda e: e if e is None else (e[0], e[1].replace("torch.Size", "Size").replace("chainrule.Size", "Size")
                                                .replace("torch.", "").replace("chainrule.", "")))
    assert normalise(got) == normalise(expected)


def _as_torch_module(module):
    forward, inverse = type(module).forward, module.__dict__.get("right_inverse")
    namespace = {"forward": forward}
    made = type(type(module).__name__, (torch.nn.Module,), namespace)()
    if inverse is not None:
        made.right_inverse = inverse
    return made


@pytest.mark.parametrize("call", [
    lambda lib: lib.tensor([1.0]).std(),
    lambda lib: lib.std(lib.tensor([1.0])),
    lambda lib: lib.tensor([[1.0, 2.0]]).var(0),
    lambda lib: lib.std_mean(lib.tensor([1.0])),
    lambda lib: lib.tensor([[1.0], [2.0]]).cov(),
], ids=["Tensor.std", "torch.std", "var-dim", "std_mean", "cov"])
def test_degrees_of_freedom_warning_names_the_users_line(call):
    # fast.ai's outp.data.std() of a one-element batch: torch's UserWarning points at the user's line
    import warnings

    for lib in (torch, chainrule):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call(lib)  # the line the warning must name
        found = [w for w in caught if "degrees of freedom is <= 0" in str(w.message)]
        assert len(found) == 1 and found[0].filename == __file__, (lib.__name__, [w.filename for w in found])
