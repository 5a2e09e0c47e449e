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


# ---- a graph dropped without a backward pass (an evaluation outside no_grad, say) ----

def _graph_nodes(outputs) -> list:
    """Weak references to every node of the graphs behind ``outputs``, leaf sinks aside."""
    seen, stack = {}, [o.grad_fn for o in outputs if isinstance(o, torch.Tensor)]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen[id(node)] = node
        stack.extend(child for child, _ in node.next_functions)
    return [weakref.ref(n) for n in seen.values() if type(n).__name__ != "AccumulateGrad"]


def test_every_registry_op_graph_is_freed_by_reference_counting_alone():
    """Ops whose rule reads their own output (exp, tanh, sigmoid, softmax, sqrt, ...) once kept
    it in their node: a cycle, so a dropped graph and its arrays waited for the cyclic collector."""
    import sys
    from pathlib import Path

    from chainrule.testing.opinfo import op_db

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from ops.harness import _as_list, _make

    leaked, checked = {}, 0
    gc.disable()  # (no collection first: garbage from before cannot keep this test's nodes alive)
    try:
        for info in op_db:
            for case in info.sample_cases()[:2]:
                try:
                    outputs = _as_list(case.fn(torch, *_make(torch, case, "float64")))
                except Exception:  # noqa: BLE001 - cases that expect an error are the op tests' business
                    continue
                refs = _graph_nodes(outputs)
                if not refs:
                    continue
                checked += 1
                del outputs
                alive = sorted({type(r()).__name__ for r in refs if r() is not None})
                if alive:
                    leaked[case.id] = alive
    finally:
        gc.enable()
    assert checked > 400
    assert not leaked, f"graphs kept alive by a reference cycle: {leaked}"


def test_a_saved_output_keeps_its_place_in_the_graph_for_double_backward():
    x = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64, requires_grad=True)
    for op, second in [(torch.tanh, lambda v: -2 * v.tanh() * (1 - v.tanh() ** 2)),
                       (torch.exp, torch.exp),
                       (torch.sigmoid, lambda v: v.sigmoid() * (1 - v.sigmoid()) * (1 - 2 * v.sigmoid()))]:
        (g,) = torch.autograd.grad(op(x).sum(), x, create_graph=True)
        (gg,) = torch.autograd.grad(g.sum(), x)
        assert torch.allclose(gg, second(x.detach()))


def test_writing_a_saved_output_in_place_is_still_caught():
    x = torch.randn(4, requires_grad=True)
    y = x.exp()
    y.add_(1)
    try:
        y.sum().backward()
    except RuntimeError as error:
        assert "modified by an inplace operation" in str(error)
    else:
        raise AssertionError("expected torch's in-place RuntimeError")


def test_a_user_function_that_saves_its_output_is_freed_and_differentiates():
    class Exp(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return grad * y

    x = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)
    gc.disable()
    try:
        y = Exp.apply(x)
        node = weakref.ref(y.grad_fn)
        del y
        assert node() is None
    finally:
        gc.enable()
    (g,) = torch.autograd.grad(Exp.apply(x).sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), x)
    assert torch.allclose(gg, x.detach().exp())


def test_model_graphs_dropped_without_backward_are_freed_by_reference_counting_alone():
    torch.manual_seed(0)
    models = [
        (nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2), torch.randn(2, 5, 8)),
        (nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                       nn.Linear(36, 3), nn.LogSoftmax(1)), torch.randn(2, 3, 8, 8)),
        (nn.Sequential(nn.Conv1d(4, 4, 3, padding=1), nn.GroupNorm(2, 4), nn.SiLU()), torch.randn(2, 4, 6)),
    ]
    gc.disable()  # (no collection first: garbage from before cannot keep this test's nodes alive)
    try:
        for model, x in models:
            refs = _graph_nodes([model(x)])
            assert len(refs) > 2
            alive = sorted({type(r()).__name__ for r in refs if r() is not None})
            assert not alive, f"{type(model).__name__}: nodes kept alive by a reference cycle: {alive}"
    finally:
        gc.enable()


_KEEPING_COMPOSITES = {
    # composite ops that keep their inputs for torch's _saved_* names (name_node's ``kept``)
    # name: (the op, a _saved_* name of its node that holds the input)
    "reflect pad": (lambda h: torch.nn.functional.pad(h, (1, 1), mode="reflect"), "_saved_self"),
    "bce with logits": (lambda h: torch.nn.functional.binary_cross_entropy_with_logits(h, torch.ones_like(h)),
                        "_saved_self"),
    "smooth l1": (lambda h: torch.nn.functional.smooth_l1_loss(h, torch.zeros_like(h)), "_saved_self"),
    "glu": (lambda h: torch.nn.functional.glu(h, -1), "_saved_self"),
    "addcmul": (lambda h: torch.addcmul(h, h, h), "_saved_tensor1"),
    "addmm": (lambda h: torch.addmm(h[:, :2], h[:, :4], h[:4, :2]), "_saved_mat2"),
}


def test_tensors_kept_for_saved_names_are_released_after_backward():
    # torch frees these after backward; keeping them would hold a network's activations
    # (every reflect-padded conv's input) alive until the next step's graph replaces this one
    for name, (op, saved_name) in _KEEPING_COMPOSITES.items():
        x = torch.randn(4, 12, requires_grad=True)
        h = x * 2
        alive = weakref.ref(h)
        out = op(h)
        node = out.grad_fn
        loss = out.sum()
        del h
        assert alive() is not None, name
        assert getattr(node, saved_name) is not None, name
        loss.backward()
        if alive() is not None:  # (a full collection costs seconds in a worker late in the suite: only if needed)
            gc.collect()
        assert alive() is None, name
        try:
            getattr(node, saved_name)
        except RuntimeError as error:
            assert "freed" in str(error), name
        else:
            raise AssertionError(f"{name}: {saved_name} readable after the graph was freed")


def test_sizes_kept_for_saved_names_stay_readable_after_backward():
    a = torch.randn(3, 4, requires_grad=True)
    b = torch.randn(4, 5, requires_grad=True)
    out = torch.addmm(torch.zeros(3, 5), a, b)
    sizes, strides = out.grad_fn._saved_mat1_sym_sizes, out.grad_fn._saved_mat1_sym_strides
    out.sum().backward()
    assert out.grad_fn._saved_mat1_sym_sizes == sizes == (3, 4)
    assert out.grad_fn._saved_mat1_sym_strides == strides
