"""The node torch records for composite ops chainrule builds from parts: batch_norm in eval mode,
group_norm with an affine, and interpolate's upsample kernels. The top node's name
(``type(y.grad_fn).__name__``, what graph drawings show) is torch 2.13's; the gradient itself is
unchanged and still torch's."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _inputs(lib, spatial):
    rng = np.random.default_rng(0)
    x = lib.tensor(rng.standard_normal((2, 4) + spatial).astype(np.float32), requires_grad=True)
    w = lib.tensor(rng.standard_normal(4).astype(np.float32), requires_grad=True)
    b = lib.tensor(rng.standard_normal(4).astype(np.float32), requires_grad=True)
    return x, w, b


CASES = {
    "batch_norm eval": ((5, 5), lambda lib, x, w, b: lib.nn.functional.batch_norm(
        x, lib.zeros(4), lib.ones(4) * 2, w, b, training=False)),
    "batch_norm eval without affine": ((5,), lambda lib, x, w, b: lib.nn.functional.batch_norm(
        x, lib.zeros(4) + 0.5, lib.ones(4), training=False)),
    "group_norm": ((5, 5), lambda lib, x, w, b: lib.nn.functional.group_norm(x, 2, w, b)),
    "group_norm weight only": ((3,), lambda lib, x, w, b: lib.nn.functional.group_norm(x, 4, w)),
    "group_norm without affine": ((3,), lambda lib, x, w, b: lib.nn.functional.group_norm(x, 2)),
    **{f"interpolate {mode} {len(spatial)}d": (spatial, lambda lib, x, w, b, mode=mode: lib.nn.functional.interpolate(
        x, scale_factor=2, mode=mode))
       for mode, spatial in (("nearest", (3,)), ("nearest", (3, 4)), ("nearest", (2, 3, 2)), ("nearest-exact", (3, 4)),
                             ("linear", (3,)), ("bilinear", (3, 4)), ("bicubic", (3, 4)), ("trilinear", (2, 3, 2)))},
    "interpolate nearest to a size": ((3, 4), lambda lib, x, w, b: lib.nn.functional.interpolate(x, size=(5, 2))),
}


def _run(lib, case):
    spatial, make = CASES[case]
    x, w, b = _inputs(lib, spatial)
    y = make(lib, x, w, b)
    y.backward(lib.ones(y.shape) * lib.arange(float(y.shape[-1])))
    return type(y.grad_fn).__name__, y.detach().numpy(), x.grad.numpy()


@pytest.mark.parametrize("case", list(CASES))
def test_top_node_name_and_gradient_as_torch(case):
    (our_name, our_y, our_grad), (their_name, their_y, their_grad) = _run(chainrule, case), _run(torch, case)
    assert our_name == their_name
    np.testing.assert_allclose(our_y, their_y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(our_grad, their_grad, rtol=1e-4, atol=1e-4)
