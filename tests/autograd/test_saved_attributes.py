"""grad_fn._saved_<name> on built-in nodes against torch: the same programs run on both, and the
names each node lists (dir(), as torchviz reads them) and their values compared; the freed
graph's error; _raw_saved_<name> hooks; and a torchviz-like walk of whole graphs compared."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

SAVED = "_saved_"


def _data(lib, seed, *shape, grad=True):
    array = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return lib.tensor(array, requires_grad=grad)


def _conv_bn(lib):
    F = lib.nn.functional
    x = _data(lib, 1, 2, 2, 5, 5)
    y = F.conv2d(x, _data(lib, 2, 3, 2, 3, 3), _data(lib, 3, 3), stride=1, padding=1)
    return F.batch_norm(y, lib.zeros(3), lib.ones(3), _data(lib, 4, 3), _data(lib, 5, 3), training=True)


# each case: the op as a user writes it, on inputs made alike for torch and chainrule
CASES = {
    "add": lambda lib: _data(lib, 0, 3, 4) + _data(lib, 1, 3, 4),
    "add_scalar": lambda lib: _data(lib, 0, 3, 4) + 2,
    "sub": lambda lib: _data(lib, 0, 3, 4) - _data(lib, 1, 3, 4),
    "mul": lambda lib: _data(lib, 0, 3, 4) * _data(lib, 1, 3, 4),
    "mul_scalar": lambda lib: _data(lib, 0, 3, 4) * 2,
    "mul_constant_tensor": lambda lib: _data(lib, 0, 3, 4) * _data(lib, 1, 3, 4, grad=False),
    "div": lambda lib: _data(lib, 0, 3, 4) / _data(lib, 1, 3, 4),
    "div_scalar": lambda lib: _data(lib, 0, 3, 4) / 2,
    "pow_scalar": lambda lib: _data(lib, 0, 3, 4) ** 2,
    "pow_float": lambda lib: _data(lib, 0, 3, 4) ** 2.5,
    "pow_tensor": lambda lib: _data(lib, 0, 3, 4).abs() ** _data(lib, 1, 3, 4),
    "neg": lambda lib: -_data(lib, 0, 3, 4),
    "matmul": lambda lib: _data(lib, 0, 3, 4) @ _data(lib, 1, 4, 5),
    "mm": lambda lib: lib.mm(_data(lib, 0, 3, 4), _data(lib, 1, 4, 5)),
    "mm_one_side": lambda lib: lib.mm(_data(lib, 0, 3, 4, grad=False), _data(lib, 1, 4, 5)),
    "mm_transposed": lambda lib: lib.mm(_data(lib, 0, 3, 4), _data(lib, 1, 5, 4).t()),
    "bmm": lambda lib: lib.bmm(_data(lib, 0, 2, 3, 4), _data(lib, 1, 2, 4, 5)),
    "linear": lambda lib: lib.nn.functional.linear(_data(lib, 0, 3, 4), _data(lib, 1, 5, 4), _data(lib, 2, 5)),
    "linear_constant_input": lambda lib: lib.nn.functional.linear(
        _data(lib, 0, 3, 4, grad=False), _data(lib, 1, 5, 4), _data(lib, 2, 5)),
    "linear_no_bias": lambda lib: lib.nn.functional.linear(_data(lib, 0, 3, 4), _data(lib, 1, 5, 4)),
    "linear_3d": lambda lib: lib.nn.functional.linear(_data(lib, 0, 2, 3, 4), _data(lib, 1, 5, 4), _data(lib, 2, 5)),
    "linear_3d_no_bias": lambda lib: lib.nn.functional.linear(_data(lib, 0, 2, 3, 4), _data(lib, 1, 5, 4)),
    "exp": lambda lib: _data(lib, 0, 3, 4).exp(),
    "log": lambda lib: _data(lib, 0, 3, 4).abs().log(),
    "tanh": lambda lib: _data(lib, 0, 3, 4).tanh(),
    "sigmoid": lambda lib: _data(lib, 0, 3, 4).sigmoid(),
    "relu": lambda lib: _data(lib, 0, 3, 4).relu(),
    "F.relu": lambda lib: lib.nn.functional.relu(_data(lib, 0, 3, 4)),
    "sin": lambda lib: _data(lib, 0, 3, 4).sin(),
    "sqrt": lambda lib: _data(lib, 0, 3, 4).abs().sqrt(),
    "leaky_relu": lambda lib: lib.nn.functional.leaky_relu(_data(lib, 0, 3, 4), 0.2),
    "silu": lambda lib: lib.nn.functional.silu(_data(lib, 0, 3, 4)),
    "gelu": lambda lib: lib.nn.functional.gelu(_data(lib, 0, 3, 4)),
    "gelu_tanh": lambda lib: lib.nn.functional.gelu(_data(lib, 0, 3, 4), approximate="tanh"),
    "sum": lambda lib: _data(lib, 0, 3, 4).sum(),
    "sum_dim": lambda lib: _data(lib, 0, 3, 4).sum(1),
    "sum_keepdim": lambda lib: _data(lib, 0, 3, 4).sum(1, keepdim=True),
    "mean": lambda lib: _data(lib, 0, 3, 4).mean(),
    "mean_dim": lambda lib: _data(lib, 0, 3, 4).mean(0),
    "view": lambda lib: _data(lib, 0, 3, 4).view(12),
    "reshape": lambda lib: _data(lib, 0, 3, 4).reshape(2, 6),
    "flatten": lambda lib: _data(lib, 0, 2, 3, 4).flatten(1),
    "permute": lambda lib: _data(lib, 0, 2, 3, 4).permute(2, 0, 1),
    "transpose": lambda lib: _data(lib, 0, 2, 3, 4).transpose(0, 2),
    "t": lambda lib: _data(lib, 0, 3, 4).t(),
    "select": lambda lib: _data(lib, 0, 2, 5, 4)[:, -1],
    "select_first": lambda lib: _data(lib, 0, 3, 4)[1],
    "select_twice": lambda lib: _data(lib, 0, 2, 5, 4)[1, -2],
    "select_after_steps": lambda lib: _data(lib, 0, 2, 5, 4)[None, 1:4, ..., 2],
    "cat": lambda lib: lib.cat([_data(lib, 0, 3, 4), _data(lib, 1, 2, 4)], 0),
    "stack": lambda lib: lib.stack([_data(lib, 0, 3, 4), _data(lib, 1, 3, 4)], 1),
    "conv2d": lambda lib: lib.nn.functional.conv2d(_data(lib, 0, 1, 2, 5, 5), _data(lib, 1, 3, 2, 3, 3),
                                                   _data(lib, 2, 3), stride=2, padding=1),
    "conv1d_no_bias": lambda lib: lib.nn.functional.conv1d(_data(lib, 0, 1, 2, 7), _data(lib, 1, 3, 2, 3),
                                                           dilation=2, groups=1),
    "conv2d_frozen_input": lambda lib: lib.nn.functional.conv2d(_data(lib, 0, 1, 2, 5, 5, grad=False),
                                                                _data(lib, 1, 3, 2, 3, 3)),
    "softmax": lambda lib: lib.nn.functional.softmax(_data(lib, 0, 3, 4), 1),
    "log_softmax": lambda lib: lib.nn.functional.log_softmax(_data(lib, 0, 3, 4), 0),
    "nll_loss": lambda lib: lib.nn.functional.nll_loss(lib.nn.functional.log_softmax(_data(lib, 0, 3, 4), 1),
                                                       lib.tensor([0, 1, 3])),
    "nll_loss_sum_weighted": lambda lib: lib.nn.functional.nll_loss(
        _data(lib, 0, 3, 4), lib.tensor([0, 1, 3]), weight=lib.tensor([1.0, 2.0, 3.0, 4.0]), reduction="sum",
        ignore_index=1),
    "cross_entropy": lambda lib: lib.nn.functional.cross_entropy(_data(lib, 0, 3, 4), lib.tensor([0, 1, 3])),
    "mse_loss": lambda lib: lib.nn.functional.mse_loss(_data(lib, 0, 3, 4), _data(lib, 1, 3, 4)),
    "layer_norm": lambda lib: lib.nn.functional.layer_norm(_data(lib, 0, 3, 4), (4,), _data(lib, 1, 4),
                                                           _data(lib, 2, 4)),
    "layer_norm_2d": lambda lib: lib.nn.functional.layer_norm(_data(lib, 0, 2, 3, 4), (3, 4), _data(lib, 1, 3, 4),
                                                              _data(lib, 2, 3, 4), eps=1e-3),
    "batch_norm": lambda lib: lib.nn.functional.batch_norm(_data(lib, 0, 3, 4), lib.zeros(4), lib.ones(4),
                                                           _data(lib, 1, 4), _data(lib, 2, 4), training=True),
    "batch_norm_conv": _conv_bn,
    "embedding": lambda lib: lib.nn.functional.embedding(lib.tensor([[0, 2], [4, 2]]), _data(lib, 0, 5, 3)),
    "embedding_padding": lambda lib: lib.nn.functional.embedding(lib.tensor([0, 2]), _data(lib, 0, 5, 3),
                                                                 padding_idx=2),
    "max_pool2d": lambda lib: lib.nn.functional.max_pool2d(_data(lib, 0, 1, 2, 4, 4), 2, stride=2),
    "max_pool2d_padded": lambda lib: lib.nn.functional.max_pool2d(_data(lib, 0, 1, 2, 5, 5), 3, stride=2,
                                                                  padding=1, ceil_mode=True),
    "abs": lambda lib: _data(lib, 0, 3, 4).abs(),
    "maximum": lambda lib: lib.maximum(_data(lib, 0, 3, 4), _data(lib, 1, 3, 4)),
    "minimum": lambda lib: lib.minimum(_data(lib, 0, 3, 4), _data(lib, 1, 4)),
    "where": lambda lib: lib.where(_data(lib, 2, 3, 4, grad=False) > 0, _data(lib, 0, 3, 4), _data(lib, 1, 3, 4)),
    "where_scalar": lambda lib: lib.where(_data(lib, 2, 3, 4, grad=False) > 0, _data(lib, 0, 3, 4), 0.0),
    "masked_fill": lambda lib: _data(lib, 0, 3, 4).masked_fill(_data(lib, 2, 4, grad=False) > 0, 1.5),
    "masked_fill_tensor": lambda lib: _data(lib, 0, 3, 4).masked_fill(_data(lib, 2, 3, 4, grad=False) > 0,
                                                                      _data(lib, 1)),
    "max_all": lambda lib: _data(lib, 0, 3, 4).max(),
    "min_all": lambda lib: _data(lib, 0, 3, 4).min(),
    "slice": lambda lib: _data(lib, 0, 5, 4)[1:-1],
    "slice_step": lambda lib: _data(lib, 0, 5, 4)[:, ::3],
}


def _saved(fn) -> dict:
    return {name: getattr(fn, name) for name in dir(fn) if name.startswith(SAVED)}


def _same(mine, theirs) -> bool:
    if isinstance(theirs, torch.Tensor):
        # (a Python number operand torch keeps as a 0-d tensor of its own type, x * 2's int64 2;
        # chainrule's is of the result's dtype)
        return (isinstance(mine, chainrule.Tensor) and tuple(mine.shape) == tuple(theirs.shape)
                and (theirs.ndim == 0 or mine.dtype.is_floating_point == theirs.dtype.is_floating_point)
                and np.allclose(mine.detach().numpy(), theirs.detach().numpy(), rtol=1e-5, atol=1e-6))
    return type(mine) is type(theirs) and mine == theirs


@pytest.mark.parametrize("case", CASES)
def test_saved_names_and_values_as_torch(case):
    mine, theirs = CASES[case](chainrule).grad_fn, CASES[case](torch).grad_fn
    assert mine.name() == theirs.name()
    saved_mine, saved_theirs = _saved(mine), _saved(theirs)
    assert sorted(saved_mine) == sorted(saved_theirs)
    different = {name: (saved_mine[name], value) for name, value in saved_theirs.items()
                 if not _same(saved_mine[name], value)}
    assert not different
    raw = sorted(n for n in dir(mine) if n.startswith("_raw_saved_"))
    assert raw == sorted(n for n in dir(theirs) if n.startswith("_raw_saved_"))


def _identities(lib):
    a, b = _data(lib, 0, 3, 4), _data(lib, 1, 3, 4)
    x = a * 1.0  # a non-leaf input
    mul, e, lin = x * b, a.exp(), lib.nn.functional.linear(a, b, None)
    return (mul.grad_fn._saved_self is x, mul.grad_fn._saved_other is b, e.grad_fn._saved_result is e,
            e.grad_fn._saved_result.grad_fn is e.grad_fn, lin.grad_fn._saved_self is a,
            lin.grad_fn._saved_mat2.grad_fn is not None)


def test_saved_inputs_are_the_tensors_and_results_keep_their_node():
    assert _identities(chainrule) == _identities(torch) == (True, True, False, True, True, True)


def _after_backward(lib):
    """Which saved attributes still read after backward, and the error of those that do not."""
    outs = [CASES[case](lib) for case in ("mul", "sum_dim", "softmax", "conv2d", "layer_norm", "linear")]
    for out in outs:
        out.sum().backward()
    result = []
    for out in outs:
        for name in sorted(n for n in dir(out.grad_fn) if n.startswith(SAVED)):
            try:
                value = getattr(out.grad_fn, name)
            except RuntimeError as error:
                result.append((name, "backward through the graph a second time" in str(error)))
            else:
                result.append((name, type(value).__name__))
    return result


def test_freed_graph_raises_for_saved_tensors_and_keeps_the_rest():
    mine, theirs = _after_backward(chainrule), _after_backward(torch)
    tensor_names = {name for name, outcome in theirs if outcome is True}
    assert {"_saved_self", "_saved_other", "_saved_result", "_saved_input", "_saved_weight"} <= tensor_names
    assert ("_saved_dim", "tuple") in theirs and ("_saved_normalized_shape", "tuple") in theirs
    # the tensors raise torch's error in both; the sizes, dims and flags still read
    for (name, outcome), (their_name, their_outcome) in zip(mine, theirs):
        assert name == their_name
        if their_outcome is True or name.endswith("_sym_strides"):  # strides: read from the saved tensor here
            assert outcome in (True, their_outcome), name
        else:
            assert outcome == their_outcome, name


def test_saved_tensor_modified_in_place_raises_as_torch():
    for lib in (chainrule, torch):
        a = _data(lib, 0, 3)
        x = a * 1.0
        y = x * x
        x.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.grad_fn._saved_self  # noqa: B018


def _raw_hooks(lib):
    log = []
    a = _data(lib, 0, 3)
    y = a * _data(lib, 1, 3)
    raw = y.grad_fn._raw_saved_self
    raw.register_hooks(lambda t: log.append(("pack", tuple(t.shape))) or t * 2,
                       lambda p: log.append(("unpack", tuple(p.shape))) or p)
    errors = []
    with pytest.raises(RuntimeError) as error:
        raw.register_hooks(lambda t: t, lambda p: p)
    errors.append("already been set" in str(error.value))
    with pytest.raises(RuntimeError) as error:
        (a * 2).grad_fn._raw_saved_self.register_hooks(lambda t: t, lambda p: p)
    errors.append("value None is forbidden" in str(error.value))
    seen = y.grad_fn._saved_self.detach().numpy().tolist()
    y.sum().backward()
    fresh = a * a
    return log, errors, seen, a.grad.numpy().tolist(), fresh.grad_fn._raw_saved_other.unpack() is a


def test_raw_saved_tensor_hooks_as_torch():
    mine, theirs = _raw_hooks(chainrule), _raw_hooks(torch)
    assert mine[0] == theirs[0] == [("pack", (3,)), ("unpack", (3,)), ("unpack", (3,))]
    assert mine[1] == theirs[1] == [True, True]
    assert np.allclose(mine[2], theirs[2]) and np.allclose(mine[3], theirs[3])
    assert mine[4] is theirs[4] is True


def _custom(lib):
    class Square(lib.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * a

        @staticmethod
        def backward(ctx, grad):
            (a,) = ctx.saved_tensors
            return 2 * a * grad

    a = _data(lib, 0, 3)
    return hasattr((a * a).grad_fn, "saved_tensors"), hasattr(Square.apply(a).grad_fn, "saved_tensors")


def test_only_custom_function_nodes_have_saved_tensors():
    # torchviz tells a custom Function's node by this attribute and draws what it holds
    assert _custom(chainrule) == _custom(torch) == (False, True)


# ---------------------------------------------------------------- linear's graph: torch's nodes and edge order
def _linear_input(lib, shape, grad=True, transposed=False):
    x = _data(lib, 0, *shape, grad=grad)
    return x.transpose(0, 1) if transposed else x


LINEAR_GRAPHS = {  # (input shape, transposed, input needs grad, weight needs grad, bias: None/shape/"strided")
    "rows": ((3, 4), False, True, True, (5,)),
    "rows_no_bias": ((3, 4), False, True, True, None),
    "rows_constant_input": ((3, 4), False, False, True, (5,)),
    "rows_frozen_weight": ((3, 4), False, True, False, (5,)),
    "rows_bias_of_rows": ((3, 4), False, True, True, (3, 5)),
    "vector": ((4,), False, True, True, (5,)),
    "vector_no_bias": ((4,), False, True, True, None),
    "3d": ((2, 3, 4), False, True, True, (5,)),
    "3d_no_bias": ((2, 3, 4), False, True, True, None),
    "4d": ((2, 1, 3, 4), False, True, True, (5,)),
    "3d_strided_bias": ((2, 3, 4), False, True, True, "strided"),
    "3d_bias_of_rows": ((2, 3, 4), False, True, True, (3, 5)),
    "3d_noncontiguous": ((3, 2, 4), True, True, True, (5,)),
    "3d_noncontiguous_no_bias": ((3, 2, 4), True, True, True, None),
    "3d_noncontiguous_constant": ((3, 2, 4), True, False, True, (5,)),
}


def _strided(lib, seed, n):
    """A leaf vector whose elements are not adjacent in memory."""
    with lib.no_grad():
        return _data(lib, seed, n, 2)[:, 0].requires_grad_()


def _linear_graph(lib, case):
    """linear's graph from its output down to the leaves: each node's name, _saved_* (tensors
    by shape) and its edges' input numbers, in next_functions order."""
    shape, transposed, grad_x, grad_w, bias = LINEAR_GRAPHS[case]
    w = _data(lib, 1, 5, 4, grad=grad_w)
    b = None if bias is None else _strided(lib, 2, 5) if bias == "strided" else _data(lib, 2, *bias)
    out = lib.nn.functional.linear(_linear_input(lib, shape, grad_x, transposed), w, b)

    def describe(fn):
        if fn is None:
            return None
        saved = {name: tuple(value.shape) if isinstance(value, lib.Tensor) else value
                 for name, value in _saved(fn).items() if not name.endswith("_sym_strides")}
        return (type(fn).__name__, sorted(saved.items(), key=str),
                [(describe(child), nr) for child, nr in fn.next_functions])

    return tuple(out.shape), out._is_view(), describe(out.grad_fn)


