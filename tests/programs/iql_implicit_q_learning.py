"""Implicit Q-Learning as gwthomas/IQL-PyTorch writes it (the port of ikostrikov/implicit_q_learning)
on an offline dataset from a tiny point-reaching task written in NumPy (no gym/d4rl):
``asymmetric_l2_loss(u, tau) = torch.mean(torch.abs(tau - (u < 0).float()) * u**2)``, a ``TwinQ``
(``torch.cat([state, action], 1)``, ``torch.min(*self.both(...))``) with a
``copy.deepcopy(qf).requires_grad_(False)`` target updated by
``target_param.data.mul_(1. - alpha).add_(source_param.data, alpha=alpha)`` (and, as other ports
write it, by ``lerp_`` under ``torch.no_grad()``: the two targets must agree), a ``ValueFunction``
regressed to the tau-expectile of the target Q, Q regressed to ``rewards + (1. - terminals.float())
* discount * next_v``, advantage-weighted regression of a Gaussian policy
(``torch.exp(self.beta * adv.detach()).clamp(max=EXP_ADV_MAX)``, ``Normal(mean, std).log_prob(actions)
.sum(-1)``, against the repo's ``MultivariateNormal(mean, scale_tril=torch.diag(std))``), a
``CosineAnnealingLR`` on the policy's optimizer, the repo's return-range reward normalisation,
``torchify`` + ``policy.act(..., deterministic=True)`` evaluation.

Checks: V on held-out states against the tau-expectile of Q over the behaviour policy's actions,
computed directly by bisection; the learned policy's return against the behaviour policy's.
"""

import copy
import os
import random

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import MultivariateNormal, Normal
from torch.optim.lr_scheduler import CosineAnnealingLR

seed = int(os.environ.get("PROGRAM_SEED", "0"))
random.seed(seed)
np.random.seed(seed)
torch.manual_seed(seed)

DEFAULT_DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
EXP_ADV_MAX = 100.
LOG_STD_MIN = -5.0
LOG_STD_MAX = 2.0


# ---- a small control task and a mixed-quality behaviour policy ----
class PointReach:
    """A point in the plane steered to the origin: obs = position, action in [-1, 1]^2 moves it
    by 0.2 * action; reward is minus the distance after the move."""

    obs_dim = 2
    act_dim = 2
    max_episode_steps = 12

    def __init__(self, seed):
        self.rng = np.random.RandomState(seed)

    def reset(self):
        self.x = self.rng.uniform(-1.0, 1.0, size=2).astype(np.float32)
        self.t = 0
        return self.x.copy()

    def step(self, a):
        a = np.clip(a, -1.0, 1.0)
        self.x = (self.x + 0.2 * a).astype(np.float32)
        self.t += 1
        r = -float(np.linalg.norm(self.x))
        done = False
        return self.x.copy(), r, done, {}


def behaviour_actions(obs, rng, p_expert=0.3):
    """Per step: a noisy expert (a proportional controller) with probability p_expert, otherwise
    uniform noise."""
    obs = np.atleast_2d(obs)
    expert = np.clip(-2.5 * obs + 0.3 * rng.randn(*obs.shape), -1.0, 1.0)
    noise = rng.uniform(-1.0, 1.0, size=obs.shape)
    pick = rng.rand(obs.shape[0], 1) < p_expert
    return np.where(pick, expert, noise).astype(np.float32)


def collect_dataset(env, n_episodes, rng):
    data = {k: [] for k in ("observations", "actions", "next_observations", "rewards", "terminals", "timeouts")}
    returns = []
    for _ in range(n_episodes):
        obs, ret = env.reset(), 0.0
        for t in range(env.max_episode_steps):
            act = behaviour_actions(obs, rng)[0]
            next_obs, r, done, _ = env.step(act)
            data["observations"].append(obs)
            data["actions"].append(act)
            data["next_observations"].append(next_obs)
            data["rewards"].append(r)
            data["terminals"].append(done)
            data["timeouts"].append(t == env.max_episode_steps - 1)
            obs, ret = next_obs, ret + r
        returns.append(ret)
    return {k: np.array(v) for k, v in data.items()}, np.array(returns)


# ---- src/util.py ----
def torchify(x):
    x = torch.from_numpy(x)
    if x.dtype is torch.float64:
        x = x.float()
    x = x.to(device=DEFAULT_DEVICE)
    return x


