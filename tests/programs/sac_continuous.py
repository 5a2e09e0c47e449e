"""Soft Actor-Critic as Spinning Up's ``sac/core.py`` + ``sac/sac.py`` write it (with pranz24's
automatic entropy tuning) on a tiny continuous task written in NumPy (no gym): ``mlp(sizes,
activation)`` of ``nn.Linear`` + ``nn.ReLU`` into ``nn.Sequential(*layers)``, twin ``MLPQFunction``s
on ``torch.cat([obs, act], dim=-1)`` squeezed by ``torch.squeeze(q, -1)``, a
``SquashedGaussianMLPActor`` (``torch.clamp(log_std, LOG_STD_MIN, LOG_STD_MAX)``,
``Normal(mu, std).rsample()``, ``log_prob(a).sum(axis=-1)`` corrected by
``(2*(np.log(2) - a - F.softplus(-2*a))).sum(axis=1)``, ``torch.tanh``), ``deepcopy`` target
networks frozen by ``p.requires_grad = False``, ``itertools.chain`` of both Q networks' parameters
into one ``Adam``, a NumPy ``ReplayBuffer`` read back by ``torch.as_tensor(v, dtype=torch.float32)``,
Bellman backups under ``torch.no_grad()`` with ``torch.min(q1_pi_targ, q2_pi_targ)``, Q parameters
frozen during the policy step, ``log_alpha = torch.zeros(1, requires_grad=True)`` with its own
``Adam`` and ``-(log_alpha * (logp_pi + target_entropy).detach()).mean()``, and polyak averaging
``p_targ.data.mul_(polyak); p_targ.data.add_((1 - polyak) * p.data)``.
"""

import itertools
import os
import random
import time
from copy import deepcopy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions.normal import Normal
from torch.optim import Adam

seed = int(os.environ.get("PROGRAM_SEED", "0"))
random.seed(seed)
np.random.seed(seed)
torch.manual_seed(seed)


class GoalReachEnv:
    """A point on a line steered towards a goal: obs (position, goal - position, last action), the
    action in [-1, 1] moves the point; the reward is minus the distance, minus a little effort."""

    obs_dim = 3
    act_dim = 1
    act_limit = 1.0
    max_ep_len = 20

    def __init__(self, seed):
        self.rng = np.random.RandomState(seed)

    def _obs(self):
        return np.array([self.x, self.goal - self.x, self.v], dtype=np.float32)

    def reset(self):
        self.x = self.rng.uniform(-1.0, 1.0)
        self.goal = self.rng.uniform(-1.0, 1.0)
        self.v = 0.0
        self.t = 0
        return self._obs()

    def step(self, a):
        a = float(np.clip(a[0], -self.act_limit, self.act_limit))
        self.v = a
        self.x = self.x + 0.25 * a
        self.t += 1
        r = -4.0 * abs(self.goal - self.x) - 0.1 * a * a
        d = abs(self.x) > 3.0
        return self._obs(), r, d, {}


# ---- core.py ----
def combined_shape(length, shape=None):
    if shape is None:
        return (length,)
    return (length, shape) if np.isscalar(shape) else (length, *shape)


def mlp(sizes, activation, output_activation=nn.Identity):
    layers = []
    for j in range(len(sizes) - 1):
        act = activation if j < len(sizes) - 2 else output_activation
        layers += [nn.Linear(sizes[j], sizes[j + 1]), act()]
    return nn.Sequential(*layers)


def count_vars(module):
    return sum([np.prod(p.shape) for p in module.parameters()])


LOG_STD_MAX = 2
LOG_STD_MIN = -20


