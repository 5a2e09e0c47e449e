"""Layers vs torch with torch's weights copied in: outputs and every gradient, train and eval."""

import math

import numpy as np
import pytest

import chainrule
import chainrule.nn as nn
import chainrule.nn.functional as F

from ..ops.harness import OpCase, check_gradients, compare_with_torch, noncontig, parametrize, randn
from .test_module import assert_close, copy_from_torch

torch = pytest.importorskip("torch")


def run_pair(build, *inputs, train=True, rtol=1e-4, atol=1e-5, steps=1, input_grad=True):
    """Build the layer in both libraries, copy torch's state in, compare outputs and gradients."""
    ours, theirs = build(chainrule), build(torch)
    copy_from_torch(ours, theirs)
    ours.train(train)
    theirs.train(train)
    for step in range(steps):
        xs_o, xs_t = [], []
        for x in inputs:
            x = x + step if x.dtype.kind == "f" else x
            wants = input_grad and x.dtype.kind == "f"
            xs_o.append(chainrule.tensor(x, requires_grad=wants))
            xs_t.append(torch.tensor(x, requires_grad=wants))
        out_o, out_t = ours(*xs_o), theirs(*xs_t)
        assert_close(out_o, out_t, rtol, atol, msg=f"{type(ours).__name__} forward (step {step})")
        if out_t.requires_grad:
            cot = np.random.default_rng(step).standard_normal(tuple(out_t.shape)).astype(np.float32)
            out_o.backward(chainrule.tensor(cot))
            out_t.backward(torch.tensor(cot))
            for k, (a, b) in enumerate(zip(xs_o, xs_t)):
                if b.requires_grad:
                    assert_close(a.grad, b.grad, rtol * 10, atol * 10, msg=f"input {k} grad")
            for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
                if q.grad is None:
                    assert p.grad is None or not p.grad.numpy().any(), name
                else:
                    assert_close(p.grad, q.grad, rtol * 10, atol * 10, msg=f"{name} grad (step {step})")
    for (name, b), (_, c) in zip(ours.named_buffers(), theirs.named_buffers()):
        assert_close(b, c, rtol, atol, msg=f"buffer {name}")
    return ours, theirs


X2 = randn(6, 5).astype(np.float32)
X3 = randn(2, 3, 5, seed=1).astype(np.float32)
IMG = randn(2, 4, 7, 6, seed=2).astype(np.float32)
SEQ = randn(2, 4, 9, seed=3).astype(np.float32)
VOL = randn(1, 2, 5, 4, 6, seed=4).astype(np.float32)

