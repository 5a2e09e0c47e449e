"""CUT (taesungp/contrastive-unpaired-translation) at toy size: unpaired translation between two
synthetic image domains (dim, low-contrast discs -> bright, high-contrast discs) by a ResNet-style
generator trained with an LSGAN PatchGAN discriminator and the multilayer PatchNCE loss.

Written as the repository writes it: ``ResnetGenerator.forward(input, layers, encode_only=True)``
returning the features of chosen layers; ``PatchSampleF`` (an ``l2norm`` ``Normalize`` by
``x.pow(2).sum(1, keepdim=True).pow(1. / 2)``, MLP heads created lazily by ``setattr(self,
'mlp_%d' % mlp_id, mlp)`` on the first call and ``init_net`` normal init, features by
``feat.permute(0, 2, 3, 1).flatten(1, 2)``, patch ids from ``torch.randperm`` shared between the
source and the output, ``torch.tensor(patch_id, dtype=torch.long) (torch's copy-construct warning)``, ``feat_reshape[:, patch_id, :]
.flatten(0, 1)``); ``PatchNCELoss`` (``feat_k.detach()``, ``l_pos = torch.bmm(feat_q.view(B, 1, -1),
feat_k.view(B, -1, 1))``, ``l_neg_curbatch = torch.bmm(feat_q, feat_k.transpose(2, 1))``, the
diagonal ``masked_fill_(diagonal, -10.0)`` from ``torch.eye(..., dtype=self.mask_dtype)[None, :, :]``
with the dtype chosen by ``version.parse(torch.__version__)``, ``/ nce_T``,
``CrossEntropyLoss(reduction='none')`` on ``torch.zeros(out.size(0), dtype=torch.long)``); the
identity NCE loss on ``torch.cat((real_A, real_B), dim=0)`` through the generator; ``GANLoss``
(lsgan: ``MSELoss`` against ``register_buffer`` labels ``expand_as`` the prediction);
``set_requires_grad``; Adam(betas=(0.5, 0.999)) for G, D and F, F's made after the
data-dependent initialisation; ``LambdaRule`` linear decay by ``lr_scheduler.LambdaLR``.

Checked: PatchNCE equals an explicit per-patch InfoNCE loop (``torch.logsumexp`` over the positive
and the other patches of the same image), the losses fall, and the translated images' mean
intensity and contrast move from domain A's towards domain B's.
"""

# ruff: noqa: UP008, UP031, B006, B007  (the repository's own spelling: super(Class, self), 'mlp_%d' % i,
# gpu_ids=[] and layers=[] defaults, unused loop names)

import os
from argparse import Namespace

import numpy as np
import torch
import torch.nn as nn
from packaging import version
from torch.nn import init
from torch.optim import lr_scheduler

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

opt = Namespace(batch_size=4, nce_T=0.07, num_patches=32, lambda_GAN=1.0, lambda_NCE=1.0,
                nce_idt=True, nce_layers='0,4,7', netF_nc=32, ngf=8, n_epochs=3, n_epochs_decay=3,
                lr=2e-3, beta1=0.5, nce_includes_all_negatives_from_minibatch=False, init_gain=0.02)
SIZE = 16


# ------------------------------------------------------------------------------------- data
def make_domain(n, rng, domain):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    imgs = np.zeros((n, 3, SIZE, SIZE), dtype=np.float32)
    for i in range(n):
        cy, cx, r = rng.uniform(4, 12), rng.uniform(4, 12), rng.uniform(2.5, 5)
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r).astype(np.float32)
        color = rng.uniform(0.3, 1.0, 3)[:, None, None]
        if domain == 'A':
            img = -0.6 + 0.4 * disc * color
        else:
            img = -0.9 + 1.6 * disc * color
        imgs[i] = img + 0.05 * rng.randn(3, SIZE, SIZE)
    return torch.from_numpy(np.clip(imgs, -1, 1))


# -------------------------------------------------------------------------------- networks
def init_weights(net, init_type='normal', init_gain=0.02):
    def init_func(m):  # define the initialization function
        classname = m.__class__.__name__
        if hasattr(m, 'weight') and (classname.find('Conv') != -1 or classname.find('Linear') != -1):
            if init_type == 'normal':
                init.normal_(m.weight.data, 0.0, init_gain)
            elif init_type == 'xavier':
                init.xavier_normal_(m.weight.data, gain=init_gain)
            if hasattr(m, 'bias') and m.bias is not None:
                init.constant_(m.bias.data, 0.0)
        elif classname.find('BatchNorm2d') != -1:
            init.normal_(m.weight.data, 1.0, init_gain)
            init.constant_(m.bias.data, 0.0)

    net.apply(init_func)  # apply the initialization function <init_func>


