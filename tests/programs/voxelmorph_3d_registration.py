"""VoxelMorph (voxelmorph/voxelmorph, its PyTorch backend) on toy 3-D volumes.

Each subject is a 16^3 volume of soft ellipsoids; its moving image is the fixed one warped by a
smooth random displacement (a few low-frequency sines).  A small 3-D UNet (strided ``nn.Conv3d``
encoder, ``nn.LeakyReLU(0.2)``, ``nn.Upsample(scale_factor=2, mode='nearest')`` decoder with
``torch.cat`` skips) predicts a stationary velocity field from ``torch.cat([moving, fixed], 1)``,
its flow head initialised by ``Normal(0, 1e-5).sample(...)``.  ``VecInt`` integrates it by scaling
and squaring (``vec * 1 / 2**nsteps`` then ``vec = vec + transformer(vec, vec)``), and the
``SpatialTransformer`` warps with an identity grid from ``torch.meshgrid(..., indexing='ij')``
kept as a non-persistent buffer, normalised in place to [-1, 1], ``permute(0, 2, 3, 4, 1)``, the
channel flip ``[..., [2, 1, 0]]`` and ``F.grid_sample(..., align_corners=True, mode='bilinear')``.
Loss: local NCC by ``F.conv3d`` with a ones window (``stride=1, padding=win // 2``) plus the
finite-difference smoothness loss of the velocity; Adam.  Checks: a zero flow warps a volume to
itself; the fraction of voxels whose deformation has a non-positive Jacobian determinant (by
``torch.gradient`` + ``torch.linalg.det``, against ``np.gradient``); NCC improves on held-out pairs.
"""
# ruff: noqa: UP031  (the repository's own spelling: "Conv%dd" % ndims, %-formatted asserts)

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions.normal import Normal

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

device = "cuda" if torch.cuda.is_available() else "cpu"
inshape = (16, 16, 16)


# ---------------------------------------------------------------- data
def make_subject(rng):
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float32) for s in inshape], indexing="ij"))
    vol = np.zeros(inshape, dtype=np.float32)
    for _ in range(3):
        centre = rng.uniform(4.5, 11.5, size=3).reshape(3, 1, 1, 1)
        radii = rng.uniform(2.0, 4.0, size=3).reshape(3, 1, 1, 1)
        r2 = (((grid - centre) / radii) ** 2).sum(0)
        vol += rng.uniform(0.5, 1.0) / (1.0 + np.exp(4.0 * (r2 - 1.0)))
    return np.clip(vol, 0.0, 1.0)


def smooth_field(rng, amplitude=1.5):
    grid = np.stack(np.meshgrid(*[np.linspace(0, 1, s, dtype=np.float32) for s in inshape], indexing="ij"))
    field = np.zeros((3, *inshape), dtype=np.float32)
    for c in range(3):
        for _ in range(2):
            freq = rng.uniform(0.5, 1.5, size=3).reshape(3, 1, 1, 1)
            phase = rng.uniform(0, 2 * np.pi)
            field[c] += np.sin(2 * np.pi * (freq * grid).sum(0) + phase)
    return amplitude * field / 2.0


# ---------------------------------------------------------------- layers
class SpatialTransformer(nn.Module):
    """N-D Spatial Transformer."""

    def __init__(self, size, mode="bilinear"):
        super().__init__()
        self.mode = mode
        vectors = [torch.arange(0, s) for s in size]
        grids = torch.meshgrid(vectors, indexing="ij")
        grid = torch.stack(grids)
        grid = torch.unsqueeze(grid, 0)
        grid = grid.type(torch.FloatTensor)
        # a buffer, so it moves with the model, but not saved in the state dict
        self.register_buffer("grid", grid, persistent=False)

    def forward(self, src, flow):
        new_locs = self.grid + flow
        shape = flow.shape[2:]
        # need to normalize grid values to [-1, 1] for resampler
        for i in range(len(shape)):
            new_locs[:, i, ...] = 2 * (new_locs[:, i, ...] / (shape[i] - 1) - 0.5)
        # move channels dim to last position, and flip to grid_sample's x, y, z order
        new_locs = new_locs.permute(0, 2, 3, 4, 1)
        new_locs = new_locs[..., [2, 1, 0]]
        return F.grid_sample(src, new_locs, align_corners=True, mode=self.mode)


