"""CycleGAN's pieces, in junyanz/pytorch-CycleGAN-and-pix2pix idioms, on tiny synthetic images.

``ResnetGenerator`` (``nn.ReflectionPad2d`` + 7x7 conv, strided downsampling, ``ResnetBlock``s
with reflection padding, ``nn.ConvTranspose2d(..., output_padding=1)`` upsampling, ``Tanh``) with
``nn.InstanceNorm2d`` through ``functools.partial``; the ``NLayerDiscriminator`` PatchGAN with
``nn.LeakyReLU(0.2, True)``; ``GANLoss`` (LSGAN ``MSELoss``) with ``register_buffer`` labels
``expand_as`` the prediction; cycle and identity ``L1Loss``; the ``ImagePool`` of past fakes
(``random.uniform``, ``torch.unsqueeze``, ``torch.cat``, ``clone``); ``set_requires_grad(nets,
False)`` around the generator step; one ``Adam(itertools.chain(G_A.parameters(),
G_B.parameters()), betas=(0.5, 0.999))``; ``LambdaLR`` linear decay; ``init_weights`` with
``normal_(0.0, 0.02)`` through ``net.apply``. Domain A is dark blobs on light, domain B light blobs
on dark, so a good A->B generator learns to invert.
"""

import functools
import itertools
import os
import random

import numpy as np
import torch
import torch.nn as nn
from torch.nn import init
from torch.optim import lr_scheduler

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
random.seed(seed)
rng = np.random.default_rng(seed)

SIZE = 16


def blobs(n, invert):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    images = np.empty((n, 1, SIZE, SIZE), dtype=np.float32)
    for i in range(n):
        cy, cx = rng.uniform(4, SIZE - 4, size=2)
        r = rng.uniform(2.5, 4.5)
        img = np.where((yy - cy) ** 2 + (xx - cx) ** 2 < r * r, 1.0, -1.0)
        img = img + rng.normal(0, 0.05, size=img.shape)
        images[i, 0] = -img if invert else img
    return torch.from_numpy(images)


class ResnetBlock(nn.Module):
    def __init__(self, dim, padding_type, norm_layer, use_dropout, use_bias):
        super().__init__()
        self.conv_block = self.build_conv_block(dim, padding_type, norm_layer, use_dropout, use_bias)

    def build_conv_block(self, dim, padding_type, norm_layer, use_dropout, use_bias):
        conv_block = []
        p = 0
        if padding_type == 'reflect':
            conv_block += [nn.ReflectionPad2d(1)]
        elif padding_type == 'replicate':
            conv_block += [nn.ReplicationPad2d(1)]
        elif padding_type == 'zero':
            p = 1
        else:
            raise NotImplementedError('padding [%s] is not implemented' % padding_type)  # noqa: UP031  (the repository's own spelling)
        conv_block += [nn.Conv2d(dim, dim, kernel_size=3, padding=p, bias=use_bias), norm_layer(dim), nn.ReLU(True)]
        if use_dropout:
            conv_block += [nn.Dropout(0.5)]
        p = 0
        if padding_type == 'reflect':
            conv_block += [nn.ReflectionPad2d(1)]
        elif padding_type == 'replicate':
            conv_block += [nn.ReplicationPad2d(1)]
        elif padding_type == 'zero':
            p = 1
        conv_block += [nn.Conv2d(dim, dim, kernel_size=3, padding=p, bias=use_bias), norm_layer(dim)]
        return nn.Sequential(*conv_block)

    def forward(self, x):
        out = x + self.conv_block(x)  # add skip connections
        return out


class ResnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, ngf=64, norm_layer=nn.BatchNorm2d, use_dropout=False, n_blocks=6,
                 padding_type='reflect'):
        assert n_blocks >= 0
        super().__init__()
        if type(norm_layer) is functools.partial:
            use_bias = norm_layer.func == nn.InstanceNorm2d
        else:
            use_bias = norm_layer == nn.InstanceNorm2d

        model = [nn.ReflectionPad2d(3),
                 nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=use_bias),
                 norm_layer(ngf),
                 nn.ReLU(True)]

        n_downsampling = 2
        for i in range(n_downsampling):  # add downsampling layers
            mult = 2 ** i
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                      norm_layer(ngf * mult * 2),
                      nn.ReLU(True)]

        mult = 2 ** n_downsampling
        for i in range(n_blocks):  # add ResNet blocks  # noqa: B007  (the repository's own spelling)
            model += [ResnetBlock(ngf * mult, padding_type=padding_type, norm_layer=norm_layer,
                                  use_dropout=use_dropout, use_bias=use_bias)]

        for i in range(n_downsampling):  # add upsampling layers
            mult = 2 ** (n_downsampling - i)
            model += [nn.ConvTranspose2d(ngf * mult, int(ngf * mult / 2),
                                         kernel_size=3, stride=2,
                                         padding=1, output_padding=1,
                                         bias=use_bias),
                      norm_layer(int(ngf * mult / 2)),
                      nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3)]
        model += [nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0)]
        model += [nn.Tanh()]

        self.model = nn.Sequential(*model)

    def forward(self, input):
        return self.model(input)


class NLayerDiscriminator(nn.Module):
    def __init__(self, input_nc, ndf=64, n_layers=3, norm_layer=nn.BatchNorm2d):
        super().__init__()
        if type(norm_layer) is functools.partial:
            use_bias = norm_layer.func == nn.InstanceNorm2d
        else:
            use_bias = norm_layer == nn.InstanceNorm2d

        kw = 4
        padw = 1
        sequence = [nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw), nn.LeakyReLU(0.2, True)]
        nf_mult = 1
        nf_mult_prev = 1
        for n in range(1, n_layers):  # gradually increase the number of filters
            nf_mult_prev = nf_mult
            nf_mult = min(2 ** n, 8)
            sequence += [
                nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=kw, stride=2, padding=padw, bias=use_bias),
                norm_layer(ndf * nf_mult),
                nn.LeakyReLU(0.2, True)
            ]

        nf_mult_prev = nf_mult
        nf_mult = min(2 ** n_layers, 8)
        sequence += [
            nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=kw, stride=1, padding=padw, bias=use_bias),
            norm_layer(ndf * nf_mult),
            nn.LeakyReLU(0.2, True)
        ]

        sequence += [nn.Conv2d(ndf * nf_mult, 1, kernel_size=kw, stride=1, padding=padw)]  # output 1 channel prediction map
        self.model = nn.Sequential(*sequence)

    def forward(self, input):
        return self.model(input)


def init_weights(net, init_type='normal', init_gain=0.02):
    def init_func(m):  # define the initialization function
        classname = m.__class__.__name__
        if hasattr(m, 'weight') and (classname.find('Conv') != -1 or classname.find('Linear') != -1):
            if init_type == 'normal':
                init.normal_(m.weight.data, 0.0, init_gain)
            elif init_type == 'xavier':
                init.xavier_normal_(m.weight.data, gain=init_gain)
            else:
                raise NotImplementedError('initialization method [%s] is not implemented' % init_type)  # noqa: UP031  (the repository's own spelling)
            if hasattr(m, 'bias') and m.bias is not None:
                init.constant_(m.bias.data, 0.0)
        elif classname.find('BatchNorm2d') != -1:
            init.normal_(m.weight.data, 1.0, init_gain)
            init.constant_(m.bias.data, 0.0)

    net.apply(init_func)  # apply the initialization function <init_func>


