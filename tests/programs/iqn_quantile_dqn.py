"""Implicit Quantile Networks (Dabney et al. 2018), written as the PyTorch IQN agents on GitHub write
them (e.g. BY571/IQN-and-Extensions): quantile fractions ``tau = torch.rand(batch, n_tau,
generator=g)``, the cosine embedding ``torch.cos(math.pi * i * tau)`` with ``i = torch.arange(1,
n_cos + 1)``, ``cos_embedding`` + ReLU multiplied (Hadamard) into the state features, quantiles
``(batch, n_tau, actions)``; the double-DQN target (online net's ``argmax`` of the mean over
quantiles, the target net's quantiles picked by ``gather(2, ...expand(...))``), the quantile Huber
loss ``torch.where(td.abs() <= kappa, 0.5 * td.pow(2), kappa * (td.abs() - 0.5 * kappa))`` weighted
by ``torch.abs(tau - (td.detach() < 0).float())``, summed over target quantiles and averaged; a
replay buffer of preallocated NumPy arrays sampled by index, epsilon-greedy with ``random.random()``,
a soft target update ``target_param.data.copy_(tau * local + (1 - tau) * target)``.

The task is a small chain MDP of 5 cells (a random inner start): walk left for a sure 0.1 or right to a far end that pays 0 or 2 with
equal odds; the learnt return distribution at the far end should be bimodal (low and high quantiles
apart), and the greedy policy should walk right.
"""

import math
import os
import random

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
random.seed(seed)
np_rng = np.random.RandomState(seed)
g = torch.Generator().manual_seed(seed)


class ChainMDP:
    n = 5
    max_steps = 10

    def reset(self):
        self.pos = np_rng.randint(1, self.n - 1)
        self.steps = 0
        return self.obs()

    def obs(self):
        o = np.zeros(self.n, dtype=np.float32)
        o[self.pos] = 1.0
        return o

    def step(self, action):
        self.steps += 1
        reward, done = 0.0, False
        if action == 0:
            if self.pos == 0:
                reward, done = 0.1, True
            else:
                self.pos -= 1
        else:
            if self.pos == self.n - 1:
                reward, done = float(2.0 * (np_rng.rand() < 0.5)), True
            else:
                self.pos += 1
        if self.steps >= self.max_steps:
            done = True
        return self.obs(), reward, done


class IQN(nn.Module):
    def __init__(self, state_size, action_size, layer_size, n_cos=32):
        super().__init__()
        self.action_size = action_size
        self.layer_size = layer_size
        self.n_cos = n_cos
        self.i_pi = math.pi * torch.arange(1, n_cos + 1, dtype=torch.float32).view(1, 1, n_cos)
        self.head = nn.Linear(state_size, layer_size)
        self.cos_embedding = nn.Linear(n_cos, layer_size)
        self.ff_1 = nn.Linear(layer_size, layer_size)
        self.ff_2 = nn.Linear(layer_size, action_size)

    def calc_cos(self, batch_size, n_tau):
        taus = torch.rand(batch_size, n_tau, generator=g).unsqueeze(-1)
        cos = torch.cos(taus * self.i_pi)
        assert cos.shape == (batch_size, n_tau, self.n_cos), "cos shape is incorrect"
        return cos, taus

    def forward(self, input, num_tau=8, taus=None):
        batch_size = input.shape[0]
        x = torch.relu(self.head(input))
        if taus is None:
            cos, taus = self.calc_cos(batch_size, num_tau)
        else:
            cos = torch.cos(taus * self.i_pi)
            num_tau = taus.shape[1]
        cos = cos.view(batch_size * num_tau, self.n_cos)
        cos_x = torch.relu(self.cos_embedding(cos)).view(batch_size, num_tau, self.layer_size)
        # Hadamard product of the state features with the tau embedding
        x = (x.unsqueeze(1) * cos_x).view(batch_size * num_tau, self.layer_size)
        x = torch.relu(self.ff_1(x))
        out = self.ff_2(x)
        return out.view(batch_size, num_tau, self.action_size), taus

    def get_action(self, inputs, K=16):
        quantiles, _ = self.forward(inputs, K)
        return quantiles.mean(dim=1)


class ReplayBuffer:
    def __init__(self, capacity, state_size):
        self.states = np.zeros((capacity, state_size), dtype=np.float32)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.next_states = np.zeros((capacity, state_size), dtype=np.float32)
        self.dones = np.zeros(capacity, dtype=np.float32)
        self.capacity, self.ptr, self.size = capacity, 0, 0

    def add(self, s, a, r, s2, d):
        self.states[self.ptr], self.actions[self.ptr], self.rewards[self.ptr] = s, a, r
        self.next_states[self.ptr], self.dones[self.ptr] = s2, d
        self.ptr = (self.ptr + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size):
        idx = np_rng.randint(0, self.size, size=batch_size)
        return (torch.from_numpy(self.states[idx]), torch.from_numpy(self.actions[idx]).unsqueeze(1),
                torch.from_numpy(self.rewards[idx]).unsqueeze(1), torch.from_numpy(self.next_states[idx]),
                torch.from_numpy(self.dones[idx]).unsqueeze(1))

    def __len__(self):
        return self.size


