"""What the small libraries model authors import reach for (session 15 trial: einops, x-transformers,
vit-pytorch, torch-ema, schedulefree, pytorch-metric-learning, skorch), compared with torch 2.13
without needing those libraries."""

import copy
import warnings

import numpy as np
import pytest
import torch

import chainrule


def test_lr_scheduler_keeps_the_old_underscore_base_class():
    # skorch: from torch.optim.lr_scheduler import _LRScheduler; class WarmRestartLR(_LRScheduler)
    for lib in (torch, chainrule):
        base = lib.optim.lr_scheduler._LRScheduler
        assert issubclass(base, lib.optim.lr_scheduler.LRScheduler)
        assert "_LRScheduler" not in lib.optim.lr_scheduler.__all__

    def halving(lib):
        class Halving(lib.optim.lr_scheduler._LRScheduler):
            def get_lr(self):
                return [base_lr * 0.5 ** self.last_epoch for base_lr in self.base_lrs]

        optimizer = lib.optim.SGD([lib.nn.Parameter(lib.zeros(2))], lr=0.8)
        scheduler = Halving(optimizer)
        seen = [scheduler.get_last_lr()[0]]
        for _ in range(3):
            optimizer.step()
            scheduler.step()
            seen.append(optimizer.param_groups[0]["lr"])
        return seen

    assert halving(chainrule) == halving(torch)


@pytest.mark.parametrize("dtype", ["int64", "int32", "int16", "int8", "uint8"])
def test_float_to_integer_cast_of_nan_and_infinity_is_silent(dtype):
    # x-transformers' relative-position buckets take .long() of log(0) = -inf (masked away after):
    # torch says nothing; the values themselves are the platform's (x86: the integer "indefinite")
    values = [float("-inf"), float("nan"), 3.7, float("inf"), -3.7, 1e20, 300.7, -129.0]
    theirs = torch.tensor(values).to(getattr(torch, dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mine = chainrule.tensor(values).to(getattr(chainrule, dtype))
    assert mine.dtype == getattr(chainrule, dtype)
    in_range = np.isfinite(values) & (np.abs(values) < 100)  # the rest is the platform's cast
    np.testing.assert_array_equal(mine.numpy()[in_range], theirs.numpy()[in_range])


def test_deepcopy_of_a_non_leaf_tensor_refuses_with_torchs_message():
    # torch-ema deep-copies its state dict, which holds clones of parameters after store()
    def attempt(lib):
        weight = lib.ones(3, requires_grad=True)
        with pytest.raises(RuntimeError) as refusal:
            copy.deepcopy({"collected": [weight.clone()]})
        return str(refusal.value)

    assert attempt(chainrule) == attempt(torch)
    leaf = chainrule.ones(3, requires_grad=True)
    assert copy.deepcopy(leaf).requires_grad


@pytest.mark.parametrize("mask_dtype", ["int64", "int32", "int16", "int8", "uint8", "float32", "float64", "float16", "bfloat16"])
def test_masked_fill_with_a_non_boolean_mask_names_the_dtype_as_torch(mask_dtype):
    # torch's message streams the C++ type name ("long int", "c10::Half"), not the dtype's
    def refusal(lib, inplace):
        target, mask = lib.zeros(3), lib.ones(3, dtype=getattr(lib, mask_dtype))
        with pytest.raises(RuntimeError) as raised:
            (target.masked_fill_ if inplace else target.masked_fill)(mask, 1.0)
        return str(raised.value)

    for inplace in (False, True):
        assert refusal(chainrule, inplace) == refusal(torch, inplace)


def _attention_inputs(lib, batch_dims=(2, 2), length=4, source=5, dim=3, dtype="float32"):
    rng = np.random.default_rng(7)
    return [lib.tensor(rng.standard_normal((*batch_dims, n, dim)), dtype=getattr(lib, dtype), requires_grad=True)
            for n in (length, source, source)]


def _mask_with_a_blind_query(lib, kind):
    # query 1 may see no key (a padding query of a left-padded batch); the rest see some keys
    keep = np.ones((4, 5), dtype=bool)
    keep[1] = False
    keep[2, 3:] = False
    if kind == "bool":
        return lib.tensor(keep)
    return lib.tensor(np.where(keep, 0.0, -np.inf).astype(np.float32))


@pytest.mark.parametrize("kind", ["bool", "float"])
@pytest.mark.parametrize("batch_dims", [(2, 2), (3,)])
def test_attention_query_with_every_key_masked_gives_zeros_as_torch(kind, batch_dims):
    # torch >= 2.5 uses a "safe" softmax in every scaled_dot_product_attention kernel: a query that may
    # attend to nothing gets zeros (and a zero gradient), not NaN
    results = {}
    for lib in (torch, chainrule):
        q, k, v = _attention_inputs(lib, batch_dims)
        out = lib.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=_mask_with_a_blind_query(lib, kind))
        (out * out).sum().backward()
        results[lib.__name__] = [t.detach().numpy() for t in (out, q.grad, k.grad, v.grad)]
    for mine, theirs in zip(results["chainrule"], results["torch"]):
        assert not np.isnan(mine).any()
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
    assert (results["chainrule"][0][..., 1, :] == 0).all()


def test_attention_with_a_blind_query_passes_gradcheck_in_float64():
    q, k, v = _attention_inputs(chainrule, (2,), dtype="float64")
    mask = _mask_with_a_blind_query(chainrule, "bool")

    def attend(q, k, v):
        return chainrule.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    assert chainrule.autograd.gradcheck(attend, (q, k, v))


@pytest.mark.parametrize("need_weights", [True, False])
def test_multihead_attention_blind_query_follows_torchs_path(need_weights):
    # torch: with the weights asked for, its own softmax (NaN on a blind query); without, it is
    # scaled_dot_product_attention (zeros)
    keep = np.ones((3, 3), dtype=bool)
    keep[1] = False
    outputs = {}
    for lib in (torch, chainrule):
        lib.manual_seed(0)
        attention = lib.nn.MultiheadAttention(4, 2, batch_first=True)
        x = lib.tensor(np.random.default_rng(3).standard_normal((2, 3, 4)).astype(np.float32))
        out, _ = attention(x, x, x, attn_mask=lib.tensor(~keep), need_weights=need_weights)
        outputs[lib.__name__] = out.detach().numpy()
    np.testing.assert_allclose(outputs["chainrule"], outputs["torch"], rtol=1e-5, atol=1e-6)
    assert np.isnan(outputs["chainrule"][:, 1]).all() == need_weights
