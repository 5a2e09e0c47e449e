"""s52 progEH: the pieces of the resnest_split_attention, van_large_kernel_attention and u2net_nested_unet
corpus programs, each run on chainrule and on torch with the same weights and inputs (float64), forward and
gradients compared: a U^2-Net RSU block on odd sizes (ceil-mode max pooling down to 1x1 and bilinear
``F.upsample`` back to the skip's size), ResNeSt's split attention with rSoftMax, VAN's large-kernel
attention and its receptive field, and DropBlock's block mask (``torch.rand_like(x) < gamma`` under one seed,
max- and min-pooled)."""

import warnings

import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402


def _rsu4(lib, channels=3, mid=4):
    """RSU-4 of U^2-Net: REBNCONV = conv(padding=dirate, dilation=dirate) + BN + ReLU, ceil-mode pools."""
    nn, F = lib.nn, lib.nn.functional

    def rebnconv(i, o, d):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=d, dilation=d), nn.BatchNorm2d(o), nn.ReLU(inplace=True))

    class RSU4(nn.Module):
        def __init__(self):
            super().__init__()
            self.inconv = rebnconv(channels, channels, 1)
            self.c1, self.c2, self.c3 = rebnconv(channels, mid, 1), rebnconv(mid, mid, 1), rebnconv(mid, mid, 1)
            self.c4 = rebnconv(mid, mid, 2)
            self.c3d, self.c2d = rebnconv(mid * 2, mid, 1), rebnconv(mid * 2, mid, 1)
            self.c1d = rebnconv(mid * 2, channels, 1)
            self.pool = nn.MaxPool2d(2, stride=2, ceil_mode=True)

        def forward(self, x):
            hxin = self.inconv(x)
            hx1 = self.c1(hxin)
            hx2 = self.c2(self.pool(hx1))
            hx3 = self.c3(self.pool(hx2))
            hx4 = self.c4(hx3)
            hx3d = self.c3d(lib.cat((hx4, hx3), 1))
            hx2d = self.c2d(lib.cat((F.upsample(hx3d, size=hx2.shape[2:], mode="bilinear"), hx2), 1))
            hx1d = self.c1d(lib.cat((F.upsample(hx2d, size=hx1.shape[2:], mode="bilinear"), hx1), 1))
            return hx1d + hxin

    return RSU4().double()


def _same_weights(theirs, mine):
    mine.load_state_dict({k: chainrule.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})


