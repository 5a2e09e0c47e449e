"""Session 21's op-overhead work: the fast paths it added keep the graph, the saved-tensor names and
the errors the general paths give (compared with torch where it is importable)."""

import pytest

import chainrule
from chainrule.autograd.function import Node


# ---- torch's _saved_<name> attributes are class attributes now, not Node.__getattr__ -----------
def test_node_classes_have_no_getattr_hook():
    # a __getattr__ anywhere in a node's class makes every attribute read of every node slow
    x = chainrule.ones(3, requires_grad=True)
    for fn in ((x * 2).grad_fn, x.tanh().grad_fn, x.sum().grad_fn, (x * 2).grad_fn.next_functions[0][0]):
        assert all("__getattr__" not in vars(klass) for klass in type(fn).__mro__)


def test_saved_names_answer_as_before():
    x = chainrule.tensor([1.0, 2.0], requires_grad=True)
    y = chainrule.tensor([3.0, 4.0], requires_grad=True)
    product = x * y
    assert product.grad_fn._saved_self is x and product.grad_fn._saved_other is y
    assert type(product.grad_fn._raw_saved_self).__name__ == "SavedTensor"
    assert "_raw_saved_self" in dir(product.grad_fn) and "_saved_self" in dir(product.grad_fn)
    assert "_raw_saved_result" not in dir(product.grad_fn)
    with pytest.raises(AttributeError, match="'MulBackward0' object has no attribute '_saved_result'"):
        product.grad_fn._saved_result  # noqa: B018
    with pytest.raises(AttributeError, match="type object 'MulBackward0' has no attribute '_saved_self'"):
        type(product.grad_fn)._saved_self  # noqa: B018
    assert not hasattr(type(product.grad_fn), "_saved_self")
    result = x.tanh()
    assert result.grad_fn._saved_result.tolist() == result.tolist()
    assert not hasattr(result.grad_fn, "_saved_self")
    result.sum().backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        result.grad_fn._saved_result  # noqa: B018


def test_a_value_stored_on_a_custom_ctx_wins_over_the_saved_name():
    class Scale(chainrule.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx._saved_self = "mine"
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * 2

    x = chainrule.ones(2, requires_grad=True)
    node = Scale.apply(x).grad_fn
    assert isinstance(node, Node) and node._saved_self == "mine"
    assert "_saved_self" not in dir(node)


# ---- an arithmetic unary rule's plain backward runs on the arrays, as its general path did ----
@pytest.mark.parametrize("name", ["tanh", "exp", "log", "sqrt", "sigmoid", "reciprocal", "square"])
def test_unary_array_backward_matches_the_recorded_rule_and_torch(name):
    torch = pytest.importorskip("torch")
    values = [0.25, 0.5, 1.5, 3.0]
    grads = []
    for create_graph in (False, True):
        x = chainrule.tensor(values, requires_grad=True)
        (g,) = chainrule.autograd.grad(getattr(x, name)().sum(), x, create_graph=create_graph)
        grads.append(g.detach().numpy())
    expected = torch.tensor(values, requires_grad=True)
    (theirs,) = torch.autograd.grad(getattr(expected, name)().sum(), expected)
    assert grads[0].tolist() == grads[1].tolist()
    assert grads[0].tolist() == pytest.approx(theirs.tolist(), rel=1e-5)


def test_unary_backward_records_under_create_graph_and_conjugates_complex_gradients():
    x = chainrule.tensor([0.5, 1.0], requires_grad=True)
    (g,) = chainrule.autograd.grad(x.tanh().sum(), x, create_graph=True)
    assert type(g.grad_fn).__name__ == "TanhBackwardBackward0"
    z = chainrule.tensor([0.5 + 1.0j], requires_grad=True)
    (gz,) = chainrule.autograd.grad(z.exp(), z, grad_outputs=chainrule.tensor([1.0 + 0.0j]))
    assert gz.tolist() == pytest.approx([complex(z.exp().conj().item())])
