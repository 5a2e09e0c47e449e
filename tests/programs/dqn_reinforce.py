"""Deep Q-learning and REINFORCE on a small corridor world, in the style of the PyTorch RL tutorial.

DQN: a ``namedtuple`` replay memory sampled with ``random.sample``, batches built with
``torch.as_tensor``/``torch.from_numpy``/``torch.cat``, ``policy_net(s).gather(1, a.unsqueeze(1))``,
``target_net(s').max(1)[0].detach()`` with a done mask, ``target_net.load_state_dict(
policy_net.state_dict())``, ``F.smooth_l1_loss``, ``clip_grad_value_``, epsilon-greedy
``max(1)[1].view(1, 1)``. REINFORCE: ``Categorical(logits=...)``, ``sample()``, ``log_prob``,
``entropy()``, discounted returns normalised with ``(r - r.mean()) / (r.std() + eps)``,
``torch.stack(log_probs).sum()``.
"""

import math
import os
import random
from collections import deque, namedtuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.distributions import Categorical

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
random.seed(seed)
np_rng = np.random.RandomState(seed)


class Corridor:
    """Walk a corridor of N cells; reward 1 at the right end and 0.1 per cell of progress, a small
    cost per step; 3 actions (left, stay, right); the observation is a one-hot position plus a bias."""

    n = 6

    def reset(self):
        self.pos = 0
        self.steps = 0
        return self.obs()

    def obs(self):
        o = np.zeros(self.n + 1, dtype=np.float32)
        o[self.pos] = 1.0
        o[-1] = 1.0
        return o

    def step(self, action):
        previous = self.pos
        self.pos = min(max(self.pos + action - 1, 0), self.n - 1)
        self.steps += 1
        done = self.pos == self.n - 1 or self.steps >= 16
        reward = (1.0 if self.pos == self.n - 1 else -0.01) + 0.1 * (self.pos - previous)
        return self.obs(), reward, done


Transition = namedtuple("Transition", ("state", "action", "next_state", "reward", "done"))


class ReplayMemory:
    def __init__(self, capacity):
        self.memory = deque([], maxlen=capacity)

    def push(self, *args):
        self.memory.append(Transition(*args))

    def sample(self, batch_size):
        return random.sample(self.memory, batch_size)

    def __len__(self):
        return len(self.memory)


class DQN(nn.Module):
    def __init__(self, n_observations, n_actions):
        super().__init__()
        self.layer1 = nn.Linear(n_observations, 32)
        self.layer2 = nn.Linear(32, n_actions)

    def forward(self, x):
        return self.layer2(F.relu(self.layer1(x)))


env = Corridor()
n_obs, n_actions = env.n + 1, 3
BATCH_SIZE, GAMMA, EPS_START, EPS_END, EPS_DECAY, TAU = 32, 0.9, 0.9, 0.05, 200, 0.05
policy_net = DQN(n_obs, n_actions)
target_net = DQN(n_obs, n_actions)
target_net.load_state_dict(policy_net.state_dict())
optimizer = optim.AdamW(policy_net.parameters(), lr=3e-3, amsgrad=True)
memory = ReplayMemory(2000)
steps_done = 0


def select_action(state):
    global steps_done
    eps_threshold = EPS_END + (EPS_START - EPS_END) * math.exp(-1.0 * steps_done / EPS_DECAY)
    steps_done += 1
    if random.random() > eps_threshold:
        with torch.no_grad():
            return policy_net(state).max(1)[1].view(1, 1)
    return torch.tensor([[random.randrange(n_actions)]], dtype=torch.long)


def optimize_model():
    if len(memory) < BATCH_SIZE:
        return None
    transitions = memory.sample(BATCH_SIZE)
    batch = Transition(*zip(*transitions))
    state_batch = torch.cat(batch.state)
    action_batch = torch.cat(batch.action)
    reward_batch = torch.as_tensor(batch.reward, dtype=torch.float32)
    next_state_batch = torch.from_numpy(np.stack(batch.next_state))
    not_done = torch.as_tensor(np.array(batch.done) == 0)
    state_action_values = policy_net(state_batch).gather(1, action_batch)
    with torch.no_grad():
        next_state_values = target_net(next_state_batch).max(1)[0] * not_done
    expected_state_action_values = (next_state_values * GAMMA) + reward_batch
    loss = F.smooth_l1_loss(state_action_values, expected_state_action_values.unsqueeze(1))
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_value_(policy_net.parameters(), 100)
    optimizer.step()
    return loss.item()


