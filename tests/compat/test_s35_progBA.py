"""Regressions found by the progBA programs (hopfield_retrieval, deepwalk_sparse_embeddings,
sentence_vae_annealing), each compared with torch on the same inputs."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _sparse_table_gradient(lib):
    """One nn.Embedding(sparse=True) looked up twice in one graph (skip-gram's context and
    negative lookups): two sparse gradients meet in the engine's fan-out buffer."""
    lib.manual_seed(0)
    table = lib.nn.Embedding(10, 3, sparse=True)
    weights = lib.tensor(np.arange(9, dtype=np.float32).reshape(3, 3) / 9)
    first = table(lib.tensor([1, 2, 3, 1]))
    second = table(lib.tensor([[7, 4], [1, 6]]))
    ((first * weights[0]).sum() + (second @ weights[1]).sum()).backward()
    return table.weight.grad


def test_embedding_looked_up_twice_gets_torch_sparse_gradient():
    ours, theirs = _sparse_table_gradient(chainrule), _sparse_table_gradient(torch)
    assert ours.is_sparse and theirs.is_sparse
    assert ours.is_coalesced() == theirs.is_coalesced()
    assert ours._indices().tolist() == theirs._indices().tolist()
    np.testing.assert_allclose(ours._values().numpy(), theirs._values().numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours.to_dense().numpy(), theirs.to_dense().numpy(), rtol=1e-6)


def test_sparse_adam_steps_a_table_looked_up_twice():
    def run(lib):
        lib.manual_seed(0)
        table = lib.nn.Embedding(6, 2, sparse=True)
        optimizer = lib.optim.SparseAdam(list(table.parameters()), lr=0.1)
        for _ in range(3):
            loss = table(lib.tensor([0, 2])).pow(2).sum() - table(lib.tensor([2, 5])).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return table.weight.detach().numpy()

    np.testing.assert_allclose(run(chainrule), run(torch), rtol=1e-5, atol=1e-6)