@pytest.mark.parametrize("case", list(LINEAR_GRAPHS))
def test_linear_graph_as_torch(case):
    # torch records addmm(bias, input, weight.t()) or mm, over the weight's TBackward0; other ranks
    # fold the input into rows with views, or go through matmul and add the bias after
    assert _linear_graph(chainrule, case) == _linear_graph(torch, case)


def test_linear_gradients_through_torchs_graph_as_torch():
    # the weight's gradient comes back through TBackward0; an in-place change of the weight after
    # the forward is caught through the transposed weight that addmm saved
    grads = []
    for lib in (chainrule, torch):
        x, w, b = _data(lib, 0, 2, 3, 4), _data(lib, 1, 5, 4), _data(lib, 2, 5)
        out = lib.nn.functional.linear(x, w, b)
        (out * out).sum().backward()
        grads.append([t.grad.numpy() for t in (x, w, b)] + [w.grad.is_contiguous()])
        y = lib.nn.functional.linear(x[0], w, b)
        with lib.no_grad():
            w.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()
    for mine, theirs in zip(*grads):
        assert np.allclose(mine, theirs, rtol=1e-5, atol=1e-5)


def _linear_packs(lib, input_needs_grad):
    """What saved_tensors_hooks sees of linear's graph (2-d, 3-d, no bias): each pack and unpack,
    by shape, and the gradients it gives."""
    x, w, b = _data(lib, 0, 3, 4, grad=input_needs_grad), _data(lib, 1, 5, 4), _data(lib, 2, 5)
    x3 = _data(lib, 3, 2, 3, 4, grad=input_needs_grad)
    log = []
    with lib.autograd.graph.saved_tensors_hooks(lambda t: log.append(("pack", tuple(t.shape))) or t,
                                                lambda t: log.append(("unpack", tuple(t.shape))) or t):
        y = lib.nn.functional.linear(x, w, b).relu().sum() + lib.nn.functional.linear(x3, w).sum()
    y.backward()
    return sorted(log), w.grad.numpy(), b.grad.numpy()


