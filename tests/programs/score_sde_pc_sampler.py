"""Score-based generative modelling through SDEs, the layout of yang-song/score_sde_pytorch at toy size,
on a 2-d mixture of four Gaussians.

``sde_lib``: an abstract ``SDE`` with ``abc.abstractmethod`` ``T``/``sde``/``marginal_prob``/``prior_sampling``/
``prior_logp``, a generic ``discretize`` (``diffusion * torch.sqrt(torch.tensor(dt))``) and ``reverse`` that
builds an ``RSDE(self.__class__)`` closure class; ``VPSDE`` (``torch.linspace`` discrete betas, ``torch.cumprod``
alphas, ``log_mean_coeff``, the DDPM ``discretize`` through ``(t * (N - 1) / T).long()``) and ``VESDE``
(geometric sigmas by ``torch.exp(torch.linspace(np.log(sigma_min), np.log(sigma_max), N))``, SMLD
``discretize`` with ``torch.where(timestep == 0, torch.zeros_like(t), ...)``). ``models.utils``: ``get_score_fn``
(VP: ``labels = t * 999`` and ``-score / std[:, None]``; VE: ``labels = std``) around an MLP with the
``get_timestep_embedding`` sinusoid (VP) or a ``GaussianFourierProjection`` of ``torch.log(sigma)`` (VE).
``losses``: the denoising score-matching loss with ``t = torch.rand(B) * (sde.T - eps) + eps``,
``mean + std[:, None] * z``, ``torch.square(score * std[:, None] + z)``, ``reduce_op`` over
``losses.reshape(B, -1)``, and the likelihood-weighted variant; ``ExponentialMovingAverage`` of the
parameters. ``sampling``: ``ReverseDiffusionPredictor``/``EulerMaruyamaPredictor`` and ``LangevinCorrector``
(``grad_norm = torch.norm(grad.reshape(B, -1), dim=-1).mean()``, SNR step size times ``alpha``) in a PC loop
over ``torch.linspace(sde.T, eps, sde.N)`` under ``torch.no_grad()``. ``likelihood``: the probability-flow
ODE drift from ``rsde.sde`` and its divergence by the Hutchinson estimator
(``torch.autograd.grad(torch.sum(fn(x, t) * eps), x)`` under ``torch.enable_grad()``) with Rademacher probes by
``torch.randint_like``, integrated by a fixed-step RK4 from ``eps`` to ``T``, ``prior_logp`` + ``delta_logp``.

Checked: the PC samples' mean and covariance against the data's (both SDEs); the Hutchinson divergence
averaged over many probes against the exact trace by one ``autograd.grad`` per coordinate; the NLL of held-out
data finite and falling between an early and the final checkpoint, and close to the true mixture NLL.
"""

import abc
import copy
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(1234)

# ------------------------------------------------------------------------------------------- data
CENTERS = np.array([[1.5, 1.5], [-1.5, 1.5], [-1.5, -1.5], [1.5, -1.5]], dtype=np.float32)
DATA_STD = 0.35


def sample_mixture(n, rs):
    idx = rs.randint(0, len(CENTERS), size=n)
    return (CENTERS[idx] + DATA_STD * rs.randn(n, 2)).astype(np.float32)


def mixture_nll(x):
    # exact -log p(x) of the data distribution
    d2 = ((x[:, None, :] - torch.from_numpy(CENTERS)[None]) ** 2).sum(-1)
    logp = -d2 / (2 * DATA_STD ** 2) - math.log(2 * math.pi * DATA_STD ** 2)
    return -(torch.logsumexp(logp, dim=1) - math.log(len(CENTERS)))


train_data = torch.from_numpy(sample_mixture(4096, rng))
test_data = torch.from_numpy(sample_mixture(256, rng))