LAYERS = [
    ("Linear", lambda lib: lib.nn.Linear(5, 3), [X2]),
    ("Linear3d", lambda lib: lib.nn.Linear(5, 4), [X3]),
    ("Linear1d", lambda lib: lib.nn.Linear(5, 2, bias=False), [randn(5).astype(np.float32)]),
    ("LinearNoncontig", lambda lib: lib.nn.Linear(6, 2), [noncontig(randn(5, 6)).astype(np.float32)]),
    ("Bilinear", lambda lib: lib.nn.Bilinear(5, 3, 2), [X2, randn(6, 3, seed=9).astype(np.float32)]),
    ("Identity", lambda lib: lib.nn.Identity(3, k=1), [X2]),
    ("Flatten", lambda lib: lib.nn.Flatten(), [IMG]),
    ("Flatten-neg", lambda lib: lib.nn.Flatten(0, -2), [IMG]),
    ("Unflatten", lambda lib: lib.nn.Unflatten(1, (5, 1)), [X2]),
    ("Conv1d", lambda lib: lib.nn.Conv1d(4, 6, 3, stride=2, padding=1), [SEQ]),
    ("Conv1d-same-dil", lambda lib: lib.nn.Conv1d(4, 4, 3, padding="same", dilation=2, groups=2), [SEQ]),
    ("Conv1d-reflect", lambda lib: lib.nn.Conv1d(4, 3, 4, padding=2, padding_mode="reflect"), [SEQ]),
    ("Conv1d-circular-same", lambda lib: lib.nn.Conv1d(4, 3, 4, padding="same", padding_mode="circular"), [SEQ]),
    ("Conv2d", lambda lib: lib.nn.Conv2d(4, 5, 3), [IMG]),
    ("Conv2d-stride-pad", lambda lib: lib.nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 2), bias=False), [IMG]),
    ("Conv2d-groups-dil", lambda lib: lib.nn.Conv2d(4, 8, 3, dilation=2, groups=4), [IMG]),
    ("Conv2d-valid", lambda lib: lib.nn.Conv2d(4, 2, 2, padding="valid"), [IMG]),
    ("Conv2d-replicate", lambda lib: lib.nn.Conv2d(4, 3, 3, padding=1, padding_mode="replicate"), [IMG]),
    ("Conv2d-circular", lambda lib: lib.nn.Conv2d(4, 3, 3, padding=(1, 2), padding_mode="circular"), [IMG]),
    ("Conv2d-same-reflect", lambda lib: lib.nn.Conv2d(4, 3, (2, 3), padding="same", padding_mode="reflect"), [IMG]),
    ("Conv2d-unbatched", lambda lib: lib.nn.Conv2d(4, 2, 3), [IMG[0]]),
    ("Conv3d", lambda lib: lib.nn.Conv3d(2, 3, 2, padding=1), [VOL]),
    ("ConvTranspose1d", lambda lib: lib.nn.ConvTranspose1d(4, 3, 3, stride=2, padding=1, output_padding=1), [SEQ]),
    ("ConvTranspose2d", lambda lib: lib.nn.ConvTranspose2d(4, 2, 3, stride=2), [IMG]),
    ("ConvTranspose2d-groups", lambda lib: lib.nn.ConvTranspose2d(4, 6, 2, groups=2, dilation=2, bias=False), [IMG]),
    ("MaxPool1d", lambda lib: lib.nn.MaxPool1d(3, 2, padding=1), [SEQ]),
    ("MaxPool2d", lambda lib: lib.nn.MaxPool2d(2), [IMG]),
    ("MaxPool2d-ceil", lambda lib: lib.nn.MaxPool2d((3, 2), stride=2, ceil_mode=True), [IMG]),
    ("AvgPool1d", lambda lib: lib.nn.AvgPool1d(3, 2), [SEQ]),
    ("AvgPool2d", lambda lib: lib.nn.AvgPool2d(2, padding=1, count_include_pad=False), [IMG]),
    ("AdaptiveAvgPool1d", lambda lib: lib.nn.AdaptiveAvgPool1d(4), [SEQ]),
    ("AdaptiveAvgPool2d", lambda lib: lib.nn.AdaptiveAvgPool2d((3, 1)), [IMG]),
    ("AdaptiveAvgPool2d-1", lambda lib: lib.nn.AdaptiveAvgPool2d(1), [IMG]),
    ("AdaptiveMaxPool2d", lambda lib: lib.nn.AdaptiveMaxPool2d((2, 3)), [IMG]),
    ("LayerNorm", lambda lib: lib.nn.LayerNorm(5), [X3]),
    ("LayerNorm-2d", lambda lib: lib.nn.LayerNorm([3, 5], eps=1e-3), [X3]),
    ("LayerNorm-noaffine", lambda lib: lib.nn.LayerNorm(5, elementwise_affine=False), [X2]),
    ("LayerNorm-nobias", lambda lib: lib.nn.LayerNorm(5, bias=False), [X2]),
    ("GroupNorm", lambda lib: lib.nn.GroupNorm(2, 4), [IMG]),
    ("GroupNorm-seq", lambda lib: lib.nn.GroupNorm(4, 4, affine=False), [SEQ]),
    ("InstanceNorm1d", lambda lib: lib.nn.InstanceNorm1d(4, affine=True), [SEQ]),
    ("InstanceNorm2d", lambda lib: lib.nn.InstanceNorm2d(4), [IMG]),
    ("Embedding", lambda lib: lib.nn.Embedding(7, 3), [np.array([[0, 2, 2], [6, 1, 2]])]),
    ("Embedding-pad", lambda lib: lib.nn.Embedding(7, 3, padding_idx=2), [np.array([[0, 2, 2], [6, 1, 2]])]),
    ("Embedding-neg-pad", lambda lib: lib.nn.Embedding(5, 2, padding_idx=-1), [np.array([4, 0, 4, 1])]),
    ("Dropout-eval", lambda lib: lib.nn.Dropout(0.3), [X2]),
    ("PReLU", lambda lib: lib.nn.PReLU(4), [IMG]),
    ("ZeroPad2d", lambda lib: lib.nn.ZeroPad2d((1, 0, 2, 1)), [IMG]),
    ("ConstantPad1d", lambda lib: lib.nn.ConstantPad1d(2, -1.5), [SEQ]),
    ("ReflectionPad2d", lambda lib: lib.nn.ReflectionPad2d(2), [IMG]),
    ("ReplicationPad1d", lambda lib: lib.nn.ReplicationPad1d((3, 1)), [SEQ]),
    ("CircularPad2d", lambda lib: lib.nn.CircularPad2d(1), [IMG]),
    ("PixelShuffle", lambda lib: lib.nn.PixelShuffle(2), [IMG]),
    ("PixelUnshuffle", lambda lib: lib.nn.PixelUnshuffle(2), [randn(2, 3, 4, 6).astype(np.float32)]),
    ("Softmax2d", lambda lib: lib.nn.Softmax2d(), [IMG]),
    ("CosineSimilarity", lambda lib: lib.nn.CosineSimilarity(dim=-1), [X2, randn(6, 5, seed=5).astype(np.float32)]),
    ("PairwiseDistance", lambda lib: lib.nn.PairwiseDistance(p=3.0), [X2, randn(6, 5, seed=5).astype(np.float32)]),
    ("RMSNorm", lambda lib: lib.nn.RMSNorm(5), [X3]),
    ("Upsample-nearest", lambda lib: lib.nn.Upsample(scale_factor=2), [IMG]),
    ("Upsample-bilinear", lambda lib: lib.nn.Upsample(size=(9, 13), mode="bilinear"), [IMG]),
    ("UpsamplingBilinear2d", lambda lib: lib.nn.UpsamplingBilinear2d(scale_factor=1.5), [IMG]),
    ("UpsamplingNearest2d", lambda lib: lib.nn.UpsamplingNearest2d(size=(5, 4)), [IMG]),
    ("Unfold", lambda lib: lib.nn.Unfold(2, padding=1), [IMG]),
    ("Fold", lambda lib: lib.nn.Fold((4, 5), 2), [randn(2, 12, 12, seed=7).astype(np.float32)]),
    ("ChannelShuffle", lambda lib: lib.nn.ChannelShuffle(2), [IMG]),
    ("LPPool2d", lambda lib: lib.nn.LPPool2d(2, 2), [IMG]),
    ("LPPool1d", lambda lib: lib.nn.LPPool1d(3, 3, stride=2), [SEQ]),
    ("LocalResponseNorm", lambda lib: lib.nn.LocalResponseNorm(3, alpha=0.1), [IMG]),
    ("LocalResponseNorm-seq", lambda lib: lib.nn.LocalResponseNorm(2), [SEQ]),
    ("RReLU-eval", lambda lib: lib.nn.RReLU(0.1, 0.3), [X2]),
    ("AlphaDropout-eval", lambda lib: lib.nn.AlphaDropout(0.2), [X2]),
    ("Dropout2d-eval", lambda lib: lib.nn.Dropout2d(0.2), [IMG]),
]


@pytest.mark.parametrize("name,build,inputs", LAYERS, ids=[c[0] for c in LAYERS])
def test_layer_matches_torch(name, build, inputs):
    run_pair(build, *inputs, train=not name.endswith("-eval"))


ACTIVATIONS = [
    lambda lib: lib.nn.ReLU(), lambda lib: lib.nn.ReLU6(), lambda lib: lib.nn.LeakyReLU(0.2),
    lambda lib: lib.nn.ELU(alpha=0.5), lambda lib: lib.nn.CELU(), lambda lib: lib.nn.SELU(),
    lambda lib: lib.nn.GELU(), lambda lib: lib.nn.GELU("tanh"), lambda lib: lib.nn.SiLU(),
    lambda lib: lib.nn.Mish(), lambda lib: lib.nn.Tanh(), lambda lib: lib.nn.Sigmoid(),
    lambda lib: lib.nn.Softplus(beta=2.0), lambda lib: lib.nn.Softmax(dim=1),
    lambda lib: lib.nn.LogSoftmax(dim=-1), lambda lib: lib.nn.Softmin(dim=0),
    lambda lib: lib.nn.Hardtanh(-0.5, 0.7), lambda lib: lib.nn.Softsign(), lambda lib: lib.nn.Hardsigmoid(),
    lambda lib: lib.nn.Hardswish(), lambda lib: lib.nn.LogSigmoid(), lambda lib: lib.nn.Tanhshrink(),
    lambda lib: lib.nn.Softshrink(0.3), lambda lib: lib.nn.Hardshrink(0.3),
    lambda lib: lib.nn.Threshold(0.1, -1.0), lambda lib: lib.nn.GLU(dim=1),
]
ACT_INPUT = randn(4, 6, seed=11, low_gap=0.05).astype(np.float32) * 2


