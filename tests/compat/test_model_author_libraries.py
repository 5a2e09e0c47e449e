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


def _causal_with_mask(lib, case):
    # returns the attention output, or the RuntimeError's text where the library refuses the pair
    rng = np.random.default_rng(11)
    shapes = {"q": (2, 4, 5, 3), "k": (2, 4, 6, 3), "v": (2, 4, 6, 3)}
    mask = rng.random((5, 6)) > 0.3
    kwargs = {}
    if case == "value_head_size":
        shapes["v"] = (2, 4, 6, 2)
    if case == "grouped":
        shapes["k"] = shapes["v"] = (2, 2, 6, 3)
        kwargs["enable_gqa"] = True
    q, k, v = (lib.tensor(rng.standard_normal(shapes[n]).astype(np.float32)) for n in "qkv")
    if case == "three_d":
        q, k, v = q[0], k[0], v[0]
    if case == "mask_three_d":
        mask = np.broadcast_to(mask, (4, 5, 6)).copy()
    if case == "transposed":
        q = lib.tensor(rng.standard_normal((2, 4, 3, 5)).astype(np.float32)).transpose(-1, -2)
    if case == "float64":
        q, k, v = q.double(), k.double(), v.double()
    if case == "dropout":
        kwargs["dropout_p"] = 0.5
    attend = lib.nn.functional.scaled_dot_product_attention
    try:
        if case == "math_only":
            from importlib import import_module

            attention = import_module(f"{lib.__name__}.nn.attention")
            with attention.sdpa_kernel(attention.SDPBackend.MATH):
                return attend(q, k, v, attn_mask=lib.tensor(mask), is_causal=True).numpy()
        return attend(q, k, v, attn_mask=lib.tensor(mask), is_causal=True, **kwargs).numpy()
    except RuntimeError as refusal:
        return str(refusal)


@pytest.mark.parametrize("case", ["plain", "float64", "grouped", "value_head_size", "three_d", "mask_three_d",
                                  "transposed", "dropout", "math_only"])
def test_explicit_mask_with_is_causal_follows_torchs_cpu_kernel_choice(case):
    # torch 2.13's CPU flash kernel applies both the mask and the (top-left) causal rule; where torch
    # takes the math kernel instead, both refuse the pair with the same message
    mine, theirs = _causal_with_mask(chainrule, case), _causal_with_mask(torch, case)
    if isinstance(theirs, str):
        assert mine == theirs
    else:
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)


def test_sdpa_kernel_sets_the_backend_switches_for_its_block():
    for lib in (torch, chainrule):
        attention = __import__(f"{lib.__name__}.nn.attention", fromlist=["sdpa_kernel"])
        switches = lib.backends.cuda
        with attention.sdpa_kernel([attention.SDPBackend.MATH, attention.SDPBackend.CUDNN_ATTENTION]):
            assert [switches.flash_sdp_enabled(), switches.math_sdp_enabled(), switches.mem_efficient_sdp_enabled(),
                    switches.cudnn_sdp_enabled()] == [False, True, False, True]
        assert switches.flash_sdp_enabled() and switches.math_sdp_enabled()


_VERSIONS = ["0.1.0", "2.13.0+cpu", "2.13.0", "1.10.0a0", "2.0.0.dev20230101", "2.1.0rc1", "2.1.0.post2", "1!0.5",
             "2.1", "2.1.0-1", "2.1.0+cu121", "2.1.0+cpu.abc", "1.2.0beta3", "parrot"]
_COMPARANDS = [(2, 1), (2,), (0, 1, 0), (2, 13), "2.1", "2.1.0", "0.10", "0.9", "2.13.0", "2.13.0+cpu",
               "2.1.0rc2", "2.1.0.dev1", "parrot", "1!0.1", "2.1.0+cpu.1"]


@pytest.mark.parametrize("version", _VERSIONS)
def test_torch_version_compares_as_torchs(version):
    # libraries gate code on torch.__version__ >= (2, 1) (bitsandbytes, mmengine) or >= "2.1": a
    # plain str refuses the tuple and orders "0.10" below "0.9"
    from torch.torch_version import TorchVersion as Theirs

    from chainrule.torch_version import TorchVersion as Mine

    mine, theirs = Mine(version), Theirs(version)
    assert isinstance(mine, str) and str(mine) == version and hash(mine) == hash(version)
    for other in _COMPARANDS:
        for method in ("__lt__", "__le__", "__eq__", "__ge__", "__gt__", "__ne__"):
            assert getattr(mine, method)(other) == getattr(theirs, method)(other), (version, method, other)


def test_package_version_is_a_torch_version():
    assert isinstance(chainrule.__version__, chainrule.torch_version.TorchVersion)
    assert chainrule.__version__ == chainrule.version.__version__
    assert chainrule.__version__ >= (0, 1) and chainrule.__version__ < "0.10"
    with pytest.raises(TypeError, match="not supported between instances of 'TorchVersion' and 'int'"):
        _ = chainrule.__version__ >= 3
    with pytest.raises(TypeError, match="not supported between instances of 'TorchVersion' and 'int'"):
        _ = torch.__version__ >= 3
