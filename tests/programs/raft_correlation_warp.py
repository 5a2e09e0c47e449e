"""Optical-flow building blocks in princeton-vl/RAFT's idioms (core/corr.py, core/utils/utils.py,
core/raft.py, train.py), trained as a tiny flow net on synthetically shifted textures.

``CorrBlock``: all-pairs correlation by ``torch.matmul(fmap1.transpose(1, 2), fmap2)`` viewed as
``(batch, ht, wd, 1, ht, wd)`` and divided by ``torch.sqrt(torch.tensor(dim).float())``, a pyramid
by ``F.avg_pool2d(corr, 2, stride=2)``, lookups in a ``(2r+1)^2`` window from ``torch.linspace`` +
``torch.meshgrid`` offsets; ``bilinear_sampler`` (``coords.split([1, 1], dim=-1)``, ``xgrid = 2 *
xgrid / (W - 1) - 1``, ``F.grid_sample(img, grid, align_corners=True)``, the in-bounds mask);
``coords_grid`` by ``torch.meshgrid(torch.arange(ht), torch.arange(wd), indexing="ij")`` and
``torch.stack(coords[::-1], dim=0).float()``; ``upflow8`` (``8 * F.interpolate(flow, size=...,
mode='bilinear', align_corners=True)``) against RAFT's convex upsampling (``mask.view(N, 1, 9, 8,
8, H, W)``, ``torch.softmax(mask, dim=2)``, ``F.unfold(8 * flow, [3, 3], padding=1)``, the 6-d
``permute(0, 1, 4, 2, 5, 3)``); iterative refinement with ``coords1 = coords1.detach()``;
``sequence_loss`` with ``gamma ** (n_predictions - i - 1)`` weights and the EPE / 1px / 3px
metrics; backward warping of the second frame with the predicted flow; AdamW + ``OneCycleLR`` +
``clip_grad_norm_``.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

H = W = 64
MAX_SHIFT = 8


def smooth_texture(n):
    """Periodic random textures (so np.roll shifts them without borders), three channels."""
    freq = np.fft.fftfreq(H)
    fy, fx = np.meshgrid(freq, freq, indexing="ij")
    envelope = np.exp(-(fy ** 2 + fx ** 2) / (2 * 0.04 ** 2))
    spectrum = rng.normal(size=(n, 3, H, W)) + 1j * rng.normal(size=(n, 3, H, W))
    tex = np.fft.ifft2(spectrum * envelope).real
    tex = tex / tex.std(axis=(2, 3), keepdims=True)
    return tex.astype(np.float32)


def make_pairs(n):
    """image2 is image1 moved by an integer (dx, dy): image1(x) = image2(x + flow)."""
    image1 = smooth_texture(n)
    flows = rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, size=(n, 2))
    image2 = np.stack([np.roll(img, shift=(dy, dx), axis=(1, 2)) for img, (dx, dy) in zip(image1, flows)])
    flow = np.broadcast_to(flows[:, :, None, None], (n, 2, H, W)).astype(np.float32)
    return torch.from_numpy(image1), torch.from_numpy(image2), torch.from_numpy(flow.copy())


def bilinear_sampler(img, coords, mode='bilinear', mask=False):
    """ Wrapper for grid_sample, uses pixel coordinates """
    H, W = img.shape[-2:]
    xgrid, ygrid = coords.split([1, 1], dim=-1)
    xgrid = 2 * xgrid / (W - 1) - 1
    ygrid = 2 * ygrid / (H - 1) - 1

    grid = torch.cat([xgrid, ygrid], dim=-1)
    img = F.grid_sample(img, grid, align_corners=True)

    if mask:
        mask = (xgrid > -1) & (ygrid > -1) & (xgrid < 1) & (ygrid < 1)
        return img, mask.float()

    return img


def coords_grid(batch, ht, wd, device):
    coords = torch.meshgrid(torch.arange(ht, device=device), torch.arange(wd, device=device), indexing="ij")
    coords = torch.stack(coords[::-1], dim=0).float()
    return coords[None].repeat(batch, 1, 1, 1)


def upflow8(flow, mode='bilinear'):
    new_size = (8 * flow.shape[2], 8 * flow.shape[3])
    return 8 * F.interpolate(flow, size=new_size, mode=mode, align_corners=True)


class CorrBlock:
    def __init__(self, fmap1, fmap2, num_levels=2, radius=2):
        self.num_levels = num_levels
        self.radius = radius
        self.corr_pyramid = []

        # all pairs correlation
        corr = CorrBlock.corr(fmap1, fmap2)

        batch, h1, w1, dim, h2, w2 = corr.shape
        corr = corr.reshape(batch * h1 * w1, dim, h2, w2)

        self.corr_pyramid.append(corr)
        for _ in range(self.num_levels - 1):
            corr = F.avg_pool2d(corr, 2, stride=2)
            self.corr_pyramid.append(corr)

    def __call__(self, coords):
        r = self.radius
        coords = coords.permute(0, 2, 3, 1)
        batch, h1, w1, _ = coords.shape

        out_pyramid = []
        for i in range(self.num_levels):
            corr = self.corr_pyramid[i]
            dx = torch.linspace(-r, r, 2 * r + 1, device=coords.device)
            dy = torch.linspace(-r, r, 2 * r + 1, device=coords.device)
            delta = torch.stack(torch.meshgrid(dy, dx, indexing="ij"), axis=-1)

            centroid_lvl = coords.reshape(batch * h1 * w1, 1, 1, 2) / 2 ** i
            delta_lvl = delta.view(1, 2 * r + 1, 2 * r + 1, 2)
            coords_lvl = centroid_lvl + delta_lvl

            corr = bilinear_sampler(corr, coords_lvl)
            corr = corr.view(batch, h1, w1, -1)
            out_pyramid.append(corr)

        out = torch.cat(out_pyramid, dim=-1)
        return out.permute(0, 3, 1, 2).contiguous().float()

    @staticmethod
    def corr(fmap1, fmap2):
        batch, dim, ht, wd = fmap1.shape
        fmap1 = fmap1.view(batch, dim, ht * wd)
        fmap2 = fmap2.view(batch, dim, ht * wd)

        corr = torch.matmul(fmap1.transpose(1, 2), fmap2)
        corr = corr.view(batch, ht, wd, 1, ht, wd)
        return corr / torch.sqrt(torch.tensor(dim).float())


class BasicEncoder(nn.Module):
    """Output stride 8, like RAFT's feature network."""

    def __init__(self, output_dim=32):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(16, 24, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(24, 32, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(32, output_dim, 1),
        )

    def forward(self, x):
        return self.layers(x)


class UpdateBlock(nn.Module):
    def __init__(self, corr_channels, hidden_dim=32):
        super().__init__()
        self.convc = nn.Conv2d(corr_channels, hidden_dim, 1)
        self.convf = nn.Conv2d(2, 16, 3, padding=1)
        self.conv = nn.Conv2d(hidden_dim + 16 + hidden_dim, hidden_dim, 3, padding=1)
        self.flow_head = nn.Conv2d(hidden_dim, 2, 3, padding=1)
        self.mask = nn.Sequential(
            nn.Conv2d(hidden_dim, 64, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, 64 * 9, 1, padding=0))

    def forward(self, net, corr, flow):
        cor = F.relu(self.convc(corr))
        flo = F.relu(self.convf(flow))
        net = torch.tanh(self.conv(torch.cat([net, cor, flo], dim=1)))
        delta_flow = self.flow_head(net)
        # scale mask to balance gradients
        mask = .25 * self.mask(net)
        return net, mask, delta_flow


class TinyRAFT(nn.Module):
    def __init__(self, corr_levels=2, corr_radius=2):
        super().__init__()
        self.corr_levels, self.corr_radius = corr_levels, corr_radius
        self.fnet = BasicEncoder(output_dim=32)
        self.cnet = BasicEncoder(output_dim=32)
        self.update_block = UpdateBlock(corr_levels * (2 * corr_radius + 1) ** 2)

    def initialize_flow(self, img):
        """ Flow is represented as difference between two coordinate grids flow = coords1 - coords0"""
        N, C, H, W = img.shape
        coords0 = coords_grid(N, H // 8, W // 8, device=img.device)
        coords1 = coords_grid(N, H // 8, W // 8, device=img.device)

        # optical flow computed as difference: flow = coords1 - coords0
        return coords0, coords1

    def upsample_flow(self, flow, mask):
        """ Upsample flow field [H/8, W/8, 2] -> [H, W, 2] using convex combination """
        N, _, H, W = flow.shape
        mask = mask.view(N, 1, 9, 8, 8, H, W)
        mask = torch.softmax(mask, dim=2)

        up_flow = F.unfold(8 * flow, [3, 3], padding=1)
        up_flow = up_flow.view(N, 2, 9, 1, 1, H, W)

        up_flow = torch.sum(mask * up_flow, dim=2)
        up_flow = up_flow.permute(0, 1, 4, 2, 5, 3)
        return up_flow.reshape(N, 2, 8 * H, 8 * W)

    def forward(self, image1, image2, iters=3):
        fmap1 = self.fnet(image1)
        fmap2 = self.fnet(image2)
        corr_fn = CorrBlock(fmap1, fmap2, num_levels=self.corr_levels, radius=self.corr_radius)

        net = torch.tanh(self.cnet(image1))
        coords0, coords1 = self.initialize_flow(image1)

        flow_predictions = []
        for _ in range(iters):
            coords1 = coords1.detach()
            corr = corr_fn(coords1)  # index correlation volume

            flow = coords1 - coords0
            net, up_mask, delta_flow = self.update_block(net, corr, flow)

            # F(t+1) = F(t) + \Delta(t)
            coords1 = coords1 + delta_flow

            # upsample predictions
            if up_mask is None:
                flow_up = upflow8(coords1 - coords0)
            else:
                flow_up = self.upsample_flow(coords1 - coords0, up_mask)

            flow_predictions.append(flow_up)

        return flow_predictions


MAX_FLOW = 400


def sequence_loss(flow_preds, flow_gt, valid, gamma=0.8, max_flow=MAX_FLOW):
    """ Loss function defined over sequence of flow predictions """

    n_predictions = len(flow_preds)
    flow_loss = 0.0

    # exlude invalid pixels and extremely large diplacements
    mag = torch.sum(flow_gt ** 2, dim=1).sqrt()
    valid = (valid >= 0.5) & (mag < max_flow)

    for i in range(n_predictions):
        i_weight = gamma ** (n_predictions - i - 1)
        i_loss = (flow_preds[i] - flow_gt).abs()
        flow_loss += i_weight * (valid[:, None] * i_loss).mean()

    epe = torch.sum((flow_preds[-1] - flow_gt) ** 2, dim=1).sqrt()
    epe = epe.view(-1)[valid.view(-1)]

    metrics = {
        'epe': epe.mean().item(),
        '1px': (epe < 1).float().mean().item(),
        '3px': (epe < 3).float().mean().item(),
        '5px': (epe < 5).float().mean().item(),
    }

    return flow_loss, metrics


def warp(img, flow):
    """Backward warping: sample img at x + flow(x)."""
    coords = coords_grid(img.shape[0], img.shape[2], img.shape[3], img.device) + flow
    return bilinear_sampler(img, coords.permute(0, 2, 3, 1))


# the building blocks on known inputs
fm1, fm2 = torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4)
corr_block = CorrBlock(fm1, fm2, num_levels=2, radius=1)
direct = torch.einsum('bdij,bdkl->bijkl', fm1, fm2) / 8 ** 0.5
at_zero = corr_block(coords_grid(2, 4, 4, 'cpu'))
# the window's centre (index 4 of 3x3) at level 0 reads corr[i, j, i, j]
centre_ok = torch.allclose(at_zero[:, 4], torch.diagonal(direct.reshape(2, 16, 16), dim1=1, dim2=2).view(2, 4, 4),
                           atol=1e-5)
print(f"pyramid {[tuple(c.shape) for c in corr_block.corr_pyramid]}, lookup {tuple(at_zero.shape)}, "
      f"centre equals corr {centre_ok}")
base_flow = torch.tensor([1.5, -0.5]).view(1, 2, 1, 1)
const_flow = base_flow.expand(1, 2, 4, 4)
convex = TinyRAFT().upsample_flow(const_flow, torch.zeros(1, 64 * 9, 4, 4))
bilin = upflow8(const_flow)
target = 8 * base_flow.expand(1, 2, 32, 32)
# unfold's zero padding pulls the convex combination towards zero on the outer coarse cells only
print(f"upsampled {tuple(convex.shape)}; a constant flow stays constant: convex inside "
      f"{torch.allclose(convex[..., 8:-8, 8:-8], target[..., 8:-8, 8:-8], atol=1e-5)}, "
      f"convex at the border {torch.allclose(convex, target, atol=1e-5)}, bilinear {torch.allclose(bilin, target, atol=1e-5)}")

train1, train2, train_flow = make_pairs(128)
val1, val2, val_flow = make_pairs(16)
_, in_bounds = bilinear_sampler(val2, (coords_grid(16, H, W, 'cpu') + val_flow).permute(0, 2, 3, 1), mask=True)
# the exact shifts wrap around, so grid_sample's zero padding spoils only the border that leaves the frame
gt_err = ((warp(val2, val_flow) - val1).abs().mean(1) * in_bounds[..., 0]).sum() / in_bounds.sum()

model = TinyRAFT()
STEPS, BATCH = 150, 8
optimizer = torch.optim.AdamW(model.parameters(), lr=4e-3, weight_decay=1e-5, eps=1e-8)
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, 4e-3, STEPS + 10, pct_start=0.05,
                                                cycle_momentum=False, anneal_strategy='linear')
valid = torch.ones(BATCH, H, W)
for step in range(1, STEPS + 1):
    model.train()
    idx = torch.randint(0, len(train1), (BATCH,))
    image1, image2, flow = train1[idx], train2[idx], train_flow[idx]
    flow_predictions = model(image1, image2, iters=3)
    loss, metrics = sequence_loss(flow_predictions, flow, valid, gamma=0.8)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    if step % 50 == 0:
        print(f"step {step}: loss {loss.item():.4f} epe {metrics['epe']:.4f}")

model.eval()
with torch.no_grad():
    flow_predictions = model(val1, val2, iters=3)
    _, metrics = sequence_loss(flow_predictions, val_flow, torch.ones(16, H, W))
    flow_up = flow_predictions[-1]
    warp_err = ((warp(val2, flow_up) - val1).abs().mean(1) * in_bounds[..., 0]).sum() / in_bounds.sum()
    zero_err = ((val2 - val1).abs().mean(1) * in_bounds[..., 0]).sum() / in_bounds.sum()
print(f"{len(flow_predictions)} predictions of {tuple(flow_up.shape)}, exact warp error {gt_err.item():.4f}")
print(f"FINAL epe={metrics['epe']:.4f} px1={metrics['1px']:.4f} px3={metrics['3px']:.4f} "
      f"warp_err={warp_err.item():.4f} zero_flow_err={zero_err.item():.4f}")