def calculate_huber_loss(td_errors, kappa=1.0):
    return torch.where(td_errors.abs() <= kappa, 0.5 * td_errors.pow(2), kappa * (td_errors.abs() - 0.5 * kappa))


class Agent:
    def __init__(self, state_size, action_size, batch_size=16, gamma=0.95, soft_tau=5e-2, N=8, kappa=1.0):
        self.action_size = action_size
        self.batch_size, self.gamma, self.soft_tau, self.N, self.kappa = batch_size, gamma, soft_tau, N, kappa
        self.qnetwork_local = IQN(state_size, action_size, 32)
        self.qnetwork_target = IQN(state_size, action_size, 32)
        self.qnetwork_target.load_state_dict(self.qnetwork_local.state_dict())
        self.optimizer = optim.Adam(self.qnetwork_local.parameters(), lr=3e-3)
        self.memory = ReplayBuffer(2000, state_size)

    def act(self, state, eps=0.0):
        if random.random() > eps:
            state = torch.from_numpy(state).float().unsqueeze(0)
            self.qnetwork_local.eval()
            with torch.no_grad():
                action_values = self.qnetwork_local.get_action(state)
            self.qnetwork_local.train()
            return int(np.argmax(action_values.cpu().data.numpy()))
        return random.choice(np.arange(self.action_size))

    def learn(self):
        states, actions, rewards, next_states, dones = self.memory.sample(self.batch_size)
        batch_size = states.shape[0]
        with torch.no_grad():
            Q_targets_next, _ = self.qnetwork_target(next_states, self.N)
            # double DQN: the online net picks the action, the target net scores it
            action_indx = torch.argmax(self.qnetwork_local.get_action(next_states), dim=1, keepdim=True)
            Q_targets_next = Q_targets_next.gather(
                2, action_indx.unsqueeze(-1).expand(batch_size, self.N, 1)).transpose(1, 2)
            Q_targets = rewards.unsqueeze(-1) + self.gamma * Q_targets_next * (1.0 - dones.unsqueeze(-1))
        Q_expected, taus = self.qnetwork_local(states, self.N)
        Q_expected = Q_expected.gather(2, actions.unsqueeze(-1).expand(batch_size, self.N, 1))

        td_error = Q_targets - Q_expected
        assert td_error.shape == (batch_size, self.N, self.N), "wrong td error shape"
        huber_l = calculate_huber_loss(td_error, self.kappa)
        quantil_l = torch.abs(taus - (td_error.detach() < 0).float()) * huber_l / self.kappa
        loss = quantil_l.sum(dim=1).mean(dim=1)
        loss = loss.mean()

        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.qnetwork_local.parameters(), 10.0)
        self.optimizer.step()
        self.soft_update(self.qnetwork_local, self.qnetwork_target)
        return loss.item()

    def soft_update(self, local_model, target_model):
        for target_param, local_param in zip(target_model.parameters(), local_model.parameters()):
            target_param.data.copy_(self.soft_tau * local_param.data + (1.0 - self.soft_tau) * target_param.data)


env = ChainMDP()
agent = Agent(ChainMDP.n, 2)
episodes, eps = 80, 1.0
losses, scores = [], []
for episode in range(1, episodes + 1):
    state, score, done = env.reset(), 0.0, False
    while not done:
        action = agent.act(state, eps)
        next_state, reward, done = env.step(action)
        agent.memory.add(state, action, reward, next_state, float(done))
        state, score = next_state, score + reward
        if len(agent.memory) >= 32:
            losses.append(agent.learn())
    scores.append(score)
    eps = max(0.1, eps * 0.98)
    if episode % 20 == 0:
        print(f'episode {episode} mean score {np.mean(scores[-20:]):.3f} loss {np.mean(losses[-20:]):.4f} eps {eps:.3f}')

# the learnt return distribution of stepping right at the far end, at fixed quantile fractions
far_end = torch.zeros(1, ChainMDP.n)
far_end[0, -1] = 1.0
fractions = torch.tensor([[0.1, 0.25, 0.5, 0.75, 0.9]]).unsqueeze(-1)
with torch.no_grad():
    quantiles, _ = agent.qnetwork_local(far_end, taus=fractions)
q = quantiles[0, :, 1]
print('far end quantiles', ' '.join(f'{v:.3f}' for v in q.tolist()))

start = torch.zeros(1, ChainMDP.n)
start[0, 2] = 1.0
with torch.no_grad():
    q_start = agent.qnetwork_local.get_action(start, K=64)[0]
greedy_right = int(torch.argmax(q_start).item() == 1)
print(f'start Q left {q_start[0].item():.3f} right {q_start[1].item():.3f}')
print(f'FINAL loss={np.mean(losses[-50:]):.4f} score={np.mean(scores[-20:]):.4f} q10={q[0].item():.4f} '
      f'q90={q[-1].item():.4f} spread={(q[-1] - q[0]).item():.4f} greedy_right={greedy_right}')
