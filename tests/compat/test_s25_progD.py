"""Fixes found by the s25 progD programs (maml_sinusoid, ctc_speech, embeddingbag_recsys, wavenet_tcn,
nerf_toy), each compared with torch."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _coo(grad):
    """A sparse gradient's parts as NumPy: (indices, values) uncoalesced, and its dense form."""
    return grad._indices().numpy(), grad._values().numpy(), grad.to_dense().numpy()


@pytest.mark.parametrize("padding_idx", [None, 1])
def test_embedding_sparse_gradient_is_torchs_uncoalesced_coo(padding_idx):
    weight = np.arange(10, dtype=np.float32).reshape(5, 2)
    idx = [[0, 1, 3], [3, 4, 0]]
    results = []
    for lib in (chainrule, torch):
        emb = lib.nn.Embedding(5, 2, sparse=True, padding_idx=padding_idx)
        emb.weight.data = lib.tensor(weight)
        out = emb(lib.tensor(idx))
        (out * lib.arange(12.0).view(2, 3, 2)).sum().backward()
        grad = emb.weight.grad
        assert grad.is_sparse and grad.layout == lib.sparse_coo and not grad.is_coalesced()
        assert not grad.requires_grad and out.grad_fn._saved_sparse is True
        results.append(_coo(grad))
    for ours, theirs in zip(*results):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("mode, padding_idx, weighted", [("sum", None, True), ("mean", 1, False), ("sum", 3, False)])