@pytest.mark.parametrize("input_needs_grad", [True, False])
def test_linear_saved_tensors_hooks_as_torch(input_needs_grad):
    # torch keeps weight.t() only for the input's gradient, the input only for the weight's
    mine, theirs = _linear_packs(chainrule, input_needs_grad), _linear_packs(torch, input_needs_grad)
    assert np.allclose(mine[1], theirs[1], rtol=1e-5) and np.allclose(mine[2], theirs[2], rtol=1e-5)
    assert mine[0] == theirs[0]


def _one_sided_products(lib, transposed_input):
    """Each matrix product of linear and mm with one side frozen: the shapes saved_tensors_hooks
    packs, and each node's _saved_* (tensors by shape)."""
    x = _data(lib, 0, 4, 3).t() * 1.0 if transposed_input else _data(lib, 0, 3, 4)
    frozen_x, w = _data(lib, 0, 3, 4, grad=False), _data(lib, 1, 5, 4)
    frozen_w, b = _data(lib, 1, 5, 4, grad=False), _data(lib, 2, 5, grad=False)
    F, log = lib.nn.functional, []
    with lib.autograd.graph.saved_tensors_hooks(lambda t: log.append(tuple(t.shape)) or t, lambda t: t):
        outs = [F.linear(x, frozen_w, b), F.linear(frozen_x, w, b), F.linear(x, frozen_w), F.linear(frozen_x, w),
                lib.mm(x, frozen_w.t()), lib.mm(frozen_x, w.t())]
    nodes = [{name: tuple(v.shape) if isinstance(v, lib.Tensor) else v for name, v in _saved(o.grad_fn).items()}
             for o in outs]
    return log, nodes


