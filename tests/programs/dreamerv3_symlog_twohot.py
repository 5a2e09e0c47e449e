"""DreamerV3's robustness tricks (danijar/dreamerv3, NM512/dreamerv3-torch) on a critic that regresses
heavy-tailed returns.

``symlog``/``symexp`` (``torch.sign(x) * torch.log1p(torch.abs(x))`` and its ``torch.expm1`` inverse),
the two-hot encoding over ``torch.linspace(-20, 20, 255)`` bins in symlog space (so exponentially spaced
in return space) found by ``torch.bucketize`` and by ``torch.searchsorted`` (and by dreamerv3-torch's
comparison sums), weighted by distance, built with ``F.one_hot``; the ``DiscDist`` two-hot
cross-entropy and its mean ``symexp(sum(probs * bins))``; a discrete latent of ``OneHotCategorical``s
with unimix (``0.99 * softmax + 0.01 / K``) and the straight-through ``sample + probs - probs.detach()``,
its free-bits KL ``torch.clip(kl, min=1.0)`` (dynamics and representation terms with stop-gradients);
the percentile return normaliser (``torch.quantile(x, torch.tensor([0.05, 0.95]))`` EMA, scale
``max(1, S)``); a hand-written LaProp optimizer with AGC-like per-tensor clipping. The data: a NumPy
Markov reward process whose rewards span 1e-2..1e3 (some negative); the two-hot critic is compared
with the same network trained by MSE on the raw returns.
"""

import os

import numpy as np
import torch
import torch.distributions as torchd
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

N_STATES = 16
OBS_NOISE_DIM = 4
STOCH, DISCRETE = 4, 8
HIDDEN = 64
BATCH = 64
STEPS = 500
GAMMA = 0.3
FREE_NATS = 1.0


def symlog(x):
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(x):
    return torch.sign(x) * torch.expm1(torch.abs(x))


# ---------------------------------------------------------------- the Markov reward process
magnitude = 10.0 ** np.linspace(-2, 3, N_STATES)
signs = np.where(rng.random(N_STATES) < 0.25, -1.0, 1.0)
REWARD = magnitude * signs
P = np.zeros((N_STATES, N_STATES))
for s in range(N_STATES):
    nbrs = [max(s - 1, 0), s, min(s + 1, N_STATES - 1)]
    np.add.at(P[s], nbrs, rng.dirichlet(np.ones(3)))
VALUE = np.linalg.solve(np.eye(N_STATES) - GAMMA * P, REWARD)


def step_chain(states):
    u = rng.random(len(states))[:, None]
    return np.minimum((np.cumsum(P[states], 1) < u).sum(1), N_STATES - 1)


def sample_batch(n):
    """Two sampled rewards, then bootstrap by the true value: unbiased, noisy targets."""
    s0 = rng.integers(0, N_STATES, size=n)
    s1 = step_chain(s0)
    s2 = step_chain(s1)
    ret = REWARD[s0] + GAMMA * REWARD[s1] + GAMMA ** 2 * VALUE[s2]
    return s0, s1, ret


def observe(states):
    onehot = np.eye(N_STATES)[states]
    noise = rng.normal(0.0, 0.1, size=(len(states), OBS_NOISE_DIM))
    return torch.as_tensor(np.concatenate([onehot, noise], 1), dtype=torch.float32)


# ---------------------------------------------------------------- two-hot
class DiscDist:
    def __init__(self, logits, low=-20.0, high=20.0, transfwd=symlog, transbwd=symexp):
        self.logits = logits
        self.probs = torch.softmax(logits, -1)
        self.buckets = torch.linspace(low, high, steps=255)
        self.transfwd = transfwd
        self.transbwd = transbwd

    def mean(self):
        _mean = self.probs * self.buckets
        return self.transbwd(torch.sum(_mean, dim=-1, keepdim=True))

    def mode(self):
        _mode = F.one_hot(torch.argmax(self.logits, dim=-1), 255) * self.buckets
        return self.transbwd(torch.sum(_mode, dim=-1, keepdim=True))

    def log_prob(self, x):
        target = twohot(self.transfwd(x), self.buckets)
        log_pred = self.logits - torch.logsumexp(self.logits, -1, keepdim=True)
        return (target * log_pred).sum(-1)


def twohot(x, buckets):
    """x: (..., 1) in symlog space -> (..., K) weights on the two neighbouring buckets."""
    k = len(buckets)
    above = torch.bucketize(x.squeeze(-1), buckets, right=True)
    below = torch.clip(above - 1, 0, k - 1)
    above = torch.clip(above, 0, k - 1)
    equal = below == above
    dist_to_below = torch.where(equal, 1, torch.abs(buckets[below] - x.squeeze(-1)))
    dist_to_above = torch.where(equal, 1, torch.abs(buckets[above] - x.squeeze(-1)))
    total = dist_to_below + dist_to_above
    weight_below = dist_to_above / total
    weight_above = dist_to_below / total
    return (F.one_hot(below, num_classes=k) * weight_below[..., None]
            + F.one_hot(above, num_classes=k) * weight_above[..., None])


