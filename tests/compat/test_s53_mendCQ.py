"""s53 mendCQ: what a TorchDispatchMode sees, continued from mendCJ. A linear of a column-major (transposed) input
or of a sliced weight runs its backward as torch's t/mm formulas (mm_mat1_backward, mm_mat2_backward) in torch's
operand order, which the fused rule now takes too, so the mode's replay gives the rule's bits. Each logged
sequence is recorded live from torch."""

import contextlib
import itertools

import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402
from chainrule.utils import _python_dispatch  # noqa: E402
from tests._profile import in_ci  # noqa: E402
from tests.compat._dispatch_checks import PassingMode, assert_a_passing_mode_keeps  # noqa: E402
from tests.compat.test_s45_mendAI import _line_logger, _logged  # noqa: E402

LAYOUTS = {  # the input (rows or a transposed copy) and the weight (contiguous, sliced, a transposed copy)
    "x_t": ("t", "c"), "x_t_w_sliced": ("t", "s"), "w_sliced": ("c", "s"), "w_t": ("c", "T"), "x_t_w_t": ("t", "T"),
    "plain": ("c", "c")}


def _linear_run(lib, mode, layout, shape, requires, bias: bool, create_graph: bool = False):
    """(the lines a logging mode wrote, the gradients) of a linear of ``layout`` and (rows, in, out) ``shape``."""
    rows, inner, out = shape
    rng = np.random.default_rng(rows * 7 + inner + out)
    x_data, w_data, b_data = rng.standard_normal((rows, inner)), rng.standard_normal((out, inner + 2)), \
        rng.standard_normal(out)
    x = lib.tensor(x_data.T.copy() if layout[0] == "t" else x_data, requires_grad=requires[0])
    w = lib.tensor(w_data, requires_grad=requires[1])
    b = lib.tensor(b_data, requires_grad=bias)
    weight = {"s": lambda: w[:, :inner], "c": lambda: w[:, 2:].contiguous(),
              "T": lambda: w[:, :inner].t().contiguous().t()}[layout[1]]()
    leaves = [t for t in (x, w, b) if t.requires_grad]
    seed = lib.tensor(rng.standard_normal((rows, out)))
    lines = []
    with _line_logger(lib, lines) if mode == "log" else mode:
        y = lib.nn.functional.linear(x.t() if layout[0] == "t" else x, weight, b if bias else None)
        grads = lib.autograd.grad(y, leaves, seed, create_graph=create_graph)
        if create_graph:
            sum(g.pow(2).sum() for g in grads).backward()
    return lines, [g.detach().numpy() for g in grads] + [t.grad.numpy() for t in leaves if t.grad is not None]


LINEAR_CASES = in_ci(list(itertools.product(sorted(LAYOUTS), [(1, 1, 1), (1, 3, 4), (5, 1, 3), (6, 5, 7)],
                                             [(True, True), (True, False), (False, True)], [True, False])),
                     48, seed=53, kinds=lambda case: [("layout", case[0]), ("shape", case[1]),
                                                      ("requires", case[2], case[3]), (case[0], case[2])])


@pytest.mark.parametrize("layout, shape, requires, bias", LINEAR_CASES)
def test_a_linears_backward_reaches_a_mode_as_torchs_t_and_mm_in_torchs_order(layout, shape, requires, bias):
    case = (LAYOUTS[layout], shape, requires, bias)
    ours, our_grads = _linear_run(chainrule, "log", *case)
    theirs, their_grads = _linear_run(real_torch, "log", *case)
    assert ours == theirs
    _, plain = _linear_run(chainrule, contextlib.nullcontext(), *case)
    _, passed = _linear_run(chainrule, PassingMode(), *case)
    for got, without, through, expected in zip(our_grads, plain, passed, their_grads):
        np.testing.assert_array_equal(got, without)
        np.testing.assert_array_equal(through, without)
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_linears_gradients_in_torchs_operand_order_keep_their_values_and_second_order(layout, dtype):
    def run(lib, create_graph):
        with (chainrule if lib is chainrule else real_torch).autograd.set_grad_enabled(True):
            lib.set_default_dtype(getattr(lib, dtype))
            try:
                return _linear_run(lib, contextlib.nullcontext(), LAYOUTS[layout], (17, 33, 9), (True, True), True,
                                   create_graph)[1]
            finally:
                lib.set_default_dtype(lib.float32)

    for create_graph in (False, True):
        for got, expected in zip(run(chainrule, create_graph), run(real_torch, create_graph)):
            assert got.dtype == expected.dtype
            np.testing.assert_allclose(got, expected, rtol=1e-4 if dtype == "float32" else 1e-10, atol=1e-4)