@pytest.mark.parametrize("transposed_input", [False, True])
def test_one_sided_matrix_products_save_as_torch(transposed_input):
    # a frozen side is not kept (nothing to pack) but a strided input still reports its strides
    assert _one_sided_products(chainrule, transposed_input) == _one_sided_products(torch, transposed_input)


@pytest.mark.parametrize("needs", [(True, False, True), (False, True, False), (True, False, False),
                                   (False, False, True), (False, True, True)])
def test_one_sided_linear_differentiates_twice(needs):
    # the backward's own node is given only the matrices it kept
    values = [chainrule.tensor(np.random.default_rng(i).standard_normal(shape), requires_grad=need)
              for i, (shape, need) in enumerate(zip(((3, 4), (5, 4), (5,)), needs))]
    inputs = [v for v in values if v.requires_grad]

    def linear(*args):
        given = iter(args)
        x, w, b = (next(given) if v.requires_grad else v for v in values)
        return chainrule.nn.functional.linear(x, w, b).sin()

    assert chainrule.autograd.gradcheck(linear, inputs)
    assert chainrule.autograd.gradgradcheck(linear, inputs)


def _one_sided_hessians(lib):
    x, w = (lib.tensor(np.random.default_rng(i).standard_normal(s)) for i, s in enumerate(((3, 4), (5, 4))))
    F = lib.nn.functional
    return (lib.func.hessian(lambda x: F.linear(x, w, w[:, 0]).sin().sum())(x),
            lib.func.hessian(lambda w: F.linear(x, w).sin().sum())(w))


