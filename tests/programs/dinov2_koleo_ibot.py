"""DINOv2 (facebookresearch/dinov2 ``dino_clstoken_loss.py``, ``ibot_patch_loss.py``, ``koleo_loss.py``,
``ssl_meta_arch.py``, ``masking.py``, ``vision_transformer.py``) at tiny sizes, one process.

As the repo writes it: ``DINOLoss.sinkhorn_knopp_teacher`` (``torch.exp(teacher_output / teacher_temp).t()``,
``Q /= sum_Q``, three rounds of row then column normalisation, ``Q *= B``, ``Q.t()``) and
``softmax_center_teacher`` with the EMA ``center`` buffer (``reduce_center_update``/``apply_center_update``),
the CLS loss ``torch.sum(t * F.log_softmax(s / self.student_temp, dim=-1), dim=-1)`` over global and
local crops (teacher global crops swapped by ``chunk`` + ``torch.cat`` so no crop meets its own view);
``iBOTPatchLoss.forward_masked`` on ``masks_weight = (1 / masks.sum(-1).clamp(min=1.0)).unsqueeze(-1)
.expand_as(masks)[masks]``, with the ``MaskingGenerator`` (random aspect-ratio rectangles on a
``torch.zeros(...).bool()`` grid), ``mask_indices_list = masks.flatten().nonzero().flatten()`` and
``torch.index_select`` of the masked patch tokens, student tokens replaced by
``torch.where(masks.unsqueeze(-1), self.mask_token.to(x.dtype).unsqueeze(0), x)``; ``KoLeoLoss``
(``F.normalize``, ``torch.mm(x, x.t())``, ``dots.view(-1)[:: (n + 1)].fill_(-1)``, ``torch.max``
nearest neighbours, ``nn.PairwiseDistance(2, eps=1e-8)``, ``-torch.log(distances + eps).mean()``); a
ViT with ``LayerScale``, ``interpolate_pos_encoding`` (bicubic ``F.interpolate`` with the 0.1
``interpolate_offset`` scale factors) for the local crops, ``DINOHead`` with a
``nn.utils.weight_norm`` last layer; the teacher EMA by ``torch._foreach_mul_``/``torch._foreach_add_``
on parameter lists; layer-wise lr decay groups (``get_vit_lr_decay_rate``, ``lr_multiplier`` /
``wd_multiplier`` written into ``param_groups``); then DINO's weighted kNN classifier on frozen teacher
features. Data: 16x16 RGB textures of four kinds (stripes three ways, checkers).
"""

import math
import os
import random
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
random.seed(seed)
rng = np.random.RandomState(seed)
warnings.filterwarnings("ignore", message=".*weight_norm is deprecated.*")


# data: four texture families, random frequency, phase and colour

def make_textures(n):
    yy, xx = np.mgrid[0:16, 0:16].astype(np.float32)
    images = np.zeros((n, 3, 16, 16), np.float32)
    labels = rng.randint(0, 4, size=n)
    for i, c in enumerate(labels):
        f = rng.uniform(0.5, 1.2)
        phase = rng.uniform(0, 2 * np.pi)
        if c == 0:
            pattern = np.sin(f * xx + phase)
        elif c == 1:
            pattern = np.sin(f * yy + phase)
        elif c == 2:
            pattern = np.sin(f * (xx + yy) / np.sqrt(2) + phase)
        else:
            pattern = np.sin(f * xx + phase) * np.sin(f * yy + phase)
        colour = rng.uniform(0.3, 1.0, size=(3, 1, 1)).astype(np.float32)
        images[i] = colour * pattern[None] + 0.3 * rng.randn(3, 16, 16)
    return torch.from_numpy(images), torch.from_numpy(labels)


x_train, y_train = make_textures(256)
x_test, y_test = make_textures(128)


def global_crops(x):
    flip = torch.rand(x.shape[0]) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x + 0.1 * torch.randn_like(x)


def local_crops(x, n_local):
    crops = []
    for _ in range(n_local):
        top, left = random.randint(0, 8), random.randint(0, 8)
        crops.append(x[:, :, top:top + 8, left:left + 8] + 0.1 * torch.randn(x.shape[0], 3, 8, 8))
    return crops


