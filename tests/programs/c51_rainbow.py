"""Rainbow's distributional core as Kaixhin/Rainbow (``model.py``, ``agent.py``, ``memory.py``) and
Curt-Park's rainbow-is-all-you-need notebooks write it, on a 5x5 gridworld in NumPy (no gym):
``NoisyLinear`` with factorised Gaussian noise (``x.sign().mul_(x.abs().sqrt_())``,
``epsilon_out.ger(epsilon_in)`` copied into ``register_buffer`` epsilons, ``reset_noise``, the mean
weights alone in ``eval()``), dueling value and advantage streams ``v + a - a.mean(1, keepdim=True)``
into ``F.log_softmax(q, dim=2)``/``F.softmax``, the C51 support ``torch.linspace(Vmin, Vmax, atoms)``,
greedy actions by ``(net(s) * support).sum(2).argmax(1)``, double-Q targets read by
``pns[range(batch_size), argmax_indices_ns]``, n-step returns from a ``deque``, the categorical
projection (``clamp``, ``floor``/``ceil`` ``.to(torch.int64)``, the ``l[(u > 0) * (l == u)] -= 1`` fix,
``torch.linspace(0, (B - 1) * atoms, B).long().unsqueeze(1).expand(B, atoms)`` offsets and
``m.view(-1).index_add_`` — checked against a ``scatter_add_`` projection), the cross-entropy
``-torch.sum(m * log_ps_a, 1)`` weighted by prioritised replay's importance weights from a NumPy sum
tree, ``clip_grad_norm_``, ``Adam(eps=1.5e-4)`` and hard target updates by ``load_state_dict``. The
replay memory is first filled by uniformly random actions (``learn_start`` steps), then the noisy
weights alone explore.
"""
# ruff: noqa: UP008, UP039  (the repository's spelling: super(DQN, self), class Agent())

import math
import os
from collections import deque

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn, optim
from torch.nn.utils import clip_grad_norm_

seed = int(os.environ.get("PROGRAM_SEED", "0"))
np.random.seed(seed)
torch.manual_seed(seed)


class GridWorld:
    """5x5 grid seen as one-hot row and column, start on a random free cell, goal in the bottom-right corner (reward 1), a pit in the
    middle (reward -1, ends the episode), -0.02 a step; one move in ten slips to a random direction."""

    size = 5
    action_space = 4
    max_steps = 20
    moves = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]])

    def __init__(self, seed):
        self.rng = np.random.RandomState(seed)

    def _obs(self):
        # one-hot row beside one-hot column
        obs = np.zeros(2 * self.size, dtype=np.float32)
        obs[self.pos[0]] = 1.0
        obs[self.size + self.pos[1]] = 1.0
        return obs

    def reset(self):
        cell = self.rng.randint(self.size * self.size - 2)  # any cell but the pit (12) and the goal (24)
        cell += int(cell >= 12)
        self.pos = np.array([cell // self.size, cell % self.size])
        self.t = 0
        return self._obs()

    def step(self, action):
        if self.rng.rand() < 0.1:
            action = self.rng.randint(self.action_space)
        self.pos = np.clip(self.pos + self.moves[action], 0, self.size - 1)
        self.t += 1
        if self.pos[0] == self.size - 1 and self.pos[1] == self.size - 1:
            return self._obs(), 1.0, True
        if self.pos[0] == 2 and self.pos[1] == 2:
            return self._obs(), -1.0, True
        return self._obs(), -0.02, self.t >= self.max_steps


# ---- model.py ----
# Factorised NoisyLinear layer with bias
class NoisyLinear(nn.Module):
    def __init__(self, in_features, out_features, std_init=0.5):
        super(NoisyLinear, self).__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.std_init = std_init
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features))
        self.weight_sigma = nn.Parameter(torch.empty(out_features, in_features))
        self.register_buffer('weight_epsilon', torch.empty(out_features, in_features))
        self.bias_mu = nn.Parameter(torch.empty(out_features))
        self.bias_sigma = nn.Parameter(torch.empty(out_features))
        self.register_buffer('bias_epsilon', torch.empty(out_features))
        self.reset_parameters()
        self.reset_noise()

    def reset_parameters(self):
        mu_range = 1 / math.sqrt(self.in_features)
        self.weight_mu.data.uniform_(-mu_range, mu_range)
        self.weight_sigma.data.fill_(self.std_init / math.sqrt(self.in_features))
        self.bias_mu.data.uniform_(-mu_range, mu_range)
        self.bias_sigma.data.fill_(self.std_init / math.sqrt(self.out_features))

    def _scale_noise(self, size):
        x = torch.randn(size, device=self.weight_mu.device)
        return x.sign().mul_(x.abs().sqrt_())

    def reset_noise(self):
        epsilon_in = self._scale_noise(self.in_features)
        epsilon_out = self._scale_noise(self.out_features)
        self.weight_epsilon.copy_(epsilon_out.ger(epsilon_in))
        self.bias_epsilon.copy_(epsilon_out)

    def forward(self, input):
        if self.training:
            return F.linear(input, self.weight_mu + self.weight_sigma * self.weight_epsilon,
                            self.bias_mu + self.bias_sigma * self.bias_epsilon)
        else:
            return F.linear(input, self.weight_mu, self.bias_mu)


