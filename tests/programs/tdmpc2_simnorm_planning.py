"""TD-MPC2 (nicklashansen/tdmpc2: ``common/layers.py``, ``common/math.py``, ``common/world_model.py``,
``tdmpc2.py``) shrunk to a point mass that must be steered to the origin (no gym, no tensordict).

The world model as the repository writes it: ``NormedLinear`` layers (``nn.Linear`` + ``nn.LayerNorm``
+ ``nn.Mish(inplace=True)``, a first-layer ``nn.Dropout``), an encoder ending in ``SimNorm``
(``x.view(*shp[:-1], -1, self.dim)``, ``F.softmax``, ``x.view(*shp)``), latent dynamics and a two-hot
reward head, and an ensemble of Q heads stacked by ``torch.func.stack_module_state`` and called through
``functional_call`` under ``torch.vmap(..., randomness="different")``, with a polyak-averaged target
copy (``lerp_``). Two-hot targets by ``symlog``, ``torch.bucketize`` bins and ``scatter_``, ``soft_ce``
by ``log_softmax``, ``two_hot_inv`` by ``symexp``. The update: TD targets under ``torch.no_grad()``
from ``min`` of two random Q heads (``torch.randperm(...)[:2]``), latent rollouts written into
``torch.empty`` by ``zs[t + 1] = z``, consistency/reward/value losses weighted by ``rho ** t``, Adam
with a smaller encoder learning rate in its own group, ``clip_grad_norm_``; a squashed-Gaussian policy
prior trained on detached latents. Planning by MPPI: policy trajectories plus ``torch.randn`` samples
``clamp``ed to the action box, ``torch.topk`` elites, exponentiated-score mean/std updates with
``clamp(min_std, max_std)``, a warm-started mean, the action drawn from the elites by Gumbel-max.

Checks: every SimNorm group sums to 1, two-hot encoding inverts, the planner's return beats random
actions, and the losses fall.
"""

import copy
import os
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state

seed = int(os.environ.get("PROGRAM_SEED", "0"))
np.random.seed(seed)
torch.manual_seed(seed)

cfg = SimpleNamespace(
    obs_dim=4, action_dim=2, latent_dim=32, mlp_dim=64, enc_dim=64, simnorm_dim=8,
    num_q=5, dropout=0.01, num_bins=41, vmin=-5.0, vmax=5.0,
    horizon=3, rho=0.5, discount=0.8, tau=0.01, lr=3e-3, enc_lr_scale=0.3, grad_clip_norm=20.0,
    consistency_coef=20.0, reward_coef=0.1, value_coef=0.1, entropy_coef=1e-4,
    log_std_min=-10.0, log_std_max=2.0,
    iterations=3, num_samples=64, num_elites=8, num_pi_trajs=8, min_std=0.05, max_std=2.0,
    temperature=0.5, batch_size=128, steps=120, seed_episodes=24, episode_length=25,
)
cfg.bin_size = (cfg.vmax - cfg.vmin) / (cfg.num_bins - 1)


# ---- common/math.py ----
def symlog(x):
    return torch.sign(x) * torch.log(1 + torch.abs(x))


def symexp(x):
    return torch.sign(x) * (torch.exp(torch.abs(x)) - 1)


BIN_EDGES = torch.linspace(cfg.vmin, cfg.vmax, cfg.num_bins)


def two_hot(x):
    """Scalars (N, 1) to soft two-hot vectors (N, num_bins) in symlog space."""
    x = torch.clamp(symlog(x), cfg.vmin, cfg.vmax).squeeze(1)
    bin_idx = (torch.bucketize(x, BIN_EDGES, right=True) - 1).clamp(0, cfg.num_bins - 2)
    bin_offset = ((x - BIN_EDGES[bin_idx]) / cfg.bin_size).unsqueeze(-1)
    soft_two_hot = torch.zeros(x.shape[0], cfg.num_bins, dtype=x.dtype)
    soft_two_hot.scatter_(1, bin_idx.unsqueeze(1), 1 - bin_offset)
    soft_two_hot.scatter_(1, bin_idx.unsqueeze(1) + 1, bin_offset)
    return soft_two_hot


def two_hot_inv(x):
    dreg_bins = torch.linspace(cfg.vmin, cfg.vmax, cfg.num_bins, dtype=x.dtype)
    x = F.softmax(x, dim=-1)
    x = torch.sum(x * dreg_bins, dim=-1, keepdim=True)
    return symexp(x)


def soft_ce(pred, target):
    pred = F.log_softmax(pred, dim=-1)
    target = two_hot(target)
    return -(target * pred).sum(-1, keepdim=True)


