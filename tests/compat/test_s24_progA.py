"""Session 24, lane progA: chainrule bugs found by the tutorial programs (spatial_transformer,
fgsm_adversarial, neural_style_gatys, func_ensembling_ntk, forward_ad_double_backward), each
checked against torch 2.13."""

import warnings

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _user_warnings(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [(w.category, str(w.message), w.filename) for w in caught]


@pytest.mark.parametrize("make", [
    lambda lib: lib.tensor([0.485, 0.456, 0.406]),
    lambda lib: lib.tensor(2.0, requires_grad=True),
    lambda lib: lib.nn.Parameter(lib.ones(2)),
])
def test_tensor_of_a_tensor_warns_like_torch_and_copies_detached(make):
    # the Neural Transfer tutorial's Normalization: torch.tensor(mean).view(-1, 1, 1) on a tensor
    results = {}
    for lib in (torch, chainrule):
        source = make(lib)
        copy, caught = _user_warnings(lambda: lib.tensor(source))  # noqa: B023
        assert [(c, f) for c, _, f in caught] == [(UserWarning, __file__)]
        results[lib] = (caught[0][1], copy.requires_grad, copy.grad_fn, copy.tolist())
        assert copy.data_ptr() != source.data_ptr()
    assert results[chainrule] == results[torch]


def test_tensor_of_a_list_of_tensors_and_chainrule_internal_copies_stay_silent():
    for lib in (torch, chainrule):
        _, caught = _user_warnings(lambda: lib.tensor([lib.tensor(1.0), lib.tensor(2.0)]))  # noqa: B023
        assert caught == []
    # chainrule's own code copies tensors through tensor() on purpose: the user must not be told
    _, caught = _user_warnings(lambda: chainrule.nn.utils.clip_grad_norm_([chainrule.ones(2, requires_grad=True)], 1.0))
    assert caught == []

