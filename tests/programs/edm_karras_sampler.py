"""Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative Models", as
NVlabs/edm writes it (training/networks.py, training/loss.py, generate.py), on a 2-D toy: a mixture
of four Gaussians. ``EDMPrecond`` with ``c_skip = sigma_data ** 2 / (sigma ** 2 + sigma_data ** 2)``,
``c_out``, ``c_in``, ``c_noise = sigma.log() / 4``, ``round_sigma`` by ``torch.as_tensor``, the
input cast by ``x.to(torch.float32)`` and ``sigma.to(torch.float32).reshape(-1, 1)``; the noise
conditioning by ``PositionalEmbedding`` (``x.ger(freqs.to(x.dtype))``, ``torch.cat([x.cos(),
x.sin()], dim=1)``); ``EDMLoss`` with log-normal sigmas ``(torch.randn([n, 1]) * P_std +
P_mean).exp()`` and the weight ``(sigma ** 2 + sigma_data ** 2) / (sigma * sigma_data) ** 2``; and
``edm_sampler``: the ``t_steps`` schedule ``(sigma_max ** (1 / rho) + step_indices / (num_steps - 1)
* (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho`` in float64, ``torch.cat([
net.round_sigma(t_steps), torch.zeros_like(t_steps[:1])])``, ``latents.to(torch.float64) *
t_steps[0]``, stochastic churn ``gamma = min(S_churn / num_steps, np.sqrt(2) - 1) if S_min <= t_cur
<= S_max else 0`` with ``(t_hat ** 2 - t_cur ** 2).sqrt() * S_noise * randn_like(x_cur)``, the Euler
step and Heun's 2nd-order correction, the denoiser's output brought back by ``.to(torch.float64)``.
Samples from the deterministic (``S_churn=0``) and the stochastic sampler are summarised by their
mean, standard deviation, distance to the nearest mode and the share of the rarest mode.
"""

import os

import numpy as np
import torch

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

MODES = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]], dtype=np.float32)


def make_data(n, rng):
    which = rng.randint(0, len(MODES), size=n)
    return (MODES[which] + 0.1 * rng.randn(n, 2)).astype(np.float32)


