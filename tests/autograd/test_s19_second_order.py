"""First-order gradients that torch records with a graph (tools/torch_opinfo_gradgrad_trial.py's
"not_differentiable": a gradient penalty's constant cotangent), torch's node names under
create_graph and for the foreach ops, and what torch's vmap refuses (in-place writes of a batched
value into an unbatched tensor, data-dependent output shapes), each against torch 2.13."""

import numpy as np
import pytest

import chainrule
from tests.autograd.test_s18_gradgrad import _assert_penalty_as_torch

torch = pytest.importorskip("torch")


def _rrelu_training(inplace):
    def build(lib, x):
        lib.manual_seed(7)  # the same slopes on both libraries (chainrule draws torch's CPU stream)
        if inplace:
            return lib.nn.functional.rrelu(x * 1.0, training=True, inplace=True)
        return lib.nn.functional.rrelu(x, training=True)
    return build


@pytest.mark.parametrize("inplace", [False, True])
def test_training_rrelu_gradient_has_a_graph_as_torch(inplace):
    # torch's RreluWithNoiseBackwardBackward0 takes self: zeros in x, not "does not require grad"
    _assert_penalty_as_torch(_rrelu_training(inplace), [(3, 4)])
    x = chainrule.tensor([[-1.0, 0.5], [2.0, -0.25]], dtype=chainrule.float64, requires_grad=True)
    assert type(chainrule.nn.functional.rrelu(x, training=True).grad_fn).__name__ == "RreluWithNoiseBackward0"
    assert chainrule.autograd.gradgradcheck(_rrelu_training(False).__get__(chainrule), (x,))


SCATTERED_PRODUCTS = {
    "scatter_reduce": lambda lib, x, s: x.scatter_reduce(1, lib.tensor([[0, 2, 0], [3, 3, 1]]), s, "prod",
                                                         include_self=False),
    "index_reduce": lambda lib, x, s: x.index_reduce(0, lib.tensor([2, 0, 2]), s, "prod", include_self=False),
}


@pytest.mark.parametrize("name", sorted(SCATTERED_PRODUCTS))
def test_prod_without_self_keeps_the_input_gradient_graph_as_torch(name):
    # torch zeroes the written slots of out/input (ScatterBackward1, IndexFillBackward0): edges to both
    shapes = [(2, 4), (2, 3)] if name == "scatter_reduce" else [(3, 2), (3, 2)]
    _assert_penalty_as_torch(SCATTERED_PRODUCTS[name], shapes)
    x, s = (chainrule.rand(*shape, dtype=chainrule.float64).add(0.5).requires_grad_() for shape in shapes)
    assert chainrule.autograd.gradgradcheck(lambda a, b: SCATTERED_PRODUCTS[name](chainrule, a, b), (x, s))


def _evaluation_batch_norm(lib, x, w, b):
    mean, var = lib.tensor([0.1, -0.3], dtype=lib.float64), lib.tensor([0.5, 2.0], dtype=lib.float64)
    return lib.nn.functional.batch_norm(x, mean, var, w, b, training=False)


BIAS_NORMS = {
    "batch_norm_eval": (_evaluation_batch_norm, [(2, 2, 3), (2,), (2,)]),
    "native_batch_norm_eval": (lambda lib, x, w, b: lib.native_batch_norm(
        x, w, b, lib.zeros(2, dtype=lib.float64), lib.ones(2, dtype=lib.float64), False, 0.1, 1e-5)[0],
        [(2, 2, 3), (2,), (2,)]),
    "instance_norm": (lambda lib, x, w, b: lib.nn.functional.instance_norm(x, weight=w, bias=b),
                      [(2, 2, 3), (2,), (2,)]),
}


@pytest.mark.parametrize("name", sorted(BIAS_NORMS))
def test_norm_bias_gradient_has_a_graph_as_torch(name):
    # torch computes the bias gradient Σ grad in its one norm node, from the saved input too
    build, shapes = BIAS_NORMS[name]
    _assert_penalty_as_torch(build, shapes, node_names=False)
    inputs = [chainrule.randn(*shape, dtype=chainrule.float64, requires_grad=True) for shape in shapes]
    assert chainrule.autograd.gradgradcheck(lambda *xs: build(chainrule, *xs), inputs)


def test_norm_bias_gradient_node_is_torchs():
    x, w, b = (chainrule.randn(*shape, dtype=chainrule.float64, requires_grad=True) for shape in [(2, 2, 3), (2,), (2,)])
    grads = chainrule.autograd.grad(_evaluation_batch_norm(chainrule, x, w, b).sum(), (x, w, b), create_graph=True)
    assert type(grads[2].grad_fn).__name__ == "NativeBatchNormBackwardBackward0"
    grads = chainrule.autograd.grad(chainrule.nn.functional.instance_norm(x, weight=w, bias=b).sum(), (b,),
                                    create_graph=True)
    assert type(grads[0].grad_fn).__name__ == "SumBackward1"


