"""Conservative Q-Learning (Kumar et al., NeurIPS 2020) on top of SAC, in the layout of
aviralkumar2907/CQL (rlkit's ``CQLTrainer``) with young-geng/CQL's policy helpers, trained offline on a
tiny logged dataset of a continuous contextual task.

States are 3-d Gaussians, actions live in ``[-1, 1]^2``, the reward is ``1 - ||a - tanh(W s)||^2`` and the
next state is drawn afresh (discount 0.5). The logged behaviour policy stays close to the optimal action, so
most of the action square is out of distribution. The policy is rlkit's ``TanhGaussianPolicy``: an MLP
giving mean and clamped ``log_std``, ``Normal(mean, std).rsample()`` squashed by ``torch.tanh`` with
``log_prob - torch.log(1 - action.pow(2) + 1e-6)`` summed over action dimensions (checked against
``TransformedDistribution(Normal(...), TanhTransform(cache_size=1))``); twin ``FlattenMlp`` Q networks on
``torch.cat([obs, act], dim=1)`` with target copies. ``CQLTrainer.train_from_torch`` follows the repository:
random actions ``torch.FloatTensor(n * num_random, d).uniform_(-1, 1)``, policy actions at ``obs`` and
``next_obs`` by ``obs.unsqueeze(1).repeat(1, num_actions, 1).view(...)``, ``_get_tensor_values`` reshaped
to ``(batch, num_repeat, 1)``, the ``min_q_version == 3`` importance correction ``np.log(0.5 ** action_dim)``
and ``- log_pis.detach()``, ``torch.logsumexp(cat_q1 / self.temp, dim=1).mean() * min_q_weight * temp``
minus the data Q, the Lagrange multiplier ``torch.clamp(self.log_alpha_prime.exp(), min=0.0,
max=1000000.0)`` with its own Adam stepped through ``backward(retain_graph=True)``, automatic entropy tuning
by ``log_alpha``, and soft target updates ``target_param.data.copy_(tau * param.data + (1 - tau) *
target_param.data)`` (checked against a ``torch.lerp`` of the old targets). young-geng's
``extend_and_repeat`` (``torch.unsqueeze(tensor, dim) * tensor.new_ones(ones_shape)``) must agree with the
``repeat``/``view`` expansion.

Checked: on the logged states, CQL's Q-values of uniformly random (out-of-distribution) actions fall below
those of the logged actions by a clear margin, while plain SAC on the same data (``min_q_weight = 0``) has
no such gap; CQL's data Q-values sit below the true discounted returns (conservative) and its policy's
true reward is reported against the behaviour policy's.
"""

import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.distributions import Normal, TanhTransform, TransformedDistribution

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

OBS_DIM, ACT_DIM, N_DATA = 3, 2, 1000
DISCOUNT = 0.5
rng = np.random.RandomState(seed)
W_TRUE = rng.normal(size=(ACT_DIM, OBS_DIM)).astype(np.float32) * 0.8


def optimal_action(s):
    return np.tanh(s @ W_TRUE.T)


def true_reward(s, a):
    return 1.0 - np.sum((a - optimal_action(s)) ** 2, axis=-1)


# the logged dataset: a narrow behaviour policy around the optimum
obs_np = rng.normal(size=(N_DATA, OBS_DIM)).astype(np.float32)
act_np = np.clip(optimal_action(obs_np) + 0.15 * rng.normal(size=(N_DATA, ACT_DIM)), -0.99, 0.99).astype(np.float32)
rew_np = true_reward(obs_np, act_np).astype(np.float32)
next_obs_np = rng.normal(size=(N_DATA, OBS_DIM)).astype(np.float32)
term_np = np.zeros(N_DATA, dtype=np.float32)
dataset = {
    "observations": torch.from_numpy(obs_np),
    "actions": torch.from_numpy(act_np),
    "rewards": torch.from_numpy(rew_np).unsqueeze(-1),
    "next_observations": torch.from_numpy(next_obs_np),
    "terminals": torch.from_numpy(term_np).unsqueeze(-1),
}
behaviour_reward = float(rew_np.mean())
print(f"dataset {N_DATA} transitions, behaviour reward {behaviour_reward:.4f}")


# ----------------------------------------------------------------------------------- networks
class FlattenMlp(nn.Module):
    def __init__(self, input_size, output_size, hidden_sizes=(32, 32)):
        super().__init__()
        self.fcs = nn.ModuleList()
        in_size = input_size
        for next_size in hidden_sizes:
            fc = nn.Linear(in_size, next_size)
            fc.bias.data.fill_(0.1)
            self.fcs.append(fc)
            in_size = next_size
        self.last_fc = nn.Linear(in_size, output_size)
        self.last_fc.weight.data.uniform_(-3e-3, 3e-3)
        self.last_fc.bias.data.uniform_(-3e-3, 3e-3)

    def forward(self, *inputs):
        h = torch.cat(inputs, dim=1)
        for fc in self.fcs:
            h = F.relu(fc(h))
        return self.last_fc(h)


