"""Session 62, lane mendEN: create_graph graphs of losses and reductions matched to torch 2.13.

- smooth_l1_loss / huber_loss / soft_margin_loss: one SmoothL1LossBackward0 / HuberLossBackward0 /
  SoftMarginLossBackward0 node whose gradient is torch's one *LossBackwardBackward0 node (for the
  target too, x and t swapped), computed as torch's CPU kernel rounds it; batched and vmap replay rules.
- max()/min(), max/min(dim) and the other value-selecting reductions, cummax, prod, cumsum, cumprod,
  maximum/minimum: their create_graph gradients recorded in torch's formulas' ops.
- binary_cross_entropy: the target's gradient (and the double backward) divide by the count as a
  number, DivBackward1, as torch's.
- from the 80+-op sweep: cos (grad * -sin(x)), add/sub with alpha (MulBackward1), mm (t(): TBackward0).
"""

import collections

import numpy as np
import pytest

import chainrule
from chainrule.autograd import gradgradcheck

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


def _first_edge_chain(fn) -> list:
    chain = []
    while fn is not None:
        chain.append(fn.name())
        fn = next((next_fn for next_fn, _ in fn.next_functions if next_fn is not None), None)
    return chain


_LOSSES = {
    "smooth_l1_loss": lambda F, x, t, reduction, p: F.smooth_l1_loss(x, t, reduction=reduction, beta=p),
    "huber_loss": lambda F, x, t, reduction, p: F.huber_loss(x, t, reduction=reduction, delta=p),
    "soft_margin_loss": lambda F, x, t, reduction, p: F.soft_margin_loss(x, t, reduction=reduction),
}
_TARGET_TAKES_NO_GRADIENT = ("soft_margin_loss",)  # (torch refuses a target that requires grad)


def _recorded(lib, loss, data, reduction, p, dtype):
    """The first gradients of x and t (create_graph) and a Hessian-vector product of them."""
    x_data, t_data, w_data, direction = data
    real = getattr(lib, dtype)
    x = lib.tensor(x_data, dtype=real, requires_grad=True)
    t = lib.tensor(t_data, dtype=real, requires_grad=loss not in _TARGET_TAKES_NO_GRADIENT)
    inputs = (x, t) if t.requires_grad else (x,)
    y = _LOSSES[loss](lib.nn.functional, x, t, reduction, p)
    w = lib.tensor(w_data if y.dim() else w_data.sum(), dtype=real, requires_grad=True)
    first = lib.autograd.grad((y * w).sum(), inputs, create_graph=True)
    second = lib.autograd.grad((sum(first) * lib.tensor(direction, dtype=real)).sum(), (*inputs, w))
    return first, [a.detach().numpy() for a in first], [a.detach().numpy() for a in second]


