"""Song & Ermon's noise-conditional score networks (NCSN, 2019) and sliced score matching (Song et
al. 2019), as ermongroup/ncsn and ermongroup/sliced_score_matching write them, on the paper's toy:
a 2-D mixture with weights 1/5 and 4/5. Geometric noise levels ``torch.exp(torch.linspace(
math.log(sigma_begin), math.log(sigma_end), L))``, ``anneal_dsm_score_estimation`` (``labels =
torch.randint(0, len(sigmas), ...)``, ``used_sigmas = sigmas[labels].view(samples.shape[0],
*([1] * len(samples.shape[1:])))``, target ``-1 / (used_sigmas ** 2) * (perturbed - samples)``,
``used_sigmas.squeeze() ** anneal_power`` weighting), a conditional score MLP with an
``nn.Embedding`` of the level (scale and shift per level) whose output is divided by the level's
sigma (NCSNv2), annealed Langevin dynamics with ``step_size = step_lr * (sigma / sigmas[-1]) ** 2``
and a final denoising step, against plain Langevin at the smallest level (which misses the mode
weights, the paper's Figure 3); ``sliced_score_estimation_vr`` (``samples.unsqueeze(0).expand(
n_particles, *samples.shape).contiguous().view(-1, ...)``, ``requires_grad_(True)``,
``autograd.grad(torch.sum(grad1 * vectors), dup_samples, create_graph=True)``), the exact Jacobian
trace by one ``autograd.grad`` per dimension against the Hutchinson estimate; learned scores
compared with the true score of the noised mixture, ``autograd.grad`` of a ``MixtureSameFamily``
``log_prob``.
"""

import math
import os

import numpy as np
import torch
import torch.autograd as autograd
import torch.distributions as D
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

CENTERS = np.array([[-2.0, -2.0], [2.0, 2.0]], dtype=np.float32)
WEIGHTS = np.array([0.2, 0.8])
DATA_STD = 0.4


def sample_mixture(n, rng):
    which = rng.choice(2, size=n, p=WEIGHTS)
    return (CENTERS[which] + DATA_STD * rng.randn(n, 2)).astype(np.float32)


def noised_mixture(sigma):
    scale = torch.full((2, 2), math.sqrt(DATA_STD ** 2 + sigma ** 2))
    return D.MixtureSameFamily(D.Categorical(probs=torch.tensor(WEIGHTS, dtype=torch.float32)),
                               D.Independent(D.Normal(torch.from_numpy(CENTERS), scale), 1))


def true_score(x, sigma):
    x = x.detach().requires_grad_(True)
    log_p = noised_mixture(sigma).log_prob(x).sum()
    return autograd.grad(log_p, x)[0]


class ConditionalScoreNet(nn.Module):
    def __init__(self, sigmas, dim=2, hidden=128):
        super().__init__()
        self.register_buffer("sigmas", sigmas)
        num_classes = len(sigmas)
        self.lin1 = nn.Linear(dim, hidden)
        self.lin2 = nn.Linear(hidden, hidden)
        self.lin3 = nn.Linear(hidden, dim)
        self.embed = nn.Embedding(num_classes, 2 * hidden)
        self.embed.weight.data[:, :hidden].normal_(1, 0.02)
        self.embed.weight.data[:, hidden:].zero_()

    def forward(self, x, y):
        gamma, beta = self.embed(y).chunk(2, dim=-1)
        h = F.softplus(gamma * self.lin1(x) + beta)
        h = F.softplus(self.lin2(h))
        used_sigmas = self.sigmas[y].view(x.shape[0], *([1] * len(x.shape[1:])))
        return self.lin3(h) / used_sigmas


class ScoreNet(nn.Module):
    def __init__(self, dim=2, hidden=128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.Softplus(), nn.Linear(hidden, hidden), nn.Softplus(),
                                 nn.Linear(hidden, dim))

    def forward(self, x):
        return self.net(x)


