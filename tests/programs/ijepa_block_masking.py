"""I-JEPA (facebookresearch/ijepa) at toy size on synthetic striped images (four stripe frequencies).

The pieces are written as the repository writes them. ``MaskCollator`` (src/masks/multiblock.py):
a per-batch ``torch.Generator`` seeded from a step counter draws one block size for the targets
(scale and aspect ranges) and one for the context (aspect 1) by ``torch.rand(1, generator=g)``;
each target block's corner comes from ``torch.randint(0, self.height - h, (1,))`` and indexes
``mask[top:top+h, left:left+w] = 1`` with those one-element tensors; indices by
``torch.nonzero(mask.flatten())`` + ``.squeeze()``; the context block is constrained to the
targets' complements (``mask *= acceptable_regions[k]``, relaxed after 20 failed tries); masks are
cut to the batch's shortest and collated by ``torch.utils.data.default_collate`` of nested lists.
``apply_masks`` gathers tokens by ``torch.gather(x, dim=1, index=m.unsqueeze(-1).repeat(1, 1, D))``
and ``torch.cat`` over masks; ``repeat_interleave_batch`` repeats the targets per context mask.
A ViT encoder (strided ``Conv2d`` patches, fixed 2-d sin-cos ``pos_embed`` from NumPy, ``qkv``
attention, ``trunc_normal_`` init and ``fix_init_weight`` rescaling by ``div_(math.sqrt(2.0 *
layer_id))``) sees only the context tokens; the predictor (``predictor_embed``, a zero
``mask_token`` ``nn.Parameter`` repeated per target token plus gathered position embeddings,
``x.repeat(len(masks), 1, 1)``) predicts the target encoder's ``F.layer_norm(h, (h.size(-1),))``
features under ``torch.no_grad()``; the loss is ``F.smooth_l1_loss``; AdamW; the target encoder is
a ``copy.deepcopy`` with ``requires_grad = False`` updated by the momentum generator through
``param_k.data.mul_(m).add_((1.-m) * param_q.detach().data)``.

Checked: every mask index lies in the grid, context and targets are disjoint per sample, the
gathered tokens equal advanced indexing ``x[arange(B)[:, None], m]``, the EMA equals the explicit
``m * k + (1 - m) * q`` on saved copies, and the loss falls. A linear probe (closed-form ridge) on
the learned target encoder's mean-pooled features is reported beside the same probe on a randomly
initialised encoder: after 48 steps both sit above chance (0.25) and their difference is within
seed noise (torch's five seeds: -0.03 to +0.08), so the bands, not a sign, are what is checked.
"""

# ruff: noqa: UP004, UP008, B007, B023  (the repository's own spelling: class MaskCollator(object),
# super(Class, self), unused loop names, forward_target/forward_context closures over the batch)

import copy
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

IMG, PATCH = 32, 4
GRID = IMG // PATCH
N_CLASSES = 4


# ------------------------------------------------------------------------------------- data
def make_images(n, rng):
    """Stripes at one of four frequencies (the class) with random orientation/phase, a bright blob, noise."""
    y = rng.randint(0, N_CLASSES, n)
    theta = rng.uniform(0, math.pi, n)
    freq = 0.35 + 0.3 * y + rng.uniform(-0.05, 0.05, n)
    phase = rng.uniform(0, 2 * math.pi, n)
    yy, xx = np.meshgrid(np.arange(IMG), np.arange(IMG), indexing="ij")
    proj = np.cos(theta)[:, None, None] * xx + np.sin(theta)[:, None, None] * yy
    img = np.sin(freq[:, None, None] * proj + phase[:, None, None])
    cy, cx = rng.uniform(6, IMG - 6, (2, n))
    blob = np.exp(-((yy - cy[:, None, None]) ** 2 + (xx - cx[:, None, None]) ** 2) / 18.0)
    img = img + 1.5 * blob + 0.3 * rng.randn(n, IMG, IMG)
    return torch.from_numpy(img.astype(np.float32)).unsqueeze(1), torch.from_numpy(y)


