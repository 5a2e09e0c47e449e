"""PETS (Chua et al. 2018) as kchua/handful-of-trials' PyTorch port (quanvuong/handful-of-trials-
pytorch: ``PtModel``, ``MPC``, ``CEMOptimizer``) and facebookresearch/mbrl-lib write it, on a
NumPy 1-D point mass that must reach a goal.

The probabilistic ensemble is ``PtModel``: stacked weights ``nn.Parameter`` of shape ``(E, in,
out)`` applied by ``inputs.matmul(self.lin0_w) + self.lin0_b`` (checked against ``torch.bmm``,
``torch.einsum('eni,eio->eno')`` and a per-member ``F.linear`` loop), ``swish``, input statistics in
``nn.Parameter(..., requires_grad=False)`` set through ``.data``, weights drawn by mbrl-lib's
``truncated_normal_`` (``nn.init.normal_`` then ``tensor[cond] = torch.normal(mean, std,
size=(n,))`` until no draw lies beyond two std), the learned ``max_logvar``/``min_logvar`` soft
bounds ``self.max_logvar - F.softplus(self.max_logvar - logvar)`` and ``self.min_logvar +
F.softplus(logvar - self.min_logvar)``, the loss ``((mean - targ) ** 2) * inv_var + logvar`` with
``.mean(-1).mean(-1).sum()`` (twice ``F.gaussian_nll_loss`` per member), ``compute_decays`` and
``0.01 * (max_logvar.sum() - min_logvar.sum())``, bootstrapped rows
``np.random.randint(N, size=[E, N])`` shuffled per epoch, Adam.

The planner is ``MPC`` with TS-infinity particles: ``_expand_to_ts_format``/``_flatten_to_matrix``
by ``view`` + ``transpose(0, 1)`` + ``contiguous`` (a round trip), action sequences
``view(-1, plan_hor, dU).transpose(0, 1)[:, :, None].expand(-1, -1, npart, -1)``,
``mean + torch.randn_like(mean) * var.sqrt()`` predictions of the state change,
``costs[costs != costs] = 1e6``; and ``CEMOptimizer`` (``constrained_var`` from the bounds,
truncated normal samples by ``torch.fmod(torch.randn(...), 2)``, ``torch.clamp`` to the action
box, elites by ``torch.topk(costs, k, largest=False)`` (against ``argsort``), mean/var refit with
``torch.var(unbiased=False)`` and ``alpha`` smoothing, the shifted warm start).

Checked: the three ensemble matmuls agree, the TS round trip is exact, every truncated draw lies
within two std, logvars stay inside the learned bounds, the held-out NLL falls, the MPC episode
costs less than random and zero actions.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
np.random.seed(seed)
torch.manual_seed(seed)

TORCH_DEVICE = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


class PointMass:
    """x'' = u on a line, dt = 0.1, |u| <= 1, small process noise; the cost is the squared distance
    to ``goal`` plus a little velocity and action."""

    dO, dU = 2, 1
    ac_lb, ac_ub = np.array([-1.0]), np.array([1.0])
    goal = 1.0
    dt = 0.1

    def __init__(self, seed):
        self.rng = np.random.RandomState(seed)

    def reset(self):
        self.state = np.array([self.rng.uniform(-0.2, 0.2), 0.0])
        return self.state.copy()

    def step(self, u):
        u = float(np.clip(u[0], -1.0, 1.0))
        x, v = self.state
        v = v + self.dt * u + 0.005 * self.rng.randn()
        x = x + self.dt * v
        self.state = np.array([x, v])
        return self.state.copy(), cost_np(self.state, u)


def cost_np(state, u):
    return (state[0] - PointMass.goal) ** 2 + 0.1 * state[1] ** 2 + 0.01 * u ** 2


# ---- config: obs_cost_fn / ac_cost_fn / obs_preproc / obs_postproc ----
def obs_cost_fn(obs):
    return (obs[:, 0] - PointMass.goal) ** 2 + 0.1 * obs[:, 1] ** 2


def ac_cost_fn(acs):
    return 0.01 * (acs ** 2).sum(dim=1)


def obs_preproc(obs):
    return obs


def obs_postproc(obs, pred):
    return obs + pred


def targ_proc(obs, next_obs):
    return next_obs - obs


# ---- modeling/models.py (the PyTorch port) ----
def swish(x):
    return x * torch.sigmoid(x)


def truncated_normal_(tensor, mean=0, std=1):
    # mbrl-lib's mbrl/util/math.py
    torch.nn.init.normal_(tensor, mean=mean, std=std)
    while True:
        cond = torch.logical_or(tensor < mean - 2 * std, tensor > mean + 2 * std)
        bound_violations = torch.sum(cond).item()
        if bound_violations == 0:
            break
        tensor[cond] = torch.normal(mean, std, size=(bound_violations,), device=tensor.device)
    return tensor


def get_weight_bias(ensemble_size, in_features, out_features):
    w = torch.empty(ensemble_size, in_features, out_features)
    for i in range(ensemble_size):
        truncated_normal_(w[i], std=1.0 / (2.0 * np.sqrt(in_features)))
    w = nn.Parameter(w)
    b = nn.Parameter(torch.zeros(ensemble_size, 1, out_features, dtype=torch.float32))
    return w, b


class PtModel(nn.Module):
    def __init__(self, ensemble_size, in_features, out_features, hidden=32):
        super().__init__()
        self.num_nets = ensemble_size
        self.in_features = in_features
        self.out_features = out_features

        self.lin0_w, self.lin0_b = get_weight_bias(ensemble_size, in_features, hidden)
        self.lin1_w, self.lin1_b = get_weight_bias(ensemble_size, hidden, hidden)
        self.lin2_w, self.lin2_b = get_weight_bias(ensemble_size, hidden, out_features)

        self.inputs_mu = nn.Parameter(torch.zeros(in_features), requires_grad=False)
        self.inputs_sigma = nn.Parameter(torch.zeros(in_features), requires_grad=False)

        self.max_logvar = nn.Parameter(torch.ones(1, out_features // 2, dtype=torch.float32) / 2.0)
        self.min_logvar = nn.Parameter(- torch.ones(1, out_features // 2, dtype=torch.float32) * 10.0)

    def compute_decays(self):
        lin0_decays = 0.000025 * (self.lin0_w ** 2).sum() / 2.0
        lin1_decays = 0.00005 * (self.lin1_w ** 2).sum() / 2.0
        lin2_decays = 0.0001 * (self.lin2_w ** 2).sum() / 2.0
        return lin0_decays + lin1_decays + lin2_decays

    def fit_input_stats(self, data):
        mu = np.mean(data, axis=0, keepdims=True)
        sigma = np.std(data, axis=0, keepdims=True)
        sigma[sigma < 1e-12] = 1.0
        self.inputs_mu.data = torch.from_numpy(mu).to(TORCH_DEVICE).float()
        self.inputs_sigma.data = torch.from_numpy(sigma).to(TORCH_DEVICE).float()

    def forward(self, inputs, ret_logvar=False):
        # Transform inputs
        inputs = (inputs - self.inputs_mu) / self.inputs_sigma

        inputs = inputs.matmul(self.lin0_w) + self.lin0_b
        inputs = swish(inputs)

        inputs = inputs.matmul(self.lin1_w) + self.lin1_b
        inputs = swish(inputs)

        inputs = inputs.matmul(self.lin2_w) + self.lin2_b

        mean = inputs[:, :, :self.out_features // 2]

        logvar = inputs[:, :, self.out_features // 2:]
        logvar = self.max_logvar - F.softplus(self.max_logvar - logvar)
        logvar = self.min_logvar + F.softplus(logvar - self.min_logvar)

        if ret_logvar:
            return mean, logvar

        return mean, torch.exp(logvar)


def shuffle_rows(arr):
    idxs = np.argsort(np.random.uniform(size=arr.shape), axis=-1)
    return arr[np.arange(arr.shape[0])[:, None], idxs]


def nll_per_member(model, inputs, targets):
    """The PETS training loss before the sum over members: shape (E,)."""
    mean, logvar = model(inputs, ret_logvar=True)
    inv_var = torch.exp(-logvar)
    return (((mean - targets) ** 2) * inv_var + logvar).mean(-1).mean(-1)


def train_model(model, optim, train_in, train_targ, holdout_in, holdout_targ, epochs, batch_size=32):
    model.fit_input_stats(train_in)
    idxs = np.random.randint(train_in.shape[0], size=[model.num_nets, train_in.shape[0]])
    num_batch = int(np.ceil(idxs.shape[-1] / batch_size))
    hold_in = torch.from_numpy(holdout_in).float()[None].expand(model.num_nets, -1, -1)
    hold_targ = torch.from_numpy(holdout_targ).float()[None].expand(model.num_nets, -1, -1)
    history = []
    for epoch in range(epochs):
        for batch_num in range(num_batch):
            batch_idxs = idxs[:, batch_num * batch_size: (batch_num + 1) * batch_size]

            loss = 0.01 * (model.max_logvar.sum() - model.min_logvar.sum())
            loss += model.compute_decays()

            train_in_b = torch.from_numpy(train_in[batch_idxs]).to(TORCH_DEVICE).float()
            train_targ_b = torch.from_numpy(train_targ[batch_idxs]).to(TORCH_DEVICE).float()

            mean, logvar = model(train_in_b, ret_logvar=True)
            inv_var = torch.exp(-logvar)

            train_losses = ((mean - train_targ_b) ** 2) * inv_var + logvar
            train_losses = train_losses.mean(-1).mean(-1).sum()
            # Only taking mean over the last 2 dimensions
            # The first dimension corresponds to each model in the ensemble

            loss += train_losses

            optim.zero_grad()
            loss.backward()
            optim.step()

        idxs = shuffle_rows(idxs)

        with torch.no_grad():
            hold_nll = nll_per_member(model, hold_in, hold_targ)
            mse = ((model(hold_in)[0] - hold_targ) ** 2).mean(-1).mean(-1)
        history.append((hold_nll.mean().item(), mse.mean().item()))
        if (epoch + 1) % 10 == 0:
            print(f"epoch {epoch + 1} holdout nll {hold_nll.mean().item():.4f} "
                  f"mse {mse.mean().item():.3e} max_logvar {model.max_logvar.mean().item():.3f} "
                  f"min_logvar {model.min_logvar.mean().item():.3f}")
    return history


# ---- optimizers/cem.py (in torch) ----
class CEMOptimizer:
    def __init__(self, sol_dim, max_iters, popsize, num_elites, cost_function,
                 upper_bound=None, lower_bound=None, epsilon=0.001, alpha=0.25):
        self.sol_dim, self.max_iters, self.popsize, self.num_elites = sol_dim, max_iters, popsize, num_elites
        self.ub, self.lb = upper_bound, lower_bound
        self.epsilon, self.alpha = epsilon, alpha
        self.cost_function = cost_function
        self.max_abs_draw = 0.0
        self.topk_matches_argsort = True
        if num_elites > popsize:
            raise ValueError("Number of elites must be at most the population size.")

    def obtain_solution(self, init_mean, init_var):
        mean, var, t = init_mean, init_var, 0
        while (t < self.max_iters) and torch.max(var) > self.epsilon:
            lb_dist, ub_dist = mean - self.lb, self.ub - mean
            constrained_var = torch.min(torch.min(torch.square(lb_dist / 2), torch.square(ub_dist / 2)), var)

            draws = torch.fmod(torch.randn(self.popsize, self.sol_dim), 2)
            self.max_abs_draw = max(self.max_abs_draw, draws.abs().max().item())
            samples = torch.clamp(draws * torch.sqrt(constrained_var) + mean, self.lb, self.ub)

            costs = self.cost_function(samples)
            elite_idx = torch.topk(costs, self.num_elites, largest=False).indices
            self.topk_matches_argsort &= torch.equal(elite_idx, torch.argsort(costs)[:self.num_elites])
            elites = samples[elite_idx]

            new_mean = torch.mean(elites, dim=0)
            new_var = torch.var(elites, unbiased=False, dim=0)

            mean = self.alpha * mean + (1 - self.alpha) * new_mean
            var = self.alpha * var + (1 - self.alpha) * new_var

            t += 1

        return mean


# ---- controllers/MPC.py ----
class MPC:
    def __init__(self, model, plan_hor=8, npart=10, popsize=64, num_elites=8, max_iters=4):
        self.model = model
        self.dO, self.dU = PointMass.dO, PointMass.dU
        self.plan_hor, self.npart = plan_hor, npart
        self.ac_ub = torch.from_numpy(np.tile(PointMass.ac_ub, plan_hor)).float()
        self.ac_lb = torch.from_numpy(np.tile(PointMass.ac_lb, plan_hor)).float()
        self.init_var = torch.from_numpy(np.tile(np.square(PointMass.ac_ub - PointMass.ac_lb) / 16, plan_hor)).float()
        self.optimizer = CEMOptimizer(plan_hor * self.dU, max_iters, popsize, num_elites, self._compile_cost,
                                      upper_bound=self.ac_ub, lower_bound=self.ac_lb)
        self.prev_sol = ((self.ac_lb + self.ac_ub) / 2)

    def reset(self):
        self.prev_sol = ((self.ac_lb + self.ac_ub) / 2)

    def act(self, obs):
        self.sy_cur_obs = obs
        with torch.no_grad():
            soln = self.optimizer.obtain_solution(self.prev_sol, self.init_var)
        self.prev_sol = torch.cat([soln[self.dU:], torch.zeros(self.dU)])
        return soln[:self.dU].numpy()

    def _compile_cost(self, ac_seqs):
        nopt = ac_seqs.shape[0]
        # Reshape ac_seqs so that it's amenable to parallel compute
        ac_seqs = ac_seqs.view(-1, self.plan_hor, self.dU)
        transposed = ac_seqs.transpose(0, 1)
        expanded = transposed[:, :, None]
        tiled = expanded.expand(-1, -1, self.npart, -1)
        ac_seqs = tiled.contiguous().view(self.plan_hor, -1, self.dU)

        # Expand current observation
        cur_obs = torch.from_numpy(self.sy_cur_obs).float().to(TORCH_DEVICE)
        cur_obs = cur_obs[None]
        cur_obs = cur_obs.expand(nopt * self.npart, -1)

        costs = torch.zeros(nopt, self.npart, device=TORCH_DEVICE)
        for t in range(self.plan_hor):
            cur_acs = ac_seqs[t]
            next_obs = self._predict_next_obs(cur_obs, cur_acs)
            cost = obs_cost_fn(next_obs) + ac_cost_fn(cur_acs)
            cost = cost.view(-1, self.npart)
            costs += cost
            cur_obs = next_obs

        # Replace nan with high cost
        costs[costs != costs] = 1e6
        return costs.mean(dim=1)

    def _predict_next_obs(self, obs, acs):
        proc_obs = obs_preproc(obs)
        proc_obs = self._expand_to_ts_format(proc_obs)
        acs = self._expand_to_ts_format(acs)
        inputs = torch.cat((proc_obs, acs), dim=-1)
        mean, var = self.model(inputs)
        predictions = mean + torch.randn_like(mean, device=TORCH_DEVICE) * var.sqrt()
        # TS Optimization: Remove additional dimension
        predictions = self._flatten_to_matrix(predictions)
        return obs_postproc(obs, predictions)

    def _expand_to_ts_format(self, mat):
        dim = mat.shape[-1]
        reshaped = mat.view(-1, self.model.num_nets, self.npart // self.model.num_nets, dim)
        transposed = reshaped.transpose(0, 1)
        reshaped = transposed.contiguous().view(self.model.num_nets, -1, dim)
        return reshaped

    def _flatten_to_matrix(self, ts_fmt_arr):
        dim = ts_fmt_arr.shape[-1]
        reshaped = ts_fmt_arr.view(self.model.num_nets, -1, self.npart // self.model.num_nets, dim)
        transposed = reshaped.transpose(0, 1)
        reshaped = transposed.contiguous().view(-1, dim)
        return reshaped


def run_episode(env, policy, horizon=40):
    obs = env.reset()
    total, states, acts = 0.0, [obs], []
    for _ in range(horizon):
        u = policy(obs)
        next_obs, c = env.step(u)
        total += c
        acts.append(np.clip(u, -1.0, 1.0))
        obs = next_obs
        states.append(obs)
    return total, np.array(states), np.array(acts)


# ---- data: random-action rollouts ----
E = 5
env = PointMass(seed)
train_obs, train_acs, train_next = [], [], []
for _ in range(12):
    _, states, acts = run_episode(env, lambda obs: np.random.uniform(-1.0, 1.0, size=1))
    train_obs.append(states[:-1])
    train_acs.append(acts)
    train_next.append(states[1:])
obs_all, acs_all, next_all = map(np.concatenate, (train_obs, train_acs, train_next))
inputs_all = np.concatenate([obs_preproc(obs_all), acs_all], axis=-1).astype(np.float32)
targets_all = targ_proc(obs_all, next_all).astype(np.float32)
perm = np.random.permutation(len(inputs_all))
n_hold = len(inputs_all) // 5
hold_in, hold_targ = inputs_all[perm[:n_hold]], targets_all[perm[:n_hold]]
tr_in, tr_targ = inputs_all[perm[n_hold:]], targets_all[perm[n_hold:]]
print(f"transitions train {len(tr_in)} holdout {len(hold_in)} inputs {tr_in.shape[1]} targets {tr_targ.shape[1]}")

model = PtModel(E, PointMass.dO + PointMass.dU, 2 * PointMass.dO).to(TORCH_DEVICE)
max_init = max(((w.abs() / (1.0 / (2.0 * np.sqrt(w.shape[1])))).max().item()
                for name, w in model.named_parameters() if name.endswith("_w")))
print(f"parameters {sorted(n for n, p in model.named_parameters() if p.requires_grad)} "
      f"frozen {sorted(n for n, p in model.named_parameters() if not p.requires_grad)}")

# ---- ensemble checks at initialisation ----
x = torch.randn(E, 7, PointMass.dO + PointMass.dU)
w, b = model.lin0_w, model.lin0_b
with torch.no_grad():
    by_matmul = x.matmul(w) + b
    by_bmm = torch.bmm(x, w) + b
    by_einsum = torch.einsum("eni,eio->eno", x, w) + b
    by_loop = torch.stack([F.linear(x[e], w[e].t(), b[e, 0]) for e in range(E)])
ens_err = max((by_matmul - other).abs().max().item() for other in (by_bmm, by_einsum, by_loop))

optim = torch.optim.Adam(model.parameters(), lr=0.003)
model.fit_input_stats(tr_in)
with torch.no_grad():
    hin = torch.from_numpy(hold_in)[None].expand(E, -1, -1)
    htarg = torch.from_numpy(hold_targ)[None].expand(E, -1, -1)
    first_nll = nll_per_member(model, hin, htarg).mean().item()
    mean, var = model(hin)
    gnll = torch.stack([F.gaussian_nll_loss(mean[e], htarg[e], var[e]) for e in range(E)])
    gnll_err = (nll_per_member(model, hin, htarg) - 2 * gnll).abs().max().item()
print(f"ensemble matmul/bmm/einsum/loop max diff {ens_err:.2e}, PETS loss vs 2 * gaussian_nll_loss {gnll_err:.2e}, "
      f"initial holdout nll {first_nll:.4f}")

history = train_model(model, optim, tr_in, tr_targ, hold_in, hold_targ, epochs=40)
with torch.no_grad():
    _, logvar = model(hin, ret_logvar=True)
    in_bounds = int(bool((logvar <= model.max_logvar).all() and (logvar >= model.min_logvar).all()))

# ---- planning ----
policy = MPC(model)
npart_check = torch.arange(2 * policy.npart * 3, dtype=torch.float32).view(2 * policy.npart, 3)
ts_roundtrip = int(torch.equal(policy._flatten_to_matrix(policy._expand_to_ts_format(npart_check)), npart_check))
grouped = policy._expand_to_ts_format(npart_check)
# particles of one candidate split evenly over the members, each member seeing whole candidates
ts_layout = int(grouped.shape == (E, 2 * policy.npart // E, 3))

mpc_cost, states, _ = run_episode(PointMass(seed + 1), policy.act)
random_cost, _, _ = run_episode(PointMass(seed + 1), lambda obs: np.random.uniform(-1.0, 1.0, size=1))
zero_cost, _, _ = run_episode(PointMass(seed + 1), lambda obs: np.zeros(1))
print(f"TS round trip {ts_roundtrip} layout {ts_layout}, truncated draws max |z| {policy.optimizer.max_abs_draw < 2.0}, "
      f"init weights within 2 std {max_init <= 2.0 + 1e-5}, logvar in bounds {in_bounds}, "
      f"topk == argsort {int(policy.optimizer.topk_matches_argsort)}")
print(f"episode cost mpc {mpc_cost:.4f} random {random_cost:.4f} zero {zero_cost:.4f} final x {states[-1, 0]:.3f}")
print(f"FINAL first_nll={first_nll:.4f} final_nll={history[-1][0]:.4f} final_mse={history[-1][1]:.6f} "
      f"mpc_cost={mpc_cost:.4f} random_cost={random_cost:.4f} zero_cost={zero_cost:.4f} "
      f"final_x={states[-1, 0]:.4f} ens_err={ens_err:.8f} gnll_err={gnll_err:.8f} ts_roundtrip={ts_roundtrip} "
      f"in_bounds={in_bounds} max_draw={policy.optimizer.max_abs_draw:.4f} max_init={max_init:.4f}")
