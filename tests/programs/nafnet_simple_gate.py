"""NAFNet (Chen et al., ECCV 2022) in the megvii-research/NAFNet layout (basicsr/models/archs), denoising
synthetic images.

The images are smooth colour fields (a few random Gaussian blobs and a ramp) with additive Gaussian noise
of sigma 0.1; the network learns the clean image. The architecture keeps the reference's pieces at toy
width: ``LayerNorm2d`` through the hand-written ``LayerNormFunction(torch.autograd.Function)``
(``ctx.save_for_backward(y, var, weight)``, ``ctx.saved_variables``, the weight and bias gradients by
``grad_output.sum(dim=3).sum(dim=2).sum(dim=0)``), ``SimpleGate`` (``x1, x2 = x.chunk(2, dim=1)``), the
simplified channel attention ``nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(..., 1))``, a depthwise
3x3 ``Conv2d(groups=dw_channel)``, the zero-initialised residual scales ``beta``/``gamma`` as
``nn.Parameter(torch.zeros((1, c, 1, 1)), requires_grad=True)``, the U-shaped ``NAFNet`` with strided
``Conv2d(chan, 2 * chan, 2, 2)`` downs, ``nn.Sequential(nn.Conv2d(chan, chan * 2, 1, bias=False),
nn.PixelShuffle(2))`` ups, ``check_image_size`` by ``F.pad`` to a multiple of ``padder_size`` (the images
are 18x18, padded to 20) and the crop ``x[:, :, :H, :W]``. The loss is basicsr's ``PSNRLoss``
(``self.scale = 10 / np.log(10)``, ``torch.log(((pred - target) ** 2).mean(dim=(1, 2, 3)) + 1e-8).mean()``),
the optimiser AdamW with ``betas=(0.9, 0.9)`` under ``CosineAnnealingLR``, and the metric basicsr's NumPy
``calculate_psnr`` on ``tensor2img``-style uint8 images.

Checked: ``gradcheck`` of ``LayerNormFunction`` in float64, that its outputs and gradients equal an
autograd ``LayerNorm2d`` (``F.layer_norm`` over ``permute(0, 2, 3, 1)``) on the same inputs, that the
untrained ``NAFBlock`` (zero ``beta``/``gamma``) is the identity, and
that the validation PSNR rises above the noisy input's.
"""

# ruff: noqa: UP008  (the reference's own spelling: super(Class, self))

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

SIZE = 18
SIGMA = 0.1


def make_images(n):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1.0)
    clean = np.zeros((n, 3, SIZE, SIZE), dtype=np.float32)
    for i in range(n):
        img = 0.3 + 0.2 * rng.uniform(-1, 1, size=(3, 1, 1)) * (xx + yy - 1.0)
        for _ in range(rng.randint(2, 5)):
            cy, cx = rng.uniform(0, 1, size=2)
            width = rng.uniform(0.1, 0.3)
            colour = rng.uniform(-0.4, 0.6, size=(3, 1, 1))
            img = img + colour * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width**2))
        clean[i] = np.clip(img, 0.0, 1.0)
    noisy = clean + SIGMA * rng.randn(*clean.shape).astype(np.float32)
    return torch.from_numpy(noisy), torch.from_numpy(clean)


# ----------------------------------------------------------------------------------- arch_util.py
class LayerNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        ctx.eps = eps
        N, C, H, W = x.size()
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / (var + eps).sqrt()
        ctx.save_for_backward(y, var, weight)
        y = weight.view(1, C, 1, 1) * y + bias.view(1, C, 1, 1)
        return y

    @staticmethod
    def backward(ctx, grad_output):
        eps = ctx.eps

        N, C, H, W = grad_output.size()
        y, var, weight = ctx.saved_variables
        g = grad_output * weight.view(1, C, 1, 1)
        mean_g = g.mean(dim=1, keepdim=True)

        mean_gy = (g * y).mean(dim=1, keepdim=True)
        gx = 1.0 / torch.sqrt(var + eps) * (g - y * mean_gy - mean_g)
        return gx, (grad_output * y).sum(dim=3).sum(dim=2).sum(dim=0), grad_output.sum(dim=3).sum(dim=2).sum(dim=0), None