# -------------------------------------------------------------------------------- masks
class MaskCollator(object):

    def __init__(self, input_size=(IMG, IMG), patch_size=PATCH, enc_mask_scale=(0.85, 1.0),
                 pred_mask_scale=(0.15, 0.2), aspect_ratio=(0.75, 1.5), nenc=1, npred=2,
                 min_keep=4, allow_overlap=False):
        super(MaskCollator, self).__init__()
        if not isinstance(input_size, tuple):
            input_size = (input_size, ) * 2
        self.patch_size = patch_size
        self.height, self.width = input_size[0] // patch_size, input_size[1] // patch_size
        self.enc_mask_scale = enc_mask_scale
        self.pred_mask_scale = pred_mask_scale
        self.aspect_ratio = aspect_ratio
        self.nenc = nenc
        self.npred = npred
        self.min_keep = min_keep  # minimum number of patches to keep
        self.allow_overlap = allow_overlap  # whether to allow overlap b/w enc and pred masks
        self._itr_counter = -1  # collator is shared across worker processes

    def step(self):
        self._itr_counter += 1
        return self._itr_counter

    def _sample_block_size(self, generator, scale, aspect_ratio_scale):
        _rand = torch.rand(1, generator=generator).item()
        # -- Sample block scale
        min_s, max_s = scale
        mask_scale = min_s + _rand * (max_s - min_s)
        max_keep = int(self.height * self.width * mask_scale)
        # -- Sample block aspect-ratio
        min_ar, max_ar = aspect_ratio_scale
        aspect_ratio = min_ar + _rand * (max_ar - min_ar)
        # -- Compute block height and width (given scale and aspect-ratio)
        h = int(round(math.sqrt(max_keep * aspect_ratio)))
        w = int(round(math.sqrt(max_keep / aspect_ratio)))
        while h >= self.height:
            h -= 1
        while w >= self.width:
            w -= 1

        return (h, w)

    def _sample_block_mask(self, b_size, acceptable_regions=None):
        h, w = b_size

        def constrain_mask(mask, tries=0):
            """ Helper to restrict given mask to a set of acceptable regions """
            N = max(int(len(acceptable_regions)-tries), 0)
            for k in range(N):
                mask *= acceptable_regions[k]
        # --
        # -- Loop to sample masks until we find a valid one
        tries = 0
        timeout = og_timeout = 20
        valid_mask = False
        while not valid_mask:
            # -- Sample block top-left corner
            top = torch.randint(0, self.height - h, (1,))
            left = torch.randint(0, self.width - w, (1,))
            mask = torch.zeros((self.height, self.width), dtype=torch.int32)
            mask[top:top+h, left:left+w] = 1
            # -- Constrain mask to a set of acceptable regions
            if acceptable_regions is not None:
                constrain_mask(mask, tries)
            mask = torch.nonzero(mask.flatten())
            # -- If mask too small try again
            valid_mask = len(mask) > self.min_keep
            if not valid_mask:
                timeout -= 1
                if timeout == 0:
                    tries += 1
                    timeout = og_timeout
        mask = mask.squeeze()
        # --
        mask_complement = torch.ones((self.height, self.width), dtype=torch.int32)
        mask_complement[top:top+h, left:left+w] = 0
        # --
        return mask, mask_complement

    def __call__(self, batch):
        '''
        Create encoder and predictor masks when collating imgs into a batch
        # 1. sample enc block (size + location) using seed
        # 2. sample pred block (size) using seed
        # 3. sample several enc block locations for each image (w/o seed)
        # 4. sample several pred block locations for each image (w/o seed)
        # 5. return enc mask and pred mask
        '''
        B = len(batch)

        collated_batch = torch.utils.data.default_collate(batch)

        seed = self.step()
        g = torch.Generator()
        g.manual_seed(seed)
        p_size = self._sample_block_size(
            generator=g,
            scale=self.pred_mask_scale,
            aspect_ratio_scale=self.aspect_ratio)
        e_size = self._sample_block_size(
            generator=g,
            scale=self.enc_mask_scale,
            aspect_ratio_scale=(1., 1.))

        collated_masks_pred, collated_masks_enc = [], []
        min_keep_pred = self.height * self.width
        min_keep_enc = self.height * self.width
        for _ in range(B):

            masks_p, masks_C = [], []
            for _ in range(self.npred):
                mask, mask_C = self._sample_block_mask(p_size)
                masks_p.append(mask)
                masks_C.append(mask_C)
                min_keep_pred = min(min_keep_pred, len(mask))
            collated_masks_pred.append(masks_p)

            acceptable_regions = masks_C
            if self.allow_overlap:
                acceptable_regions = None

            masks_e = []
            for _ in range(self.nenc):
                mask, _ = self._sample_block_mask(e_size, acceptable_regions=acceptable_regions)
                masks_e.append(mask)
                min_keep_enc = min(min_keep_enc, len(mask))
            collated_masks_enc.append(masks_e)

        collated_masks_pred = [[cm[:min_keep_pred] for cm in cm_list] for cm_list in collated_masks_pred]
        collated_masks_pred = torch.utils.data.default_collate(collated_masks_pred)
        # --
        collated_masks_enc = [[cm[:min_keep_enc] for cm in cm_list] for cm_list in collated_masks_enc]
        collated_masks_enc = torch.utils.data.default_collate(collated_masks_enc)

        return collated_batch, collated_masks_enc, collated_masks_pred


