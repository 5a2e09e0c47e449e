"""DPM-Solver++ on 2-d toy data, the shape of LuChengTHU/dpm-solver's ``dpm_solver_pytorch.py``:
a discrete-time ``NoiseScheduleVP`` built from ``betas`` (``0.5 * torch.log(1 - betas).cumsum(dim=0)``)
with ``marginal_log_mean_coeff``/``marginal_alpha``/``marginal_std``/``marginal_lambda`` and
``inverse_lambda`` (``torch.logaddexp``, ``torch.flip``) by piecewise-linear interpolation, written
twice: the repo's ``interpolate_fn`` (``torch.sort`` of the concatenated knots, ``argmin``,
nested ``torch.where``, ``gather``) and a ``torch.searchsorted`` + ``clamp`` version (must agree);
``model_wrapper``'s continuous-to-discrete time input and the noise-to-data-prediction conversion;
time steps uniform in logSNR (``torch.linspace(lambda_T, lambda_0, N + 1)`` back through
``inverse_lambda``); ``dpm_solver_first_update`` and ``multistep_dpm_solver_second_update``
(``torch.expm1(-h)``, ``D1_0 = (1. / r0) * (model_prev_0 - model_prev_1)``) with
``lower_order_final``. The noise-prediction MLP (sinusoidal time embedding, SiLU) is trained with
``F.mse_loss`` on ``alphas_cumprod``-noised samples of an 8-Gaussian ring from NumPy, Adam.
Checks: the training loss falls, 1st-order DPM-Solver++ equals DDIM on the same steps, and the
2nd-order multistep solver with 10 logSNR steps lands closer to a 200-step DDIM sample than DDIM on
the same 10 steps (DDIM on 10 time-uniform steps is printed too: on this sharp 2-d data it is closer still).
"""

import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)


def make_ring(n, rng):
    centers = np.array([(math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8)) for k in range(8)])
    idx = rng.randint(0, 8, size=n)
    x = 1.5 * centers[idx] + 0.1 * rng.randn(n, 2)
    return x.astype(np.float32)


def interpolate_fn(x, xp, yp):
    """Piecewise-linear, differentiable interpolation (dpm_solver_pytorch.interpolate_fn)."""
    N, K = x.shape[0], xp.shape[1]
    all_x = torch.cat([x.unsqueeze(2), xp.unsqueeze(0).repeat((N, 1, 1))], dim=2)
    sorted_all_x, x_indices = torch.sort(all_x, dim=2)
    x_idx = torch.argmin(x_indices, dim=2)
    cand_start_idx = x_idx - 1
    start_idx = torch.where(
        torch.eq(x_idx, 0),
        torch.tensor(1, device=x.device),
        torch.where(
            torch.eq(x_idx, K), torch.tensor(K - 2, device=x.device), cand_start_idx,
        ),
    )
    end_idx = torch.where(torch.eq(start_idx, cand_start_idx), start_idx + 2, start_idx + 1)
    start_x = torch.gather(sorted_all_x, dim=2, index=start_idx.unsqueeze(2)).squeeze(2)
    end_x = torch.gather(sorted_all_x, dim=2, index=end_idx.unsqueeze(2)).squeeze(2)
    start_idx2 = torch.where(
        torch.eq(x_idx, 0),
        torch.tensor(0, device=x.device),
        torch.where(
            torch.eq(x_idx, K), torch.tensor(K - 2, device=x.device), cand_start_idx,
        ),
    )
    y_positions_expanded = yp.unsqueeze(0).expand(N, -1, -1)
    start_y = torch.gather(y_positions_expanded, dim=2, index=start_idx2.unsqueeze(2)).squeeze(2)
    end_y = torch.gather(y_positions_expanded, dim=2, index=(start_idx2 + 1).unsqueeze(2)).squeeze(2)
    cand = start_y + (x - start_x) * (end_y - start_y) / (end_x - start_x)
    return cand


