"""pix2pix in eriklindernoren/PyTorch-GAN idioms, on tiny synthetic paired images.

``GeneratorUNet`` from ``UNetDown`` (``nn.Conv2d(in, out, 4, 2, 1, bias=False)``,
``nn.InstanceNorm2d``, ``nn.LeakyReLU(0.2)``, ``nn.Dropout(0.5)``) and ``UNetUp``
(``nn.ConvTranspose2d(in, out, 4, 2, 1, bias=False)``, ``nn.ReLU(inplace=True)``, skips joined by
``torch.cat((x, skip_input), 1)``), its ``final`` of ``nn.Upsample(scale_factor=2)`` +
``nn.ZeroPad2d((1, 0, 1, 0))`` + ``nn.Conv2d(..., 4, padding=1)`` + ``nn.Tanh()``; the PatchGAN
``Discriminator`` on ``torch.cat((img_A, img_B), 1)``; ``weights_init_normal`` through
``model.apply`` with ``classname.find("Conv") != -1`` and ``torch.nn.init.normal_(m.weight.data,
0.0, 0.02)``; ``criterion_GAN = nn.MSELoss()`` with ``torch.ones_like(pred)`` /
``torch.zeros_like(pred)`` targets (and junyanz's vanilla ``nn.BCEWithLogitsLoss`` on the same
predictions), ``lambda_pixel * criterion_pixelwise(fake_B, real_B)`` with ``nn.L1Loss``,
``fake_B.detach()`` for the discriminator step, ``Adam(betas=(0.5, 0.999))`` and a
``lr_scheduler.LambdaLR`` linear decay. Domain A is a grey outline of a disc, domain B the disc
filled with a colour that depends on its position, so the generator has to use the whole image.
"""

import os

import numpy as np
import torch
import torch.nn as nn
from torch.optim import lr_scheduler

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

SIZE = 16


