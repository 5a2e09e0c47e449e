"""Double backward (``create_graph=True``) that torch's op_db found wrong on chainrule
(tools/torch_opinfo_gradgrad_trial.py), each checked by finite differences and against torch 2.13."""

import numpy as np
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


# ---- a constant cotangent (a gradient penalty's ones): the first-order gradient still has a graph
def _penalty(lib, build, shapes, seed=0):
    """x.grad after differentiating the gradient of build(*inputs).sum() (a gradient penalty with a
    constant cotangent), and the first-order gradient's node name."""
    generator = torch.Generator().manual_seed(seed)
    values = [torch.randn(shape, dtype=torch.float64, generator=generator) for shape in shapes]
    inputs = [lib.tensor(v.numpy(), requires_grad=True) for v in values]
    out = build(lib, *inputs)
    grads = lib.autograd.grad(out.sum(), inputs, create_graph=True)
    names = [type(g.grad_fn).__name__ if g.grad_fn is not None else None for g in grads]
    sum((g * g).sum() for g in grads).backward()
    return names, [None if x.grad is None else x.grad.detach().numpy() for x in inputs]


def _assert_penalty_as_torch(build, shapes, node_names=True):
    """The first-order gradients have a graph where torch's have one (under torch's node names unless
    ``node_names`` is False), and the penalty's gradients agree (None and zeros alike)."""
    names, second = _penalty(chainrule, build, shapes)
    torch_names, torch_second = _penalty(torch, build, shapes)
    if node_names:
        assert names == torch_names
    assert [name is None for name in names] == [name is None for name in torch_names]
    for mine, theirs, shape in zip(second, torch_second, shapes):
        mine = np.zeros(shape) if mine is None else mine
        theirs = np.zeros(shape) if theirs is None else theirs
        assert mine == pytest.approx(theirs, rel=1e-10, abs=1e-12)


PIECEWISE_ACTIVATIONS = {
    "relu": lambda lib, x: lib.nn.functional.relu(x),
    "relu6": lambda lib, x: lib.nn.functional.relu6(x),
    "leaky_relu": lambda lib, x: lib.nn.functional.leaky_relu(x, 0.2),
    "hardtanh": lambda lib, x: lib.nn.functional.hardtanh(x, -0.5, 0.5),
    "threshold": lambda lib, x: lib.nn.functional.threshold(x, 0.1, 2.0),
    "hardshrink": lambda lib, x: lib.nn.functional.hardshrink(x, 0.3),
    "softshrink": lambda lib, x: lib.nn.functional.softshrink(x, 0.3),
}


@pytest.mark.parametrize("name", sorted(PIECEWISE_ACTIVATIONS))
def test_piecewise_linear_activation_gradient_has_a_graph_as_torch(name):
    # torch's ThresholdBackwardBackward0 & co. take (grad, self): zeros in x, not "does not require grad"
    _assert_penalty_as_torch(PIECEWISE_ACTIVATIONS[name], [(3, 4)])


@pytest.mark.parametrize("name", sorted(PIECEWISE_ACTIVATIONS))
def test_piecewise_linear_activation_passes_gradgradcheck(name):
    x = chainrule.tensor([[-1.3, -0.2, 0.45, 2.0], [0.7, -0.6, 1.1, -2.5]], dtype=chainrule.float64,
                         requires_grad=True)
    assert chainrule.autograd.gradgradcheck(lambda t: PIECEWISE_ACTIVATIONS[name](chainrule, t), (x,))


POOLS = {
    "max_pool2d": lambda lib, x: lib.nn.functional.max_pool2d(x, 2, 1),
    "max_pool2d_with_indices": lambda lib, x: lib.nn.functional.max_pool2d(x, 2, return_indices=True)[0],
    "max_pool3d": lambda lib, x: lib.nn.functional.max_pool3d(x, (1, 2, 2)),
    "avg_pool2d": lambda lib, x: lib.nn.functional.avg_pool2d(x, 3, 1, 1),
    "avg_pool3d": lambda lib, x: lib.nn.functional.avg_pool3d(x, (1, 2, 2)),
    "adaptive_avg_pool2d": lambda lib, x: lib.nn.functional.adaptive_avg_pool2d(x, (3, 2)),
    "adaptive_max_pool2d": lambda lib, x: lib.nn.functional.adaptive_max_pool2d(x, (3, 2)),
}