def interp_searchsorted(x, xp, yp):
    """The same interpolation by torch.searchsorted on increasing knots (1-d)."""
    idx = torch.searchsorted(xp, x, right=False)
    idx = torch.clamp(idx, 1, xp.numel() - 1)
    x0, x1 = xp[idx - 1], xp[idx]
    y0, y1 = yp[idx - 1], yp[idx]
    w = (x - x0) / (x1 - x0)
    return y0 + w * (y1 - y0)


class NoiseScheduleVP:
    def __init__(self, schedule="discrete", betas=None, alphas_cumprod=None, dtype=torch.float32):
        if schedule not in ["discrete"]:
            raise ValueError(f"Unsupported noise schedule {schedule}.")
        self.schedule = schedule
        if betas is not None:
            log_alphas = 0.5 * torch.log(1 - betas).cumsum(dim=0)
        else:
            assert alphas_cumprod is not None
            log_alphas = 0.5 * torch.log(alphas_cumprod)
        self.total_N = len(log_alphas)
        self.T = 1.
        self.t_array = torch.linspace(0., 1., self.total_N + 1)[1:].reshape((1, -1)).to(dtype=dtype)
        self.log_alpha_array = log_alphas.reshape((1, -1,)).to(dtype=dtype)

    def marginal_log_mean_coeff(self, t):
        return interpolate_fn(t.reshape((-1, 1)), self.t_array.to(t.device),
                              self.log_alpha_array.to(t.device)).reshape(-1)

    def marginal_alpha(self, t):
        return torch.exp(self.marginal_log_mean_coeff(t))

    def marginal_std(self, t):
        return torch.sqrt(1. - torch.exp(2. * self.marginal_log_mean_coeff(t)))

    def marginal_lambda(self, t):
        log_mean_coeff = self.marginal_log_mean_coeff(t)
        log_std = 0.5 * torch.log(1. - torch.exp(2. * log_mean_coeff))
        return log_mean_coeff - log_std

    def inverse_lambda(self, lamb):
        log_alpha = -0.5 * torch.logaddexp(torch.zeros((1,)).to(lamb), -2. * lamb)
        t = interpolate_fn(log_alpha.reshape((-1, 1)), torch.flip(self.log_alpha_array.to(lamb.device), [1]),
                           torch.flip(self.t_array.to(lamb.device), [1]))
        return t.reshape((-1,))

    def inverse_lambda_searchsorted(self, lamb):
        log_alpha = -0.5 * torch.logaddexp(torch.zeros((1,)).to(lamb), -2. * lamb)
        xp = torch.flip(self.log_alpha_array[0], [0]).contiguous()
        fp = torch.flip(self.t_array[0], [0]).contiguous()
        return interp_searchsorted(log_alpha, xp, fp)


class SinusoidalPosEmb(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        half_dim = self.dim // 2
        emb = math.log(10000) / (half_dim - 1)
        emb = torch.exp(torch.arange(half_dim, device=x.device) * -emb)
        emb = x[:, None] * emb[None, :]
        return torch.cat((emb.sin(), emb.cos()), dim=-1)


class EpsModel(nn.Module):
    def __init__(self, hidden=64, emb_dim=16):
        super().__init__()
        self.time_emb = nn.Sequential(SinusoidalPosEmb(emb_dim), nn.Linear(emb_dim, hidden), nn.SiLU())
        self.inp = nn.Linear(2, hidden)
        self.net = nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 2))

    def forward(self, x, t):
        return self.net(self.inp(x) + self.time_emb(t))


def model_wrapper(model, noise_schedule):
    """Noise-prediction model in discrete time -> continuous-time noise prediction."""
    def get_model_input_time(t_continuous):
        return (t_continuous - 1. / noise_schedule.total_N) * 1000.

    def model_fn(x, t_continuous):
        t_input = get_model_input_time(t_continuous)
        if t_input.reshape((-1,)).shape[0] == 1:
            t_input = t_input.expand(x.shape[0])
        return model(x, t_input)

    return model_fn