class SquashedGaussianMLPActor(nn.Module):

    def __init__(self, obs_dim, act_dim, hidden_sizes, activation, act_limit):
        super().__init__()
        self.net = mlp([obs_dim] + list(hidden_sizes), activation, activation)
        self.mu_layer = nn.Linear(hidden_sizes[-1], act_dim)
        self.log_std_layer = nn.Linear(hidden_sizes[-1], act_dim)
        self.act_limit = act_limit

    def forward(self, obs, deterministic=False, with_logprob=True):
        net_out = self.net(obs)
        mu = self.mu_layer(net_out)
        log_std = self.log_std_layer(net_out)
        log_std = torch.clamp(log_std, LOG_STD_MIN, LOG_STD_MAX)
        std = torch.exp(log_std)

        # Pre-squash distribution and sample
        pi_distribution = Normal(mu, std)
        if deterministic:
            # Only used for evaluating policy at test time.
            pi_action = mu
        else:
            pi_action = pi_distribution.rsample()

        if with_logprob:
            # Compute logprob from Gaussian, and then apply correction for Tanh squashing.
            # NOTE: The correction formula is a little bit magic. To get an understanding
            # of where it comes from, check out the original SAC paper (arXiv 1801.01290)
            # and look in appendix C. This is a more numerically-stable equivalent to Eq 21.
            logp_pi = pi_distribution.log_prob(pi_action).sum(axis=-1)
            logp_pi -= (2 * (np.log(2) - pi_action - F.softplus(-2 * pi_action))).sum(axis=1)
        else:
            logp_pi = None

        pi_action = torch.tanh(pi_action)
        pi_action = self.act_limit * pi_action

        return pi_action, logp_pi


class MLPQFunction(nn.Module):

    def __init__(self, obs_dim, act_dim, hidden_sizes, activation):
        super().__init__()
        self.q = mlp([obs_dim + act_dim] + list(hidden_sizes) + [1], activation)

    def forward(self, obs, act):
        q = self.q(torch.cat([obs, act], dim=-1))
        return torch.squeeze(q, -1)  # Critical to ensure q has right shape.


class MLPActorCritic(nn.Module):

    def __init__(self, obs_dim, act_dim, act_limit, hidden_sizes=(32, 32), activation=nn.ReLU):
        super().__init__()
        # build policy and value functions
        self.pi = SquashedGaussianMLPActor(obs_dim, act_dim, hidden_sizes, activation, act_limit)
        self.q1 = MLPQFunction(obs_dim, act_dim, hidden_sizes, activation)
        self.q2 = MLPQFunction(obs_dim, act_dim, hidden_sizes, activation)

    def act(self, obs, deterministic=False):
        with torch.no_grad():
            a, _ = self.pi(obs, deterministic, False)
            return a.numpy()


# ---- sac.py ----
class ReplayBuffer:
    """
    A simple FIFO experience replay buffer for SAC agents.
    """

    def __init__(self, obs_dim, act_dim, size):
        self.obs_buf = np.zeros(combined_shape(size, obs_dim), dtype=np.float32)
        self.obs2_buf = np.zeros(combined_shape(size, obs_dim), dtype=np.float32)
        self.act_buf = np.zeros(combined_shape(size, act_dim), dtype=np.float32)
        self.rew_buf = np.zeros(size, dtype=np.float32)
        self.done_buf = np.zeros(size, dtype=np.float32)
        self.ptr, self.size, self.max_size = 0, 0, size

    def store(self, obs, act, rew, next_obs, done):
        self.obs_buf[self.ptr] = obs
        self.obs2_buf[self.ptr] = next_obs
        self.act_buf[self.ptr] = act
        self.rew_buf[self.ptr] = rew
        self.done_buf[self.ptr] = done
        self.ptr = (self.ptr + 1) % self.max_size
        self.size = min(self.size + 1, self.max_size)

    def sample_batch(self, batch_size=32):
        idxs = np.random.randint(0, self.size, size=batch_size)
        batch = dict(obs=self.obs_buf[idxs],
                     obs2=self.obs2_buf[idxs],
                     act=self.act_buf[idxs],
                     rew=self.rew_buf[idxs],
                     done=self.done_buf[idxs])
        return {k: torch.as_tensor(v, dtype=torch.float32) for k, v in batch.items()}


steps_per_epoch = 120
epochs = 3
replay_size = int(1e4)
gamma = 0.9
polyak = 0.995
lr = 3e-3
batch_size = 32
start_steps = 100
update_after = 60
update_every = 20
num_test_episodes = 4

env, test_env = GoalReachEnv(seed), GoalReachEnv(seed + 100)
obs_dim = env.obs_dim
act_dim = env.act_dim
act_limit = env.act_limit

# Create actor-critic module and target networks
ac = MLPActorCritic(obs_dim, act_dim, act_limit)
ac_targ = deepcopy(ac)

# Freeze target networks with respect to optimizers (only update via polyak averaging)
for p in ac_targ.parameters():
    p.requires_grad = False

# List of parameters for both Q-networks (save this for convenience)
q_params = list(itertools.chain(ac.q1.parameters(), ac.q2.parameters()))