@pytest.mark.parametrize("name", sorted(POOLS))
def test_pooling_gradient_has_a_graph_as_torch(name):
    # torch's MaxPool2DWithIndicesBackwardBackward0, AvgPool2DBackwardBackward0, ... take self as well
    _assert_penalty_as_torch(POOLS[name], [(2, 3, 2, 5, 4) if name.endswith("3d") else (2, 3, 5, 4)])


@pytest.mark.parametrize("name", sorted(POOLS))
def test_pooling_passes_gradgradcheck(name):
    shape = (1, 2, 2, 5, 4) if name.endswith("3d") else (1, 2, 5, 4)
    x = chainrule.randn(*shape, dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradgradcheck(lambda t: POOLS[name](chainrule, t), (x,))


def test_conv_bias_gradient_has_a_graph_as_torch():
    # torch's ConvolutionBackwardBackward0 takes (grad, input, weight): the bias gradient Σ grad has
    # edges to both, with derivative zero
    _assert_penalty_as_torch(lambda lib, x, w, b: lib.nn.functional.conv2d(x, w, b, padding=1),
                             [(2, 3, 5, 4), (4, 3, 3, 3), (4,)])
    _assert_penalty_as_torch(lambda lib, x, w, b: lib.nn.functional.conv_transpose1d(x, w, b, stride=2),
                             [(2, 3, 5), (3, 2, 3), (2,)])


def test_nll_loss_gradient_has_a_graph_as_torch():
    # torch's NllLossBackwardBackward0 takes self: a penalty on the gradient of nll_loss gives zeros
    target = [1, 0, 3]
    _assert_penalty_as_torch(lambda lib, x: lib.nn.functional.nll_loss(x, lib.tensor(target)), [(3, 4)])
    _assert_penalty_as_torch(
        lambda lib, x: lib.nn.functional.nll_loss(x, lib.tensor(target), reduction="none"), [(3, 4)])


def test_nll_loss_and_cross_entropy_pass_gradgradcheck():
    x = chainrule.randn(3, 4, dtype=chainrule.float64, requires_grad=True)
    target = chainrule.tensor([1, 0, 3])
    assert chainrule.autograd.gradgradcheck(lambda t: chainrule.nn.functional.nll_loss(t, target), (x,))
    assert chainrule.autograd.gradgradcheck(
        lambda t: chainrule.nn.functional.cross_entropy(t, target, label_smoothing=0.1), (x,))


PADS = {
    "reflect": lambda lib, x: lib.nn.functional.pad(x, (2, 1, 1, 0), mode="reflect"),
    "replicate": lambda lib, x: lib.nn.functional.pad(x, (2, 1, 1, 3), mode="replicate"),
    "replicate_negative": lambda lib, x: lib.nn.functional.pad(x, (-1, 2, 1, -1), mode="replicate"),
}


@pytest.mark.parametrize("mode", sorted(PADS))
def test_reflect_and_replicate_pad_gradient_has_a_graph_as_torch(mode):
    # torch's ReflectionPad2DBackwardBackward0 / ReplicationPad2DBackwardBackward0 take self
    _assert_penalty_as_torch(PADS[mode], [(2, 3, 4, 5)], node_names=mode != "replicate_negative")
    x = chainrule.randn(1, 2, 4, 5, dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradgradcheck(lambda t: PADS[mode](chainrule, t), (x,))


def test_prelu_input_gradient_has_a_graph_as_torch():
    # with a constant slope, d/dx of prelu's input gradient is zero, yet torch records it on x
    _assert_penalty_as_torch(lambda lib, x: lib.nn.functional.prelu(x, lib.tensor([0.25, -0.5, 2.0],
                                                                                    dtype=lib.float64)),
                             [(2, 3, 4)])
    x = chainrule.randn(2, 3, 4, dtype=chainrule.float64, requires_grad=True)
    w = chainrule.tensor([0.25, -0.5, 2.0], dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradgradcheck(chainrule.nn.functional.prelu, (x, w))
