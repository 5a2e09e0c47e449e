"""The idioms of the OctConv, SKNet and Sparse Transformer programs, each against torch: the
checkpoint keywords the Sparse Transformer's blocks pass, the resampling and dilated-conv
identities the OctConv and SKNet checks rest on, and the strided/block-sparse attention masks."""

import contextlib
import importlib

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

LIBS = (chainrule, torch)


def _checkpoint_outcome(lib, **kwargs):
    """Value, input gradient and error of a checkpointed dropout block called with ``kwargs``."""
    cp = importlib.import_module(lib.__name__ + ".utils.checkpoint")
    lib.manual_seed(0)
    x = lib.randn(3, 4, requires_grad=True)
    weight = lib.randn(4, 4)

    def block(a):
        return lib.nn.functional.dropout(a @ weight, 0.5, training=True).tanh()

    try:
        lib.manual_seed(1)
        y = cp.checkpoint(block, x, **kwargs)
        y.sum().backward()
    except Exception as error:  # the error is the outcome compared
        return type(error).__name__, str(error)
    return y.detach().numpy(), x.grad.numpy()


@pytest.mark.parametrize("kwargs", [
    dict(use_reentrant=False, early_stop=False),
    dict(use_reentrant=False, early_stop=True, preserve_rng_state=True),
    dict(use_reentrant=True, early_stop=False),
    dict(use_reentrant=False, determinism_check="none"),
    dict(use_reentrant=False, determinism_check="foo"),
    dict(use_reentrant=False, debug=True,
         context_fn=lambda: (contextlib.nullcontext(), contextlib.nullcontext())),
])
def test_checkpoint_keywords_as_torch(kwargs):
    ours, theirs = (_checkpoint_outcome(lib, **kwargs) for lib in LIBS)
    if isinstance(theirs[0], str):
        assert ours == theirs
    else:
        assert not isinstance(ours[0], str), ours
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_checkpoint_early_stop_switch_overrides_the_call():
    """set_checkpoint_early_stop(False) around the forward wins over early_stop=True: the whole
    function reruns in the backward (the side effect after its last saved tensor runs again)."""
    counts = []
    for lib in LIBS:
        cp = importlib.import_module(lib.__name__ + ".utils.checkpoint")
        calls = []

        def block(a, calls=calls):
            out = a.sin() * 2
            calls.append(1)
            return out

        x = lib.ones(3, requires_grad=True)
        with cp.set_checkpoint_early_stop(False):
            y = cp.checkpoint(block, x, use_reentrant=False, early_stop=True)
        y.sum().backward()
        counts.append(len(calls))
    assert counts[0] == counts[1] == 2


def _strided_attention(lib, q, k, v, stride):
    """openai/sparse_attention's strided mask by arange comparisons, applied by masked_fill(-inf)."""
    n = q.shape[-2]
    x = lib.reshape(lib.arange(n, dtype=lib.int32), [n, 1])
    z = lib.zeros([n, n], dtype=lib.int32)
    query, key = z + x, z + lib.transpose(x, 0, 1)
    mask = lib.logical_and(query >= key, lib.eq(lib.fmod(query - key, stride), 0))
    w = (q @ k.transpose(-2, -1)).masked_fill(~mask, float("-inf"))
    return lib.softmax(w, dim=-1) @ v


