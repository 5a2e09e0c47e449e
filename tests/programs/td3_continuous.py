"""TD3 as Fujimoto's reference code writes it (``TD3.py``, ``utils.py``, ``main.py``) on a small
2-D reaching task written in NumPy (no gym): an ``Actor`` ending in ``self.max_action *
torch.tanh(self.l3(a))``, twin critics in one ``Critic`` module with a ``Q1`` method for the actor
loss, ``torch.FloatTensor(state.reshape(1, -1))`` actions read back by ``.cpu().data.numpy().flatten()``,
a NumPy ``ReplayBuffer`` returning ``torch.FloatTensor(...).to(self.device)`` batches, target
policy smoothing by ``(torch.randn_like(action) * self.policy_noise).clamp(-self.noise_clip,
self.noise_clip)``, clipped double-Q targets by ``torch.min(target_Q1, target_Q2)``,
``F.mse_loss(current_Q1, target_Q) + F.mse_loss(current_Q2, target_Q)``, delayed actor updates
every ``policy_freq`` iterations, polyak averaging by ``target_param.data.copy_(self.tau *
param.data + (1 - self.tau) * target_param.data)`` over ``zip(...parameters())``, and ``save``/
``load`` of the four ``state_dict``s (models and optimizers) into a fresh agent whose
``copy.deepcopy`` targets act as the saved one's.
"""
# ruff: noqa: UP004, UP008  (the reference code's spelling: class X(object), super(Actor, self))

import copy
import os
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
np.random.seed(seed)
torch.manual_seed(seed)

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")


class ReachEnv:
    """A point in the plane pushed towards a goal: obs (position, velocity, goal - position), the
    action in [-max_action, max_action]^2 is a force; the reward is minus the distance, minus effort.
    An episode ends after ``_max_episode_steps`` steps or when the point leaves the box."""

    state_dim = 6
    action_dim = 2
    max_action = 2.0
    _max_episode_steps = 25

    def __init__(self, seed):
        self.rng = np.random.RandomState(seed)

    def _obs(self):
        return np.concatenate([self.pos, self.vel, self.goal - self.pos]).astype(np.float32)

    def reset(self):
        self.pos = self.rng.uniform(-1.0, 1.0, size=2)
        self.goal = self.rng.uniform(-1.0, 1.0, size=2)
        self.vel = np.zeros(2)
        return self._obs()

    def step(self, action):
        action = np.clip(action, -self.max_action, self.max_action)
        self.vel = 0.6 * self.vel + 0.1 * action
        self.pos = self.pos + self.vel
        dist = np.linalg.norm(self.goal - self.pos)
        reward = -dist - 0.05 * float(np.sum(action ** 2))
        done = bool(np.any(np.abs(self.pos) > 3.0))
        return self._obs(), reward, done, {}


# ---- utils.py ----
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

        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def add(self, state, action, next_state, reward, done):
        self.state[self.ptr] = state
        self.action[self.ptr] = action
        self.next_state[self.ptr] = next_state
        self.reward[self.ptr] = reward
        self.not_done[self.ptr] = 1. - done

        self.ptr = (self.ptr + 1) % self.max_size
        self.size = min(self.size + 1, self.max_size)

    def sample(self, batch_size):
        ind = np.random.randint(0, self.size, size=batch_size)

        return (
            torch.FloatTensor(self.state[ind]).to(self.device),
            torch.FloatTensor(self.action[ind]).to(self.device),
            torch.FloatTensor(self.next_state[ind]).to(self.device),
            torch.FloatTensor(self.reward[ind]).to(self.device),
            torch.FloatTensor(self.not_done[ind]).to(self.device)
        )


# ---- TD3.py ----
class Actor(nn.Module):
    def __init__(self, state_dim, action_dim, max_action):
        super(Actor, self).__init__()

        self.l1 = nn.Linear(state_dim, 64)
        self.l2 = nn.Linear(64, 64)
        self.l3 = nn.Linear(64, action_dim)

        self.max_action = max_action

    def forward(self, state):
        a = F.relu(self.l1(state))
        a = F.relu(self.l2(a))
        return self.max_action * torch.tanh(self.l3(a))