def anneal_dsm_score_estimation(scorenet, samples, labels, sigmas, anneal_power=2.):
    used_sigmas = sigmas[labels].view(samples.shape[0], *([1] * len(samples.shape[1:])))
    perturbed_samples = samples + torch.randn_like(samples) * used_sigmas
    target = - 1 / (used_sigmas ** 2) * (perturbed_samples - samples)
    scores = scorenet(perturbed_samples, labels)
    target = target.view(target.shape[0], -1)
    scores = scores.view(scores.shape[0], -1)
    loss = 1 / 2. * ((scores - target) ** 2).sum(dim=-1) * used_sigmas.squeeze() ** anneal_power
    return loss.mean(dim=0)


def sliced_score_estimation_vr(score_net, samples, n_particles=1):
    dup_samples = samples.unsqueeze(0).expand(n_particles, *samples.shape).contiguous().view(-1, *samples.shape[1:])
    dup_samples.requires_grad_(True)
    vectors = torch.randn_like(dup_samples)

    grad1 = score_net(dup_samples)
    gradv = torch.sum(grad1 * vectors)
    loss1 = torch.sum(grad1 * grad1, dim=-1) / 2.
    grad2 = autograd.grad(gradv, dup_samples, create_graph=True)[0]
    loss2 = torch.sum(vectors * grad2, dim=-1)

    loss1 = loss1.view(n_particles, -1).mean(dim=0)
    loss2 = loss2.view(n_particles, -1).mean(dim=0)
    loss = loss1 + loss2
    return loss.mean(), loss1.mean(), loss2.mean()


@torch.no_grad()
def anneal_Langevin_dynamics(x_mod, scorenet, sigmas, n_steps_each=20, step_lr=0.0005, denoise=True):
    for c, sigma in enumerate(sigmas):
        labels = torch.ones(x_mod.shape[0], dtype=torch.long) * c
        step_size = step_lr * (sigma / sigmas[-1]) ** 2
        for _ in range(n_steps_each):
            grad = scorenet(x_mod, labels)
            noise = torch.randn_like(x_mod) * torch.sqrt(step_size * 2)
            x_mod = x_mod + step_size * grad + noise
    if denoise:
        last = torch.ones(x_mod.shape[0], dtype=torch.long) * (len(sigmas) - 1)
        x_mod = x_mod + sigmas[-1] ** 2 * scorenet(x_mod, last)
    return x_mod


@torch.no_grad()
def Langevin_dynamics(x_mod, scorenet, level, n_steps=200, step_lr=0.002):
    labels = torch.ones(x_mod.shape[0], dtype=torch.long) * level
    for _ in range(n_steps):
        grad = scorenet(x_mod, labels)
        x_mod = x_mod + step_lr * grad + torch.randn_like(x_mod) * math.sqrt(step_lr * 2)
    return x_mod


def major_mode_share(x):
    nearest = torch.cdist(x, torch.from_numpy(CENTERS)).argmin(dim=1)
    return (nearest == 1).float().mean().item()


def exact_trace(score_net, x):
    x = x.detach().requires_grad_(True)
    s = score_net(x)
    trace = torch.zeros(x.shape[0])
    for d in range(x.shape[1]):
        trace = trace + autograd.grad(s[:, d].sum(), x, retain_graph=True)[0][:, d]
    return trace


data_rng = np.random.RandomState(seed)
data = torch.from_numpy(sample_mixture(8192, data_rng))
sigma_begin, sigma_end, num_classes = 3.0, 0.05, 10
sigmas = torch.tensor(np.exp(np.linspace(np.log(sigma_begin), np.log(sigma_end), num_classes)), dtype=torch.float32)
sigmas_th = torch.exp(torch.linspace(math.log(sigma_begin), math.log(sigma_end), num_classes))
print(f"sigmas: {num_classes} levels from {sigmas[0].item():.3f} to {sigmas[-1].item():.3f}, "
      f"ratio {(sigmas[0] / sigmas[1]).item():.4f}, numpy and torch agree to "
      f"{(sigmas - sigmas_th).abs().max().item():.1e}")