# masking.py

class MaskingGenerator:
    def __init__(self, input_size, num_masking_patches=None, min_num_patches=2, max_num_patches=None,
                 min_aspect=0.3, max_aspect=None):
        if not isinstance(input_size, tuple):
            input_size = (input_size,) * 2
        self.height, self.width = input_size
        self.num_patches = self.height * self.width
        self.num_masking_patches = num_masking_patches
        self.min_num_patches = min_num_patches
        self.max_num_patches = num_masking_patches if max_num_patches is None else max_num_patches
        max_aspect = max_aspect or 1 / min_aspect
        self.log_aspect_ratio = (math.log(min_aspect), math.log(max_aspect))

    def get_shape(self):
        return self.height, self.width

    def _mask(self, mask, max_mask_patches):
        delta = 0
        for _ in range(10):
            target_area = random.uniform(self.min_num_patches, max_mask_patches)
            aspect_ratio = math.exp(random.uniform(*self.log_aspect_ratio))
            h = int(round(math.sqrt(target_area * aspect_ratio)))
            w = int(round(math.sqrt(target_area / aspect_ratio)))
            if w < self.width and h < self.height:
                top = random.randint(0, self.height - h)
                left = random.randint(0, self.width - w)
                num_masked = mask[top: top + h, left: left + w].sum()
                # Overlap
                if 0 < h * w - num_masked <= max_mask_patches:
                    for i in range(top, top + h):
                        for j in range(left, left + w):
                            if mask[i, j] == 0:
                                mask[i, j] = 1
                                delta += 1
                if delta > 0:
                    break
        return delta

    def __call__(self, num_masking_patches=0):
        mask = torch.zeros(self.get_shape()).bool()
        mask_count = 0
        while mask_count < num_masking_patches:
            max_mask_patches = num_masking_patches - mask_count
            max_mask_patches = min(max_mask_patches, self.max_num_patches)
            delta = self._mask(mask, max_mask_patches)
            if delta == 0:
                break
            else:
                mask_count += delta
        return mask


# vision_transformer.py and layers/

def trunc_normal_init(m):
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


class LayerScale(nn.Module):
    def __init__(self, dim, init_values=1e-5, inplace=False):
        super().__init__()
        self.inplace = inplace
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x):
        return x.mul_(self.gamma) if self.inplace else x * self.gamma


class Attention(nn.Module):
    def __init__(self, dim, num_heads=8, qkv_bias=False, proj_bias=True):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = q @ k.transpose(-2, -1)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=4.0, init_values=None):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=True)
        self.ls1 = LayerScale(dim, init_values=init_values) if init_values else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, init_values=init_values) if init_values else nn.Identity()

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        x = x + self.ls2(self.mlp(self.norm2(x)))
        return x


class PatchEmbed(nn.Module):
    def __init__(self, patch_size=4, in_chans=3, embed_dim=32):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        x = self.proj(x)  # B C H W
        return x.flatten(2).transpose(1, 2)  # B HW C


