"""Session 29, lane progR (self-supervised programs): gaps the programs' idioms showed, each checked
against torch 2.13 on the same inputs."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- re-binding a registered buffer
# MoCo re-binds its queue buffer (self.queue = F.normalize(self.queue, dim=0)) and DINO its centre;
# a non-tensor assigned to a buffer's name is refused with torch's TypeError text.
def _module_with_buffer(lib):
    module = lib.nn.Module()
    module.register_buffer("queue", lib.randn(3, 5))
    return module


@pytest.mark.parametrize("value", [3, 2.5, "queue", [1.0, 2.0]])
def test_non_tensor_assigned_to_a_buffer_raises_torchs_type_error(value):
    with pytest.raises(TypeError) as expected:
        _module_with_buffer(torch).queue = value
    with pytest.raises(TypeError) as got:
        _module_with_buffer(chainrule).queue = value
    assert str(got.value) == str(expected.value)


def test_tensor_reassigned_to_a_buffer_stays_a_buffer_like_torch():
    for lib in (torch, chainrule):
        module = _module_with_buffer(lib)
        module.register_buffer("centre", lib.zeros(1, 4), persistent=False)
        module.queue = lib.nn.functional.normalize(module.queue, dim=0)
        module.centre = module.centre * 0.9 + lib.ones(1, 4) * 0.1
        assert sorted(dict(module.named_buffers())) == ["centre", "queue"]
        assert list(module.state_dict()) == ["queue"]
        assert module.centre.flatten().tolist() == pytest.approx([0.1] * 4)