class DPM_Solver:
    def __init__(self, model_fn, noise_schedule, algorithm_type="dpmsolver++"):
        self.model = lambda x, t: model_fn(x, t.expand(x.shape[0]))
        self.noise_schedule = noise_schedule
        assert algorithm_type in ["dpmsolver", "dpmsolver++"]
        self.algorithm_type = algorithm_type

    def noise_prediction_fn(self, x, t):
        return self.model(x, t)

    def data_prediction_fn(self, x, t):
        noise = self.noise_prediction_fn(x, t)
        alpha_t, sigma_t = self.noise_schedule.marginal_alpha(t), self.noise_schedule.marginal_std(t)
        x0 = (x - sigma_t * noise) / alpha_t
        return x0

    def model_fn(self, x, t):
        if self.algorithm_type == "dpmsolver++":
            return self.data_prediction_fn(x, t)
        return self.noise_prediction_fn(x, t)

    def get_time_steps(self, skip_type, t_T, t_0, N, device):
        if skip_type == "logSNR":
            lambda_T = self.noise_schedule.marginal_lambda(torch.tensor(t_T).to(device))
            lambda_0 = self.noise_schedule.marginal_lambda(torch.tensor(t_0).to(device))
            logSNR_steps = torch.linspace(lambda_T.cpu().item(), lambda_0.cpu().item(), N + 1).to(device)
            return self.noise_schedule.inverse_lambda(logSNR_steps)
        elif skip_type == "time_uniform":
            return torch.linspace(t_T, t_0, N + 1).to(device)
        else:
            raise ValueError(f"Unsupported skip_type {skip_type}")

    def dpm_solver_first_update(self, x, s, t, model_s=None):
        ns = self.noise_schedule
        lambda_s, lambda_t = ns.marginal_lambda(s), ns.marginal_lambda(t)
        h = lambda_t - lambda_s
        log_alpha_s, log_alpha_t = ns.marginal_log_mean_coeff(s), ns.marginal_log_mean_coeff(t)
        sigma_s, sigma_t = ns.marginal_std(s), ns.marginal_std(t)
        alpha_t = torch.exp(log_alpha_t)
        if self.algorithm_type == "dpmsolver++":
            phi_1 = torch.expm1(-h)
            if model_s is None:
                model_s = self.model_fn(x, s)
            x_t = sigma_t / sigma_s * x - alpha_t * phi_1 * model_s
        else:
            phi_1 = torch.expm1(h)
            if model_s is None:
                model_s = self.model_fn(x, s)
            x_t = torch.exp(log_alpha_t - log_alpha_s) * x - (sigma_t * phi_1) * model_s
        return x_t

    def multistep_dpm_solver_second_update(self, x, model_prev_list, t_prev_list, t, solver_type="dpmsolver"):
        ns = self.noise_schedule
        model_prev_1, model_prev_0 = model_prev_list[-2], model_prev_list[-1]
        t_prev_1, t_prev_0 = t_prev_list[-2], t_prev_list[-1]
        lambda_prev_1, lambda_prev_0, lambda_t = ns.marginal_lambda(t_prev_1), ns.marginal_lambda(
            t_prev_0), ns.marginal_lambda(t)
        log_alpha_t = ns.marginal_log_mean_coeff(t)
        sigma_prev_0, sigma_t = ns.marginal_std(t_prev_0), ns.marginal_std(t)
        alpha_t = torch.exp(log_alpha_t)

        h_0 = lambda_prev_0 - lambda_prev_1
        h = lambda_t - lambda_prev_0
        r0 = h_0 / h
        D1_0 = (1. / r0) * (model_prev_0 - model_prev_1)
        if self.algorithm_type == "dpmsolver++":
            phi_1 = torch.expm1(-h)
            if solver_type == "dpmsolver":
                x_t = (sigma_t / sigma_prev_0) * x - (alpha_t * phi_1) * model_prev_0 - 0.5 * (alpha_t * phi_1) * D1_0
            elif solver_type == "taylor":
                x_t = (sigma_t / sigma_prev_0) * x - (alpha_t * phi_1) * model_prev_0 + (alpha_t * (phi_1 / h + 1.)) * D1_0
        else:
            raise NotImplementedError
        return x_t

    def sample(self, x, steps=10, t_start=None, t_end=None, order=2, skip_type="logSNR",
               lower_order_final=True):
        t_0 = 1. / self.noise_schedule.total_N if t_end is None else t_end
        t_T = self.noise_schedule.T if t_start is None else t_start
        device = x.device
        with torch.no_grad():
            timesteps = self.get_time_steps(skip_type=skip_type, t_T=t_T, t_0=t_0, N=steps, device=device)
            assert timesteps.shape[0] - 1 == steps
            step = 0
            t = timesteps[step]
            t_prev_list = [t]
            model_prev_list = [self.model_fn(x, t)]
            for step in range(1, order):
                t = timesteps[step]
                x = self.dpm_solver_first_update(x, t_prev_list[-1], t, model_s=model_prev_list[-1])
                t_prev_list.append(t)
                model_prev_list.append(self.model_fn(x, t))
            for step in range(order, steps + 1):
                t = timesteps[step]
                if lower_order_final and steps < 10:
                    step_order = min(order, steps + 1 - step)
                else:
                    step_order = order
                if step_order == 1:
                    x = self.dpm_solver_first_update(x, t_prev_list[-1], t, model_s=model_prev_list[-1])
                else:
                    x = self.multistep_dpm_solver_second_update(x, model_prev_list, t_prev_list, t)
                for i in range(order - 1):
                    t_prev_list[i] = t_prev_list[i + 1]
                    model_prev_list[i] = model_prev_list[i + 1]
                t_prev_list[-1] = t
                if step < steps:
                    model_prev_list[-1] = self.model_fn(x, t)
        return x, timesteps


