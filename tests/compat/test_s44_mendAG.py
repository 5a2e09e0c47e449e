"""Session 44, lane mendAG: rsub's and the reflected operators' graphs, half ``x * number``'s one
node, cross_entropy's weight check under label_smoothing, masked_scatter_ from an overlapping source."""
import numpy as np
import pytest
import torch

import chainrule
from chainrule.autograd import gradcheck


def _pair_of(mod, dtype, shapes=((2, 3), (2, 3))):
    rng = np.random.default_rng(4)
    return [mod.tensor(rng.standard_normal(s), dtype=getattr(mod, dtype), requires_grad=True) for s in shapes]


def _graph(result, leaves):
    """(node name, saved alpha, edges as leaf positions or None) of the result's node."""
    fn = result.grad_fn
    edges = []
    for next_fn, _ in fn.next_functions:
        if next_fn is None:
            edges.append(None)
        elif next_fn.name().endswith("AccumulateGrad"):
            edges.append(next(i for i, leaf in enumerate(leaves) if leaf is next_fn.variable))
        else:
            edges.append(next_fn.name())
    alpha = getattr(fn, "_saved_alpha", "absent")
    return fn.name(), alpha, edges


RSUB_CASES = [
    ("tensors", lambda m, a, b: m.rsub(a, b)),
    ("tensors alpha 2", lambda m, a, b: m.rsub(a, b, alpha=2)),
    ("tensors alpha 0.5", lambda m, a, b: m.rsub(a, b, alpha=0.5)),
    ("reversed", lambda m, a, b: m.rsub(b, a)),
    ("number", lambda m, a, b: m.rsub(a, 2)),
    ("float number alpha", lambda m, a, b: m.rsub(a, 2.5, alpha=3)),
    ("number alpha 0.5", lambda m, a, b: m.rsub(a, -1, alpha=0.5)),
    ("__rsub__ tensor", lambda m, a, b: m.Tensor.__rsub__(a, b)),
    ("__rsub__ number", lambda m, a, b: m.Tensor.__rsub__(a, 3)),
    ("operator", lambda m, a, b: 1.5 - a),
]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("name, op", RSUB_CASES, ids=[c[0] for c in RSUB_CASES])
def test_rsub_records_torchs_node_edges_and_values(name, op, dtype):
    ta, tb = _pair_of(torch, dtype)
    ca, cb = _pair_of(chainrule, dtype)
    expected, got = op(torch, ta, tb), op(chainrule, ca, cb)
    assert _graph(got, [ca, cb]) == _graph(expected, [ta, tb])
    # With alpha, float64 and the half dtypes may differ from torch in the last bit, as add's and
    # sub's do (fused_scaled_add): torch's float64 kernel is a fused multiply-add, and its half
    # kernel rounds the elements past the last full vector (all of them in a tensor this small)
    # differently from the vectorized ones, which compute in float32 and round once as here.
    rtol = {"float64": 1e-15, "float16": 1e-3, "bfloat16": 8e-3}.get(dtype, 0) if "alpha" in name else 0
    np.testing.assert_allclose(got.detach().double().numpy(), expected.detach().double().numpy(), rtol=rtol, atol=0)
    seed = torch.linspace(-1, 2, 6).reshape(2, 3).to(expected.dtype)
    expected.backward(seed)
    got.backward(chainrule.tensor(seed.double().numpy(), dtype=got.dtype))
    for t_leaf, c_leaf in ((ta, ca), (tb, cb)):
        if t_leaf.grad is None:
            assert c_leaf.grad is None
        else:
            np.testing.assert_array_equal(c_leaf.grad.double().numpy(), t_leaf.grad.double().numpy())


def test_rsub_broadcasts_and_promotes_as_torch():
    ta, tb = _pair_of(torch, "float64", ((3, 1), (4,)))
    ca, cb = _pair_of(chainrule, "float64", ((3, 1), (4,)))
    for mod, a, b in ((torch, ta, tb), (chainrule, ca, cb)):
        mod.rsub(a, b.float().detach(), alpha=3).sum().backward()
    np.testing.assert_allclose(ca.grad.numpy(), ta.grad.numpy())
    assert chainrule.rsub(ca, cb.float()).dtype == chainrule.float64


def test_rsub_gradcheck():
    a, b = _pair_of(chainrule, "float64", ((3, 1), (3, 4)))
    assert gradcheck(lambda x, y: chainrule.rsub(x, y, alpha=0.5), (a, b))
    assert gradcheck(lambda x: chainrule.rsub(x, 2.0, alpha=-3), (a,))
    assert gradcheck(lambda x, y: y.__rsub__(x), (a, b))