def test_one_sided_linear_hessians_as_torch():
    # the batched walk of a Hessian runs the backward node given one matrix
    for mine, theirs in zip(_one_sided_hessians(chainrule), _one_sided_hessians(torch)):
        assert np.allclose(mine.numpy(), theirs.numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- whole graphs, walked as torchviz does
def _walk(root, params: dict, show_attrs: bool, show_saved: bool, lib):
    """torchviz.make_dot's walk (its drawing left out): node labels with their attributes, the
    saved tensors shown, the leaves named by ``params``; returned as multisets of labels and of
    (from, to) label pairs, independent of object ids."""
    names = {id(v): k for k, v in params.items()}
    labels, edges, seen = {}, [], set()
    kept = []  # every value read stays alive, as in torchviz (its ids are the graph's keys)

    def var_label(t, name=""):
        return f"{name or names.get(id(t), '')} {tuple(t.shape)}"

    def fn_label(fn):
        label = type(fn).__name__
        if show_attrs:
            for attr in dir(fn):
                if attr.startswith(SAVED):
                    val = getattr(fn, attr)
                    shown = "[saved tensor]" if isinstance(val, lib.Tensor) else str(val)
                    label += f"|{attr[len(SAVED):]}: {shown}"
        return label

    def add(fn):
        if id(fn) in seen:
            return
        seen.add(id(fn))
        if show_saved:
            for attr in dir(fn):
                if attr.startswith(SAVED):
                    val = getattr(fn, attr)
                    kept.append(val)
                    if isinstance(val, lib.Tensor):
                        labels[id(val)] = var_label(val, attr[len(SAVED):])
                        edges.append((id(fn), id(val)))
        if hasattr(fn, "variable"):
            labels[id(fn.variable)] = var_label(fn.variable)
            edges.append((id(fn.variable), id(fn)))
        labels[id(fn)] = fn_label(fn)
        for child, _ in fn.next_functions:
            if child is not None:
                edges.append((id(child), id(fn)))
                add(child)
        if hasattr(fn, "saved_tensors"):
            for t in fn.saved_tensors:
                labels[id(t)] = var_label(t)
                edges.append((id(t), id(fn)))

    add(root.grad_fn)
    return (collections.Counter(labels.values()),
            collections.Counter((labels[a], labels[b]) for a, b in edges))


def _small_net(lib):
    """conv, batch norm, relu, max pool, flatten, x @ W.t() + b, log_softmax, nll: a CNN's graph."""
    nn, F = lib.nn, lib.nn.functional
    lib.manual_seed(0)
    conv, bn = nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2)
    w, b = _data(lib, 1, 3, 8), _data(lib, 2, 3)
    params = {**{f"conv.{k}": v for k, v in conv.named_parameters()},
              **{f"bn.{k}": v for k, v in bn.named_parameters()}, "w": w, "b": b}
    h = F.max_pool2d(F.relu(bn(conv(_data(lib, 0, 2, 1, 4, 4, grad=False)))), 2).flatten(1)
    logits = h @ w.t() + b
    return F.nll_loss(F.log_softmax(logits, 1), lib.tensor([0, 2])), params


