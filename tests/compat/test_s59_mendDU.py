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
        jac = lib.func.jacrev(lambda a, lib=lib: lib.nn.functional.group_norm(a, 2))(x.detach())
        if lib is chainrule:
            ours = (g.detach().numpy(), gg.numpy(), jac.numpy())
        else:
            for a, b in zip(ours, (g.detach().numpy(), gg.numpy(), jac.numpy())):
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def _vmap_outcome(lib, f, out_dims, chunk_size):
    x = lib.arange(6, dtype=lib.float32).reshape(3, 2)
    try:
        return lib.func.vmap(f, out_dims=out_dims, chunk_size=chunk_size)(x)
    except Exception as error:  # noqa: BLE001 - the exception is what is compared
        return type(error), str(error)


@pytest.mark.parametrize("chunk_size", [1, 2, 5])
@pytest.mark.parametrize("case", ["float", "none", "unbatched_tensor", "tuple_with_number"])
def test_chunked_vmap_joins_outputs_with_cat_as_torch(case, chunk_size):
    cases = {"float": (lambda lib: lambda x: 1.5, None),
             "none": (lambda lib: lambda x: None, None),
             "unbatched_tensor": (lambda lib: lambda x: lib.ones(2), None),
             "tuple_with_number": (lambda lib: lambda x: (x * 2, 1.0), (0, None))}
    make, out_dims = cases[case]
    ours = _vmap_outcome(chainrule, make(chainrule), out_dims, chunk_size)
    theirs = _vmap_outcome(torch, make(torch), out_dims, chunk_size)
    assert isinstance(theirs, tuple) and theirs[0] is TypeError
    assert ours == theirs


def test_chunked_vmap_output_is_a_fresh_cat():
    results = []
    for lib in (chainrule, torch):
        x = lib.arange(6, dtype=lib.float32).reshape(3, 2).requires_grad_()
        out = lib.func.vmap(lambda a: a * 2, out_dims=1, chunk_size=2)(x)
        results.append((out.grad_fn.name(), out.stride(), out.detach().numpy().tolist()))
    assert results[0] == results[1]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("transposed", [False, True])
def test_softplus_backward_overflow_is_silent(dtype, transposed):
    big = 1e37 if dtype == "float32" else 1e300
    xs = np.array([[80.0, 1.0], [5.0, -3.0]], dtype)
    gs = np.array([[big, 1.0], [big * 3, 2.0]], dtype)
    results = []
    for lib in (chainrule, torch):
        x = lib.tensor(xs, requires_grad=True)
        y = lib.nn.functional.softplus(x.t() if transposed else x, threshold=1000.0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with lib.no_grad():  # the node called directly: no walk's quiet NumPy state around it
                grad = y.grad_fn(lib.tensor(gs))
        results.append(([str(w.message) for w in caught], np.isinf(grad.numpy()).tolist()))
    assert results[0] == results[1]
    assert results[0][0] == [] and any(any(row) for row in results[0][1])
