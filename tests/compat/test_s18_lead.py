"""Session 18, lead: expand's views and autograd.grad's refusals, each against torch 2.13."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("call", [
    lambda lib, x: x.expand(2, 3),
    lambda lib, x: x.expand(-1, -1),
    lambda lib, x: x.expand(x.shape),
    lambda lib, x: x.expand_as(x),
    lambda lib, x: lib.broadcast_to(x, (2, 3)),
    lambda lib, x: x.expand(1, 2, 3),
])
def test_expand_to_the_same_elements_is_a_new_view_with_its_own_node(call):
    for lib in (torch, chainrule):
        x = lib.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], requires_grad=True)
        y = call(lib, x)
        assert y is not x
        assert type(y.grad_fn).__name__ == "ExpandBackward0"
        assert y._base is x
        (y * lib.arange(6.0).reshape(y.shape)).sum().backward()
        if lib is torch:
            expected = x.grad.numpy()
        else:
            assert (x.grad.numpy() == expected).all()


def test_broadcast_tensors_hands_back_a_tensor_already_of_the_shape():
    for lib in (torch, chainrule):
        x = lib.ones(2, 3, requires_grad=True)
        first, second = lib.broadcast_tensors(x, lib.ones(1, 3))
        assert first is x
        assert type(second.grad_fn).__name__ != "ExpandBackward0"  # a constant: no node at all
        assert second.grad_fn is None


def test_writes_through_an_expand_that_repeats_nothing_reach_the_base():
    # a leading size-1 dim repeats no element: torch writes through it; NumPy's broadcast_to view
    # was read-only, so chainrule refused
    for lib in (torch, chainrule):
        x = lib.zeros(2, 3)
        x.expand(1, 2, 3).add_(1)
        x.expand(2, 3)[0, 1] = 5.0
        assert x.tolist() == [[1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]


def test_writes_through_a_repeating_expand_are_refused_as_torch_refuses():
    for lib in (torch, chainrule):
        with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
            lib.zeros(1, 3).expand(2, 3).add_(1)


def test_unused_and_non_differentiable_inputs_are_refused_in_torch_words():
    for lib in (torch, chainrule):
        x = lib.ones(2, requires_grad=True)
        unused = lib.ones(1, requires_grad=True)
        with pytest.raises(RuntimeError) as caught:
            lib.autograd.grad((x * 2).sum(), [x, unused])
        assert str(caught.value) == ("The differentiated Tensor at index 1 appears to not have been used in the "
                                     "graph. Set allow_unused=True if this is the desired behavior.")
        with pytest.raises(RuntimeError) as caught:
            lib.autograd.grad((x * 2).sum(), [x, lib.ones(1)])
        assert str(caught.value) == "One of the differentiated Tensors does not require grad"


def _add_one_in_place(lib):
    class AddOne(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            x.add_(1)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad

    return AddOne


def _facts(lib, tensor, other):
    return (tensor is other, tensor.requires_grad, tensor.grad_fn is None, tensor._version,
            tensor._base is other)


def test_a_dirty_input_under_no_grad_comes_back_as_a_detached_alias():
    seen = []
    for lib in (torch, chainrule):
        leaf = lib.ones(3, requires_grad=True)
        middle = leaf * 2
        with lib.no_grad():
            out = _add_one_in_place(lib).apply(middle)
        assert type(middle.grad_fn).__name__ == "MulBackward0"  # the input keeps its history
        assert out.tolist() == middle.tolist() == [3.0, 3.0, 3.0]
        seen.append(_facts(lib, out, middle))
    assert seen[0] == seen[1] == (False, False, True, 2, False)


def test_outputs_without_history_as_torch_hands_them_back():
    def run(lib):
        class Pair(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x, y):
                ctx.mark_non_differentiable(y)
                return x, y

            @staticmethod
            def backward(ctx, grad_x, grad_y):
                return grad_x, None

        a, b, c = lib.ones(3, requires_grad=True), lib.ones(3, requires_grad=True), lib.ones(3)
        facts = []
        p, q = Pair.apply(a, b)  # q: marked non-differentiable, an input that requires grad
        facts.append(_facts(lib, q, b))
        with lib.no_grad():
            p, q = Pair.apply(a, b)  # nothing recorded: inputs that require grad come back detached
        facts += [_facts(lib, p, a), _facts(lib, q, b)]
        p, q = Pair.apply(c, c)  # nothing requires grad: an unchanged input comes back as a fresh view
        facts.append(_facts(lib, p, c))
        return facts

    assert run(chainrule) == run(torch)