class LayerNorm2d(nn.Module):
    def __init__(self, channels, eps=1e-6):
        super(LayerNorm2d, self).__init__()
        self.register_parameter("weight", nn.Parameter(torch.ones(channels)))
        self.register_parameter("bias", nn.Parameter(torch.zeros(channels)))
        self.eps = eps

    def forward(self, x):
        return LayerNormFunction.apply(x, self.weight, self.bias, self.eps)


# ----------------------------------------------------------------------------------- NAFNet_arch.py
class SimpleGate(nn.Module):
    def forward(self, x):
        x1, x2 = x.chunk(2, dim=1)
        return x1 * x2


class NAFBlock(nn.Module):
    def __init__(self, c, DW_Expand=2, FFN_Expand=2, drop_out_rate=0.0):
        super().__init__()
        dw_channel = c * DW_Expand
        self.conv1 = nn.Conv2d(in_channels=c, out_channels=dw_channel, kernel_size=1, padding=0, stride=1, groups=1, bias=True)
        self.conv2 = nn.Conv2d(in_channels=dw_channel, out_channels=dw_channel, kernel_size=3, padding=1, stride=1, groups=dw_channel,
                               bias=True)
        self.conv3 = nn.Conv2d(in_channels=dw_channel // 2, out_channels=c, kernel_size=1, padding=0, stride=1, groups=1, bias=True)

        # Simplified Channel Attention
        self.sca = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels=dw_channel // 2, out_channels=dw_channel // 2, kernel_size=1, padding=0, stride=1,
                      groups=1, bias=True),
        )

        # SimpleGate
        self.sg = SimpleGate()

        ffn_channel = FFN_Expand * c
        self.conv4 = nn.Conv2d(in_channels=c, out_channels=ffn_channel, kernel_size=1, padding=0, stride=1, groups=1, bias=True)
        self.conv5 = nn.Conv2d(in_channels=ffn_channel // 2, out_channels=c, kernel_size=1, padding=0, stride=1, groups=1, bias=True)

        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)

        self.dropout1 = nn.Dropout(drop_out_rate) if drop_out_rate > 0.0 else nn.Identity()
        self.dropout2 = nn.Dropout(drop_out_rate) if drop_out_rate > 0.0 else nn.Identity()

        self.beta = nn.Parameter(torch.zeros((1, c, 1, 1)), requires_grad=True)
        self.gamma = nn.Parameter(torch.zeros((1, c, 1, 1)), requires_grad=True)

    def forward(self, inp):
        x = inp

        x = self.norm1(x)

        x = self.conv1(x)
        x = self.conv2(x)
        x = self.sg(x)
        x = x * self.sca(x)
        x = self.conv3(x)

        x = self.dropout1(x)

        y = inp + x * self.beta

        x = self.conv4(self.norm2(y))
        x = self.sg(x)
        x = self.conv5(x)

        x = self.dropout2(x)

        return y + x * self.gamma


