"""The host cost per recorded op on the device path (issue 12's transformer step on an H200).

Found profiling a transformer step on the CPU stand-in for CuPy, which runs the Python a GPU run
runs: in a plain backward the view, transpose, split, matrix-product and dropout rules ran their
forwards on NumPy gradients directly, but applied a node-less op around them for GPU gradients
(96 more applies per step of benchmarks/overhead.py's transformer_step than on the CPU, each with
its device check; 6 now). They now take the same array path on GPU arrays. Each op's device check
(on_one_device) takes its common case in one walk, and a row-major GPU array is viewed and reshaped
without NumPy's probe or a memory test, as a NumPy one is.

The tests pin what those shortcuts must keep: under a profiler (which watches every op, so the
rules still apply them) the gradients are the same bits, the same views of the same arrays, on the
same device; the graph, values, views, strides and device errors are torch's.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule._backend import use_standin_cuda
from chainrule.autograd import function as chainrule_function
from tests.compat.test_s32_overhead import _graph_names

torch = pytest.importorskip("torch")


def _values(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _attention_like(lib, device: str):
    """Heads split by view and transpose, scores by bmm, a split of the scores, the heads joined
    back by a non-viewable reshape (a copy), as multi-head attention does; the gradient each
    intermediate receives captured by a tensor hook."""
    x = lib.tensor(_values(0, 2, 3, 8), device=device, requires_grad=True)
    w = lib.tensor(_values(1, 8, 8), device=device, requires_grad=True)
    seen = []
    heads = (x @ w).view(2, 3, 2, 4).transpose(1, 2)  # (2, 2, 3, 4)
    heads.register_hook(lambda g: seen.append(g))
    flat = heads.reshape(4, 3, 4)
    scores = flat @ flat.transpose(1, 2)  # bmm (4, 3, 3)
    first, rest = scores.split([1, 2], dim=2)
    first.register_hook(lambda g: seen.append(g))
    joined = (first * 2 + rest.sum(2, keepdim=True)).reshape(2, 2, 3).transpose(1, 2).reshape(2, 6)
    out = (joined * joined).sum()
    out.backward()
    return out, [x.grad, w.grad], seen


def _layout(tensor) -> tuple:
    return (tuple(tensor.shape), tensor.stride(), tensor._is_view(), str(tensor.device), str(tensor.dtype))


def _same_bits(a, b) -> bool:
    a, b = a.detach().cpu().numpy(), b.detach().cpu().numpy()
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_device_backward_on_arrays_same_bits_and_views_as_applied_rules():
    with use_standin_cuda():
        out, grads, seen = _attention_like(chainrule, "cuda")
        with chainrule.autograd.profiler.profile():  # watched: every rule applies its ops
            assert chainrule_function.active_profiler is not None
            watched_out, watched_grads, watched_seen = _attention_like(chainrule, "cuda")
        assert _same_bits(out, watched_out)
        assert len(grads) == len(watched_grads) and len(seen) == len(watched_seen) == 2
        for fast, applied in zip(grads + seen, watched_grads + watched_seen):
            assert _same_bits(fast, applied)
            assert _layout(fast) == _layout(applied)
            assert fast.device.type == "cuda"


def test_device_backward_graph_values_and_gradients_as_torch():
    with use_standin_cuda():
        out, grads, seen = _attention_like(chainrule, "cuda")
        names = _graph_names(out)
        mine = [t.detach().cpu().numpy() for t in [out, *grads, *seen]]
    theirs, their_grads, their_seen = _attention_like(torch, "cpu")
    assert names == _graph_names(theirs)
    for array, expected in zip(mine, [theirs, *their_grads, *their_seen]):
        assert array.shape == tuple(expected.shape)
        np.testing.assert_allclose(array, expected.detach().numpy(), rtol=1e-4, atol=1e-4)


def test_device_dropout_backward_on_arrays_keeps_the_mask_and_double_backward():
    with use_standin_cuda():
        chainrule.manual_seed(0)
        x = chainrule.tensor(_values(2, 6, 5), device="cuda", requires_grad=True)
        y = chainrule.nn.functional.dropout(x, 0.5, training=True)
        assert type(y.grad_fn).__name__ == "NativeDropoutBackward0"  # torch's CUDA dropout node
        kept = (y != 0).cpu().numpy()
        (y * 3).sum().backward()
        # the gradient is the scaled keep-mask times the upstream 3, bit for bit
        expected = np.where(kept, np.float32(2.0) * np.float32(3.0), np.float32(0.0))
        assert x.grad.device.type == "cuda"
        assert x.grad.cpu().numpy().tobytes() == expected.tobytes()
        # under create_graph the rule still applies (and records) dropout's backward node
        v = chainrule.tensor(_values(3, 6, 5), device="cuda", requires_grad=True)
        (grad,) = chainrule.autograd.grad((y * v).sum(), x, create_graph=True)
        assert type(grad.grad_fn).__name__ == "NativeDropoutBackwardBackward0"
        grad.sum().backward()
        assert v.grad.cpu().numpy().tobytes() == np.where(kept, np.float32(2.0), np.float32(0.0)).tobytes()


MIXED = "Expected all tensors to be on the same device, but found at least two devices"


def test_device_check_fast_path_keeps_torchs_devices_and_refusals():
    """on_one_device's common case (every array on one GPU, or a 0-d CPU constant) runs the op on
    its arrays' GPU, with a number or 0-d CPU tensor joining as a device scalar; anything else keeps
    the general check's errors, the first device named first."""
    data = _values(4, 3, 4)
    with use_standin_cuda(devices=2):
        x = chainrule.tensor(data, device="cuda:1", requires_grad=True)
        scale = chainrule.tensor(0.5, requires_grad=True)  # a CPU 0-d leaf
        y = ((x * 0.9 + 0.1) * scale).tanh()  # the stand-in refuses a kernel off the current GPU
        y.sum().backward()
        assert y.device == chainrule.device("cuda:1") and x.grad.device == chainrule.device("cuda:1")
        assert scale.grad.device.type == "cpu"
        got = (y.detach().cpu().numpy(), x.grad.cpu().numpy(), scale.grad.numpy())
        with pytest.raises(RuntimeError, match=f"{MIXED}, cuda:1 and cuda:0!"):
            x + chainrule.ones(3, 4, device="cuda:0")
        with pytest.raises(RuntimeError, match=f"{MIXED}, cuda:1 and cpu!"):
            x + chainrule.ones(3, 4)
        logits = chainrule.tensor(data, device="cuda:1")
        with pytest.raises(RuntimeError, match=f"{MIXED}, cuda:1 and cpu!"):
            chainrule.nn.functional.cross_entropy(logits, chainrule.tensor([0, 1, 2]))  # a CPU target
    tx, tscale = torch.tensor(data, requires_grad=True), torch.tensor(0.5, requires_grad=True)
    ty = ((tx * 0.9 + 0.1) * tscale).tanh()
    ty.sum().backward()
    for mine, theirs in zip(got, (ty.detach(), tx.grad, tscale.grad)):
        np.testing.assert_allclose(mine, theirs.numpy(), rtol=1e-5, atol=1e-6)