def gaussian_logprob(eps, log_std):
    residual = (-0.5 * eps.pow(2) - log_std).sum(-1, keepdim=True)
    return residual - 0.5 * np.log(2 * np.pi) * eps.size(-1)


def squash(mu, pi, log_pi):
    mu = torch.tanh(mu)
    pi = torch.tanh(pi)
    log_pi = log_pi - torch.log(F.relu(1 - pi.pow(2)) + 1e-6).sum(-1, keepdim=True)
    return mu, pi, log_pi


def gumbel_softmax_sample(p, temperature=1.0, dim=0):
    logits = p.log()
    gumbels = -torch.empty_like(logits).exponential_().log()
    gumbels = (logits + gumbels) / temperature
    y_soft = gumbels.softmax(dim)
    return y_soft.argmax(-1)


# ---- common/layers.py ----
class Ensemble(nn.Module):
    """Vectorised ensemble of identical modules: their parameters stacked on a leading dim."""

    def __init__(self, modules):
        super().__init__()
        params, _ = stack_module_state(modules)
        self._names = list(params.keys())
        self.params = nn.ParameterList([nn.Parameter(params[n].detach().clone()) for n in self._names])
        # a stateless copy for functional_call; kept out of the module tree so that
        # .parameters() yields only the stacked tensors
        self._base = (copy.deepcopy(modules[0]).to("meta"),)
        self._repr = str(modules[0])
        self._n = len(modules)

    def _call(self, params, *args):
        return functional_call(self._base[0], dict(zip(self._names, params)), args)

    def forward(self, *args):
        return torch.vmap(self._call, (0, None), randomness="different")(tuple(self.params), *args)

    def __repr__(self):
        return f"Vectorized {self._n}x " + self._repr


class SimNorm(nn.Module):
    """Simplicial normalization (https://arxiv.org/abs/2204.00616)."""

    def __init__(self, cfg):
        super().__init__()
        self.dim = cfg.simnorm_dim

    def forward(self, x):
        shp = x.shape
        x = x.view(*shp[:-1], -1, self.dim)
        x = F.softmax(x, dim=-1)
        return x.view(*shp)

    def __repr__(self):
        return f"SimNorm(dim={self.dim})"