def _mlp_by_hand(lib):
    """Two layers written out (mm, add, tanh, sigmoid, mean, mse), the view of a reshaped input."""
    F = lib.nn.functional
    x = _data(lib, 0, 2, 2, 2, grad=False).view(2, 4)
    w1, b1, w2 = _data(lib, 1, 4, 5), _data(lib, 2, 5), _data(lib, 3, 5, 3)
    y = lib.sigmoid(lib.tanh(x @ w1 + b1) @ w2)
    return F.mse_loss(y, _data(lib, 4, 2, 3, grad=False)) + y.mean(), {"w1": w1, "b1": b1, "w2": w2}


@pytest.mark.parametrize("program", [_small_net, _mlp_by_hand])
@pytest.mark.parametrize("show_attrs, show_saved", [(False, False), (True, False), (False, True), (True, True)])
def test_graph_walk_as_torch(program, show_attrs, show_saved):
    mine, mine_params = program(chainrule)
    theirs, their_params = program(torch)
    assert (_walk(mine, mine_params, show_attrs, show_saved, chainrule)
            == _walk(theirs, their_params, show_attrs, show_saved, torch))


# ---------------------------------------------------------------- torchviz itself, when installed
_TORCHVIZ_PROGRAM = textwrap.dedent('''
    import collections, re
    import torch, torch.nn as nn
    from torchviz import make_dot

    def programs():
        torch.manual_seed(0)
        mlp = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
        yield nn.functional.cross_entropy(mlp(torch.randn(4, 6)), torch.tensor([0, 2, 1, 0])), mlp
        cnn = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Flatten(), nn.Linear(8, 3), nn.LogSoftmax(1))
        yield nn.functional.nll_loss(cnn(torch.randn(2, 1, 4, 4)), torch.tensor([0, 2])), cnn
        tokens = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 2))  # a linear of 3-d input
        yield tokens(torch.tensor([[1, 2, 3], [4, 5, 6]]))[:, -1].sum(), tokens

    drawn = []
    for out, model in programs():
        for attrs in (False, True):
            for saved in (False, True):
                dot = make_dot(out, params=dict(model.named_parameters()), show_attrs=attrs, show_saved=saved)
                labels, edges = {}, []
                for line in dot.body:
                    edge = re.match(r"\\s*(\\S+) -> (\\S+)", line)
                    if edge:
                        edges.append(edge.groups())
                        continue
                    node = re.match(r"\\s*(\\S+) \\[label=\\"?(.*?)\\"?( fillcolor=\\S+)?\\]$", line.strip(), re.S)
                    if node:
                        labels[node.group(1)] = node.group(2)
                drawn.append([sorted(collections.Counter(labels.values()).items()),
                              sorted(collections.Counter((labels.get(a), labels.get(b)) for a, b in edges).items())])
''')