def return_range(dataset, max_episode_steps):
    returns, lengths = [], []
    ep_ret, ep_len = 0., 0
    for r, d in zip(dataset['rewards'], dataset['terminals'] | dataset['timeouts']):
        ep_ret += float(r)
        ep_len += 1
        if d or ep_len == max_episode_steps:
            returns.append(ep_ret)
            lengths.append(ep_len)
            ep_ret, ep_len = 0., 0
    lengths.append(ep_len)  # but still keep track of number of steps
    assert sum(lengths) == len(dataset['rewards'])
    return min(returns), max(returns)


def sample_batch(dataset, batch_size):
    k = list(dataset.keys())[0]
    n, device = len(dataset[k]), dataset[k].device
    for v in dataset.values():
        assert len(v) == n, 'Dataset values must have same length'
    indices = torch.randint(low=0, high=n, size=(batch_size,), device=device)
    return {k: v[indices] for k, v in dataset.items()}


def update_exponential_moving_average(target, source, alpha):
    for target_param, source_param in zip(target.parameters(), source.parameters()):
        target_param.data.mul_(1. - alpha).add_(source_param.data, alpha=alpha)


@torch.no_grad()
def polyak_lerp_(target, source, alpha):
    for target_param, source_param in zip(target.parameters(), source.parameters()):
        target_param.lerp_(source_param, alpha)


class Squeeze(nn.Module):
    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return x.squeeze(dim=self.dim)


def mlp(dims, activation=nn.ReLU, output_activation=None, squeeze_output=False):
    n_dims = len(dims)
    assert n_dims >= 2, 'MLP requires at least two dims (input and output)'

    layers = []
    for i in range(n_dims - 2):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        layers.append(activation())
    layers.append(nn.Linear(dims[-2], dims[-1]))
    if output_activation is not None:
        layers.append(output_activation())
    if squeeze_output:
        assert dims[-1] == 1
        layers.append(Squeeze(-1))
    net = nn.Sequential(*layers)
    net.to(dtype=torch.float32)
    return net


# ---- src/value_functions.py ----
class TwinQ(nn.Module):
    def __init__(self, state_dim, action_dim, hidden_dim=64, n_hidden=2):
        super().__init__()
        dims = [state_dim + action_dim, *([hidden_dim] * n_hidden), 1]
        self.q1 = mlp(dims, squeeze_output=True)
        self.q2 = mlp(dims, squeeze_output=True)

    def both(self, state, action):
        sa = torch.cat([state, action], 1)
        return self.q1(sa), self.q2(sa)

    def forward(self, state, action):
        return torch.min(*self.both(state, action))


class ValueFunction(nn.Module):
    def __init__(self, state_dim, hidden_dim=64, n_hidden=2):
        super().__init__()
        dims = [state_dim, *([hidden_dim] * n_hidden), 1]
        self.v = mlp(dims, squeeze_output=True)

    def forward(self, state):
        return self.v(state)


# ---- src/policy.py ----
class GaussianPolicy(nn.Module):
    def __init__(self, obs_dim, act_dim, hidden_dim=64, n_hidden=2):
        super().__init__()
        self.net = mlp([obs_dim, *([hidden_dim] * n_hidden), act_dim], output_activation=nn.Tanh)
        self.log_std = nn.Parameter(torch.zeros(act_dim, dtype=torch.float32))

    def forward(self, obs):
        mean = self.net(obs)
        std = torch.exp(self.log_std.clamp(LOG_STD_MIN, LOG_STD_MAX))
        return Normal(mean, std)

    def multivariate(self, obs):
        mean = self.net(obs)
        std = torch.exp(self.log_std.clamp(LOG_STD_MIN, LOG_STD_MAX))
        scale_tril = torch.diag(std)
        return MultivariateNormal(mean, scale_tril=scale_tril)

    def act(self, obs, deterministic=False, enable_grad=False):
        with torch.set_grad_enabled(enable_grad):
            dist = self(obs)
            return dist.mean if deterministic else dist.sample()


# ---- src/iql.py ----
def asymmetric_l2_loss(u, tau):
    return torch.mean(torch.abs(tau - (u < 0).float()) * u**2)


