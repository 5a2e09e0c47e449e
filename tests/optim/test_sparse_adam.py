"""SparseAdam against torch's on nn.Embedding(sparse=True): the same table after several steps,
rows not looked up untouched, and torch's argument checks."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def test_sparse_adam_matches_torch_on_a_sparse_embedding():
    torch.manual_seed(0)
    theirs = torch.nn.Embedding(10, 4, sparse=True)
    ours = chainrule.nn.Embedding(10, 4, sparse=True)
    ours.weight.data = chainrule.tensor(theirs.weight.detach().numpy())
    start = ours.weight.detach().numpy().copy()
    optimizers = (chainrule.optim.SparseAdam(ours.parameters(), lr=0.1, betas=(0.8, 0.9)),
                  torch.optim.SparseAdam(theirs.parameters(), lr=0.1, betas=(0.8, 0.9)))
    for ids in ([1, 2, 2, 5], [5, 7], [0, 1, 9], [2]):
        for lib, embedding, optimizer in zip((chainrule, torch), (ours, theirs), optimizers):
            optimizer.zero_grad()
            (embedding(lib.tensor(ids)) ** 2).sum().backward()
            optimizer.step()
        np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), rtol=1e-6, atol=1e-7)
    never_looked_up = [3, 4, 6, 8]
    np.testing.assert_array_equal(ours.weight.detach().numpy()[never_looked_up], start[never_looked_up])


def test_sparse_adam_maximize_and_argument_checks():
    w = chainrule.nn.Parameter(chainrule.ones(3, 2))
    optimizer = chainrule.optim.SparseAdam([w], lr=0.5, maximize=True)
    w.grad = chainrule.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, -2.0]]).to_sparse()
    optimizer.step()
    assert w[1].tolist() == [1.0, 1.0] and w[0, 0].item() > 1.0 and w[2, 1].item() < 1.0
    for lib in (chainrule, torch):
        with pytest.raises(ValueError, match="Invalid learning rate"):
            lib.optim.SparseAdam([lib.nn.Parameter(lib.ones(1))], lr=0.0)
        with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
            lib.optim.SparseAdam([lib.nn.Parameter(lib.ones(1))], betas=(0.9, 1.0))