def twohot_indices_by_sums(x, buckets):
    """dreamerv3-torch's own way to find the neighbours, by counting comparisons."""
    below = torch.sum((buckets <= x[..., None]).to(torch.int32), dim=-1) - 1
    above = len(buckets) - torch.sum((buckets > x[..., None]).to(torch.int32), dim=-1)
    return (torch.clip(below, 0, len(buckets) - 1).squeeze(-1),
            torch.clip(above, 0, len(buckets) - 1).squeeze(-1))


# ---------------------------------------------------------------- the checks on the transforms
probe = torch.cat([-torch.logspace(-3, 4, 40), torch.zeros(1), torch.logspace(-3, 4, 40)])
roundtrip_err = ((symexp(symlog(probe)) - probe).abs() / probe.abs().clamp(min=1e-3)).max().item()
assert roundtrip_err < 1e-5, roundtrip_err

bins = torch.linspace(-20, 20, 255)
inside = torch.tensor(np.sort(rng.uniform(-19.9, 19.9, size=64)), dtype=torch.float32)[:, None]
weights = twohot(inside, bins)
decode = (weights * bins).sum(-1, keepdim=True)
decode_err = (decode - inside).abs().max().item()
assert decode_err < 1e-4, decode_err
assert torch.allclose(weights.sum(-1), torch.ones(64))
idx_s = torch.searchsorted(bins, inside.squeeze(-1).contiguous(), side="right") - 1
below_sums, above_sums = twohot_indices_by_sums(inside, bins)
assert torch.equal(idx_s, below_sums) and torch.equal(below_sums + 1, above_sums)
print(f"transforms: symlog_roundtrip={roundtrip_err:.2e} twohot_decode={decode_err:.2e}")


# ---------------------------------------------------------------- the networks
class RSSMLite(nn.Module):
    """Posterior from the observation, prior from the previous one: enough to exercise DreamerV3's KL."""

    def __init__(self, obs_dim):
        super().__init__()
        self.post = nn.Sequential(nn.Linear(obs_dim, HIDDEN), nn.SiLU(), nn.Linear(HIDDEN, STOCH * DISCRETE))
        self.prior = nn.Sequential(nn.Linear(obs_dim, HIDDEN), nn.SiLU(), nn.Linear(HIDDEN, STOCH * DISCRETE))
        self.unimix_ratio = 0.01

    def get_dist(self, logit):
        logit = logit.reshape(-1, STOCH, DISCRETE)
        probs = F.softmax(logit, -1)
        probs = probs * (1.0 - self.unimix_ratio) + self.unimix_ratio / DISCRETE
        return torchd.independent.Independent(torchd.one_hot_categorical.OneHotCategorical(probs=probs), 1)

    def sample_st(self, dist):
        sample = dist.sample()
        probs = dist.base_dist.probs
        return sample + probs - probs.detach()

    def kl_loss(self, post_logit, prior_logit, dyn_scale=0.5, rep_scale=0.1):
        kld = torchd.kl.kl_divergence
        dist = self.get_dist
        sg = lambda x: x.detach()  # noqa: E731
        rep_loss = value = kld(dist(post_logit), dist(sg(prior_logit)))
        dyn_loss = kld(dist(sg(post_logit)), dist(prior_logit))
        rep_loss = torch.clip(rep_loss, min=FREE_NATS)
        dyn_loss = torch.clip(dyn_loss, min=FREE_NATS)
        return dyn_scale * dyn_loss + rep_scale * rep_loss, value, dyn_loss, rep_loss


class Critic(nn.Module):
    def __init__(self, in_dim, out_dim):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, HIDDEN), nn.LayerNorm(HIDDEN), nn.SiLU(),
                                 nn.Linear(HIDDEN, HIDDEN), nn.LayerNorm(HIDDEN), nn.SiLU(),
                                 nn.Linear(HIDDEN, out_dim))

    def forward(self, x):
        return self.net(x)


class LaProp(torch.optim.Optimizer):
    """LaProp (Ziyin et al.) with DreamerV3's AGC-like clipping of each tensor's gradient norm."""

    def __init__(self, params, lr=3e-4, betas=(0.9, 0.999), eps=1e-20, agc=0.3, pmin=1e-3):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, agc=agc, pmin=pmin))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                upper = group["agc"] * torch.clamp(p.norm(), min=group["pmin"])
                grad = grad * torch.clamp(upper / (grad.norm() + 1e-12), max=1.0)
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (state["exp_avg_sq"] / (1 - beta2 ** state["step"])).sqrt().add_(group["eps"])
                state["exp_avg"].mul_(beta1).add_(grad / denom, alpha=1 - beta1)
                p.add_(state["exp_avg"], alpha=-group["lr"] / (1 - beta1 ** state["step"]))


