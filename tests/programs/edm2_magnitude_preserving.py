"""EDM2 (Karras et al. 2024, "Analyzing and Improving the Training Dynamics of Diffusion Models";
NVlabs/edm2 ``training/networks_edm2.py``, ``training/loss.py``, ``training/phema.py``,
``training/training_loop.py``) at toy size on synthetic 8x8 images.

The magnitude-preserving layers as the paper's code writes them: ``normalize(x, dim=None, eps=1e-4)``
by ``torch.linalg.vector_norm(x, dim=dim, keepdim=True, dtype=torch.float32)`` and
``torch.add(eps, norm, alpha=np.sqrt(norm.numel() / x.numel()))``, ``mp_silu`` (``F.silu(x) / 0.596``),
``mp_sum`` by ``a.lerp(b, t)``, ``mp_cat`` with per-branch scaling, ``MPConv`` whose weight is forcibly
normalised in training (``with torch.no_grad(): self.weight.copy_(normalize(w))``) and scaled by
``gain / np.sqrt(w[0].numel())`` in forward (``x @ w.t()`` for 2-d weights, ``F.conv2d`` for 4-d),
learned 0-d gains (``Parameter(torch.zeros([]))``), ``MPFourier`` noise embedding (``y.ger(freqs)``,
``cos() * np.sqrt(2)``), pixel norm ``normalize(x, dim=1)``, ``clip_``; the EDM preconditioning
(c_skip, c_out, c_in, c_noise = log(sigma) / 4), log-normal sigma sampling, the uncertainty-weighted
loss ``(weight / logvar.exp()) * (denoised - images) ** 2 + logvar``, the inverse-sqrt learning-rate
schedule written into ``param_groups``, ``torch.nan_to_num(param.grad, nan=0, posinf=0, neginf=0,
out=param.grad)``, and the post-hoc power-function EMA (``std_to_exp`` by ``np.roots``,
``power_function_beta``, ``p_ema.lerp_(p_net, 1 - beta)``) against ``torch._foreach_lerp_``.

Checks: the layers keep unit magnitude on random inputs (measured std ~ 1); the ``ger`` Fourier
features equal ``torch.outer``; the EMA loop equals ``torch._foreach_lerp_`` and, on a constant and on
a linear parameter sequence, the closed form (the betas telescope to weights i^(g+1) - (i-1)^(g+1)).
"""

import copy
import os

import numpy as np
import torch

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

IMG, CH, EMB = 8, 16, 32


def normalize(x, dim=None, eps=1e-4):
    if dim is None:
        dim = list(range(1, x.ndim))
    norm = torch.linalg.vector_norm(x, dim=dim, keepdim=True, dtype=torch.float32)
    norm = torch.add(eps, norm, alpha=np.sqrt(norm.numel() / x.numel()))
    return x / norm.to(x.dtype)


def mp_silu(x):
    return torch.nn.functional.silu(x) / 0.596


def mp_sum(a, b, t=0.5):
    return a.lerp(b, t) / np.sqrt((1 - t) ** 2 + t ** 2)


def mp_cat(a, b, dim=1, t=0.5):
    Na = a.shape[dim]
    Nb = b.shape[dim]
    C = np.sqrt((Na + Nb) / ((1 - t) ** 2 + t ** 2))
    wa = C / np.sqrt(Na) * (1 - t)
    wb = C / np.sqrt(Nb) * t
    return torch.cat([wa * a, wb * b], dim=dim)


class MPFourier(torch.nn.Module):
    def __init__(self, num_channels, bandwidth=1):
        super().__init__()
        self.register_buffer('freqs', 2 * np.pi * torch.randn(num_channels) * bandwidth)
        self.register_buffer('phases', 2 * np.pi * torch.rand(num_channels))

    def forward(self, x):
        y = x.to(torch.float32)
        y = y.ger(self.freqs.to(torch.float32))
        y = y + self.phases.to(torch.float32)
        y = y.cos() * np.sqrt(2)
        return y.to(x.dtype)