@torch.no_grad()
def ddim_sample(model_fn, ns, x, timesteps):
    """Deterministic DDIM (eta = 0) in the alphas_cumprod form on the given continuous times."""
    for i in range(len(timesteps) - 1):
        s, t = timesteps[i:i + 1], timesteps[i + 1:i + 2]
        a_s = torch.exp(2. * ns.marginal_log_mean_coeff(s))
        a_t = torch.exp(2. * ns.marginal_log_mean_coeff(t))
        eps = model_fn(x, s.expand(x.shape[0]))
        pred_x0 = (x - (1. - a_s).sqrt() * eps) / a_s.sqrt()
        x = a_t.sqrt() * pred_x0 + (1. - a_t).sqrt() * eps
    return x


# ---- schedule -------------------------------------------------------------------------------
num_timesteps = 1000
betas = torch.linspace(0.0001, 0.02, num_timesteps, dtype=torch.float64)
alphas = 1.0 - betas
alphas_cumprod = torch.cumprod(alphas, dim=0)
ns = NoiseScheduleVP("discrete", betas=betas)
ns2 = NoiseScheduleVP("discrete", alphas_cumprod=alphas_cumprod)
sched_diff = (ns.log_alpha_array - ns2.log_alpha_array).abs().max().item()
print(f"schedule: N={ns.total_N} log_alpha[-1]={ns.log_alpha_array[0, -1].item():.4f} betas-vs-cumprod {sched_diff:.2e}")

