"""SPADE (Park et al. 2019): semantic image synthesis from label maps of synthetic shapes.

In the style of NVlabs/SPADE (`models/networks/normalization.py`, `architecture.py`, `generator.py`,
`loss.py`, `pix2pix_model.py`): the `SPADE` layer with a parameter-free norm
(`nn.InstanceNorm2d(norm_nc, affine=False)` or `nn.BatchNorm2d(norm_nc, affine=False)`), the segmap
resized by `F.interpolate(segmap, size=x.size()[2:], mode='nearest')`, a shared `Conv2d` + `ReLU` then
`mlp_gamma`/`mlp_beta` convs and `out = normalized * (1 + gamma) + beta`; `SPADEResnetBlock` with a
learned 1x1 shortcut (`bias=False`) when `fin != fout`, `F.leaky_relu(x, 2e-1)` and
`torch.nn.utils.spectral_norm` on its convs; the generator from a downsampled segmap
(`F.interpolate(seg, size=(self.sh, self.sw))`) through `nn.Upsample(scale_factor=2)` stages to
`torch.tanh(self.conv_img(F.leaky_relu(x, 2e-1)))`; `preprocess_input`'s one-hot by
`input_label.scatter_(1, label_map, 1.0)` on a zero-filled float allocation (`new_zeros`); a
spectral-normed PatchGAN discriminator on `torch.cat([input_semantics, image], dim=1)`, the hinge
loss (`torch.min(input - 1, self.get_zero_tensor(input))`, `-torch.mean(input)` for the generator),
an L1 reconstruction term, TTUR Adams (`betas=(0.0, 0.9)`, G at lr / 2, D at lr * 2).
Reports the reconstruction error before and after, and the discriminator's hinge margin.
Checks: the scatter_ one-hot equals `F.one_hot(...).permute(0, 3, 1, 2)`, and SPADE with zeroed
gamma/beta convs equals the plain parameter-free norm (instance and batch variants).
"""
# ruff: noqa: UP031  (the repository's spelling: "%s is not a recognized ..." % param_free_norm_type)

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.spectral_norm as spectral_norm

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

label_nc = 4
size = 16
n_train = 48
batch_size = 8
steps = 90
ngf = 8
ndf = 8
lr = 2e-3

PALETTE = np.array([[-0.8, -0.8, -0.6], [0.9, -0.5, -0.5], [-0.4, 0.8, -0.2], [0.2, 0.3, 0.9]], np.float32)


# --- data: label maps of a disc, a square and a bar on background; images coloured by class with shading
def make_pairs(n):
    yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    labels = np.zeros((n, 1, size, size), np.int64)
    images = np.zeros((n, 3, size, size), np.float32)
    for i in range(n):
        lab = np.zeros((size, size), np.int64)
        cy, cx, r = rng.uniform(4, 12), rng.uniform(4, 12), rng.uniform(2.5, 4.5)
        lab[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
        y0, x0 = rng.randint(0, size - 6, 2)
        lab[y0:y0 + 5, x0:x0 + 5] = 2
        c = rng.randint(0, size - 2)
        if rng.rand() < 0.5:
            lab[c:c + 2] = 3
        else:
            lab[:, c:c + 2] = 3
        shade = 0.15 * (yy / size - 0.5)
        labels[i, 0] = lab
        images[i] = np.clip(PALETTE[lab].transpose(2, 0, 1) + shade[None], -1, 1)
    return torch.from_numpy(labels), torch.from_numpy(images)


class SPADE(nn.Module):
    def __init__(self, config_text, norm_nc, label_nc):
        super().__init__()
        param_free_norm_type = config_text
        ks = 3
        if param_free_norm_type == "instance":
            self.param_free_norm = nn.InstanceNorm2d(norm_nc, affine=False)
        elif param_free_norm_type == "batch":
            self.param_free_norm = nn.BatchNorm2d(norm_nc, affine=False)
        else:
            raise ValueError("%s is not a recognized param-free norm type in SPADE" % param_free_norm_type)
        nhidden = 16
        pw = ks // 2
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, nhidden, kernel_size=ks, padding=pw), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(nhidden, norm_nc, kernel_size=ks, padding=pw)
        self.mlp_beta = nn.Conv2d(nhidden, norm_nc, kernel_size=ks, padding=pw)

    def forward(self, x, segmap):
        normalized = self.param_free_norm(x)
        segmap = F.interpolate(segmap, size=x.size()[2:], mode="nearest")
        actv = self.mlp_shared(segmap)
        gamma = self.mlp_gamma(actv)
        beta = self.mlp_beta(actv)
        out = normalized * (1 + gamma) + beta
        return out


