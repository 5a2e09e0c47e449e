"""Glow as rosinality/glow-pytorch writes it (model.py, train.py), on two toy problems: two moons seen as
(B, 2, 1, 1) images, then 8x8 RGB images of coloured shapes quantised to 5 bits.

``ActNorm`` with data-dependent initialisation (an ``initialized`` uint8 buffer read by ``.item()`` and set
by ``fill_(1)``; ``torch.no_grad()`` mean/std of ``input.permute(1, 0, 2, 3).contiguous().view(C, -1)``
copied into ``loc.data``/``scale.data``); ``InvConv2d`` (a 1x1 ``F.conv2d`` whose weight starts as the
``Q`` of ``torch.linalg.qr``, log-det by ``torch.slogdet(self.weight.squeeze().double())[1].float()``,
reverse by ``.inverse()``) and its LU-decomposed form ``InvConv2dLU`` (``torch.linalg.lu`` of a random
orthogonal matrix, buffers ``w_p``/``u_mask``/``l_mask``/``s_sign``/``l_eye``, ``torch.triu(w_u, 1)``,
``w_l * l_mask + l_eye``, ``torch.diag(s_sign * torch.exp(w_s))``, ``torch.sum(w_s)`` log-det);
``ZeroConv2d`` (``F.pad(..., value=1)``, ``torch.exp(self.scale * 3)``); ``AffineCoupling`` with
``input.chunk(2, 1)`` and ``F.sigmoid(log_s + 2)``; ``Block``'s squeeze by ``view``/``permute``/
``contiguous().view`` and its unsqueeze on the way back, the split prior's ``gaussian_log_p`` (checked
against ``torch.distributions.Normal(...).log_prob``); train.py's dequantisation by ``torch.rand_like(image) /
n_bins``, the data-dependent initialisation pass under ``torch.no_grad()``, ``calc_loss`` in bits per dim,
``optimizer.param_groups[0]["lr"]`` warm-up; sampling by ``reverse`` from tempered noise, and every inverse
reconstructing its input. The 2-d flow's log-det is checked against ``torch.autograd.functional.jacobian`` +
``torch.linalg.slogdet``.
"""

import os
from math import log, pi

import numpy as np
import torch
from torch import nn
from torch.distributions import Normal
from torch.nn import functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

logabs = lambda x: torch.log(torch.abs(x))  # noqa: E731  (the repository's spelling)


class ActNorm(nn.Module):
    def __init__(self, in_channel, logdet=True):
        super().__init__()

        self.loc = nn.Parameter(torch.zeros(1, in_channel, 1, 1))
        self.scale = nn.Parameter(torch.ones(1, in_channel, 1, 1))

        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))
        self.logdet = logdet

    def initialize(self, input):
        with torch.no_grad():
            flatten = input.permute(1, 0, 2, 3).contiguous().view(input.shape[1], -1)
            mean = (
                flatten.mean(1)
                .unsqueeze(1)
                .unsqueeze(2)
                .unsqueeze(3)
                .permute(1, 0, 2, 3)
            )
            std = (
                flatten.std(1)
                .unsqueeze(1)
                .unsqueeze(2)
                .unsqueeze(3)
                .permute(1, 0, 2, 3)
            )

            self.loc.data.copy_(-mean)
            self.scale.data.copy_(1 / (std + 1e-6))

    def forward(self, input):
        _, _, height, width = input.shape

        if self.initialized.item() == 0:
            self.initialize(input)
            self.initialized.fill_(1)

        log_abs = logabs(self.scale)

        logdet = height * width * torch.sum(log_abs)

        if self.logdet:
            return self.scale * (input + self.loc), logdet

        else:
            return self.scale * (input + self.loc)

    def reverse(self, output):
        return output / self.scale - self.loc


class InvConv2d(nn.Module):
    def __init__(self, in_channel):
        super().__init__()

        weight = torch.randn(in_channel, in_channel)
        q, _ = torch.linalg.qr(weight)
        weight = q.unsqueeze(2).unsqueeze(3)
        self.weight = nn.Parameter(weight)

    def forward(self, input):
        _, _, height, width = input.shape

        out = F.conv2d(input, self.weight)
        logdet = (
            height * width * torch.slogdet(self.weight.squeeze().double())[1].float()
        )

        return out, logdet

    def reverse(self, output):
        return F.conv2d(
            output, self.weight.squeeze().inverse().unsqueeze(2).unsqueeze(3)
        )


