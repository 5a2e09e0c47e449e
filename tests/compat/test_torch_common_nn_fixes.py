"""What running torch 2.13's own common_nn test dicts on chainrule found (tools/torch_common_nn_trial.py),
each case in our own words and compared with torch."""

import numpy as np
import pytest
import torch

import chainrule

LIBS = (chainrule, torch)


def _outcome(call):
    """(type name, message) of what ``call`` raises, or ("ok", dtype name, values)."""
    try:
        result = call()
    except Exception as error:  # noqa: BLE001 - the exception itself is compared
        return type(error).__name__, str(error)
    return "ok", str(result.dtype).split(".")[-1], result.numpy().tolist()


# ---------------------------------------------------------------- integer convolutions (the dicts' _with_long_tensor)
CONVS = [(f"conv{d}d", d, False) for d in (1, 2, 3)] + [(f"conv_transpose{d}d", d, True) for d in (1, 2, 3)]


@pytest.mark.parametrize("dtype", ["int64", "int32", "int16", "int8", "uint8", "bool"])
@pytest.mark.parametrize("name,d,transposed", CONVS)
@pytest.mark.parametrize("options", [{}, {"stride": 2, "padding": 1}, {"dilation": 2}, {"groups": 2}])
def test_integer_convolutions_run_where_torchs_cpu_kernels_do(dtype, name, d, transposed, options):
    # int64 in every kernel; the other integer types only undilated and not transposed; bool nowhere
    rng = np.random.default_rng(7)
    x = rng.integers(0, 4, (2, 4) + (5,) * d)
    groups = options.get("groups", 1)
    weight = rng.integers(-3, 4, (4, 3 if transposed and groups == 1 else 4 // groups) + (2,) * d)
    bias = rng.integers(-3, 4, (weight.shape[1] * groups if transposed else weight.shape[0],))
    results = []
    for lib in LIBS:
        def call(lib=lib):
            convert = lambda a: lib.tensor(a, dtype=getattr(lib, dtype))  # noqa: E731
            return getattr(lib.nn.functional, name)(convert(x), convert(weight), convert(bias), **options)
        results.append(_outcome(call))
    assert results[0] == results[1]


def test_integer_conv_checks_shapes_before_refusing_the_dtype():
    # torch's dispatch reaches the kernel (and its dtype refusal) only after the shape checks
    results = []
    for lib in LIBS:
        x, weight = lib.ones(1, 3, 5, 5, dtype=lib.bool), lib.ones(4, 4, 3, 3, dtype=lib.bool)
        results.append(_outcome(lambda lib=lib, x=x, weight=weight: lib.nn.functional.conv2d(x, weight)))
    assert results[0] == results[1]
    assert results[0][0] == "RuntimeError" and "expected input[1, 3, 5, 5] to have 4 channels" in results[0][1]


def test_conv2d_module_with_int64_parameters_and_input_matches_torch():
    # the dicts' Conv2d_with_long_tensor: a module whose floating tensors became int64
    modules = []
    for lib in LIBS:
        lib.manual_seed(0)
        module = lib.nn.Conv2d(3, 4, (3, 2), stride=2).requires_grad_(False)
        module._apply(lambda t, lib=lib: t.long())
        modules.append(module)
    values = np.random.default_rng(1).integers(-1000, 1000, (2, 3, 6, 5))
    for name, parameter in modules[1].state_dict().items():
        modules[0].state_dict()[name].copy_(chainrule.tensor(parameter.numpy()))
    outputs = [module(lib.tensor(values)) for module, lib in zip(modules, LIBS)]
    assert outputs[0].dtype == chainrule.int64
    np.testing.assert_array_equal(outputs[0].numpy(), outputs[1].numpy())


# ---------------------------------------------------------------- soft_margin_loss's target has no gradient
def test_soft_margin_loss_refuses_a_target_that_requires_grad():
    results = []
    for lib in LIBS:
        x = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        target = lib.tensor([1.0, -1.0, -1.0], requires_grad=True)
        results.append(_outcome(lambda lib=lib, x=x, target=target: lib.nn.functional.soft_margin_loss(x, target)))
    assert results[0] == results[1]
    assert results[0][0] == "RuntimeError" and "with respect to argument 'target'" in results[0][1]


def test_soft_margin_loss_takes_such_a_target_without_grad_mode_or_detached():
    values = []
    for lib in LIBS:
        x = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
        target = lib.tensor([1.0, -1.0, -1.0], dtype=lib.float64, requires_grad=True)
        with lib.no_grad():
            no_grad_loss = lib.nn.functional.soft_margin_loss(x, target)
        loss = lib.nn.functional.soft_margin_loss(x, target.detach(), reduction="sum")
        loss.backward()
        values.append((no_grad_loss.item(), loss.item(), x.grad.numpy().tolist()))
    np.testing.assert_allclose(np.array(values[0][2]), np.array(values[1][2]), rtol=1e-12)
    assert values[0][:2] == pytest.approx(values[1][:2], rel=1e-12)


# ---------------------------------------------------------------- ctc_loss has no second derivative in torch
def _ctc_first_gradient(lib, grad_output=None):
    rng = np.random.default_rng(3)
    log_probs = lib.tensor(rng.standard_normal((6, 3, 4)), dtype=lib.float64).log_softmax(2).detach()
    log_probs.requires_grad_(True)
    targets = lib.tensor(rng.integers(1, 4, (3, 3)))
    loss = lib.nn.functional.ctc_loss(log_probs, targets, lib.tensor([6, 5, 6]), lib.tensor([3, 2, 1]))
    (gradient,) = lib.autograd.grad(loss, log_probs, grad_output, create_graph=True)
    return log_probs, gradient


def test_ctc_loss_first_gradient_under_create_graph_matches_torch():
    mine, theirs = (_ctc_first_gradient(lib)[1] for lib in LIBS)
    assert mine.requires_grad and theirs.requires_grad
    np.testing.assert_allclose(mine.detach().numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("with_respect_to", ["log_probs", "grad_output"])
def test_ctc_loss_second_backward_raises_as_torchs(with_respect_to):
    # chainrule's gradient was a constant times grad_output, so its second derivative in log_probs
    # came out zero (gradgradcheck failed); torch refuses any second backward through it
    results = []
    for lib in LIBS:
        grad_output = lib.tensor(1.0, dtype=lib.float64, requires_grad=True)
        log_probs, gradient = _ctc_first_gradient(lib, grad_output)
        wrt = log_probs if with_respect_to == "log_probs" else grad_output
        results.append(_outcome(lambda lib=lib, g=gradient, wrt=wrt: lib.autograd.grad(g.sum(), wrt)[0]))
    assert results[0] == results[1]
    assert results[0] == ("RuntimeError", "derivative for aten::_ctc_loss_backward is not implemented")


def test_ctc_loss_forward_mode_derivative_is_refused_as_torchs():
    # torch has no forward AD for _ctc_loss; chainrule's (a double backward through the gradient
    # node) now meets the same refusal, a RuntimeError in both (torch's is a NotImplementedError)
    rng = np.random.default_rng(5)
    refusals = []
    for lib in LIBS:
        log_probs = lib.tensor(rng.standard_normal((5, 2, 3))).log_softmax(2)
        targets = lib.tensor([[1, 2], [2, 2]])

        def loss(lp, lib=lib, targets=targets):
            return lib.nn.functional.ctc_loss(lp, targets, lib.tensor([5, 4]), lib.tensor([2, 2]))

        with pytest.raises(RuntimeError) as refusal:
            lib.func.jvp(loss, (log_probs,), (lib.ones_like(log_probs),))
        refusals.append(str(refusal.value))
    assert "_ctc_loss" in refusals[0] and "_ctc_loss" in refusals[1]