class ImplicitQLearning(nn.Module):
    def __init__(self, qf, vf, policy, optimizer_factory, max_steps,
                 tau, beta, discount=0.99, alpha=0.005):
        super().__init__()
        self.qf = qf.to(DEFAULT_DEVICE)
        self.q_target = copy.deepcopy(qf).requires_grad_(False).to(DEFAULT_DEVICE)
        self.q_target_lerp = copy.deepcopy(qf).requires_grad_(False).to(DEFAULT_DEVICE)
        self.vf = vf.to(DEFAULT_DEVICE)
        self.policy = policy.to(DEFAULT_DEVICE)
        self.v_optimizer = optimizer_factory(self.vf.parameters())
        self.q_optimizer = optimizer_factory(self.qf.parameters())
        self.policy_optimizer = optimizer_factory(self.policy.parameters())
        self.policy_lr_schedule = CosineAnnealingLR(self.policy_optimizer, max_steps)
        self.tau = tau
        self.beta = beta
        self.discount = discount
        self.alpha = alpha

    def update(self, observations, actions, next_observations, rewards, terminals):
        with torch.no_grad():
            target_q = self.q_target(observations, actions)
            next_v = self.vf(next_observations)

        # Update value function
        v = self.vf(observations)
        adv = target_q - v
        v_loss = asymmetric_l2_loss(adv, self.tau)
        self.v_optimizer.zero_grad(set_to_none=True)
        v_loss.backward()
        self.v_optimizer.step()

        # Update Q function
        targets = rewards + (1. - terminals.float()) * self.discount * next_v.detach()
        qs = self.qf.both(observations, actions)
        q_loss = sum(F.mse_loss(q, targets) for q in qs) / len(qs)
        self.q_optimizer.zero_grad(set_to_none=True)
        q_loss.backward()
        self.q_optimizer.step()

        # Update target Q network
        update_exponential_moving_average(self.q_target, self.qf, self.alpha)
        polyak_lerp_(self.q_target_lerp, self.qf, self.alpha)

        # Update policy
        exp_adv = torch.exp(self.beta * adv.detach()).clamp(max=EXP_ADV_MAX)
        policy_out = self.policy(observations)
        if isinstance(policy_out, torch.distributions.Distribution):
            bc_losses = -policy_out.log_prob(actions).sum(-1)
        elif torch.is_tensor(policy_out):
            assert policy_out.shape == actions.shape
            bc_losses = torch.sum((policy_out - actions)**2, dim=1)
        else:
            raise NotImplementedError
        policy_loss = torch.mean(exp_adv * bc_losses)
        self.policy_optimizer.zero_grad(set_to_none=True)
        policy_loss.backward()
        self.policy_optimizer.step()
        self.policy_lr_schedule.step()
        return v_loss.item(), q_loss.item(), policy_loss.item()


def evaluate_policy(env, policy, max_episode_steps, deterministic=True):
    obs = env.reset()
    total_reward = 0.
    for _ in range(max_episode_steps):
        with torch.no_grad():
            action = policy.act(torchify(obs), deterministic=deterministic).cpu().numpy()
        next_obs, reward, done, info = env.step(action)
        total_reward += reward
        if done:
            break
        else:
            obs = next_obs
    return total_reward


def expectile_by_bisection(q, tau, iters=60):
    """The tau-expectile of each row of q: the m with sum |tau - 1(q < m)| (q - m) = 0."""
    lo, hi = q.min(dim=1).values.clone(), q.max(dim=1).values.clone()
    for _ in range(iters):
        m = (lo + hi) / 2
        u = q - m[:, None]
        g = (torch.where(u < 0, 1 - tau, tau) * u).sum(dim=1)
        lo = torch.where(g > 0, m, lo)
        hi = torch.where(g > 0, hi, m)
    return (lo + hi) / 2


# ---- main.py ----
env = PointReach(seed)
data_rng = np.random.RandomState(1234 + seed)
dataset_np, behaviour_returns = collect_dataset(env, 240, data_rng)
print(f"dataset: {len(dataset_np['rewards'])} transitions, behaviour return {behaviour_returns.mean():.3f}")

min_ret, max_ret = return_range(dataset_np, env.max_episode_steps)
print(f"return range: {min_ret:.3f} to {max_ret:.3f}")
dataset = {k: torchify(v) for k, v in dataset_np.items() if k != "timeouts"}
dataset['rewards'] /= (max_ret - min_ret)
dataset['rewards'] *= env.max_episode_steps

