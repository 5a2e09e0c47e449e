"""D3PM (Austin et al. 2021) on token sequences as cloneofsimo/d3pm's ``d3pm_runner.py`` writes it.

``D3PM(nn.Module)`` with the cosine ``alpha_bar`` schedule from ``torch.arange(n_T + 1,
dtype=torch.float64)``, ``beta_t`` by ``torch.minimum``, one-step matrices for the uniform kernel
(``torch.ones(K, K) * beta / K`` with ``mat.diagonal().fill_(...)``) and the absorbing kernel (a
``[MASK]`` column), their cumulative products by ``@`` in a loop, ``torch.stack``-ed and registered
as buffers with the transposed one-step stack; ``_at`` indexing ``a[t - 1, x, :]``, ``q_sample`` by
Gumbel-max on ``torch.log(... + eps)`` with ``torch.clip`` noise, ``q(x_t | x_0)`` also as
``F.one_hot(x_0, K).float() @ Qbar[t - 1]`` (must agree), ``q_posterior_logits`` (``torch.log(
F.one_hot(...) + eps)``, ``torch.einsum("b...c,bcd->b...d", ...)`` with ``self.q_mats[t - 2]`` and
``torch.where(t == 1, ...)``), the hybrid loss (``vb`` of ``softmax`` times ``log_softmax``
differences, plus lambda times ``nn.CrossEntropyLoss``), reverse sampling with Gumbel noise switched
off at t == 1. The x0 model: token + sinusoidal time embeddings, residual ``Conv1d`` blocks with
``GroupNorm``. Checks: Qbar rows sum to one, the posterior equals Bayes' rule computed densely over
every (t, x_0, x_t), the masked fraction of absorbing ``q_sample`` equals ``1 - alpha_bar`` read by
``torch.gather``, Gumbel-max frequencies equal the softmax, the loss falls, and samples' token
marginals move toward the data's (total variation before and after training).
Data: sequences of 16 tokens from a 6-state Markov chain with skewed marginals.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

N_CLASSES = 6
SEQ_LEN = 16
N_T = 20


class D3PM(nn.Module):
    def __init__(self, x0_model, n_T, num_classes=10, forward_type="uniform", hybrid_loss_coeff=0.001):
        super(D3PM, self).__init__()  # noqa: UP008
        self.x0_model = x0_model
        self.n_T = n_T
        self.hybrid_loss_coeff = hybrid_loss_coeff
        self.forward_type = forward_type

        steps = torch.arange(n_T + 1, dtype=torch.float64) / n_T
        alpha_bar = torch.cos((steps + 0.008) / 1.008 * torch.pi / 2)
        self.beta_t = torch.minimum(1 - alpha_bar[1:] / alpha_bar[:-1], torch.ones_like(alpha_bar[1:]) * 0.999)
        self.eps = 1e-6
        self.num_classses = num_classes
        q_onestep_mats = []

        for beta in self.beta_t:
            if forward_type == "uniform":
                mat = torch.ones(num_classes, num_classes) * beta / num_classes
                mat.diagonal().fill_(1 - (num_classes - 1) * beta / num_classes)
                q_onestep_mats.append(mat)
            elif forward_type == "absorbing":
                # the last class is [MASK]: stay with 1 - beta, jump to [MASK] with beta
                mat = torch.eye(num_classes) * (1 - beta)
                mat[:, num_classes - 1] += beta
                mat[num_classes - 1, num_classes - 1] = 1.0
                q_onestep_mats.append(mat)
            else:
                raise NotImplementedError
        q_one_step_mats = torch.stack(q_onestep_mats, dim=0)

        q_one_step_transposed = q_one_step_mats.transpose(1, 2)  # this will be used for q_posterior_logits

        q_mat_t = q_onestep_mats[0]
        q_mats = [q_mat_t]
        for idx in range(1, self.n_T):
            q_mat_t = q_mat_t @ q_onestep_mats[idx]
            q_mats.append(q_mat_t)
        q_mats = torch.stack(q_mats, dim=0)
        self.logit_type = "logit"

        # register
        self.register_buffer("q_one_step_transposed", q_one_step_transposed)
        self.register_buffer("q_mats", q_mats)
        self.register_buffer("alpha_bars", torch.cumprod(1 - self.beta_t, dim=0).float())

        assert self.q_mats.shape == (self.n_T, num_classes, num_classes), self.q_mats.shape

    def _at(self, a, t, x):
        # t is 1-d, x is integer value of 0 to num_classes - 1
        bs = t.shape[0]
        t = t.reshape((bs, *[1] * (x.dim() - 1)))
        # out[i, j, k, l, m] = a[t[i, j, k, l], x[i, j, k, l], m]
        return a[t - 1, x, :]

    def q_probs(self, x_0, t):
        """q(x_t | x_0) as the one-hot row times Qbar_t."""
        qbar = self.q_mats[t - 1]  # (bs, K, K)
        return F.one_hot(x_0, self.num_classses).float() @ qbar

    def q_posterior_logits(self, x_0, x_t, t):
        # If we have t == 0, then we calculate the distance to x_0

        # if x_0 is integer, we convert it to one-hot.
        if x_0.dtype == torch.int64 or x_0.dtype == torch.int32:
            x_0_logits = torch.log(torch.nn.functional.one_hot(x_0, self.num_classses) + self.eps)
        else:
            x_0_logits = x_0.clone()

        assert x_0_logits.shape == x_t.shape + (self.num_classses,), print(f"x_0_logits.shape: {x_0_logits.shape}, x_t.shape: {x_t.shape}")

        # fact1 is "guess of x_{t-1}" from x_t
        # fact2 is "guess of x_{t-1}" from x_0

        fact1 = self._at(self.q_one_step_transposed, t, x_t)

        softmaxed = torch.softmax(x_0_logits, dim=-1)  # bs, ..., num_classes
        qmats2 = self.q_mats[t - 2].to(dtype=softmaxed.dtype)
        # bs, num_classes, num_classes
        fact2 = torch.einsum("b...c,bcd->b...d", softmaxed, qmats2)

        out = torch.log(fact1 + self.eps) + torch.log(fact2 + self.eps)

        t_broadcast = t.reshape((t.shape[0], *[1] * (x_t.dim())))

        bc = torch.where(t_broadcast == 1, x_0_logits, out)

        return bc

    def vb(self, dist1, dist2):
        # flatten dist1 and dist2
        dist1 = dist1.flatten(start_dim=0, end_dim=-2)
        dist2 = dist2.flatten(start_dim=0, end_dim=-2)

        out = torch.softmax(dist1 + self.eps, dim=-1) * (
            torch.log_softmax(dist1 + self.eps, dim=-1)
            - torch.log_softmax(dist2 + self.eps, dim=-1)
        )
        return out.sum(dim=-1).mean()

    def q_sample(self, x_0, t, noise):
        # forward process, x_0 is the clean input.
        logits = torch.log(self._at(self.q_mats, t, x_0) + self.eps)
        noise = torch.clip(noise, self.eps, 1.0)
        gumbel_noise = -torch.log(-torch.log(noise))
        return torch.argmax(logits + gumbel_noise, dim=-1)

    def model_predict(self, x_0, t, cond):
        predicted_x0_logits = self.x0_model(x_0, t, cond)
        return predicted_x0_logits

    def forward(self, x, cond=None):
        t = torch.randint(1, self.n_T, (x.shape[0],), device=x.device)
        x_t = self.q_sample(x, t, torch.rand((*x.shape, self.num_classses), device=x.device))
        assert x_t.shape == x.shape, print(f"x_t.shape: {x_t.shape}, x.shape: {x.shape}")

        predicted_x0_logits = self.model_predict(x_t, t, cond)

        true_q_posterior_logits = self.q_posterior_logits(x, x_t, t)
        pred_q_posterior_logits = self.q_posterior_logits(predicted_x0_logits, x_t, t)

        vb_loss = self.vb(true_q_posterior_logits, pred_q_posterior_logits)

        predicted_x0_logits = predicted_x0_logits.flatten(start_dim=0, end_dim=-2)
        x = x.flatten(start_dim=0, end_dim=-1)

        ce_loss = torch.nn.CrossEntropyLoss()(predicted_x0_logits, x)

        return vb_loss + self.hybrid_loss_coeff * ce_loss, {
            "vb_loss": vb_loss.detach().item(),
            "ce_loss": ce_loss.detach().item(),
        }

    def p_sample(self, x, t, cond, noise):
        predicted_x0_logits = self.model_predict(x, t, cond)
        pred_q_posterior_logits = self.q_posterior_logits(predicted_x0_logits, x, t)

        noise = torch.clip(noise, self.eps, 1.0)

        not_first_step = (t != 1).float().reshape((x.shape[0], *[1] * (x.dim())))

        gumbel_noise = -torch.log(-torch.log(noise))
        sample = torch.argmax(pred_q_posterior_logits + gumbel_noise * not_first_step, dim=-1)
        return sample

    def sample(self, x, cond=None):
        for t in reversed(range(1, self.n_T)):
            t = torch.tensor([t] * x.shape[0], device=x.device)
            x = self.p_sample(x, t, cond, torch.rand((*x.shape, self.num_classses), device=x.device))
        return x


def timestep_embedding(t, dim, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(start=0, end=half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class X0Model(nn.Module):
    def __init__(self, num_classes, dim=48, n_blocks=3):
        super().__init__()
        self.dim = dim
        self.tok = nn.Embedding(num_classes, dim)
        self.time_mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.norms = nn.ModuleList([nn.GroupNorm(8, dim) for _ in range(n_blocks)])
        self.convs = nn.ModuleList([nn.Conv1d(dim, dim, 3, padding=1) for _ in range(n_blocks)])
        self.out = nn.Linear(dim, num_classes)

    def forward(self, x, t, cond=None):
        h = self.tok(x) + self.time_mlp(timestep_embedding(t, self.dim))[:, None, :]
        h = h.transpose(1, 2)
        for norm, conv in zip(self.norms, self.convs):
            h = h + conv(F.silu(norm(h)))
        return self.out(h.transpose(1, 2))


def make_data(n):
    P = np.full((N_CLASSES, N_CLASSES), 0.02)
    for i in range(N_CLASSES):
        P[i, i] += 0.55
        P[i, (i + 1) % N_CLASSES] += 0.25
        P[i, 0] += 0.1
    P /= P.sum(1, keepdims=True)
    x = np.zeros((n, SEQ_LEN), dtype=np.int64)
    x[:, 0] = rng.choice(N_CLASSES, size=n, p=[0.4, 0.25, 0.15, 0.1, 0.06, 0.04])
    for j in range(1, SEQ_LEN):
        u = rng.rand(n, 1)
        x[:, j] = (u > np.cumsum(P[x[:, j - 1]], axis=1)).sum(1)
    return torch.from_numpy(x)


def marginal(x, k):
    return torch.bincount(x.flatten(), minlength=k).float() / x.numel()


def dense_posterior_error(d3pm):
    """max |softmax(q_posterior_logits) - Bayes' rule| over all t >= 2, x_0, x_t."""
    K = d3pm.num_classses
    worst = 0.0
    x0 = torch.arange(K).repeat_interleave(K)[None, :]  # (1, K*K)
    xt = torch.arange(K).repeat(K)[None, :]
    for t in range(2, d3pm.n_T + 1):
        tt = torch.tensor([t])
        post = torch.softmax(d3pm.q_posterior_logits(x0, xt, tt), dim=-1)[0]  # (K*K, K)
        Qt = d3pm.q_one_step_transposed[t - 1].T  # Q_t[x_{t-1}, x_t]
        Qbar_prev = d3pm.q_mats[t - 2]
        Qbar_t = d3pm.q_mats[t - 1]
        num = Qt[:, xt[0]].T * Qbar_prev[x0[0], :]  # (K*K, K)
        den = Qbar_t[x0[0], xt[0]][:, None]
        valid = den[:, 0] > 1e-4
        bayes = num / den
        worst = max(worst, (post - bayes)[valid].abs().max().item())
    return worst


