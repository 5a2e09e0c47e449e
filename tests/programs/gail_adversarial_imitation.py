"""GAIL as ikostrikov/pytorch-a2c-ppo-acktr-gail writes it (``a2c_ppo_acktr/algo/gail.py``), imitating a
softmax expert on a synthetic contextual task with discrete actions.

The ``Discriminator`` is the repo's: a ``trunk`` ``nn.Sequential`` of ``Linear``/``Tanh`` on
``torch.cat([state, action], dim=1)`` with its own Adam, ``update`` over zipped expert and policy
``DataLoader`` batches with ``F.binary_cross_entropy_with_logits`` (``torch.ones(expert_d.size())`` /
``torch.zeros(...)`` targets; ``nn.BCEWithLogitsLoss`` must agree), ``compute_grad_pen`` on mixups
(``alpha = torch.rand(n, 1).expand_as(expert_data)``, ``mixup_data.requires_grad = True``,
``autograd.grad(outputs=disc, inputs=mixup_data, grad_outputs=ones, create_graph=True, retain_graph=True,
only_inputs=True)[0]``, ``lambda_ * (grad.norm(2, dim=1) - 1).pow(2).mean()``) and ``predict_reward``
under ``torch.no_grad()`` and ``self.eval()`` giving ``- (1 - sigmoid(d)).log()`` scaled by a running
return normaliser (baselines' ``RunningMeanStd`` fed ``self.returns * masks * gamma + reward``). The
learner is a ``Categorical`` policy trained by policy gradient with discounted returns from the GAIL
reward and a mean baseline, ``F.one_hot`` actions for the discriminator.

Checked: the penalty's double-backward gradient against a float64 central difference along a random
direction; ``-log(1 - sigmoid(d))`` equal to ``F.softplus(d)`` and ``s.log() - (1 - s).log()`` to ``d``;
the discriminator separating expert from the first policy (accuracy > 0.5) and drifting back towards
chance; ``kl_divergence(Categorical(expert), Categorical(policy))`` against the hand-written KL,
falling as the policy imitates the expert.
"""

import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import autograd
from torch.distributions import Categorical, kl_divergence
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

OBS, ACTIONS, HIDDEN = 4, 3, 32
NUM_PROCESSES, NUM_STEPS, GAMMA = 32, 8, 0.5


class RunningMeanStd(object):  # noqa: UP004  (baselines spells it so)
    # https://en.wikipedia.org/wiki/Algorithms_for_calculating_variance#Parallel_algorithm
    def __init__(self, epsilon=1e-4, shape=()):
        self.mean = np.zeros(shape, "float64")
        self.var = np.ones(shape, "float64")
        self.count = epsilon

    def update(self, x):
        batch_mean = np.mean(x, axis=0)
        batch_var = np.var(x, axis=0)
        batch_count = x.shape[0]
        self.update_from_moments(batch_mean, batch_var, batch_count)

    def update_from_moments(self, batch_mean, batch_var, batch_count):
        delta = batch_mean - self.mean
        tot_count = self.count + batch_count
        new_mean = self.mean + delta * batch_count / tot_count
        m_a = self.var * self.count
        m_b = batch_var * batch_count
        M2 = m_a + m_b + np.square(delta) * self.count * batch_count / tot_count
        self.mean, self.var, self.count = new_mean, M2 / tot_count, tot_count


