"""TRPO as ikostrikov/pytorch-trpo (``main.py``, ``trpo.py``, ``models.py``, ``utils.py``) and
openai/spinningup's ``trpo.py`` write it, on a batch of NumPy point masses with linear dynamics and
a quadratic cost (no gym).

The policy is spinningup's ``MLPGaussianActor``: a tanh MLP for the mean and a state-independent
``log_std = nn.Parameter(torch.as_tensor(-0.5 * np.ones(act_dim, dtype=np.float32)))``, returning
``torch.distributions.Normal(mu, torch.exp(self.log_std))``; ``log_prob(act).sum(axis=-1)`` is
checked against ikostrikov's hand-written ``normal_log_density``, and the KL of
``torch.distributions.kl_divergence(old, new)`` against his ``get_kl`` formula. Advantages are
GAE over ``reversed(range(rewards.size(0)))`` with ``masks``, normalised by ``(adv - mean) / std``;
the value net is fitted by ``torch.optim.LBFGS`` with a closure and an L2 term (where the original
calls scipy's ``fmin_l_bfgs_b``). ``trpo_step``: the surrogate ``-advantages * torch.exp(log_prob -
fixed_log_prob)``, ``loss_grad = torch.cat([grad.view(-1) for grad in grads]).data``, the
Fisher-vector product by double backward (``torch.autograd.grad(kl, params, create_graph=True)``,
``(flat_grad_kl * v).sum()``, grad again, ``+ v * damping``), ``conjugate_gradients`` (10
iterations, ``torch.dot``, in-place ``x += alpha * p``), the step scaled by ``lm = torch.sqrt(shs /
max_kl)``, and a backtracking ``linesearch`` over ``0.5 ** np.arange(max_backtracks)`` with
``torch.nn.utils.parameters_to_vector``/``vector_to_parameters``, accepting a step only when the
expected-improvement ratio holds and (spinningup's test) the mean KL stays within ``max_kl``.

Checked: the CG solution's relative residual ``|F x - g| / |g|``; on a float64 ``copy.deepcopy`` of
the policy, the Fisher-vector product against a central finite difference of the KL gradient (moved
by ``vector_to_parameters``) and against ``torch.autograd.functional.hvp`` of the KL as a function of
the flat parameters (through ``torch.func.functional_call``); the KL gradient vanishing at the old
parameters; every accepted step within the trust region; the average return rising.
"""
# ruff: noqa: UP008, B007  (the repository's spelling: super(Value, self), `for i in range(nsteps)`)

import copy
import math
import os

import numpy as np
import torch
import torch.nn as nn
from torch.distributions import Normal, kl_divergence
from torch.nn.utils import parameters_to_vector, vector_to_parameters

seed = int(os.environ.get("PROGRAM_SEED", "0"))
np.random.seed(seed)
torch.manual_seed(seed)

# args (ikostrikov's argparse defaults, shrunk)
gamma = 0.95
tau = 0.97
l2_reg = 1e-3
max_kl = 1e-2
damping = 1e-1
batch_envs = 24
num_iterations = 30


class PointMassEnv:
    """``n`` point masses on a line: state (position, velocity), the action a force; the reward is
    minus a quadratic cost, an episode lasts ``horizon`` steps."""

    obs_dim = 2
    act_dim = 1
    horizon = 20
    dt = 0.2

    def __init__(self, n, seed):
        self.n = n
        self.rng = np.random.RandomState(seed)

    def reset(self):
        self.t = 0
        self.state = np.stack([self.rng.uniform(-1.0, 1.0, self.n),
                               self.rng.uniform(-0.5, 0.5, self.n)], axis=1).astype(np.float32)
        return self.state.copy()

    def step(self, action):
        a = np.clip(action[:, 0], -2.0, 2.0)
        pos, vel = self.state[:, 0], self.state[:, 1]
        reward = -(pos ** 2 + 0.1 * vel ** 2 + 0.01 * a ** 2)
        vel = vel + self.dt * a + 0.01 * self.rng.randn(self.n)
        pos = pos + self.dt * vel
        self.state = np.stack([pos, vel], axis=1).astype(np.float32)
        self.t += 1
        return self.state.copy(), reward.astype(np.float32), self.t >= self.horizon