def _F(lib):
    return lib.nn.functional


def _backward(program):
    def run(lib, a):
        out = program(lib, a)
        (out.sum() if out.dim() else out).backward()
    return run


SLICES = {  # (inputs as test_s45_mendAI's: lw (4, 3), x3 (2, 3, 4), emb (10, 3))
    "whole": lambda lib, a: a["lw"][:],
    "whole_columns": lambda lib, a: a["lw"][:, :3],
    "past_the_columns": lambda lib, a: a["lw"][:, 0:5],
    "ellipsis": lambda lib, a: a["x3"][...],
    "whole_backward": _backward(lambda lib, a: a["lw"].requires_grad_()[:] * 2),
    "whole_columns_backward": _backward(lambda lib, a: a["lw"].requires_grad_()[:, :3] * 2),
    "ellipsis_backward": _backward(lambda lib, a: a["x3"].requires_grad_()[...].exp()),
    "select_then_slice_backward": _backward(lambda lib, a: a["x3"].requires_grad_()[0, 1:] * 2),
    "select_backward": _backward(lambda lib, a: a["x3"].requires_grad_()[:, 2].sin()),
    "negative_select_backward": _backward(lambda lib, a: a["emb"].requires_grad_()[-2] * 2),
    "two_slices_backward": _backward(lambda lib, a: a["lw"].requires_grad_()[1:, :2] * 2),
    "stepped_slices_backward": _backward(lambda lib, a: a["x3"].requires_grad_()[:, ::2, 1:] * 2),
}


@pytest.mark.parametrize("name", sorted(SLICES))
def test_a_whole_slice_alias_or_select_and_its_gradient_reach_a_mode_as_torchs(name):
    assert _logged(chainrule, SLICES[name]) == _logged(real_torch, SLICES[name])


def _editing_mode(lib, op: str, edit, seen: list):
    """A dispatch mode of ``lib`` that replaces the arguments of ``op`` by ``edit(args)``, noting each call in ``seen``."""
    base = real_torch.utils._python_dispatch.TorchDispatchMode if lib is real_torch else \
        _python_dispatch.TorchDispatchMode

    class Edit(base):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if str(func) == op:
                seen.append(str(func))
                args = edit(args)
            return func(*args, **(kwargs or {}))

    return Edit()


def test_a_handler_editing_select_backward_gets_what_it_asked_for():
    def run(lib):
        seen = []
        x = lib.tensor(np.random.default_rng(4).standard_normal((6, 3)), requires_grad=True)
        out = (x[3].exp() * 2).sum()
        with _editing_mode(lib, "aten.select_backward.default", lambda args: (*args[:3], 0), seen):
            out.backward()
        assert seen == ["aten.select_backward.default"]
        return x.grad.numpy()

    np.testing.assert_array_equal(run(chainrule), run(real_torch))


@pytest.mark.parametrize("key", [(slice(None),), (slice(None), slice(0, 7)), Ellipsis, (1, slice(None)), 2,
                                 slice(None), (slice(None), 3)])
def test_an_alias_or_selects_gradient_under_a_passing_mode_keeps_its_bits(key):
    assert_a_passing_mode_keeps(lambda lib, x: (x[key].exp() * x.sin().sum()).sum(), (5, 4), seed=9)


def _nan_pair(lib, kind: str):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 4))
    y = x + rng.standard_normal((3, 4)) * 1e-5
    x[0, 0] = y[0, 0] = np.nan
    x[1, 2] = np.nan
    y[2, 1] = np.inf
    if kind == "int64":
        return lib.tensor([1, 2, 3]), lib.tensor([1, 4, 3])
    if kind == "broadcast":
        return lib.tensor(x, dtype=lib.float32), lib.tensor(y[0], dtype=lib.float32)
    return lib.tensor(x, dtype=getattr(lib, kind)), lib.tensor(y, dtype=getattr(lib, kind))


