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