def apply_masks(x, masks):
    """
    :param x: tensor of shape [B (batch-size), N (num-patches), D (feature-dim)]
    :param masks: list of tensors containing indices of patches in [N] to keep
    """
    all_x = []
    for m in masks:
        mask_keep = m.unsqueeze(-1).repeat(1, 1, x.size(-1))
        all_x += [torch.gather(x, dim=1, index=mask_keep)]
    return torch.cat(all_x, dim=0)


def repeat_interleave_batch(x, B, repeat):
    N = len(x) // B
    x = torch.cat([
        torch.cat([x[i*B:(i+1)*B] for _ in range(repeat)], dim=0)
        for i in range(N)
    ], dim=0)
    return x


# -------------------------------------------------------------------------------- model
def get_2d_sincos_pos_embed(embed_dim, grid_size, cls_token=False):
    grid_h = np.arange(grid_size, dtype=float)
    grid_w = np.arange(grid_size, dtype=float)
    grid = np.meshgrid(grid_w, grid_h)  # here w goes first
    grid = np.stack(grid, axis=0)

    grid = grid.reshape([2, 1, grid_size, grid_size])
    pos_embed = get_2d_sincos_pos_embed_from_grid(embed_dim, grid)
    if cls_token:
        pos_embed = np.concatenate([np.zeros([1, embed_dim]), pos_embed], axis=0)
    return pos_embed


def get_2d_sincos_pos_embed_from_grid(embed_dim, grid):
    assert embed_dim % 2 == 0
    emb_h = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[0])  # (H*W, D/2)
    emb_w = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[1])  # (H*W, D/2)
    return np.concatenate([emb_h, emb_w], axis=1)  # (H*W, D)


def get_1d_sincos_pos_embed_from_grid(embed_dim, pos):
    assert embed_dim % 2 == 0
    omega = np.arange(embed_dim // 2, dtype=float)
    omega /= embed_dim / 2.
    omega = 1. / 10000**omega   # (D/2,)
    pos = pos.reshape(-1)   # (M,)
    out = np.einsum('m,d->md', pos, omega)   # (M, D/2), outer product
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)  # (M, D)


def trunc_normal_(tensor, mean=0., std=1., a=-2., b=2.):
    return torch.nn.init.trunc_normal_(tensor, mean=mean, std=std, a=a, b=b)


class MLP(nn.Module):
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
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

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
        return x, attn


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=4., qkv_bias=False, norm_layer=nn.LayerNorm):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias)
        self.norm2 = norm_layer(dim)
        mlp_hidden_dim = int(dim * mlp_ratio)
        self.mlp = MLP(in_features=dim, hidden_features=mlp_hidden_dim, act_layer=nn.GELU)

    def forward(self, x, return_attention=False):
        y, attn = self.attn(self.norm1(x))
        if return_attention:
            return attn
        x = x + y
        x = x + self.mlp(self.norm2(x))
        return x


