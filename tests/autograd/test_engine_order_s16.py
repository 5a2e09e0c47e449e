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