def init_net(net, init_type='normal', init_gain=0.02, gpu_ids=[]):
    init_weights(net, init_type, init_gain=init_gain)
    return net


class ResnetBlock(nn.Module):
    def __init__(self, dim, norm_layer, use_bias):
        super(ResnetBlock, self).__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, kernel_size=3, bias=use_bias), norm_layer(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, kernel_size=3, bias=use_bias), norm_layer(dim))

    def forward(self, x):
        out = x + self.conv_block(x)  # add skip connections
        return out


class ResnetGenerator(nn.Module):
    def __init__(self, input_nc=3, output_nc=3, ngf=8, n_blocks=1):
        super(ResnetGenerator, self).__init__()
        norm_layer = nn.InstanceNorm2d
        use_bias = True
        model = [nn.ReflectionPad2d(3),
                 nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=use_bias),
                 norm_layer(ngf),
                 nn.ReLU(True)]
        model += [nn.Conv2d(ngf, ngf * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                  norm_layer(ngf * 2),
                  nn.ReLU(True)]
        for i in range(n_blocks):       # add ResNet blocks
            model += [ResnetBlock(ngf * 2, norm_layer=norm_layer, use_bias=use_bias)]
        model += [nn.ConvTranspose2d(ngf * 2, ngf, kernel_size=3, stride=2, padding=1, output_padding=1,
                                     bias=use_bias),
                  norm_layer(ngf),
                  nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3)]
        model += [nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0)]
        model += [nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, input, layers=[], encode_only=False):
        if -1 in layers:
            layers.append(len(self.model))
        if len(layers) > 0:
            feat = input
            feats = []
            for layer_id, layer in enumerate(self.model):
                feat = layer(feat)
                if layer_id in layers:
                    feats.append(feat)
                else:
                    pass
                if layer_id == layers[-1] and encode_only:
                    return feats  # return intermediate features alone; stop in the last layers

            return feat, feats  # return both output and intermediate features
        else:
            """Standard forward"""
            fake = self.model(input)
            return fake


class NLayerDiscriminator(nn.Module):
    def __init__(self, input_nc=3, ndf=8, n_layers=2):
        super(NLayerDiscriminator, self).__init__()
        kw, padw = 4, 1
        sequence = [nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw), nn.LeakyReLU(0.2, True)]
        nf_mult = 1
        for n in range(1, n_layers):  # gradually increase the number of filters
            nf_mult_prev = nf_mult
            nf_mult = min(2 ** n, 8)
            sequence += [
                nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=kw, stride=2, padding=padw),
                nn.InstanceNorm2d(ndf * nf_mult),
                nn.LeakyReLU(0.2, True)]
        sequence += [nn.Conv2d(ndf * nf_mult, 1, kernel_size=kw, stride=1, padding=padw)]  # output 1 channel prediction map
        self.model = nn.Sequential(*sequence)

    def forward(self, input):
        return self.model(input)


class Normalize(nn.Module):

    def __init__(self, power=2):
        super(Normalize, self).__init__()
        self.power = power

    def forward(self, x):
        norm = x.pow(self.power).sum(1, keepdim=True).pow(1. / self.power)
        out = x.div(norm + 1e-7)
        return out


class PatchSampleF(nn.Module):
    def __init__(self, use_mlp=False, init_type='normal', init_gain=0.02, nc=256, gpu_ids=[]):
        # potential issues: currently, we use the same patch_ids for multiple images in the batch
        super(PatchSampleF, self).__init__()
        self.l2norm = Normalize(2)
        self.use_mlp = use_mlp
        self.nc = nc  # hard-coded
        self.mlp_init = False
        self.init_type = init_type
        self.init_gain = init_gain
        self.gpu_ids = gpu_ids

    def create_mlp(self, feats):
        for mlp_id, feat in enumerate(feats):
            input_nc = feat.shape[1]
            mlp = nn.Sequential(*[nn.Linear(input_nc, self.nc), nn.ReLU(), nn.Linear(self.nc, self.nc)])
            setattr(self, 'mlp_%d' % mlp_id, mlp)
        init_net(self, self.init_type, self.init_gain, self.gpu_ids)
        self.mlp_init = True

    def forward(self, feats, num_patches=64, patch_ids=None):
        return_ids = []
        return_feats = []
        if self.use_mlp and not self.mlp_init:
            self.create_mlp(feats)
        for feat_id, feat in enumerate(feats):
            B, H, W = feat.shape[0], feat.shape[2], feat.shape[3]
            feat_reshape = feat.permute(0, 2, 3, 1).flatten(1, 2)
            if num_patches > 0:
                if patch_ids is not None:
                    patch_id = patch_ids[feat_id]
                else:
                    patch_id = torch.randperm(feat_reshape.shape[1], device=feats[0].device)
                    patch_id = patch_id[:int(min(num_patches, patch_id.shape[0]))]  # .to(patch_ids.device)
                patch_id = torch.tensor(patch_id, dtype=torch.long, device=feat.device)
                x_sample = feat_reshape[:, patch_id, :].flatten(0, 1)  # reshape(-1, x.shape[1])
            else:
                x_sample = feat_reshape
                patch_id = []
            if self.use_mlp:
                mlp = getattr(self, 'mlp_%d' % feat_id)
                x_sample = mlp(x_sample)
            return_ids.append(patch_id)
            x_sample = self.l2norm(x_sample)

            if num_patches == 0:
                x_sample = x_sample.permute(0, 2, 1).reshape([B, x_sample.shape[-1], H, W])
            return_feats.append(x_sample)
        return return_feats, return_ids


