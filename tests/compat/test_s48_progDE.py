"""Session 48, lane progDE: what the corpus programs mesh_graphnet_simulator, conve_kg_link_prediction and
saint_intersample_attention led to, compared with torch."""

import math

import pytest

import chainrule

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("shape", [(5,), (2, 3), (2, 3, 4), (0,), (2, 0, 3), ()])
@pytest.mark.parametrize("route", ["nonzero", "where"])
def test_nonzero_as_tuple_gives_contiguous_index_tensors_as_torch(shape, route):
    # NumPy's per-dim indices are strided views of one (n, ndim) block; torch's are each contiguous
    values = torch.arange(math.prod(shape)).reshape(shape) % 3 != 1
    ours = chainrule.tensor(values.numpy())
    if route == "nonzero":
        expected, got = torch.nonzero(values, as_tuple=True), chainrule.nonzero(ours, as_tuple=True)
    else:
        expected, got = torch.where(values), chainrule.where(ours)
    assert len(got) == len(expected)
    for e, g in zip(expected, got):
        assert g.tolist() == e.tolist()
        assert g.dtype == chainrule.int64
        assert g.stride() == e.stride()
        assert g.is_contiguous() == e.is_contiguous()


def test_nonzero_as_tuple_indices_are_independent_of_each_other():
    mask = chainrule.tensor([[0, 1], [1, 1]]) == 1
    rows, cols = mask.nonzero(as_tuple=True)
    rows[0] = 7  # writing into one must not show through the other (they no longer share a block)
    assert cols.tolist() == [1, 0, 1]
    assert rows.view(-1).tolist() == [7, 1, 1]
