"""Session 36, lane progBC: what the new corpus programs (domain-adversarial training, FiLM, DPO)
found, each call made on torch 2.13 and on chainrule with the same arguments and compared (values,
or the exception's type and message)."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(lib, call):
    """What ``call(lib)`` gives: ("ok", value as an array) or ("raised", type name, message)."""
    try:
        result = call(lib)
    except Exception as error:
        return "raised", type(error).__name__, str(error)
    if hasattr(result, "detach"):
        result = result.detach().numpy()
    return "ok", np.asarray(result)


def assert_as_torch(call):
    """``call(lib)`` gives on chainrule what it gives on torch: the same values, or the same
    exception class and message."""
    expected, actual = _outcome(torch, call), _outcome(chainrule, call)
    assert expected[0] == actual[0], (expected, actual)
    if expected[0] == "raised":
        assert expected[1:] == actual[1:]
    else:
        np.testing.assert_array_equal(actual[1], expected[1])


# a gradient reversal layer's backward written with each mistake a user makes: a gradient for the
# float alpha (or for a None or int argument), a Python number, an array or a list where a tensor
# is expected; each case: forward's arguments after x, and what backward returns
_REVERSAL_BACKWARDS = {
    "gradient for alpha": ((0.5,), lambda grad: (grad.neg(), grad)),
    "gradient for a None argument": ((0.5, None), lambda grad: (grad.neg(), None, grad)),
    "gradient for an int argument": ((2, None), lambda grad: (grad, grad, None)),
    "a float for the tensor": ((0.5,), lambda grad: (1.0, None)),
    "an ndarray for the tensor": ((0.5,), lambda grad: (np.ones(3, dtype=np.float32), None)),
    "a list for the tensor": ((0.5,), lambda grad: ([1.0, 2.0, 3.0], None)),
    "the first of two mistakes": ((0.5,), lambda grad: ([1.0, 2.0, 3.0], grad)),
    "a tensor without grad gets one": (("ones",), lambda grad: (grad.neg(), grad)),
    "as torch wants it": ((0.5,), lambda grad: (grad.neg() * 0.5, None)),
}


@pytest.mark.parametrize("mistake", sorted(_REVERSAL_BACKWARDS))
def test_a_custom_functions_gradients_are_checked_against_its_inputs_as_torch_checks_them(mistake):
    extra, rule = _REVERSAL_BACKWARDS[mistake]

    def call(lib):
        class GradReverse(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x, *rest):
                return x.view_as(x)

            @staticmethod
            def backward(ctx, grad_output):
                return rule(grad_output)

        x = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
        rest = [lib.ones(3) if a == "ones" else a for a in extra]
        GradReverse.apply(x, *rest).sum().backward()
        return x.grad

    assert_as_torch(call)


def test_a_custom_functions_node_is_not_callable_but_a_built_in_ops_node_is():
    def custom_node_called(lib):
        class GradReverse(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x, alpha):
                ctx.alpha = alpha
                return x.view_as(x)

            @staticmethod
            def backward(ctx, grad_output):
                return grad_output.neg() * ctx.alpha, None

        x = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
        return GradReverse.apply(x, 0.5).grad_fn(lib.ones(3))

    def built_in_node_called(lib):
        x = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
        return (x * 2).grad_fn(lib.ones(3))[0]

    assert_as_torch(custom_node_called)
    assert_as_torch(built_in_node_called)
