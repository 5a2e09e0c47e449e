"""CleanRL's ppo_continuous_action.py on a tiny point-mass task written in NumPy (no gym):
``layer_init`` with ``torch.nn.init.orthogonal_(layer.weight, std)`` + ``constant_(bias, 0)``,
an actor mean with a state-independent log-std ``nn.Parameter(torch.zeros(1, act_dim))`` taken
``expand_as`` the mean, ``Normal(action_mean, action_std)``, ``log_prob(a).sum(1)`` and
``entropy().sum(1)``, rollout buffers ``torch.zeros((num_steps, num_envs) + obs_shape)``, GAE
computed backwards over ``reversed(range(num_steps))``, minibatches by ``np.arange`` +
``np.random.shuffle``, ``logratio.exp()``, ``torch.clamp(ratio, 1 - clip, 1 + clip)``,
``torch.max(pg_loss1, pg_loss2).mean()``, approx KL ``((ratio - 1) - logratio).mean()``,
clip fractions, a clipped value loss, ``nn.utils.clip_grad_norm_``, ``Adam(eps=1e-5)`` with the
learning rate annealed through ``optimizer.param_groups[0]["lr"]``, explained variance.
"""

import os
import random
import time

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from torch.distributions.normal import Normal

seed = int(os.environ.get("PROGRAM_SEED", "0"))
random.seed(seed)
np.random.seed(seed)
torch.manual_seed(seed)
torch.backends.cudnn.deterministic = True

# args (the CleanRL dataclass, shrunk)
num_envs = 4
num_steps = 32
total_timesteps = 4096
learning_rate = 3e-3
anneal_lr = True
gamma = 0.9
gae_lambda = 0.95
num_minibatches = 4
update_epochs = 4
norm_adv = True
clip_coef = 0.2
clip_vloss = True
ent_coef = 0.0
vf_coef = 0.5
max_grad_norm = 0.5
target_kl = None
cuda = False
batch_size = int(num_envs * num_steps)
minibatch_size = int(batch_size // num_minibatches)
num_iterations = total_timesteps // batch_size
device = torch.device("cuda" if torch.cuda.is_available() and cuda else "cpu")


class PointMassVecEnv:
    """num_envs points on a plane, each with a goal; the action moves the point, the reward is minus
    the distance to the goal."""

    single_observation_space_shape = (4,)
    single_action_space_shape = (2,)
    max_steps = 16

    def __init__(self, n, seed):
        self.n = n
        self.rng = np.random.RandomState(seed)
        self.pos = np.zeros((n, 2))
        self.goal = np.zeros((n, 2))
        self.t = np.zeros(n, dtype=np.int64)

    def _obs(self):
        return np.concatenate([self.pos, self.goal - self.pos], axis=1).astype(np.float32)

    def _reset_idx(self, idx):
        self.pos[idx] = self.rng.uniform(-1.0, 1.0, size=(len(idx), 2))
        self.goal[idx] = self.rng.uniform(-1.0, 1.0, size=(len(idx), 2))
        self.t[idx] = 0

    def reset(self, seed=None):
        self._reset_idx(np.arange(self.n))
        return self._obs(), {}

    def step(self, action):
        action = np.clip(action, -1.0, 1.0)
        self.pos = self.pos + 0.2 * action
        self.t += 1
        distance = np.linalg.norm(self.goal - self.pos, axis=1)
        reward = -distance
        terminations = distance > 4.0
        truncations = self.t >= self.max_steps
        done = np.logical_or(terminations, truncations)
        if done.any():
            self._reset_idx(np.nonzero(done)[0])
        return self._obs(), reward.astype(np.float32), terminations, truncations, {}


def layer_init(layer, std=np.sqrt(2), bias_const=0.0):
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    def __init__(self, envs):
        super().__init__()
        obs_dim = np.array(envs.single_observation_space_shape).prod()
        act_dim = np.prod(envs.single_action_space_shape)
        self.critic = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 32)),
            nn.Tanh(),
            layer_init(nn.Linear(32, 32)),
            nn.Tanh(),
            layer_init(nn.Linear(32, 1), std=1.0),
        )
        self.actor_mean = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 32)),
            nn.Tanh(),
            layer_init(nn.Linear(32, 32)),
            nn.Tanh(),
            layer_init(nn.Linear(32, act_dim), std=0.01),
        )
        self.actor_logstd = nn.Parameter(torch.zeros(1, act_dim))

    def get_value(self, x):
        return self.critic(x)

    def get_action_and_value(self, x, action=None):
        action_mean = self.actor_mean(x)
        action_logstd = self.actor_logstd.expand_as(action_mean)
        action_std = torch.exp(action_logstd)
        probs = Normal(action_mean, action_std)
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action).sum(1), probs.entropy().sum(1), self.critic(x)


envs = PointMassVecEnv(num_envs, seed)
agent = Agent(envs).to(device)
optimizer = optim.Adam(agent.parameters(), lr=learning_rate, eps=1e-5)
print(f"agent parameters {sum(p.numel() for p in agent.parameters())}")
print(f"orthogonal init: W W^T = I {torch.allclose(agent.critic[0].weight.T @ agent.critic[0].weight, 2.0 * torch.eye(4), atol=1e-4)}")

# ALGO Logic: Storage setup
obs = torch.zeros((num_steps, num_envs) + envs.single_observation_space_shape).to(device)
actions = torch.zeros((num_steps, num_envs) + envs.single_action_space_shape).to(device)
logprobs = torch.zeros((num_steps, num_envs)).to(device)
rewards = torch.zeros((num_steps, num_envs)).to(device)
dones = torch.zeros((num_steps, num_envs)).to(device)
values = torch.zeros((num_steps, num_envs)).to(device)
print(f"buffers obs {tuple(obs.shape)} actions {tuple(actions.shape)} logprobs {tuple(logprobs.shape)}")

