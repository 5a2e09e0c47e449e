"""VAR: visual autoregressive modelling by next-scale prediction (Tian et al. 2024,
FoundationVision/VAR `models/quant.py`, `models/var.py`, `models/basic_var.py`) on synthetic images.

Stage 1, the multi-scale residual VQ-VAE: a small conv encoder to an 8x8 map of `Cvae` channels,
`VectorQuantizer2` over `v_patch_nums = (1, 2, 3, 4, 6, 8)`: for each scale
`F.interpolate(f_rest, size=(pn, pn), mode='area')` (the last scale at full size), the nearest
codebook entry by `torch.sum(z.square(), dim=1, keepdim=True) + torch.sum(E.square(), dim=1)` with
`d_no_grad.addmm_(z, E.T, alpha=-2, beta=1)` and `torch.argmin` (checked against `torch.cdist`), the
code map upsampled back by `F.interpolate(..., size=(H, W), mode='bicubic')`, a shared `Phi`
(`nn.Conv2d` subclass, `h.mul(1 - resi_ratio) + super().forward(h).mul_(resi_ratio)`),
`f_hat = f_hat + h`, `f_rest -= h`, the VQ loss `F.mse_loss(f_hat.data, f).mul_(beta) +
F.mse_loss(f_hat, f_no_grad)` averaged over scales, the straight-through
`(f_hat.data - f_no_grad).add_(f)`, codebook use by `idx.bincount(minlength=V)`.
Stage 2, the class-conditional next-scale transformer: teacher-forcing input from
`idxBl_to_var_input` (the running `f_hat` area-downsampled to the next scale), a class embedding as
the start token, `pos_1LC` plus a level embedding `nn.Embedding(len(patch_nums), C)` of the
`lvl_1L` buffer, the block-causal mask from `d = torch.cat([torch.full((pn * pn,), i) for i, pn in
enumerate(patch_nums)]).view(1, L, 1)`, `torch.where(d >= dT, 0., -torch.inf)`, AdaLN blocks
(`ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(D, 6 * D))`, `.view(-1, 1, 6, C).unbind(2)`,
`ln_wo_grad(x).mul(scale1.add(1)).add_(shift1)`, `.mul_(gamma1)`), `F.scaled_dot_product_attention`
with the float mask, an AdaLN head, `F.cross_entropy(label_smoothing=0.1)` over all L tokens, AdamW
with betas (0.9, 0.95); then sampling scale by scale with top-k.

Checks: the reconstruction error of `f_hat` falls with each added scale; the masked attention
equals a loop over scales attending to the prefix only; the `addmm_` distances' argmin equals cdist's.
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

PATCH_NUMS = (1, 2, 3, 4, 6, 8)
CVAE, VOCAB, NUM_CLASSES = 8, 32, 4
IMG = 16
VAE_STEPS, VAR_STEPS, BATCH = 100, 100, 32


def make_images(n, rng):
    """Class = one of four shapes (disc, square, bar, ring) with a random colour and place."""
    yy, xx = np.mgrid[0:IMG, 0:IMG].astype(np.float32)
    labels = rng.randint(0, NUM_CLASSES, n)
    imgs = np.zeros((n, 3, IMG, IMG), dtype=np.float32)
    for i, c in enumerate(labels):
        cy, cx = rng.uniform(5, 11, 2)
        r = rng.uniform(3, 5)
        d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
        mask = [d < r, (abs(yy - cy) < r * 0.8) & (abs(xx - cx) < r * 0.8), abs(xx - cx) < 1.5,
                (d < r) & (d > r - 1.5)][c]
        colour = rng.uniform(0.3, 1.0, 3)
        imgs[i] = mask[None] * colour[:, None, None]
    return torch.from_numpy(imgs * 2 - 1), torch.from_numpy(labels).long()


class Phi(nn.Conv2d):
    def __init__(self, embed_dim, quant_resi):
        ks = 3
        super().__init__(in_channels=embed_dim, out_channels=embed_dim, kernel_size=ks, stride=1, padding=ks // 2)
        self.resi_ratio = abs(quant_resi)

    def forward(self, h_BChw):
        return h_BChw.mul(1 - self.resi_ratio) + super().forward(h_BChw).mul_(self.resi_ratio)


class VectorQuantizer2(nn.Module):
    def __init__(self, vocab_size, Cvae, beta=0.25, quant_resi=0.5, v_patch_nums=PATCH_NUMS):
        super().__init__()
        self.vocab_size, self.Cvae, self.beta = vocab_size, Cvae, beta
        self.v_patch_nums = v_patch_nums
        self.quant_resi = Phi(Cvae, quant_resi)
        self.embedding = nn.Embedding(vocab_size, Cvae)
        self.embedding.weight.data.uniform_(-1 / vocab_size, 1 / vocab_size)

    def nearest(self, rest_NC):
        d_no_grad = torch.sum(rest_NC.square(), dim=1, keepdim=True) + torch.sum(
            self.embedding.weight.data.square(), dim=1, keepdim=False)
        d_no_grad.addmm_(rest_NC, self.embedding.weight.data.T, alpha=-2, beta=1)
        return torch.argmin(d_no_grad, dim=1)

    def forward(self, f_BChw, collect=False):
        B, C, H, W = f_BChw.shape
        f_no_grad = f_BChw.detach()
        f_rest = f_no_grad.clone()
        f_hat = torch.zeros_like(f_rest)
        mean_vq_loss = 0.0
        SN = len(self.v_patch_nums)
        idx_list, errs, hits = [], [], torch.zeros(self.vocab_size)
        for si, pn in enumerate(self.v_patch_nums):
            if si != SN - 1:
                rest_NC = F.interpolate(f_rest, size=(pn, pn), mode="area").permute(0, 2, 3, 1).reshape(-1, C)
            else:
                rest_NC = f_rest.permute(0, 2, 3, 1).reshape(-1, C)
            idx_N = self.nearest(rest_NC)
            hits += idx_N.bincount(minlength=self.vocab_size).float()
            idx_Bhw = idx_N.view(B, pn, pn)
            if si != SN - 1:
                h_BChw = F.interpolate(self.embedding(idx_Bhw).permute(0, 3, 1, 2), size=(H, W), mode="bicubic").contiguous()
            else:
                h_BChw = self.embedding(idx_Bhw).permute(0, 3, 1, 2).contiguous()
            h_BChw = self.quant_resi(h_BChw)
            f_hat = f_hat + h_BChw
            f_rest -= h_BChw
            mean_vq_loss += F.mse_loss(f_hat.data, f_BChw).mul_(self.beta) + F.mse_loss(f_hat, f_no_grad)
            idx_list.append(idx_N.view(B, -1))
            errs.append(F.mse_loss(f_hat.data, f_no_grad).item())
        mean_vq_loss *= 1.0 / SN
        f_hat = (f_hat.data - f_no_grad).add_(f_BChw)
        usage = (hits > 0).float().mean().item()
        if collect:
            return f_hat, mean_vq_loss, idx_list, errs, usage
        return f_hat, mean_vq_loss

    @torch.no_grad()
    def idxBl_to_var_input(self, gt_ms_idx_Bl):
        next_scales = []
        B = gt_ms_idx_Bl[0].shape[0]
        C, H, W = self.Cvae, self.v_patch_nums[-1], self.v_patch_nums[-1]
        SN = len(self.v_patch_nums)
        f_hat = gt_ms_idx_Bl[0].new_zeros(B, C, H, W, dtype=torch.float32)
        pn_next = self.v_patch_nums[0]
        for si in range(SN - 1):
            h_BChw = F.interpolate(self.embedding(gt_ms_idx_Bl[si]).transpose_(1, 2).view(B, C, pn_next, pn_next),
                                   size=(H, W), mode="bicubic")
            f_hat.add_(self.quant_resi(h_BChw))
            pn_next = self.v_patch_nums[si + 1]
            next_scales.append(F.interpolate(f_hat, size=(pn_next, pn_next), mode="area").view(B, C, -1).transpose(1, 2))
        return torch.cat(next_scales, dim=1)


class VQVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, 32, 4, 2, 1), nn.SiLU(), nn.Conv2d(32, 32, 3, 1, 1), nn.SiLU(),
                                     nn.Conv2d(32, CVAE, 1))
        self.quantize = VectorQuantizer2(VOCAB, CVAE)
        self.decoder = nn.Sequential(nn.Conv2d(CVAE, 32, 3, 1, 1), nn.SiLU(), nn.Upsample(scale_factor=2, mode="nearest"),
                                     nn.Conv2d(32, 32, 3, 1, 1), nn.SiLU(), nn.Conv2d(32, 3, 3, 1, 1))

    def forward(self, img):
        f_hat, vq_loss = self.quantize(self.encoder(img))
        return self.decoder(f_hat).clamp_(-1, 1), vq_loss


class SelfAttention(nn.Module):
    def __init__(self, embed_dim, num_heads):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, embed_dim // num_heads
        self.mat_qkv = nn.Linear(embed_dim, embed_dim * 3, bias=False)
        self.q_bias, self.v_bias = nn.Parameter(torch.zeros(embed_dim)), nn.Parameter(torch.zeros(embed_dim))
        self.register_buffer("zero_k_bias", torch.zeros(embed_dim))
        self.proj = nn.Linear(embed_dim, embed_dim)
        self.scale = 1 / math.sqrt(self.head_dim)

    def qkv(self, x):
        B, L, C = x.shape
        qkv = F.linear(input=x, weight=self.mat_qkv.weight, bias=torch.cat((self.q_bias, self.zero_k_bias, self.v_bias)))
        q, k, v = qkv.view(B, L, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(dim=0)
        return q, k, v

    def forward(self, x, attn_bias):
        B, L, C = x.shape
        q, k, v = self.qkv(x)
        oup = F.scaled_dot_product_attention(query=q, key=k, value=v, scale=self.scale, attn_mask=attn_bias, dropout_p=0)
        return self.proj(oup.transpose(1, 2).reshape(B, L, C))


class AdaLNSelfAttn(nn.Module):
    def __init__(self, embed_dim, cond_dim, num_heads, mlp_ratio=2.0):
        super().__init__()
        self.C, self.D = embed_dim, cond_dim
        self.attn = SelfAttention(embed_dim, num_heads)
        hidden = round(embed_dim * mlp_ratio)
        self.ffn = nn.Sequential(nn.Linear(embed_dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, embed_dim))
        self.ln_wo_grad = nn.LayerNorm(embed_dim, eps=1e-6, elementwise_affine=False)
        self.ada_lin = nn.Sequential(nn.SiLU(inplace=False), nn.Linear(cond_dim, 6 * embed_dim))

    def forward(self, x, cond_BD, attn_bias):
        gamma1, gamma2, scale1, scale2, shift1, shift2 = self.ada_lin(cond_BD).view(-1, 1, 6, self.C).unbind(2)
        x = x + self.attn(self.ln_wo_grad(x).mul(scale1.add(1)).add_(shift1), attn_bias=attn_bias).mul_(gamma1)
        x = x + self.ffn(self.ln_wo_grad(x).mul(scale2.add(1)).add_(shift2)).mul(gamma2)
        return x


class AdaLNBeforeHead(nn.Module):
    def __init__(self, C, D):
        super().__init__()
        self.C = C
        self.ln_wo_grad = nn.LayerNorm(C, eps=1e-6, elementwise_affine=False)
        self.ada_lin = nn.Sequential(nn.SiLU(inplace=False), nn.Linear(D, 2 * C))

    def forward(self, x_BLC, cond_BD):
        scale, shift = self.ada_lin(cond_BD).view(-1, 1, 2, self.C).unbind(2)
        return self.ln_wo_grad(x_BLC).mul(scale.add(1)).add_(shift)


class VAR(nn.Module):
    def __init__(self, vae_local, num_classes=NUM_CLASSES, depth=2, embed_dim=48, num_heads=4, patch_nums=PATCH_NUMS):
        super().__init__()
        self.Cvae, self.V = vae_local.quantize.Cvae, vae_local.quantize.vocab_size
        self.C = self.D = embed_dim
        self.num_classes = num_classes
        self.patch_nums = patch_nums
        self.L = sum(pn ** 2 for pn in self.patch_nums)
        self.first_l = self.patch_nums[0] ** 2
        self.begin_ends = []
        cur = 0
        for pn in self.patch_nums:
            self.begin_ends.append((cur, cur + pn ** 2))
            cur += pn ** 2
        self.vae_quant_proxy = (vae_local.quantize,)
        self.word_embed = nn.Linear(self.Cvae, self.C)
        init_std = math.sqrt(1 / self.C / 3)
        self.class_emb = nn.Embedding(self.num_classes + 1, self.C)
        nn.init.trunc_normal_(self.class_emb.weight.data, mean=0, std=init_std)
        self.pos_start = nn.Parameter(torch.empty(1, self.first_l, self.C))
        nn.init.trunc_normal_(self.pos_start.data, mean=0, std=init_std)
        pos_1LC = []
        for pn in self.patch_nums:
            pe = torch.empty(1, pn * pn, self.C)
            nn.init.trunc_normal_(pe, mean=0, std=init_std)
            pos_1LC.append(pe)
        self.pos_1LC = nn.Parameter(torch.cat(pos_1LC, dim=1))
        self.lvl_embed = nn.Embedding(len(self.patch_nums), self.C)
        nn.init.trunc_normal_(self.lvl_embed.weight.data, mean=0, std=init_std)
        self.blocks = nn.ModuleList([AdaLNSelfAttn(self.C, self.D, num_heads) for _ in range(depth)])
        d = torch.cat([torch.full((pn * pn,), i) for i, pn in enumerate(self.patch_nums)]).view(1, self.L, 1)
        dT = d.transpose(1, 2)
        lvl_1L = dT[:, 0].contiguous()
        self.register_buffer("lvl_1L", lvl_1L)
        attn_bias_for_masking = torch.where(d >= dT, 0.0, -torch.inf).reshape(1, 1, self.L, self.L)
        self.register_buffer("attn_bias_for_masking", attn_bias_for_masking.contiguous())
        self.head_nm = AdaLNBeforeHead(self.C, self.D)
        self.head = nn.Linear(self.C, self.V)

    def forward(self, label_B, x_BLCv_wo_first_l):
        B = x_BLCv_wo_first_l.shape[0]
        sos = cond_BD = self.class_emb(label_B)
        sos = sos.unsqueeze(1).expand(B, self.first_l, -1) + self.pos_start.expand(B, self.first_l, -1)
        x_BLC = torch.cat((sos, self.word_embed(x_BLCv_wo_first_l.float())), dim=1)
        x_BLC = x_BLC + self.lvl_embed(self.lvl_1L.expand(B, -1)) + self.pos_1LC
        attn_bias = self.attn_bias_for_masking
        for b in self.blocks:
            x_BLC = b(x=x_BLC, cond_BD=cond_BD, attn_bias=attn_bias)
        return self.head(self.head_nm(x_BLC.float(), cond_BD).float()).float()

    @torch.no_grad()
    def autoregressive_infer_cfg(self, label_B, top_k=4, g=None):
        """Scale-by-scale sampling, recomputing the prefix each scale (no kv cache)."""
        B = label_B.shape[0]
        quant = self.vae_quant_proxy[0]
        idx_list = []
        for si in range(len(self.patch_nums)):
            x_in = quant.idxBl_to_var_input(idx_list + [torch.zeros(B, p * p, dtype=torch.long) for p in
                                                        self.patch_nums[si:]])
            logits = self.forward(label_B, x_in)[:, self.begin_ends[si][0]:self.begin_ends[si][1]]
            topv, topi = logits.topk(top_k, dim=-1)
            probs = F.softmax(topv, dim=-1)
            choice = torch.multinomial(probs.view(-1, top_k), 1, generator=g).view(B, -1, 1)
            idx_list.append(topi.gather(-1, choice).squeeze(-1))
        return idx_list


rng = np.random.RandomState(seed)
train_img, train_lbl = make_images(512, rng)
test_img, test_lbl = make_images(128, rng)
print(f"images {tuple(train_img.shape)} classes {NUM_CLASSES} patch_nums {PATCH_NUMS}")

# --- stage 1: the multi-scale residual VQ-VAE
vae = VQVAE()
opt_vae = torch.optim.Adam(vae.parameters(), lr=2e-3)
for step in range(VAE_STEPS):
    idx = torch.randint(0, len(train_img), (BATCH,))
    rec, vq_loss = vae(train_img[idx])
    rec_loss = F.mse_loss(rec, train_img[idx])
    loss = rec_loss + vq_loss
    opt_vae.zero_grad(set_to_none=True)
    loss.backward()
    opt_vae.step()
    if (step + 1) % 50 == 0:
        print(f"vae step {step + 1} rec {rec_loss.item():.4f} vq {vq_loss.item():.4f}")

vae.eval()
for p in vae.parameters():
    p.requires_grad_(False)
with torch.no_grad():
    f = vae.encoder(test_img)
    f_hat, _, test_idx, scale_errs, usage = vae.quantize(f, collect=True)
    rec_test = F.mse_loss(vae.decoder(f_hat).clamp_(-1, 1), test_img).item()
    rest = f.permute(0, 2, 3, 1).reshape(-1, CVAE)
    cdist_idx = torch.cdist(rest, vae.quantize.embedding.weight).argmin(1)
    cdist_agree = (cdist_idx == vae.quantize.nearest(rest)).float().mean().item()
monotone = all(b < a for a, b in zip(scale_errs, scale_errs[1:]))
print("f_hat error per scale " + " ".join(f"{e:.4f}" for e in scale_errs) + f" monotone {monotone}")
print(f"codebook usage {usage:.3f} cdist argmin agreement {cdist_agree:.3f}")

# --- stage 2: the next-scale transformer
var = VAR(vae)
print(f"L {var.L} begin_ends {var.begin_ends[-1]} lvl_1L {tuple(var.lvl_1L.shape)} mask "
      f"{tuple(var.attn_bias_for_masking.shape)} visible {int((var.attn_bias_for_masking == 0).sum())}")

# check: the block-causal SDPA equals a loop over scales attending to the prefix only
probe = torch.randn(2, var.L, var.C)
attn = var.blocks[0].attn
with torch.no_grad():
    full = attn(probe, var.attn_bias_for_masking)
    q, k, v = attn.qkv(probe)
    outs = []
    for bg, ed in var.begin_ends:
        w = torch.softmax(q[:, :, bg:ed] @ k[:, :, :ed].transpose(-1, -2) * attn.scale, dim=-1)
        outs.append(w @ v[:, :, :ed])
    looped = attn.proj(torch.cat(outs, dim=2).transpose(1, 2).reshape(2, var.L, var.C))
    mask_err = (full - looped).abs().max().item()
print(f"masked attention vs per-scale loop err {mask_err:.2e}")

with torch.no_grad():
    _, _, train_idx, _, _ = vae.quantize(vae.encoder(train_img), collect=True)
    train_x = vae.quantize.idxBl_to_var_input(train_idx)
    test_x = vae.quantize.idxBl_to_var_input(test_idx)
train_gt = torch.cat(train_idx, dim=1)
test_gt = torch.cat(test_idx, dim=1)
opt = torch.optim.AdamW(var.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.05)
train_loss = nn.CrossEntropyLoss(label_smoothing=0.1, reduction="none")


def token_acc(logits, gt):
    return (logits.argmax(dim=-1) == gt).float().mean().item()


with torch.no_grad():
    ce_before = F.cross_entropy(var(test_lbl, test_x).view(-1, VOCAB), test_gt.view(-1)).item()
for step in range(VAR_STEPS):
    idx = torch.randint(0, len(train_img), (BATCH,))
    logits = var(train_lbl[idx], train_x[idx])
    loss = train_loss(logits.view(-1, VOCAB), train_gt[idx].view(-1)).view(BATCH, -1).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(var.parameters(), 2.0)
    opt.step()
    if (step + 1) % 50 == 0:
        print(f"var step {step + 1} loss {loss.item():.4f} acc {token_acc(logits, train_gt[idx]):.3f}")

var.eval()
with torch.no_grad():
    logits = var(test_lbl, test_x)
    ce_after = F.cross_entropy(logits.view(-1, VOCAB), test_gt.view(-1)).item()
    acc = token_acc(logits, test_gt)
    acc_first = token_acc(logits[:, :5], test_gt[:, :5])
    wrong_cls = var((test_lbl + 1) % NUM_CLASSES, test_x)
    ce_wrong = F.cross_entropy(wrong_cls.view(-1, VOCAB), test_gt.view(-1)).item()
    sampled = var.autoregressive_infer_cfg(torch.arange(NUM_CLASSES), g=torch.Generator().manual_seed(seed))
print(f"ce before {ce_before:.4f} after {ce_after:.4f} (wrong class {ce_wrong:.4f}); sampled scales "
      f"{[tuple(s.shape) for s in sampled]}")
print(f"FINAL ce={ce_after:.4f} ce_before={ce_before:.4f} ce_wrong_gap={ce_wrong - ce_after:.4f} token_acc={acc:.4f} "
      f"acc_first_scales={acc_first:.4f} rec_mse={rec_test:.4f} err_scale1={scale_errs[0]:.4f} "
      f"err_scale6={scale_errs[-1]:.4f} monotone={int(monotone)} usage={usage:.4f} cdist_agree={cdist_agree:.4f} "
      f"mask_err={mask_err:.2e}")