class GANLoss(nn.Module):
    def __init__(self, gan_mode, target_real_label=1.0, target_fake_label=0.0):
        super().__init__()
        self.register_buffer('real_label', torch.tensor(target_real_label))
        self.register_buffer('fake_label', torch.tensor(target_fake_label))
        self.gan_mode = gan_mode
        if gan_mode == 'lsgan':
            self.loss = nn.MSELoss()
        elif gan_mode == 'vanilla':
            self.loss = nn.BCEWithLogitsLoss()
        else:
            raise NotImplementedError('gan mode %s not implemented' % gan_mode)  # noqa: UP031  (the repository's own spelling)

    def get_target_tensor(self, prediction, target_is_real):
        if target_is_real:
            target_tensor = self.real_label
        else:
            target_tensor = self.fake_label
        return target_tensor.expand_as(prediction)

    def __call__(self, prediction, target_is_real):
        target_tensor = self.get_target_tensor(prediction, target_is_real)
        loss = self.loss(prediction, target_tensor)
        return loss


class ImagePool():  # noqa: UP039  (the repository's own spelling)
    def __init__(self, pool_size):
        self.pool_size = pool_size
        if self.pool_size > 0:  # create an empty pool
            self.num_imgs = 0
            self.images = []

    def query(self, images):
        if self.pool_size == 0:  # if the buffer size is 0, do nothing
            return images
        return_images = []
        for image in images:
            image = torch.unsqueeze(image.data, 0)
            if self.num_imgs < self.pool_size:   # if the buffer is not full; keep inserting current images to the buffer
                self.num_imgs = self.num_imgs + 1
                self.images.append(image)
                return_images.append(image)
            else:
                p = random.uniform(0, 1)
                if p > 0.5:  # by 50% chance, the buffer will return a previously stored image
                    random_id = random.randint(0, self.pool_size - 1)  # randint is inclusive
                    tmp = self.images[random_id].clone()
                    self.images[random_id] = image
                    return_images.append(tmp)
                else:       # by another 50% chance, the buffer will return the current image
                    return_images.append(image)
        return_images = torch.cat(return_images, 0)   # collect all the images and return
        return return_images


def set_requires_grad(nets, requires_grad=False):
    if not isinstance(nets, list):
        nets = [nets]
    for net in nets:
        if net is not None:
            for param in net.parameters():
                param.requires_grad = requires_grad


device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
norm_layer = functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
netG_A = ResnetGenerator(1, 1, ngf=8, norm_layer=norm_layer, n_blocks=2).to(device)
netG_B = ResnetGenerator(1, 1, ngf=8, norm_layer=norm_layer, n_blocks=2).to(device)
netD_A = NLayerDiscriminator(1, ndf=8, n_layers=2, norm_layer=norm_layer).to(device)
netD_B = NLayerDiscriminator(1, ndf=8, n_layers=2, norm_layer=norm_layer).to(device)
for net in (netG_A, netG_B, netD_A, netD_B):
    init_weights(net, 'normal', 0.02)

lambda_A, lambda_B, lambda_identity = 10.0, 10.0, 0.5
fake_A_pool = ImagePool(8)
fake_B_pool = ImagePool(8)
criterionGAN = GANLoss('lsgan').to(device)
criterionCycle = torch.nn.L1Loss()
criterionIdt = torch.nn.L1Loss()
optimizer_G = torch.optim.Adam(itertools.chain(netG_A.parameters(), netG_B.parameters()), lr=0.002, betas=(0.5, 0.999))
optimizer_D = torch.optim.Adam(itertools.chain(netD_A.parameters(), netD_B.parameters()), lr=0.002, betas=(0.5, 0.999))
optimizers = [optimizer_G, optimizer_D]

n_epochs, n_epochs_decay, epoch_count = 4, 4, 1


def lambda_rule(epoch):
    lr_l = 1.0 - max(0, epoch + epoch_count - n_epochs) / float(n_epochs_decay + 1)
    return lr_l


schedulers = [lr_scheduler.LambdaLR(optimizer, lr_lambda=lambda_rule) for optimizer in optimizers]

