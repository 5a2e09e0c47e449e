"""Learned image compression with a factorized prior (Ballé et al. 2018) as CompressAI writes it.

InterDigitalInc/CompressAI's ``EntropyBottleneck`` at tiny sizes: the per-channel cumulative
``_logits_cumulative`` (``torch.Tensor(...)`` matrices filled with ``log(expm1(...))`` through
``F.softplus``, ``nn.init.uniform_`` biases, ``torch.tanh`` factors, ``detach()`` under
``stop_gradient``), ``_likelihood`` as ``sigmoid(sign * upper) - sigmoid(sign * lower)`` with
``sign = -torch.sign(lower + upper)``, the ``LowerBoundFunction`` custom
``torch.autograd.Function`` (``ctx.save_for_backward``, gradient passed through where it pushes
the input up) behind ``LowerBound`` with a ``torch.Tensor([bound])`` buffer, ``quantize`` with
``torch.empty_like(...).uniform_(-half, half)`` noise in training and ``torch.round`` around the
medians at eval, the quantile ``nn.Parameter`` set through ``.data = init.repeat(...)`` and its
aux loss against the ``target`` buffer; ``GDN``/inverse GDN with ``NonNegativeParametrizer``;
``FactorizedPrior``'s ``g_a``/``g_s``; ``RateDistortionLoss`` (``torch.log(likelihoods).sum() /
(-math.log(2) * num_pixels)``, ``lmbda * 255**2 * mse``) and ``configure_optimizers`` splitting
``.quantiles`` into an aux Adam. Checks: the LowerBound gradient rule, likelihoods in (0, 1], the
eval rate within a band of the empirical entropy of the quantised latents counted by
``torch.unique(return_counts=True)``, and the R-D loss falling.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

IMAGE = 32


def make_images(n):
    yy, xx = np.mgrid[0:IMAGE, 0:IMAGE] / IMAGE
    images = np.zeros((n, 3, IMAGE, IMAGE))
    for i in range(n):
        base = rng.uniform(0.2, 0.8, size=(3, 1, 1))
        gradient = rng.uniform(-0.3, 0.3, size=(3, 1, 1)) * (xx if rng.rand() < 0.5 else yy)
        img = base + gradient
        for _ in range(rng.randint(1, 4)):
            cy, cx = rng.uniform(0, 1, size=2)
            radius = rng.uniform(0.08, 0.3)
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius ** 2))
            img = img + rng.uniform(-0.5, 0.5, size=(3, 1, 1)) * blob
        images[i] = np.clip(img + 0.02 * rng.randn(3, IMAGE, IMAGE), 0, 1)
    return torch.from_numpy(images.astype(np.float32))


class LowerBoundFunction(torch.autograd.Function):
    """Autograd function for the `LowerBound` operator."""

    @staticmethod
    def forward(ctx, input_, bound):
        ctx.save_for_backward(input_, bound)
        return torch.max(input_, bound)

    @staticmethod
    def backward(ctx, grad_output):
        input_, bound = ctx.saved_tensors
        pass_through_if = (input_ >= bound) | (grad_output < 0)
        return pass_through_if * grad_output, None


class LowerBound(nn.Module):
    """Lower bound operator, computes `torch.max(x, bound)` with a custom gradient."""

    def __init__(self, bound):
        super().__init__()
        self.register_buffer("bound", torch.Tensor([float(bound)]))

    def lower_bound(self, x):
        return LowerBoundFunction.apply(x, self.bound)

    def forward(self, x):
        return self.lower_bound(x)


class NonNegativeParametrizer(nn.Module):
    def __init__(self, minimum=0, reparam_offset=2 ** -18):
        super().__init__()
        self.minimum = float(minimum)
        self.reparam_offset = float(reparam_offset)
        pedestal = self.reparam_offset ** 2
        self.register_buffer("pedestal", torch.Tensor([pedestal]))
        bound = (self.minimum + self.reparam_offset ** 2) ** 0.5
        self.lower_bound = LowerBound(bound)

    def init(self, x):
        return torch.sqrt(torch.max(x + self.pedestal, self.pedestal))

    def forward(self, x):
        out = self.lower_bound(x)
        out = out ** 2 - self.pedestal
        return out


class GDN(nn.Module):
    def __init__(self, in_channels, inverse=False, beta_min=1e-6, gamma_init=0.1):
        super().__init__()
        beta_min = float(beta_min)
        gamma_init = float(gamma_init)
        self.inverse = bool(inverse)
        self.beta_reparam = NonNegativeParametrizer(minimum=beta_min)
        beta = torch.ones(in_channels)
        beta = self.beta_reparam.init(beta)
        self.beta = nn.Parameter(beta)
        self.gamma_reparam = NonNegativeParametrizer()
        gamma = gamma_init * torch.eye(in_channels)
        gamma = self.gamma_reparam.init(gamma)
        self.gamma = nn.Parameter(gamma)

    def forward(self, x):
        _, C, _, _ = x.size()
        beta = self.beta_reparam(self.beta)
        gamma = self.gamma_reparam(self.gamma)
        gamma = gamma.reshape(C, C, 1, 1)
        norm = F.conv2d(x ** 2, gamma, beta)
        if self.inverse:
            norm = torch.sqrt(norm)
        else:
            norm = torch.rsqrt(norm)
        out = x * norm
        return out


class EntropyModel(nn.Module):
    def __init__(self, likelihood_bound=1e-9):
        super().__init__()
        self.use_likelihood_bound = likelihood_bound > 0
        if self.use_likelihood_bound:
            self.likelihood_lower_bound = LowerBound(likelihood_bound)

    def quantize(self, inputs, mode, means=None):
        if mode not in ("noise", "dequantize", "symbols"):
            raise ValueError(f'Invalid quantization mode: "{mode}"')
        if mode == "noise":
            half = 0.5
            noise = torch.empty_like(inputs).uniform_(-half, half)
            inputs = inputs + noise
            return inputs
        outputs = inputs.clone()
        if means is not None:
            outputs -= means
        outputs = torch.round(outputs)
        if mode == "dequantize":
            if means is not None:
                outputs += means
            return outputs
        assert mode == "symbols", mode
        outputs = outputs.int()
        return outputs


class EntropyBottleneck(EntropyModel):
    def __init__(self, channels, *args, tail_mass=1e-9, init_scale=10, filters=(3, 3, 3, 3), **kwargs):
        super().__init__(*args, **kwargs)
        self.channels = int(channels)
        self.filters = tuple(int(f) for f in filters)
        self.init_scale = float(init_scale)
        self.tail_mass = float(tail_mass)

        filters = (1,) + self.filters + (1,)
        scale = self.init_scale ** (1 / (len(self.filters) + 1))
        channels = self.channels

        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()

        for i in range(len(self.filters) + 1):
            init = np.log(np.expm1(1 / scale / filters[i + 1]))
            matrix = torch.Tensor(channels, filters[i + 1], filters[i])
            matrix.data.fill_(init)
            self.matrices.append(nn.Parameter(matrix))

            bias = torch.Tensor(channels, filters[i + 1], 1)
            nn.init.uniform_(bias, -0.5, 0.5)
            self.biases.append(nn.Parameter(bias))

            if i < len(self.filters):
                factor = torch.Tensor(channels, filters[i + 1], 1)
                nn.init.zeros_(factor)
                self.factors.append(nn.Parameter(factor))

        self.quantiles = nn.Parameter(torch.Tensor(channels, 1, 3))
        init = torch.Tensor([-self.init_scale, 0, self.init_scale])
        self.quantiles.data = init.repeat(self.quantiles.size(0), 1, 1)

        target = np.log(2 / self.tail_mass - 1)
        self.register_buffer("target", torch.Tensor([-target, 0, target]))

    def _get_medians(self):
        medians = self.quantiles[:, :, 1:2]
        return medians

    def loss(self):
        logits = self._logits_cumulative(self.quantiles, stop_gradient=True)
        loss = torch.abs(logits - self.target).sum()
        return loss

    def _logits_cumulative(self, inputs, stop_gradient):
        logits = inputs
        for i in range(len(self.filters) + 1):
            matrix = self.matrices[i]
            if stop_gradient:
                matrix = matrix.detach()
            logits = torch.matmul(F.softplus(matrix), logits)

            bias = self.biases[i]
            if stop_gradient:
                bias = bias.detach()
            logits = logits + bias

            if i < len(self.factors):
                factor = self.factors[i]
                if stop_gradient:
                    factor = factor.detach()
                logits = logits + torch.tanh(factor) * torch.tanh(logits)
        return logits

    def _likelihood(self, inputs, stop_gradient=False):
        half = 0.5
        lower = self._logits_cumulative(inputs - half, stop_gradient=stop_gradient)
        upper = self._logits_cumulative(inputs + half, stop_gradient=stop_gradient)
        sign = -torch.sign(lower + upper)
        likelihood = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        return likelihood, lower, upper

    def forward(self, x, training=None):
        if training is None:
            training = self.training
        # x from B x C x ... to C x B x ...
        perm = np.arange(len(x.shape))
        perm[0], perm[1] = perm[1], perm[0]
        inv_perm = np.arange(len(x.shape))[np.argsort(perm)]
        x = x.permute(*perm).contiguous()
        shape = x.size()
        values = x.reshape(x.size(0), 1, -1)

        outputs = self.quantize(values, "noise" if training else "dequantize", self._get_medians())

        likelihood, _, _ = self._likelihood(outputs)
        if self.use_likelihood_bound:
            likelihood = self.likelihood_lower_bound(likelihood)

        outputs = outputs.reshape(shape)
        outputs = outputs.permute(*inv_perm).contiguous()
        likelihood = likelihood.reshape(shape)
        likelihood = likelihood.permute(*inv_perm).contiguous()
        return outputs, likelihood


def conv(in_channels, out_channels, kernel_size=5, stride=2):
    return nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, stride=stride,
                     padding=kernel_size // 2)


def deconv(in_channels, out_channels, kernel_size=5, stride=2):
    return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=kernel_size, stride=stride,
                              output_padding=stride - 1, padding=kernel_size // 2)


class FactorizedPrior(nn.Module):
    def __init__(self, N, M):
        super().__init__()
        self.entropy_bottleneck = EntropyBottleneck(M)
        self.g_a = nn.Sequential(conv(3, N), GDN(N), conv(N, M))
        self.g_s = nn.Sequential(deconv(M, N), GDN(N, inverse=True), deconv(N, 3))
        self.N = N
        self.M = M

    def aux_loss(self):
        return sum(m.loss() for m in self.modules() if isinstance(m, EntropyBottleneck))

    def forward(self, x):
        y = self.g_a(x)
        y_hat, y_likelihoods = self.entropy_bottleneck(y)
        x_hat = self.g_s(y_hat)
        return {"x_hat": x_hat, "likelihoods": {"y": y_likelihoods}, "y": y, "y_hat": y_hat}


class RateDistortionLoss(nn.Module):
    def __init__(self, lmbda=1e-2):
        super().__init__()
        self.mse = nn.MSELoss()
        self.lmbda = lmbda

    def forward(self, output, target):
        N, _, H, W = target.size()
        out = {}
        num_pixels = N * H * W
        out["bpp_loss"] = sum(
            (torch.log(likelihoods).sum() / (-math.log(2) * num_pixels))
            for likelihoods in output["likelihoods"].values()
        )
        out["mse_loss"] = self.mse(output["x_hat"], target)
        distortion = 255 ** 2 * out["mse_loss"]
        out["loss"] = self.lmbda * distortion + out["bpp_loss"]
        return out


def configure_optimizers(net, learning_rate, aux_learning_rate):
    parameters = {n for n, p in net.named_parameters() if not n.endswith(".quantiles") and p.requires_grad}
    aux_parameters = {n for n, p in net.named_parameters() if n.endswith(".quantiles") and p.requires_grad}
    params_dict = dict(net.named_parameters())
    inter_params = parameters & aux_parameters
    union_params = parameters | aux_parameters
    assert len(inter_params) == 0
    assert len(union_params) - len(params_dict.keys()) == 0
    optimizer = torch.optim.Adam((params_dict[n] for n in sorted(parameters)), lr=learning_rate)
    aux_optimizer = torch.optim.Adam((params_dict[n] for n in sorted(aux_parameters)), lr=aux_learning_rate)
    return optimizer, aux_optimizer


# --- the LowerBound gradient: pass through where the input is above the bound or the
# gradient would push it up (grad_output < 0), else zero like torch.max
lb = LowerBound(0.0)
x = torch.tensor([-1.0, -0.5, 0.5, 2.0], requires_grad=True)
upstream = torch.tensor([1.0, -1.0, 1.0, -1.0])
lb(x).backward(upstream)
expected = torch.where((x.detach() >= 0) | (upstream < 0), upstream, torch.zeros_like(upstream))
lb_err = (x.grad - expected).abs().max().item()
print("LowerBound grad", x.grad.tolist(), "torch.max grad",
      torch.autograd.grad(torch.max(x, lb.bound).mul(upstream).sum(), x)[0].tolist())

train_x = make_images(64)
test_x = make_images(32)
net = FactorizedPrior(N=16, M=8)
criterion = RateDistortionLoss(lmbda=1e-2)
optimizer, aux_optimizer = configure_optimizers(net, 1e-2, 1e-1)
print("parameters", sum(p.numel() for p in net.parameters()),
      "aux", sum(p.numel() for p in aux_optimizer.param_groups[0]["params"]))


def evaluate():
    net.eval()
    with torch.no_grad():
        out_net = net(test_x)
        out_criterion = criterion(out_net, test_x)
    return out_net, out_criterion


_, first = evaluate()
print(f"untrained eval: loss {first['loss'].item():.3f} bpp {first['bpp_loss'].item():.3f} "
      f"mse {first['mse_loss'].item():.5f} aux {net.aux_loss().item():.1f}")

batch_size = 8
history = []
for epoch in range(10):
    net.train()
    perm = torch.randperm(len(train_x))
    running = 0.0
    for start in range(0, len(train_x), batch_size):
        d = train_x[perm[start:start + batch_size]]
        optimizer.zero_grad()
        aux_optimizer.zero_grad()
        out_net = net(d)
        out_criterion = criterion(out_net, d)
        out_criterion["loss"].backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        aux_loss = net.aux_loss()
        aux_loss.backward()
        aux_optimizer.step()
        running += out_criterion["loss"].item() * len(d)
    history.append(running / len(train_x))
    print(f"epoch {epoch} train loss {history[-1]:.3f} aux {aux_loss.item():.1f}")

out_net, last = evaluate()
likelihoods = out_net["likelihoods"]["y"]
lik_ok = bool((likelihoods > 0).all() and (likelihoods <= 1).all())
psnr = -10 * math.log10(last["mse_loss"].item())
# the rate by -log2 directly, against the loss's natural-log form
num_pixels = test_x.size(0) * test_x.size(2) * test_x.size(3)
bits = (-torch.log2(likelihoods).sum()).item()
rate_err = abs(bits / num_pixels - last["bpp_loss"].item())
# empirical entropy of the quantised symbols per channel (the best a per-channel iid code does
# on this very data): counted by torch.unique
symbols = net.entropy_bottleneck.quantize(
    out_net["y"].transpose(0, 1).reshape(net.M, 1, -1), "symbols", net.entropy_bottleneck._get_medians())
empirical_bits = 0.0
for c in range(net.M):
    values, counts = torch.unique(symbols[c], return_counts=True)
    p = counts.double() / counts.sum()
    empirical_bits += -(counts.double() * torch.log2(p)).sum().item()
ratio = bits / empirical_bits
print(f"eval: loss {last['loss'].item():.3f} bpp {last['bpp_loss'].item():.4f} psnr {psnr:.2f} dB, "
      f"likelihoods in (0, 1]: {lik_ok}, min {likelihoods.min().item():.2e}")
print(f"model bits {bits:.1f} vs empirical entropy {empirical_bits:.1f} bits (ratio {ratio:.3f}), "
      f"y_hat - medians integral: {bool(torch.equal(symbols.float(), symbols.float().round()))}")
print(f"FINAL lb_err={lb_err:.6f} lik_ok={int(lik_ok)} rate_err={rate_err:.6f} rd_before={first['loss'].item():.4f} "
      f"rd_after={last['loss'].item():.4f} train_last={history[-1]:.4f} bpp={last['bpp_loss'].item():.4f} "
      f"psnr={psnr:.4f} bits_ratio={ratio:.4f}")
