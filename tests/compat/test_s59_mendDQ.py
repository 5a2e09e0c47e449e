"""Session 59, lane mendDQ: sparse tensors against torch — a COO leaf's gradient marked coalesced as torch's
AccumulateGrad leaves it (stolen: unmarked; cloned: its flag kept), sparse * sparse differentiated by the sparse
product itself."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _quiet_sparse_warnings():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CS[RC] tensor support is in beta state")
        warnings.filterwarnings("ignore", "Sparse invariant checks are implicitly disabled")
        yield


_FIRST = ([[1, 1, 0, 2, 3], [0, 0, 0, 2, 1]], [0.5, 1.25, -2.0, 0.75, 3.0])
_SECOND = ([[2, 0, 2, 1], [2, 0, 1, 0]], [1.5, -0.5, 2.0, 0.25])


def _coo(lib, parts, coalesced: bool):
    indices, values = parts
    made = lib.sparse_coo_tensor(lib.tensor(indices), lib.tensor(values, dtype=lib.float64), (4, 3))
    return (made.coalesce() if coalesced else made).detach().requires_grad_()


def _entries(t) -> tuple | None:
    if t is None:
        return None
    return t.is_coalesced(), t._indices().tolist(), np.round(np.asarray(t._values().tolist()), 12).tolist()


_COMBINATIONS = {
    "s + s": lambda s, t: s + s,
    "s - s": lambda s, t: s - s,
    "s * s": lambda s, t: s * s,
    "s + t": lambda s, t: s + t,
    "t + s": lambda s, t: t + s,
    "s - t": lambda s, t: s - t,
    "s * t": lambda s, t: s * t,
    "t * s": lambda s, t: t * s,
    "s + t + s": lambda s, t: s + t + s,
    "2 * s + s": lambda s, t: 2 * s + s,
    "s.t()": lambda s, t: s.t(),
    "abs": lambda s, t: s.abs(),
    "coalesce": lambda s, t: s.coalesce(),
}


@pytest.mark.parametrize("coalesced", [(False, False), (False, True), (True, False), (True, True)],
                         ids=["both uncoalesced", "t coalesced", "s coalesced", "both coalesced"])
@pytest.mark.parametrize("name", sorted(_COMBINATIONS))
def test_a_coo_leafs_gradient_has_torchs_entries_and_coalesced_flag(name, coalesced):
    # the engine's sum of two sparse gradients, or one handed to two leaves, used to come out unmarked where
    # torch's AccumulateGrad clones it (its flag kept); sparse * sparse gave the gradient at the coalesced
    # entries where torch's sparse product keeps an uncoalesced factor's entries
    seen = []
    for lib in (torch, chainrule):
        s, t = _coo(lib, _FIRST, coalesced[0]), _coo(lib, _SECOND, coalesced[1])
        result = _COMBINATIONS[name](s, t)
        weight = lib.arange(result.numel(), dtype=lib.float64).reshape(result.shape) - 4
        (result.to_dense() * weight).sum().backward()
        seen.append((_entries(result), _entries(s.grad), _entries(t.grad)))
    assert seen[1] == seen[0]


def test_gradients_seen_by_hooks_are_marked_as_torchs():
    # torch's to_dense gradient is the incoming one masked to the coalesced input: marked coalesced (the leaf's
    # .grad, stolen, is not)
    seen = []
    for lib in (torch, chainrule):
        s = _coo(lib, _FIRST, False)
        flags = []
        s.register_hook(lambda grad, flags=flags: flags.append(grad.is_coalesced()))
        (s * 2).to_dense().sum().backward()
        seen.append((flags, s.grad.is_coalesced()))
    assert seen[1] == seen[0] == ([True], False)


def test_a_sum_of_sparse_gradients_has_torchs_narrowed_indices():
    # torch's add fills room for both entry lists and narrows it: the indices of a sum that merged entries
    # are not contiguous, so AccumulateGrad clones that sum (coalesced flag kept)
    seen = []
    for lib in (torch, chainrule):
        s = _coo(lib, _FIRST, True)
        contiguity = []
        s.register_hook(lambda grad, contiguity=contiguity: contiguity.append(grad._indices().is_contiguous()))
        (s + s + s).to_dense().sum().backward()
        seen.append((contiguity, _entries(s.grad)))
    assert seen[1] == seen[0]


@pytest.mark.parametrize("other", [_SECOND, ([[0, 2, 3], [0, 1, 1]], [1.0, 2.0, 3.0])], ids=["overlap", "subset"])
def test_a_product_of_coalesced_tensors_has_torchs_indices(other):
    seen = []
    for lib in (torch, chainrule):
        product = _coo(lib, _FIRST, True).detach() * _coo(lib, other, True).detach()
        seen.append((_entries(product), product._indices().is_contiguous()))
    assert seen[1] == seen[0]


def test_a_product_of_two_uncoalesced_tensors_of_as_many_entries_keeps_the_seconds_entries():
    seen = []
    for lib in (torch, chainrule):
        s = _coo(lib, ([[0, 3, 0], [1, 1, 1]], [1.0, 2.0, 3.0]), False)
        t = _coo(lib, ([[3, 0, 2], [1, 1, 0]], [-1.0, 0.5, 4.0]), False)
        product = s * t
        product.to_dense().sum().backward()
        seen.append((_entries(product), _entries(s.grad), _entries(t.grad), product.grad_fn.name(),
                     [type(edge[0]).__name__ for edge in product.grad_fn.next_functions]))
    assert seen[1] == seen[0]


_LEFT = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0], [4.0, 5.0, 0.0], [0.0, -1.5, 0.0]])
_RIGHT = np.array([[0.0, 1.0], [2.0, 0.0], [0.0, 3.0]])
_WEIGHT = np.array([[1.0, -2.0], [0.5, 3.0], [-1.0, 0.25], [2.0, 1.0]])

_COMPRESSED_PRODUCTS = {
    "@": lambda lib, a, b: a @ b,
    "mm": lambda lib, a, b: lib.mm(a, b),
    "sparse.mm": lambda lib, a, b: lib.sparse.mm(a, b),
    "sparse.addmm": lambda lib, a, b: lib.sparse.addmm(lib.ones(4, 2, dtype=lib.float64), a, b, beta=0.5, alpha=2.0),
}


def _layout_and_parts(t) -> tuple | None:
    if t is None:
        return None
    layout = str(t.layout).rsplit(".", 1)[-1]
    if layout == "sparse_csr":
        return layout, t.crow_indices().tolist(), t.col_indices().tolist(), t.values().tolist()
    return layout, t.tolist()


def _product_outcome(lib, name: str, layouts: tuple, requires: str):
    a = getattr(lib.tensor(_LEFT), f"to_sparse_{layouts[0]}")().requires_grad_("a" in requires)
    b = getattr(lib.tensor(_RIGHT), f"to_sparse_{layouts[1]}")().requires_grad_("b" in requires)
    try:
        result = _COMPRESSED_PRODUCTS[name](lib, a, b)
    except RuntimeError as error:
        return "forward", str(error)
    node = result.grad_fn.name()
    dense = result.to_dense() if result.layout is not lib.strided else result
    try:
        (dense * lib.tensor(_WEIGHT)).sum().backward()
    except RuntimeError as error:
        return node, "backward", str(error)
    return node, _layout_and_parts(result), _layout_and_parts(a.grad), _layout_and_parts(b.grad)


@pytest.mark.parametrize("requires", ["a", "b", "ab"])
@pytest.mark.parametrize("layouts", [("csr", "csr"), ("csr", "csc"), ("csc", "csr"), ("csc", "csc")], ids="-".join)
@pytest.mark.parametrize("name", sorted(_COMPRESSED_PRODUCTS))
def test_a_product_of_compressed_matrices_records_torchs_node_and_gradient_layouts(name, layouts, requires):
    # a compressed leaf's gradient through compressed @ compressed used to be strided (torch's is CSR, of the
    # product's pattern, or refused for a CSC leaf), and torch.sparse.mm / addmm of two recorded compressed
    # matrices took a dense MmBackward0 where torch records SparseAddmmBackward0 (and refuses the left's gradient)
    if name == "sparse.mm" and layouts == ("csc", "csc"):
        pytest.skip("torch 2.13's sparse.mm gives two CSC matrices a CSC result without its entries")
    assert _product_outcome(chainrule, name, layouts, requires) == _product_outcome(torch, name, layouts, requires)


_WARNING_PROGRAM = """
import warnings, sys
import {lib} as lib
def warned(make):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make()
    return [(w.category.__name__, str(w.message)) for w in caught if "invariant" in str(w.message)]
coo = lambda **kw: lib.sparse_coo_tensor(lib.tensor([[0], [1]]), lib.tensor([1.0]), (2, 2), **kw)
csr = lambda **kw: lib.sparse_csr_tensor(lib.tensor([0, 1, 1]), lib.tensor([1]), lib.tensor([1.0]), (2, 2), **kw)
seen = [warned(lambda: lib.eye(2).to_sparse()), warned(lambda: coo(check_invariants=False)), warned(csr), warned(coo)]
lib.sparse.check_sparse_tensor_invariants.disable()
lib.set_warn_always(True)
seen.append(warned(coo))
print(repr(seen))
"""


def test_the_implicitly_unchecked_warning_is_torchs_once_until_the_switch_is_set():
    # torch's constructors warn once per process while neither the call nor the switch said whether to check
    # the invariants; chainrule never warned (a fresh interpreter each: the warning is once per process)
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    outputs = [subprocess.run([sys.executable, "-c", _WARNING_PROGRAM.format(lib=lib)], capture_output=True, text=True,
                              env=env, check=True).stdout for lib in ("torch", "chainrule")]
    assert outputs[0].count("implicitly disabled") == 1
    assert outputs[1] == outputs[0]
