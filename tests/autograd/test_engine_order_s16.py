"""The backward engine's ready queue (heapq entries) against torch 2.13's order, on graphs wider
than last session's cases: a wide fan-out, a wide fan-in, leaves joined directly and through ops,
several roots, grad of some inputs, and seeded random graphs; plus the queue itself against a
transcription of libstdc++'s heap steps, the layout torch's std::priority_queue keeps.

Among nodes ready to run, torch runs the newest first; leaves' AccumulateGrad nodes all share one
priority, so the order their hooks fire in is decided by the heap's layout alone.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

import chainrule
from chainrule.autograd import engine
from chainrule.autograd.function import ACCUMULATE_GRAD_PRIORITY

torch = pytest.importorskip("torch")

LIBRARIES = {"chainrule": chainrule, "torch": torch}


def _leaves(lib, n, size=4):
    rng = np.random.default_rng(n)
    return [lib.tensor(rng.uniform(-1, 1, size).astype(np.float32), requires_grad=True) for _ in range(n)]


def _log_hooks(log, tensors: dict):
    for name, tensor in tensors.items():
        tensor.register_hook(lambda grad, name=name: log.append(name))


def _log_leaf_accumulations(log, leaves: dict):
    for name, leaf in leaves.items():
        leaf.register_post_accumulate_grad_hook(lambda t, name=name: log.append("acc " + name))


def _wide_fan_out(lib, log):
    (x,) = _leaves(lib, 1)
    branches = {f"b{i}": (x * float(i + 1)).tanh() for i in range(50)}
    _log_hooks(log, {"x": x, **branches})
    sum(branches.values()).sum().backward()


def _wide_fan_in(lib, log):
    leaves = {f"w{i}": t for i, t in enumerate(_leaves(lib, 40))}
    _log_hooks(log, leaves)
    _log_leaf_accumulations(log, leaves)
    lib.cat(list(leaves.values())).sum().backward()


def _leaves_direct_and_through_ops(lib, log):
    leaves = _leaves(lib, 12)
    named = {f"w{i}": t for i, t in enumerate(leaves)}
    parts = [t.sin() if i % 4 == 1 else t * 2 if i % 4 == 2 else t for i, t in enumerate(leaves)]
    _log_hooks(log, named)
    _log_leaf_accumulations(log, named)
    joined = lib.cat(parts[5:] + parts[:5])
    (joined.sum() + lib.cat([leaves[3], leaves[9].exp(), leaves[0]]).sum()).backward()


def _several_roots(lib, log):
    leaves = _leaves(lib, 6)
    named = {f"w{i}": t for i, t in enumerate(leaves)}
    outs = [(leaves[i] * leaves[(i + 1) % 6]).sum() for i in range(6)]
    _log_hooks(log, named)
    _log_hooks(log, {f"out{i}": o for i, o in enumerate(outs)})
    lib.autograd.backward(outs[::-1] + [leaves[2].sum()])


def _grad_of_some_leaves(lib, log):
    leaves = _leaves(lib, 10)
    named = {f"w{i}": t for i, t in enumerate(leaves)}
    parts = [t.cos() if i % 2 else t for i, t in enumerate(leaves)]
    _log_hooks(log, named)
    _log_hooks(log, {f"part{i}": p for i, p in enumerate(parts) if i % 2})
    total = lib.cat(parts).sum()
    lib.autograd.grad(total, [leaves[7], leaves[2], leaves[4], parts[5], leaves[9], leaves[1]])


@pytest.mark.parametrize("graph", [_wide_fan_out, _wide_fan_in, _leaves_direct_and_through_ops, _several_roots,
                                   _grad_of_some_leaves], ids=lambda f: f.__name__.strip("_"))
def test_hooks_fire_in_torchs_order_on_wide_graphs(graph):
    logs = {}
    for name, lib in LIBRARIES.items():
        logs[name] = []
        graph(lib, logs[name])
    assert len(logs["torch"]) >= 8
    assert logs["chainrule"] == logs["torch"]


def _random_graph(lib, seed: int, log):
    """A seeded random graph: leaves, unary and binary ops and joins over earlier values (leaves
    used directly among them), every leaf and value hooked; backward from a sum of some values."""
    rng = random.Random(seed)
    leaves = _leaves(lib, rng.randint(3, 9))
    values = {f"w{i}": t for i, t in enumerate(leaves)}
    _log_leaf_accumulations(log, dict(values))
    for step in range(rng.randint(6, 20)):
        names = list(values)
        kind = rng.choice(["unary", "unary", "binary", "binary", "join"])
        if kind == "unary":
            source = values[rng.choice(names)]
            out = rng.choice([lambda t: t.sin(), lambda t: t * 0.5, lambda t: t.tanh()])(source)
        elif kind == "binary":
            a, b = (values[rng.choice(names)] for _ in range(2))
            out = a * b if rng.random() < 0.5 else a + b
        else:
            picked = [values[rng.choice(names)] for _ in range(rng.randint(2, 6))]
            out = lib.stack(picked).sum(0) if rng.random() < 0.5 else lib.cat(picked)[:4]
        values[f"v{step}"] = out
    _log_hooks(log, values)
    ends = [values[name] for name in rng.sample(list(values)[len(leaves):], k=min(3, len(values) - len(leaves)))]
    sum(t.sum() for t in ends).backward()


@pytest.mark.parametrize("seed", range(12))
def test_random_graphs_fire_hooks_in_torchs_order(seed):
    logs = {name: [] for name in LIBRARIES}
    for name, lib in LIBRARIES.items():
        _random_graph(lib, seed, logs[name])
    assert logs["chainrule"] == logs["torch"]


# ------------------------------------------------------------------ the queue against libstdc++'s steps

class _Item:
    def __init__(self, priority: int, label: str) -> None:
        self._sequence_number = priority
        self.label = label


def _libstdcxx_push(heap: list, item) -> None:
    # std::push_heap: the new element rises while its parent has strictly lower priority
    heap.append(item)
    hole = len(heap) - 1
    while hole > 0 and heap[(hole - 1) // 2]._sequence_number < item._sequence_number:
        heap[hole] = heap[(hole - 1) // 2]
        hole = (hole - 1) // 2
    heap[hole] = item


def _libstdcxx_pop(heap: list):
    # std::pop_heap (__adjust_heap): the hole sinks along the larger child, the right one unless the
    # left is strictly larger; then the old last element rises from where the hole stopped
    top, last = heap[0], heap.pop()
    size = len(heap)
    if size:
        hole = child = 0
        while child < (size - 1) // 2:
            child = 2 * (child + 1)
            if heap[child]._sequence_number < heap[child - 1]._sequence_number:
                child -= 1
            heap[hole] = heap[child]
            hole = child
        if size % 2 == 0 and child == (size - 2) // 2:
            child = 2 * (child + 1)
            heap[hole] = heap[child - 1]
            hole = child - 1
        while hole > 0 and heap[(hole - 1) // 2]._sequence_number < last._sequence_number:
            heap[hole] = heap[(hole - 1) // 2]
            hole = (hole - 1) // 2
        heap[hole] = last
    return top


@pytest.mark.parametrize("seed", range(20))
def test_ready_queue_pops_in_libstdcxx_heap_order(seed):
    # mostly tied leaves among distinct sequence numbers, pushes and pops interleaved
    rng = random.Random(seed)
    ours, reference, popped = [], [], {"ours": [], "reference": []}
    distinct = iter(rng.sample(range(10**6), 400))  # (only leaves' priorities tie, as in a graph)
    for step in range(400):
        if rng.random() < 0.55 or not ours:
            tied = rng.random() < 0.6
            item = _Item(ACCUMULATE_GRAD_PRIORITY if tied else next(distinct), f"item{step}")
            engine._push_ready(ours, item)
            _libstdcxx_push(reference, item)
        else:
            popped["ours"].append(engine._pop_ready(ours).label)
            popped["reference"].append(_libstdcxx_pop(reference).label)
    while ours:
        popped["ours"].append(engine._pop_ready(ours).label)
        popped["reference"].append(_libstdcxx_pop(reference).label)
    assert not reference
    assert popped["ours"] == popped["reference"]
    assert len(popped["ours"]) > 100


# ------------------------------------------------------------------ torch.stack: one StackBackward0 node

def _stack_graph(lib, log):
    x, y, z = _leaves(lib, 3)
    a = x * 2
    named = {"x": x, "y": y, "z": z, "a": a}
    _log_hooks(log, named)
    _log_leaf_accumulations(log, {"x": x, "y": y, "z": z})
    s = lib.stack([z, a, y, x.double()], dim=-1)
    s.register_hook(lambda g: log.append("s"))
    (s * lib.arange(4.0, dtype=lib.float64)).sum().backward()
    return s


def test_stack_is_one_node_with_an_edge_per_input_as_torch():
    shapes, logs = {}, {}
    for name, lib in LIBRARIES.items():
        logs[name] = []
        s = _stack_graph(lib, logs[name])
        fn = s.grad_fn
        shapes[name] = (type(fn).__name__, [type(child).__name__ for child, _ in fn.next_functions],
                        fn._saved_dim, str(s.dtype).rsplit(".", 1)[-1])
    assert shapes["chainrule"] == shapes["torch"]
    assert shapes["torch"][1] == ["AccumulateGrad", "MulBackward0", "AccumulateGrad", "ToCopyBackward0"]
    assert logs["chainrule"] == logs["torch"]


@pytest.mark.parametrize("dim", [0, 1, -1, 2])
def test_stack_gradients_as_torch(dim):
    grads = {}
    for name, lib in LIBRARIES.items():
        leaves = [lib.tensor(np.arange(6.0).reshape(2, 3) + i, dtype=lib.float64, requires_grad=True) for i in range(3)]
        s = lib.stack([leaves[0], leaves[1].t().t(), leaves[2] * 3], dim)
        weights = lib.tensor(np.linspace(-1, 1, int(np.prod(tuple(s.shape)))).reshape(tuple(s.shape)))
        (s * weights).sum().backward()
        grads[name] = [t.grad.numpy() for t in leaves]
    for got, want in zip(grads["chainrule"], grads["torch"]):
        np.testing.assert_array_equal(got, want)


def test_stack_gradcheck_and_second_order():
    x = chainrule.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
    y = chainrule.tensor(np.linspace(0.5, 2, 6).reshape(2, 3), requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda a, b: chainrule.stack([a, b.sin(), a * b], 1), (x, y))
    assert chainrule.autograd.gradgradcheck(lambda a, b: chainrule.stack([a * a, b], -1), (x, y))


def test_stack_of_mixed_dtypes_gives_each_input_its_own_dtype_gradient():
    got = {}
    for name, lib in LIBRARIES.items():
        half = lib.ones(3, dtype=lib.float32, requires_grad=True)
        double = lib.ones(3, dtype=lib.float64, requires_grad=True)
        s = lib.stack([half, double])
        s.sum().backward()
        got[name] = (str(s.dtype).rsplit(".", 1)[-1], str(half.grad.dtype).rsplit(".", 1)[-1],
                     str(double.grad.dtype).rsplit(".", 1)[-1], len(s.grad_fn.next_functions))
    assert got["chainrule"] == got["torch"] == ("float64", "float32", "float64", 2)


# ------------------------------------------------------------------ ctx.mark_dirty returns the input itself

def _increment(lib):
    class Increment(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            x.add_(1)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad * 2

    return Increment


def _dirty_non_leaf(lib):
    log = []
    a = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = a.clone()
    before, version = b.grad_fn, b._version
    b.register_hook(lambda g: log.append(("hook before", g.tolist())))
    b.retain_grad()
    c = _increment(lib).apply(b)
    c.register_hook(lambda g: log.append(("hook after", g.tolist())))
    facts = (c is b, type(b.grad_fn).__name__, b.grad_fn is before, b._version - version,
             [type(f).__name__ for f, _ in b.grad_fn.next_functions], b.tolist())
    (c * 3).sum().backward()
    return facts, log, b.grad.tolist(), a.grad.tolist()


def test_mark_dirty_returns_the_input_object_with_its_history_rebased():
    got, want = _dirty_non_leaf(chainrule), _dirty_non_leaf(torch)
    assert got == want
    assert want[0][:4] == (True, "IncrementBackward", False, 2)


def _dirty_two_outputs(lib):
    class DoubleFirst(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            x.mul_(2)
            ctx.mark_dirty(x)
            return x, y * 3

        @staticmethod
        def backward(ctx, g1, g2):
            return g1 * 2, g2 * 3

    p, q = lib.tensor([1.0, 2.0], requires_grad=True), lib.tensor([3.0, 4.0], requires_grad=True)
    doubled = p * 1
    first, second = DoubleFirst.apply(doubled, q)
    facts = (first is doubled, first._version, first.grad_fn is second.grad_fn, first.output_nr, second.output_nr)
    (first.sum() + second.sum()).backward()
    return facts, p.grad.tolist(), q.grad.tolist()


def _dirty_view(lib):
    leaf = lib.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    base = leaf.clone()
    view = base[1:3]
    out = _increment(lib).apply(view)
    facts = (out is view, view._version, base._version, out._base is base, base.tolist())
    (base * lib.tensor([1.0, 10.0, 100.0, 1000.0])).sum().backward()
    return facts, leaf.grad.tolist()


def _dirty_without_grad(lib):
    x = lib.tensor([1.0, 2.0])
    out = _increment(lib).apply(x)
    return out is x, x._version, out.requires_grad, x.tolist()


@pytest.mark.parametrize("case", [_dirty_two_outputs, _dirty_view, _dirty_without_grad],
                         ids=lambda f: f.__name__.strip("_"))
def test_mark_dirty_cases_as_torch(case):
    assert case(chainrule) == case(torch)


def _dirty_errors(lib):
    class Hidden(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            x.add_(1)
            ctx.mark_dirty(x)
            return x * 1

        @staticmethod
        def backward(ctx, grad):
            return grad

    seen = []
    leaf = lib.tensor([1.0, 2.0], requires_grad=True)
    for make in (lambda: _increment(lib).apply(leaf), lambda: Hidden.apply(lib.tensor([1.0]) * 1),
                 lambda: Hidden.apply(lib.tensor([1.0])),
                 lambda: _increment(lib).apply(lib.tensor([1.0, 2.0], requires_grad=True)[:1])):
        with pytest.raises(RuntimeError) as info:
            make()
        seen.append(str(info.value))
    seen.append((leaf._version, leaf.tolist()))  # (forward ran before the refusal, in torch too)
    return seen


def test_mark_dirty_errors_as_torch():
    assert _dirty_errors(chainrule) == _dirty_errors(torch)


def test_mark_dirty_of_a_tensor_not_an_input_warns_as_torch():
    messages = {}
    for name, lib in LIBRARIES.items():
        class Fresh(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                y = x * 2
                ctx.mark_dirty(y)
                return y

            @staticmethod
            def backward(ctx, grad):
                return grad

        with pytest.warns(UserWarning) as record:
            out = Fresh.apply(lib.tensor([1.0], requires_grad=True) * 1)
        messages[name] = ([str(w.message).split(" (Triggered")[0] for w in record], out._version)
    assert messages["chainrule"] == messages["torch"]


# ------------------------------------------------------------------ node shapes users see through next_functions

def _node_shape(fn, depth: int = 3):
    """A node's name and, ``depth`` levels down, the names and output numbers its edges lead to."""
    if fn is None or depth == 0:
        return None if fn is None else type(fn).__name__
    return type(fn).__name__, tuple((_node_shape(child, depth - 1), nr) for child, nr in fn.next_functions)


