"""Anomaly detection: the node whose backward made NaN is named in the error, and the user's forward
line in an "Error detected in" warning, as torch's."""

import warnings

import numpy as np
import pytest
import torch

import chainrule
from chainrule import autograd

pytestmark = [pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:Anomaly Detection has been enabled:UserWarning"),
              pytest.mark.filterwarnings("ignore:Error detected in:UserWarning")]


@pytest.fixture(autouse=True)
def _anomaly_off_afterwards():
    yield
    autograd.set_detect_anomaly(False)


def _backward_telling(y):
    """Run ``y.backward()``, which must fail; its error message and the anomaly warning's text."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError) as info:
            y.backward()
    told = [str(w.message) for w in caught if str(w.message).startswith("Error detected in")]
    assert len(told) == 1
    return str(info.value), told[0]


def test_sqrt_at_zero_names_sqrt_backward_and_the_user_line():
    x = chainrule.tensor([0.0, 1.0], requires_grad=True)
    with autograd.detect_anomaly():
        y = (chainrule.sqrt(x) * 0.0).sum()  # the line anomaly mode must point at
        error, message = _backward_telling(y)
    # torch's error is the one line; the forward call is in the warning
    assert error == "Function 'SqrtBackward0' returned nan values in its 0th output."
    assert message.startswith("Error detected in SqrtBackward0. Traceback of forward call that caused the error:")
    # the stack ends at the user's line, not inside chainrule
    assert message.rstrip().splitlines()[-1].strip() == (
        "y = (chainrule.sqrt(x) * 0.0).sum()  # the line anomaly mode must point at")
    assert "test_anomaly.py" in message and "elementwise.py" not in message
    assert x.grad is None  # nothing was accumulated


def test_an_infinite_gradient_goes_through_as_in_torch():
    # torch checks for NaN only: sqrt'(0) = inf reaches .grad
    for lib in (chainrule, torch):
        x = lib.tensor([0.0, 1.0], requires_grad=True)
        with lib.autograd.detect_anomaly(), np.errstate(divide="ignore"):
            lib.sqrt(x).sum().backward()
        assert np.isinf(x.grad[0].item()) and x.grad[1].item() == 0.5


def test_nan_case_matches_torch():
    # sqrt(x)·0 at 0 gives 0/0 in both
    for lib in (chainrule, torch):
        x = lib.tensor([0.0, 1.0], requires_grad=True)
        with lib.autograd.detect_anomaly():
            y = (lib.sqrt(x) * 0.0).sum()
            with pytest.raises(RuntimeError, match=r"Function 'SqrtBackward0' returned nan values in its 0th output"):
                y.backward()


def test_division_by_zero_names_div_backward():
    a = chainrule.tensor(1.0, requires_grad=True)
    b = chainrule.tensor(0.0, requires_grad=True)
    with autograd.set_detect_anomaly(True):
        q = a / b
        loss = q * 0.0 + a
        error, message = _backward_telling(loss)
    assert "DivBackward0" in error and "q = a / b" in message


def test_names_the_first_bad_node_not_the_ones_above_it():
    x = chainrule.tensor([4.0, 0.0], requires_grad=True)
    with autograd.detect_anomaly():
        h = chainrule.log(x)  # exp's gradient 0 reaches log'(0) = 1/0: 0/0, LogBackward0 is the culprit
        out = (chainrule.exp(h) * 2.0).sum()
        with pytest.raises(RuntimeError, match="LogBackward0"):
            out.backward()


def test_set_detect_anomaly_as_a_plain_call():
    autograd.set_detect_anomaly(True)
    assert autograd.anomaly.is_anomaly_enabled() and chainrule.is_anomaly_check_nan_enabled()
    x = chainrule.tensor(0.0, requires_grad=True)
    y = chainrule.sqrt(x) * 0.0
    with pytest.raises(RuntimeError, match="SqrtBackward0"):
        y.backward()
    autograd.set_detect_anomaly(False)
    assert not autograd.anomaly.is_anomaly_enabled()


def test_check_nan_switch_as_torch_reports_it():
    for lib in (chainrule, torch):
        seen = [lib.is_anomaly_enabled(), lib.is_anomaly_check_nan_enabled()]
        with lib.autograd.detect_anomaly(check_nan=False):
            seen += [lib.is_anomaly_enabled(), lib.is_anomaly_check_nan_enabled()]
            x = lib.tensor(0.0, requires_grad=True)
            (lib.sqrt(x) * 0.0).backward()  # NaN, not checked
            seen.append(bool(x.grad.isnan()))
        seen += [lib.is_anomaly_enabled(), lib.is_anomaly_check_nan_enabled()]
        lib.set_anomaly_enabled(True, False)
        seen += [lib.is_anomaly_enabled(), lib.is_anomaly_check_nan_enabled()]
        lib.set_anomaly_enabled(False)
        seen += [lib.is_anomaly_enabled(), lib.is_anomaly_check_nan_enabled()]
        if lib is chainrule:
            ours = seen
    assert ours == seen == [False, True, True, False, True, False, True, True, False, False, True]


def test_turning_it_on_warns_as_torch():
    for lib in (chainrule, torch):
        with pytest.warns(UserWarning, match="^Anomaly Detection has been enabled. This mode will increase the "
                                             "runtime and should only be enabled for debugging.$"):
            lib.autograd.detect_anomaly()


def test_off_by_default_and_restored_after_the_block():
    x = chainrule.tensor(0.0, requires_grad=True)
    with np.errstate(divide="ignore"):
        chainrule.sqrt(x).backward()
    assert np.isinf(x.grad.item())
    with autograd.detect_anomaly():
        assert autograd.anomaly.is_anomaly_enabled()
    assert not autograd.anomaly.is_anomaly_enabled()
    with autograd.detect_anomaly(check_nan=False):
        y = chainrule.tensor(0.0, requires_grad=True)
        with np.errstate(divide="ignore"):
            chainrule.sqrt(y).backward()
        assert np.isinf(y.grad.item())


def test_finite_gradients_pass_untouched():
    x = chainrule.tensor([1.0, 4.0], requires_grad=True)
    with autograd.detect_anomaly():
        chainrule.sqrt(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.5, 0.25])


def test_error_inside_a_backward_rule_goes_on_with_the_forward_line_in_a_warning():
    def run(lib):
        class Broken(lib.autograd.Function):
            @staticmethod
            def forward(ctx, t):
                return t * 2

            @staticmethod
            def backward(ctx, grad):
                raise ValueError("boom")

        x = lib.tensor(1.0, requires_grad=True)
        with lib.autograd.detect_anomaly():
            out = Broken.apply(x)  # forward of the broken op
            with pytest.raises(ValueError, match="^boom$"), pytest.warns(UserWarning) as caught:
                (out * 3).backward()
        return [str(w.message) for w in caught if "Error detected" in str(w.message)]

    for messages in (run(chainrule), run(torch)):
        assert len(messages) == 1
        assert messages[0].startswith("Error detected in BrokenBackward. Traceback of forward call that caused the "
                                      "error:\n")
        assert "out = Broken.apply(x)  # forward of the broken op" in messages[0]


def test_user_line_survives_library_frames():
    # the forward runs through Module.__call__ and nn.functional: those frames are dropped
    layer = chainrule.nn.Linear(2, 2)
    with chainrule.no_grad():
        layer.weight[0, 0] = float("nan")
    x = chainrule.ones(1, 2, requires_grad=True)
    with autograd.detect_anomaly():
        out = layer(x).sum()  # the model call
        error, message = _backward_telling(out)
    assert "AddmmBackward0" in error
    assert message.rstrip().splitlines()[-1].strip() == "out = layer(x).sum()  # the model call"