def test_strided_mask_attention_and_strided_transpose_as_torch():
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 12, 3)).astype(np.float32) for _ in range(3))
    results = []
    for lib in LIBS:
        leaves = [lib.tensor(a, requires_grad=True) for a in (q, k, v)]
        out = _strided_attention(lib, *leaves, stride=4)
        # strided_transpose: each residue class mod 4 made contiguous
        moved = lib.reshape(lib.transpose(lib.reshape(out, [2, 3, 4, 3]), 1, 2), [2, 12, 3])
        (moved * lib.tensor(np.cos(np.arange(72)).reshape(2, 12, 3).astype(np.float32))).sum().backward()
        results.append((moved.detach().numpy(), [t.grad.numpy() for t in leaves], moved.stride(),
                        moved.grad_fn.name(), out.grad_fn.name()))
    ours, theirs = results
    assert ours[2:] == theirs[2:]
    for a, b in zip([ours[0], *ours[1]], [theirs[0], *theirs[1]]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _conv_outcome(lib, name, shape, weight_shape, dtype, **kwargs):
    try:
        out = getattr(lib.nn.functional, name)(lib.ones(shape, dtype=getattr(lib, dtype)),
                                              lib.ones(weight_shape, dtype=getattr(lib, dtype)), **kwargs)
    except RuntimeError as error:
        return str(error)
    return tuple(out.shape), out.sum().item()


@pytest.mark.parametrize("name, shape, weight_shape, dtype, kwargs", [
    ("conv2d", (2, 4, 6, 6), (4, 4, 3, 3), "float32", dict(dilation=0)),  # oneDNN
    ("conv2d", (2, 4, 6, 6), (4, 2, 3, 3), "float32", dict(dilation=(2, 0), groups=2)),
    ("conv2d", (1, 4, 6, 6), (4, 4, 3, 3), "float32", dict(dilation=0)),  # the slow kernel
    ("conv2d", (4, 6, 6), (4, 4, 3, 3), "float32", dict(dilation=(0, 1), padding="same")),
    ("conv1d", (2, 4, 6), (4, 4, 3), "float64", dict(dilation=0)),
    ("conv3d", (2, 4, 5, 5, 5), (4, 4, 3, 3, 3), "float64", dict(dilation=(0, 1, 1))),
    ("conv2d", (2, 4, 6, 6), (4, 4, 3, 3), "int64", dict(dilation=0)),
    ("conv2d", (2, 4, 6, 6), (4, 4, 3, 3), "float32", dict(dilation=(0, -1))),  # a negative one first
    ("conv2d", (2, 5, 6, 6), (4, 4, 3, 3), "float32", dict(dilation=0)),  # the shapes before
    ("conv2d", (0, 4, 6, 6), (4, 4, 3, 3), "float32", dict(dilation=0)),  # an empty batch runs
    ("conv_transpose2d", (2, 4, 6, 6), (4, 4, 3, 3), "float64", dict(dilation=0)),
    ("conv_transpose1d", (2, 4, 6), (4, 4, 3), "float64", dict(dilation=0)),
    ("conv_transpose3d", (2, 4, 4, 4, 4), (4, 4, 3, 3, 3), "float64", dict(dilation=(0, 1, 1))),
    ("conv_transpose2d", (2, 4, 6, 6), (4, 4, 3, 3), "float32", dict(dilation=0)),  # oneDNN
    ("conv_transpose2d", (2, 4, 6, 6), (4, 4, 1, 1), "float32", dict(dilation=0)),  # oneDNN runs it
])
def test_zero_dilation_refused_as_torch(name, shape, weight_shape, dtype, kwargs):
    ours, theirs = (_conv_outcome(lib, name, shape, weight_shape, dtype, **kwargs) for lib in LIBS)
    assert ours == theirs


def _reentrant_outcome(lib, how):
    cp = importlib.import_module(lib.__name__ + ".utils.checkpoint")
    x = lib.tensor([[0.5, -1.0, 2.0]], requires_grad=True)
    y = cp.checkpoint(lambda a: (a * a).sin(), x, use_reentrant=True)
    try:
        if how == "grad":
            return lib.autograd.grad(y.sum(), x)[0].numpy()
        if how == "inputs":
            y.sum().backward(inputs=[x])
        else:
            y.sum().backward()
        return x.grad.numpy()
    except RuntimeError as error:
        return str(error)


@pytest.mark.parametrize("how", ["grad", "inputs", "backward"])
def test_reentrant_checkpoint_refuses_chosen_inputs_as_torch(how):
    ours, theirs = (_reentrant_outcome(lib, how) for lib in LIBS)
    if isinstance(theirs, str):
        assert ours == theirs
    else:
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    assert chainrule.autograd._is_checkpoint_valid() and torch.autograd._is_checkpoint_valid()


def test_checkpoint_error_and_zero_segments_as_torch():
    outcomes = []
    for lib in LIBS:
        cp = importlib.import_module(lib.__name__ + ".utils.checkpoint")
        calls = []

        def changing(a, calls=calls):  # saves fewer tensors when rerun
            calls.append(1)
            return a.sin() * (a.cos() if len(calls) == 1 else 1)

        x = lib.ones(3, requires_grad=True)
        with pytest.raises(cp.CheckpointError) as error:
            cp.checkpoint(changing, x, use_reentrant=False).sum().backward()
        with pytest.raises(ZeroDivisionError) as zero:
            cp.checkpoint_sequential(lib.nn.Sequential(lib.nn.ReLU()), 0, x, use_reentrant=False)
        outcomes.append((str(error.value), str(zero.value)))
    assert outcomes[0] == outcomes[1]


def test_checkpoint_recomputed_metadata_checked_as_torch():
    """determinism_check="default" compares each recomputed tensor's shape/dtype/device with the
    saved one ("none" lets the rerun through)."""
    messages = []
    for lib in LIBS:
        cp = importlib.import_module(lib.__name__ + ".utils.checkpoint")
        calls = []

        def widening(a, calls=calls):  # reruns in float64
            calls.append(1)
            return ((a if len(calls) == 1 else a.double()).sin() * 2).sum()

        x = lib.ones(3, requires_grad=True)
        with pytest.raises(cp.CheckpointError) as error:
            cp.checkpoint(widening, x, use_reentrant=False).backward()
        messages.append(str(error.value).replace(lib.__name__ + ".", "torch."))
        calls.clear()
        cp.checkpoint(widening, x, use_reentrant=False, determinism_check="none").backward()
        messages.append(x.grad.tolist())
    assert messages[:2] == messages[2:]


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_checkpoint_reruns_under_the_forwards_autocast(use_reentrant):
    results = []
    for lib in LIBS:
        cp = importlib.import_module(lib.__name__ + ".utils.checkpoint")
        weight = lib.tensor(np.linspace(-1, 1, 16, dtype=np.float32).reshape(4, 4))
        x = lib.tensor(np.linspace(-2, 3, 8, dtype=np.float32).reshape(2, 4), requires_grad=True)
        with lib.autocast("cpu", dtype=lib.bfloat16):
            y = cp.checkpoint(lambda a, weight=weight: (a @ weight).sin(), x, use_reentrant=use_reentrant)
        y.float().sum().backward()
        results.append((str(y.dtype).split(".")[-1], x.grad.numpy()))
    assert results[0][0] == results[1][0] == "bfloat16"
    np.testing.assert_array_equal(results[0][1], results[1][1])