# ---- models.py ----
def mlp(sizes, activation, output_activation=nn.Identity):
    layers = []
    for j in range(len(sizes) - 1):
        act = activation if j < len(sizes) - 2 else output_activation
        layers += [nn.Linear(sizes[j], sizes[j + 1]), act()]
    return nn.Sequential(*layers)


class MLPGaussianActor(nn.Module):
    def __init__(self, obs_dim, act_dim, hidden_sizes, activation):
        super().__init__()
        log_std = -0.5 * np.ones(act_dim, dtype=np.float32)
        self.log_std = torch.nn.Parameter(torch.as_tensor(log_std))
        self.mu_net = mlp([obs_dim] + list(hidden_sizes) + [act_dim], activation)
        self.mu_net[-2].weight.data.mul_(0.1)
        self.mu_net[-2].bias.data.mul_(0.0)

    def _distribution(self, obs):
        mu = self.mu_net(obs)
        std = torch.exp(self.log_std)
        return Normal(mu, std)

    def _log_prob_from_distribution(self, pi, act):
        return pi.log_prob(act).sum(axis=-1)    # Last axis sum needed for Torch Normal distribution

    def forward(self, obs, act=None):
        pi = self._distribution(obs)
        logp_a = None
        if act is not None:
            logp_a = self._log_prob_from_distribution(pi, act)
        return pi, logp_a


class Value(nn.Module):
    def __init__(self, num_inputs):
        super(Value, self).__init__()
        self.affine1 = nn.Linear(num_inputs, 32)
        self.affine2 = nn.Linear(32, 32)
        self.value_head = nn.Linear(32, 1)
        self.value_head.weight.data.mul_(0.1)
        self.value_head.bias.data.mul_(0.0)

    def forward(self, x):
        x = torch.tanh(self.affine1(x))
        x = torch.tanh(self.affine2(x))
        return self.value_head(x)


# ---- utils.py ----
def normal_log_density(x, mean, log_std, std):
    var = std.pow(2)
    log_density = -(x - mean).pow(2) / (2 * var) - 0.5 * math.log(2 * math.pi) - log_std
    return log_density.sum(1, keepdim=True)


def get_flat_params_from(model):
    return parameters_to_vector(model.parameters()).detach()


def set_flat_params_to(model, flat_params):
    vector_to_parameters(flat_params, model.parameters())


def flat_grad(y, params, create_graph=False):
    grads = torch.autograd.grad(y, params, create_graph=create_graph)
    return torch.cat([g.view(-1) for g in grads])


# ---- trpo.py ----
def conjugate_gradients(Avp, b, nsteps, residual_tol=1e-10):
    x = torch.zeros(b.size())
    r = b.clone()
    p = b.clone()
    rdotr = torch.dot(r, r)
    for i in range(nsteps):
        _Avp = Avp(p)
        alpha = rdotr / torch.dot(p, _Avp)
        x += alpha * p
        r -= alpha * _Avp
        new_rdotr = torch.dot(r, r)
        betta = new_rdotr / rdotr
        p = r + betta * p
        rdotr = new_rdotr
        if rdotr < residual_tol:
            break
    return x


