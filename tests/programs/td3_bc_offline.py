"""TD3+BC (Fujimoto & Gu 2021, "A Minimalist Approach to Offline Reinforcement Learning";
sfujim/TD3_BC's ``TD3_BC.py``, ``utils.py`` and ``main.py``) on a 1-D reaching toy.

The repository's pieces, scaled down: ``Actor`` (``max_action * torch.tanh``) and a twin ``Critic``
on ``torch.cat([state, action], 1)`` with its ``Q1`` method; ``copy.deepcopy`` targets; the
``ReplayBuffer`` of NumPy arrays filled by ``convert_D4RL``-style assignment, sampled by
``np.random.randint`` into ``torch.FloatTensor(...).to(device)``, states normalised by the dataset's
``mean(0, keepdims=True)``/``std(0, keepdims=True) + 1e-3``; ``train`` with target policy smoothing
``(torch.randn_like(action) * policy_noise).clamp(-noise_clip, noise_clip)``, the twin-critic
``torch.min`` target under ``torch.no_grad()``, delayed actor updates every ``policy_freq`` steps with
``lmbda = alpha / Q.abs().mean().detach()`` and ``-lmbda * Q.mean() + F.mse_loss(pi, action)``, and
Polyak updates ``target_param.data.copy_(tau * param.data + (1 - tau) * target_param.data)``;
``select_action`` by ``.cpu().data.numpy().flatten()``; ``eval_policy`` over episodes.

The toy: a point at ``p`` must reach a goal ``g`` (state ``[p, g]``, action in [-1, 1] moves it by
``0.25 * a``, reward ``-|p' - g|``); the offline dataset comes from a noisy expert (Gaussian action
noise and a share of uniformly random actions). Reported: the dataset's return, behaviour cloning's
(TD3+BC with the Q term off) and TD3+BC's. Checks: the ``torch.min`` target equals an explicit
``torch.where(q1 < q2, q1, q2)``; the Polyak ``copy_`` equals ``torch.lerp``.
"""

# ruff: noqa: UP004, UP008  (the repository's spelling: class ReplayBuffer(object), super(Actor, self))
import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
HORIZON, STEP, HIDDEN = 20, 0.25, 64


class ReachEnv:
    def __init__(self, rng):
        self.rng = rng

    def reset(self):
        self.p = self.rng.uniform(-1, 1)
        self.g = self.rng.uniform(-1, 1)
        self.t = 0
        return np.array([self.p, self.g], dtype=np.float32)

    def step(self, action):
        self.p = float(np.clip(self.p + STEP * float(np.clip(action[0], -1, 1)), -1.5, 1.5))
        self.t += 1
        reward = -abs(self.p - self.g)
        return np.array([self.p, self.g], dtype=np.float32), reward, self.t >= HORIZON


class ReplayBuffer(object):
    def __init__(self, state_dim, action_dim, max_size=int(1e6)):
        self.max_size = max_size
        self.ptr = 0
        self.size = 0
        self.state = np.zeros((max_size, state_dim))
        self.action = np.zeros((max_size, action_dim))
        self.next_state = np.zeros((max_size, state_dim))
        self.reward = np.zeros((max_size, 1))
        self.not_done = np.zeros((max_size, 1))
        self.device = device

    def sample(self, batch_size):
        ind = np.random.randint(0, self.size, size=batch_size)
        return (
            torch.FloatTensor(self.state[ind]).to(self.device),
            torch.FloatTensor(self.action[ind]).to(self.device),
            torch.FloatTensor(self.next_state[ind]).to(self.device),
            torch.FloatTensor(self.reward[ind]).to(self.device),
            torch.FloatTensor(self.not_done[ind]).to(self.device),
        )

    def convert_D4RL(self, dataset):
        self.state = dataset['observations']
        self.action = dataset['actions']
        self.next_state = dataset['next_observations']
        self.reward = dataset['rewards'].reshape(-1, 1)
        self.not_done = 1. - dataset['terminals'].reshape(-1, 1)
        self.size = self.state.shape[0]

    def normalize_states(self, eps=1e-3):
        mean = self.state.mean(0, keepdims=True)
        std = self.state.std(0, keepdims=True) + eps
        self.state = (self.state - mean) / std
        self.next_state = (self.next_state - mean) / std
        return mean, std


