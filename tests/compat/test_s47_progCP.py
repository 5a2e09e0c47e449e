"""grid_sample at non-finite grid values, against torch (found probing around monodepth2_photometric's
``F.grid_sample(padding_mode="border")``, whose ``pix_coords / (z + eps)`` can divide by zero).

torch's 2-D CPU kernel clips a NaN pixel index (a NaN grid value, or an infinite one reflected) onto
0 under 'border' and 'reflection'; its 3-D kernel onto size - 1, and it moves any non-finite index
to -100 (outside) in every padding mode, so 'zeros' reads 0 there rather than NaN. Forward only:
torch's backward of a NaN grid has no value to compare (its CPU kernel crashes).
"""

import itertools

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

_GRID_2D = np.array([[[[np.nan, 0.0], [np.inf, 0.0], [-np.inf, 0.5], [0.2, np.nan], [np.nan, np.nan],
                       [1e30, 0.0], [-np.inf, -np.inf], [0.3, -0.7], [3.0, -2.5]]]])


def _sample(module, input, grid, dtype, **kwargs):
    dtype = getattr(module, dtype)
    out = module.nn.functional.grid_sample(module.tensor(input, dtype=dtype), module.tensor(grid, dtype=dtype), **kwargs)
    return out.double().numpy()


@pytest.mark.parametrize("mode, padding_mode, align_corners, dtype", [
    case for case in itertools.product(["bilinear", "nearest", "bicubic"], ["zeros", "border", "reflection"],
                                       [True, False], ["float32", "float64"])
])
def test_grid_sample_2d_non_finite_grid_matches_torch(mode, padding_mode, align_corners, dtype):
    input = np.arange(20.0).reshape(1, 1, 4, 5) + 100
    kwargs = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    expected = _sample(torch, input, _GRID_2D, dtype, **kwargs)
    np.testing.assert_allclose(_sample(chainrule, input, _GRID_2D, dtype, **kwargs), expected, rtol=1e-6)


@pytest.mark.parametrize("mode, padding_mode, dtype", [
    case for case in itertools.product(["bilinear", "nearest"], ["zeros", "border", "reflection"], ["float32", "float64"])
])
def test_grid_sample_3d_non_finite_grid_matches_torch(mode, padding_mode, dtype):
    # align_corners=True: with False, reflecting 1e30 differs in torch's fmod from the 2-D formula used here
    input = np.arange(40.0).reshape(1, 1, 2, 4, 5) + 100
    grid = np.concatenate([_GRID_2D, np.full(_GRID_2D.shape[:-1] + (1,), 0.2)], -1)[:, None]
    kwargs = dict(mode=mode, padding_mode=padding_mode, align_corners=True)
    np.testing.assert_allclose(_sample(chainrule, input, grid, dtype, **kwargs), _sample(torch, input, grid, dtype, **kwargs), rtol=1e-6)


@pytest.mark.parametrize("padding_mode", ["border", "reflection"])
def test_grid_sample_non_finite_grid_with_gradient_path_matches_torch_forward(padding_mode):
    """A grid that needs its gradient goes through another route (one node from grid to indices):
    the same values there, and the input's gradient (finite rows only) as torch's."""
    input = np.arange(20.0).reshape(1, 1, 4, 5) + 100
    outs = []
    for module in (torch, chainrule):
        x = module.tensor(input, requires_grad=True)
        grid = module.tensor(_GRID_2D, requires_grad=True)
        out = module.nn.functional.grid_sample(x, grid, padding_mode=padding_mode, align_corners=True)
        outs.append(out.detach().numpy())
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-6)


def test_grid_sample_half_border_nan_grid_matches_torch():
    input = np.arange(20.0).reshape(1, 1, 4, 5) + 100
    for padding_mode in ("border", "reflection"):
        kwargs = dict(padding_mode=padding_mode, align_corners=True)
        np.testing.assert_array_equal(_sample(chainrule, input, _GRID_2D, "float16", **kwargs),
                                      _sample(torch, input, _GRID_2D, "float16", **kwargs))


@pytest.mark.parametrize("input_shape, grid_shape, dtype, mode", [
    ((2, 4, 5), (1, 1, 2), "float32", "bilinear"),
    ((2, 4, 5), (2, 1, 2), "float32", "bilinear"),
    ((2, 4, 5), (2, 1, 1, 2), "float32", "bilinear"),
    ((2, 4, 5), (2, 1, 1), "float32", "bilinear"),
    ((2, 0, 5), (2, 1, 1), "float32", "bilinear"),
    ((2, 4, 5), (2, 1, 1), "bicubic", "bicubic"),
    ((1, 2, 4, 5), (1, 1, 1, 1, 3), "float32", "bilinear"),
    ((1, 2, 4, 5), (1, 3, 3), "float32", "bilinear"),
    ((1, 2, 4, 5), (1, 3, 3, 3, 2), "float32", "bilinear"),
    ((1, 2, 4, 5), (1, 3, 3, 2, 1), "float32", "bilinear"),
    ((1, 2, 3, 4, 5), (1, 3, 3, 2), "float32", "bilinear"),
    ((1, 2, 3, 4, 5), (1, 3, 3, 3), "float32", "bilinear"),
    ((1, 2, 3, 4, 5), (1, 3, 3, 3, 3), "float32", "bicubic"),
    ((1, 2, 4, 5, 6, 7), (1, 1, 1, 1, 1, 4), "float32", "bilinear"),
    ((2,), (2,), "float32", "bilinear"),
    ((1, 2, 0, 5), (1, 1, 1, 2), "int64", "bilinear"),
    ((1, 2, 0, 5), (1, 1, 1, 3, 2), "float32", "bilinear"),
    ((1, 2, 4, 5), (1, 3, 3, 3, 2), "int64", "bilinear"),
    ((2, 4, 5), (3, 1, 1), "int64", "bilinear"),
    ((1, 2, 4, 5), (1, 1, 1, 2), "int64", "bilinear"),
    ((1, 2, 4, 5, 6), (1, 1, 1, 1, 3), "int64", "bilinear"),
])
def test_grid_sample_shape_errors_in_torchs_order(input_shape, grid_shape, dtype, mode):
    """Batch size, the grid's last dimension and empty spatial dimensions are checked before the
    4-D/5-D rank (whose message names 4D for a 4-D input, 5D for any other), then the dtype."""
    errors = []
    for module in (torch, chainrule):
        kind = module.float32 if dtype == "bicubic" else getattr(module, dtype)
        with pytest.raises(Exception) as info:
            module.nn.functional.grid_sample(module.zeros(input_shape, dtype=kind), module.zeros(grid_shape, dtype=kind),
                                             mode=mode, align_corners=True)
        errors.append((type(info.value).__name__, str(info.value)))
    assert errors[1] == errors[0]
