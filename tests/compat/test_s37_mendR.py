"""Graphs a user walks that differed from torch 2.13, mended in lane mendR, each compared with
torch itself.

* ``torch.clamp`` with tensor bounds is torch's one ``ClampBackward0`` node with an edge to the
  input and to each bound (an empty edge for a missing bound), and ``clamp_min``/``clamp_max``
  with a tensor bound are ``ClampMinBackward1``/``ClampMaxBackward1``, where chainrule recorded
  ``where`` compositions under a renamed node;
* ``F.affine_grid`` is torch's one ``AffineGridGeneratorBackward0`` node over theta (with its
  ``_saved_size`` and ``_saved_align_corners``), where chainrule showed the view, bmm and
  transpose of its composition;
* ``torch.pdist`` is torch's one ``PdistBackward0`` node (``_saved_p``, ``_saved_result``,
  ``_saved_self``), its gradient torch's ``_pdist_backward`` (``PdistBackwardBackward0`` under
  ``create_graph``, whose differentiation raises torch's NotImplementedError), and it refuses
  what torch's refuses, where chainrule composed index, sub and norm nodes;
* a broadcast gradient summed back under ``create_graph`` is torch's ``at::sum_to``:
  ``SumBackward1`` (dims kept), under a ``ViewBackward0`` where leading dims go, ``SumBackward0``
  to a 0-d shape, where chainrule recorded one ``SumToSizeBackward0`` node of its own.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _graph(fn) -> list:
    """Every node a user reaches by walking ``next_functions`` from ``fn``, depth first, as
    (depth, name) pairs; None for an empty edge, a node reached twice listed once more by name."""
    seen: set = set()
    walked: list = []

    def visit(node, depth):
        if node is None:
            walked.append((depth, None))
            return
        walked.append((depth, node.name()))
        if id(node) in seen:
            return
        seen.add(id(node))
        for child, _ in node.next_functions:
            visit(child, depth + 1)

    visit(fn, 0)
    return walked


def _both(arrays, requires_grad):
    """The same arrays as torch and chainrule tensors."""
    def make(lib):
        return [lib.tensor(a, requires_grad=r) for a, r in zip(arrays, requires_grad)]
    return make(torch), make(chainrule)


def _assert_same_run(expected, got, inputs_torch, inputs_ours, *, rtol=0.0, atol=0.0):
    """Values (NaN where torch's is), dtype, contiguity, graph, and gradients for one upstream."""
    np.testing.assert_array_equal(got.detach().numpy(), expected.detach().numpy())
    assert str(got.dtype) == str(expected.dtype).replace("torch", "chainrule")
    assert got.is_contiguous() == expected.is_contiguous()
    assert _graph(got.grad_fn) == _graph(expected.grad_fn)
    upstream = np.random.default_rng(5).standard_normal(tuple(expected.shape)).astype(
        expected.detach().numpy().dtype)
    wanted_torch = [t for t in inputs_torch if t.requires_grad]
    wanted_ours = [t for t in inputs_ours if t.requires_grad]
    grads_torch = torch.autograd.grad(expected, wanted_torch, torch.tensor(upstream), allow_unused=True)
    grads_ours = chainrule.autograd.grad(got, wanted_ours, chainrule.tensor(upstream), allow_unused=True)
    assert [g is None for g in grads_ours] == [g is None for g in grads_torch]
    for g_ours, g_torch in zip(grads_ours, grads_torch):
        if g_torch is None:
            continue
        assert g_ours.dtype.itemsize == g_torch.dtype.itemsize
        np.testing.assert_allclose(g_ours.numpy(), g_torch.numpy(), rtol=rtol, atol=atol)


# ------------------------------------------------------------------ clamp with tensor bounds
def _clamp_operands(shapes, dtypes, seed=0):
    rng = np.random.default_rng(seed)
    arrays = []
    for k, (shape, dtype) in enumerate(zip(shapes, dtypes)):
        a = rng.standard_normal(shape) + (1.0 if k == 2 else 0.0)
        if np.dtype(dtype).kind == "f":
            a = a.astype(dtype)
            a.flat[1::5] = 0.25  # ties between x and a bound
            if a.size > 3:
                a.flat[::7] = np.nan
        else:
            a = (a * 3).astype(dtype)
        arrays.append(a)
    return arrays


CLAMP_CALLS = {
    "clamp_both": lambda lib, x, low, high: lib.clamp(x, min=low, max=high),
    "clamp_swapped_bounds": lambda lib, x, low, high: lib.clamp(x, min=high, max=low),
    "clamp_min_only": lambda lib, x, low, high: lib.clamp(x, min=low),
    "method_max_only": lambda lib, x, low, high: x.clamp(max=high),
    "clip_both": lambda lib, x, low, high: lib.clip(x, low, high),
    "clamp_min": lambda lib, x, low, high: lib.clamp_min(x, low),
    "method_clamp_max": lambda lib, x, low, high: x.clamp_max(high),
}
CLAMP_SHAPES = [((3, 4), (3, 4), (3, 4)), ((3, 4), (4,), (3, 1)), ((4,), (3, 4), (3, 4)),
                ((2, 3, 4), (1, 4), ())]
CLAMP_DTYPES = [("float32",) * 3, ("float64", "float32", "float32"), ("float32", "float64", "float16")]


@pytest.mark.parametrize("call", list(CLAMP_CALLS))
@pytest.mark.parametrize("shapes", CLAMP_SHAPES, ids=lambda s: "_".join("x".join(map(str, d)) or "0d" for d in s))
@pytest.mark.parametrize("dtypes", CLAMP_DTYPES, ids=lambda d: "_".join(d))
def test_clamp_with_tensor_bounds_records_torchs_one_node(call, shapes, dtypes):
    arrays = _clamp_operands(shapes, dtypes)
    (x_t, low_t, high_t), (x_c, low_c, high_c) = _both(arrays, (True, True, True))
    expected = CLAMP_CALLS[call](torch, x_t, low_t, high_t)
    got = CLAMP_CALLS[call](chainrule, x_c, low_c, high_c)
    # the bounds' gradients are sums over broadcast dims, added in another order than torch's
    _assert_same_run(expected, got, (x_t, low_t, high_t), (x_c, low_c, high_c), rtol=2e-6, atol=1e-6)


def test_clamp_with_bounds_that_need_no_gradient_keeps_their_empty_edges():
    arrays = _clamp_operands(((3, 4), (4,), (4,)), ("float32",) * 3)
    (x_t, low_t, high_t), (x_c, low_c, high_c) = _both(arrays, (True, False, False))
    expected, got = torch.clamp(x_t, low_t, high_t), chainrule.clamp(x_c, low_c, high_c)
    _assert_same_run(expected, got, (x_t,), (x_c,))
    assert [n for n, _ in got.grad_fn.next_functions][1:] == [None, None]


def test_clamp_of_integer_tensors_needs_no_node_and_keeps_torchs_dtype():
    arrays = _clamp_operands(((3, 4), (4,), (3, 1)), ("int64", "int32", "int64"))
    (x_t, low_t, high_t), (x_c, low_c, high_c) = _both(arrays, (False, False, False))
    expected, got = torch.clamp(x_t, low_t, high_t), chainrule.clamp(x_c, low_c, high_c)
    np.testing.assert_array_equal(got.numpy(), expected.numpy())
    assert got.dtype is chainrule.int64 and got.grad_fn is None


def test_clamp_nodes_save_what_torchs_save():
    arrays = _clamp_operands(((3, 4), (4,), (3, 4)), ("float32",) * 3)
    (x_t, low_t, high_t), (x_c, low_c, high_c) = _both(arrays, (True, True, True))
    for make in (lambda lib, x, low, high: lib.clamp(x, low, high),
                 lambda lib, x, low, high: lib.clamp(x, min=low),
                 lambda lib, x, low, high: lib.clamp_min(x, low),
                 lambda lib, x, low, high: lib.clamp_max(x, high)):
        expected, got = make(torch, x_t, low_t, high_t), make(chainrule, x_c, low_c, high_c)
        names = sorted(a for a in dir(expected.grad_fn) if a.startswith("_saved_"))
        assert sorted(a for a in dir(got.grad_fn) if a.startswith("_saved_")) == names
        for attribute in names:
            theirs, ours = getattr(expected.grad_fn, attribute), getattr(got.grad_fn, attribute)
            if theirs is None:
                assert ours is None, attribute
            else:
                np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())