t_probe = torch.linspace(1. / num_timesteps, 1., 37)
lam = ns.marginal_lambda(t_probe)
t_back = ns.inverse_lambda(lam)
t_back_ss = ns.inverse_lambda_searchsorted(lam)
roundtrip = (t_back - t_probe).abs().max().item()
interp_diff = (t_back - t_back_ss).abs().max().item()
print(f"lambda range [{lam.min().item():.3f}, {lam.max().item():.3f}] inverse_lambda round trip {roundtrip:.2e}"
      f" sort-vs-searchsorted {interp_diff:.2e}")

# ---- training ------------------------------------------------------------------------------
data = torch.from_numpy(make_ring(4096, rng))
ac = alphas_cumprod.float()
model = EpsModel()
optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
batch_size = 256
n_steps = 600
losses = []
for it in range(n_steps):
    idx = torch.randint(0, data.shape[0], (batch_size,))
    x0 = data[idx]
    t = torch.randint(0, num_timesteps, (batch_size,))
    noise = torch.randn_like(x0)
    a = ac[t].unsqueeze(-1)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
    loss = F.mse_loss(model(x_t, t.float()), noise)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
    if (it + 1) % 150 == 0:
        print(f"step {it + 1:4d} loss {np.mean(losses[-150:]):.4f}")
loss_first = float(np.mean(losses[:50]))
loss_last = float(np.mean(losses[-100:]))
model.eval()

# ---- sampling ------------------------------------------------------------------------------
model_fn = model_wrapper(model, ns)
dpm_solver = DPM_Solver(model_fn, ns, algorithm_type="dpmsolver++")
x_T = torch.randn(512, 2)

x_dpm1, steps10 = dpm_solver.sample(x_T, steps=10, order=1, skip_type="logSNR")
x_ddim_same = ddim_sample(model_fn, ns, x_T, steps10)
dpm1_vs_ddim = (x_dpm1 - x_ddim_same).abs().max().item()
print(f"10 logSNR steps: t {steps10[0].item():.4f} -> {steps10[-1].item():.4f}; "
      f"DPM-Solver++ order 1 vs DDIM max |diff| {dpm1_vs_ddim:.2e}")

ref_steps = dpm_solver.get_time_steps("time_uniform", 1., 1. / num_timesteps, 200, x_T.device)
x_ref = ddim_sample(model_fn, ns, x_T, ref_steps)
x_dpm2, _ = dpm_solver.sample(x_T, steps=10, order=2, skip_type="logSNR")
x_ddim10u = ddim_sample(model_fn, ns, x_T, dpm_solver.get_time_steps("time_uniform", 1., 1. / num_timesteps, 10, x_T.device))
err_dpm2 = (x_dpm2 - x_ref).norm(dim=1).mean().item()
err_ddim10 = (x_ddim_same - x_ref).norm(dim=1).mean().item()
err_ddim10u = (x_ddim10u - x_ref).norm(dim=1).mean().item()
print(f"mean distance to 200-step DDIM: DPM-Solver++(2M) {err_dpm2:.4f}  DDIM-10 same logSNR steps {err_ddim10:.4f}"
      f"  DDIM-10 time-uniform {err_ddim10u:.4f}")

radius = x_ref.norm(dim=1)
on_ring = ((radius - 1.5).abs() < 0.4).float().mean().item()
print(f"reference samples within 0.4 of the ring: {on_ring:.3f}")
print(f"checks: loss falls {loss_last < loss_first}, dpm1==ddim {dpm1_vs_ddim < 1e-3}, "
      f"2M beats DDIM-10 on the same steps {err_dpm2 < err_ddim10}")

print(f"FINAL loss_first={loss_first:.4f} loss_last={loss_last:.4f} dpm1_vs_ddim={dpm1_vs_ddim:.6f} "
      f"err_dpm2={err_dpm2:.4f} err_ddim10={err_ddim10:.4f} err_ratio={err_dpm2 / err_ddim10:.4f} err_ddim10u={err_ddim10u:.4f} "
      f"interp_diff={interp_diff:.6f} roundtrip={roundtrip:.6f} on_ring={on_ring:.4f}")
