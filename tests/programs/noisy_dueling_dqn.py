"""Rainbow's pieces (Kaixhin/Rainbow ``model.py`` and ``agent.py``) on a small NumPy gridworld: a noisy,
dueling, double DQN learning from n-step returns.

``NoisyLinear`` is the repo's: ``weight_mu``/``weight_sigma``/``bias_mu``/``bias_sigma`` parameters,
``weight_epsilon``/``bias_epsilon`` buffers by ``register_buffer``, ``reset_parameters`` with
``uniform_``/``fill_`` on ``.data``, factorised Gaussian noise by ``_scale_noise``
(``x.sign().mul_(x.abs().sqrt_())``) and ``reset_noise`` writing ``epsilon_out.ger(epsilon_in)`` into the
buffer with ``copy_``, and ``forward`` using ``F.linear(input, self.weight_mu + self.weight_sigma *
self.weight_epsilon, ...)`` in training and ``weight_mu``/``bias_mu`` in evaluation. The network is the
dueling head ``v + a - a.mean(1, keepdim=True)`` over two noisy streams. The agent acts greedily on noisy
Q-values (no epsilon), stores n-step transitions (``deque`` windows, ``discount ** n``), learns by
double-DQN targets (online ``argmax(1)`` evaluated by the target net, ``gather``), Huber loss
(``F.smooth_l1_loss``) and Adam with ``clip_grad_norm_``, calls ``reset_noise()`` every step and copies the
online net into the target net by ``load_state_dict(state_dict())``.

Checked: evaluation mode is deterministic across ``reset_noise()`` and equal to ``F.linear`` with the mu
parameters; the noisy layer's mean output over many noise draws matches the mu layer within its standard
error, and its sigma gradient equals the weight gradient times epsilon; the target net equals the online
net right after ``load_state_dict``; and the greedy policy's return from every start cell rises.
"""

import math
import os
from collections import deque

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn, optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

SIZE = 5
GOAL = (SIZE - 1, SIZE - 1)
WALLS = {(1, 1), (2, 3), (3, 1)}
MAX_STEPS = 20
MOVES = [(-1, 0), (1, 0), (0, -1), (0, 1)]


# ----------------------------------------------------------------------------------- environment
class GridWorld:
    def __init__(self, rng):
        self.rng = rng
        self.cells = [(r, c) for r in range(SIZE) for c in range(SIZE) if (r, c) not in WALLS and (r, c) != GOAL]

    def observe(self):
        obs = np.zeros(SIZE * SIZE, dtype=np.float32)
        obs[self.pos[0] * SIZE + self.pos[1]] = 1.0
        return obs

    def reset(self, start=None):
        self.pos = start if start is not None else self.cells[self.rng.randint(len(self.cells))]
        self.t = 0
        return self.observe()

    def step(self, action):
        dr, dc = MOVES[action]
        r, c = self.pos[0] + dr, self.pos[1] + dc
        if 0 <= r < SIZE and 0 <= c < SIZE and (r, c) not in WALLS:
            self.pos = (r, c)
        self.t += 1
        done = self.pos == GOAL
        reward = 1.0 if done else -0.05
        return self.observe(), reward, done or self.t >= MAX_STEPS, done


# ----------------------------------------------------------------------------------- model
class NoisyLinear(nn.Module):
    def __init__(self, in_features, out_features, std_init=0.5):
        super(NoisyLinear, self).__init__()  # noqa: UP008
        self.in_features = in_features
        self.out_features = out_features
        self.std_init = std_init
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features))
        self.weight_sigma = nn.Parameter(torch.empty(out_features, in_features))
        self.register_buffer("weight_epsilon", torch.empty(out_features, in_features))
        self.bias_mu = nn.Parameter(torch.empty(out_features))
        self.bias_sigma = nn.Parameter(torch.empty(out_features))
        self.register_buffer("bias_epsilon", torch.empty(out_features))
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
            return F.linear(input, self.weight_mu + self.weight_sigma * self.weight_epsilon, self.bias_mu + self.bias_sigma * self.bias_epsilon)
        else:
            return F.linear(input, self.weight_mu, self.bias_mu)


