"""Sparse autoencoders on a small MLP's activations (the Anthropic/OpenAI/ARENA dictionary-learning idioms).

A toy model of superposition: 24 sparse ground-truth features squeezed into 12 input dimensions,
an MLP trained to recover them, and its 32 hidden activations collected by
``register_forward_hook`` (``output.detach()`` into a list, ``handle.remove()``). Then two SAEs
with ``W_enc``/``W_dec``/``b_enc``/``b_dec`` parameters: ``b_dec`` initialised to the geometric
median of the activations (Weiszfeld iterations, against the mean), ``W_dec`` rows renormalised in
place under ``torch.no_grad()`` after every step (``W_dec.data /= W_dec.data.norm(dim=-1,
keepdim=True)``) and the gradient's component parallel to them removed before the step
(``W_dec.grad -= (W_dec.grad * W_dec.data).sum(-1, keepdim=True) * W_dec.data``); an L1-penalty
SAE (ReLU latents, ``acts.abs().sum(-1).mean()``) and OpenAI's TopK SAE (``torch.topk`` +
``torch.zeros_like(pre).scatter_(-1, topk.indices, values)``); dead latents counted with a
``torch.zeros(n_latents, dtype=torch.long)`` of steps since each fired, updated from ``(acts >
0).any(0)``; explained variance ``1 - (x - x_hat).var() / x.var()``, L0, the loss recovered when
the reconstruction is spliced back into the MLP by a hook that returns a replacement output;
``clip_grad_norm_`` and ``Adam(betas=(0.9, 0.999))``.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

N_FEATURES, D_IN, D_HIDDEN = 24, 12, 32
FEATURE_PROB = 0.08


def sample_features(n):
    active = rng.random((n, N_FEATURES)) < FEATURE_PROB
    return torch.from_numpy((active * rng.uniform(0.5, 1.0, size=(n, N_FEATURES))).astype(np.float32))


embed = torch.from_numpy(rng.normal(size=(N_FEATURES, D_IN)).astype(np.float32))
embed = embed / embed.norm(dim=-1, keepdim=True)

model = nn.Sequential(nn.Linear(D_IN, D_HIDDEN), nn.ReLU(), nn.Linear(D_HIDDEN, N_FEATURES))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for _ in range(300):
    f = sample_features(256)
    loss = F.mse_loss(model(f @ embed), f)
    opt.zero_grad()
    loss.backward()
    opt.step()
print(f"toy model: {N_FEATURES} features in {D_IN} dims, hidden {D_HIDDEN}, final mse {loss.item():.5f}")

# collect the hidden activations with a forward hook
cache = []


def save_activations(module, inputs, output):
    cache.append(output.detach())


handle = model[1].register_forward_hook(save_activations)
features = sample_features(4096)
with torch.no_grad():
    for chunk in (features @ embed).split(512):
        model(chunk)
handle.remove()
acts_all = torch.cat(cache)
print(f"collected {tuple(acts_all.shape)} from {len(cache)} batches, hooks left {len(model[1]._forward_hooks)}")
train_acts, val_acts = acts_all[:3584], acts_all[3584:]


def geometric_median(points, max_iter=50, eps=1e-6):
    """Weiszfeld's algorithm."""
    guess = points.mean(dim=0)
    for _ in range(max_iter):
        prev = guess
        weights = 1 / torch.norm(points - guess, dim=1).clamp(min=eps)
        weights = weights / weights.sum()
        guess = (weights.unsqueeze(1) * points).sum(dim=0)
        if torch.norm(guess - prev) < 1e-7:
            break
    return guess


class SAE(nn.Module):
    def __init__(self, d_in, n_latents, k=None):
        super().__init__()
        self.k = k
        self.W_enc = nn.Parameter(nn.init.kaiming_uniform_(torch.empty(d_in, n_latents)))
        self.W_dec = nn.Parameter(self.W_enc.data.T.clone())
        self.W_dec.data /= self.W_dec.data.norm(dim=-1, keepdim=True)
        self.b_enc = nn.Parameter(torch.zeros(n_latents))
        self.b_dec = nn.Parameter(torch.zeros(d_in))

    def encode(self, x):
        pre = (x - self.b_dec) @ self.W_enc + self.b_enc
        if self.k is None:
            return F.relu(pre)
        topk = torch.topk(pre, k=self.k, dim=-1)
        values = F.relu(topk.values)
        return torch.zeros_like(pre).scatter_(-1, topk.indices, values)

    def forward(self, x):
        acts = self.encode(x)
        x_hat = acts @ self.W_dec + self.b_dec
        return acts, x_hat

    @torch.no_grad()
    def set_decoder_norm_to_unit_norm(self):
        self.W_dec.data /= self.W_dec.data.norm(dim=-1, keepdim=True)

    @torch.no_grad()
    def remove_gradient_parallel_to_decoder_directions(self):
        self.W_dec.grad -= (self.W_dec.grad * self.W_dec.data).sum(-1, keepdim=True) * self.W_dec.data


