"""Anomaly detection: the node whose backward made NaN/Inf is named, with the user's forward line."""

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


def test_sqrt_at_zero_names_sqrt_backward_and_the_user_line():
    x = chainrule.tensor([0.0, 1.0], requires_grad=True)
    with autograd.detect_anomaly():
        y = chainrule.sqrt(x).sum()  # the line anomaly mode must point at
        with pytest.raises(RuntimeError, match=r"Function 'SqrtBackward0' returned nan") as info:
            y.backward()
    message = str(info.value)
    assert "y = chainrule.sqrt(x).sum()  # the line anomaly mode must point at" in message
    # the stack ends at the user's line, not inside chainrule
    assert message.rstrip().splitlines()[-1].strip() == (
        "y = chainrule.sqrt(x).sum()  # the line anomaly mode must point at")
    assert "test_anomaly.py" in message and "elementwise.py" not in message
    assert x.grad is None  # nothing was accumulated


def test_nan_case_matches_torch():
    # torch checks for NaN only; chainrule also flags Inf (above). sqrt(x)·0 at 0 gives 0/0 in both.
    for lib in (chainrule, torch):
        x = lib.tensor([0.0, 1.0], requires_grad=True)
        with lib.autograd.detect_anomaly():
            y = (lib.sqrt(x) * 0.0).sum()
            with pytest.raises(RuntimeError, match=r"Function 'SqrtBackward0' returned nan (or inf )?values "):
                y.backward()


def test_division_by_zero_names_div_backward():
    a = chainrule.tensor(1.0, requires_grad=True)
    b = chainrule.tensor(0.0, requires_grad=True)
    with autograd.set_detect_anomaly(True):
        q = a / b
        loss = q * 0.0 + a
        with pytest.raises(RuntimeError, match="DivBackward0") as info:
            loss.backward()
    assert "q = a / b" in str(info.value)


def test_names_the_first_bad_node_not_the_ones_above_it():
    x = chainrule.tensor([4.0, 0.0], requires_grad=True)
    with autograd.detect_anomaly():
        h = chainrule.log(x)  # log'(0) = inf: LogBackward0 is the culprit
        out = (chainrule.exp(h) * 2.0).sum()
        with pytest.raises(RuntimeError, match="LogBackward0"):
            out.backward()


def test_set_detect_anomaly_as_a_plain_call():
    autograd.set_detect_anomaly(True)
    assert autograd.anomaly.is_anomaly_enabled()
    x = chainrule.tensor(0.0, requires_grad=True)
    y = chainrule.sqrt(x)
    with pytest.raises(RuntimeError, match="SqrtBackward0"):
        y.backward()
    autograd.set_detect_anomaly(False)
    assert not autograd.anomaly.is_anomaly_enabled()


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


def test_error_inside_a_backward_rule_names_the_node_and_forward_line():
    class Broken(autograd.Function):
        @staticmethod
        def forward(ctx, t):
            return t * 2

        @staticmethod
        def backward(ctx, grad):
            raise ValueError("boom")

    x = chainrule.tensor(1.0, requires_grad=True)
    with autograd.detect_anomaly():
        out = Broken.apply(x)  # forward of the broken op
        with pytest.raises(RuntimeError, match="Error in BrokenBackward while running backward: boom") as info:
            out.backward()
    assert "out = Broken.apply(x)  # forward of the broken op" in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)


def test_user_line_survives_library_frames():
    # the forward runs through Module.__call__ and nn.functional: those frames are dropped
    layer = chainrule.nn.Linear(2, 2)
    with chainrule.no_grad():
        layer.weight[0, 0] = float("nan")
    x = chainrule.ones(1, 2, requires_grad=True)
    with autograd.detect_anomaly():
        out = layer(x).sum()  # the model call
        with pytest.raises(RuntimeError, match="AddmmBackward0") as info:
            out.backward()
    assert str(info.value).rstrip().splitlines()[-1].strip() == "out = layer(x).sum()  # the model call"
