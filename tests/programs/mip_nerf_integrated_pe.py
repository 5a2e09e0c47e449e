"""mip-NeRF as google/mipnerf writes it (internal/mip.py, internal/models.py), in its PyTorch ports'
spelling, on a 2-D scene: cones cast through 1-D pixels are cut into conical frustums at ``t_vals``
and each frustum is approximated by a Gaussian (``conical_frustum_to_gaussian`` with the stable
``mu``/``hw`` form, ``lift_gaussian`` to a ``mean`` and a diagonal covariance ``cov_diag`` from the
direction's outer-product diagonal and its null space), encoded by the integrated positional
encoding (``scales = torch.tensor([2 ** i for i in range(min_deg, max_deg)])``, ``y`` and ``y_var``
by broadcasting and ``reshape``, ``expected_sin``: ``torch.exp(-0.5 * x_var) * torch.sin(x)`` over
``torch.cat([y, y + 0.5 * math.pi], dim=-1)``); one MLP for the coarse and the fine pass;
``volumetric_rendering`` by ``1 - torch.exp(-density * delta)``, transmittance by ``torch.cumprod``
of ``1 - alpha`` with an exclusive shift (against ``torch.exp(-torch.cumsum(...))``, must agree),
``torch.linalg.norm`` of the directions; ``resample_along_rays``: the weights blurred by a 2-tap max
then a 2-tap mean with ``resample_padding``, ``sorted_piecewise_constant_pdf`` by ``torch.cumsum``
+ ``torch.minimum`` + ``torch.searchsorted(cdf, u, right=True)`` + ``torch.clamp`` + ``torch.gather``
(stratified ``u`` from ``torch.rand`` in training), ``.detach()`` of the new ``t_vals``;
``F.softplus`` density with a shifted bias and a widened ``sigmoid`` colour; loss
``0.1 * coarse + fine`` MSE, Adam with log-linear learning-rate decay written into ``param_groups``.

Checks: the IPE tends to plain PE as the variance shrinks (the error, falling with it), the
rendered weights never sum above one, the PSNR of a held-out view rises.
"""
# ruff: noqa: F823  (the model's own loop: `weights` comes from the previous level)

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


# --- internal/mip.py ---------------------------------------------------------------------------
def pos_enc(x, min_deg, max_deg, append_identity=True):
    scales = torch.tensor([2**i for i in range(min_deg, max_deg)], dtype=x.dtype, device=x.device)
    xb = torch.reshape((x[..., None, :] * scales[:, None]), list(x.shape[:-1]) + [-1])
    four_feat = torch.sin(torch.cat([xb, xb + 0.5 * math.pi], dim=-1))
    if append_identity:
        return torch.cat([x] + [four_feat], dim=-1)
    return four_feat


def expected_sin(x, x_var):
    # E[sin(x)] for x ~ N(x, x_var), and its variance
    y = torch.exp(-0.5 * x_var) * torch.sin(x)
    y_var = torch.clamp(0.5 * (1 - torch.exp(-2 * x_var) * torch.cos(2 * x)) - y**2, min=0)
    return y, y_var


def integrated_pos_enc(x_coord, min_deg, max_deg):
    x, x_cov_diag = x_coord
    scales = torch.tensor([2**i for i in range(min_deg, max_deg)], dtype=x.dtype, device=x.device)
    shape = list(x.shape[:-1]) + [-1]
    y = torch.reshape(x[..., None, :] * scales[:, None], shape)
    y_var = torch.reshape(x_cov_diag[..., None, :] * scales[:, None] ** 2, shape)
    return expected_sin(torch.cat([y, y + 0.5 * math.pi], dim=-1), torch.cat([y_var] * 2, dim=-1))[0]


def lift_gaussian(d, t_mean, t_var, r_var):
    mean = d[..., None, :] * t_mean[..., None]
    d_mag_sq = torch.clamp(torch.sum(d**2, dim=-1, keepdim=True), min=1e-10)
    d_outer_diag = d**2
    null_outer_diag = 1 - d_outer_diag / d_mag_sq
    t_cov_diag = t_var[..., None] * d_outer_diag[..., None, :]
    xy_cov_diag = r_var[..., None] * null_outer_diag[..., None, :]
    cov_diag = t_cov_diag + xy_cov_diag
    return mean, cov_diag


