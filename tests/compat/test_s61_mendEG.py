"""Session 61, lane mendEG: autograd semantics matched to torch 2.13.

- create_graph: the recorded backward graphs of var/std, logsumexp, the vector norms, sum/mean over
  given dims, mse_loss, square and abs are made of torch's nodes (its derivative formulas op for op).
- A view made under no_grad and written with grad enabled: torch's refusal, on the view itself for
  Ellipsis and full slices.
- autograd.grad with no input beyond a lone output: that output's hooks and retain_grad run.
"""

import collections

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _node_names(fn) -> collections.Counter:
    seen, names, stack = set(), [], [fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        names.append(node.name())
        stack.extend(next_fn for next_fn, _ in node.next_functions)
    return collections.Counter(names)


def _recorded_gradient(lib, f, data):
    x = lib.tensor(data, requires_grad=True)
    y = f(lib, x)
    # a weighted sum, so that the gradient reaching the op is itself recorded
    w = lib.tensor(np.linspace(0.5, 1.5, y.numel()).reshape(tuple(y.shape)), requires_grad=True)
    (g,) = lib.autograd.grad((y * w).sum(), x, create_graph=True)
    return g


_F = {
    "var": lambda t, x: x.var(),
    "var_dim": lambda t, x: x.var(1),
    "var_mean": lambda t, x: t.var_mean(x)[0],
    "std": lambda t, x: x.std(),
    "std_dims": lambda t, x: x.std((0, 1)),
    "std_dim_keepdim": lambda t, x: x.std(-1, keepdim=True, correction=0),
    "logsumexp": lambda t, x: t.logsumexp(x, 1),
    "logsumexp_all": lambda t, x: t.logsumexp(x, (0, 1)),
    "norm": lambda t, x: x.norm(),
    "norm_dim": lambda t, x: x.norm(dim=1),
    "norm_p1": lambda t, x: x.norm(p=1, dim=0),
    "norm_inf": lambda t, x: x.norm(p=float("inf")),
    "vector_norm_p3": lambda t, x: t.linalg.vector_norm(x, 3, dim=1),
    "vector_norm_p1_5": lambda t, x: t.linalg.vector_norm(x, 1.5),
    "vector_norm_p0_5": lambda t, x: t.linalg.vector_norm(x, 0.5, dim=0, keepdim=True),
    "matrix_norm": lambda t, x: t.linalg.matrix_norm(x),
    "mean_dims": lambda t, x: x.mean((0, -1)),
    "sum_all_dims": lambda t, x: x.sum((0, 1)),
    "mse_loss": lambda t, x: t.nn.functional.mse_loss(x, t.full((3, 4), 0.25, dtype=x.dtype)),
    "mse_loss_target": lambda t, x: t.nn.functional.mse_loss(t.full((3, 4), 0.25, dtype=x.dtype), x * x,
                                                             reduction="sum"),
    "mse_loss_none": lambda t, x: t.nn.functional.mse_loss(x, x.flip(0), reduction="none"),
    "square": lambda t, x: x.square(),
    "pow": lambda t, x: x**3,
    "l1_loss": lambda t, x: t.nn.functional.l1_loss(x, t.full((3, 4), 0.25, dtype=x.dtype)) ** 2,
    "abs": lambda t, x: x.abs() ** 2,
}


@pytest.mark.parametrize("name", list(_F))
def test_recorded_backward_nodes_are_torchs(name):
    data = np.random.default_rng(0).standard_normal((3, 4))
    want = _recorded_gradient(torch, _F[name], data)
    got = _recorded_gradient(chainrule, _F[name], data)
    assert _node_names(got.grad_fn) == _node_names(want.grad_fn)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-12, atol=1e-14)


# (no fractional order here: torch's first double backward through such a pow takes seconds to warm up)
@pytest.mark.parametrize("name", ["var_dim", "std_dims", "logsumexp", "norm_dim", "vector_norm_p3", "mse_loss",
                                  "mse_loss_target", "square"])
def test_recorded_backward_differentiates_as_torchs(name):
    data = np.random.default_rng(1).standard_normal((3, 4))
    v = np.random.default_rng(2).standard_normal((3, 4))
    hvps = []
    for lib in (torch, chainrule):
        x = lib.tensor(data, requires_grad=True)
        (g,) = lib.autograd.grad(_F[name](lib, x).sum(), x, create_graph=True)
        (h,) = lib.autograd.grad((g * lib.tensor(v)).sum(), x)
        hvps.append(h.detach().numpy())
    np.testing.assert_allclose(hvps[1], hvps[0], rtol=1e-10, atol=1e-12)
    x = chainrule.tensor(data, requires_grad=True)
    assert chainrule.autograd.gradgradcheck(lambda x: _F[name](chainrule, x), (x,))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_gradient_is_torchs_kernel_bit_for_bit(reduction):
    # torch's mse_loss_backward: alpha·(x - t)·g with alpha = 2 (2/n for 'mean') in the dtype
    rng = np.random.default_rng(3)
    for shape in [(7,), (5, 7), (2, 3, 5)]:
        a, b = rng.standard_normal(shape).astype(np.float32), rng.standard_normal(shape).astype(np.float32)
        grads = []
        for lib in (torch, chainrule):
            x, t = lib.tensor(a, requires_grad=True), lib.tensor(b, requires_grad=True)
            y = lib.nn.functional.mse_loss(x, t, reduction=reduction)
            y.backward(lib.full(tuple(y.shape), 1.37))
            grads.append((x.grad.detach().numpy(), t.grad.detach().numpy()))
        np.testing.assert_array_equal(grads[1][0], grads[0][0])
        np.testing.assert_array_equal(grads[1][1], grads[0][1])