def test_torchviz_draws_the_graph_torch_draws():
    pytest.importorskip("torchviz")
    import json

    theirs = {}
    exec(_TORCHVIZ_PROGRAM, theirs)  # noqa: S102 - torch's drawing, in this process
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ)  # `import torch` answered by chainrule, as the corpus programs run
    env["PYTHONPATH"] = os.pathsep.join([str(root / "tests" / "programs" / "_alias"), str(root / "src"), *sys.path])
    run = subprocess.run([sys.executable, "-W", "ignore", "-c",
                          _TORCHVIZ_PROGRAM + "\nimport json\nprint(json.dumps(drawn))"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout) == json.loads(json.dumps(theirs["drawn"]))


def _dropout_graph(lib, p, feature, inplace):
    x = _data(lib, 0, 2, 3, 4, 4)
    source = x * 1.0
    out = (lib.nn.functional.dropout2d if feature else lib.nn.functional.dropout)(source, p, True, inplace)
    fn = out.grad_fn
    names, mask = sorted(_saved(fn)), fn._saved_other
    kept, self_saved = mask.detach().numpy(), fn._saved_self is not None
    (out * out).sum().backward()
    # the gradient is 2 y · mask; the mask's draws differ between the libraries, its form does not
    return (fn.name(), names, self_saved, tuple(mask.shape),
            sorted({round(float(v), 5) for v in np.unique(kept)} - {0.0}),
            [(type(n).__name__ if n is not None else None) for n, _ in fn.next_functions],
            np.allclose(x.grad.numpy(), 2 * out.detach().numpy() * kept, atol=1e-6), out is source)


@pytest.mark.parametrize("p, feature, inplace", [(0.5, False, False), (0.25, True, False), (1.0, False, False),
                                                 (0.5, False, True)])
def test_dropout_records_torchs_cpu_multiply(p, feature, inplace):
    # torch's CPU dropout is the input times the scaled keep-mask (a 0-d zero for p = 1)
    assert _dropout_graph(chainrule, p, feature, inplace) == _dropout_graph(torch, p, feature, inplace)
