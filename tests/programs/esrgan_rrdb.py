"""xinntao's ESRGAN as BasicSR writes it, at tiny sizes on synthetic textures: ``ResidualDenseBlock``
(five convs growing by ``torch.cat((x, x1), 1)``, ``nn.LeakyReLU(negative_slope=0.2, inplace=True)``,
``x5 * 0.2 + x``), ``RRDB`` of three, ``RRDBNet`` with nearest ``F.interpolate(scale_factor=2)``
upsampling, ``default_init_weights(..., 0.1)`` (``init.kaiming_normal_`` then ``m.weight.data *=
scale``), the PSNR-oriented L1 pretraining, then ESRGAN's relativistic average GAN (``real_pred -
torch.mean(fake_pred)`` into a ``BCEWithLogitsLoss`` ``GANLoss``) with a VGG-style discriminator and a
frozen random-VGG perceptual loss on ``features[:k]``, ``MultiStepLR``, ``net_g_ema`` updated by
``mul_(decay).add_(p, alpha=1 - decay)``, and PSNR against a bicubic baseline.
"""

# ruff: noqa: UP008  (BasicSR's own spelling: super(RRDBNet, self))

import copy
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn import init as init
from torch.nn.modules.batchnorm import _BatchNorm

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


# ----------------------------------------------------------------------------- basicsr/archs/arch_util.py
@torch.no_grad()
def default_init_weights(module_list, scale=1, bias_fill=0, **kwargs):
    """Initialize network weights."""
    if not isinstance(module_list, list):
        module_list = [module_list]
    for module in module_list:
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                init.kaiming_normal_(m.weight, **kwargs)
                m.weight.data *= scale
                if m.bias is not None:
                    m.bias.data.fill_(bias_fill)
            elif isinstance(m, nn.Linear):
                init.kaiming_normal_(m.weight, **kwargs)
                m.weight.data *= scale
                if m.bias is not None:
                    m.bias.data.fill_(bias_fill)
            elif isinstance(m, _BatchNorm):
                init.constant_(m.weight, 1)
                if m.bias is not None:
                    m.bias.data.fill_(bias_fill)


def make_layer(basic_block, num_basic_block, **kwarg):
    layers = []
    for _ in range(num_basic_block):
        layers.append(basic_block(**kwarg))
    return nn.Sequential(*layers)


# ----------------------------------------------------------------------------- basicsr/archs/rrdbnet_arch.py
class ResidualDenseBlock(nn.Module):
    """Residual Dense Block used in RRDB."""

    def __init__(self, num_feat=64, num_grow_ch=32):
        super(ResidualDenseBlock, self).__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)

        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

        # initialization
        default_init_weights([self.conv1, self.conv2, self.conv3, self.conv4, self.conv5], 0.1)

    def forward(self, x):
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        # Empirically, we use 0.2 to scale the residual for better performance
        return x5 * 0.2 + x


class RRDB(nn.Module):
    """Residual in Residual Dense Block."""

    def __init__(self, num_feat, num_grow_ch=32):
        super(RRDB, self).__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x):
        out = self.rdb1(x)
        out = self.rdb2(out)
        out = self.rdb3(out)
        # Empirically, we use 0.2 to scale the residual for better performance
        return out * 0.2 + x


class RRDBNet(nn.Module):
    def __init__(self, num_in_ch, num_out_ch, scale=4, num_feat=64, num_block=23, num_grow_ch=32):
        super(RRDBNet, self).__init__()
        self.scale = scale
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = make_layer(RRDB, num_block, num_feat=num_feat, num_grow_ch=num_grow_ch)
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        # upsample
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x):
        feat = self.conv_first(x)
        body_feat = self.conv_body(self.body(feat))
        feat = feat + body_feat
        # upsample
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode='nearest')))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode='nearest')))
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        return out