# (beta / delta of 0.5, 1 and 2: torch's scalar and vectorized lambdas round those alike, so the
# bits hold on any CPU; 0.3 is compared for bits only below a vector pair, where both run the scalar one)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("loss", list(_LOSSES))
def test_recorded_gradient_is_torchs_one_node(loss, reduction, dtype):
    rng = np.random.default_rng(0)
    for shape, p in (((), 1.0), ((3,), 0.3), ((2, 3), 2.0), ((4, 1, 2), 0.5), ((5, 7), 0.5)):
        data = [rng.standard_normal(shape) * 2 for _ in range(4)]
        want, want_first, want_second = _recorded(torch, loss, data, reduction, p, dtype)
        got, got_first, got_second = _recorded(chainrule, loss, data, reduction, p, dtype)
        for g, w in zip(got, want, strict=True):
            assert _node_names(g.grad_fn) == _node_names(w.grad_fn)
            assert _first_edge_chain(g.grad_fn) == _first_edge_chain(w.grad_fn)
            assert g.stride() == w.stride()
        # the first gradients' bits (soft_margin_loss's exp is NumPy's: where torch's vectorized loop
        # runs Sleef's, or on float64, it may be an ulp apart)
        exp_as_torchs = dtype == "float32" and np.prod(shape) < 8
        for g, w in zip(got_first, want_first, strict=True):
            if loss in _TARGET_TAKES_NO_GRADIENT and not exp_as_torchs:
                np.testing.assert_allclose(g, w, rtol=1e-6, atol=0)
            else:
                np.testing.assert_array_equal(g, w)
        for g, w in zip(got_second, want_second, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("loss", list(_LOSSES))
def test_gradient_of_a_transposed_input_is_row_major_as_torchs(loss):
    data = np.random.default_rng(1).standard_normal((2, 3, 4))
    strides = []
    for lib in (torch, chainrule):
        x = lib.tensor(data[0], requires_grad=True).t()
        (g,) = lib.autograd.grad(_LOSSES[loss](lib.nn.functional, x, lib.tensor(data[1]).t(), "none", 1.0).sum(), x,
                                 create_graph=True)
        strides.append(g.stride())
    assert strides[0] == strides[1]


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("loss", list(_LOSSES))
def test_recorded_gradient_gradgradcheck(loss, reduction):
    rng = np.random.default_rng(2)
    x = chainrule.tensor(rng.standard_normal((2, 3)) * 2, requires_grad=True)
    t = chainrule.tensor(rng.standard_normal((2, 3)), requires_grad=loss not in _TARGET_TAKES_NO_GRADIENT)
    assert gradgradcheck(lambda x, t: _LOSSES[loss](chainrule.nn.functional, x, t, reduction, 0.7), (x, t))


@pytest.mark.filterwarnings("ignore:There is a performance drop")  # (torch's vmap has no rule for soft_margin_loss)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("loss", list(_LOSSES))
def test_per_sample_gradients_batch_by_rules(loss, reduction, per_slice_ops):
    """vmap of grad and of a gradient of grad (a Hessian-vector product in x and t) run no op per
    slice, and give torch's numbers."""
    rng = np.random.default_rng(3)
    x, t, v = (rng.standard_normal((4, 3, 5)) * 2 for _ in range(3))

    def per_sample(lib):
        def f(xi, ti):
            return _LOSSES[loss](lib.nn.functional, xi, ti, reduction, 0.8).sum()

        argnums = (0,) if loss in _TARGET_TAKES_NO_GRADIENT else (0, 1)

        def hvp(xi, ti, vi):
            return lib.func.grad(lambda a, b: (lib.func.grad(f, argnums=argnums)(a, b)[0] * vi).sum(),
                                 argnums=argnums)(xi, ti)

        return [*lib.func.vmap(lib.func.grad(f, argnums=argnums))(lib.tensor(x), lib.tensor(t)),
                *lib.func.vmap(hvp)(lib.tensor(x), lib.tensor(t), lib.tensor(v))]

    ours = per_sample(chainrule)
    assert per_slice_ops == []
    for a, b in zip(ours, per_sample(torch)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("loss", list(_LOSSES))
def test_is_grads_batched_batches_the_recorded_gradient(loss):
    rng = np.random.default_rng(4)
    results = []
    for lib in (torch, chainrule):
        x = lib.tensor(rng.standard_normal((3, 4)) * 2, requires_grad=True)
        t = lib.tensor(rng.standard_normal((3, 4)), requires_grad=loss not in _TARGET_TAKES_NO_GRADIENT)
        inputs = (x, t) if t.requires_grad else (x,)
        gx = lib.autograd.grad(_LOSSES[loss](lib.nn.functional, x, t, "mean", 0.9), inputs, create_graph=True)[0]
        basis = lib.tensor(np.stack([np.eye(12)[i].reshape(3, 4) for i in range(12)]))
        results.append([a.detach().numpy() for a in lib.autograd.grad(gx, inputs, basis, is_grads_batched=True)])
        rng = np.random.default_rng(4)
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- reductions' and cumulative ops' recorded gradients
# torch 2.13's formulas: evenly_distribute_backward (max()/min(): zeros.masked_fill_(mask, grad / count)),
# value_selecting_reduction_backward (max/min(dim), sort, topk, kthvalue, median/mode(dim):
# zeros.scatter(dim, indices, grad)), cummaxmin_backward (scatter_add), prod_backward (grad * (result /
# input), unsqueezed at the dim), reversed_cumsum (flip, cumsum, flip) for cumsum and cumprod, and
# maximum/minimum's where(a == b, grad / 2, grad).masked_fill_(a < b, 0)
_SELECTING = {
    "max": lambda t, x: x.max(),
    "min": lambda t, x: x.min(),
    "max_dim": lambda t, x: x.max(1)[0],
    "min_dim_keepdim": lambda t, x: x.min(0, keepdim=True)[0],
    "sort": lambda t, x: x.sort(1)[0],
    "topk": lambda t, x: x.topk(2, 1)[0],
    "kthvalue": lambda t, x: x.kthvalue(2, 1)[0],
    "mode": lambda t, x: x.mode(1)[0],
    "cummax": lambda t, x: x.cummax(1)[0],
    "amax": lambda t, x: x.amax(),
    "amin_dim": lambda t, x: x.amin(1),
    "prod": lambda t, x: x.prod(),
    "prod_dim": lambda t, x: x.prod(1),
    "prod_keepdim": lambda t, x: x.prod(0, keepdim=True),
    "cumsum": lambda t, x: x.cumsum(1),
    "cumsum_of_size_1": lambda t, x: x[:, :1].cumsum(1),
    "cumprod": lambda t, x: x.cumprod(0),
    "cumprod_of_size_1": lambda t, x: x[:1].cumprod(0),
    "maximum": lambda t, x: t.maximum(x, x.flip(0)),
    "minimum": lambda t, x: t.minimum(x, x.flip(1)),
}


def _recorded_gradient(lib, f, data, weights, direction):
    x = lib.tensor(data, requires_grad=True)
    y = f(lib, x)
    w = lib.tensor(weights[:y.numel()].reshape(tuple(y.shape)), requires_grad=True)
    (g,) = lib.autograd.grad((y * w).sum(), x, create_graph=True)
    second = lib.autograd.grad((g * lib.tensor(direction)).sum(), (x, w), allow_unused=True, materialize_grads=True)
    return g, [a.detach().numpy() for a in (g, *second)]


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("name", list(_SELECTING))
def test_reductions_recorded_gradients_are_torchs(name, ties):
    rng = np.random.default_rng(5)
    data = rng.standard_normal((3, 4)) * 2
    if ties:  # (ties split the gradient; whole numbers, no zero for prod's and cumprod's division)
        data = np.where(np.round(data) == 0, 1.0, np.round(data))
    weights, direction = rng.standard_normal(12), rng.standard_normal((3, 4))
    want, want_values = _recorded_gradient(torch, _SELECTING[name], data, weights, direction)
    got, got_values = _recorded_gradient(chainrule, _SELECTING[name], data, weights, direction)
    assert _node_names(got.grad_fn) == _node_names(want.grad_fn)
    assert _first_edge_chain(got.grad_fn) == _first_edge_chain(want.grad_fn)
    assert got.stride() == want.stride()
    for g, w in zip(got_values, want_values, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["max", "prod_dim", "cumsum", "cumprod", "maximum"])
def test_reductions_recorded_gradients_gradgradcheck(name):
    x = chainrule.tensor(np.random.default_rng(6).standard_normal((3, 4)), requires_grad=True)
    assert gradgradcheck(lambda x: _SELECTING[name](chainrule, x), (x,))


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
def test_plain_cumulative_gradient_is_contiguous_as_torchs(name):
    data = np.random.default_rng(7).standard_normal((2, 3, 4))
    strides = []
    for lib in (torch, chainrule):
        x = lib.tensor(data[0], requires_grad=True)
        grads = [lib.autograd.grad((getattr(x, name)(dim) * lib.tensor(data[1])).sum(), x)[0] for dim in (0, 1)]
        strides.append([g.stride() for g in grads])
    assert strides[0] == strides[1]


# ---------------------------------------------------------------- binary_cross_entropy's target gradient
# torch's binary_cross_entropy_target_backward: logit(p).neg_().mul_(grad).mul_(weight).div_(numel), the
# count a number (DivBackward1 under create_graph), as its double-backward formulas divide too
@pytest.mark.parametrize("input_requires_grad", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_binary_cross_entropy_target_gradient_graph_is_torchs(reduction, weighted, input_requires_grad):
    rng = np.random.default_rng(8)
    p_data, t_data, w_data = rng.uniform(0.05, 0.95, (2, 3)), rng.uniform(0, 1, (2, 3)), rng.uniform(0.5, 2, (2, 3))
    u_data, direction = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    graphs, values = [], []
    for lib in (torch, chainrule):
        p = lib.tensor(p_data, requires_grad=input_requires_grad)
        t = lib.tensor(t_data, requires_grad=True)
        y = lib.nn.functional.binary_cross_entropy(p, t, weight=lib.tensor(w_data) if weighted else None,
                                                   reduction=reduction)
        u = lib.tensor(u_data if y.dim() else u_data.sum(), requires_grad=True)
        inputs = (p, t) if input_requires_grad else (t,)
        first = lib.autograd.grad((y * u).sum(), inputs, create_graph=True)
        graphs.append([(_node_names(g.grad_fn), _first_edge_chain(g.grad_fn)) for g in first])
        second = lib.autograd.grad(sum((g * lib.tensor(direction)).sum() for g in first), (*inputs, u),
                                   allow_unused=True, materialize_grads=True)
        values.append([a.detach().numpy() for a in (*first, *second)])
    assert graphs[0] == graphs[1]
    for got, want in zip(values[1], values[0], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- from the sweep: cos, add/sub with alpha, mm
_SWEEP = {
    "cos": lambda t, x, y: x.cos() * y,  # torch's grad * -sin(x)
    "add_alpha": lambda t, x, y: t.add(x, y, alpha=0.3),  # maybe_multiply(grad, alpha): MulBackward1
    "sub_alpha": lambda t, x, y: t.sub(x, y, alpha=2),  # maybe_multiply(-grad, alpha)
    "mm": lambda t, x, y: x @ y.t(),  # mm_mat1/mat2_backward's t(): TBackward0
    "mm_column_major": lambda t, x, y: x.t().contiguous().t() @ y.t(),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(_SWEEP))
def test_sweep_recorded_gradients_are_torchs(name, dtype):
    rng = np.random.default_rng(9)
    a, b, w = (rng.standard_normal((3, 3)) for _ in range(3))
    graphs, values = [], []
    for lib in (torch, chainrule):
        x, y = (lib.tensor(v, dtype=getattr(lib, dtype), requires_grad=True) for v in (a, b))
        weights = lib.tensor(w, dtype=getattr(lib, dtype), requires_grad=True)  # (so the gradient reaching the op is recorded)
        first = lib.autograd.grad((_SWEEP[name](lib, x, y) * weights).sum(), (x, y), create_graph=True)
        graphs.append([(_node_names(g.grad_fn), _first_edge_chain(g.grad_fn), g.stride()) for g in first])
        values.append([g.detach().numpy() for g in first])
    assert graphs[0] == graphs[1]
    for got, want in zip(values[1], values[0], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