class SPADEResnetBlock(nn.Module):
    def __init__(self, fin, fout, norm_G="spectralspadeinstance3x3"):
        super().__init__()
        self.learned_shortcut = (fin != fout)
        fmiddle = min(fin, fout)
        self.conv_0 = nn.Conv2d(fin, fmiddle, kernel_size=3, padding=1)
        self.conv_1 = nn.Conv2d(fmiddle, fout, kernel_size=3, padding=1)
        if self.learned_shortcut:
            self.conv_s = nn.Conv2d(fin, fout, kernel_size=1, bias=False)
        if "spectral" in norm_G:
            self.conv_0 = spectral_norm(self.conv_0)
            self.conv_1 = spectral_norm(self.conv_1)
            if self.learned_shortcut:
                self.conv_s = spectral_norm(self.conv_s)
        spade_config_str = norm_G.replace("spectral", "").replace("spade", "").replace("3x3", "")
        self.norm_0 = SPADE(spade_config_str, fin, label_nc)
        self.norm_1 = SPADE(spade_config_str, fmiddle, label_nc)
        if self.learned_shortcut:
            self.norm_s = SPADE(spade_config_str, fin, label_nc)

    def forward(self, x, seg):
        x_s = self.shortcut(x, seg)
        dx = self.conv_0(self.actvn(self.norm_0(x, seg)))
        dx = self.conv_1(self.actvn(self.norm_1(dx, seg)))
        out = x_s + dx
        return out

    def shortcut(self, x, seg):
        if self.learned_shortcut:
            x_s = self.conv_s(self.norm_s(x, seg))
        else:
            x_s = x
        return x_s

    def actvn(self, x):
        return F.leaky_relu(x, 2e-1)


class SPADEGenerator(nn.Module):
    def __init__(self):
        super().__init__()
        nf = ngf
        self.sw = self.sh = size // 4
        self.fc = nn.Conv2d(label_nc, 4 * nf, 3, padding=1)
        self.head_0 = SPADEResnetBlock(4 * nf, 4 * nf)
        self.G_middle_0 = SPADEResnetBlock(4 * nf, 2 * nf)
        self.up_0 = SPADEResnetBlock(2 * nf, nf)
        self.conv_img = nn.Conv2d(nf, 3, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)

    def forward(self, input):
        seg = input
        x = F.interpolate(seg, size=(self.sh, self.sw))
        x = self.fc(x)
        x = self.head_0(x, seg)
        x = self.up(x)
        x = self.G_middle_0(x, seg)
        x = self.up(x)
        x = self.up_0(x, seg)
        x = self.conv_img(F.leaky_relu(x, 2e-1))
        x = torch.tanh(x)
        return x


