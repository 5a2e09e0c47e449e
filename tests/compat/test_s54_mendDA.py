"""s54 mendDA: what a TorchDispatchMode sees, continued from mendCQ: roll's shifts and dims in torch's schema form,
an integer isfinite as torch's ones_like, gather's backward as torch's new_zeros and scatter_add, in-place activations
(selu_ as torch's elu_) keeping their result for a backward shown as torch's is_result form, hardtanh_'s clone, the
zeros split/chunk/unbind's backward makes for an output without a gradient, max_unpool3d with torch's stride and
padding, an unbatched max unpool with its backward, eval rrelu as torch's empty_like and rrelu_with_noise. Each logged
sequence is recorded live from torch. Then the module fuzzer's open cases: a channels-last-3d float32 (transposed)
convolution's output layout (oneDNN's or slow_conv(_transpose)3d's, as torch's use_mkldnn picks), a unary op's or
pow's size-1 dim stride (torch's, not NumPy's), avg_pool3d's words for an input smaller than its kernel whose output is
too small as well."""

import contextlib

import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402
from tests.compat._dispatch_checks import PassingMode, assert_a_passing_mode_keeps  # noqa: E402
from tests.compat.test_s45_mendAI import _line_logger, _logged  # noqa: E402
from tests.compat.test_s53_mendCQ import _editing_mode  # noqa: E402


def _backward(program):
    def run(lib, a):
        out = program(lib, a)
        (out.sum() if out.dim() else out).backward()
    return run


def _unpool(lib, x, d: int, kernel, stride, padding, output_size=None):
    functional = lib.nn.functional
    pooled, indices = getattr(functional, f"max_pool{d}d")(x, kernel, stride, padding, return_indices=True)
    return getattr(functional, f"max_unpool{d}d")(pooled * 1, indices, kernel, stride, padding, output_size)


