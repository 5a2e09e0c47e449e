"""Session 59, lane mendDV: convolutions without bias list torch's (None, 0) bias edge."""
import itertools

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _edges(fn):
    return [(None if f is None else f.name(), nr) for f, nr in fn.next_functions]


def _conv(lib, d, transposed, x_grad, w_grad, dtype="float32", unbatched=False):
    rng = np.random.default_rng(10 * d + transposed)
    shape = (3,) + (4,) * d if unbatched else (2, 3) + (4,) * d
    x = lib.tensor(rng.standard_normal(shape), dtype=getattr(lib, dtype), requires_grad=x_grad)
    w = lib.tensor(rng.standard_normal(((3, 4) if transposed else (4, 3)) + (2,) * d), dtype=getattr(lib, dtype),
                   requires_grad=w_grad)
    f = getattr(lib.nn.functional, f"conv_transpose{d}d" if transposed else f"conv{d}d")
    return x, w, f


@pytest.mark.parametrize("d,transposed", list(itertools.product((1, 2, 3), (False, True))))
def test_conv_without_bias_lists_none_bias_edge(d, transposed):
    for x_grad, w_grad, unbatched in ((True, True, False), (True, False, False), (False, True, True)):
        nodes = []
        for lib in (chainrule, torch):
            x, w, f = _conv(lib, d, transposed, x_grad, w_grad, unbatched=unbatched)
            y = f(x, w)
            node = y.grad_fn.next_functions[0][0] if unbatched else y.grad_fn
            nodes.append((node.name(), _edges(node), tuple(node._saved_bias_sym_sizes_opt)))
        assert nodes[0] == nodes[1], (x_grad, w_grad, unbatched)
        assert nodes[0][1][-1] == (None, 0)


def test_conv_modules_without_bias_list_none_bias_edge():
    for name in ("Conv2d", "ConvTranspose1d", "Conv3d"):
        edges = []
        for lib in (chainrule, torch):
            lib.manual_seed(0)
            x = lib.ones((1, 2) + (5,) * int(name[-2]), requires_grad=True)
            edges.append(_edges(getattr(lib.nn, name)(2, 3, 3, bias=False)(x).grad_fn))
        assert edges[0] == edges[1], name
        assert len(edges[0]) == 3


@pytest.mark.parametrize("transposed", (False, True))
def test_conv_without_bias_gradients_second_order_jacrev_vmap(transposed):
    results = []
    for lib in (chainrule, torch):
        x, w, f = _conv(lib, 2, transposed, True, True, dtype="float64")
        gx, gw = lib.autograd.grad((f(x, w) ** 2).sum(), (x, w), create_graph=True)
        ggx, ggw = lib.autograd.grad((gx ** 2).sum() + (gw ** 2).sum(), (x, w))
        x0, w0 = x.detach(), w.detach()
        jac = lib.func.jacrev(lambda b, f=f, x0=x0: f(x0, b))(w0)
        hess = lib.func.hessian(lambda b, f=f, x0=x0: (f(x0, b) ** 3).sum())(w0)
        stack = x0.unsqueeze(0) * lib.arange(1.0, 4.0, dtype=lib.float64).reshape(3, 1, 1, 1, 1)
        batched = lib.vmap(lambda a, f=f, w0=w0: f(a, w0))(stack)
        results.append([t.detach().numpy() for t in (gx, gw, ggx, ggw, jac, hess, batched)])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9)


def _saved_affine(fn):
    return [(name, getattr(fn, name) is None, getattr(fn, "_raw" + name).unpack() is None)
            for name in ("_saved_weight", "_saved_bias")]


def test_layer_norm_missing_affine_saved_as_none_as_torch():
    for weight, bias in ((False, True), (True, False), (False, False), (True, True)):
        found = []
        for lib in (chainrule, torch):
            x = lib.tensor(np.random.default_rng(3).standard_normal((3, 5)), dtype=lib.float32, requires_grad=True)
            w = lib.linspace(0.5, 1.5, 5, requires_grad=True) if weight else None
            b = lib.linspace(-1.0, 1.0, 5, requires_grad=True) if bias else None
            y = lib.nn.functional.layer_norm(x, (5,), w, b)
            fn = y.grad_fn
            before = _saved_affine(fn)
            grads = lib.autograd.grad((y * y.detach().cos()).sum(), [t for t in (x, w, b) if t is not None])
            # an undefined saved tensor still reads None once the graph is freed; a defined one raises
            after = [name for name in ("_saved_weight", "_saved_bias") if not (weight if "weight" in name else bias)
                     and getattr(fn, name) is None]
            found.append((before, after, [g.numpy() for g in grads]))
        assert found[0][:2] == found[1][:2], (weight, bias)
        for ours, theirs in zip(found[0][2], found[1][2]):
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
