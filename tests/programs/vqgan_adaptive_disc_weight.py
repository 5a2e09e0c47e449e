"""taming-transformers' VQGAN training step (``VQModel`` + ``VQLPIPSWithDiscriminator``) at 16x16 on
synthetic coloured squares and discs.

Written the repo's way: ``VectorQuantizer`` (``z.permute(0, 2, 3, 1).contiguous()``, squared distances
``torch.sum(z_flattened ** 2, dim=1, keepdim=True) + torch.sum(self.embedding.weight**2, dim=1) - 2 *
torch.matmul(...)``, ``torch.argmin(d, dim=1).unsqueeze(1)``, one-hot ``min_encodings.scatter_(1, ...)``,
the codebook/commitment loss with its swapped ``beta``, the straight-through ``z_q = z + (z_q - z).detach()``
and the code perplexity); the PatchGAN ``NLayerDiscriminator`` built from a ``sequence`` list with
``.apply(weights_init)`` (``classname.find('Conv')``, ``nn.init.normal_(m.weight.data, 0.0, 0.02)``);
``adopt_weight``, ``hinge_d_loss``; ``calculate_adaptive_weight`` by two
``torch.autograd.grad(..., last_layer, retain_graph=True)`` on ``decoder.conv_out.weight``,
``torch.norm(nll_grads) / (torch.norm(g_grads) + 1e-4)``, ``torch.clamp(d_weight, 0.0, 1e4).detach()``, and
its ``except RuntimeError`` path under ``torch.no_grad()`` in eval (``d_weight = torch.tensor(0.0)``);
``p_loss = torch.tensor([0.0])`` with the perceptual weight at 0; two Adams with ``betas=(0.5, 0.9)``
stepped alternately per batch as Lightning's ``optimizer_idx`` 0 and 1.

Checked: the adaptive weight equals the ratio of the last layer's gradient norms computed by a second
route (``F.unfold`` of the conv's input caught by a forward hook, ``einsum`` with the output gradient
from ``autograd.grad`` on the reconstruction); before ``disc_start`` the generator's gradients equal
those of a run with no discriminator term at all; the straight-through estimator passes the decoder's
gradient to the encoder unchanged; the eval path's ``d_weight`` is 0; reconstruction error falls.
"""

# ruff: noqa: UP008, UP032  (the repo's own spelling: super(Class, self), "{}/loss".format(split))

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


# ----------------------------------------------------------------------------------- data
def make_images(rng, n, size=16):
    yy, xx = np.mgrid[0:size, 0:size]
    images = np.zeros((n, 3, size, size), dtype=np.float32) - 1.0
    for i in range(n):
        for _ in range(2):
            colour = rng.uniform(-1, 1, size=3).astype(np.float32)
            cy, cx = rng.randint(3, size - 3, size=2)
            r = rng.randint(2, 5)
            if rng.rand() < 0.5:
                mask = (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r)
            else:
                mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            images[i][:, mask] = colour[:, None]
    return images


# ----------------------------------------------------------------------------------- model
class VectorQuantizer(nn.Module):
    def __init__(self, n_e, e_dim, beta):
        super(VectorQuantizer, self).__init__()
        self.n_e = n_e
        self.e_dim = e_dim
        self.beta = beta

        self.embedding = nn.Embedding(self.n_e, self.e_dim)
        self.embedding.weight.data.uniform_(-1.0 / self.n_e, 1.0 / self.n_e)

    def forward(self, z):
        # reshape z -> (batch, height, width, channel) and flatten
        z = z.permute(0, 2, 3, 1).contiguous()
        z_flattened = z.view(-1, self.e_dim)
        # distances from z to embeddings e_j (z - e)^2 = z^2 + e^2 - 2 e * z

        d = torch.sum(z_flattened ** 2, dim=1, keepdim=True) + \
            torch.sum(self.embedding.weight**2, dim=1) - 2 * \
            torch.matmul(z_flattened, self.embedding.weight.t())

        # find closest encodings
        min_encoding_indices = torch.argmin(d, dim=1).unsqueeze(1)

        min_encodings = torch.zeros(
            min_encoding_indices.shape[0], self.n_e).to(z)
        min_encodings.scatter_(1, min_encoding_indices, 1)

        # get quantized latent vectors
        z_q = torch.matmul(min_encodings, self.embedding.weight).view(z.shape)

        # compute loss for embedding
        loss = torch.mean((z_q.detach()-z)**2) + self.beta * \
            torch.mean((z_q - z.detach()) ** 2)

        # preserve gradients
        z_q = z + (z_q - z).detach()

        # perplexity
        e_mean = torch.mean(min_encodings, dim=0)
        perplexity = torch.exp(-torch.sum(e_mean * torch.log(e_mean + 1e-10)))

        # reshape back to match original input shape
        z_q = z_q.permute(0, 3, 1, 2).contiguous()

        return z_q, loss, (perplexity, min_encodings, min_encoding_indices)