class DinoVisionTransformer(nn.Module):
    def __init__(self, img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2, init_values=0.1,
                 interpolate_offset=0.1):
        super().__init__()
        self.embed_dim = embed_dim
        self.patch_size = patch_size
        self.interpolate_offset = interpolate_offset
        self.patch_embed = PatchEmbed(patch_size, 3, embed_dim)
        num_patches = (img_size // patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads, init_values=init_values) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.mask_token = nn.Parameter(torch.zeros(1, embed_dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        self.apply(trunc_normal_init)

    def interpolate_pos_encoding(self, x, w, h):
        previous_dtype = x.dtype
        npatch = x.shape[1] - 1
        N = self.pos_embed.shape[1] - 1
        if npatch == N and w == h:
            return self.pos_embed
        pos_embed = self.pos_embed.float()
        class_pos_embed = pos_embed[:, 0]
        patch_pos_embed = pos_embed[:, 1:]
        dim = x.shape[-1]
        w0 = w // self.patch_size
        h0 = h // self.patch_size
        M = int(math.sqrt(N))  # Recover the number of patches in each dimension
        assert N == M * M
        sx = float(w0 + self.interpolate_offset) / M
        sy = float(h0 + self.interpolate_offset) / M
        patch_pos_embed = nn.functional.interpolate(
            patch_pos_embed.reshape(1, M, M, dim).permute(0, 3, 1, 2),
            mode="bicubic",
            antialias=False,
            scale_factor=(sx, sy),
        )
        assert (w0, h0) == patch_pos_embed.shape[-2:]
        patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).view(1, -1, dim)
        return torch.cat((class_pos_embed.unsqueeze(0), patch_pos_embed), dim=1).to(previous_dtype)

    def prepare_tokens_with_masks(self, x, masks=None):
        B, nc, w, h = x.shape
        x = self.patch_embed(x)
        if masks is not None:
            x = torch.where(masks.unsqueeze(-1), self.mask_token.to(x.dtype).unsqueeze(0), x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = x + self.interpolate_pos_encoding(x, w, h)
        return x

    def forward_features(self, x, masks=None):
        x = self.prepare_tokens_with_masks(x, masks)
        for blk in self.blocks:
            x = blk(x)
        x_norm = self.norm(x)
        return {
            "x_norm_clstoken": x_norm[:, 0],
            "x_norm_patchtokens": x_norm[:, 1:],
            "masks": masks,
        }


class DINOHead(nn.Module):
    def __init__(self, in_dim, out_dim, hidden_dim=64, bottleneck_dim=32):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, bottleneck_dim))
        self.apply(trunc_normal_init)
        self.last_layer = nn.utils.weight_norm(nn.Linear(bottleneck_dim, out_dim, bias=False))
        self.last_layer.weight_g.data.fill_(1)

    def forward(self, x):
        x = self.mlp(x)
        eps = 1e-6 if x.dtype == torch.float16 else 1e-12
        x = nn.functional.normalize(x, dim=-1, p=2, eps=eps)
        return self.last_layer(x)


# loss/dino_clstoken_loss.py

class DINOLoss(nn.Module):
    def __init__(self, out_dim, student_temp=0.1, center_momentum=0.9):
        super().__init__()
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.register_buffer("center", torch.zeros(1, out_dim))
        self.updated = True
        self.len_teacher_output = None
        self.async_batch_center = None

    @torch.no_grad()
    def softmax_center_teacher(self, teacher_output, teacher_temp):
        self.apply_center_update()
        # teacher centering and sharpening
        return F.softmax((teacher_output - self.center) / teacher_temp, dim=-1)

    @torch.no_grad()
    def sinkhorn_knopp_teacher(self, teacher_output, teacher_temp, n_iterations=3):
        teacher_output = teacher_output.float()
        world_size = 1
        Q = torch.exp(teacher_output / teacher_temp).t()  # Q is K-by-B for consistency with notations from our paper
        B = Q.shape[1] * world_size  # number of samples to assign
        K = Q.shape[0]  # how many prototypes

        # make the matrix sums to 1
        sum_Q = torch.sum(Q)
        Q /= sum_Q

        for it in range(n_iterations):  # noqa: B007 (the repo's loop)
            # normalize each row: total weight per prototype must be 1/K
            sum_of_rows = torch.sum(Q, dim=1, keepdim=True)
            Q /= sum_of_rows
            Q /= K

            # normalize each column: total weight per sample must be 1/B
            Q /= torch.sum(Q, dim=0, keepdim=True)
            Q /= B

        Q *= B  # the columns must sum to 1 so that Q is an assignment
        return Q.t()

    def forward(self, student_output_list, teacher_out_softmaxed_centered_list):
        total_loss = 0
        for s in student_output_list:
            lsm = F.log_softmax(s / self.student_temp, dim=-1)
            for t in teacher_out_softmaxed_centered_list:
                loss = torch.sum(t * lsm, dim=-1)
                total_loss -= loss.mean()
        return total_loss

    @torch.no_grad()
    def update_center(self, teacher_output):
        self.reduce_center_update(teacher_output)

    @torch.no_grad()
    def reduce_center_update(self, teacher_output):
        self.updated = False
        self.len_teacher_output = len(teacher_output)
        self.async_batch_center = torch.sum(teacher_output, dim=0, keepdim=True)

    @torch.no_grad()
    def apply_center_update(self):
        if self.updated is False:
            world_size = 1
            _t = self.async_batch_center / (self.len_teacher_output * world_size)
            self.center = self.center * self.center_momentum + _t * (1 - self.center_momentum)
            self.updated = True


