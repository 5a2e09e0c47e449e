"""Partial convolutions for image inpainting (Liu et al. 2018, "Image Inpainting for Irregular Holes
Using Partial Convolutions"; NVIDIA/partialconv ``models/partialconv2d.py`` and the PConv U-Net and
loss of naoto0804/pytorch-inpainting-with-partial-conv) on synthetic smooth images with rectangular holes.

``PartialConv2d(nn.Conv2d)`` exactly as NVIDIA wrote it: ``multi_channel``/``return_mask`` popped from
``kwargs`` before ``super().__init__(*args, **kwargs)``, a ``weight_maskUpdater`` of ones,
``slide_winsize`` from its shape, ``self.last_size`` caching the mask computation per input size;
the forward under ``torch.no_grad()`` moves the updater by ``.type()`` / ``.to(input)``, computes
``update_mask = F.conv2d(mask, self.weight_maskUpdater, bias=None, stride=..., padding=...,
dilation=..., groups=1)``, ``mask_ratio = self.slide_winsize / (update_mask + 1e-8)``,
``torch.clamp(update_mask, 0, 1)``, ``torch.mul(mask_ratio, update_mask)``, then
``super().forward(torch.mul(input, mask))`` renormalised around ``bias_view = self.bias.view(1,
self.out_channels, 1, 1)``. A small U-Net of them (``PCBActiv`` with BatchNorm2d + ReLU / LeakyReLU(0.2),
stride-2 encoder, decoder by ``F.interpolate(scale_factor=2, mode="nearest")`` on both the image and the
mask then ``torch.cat`` with the skip's image and mask), a ``train(mode)`` override that keeps the
encoder's BatchNorm in eval (``freeze_enc_bn``) for the fine-tuning phase. The loss: valid and hole L1
(weights 1 and 6) and total variation of the composited output on the one-pixel dilation of the hole
(``F.conv2d`` with a ones kernel, ``> 0``). Adam, then fine-tuning at a lower lr with frozen encoder BN.
Reports the hole L1 of the composited output before and after training, and against a mean-fill baseline.

Checks: with an all-ones mask (no padding, and the interior with padding) ``PartialConv2d`` equals an
``nn.Conv2d`` with the same weights (values and gradients); the single-channel ``update_mask`` equals
``F.max_pool2d`` of the mask; the cached ``mask_ratio`` is reused when no mask is passed.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

IMG = 16


class PartialConv2d(nn.Conv2d):
    def __init__(self, *args, **kwargs):
        # whether the mask is multi-channel or not
        if 'multi_channel' in kwargs:
            self.multi_channel = kwargs['multi_channel']
            kwargs.pop('multi_channel')
        else:
            self.multi_channel = False

        if 'return_mask' in kwargs:
            self.return_mask = kwargs['return_mask']
            kwargs.pop('return_mask')
        else:
            self.return_mask = False

        super(PartialConv2d, self).__init__(*args, **kwargs)

        if self.multi_channel:
            self.weight_maskUpdater = torch.ones(self.out_channels, self.in_channels, self.kernel_size[0],
                                                 self.kernel_size[1])
        else:
            self.weight_maskUpdater = torch.ones(1, 1, self.kernel_size[0], self.kernel_size[1])

        self.slide_winsize = self.weight_maskUpdater.shape[1] * self.weight_maskUpdater.shape[2] * \
            self.weight_maskUpdater.shape[3]

        self.last_size = (None, None, None, None)
        self.update_mask = None
        self.mask_ratio = None

    def forward(self, input, mask_in=None):
        assert len(input.shape) == 4
        if mask_in is not None or self.last_size != tuple(input.shape):
            self.last_size = tuple(input.shape)

            with torch.no_grad():
                if self.weight_maskUpdater.type() != input.type():
                    self.weight_maskUpdater = self.weight_maskUpdater.to(input)

                if mask_in is None:
                    # if mask is not provided, create a mask
                    if self.multi_channel:
                        mask = torch.ones(input.data.shape[0], input.data.shape[1], input.data.shape[2],
                                          input.data.shape[3]).to(input)
                    else:
                        mask = torch.ones(1, 1, input.data.shape[2], input.data.shape[3]).to(input)
                else:
                    mask = mask_in

                self.update_mask = F.conv2d(mask, self.weight_maskUpdater, bias=None, stride=self.stride,
                                            padding=self.padding, dilation=self.dilation, groups=1)

                # for mixed precision training, change 1e-8 to 1e-6
                self.mask_ratio = self.slide_winsize / (self.update_mask + 1e-8)
                self.update_mask = torch.clamp(self.update_mask, 0, 1)
                self.mask_ratio = torch.mul(self.mask_ratio, self.update_mask)

        raw_out = super(PartialConv2d, self).forward(torch.mul(input, mask_in) if mask_in is not None else input)

        if self.bias is not None:
            bias_view = self.bias.view(1, self.out_channels, 1, 1)
            output = torch.mul(raw_out - bias_view, self.mask_ratio) + bias_view
            output = torch.mul(output, self.update_mask)
        else:
            output = torch.mul(raw_out, self.mask_ratio)

        if self.return_mask:
            return output, self.update_mask
        else:
            return output


class PCBActiv(nn.Module):
    def __init__(self, in_ch, out_ch, bn=True, sample='none-3', activ='relu', conv_bias=False):
        super().__init__()
        if sample == 'down-5':
            self.conv = PartialConv2d(in_ch, out_ch, 5, 2, 2, bias=conv_bias, multi_channel=True, return_mask=True)
        elif sample == 'down-3':
            self.conv = PartialConv2d(in_ch, out_ch, 3, 2, 1, bias=conv_bias, multi_channel=True, return_mask=True)
        else:
            self.conv = PartialConv2d(in_ch, out_ch, 3, 1, 1, bias=conv_bias, multi_channel=True, return_mask=True)
        if bn:
            self.bn = nn.BatchNorm2d(out_ch)
        if activ == 'relu':
            self.activation = nn.ReLU()
        elif activ == 'leaky':
            self.activation = nn.LeakyReLU(negative_slope=0.2)

    def forward(self, input, input_mask):
        h, h_mask = self.conv(input, input_mask)
        if hasattr(self, 'bn'):
            h = self.bn(h)
        if hasattr(self, 'activation'):
            h = self.activation(h)
        return h, h_mask


class PConvUNet(nn.Module):
    def __init__(self, layer_size=3, input_channels=3, upsampling_mode='nearest'):
        super().__init__()
        self.freeze_enc_bn = False
        self.upsampling_mode = upsampling_mode
        self.layer_size = layer_size
        self.enc_1 = PCBActiv(input_channels, 16, bn=False, sample='down-5')
        self.enc_2 = PCBActiv(16, 32, sample='down-3')
        self.enc_3 = PCBActiv(32, 32, sample='down-3')
        self.dec_3 = PCBActiv(32 + 32, 32, activ='leaky')
        self.dec_2 = PCBActiv(32 + 16, 16, activ='leaky')
        self.dec_1 = PCBActiv(16 + input_channels, input_channels, bn=False, activ=None, conv_bias=True)

    def forward(self, input, input_mask):
        h_dict = {}  # for the output of enc_N
        h_mask_dict = {}  # for the output of enc_N
        h_dict['h_0'], h_mask_dict['h_0'] = input, input_mask

        h_key_prev = 'h_0'
        for i in range(1, self.layer_size + 1):
            l_key = 'enc_{:d}'.format(i)
            h_key = 'h_{:d}'.format(i)
            h_dict[h_key], h_mask_dict[h_key] = getattr(self, l_key)(h_dict[h_key_prev], h_mask_dict[h_key_prev])
            h_key_prev = h_key

        h_key = 'h_{:d}'.format(self.layer_size)
        h, h_mask = h_dict[h_key], h_mask_dict[h_key]

        for i in range(self.layer_size, 0, -1):
            enc_h_key = 'h_{:d}'.format(i - 1)
            dec_l_key = 'dec_{:d}'.format(i)

            h = F.interpolate(h, scale_factor=2, mode=self.upsampling_mode)
            h_mask = F.interpolate(h_mask, scale_factor=2, mode='nearest')

            h = torch.cat([h, h_dict[enc_h_key]], dim=1)
            h_mask = torch.cat([h_mask, h_mask_dict[enc_h_key]], dim=1)
            h, h_mask = getattr(self, dec_l_key)(h, h_mask)

        return h, h_mask

    def train(self, mode=True):
        """Override the default train() to freeze the BN parameters"""
        super().train(mode)
        if self.freeze_enc_bn:
            for name, module in self.named_modules():
                if isinstance(module, nn.BatchNorm2d) and 'enc' in name:
                    module.eval()
        return self


def total_variation_loss(image, hole):
    # the one-pixel dilation of the hole region, as in the paper's P set
    dilated = (F.conv2d(hole[:, :1], torch.ones(1, 1, 3, 3), padding=1) > 0).float()
    cols = dilated[:, :, :, 1:] * dilated[:, :, :, :-1]
    rows = dilated[:, :, 1:, :] * dilated[:, :, :-1, :]
    loss = torch.mean(torch.abs(cols * (image[:, :, :, 1:] - image[:, :, :, :-1]))) + \
        torch.mean(torch.abs(rows * (image[:, :, 1:, :] - image[:, :, :-1, :])))
    return loss


class InpaintingLoss(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.L1Loss()

    def forward(self, input, mask, output, gt):
        loss_dict = {}
        output_comp = mask * input + (1 - mask) * output
        loss_dict['hole'] = self.l1((1 - mask) * output, (1 - mask) * gt)
        loss_dict['valid'] = self.l1(mask * output, mask * gt)
        loss_dict['tv'] = total_variation_loss(output_comp, 1 - mask)
        return loss_dict


LAMBDA_DICT = {'valid': 1.0, 'hole': 6.0, 'tv': 0.1}


def make_images(n):
    """Smooth colour fields: a random linear ramp plus two low-frequency sinusoids per channel."""
    yy, xx = np.meshgrid(np.linspace(-1, 1, IMG), np.linspace(-1, 1, IMG), indexing='ij')
    imgs = np.zeros((n, 3, IMG, IMG), dtype=np.float32)
    for i in range(n):
        for c in range(3):
            a, b = rng.uniform(-0.5, 0.5, size=2)
            f1, f2 = rng.uniform(0.5, 2.0, size=2)
            p1, p2 = rng.uniform(0, 2 * np.pi, size=2)
            imgs[i, c] = a * xx + b * yy + 0.3 * np.sin(f1 * np.pi * xx + p1) + 0.3 * np.cos(f2 * np.pi * yy + p2)
    return torch.from_numpy(imgs)


def make_masks(n):
    """1 = valid, 0 = hole: one or two random rectangles per image."""
    masks = np.ones((n, 3, IMG, IMG), dtype=np.float32)
    for i in range(n):
        for _ in range(rng.randint(1, 3)):
            h, w = rng.randint(3, 7, size=2)
            y, x = rng.randint(0, IMG - h), rng.randint(0, IMG - w)
            masks[i, :, y:y + h, x:x + w] = 0
    return torch.from_numpy(masks)


# --- checks: an all-ones mask makes PartialConv2d a Conv2d; update_mask is a max-pool; caching
pconv = PartialConv2d(4, 6, 3, stride=1, padding=0, bias=True, multi_channel=True)
conv = nn.Conv2d(4, 6, 3, stride=1, padding=0, bias=True)
conv.load_state_dict(pconv.state_dict())
x = torch.randn(2, 4, 9, 9)
x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
out_p = pconv(x1, torch.ones_like(x1))
out_c = conv(x2)
out_p.pow(2).sum().backward()
out_c.pow(2).sum().backward()
ones_err = max((out_p - out_c).abs().max().item(), (x1.grad - x2.grad).abs().max().item(),
               (pconv.weight.grad - conv.weight.grad).abs().max().item(),
               (pconv.bias.grad - conv.bias.grad).abs().max().item())
pconv_pad = PartialConv2d(4, 6, 3, stride=1, padding=1, bias=True)
conv_pad = nn.Conv2d(4, 6, 3, stride=1, padding=1, bias=True)
conv_pad.load_state_dict(pconv_pad.state_dict())
interior = (pconv_pad(x, torch.ones(1, 1, 9, 9)) - conv_pad(x))[:, :, 1:-1, 1:-1]
ones_err = max(ones_err, interior.abs().max().item())
single = PartialConv2d(1, 2, 3, stride=2, padding=1, return_mask=True)
m = make_masks(2)[:, :1]
_, upd = single(torch.randn(2, 1, IMG, IMG), m)
pool_err = (upd - F.max_pool2d(m, 3, stride=2, padding=1)).abs().max().item()
with torch.no_grad():
    ratio_first = pconv_pad(x).detach()
    cached = pconv_pad.mask_ratio
    ratio_again = pconv_pad(x)
cache_ok = pconv_pad.mask_ratio is cached and torch.equal(ratio_first, ratio_again)
print(f"all-ones vs Conv2d err {ones_err:.2e}, update_mask vs max_pool2d err {pool_err:.2e}, "
      f"cached ratio reused {cache_ok}, border ratio {pconv_pad.mask_ratio[0, 0, 0, 0].item():.4f}, "
      f"updater {pconv_pad.weight_maskUpdater.type()} winsize {pconv_pad.slide_winsize}")

model = PConvUNet()
criterion = InpaintingLoss()
train_gt, train_mask = make_images(512), make_masks(512)
val_gt, val_mask = make_images(64), make_masks(64)


@torch.no_grad()
def hole_l1(model):
    model.eval()
    output, _ = model(val_mask * val_gt, val_mask)
    output_comp = val_mask * val_gt + (1 - val_mask) * output
    model.train()
    hole = 1 - val_mask
    return ((output_comp - val_gt).abs() * hole).sum().item() / hole.sum().item()


def mean_fill_l1():
    valid_mean = (val_gt * val_mask).sum((2, 3), keepdim=True) / val_mask.sum((2, 3), keepdim=True)
    hole = 1 - val_mask
    return ((valid_mean - val_gt).abs() * hole).sum().item() / hole.sum().item()


before = hole_l1(model)
baseline = mean_fill_l1()
print(f"before: hole L1 {before:.4f} (mean-fill baseline {baseline:.4f}), holes "
      f"{(1 - val_mask[:, 0]).mean().item():.3f} of pixels")

optimizer = torch.optim.Adam(filter(lambda p: p.requires_grad, model.parameters()), lr=2e-3)
batch_size = 32
for epoch in range(6):
    if epoch == 5:  # fine-tuning as in the paper: freeze the encoder's BatchNorm, lower the lr
        model.freeze_enc_bn = True
        model.train()
        for group in optimizer.param_groups:
            group['lr'] = 5e-4
    perm = torch.randperm(len(train_gt))
    totals = {'valid': 0.0, 'hole': 0.0, 'tv': 0.0}
    for b in range(0, len(perm), batch_size):
        idx = perm[b:b + batch_size]
        gt, mask = train_gt[idx], train_mask[idx]
        image = mask * gt
        output, _ = model(image, mask)
        loss_dict = criterion(image, mask, output, gt)
        loss = 0.0
        for key, coef in LAMBDA_DICT.items():
            value = coef * loss_dict[key]
            loss += value
            totals[key] += value.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    frozen = sum(not m.training for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d))
    nb = len(perm) // batch_size
    print(f"epoch {epoch} valid {totals['valid'] / nb:.4f} hole {totals['hole'] / nb:.4f} "
          f"tv {totals['tv'] / nb:.4f} frozen bn {frozen} val hole L1 {hole_l1(model):.4f}")

after = hole_l1(model)
print(f"after: hole L1 {after:.4f} (mean-fill baseline {baseline:.4f})")
print(f"FINAL hole_l1_before={before:.4f} hole_l1_after={after:.4f} mean_fill_l1={baseline:.4f} "
      f"gain_over_mean_fill={baseline - after:.4f} ones_err={ones_err:.2e} pool_err={pool_err:.2e} "
      f"cache_ok={int(cache_ok)}")