class Actor(nn.Module):
    def __init__(self, state_dim, action_dim, max_action):
        super(Actor, self).__init__()
        self.l1 = nn.Linear(state_dim, HIDDEN)
        self.l2 = nn.Linear(HIDDEN, HIDDEN)
        self.l3 = nn.Linear(HIDDEN, action_dim)
        self.max_action = max_action

    def forward(self, state):
        a = F.relu(self.l1(state))
        a = F.relu(self.l2(a))
        return self.max_action * torch.tanh(self.l3(a))


class Critic(nn.Module):
    def __init__(self, state_dim, action_dim):
        super(Critic, self).__init__()
        # Q1 architecture
        self.l1 = nn.Linear(state_dim + action_dim, HIDDEN)
        self.l2 = nn.Linear(HIDDEN, HIDDEN)
        self.l3 = nn.Linear(HIDDEN, 1)
        # Q2 architecture
        self.l4 = nn.Linear(state_dim + action_dim, HIDDEN)
        self.l5 = nn.Linear(HIDDEN, HIDDEN)
        self.l6 = nn.Linear(HIDDEN, 1)

    def forward(self, state, action):
        sa = torch.cat([state, action], 1)
        q1 = F.relu(self.l1(sa))
        q1 = F.relu(self.l2(q1))
        q1 = self.l3(q1)
        q2 = F.relu(self.l4(sa))
        q2 = F.relu(self.l5(q2))
        q2 = self.l6(q2)
        return q1, q2

    def Q1(self, state, action):
        sa = torch.cat([state, action], 1)
        q1 = F.relu(self.l1(sa))
        q1 = F.relu(self.l2(q1))
        return self.l3(q1)


class TD3_BC(object):
    def __init__(self, state_dim, action_dim, max_action, discount=0.9, tau=0.005, policy_noise=0.2,
                 noise_clip=0.5, policy_freq=2, alpha=2.5, use_q=True):
        self.actor = Actor(state_dim, action_dim, max_action).to(device)
        self.actor_target = copy.deepcopy(self.actor)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=1e-3)
        self.critic = Critic(state_dim, action_dim).to(device)
        self.critic_target = copy.deepcopy(self.critic)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=1e-3)
        self.max_action = max_action
        self.discount = discount
        self.tau = tau
        self.policy_noise = policy_noise
        self.noise_clip = noise_clip
        self.policy_freq = policy_freq
        self.alpha = alpha
        self.use_q = use_q
        self.total_it = 0

    def select_action(self, state):
        state = torch.FloatTensor(state.reshape(1, -1)).to(device)
        return self.actor(state).cpu().data.numpy().flatten()

    def train(self, replay_buffer, batch_size=256):
        self.total_it += 1
        state, action, next_state, reward, not_done = replay_buffer.sample(batch_size)

        with torch.no_grad():
            noise = (torch.randn_like(action) * self.policy_noise).clamp(-self.noise_clip, self.noise_clip)
            next_action = (self.actor_target(next_state) + noise).clamp(-self.max_action, self.max_action)
            target_Q1, target_Q2 = self.critic_target(next_state, next_action)
            target_Q = torch.min(target_Q1, target_Q2)
            target_Q = reward + not_done * self.discount * target_Q

        current_Q1, current_Q2 = self.critic(state, action)
        critic_loss = F.mse_loss(current_Q1, target_Q) + F.mse_loss(current_Q2, target_Q)
        self.critic_optimizer.zero_grad()
        critic_loss.backward()
        self.critic_optimizer.step()

        actor_loss = None
        if self.total_it % self.policy_freq == 0:
            pi = self.actor(state)
            Q = self.critic.Q1(state, pi)
            lmbda = self.alpha / Q.abs().mean().detach()
            actor_loss = F.mse_loss(pi, action)
            if self.use_q:
                actor_loss = -lmbda * Q.mean() + actor_loss
            self.actor_optimizer.zero_grad()
            actor_loss.backward()
            self.actor_optimizer.step()

            for param, target_param in zip(self.critic.parameters(), self.critic_target.parameters()):
                target_param.data.copy_(self.tau * param.data + (1 - self.tau) * target_param.data)
            for param, target_param in zip(self.actor.parameters(), self.actor_target.parameters()):
                target_param.data.copy_(self.tau * param.data + (1 - self.tau) * target_param.data)
        return critic_loss.item(), None if actor_loss is None else actor_loss.item()


