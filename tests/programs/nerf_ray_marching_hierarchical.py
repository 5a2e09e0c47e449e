"""NeRF's hierarchical volume sampling, as nerf-pytorch (yenchenlin) and nerf_pl write it, in flatland.

Two networks, as in the paper: a coarse one evaluated at stratified samples along each ray
(``torch.linspace(0., 1., steps=N)`` mapped to ``near * (1. - t_vals) + far * t_vals``, then jittered
inside the mid-point bins with ``torch.rand``), and a fine one evaluated at those samples plus
``N_importance`` more drawn from the coarse weights by inverse-transform sampling: nerf-pytorch's
``sample_pdf`` (``weights + 1e-5``, ``torch.cumsum`` of the pdf with a zero in front,
``torch.searchsorted(cdf, u, right=True)``, ``below``/``above`` by ``torch.max``/``torch.min``,
``torch.gather`` of ``cdf`` and ``bins`` through ``unsqueeze(1).expand(matched_shape)``,
``torch.where(denom < 1e-5, ...)``), fed ``weights[..., 1:-1].detach()`` as nerf_pl does, then
``torch.sort`` of the merged samples.  ``raw2outputs``: ``alpha = 1. - torch.exp(-F.relu(raw) * dists)``,
``weights = alpha * torch.cumprod(torch.cat([torch.ones((N_rays, 1)), 1. - alpha + 1e-10], -1), -1)[:, :-1]``,
``disp_map`` by ``torch.max(1e-10 * torch.ones_like(depth), depth / acc)``.  The ``Embedder`` class with
``freq_bands = 2. ** torch.linspace(0., max_freq, steps=N_freqs)`` and per-frequency lambdas over
``torch.sin``/``torch.cos``; ``batchify`` in chunks; ``mse2psnr`` by ``torch.log(torch.Tensor([10.]))``;
nerf-pytorch's exponential learning-rate decay written into ``optimizer.param_groups``.

The scene is 2-D and exact: a camera on a circle looks at two discs (one coloured by the angle of
its normal, one flat red) and sees a 1-D image; truth by ray-circle intersection.  The program
reports the coarse and the fine pass's PSNR and depth error on a held-out view.
"""

import math
import os
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

W_IMG = 48
FOV = math.radians(50.0)
near, far = 1.5, 6.5
N_samples, N_importance = 12, 24
DISCS = [((0.0, 0.0), 1.0, None), ((0.9, 1.3), 0.45, (0.9, 0.15, 0.1))]

img2mse = lambda x, y: torch.mean((x - y) ** 2)
mse2psnr = lambda x: -10. * torch.log(x) / torch.log(torch.Tensor([10.]))


def get_rays(theta):
    """Rays of a 1-D pinhole camera at angle theta on the circle of radius 4, looking at the origin."""
    origin = torch.tensor([4.0 * math.cos(theta), 4.0 * math.sin(theta)])
    forward = -origin / origin.norm()
    right = torch.stack([forward[1], -forward[0]])
    offsets = torch.linspace(-1., 1., W_IMG) * math.tan(FOV / 2)
    rays_d = forward[None, :] + offsets[:, None] * right[None, :]
    rays_o = origin.expand(rays_d.shape)
    return rays_o, rays_d


def render_truth(rays_o, rays_d):
    """Colour and hit distance (along the unnormalised direction) of the nearest disc, or black."""
    best_t = torch.full(rays_o.shape[:1], float("inf"))
    colour = torch.zeros(rays_o.shape[0], 3)
    for (cx, cy), radius, flat in DISCS:
        centre = torch.tensor([cx, cy])
        oc = rays_o - centre
        a = (rays_d * rays_d).sum(-1)
        b = (oc * rays_d).sum(-1)
        c = (oc * oc).sum(-1) - radius ** 2
        disc = b * b - a * c
        t = (-b - torch.sqrt(disc.clamp(min=0))) / a
        hit = (disc > 0) & (t > 0) & (t < best_t)
        point = rays_o + t[:, None] * rays_d
        normal = (point - centre) / radius
        if flat is None:
            angle = torch.atan2(normal[:, 1], normal[:, 0])
            this = torch.stack([0.5 + 0.5 * torch.cos(angle), 0.5 + 0.5 * torch.sin(angle),
                                0.5 + 0.5 * torch.cos(2 * angle)], -1)
        else:
            this = torch.tensor(flat).expand(rays_o.shape[0], 3)
        colour = torch.where(hit[:, None], this, colour)
        best_t = torch.where(hit, t, best_t)
    return colour, best_t