class MPConv(torch.nn.Module):
    def __init__(self, in_channels, out_channels, kernel):
        super().__init__()
        self.out_channels = out_channels
        self.weight = torch.nn.Parameter(torch.randn(out_channels, in_channels, *kernel))

    def forward(self, x, gain=1):
        w = self.weight.to(torch.float32)
        if self.training:
            with torch.no_grad():
                self.weight.copy_(normalize(w))  # forced weight normalization
        w = normalize(w)  # traditional weight normalization
        w = w * (gain / np.sqrt(w[0].numel()))  # magnitude-preserving scaling
        w = w.to(x.dtype)
        if w.ndim == 2:
            return x @ w.t()
        assert w.ndim == 4
        return torch.nn.functional.conv2d(x, w, padding=(w.shape[-1] // 2,))


class Block(torch.nn.Module):
    def __init__(self, in_channels, out_channels, emb_channels, flavor='enc', res_balance=0.3,
                 clip_act=256, dropout=0.0):
        super().__init__()
        self.out_channels = out_channels
        self.flavor = flavor
        self.res_balance = res_balance
        self.clip_act = clip_act
        self.dropout = dropout
        self.emb_gain = torch.nn.Parameter(torch.zeros([]))
        self.conv_res0 = MPConv(out_channels if flavor == 'enc' else in_channels, out_channels, kernel=[3, 3])
        self.emb_linear = MPConv(emb_channels, out_channels, kernel=[])
        self.conv_res1 = MPConv(out_channels, out_channels, kernel=[3, 3])
        self.conv_skip = MPConv(in_channels, out_channels, kernel=[1, 1]) if in_channels != out_channels else None

    def forward(self, x, emb):
        if self.flavor == 'enc':
            if self.conv_skip is not None:
                x = self.conv_skip(x)
            x = normalize(x, dim=1)  # pixel norm
        y = self.conv_res0(mp_silu(x))
        c = self.emb_linear(emb, gain=self.emb_gain) + 1
        y = mp_silu(y * c.unsqueeze(2).unsqueeze(3).to(y.dtype))
        if self.training and self.dropout != 0:
            y = torch.nn.functional.dropout(y, p=self.dropout)
        y = self.conv_res1(y)
        if self.flavor == 'dec' and self.conv_skip is not None:
            x = self.conv_skip(x)
        x = mp_sum(x, y, t=self.res_balance)
        if self.clip_act is not None:
            x = x.clip_(-self.clip_act, self.clip_act)
        return x


class UNet(torch.nn.Module):
    """Two encoder blocks, a skip concatenated by mp_cat, one decoder block, at one resolution."""

    def __init__(self, img_channels=1, model_channels=CH, emb_channels=EMB, concat_balance=0.5):
        super().__init__()
        self.concat_balance = concat_balance
        self.out_gain = torch.nn.Parameter(torch.zeros([]))
        self.emb_fourier = MPFourier(model_channels)
        self.emb_noise = MPConv(model_channels, emb_channels, kernel=[])
        self.conv_in = MPConv(img_channels + 1, model_channels, kernel=[3, 3])
        self.enc0 = Block(model_channels, model_channels, emb_channels, 'enc')
        self.enc1 = Block(model_channels, model_channels, emb_channels, 'enc')
        self.dec0 = Block(model_channels * 2, model_channels, emb_channels, 'dec')
        self.conv_out = MPConv(model_channels, img_channels, kernel=[3, 3])

    def forward(self, x, noise_labels):
        emb = self.emb_noise(self.emb_fourier(noise_labels))
        emb = mp_silu(emb)
        x = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
        x = self.conv_in(x)
        skip = self.enc0(x, emb)
        x = self.enc1(skip, emb)
        x = mp_cat(x, skip, t=self.concat_balance)
        x = self.dec0(x, emb)
        return self.conv_out(x, gain=self.out_gain)


class Precond(torch.nn.Module):
    def __init__(self, sigma_data=0.5, logvar_channels=32):
        super().__init__()
        self.sigma_data = sigma_data
        self.unet = UNet()
        self.logvar_fourier = MPFourier(logvar_channels)
        self.logvar_linear = MPConv(logvar_channels, 1, kernel=[])

    def forward(self, x, sigma, return_logvar=False):
        x = x.to(torch.float32)
        sigma = sigma.to(torch.float32).reshape(-1, 1, 1, 1)
        c_skip = self.sigma_data ** 2 / (sigma ** 2 + self.sigma_data ** 2)
        c_out = sigma * self.sigma_data / (sigma ** 2 + self.sigma_data ** 2).sqrt()
        c_in = 1 / (self.sigma_data ** 2 + sigma ** 2).sqrt()
        c_noise = sigma.flatten().log() / 4
        x_in = c_in * x
        F_x = self.unet(x_in, c_noise)
        D_x = c_skip * x + c_out * F_x.to(torch.float32)
        if return_logvar:
            logvar = self.logvar_linear(self.logvar_fourier(c_noise)).reshape(-1, 1, 1, 1)
            return D_x, logvar
        return D_x


class EDM2Loss:
    def __init__(self, P_mean=-0.4, P_std=1.0, sigma_data=0.5):
        self.P_mean = P_mean
        self.P_std = P_std
        self.sigma_data = sigma_data

    def __call__(self, net, images):
        rnd_normal = torch.randn([images.shape[0], 1, 1, 1], device=images.device)
        sigma = (rnd_normal * self.P_std + self.P_mean).exp()
        weight = (sigma ** 2 + self.sigma_data ** 2) / (sigma * self.sigma_data) ** 2
        noise = torch.randn_like(images) * sigma
        denoised, logvar = net(images + noise, sigma, return_logvar=True)
        loss = (weight / logvar.exp()) * ((denoised - images) ** 2) + logvar
        return loss


def learning_rate_schedule(cur_nimg, batch_size, ref_lr=1e-2, ref_batches=100, rampup_img=640):
    lr = ref_lr
    if ref_batches > 0:
        lr /= np.sqrt(max(cur_nimg / (ref_batches * batch_size), 1))
    if rampup_img > 0:
        lr *= min(cur_nimg / rampup_img, 1)
    return lr


# --- phema.py: the power-function EMA
def exp_to_std(exp):
    exp = np.float64(exp)
    std = np.sqrt((exp + 1) / (exp + 2) ** 2 / (exp + 3))
    return std


def std_to_exp(std):
    std = np.float64(std)
    tmp = std.flatten() ** -2
    exp = [np.roots([1, 7, 16 - t, 12 - t]).real.max() for t in tmp]
    exp = np.float64(exp).reshape(std.shape)
    return exp


def power_function_beta(std, t_next, t_delta):
    beta = (1 - t_delta / t_next) ** (std_to_exp(std) + 1)
    return beta


class PowerFunctionEMA:
    @torch.no_grad()
    def __init__(self, net, stds=(0.050, 0.100)):
        self.net = net
        self.stds = stds
        self.emas = [copy.deepcopy(net) for _std in stds]

    @torch.no_grad()
    def reset(self):
        for ema in self.emas:
            for p_net, p_ema in zip(self.net.parameters(), ema.parameters()):
                p_ema.copy_(p_net)

    @torch.no_grad()
    def update(self, cur_nimg, batch_size):
        for std, ema in zip(self.stds, self.emas):
            beta = power_function_beta(std=std, t_next=cur_nimg, t_delta=batch_size)
            for p_net, p_ema in zip(self.net.parameters(), ema.parameters()):
                p_ema.lerp_(p_net, 1 - beta)

    def get(self):
        return [(ema, f'-{std:.3f}') for std, ema in zip(self.stds, self.emas)]


def make_images(n, rng):
    """Oriented bars with a random offset and contrast: a low-dimensional image manifold."""
    yy, xx = np.meshgrid(np.arange(IMG), np.arange(IMG), indexing='ij')
    angle = rng.choice([0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4], size=n)
    offset = rng.uniform(-1.5, 1.5, size=n)
    d = (np.cos(angle)[:, None, None] * (xx - 3.5) + np.sin(angle)[:, None, None] * (yy - 3.5)
         - offset[:, None, None])
    img = np.exp(-d ** 2 / 1.5) - 0.3
    return torch.from_numpy((img[:, None] * 0.9).astype(np.float32))


rng = np.random.default_rng(seed)

# --- magnitude preservation on random unit-variance inputs
with torch.no_grad():
    a = torch.randn(4096, 64)
    b = torch.randn(4096, 64)
    stds = {
        'mp_silu': mp_silu(a).pow(2).mean().sqrt().item(),
        'mp_sum': mp_sum(a, b, t=0.3).std().item(),
        'mp_cat': mp_cat(a[:, :16], b, t=0.3).std().item(),
        'mplinear': MPConv(64, 48, kernel=[])(a).std().item(),
        'mpconv': MPConv(8, 12, kernel=[3, 3])(torch.randn(64, 8, 12, 12))[:, :, 1:-1, 1:-1].std().item(),
        'fourier': MPFourier(256)(torch.randn(512)).std().item(),
        'pixelnorm': normalize(torch.randn(32, 16, 6, 6) * 3.0, dim=1).pow(2).mean().sqrt().item(),
    }
    w = torch.randn(12, 8, 3, 3) * 5
    w_norms = normalize(w).flatten(1).norm(dim=1)
    weight_norm_err = (w_norms - np.sqrt(w[0].numel())).abs().max().item() / np.sqrt(w[0].numel())
    fourier = MPFourier(8)
    s = torch.randn(5)
    ger_err = (fourier(s) - torch.cos(torch.outer(s, fourier.freqs) + fourier.phases) * np.sqrt(2)).abs().max().item()
for k, v in stds.items():
    print(f"magnitude {k}: std {v:.4f}")
mag_err = max(abs(v - 1) for v in stds.values())
print(f"normalize(w) rows have norm sqrt(fan_in): err {weight_norm_err:.2e}, ger vs outer err {ger_err:.2e}")

# --- the power-function EMA: loop vs _foreach_lerp_ vs the telescoped closed form
ema_errs = []
for std in (0.05, 0.1):
    gamma = std_to_exp(std)
    roundtrip = abs(exp_to_std(gamma) - std)
    p_lin = torch.zeros(3, dtype=torch.float64)
    p_const = torch.full((3,), 1.5, dtype=torch.float64)
    ema_loop = [torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)]
    ema_each = [t.clone() for t in ema_loop]
    T, batch = 40, 4
    with torch.no_grad():
        for step in range(1, T + 1):
            p_lin.fill_(float(step))
            beta = power_function_beta(std=std, t_next=step * batch, t_delta=batch)
            for p_net, p_ema in zip([p_lin, p_const], ema_loop):
                p_ema.lerp_(p_net, 1 - beta)
            torch._foreach_lerp_(ema_each, [p_lin, p_const], float(1 - beta))
    i = np.arange(1, T + 1, dtype=np.float64)
    wts = i ** (gamma + 1) - (i - 1) ** (gamma + 1)
    closed_lin = float((wts * i).sum() / T ** (gamma + 1))
    ema_errs += [roundtrip, (ema_loop[0] - closed_lin).abs().max().item(), (ema_loop[1] - 1.5).abs().max().item(),
                 max((x - y).abs().max().item() for x, y in zip(ema_loop, ema_each))]
    print(f"phema std {std:.3f}: exp {gamma:.4f}, linear sequence ema {ema_loop[0][0].item():.4f} "
          f"(closed form {closed_lin:.4f})")
ema_err = max(ema_errs)
print(f"phema loop vs closed form vs _foreach_lerp_: err {ema_err:.2e}")

# --- training the denoiser
net = Precond()
print(f"Precond parameters: {sum(p.numel() for p in net.parameters())}")
ema = PowerFunctionEMA(net, stds=[0.05, 0.10])
loss_fn = EDM2Loss()
optimizer = torch.optim.Adam(net.parameters(), lr=1e-2, betas=(0.9, 0.99), eps=1e-8)
train_images = make_images(2048, rng)
eval_images = make_images(256, rng)
eval_sigma = torch.exp(torch.linspace(-2.0, 1.0, 256))
eval_noise = torch.randn(256, 1, IMG, IMG)


@torch.no_grad()
def eval_mse(model):
    model.eval()
    sigma = eval_sigma.reshape(-1, 1, 1, 1)
    denoised = model(eval_images + eval_noise * sigma, eval_sigma)
    model.train()
    weight = (sigma ** 2 + 0.25) / (sigma * 0.5) ** 2
    return (weight * (denoised - eval_images) ** 2).mean().item()


STEPS, BATCH = 240, 32
mse_start = eval_mse(net)
cur_nimg = 0
running = []
for step in range(STEPS):
    idx = torch.randint(0, train_images.shape[0], (BATCH,))
    images = train_images[idx]
    loss = loss_fn(net=net, images=images)
    optimizer.zero_grad(set_to_none=True)
    loss.sum().mul(1 / BATCH).backward()
    lr = learning_rate_schedule(cur_nimg=cur_nimg + BATCH, batch_size=BATCH)
    for g in optimizer.param_groups:
        g['lr'] = lr
    for param in net.parameters():
        if param.grad is not None:
            torch.nan_to_num(param.grad, nan=0, posinf=0, neginf=0, out=param.grad)
    optimizer.step()
    cur_nimg += BATCH
    ema.update(cur_nimg=cur_nimg, batch_size=BATCH)
    running.append(loss.mean().item())
    if (step + 1) % 60 == 0:
        print(f"step {step + 1} loss {np.mean(running[-60:]):.4f} lr {lr:.5f}")

mse_end = eval_mse(net)
ema_mse = {suffix: eval_mse(m) for m, suffix in ema.get()}
with torch.no_grad():
    row_norm_err = max(
        (m.weight.flatten(1).norm(dim=1) / np.sqrt(m.weight[0].numel()) - 1).abs().max().item()
        for m in net.modules() if isinstance(m, MPConv))
    logvar = net(eval_images[:4], eval_sigma[:4], return_logvar=True)[1].flatten()
print(f"trained weights keep norm sqrt(fan_in): err {row_norm_err:.2e}, logvar {logvar[0].item():.3f}")
print(f"weighted denoising mse {mse_start:.4f} -> {mse_end:.4f}, ema-0.050 {ema_mse['-0.050']:.4f}, "
      f"ema-0.100 {ema_mse['-0.100']:.4f}")
check_err = max(weight_norm_err, ger_err, ema_err, row_norm_err)
print(f"FINAL loss={np.mean(running[-60:]):.4f} mse={mse_end:.4f} ema_mse={ema_mse['-0.100']:.4f} "
      f"mag_err={mag_err:.4f} check_err={check_err:.3e}")
