"""Session 26, lane fixes3: last session's known differences from torch 2.13, each against torch."""

from __future__ import annotations

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _first_sentence(message: str) -> str:
    return message.split(". ")[0]


def _sparse_embedding(lib):
    lib.manual_seed(0)
    embedding = lib.nn.Embedding(5, 3, sparse=True)
    embedding(lib.tensor([1, 2, 1])).sum().backward()
    return embedding


_CLIPS = {
    "norm": lambda lib, e, fe: lib.nn.utils.clip_grad_norm_(e.parameters(), 0.1, foreach=fe),
    "norm_inf": lambda lib, e, fe: lib.nn.utils.clip_grad_norm_(e.parameters(), 0.1, norm_type="inf", foreach=fe),
    "value": lambda lib, e, fe: lib.nn.utils.clip_grad_value_(e.parameters(), 0.1, foreach=fe),
    "total": lambda lib, e, fe: lib.nn.utils.get_total_norm([e.weight.grad], foreach=fe),
    "with_norm": lambda lib, e, fe: lib.nn.utils.clip_grads_with_norm_(e.parameters(), 0.1, lib.tensor(1.0),
                                                                       foreach=fe),
}


@pytest.mark.parametrize("foreach", [None, True, False])
@pytest.mark.parametrize("name", sorted(_CLIPS))
def test_clip_grad_of_sparse_gradient_as_torch(name, foreach):
    """torch has no sparse COO norm/clamp kernel: clip_grad_norm_, clip_grad_value_ and
    get_total_norm raise its NotImplementedError; clip_grads_with_norm_ (a mul_) scales."""
    outcomes = []
    for lib in (torch, chainrule):
        embedding = _sparse_embedding(lib)
        try:
            _CLIPS[name](lib, embedding, foreach)
        except NotImplementedError as error:
            outcomes.append(("raised", _first_sentence(str(error))))
        else:
            outcomes.append(("ok", embedding.weight.grad.to_dense().flatten().tolist()))
    assert outcomes[0][0] == outcomes[1][0]
    if outcomes[0][0] == "raised":
        assert outcomes[0] == outcomes[1]
    else:
        assert outcomes[1][1] == pytest.approx(outcomes[0][1])


def test_clip_grad_value_one_by_one_clamps_the_dense_gradients_before_the_sparse_one():
    """foreach=False clamps in order, so a dense gradient before the sparse one is clamped when torch
    raises; the foreach path checks its whole group first and changes nothing."""
    for foreach, changed in ((False, True), (None, False)):
        results = []
        for lib in (torch, chainrule):
            embedding = _sparse_embedding(lib)
            dense = lib.nn.Parameter(lib.ones(2))
            dense.grad = lib.full((2,), 5.0)
            with pytest.raises(NotImplementedError):
                lib.nn.utils.clip_grad_value_([dense, embedding.weight], 1.0, foreach=foreach)
            results.append(dense.grad.tolist())
        assert results[0] == results[1] == ([1.0, 1.0] if changed else [5.0, 5.0])