class Embedder:
    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.create_embedding_fn()

    def create_embedding_fn(self):
        embed_fns = []
        d = self.kwargs['input_dims']
        out_dim = 0
        if self.kwargs['include_input']:
            embed_fns.append(lambda x: x)
            out_dim += d
        max_freq = self.kwargs['max_freq_log2']
        N_freqs = self.kwargs['num_freqs']
        if self.kwargs['log_sampling']:
            freq_bands = 2. ** torch.linspace(0., max_freq, steps=N_freqs)
        else:
            freq_bands = torch.linspace(2. ** 0., 2. ** max_freq, steps=N_freqs)
        for freq in freq_bands:
            for p_fn in self.kwargs['periodic_fns']:
                embed_fns.append(lambda x, p_fn=p_fn, freq=freq: p_fn(x * freq))
                out_dim += d
        self.embed_fns = embed_fns
        self.out_dim = out_dim

    def embed(self, inputs):
        return torch.cat([fn(inputs) for fn in self.embed_fns], -1)


def get_embedder(multires):
    embed_kwargs = {
        'include_input': True,
        'input_dims': 2,
        'max_freq_log2': multires - 1,
        'num_freqs': multires,
        'log_sampling': True,
        'periodic_fns': [torch.sin, torch.cos],
    }
    embedder_obj = Embedder(**embed_kwargs)
    return lambda x, eo=embedder_obj: eo.embed(x), embedder_obj.out_dim


class NeRF(nn.Module):
    def __init__(self, D=3, W=64, input_ch=2, skips=(1,)):
        super().__init__()
        self.skips = skips
        self.pts_linears = nn.ModuleList(
            [nn.Linear(input_ch, W)] + [nn.Linear(W + input_ch if i in skips else W, W) for i in range(1, D)])
        self.output_linear = nn.Linear(W, 4)

    def forward(self, x):
        h = x
        for i, layer in enumerate(self.pts_linears):
            if i in self.skips:
                h = torch.cat([x, h], -1)
            h = F.relu(layer(h))
        return self.output_linear(h)


def batchify(fn, chunk):
    if chunk is None:
        return fn

    def ret(inputs):
        return torch.cat([fn(inputs[i:i + chunk]) for i in range(0, inputs.shape[0], chunk)], 0)
    return ret


def run_network(inputs, fn, embed_fn, netchunk=1024):
    inputs_flat = torch.reshape(inputs, [-1, inputs.shape[-1]])
    embedded = embed_fn(inputs_flat)
    outputs_flat = batchify(fn, netchunk)(embedded)
    return torch.reshape(outputs_flat, list(inputs.shape[:-1]) + [outputs_flat.shape[-1]])


def raw2outputs(raw, z_vals, rays_d, raw_noise_std=0.):
    raw2alpha = lambda raw, dists, act_fn=F.relu: 1. - torch.exp(-act_fn(raw) * dists)
    dists = z_vals[..., 1:] - z_vals[..., :-1]
    dists = torch.cat([dists, torch.Tensor([1e10]).expand(dists[..., :1].shape)], -1)
    dists = dists * torch.norm(rays_d[..., None, :], dim=-1)
    rgb = torch.sigmoid(raw[..., :3])
    noise = 0.
    if raw_noise_std > 0.:
        noise = torch.randn(raw[..., 3].shape) * raw_noise_std
    alpha = raw2alpha(raw[..., 3] + noise, dists)  # [N_rays, N_samples]
    weights = alpha * torch.cumprod(torch.cat([torch.ones((alpha.shape[0], 1)), 1. - alpha + 1e-10], -1), -1)[:, :-1]
    rgb_map = torch.sum(weights[..., None] * rgb, -2)
    depth_map = torch.sum(weights * z_vals, -1)
    acc_map = torch.sum(weights, -1)
    disp_map = 1. / torch.max(1e-10 * torch.ones_like(depth_map), depth_map / acc_map)
    return rgb_map, disp_map, acc_map, weights, depth_map


def sample_pdf(bins, weights, N_samples, det=False):
    # Get pdf
    weights = weights + 1e-5  # prevent nans
    pdf = weights / torch.sum(weights, -1, keepdim=True)
    cdf = torch.cumsum(pdf, -1)
    cdf = torch.cat([torch.zeros_like(cdf[..., :1]), cdf], -1)  # (batch, len(bins))

    # Take uniform samples
    if det:
        u = torch.linspace(0., 1., steps=N_samples)
        u = u.expand(list(cdf.shape[:-1]) + [N_samples])
    else:
        u = torch.rand(list(cdf.shape[:-1]) + [N_samples])

    # Invert CDF
    u = u.contiguous()
    inds = torch.searchsorted(cdf, u, right=True)
    below = torch.max(torch.zeros_like(inds - 1), inds - 1)
    above = torch.min((cdf.shape[-1] - 1) * torch.ones_like(inds), inds)
    inds_g = torch.stack([below, above], -1)  # (batch, N_samples, 2)

    matched_shape = [inds_g.shape[0], inds_g.shape[1], cdf.shape[-1]]
    cdf_g = torch.gather(cdf.unsqueeze(1).expand(matched_shape), 2, inds_g)
    bins_g = torch.gather(bins.unsqueeze(1).expand(matched_shape), 2, inds_g)

    denom = (cdf_g[..., 1] - cdf_g[..., 0])
    denom = torch.where(denom < 1e-5, torch.ones_like(denom), denom)
    t = (u - cdf_g[..., 0]) / denom
    samples = bins_g[..., 0] + t * (bins_g[..., 1] - bins_g[..., 0])
    return samples