@pytest.mark.parametrize("build", ACTIVATIONS, ids=[repr(b(torch)) for b in ACTIVATIONS])
def test_activation_matches_torch(build):
    run_pair(build, ACT_INPUT)
    assert repr(build(chainrule)) == repr(build(torch))


def test_inplace_activation_modules():
    for lib in (chainrule, torch):
        x = lib.tensor([-1.0, 2.0])
        out = lib.nn.ReLU(inplace=True)(x)
        assert out.tolist() == [0.0, 2.0] and x.tolist() == [0.0, 2.0]
    assert repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)"
    assert repr(nn.LeakyReLU(inplace=True)) == repr(torch.nn.LeakyReLU(inplace=True))


def test_softmax_implicit_dim_warns():
    with pytest.warns(UserWarning, match="Implicit dimension"):
        out = nn.Softmax()(chainrule.ones(2, 3))
    assert np.allclose(out.numpy().sum(1), 1.0)


@pytest.mark.parametrize("name,op", [("Softmax", "softmax"), ("LogSoftmax", "log_softmax"), ("Softmin", "softmin")])
def test_softmax_modules_implicit_dim_warning_names_their_function(name, op):
    for lib in (chainrule, torch):
        with pytest.warns(UserWarning, match=f"Implicit dimension choice for {op} has"):
            out = getattr(lib.nn, name)()(lib.ones(3))
        assert out.shape == (3,)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin"])
def test_functional_softmax_implicit_dim_warning_names_the_callers_line(name):
    # old tutorials call F.log_softmax(x) with no dim: the warning must point at their line, as torch's does
    for lib in (chainrule, torch):
        with pytest.warns(UserWarning, match=f"Implicit dimension choice for {name} has been deprecated") as caught:
            out = getattr(lib.nn.functional, name)(lib.ones(2, 3))  # the line the warning names
        assert caught[0].filename == __file__ and caught[0].lineno == _line_of("the line the warning names")
        assert out.shape == (2, 3) and math.isclose(out[0, 0].item(), {"log_softmax": -math.log(3)}.get(name, 1 / 3),
                                                    rel_tol=1e-6)


def _line_of(marker: str) -> int:
    with open(__file__, encoding="utf-8") as source:
        return next(n for n, line in enumerate(source, 1) if marker in line and "_line_of" not in line)


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("build,x", [
    (lambda lib, m: lib.nn.BatchNorm1d(5, momentum=m), X2),
    (lambda lib, m: lib.nn.BatchNorm1d(3, momentum=m), X3),
    (lambda lib, m: lib.nn.BatchNorm2d(4, momentum=m, eps=1e-3), IMG),
    (lambda lib, m: lib.nn.BatchNorm2d(4, momentum=m, affine=False), IMG),
    (lambda lib, m: lib.nn.BatchNorm3d(2, momentum=m), VOL),
], ids=["bn1d", "bn1d-seq", "bn2d", "bn2d-noaffine", "bn3d"])
def test_batchnorm_running_stats_then_eval(build, x, momentum):
    ours, theirs = run_pair(lambda lib: build(lib, momentum), x, steps=3)
    assert ours.num_batches_tracked.item() == 3
    ours.eval()
    theirs.eval()
    xs_o, xs_t = chainrule.tensor(x * 0.5, requires_grad=True), torch.tensor(x * 0.5, requires_grad=True)
    out_o, out_t = ours(xs_o), theirs(xs_t)
    assert_close(out_o, out_t, msg="eval forward")
    out_o.sum().backward()
    out_t.sum().backward()
    assert_close(xs_o.grad, xs_t.grad, msg="eval input grad")
    for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert_close(p.grad, q.grad, 1e-3, 1e-4, msg=name)


def test_batchnorm_without_running_stats_and_errors():
    run_pair(lambda lib: lib.nn.BatchNorm1d(5, track_running_stats=False), X2)
    ours, theirs = run_pair(lambda lib: lib.nn.BatchNorm1d(5, track_running_stats=False), X2, train=False)
    assert "running_mean" not in ours.state_dict()
    with pytest.raises(ValueError, match="expected 4D input"):
        nn.BatchNorm2d(3)(chainrule.ones(2, 3))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        nn.BatchNorm1d(3)(chainrule.ones(1, 3))
    assert list(nn.BatchNorm1d(3).state_dict()) == list(torch.nn.BatchNorm1d(3).state_dict())


def test_dropout_training_statistics_and_eval():
    chainrule.manual_seed(0)
    x = chainrule.ones(200, 100, requires_grad=True)
    layer = nn.Dropout(0.3)
    out = layer(x)
    values = np.unique(out.detach().numpy())
    assert np.allclose(values, [0.0, 1 / 0.7])
    kept = (out.detach().numpy() != 0).mean()
    assert abs(kept - 0.7) < 0.01
    out.sum().backward()
    assert np.array_equal(x.grad.numpy(), out.detach().numpy())  # grad = mask / (1 - p)
    layer.eval()
    assert layer(x) is x
    assert nn.Dropout(1.0)(x).detach().numpy().sum() == 0
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        nn.Dropout(1.5)
    y = chainrule.ones(3)
    nn.Dropout(0.5, inplace=True)(y)
    assert set(y.tolist()) <= {0.0, 2.0}
    assert out.grad_fn.name() == "MulBackward0"  # torch's CPU dropout: the input times the scaled mask


def test_alpha_dropout_keeps_mean_and_variance():
    chainrule.manual_seed(0)
    x = chainrule.randn(400, 500)
    out = nn.AlphaDropout(0.3)(x).numpy()
    assert abs(out.mean()) < 0.02 and abs(out.std() - 1) < 0.02
    dropped_value = -1.7580993408473766 * ((0.7 * (1 + 0.3 * 1.7580993408473766 ** 2)) ** -0.5) * 0.7
    assert abs((np.isclose(out, dropped_value)).mean() - 0.3) < 0.01  # dropped units sit at one value


def test_dropout2d_zeroes_whole_channels():
    out = nn.Dropout2d(0.5)(chainrule.ones(8, 16, 3, 3)).numpy()
    per_channel = out.reshape(8, 16, 9)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2).all(-1))
    assert 0 < (per_channel == 0).all(-1).mean() < 1