data = make_data(768)
data_marg = marginal(data, N_CLASSES)
print(f"data token marginals: {[round(v, 3) for v in data_marg.tolist()]}")

# ---- the transition kernels: uniform and absorbing
uniform = D3PM(X0Model(N_CLASSES), N_T, num_classes=N_CLASSES, hybrid_loss_coeff=0.01)
absorbing = D3PM(X0Model(N_CLASSES + 1), N_T, num_classes=N_CLASSES + 1, forward_type="absorbing")
row_err = max((m.q_mats.sum(-1) - 1).abs().max().item() for m in (uniform, absorbing))
print(f"Qbar buffers: {tuple(uniform.q_mats.shape)} and {tuple(absorbing.q_mats.shape)}, {uniform.q_mats.dtype}")
print(f"Qbar rows sum to one: max error {row_err:.2e}")
print(f"uniform Qbar_T diagonal {uniform.q_mats[-1].diagonal().mean().item():.4f} (1/K = {1 / N_CLASSES:.4f})")
post_err = max(dense_posterior_error(uniform), dense_posterior_error(absorbing))
print(f"posterior logits against Bayes' rule: max error {post_err:.2e}")

x0 = data[:256]
t = torch.randint(1, N_T, (x0.shape[0],))
onehot_err = (uniform.q_probs(x0, t) - uniform._at(uniform.q_mats, t, x0)).abs().max().item()
print(f"one_hot @ Qbar against _at: max difference {onehot_err:.2e}")
x_t = absorbing.q_sample(x0, t, torch.rand((*x0.shape, N_CLASSES + 1)))
masked_frac = (x_t == N_CLASSES).float().mean(1)
expected_frac = 1 - absorbing.alpha_bars.gather(0, t - 1)
frac_gap = (masked_frac.mean() - expected_frac.mean()).abs().item()
print(f"absorbing q_sample: masked fraction {masked_frac.mean().item():.4f}, 1 - alpha_bar {expected_frac.mean().item():.4f}")

