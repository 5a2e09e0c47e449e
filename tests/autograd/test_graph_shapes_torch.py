"""The graph chainrule records for common expressions has torch 2.13's shape: walked from the
output's grad_fn through next_functions to depth 3, the same node names, the same number of edges,
None where torch has None, AccumulateGrad at the same leaves; values and gradients unchanged.

(tools/torch_graph_shape_trial.py compares a broad list; these are the fixes it led to.)
"""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

LIBRARIES = {"chainrule": chainrule, "torch": torch}


def _tree(fn, depth=3):
    if fn is None:
        return None
    if depth == 0:
        return type(fn).__name__
    return type(fn).__name__, tuple((_tree(child, depth - 1), nr) for child, nr in fn.next_functions)


def _leaf(lib, *shape, seed=0):
    return lib.tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32), requires_grad=True)


def _expressions(lib):
    x, y = _leaf(lib, 4, 6), _leaf(lib, 4, 6, seed=1)
    mask = lib.tensor(np.random.default_rng(2).uniform(size=(4, 6)) > 0.5)
    target = lib.tensor([0, 2, 1, 5])
    F = lib.nn.functional
    return (x, y), {
        # the condition, mask and target are no inputs of the node: no edge for them
        "where": lambda: lib.where(mask, x, y),
        "where, number other": lambda: lib.where(mask, x, 0.5),
        "where, number input": lambda: lib.where(mask, -1.0, y),
        "where, broadcast condition": lambda: lib.where(mask[:1], x, y[0]),
        "masked_fill number": lambda: x.masked_fill(mask, -2.0),
        "masked_fill causal": lambda: (x[:, :4] * 1).masked_fill(~mask[:, :4], float("-inf")).softmax(-1),
        "masked_fill tensor sum value": lambda: x.masked_fill(mask, y.sum()),
        "nll_loss": lambda: F.nll_loss(F.log_softmax(x, 1), target),
        "nll_loss none": lambda: F.nll_loss(F.log_softmax(x, 1), target, reduction="none"),
        "cross_entropy": lambda: F.cross_entropy(x, target),
        "cross_entropy weighted sum": lambda: F.cross_entropy(x, target, weight=y[0].detach().abs(), reduction="sum"),
        # a basic index is one node per step torch takes: select, slice (unless the dim stays
        # whole), unsqueeze; the advanced part reads the result of those steps
        "x[1:3, ::2]": lambda: x[1:3, ::2],
        "x[0, 1:]": lambda: x[0, 1:],
        "x[-1, -2]": lambda: x[-1, -2],
        "x[None, 1:]": lambda: x[None, 1:],
        "x[0:4, 1] (whole slice skipped)": lambda: x[0:4, 1],
        "x[:, None, 2:]": lambda: x[:, None, 2:],
        "x[..., 1:, None]": lambda: x[..., 1:, None],
        "x[1:, target]": lambda: x[1:, target[:2]],
        "x[target, ::3]": lambda: x[target[:3], ::3],
        "x[None, target]": lambda: x[None, target[:3]],
        "x[:, target] (one node)": lambda: x[:, target[:2]],
        "x[1:3, mask[0]]": lambda: x[1:3, mask[0]],
        "x[1:3, ::2] written in place": lambda: _written_through(x),
        "masked_fill tensor value": lambda: x.masked_fill(mask, y[0, 0]),
        # a product by a constant that torch records as its own one-edge node
        "deg2rad": lambda: lib.deg2rad(x),
        "rad2deg": lambda: lib.rad2deg(x * y),
        "frexp mantissa": lambda: lib.frexp(x).mantissa,
    }


def _written_through(x):
    # an in-place op on a two-step view writes through to its base, whose gradient is then torch's
    base = x * 1
    base[1:3, ::2].mul_(3)
    return base