def test_dropout2d_keeps_torchs_rule_for_inputs_of_other_ranks():
    # the MNIST recipes put Dropout2d after a Linear: a 2-D (N, F) input loses single features, as in torch
    # (not whole rows), with torch's deprecation warning; a 3-D input is (N, C, L), one draw per (n, c)
    with pytest.warns(UserWarning, match="Received a 2-D input to dropout2d"):
        flat = nn.Dropout2d(0.5)(chainrule.ones(4, 4000)).numpy()
    assert 0.4 < (flat == 0).mean(-1).min() and (flat == 0).mean(-1).max() < 0.6
    with pytest.warns(UserWarning, match="assuming that channel-wise 1D dropout"):
        seq = F.dropout2d(chainrule.ones(64, 8, 5), 0.5).numpy()
    dropped = (seq == 0).all(-1)
    assert np.all(dropped | (seq == 2).all(-1)) and not (dropped.all(0) | ~dropped.any(0)).all()
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        F.dropout2d(chainrule.ones(5), 0.5)
    with pytest.raises(RuntimeError, match="dropout1d: Expected 2D or 3D input, but received a 4D input"):
        F.dropout1d(chainrule.ones(2, 3, 4, 5))


def test_embedding_padding_idx_gets_no_gradient_and_from_pretrained():
    emb = nn.Embedding(5, 3, padding_idx=1)
    assert not emb.weight[1].detach().numpy().any()
    out = emb(chainrule.tensor([[1, 2], [2, 4]]))
    out.sum().backward()
    assert emb.weight.grad[1].tolist() == [0.0, 0.0, 0.0]
    assert emb.weight.grad[2].tolist() == [2.0, 2.0, 2.0]
    weights = chainrule.tensor([[1.0, 2.0], [3.0, 4.0]])
    frozen = nn.Embedding.from_pretrained(weights)
    assert not frozen.weight.requires_grad and frozen(chainrule.tensor([1])).tolist() == [[3.0, 4.0]]
    assert nn.Embedding.from_pretrained(weights, freeze=False).weight.requires_grad
    with pytest.raises(IndexError, match="index out of range in self"):
        emb(chainrule.tensor([5]))
    with pytest.raises(RuntimeError, match="Expected tensor for argument #1 'indices'"):
        emb(chainrule.tensor([1.0]))


def test_conv_transpose_output_size():
    for lib in (chainrule, torch):
        layer = lib.nn.ConvTranspose2d(2, 1, 3, stride=2)
        out = layer(lib.ones(1, 2, 4, 4), output_size=(10, 10))
        assert tuple(out.shape) == (1, 1, 10, 10)


def test_layer_errors_match_torch():
    cases = [
        (lambda lib: lib.nn.Conv2d(3, 4, 3, groups=2), ValueError, "in_channels must be divisible by groups"),
        (lambda lib: lib.nn.Conv2d(4, 3, 3, groups=2), ValueError, "out_channels must be divisible by groups"),
        (lambda lib: lib.nn.Conv2d(4, 4, 3, padding="same", stride=2), ValueError, "padding='same' is not supported"),
        (lambda lib: lib.nn.Conv2d(4, 4, 3, padding="full"), ValueError, "Invalid padding string"),
        (lambda lib: lib.nn.Conv2d(4, 4, 3, padding_mode="wrap"), ValueError, "padding_mode must be one of"),
        (lambda lib: lib.nn.GroupNorm(3, 4), ValueError, r"num_channels \(4\) must be divisible by num_groups \(3\)"),
        (lambda lib: lib.nn.Linear(3, 2)(lib.ones(2, 4)), RuntimeError, r"mat1 and mat2 shapes cannot be multiplied \(2x4 and 3x2\)"),
        (lambda lib: lib.nn.LayerNorm(4)(lib.ones(2, 3)), RuntimeError, r"Given normalized_shape=\[4\], expected input with shape \[\*, 4\]"),
        (lambda lib: lib.nn.Linear(3, 2)(lib.ones(2, 3, dtype=lib.float64)), RuntimeError, "mat1 and mat2 must have the same dtype, but got Double and Float"),
    ]
    for build, exc, pattern in cases:
        for lib in (chainrule, torch):
            with pytest.raises(exc, match=pattern):
                build(lib)


REPRS = [
    lambda lib: lib.nn.Linear(4, 3), lambda lib: lib.nn.Linear(4, 3, bias=False),
    lambda lib: lib.nn.Bilinear(2, 3, 4), lambda lib: lib.nn.Identity(), lambda lib: lib.nn.Flatten(),
    lambda lib: lib.nn.Unflatten(1, (2, 3)),
    lambda lib: lib.nn.Conv1d(2, 3, 3), lambda lib: lib.nn.Conv2d(1, 4, 3, stride=2, padding=1, bias=False),
    lambda lib: lib.nn.Conv2d(4, 4, (3, 5), padding="same", dilation=2, groups=2, padding_mode="reflect"),
    lambda lib: lib.nn.Conv3d(2, 2, 3, padding="valid"),
    lambda lib: lib.nn.ConvTranspose2d(4, 2, 3, stride=2, output_padding=1),
    lambda lib: lib.nn.ConvTranspose1d(4, 2, 3),
    lambda lib: lib.nn.MaxPool1d(3), lambda lib: lib.nn.MaxPool2d(2, stride=1, padding=1, ceil_mode=True),
    lambda lib: lib.nn.AvgPool1d(3), lambda lib: lib.nn.AvgPool2d((2, 3)),
    lambda lib: lib.nn.AdaptiveAvgPool1d(3), lambda lib: lib.nn.AdaptiveAvgPool2d((1, 1)),
    lambda lib: lib.nn.AdaptiveMaxPool2d(2),
    lambda lib: lib.nn.BatchNorm1d(3), lambda lib: lib.nn.BatchNorm2d(3, momentum=None, affine=False),
    lambda lib: lib.nn.BatchNorm2d(3, bias=False),
    lambda lib: lib.nn.LayerNorm((2, 3)), lambda lib: lib.nn.LayerNorm(3, elementwise_affine=False),
    lambda lib: lib.nn.GroupNorm(2, 4), lambda lib: lib.nn.InstanceNorm2d(3),
    lambda lib: lib.nn.Dropout(), lambda lib: lib.nn.Dropout2d(0.2, inplace=True),
    lambda lib: lib.nn.Embedding(10, 3), lambda lib: lib.nn.Embedding(10, 3, padding_idx=0, max_norm=1.0),
    lambda lib: lib.nn.PReLU(), lambda lib: lib.nn.ReLU6(inplace=True), lambda lib: lib.nn.Softplus(),
    lambda lib: lib.nn.ELU(), lambda lib: lib.nn.Hardtanh(),
    lambda lib: lib.nn.ZeroPad2d(1), lambda lib: lib.nn.ConstantPad1d((1, 2), 3.5),
    lambda lib: lib.nn.ReflectionPad2d(2), lambda lib: lib.nn.CircularPad1d(1),
    lambda lib: lib.nn.PixelShuffle(2), lambda lib: lib.nn.CosineSimilarity(), lambda lib: lib.nn.Softmax2d(),
    lambda lib: lib.nn.RMSNorm(4), lambda lib: lib.nn.GroupNorm(2, 4, affine=False),
]


