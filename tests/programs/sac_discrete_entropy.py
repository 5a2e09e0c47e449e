"""SAC-Discrete (Christodoulou 2019) on a chain with a near and a far reward.

In the style of toshikwa/sac-discrete.pytorch (`sacd/model.py`, `sacd/agent/sacd.py`) and
p-christ/Deep-Reinforcement-Learning-Algorithms-with-PyTorch (`SAC_Discrete.py`): a `CateoricalPolicy`
with `act` (`torch.argmax(action_logits, dim=1, keepdim=True)`) and `sample` (`F.softmax(logits, dim=1)`,
`Categorical(action_probs).sample().view(-1, 1)`, `z = (action_probs == 0.0).float() * 1e-8`,
`log_action_probs = torch.log(action_probs + z)`), a `TwinnedQNetwork` of two Q heads over all actions,
`curr_q1.gather(1, actions.long())`, the soft target
`(action_probs * (torch.min(next_q1, next_q2) - self.alpha * log_action_probs)).sum(dim=1, keepdim=True)`
under `torch.no_grad()`, the policy loss on `torch.sum(torch.min(q1, q2) * action_probs, dim=1, keepdim=True)`
and `entropies = -torch.sum(action_probs * log_action_probs, dim=1, keepdim=True)`, the auto-tuned
temperature (`self.target_entropy = -np.log(1.0 / n_actions) * 0.98`,
`self.log_alpha = torch.zeros(1, requires_grad=True)`, `-torch.mean(self.log_alpha * (self.target_entropy -
entropies))`, `self.alpha = self.log_alpha.exp()` after each step), `disable_gradients` on the target
critic, hard target updates by `self.target_critic.load_state_dict(self.online_critic.state_dict())`,
`update_params(optim, loss)`, a replay buffer of preallocated tensors sampled by `torch.randint`.
Reports the greedy policy's return against a uniformly random policy's, and the learned alpha.
Checks: `Categorical(probs).entropy()` equals `-(probs * log_probs).sum(1)`, and the soft state value
equals a Python loop over the actions.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Categorical
from torch.optim import Adam

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

n_states = 6
start_state = 2
n_actions = 3
horizon = 20
gamma = 0.9
lr = 3e-3
batch_size = 64
num_steps = 1000
start_steps = 200
target_update_interval = 100
MOVES = [-1, 0, 1]


class ChainWorld:
    """A chain of states; +0.2 per step at the near end, +1 per step at the far end, 0 between.

    No terminal states: an episode is cut at the horizon (truncated, not done, so targets bootstrap).
    """

    def reset(self):
        self.pos, self.t = start_state, 0
        return self.obs()

    def obs(self):
        o = np.zeros(n_states, np.float32)
        o[self.pos] = 1.0
        return o

    def step(self, a):
        self.pos = min(max(self.pos + MOVES[a], 0), n_states - 1)
        self.t += 1
        reward = 1.0 if self.pos == n_states - 1 else 0.2 if self.pos == 0 else 0.0
        return self.obs(), reward, False, self.t >= horizon


class BaseNetwork(nn.Module):
    def save(self, path):
        torch.save(self.state_dict(), path)


class QNetwork(BaseNetwork):
    def __init__(self, num_channels, num_actions, hidden=64):
        super().__init__()
        self.head = nn.Sequential(nn.Linear(num_channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_actions))

    def forward(self, states):
        return self.head(states)


class TwinnedQNetwork(BaseNetwork):
    def __init__(self, num_channels, num_actions):
        super().__init__()
        self.Q1 = QNetwork(num_channels, num_actions)
        self.Q2 = QNetwork(num_channels, num_actions)

    def forward(self, states):
        q1 = self.Q1(states)
        q2 = self.Q2(states)
        return q1, q2


class CateoricalPolicy(BaseNetwork):
    def __init__(self, num_channels, num_actions, hidden=64):
        super().__init__()
        self.head = nn.Sequential(nn.Linear(num_channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_actions))

    def act(self, states):
        action_logits = self.head(states)
        greedy_actions = torch.argmax(action_logits, dim=1, keepdim=True)
        return greedy_actions

    def sample(self, states):
        action_probs = F.softmax(self.head(states), dim=1)
        action_dist = Categorical(action_probs)
        actions = action_dist.sample().view(-1, 1)
        # Avoid numerical instability.
        z = (action_probs == 0.0).float() * 1e-8
        log_action_probs = torch.log(action_probs + z)
        return actions, action_probs, log_action_probs


def disable_gradients(network):
    for param in network.parameters():
        param.requires_grad = False


def update_params(optim, loss, retain_graph=False):
    optim.zero_grad()
    loss.backward(retain_graph=retain_graph)
    optim.step()


class ReplayMemory:
    def __init__(self, capacity):
        self.states = torch.zeros(capacity, n_states)
        self.actions = torch.zeros(capacity, 1, dtype=torch.long)
        self.rewards = torch.zeros(capacity, 1)
        self.next_states = torch.zeros(capacity, n_states)
        self.dones = torch.zeros(capacity, 1)
        self.n, self.p, self.capacity = 0, 0, capacity

    def append(self, state, action, reward, next_state, done):
        self.states[self.p] = torch.from_numpy(state)
        self.actions[self.p] = action
        self.rewards[self.p] = reward
        self.next_states[self.p] = torch.from_numpy(next_state)
        self.dones[self.p] = float(done)
        self.p = (self.p + 1) % self.capacity
        self.n = min(self.n + 1, self.capacity)

    def sample(self, batch_size):
        idx = torch.randint(0, self.n, (batch_size,))
        return self.states[idx], self.actions[idx], self.rewards[idx], self.next_states[idx], self.dones[idx]


policy = CateoricalPolicy(n_states, n_actions)
online_critic = TwinnedQNetwork(n_states, n_actions)
target_critic = TwinnedQNetwork(n_states, n_actions)
target_critic.load_state_dict(online_critic.state_dict())
disable_gradients(target_critic)
policy_optim = Adam(policy.parameters(), lr=lr)
q1_optim = Adam(online_critic.Q1.parameters(), lr=lr)
q2_optim = Adam(online_critic.Q2.parameters(), lr=lr)
target_entropy = -np.log(1.0 / n_actions) * 0.98
log_alpha = torch.zeros(1, requires_grad=True)
alpha = log_alpha.exp()
alpha_optim = Adam([log_alpha], lr=lr)
print(f"target entropy {target_entropy:.4f} of max {np.log(n_actions):.4f}; alpha {alpha.item():.3f} "
      f"target critic trainable {sum(p.requires_grad for p in target_critic.parameters())}")

# --- check 1: Categorical(probs).entropy() equals the hand-written entropy; sample shapes and dtypes
states = torch.eye(n_states)
with torch.no_grad():
    actions, probs, log_probs = policy.sample(states)
    entropy_err = (Categorical(probs).entropy() - (-(probs * log_probs).sum(1))).abs().max().item()
    zero_probs = torch.tensor([[0.5, 0.5, 0.0]])
    zlog = torch.log(zero_probs + (zero_probs == 0.0).float() * 1e-8)
    zero_entropy_err = abs(Categorical(zero_probs).entropy().item() - (-(zero_probs * zlog).sum(1)).item())
entropy_err = max(entropy_err, zero_entropy_err)
print(f"sample {tuple(actions.shape)} {actions.dtype}; entropy err {entropy_err:.2e}")


# --- check 2: the soft value (vectorised) equals a loop over the actions
def soft_value(next_states):
    _, action_probs, log_action_probs = policy.sample(next_states)
    next_q1, next_q2 = target_critic(next_states)
    return (action_probs * (torch.min(next_q1, next_q2) - alpha * log_action_probs)).sum(dim=1, keepdim=True), \
        (action_probs, log_action_probs, next_q1, next_q2)


with torch.no_grad():
    vectorised, (pr, lp, q1, q2) = soft_value(states)
    looped = torch.zeros(n_states, 1)
    for s in range(n_states):
        for a in range(n_actions):
            looped[s, 0] += pr[s, a] * (min(q1[s, a].item(), q2[s, a].item()) - alpha.item() * lp[s, a].item())
    soft_value_err = (vectorised - looped).abs().max().item()
print(f"soft value vectorised vs loop err {soft_value_err:.2e}")


def calc_current_q(states, actions):
    curr_q1, curr_q2 = online_critic(states)
    curr_q1 = curr_q1.gather(1, actions.long())
    curr_q2 = curr_q2.gather(1, actions.long())
    return curr_q1, curr_q2


def calc_target_q(rewards, next_states, dones):
    with torch.no_grad():
        next_q, _ = soft_value(next_states)
    return rewards + (1.0 - dones) * gamma * next_q


def calc_policy_loss(states):
    _, action_probs, log_action_probs = policy.sample(states)
    with torch.no_grad():
        q1, q2 = online_critic(states)
        q = torch.min(q1, q2)
    entropies = -torch.sum(action_probs * log_action_probs, dim=1, keepdim=True)
    q = torch.sum(q * action_probs, dim=1, keepdim=True)
    policy_loss = (-q - alpha * entropies).mean()
    return policy_loss, entropies.detach()


def evaluate(choose, episodes=20):
    env, total = ChainWorld(), 0.0
    for _ in range(episodes):
        obs, done, truncated = env.reset(), False, False
        while not (done or truncated):
            obs, r, done, truncated = env.step(choose(obs))
            total += r
    return total / episodes


eval_rng = np.random.RandomState(1000 + seed)
random_return = evaluate(lambda obs: eval_rng.randint(n_actions), episodes=200)


def greedy(obs):
    with torch.no_grad():
        return policy.act(torch.from_numpy(obs).unsqueeze(0)).item()


greedy_before = evaluate(greedy, episodes=1)
memory = ReplayMemory(num_steps)
env = ChainWorld()
state = env.reset()
episode_returns, ep_ret = [], 0.0
q_losses, entropies_seen = [], []
for step in range(num_steps):
    if step < start_steps:
        action = np.random.randint(n_actions)
    else:
        with torch.no_grad():
            action, _, _ = policy.sample(torch.from_numpy(state).unsqueeze(0))
        action = action.item()
    next_state, reward, done, truncated = env.step(action)
    memory.append(state, action, reward, next_state, done)
    ep_ret += reward
    state = next_state
    if done or truncated:
        episode_returns.append(ep_ret)
        state, ep_ret = env.reset(), 0.0
    if step < start_steps:
        continue
    states, actions, rewards, next_states, dones = memory.sample(batch_size)
    curr_q1, curr_q2 = calc_current_q(states, actions)
    target_q = calc_target_q(rewards, next_states, dones)
    q1_loss = torch.mean((curr_q1 - target_q).pow(2))
    q2_loss = torch.mean((curr_q2 - target_q).pow(2))
    policy_loss, entropies = calc_policy_loss(states)
    entropy_loss = -torch.mean(log_alpha * (target_entropy - entropies))
    update_params(q1_optim, q1_loss)
    update_params(q2_optim, q2_loss)
    update_params(policy_optim, policy_loss)
    update_params(alpha_optim, entropy_loss)
    alpha = log_alpha.exp()
    q_losses.append(q1_loss.item())
    entropies_seen.append(entropies.mean().item())
    if (step + 1) % target_update_interval == 0:
        target_critic.load_state_dict(online_critic.state_dict())
    if (step + 1) % 300 == 0:
        print(f"step {step + 1} q1 loss {np.mean(q_losses[-100:]):.4f} entropy {np.mean(entropies_seen[-100:]):.3f} "
              f"alpha {alpha.item():.4f} greedy return {evaluate(greedy, episodes=1):.3f}")

greedy_return = evaluate(greedy, episodes=1)
stochastic_return = evaluate(lambda obs: policy.sample(torch.from_numpy(obs).unsqueeze(0))[0].item(), episodes=40)
with torch.no_grad():
    _, probs, log_probs = policy.sample(torch.eye(n_states))
    start_entropy = Categorical(probs[start_state]).entropy().item()
    q1, q2 = online_critic(torch.eye(n_states))
    soft_v = (probs * (torch.min(q1, q2) - alpha * log_probs)).sum(1)
print(f"random return {random_return:.3f} greedy before {greedy_before:.3f} after {greedy_return:.3f} "
      f"stochastic {stochastic_return:.3f}; alpha {alpha.item():.4f} start entropy {start_entropy:.3f}")
print(f"FINAL greedy_return={greedy_return:.4f} random_return={random_return:.4f} "
      f"gain={greedy_return - random_return:.4f} stochastic_return={stochastic_return:.4f} "
      f"alpha={alpha.item():.4f} v_start={soft_v[start_state].item():.4f} q_loss={np.mean(q_losses[-100:]):.5f} "
      f"entropy_err={entropy_err:.2e} soft_value_err={soft_value_err:.2e}")
