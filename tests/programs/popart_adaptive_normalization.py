"""PopArt (van Hasselt et al. 2016, "Learning values across many orders of magnitude") as RL codebases
write its value head: an ``nn.Linear`` subclass carrying running first and second moments of the targets
in ``register_buffer``s, updated by a ``beta`` EMA under ``torch.no_grad()``, with
``sigma = (nu - mu ** 2).clamp(min=eps).sqrt()``; the "preserving outputs precisely" rewrite
``weight.mul_(old_sigma / new_sigma)`` and ``bias.mul_(old_sigma).add_(old_mu - new_mu).div_(new_sigma)``;
the loss on ``normalize``d targets and predictions by ``denormalize``. The targets' scale jumps by two
orders of magnitude halfway through; a plain head on raw targets, same torso and init, trains alongside.

Checks: the unnormalised outputs before and after each statistics update agree (largest relative error
over the run), the PopArt head's error after the jump recovers faster than the plain head's, loss falls.
"""

import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
np.random.seed(seed)
torch.manual_seed(seed)


class PopArt(nn.Linear):
    """Linear value head with Preserving Outputs Precisely, while Adaptively Rescaling Targets."""

    def __init__(self, in_features, out_features=1, beta=0.02, eps=1e-4):
        super().__init__(in_features, out_features)
        self.beta = beta
        self.eps = eps
        self.register_buffer("mu", torch.zeros(out_features))
        self.register_buffer("nu", torch.ones(out_features))

    @property
    def sigma(self):
        return (self.nu - self.mu ** 2).clamp(min=self.eps).sqrt()

    def normalize(self, y):
        return (y - self.mu) / self.sigma

    def denormalize(self, y):
        return y * self.sigma + self.mu

    @torch.no_grad()
    def update_stats(self, targets):
        old_mu, old_sigma = self.mu.clone(), self.sigma
        self.mu.mul_(1 - self.beta).add_(self.beta * targets.mean(0))
        self.nu.mul_(1 - self.beta).add_(self.beta * (targets ** 2).mean(0))
        new_mu, new_sigma = self.mu, self.sigma
        # preserve the unnormalised outputs: sigma' (W' h + b') + mu' == sigma (W h + b) + mu
        self.weight.mul_((old_sigma / new_sigma).unsqueeze(1))
        self.bias.mul_(old_sigma).add_(old_mu - new_mu).div_(new_sigma)


class ValueNet(nn.Module):
    def __init__(self, in_dim, hidden, head):
        super().__init__()
        self.torso = nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())
        self.head = head

    def forward(self, x):
        return self.head(self.torso(x))


in_dim, hidden, batch_size = 8, 64, 64
steps_per_phase = 300
scales = [1.0, 100.0]

# the "returns" to regress: a fixed nonlinear function of the state with an offset
W_true = torch.from_numpy(np.random.RandomState(1234).randn(in_dim, 2).astype(np.float32))


def target_fn(x, scale):
    u = x @ W_true
    return scale * (torch.sin(u[:, :1]) + 0.5 * u[:, 1:] + 2.0)


popart_net = ValueNet(in_dim, hidden, PopArt(hidden, 1))
plain_net = ValueNet(in_dim, hidden, nn.Linear(hidden, 1))
plain_net.torso.load_state_dict(copy.deepcopy(popart_net.torso.state_dict()))
plain_net.head.load_state_dict({k: v for k, v in popart_net.head.state_dict().items() if k in ("weight", "bias")})
print("buffers", [name for name, _ in popart_net.named_buffers()])

popart_opt = torch.optim.Adam(popart_net.parameters(), lr=3e-3)
plain_opt = torch.optim.Adam(plain_net.parameters(), lr=3e-3)

probe = torch.randn(256, in_dim)
preserve_err = 0.0
popart_rel, plain_rel, norm_losses = [], [], []
for phase, scale in enumerate(scales):
    for step in range(steps_per_phase):
        x = torch.randn(batch_size, in_dim)
        y = target_fn(x, scale)

        # statistics first, outputs preserved, then a step on the normalised target
        with torch.no_grad():
            before = popart_net.head.denormalize(popart_net(probe))
        popart_net.head.update_stats(y)
        with torch.no_grad():
            after = popart_net.head.denormalize(popart_net(probe))
        rel = ((after - before).abs().max() / before.abs().max().clamp(min=1e-6)).item()
        preserve_err = max(preserve_err, rel)

        loss = F.mse_loss(popart_net(x), popart_net.head.normalize(y))
        popart_opt.zero_grad()
        loss.backward()
        popart_opt.step()
        norm_losses.append(loss.item())

        plain_loss = F.mse_loss(plain_net(x), y)
        plain_opt.zero_grad()
        plain_loss.backward()
        plain_opt.step()

        with torch.no_grad():
            var = y.var()
            popart_rel.append((F.mse_loss(popart_net.head.denormalize(popart_net(x)), y) / var).item())
            plain_rel.append((F.mse_loss(plain_net(x), y) / var).item())

        if step % 100 == 0 or step == steps_per_phase - 1:
            print(f"phase {phase} scale {scale:5.0f} step {step:3d}  norm_loss {loss.item():.4f}  "
                  f"popart_rel {popart_rel[-1]:.4f}  plain_rel {plain_rel[-1]:.4f}  "
                  f"mu {popart_net.head.mu.item():9.3f}  sigma {popart_net.head.sigma.item():8.3f}")

window = slice(steps_per_phase, steps_per_phase + 100)
popart_recover = float(np.mean(popart_rel[window]))
plain_recover = float(np.mean(plain_rel[window]))
final_rel = float(np.mean(popart_rel[-20:]))
loss_drop = float(np.mean(norm_losses[-20:]) / np.mean(norm_losses[:20]))
print(f"after the jump: popart relative error {popart_recover:.4f}, plain {plain_recover:.4f}")

assert preserve_err < 1e-4
assert popart_recover < plain_recover
assert loss_drop < 1.0

print(f"FINAL preserve_err={preserve_err:.2e} popart_recover={popart_recover:.4f} "
      f"plain_recover={plain_recover:.4f} final_rel={final_rel:.4f} loss_drop={loss_drop:.4f}")
