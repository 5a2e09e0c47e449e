"""TokenLearner (Ryoo et al. 2021, "TokenLearner: What Can 8 Learned Tokens Do for Images and
Videos?"; google-research/scenic's ``TokenLearnerModule``/``TokenLearnerModuleV11``/``TokenFuser``,
and the PyTorch ports used by RT-1 and lucidrains' robotic-transformer / max-vit) on synthetic images.

A small ViT-style classifier: a strided ``nn.Conv2d`` patch embedding (16x16 image -> 8x8 = 64
tokens), ``trunc_normal_`` position embeddings, one pre-LayerNorm block over the 64 tokens
(``nn.MultiheadAttention(batch_first=True)`` + GELU MLP), then a TokenLearner that turns the feature
map into S = 8 learned tokens: a ``nn.Conv2d`` stack (scenic's v1) ending in S channels,
``torch.sigmoid`` maps flattened to (B, S, H*W), pooled by
``torch.einsum('bsn,bnc->bsc', attn, x.flatten(2).transpose(1, 2))`` (the MLP + ``softmax`` over H*W
of TokenLearnerModuleV11 is also built and checked); a second block runs on the 8 tokens only; a
TokenFuser maps the tokens back with a LayerNorm'd token-mixing ``nn.Linear(S, S)`` on
``tokens.transpose(1, 2)``, a sigmoid mix computed from the pre-learner map, and
``torch.einsum('bsc,bsn->bcn', tokens, mix).view(B, C, H, W)`` added to that map; mean pooling and a
linear head. AdamW with ``weight_decay`` on matrices only, ``LambdaLR`` warm-up + cosine,
``clip_grad_norm_``. The task: how many bright blobs (1 to 4) an image holds.

Checks: the einsum pooling equals ``torch.bmm`` and a Python loop over tokens (values and gradients,
for the sigmoid and the softmax learners); the fuser's einsum equals ``bmm`` + ``view``; lucidrains'
grouped form (``x.repeat(1, S, 1, 1)`` through ``Conv2d(groups=S)``, ``(x * attn).mean``) equals a
loop of per-token 1x1 convolutions sliced out of the grouped weight.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

IMG, PATCH, DIM, NUM_TOKENS = 16, 2, 32, 8
MAX_BLOBS = 4


class TokenLearnerModule(nn.Module):
    """scenic v1: LayerNorm, a 3x3 conv stack with GELU, the last conv to S maps, sigmoid."""

    def __init__(self, in_channels, num_tokens=8, num_layers=2):
        super().__init__()
        self.num_tokens = num_tokens
        self.norm = nn.LayerNorm(in_channels)
        layers = []
        for _ in range(num_layers - 1):
            layers += [nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1, bias=False), nn.GELU()]
        layers.append(nn.Conv2d(in_channels, num_tokens, kernel_size=3, padding=1, bias=False))
        self.attention_maps = nn.Sequential(*layers)

    def forward(self, x, return_maps=False):
        B, C, H, W = x.shape
        selected = self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        selected = self.attention_maps(selected)  # B, S, H, W
        selected = torch.sigmoid(selected.view(B, self.num_tokens, H * W))  # B, S, HW
        feat = x.flatten(2).transpose(1, 2)  # B, HW, C
        tokens = torch.einsum('bsn,bnc->bsc', selected, feat)
        tokens = tokens / (H * W)  # scenic averages: the maps are not normalised
        if return_maps:
            return tokens, selected
        return tokens


class TokenLearnerModuleV11(nn.Module):
    """scenic v1.1: LayerNorm + MLP to S logits per position, softmax over H*W."""

    def __init__(self, in_channels, num_tokens=8, bottleneck_dim=64, dropout_rate=0.0):
        super().__init__()
        self.num_tokens = num_tokens
        self.norm = nn.LayerNorm(in_channels)
        self.mlp = nn.Sequential(
            nn.Linear(in_channels, bottleneck_dim),
            nn.GELU(),
            nn.Dropout(dropout_rate),
            nn.Linear(bottleneck_dim, num_tokens),
        )

    def forward(self, x, return_maps=False):
        feat = x.flatten(2).transpose(1, 2)  # B, HW, C
        selected = self.mlp(self.norm(feat))  # B, HW, S
        selected = selected.transpose(1, 2)  # B, S, HW
        selected = F.softmax(selected, dim=-1)
        tokens = torch.einsum('bsn,bnc->bsc', selected, feat)
        if return_maps:
            return tokens, selected
        return tokens


class TokenFuser(nn.Module):
    def __init__(self, in_channels, num_tokens=8, dropout_rate=0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(in_channels)
        self.token_mix = nn.Linear(num_tokens, num_tokens)
        self.norm2 = nn.LayerNorm(in_channels)
        self.mix = nn.Linear(in_channels, num_tokens)
        self.dropout = nn.Dropout(dropout_rate)

    def forward(self, tokens, original, return_mix=False):
        B, C, H, W = original.shape
        tokens = self.norm1(tokens)
        tokens = self.token_mix(tokens.transpose(1, 2)).transpose(1, 2)  # B, S, C
        orig = original.flatten(2).transpose(1, 2)  # B, HW, C
        mix = torch.sigmoid(self.mix(self.norm2(orig))).transpose(1, 2)  # B, S, HW
        fused = torch.einsum('bsc,bsn->bcn', tokens, mix).view(B, C, H, W)
        fused = self.dropout(fused)
        if return_mix:
            return fused, tokens, mix
        return fused


class GroupedTokenLearner(nn.Module):
    """lucidrains' RT-1 / max-vit TokenLearner: the map repeated S times through grouped 1x1 convs."""

    def __init__(self, dim, ff_mult=2, num_output_tokens=8):
        super().__init__()
        inner_dim = dim * ff_mult * num_output_tokens
        self.num_output_tokens = num_output_tokens
        self.net = nn.Sequential(
            nn.Conv2d(dim * num_output_tokens, inner_dim, 1, groups=num_output_tokens),
            nn.GELU(),
            nn.Conv2d(inner_dim, num_output_tokens, 1, groups=num_output_tokens),
        )

    def forward(self, x):
        b, c, h, w = x.shape
        g = self.num_output_tokens
        x = x.repeat(1, g, 1, 1)  # b (g c) h w
        attn = self.net(x).unsqueeze(1)  # b 1 g h w
        x = x.view(b, g, c, h, w).transpose(1, 2)  # b c g h w
        return (x * attn).mean(dim=(-2, -1))  # b c g