class GANLoss(nn.Module):
    def __init__(self, gan_mode, target_real_label=1.0, target_fake_label=0.0):
        super(GANLoss, self).__init__()
        self.register_buffer('real_label', torch.tensor(target_real_label))
        self.register_buffer('fake_label', torch.tensor(target_fake_label))
        self.gan_mode = gan_mode
        if gan_mode == 'lsgan':
            self.loss = nn.MSELoss()
        elif gan_mode == 'vanilla':
            self.loss = nn.BCEWithLogitsLoss()

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


class PatchNCELoss(nn.Module):
    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.cross_entropy_loss = torch.nn.CrossEntropyLoss(reduction='none')
        self.mask_dtype = torch.uint8 if version.parse(torch.__version__) < version.parse('1.2.0') else torch.bool

    def forward(self, feat_q, feat_k):
        num_patches = feat_q.shape[0]
        dim = feat_q.shape[1]
        feat_k = feat_k.detach()

        # pos logit
        l_pos = torch.bmm(
            feat_q.view(num_patches, 1, -1), feat_k.view(num_patches, -1, 1))
        l_pos = l_pos.view(num_patches, 1)

        # neg logit

        # Should the negatives from the other samples of a minibatch be utilized?
        # In CUT and FastCUT, we found that it's best to only include negatives
        # from the same image. Therefore, we set
        # --nce_includes_all_negatives_from_minibatch as False
        # However, for single-image translation, the minibatch consists of
        # crops from the "same" high-resolution image.
        # Therefore, we will include the negatives from the entire minibatch.
        if self.opt.nce_includes_all_negatives_from_minibatch:
            # reshape features as if they are all negatives of minibatch of size 1.
            batch_dim_for_bmm = 1
        else:
            batch_dim_for_bmm = self.opt.batch_size

        # reshape features to batch size
        feat_q = feat_q.view(batch_dim_for_bmm, -1, dim)
        feat_k = feat_k.view(batch_dim_for_bmm, -1, dim)
        npatches = feat_q.size(1)
        l_neg_curbatch = torch.bmm(feat_q, feat_k.transpose(2, 1))

        # diagonal entries are similarity between same features, and hence meaningless.
        # just fill the diagonal with very small number, which is exp(-10) and almost zero
        diagonal = torch.eye(npatches, device=feat_q.device, dtype=self.mask_dtype)[None, :, :]
        l_neg_curbatch.masked_fill_(diagonal, -10.0)
        l_neg = l_neg_curbatch.view(-1, npatches)

        out = torch.cat((l_pos, l_neg), dim=1) / self.opt.nce_T

        loss = self.cross_entropy_loss(out, torch.zeros(out.size(0), dtype=torch.long,
                                                        device=feat_q.device))

        return loss


def set_requires_grad(nets, requires_grad=False):
    if not isinstance(nets, list):
        nets = [nets]
    for net in nets:
        if net is not None:
            for param in net.parameters():
                param.requires_grad = requires_grad