# ---- the nodes a recorded backward makes, under torch's names (grad.grad_fn.name())
def _first_order_node_names(lib, build, shapes):
    generator = torch.Generator().manual_seed(3)
    inputs = [lib.tensor(torch.rand(shape, dtype=torch.float64, generator=generator).add(0.5).numpy(),
                         requires_grad=True) for shape in shapes]
    grads = lib.autograd.grad(build(lib, *inputs).sum(), inputs, create_graph=True)
    return [g.grad_fn.name() for g in grads]


RECORDED_BACKWARDS = {
    "conv2d": (lambda lib, x, w, b: lib.nn.functional.conv2d(x, w, b), [(1, 2, 4, 4), (3, 2, 3, 3), (3,)]),
    "conv_transpose1d": (lambda lib, x, w: lib.nn.functional.conv_transpose1d(x, w, stride=2), [(1, 2, 4), (2, 3, 3)]),
    "mse_loss": (lambda lib, x, t: lib.nn.functional.mse_loss(x, t), [(3, 4), (3, 4)]),
    "tanh": (lambda lib, x: lib.tanh(x), [(3, 4)]),
    "sigmoid": (lambda lib, x: lib.sigmoid(x), [(3, 4)]),
    # (torch's second backward through it then raises; chainrule's gives the zeros)
    "layer_norm_bias_only": (lambda lib, x, b: lib.nn.functional.layer_norm(x, (3,), None, b), [(2, 3), (3,)]),
}


@pytest.mark.parametrize("name", sorted(RECORDED_BACKWARDS))
def test_recorded_backward_node_names_are_torchs(name):
    # torch's ConvolutionBackwardBackward0, MseLossBackwardBackward0, TanhBackwardBackward0, ...
    build, shapes = RECORDED_BACKWARDS[name]
    assert _first_order_node_names(chainrule, build, shapes) == _first_order_node_names(torch, build, shapes)


FOREACH_CALLS = {
    "exp": lambda lib, a, b: lib._foreach_exp(a),
    "log1p": lambda lib, a, b: lib._foreach_log1p(a),
    "add_list": lambda lib, a, b: lib._foreach_add(a, b, alpha=2.0),
    "add_scalar": lambda lib, a, b: lib._foreach_add(a, 2.0),
    "sub_scalars": lambda lib, a, b: lib._foreach_sub(a, [1.0, 2.0]),
    "mul_tensor": lambda lib, a, b: lib._foreach_mul(a, lib.tensor(2.0, dtype=lib.float64)),
    "div_list": lambda lib, a, b: lib._foreach_div(a, b),
    "clamp_min_list": lambda lib, a, b: lib._foreach_clamp_min(a, b),
    "maximum_scalars": lambda lib, a, b: lib._foreach_maximum(a, [0.6, 0.7]),
    "pow_scalar": lambda lib, a, b: lib._foreach_pow(a, 2.0),
    "pow_of_a_number": lambda lib, a, b: lib._foreach_pow(2.0, a),
    "addcmul": lambda lib, a, b: lib._foreach_addcmul(a, b, b, value=0.5),
    "addcdiv_scalars": lambda lib, a, b: lib._foreach_addcdiv(a, b, b, [0.5, 2.0]),
    "lerp_list": lambda lib, a, b: lib._foreach_lerp(a, b, b),
    "norm": lambda lib, a, b: lib._foreach_norm(a),
    "max": lambda lib, a, b: lib._foreach_max(a),
}


@pytest.mark.parametrize("name", sorted(FOREACH_CALLS))
def test_foreach_output_nodes_are_torchs(name):
    # torch records one Foreach<Op>Backward<overload> node per output tensor
    def names(lib):
        a = [lib.tensor([0.5, 1.5, 2.0], dtype=lib.float64, requires_grad=True),
             lib.tensor([[0.7, 1.2]], dtype=lib.float64, requires_grad=True)]
        b = [lib.tensor([1.5, 0.8, 0.9], dtype=lib.float64), lib.tensor([[1.1, 0.6]], dtype=lib.float64)]
        return [out.grad_fn.name() for out in FOREACH_CALLS[name](lib, a, b)]

    assert names(chainrule) == names(torch)


# ---- vmap: a batched value written in place into a tensor torch's vmap holds unbatched
def _vmapped_outcome(lib, function):
    try:
        return tuple(lib.func.vmap(lambda x: function(lib, x))(lib.arange(6.0).reshape(2, 3)).shape)
    except RuntimeError as error:
        return str(error)