# ----------------------------------------------------------------------------- basicsr/archs/discriminator_arch.py
class VGGStyleDiscriminator(nn.Module):
    """VGG style discriminator, two strided stages for a 32x32 input."""

    def __init__(self, num_in_ch, num_feat, input_size=32):
        super(VGGStyleDiscriminator, self).__init__()
        self.input_size = input_size
        self.conv0_0 = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1, bias=True)
        self.conv0_1 = nn.Conv2d(num_feat, num_feat, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(num_feat, affine=True)

        self.conv1_0 = nn.Conv2d(num_feat, num_feat * 2, 3, 1, 1, bias=False)
        self.bn1_0 = nn.BatchNorm2d(num_feat * 2, affine=True)
        self.conv1_1 = nn.Conv2d(num_feat * 2, num_feat * 2, 4, 2, 1, bias=False)
        self.bn1_1 = nn.BatchNorm2d(num_feat * 2, affine=True)

        self.linear1 = nn.Linear(num_feat * 2 * 8 * 8, 32)
        self.linear2 = nn.Linear(32, 1)

        # activation function
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x):
        assert x.size(2) == self.input_size, (f'Input size must be identical to input_size, but received {x.size()}.')

        feat = self.lrelu(self.conv0_0(x))
        feat = self.lrelu(self.bn0_1(self.conv0_1(feat)))  # output spatial size: /2
        feat = self.lrelu(self.bn1_0(self.conv1_0(feat)))
        feat = self.lrelu(self.bn1_1(self.conv1_1(feat)))  # output spatial size: /4

        feat = feat.view(feat.size(0), -1)
        feat = self.lrelu(self.linear1(feat))
        out = self.linear2(feat)
        return out


# ----------------------------------------------------------------------------- basicsr/losses
class GANLoss(nn.Module):
    """Define GAN loss (the 'vanilla' type only)."""

    def __init__(self, gan_type, real_label_val=1.0, fake_label_val=0.0, loss_weight=1.0):
        super(GANLoss, self).__init__()
        self.gan_type = gan_type
        self.loss_weight = loss_weight
        self.real_label_val = real_label_val
        self.fake_label_val = fake_label_val
        if self.gan_type == 'vanilla':
            self.loss = nn.BCEWithLogitsLoss()
        else:
            raise NotImplementedError(f'GAN type {self.gan_type} is not implemented.')

    def get_target_label(self, input, target_is_real):
        target_val = (self.real_label_val if target_is_real else self.fake_label_val)
        return input.new_ones(input.size()) * target_val

    def forward(self, input, target_is_real, is_disc=False):
        target_label = self.get_target_label(input, target_is_real)
        loss = self.loss(input, target_label)
        # loss_weight is always 1.0 for discriminators
        return loss if is_disc else loss * self.loss_weight