scorenet = ConditionalScoreNet(sigmas)
optimizer = torch.optim.Adam(scorenet.parameters(), lr=1e-3)
for step in range(1, 801):
    samples = data[torch.randint(0, data.shape[0], (256,))]
    labels = torch.randint(0, len(sigmas), (samples.shape[0],))
    loss = anneal_dsm_score_estimation(scorenet, samples, labels, sigmas)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 200 == 0:
        print(f"dsm step {step} loss {loss.item():.4f}")
dsm_loss = loss.item()

# relative error of the learned score against the noised mixture's score, per level
probe = torch.from_numpy(sample_mixture(512, data_rng))
errors = []
for level in (0, num_classes // 2, num_classes - 1):
    sigma = sigmas[level].item()
    noisy = probe + sigma * torch.randn_like(probe)
    with torch.no_grad():
        learned = scorenet(noisy, torch.full((noisy.shape[0],), level, dtype=torch.long))
    exact = true_score(noisy, sigma)
    errors.append(((learned - exact).norm(dim=1).mean() / exact.norm(dim=1).mean()).item())
    print(f"level {level} sigma {sigma:.3f}: relative score error {errors[-1]:.4f}")

scorenet.eval()
init = torch.rand(1000, 2) * 8 - 4
annealed = anneal_Langevin_dynamics(init, scorenet, sigmas)
plain = Langevin_dynamics(init, scorenet, num_classes - 1)
share_annealed, share_plain = major_mode_share(annealed), major_mode_share(plain)
annealed_nll = -noised_mixture(0.0).log_prob(annealed).mean().item()
print(f"annealed Langevin: major mode share {share_annealed:.3f} (true 0.8), nll {annealed_nll:.4f}; "
      f"plain Langevin: major mode share {share_plain:.3f}")

# sliced score matching on the same data, unconditional
ssm_net = ScoreNet()
ssm_optimizer = torch.optim.Adam(ssm_net.parameters(), lr=1e-3)
for step in range(1, 401):
    samples = data[torch.randint(0, data.shape[0], (256,))]
    loss, loss1, loss2 = sliced_score_estimation_vr(ssm_net, samples, n_particles=2)
    ssm_optimizer.zero_grad()
    loss.backward()
    ssm_optimizer.step()
    if step % 200 == 0:
        print(f"ssm step {step} loss {loss.item():.4f} (norm {loss1.item():.4f}, trace {loss2.item():.4f})")
ssm_loss = loss.item()

# Hutchinson's estimate of tr(ds/dx) against the exact trace
x = probe[:64]
trace = exact_trace(ssm_net, x)
xs = x.detach().requires_grad_(True)
s = ssm_net(xs)
estimates = []
for _ in range(200):
    v = torch.randn_like(xs)
    estimates.append((v * autograd.grad((v * s).sum(), xs, retain_graph=True)[0]).sum(dim=1))
hutchinson = torch.stack(estimates).mean(dim=0)
hutchinson_error = ((hutchinson - trace).abs().mean() / trace.abs().mean()).item()
ssm_error = ((ssm_net(probe) - true_score(probe, 0.0)).norm(dim=1).mean()
             / true_score(probe, 0.0).norm(dim=1).mean()).item()
print(f"trace: exact mean {trace.mean().item():.4f}, hutchinson relative error {hutchinson_error:.4f}; "
      f"ssm relative score error {ssm_error:.4f}")
print(f"FINAL dsm_loss={dsm_loss:.4f} err_high={errors[0]:.4f} err_mid={errors[1]:.4f} err_low={errors[2]:.4f} "
      f"share_annealed={share_annealed:.4f} share_plain={share_plain:.4f} nll={annealed_nll:.4f} "
      f"ssm_loss={ssm_loss:.4f} hutchinson_error={hutchinson_error:.4f} ssm_error={ssm_error:.4f}")
