"""Session 60, lane mendDZ: torch.func.vmap's batching rules against torch — a linear of a 1-d or 4-d
per-sample input under vmap recorded as torch's matmul and add, a linear whose bias alone is mapped as
torch's addmm rule; addmm, addmv, addbmm, baddbmm and addr as torch's vmap decompositions; a 0-d slice's
reduction, mm's column-major gradients and the empty batch as torch's; hardsigmoid's half gradient rounded once
from float32."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _names(t, depth: int = 4) -> list:
    found = []

    def walk(node, left: int, indent: int) -> None:
        if node is None or not left:
            return
        found.append((indent, node.name()))
        for child, _ in node.next_functions:
            walk(child, left - 1, indent + 1)

    walk(t.grad_fn, depth, 0)
    return found


def _vmapped_linear(lib, sample_shape: tuple, dims: tuple, size: int):
    rng = np.random.default_rng(7)

    def made(shape):
        return lib.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)

    weight = made((size, 5, 4)) if dims[0] == 0 else made((5, 4))
    bias = made((size, 5)) if dims[1] == 0 else made((5,))
    x = made((size, *sample_shape)) if dims[2] == 0 else made(sample_shape)
    out = lib.func.vmap(lambda w, b, xx: lib.nn.functional.linear(xx, w, b), in_dims=dims)(weight, bias, x)
    out.backward(lib.tensor(rng.standard_normal(tuple(out.shape)).astype(np.float32)))
    return out, [weight.grad, bias.grad, x.grad]


@pytest.mark.parametrize("sample_shape", [(4,), (2, 4), (2, 3, 5, 4)])
@pytest.mark.parametrize("dims", [d for d in itertools.product((0, None), repeat=3) if d != (None, None, None)])
def test_vmapped_linear_records_torchs_graph(sample_shape, dims):
    ours, our_grads = _vmapped_linear(chainrule, sample_shape, dims, 3)
    theirs, their_grads = _vmapped_linear(torch, sample_shape, dims, 3)
    assert _names(ours) == _names(theirs)
    assert ours.stride() == theirs.stride()
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-5, atol=1e-5)
    for mine, expected in zip(our_grads, their_grads):
        np.testing.assert_allclose(mine.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
        assert mine.stride() == expected.stride()


def test_stacked_linears_over_one_dimensional_samples():
    """An ensemble of MLPs (stack_module_state) over 1-d samples, each mapped or one shared."""
    for in_dims in ((0, 0, None), (0, 0, 0)):
        graphs = []
        for lib in (chainrule, torch):
            lib.manual_seed(0)
            models = [lib.nn.Sequential(lib.nn.Linear(4, 6), lib.nn.Tanh(), lib.nn.Linear(6, 2)) for _ in range(3)]
            params, buffers = lib.func.stack_module_state(models)
            for name in params:  # the same numbers in both libraries
                params[name] = lib.tensor(np.linspace(-1, 1, params[name].numel(), dtype=np.float32)
                                          .reshape(tuple(params[name].shape)), requires_grad=True)
            x = lib.tensor(np.linspace(-2, 2, 12 if in_dims[2] == 0 else 4, dtype=np.float32)
                           .reshape((3, 4) if in_dims[2] == 0 else (4,)))

            def one(p, b, xx, model=models[0], lib=lib):
                return lib.func.functional_call(model, (p, b), (xx,))

            out = lib.func.vmap(one, in_dims=in_dims)(params, buffers, x)
            out.sum().backward()
            graphs.append((_names(out, 3), out.detach().numpy(), [params[k].grad.numpy() for k in sorted(params)]))
        (names, values, grads), (their_names, their_values, their_grads) = graphs
        assert names == their_names
        np.testing.assert_allclose(values, their_values, rtol=1e-5, atol=1e-6)
        for mine, expected in zip(grads, their_grads):
            np.testing.assert_allclose(mine, expected, rtol=1e-5, atol=1e-6)


def test_bias_alone_mapped_runs_once_as_torchs_addmm_rule():
    graphs = []
    for lib in (chainrule, torch):
        weight, x = lib.ones(5, 4, requires_grad=True), lib.ones(2, 4, requires_grad=True)
        bias = lib.arange(15.0).reshape(3, 5).requires_grad_()
        out = lib.func.vmap(lambda b, x=x, weight=weight, lib=lib: lib.nn.functional.linear(x, weight, b))(bias)
        graphs.append((_names(out), out.tolist()))
    assert graphs[0] == graphs[1]


@pytest.mark.parametrize("reduce", ["sum", "mean", "sum0", "mean_kept", "amax"])
def test_reducing_a_zero_dim_slice_is_torchs_rule(reduce):
    """torch's rule for a 0-d slice: the batch unsqueezed into a column, reduced along it by the dim
    overload (SumBackward1 over UnsqueezeBackward0), a kept dim squeezed (SqueezeBackward1)."""
    calls = {"sum": lambda t: t.sum(), "mean": lambda t: t.mean(), "sum0": lambda t: t.sum(0),
             "mean_kept": lambda t: t.mean(0, keepdim=True), "amax": lambda t: t.amax()}
    found = []
    for lib in (chainrule, torch):
        x = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
        out = lib.func.vmap(calls[reduce])(x)
        (out * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
        found.append((_names(out, 3), out.tolist(), out.stride(), x.grad.tolist()))
    assert found[0] == found[1]


@pytest.mark.parametrize("size", [1, 3])
def test_matrix_times_mapped_vector_gradient_keeps_the_leafs_strides(size):
    """vmap(W @ v) is mm(W, vᵀ) whose vᵀ is column-major: torch's mm_mat2_backward returns its
    gradient column-major, so v's gradient is row-major, (5, 1), for a batch of one too."""
    strides = []
    for lib in (chainrule, torch):
        v = lib.ones(size, 5, requires_grad=True)
        w = lib.ones(4, 5, requires_grad=True)
        lib.func.vmap(lambda t, w=w: w @ t)(v).sum().backward()
        strides.append((v.grad.stride(), w.grad.stride(), v.grad.tolist()))
    assert strides[0] == strides[1]


