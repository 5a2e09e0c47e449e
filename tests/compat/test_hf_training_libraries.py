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