def expert_action(state):
    return np.clip(3.0 * (state[1] - state[0]), -1, 1)


def collect_dataset(rng, episodes, noise=0.4, random_share=0.3):
    env = ReachEnv(rng)
    keys = ('observations', 'actions', 'next_observations', 'rewards', 'terminals')
    data = {k: [] for k in keys}
    returns = []
    for _ in range(episodes):
        state, done, ret = env.reset(), False, 0.0
        while not done:
            if rng.uniform() < random_share:
                action = rng.uniform(-1, 1, size=1)
            else:
                action = np.clip(expert_action(state) + noise * rng.standard_normal(1), -1, 1)
            next_state, reward, done = env.step(action)
            for k, v in zip(keys, (state, action, next_state, reward, 0.0)):
                data[k].append(v)
            state, ret = next_state, ret + reward
        returns.append(ret)
    return {k: np.array(v, dtype=np.float64) for k, v in data.items()}, float(np.mean(returns))


def eval_policy(policy, mean, std, eval_seed, eval_episodes=20):
    eval_env = ReachEnv(np.random.default_rng(eval_seed + 100))
    avg_reward = 0.
    for _ in range(eval_episodes):
        state, done = eval_env.reset(), False
        while not done:
            state = (np.array(state).reshape(1, -1) - mean) / std
            action = policy.select_action(state)
            state, reward, done = eval_env.step(action)
            avg_reward += reward
    return avg_reward / eval_episodes


rng = np.random.default_rng(seed)
dataset, data_return = collect_dataset(rng, episodes=60)
replay_buffer = ReplayBuffer(2, 1)
replay_buffer.convert_D4RL(dataset)
mean, std = replay_buffer.normalize_states()
print(f"dataset: {replay_buffer.size} transitions, state mean {np.round(mean, 3).tolist()}, "
      f"return {data_return:.3f}")

# the twin-critic target two ways, and the Polyak update against lerp
probe = TD3_BC(2, 1, 1.0)
state, action, next_state, reward, not_done = replay_buffer.sample(64)
with torch.no_grad():
    q1, q2 = probe.critic_target(next_state, action)
    min_err = (torch.min(q1, q2) - torch.where(q1 < q2, q1, q2)).abs().max().item()
    before = [p.detach().clone() for p in probe.critic_target.parameters()]
    for p in probe.critic.parameters():
        p.add_(torch.randn_like(p))
    for param, target_param in zip(probe.critic.parameters(), probe.critic_target.parameters()):
        target_param.data.copy_(probe.tau * param.data + (1 - probe.tau) * target_param.data)
    lerp_err = max((t - torch.lerp(b, p, probe.tau)).abs().max().item()
                   for b, p, t in zip(before, probe.critic.parameters(), probe.critic_target.parameters()))
check_err = max(min_err, lerp_err)
print(f"torch.min vs torch.where target {tuple(q1.shape)}: err {min_err:.2e}; Polyak copy_ vs lerp: err {lerp_err:.2e}")

ITERS, BATCH = 800, 64
results = {}
for name, use_q in (("bc", False), ("td3_bc", True)):
    torch.manual_seed(seed)
    np.random.seed(seed)
    policy = TD3_BC(2, 1, 1.0, use_q=use_q)
    for it in range(1, ITERS + 1):
        critic_loss, actor_loss = policy.train(replay_buffer, BATCH)
        if it % 400 == 0:
            ret = eval_policy(policy, mean, std, seed)
            print(f"{name} it {it} critic_loss {critic_loss:.4f} actor_loss {actor_loss:.4f} return {ret:.3f}")
    results[name] = eval_policy(policy, mean, std, seed)

print(f"returns: dataset {data_return:.3f}, bc {results['bc']:.3f}, td3_bc {results['td3_bc']:.3f}")
print(f"FINAL td3bc_return={results['td3_bc']:.4f} bc_return={results['bc']:.4f} data_return={data_return:.4f} "
      f"gain_over_data={results['td3_bc'] - data_return:.4f} check_err={check_err:.3e}")