class NormedLinear(nn.Linear):
    """Linear layer with LayerNorm, activation, and optionally dropout."""

    def __init__(self, *args, dropout=0.0, act=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.ln = nn.LayerNorm(self.out_features)
        self.act = nn.Mish(inplace=True) if act is None else act
        self.dropout = nn.Dropout(dropout, inplace=True) if dropout else None

    def forward(self, x):
        x = super().forward(x)
        if self.dropout:
            x = self.dropout(x)
        return self.act(self.ln(x))


def mlp(in_dim, mlp_dims, out_dim, act=None, dropout=0.0):
    if isinstance(mlp_dims, int):
        mlp_dims = [mlp_dims]
    dims = [in_dim] + mlp_dims + [out_dim]
    layers = nn.ModuleList()
    for i in range(len(dims) - 2):
        layers.append(NormedLinear(dims[i], dims[i + 1], dropout=dropout * (i == 0)))
    layers.append(NormedLinear(dims[-2], dims[-1], act=act) if act else nn.Linear(dims[-2], dims[-1]))
    return nn.Sequential(*layers)


def weight_init(m):
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.constant_(m.bias, 0)
    elif isinstance(m, nn.ParameterList):
        for i, p in enumerate(m):
            if p.dim() == 3:  # Linear
                nn.init.trunc_normal_(p, std=0.02)  # Weight
                nn.init.constant_(m[i + 1], 0)  # Bias


def zero_(params):
    for p in params:
        p.data.fill_(0)


# ---- common/world_model.py ----
class WorldModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self._encoder = mlp(cfg.obs_dim, [cfg.enc_dim], cfg.latent_dim, act=SimNorm(cfg))
        self._dynamics = mlp(cfg.latent_dim + cfg.action_dim, [cfg.mlp_dim, cfg.mlp_dim], cfg.latent_dim,
                             act=SimNorm(cfg))
        self._reward = mlp(cfg.latent_dim + cfg.action_dim, [cfg.mlp_dim, cfg.mlp_dim], cfg.num_bins)
        self._pi = mlp(cfg.latent_dim, [cfg.mlp_dim, cfg.mlp_dim], 2 * cfg.action_dim)
        self._Qs = Ensemble([mlp(cfg.latent_dim + cfg.action_dim, [cfg.mlp_dim, cfg.mlp_dim], cfg.num_bins,
                                 dropout=cfg.dropout) for _ in range(cfg.num_q)])
        self.apply(weight_init)
        zero_([self._reward[-1].weight, self._Qs.params[-2]])
        self._target_Qs = copy.deepcopy(self._Qs).requires_grad_(False)
        self.log_std_min = torch.tensor(cfg.log_std_min)
        self.log_std_dif = torch.tensor(cfg.log_std_max) - self.log_std_min

    def track_q_grad(self, mode=True):
        for p in self._Qs.parameters():
            p.requires_grad_(mode)

    @torch.no_grad()
    def soft_update_target_Q(self):
        for p, p_target in zip(self._Qs.parameters(), self._target_Qs.parameters()):
            p_target.lerp_(p, self.cfg.tau)

    def encode(self, obs):
        return self._encoder(obs)

    def next(self, z, a):
        z = torch.cat([z, a], dim=-1)
        return self._dynamics(z)

    def reward(self, z, a):
        z = torch.cat([z, a], dim=-1)
        return self._reward(z)

    def pi(self, z):
        mu, log_std = self._pi(z).chunk(2, dim=-1)
        log_std = self.log_std_min + 0.5 * self.log_std_dif * (torch.tanh(log_std) + 1)
        eps = torch.randn_like(mu)
        pi = mu + eps * log_std.exp()
        log_pi = gaussian_logprob(eps, log_std)
        mu, pi, log_pi = squash(mu, pi, log_pi)
        return mu, pi, log_pi, log_std

    def Q(self, z, a, return_type="min", target=False):
        assert return_type in {"min", "avg", "all"}
        z = torch.cat([z, a], dim=-1)
        out = (self._target_Qs if target else self._Qs)(z)
        if return_type == "all":
            return out
        qidx = torch.randperm(self.cfg.num_q)[:2]
        Q1, Q2 = out[qidx]
        Q1, Q2 = two_hot_inv(Q1), two_hot_inv(Q2)
        return torch.min(Q1, Q2) if return_type == "min" else (Q1 + Q2) / 2


# ---- the environment: a 2-D point mass pushed towards the origin ----
class PointMass:
    def __init__(self, rng):
        self.rng = rng

    def reset(self):
        self.pos = self.rng.uniform(-1.0, 1.0, size=2)
        self.vel = np.zeros(2)
        return self.obs()

    def obs(self):
        return np.concatenate([self.pos, self.vel]).astype(np.float32)

    def step(self, action):
        action = np.clip(action, -1.0, 1.0)
        self.vel = 0.5 * self.vel + 0.5 * action
        self.pos = np.clip(self.pos + 0.25 * self.vel, -2.0, 2.0)
        reward = -np.linalg.norm(self.pos) - 0.01 * np.square(action).sum()
        return self.obs(), float(reward)


# ---- tdmpc2.py ----
class TDMPC2:
    def __init__(self, cfg):
        self.cfg = cfg
        self.model = WorldModel(cfg)
        self.optim = torch.optim.Adam([
            {"params": self.model._encoder.parameters(), "lr": cfg.lr * cfg.enc_lr_scale},
            {"params": self.model._dynamics.parameters()},
            {"params": self.model._reward.parameters()},
            {"params": self.model._Qs.parameters()},
        ], lr=cfg.lr)
        self.pi_optim = torch.optim.Adam(self.model._pi.parameters(), lr=cfg.lr, eps=1e-5)
        self.model.eval()
        self._prev_mean = torch.zeros(cfg.horizon, cfg.action_dim)

    @torch.no_grad()
    def act(self, obs, t0=False, eval_mode=False):
        obs = torch.as_tensor(obs).unsqueeze(0)
        return self.plan(obs, t0=t0, eval_mode=eval_mode).numpy()

    @torch.no_grad()
    def _estimate_value(self, z, actions):
        G, discount = 0, 1
        for t in range(self.cfg.horizon):
            reward = two_hot_inv(self.model.reward(z, actions[t]))
            z = self.model.next(z, actions[t])
            G = G + discount * reward
            discount = discount * self.cfg.discount
        return G + discount * self.model.Q(z, self.model.pi(z)[1], return_type="avg")

    @torch.no_grad()
    def plan(self, obs, t0=False, eval_mode=False):
        cfg = self.cfg
        z = self.model.encode(obs)
        pi_actions = torch.empty(cfg.horizon, cfg.num_pi_trajs, cfg.action_dim)
        _z = z.repeat(cfg.num_pi_trajs, 1)
        for t in range(cfg.horizon - 1):
            pi_actions[t] = self.model.pi(_z)[1]
            _z = self.model.next(_z, pi_actions[t])
        pi_actions[-1] = self.model.pi(_z)[1]

        z = z.repeat(cfg.num_samples, 1)
        mean = torch.zeros(cfg.horizon, cfg.action_dim)
        std = torch.full((cfg.horizon, cfg.action_dim), cfg.max_std, dtype=torch.float)
        if not t0:
            mean[:-1] = self._prev_mean[1:]
        actions = torch.empty(cfg.horizon, cfg.num_samples, cfg.action_dim)
        actions[:, :cfg.num_pi_trajs] = pi_actions

        for _ in range(cfg.iterations):
            r = torch.randn(cfg.horizon, cfg.num_samples - cfg.num_pi_trajs, cfg.action_dim)
            actions_sample = mean.unsqueeze(1) + std.unsqueeze(1) * r
            actions_sample = actions_sample.clamp(-1, 1)
            actions[:, cfg.num_pi_trajs:] = actions_sample

            value = self._estimate_value(z, actions).nan_to_num(0)
            elite_idxs = torch.topk(value.squeeze(1), cfg.num_elites, dim=0).indices
            elite_value, elite_actions = value[elite_idxs], actions[:, elite_idxs]

            max_value = elite_value.max(0).values
            score = torch.exp(cfg.temperature * (elite_value - max_value))
            score = score / score.sum(0)
            mean = (score.unsqueeze(0) * elite_actions).sum(dim=1) / (score.sum(0) + 1e-9)
            std = ((score.unsqueeze(0) * (elite_actions - mean.unsqueeze(1)) ** 2).sum(dim=1)
                   / (score.sum(0) + 1e-9)).sqrt()
            std = std.clamp(cfg.min_std, cfg.max_std)

        rand_idx = gumbel_softmax_sample(score.squeeze(1))
        actions = torch.index_select(elite_actions, 1, rand_idx).squeeze(1)
        a, std = actions[0], std[0]
        if not eval_mode:
            a = a + std * torch.randn(cfg.action_dim)
        self._prev_mean.copy_(mean)
        return a.clamp(-1, 1)

    def update_pi(self, zs):
        self.pi_optim.zero_grad(set_to_none=True)
        self.model.track_q_grad(False)
        _, pis, log_pis, _ = self.model.pi(zs)
        qs = self.model.Q(zs, pis, return_type="avg")
        rho = torch.pow(self.cfg.rho, torch.arange(len(qs)))
        pi_loss = ((self.cfg.entropy_coef * log_pis - qs).mean(dim=(1, 2)) * rho).mean()
        pi_loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model._pi.parameters(), self.cfg.grad_clip_norm)
        self.pi_optim.step()
        self.model.track_q_grad(True)
        return pi_loss.item()

    @torch.no_grad()
    def _td_target(self, next_z, reward):
        pi = self.model.pi(next_z)[1]
        return reward + self.cfg.discount * self.model.Q(next_z, pi, return_type="min", target=True)

    def update(self, obs, action, reward):
        cfg = self.cfg
        with torch.no_grad():
            next_z = self.model.encode(obs[1:])
            td_targets = self._td_target(next_z, reward)

        self.model.train()
        zs = torch.empty(cfg.horizon + 1, cfg.batch_size, cfg.latent_dim)
        z = self.model.encode(obs[0])
        zs[0] = z
        consistency_loss = 0
        for t in range(cfg.horizon):
            z = self.model.next(z, action[t])
            consistency_loss = consistency_loss + F.mse_loss(z, next_z[t]) * cfg.rho ** t
            zs[t + 1] = z

        _zs = zs[:-1]
        qs = self.model.Q(_zs, action, return_type="all")
        reward_preds = self.model.reward(_zs, action)

        reward_loss, value_loss = 0, 0
        for t in range(cfg.horizon):
            reward_loss = reward_loss + soft_ce(reward_preds[t], reward[t]).mean() * cfg.rho ** t
            for q in range(cfg.num_q):
                value_loss = value_loss + soft_ce(qs[q][t], td_targets[t]).mean() * cfg.rho ** t
        consistency_loss = consistency_loss / cfg.horizon
        reward_loss = reward_loss / cfg.horizon
        value_loss = value_loss / (cfg.horizon * cfg.num_q)
        total_loss = (cfg.consistency_coef * consistency_loss + cfg.reward_coef * reward_loss
                      + cfg.value_coef * value_loss)

        total_loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip_norm)
        self.optim.step()
        self.optim.zero_grad(set_to_none=True)

        pi_loss = self.update_pi(zs.detach())
        self.model.soft_update_target_Q()
        self.model.eval()
        return {
            "consistency_loss": float(consistency_loss.mean().item()),
            "reward_loss": float(reward_loss.mean().item()),
            "value_loss": float(value_loss.mean().item()),
            "pi_loss": pi_loss,
            "total_loss": float(total_loss.mean().item()),
            "grad_norm": float(grad_norm),
        }