class DQN(nn.Module):
    def __init__(self, state_dim, action_space, hidden_size=32, noisy_std=0.5):
        super(DQN, self).__init__()  # noqa: UP008
        self.action_space = action_space
        self.fc = nn.Linear(state_dim, hidden_size)
        self.fc_h_v = NoisyLinear(hidden_size, hidden_size, std_init=noisy_std)
        self.fc_h_a = NoisyLinear(hidden_size, hidden_size, std_init=noisy_std)
        self.fc_z_v = NoisyLinear(hidden_size, 1, std_init=noisy_std)
        self.fc_z_a = NoisyLinear(hidden_size, action_space, std_init=noisy_std)

    def forward(self, x):
        x = F.relu(self.fc(x))
        v = self.fc_z_v(F.relu(self.fc_h_v(x)))  # Value stream
        a = self.fc_z_a(F.relu(self.fc_h_a(x)))  # Advantage stream
        q = v + a - a.mean(1, keepdim=True)  # Combine streams
        return q

    def reset_noise(self):
        for name, module in self.named_children():
            if "fc_" in name:
                module.reset_noise()


# ----------------------------------------------------------------------------------- agent
class Agent:
    def __init__(self, n_step=3, discount=0.95, batch_size=32, lr=1e-3):
        self.n = n_step
        self.discount = discount
        self.batch_size = batch_size
        self.online_net = DQN(SIZE * SIZE, len(MOVES))
        self.online_net.train()
        self.target_net = DQN(SIZE * SIZE, len(MOVES))
        self.update_target_net()
        self.target_net.train()
        for param in self.target_net.parameters():
            param.requires_grad = False
        self.optimiser = optim.Adam(self.online_net.parameters(), lr=lr, eps=1.5e-4)

    def reset_noise(self):
        self.online_net.reset_noise()

    def act(self, state):
        with torch.no_grad():
            return self.online_net(state.unsqueeze(0)).argmax(1).item()

    def learn(self, memory, rng):
        idx = rng.randint(len(memory), size=self.batch_size)
        states, actions, returns, next_states, nonterminals = (torch.as_tensor(np.stack(col)) for col in zip(*[memory[i] for i in idx]))
        q = self.online_net(states).gather(1, actions.long().unsqueeze(1)).squeeze(1)
        with torch.no_grad():
            best_next = self.online_net(next_states).argmax(1)  # double-Q: select with the online net
            self.target_net.reset_noise()
            q_next = self.target_net(next_states)[range(self.batch_size), best_next]  # evaluate with the target net
            target = returns + nonterminals * (self.discount**self.n) * q_next
        loss = F.smooth_l1_loss(q, target)
        self.online_net.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.online_net.parameters(), 10.0)
        self.optimiser.step()
        return loss.item()

    def update_target_net(self):
        self.target_net.load_state_dict(self.online_net.state_dict())


def greedy_return(net, env):
    net.eval()
    total, reached = 0.0, 0
    with torch.no_grad():
        for start in env.cells:
            obs, ret, disc = env.reset(start), 0.0, 1.0
            while True:
                action = net(torch.from_numpy(obs).unsqueeze(0)).argmax(1).item()
                obs, reward, end, done = env.step(action)
                ret += disc * reward
                disc *= 0.95
                if end:
                    reached += int(done)
                    break
            total += ret
    net.train()
    return total / len(env.cells), reached


# ----------------------------------------------------------------------------------- checks on the noisy layer
layer = NoisyLinear(6, 3)
x = torch.randn(5, 6)
layer.eval()
out_eval = layer(x)
layer.reset_noise()
deterministic = torch.equal(out_eval, layer(x)) and torch.allclose(out_eval, F.linear(x, layer.weight_mu, layer.bias_mu))
layer.train()
draws = []
with torch.no_grad():
    for _ in range(800):
        layer.reset_noise()
        draws.append(layer(x))
