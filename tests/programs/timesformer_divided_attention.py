"""TimeSformer (facebookresearch/TimeSformer ``timesformer/models/vit.py``, lucidrains timesformer-pytorch)
at tiny sizes on synthetic moving-blob videos, classifying the direction of motion (right or left).

As the repo writes it, with its ``einops.rearrange`` patterns spelled out by ``view``/``permute``/
``reshape``: ``PatchEmbed`` folding ``b c t h w -> (b t) c h w`` into a strided ``Conv2d``, a cls token
``expand``-ed per frame, a spatial ``pos_embed`` and a separate temporal ``time_embed`` (added over
``(b n) t m``), ``Block.forward(x, B, T, W)`` with divided space-time attention: temporal attention over
``(b h w) t m`` through ``temporal_norm1``/``temporal_attn``/``temporal_fc``, then spatial attention over
``(b t) (h w) m`` with the cls token ``repeat(1, T, 1)``-ed per frame and averaged back by
``torch.mean(cls_token, 1, True)``, ``torch.cat((init_cls_token, x), 1) + torch.cat((cls_token, res), 1)``;
the ``space_only`` baseline averaging frames by ``torch.mean(x, 1)``; ``drop_path`` by
``random_tensor.floor_()``, ``trunc_normal_`` and ``_init_weights`` through ``self.apply``, the
temporal fc zeroed by ``nn.init.constant_(m.temporal_fc.weight, 0)`` over ``self.blocks.modules()``
picked by ``'Block' in str(m)``; AdamW with ``no_weight_decay`` groups and a cosine schedule with linear
warm-up (``LambdaLR``). Checks: a divided block with its zero temporal fc equals the space-only block on
the patch tokens, divided attention beats space-only on direction (which needs time), and shuffling the
frames moves the divided model's logits but not the space-only model's frame-averaged features.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.init import trunc_normal_

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

NUM_FRAMES, IMG, PATCH, SPEED = 4, 12, 4, 2
DIRECTIONS = [(0, 1), (0, -1)]  # right, left


def make_videos(n):
    """A Gaussian blob crossing the frame two pixels a frame, right or left: every frame of a right-mover
    is a frame of some left-mover, so only the order of the frames tells the direction."""
    yy, xx = np.mgrid[0:IMG, 0:IMG].astype(np.float32)
    videos = np.zeros((n, 1, NUM_FRAMES, IMG, IMG), np.float32)
    labels = rng.randint(0, len(DIRECTIONS), size=n)
    travel = SPEED * (NUM_FRAMES - 1)
    for i, c in enumerate(labels):
        dy, dx = DIRECTIONS[c]
        along = rng.uniform(1.5, IMG - 1.5 - travel)  # the start on the moving axis, before the direction
        across = rng.uniform(1.5, IMG - 1.5)
        for t in range(NUM_FRAMES):
            offset = along + SPEED * t
            if dy + dx < 0:
                offset = IMG - offset  # the same set of positions, visited backwards
            py, px = (offset, across) if dy else (across, offset)
            videos[i, 0, t] = np.exp(-((yy - py) ** 2 + (xx - px) ** 2) / (2 * 1.5 ** 2))
    videos += 0.1 * rng.randn(*videos.shape).astype(np.float32)
    return torch.from_numpy(videos), torch.from_numpy(labels)


x_train, y_train = make_videos(320)
x_test, y_test = make_videos(256)


def drop_path(x, drop_prob: float = 0., training: bool = False):
    if drop_prob == 0. or not training:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)  # work with diff dim tensors, not just 2D ConvNets
    random_tensor = keep_prob + torch.rand(shape, dtype=x.dtype, device=x.device)
    random_tensor.floor_()  # binarize
    output = x.div(keep_prob) * random_tensor
    return output


class DropPath(nn.Module):
    """Drop paths (Stochastic Depth) per sample  (when applied in main path of residual blocks)."""
    def __init__(self, drop_prob=None):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        return drop_path(x, self.drop_prob, self.training)


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        x = self.fc1(x)
        x = self.act(x)
        x = self.drop(x)
        x = self.fc2(x)
        x = self.drop(x)
        return x


class Attention(nn.Module):
    def __init__(self, dim, num_heads=8, qkv_bias=False, qk_scale=None, attn_drop=0., proj_drop=0.):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = qk_scale or head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.attn_drop = nn.Dropout(attn_drop)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        attn = self.attn_drop(attn)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        x = self.proj(x)
        x = self.proj_drop(x)
        return x


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=4., qkv_bias=False, drop_path=0.1,
                 norm_layer=nn.LayerNorm, attention_type='divided_space_time'):
        super().__init__()
        self.attention_type = attention_type
        assert attention_type in ['divided_space_time', 'space_only']
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias)
        # Temporal Attention Parameters
        if self.attention_type == 'divided_space_time':
            self.temporal_norm1 = norm_layer(dim)
            self.temporal_attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias)
            self.temporal_fc = nn.Linear(dim, dim)
        # drop path
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = norm_layer(dim)
        mlp_hidden_dim = int(dim * mlp_ratio)
        self.mlp = Mlp(in_features=dim, hidden_features=mlp_hidden_dim)

    def forward(self, x, B, T, W):
        num_spatial_tokens = (x.size(1) - 1) // T
        H = num_spatial_tokens // W
        m = x.size(-1)
        if self.attention_type == 'space_only':
            x = x + self.drop_path(self.attn(self.norm1(x)))
            x = x + self.drop_path(self.mlp(self.norm2(x)))
            return x
        # Temporal: b (h w t) m -> (b h w) t m
        xt = x[:, 1:, :]
        xt = xt.reshape(B * H * W, T, m)
        res_temporal = self.drop_path(self.temporal_attn(self.temporal_norm1(xt)))
        res_temporal = res_temporal.reshape(B, H * W * T, m)  # (b h w) t m -> b (h w t) m
        res_temporal = self.temporal_fc(res_temporal)
        xt = x[:, 1:, :] + res_temporal

        # Spatial
        init_cls_token = x[:, 0, :].unsqueeze(1)
        cls_token = init_cls_token.repeat(1, T, 1)
        cls_token = cls_token.reshape(B * T, m).unsqueeze(1)  # b t m -> (b t) m
        xs = xt
        xs = xs.view(B, H * W, T, m).permute(0, 2, 1, 3).reshape(B * T, H * W, m)  # b (h w t) m -> (b t) (h w) m
        xs = torch.cat((cls_token, xs), 1)
        res_spatial = self.drop_path(self.attn(self.norm1(xs)))

        # Taking care of CLS token
        cls_token = res_spatial[:, 0, :]
        cls_token = cls_token.view(B, T, m)  # (b t) m -> b t m
        cls_token = torch.mean(cls_token, 1, True)  # averaging for every frame
        res_spatial = res_spatial[:, 1:, :]
        # (b t) (h w) m -> b (h w t) m
        res_spatial = res_spatial.reshape(B, T, H * W, m).permute(0, 2, 1, 3).reshape(B, H * W * T, m)
        res = res_spatial
        x = xt

        # Mlp
        x = torch.cat((init_cls_token, x), 1) + torch.cat((cls_token, res), 1)
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x


class PatchEmbed(nn.Module):
    """ Image to Patch Embedding
    """
    def __init__(self, img_size=IMG, patch_size=PATCH, in_chans=1, embed_dim=32):
        super().__init__()
        num_patches = (img_size // patch_size) * (img_size // patch_size)
        self.img_size = img_size
        self.patch_size = patch_size
        self.num_patches = num_patches
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        B, C, T, H, W = x.shape
        x = x.permute(0, 2, 1, 3, 4).reshape(B * T, C, H, W)  # b c t h w -> (b t) c h w
        x = self.proj(x)
        W = x.size(-1)
        x = x.flatten(2).transpose(1, 2)
        return x, T, W


class VisionTransformer(nn.Module):
    def __init__(self, img_size=IMG, patch_size=PATCH, in_chans=1, num_classes=len(DIRECTIONS), embed_dim=32, depth=1,
                 num_heads=4, mlp_ratio=2., qkv_bias=True, drop_rate=0., drop_path_rate=0.1,
                 num_frames=NUM_FRAMES, attention_type='divided_space_time'):
        super().__init__()
        self.attention_type = attention_type
        self.depth = depth
        self.num_classes = num_classes
        self.num_features = self.embed_dim = embed_dim
        self.patch_embed = PatchEmbed(img_size=img_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim)
        num_patches = self.patch_embed.num_patches

        # Positional Embeddings
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        self.pos_drop = nn.Dropout(p=drop_rate)
        if self.attention_type != 'space_only':
            self.time_embed = nn.Parameter(torch.zeros(1, num_frames, embed_dim))
            self.time_drop = nn.Dropout(p=drop_rate)

        # Attention Blocks
        dpr = [x.item() for x in torch.linspace(0, drop_path_rate, self.depth)]  # stochastic depth decay rule
        self.blocks = nn.ModuleList([
            Block(dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                  drop_path=dpr[i], attention_type=self.attention_type)
            for i in range(self.depth)])
        self.norm = nn.LayerNorm(embed_dim)

        # Classifier head
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()

        # TimeSformer starts from an ImageNet ViT's position embeddings; from the repo's std=.02 this tiny
        # model takes hundreds of steps to tell where the blob is, so the stand-in is larger
        trunc_normal_(self.pos_embed, std=.5)
        trunc_normal_(self.cls_token, std=.02)
        if self.attention_type != 'space_only':
            # the repo leaves time_embed at zero, so every frame looks alike and the tiny model sits on that
            # symmetric start for hundreds of steps before it finds which frame comes first
            trunc_normal_(self.time_embed, std=.5)
        self.apply(self._init_weights)

        # initialization of temporal attention weights
        if self.attention_type == 'divided_space_time':
            i = 0
            for m in self.blocks.modules():
                m_str = str(m)
                if 'Block' in m_str:
                    if i > 0:
                        nn.init.constant_(m.temporal_fc.weight, 0)
                        nn.init.constant_(m.temporal_fc.bias, 0)
                    i += 1

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=.1)  # the repo's .02 at width 768 is about .1 at width 32
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)

    def no_weight_decay(self):
        return {'pos_embed', 'cls_token', 'time_embed'}

    def forward_features(self, x):
        B = x.shape[0]
        x, T, W = self.patch_embed(x)
        cls_tokens = self.cls_token.expand(x.size(0), -1, -1)
        x = torch.cat((cls_tokens, x), dim=1)
        x = x + self.pos_embed
        x = self.pos_drop(x)

        # Time Embeddings
        if self.attention_type != 'space_only':
            cls_tokens = x[:B, 0, :].unsqueeze(1)
            x = x[:, 1:]
            n, m = x.size(1), x.size(2)
            x = x.view(B, T, n, m).permute(0, 2, 1, 3).reshape(B * n, T, m)  # (b t) n m -> (b n) t m
            x = x + self.time_embed
            x = self.time_drop(x)
            x = x.view(B, n * T, m)  # (b n) t m -> b (n t) m
            x = torch.cat((cls_tokens, x), dim=1)

        # Attention blocks
        for blk in self.blocks:
            x = blk(x, B, T, W)

        # Predictions for space-only baseline
        if self.attention_type == 'space_only':
            x = x.view(B, T, x.size(1), x.size(2))  # (b t) n m -> b t n m
            x = torch.mean(x, 1)  # averaging predictions for every frame

        x = self.norm(x)
        return x[:, 0]

    def forward(self, x):
        x = self.forward_features(x)
        x = self.head(x)
        return x


divided = VisionTransformer(attention_type='divided_space_time')
space = VisionTransformer(attention_type='space_only')
zeroed = [blk.temporal_fc.weight.abs().sum().item() for blk in divided.blocks]
assert zeroed == [0.0] * len(divided.blocks)

# with its temporal fc at zero, a divided block is the space-only block on the patch tokens
missing, unexpected = space.load_state_dict(divided.state_dict(), strict=False)
print(f"space-only from divided: missing {len(missing)} unexpected {len(unexpected)}")
with torch.no_grad():
    divided.eval()
    space.eval()
    B, T = 3, NUM_FRAMES
    frames, _, W = divided.patch_embed(x_train[:B])
    tokens = torch.cat((divided.cls_token.expand(B * T, -1, -1), frames), dim=1) + divided.pos_embed
    n, m = tokens.size(1) - 1, tokens.size(2)
    patches = tokens[:, 1:].reshape(B, T, n, m).permute(0, 2, 1, 3).reshape(B, n * T, m)
    divided_out = divided.blocks[0](torch.cat((tokens[:B * T:T, :1], patches), 1), B, T, W)
    space_out = space.blocks[0](tokens, B, T, W)
    space_patches = space_out[:, 1:].reshape(B, T, n, m).permute(0, 2, 1, 3).reshape(B, n * T, m)
    block_err = (divided_out[:, 1:] - space_patches).abs().max().item()
    assert torch.allclose(divided_out[:, 1:], space_patches, atol=1e-5), block_err
print(f"zero temporal fc: divided block == space-only block on patch tokens (max err {block_err:.1e})")


def cosine_warmup(warmup_steps, total_steps):
    def lr_lambda(step):
        if step < warmup_steps:
            return float(step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return lr_lambda


def train(model, name, epochs=14, batch_size=32):
    skip = model.no_weight_decay()
    decay, no_decay = [], []
    for pname, p in model.named_parameters():
        if p.ndim <= 1 or pname in skip:
            no_decay.append(p)
        else:
            decay.append(p)
    optimizer = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.05},
                                   {'params': no_decay, 'weight_decay': 0.0}], lr=3e-3)
    steps = epochs * (len(x_train) // batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_warmup(steps // 10, steps))
    criterion = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x_train))
        total, correct, running = 0, 0, 0.0
        for i in range(0, len(x_train) - batch_size + 1, batch_size):
            idx = perm[i:i + batch_size]
            inputs, targets = x_train[idx], y_train[idx]
            outputs = model(inputs)
            loss = criterion(outputs, targets)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            running += loss.item() * targets.size(0)
            total += targets.size(0)
            correct += outputs.argmax(1).eq(targets).sum().item()
        if epoch % 2 == 1:
            print(f"{name} epoch {epoch + 1} loss {running / total:.4f} train acc {correct / total:.4f} "
                  f"lr {scheduler.get_last_lr()[0]:.2e}")
    model.eval()
    with torch.no_grad():
        logits = model(x_test)
        test_loss = F.cross_entropy(logits, y_test).item()
        acc = (logits.argmax(1) == y_test).float().mean().item()
    print(f"{name}: test loss {test_loss:.4f} test acc {acc:.4f}")
    return acc


divided_acc = train(divided, "divided")
space_acc = train(space, "space_only")
assert divided_acc > space_acc + 0.1, (divided_acc, space_acc)

# shuffling frames: the divided model sees order (time embeddings, temporal attention), space-only does not
frame_perm = torch.tensor([2, 0, 3, 1])
with torch.no_grad():
    x_shuffled = x_test[:, :, frame_perm]
    divided_shift = (divided(x_test) - divided(x_shuffled)).abs().max().item()
    space_shift = (space.forward_features(x_test) - space.forward_features(x_shuffled)).abs().max().item()
assert divided_shift > 1e-2 and space_shift < 1e-4, (divided_shift, space_shift)
print(f"frame shuffle: divided logits moved {divided_shift:.3f}, space-only features moved {space_shift:.1e}")
print(f"FINAL divided_acc={divided_acc:.4f} space_acc={space_acc:.4f} block_err={block_err:.6f} "
      f"shuffle_err={space_shift:.6f}")
