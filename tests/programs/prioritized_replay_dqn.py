"""Prioritized experience replay (Schaul et al. 2016) for a double DQN, as the PyTorch PER agents on
GitHub write it (rlcode's ``SumTree``, higgsfield's RL-Adventure ``NaivePrioritizedBuffer``), on the
paper's own motivating task, a Blind Cliffwalk written in NumPy.

A proportional buffer keeps ``priority ** alpha`` in a binary sum-tree (an array of ``2 * capacity - 1``
node sums, ``update`` walking to the root, ``get`` descending by prefix sum) and samples one value per
equal segment of the total; the tree's draws are checked against ``torch.multinomial`` on the same
``priorities ** alpha`` and against ``torch.searchsorted`` over their ``torch.cumsum``. Importance
sampling weights ``(N * P(i)) ** -beta`` with beta annealed from 0.4 to 1, normalised by their max;
the loss ``(weights * F.smooth_l1_loss(q, target, reduction='none')).mean()``, whose per-sample terms
(plus a small epsilon) become the new priorities; double-DQN targets by
``online(next).argmax(dim=1, keepdim=True)`` and ``target(next).gather(1, ...)``; a hard target
update every few steps by ``target_net.load_state_dict(policy_net.state_dict())``. The same agent
with uniform replay is the baseline; both report the average return.

The Blind Cliffwalk: states 0..n-1 in a row, two actions; in each state one (random, fixed) action
moves on, the other falls off the cliff and ends the episode with no reward; reaching the end pays
1. A random walk sees the reward with probability 2^-n, so the rare rewarding transitions are what
prioritised replay should replay; learning starts once random play has stored the reward twice.
"""

import os
import random

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
random.seed(seed)
np.random.seed(seed)


class BlindCliffwalk:
    def __init__(self, n):
        self.n = n
        self.right_action = np.random.randint(0, 2, size=n)

    def reset(self):
        self.pos = 0
        return self.obs()

    def obs(self):
        o = np.zeros(self.n + 1, dtype=np.float32)
        o[self.pos] = 1.0
        return o

    def step(self, action):
        if action != self.right_action[self.pos]:
            return self.obs(), 0.0, True
        self.pos += 1
        if self.pos == self.n:
            return self.obs(), 1.0, True
        return self.obs(), 0.0, False


