"""What Hugging Face diffusers, peft and accelerate reach for (session 14 trial), compared with
torch 2.13 without needing those libraries."""

import pytest
import torch

import chainrule


@pytest.mark.parametrize("other", ["cpu", "cpu:0", "cuda", "npu", "bogus", 3, None])
def test_device_never_equals_a_string_or_other_object(other):
    # accelerate's send_to_device asks ``device == "npu"`` of every device: torch says False (no
    # parse, no error), even for the device's own name
    for name in ("cpu", "cuda:0"):
        mine, theirs = chainrule.device(name), torch.device(name)
        assert (mine == other) is (theirs == other)
        assert (mine != other) is (theirs != other)


def test_device_equality_between_devices_is_unchanged():
    pairs = [("cpu", "cpu"), ("cpu", "cpu:0"), ("cuda", "cuda:0"), ("cuda:1", "cuda:1")]
    for a, b in pairs:
        assert (chainrule.device(a) == chainrule.device(b)) is (torch.device(a) == torch.device(b))


def test_compiled_module_class_is_found_under_dynamo_eval_frame():
    # accelerate's is_compiled_module: isinstance(model, torch._dynamo.eval_frame.OptimizedModule)
    import torch._dynamo  # noqa: F401  (torch binds the submodule on import)

    import chainrule._dynamo  # noqa: F401

    for lib in (torch, chainrule):
        compiled = lib.compile(lib.nn.Linear(2, 2))
        assert isinstance(compiled, lib._dynamo.eval_frame.OptimizedModule)
        assert lib._dynamo.eval_frame.OptimizedModule is lib._dynamo.OptimizedModule
        assert not isinstance(lib.nn.Linear(2, 2), lib._dynamo.eval_frame.OptimizedModule)
        assert isinstance(compiled._orig_mod, lib.nn.Linear)


def test_fsdp_wrapper_module_path_holds_the_package_names():
    # accelerate: from torch.distributed.fsdp.fully_sharded_data_parallel import FullyShardedDataParallel
    import torch.distributed.fsdp.fully_sharded_data_parallel as theirs

    import chainrule.distributed.fsdp as package
    import chainrule.distributed.fsdp.fully_sharded_data_parallel as mine

    for name in ("FullyShardedDataParallel", "ShardingStrategy", "StateDictType", "BackwardPrefetch"):
        assert hasattr(theirs, name)
        assert getattr(mine, name) is getattr(package, name)
    assert not isinstance(chainrule.nn.Linear(2, 2), mine.FullyShardedDataParallel)


SUB_BYTE = [f"{kind}{bits}" for kind in ("uint", "int") for bits in range(1, 8)]


@pytest.mark.parametrize("name", SUB_BYTE)
def test_sub_byte_integer_dtypes_exist_with_torchs_properties(name):
    # diffusers' torchao quantiser lists torch.uint1..uint7 at import
    mine, theirs = getattr(chainrule, name), getattr(torch, name)
    assert (mine.is_floating_point, mine.is_complex, mine.is_signed, mine.itemsize) == (
        theirs.is_floating_point, theirs.is_complex, theirs.is_signed, theirs.itemsize)
    assert repr(mine) == repr(theirs).replace("torch.", "chainrule.") and str(mine) == repr(mine)
    import pickle

    assert pickle.loads(pickle.dumps(mine)) is mine
    assert chainrule.promote_types(mine, mine) is mine


def test_sub_byte_integer_promotion_refuses_as_torch():
    for a, b in [("uint4", "int8"), ("uint4", "uint2")]:
        with pytest.raises(RuntimeError) as theirs:
            torch.promote_types(getattr(torch, a), getattr(torch, b))
        with pytest.raises(RuntimeError) as mine:
            chainrule.promote_types(getattr(chainrule, a), getattr(chainrule, b))
        assert str(mine.value) == str(theirs.value)


def test_sub_byte_integer_tensors_are_not_stored():
    with pytest.raises(NotImplementedError, match="UInt4"):
        chainrule.zeros(2, dtype=chainrule.uint4)


def test_to_none_is_the_default_device_and_dtype():
    # diffusers' set_timesteps(n, device=None) calls torch.from_numpy(...).to(None)
    for lib in (torch, chainrule):
        t = lib.ones(2)
        assert t.to(None) is t and t.to(None, None) is t
        assert t.to(None, lib.float64).dtype == lib.float64
        assert t.to(None, copy=True) is not t
        with pytest.raises(TypeError):
            t.to(None, None, None)


