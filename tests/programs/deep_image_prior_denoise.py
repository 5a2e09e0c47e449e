"""Deep Image Prior denoising, the way DmitryUlyanov/deep-image-prior's denoising notebook writes it.

A tiny skip encoder-decoder (``nn.ReflectionPad2d`` + Conv2d, strided downsampling,
``nn.Upsample(scale_factor=2, mode='bilinear')``, ``LeakyReLU(0.2)``, BatchNorm, concatenated
skips) is fed fixed noise ``get_noise`` = ``torch.rand(...) * 0.1`` and fitted to a noisy
synthetic image.  Each step regularises the input (``net_input = net_input_saved +
noise.normal_() * reg_noise_std``), keeps an exponential average of the outputs, computes PSNR
against the clean image by ``10 * torch.log10(1 / F.mse_loss(...))`` and remembers the best output
(early stopping).  The PSNR from torch must match a NumPy one, and the best output must beat
the noisy input.
"""

# ruff: noqa: UP031  (the notebook's own % formats)

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

H = W = 16
yy, xx = np.mgrid[0:H, 0:W].astype(np.float32) / H
img_np = (0.5 + 0.3 * np.sin(6 * xx + rng.uniform(0, 3)) * np.cos(4 * yy)
          + 0.2 * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.08)).clip(0, 1).astype(np.float32)
img_np = np.stack([img_np, img_np[::-1].copy(), img_np.T.copy()])          # 3 x H x W
sigma = 25.0 / 255.0
img_noisy_np = np.clip(img_np + rng.normal(scale=sigma, size=img_np.shape), 0, 1).astype(np.float32)


def np_to_torch(img_np):
    return torch.from_numpy(img_np)[None, :]


def torch_to_np(img_var):
    return img_var.detach().cpu().numpy()[0]


def compare_psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def conv(in_f, out_f, kernel_size, stride=1, bias=True, pad="reflection"):
    to_pad = int((kernel_size - 1) / 2)
    padder = nn.ReflectionPad2d(to_pad) if pad == "reflection" and to_pad > 0 else None
    convolver = nn.Conv2d(in_f, out_f, kernel_size, stride, padding=0, bias=bias)
    layers = filter(lambda x: x is not None, [padder, convolver])
    return nn.Sequential(*layers)


def bn(num_features):
    return nn.BatchNorm2d(num_features)


def act():
    return nn.LeakyReLU(0.2, inplace=True)


class Concat(nn.Module):
    def __init__(self, dim, *args):
        super().__init__()
        self.dim = dim
        for idx, module in enumerate(args):
            self.add_module(str(idx), module)

    def forward(self, input):
        inputs = [module(input) for module in self._modules.values()]
        return torch.cat(inputs, dim=self.dim)


def skip(num_input_channels=8, num_output_channels=3, num_channels_down=(8, 16),
         num_channels_up=(8, 16), num_channels_skip=(4, 4)):
    n_scales = len(num_channels_down)
    model = nn.Sequential()
    model_tmp = model
    input_depth = num_input_channels
    for i in range(n_scales):
        deeper = nn.Sequential()
        skip_ = nn.Sequential()
        if num_channels_skip[i] != 0:
            model_tmp.add_module("concat", Concat(1, skip_, deeper))
        else:
            model_tmp.add(deeper)
        model_tmp.add_module("bn", bn(num_channels_skip[i] + (num_channels_up[i + 1] if i < n_scales - 1
                                                              else num_channels_down[i])))
        if num_channels_skip[i] != 0:
            skip_.add_module("conv", conv(input_depth, num_channels_skip[i], 1))
            skip_.add_module("bn", bn(num_channels_skip[i]))
            skip_.add_module("act", act())
        deeper.add_module("conv1", conv(input_depth, num_channels_down[i], 3, 2))
        deeper.add_module("bn1", bn(num_channels_down[i]))
        deeper.add_module("act1", act())
        deeper.add_module("conv2", conv(num_channels_down[i], num_channels_down[i], 3))
        deeper.add_module("bn2", bn(num_channels_down[i]))
        deeper.add_module("act2", act())
        deeper_main = nn.Sequential()
        if i == n_scales - 1:
            k = num_channels_down[i]
        else:
            deeper.add_module("main", deeper_main)
            k = num_channels_up[i + 1]
        deeper.add_module("up", nn.Upsample(scale_factor=2, mode="bilinear"))
        model_tmp.add_module("conv_up", conv(num_channels_skip[i] + k, num_channels_up[i], 3))
        model_tmp.add_module("bn_up", bn(num_channels_up[i]))
        model_tmp.add_module("act_up", act())
        input_depth = num_channels_down[i]
        model_tmp = deeper_main
    model.add_module("conv_out", conv(num_channels_up[0], num_output_channels, 1))
    model.add_module("sigmoid", nn.Sigmoid())
    return model


