"""Session 28, lane progL: chainrule bugs found around the modern-architecture programs
(llama2c_model, timm_convnext_training, swin_window_attention, clip_contrastive, dgcnn_edgeconv),
each checked against torch 2.13."""

import math
import warnings

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _error(lib, call):
    try:
        call(lib)
    except Exception as e:  # noqa: BLE001  (the class is what is compared)
        return type(e), str(e)
    return None


@pytest.mark.parametrize("dtype", ["int64", "int32", "bool", "bfloat16", "uint8"])
def test_view_as_complex_of_a_non_float_names_half_among_the_supported_types(dtype):
    # Meta's llama RoPE calls view_as_complex(x.float().reshape(...)); without the .float() torch
    # refuses the dtype and lists half among the ones it takes, as its message says exactly
    def call(lib):
        return lib.view_as_complex(lib.zeros(3, 2, dtype=getattr(lib, dtype)))

    expected = _error(torch, call)
    assert expected is not None and expected[0] is RuntimeError
    assert _error(chainrule, call) == expected


def test_view_as_complex_of_float16_says_complex32_has_no_storage():
    # torch views float16 pairs as complex32; chainrule names that dtype but cannot store it, so it
    # raises the NotImplementedError every complex32 tensor gets, not a claim that half is refused
    assert torch.view_as_complex(torch.zeros(3, 2, dtype=torch.float16)).dtype == torch.complex32
    with pytest.raises(NotImplementedError, match="ComplexHalf"):
        chainrule.view_as_complex(chainrule.zeros(3, 2, dtype=chainrule.float16))
    with pytest.raises(NotImplementedError, match="ComplexHalf"):
        chainrule.zeros(3, dtype=chainrule.complex32)


def _checkpoint_module(lib):
    return __import__(lib.__name__ + ".utils.checkpoint", fromlist=["checkpoint"])