class Encoder(nn.Module):
    def __init__(self, ch=16, z_channels=16):
        super().__init__()
        self.conv_in = nn.Conv2d(3, ch, 3, stride=1, padding=1)
        self.down1 = nn.Conv2d(ch, ch * 2, 4, stride=2, padding=1)
        self.down2 = nn.Conv2d(ch * 2, ch * 2, 4, stride=2, padding=1)
        self.norm_out = nn.GroupNorm(num_groups=8, num_channels=ch * 2, eps=1e-6, affine=True)
        self.conv_out = nn.Conv2d(ch * 2, z_channels, 3, stride=1, padding=1)

    def forward(self, x):
        h = F.silu(self.conv_in(x))
        h = F.silu(self.down1(h))
        h = self.down2(h)
        h = h * torch.sigmoid(self.norm_out(h))
        return self.conv_out(h)


class Decoder(nn.Module):
    def __init__(self, ch=16, z_channels=16):
        super().__init__()
        self.conv_in = nn.Conv2d(z_channels, ch * 2, 3, stride=1, padding=1)
        self.up1 = nn.Conv2d(ch * 2, ch * 2, 3, stride=1, padding=1)
        self.up2 = nn.Conv2d(ch * 2, ch, 3, stride=1, padding=1)
        self.norm_out = nn.GroupNorm(num_groups=8, num_channels=ch, eps=1e-6, affine=True)
        self.conv_out = nn.Conv2d(ch, 3, 3, stride=1, padding=1)

    def forward(self, z):
        h = F.silu(self.conv_in(z))
        h = F.silu(self.up1(F.interpolate(h, scale_factor=2.0, mode="nearest")))
        h = self.up2(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        h = F.silu(self.norm_out(h))
        return self.conv_out(h)


class VQModel(nn.Module):
    def __init__(self, n_embed=32, embed_dim=8, z_channels=16):
        super().__init__()
        self.encoder = Encoder(z_channels=z_channels)
        self.decoder = Decoder(z_channels=z_channels)
        self.quantize = VectorQuantizer(n_embed, embed_dim, beta=0.25)
        self.quant_conv = torch.nn.Conv2d(z_channels, embed_dim, 1)
        self.post_quant_conv = torch.nn.Conv2d(embed_dim, z_channels, 1)

    def encode(self, x):
        h = self.encoder(x)
        h = self.quant_conv(h)
        quant, emb_loss, info = self.quantize(h)
        return quant, emb_loss, info

    def decode(self, quant):
        quant = self.post_quant_conv(quant)
        dec = self.decoder(quant)
        return dec

    def forward(self, input):
        quant, diff, _ = self.encode(input)
        dec = self.decode(quant)
        return dec, diff

    def get_last_layer(self):
        return self.decoder.conv_out.weight


def weights_init(m):
    classname = m.__class__.__name__
    if classname.find('Conv') != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find('BatchNorm') != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


class NLayerDiscriminator(nn.Module):
    """Defines a PatchGAN discriminator as in Pix2Pix"""

    def __init__(self, input_nc=3, ndf=64, n_layers=3):
        super(NLayerDiscriminator, self).__init__()
        norm_layer = nn.BatchNorm2d
        use_bias = norm_layer != nn.BatchNorm2d

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

        sequence += [
            nn.Conv2d(ndf * nf_mult, 1, kernel_size=kw, stride=1, padding=padw)]  # output 1 channel prediction map
        self.main = nn.Sequential(*sequence)

    def forward(self, input):
        """Standard forward."""
        return self.main(input)


def adopt_weight(weight, global_step, threshold=0, value=0.):
    if global_step < threshold:
        weight = value
    return weight


def hinge_d_loss(logits_real, logits_fake):
    loss_real = torch.mean(F.relu(1. - logits_real))
    loss_fake = torch.mean(F.relu(1. + logits_fake))
    d_loss = 0.5 * (loss_real + loss_fake)
    return d_loss


class VQLPIPSWithDiscriminator(nn.Module):
    def __init__(self, disc_start, codebook_weight=1.0, pixelloss_weight=1.0,
                 disc_num_layers=3, disc_in_channels=3, disc_factor=1.0, disc_weight=1.0,
                 perceptual_weight=0.0, disc_ndf=64):
        super().__init__()
        self.codebook_weight = codebook_weight
        self.pixel_weight = pixelloss_weight
        self.perceptual_weight = perceptual_weight  # LPIPS needs a pretrained VGG: left at 0

        self.discriminator = NLayerDiscriminator(input_nc=disc_in_channels,
                                                 n_layers=disc_num_layers,
                                                 ndf=disc_ndf
                                                 ).apply(weights_init)
        self.discriminator_iter_start = disc_start
        self.disc_loss = hinge_d_loss
        self.disc_factor = disc_factor
        self.discriminator_weight = disc_weight

    def calculate_adaptive_weight(self, nll_loss, g_loss, last_layer=None):
        nll_grads = torch.autograd.grad(nll_loss, last_layer, retain_graph=True)[0]
        g_grads = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]

        d_weight = torch.norm(nll_grads) / (torch.norm(g_grads) + 1e-4)
        d_weight = torch.clamp(d_weight, 0.0, 1e4).detach()
        d_weight = d_weight * self.discriminator_weight
        return d_weight

    def forward(self, codebook_loss, inputs, reconstructions, optimizer_idx,
                global_step, last_layer=None, split="train"):
        rec_loss = torch.abs(inputs.contiguous() - reconstructions.contiguous())
        p_loss = torch.tensor([0.0])

        nll_loss = rec_loss
        nll_loss = torch.mean(nll_loss)

        # now the GAN part
        if optimizer_idx == 0:
            # generator update
            logits_fake = self.discriminator(reconstructions.contiguous())
            g_loss = -torch.mean(logits_fake)

            try:
                d_weight = self.calculate_adaptive_weight(nll_loss, g_loss, last_layer=last_layer)
            except RuntimeError:
                assert not self.training
                d_weight = torch.tensor(0.0)

            disc_factor = adopt_weight(self.disc_factor, global_step, threshold=self.discriminator_iter_start)
            loss = nll_loss + d_weight * disc_factor * g_loss + self.codebook_weight * codebook_loss.mean()

            log = {"{}/total_loss".format(split): loss.clone().detach().mean(),
                   "{}/quant_loss".format(split): codebook_loss.detach().mean(),
                   "{}/nll_loss".format(split): nll_loss.detach().mean(),
                   "{}/rec_loss".format(split): rec_loss.detach().mean(),
                   "{}/p_loss".format(split): p_loss.detach().mean(),
                   "{}/d_weight".format(split): d_weight.detach(),
                   "{}/disc_factor".format(split): torch.tensor(disc_factor),
                   "{}/g_loss".format(split): g_loss.detach().mean(),
                   }
            return loss, log

        if optimizer_idx == 1:
            # second pass for discriminator update
            logits_real = self.discriminator(inputs.contiguous().detach())
            logits_fake = self.discriminator(reconstructions.contiguous().detach())

            disc_factor = adopt_weight(self.disc_factor, global_step, threshold=self.discriminator_iter_start)
            d_loss = disc_factor * self.disc_loss(logits_real, logits_fake)

            log = {"{}/disc_loss".format(split): d_loss.clone().detach().mean(),
                   "{}/logits_real".format(split): logits_real.detach().mean(),
                   "{}/logits_fake".format(split): logits_fake.detach().mean()
                   }
            return d_loss, log