@pytest.mark.parametrize("op", ["var", "std"])
@pytest.mark.filterwarnings("ignore:.*degrees of freedom")
def test_no_degrees_of_freedom_gradient_is_torchs(op):
    # torch's var_backward without dims: inf, and nan where the input is its mean
    for data, correction in [(np.array(0.7), 1), (np.array([0.5]), 1), (np.array([0.5, -1.0, 2.0]), 3)]:
        grads = []
        for lib in (torch, chainrule):
            x = lib.tensor(data, requires_grad=True)
            getattr(x, op)(correction=correction).backward()
            grads.append(x.grad.detach().numpy())
        np.testing.assert_array_equal(grads[1], grads[0])


# item 3: writing a view made under no_grad, with grad enabled -------------------------------------
_NO_GRAD_VIEWS = {"slice": lambda x: x[1:], "transpose": lambda x: x.t(), "split": lambda x: x.split(1)[0],
                  "select": lambda x: x[0]}
_WRITES = {
    "ellipsis": lambda lib, v: v.__setitem__(Ellipsis, 1.0),
    "ellipsis_tensor": lambda lib, v: v.__setitem__(Ellipsis, lib.ones(tuple(v.shape), dtype=v.dtype)),
    "full_slice": lambda lib, v: v.__setitem__(slice(0, 100), 2.0),
    "negative_start": lambda lib, v: v.__setitem__(slice(-100, None), 2.0),
    "index": lambda lib, v: v.__setitem__(0, 1.0),
    "copy_": lambda lib, v: v.copy_(lib.ones(tuple(v.shape), dtype=v.dtype)),
    "add_": lambda lib, v: v.add_(1),
}


def _write_outcome(lib, view, write):
    base = lib.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True) * 1
    with lib.no_grad():
        v = _NO_GRAD_VIEWS[view](base)
    try:
        _WRITES[write](lib, v)
    except RuntimeError as e:
        return str(e)
    return None


@pytest.mark.parametrize("view", list(_NO_GRAD_VIEWS))
@pytest.mark.parametrize("write", list(_WRITES))
def test_writing_a_no_grad_view_is_refused_in_torchs_words(view, write):
    # set_item slices to the view itself for Ellipsis and a full slice (no new view to name)
    assert _write_outcome(chainrule, view, write) == _write_outcome(torch, view, write)


# item 4: autograd.grad with no input beyond the output --------------------------------------------
def _unreachable_grad(lib, leaf_output: bool, outputs: int):
    calls = []
    x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = lib.tensor([4.0, 5.0], requires_grad=True)
    z = x if leaf_output else x[0]
    z.retain_grad()
    z.register_hook(lambda g: calls.append(g.tolist()))
    w = (x * 3).sum()
    outs = (z, w)[:outputs]
    seeds = (lib.ones_like(z) * 0.5, lib.tensor(2.0))[:outputs]
    (g,) = lib.autograd.grad(outs, (y,), seeds, allow_unused=True, retain_graph=True)
    return g, calls, None if leaf_output or z.grad is None else z.grad.tolist()


@pytest.mark.parametrize("leaf_output", [False, True])
@pytest.mark.parametrize("outputs", [1, 2])
def test_a_lone_outputs_hooks_run_though_no_input_is_reached(leaf_output, outputs):
    # torch's engine evaluates a lone output's node as its graph root (its tensor hooks and retain_grad
    # run); with several outputs its GraphRoot hands nothing to nodes that need not run
    assert _unreachable_grad(chainrule, leaf_output, outputs) == _unreachable_grad(torch, leaf_output, outputs)


# item 2: the strides of an empty advanced read ------------------------------------------------------
_EMPTY_READS = {
    "false": lambda lib, x: x[lib.tensor(False)],
    "none_false": lambda lib, x: x[None, lib.tensor(False)],
    "ellipsis_false": lambda lib, x: x[..., lib.tensor(False)],
    "empty_mask": lambda lib, x: x[lib.zeros(x.shape[0], dtype=lib.bool)],
    "empty_index_last": lambda lib, x: x[..., lib.tensor([], dtype=lib.long)],
}


@pytest.mark.parametrize("read", list(_EMPTY_READS))
@pytest.mark.parametrize("shape, transposed", [((1,), False), ((4, 1, 2), False), ((3, 1), True), ((2, 2), True),
                                               ((2, 3), False)])
@pytest.mark.parametrize("requires_grad", [False, True])
def test_an_empty_advanced_read_has_torchs_strides(read, shape, transposed, requires_grad):
    # torch's index kernel lays out an empty result by its TensorIterator's dim order: a dim after an
    # empty one gets stride 0 unless the order is row-major
    got = []
    for lib in (torch, chainrule):
        x = lib.tensor(np.arange(float(np.prod(shape))).reshape(shape), requires_grad=requires_grad)
        x = x.transpose(0, 1) if transposed else x
        y = _EMPTY_READS[read](lib, x)
        y.sum().backward() if requires_grad else None
        got.append((tuple(y.shape), y.stride(), None if not x.is_leaf or x.grad is None else x.grad.stride()))
    assert got[1] == got[0]
