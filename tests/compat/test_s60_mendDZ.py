"""Session 60, lane mendDZ: torch.func.vmap's batching rules against torch — a linear of a 1-d or 4-d
per-sample input under vmap recorded as torch's matmul and add, a linear whose bias alone is mapped as
torch's addmm rule."""

from __future__ import annotations

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
