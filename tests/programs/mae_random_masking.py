"""A Masked Autoencoder (facebookresearch/mae ``models_mae.py``) at tiny sizes on synthetic images.

``MaskedAutoencoderViT`` as the repo writes it: a ``PatchEmbed`` (strided ``Conv2d``,
``flatten(2).transpose(1, 2)``), timm-style ``Block``s, ``cls_token = nn.Parameter(torch.zeros(1, 1,
D))``, fixed 2-d sin-cos position embeddings built in NumPy (``np.meshgrid``, ``np.einsum('m,d->md',
...)``) and copied in by ``self.pos_embed.data.copy_(torch.from_numpy(pos_embed).float().unsqueeze(0))``
into ``requires_grad=False`` parameters, ``initialize_weights`` (``xavier_uniform_`` on
``w.view([w.shape[0], -1])``, ``torch.nn.init.normal_(..., std=.02)``, ``self.apply(self._init_weights)``),
``patchify``/``unpatchify`` by ``reshape(shape=...)`` + ``torch.einsum('nchpwq->nhwpqc', x)``,
``random_masking`` (``noise = torch.rand(N, L)``, ``ids_shuffle = torch.argsort(noise, dim=1)``,
``ids_restore = torch.argsort(ids_shuffle, dim=1)``, ``torch.gather(x, dim=1,
index=ids_keep.unsqueeze(-1).repeat(1, 1, D))``, ``mask[:, :len_keep] = 0`` gathered back),
the decoder's ``self.mask_token.repeat(...)`` unshuffled by ``gather``, and ``forward_loss`` with
``norm_pix_loss`` (``target.mean(dim=-1, keepdim=True)``, ``target.var(dim=-1, keepdim=True)``) and
``(loss * mask).sum() / mask.sum()``. Trained with AdamW(betas=(0.9, 0.95)), weight decay off for
biases, norms and tokens, and the repo's half-cycle cosine schedule after warm-up written into
``param_group["lr"]`` per iteration; the masked patches pasted back by ``unpatchify`` of the mask.
Data: 16x16 RGB images, each one of six smooth scenes at a random brightness plus noise.
"""

import math
import os
from functools import partial

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)


# --------------------------------------------------------
# 2D sine-cosine position embedding
# References:
# Transformer: https://github.com/tensorflow/models/blob/master/official/nlp/transformer/model_utils.py
# MoCo v3: https://github.com/facebookresearch/moco-v3
# --------------------------------------------------------
def get_2d_sincos_pos_embed(embed_dim, grid_size, cls_token=False):
    """
    grid_size: int of the grid height and width
    return:
    pos_embed: [grid_size*grid_size, embed_dim] or [1+grid_size*grid_size, embed_dim] (w/ or w/o cls_token)
    """
    grid_h = np.arange(grid_size, dtype=np.float32)
    grid_w = np.arange(grid_size, dtype=np.float32)
    grid = np.meshgrid(grid_w, grid_h)  # here w goes first
    grid = np.stack(grid, axis=0)

    grid = grid.reshape([2, 1, grid_size, grid_size])
    pos_embed = get_2d_sincos_pos_embed_from_grid(embed_dim, grid)
    if cls_token:
        pos_embed = np.concatenate([np.zeros([1, embed_dim]), pos_embed], axis=0)
    return pos_embed


def get_2d_sincos_pos_embed_from_grid(embed_dim, grid):
    assert embed_dim % 2 == 0

    # use half of dimensions to encode grid_h
    emb_h = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[0])  # (H*W, D/2)
    emb_w = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[1])  # (H*W, D/2)

    emb = np.concatenate([emb_h, emb_w], axis=1)  # (H*W, D)
    return emb