@pytest.mark.parametrize("kind", ["float32", "float64", "int64", "broadcast"])
@pytest.mark.parametrize("kwargs", [{"equal_nan": True}, {"rtol": 0.5, "atol": 0.1, "equal_nan": True},
                                    {"rtol": 0, "atol": 0, "equal_nan": True}])
def test_isclose_with_equal_nan_reaches_a_mode_as_torchs_composite(kind, kwargs):
    def run(lib):
        lines = []
        a, b = _nan_pair(lib, kind)
        with _line_logger(lib, lines):
            close = lib.isclose(a, b, **kwargs)
        return lines, close.numpy(), lib.isclose(a, b, **kwargs).numpy()

    (ours, our_close, plain), (theirs, their_close, _) = run(chainrule), run(real_torch)
    assert ours == theirs
    np.testing.assert_array_equal(our_close, their_close)
    np.testing.assert_array_equal(our_close, plain)


TESTS = {  # elementwise tests and bitwise ops no Function records: torch's one aten op each (isfinite its composite)
    "isnan": lambda lib, a: a["x"].isnan(),
    "isinf": lambda lib, a: lib.isinf(a["x"]),
    "isposinf": lambda lib, a: a["x"].isposinf(),
    "isneginf": lambda lib, a: lib.isneginf(a["x"]),
    "signbit": lambda lib, a: a["x"].signbit(),
    "isfinite": lambda lib, a: a["x"].isfinite(),
    "and": lambda lib, a: (a["x"] > 0) & (a["y"] > 0),
    "or": lambda lib, a: (a["x"] > 0).bitwise_or(a["y"] > 0),
    "xor": lambda lib, a: (a["x"] > 0) ^ (a["y"] > 0),
    "and_scalar": lambda lib, a: lib.bitwise_and(a["idx"], 3),
}


@pytest.mark.parametrize("name", sorted(TESTS))
def test_an_elementwise_test_or_bitwise_op_reaches_a_mode_as_torchs_op(name):
    assert _logged(chainrule, TESTS[name]) == _logged(real_torch, TESTS[name])


def test_a_handler_editing_isnan_gets_what_it_asked_for():
    def run(lib):
        base = real_torch.utils._python_dispatch.TorchDispatchMode if lib is real_torch else \
            _python_dispatch.TorchDispatchMode

        class Edit(base):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                if str(func) == "aten.isnan.default":
                    args = (args[0] * float("nan"),)
                return func(*args, **(kwargs or {}))

        x = lib.tensor([1.0, float("nan"), 3.0])
        with Edit():
            return (x.isnan() & (x > 0)).numpy()

    np.testing.assert_array_equal(run(chainrule), run(real_torch))


IN_PLACE = {  # torch shows no trailing argument equal to its schema's default (elu_'s alpha=1 is an int: 1.0 shows)
    "leaky_relu_": lambda lib, a: _F(lib).leaky_relu_(a["x"].clone()),
    "leaky_relu_slope_": lambda lib, a: _F(lib).leaky_relu_(a["x"].clone(), 0.2),
    "leaky_relu_inplace": lambda lib, a: _F(lib).leaky_relu(a["x"].clone(), inplace=True),
    "leaky_relu_module": lambda lib, a: lib.nn.LeakyReLU(inplace=True)(a["x"].clone()),
    "elu_": lambda lib, a: _F(lib).elu_(a["x"].clone()),
    "elu_alpha_": lambda lib, a: _F(lib).elu_(a["x"].clone(), 0.5),
    "elu_inplace": lambda lib, a: _F(lib).elu(a["x"].clone(), inplace=True),
    "elu_module": lambda lib, a: lib.nn.ELU(inplace=True)(a["x"].clone()),
    "celu_": lambda lib, a: _F(lib).celu_(a["x"].clone()),
    "celu_inplace": lambda lib, a: _F(lib).celu(a["x"].clone(), 1.0, inplace=True),
    "hardtanh_": lambda lib, a: _F(lib).hardtanh_(a["x"].clone()),
    "hardtanh_bounds_": lambda lib, a: _F(lib).hardtanh_(a["x"].clone(), -0.5, 0.5),
    "hardtanh_inplace": lambda lib, a: _F(lib).hardtanh(a["x"].clone(), inplace=True),
}