@pytest.mark.parametrize("call", [
    lambda m, a: m.rsub(a, True),
    lambda m, a: m.rsub(a > 0, 1),
    lambda m, a: m.rsub(a.long(), 1, alpha=0.5),
    lambda m, a: m.rsub(a, 1, alpha=1j),
    lambda m, a: m.rsub(a.long(), a.long() > 0),
])
def test_rsub_refuses_as_torch(call):
    with pytest.raises(Exception) as expected:
        call(torch, torch.ones(2))
    with pytest.raises(type(expected.value)) as got:
        call(chainrule, chainrule.ones(2))
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("number", [2, 2.5, True])
def test_rtruediv_unbound_on_a_number_fails_as_torchs(number):
    with pytest.raises(AttributeError) as expected:
        torch.Tensor.__rtruediv__(number, torch.ones(2))
    with pytest.raises(AttributeError) as got:
        chainrule.Tensor.__rtruediv__(number, chainrule.ones(2))
    assert str(got.value) == str(expected.value)


def _dispatched(mod):
    mode_cls = __import__(f"{mod.__name__}.utils._python_dispatch", fromlist=["TorchDispatchMode"]).TorchDispatchMode
    calls = []

    class Recorder(mode_cls):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            calls.append((str(func), [a if isinstance(a, (int, float)) else "T" for a in args], kwargs or {}))
            return func(*args, **(kwargs or {}))

    a, b = mod.ones(2, requires_grad=True), mod.full((2,), 5.0)
    with Recorder():
        results = [mod.rsub(a, b), mod.rsub(a, b, alpha=2), mod.rsub(a, 3, alpha=2), 2 - a, mod.rsub(a, 3)]
    return calls, [(r.grad_fn.name(), r.tolist()) for r in results]


def test_rsub_under_a_dispatch_mode_is_torchs_overloads():
    assert _dispatched(chainrule) == _dispatched(torch)


HALF_NUMBER_CASES = [
    ("x * 2", lambda x: x * 2), ("2.7 * x", lambda x: 2.7 * x), ("x * True", lambda x: x * True),
    ("x / 3", lambda x: x / 3), ("x / 0.1", lambda x: x / 0.1), ("mul", lambda x: x.mul(-4.7)),
    ("div", lambda x: x.div(2.5)), ("x * 1e300", lambda x: x * 1e300), ("x / 0", lambda x: x / 0),
    ("x * 2**63", lambda x: x * 2 ** 63),
]


def _half_input(mod, dtype):
    return mod.tensor([[1.5, -2.3, 0.7], [4.1, -0.35, 10.2]], dtype=getattr(mod, dtype), requires_grad=True)


def _saved(fn, name):
    value = getattr(fn, name)
    return None if value is None else (value.dtype.__repr__().split(".")[-1], value.item())


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name, op", HALF_NUMBER_CASES, ids=[c[0] for c in HALF_NUMBER_CASES])
def test_half_times_or_over_a_number_is_torchs_one_node(name, op, dtype):
    tx, cx = _half_input(torch, dtype), _half_input(chainrule, dtype)
    expected, got = op(tx), op(cx)
    assert got.grad_fn.name() == expected.grad_fn.name()
    t_edges, c_edges = expected.grad_fn.next_functions, got.grad_fn.next_functions
    assert [e[0] is None for e in c_edges] == [e[0] is None for e in t_edges]
    assert c_edges[0][0].variable is cx and t_edges[0][0].variable is tx
    for attr in ("_saved_other", "_saved_self"):
        assert str(_saved(got.grad_fn, attr)) == str(_saved(expected.grad_fn, attr))
    np.testing.assert_array_equal(got.detach().float().numpy(), expected.detach().float().numpy())
    seed = [[0.3, -1.7, 2.9], [1e4, -0.01, 7.3]]
    expected.backward(torch.tensor(seed, dtype=expected.dtype))
    got.backward(chainrule.tensor(seed, dtype=got.dtype))
    np.testing.assert_array_equal(cx.grad.float().numpy(), tx.grad.float().numpy())


def test_half_times_a_number_double_backward_and_out_of_range_ints():
    results = []
    for mod in (torch, chainrule):
        x = _half_input(mod, "float16")
        (g,) = mod.autograd.grad(((x * 2.7) * x / 3).sum(), x, create_graph=True)
        (gg,) = mod.autograd.grad(g.sum(), x)
        results.append((g.detach().float().numpy(), gg.float().numpy()))
        with pytest.raises(OverflowError, match="int too big to convert"):
            x * 2 ** 70
    for expected, got in zip(*results):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("input_shape", [(2, 3, 4), (2, 3, 2, 2)])
