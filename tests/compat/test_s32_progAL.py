"""Convolutional idioms (SegNet unpooling, 3-D video convs, conv/BatchNorm fusion), against torch 2.13.

Found writing the segnet_maxunpool, r2plus1d_video and shufflenet_fusion programs and probing the
idioms around them:

* ``copy.deepcopy`` of a Parameter laid out channels-last (``model.to(memory_format=
  torch.channels_last)``, then ``copy.deepcopy(model)`` or ``fuse_conv_bn_eval``, which deep-copies
  the conv) came back row-major: torch's ``Parameter.__deepcopy__`` clones with
  ``preserve_format``, so the copy keeps the strides;
* ``pickle`` (DataLoader workers, ``mp.Queue``) of a channels-last or transposed tensor or
  Parameter came back row-major, and so did ``share_memory_()`` / ``Module.share_memory()``;
  torch's keep the strides;
* ``Module.to(memory_format=torch.contiguous_format)`` left a channels-last model channels-last,
  and a format of the wrong rank (``channels_last`` on a Conv3d) was skipped, not refused;
* ``parametrizations.weight_norm`` / ``nn.utils.weight_norm`` of a channels-last conv gave a
  channels-last weight; torch's ``_weight_norm`` computes on ``v.contiguous()``;
* ``nn.utils.parameters_to_vector`` took ``reshape(-1)`` of each parameter, so a channels-last
  weight was flattened silently where torch's ``param.view(-1)`` raises its view error.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

LIBS = (torch, chainrule)


def _outcome(fn, lib):
    try:
        return "ok", fn(lib)
    except Exception as error:  # noqa: BLE001 - the class and text are what is compared
        return type(error).__name__, str(error)


def _weights(lib, shape=(6, 4, 3, 3)):
    values = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return lib.nn.Parameter(lib.tensor(values).contiguous(memory_format=lib.channels_last))


@pytest.mark.parametrize("case", ["parameter", "conv", "conv3d", "transposed"])
def test_deepcopy_keeps_a_parameters_strides(case):
    def run(lib):
        if case == "parameter":
            copied = copy.deepcopy(_weights(lib))
        elif case == "conv":
            copied = copy.deepcopy(lib.nn.Conv2d(4, 6, 3).to(memory_format=lib.channels_last)).weight
        elif case == "conv3d":
            conv = lib.nn.Conv3d(2, 3, (1, 3, 3)).to(memory_format=lib.channels_last_3d)
            copied = copy.deepcopy(conv).weight
        else:  # a transposed (dense, non-overlapping) parameter keeps its strides too
            copied = copy.deepcopy(lib.nn.Parameter(lib.ones(3, 5).t()))
        return copied.stride(), type(copied).__name__, copied.requires_grad

    assert run(chainrule) == run(torch)


def test_fuse_conv_bn_eval_of_a_channels_last_conv_stays_channels_last():
    def run(lib):
        lib.manual_seed(0)
        conv = lib.nn.Conv2d(4, 6, 3, padding=1).to(memory_format=lib.channels_last).eval()
        bn = lib.nn.BatchNorm2d(6, eps=1e-3).eval()
        with lib.no_grad():
            bn.running_var.fill_(2.0)
            bn.running_mean.fill_(0.5)
        fused = lib.nn.utils.fusion.fuse_conv_bn_eval(conv, bn)
        x = lib.ones(2, 4, 5, 5).contiguous(memory_format=lib.channels_last)
        out = fused(x)
        return (fused.weight.stride(), fused.weight.is_contiguous(memory_format=lib.channels_last),
                out.is_contiguous(memory_format=lib.channels_last), (out - bn(conv(x))).abs().max().item() < 1e-5)

    assert run(chainrule) == run(torch)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_parameters_to_vector_views_each_parameter(layout):
    def run(lib):
        conv = lib.nn.Conv2d(4, 6, 3)
        if layout == "channels_last":
            conv = conv.to(memory_format=lib.channels_last)
        return _outcome(lambda lib: tuple(lib.nn.utils.parameters_to_vector(conv.parameters()).shape), lib)

    assert run(chainrule) == run(torch)


@pytest.mark.parametrize("start", ["channels_last", "channels_last_3d"])
@pytest.mark.parametrize("target", ["contiguous_format", "channels_last", "channels_last_3d", "preserve_format"])
@pytest.mark.parametrize("module", ["Conv2d", "Conv3d", "Linear"])
def test_module_to_memory_format_converts_every_4d_and_5d_tensor(module, start, target):
    # Module.to(memory_format=contiguous_format) turns a channels-last model back (chainrule kept it
    # channels-last), and a format of the other rank raises Tensor.to's error (chainrule skipped it)
    def run(lib):
        def convert():
            m = lib.nn.Linear(2, 3) if module == "Linear" else getattr(lib.nn, module)(2, 3, 2)
            rank_format = {"Conv2d": "channels_last", "Conv3d": "channels_last_3d"}.get(module)
            if rank_format == start:
                m = m.to(memory_format=getattr(lib, start))
            m.to(memory_format=getattr(lib, target))
            return m.weight.stride(), m.bias.stride()

        return _outcome(lambda lib: convert(), lib)

    assert run(chainrule) == run(torch)


@pytest.mark.parametrize("case", ["channels_last", "channels_last_3d", "transposed", "permuted", "parameter",
                                  "conv", "requires_grad"])
def test_pickle_keeps_a_dense_tensors_strides(case):
    # torch pickles the storage with the strides; chainrule's pickle came back row-major. (A view
    # with gaps, x[:, ::2], still comes back row-major: torch pickles its whole storage.)
    import pickle

    def run(lib):
        values = lib.arange(2 * 3 * 4 * 5 * 2, dtype=lib.float32)
        if case == "channels_last":
            t = values[:120].view(2, 3, 4, 5).contiguous(memory_format=lib.channels_last)
        elif case == "channels_last_3d":
            t = values.view(2, 3, 4, 5, 2).contiguous(memory_format=lib.channels_last_3d)
        elif case == "transposed":
            t = values[:12].view(3, 4).t()
        elif case == "permuted":
            t = values.view(2, 3, 4, 10).permute(2, 0, 3, 1)
        elif case == "parameter":
            t = lib.nn.Parameter(values[:120].view(2, 3, 4, 5).contiguous(memory_format=lib.channels_last))
        elif case == "conv":
            t = pickle.loads(pickle.dumps(lib.nn.Conv2d(3, 4, 2).to(memory_format=lib.channels_last))).weight
        else:
            t = values[:12].view(3, 4).t().requires_grad_()
        back = pickle.loads(pickle.dumps(t))
        return type(back).__name__, back.stride(), back.requires_grad, back.tolist() == t.tolist()

    assert run(chainrule) == run(torch)


@pytest.mark.parametrize("edition", ["parametrizations", "deprecated"])
@pytest.mark.parametrize("dim", [0, 1, None])
def test_weight_norm_of_a_channels_last_conv_is_row_major(edition, dim):
    # torch._weight_norm computes on v.contiguous(): chainrule's weight stayed channels-last
    import warnings

    def run(lib):
        lib.manual_seed(0)
        conv = lib.nn.Conv2d(4, 6, 3).to(memory_format=lib.channels_last)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the deprecated edition's FutureWarning
            if edition == "parametrizations":
                conv = lib.nn.utils.parametrizations.weight_norm(conv, dim=dim)
            else:
                conv = lib.nn.utils.weight_norm(conv, dim=dim)
        x = lib.ones(1, 4, 5, 5).contiguous(memory_format=lib.channels_last)
        out = conv(x)
        out.sum().backward()
        grads = [p.grad.stride() for p in conv.parameters()]
        return conv.weight.stride(), out.stride(), grads, round(out.sum().item(), 3)

    assert run(chainrule) == run(torch)


@pytest.mark.parametrize("case", ["tensor", "transposed", "module"])
def test_share_memory_keeps_the_strides(case):
    # torch moves the storage into shared memory as it is; chainrule's copy came back row-major
    def run(lib):
        if case == "tensor":
            t = lib.arange(120.0).view(2, 3, 4, 5).contiguous(memory_format=lib.channels_last).share_memory_()
        elif case == "transposed":
            t = lib.arange(12.0).view(3, 4).t().share_memory_()
        else:
            t = lib.nn.Conv2d(3, 4, 2).to(memory_format=lib.channels_last).share_memory().weight
        return t.stride(), t.is_shared(), t.flatten().tolist()[:7] if case != "module" else t.shape

    assert run(chainrule)[:2] == run(torch)[:2]
    if case != "module":
        assert run(chainrule)[2] == run(torch)[2]
