"""Slot Attention (Locatello et al.) as the PyTorch ports write the object-discovery autoencoder, on
synthetic sprites at 12x12.

``SlotAttention``: slots drawn as ``mu + sigma.exp() * torch.randn(...)`` from learned
``slots_mu``/``slots_logsigma`` (``init.xavier_uniform_``), ``torch.einsum('bid,bjd->bij', q, k) *
self.scale``, the softmax over the slots (``dim=1``) plus ``eps`` and the weighted mean over the
inputs, ``torch.einsum('bjd,bij->bid', v, attn)``, ``nn.GRUCell`` on ``updates.reshape(-1, d)``, a
residual MLP, three ``nn.LayerNorm``s. The CNN encoder adds a soft position embedding (a
``nn.Linear(4, hidden)`` of the grid from ``torch.meshgrid(..., indexing='ij')`` and
``torch.cat([grid, 1 - grid], dim=-1)``, a buffer), flattens by ``torch.flatten(x, 1, 2)``; the
spatial-broadcast decoder tiles each slot by ``repeat((1, H, W, 1))``, decodes RGB + an alpha
logit per slot, and recombines with ``softmax(dim=1)`` over the slots. ``F.mse_loss``, Adam with a
linear warm-up then exponential decay by ``LambdaLR``, ``clip_grad_norm_``. Evaluation: the
foreground adjusted Rand index of the slot masks against the sprites, the reconstruction with
the slots permuted (the decoder is permutation-invariant), and with more slots at test time.

The data: black 12x12 images with two or three coloured squares and discs, made with NumPy.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn import init

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

RESOLUTION = (12, 12)
NUM_SLOTS = 4
HID = 32


def make_sprites(n):
    H, W = RESOLUTION
    yy, xx = np.mgrid[0:H, 0:W]
    images = np.zeros((n, 3, H, W), dtype=np.float32)
    masks = np.zeros((n, H, W), dtype=np.int64)  # 0 is the background
    palette = np.array([[1.0, 0.2, 0.2], [0.2, 1.0, 0.2], [0.3, 0.4, 1.0], [1.0, 1.0, 0.2], [1.0, 0.3, 1.0]],
                       dtype=np.float32)
    for i in range(n):
        for obj in range(1, rng.integers(2, 4) + 1):
            cy, cx = rng.uniform(2.5, H - 2.5), rng.uniform(2.5, W - 2.5)
            r = rng.uniform(1.6, 2.6)
            if rng.random() < 0.5:
                inside = (np.abs(yy - cy) < r) & (np.abs(xx - cx) < r)
            else:
                inside = np.hypot(yy - cy, xx - cx) < r
            images[i][:, inside] = palette[rng.integers(0, len(palette))][:, None]
            masks[i][inside] = obj
    return torch.from_numpy(images), torch.from_numpy(masks)


def build_grid(resolution):
    ranges = [torch.linspace(0.0, 1.0, steps=res) for res in resolution]
    grid = torch.meshgrid(*ranges, indexing="ij")
    grid = torch.stack(grid, dim=-1)
    grid = torch.reshape(grid, [resolution[0], resolution[1], -1])
    grid = grid.unsqueeze(0)
    return torch.cat([grid, 1.0 - grid], dim=-1)


class SoftPositionEmbed(nn.Module):
    def __init__(self, hidden_size, resolution):
        super().__init__()
        self.embedding = nn.Linear(4, hidden_size, bias=True)
        self.register_buffer("grid", build_grid(resolution))

    def forward(self, inputs):
        return inputs + self.embedding(self.grid)


class SlotAttention(nn.Module):
    def __init__(self, num_slots, dim, iters=3, eps=1e-8, hidden_dim=64):
        super().__init__()
        self.num_slots = num_slots
        self.iters = iters
        self.eps = eps
        self.scale = dim ** -0.5

        self.slots_mu = nn.Parameter(torch.randn(1, 1, dim))
        self.slots_logsigma = nn.Parameter(torch.zeros(1, 1, dim))
        init.xavier_uniform_(self.slots_logsigma)

        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        self.gru = nn.GRUCell(dim, dim)
        hidden_dim = max(dim, hidden_dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, dim))

        self.norm_input = nn.LayerNorm(dim)
        self.norm_slots = nn.LayerNorm(dim)
        self.norm_pre_ff = nn.LayerNorm(dim)

    def forward(self, inputs, num_slots=None):
        b, _, d, device, dtype = *inputs.shape, inputs.device, inputs.dtype
        n_s = num_slots if num_slots is not None else self.num_slots

        mu = self.slots_mu.expand(b, n_s, -1)
        sigma = self.slots_logsigma.exp().expand(b, n_s, -1)
        slots = mu + sigma * torch.randn(mu.shape, device=device, dtype=dtype)

        inputs = self.norm_input(inputs)
        k, v = self.to_k(inputs), self.to_v(inputs)

        for _ in range(self.iters):
            slots_prev = slots
            slots = self.norm_slots(slots)
            q = self.to_q(slots)

            dots = torch.einsum("bid,bjd->bij", q, k) * self.scale
            attn = dots.softmax(dim=1) + self.eps
            attn = attn / attn.sum(dim=-1, keepdim=True)
            updates = torch.einsum("bjd,bij->bid", v, attn)

            slots = self.gru(updates.reshape(-1, d), slots_prev.reshape(-1, d))
            slots = slots.reshape(b, -1, d)
            slots = slots + self.mlp(self.norm_pre_ff(slots))
        return slots, attn


class Encoder(nn.Module):
    def __init__(self, resolution, hid_dim):
        super().__init__()
        self.conv1 = nn.Conv2d(3, hid_dim, 5, padding=2)
        self.conv2 = nn.Conv2d(hid_dim, hid_dim, 5, padding=2)
        self.encoder_pos = SoftPositionEmbed(hid_dim, resolution)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = x.permute(0, 2, 3, 1)
        x = self.encoder_pos(x)
        return torch.flatten(x, 1, 2)


class Decoder(nn.Module):
    def __init__(self, hid_dim, resolution):
        super().__init__()
        self.conv1 = nn.Conv2d(hid_dim, hid_dim, 3, padding=1)
        self.conv2 = nn.Conv2d(hid_dim, 4, 3, padding=1)
        self.decoder_initial_size = resolution
        self.decoder_pos = SoftPositionEmbed(hid_dim, self.decoder_initial_size)
        self.resolution = resolution

    def forward(self, x):
        x = self.decoder_pos(x)
        x = x.permute(0, 3, 1, 2)
        x = F.relu(self.conv1(x))
        x = self.conv2(x)
        return x.permute(0, 2, 3, 1)


class SlotAttentionAutoEncoder(nn.Module):
    def __init__(self, resolution, num_slots, num_iterations, hid_dim):
        super().__init__()
        self.hid_dim = hid_dim
        self.resolution = resolution
        self.num_slots = num_slots
        self.num_iterations = num_iterations

        self.encoder_cnn = Encoder(self.resolution, self.hid_dim)
        self.decoder_cnn = Decoder(self.hid_dim, self.resolution)
        self.fc1 = nn.Linear(hid_dim, hid_dim)
        self.fc2 = nn.Linear(hid_dim, hid_dim)
        self.layer_norm = nn.LayerNorm(hid_dim)
        self.slot_attention = SlotAttention(num_slots=self.num_slots, dim=hid_dim, iters=self.num_iterations,
                                            eps=1e-8, hidden_dim=64)

    def encode(self, image, num_slots=None):
        x = self.encoder_cnn(image)
        x = self.fc2(F.relu(self.fc1(self.layer_norm(x))))
        return self.slot_attention(x, num_slots)

    def decode(self, slots):
        B = slots.shape[0]
        x = slots.reshape((-1, slots.shape[-1])).unsqueeze(1).unsqueeze(2)
        x = x.repeat((1, self.resolution[0], self.resolution[1], 1))
        x = self.decoder_cnn(x)
        x = x.reshape(B, -1, x.shape[1], x.shape[2], x.shape[3])
        recons, masks = x.split([3, 1], dim=-1)
        masks = nn.Softmax(dim=1)(masks)
        recon_combined = torch.sum(recons * masks, dim=1)
        recon_combined = recon_combined.permute(0, 3, 1, 2)
        return recon_combined, recons, masks

    def forward(self, image, num_slots=None):
        slots, attn = self.encode(image, num_slots)
        recon_combined, recons, masks = self.decode(slots)
        return recon_combined, recons, masks, slots, attn


def adjusted_rand_index(true_ids, pred_ids, num_true, num_pred, foreground_only=True):
    """ARI per image from the contingency table ``einsum('bni,bnj->bij')`` of one-hot labels."""
    true_oh = F.one_hot(true_ids.flatten(1), num_true).float()
    pred_oh = F.one_hot(pred_ids.flatten(1), num_pred).float()
    if foreground_only:
        true_oh = true_oh[..., 1:]  # background pixels drop out of the table
    n_ij = torch.einsum("bni,bnj->bij", true_oh, pred_oh)
    a, b = n_ij.sum(-1), n_ij.sum(-2)
    n = a.sum(-1)
    rindex = (n_ij * (n_ij - 1)).sum((1, 2))
    aindex = (a * (a - 1)).sum(1)
    bindex = (b * (b - 1)).sum(1)
    expected = aindex * bindex / (n * (n - 1)).clamp(min=1)
    max_index = (aindex + bindex) / 2
    return torch.where(max_index == expected, torch.ones_like(n), (rindex - expected) / (max_index - expected))


train_x, train_masks = make_sprites(128)
test_x, test_masks = make_sprites(48)
print(f"data {tuple(train_x.shape)}, objects per image {train_masks.flatten(1).max(1).values.float().mean().item():.2f}")

model = SlotAttentionAutoEncoder(RESOLUTION, NUM_SLOTS, num_iterations=3, hid_dim=HID)
print(f"parameters {sum(p.numel() for p in model.parameters())}, grid buffer "
      f"{tuple(model.encoder_cnn.encoder_pos.grid.shape)}, buffers {[n for n, _ in model.named_buffers()]}")
grid = model.encoder_cnn.encoder_pos.grid
print(f"grid corners {grid[0, 0, 0].tolist()} {grid[0, -1, -1].tolist()}")

BASE_LR, WARMUP, DECAY_RATE, DECAY_STEPS = 4e-3, 10, 0.5, 100
STEPS, BATCH = 100, 16
optimizer = torch.optim.Adam(model.parameters(), lr=BASE_LR)


def lr_lambda(step):
    warmup = step / WARMUP if step < WARMUP else 1.0
    return warmup * DECAY_RATE ** (step / DECAY_STEPS)


scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
running = 0.0
for step in range(STEPS):
    index = torch.randint(0, len(train_x), (BATCH,))
    image = train_x[index]
    recon_combined, recons, masks, slots, attn = model(image)
    loss = F.mse_loss(recon_combined, image)
    optimizer.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    running += loss.item()
    if (step + 1) % 25 == 0:
        print(f"step {step + 1} mse {running / 25:.5f} lr {scheduler.get_last_lr()[0]:.6f} "
              f"sigma {model.slot_attention.slots_logsigma.exp().mean().item():.4f}")
        running = 0.0

print(f"shapes recon {tuple(recon_combined.shape)} recons {tuple(recons.shape)} masks {tuple(masks.shape)} "
      f"slots {tuple(slots.shape)} attn {tuple(attn.shape)}")

model.eval()
with torch.no_grad():
    torch.manual_seed(seed + 1)
    recon_combined, recons, masks, slots, attn = model(test_x)
    test_mse = F.mse_loss(recon_combined, test_x).item()
    mask_sums_to_one = torch.allclose(masks.sum(dim=1), torch.ones_like(masks[:, 0]), atol=1e-5)
    attn_rows = torch.allclose(attn.sum(dim=-1), torch.ones(attn.shape[:2]), atol=1e-5)
    pred_ids = masks.squeeze(-1).argmax(dim=1)
    ari = adjusted_rand_index(test_masks, pred_ids, 4, NUM_SLOTS).mean().item()
    permuted = slots[:, torch.randperm(NUM_SLOTS)]
    recon_permuted, _, _ = model.decode(permuted)
    permutation_gap = (recon_permuted - recon_combined).abs().max().item()
    recon_more, _, masks_more, slots_more, _ = model(test_x, num_slots=NUM_SLOTS + 2)
    mse_more_slots = F.mse_loss(recon_more, test_x).item()
print(f"masks sum to one {mask_sums_to_one}, attention rows sum to one {attn_rows}, "
      f"permuted slots decode alike {permutation_gap < 1e-5}, slots with more {tuple(slots_more.shape)}")
print(f"FINAL test_mse={test_mse:.5f} fg_ari={ari:.4f} mse_more_slots={mse_more_slots:.5f} "
      f"lr_end={scheduler.get_last_lr()[0] / BASE_LR:.4f} "
      f"mask_sum_ok={float(mask_sums_to_one):.1f} permutation_ok={float(permutation_gap < 1e-5):.1f} "
      f"decay_check={math.isclose(lr_lambda(STEPS), DECAY_RATE ** (STEPS / DECAY_STEPS)):d}")