# loss/ibot_patch_loss.py

def lossfunc(t, s, temp):
    return torch.sum(t * F.log_softmax(s / temp, dim=-1), dim=-1)


class iBOTPatchLoss(nn.Module):
    def __init__(self, patch_out_dim, student_temp=0.1, center_momentum=0.9):
        super().__init__()
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.register_buffer("center", torch.zeros(1, 1, patch_out_dim))
        self.updated = True

    @torch.no_grad()
    def softmax_center_teacher(self, teacher_patch_tokens, teacher_temp):
        self.apply_center_update()
        return F.softmax((teacher_patch_tokens - self.center) / teacher_temp, dim=-1)

    def forward_masked(self, student_patch_tokens_masked, teacher_patch_tokens_masked, student_masks_flat,
                       n_masked_patches=None, masks_weight=None):
        t = teacher_patch_tokens_masked
        s = student_patch_tokens_masked
        loss = lossfunc(t, s, self.student_temp)
        if masks_weight is None:
            masks_weight = (
                (1 / student_masks_flat.sum(-1).clamp(min=1.0))
                .unsqueeze(-1)
                .expand_as(student_masks_flat)[student_masks_flat]
            )
        if n_masked_patches is not None:
            loss = loss[:n_masked_patches]
        loss = loss * masks_weight
        return -loss.sum() / student_masks_flat.shape[0]

    @torch.no_grad()
    def update_center(self, teacher_patch_tokens):
        self.updated = False
        self.len_teacher_patch_tokens = len(teacher_patch_tokens)
        self.async_batch_center = torch.sum(teacher_patch_tokens.mean(1), dim=0, keepdim=True)

    @torch.no_grad()
    def apply_center_update(self):
        if self.updated is False:
            _t = self.async_batch_center / self.len_teacher_patch_tokens
            self.center = self.center * self.center_momentum + _t * (1 - self.center_momentum)
            self.updated = True


# loss/koleo_loss.py

class KoLeoLoss(nn.Module):
    """Kozachenko-Leonenko entropic loss regularizer from Sablayrolles et al. - 2018 - Spreading vectors for similarity search"""

    def __init__(self):
        super().__init__()
        self.pdist = nn.PairwiseDistance(2, eps=1e-8)

    def pairwise_NNs_inner(self, x):
        """
        Pairwise nearest neighbors for L2-normalized vectors.
        Uses Torch rather than Faiss to remain on GPU.
        """
        # parwise dot products (= inverse distance)
        dots = torch.mm(x, x.t())
        n = x.shape[0]
        dots.view(-1)[:: (n + 1)].fill_(-1)  # Trick to fill diagonal with -1
        # max inner prod -> min distance
        _, I = torch.max(dots, dim=1)  # noqa: E741
        return I

    def forward(self, student_output, eps=1e-8):
        student_output = F.normalize(student_output, eps=eps, p=2, dim=-1)
        I = self.pairwise_NNs_inner(student_output)  # noqa: E741
        distances = self.pdist(student_output, student_output[I])  # BxD, BxD -> B
        loss = -torch.log(distances + eps).mean()
        return loss


# the meta-architecture, reduced to one process

OUT_DIM = 64
N_GLOBAL, N_LOCAL = 2, 4
student = nn.ModuleDict({"backbone": DinoVisionTransformer(), "dino_head": DINOHead(32, OUT_DIM)})
teacher = nn.ModuleDict({"backbone": DinoVisionTransformer(), "dino_head": DINOHead(32, OUT_DIM)})
teacher.load_state_dict(student.state_dict())
for p in teacher.parameters():
    p.requires_grad = False