class DQN(nn.Module):
    def __init__(self, state_dim, action_space, atoms, hidden_size=64, noisy_std=0.5):
        super(DQN, self).__init__()
        self.atoms = atoms
        self.action_space = action_space
        self.feature = nn.Sequential(nn.Linear(state_dim, hidden_size), nn.ReLU())
        self.fc_h_v = NoisyLinear(hidden_size, hidden_size, std_init=noisy_std)
        self.fc_h_a = NoisyLinear(hidden_size, hidden_size, std_init=noisy_std)
        self.fc_z_v = NoisyLinear(hidden_size, self.atoms, std_init=noisy_std)
        self.fc_z_a = NoisyLinear(hidden_size, action_space * self.atoms, std_init=noisy_std)

    def forward(self, x, log=False):
        x = self.feature(x)
        v = self.fc_z_v(F.relu(self.fc_h_v(x)))  # Value stream
        a = self.fc_z_a(F.relu(self.fc_h_a(x)))  # Advantage stream
        v, a = v.view(-1, 1, self.atoms), a.view(-1, self.action_space, self.atoms)
        q = v + a - a.mean(1, keepdim=True)  # Combine streams
        if log:  # Use log softmax for numerical stability
            q = F.log_softmax(q, dim=2)  # Log probabilities with action over second dimension
        else:
            q = F.softmax(q, dim=2)  # Probabilities with action over second dimension
        return q

    def reset_noise(self):
        for name, module in self.named_children():
            if 'fc' in name:
                module.reset_noise()


# ---- memory.py ----
class SumTree:
    """Binary sum tree over a power-of-two capacity: leaves hold priorities, each node the sum of
    its children, so a prefix-sum search finds a leaf in O(log n)."""

    def __init__(self, capacity):
        self.capacity = 1 << (capacity - 1).bit_length()
        self.tree = np.zeros(2 * self.capacity)
        self.max = 1.0

    def update(self, index, value):
        i = index + self.capacity
        self.tree[i] = value
        i //= 2
        while i >= 1:
            self.tree[i] = self.tree[2 * i] + self.tree[2 * i + 1]
            i //= 2
        self.max = max(value, self.max)

    def find(self, value):
        i = 1
        while i < self.capacity:
            left = 2 * i
            if value <= self.tree[left]:
                i = left
            else:
                value -= self.tree[left]
                i = left + 1
        return i - self.capacity

    def total(self):
        return self.tree[1]