class VecInt(nn.Module):
    """Integrates a vector field via scaling and squaring."""

    def __init__(self, inshape, nsteps):
        super().__init__()
        assert nsteps >= 0, "nsteps should be >= 0, found: %d" % nsteps
        self.nsteps = nsteps
        self.scale = 1.0 / (2 ** self.nsteps)
        self.transformer = SpatialTransformer(inshape)

    def forward(self, vec):
        vec = vec * self.scale
        for _ in range(self.nsteps):
            vec = vec + self.transformer(vec, vec)
        return vec


class ConvBlock(nn.Module):
    def __init__(self, ndims, in_channels, out_channels, stride=1):
        super().__init__()
        Conv = getattr(nn, "Conv%dd" % ndims)
        self.main = Conv(in_channels, out_channels, 3, stride, 1)
        self.activation = nn.LeakyReLU(0.2)

    def forward(self, x):
        return self.activation(self.main(x))


class Unet(nn.Module):
    def __init__(self, inshape, enc_nf=(8, 16, 16), dec_nf=(16, 16, 8, 8)):
        super().__init__()
        ndims = len(inshape)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        prev_nf = 2
        self.downarm = nn.ModuleList()
        for nf in enc_nf:
            self.downarm.append(ConvBlock(ndims, prev_nf, nf, stride=2))
            prev_nf = nf
        enc_history = list(reversed(enc_nf))
        self.uparm = nn.ModuleList()
        for i, nf in enumerate(dec_nf[:len(enc_nf)]):
            channels = prev_nf + enc_history[i] if i > 0 else prev_nf
            self.uparm.append(ConvBlock(ndims, channels, nf, stride=1))
            prev_nf = nf
        prev_nf += 2
        self.extras = nn.ModuleList()
        for nf in dec_nf[len(enc_nf):]:
            self.extras.append(ConvBlock(ndims, prev_nf, nf, stride=1))
            prev_nf = nf
        self.final_nf = prev_nf

    def forward(self, x):
        x_enc = [x]
        for layer in self.downarm:
            x_enc.append(layer(x_enc[-1]))
        x = x_enc.pop()
        for layer in self.uparm:
            x = layer(x)
            x = self.upsample(x)
            x = torch.cat([x, x_enc.pop()], dim=1)
        for layer in self.extras:
            x = layer(x)
        return x


class VxmDense(nn.Module):
    def __init__(self, inshape, int_steps=7):
        super().__init__()
        ndims = len(inshape)
        self.unet_model = Unet(inshape)
        Conv = getattr(nn, "Conv%dd" % ndims)
        self.flow = Conv(self.unet_model.final_nf, ndims, kernel_size=3, padding=1)
        # init flow layer with small weights and bias
        self.flow.weight = nn.Parameter(Normal(0, 1e-5).sample(self.flow.weight.shape))
        self.flow.bias = nn.Parameter(torch.zeros(self.flow.bias.shape))
        self.integrate = VecInt(inshape, int_steps) if int_steps > 0 else None
        self.transformer = SpatialTransformer(inshape)

    def forward(self, source, target, registration=False):
        x = torch.cat([source, target], dim=1)
        x = self.unet_model(x)
        flow_field = self.flow(x)
        pos_flow = flow_field
        preint_flow = pos_flow
        if self.integrate:
            pos_flow = self.integrate(pos_flow)
        y_source = self.transformer(source, pos_flow)
        if not registration:
            return y_source, preint_flow
        return y_source, pos_flow


