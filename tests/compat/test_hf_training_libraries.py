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