@pytest.mark.parametrize("name", sorted(IN_PLACE))
def test_an_in_place_activation_reaches_a_mode_without_its_schemas_defaults(name):
    assert _logged(chainrule, IN_PLACE[name]) == _logged(real_torch, IN_PLACE[name])


@pytest.mark.parametrize("name", ["elu_", "hardtanh_", "leaky_relu_"])
def test_an_in_place_activations_default_gives_torchs_values(name):
    def run(lib, op):
        x = lib.tensor(np.random.default_rng(3).standard_normal((4, 5)) * 2, dtype=lib.float32)
        return op(lib, x).numpy()

    in_place = run(chainrule, lambda lib, x: getattr(_F(lib), name)(x))
    np.testing.assert_array_equal(in_place, run(chainrule, lambda lib, x: getattr(_F(lib), name[:-1])(x)))
    np.testing.assert_allclose(in_place, run(real_torch, lambda lib, x: getattr(_F(lib), name)(x)), rtol=1e-6,
                               atol=1e-7)


def _unpooled(lib, a, d: int, backward: bool):
    image = a["img"] if d == 2 else a["img"].unsqueeze(2).expand(1, 2, 3, 5, 5).contiguous()
    x = image.requires_grad_() if backward else image
    values, indices = getattr(_F(lib), f"max_pool{d}d")(x, 2, 2, return_indices=True)
    out = getattr(_F(lib), f"max_unpool{d}d")(values * 1, indices, 2, 2, output_size=list(x.shape[2:]))
    if backward:
        (out * out).sum().backward()


UNPOOLS = {  # 2-d's forward and 2-d's and 3-d's backward (torch's 3-d forward takes a stride and padding not kept)
    "max_unpool2d": lambda lib, a: _unpooled(lib, a, 2, False),
    "max_unpool2d_backward": lambda lib, a: _unpooled(lib, a, 2, True),
    "gather_negative_dim": lambda lib, a: a["x"].gather(-1, lib.tensor([[0, 1], [2, 0]])),
}


@pytest.mark.parametrize("name", sorted(UNPOOLS))
def test_a_max_unpool_and_its_gradient_reach_a_mode_as_torchs_ops(name):
    assert _logged(chainrule, UNPOOLS[name]) == _logged(real_torch, UNPOOLS[name])


def test_a_max_unpool3d_gradient_reaches_a_mode_as_torchs_gather():
    def backward_lines(lib):
        return [line for line in _logged(lib, lambda lib, a: _unpooled(lib, a, 3, True)) if "max_unpool" not in line]

    assert backward_lines(chainrule) == backward_lines(real_torch)


@pytest.mark.parametrize("d", [2, 3])
def test_a_max_unpool_under_a_passing_mode_keeps_its_value_and_gradient(d):
    def program(lib, x):
        values, indices = getattr(_F(lib), f"max_pool{d}d")(x, 2, 2, return_indices=True)
        return (getattr(_F(lib), f"max_unpool{d}d")(values.exp(), indices, 2, 2, output_size=list(x.shape[2:])) *
                x).sum()

    assert_a_passing_mode_keeps(program, (2, 3) + (5,) * d, seed=12)


def test_a_handler_editing_max_unpool2ds_output_size_gets_what_it_asked_for():
    def run(lib):
        seen = []
        x = lib.tensor(np.random.default_rng(13).standard_normal((1, 2, 4, 4)), dtype=lib.float32)
        values, indices = _F(lib).max_pool2d(x, 2, 2, return_indices=True)
        with _editing_mode(lib, "aten.max_unpool2d.default", lambda args: (*args[:2], [6, 6]), seen):
            out = _F(lib).max_unpool2d(values, indices, 2, 2)
        assert seen == ["aten.max_unpool2d.default"]
        return out.numpy()

    np.testing.assert_array_equal(run(chainrule), run(real_torch))


def test_allclose_reaches_a_mode_as_torchs_one_op_without_its_defaults():
    def run(lib):
        lines = []
        a, b = _nan_pair(lib, "float32")
        with _line_logger(lib, lines):
            found = (lib.allclose(a, b), lib.allclose(a, b, equal_nan=True), a.allclose(b, 0.1),
                     lib.allclose(a, a.clone(), 1e-05, 0.5, True))
        return lines, found

    assert run(chainrule) == run(real_torch)
