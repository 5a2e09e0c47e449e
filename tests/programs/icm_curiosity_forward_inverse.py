"""Curiosity-driven exploration by self-supervised prediction (Pathak et al., ICML 2017) as
pathak22/noreward-rl's ``ICM`` and its PyTorch ports write it, with a synchronous A2C learner on a
vectorised NumPy gridworld whose only reward sits in the far corner.

The Intrinsic Curiosity Module: a feature encoder ``phi`` (``nn.Linear`` + ``nn.ELU`` as the ports'
conv stack at this size), an inverse model ``(phi(s), phi(s')) -> action logits`` trained with
``F.cross_entropy``, and a forward model ``(phi(s), one_hot(a)) -> phi(s')`` whose error
``0.5 * (pred - phi_next.detach()).pow(2).sum(dim=1)`` is both its loss and, scaled by ``eta`` and
detached, the intrinsic reward; the module's loss is ``(1 - beta) * inverse + beta * forward``.
The policy: an actor-critic MLP with ``Categorical(logits=...)``, n-step returns over a rollout of
``torch.zeros(num_steps + 1, num_envs)`` buffers with ``masks`` cut at episode ends, ``value_loss *
0.5 + action_loss - entropy * 0.01``, one Adam over the policy and the ICM together,
``clip_grad_norm_``.

The world: ``NUM_ENVS`` agents in a ``SIZE x SIZE`` grid starting at the corner (0, 0), observations
the one-hot row concatenated with the one-hot column, four moves (walls stop), reward 1 only at the
opposite corner, episodes cut after ``MAX_STEPS`` and reset in place.

Checked: the intrinsic reward of the repeated first transition (start, move right) decays as the
forward model learns it, the inverse model's accuracy on the rollouts rises from chance, and the
number of distinct cells visited with ICM exceeds that of the same A2C without it.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Categorical

seed = int(os.environ.get("PROGRAM_SEED", "0"))
np.random.seed(seed)
torch.manual_seed(seed)

SIZE, MAX_STEPS, NUM_ENVS, NUM_STEPS, NUM_UPDATES = 16, 24, 8, 8, 120
OBS_DIM, NUM_ACTIONS, FEATURE_DIM = 2 * SIZE, 4, 32
GAMMA, ENTROPY_COEF, VALUE_COEF = 0.95, 0.01, 0.5
ETA, BETA, ICM_COEF = 1.0, 0.2, 1.0
MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]])  # up, down, left, right


class VecGridWorld:
    def __init__(self, num_envs):
        self.num_envs = num_envs
        self.pos = np.zeros((num_envs, 2), dtype=np.int64)
        self.steps = np.zeros(num_envs, dtype=np.int64)

    def observe(self):
        obs = np.zeros((self.num_envs, OBS_DIM), dtype=np.float32)
        obs[np.arange(self.num_envs), self.pos[:, 0]] = 1.0
        obs[np.arange(self.num_envs), SIZE + self.pos[:, 1]] = 1.0
        return obs

    def reset(self):
        self.pos[:] = 0
        self.steps[:] = 0
        return self.observe()

    def step(self, actions):
        self.pos = np.clip(self.pos + MOVES[actions], 0, SIZE - 1)
        self.steps += 1
        at_goal = (self.pos == SIZE - 1).all(axis=1)
        reward = at_goal.astype(np.float32)
        done = at_goal | (self.steps >= MAX_STEPS)
        next_obs = self.observe()  # the true next state, before any reset
        visited = self.pos.copy()
        self.pos[done] = 0
        self.steps[done] = 0
        return self.observe(), next_obs, reward, done, visited


class ActorCritic(nn.Module):
    def __init__(self):
        super().__init__()
        self.base = nn.Sequential(nn.Linear(OBS_DIM, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh())
        self.actor = nn.Linear(64, NUM_ACTIONS)
        self.critic = nn.Linear(64, 1)

    def forward(self, obs):
        hidden = self.base(obs)
        return self.actor(hidden), self.critic(hidden).squeeze(-1)


class ICM(nn.Module):
    def __init__(self):
        super().__init__()
        self.phi = nn.Sequential(nn.Linear(OBS_DIM, FEATURE_DIM), nn.ELU(), nn.Linear(FEATURE_DIM, FEATURE_DIM))
        self.inverse_model = nn.Sequential(nn.Linear(2 * FEATURE_DIM, 64), nn.ReLU(), nn.Linear(64, NUM_ACTIONS))
        self.forward_model = nn.Sequential(nn.Linear(FEATURE_DIM + NUM_ACTIONS, 64), nn.ReLU(),
                                           nn.Linear(64, FEATURE_DIM))

    def forward(self, state, next_state, action):
        phi, phi_next = self.phi(state), self.phi(next_state)
        action_logits = self.inverse_model(torch.cat([phi, phi_next], dim=1))
        action_onehot = F.one_hot(action, NUM_ACTIONS).float()
        pred_phi_next = self.forward_model(torch.cat([phi, action_onehot], dim=1))
        forward_error = 0.5 * (pred_phi_next - phi_next.detach()).pow(2).sum(dim=1)
        return action_logits, forward_error

    def intrinsic_reward(self, state, next_state, action):
        with torch.no_grad():
            _, forward_error = self(state, next_state, action)
        return ETA * forward_error

    def relative_forward_error(self, state, next_state, action):
        """The forward error over the size of the features it predicts (phi's scale drifts as the
        inverse model trains it)."""
        with torch.no_grad():
            _, forward_error = self(state, next_state, action)
            return forward_error / (0.5 * self.phi(next_state).pow(2).sum(dim=1))


def train(use_icm, label):
    torch.manual_seed(seed + 1)
    envs = VecGridWorld(NUM_ENVS)
    policy = ActorCritic()
    icm = ICM()
    params = list(policy.parameters()) + (list(icm.parameters()) if use_icm else [])
    optimizer = torch.optim.Adam(params, lr=7e-3)
    start = torch.from_numpy(VecGridWorld(1).reset())
    first_step = torch.from_numpy(VecGridWorld(1).reset())
    first_step[0, SIZE + 0], first_step[0, SIZE + 1] = 0.0, 1.0
    move_right = torch.tensor([3])
    repeated_rewards, repeated_relative, inverse_acc, goals = [], [], [], 0
    visited = np.zeros((SIZE, SIZE), dtype=bool)
    visited[0, 0] = True
    obs = torch.from_numpy(envs.reset())
    for update in range(NUM_UPDATES):
        observations = torch.zeros(NUM_STEPS + 1, NUM_ENVS, OBS_DIM)
        next_observations = torch.zeros(NUM_STEPS, NUM_ENVS, OBS_DIM)
        actions = torch.zeros(NUM_STEPS, NUM_ENVS, dtype=torch.long)
        rewards = torch.zeros(NUM_STEPS, NUM_ENVS)
        masks = torch.ones(NUM_STEPS + 1, NUM_ENVS)
        observations[0] = obs
        for step in range(NUM_STEPS):
            with torch.no_grad():
                logits, _ = policy(observations[step])
            action = Categorical(logits=logits).sample()
            obs_np, next_np, reward, done, cells = envs.step(action.numpy())
            visited[cells[:, 0], cells[:, 1]] = True
            goals += int(reward.sum())
            observations[step + 1] = torch.from_numpy(obs_np)
            next_observations[step] = torch.from_numpy(next_np)
            actions[step] = action
            rewards[step] = torch.from_numpy(reward)
            masks[step + 1] = torch.FloatTensor([0.0 if d else 1.0 for d in done])
        obs = observations[-1]

        flat_obs = observations[:-1].reshape(-1, OBS_DIM)
        flat_next = next_observations.reshape(-1, OBS_DIM)
        flat_actions = actions.reshape(-1)
        if use_icm:
            intrinsic = icm.intrinsic_reward(flat_obs, flat_next, flat_actions).view(NUM_STEPS, NUM_ENVS)
            total_rewards = rewards + intrinsic
        else:
            total_rewards = rewards
        logits, values = policy(observations.reshape(-1, OBS_DIM))
        logits = logits.view(NUM_STEPS + 1, NUM_ENVS, NUM_ACTIONS)[:-1]
        values = values.view(NUM_STEPS + 1, NUM_ENVS)
        returns = torch.zeros(NUM_STEPS + 1, NUM_ENVS)
        returns[-1] = values[-1].detach()
        for step in reversed(range(NUM_STEPS)):
            returns[step] = total_rewards[step] + GAMMA * returns[step + 1] * masks[step + 1]
        advantages = returns[:-1] - values[:-1]
        dist = Categorical(logits=logits)
        action_loss = -(advantages.detach() * dist.log_prob(actions)).mean()
        value_loss = advantages.pow(2).mean()
        entropy = dist.entropy().mean()
        loss = value_loss * VALUE_COEF + action_loss - entropy * ENTROPY_COEF

        action_logits, forward_error = icm(flat_obs, flat_next, flat_actions)
        inverse_loss = F.cross_entropy(action_logits, flat_actions)
        forward_loss = forward_error.mean()
        if use_icm:
            loss = loss + ICM_COEF * ((1 - BETA) * inverse_loss + BETA * forward_loss)
        inverse_acc.append((action_logits.argmax(dim=1) == flat_actions).float().mean().item())
        repeated_rewards.append(icm.intrinsic_reward(start, first_step, move_right).item())
        repeated_relative.append(icm.relative_forward_error(start, first_step, move_right).item())

        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 0.5)
        optimizer.step()
        if (update + 1) % 50 == 0:
            print(f"[{label}] update {update + 1} loss {loss.item():.4f} entropy {entropy.item():.4f} "
                  f"inverse loss {inverse_loss.item():.4f} forward loss {forward_loss.item():.4f} "
                  f"visited {int(visited.sum())} goals {goals}")
    return {
        "visited": int(visited.sum()), "goals": goals,
        "repeated_first": float(np.mean(repeated_rewards[:5])), "repeated_last": float(np.mean(repeated_rewards[-5:])),
        "relative_first": float(np.mean(repeated_relative[:5])), "relative_last": float(np.mean(repeated_relative[-5:])),
        "inverse_first": float(np.mean(inverse_acc[:10])), "inverse_last": float(np.mean(inverse_acc[-10:])),
    }


icm_run = train(True, "a2c+icm")
plain_run = train(False, "a2c")
print(f"repeated transition intrinsic reward {icm_run['repeated_first']:.4f} -> {icm_run['repeated_last']:.4f}, "
      f"relative forward error {icm_run['relative_first']:.4f} -> {icm_run['relative_last']:.4f}")
print(f"inverse model accuracy {icm_run['inverse_first']:.3f} -> {icm_run['inverse_last']:.3f} (chance 0.25)")
print(f"cells visited: icm {icm_run['visited']} plain {plain_run['visited']} of {SIZE * SIZE}")
print(f"FINAL icm_visited={icm_run['visited']} plain_visited={plain_run['visited']} "
      f"visited_gain={icm_run['visited'] - plain_run['visited']} "
      f"repeated_ratio={icm_run['repeated_last'] / icm_run['repeated_first']:.4f} "
      f"relative_ratio={icm_run['relative_last'] / icm_run['relative_first']:.4f} "
      f"inverse_first={icm_run['inverse_first']:.4f} inverse_last={icm_run['inverse_last']:.4f} "
      f"icm_goals={icm_run['goals']}")