def conical_frustum_to_gaussian(d, t0, t1, base_radius):
    mu = (t0 + t1) / 2
    hw = (t1 - t0) / 2
    t_mean = mu + (2 * mu * hw**2) / (3 * mu**2 + hw**2)
    t_var = (hw**2) / 3 - (4 / 15) * ((hw**4 * (12 * mu**2 - hw**2)) / (3 * mu**2 + hw**2) ** 2)
    r_var = base_radius**2 * ((mu**2) / 4 + (5 / 12) * hw**2 - 4 / 15 * (hw**4) / (3 * mu**2 + hw**2))
    return lift_gaussian(d, t_mean, t_var, r_var)


def cast_rays(t_vals, origins, directions, radii):
    t0 = t_vals[..., :-1]
    t1 = t_vals[..., 1:]
    means, covs = conical_frustum_to_gaussian(directions, t0, t1, radii)
    means = means + origins[..., None, :]
    return means, covs


def sample_along_rays(origins, directions, radii, num_samples, near, far, randomized):
    batch_size = origins.shape[0]
    t_vals = torch.linspace(0.0, 1.0, num_samples + 1)
    t_vals = near * (1.0 - t_vals) + far * t_vals
    if randomized:
        mids = 0.5 * (t_vals[..., 1:] + t_vals[..., :-1])
        upper = torch.cat([mids, t_vals[..., -1:]], -1)
        lower = torch.cat([t_vals[..., :1], mids], -1)
        t_rand = torch.rand(batch_size, num_samples + 1)
        t_vals = lower + (upper - lower) * t_rand
    else:
        t_vals = torch.broadcast_to(t_vals, [batch_size, num_samples + 1])
    means, covs = cast_rays(t_vals, origins, directions, radii)
    return t_vals, (means, covs)


def sorted_piecewise_constant_pdf(bins, weights, num_samples, randomized):
    eps = 1e-5
    weight_sum = torch.sum(weights, dim=-1, keepdim=True)
    padding = torch.clamp(eps - weight_sum, min=0)
    weights = weights + padding / weights.shape[-1]
    weight_sum = weight_sum + padding

    pdf = weights / weight_sum
    cdf = torch.minimum(torch.ones_like(pdf[..., :-1]), torch.cumsum(pdf[..., :-1], dim=-1))
    cdf = torch.cat([torch.zeros_like(cdf[..., :1]), cdf, torch.ones_like(cdf[..., :1])], dim=-1)

    if randomized:
        s = 1 / num_samples
        u = torch.arange(num_samples) * s
        u = u + torch.rand(list(cdf.shape[:-1]) + [num_samples]) * (s - torch.finfo(torch.float32).eps)
        u = torch.clamp(u, max=1.0 - torch.finfo(torch.float32).eps)
    else:
        u = torch.linspace(0.0, 1.0 - torch.finfo(torch.float32).eps, num_samples)
        u = torch.broadcast_to(u, list(cdf.shape[:-1]) + [num_samples])
    u = u.contiguous()

    inds = torch.searchsorted(cdf, u, right=True)
    below = torch.clamp(inds - 1, min=0)
    above = torch.clamp(inds, max=cdf.shape[-1] - 1)
    cdf_g0, cdf_g1 = torch.gather(cdf, -1, below), torch.gather(cdf, -1, above)
    bins_g0, bins_g1 = torch.gather(bins, -1, below), torch.gather(bins, -1, above)

    denom = cdf_g1 - cdf_g0
    t = torch.clamp(torch.nan_to_num((u - cdf_g0) / denom, 0.0), 0, 1)
    samples = bins_g0 + t * (bins_g1 - bins_g0)
    return samples


def resample_along_rays(origins, directions, radii, t_vals, weights, randomized, resample_padding=0.01):
    weights_pad = torch.cat([weights[..., :1], weights, weights[..., -1:]], dim=-1)
    weights_max = torch.maximum(weights_pad[..., :-1], weights_pad[..., 1:])
    weights_blur = 0.5 * (weights_max[..., :-1] + weights_max[..., 1:])
    weights = weights_blur + resample_padding

    new_t_vals = sorted_piecewise_constant_pdf(t_vals, weights, t_vals.shape[-1], randomized).detach()
    means, covs = cast_rays(new_t_vals, origins, directions, radii)
    return new_t_vals, (means, covs)


