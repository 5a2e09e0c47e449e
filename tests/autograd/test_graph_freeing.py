"""After backward the graph is released by reference counting alone (no cycle collector), so
training memory stays flat; the benchmark suite measures the RSS side of this."""

import gc
import weakref

import chainrule as torch
import chainrule.nn as nn


def _nodes_of(loss):
    seen, stack = [], [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or any(node is s for s in seen):
            continue
        seen.append(node)
        stack.extend(child for child, _ in node.next_functions)
    return [weakref.ref(n) for n in seen]


def test_training_step_graph_is_freed_without_gc():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4), nn.Sigmoid())
    x = torch.randn(5, 8)
    gc.disable()
    try:
        loss = model(x).exp().sum()
        refs = _nodes_of(loss)
        assert len(refs) > 5
        loss.backward()
        del loss
        alive = [r() for r in refs if r() is not None]
        # only the leaves' AccumulateGrad nodes may remain (the parameters keep them weakly)
        assert all(type(n).__name__ == "AccumulateGrad" for n in alive)
    finally:
        gc.enable()


def test_saved_tensors_are_released_after_backward():
    x = torch.randn(4, requires_grad=True)
    y = x.tanh()  # saves its output
    node = y.grad_fn
    y.sum().backward()
    assert node._saved == ()