def test_clamp_with_tensor_bounds_twice_differentiable_as_torch():
    arrays = _clamp_operands(((3, 4), (4,), (3, 4)), ("float64",) * 3)
    arrays = [np.nan_to_num(a) for a in arrays]
    (x_t, low_t, high_t), (x_c, low_c, high_c) = _both(arrays, (True, True, True))
    results = []
    for lib, x, low, high in ((torch, x_t, low_t, high_t), (chainrule, x_c, low_c, high_c)):
        y = lib.clamp(x, low, high)
        (gx,) = lib.autograd.grad((y * y).sum(), x, create_graph=True)
        results.append([g.detach().numpy() for g in lib.autograd.grad(gx.sum(), (x, low, high), allow_unused=True,
                                                                           materialize_grads=True)])
    for ours, theirs in zip(results[1], results[0]):
        np.testing.assert_array_equal(ours, theirs)


def test_clamp_with_tensor_bounds_refuses_as_torch():
    x, low = torch.zeros(3, 4), torch.zeros(5)
    with pytest.raises(RuntimeError) as theirs:
        torch.clamp(x, low)
    with pytest.raises(RuntimeError) as ours:
        chainrule.clamp(chainrule.zeros(3, 4), chainrule.zeros(5))
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(RuntimeError) as theirs:
        torch.clamp_min(x, low)
    with pytest.raises(RuntimeError) as ours:
        chainrule.clamp_min(chainrule.zeros(3, 4), chainrule.zeros(5))
    assert str(ours.value) == str(theirs.value)