def get_noise(input_depth, spatial_size, var=1. / 10):
    shape = [1, input_depth, spatial_size[0], spatial_size[1]]
    net_input = torch.zeros(shape)
    net_input.uniform_()
    net_input *= var
    return net_input


input_depth = 8
net = skip(input_depth, 3)
net_input = get_noise(input_depth, (H, W)).detach()
s = sum(np.prod(list(p.size())) for p in net.parameters())
print("Number of params: %d" % s)

mse = torch.nn.MSELoss()
img_noisy_torch = np_to_torch(img_noisy_np)
img_clean_torch = np_to_torch(img_np)
reg_noise_std = 1. / 30.
exp_weight = 0.99
num_iter = 300
LR = 0.01

net_input_saved = net_input.detach().clone()
noise = net_input.detach().clone()
out_avg = None
best_psnr, best_iter, best_out = -1.0, -1, None
psnr_noisy_in = 10 * torch.log10(1 / F.mse_loss(img_noisy_torch, img_clean_torch)).item()
assert abs(psnr_noisy_in - compare_psnr(img_noisy_np, img_np)) < 1e-3
print("PSNR of the noisy input: %.3f" % psnr_noisy_in)

optimizer = torch.optim.Adam(net.parameters(), lr=LR)
for i in range(num_iter):
    optimizer.zero_grad()
    if reg_noise_std > 0:
        net_input = net_input_saved + (noise.normal_() * reg_noise_std)
    out = net(net_input)
    if out_avg is None:
        out_avg = out.detach()
    else:
        out_avg = out_avg * exp_weight + out.detach() * (1 - exp_weight)
    total_loss = mse(out, img_noisy_torch)
    total_loss.backward()
    psnr_noisy = 10 * torch.log10(1 / F.mse_loss(out.detach(), img_noisy_torch)).item()
    psnr_gt = 10 * torch.log10(1 / F.mse_loss(out.detach(), img_clean_torch)).item()
    psnr_gt_sm = 10 * torch.log10(1 / F.mse_loss(out_avg, img_clean_torch)).item()
    if psnr_gt_sm > best_psnr:
        best_psnr, best_iter, best_out = psnr_gt_sm, i, out_avg.clone()
    if (i + 1) % 60 == 0:
        print("Iteration %05d    Loss %f   PSNR_noisy: %f   PSRN_gt: %f PSNR_gt_sm: %f"
              % (i + 1, total_loss.item(), psnr_noisy, psnr_gt, psnr_gt_sm))
    optimizer.step()

with torch.no_grad():
    out_final = net(net_input_saved)
best_np = torch_to_np(best_out)
psnr_np = compare_psnr(best_np, img_np)
print("best PSNR_gt_sm %.3f (numpy %.3f) at iteration %d" % (best_psnr, psnr_np, best_iter))
assert abs(psnr_np - best_psnr) < 1e-2, (psnr_np, best_psnr)
assert best_psnr > psnr_noisy_in, (best_psnr, psnr_noisy_in)
print("FINAL psnr_best=%.4f psnr_gain=%.4f psnr_gap=%.5f"
      % (best_psnr, best_psnr - psnr_noisy_in, abs(psnr_np - best_psnr)))
