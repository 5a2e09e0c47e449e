"""Regressions the optimizer and scheduler fuzzer (tests/fuzz/test_optim_configs.py) found, each
against torch."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _steps(lib, name, make_param, value, grads, **kwargs):
    p = make_param(lib, value)
    optimizer = getattr(lib.optim, name)([p], **kwargs)
    for grad in grads:
        p.grad = lib.from_numpy(grad.copy())
        optimizer.step()
    return p.detach().numpy()


def _transposed(lib, value):
    return lib.from_numpy(value.T.copy()).t().requires_grad_(True)


def _strided(lib, value):
    wide = lib.zeros(value.shape[:-1] + (2 * value.shape[-1],), dtype=lib.complex64)
    wide[..., ::2] = lib.from_numpy(value.copy())
    return wide[..., ::2].requires_grad_(True)


@pytest.mark.parametrize("name", ["Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Adagrad", "Adadelta", "RMSprop",
                                  "Rprop", "ASGD"])
@pytest.mark.parametrize("make_param", [_transposed, _strided], ids=["transposed", "strided"])
def test_a_non_contiguous_complex_parameter_steps_as_torch(name, make_param):
    # its real view (view_as_real) used to need a contiguous last axis: NumPy refused the itemsize change
    rng = np.random.default_rng(0)
    value = (rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))).astype(np.complex64)
    grads = [(rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))).astype(np.complex64) for _ in range(3)]
    ours = _steps(chainrule, name, make_param, value, grads, lr=0.01, foreach=False)
    theirs = _steps(torch, name, make_param, value, grads, lr=0.01, foreach=False)
    np.testing.assert_allclose(ours, theirs, rtol=2e-6, atol=2e-7)


def _outcome(call):
    try:
        call()
    except Exception as error:  # noqa: BLE001 - the class and words are what is compared
        return type(error).__name__, str(error).splitlines()[0]
    return None


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "ASGD"])
@pytest.mark.parametrize("param", ["leaf", "view of a leaf", "view of a plain tensor"])
@pytest.mark.parametrize("foreach", [None, True])
def test_a_differentiable_step_refuses_what_torch_refuses(name, param, foreach):
    # torch's differentiable step runs with grad mode on: its in-place update of a parameter that
    # requires grad is autograd's in-place error, and its foreach kernels (not SGD's) assert no autograd
    def run(lib):
        if param == "leaf":
            p = lib.zeros(3, 2).requires_grad_()
        elif param == "view of a leaf":
            p = lib.zeros(3, 4, requires_grad=True)[:, ::2]
        else:
            p = lib.zeros(3, 4)[:, ::2].requires_grad_()
        optimizer = getattr(lib.optim, name)([p], lr=0.1, differentiable=True, foreach=foreach)
        p.grad = lib.ones(3, 2)
        return lambda: optimizer.step()

    assert _outcome(run(chainrule)) == _outcome(run(torch)) is not None


def test_a_differentiable_group_with_foreach_asserts_as_torch_even_in_a_plain_optimizer():
    def run(lib):
        a, b = lib.zeros(3).requires_grad_(), lib.zeros(2).requires_grad_()
        optimizer = lib.optim.Adagrad([{"params": [a]}, {"params": [b], "differentiable": True, "foreach": True}])
        a.grad, b.grad = lib.ones(3), lib.ones(2)
        return optimizer.step

    assert _outcome(run(chainrule)) == _outcome(run(torch)) == ("AssertionError", "_foreach ops don't support autograd")


@pytest.mark.parametrize("foreach", [None, False, True])
def test_adafactor_refuses_an_empty_parameter_as_torch(foreach):
    # torch's step size divides by sqrt(numel): Python's ZeroDivisionError for an empty parameter
    def run(lib):
        p = lib.zeros(2, 0).requires_grad_()
        optimizer = lib.optim.Adafactor([p], foreach=foreach)
        p.grad = lib.zeros(2, 0)
        return optimizer.step

    assert _outcome(run(chainrule)) == _outcome(run(torch)) == ("ZeroDivisionError", "float division by zero")


@pytest.mark.parametrize("name, kwargs", [
    ("Adam", {"weight_decay": 0.1}), ("AdamW", {}), ("Adamax", {}), ("NAdam", {"decoupled_weight_decay": True,
                                                                              "weight_decay": 0.1}),
    ("RAdam", {}), ("Adagrad", {"lr_decay": 0.1}), ("ASGD", {"t0": 0.0}), ("RMSprop", {"centered": True}),
])
def test_a_float32_tensor_lr_rounds_a_float64_parameters_step_as_torch(name, kwargs):
    # torch computes lr / bias_correction, 1 - lr * weight_decay, ... as float32 0-d tensors: a float64
    # parameter's step sees float32 roundings (chainrule's used to compute them in float64: 1e5-1e8 ulps off)
    rng = np.random.default_rng(0)
    value = rng.standard_normal((4, 3))
    grads = [rng.standard_normal((4, 3)) for _ in range(4)]

    def run(lib):
        p = lib.from_numpy(value.copy()).requires_grad_()
        optimizer = getattr(lib.optim, name)([p], lr=lib.tensor(0.0123), foreach=False, **kwargs)
        for grad in grads:
            p.grad = lib.from_numpy(grad.copy())
            optimizer.step()
        return p.detach().numpy()

    theirs = run(torch)
    np.testing.assert_allclose(run(chainrule), theirs, rtol=0, atol=2 * np.spacing(np.abs(theirs).max()))


def test_lbfgs_over_empty_parameters_refuses_as_torch():
    # torch's first test of the gradient's largest entry is a max() over no elements
    def run(lib):
        p = lib.zeros(3, 0, requires_grad=True)
        optimizer = lib.optim.LBFGS([p])

        def closure():
            optimizer.zero_grad()
            loss = (p * p).sum()
            loss.backward()
            return loss

        return lambda: optimizer.step(closure)

    expected = ("RuntimeError", "max(): Expected reduction dim to be specified for input.numel() == 0. Specify the "
                "reduction dim with the 'dim' argument.")
    assert _outcome(run(chainrule)) == _outcome(run(torch)) == expected


def test_adagrad_sums_start_at_the_constructors_initial_accumulator_value_in_every_group():
    # torch's constructor fills every sum with its own argument; a group's override is kept, not read
    def run(lib):
        a, b = lib.ones(2, requires_grad=True), lib.ones(2, dtype=lib.complex64, requires_grad=True)
        optimizer = lib.optim.Adagrad([{"params": [a]}, {"params": [b], "initial_accumulator_value": 5.0}],
                                      initial_accumulator_value=0.5)
        a.grad, b.grad = lib.full((2,), 0.3), lib.full((2,), 0.3 - 0.2j, dtype=lib.complex64)
        optimizer.step()
        return ([optimizer.state[p]["sum"].numpy() for p in (a, b)], [p.detach().numpy() for p in (a, b)],
                optimizer.param_groups[1]["initial_accumulator_value"])

    ours, theirs = run(chainrule), run(torch)
    for mine, reference in zip(ours[0] + ours[1], theirs[0] + theirs[1]):
        np.testing.assert_array_equal(mine, reference)
    assert ours[2] == theirs[2] == 5.0