@pytest.mark.parametrize("call", ["clamp_min_bound", "clamp_max_bound", "clamp_both", "clamp_min", "clamp_max"])
@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_clamp_of_a_real_tensor_by_a_complex_bound_refuses_as_torch(call, dtype):
    # the promoted dtype is complex, which torch's maximum/minimum/clamp kernels have no instance for
    def run(lib):
        x, bound = lib.ones(2, 3), lib.ones(2, 3, dtype=getattr(lib, dtype))
        return {"clamp_min_bound": lambda: lib.clamp(x, min=bound), "clamp_max_bound": lambda: lib.clamp(x, max=bound),
                "clamp_both": lambda: lib.clamp(x, bound, bound), "clamp_min": lambda: lib.clamp_min(x, bound),
                "clamp_max": lambda: lib.clamp_max(x, bound)}[call]()
    with pytest.raises(NotImplementedError) as theirs:
        run(torch)
    with pytest.raises(NotImplementedError) as ours:
        run(chainrule)
    assert str(ours.value) == str(theirs.value)

# ------------------------------------------------------------------ affine_grid
AFFINE_SIZES = [[2, 3, 5, 6], [1, 1, 1, 7], [3, 2, 4, 1], [2, 3, 2, 5, 6], [1, 1, 3, 1, 4]]


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", AFFINE_SIZES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_affine_grid_is_torchs_one_node(size, align_corners, dtype):
    spatial = len(size) - 2
    theta = np.random.default_rng(3).standard_normal((size[0], spatial, spatial + 1)).astype(dtype)
    (theta_t,), (theta_c,) = _both([theta], (True,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (a unit-size grid with align_corners=True warns, on both)
        expected = torch.nn.functional.affine_grid(theta_t, size, align_corners=align_corners)
        got = chainrule.nn.functional.affine_grid(theta_c, size, align_corners=align_corners)
    assert _graph(got.grad_fn) == _graph(expected.grad_fn)
    assert got.grad_fn._saved_size == expected.grad_fn._saved_size
    assert got.grad_fn._saved_align_corners == expected.grad_fn._saved_align_corners
    assert got.shape == expected.shape and got.is_contiguous() == expected.is_contiguous()
    # the 3-d grid's three-term dot products round in another order than torch's bmm (1 ulp)
    tolerance = 1e-6 if dtype == "float32" else 1e-14
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=tolerance, atol=tolerance)
    upstream = np.random.default_rng(4).standard_normal(tuple(expected.shape)).astype(dtype)
    (grad_t,) = torch.autograd.grad(expected, theta_t, torch.tensor(upstream))
    (grad_c,) = chainrule.autograd.grad(got, theta_c, chainrule.tensor(upstream))
    np.testing.assert_allclose(grad_c.numpy(), grad_t.numpy(), rtol=10 * tolerance, atol=10 * tolerance)


def test_affine_grid_gradient_is_differentiable_as_torchs():
    theta = np.random.default_rng(6).standard_normal((2, 2, 3))
    grads = []
    for lib in (torch, chainrule):
        t = lib.tensor(theta, requires_grad=True)
        grid = lib.nn.functional.affine_grid(t, [2, 1, 3, 4], align_corners=False)
        (g,) = lib.autograd.grad((grid ** 2).sum(), t, create_graph=True)
        (gg,) = lib.autograd.grad((g ** 2).sum(), t)
        grads.append(gg.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ pdist
PDIST_SHAPES = [(5, 4), (1, 3), (7, 1), (2, 6), (6, 0), (9, 5)]
PDIST_PS = [2.0, 1.0, 3.0, 0.5, 0.0, math.inf, 1.5]


@pytest.mark.parametrize("p", PDIST_PS)
@pytest.mark.parametrize("shape", PDIST_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pdist_is_torchs_one_node(shape, p, dtype):
    x = np.random.default_rng(3).standard_normal(shape).astype(dtype)
    if shape[0] > 3:
        x[3] = x[1]  # a zero distance, where torch's gradient is 0
    (x_t,), (x_c,) = _both([x], (True,))
    expected, got = torch.pdist(x_t, p), chainrule.pdist(x_c, p)
    assert _graph(got.grad_fn) == _graph(expected.grad_fn)
    assert got.grad_fn._saved_p == expected.grad_fn._saved_p
    np.testing.assert_array_equal(got.grad_fn._saved_result.detach().numpy(), got.detach().numpy())
    np.testing.assert_array_equal(got.grad_fn._saved_self.detach().numpy(), x)
    # torch's kernel sums each distance's terms in vector lanes, chainrule's norm in its own order
    tolerance = 4e-7 if dtype == "float32" else 1e-15
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=tolerance, atol=tolerance)
    upstream = np.random.default_rng(4).standard_normal(tuple(expected.shape)).astype(dtype)
    (grad_t,) = torch.autograd.grad(expected, x_t, torch.tensor(upstream))
    (grad_c,) = chainrule.autograd.grad(got, x_c, chainrule.tensor(upstream))
    np.testing.assert_allclose(grad_c.numpy(), grad_t.numpy(), rtol=100 * tolerance, atol=100 * tolerance)


def test_pdist_gradient_is_torchs_node_without_a_derivative():
    x = np.random.default_rng(7).standard_normal((5, 3))
    messages = []
    for lib in (torch, chainrule):
        t = lib.tensor(x, requires_grad=True)
        (g,) = lib.autograd.grad(lib.pdist(t, 3).sum(), t, create_graph=True)
        messages.append(_graph(g.grad_fn))
        with pytest.raises(NotImplementedError) as error:
            lib.autograd.grad(g.sum(), t)
        messages.append(str(error.value))
    assert messages[2:] == messages[:2]


PDIST_REFUSALS = {
    "3d": lambda lib: lib.pdist(lib.randn(2, 3, 4)),
    "1d_negative_p": lambda lib: lib.pdist(lib.ones(3, dtype=lib.int64), -1),
    "negative_p": lambda lib: lib.pdist(lib.randn(3, 4), -1),
    "nan_p": lambda lib: lib.pdist(lib.randn(3, 4), float("nan")),
    "integer": lambda lib: lib.pdist(lib.ones(3, 4, dtype=lib.int64)),
    "integer_negative_p": lambda lib: lib.pdist(lib.ones(3, 4, dtype=lib.int64), -1),
    "float16": lambda lib: lib.pdist(lib.ones(3, 4, dtype=lib.float16)),
    "bfloat16": lambda lib: lib.pdist(lib.ones(3, 4, dtype=lib.bfloat16), 1.5),
}


@pytest.mark.parametrize("call", list(PDIST_REFUSALS))
def test_pdist_refuses_as_torch(call):
    with pytest.raises(Exception) as theirs:
        PDIST_REFUSALS[call](torch)
    with pytest.raises(Exception) as ours:
        PDIST_REFUSALS[call](chainrule)
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)


# ------------------------------------------------------------------ sum_to_shape under create_graph
BROADCAST_SHAPES = [((3, 1), (4,)), ((2, 3, 4), (3, 1)), ((3, 4), ()), ((1, 4), (3, 1)), ((5, 1, 7), (6, 7))]
BROADCAST_OPS = {"add": lambda a, b: a + b, "mul": lambda a, b: a * b, "sub": lambda a, b: a - b,
                 "div": lambda a, b: a / b}


@pytest.mark.parametrize("op", list(BROADCAST_OPS))
@pytest.mark.parametrize("shapes", BROADCAST_SHAPES, ids=lambda s: "_".join("x".join(map(str, d)) or "0d" for d in s))
def test_broadcast_gradient_under_create_graph_is_torchs_sum_to(op, shapes):
    rng = np.random.default_rng(8)
    a, b = (rng.standard_normal(shape) + 2.0 for shape in shapes)
    upstream = rng.standard_normal(np.broadcast_shapes(*shapes))
    graphs, grads = [], []
    for lib in (torch, chainrule):
        x, y, w = (lib.tensor(v, requires_grad=True) for v in (a, b, upstream))
        first = lib.autograd.grad(BROADCAST_OPS[op](x, y), (x, y), w, create_graph=True)
        graphs.append([_graph(g.grad_fn) for g in first])
        second = lib.autograd.grad(sum((g * g).sum() for g in first), (x, y, w), allow_unused=True)
        grads.append([g.detach().numpy() for g in first] + [None if g is None else g.numpy() for g in second])
    assert graphs[1] == graphs[0]
    for ours, theirs in zip(grads[1], grads[0]):
        assert (ours is None) == (theirs is None)
        if theirs is not None:
            np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_sum_to_shape_saves_what_torchs_sum_to_saves():
    values = np.random.default_rng(9).standard_normal((2, 3, 4))
    expected = torch.tensor(values, requires_grad=True).sum_to_size(3, 1)
    got = chainrule.sum_to_shape(chainrule.tensor(values, requires_grad=True), (3, 1))
    assert _graph(got.grad_fn) == _graph(expected.grad_fn)
    summed_t, summed_c = expected.grad_fn.next_functions[0][0], got.grad_fn.next_functions[0][0]
    for attribute in ("_saved_dim", "_saved_keepdim", "_saved_self_sym_sizes"):
        assert getattr(summed_c, attribute) == getattr(summed_t, attribute)
    np.testing.assert_array_equal(got.detach().numpy(), expected.detach().numpy())
