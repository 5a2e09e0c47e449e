"""Custom autograd.Function idioms met writing the soft_dtw_alignment program, against torch 2.13.

A Soft-DTW Function takes the cost tensor and a number (``gamma``) and keeps its dynamic-programming
table for backward. Probing what such Functions get wrong:

* ``backward`` returning a value other than None for a forward input that was no tensor (the
  ``gamma``, a flag) was silently dropped; torch's PyNode refuses it, naming the 1-based position
  ("returned a gradient different than None at position 2, but the corresponding forward input
  was not a Variable"), after its count check;
* ``ctx.save_for_backward`` given a non-tensor (a float ``gamma``, a NumPy table, a list) kept it;
  torch refuses it once forward has run, when the call records (not under no_grad, nor when no
  input requires grad), naming the 0-based argument and its type as CPython's tp_name spells it
  (``numpy.ndarray``, ``torch.dtype``, a Python class by its bare name);
* ``gradcheck`` with no input requiring grad said "none of the them"; torch 2.13 says "none of them";
* a gradcheck mismatch named the input by its position among all the inputs ("with respect to
  input 1" for Soft-DTW's cost after a constant weight); torch counts only the inputs that require
  grad ("input 0"), in reverse and in forward mode alike;
* ``torch.einsum`` of one operand that only reorders its dims (MAE's ``'nchpwq->nhwpqc'``, a
  transpose ``'ij->ji'``, with or without an ellipsis) made a contiguous copy under
  ``EinsumBackward0``; torch's is ``permute``'s view: its strides, its base, a write into it
  reaching the operand, ``PermuteBackward0``.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

LIBS = (torch, chainrule)


def _outcome(fn):
    try:
        return "ok", fn()
    except Exception as error:  # noqa: BLE001 - the outcome (type and words) is what is compared
        return type(error).__name__, str(error)


def _scaled_by_number(lib, extra_grads):
    """A Function of (x, gamma, flag) whose backward returns (g * gamma,) + extra_grads."""

    class ScaleByNumber(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, gamma, flag):
            ctx.gamma = gamma
            return x * gamma

        @staticmethod
        def backward(ctx, grad_output):
            return (grad_output * ctx.gamma,) + extra_grads(lib)

    return ScaleByNumber


@pytest.mark.parametrize("extra_grads", [
    lambda lib: (None, None),
    lambda lib: (lib.ones(()), None),  # a tensor for the number gamma
    lambda lib: (None, 0),  # a number for the flag
    lambda lib: (None, None, None),  # trailing Nones beyond the inputs are dropped
    lambda lib: (None, None, 1.0),  # the count is checked first
    lambda lib: (1.0,),
], ids=["nones", "tensor-for-number", "number-for-flag", "extra-none", "extra-value", "short"])
@pytest.mark.parametrize("through", ["backward", "grad"])
def test_a_gradient_for_a_non_tensor_input_is_refused_as_torch(extra_grads, through):
    outcomes = []
    for lib in LIBS:
        fn = _scaled_by_number(lib, extra_grads)
        x = lib.tensor([1.0, 2.0], requires_grad=True)

        def run(lib=lib, fn=fn, x=x):
            loss = fn.apply(x, 2.0, True).sum()
            if through == "grad":
                return lib.autograd.grad(loss, x)[0].tolist()
            loss.backward()
            return x.grad.tolist()

        outcomes.append(_outcome(run))
    assert outcomes[0] == outcomes[1]


class _Opaque:
    pass


def _saving_beside_the_cost(lib, saved):
    """A Function of (D, gamma) that saves D and ``saved`` for backward."""

    class SoftMinTable(lib.autograd.Function):
        @staticmethod
        def forward(ctx, D, gamma):
            ctx.save_for_backward(D, saved)
            return (D * gamma).sum(-1)

        @staticmethod
        def backward(ctx, grad_output):
            D, _ = ctx.saved_tensors
            return grad_output.unsqueeze(-1).expand_as(D) * 0.5, None

    return SoftMinTable


@pytest.mark.parametrize("make_saved", [
    lambda lib: 0.7,
    lambda lib: 3,
    lambda lib: "gamma",
    lambda lib: [lib.ones(2)],
    lambda lib: np.zeros((2, 3)),
    lambda lib: np.float64(0.7),
    lambda lib: lib.float64,
    lambda lib: lib.Size([2]),
    lambda lib: _Opaque(),
    lambda lib: None,  # None is allowed
], ids=["float", "int", "str", "list", "ndarray", "numpy-scalar", "dtype", "Size", "class", "None"])
@pytest.mark.parametrize("recording", ["records", "no_grad", "no-input-requires-grad"])
def test_save_for_backward_refuses_what_is_no_tensor_as_torch(make_saved, recording):
    outcomes = []
    for lib in LIBS:
        fn = _saving_beside_the_cost(lib, make_saved(lib))
        D = lib.ones(2, 3, requires_grad=recording != "no-input-requires-grad")

        def run(lib=lib, fn=fn, D=D):
            if recording == "no_grad":
                with lib.no_grad():
                    return fn.apply(D, 0.5).tolist()
            out = fn.apply(D, 0.5)
            if out.requires_grad:
                out.sum().backward()
                return out.tolist(), D.grad.tolist()
            return out.tolist()

        outcomes.append(_outcome(run))
    assert outcomes[0] == outcomes[1]


def test_save_for_backward_refusal_in_setup_context_as_torch():
    outcomes = []
    for lib in LIBS:

        class Scale(lib.autograd.Function):
            @staticmethod
            def forward(x, gamma):
                return x * gamma

            @staticmethod
            def setup_context(ctx, inputs, output):
                ctx.save_for_backward(*inputs)

            @staticmethod
            def backward(ctx, grad_output):
                return grad_output, None

        x = lib.ones(2, requires_grad=True)
        outcomes.append(_outcome(lambda fn=Scale, x=x: fn.apply(x, 2.0).tolist()))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == "TypeError"


def test_gradcheck_without_an_input_requiring_grad_words_it_as_torch():
    outcomes = [_outcome(lambda lib=lib: lib.autograd.gradcheck(lambda t: t ** 2, (lib.ones(2, dtype=lib.float64),)))
                for lib in LIBS]
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == "ValueError"


def _wrong_rules(lib):
    """w * x ** 2 with a backward and a jvp three and a half times too large in x."""

    class WeightedSquare(lib.autograd.Function):
        @staticmethod
        def forward(w, x):
            return w * x ** 2

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(*inputs)
            ctx.save_for_forward(*inputs)

        @staticmethod
        def backward(ctx, grad_output):
            w, x = ctx.saved_tensors
            return grad_output * x ** 2, grad_output * 7 * w * x

        @staticmethod
        def jvp(ctx, w_tangent, x_tangent):
            w, x = ctx.saved_tensors
            return x_tangent * 7 * w * x

    return WeightedSquare


@pytest.mark.parametrize("mode", ["backward", "forward"])
@pytest.mark.parametrize("weight_requires_grad", [False, True])
def test_a_gradcheck_mismatch_counts_the_inputs_that_require_grad_as_torch(mode, weight_requires_grad):
    kwargs = {"check_forward_ad": True, "check_backward_ad": False} if mode == "forward" else {}
    outcomes = []
    for lib in LIBS:
        fn = _wrong_rules(lib)
        w = lib.tensor([1.0, 1.5], dtype=lib.float64, requires_grad=weight_requires_grad)
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        kind, message = _outcome(lambda lib=lib, fn=fn, w=w, x=x: lib.autograd.gradcheck(fn.apply, (w, x), **kwargs))
        outcomes.append((kind, message.replace("chainrule.", "torch.")))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == "GradcheckError"


@pytest.mark.parametrize("equation, shape", [
    ("ij->ji", (2, 3)),
    ("ij->ij", (2, 3)),
    ("ba", (2, 3)),
    ("nchpwq->nhwpqc", (2, 3, 2, 4, 2, 4)),
    ("...ij->...ji", (2, 3, 4)),
    ("i...j->j...i", (2, 3, 4, 5)),
    ("i...->...i", (3,)),
])
def test_einsum_that_only_reorders_one_operand_is_a_view_as_torch(equation, shape):
    seen = []
    for lib in LIBS:
        x = lib.arange(float(np.prod(shape))).reshape(shape).clone()
        out = lib.einsum(equation, x)
        is_view = out._base is x
        out.add_(100.0)  # reaches x through a view
        leaf = lib.arange(float(np.prod(shape))).reshape(shape).requires_grad_()
        traced = lib.einsum(equation, leaf)
        (traced * lib.arange(float(traced.numel())).reshape(traced.shape)).sum().backward()
        seen.append((out.tolist(), out.stride(), out.is_contiguous(), is_view, x.tolist(), traced.grad_fn.name(),
                     leaf.grad.tolist()))
    assert seen[0] == seen[1]
