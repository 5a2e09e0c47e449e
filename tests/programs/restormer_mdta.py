"""Restormer (Zamir et al., CVPR 2022) in the layout of swz30/Restormer basicsr/models/archs/restormer_arch.py,
at tiny sizes, denoising synthetic images.

The repo's pieces with ``einops.rearrange`` spelt as reshape/transpose: ``to_3d``/``to_4d``,
``BiasFree_LayerNorm``/``WithBias_LayerNorm`` over channels (``sigma = x.var(-1, keepdim=True,
unbiased=False)``, ``normalized_shape = torch.Size(normalized_shape)``), the MDTA transposed attention
(1x1 ``qkv`` conv + depthwise ``qkv_dwconv``, ``qkv.chunk(3, dim=1)``, ``torch.nn.functional.normalize(q,
dim=-1)``, a learnable ``temperature = nn.Parameter(torch.ones(num_heads, 1, 1))``, ``attn = (q @
k.transpose(-2, -1)) * self.temperature``, ``attn.softmax(dim=-1)``), the GDFN gated feed-forward
(``x1, x2 = self.dwconv(x).chunk(2, dim=1)``, ``F.gelu(x1) * x2``), ``OverlapPatchEmbed``,
``Downsample``/``Upsample`` by ``nn.PixelUnshuffle(2)``/``nn.PixelShuffle(2)``, and the 4-level U-shaped
``Restormer`` with ``torch.cat`` skips, ``reduce_chan`` 1x1 convs, refinement blocks and the global
residual ``self.output(out_dec_level1) + inp_img``. Training as basicsr's image-restoration recipe: L1 loss,
``torch.optim.AdamW(betas=(0.9, 0.999), weight_decay=1e-4)``, ``CosineAnnealingLR``, ``clip_grad_norm_``.

Checked: the channel LayerNorm against ``F.layer_norm`` on channels-last input, ``F.normalize`` against
``q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)``, the attention against a per-head loop, PixelShuffle
undoing PixelUnshuffle, and the test PSNR of the restored images rising above the noisy input's.
"""

import math
import numbers
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)


##########################################################################
## Layer Norm

def to_3d(x):
    # rearrange(x, 'b c h w -> b (h w) c')
    return x.flatten(2).transpose(1, 2)


def to_4d(x, h, w):
    # rearrange(x, 'b (h w) c -> b c h w', h=h, w=w)
    b, _, c = x.shape
    return x.transpose(1, 2).reshape(b, c, h, w)


class BiasFree_LayerNorm(nn.Module):
    def __init__(self, normalized_shape):
        super(BiasFree_LayerNorm, self).__init__()  # noqa: UP008  (the repo's spelling)
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        normalized_shape = torch.Size(normalized_shape)

        assert len(normalized_shape) == 1

        self.weight = nn.Parameter(torch.ones(normalized_shape))
        self.normalized_shape = normalized_shape

    def forward(self, x):
        sigma = x.var(-1, keepdim=True, unbiased=False)
        return x / torch.sqrt(sigma + 1e-5) * self.weight


class WithBias_LayerNorm(nn.Module):
    def __init__(self, normalized_shape):
        super(WithBias_LayerNorm, self).__init__()  # noqa: UP008
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        normalized_shape = torch.Size(normalized_shape)

        assert len(normalized_shape) == 1

        self.weight = nn.Parameter(torch.ones(normalized_shape))
        self.bias = nn.Parameter(torch.zeros(normalized_shape))
        self.normalized_shape = normalized_shape

    def forward(self, x):
        mu = x.mean(-1, keepdim=True)
        sigma = x.var(-1, keepdim=True, unbiased=False)
        return (x - mu) / torch.sqrt(sigma + 1e-5) * self.weight + self.bias


class LayerNorm(nn.Module):
    def __init__(self, dim, LayerNorm_type):
        super(LayerNorm, self).__init__()  # noqa: UP008
        if LayerNorm_type == 'BiasFree':
            self.body = BiasFree_LayerNorm(dim)
        else:
            self.body = WithBias_LayerNorm(dim)

    def forward(self, x):
        h, w = x.shape[-2:]
        return to_4d(self.body(to_3d(x)), h, w)