class Discriminator(nn.Module):
    def __init__(self, input_dim, hidden_dim, device):
        super(Discriminator, self).__init__()  # noqa: UP008
        self.device = device
        self.trunk = nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.Tanh(), nn.Linear(hidden_dim, hidden_dim), nn.Tanh(), nn.Linear(hidden_dim, 1)).to(device)
        self.trunk.train()
        self.optimizer = torch.optim.Adam(self.trunk.parameters(), lr=3e-3)
        self.returns = None
        self.ret_rms = RunningMeanStd(shape=())

    def compute_grad_pen(self, expert_state, expert_action, policy_state, policy_action, lambda_=10):
        alpha = torch.rand(expert_state.size(0), 1)
        expert_data = torch.cat([expert_state, expert_action], dim=1)
        policy_data = torch.cat([policy_state, policy_action], dim=1)
        alpha = alpha.expand_as(expert_data).to(expert_data.device)
        mixup_data = alpha * expert_data + (1 - alpha) * policy_data
        mixup_data.requires_grad = True
        disc = self.trunk(mixup_data)
        ones = torch.ones(disc.size()).to(disc.device)
        grad = autograd.grad(outputs=disc, inputs=mixup_data, grad_outputs=ones, create_graph=True, retain_graph=True, only_inputs=True)[0]
        grad_pen = lambda_ * (grad.norm(2, dim=1) - 1).pow(2).mean()
        return grad_pen

    def update(self, expert_loader, policy_loader):
        self.train()
        loss, n, correct, total = 0, 0, 0, 0
        for expert_batch, policy_batch in zip(expert_loader, policy_loader):
            policy_state, policy_action = policy_batch
            policy_d = self.trunk(torch.cat([policy_state, policy_action], dim=1))
            expert_state, expert_action = expert_batch
            expert_d = self.trunk(torch.cat([expert_state, expert_action], dim=1))
            expert_loss = F.binary_cross_entropy_with_logits(expert_d, torch.ones(expert_d.size()).to(self.device))
            policy_loss = F.binary_cross_entropy_with_logits(policy_d, torch.zeros(policy_d.size()).to(self.device))
            gail_loss = expert_loss + policy_loss
            grad_pen = self.compute_grad_pen(expert_state, expert_action, policy_state, policy_action)
            loss += (gail_loss + grad_pen).item()
            n += 1
            correct += (expert_d > 0).sum().item() + (policy_d < 0).sum().item()
            total += expert_d.size(0) + policy_d.size(0)
            self.optimizer.zero_grad()
            (gail_loss + grad_pen).backward()
            self.optimizer.step()
        return loss / n, correct / total

    def predict_reward(self, state, action, gamma, masks, update_rms=True):
        with torch.no_grad():
            self.eval()
            d = self.trunk(torch.cat([state, action], dim=1))
            s = torch.sigmoid(d)
            reward = -(1 - s).log()
            if self.returns is None:
                self.returns = reward.clone()
            if update_rms:
                self.returns = self.returns * masks * gamma + reward
                self.ret_rms.update(self.returns.cpu().numpy())
            return reward / np.sqrt(self.ret_rms.var[0] + 1e-8)


class Policy(nn.Module):
    def __init__(self):
        super().__init__()
        self.base = nn.Sequential(nn.Linear(OBS, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, ACTIONS))

    def forward(self, obs):
        return Categorical(logits=self.base(obs))


# ----------------------------------------------------------------------------------- expert data
rng = np.random.RandomState(seed)
W_expert = rng.randn(ACTIONS, OBS).astype(np.float32) * 2.0


def expert_probs(states):
    return torch.softmax(states @ torch.from_numpy(W_expert).t(), dim=1)


def sample_states(n):
    return torch.from_numpy(rng.randn(n, OBS).astype(np.float32))


expert_states = sample_states(512)
expert_actions = torch.multinomial(expert_probs(expert_states), 1).squeeze(1)
expert_dataset = TensorDataset(expert_states, F.one_hot(expert_actions, ACTIONS).float())
eval_states = sample_states(256)


def kl_to_expert(policy):
    with torch.no_grad():
        p = expert_probs(eval_states)
        dist = policy(eval_states)
        kl = kl_divergence(Categorical(probs=p), dist).mean()
        by_hand = (p * (p.log() - dist.logits)).sum(1).mean()
    return kl.item(), torch.allclose(kl, by_hand, atol=1e-6)


# ----------------------------------------------------------------------------------- checks
discr = Discriminator(OBS + ACTIONS, HIDDEN, "cpu")
d_logits = torch.randn(64, 1) * 3
s = torch.sigmoid(d_logits)
reward_forms = torch.allclose(-(1 - s).log(), F.softplus(d_logits), atol=1e-5) and torch.allclose(s.log() - (1 - s).log(), d_logits, atol=1e-4)
targets = (torch.rand(64, 1) > 0.5).float()
bce_agree = torch.allclose(nn.BCEWithLogitsLoss()(d_logits, targets), F.binary_cross_entropy_with_logits(d_logits, targets))

# the gradient penalty's parameter gradient (double backward) against a float64 central difference
trunk64 = copy.deepcopy(discr.trunk).double()
mix = torch.randn(32, OBS + ACTIONS, dtype=torch.float64)


def penalty(trunk):
    x = mix.clone().requires_grad_(True)
    out = trunk(x)
    g = autograd.grad(out, x, torch.ones_like(out), create_graph=True)[0]
    return 10 * (g.norm(2, dim=1) - 1).pow(2).mean()


