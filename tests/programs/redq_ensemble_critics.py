"""REDQ (Chen et al. 2021): an ensemble of critics stacked with torch.func on a 1-d point mass.

In the style of watchernyu/REDQ (`redq_sac_agent.py`) and the torch.func model-ensembling tutorial:
N small Q-networks made as `nn.Module`s, their parameters and buffers stacked by
`torch.func.stack_module_state(models)`, a stateless copy on the `'meta'` device by
`copy.deepcopy(models[0]).to('meta')`, `fmodel(params, buffers, x)` through
`torch.func.functional_call(base_model, (params, buffers), (x,))`, evaluated for all critics at once by
`torch.func.vmap(fmodel, in_dims=(0, 0, None))`, the stacked tensors made leaves by
`{k: v.detach().requires_grad_() for ...}` and trained by one Adam; the REDQ target: the min over
`torch.randperm(N, generator=g)[:M]` critics of the target ensemble (the `sample_idxs` of
`get_redq_q_target_no_grad`), `torch.min(q_prediction_next_cat, dim=0, keepdim=True)`, a UTD ratio of
several critic updates per environment step, Polyak averaging of the stacked target params with
`torch._foreach_mul_(targets, polyak)` + `torch._foreach_add_(targets, online, alpha=1 - polyak)`
under `torch.no_grad()` (against `torch._foreach_lerp_` on a copy: must agree), a deterministic
tanh actor (`torch.tanh(mu) * act_limit`) trained on the mean over all critics (`q.mean(0)`) with
the critics' `requires_grad_(False)` toggled around it, a replay buffer of NumPy arrays indexed by
`np.random.randint`, Gaussian exploration noise. Reports the critics' error against Monte-Carlo
returns of the greedy policy and the return gain over the untrained actor.
Check: the vmapped ensemble's Q values (and gradients into one critic) equal a Python loop over
the N modules carrying the same parameters.
"""

import copy
import os

import numpy as np
import torch
import torch.nn as nn
from torch.func import functional_call, stack_module_state, vmap

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)
g = torch.Generator().manual_seed(seed)

num_Q = 6
num_min = 2
utd_ratio = 3
gamma = 0.9
polyak = 0.95
act_limit = 1.0
obs_dim, act_dim = 2, 1
horizon = 20
start_steps = 150
total_steps = 450
batch_size = 64


# --- a 1-d point mass: state (position, velocity), reward for sitting at the origin
class PointMass:
    def __init__(self, rng):
        self.rng = rng

    def reset(self):
        self.x = self.rng.uniform(-1, 1)
        self.v = 0.0
        self.t = 0
        return np.array([self.x, self.v], dtype=np.float32)

    def step(self, a):
        a = float(np.clip(a, -act_limit, act_limit))
        self.v = 0.8 * self.v + 0.2 * a
        self.x = float(np.clip(self.x + self.v, -2, 2))
        self.t += 1
        r = -(self.x ** 2) - 0.05 * a ** 2
        return np.array([self.x, self.v], dtype=np.float32), r, self.t >= horizon


class QNet(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim + act_dim, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x)


class Actor(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden), nn.ReLU(), nn.Linear(hidden, act_dim))

    def forward(self, obs):
        return torch.tanh(self.net(obs)) * act_limit


class ReplayBuffer:
    def __init__(self, size):
        self.obs1 = np.zeros((size, obs_dim), dtype=np.float32)
        self.obs2 = np.zeros((size, obs_dim), dtype=np.float32)
        self.acts = np.zeros((size, act_dim), dtype=np.float32)
        self.rews = np.zeros(size, dtype=np.float32)
        self.done = np.zeros(size, dtype=np.float32)
        self.ptr, self.size, self.max_size = 0, 0, size

    def store(self, obs, act, rew, next_obs, done):
        self.obs1[self.ptr], self.obs2[self.ptr], self.acts[self.ptr] = obs, next_obs, act
        self.rews[self.ptr], self.done[self.ptr] = rew, done
        self.ptr = (self.ptr + 1) % self.max_size
        self.size = min(self.size + 1, self.max_size)

    def sample_batch(self, batch_size):
        idxs = np.random.randint(0, self.size, size=batch_size)
        return dict(obs1=torch.Tensor(self.obs1[idxs]), obs2=torch.Tensor(self.obs2[idxs]),
                    acts=torch.Tensor(self.acts[idxs]), rews=torch.Tensor(self.rews[idxs]),
                    done=torch.Tensor(self.done[idxs]))


models = [QNet() for _ in range(num_Q)]
params, buffers = stack_module_state(models)
base_model = copy.deepcopy(models[0]).to("meta")


def fmodel(params, buffers, x):
    return functional_call(base_model, (params, buffers), (x,))


ensemble = vmap(fmodel, in_dims=(0, 0, None))
print(f"stacked {[(k, tuple(v.shape)) for k, v in list(params.items())[:2]]} on {base_model.net[0].weight.device}")

# --- check: the vmapped ensemble equals a loop over the modules (values and one critic's gradient)
probe = torch.randn(16, obs_dim + act_dim)
looped = torch.stack([m(probe) for m in models])
params = {k: v.detach().requires_grad_() for k, v in params.items()}
vmapped = ensemble(params, buffers, probe)
vmapped[3].sum().backward()
models[3](probe).sum().backward()
vmap_err = (vmapped - looped).abs().max().item()
grad_err = max((params[k].grad[3] - p.grad).abs().max().item() for k, p in models[3].named_parameters())
others_zero = all(params[k].grad[[0, 1, 2, 4, 5]].abs().max().item() == 0 for k in params)
print(f"vmap vs loop err {vmap_err:.2e} grad err {grad_err:.2e} other critics' grads zero {others_zero}")
for p in params.values():
    p.grad = None