# ---- seed data: random-action episodes ----
rng = np.random.RandomState(seed)
env = PointMass(rng)
T = cfg.episode_length
obs_buf = np.zeros((cfg.seed_episodes, T + 1, cfg.obs_dim), dtype=np.float32)
act_buf = np.zeros((cfg.seed_episodes, T, cfg.action_dim), dtype=np.float32)
rew_buf = np.zeros((cfg.seed_episodes, T), dtype=np.float32)
for ep in range(cfg.seed_episodes):
    obs_buf[ep, 0] = env.reset()
    for t in range(T):
        a = rng.uniform(-1, 1, size=cfg.action_dim)
        obs_buf[ep, t + 1], rew_buf[ep, t] = env.step(a)
        act_buf[ep, t] = a
obs_buf, act_buf, rew_buf = torch.from_numpy(obs_buf), torch.from_numpy(act_buf), torch.from_numpy(rew_buf)
print("buffer", tuple(obs_buf.shape), tuple(act_buf.shape), tuple(rew_buf.shape))


def sample_batch():
    ep = torch.randint(0, cfg.seed_episodes, (cfg.batch_size,))
    start = torch.randint(0, T - cfg.horizon + 1, (cfg.batch_size,))
    steps = start.unsqueeze(1) + torch.arange(cfg.horizon + 1)
    obs = obs_buf[ep.unsqueeze(1), steps].permute(1, 0, 2).contiguous()
    action = act_buf[ep.unsqueeze(1), steps[:, :-1]].permute(1, 0, 2).contiguous()
    reward = rew_buf[ep.unsqueeze(1), steps[:, :-1]].t().unsqueeze(-1).contiguous()
    return obs, action, reward