##########################################################################
## Gated-Dconv Feed-Forward Network (GDFN)
class FeedForward(nn.Module):
    def __init__(self, dim, ffn_expansion_factor, bias):
        super(FeedForward, self).__init__()  # noqa: UP008

        hidden_features = int(dim * ffn_expansion_factor)

        self.project_in = nn.Conv2d(dim, hidden_features * 2, kernel_size=1, bias=bias)

        self.dwconv = nn.Conv2d(hidden_features * 2, hidden_features * 2, kernel_size=3, stride=1, padding=1,
                                groups=hidden_features * 2, bias=bias)

        self.project_out = nn.Conv2d(hidden_features, dim, kernel_size=1, bias=bias)

    def forward(self, x):
        x = self.project_in(x)
        x1, x2 = self.dwconv(x).chunk(2, dim=1)
        x = F.gelu(x1) * x2
        x = self.project_out(x)
        return x


##########################################################################
## Multi-DConv Head Transposed Self-Attention (MDTA)
class Attention(nn.Module):
    def __init__(self, dim, num_heads, bias):
        super(Attention, self).__init__()  # noqa: UP008
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))

        self.qkv = nn.Conv2d(dim, dim * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, kernel_size=3, stride=1, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)

    def forward(self, x):
        b, c, h, w = x.shape

        qkv = self.qkv_dwconv(self.qkv(x))
        q, k, v = qkv.chunk(3, dim=1)

        # rearrange(q, 'b (head c) h w -> b head c (h w)', head=self.num_heads)
        q = q.reshape(b, self.num_heads, c // self.num_heads, h * w)
        k = k.reshape(b, self.num_heads, c // self.num_heads, h * w)
        v = v.reshape(b, self.num_heads, c // self.num_heads, h * w)

        q = torch.nn.functional.normalize(q, dim=-1)
        k = torch.nn.functional.normalize(k, dim=-1)

        attn = (q @ k.transpose(-2, -1)) * self.temperature
        attn = attn.softmax(dim=-1)

        out = (attn @ v)

        # rearrange(out, 'b head c (h w) -> b (head c) h w', head=self.num_heads, h=h, w=w)
        out = out.reshape(b, c, h, w)

        out = self.project_out(out)
        return out


##########################################################################
class TransformerBlock(nn.Module):
    def __init__(self, dim, num_heads, ffn_expansion_factor, bias, LayerNorm_type):
        super(TransformerBlock, self).__init__()  # noqa: UP008

        self.norm1 = LayerNorm(dim, LayerNorm_type)
        self.attn = Attention(dim, num_heads, bias)
        self.norm2 = LayerNorm(dim, LayerNorm_type)
        self.ffn = FeedForward(dim, ffn_expansion_factor, bias)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        x = x + self.ffn(self.norm2(x))

        return x


##########################################################################
## Overlapped image patch embedding with 3x3 Conv
class OverlapPatchEmbed(nn.Module):
    def __init__(self, in_c=3, embed_dim=48, bias=False):
        super(OverlapPatchEmbed, self).__init__()  # noqa: UP008

        self.proj = nn.Conv2d(in_c, embed_dim, kernel_size=3, stride=1, padding=1, bias=bias)

    def forward(self, x):
        x = self.proj(x)

        return x


##########################################################################
## Resizing modules
class Downsample(nn.Module):
    def __init__(self, n_feat):
        super(Downsample, self).__init__()  # noqa: UP008

        self.body = nn.Sequential(nn.Conv2d(n_feat, n_feat // 2, kernel_size=3, stride=1, padding=1, bias=False),
                                  nn.PixelUnshuffle(2))

    def forward(self, x):
        return self.body(x)


class Upsample(nn.Module):
    def __init__(self, n_feat):
        super(Upsample, self).__init__()  # noqa: UP008

        self.body = nn.Sequential(nn.Conv2d(n_feat, n_feat * 2, kernel_size=3, stride=1, padding=1, bias=False),
                                  nn.PixelShuffle(2))

    def forward(self, x):
        return self.body(x)


##########################################################################
##---------- Restormer -----------------------
class Restormer(nn.Module):
    def __init__(self,
                 inp_channels=3,
                 out_channels=3,
                 dim=48,
                 num_blocks=[4, 6, 6, 8],  # noqa: B006  (the repo's defaults)
                 num_refinement_blocks=4,
                 heads=[1, 2, 4, 8],  # noqa: B006
                 ffn_expansion_factor=2.66,
                 bias=False,
                 LayerNorm_type='WithBias',   ## Other option 'BiasFree'
                 ):

        super(Restormer, self).__init__()  # noqa: UP008

        self.patch_embed = OverlapPatchEmbed(inp_channels, dim)

        self.encoder_level1 = nn.Sequential(*[TransformerBlock(dim=dim, num_heads=heads[0],
                                            ffn_expansion_factor=ffn_expansion_factor, bias=bias,
                                            LayerNorm_type=LayerNorm_type) for i in range(num_blocks[0])])

        self.down1_2 = Downsample(dim)  ## From Level 1 to Level 2
        self.encoder_level2 = nn.Sequential(*[TransformerBlock(dim=int(dim * 2 ** 1), num_heads=heads[1],
                                            ffn_expansion_factor=ffn_expansion_factor, bias=bias,
                                            LayerNorm_type=LayerNorm_type) for i in range(num_blocks[1])])

        self.down2_3 = Downsample(int(dim * 2 ** 1))  ## From Level 2 to Level 3
        self.encoder_level3 = nn.Sequential(*[TransformerBlock(dim=int(dim * 2 ** 2), num_heads=heads[2],
                                            ffn_expansion_factor=ffn_expansion_factor, bias=bias,
                                            LayerNorm_type=LayerNorm_type) for i in range(num_blocks[2])])

        self.down3_4 = Downsample(int(dim * 2 ** 2))  ## From Level 3 to Level 4
        self.latent = nn.Sequential(*[TransformerBlock(dim=int(dim * 2 ** 3), num_heads=heads[3],
                                    ffn_expansion_factor=ffn_expansion_factor, bias=bias,
                                    LayerNorm_type=LayerNorm_type) for i in range(num_blocks[3])])

        self.up4_3 = Upsample(int(dim * 2 ** 3))  ## From Level 4 to Level 3
        self.reduce_chan_level3 = nn.Conv2d(int(dim * 2 ** 3), int(dim * 2 ** 2), kernel_size=1, bias=bias)
        self.decoder_level3 = nn.Sequential(*[TransformerBlock(dim=int(dim * 2 ** 2), num_heads=heads[2],
                                            ffn_expansion_factor=ffn_expansion_factor, bias=bias,
                                            LayerNorm_type=LayerNorm_type) for i in range(num_blocks[2])])

        self.up3_2 = Upsample(int(dim * 2 ** 2))  ## From Level 3 to Level 2
        self.reduce_chan_level2 = nn.Conv2d(int(dim * 2 ** 2), int(dim * 2 ** 1), kernel_size=1, bias=bias)
        self.decoder_level2 = nn.Sequential(*[TransformerBlock(dim=int(dim * 2 ** 1), num_heads=heads[1],
                                            ffn_expansion_factor=ffn_expansion_factor, bias=bias,
                                            LayerNorm_type=LayerNorm_type) for i in range(num_blocks[1])])

        self.up2_1 = Upsample(int(dim * 2 ** 1))  ## From Level 2 to Level 1  (NO 1x1 conv to reduce channels)

        self.decoder_level1 = nn.Sequential(*[TransformerBlock(dim=int(dim * 2 ** 1), num_heads=heads[0],
                                            ffn_expansion_factor=ffn_expansion_factor, bias=bias,
                                            LayerNorm_type=LayerNorm_type) for i in range(num_blocks[0])])

        self.refinement = nn.Sequential(*[TransformerBlock(dim=int(dim * 2 ** 1), num_heads=heads[0],
                                        ffn_expansion_factor=ffn_expansion_factor, bias=bias,
                                        LayerNorm_type=LayerNorm_type) for i in range(num_refinement_blocks)])

        self.output = nn.Conv2d(int(dim * 2 ** 1), out_channels, kernel_size=3, stride=1, padding=1, bias=bias)

    def forward(self, inp_img):

        inp_enc_level1 = self.patch_embed(inp_img)
        out_enc_level1 = self.encoder_level1(inp_enc_level1)

        inp_enc_level2 = self.down1_2(out_enc_level1)
        out_enc_level2 = self.encoder_level2(inp_enc_level2)

        inp_enc_level3 = self.down2_3(out_enc_level2)
        out_enc_level3 = self.encoder_level3(inp_enc_level3)

        inp_enc_level4 = self.down3_4(out_enc_level3)
        latent = self.latent(inp_enc_level4)

        inp_dec_level3 = self.up4_3(latent)
        inp_dec_level3 = torch.cat([inp_dec_level3, out_enc_level3], 1)
        inp_dec_level3 = self.reduce_chan_level3(inp_dec_level3)
        out_dec_level3 = self.decoder_level3(inp_dec_level3)

        inp_dec_level2 = self.up3_2(out_dec_level3)
        inp_dec_level2 = torch.cat([inp_dec_level2, out_enc_level2], 1)
        inp_dec_level2 = self.reduce_chan_level2(inp_dec_level2)
        out_dec_level2 = self.decoder_level2(inp_dec_level2)

        inp_dec_level1 = self.up2_1(out_dec_level2)
        inp_dec_level1 = torch.cat([inp_dec_level1, out_enc_level1], 1)
        out_dec_level1 = self.decoder_level1(inp_dec_level1)

        out_dec_level1 = self.refinement(out_dec_level1)

        out_dec_level1 = self.output(out_dec_level1) + inp_img

        return out_dec_level1


# ------------------------------------------------------------------------------------ data
SIZE, NOISE = 16, 0.1
yy, xx = np.meshgrid(np.linspace(0, 1, SIZE), np.linspace(0, 1, SIZE), indexing="ij")


def clean_image():
    # piecewise-smooth: a colour ramp plus a few flat rectangles and a disc
    img = np.stack([rng.uniform(0.2, 0.8) + rng.uniform(-0.2, 0.2) * (xx + rng.uniform(-1, 1) * yy) for _ in range(3)])
    for _ in range(2):
        x0, y0 = rng.integers(0, SIZE - 4, size=2)
        w, h = rng.integers(3, 8, size=2)
        img[:, y0:y0 + h, x0:x0 + w] = rng.uniform(0, 1, size=(3, 1, 1))
    cx, cy, r = rng.uniform(0.2, 0.8, size=3) * np.array([1, 1, 0.4])
    img[:, (xx - cx) ** 2 + (yy - cy) ** 2 < r ** 2] = rng.uniform(0, 1, size=(3, 1))
    return np.clip(img, 0, 1)


def make_set(n):
    clean = np.stack([clean_image() for _ in range(n)]).astype(np.float32)
    noisy = (clean + NOISE * rng.normal(size=clean.shape)).astype(np.float32)
    return torch.from_numpy(noisy), torch.from_numpy(clean)


train_lq, train_gt = make_set(32)
test_lq, test_gt = make_set(8)


def psnr(img1, img2, max_val=1.0):
    mse = torch.mean((img1 - img2) ** 2, dim=(1, 2, 3))
    return (10 * torch.log10(max_val ** 2 / mse)).mean().item()


# --------------------------------------------------------------------------- unit checks
model = Restormer(inp_channels=3, out_channels=3, dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1,
                  heads=[1, 2, 2, 4], ffn_expansion_factor=2.66, bias=False, LayerNorm_type='WithBias')
n_params = sum(p.numel() for p in model.parameters())
print(f"Restormer params {n_params} temperatures {[tuple(m.temperature.shape) for m in model.modules() if isinstance(m, Attention)]}")

with torch.no_grad():
    feat = torch.randn(2, 16, 4, 4)
    ln = LayerNorm(16, 'WithBias')
    ln.body.weight.uniform_(0.5, 1.5)
    ln.body.bias.uniform_(-0.5, 0.5)
    ref = F.layer_norm(feat.permute(0, 2, 3, 1), (16,), ln.body.weight, ln.body.bias, eps=1e-5).permute(0, 3, 1, 2)
    ln_err = (ln(feat) - ref).abs().max().item()
    bf = LayerNorm(16, 'BiasFree')
    centred = feat - feat.mean(1, keepdim=True)
    bf_err = (bf(centred) - F.layer_norm(centred.permute(0, 2, 3, 1), (16,), eps=1e-5).permute(0, 3, 1, 2)).abs().max().item()

    q = torch.randn(2, 2, 8, 16)
    normalize_err = (F.normalize(q, dim=-1) - q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)).abs().max().item()

    attn_mod = model.encoder_level2[0].attn
    attn_mod.temperature.copy_(torch.tensor([0.5, 2.0]).view(2, 1, 1))
    x_att = torch.randn(2, 16, 8, 8)
    out_fast = attn_mod(x_att)
    # per-head loop: softmax(normalize(q_h) normalize(k_h)^T * t_h) v_h
    q_all, k_all, v_all = attn_mod.qkv_dwconv(attn_mod.qkv(x_att)).chunk(3, dim=1)
    heads_out = []
    for head in range(attn_mod.num_heads):
        sl = slice(head * 8, (head + 1) * 8)
        qh = q_all[:, sl].flatten(2)
        kh = k_all[:, sl].flatten(2)
        vh = v_all[:, sl].flatten(2)
        qh = qh / qh.norm(dim=-1, keepdim=True)
        kh = kh / kh.norm(dim=-1, keepdim=True)
        a = torch.softmax(torch.bmm(qh, kh.transpose(1, 2)) * attn_mod.temperature[head], dim=-1)
        heads_out.append(torch.bmm(a, vh))
    out_loop = attn_mod.project_out(torch.cat(heads_out, 1).view(2, 16, 8, 8))
    attn_err = (out_fast - out_loop).abs().max().item()
    attn_mod.temperature.fill_(1.0)

    shuffle_roundtrip = torch.equal(nn.PixelShuffle(2)(nn.PixelUnshuffle(2)(x_att)), x_att)
    down_shape = tuple(model.down1_2(torch.randn(1, 8, 16, 16)).shape)
    up_shape = tuple(model.up2_1(torch.randn(1, 16, 8, 8)).shape)
print(f"LayerNorm err {ln_err:.2e} bias-free {bf_err:.2e} normalize err {normalize_err:.2e} attention err {attn_err:.2e}")
print(f"pixel shuffle round trip {shuffle_roundtrip} down {down_shape} up {up_shape}")

# ------------------------------------------------------------------------------- training
total_iter, batch_size = 120, 4
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.999), weight_decay=1e-4)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_iter, eta_min=1e-5)
cri_pix = nn.L1Loss(reduction='mean')

