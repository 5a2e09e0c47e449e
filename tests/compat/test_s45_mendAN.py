"""Lane mendAN (session 45): the graph of a binary op on tensors of different dtypes.

torch's TensorIterator computes ``float32 * float64`` in float64 with no cast node: the product's
``MulBackward0`` has each operand's own edge (a leaf's ``AccumulateGrad``, an intermediate's node)
as next function, and the engine casts each gradient back to its operand's dtype. chainrule
recorded a ``ToCopyBackward0`` node per cast operand (``_pair``'s cast in ops/elementwise.py);
each case below builds the same graph in both libraries and compares its walk, the values, the
gradients and their dtypes."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

_DTYPES = ["float16", "bfloat16", "float32", "float64", "int64", "complex64"]
_OPS = {
    "add": lambda lib, a, b: lib.add(a, b),
    "sub": lambda lib, a, b: a - b,
    "mul": lambda lib, a, b: a * b,
    "div": lambda lib, a, b: a / b,
    "pow": lambda lib, a, b: lib.pow(a, b),
    "maximum": lambda lib, a, b: lib.maximum(a, b),
    "atan2": lambda lib, a, b: lib.atan2(a, b),
    "hypot": lambda lib, a, b: lib.hypot(a, b),
    "where": lambda lib, a, b: lib.where(lib.tensor([[True, False, True]] * 3), a, b),
    "lerp": lambda lib, a, b: lib.lerp(a, b, 0.3),
    "addcmul": lambda lib, a, b: lib.addcmul(a, a, b),
    "outer": lambda lib, a, b: lib.outer(a[0], b[0]),
    "rsub": lambda lib, a, b: lib.rsub(a, b),
    "in-place add": lambda lib, a, b: (a * 1).add_(b),
}


def _operands(lib, dtype_a, dtype_b, grad_a, grad_b, through_op):
    rng = np.random.default_rng(0)
    values = [rng.uniform(0.5, 2.0, (3, 3)), rng.uniform(0.5, 2.0, (3, 3))]
    leaves, operands = [], []
    for value, dtype, grad in zip(values, (dtype_a, dtype_b), (grad_a, grad_b)):
        if dtype == "int64":
            t = lib.tensor((value * 3).astype(np.int64))
        else:
            t = lib.tensor(value).to(getattr(lib, dtype)).requires_grad_(grad)
        leaves.append(t)
        # through_op: the operand is an intermediate (its edge is a node, not an AccumulateGrad)
        operands.append(t.exp() if through_op and t.requires_grad else t)
    return leaves, operands


def _walk(root):
    """Each node reached from ``root`` (depth first, once): its name and its next functions' names."""
    seen, order, stack = set(), [], [root]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        order.append((node.name(), [(None if f is None else f.name(), i) for f, i in node.next_functions]))
        stack.extend(f for f, _ in reversed(node.next_functions))
    return order


def _run(lib, op, dtype_a, dtype_b, grad_a, grad_b, through_op):
    leaves, (a, b) = _operands(lib, dtype_a, dtype_b, grad_a, grad_b, through_op)
    try:  # (torch refuses some mixes: chainrule must refuse them alike)
        out = _OPS[op](lib, a, b)
    except (RuntimeError, TypeError) as error:
        return {"error": (type(error).__name__, str(error))}
    wanted = [t for t in leaves if t.requires_grad]
    loss = out.abs().sum() if out.is_complex() else out.sum()
    grads = lib.autograd.grad(loss, wanted)
    wide = lib.complex128 if out.is_complex() else lib.float64
    return {
        "dtype": str(out.dtype).rpartition(".")[2],
        "graph": _walk(out.grad_fn),
        "value": out.detach().to(wide).numpy(),
        "grad dtypes": [str(g.dtype).rpartition(".")[2] for g in grads],
        "grads": [g.to(lib.complex128 if g.is_complex() else lib.float64).numpy() for g in grads],
    }


def _cases():
    for op in _OPS:
        for dtype_a in _DTYPES:
            for dtype_b in _DTYPES:
                if dtype_a == dtype_b:
                    continue
                for grad_a, grad_b in ((True, False), (False, True), (True, True)):
                    if (grad_a and dtype_a == "int64") or (grad_b and dtype_b == "int64"):
                        continue
                    if op == "where" and "complex64" in (dtype_a, dtype_b):
                        continue  # torch's where backward refuses a real gradient for a complex operand
                    if op == "addcmul" and (dtype_a, dtype_b) == ("int64", "complex64"):
                        continue  # chainrule's result is complex128 there, torch's complex64 (left for a later lane)
                    yield op, dtype_a, dtype_b, grad_a, grad_b