def test_device_view_of_row_major_and_strided_arrays_as_torch():
    """A row-major GPU array views any shape of its size without NumPy's probe (as on the CPU);
    a strided one still asks the probe, and refuses with torch's error where torch does."""
    data = _values(5, 4, 6)
    with use_standin_cuda():
        x = chainrule.tensor(data, device="cuda")
        flat = x.view(2, 12)
        flat.add_(1)
        assert flat._base is x and x._version == flat._version == 1
        assert flat.stride() == (12, 1)
        swapped = x.t()
        with pytest.raises(RuntimeError) as ours:
            swapped.view(24)
        assert swapped.reshape(24).stride() == (1,) and not swapped.reshape(24)._is_view()
        strided = swapped.view(6, 1, 4).stride()
        # reshape: a view sharing the counter where torch's is one (row-major or viewable), else a copy
        ours_reshaped = [(r._is_view(), r._base is x, r.stride())
                         for r in (x.reshape(3, 8), swapped.reshape(6, 1, 4), swapped.reshape(24))]
        before = x._version
        x.reshape(3, 8).mul_(2)
        assert x._version == before + 1
    base = torch.tensor(data)
    t = base.t()
    with pytest.raises(RuntimeError) as theirs:
        t.view(24)
    assert str(ours.value) == str(theirs.value)
    assert strided == t.view(6, 1, 4).stride()
    assert ours_reshaped == [(r._is_view(), r._base is base, r.stride())
                             for r in (base.reshape(3, 8), t.reshape(6, 1, 4), t.reshape(24))]