# ----------------------------------------------------------------------------------- checks
def adaptive_weight_second_route(model, loss_fn, x):
    """The adaptive weight from the conv_out weight gradients built by hand: F.unfold of the conv's
    input (caught by a forward hook) against the output gradient of each loss."""
    caught = {}
    handle = model.decoder.conv_out.register_forward_hook(lambda m, inp, out: caught.update(inp=inp[0]))
    xrec, qloss = model(x)
    handle.remove()
    nll_loss = torch.mean(torch.abs(x - xrec))
    g_loss = -torch.mean(loss_fn.discriminator(xrec))
    d_weight = loss_fn.calculate_adaptive_weight(nll_loss, g_loss, last_layer=model.get_last_layer())

    cols = F.unfold(caught["inp"].detach(), kernel_size=3, padding=1)  # (B, C*9, H*W)
    norms = []
    for loss in (nll_loss, g_loss):
        grad_out = torch.autograd.grad(loss, xrec, retain_graph=True)[0].flatten(2)  # (B, 3, H*W)
        grad_w = torch.einsum('bol,bcl->oc', grad_out, cols)
        norms.append(grad_w.norm().item())
    manual = min(max(norms[0] / (norms[1] + 1e-4), 0.0), 1e4) * loss_fn.discriminator_weight
    return d_weight.item(), manual


def generator_grads(model, loss_fn, x, with_disc, global_step):
    model.zero_grad(set_to_none=True)
    xrec, qloss = model(x)
    if with_disc:
        loss, _ = loss_fn(qloss, x, xrec, 0, global_step, last_layer=model.get_last_layer())
    else:
        loss = torch.mean(torch.abs(x - xrec)) + loss_fn.codebook_weight * qloss.mean()
    loss.backward()
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


def straight_through_check(model, x):
    h = model.quant_conv(model.encoder(x)).detach().requires_grad_(True)
    quant, _, _ = model.quantize(h)
    w = torch.randn_like(quant)
    grad_h = torch.autograd.grad((quant * w).sum(), h)[0]
    return torch.equal(grad_h, w)


