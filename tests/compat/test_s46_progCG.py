"""s46 progCG: the layout of topk, kthvalue, mode and argsort results, against torch.

Found around mixture_of_depths_router's ``torch.topk(router_logits, k, dim=1, sorted=False)``: where
chainrule replays torch's CPU order (unsorted topk, rows with ties) along a dim other than the last, the
index came back as a strided view, so values and indices were non-contiguous where torch's are
contiguous; argsort kept C order where torch's follows the input's layout (as sort's indices do)."""

import itertools

import numpy as np
import pytest
import torch as real_torch

import chainrule

ARRAYS = {
    "ties": np.random.default_rng(0).integers(0, 3, size=(4, 5, 6)).astype(np.float32),
    "no_ties": np.random.default_rng(0).standard_normal((4, 5, 6)).astype(np.float32),
    "int64": np.random.default_rng(1).integers(0, 4, size=(3, 4, 5)),
}

OPS = {
    "topk_sorted": lambda lib, x, d: lib.topk(x, 2, dim=d),
    "topk_unsorted": lambda lib, x, d: lib.topk(x, 2, dim=d, sorted=False),
    "topk_unsorted_smallest": lambda lib, x, d: lib.topk(x, 1, dim=d, largest=False, sorted=False),
    "kthvalue_keepdim": lambda lib, x, d: lib.kthvalue(x, 2, dim=d, keepdim=True),
    "kthvalue": lambda lib, x, d: lib.kthvalue(x, 2, dim=d),
    "mode_keepdim": lambda lib, x, d: lib.mode(x, dim=d, keepdim=True),
    "mode": lambda lib, x, d: lib.mode(x, dim=d),
    "sort": lambda lib, x, d: lib.sort(x, dim=d),
    "argsort": lambda lib, x, d: (lib.argsort(x, dim=d),),
    "argsort_descending": lambda lib, x, d: (lib.argsort(x, dim=d, descending=True),),
    "argsort_stable": lambda lib, x, d: (lib.argsort(x, dim=d, stable=True),),
}


def _results(lib, op, array, transposed, dim):
    x = lib.tensor(array)
    if transposed:
        x = x.transpose(0, 2)
    return [(t.tolist(), tuple(t.stride()), t.is_contiguous()) for t in OPS[op](lib, x, dim)]


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("name,transposed,dim", list(itertools.product(ARRAYS, (False, True), (0, 1, 2, -1))))
def test_selection_layout_matches_torch(op, name, transposed, dim):
    expected = _results(real_torch, op, ARRAYS[name], transposed, dim)
    assert _results(chainrule, op, ARRAYS[name], transposed, dim) == expected


def test_mixture_of_depths_topk_then_gather_is_contiguous():
    logits = np.random.default_rng(3).standard_normal((4, 16)).astype(np.float32)
    results = []
    for lib in (real_torch, chainrule):
        weights, selected = lib.topk(lib.tensor(logits).t(), k=8, dim=0, sorted=False)
        selected, index = lib.sort(selected, dim=0)
        gathered = lib.gather(weights, dim=0, index=index)
        results.append([(t.tolist(), tuple(t.stride())) for t in (weights, selected, index, gathered)])
    assert results[1] == results[0]


def test_topk_unsorted_gradient_matches_torch():
    logits = np.random.default_rng(4).standard_normal((6, 5)).astype(np.float64)
    grads = []
    for lib in (real_torch, chainrule):
        x = lib.tensor(logits, requires_grad=True)
        values, _ = lib.topk(x, 3, dim=0, sorted=False)
        (values * lib.arange(15, dtype=lib.float64).view(3, 5)).sum().backward()
        grads.append(x.grad.tolist())
    assert grads[1] == grads[0]
    x = chainrule.tensor(logits, requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda t: chainrule.topk(t, 3, dim=0, sorted=False).values, (x,))
