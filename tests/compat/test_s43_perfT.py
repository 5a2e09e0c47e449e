"""Image resampling as torch's (session 43, lane perfT): interpolate's nearest, linear and cubic
modes run as one Resample node (a gather-and-weigh per axis) whose gradient is the transposed
resampling; grid_sample likewise. Values, gradients, layouts and node names against torch 2.13."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

_MODES = [("nearest", 1), ("nearest", 2), ("nearest", 3), ("nearest-exact", 2), ("nearest-exact", 3),
          ("linear", 1), ("bilinear", 2), ("bicubic", 2), ("trilinear", 3)]
_SIZES = [{"scale_factor": 2}, {"scale_factor": 0.5}, {"size": 7}, {"size": 1}, {"scale_factor": 1.7},
          {"scale_factor": 1.7, "recompute_scale_factor": True}, {"scale_factor": 3}]


def _shape(d: int, batch: int = 2) -> tuple:
    return (batch, 3) + (5, 6, 4)[:d]


def _laid_out(lib, array: np.ndarray, layout: str):
    x = lib.tensor(array)
    if layout == "channels_last":
        x = x.contiguous(memory_format=lib.channels_last if x.ndim == 4 else lib.channels_last_3d)
    elif layout == "transposed":  # batch and channels swapped in memory
        x = x.transpose(0, 1).contiguous().transpose(0, 1)
    return x.requires_grad_()


def _interpolated(lib, array, layout, mode, kwargs, grad_out):
    x = _laid_out(lib, array, layout)
    y = lib.nn.functional.interpolate(x, mode=mode, **kwargs)
    y.backward(lib.tensor(grad_out))
    return y, x


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "transposed"])
@pytest.mark.parametrize("sizes", _SIZES, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
@pytest.mark.parametrize("mode,d", _MODES, ids=[f"{m}{d}d" for m, d in _MODES])
@pytest.mark.pairwise_in_ci(seed=61)
def test_interpolate_values_gradients_layout_and_node_as_torch(mode, d, sizes, layout, dtype):
    if layout == "channels_last" and d == 1:
        pytest.skip("no channels-last layout for 3-d tensors")
    # a seed of the case's own (str's hash() differs from process to process with PYTHONHASHSEED)
    rng = np.random.default_rng(zlib.crc32(repr((mode, d, str(sizes), layout, dtype)).encode()))
    array = rng.standard_normal(_shape(d)).astype(dtype)
    for align_corners in ([None] if mode.startswith("nearest") else [False, True]):
        kwargs = dict(sizes, **({} if align_corners is None else {"align_corners": align_corners}))
        y_torch = torch.nn.functional.interpolate(_laid_out(torch, array, layout), mode=mode, **kwargs)
        grad_out = rng.standard_normal(tuple(y_torch.shape)).astype(dtype)
        expected, x_expected = _interpolated(torch, array, layout, mode, kwargs, grad_out)
        got, x_got = _interpolated(chainrule, array, layout, mode, kwargs, grad_out)
        if mode.startswith("nearest"):  # a copy of input elements: torch's bits
            np.testing.assert_array_equal(got.detach().numpy(), expected.detach().numpy())
        tolerance = 1e-5 if dtype == "float32" else 1e-12
        np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=tolerance, atol=tolerance)
        np.testing.assert_allclose(x_got.grad.numpy(), x_expected.grad.numpy(), rtol=tolerance, atol=tolerance)
        assert got.dtype.itemsize == expected.dtype.itemsize and x_got.grad.dtype == got.dtype
        assert got.grad_fn.name() == expected.grad_fn.name()
        assert x_got.grad.stride() == x_expected.grad.stride()
        # one node, as torch's: its edge goes straight to the input
        assert [type(f).__name__ for f, _ in got.grad_fn.next_functions] == ["AccumulateGrad"]
        assert got.is_contiguous() == expected.is_contiguous()
        assert got.is_contiguous(memory_format=chainrule.channels_last if d == 2 else chainrule.contiguous_format) == \
            expected.is_contiguous(memory_format=torch.channels_last if d == 2 else torch.contiguous_format)


_GRADCHECK_CASES = [("nearest", (1, 2, 5), {"scale_factor": 2.5}), ("nearest-exact", (1, 2, 4, 3), {"size": (7, 2)}),
                    ("linear", (1, 2, 5), {"scale_factor": 1.6, "align_corners": False}),
                    ("bilinear", (1, 2, 4, 3), {"size": (6, 5), "align_corners": True}),
                    ("bilinear", (1, 1, 5, 6), {"scale_factor": 0.5, "align_corners": False}),
                    ("bicubic", (1, 2, 4, 3), {"scale_factor": 1.5, "align_corners": False}),
                    ("trilinear", (1, 1, 3, 2, 3), {"scale_factor": 2, "align_corners": False}),
                    # an axis longer than the dense adjoint's limit takes the run sums
                    ("linear", (1, 1, 140), {"scale_factor": 1.3, "align_corners": False}),
                    ("nearest", (1, 1, 150), {"size": 70})]


@pytest.mark.parametrize("mode,shape,kwargs", _GRADCHECK_CASES, ids=[c[0] + str(c[1]) for c in _GRADCHECK_CASES])
def test_interpolate_gradient_and_its_gradient_by_finite_differences(mode, shape, kwargs):
    x = chainrule.randn(*shape, dtype=chainrule.float64, requires_grad=True)

    def fn(t):
        return chainrule.nn.functional.interpolate(t, mode=mode, **kwargs)

    assert chainrule.autograd.gradcheck(fn, (x,))
    assert chainrule.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
def test_interpolate_double_backward_node_and_values_as_torch(mode):
    rng = np.random.default_rng(3)
    array, seed = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 8, 10))
    kwargs = {} if mode == "nearest" else {"align_corners": False}
    results = []
    for lib in (torch, chainrule):
        x = lib.tensor(array, requires_grad=True)
        y = lib.nn.functional.interpolate(x, scale_factor=2, mode=mode, **kwargs)
        grad_out = lib.tensor(seed, requires_grad=True)
        (grad_x,) = lib.autograd.grad(y, x, grad_out, create_graph=True)
        (grad_grad,) = lib.autograd.grad((grad_x * grad_x).sum(), grad_out)
        results.append((grad_x.grad_fn.name(), grad_x.detach().numpy(), grad_grad.numpy()))
    (name_t, gx_t, gg_t), (name_c, gx_c, gg_c) = results
    assert name_c == name_t
    np.testing.assert_allclose(gx_c, gx_t, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gg_c, gg_t, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("length", [20, 200])  # the dense adjoint and the run sums
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_interpolate_infinite_gradient_reaches_only_its_taps_as_torch(mode, length):
    array = np.linspace(-1, 1, 2 * 3 * length).reshape(2, 3, length)
    grad_out = np.ones((2, 3, 2 * length))
    grad_out[0, 1, 5], grad_out[1, 2, 7] = np.inf, np.nan
    grads = []
    for lib in (torch, chainrule):
        x = lib.tensor(array, requires_grad=True)
        lib.nn.functional.interpolate(x, scale_factor=2, mode=mode).backward(lib.tensor(grad_out))
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12, atol=1e-12)  # (NaN where torch's is NaN)


@pytest.mark.parametrize("mode,d", [("nearest", 2), ("bilinear", 2), ("bicubic", 2), ("trilinear", 3)])
def test_interpolate_of_an_empty_batch_as_torch(mode, d):
    results = []
    for lib in (torch, chainrule):
        x = lib.zeros(0, 2, *(3,) * d, requires_grad=True)
        y = lib.nn.functional.interpolate(x, scale_factor=2, mode=mode)
        y.sum().backward()
        results.append((tuple(y.shape), tuple(x.grad.shape), y.grad_fn.name()))
    assert results[1] == results[0]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
def test_interpolate_half_precision_as_torch(mode, dtype):
    array = np.random.default_rng(5).standard_normal((2, 3, 6, 5)).astype(np.float32)
    kwargs = {} if mode == "nearest" else {"align_corners": False}
    results = []
    for lib in (torch, chainrule):
        x = lib.tensor(array).to(getattr(lib, dtype)).requires_grad_()
        y = lib.nn.functional.interpolate(x, scale_factor=1.5, mode=mode, **kwargs)
        y.backward(lib.ones_like(y))
        results.append((y.detach().float().numpy(), x.grad.float().numpy(), y.grad_fn.name(), str(y.dtype)))
    (y_t, g_t, name_t, dtype_t), (y_c, g_c, name_c, dtype_c) = results
    assert (name_c, dtype_c.rpartition(".")[2]) == (name_t, dtype_t.rpartition(".")[2])
    if mode == "bilinear":  # (6 of 162 elements one half-precision step off torch's, as before the Resample node)
        np.testing.assert_allclose(y_c, y_t, rtol=1e-2, atol=1e-2)
    else:
        np.testing.assert_array_equal(y_c, y_t)
    np.testing.assert_allclose(g_c, g_t, rtol=1e-2, atol=1e-2)


_GRID_CASES = [(d, mode, padding) for d in (2, 3) for mode in ("bilinear", "nearest", "bicubic")
               for padding in ("zeros", "border", "reflection") if not (mode == "bicubic" and d == 3)]


def _grid_sampled(lib, array, grid, layout, grad_out, **kwargs):
    x = _laid_out(lib, array, layout)
    g = lib.tensor(grid, requires_grad=True)
    y = lib.nn.functional.grid_sample(x, g, **kwargs)
    if grad_out is not None:
        y.backward(lib.tensor(grad_out))
    return y, x, g


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "transposed"])
@pytest.mark.parametrize("d,mode,padding", _GRID_CASES, ids=[f"{m}{d}d-{p}" for d, m, p in _GRID_CASES])
def test_grid_sample_values_gradients_and_node_as_torch(d, mode, padding, layout, dtype):
    # a seed of the case's own (str's hash() differs from process to process with PYTHONHASHSEED)
    rng = np.random.default_rng(zlib.crc32(repr((d, mode, padding, layout, dtype)).encode()))
    array = rng.standard_normal(_shape(d)).astype(dtype)
    grid = (rng.random((2,) + (4, 3, 2)[:d] + (d,)) * 2.6 - 1.3).astype(dtype)  # some points outside
    grid[0, 0, 0] = grid[0, 0, 1]  # two points reading the same pixels: their gradients add
    for align_corners in (False, True):
        kwargs = {"mode": mode, "padding_mode": padding, "align_corners": align_corners}
        y_torch, _, _ = _grid_sampled(torch, array, grid, layout, None, **kwargs)
        grad_out = rng.standard_normal(tuple(y_torch.shape)).astype(dtype)
        expected, x_expected, g_expected = _grid_sampled(torch, array, grid, layout, grad_out, **kwargs)
        got, x_got, g_got = _grid_sampled(chainrule, array, grid, layout, grad_out, **kwargs)
        tolerance = 1e-5 if dtype == "float32" else 1e-10
        np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=tolerance, atol=tolerance)
        np.testing.assert_allclose(x_got.grad.numpy(), x_expected.grad.numpy(), rtol=tolerance, atol=tolerance)
        np.testing.assert_allclose(g_got.grad.numpy(), g_expected.grad.numpy(), rtol=10 * tolerance, atol=10 * tolerance)
        assert got.grad_fn.name() == expected.grad_fn.name()
        assert (got.dtype.itemsize, x_got.grad.stride()) == (expected.dtype.itemsize, x_expected.grad.stride())


@pytest.mark.parametrize("mode,padding", [("bilinear", "zeros"), ("bilinear", "reflection"), ("bicubic", "border"),
                                          ("nearest", "zeros")])
def test_grid_sample_gradient_and_its_gradient_by_finite_differences(mode, padding):
    generator = chainrule.Generator().manual_seed(7)
    x = chainrule.randn(1, 2, 4, 3, dtype=chainrule.float64, generator=generator, requires_grad=True)
    # kept away from pixel edges, where the gradient in the grid jumps
    grid = (chainrule.rand(1, 3, 2, 2, dtype=chainrule.float64, generator=generator) * 1.6 - 0.8 + 0.013)
    grid.requires_grad_(mode != "nearest")

    def fn(x, grid):
        return chainrule.nn.functional.grid_sample(x, grid, mode=mode, padding_mode=padding, align_corners=False)

    assert chainrule.autograd.gradcheck(fn, (x, grid))
    assert chainrule.autograd.gradgradcheck(fn, (x, grid))


def test_grid_sample_of_no_points_as_torch():
    results = []
    for lib in (torch, chainrule):
        x = lib.ones(2, 3, 4, 4, requires_grad=True)
        grid = lib.zeros(2, 0, 5, 2, requires_grad=True)
        y = lib.nn.functional.grid_sample(x, grid, align_corners=False)
        y.sum().backward()
        results.append((tuple(y.shape), x.grad.numpy().tolist(), tuple(grid.grad.shape)))
    assert results[1] == results[0]


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
@pytest.mark.parametrize("in_size", [3, 7, 13, 131, 257])
@pytest.mark.parametrize("sizes", [{"scale_factor": 2.7}, {"scale_factor": 1.3}, {"scale_factor": 0.37}, {"size": 11},
                                   {"size": 500}, {"scale_factor": 3.0}],
                         ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
def test_nearest_gradient_goes_where_torchs_float32_map_sends_it(mode, in_size, sizes):
    # torch's nearest forward maps with a double scale, its backward with a float32 one (a copy
    # where the sizes match): distinct gradients show which input each output's reaches
    grads = []
    for lib in (torch, chainrule):
        x = lib.zeros(1, 2, in_size, dtype=lib.float64, requires_grad=True)
        y = lib.nn.functional.interpolate(x, mode=mode, **sizes)
        y.backward(lib.arange(float(y.numel()), dtype=lib.float64).reshape(y.shape))
        grads.append(x.grad.numpy())
    np.testing.assert_array_equal(grads[1], grads[0])