class Critic(nn.Module):
    def __init__(self, state_dim, action_dim):
        super(Critic, self).__init__()

        # Q1 architecture
        self.l1 = nn.Linear(state_dim + action_dim, 64)
        self.l2 = nn.Linear(64, 64)
        self.l3 = nn.Linear(64, 1)

        # Q2 architecture
        self.l4 = nn.Linear(state_dim + action_dim, 64)
        self.l5 = nn.Linear(64, 64)
        self.l6 = nn.Linear(64, 1)

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
        q1 = self.l3(q1)
        return q1


class TD3(object):
    def __init__(
        self,
        state_dim,
        action_dim,
        max_action,
        discount=0.9,
        tau=0.005,
        policy_noise=0.2,
        noise_clip=0.5,
        policy_freq=2
    ):

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

        self.total_it = 0

    def select_action(self, state):
        state = torch.FloatTensor(state.reshape(1, -1)).to(device)
        return self.actor(state).cpu().data.numpy().flatten()

    def train(self, replay_buffer, batch_size=64):
        self.total_it += 1

        # Sample replay buffer
        state, action, next_state, reward, not_done = replay_buffer.sample(batch_size)

        with torch.no_grad():
            # Select action according to policy and add clipped noise
            noise = (
                torch.randn_like(action) * self.policy_noise
            ).clamp(-self.noise_clip, self.noise_clip)

            next_action = (
                self.actor_target(next_state) + noise
            ).clamp(-self.max_action, self.max_action)

            # Compute the target Q value
            target_Q1, target_Q2 = self.critic_target(next_state, next_action)
            target_Q = torch.min(target_Q1, target_Q2)
            target_Q = reward + not_done * self.discount * target_Q

        # Get current Q estimates
        current_Q1, current_Q2 = self.critic(state, action)

        # Compute critic loss
        critic_loss = F.mse_loss(current_Q1, target_Q) + F.mse_loss(current_Q2, target_Q)

        # Optimize the critic
        self.critic_optimizer.zero_grad()
        critic_loss.backward()
        self.critic_optimizer.step()

        actor_loss = None
        # Delayed policy updates
        if self.total_it % self.policy_freq == 0:

            # Compute actor losse
            actor_loss = -self.critic.Q1(state, self.actor(state)).mean()

            # Optimize the actor
            self.actor_optimizer.zero_grad()
            actor_loss.backward()
            self.actor_optimizer.step()

            # Update the frozen target models
            for param, target_param in zip(self.critic.parameters(), self.critic_target.parameters()):
                target_param.data.copy_(self.tau * param.data + (1 - self.tau) * target_param.data)

            for param, target_param in zip(self.actor.parameters(), self.actor_target.parameters()):
                target_param.data.copy_(self.tau * param.data + (1 - self.tau) * target_param.data)

        return critic_loss.item(), None if actor_loss is None else actor_loss.item()

    def save(self, filename):
        torch.save(self.critic.state_dict(), filename + "_critic")
        torch.save(self.critic_optimizer.state_dict(), filename + "_critic_optimizer")

        torch.save(self.actor.state_dict(), filename + "_actor")
        torch.save(self.actor_optimizer.state_dict(), filename + "_actor_optimizer")

    def load(self, filename):
        self.critic.load_state_dict(torch.load(filename + "_critic"))
        self.critic_optimizer.load_state_dict(torch.load(filename + "_critic_optimizer"))
        self.critic_target = copy.deepcopy(self.critic)

        self.actor.load_state_dict(torch.load(filename + "_actor"))
        self.actor_optimizer.load_state_dict(torch.load(filename + "_actor_optimizer"))
        self.actor_target = copy.deepcopy(self.actor)


# ---- main.py ----
# Runs policy for X episodes and returns average reward
# A fixed seed is used for the eval environment
def eval_policy(policy, seed, eval_episodes=5):
    eval_env = ReachEnv(seed + 100)

    avg_reward = 0.
    for _ in range(eval_episodes):
        state, done, t = eval_env.reset(), False, 0
        while not done and t < ReachEnv._max_episode_steps:
            action = policy.select_action(np.array(state))
            state, reward, done, _ = eval_env.step(action)
            avg_reward += reward
            t += 1

    avg_reward /= eval_episodes

    print(f"Evaluation over {eval_episodes} episodes: {avg_reward:.3f}")
    return avg_reward


start_timesteps = 250
eval_freq = 500
max_timesteps = 1500
expl_noise = 0.1
batch_size = 64