dino_loss = DINOLoss(OUT_DIM)
ibot_patch_loss = iBOTPatchLoss(OUT_DIM)
koleo_loss = KoLeoLoss()
mask_generator = MaskingGenerator(input_size=(4, 4), max_num_patches=0.5 * 16)

# Sinkhorn-Knopp marginals: columns of Q (samples) sum to 1 exactly after the last column step,
# rows (prototypes) to B/K approximately after three rounds
with torch.no_grad():
    probe = student.dino_head(student.backbone.forward_features(x_train[:64])["x_norm_clstoken"])
    probe = probe + 0.1 * torch.randn_like(probe)  # a peaked teacher, as after some training
    Q = dino_loss.sinkhorn_knopp_teacher(probe, teacher_temp=0.04)
sample_sums = Q.sum(1)
prototype_sums = Q.sum(0)
sk_col_err = (sample_sums - 1).abs().max().item()
sk_row_err = ((prototype_sums - 64 / OUT_DIM).abs().max() / (64 / OUT_DIM)).item()
assert Q.shape == (64, OUT_DIM) and Q.dtype == torch.float32
assert sk_col_err < 1e-4, sk_col_err
print(f"sinkhorn: Q {tuple(Q.shape)} sample sums err {sk_col_err:.2e} prototype sums err {sk_row_err:.3f}")

# KoLeo falls as features spread: near-duplicates against isotropic features
collapsed = torch.randn(1, 16) + 0.01 * torch.randn(64, 16)
spread = torch.randn(64, 16)
koleo_collapsed = koleo_loss(collapsed).item()
koleo_spread = koleo_loss(spread).item()
assert koleo_spread < koleo_collapsed
print(f"koleo collapsed {koleo_collapsed:.3f} spread {koleo_spread:.3f}")


def get_vit_lr_decay_rate(name, lr_decay_rate=1.0, num_layers=12):
    layer_id = num_layers + 1
    if name.startswith("backbone"):
        if ".pos_embed" in name or ".patch_embed" in name or ".mask_token" in name or ".cls_token" in name:
            layer_id = 0
        elif ".blocks." in name:
            layer_id = int(name[name.find(".blocks."):].split(".")[2]) + 1
    return lr_decay_rate ** (num_layers + 1 - layer_id)


def get_params_groups_with_decay(model, lr_decay_rate=1.0):
    all_param_groups = []
    for name, param in model.named_parameters():
        name = name.replace("_fsdp_wrapped_module.", "")
        if not param.requires_grad:
            continue
        decay_rate = get_vit_lr_decay_rate(name, lr_decay_rate, num_layers=2)
        d = {"params": param, "is_last_layer": False, "lr_multiplier": decay_rate, "wd_multiplier": 1.0, "name": name}
        if "last_layer" in name:
            d.update({"is_last_layer": True})
        if name.endswith(".bias") or "norm" in name or "gamma" in name:
            d.update({"wd_multiplier": 0.0})
        all_param_groups.append(d)
    return all_param_groups


def fuse_params_groups(all_params_groups, keys=("lr_multiplier", "wd_multiplier", "is_last_layer")):
    fused_params_groups = {}
    for d in all_params_groups:
        identifier = ""
        for k in keys:
            identifier += k + str(d[k]) + "_"
        if identifier not in fused_params_groups:
            fused_params_groups[identifier] = {k: d[k] for k in keys}
            fused_params_groups[identifier]["params"] = []
        fused_params_groups[identifier]["params"].append(d["params"])
    return fused_params_groups.values()


params_groups = list(fuse_params_groups(get_params_groups_with_decay(student, lr_decay_rate=0.8)))
optimizer = torch.optim.AdamW(params_groups, betas=(0.9, 0.999))
print(f"param groups: {len(optimizer.param_groups)} lr multipliers: "
      f"{sorted({round(g['lr_multiplier'], 3) for g in optimizer.param_groups})}")


def update_teacher(m):
    student_param_list = []
    teacher_param_list = []
    with torch.no_grad():
        for k in student.keys():
            student_param_list += list(student[k].parameters())
            teacher_param_list += list(teacher[k].parameters())
        torch._foreach_mul_(teacher_param_list, m)
        torch._foreach_add_(teacher_param_list, student_param_list, alpha=1 - m)