def volumetric_rendering(rgb, density, t_vals, dirs):
    t_mids = 0.5 * (t_vals[..., :-1] + t_vals[..., 1:])
    t_dists = t_vals[..., 1:] - t_vals[..., :-1]
    delta = t_dists * torch.linalg.norm(dirs[..., None, :], dim=-1)
    density_delta = density[..., 0] * delta

    alpha = 1 - torch.exp(-density_delta)
    trans = torch.cumprod(1 - alpha + 1e-10, dim=-1)
    trans = torch.cat([torch.ones_like(trans[..., :1]), trans[..., :-1]], dim=-1)
    weights = alpha * trans

    comp_rgb = (weights[..., None] * rgb).sum(dim=-2)
    acc = weights.sum(dim=-1)
    distance = (weights * t_mids).sum(dim=-1) / acc
    distance = torch.clamp(torch.nan_to_num(distance, float("inf")), t_vals[:, 0], t_vals[:, -1])
    return comp_rgb, distance, acc, weights, density_delta


# --- internal/models.py ------------------------------------------------------------------------
class MLP(nn.Module):
    def __init__(self, in_dim, net_width=64, net_depth=4, skip_layer=2):
        super().__init__()
        self.skip_layer = skip_layer
        layers = []
        for i in range(net_depth):
            d_in = in_dim if i == 0 else net_width + (in_dim if i == skip_layer else 0)
            layers.append(nn.Linear(d_in, net_width))
        self.layers = nn.ModuleList(layers)
        self.density_layer = nn.Linear(net_width, 1)
        self.rgb_layer = nn.Linear(net_width, 3)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        inputs = x
        for i, layer in enumerate(self.layers):
            if i == self.skip_layer:
                x = torch.cat([x, inputs], dim=-1)
            x = F.relu(layer(x))
        return self.rgb_layer(x), self.density_layer(x)


class MipNerfModel(nn.Module):
    def __init__(self, num_samples=16, min_deg_point=0, max_deg_point=6, num_levels=2):
        super().__init__()
        self.num_samples = num_samples
        self.min_deg_point = min_deg_point
        self.max_deg_point = max_deg_point
        self.num_levels = num_levels
        self.density_bias = -1.0
        self.rgb_padding = 0.001
        self.mlp = MLP(2 * 2 * (max_deg_point - min_deg_point))

    def forward(self, rays, randomized, near=1.0, far=7.0):
        origins, directions, radii = rays
        ret = []
        for i_level in range(self.num_levels):
            if i_level == 0:
                t_vals, samples = sample_along_rays(
                    origins, directions, radii, self.num_samples, near, far, randomized
                )
            else:
                t_vals, samples = resample_along_rays(
                    origins, directions, radii, t_vals, weights, randomized
                )
            samples_enc = integrated_pos_enc(samples, self.min_deg_point, self.max_deg_point)
            raw_rgb, raw_density = self.mlp(samples_enc)
            rgb = torch.sigmoid(raw_rgb)
            rgb = rgb * (1 + 2 * self.rgb_padding) - self.rgb_padding
            density = F.softplus(raw_density + self.density_bias)
            comp_rgb, distance, acc, weights, density_delta = volumetric_rendering(
                rgb, density, t_vals, directions
            )
            ret.append((comp_rgb, distance, acc, weights, density_delta))
        return ret


# --- the scene: two discs seen from a circle of cameras, 1-D images ---------------------------
rng = np.random.RandomState(0)
DISCS = [  # centre, radius, colour
    (np.array([-0.6, 0.3]), 0.8, np.array([0.9, 0.2, 0.2])),
    (np.array([0.7, -0.4]), 0.6, np.array([0.2, 0.3, 0.9])),
]
N_PIX, FOV = 32, 0.6


def camera_rays(theta):
    origin = 4.0 * np.array([np.cos(theta), np.sin(theta)])
    phi = np.linspace(-FOV / 2, FOV / 2, N_PIX)
    look = theta + np.pi + phi
    dirs = np.stack([np.cos(look), np.sin(look)], -1)
    radii = np.full((N_PIX, 1), (FOV / (N_PIX - 1)) * 2 / np.sqrt(12))
    return np.repeat(origin[None], N_PIX, 0), dirs, radii