WRITES_INTO_MADE_TENSORS = {
    "mul_": lambda lib, x: lib.ones(3).mul_(x),
    "copy_": lambda lib, x: lib.zeros(3).copy_(x),
    "copy_into_a_view": lambda lib, x: lib.zeros(3)[:2].copy_(x[:2]),
    "setitem": lambda lib, x: _written(lib.zeros(3), 0, x[0]),
    "setitem_slice": lambda lib, x: _written(lib.full((3,), 2.0), slice(0, 2), x[:2]),
}


def _written(target, key, value):
    target[key] = value
    return target


@pytest.mark.parametrize("name", sorted(WRITES_INTO_MADE_TENSORS))
def test_vmap_refuses_a_slice_written_into_a_tensor_made_inside(name):
    # torch's vmap holds zeros(3) unbatched: writing a batched value into it raises before writing
    mine = _vmapped_outcome(chainrule, WRITES_INTO_MADE_TENSORS[name])
    assert mine == _vmapped_outcome(torch, WRITES_INTO_MADE_TENSORS[name])
    assert mine.startswith("vmap: inplace arithmetic(self, *extra_args) is not possible")


WRITES_TORCH_ALLOWS = {
    "into_a_like_tensor": lambda lib, x: lib.zeros_like(x).copy_(x),
    "into_a_clone": lambda lib, x: x.clone().add_(x),
    "number_into_a_made_tensor": lambda lib, x: _written(lib.zeros(3), 0, 5.0) * x,
    "made_value_into_a_made_tensor": lambda lib, x: lib.zeros(3).add_(lib.ones(3)) + x,
    # x.new_zeros/... of a mapped slice are batched in torch's vmap (autograd_function_db's Select
    # backward writes its gradient into grad_output.new_zeros(shape) under vmap(vjp))
    "into_new_zeros": lambda lib, x: x.new_zeros(3).copy_(x),
    "into_new_ones": lambda lib, x: x.new_ones(3).mul_(x),
    "into_new_full": lambda lib, x: x.new_full((3,), 2.0).add_(x),
    "into_a_view_of_new_ones": lambda lib, x: x.new_ones(3)[:2].copy_(x[:2]),
}


@pytest.mark.parametrize("name", sorted(WRITES_TORCH_ALLOWS))
def test_vmap_runs_the_writes_torch_allows(name):
    assert _vmapped_outcome(chainrule, WRITES_TORCH_ALLOWS[name]) == _vmapped_outcome(torch, WRITES_TORCH_ALLOWS[name])
    mine = chainrule.func.vmap(lambda x: WRITES_TORCH_ALLOWS[name](chainrule, x))(chainrule.arange(6.0).reshape(2, 3))
    theirs = torch.func.vmap(lambda x: WRITES_TORCH_ALLOWS[name](torch, x))(torch.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


DATA_DEPENDENT_SHAPES = {
    "nonzero": lambda lib, x: lib.nonzero(x),
    "nonzero_as_tuple": lambda lib, x: x.nonzero(as_tuple=True)[0],
    "unique": lambda lib, x: lib.unique(x, return_counts=True)[1],
    "unique_dim": lambda lib, x: lib.unique(x[None], dim=1),
    "unique_consecutive": lambda lib, x: lib.unique_consecutive(x),
    "masked_select_mask": lambda lib, x: lib.masked_select(lib.ones(3), x),
}


def _data_dependent_outcome(lib, name):
    x = lib.tensor([[1.0, 0.0, 2.0], [0.0, 3.0, 3.0]])
    if name == "masked_select_mask":
        x = x > 0
    try:
        return tuple(lib.func.vmap(lambda row: DATA_DEPENDENT_SHAPES[name](lib, row))(x).shape)
    except RuntimeError as error:
        return str(error)


@pytest.mark.parametrize("name", sorted(DATA_DEPENDENT_SHAPES))
def test_vmap_refuses_data_dependent_shapes_of_a_mapped_input_as_torch(name):
    assert _data_dependent_outcome(chainrule, name) == _data_dependent_outcome(torch, name)


def test_vmap_runs_argwhere_nonzero_static_and_a_mapped_masked_select_input_as_torch():
    x = [[1.0, 0.0, 2.0], [0.0, 3.0, 3.0]]
    for build in (lambda lib, row: lib.argwhere(row), lambda lib, row: lib.nonzero_static(row, size=2),
                  lambda lib, row: lib.masked_select(row, lib.tensor([True, False, True]))):
        mine = chainrule.func.vmap(lambda row, build=build: build(chainrule, row))(chainrule.tensor(x))
        theirs = torch.func.vmap(lambda row, build=build: build(torch, row))(torch.tensor(x))
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
