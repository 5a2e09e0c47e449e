"""Fixes found by the s25 programs of the progE lane (bert_mlm, cyclegan_lite, perceiver_io,
pruning_finetune, mamba_selective_scan), each compared with torch."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _both(fn):
    """fn(module) on torch and on chainrule, with the same float input; its results as arrays."""
    x = np.sin(np.arange(2 * 4 * 5 * 5, dtype=np.float32)).reshape(2, 4, 5, 5)
    return [fn(lib, x) for lib in (torch, chainrule)]


NORMS_WITHOUT_AFFINE = {
    "instance_norm": lambda lib, x: lib.nn.functional.instance_norm(x),
    "layer_norm": lambda lib, x: lib.nn.functional.layer_norm(x, x.shape[-1:]),
    "batch_norm": lambda lib, x: lib.nn.functional.batch_norm(x, None, None, training=True),
    "group_norm": lambda lib, x: lib.nn.functional.group_norm(x, 2),
    "InstanceNorm2d": lambda lib, x: lib.nn.InstanceNorm2d(4)(x),
    "LayerNorm(elementwise_affine=False)": lambda lib, x: lib.nn.LayerNorm(5, elementwise_affine=False)(x),
}


@pytest.mark.parametrize("norm", sorted(NORMS_WITHOUT_AFFINE))
def test_norm_output_written_in_place_keeps_torchs_gradient(norm):
    # CycleGAN's ResnetGenerator: InstanceNorm2d (no affine) then nn.ReLU(True). torch saves the
    # statistics, not the output, so the in-place ReLU is allowed; chainrule saved the output and
    # raised "modified by an inplace operation" (group_norm's gradient was silently wrong instead)
    def run(lib, x):
        leaf = lib.tensor(x, requires_grad=True)
        out = NORMS_WITHOUT_AFFINE[norm](lib, leaf)
        out.relu_()
        weights = lib.cos(lib.arange(out.numel(), dtype=lib.float32)).reshape(out.shape)
        (out * weights).sum().backward()
        return out.detach().numpy(), leaf.grad.numpy()

    (want_out, want_grad), (got_out, got_grad) = _both(run)
    np.testing.assert_allclose(got_out, want_out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_grad, want_grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("norm", ["instance_norm", "group_norm"])
def test_norm_output_view_written_in_place_keeps_torchs_gradient(norm):
    # a write through a view of the output counts too (the views share its version counter)
    def run(lib, x):
        leaf = lib.tensor(x, requires_grad=True)
        out = NORMS_WITHOUT_AFFINE[norm](lib, leaf)
        out[:, 1].mul_(3.0)
        (out * out * lib.linspace(-1.0, 2.0, 5)).sum().backward()
        return leaf.grad.numpy()

    want, got = _both(run)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_norm_input_written_in_place_still_refused_as_torch():
    # the input is still saved: writing it in place after the forward is torch's RuntimeError
    messages = []
    for lib in (torch, chainrule):
        leaf = lib.ones(2, 3, 4, requires_grad=True)
        x = leaf * lib.arange(4.0)
        out = lib.nn.functional.instance_norm(x)
        x.add_(1.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation") as info:
            out.sum().backward()
        messages.append(str(info.value).split(":")[0])
    assert messages[0] == messages[1]


def test_instance_norm_relu_inplace_generator_block_trains_as_torch():
    # the ResnetBlock pattern end to end: reflection pad, conv, InstanceNorm2d, ReLU(True), a skip
    def run(lib, x):
        lib.manual_seed(0)
        block = lib.nn.Sequential(lib.nn.ReflectionPad2d(1), lib.nn.Conv2d(4, 4, 3), lib.nn.InstanceNorm2d(4),
                                  lib.nn.ReLU(True))
        with lib.no_grad():
            for p in block.parameters():
                p.copy_(lib.linspace(-0.3, 0.3, p.numel()).reshape(p.shape))
        inp = lib.tensor(x)
        (inp + block(inp)).pow(2).mean().backward()
        return block[1].weight.grad.numpy()

    want, got = _both(run)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