def linesearch(model, f, get_kl, x, fullstep, expected_improve_rate, max_backtracks=10, accept_ratio=.1):
    fval = f(True).data
    for (_n_backtracks, stepfrac) in enumerate(.5 ** np.arange(max_backtracks)):
        xnew = x + stepfrac * fullstep
        set_flat_params_to(model, xnew)
        newfval = f(True).data
        actual_improve = fval - newfval
        expected_improve = expected_improve_rate * stepfrac
        ratio = actual_improve / expected_improve
        with torch.no_grad():
            kl = get_kl().mean().item()
        if ratio.item() > accept_ratio and actual_improve.item() > 0 and kl <= max_kl:
            return True, xnew, _n_backtracks, kl
    set_flat_params_to(model, x)
    return False, x, max_backtracks, 0.0


def trpo_step(model, get_loss, get_kl, max_kl, damping):
    loss = get_loss()
    grads = torch.autograd.grad(loss, model.parameters())
    loss_grad = torch.cat([grad.view(-1) for grad in grads]).data

    def Fvp(v):
        kl = get_kl()
        kl = kl.mean()

        grads = torch.autograd.grad(kl, model.parameters(), create_graph=True)
        flat_grad_kl = torch.cat([grad.view(-1) for grad in grads])

        kl_v = (flat_grad_kl * v).sum()
        grads = torch.autograd.grad(kl_v, model.parameters())
        flat_grad_grad_kl = torch.cat([grad.contiguous().view(-1) for grad in grads]).data

        return flat_grad_grad_kl + v * damping

    stepdir = conjugate_gradients(Fvp, -loss_grad, 10)
    residual = ((Fvp(stepdir) + loss_grad).norm() / loss_grad.norm()).item()

    shs = 0.5 * (stepdir * Fvp(stepdir)).sum(0, keepdim=True)

    lm = torch.sqrt(shs / max_kl)
    fullstep = stepdir / lm[0]

    neggdotstepdir = (-loss_grad * stepdir).sum(0, keepdim=True)

    prev_params = get_flat_params_from(model)
    success, new_params, backtracks, kl = linesearch(model, get_loss, get_kl, prev_params, fullstep,
                                                     neggdotstepdir / lm[0])
    set_flat_params_to(model, new_params)

    return loss, residual, success, backtracks, kl, loss_grad.norm().item()


# ---- main.py ----
def select_action(state):
    with torch.no_grad():
        pi, _ = policy_net(state)
        return pi.sample()


def rollout(env):
    """One batch of ``batch_envs`` episodes, laid out as ikostrikov's Memory: time-major rows with
    ``mask = 0`` on each episode's last step."""
    state = env.reset()
    states, actions, rewards, masks = [], [], [], []
    done = False
    while not done:
        s = torch.from_numpy(state)
        action = select_action(s)
        next_state, reward, done = env.step(action.numpy())
        states.append(s)
        actions.append(action)
        rewards.append(torch.from_numpy(reward))
        masks.append(torch.zeros(env.n) if done else torch.ones(env.n))
        state = next_state
    # episode-major order, so the reversed GAE loop below walks each episode backwards
    states = torch.stack(states, 1).view(-1, env.obs_dim)
    actions = torch.stack(actions, 1).view(-1, env.act_dim)
    rewards = torch.stack(rewards, 1).view(-1)
    masks = torch.stack(masks, 1).view(-1)
    return states, actions, rewards, masks


def evaluate(policy, seed):
    env = PointMassEnv(64, seed + 1000)
    state = env.reset()
    total = np.zeros(env.n)
    done = False
    with torch.no_grad():
        while not done:
            pi, _ = policy(torch.from_numpy(state))
            state, reward, done = env.step(pi.mean.numpy())
            total += reward
    return float(total.mean())