# ---------------------------------------------------------------- losses
class NCC:
    """Local (over window) normalized cross correlation loss."""

    def __init__(self, win=None):
        self.win = win

    def loss(self, y_true, y_pred):
        Ii = y_true
        Ji = y_pred
        ndims = len(list(Ii.size())) - 2
        assert ndims in [1, 2, 3], "volumes should be 1 to 3 dimensions. found: %d" % ndims
        win = [9] * ndims if self.win is None else self.win
        sum_filt = torch.ones([1, 1, *win]).to(device)
        pad_no = math.floor(win[0] / 2)
        stride = (1,) * ndims
        padding = (pad_no,) * ndims
        conv_fn = getattr(F, "conv%dd" % ndims)

        I2 = Ii * Ii
        J2 = Ji * Ji
        IJ = Ii * Ji
        I_sum = conv_fn(Ii, sum_filt, stride=stride, padding=padding)
        J_sum = conv_fn(Ji, sum_filt, stride=stride, padding=padding)
        I2_sum = conv_fn(I2, sum_filt, stride=stride, padding=padding)
        J2_sum = conv_fn(J2, sum_filt, stride=stride, padding=padding)
        IJ_sum = conv_fn(IJ, sum_filt, stride=stride, padding=padding)

        win_size = np.prod(win)
        u_I = I_sum / win_size
        u_J = J_sum / win_size
        cross = IJ_sum - u_J * I_sum - u_I * J_sum + u_I * u_J * win_size
        I_var = I2_sum - 2 * u_I * I_sum + u_I * u_I * win_size
        J_var = J2_sum - 2 * u_J * J_sum + u_J * u_J * win_size
        cc = cross * cross / (I_var * J_var + 1e-5)
        return -torch.mean(cc)


class Grad:
    """N-D gradient loss."""

    def __init__(self, penalty="l1", loss_mult=None):
        self.penalty = penalty
        self.loss_mult = loss_mult

    def _diffs(self, y):
        vol_shape = [n for n in y.shape][2:]
        ndims = len(vol_shape)
        df = [None] * ndims
        for i in range(ndims):
            d = i + 2
            # permute dimensions so the one differenced comes first
            r = [d, *range(0, d), *range(d + 1, ndims + 2)]
            y = y.permute(r)
            dfi = y[1:, ...] - y[:-1, ...]
            # permute back
            r = [*range(d - 1, d + 1), *reversed(range(1, d - 1)), 0, *range(d + 1, ndims + 2)]
            df[i] = dfi.permute(r)
        return df

    def loss(self, _, y_pred):
        if self.penalty == "l1":
            dif = [torch.abs(f) for f in self._diffs(y_pred)]
        else:
            assert self.penalty == "l2", "penalty can only be l1 or l2. Got: %s" % self.penalty
            dif = [f * f for f in self._diffs(y_pred)]
        df = [torch.mean(torch.flatten(f, start_dim=1), dim=-1) for f in dif]
        grad = sum(df) / len(df)
        if self.loss_mult is not None:
            grad *= self.loss_mult
        return grad.mean()


def jacobian_determinant_torch(disp):
    """det(I + grad u) per voxel of a (B, 3, D, H, W) displacement, by central differences."""
    rows = []
    for c in range(3):
        rows.append(torch.stack(torch.gradient(disp[:, c], dim=(1, 2, 3)), dim=-1))
    jac = torch.stack(rows, dim=-2) + torch.eye(3)
    return torch.linalg.det(jac)


def jacobian_determinant_np(disp):
    """voxelmorph's numpy edition for one (D, H, W, 3) displacement: np.gradient of the deformation."""
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in disp.shape[:-1]], indexing="ij"), -1)
    J = np.gradient(disp + grid)
    dx, dy, dz = J[0], J[1], J[2]
    jdet0 = dx[..., 0] * (dy[..., 1] * dz[..., 2] - dy[..., 2] * dz[..., 1])
    jdet1 = dx[..., 1] * (dy[..., 0] * dz[..., 2] - dy[..., 2] * dz[..., 0])
    jdet2 = dx[..., 2] * (dy[..., 0] * dz[..., 1] - dy[..., 1] * dz[..., 0])
    return jdet0 - jdet1 + jdet2


