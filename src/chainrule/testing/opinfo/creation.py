"""Creation ops (chainrule/ops/creation.py): ranges, constants, identity, and the *_like / new_* forms.

Uninitialised memory (``empty``) is compared after ``zero_()``: the shape, dtype and layout are what
the sample checks. Creation from data (``tensor``, ``as_tensor``, ...) and random draws are not ops
(see ``NOT_OPS`` in tests/test_op_coverage.py).
"""

from __future__ import annotations

from .core import OpCase, OpInfo, noncontig, randn


def _constant(name: str, *cases: OpCase, methods: tuple[str, ...] = ()) -> OpInfo:
    return OpInfo(name, "creation", lambda: list(cases), methods=methods, supports_autograd=False)


def _like(name: str, call) -> OpInfo:
    """``name(x, ...)``: the input's shape and dtype, never its values or gradient."""

    def samples() -> list[OpCase]:
        return [OpCase(name, call, [randn(2, 3)]),
                OpCase(f"{name}_noncontig", call, [noncontig(randn(3, 4))]),
                OpCase(f"{name}_dtype", lambda lib, x: call(lib, x, dtype=lib.float64), [randn(2)])]

    return OpInfo(name, "creation", samples, supports_autograd=False)


def _new(name: str, call) -> OpInfo:
    """``x.new_*(size)``: x's dtype, the given size."""

    def samples() -> list[OpCase]:
        return [OpCase(name, lambda lib, x: call(x, (2, 3)), [randn(4)]),
                OpCase(f"{name}_int", lambda lib, x: call(x, (3,)), [randn(4).astype(int)]),
                OpCase(f"{name}_dtype", lambda lib, x: call(x, (1, 2), dtype=lib.float64), [randn(4)])]

    return OpInfo(name, "creation", samples, methods=(name,), supports_autograd=False)


op_db: list[OpInfo] = [
    _constant("arange",
              OpCase("arange", lambda lib: lib.arange(5), []),
              OpCase("arange_float_step", lambda lib: lib.arange(0.5, 3.0, 0.25), []),
              OpCase("arange_negative_step", lambda lib: lib.arange(4, -3, -2), []),
              OpCase("arange_dtype", lambda lib: lib.arange(1, 4, dtype=lib.float64), [])),
    _constant("linspace",
              OpCase("linspace", lambda lib: lib.linspace(-1.0, 2.0, 7), []),
              OpCase("linspace_one", lambda lib: lib.linspace(3, 5, 1), []),
              OpCase("linspace_dtype", lambda lib: lib.linspace(0, 1, 4, dtype=lib.float64), [])),
    _constant("logspace",
              OpCase("logspace", lambda lib: lib.logspace(-2.0, 2.0, 5), []),
              OpCase("logspace_base", lambda lib: lib.logspace(0, 3, 4, base=2.0), [])),
    _constant("eye",
              OpCase("eye", lambda lib: lib.eye(3), []),
              OpCase("eye_rect", lambda lib: lib.eye(2, 4, dtype=lib.float64), [])),
    _constant("full",
              OpCase("full", lambda lib: lib.full((2, 3), 1.5), []),
              OpCase("full_int", lambda lib: lib.full((3,), 7), []),
              OpCase("full_bool", lambda lib: lib.full((2, 2), True), [])),
    _constant("zeros",
              OpCase("zeros", lambda lib: lib.zeros(2, 3), []),
              OpCase("zeros_size_tuple", lambda lib: lib.zeros((0, 4), dtype=lib.int64), [])),
    _constant("ones",
              OpCase("ones", lambda lib: lib.ones(3), []),
              OpCase("ones_dtype", lambda lib: lib.ones((2, 1, 2), dtype=lib.float64), [])),
    _constant("empty",
              OpCase("empty", lambda lib: lib.empty(2, 3).zero_(), []),
              OpCase("empty_dtype", lambda lib: lib.empty((4,), dtype=lib.int64).zero_(), [])),
    _like("zeros_like", lambda lib, x, **kw: lib.zeros_like(x, **kw)),
    _like("ones_like", lambda lib, x, **kw: lib.ones_like(x, **kw)),
    _like("full_like", lambda lib, x, **kw: lib.full_like(x, -2.5, **kw)),
    _like("empty_like", lambda lib, x, **kw: lib.empty_like(x, **kw).zero_()),
    _new("new_zeros", lambda x, size, **kw: x.new_zeros(size, **kw)),
    _new("new_ones", lambda x, size, **kw: x.new_ones(size, **kw)),
    _new("new_full", lambda x, size, **kw: x.new_full(size, 3, **kw)),
    _new("new_empty", lambda x, size, **kw: x.new_empty(size, **kw).zero_()),
]
