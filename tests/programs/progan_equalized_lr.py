"""ProGAN / StyleGAN pieces as the from-scratch ProGAN implementations write them, at 4x4 -> 16x16 on
synthetic blob images: equalised learning rate (``WSConv2d`` with its ``nn.Conv2d`` weight ~ N(0, 1)
and the input multiplied by ``self.scale = (gain / (in_channels * kernel_size ** 2)) ** 0.5``, the
bias taken off the conv and added after ``view(1, -1, 1, 1)``; ``WSLinear`` the same way), the
``PixelNorm`` of ``x / torch.sqrt(torch.mean(x ** 2, dim=1, keepdim=True) + 1e-8)``, the minibatch
standard deviation (``torch.std(x, dim=0).mean().repeat(x.shape[0], 1, x.shape[2], x.shape[3])`` +
``torch.cat``), progressive growing with the fade-in ``alpha`` blending a nearest ``F.interpolate(...,
scale_factor=2)`` upsampled RGB with the new block (``torch.tanh``) and ``nn.AvgPool2d(2)`` in the
critic, WGAN-GP by ``torch.autograd.grad(outputs=mixed_scores, inputs=interpolated_images,
grad_outputs=torch.ones_like(mixed_scores), create_graph=True, retain_graph=True)`` and
``gradient.view(b, -1).norm(2, dim=1)``, the drift term ``0.001 * torch.mean(critic_real ** 2)``,
Adam(betas=(0.0, 0.99)).
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

Z_DIM = 16
IN_CHANNELS = 16
CHANNELS_IMG = 3
LAMBDA_GP = 10
BATCH_SIZES = [16, 16, 16]
PROGRESSIVE_STEPS = [40, 50, 60]
LEARNING_RATE = 2e-3
factors = [1, 1, 1 / 2]


class WSConv2d(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=1, gain=2):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding)
        self.scale = (gain / (in_channels * (kernel_size ** 2))) ** 0.5
        self.bias = self.conv.bias
        self.conv.bias = None

        # initialize conv layer
        nn.init.normal_(self.conv.weight)
        nn.init.zeros_(self.bias)

    def forward(self, x):
        return self.conv(x * self.scale) + self.bias.view(1, self.bias.shape[0], 1, 1)


class WSLinear(nn.Module):
    def __init__(self, in_features, out_features, gain=2):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = (gain / in_features) ** 0.5

    def forward(self, x):
        return F.linear(x, self.weight * self.scale, self.bias)


class PixelNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.epsilon = 1e-8

    def forward(self, x):
        return x / torch.sqrt(torch.mean(x ** 2, dim=1, keepdim=True) + self.epsilon)


class ConvBlock(nn.Module):
    def __init__(self, in_channels, out_channels, use_pixelnorm=True):
        super().__init__()
        self.use_pn = use_pixelnorm
        self.conv1 = WSConv2d(in_channels, out_channels)
        self.conv2 = WSConv2d(out_channels, out_channels)
        self.leaky = nn.LeakyReLU(0.2)
        self.pn = PixelNorm()

    def forward(self, x):
        x = self.leaky(self.conv1(x))
        x = self.pn(x) if self.use_pn else x
        x = self.leaky(self.conv2(x))
        x = self.pn(x) if self.use_pn else x
        return x


class Generator(nn.Module):
    def __init__(self, z_dim, in_channels, img_channels=3):
        super().__init__()

        # initial takes 1x1 -> 4x4
        self.initial = nn.Sequential(
            PixelNorm(),
            nn.ConvTranspose2d(z_dim, in_channels, 4, 1, 0),
            nn.LeakyReLU(0.2),
            WSConv2d(in_channels, in_channels, kernel_size=3, stride=1, padding=1),
            nn.LeakyReLU(0.2),
            PixelNorm(),
        )

        self.initial_rgb = WSConv2d(in_channels, img_channels, kernel_size=1, stride=1, padding=0)
        self.prog_blocks, self.rgb_layers = (
            nn.ModuleList([]),
            nn.ModuleList([self.initial_rgb]),
        )

        for i in range(len(factors) - 1):  # -1 to prevent index error because of factors[i+1]
            conv_in_c = int(in_channels * factors[i])
            conv_out_c = int(in_channels * factors[i + 1])
            self.prog_blocks.append(ConvBlock(conv_in_c, conv_out_c))
            self.rgb_layers.append(WSConv2d(conv_out_c, img_channels, kernel_size=1, stride=1, padding=0))

    def fade_in(self, alpha, upscaled, generated):
        # alpha should be scalar within [0, 1], and upscale.shape == generated.shape
        return torch.tanh(alpha * generated + (1 - alpha) * upscaled)

    def forward(self, x, alpha, steps):
        out = self.initial(x)

        if steps == 0:
            return self.initial_rgb(out)

        for step in range(steps):
            upscaled = F.interpolate(out, scale_factor=2, mode="nearest")
            out = self.prog_blocks[step](upscaled)

        # The number of channels in upscale will stay the same, while
        # out which has moved through prog_blocks might change. To ensure
        # we can convert both to rgb we use different rgb_layers
        # (steps-1) and steps for upscaled, out respectively
        final_upscaled = self.rgb_layers[steps - 1](upscaled)
        final_out = self.rgb_layers[steps](out)
        return self.fade_in(alpha, final_upscaled, final_out)


class Discriminator(nn.Module):
    def __init__(self, z_dim, in_channels, img_channels=3):
        super().__init__()
        self.prog_blocks, self.rgb_layers = nn.ModuleList([]), nn.ModuleList([])
        self.leaky = nn.LeakyReLU(0.2)

        # here we work back ways from factors because the discriminator
        # should be mirrored from the generator.
        for i in range(len(factors) - 1, 0, -1):
            conv_in = int(in_channels * factors[i])
            conv_out = int(in_channels * factors[i - 1])
            self.prog_blocks.append(ConvBlock(conv_in, conv_out, use_pixelnorm=False))
            self.rgb_layers.append(WSConv2d(img_channels, conv_in, kernel_size=1, stride=1, padding=0))

        # perhaps confusing name "initial_rgb" this is just the RGB layer for 4x4 input size
        # did this to "mirror" the generator initial_rgb
        self.initial_rgb = WSConv2d(img_channels, in_channels, kernel_size=1, stride=1, padding=0)
        self.rgb_layers.append(self.initial_rgb)
        self.avg_pool = nn.AvgPool2d(kernel_size=2, stride=2)  # down sampling using avg pool

        # this is the block for 4x4 input size
        self.final_block = nn.Sequential(
            # +1 to in_channels because we concatenate from MiniBatch std
            WSConv2d(in_channels + 1, in_channels, kernel_size=3, padding=1),
            nn.LeakyReLU(0.2),
            WSConv2d(in_channels, in_channels, kernel_size=4, padding=0, stride=1),
            nn.LeakyReLU(0.2),
        )
        self.linear = WSLinear(in_channels, 1, gain=1)

    def fade_in(self, alpha, downscaled, out):
        """Used to fade in downscaled using avg pooling and output from CNN"""
        # alpha should be scalar within [0, 1], and upscale.shape == generated.shape
        return alpha * out + (1 - alpha) * downscaled

    def minibatch_std(self, x):
        batch_statistics = (
            torch.std(x, dim=0).mean().repeat(x.shape[0], 1, x.shape[2], x.shape[3])
        )
        # we take the std for each example (across all channels, and pixels) then we repeat it
        # for a single channel and concatenate it with the image. In this way the discriminator
        # will get information about the variation in the batch/image
        return torch.cat([x, batch_statistics], dim=1)

    def forward(self, x, alpha, steps):
        # where we should start in the list of prog_blocks, maybe a bit confusing but
        # the last is for the 4x4. So example let's say steps=1, then we should start
        # at the second to last because input_size will be 8x8. If steps==0 we just
        # use the final block
        cur_step = len(self.prog_blocks) - steps

        # convert from rgb as initial step, this will depend on
        # the image size (each will have it's on rgb layer)
        out = self.leaky(self.rgb_layers[cur_step](x))

        if steps == 0:  # i.e, image is 4x4
            out = self.minibatch_std(out)
            return self.linear(self.final_block(out).view(out.shape[0], -1))

        # because prog_blocks might change the channels, for down scale we use rgb_layer
        # from previous/smaller size which in our case correlates to +1 in the indexing
        downscaled = self.leaky(self.rgb_layers[cur_step + 1](self.avg_pool(x)))
        out = self.avg_pool(self.prog_blocks[cur_step](out))

        # the fade_in is done first between the downscaled and the input
        # this is opposite from the generator
        out = self.fade_in(alpha, downscaled, out)

        for step in range(cur_step + 1, len(self.prog_blocks)):
            out = self.prog_blocks[step](out)
            out = self.avg_pool(out)

        out = self.minibatch_std(out)
        return self.linear(self.final_block(out).view(out.shape[0], -1))


def gradient_penalty(critic, real, fake, alpha, train_step, device="cpu"):
    BATCH_SIZE, C, H, W = real.shape
    beta = torch.rand((BATCH_SIZE, 1, 1, 1)).repeat(1, C, H, W).to(device)
    interpolated_images = real * beta + fake.detach() * (1 - beta)
    interpolated_images.requires_grad_(True)

    # Calculate critic scores
    mixed_scores = critic(interpolated_images, alpha, train_step)

    # Take the gradient of the scores with respect to the images
    gradient = torch.autograd.grad(
        inputs=interpolated_images,
        outputs=mixed_scores,
        grad_outputs=torch.ones_like(mixed_scores),
        create_graph=True,
        retain_graph=True,
    )[0]
    gradient = gradient.view(gradient.shape[0], -1)
    gradient_norm = gradient.norm(2, dim=1)
    gradient_penalty = torch.mean((gradient_norm - 1) ** 2)
    return gradient_penalty


# ----------------------------------------------------------------------------- synthetic data
def make_blobs(n, size, rng):
    """Images in [-1, 1]: one soft blob of a class colour on a dark background."""
    yy, xx = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5, indexing="ij")
    colours = np.array([[1.0, -0.6, -0.6], [-0.6, 1.0, -0.6], [-0.6, -0.6, 1.0]])
    imgs = np.full((n, 3, size, size), -0.8)
    for i in range(n):
        cy, cx = rng.uniform(0.3, 0.7, size=2) * size
        r = rng.uniform(0.15, 0.25) * size
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        imgs[i] += blob[None] * (colours[rng.randint(3)] + 0.8)[:, None, None]
    return np.clip(imgs, -1, 1).astype(np.float32)


rng = np.random.RandomState(0)
dataset_hr = torch.from_numpy(make_blobs(96, 16, rng))


def get_loader(image_size):
    # transforms.Resize by box filtering the 16x16 images down to image_size
    k = 16 // image_size
    images = F.avg_pool2d(dataset_hr, k) if k > 1 else dataset_hr
    return images


# ----------------------------------------------------------------------------- equalised-lr checks
ws = WSConv2d(4, 6)
x_check = torch.randn(2, 4, 5, 5)
with torch.no_grad():
    ref = F.conv2d(x_check, ws.conv.weight * ws.scale, ws.bias, padding=1)
    ws_err = (ws(x_check) - ref).abs().max().item()
    wl = WSLinear(5, 3)
    lin_err = (wl(x_check[:, 0, 0]) - x_check[:, 0, 0] @ (wl.weight * wl.scale).t() - wl.bias).abs().max().item()
    pn = PixelNorm()(torch.randn(3, 8, 2, 2) * 5)
    pn_rms = pn.pow(2).mean(1).sqrt().mean().item()
    mb = torch.randn(5, 4, 3, 3)
    mb_out = Discriminator.minibatch_std(None, mb)
    mb_ref = float(np.std(mb.numpy().astype(np.float64), axis=0, ddof=1).mean())
    mb_err = abs(mb_out[0, -1, 0, 0].item() - mb_ref)
print(f"WSConv2d scale {ws.scale:.4f} err {ws_err:.2e}, WSLinear err {lin_err:.2e}, "
      f"PixelNorm rms {pn_rms:.4f}, minibatch std channel {tuple(mb_out.shape)} err {mb_err:.2e}")

# ----------------------------------------------------------------------------- train.py
gen = Generator(Z_DIM, IN_CHANNELS, img_channels=CHANNELS_IMG)
critic = Discriminator(Z_DIM, IN_CHANNELS, img_channels=CHANNELS_IMG)
opt_gen = optim.Adam(gen.parameters(), lr=LEARNING_RATE, betas=(0.0, 0.99))
opt_critic = optim.Adam(critic.parameters(), lr=LEARNING_RATE, betas=(0.0, 0.99))
fixed_noise = torch.randn(64, Z_DIM, 1, 1)


@torch.no_grad()
def mean_image_distance(step, alpha=1.0):
    gen.eval()
    fake = gen(fixed_noise, alpha, step)
    gen.train()
    real = get_loader(4 * 2 ** step)
    # distance between the mean images and between the per-pixel stds
    return ((fake.mean(0) - real.mean(0)).pow(2).mean().sqrt().item()
            + (fake.std(0) - real.std(0)).pow(2).mean().sqrt().item())


dist_init = mean_image_distance(len(factors) - 1)


def train_fn(critic, gen, images, step, alpha, n_iters, batch_size):
    for _ in range(n_iters):
        idx = torch.randperm(images.shape[0])[:batch_size]
        real = images[idx]
        cur_batch_size = real.shape[0]

        # Train Critic: max E[critic(real)] - E[critic(fake)] <-> min -E[critic(real)] + E[critic(fake)]
        # which is equivalent to minimizing the negative of the expression
        noise = torch.randn(cur_batch_size, Z_DIM, 1, 1)

        fake = gen(noise, alpha, step)
        critic_real = critic(real, alpha, step)
        critic_fake = critic(fake.detach(), alpha, step)
        gp = gradient_penalty(critic, real, fake, alpha, step)
        loss_critic = (
            -(torch.mean(critic_real) - torch.mean(critic_fake))
            + LAMBDA_GP * gp
            + (0.001 * torch.mean(critic_real ** 2))
        )

        critic.zero_grad()
        loss_critic.backward()
        opt_critic.step()

        # Train Generator: max E[critic(gen_fake)] <-> min -E[critic(gen_fake)]
        gen_fake = critic(fake, alpha, step)
        loss_gen = -torch.mean(gen_fake)

        gen.zero_grad()
        loss_gen.backward()
        opt_gen.step()

        # Update alpha and ensure less than 1
        alpha += cur_batch_size / (n_iters * 0.5 * batch_size)
        alpha = min(alpha, 1)
    return alpha, loss_critic.item(), loss_gen.item(), gp.item()


for step in range(len(factors)):
    alpha = 1e-5  # start with very low alpha
    images = get_loader(4 * 2 ** step)
    print(f"Current image size: {4 * 2 ** step}")
    alpha, loss_critic, loss_gen, gp = train_fn(
        critic, gen, images, step, alpha, PROGRESSIVE_STEPS[step], BATCH_SIZES[step])
    print(f"step {step}: alpha {alpha:.3f} loss_critic {loss_critic:.4f} loss_gen {loss_gen:.4f} gp {gp:.4f} "
          f"distance {mean_image_distance(step):.4f}")

final_step = len(factors) - 1
with torch.no_grad():
    samples = gen(fixed_noise[:8], 1.0, final_step)
    real = get_loader(16)
    w_est = (critic(real[:64], 1.0, final_step).mean() - critic(
        gen(fixed_noise, 1.0, final_step), 1.0, final_step).mean()).item()
print(f"samples {tuple(samples.shape)} in [{samples.min().item():.3f}, {samples.max().item():.3f}]")
dist_final = mean_image_distance(final_step)
# the fade-in: alpha=0 gives the upsampled previous RGB, through tanh
with torch.no_grad():
    out = gen.initial(fixed_noise[:4])
    for s in range(final_step):
        up = F.interpolate(out, scale_factor=2, mode="nearest")
        out = gen.prog_blocks[s](up)
    fade_err = (gen(fixed_noise[:4], 0.0, final_step) - torch.tanh(gen.rgb_layers[final_step - 1](up))).abs().max().item()
    sample_std = samples.std(0).mean().item()
print(f"fade-in alpha=0 err {fade_err:.2e}, sample std {sample_std:.4f}")
print(f"FINAL dist_init={dist_init:.4f} dist_final={dist_final:.4f} w_est={w_est:.4f} gp={gp:.4f} "
      f"sample_std={sample_std:.4f} ws_err={ws_err + lin_err + mb_err + fade_err:.6f} pn_rms={pn_rms:.4f} "
      f"scale={ws.scale * math.sqrt(36):.4f}")
