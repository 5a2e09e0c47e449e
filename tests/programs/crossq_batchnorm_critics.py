"""CrossQ (Bhatt et al. 2024): SAC with batch-normalised critics and no target networks, on a point mass.

In the style of the authors' SBX code and its PyTorch port in sb3-contrib (`crossq/policies.py`,
`crossq/crossq.py`, `common/torch_layers.py`): `BatchRenorm` written by hand (`running_mean`/`running_var`/
`num_batches_tracked` buffers by `register_buffer`, batch statistics `x.mean(0)`/`x.var(0, unbiased=False)`,
after `warmup_steps` the renormalisation `r = (batch_std / running_std).detach().clamp(1 / rmax, rmax)`,
`d = ((batch_mean - running_mean) / running_std).detach().clamp(-dmax, dmax)`, running statistics updated in
place under `torch.no_grad()`, the running statistics in `eval()`), critics `Linear -> BatchRenorm -> ReLU`
over `torch.cat([obs, actions], dim=1)` with a normalised input, twin critics returned as a tuple; the critic
update runs the current and next (state, action) batches as one train-mode forward of
`torch.cat([obs, next_obs])`/`torch.cat([actions, next_actions])`, splits back by `torch.split(all_q,
batch_size, dim=0)` (and `chunk`), takes `torch.min(next_q, dim=1, keepdim=True)[0].detach()`; the SAC actor
is a tanh-squashed Gaussian (`Normal(mean, log_std.exp()).rsample()`, `torch.tanh`, the log-prob correction
`- torch.log(1 - action.pow(2) + 1e-6)`, `log_std` clamped to [-20, 2]) updated every `policy_delay` critic
steps with the critic in `eval()` (`set_training_mode(False)`), the entropy coefficient learned as
`log_ent_coef` against `target_entropy = -action_dim`, Adam with `betas=(0.5, 0.999)`; a replay buffer of
NumPy arrays; a vectorised point-mass task written inline (reach a random goal).
Checks: the joint forward's first BatchRenorm normalises by the statistics of `torch.cat` computed by hand
(`var(unbiased=False)`) and moves its running statistics by the momentum rule; `nn.BatchNorm1d` in the same
joint forward (biased variance for the output, unbiased for the running variance); eval-mode outputs use the
running statistics; the joint forward differs from two separate forwards (the point of CrossQ) while the
split by `torch.split` equals `chunk`.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Normal

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

OBS_DIM, ACT_DIM = 4, 2
N_ENVS, HORIZON = 16, 15
ROUNDS = 40
WARMUP_ROUNDS = 4
BATCH_SIZE = 128
GAMMA = 0.9
POLICY_DELAY = 3
LOG_STD_MIN, LOG_STD_MAX = -20, 2


class PointMass:
    """N point masses in [-1, 1]^2, each with its own goal; an action moves by 0.2 * a."""

    def __init__(self, n):
        self.n = n

    def reset(self):
        self.pos = rng.uniform(-1, 1, (self.n, 2))
        self.goal = rng.uniform(-1, 1, (self.n, 2))
        return self.obs()

    def obs(self):
        return np.concatenate([self.pos, self.goal], axis=1).astype(np.float32)

    def step(self, action):
        self.pos = np.clip(self.pos + 0.2 * np.clip(action, -1, 1), -1.2, 1.2)
        dist = np.linalg.norm(self.pos - self.goal, axis=1)
        reward = -dist + 0.5 * (dist < 0.1)
        return self.obs(), reward.astype(np.float32)


class BatchRenorm(nn.Module):
    def __init__(self, num_features, eps=0.001, momentum=0.01, affine=True, warmup_steps=100):
        super().__init__()
        self.register_buffer("running_mean", torch.zeros(num_features, dtype=torch.float))
        self.register_buffer("running_var", torch.ones(num_features, dtype=torch.float))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        self.scale = nn.Parameter(torch.ones(num_features, dtype=torch.float))
        self.bias = nn.Parameter(torch.zeros(num_features, dtype=torch.float))
        self.affine = affine
        self.eps = eps
        self.momentum = momentum
        self.num_features = num_features
        self.rmax = 3.0
        self.dmax = 5.0
        self.warmup_steps = warmup_steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            batch_mean = x.mean(0)
            batch_var = x.var(0, unbiased=False)
            batch_std = (batch_var + self.eps).sqrt()

            # Use stats from running
            if self.num_batches_tracked > self.warmup_steps:
                running_std = (self.running_var + self.eps).sqrt()
                r = (batch_std / running_std).detach()
                r = r.clamp(1 / self.rmax, self.rmax)
                d = ((batch_mean - self.running_mean) / running_std).detach()
                d = d.clamp(-self.dmax, self.dmax)
                custom_mean = batch_mean - d * batch_std / r
                custom_var = batch_var / (r ** 2)
            else:
                custom_mean, custom_var = batch_mean, batch_var

            # Update Running Statistics
            with torch.no_grad():
                self.running_mean += self.momentum * (batch_mean.detach() - self.running_mean)
                self.running_var += self.momentum * (batch_var.detach() - self.running_var)
                self.num_batches_tracked += 1
        else:
            custom_mean, custom_var = self.running_mean, self.running_var

        x = (x - custom_mean[None]) / (custom_var[None] + self.eps).sqrt()
        if self.affine:
            x = self.scale * x + self.bias
        return x

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, warmup_steps={self.warmup_steps}"


def create_mlp(input_dim, output_dim, net_arch, norm_layer, momentum=0.01):
    modules = [norm_layer(input_dim, momentum=momentum)]
    last = input_dim
    for width in net_arch:
        modules += [nn.Linear(last, width), norm_layer(width, momentum=momentum), nn.ReLU()]
        last = width
    modules.append(nn.Linear(last, output_dim))
    return modules


class ContinuousCritic(nn.Module):
    def __init__(self, obs_dim, act_dim, net_arch=(64, 64), n_critics=2, norm_layer=BatchRenorm):
        super().__init__()
        self.n_critics = n_critics
        self.q_networks = []
        for idx in range(n_critics):
            q_net = nn.Sequential(*create_mlp(obs_dim + act_dim, 1, net_arch, norm_layer))
            self.add_module(f"qf{idx}", q_net)
            self.q_networks.append(q_net)

    def set_training_mode(self, mode: bool):
        self.train(mode)

    def forward(self, obs, actions):
        qvalue_input = torch.cat([obs, actions], dim=1)
        return tuple(q_net(qvalue_input) for q_net in self.q_networks)


class Actor(nn.Module):
    def __init__(self, obs_dim, act_dim, net_arch=(64, 64)):
        super().__init__()
        layers, last = [], obs_dim
        for width in net_arch:
            layers += [nn.Linear(last, width), nn.ReLU()]
            last = width
        self.latent_pi = nn.Sequential(*layers)
        self.mu = nn.Linear(last, act_dim)
        self.log_std = nn.Linear(last, act_dim)

    def get_action_dist_params(self, obs):
        latent_pi = self.latent_pi(obs)
        mean_actions = self.mu(latent_pi)
        log_std = torch.clamp(self.log_std(latent_pi), LOG_STD_MIN, LOG_STD_MAX)
        return mean_actions, log_std

    def action_log_prob(self, obs):
        mean_actions, log_std = self.get_action_dist_params(obs)
        distribution = Normal(mean_actions, log_std.exp())
        gaussian_actions = distribution.rsample()
        actions = torch.tanh(gaussian_actions)
        log_prob = distribution.log_prob(gaussian_actions).sum(dim=1)
        # squash correction (SAC appendix C)
        log_prob -= torch.sum(torch.log(1 - actions.pow(2) + 1e-6), dim=1)
        return actions, log_prob

    def forward(self, obs, deterministic=False):
        if deterministic:
            mean_actions, _ = self.get_action_dist_params(obs)
            return torch.tanh(mean_actions)
        return self.action_log_prob(obs)[0]


class ReplayBuffer:
    def __init__(self, size):
        self.obs = np.zeros((size, OBS_DIM), np.float32)
        self.next_obs = np.zeros((size, OBS_DIM), np.float32)
        self.actions = np.zeros((size, ACT_DIM), np.float32)
        self.rewards = np.zeros((size, 1), np.float32)
        self.dones = np.zeros((size, 1), np.float32)
        self.size, self.pos = size, 0
        self.full = False

    def add(self, obs, next_obs, actions, rewards, dones):
        n = len(obs)
        idx = (self.pos + np.arange(n)) % self.size
        self.obs[idx], self.next_obs[idx], self.actions[idx] = obs, next_obs, actions
        self.rewards[idx, 0], self.dones[idx, 0] = rewards, dones
        self.full = self.full or self.pos + n >= self.size
        self.pos = (self.pos + n) % self.size

    def sample(self, batch_size):
        upper = self.size if self.full else self.pos
        idx = rng.randint(0, upper, batch_size)
        return (torch.as_tensor(self.obs[idx]), torch.as_tensor(self.actions[idx]),
                torch.as_tensor(self.next_obs[idx]), torch.as_tensor(self.rewards[idx]),
                torch.as_tensor(self.dones[idx]))


actor = Actor(OBS_DIM, ACT_DIM)
critic = ContinuousCritic(OBS_DIM, ACT_DIM)
print(critic.qf0)
log_ent_coef = torch.log(torch.ones(1)).requires_grad_(True)
target_entropy = float(-np.prod(ACT_DIM).astype(np.float32))
actor_opt = torch.optim.Adam(actor.parameters(), lr=1e-3, betas=(0.5, 0.999))
critic_opt = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.999))
ent_opt = torch.optim.Adam([log_ent_coef], lr=1e-3, betas=(0.5, 0.999))
n_params = sum(p.numel() for p in critic.parameters())
print(f"critic parameters {n_params} buffers {len(list(critic.buffers()))} target entropy {target_entropy}")

# --- check: one train-mode forward of the concatenated batches normalises by the joint statistics
with torch.no_grad():
    obs_a, act_a = torch.randn(32, OBS_DIM), torch.rand(32, ACT_DIM) * 2 - 1
    obs_b, act_b = torch.randn(32, OBS_DIM) + 1.0, torch.rand(32, ACT_DIM) * 2 - 1
    probe = ContinuousCritic(OBS_DIM, ACT_DIM)
    first = probe.qf0[0]
    joint_in = torch.cat([torch.cat([obs_a, obs_b]), torch.cat([act_a, act_b])], dim=1)
    mean, var = joint_in.mean(0), joint_in.var(0, unbiased=False)
    old_rm, old_rv = first.running_mean.clone(), first.running_var.clone()
    normed = first(joint_in)
    stats_err = (normed - (joint_in - mean) / torch.sqrt(var + first.eps)).abs().max().item()
    stats_err = max(stats_err, (first.running_mean - (old_rm + 0.01 * (mean - old_rm))).abs().max().item(),
                    (first.running_var - (old_rv + 0.01 * (var - old_rv))).abs().max().item())
    joint_q = torch.cat(probe(torch.cat([obs_a, obs_b]), torch.cat([act_a, act_b])), dim=1)
    q_a, q_b = torch.split(joint_q, 32, dim=0)
    c_a, c_b = joint_q.chunk(2, dim=0)
    split_err = max((q_a - c_a).abs().max().item(), (q_b - c_b).abs().max().item())
    sep_gap = (torch.cat(probe(obs_a, act_a), dim=1) - q_a).abs().max().item()
    # torch's BatchNorm1d in the same joint forward: biased variance normalises, unbiased moves running_var
    bn = nn.BatchNorm1d(OBS_DIM + ACT_DIM, momentum=0.01)
    bn.weight.uniform_(0.5, 1.5)
    bn.bias.uniform_(-0.5, 0.5)
    out_bn = bn(joint_in)
    hand_bn = (joint_in - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias
    stats_err = max(stats_err, (out_bn - hand_bn).abs().max().item(),
                    (bn.running_var - (0.99 * 1 + 0.01 * joint_in.var(0, unbiased=True))).abs().max().item(),
                    (bn.running_mean - 0.01 * mean).abs().max().item())
    # eval mode: the running statistics, for both norms
    probe.set_training_mode(False)
    bn.eval()
    eval_err = (first(joint_in) - (joint_in - first.running_mean) / (first.running_var + first.eps).sqrt()).abs().max()
    eval_err = max(eval_err.item(), (bn(joint_in) - ((joint_in - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps)
                                                     * bn.weight + bn.bias)).abs().max().item())
    eval_q_a = torch.cat(probe(obs_a, act_a), dim=1)
    eval_consistent = (eval_q_a - torch.cat(probe(torch.cat([obs_a, obs_b]), torch.cat([act_a, act_b])),
                                            dim=1)[:32]).abs().max().item()
    eval_err = max(eval_err, eval_consistent)
print(f"joint batch stats err {stats_err:.2e}, split vs chunk {split_err:.2e}, joint vs separate gap "
      f"{sep_gap:.3f}, eval running-stats err {eval_err:.2e}, tracked {int(first.num_batches_tracked)}")

env = PointMass(N_ENVS)
buffer = ReplayBuffer(20000)


@torch.no_grad()
def evaluate(n_episodes=64):
    eval_env = PointMass(n_episodes)
    obs = eval_env.reset()
    total = np.zeros(n_episodes)
    for _ in range(HORIZON):
        act = actor(torch.as_tensor(obs), deterministic=True).numpy()
        obs, reward = eval_env.step(act)
        total += reward
    return float(total.mean())


def train_step(step):
    obs, actions, next_obs, rewards, dones = buffer.sample(BATCH_SIZE)
    ent_coef = torch.exp(log_ent_coef.detach())

    with torch.no_grad():
        next_actions, next_log_prob = actor.action_log_prob(next_obs)

    # one forward of both batches in train mode: the BatchRenorm sees the joint statistics
    critic.set_training_mode(True)
    all_obs = torch.cat([obs, next_obs], dim=0)
    all_actions = torch.cat([actions, next_actions], dim=0)
    all_q_values = torch.cat(critic(all_obs, all_actions), dim=1)
    current_q_values, next_q_values = torch.split(all_q_values, BATCH_SIZE, dim=0)
    next_q_values = torch.min(next_q_values, dim=1, keepdim=True)[0].detach()
    next_q_values = next_q_values - ent_coef * next_log_prob.reshape(-1, 1)
    target_q_values = rewards + (1 - dones) * GAMMA * next_q_values
    critic_loss = 0.5 * sum(F.mse_loss(current_q_values[:, i:i + 1], target_q_values)
                            for i in range(critic.n_critics))
    critic_opt.zero_grad()
    critic_loss.backward()
    critic_opt.step()

    if step % POLICY_DELAY == 0:
        actions_pi, log_prob = actor.action_log_prob(obs)
        log_prob = log_prob.reshape(-1, 1)
        ent_coef_loss = -(log_ent_coef * (log_prob + target_entropy).detach()).mean()
        ent_opt.zero_grad()
        ent_coef_loss.backward()
        ent_opt.step()

        critic.set_training_mode(False)
        q_values_pi = torch.cat(critic(obs, actions_pi), dim=1)
        min_qf_pi, _ = torch.min(q_values_pi, dim=1, keepdim=True)
        actor_loss = (ent_coef * log_prob - min_qf_pi).mean()
        actor_opt.zero_grad()
        actor_loss.backward()
        actor_opt.step()
        critic.set_training_mode(True)
    return critic_loss.item()


init_eval = evaluate()
returns, critic_losses = [], []
step = 0
for rnd in range(ROUNDS):
    obs = env.reset()
    ep_return = np.zeros(N_ENVS)
    for t in range(HORIZON):
        if rnd < WARMUP_ROUNDS:
            act = rng.uniform(-1, 1, (N_ENVS, ACT_DIM)).astype(np.float32)
        else:
            with torch.no_grad():
                act = actor(torch.as_tensor(obs)).numpy()
        next_obs, reward = env.step(act)
        done = np.full(N_ENVS, float(t == HORIZON - 1))
        # time-limit truncation, not termination: the done flag stays 0 for bootstrapping
        buffer.add(obs, next_obs, act, reward, np.zeros_like(done))
        obs = next_obs
        ep_return += reward
        if rnd >= WARMUP_ROUNDS:
            critic_losses.append(train_step(step))
            step += 1
    returns.append(float(ep_return.mean()))
    if (rnd + 1) % 8 == 0:
        print(f"round {rnd + 1} return {np.mean(returns[-8:]):.3f} critic loss "
              f"{np.mean(critic_losses[-40:]) if critic_losses else 0.0:.4f} "
              f"ent coef {log_ent_coef.exp().item():.4f}")

final_eval = evaluate()
brn = critic.qf0[2]
print(f"updates {step} batch renorm tracked {int(brn.num_batches_tracked)} warmup {brn.warmup_steps}")
print(f"FINAL return_first={np.mean(returns[:WARMUP_ROUNDS]):.3f} return_last={np.mean(returns[-8:]):.3f} "
      f"init_eval={init_eval:.3f} final_eval={final_eval:.3f} ent_coef={log_ent_coef.exp().item():.4f} "
      f"stats_err={stats_err:.2e} eval_err={eval_err:.2e} split_err={split_err:.2e} sep_gap={sep_gap:.4f}")
