"""The engine's gradient layout and order (session 54, lane mendCZ): broadcast gradients summed in
torch's order in float64 as in float32, whatever layout the rule's product has; leaf ``.grad``
strides as torch's AccumulateGrad lays them out; sparse compressed leaves' gradients."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

needs_replayed_sum = pytest.mark.skipif(
    torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"),
    reason="the replayed order is that of torch's AVX2/AVX512 sum kernel")

BINARY = {
    "add": lambda x, b: x + b,
    "rsub": lambda x, b: b - x,
    "mul": lambda x, b: x * b,
    "rmul": lambda x, b: b * x,
    "div": lambda x, b: x / b,
    "where": lambda x, b: x.where(x > 0, b),
    "lerp": lambda x, b: x.lerp(b, 0.3),
}


def _broadcast_grad(lib, op, x, m, upstream, layout):
    b = lib.tensor(m, requires_grad=True)
    x, upstream = lib.tensor(x), lib.tensor(upstream)
    # a transposed upstream gradient or operand: the rule's product is transposed, as torch's is
    if layout == "upstream":
        upstream = upstream.transpose(0, -1).contiguous().transpose(0, -1)
    elif layout == "operand":
        x = x.transpose(0, -1).contiguous().transpose(0, -1)
    BINARY[op](x, b).backward(upstream)
    return b.grad.numpy()


@needs_replayed_sum
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", list(BINARY))
def test_a_broadcast_gradient_has_torchs_bits(op, dtype):
    # float64 broadcast gradients were summed in NumPy's order (205-210 of 300 random cases differed
    # from torch in the last bits), and x * b's gradient of b under a transposed upstream gradient
    # was a row-major product summed in another order than torch's (12-13 of 300, float32 too)
    rng = np.random.default_rng(sorted(BINARY).index(op))
    for shape, kept in (((9, 24), (24,)), ((13, 7, 11), (1, 11)), ((30, 9), (1, 1)), ((6, 5, 4, 19), (5, 1, 1))):
        x, m, upstream = (rng.standard_normal(s).astype(dtype) for s in (shape, kept, shape))
        for layout in ("plain", "upstream", "operand"):
            want = _broadcast_grad(torch, op, x, m, upstream, layout)
            got = _broadcast_grad(chainrule, op, x, m, upstream, layout)
            assert got.dtype == dtype and got.shape == kept
            assert got.tobytes() == want.tobytes(), (shape, kept, layout)


def _leaf(lib, make):
    return make(lib).detach().requires_grad_()


LEAVES = {
    # (a dense leaf whose size-1 dims' strides are not a fresh tensor's)
    "narrowed": lambda lib: lib.arange(8.0).reshape(2, 4)[:1, :2],
    "narrowed_3d": lambda lib: lib.arange(24.0).reshape(2, 2, 6)[:1, :1, :3],
    "permuted": lambda lib: lib.arange(9.0).reshape(3, 1, 3).permute(2, 1, 0),
    "permuted_to_1": lambda lib: lib.arange(9.0).reshape(3, 3, 1).permute(1, 2, 0),
    "unsqueezed": lambda lib: lib.arange(6.0).reshape(2, 3).t().unsqueeze(1),
    "channels_last": lambda lib: lib.arange(18.0).reshape(2, 1, 3, 3).contiguous(memory_format=lib.channels_last),
    "channels_last_c1": lambda lib: lib.arange(12.0).reshape(1, 3, 2, 2).contiguous(memory_format=lib.channels_last),
}
LOSSES = {
    "sum": lambda lib, x: x.sum(),
    "scaled_transpose": lambda lib, x: (x.transpose(0, -1) * 1.5).sum(),
    "exp": lambda lib, x: (x * 0.5).exp().sum(),
    "avg_pool": lambda lib, x: lib.nn.functional.avg_pool2d(x, 1).square().sum() if x.ndim == 4 else x.sum(),
}


@pytest.mark.filterwarnings("ignore:Using backward:UserWarning")
@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("leaf", list(LEAVES))
@pytest.mark.parametrize("loss", list(LOSSES))
def test_a_leaf_gradient_is_laid_out_as_torchs(leaf, loss, create_graph):
    # torch's AccumulateGrad: a dense leaf's new .grad has the leaf's strides, size-1 dims' included,
    # unless the engine takes the gradient over, which it does where it has the leaf's strides on the
    # dims longer than 1 (a transposed view too), and never under create_graph (its recorded copy is
    # in the leaf's strides); chainrule copied a row-major leaf's row-major and cloned under create_graph
    grads = []
    for lib in (torch, chainrule):
        x = _leaf(lib, LEAVES[leaf])
        LOSSES[loss](lib, x).backward(create_graph=create_graph)
        grads.append((x.stride(), x.grad.stride(), x.grad.detach().numpy()))
        x.grad = None  # (create_graph: the gradient's graph holds the leaf)
    (torch_leaf, torch_strides, want), (leaf_strides, strides, got) = grads
    assert leaf_strides == torch_leaf
    assert strides == torch_strides
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("pool", ["adaptive_avg_pool2d", "adaptive_max_pool2d"])
def test_a_pooled_channels_last_leaf_with_size_1_dims_gets_torchs_strides(pool):
    # (1, 3, 2, 1) channels-last: strides (6, 1, 3, 3); the pool's gradient was copied row-major-like,
    # (1, 1, 3, 6), where torch's AccumulateGrad takes the leaf's
    data = np.arange(6, dtype=np.float32).reshape(1, 3, 2, 1)
    grads = []
    for lib in (torch, chainrule):
        x = lib.tensor(data).contiguous(memory_format=lib.channels_last).detach().requires_grad_()
        getattr(lib.nn.functional, pool)(x, 1).square().sum().backward()
        grads.append((x.grad.stride(), x.grad.numpy()))
    assert grads[1][0] == grads[0][0] == (6, 1, 3, 3)
    np.testing.assert_array_equal(grads[1][1], grads[0][1])