@pytest.mark.parametrize("shapes", [((1, 5), (5, 1)), ((4, 1), (1, 3)), ((6, 2), (2, 1))])
@pytest.mark.parametrize("transposed", [(True, False), (False, True), (True, True)])
def test_mm_of_a_column_major_matrix_returns_its_gradient_column_major(shapes, transposed):
    (n, m), (_, p) = shapes
    found = []
    for lib in (chainrule, torch):
        a = lib.ones((m, n) if transposed[0] else (n, m), requires_grad=True)
        b = lib.ones((p, m) if transposed[1] else (m, p), requires_grad=True)
        lib.mm(a.t() if transposed[0] else a, b.t() if transposed[1] else b).sum().backward()
        found.append((a.grad.stride(), b.grad.stride()))
    assert found[0] == found[1]


def test_empty_batch_refuses_a_batched_result_at_out_dim_none():
    for lib in (chainrule, torch):
        with pytest.raises(ValueError, match="can not return a BatchedTensor when out_dim is None"):
            lib.func.vmap(lambda t: t * 2, out_dims=None)(lib.zeros(0, 3))
        kept = lib.func.vmap(lambda t, lib=lib: (t * 2, lib.ones(2)), out_dims=(0, None))(lib.zeros(0, 3))
        assert tuple(kept[0].shape) == (0, 3) and kept[1].tolist() == [1.0, 1.0]


_ADDED_PRODUCTS = {"addmm": ((3, 4), (3, 5), (5, 4)), "addmv": ((3,), (3, 5), (5,)),
                   "addbmm": ((3, 4), (2, 3, 5), (2, 5, 4)), "baddbmm": ((2, 3, 4), (2, 3, 5), (2, 5, 4)),
                   "addr": ((3, 4), (3,), (4,))}


@pytest.mark.parametrize("op", sorted(_ADDED_PRODUCTS))
@pytest.mark.parametrize("dims", [(0, 0, 0), (0, None, None), (None, 0, None), (None, None, 0)])
@pytest.mark.parametrize("beta, alpha", [(1, 1), (0.5, 2.0), (0, 1), (0, -1.5)])
def test_vmapped_added_products_are_torchs_decompositions(op, dims, beta, alpha):
    found = []
    for lib in (chainrule, torch):
        rng = np.random.default_rng(3)
        operands = [lib.tensor(rng.standard_normal(((2,) if dim == 0 else ()) + shape).astype(np.float32),
                               requires_grad=True) for shape, dim in zip(_ADDED_PRODUCTS[op], dims)]
        added = functools.partial(getattr(lib, op), beta=beta, alpha=alpha)
        out = lib.func.vmap(added, in_dims=dims)(*operands)
        out.backward(lib.tensor(rng.standard_normal(tuple(out.shape)).astype(np.float32)))
        found.append((_names(out), out.stride(), out.detach().numpy(),
                      [None if t.grad is None else t.grad.numpy() for t in operands]))
    (names, strides, values, grads), (their_names, their_strides, their_values, their_grads) = found
    assert names == their_names
    assert strides == their_strides
    np.testing.assert_allclose(values, their_values, rtol=1e-5, atol=1e-5)
    for mine, expected in zip(grads, their_grads):
        assert (mine is None) == (expected is None)
        if mine is not None:
            np.testing.assert_allclose(mine, expected, rtol=1e-5, atol=1e-5)

@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_hardsigmoid_half_gradient_rounds_once_from_float32(dtype):
    """torch's hardsigmoid_backward multiplies a half gradient by its float32 1/6 in float32 and
    rounds the product once (IEEE float32 products: the same bits on any CPU)."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(4096) * 4).astype(np.float32)
    g = rng.standard_normal(4096).astype(np.float32)
    grads = []
    for lib in (chainrule, torch):
        t = lib.tensor(x).to(getattr(lib, dtype)).requires_grad_()
        lib.nn.functional.hardsigmoid(t).backward(lib.tensor(g).to(getattr(lib, dtype)))
        grads.append(t.grad.float().numpy())
    np.testing.assert_array_equal(grads[0], grads[1])