episode_lengths = []
for i_episode in range(40):
    state = torch.tensor(env.reset(), dtype=torch.float32).unsqueeze(0)
    while True:
        action = select_action(state)
        observation, reward, done = env.step(action.item())
        memory.push(state, action, observation, reward, done)
        state = torch.from_numpy(observation).unsqueeze(0)
        loss = optimize_model()
        # soft update of the target network's weights: θ′ ← τ θ + (1 − τ) θ′
        target_net_state_dict = target_net.state_dict()
        policy_net_state_dict = policy_net.state_dict()
        for key in policy_net_state_dict:
            target_net_state_dict[key] = policy_net_state_dict[key] * TAU + target_net_state_dict[key] * (1 - TAU)
        target_net.load_state_dict(target_net_state_dict)
        if done:
            episode_lengths.append(env.steps)
            break
    if (i_episode + 1) % 20 == 0:
        print(f"DQN episode {i_episode + 1}: mean length of the last 20 {np.mean(episode_lengths[-20:]):.2f}, "
              f"loss {loss:.4f}")

with torch.no_grad():
    q_values = policy_net(torch.from_numpy(np.stack([env.reset()] + [np.eye(n_obs, dtype=np.float32)[k] + np.eye(
        n_obs, dtype=np.float32)[-1] for k in range(1, env.n - 1)])))
greedy_right = (q_values.argmax(dim=1) == 2).float().mean().item()
dqn_length = float(np.mean(episode_lengths[-20:]))
print(f"greedy policy moves right in {greedy_right:.3f} of the cells")


class Policy(nn.Module):
    def __init__(self):
        super().__init__()
        self.affine1 = nn.Linear(n_obs, 32)
        self.dropout = nn.Dropout(p=0.1)
        self.affine2 = nn.Linear(32, n_actions)
        self.saved_log_probs = []
        self.rewards = []

    def forward(self, x):
        x = F.relu(self.dropout(self.affine1(x)))
        return self.affine2(x)


policy = Policy()
optimizer = optim.Adam(policy.parameters(), lr=2e-2)
eps = np.finfo(np.float32).eps.item()
running_reward = 0.0
entropies = []
for i_episode in range(1, 46):
    state = env.reset()
    ep_reward = 0.0
    episode_entropy = []
    done = False
    while not done:
        logits = policy(torch.from_numpy(state).float().unsqueeze(0))
        m = Categorical(logits=logits)
        action = m.sample()
        policy.saved_log_probs.append(m.log_prob(action))
        episode_entropy.append(m.entropy())
        state, reward, done = env.step(action.item())
        policy.rewards.append(reward)
        ep_reward += reward
    running_reward = 0.05 * ep_reward + (1 - 0.05) * running_reward
    R = 0
    returns = deque()
    for r in policy.rewards[::-1]:
        R = r + 0.95 * R
        returns.appendleft(R)
    returns = torch.tensor(returns)
    returns = (returns - returns.mean()) / (returns.std() + eps) if len(returns) > 1 else returns * 0
    policy_loss = []
    for log_prob, R in zip(policy.saved_log_probs, returns):
        policy_loss.append(-log_prob * R)
    optimizer.zero_grad()
    entropy = torch.cat(episode_entropy).mean()
    loss = torch.stack(policy_loss).sum() - 0.01 * entropy
    loss.backward()
    optimizer.step()
    entropies.append(entropy.item())
    del policy.rewards[:]
    del policy.saved_log_probs[:]
    if i_episode % 15 == 0:
        print(f"REINFORCE episode {i_episode}\tlast length: {env.steps / 16:.3f} of the limit\t"
              f"running reward: {running_reward:.2f}")

policy.eval()
with torch.no_grad():
    probs = F.softmax(policy(torch.from_numpy(env.reset()).unsqueeze(0)), dim=-1)
print(f"FINAL dqn_length={dqn_length:.3f} greedy_right={greedy_right:.4f} "
      f"reinforce_reward={running_reward:.4f} p_right={probs[0, 2].item():.4f} entropy={np.mean(entropies[-20:]):.4f}")