global_step = 0
start_time = time.time()
next_obs, _ = envs.reset(seed=seed)
next_obs = torch.Tensor(next_obs).to(device)
next_done = torch.zeros(num_envs).to(device)
first_return = last_return = None

for iteration in range(1, num_iterations + 1):
    # Annealing the rate if instructed to do so.
    if anneal_lr:
        frac = 1.0 - (iteration - 1.0) / num_iterations
        lrnow = frac * learning_rate
        optimizer.param_groups[0]["lr"] = lrnow

    for step in range(0, num_steps):
        global_step += num_envs
        obs[step] = next_obs
        dones[step] = next_done

        # ALGO LOGIC: action logic
        with torch.no_grad():
            action, logprob, _, value = agent.get_action_and_value(next_obs)
            values[step] = value.flatten()
        actions[step] = action
        logprobs[step] = logprob

        next_obs, reward, terminations, truncations, infos = envs.step(action.cpu().numpy())
        next_done = np.logical_or(terminations, truncations)
        rewards[step] = torch.tensor(reward).to(device).view(-1)
        next_obs, next_done = torch.Tensor(next_obs).to(device), torch.Tensor(next_done).to(device)

    # bootstrap value if not done
    with torch.no_grad():
        next_value = agent.get_value(next_obs).reshape(1, -1)
        advantages = torch.zeros_like(rewards).to(device)
        lastgaelam = 0
        for t in reversed(range(num_steps)):
            if t == num_steps - 1:
                nextnonterminal = 1.0 - next_done
                nextvalues = next_value
            else:
                nextnonterminal = 1.0 - dones[t + 1]
                nextvalues = values[t + 1]
            delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
            advantages[t] = lastgaelam = delta + gamma * gae_lambda * nextnonterminal * lastgaelam
        returns = advantages + values

    # flatten the batch
    b_obs = obs.reshape((-1,) + envs.single_observation_space_shape)
    b_logprobs = logprobs.reshape(-1)
    b_actions = actions.reshape((-1,) + envs.single_action_space_shape)
    b_advantages = advantages.reshape(-1)
    b_returns = returns.reshape(-1)
    b_values = values.reshape(-1)

    # Optimizing the policy and value network
    b_inds = np.arange(batch_size)
    clipfracs = []
    for _epoch in range(update_epochs):
        np.random.shuffle(b_inds)
        for start in range(0, batch_size, minibatch_size):
            end = start + minibatch_size
            mb_inds = b_inds[start:end]

            _, newlogprob, entropy, newvalue = agent.get_action_and_value(b_obs[mb_inds], b_actions[mb_inds])
            logratio = newlogprob - b_logprobs[mb_inds]
            ratio = logratio.exp()

            with torch.no_grad():
                # calculate approx_kl http://joschu.net/blog/kl-approx.html
                old_approx_kl = (-logratio).mean()
                approx_kl = ((ratio - 1) - logratio).mean()
                clipfracs += [((ratio - 1.0).abs() > clip_coef).float().mean().item()]

            mb_advantages = b_advantages[mb_inds]
            if norm_adv:
                mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)

            # Policy loss
            pg_loss1 = -mb_advantages * ratio
            pg_loss2 = -mb_advantages * torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef)
            pg_loss = torch.max(pg_loss1, pg_loss2).mean()

            # Value loss
            newvalue = newvalue.view(-1)
            if clip_vloss:
                v_loss_unclipped = (newvalue - b_returns[mb_inds]) ** 2
                v_clipped = b_values[mb_inds] + torch.clamp(
                    newvalue - b_values[mb_inds],
                    -clip_coef,
                    clip_coef,
                )
                v_loss_clipped = (v_clipped - b_returns[mb_inds]) ** 2
                v_loss_max = torch.max(v_loss_unclipped, v_loss_clipped)
                v_loss = 0.5 * v_loss_max.mean()
            else:
                v_loss = 0.5 * ((newvalue - b_returns[mb_inds]) ** 2).mean()

            entropy_loss = entropy.mean()
            loss = pg_loss - ent_coef * entropy_loss + v_loss * vf_coef

            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(agent.parameters(), max_grad_norm)
            optimizer.step()

        if target_kl is not None and approx_kl > target_kl:
            break

    y_pred, y_true = b_values.cpu().numpy(), b_returns.cpu().numpy()
    var_y = np.var(y_true)
    explained_var = np.nan if var_y == 0 else 1 - np.var(y_true - y_pred) / var_y

    mean_reward = rewards.mean().item()
    if first_return is None:
        first_return = mean_reward
    last_return = mean_reward
    if iteration % 8 == 0:
        print(f"iteration {iteration} global_step {global_step} lr {optimizer.param_groups[0]['lr']:.5f} "
              f"reward {mean_reward:.4f} v_loss {v_loss.item():.4f} pg_loss {pg_loss.item():.4f} "
              f"approx_kl {approx_kl.item():.5f} clipfrac {np.mean(clipfracs):.4f} "
              f"explained_variance {explained_var:.4f} std {agent.actor_logstd.exp().mean().item():.4f}")

# evaluate the deterministic policy (the mean action) from fixed starts
eval_env = PointMassVecEnv(16, 1234)
o, _ = eval_env.reset()
eval_reward = 0.0
with torch.no_grad():
    for _ in range(30):
        a = agent.actor_mean(torch.Tensor(o))
        o, r, _, _, _ = eval_env.step(a.numpy())
        eval_reward += float(r.mean())
print(f"FINAL first_reward={first_return:.4f} last_reward={last_return:.4f} eval_reward={eval_reward / 30:.4f} "
      f"logstd={agent.actor_logstd.mean().item():.4f}")