agent = TDMPC2(cfg)
print(agent.model._Qs)
n_params = sum(p.numel() for p in agent.model.parameters() if p.requires_grad)
print("learnable parameters", n_params)

# two-hot must invert (inside the bin range) and SimNorm groups must be simplices
x = torch.linspace(-20, 20, 33).unsqueeze(1)
twohot_err = (two_hot_inv(torch.log(two_hot(x) + 1e-30)) - x).abs().max().item()
assert twohot_err < 0.2
with torch.no_grad():
    z = agent.model.encode(obs_buf[:, 0])
groups = z.view(*z.shape[:-1], -1, cfg.simnorm_dim).sum(-1)
print("simnorm groups", tuple(groups.shape))

first, history = None, []
for step in range(cfg.steps):
    info = agent.update(*sample_batch())
    history.append(info)
    if first is None:
        first = info
    if step % 30 == 0 or step == cfg.steps - 1:
        avg = {k: np.mean([h[k] for h in history[-30:]]) for k in info}
        print(f"step {step:4d}  consistency {avg['consistency_loss']:.4f}  reward {avg['reward_loss']:.4f}  "
              f"value {avg['value_loss']:.4f}  pi {avg['pi_loss']:.4f}  grad_norm {avg['grad_norm']:.3f}")

first_loss = np.mean([h["total_loss"] for h in history[:20]])
last_loss = np.mean([h["total_loss"] for h in history[-20:]])
loss_ratio = last_loss / first_loss

with torch.no_grad():
    z = agent.model.encode(obs_buf.view(-1, cfg.obs_dim))
simnorm_err = (z.view(*z.shape[:-1], -1, cfg.simnorm_dim).sum(-1) - 1).abs().max().item()
assert simnorm_err < 1e-5
assert (z >= 0).all()


def rollout(policy, episodes=2, length=20):
    eval_env = PointMass(np.random.RandomState(1000 + seed))
    total = 0.0
    for _ in range(episodes):
        obs = eval_env.reset()
        for t in range(length):
            obs, r = eval_env.step(policy(obs, t))
            total += r
    return total / episodes


plan_return = rollout(lambda obs, t: agent.act(obs, t0=(t == 0), eval_mode=True))
random_rng = np.random.RandomState(2000 + seed)
random_return = rollout(lambda obs, t: random_rng.uniform(-1, 1, size=cfg.action_dim))
print(f"planner return {plan_return:.3f}  random return {random_return:.3f}")
assert plan_return > random_return
assert loss_ratio < 1.0

print(f"FINAL simnorm_err={simnorm_err:.2e} twohot_err={twohot_err:.4f} loss_ratio={loss_ratio:.4f} "
      f"plan_return={plan_return:.3f} random_return={random_return:.3f}")
