"""s59 mendDT: vmap of a batch of one and chunk_size, vmap'd products' nodes, against torch 2.13."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _names(node, depth: int):
    """A node's name and, ``depth`` levels down, its next functions' (None where an edge has no node)."""
    if node is None:
        return None
    below = tuple(_names(n, depth - 1) for n, _ in node.next_functions) if depth > 1 else ()
    return node.name(), below


def _vmapped(lib, op, shapes, in_dims, size, depth, **options):
    """vmap(op) over random operands (a batch of ``size`` where mapped): its result's nodes to ``depth``,
    strides and values, and the operands' gradients and their strides."""
    rng = np.random.default_rng(59)
    arrays = [rng.standard_normal((size, *shape) if dim == 0 else shape) for shape, dim in zip(shapes, in_dims)]
    tensors = [lib.tensor(a, requires_grad=True) for a in arrays]
    out = lib.func.vmap(lambda *t: op(lib, *t), in_dims=in_dims, **options)(*tensors)
    out.backward(lib.tensor(rng.standard_normal(tuple(out.shape))))
    return (_names(out.grad_fn, depth), out.stride(), [t.grad.stride() for t in tensors],
            out.detach().numpy(), [t.grad.numpy() for t in tensors])


def _assert_as_torchs(op, shapes, in_dims, size, depth, **options):
    ours = _vmapped(chainrule, op, shapes, in_dims, size, depth, **options)
    theirs = _vmapped(torch, op, shapes, in_dims, size, depth, **options)
    assert ours[:3] == theirs[:3]
    np.testing.assert_allclose(ours[3], theirs[3], rtol=1e-12, atol=1e-14)
    for mine, torchs in zip(ours[4], theirs[4]):
        np.testing.assert_allclose(mine, torchs, rtol=1e-12, atol=1e-14)


_F = lambda lib: lib.nn.functional  # noqa: E731

_BATCHED = {  # (op, each operand's slice shape, in_dims)
    "mul": (lambda lib, x: x * 2, [(3, 5)], (0,)),
    "sin": (lambda lib, x: x.sin(), [(3, 5)], (0,)),
    "sum(0)": (lambda lib, x: x.sum(0), [(3, 5)], (0,)),
    "relu": (lambda lib, x: _F(lib).relu(x), [(3, 5)], (0,)),
    "softmax": (lambda lib, x: _F(lib).softmax(x, -1), [(3, 5)], (0,)),
    "t": (lambda lib, x: x.t(), [(3, 5)], (0,)),
    "reshape": (lambda lib, x: x.reshape(15), [(3, 5)], (0,)),
    "add, both mapped": (lambda lib, x, y: x + y, [(3, 5), (3, 5)], (0, 0)),
    "linear": (lambda lib, x, w: _F(lib).linear(x, w), [(3, 5), (4, 5)], (0, None)),
    "bmm": (lambda lib, x, w: x.bmm(w), [(2, 3, 5), (2, 5, 4)], (0, None)),
    "matmul, both mapped": (lambda lib, x, w: x @ w, [(3, 5), (5, 4)], (0, 0)),
}


@pytest.mark.parametrize("name", sorted(_BATCHED))
def test_vmap_of_a_batch_of_one_runs_the_batching_rules(name):
    # a batch of one ran the function on its one slice and stacked it (StackBackward0 over SelectBackward0)
    op, shapes, in_dims = _BATCHED[name]
    _assert_as_torchs(op, shapes, in_dims, 1, 3)


@pytest.mark.parametrize("size, chunk_size", [(1, 1), (3, 1), (3, 2), (2, 5)])
@pytest.mark.parametrize("name", ["mul", "t", "add, both mapped", "linear", "bmm"])
def test_vmap_chunk_size_cats_the_chunks_as_torch(name, size, chunk_size):
    # torch splits the mapped inputs by tensor_split (SliceBackward0 each), runs vmap on each chunk and
    # joins the results by cat (CatBackward0, one chunk too); chunk_size was only checked, never used
    op, shapes, in_dims = _BATCHED[name]
    _assert_as_torchs(op, shapes, in_dims, size, 3, chunk_size=chunk_size)


def test_tensor_split_of_the_whole_dim_is_a_slice():
    # torch's pieces are at::slice's: SliceBackward0, one keeping the whole dim too (ours: AliasBackward0)
    def names(lib):
        x = lib.ones(3, 2, requires_grad=True)
        return [p.grad_fn.name() for p in x.tensor_split((3,)) + x.tensor_split(1, dim=1)]

    assert names(chainrule) == names(torch)


_PRODUCTS = {
    "linear with bias": (lambda lib, x, w, b: _F(lib).linear(x, w, b), [(3, 5), (4, 5), (4,)], (0, None, None)),
    "linear with bias, 3-d": (lambda lib, x, w, b: _F(lib).linear(x, w, b), [(2, 3, 5), (4, 5), (4,)],
                              (0, None, None)),
    "linear with a mapped bias": (lambda lib, x, w, b: _F(lib).linear(x, w, b), [(3, 5), (4, 5), (4,)], (0, None, 0)),
    "vector @ matrix": (lambda lib, x, w: x @ w, [(5,), (5, 4)], (0, None)),
    "linear of a vector": (lambda lib, x, w: _F(lib).linear(x, w), [(5,), (4, 5)], (0, None)),
    "vector @ matrix, both mapped": (lambda lib, x, w: x @ w, [(5,), (5, 4)], (0, 0)),
}