class RewardEMA:
    """Percentile return scale: EMA of the 5th/95th percentiles, divided by max(1, range)."""

    def __init__(self, alpha=1e-2):
        self.alpha = alpha
        self.range = torch.tensor([0.05, 0.95])

    def __call__(self, x, ema_vals):
        flat_x = torch.flatten(x.detach())
        x_quantile = torch.quantile(input=flat_x, q=self.range)
        ema_vals[:] = self.alpha * x_quantile + (1 - self.alpha) * ema_vals
        scale = torch.clip(ema_vals[1] - ema_vals[0], min=1.0)
        offset = ema_vals[0]
        return offset.detach(), scale.detach()


obs_dim = N_STATES + OBS_NOISE_DIM
wm = RSSMLite(obs_dim)
critic = Critic(STOCH * DISCRETE + obs_dim, 255)
# DreamerV3 zero-initialises the two-hot output layer so the first prediction is exactly 0
nn.init.zeros_(critic.net[-1].weight)
nn.init.zeros_(critic.net[-1].bias)
mse_critic = Critic(obs_dim, 1)
opt = LaProp(list(wm.parameters()) + list(critic.parameters()), lr=3e-3)
mse_opt = LaProp(mse_critic.parameters(), lr=3e-3)
ret_norm = RewardEMA()
ema_vals = torch.zeros(2)

kl_values, min_clipped = [], float("inf")
for step in range(STEPS):
    s0, s1, ret = sample_batch(BATCH)
    obs, prev_obs = observe(s0), observe(s1)
    target = torch.as_tensor(ret, dtype=torch.float32)[:, None]

    post_logit, prior_logit = wm.post(obs), wm.prior(prev_obs)
    z = wm.sample_st(wm.get_dist(post_logit)).reshape(BATCH, -1)
    dist = DiscDist(critic(torch.cat([z, obs], -1)))
    value_loss = -dist.log_prob(target).mean()
    kl, kl_value, dyn_loss, rep_loss = wm.kl_loss(post_logit, prior_logit)
    min_clipped = min(min_clipped, dyn_loss.min().item(), rep_loss.min().item())
    loss = value_loss + kl.mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    kl_values.append(kl_value.mean().item())

    mse_loss = F.mse_loss(mse_critic(obs), target)
    mse_opt.zero_grad()
    mse_loss.backward()
    mse_opt.step()

    offset, scale = ret_norm(target, ema_vals)
    if (step + 1) % 100 == 0:
        adv = ((target - dist.mean().detach() - offset) / scale).abs().mean().item()
        print(f"step {step + 1:4d} twohot_nll={value_loss.item():.4f} kl={np.mean(kl_values[-100:]):.4f} "
              f"mse={mse_loss.item():.4e} scale={scale.item():.2f} norm_adv={adv:.3f}")

assert min_clipped >= FREE_NATS
q = torch.quantile(torch.as_tensor(ret, dtype=torch.float32), torch.tensor([0.05, 0.95]))
assert np.allclose(q.numpy(), np.quantile(ret.astype(np.float32), [0.05, 0.95]), rtol=1e-4, atol=1e-3)
assert scale.item() >= 1.0


# ---------------------------------------------------------------- evaluation against the true values
@torch.no_grad()
def relative_errors():
    states = np.repeat(np.arange(N_STATES), 32)
    obs = observe(states)
    dist = wm.get_dist(wm.post(obs))
    z = dist.base_dist.probs.reshape(len(states), -1)
    pred_twohot = DiscDist(critic(torch.cat([z, obs], -1))).mean().squeeze(-1).double().numpy()
    pred_mse = mse_critic(obs).squeeze(-1).double().numpy()
    true = VALUE[states]
    rel_t = np.abs(pred_twohot - true) / np.abs(true)
    rel_m = np.abs(pred_mse - true) / np.abs(true)
    order = np.argsort(np.abs(VALUE))
    small = np.isin(states, order[:N_STATES // 3])
    large = np.isin(states, order[-(N_STATES // 3):])
    return rel_t[small].mean(), rel_t[large].mean(), rel_m[small].mean(), rel_m[large].mean()


t_small, t_large, m_small, m_large = relative_errors()
print(f"relative error: twohot small={t_small:.4f} large={t_large:.4f}  mse small={m_small:.4f} large={m_large:.4f}")
assert t_small < m_small and t_large < m_large
print(f"FINAL twohot_small={t_small:.4f} twohot_large={t_large:.4f} mse_large={m_large:.4f} "
      f"kl={np.mean(kl_values[-100:]):.4f} decode_err={decode_err:.3e}")