def _autocast_gradients(lib, build):
    import numpy as np

    rng = np.random.default_rng(3)
    weight = lib.tensor(rng.standard_normal((16, 8)).astype(np.float32), requires_grad=True)
    bias = lib.tensor(rng.standard_normal(16).astype(np.float32), requires_grad=True)
    x = lib.tensor(rng.standard_normal((6, 8)).astype(np.float32), requires_grad=True)
    upstream = lib.tensor(rng.standard_normal((6, 16)).astype(np.float32))
    with lib.autocast("cpu", dtype=lib.bfloat16):
        out = build(lib, x, weight, bias)
    out.float().backward(upstream)
    return [t.grad.numpy() for t in (weight, bias, x)]


@pytest.mark.parametrize("name, build", [
    ("linear", lambda lib, x, w, b: lib.nn.functional.linear(x, w, b)),
    ("linear_gelu", lambda lib, x, w, b: lib.nn.functional.gelu(lib.nn.functional.linear(x, w, b))),
    ("matmul_add", lambda lib, x, w, b: x @ w.t() + b),
])
def test_cpu_autocast_gradients_come_back_through_the_lowered_dtype(name, build):
    # accelerate's mixed_precision='bf16' on the CPU: torch's autocast casts a float32 leaf with a
    # recorded copy, so its gradient leaves the op in bfloat16 (on the bfloat16 grid) and is cast
    # back; chainrule's gradients were float32 products of the unrounded values
    import numpy as np

    theirs, mine = _autocast_gradients(torch, build), _autocast_gradients(chainrule, build)
    for expected, got in zip(theirs, mine):
        assert got.dtype == expected.dtype == np.float32
        # float32 sums (the bias) may differ in the last bit; a missed bfloat16 rounding is 1e-3
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6 * float(np.abs(expected).max()))


def test_cpu_autocast_records_the_cast_of_a_float32_input():
    for lib in (torch, chainrule):
        w = lib.ones(4, 3, requires_grad=True)
        with lib.autocast("cpu", dtype=lib.bfloat16):
            y = lib.mm(lib.ones(2, 3), w.t())
        names = {fn.name() for fn, _ in y.grad_fn.next_functions if fn is not None}
        assert names in ({"TBackward0"}, {"ToCopyBackward0"})
        w_grad_path = y.grad_fn
        while w_grad_path is not None and w_grad_path.name() != "ToCopyBackward0":
            w_grad_path = next((fn for fn, _ in w_grad_path.next_functions if fn is not None), None)
        assert w_grad_path is not None, lib.__name__


@pytest.mark.parametrize("affine", [False, True])
def test_bfloat16_layer_norm_input_gradient_uses_statistics_saved_in_bfloat16(affine):
    # torch saves a bfloat16 layer norm's row means and 1/σ in bfloat16 and recomputes x̂ from them
    # in its backward; chainrule used the float32 ones, one bfloat16 step off (accelerate's bf16 loop)
    import numpy as np

    rng = np.random.default_rng(0)
    data = [rng.standard_normal(shape).astype(np.float32) for shape in ((3, 6, 16), (3, 6, 16), (16,), (16,))]
    got = {}
    for lib in (torch, chainrule):
        x, upstream, weight, bias = (lib.tensor(a).to(lib.bfloat16) for a in data)
        x.requires_grad_()
        out = lib.nn.functional.layer_norm(x, (16,), weight if affine else None, bias if affine else None)
        out.backward(upstream)
        got[lib] = (out.float().detach().numpy(), x.grad.float().numpy())
    for expected, mine in zip(got[torch], got[chainrule]):
        np.testing.assert_array_equal(mine, expected)


def test_layer_norm_gradients_in_float32_are_unchanged():
    from chainrule.autograd.gradcheck import gradcheck

    x = chainrule.randn(2, 3, 5, dtype=chainrule.float64, requires_grad=True)
    weight = chainrule.randn(5, dtype=chainrule.float64, requires_grad=True)
    assert gradcheck(lambda a, w: chainrule.nn.functional.layer_norm(a, (5,), w, None), (x, weight))