def update_params(states, actions, rewards, masks):
    values = value_net(states)

    returns = torch.Tensor(actions.size(0), 1)
    deltas = torch.Tensor(actions.size(0), 1)
    advantages = torch.Tensor(actions.size(0), 1)

    prev_return = 0
    prev_value = 0
    prev_advantage = 0
    for i in reversed(range(rewards.size(0))):
        returns[i] = rewards[i] + gamma * prev_return * masks[i]
        deltas[i] = rewards[i] + gamma * prev_value * masks[i] - values.data[i]
        advantages[i] = deltas[i] + gamma * tau * prev_advantage * masks[i]

        prev_return = returns[i, 0]
        prev_value = values.data[i, 0]
        prev_advantage = advantages[i, 0]

    targets = returns

    # the original fits the value net with scipy.optimize.fmin_l_bfgs_b(maxiter=25)
    value_optimizer = torch.optim.LBFGS(value_net.parameters(), lr=1.0, max_iter=25)

    def get_value_loss():
        value_optimizer.zero_grad()
        values_ = value_net(states)
        value_loss = (values_ - targets).pow(2).mean()
        # weight decay
        for param in value_net.parameters():
            value_loss += param.pow(2).sum() * l2_reg
        value_loss.backward()
        return value_loss

    value_optimizer.step(get_value_loss)
    with torch.no_grad():
        value_loss = (value_net(states) - targets).pow(2).mean().item()

    advantages = (advantages - advantages.mean()) / advantages.std()

    pi_old, fixed_log_prob = policy_net(states, actions)
    fixed_log_prob = fixed_log_prob.data.clone().unsqueeze(1)
    old_mean, old_std = pi_old.mean.detach(), pi_old.stddev.detach()

    def get_loss(volatile=False):
        if volatile:
            with torch.no_grad():
                _, log_prob = policy_net(states, actions)
        else:
            _, log_prob = policy_net(states, actions)
        action_loss = -advantages * torch.exp(log_prob.unsqueeze(1) - fixed_log_prob)
        return action_loss.mean()

    def get_kl():
        pi, _ = policy_net(states)
        return kl_divergence(Normal(old_mean, old_std), pi).sum(-1, keepdim=True)

    return trpo_step(policy_net, get_loss, get_kl, max_kl, damping) + (value_loss,)


policy_net = MLPGaussianActor(PointMassEnv.obs_dim, PointMassEnv.act_dim, (32, 32), nn.Tanh)
value_net = Value(PointMassEnv.obs_dim)
n_params = parameters_to_vector(policy_net.parameters()).numel()
print(f"policy parameters {n_params} value parameters {sum(p.numel() for p in value_net.parameters())}")

# ---- checks on the first batch, before training ----
env = PointMassEnv(batch_envs, seed)
states, actions, rewards, masks = rollout(env)
print(f"batch states {tuple(states.shape)} actions {tuple(actions.shape)} episodes {int((masks == 0).sum())}")

with torch.no_grad():
    pi, logp = policy_net(states, actions)
    mean = pi.mean
    log_std = policy_net.log_std.expand_as(mean)
    logp_manual = normal_log_density(actions, mean, log_std, torch.exp(log_std)).squeeze(1)
logp_err = (logp - logp_manual).abs().max().item()

# float64 twin: the old distribution frozen at theta0, the KL as a function of the parameters
pol64 = copy.deepcopy(policy_net).double()
states64 = states.double()
theta0 = get_flat_params_from(pol64)
with torch.no_grad():
    pi0 = pol64(states64)[0]
    mean0, std0 = pi0.mean, pi0.stddev
params64 = list(pol64.parameters())
names64 = [name for name, _ in pol64.named_parameters()]


def kl64():
    pi, _ = pol64(states64)
    return kl_divergence(Normal(mean0, std0), pi).sum(-1).mean()


def kl_manual64():
    # ikostrikov's get_kl, with the old statistics detached
    mean1 = pol64.mu_net(states64)
    log_std1 = pol64.log_std.expand_as(mean1)
    std1 = torch.exp(log_std1)
    log_std0 = torch.log(std0).expand_as(mean1)
    kl = log_std1 - log_std0 + (std0.pow(2) + (mean0 - mean1).pow(2)) / (2.0 * std1.pow(2)) - 0.5
    return kl.sum(1, keepdim=True).mean()