class PatchEmbed(nn.Module):
    """ Image to Patch Embedding """
    def __init__(self, img_size=IMG, patch_size=PATCH, in_chans=1, embed_dim=32):
        super().__init__()
        num_patches = (img_size // patch_size) * (img_size // patch_size)
        self.img_size = img_size
        self.patch_size = patch_size
        self.num_patches = num_patches
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        B, C, H, W = x.shape
        x = self.proj(x).flatten(2).transpose(1, 2)
        return x


class VisionTransformer(nn.Module):
    """ Vision Transformer """
    def __init__(self, img_size=(IMG,), patch_size=PATCH, in_chans=1, embed_dim=32, depth=2,
                 num_heads=4, mlp_ratio=2.0, qkv_bias=True, norm_layer=nn.LayerNorm, init_std=0.02):
        super().__init__()
        self.num_features = self.embed_dim = embed_dim
        self.num_heads = num_heads
        # --
        self.patch_embed = PatchEmbed(img_size=img_size[0], patch_size=patch_size,
                                      in_chans=in_chans, embed_dim=embed_dim)
        num_patches = self.patch_embed.num_patches
        # --
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, embed_dim), requires_grad=False)
        pos_embed = get_2d_sincos_pos_embed(self.pos_embed.shape[-1],
                                            int(self.patch_embed.num_patches**.5),
                                            cls_token=False)
        self.pos_embed.data.copy_(torch.from_numpy(pos_embed).float().unsqueeze(0))
        # --
        self.blocks = nn.ModuleList([
            Block(dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                  norm_layer=norm_layer)
            for i in range(depth)])
        self.norm = norm_layer(embed_dim)
        # ------
        self.init_std = init_std
        self.apply(self._init_weights)
        self.fix_init_weight()

    def fix_init_weight(self):
        def rescale(param, layer_id):
            param.div_(math.sqrt(2.0 * layer_id))

        for layer_id, layer in enumerate(self.blocks):
            rescale(layer.attn.proj.weight.data, layer_id + 1)
            rescale(layer.mlp.fc2.weight.data, layer_id + 1)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=self.init_std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)
        elif isinstance(m, nn.Conv2d):
            trunc_normal_(m.weight, std=self.init_std)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)

    def forward(self, x, masks=None):
        if masks is not None:
            if not isinstance(masks, list):
                masks = [masks]

        # -- patchify x
        x = self.patch_embed(x)
        B, N, D = x.shape

        # -- add positional embedding to x
        pos_embed = self.pos_embed
        x = x + pos_embed

        # -- mask x
        if masks is not None:
            x = apply_masks(x, masks)

        # -- fwd prop
        for i, blk in enumerate(self.blocks):
            x = blk(x)

        if self.norm is not None:
            x = self.norm(x)

        return x


