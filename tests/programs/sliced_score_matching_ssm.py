"""Sliced score matching (Song, Garg, Shi & Ermon, 2019) as ermongroup/sliced_score_matching writes
its losses, on a 2-D mixture of four Gaussians: a small MLP score network trained by the plain SSM
objective ``0.5 * (v . s)^2 + v . grad_x (v . s)`` with Rademacher projections, by the variance-reduced
SSM-VR form ``0.5 * ||s||^2 + v . grad_x (v . s)`` with Gaussian ``torch.randn_like`` projections (the
Jacobian-vector product by ``autograd.grad(vs.sum(), x, create_graph=True)``), and, as a second route,
by denoising score matching on a copy of the same net. The learned scores are compared at test points
with the mixture's true score in closed form (responsibilities by ``torch.logsumexp``), then Langevin
dynamics with an annealed step under ``torch.no_grad()`` samples from each learned score and counts the
modes it covers.
"""

import copy
import math
import os

import numpy as np
import torch
import torch.autograd as autograd
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

MEANS = torch.tensor([[-2.5, -2.5], [-2.5, 2.5], [2.5, -2.5], [2.5, 2.5]])
WEIGHTS = torch.tensor([0.25, 0.25, 0.25, 0.25])
STD = 0.5


def sample_data(n, rng):
    which = rng.randint(0, len(MEANS), size=n)
    return (MEANS.numpy()[which] + STD * rng.randn(n, 2)).astype(np.float32)


def log_density(x):
    # log sum_k w_k N(x; mu_k, STD^2 I)
    sq = ((x[:, None, :] - MEANS[None]) ** 2).sum(-1)
    log_comp = torch.log(WEIGHTS)[None] - sq / (2 * STD ** 2) - math.log(2 * math.pi * STD ** 2)
    return torch.logsumexp(log_comp, dim=1)


def true_score(x):
    sq = ((x[:, None, :] - MEANS[None]) ** 2).sum(-1)
    log_comp = torch.log(WEIGHTS)[None] - sq / (2 * STD ** 2)
    resp = torch.exp(log_comp - torch.logsumexp(log_comp, dim=1, keepdim=True))
    return (resp[:, :, None] * (MEANS[None] - x[:, None, :])).sum(1) / STD ** 2


class ScoreNet(nn.Module):
    def __init__(self, dim=2, hidden=64):
        super().__init__()
        self.main = nn.Sequential(
            nn.Linear(dim, hidden), nn.Softplus(),
            nn.Linear(hidden, hidden), nn.Softplus(),
            nn.Linear(hidden, dim),
        )

    def forward(self, x):
        return self.main(x)


def sliced_score_estimation(score_net, samples, n_particles=1):
    dup_samples = samples.unsqueeze(0).expand(n_particles, *samples.shape).contiguous().view(-1, *samples.shape[1:])
    dup_samples.requires_grad_(True)
    vectors = torch.randint(0, 2, dup_samples.shape).float() * 2 - 1  # Rademacher

    grad1 = score_net(dup_samples)
    vs = torch.sum(grad1 * vectors, dim=-1)
    loss1 = vs ** 2 * 0.5
    grad2 = autograd.grad(vs.sum(), dup_samples, create_graph=True)[0]
    loss2 = torch.sum(vectors * grad2, dim=-1)

    loss = (loss1 + loss2).view(n_particles, -1).mean(dim=0)
    return loss.mean()


def sliced_score_estimation_vr(score_net, samples, n_particles=1):
    dup_samples = samples.unsqueeze(0).expand(n_particles, *samples.shape).contiguous().view(-1, *samples.shape[1:])
    dup_samples.requires_grad_(True)
    vectors = torch.randn_like(dup_samples)

    grad1 = score_net(dup_samples)
    gradv = torch.sum(grad1 * vectors)
    loss1 = torch.norm(grad1, dim=-1) ** 2 * 0.5
    grad2 = autograd.grad(gradv, dup_samples, create_graph=True)[0]
    loss2 = torch.sum(vectors * grad2, dim=-1)

    loss = (loss1 + loss2).view(n_particles, -1).mean(dim=0)
    return loss.mean()


def dsm_score_estimation(score_net, samples, sigma=0.3):
    perturbed = samples + torch.randn_like(samples) * sigma
    target = -(perturbed - samples) / sigma ** 2
    scores = score_net(perturbed)
    return 0.5 * ((scores - target) ** 2).sum(dim=-1).mean() * sigma ** 2


def train(net, objective, data, steps=500, batch=128, lr=2e-3, **kwargs):
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    history = []
    for step in range(1, steps + 1):
        idx = torch.randint(0, data.shape[0], (batch,))
        loss = objective(net, data[idx], **kwargs)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
        if step % 250 == 0:
            print(f"  step {step} loss {np.mean(history[-50:]):.4f}")
    return history


@torch.no_grad()
def langevin(score_net, x, n_steps=300, eps_start=0.05, eps_end=0.005):
    for t in range(n_steps):
        eps = eps_start * (eps_end / eps_start) ** (t / (n_steps - 1))
        x = x + 0.5 * eps * score_net(x) + math.sqrt(eps) * torch.randn_like(x)
    return x


def mode_coverage(samples):
    nearest = torch.cdist(samples, MEANS).argmin(dim=1)
    counts = torch.bincount(nearest, minlength=len(MEANS)).float()
    share = counts / counts.sum()
    return int((share > 0.1).sum().item()), share.min().item()


rng = np.random.RandomState(seed)
data = torch.from_numpy(sample_data(4096, rng))
test = torch.from_numpy(sample_data(512, rng)) + 0.3 * torch.randn(512, 2)

# the closed-form score is the gradient of the closed-form density
xt = test[:64].clone().requires_grad_(True)
auto_score = autograd.grad(log_density(xt).sum(), xt)[0]
assert torch.allclose(auto_score, true_score(test[:64]), atol=1e-4)
print(f"data {tuple(data.shape)}, true score check max err {(auto_score - true_score(test[:64])).abs().max().item():.1e}")

base = ScoreNet()
routes = {}
for name, objective in [("ssm", sliced_score_estimation), ("ssm_vr", sliced_score_estimation_vr),
                        ("dsm", dsm_score_estimation)]:
    print(f"training {name}")
    net = copy.deepcopy(base)
    history = train(net, objective, data, batch=512 if name == "dsm" else 128)
    first, last = np.mean(history[:50]), np.mean(history[-50:])
    if name != "dsm":
        assert last < first, (name, first, last)
    with torch.no_grad():
        learned = net(test)
    cos = nn.functional.cosine_similarity(learned, true_score(test), dim=1).mean().item()
    init = torch.rand(1000, 2) * 8 - 4
    covered, min_share = mode_coverage(langevin(net, init))
    print(f"{name}: loss {first:.4f} -> {last:.4f}, cosine with true score {cos:.4f}, "
          f"langevin covers {covered} of {len(MEANS)} modes, smallest share {min_share:.3f}")
    routes[name] = (first, last, cos, covered, min_share)

assert routes["ssm"][2] > 0.5 and routes["ssm_vr"][2] > 0.5
ssm_drop = routes["ssm"][0] - routes["ssm"][1]
cos_ssm, cos_vr, cos_dsm = routes["ssm"][2], routes["ssm_vr"][2], routes["dsm"][2]
min_share = min(r[4] for r in routes.values())
print(f"FINAL ssm_drop={ssm_drop:.4f} cos_ssm={cos_ssm:.4f} cos_vr={cos_vr:.4f} cos_dsm={cos_dsm:.4f} "
      f"min_share={min_share:.4f}")