@pytest.mark.parametrize("weight_shape", [(3,), (1, 3), (3, 1), (1, 1, 3), (1, 3, 1), (3, 1, 1)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_cross_entropy_smoothing_weight_of_more_dims_as_torch(input_shape, weight_shape, reduction, label_smoothing):
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal(input_shape), rng.random(weight_shape)
    t = rng.integers(0, 3, (input_shape[0],) + input_shape[2:])
    outcomes = []
    for mod in (torch, chainrule):
        try:
            loss = mod.nn.functional.cross_entropy(mod.tensor(x), mod.tensor(t), weight=mod.tensor(w),
                                                   reduction=reduction, label_smoothing=label_smoothing)
            outcomes.append(("ok", loss.numpy()))
        except RuntimeError as error:
            outcomes.append(("error", str(error)))
    (t_kind, t_value), (c_kind, c_value) = outcomes
    assert c_kind == t_kind
    if t_kind == "ok":
        np.testing.assert_allclose(c_value, t_value, rtol=1e-12)
    else:
        assert c_value == t_value


_MASK = [[1, 0, 1, 0], [0, 1, 1, 0], [1, 1, 0, 1]]
MASKED_SCATTER_CASES = [
    ("itself", lambda m, x, mask: x.masked_scatter_(mask, x)),
    ("its flat view", lambda m, x, mask: x.masked_scatter_(mask, x.view(-1))),
    ("its flat view shifted", lambda m, x, mask: x.masked_scatter_(mask, x.view(-1)[2:])),
    ("a mask of its values", lambda m, x, mask: x.masked_scatter_(x > 4, x)),
    ("a transposed self", lambda m, x, mask: x.t().masked_scatter_(mask.t(), x.view(-1)[1:])),
    ("a flipped source (a copy)", lambda m, x, mask: x.masked_scatter_(mask, x.flip(0))),
    ("a transposed source (copied)", lambda m, x, mask: x.masked_scatter_(mask, x.t())),
    ("rows below", lambda m, x, mask: x[1:].masked_scatter_(mask[1:], x[:2])),
    ("rows above", lambda m, x, mask: x[:2].masked_scatter_(mask[:2], x[1:])),
    ("an int tensor", lambda m, x, mask: x.long().masked_scatter_(mask, x.long())),
    ("a short source", lambda m, x, mask: x.masked_scatter_(mask, x[1])),
]


@pytest.mark.parametrize("name, op", MASKED_SCATTER_CASES, ids=[c[0] for c in MASKED_SCATTER_CASES])
def test_masked_scatter_from_a_source_over_self_as_torch(name, op):
    outcomes = []
    for mod in (torch, chainrule):
        x = mod.arange(12.0).reshape(3, 4)
        try:
            result = op(mod, x, mod.tensor(_MASK, dtype=mod.bool))
            outcomes.append(("ok", x.tolist(), result.tolist()))
        except RuntimeError as error:
            outcomes.append(("error", str(error)))
    assert outcomes[1] == outcomes[0]


def test_masked_scatter_from_an_overlapping_source_records_torchs_graph():
    outcomes = []
    for mod in (torch, chainrule):
        leaf = mod.arange(12.0, requires_grad=True)
        y = leaf * 1
        y.masked_scatter_(y > 4, y)
        edges = [None if fn is None else fn.name() for fn, _ in y.grad_fn.next_functions]
        values = y.tolist()
        y.backward(mod.arange(12.0))
        outcomes.append((values, y.grad_fn.name(), edges, leaf.grad.tolist()))
    assert outcomes[1] == outcomes[0]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("base", [2, 2.5, True, 0, -1.5])
def test_number_to_a_tensor_power_keeps_torchs_saved_values(base, dtype):
    kept = []
    for mod in (torch, chainrule):
        x = mod.tensor([1.0, 2.0, -0.5], dtype=getattr(mod, dtype), requires_grad=True)
        fn = (base ** x).grad_fn
        kept.append((fn.name(), repr(fn._saved_self), fn._saved_exponent is x,
                     str(fn._saved_result.tolist()), str(fn._saved_result.dtype).split(".")[-1]))
    assert kept[1] == kept[0]


def test_number_to_a_tensor_power_refuses_a_backward_after_its_exponent_was_written():
    messages = []
    for mod in (torch, chainrule):
        z = mod.tensor([1.0, 2.0], requires_grad=True) * 1
        y = 2 ** z
        z.add_(1)
        with pytest.raises(RuntimeError) as error:
            y.sum().backward()
        messages.append(str(error.value))
    assert messages[1] == messages[0]
