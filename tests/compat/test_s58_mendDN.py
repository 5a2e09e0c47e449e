"""Session 58, lane mendDN: sparse tensors against torch — CSR/CSC through torch.save/load and pickle in
their layout, both ways between the libraries."""

from __future__ import annotations

import copy
import io
import pickle
import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

_DENSE = np.array([[0.0, 1.5, 0.0, -2.0], [0.0, 0.0, 0.0, 0.0], [3.0, 0.0, 0.25, 0.0]])


@pytest.fixture(autouse=True)
def _quiet_beta_warning():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CS[RC] tensor support is in beta state")
        yield


def _compressed(lib, layout: str, dtype: str = "float32", requires_grad: bool = False):
    return getattr(lib.tensor(_DENSE, dtype=getattr(lib, dtype)), f"to_sparse_{layout}")().requires_grad_(requires_grad)


def _described(t) -> tuple:
    """What a round trip must keep: layout, shape, dtype, both index parts (values and dtype), values,
    requires_grad and the node the loaded matrix hangs from."""
    layout = str(t.layout).rsplit(".", 1)[-1]
    if layout == "sparse_csr":
        parts = (t.crow_indices(), t.col_indices())
    else:
        parts = (t.ccol_indices(), t.row_indices())
    indices = [(str(p.dtype).rsplit(".", 1)[-1], p.tolist()) for p in parts]
    node = t.grad_fn.name() if t.grad_fn is not None else None
    return (layout, tuple(t.shape), str(t.dtype).rsplit(".", 1)[-1], indices, t.values().tolist(),
            bool(t.requires_grad), node)


def _saved(lib, t) -> bytes:
    buffer = io.BytesIO()
    lib.save(t, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("layout", ["csr", "csc"])
@pytest.mark.parametrize("requires_grad", [False, True], ids=["plain", "requires_grad"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_compressed_matrix_saves_and_loads_in_its_layout_both_ways(layout, requires_grad, dtype):
    # it used to come back strided from chainrule's own file, torch's file failed to load, and torch read
    # chainrule's as a dense tensor
    ours, theirs = _compressed(chainrule, layout, dtype, requires_grad), _compressed(torch, layout, dtype, requires_grad)
    want = _described(torch.load(io.BytesIO(_saved(torch, theirs))))
    assert want[0] == f"sparse_{layout}"
    assert _described(chainrule.load(io.BytesIO(_saved(chainrule, ours)))) == want
    assert _described(chainrule.load(io.BytesIO(_saved(torch, theirs)))) == want
    assert _described(torch.load(io.BytesIO(_saved(chainrule, ours)))) == want


def test_a_loaded_matrix_that_requires_grad_passes_gradients_to_its_values():
    weights = np.arange(12.0).reshape(3, 4)
    grads = []
    for lib in (torch, chainrule):
        loaded = lib.load(io.BytesIO(_saved(lib, _compressed(lib, "csr", requires_grad=True))))
        (loaded.to_dense() * lib.tensor(weights, dtype=lib.float32)).sum().backward()
        leaf = loaded.grad_fn.next_functions[0][0].variable
        grads.append(leaf.grad.tolist())
    assert grads[0] == grads[1]


@pytest.mark.parametrize("layout", ["csr", "csc"])
@pytest.mark.parametrize("requires_grad", [False, True], ids=["plain", "requires_grad"])
def test_pickle_keeps_a_compressed_layout_and_deepcopy_refuses_as_torch(layout, requires_grad):
    results = []
    for lib in (torch, chainrule):
        t = _compressed(lib, layout, requires_grad=requires_grad)
        with pytest.raises(NotImplementedError) as refused:
            copy.deepcopy(t)
        results.append((_described(pickle.loads(pickle.dumps(t))), str(refused.value)))
    assert results[1] == results[0]
