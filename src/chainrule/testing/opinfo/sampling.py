"""affine_grid and grid_sample: bilinear and nearest in every padding mode x align_corners, 2-D and 3-D,
bicubic (2-D only) in each padding mode; differentiated in the input and the grid (theta for affine_grid)."""

from __future__ import annotations

import itertools

from .core import OpCase, OpInfo, randn, rng


def _F(lib):
    return lib.nn.functional


def _grid(*shape, seed: int):
    # past [-1, 1] on purpose, so that every padding mode has points to pad
    return rng(seed).uniform(-1.25, 1.25, shape)


def _grid_sample_cases() -> list[OpCase]:
    cases = []
    for mode, padding, align in itertools.product(("bilinear", "nearest"), ("zeros", "border", "reflection"),
                                                  (False, True)):
        def fn(lib, x, g, mode=mode, padding=padding, align=align):
            return _F(lib).grid_sample(x, g, mode=mode, padding_mode=padding, align_corners=align)

        # nearest reads whole pixels: its grid gradient is zero, finite differences would only see jumps
        grad = [True, mode == "bilinear"]
        tag = f"{mode}_{padding}{'_align' if align else ''}"
        # second derivatives of a few cases: the finite differences of the whole matrix cost minutes
        twice = mode == "bilinear" and (padding == "zeros" or (padding == "reflection" and not align))
        batch = 2 if padding == "zeros" else 1
        cases.append(OpCase(f"grid_sample_{tag}", fn, [randn(batch, 2, 3, 4), _grid(batch, 3, 2, 2, seed=1)],
                            grad=grad, gradgradcheck=twice))
        cases.append(OpCase(f"grid_sample_3d_{tag}", fn, [randn(1, 1, 2, 3, 3, seed=2), _grid(1, 2, 1, 2, 3, seed=3)],
                            grad=grad, gradgradcheck=twice and padding == "zeros" and not align))
    for padding, align in (("zeros", False), ("border", True), ("reflection", False)):
        cases.append(OpCase(f"grid_sample_bicubic_{padding}{'_align' if align else ''}",
                            lambda lib, x, g, padding=padding, align=align: _F(lib).grid_sample(
                                x, g, mode="bicubic", padding_mode=padding, align_corners=align),
                            [randn(1, 2, 4, 3, seed=6), _grid(1, 2, 3, 2, seed=7)], gradgradcheck=padding == "zeros"))
    cases.append(OpCase("grid_sample_default", lambda lib, x, g: _F(lib).grid_sample(x, g, align_corners=False),
                        [randn(1, 1, 5, 5, seed=4), _grid(1, 4, 4, 2, seed=5)], gradgradcheck=False))
    return cases


def _affine_grid_cases() -> list[OpCase]:
    return [
        OpCase("affine_grid", lambda lib, t: _F(lib).affine_grid(t, (2, 3, 4, 5), align_corners=False),
               [randn(2, 2, 3)]),
        OpCase("affine_grid_align", lambda lib, t: _F(lib).affine_grid(t, [2, 1, 3, 2], align_corners=True),
               [randn(2, 2, 3, seed=1)]),
        OpCase("affine_grid_3d", lambda lib, t: _F(lib).affine_grid(t, (1, 2, 2, 3, 4), align_corners=False),
               [randn(1, 3, 4, seed=2)]),
        OpCase("affine_grid_3d_align", lambda lib, t: _F(lib).affine_grid(t, (2, 1, 3, 2, 2), align_corners=True),
               [randn(2, 3, 4, seed=3)]),
        OpCase("affine_grid_unit", lambda lib, t: _F(lib).affine_grid(t, (1, 1, 1, 3), align_corners=False),
               [randn(1, 2, 3, seed=4)]),
    ]


op_db: list[OpInfo] = [
    OpInfo("nn.functional.grid_sample", "sampling", _grid_sample_cases),
    OpInfo("nn.functional.affine_grid", "sampling", _affine_grid_cases),
]