draws = torch.stack(draws)
stderr = draws.std(0) / math.sqrt(draws.size(0))
mean_z = ((draws.mean(0) - out_eval).abs() / stderr).max().item()
noisy_spread = (draws.std(0) / out_eval.abs().clamp(min=1e-3)).mean().item()
layer.reset_noise()
layer(x).pow(2).sum().backward()
w_grad = layer.weight_mu.grad  # d/dW of the sampled weight, equal to d/dweight_mu
sigma_rule = torch.allclose(layer.weight_sigma.grad, w_grad * layer.weight_epsilon, atol=1e-6) and torch.allclose(layer.bias_sigma.grad, layer.bias_mu.grad * layer.bias_epsilon, atol=1e-6)
print(f"eval deterministic and == F.linear(mu): {deterministic}")
print(f"noisy mean over {draws.size(0)} draws: max |mean - mu| / stderr {mean_z:.3f}, relative spread {noisy_spread:.3f}")
print(f"sigma gradient == weight gradient * epsilon: {sigma_rule}")

# ----------------------------------------------------------------------------------- training
rng = np.random.RandomState(seed)
env = GridWorld(rng)
eval_env = GridWorld(np.random.RandomState(seed + 1))
agent = Agent()
ret_first, reached_first = greedy_return(agent.online_net, eval_env)
print(f"greedy before: return {ret_first:.4f}, reached {reached_first}/{len(eval_env.cells)}")

memory = deque(maxlen=5000)
EPISODES, LEARN_START, TARGET_UPDATE = 160, 200, 100
T, losses, episode_returns, target_same = 0, [], [], True
for episode in range(1, EPISODES + 1):
    obs, window, ep_ret = env.reset(), deque(), 0.0
    while True:
        agent.reset_noise()  # draw new noise every step (replay_frequency 1)
        action = agent.act(torch.from_numpy(obs))
        next_obs, reward, end, done = env.step(action)
        ep_ret += reward
        window.append((obs, action, reward))
        if len(window) == agent.n or end:
            while window:  # flush: every pending start gets its (possibly truncated) n-step return
                R = sum(agent.discount**k * w[2] for k, w in enumerate(window))
                n = len(window)
                nonterminal = 0.0 if done else agent.discount ** (n - agent.n)
                memory.append((window[0][0], np.int64(window[0][1]), np.float32(R), next_obs, np.float32(nonterminal)))
                window.popleft()
                if not end:
                    break
        obs = next_obs
        T += 1
        if T >= LEARN_START:
            losses.append(agent.learn(memory, rng))
            if T % TARGET_UPDATE == 0:
                agent.update_target_net()
                sd_t, sd_o = agent.target_net.state_dict(), agent.online_net.state_dict()
                target_same = target_same and all(torch.equal(sd_t[k], sd_o[k]) for k in sd_o)
        if end:
            break
    episode_returns.append(ep_ret)
    if episode % 40 == 0:
        ret, reached = greedy_return(agent.online_net, eval_env)
        print(f"episode {episode}: steps {T}, mean episode return {np.mean(episode_returns[-40:]):.3f}, loss {np.mean(losses[-100:]):.4f}, greedy return {ret:.3f}")

ret_last, reached_last = greedy_return(agent.online_net, eval_env)
print(f"greedy after: return {ret_last:.4f}, reached {reached_last}/{len(eval_env.cells)}; target == online after load_state_dict: {target_same}")
checks = int(deterministic and sigma_rule and target_same and mean_z < 4.5)
improved = int(ret_last > ret_first + 0.3)
print(f"FINAL ret_first={ret_first:.4f} ret_last={ret_last:.4f} reached_frac={reached_last / len(eval_env.cells):.4f} noisy_mean_z={mean_z:.4f} checks={checks} improved={improved}")