class PrioritizedReplayMemory:
    def __init__(self, capacity, state_dim, n, discount, priority_exponent):
        self.capacity = capacity
        self.n = n
        self.discount = discount
        self.priority_exponent = priority_exponent
        self.states = np.zeros((capacity, state_dim), dtype=np.float32)
        self.next_states = np.zeros((capacity, state_dim), dtype=np.float32)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.returns = np.zeros(capacity, dtype=np.float32)
        self.nonterminals = np.zeros(capacity, dtype=np.float32)
        self.tree = SumTree(capacity)
        self.index = 0
        self.size = 0
        self.n_step_buffer = deque(maxlen=n)

    def _store(self, state, action, ret, next_state, nonterminal):
        self.states[self.index] = state
        self.actions[self.index] = action
        self.returns[self.index] = ret
        self.next_states[self.index] = next_state
        self.nonterminals[self.index] = nonterminal
        self.tree.update(self.index, self.tree.max)  # new transitions get the maximum priority
        self.index = (self.index + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def _n_step(self):
        # R^(n) = sum_k gamma^k r_t+k, cut at the first terminal step
        ret, next_state, nonterminal = 0.0, self.n_step_buffer[-1][3], 1.0
        for k, (_, _, reward, s_next, done) in enumerate(self.n_step_buffer):
            ret += (self.discount ** k) * reward
            if done:
                next_state, nonterminal = s_next, 0.0
                break
        state, action = self.n_step_buffer[0][:2]
        return state, action, ret, next_state, nonterminal

    def append(self, state, action, reward, next_state, done):
        self.n_step_buffer.append((state, action, reward, next_state, done))
        if len(self.n_step_buffer) == self.n:
            self._store(*self._n_step())
        if done:  # flush the shorter returns of the episode's last steps
            while len(self.n_step_buffer) > 1:
                self.n_step_buffer.popleft()
                self._store(*self._n_step())
            self.n_step_buffer.clear()

    def sample(self, batch_size, priority_weight):
        p_total = self.tree.total()
        segment = p_total / batch_size  # stratified: one sample from each equal slice of the mass
        samples = np.random.uniform(0.0, segment, size=batch_size) + np.arange(batch_size) * segment
        idxs = np.array([self.tree.find(s) for s in samples])
        idxs = np.minimum(idxs, self.size - 1)
        probs = self.tree.tree[idxs + self.tree.capacity] / p_total
        weights = (self.size * probs) ** -priority_weight  # importance-sampling weights
        weights = torch.tensor(weights / weights.max(), dtype=torch.float32)
        states = torch.from_numpy(self.states[idxs])
        actions = torch.from_numpy(self.actions[idxs])
        returns = torch.from_numpy(self.returns[idxs])
        next_states = torch.from_numpy(self.next_states[idxs])
        nonterminals = torch.from_numpy(self.nonterminals[idxs]).unsqueeze(1)
        return idxs, states, actions, returns, next_states, nonterminals, weights

    def update_priorities(self, idxs, priorities):
        priorities = np.power(priorities, self.priority_exponent)
        for idx, priority in zip(idxs, priorities):
            self.tree.update(int(idx), float(priority))


# ---- agent.py ----
class Agent():
    def __init__(self, state_dim, action_space, atoms=21, V_min=-1.5, V_max=1.5, n=3, discount=0.9,
                 batch_size=32, lr=2e-3, adam_eps=1.5e-4, norm_clip=10):
        self.action_space = action_space
        self.atoms = atoms
        self.Vmin = V_min
        self.Vmax = V_max
        self.support = torch.linspace(V_min, V_max, self.atoms)  # Support (range) of z
        self.delta_z = (V_max - V_min) / (self.atoms - 1)
        self.batch_size = batch_size
        self.n = n
        self.discount = discount
        self.norm_clip = norm_clip

        self.online_net = DQN(state_dim, action_space, atoms)
        self.online_net.train()
        self.target_net = DQN(state_dim, action_space, atoms)
        self.update_target_net()
        self.target_net.train()
        for param in self.target_net.parameters():
            param.requires_grad = False
        self.optimiser = optim.Adam(self.online_net.parameters(), lr=lr, eps=adam_eps)

    # Resets noisy weights in all linear layers (of online net only)
    def reset_noise(self):
        self.online_net.reset_noise()

    # Acts based on single state (no batch)
    def act(self, state):
        with torch.no_grad():
            return (self.online_net(state.unsqueeze(0)) * self.support).sum(2).argmax(1).item()

    def project(self, returns, nonterminals, pns_a):
        # Compute Tz (Bellman operator T applied to z)
        Tz = returns.unsqueeze(1) + nonterminals * (self.discount ** self.n) * self.support.unsqueeze(0)
        Tz = Tz.clamp(min=self.Vmin, max=self.Vmax)  # Clamp between supported values
        # Compute L2 projection of Tz onto fixed support z
        b = (Tz - self.Vmin) / self.delta_z  # b = (Tz - Vmin) / Δz
        l, u = b.floor().to(torch.int64), b.ceil().to(torch.int64)
        # Fix disappearing probability mass when l = b = u (b is int)
        l[(u > 0) * (l == u)] -= 1
        u[(l < (self.atoms - 1)) * (l == u)] += 1
        return b, l, u

    def learn(self, mem, priority_weight):
        idxs, states, actions, returns, next_states, nonterminals, weights = mem.sample(
            self.batch_size, priority_weight)

        # Calculate current state probabilities (online network noise already sampled)
        log_ps = self.online_net(states, log=True)  # Log probabilities log p(s_t, ·; θonline)
        log_ps_a = log_ps[range(self.batch_size), actions]  # log p(s_t, a_t; θonline)

        with torch.no_grad():
            # Calculate nth next state probabilities
            pns = self.online_net(next_states)  # Probabilities p(s_t+n, ·; θonline)
            dns = self.support.expand_as(pns) * pns  # Distribution d_t+n = (z, p(s_t+n, ·; θonline))
            argmax_indices_ns = dns.sum(2).argmax(1)  # argmax_a[(z, p(s_t+n, a; θonline))]
            self.target_net.reset_noise()  # Sample new target net noise
            pns = self.target_net(next_states)  # Probabilities p(s_t+n, ·; θtarget)
            # Double-Q probabilities p(s_t+n, argmax_a[(z, p(s_t+n, a; θonline))]; θtarget)
            pns_a = pns[range(self.batch_size), argmax_indices_ns]

            b, l, u = self.project(returns, nonterminals, pns_a)

            # Distribute probability of Tz
            m = states.new_zeros(self.batch_size, self.atoms)
            offset = torch.linspace(0, ((self.batch_size - 1) * self.atoms), self.batch_size).long() \
                .unsqueeze(1).expand(self.batch_size, self.atoms).to(actions)
            m.view(-1).index_add_(0, (l + offset).view(-1), (pns_a * (u.float() - b)).view(-1))  # m_l += p(u - b)
            m.view(-1).index_add_(0, (u + offset).view(-1), (pns_a * (b - l.float())).view(-1))  # m_u += p(b - l)

            # the same projection by scatter_add_ along the atoms
            m2 = torch.zeros_like(pns_a)
            m2.scatter_add_(1, l, pns_a * (u.float() - b))
            m2.scatter_add_(1, u, pns_a * (b - l.float()))

        loss = -torch.sum(m * log_ps_a, 1)  # Cross-entropy loss (minimises DKL(m||p(s_t, a_t)))
        self.online_net.zero_grad()
        (weights * loss).mean().backward()  # Backpropagate importance-weighted minibatch loss
        grad_norm = clip_grad_norm_(self.online_net.parameters(), self.norm_clip)  # Clip gradients by L2 norm
        self.optimiser.step()

        mem.update_priorities(idxs, loss.detach().cpu().numpy())  # Update priorities of sampled transitions
        return loss.mean().item(), float((m - m2).abs().max()), float(m.sum(1).sub(1).abs().max()), grad_norm.item()

    def update_target_net(self):
        self.target_net.load_state_dict(self.online_net.state_dict())

    def train(self):
        self.online_net.train()

    def eval(self):
        self.online_net.eval()


def evaluate(agent, seed, episodes=10):
    env = GridWorld(seed + 100)
    agent.eval()
    rewards, successes = [], 0
    for _ in range(episodes):
        state, done, total = env.reset(), False, 0.0
        while not done:
            state, reward, done = env.step(agent.act(torch.from_numpy(state)))
            total += reward
        rewards.append(total)
        successes += int(reward == 1.0)
    agent.train()
    return float(np.mean(rewards)), successes / episodes


T_max = 1500
learn_start = 200
replay_frequency = 1
target_update = 100
priority_exponent = 0.5
priority_weight = 0.4
priority_weight_increase = (1 - priority_weight) / (T_max - learn_start)

env = GridWorld(seed)
state_dim = 2 * GridWorld.size
agent = Agent(state_dim, GridWorld.action_space)
mem = PrioritizedReplayMemory(2048, state_dim, agent.n, agent.discount, priority_exponent)

n_params = sum(p.numel() for p in agent.online_net.parameters())
n_buffers = sum(b.numel() for b in agent.online_net.buffers())
print(f"parameters {n_params} noise buffers {n_buffers} support {agent.support[0].item():.1f}.."
      f"{agent.support[-1].item():.1f} delta_z {agent.delta_z:.3f}")
first_reward, first_success = evaluate(agent, seed)
print(f"untrained eval reward {first_reward:.3f} success {first_success:.2f}")

losses, proj_gaps, mass_gaps, grad_norms, episode_rewards = [], [], [], [], []
state, done, ep_reward = env.reset(), False, 0.0
for T in range(1, T_max + 1):
    if T % replay_frequency == 0:
        agent.reset_noise()  # Draw a new set of noisy weights

    if T < learn_start:  # warm-up: uniformly random actions fill the replay memory
        action = np.random.randint(GridWorld.action_space)
    else:
        action = agent.act(torch.from_numpy(state))  # Choose an action greedily (with noisy weights)
    next_state, reward, done = env.step(action)
    mem.append(state, action, reward, next_state, done)
    ep_reward += reward
    state = next_state
    if done:
        episode_rewards.append(ep_reward)
        state, done, ep_reward = env.reset(), False, 0.0

    if T >= learn_start:
        priority_weight = min(priority_weight + priority_weight_increase, 1)  # Anneal importance sampling weight β to 1
        if T % replay_frequency == 0:
            loss, proj_gap, mass_gap, grad_norm = agent.learn(mem, priority_weight)
            losses.append(loss)
            proj_gaps.append(proj_gap)
            mass_gaps.append(mass_gap)
            grad_norms.append(grad_norm)
        if T % target_update == 0:
            agent.update_target_net()

    if T % 500 == 0:
        eval_reward, eval_success = evaluate(agent, seed)
        print(f"T = {T} / {T_max} | episodes {len(episode_rewards)} | replay {mem.size} | "
              f"loss {np.mean(losses[-100:]):.4f} | avg. reward {np.mean(episode_rewards[-20:]):.3f} | "
              f"eval reward {eval_reward:.3f} success {eval_success:.2f} | beta {priority_weight:.3f}")

# the eval-mode net ignores its noise; the train-mode one draws it from the buffers
probe = torch.eye(state_dim)[:8]
agent.online_net.eval()
with torch.no_grad():
    q_eval_a = (agent.online_net(probe) * agent.support).sum(2)
    agent.reset_noise()
    q_eval_b = (agent.online_net(probe) * agent.support).sum(2)
agent.online_net.train()
with torch.no_grad():
    q_noisy = (agent.online_net(probe) * agent.support).sum(2)
noise_free = int(torch.equal(q_eval_a, q_eval_b))
noise_effect = float((q_noisy - q_eval_a).abs().mean())
sigma_mean = float(agent.online_net.fc_z_a.weight_sigma.abs().mean())
print(f"eval mode noise-free {noise_free} noise effect {noise_effect:.4f} sigma {sigma_mean:.4f} "
      f"tree total {mem.tree.total():.3f}")

final_reward, final_success = evaluate(agent, seed, episodes=20)
print(f"FINAL first_reward={first_reward:.4f} final_reward={final_reward:.4f} success={final_success:.4f} "
      f"loss={np.mean(losses[-100:]):.4f} proj_gap={max(proj_gaps):.6f} mass_gap={max(mass_gaps):.6f} "
      f"sigma={sigma_mean:.4f} noise_free={noise_free}")