# Experience buffer
replay_buffer = ReplayBuffer(obs_dim=obs_dim, act_dim=act_dim, size=replay_size)

var_counts = tuple(count_vars(module) for module in [ac.pi, ac.q1, ac.q2])
print('Number of parameters: \t pi: %d, \t q1: %d, \t q2: %d' % var_counts)  # noqa: UP031  (Spinning Up's own line)

# pranz24's automatic entropy tuning: target entropy = -|A|
target_entropy = -torch.prod(torch.Tensor((act_dim,))).item()
log_alpha = torch.zeros(1, requires_grad=True)
alpha_optim = Adam([log_alpha], lr=lr)
alpha = log_alpha.exp().item()
print(f"target entropy {target_entropy:.1f} alpha {alpha:.3f}")


# Set up function for computing SAC Q-losses
def compute_loss_q(data):
    o, a, r, o2, d = data['obs'], data['act'], data['rew'], data['obs2'], data['done']

    q1 = ac.q1(o, a)
    q2 = ac.q2(o, a)

    # Bellman backup for Q functions
    with torch.no_grad():
        # Target actions come from *current* policy
        a2, logp_a2 = ac.pi(o2)

        # Target Q-values
        q1_pi_targ = ac_targ.q1(o2, a2)
        q2_pi_targ = ac_targ.q2(o2, a2)
        q_pi_targ = torch.min(q1_pi_targ, q2_pi_targ)
        backup = r + gamma * (1 - d) * (q_pi_targ - alpha * logp_a2)

    # MSE loss against Bellman backup
    loss_q1 = ((q1 - backup) ** 2).mean()
    loss_q2 = ((q2 - backup) ** 2).mean()
    loss_q = loss_q1 + loss_q2

    # Useful info for logging
    q_info = dict(Q1Vals=q1.detach().numpy(),
                  Q2Vals=q2.detach().numpy())

    return loss_q, q_info


# Set up function for computing SAC pi loss
def compute_loss_pi(data):
    o = data['obs']
    pi, logp_pi = ac.pi(o)
    q1_pi = ac.q1(o, pi)
    q2_pi = ac.q2(o, pi)
    q_pi = torch.min(q1_pi, q2_pi)

    # Entropy-regularized policy loss
    loss_pi = (alpha * logp_pi - q_pi).mean()

    # Useful info for logging
    pi_info = dict(LogPi=logp_pi.detach().numpy())

    return loss_pi, logp_pi, pi_info


# Set up optimizers for policy and q-function
pi_optimizer = Adam(ac.pi.parameters(), lr=lr)
q_optimizer = Adam(itertools.chain(ac.q1.parameters(), ac.q2.parameters()), lr=lr)


def update(data):
    global alpha
    # First run one gradient descent step for Q1 and Q2
    q_optimizer.zero_grad()
    loss_q, q_info = compute_loss_q(data)
    loss_q.backward()
    q_optimizer.step()

    # Freeze Q-networks so you don't waste computational effort
    # computing gradients for them during the policy learning step.
    for p in q_params:
        p.requires_grad = False

    # Next run one gradient descent step for pi.
    pi_optimizer.zero_grad()
    loss_pi, logp_pi, pi_info = compute_loss_pi(data)
    loss_pi.backward()
    pi_optimizer.step()

    # Unfreeze Q-networks so you can optimize it at next DDPG step.
    for p in q_params:
        p.requires_grad = True

    # pranz24: alpha follows the policy's entropy towards the target
    alpha_loss = -(log_alpha * (logp_pi + target_entropy).detach()).mean()
    alpha_optim.zero_grad()
    alpha_loss.backward()
    alpha_optim.step()
    alpha = log_alpha.exp().item()

    # Finally, update target networks by polyak averaging.
    with torch.no_grad():
        for p, p_targ in zip(ac.parameters(), ac_targ.parameters()):
            # NB: We use an in-place operations "mul_", "add_" to update target
            # params, as opposed to "mul" and "add", which would make new tensors.
            p_targ.data.mul_(polyak)
            p_targ.data.add_((1 - polyak) * p.data)

    return loss_q.item(), loss_pi.item(), alpha_loss.item(), q_info, pi_info


def get_action(o, deterministic=False):
    return ac.act(torch.as_tensor(o, dtype=torch.float32), deterministic)