# ------------------------------------------------------------------------------------------ sde_lib
class SDE(abc.ABC):
    """SDE abstract class. Functions are designed for a mini-batch of inputs."""

    def __init__(self, N):
        super().__init__()
        self.N = N

    @property
    @abc.abstractmethod
    def T(self):
        pass

    @abc.abstractmethod
    def sde(self, x, t):
        pass

    @abc.abstractmethod
    def marginal_prob(self, x, t):
        """Parameters to determine the marginal distribution of the SDE, $p_t(x)$."""

    @abc.abstractmethod
    def prior_sampling(self, shape):
        pass

    @abc.abstractmethod
    def prior_logp(self, z):
        pass

    def discretize(self, x, t):
        dt = 1 / self.N
        drift, diffusion = self.sde(x, t)
        f = drift * dt
        G = diffusion * torch.sqrt(torch.tensor(dt, device=t.device))
        return f, G

    def reverse(self, score_fn, probability_flow=False):
        N = self.N
        T = self.T
        sde_fn = self.sde
        discretize_fn = self.discretize

        class RSDE(self.__class__):
            def __init__(self):
                self.N = N
                self.probability_flow = probability_flow

            @property
            def T(self):
                return T

            def sde(self, x, t):
                drift, diffusion = sde_fn(x, t)
                score = score_fn(x, t)
                drift = drift - diffusion[:, None] ** 2 * score * (0.5 if self.probability_flow else 1.0)
                diffusion = 0.0 if self.probability_flow else diffusion
                return drift, diffusion

            def discretize(self, x, t):
                f, G = discretize_fn(x, t)
                rev_f = f - G[:, None] ** 2 * score_fn(x, t) * (0.5 if self.probability_flow else 1.0)
                rev_G = torch.zeros_like(G) if self.probability_flow else G
                return rev_f, rev_G

        return RSDE()


class VPSDE(SDE):
    def __init__(self, beta_min=0.1, beta_max=20, N=1000):
        super().__init__(N)
        self.beta_0 = beta_min
        self.beta_1 = beta_max
        self.N = N
        self.discrete_betas = torch.linspace(beta_min / N, beta_max / N, N)
        self.alphas = 1.0 - self.discrete_betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)
        self.sqrt_alphas_cumprod = torch.sqrt(self.alphas_cumprod)
        self.sqrt_1m_alphas_cumprod = torch.sqrt(1.0 - self.alphas_cumprod)

    @property
    def T(self):
        return 1

    def sde(self, x, t):
        beta_t = self.beta_0 + t * (self.beta_1 - self.beta_0)
        drift = -0.5 * beta_t[:, None] * x
        diffusion = torch.sqrt(beta_t)
        return drift, diffusion

    def marginal_prob(self, x, t):
        log_mean_coeff = -0.25 * t ** 2 * (self.beta_1 - self.beta_0) - 0.5 * t * self.beta_0
        mean = torch.exp(log_mean_coeff[:, None]) * x
        std = torch.sqrt(1.0 - torch.exp(2.0 * log_mean_coeff))
        return mean, std

    def prior_sampling(self, shape):
        return torch.randn(*shape)

    def prior_logp(self, z):
        shape = z.shape
        N = np.prod(shape[1:])
        logps = -N / 2.0 * np.log(2 * np.pi) - torch.sum(z ** 2, dim=(1,)) / 2.0
        return logps

    def discretize(self, x, t):
        """DDPM discretization."""
        timestep = (t * (self.N - 1) / self.T).long()
        beta = self.discrete_betas.to(x.device)[timestep]
        alpha = self.alphas.to(x.device)[timestep]
        sqrt_beta = torch.sqrt(beta)
        f = torch.sqrt(alpha)[:, None] * x - x
        G = sqrt_beta
        return f, G


class VESDE(SDE):
    def __init__(self, sigma_min=0.01, sigma_max=50, N=1000):
        super().__init__(N)
        self.sigma_min = sigma_min
        self.sigma_max = sigma_max
        self.discrete_sigmas = torch.exp(torch.linspace(np.log(self.sigma_min), np.log(self.sigma_max), N))
        self.N = N

    @property
    def T(self):
        return 1

    def sde(self, x, t):
        sigma = self.sigma_min * (self.sigma_max / self.sigma_min) ** t
        drift = torch.zeros_like(x)
        diffusion = sigma * torch.sqrt(
            torch.tensor(2 * (np.log(self.sigma_max) - np.log(self.sigma_min)), device=t.device)
        )
        return drift, diffusion

    def marginal_prob(self, x, t):
        std = self.sigma_min * (self.sigma_max / self.sigma_min) ** t
        mean = x
        return mean, std

    def prior_sampling(self, shape):
        return torch.randn(*shape) * self.sigma_max

    def prior_logp(self, z):
        shape = z.shape
        N = np.prod(shape[1:])
        return -N / 2.0 * np.log(2 * np.pi * self.sigma_max ** 2) - torch.sum(z ** 2, dim=(1,)) / (
            2 * self.sigma_max ** 2
        )

    def discretize(self, x, t):
        """SMLD(NCSN) discretization."""
        timestep = (t * (self.N - 1) / self.T).long()
        sigma = self.discrete_sigmas.to(t.device)[timestep]
        adjacent_sigma = torch.where(
            timestep == 0, torch.zeros_like(t), self.discrete_sigmas[timestep - 1].to(t.device)
        )
        f = torch.zeros_like(x)
        G = torch.sqrt(sigma ** 2 - adjacent_sigma ** 2)
        return f, G