model.eval()
with torch.no_grad():
    psnr_start = psnr(model(test_lq).clamp(0, 1), test_gt)
psnr_noisy = psnr(test_lq.clamp(0, 1), test_gt)
print(f"test PSNR noisy {psnr_noisy:.3f} dB, untrained model {psnr_start:.3f} dB")

model.train()
losses = []
for current_iter in range(1, total_iter + 1):
    idx = torch.randint(0, len(train_lq), (batch_size,))
    lq, gt = train_lq[idx], train_gt[idx]
    # basicsr's paired augmentation: random flips
    if torch.rand(()) < 0.5:
        lq, gt = lq.flip(-1), gt.flip(-1)
    optimizer.zero_grad()
    output = model(lq)
    l_pix = cri_pix(output, gt)
    l_pix.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.01 * 100)
    optimizer.step()
    scheduler.step()
    losses.append(l_pix.item())
    if current_iter % 40 == 0:
        model.eval()
        with torch.no_grad():
            val_psnr = psnr(model(test_lq).clamp(0, 1), test_gt)
        model.train()
        print(f"iter {current_iter:4d} l_pix {np.mean(losses[-40:]):.4f} lr {scheduler.get_last_lr()[0]:.2e} "
              f"val psnr {val_psnr:.3f}")

model.eval()
with torch.no_grad():
    restored = model(test_lq).clamp(0, 1)
    psnr_end = psnr(restored, test_gt)
temps = torch.cat([m.temperature.detach().flatten() for m in model.modules() if isinstance(m, Attention)])
print(f"temperatures moved {bool((temps - 1).abs().max() > 0)} range [{temps.min().item():.3f}, {temps.max().item():.3f}]")
print(f"test PSNR noisy {psnr_noisy:.3f} -> restored {psnr_end:.3f} dB")

unit_err = max(ln_err, bf_err, normalize_err, attn_err)
checks_ok = int(shuffle_roundtrip and unit_err < 1e-5 and math.isfinite(psnr_end))
print(f"FINAL psnr_gain={psnr_end - psnr_noisy:.4f} psnr_end={psnr_end:.4f} loss_ratio={np.mean(losses[-20:]) / np.mean(losses[:20]):.4f} "
      f"unit_err={unit_err:.6f} checks_ok={checks_ok}")
