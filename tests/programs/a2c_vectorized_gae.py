"""Synchronous A2C as ikostrikov/pytorch-a2c-ppo-acktr-gail (``a2c_ppo_acktr/algo/a2c_acktr.py``,
``storage.py``, ``model.py``, ``utils.py``) and Stable-Baselines' ``VecNormalize`` write it, on a
batch of NumPy cart-poles stepped together with auto-reset (no gym): ``init(module,
nn.init.orthogonal_, lambda x: nn.init.constant_(x, 0), np.sqrt(2))`` layers, a ``RunningMeanStd``
``nn.Module`` whose ``register_buffer`` mean, var and count are updated in place under
``torch.no_grad()`` by the parallel-variance formula (``copy_``, ``add_``) and normalise
observations with ``clamp(-10, 10)``, a ``RolloutStorage`` of ``torch.zeros(num_steps + 1,
num_processes, ...)`` buffers with ``masks``/``bad_masks`` from ``torch.FloatTensor([[0.0] if done
else [1.0] ...])``, GAE over ``reversed(range(self.rewards.size(0)))``, ``Categorical(logits=...)``
with ``sample().unsqueeze(-1)``, ``log_prob(actions.squeeze(-1))`` and ``entropy().mean()``,
``value_loss * value_loss_coef + action_loss - dist_entropy * entropy_coef``,
``nn.utils.clip_grad_norm_``, ``optim.RMSprop(lr, eps=1e-5, alpha=0.99)`` under a ``LinearLR``
schedule, and the normaliser's buffers travelling in ``state_dict`` to a frozen evaluation copy.
"""
# ruff: noqa: UP004, UP039  (the repository's spelling: class RolloutStorage(object), class A2C())

import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from torch.distributions import Categorical

seed = int(os.environ.get("PROGRAM_SEED", "0"))
np.random.seed(seed)
torch.manual_seed(seed)

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")


class VecCartPole:
    """``num_envs`` cart-poles (gym's CartPole-v1 dynamics) stepped as one NumPy batch; an env that
    finishes (pole past 12 degrees, cart out of the track, or ``max_steps``) is reset in place and
    its new first observation returned, as gym's vector envs do."""

    obs_dim = 4
    n_actions = 2
    max_steps = 200

    def __init__(self, num_envs, seed):
        self.num_envs = num_envs
        self.rng = np.random.RandomState(seed)
        self.gravity, self.masspole, self.total_mass = 9.8, 0.1, 1.1
        self.length, self.force_mag, self.tau = 0.5, 10.0, 0.02
        self.polemass_length = self.masspole * self.length

    def reset(self):
        self.state = self.rng.uniform(-0.05, 0.05, size=(self.num_envs, 4))
        self.steps = np.zeros(self.num_envs, dtype=np.int64)
        return self.state.astype(np.float32)

    def step(self, actions):
        x, x_dot, theta, theta_dot = self.state.T
        force = np.where(actions == 1, self.force_mag, -self.force_mag)
        costheta, sintheta = np.cos(theta), np.sin(theta)
        temp = (force + self.polemass_length * theta_dot ** 2 * sintheta) / self.total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * costheta ** 2 / self.total_mass))
        xacc = temp - self.polemass_length * thetaacc * costheta / self.total_mass
        x = x + self.tau * x_dot
        x_dot = x_dot + self.tau * xacc
        theta = theta + self.tau * theta_dot
        theta_dot = theta_dot + self.tau * thetaacc
        self.state = np.stack([x, x_dot, theta, theta_dot], axis=1)
        self.steps += 1
        terminated = (np.abs(x) > 2.4) | (np.abs(theta) > 12 * 2 * np.pi / 360)
        truncated = self.steps >= self.max_steps
        done = terminated | truncated
        rewards = np.ones(self.num_envs, dtype=np.float32)
        infos = [{"bad_transition": bool(tr and not te)} for te, tr in zip(terminated, truncated)]
        if done.any():
            n = int(done.sum())
            self.state[done] = self.rng.uniform(-0.05, 0.05, size=(n, 4))
            self.steps[done] = 0
        return self.state.astype(np.float32), rewards, done, infos


# ---- utils.py ----
def init(module, weight_init, bias_init, gain=1):
    weight_init(module.weight.data, gain=gain)
    bias_init(module.bias.data)
    return module