# ------------------------------------------------------------------------------------------- models
def get_timestep_embedding(timesteps, embedding_dim, max_positions=10000):
    assert len(timesteps.shape) == 1
    half_dim = embedding_dim // 2
    emb = math.log(max_positions) / (half_dim - 1)
    emb = torch.exp(torch.arange(half_dim, dtype=torch.float32, device=timesteps.device) * -emb)
    emb = timesteps.float()[:, None] * emb[None, :]
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=1)
    if embedding_dim % 2 == 1:  # zero pad
        emb = F.pad(emb, (0, 1), mode="constant")
    assert emb.shape == (timesteps.shape[0], embedding_dim)
    return emb


class GaussianFourierProjection(nn.Module):
    """Gaussian Fourier embeddings for noise levels."""

    def __init__(self, embedding_size=256, scale=1.0):
        super().__init__()
        self.W = nn.Parameter(torch.randn(embedding_size) * scale, requires_grad=False)

    def forward(self, x):
        x_proj = x[:, None] * self.W[None, :] * 2 * np.pi
        return torch.cat([torch.sin(x_proj), torch.cos(x_proj)], dim=-1)


class ToyScoreNet(nn.Module):
    def __init__(self, embedding_type="positional", nf=32, hidden=96, scale_by_sigma=False):
        super().__init__()
        self.embedding_type = embedding_type
        self.scale_by_sigma = scale_by_sigma
        self.nf = nf
        if embedding_type == "fourier":
            self.temb_fourier = GaussianFourierProjection(embedding_size=nf // 2, scale=4.0)
        self.temb = nn.Sequential(nn.Linear(nf, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.inp = nn.Linear(2, hidden)
        self.blocks = nn.ModuleList([nn.Linear(hidden, hidden) for _ in range(2)])
        self.out = nn.Linear(hidden, 2)

    def forward(self, x, time_cond):
        if self.embedding_type == "fourier":
            used_sigmas = time_cond
            temb = self.temb_fourier(torch.log(used_sigmas))
        else:
            temb = get_timestep_embedding(time_cond, self.nf)
        temb = self.temb(temb)
        h = F.silu(self.inp(x) + temb)
        for block in self.blocks:
            h = h + F.silu(block(h) + temb)
        h = self.out(h)
        if self.scale_by_sigma:
            used_sigmas = time_cond.reshape((x.shape[0], *([1] * len(x.shape[1:]))))
            h = h / used_sigmas
        return h


def get_model_fn(model, train=False):
    def model_fn(x, labels):
        if not train:
            model.eval()
            return model(x, labels)
        else:
            model.train()
            return model(x, labels)

    return model_fn


def get_score_fn(sde, model, train=False, continuous=True):
    model_fn = get_model_fn(model, train=train)

    if isinstance(sde, VPSDE):

        def score_fn(x, t):
            labels = t * 999
            score = model_fn(x, labels)
            std = sde.marginal_prob(torch.zeros_like(x), t)[1]
            score = -score / std[:, None]
            return score

    elif isinstance(sde, VESDE):

        def score_fn(x, t):
            labels = sde.marginal_prob(torch.zeros_like(x), t)[1]
            score = model_fn(x, labels)
            return score

    else:
        raise NotImplementedError(f"SDE class {sde.__class__.__name__} not yet supported.")

    return score_fn


class ExponentialMovingAverage:
    def __init__(self, parameters, decay, use_num_updates=True):
        if decay < 0.0 or decay > 1.0:
            raise ValueError("Decay must be between 0 and 1")
        self.decay = decay
        self.num_updates = 0 if use_num_updates else None
        self.shadow_params = [p.clone().detach() for p in parameters if p.requires_grad]
        self.collected_params = []

    def update(self, parameters):
        decay = self.decay
        if self.num_updates is not None:
            self.num_updates += 1
            decay = min(decay, (1 + self.num_updates) / (10 + self.num_updates))
        one_minus_decay = 1.0 - decay
        with torch.no_grad():
            parameters = [p for p in parameters if p.requires_grad]
            for s_param, param in zip(self.shadow_params, parameters):
                s_param.sub_(one_minus_decay * (s_param - param))

    def copy_to(self, parameters):
        parameters = [p for p in parameters if p.requires_grad]
        for s_param, param in zip(self.shadow_params, parameters):
            if param.requires_grad:
                param.data.copy_(s_param.data)


# ------------------------------------------------------------------------------------------- losses
def get_sde_loss_fn(sde, train, reduce_mean=True, continuous=True, likelihood_weighting=True, eps=1e-5):
    reduce_op = torch.mean if reduce_mean else lambda *args, **kwargs: 0.5 * torch.sum(*args, **kwargs)

    def loss_fn(model, batch):
        score_fn = get_score_fn(sde, model, train=train, continuous=continuous)
        t = torch.rand(batch.shape[0], device=batch.device) * (sde.T - eps) + eps
        z = torch.randn_like(batch)
        mean, std = sde.marginal_prob(batch, t)
        perturbed_data = mean + std[:, None] * z
        score = score_fn(perturbed_data, t)

        if not likelihood_weighting:
            losses = torch.square(score * std[:, None] + z)
            losses = reduce_op(losses.reshape(losses.shape[0], -1), dim=-1)
        else:
            g2 = sde.sde(torch.zeros_like(batch), t)[1] ** 2
            losses = torch.square(score + z / std[:, None])
            losses = reduce_op(losses.reshape(losses.shape[0], -1), dim=-1) * g2

        loss = torch.mean(losses)
        return loss

    return loss_fn


# ----------------------------------------------------------------------------------------- sampling
class Predictor(abc.ABC):
    def __init__(self, sde, score_fn, probability_flow=False):
        super().__init__()
        self.sde = sde
        self.rsde = sde.reverse(score_fn, probability_flow)
        self.score_fn = score_fn

    @abc.abstractmethod
    def update_fn(self, x, t):
        pass


class Corrector(abc.ABC):
    def __init__(self, sde, score_fn, snr, n_steps):
        super().__init__()
        self.sde = sde
        self.score_fn = score_fn
        self.snr = snr
        self.n_steps = n_steps

    @abc.abstractmethod
    def update_fn(self, x, t):
        pass


class EulerMaruyamaPredictor(Predictor):
    def update_fn(self, x, t):
        dt = -1.0 / self.rsde.N
        z = torch.randn_like(x)
        drift, diffusion = self.rsde.sde(x, t)
        x_mean = x + drift * dt
        x = x_mean + diffusion[:, None] * np.sqrt(-dt) * z
        return x, x_mean


class ReverseDiffusionPredictor(Predictor):
    def update_fn(self, x, t):
        f, G = self.rsde.discretize(x, t)
        z = torch.randn_like(x)
        x_mean = x - f
        x = x_mean + G[:, None] * z
        return x, x_mean


class LangevinCorrector(Corrector):
    def update_fn(self, x, t):
        sde = self.sde
        score_fn = self.score_fn
        n_steps = self.n_steps
        target_snr = self.snr
        if isinstance(sde, VPSDE):
            timestep = (t * (sde.N - 1) / sde.T).long()
            alpha = sde.alphas.to(t.device)[timestep]
        else:
            alpha = torch.ones_like(t)

        for _ in range(n_steps):
            grad = score_fn(x, t)
            noise = torch.randn_like(x)
            grad_norm = torch.norm(grad.reshape(grad.shape[0], -1), dim=-1).mean()
            noise_norm = torch.norm(noise.reshape(noise.shape[0], -1), dim=-1).mean()
            step_size = (target_snr * noise_norm / grad_norm) ** 2 * 2 * alpha
            x_mean = x + step_size[:, None] * grad
            x = x_mean + torch.sqrt(step_size * 2)[:, None] * noise

        return x, x_mean


def get_pc_sampler(sde, shape, predictor, corrector, snr, n_steps=1, probability_flow=False,
                   denoise=True, eps=1e-3):
    def pc_sampler(model):
        with torch.no_grad():
            score_fn = get_score_fn(sde, model, train=False, continuous=True)
            predictor_obj = predictor(sde, score_fn, probability_flow)
            corrector_obj = corrector(sde, score_fn, snr, n_steps)
            x = sde.prior_sampling(shape)
            timesteps = torch.linspace(sde.T, eps, sde.N)
            for i in range(sde.N):
                t = timesteps[i]
                vec_t = torch.ones(shape[0], device=t.device) * t
                x, x_mean = corrector_obj.update_fn(x, vec_t)
                x, x_mean = predictor_obj.update_fn(x, vec_t)
            return (x_mean if denoise else x), sde.N * (n_steps + 1)

    return pc_sampler


# --------------------------------------------------------------------------------------- likelihood
def get_div_fn(fn):
    """Create the divergence function of `fn` using the Hutchinson-Skilling trace estimator."""

    def div_fn(x, t, eps):
        with torch.enable_grad():
            x.requires_grad_(True)
            fn_eps = torch.sum(fn(x, t) * eps)
            grad_fn_eps = torch.autograd.grad(fn_eps, x)[0]
        x.requires_grad_(False)
        return torch.sum(grad_fn_eps * eps, dim=tuple(range(1, len(x.shape))))

    return div_fn


def exact_div(fn, x, t):
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        out = fn(x, t)
        div = torch.zeros(x.shape[0])
        for i in range(x.shape[1]):
            div = div + torch.autograd.grad(out[:, i].sum(), x, retain_graph=True)[0][:, i]
    return div.detach()


def get_likelihood_fn(sde, hutchinson_type="Rademacher", n_steps=16, eps=1e-5):
    def drift_fn(model, x, t):
        score_fn = get_score_fn(sde, model, train=False, continuous=True)
        rsde = sde.reverse(score_fn, probability_flow=True)
        return rsde.sde(x, t)[0]

    def div_fn(model, x, t, noise):
        return get_div_fn(lambda xx, tt: drift_fn(model, xx, tt))(x, t, noise)

    def likelihood_fn(model, data):
        with torch.no_grad():
            shape = data.shape
            if hutchinson_type == "Gaussian":
                epsilon = torch.randn_like(data)
            elif hutchinson_type == "Rademacher":
                epsilon = torch.randint_like(data, low=0, high=2).float() * 2 - 1.0
            else:
                raise NotImplementedError(f"Hutchinson type {hutchinson_type} unknown.")

            def ode_func(t, state):
                sample, _ = state
                vec_t = torch.ones(sample.shape[0], device=sample.device) * t
                drift = drift_fn(model, sample, vec_t)
                logp_grad = div_fn(model, sample, vec_t, epsilon)
                return drift, logp_grad

            x = data.clone()
            delta_logp = torch.zeros(shape[0])
            ts = np.linspace(eps, sde.T, n_steps + 1)
            for t0, t1 in zip(ts[:-1], ts[1:]):
                h = float(t1 - t0)
                k1 = ode_func(t0, (x, delta_logp))
                k2 = ode_func(t0 + h / 2, (x + h / 2 * k1[0], delta_logp + h / 2 * k1[1]))
                k3 = ode_func(t0 + h / 2, (x + h / 2 * k2[0], delta_logp + h / 2 * k2[1]))
                k4 = ode_func(t1, (x + h * k3[0], delta_logp + h * k3[1]))
                x = x + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
                delta_logp = delta_logp + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
            z = x
            prior_logp = sde.prior_logp(z)
            nll = -(prior_logp + delta_logp)
            return nll, z

    return likelihood_fn


# ---------------------------------------------------------------------------------------- training
def train(sde, embedding_type, n_iters, scale_by_sigma=False, batch_size=128, lr=2e-3, likelihood_weighting=False,
          nll_at=None):
    model = ToyScoreNet(embedding_type=embedding_type, scale_by_sigma=scale_by_sigma)
    ema = ExponentialMovingAverage(model.parameters(), decay=0.99)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = get_sde_loss_fn(sde, train=True, reduce_mean=True, likelihood_weighting=likelihood_weighting)
    likelihood_fn = get_likelihood_fn(sde)
    nlls = {}
    losses = []
    for step in range(1, n_iters + 1):
        idx = torch.randint(0, train_data.shape[0], (batch_size,))
        batch = train_data[idx]
        optimizer.zero_grad()
        loss = loss_fn(model, batch)
        loss.backward()
        # optimization_manager: warmup then gradient clipping
        for g in optimizer.param_groups:
            g["lr"] = lr * np.minimum(step / 50, 1.0)
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        ema.update(model.parameters())
        losses.append(loss.item())
        if step % 100 == 0:
            print(f"  step {step}: loss {np.mean(losses[-100:]):.4f}")
        if nll_at is not None and step in nll_at:
            ema_model = copy.deepcopy(model)
            ema.copy_to(ema_model.parameters())
            nll, _ = likelihood_fn(ema_model, test_data[:128])
            nlls[step] = nll.mean().item()
            print(f"  step {step}: test nll {nlls[step]:.4f}")
    ema.copy_to(model.parameters())
    return model, losses, nlls


def moment_errors(samples, data):
    mean_err = (samples.mean(0) - data.mean(0)).norm().item()
    cov_s = torch.cov(samples.T)
    cov_d = torch.cov(data.T)
    cov_err = ((cov_s - cov_d).norm() / cov_d.norm()).item()
    return mean_err, cov_err


print("VP SDE: denoising score matching, reverse-diffusion predictor + Langevin corrector")
vpsde = VPSDE(beta_min=0.1, beta_max=20.0, N=100)
vp_model, vp_losses, nlls = train(vpsde, "positional", 400, likelihood_weighting=False, nll_at=(100, 400))
sampler = get_pc_sampler(vpsde, (512, 2), ReverseDiffusionPredictor, LangevinCorrector, snr=0.16, n_steps=1)
vp_samples, n_evals = sampler(vp_model)
vp_mean_err, vp_cov_err = moment_errors(vp_samples, train_data)
print(f"VP samples: {n_evals} score evaluations, mean err {vp_mean_err:.4f}, cov rel err {vp_cov_err:.4f}")

# Hutchinson against the exact divergence of the probability-flow drift
score_fn = get_score_fn(vpsde, vp_model, train=False)
rsde = vpsde.reverse(score_fn, probability_flow=True)
x_probe = test_data[:64].clone()
t_probe = torch.full((64,), 0.3)
drift = lambda xx, tt: rsde.sde(xx, tt)[0]  # noqa: E731
div_exact = exact_div(drift, x_probe, t_probe)
div_fn = get_div_fn(drift)
div_hutch = torch.zeros(64)
n_probes = 200
for _ in range(n_probes):
    probe = torch.randint_like(x_probe, low=0, high=2).float() * 2 - 1.0
    div_hutch += div_fn(x_probe, t_probe, probe) / n_probes
div_err = ((div_hutch - div_exact).abs().mean() / div_exact.abs().mean()).item()
print(f"Hutchinson vs exact divergence: rel err {div_err:.4f}")

true_nll = mixture_nll(test_data[:128]).mean().item()
print(f"test nll: early {nlls[100]:.4f} final {nlls[400]:.4f} true {true_nll:.4f}")
nll_finite = float(all(math.isfinite(v) for v in nlls.values()))

print("VE SDE: likelihood-weighted DSM, Euler-Maruyama predictor + Langevin corrector")
vesde = VESDE(sigma_min=0.01, sigma_max=5.0, N=100)
ve_model, ve_losses, _ = train(vesde, "fourier", 300, scale_by_sigma=True, likelihood_weighting=True)
sampler = get_pc_sampler(vesde, (512, 2), EulerMaruyamaPredictor, LangevinCorrector, snr=0.16, n_steps=1)
ve_samples, n_evals = sampler(ve_model)
ve_mean_err, ve_cov_err = moment_errors(ve_samples, train_data)
print(f"VE samples: {n_evals} score evaluations, mean err {ve_mean_err:.4f}, cov rel err {ve_cov_err:.4f}")
ve_loss_drop = np.mean(ve_losses[:50]) - np.mean(ve_losses[-50:])

print(
    f"FINAL vp_mean_err={vp_mean_err:.4f} vp_cov_err={vp_cov_err:.4f} ve_mean_err={ve_mean_err:.4f} "
    f"ve_cov_err={ve_cov_err:.4f} div_err={div_err:.4f} nll_early={nlls[100]:.4f} nll_final={nlls[400]:.4f} "
    f"nll_gap={nlls[400] - true_nll:.4f} nll_finite={nll_finite:.0f} ve_loss_drop={ve_loss_drop:.4f}"
)