LOG_SIG_MAX, LOG_SIG_MIN = 2, -20


class TanhGaussianPolicy(nn.Module):
    def __init__(self, obs_dim, action_dim, hidden_sizes=(32, 32)):
        super().__init__()
        self.net = FlattenMlp(obs_dim, 2 * action_dim, hidden_sizes)
        self.action_dim = action_dim

    def forward(self, obs, reparameterize=True, deterministic=False, return_log_prob=False):
        mean, log_std = torch.split(self.net(obs), self.action_dim, dim=-1)
        log_std = torch.clamp(log_std, LOG_SIG_MIN, LOG_SIG_MAX)
        std = torch.exp(log_std)
        log_prob = None
        pre_tanh_value = None
        if deterministic:
            action = torch.tanh(mean)
        else:
            normal = Normal(mean, std)
            pre_tanh_value = normal.rsample() if reparameterize else normal.sample()
            action = torch.tanh(pre_tanh_value)
            if return_log_prob:
                log_prob = normal.log_prob(pre_tanh_value) - torch.log(1 - action.pow(2) + 1e-6)
                log_prob = log_prob.sum(dim=1, keepdim=True)
        return action, mean, log_std, log_prob, std, pre_tanh_value


def extend_and_repeat(tensor, dim, repeat):
    # Extend and repeast the tensor along dim axie and repeat it
    ones_shape = [1 for _ in range(tensor.ndim + 1)]
    ones_shape[dim] = repeat
    return torch.unsqueeze(tensor, dim) * tensor.new_ones(ones_shape)


def soft_update_from_to(source, target, tau):
    for target_param, param in zip(target.parameters(), source.parameters()):
        target_param.data.copy_(tau * param.data + (1 - tau) * target_param.data)


# ----------------------------------------------------------------------------------- checks
policy = TanhGaussianPolicy(OBS_DIM, ACT_DIM)
obs = dataset["observations"][:16]
with torch.no_grad():
    action, mean, log_std, log_prob, std, pre_tanh = policy(obs, return_log_prob=True)
    dist = TransformedDistribution(Normal(mean, std), TanhTransform(cache_size=1))
    lp_transformed = dist.log_prob(action).sum(-1, keepdim=True)
tanh_ok = torch.allclose(log_prob, lp_transformed, atol=1e-3) and bool((action.abs() < 1).all())
rep_a = obs.unsqueeze(1).repeat(1, 5, 1).view(obs.shape[0] * 5, obs.shape[1])
rep_b = extend_and_repeat(obs, 1, 5).reshape(-1, obs.shape[-1])
repeat_ok = torch.equal(rep_a, rep_b)
q = FlattenMlp(OBS_DIM + ACT_DIM, 1)
q_target = copy.deepcopy(q)
with torch.no_grad():
    for p in q.parameters():
        p.add_(0.1)
old = [p.clone() for p in q_target.parameters()]
soft_update_from_to(q, q_target, 0.005)
soft_ok = all(torch.allclose(t, torch.lerp(o, p, 0.005), atol=1e-6) for t, o, p in zip(q_target.parameters(), old, q.parameters()))
print(f"tanh log-prob == TransformedDistribution: {tanh_ok}, repeat/view == extend_and_repeat: {repeat_ok}, "
      f"soft update == lerp: {soft_ok}")


