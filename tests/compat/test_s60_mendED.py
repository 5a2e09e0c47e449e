"""Session 60, lane mendED: autograd leftovers of the differential fuzzer, each against torch 2.13."""

from __future__ import annotations

import pytest

import chainrule


def _outcome(fn):
    try:
        result = fn()
    except Exception as e:  # the class and the message's first line are compared
        return type(e).__name__, str(e).split("\n")[0]
    return "ok", tuple(result.shape), result.tolist()


@pytest.mark.parametrize("shape", [(), (1,), (2,)])
@pytest.mark.parametrize("mask", [True, False])
@pytest.mark.parametrize("value_shape", [(), (3,)])
@pytest.mark.parametrize("form", ["index_put", "index_put_", "setitem"])
def test_zero_dim_bool_mask_as_the_sole_index(shape, mask, value_shape, form):
    torch = pytest.importorskip("torch")

    def run(lib):
        def put():
            x = lib.zeros(shape)
            index, value = lib.tensor(mask), lib.full(value_shape, 7.0)
            if form == "setitem":
                x[index] = value
                return x
            return getattr(x, form)((index,), value)
        return _outcome(put)

    assert run(chainrule) == run(torch)


def test_more_index_tensors_than_dims_refused_by_count():
    torch = pytest.importorskip("torch")
    for lib_outcomes in [_outcome(lambda lib=lib: lib.zeros(2).index_put((lib.tensor(True), lib.tensor(True)),
                                                                         lib.tensor(1.0)))
                         for lib in (chainrule, torch)]:
        assert lib_outcomes == ("IndexError", "too many indices for tensor of dimension 1 (got 2)")


def _divisions(grad_fn) -> list:
    """(name, edge count, _saved_other) of every division node the graph of ``grad_fn`` holds."""
    found, stack, seen = [], [grad_fn], set()
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        if "Div" in fn.name():
            other = getattr(fn, "_saved_other", None)
            found.append((fn.name(), len(fn.next_functions), other.tolist() if hasattr(other, "tolist") else other))
        stack.extend(node for node, _ in fn.next_functions)
    return sorted(found, key=str)


@pytest.mark.parametrize("reduce", ["all", "dim", "dims", "keepdim"])
def test_mean_backward_under_create_graph_divides_by_a_scalar(reduce):
    torch = pytest.importorskip("torch")

    def run(lib):
        x = lib.linspace(0.1, 1.0, 6, dtype=lib.float64).reshape(2, 3).requires_grad_()
        y = {"all": lambda: x.mean(), "dim": lambda: x.mean(1), "dims": lambda: x.mean((0, 1)),
             "keepdim": lambda: x.mean(0, keepdim=True)}[reduce]().exp()
        gradient, = lib.autograd.grad(y.sum(), x, create_graph=True)
        return _divisions(gradient.grad_fn), gradient.tolist()

    assert run(chainrule) == run(torch)


def test_mean_backward_under_a_dispatch_mode_is_aten_div_scalar():
    from chainrule.utils._python_dispatch import TorchDispatchMode

    seen = []

    class Recording(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append(str(func))
            return func(*args, **(kwargs or {}))

    x = chainrule.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x.mean().exp()
    with Recording():
        gradient, = chainrule.autograd.grad(y, x, create_graph=True)
    assert seen[-1] == "aten.div.Scalar" and gradient.grad_fn.name() == "DivBackward1"


@pytest.mark.parametrize("api", ["backward", "grad"])
@pytest.mark.parametrize("outputs", ["no_grad view", "no_grad view, graph", "graph, plain", "graph, no_grad view"])
@pytest.mark.parametrize("gradient", ["none", "wrong shape"])
def test_seeds_checked_before_the_outputs_nodes(api, outputs, gradient):
    """torch's _make_grads checks every seed (a given one's shape, an implicit one's scalar output)
    before its engine refuses an output without a node."""
    torch = pytest.importorskip("torch")

    def run(lib):
        x = lib.arange(6.0).reshape(2, 3).requires_grad_()
        made = {"graph": lambda: x * 2, "plain": lambda: lib.ones(3)}
        with lib.no_grad():
            made_view = x.expand(2, 2, 3)
        tensors = [made_view if name == "no_grad view" else made[name]() for name in outputs.split(", ")]
        seeds = None if gradient == "none" else [lib.ones(5) for _ in tensors]
        if api == "backward":
            return _outcome(lambda: lib.autograd.backward(tensors, seeds) or x)
        return _outcome(lambda: lib.autograd.grad(tensors, [x], seeds, allow_unused=True)[0])

    assert run(chainrule) == run(torch)