def get_1d_sincos_pos_embed_from_grid(embed_dim, pos):
    """
    embed_dim: output dimension for each position
    pos: a list of positions to be encoded: size (M,)
    out: (M, D)
    """
    assert embed_dim % 2 == 0
    omega = np.arange(embed_dim // 2, dtype=np.float64)
    omega /= embed_dim / 2.
    omega = 1. / 10000**omega  # (D/2,)

    pos = pos.reshape(-1)  # (M,)
    out = np.einsum('m,d->md', pos, omega)  # (M, D/2), outer product

    emb_sin = np.sin(out)  # (M, D/2)
    emb_cos = np.cos(out)  # (M, D/2)

    emb = np.concatenate([emb_sin, emb_cos], axis=1)  # (M, D)
    return emb


# timm's PatchEmbed / Attention / Mlp / Block, as models_mae imports them
class PatchEmbed(nn.Module):
    def __init__(self, img_size=16, patch_size=4, in_chans=3, embed_dim=32):
        super().__init__()
        self.img_size = (img_size, img_size)
        self.patch_size = (patch_size, patch_size)
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        x = self.proj(x)
        x = x.flatten(2).transpose(1, 2)  # BCHW -> BNC
        return x


class Attention(nn.Module):
    def __init__(self, dim, num_heads=8, qkv_bias=False):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        x = self.proj(x)
        return x


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=4., qkv_bias=False, norm_layer=nn.LayerNorm):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return x


class MaskedAutoencoderViT(nn.Module):
    """ Masked Autoencoder with VisionTransformer backbone
    """
    def __init__(self, img_size=16, patch_size=4, in_chans=3,
                 embed_dim=32, depth=2, num_heads=4,
                 decoder_embed_dim=24, decoder_depth=1, decoder_num_heads=4,
                 mlp_ratio=2., norm_layer=nn.LayerNorm, norm_pix_loss=False):
        super().__init__()

        # --------------------------------------------------------------------------
        # MAE encoder specifics
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        num_patches = self.patch_embed.num_patches

        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim), requires_grad=False)  # fixed sin-cos embedding

        self.blocks = nn.ModuleList([
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, norm_layer=norm_layer)
            for i in range(depth)])
        self.norm = norm_layer(embed_dim)
        # --------------------------------------------------------------------------

        # --------------------------------------------------------------------------
        # MAE decoder specifics
        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim, bias=True)

        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))

        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, decoder_embed_dim), requires_grad=False)  # fixed sin-cos embedding

        self.decoder_blocks = nn.ModuleList([
            Block(decoder_embed_dim, decoder_num_heads, mlp_ratio, qkv_bias=True, norm_layer=norm_layer)
            for i in range(decoder_depth)])

        self.decoder_norm = norm_layer(decoder_embed_dim)
        self.decoder_pred = nn.Linear(decoder_embed_dim, patch_size**2 * in_chans, bias=True)  # decoder to patch
        # --------------------------------------------------------------------------

        self.norm_pix_loss = norm_pix_loss

        self.initialize_weights()

    def initialize_weights(self):
        # initialization
        # initialize (and freeze) pos_embed by sin-cos embedding
        pos_embed = get_2d_sincos_pos_embed(self.pos_embed.shape[-1], int(self.patch_embed.num_patches**.5), cls_token=True)
        self.pos_embed.data.copy_(torch.from_numpy(pos_embed).float().unsqueeze(0))

        decoder_pos_embed = get_2d_sincos_pos_embed(self.decoder_pos_embed.shape[-1], int(self.patch_embed.num_patches**.5), cls_token=True)
        self.decoder_pos_embed.data.copy_(torch.from_numpy(decoder_pos_embed).float().unsqueeze(0))

        # initialize patch_embed like nn.Linear (instead of nn.Conv2d)
        w = self.patch_embed.proj.weight.data
        torch.nn.init.xavier_uniform_(w.view([w.shape[0], -1]))

        # timm's trunc_normal_(std=.02) is effectively normal_(std=.02) as cutoff is too big (2.)
        torch.nn.init.normal_(self.cls_token, std=.02)
        torch.nn.init.normal_(self.mask_token, std=.02)

        # initialize nn.Linear and nn.LayerNorm
        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            # we use xavier_uniform following official JAX ViT:
            torch.nn.init.xavier_uniform_(m.weight)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)

    def patchify(self, imgs):
        """
        imgs: (N, 3, H, W)
        x: (N, L, patch_size**2 *3)
        """
        p = self.patch_embed.patch_size[0]
        assert imgs.shape[2] == imgs.shape[3] and imgs.shape[2] % p == 0

        h = w = imgs.shape[2] // p
        x = imgs.reshape(shape=(imgs.shape[0], 3, h, p, w, p))
        x = torch.einsum('nchpwq->nhwpqc', x)
        x = x.reshape(shape=(imgs.shape[0], h * w, p**2 * 3))
        return x

    def unpatchify(self, x):
        """
        x: (N, L, patch_size**2 *3)
        imgs: (N, 3, H, W)
        """
        p = self.patch_embed.patch_size[0]
        h = w = int(x.shape[1]**.5)
        assert h * w == x.shape[1]

        x = x.reshape(shape=(x.shape[0], h, w, p, p, 3))
        x = torch.einsum('nhwpqc->nchpwq', x)
        imgs = x.reshape(shape=(x.shape[0], 3, h * p, h * p))
        return imgs

    def random_masking(self, x, mask_ratio):
        """
        Perform per-sample random masking by per-sample shuffling.
        Per-sample shuffling is done by argsort random noise.
        x: [N, L, D], sequence
        """
        N, L, D = x.shape  # batch, length, dim
        len_keep = int(L * (1 - mask_ratio))

        noise = torch.rand(N, L, device=x.device)  # noise in [0, 1]

        # sort noise for each sample
        ids_shuffle = torch.argsort(noise, dim=1)  # ascend: small is keep, large is remove
        ids_restore = torch.argsort(ids_shuffle, dim=1)

        # keep the first subset
        ids_keep = ids_shuffle[:, :len_keep]
        x_masked = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, D))

        # generate the binary mask: 0 is keep, 1 is remove
        mask = torch.ones([N, L], device=x.device)
        mask[:, :len_keep] = 0
        # unshuffle to get the binary mask
        mask = torch.gather(mask, dim=1, index=ids_restore)

        return x_masked, mask, ids_restore

    def forward_encoder(self, x, mask_ratio):
        # embed patches
        x = self.patch_embed(x)

        # add pos embed w/o cls token
        x = x + self.pos_embed[:, 1:, :]

        # masking: length -> length * mask_ratio
        x, mask, ids_restore = self.random_masking(x, mask_ratio)

        # append cls token
        cls_token = self.cls_token + self.pos_embed[:, :1, :]
        cls_tokens = cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat((cls_tokens, x), dim=1)

        # apply Transformer blocks
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)

        return x, mask, ids_restore

    def forward_decoder(self, x, ids_restore):
        # embed tokens
        x = self.decoder_embed(x)

        # append mask tokens to sequence
        mask_tokens = self.mask_token.repeat(x.shape[0], ids_restore.shape[1] + 1 - x.shape[1], 1)
        x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)  # no cls token
        x_ = torch.gather(x_, dim=1, index=ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))  # unshuffle
        x = torch.cat([x[:, :1, :], x_], dim=1)  # append cls token

        # add pos embed
        x = x + self.decoder_pos_embed

        # apply Transformer blocks
        for blk in self.decoder_blocks:
            x = blk(x)
        x = self.decoder_norm(x)

        # predictor projection
        x = self.decoder_pred(x)

        # remove cls token
        x = x[:, 1:, :]

        return x

    def forward_loss(self, imgs, pred, mask):
        """
        imgs: [N, 3, H, W]
        pred: [N, L, p*p*3]
        mask: [N, L], 0 is keep, 1 is remove,
        """
        target = self.patchify(imgs)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.e-6)**.5

        loss = (pred - target) ** 2
        loss = loss.mean(dim=-1)  # [N, L], mean loss per patch

        loss = (loss * mask).sum() / mask.sum()  # mean loss on removed patches
        return loss

    def forward(self, imgs, mask_ratio=0.75):
        latent, mask, ids_restore = self.forward_encoder(imgs, mask_ratio)
        pred = self.forward_decoder(latent, ids_restore)  # [N, L, p*p*3]
        loss = self.forward_loss(imgs, pred, mask)
        return loss, pred, mask