class SumTree:
    """Leaves hold priorities; each inner node the sum of its children, the root the total."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.tree = np.zeros(2 * capacity - 1)
        self.write = 0

    def _propagate(self, idx, change):
        parent = (idx - 1) // 2
        self.tree[parent] += change
        if parent != 0:
            self._propagate(parent, change)

    def _retrieve(self, idx, s):
        left, right = 2 * idx + 1, 2 * idx + 2
        if left >= len(self.tree):
            return idx
        if s <= self.tree[left]:
            return self._retrieve(left, s)
        return self._retrieve(right, s - self.tree[left])

    def total(self):
        return self.tree[0]

    def update(self, idx, p):
        change = p - self.tree[idx]
        self.tree[idx] = p
        self._propagate(idx, change)

    def get(self, s):
        idx = self._retrieve(0, s)
        return idx, idx - self.capacity + 1

    def leaves(self):
        return self.tree[self.capacity - 1:]


class ReplayBuffer:
    def __init__(self, capacity):
        self.capacity, self.data, self.pos = capacity, [], 0

    def push(self, *transition):
        if len(self.data) < self.capacity:
            self.data.append(transition)
        else:
            self.data[self.pos] = transition
        self.pos = (self.pos + 1) % self.capacity

    def batch(self, indices):
        s, a, r, s2, d = zip(*[self.data[i] for i in indices])
        return (torch.from_numpy(np.stack(s)), torch.tensor(a).unsqueeze(1), torch.tensor(r, dtype=torch.float32),
                torch.from_numpy(np.stack(s2)), torch.tensor(d, dtype=torch.float32))

    def sample(self, batch_size, beta):
        indices = [random.randrange(len(self.data)) for _ in range(batch_size)]
        return self.batch(indices), indices, torch.ones(batch_size)

    def update_priorities(self, indices, priorities):
        pass

    def __len__(self):
        return len(self.data)


class PrioritizedReplayBuffer(ReplayBuffer):
    def __init__(self, capacity, alpha=0.6, eps=1e-2):
        super().__init__(capacity)
        self.tree = SumTree(capacity)
        self.alpha, self.eps, self.max_priority = alpha, eps, 1.0

    def push(self, *transition):
        # a new transition gets the largest priority seen so far, so it is replayed at least once
        self.tree.update(self.pos + self.capacity - 1, self.max_priority ** self.alpha)
        super().push(*transition)

    def sample(self, batch_size, beta):
        segment = self.tree.total() / batch_size
        indices, priorities = [], []
        for i in range(batch_size):
            s = random.uniform(segment * i, segment * (i + 1))
            tree_idx, data_idx = self.tree.get(s)
            indices.append(min(data_idx, len(self.data) - 1))
            priorities.append(self.tree.tree[tree_idx])
        probs = torch.tensor(priorities, dtype=torch.float32) / self.tree.total()
        weights = (len(self.data) * probs) ** (-beta)
        weights = weights / weights.max()
        return self.batch(indices), indices, weights

    def update_priorities(self, indices, priorities):
        for idx, priority in zip(indices, priorities.tolist()):
            priority += self.eps
            self.max_priority = max(self.max_priority, priority)
            self.tree.update(idx + self.capacity - 1, priority ** self.alpha)


def q_network(n_in, n_actions):
    return nn.Sequential(nn.Linear(n_in, 32), nn.ReLU(), nn.Linear(32, n_actions))


def check_sampler():
    tree = SumTree(16)
    priorities = torch.rand(16) * torch.tensor([5.0] + [1.0] * 15)
    alpha = 0.6
    for i, p in enumerate(priorities.pow(alpha).tolist()):
        tree.update(i + tree.capacity - 1, p)
    probs = priorities.pow(alpha) / priorities.pow(alpha).sum()
    draws = 4000
    tree_counts = torch.zeros(16)
    for _ in range(draws):
        tree_counts[tree.get(random.uniform(0, tree.total()))[1]] += 1
    multinomial_counts = torch.bincount(torch.multinomial(probs, draws, replacement=True), minlength=16).float()
    u = torch.rand(draws) * probs.sum()
    searchsorted_counts = torch.bincount(torch.searchsorted(torch.cumsum(probs, 0), u).clamp(max=15), minlength=16)
    tv = lambda counts: 0.5 * (counts / draws - probs).abs().sum().item()
    print(f"sum-tree total {tree.total():.4f} vs {priorities.pow(alpha).sum().item():.4f} "
          f"leaves equal {np.allclose(tree.leaves(), priorities.pow(alpha).numpy())}")
    print(f"total variation to p^alpha: sum-tree {tv(tree_counts):.3f} multinomial {tv(multinomial_counts):.3f} "
          f"searchsorted {tv(searchsorted_counts.float()):.3f}")


def greedy_return(net, env):
    state, done, ret = env.reset(), False, 0.0
    while not done:
        with torch.no_grad():
            action = net(torch.from_numpy(state).unsqueeze(0)).argmax(dim=1).item()
        state, reward, done = env.step(action)
        ret += reward
    return ret


def train(prioritized, env, episodes=160, batch_size=16, gamma=0.99, target_every=25,
          beta_start=0.4, beta_frames=600):
    n_in = env.n + 1
    policy_net, target_net = q_network(n_in, 2), q_network(n_in, 2)
    target_net.load_state_dict(policy_net.state_dict())
    optimizer = torch.optim.Adam(policy_net.parameters(), lr=2e-3)
    memory = PrioritizedReplayBuffer(1024) if prioritized else ReplayBuffer(1024)
    frame, returns, solved_at, weight_min = 0, [], -1, 1.0
    # learning starts once random play has put the rare reward into the memory twice
    warmup_rewards = 0
    while warmup_rewards < 2:
        state, done = env.reset(), False
        while not done:
            action = random.randrange(2)
            next_state, reward, done = env.step(action)
            memory.push(state, action, reward, next_state, float(done))
            state, warmup_rewards = next_state, warmup_rewards + int(reward > 0)
    warmup = len(memory)
    for episode in range(episodes):
        eps = max(0.05, 0.5 - episode / 100)
        state, done, ret = env.reset(), False, 0.0
        while not done:
            if random.random() < eps:
                action = random.randrange(2)
            else:
                with torch.no_grad():
                    action = policy_net(torch.from_numpy(state).unsqueeze(0)).argmax(dim=1).item()
            next_state, reward, done = env.step(action)
            memory.push(state, action, reward, next_state, float(done))
            state, ret, frame = next_state, ret + reward, frame + 1
            if len(memory) < batch_size:
                continue
            beta = min(1.0, beta_start + frame * (1.0 - beta_start) / beta_frames)
            (s, a, r, s2, d), indices, weights = memory.sample(batch_size, beta)
            q = policy_net(s).gather(1, a).squeeze(1)
            with torch.no_grad():
                next_actions = policy_net(s2).argmax(dim=1, keepdim=True)
                next_q = target_net(s2).gather(1, next_actions).squeeze(1)
                target = r + gamma * (1 - d) * next_q
            elementwise = F.smooth_l1_loss(q, target, reduction="none")
            loss = (weights * elementwise).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            memory.update_priorities(indices, elementwise.detach())
            weight_min = min(weight_min, weights.min().item())
            if frame % target_every == 0:
                target_net.load_state_dict(policy_net.state_dict())
        returns.append(ret)
        if solved_at < 0 and greedy_return(policy_net, env) == 1.0:
            solved_at = episode
    name = "prioritized" if prioritized else "uniform"
    print(f"[{name}] warm-up transitions {warmup} frames {frame} beta {beta:.2f} min IS weight {weight_min:.3f} "
          f"average return {np.mean(returns):.3f} last 100 {np.mean(returns[-100:]):.3f}")
    return float(np.mean(returns)), float(np.mean(returns[-100:])), greedy_return(policy_net, env), solved_at


check_sampler()
env = BlindCliffwalk(6)
print("cliffwalk length", env.n, "random success probability", 0.5 ** env.n)
results = {}
for prioritized in (True, False):
    torch.manual_seed(seed + 1)
    random.seed(seed + 1)
    results[prioritized] = train(prioritized, env)
    mean_return, last_100, greedy, solved_at = results[prioritized]
    print(f"{'prioritized' if prioritized else 'uniform'}: greedy return {greedy:.1f} "
          f"first greedy success at episode {solved_at}")
print(f"FINAL per_return={results[True][0]:.4f} uniform_return={results[False][0]:.4f} "
      f"per_last100={results[True][1]:.4f} uniform_last100={results[False][1]:.4f} "
      f"per_greedy={results[True][2]:.1f} uniform_greedy={results[False][2]:.1f}")