@pytest.mark.parametrize("case", list(_expressions(chainrule)[1]))
def test_graph_shape_values_and_gradients_as_torch(case):
    results = {}
    for name, lib in LIBRARIES.items():
        leaves, cases = _expressions(lib)
        out = cases[case]()
        tree = _tree(out.grad_fn)
        finite = lib.isfinite(out)
        (out.where(finite, 0.0) * 0.3).sum().backward()
        results[name] = (tree, out.detach().numpy(), [t.grad.numpy() for t in leaves if t.grad is not None])
    ours, theirs = results["chainrule"], results["torch"]
    if not case.endswith("written in place"):  # (torch's CopySlices is chainrule's IndexPutBackward0)
        assert ours[0] == theirs[0]
    ours, theirs = ours[1:], theirs[1:]
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-6, atol=1e-6)
    assert len(ours[1]) == len(theirs[1])
    for mine, their in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(mine, their, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("op", ["where", "masked_fill"])
def test_condition_modified_in_place_before_backward_raises_as_torch(op):
    # the condition is saved as the tensor itself (not an input), so its version is still checked
    errors = {}
    for name, lib in LIBRARIES.items():
        x = _leaf(lib, 3)
        condition = x.detach() > 0
        out = lib.where(condition, x, x * 2) if op == "where" else x.masked_fill(condition, 0.0)
        condition.logical_not_()
        with pytest.raises(RuntimeError) as error:
            out.sum().backward()
        errors[name] = type(error.value)
        assert "modified by an inplace operation" in str(error.value)
    assert errors["chainrule"] is errors["torch"]


@pytest.mark.parametrize("shapes", [((1, 3, 1), (2, 3), ()), ((3,), (2,), (2,))])
def test_where_condition_that_does_not_broadcast_names_its_size_as_torch(shapes):
    messages = {}
    for name, lib in LIBRARIES.items():
        condition, a, b = (lib.ones(shape, dtype=lib.bool) if i == 0 else lib.ones(shape) for i, shape in
                           enumerate(shapes))
        with pytest.raises(RuntimeError) as error:
            lib.where(condition, a, b)
        messages[name] = str(error.value)
    assert messages["chainrule"] == messages["torch"]


def test_masked_fill_mask_that_does_not_broadcast_names_its_size_as_torch():
    messages = {}
    for name, lib in LIBRARIES.items():
        with pytest.raises(RuntimeError) as error:
            lib.zeros(2).masked_fill(lib.tensor([True, False, True]), 1.0)
        messages[name] = str(error.value)
    assert messages["chainrule"] == messages["torch"]


@pytest.mark.parametrize("op", ["where", "masked_fill", "masked_fill tensor value"])
def test_where_and_masked_fill_differentiate_twice(op):
    mask = chainrule.tensor([[True, False, True], [False, False, True]])
    x = chainrule.randn(2, 3, dtype=chainrule.float64, requires_grad=True)
    v = chainrule.randn((), dtype=chainrule.float64, requires_grad=True)
    functions = {"where": lambda x, v: chainrule.where(mask, x * x, v * x),
                 "masked_fill": lambda x, v: (x * v).masked_fill(mask, 0.5) ** 2,
                 "masked_fill tensor value": lambda x, v: (x * x).masked_fill(mask, v * v)}
    assert chainrule.autograd.gradcheck(functions[op], (x, v))
    assert chainrule.autograd.gradgradcheck(functions[op], (x, v))


# ------------------------------------------------------------------ matmul as torch decomposes it

def _operand(lib, shape, requires_grad, transposed, seed):
    values = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    if not transposed:
        return lib.tensor(values).requires_grad_(requires_grad)
    # the same values held column-major in the last two dims (a transposed leaf)
    stored = lib.tensor(np.ascontiguousarray(np.swapaxes(values, -1, -2)))
    return stored.transpose(-1, -2).detach().requires_grad_(requires_grad)


MATMUL_CASES = [
    # (shape a, shape b, requires_grad a, b, transposed a, b)
    ((3,), (3, 4), True, True, False, False),  # SqueezeBackward4 over MmBackward0 over UnsqueezeBackward0
    ((5, 2, 3), (3, 4), True, True, False, False),  # folded into one mm between reshapes
    ((5, 2, 3), (3, 4), True, True, True, False),  # folded, the batch copied to rows first
    ((5, 2, 3), (3, 4), True, False, True, False),  # not folded: expanded and one bmm
    ((5, 2, 3), (3,), True, False, True, False),  # bmm against an unsqueezed vector, squeezed back
    ((7, 5, 2, 3), (3,), True, True, False, False),  # folded into one mv
    ((2, 3), (5, 3, 4), True, True, False, False),  # folded transposed, the result transposed back
    ((2, 3), (5, 3, 4), False, True, False, False),  # not folded (the product would need a copy)
    ((3,), (4, 5, 3, 2), True, True, False, True),  # a vector against a batch: one mv
    ((5, 2, 3), (5, 3, 4), True, True, False, False),  # expanded, viewed, one bmm, viewed back
    ((5, 2, 3), (5, 3, 4), True, True, False, True),  # a transposed operand: _reshape_alias
    ((7, 5, 2, 3), (5, 3, 4), True, True, False, False),  # broadcast: the smaller batch copied
    ((5, 2, 3), (1, 3, 4), True, True, False, False),  # a batch of one that requires grad is dropped
    ((1, 2, 3), (5, 3, 4), True, False, False, False),  # (on either side)
    ((5, 2, 3), (1, 3, 4), True, False, False, False),  # but not one that needs no grad
    ((0, 2, 3), (3, 4), True, False, True, False),  # an empty batch folds
]


@pytest.mark.parametrize("case", MATMUL_CASES, ids=[f"{a}@{b}-rg{int(ra)}{int(rb)}-t{int(ta)}{int(tb)}"
                                                    for a, b, ra, rb, ta, tb in MATMUL_CASES])
def test_matmul_records_torchs_decomposition(case):
    shape_a, shape_b, grad_a, grad_b, transposed_a, transposed_b = case
    results = {}
    for name, lib in LIBRARIES.items():
        a = _operand(lib, shape_a, grad_a, transposed_a, 0)
        b = _operand(lib, shape_b, grad_b, transposed_b, 1)
        out = a @ b
        cotangent = np.random.default_rng(2).standard_normal(tuple(out.shape)).astype(np.float32)
        out.backward(lib.tensor(cotangent))
        results[name] = (_tree(out.grad_fn, depth=6), tuple(out.stride()), out.detach().numpy(),
                         [None if t.grad is None else t.grad.numpy() for t in (a, b)])
    ours, theirs = results["chainrule"], results["torch"]
    assert ours[:2] == theirs[:2]
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-5, atol=1e-6)
    for mine, their in zip(ours[3], theirs[3]):
        assert (mine is None) == (their is None)
        if their is not None:
            np.testing.assert_allclose(mine, their, rtol=1e-5, atol=1e-5)


