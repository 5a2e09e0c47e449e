"""Session 59, lane mendDU: norms' missing affine edges, vmap's chunked outputs, softplus backward's overflow."""
import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _edges(out):
    return [(None if fn is None else fn.name(), nr) for fn, nr in out.grad_fn.next_functions]


def _norm_cases(lib):
    x = lib.tensor(np.random.default_rng(0).standard_normal((4, 6, 5)), dtype=lib.float32, requires_grad=True)
    w5 = lib.tensor(np.linspace(0.5, 1.5, 5), dtype=lib.float32, requires_grad=True)
    b5 = lib.tensor(np.linspace(-1, 1, 5), dtype=lib.float32, requires_grad=True)
    F = lib.nn.functional
    return x, (w5, b5), {
        "layer_plain": F.layer_norm(x, (5,)),
        "layer_bias_only": F.layer_norm(x, (5,), None, b5),
        "layer_weight_only": F.layer_norm(x, (5,), w5),
        "layer_module": lib.nn.LayerNorm(5, elementwise_affine=False)(x),
        "layer_module_no_bias": lib.nn.LayerNorm(5, bias=False)(x),
        "group_plain": F.group_norm(x, 3),
    }


def test_norms_without_affine_list_none_edges_as_torch():
    _, _, ours = _norm_cases(chainrule)
    _, _, theirs = _norm_cases(torch)
    for name in theirs:
        assert ours[name].grad_fn.name() == theirs[name].grad_fn.name(), name
        assert _edges(ours[name]) == _edges(theirs[name]), name


def test_norms_without_affine_gradients_unchanged():
    results = []
    for lib in (chainrule, torch):
        x, (w, b), outs = _norm_cases(lib)
        seed = lib.tensor(np.random.default_rng(1).standard_normal((4, 6, 5)), dtype=lib.float32)
        loss = sum((out * seed).sum() for out in outs.values())
        results.append([g.detach().numpy() for g in lib.autograd.grad(loss, (x, w, b))])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_norm_without_affine_second_order_and_jacobian():
    for lib in (chainrule, torch):
        x = lib.tensor(np.random.default_rng(2).standard_normal((2, 6)), dtype=lib.float64, requires_grad=True)
        (g,) = lib.autograd.grad((lib.nn.functional.layer_norm(x, (6,)) ** 3).sum(), x, create_graph=True)
        (gg,) = lib.autograd.grad(g.sum(), x)
        jac = lib.func.jacrev(lambda a: lib.nn.functional.group_norm(a, 2))(x.detach())
        if lib is chainrule:
            ours = (g.detach().numpy(), gg.numpy(), jac.numpy())
        else:
            for a, b in zip(ours, (g.detach().numpy(), gg.numpy(), jac.numpy())):
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
