"""Double backward (``create_graph=True``) that torch's op_db found wrong on chainrule
(tools/torch_opinfo_gradgrad_trial.py), each checked by finite differences and against torch 2.13."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _double_backward(lib, x_value, v_value, w_value):
    """prod's first-order gradient with a graph, then its gradient along w, with respect to x and v."""
    x = lib.tensor(x_value, dtype=lib.complex128, requires_grad=True)
    v = lib.tensor(v_value, dtype=lib.complex128, requires_grad=True)
    (g,) = lib.autograd.grad(lib.prod(x), x, v, create_graph=True)
    second = lib.autograd.grad(g, (x, v), lib.tensor(w_value, dtype=lib.complex128), allow_unused=True)
    return g, second


@pytest.mark.parametrize("x_value", [0j, 2 - 1j])
def test_prod_of_a_0d_complex_tensor_differentiates_twice_as_torch(x_value):
    # a 0-d prod's gradient is the cotangent itself: its derivative in x is None, not a conj() of None
    g, second = _double_backward(chainrule, x_value, 0.3 + 0.2j, 1 - 0.5j)
    torch_g, torch_second = _double_backward(torch, x_value, 0.3 + 0.2j, 1 - 0.5j)
    assert complex(g.item()) == pytest.approx(complex(torch_g.item()), rel=1e-12)
    for mine, theirs in zip(second, torch_second):  # None and zero alike
        mine = 0j if mine is None else complex(mine.item())
        theirs = 0j if theirs is None else complex(theirs.item())
        assert mine == pytest.approx(theirs, rel=1e-12, abs=1e-15)


def test_prod_with_a_zero_passes_gradgradcheck_in_complex128():
    x = chainrule.tensor([[2 + 1j, 0j, 3 - 1j], [1j, 0.5 + 0j, 0j]], dtype=chainrule.complex128,
                         requires_grad=True)
    assert chainrule.autograd.gradgradcheck(lambda t: chainrule.prod(t, 1), (x,))
    assert chainrule.autograd.gradgradcheck(lambda t: chainrule.prod(t[0, :1]), (x,))