class InvConv2dLU(nn.Module):
    def __init__(self, in_channel):
        super().__init__()

        weight = torch.randn(in_channel, in_channel)
        q, _ = torch.linalg.qr(weight)
        w_p, w_l, w_u = torch.linalg.lu(q)
        w_s = torch.diag(w_u)
        w_u = torch.triu(w_u, 1)
        u_mask = torch.triu(torch.ones_like(w_u), 1)
        l_mask = u_mask.T

        self.register_buffer("w_p", w_p)
        self.register_buffer("u_mask", u_mask)
        self.register_buffer("l_mask", l_mask)
        self.register_buffer("s_sign", torch.sign(w_s))
        self.register_buffer("l_eye", torch.eye(l_mask.shape[0]))
        self.w_l = nn.Parameter(torch.tril(w_l, -1))
        self.w_s = nn.Parameter(logabs(w_s))
        self.w_u = nn.Parameter(w_u)

    def forward(self, input):
        _, _, height, width = input.shape

        weight = self.calc_weight()

        out = F.conv2d(input, weight)
        logdet = height * width * torch.sum(self.w_s)

        return out, logdet

    def calc_weight(self):
        weight = (
            self.w_p
            @ (self.w_l * self.l_mask + self.l_eye)
            @ ((self.w_u * self.u_mask) + torch.diag(self.s_sign * torch.exp(self.w_s)))
        )

        return weight.unsqueeze(2).unsqueeze(3)

    def reverse(self, output):
        weight = self.calc_weight()

        return F.conv2d(output, weight.squeeze().inverse().unsqueeze(2).unsqueeze(3))


class ZeroConv2d(nn.Module):
    def __init__(self, in_channel, out_channel, padding=1):
        super().__init__()

        self.conv = nn.Conv2d(in_channel, out_channel, 3, padding=0)
        self.conv.weight.data.zero_()
        self.conv.bias.data.zero_()
        self.scale = nn.Parameter(torch.zeros(1, out_channel, 1, 1))

    def forward(self, input):
        out = F.pad(input, [1, 1, 1, 1], value=1)
        out = self.conv(out)
        out = out * torch.exp(self.scale * 3)

        return out


