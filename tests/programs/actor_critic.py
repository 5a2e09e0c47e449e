"""pytorch/examples reinforcement_learning (actor_critic.py and reinforce.py) on a small CartPole
written in NumPy (no gym): ``SavedAction = namedtuple(...)``, a two-headed Policy returning
``F.softmax`` probabilities and a state value, ``Categorical(probs)`` ``sample``/``log_prob``,
returns accumulated backwards with ``returns.insert(0, R)``, normalised with
``eps = np.finfo(np.float32).eps.item()``, ``advantage = R - value.item()``,
``F.smooth_l1_loss(value, torch.tensor([R]))`` on a 0-d tensor ``R``, ``torch.stack(...).sum()``,
``del model.rewards[:]``, ``itertools.count(1)``; REINFORCE with ``nn.Dropout(p=0.6)``,
``unsqueeze(0)`` states and ``torch.cat(policy_loss).sum()``; a running reward.
"""

import math
import os
from collections import namedtuple
from itertools import count

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.distributions import Categorical

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
gamma = 0.99
log_interval = 25
max_episodes = 50


class CartPole:
    """The classic cart-pole balance task (Barto, Sutton & Anderson 1983), Euler-integrated."""

    gravity, masscart, masspole, length, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    theta_threshold = 12 * 2 * math.pi / 360
    x_threshold = 2.4
    max_steps = 60

    def __init__(self, seed):
        self.rng = np.random.RandomState(seed)
        self.state = None
        self.steps = 0

    def reset(self):
        self.state = self.rng.uniform(low=-0.05, high=0.05, size=(4,))
        self.steps = 0
        return np.array(self.state, dtype=np.float32), {}

    def step(self, action):
        x, x_dot, theta, theta_dot = self.state
        force = self.force_mag if action == 1 else -self.force_mag
        total_mass = self.masspole + self.masscart
        polemass_length = self.masspole * self.length
        costheta, sintheta = math.cos(theta), math.sin(theta)
        temp = (force + polemass_length * theta_dot ** 2 * sintheta) / total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * costheta ** 2 / total_mass))
        xacc = temp - polemass_length * thetaacc * costheta / total_mass
        x, x_dot = x + self.tau * x_dot, x_dot + self.tau * xacc
        theta, theta_dot = theta + self.tau * theta_dot, theta_dot + self.tau * thetaacc
        self.state = (x, x_dot, theta, theta_dot)
        self.steps += 1
        terminated = bool(abs(x) > self.x_threshold or abs(theta) > self.theta_threshold)
        truncated = self.steps >= self.max_steps
        return np.array(self.state, dtype=np.float32), 1.0, terminated, truncated, {}


# ---------------------------------------------------------------- actor-critic
SavedAction = namedtuple('SavedAction', ['log_prob', 'value'])


class Policy(nn.Module):
    """implements both actor and critic in one model"""

    def __init__(self):
        super().__init__()
        self.affine1 = nn.Linear(4, 64)
        # actor's layer
        self.action_head = nn.Linear(64, 2)
        # critic's layer
        self.value_head = nn.Linear(64, 1)
        # action & reward buffer
        self.saved_actions = []
        self.rewards = []

    def forward(self, x):
        x = F.relu(self.affine1(x))
        # actor: choses action to take from state s_t by returning probability of each action
        action_prob = F.softmax(self.action_head(x), dim=-1)
        # critic: evaluates being in the state s_t
        state_values = self.value_head(x)
        return action_prob, state_values


model = Policy()
optimizer = optim.Adam(model.parameters(), lr=1e-2)
eps = np.finfo(np.float32).eps.item()


def select_action(state):
    state = torch.from_numpy(state).float()
    probs, state_value = model(state)
    # create a categorical distribution over the list of probabilities of actions
    m = Categorical(probs)
    # and sample an action using the distribution
    action = m.sample()
    # save to action buffer
    model.saved_actions.append(SavedAction(m.log_prob(action), state_value))
    # the action to take (left or right)
    return action.item()


