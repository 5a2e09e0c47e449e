"""progES (session 56): what the voxelmorph/eg3d/textual-inversion programs' probes found.

torch.gradient (voxelmorph's Jacobian by finite differences) checks and computes as torch does:
uint8 refused first, a spacing list's length before edge_order and the dims, a bool input refused
by the subtraction, an integer input's differences taken in its dtype (wrapping) before the
division, coordinates' dtype kept in the result, 0-d tensors in a spacing list refused.
"""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(lib, call):
    try:
        result = call(lib)
    except Exception as error:  # noqa: BLE001 (the class and words are what is compared)
        return type(error).__name__, str(error).split("\n")[0]
    return "ok", [(str(t.dtype).rpartition(".")[2], t.tolist()) for t in result]


_CALLS = {
    "uint8 before edge_order": lambda L: L.gradient(L.ones(3, 4, dtype=L.uint8), edge_order=3),
    "uint8 before a short dim": lambda L: L.gradient(L.ones(3, 1, dtype=L.uint8)),
    "uint8 with no dims": lambda L: L.gradient(L.ones(3, dtype=L.uint8), dim=[]),
    "spacing length before edge_order": lambda L: L.gradient(L.ones(3, 4), spacing=[1.0, 2.0, 3.0], edge_order=3),
    "spacing length before the dim's range": lambda L: L.gradient(L.ones(3, 4), spacing=[1.0, 2.0], dim=5),
    "spacing length before repeated dims": lambda L: L.gradient(L.ones(3, 4), spacing=[1.0, 2.0, 3.0], dim=(1, 1)),
    "bool refused by the subtraction": lambda L: L.gradient(L.ones(3, 4, dtype=L.bool)),
    "bool with coordinates": lambda L: L.gradient(L.ones(3, dtype=L.bool), spacing=(L.tensor([0.0, 1.0, 3.0]),)),
    "bool, edge_order 2, coordinates": lambda L: L.gradient(L.tensor([True, False, True]),
                                                            spacing=(L.tensor([0.0, 1.0, 3.0]),), edge_order=2),
    "bool too short": lambda L: L.gradient(L.ones(3, 1, dtype=L.bool)),
    "int8 wraps": lambda L: L.gradient(L.tensor([-128, 127, 5, -100], dtype=L.int8)),
    "int8 wraps, edge_order 2": lambda L: L.gradient(L.tensor([-128, 127, 5, -100], dtype=L.int8), spacing=2,
                                                     edge_order=2),
    "int coordinates": lambda L: L.gradient(L.tensor([1, 4, 9, 16]), spacing=(L.tensor([0, 1, 2, 4]),)),
    "float64 coordinates": lambda L: L.gradient(L.tensor([1.0, 4.0, 9.0, 16.0]),
                                                spacing=(L.tensor([0.0, 1.0, 2.5, 4.0], dtype=L.float64),),
                                                edge_order=2),
    "0-d tensors in a list": lambda L: L.gradient(L.ones(3, 4), spacing=[L.tensor(2.0), L.tensor(3.0)]),
    "tensor and number mixed": lambda L: L.gradient(L.ones(3, 4), spacing=[L.tensor([0.0, 1.0, 2.0]), 2.0]),
    "complex spacing": lambda L: L.gradient(L.tensor([[1.0, 4.0, 9.0], [2.0, 3.0, 7.0]]), spacing=1j),
}


@pytest.mark.parametrize("name", list(_CALLS))
def test_gradient_checks_and_dtypes_as_torch(name):
    assert _outcome(chainrule, _CALLS[name]) == _outcome(torch, _CALLS[name])


def test_gradient_values_and_gradients_bitwise_on_uniform_spacing():
    data = np.random.RandomState(0).randn(3, 5, 4)
    outcomes = []
    for lib in (torch, chainrule):
        x = lib.tensor(data, dtype=lib.float32, requires_grad=True)
        outs = lib.gradient(x, spacing=[0.3, 2.0], dim=(2, 0), edge_order=2)
        (grad,) = lib.autograd.grad(sum((t * (k + 1.5)).sum() for k, t in enumerate(outs)), x)
        outcomes.append(([t.detach().numpy() for t in outs], [type(t.grad_fn).__name__ for t in outs],
                         grad.numpy()))
    (theirs, their_nodes, their_grad), (ours, our_nodes, our_grad) = outcomes
    assert our_nodes == their_nodes == ["CatBackward0", "CatBackward0"]
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(our_grad, their_grad)


@pytest.mark.parametrize("edge_order", [1, 2])
@pytest.mark.parametrize("coordinate_dtype", ["float32", "float64"])
def test_gradient_gradients_bitwise_through_coordinates(edge_order, coordinate_dtype):
    # torch makes each sum's terms right to left; made left to right, the float32 gradient summed
    # the slices' contributions in another order (203 of 300 random 1-d cases differed in the last bits)
    rng = np.random.RandomState(4)
    data = rng.randn(5, 4, 6).astype(np.float32)
    coordinates = [np.cumsum(rng.rand(n) + 0.3) for n in (6, 5, 4)]
    grads = []
    for lib in (torch, chainrule):
        x = lib.tensor(data, requires_grad=True)
        spacing = [lib.tensor(c, dtype=getattr(lib, coordinate_dtype)) for c in coordinates]
        outs = lib.gradient(x, spacing=spacing, dim=(2, 0, 1), edge_order=edge_order)
        grads.append(lib.autograd.grad(sum((t * (k + 1.5)).sum() for k, t in enumerate(outs)), x)[0].numpy())
    np.testing.assert_array_equal(grads[1], grads[0])