# ---------------------------------------------------------------- experiment
data_rng = np.random.RandomState(7)
n_train, n_val = 12, 4
fixed_np = np.stack([make_subject(data_rng) for _ in range(n_train + n_val)])[:, None]
fields_np = np.stack([smooth_field(data_rng) for _ in range(n_train + n_val)])
warper = SpatialTransformer(inshape).to(device)
with torch.no_grad():
    fixed_all = torch.from_numpy(fixed_np).to(device)
    moving_all = warper(fixed_all, torch.from_numpy(fields_np).to(device))
print(f"volumes: fixed {tuple(fixed_all.shape)} moving {tuple(moving_all.shape)} "
      f"dtype {str(fixed_all.dtype).replace('torch.', '')}")

with torch.no_grad():
    identity = warper(fixed_all[:2], torch.zeros(2, 3, *inshape))
zero_warp_err = (identity - fixed_all[:2]).abs().max().item()
assert zero_warp_err < 1e-4, zero_warp_err
print(f"zero flow warps to itself: max err {zero_warp_err:.2e}")

model = VxmDense(inshape, int_steps=7).to(device)
model.train()
assert "grid" not in model.state_dict() and "transformer.grid" not in model.state_dict()
print(f"parameters: {sum(p.numel() for p in model.parameters())}, "
      f"state_dict keys: {len(model.state_dict())}")

image_loss_func = NCC(win=[5, 5, 5]).loss
losses = [image_loss_func, Grad("l2", loss_mult=1).loss]
weights = [1.0, 0.05]
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)


def evaluate():
    model.eval()
    with torch.no_grad():
        moving, fixed = moving_all[n_train:], fixed_all[n_train:]
        moved, warp = model(moving, fixed, registration=True)
        before = -image_loss_func(fixed, moving).item()
        after = -image_loss_func(fixed, moved).item()
    model.train()
    return before, after, warp


ncc_before, ncc_start, _ = evaluate()
print(f"val ncc: unregistered {ncc_before:.4f}, untrained model {ncc_start:.4f}")

batch_size, n_epochs = 4, 10
first_loss = None
for epoch in range(n_epochs):
    perm = torch.randperm(n_train)
    epoch_loss = []
    for b in range(0, n_train, batch_size):
        idx = perm[b:b + batch_size]
        inputs = [moving_all[idx], fixed_all[idx]]
        y_true = [fixed_all[idx], None]
        y_pred = model(*inputs)
        loss = 0
        loss_list = []
        for n, loss_function in enumerate(losses):
            curr_loss = loss_function(y_true[n], y_pred[n]) * weights[n]
            loss_list.append(curr_loss.item())
            loss += curr_loss
        epoch_loss.append(loss_list)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    mean_losses = np.mean(epoch_loss, axis=0)
    total = float(np.sum(mean_losses))
    if first_loss is None:
        first_loss = total
    if epoch % 3 == 0 or epoch == n_epochs - 1:
        print(f"epoch {epoch + 1}/{n_epochs} loss {total:.4e} "
              f"({', '.join('%.4e' % f for f in mean_losses)})")

ncc_before, ncc_after, warp = evaluate()
print(f"val ncc: unregistered {ncc_before:.4f}, registered {ncc_after:.4f}")
assert warp.shape == (n_val, 3, *inshape)

jdet = jacobian_determinant_torch(warp)
neg_jac_frac = (jdet <= 0).float().mean().item()
jdet_np = np.stack([jacobian_determinant_np(w) for w in warp.permute(0, 2, 3, 4, 1).numpy()])
jac_np_err = float(np.abs(jdet.numpy() - jdet_np).max())
assert jac_np_err < 1e-3, jac_np_err
print(f"jacobian: det range [{jdet.min().item():.3f}, {jdet.max().item():.3f}], "
      f"non-positive fraction {neg_jac_frac:.4f}, numpy agreement {jac_np_err:.1e}")
assert ncc_after > ncc_before

print(f"FINAL ncc_gain={ncc_after - ncc_before:.4f} loss_drop={first_loss - total:.4f} "
      f"neg_jac_frac={neg_jac_frac:.4f} zero_warp_err={zero_warp_err:.2e} jac_np_err={jac_np_err:.2e}")