def current_lr(optimizer):
    return optimizer.param_groups[0]["lr"]


class RunningMeanStd(nn.Module):
    """Running mean and variance of observations in float64 buffers (so they are saved with the
    model and move with ``.to``), merged batch by batch with Chan et al.'s parallel formula."""

    def __init__(self, shape, epsilon=1e-4, clip=10.0):
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(epsilon, dtype=torch.float64))
        self.clip = clip

    @torch.no_grad()
    def update(self, x):
        x = x.double()
        batch_mean = x.mean(dim=0)
        batch_var = x.var(dim=0, unbiased=False)
        batch_count = x.shape[0]

        delta = batch_mean - self.mean
        tot_count = self.count + batch_count
        m_a = self.var * self.count
        m_b = batch_var * batch_count
        m2 = m_a + m_b + delta.pow(2) * self.count * batch_count / tot_count

        self.mean.add_(delta * batch_count / tot_count)
        self.var.copy_(m2 / tot_count)
        self.count.add_(batch_count)

    def forward(self, x):
        if self.training:
            self.update(x)
        return ((x - self.mean) / torch.sqrt(self.var + 1e-8)).clamp(-self.clip, self.clip).float()


# ---- model.py ----
class MLPBase(nn.Module):
    def __init__(self, num_inputs, hidden_size=64):
        super().__init__()

        def init_(m):
            return init(m, nn.init.orthogonal_, lambda x: nn.init.constant_(x, 0), np.sqrt(2))

        self.actor = nn.Sequential(
            init_(nn.Linear(num_inputs, hidden_size)), nn.Tanh(),
            init_(nn.Linear(hidden_size, hidden_size)), nn.Tanh())

        self.critic = nn.Sequential(
            init_(nn.Linear(num_inputs, hidden_size)), nn.Tanh(),
            init_(nn.Linear(hidden_size, hidden_size)), nn.Tanh())

        self.critic_linear = init_(nn.Linear(hidden_size, 1))

    def forward(self, inputs):
        hidden_critic = self.critic(inputs)
        hidden_actor = self.actor(inputs)
        return self.critic_linear(hidden_critic), hidden_actor


class Policy(nn.Module):
    def __init__(self, obs_dim, num_actions, hidden_size=64):
        super().__init__()
        self.obs_rms = RunningMeanStd(obs_dim)
        self.base = MLPBase(obs_dim, hidden_size)
        self.dist_linear = init(nn.Linear(hidden_size, num_actions), nn.init.orthogonal_,
                                lambda x: nn.init.constant_(x, 0), gain=0.01)

    def _dist(self, inputs):
        value, actor_features = self.base(self.obs_rms(inputs))
        return value, Categorical(logits=self.dist_linear(actor_features))

    def act(self, inputs, deterministic=False):
        value, dist = self._dist(inputs)
        if deterministic:
            action = dist.probs.argmax(dim=-1, keepdim=True)
        else:
            action = dist.sample().unsqueeze(-1)
        action_log_probs = dist.log_prob(action.squeeze(-1)).unsqueeze(-1)
        return value, action, action_log_probs

    def get_value(self, inputs):
        # the bootstrap observation is the next rollout's first one: it updates the statistics then
        with torch.no_grad():
            value, _ = self.base(self._normalise_only(inputs))
        return value

    def _normalise_only(self, inputs):
        rms = self.obs_rms
        return ((inputs - rms.mean) / torch.sqrt(rms.var + 1e-8)).clamp(-rms.clip, rms.clip).float()

    def evaluate_actions(self, inputs, action):
        # the rollout's observations were seen by the normaliser already: normalise, don't update
        value, actor_features = self.base(self._normalise_only(inputs))
        dist = Categorical(logits=self.dist_linear(actor_features))
        action_log_probs = dist.log_prob(action.squeeze(-1)).unsqueeze(-1)
        dist_entropy = dist.entropy().mean()
        return value, action_log_probs, dist_entropy


