"""Edges found while writing the nerf_ray_marching_hierarchical and cutmix_label_smoothing_ce programs
(session 36, lane progBH), each checked against torch 2.13.

A case is a function of the library (``torch`` or ``chainrule``); what a user sees of it (its value,
its warnings, or its error's type and message) must be torch's."""

from __future__ import annotations

import warnings

import pytest

import chainrule

torch = pytest.importorskip("torch")


# --- searchsorted / bucketize on a non-contiguous operand: torch's once-per-process warning ----------
# NeRF's sample_pdf writes ``u = u.contiguous()`` before ``torch.searchsorted(cdf, u, right=True)``
# because torch warns when it has to copy an operand; a transposed draw shows the warning.
SEARCHSORTED_LAYOUT_CASES = {
    "all contiguous": lambda m, b, u: m.searchsorted(b, u, right=True),
    "values transposed": lambda m, b, u: m.searchsorted(b, u.t().contiguous().t(), right=True),
    "boundaries transposed": lambda m, b, u: m.searchsorted(b.t().contiguous().t(), u),
    "both transposed": lambda m, b, u: m.searchsorted(b.t().contiguous().t(), u.t().contiguous().t()),
    "sorter transposed": lambda m, b, u: m.searchsorted(b, u, sorter=m.zeros(4, 3, dtype=m.long).t()),
    "1-d strided boundaries": lambda m, b, u: m.searchsorted(m.arange(8.0)[::2], u),
    "scalar value": lambda m, b, u: m.searchsorted(b[0, ::2], 0.4),
    "empty strided values": lambda m, b, u: m.searchsorted(b[0], m.zeros(4, 0).t()),
    "bucketize strided values": lambda m, b, u: m.bucketize(u.t(), b[0]),
    "bucketize strided boundaries": lambda m, b, u: m.bucketize(u, m.arange(8.0)[::2]),
}


def searchsorted_with_warnings(lib, case):
    boundaries = lib.tensor([[0.0, 0.25, 0.5, 1.0]] * 3)
    values = lib.tensor([[0.1, 0.3, 0.9], [0.0, 0.5, 1.0], [0.2, 0.25, 0.7]])
    lib.set_warn_always(True)  # torch's TORCH_WARN_ONCE, shown on every call while this is set
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = case(lib, boundaries, values)
    finally:
        lib.set_warn_always(False)
    return result.tolist(), [(w.category.__name__, str(w.message), w.filename) for w in caught]


@pytest.mark.parametrize("name", SEARCHSORTED_LAYOUT_CASES)
def test_searchsorted_warns_of_a_non_contiguous_operand_as_torch(name):
    case = SEARCHSORTED_LAYOUT_CASES[name]
    assert searchsorted_with_warnings(chainrule, case) == searchsorted_with_warnings(torch, case)


def test_searchsorted_non_contiguous_warning_is_given_once_per_process(monkeypatch):
    monkeypatch.setattr(chainrule._config, "_warned_once", set())
    boundaries = chainrule.tensor([0.0, 0.5, 1.0])
    values = chainrule.rand(4, 3).t()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            chainrule.searchsorted(boundaries, values)
    assert len(caught) == 1 and "input value tensor is non-contiguous" in str(caught[0].message)