def test_embedding_bag_sparse_gradient_matches_torch(mode, padding_idx, weighted):
    weight = np.arange(10, dtype=np.float32).reshape(5, 2)
    results = []
    for lib in (chainrule, torch):
        bag = lib.nn.EmbeddingBag(5, 2, mode=mode, sparse=True, padding_idx=padding_idx)
        bag.weight.data = lib.tensor(weight)
        psw = lib.tensor([1.0, 2.0, 3.0, 4.0, 5.0]) if weighted else None
        out = bag(lib.tensor([0, 1, 3, 3, 4]), lib.tensor([0, 3]), per_sample_weights=psw)
        (out * lib.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
        assert bag.weight.grad.is_sparse
        results.append(_coo(bag.weight.grad))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_embedding_bag_max_mode_refuses_sparse_and_grad_scaling():
    for lib in (chainrule, torch):
        weight = lib.ones(5, 2)
        with pytest.raises(ValueError, match="^max mode does not support sparse weights$"):
            lib.nn.functional.embedding_bag(lib.tensor([[0, 1]]), weight, mode="max", sparse=True)
        with pytest.raises(ValueError, match="^max mode does not support scaling the gradient by the frequency$"):
            lib.nn.functional.embedding_bag(lib.tensor([[0, 1]]), weight, mode="max", scale_grad_by_freq=True)


def test_sparse_gradients_accumulate_as_torchs():
    # sparse + sparse stays sparse (entries appended); a dense .grad takes a sparse one in place
    results = []
    for lib in (chainrule, torch):
        emb = lib.nn.Embedding(4, 2, sparse=True)
        emb.weight.data = lib.ones(4, 2)
        emb(lib.tensor([1, 2])).sum().backward()
        (emb(lib.tensor([2, 3])) * 2).sum().backward()
        grad = emb.weight.grad
        first = (grad.is_sparse, grad._nnz(), grad.to_dense().numpy())
        emb.weight.grad = lib.zeros(4, 2)
        emb(lib.tensor([0])).sum().backward()
        second = (emb.weight.grad.is_sparse, emb.weight.grad.numpy())
        # a dense gradient arriving on a sparse .grad makes it dense
        emb.weight.grad = None
        emb(lib.tensor([0])).sum().backward()
        (emb.weight * 3).sum().backward()
        third = (emb.weight.grad.is_sparse, emb.weight.grad.numpy())
        results.append((first, second, third))
    ours, theirs = results
    for a, b in zip(ours, theirs):
        assert a[0] == b[0]
        np.testing.assert_array_equal(a[-1], b[-1])
    assert ours[0][1] == theirs[0][1] == 3


@pytest.mark.parametrize("first, second", [([0, 3, 3, 4, 0], [2]), ([1, 2], [2, 3]), ([5, 1], [1, 5, 0])])
def test_two_sparse_gradients_merge_in_torchs_entry_order(first, second):
    results = []
    for lib in (chainrule, torch):
        emb = lib.nn.Embedding(6, 2, sparse=True)
        emb(lib.tensor(first)).sum().backward()
        (emb(lib.tensor(second)) * 2).sum().backward()
        grad = emb.weight.grad
        results.append((grad.is_coalesced(),) + _coo(grad))
    (ours_coalesced, *ours), (theirs_coalesced, *theirs) = results
    assert ours_coalesced == theirs_coalesced
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


def test_optimizers_on_sparse_gradients_match_torch():
    start = np.linspace(-1, 1, 12, dtype=np.float32).reshape(6, 2)
    finals = []
    for lib in (chainrule, torch):
        tables = []
        for name, options in (("SparseAdam", {"lr": 0.1}), ("Adagrad", {"lr": 0.3}),
                              ("SGD", {"lr": 0.2, "momentum": 0.5})):
            emb = lib.nn.Embedding(6, 2, sparse=True)
            emb.weight.data = lib.tensor(start)
            opt = getattr(lib.optim, name)(emb.parameters(), **options)
            for ids in ([1, 2, 2], [2, 5], [0, 1]):
                opt.zero_grad()
                (emb(lib.tensor(ids)) ** 2).sum().backward()
                opt.step()
            tables.append(emb.weight.detach().numpy())
        finals.append(tables)
    for ours, theirs in zip(*finals):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_dense_gradient_refusals_for_sparse_and_dense_optimizers():
    for lib in (chainrule, torch):
        p = lib.nn.Parameter(lib.ones(3))
        (p * 2).sum().backward()
        with pytest.raises(RuntimeError, match="^SparseAdam does not support dense gradients, please consider "
                                               "Adam instead$"):
            lib.optim.SparseAdam([p]).step()
        emb = lib.nn.Embedding(4, 2, sparse=True)
        emb(lib.tensor([1])).sum().backward()
        with pytest.raises(RuntimeError, match="^Adam does not support sparse gradients, please consider "
                                               "SparseAdam instead$"):
            lib.optim.AdamW(emb.parameters()).step()
        for name in ("Adadelta", "Adamax", "ASGD", "NAdam", "RAdam", "RMSprop", "Rprop"):
            with pytest.raises(RuntimeError, match=f"^{name} does not support sparse gradients$"):
                getattr(lib.optim, name)(emb.parameters()).step()
        with pytest.raises(RuntimeError, match="^weight_decay option is not compatible with sparse gradients$"):
            lib.optim.Adagrad(emb.parameters(), weight_decay=0.1).step()
        with pytest.raises(RuntimeError, match=r"^add\(sparse, dense\) is not supported"):
            lib.optim.SGD(emb.parameters(), lr=0.1, weight_decay=0.1).step()
        assert emb.weight.grad.is_sparse  # nothing was stepped


def test_sparse_gradient_kept_as_a_contiguous_clone_then_appended_as_torchs():
    # the same graph backward twice: the second gradient's values are a broadcast view, so torch's
    # sparse add appends its entries instead of merging them
    results = []
    for lib in (chainrule, torch):
        emb = lib.nn.Embedding(6, 2, sparse=True)
        out = emb(lib.tensor([3]))
        out.sum().backward(retain_graph=True)
        out.sum().backward()
        results.append(_coo(emb.weight.grad))
    for ours, theirs in zip(*results):
        np.testing.assert_array_equal(ours, theirs)
    assert results[0][0].tolist() == [[3, 3]]


def test_sparse_gradient_zero_grad_data_and_frequency_refusal():
    for lib in (chainrule, torch):
        emb = lib.nn.Embedding(6, 2, sparse=True)
        emb(lib.tensor([1, 2])).sum().backward()
        data = emb.weight.grad.data
        assert data.is_sparse and data._nnz() == 2
        emb.zero_grad(set_to_none=False)
        grad = emb.weight.grad
        assert grad.is_sparse and grad._nnz() == 0 and grad.is_coalesced()
        assert grad.to_dense().abs().sum().item() == 0
        emb(lib.tensor([3])).sum().backward()
        assert emb.weight.grad._nnz() == 1
        for module in (lib.nn.Embedding(6, 2, sparse=True, scale_grad_by_freq=True),
                       lib.nn.EmbeddingBag(6, 2, mode="sum", sparse=True, scale_grad_by_freq=True)):
            out = module(lib.tensor([[1, 1, 2]]))
            with pytest.raises(RuntimeError, match="^embedding_backward: scale_grad_by_freq not supported with "
                                                   "sparse gradients$"):
                out.sum().backward()



def test_autograd_grad_takes_any_iterable_of_inputs_and_a_dict():
    # learn2learn's maml_update: grad(loss, model.parameters(), create_graph=True)
    from collections import OrderedDict

    for lib in (chainrule, torch):
        lib.manual_seed(0)
        model = lib.nn.Linear(2, 1)
        loss = (model(lib.ones(3, 2)) ** 2).sum()
        by_generator = lib.autograd.grad(loss, model.parameters(), create_graph=True)
        assert type(by_generator) is tuple and len(by_generator) == 2 and by_generator[0].requires_grad
        by_values = lib.autograd.grad(loss, dict(model.named_parameters()).values(), retain_graph=True)
        by_dict = lib.autograd.grad(loss, dict(model.named_parameters()), retain_graph=True)
        assert type(by_dict) is dict and list(by_dict) == ["weight", "bias"]
        assert lib.equal(by_dict["weight"], by_values[0]) and lib.equal(by_dict["bias"], by_values[1])
        with pytest.raises(TypeError, match="^`inputs` argument to `grad\\(\\)` must be a dict, not OrderedDict. "
                                            "Other Mapping types are not supported.$"):
            lib.autograd.grad(loss, OrderedDict(model.named_parameters()), retain_graph=True)
        loss.backward(inputs=model.parameters())
        assert model.weight.grad is not None and model.bias.grad is not None
