"""Graphs a user walks that differed from torch 2.13, mended in lane mendS, each compared with
torch itself.

* ``nn.RNNCell`` and ``torch.rnn_tanh_cell`` / ``rnn_relu_cell`` record torch's CPU composition,
  ``tanh(linear(h, W_hh, b_hh) + linear(x, W_ih, b_ih))`` (TanhBackward0 or ReluBackward0 over
  AddBackward0 over AddmmBackward0 or MmBackward0 and TBackward0), where chainrule recorded one
  fused RnnBackward0 node; the top-level cell functions refuse mismatched sizes with ATen's
  ``check_rnn_cell_forward_*`` messages.
* ``Tensor.repeat``'s gradient is summed as torch's ``repeat_backward`` sums it, so a recorded
  backward (``create_graph=True``) has torch's nodes: SumBackward1 over ViewBackward0 (and one
  SumBackward1 per new leading dim), where chainrule recorded ViewBackward0 over SumBackward1 over
  ViewBackward0 (the first thing instance norm's affine gradient meets, as torch runs it).
* ``F.batch_norm`` of an empty batch with empty affine parameters raises torch's IndexError
  (``select(): index 0 out of range ...``).
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _graph(fn) -> list:
    """Every node a user reaches by walking ``next_functions`` from ``fn``, depth first, as
    (depth, name, output number) triples; None for an empty edge, a node reached twice listed
    once more by name."""
    seen: set = set()
    walked: list = []

    def visit(node, depth, number):
        if node is None:
            walked.append((depth, None, number))
            return
        walked.append((depth, node.name(), number))
        if id(node) in seen:
            return
        seen.add(id(node))
        for child, child_number in node.next_functions:
            visit(child, depth + 1, child_number)

    visit(fn, 0, 0)
    return walked


def _assert_same_graph(ours, theirs):
    assert type(ours.grad_fn).__name__ == type(theirs.grad_fn).__name__
    assert _graph(ours.grad_fn) == _graph(theirs.grad_fn)


def _assert_close(ours, theirs, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=rtol, atol=atol)
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    assert tuple(ours.shape) == tuple(theirs.shape)


def _tensors(lib, arrays, requires_grad=True):
    return [lib.tensor(a, requires_grad=requires_grad) for a in arrays]


# ---------------------------------------------------------------- Elman cells
def _copy_parameters(theirs, ours):
    with torch.no_grad():
        for name, parameter in theirs.named_parameters():
            getattr(ours, name).data = chainrule.tensor(parameter.detach().numpy().copy())
    ours.zero_grad()


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("with_hx", [False, True])
@pytest.mark.parametrize("batched", [True, False])
def test_rnn_cell_records_torchs_composition(nonlinearity, bias, with_hx, batched):
    rng = np.random.default_rng(0)
    theirs_cell = torch.nn.RNNCell(4, 3, bias=bias, nonlinearity=nonlinearity)
    ours_cell = chainrule.nn.RNNCell(4, 3, bias=bias, nonlinearity=nonlinearity)
    _copy_parameters(theirs_cell, ours_cell)
    arrays = [rng.standard_normal((2, 4) if batched else (4,)).astype(np.float32)]
    if with_hx:
        arrays.append(rng.standard_normal((2, 3) if batched else (3,)).astype(np.float32))
    theirs_in, ours_in = _tensors(torch, arrays), _tensors(chainrule, arrays)
    theirs, ours = theirs_cell(*theirs_in), ours_cell(*ours_in)
    _assert_same_graph(ours, theirs)
    _assert_close(ours, theirs)
    grad = rng.standard_normal(tuple(theirs.shape)).astype(np.float32)
    theirs.backward(torch.tensor(grad))
    ours.backward(chainrule.tensor(grad))
    for o, t in zip(ours_in, theirs_in):
        _assert_close(o.grad, t.grad)
    for name, parameter in theirs_cell.named_parameters():
        _assert_close(getattr(ours_cell, name).grad, parameter.grad)


@pytest.mark.parametrize("function", ["rnn_tanh_cell", "rnn_relu_cell"])
def test_top_level_elman_cell_graph_values_and_double_backward(function):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(shape) for shape in ((3, 5), (3, 4), (4, 5), (4, 4), (4,), (4,))]
    theirs_in, ours_in = _tensors(torch, arrays), _tensors(chainrule, arrays)
    theirs, ours = getattr(torch, function)(*theirs_in), getattr(chainrule, function)(*ours_in)
    _assert_same_graph(ours, theirs)
    _assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    theirs_grads = torch.autograd.grad(theirs.square().sum(), theirs_in, create_graph=True)
    ours_grads = chainrule.autograd.grad(ours.square().sum(), ours_in, create_graph=True)
    for o, t in zip(ours_grads, theirs_grads):
        _assert_close(o, t, rtol=1e-12, atol=1e-12)
    theirs_second = torch.autograd.grad(sum(g.sum() for g in theirs_grads), theirs_in)
    ours_second = chainrule.autograd.grad(sum(g.sum() for g in ours_grads), ours_in)
    for o, t in zip(ours_second, theirs_second):
        _assert_close(o, t, rtol=1e-10, atol=1e-12)


# (batch, input, hidden; the hidden state's batch and width, the cell state's, weight_ih's width)
_BAD_CELL_SIZES = [
    dict(input_width=5),
    dict(hidden_batch=3),
    dict(hidden_width=5),
    dict(cell_batch=3),
    dict(cell_width=5),
    dict(input_width=5, hidden_batch=3),
]


@pytest.mark.parametrize(("function", "sizes"), [
    (function, sizes) for function in ("rnn_tanh_cell", "rnn_relu_cell", "gru_cell", "lstm_cell")
    for sizes in _BAD_CELL_SIZES if function == "lstm_cell" or not any(key.startswith("cell_") for key in sizes)
], ids=lambda v: v if isinstance(v, str) else ",".join(f"{k}={n}" for k, n in v.items()))
def test_top_level_cells_refuse_mismatched_sizes_as_torch(function, sizes):
    gates = {"lstm_cell": 4, "gru_cell": 3}.get(function, 1)

    def call(lib):
        lib.manual_seed(0)
        hidden = lib.randn(sizes.get("hidden_batch", 2), sizes.get("hidden_width", 3))
        if function == "lstm_cell":
            hidden = (hidden, lib.randn(sizes.get("cell_batch", 2), sizes.get("cell_width", 3)))
        return getattr(lib, function)(lib.randn(2, sizes.get("input_width", 4)), hidden, lib.randn(gates * 3, 4),
                                      lib.randn(gates * 3, 3), lib.randn(gates * 3), lib.randn(gates * 3))

    with pytest.raises(RuntimeError) as theirs:
        call(torch)
    with pytest.raises(RuntimeError) as ours:
        call(chainrule)
    assert str(ours.value) == str(theirs.value)



# ---------------------------------------------------------------- repeat's recorded backward
_REPEATS = [((3,), (2,)), ((3,), (1,)), ((2, 3), (2, 1)), ((2, 3), (1, 1)), ((2, 3), (3, 2, 2)), ((3,), (2, 1, 4)),
            ((2, 3), (0, 1)), ((), (3,)), ((2, 3), (1, 2)), ((0, 2), (2, 2))]


@pytest.mark.parametrize(("shape", "repeats"), _REPEATS, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_repeat_backward_records_torchs_repeat_backward(shape, repeats, dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape).astype(dtype)
    results = []
    for lib in (torch, chainrule):
        leaf = lib.tensor(x, requires_grad=True)
        out = leaf.repeat(*repeats)
        seed = lib.tensor(rng.standard_normal(tuple(out.shape)).astype(dtype), requires_grad=True)
        (grad,) = lib.autograd.grad(out, leaf, seed, create_graph=True)
        results.append(grad)
        rng = np.random.default_rng(5)
        rng.standard_normal(shape)
    theirs, ours = results
    if theirs.grad_fn is None:
        assert ours.grad_fn is None
    else:
        _assert_same_graph(ours, theirs)
    _assert_close(ours, theirs, rtol=1e-6 if dtype is np.float32 else 1e-14, atol=1e-6 if dtype is np.float32 else 1e-14)


def test_empty_batch_norm_with_empty_affine_parameters_raises_torchs_index_error():
    def run(lib):
        weight = lib.ones(0, requires_grad=True)
        return lib.nn.functional.batch_norm(lib.zeros(1, 0, 4, requires_grad=True), None, None, weight, weight,
                                            training=True)

    with pytest.raises(IndexError) as theirs:
        run(torch)
    with pytest.raises(IndexError) as ours:
        run(chainrule)
    assert str(ours.value) == str(theirs.value)