class VisionTransformerPredictor(nn.Module):
    """ Vision Transformer """
    def __init__(self, num_patches, embed_dim=32, predictor_embed_dim=24, depth=2, num_heads=4,
                 mlp_ratio=2.0, qkv_bias=True, norm_layer=nn.LayerNorm, init_std=0.02):
        super().__init__()
        self.predictor_embed = nn.Linear(embed_dim, predictor_embed_dim, bias=True)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, predictor_embed_dim))
        # --
        self.predictor_pos_embed = nn.Parameter(torch.zeros(1, num_patches, predictor_embed_dim),
                                                requires_grad=False)
        predictor_pos_embed = get_2d_sincos_pos_embed(self.predictor_pos_embed.shape[-1],
                                                      int(num_patches**.5),
                                                      cls_token=False)
        self.predictor_pos_embed.data.copy_(torch.from_numpy(predictor_pos_embed).float().unsqueeze(0))
        # --
        self.predictor_blocks = nn.ModuleList([
            Block(dim=predictor_embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio,
                  qkv_bias=qkv_bias, norm_layer=norm_layer)
            for i in range(depth)])
        self.predictor_norm = norm_layer(predictor_embed_dim)
        self.predictor_proj = nn.Linear(predictor_embed_dim, embed_dim, bias=True)
        # ------
        self.init_std = init_std
        trunc_normal_(self.mask_token, std=self.init_std)
        self.apply(self._init_weights)
        self.fix_init_weight()

    def fix_init_weight(self):
        def rescale(param, layer_id):
            param.div_(math.sqrt(2.0 * layer_id))

        for layer_id, layer in enumerate(self.predictor_blocks):
            rescale(layer.attn.proj.weight.data, layer_id + 1)
            rescale(layer.mlp.fc2.weight.data, layer_id + 1)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=self.init_std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)

    def forward(self, x, masks_x, masks):
        assert (masks is not None) and (masks_x is not None), 'Cannot run predictor without mask indices'

        if not isinstance(masks_x, list):
            masks_x = [masks_x]

        if not isinstance(masks, list):
            masks = [masks]

        # -- Batch Size
        B = len(x) // len(masks_x)

        # -- map from encoder-dim to pedictor-dim
        x = self.predictor_embed(x)

        # -- add positional embedding to x tokens
        x_pos_embed = self.predictor_pos_embed.repeat(B, 1, 1)
        x += apply_masks(x_pos_embed, masks_x)

        _, N_ctxt, D = x.shape

        # -- concat mask tokens to x
        pos_embs = self.predictor_pos_embed.repeat(B, 1, 1)
        pos_embs = apply_masks(pos_embs, masks)
        pos_embs = repeat_interleave_batch(pos_embs, B, repeat=len(masks_x))
        # --
        pred_tokens = self.mask_token.repeat(pos_embs.size(0), pos_embs.size(1), 1)
        # --
        pred_tokens += pos_embs
        x = x.repeat(len(masks), 1, 1)
        x = torch.cat([x, pred_tokens], dim=1)

        # -- fwd prop
        for blk in self.predictor_blocks:
            x = blk(x)
        x = self.predictor_norm(x)

        # -- return preds for mask tokens
        x = x[:, N_ctxt:]
        x = self.predictor_proj(x)

        return x


# -------------------------------------------------------------------------------- train
rng = np.random.RandomState(seed)
X_train, y_train = make_images(384, rng)
X_test, y_test = make_images(256, rng)

BATCH, EPOCHS = 32, 4
ipe = len(X_train) // BATCH
ema = (0.99, 1.0)
mask_collator = MaskCollator()

encoder = VisionTransformer()
predictor = VisionTransformerPredictor(num_patches=encoder.patch_embed.num_patches)
random_encoder = copy.deepcopy(encoder)
target_encoder = copy.deepcopy(encoder)
for p in target_encoder.parameters():
    p.requires_grad = False

param_groups = [
    {'params': (p for n, p in encoder.named_parameters() if ('bias' not in n) and (len(p.shape) != 1))},
    {'params': (p for n, p in predictor.named_parameters() if ('bias' not in n) and (len(p.shape) != 1))},
    {'params': (p for n, p in encoder.named_parameters() if ('bias' in n) or (len(p.shape) == 1)),
     'WD_exclude': True, 'weight_decay': 0},
    {'params': (p for n, p in predictor.named_parameters() if ('bias' in n) or (len(p.shape) == 1)),
     'WD_exclude': True, 'weight_decay': 0},
]
optimizer = torch.optim.AdamW(param_groups, lr=2e-3, weight_decay=0.04)
momentum_scheduler = (ema[0] + i*(ema[1]-ema[0])/(ipe*EPOCHS)
                      for i in range(int(ipe*EPOCHS)+1))