# move away from theta0 so the KL and its gradient are not trivially zero
direction = torch.randn(n_params, dtype=torch.float64)
set_flat_params_to(pol64, theta0 + 0.05 * direction / direction.norm())
kl_formula_err = abs(kl64().item() - kl_manual64().item()) / kl64().item()
set_flat_params_to(pol64, theta0)
grad_kl0 = flat_grad(kl64(), params64).norm().item()

v = torch.randn(n_params, dtype=torch.float64)
flat_grad_kl = flat_grad(kl64(), params64, create_graph=True)
hvp = flat_grad((flat_grad_kl * v).sum(), params64)
eps = 1e-5
set_flat_params_to(pol64, theta0 + eps * v)
g_plus = flat_grad(kl64(), params64)
set_flat_params_to(pol64, theta0 - eps * v)
g_minus = flat_grad(kl64(), params64)
set_flat_params_to(pol64, theta0)
hvp_fd_err = ((g_plus - g_minus) / (2 * eps) - hvp).norm().item() / hvp.norm().item()

shapes = [p.shape for p in params64]
numels = [p.numel() for p in params64]


def kl_of_flat(flat):
    chunks = torch.split(flat, numels)
    params = {name: c.view(s) for name, c, s in zip(names64, chunks, shapes)}
    pi, _ = torch.func.functional_call(pol64, params, (states64,))
    return kl_divergence(Normal(mean0, std0), pi).sum(-1).mean()


_, hvp_functional = torch.autograd.functional.hvp(kl_of_flat, theta0, v)
hvp_func_err = (hvp_functional - hvp).norm().item() / hvp.norm().item()
vFv = torch.dot(v, hvp).item()
print(f"log_prob vs normal_log_density max err {logp_err:.2e}, KL formula rel err {kl_formula_err:.2e}")
print(f"|grad KL| at old params {grad_kl0:.2e}, HVP vs finite difference {hvp_fd_err:.2e}, "
      f"vs autograd.functional.hvp {hvp_func_err:.2e}, v'Fv {vFv:.4f}")

# ---- training ----
first_return = evaluate(policy_net, seed)
print(f"initial deterministic return {first_return:.4f}")
residuals, kls, returns_log, accepted = [], [], [], 0
for i_episode in range(num_iterations):
    states, actions, rewards, masks = rollout(env)
    batch_return = rewards.sum().item() / batch_envs
    returns_log.append(batch_return)
    loss, residual, success, backtracks, kl, grad_norm, value_loss = update_params(states, actions, rewards, masks)
    residuals.append(residual)
    accepted += int(success)
    if success:
        kls.append(kl)
    if (i_episode + 1) % 5 == 0:
        print(f"Episode {i_episode + 1}\tAverage reward {np.mean(returns_log[-5:]):.3f}\t"
              f"CG residual {np.mean(residuals[-5:]):.2e}\tvalue loss {value_loss:.4f}\t"
              f"grad norm {grad_norm:.4f}\tlog_std {policy_net.log_std.item():.4f}")

final_return = evaluate(policy_net, seed)
max_kl_ratio = max(kls) / max_kl if kls else 0.0
print(f"accepted {accepted} of {num_iterations} steps, largest KL / max_kl {max_kl_ratio:.4f}")
print(f"FINAL first_return={first_return:.4f} final_return={final_return:.4f} "
      f"train_first={np.mean(returns_log[:5]):.4f} train_last={np.mean(returns_log[-5:]):.4f} "
      f"cg_residual={max(residuals):.6f} hvp_fd_err={hvp_fd_err:.8f} hvp_func_err={hvp_func_err:.8f} "
      f"grad_kl0={grad_kl0:.8f} logp_err={logp_err:.8f} kl_formula_err={kl_formula_err:.8f} "
      f"accepted={accepted} max_kl_ratio={max_kl_ratio:.4f} log_std={policy_net.log_std.item():.4f}")