n_steps = 900
batch_size = 64
tau, beta = 0.7, 3.0
iql = ImplicitQLearning(
    qf=TwinQ(env.obs_dim, env.act_dim),
    vf=ValueFunction(env.obs_dim),
    policy=GaussianPolicy(env.obs_dim, env.act_dim),
    optimizer_factory=lambda params: torch.optim.Adam(params, lr=1e-3),
    max_steps=n_steps, tau=tau, beta=beta, discount=0.9, alpha=0.005)

for step in range(n_steps):
    v_loss, q_loss, policy_loss = iql.update(**sample_batch(dataset, batch_size))
    if (step + 1) % 300 == 0:
        lr_now = iql.policy_lr_schedule.get_last_lr()[0]
        print(f"step {step + 1}: v_loss {v_loss:.4f} q_loss {q_loss:.4f} policy_loss {policy_loss:.4f} "
              f"policy lr {lr_now:.6f}")

# the two polyak routes
lerp_gap = max((a - b).abs().max().item()
               for a, b in zip(iql.q_target.parameters(), iql.q_target_lerp.parameters()))
print(f"target by mul_/add_ vs lerp_: max gap {lerp_gap:.2e}")

# Normal(...).log_prob(...).sum(-1) against MultivariateNormal(scale_tril=diag(std))
probe = torchify(dataset_np["observations"][:256])
probe_act = torchify(dataset_np["actions"][:256])
with torch.no_grad():
    lp_normal = iql.policy(probe).log_prob(probe_act).sum(-1)
    lp_mvn = iql.policy.multivariate(probe).log_prob(probe_act)
logprob_gap = (lp_normal - lp_mvn).abs().max().item()
print(f"Normal vs MultivariateNormal log_prob: max gap {logprob_gap:.2e}")

# V on held-out states against the tau-expectile of Q over the behaviour policy's actions
held_rng = np.random.RandomState(999)
held_states = held_rng.uniform(-0.9, 0.9, size=(200, 2)).astype(np.float32)
n_act = 256
acts = behaviour_actions(np.repeat(held_states, n_act, axis=0), held_rng)
with torch.no_grad():
    q = iql.q_target(torchify(np.repeat(held_states, n_act, axis=0)), torchify(acts)).view(200, n_act)
    v_held = iql.vf(torchify(held_states))
expectile = expectile_by_bisection(q, tau)
q_mean = q.mean(dim=1)
q_spread = q.std(dim=1).mean().item()
v_err = (v_held - expectile).abs().mean().item() / q_spread
mean_err = (v_held - q_mean).abs().mean().item() / q_spread
check = (torch.abs(tau - (q < expectile[:, None]).float()) * (q - expectile[:, None])).sum(1).abs().max().item()
print(f"held-out V vs tau-expectile of Q: {v_err:.3f} spreads (vs the mean of Q: {mean_err:.3f}), "
      f"expectile residual {check:.1e}")

# returns of the learned policy and the behaviour policy from the same start states
eval_returns, behaviour_eval = [], []
for i in range(20):
    env_eval = PointReach(10_000 + i)
    eval_returns.append(evaluate_policy(env_eval, iql.policy, env.max_episode_steps))
    env_b, rng_b = PointReach(10_000 + i), np.random.RandomState(20_000 + i)
    obs, ret = env_b.reset(), 0.0
    for _ in range(env.max_episode_steps):
        obs, r, _, _ = env_b.step(behaviour_actions(obs, rng_b)[0])
        ret += r
    behaviour_eval.append(ret)
policy_return = float(np.mean(eval_returns))
behaviour_return = float(np.mean(behaviour_eval))
print(f"return: learned policy {policy_return:.3f}, behaviour policy {behaviour_return:.3f}")
assert lerp_gap < 1e-5 and logprob_gap < 1e-3
assert v_err < mean_err and policy_return > behaviour_return

print(f"FINAL policy_return={policy_return:.4f} behaviour_return={behaviour_return:.4f} "
      f"v_expectile_err={v_err:.4f} v_mean_err={mean_err:.4f} v_loss={v_loss:.4f} q_loss={q_loss:.4f}")