class NAFNet(nn.Module):
    def __init__(self, img_channel=3, width=16, middle_blk_num=1, enc_blk_nums=[], dec_blk_nums=[]):  # noqa: B006
        super().__init__()

        self.intro = nn.Conv2d(in_channels=img_channel, out_channels=width, kernel_size=3, padding=1, stride=1, groups=1,
                               bias=True)
        self.ending = nn.Conv2d(in_channels=width, out_channels=img_channel, kernel_size=3, padding=1, stride=1, groups=1,
                                bias=True)

        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        self.middle_blks = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.downs = nn.ModuleList()

        chan = width
        for num in enc_blk_nums:
            self.encoders.append(nn.Sequential(*[NAFBlock(chan) for _ in range(num)]))
            self.downs.append(nn.Conv2d(chan, 2 * chan, 2, 2))
            chan = chan * 2

        self.middle_blks = nn.Sequential(*[NAFBlock(chan) for _ in range(middle_blk_num)])

        for num in dec_blk_nums:
            self.ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, 1, bias=False), nn.PixelShuffle(2)))
            chan = chan // 2
            self.decoders.append(nn.Sequential(*[NAFBlock(chan) for _ in range(num)]))

        self.padder_size = 2 ** len(self.encoders)

    def forward(self, inp):
        B, C, H, W = inp.shape
        inp = self.check_image_size(inp)

        x = self.intro(inp)

        encs = []

        for encoder, down in zip(self.encoders, self.downs):
            x = encoder(x)
            encs.append(x)
            x = down(x)

        x = self.middle_blks(x)

        for decoder, up, enc_skip in zip(self.decoders, self.ups, encs[::-1]):
            x = up(x)
            x = x + enc_skip
            x = decoder(x)

        x = self.ending(x)
        x = x + inp

        return x[:, :, :H, :W]

    def check_image_size(self, x):
        _, _, h, w = x.size()
        mod_pad_h = (self.padder_size - h % self.padder_size) % self.padder_size
        mod_pad_w = (self.padder_size - w % self.padder_size) % self.padder_size
        x = F.pad(x, (0, mod_pad_w, 0, mod_pad_h))
        return x


# ----------------------------------------------------------------------------------- losses.py
class PSNRLoss(nn.Module):
    def __init__(self, loss_weight=1.0, reduction="mean", toY=False):
        super(PSNRLoss, self).__init__()
        assert reduction == "mean"
        self.loss_weight = loss_weight
        self.scale = 10 / np.log(10)
        self.toY = toY
        self.coef = torch.tensor([65.481, 128.553, 24.966]).reshape(1, 3, 1, 1)
        self.first = True

    def forward(self, pred, target):
        assert len(pred.size()) == 4
        if self.toY:
            if self.first:
                self.coef = self.coef.to(pred.device)
                self.first = False

            pred = (pred * self.coef).sum(dim=1).unsqueeze(dim=1) + 16.0
            target = (target * self.coef).sum(dim=1).unsqueeze(dim=1) + 16.0

            pred, target = pred / 255.0, target / 255.0

        assert len(pred.size()) == 4

        return self.loss_weight * self.scale * torch.log(((pred - target) ** 2).mean(dim=(1, 2, 3)) + 1e-8).mean()


# ----------------------------------------------------------------------------------- metrics/psnr_ssim.py
def tensor2img(tensor, min_max=(0, 1)):
    tensor = tensor.squeeze(0).float().detach().cpu().clamp_(*min_max)
    tensor = (tensor - min_max[0]) / (min_max[1] - min_max[0])
    img_np = tensor.numpy()
    img_np = np.transpose(img_np[[2, 1, 0], :, :], (1, 2, 0))
    return (img_np * 255.0).round().astype(np.uint8)


def calculate_psnr(img1, img2, crop_border=0):
    assert img1.shape == img2.shape, f"Image shapes are differnet: {img1.shape}, {img2.shape}."
    img1 = img1.astype(np.float64)
    img2 = img2.astype(np.float64)
    if crop_border != 0:
        img1 = img1[crop_border:-crop_border, crop_border:-crop_border, ...]
        img2 = img2[crop_border:-crop_border, crop_border:-crop_border, ...]
    mse = np.mean((img1 - img2) ** 2)
    if mse == 0:
        return float("inf")
    max_value = 1.0 if img1.max() <= 1 else 255.0
    return 20.0 * np.log10(max_value / np.sqrt(mse))


# ----------------------------------------------------------------------------------- the custom Function
x64 = torch.randn(2, 4, 3, 5, dtype=torch.float64, requires_grad=True)
w64 = (1 + 0.3 * torch.randn(4, dtype=torch.float64)).requires_grad_()
b64 = (0.2 * torch.randn(4, dtype=torch.float64)).requires_grad_()
gradcheck_ok = torch.autograd.gradcheck(LayerNormFunction.apply, (x64, w64, b64, 1e-6), eps=1e-6, atol=1e-5)
print(f"gradcheck LayerNormFunction (float64): {gradcheck_ok}")