# -------------------------------------------------------------------------------- model
class CUTModel:
    def __init__(self, opt):
        self.opt = opt
        self.nce_layers = [int(i) for i in self.opt.nce_layers.split(',')]
        self.netG = init_net(ResnetGenerator(ngf=opt.ngf), 'normal', opt.init_gain)
        self.netF = PatchSampleF(use_mlp=True, init_type='normal', init_gain=opt.init_gain, nc=opt.netF_nc)
        self.netD = init_net(NLayerDiscriminator(), 'normal', opt.init_gain)
        self.criterionGAN = GANLoss('lsgan')
        self.criterionNCE = []
        for nce_layer in self.nce_layers:
            self.criterionNCE.append(PatchNCELoss(opt))
        self.optimizer_G = torch.optim.Adam(self.netG.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))
        self.optimizer_D = torch.optim.Adam(self.netD.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))
        self.optimizers = [self.optimizer_G, self.optimizer_D]

    def data_dependent_initialize(self, data):
        bs_per_gpu = data['A'].size(0)
        self.set_input(data)
        self.real_A = self.real_A[:bs_per_gpu]
        self.real_B = self.real_B[:bs_per_gpu]
        self.forward()                     # compute fake images: G(A)
        self.compute_D_loss().backward()                  # calculate gradients for D
        self.compute_G_loss().backward()                   # calculate graidents for G
        self.optimizer_F = torch.optim.Adam(self.netF.parameters(), lr=self.opt.lr, betas=(self.opt.beta1, 0.999))
        self.optimizers.append(self.optimizer_F)

    def setup(self):
        def lambda_rule(epoch):
            lr_l = 1.0 - max(0, epoch - self.opt.n_epochs) / float(self.opt.n_epochs_decay + 1)
            return lr_l
        self.schedulers = [lr_scheduler.LambdaLR(optimizer, lr_lambda=lambda_rule) for optimizer in self.optimizers]

    def update_learning_rate(self):
        for scheduler in self.schedulers:
            scheduler.step()
        return self.optimizers[0].param_groups[0]['lr']

    def optimize_parameters(self):
        # forward
        self.forward()

        # update D
        set_requires_grad(self.netD, True)
        self.optimizer_D.zero_grad()
        self.loss_D = self.compute_D_loss()
        self.loss_D.backward()
        self.optimizer_D.step()

        # update G
        set_requires_grad(self.netD, False)
        self.optimizer_G.zero_grad()
        self.optimizer_F.zero_grad()
        self.loss_G = self.compute_G_loss()
        self.loss_G.backward()
        self.optimizer_G.step()
        self.optimizer_F.step()

    def set_input(self, input):
        self.real_A = input['A']
        self.real_B = input['B']

    def forward(self):
        self.real = torch.cat((self.real_A, self.real_B), dim=0) if self.opt.nce_idt else self.real_A
        self.fake = self.netG(self.real)
        self.fake_B = self.fake[:self.real_A.size(0)]
        if self.opt.nce_idt:
            self.idt_B = self.fake[self.real_A.size(0):]

    def compute_D_loss(self):
        fake = self.fake_B.detach()
        # Fake; stop backprop to the generator by detaching fake_B
        pred_fake = self.netD(fake)
        self.loss_D_fake = self.criterionGAN(pred_fake, False).mean()
        # Real
        self.pred_real = self.netD(self.real_B)
        loss_D_real = self.criterionGAN(self.pred_real, True)
        self.loss_D_real = loss_D_real.mean()

        # combine loss and calculate gradients
        self.loss_D = (self.loss_D_fake + self.loss_D_real) * 0.5
        return self.loss_D

    def compute_G_loss(self):
        fake = self.fake_B
        # First, G(A) should fake the discriminator
        if self.opt.lambda_GAN > 0.0:
            pred_fake = self.netD(fake)
            self.loss_G_GAN = self.criterionGAN(pred_fake, True).mean() * self.opt.lambda_GAN
        else:
            self.loss_G_GAN = 0.0

        if self.opt.lambda_NCE > 0.0:
            self.loss_NCE = self.calculate_NCE_loss(self.real_A, self.fake_B)
        else:
            self.loss_NCE, self.loss_NCE_bd = 0.0, 0.0

        if self.opt.nce_idt and self.opt.lambda_NCE > 0.0:
            self.loss_NCE_Y = self.calculate_NCE_loss(self.real_B, self.idt_B)
            loss_NCE_both = (self.loss_NCE + self.loss_NCE_Y) * 0.5
        else:
            loss_NCE_both = self.loss_NCE

        self.loss_G = self.loss_G_GAN + loss_NCE_both
        return self.loss_G

    def calculate_NCE_loss(self, src, tgt):
        n_layers = len(self.nce_layers)
        feat_q = self.netG(tgt, self.nce_layers, encode_only=True)

        feat_k = self.netG(src, self.nce_layers, encode_only=True)
        feat_k_pool, sample_ids = self.netF(feat_k, self.opt.num_patches, None)
        feat_q_pool, _ = self.netF(feat_q, self.opt.num_patches, sample_ids)

        total_nce_loss = 0.0
        for f_q, f_k, crit, nce_layer in zip(feat_q_pool, feat_k_pool, self.criterionNCE, self.nce_layers):
            loss = crit(f_q, f_k) * self.opt.lambda_NCE
            total_nce_loss += loss.mean()

        return total_nce_loss / n_layers