@pytest.mark.parametrize("build", REPRS, ids=[repr(b(torch)) for b in REPRS])
def test_repr_matches_torch(build):
    assert repr(build(chainrule)) == repr(build(torch))


@pytest.mark.parametrize("build", [
    lambda lib: lib.nn.Linear(30, 20), lambda lib: lib.nn.Conv2d(6, 8, 3), lambda lib: lib.nn.Conv1d(4, 6, 5, groups=2),
    lambda lib: lib.nn.ConvTranspose2d(6, 4, 3), lambda lib: lib.nn.Bilinear(8, 5, 3),
], ids=["linear", "conv2d", "conv1d-groups", "convT2d", "bilinear"])
def test_default_init_bounds_match_torch_formula(build):
    ours = build(chainrule)
    w = ours.weight.detach().numpy()
    receptive = math.prod(ours.weight.shape[2:]) if isinstance(ours, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)) else 1
    fan_in = ours.weight.shape[1] * receptive  # Bilinear uses in1_features alone
    bound = 1 / math.sqrt(fan_in)
    assert np.abs(w).max() <= bound + 1e-7 and np.abs(w).max() > 0.8 * bound
    assert np.abs(ours.bias.detach().numpy()).max() <= bound + 1e-7
    theirs = build(torch)
    assert np.abs(theirs.weight.detach().numpy()).max() <= bound + 1e-7
    assert ours.weight.dtype is chainrule.float32


def test_layers_in_float64():
    layer = nn.Linear(3, 2).double()
    assert layer(chainrule.ones(1, 3, dtype=chainrule.float64)).dtype is chainrule.float64
    conv = nn.Conv2d(1, 1, 2, dtype=chainrule.float64)
    assert conv.weight.dtype is chainrule.float64


# ---- F-level functions: torch comparison plus float64 gradcheck / gradgradcheck
FUNCTIONAL = [
    OpCase("linear", lambda lib, x, w, b: lib.nn.functional.linear(x, w, b), [randn(4, 3), randn(2, 3, seed=1), randn(2, seed=2)]),
    OpCase("linear-nobias-3d", lambda lib, x, w: lib.nn.functional.linear(x, w), [randn(2, 4, 3), randn(5, 3, seed=1)]),
    OpCase("bilinear", lambda lib, a, b, w, c: lib.nn.functional.bilinear(a, b, w, c),
           [randn(3, 2), randn(3, 4, seed=1), randn(5, 2, 4, seed=2), randn(5, seed=3)]),
    OpCase("layer_norm", lambda lib, x, w, b: lib.nn.functional.layer_norm(x, (4,), w, b), [randn(3, 4), randn(4, seed=1), randn(4, seed=2)]),
    OpCase("layer_norm-noncontig", lambda lib, x, w, b: lib.nn.functional.layer_norm(x, (3,), w, b),
           [noncontig(randn(4, 3)), randn(3, seed=1), randn(3, seed=2)]),
    OpCase("batch_norm-noncontig", lambda lib, x, w, b: lib.nn.functional.batch_norm(x, None, None, w, b, True),
           [noncontig(randn(5, 3)), randn(3, seed=1), randn(3, seed=2)]),
    OpCase("batch_norm-weight-only", lambda lib, x, w: lib.nn.functional.batch_norm(x, None, None, w, None, True),
           [randn(5, 3), randn(3, seed=1)]),
    OpCase("layer_norm-2d", lambda lib, x: lib.nn.functional.layer_norm(x, (2, 3)), [randn(2, 2, 3)]),
    OpCase("batch_norm-train", lambda lib, x, w, b: lib.nn.functional.batch_norm(x, None, None, w, b, True),
           [randn(4, 3, 2), randn(3, seed=1), randn(3, seed=2)]),
    OpCase("batch_norm-eval", lambda lib, x, w, b: lib.nn.functional.batch_norm(
        x, lib.tensor([0.1, -0.2, 0.3], dtype=x.dtype), lib.tensor([1.0, 2.0, 0.5], dtype=x.dtype), w, b, False),
        [randn(4, 3), randn(3, seed=1), randn(3, seed=2)]),
    OpCase("group_norm", lambda lib, x, w, b: lib.nn.functional.group_norm(x, 2, w, b), [randn(2, 4, 3), randn(4, seed=1), randn(4, seed=2)]),
    OpCase("instance_norm", lambda lib, x: lib.nn.functional.instance_norm(x), [randn(2, 3, 4)]),
    OpCase("embedding", lambda lib, w: lib.nn.functional.embedding(lib.tensor([[0, 2], [2, 3]]), w), [randn(4, 3)]),
    # padding_idx deliberately withholds a true derivative, so only the comparison with torch applies
    OpCase("embedding-pad", lambda lib, w: lib.nn.functional.embedding(lib.tensor([[0, 2], [2, 2]]), w, padding_idx=0),
           [randn(4, 3)], gradcheck=False, gradgradcheck=False),
    OpCase("normalize", lambda lib, x: lib.nn.functional.normalize(x, dim=1), [randn(3, 4)]),
    OpCase("normalize-p1", lambda lib, x: lib.nn.functional.normalize(x, p=1.0, dim=0), [randn(3, 4, low_gap=0.1)]),
    OpCase("cosine_similarity", lambda lib, a, b: lib.nn.functional.cosine_similarity(a, b), [randn(3, 4), randn(3, 4, seed=1)]),
    OpCase("cosine_similarity-bcast", lambda lib, a, b: lib.nn.functional.cosine_similarity(a, b, dim=-1), [randn(3, 4), randn(4, seed=1)]),
    OpCase("interp-nearest-1d", lambda lib, x: lib.nn.functional.interpolate(x, size=7), [randn(2, 3, 5)]),
    OpCase("interp-nearest-exact", lambda lib, x: lib.nn.functional.interpolate(x, scale_factor=1.7, mode="nearest-exact"),
           [randn(1, 2, 4, 5)]),
    OpCase("interp-linear", lambda lib, x: lib.nn.functional.interpolate(x, size=8, mode="linear"), [randn(2, 3, 5)]),
    OpCase("interp-linear-ac", lambda lib, x: lib.nn.functional.interpolate(x, size=8, mode="linear", align_corners=True),
           [randn(2, 3, 5)]),
    OpCase("interp-bilinear-down", lambda lib, x: lib.nn.functional.interpolate(x, size=(3, 2), mode="bilinear"),
           [randn(1, 2, 7, 5)]),
    OpCase("interp-bilinear-scale", lambda lib, x: lib.nn.functional.interpolate(x, scale_factor=(2.5, 1.5), mode="bilinear"),
           [randn(1, 2, 3, 4)]),
    OpCase("interp-trilinear", lambda lib, x: lib.nn.functional.interpolate(x, size=(3, 4, 2), mode="trilinear", align_corners=True),
           [randn(1, 1, 2, 3, 3)]),
    OpCase("rms_norm", lambda lib, x, w: lib.nn.functional.rms_norm(x, (4,), w, eps=1e-6), [randn(3, 4), randn(4, seed=1)]),
    OpCase("pairwise_distance", lambda lib, a, b: lib.nn.functional.pairwise_distance(a, b), [randn(3, 4), randn(3, 4, seed=1)]),
    OpCase("pairwise_distance-p1", lambda lib, a, b: lib.nn.functional.pairwise_distance(a, b, p=1.0, keepdim=True), [randn(3, 4), randn(3, 4, seed=1)]),
]