def _run_both(build, x_np):
    """Forward + backward of the same module on torch and chainrule; returns (outputs, input grads, param grads)."""
    results = []
    theirs = build(real_torch)
    mine = build(chainrule)
    _same_weights(theirs, mine)
    for lib, module in ((real_torch, theirs), (chainrule, mine)):
        x = lib.tensor(x_np, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = module(x)
        probe = lib.tensor(np.linspace(-1, 1, out.numel()).reshape(tuple(out.shape)))
        (out * probe).sum().backward()
        grads = {name: p.grad.numpy() for name, p in module.named_parameters()}
        results.append((out.detach().numpy(), x.grad.numpy(), grads))
    return results


@pytest.mark.parametrize("size", [(37, 29), (32, 32), (5, 3), (2, 1)])
def test_rsu_block_on_odd_sizes_matches_torch(size):
    x = np.random.RandomState(0).randn(3, 3, *size)
    (out_t, gx_t, gp_t), (out_c, gx_c, gp_c) = _run_both(_rsu4, x)
    assert out_c.shape == out_t.shape == (3, 3, *size)
    np.testing.assert_allclose(out_c, out_t, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(gx_c, gx_t, rtol=1e-9, atol=1e-10)
    assert gp_c.keys() == gp_t.keys()
    for name in gp_t:
        # a conv bias in front of training-mode BatchNorm has a zero gradient up to rounding
        atol = 1e-9 if name.endswith("0.bias") else 1e-10
        np.testing.assert_allclose(gp_c[name], gp_t[name], rtol=1e-7, atol=atol, err_msg=name)


def _split_attention(lib, radix=2, cardinality=2, channels=8):
    nn, F = lib.nn, lib.nn.functional

    class SplAt(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(channels, channels * radix, 3, padding=1, groups=cardinality * radix, bias=False)
            self.bn0 = nn.BatchNorm2d(channels * radix)
            self.fc1 = nn.Conv2d(channels, 32, 1, groups=cardinality)
            self.bn1 = nn.BatchNorm2d(32)
            self.fc2 = nn.Conv2d(32, channels * radix, 1, groups=cardinality)

        def forward(self, x):
            x = F.relu(self.bn0(self.conv(x)))
            batch, rchannel = x.shape[:2]
            splited = lib.split(x, rchannel // radix, dim=1)
            gap = F.adaptive_avg_pool2d(sum(splited), 1)
            atten = self.fc2(F.relu(self.bn1(self.fc1(gap))))
            atten = atten.view(batch, cardinality, radix, -1).transpose(1, 2)
            atten = F.softmax(atten, dim=1).reshape(batch, -1).view(batch, -1, 1, 1)
            attens = lib.split(atten, rchannel // radix, dim=1)
            return sum([att * split for (att, split) in zip(attens, splited)]).contiguous()

    return SplAt().double()


def test_split_attention_matches_torch():
    x = np.random.RandomState(1).randn(4, 8, 7, 5)
    (out_t, gx_t, gp_t), (out_c, gx_c, gp_c) = _run_both(_split_attention, x)
    np.testing.assert_allclose(out_c, out_t, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gx_c, gx_t, rtol=1e-9, atol=1e-12)
    for name in gp_t:
        np.testing.assert_allclose(gp_c[name], gp_t[name], rtol=1e-7, atol=1e-10, err_msg=name)


def _lka(lib, dim=3):
    nn = lib.nn

    class LKA(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv0 = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
            self.conv_spatial = nn.Conv2d(dim, dim, 7, stride=1, padding=9, groups=dim, dilation=3)
            self.conv1 = nn.Conv2d(dim, dim, 1)

        def forward(self, x):
            return x.clone() * self.conv1(self.conv_spatial(self.conv0(x)))

    return LKA().double()


def test_large_kernel_attention_receptive_field_matches_torch():
    x = np.random.RandomState(2).randn(1, 3, 27, 25)
    supports = []
    for lib in (real_torch, chainrule):
        lib.manual_seed(0)
        module = _lka(lib)
        image = lib.tensor(x, requires_grad=True)
        (grad,) = lib.autograd.grad(module(image)[0, :, 13, 12].sum(), image)
        supports.append(grad.numpy())
    np.testing.assert_allclose(supports[1], supports[0], rtol=1e-9, atol=1e-12)
    rows, cols = np.nonzero(np.abs(supports[1]).sum(1)[0])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (13 - 11, 13 + 11, 12 - 11, 12 + 11)
    assert rows.size == 23 * 23


@pytest.mark.parametrize("block_size", [3, 5])
def test_dropblock_masks_match_torch(block_size):
    shape, gamma = (2, 3, 11, 9), 0.05
    masks = []
    for lib in (real_torch, chainrule):
        F = lib.nn.functional
        lib.manual_seed(7)
        x = lib.ones(shape, dtype=lib.float64)
        seeds = (lib.rand_like(x) < gamma).to(x.dtype)
        dropped = F.max_pool2d(seeds, kernel_size=block_size, stride=1, padding=block_size // 2)
        kept = -F.max_pool2d(-(1 - seeds), kernel_size=block_size, stride=1, padding=block_size // 2)
        scale = kept.numel() / kept.to(dtype=lib.float32).sum().add(1e-6)
        masks.append((seeds.numpy(), dropped.numpy(), kept.numpy(), scale.item()))
    for theirs, mine in zip(masks[0], masks[1]):
        np.testing.assert_array_equal(mine, theirs)
