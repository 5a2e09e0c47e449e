"""chainrule.autograd.graph against torch.autograd.graph: the same programs run on both, with the
calls each hook receives recorded and compared (which tensors, how many times, in what order)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule.autograd import function as _function

torch = pytest.importorskip("torch")


def _data(lib, seed, *shape):
    return lib.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def _square_function(lib):
    class Square(lib.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * a

        @staticmethod
        def backward(ctx, grad):
            (a,) = ctx.saved_tensors
            return 2 * a * grad

    return Square


def _hooked_program(lib):
    """Ops whose saved tensors torch and chainrule agree on, under one pair of hooks that log
    each call: (event, which input/output it is, shape)."""
    x, w = _data(lib, 0, 3, 4), _data(lib, 1, 4, 2)
    names = {id(x): "x", id(w): "w"}
    log = []

    def pack(t):
        log.append(("pack", names.get(id(t), "other"), tuple(t.shape)))
        return t

    def unpack(t):
        log.append(("unpack", names.get(id(t), "other"), tuple(t.shape)))
        return t

    with lib.autograd.graph.saved_tensors_hooks(pack, unpack):
        h = x @ w                 # saves x and w
        e = h.exp()               # saves its output
        s = (e * x[:, :2]).sin()  # mul saves both operands, sin its input
        y = _square_function(lib).apply(s)  # a user Function's save_for_backward
    with lib.no_grad():
        outside = x * 2  # nothing recorded, nothing packed
    log.append(("forward done", len(log), None))
    y.sum().backward()
    return log, [x.grad.numpy(), w.grad.numpy()], outside.shape


def test_pack_and_unpack_hooks_see_the_same_calls_as_torch():
    ours, theirs = _hooked_program(chainrule), _hooked_program(torch)
    assert [entry[0] for entry in ours[0]] == [entry[0] for entry in theirs[0]]
    # (which tensor each packed is compared as a multiset: the order of a node's saves may differ)
    assert sorted(map(str, ours[0])) == sorted(map(str, theirs[0]))
    for a, b in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def _round_trip(lib, where, tmp_path):
    """Saved tensors kept outside the graph (a dict, or files written by lib.save) and read back."""
    store = {}

    def pack(t):
        key = f"t{len(store)}"
        if where == "disk":
            path = tmp_path / f"{lib.__name__}_{key}.pt"
            lib.save(t.detach(), str(path))
            store[key] = path
        else:
            store[key] = t.detach().clone()
        return key

    def unpack(key):
        return lib.load(str(store[key])) if where == "disk" else store[key]

    x = _data(lib, 2, 5, 3)
    with lib.autograd.graph.saved_tensors_hooks(pack, unpack):
        y = (x.tanh() * x).sum(dim=1).exp().sum()
    y.backward()
    return x.grad.numpy(), len(store)


@pytest.mark.parametrize("where", ["dict", "disk"])
def test_pack_unpack_round_trip(where, tmp_path):
    ours, theirs = _round_trip(chainrule, where, tmp_path), _round_trip(torch, where, tmp_path)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-12)
    assert ours[1] == theirs[1]


def test_nested_hooks_innermost_applies_and_create_graph_sees_through_them():
    results = []
    for lib in (chainrule, torch):
        calls = []
        x = _data(lib, 3, 4)
        with lib.autograd.graph.saved_tensors_hooks(lambda t, calls=calls: calls.append("outer") or t, lambda t: t):
            with lib.autograd.graph.saved_tensors_hooks(lambda t, calls=calls: calls.append("inner") or t, lambda t: t):
                y = (x.sin() * x).sum()
            z = x.exp().sum()
        (g,) = lib.autograd.grad(y + z, x, create_graph=True)
        (gg,) = lib.autograd.grad(g.sum(), x)
        results.append((calls, g.detach().numpy(), gg.numpy()))
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1:], results[1][1:]):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert _function.active_extension is None


def test_disable_saved_tensors_hooks_both_ways():
    for lib in (chainrule, torch):
        graph = lib.autograd.graph
        with graph.disable_saved_tensors_hooks("no hooks in here"):
            with pytest.raises(RuntimeError, match="^no hooks in here$"):
                with graph.saved_tensors_hooks(lambda t: t, lambda t: t):
                    pass
        with graph.saved_tensors_hooks(lambda t: t, lambda t: t):
            with pytest.raises(RuntimeError, match="^hooks are on$"):
                with graph.disable_saved_tensors_hooks("hooks are on"):
                    pass
        with graph.saved_tensors_hooks(lambda t: t, lambda t: t):  # usable again afterwards
            pass


def test_unpack_hook_must_return_a_tensor():
    x = _data(chainrule, 4, 3)
    with chainrule.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: "not a tensor"):
        y = x.sin().sum()
    with pytest.raises(TypeError, match="SinBackward0: the unpack hook of saved_tensors_hooks returned a str"):
        y.backward()


def test_save_on_cpu_is_a_pass_through_on_the_cpu():
    for lib in (chainrule, torch):
        x = _data(lib, 5, 3, 3)
        with lib.autograd.graph.save_on_cpu():
            y = (x @ x).tanh().sum()
        y.backward()
        np.testing.assert_allclose(x.grad.numpy(), _expected_tanh_mm_grad(x.detach().numpy()), rtol=1e-10)


def _expected_tanh_mm_grad(a):
    t = np.tanh(a @ a)
    g = 1 - t * t
    return g @ a.T + a.T @ g


def test_save_on_cpu_moves_saved_tensors_to_the_host_on_standin_cuda():
    from chainrule import _backend

    with _backend.use_standin_cuda():
        x = chainrule.tensor(np.random.default_rng(6).standard_normal((3, 3)), device="cuda", requires_grad=True)
        with chainrule.autograd.graph.save_on_cpu(pin_memory=True):
            y = (x @ x).tanh()
        kept = [s.packed for s in y.grad_fn._saved] + [s.packed for s in y.grad_fn.next_functions[0][0]._saved]
        assert [(device.type, t.device.type) for device, t in kept] == [("cuda", "cpu")] * 3
        y.sum().backward()
        assert x.grad.device.type == "cuda"
        np.testing.assert_allclose(x.grad.cpu().numpy(), _expected_tanh_mm_grad(x.detach().cpu().numpy()), rtol=1e-10)


def _mutation_program(lib):
    a = _data(lib, 7, 4)
    with lib.autograd.graph.allow_mutation_on_saved_tensors():
        b = a.clone()
        c = b * b
        b.mul_(3)  # b is saved by c's node: its old value is what the backward uses
        d = (c + b).sin().sum()
        b.add_(1)  # b is saved by nothing here (add saves nothing); d's sin saved its input
        d.backward()
    return a.grad.numpy(), b.detach().numpy()


def test_allow_mutation_on_saved_tensors_matches_torch():
    ours, theirs = _mutation_program(chainrule), _mutation_program(torch)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    x = _data(chainrule, 8, 3)
    y = x.clone()
    z = y * y
    y.mul_(2)  # outside the context: torch's in-place error
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


def _multi_hook_program(lib):
    a, b, c = _data(lib, 9, 2), _data(lib, 10, 2), _data(lib, 11, 2)
    log = []
    handle = lib.autograd.graph.register_multi_grad_hook(
        (a, b, c), lambda grads: log.append(("all", [None if g is None else g.numpy().round(6).tolist()
                                                     for g in grads])))
    (a * 2 + b).sum().backward()
    (c * a).sum().backward()
    (a * 3).sum().backward(inputs=[a])
    handle.remove()
    (a + b + c).sum().backward()  # removed: not called
    h = a * b  # h's gradient is computed before a's and b's: the first to arrive is certain
    handle = lib.autograd.graph.register_multi_grad_hook(
        (a, h), lambda grad: log.append(("any", grad.numpy().round(6).tolist())), mode="any")
    (h * 4).sum().backward(retain_graph=True)
    (a * 5).sum().backward()
    (h * 6).sum().backward()
    handle.remove()
    with pytest.raises(ValueError) as error:
        lib.autograd.graph.register_multi_grad_hook((a, b), lambda g: None, mode="every")
    log.append(str(error.value))
    return log


def test_register_multi_grad_hook_calls_as_torch():
    assert _multi_hook_program(chainrule) == _multi_hook_program(torch)


def _edges_program(lib):
    graph = lib.autograd.graph
    a = _data(lib, 12, 3)
    y = a * 2
    edge = graph.get_gradient_edge(y)
    leaf_edge = graph.get_gradient_edge(a)
    out = (y * 3).sum()
    found = lib.autograd.grad(out, [edge, leaf_edge])
    with pytest.raises(RuntimeError) as error:
        graph.get_gradient_edge(lib.ones(2))
    return (type(edge).__name__, edge.output_nr, type(edge.node).__name__, type(leaf_edge.node).__name__,
            [g.numpy().tolist() for g in found], str(error.value),
            isinstance(out.grad_fn, graph.Node), isinstance(leaf_edge.node, graph.Node))


def test_gradient_edges_and_node_as_torch():
    assert _edges_program(chainrule) == _edges_program(torch)


def _saved_attributes(lib):
    a, b = _data(lib, 13, 2, 2), _data(lib, 14, 2, 2)
    mul, mm, e = a * b, a @ b, a.exp()
    return (mul.grad_fn._saved_self is a, mul.grad_fn._saved_other is b, mm.grad_fn._saved_self is a,
            mm.grad_fn._saved_mat2 is b, bool(e.grad_fn._saved_result.equal(e)), a.sin().grad_fn._saved_self is a)


def test_saved_self_other_result_as_torch():
    assert _saved_attributes(chainrule) == _saved_attributes(torch) == (True,) * 6
    with pytest.raises(AttributeError):
        (_data(chainrule, 0, 2) + 1).grad_fn._saved_self  # noqa: B018 - add saves nothing


def _version_program(lib):
    x = _data(lib, 15, 3)
    y = x.clone()
    z = y.sin()
    lib.autograd.graph.increment_version(y)
    with pytest.raises(RuntimeError) as error:
        z.sum().backward()
    return y._version, "modified by an inplace operation" in str(error.value)


def test_increment_version_as_torch():
    assert _version_program(chainrule) == _version_program(torch) == (1, True)