@pytest.mark.parametrize("size", [1, 3])
@pytest.mark.parametrize("name", sorted(_PRODUCTS))
def test_vmap_of_a_product_records_torchs_batched_nodes(name, size):
    # linear's addmm was replayed as one AddmmBackward0 (torch: AddBackward0(MulBackward1(bias),
    # UnsafeViewBackward0(MmBackward0))), a batched bias per slice; a vector's product squeezed back was
    # UnsafeViewBackward0 (torch: SqueezeBackward5)
    op, shapes, in_dims = _PRODUCTS[name]
    _assert_as_torchs(op, shapes, in_dims, size, 4)


_MASKED = {
    "relu": lambda F, x: F.relu(x),
    "Tensor.relu": lambda F, x: x.relu(),
    "relu6": lambda F, x: F.relu6(x),
    "hardtanh": lambda F, x: F.hardtanh(x, -0.5, 0.5),
    "threshold": lambda F, x: F.threshold(x, 0.1, 2.0),
    "hardshrink": lambda F, x: F.hardshrink(x),
    "softshrink": lambda F, x: F.softshrink(x),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(_MASKED))
def test_masked_gradients_are_torchs_select(name, dtype):
    # where the mask is shut torch selects +0; grad * mask gave -0 for a negative gradient. Open positions keep
    # the gradient's bits (-0 too); an inf or NaN gradient at a shut one gives +0
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(96) * 2).astype(dtype)
    g = rng.standard_normal(96).astype(dtype)
    g[::5] = -0.0
    g[1:40:7] = -np.inf
    g[2:40:11] = np.nan

    def gradient(lib):
        t = lib.tensor(x, requires_grad=True)
        _MASKED[name](lib.nn.functional, t).backward(lib.tensor(g))
        return t.grad.numpy()

    assert gradient(chainrule).tobytes() == gradient(torch).tobytes()
    g[:40] = -1.0  # (no inf or NaN at all)
    assert gradient(chainrule).tobytes() == gradient(torch).tobytes()


_WHOLE_REDUCTIONS = {
    "sum()": lambda lib, x: x.sum(),
    "mean()": lambda lib, x: x.mean(),
    "sum(dtype=float64)": lambda lib, x: x.sum(dtype=lib.float64),
    "(x * x).mean()": lambda lib, x: (x * x).mean(),
}


@pytest.mark.parametrize("size", [1, 3])
@pytest.mark.parametrize("name", sorted(_WHOLE_REDUCTIONS))
def test_vmap_of_a_whole_reduction_records_the_dim_overload(name, size):
    # a slice's whole sum is the batch's sum over its dims: torch records SumBackward1 / MeanBackward1 (ours
    # kept the slice's SumBackward0 / MeanBackward0)
    x = np.random.default_rng(11).standard_normal((size, 4, 5)).astype(np.float32)

    def run(lib):
        t = lib.tensor(x, requires_grad=True)
        out = lib.func.vmap(lambda s: _WHOLE_REDUCTIONS[name](lib, s))(t)
        node = out.grad_fn
        out.sum().backward()
        return ((node.name(), node._saved_dim, node._saved_keepdim, tuple(node._saved_self_sym_sizes), str(out.dtype)),
                out.detach().numpy(), t.grad.numpy())

    ours, theirs = run(chainrule), run(torch)
    assert ours[0][:4] == theirs[0][:4] and ours[0][4].split(".")[-1] == theirs[0][4].split(".")[-1]
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-6)
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-6)


_VECTOR_PRODUCTS = {
    "mapped vector . vector": (lambda lib, x, w: x @ w, [(5,), (5,)], (0, None)),
    "dot(mapped, vector)": (lambda lib, x, w: lib.dot(x, w), [(5,), (5,)], (0, None)),
    "vector . mapped vector": (lambda lib, x, w: w @ x, [(5,), (5,)], (0, None)),
    "mapped . mapped": (lambda lib, x, w: x @ w, [(5,), (5,)], (0, 0)),
    "matrix @ mapped vector": (lambda lib, x, w: w @ x, [(5,), (4, 5)], (0, None)),
    "matrix.mv(mapped vector)": (lambda lib, x, w: w.mv(x), [(5,), (4, 5)], (0, None)),
}


@pytest.mark.parametrize("size", [1, 3])
@pytest.mark.parametrize("name", sorted(_VECTOR_PRODUCTS))
def test_vmap_of_a_vector_product_records_torchs_batched_nodes(name, size):
    # dot ran once per slice (StackBackward0 over DotBackward0s); a matrix times mapped vectors was
    # SqueezeBackward1(TransposeBackward0(...)), contiguous, where torch's mm against their transpose is read
    # back transposed (PermuteBackward0, strides (1, batch))
    op, shapes, in_dims = _VECTOR_PRODUCTS[name]
    ours = _vmapped(chainrule, op, shapes, in_dims, size, 5)
    theirs = _vmapped(torch, op, shapes, in_dims, size, 5)
    # (a batch of one: a size-1 dim's gradient strides are the engine's own, left)
    assert ours[:2] == theirs[:2] and (size == 1 or ours[2] == theirs[2])
    np.testing.assert_allclose(ours[3], theirs[3], rtol=1e-12, atol=1e-14)
    for mine, torchs in zip(ours[4], theirs[4]):
        np.testing.assert_allclose(mine, torchs, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_hardsigmoid_gradient_is_torchs_product_by_its_float32_sixth(dtype):
    # torch's kernel multiplies by 1.0f / 6.0f widened, not by the float64 1/6: 1078 of 4000 float64 gradients
    # differed in the last bit
    x = np.random.default_rng(1).uniform(-4, 4, 4000).astype(dtype)
    g = np.random.default_rng(0).standard_normal(4000).astype(dtype)

    def gradient(lib):
        t = lib.tensor(x, requires_grad=True)
        lib.nn.functional.hardsigmoid(t).backward(lib.tensor(g))
        return t.grad.numpy()

    assert gradient(chainrule).tobytes() == gradient(torch).tobytes()