class Block(nn.Module):
    def __init__(self, dim, heads=4, mlp_ratio=2):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * mlp_ratio), nn.GELU(), nn.Linear(dim * mlp_ratio, dim))

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class TokenLearnerViT(nn.Module):
    def __init__(self, num_classes=MAX_BLOBS, dim=DIM, num_tokens=NUM_TOKENS):
        super().__init__()
        self.grid = IMG // PATCH
        self.patch_embed = nn.Conv2d(3, dim, kernel_size=PATCH, stride=PATCH)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid * self.grid, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.block1 = Block(dim)
        self.token_learner = TokenLearnerModule(dim, num_tokens)
        self.block2 = Block(dim)
        self.token_fuser = TokenFuser(dim, num_tokens)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m):
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x, return_tokens=False):
        x = self.patch_embed(x)  # B, C, 8, 8
        B, C, H, W = x.shape
        x = x.flatten(2).transpose(1, 2) + self.pos_embed  # B, 64, C
        x = self.block1(x)
        fmap = x.transpose(1, 2).reshape(B, C, H, W)
        tokens = self.token_learner(fmap)  # B, 8, C
        tokens = self.block2(tokens)
        fused = self.token_fuser(tokens, fmap) + fmap
        out = self.head(self.norm(fused.mean(dim=(2, 3))))
        if return_tokens:
            return out, tokens
        return out


