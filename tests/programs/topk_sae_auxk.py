"""TopK sparse autoencoders (Gao et al. 2024, openai/sparse_autoencoder `model.py`/`train.py`) on
synthetic activations built from sparse features.

The autoencoder as the repository writes it: a learned `pre_bias` subtracted before the encoder and
added back after the decoder, `latents_pre_act = self.encoder(x - self.pre_bias) + self.latent_bias`,
the TopK activation `torch.topk(x, k=self.k, dim=-1)` then
`torch.zeros_like(x).scatter_(-1, topk.indices, F.relu(topk.values))`, a decoder initialised as the
encoder's transpose with unit-norm columns (`W_dec.data /= W_dec.data.norm(dim=0, keepdim=True)`),
kept unit-norm after every step, and the gradient's component parallel to each column removed
before the step (`grad -= (grad * W).sum(0, keepdim=True) * W`); `pre_bias` initialised by a
geometric median (Weiszfeld iterations, against the mean); dead latents tracked as steps since they
last fired (`stats_last_nonzero *= (latents == 0).all(dim=0).long(); stats_last_nonzero += 1`);
the AuxK loss: the top `k_aux` of the dead latents' pre-activations (`torch.where(dead_mask,
latents_pre_act, -inf)`) reconstructing the residual `x - recons`, normalised by the residual's
variance; `normalized_mse` = `((recons - x) ** 2).mean(-1) / (x ** 2).mean(-1)` after centring;
Adam with `eps=6.25e-10`, `clip_grad_norm_`.

Checks: the scatter TopK equals the dense-mask form `latents * (latents >= kth value)` (values and
gradients); decoder column norms stay 1; the parallel-removed gradient is orthogonal to each column.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

D_MODEL, N_LATENTS, K, K_AUX = 32, 128, 4, 16
N_FEATURES, ACTIVE = 48, 3
DEAD_STEPS = 50
STEPS, BATCH = 300, 128


def make_features():
    feats = np.random.randn(N_FEATURES, D_MODEL).astype(np.float32)
    return torch.from_numpy(feats / np.linalg.norm(feats, axis=1, keepdims=True))


FEATURES = make_features()
OFFSET = torch.from_numpy(np.random.randn(D_MODEL).astype(np.float32)) * 2.0


def sample_activations(n, gen):
    probs = torch.full((n, N_FEATURES), ACTIVE / N_FEATURES)
    on = torch.bernoulli(probs, generator=gen)
    mags = torch.rand(n, N_FEATURES, generator=gen) * 2 + 0.5
    return (on * mags) @ FEATURES + OFFSET


class TopK(nn.Module):
    def __init__(self, k, postact_fn=nn.ReLU()):
        super().__init__()
        self.k = k
        self.postact_fn = postact_fn

    def forward(self, x):
        topk = torch.topk(x, k=self.k, dim=-1)
        values = self.postact_fn(topk.values)
        result = torch.zeros_like(x)
        result.scatter_(-1, topk.indices, values)
        return result


class Autoencoder(nn.Module):
    def __init__(self, n_latents, n_inputs, activation, tied=False):
        super().__init__()
        self.pre_bias = nn.Parameter(torch.zeros(n_inputs))
        self.encoder = nn.Linear(n_inputs, n_latents, bias=False)
        self.latent_bias = nn.Parameter(torch.zeros(n_latents))
        self.activation = activation
        self.decoder = nn.Linear(n_latents, n_inputs, bias=False)
        self.decoder.weight.data = self.encoder.weight.data.T.clone()
        unit_norm_decoder_(self)
        self.register_buffer("stats_last_nonzero", torch.zeros(n_latents, dtype=torch.long))

    def encode_pre_act(self, x):
        x = x - self.pre_bias
        return F.linear(x, self.encoder.weight, self.latent_bias)

    def decode(self, latents):
        return self.decoder(latents) + self.pre_bias

    def forward(self, x):
        latents_pre_act = self.encode_pre_act(x)
        latents = self.activation(latents_pre_act)
        recons = self.decode(latents)
        self.stats_last_nonzero *= (latents == 0).all(dim=0).long()
        self.stats_last_nonzero += 1
        return latents_pre_act, latents, recons


def unit_norm_decoder_(autoencoder):
    autoencoder.decoder.weight.data /= autoencoder.decoder.weight.data.norm(dim=0, keepdim=True)


def unit_norm_decoder_grad_adjustment_(autoencoder):
    grad = autoencoder.decoder.weight.grad
    W = autoencoder.decoder.weight.data
    grad -= (grad * W).sum(0, keepdim=True) * W


def normalized_mean_squared_error(reconstruction, original_input):
    return (((reconstruction - original_input) ** 2).mean(dim=1) / (original_input ** 2).mean(dim=1)).mean()


def geometric_median(points, max_iter=100, tol=1e-5):
    guess = points.mean(dim=0)
    prev = torch.zeros_like(guess)
    weights = torch.ones(len(points))
    for _ in range(max_iter):
        prev = guess
        weights = 1 / torch.norm(points - guess, dim=1)
        weights /= weights.sum()
        guess = (weights.unsqueeze(1) * points).sum(dim=0)
        if torch.norm(guess - prev) < tol:
            break
    return guess


gen = torch.Generator().manual_seed(seed)
model = Autoencoder(N_LATENTS, D_MODEL, TopK(K))
init_batch = sample_activations(1024, gen)
median = geometric_median(init_batch)
mean = init_batch.mean(0)
dist_median = torch.norm(init_batch - median, dim=1).sum().item()
dist_mean = torch.norm(init_batch - mean, dim=1).sum().item()
model.pre_bias.data = median.clone()
print(f"geometric median: sum of distances {dist_median:.2f} (mean {dist_mean:.2f})")

# --- check: scatter TopK == dense mask form (values and gradients)
probe = torch.randn(16, N_LATENTS, requires_grad=True)
scattered = TopK(K)(probe)
(scattered * torch.arange(N_LATENTS).float()).sum().backward()
g_scatter = probe.grad.clone()
probe.grad = None
kth = probe.topk(K, dim=-1).values[:, -1:]
dense = F.relu(probe) * (probe >= kth).float()
(dense * torch.arange(N_LATENTS).float()).sum().backward()
topk_err = max((scattered - dense).abs().max().item(), (g_scatter - probe.grad).abs().max().item())
print(f"scatter vs mask err {topk_err:.2e} nonzeros per row {(scattered != 0).sum(-1).max().item()}")

optimizer = torch.optim.Adam(model.parameters(), lr=2e-3, eps=6.25e-10)
orth_err = 0.0
eval_x = sample_activations(512, torch.Generator().manual_seed(1234))
with torch.no_grad():
    nmse_before = normalized_mean_squared_error(model(eval_x)[2] - model.pre_bias, eval_x - model.pre_bias).item()
model.stats_last_nonzero.zero_()
for step in range(STEPS):
    x = sample_activations(BATCH, gen)
    latents_pre_act, latents, recons = model(x)
    centred = x - model.pre_bias.detach()
    mse = normalized_mean_squared_error(recons - model.pre_bias.detach(), centred)
    dead_mask = model.stats_last_nonzero > DEAD_STEPS
    aux = torch.zeros(())
    if dead_mask.any():
        k_aux = min(K_AUX, int(dead_mask.sum().item()))
        aux_pre = torch.where(dead_mask[None], latents_pre_act, -torch.inf)
        aux_latents = TopK(k_aux)(aux_pre)
        residual = (x - recons).detach()
        aux_recons = F.linear(aux_latents, model.decoder.weight)
        aux = ((aux_recons - residual) ** 2).mean() / residual.pow(2).mean()
        aux = torch.nan_to_num(aux, nan=0.0)
    loss = mse + aux / 32
    optimizer.zero_grad()
    loss.backward()
    unit_norm_decoder_grad_adjustment_(model)
    if step % 100 == 0:
        dots = (model.decoder.weight.grad * model.decoder.weight.data).sum(0)
        orth_err = max(orth_err, dots.abs().max().item())
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    unit_norm_decoder_(model)
    if (step + 1) % 100 == 0:
        dead_frac = (model.stats_last_nonzero > DEAD_STEPS).float().mean().item()
        print(f"step {step + 1} nmse {mse.item():.4f} aux {aux.item():.4f} dead {dead_frac:.3f}")

dead_frac = (model.stats_last_nonzero > DEAD_STEPS).float().mean().item()
model.eval()
with torch.no_grad():
    _, latents, recons = model(eval_x)
    nmse = normalized_mean_squared_error(recons - model.pre_bias, eval_x - model.pre_bias).item()
    norm_err = (model.decoder.weight.norm(dim=0) - 1).abs().max().item()
    fired = (latents != 0).any(0).float().mean().item()
    l0 = (latents != 0).sum(-1).float().mean().item()
print(f"nmse before {nmse_before:.4f} after {nmse:.4f}; l0 {l0:.1f}; fired on eval {fired:.3f}")
print(f"FINAL nmse={nmse:.4f} nmse_before={nmse_before:.4f} dead_frac={dead_frac:.4f} fired_frac={fired:.4f} "
      f"l0={l0:.2f} median_gain={dist_mean - dist_median:.3f} topk_err={topk_err:.2e} "
      f"norm_err={norm_err:.2e} orth_err={orth_err:.2e}")