target_params = {k: v.detach().clone() for k, v in params.items()}
actor = Actor()
q_optimizer = torch.optim.Adam(params.values(), lr=3e-3)
pi_optimizer = torch.optim.Adam(actor.parameters(), lr=1e-3)


def q_values(params, obs, act):
    return ensemble(params, buffers, torch.cat([obs, act], 1)).squeeze(-1)  # (N, B)


def get_redq_q_target_no_grad(obs_next, rews, done):
    sample_idxs = torch.randperm(num_Q, generator=g)[:num_min]
    with torch.no_grad():
        a_next = actor(obs_next)
        q_prediction_next_cat = q_values(target_params, obs_next, a_next)[sample_idxs]
        min_q, min_indices = torch.min(q_prediction_next_cat, dim=0, keepdim=True)
        y_q = rews + gamma * (1 - done) * min_q.squeeze(0)
    return y_q, sample_idxs


def rollout(actor, env, noise=0.0):
    obs, ret, done = env.reset(), 0.0, False
    while not done:
        with torch.no_grad():
            a = actor(torch.as_tensor(obs).unsqueeze(0)).squeeze(0).numpy()
        a = a + noise * np.random.randn(act_dim)
        obs, r, done = env.step(a[0])
        ret += r
    return ret


def evaluate(actor, n=16):
    env = PointMass(np.random.RandomState(1234))
    return float(np.mean([rollout(actor, env) for _ in range(n)]))


def q_error_to_mc(n=16):
    """Critics' mean Q at the start state against the Monte-Carlo discounted return of the policy."""
    env = PointMass(np.random.RandomState(4321))
    errs, mc = [], []
    for _ in range(n):
        obs = env.reset()
        start, disc, ret, done = obs.copy(), 1.0, 0.0, False
        with torch.no_grad():
            a0 = actor(torch.as_tensor(start).unsqueeze(0))
            q0 = q_values(params, torch.as_tensor(start).unsqueeze(0), a0).mean().item()
        a = a0.squeeze(0).numpy()
        while not done:
            obs, r, done = env.step(a[0])
            ret += disc * r
            disc *= gamma
            with torch.no_grad():
                a = actor(torch.as_tensor(obs).unsqueeze(0)).squeeze(0).numpy()
        errs.append(q0 - ret)
        mc.append(ret)
    return float(np.mean(np.abs(errs))), float(np.mean(np.abs(mc)))


return_before = evaluate(actor)
buffer = ReplayBuffer(total_steps)
env = PointMass(np.random.RandomState(seed))
obs, ep_ret = env.reset(), 0.0
polyak_err = 0.0
q_losses = []
for t in range(total_steps):
    if t < start_steps:
        a = np.random.uniform(-act_limit, act_limit, act_dim).astype(np.float32)
    else:
        with torch.no_grad():
            a = actor(torch.as_tensor(obs).unsqueeze(0)).squeeze(0).numpy()
        a = np.clip(a + 0.3 * np.random.randn(act_dim), -act_limit, act_limit).astype(np.float32)
    next_obs, r, done = env.step(a[0])
    buffer.store(obs, a, r, next_obs, float(done and env.t < horizon))
    obs = env.reset() if done else next_obs
    if t < start_steps:
        continue
    for i_update in range(utd_ratio):
        batch = buffer.sample_batch(batch_size)
        y_q, sample_idxs = get_redq_q_target_no_grad(batch["obs2"], batch["rews"], batch["done"])
        q_prediction = q_values(params, batch["obs1"], batch["acts"])
        q_loss_all = ((q_prediction - y_q.unsqueeze(0)) ** 2).mean() * num_Q
        q_optimizer.zero_grad()
        q_loss_all.backward()
        q_optimizer.step()
        q_losses.append(q_loss_all.item() / num_Q)
        online = [params[k].detach() for k in target_params]
        targets = list(target_params.values())
        if i_update == utd_ratio - 1:
            lerped = [p.clone() for p in targets]
            torch._foreach_lerp_(lerped, online, 1 - polyak)
        with torch.no_grad():
            torch._foreach_mul_(targets, polyak)
            torch._foreach_add_(targets, online, alpha=1 - polyak)
        if i_update == utd_ratio - 1:
            polyak_err = max(polyak_err, max((a - b).abs().max().item() for a, b in zip(lerped, targets)))
        if i_update == utd_ratio - 1:
            for p in params.values():
                p.requires_grad_(False)
            a_tilda = actor(batch["obs1"])
            q_a_tilda = q_values(params, batch["obs1"], a_tilda).mean(0)
            actor_loss = (-q_a_tilda).mean()
            pi_optimizer.zero_grad()
            actor_loss.backward()
            pi_optimizer.step()
            for p in params.values():
                p.requires_grad_(True)
    if (t + 1) % 150 == 0:
        print(f"step {t + 1} q loss {np.mean(q_losses[-100:]):.4f} return {evaluate(actor, 4):.3f} "
              f"last target idxs {len(sample_idxs)} of {num_Q}")

return_after = evaluate(actor)
q_err, mc_scale = q_error_to_mc()
print(f"return before {return_before:.3f} after {return_after:.3f}; Q error to MC {q_err:.3f} (|MC| {mc_scale:.3f})")
print(f"FINAL return_gain={return_after - return_before:.4f} return_after={return_after:.4f} "
      f"q_mc_err={q_err:.4f} q_mc_rel={q_err / mc_scale:.4f} q_loss_last={np.mean(q_losses[-100:]):.5f} "
      f"vmap_err={vmap_err:.2e} grad_err={grad_err:.2e} polyak_err={polyak_err:.2e}")