yy, xx = np.meshgrid(np.linspace(-1, 1, 16), np.linspace(-1, 1, 16), indexing="ij")
basis = np.stack([xx, yy, np.cos(np.pi * xx), np.cos(np.pi * yy), np.sin(np.pi * xx * yy)])
templates = np.einsum('kcb,bhw->kchw', rng.uniform(-1, 1, (6, 3, 5)), basis)  # six smooth RGB scenes


def make_images(n):
    """16x16 RGB images: one of six smooth scenes, its brightness scaled, plus pixel noise."""
    k = rng.randint(0, 6, n)
    scale = rng.uniform(0.7, 1.3, (n, 1, 1, 1))
    imgs = scale * templates[k] + 0.05 * rng.randn(n, 3, 16, 16)
    return torch.from_numpy(imgs.astype(np.float32))


def adjust_learning_rate(optimizer, epoch, lr, min_lr, warmup_epochs, epochs):
    """Decay the learning rate with half-cycle cosine after warmup (util/lr_sched.py)"""
    if epoch < warmup_epochs:
        lr = lr * epoch / warmup_epochs
    else:
        lr = min_lr + (lr - min_lr) * 0.5 * \
            (1. + math.cos(math.pi * (epoch - warmup_epochs) / (epochs - warmup_epochs)))
    for param_group in optimizer.param_groups:
        if "lr_scale" in param_group:
            param_group["lr"] = lr * param_group["lr_scale"]
        else:
            param_group["lr"] = lr
    return lr