# ----------------------------------------------------------------------------------- trainer
class CQLTrainer:
    def __init__(self, policy, qf1, qf2, target_qf1, target_qf2, discount=DISCOUNT, soft_target_tau=5e-3,
                 policy_lr=3e-3, qf_lr=3e-3, min_q_version=3, temp=1.0, min_q_weight=1.0, with_lagrange=True,
                 lagrange_thresh=2.0, num_random=4):
        self.policy, self.qf1, self.qf2 = policy, qf1, qf2
        self.target_qf1, self.target_qf2 = target_qf1, target_qf2
        self.discount = discount
        self.soft_target_tau = soft_target_tau
        self.target_entropy = -np.prod((ACT_DIM,)).item()
        self.log_alpha = torch.zeros(1, requires_grad=True)
        self.alpha_optimizer = optim.Adam([self.log_alpha], lr=policy_lr)
        self.with_lagrange = with_lagrange
        if self.with_lagrange:
            self.target_action_gap = lagrange_thresh
            self.log_alpha_prime = torch.zeros(1, requires_grad=True)
            self.alpha_prime_optimizer = optim.Adam([self.log_alpha_prime], lr=qf_lr)
        self.qf_criterion = nn.MSELoss()
        self.policy_optimizer = optim.Adam(self.policy.parameters(), lr=policy_lr)
        self.qf1_optimizer = optim.Adam(self.qf1.parameters(), lr=qf_lr)
        self.qf2_optimizer = optim.Adam(self.qf2.parameters(), lr=qf_lr)
        self.min_q_version = min_q_version
        self.temp = temp
        self.min_q_weight = min_q_weight
        self.num_random = num_random
        self._num_train_steps = 0

    def _get_tensor_values(self, obs, actions, network=None):
        action_shape = actions.shape[0]
        obs_shape = obs.shape[0]
        num_repeat = int(action_shape / obs_shape)
        obs_temp = obs.unsqueeze(1).repeat(1, num_repeat, 1).view(obs.shape[0] * num_repeat, obs.shape[1])
        preds = network(obs_temp, actions)
        preds = preds.view(obs.shape[0], num_repeat, 1)
        return preds

    def _get_policy_actions(self, obs, num_actions, network=None):
        obs_temp = obs.unsqueeze(1).repeat(1, num_actions, 1).view(obs.shape[0] * num_actions, obs.shape[1])
        new_obs_actions, _, _, new_obs_log_pi, *_ = network(obs_temp, reparameterize=True, return_log_prob=True)
        return new_obs_actions, new_obs_log_pi.view(obs.shape[0], num_actions, 1)

    def train_from_torch(self, batch):
        rewards = batch["rewards"]
        terminals = batch["terminals"]
        obs = batch["observations"]
        actions = batch["actions"]
        next_obs = batch["next_observations"]

        # Policy and Alpha Loss
        new_obs_actions, policy_mean, policy_log_std, log_pi, *_ = self.policy(obs, reparameterize=True, return_log_prob=True)
        alpha_loss = -(self.log_alpha * (log_pi + self.target_entropy).detach()).mean()
        self.alpha_optimizer.zero_grad()
        alpha_loss.backward()
        self.alpha_optimizer.step()
        alpha = self.log_alpha.exp()

        q_new_actions = torch.min(self.qf1(obs, new_obs_actions), self.qf2(obs, new_obs_actions))
        policy_loss = (alpha.detach() * log_pi - q_new_actions).mean()

        # QF Loss
        q1_pred = self.qf1(obs, actions)
        q2_pred = self.qf2(obs, actions)
        new_next_actions, _, _, new_log_pi, *_ = self.policy(next_obs, reparameterize=True, return_log_prob=True)
        target_q_values = torch.min(self.target_qf1(next_obs, new_next_actions), self.target_qf2(next_obs, new_next_actions))
        q_target = rewards + (1.0 - terminals) * self.discount * target_q_values
        qf1_loss = self.qf_criterion(q1_pred, q_target.detach())
        qf2_loss = self.qf_criterion(q2_pred, q_target.detach())

        # add CQL
        random_actions_tensor = torch.FloatTensor(q2_pred.shape[0] * self.num_random, actions.shape[-1]).uniform_(-1, 1)
        curr_actions_tensor, curr_log_pis = self._get_policy_actions(obs, num_actions=self.num_random, network=self.policy)
        new_curr_actions_tensor, new_log_pis = self._get_policy_actions(next_obs, num_actions=self.num_random, network=self.policy)
        q1_rand = self._get_tensor_values(obs, random_actions_tensor, network=self.qf1)
        q2_rand = self._get_tensor_values(obs, random_actions_tensor, network=self.qf2)
        q1_curr_actions = self._get_tensor_values(obs, curr_actions_tensor, network=self.qf1)
        q2_curr_actions = self._get_tensor_values(obs, curr_actions_tensor, network=self.qf2)
        q1_next_actions = self._get_tensor_values(obs, new_curr_actions_tensor, network=self.qf1)
        q2_next_actions = self._get_tensor_values(obs, new_curr_actions_tensor, network=self.qf2)

        cat_q1 = torch.cat([q1_rand, q1_pred.unsqueeze(1), q1_next_actions, q1_curr_actions], 1)
        cat_q2 = torch.cat([q2_rand, q2_pred.unsqueeze(1), q2_next_actions, q2_curr_actions], 1)

        if self.min_q_version == 3:
            # importance sammpled version
            random_density = np.log(0.5 ** curr_actions_tensor.shape[-1])
            cat_q1 = torch.cat([q1_rand - random_density, q1_next_actions - new_log_pis.detach(),
                                q1_curr_actions - curr_log_pis.detach()], 1)
            cat_q2 = torch.cat([q2_rand - random_density, q2_next_actions - new_log_pis.detach(),
                                q2_curr_actions - curr_log_pis.detach()], 1)

        min_qf1_loss = torch.logsumexp(cat_q1 / self.temp, dim=1).mean() * self.min_q_weight * self.temp
        min_qf2_loss = torch.logsumexp(cat_q2 / self.temp, dim=1).mean() * self.min_q_weight * self.temp

        """Subtract the log likelihood of data"""
        min_qf1_loss = min_qf1_loss - q1_pred.mean() * self.min_q_weight
        min_qf2_loss = min_qf2_loss - q2_pred.mean() * self.min_q_weight

        alpha_prime = torch.zeros(1)
        if self.with_lagrange:
            alpha_prime = torch.clamp(self.log_alpha_prime.exp(), min=0.0, max=1000000.0)
            min_qf1_loss = alpha_prime * (min_qf1_loss - self.target_action_gap)
            min_qf2_loss = alpha_prime * (min_qf2_loss - self.target_action_gap)

            self.alpha_prime_optimizer.zero_grad()
            alpha_prime_loss = (-min_qf1_loss - min_qf2_loss) * 0.5
            alpha_prime_loss.backward(retain_graph=True)
            self.alpha_prime_optimizer.step()

        qf1_loss = qf1_loss + min_qf1_loss
        qf2_loss = qf2_loss + min_qf2_loss

        self._num_train_steps += 1
        self.policy_optimizer.zero_grad()
        policy_loss.backward(retain_graph=False)
        self.qf1_optimizer.zero_grad()
        self.qf2_optimizer.zero_grad()
        (qf1_loss + qf2_loss).backward()
        self.policy_optimizer.step()
        self.qf1_optimizer.step()
        self.qf2_optimizer.step()

        soft_update_from_to(self.qf1, self.target_qf1, self.soft_target_tau)
        soft_update_from_to(self.qf2, self.target_qf2, self.soft_target_tau)
        return {
            "QF1 Loss": qf1_loss.item(),
            "Policy Loss": policy_loss.item(),
            "Alpha": alpha.item(),
            "Alpha Prime": alpha_prime.item(),
            "Q1 Predictions": q1_pred.mean().item(),
        }