@parametrize(FUNCTIONAL)
def test_functional_vs_torch(case):
    compare_with_torch(case)


@parametrize(FUNCTIONAL)
def test_functional_gradients(case):
    check_gradients(case)


def test_one_hot_matches_torch():
    for args in [([0, 2, 1], -1), ([[1], [3]], 5)]:
        ours = F.one_hot(chainrule.tensor(args[0]), args[1])
        theirs = torch.nn.functional.one_hot(torch.tensor(args[0]), args[1])
        assert ours.dtype is chainrule.int64 and ours.tolist() == theirs.tolist()
    with pytest.raises(RuntimeError, match="Class values must be smaller than num_classes"):
        F.one_hot(chainrule.tensor([3]), 2)
    with pytest.raises(RuntimeError, match="one_hot is only applicable to index tensor"):
        F.one_hot(chainrule.tensor([1.0]))


def test_linear_zero_size_and_grad_fn():
    x = chainrule.zeros(0, 3, requires_grad=True)
    layer = nn.Linear(3, 2)
    out = layer(x)
    assert out.shape == (0, 2)
    out.sum().backward()
    assert layer.weight.grad.shape == (2, 3) and not layer.weight.grad.numpy().any()
    assert nn.Linear(3, 2)(chainrule.ones(1, 3, requires_grad=True)).grad_fn.name() == "AddmmBackward0"


def test_inplace_functional_variants():
    for name, args in [("relu_", ()), ("elu_", (0.5,)), ("leaky_relu_", (0.1,)), ("hardtanh_", (-0.5, 0.5)),
                       ("selu_", ()), ("celu_", ()), ("threshold_", (0.1, 2.0))]:
        ours = chainrule.tensor(ACT_INPUT.copy())
        theirs = torch.tensor(ACT_INPUT.copy())
        out = getattr(F, name)(ours, *args)
        getattr(torch.nn.functional, name)(theirs, *args)
        assert out is ours
        assert_close(ours, theirs, msg=name)


def test_interpolate_errors():
    x = chainrule.ones(1, 1, 4, 4)
    with pytest.raises(ValueError, match="either size or scale_factor should be defined"):  # torch's words
        F.interpolate(x)
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        F.interpolate(x, size=2, scale_factor=2.0)
    with pytest.raises(ValueError, match="align_corners option can only be set"):
        F.interpolate(x, size=2, align_corners=True)
    with pytest.raises(NotImplementedError, match="linear mode needs 3D input"):
        F.interpolate(x, size=2, mode="linear")
    with pytest.raises(ValueError, match="align_corners option can only be set"):
        F.interpolate(x, size=2, mode="area", align_corners=False)
    # antialias of a 3-d input: torch has it for 4-d bilinear/bicubic/lanczos only, and says so
    with pytest.raises(ValueError, match="Anti-alias option is restricted to bilinear, bicubic, and lanczos"):
        F.interpolate(chainrule.zeros(1, 1, 6), size=2, mode="linear", antialias=True)
    assert tuple(F.interpolate(x, size=8, mode="bilinear", antialias=True).shape) == (1, 1, 8, 8)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("resize", [{"size": (7, 9)}, {"size": (30, 40)}, {"size": (17, 11)},
                                    {"scale_factor": 0.37}, {"scale_factor": (2.5, 0.5)}])