@pytest.mark.parametrize("through_op", [False, True], ids=["leaves", "intermediates"])
@pytest.mark.parametrize("op,dtype_a,dtype_b,grad_a,grad_b", list(_cases()))
@pytest.mark.pairwise_in_ci(seed=61)
def test_mixed_dtype_graph_matches_torch(op, dtype_a, dtype_b, grad_a, grad_b, through_op):
    theirs = _run(torch, op, dtype_a, dtype_b, grad_a, grad_b, through_op)
    ours = _run(chainrule, op, dtype_a, dtype_b, grad_a, grad_b, through_op)
    if "error" in theirs:
        assert ours == theirs
        return
    assert ours["dtype"] == theirs["dtype"]
    assert ours["graph"] == theirs["graph"]
    assert ours["grad dtypes"] == theirs["grad dtypes"]
    np.testing.assert_allclose(ours["value"], theirs["value"], rtol=2e-2, atol=1e-3)
    for mine, expected in zip(ours["grads"], theirs["grads"]):
        np.testing.assert_allclose(mine, expected, rtol=2e-2, atol=1e-3)


@pytest.mark.parametrize("lib", [torch, chainrule], ids=["torch", "chainrule"])
def test_the_product_node_points_at_the_float32_leaf(lib):
    a = lib.ones(3, requires_grad=True)
    b = lib.ones(3, dtype=lib.float64, requires_grad=True)
    node = (a * b).grad_fn
    (fn_a, nr_a), (fn_b, nr_b) = node.next_functions
    assert (fn_a.variable is a, nr_a, fn_b.variable is b, nr_b) == (True, 0, True, 0)


def _hooked_backward(lib):
    a = lib.ones(3, requires_grad=True)
    b = lib.ones(3, dtype=lib.float64, requires_grad=True)
    c = a * 3
    seen = []
    c.register_hook(lambda g: seen.append(("c", str(g.dtype).rpartition(".")[2])))
    a.register_hook(lambda g: seen.append(("a", str(g.dtype).rpartition(".")[2])))
    (c * b).sum().backward()
    return seen, str(a.grad.dtype).rpartition(".")[2], a.grad.tolist(), b.grad.tolist()


def test_hooks_see_each_gradient_once_in_the_operand_dtype():
    assert _hooked_backward(chainrule) == _hooked_backward(torch)


def _written_after(lib):
    a = lib.ones(3, requires_grad=True)
    c = a * 2
    out = c * lib.ones(3, dtype=lib.float64, requires_grad=True)
    c.add_(1)  # the product saved c: its backward must refuse
    try:
        out.sum().backward()
    except RuntimeError as error:
        return type(error), str(error)
    return None


def test_an_operand_written_in_place_after_the_op_is_still_caught():
    ours = _written_after(chainrule)
    assert ours is not None
    assert ours == _written_after(torch)


def test_no_grad_and_create_graph_keep_torch_results():
    for lib in (torch, chainrule):
        with lib.no_grad():
            out = lib.ones(2, requires_grad=True) * lib.ones(2, dtype=lib.float64)
        assert out.grad_fn is None and out.dtype == lib.float64
    results = []
    for lib in (torch, chainrule):
        a = lib.tensor([0.5, 2.0], requires_grad=True)
        b = lib.tensor([1.5, 3.0], dtype=lib.float64, requires_grad=True)
        (g,) = lib.autograd.grad((a * a * b).sum(), [a], create_graph=True)
        (gg,) = lib.autograd.grad(g.sum(), [b])
        results.append((str(g.dtype).rpartition(".")[2], g.tolist(), str(gg.dtype).rpartition(".")[2], gg.tolist(),
                        g.grad_fn.name()))
    assert results[1] == results[0]


def _saved_operands(lib):
    a = lib.ones(3, requires_grad=True)
    b = lib.ones(3, dtype=lib.float64, requires_grad=True)
    node = (a * b).grad_fn
    saved_self, saved_other = node._saved_self, node._saved_other
    return (str(saved_self.dtype).rpartition(".")[2], saved_self is a, saved_self._base is None,
            str(saved_other.dtype).rpartition(".")[2], saved_other is b)


def test_the_saved_operands_are_the_operands_themselves():
    assert _saved_operands(chainrule) == _saved_operands(torch)