def run(name, min_q_weight, with_lagrange, steps=300, batch_size=64):
    torch.manual_seed(seed + 1)
    policy = TanhGaussianPolicy(OBS_DIM, ACT_DIM)
    qf1 = FlattenMlp(OBS_DIM + ACT_DIM, 1)
    qf2 = FlattenMlp(OBS_DIM + ACT_DIM, 1)
    trainer = CQLTrainer(policy, qf1, qf2, copy.deepcopy(qf1), copy.deepcopy(qf2),
                         min_q_weight=min_q_weight, with_lagrange=with_lagrange)
    for step in range(steps):
        idx = torch.randint(0, N_DATA, (batch_size,))
        stats = trainer.train_from_torch({k: v[idx] for k, v in dataset.items()})
        if step % 100 == 0 or step == steps - 1:
            print(f"{name} step {step:3d} qf1 loss {stats['QF1 Loss']:.4f} policy loss {stats['Policy Loss']:.4f} "
                  f"alpha {stats['Alpha']:.4f} alpha prime {stats['Alpha Prime']:.4f} Q1 {stats['Q1 Predictions']:.4f}")

    with torch.no_grad():
        obs_all = dataset["observations"]
        q_data = torch.min(qf1(obs_all, dataset["actions"]), qf2(obs_all, dataset["actions"])).mean().item()
        rand = torch.FloatTensor(N_DATA * 8, ACT_DIM).uniform_(-1, 1)
        obs_rep = obs_all.unsqueeze(1).repeat(1, 8, 1).view(N_DATA * 8, OBS_DIM)
        q_rand = torch.min(qf1(obs_rep, rand), qf2(obs_rep, rand)).mean().item()
        act, *_ = policy(obs_all, deterministic=True)
        pol_reward = float(true_reward(obs_np, act.numpy()).mean())
    # the true value of the logged action: its reward plus the discounted value of the policy afterwards
    true_q = behaviour_reward + DISCOUNT / (1 - DISCOUNT) * pol_reward
    print(f"{name}: Q(data) {q_data:.4f} Q(random) {q_rand:.4f} gap {q_data - q_rand:.4f} "
          f"true Q(data) {true_q:.4f} policy reward {pol_reward:.4f}")
    return q_data - q_rand, q_data - true_q, pol_reward


cql_gap, cql_over, cql_reward = run("cql", min_q_weight=1.0, with_lagrange=True)
sac_gap, sac_over, sac_reward = run("sac", min_q_weight=0.0, with_lagrange=False)
print(
    f"FINAL cql_gap={cql_gap:.4f} sac_gap={sac_gap:.4f} cql_overestimate={cql_over:.4f} "
    f"sac_overestimate={sac_over:.4f} cql_reward={cql_reward:.4f} sac_reward={sac_reward:.4f} "
    f"checks={int(tanh_ok and repeat_ok and soft_ok)}"
)