EPOCHS, BS = 4, 32
steps_per_epoch = len(x_train) // BS
total_steps = EPOCHS * steps_per_epoch
base_lr, wd, ibot_weight, koleo_weight = 2e-3, 0.04, 1.0, 0.1
losses = []
step = 0
for epoch in range(EPOCHS):
    perm = torch.randperm(len(x_train))
    epoch_losses = []
    for it in range(steps_per_epoch):
        images = x_train[perm[it * BS:(it + 1) * BS]]
        g = torch.cat([global_crops(images) for _ in range(N_GLOBAL)])
        locals_ = torch.cat(local_crops(images, N_LOCAL))
        B = g.shape[0]
        masks = torch.stack([mask_generator(random.randint(2, 8)) if i < B // 2 else mask_generator(0)
                             for i in range(B)]).flatten(1)
        mask_indices_list = masks.flatten().nonzero().flatten()
        n_masked_patches = mask_indices_list.shape[0]
        masks_weight = (1 / masks.sum(-1).clamp(min=1.0)).unsqueeze(-1).expand_as(masks)[masks]

        lr = base_lr * min(1.0, (step + 1) / 8) * 0.5 * (1 + math.cos(math.pi * step / total_steps))
        teacher_temp = 0.04 + (0.07 - 0.04) * min(1.0, step / (total_steps / 2))
        momentum = 0.99 - (0.99 - 0.9) * 0.5 * (1 + math.cos(math.pi * step / total_steps))
        for param_group in optimizer.param_groups:
            param_group["weight_decay"] = wd * param_group["wd_multiplier"]
            param_group["lr"] = lr * param_group["lr_multiplier"]

        # teacher
        with torch.no_grad():
            t_out = teacher.backbone.forward_features(g)
            teacher_cls_tokens = t_out["x_norm_clstoken"]
            teacher_cls_tokens = teacher_cls_tokens.chunk(N_GLOBAL)
            # watch out: these are chunked and cat'd in reverse so A is matched to B in the global crops dino loss
            teacher_cls_tokens = torch.cat((teacher_cls_tokens[1], teacher_cls_tokens[0]))
            ibot_teacher_patch_tokens = t_out["x_norm_patchtokens"]
            masked_teacher_patch_tokens = torch.index_select(ibot_teacher_patch_tokens.flatten(0, 1), dim=0,
                                                             index=mask_indices_list)
            teacher_cls_after_head = teacher.dino_head(teacher_cls_tokens)
            masked_teacher_ibot_after_head = teacher.dino_head(masked_teacher_patch_tokens)
            teacher_dino_softmaxed_centered_list = dino_loss.sinkhorn_knopp_teacher(
                teacher_cls_after_head, teacher_temp=teacher_temp).view(N_GLOBAL, -1, OUT_DIM)
            masked_teacher_ibot_softmaxed_centered = ibot_patch_loss.softmax_center_teacher(
                masked_teacher_ibot_after_head.unsqueeze(0), teacher_temp=teacher_temp).squeeze(0)
            ibot_patch_loss.update_center(masked_teacher_ibot_after_head.unsqueeze(0))

        # student
        s_global = student.backbone.forward_features(g, masks=masks)
        s_local = student.backbone.forward_features(locals_)
        student_global_cls_after_head = student.dino_head(s_global["x_norm_clstoken"])
        student_local_cls_after_head = student.dino_head(s_local["x_norm_clstoken"])
        buffer_tensor_patch_tokens = s_global["x_norm_patchtokens"].new_zeros(n_masked_patches, 32)
        buffer_tensor_patch_tokens[:n_masked_patches].copy_(
            torch.index_select(s_global["x_norm_patchtokens"].flatten(0, 1), dim=0, index=mask_indices_list))
        student_masked_after_head = student.dino_head(buffer_tensor_patch_tokens)[:n_masked_patches]

        dino_local_crops_loss = dino_loss(
            student_output_list=student_local_cls_after_head.chunk(N_LOCAL),
            teacher_out_softmaxed_centered_list=teacher_dino_softmaxed_centered_list,
        ) / (N_GLOBAL * N_LOCAL + N_GLOBAL * (N_GLOBAL - 1))
        dino_global_crops_loss = dino_loss(
            student_output_list=[student_global_cls_after_head],
            teacher_out_softmaxed_centered_list=[teacher_dino_softmaxed_centered_list.flatten(0, 1)],
        ) * 2 / (N_GLOBAL * N_LOCAL + N_GLOBAL * (N_GLOBAL - 1))
        koleo = koleo_weight * sum(koleo_loss(p) for p in s_global["x_norm_clstoken"].chunk(2))
        ibot = ibot_patch_loss.forward_masked(student_masked_after_head, masked_teacher_ibot_softmaxed_centered,
                                              student_masks_flat=masks, n_masked_patches=n_masked_patches,
                                              masks_weight=masks_weight)
        loss = dino_local_crops_loss + dino_global_crops_loss + koleo + ibot_weight * ibot * 2 / N_GLOBAL

        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(student.parameters(), 3.0)
        optimizer.step()
        update_teacher(momentum)
        epoch_losses.append([loss.item(), dino_global_crops_loss.item() + dino_local_crops_loss.item(),
                             ibot.item(), koleo.item()])
        step += 1
    mean = np.mean(epoch_losses, axis=0)
    losses.append(mean)
    print(f"epoch {epoch} total {mean[0]:.4f} dino {mean[1]:.4f} ibot {mean[2]:.4f} koleo {mean[3]:.4f} "
          f"lr {lr:.2e} teacher temp {teacher_temp:.3f} momentum {momentum:.4f}")