norm = LayerNorm2d(6)
with torch.no_grad():
    norm.weight.copy_(1 + 0.5 * torch.randn(6))
    norm.bias.copy_(0.5 * torch.randn(6))
x = (torch.randn(3, 6, 5, 7) * 2 + 1).requires_grad_()
upstream = torch.randn(3, 6, 5, 7)
out_fn = norm(x)
gx_fn, gw_fn, gb_fn = torch.autograd.grad(out_fn, (x, norm.weight, norm.bias), upstream)
out_ref = F.layer_norm(x.permute(0, 2, 3, 1), (6,), norm.weight, norm.bias, norm.eps).permute(0, 3, 1, 2)
gx_ref, gw_ref, gb_ref = torch.autograd.grad(out_ref, (x, norm.weight, norm.bias), upstream)
max_diff = max((a - b).abs().max().item() for a, b in ((out_fn, out_ref), (gx_fn, gx_ref), (gw_fn, gw_ref), (gb_fn, gb_ref)))
layernorm_ok = max_diff < 1e-4
print(f"LayerNormFunction vs F.layer_norm (output, dx, dweight, dbias) agree: {layernorm_ok}")

# ----------------------------------------------------------------------------------- training
train_noisy, train_clean = make_images(48)
val_noisy, val_clean = make_images(8)

model = NAFNet(img_channel=3, width=8, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1])
n_params = sum(p.numel() for p in model.parameters())
print(f"NAFNet parameters: {n_params}, padder_size {model.padder_size}")
with torch.no_grad():
    probe = torch.randn(2, 8, 6, 6)
    # zero-initialised beta/gamma: every NAFBlock starts as the identity
    identity_ok = all(torch.equal(block(probe), probe) for block in model.encoders[0])
    untouched = model(val_noisy)
print(f"output shape {tuple(untouched.shape)}, zero-init NAFBlock is the identity: {identity_ok}")

criterion = PSNRLoss()
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0, betas=(0.9, 0.9))
total_iter = 60
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_iter, eta_min=1e-5)
batch_size = 8


def validate():
    model.eval()
    psnrs = []
    with torch.no_grad():
        for i in range(val_noisy.size(0)):
            output = model(val_noisy[i : i + 1])
            psnrs.append(calculate_psnr(tensor2img(output), tensor2img(val_clean[i : i + 1])))
    model.train()
    return float(np.mean(psnrs))


noisy_psnr = float(np.mean([calculate_psnr(tensor2img(val_noisy[i : i + 1]), tensor2img(val_clean[i : i + 1])) for i in range(8)]))
start_psnr = validate()
print(f"noisy input PSNR {noisy_psnr:.2f} dB, untrained NAFNet PSNR {start_psnr:.2f} dB")

current_iter = 0
losses = []
while current_iter < total_iter:
    perm = torch.randperm(train_noisy.size(0))
    for i in range(0, train_noisy.size(0), batch_size):
        idx = perm[i : i + batch_size]
        lq, gt = train_noisy[idx], train_clean[idx]
        optimizer.zero_grad()
        output = model(lq)
        l_pix = criterion(output, gt)
        l_pix.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.01 * 100)
        optimizer.step()
        scheduler.step()
        losses.append(l_pix.item())
        current_iter += 1
        if current_iter % 20 == 0:
            print(f"[iter:{current_iter:3d}, lr:{optimizer.param_groups[0]['lr']:.3e}] l_pix: {np.mean(losses[-20:]):.4f}")
        if current_iter >= total_iter:
            break

val_psnr = validate()
beta_norm = sum(m.beta.abs().mean().item() for m in model.modules() if isinstance(m, NAFBlock))
print(f"validation PSNR {val_psnr:.2f} dB (noisy {noisy_psnr:.2f} dB), residual scales moved: {beta_norm > 0}")
gain = val_psnr - noisy_psnr
print(f"FINAL val_psnr={val_psnr:.4f} psnr_gain={gain:.4f} last_loss={np.mean(losses[-10:]):.4f} "
      f"checks_ok={int(bool(gradcheck_ok) and layernorm_ok and identity_ok and math.isfinite(val_psnr))}")