pen = penalty(trunk64)
grads = autograd.grad(pen, list(trunk64.parameters()), materialize_grads=True)  # the last bias has no effect on the penalty
direction = [torch.randn_like(p) for p in trunk64.parameters()]
analytic = sum((g * v).sum() for g, v in zip(grads, direction)).item()
eps = 1e-6
with torch.no_grad():
    for p, v in zip(trunk64.parameters(), direction):
        p.add_(eps * v)
plus = penalty(trunk64).item()
with torch.no_grad():
    for p, v in zip(trunk64.parameters(), direction):
        p.sub_(2 * eps * v)
minus = penalty(trunk64).item()
numeric = (plus - minus) / (2 * eps)
pen_rel_err = abs(analytic - numeric) / max(abs(numeric), 1e-12)
print(f"reward forms agree: {reward_forms}, BCEWithLogitsLoss == F.binary_cross_entropy_with_logits: {bce_agree}")
print(f"gradient penalty {pen.item():.4f}: directional derivative {analytic:.6f} vs central difference {numeric:.6f}")

# ----------------------------------------------------------------------------------- training
policy = Policy()
optimizer = torch.optim.Adam(policy.parameters(), lr=1e-2)
kl_first, kl_agree = kl_to_expert(policy)
print(f"KL(expert || policy) before: {kl_first:.4f}")

ITERATIONS = 100
d_accs, kl_trace = [], []
for it in range(1, ITERATIONS + 1):
    states, actions, log_probs = [], [], []
    for _step in range(NUM_STEPS):
        obs = sample_states(NUM_PROCESSES)
        dist = policy(obs)
        action = dist.sample()
        states.append(obs)
        actions.append(action)
        log_probs.append(dist.log_prob(action))
    obs_b = torch.cat(states)
    act_b = F.one_hot(torch.cat(actions), ACTIONS).float()
    # discriminator: a few epochs over expert vs policy batches
    policy_loader = DataLoader(TensorDataset(obs_b, act_b), batch_size=64, shuffle=True, drop_last=True)
    expert_loader = DataLoader(expert_dataset, batch_size=64, shuffle=True, drop_last=True)
    gail_epoch = 3
    if it == 1:
        gail_epoch = 40  # Warm up
    d_loss, d_acc = 0.0, 0.0
    for _ in range(gail_epoch):
        d_loss, d_acc = discr.update(expert_loader, policy_loader)
    d_accs.append(d_acc)
    # GAIL rewards with the running return normaliser, then discounted returns per process
    rewards = []
    for step in range(NUM_STEPS):
        masks = torch.ones(NUM_PROCESSES, 1) if step < NUM_STEPS - 1 else torch.zeros(NUM_PROCESSES, 1)
        rewards.append(discr.predict_reward(states[step], F.one_hot(actions[step], ACTIONS).float(), GAMMA, masks))
    returns = torch.zeros(NUM_STEPS, NUM_PROCESSES, 1)
    running = torch.zeros(NUM_PROCESSES, 1)
    for step in reversed(range(NUM_STEPS)):
        running = rewards[step] + GAMMA * running
        returns[step] = running
    advantages = returns.view(-1) - returns.mean()
    policy_loss = -(torch.cat(log_probs) * advantages).mean()
    entropy = policy(obs_b).entropy().mean()
    optimizer.zero_grad()
    (policy_loss - 0.01 * entropy).backward()
    optimizer.step()
    kl, agree = kl_to_expert(policy)
    kl_agree = kl_agree and agree
    kl_trace.append(kl)
    if it % 25 == 0:
        print(f"iter {it}: disc loss {d_loss:.4f}, disc acc {d_acc:.3f}, KL {kl:.4f}, reward std {np.sqrt(discr.ret_rms.var[0]):.4f}")

kl_last = float(np.mean(kl_trace[-5:]))
d_acc_first, d_acc_last = d_accs[0], float(np.mean(d_accs[-10:]))
checks = int(reward_forms and bce_agree and kl_agree and pen_rel_err < 1e-5)
print(f"disc acc first {d_acc_first:.3f} -> last {d_acc_last:.3f}; KL {kl_first:.4f} -> {kl_last:.4f}; kl_divergence == by hand: {kl_agree}")
print(f"FINAL kl_first={kl_first:.4f} kl_last={kl_last:.4f} kl_ratio={kl_last / kl_first:.4f} d_acc_last={d_acc_last:.4f} pen_rel_err={pen_rel_err:.2e} checks={checks}")