train_imgs = make_images(128)
test_imgs = make_images(64)

model = MaskedAutoencoderViT(norm_layer=partial(nn.LayerNorm, eps=1e-6), norm_pix_loss=False)

# patchify and unpatchify are inverse; the mask has exactly L - len_keep ones per row
roundtrip = torch.equal(model.unpatchify(model.patchify(test_imgs)), test_imgs)
with torch.no_grad():
    _, mask, ids_restore = model.forward_encoder(test_imgs[:8], mask_ratio=0.75)
restore_ok = torch.equal(torch.sort(ids_restore, dim=1)[0], torch.arange(16).expand(8, 16))
print(f"patchify roundtrip: {roundtrip}  masked per image: {mask.sum(1).tolist()}  ids_restore is a permutation: {restore_ok}")
n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
n_frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
print(f"trainable parameters: {n_trainable}  frozen (pos_embed): {n_frozen}")

# following timm: set wd as 0 for bias and norm layers
decay, no_decay = [], []
for name, param in model.named_parameters():
    if not param.requires_grad:
        continue
    if len(param.shape) == 1 or name.endswith(".bias") or name in ("cls_token", "mask_token"):
        no_decay.append(param)
    else:
        decay.append(param)
param_groups = [{"params": no_decay, "weight_decay": 0.}, {"params": decay, "weight_decay": 0.05}]
optimizer = torch.optim.AdamW(param_groups, lr=5e-3, betas=(0.9, 0.95))

epochs, warmup_epochs, batch_size = 24, 3, 16
steps_per_epoch = len(train_imgs) // batch_size
for epoch in range(epochs):
    model.train(True)
    perm = torch.randperm(len(train_imgs))
    total = 0.0
    for data_iter_step in range(steps_per_epoch):
        # we use a per iteration (instead of per epoch) lr scheduler
        adjust_learning_rate(optimizer, data_iter_step / steps_per_epoch + epoch, 5e-3, 1e-5, warmup_epochs, epochs)
        samples = train_imgs[perm[data_iter_step * batch_size:(data_iter_step + 1) * batch_size]]
        loss, _, _ = model(samples, mask_ratio=0.75)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise SystemExit(f"Loss is {loss_value}, stopping training")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss_value
    if epoch % 6 == 5:
        print(f"epoch {epoch}  loss {total / steps_per_epoch:.4f}  lr {optimizer.param_groups[0]['lr']:.6f}")

# held-out reconstruction of the masked patches (predicting the data mean scores about 0.73); the
# same predictions under norm_pix_loss's per-patch normalised target; then the visible patches
# pasted back as the MAE visualisation does
model.eval()
with torch.no_grad():
    test_loss, pred, mask = model(test_imgs, mask_ratio=0.75)
    model.norm_pix_loss = True
    norm_pix = model.forward_loss(test_imgs, pred, mask).item()
    model.norm_pix_loss = False
    pred_imgs = model.unpatchify(pred)
    mask_imgs = model.unpatchify(mask.unsqueeze(-1).repeat(1, 1, model.patch_embed.patch_size[0] ** 2 * 3))
    im_paste = test_imgs * (1 - mask_imgs) + pred_imgs * mask_imgs
    pixel_mse = ((im_paste - test_imgs) ** 2).mean().item()
print(f"held-out masked-patch loss {test_loss.item():.4f}  norm_pix {norm_pix:.4f}  pasted image shape {tuple(pred_imgs.shape)}")
print(f"FINAL train_loss={total / steps_per_epoch:.4f} test_loss={test_loss.item():.4f} "
      f"norm_pix_loss={norm_pix:.4f} pixel_mse={pixel_mse:.4f}")