def test_antialiased_interpolate_matches_torch_forward_and_gradient(mode, resize):
    x = np.random.default_rng(1).standard_normal((2, 3, 17, 23))
    results = []
    for lib in (chainrule, torch):
        t = lib.tensor(x, requires_grad=True)
        out = lib.nn.functional.interpolate(t, mode=mode, antialias=True, **resize)
        (out * lib.arange(out.numel(), dtype=lib.float64).reshape(out.shape).sin()).sum().backward()
        results.append((out.detach().numpy(), t.grad.numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-10, atol=1e-10)
    x32 = chainrule.tensor(x, dtype=chainrule.float32)
    assert chainrule.nn.functional.interpolate(x32, mode=mode, antialias=True, **resize).dtype == chainrule.float32


def test_max_unpool_round_trip_matches_torch():
    for lib in (chainrule, torch):
        x = lib.tensor(IMG.copy())
        pooled, idx = lib.nn.MaxPool2d(2, return_indices=True)(x)
        out = lib.nn.MaxUnpool2d(2)(pooled, idx, output_size=x.shape)
        if lib is chainrule:
            ours = out
        else:
            assert_close(ours, out, msg="unpool")


def test_norm_node_names_match_torch():
    x = randn(4, 3, 2).astype(np.float32)
    for build in [lambda lib, t: lib.nn.functional.layer_norm(t, (2,)),
                  lambda lib, t: lib.nn.functional.layer_norm(t, (2,), lib.ones(2), lib.zeros(2)),
                  lambda lib, t: lib.nn.functional.group_norm(t, 3),
                  lambda lib, t: lib.nn.functional.batch_norm(t, None, None, lib.ones(3), lib.zeros(3), True)]:
        ours = build(chainrule, chainrule.tensor(x, requires_grad=True))
        theirs = build(torch, torch.tensor(x, requires_grad=True))
        assert ours.grad_fn.name() == type(theirs.grad_fn).__name__


# ---- attention and the Transformer encoder
L, S, N, E = 4, 5, 2, 8


def _inputs(batch_first=False, kdim=E, vdim=E, unbatched=False):
    rng = np.random.default_rng(0)
    def shape(length, dim):
        if unbatched:
            return (length, dim)
        return (N, length, dim) if batch_first else (length, N, dim)
    return [rng.standard_normal(shape(L, E)).astype(np.float32),
            rng.standard_normal(shape(S, kdim)).astype(np.float32),
            rng.standard_normal(shape(S, vdim)).astype(np.float32)]


def _masks(lib, kind):
    if kind == "bool":
        return {"attn_mask": lib.tensor(np.triu(np.ones((L, S), dtype=bool), 2))}
    if kind == "float":
        return {"attn_mask": lib.tensor(np.random.default_rng(1).standard_normal((N * 2, L, S)).astype(np.float32))}
    if kind == "padding":
        return {"key_padding_mask": lib.tensor(np.array([[False] * 4 + [True], [False] * 5]))}
    if kind == "both":
        return {**_masks(lib, "bool"), **_masks(lib, "padding")}
    return {}


@pytest.mark.parametrize("kind", ["none", "bool", "float", "padding", "both"])
@pytest.mark.parametrize("config", [
    {}, {"batch_first": True}, {"kdim": 3, "vdim": 6}, {"bias": False}, {"unbatched": True},
], ids=["default", "batch_first", "kdim-vdim", "nobias", "unbatched"])
@pytest.mark.parametrize("average", [True, False])
def test_multihead_attention_matches_torch(config, kind, average):
    config = dict(config)
    unbatched = config.pop("unbatched", False)
    if unbatched and kind in ("float", "padding", "both"):
        pytest.skip("batched masks")
    build = {lib: lib.nn.MultiheadAttention(E, 2, **config) for lib in (chainrule, torch)}
    copy_from_torch(build[chainrule], build[torch])
    assert list(build[chainrule].state_dict()) == list(build[torch].state_dict())
    arrays = _inputs(config.get("batch_first", False), config.get("kdim", E), config.get("vdim", E), unbatched)
    results = {}
    for lib, module in build.items():
        xs = [lib.tensor(a, requires_grad=True) for a in arrays]
        out, weights = module(*xs, average_attn_weights=average, **_masks(lib, kind))
        (out.square().sum() + (weights * weights).sum()).backward()
        results[lib] = (out, weights, xs, dict(module.named_parameters()))
    ours, theirs = results[chainrule], results[torch]
    assert_close(ours[0], theirs[0], msg="output")
    assert_close(ours[1], theirs[1], msg="weights")
    for k, (a, b) in enumerate(zip(ours[2], theirs[2])):
        assert_close(a.grad, b.grad, 1e-3, 1e-4, msg=f"input {k} grad")
    for name, p in ours[3].items():
        assert_close(p.grad, theirs[3][name].grad, 1e-3, 1e-4, msg=name)


def test_multihead_attention_need_weights_false_and_causal():
    ours, theirs = chainrule.nn.MultiheadAttention(E, 4), torch.nn.MultiheadAttention(E, 4)
    copy_from_torch(ours, theirs)
    q = _inputs()[0]
    mask = np.triu(np.ones((L, L), dtype=bool), 1)
    out_o, w_o = ours(*(chainrule.tensor(q),) * 3, need_weights=False, attn_mask=chainrule.tensor(mask), is_causal=True)
    out_t, w_t = theirs(*(torch.tensor(q),) * 3, need_weights=False, attn_mask=torch.tensor(mask), is_causal=True)
    assert w_o is None and w_t is None
    assert_close(out_o, out_t, msg="causal")
    assert repr(ours) == repr(theirs)
    with pytest.raises(AssertionError, match="embed_dim must be divisible by num_heads"):
        chainrule.nn.MultiheadAttention(6, 4)


@pytest.mark.parametrize("kwargs", [{}, {"norm_first": True, "activation": "gelu"}, {"batch_first": True, "bias": False}],
                         ids=["post-norm", "pre-norm-gelu", "batch_first-nobias"])
def test_transformer_encoder_matches_torch(kwargs):
    layers = {lib: lib.nn.TransformerEncoder(lib.nn.TransformerEncoderLayer(E, 2, 16, dropout=0.0, **kwargs), 2,
                                             norm=lib.nn.LayerNorm(E))
              for lib in (chainrule, torch)}
    copy_from_torch(layers[chainrule], layers[torch])
    assert repr(layers[chainrule]) == repr(layers[torch])
    x = _inputs(kwargs.get("batch_first", False))[0]
    mask = np.triu(np.ones((L, L), dtype=bool), 1)
    outs = {}
    for lib, model in layers.items():
        model.train()
        xt = lib.tensor(x, requires_grad=True)
        out = model(xt, mask=lib.tensor(mask))
        out.square().sum().backward()
        outs[lib] = (out, xt.grad, dict(model.named_parameters()))
    assert_close(outs[chainrule][0], outs[torch][0], 1e-4, 1e-5, msg="output")
    assert_close(outs[chainrule][1], outs[torch][1], 1e-3, 1e-4, msg="input grad")
    for name, p in outs[chainrule][2].items():
        assert_close(p.grad, outs[torch][2][name].grad, 1e-3, 1e-4, msg=name)


def test_transformer_dropout_changes_output_only_in_training():
    layer = chainrule.nn.TransformerEncoderLayer(E, 2, 16, dropout=0.5)
    x = chainrule.tensor(_inputs()[0])
    layer.eval()
    assert np.array_equal(layer(x).detach().numpy(), layer(x).detach().numpy())
    layer.train()
    assert not np.array_equal(layer(x).detach().numpy(), layer(x).detach().numpy())


_ENCODER_LAYERS = {
    "seq-first": lambda nn: nn.TransformerEncoderLayer(8, 2),
    "batch-first": lambda nn: nn.TransformerEncoderLayer(8, 2, batch_first=True),
    "odd-heads": lambda nn: nn.TransformerEncoderLayer(9, 3, batch_first=True),
    "norm-first": lambda nn: nn.TransformerEncoderLayer(8, 2, batch_first=True, norm_first=True),
    "tanh-module": lambda nn: nn.TransformerEncoderLayer(8, 2, batch_first=True, activation=nn.Tanh()),
    "gelu-module": lambda nn: nn.TransformerEncoderLayer(8, 2, batch_first=True, activation=nn.GELU()),
    "no-bias": lambda nn: nn.TransformerEncoderLayer(8, 2, batch_first=True, bias=False),
}


@pytest.mark.parametrize("layer", _ENCODER_LAYERS, ids=list(_ENCODER_LAYERS))
@pytest.mark.parametrize("enable_nested_tensor", [True, False])
def test_transformer_encoder_says_why_it_gives_nested_tensors_up_as_torch(layer, enable_nested_tensor):
    # torch warns at construction for a seq-first (the default) layer: scripts print it, so we do
    import warnings

    seen = {}
    for lib in (chainrule, torch):
        encoder_layer = _ENCODER_LAYERS[layer](lib.nn)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            encoder = lib.nn.TransformerEncoder(encoder_layer, 2, enable_nested_tensor=enable_nested_tensor)
        seen[lib] = ([str(w.message) for w in caught], encoder.use_nested_tensor, encoder.enable_nested_tensor,
                     encoder_layer.activation_relu_or_gelu)
        assert all(w.filename == __file__ for w in caught)  # the line that built the encoder
    assert seen[chainrule] == seen[torch]


SDPA = [
    OpCase("sdpa", lambda lib, q, k, v: lib.nn.functional.scaled_dot_product_attention(q, k, v),
           [randn(2, 3, 4), randn(2, 5, 4, seed=1), randn(2, 5, 6, seed=2)]),
    OpCase("sdpa-causal-scale", lambda lib, q, k, v: lib.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3),
           [randn(2, 2, 4, 3), randn(2, 2, 4, 3, seed=1), randn(2, 2, 4, 3, seed=2)]),
    OpCase("sdpa-bool-mask", lambda lib, q, k, v: lib.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=lib.tensor([[True, False, True], [True, True, False]])),
        [randn(2, 2, 3), randn(2, 3, 3, seed=1), randn(2, 3, 3, seed=2)]),
    OpCase("sdpa-float-mask", lambda lib, q, k, m, v: lib.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m),
           [randn(2, 3), randn(4, 3, seed=1), randn(2, 4, seed=3), randn(4, 2, seed=2)]),
]