def render_truth(origins, dirs, radii):
    # a cone's pixel colour: the mean over sub-rays across its footprint of the first disc hit
    out = np.zeros((len(origins), 3))
    offs = np.linspace(-1.5, 1.5, 7)
    for o in offs:
        ang = np.arctan2(dirs[:, 1], dirs[:, 0]) + o * radii[:, 0]
        d = np.stack([np.cos(ang), np.sin(ang)], -1)
        best_t = np.full(len(origins), np.inf)
        col = np.zeros((len(origins), 3))
        for c, r, rgb in DISCS:
            oc = origins - c
            b = (oc * d).sum(-1)
            disc = b**2 - ((oc**2).sum(-1) - r**2)
            t = -b - np.sqrt(np.maximum(disc, 0))
            hit = (disc > 0) & (t > 0) & (t < best_t)
            best_t[hit] = t[hit]
            col[hit] = rgb
        out += col / len(offs)
    return out


def make_views(thetas):
    o, d, r = zip(*[camera_rays(t) for t in thetas])
    o, d, r = np.concatenate(o), np.concatenate(d), np.concatenate(r)
    rgb = render_truth(o, d, r)
    return tuple(torch.from_numpy(a).float() for a in (o, d, r, rgb))


train_thetas = np.linspace(0, 2 * np.pi, 48, endpoint=False)
test_thetas = train_thetas[::8] + np.pi / 48
o_tr, d_tr, r_tr, rgb_tr = make_views(train_thetas)
o_te, d_te, r_te, rgb_te = make_views(test_thetas)
print(f"train rays {o_tr.shape[0]} test rays {o_te.shape[0]}")


# --- IPE tends to PE as the Gaussians shrink -----------------------------------------------------
_, (means, covs) = sample_along_rays(o_te[:64], d_te[:64], r_te[:64], 24, 1.0, 7.0, False)
pe = pos_enc(means, 0, 6, append_identity=False)
ipe_errs = []
for shrink in (1.0, 1e-2, 1e-4, 1e-6):
    ipe = integrated_pos_enc((means, covs * shrink), 0, 6)
    ipe_errs.append((ipe - pe).abs().max().item())
print("IPE vs PE as var shrinks: " + " ".join(f"{e:.2e}" for e in ipe_errs))
assert all(a > b for a, b in zip(ipe_errs, ipe_errs[1:]))
assert ipe.shape == pe.shape == (64, 24, 24)
ipe_pe_err = ipe_errs[-1]


def mse2psnr(x):
    return -10.0 * torch.log10(x)


def evaluate(model):
    model.eval()
    with torch.no_grad():
        ret = model((o_te, d_te, r_te), randomized=False)
        comp_rgb, _, acc, weights, density_delta = ret[-1]
        psnr = mse2psnr(F.mse_loss(comp_rgb, rgb_te)).item()
    model.train()
    return psnr, acc, weights, density_delta


model = MipNerfModel()
optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
lr_init, lr_final, max_steps = 5e-3, 5e-4, 120

psnr0, _, _, _ = evaluate(model)
print(f"step 0 test psnr {psnr0:.2f}")

batch = 192
for step in range(1, max_steps + 1):
    idx = torch.randint(0, o_tr.shape[0], (batch,))
    rays = (o_tr[idx], d_tr[idx], r_tr[idx])
    ret = model(rays, randomized=True)
    losses = [F.mse_loss(r[0], rgb_tr[idx]) for r in ret]
    loss = 0.1 * losses[0] + losses[1]

    lr = math.exp(np.interp(step / max_steps, [0, 1], [math.log(lr_init), math.log(lr_final)]))
    for param_group in optimizer.param_groups:
        param_group["lr"] = lr
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 40 == 0:
        psnr, _, _, _ = evaluate(model)
        print(
            f"step {step} coarse {losses[0].item():.4f} fine {losses[1].item():.4f} "
            f"lr {lr:.2e} test psnr {psnr:.2f}"
        )

psnr, acc, weights, density_delta = evaluate(model)
acc_max = acc.max().item()
trans_exp = torch.exp(
    -torch.cat([torch.zeros_like(density_delta[..., :1]), torch.cumsum(density_delta[..., :-1], dim=-1)], -1)
)
weights_exp = (1 - torch.exp(-density_delta)) * trans_exp
trans_err = (weights - weights_exp).abs().max().item()
print(f"weights: sum max {acc_max:.4f} min {acc.min().item():.4f} cumprod vs exp-cumsum {trans_err:.2e}")
assert acc_max <= 1.0 + 1e-5 and (weights >= 0).all()
assert psnr > psnr0 + 3

print(
    f"FINAL psnr={psnr:.3f} psnr_gain={psnr - psnr0:.3f} ipe_pe_err={ipe_pe_err:.3e} "
    f"weights_sum_max={acc_max:.4f} trans_err={trans_err:.3e}"
)