def paired_images(n):
    """img_A: the outline of a disc; img_B: the disc filled, red on the left, blue on the right."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    img_A = np.full((n, 3, SIZE, SIZE), -0.8, dtype=np.float32)
    img_B = np.full((n, 3, SIZE, SIZE), -0.8, dtype=np.float32)
    for i in range(n):
        left = rng.random() < 0.5
        cy = rng.uniform(5, SIZE - 5)
        cx = rng.uniform(4.5, 6.0) if left else rng.uniform(SIZE - 6.0, SIZE - 4.5)
        r = rng.uniform(3.0, 4.0)
        dist = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
        ring = np.abs(dist - r) < 0.7
        disc = dist < r
        img_A[i, :, ring] = 0.6
        img_B[i, 0 if left else 2, disc] = 0.8
        img_B[i, 1, disc] = 0.2
    return torch.from_numpy(img_A), torch.from_numpy(img_B)


def weights_init_normal(m):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        torch.nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find("BatchNorm2d") != -1:
        torch.nn.init.normal_(m.weight.data, 1.0, 0.02)
        torch.nn.init.constant_(m.bias.data, 0.0)


##############################
#           U-NET
##############################


class UNetDown(nn.Module):
    def __init__(self, in_size, out_size, normalize=True, dropout=0.0):
        super(UNetDown, self).__init__()  # noqa: UP008  (the repository's spelling)
        layers = [nn.Conv2d(in_size, out_size, 4, 2, 1, bias=False)]
        if normalize:
            layers.append(nn.InstanceNorm2d(out_size))
        layers.append(nn.LeakyReLU(0.2))
        if dropout:
            layers.append(nn.Dropout(dropout))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class UNetUp(nn.Module):
    def __init__(self, in_size, out_size, dropout=0.0):
        super(UNetUp, self).__init__()  # noqa: UP008
        layers = [
            nn.ConvTranspose2d(in_size, out_size, 4, 2, 1, bias=False),
            nn.InstanceNorm2d(out_size),
            nn.ReLU(inplace=True),
        ]
        if dropout:
            layers.append(nn.Dropout(dropout))

        self.model = nn.Sequential(*layers)

    def forward(self, x, skip_input):
        x = self.model(x)
        x = torch.cat((x, skip_input), 1)

        return x


class GeneratorUNet(nn.Module):
    def __init__(self, in_channels=3, out_channels=3, ngf=8):
        super(GeneratorUNet, self).__init__()  # noqa: UP008

        self.down1 = UNetDown(in_channels, ngf, normalize=False)
        self.down2 = UNetDown(ngf, ngf * 2)
        self.down3 = UNetDown(ngf * 2, ngf * 4, dropout=0.5)
        self.down4 = UNetDown(ngf * 4, ngf * 4, normalize=False, dropout=0.5)

        self.up1 = UNetUp(ngf * 4, ngf * 4, dropout=0.5)
        self.up2 = UNetUp(ngf * 8, ngf * 2)
        self.up3 = UNetUp(ngf * 4, ngf)

        self.final = nn.Sequential(
            nn.Upsample(scale_factor=2),
            nn.ZeroPad2d((1, 0, 1, 0)),
            nn.Conv2d(ngf * 2, out_channels, 4, padding=1),
            nn.Tanh(),
        )

    def forward(self, x):
        # U-Net generator with skip connections from encoder to decoder
        d1 = self.down1(x)
        d2 = self.down2(d1)
        d3 = self.down3(d2)
        d4 = self.down4(d3)
        u1 = self.up1(d4, d3)
        u2 = self.up2(u1, d2)
        u3 = self.up3(u2, d1)

        return self.final(u3)


##############################
#        Discriminator
##############################


class Discriminator(nn.Module):
    def __init__(self, in_channels=3, ndf=8):
        super(Discriminator, self).__init__()  # noqa: UP008

        def discriminator_block(in_filters, out_filters, normalization=True):
            """Returns downsampling layers of each discriminator block"""
            layers = [nn.Conv2d(in_filters, out_filters, 4, stride=2, padding=1)]
            if normalization:
                layers.append(nn.InstanceNorm2d(out_filters))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            return layers

        self.model = nn.Sequential(
            *discriminator_block(in_channels * 2, ndf, normalization=False),
            *discriminator_block(ndf, ndf * 2),
            nn.ZeroPad2d((1, 0, 1, 0)),
            nn.Conv2d(ndf * 2, 1, 4, padding=1, bias=False)
        )

    def forward(self, img_A, img_B):
        # Concatenate image and condition image by channels to produce input
        img_input = torch.cat((img_A, img_B), 1)
        return self.model(img_input)


# Loss functions
criterion_GAN = torch.nn.MSELoss()
criterion_vanilla = torch.nn.BCEWithLogitsLoss()
criterion_pixelwise = torch.nn.L1Loss()

# Loss weight of L1 pixel-wise loss between translated image and real image
lambda_pixel = 100

# Calculate output of image discriminator (PatchGAN)
patch = (1, SIZE // 2 ** 2, SIZE // 2 ** 2)

generator = GeneratorUNet()
discriminator = Discriminator()
generator.apply(weights_init_normal)
discriminator.apply(weights_init_normal)
print(f"patch {patch}, generator params {sum(p.numel() for p in generator.parameters())}, "
      f"discriminator params {sum(p.numel() for p in discriminator.parameters())}")

N_EPOCHS, DECAY_EPOCH, BATCH = 12, 6, 8
optimizer_G = torch.optim.Adam(generator.parameters(), lr=5e-4, betas=(0.5, 0.999))
optimizer_D = torch.optim.Adam(discriminator.parameters(), lr=5e-4, betas=(0.5, 0.999))


def lambda_rule(epoch):
    # keep the same learning rate for the first epochs, then decay linearly to zero
    return 1.0 - max(0, epoch + 1 - DECAY_EPOCH) / float(N_EPOCHS - DECAY_EPOCH + 1)


scheduler_G = lr_scheduler.LambdaLR(optimizer_G, lr_lambda=lambda_rule)
scheduler_D = lr_scheduler.LambdaLR(optimizer_D, lr_lambda=lambda_rule)

train_A, train_B = paired_images(96)
val_A, val_B = paired_images(64)

for epoch in range(N_EPOCHS):
    perm = torch.randperm(len(train_A))
    for i in range(0, len(train_A), BATCH):
        idx = perm[i:i + BATCH]
        real_A, real_B = train_A[idx], train_B[idx]

        # ------------------
        #  Train Generators
        # ------------------

        optimizer_G.zero_grad()

        # GAN loss
        fake_B = generator(real_A)
        pred_fake = discriminator(fake_B, real_A)
        valid = torch.ones_like(pred_fake)
        loss_GAN = criterion_GAN(pred_fake, valid)
        # Pixel-wise loss
        loss_pixel = criterion_pixelwise(fake_B, real_B)

        # Total loss
        loss_G = loss_GAN + lambda_pixel * loss_pixel

        loss_G.backward()

        optimizer_G.step()

        # ---------------------
        #  Train Discriminator
        # ---------------------

        optimizer_D.zero_grad()

        # Real loss
        pred_real = discriminator(real_B, real_A)
        loss_real = criterion_GAN(pred_real, valid)

        # Fake loss
        pred_fake = discriminator(fake_B.detach(), real_A)
        fake = torch.zeros_like(pred_fake)
        loss_fake = criterion_GAN(pred_fake, fake)

        # Total loss
        loss_D = 0.5 * (loss_real + loss_fake)

        loss_D.backward()
        optimizer_D.step()

    scheduler_G.step()
    scheduler_D.step()
    print(f"[Epoch {epoch + 1}/{N_EPOCHS}] [D loss: {loss_D.item():.4f}] [G loss: {loss_G.item():.4f}, "
          f"pixel: {loss_pixel.item():.4f}, adv: {loss_GAN.item():.4f}] lr {optimizer_G.param_groups[0]['lr']:.6f}")

generator.eval()
discriminator.eval()
with torch.no_grad():
    fake_B = generator(val_A)
    val_l1 = criterion_pixelwise(fake_B, val_B).item()
    pred_real = discriminator(val_B, val_A)
    pred_fake = discriminator(fake_B, val_A)
    # junyanz's "vanilla" GAN loss on the same patch predictions
    d_vanilla = 0.5 * (criterion_vanilla(pred_real, torch.ones_like(pred_real))
                       + criterion_vanilla(pred_fake, torch.zeros_like(pred_fake))).item()
    # did the generator paint each disc in the right colour channel? (red minus blue over the disc)
    disc = val_B[:, 1] > 0
    red_minus_blue = ((fake_B[:, 0] - fake_B[:, 2]) * disc).sum((1, 2))
    want_red = val_B[:, 0].amax((1, 2)) > 0
    colour_acc = ((red_minus_blue > 0) == want_red).float().mean().item()
print(f"val patch {tuple(pred_fake.shape)}, fake range [{fake_B.min().item():.3f}, {fake_B.max().item():.3f}]")
print(f"FINAL val_l1={val_l1:.4f} colour_acc={colour_acc:.4f} d_vanilla={d_vanilla:.4f} "
      f"d_real={pred_real.mean().item():.4f}")