logits = torch.tensor([1.0, 0.0, -1.0, 2.0])
g = -torch.log(-torch.log(torch.clip(torch.rand(20000, 4), 1e-6, 1.0)))
freq = torch.bincount(torch.argmax(logits + g, dim=-1), minlength=4).float() / 20000
gumbel_gap = (freq - torch.softmax(logits, -1)).abs().max().item()
print(f"Gumbel-max frequencies against softmax: max gap {gumbel_gap:.4f}")

# ---- train the uniform-kernel model with the hybrid loss
torch.manual_seed(seed)
x_T = torch.randint(0, N_CLASSES, (256, SEQ_LEN))
with torch.no_grad():
    uniform.eval()
    tv_before = 0.5 * (marginal(uniform.sample(x_T), N_CLASSES) - data_marg).abs().sum().item()
    uniform.train()
optim = torch.optim.AdamW(uniform.x0_model.parameters(), lr=2e-3)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data), batch_size=64, shuffle=True)
losses = []
step = 0
for epoch in range(4):
    for (x,) in loader:
        optim.zero_grad()
        loss, info = uniform(x)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(uniform.x0_model.parameters(), 0.1 * 10)
        optim.step()
        losses.append(loss.item())
        step += 1
    print(f"epoch {epoch} loss {np.mean(losses[-12:]):.4f} vb {info['vb_loss']:.4f} ce {info['ce_loss']:.4f}")

loss_first = float(np.mean(losses[:12]))
loss_last = float(np.mean(losses[-12:]))
with torch.no_grad():
    uniform.eval()
    samples = uniform.sample(x_T)
tv_after = 0.5 * (marginal(samples, N_CLASSES) - data_marg).abs().sum().item()
stay = (samples[:, 1:] == samples[:, :-1]).float().mean().item()
stay_data = (data[:, 1:] == data[:, :-1]).float().mean().item()
print(f"sample token marginals: {[round(v, 3) for v in marginal(samples, N_CLASSES).tolist()]}")
print(f"total variation to the data's marginals: {tv_before:.4f} before, {tv_after:.4f} after")
print(f"repeat rate: samples {stay:.3f}, data {stay_data:.3f}")

ok = (row_err < 1e-5 and post_err < 1e-3 and onehot_err < 1e-6 and frac_gap < 0.05 and gumbel_gap < 0.02
      and loss_last < loss_first and tv_after < tv_before)
print(f"FINAL loss_first={loss_first:.4f} loss_last={loss_last:.4f} tv_before={tv_before:.4f} "
      f"tv_after={tv_after:.4f} repeat_rate={stay:.4f} post_err={post_err:.6f} ok={int(ok)}")
