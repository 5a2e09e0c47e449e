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


# --- cross_entropy's checks, in torch's order and words, for both target kinds --------------------
# Class probabilities (a target of the input's shape): the target's dtype, ignore_index, the weight
# ("cross_entropy: weight tensor ..."), log_softmax's input, then label_smoothing. Class indices:
# label_smoothing, log_softmax's input, nll_loss's target (batch size, rank), then the weight.
def outcome(case, lib):
    """("ok", dtype name, value) or ("error", type name, message) for ``case(lib)``."""
    try:
        result = case(lib)
        return "ok", str(result.dtype).split(".")[-1], round(result.item(), 5)
    except Exception as error:  # the error is part of what is compared
        return "error", type(error).__name__, str(error)


def logits(m):
    return m.tensor([[1.0, -0.5, 0.2, 0.3], [0.1, 0.4, -1.2, 2.0], [0.0, 0.7, 0.7, -0.3]])


def probabilities(m):
    return m.tensor([[0.7, 0.1, 0.1, 0.1], [0.0, 0.5, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25]])


def labels(m):
    return m.tensor([0, 3, 1])


CROSS_ENTROPY_CHECK_CASES = {
    "soft: short weight": lambda m: m.nn.functional.cross_entropy(logits(m), probabilities(m), weight=m.ones(3)),
    "soft: 2-d weight": lambda m: m.nn.functional.cross_entropy(logits(m), probabilities(m), weight=m.ones(1, 4)),
    "soft 1-d: short weight": lambda m: m.nn.functional.cross_entropy(logits(m)[0], probabilities(m)[0],
                                                                      weight=m.ones(2)),
    "soft: long target before weight": lambda m: m.nn.functional.cross_entropy(
        logits(m), probabilities(m).long(), weight=m.ones(3)),
    "soft: ignore_index before weight": lambda m: m.nn.functional.cross_entropy(
        logits(m), probabilities(m), weight=m.ones(3), ignore_index=1),
    "soft: weight before label_smoothing": lambda m: m.nn.functional.cross_entropy(
        logits(m), probabilities(m), weight=m.ones(3), label_smoothing=1.5),
    "soft: long target before label_smoothing": lambda m: m.nn.functional.cross_entropy(
        logits(m), probabilities(m).long(), label_smoothing=1.5),
    "soft: ignore_index before label_smoothing": lambda m: m.nn.functional.cross_entropy(
        logits(m), probabilities(m), label_smoothing=1.5, ignore_index=2),
    "soft: integer logits before label_smoothing": lambda m: m.nn.functional.cross_entropy(
        logits(m).long(), probabilities(m), label_smoothing=2.0),
    "soft: 0-d": lambda m: m.nn.functional.cross_entropy(m.tensor(1.0), m.tensor(1.0)),
    "soft: label_smoothing 2": lambda m: m.nn.functional.cross_entropy(logits(m), probabilities(m),
                                                                       label_smoothing=2.0),
    "soft: weight and smoothing": lambda m: m.nn.functional.cross_entropy(
        logits(m), probabilities(m), weight=m.tensor([1.0, 2.0, 0.5, 3.0]), label_smoothing=0.1),
    "hard: batch size before weight": lambda m: m.nn.functional.cross_entropy(logits(m), labels(m)[:2],
                                                                              weight=m.ones(3)),
    "hard: target rank before weight": lambda m: m.nn.functional.cross_entropy(
        logits(m), labels(m)[:, None].expand(3, 2), weight=m.ones(3)),
    "hard smoothed: batch size before weight": lambda m: m.nn.functional.cross_entropy(
        logits(m), labels(m)[:2], weight=m.ones(3), label_smoothing=0.1),
    "hard: label_smoothing before batch size": lambda m: m.nn.functional.cross_entropy(
        logits(m), labels(m)[:2], label_smoothing=1.5),
    "hard: label_smoothing 2": lambda m: m.nn.functional.cross_entropy(logits(m), labels(m), label_smoothing=2),
    "hard: short weight": lambda m: m.nn.functional.cross_entropy(logits(m), labels(m), weight=m.ones(3)),
    "hard: weight, ignore_index and smoothing": lambda m: m.nn.functional.cross_entropy(
        logits(m), m.tensor([0, -1, 1]), weight=m.tensor([1.0, 2.0, 0.5, 3.0]), ignore_index=-1,
        label_smoothing=0.1),
}


@pytest.mark.parametrize("name", CROSS_ENTROPY_CHECK_CASES)
def test_cross_entropy_checks_in_torch_order_and_words(name):
    case = CROSS_ENTROPY_CHECK_CASES[name]
    assert outcome(case, chainrule) == outcome(case, torch)