def test_agent():
    returns = []
    for _ in range(num_test_episodes):
        o, d, ep_ret, ep_len = test_env.reset(), False, 0, 0
        while not (d or (ep_len == GoalReachEnv.max_ep_len)):
            # Take deterministic actions at test time
            o, r, d, _ = test_env.step(get_action(o, True))
            ep_ret += r
            ep_len += 1
        returns.append(ep_ret)
    return float(np.mean(returns))


# Prepare for interaction with environment
total_steps = steps_per_epoch * epochs
start_time = time.time()
o, ep_ret, ep_len = env.reset(), 0, 0
ep_returns = []
first_test = test_agent()
print(f"untrained test return {first_test:.3f}")

# Main loop: collect experience in env and update/log each epoch
for t in range(total_steps):
    # Until start_steps have elapsed, randomly sample actions
    # from a uniform distribution for better exploration. Afterwards,
    # use the learned policy.
    if t > start_steps:
        a = get_action(o)
    else:
        a = np.random.uniform(-act_limit, act_limit, size=act_dim).astype(np.float32)

    # Step the env
    o2, r, d, _ = env.step(a)
    ep_ret += r
    ep_len += 1

    # Ignore the "done" signal if it comes from hitting the time
    # horizon (that is, when it's an artificial terminal signal
    # that isn't based on the agent's state)
    d = False if ep_len == GoalReachEnv.max_ep_len else d

    # Store experience to replay buffer
    replay_buffer.store(o, a, r, o2, d)

    # Super critical, easy to overlook step: make sure to update
    # most recent observation!
    o = o2

    # End of trajectory handling
    if d or (ep_len == GoalReachEnv.max_ep_len):
        ep_returns.append(ep_ret)
        o, ep_ret, ep_len = env.reset(), 0, 0

    # Update handling
    if t >= update_after and t % update_every == 0:
        for j in range(update_every):  # noqa: B007  (Spinning Up's own loop)
            batch = replay_buffer.sample_batch(batch_size)
            loss_q, loss_pi, alpha_loss, q_info, pi_info = update(data=batch)

    # End of epoch handling
    if (t + 1) % steps_per_epoch == 0:
        epoch = (t + 1) // steps_per_epoch
        test_ret = test_agent()
        print(f"epoch {epoch} steps {t + 1} buffer {replay_buffer.size} episodes {len(ep_returns)} "
              f"ep_ret {np.mean(ep_returns[-8:]):.3f} test_ret {test_ret:.3f} loss_q {loss_q:.4f} "
              f"loss_pi {loss_pi:.4f} alpha {alpha:.4f} q1 {np.mean(q_info['Q1Vals']):.3f} "
              f"logpi {np.mean(pi_info['LogPi']):.3f}")

# the frozen-Q policy step: grads of the Q nets are not touched by loss_pi.backward()
for p in q_params:
    p.grad = None
for p in q_params:
    p.requires_grad = False
loss_pi, logp_pi, _ = compute_loss_pi(replay_buffer.sample_batch(batch_size))
loss_pi.backward()
q_untouched = all(p.grad is None for p in q_params)
pi_has_grad = all(p.grad is not None for p in ac.pi.parameters())
for p in q_params:
    p.requires_grad = True
print(f"policy step with frozen Q: q grads none {q_untouched} pi grads {pi_has_grad}")

# target networks follow by polyak averaging and never got a gradient
targ_gap = max((p - p_targ).abs().max().item() for p, p_targ in zip(ac.parameters(), ac_targ.parameters()))
targ_requires_grad = any(p.requires_grad for p in ac_targ.parameters())
print(f"target requires grad {targ_requires_grad} target grads none {all(p.grad is None for p in ac_targ.parameters())}")

# the squashed log-prob correction equals the textbook log(1 - tanh(u)^2)
u = torch.linspace(-3, 3, 7).unsqueeze(1)
stable = (2 * (np.log(2) - u - F.softplus(-2 * u))).sum(axis=1)
naive = torch.log(1 - torch.tanh(u) ** 2).sum(axis=1)
print(f"tanh correction matches {torch.allclose(stable, naive, atol=1e-5)}")

final_test = test_agent()
print(f"FINAL first_test={first_test:.4f} final_test={final_test:.4f} last_ep_ret={np.mean(ep_returns[-8:]):.4f} "
      f"alpha={alpha:.4f} targ_gap={targ_gap:.4f}")