# eval/knn.py: weighted kNN on frozen teacher features

@torch.no_grad()
def knn_classifier(train_features, train_labels, test_features, test_labels, k, T, num_classes=4):
    top1, total = 0.0, 0
    train_features = train_features.t()
    num_test_images, num_chunks = test_labels.shape[0], 2
    imgs_per_chunk = num_test_images // num_chunks
    retrieval_one_hot = torch.zeros(k, num_classes).to(train_features.device)
    for idx in range(0, num_test_images, imgs_per_chunk):
        features = test_features[idx: min((idx + imgs_per_chunk), num_test_images), :]
        targets = test_labels[idx: min((idx + imgs_per_chunk), num_test_images)]
        batch_size = targets.shape[0]
        similarity = torch.mm(features, train_features)
        distances, indices = similarity.topk(k, largest=True, sorted=True)
        candidates = train_labels.view(1, -1).expand(batch_size, -1)
        retrieved_neighbors = torch.gather(candidates, 1, indices)
        retrieval_one_hot.resize_(batch_size * k, num_classes).zero_()
        retrieval_one_hot.scatter_(1, retrieved_neighbors.view(-1, 1), 1)
        distances_transform = distances.clone().div_(T).exp_()
        probs = torch.sum(
            torch.mul(retrieval_one_hot.view(batch_size, -1, num_classes), distances_transform.view(batch_size, -1, 1)),
            1,
        )
        _, predictions = probs.sort(1, True)
        correct = predictions.eq(targets.data.view(-1, 1))
        top1 = top1 + correct.narrow(1, 0, 1).sum().item()
        total += targets.size(0)
    return top1 * 100.0 / total


with torch.no_grad():
    train_feats = F.normalize(teacher.backbone.forward_features(x_train)["x_norm_clstoken"], dim=1, p=2)
    test_feats = F.normalize(teacher.backbone.forward_features(x_test)["x_norm_clstoken"], dim=1, p=2)
    koleo_end = koleo_loss(test_feats).item()
knn_acc = knn_classifier(train_feats, y_train, test_feats, y_test, k=10, T=0.07) / 100
print(f"knn: 10-NN top1 {knn_acc:.4f}  koleo of test features {koleo_end:.4f}")
loss_ratio = losses[-1][0] / losses[0][0]
print(f"FINAL loss_ratio={loss_ratio:.4f} ibot={losses[-1][2]:.4f} knn_acc={knn_acc:.4f} "
      f"sk_row_err={sk_row_err:.4f}")
