"""The idioms of model-zoo files (kuangliu/pytorch-cifar, weiaicunzai/pytorch-cifar100,
lucidrains/vit-pytorch; docs/compatibility-trials.md, session 9) in one small net of our own,
built on torch and on chainrule with the same weights (torch.save, then chainrule.load: a user's
path), compared in float64: eval and train outputs, every gradient, three plain SGD steps
(written out, as word_language_model does: torch's first ``optim`` step imports its compiler
stack, seconds this test does not need; the trial ran ``optim.SGD`` on both).

The net holds what broke in the trial: a conv tokenizer whose max-pooled output is flattened,
transposed and then changed in place (``x += pos``: an in-place op on a view, after a max pool),
and a block subclassing ``jit.ScriptModule`` (torch compiles it; chainrule runs it eagerly, so the
torch side uses a plain Module there). Around them the zoo staples: grouped and depthwise convs,
a channel shuffle by view/transpose/contiguous, a squeeze-excitation gate, swish, channel split,
``out += shortcut``, cropping by negative padding, nearest interpolation, BatchNorm in train mode.
"""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _build(lib):
    nn, F = lib.nn, lib.nn.functional
    script_base = lib.jit.ScriptModule if lib is chainrule else nn.Module
    script_method = lib.jit.script_method if lib is chainrule else (lambda fn: fn)

    class ShuffleBlock(script_base):
        def __init__(self, channels, groups):
            super().__init__()
            self.groups = groups
            self.pointwise = nn.Conv2d(channels, channels, 1, groups=groups, bias=False)
            self.depthwise = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
            self.bn = nn.BatchNorm2d(channels)
            self.se_reduce = nn.Conv2d(channels, 2, 1)
            self.se_expand = nn.Conv2d(2, channels, 1)

        def shuffle(self, x):
            n, c, h, w = x.size()
            return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).contiguous().view(n, -1, h, w)

        @script_method
        def forward(self, x):
            out = self.shuffle(F.relu(self.pointwise(x)))
            out = self.bn(self.depthwise(out))
            gate = F.adaptive_avg_pool2d(out, 1)
            gate = self.se_expand(self.se_reduce(gate) * self.se_reduce(gate).sigmoid()).sigmoid()
            out = out * gate
            out += x
            return F.relu(out)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
            self.pool = nn.MaxPool2d(3, stride=2, padding=1)
            self.pos = nn.Parameter(lib.linspace(-1, 1, 16 * 8, dtype=lib.float64).reshape(16, 8))
            self.block = ShuffleBlock(8, groups=2)
            self.crop = nn.ConstantPad2d((-1, 0, -1, 0), 0)
            self.head = nn.Linear(8 * 2, 5)

        def forward(self, x):
            tokens = self.pool(self.stem(x))  # (N, 8, 4, 4)
            n, c, h, w = tokens.shape
            sequence = tokens.flatten(2).transpose(-2, -1)  # a view of the pooled output
            sequence += self.pos  # in place, through the view
            x = sequence.transpose(1, 2).reshape(n, c, h, w)
            x = self.block(x)
            left, right = x.split(4, dim=1)
            x = lib.cat([right, left], 1)
            x = self.crop(x)  # (N, 8, 3, 3)
            x = F.interpolate(x, size=(2, 1))
            return self.head(x.flatten(1))

    return Net().double()


def _run(lib, model, x, target):
    results = {}
    model.eval()
    with lib.no_grad():
        results["eval"] = model(x).numpy()
    model.train()
    for step in range(3):
        model.zero_grad()
        out = model(x)
        lib.nn.functional.cross_entropy(out, target).backward()
        results[f"train{step}"] = out.detach().numpy()
        for name, p in model.named_parameters():
            results[f"grad{step}.{name}"] = p.grad.numpy().copy()
            p.data.add_(p.grad, alpha=-0.05)
    for name, value in model.state_dict().items():
        results[f"state.{name}"] = value.numpy().copy()
    return results


def test_zoo_idioms_match_torch_with_torchs_weights(tmp_path):
    torch.manual_seed(0)
    theirs_model = _build(torch)
    path = tmp_path / "weights.pt"
    torch.save(theirs_model.state_dict(), path)
    ours_model = _build(chainrule)
    ours_model.load_state_dict(chainrule.load(str(path)))
    rng = np.random.default_rng(0)
    x, target = rng.standard_normal((2, 3, 8, 8)), np.array([1, 3])
    theirs = _run(torch, theirs_model, torch.tensor(x), torch.tensor(target))
    ours = _run(chainrule, ours_model, chainrule.tensor(x), chainrule.tensor(target))
    assert ours.keys() == theirs.keys()
    for key in theirs:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-9, atol=1e-12, err_msg=key)
