"""Session 28, lane progL: chainrule bugs found around the modern-architecture programs
(llama2c_model, timm_convnext_training, swin_window_attention, clip_contrastive, dgcnn_edgeconv),
each checked against torch 2.13."""

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