def render_rays(rays_o, rays_d, network_fn, network_fine, embed_fn, perturb=1., raw_noise_std=1.):
    N_rays = rays_o.shape[0]
    t_vals = torch.linspace(0., 1., steps=N_samples)
    z_vals = near * (1. - t_vals) + far * (t_vals)
    z_vals = z_vals.expand([N_rays, N_samples])
    if perturb > 0.:
        # get intervals between samples
        mids = .5 * (z_vals[..., 1:] + z_vals[..., :-1])
        upper = torch.cat([mids, z_vals[..., -1:]], -1)
        lower = torch.cat([z_vals[..., :1], mids], -1)
        # stratified samples in those intervals
        t_rand = torch.rand(z_vals.shape)
        z_vals = lower + (upper - lower) * t_rand

    pts = rays_o[..., None, :] + rays_d[..., None, :] * z_vals[..., :, None]  # [N_rays, N_samples, 2]
    raw = run_network(pts, network_fn, embed_fn)
    rgb_map_0, disp_map_0, acc_map_0, weights, depth_map_0 = raw2outputs(raw, z_vals, rays_d, raw_noise_std)

    z_vals_mid = .5 * (z_vals[..., 1:] + z_vals[..., :-1])
    z_samples = sample_pdf(z_vals_mid, weights[..., 1:-1].detach(), N_importance, det=(perturb == 0.))
    z_vals, _ = torch.sort(torch.cat([z_vals, z_samples], -1), -1)
    pts = rays_o[..., None, :] + rays_d[..., None, :] * z_vals[..., :, None]  # [N_rays, N_samples + N_importance, 2]
    raw = run_network(pts, network_fine, embed_fn)
    rgb_map, disp_map, acc_map, weights_fine, depth_map = raw2outputs(raw, z_vals, rays_d, raw_noise_std)
    return {'rgb_map': rgb_map, 'disp_map': disp_map, 'acc_map': acc_map, 'depth_map': depth_map,
            'rgb0': rgb_map_0, 'disp0': disp_map_0, 'acc0': acc_map_0, 'depth0': depth_map_0,
            'z_samples': z_samples, 'z_vals': z_vals}


# --- the sampler on a known pdf -------------------------------------------------------------------
bins = torch.linspace(0., 4., 5).expand(2, 5)             # 4 bins: [0,1], [1,2], [2,3], [3,4]
known = torch.tensor([[0., 0., 1., 0.], [1., 1., 1., 1.]])
samples = sample_pdf(bins, known, 8, det=True)
print("det samples, inner ones in bin [2, 3]:", bool(((samples[0, 1:-1] >= 2.) & (samples[0, 1:-1] <= 3.)).all()),
      "ends:", [round(v, 3) for v in samples[0, [0, -1]].tolist()],
      "uniform pdf spread:", [round(v, 3) for v in samples[1].tolist()])
draws = sample_pdf(bins, known, 4000)
hist = torch.histc(draws[1], bins=4, min=0., max=4.)
print("random draws, bin shares of a uniform pdf:", [round(v, 2) for v in (hist / hist.sum()).tolist()],
      "outside [0, 4]:", int(((draws < 0) | (draws > 4)).sum()))

cdf = torch.tensor([0.0, 0.25, 0.5, 1.0])
u = torch.tensor([0.0, 0.25, 0.3, 1.0])
print("searchsorted right=True:", torch.searchsorted(cdf, u, right=True).tolist(),
      "right=False:", torch.searchsorted(cdf, u).tolist(),
      "side='right':", torch.searchsorted(cdf, u, side='right').tolist(),
      "dtype:", torch.searchsorted(cdf, u, right=True).dtype)

# why sample_pdf calls u.contiguous(): torch copies a strided operand, and says so once
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    strided_u = torch.rand(4, 3).t()
    torch.searchsorted(cdf.expand(3, 4), strided_u, right=True)
    torch.searchsorted(cdf.expand(3, 4), strided_u, right=True)
    torch.searchsorted(cdf.expand(3, 4).contiguous(), strided_u.contiguous(), right=True)