def explicit_info_nce(f_q, f_k, batch_size, tau):
    """-log softmax of the positive among the patches of the same image, one anchor at a time."""
    f_k = f_k.detach()
    n = f_q.size(0) // batch_size
    losses = []
    for b in range(batch_size):
        q, k = f_q[b * n:(b + 1) * n], f_k[b * n:(b + 1) * n]
        for i in range(n):
            pos = (q[i] * k[i]).sum() / tau
            others = torch.stack([(q[i] * k[j]).sum() / tau if j != i else torch.tensor(-10.0 / tau)
                                  for j in range(n)])
            losses.append(torch.logsumexp(torch.cat([pos.view(1), others]), dim=0) - pos)
    return torch.stack(losses)


def domain_stats(x):
    return x.mean().item(), x.std(dim=(1, 2, 3)).mean().item()


# -------------------------------------------------------------------------------- train
rng = np.random.RandomState(seed)
train_A, train_B = make_domain(64, rng, 'A'), make_domain(64, rng, 'B')
test_A, test_B = make_domain(32, rng, 'A'), make_domain(32, rng, 'B')

model = CUTModel(opt)
model.data_dependent_initialize({'A': train_A[:opt.batch_size], 'B': train_B[:opt.batch_size]})
model.setup()
print('netF heads:', [name for name, _ in model.netF.named_children()])

history = []
for epoch in range(1, opt.n_epochs + opt.n_epochs_decay + 1):
    perm_A, perm_B = torch.randperm(len(train_A)), torch.randperm(len(train_B))
    sums = np.zeros(3)
    n_iter = len(train_A) // opt.batch_size
    for i in range(n_iter):
        idx_A = perm_A[i * opt.batch_size:(i + 1) * opt.batch_size]
        idx_B = perm_B[i * opt.batch_size:(i + 1) * opt.batch_size]
        model.set_input({'A': train_A[idx_A], 'B': train_B[idx_B]})
        model.optimize_parameters()
        sums += [model.loss_D.item(), model.loss_G_GAN.item(), model.loss_NCE.item()]
    lr = model.update_learning_rate()
    history.append(sums / n_iter)
    print(f"(epoch: {epoch}) D: {sums[0] / n_iter:.4f} G_GAN: {sums[1] / n_iter:.4f} "
          f"NCE: {sums[2] / n_iter:.4f} lr: {lr:.6f}")

# PatchNCE against the explicit loop on fresh features
with torch.no_grad():
    real_A = test_A[:opt.batch_size]
    fake_B = model.netG(real_A)
    feat_k_pool, ids = model.netF(model.netG(real_A, model.nce_layers, encode_only=True), opt.num_patches, None)
    feat_q_pool, _ = model.netF(model.netG(fake_B, model.nce_layers, encode_only=True), opt.num_patches, ids)
    nce_err = 0.0
    for f_q, f_k, crit in zip(feat_q_pool, feat_k_pool, model.criterionNCE):
        vectorised = crit(f_q, f_k)
        looped = explicit_info_nce(f_q, f_k, opt.batch_size, opt.nce_T)
        nce_err = max(nce_err, (vectorised - looped).abs().max().item())
    print(f"patchnce vs loop max |diff|: {nce_err:.2e}  ids shared: {len(ids)} layers of {ids[0].numel()} patches")

# the translation moves domain statistics towards B
with torch.no_grad():
    fake = model.netG(test_A)
mean_A, std_A = domain_stats(test_A)
mean_B, std_B = domain_stats(test_B)
mean_F, std_F = domain_stats(fake)
gap_before = abs(mean_A - mean_B) + abs(std_A - std_B)
gap_after = abs(mean_F - mean_B) + abs(std_F - std_B)
print(f"A mean {mean_A:.3f} std {std_A:.3f} | B mean {mean_B:.3f} std {std_B:.3f} | G(A) mean {mean_F:.3f} std {std_F:.3f}")
print(f"FINAL nce_first={history[0][2]:.4f} nce_last={history[-1][2]:.4f} d_last={history[-1][0]:.4f} "
      f"gap_before={gap_before:.4f} gap_after={gap_after:.4f} nce_loop_err={nce_err:.6f}")
