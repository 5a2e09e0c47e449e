"""Lane mendN: gradcheck's undefined-output-gradient check, and the top-level in-place random
names torch lacks; each case run on torch and on chainrule, compared."""

import warnings

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _functions(lib):
    class RefusesUndefinedGrad(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            if grad is None:
                raise RuntimeError("this backward needs a gradient")
            return grad * 2

    class OnesForUndefinedGrad(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            ctx.save_for_backward(x)
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return lib.ones_like(x) if grad is None else grad * 2

    class TwoOutputsRefuseBothUndefined(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, grad_a, grad_b):
            if grad_a is None and grad_b is None:
                raise RuntimeError("both output gradients are missing")
            return (0 if grad_a is None else grad_a * 2) + (0 if grad_b is None else grad_b * 3)

    class TwoOutputsNoneUnsafe(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, grad_a, grad_b):
            if grad_a is None or grad_b is None:
                raise RuntimeError("an output gradient is missing")
            return grad_a * 2 + grad_b * 3

    class TwoOutputsNoneSafe(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, grad_a, grad_b):
            total = None
            for grad, scale in ((grad_a, 2), (grad_b, 3)):
                if grad is not None:
                    total = grad * scale if total is None else total + grad * scale
            return total

    class TwoOutputsMaterialized(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, x.sin()

        @staticmethod
        def backward(ctx, grad_a, grad_b):
            return grad_a * 2 + grad_b * 0.0

    return {
        "refuses_undefined_grad": lambda x: RefusesUndefinedGrad.apply(x),
        "ones_for_undefined_grad": lambda x: OnesForUndefinedGrad.apply(x),
        "two_outputs_refuse_both_undefined": lambda x: TwoOutputsRefuseBothUndefined.apply(x),
        "two_outputs_none_unsafe": lambda x: TwoOutputsNoneUnsafe.apply(x),
        "two_outputs_none_safe": lambda x: TwoOutputsNoneSafe.apply(x),
        "builtin_ops": lambda x: (x.sin() * x, x.exp().sum()),
        "unbind_outputs": lambda x: x.unbind(0),
    }


def _outcome(lib, name, **kwargs):
    x = lib.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype=lib.float64, requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = lib.autograd.gradcheck(_functions(lib)[name], (x,), **kwargs)
        except Exception as error:  # noqa: BLE001 - the outcome compared is the exception itself
            result = (type(error).__name__, str(error).split(". Please")[0])
    return result, [str(w.message)[:60] for w in caught]


# (a backward that fails on zero gradients fails torch's earlier mul-by-grad_output check first)
CASES = ["refuses_undefined_grad", "ones_for_undefined_grad", "two_outputs_refuse_both_undefined",
         "two_outputs_none_unsafe", "two_outputs_none_safe", "builtin_ops", "unbind_outputs"]


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("kwargs", [{}, {"raise_exception": False}, {"check_undefined_grad": False}],
                         ids=["default", "no_raise", "unchecked"])
def test_gradcheck_undefined_output_grads_as_torch(name, kwargs):
    assert _outcome(chainrule, name, **kwargs) == _outcome(torch, name, **kwargs)


def test_gradgradcheck_passes_undefined_check_on():
    def f(lib):
        return lambda x: (x.sin() * x).sum()

    x = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)
    y = chainrule.tensor([0.5, -1.0], dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradgradcheck(f(chainrule), (y,)) == torch.autograd.gradgradcheck(f(torch), (x,))


IN_PLACE_SAMPLERS = ["uniform_", "normal_", "bernoulli_", "exponential_", "random_", "cauchy_", "log_normal_",
                     "geometric_"]


@pytest.mark.parametrize("name", IN_PLACE_SAMPLERS)
def test_in_place_samplers_are_methods_only_as_in_torch(name):
    assert hasattr(chainrule, name) == hasattr(torch, name)
    assert hasattr(chainrule.Tensor, name) == hasattr(torch.Tensor, name)


@pytest.mark.parametrize(("name", "args"), [("uniform_", (2.0, 3.0)), ("normal_", (0.0, 1.0)),
                                            ("bernoulli_", (0.5,)), ("exponential_", (2.0,))])
def test_in_place_sampler_methods_still_fill_in_place(name, args):
    x = chainrule.zeros(200)
    result = getattr(x, name)(*args)
    assert result is x and x.shape == (200,) and x.dtype == chainrule.float32
    if name == "uniform_":
        assert bool(((x >= 2.0) & (x < 3.0)).all())
    elif name == "bernoulli_":
        assert set(x.tolist()) <= {0.0, 1.0}
    elif name == "exponential_":
        assert bool((x >= 0).all())