def finish_episode():
    R = 0
    saved_actions = model.saved_actions
    policy_losses = []  # list to save actor (policy) loss
    value_losses = []  # list to save critic (value) loss
    returns = []  # list to save the true values
    # calculate the true value using rewards returned from the environment
    for r in model.rewards[::-1]:
        # calculate the discounted value
        R = r + gamma * R
        returns.insert(0, R)
    returns = torch.tensor(returns)
    returns = (returns - returns.mean()) / (returns.std() + eps)
    for (log_prob, value), R in zip(saved_actions, returns):
        advantage = R - value.item()
        # calculate actor (policy) loss
        policy_losses.append(-log_prob * advantage)
        # calculate critic (value) loss using L1 smooth loss
        value_losses.append(F.smooth_l1_loss(value, torch.tensor([R])))
    # reset gradients
    optimizer.zero_grad()
    # sum up all the values of policy_losses and value_losses
    loss = torch.stack(policy_losses).sum() + torch.stack(value_losses).sum()
    # perform backprop
    loss.backward()
    optimizer.step()
    # reset rewards and action buffer
    del model.rewards[:]
    del model.saved_actions[:]


def run(env, select, finish, rewards_of, name):
    running_reward = 10
    recent = []
    for i_episode in count(1):
        state, _ = env.reset()
        ep_reward = 0
        for t in range(1, 10000):  # noqa: B007  (the example's own loop)
            action = select(state)
            state, reward, terminated, truncated, _ = env.step(action)
            rewards_of().append(reward)
            ep_reward += reward
            if terminated or truncated:
                break
        # update cumulative reward
        running_reward = 0.05 * ep_reward + (1 - 0.05) * running_reward
        recent.append(ep_reward)
        finish()
        if i_episode % log_interval == 0:
            print(f'{name} Episode {i_episode}\tAverage reward over the last {log_interval}: '
                  f'{sum(recent[-log_interval:]) / log_interval:.2f}\tRunning reward: {running_reward:.2f}')
        if i_episode >= max_episodes:
            return running_reward, sum(recent[-log_interval:]) / log_interval


ac_running, ac_last = run(CartPole(seed), select_action, finish_episode, lambda: model.rewards, "actor-critic")


# ---------------------------------------------------------------- REINFORCE
class ReinforcePolicy(nn.Module):
    def __init__(self):
        super().__init__()
        self.affine1 = nn.Linear(4, 64)
        self.dropout = nn.Dropout(p=0.6)
        self.affine2 = nn.Linear(64, 2)

        self.saved_log_probs = []
        self.rewards = []

    def forward(self, x):
        x = self.affine1(x)
        x = self.dropout(x)
        x = F.relu(x)
        action_scores = self.affine2(x)
        return F.softmax(action_scores, dim=1)


policy = ReinforcePolicy()
policy_optimizer = optim.Adam(policy.parameters(), lr=1e-2)


def reinforce_select_action(state):
    state = torch.from_numpy(state).float().unsqueeze(0)
    probs = policy(state)
    m = Categorical(probs)
    action = m.sample()
    policy.saved_log_probs.append(m.log_prob(action))
    return action.item()


def reinforce_finish_episode():
    R = 0
    policy_loss = []
    returns = []
    for r in policy.rewards[::-1]:
        R = r + gamma * R
        returns.insert(0, R)
    returns = torch.tensor(returns)
    returns = (returns - returns.mean()) / (returns.std() + eps)
    for log_prob, R in zip(policy.saved_log_probs, returns):
        policy_loss.append(-log_prob * R)
    policy_optimizer.zero_grad()
    policy_loss = torch.cat(policy_loss).sum()
    policy_loss.backward()
    policy_optimizer.step()
    del policy.rewards[:]
    del policy.saved_log_probs[:]


rf_running, rf_last = run(CartPole(seed + 100), reinforce_select_action, reinforce_finish_episode,
                          lambda: policy.rewards, "reinforce")
# REINFORCE's last average varies too much from seed to seed (in torch) to be banded; it is printed
print(f"reinforce: last average {rf_last:.2f}, running reward {rf_running:.2f}")
print(f"FINAL ac_last={ac_last:.2f} ac_running={ac_running:.2f}")
