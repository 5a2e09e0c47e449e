"""grid_sample's faster paths (session 44, lane perfX): a grid no gradient reaches (nearest's always)
is turned into pixel indices on arrays, a float32/float64 grid that needs its gradient goes through
one GridCoordinates node (its derivative torch's kernel's: 0 on a clamp's ends, -1 per reflection),
and nearest reads skip the in-bounds product when every read is inside. Values, gradients, second
derivatives and forward-mode tangents against torch 2.13 and finite differences."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import chainrule
import chainrule.autograd.forward_ad as cfw
import chainrule.nn.functional as CF
from chainrule.ops.sampling import _even

torch = pytest.importorskip("torch")
TF = torch.nn.functional

_MODES = ["bilinear", "nearest", "bicubic"]
_PADS = ["zeros", "border", "reflection"]


def _inputs(seed: int, dtype, shape=(2, 3, 5, 6), points=(4, 7)):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    grid = (rng.random((shape[0], *points, len(shape) - 2)) * 3 - 1.5).astype(dtype)
    return x, grid


def _run(lib, F, x, grid, mode, pad, align, x_grad, grid_grad):
    xi, gi = lib.tensor(x, requires_grad=x_grad), lib.tensor(grid, requires_grad=grid_grad)
    out = F.grid_sample(xi, gi, mode=mode, padding_mode=pad, align_corners=align)
    results = [out.detach().numpy()]
    if x_grad or grid_grad:
        weights = lib.tensor(np.cos(np.arange(out.numel())).reshape(out.shape).astype(x.dtype))
        (out * weights).sum().backward()
        results += [xi.grad.numpy() if x_grad else None, gi.grad.numpy() if grid_grad else None]
    return results


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode,pad,align", list(itertools.product(_MODES, _PADS, [False, True])))
@pytest.mark.parametrize("x_grad,grid_grad", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.pairwise_in_ci(seed=61, strength=3)
def test_grid_sample_values_and_gradients_match_torch(dtype, mode, pad, align, x_grad, grid_grad):
    x, grid = _inputs(3, dtype)
    ours = _run(chainrule, CF, x, grid, mode, pad, align, x_grad, grid_grad)
    theirs = _run(torch, TF, x, grid, mode, pad, align, x_grad, grid_grad)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for a, b in zip(ours, theirs):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("pad", _PADS)
def test_grid_sample_3d_matches_torch(mode, pad):
    x, grid = _inputs(4, np.float64, shape=(2, 2, 3, 4, 5), points=(2, 3, 4))
    ours = _run(chainrule, CF, x, grid, mode, pad, False, True, True)
    theirs = _run(torch, TF, x, grid, mode, pad, False, True, True)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("pad", _PADS)
@pytest.mark.parametrize("align", [False, True])
def test_grid_gradient_on_the_ends_and_reflection_low_is_torchs(mode, pad, align):
    # coordinates exactly on an end of the image (grid +-1 with align_corners=True, -1/4 and
    # -1/3 on the low pixel centre without): torch's kernel counts a clamp's ends as outside
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    grid = np.array([[[[-1.0, -1.0], [1.0, 1.0], [0.0, 1.0], [-1.0, 0.5], [-0.25, -1 / 3], [-1.5, 3.0],
                       [1.0, -1.0]]]])
    ours = _run(chainrule, CF, x, grid, mode, pad, align, False, True)[2]
    theirs = _run(torch, TF, x, grid, mode, pad, align, False, True)[2]
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", _MODES)
@pytest.mark.parametrize("pad", _PADS)
def test_grid_sample_gradcheck_and_gradgradcheck(mode, pad):
    x, grid = _inputs(5, np.float64, shape=(1, 2, 4, 5), points=(3, 2))
    xi = chainrule.tensor(x, requires_grad=True)
    gi = chainrule.tensor(grid, requires_grad=mode != "nearest")

    def f(a, b):
        return CF.grid_sample(a, b, mode=mode, padding_mode=pad, align_corners=True)
    assert chainrule.autograd.gradcheck(f, (xi, gi))
    assert chainrule.autograd.gradgradcheck(f, (xi, gi))


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("pad", _PADS)
def test_double_backward_matches_torch(mode, pad):
    x, grid = _inputs(6, np.float64, shape=(1, 2, 4, 5), points=(3, 2))
    results = []
    for lib, F in ((chainrule, CF), (torch, TF)):
        a, b = lib.tensor(x, requires_grad=True), lib.tensor(grid, requires_grad=True)
        out = F.grid_sample(a, b, mode=mode, padding_mode=pad, align_corners=False)
        gx, gg = lib.autograd.grad((out * out).sum(), (a, b), create_graph=True)
        (gx.sum() + (gg * gg).sum()).backward()
        results.append([gx.detach().numpy(), gg.detach().numpy(), a.grad.numpy(), b.grad.numpy()])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("mode", _MODES)
@pytest.mark.parametrize("pad", _PADS)
def test_forward_mode_tangent_of_the_grid(mode, pad):
    # torch has no forward AD for grid_sampler: checked against central differences instead;
    # a grid that carries a tangent but does not require grad must not take the array shortcut
    x, grid = _inputs(7, np.float64, shape=(1, 2, 4, 5), points=(3, 2))
    rng = np.random.default_rng(8)
    tx, tg = rng.standard_normal(x.shape), rng.standard_normal(grid.shape)

    def f(a, b):
        return CF.grid_sample(chainrule.tensor(a), chainrule.tensor(b), mode=mode, padding_mode=pad,
                              align_corners=False).numpy()
    with cfw.dual_level():
        out = CF.grid_sample(cfw.make_dual(chainrule.tensor(x), chainrule.tensor(tx)),
                             cfw.make_dual(chainrule.tensor(grid), chainrule.tensor(tg)),
                             mode=mode, padding_mode=pad, align_corners=False)
        tangent = cfw.unpack_dual(out).tangent.numpy()
    if mode == "nearest":  # piecewise constant in the grid: the tangent is the input's, read
        expected = f(tx, grid)
    else:
        e = 1e-6
        expected = (f(x + e * tx, grid + e * tg) - f(x - e * tx, grid - e * tg)) / (2 * e)
    np.testing.assert_allclose(tangent, expected, atol=1e-5)


def test_nearest_grid_gradient_is_zeros_and_the_node_is_torchs():
    x, grid = _inputs(9, np.float32)
    xi, gi = chainrule.tensor(x, requires_grad=True), chainrule.tensor(grid, requires_grad=True)
    out = CF.grid_sample(xi, gi, mode="nearest", padding_mode="border", align_corners=False)
    assert out.grad_fn.name() == "GridSampler2DBackward0"
    out.sum().backward()
    assert gi.grad is not None and gi.grad.shape == gi.shape and not gi.grad.numpy().any()


def test_grid_sample_without_grad_mode_keeps_no_graph():
    x, grid = _inputs(10, np.float32)
    xi, gi = chainrule.tensor(x, requires_grad=True), chainrule.tensor(grid, requires_grad=True)
    with chainrule.no_grad():
        out = CF.grid_sample(xi, gi, mode="bilinear", padding_mode="reflection", align_corners=True)
    assert out.grad_fn is None and not out.requires_grad
    np.testing.assert_allclose(out.numpy(), _run(torch, TF, x, grid, "bilinear", "reflection", True, False,
                                                 False)[0], rtol=1e-5, atol=1e-5)


def test_even_is_remainder_two_zero_on_whole_numbers():
    flips = np.array([0, 1, 2, 3, 14, 15, 2.0 ** 23 - 1, 2.0 ** 23, 2.0 ** 24, 2.0 ** 30 + 2, 3.0e38],
                     dtype=np.float32)
    np.testing.assert_array_equal(_even(flips), np.remainder(flips, 2) == 0)
    np.testing.assert_array_equal(_even(flips.astype(np.float64)), np.remainder(flips.astype(np.float64), 2) == 0)