class NLayerDiscriminator(nn.Module):
    def __init__(self):
        super().__init__()
        nf = ndf
        self.model = nn.Sequential(
            spectral_norm(nn.Conv2d(label_nc + 3, nf, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, False),
            spectral_norm(nn.Conv2d(nf, 2 * nf, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, False),
            nn.Conv2d(2 * nf, 1, 3, stride=1, padding=1))

    def forward(self, input):
        return self.model(input)


class GANLoss(nn.Module):
    def __init__(self):
        super().__init__()
        self.zero_tensor = None

    def get_zero_tensor(self, input):
        if self.zero_tensor is None:
            self.zero_tensor = torch.FloatTensor(1).fill_(0)
            self.zero_tensor.requires_grad_(False)
        return self.zero_tensor.expand_as(input)

    def forward(self, input, target_is_real, for_discriminator=True):
        if for_discriminator:
            if target_is_real:
                minval = torch.min(input - 1, self.get_zero_tensor(input))
            else:
                minval = torch.min(-input - 1, self.get_zero_tensor(input))
            return -torch.mean(minval)
        assert target_is_real, "The generator's hinge loss should be real"
        return -torch.mean(input)


def preprocess_input(label_map, like):
    bs, _, h, w = label_map.size()
    input_label = like.new_zeros(bs, label_nc, h, w)
    input_semantics = input_label.scatter_(1, label_map, 1.0)
    return input_semantics


labels, images = make_pairs(n_train)
test_labels, test_images = make_pairs(16)
print(f"label maps {tuple(labels.shape)} {labels.dtype}, images {tuple(images.shape)}, classes {label_nc}")

# --- check 1: the scatter_ one-hot equals F.one_hot permuted to channels-first
sem = preprocess_input(labels, images)
ref = F.one_hot(labels.squeeze(1), num_classes=label_nc).permute(0, 3, 1, 2).float()
onehot_err = (sem - ref).abs().max().item()
print(f"one-hot {tuple(sem.shape)} {sem.dtype} err {onehot_err:.1e} sums to one {bool((sem.sum(1) == 1).all())}")

# --- check 2: SPADE with zeroed gamma/beta convs is the plain parameter-free norm
spade_zero_err = 0.0
for kind in ("instance", "batch"):
    spade = SPADE(kind, 6, label_nc)
    with torch.no_grad():
        for conv in (spade.mlp_gamma, spade.mlp_beta):
            conv.weight.zero_()
            conv.bias.zero_()
    x = torch.randn(4, 6, 8, 8) * 2 + 1
    plain = nn.InstanceNorm2d(6, affine=False) if kind == "instance" else nn.BatchNorm2d(6, affine=False)
    spade_zero_err = max(spade_zero_err, (spade(x, sem[:4]) - plain(x)).abs().max().item())
print(f"SPADE with zeroed modulation vs plain norm err {spade_zero_err:.2e}")

netG = SPADEGenerator()
netD = NLayerDiscriminator()
criterionGAN = GANLoss()
criterionFeat = nn.L1Loss()
optimizer_G = torch.optim.Adam(netG.parameters(), lr=lr / 2, betas=(0.0, 0.9))
optimizer_D = torch.optim.Adam(netD.parameters(), lr=lr * 2, betas=(0.0, 0.9))
print(f"G params {sum(p.numel() for p in netG.parameters())} D params {sum(p.numel() for p in netD.parameters())}")
print(f"spectral norm on {type(netG.head_0.conv_0).__name__} with {sorted(n for n, _ in netG.head_0.conv_0.named_parameters())}")


@torch.no_grad()
def evaluate():
    netG.eval()
    fake = netG(preprocess_input(test_labels, test_images))
    netG.train()
    return F.l1_loss(fake, test_images).item()


def discriminate(input_semantics, fake_image, real_image):
    fake_concat = torch.cat([input_semantics, fake_image], dim=1)
    real_concat = torch.cat([input_semantics, real_image], dim=1)
    fake_and_real = torch.cat([fake_concat, real_concat], dim=0)
    discriminator_out = netD(fake_and_real)
    pred_fake, pred_real = discriminator_out[: fake_image.size(0)], discriminator_out[fake_image.size(0):]
    return pred_fake, pred_real


recon_before = evaluate()
lambda_l1 = 10.0
for step in range(steps):
    idx = torch.randint(0, n_train, (batch_size,))
    real_image = images[idx]
    input_semantics = preprocess_input(labels[idx], real_image)

    optimizer_G.zero_grad()
    fake_image = netG(input_semantics)
    pred_fake, _ = discriminate(input_semantics, fake_image, real_image)
    g_gan = criterionGAN(pred_fake, True, for_discriminator=False)
    g_l1 = criterionFeat(fake_image, real_image) * lambda_l1
    g_loss = g_gan * 0.1 + g_l1
    g_loss.backward()
    optimizer_G.step()

    optimizer_D.zero_grad()
    with torch.no_grad():
        fake_image = netG(input_semantics)
        fake_image = fake_image.detach()
        fake_image.requires_grad_()
    pred_fake, pred_real = discriminate(input_semantics, fake_image, real_image)
    d_fake = criterionGAN(pred_fake, False, for_discriminator=True)
    d_real = criterionGAN(pred_real, True, for_discriminator=True)
    d_loss = d_fake + d_real
    d_loss.backward()
    optimizer_D.step()
    if (step + 1) % 30 == 0:
        print(f"step {step + 1} G l1 {g_l1.item() / lambda_l1:.4f} G gan {g_gan.item():.4f} "
              f"D fake {d_fake.item():.4f} D real {d_real.item():.4f}")

recon_after = evaluate()
with torch.no_grad():
    sem_t = preprocess_input(test_labels, test_images)
    pred_fake, pred_real = discriminate(sem_t, netG(sem_t), test_images)
    d_margin = (pred_real.mean() - pred_fake.mean()).item()
    fake_t = netG(sem_t)
    # per-class mean colour of the synthesis against the palette
    colour_err = max((fake_t.permute(0, 2, 3, 1)[test_labels.squeeze(1) == c].mean(0)
                      - torch.from_numpy(PALETTE[c])).abs().max().item() for c in range(label_nc))
print(f"reconstruction L1 before {recon_before:.4f} after {recon_after:.4f}; D margin {d_margin:.4f}")
print(f"FINAL recon_before={recon_before:.4f} recon_after={recon_after:.4f} "
      f"recon_ratio={recon_after / recon_before:.4f} colour_err={colour_err:.4f} d_margin={d_margin:.4f} "
      f"onehot_err={onehot_err:.1e} spade_zero_err={spade_zero_err:.2e}")
