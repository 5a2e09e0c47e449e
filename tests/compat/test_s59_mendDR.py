"""Regressions of the autograd fuzzer's open kinds mended in session 59 (lane mendDR): each compared
with torch, cut down to the step that differed."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

LIBS = (torch, chainrule)


def _raised(call) -> str | None:
    try:
        call()
    except Exception as error:  # noqa: BLE001 - the class and message are compared
        return f"{type(error).__name__}: {error}"
    return None


def _gradient_or_refusal(lib, write, dtype):
    leaf = lib.tensor([[0.75, 1.5], [1.25, 0.5]], dtype=getattr(lib, dtype), requires_grad=True)
    x = leaf * 1.5 + 0.25
    y = write(x)
    refusal = _raised(lambda: y.sum().backward())
    return refusal, (None if leaf.grad is None else leaf.grad.tolist()), y.grad_fn.name()


# ---------------------------------------------------------------- an in-place op whose operand is self
# torch saves self's old value where the rule reads the input ``self``, and self itself where it reads
# another operand that is self (x.mul_(x)'s other): the write changes that one, and backward refuses it
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("write", [
    lambda x: x.mul_(x), lambda x: x.div_(x), lambda x: x.pow_(x), lambda x: x.atan2_(x),
    lambda x: x.addcmul_(x, x), lambda x: x.addcdiv_(x, x), lambda x: x.hypot_(x), lambda x: x.fmod_(x),
    lambda x: x.xlogy_(x),
    # self only as the input self, or saved by another op: the old value serves, as before
    lambda x: x.add_(x), lambda x: x.sub_(x, alpha=2), lambda x: x.lerp_(x, 0.3),
    lambda x: x.add_(x * 2), lambda x: x.mul_(2),
], ids=["mul", "div", "pow", "atan2", "addcmul", "addcdiv", "hypot", "fmod", "xlogy",
        "add", "sub", "lerp", "add_product", "mul_number"])
def test_inplace_op_with_self_as_operand_refuses_backward_as_torch(write, dtype):
    ours, theirs = (_gradient_or_refusal(lib, write, dtype) for lib in (chainrule, torch))
    assert ours[0] == theirs[0]
    assert ours[2] == theirs[2]
    if theirs[1] is not None:
        np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-6)
    else:
        assert ours[1] is None


def test_version_error_names_a_node_without_backward_and_digit_as_torch():
    # torch strips "Backward0" (MulBackward0: Mul), "Backward" before a digit (PowBackward1: Pow1),
    # and keeps a name that has no digit after it (torch::autograd::CopyBackwards)
    def refusal(lib):
        leaf = lib.tensor([0.5, 1.5, 2.0], requires_grad=True)
        x = leaf * 2
        y = x * x
        x.copy_(lib.tensor([1.0, 2.0, 3.0]))
        return _raised(lambda: y.sum().backward())

    assert refusal(chainrule) == refusal(torch)


# ---------------------------------------------------------------- views made before their root's requires_grad_()
# torch's view reads requires_grad from its base: it requires grad with no grad_fn and no gradient edge,
# its write is refused as a view of a leaf's, and once the root's version moves its grad_fn is regenerated
_VIEWS = {"select": lambda b: b[0], "t": lambda b: b.t(), "expand": lambda b: b.unsqueeze(0).expand(2, 3, 2),
          "as_strided": lambda b: b.as_strided((2,), (1,)), "view_of_view": lambda b: b[1:][0]}


def _no_grad_write(lib, base):
    with lib.no_grad():
        base.mul_(2)


def _grad_or_none(t):
    return None if t.grad is None else t.grad.tolist()


_AFTER = {
    "nothing": lambda lib, b, v: None,
    "op": lambda lib, b, v: (lambda y: (y.requires_grad, type(y.grad_fn).__name__))(v * 2),
    "backward": lambda lib, b, v: ((v * 2).sum().backward(), _grad_or_none(b), _grad_or_none(v))[1:],
    "inplace": lambda lib, b, v: v.add_(1),
    "no_grad_write_then_backward": lambda lib, b, v: (_no_grad_write(lib, b), (v * 2).sum().backward(),
                                                      _grad_or_none(b))[2],
    "view_requires_grad_false": lambda lib, b, v: (v.requires_grad_(False), v.requires_grad)[1],
    "root_requires_grad_false": lambda lib, b, v: (b.requires_grad_(False), v.requires_grad)[1],
    "view_requires_grad": lambda lib, b, v: (v.requires_grad_(), (v * 2).sum().backward(), _grad_or_none(v),
                                             _grad_or_none(b))[2:],
    "view_of_it": lambda lib, b, v: (lambda w: (w.requires_grad, type(w.grad_fn).__name__))(v.unsqueeze(0)),
}


def _view_before_requires_grad(lib, view, after, under_no_grad):
    base = lib.tensor(np.arange(6.0).reshape(3, 2) / 7, dtype=lib.float32)
    with lib.set_grad_enabled(not under_no_grad):
        v = _VIEWS[view](base)
    base.requires_grad_()
    try:
        out = _AFTER[after](lib, base, v)
        return repr(out), v.requires_grad, v.is_leaf, None if v.grad_fn is None else v.grad_fn.name()
    except RuntimeError as error:
        return f"RuntimeError: {error}", v.requires_grad


@pytest.mark.parametrize("under_no_grad", [False, True], ids=["grad", "no_grad"])
@pytest.mark.parametrize("after", list(_AFTER))
@pytest.mark.parametrize("view", list(_VIEWS))
def test_view_made_before_root_requires_grad_as_torch(view, after, under_no_grad):
    ours = _view_before_requires_grad(chainrule, view, after, under_no_grad)
    assert ours == _view_before_requires_grad(torch, view, after, under_no_grad)