class AffineCoupling(nn.Module):
    def __init__(self, in_channel, filter_size=512, affine=True):
        super().__init__()

        self.affine = affine

        self.net = nn.Sequential(
            nn.Conv2d(in_channel // 2, filter_size, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(filter_size, filter_size, 1),
            nn.ReLU(inplace=True),
            ZeroConv2d(filter_size, in_channel if self.affine else in_channel // 2),
        )

        self.net[0].weight.data.normal_(0, 0.05)
        self.net[0].bias.data.zero_()

        self.net[2].weight.data.normal_(0, 0.05)
        self.net[2].bias.data.zero_()

    def forward(self, input):
        in_a, in_b = input.chunk(2, 1)

        if self.affine:
            log_s, t = self.net(in_a).chunk(2, 1)
            # s = torch.exp(log_s)
            s = F.sigmoid(log_s + 2)
            # out_a = s * in_a + t
            out_b = (in_b + t) * s

            logdet = torch.sum(torch.log(s).view(input.shape[0], -1), 1)

        else:
            net_out = self.net(in_a)
            out_b = in_b + net_out
            logdet = None

        return torch.cat([in_a, out_b], 1), logdet

    def reverse(self, output):
        out_a, out_b = output.chunk(2, 1)

        if self.affine:
            log_s, t = self.net(out_a).chunk(2, 1)
            # s = torch.exp(log_s)
            s = F.sigmoid(log_s + 2)
            # in_a = (out_a - t) / s
            in_b = out_b / s - t

        else:
            net_out = self.net(out_a)
            in_b = out_b - net_out

        return torch.cat([out_a, in_b], 1)


class Flow(nn.Module):
    def __init__(self, in_channel, affine=True, conv_lu=True, filter_size=512):
        super().__init__()

        self.actnorm = ActNorm(in_channel)

        if conv_lu:
            self.invconv = InvConv2dLU(in_channel)

        else:
            self.invconv = InvConv2d(in_channel)

        self.coupling = AffineCoupling(in_channel, filter_size=filter_size, affine=affine)

    def forward(self, input):
        out, logdet = self.actnorm(input)
        out, det1 = self.invconv(out)
        out, det2 = self.coupling(out)

        logdet = logdet + det1
        if det2 is not None:
            logdet = logdet + det2

        return out, logdet

    def reverse(self, output):
        input = self.coupling.reverse(output)
        input = self.invconv.reverse(input)
        input = self.actnorm.reverse(input)

        return input


def gaussian_log_p(x, mean, log_sd):
    return -0.5 * log(2 * pi) - log_sd - 0.5 * (x - mean) ** 2 / torch.exp(2 * log_sd)


def gaussian_sample(eps, mean, log_sd):
    return mean + torch.exp(log_sd) * eps


class Block(nn.Module):
    def __init__(self, in_channel, n_flow, split=True, affine=True, conv_lu=True, filter_size=512):
        super().__init__()

        squeeze_dim = in_channel * 4

        self.flows = nn.ModuleList()
        for i in range(n_flow):  # noqa: B007
            self.flows.append(Flow(squeeze_dim, affine=affine, conv_lu=conv_lu, filter_size=filter_size))

        self.split = split

        if split:
            self.prior = ZeroConv2d(in_channel * 2, in_channel * 4)

        else:
            self.prior = ZeroConv2d(in_channel * 4, in_channel * 8)

    def forward(self, input):
        b_size, n_channel, height, width = input.shape
        squeezed = input.view(b_size, n_channel, height // 2, 2, width // 2, 2)
        squeezed = squeezed.permute(0, 1, 3, 5, 2, 4)
        out = squeezed.contiguous().view(b_size, n_channel * 4, height // 2, width // 2)

        logdet = 0

        for flow in self.flows:
            out, det = flow(out)
            logdet = logdet + det

        if self.split:
            out, z_new = out.chunk(2, 1)
            mean, log_sd = self.prior(out).chunk(2, 1)
            log_p = gaussian_log_p(z_new, mean, log_sd)
            log_p = log_p.view(b_size, -1).sum(1)

        else:
            zero = torch.zeros_like(out)
            mean, log_sd = self.prior(zero).chunk(2, 1)
            log_p = gaussian_log_p(out, mean, log_sd)
            log_p = log_p.view(b_size, -1).sum(1)
            z_new = out

        return out, logdet, log_p, z_new

    def reverse(self, output, eps=None, reconstruct=False):
        input = output

        if reconstruct:
            if self.split:
                input = torch.cat([output, eps], 1)

            else:
                input = eps

        else:
            if self.split:
                mean, log_sd = self.prior(input).chunk(2, 1)
                z = gaussian_sample(eps, mean, log_sd)
                input = torch.cat([output, z], 1)

            else:
                zero = torch.zeros_like(input)
                # zero = F.pad(zero, [1, 1, 1, 1], value=1)
                mean, log_sd = self.prior(zero).chunk(2, 1)
                z = gaussian_sample(eps, mean, log_sd)
                input = z

        for flow in self.flows[::-1]:
            input = flow.reverse(input)

        b_size, n_channel, height, width = input.shape

        unsqueezed = input.view(b_size, n_channel // 4, 2, 2, height, width)
        unsqueezed = unsqueezed.permute(0, 1, 4, 2, 5, 3)
        unsqueezed = unsqueezed.contiguous().view(
            b_size, n_channel // 4, height * 2, width * 2
        )

        return unsqueezed


class Glow(nn.Module):
    def __init__(self, in_channel, n_flow, n_block, affine=True, conv_lu=True, filter_size=512):
        super().__init__()

        self.blocks = nn.ModuleList()
        n_channel = in_channel
        for i in range(n_block - 1):  # noqa: B007
            self.blocks.append(Block(n_channel, n_flow, affine=affine, conv_lu=conv_lu, filter_size=filter_size))
            n_channel *= 2
        self.blocks.append(Block(n_channel, n_flow, split=False, affine=affine, filter_size=filter_size))

    def forward(self, input):
        log_p_sum = 0
        logdet = 0
        out = input
        z_outs = []

        for block in self.blocks:
            out, det, log_p, z_new = block(out)
            z_outs.append(z_new)
            logdet = logdet + det

            if log_p is not None:
                log_p_sum = log_p_sum + log_p

        return log_p_sum, logdet, z_outs

    def reverse(self, z_list, reconstruct=False):
        for i, block in enumerate(self.blocks[::-1]):
            if i == 0:
                input = block.reverse(z_list[-1], z_list[-1], reconstruct=reconstruct)

            else:
                input = block.reverse(input, z_list[-(i + 1)], reconstruct=reconstruct)

        return input


# ----------------------------------------------------------------- part 1: two moons as (B, 2, 1, 1)
def make_moons(n, noise):
    n_out = n // 2
    t_out, t_in = np.pi * rng.random(n_out), np.pi * rng.random(n - n_out)
    outer = np.stack([np.cos(t_out), np.sin(t_out)], 1)
    inner = np.stack([1 - np.cos(t_in), 0.5 - np.sin(t_in)], 1)
    x = np.concatenate([outer, inner]) + noise * rng.standard_normal((n, 2))
    return torch.from_numpy(x.astype(np.float32)).view(n, 2, 1, 1)


moons, moons_test = make_moons(512, 0.05), make_moons(256, 0.05)
flows = nn.ModuleList([Flow(2, conv_lu=(i % 2 == 0), filter_size=32) for i in range(6)])
prior = Normal(torch.tensor(0.0), torch.tensor(1.0))


def flow_nll(x):
    logdet = 0
    for flow in flows:
        x, det = flow(x)
        logdet = logdet + det
    return -(prior.log_prob(x).view(x.shape[0], -1).sum(1) + logdet).mean(), x


with torch.no_grad():  # the data-dependent initialisation pass, as train.py's first batch
    flow_nll(moons[:256])
print(f"actnorm initialized {[int(f.actnorm.initialized) for f in flows]}, "
      f"buffer dtype {flows[0].actnorm.initialized.dtype}, loc {tuple(flows[0].actnorm.loc.shape)}")
optimizer = torch.optim.Adam(flows.parameters(), lr=5e-3)
for step in range(1, 201):
    idx = torch.randint(0, moons.shape[0], (128,))
    loss, _ = flow_nll(moons[idx])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 50 == 0:
        print(f"moons step {step}: nll {loss.item():.4f}")

with torch.no_grad():
    moons_nll, z = flow_nll(moons_test)
    x = z
    for flow in flows[::-1]:
        x = flow.reverse(x)
    moons_recon = (x - moons_test).abs().max().item()
    samples = torch.randn(256, 2, 1, 1)
    for flow in flows[::-1]:
        samples = flow.reverse(samples)
    # samples must land near the moons: distance to the nearest training point
    near = torch.cdist(samples.view(-1, 2), moons.view(-1, 2)).min(1).values.mean().item()
print(f"moons: test nll {moons_nll.item():.4f}, reconstruction error {moons_recon:.2e}, "
      f"sample-to-data distance {near:.4f}")

# the whole 2-d flow's log-det against the Jacobian's, at one point
point = moons_test[:1].clone()


def through(v):
    out = v.view(1, 2, 1, 1)
    for flow in flows:
        out, _ = flow(out)
    return out.view(2)


jac = torch.autograd.functional.jacobian(through, point.view(2))
_, jac_logdet = torch.linalg.slogdet(jac)
with torch.no_grad():
    out, total = point, 0
    for flow in flows:
        out, det = flow(out)
        total = total + det
print(f"log|det J| by jacobian {jac_logdet.item():.5f}, by the flow {total.item():.5f}")
jacobian_ok = abs(jac_logdet.item() - total.item()) < 1e-3

# the LU weight's log-det and the plain one's against slogdet; the Normal prior against gaussian_log_p
lu = flows[0].invconv
w = lu.calc_weight().squeeze()
sign, w_logdet = torch.linalg.slogdet(w)
plain = flows[1].invconv
print(f"LU weight: sum(w_s) {lu.w_s.sum().item():.5f}, slogdet {w_logdet.item():.5f}; "
      f"plain: torch.slogdet {torch.slogdet(plain.weight.squeeze())[1].item():.5f}, "
      f"w @ w.inverse() = I {bool(torch.allclose(w @ w.inverse(), torch.eye(2), atol=1e-5))}")
lu_ok = abs(lu.w_s.sum().item() - w_logdet.item()) < 1e-4
probe = torch.randn(4, 3)
mean, log_sd = torch.randn(4, 3), 0.1 * torch.randn(4, 3)
normal_gap = (gaussian_log_p(probe, mean, log_sd) - Normal(mean, torch.exp(log_sd)).log_prob(probe)).abs().max().item()

# ----------------------------------------------------------------- part 2: Glow on 8x8 RGB shapes, as train.py
img_size, n_bits = 8, 5
n_bins = 2.0 ** n_bits


def shapes(n):
    """A coloured disk or square on a coloured background, in [0, 1): (n, 3, 8, 8)."""
    u = (np.arange(img_size) + 0.5) / img_size
    yy, xx = np.meshgrid(u, u, indexing="ij")
    images = np.empty((n, 3, img_size, img_size), np.float32)
    for i in range(n):
        bg, fg = rng.uniform(0.1, 0.5, 3), rng.uniform(0.5, 0.95, 3)
        cx, cy, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.3)
        mask = ((xx - cx) ** 2 + (yy - cy) ** 2 < r ** 2) if i % 2 else (np.maximum(abs(xx - cx), abs(yy - cy)) < r)
        images[i] = np.where(mask, fg[:, None, None], bg[:, None, None])
    return torch.from_numpy(images)


def calc_loss(log_p, logdet, image_size, n_bins):
    # log_p = calc_log_p([z_list])
    n_pixel = image_size * image_size * 3

    loss = -log(n_bins) * n_pixel
    loss = loss + logdet + log_p

    return (
        (-loss / (log(2) * n_pixel)).mean(),
        (log_p / (log(2) * n_pixel)).mean(),
        (logdet / (log(2) * n_pixel)).mean(),
    )


def preprocess(image):
    image = image * 255

    if n_bits < 8:
        image = torch.floor(image / 2 ** (8 - n_bits))

    image = image / n_bins - 0.5
    return image


model = Glow(3, n_flow=2, n_block=2, affine=True, conv_lu=True, filter_size=32)
print(f"glow: {sum(p.numel() for p in model.parameters())} parameters, "
      f"{sum(b.numel() for b in model.buffers())} buffer values")
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
train_images, test_images = shapes(256), shapes(64)
batch = 32
lr = 1e-3
for i in range(61):
    image = preprocess(train_images[(i * batch) % 256:(i * batch) % 256 + batch])

    if i == 0:
        with torch.no_grad():
            log_p, logdet, _ = model(image + torch.rand_like(image) / n_bins)

            continue

    else:
        log_p, logdet, _ = model(image + torch.rand_like(image) / n_bins)

    logdet = logdet.mean()

    loss, log_p, log_det = calc_loss(log_p, logdet, img_size, n_bins)
    model.zero_grad()
    loss.backward()
    warmup_lr = lr * min(1, i * batch / 640)
    optimizer.param_groups[0]["lr"] = warmup_lr
    optimizer.step()

    if i % 20 == 0:
        print(f"Loss: {loss.item():.5f}; logP: {log_p.item():.5f}; logdet: {log_det.item():.5f}; lr: {warmup_lr:.7f}")

with torch.no_grad():
    image = preprocess(test_images)
    dequantized = image + torch.rand_like(image) / n_bins
    log_p, logdet, z_list = model(dequantized)
    test_bpd, _, _ = calc_loss(log_p, logdet, img_size, n_bins)
    recon = model.reverse(z_list, reconstruct=True)
    glow_recon = (recon - dequantized).abs().max().item()
    z_sample = [torch.randn_like(z) * 0.7 for z in z_list]
    sample = model.reverse(z_sample).cpu()
print(f"z shapes {[tuple(z.shape) for z in z_list]}, test bpd {test_bpd.item():.4f}, recon {glow_recon:.1e}, "
      f"sample {tuple(sample.shape)} in [{sample.min().item():.2f}, {sample.max().item():.2f}]")
print(f"FINAL moons_nll={moons_nll.item():.4f} sample_dist={near:.4f} moons_recon_ok={float(moons_recon < 1e-4):.1f} "
      f"jacobian_ok={float(jacobian_ok):.1f} lu_ok={float(lu_ok):.1f} normal_ok={float(normal_gap < 1e-5):.1f} "
      f"test_bpd={test_bpd.item():.4f} glow_recon_ok={float(glow_recon < 1e-3):.1f}")
