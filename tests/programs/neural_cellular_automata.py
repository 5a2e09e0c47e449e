"""Growing Neural Cellular Automata (distill.pub, 2020) in its PyTorch port, at a 16x16 grid.

Perception by a depthwise ``F.conv2d(x, kernel[:, None].repeat(channels, 1, 1, 1), padding=1,
groups=channels)`` with identity and Sobel filters built by ``torch.tensor`` + ``torch.outer`` and
``torch.stack``ed (rotatable by an angle; checked against a per-channel ``reshape(b * ch, 1, h, w)``
convolution), the update rule as 1x1 ``nn.Conv2d``s with the last one ``zero_()``-initialised under
``torch.no_grad()``, the stochastic update mask ``(torch.rand(b, 1, h, w) <= fire_rate).float()``,
alive masking by ``F.max_pool2d(x[:, 3:4], 3, 1, 1) > 0.1`` before and after the update, the sample
pool (``torch.randint`` batches, sorted by ``argsort(descending=True)`` of per-sample losses, the worst
replaced by the seed, the best damaged by circle masks), per-parameter gradient normalisation
``p.grad / (p.grad.norm() + 1e-8)``, ``Adam`` + ``MultiStepLR``; then growth from the seed,
damage and regeneration. The target: a synthetic premultiplied RGBA disc with a ring.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

CHANNEL_N = 16        # Number of CA state channels
TARGET_PADDING = 2    # Number of pixels used to pad the target image border
TARGET_SIZE = 12
BATCH_SIZE = 8
POOL_SIZE = 64
CELL_FIRE_RATE = 0.5
DAMAGE_N = 2


def load_target():
    """A premultiplied RGBA emoji stand-in: a coloured disc with a darker ring."""
    yy, xx = np.mgrid[0:TARGET_SIZE, 0:TARGET_SIZE].astype(np.float32)
    c = (TARGET_SIZE - 1) / 2.0
    r = np.sqrt((yy - c) ** 2 + (xx - c) ** 2)
    alpha = (r < TARGET_SIZE * 0.45).astype(np.float32)
    hue = rng.uniform(0.2, 0.9, size=3).astype(np.float32)
    rgb = np.stack([hue[0] * (1 - xx / TARGET_SIZE), hue[1] * np.ones_like(xx), hue[2] * yy / TARGET_SIZE])
    ring = ((r > TARGET_SIZE * 0.25) & (r < TARGET_SIZE * 0.33)).astype(np.float32)
    rgb = rgb * (1 - 0.7 * ring)
    img = np.concatenate([rgb * alpha, alpha[None]], 0)
    return torch.from_numpy(img.astype(np.float32))


def to_rgb(x):
    rgb, a = x[:, :3], x[:, 3:4].clamp(0.0, 1.0)
    return 1.0 - a + rgb


class CAModel(nn.Module):
    def __init__(self, channel_n, fire_rate, hidden_size=64):
        super().__init__()
        self.channel_n = channel_n
        self.fire_rate = fire_rate
        self.fc0 = nn.Conv2d(channel_n * 3, hidden_size, kernel_size=1)
        self.fc1 = nn.Conv2d(hidden_size, channel_n, kernel_size=1, bias=False)
        with torch.no_grad():
            self.fc1.weight.zero_()
        ident = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
        sobel_x = torch.outer(torch.tensor([1.0, 2.0, 1.0]), torch.tensor([-1.0, 0.0, 1.0])) / 8.0
        self.register_buffer("ident", ident)
        self.register_buffer("sobel_x", sobel_x)

    def alive(self, x):
        return F.max_pool2d(x[:, 3:4, :, :], kernel_size=3, stride=1, padding=1) > 0.1

    def perception_kernel(self, angle=0.0):
        c, s = math.cos(angle), math.sin(angle)
        dx = c * self.sobel_x - s * self.sobel_x.T
        dy = s * self.sobel_x + c * self.sobel_x.T
        return torch.stack([self.ident, dx, dy])

    def perceive(self, x, angle=0.0):
        kernel = self.perception_kernel(angle)
        return F.conv2d(x, kernel[:, None].repeat(self.channel_n, 1, 1, 1), padding=1, groups=self.channel_n)

    def update(self, x, fire_rate, angle):
        pre_life_mask = self.alive(x)

        dx = self.perceive(x, angle)
        dx = self.fc0(dx)
        dx = F.relu(dx)
        dx = self.fc1(dx)

        if fire_rate is None:
            fire_rate = self.fire_rate
        stochastic = (torch.rand(x.size(0), 1, x.size(2), x.size(3)) <= fire_rate).float()
        x = x + dx * stochastic

        post_life_mask = self.alive(x)
        life_mask = (pre_life_mask & post_life_mask).float()
        return x * life_mask

    def forward(self, x, steps=1, fire_rate=None, angle=0.0):
        for _step in range(steps):
            x = self.update(x, fire_rate, angle)
        return x


def make_circle_masks(n, h, w):
    x = torch.linspace(-1.0, 1.0, w)[None, None, :]
    y = torch.linspace(-1.0, 1.0, h)[None, :, None]
    center = torch.rand(2, n, 1, 1) - 0.5
    r = torch.rand(n, 1, 1) * 0.3 + 0.1
    x, y = (x - center[0]) / r, (y - center[1]) / r
    mask = (x * x + y * y < 1.0).float()
    return mask


def loss_f(x, target):
    return torch.mean(torch.pow(x[:, :4, :, :] - target, 2), [-2, -3, -1])


target_img = load_target()
pad_target = F.pad(target_img, (TARGET_PADDING,) * 4)
h, w = pad_target.shape[-2:]
seed_state = torch.zeros(CHANNEL_N, h, w)
seed_state[3:, h // 2, w // 2] = 1.0
target = pad_target[None]

ca = CAModel(CHANNEL_N, CELL_FIRE_RATE)
print("parameters:", sum(p.numel() for p in ca.parameters()), "fc1 zero:", bool((ca.fc1.weight == 0).all()))
print("perception kernel:", tuple(ca.perceive(seed_state[None]).shape),
      "sobel_x row sums zero:", bool((ca.sobel_x.sum(1) == 0).all()))

# the grouped convolution must equal the per-channel one (the self-organising-textures form)
probe = torch.rand(2, CHANNEL_N, h, w)
kernel = ca.perception_kernel(0.3)
per_channel = F.conv2d(probe.reshape(2 * CHANNEL_N, 1, h, w), kernel[:, None], padding=1).reshape(2, -1, h, w)
print("depthwise == per-channel:", torch.allclose(ca.perceive(probe, 0.3), per_channel, atol=1e-6))

# one step from the seed with a zero last layer changes nothing
with torch.no_grad():
    print("zero-init step is identity:", torch.equal(ca(seed_state[None], steps=1), seed_state[None]))

optimizer = torch.optim.Adam(ca.parameters(), lr=2e-3, betas=(0.5, 0.5))
scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [30, 40], gamma=0.3)

pool = seed_state.clone().repeat(POOL_SIZE, 1, 1, 1)
n_iters = 45
for i in range(n_iters + 1):
    batch_idx = torch.randint(POOL_SIZE, (BATCH_SIZE,))
    x0 = pool[batch_idx]
    with torch.no_grad():
        loss_rank = loss_f(x0, target).argsort(descending=True)
    x0 = x0[loss_rank]
    x0[:1] = seed_state
    if i > 15:
        damage = 1.0 - make_circle_masks(DAMAGE_N, h, w)[:, None]
        x0[-DAMAGE_N:] *= damage

    n_steps = int(torch.randint(12, 20, (1,)))
    x = ca(x0, steps=n_steps)
    loss = loss_f(x, target).mean()
    optimizer.zero_grad()
    loss.backward()
    for p in ca.parameters():
        p.grad = p.grad / (p.grad.norm() + 1e-8)  # normalize gradients
    optimizer.step()
    scheduler.step()

    pool[batch_idx] = x.detach()
    if i % 15 == 0:
        print(f"iter {i}: loss {loss.item():.5f} log10 {math.log10(loss.item()):.3f} "
              f"lr {scheduler.get_last_lr()[0]:.6f}")

# growth from the seed, then damage and regeneration
with torch.no_grad():
    x = seed_state[None].repeat(4, 1, 1, 1)
    x = ca(x, steps=20)
    grown_loss = loss_f(x, target).mean().item()
    alive = ca.alive(x).float().mean().item()
    mask = make_circle_masks(4, h, w)[:, None]
    damaged = x * (1.0 - mask)
    damaged_loss = loss_f(damaged, target).mean().item()
    regrown = ca(damaged, steps=20)
    regrown_loss = loss_f(regrown, target).mean().item()
    rgb = to_rgb(regrown)
    seed_loss = loss_f(seed_state[None], target).mean().item()
print(f"seed loss {seed_loss:.4f} grown {grown_loss:.4f} damaged {damaged_loss:.4f} regrown {regrown_loss:.4f}")
print("rgb shape:", tuple(rgb.shape), "alive fraction:", f"{alive:.3f}")
print(f"FINAL grown_loss={grown_loss:.4f} regrown_loss={regrown_loss:.4f} "
      f"improvement={seed_loss / grown_loss:.3f}")