# ----------------------------------------------------------------------------------- training
def main():
    rng = np.random.RandomState(0)
    train = torch.from_numpy(make_images(rng, 160))
    val = torch.from_numpy(make_images(rng, 32))
    batch_size, steps, disc_start = 16, 80, 40

    model = VQModel()
    loss_fn = VQLPIPSWithDiscriminator(disc_start=disc_start, disc_num_layers=2, disc_ndf=16, disc_weight=0.8)
    n_disc = sum(p.numel() for p in loss_fn.discriminator.parameters())
    print('discriminator layers', len(loss_fn.discriminator.main), 'parameters', n_disc,
          'patch logits', tuple(loss_fn.discriminator(val[:2]).shape))

    lr = 2e-3
    opt_ae = torch.optim.Adam(list(model.encoder.parameters()) +
                              list(model.decoder.parameters()) +
                              list(model.quantize.parameters()) +
                              list(model.quant_conv.parameters()) +
                              list(model.post_quant_conv.parameters()),
                              lr=lr, betas=(0.5, 0.9))
    opt_disc = torch.optim.Adam(loss_fn.discriminator.parameters(), lr=lr, betas=(0.5, 0.9))

    # before disc_start the GAN term carries no gradient into the generator
    with_disc = generator_grads(model, loss_fn, train[:batch_size], True, 0)
    without = generator_grads(model, loss_fn, train[:batch_size], False, 0)
    no_gan_grad = len(with_disc) == len(without) and all(torch.equal(a, b) for a, b in zip(with_disc, without))
    after_start = generator_grads(model, loss_fn, train[:batch_size], True, disc_start)
    gan_grad_after = max((a - b).abs().max().item() for a, b in zip(after_start, without))
    print('generator grads before disc_start equal the no-disc run', no_gan_grad,
          '| differ after', gan_grad_after > 0)
    model.zero_grad(set_to_none=True)

    st_ok = straight_through_check(model, train[:4])
    print('straight-through gradient passes unchanged', st_ok)

    def val_rec():
        model.eval()
        loss_fn.eval()
        with torch.no_grad():
            xrec, qloss = model(val)
            loss, log = loss_fn(qloss, val, xrec, 0, global_step, last_layer=model.get_last_layer(), split="val")
        model.train()
        loss_fn.train()
        return log["val/rec_loss"].item(), log["val/d_weight"].item()

    global_step = 0
    rec0, eval_dw = val_rec()
    weight_errs = []
    for epoch in range(steps * batch_size // len(train)):
        perm = torch.randperm(len(train))
        for b in range(0, len(train), batch_size):
            x = train[perm[b:b + batch_size]]
            # optimizer_idx 0: autoencoder
            xrec, qloss = model(x)
            aeloss, log_ae = loss_fn(qloss, x, xrec, 0, global_step, last_layer=model.get_last_layer())
            opt_ae.zero_grad()
            aeloss.backward()
            opt_ae.step()
            # optimizer_idx 1: discriminator
            xrec, qloss = model(x)
            discloss, log_disc = loss_fn(qloss, x, xrec, 1, global_step, last_layer=model.get_last_layer())
            opt_disc.zero_grad()
            discloss.backward()
            opt_disc.step()
            if global_step % 20 == 10:
                d_weight, manual = adaptive_weight_second_route(model, loss_fn, x)
                weight_errs.append(abs(d_weight - manual) / manual)
                model.zero_grad(set_to_none=True)
                loss_fn.discriminator.zero_grad(set_to_none=True)
            global_step += 1
        rec, eval_dw = val_rec()
        print(f"epoch {epoch} step {global_step:4d} | rec {log_ae['train/rec_loss'].item():.4f} "
              f"quant {log_ae['train/quant_loss'].item():.4f} d_weight {log_ae['train/d_weight'].item():.4f} "
              f"disc_factor {log_ae['train/disc_factor'].item():.1f} | disc {log_disc['train/disc_loss'].item():.4f} "
              f"real {log_disc['train/logits_real'].item():.3f} fake {log_disc['train/logits_fake'].item():.3f} "
              f"| val rec {rec:.4f} eval d_weight {eval_dw:.1f}")

    with torch.no_grad():
        _, _, (perplexity, _, _) = model.quantize(model.quant_conv(model.encoder(val)))
    print(f"FINAL d_weight_rel_err={max(weight_errs):.6f} no_gan_grad_before_start={int(no_gan_grad)} "
          f"straight_through={int(st_ok)} eval_d_weight={eval_dw:.4f} rec_first={rec0:.4f} rec_last={rec:.4f} "
          f"rec_ratio={rec / rec0:.4f} code_perplexity={perplexity.item():.4f}")


if __name__ == "__main__":
    main()
