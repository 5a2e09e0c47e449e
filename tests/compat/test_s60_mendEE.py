"""Saved tensors of nodes (grad_fn._saved_* / _raw_saved_*) against torch 2.13: before and after
backward, with retain_graph both ways, and what a second backward does."""

from __future__ import annotations

import pytest

import chainrule

torch = pytest.importorskip("torch")

_IDX = [[0], [1], [2], [3], [0]]

# (name, build(lib, x) -> output, the saved attribute torch keeps on a node that saves nothing else)
_CTX_HELD = [
    ("index_select", lambda lib, x: x.index_select(0, lib.tensor([0, 2, 1])), "_saved_index"),
    ("embedding", lambda lib, x: lib.nn.functional.embedding(lib.tensor([[0, 2], [4, 1]]), x), "_saved_indices"),
    ("embedding_max_norm", lambda lib, x: lib.nn.functional.embedding(lib.tensor([0, 2]), x.detach().clone()
                                                                       .requires_grad_(), max_norm=1.0),
     "_saved_indices"),
    ("advanced_index", lambda lib, x: x[lib.tensor([0, 3])], "_saved_indices"),
    ("bool_index", lambda lib, x: x[x > 0], "_saved_indices"),
    ("index_put", lambda lib, x: x.index_put((lib.tensor([0, 1]),), lib.ones(2, 4)), "_saved_indices"),
    ("scatter", lambda lib, x: x.scatter(1, lib.tensor(_IDX), 1.0), "_saved_index"),
    ("scatter_add_src", lambda lib, x: lib.zeros(5, 4).scatter_add(1, lib.tensor(_IDX), x[:, :1]), "_saved_index"),
    ("max_dim", lambda lib, x: x.max(1)[0], "_saved_indices"),
    ("sort", lambda lib, x: x.sort(1)[0], "_saved_indices"),
    ("topk", lambda lib, x: x.topk(2, 1)[0], "_saved_indices"),
    ("repeat_interleave", lambda lib, x: x.repeat_interleave(lib.tensor([1, 2, 1, 1, 1]), dim=0), "_saved_index"),
    ("mul_number_half", lambda lib, x: x.half() * 2.5, "_saved_other"),
]


def _outcome(thunk):
    try:
        value = thunk()
    except RuntimeError as error:
        return "RuntimeError", str(error).split(".")[0]
    if isinstance(value, (tuple, list)):
        return [(tuple(v.shape), v.tolist()) for v in value]
    return None if value is None else (tuple(value.shape), value.tolist())


def _after_backward(lib, build, attribute, retain):
    x = lib.tensor([[0.5, -1.0, 2.0, 0.25], [1.5, -0.5, 0.0, 3.0], [-2.0, 1.0, 0.75, -0.25],
                              [0.1, 0.2, -0.3, 0.4], [1.0, 1.0, -1.0, 2.5]], requires_grad=True)
    y = build(lib, x)
    y.float().sum().backward(retain_graph=retain)
    read = _outcome(lambda: getattr(y.grad_fn, attribute))
    second = _outcome(lambda: y.float().sum().backward())
    return y.grad_fn.name(), read, second


@pytest.mark.parametrize("retain", [False, True])
@pytest.mark.parametrize("name, build, attribute", _CTX_HELD, ids=[c[0] for c in _CTX_HELD])
def test_tensors_kept_on_ctx_are_freed_by_backward(name, build, attribute, retain):
    # torch's "Trying to backward through the graph a second time ..." once freed, the tensor with retain_graph
    assert _after_backward(chainrule, build, attribute, retain) == _after_backward(torch, build, attribute, retain)


def test_undefined_ctx_tensor_leaves_a_second_backward_possible():
    # scatter_add_ whose src needs no gradient keeps no index: torch's node runs again, _saved_index None
    for lib in (torch, chainrule):
        x = lib.ones(5, 4, requires_grad=True)
        y = x.clone().scatter_add_(1, lib.tensor(_IDX), lib.ones(5, 1))
        y.sum().backward()
        y.sum().backward()
        assert y.grad_fn._saved_index is None
        assert x.grad.tolist() == [[2.0] * 4] * 5


def test_index_put_lists_raw_saved_indices():
    names = {}
    for lib in (torch, chainrule):
        x = lib.ones(5, 4, requires_grad=True)
        fn = x.index_put((lib.tensor([0, 1]),), lib.ones(2, 4)).grad_fn
        names[lib.__name__] = sorted(n for n in dir(fn) if n.startswith(("_saved_", "_raw_saved_")))
    assert names["chainrule"] == names["torch"] == ["_raw_saved_indices", "_saved_accumulate", "_saved_indices"]


_PRODUCTS = [
    ("mm", lambda lib, a, b, c: a @ b.t(), ("_saved_self_sym_strides", "_saved_mat2_sym_strides")),
    ("addmm", lambda lib, a, b, c: lib.addmm(c, a.t().contiguous().t(), b.t()),
     ("_saved_mat1_sym_strides", "_saved_mat2_sym_strides", "_saved_mat1_sym_sizes")),
    ("linear", lambda lib, a, b, c: lib.nn.functional.linear(a, b, c), ("_saved_mat1_sym_strides", "_saved_mat2_sym_strides")),
    ("mm_one_needs", lambda lib, a, b, c: a @ b.detach().t(), ("_saved_self_sym_strides", "_saved_mat2_sym_strides")),
]


@pytest.mark.parametrize("retain", [False, True])
@pytest.mark.parametrize("name, build, attributes", _PRODUCTS, ids=[c[0] for c in _PRODUCTS])
def test_product_strides_outlive_backward(name, build, attributes, retain):
    # torch keeps a product's input strides as numbers: they still answer after backward frees the graph
    seen = {}
    for lib in (torch, chainrule):
        a = lib.ones(3, 4, requires_grad=True)
        b = lib.ones(5, 4, requires_grad=True)
        c = lib.ones(5, requires_grad=True)
        y = build(lib, a, b, c)
        y.sum().backward(retain_graph=retain)
        seen[lib.__name__] = (y.grad_fn.name(), [tuple(getattr(y.grad_fn, n)) for n in attributes])
    assert seen["chainrule"] == seen["torch"]


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("needs", [(True, False, False), (False, True, True), (False, False, True)])
def test_convolution_saves_input_and_weight_always(needs, transposed):
    # torch's ConvolutionBackward0 keeps both whichever gradients are needed: _saved_* and the packs see both
    seen = {}
    for lib in (torch, chainrule):
        x = lib.ones(2, 3, 5, 5, requires_grad=needs[0])
        w = lib.ones((3, 2, 3, 3) if transposed else (2, 3, 3, 3), requires_grad=needs[1])
        b = lib.ones(2, requires_grad=needs[2])
        conv = lib.nn.functional.conv_transpose2d if transposed else lib.nn.functional.conv2d
        packed = []
        with lib.autograd.graph.saved_tensors_hooks(lambda t, packed=packed: packed.append(tuple(t.shape)) or t,
                                                    lambda t: t):
            y = conv(x, w, b)
        fn = y.grad_fn
        before = [tuple(fn._saved_input.shape), tuple(fn._saved_weight.shape)]
        y.sum().backward()
        seen[lib.__name__] = (fn.name(), packed, before, x.grad is None, w.grad is None)
    assert seen["chainrule"] == seen["torch"]