# ---- storage.py ----
class RolloutStorage(object):
    def __init__(self, num_steps, num_processes, obs_shape):
        self.obs = torch.zeros(num_steps + 1, num_processes, *obs_shape)
        self.rewards = torch.zeros(num_steps, num_processes, 1)
        self.value_preds = torch.zeros(num_steps + 1, num_processes, 1)
        self.returns = torch.zeros(num_steps + 1, num_processes, 1)
        self.action_log_probs = torch.zeros(num_steps, num_processes, 1)
        self.actions = torch.zeros(num_steps, num_processes, 1).long()
        self.masks = torch.ones(num_steps + 1, num_processes, 1)
        # Masks that indicate whether it's a true terminal state or time limit end state
        self.bad_masks = torch.ones(num_steps + 1, num_processes, 1)
        self.num_steps = num_steps
        self.step = 0

    def insert(self, obs, actions, action_log_probs, value_preds, rewards, masks, bad_masks):
        self.obs[self.step + 1].copy_(obs)
        self.actions[self.step].copy_(actions)
        self.action_log_probs[self.step].copy_(action_log_probs)
        self.value_preds[self.step].copy_(value_preds)
        self.rewards[self.step].copy_(rewards)
        self.masks[self.step + 1].copy_(masks)
        self.bad_masks[self.step + 1].copy_(bad_masks)
        self.step = (self.step + 1) % self.num_steps

    def after_update(self):
        self.obs[0].copy_(self.obs[-1])
        self.masks[0].copy_(self.masks[-1])
        self.bad_masks[0].copy_(self.bad_masks[-1])

    def compute_returns(self, next_value, gamma, gae_lambda):
        self.value_preds[-1] = next_value
        gae = 0
        for step in reversed(range(self.rewards.size(0))):
            delta = self.rewards[step] + gamma * self.value_preds[step + 1] * self.masks[step + 1] \
                - self.value_preds[step]
            gae = delta + gamma * gae_lambda * self.masks[step + 1] * gae
            gae = gae * self.bad_masks[step + 1]
            self.returns[step] = gae + self.value_preds[step]


# ---- algo/a2c_acktr.py ----
class A2C():
    def __init__(self, actor_critic, value_loss_coef, entropy_coef, lr=None, eps=None, alpha=None,
                 max_grad_norm=None):
        self.actor_critic = actor_critic
        self.value_loss_coef = value_loss_coef
        self.entropy_coef = entropy_coef
        self.max_grad_norm = max_grad_norm
        self.optimizer = optim.RMSprop(actor_critic.parameters(), lr, eps=eps, alpha=alpha)

    def update(self, rollouts):
        obs_shape = rollouts.obs.size()[2:]
        action_shape = rollouts.actions.size()[-1]
        num_steps, num_processes, _ = rollouts.rewards.size()

        values, action_log_probs, dist_entropy = self.actor_critic.evaluate_actions(
            rollouts.obs[:-1].view(-1, *obs_shape),
            rollouts.actions.view(-1, action_shape))

        values = values.view(num_steps, num_processes, 1)
        action_log_probs = action_log_probs.view(num_steps, num_processes, 1)

        advantages = rollouts.returns[:-1] - values
        value_loss = advantages.pow(2).mean()

        action_loss = -(advantages.detach() * action_log_probs).mean()

        self.optimizer.zero_grad()
        (value_loss * self.value_loss_coef + action_loss - dist_entropy * self.entropy_coef).backward()

        grad_norm = nn.utils.clip_grad_norm_(self.actor_critic.parameters(), self.max_grad_norm)

        self.optimizer.step()

        return value_loss.item(), action_loss.item(), dist_entropy.item(), grad_norm.item()


def evaluate(actor_critic, seed, num_envs=4, steps=200):
    """Deterministic actions on fresh envs with a frozen copy of the normaliser; mean episode length."""
    eval_policy = copy.deepcopy(actor_critic)
    eval_policy.eval()
    envs = VecCartPole(num_envs, seed + 1000)
    obs = torch.from_numpy(envs.reset())
    lengths, current = [], np.zeros(num_envs)
    with torch.no_grad():
        for _ in range(steps):
            _, action, _ = eval_policy.act(obs, deterministic=True)
            obs, _, done, _ = envs.step(action.squeeze(-1).numpy())
            obs = torch.from_numpy(obs)
            current += 1
            for i in np.nonzero(done)[0]:
                lengths.append(current[i])
                current[i] = 0
    lengths.extend(current[current > 0])
    frozen = int(torch.equal(eval_policy.obs_rms.count, actor_critic.obs_rms.count))
    return float(np.mean(lengths)), frozen