def test_matmul_unrecorded_is_one_product_with_the_same_values():
    # without a graph to record, matmul stays one fused product
    a = chainrule.randn(7, 5, 2, 3)
    b = chainrule.randn(5, 3, 4, requires_grad=True)
    recorded = a @ b
    with chainrule.no_grad():
        plain = a @ b
    assert plain.grad_fn is None and type(recorded.grad_fn).__name__ == "UnsafeViewBackward0"
    np.testing.assert_allclose(plain.numpy(), recorded.detach().numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shapes", [((5, 2, 3), (3, 4)), ((2, 3), (5, 3, 4)), ((3,), (2, 3, 4)),
                                    ((2, 1, 2, 3), (4, 3, 2)), ((2, 2, 3), (3,))])
def test_decomposed_matmul_differentiates_twice(shapes):
    rng = np.random.default_rng(3)
    a, b = (chainrule.tensor(rng.standard_normal(shape), requires_grad=True) for shape in shapes)
    assert chainrule.autograd.gradcheck(lambda a, b: a @ b, (a, b))
    assert chainrule.autograd.gradgradcheck(lambda a, b: a @ b, (a, b))


def test_integer_cast_under_a_dispatch_mode_records_nothing_as_torch():
    # the mode still sees the cast (aten._to_copy); its integer result has no node and no grad
    from torch.utils._python_dispatch import TorchDispatchMode as TorchMode

    from chainrule.utils._python_dispatch import TorchDispatchMode as ChainruleMode

    results = {}
    for name, lib, mode_class in (("chainrule", chainrule, ChainruleMode), ("torch", torch, TorchMode)):
        class Watch(mode_class):
            def __init__(self):
                super().__init__()
                self.seen = []

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                self.seen.append(str(func))
                return func(*args, **(kwargs or {}))

        x = _leaf(lib, 3)
        with Watch() as watch:
            integers, doubles = (x * 10).long(), (x * 10).double()
        results[name] = (watch.seen, integers.requires_grad, integers.grad_fn is None, _tree(doubles.grad_fn),
                         integers.numpy().tolist())
    assert results["chainrule"] == results["torch"]