@parametrize(SDPA)
def test_sdpa_vs_torch(case):
    compare_with_torch(case)


@parametrize(SDPA)
def test_sdpa_gradients(case):
    check_gradients(case)


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_decoder_matches_torch(norm_first):
    models = {lib: lib.nn.Transformer(E, 2, 1, 2, 16, dropout=0.0, norm_first=norm_first) for lib in (chainrule, torch)}
    copy_from_torch(models[chainrule], models[torch])
    assert repr(models[chainrule]) == repr(models[torch])
    src, tgt = _inputs()[1], _inputs()[0]
    outs = {}
    for lib, model in models.items():
        s_t, t_t = lib.tensor(src, requires_grad=True), lib.tensor(tgt, requires_grad=True)
        mask = lib.nn.Transformer.generate_square_subsequent_mask(L)
        out = model(s_t, t_t, tgt_mask=mask, memory_key_padding_mask=lib.tensor(np.array([[False] * 4 + [True], [False] * 5])))
        out.square().sum().backward()
        outs[lib] = (out, s_t.grad, t_t.grad, dict(model.named_parameters()))
    for k, what in enumerate(["output", "src grad", "tgt grad"]):
        assert_close(outs[chainrule][k], outs[torch][k], 1e-3, 1e-4, msg=what)
    for name, p in outs[chainrule][3].items():
        assert_close(p.grad, outs[torch][3][name].grad, 1e-3, 1e-4, msg=name)
    assert np.array_equal(chainrule.nn.Transformer.generate_square_subsequent_mask(3).numpy(),
                          torch.nn.Transformer.generate_square_subsequent_mask(3).numpy())


def test_embedding_max_norm_renormalises_rows_like_torch():
    weights = (randn(6, 3) * 3).astype(np.float32)
    idx = np.array([[0, 2, 5], [2, 2, 1]])
    outs = []
    for lib in (chainrule, torch):
        emb = lib.nn.Embedding.from_pretrained(lib.tensor(weights.copy()), freeze=False, max_norm=1.5)
        outs.append((emb(lib.tensor(idx)), emb.weight))
    assert_close(outs[0][0], outs[1][0], msg="output")
    assert_close(outs[0][1], outs[1][1], msg="renormalised weight")


def test_alpha_dropout_inplace_writes_into_its_input():
    # F.alpha_dropout(x, p, True, inplace=True) returns x itself, changed, as torch's does
    chainrule.manual_seed(0)
    x = chainrule.ones(200)
    before = x.clone()
    out = F.alpha_dropout(x, 0.5, True, inplace=True)
    assert out is x and not bool((x == before).all())
    y = chainrule.ones(200)
    F.feature_alpha_dropout(y.view(10, 20, 1), 0.5, True, inplace=True)
    assert not bool((y == 1).all())


def test_dropout2d_on_linear_features_drops_elements_as_torch():
    # pytorch/examples mnist_rnn puts Dropout2d after a Linear: torch warns and, taking the 2-D input
    # as (N, C), draws per element; it must not drop whole samples
    chainrule.manual_seed(0)
    with pytest.warns(UserWarning, match="Received a 2-D input to dropout2d"):
        out = nn.Dropout2d(0.5)(chainrule.ones(64, 32)).numpy()
    dropped_rows = (out == 0).all(1)
    assert 0.3 < (out == 0).mean() < 0.7 and not dropped_rows.any()
    # a 3-D input is (N, C, L) for dropout2d (torch's historical rule), one draw per (N, C)
    with pytest.warns(UserWarning, match="assuming that channel-wise 1D dropout"):
        out3 = chainrule.nn.functional.dropout2d(chainrule.ones(8, 16, 5)).numpy()
    assert np.all((out3 == 0).all(-1) | (out3 == 2).all(-1)) and 0 < (out3 == 0).all(-1).mean() < 1
    for lib in (chainrule, torch):
        with pytest.raises(RuntimeError, match="Expected 2D or 3D input, but received a 4D input"):
            lib.nn.functional.dropout1d(lib.ones(2, 3, 4, 5))
        with pytest.raises(RuntimeError, match="requires at least 2 dimensions"):
            lib.nn.functional.dropout2d(lib.ones(5))
