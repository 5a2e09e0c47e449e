"""s52 mendCJ: what a TorchDispatchMode sees, continued from mendCB. The activations elu (selu), celu, hardtanh
(relu6), leaky_relu and logsigmoid reach a mode with torch's schema arguments (``log_sigmoid_forward``), and
their in-place forms as ``.default``; during backward, bmm's gradients as torch's transpose(1, 2) and bmm (mat2's
first), the sum of a gradient used twice as ``add.Tensor``, a broadcast gradient's reduction as torch's
``sum.dim_IntList`` (kept) and ``view``, and a padded max pool's input gradient stolen by AccumulateGrad
(``detach``), as its contiguous result is in torch; a transposed convolution's forward as torch's
``convolution(..., transposed=True, output_padding, groups)``. Of two nested modes the outer one sees what the inner
one's handler runs as torch shows it: the call as written (softmax(-1), t()) and the factory calls (the backward's
``ones_like``, AccumulateGrad's ``detach``). isclose reaches a mode as torch's composite's ops (eq, mul.Scalar, abs,
add.Scalar, sub, isfinite's abs/ne/eq/mul, le, bitwise_and_, bitwise_or_), a conjugated operand resolved by clone.
A slice's gradient is torch's slice_backward(grad, input_sizes, dim, start, end, step). Each logged sequence is
recorded live from torch."""

import contextlib

import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402
from chainrule.utils import _python_dispatch  # noqa: E402
from tests.compat._dispatch_checks import (  # noqa: E402
    PassingMode,
    assert_a_handler_edit_reaches,
    assert_a_passing_mode_keeps,
)
from tests.compat.test_s45_mendAI import _inputs, _line_logger, _logged  # noqa: E402


def _F(lib):
    return lib.nn.functional


def _backward(program):
    def run(lib, a):
        out = program(lib, a)
        (out.sum() if out.dim() else out).backward()
    return run