def train_sae(sae, l1_coeff, steps=400, batch_size=128, dead_after=100):
    optimizer = torch.optim.Adam(sae.parameters(), lr=3e-3, betas=(0.9, 0.999))
    n_latents = sae.W_enc.shape[1]
    steps_since_active = torch.zeros(n_latents, dtype=torch.long)
    parallel = 0.0
    for _ in range(steps):
        idx = torch.randint(0, len(train_acts), (batch_size,))
        x = train_acts[idx]
        acts, x_hat = sae(x)
        l2_loss = (x_hat - x).pow(2).sum(-1).mean()
        l1_loss = acts.abs().sum(-1).mean()
        loss = l2_loss + l1_coeff * l1_loss
        optimizer.zero_grad()
        loss.backward()
        sae.remove_gradient_parallel_to_decoder_directions()
        parallel = max(parallel, (sae.W_dec.grad * sae.W_dec.data).sum(-1).abs().max().item())
        torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)
        optimizer.step()
        sae.set_decoder_norm_to_unit_norm()

        fired = (acts > 0).any(0)
        steps_since_active[fired] = 0
        steps_since_active[~fired] += 1
    dead = (steps_since_active > dead_after).sum().item()
    return loss.item(), dead, parallel


def evaluate(sae):
    with torch.no_grad():
        acts, x_hat = sae(val_acts)
        explained_variance = 1 - (val_acts - x_hat).var() / val_acts.var()
        l0 = (acts > 0).float().sum(-1).mean()
        # splice the reconstruction back in: a forward hook that returns a value replaces the output
        handle = model[1].register_forward_hook(lambda module, inputs, output: sae(output)[1])
        spliced = F.mse_loss(model(features[3584:] @ embed), features[3584:])
        handle.remove()
        clean = F.mse_loss(model(features[3584:] @ embed), features[3584:])
        zero = F.mse_loss(model[2](torch.zeros_like(val_acts)), features[3584:])
        recovered = (zero - spliced) / (zero - clean)
    return explained_variance.item(), l0.item(), recovered.item()


median = geometric_median(train_acts)
mean = train_acts.mean(0)
dist_median = torch.norm(train_acts - median, dim=1).sum()
dist_mean = torch.norm(train_acts - mean, dim=1).sum()
print(f"geometric median no farther than the mean: {bool(dist_median <= dist_mean)}")

results = {}
for name, k, l1_coeff in (("l1", None, 0.2), ("topk", 4, 0.0)):
    sae = SAE(D_HIDDEN, 64, k=k)
    with torch.no_grad():
        sae.b_dec.data = median.clone()
    norms_ok = torch.allclose(sae.W_dec.norm(dim=-1), torch.ones(64), atol=1e-5)
    final_loss, dead, parallel = train_sae(sae, l1_coeff)
    norms_after = torch.allclose(sae.W_dec.norm(dim=-1), torch.ones(64), atol=1e-5)
    ev, l0, recovered = evaluate(sae)
    results[name] = (ev, l0, recovered, dead)
    print(f"{name}: unit decoder rows before {norms_ok} after {norms_after}, parallel grad < 1e-5 "
          f"{parallel < 1e-5}, loss {final_loss:.4f}, L0 {l0:.2f}, dead {dead} of 64")

ev_l1, l0_l1, rec_l1, dead_l1 = results["l1"]
ev_topk, l0_topk, rec_topk, dead_topk = results["topk"]
print(f"FINAL ev_l1={ev_l1:.4f} l0_l1={l0_l1:.4f} recovered_l1={rec_l1:.4f} ev_topk={ev_topk:.4f} "
      f"l0_topk={l0_topk:.4f} recovered_topk={rec_topk:.4f} dead_topk={dead_topk}")
