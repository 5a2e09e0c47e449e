"""``memory_format``: channels-last tensors as torch lays them out, compared with torch."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _both(build):
    return build(chainrule), build(torch)


def _layout_facts(lib, t):
    return (t.is_contiguous(), t.is_contiguous(memory_format=lib.channels_last))


def test_to_contiguous_and_clone_lay_out_channels_last_as_torch_does():
    values = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    for lib in (chainrule, torch):
        x = lib.tensor(values, requires_grad=True)
        y = x.to(memory_format=lib.channels_last)
        facts = [_layout_facts(lib, t) for t in (
            x, y, x.contiguous(memory_format=lib.channels_last), y.clone(),
            y.clone(memory_format=lib.contiguous_format), y.contiguous())]
        if lib is chainrule:
            ours = facts
            np.testing.assert_array_equal(y.detach().numpy(), values)  # same shape and values
            assert y.detach().numpy().strides == (240, 4, 60, 12)
        else:
            assert ours == facts


def test_gradient_passes_through_a_channels_last_copy():
    values = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
    weight = np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32)
    grads = []
    for lib in (chainrule, torch):
        x = lib.tensor(values, requires_grad=True)
        w = lib.tensor(weight)
        out = lib.nn.functional.conv2d(x.to(memory_format=lib.channels_last), w)
        (out * out).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-4)


def test_module_to_channels_last_converts_its_4d_tensors_only():
    ours, theirs = _both(lambda lib: lib.nn.Sequential(lib.nn.Conv2d(3, 4, 3), lib.nn.Flatten(), lib.nn.Linear(8, 2))
                         .to(memory_format=lib.channels_last))
    for lib, model in ((chainrule, ours), (torch, theirs)):
        assert model[0].weight.is_contiguous(memory_format=lib.channels_last)
        assert isinstance(model[0].weight, lib.nn.Parameter)
        assert model[0].bias.is_contiguous() and model[2].weight.is_contiguous()


def test_channels_last_needs_a_4d_tensor_and_view_refuses_its_strides_as_torch():
    for lib in (chainrule, torch):
        with pytest.raises(RuntimeError, match="required rank 4 tensor to use channels_last format"):
            lib.zeros(2, 3).contiguous(memory_format=lib.channels_last)
        x = lib.zeros(2, 3, 4, 5).to(memory_format=lib.channels_last)
        assert tuple(x.reshape(2, -1).shape) == (2, 60)
        with pytest.raises(RuntimeError, match="view size is not compatible"):
            x.view(2, -1)
        assert not lib.zeros(2, 3, 4).is_contiguous(memory_format=lib.channels_last)


def test_channels_last_3d():
    for lib in (chainrule, torch):
        x = lib.zeros(2, 3, 4, 5, 6).to(memory_format=lib.channels_last_3d)
        assert x.is_contiguous(memory_format=lib.channels_last_3d) and not x.is_contiguous()