data_A = blobs(64, invert=False)
data_B = blobs(64, invert=True)
test_A = blobs(16, invert=False)
BATCH = 8


def backward_D_basic(netD, real, fake):
    pred_real = netD(real)
    loss_D_real = criterionGAN(pred_real, True)
    pred_fake = netD(fake.detach())
    loss_D_fake = criterionGAN(pred_fake, False)
    loss_D = (loss_D_real + loss_D_fake) * 0.5
    loss_D.backward()
    return loss_D


for epoch in range(epoch_count, n_epochs + n_epochs_decay + 1):
    perm_A = torch.from_numpy(rng.permutation(len(data_A)))
    perm_B = torch.from_numpy(rng.permutation(len(data_B)))
    sums = {"G": 0.0, "D_A": 0.0, "D_B": 0.0, "cycle": 0.0}
    n_batches = 0
    for i in range(0, len(data_A), BATCH):
        real_A = data_A[perm_A[i:i + BATCH]].to(device)
        real_B = data_B[perm_B[i:i + BATCH]].to(device)
        # forward
        fake_B = netG_A(real_A)
        rec_A = netG_B(fake_B)
        fake_A = netG_B(real_B)
        rec_B = netG_A(fake_A)
        # G_A and G_B
        set_requires_grad([netD_A, netD_B], False)
        optimizer_G.zero_grad()
        idt_A = netG_A(real_B)
        loss_idt_A = criterionIdt(idt_A, real_B) * lambda_B * lambda_identity
        idt_B = netG_B(real_A)
        loss_idt_B = criterionIdt(idt_B, real_A) * lambda_A * lambda_identity
        loss_G_A = criterionGAN(netD_A(fake_B), True)
        loss_G_B = criterionGAN(netD_B(fake_A), True)
        loss_cycle_A = criterionCycle(rec_A, real_A) * lambda_A
        loss_cycle_B = criterionCycle(rec_B, real_B) * lambda_B
        loss_G = loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B + loss_idt_A + loss_idt_B
        loss_G.backward()
        optimizer_G.step()
        # D_A and D_B
        set_requires_grad([netD_A, netD_B], True)
        optimizer_D.zero_grad()
        loss_D_A = backward_D_basic(netD_A, real_B, fake_B_pool.query(fake_B))
        loss_D_B = backward_D_basic(netD_B, real_A, fake_A_pool.query(fake_A))
        optimizer_D.step()
        sums["G"] += loss_G.item()
        sums["D_A"] += loss_D_A.item()
        sums["D_B"] += loss_D_B.item()
        sums["cycle"] += (loss_cycle_A.item() + loss_cycle_B.item()) / lambda_A
        n_batches += 1
    old_lr = optimizers[0].param_groups[0]['lr']
    for scheduler in schedulers:
        scheduler.step()
    lr = optimizers[0].param_groups[0]['lr']
    print(f"epoch {epoch}: G {sums['G'] / n_batches:.4f} D_A {sums['D_A'] / n_batches:.4f} "
          f"D_B {sums['D_B'] / n_batches:.4f} cycle {sums['cycle'] / n_batches:.4f} "
          f"learning rate {old_lr:.7f} -> {lr:.7f}")

netG_A.eval()
netG_B.eval()
with torch.no_grad():
    real_A = test_A.to(device)
    fake = netG_A(real_A)
    rec = netG_B(fake)
    cycle_l1 = (rec - real_A).abs().mean().item()
    # how well A->B inverts the image: the translated image against the exact inversion
    invert_l1 = (fake - (-real_A)).abs().mean().item()
    frozen = all(p.requires_grad for p in itertools.chain(netD_A.parameters(), netD_B.parameters()))
print(f"pool sizes: {fake_A_pool.num_imgs} {fake_B_pool.num_imgs}; discriminators trainable again: {frozen}")
print(f"FINAL cycle_l1={cycle_l1:.4f} invert_l1={invert_l1:.4f}")