def make_blobs(n, rng):
    labels = rng.integers(0, MAX_BLOBS, size=n)
    images = 0.4 * rng.standard_normal((n, 3, IMG, IMG)).astype(np.float32)
    half = IMG // 2
    for i, c in enumerate(labels):
        for q in rng.permutation(4)[:c + 1]:  # c + 1 blobs, one per quadrant
            r0 = (q // 2) * half + rng.integers(0, half - 3)
            c0 = (q % 2) * half + rng.integers(0, half - 3)
            images[i, :, r0:r0 + 3, c0:c0 + 3] += rng.uniform(0.8, 1.6, size=(3, 1, 1))
    return torch.from_numpy(images.astype(np.float32)), torch.from_numpy(labels.astype(np.int64))


def pooling_err(learner, x):
    """einsum pooling vs bmm vs a loop over tokens: values, and the gradients through each."""
    tokens, maps = learner(x, return_maps=True)
    feat = x.flatten(2).transpose(1, 2)
    scale = tokens.detach().abs().sum() / torch.einsum('bsn,bnc->bsc', maps, feat).detach().abs().sum()
    via_bmm = torch.bmm(maps, feat) * scale
    via_loop = torch.stack([(maps[:, s, :, None] * feat).sum(dim=1) for s in range(maps.size(1))], dim=1) * scale
    w = torch.randn_like(tokens)
    grads = [torch.autograd.grad((t * w).sum(), x, retain_graph=True)[0] for t in (tokens, via_bmm, via_loop)]
    return max((tokens - via_bmm).abs().max().item(), (tokens - via_loop).abs().max().item(),
               (grads[0] - grads[1]).abs().max().item(), (grads[0] - grads[2]).abs().max().item())


rng = np.random.default_rng(seed)

# --- the pooling, the fuser and the grouped learner against their plain formulations
x = torch.randn(3, DIM, 6, 5, requires_grad=True)
learner_v1 = TokenLearnerModule(DIM, NUM_TOKENS)
learner_v11 = TokenLearnerModuleV11(DIM, NUM_TOKENS)
err_v1 = pooling_err(learner_v1, x)
err_v11 = pooling_err(learner_v11, x)
with torch.no_grad():
    _, maps11 = learner_v11(x, return_maps=True)
softmax_sum_err = (maps11.sum(dim=-1) - 1).abs().max().item()
print(f"TokenLearner v1 (sigmoid) einsum vs bmm vs loop {tuple(learner_v1(x).shape)}: err {err_v1:.2e}")
print(f"TokenLearner v1.1 (softmax) einsum vs bmm vs loop: err {err_v11:.2e}, maps sum to 1 err {softmax_sum_err:.2e}")

fuser = TokenFuser(DIM, NUM_TOKENS)
tokens_in = torch.randn(3, NUM_TOKENS, DIM, requires_grad=True)
fused, mixed_tokens, mix = fuser(tokens_in, x, return_mix=True)
fused_bmm = torch.bmm(mixed_tokens.transpose(1, 2), mix).view_as(x)
g_e = torch.autograd.grad(fused.cos().sum(), (tokens_in, x), retain_graph=True)
g_b = torch.autograd.grad(fused_bmm.cos().sum(), (tokens_in, x))
fuser_err = max([(fused - fused_bmm).abs().max().item()] + [(a - b).abs().max().item() for a, b in zip(g_e, g_b)])
print(f"TokenFuser einsum vs bmm {tuple(fused.shape)}: err {fuser_err:.2e}")

grouped = GroupedTokenLearner(DIM, ff_mult=1, num_output_tokens=4)
xg = torch.randn(2, DIM, 5, 5)
with torch.no_grad():
    out_grouped = grouped(xg)
    conv1, conv2 = grouped.net[0], grouped.net[2]
    per_token = []
    for g in range(4):
        lo, hi = g * DIM, (g + 1) * DIM
        h = F.gelu(F.conv2d(xg, conv1.weight[lo:hi], conv1.bias[lo:hi]))
        a = F.conv2d(h, conv2.weight[g:g + 1], conv2.bias[g:g + 1])
        per_token.append((xg * a).mean(dim=(-2, -1)))
    out_loop = torch.stack(per_token, dim=-1)
grouped_err = (out_grouped - out_loop).abs().max().item()
print(f"grouped TokenLearner {tuple(out_grouped.shape)} vs per-token convs: err {grouped_err:.2e}")
check_err = max(err_v1, err_v11, softmax_sum_err, fuser_err, grouped_err)

# --- training the classifier
model = TokenLearnerViT()
print(f"TokenLearnerViT parameters: {sum(p.numel() for p in model.parameters())}")
train_x, train_y = make_blobs(256, rng)
test_x, test_y = make_blobs(192, rng)

EPOCHS, BATCH = 8, 32
steps_per_epoch = math.ceil(train_x.size(0) / BATCH)
total_steps, warmup = EPOCHS * steps_per_epoch, steps_per_epoch
decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "pos_embed" not in n]
no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 or "pos_embed" in n]
optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                               {"params": no_decay, "weight_decay": 0.0}], lr=3e-3)


def lr_lambda(step):
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
criterion = nn.CrossEntropyLoss()


@torch.no_grad()
def evaluate():
    model.eval()
    logits, tokens = model(test_x, return_tokens=True)
    loss = criterion(logits, test_y).item()
    acc = (logits.argmax(1) == test_y).float().mean().item()
    model.train()
    return loss, acc, tokens.shape[1]


loss_start, acc_start, _ = evaluate()
for epoch in range(EPOCHS):
    perm = torch.randperm(train_x.size(0))
    running, batches = 0.0, 0
    for i in range(0, train_x.size(0), BATCH):
        idx = perm[i:i + BATCH]
        loss = criterion(model(train_x[idx]), train_y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        running += loss.item()
        batches += 1
    print(f"epoch {epoch} loss {running / batches:.4f} lr {scheduler.get_last_lr()[0]:.5f}")

loss_end, acc_end, num_tokens = evaluate()
with torch.no_grad():
    fmap_tokens = model.patch_embed(test_x[:1]).flatten(2).shape[-1]
print(f"tokens after block 1: {fmap_tokens} -> {num_tokens}")
print(f"test loss {loss_start:.4f} -> {loss_end:.4f}, accuracy {acc_start:.4f} -> {acc_end:.4f}")
print(f"FINAL test_loss={loss_end:.4f} acc={acc_end:.4f} tokens={num_tokens} check_err={check_err:.3e}")