ACTIVATIONS = {
    "elu": lambda lib, a: _F(lib).elu(a["x"]),
    "elu_alpha": lambda lib, a: _F(lib).elu(a["x"], 0.5),
    "selu": lambda lib, a: lib.selu(a["x"]),
    "celu": lambda lib, a: _F(lib).celu(a["x"]),
    "celu_alpha": lambda lib, a: _F(lib).celu(a["x"], 2.0),
    "hardtanh": lambda lib, a: _F(lib).hardtanh(a["x"]),
    "hardtanh_bounds": lambda lib, a: _F(lib).hardtanh(a["x"], -0.5, 0.5),
    "relu6": lambda lib, a: _F(lib).relu6(a["x"]),
    "leaky_relu": lambda lib, a: _F(lib).leaky_relu(a["x"]),
    "leaky_relu_slope": lambda lib, a: _F(lib).leaky_relu(a["x"], 0.2),
    "logsigmoid": lambda lib, a: _F(lib).logsigmoid(a["x"]),
    "elu_inplace": lambda lib, a: _F(lib).elu(a["x"].clone(), 0.5, inplace=True),
    "hardtanh_inplace": lambda lib, a: _F(lib).hardtanh(a["x"].clone(), inplace=True),
    "leaky_relu_inplace": lambda lib, a: _F(lib).leaky_relu(a["x"].clone(), 0.2, inplace=True),
    "elu_backward": _backward(lambda lib, a: _F(lib).elu(a["x"].requires_grad_())),
    "hardtanh_backward": _backward(lambda lib, a: _F(lib).hardtanh(a["x"].requires_grad_())),
    "leaky_relu_backward": _backward(lambda lib, a: _F(lib).leaky_relu(a["x"].requires_grad_())),
    "logsigmoid_backward": _backward(lambda lib, a: _F(lib).logsigmoid(a["x"].requires_grad_())),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_an_activation_reaches_a_mode_with_torchs_schema_arguments(name):
    assert _logged(chainrule, ACTIVATIONS[name]) == _logged(real_torch, ACTIVATIONS[name])


@pytest.mark.parametrize("name", ["elu", "selu", "celu", "hardtanh", "relu6", "leaky_relu", "logsigmoid"])
def test_an_activation_under_a_passing_mode_keeps_its_value_and_gradient(name):
    assert_a_passing_mode_keeps(lambda lib, x: (getattr(_F(lib), name)(x) * lib.arange(6.0).reshape(2, 3)).sum(),
                                (2, 3), seed=2)


def _replace(position, value):
    def edit(args):
        args = list(args)
        args[position] = value
        return tuple(args)
    return edit


ACTIVATION_EDITS = {
    "elu": ("aten.elu.default", _replace(1, 0.25), lambda lib, x: _F(lib).elu(x)),
    "celu": ("aten.celu.default", lambda args: (*args, 3.0), lambda lib, x: _F(lib).celu(x)),
    "hardtanh": ("aten.hardtanh.default", _replace(2, 0.3), lambda lib, x: _F(lib).hardtanh(x)),
    "leaky_relu": ("aten.leaky_relu.default", lambda args: (*args, 0.5), lambda lib, x: _F(lib).leaky_relu(x)),
    "logsigmoid": ("aten.log_sigmoid_forward.default", lambda args: (args[0] * 2,),
                   lambda lib, x: _F(lib).logsigmoid(x)),
}


@pytest.mark.parametrize("name", sorted(ACTIVATION_EDITS))
def test_a_handler_editing_an_activations_arguments_gets_what_it_asked_for(name):
    op, edit, program = ACTIVATION_EDITS[name]
    assert_a_handler_edit_reaches(op, edit, program, (2, 5))


BACKWARD = {
    # BmmBackward0: mat2's gradient first, each transpose(1, 2)
    "bmm": _backward(lambda lib, a: lib.bmm(a["b1"].requires_grad_(), a["b2"].requires_grad_())),
    "bmm_self_only": _backward(lambda lib, a: lib.bmm(a["b1"].requires_grad_(), a["b2"])),
    "bmm_mat2_only": _backward(lambda lib, a: lib.bmm(a["b1"], a["b2"].requires_grad_())),
    "matmul_3d": _backward(lambda lib, a: a["b1"].requires_grad_() @ a["b2"].requires_grad_()),
    "bmm_chain": _backward(lambda lib, a: lib.bmm(a["b1"].requires_grad_(), a["b2"].requires_grad_()).tanh()),
    # a value used twice: its gradients summed as aten.add.Tensor
    "fan_out_product": _backward(lambda lib, a: (lambda x: x * x)(a["x"].requires_grad_())),
    "fan_out_relu": _backward(lambda lib, a: (lambda h: h * 2 + h.exp())(lib.relu(a["x"].requires_grad_()))),
    "fan_out_leaf": _backward(lambda lib, a: (lambda x: x.exp() + x.sin())(a["x"].requires_grad_())),
    "fan_out_three": _backward(lambda lib, a: (lambda x: x.exp() + x.sin() + x.tanh())(a["x"].requires_grad_())),
    "fan_out_mlp": _backward(lambda lib, a: (lambda h: _F(lib).linear(h, a["lw"].requires_grad_())
                                             + h.sum(-1, keepdim=True))(lib.tanh(a["x"].requires_grad_()))),
    # a broadcast gradient reduced as at::sum_to: sum.dim_IntList kept, then a view dropping leading dims
    "broadcast_row": _backward(lambda lib, a: a["x"] * a["bias"][:2].reshape(2, 1).requires_grad_()),
    "broadcast_leading": _backward(lambda lib, a: a["x3"] + a["m"][0].requires_grad_()),
    "broadcast_both": _backward(lambda lib, a: a["x3"] * a["x"][:1, :].reshape(1, 3, 1).requires_grad_()),
    "broadcast_scalar": _backward(lambda lib, a: a["x"] * a["bias"][0].requires_grad_()),
    # a padded max pool's input gradient, a fresh contiguous tensor AccumulateGrad steals (detach)
    "max_pool_padded": _backward(lambda lib, a: _F(lib).max_pool2d(a["img"].requires_grad_(), 3, stride=2, padding=1)),
    "max_pool_ceil": _backward(lambda lib, a: _F(lib).max_pool2d(a["img"].requires_grad_(), 2, ceil_mode=True)),
}


@pytest.mark.parametrize("name", sorted(BACKWARD))
def test_a_mode_sees_torchs_backward_ops(name):
    assert _logged(chainrule, BACKWARD[name]) == _logged(real_torch, BACKWARD[name])


def _grads(lib, mode, program, dtype, seed: int = 3):
    rng = np.random.default_rng(seed)
    x = lib.tensor(rng.standard_normal((4, 6, 7)), dtype=dtype, requires_grad=True)
    y = lib.tensor(rng.standard_normal((4, 7, 5)), dtype=dtype, requires_grad=True)
    with mode:
        program(lib, x, y).backward()
    return x.grad.numpy(), y.grad.numpy()


GRADIENT_PROGRAMS = {
    "bmm": lambda lib, x, y: (lib.bmm(x, y) ** 2).sum(),
    "bmm_large": lambda lib, x, y: (lib.bmm(x.repeat(1, 5, 6), y.repeat(1, 6, 8)) ** 2).sum(),
    "fan_out": lambda lib, x, y: (x.exp() * x.sin() + (x @ y).tanh().sum(-1, keepdim=True)).sum(),
    "broadcast": lambda lib, x, y: (x[0] * x).sum() + (x[:, :1, :] * x).sum() + (y[:1, :, :1] * y).sum(),
    "max_pool_padded": lambda lib, x, y: _F(lib).max_pool2d(x * y.sum(), 3, stride=2, padding=1).pow(2).sum(),
}


@pytest.mark.parametrize("name", sorted(GRADIENT_PROGRAMS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_under_a_passing_mode_the_backward_gives_the_same_bits(name, dtype):
    program = GRADIENT_PROGRAMS[name]
    ours = _grads(chainrule, PassingMode(), program, getattr(chainrule, dtype))
    plain = _grads(chainrule, contextlib.nullcontext(), program, getattr(chainrule, dtype))
    theirs = _grads(real_torch, contextlib.nullcontext(), program, getattr(real_torch, dtype))
    for got, without, expected in zip(ours, plain, theirs):
        np.testing.assert_array_equal(got, without)
        np.testing.assert_allclose(got, expected, rtol=1e-4 if dtype == "float32" else 1e-10, atol=1e-5)


def _editing(lib, op: str, edit, seen: list):
    base = real_torch.utils._python_dispatch.TorchDispatchMode if lib is real_torch else \
        _python_dispatch.TorchDispatchMode

    class Edit(base):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if str(func) == op and seen is not None:
                seen.append(op)
                args = edit(list(args))
            return func(*args, **(kwargs or {}))

    return Edit()


BACKWARD_EDITS = {
    "fan_out": ("aten.add.Tensor", lambda args: [args[0] * 3, args[1]],
                lambda lib, x, y: (x.exp() * x.sin()).sum()),
    "sum_to": ("aten.sum.dim_IntList", lambda args: [args[0] * -2, *args[1:]],
               lambda lib, x, y: (x[:1, :1, :] * x.detach() ** 2).sum()),
    "bmm": ("aten.bmm.default", lambda args: [args[0] * 0.5, args[1]], lambda lib, x, y: lib.bmm(x, y.detach()).sum()),
}


@pytest.mark.parametrize("name", sorted(BACKWARD_EDITS))
def test_a_handler_editing_a_backward_op_gets_what_it_asked_for(name):
    op, edit, program = BACKWARD_EDITS[name]

    def run(lib):
        seen = []
        rng = np.random.default_rng(2)
        x = lib.tensor(rng.standard_normal((4, 6, 7)), requires_grad=True)
        y = lib.tensor(rng.standard_normal((4, 7, 5)))
        out = program(lib, x, y)
        with _editing(lib, op, edit, seen):
            out.backward()
        assert seen == [op]
        return x.grad.numpy()

    ours, theirs = run(chainrule), run(real_torch)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_a_padded_max_pools_input_gradient_is_contiguous_as_torchs():
    def run(lib):
        x = lib.tensor(np.random.default_rng(0).standard_normal((2, 3, 7, 7)), requires_grad=True)
        h = x * 1
        (grad,) = lib.autograd.grad(_F(lib).max_pool2d(h, 3, stride=2, padding=1).sum(), h)
        return grad.is_contiguous(), grad.stride(), grad.numpy()

    (ours, our_strides, our_grad), (theirs, their_strides, their_grad) = run(chainrule), run(real_torch)
    assert (ours, our_strides) == (theirs, their_strides) == (True, (147, 49, 7, 1))
    np.testing.assert_array_equal(our_grad, their_grad)


def _conv_transpose_log(lib, d: int, stride: int, padding: int, output_padding: int, groups: int, dilation: int):
    """The lines a logging mode writes for a conv_transpose{d}d (with a bias) and its backward, and its values."""
    lines = []

    rng = np.random.default_rng(d + 3 * stride)
    x = lib.tensor(rng.standard_normal((1, 2 * groups) + (4,) * d), requires_grad=True)
    w = lib.tensor(rng.standard_normal((2 * groups, 2) + (3,) * d), requires_grad=True)
    b = lib.tensor(rng.standard_normal(2 * groups), requires_grad=True)
    with _line_logger(lib, lines):
        out = getattr(_F(lib), f"conv_transpose{d}d")(x, w, b, stride, padding, output_padding, groups, dilation)
        out.sum().backward()
    return lines, [t.detach().numpy() for t in (out, x.grad, w.grad, b.grad)]


@pytest.mark.parametrize("d, stride, padding, output_padding, groups, dilation", [
    (1, 1, 0, 0, 1, 1), (1, 3, 1, 2, 2, 2), (2, 2, 0, 0, 1, 1), (2, 2, 1, 1, 1, 1), (2, 3, 1, 1, 2, 2),
    (3, 2, 1, 1, 1, 1), (3, 1, 0, 0, 2, 2)])
def test_a_transposed_convolution_reaches_a_mode_as_torchs_convolution(d, stride, padding, output_padding, groups,
                                                                       dilation):
    case = (d, stride, padding, output_padding, groups, dilation)
    (ours, our_values), (theirs, their_values) = _conv_transpose_log(chainrule, *case), _conv_transpose_log(
        real_torch, *case)
    assert ours == theirs
    for got, expected in zip(our_values, their_values):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_a_handler_editing_a_transposed_convolutions_output_padding_gets_what_it_asked_for():
    weight = np.random.default_rng(5).standard_normal((2, 3, 3, 3)).astype(np.float32)
    assert_a_handler_edit_reaches(
        "aten.convolution.default", lambda args: (*args[:7], [1, 0], args[8]),
        lambda lib, x: _F(lib).conv_transpose2d(x, lib.tensor(weight), None, stride=2), (1, 2, 4, 4))


def test_a_transposed_convolution_under_a_passing_mode_keeps_its_value_and_gradient():
    weight = np.random.default_rng(6).standard_normal((3, 2, 3, 3)).astype(np.float32)
    assert_a_passing_mode_keeps(lambda lib, x: (_F(lib).conv_transpose2d(x, lib.tensor(weight), stride=2, padding=1,
                                                                          output_padding=1) ** 2).sum(),
                                (2, 3, 4, 4), seed=4, grad_atol=1e-4)


def _nested_logs(lib, program) -> tuple:
    """The lines an outer and an inner logging mode write for ``program`` (inputs as test_s45_mendAI's)."""
    logs = ([], [])
    lib.manual_seed(0)
    inputs = _inputs(lib)
    with _line_logger(lib, logs[0]), _line_logger(lib, logs[1]):
        program(lib, inputs)
    return logs


NESTED = {
    "relu_softmax": _backward(lambda lib, a: lib.relu(a["x"].requires_grad_()).softmax(-1).mul(a["y"])),
    "linear": _backward(lambda lib, a: _F(lib).linear(a["x"].requires_grad_(), a["lw"].requires_grad_(),
                                                      a["lb"].requires_grad_())),
    "conv_pool": _backward(lambda lib, a: _F(lib).max_pool2d(lib.relu(_F(lib).conv2d(
        a["img"].requires_grad_(), a["w"].requires_grad_(), padding=1)), 3, 2, 1)),
    "mean_sum_dims": _backward(lambda lib, a: a["x3"].requires_grad_().mean(-1).sum(0) * a["x"][0]),
    "fan_out": _backward(lambda lib, a: (lambda x: x.exp() * x.t().t())(a["x"].requires_grad_())),
    "factories": lambda lib, a: lib.ones(2, 3) + lib.zeros_like(a["x"]) + lib.ones_like(a["y"]),
}


@pytest.mark.parametrize("name", sorted(NESTED))
def test_each_of_two_nested_modes_sees_torchs_lines(name):
    outer, inner = _nested_logs(chainrule, NESTED[name])
    their_outer, their_inner = _nested_logs(real_torch, NESTED[name])
    assert inner == their_inner
    assert outer == their_outer


def _isclose_pair(lib, kind: str):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 4))
    y = x + rng.standard_normal((3, 4)) * 1e-5
    x[1, 1] = y[1, 1] = np.inf
    y[2, 2] = -np.inf
    x[0, 0] = np.nan
    if kind == "float32":
        return lib.tensor(x, dtype=lib.float32), lib.tensor(y, dtype=lib.float32)
    if kind == "float64":
        return lib.tensor(x), lib.tensor(y)
    if kind == "int64":
        return lib.tensor([1, 2, 3, 10**6]), lib.tensor([1, 3, 3, 10**6 + 5])
    if kind == "bool":
        return lib.tensor([True, False, False]), lib.tensor([True, True, False])
    if kind == "broadcast":
        return lib.tensor(x), lib.tensor(y[0])
    pair = lib.complex(lib.tensor(x), lib.tensor(y)), lib.complex(lib.tensor(y), lib.tensor(x))
    return (pair[0].conj(), pair[1]) if kind == "conj" else pair


def _isclose_log(lib, kind: str, kwargs: dict):
    lines = []

    a, b = _isclose_pair(lib, kind)
    with _line_logger(lib, lines):
        close = lib.isclose(a, b, **kwargs)
    return lines, close.numpy(), lib.isclose(a, b, **kwargs).numpy()


@pytest.mark.parametrize("kind", ["float32", "float64", "int64", "bool", "complex", "conj", "broadcast"])
@pytest.mark.parametrize("kwargs", [{}, {"rtol": 0.1, "atol": 0.0}, {"rtol": 0, "atol": 0}])
def test_isclose_reaches_a_mode_as_torchs_composite(kind, kwargs):
    (ours, our_close, plain), (theirs, their_close, _) = _isclose_log(chainrule, kind, kwargs), _isclose_log(
        real_torch, kind, kwargs)
    assert ours == theirs
    np.testing.assert_array_equal(our_close, their_close)
    np.testing.assert_array_equal(our_close, plain)


SLICES = {
    "rows": _backward(lambda lib, a: a["lw"].requires_grad_()[:2] * 2),
    "every_other": _backward(lambda lib, a: a["emb"].requires_grad_()[::2].exp()),
    "columns": _backward(lambda lib, a: a["x3"].requires_grad_()[:, 1:3] * 2),
    "last_dim_stepped": _backward(lambda lib, a: a["x3"].requires_grad_()[..., 1::2].sin()),
    "negative_start": _backward(lambda lib, a: a["emb"].requires_grad_()[-3:] * 2),
    "past_the_end": _backward(lambda lib, a: a["emb"].requires_grad_()[4:100] * 2),
}


@pytest.mark.parametrize("name", sorted(SLICES))
def test_a_slices_gradient_reaches_a_mode_as_torchs_slice_backward(name):
    assert _logged(chainrule, SLICES[name]) == _logged(real_torch, SLICES[name])


def test_a_handler_editing_slice_backward_gets_what_it_asked_for():
    def run(lib):
        seen = []
        x = lib.tensor(np.random.default_rng(4).standard_normal((6, 3)), requires_grad=True)
        out = (x[1:5].exp() * 2).sum()
        with _editing(lib, "aten.slice_backward.default", lambda args: [*args[:3], 2, 6, 1], seen):
            out.backward()
        assert seen == ["aten.slice_backward.default"]
        return x.grad.numpy()

    np.testing.assert_allclose(run(chainrule), run(real_torch), rtol=1e-12)


def test_a_slices_gradient_under_a_passing_mode_keeps_its_bits():
    assert_a_passing_mode_keeps(lambda lib, x: (x[1::2, :3].exp() * x[:2].sin().sum()).sum(), (5, 4), seed=8)