# ---- main.py ----
num_processes = 8
num_steps = 5
num_env_steps = 16000
gamma = 0.99
gae_lambda = 0.95
lr = 7e-4
num_updates = num_env_steps // num_steps // num_processes

envs = VecCartPole(num_processes, seed)
actor_critic = Policy(VecCartPole.obs_dim, VecCartPole.n_actions).to(device)
agent = A2C(actor_critic, value_loss_coef=0.5, entropy_coef=0.01, lr=lr, eps=1e-5, alpha=0.99, max_grad_norm=0.5)
scheduler = torch.optim.lr_scheduler.LinearLR(agent.optimizer, start_factor=1.0, end_factor=0.1,
                                              total_iters=num_updates)
print(f"buffers {sorted(k for k, _ in actor_critic.named_buffers())} updates {num_updates}")

first_len, _ = evaluate(actor_critic, seed)
print(f"untrained eval episode length {first_len:.2f}")

rollouts = RolloutStorage(num_steps, num_processes, (VecCartPole.obs_dim,))
obs = torch.from_numpy(envs.reset())
rollouts.obs[0].copy_(obs)

episode_lengths = []
running_length = np.zeros(num_processes)
log = []
for j in range(num_updates):
    for step in range(num_steps):
        # Sample actions
        with torch.no_grad():
            value, action, action_log_prob = actor_critic.act(rollouts.obs[step])

        # Obser reward and next obs
        obs, reward, done, infos = envs.step(action.squeeze(-1).numpy())
        running_length += 1
        for i in np.nonzero(done)[0]:
            episode_lengths.append(running_length[i])
            running_length[i] = 0

        # If done then clean the history of observations.
        masks = torch.FloatTensor([[0.0] if done_ else [1.0] for done_ in done])
        bad_masks = torch.FloatTensor([[0.0] if 'bad_transition' in info.keys() and info['bad_transition']
                                       else [1.0] for info in infos])
        rollouts.insert(torch.from_numpy(obs), action, action_log_prob, value,
                        torch.from_numpy(reward).unsqueeze(1), masks, bad_masks)

    next_value = actor_critic.get_value(rollouts.obs[-1]).detach()
    rollouts.compute_returns(next_value, gamma, gae_lambda)

    value_loss, action_loss, dist_entropy, grad_norm = agent.update(rollouts)
    scheduler.step()
    rollouts.after_update()
    log.append((value_loss, action_loss, dist_entropy, grad_norm))

    if (j + 1) % 100 == 0:
        total_num_steps = (j + 1) * num_processes * num_steps
        recent = np.mean(episode_lengths[-20:]) if episode_lengths else 0.0
        print(f"Updates {j + 1}, num timesteps {total_num_steps}, episodes {len(episode_lengths)} "
              f"mean length {recent:.1f} entropy {np.mean([x[2] for x in log[-100:]]):.4f} "
              f"value loss {np.mean([x[0] for x in log[-100:]]):.4f} lr {current_lr(agent.optimizer):.6f}")

# the normaliser's statistics are buffers: they are saved and loaded with the model
state = actor_critic.state_dict()
restored = Policy(VecCartPole.obs_dim, VecCartPole.n_actions)
restored.load_state_dict(state)
rms_saved = int(all(k in state for k in ("obs_rms.mean", "obs_rms.var", "obs_rms.count"))
                and torch.equal(restored.obs_rms.var, actor_critic.obs_rms.var))
seen = int(actor_critic.obs_rms.count.item())
final_len, frozen = evaluate(actor_critic, seed)
print(f"normaliser saw {seen} observations, saved {rms_saved}, frozen in eval {frozen}; "
      f"obs std {actor_critic.obs_rms.var.sqrt().mean().item():.4f}")
print(f"FINAL first_len={first_len:.4f} final_len={final_len:.4f} train_len={np.mean(episode_lengths[-20:]):.4f} "
      f"entropy={np.mean([x[2] for x in log[-50:]]):.4f} value_loss={np.mean([x[0] for x in log[-50:]]):.4f} "
      f"rms_saved={rms_saved} frozen={frozen}")