class VGGFeatureExtractor(nn.Module):
    """A frozen, randomly initialised VGG-like ``features`` stack cut at ``features[:k]``."""

    def __init__(self, layer_cut=7, use_input_norm=True):
        super(VGGFeatureExtractor, self).__init__()
        cfg = [8, 8, 'M', 16, 16, 'M']
        layers, in_ch = [], 3
        for v in cfg:
            if v == 'M':
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(in_ch, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                in_ch = v
        features = nn.Sequential(*layers)
        self.vgg_net = features[:layer_cut]
        self.vgg_net.eval()
        for param in self.parameters():
            param.requires_grad = False
        self.use_input_norm = use_input_norm
        if self.use_input_norm:
            # the mean is for image with range [0, 1]
            self.register_buffer('mean', torch.Tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
            # the std is for image with range [0, 1]
            self.register_buffer('std', torch.Tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x):
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        return self.vgg_net(x)


class PerceptualLoss(nn.Module):
    def __init__(self, perceptual_weight=1.0, criterion='l1'):
        super(PerceptualLoss, self).__init__()
        self.perceptual_weight = perceptual_weight
        self.vgg = VGGFeatureExtractor(layer_cut=7)
        if criterion == 'l1':
            self.criterion = torch.nn.L1Loss()
        else:
            raise NotImplementedError(f'{criterion} criterion has not been supported.')

    def forward(self, x, gt):
        x_features = self.vgg(x)
        gt_features = self.vgg(gt.detach())
        return self.criterion(x_features, gt_features) * self.perceptual_weight


# ----------------------------------------------------------------------------- data: synthetic textures
def make_textures(n, size, rng):
    yy, xx = np.meshgrid(np.arange(size) / size, np.arange(size) / size, indexing='ij')
    imgs = np.zeros((n, 3, size, size))
    for i in range(n):
        for c in range(3):
            f1, f2 = rng.uniform(1.0, 3.0, size=2)
            p1, p2 = rng.uniform(0, 2 * np.pi, size=2)
            imgs[i, c] = 0.5 + 0.25 * np.sin(2 * np.pi * f1 * xx + p1) * np.cos(2 * np.pi * f2 * yy + p2)
        stripe = (np.sin(2 * np.pi * rng.uniform(2.0, 4.0) * (xx + yy) + rng.uniform(0, 6)) > 0)
        imgs[i] += 0.15 * stripe[None] * rng.uniform(-1, 1, size=(3, 1, 1))
    return np.clip(imgs, 0, 1).astype(np.float32)


def downsample(hr, scale):
    n, c, h, w = hr.shape
    return hr.reshape(n, c, h // scale, scale, w // scale, scale).mean(axis=(3, 5))


def calculate_psnr(img, img2):
    mse = torch.mean((img.clamp(0, 1) - img2) ** 2)
    if mse == 0:
        return float('inf')
    return 10. * math.log10(1. / mse.item())


rng = np.random.RandomState(0)
scale = 4
gt_train = torch.from_numpy(make_textures(48, 32, rng))
lq_train = torch.from_numpy(downsample(gt_train.numpy(), scale))
gt_val = torch.from_numpy(make_textures(8, 32, rng))
lq_val = torch.from_numpy(downsample(gt_val.numpy(), scale))
print(f"train {tuple(lq_train.shape)} -> {tuple(gt_train.shape)}, val {tuple(lq_val.shape)}")

net_g = RRDBNet(3, 3, scale=scale, num_feat=16, num_block=1, num_grow_ch=8)
n_params = sum(p.numel() for p in net_g.parameters())
print(f"Network [RRDBNet] with parameters: {n_params:,d}")


@torch.no_grad()
def validation(net):
    net.eval()
    out = net(lq_val)
    net.train()
    return calculate_psnr(out, gt_val)


def model_ema(net_g, net_g_ema, decay=0.999):
    net_g_params = dict(net_g.named_parameters())
    net_g_ema_params = dict(net_g_ema.named_parameters())
    for k in net_g_ema_params.keys():
        net_g_ema_params[k].data.mul_(decay).add_(net_g_params[k].data, alpha=1 - decay)


def get_batch(batch_size=8):
    idx = torch.randint(0, gt_train.size(0), (batch_size,))
    gt, lq = gt_train[idx], lq_train[idx]
    # paired random flips, as basicsr's augment(hflip=True, rotation=True)
    if torch.rand(1).item() < 0.5:
        gt, lq = gt.flip(3), lq.flip(3)
    if torch.rand(1).item() < 0.5:
        gt, lq = gt.transpose(2, 3), lq.transpose(2, 3)
    return lq, gt


# ----------------------------------------------------------------------------- stage 1: RRDBNet_PSNR (L1)
psnr_init = validation(net_g)
print(f"# Validation before training: psnr: {psnr_init:.4f}")
cri_pix = nn.L1Loss()
optimizer_g = torch.optim.Adam(net_g.parameters(), lr=2e-3, betas=(0.9, 0.99))
scheduler_g = torch.optim.lr_scheduler.MultiStepLR(optimizer_g, milestones=[100, 150], gamma=0.5)
for current_iter in range(1, 181):
    lq, gt = get_batch()
    optimizer_g.zero_grad()
    output = net_g(lq)
    l_pix = cri_pix(output, gt)
    l_pix.backward()
    optimizer_g.step()
    scheduler_g.step()
    if current_iter % 60 == 0:
        print(f"[psnr iter:{current_iter:4d}, lr:({scheduler_g.get_last_lr()[0]:.3e},)] l_pix: {l_pix.item():.4e}")
psnr_pre = validation(net_g)
print(f"# Validation after L1 pretraining: psnr: {psnr_pre:.4f}")

# ----------------------------------------------------------------------------- stage 2: ESRGAN
net_g_ema = copy.deepcopy(net_g)
model_ema(net_g, net_g_ema, 0)  # copy net_g weight
net_g_ema.eval()

net_d = VGGStyleDiscriminator(num_in_ch=3, num_feat=8, input_size=32)
default_init_weights(net_d, 0.1)
cri_pix = nn.L1Loss()
pix_weight = 1.0
cri_perceptual = PerceptualLoss(perceptual_weight=1.0)
cri_gan = GANLoss('vanilla', real_label_val=1.0, fake_label_val=0.0, loss_weight=5e-3)
frozen = all(not p.requires_grad for p in cri_perceptual.parameters())

optimizer_g = torch.optim.Adam(net_g.parameters(), lr=1e-4, betas=(0.9, 0.99))
optimizer_d = torch.optim.Adam(net_d.parameters(), lr=1e-4, betas=(0.9, 0.99))
schedulers = [torch.optim.lr_scheduler.MultiStepLR(o, milestones=[40, 60], gamma=0.5)
              for o in (optimizer_g, optimizer_d)]
net_d_iters, net_d_init_iters = 1, 0
d_right = []
for current_iter in range(1, 81):
    lq, gt = get_batch()
    # optimize net_g
    for p in net_d.parameters():
        p.requires_grad = False

    optimizer_g.zero_grad()
    output = net_g(lq)

    l_g_total = 0
    if (current_iter % net_d_iters == 0 and current_iter > net_d_init_iters):
        l_g_pix = cri_pix(output, gt) * pix_weight
        l_g_total += l_g_pix
        l_g_percep = cri_perceptual(output, gt)
        l_g_total += l_g_percep
        # gan loss (relativistic gan)
        real_d_pred = net_d(gt).detach()
        fake_g_pred = net_d(output)
        l_g_real = cri_gan(real_d_pred - torch.mean(fake_g_pred), False, is_disc=False)
        l_g_fake = cri_gan(fake_g_pred - torch.mean(real_d_pred), True, is_disc=False)
        l_g_gan = (l_g_real + l_g_fake) / 2
        l_g_total += l_g_gan

        l_g_total.backward()
        optimizer_g.step()

    # optimize net_d
    for p in net_d.parameters():
        p.requires_grad = True

    optimizer_d.zero_grad()
    # In order to avoid the error in distributed training:
    # "Error detected in CudnnBatchNormBackward: RuntimeError: one of
    # the variables needed for gradient computation has been modified by
    # an inplace operation",
    # we separate the backwards for real and fake, and also detach the
    # tensor for calculating mean.

    # real
    fake_d_pred = net_d(output).detach()
    real_d_pred = net_d(gt)
    l_d_real = cri_gan(real_d_pred - torch.mean(fake_d_pred), True, is_disc=True) * 0.5
    l_d_real.backward()
    # fake
    fake_d_pred = net_d(output.detach())
    l_d_fake = cri_gan(fake_d_pred - torch.mean(real_d_pred.detach()), False, is_disc=True) * 0.5
    l_d_fake.backward()
    optimizer_d.step()
    for s in schedulers:
        s.step()

    model_ema(net_g, net_g_ema, decay=0.9)
    d_right.append(((real_d_pred.detach() - fake_d_pred.mean()) > 0).float().mean().item())
    if current_iter % 20 == 0:
        print(f"[gan iter:{current_iter:4d}] l_g_pix: {l_g_pix.item():.4e} l_g_percep: {l_g_percep.item():.4e} "
              f"l_g_gan: {l_g_gan.item():.4e} l_d_real: {l_d_real.item():.4e} l_d_fake: {l_d_fake.item():.4e} "
              f"out_d_real: {torch.mean(real_d_pred.detach()).item():.4f} out_d_fake: {torch.mean(fake_d_pred).item():.4f}")

psnr_gan = validation(net_g)
psnr_ema = validation(net_g_ema)
ema_gap = max((a - b).abs().max().item()
              for a, b in zip(net_g.parameters(), net_g_ema.parameters()))
with torch.no_grad():
    bicubic = F.interpolate(lq_val, scale_factor=scale, mode='bicubic', align_corners=False)
psnr_bicubic = calculate_psnr(bicubic, gt_val)
print(f"# Validation ESRGAN: psnr: {psnr_gan:.4f} ema psnr: {psnr_ema:.4f} bicubic psnr: {psnr_bicubic:.4f}")
print(f"perceptual extractor frozen: {frozen}")
print(f"FINAL psnr_init={psnr_init:.4f} psnr_pre={psnr_pre:.4f} psnr_gan={psnr_gan:.4f} psnr_ema={psnr_ema:.4f} "
      f"bicubic={psnr_bicubic:.4f} gain={psnr_pre - psnr_bicubic:.4f} d_acc={np.mean(d_right[-20:]):.4f} "
      f"ema_gap={ema_gap:.5f}")
