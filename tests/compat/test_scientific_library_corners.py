"""Torch behaviours that scientific libraries (zuko, torchsde) lean on, compared with torch 2.13.

- ``autograd.grad`` to a non-leaf input only hands over the gradient reaching that input: the
  input's own node does not run, so its freed saved values do not matter (zuko's bisection inverse
  differentiates ``f(x)`` to its parameters inside a backward, after the graph that made them ran).
- A binary operator whose op refuses the operand answers NotImplemented, so Python tries the other
  operand's reflected method (zuko's ``NestedTensor``, a tuple subclass with ``__rmul__``), and an
  operand nobody accepts fails with Python's own message.
- ``Tensor.split`` calls its size ``split_size`` (torchsde: ``flat.split(split_size=numels)``);
  ``torch.split`` calls it ``split_size_or_sections``.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _grad_to_nonleaf_after_its_graph_ran(lib):
    x = lib.tensor(np.array([0.5, 1.0, -0.25]), requires_grad=True)
    scale = x.exp()
    (scale * 2).sum().backward()  # frees ExpBackward0's saved result
    y = (scale * scale * 3).sum()
    (to_scale,) = lib.autograd.grad(y, scale)
    try:
        lib.autograd.grad((scale * scale).sum(), x)  # through the freed node: refused on both
        through_freed = "ran"
    except RuntimeError as error:
        through_freed = "backward through the graph a second time" in str(error).lower()
    return to_scale.numpy(), through_freed


def test_grad_to_a_non_leaf_does_not_run_that_inputs_freed_node():
    ours, theirs = _grad_to_nonleaf_after_its_graph_ran(chainrule), _grad_to_nonleaf_after_its_graph_ran(torch)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-15)
    assert ours[1] is theirs[1] is True


def test_grad_to_a_non_leaf_and_beyond_it_still_runs_the_node():
    def grads(lib):
        x = lib.tensor(np.array([0.5, -1.5]), requires_grad=True)
        h = x.sin()
        y = (h * h).sum()
        return [g.numpy() for g in lib.autograd.grad(y, (h, x))]

    for ours, theirs in zip(grads(chainrule), grads(torch)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-15)


class _Pair(tuple):
    """A tuple of tensors with elementwise arithmetic, as zuko's NestedTensor."""

    def __rmul__(self, other):
        return _Pair(other * x for x in self)

    def __radd__(self, other):
        return ("radd", len(self))

    def __rsub__(self, other):
        return ("rsub", len(self))

    def __rtruediv__(self, other):
        return ("rtruediv", len(self))

    def __rmatmul__(self, other):
        return ("rmatmul", len(self))


def _reflected_results(lib):
    dt = lib.tensor(0.5)
    pair = _Pair((lib.tensor([1.0, 2.0]), lib.tensor([4.0])))
    scaled = dt * pair
    return {
        "mul": (type(scaled).__name__, [t.tolist() for t in scaled]),
        "add": dt + pair, "sub": dt - pair, "div": dt / pair, "matmul": dt @ pair,
    }


def test_operand_refused_by_the_tensor_goes_to_its_reflected_method():
    assert _reflected_results(chainrule) == _reflected_results(torch)


class _Opaque:
    pass


@pytest.mark.parametrize("expression", ["t * o", "t + o", "t - o", "t / o", "t ** o", "t // o", "t % o",
                                        "t & o", "t @ o", "o * t", "o - t"])
def test_operand_nobody_accepts_fails_with_pythons_message(expression):
    def outcome(lib):
        namespace = {"t": lib.tensor([1.0, 2.0]), "o": _Opaque()}
        with pytest.raises(TypeError) as info:
            eval(expression, namespace)
        return str(info.value)

    assert outcome(chainrule) == outcome(torch)


def test_inplace_operator_with_a_refused_operand_fails_as_torch():
    def outcome(lib):
        t = lib.tensor([1.0, 2.0])
        with pytest.raises(TypeError) as info:
            t += _Opaque()
        return str(info.value), t.tolist()

    assert outcome(chainrule) == outcome(torch)


def test_tensor_split_keyword_is_split_size():
    def pieces(lib):
        t = lib.arange(7.0)
        by_keyword = [p.tolist() for p in t.split(split_size=3)]
        sections = [p.tolist() for p in t.split(split_size=[2, 5], dim=0)]
        function = [p.tolist() for p in lib.split(t, split_size_or_sections=4)]
        with pytest.raises(TypeError) as method_error:
            t.split(split_size_or_sections=3)
        with pytest.raises(TypeError) as function_error:
            lib.split(t, split_size=3)
        return by_keyword, sections, function, str(method_error.value), str(function_error.value)

    assert pieces(chainrule) == pieces(torch)


def test_split_method_pieces_keep_the_gradient():
    def grad(lib):
        x = lib.tensor(np.linspace(-1.0, 1.0, 6), requires_grad=True)
        first, second = x.split(split_size=(4, 2))
        (first.exp().sum() + (second ** 3).sum()).backward()
        return x.grad.numpy()

    np.testing.assert_allclose(grad(chainrule), grad(torch), rtol=1e-15)