env = ReachEnv(seed)
state_dim = ReachEnv.state_dim
action_dim = ReachEnv.action_dim
max_action = float(ReachEnv.max_action)

kwargs = {
    "state_dim": state_dim,
    "action_dim": action_dim,
    "max_action": max_action,
    "discount": 0.9,
    "tau": 0.005,
    # Target policy smoothing is scaled wrt the action scale
    "policy_noise": 0.2 * max_action,
    "noise_clip": 0.5 * max_action,
    "policy_freq": 2,
}
policy = TD3(**kwargs)
replay_buffer = ReplayBuffer(state_dim, action_dim)

# Evaluate untrained policy
evaluations = [eval_policy(policy, seed)]

state, done = env.reset(), False
episode_reward = 0
episode_timesteps = 0
episode_num = 0
episode_rewards = []
critic_losses = []
actor_losses = []

for t in range(int(max_timesteps)):

    episode_timesteps += 1

    # Select action randomly or according to policy
    if t < start_timesteps:
        action = np.random.uniform(-max_action, max_action, size=action_dim)
    else:
        action = (
            policy.select_action(np.array(state))
            + np.random.normal(0, max_action * expl_noise, size=action_dim)
        ).clip(-max_action, max_action)

    # Perform action
    next_state, reward, done, _ = env.step(action)
    done_bool = float(done) if episode_timesteps < ReachEnv._max_episode_steps else 0

    # Store data in replay buffer
    replay_buffer.add(state, action, next_state, reward, done_bool)

    state = next_state
    episode_reward += reward

    # Train agent after collecting sufficient data
    if t >= start_timesteps:
        critic_loss, actor_loss = policy.train(replay_buffer, batch_size)
        critic_losses.append(critic_loss)
        if actor_loss is not None:
            actor_losses.append(actor_loss)

    if done or episode_timesteps == ReachEnv._max_episode_steps:
        episode_rewards.append(episode_reward)
        # Reset environment
        state, done = env.reset(), False
        episode_reward = 0
        episode_timesteps = 0
        episode_num += 1

    # Evaluate episode
    if (t + 1) % eval_freq == 0:
        print(f"Total T: {t + 1} Episode Num: {episode_num} Updates: {policy.total_it} "
              f"Reward: {np.mean(episode_rewards[-10:]):.3f} critic_loss {np.mean(critic_losses[-100:]):.4f}")
        evaluations.append(eval_policy(policy, seed))

# save / load into a fresh agent: the loaded one acts as the saved one, its targets are copies
with tempfile.TemporaryDirectory() as tmp:
    file_name = os.path.join(tmp, f"TD3_Reach_{seed}")
    policy.save(file_name)
    fresh = TD3(**kwargs)
    fresh.load(file_name)

probe = np.random.RandomState(seed + 7).uniform(-1, 1, size=(16, state_dim)).astype(np.float32)
with torch.no_grad():
    ours = policy.actor(torch.FloatTensor(probe))
    theirs = fresh.actor(torch.FloatTensor(probe))
    their_target = fresh.actor_target(torch.FloatTensor(probe))
    q_ours = policy.critic.Q1(torch.FloatTensor(probe), ours)
    q_theirs, _ = fresh.critic(torch.FloatTensor(probe), theirs)
loaded_agrees = int(torch.equal(ours, theirs) and torch.equal(ours, their_target) and torch.equal(q_ours, q_theirs))
adam_steps = fresh.actor_optimizer.state_dict()["state"][0]["step"]
in_bounds = int(bool((ours.abs() <= max_action).all()))
# the targets trail the online nets: polyak with tau = 0.005 every other update
target_gap = sum(float((p - tp).abs().mean()) for p, tp in
                 zip(policy.critic.parameters(), policy.critic_target.parameters()))
print(f"loaded agent agrees {loaded_agrees} actor Adam steps {int(adam_steps)} actions in bounds {in_bounds}")

print(f"FINAL first_eval={evaluations[0]:.4f} final_eval={evaluations[-1]:.4f} "
      f"critic_loss={np.mean(critic_losses[-100:]):.4f} actor_loss={np.mean(actor_losses[-50:]):.4f} "
      f"target_gap={target_gap:.4f} loaded_agrees={loaded_agrees}")
