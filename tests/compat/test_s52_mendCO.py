"""Session 52, lane mendCO: normalisation ops' float32 bits against torch's CPU kernels.

Eval-mode batch norm's gradients as torch's batch_norm_cpu_backward rounds them (one node,
EvalBatchNorm, instead of the scale-and-shift graph whose gradients rounded otherwise)."""

import numpy as np
import pytest
import torch

import chainrule
from chainrule import _config
from chainrule.autograd import gradcheck


def _eval_batch_norm(lib, arrays, affine=True):
    x, mean, var, w, b, g = arrays
    xt = lib.tensor(x, requires_grad=True)
    wt = lib.tensor(w, requires_grad=True) if affine else None
    bt = lib.tensor(b, requires_grad=True) if affine else None
    y = lib.nn.functional.batch_norm(xt, lib.tensor(mean), lib.tensor(var), wt, bt, False, 0.1, 1e-5)
    y.backward(lib.tensor(g))
    grads = [xt.grad] + ([wt.grad, bt.grad] if affine else [])
    return [y.detach().numpy()] + [t.numpy() for t in grads]


def _arrays(seed, shape, dtype=np.float32):
    rng = np.random.default_rng(seed)
    c = shape[1]
    return (rng.standard_normal(shape).astype(dtype) * 3 + 1, rng.standard_normal(c).astype(dtype),
            (rng.random(c) * 2 + 0.1).astype(dtype), rng.standard_normal(c).astype(dtype),
            rng.standard_normal(c).astype(dtype), rng.standard_normal(shape).astype(dtype))


# (N, C) runs torch's channels-last kernel (rows split between its threads); longer images its
# contiguous one: 8-lane sums with a partial last vector (L = 9, 21), a short image summed in order
SHAPES = [(32, 128), (4, 16), (5, 32, 1), (8, 3, 5), (16, 7, 9), (3, 4, 21), (2, 3, 40), (2, 6, 4, 4)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_eval_batch_norm_float32_gradients_bitwise_as_torch(shape, affine, monkeypatch):
    # chainrule's count of torch's intra-op threads, as torch's own here
    monkeypatch.setattr(_config, "_requested_threads", torch.get_num_threads())
    for seed in range(3):
        arrays = _arrays(seed, shape)
        expected = _eval_batch_norm(torch, arrays, affine)
        got = _eval_batch_norm(chainrule, arrays, affine)
        for name, e, a in zip(["out", "dx", "dw", "db"], expected, got):
            assert a.dtype == e.dtype and np.array_equal(a, e), (name, seed)


def test_eval_batch_norm_one_node_and_its_double_backward_against_torch():
    arrays = _arrays(0, (4, 3, 5))
    results = []
    for lib in (torch, chainrule):
        x, mean, var, w, b, _ = (lib.tensor(a) for a in arrays)
        for t in (x, w, b):
            t.requires_grad_(True)
        y = lib.nn.functional.batch_norm(x, mean, var, w, b, False)
        names = [type(y.grad_fn).__name__] + [type(n).__name__ for n, _ in y.grad_fn.next_functions]
        gx, gw, gb = lib.autograd.grad((y * y).sum(), (x, w, b), create_graph=True)
        names += [type(gx.grad_fn).__name__, type(gw.grad_fn).__name__]
        hx, hw = lib.autograd.grad(gx.sum() + 2 * gw.sum() + gb.sum(), (x, w))
        results.append((names, [t.detach().numpy() for t in (gx, gw, gb, hx, hw)]))
    (torch_names, torch_values), (names, values) = results
    assert names == torch_names
    for e, a in zip(torch_values, values):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)


def test_eval_batch_norm_gradcheck_float64_and_float32_path_values():
    x = chainrule.randn(3, 4, 5, dtype=chainrule.float64, requires_grad=True)
    w = chainrule.randn(4, dtype=chainrule.float64, requires_grad=True)
    b = chainrule.randn(4, dtype=chainrule.float64, requires_grad=True)
    mean, var = chainrule.randn(4, dtype=chainrule.float64), chainrule.rand(4, dtype=chainrule.float64) + 0.5
    assert gradcheck(lambda x, w, b: chainrule.nn.functional.batch_norm(x, mean, var, w, b, False), (x, w, b))
    # the float32 node's gradients are the float64 ones to float32 precision
    x32, w32, b32 = (t.detach().float().requires_grad_(True) for t in (x, w, b))
    y = chainrule.nn.functional.batch_norm(x32, mean.float(), var.float(), w32, b32, False)
    g = chainrule.randn(3, 4, 5)
    got = chainrule.autograd.grad(y, (x32, w32, b32), g)
    want = chainrule.autograd.grad(chainrule.nn.functional.batch_norm(x, mean, var, w, b, False), (x, w, b),
                                   g.double())
    for a, e in zip(got, want):
        np.testing.assert_allclose(a.numpy(), e.numpy(), rtol=1e-4, atol=1e-5)