n_grid = GRID * GRID
in_bounds, disjoint, gather_ok, ema_err = True, True, True, 0.0
losses = []
for epoch in range(EPOCHS):
    perm = torch.randperm(len(X_train))
    epoch_loss = 0.0
    for itr in range(ipe):
        idx = perm[itr * BATCH:(itr + 1) * BATCH]
        batch = [X_train[i] for i in idx.tolist()]
        imgs, masks_enc, masks_pred = mask_collator(batch)

        # -- the masks: in the grid, context disjoint from every target block
        for m in masks_enc + masks_pred:
            in_bounds &= bool(((m >= 0) & (m < n_grid)).all())
        for b in range(BATCH):
            ctx = set(masks_enc[0][b].tolist())
            for m in masks_pred:
                disjoint &= not (ctx & set(m[b].tolist()))

        def forward_target():
            with torch.no_grad():
                h = target_encoder(imgs)
                h = F.layer_norm(h, (h.size(-1),))  # normalize over feature-dim
                B = len(h)
                # -- create targets (masked regions of h)
                h = apply_masks(h, masks_pred)
                h = repeat_interleave_batch(h, B, repeat=len(masks_enc))
                return h

        def forward_context():
            z = encoder(imgs, masks_enc)
            z = predictor(z, masks_enc, masks_pred)
            return z

        def loss_fn(z, h):
            loss = F.smooth_l1_loss(z, h)
            return loss

        h = forward_target()
        z = forward_context()
        loss = loss_fn(z, h)

        if itr == 0:
            with torch.no_grad():
                full = target_encoder(imgs)
                m0 = masks_pred[0]
                gathered = apply_masks(full, [m0])
                gather_ok &= torch.equal(gathered, full[torch.arange(BATCH)[:, None], m0])

        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

        # Step 3. momentum update of target encoder
        saved_k = [p.detach().clone() for p in target_encoder.parameters()]
        with torch.no_grad():
            m = next(momentum_scheduler)
            for param_q, param_k in zip(encoder.parameters(), target_encoder.parameters()):
                param_k.data.mul_(m).add_((1.-m) * param_q.detach().data)
        for k_old, param_q, param_k in zip(saved_k, encoder.parameters(), target_encoder.parameters()):
            expected = m * k_old + (1. - m) * param_q.detach()
            ema_err = max(ema_err, (param_k - expected).abs().max().item())

        epoch_loss += loss.item()
        losses.append(loss.item())
    print(f"[{epoch + 1}] loss: {epoch_loss / ipe:.4f}  ctx tokens: {masks_enc[0].size(1)}  "
          f"target tokens: {masks_pred[0].size(1)}")

print("masks in bounds:", in_bounds, " context/target disjoint:", disjoint, " gather == indexing:", gather_ok)
print(f"ema max |error|: {ema_err:.2e}")


# --------------------------------------------------------------------------- linear probe
@torch.no_grad()
def features(net, x):
    return net(x).mean(dim=1)


def ridge_probe(f_train, f_test, lam=1e-2):
    mu, sd = f_train.mean(0, keepdim=True), f_train.std(0, keepdim=True) + 1e-6
    a = torch.cat([(f_train - mu) / sd, torch.ones(len(f_train), 1)], dim=1)
    b = torch.cat([(f_test - mu) / sd, torch.ones(len(f_test), 1)], dim=1)
    targets = F.one_hot(y_train, N_CLASSES).float()
    w = torch.linalg.solve(a.T @ a + lam * torch.eye(a.size(1)), a.T @ targets)
    return ((b @ w).argmax(1) == y_test).float().mean().item()


target_encoder.eval()
random_encoder.eval()
acc_learned = ridge_probe(features(target_encoder, X_train), features(target_encoder, X_test))
acc_random = ridge_probe(features(random_encoder, X_train), features(random_encoder, X_test))
first, last = sum(losses[:ipe]) / ipe, sum(losses[-ipe:]) / ipe
print(f"probe acc learned {acc_learned:.4f} random {acc_random:.4f}")
print(f"FINAL loss_first={first:.4f} loss_last={last:.4f} probe_learned={acc_learned:.4f} "
      f"probe_random={acc_random:.4f} probe_gain={acc_learned - acc_random:.4f} ema_err={ema_err:.6f}")