print("strided u contiguous:", strided_u.is_contiguous(), "warnings:", len(caught),
      "first words:", str(caught[0].message).split(",")[0] if caught else None)

# gradients never reach the coarse network through the resampled positions
w_probe = torch.rand(3, 6, requires_grad=True)
z_probe = sample_pdf(torch.linspace(0., 1., 7).expand(3, 7), w_probe.detach(), 5)
print("z_samples requires_grad:", z_probe.requires_grad, "weights still do:", w_probe.requires_grad)

embed_fn, input_ch = get_embedder(multires=6)
print("embedder out dim:", input_ch, "freq bands:", [round(f, 1) for f in (2. ** torch.linspace(0., 5., steps=6)).tolist()])

# --- data ------------------------------------------------------------------------------------------
train_thetas = [2 * math.pi * k / 16 for k in range(16)]
rays = [get_rays(th) for th in train_thetas]
truths = [render_truth(o, d) for o, d in rays]
all_o = torch.cat([o for o, _ in rays])
all_d = torch.cat([d for _, d in rays])
all_rgb = torch.cat([c for c, _ in truths])
print("rays:", tuple(all_o.shape), "views:", len(rays), "hit share:",
      f"{torch.isfinite(torch.cat([t for _, t in truths])).float().mean().item():.3f}")

# --- training, nerf-pytorch's loop ---------------------------------------------------------------
model = NeRF(input_ch=input_ch)
model_fine = NeRF(input_ch=input_ch)
grad_vars = list(model.parameters()) + list(model_fine.parameters())
lrate, lrate_decay = 5e-3, 200
optimizer = torch.optim.Adam(params=grad_vars, lr=lrate, betas=(0.9, 0.999))

N_rand = 128
N_iters = 160
for global_step in range(1, N_iters + 1):
    select = torch.randint(0, all_o.shape[0], (N_rand,))
    out = render_rays(all_o[select], all_d[select], model, model_fine, embed_fn)
    target_s = all_rgb[select]
    img_loss = img2mse(out['rgb_map'], target_s)
    loss = img_loss
    psnr = mse2psnr(img_loss)
    img_loss0 = img2mse(out['rgb0'], target_s)
    loss = loss + img_loss0
    psnr0 = mse2psnr(img_loss0)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

    decay_rate = 0.1
    decay_steps = lrate_decay * 1000 / 1000
    new_lrate = lrate * (decay_rate ** (global_step / decay_steps))
    for param_group in optimizer.param_groups:
        param_group['lr'] = new_lrate

    if global_step % 40 == 0:
        print(f"[TRAIN] Iter: {global_step} Loss: {loss.item():.5f} PSNR: {psnr.item():.2f} "
              f"PSNR0: {psnr0.item():.2f} lr {new_lrate:.6f}")

print("fine samples sorted:", bool((out['z_vals'][:, 1:] >= out['z_vals'][:, :-1]).all()),
      "z_vals:", tuple(out['z_vals'].shape), "z_samples grad:", out['z_samples'].requires_grad)

# --- held-out view ---------------------------------------------------------------------------------
rays_o, rays_d = get_rays(math.radians(100.0))
target, true_t = render_truth(rays_o, rays_d)
with torch.no_grad():
    out = render_rays(rays_o, rays_d, model, model_fine, embed_fn, perturb=0., raw_noise_std=0.)
psnr_coarse = mse2psnr(img2mse(out['rgb0'], target)).item()
psnr_fine = mse2psnr(img2mse(out['rgb_map'], target)).item()
hit = torch.isfinite(true_t)
depth_err_coarse = (out['depth0'][hit] - true_t[hit]).abs().mean().item()
depth_err_fine = (out['depth_map'][hit] - true_t[hit]).abs().mean().item()
# where the fine samples went: the share of them within 0.5 of the true surface on hit rays
near_surface = ((out['z_samples'][hit] - true_t[hit][:, None]).abs() < 0.5).float().mean().item()
print(f"held-out view: coarse psnr {psnr_coarse:.2f} fine psnr {psnr_fine:.2f}")
print(f"depth error coarse {depth_err_coarse:.3f} fine {depth_err_fine:.3f} "
      f"importance samples near the surface {near_surface:.3f} (uniform would give {1.0 / (far - near):.3f})")
print(f"opacity on hit rays {out['acc_map'][hit].mean().item():.3f} disparity on hit rays "
      f"{out['disp_map'][hit].min().item():.3f}..{out['disp_map'][hit].max().item():.3f}")
print(f"FINAL psnr_coarse={psnr_coarse:.3f} psnr_fine={psnr_fine:.3f} depth_err_coarse={depth_err_coarse:.3f} "
      f"depth_err_fine={depth_err_fine:.3f} near_surface={near_surface:.3f}")
