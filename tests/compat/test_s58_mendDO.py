"""s58 mendDO: vmap over in-place activations and of products, against torch 2.13."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

_IN_PLACE = {
    "relu_": lambda lib, y: lib.nn.functional.relu_(y),
    "Tensor.relu_": lambda lib, y: y.relu_(),
    "ReLU(inplace=True)": lambda lib, y: lib.nn.ReLU(inplace=True)(y),
    "hardtanh_": lambda lib, y: lib.nn.functional.hardtanh_(y),
    "leaky_relu_": lambda lib, y: lib.nn.functional.leaky_relu_(y, 0.1),
    "elu_": lambda lib, y: lib.nn.functional.elu_(y),
    "silu(inplace=True)": lambda lib, y: lib.nn.functional.silu(y, inplace=True),
    "Tensor.tanh_": lambda lib, y: y.tanh_(),
}


@pytest.mark.parametrize("name", sorted(_IN_PLACE))
def test_vmap_grad_of_in_place_activation_after_layer_norm_runs_once_on_the_batch(name):
    # the write into layer_norm's output (which its node's x̂ shares) was replayed nowhere: each slice ran alone
    x = np.random.default_rng(58).standard_normal((4, 3, 5))
    weights = np.random.default_rng(59).standard_normal(5)

    def build(lib):
        calls = []

        def loss(xi):
            calls.append(1)
            y = _IN_PLACE[name](lib, lib.nn.functional.layer_norm(xi, (5,)))
            return (y * lib.tensor(weights)).sum()

        out = lib.func.vmap(lib.func.grad(loss))(lib.tensor(x))
        return out.detach().numpy(), len(calls)

    (ours, our_calls), (theirs, their_calls) = build(chainrule), build(torch)
    assert our_calls == their_calls == 1
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def _names(node, depth: int):
    """A node's name and, ``depth`` levels down, its next functions' (None where an edge has no node)."""
    below = tuple(None if n is None else _names(n, depth - 1) for n, _ in node.next_functions) if depth > 1 else ()
    return node.name(), below


_PRODUCTS = {  # (op, each operand's shape given the batch size, in_dims)
    "linear": (lambda lib, x, w: lib.nn.functional.linear(x, w), lambda b: [(b, 3, 5), (4, 5)], (0, None)),
    "mm": (lambda lib, x, w: x.mm(w), lambda b: [(b, 3, 5), (5, 4)], (0, None)),
    "mv": (lambda lib, x, w: x.mv(w), lambda b: [(b, 3, 5), (5,)], (0, None)),
    "bmm": (lambda lib, x, w: x.bmm(w), lambda b: [(b, 2, 3, 5), (2, 5, 4)], (0, None)),
    "bmm, both batched": (lambda lib, x, w: x.bmm(w), lambda b: [(b, 2, 3, 5), (b, 2, 5, 4)], (0, 0)),
    "matmul, both batched": (lambda lib, x, w: x @ w, lambda b: [(b, 3, 5), (b, 5, 4)], (0, 0)),
}


@pytest.mark.parametrize("name", sorted(_PRODUCTS))
def test_vmap_of_a_product_records_torchs_nodes(name):
    # the batched product's result was viewed back once more (ViewBackward0 over torch's UnsafeViewBackward0)
    op, shapes, in_dims = _PRODUCTS[name]
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal(shape) for shape in shapes(3)]

    def build(lib):
        tensors = [lib.tensor(a, requires_grad=True) for a in arrays]
        out = lib.func.vmap(lambda *t: op(lib, *t), in_dims=in_dims)(*tensors)
        return _names(out.grad_fn, 3), out.stride(), out.detach().numpy()

    ours, theirs = build(chainrule), build(torch)
    assert ours[:2] == theirs[:2]
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["relu", "relu_", "softshrink"])
def test_signed_zeros_of_relu_and_softshrink_are_torchs(name, dtype):
    # relu(-0.0) is -0.0 in torch (clamp_min keeps it; ours gave +0); softshrink(-0.0) and softshrink of a
    # negative x inside [-λ, λ] are +0 (ours -0). The zeros lead 64 values, inside the vectorised body on
    # AVX2 and AVX-512 alike (torch's scalar tail keeps -0 for softshrink).
    values = np.zeros(64, dtype)
    values[:6] = [-0.0, 0.0, -0.25, 0.25, -1e-40, np.nan]
    values[6:] = np.random.default_rng(3).standard_normal(58)

    def run(lib):
        x = lib.tensor(values)
        if name == "relu_":
            return lib.nn.functional.relu_(x.clone()).numpy()
        return getattr(lib.nn.functional, name)(x).numpy()

    ours, theirs = run(chainrule), run(torch)
    assert ours.tobytes() == theirs.tobytes()