def _common_ops(lib):
    F = lib.nn.functional

    def leaf(*shape, seed=0):
        return lib.tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32), requires_grad=True)

    x, y, img = leaf(4, 6), leaf(4, 6, seed=1), leaf(2, 3, 5, 5, seed=2)
    w, b, lw, lb = leaf(4, 3, 3, 3, seed=3), leaf(4, seed=4), leaf(5, 6, seed=5), leaf(5, seed=6)
    return {
        "cat": lambda: lib.cat([x, y * 2]),
        "stack": lambda: lib.stack([x, y * 2]),
        "split": lambda: x.split(2, 1)[1],
        "chunk": lambda: x.chunk(3, 1)[2],
        "unbind": lambda: x.unbind(0)[1],
        "expand": lambda: x[:1].expand(3, 6),
        "repeat": lambda: x.repeat(2, 1),
        "flatten": lambda: img.flatten(1),
        "view": lambda: x.view(24),
        "reshape_copying": lambda: x.t().reshape(24),
        "t": lambda: x.t(),
        "transpose": lambda: img.transpose(1, 2),
        "index_select": lambda: x.index_select(1, lib.tensor([0, 2])),
        "clamp": lambda: x.clamp(-0.5, 0.5),
        "clamp_min": lambda: x.clamp(min=0.1),
        "softmax": lambda: x.softmax(1),
        "log_softmax": lambda: F.log_softmax(x, 1),
        "layer_norm": lambda: F.layer_norm(x, (6,), lw[0], lw[1]),
        "linear": lambda: F.linear(x, lw, lb),
        "linear_3d": lambda: F.linear(x.view(2, 2, 6), lw, lb),
        "linear_no_bias": lambda: F.linear(x, lw),
        "conv2d": lambda: F.conv2d(img, w, b, padding=1),
        "mse_loss": lambda: F.mse_loss(x, y),
        "relu": lambda: F.relu(x),
        "gelu": lambda: F.gelu(x),
        "matmul": lambda: x @ y.t(),
        "mean": lambda: x.mean(1),
        "max_dim": lambda: x.max(1)[0],
        "pow": lambda: x ** 2,
        "getitem_int": lambda: x[1],
        "squeeze": lambda: x[:1].squeeze(0),
        "unsqueeze": lambda: x.unsqueeze(1),
        "permute": lambda: img.permute(0, 2, 3, 1),
        "contiguous": lambda: x.t().contiguous(),
        "embedding": lambda: F.embedding(lib.tensor([0, 2, 1, 4]), lw),
        "batch_norm": lambda: F.batch_norm(img, None, None, b[:3], b[1:], training=True),
        "max_pool2d": lambda: F.max_pool2d(img, 2),
        "avg_pool2d": lambda: F.avg_pool2d(img, 2),
        "adaptive_avg_pool2d": lambda: F.adaptive_avg_pool2d(img, 1),
        "norm": lambda: x.norm(),
    }


@pytest.mark.parametrize("op", list(_common_ops(chainrule)))
def test_common_ops_record_torchs_node_shapes(op):
    # the node and two levels of next_functions below it: names and output numbers, as torch's
    assert _node_shape(_common_ops(chainrule)[op]().grad_fn) == _node_shape(_common_ops(torch)[op]().grad_fn)