def _frozen_input_run(lib, call):
    """Swin's ``checkpoint.checkpoint(blk, x)`` idiom on an input that needs no grad: which of the
    block's parameters get a gradient, what the output's requires_grad is, and the warnings."""
    lib.manual_seed(0)
    blocks = lib.nn.Sequential(*[lib.nn.Sequential(lib.nn.Linear(3, 3), lib.nn.Tanh()) for _ in range(4)])
    head = lib.nn.Linear(3, 1)
    x = lib.randn(2, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = call(_checkpoint_module(lib), blocks, x)
    loss = head(out).sum()
    loss.backward()
    grads = [p.grad is not None for p in blocks.parameters()]
    messages = [(w.category.__name__, str(w.message), w.filename) for w in caught]
    return out.requires_grad, grads, messages


@pytest.mark.parametrize("call", [
    lambda cp, blocks, x: cp.checkpoint(blocks, x),
    lambda cp, blocks, x: cp.checkpoint(blocks, x, use_reentrant=True),
    lambda cp, blocks, x: cp.checkpoint(blocks, x, use_reentrant=False),
    lambda cp, blocks, x: cp.checkpoint_sequential(blocks, 2, x),
    lambda cp, blocks, x: cp.checkpoint_sequential(blocks, 2, x, use_reentrant=True),
    lambda cp, blocks, x: cp.checkpoint_sequential(blocks, 3, x, use_reentrant=True, preserve_rng_state=False),
    lambda cp, blocks, x: cp.checkpoint_sequential(blocks, 2, x, use_reentrant=False),
], ids=["default", "reentrant", "non-reentrant", "sequential-default", "sequential-reentrant",
        "sequential-3-segments", "sequential-non-reentrant"])
def test_checkpoint_without_use_reentrant_warns_and_is_reentrant_as_torch(call):
    # torch 2.13 warns when use_reentrant is not passed and takes the reentrant form, whose output
    # needs no grad when its inputs need none: the checkpointed parameters get no gradient (the
    # classic surprise of checkpointing the first block). chainrule ran the plain computation,
    # silently, and gave them gradients. The use_reentrant warning points at the line that called
    # checkpoint (torch's reentrant "None of the inputs" warning points into checkpoint.py, as ours)
    ours, theirs = _frozen_input_run(chainrule, call), _frozen_input_run(torch, call)
    assert ours[:2] == theirs[:2]
    assert [m[:2] for m in ours[2]] == [m[:2] for m in theirs[2]]
    assert all(filename == __file__ for _, message, filename in ours[2] if "use_reentrant" in message)


def test_checkpoint_sequential_refuses_unknown_keywords_as_torch():
    def call(lib):
        layer = lib.nn.Linear(2, 2)
        return _checkpoint_module(lib).checkpoint_sequential(layer, 1, lib.ones(1, 2), use_reentrant=False, scale=2)

    expected = _error(torch, call)
    assert expected == (ValueError, "Unexpected keyword arguments: scale")
    assert _error(chainrule, call) == expected


@pytest.mark.parametrize("a, b", [(2, -2), (0.5, -0.25), (1e-7, -3.3), (-0.01, -0.02)])
def test_trunc_normal_with_the_bounds_the_wrong_way_round_raises_torchs_uniform_error(a, b):
    # timm/Swin call trunc_normal_(w, std=.02) and some pass a=/b= by hand; with b < a torch's
    # rejection sampler starts by tensor.uniform_(a, b), which refuses the range. chainrule drew
    # from the reversed interval and returned values quietly
    def call(lib):
        with warnings.catch_warnings(record=True) as caught:  # (-0.01, -0.02) also warns "mean is more than 2 std"
            warnings.simplefilter("always")
            error = _error(lib, lambda lib: lib.nn.init.trunc_normal_(lib.empty(3), a=a, b=b))
        return error, [(w.category, str(w.message)) for w in caught]

    expected = call(torch)
    assert expected[0] is not None and expected[0][0] is RuntimeError
    assert call(chainrule) == expected


def _pooled(lib, fn, shape, output_size, dtype="float32"):
    """``fn`` on an arange of ``shape``: its values, grad_fn name and input gradient, or its error,
    and the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            x = lib.arange(float(math.prod(shape))).reshape(shape).to(getattr(lib, dtype))
            if x.is_floating_point():
                x.requires_grad_()
            y = getattr(lib.nn.functional, fn)(x, output_size)
            result = (tuple(y.shape), str(y.detach().float().numpy().tolist()))  # (str: NaN equals NaN)
            if y.requires_grad:
                y.sum().backward()
                result += (y.grad_fn.name(), x.grad.numpy().tolist())
        except Exception as e:  # noqa: BLE001  (the class and text are what is compared)
            result = (type(e), str(e))
    return result, [(w.category, str(w.message)) for w in caught]


@pytest.mark.parametrize("fn, shape, output_size", [
    # torch's 2-d and 3-d average pools take "every output size 1" as mean over the last dims before
    # checking anything: any rank from 2 up, empty dims (NaN), an integer input gets mean()'s error
    ("adaptive_avg_pool2d", (2, 3, 4, 5, 6), 1),
    ("adaptive_avg_pool2d", (2, 3, 4, 5, 6), (1, 1)),
    ("adaptive_avg_pool2d", (2, 3, 2, 3, 4, 5), 1),
    ("adaptive_avg_pool2d", (2, 3), 1),
    ("adaptive_avg_pool2d", (4,), 1),
    ("adaptive_avg_pool2d", (2, 3, 0, 4), 1),
    ("adaptive_avg_pool2d", (2, 3), (1, 1)),
    ("adaptive_avg_pool2d", (2, 3, 4, 5, 6), 2),
    ("adaptive_avg_pool3d", (2, 3, 4), 1),
    ("adaptive_avg_pool3d", (2, 3, 2, 3, 4, 5), (1, 1, 1)),
    ("adaptive_avg_pool3d", (2, 0, 3, 4), 1),
    ("adaptive_avg_pool3d", (2, 3, 4), (1, 1, 1)),
    ("adaptive_avg_pool1d", (2, 3, 0), 1),
    # the 1-d pools check the rank in torch's checkDimRange words; the max pools' message has a colon
    ("adaptive_avg_pool1d", (2, 3, 4, 5), 1),
    ("adaptive_avg_pool1d", (4,), 2),
    ("adaptive_max_pool1d", (2, 3, 4, 5), 1),
    ("adaptive_max_pool1d", (2, 3, 4, 5, 6), 2),
    ("adaptive_max_pool2d", (2, 3), 1),
    ("adaptive_max_pool2d", (2, 3, 4, 5, 6), 2),
    ("adaptive_max_pool3d", (2, 3, 4), 1),
])
def test_adaptive_pools_at_odd_ranks_behave_as_torchs(fn, shape, output_size):
    # the global-pooling idiom F.adaptive_avg_pool2d(x, 1) on a 5-d x (DGCNN and point-cloud code
    # pool feature maps of any rank) raised in chainrule; torch averages the last two dims
    assert _pooled(chainrule, fn, shape, output_size) == _pooled(torch, fn, shape, output_size)


@pytest.mark.parametrize("fn, output_size", [("adaptive_avg_pool2d", 1), ("adaptive_avg_pool3d", (1, 1, 1)),
                                             ("adaptive_avg_pool1d", 1), ("adaptive_avg_pool2d", 2)])
def test_adaptive_average_of_an_integer_input_raises_torchs_error(fn, output_size):
    shape = {"1": (2, 3, 4), "2": (2, 3, 4, 4), "3": (2, 3, 2, 2, 2)}[fn[-2]]
    ours, theirs = (_pooled(lib, fn, shape, output_size, "int64") for lib in (chainrule, torch))
    assert theirs[0][0] in (RuntimeError, NotImplementedError)
    assert ours == theirs


@pytest.mark.parametrize("shape, dim, keepdim", [((0,), None, False), ((2, 0), 1, False), ((2, 0), 1, True),
                                                 ((2, 0, 3), (1, 2), True), ((0, 3), 0, False)])
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_mean_over_nothing_is_a_quiet_nan_as_torchs(shape, dim, keepdim, dtype):
    # NumPy's mean warned "Mean of empty slice" (a RuntimeWarning torch never gives) on the way to
    # the same NaN; the global pool of an empty feature map goes through it
    def run(lib):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            x = lib.zeros(shape, dtype=getattr(lib, dtype), requires_grad=True)
            y = x.mean() if dim is None else x.mean(dim, keepdim=keepdim)
            y.sum().backward()
        return (tuple(y.shape), str(y.dtype).split(".")[-1], str(y.detach().float().numpy().tolist()),
                tuple(x.grad.shape), [str(w.message) for w in caught])

    assert run(chainrule) == run(torch)


@pytest.mark.parametrize("fn", ["max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
                                "lp_pool1d", "lp_pool2d", "max_pool1d-indices"])
@pytest.mark.parametrize("shape", [(4,), (2, 3), (2, 3, 4, 5), (2, 3, 4, 5, 6), (2, 3, 4, 5, 6, 7)])
def test_pools_of_the_wrong_rank_raise_torchs_exact_error(fn, shape):
    # chainrule put the op's name before torch's words for every pool; of torch's only max_pool1d
    # does, its with-indices form speaks checkDimRange's words, and avg_pool2d (so lp_pool2d) of a
    # 1-d or 2-d input fails on input.size(-3) with an IndexError
    name, _, indices = fn.partition("-")

    def call(lib):
        x = lib.zeros(shape)
        pool = getattr(lib.nn.functional, name)
        if name.startswith("lp"):
            return pool(x, 2, 1)
        return pool(x, 1, return_indices=True) if indices else pool(x, 1)

    ours, theirs = _error(chainrule, call), _error(torch, call)
    d = int(name[-2])
    if len(shape) in (d + 1, d + 2):
        assert theirs is None and ours is None
    else:
        assert theirs is not None and ours == theirs