class PositionalEmbedding(torch.nn.Module):
    def __init__(self, num_channels, max_positions=10000, endpoint=False):
        super().__init__()
        self.num_channels = num_channels
        self.max_positions = max_positions
        self.endpoint = endpoint

    def forward(self, x):
        freqs = torch.arange(start=0, end=self.num_channels // 2, dtype=torch.float32, device=x.device)
        freqs = freqs / (self.num_channels // 2 - (1 if self.endpoint else 0))
        freqs = (1 / self.max_positions) ** freqs
        x = x.ger(freqs.to(x.dtype))
        x = torch.cat([x.cos(), x.sin()], dim=1)
        return x


class ToyMLP(torch.nn.Module):
    def __init__(self, dim=2, emb_channels=16, hidden=64):
        super().__init__()
        self.map_noise = PositionalEmbedding(num_channels=emb_channels, endpoint=True)
        self.map_layer = torch.nn.Linear(emb_channels, hidden)
        self.inp = torch.nn.Linear(dim, hidden)
        self.net = torch.nn.Sequential(torch.nn.SiLU(), torch.nn.Linear(hidden, hidden), torch.nn.SiLU(),
                                       torch.nn.Linear(hidden, dim))

    def forward(self, x, noise_labels):
        emb = torch.nn.functional.silu(self.map_layer(self.map_noise(noise_labels)))
        return self.net(self.inp(x) + emb)


class EDMPrecond(torch.nn.Module):
    def __init__(self, dim=2, sigma_min=0, sigma_max=float('inf'), sigma_data=0.5):
        super().__init__()
        self.dim = dim
        self.sigma_min = sigma_min
        self.sigma_max = sigma_max
        self.sigma_data = sigma_data
        self.model = ToyMLP(dim)

    def forward(self, x, sigma):
        x = x.to(torch.float32)
        sigma = sigma.to(torch.float32).reshape(-1, 1)
        dtype = torch.float32

        c_skip = self.sigma_data ** 2 / (sigma ** 2 + self.sigma_data ** 2)
        c_out = sigma * self.sigma_data / (sigma ** 2 + self.sigma_data ** 2).sqrt()
        c_in = 1 / (self.sigma_data ** 2 + sigma ** 2).sqrt()
        c_noise = sigma.log() / 4

        F_x = self.model((c_in * x).to(dtype), c_noise.flatten())
        assert F_x.dtype == dtype
        D_x = c_skip * x + c_out * F_x.to(torch.float32)
        return D_x

    def round_sigma(self, sigma):
        return torch.as_tensor(sigma)


class EDMLoss:
    def __init__(self, P_mean=-1.2, P_std=1.2, sigma_data=0.5):
        self.P_mean = P_mean
        self.P_std = P_std
        self.sigma_data = sigma_data

    def __call__(self, net, images):
        rnd_normal = torch.randn([images.shape[0], 1], device=images.device)
        sigma = (rnd_normal * self.P_std + self.P_mean).exp()
        weight = (sigma ** 2 + self.sigma_data ** 2) / (sigma * self.sigma_data) ** 2
        y = images
        n = torch.randn_like(y) * sigma
        D_yn = net(y + n, sigma)
        loss = weight * ((D_yn - y) ** 2)
        return loss


def edm_sampler(
    net, latents, randn_like=torch.randn_like,
    num_steps=18, sigma_min=0.002, sigma_max=80, rho=7,
    S_churn=0, S_min=0, S_max=float('inf'), S_noise=1,
):
    # Adjust noise levels based on what's supported by the network.
    sigma_min = max(sigma_min, net.sigma_min)
    sigma_max = min(sigma_max, net.sigma_max)

    # Time step discretization.
    step_indices = torch.arange(num_steps, dtype=torch.float64, device=latents.device)
    t_steps = (sigma_max ** (1 / rho) + step_indices / (num_steps - 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    t_steps = torch.cat([net.round_sigma(t_steps), torch.zeros_like(t_steps[:1])])  # t_N = 0

    # Main sampling loop.
    x_next = latents.to(torch.float64) * t_steps[0]
    for i, (t_cur, t_next) in enumerate(zip(t_steps[:-1], t_steps[1:])):  # 0, ..., N-1
        x_cur = x_next

        # Increase noise temporarily.
        gamma = min(S_churn / num_steps, np.sqrt(2) - 1) if S_min <= t_cur <= S_max else 0
        t_hat = net.round_sigma(t_cur + gamma * t_cur)
        x_hat = x_cur + (t_hat ** 2 - t_cur ** 2).sqrt() * S_noise * randn_like(x_cur)

        # Euler step.
        denoised = net(x_hat, t_hat).to(torch.float64)
        d_cur = (x_hat - denoised) / t_hat
        x_next = x_hat + (t_next - t_hat) * d_cur

        # Apply 2nd order correction.
        if i < num_steps - 1:
            denoised = net(x_next, t_next).to(torch.float64)
            d_prime = (x_next - denoised) / t_next
            x_next = x_hat + (t_next - t_hat) * (0.5 * d_cur + 0.5 * d_prime)

    return x_next


def summarise(name, x):
    sampled_dtype = x.dtype
    x = x.to(torch.float32)
    modes = torch.from_numpy(MODES)
    dist = torch.cdist(x, modes)
    nearest, which = dist.min(dim=1)
    shares = torch.bincount(which, minlength=len(MODES)).float() / x.shape[0]
    print(f'{name}: dtype {sampled_dtype} mean ({x[:, 0].mean().item():.3f}, {x[:, 1].mean().item():.3f}) '
          f'std {x.std(dim=0).mean().item():.3f} mode distance {nearest.mean().item():.4f} '
          f'rarest mode {shares.min().item():.3f}')
    return nearest.mean().item(), shares.min().item(), x.std(dim=0).mean().item()


data_rng = np.random.RandomState(seed)
dataset = torch.from_numpy(make_data(4096, data_rng))
net = EDMPrecond()
loss_fn = EDMLoss()
optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
batch_size, steps = 256, 400
for step in range(1, steps + 1):
    idx = torch.randint(0, dataset.shape[0], (batch_size,))
    loss = loss_fn(net=net, images=dataset[idx])
    optimizer.zero_grad(set_to_none=True)
    loss.sum().mul(1 / batch_size).backward()
    optimizer.step()
    if step % 100 == 0:
        print(f'step {step} loss {loss.mean().item():.4f}')
final_loss = loss.mean().item()

net.eval()
with torch.no_grad():
    latents = torch.randn([1024, 2])
    x_det = edm_sampler(net, latents)
    x_sto = edm_sampler(net, latents, S_churn=40, S_min=0.05, S_max=50, S_noise=1.003)
dist_det, rare_det, std_det = summarise('deterministic', x_det)
dist_sto, rare_sto, std_sto = summarise('stochastic', x_sto)
print(f'FINAL loss={final_loss:.4f} dist_det={dist_det:.4f} rare_det={rare_det:.4f} std_det={std_det:.4f} '
      f'dist_sto={dist_sto:.4f} rare_sto={rare_sto:.4f} std_sto={std_sto:.4f}')