# (inputs as test_s45_mendAI's: x (2, 3), x3 (2, 3, 4), idx [1, 0])
PROGRAMS = {
    "roll": lambda lib, a: a["x"].roll(1, 1),
    "roll_negative_dim": lambda lib, a: a["x"].roll(-1, -2),
    "roll_flat": lambda lib, a: a["x"].roll(2),
    "roll_dims": lambda lib, a: lib.roll(a["x3"], (1, -2), (0, 2)),
    "roll_backward": _backward(lambda lib, a: a["x3"].requires_grad_().roll(2, -1) * 2),
    "isfinite_int": lambda lib, a: lib.isfinite(a["idx"]),
    "isfinite_bool": lambda lib, a: lib.isfinite(a["idx"] > 0),
    "gather_backward": _backward(lambda lib, a: a["x"].requires_grad_().gather(1, lib.tensor([[0, 2], [1, 1]])) * 2),
    "gather_backward_negative_dim": _backward(
        lambda lib, a: lib.gather(a["x3"].requires_grad_(), -3, lib.tensor([[[1, 0, 1, 0]]])).exp()),
    "selu_": lambda lib, a: lib.selu_(a["x"].clone()),
    "selu_inplace": lambda lib, a: lib.nn.SELU(inplace=True)(a["x"].clone()),
    "leaky_relu_inplace_backward": _backward(lambda lib, a: lib.nn.functional.leaky_relu(
        a["x"].requires_grad_() * 1, 0.2, inplace=True)),
    "elu_inplace_backward": _backward(lambda lib, a: lib.nn.functional.elu(a["x"].requires_grad_() * 1, inplace=True)),
    "elu_alpha_inplace_backward": _backward(lambda lib, a: lib.nn.ELU(0.5, inplace=True)(a["x"].requires_grad_() * 1)),
    "celu_inplace_backward": _backward(lambda lib, a: lib.nn.functional.celu(
        a["x"].requires_grad_() * 1, 0.5, inplace=True)),
    "selu_inplace_backward": _backward(lambda lib, a: lib.nn.functional.selu(a["x"].requires_grad_() * 1, inplace=True)),
    "hardtanh_inplace_backward": _backward(lambda lib, a: lib.nn.functional.hardtanh(
        a["x"].requires_grad_() * 1, inplace=True)),
    "relu6_inplace_backward": _backward(lambda lib, a: lib.nn.ReLU6(inplace=True)(a["x"].requires_grad_() * 3)),
    "chunk_backward": _backward(lambda lib, a: a["emb"].requires_grad_().chunk(2)[1] * 2),
    "split_backward": _backward(lambda lib, a: a["emb"].requires_grad_().split(4)[1] * 2),
    "split_sizes_backward": _backward(lambda lib, a: a["emb"].requires_grad_().split([3, 7])[0] * 2),
    "unbind_backward": _backward(lambda lib, a: a["x3"].requires_grad_().unbind(1)[2] * 2),
    "max_unpool3d": lambda lib, a: _unpool(lib, a["b2"][None, None], 3, (2, 1, 2), (1, 1, 2), 0, [5, 3, 5]),
    "max_unpool3d_padded_backward": _backward(lambda lib, a: _unpool(lib, a["b2"][None].requires_grad_(), 3, 2, 1, 1)),
    "max_unpool2d_unbatched_backward": _backward(lambda lib, a: _unpool(lib, a["b2"].requires_grad_(), 2, 2, 2, 0)),
    "max_unpool1d_unbatched_backward": _backward(lambda lib, a: _unpool(lib, a["x"].requires_grad_(), 1, 2, 2, 0)),
    "rrelu_eval": lambda lib, a: lib.nn.functional.rrelu(a["x"], 0.1, 0.2),
    "rrelu_eval_inplace": lambda lib, a: lib.nn.functional.rrelu_(a["x"].clone()),
    "rrelu_eval_backward": _backward(lambda lib, a: lib.nn.RReLU(0.1, 0.3).eval()(a["x"].requires_grad_() * 1)),
    "rrelu_eval_inplace_backward": _backward(lambda lib, a: lib.nn.functional.rrelu(
        a["x"].requires_grad_() * 1, 0.2, 0.25, inplace=True)),
    "split_all_used_backward": _backward(lambda lib, a: sum(c.sum() for c in a["emb"].requires_grad_().chunk(3))),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_a_program_reaches_a_mode_as_torchs_ops(name):
    assert _logged(chainrule, PROGRAMS[name]) == _logged(real_torch, PROGRAMS[name])


def test_rolls_gradient_under_a_passing_mode_keeps_its_bits():
    assert_a_passing_mode_keeps(lambda lib, x: (x.roll((1, -1), (0, -1)).exp() * x).sum(), (4, 5), seed=54)


def test_a_handler_editing_rolls_shifts_gets_what_it_asked_for():
    def run(lib):
        seen = []
        x = lib.tensor(np.arange(12.0).reshape(3, 4))
        with _editing_mode(lib, "aten.roll.default", lambda args: (args[0], [2], *args[2:]), seen):
            out = x.roll(1, -1)
        assert seen == ["aten.roll.default"]
        return out.numpy()

    np.testing.assert_array_equal(run(chainrule), run(real_torch))


def test_an_integer_isfinite_under_a_mode_keeps_its_values_and_layout():
    def run(lib):
        x = lib.tensor(np.arange(6).reshape(2, 3)).t()
        with _editing_mode(lib, "aten.ones_like.default", lambda args: args, []):
            out = lib.isfinite(x)
        return out.numpy(), out.stride(), out.dtype

    ours, theirs = run(chainrule), run(real_torch)
    np.testing.assert_array_equal(ours[0], theirs[0])
    assert ours[1:] == (theirs[1], chainrule.bool)


def test_gathers_backward_under_a_handler_editing_scatter_add_gets_what_it_asked_for():
    def run(lib):
        seen = []
        x = lib.tensor(np.random.default_rng(5).standard_normal((3, 4)), requires_grad=True)
        out = (x.gather(-1, lib.tensor([[0, 0], [3, 1], [2, 2]])) * 2).sum()
        with _editing_mode(lib, "aten.scatter_add.default", lambda args: (args[0], 0, args[2][:1], args[3][:1]), seen):
            out.backward()
        assert seen == ["aten.scatter_add.default"]
        return x.grad.numpy()

    np.testing.assert_array_equal(run(chainrule), run(real_torch))


@pytest.mark.parametrize("activation", ["leaky_relu", "elu", "celu", "selu", "hardtanh"])
def test_an_in_place_activations_gradient_under_a_passing_mode_keeps_its_bits(activation):
    assert_a_passing_mode_keeps(lambda lib, x: (getattr(lib.nn.functional, activation)(x * 1.5, inplace=True)
                                                * x).sum(), (3, 5), seed=54)


def test_an_in_place_activations_backward_after_its_result_is_gone_runs_its_rule():
    def run(lib):
        x = lib.tensor(np.random.default_rng(6).standard_normal((2, 5)), requires_grad=True)
        loss = lib.nn.functional.elu(x * 2, inplace=True).sum()
        lines = []
        with _line_logger(lib, lines):
            loss.backward()
        return x.grad.numpy(), lines

    (ours, lines), (theirs, _) = run(chainrule), run(real_torch)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    assert not any("elu_backward" in line for line in lines)  # (its rule's ops, shown as they run)


@pytest.mark.parametrize("pick", [lambda x: x.chunk(3, 1)[1], lambda x: x.split([1, 4], 1)[0], lambda x: x.unbind(0)[2]])
def test_a_split_or_unbinds_gradient_under_a_passing_mode_keeps_its_bits(pick):
    assert_a_passing_mode_keeps(lambda lib, x: (pick(x).exp() * 2).sum(), (3, 5), seed=54)


def test_a_split_backward_under_a_mode_after_one_that_filled_zeros_keeps_its_gradients():
    # (the zeros noted for one walk are no other walk's: retain_graph, then every output's gradient)
    def run(lib):
        x = lib.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
        first, second, third = x.split(1)
        with _line_logger(lib, []):
            first.sum().backward(retain_graph=True)
            lib.autograd.backward([first.sum(), (second * 2).sum(), (third * 3).sum()])
        return x.grad.numpy()

    np.testing.assert_array_equal(run(chainrule), run(real_torch))


def test_a_handler_editing_max_unpool3ds_output_size_gets_what_it_asked_for():
    def run(lib):
        seen = []
        x = lib.tensor(np.random.default_rng(7).standard_normal((1, 2, 4, 4, 4)))
        pooled, indices = lib.nn.functional.max_pool3d(x, 2, return_indices=True)
        with _editing_mode(lib, "aten.max_unpool3d.default", lambda args: (*args[:2], [4, 4, 5], *args[3:]), seen):
            out = lib.nn.functional.max_unpool3d(pooled, indices, 2)
        assert seen == ["aten.max_unpool3d.default"]
        return out.numpy()

    np.testing.assert_array_equal(run(chainrule), run(real_torch))


@pytest.mark.parametrize("shape, d", [((2, 4, 6), 2), ((2, 4, 4, 6), 3), ((3, 8), 1)])
def test_an_unbatched_max_unpools_gradient_under_a_passing_mode_keeps_its_bits(shape, d):
    def program(lib, x):
        return (_unpool(lib, x, d, 2, 2, 0).exp() * 2).sum()

    assert_a_passing_mode_keeps(program, shape, seed=54)


BACKWARDS = {  # (x (3, 4, 6) float32 requiring grad)
    "max_unpool2d_unbatched": lambda lib, x: _unpool(lib, x, 2, 2, 2, 0),
    "max_unpool3d_unbatched": lambda lib, x: _unpool(lib, x[None], 3, 2, 1, 1),
    "max_unpool1d_unbatched": lambda lib, x: _unpool(lib, x[0], 1, 2, 2, 0),
    "gather": lambda lib, x: x.gather(-1, lib.tensor(np.random.default_rng(8).integers(0, 6, (3, 4, 9)))),
    "split": lambda lib, x: x.split([1, 5], -1)[1].exp(),
    "unbind": lambda lib, x: x.unbind(1)[2].exp(),
    "elu_inplace": lambda lib, x: lib.nn.functional.elu(x * 2, inplace=True),
    "celu_inplace": lambda lib, x: lib.nn.functional.celu(x * 2, 0.7, inplace=True),
    "leaky_relu_inplace": lambda lib, x: lib.nn.functional.leaky_relu(x * 2, 0.3, inplace=True),
    "roll": lambda lib, x: x.roll((2, -1), (-1, 0)).exp(),
    "rrelu_eval": lambda lib, x: lib.nn.functional.rrelu(x * 2, 0.1, 0.3),
    "rrelu_eval_inplace": lambda lib, x: lib.nn.functional.rrelu(x * 2, inplace=True),
}


@pytest.mark.parametrize("name", sorted(BACKWARDS))
def test_a_backward_run_under_a_passing_mode_keeps_its_bits(name):
    def run(lib, mode):
        x = lib.tensor(np.random.default_rng(9).standard_normal((3, 4, 6)), dtype=lib.float32, requires_grad=True)
        out = BACKWARDS[name](lib, x)
        seed = lib.tensor(np.random.default_rng(10).standard_normal(tuple(out.shape)), dtype=lib.float32)
        with mode:
            out.backward(seed)
        return x.grad.numpy()

    if name.startswith("rrelu"):  # (the forward too: its noise and op are shown)
        x = chainrule.tensor(np.random.default_rng(9).standard_normal((3, 4, 6)), dtype=chainrule.float32)
        with PassingMode():
            shown = BACKWARDS[name](chainrule, x.clone())
        np.testing.assert_array_equal(shown.numpy(), BACKWARDS[name](chainrule, x.clone()).numpy())

    ours = run(chainrule, PassingMode())
    np.testing.assert_array_equal(ours, run(chainrule, contextlib.nullcontext()))
    np.testing.assert_allclose(ours, run(real_torch, contextlib.nullcontext()), rtol=1e-6, atol=1e-6)


# (batch, in, out channels, kernel, stride, output_padding, groups, spatial, channels-last input / weight): oneDNN's
# layers (a batch over 1, groups, a kernel over 3x3) keep channels-last, slow_conv_transpose3d's (one small sample,
# output padding as wide as the stride) answer contiguous
CONV3D_LAYOUTS = [(1, 2, 2, 2, 1, 0, 1, (2, 3, 2), "x"), (2, 2, 2, 2, 1, 0, 1, (2, 3, 2), "x"),
                  (1, 2, 2, 2, (1, 3, 2), (1, 1, 0), 1, (4, 4, 4), "x"), (3, 2, 2, 2, (1, 3, 2), (1, 1, 0), 1, (2, 2, 2), "x"),
                  (1, 2, 4, 2, 2, 0, 2, (2, 2, 3), "w"), (1, 3, 2, 4, 1, 0, 1, (4, 4, 5), "w"), (1, 3, 2, 2, 2, 1, 1, (2, 3, 3), "xw")]


@pytest.mark.parametrize("case", CONV3D_LAYOUTS)
@pytest.mark.parametrize("transposed", [True, False])
def test_a_channels_last_3d_float32_convs_output_layout_is_torchs(case, transposed):
    n, c, o, k, stride, output_padding, groups, spatial, channels_last = case
    rng = np.random.default_rng(11)
    x_data = rng.standard_normal((n, c, *spatial)).astype(np.float32)
    w_data = rng.standard_normal((c, o // groups, k, k, k) if transposed else (o, c // groups, k, k, k)).astype(np.float32)

    def run(lib):
        x, w = lib.tensor(x_data), lib.tensor(w_data)
        if "x" in channels_last:
            x = x.contiguous(memory_format=lib.channels_last_3d)
        if "w" in channels_last:
            w = w.contiguous(memory_format=lib.channels_last_3d)
        functional = lib.nn.functional
        if transposed:
            y = functional.conv_transpose3d(x, w, None, stride, 0, output_padding, groups, 2)
        else:
            y = functional.conv3d(x, w, None, stride, 0, 1, groups)
        return y.detach().numpy(), y.stride()

    (ours, our_strides), (theirs, their_strides) = run(chainrule), run(real_torch)
    assert our_strides == their_strides
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", ["pow2", "pow3", "pow_half", "exp", "sqrt", "square", "sin", "sigmoid", "tanh"])
@pytest.mark.parametrize("shape, layout", [((2, 2, 6, 1), "channels_last"), ((3, 1, 4), "t"), ((1, 3, 1, 2), "channels_last")])
def test_a_unary_op_of_a_size_1_dim_keeps_torchs_strides(op, shape, layout):
    run = {"pow2": lambda x: x.pow(2), "pow3": lambda x: x ** 3, "pow_half": lambda x: x.exp().pow(0.5)}.get(
        op, lambda x: getattr(x, op)())

    def strides(lib):
        x = lib.tensor(np.random.default_rng(12).standard_normal(shape), dtype=lib.float32)
        x = x.contiguous(memory_format=lib.channels_last) if layout == "channels_last" else x.transpose(0, -1)
        return run(x).stride()

    assert strides(chainrule) == strides(real_torch)


@pytest.mark.parametrize("shape, kernel, stride, padding", [((1, 1, 1, 1, 1), 3, 1, 0), ((2, 1, 2, 4), (3, 1, 5), 2, (1, 0, 2)),
                                                           ((1, 2, 3, 1, 2), 4, 3, 2)])
def test_avg_pool3ds_refusal_of_an_input_smaller_than_its_kernel_and_too_small_an_output_is_torchs(
        shape, kernel, stride, padding):
    def message(lib):
        with pytest.raises(RuntimeError) as error:
            lib.nn.functional.avg_pool3d(lib.ones(shape), kernel, stride, padding)
        return str(error.value)

    assert message(chainrule) == message(real_torch)
