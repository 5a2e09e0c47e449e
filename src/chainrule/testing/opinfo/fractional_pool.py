"""fractional_max_pool2d/3d with fixed ``_random_samples`` (so torch draws the same windows), and the
3-d lp_pool and max_unpool: values, indices, gradients and node names against torch."""

from __future__ import annotations

from .core import OpCase, OpInfo, distinct, rng


def _samples(*shape):
    return rng(7).random(shape)


def _frac2d(lib, x, samples, **kwargs):
    return lib.nn.functional.fractional_max_pool2d(x, _random_samples=samples.detach(), **kwargs)


def _frac3d(lib, x, samples, **kwargs):
    return lib.nn.functional.fractional_max_pool3d(x, _random_samples=samples.detach(), **kwargs)


def _fractional_cases() -> list[OpCase]:
    return [
        OpCase("fractional_max_pool2d", lambda lib, x, s: _frac2d(lib, x, s, kernel_size=(2, 3), output_size=(4, 5)),
               [distinct(2, 3, 9, 11), _samples(2, 3, 2)], grad=[True, False]),
        OpCase("fractional_max_pool2d_ratio_indices",
               lambda lib, x, s: _frac2d(lib, x, s, kernel_size=2, output_ratio=(0.5, 0.5), return_indices=True),
               [distinct(1, 2, 10, 10, seed=1), _samples(1, 2, 2)], grad=[True, False]),
        OpCase("fractional_max_pool2d_one_output",
               lambda lib, x, s: _frac2d(lib, x, s, kernel_size=3, output_size=1),
               [distinct(1, 1, 5, 5, seed=2), _samples(1, 1, 2)], grad=[True, False]),
        OpCase("fractional_max_pool2d_with_indices",
               lambda lib, x, s: lib.nn.functional.fractional_max_pool2d_with_indices(
                   x, 2, output_size=(3, 3), _random_samples=s.detach()),
               [distinct(1, 2, 7, 8, seed=3), _samples(1, 2, 2)], grad=[True, False]),
        OpCase("fractional_max_pool3d", lambda lib, x, s: _frac3d(lib, x, s, kernel_size=(2, 2, 3), output_size=(3, 4, 3)),
               [distinct(2, 2, 6, 7, 8, seed=4), _samples(2, 2, 3)], grad=[True, False]),
        OpCase("fractional_max_pool3d_with_indices",
               lambda lib, x, s: lib.nn.functional.fractional_max_pool3d_with_indices(
                   x, 2, output_ratio=(0.5, 0.5, 0.5), _random_samples=s.detach()),
               [distinct(1, 1, 6, 6, 6, seed=5), _samples(1, 1, 3)], grad=[True, False]),
    ]


def _pool3d_cases() -> list[OpCase]:
    def unpool(lib, x):
        out, indices = lib.nn.functional.max_pool3d(x, 2, return_indices=True)
        return lib.nn.functional.max_unpool3d(out, indices, 2)

    return [
        OpCase("lp_pool3d", lambda lib, x: lib.nn.functional.lp_pool3d(x, 2, 2), [distinct(1, 2, 4, 4, 4, seed=6)]),
        OpCase("lp_pool3d_p3_stride", lambda lib, x: lib.nn.functional.lp_pool3d(x * x + 0.5, 3, (2, 1, 2), 1),
               [distinct(2, 1, 3, 4, 5, seed=7)]),
        OpCase("max_unpool3d", unpool, [distinct(1, 2, 4, 4, 4, seed=8)]),
        OpCase("max_unpool3d_output_size",
               lambda lib, x: lib.nn.functional.max_unpool3d(*lib.nn.functional.max_pool3d(x, 2, return_indices=True),
                                                             2, output_size=(5, 5, 5)),
               [distinct(1, 1, 5, 5, 5, seed=9)]),
    ]


def _pick(table, prefix):
    return lambda: [c for c in table() if c.name.startswith(prefix)]


op_db = [
    OpInfo("nn.functional.fractional_max_pool2d", "fractional_pool", _pick(_fractional_cases, "fractional_max_pool2d")),
    OpInfo("nn.functional.fractional_max_pool3d", "fractional_pool", _pick(_fractional_cases, "fractional_max_pool3d")),
    OpInfo("nn.functional.fractional_max_pool2d_with_indices", "fractional_pool",
           _pick(_fractional_cases, "fractional_max_pool2d_with")),
    OpInfo("nn.functional.fractional_max_pool3d_with_indices", "fractional_pool",
           _pick(_fractional_cases, "fractional_max_pool3d_with")),
    OpInfo("nn.functional.lp_pool3d", "fractional_pool", _pick(_pool3d_cases, "lp_pool3d")),
    OpInfo("nn.functional.max_unpool3d", "fractional_pool", _pick(_pool3d_cases, "max_unpool3d")),
]
