"""Flamingo (lucidrains/flamingo-pytorch) at toy size: a frozen causal LM taught to caption
synthetic "images" (sets of patch embeddings whose two attributes name a colour and a shape word).

The modules are written as the repository writes them, with its einops calls spelled out in torch
(``reshape``/``permute``/``repeat``): ``PerceiverResampler`` (``self.latents = nn.Parameter(
torch.randn(num_latents, dim))``, ``media_pos_emb[:times]``, latents repeated over batch and media,
``PerceiverAttention`` taking keys/values from ``torch.cat((x, latents), dim=-2)``, ``einsum``
attention with ``sim - sim.amax(dim=-1, keepdim=True).detach()``), ``MaskedCrossAttention`` (text
time by ``media_locations.cumsum(dim=-1)``, ``torch.arange(t) + 1`` media time, ``torch.eq`` so a
token sees only the immediately preceding image, ``masked_fill(~mask, -torch.finfo(sim.dtype).max)``,
attention of text before any image zeroed by ``text_time == 0``), ``GatedCrossAttentionBlock``
(``self.attn_gate = nn.Parameter(torch.tensor([0.]))``, ``* self.attn_gate.tanh() + x``) inserted
before every layer of a small GPT-style LM that is pretrained on captions alone, then frozen by
``requires_grad_(False)``; only the resampler and the gated blocks train (AdamW over
``filter(lambda p: p.requires_grad, ...)``).

Checked: at initialisation the Flamingo model's logits equal the frozen LM's exactly
(``torch.equal``); after training, changing the second image leaves every token before it
unchanged, tokens before the first image get no cross-attention, the caption loss falls well below
the text-only LM's (which cannot see the image), and greedy captions name the attributes.
"""

# ruff: noqa: F841  (the repository's own unpacking: b, m, h = *x.shape[:2], self.heads)

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

PAD, BOS, IMG, SEP, EOS = 0, 1, 2, 3, 4
N_ATTR = 4
COLOR0, SHAPE0 = 5, 5 + N_ATTR
VOCAB = 5 + 2 * N_ATTR
DIM, MEDIA_DIM, N_PATCH = 32, 16, 6


def exists(val):
    return val is not None


# ------------------------------------------------------------------------------------- data
def make_batch(n, rng, prototypes):
    """Two images per sample: [BOS IMG c s SEP IMG c s EOS]; patches carry the attributes."""
    colors = rng.randint(0, N_ATTR, (n, 2))
    shapes = rng.randint(0, N_ATTR, (n, 2))
    media = (prototypes[0][colors][:, :, None, :] + prototypes[1][shapes][:, :, None, :]
             + 0.5 * rng.randn(n, 2, N_PATCH, MEDIA_DIM))
    text = np.stack([np.full(n, BOS), np.full(n, IMG), COLOR0 + colors[:, 0], SHAPE0 + shapes[:, 0],
                     np.full(n, SEP), np.full(n, IMG), COLOR0 + colors[:, 1], SHAPE0 + shapes[:, 1],
                     np.full(n, EOS)], axis=1)
    return torch.from_numpy(text).long(), torch.from_numpy(media.astype(np.float32))


def caption_targets(text):
    """Next-token targets, kept only where the next token is a caption word."""
    labels = text[:, 1:].clone()
    labels[labels < COLOR0] = -100
    return labels


# -------------------------------------------------------------------------------- flamingo
def FeedForward(dim, mult=4):
    inner_dim = int(dim * mult)
    return nn.Sequential(
        nn.LayerNorm(dim),
        nn.Linear(dim, inner_dim, bias=False),
        nn.GELU(),
        nn.Linear(inner_dim, dim, bias=False)
    )


class PerceiverAttention(nn.Module):
    def __init__(self, *, dim, dim_head=64, heads=8):
        super().__init__()
        self.scale = dim_head ** -0.5
        self.heads = heads
        inner_dim = dim_head * heads

        self.norm_media = nn.LayerNorm(dim)
        self.norm_latents = nn.LayerNorm(dim)

        self.to_q = nn.Linear(dim, inner_dim, bias=False)
        self.to_kv = nn.Linear(dim, inner_dim * 2, bias=False)
        self.to_out = nn.Linear(inner_dim, dim, bias=False)

    def forward(self, x, latents):
        """
        einstein notation
        b - batch
        t - time
        n - sequence
        d - dimension
        """
        x = self.norm_media(x)
        latents = self.norm_latents(latents)

        b, m, h = *x.shape[:2], self.heads

        q = self.to_q(latents)

        # the paper differs from Perceiver in which they also concat the key / values derived from the latents to be attended to
        kv_input = torch.cat((x, latents), dim=-2)
        k, v = self.to_kv(kv_input).chunk(2, dim=-1)

        # rearrange_many((q, k, v), 'b t n (h d) -> b h t n d', h = h)
        q, k, v = (t.reshape(*t.shape[:3], h, -1).permute(0, 3, 1, 2, 4) for t in (q, k, v))

        q = q * self.scale

        # attention
        sim = torch.einsum('... i d, ... j d  -> ... i j', q, k)

        sim = sim - sim.amax(dim=-1, keepdim=True).detach()
        attn = sim.softmax(dim=-1)

        out = torch.einsum('... i j, ... j d -> ... i d', attn, v)
        out = out.permute(0, 2, 3, 1, 4).flatten(-2)  # 'b h t n d -> b t n (h d)'
        return self.to_out(out)


class PerceiverResampler(nn.Module):
    def __init__(self, *, dim, depth, dim_head=64, heads=8, num_latents=64, num_media_embeds=4, ff_mult=4):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(num_latents, dim))
        self.media_pos_emb = nn.Parameter(torch.randn(num_media_embeds, 1, dim))

        self.layers = nn.ModuleList([])
        for _ in range(depth):
            self.layers.append(nn.ModuleList([
                PerceiverAttention(dim=dim, dim_head=dim_head, heads=heads),
                FeedForward(dim=dim, mult=ff_mult)
            ]))

        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        if x.ndim == 3:
            x = x.unsqueeze(1)  # 'b n d -> b 1 n d'

        times = x.shape[1]
        x = x + self.media_pos_emb[:times]

        # repeat(self.latents, 'n d -> b m n d', b = x.shape[0], m = x.shape[1])
        latents = self.latents[None, None].repeat(x.shape[0], x.shape[1], 1, 1)

        for attn, ff in self.layers:
            latents = attn(x, latents) + latents
            latents = ff(latents) + latents

        return self.norm(latents)


class MaskedCrossAttention(nn.Module):
    def __init__(self, *, dim, dim_head=64, heads=8, only_attend_immediate_media=True):
        super().__init__()
        self.scale = dim_head ** -0.5
        self.heads = heads
        inner_dim = dim_head * heads

        self.norm = nn.LayerNorm(dim)

        self.to_q = nn.Linear(dim, inner_dim, bias=False)
        self.to_kv = nn.Linear(dim, inner_dim * 2, bias=False)
        self.to_out = nn.Linear(inner_dim, dim, bias=False)

        # whether for text to only attend to immediate preceding image, or all images

        self.only_attend_immediate_media = only_attend_immediate_media

    def forward(self, x, media, media_locations=None):
        b, t, m = media.shape[:3]
        h = self.heads

        x = self.norm(x)

        q = self.to_q(x)
        media = media.reshape(b, t * m, -1)  # 'b t n d -> b (t n) d'

        k, v = self.to_kv(media).chunk(2, dim=-1)
        # rearrange_many((q, k, v), 'b n (h d) -> b h n d', h = h)
        q, k, v = (t_.reshape(b, t_.shape[1], h, -1).transpose(1, 2) for t_ in (q, k, v))

        q = q * self.scale

        sim = torch.einsum('... i d, ... j d -> ... i j', q, k)

        if exists(media_locations):
            text_time = media_locations.cumsum(dim=-1)  # at each boolean of True, increment the time counter (relative to media time)
            media_time = torch.arange(t, device=x.device) + 1

            # text time must equal media time if only attending to most immediate image
            # otherwise, as long as text time is greater than media time (if attending to all previous images / media)
            mask_op = torch.eq if self.only_attend_immediate_media else torch.ge

            text_to_media_mask = mask_op(text_time[:, None, :, None],  # 'b i -> b 1 i 1'
                                         media_time.repeat_interleave(m)[None, None, None, :])  # 'j -> 1 1 1 (j m)'
            sim = sim.masked_fill(~text_to_media_mask, -torch.finfo(sim.dtype).max)

        sim = sim - sim.amax(dim=-1, keepdim=True).detach()
        attn = sim.softmax(dim=-1)

        if exists(media_locations) and self.only_attend_immediate_media:
            # any text without a preceding media needs to have attention zeroed out
            text_without_media_mask = text_time == 0
            text_without_media_mask = text_without_media_mask[:, None, :, None]  # 'b i -> b 1 i 1'
            attn = attn.masked_fill(text_without_media_mask, 0.)

        out = torch.einsum('... i j, ... j d -> ... i d', attn, v)
        out = out.transpose(1, 2).flatten(2)  # 'b h n d -> b n (h d)'
        return self.to_out(out)


class GatedCrossAttentionBlock(nn.Module):
    def __init__(self, *, dim, dim_head=64, heads=8, ff_mult=4, only_attend_immediate_media=True):
        super().__init__()
        self.attn = MaskedCrossAttention(dim=dim, dim_head=dim_head, heads=heads,
                                         only_attend_immediate_media=only_attend_immediate_media)
        self.attn_gate = nn.Parameter(torch.tensor([0.]))

        self.ff = FeedForward(dim, mult=ff_mult)
        self.ff_gate = nn.Parameter(torch.tensor([0.]))

    def forward(self, x, media, media_locations=None):
        x = self.attn(x, media, media_locations=media_locations) * self.attn_gate.tanh() + x
        x = self.ff(x) * self.ff_gate.tanh() + x
        return x


# -------------------------------------------------------------------------------- the LM
class CausalSelfAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.norm(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        causal = torch.ones(T, T, dtype=torch.bool).triu(1)
        att = att.masked_fill(causal, float('-inf')).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return x + self.proj(y)


class TinyLM(nn.Module):
    def __init__(self, num_tokens, dim, depth, heads=4, max_len=16):
        super().__init__()
        self.token_emb = nn.Embedding(num_tokens, dim)
        self.pos_emb = nn.Embedding(max_len, dim)
        self.layers = nn.ModuleList([nn.ModuleList([CausalSelfAttention(dim, heads), FeedForward(dim, 2)])
                                     for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.to_logits = nn.Linear(dim, num_tokens, bias=False)

    def embed(self, text):
        return self.token_emb(text) + self.pos_emb(torch.arange(text.shape[1]))

    def forward(self, text):
        x = self.embed(text)
        for attn, ff in self.layers:
            x = attn(x)
            x = ff(x) + x
        return self.to_logits(self.norm(x))


class FlamingoLM(nn.Module):
    """The frozen LM with a gated cross-attention block before each of its layers."""

    def __init__(self, lm, media_token_id, dim, dim_head=8, heads=4, media_dim=MEDIA_DIM):
        super().__init__()
        self.lm = lm
        self.media_token_id = media_token_id
        self.to_media = nn.Linear(media_dim, dim)
        self.perceiver_resampler = PerceiverResampler(dim=dim, depth=1, dim_head=dim_head, heads=heads,
                                                      num_latents=4, num_media_embeds=2, ff_mult=2)
        self.gated_xattn = nn.ModuleList([
            GatedCrossAttentionBlock(dim=dim, dim_head=dim_head, heads=heads, ff_mult=2)
            for _ in lm.layers])

    def forward(self, text, image_embeds):
        media_locations = text == self.media_token_id
        media = self.perceiver_resampler(self.to_media(image_embeds))
        x = self.lm.embed(text)
        for (attn, ff), flamingo_cross_attn in zip(self.lm.layers, self.gated_xattn):
            x = flamingo_cross_attn(x, media, media_locations=media_locations)
            x = attn(x)
            x = ff(x) + x
        return self.lm.to_logits(self.lm.norm(x))


def caption_loss(logits, text):
    return F.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), caption_targets(text).reshape(-1),
                           ignore_index=-100)


# -------------------------------------------------------------------------------- run
rng = np.random.RandomState(seed)
prototypes = (1.5 * rng.randn(N_ATTR, MEDIA_DIM), 1.5 * rng.randn(N_ATTR, MEDIA_DIM))
train_text, train_media = make_batch(512, rng, prototypes)
test_text, test_media = make_batch(128, rng, prototypes)
BATCH = 32

# 1. pretrain the LM on captions alone (it learns the grammar, not the image)
lm = TinyLM(VOCAB, DIM, depth=2)
lm_opt = torch.optim.AdamW(lm.parameters(), lr=3e-3)
for _step in range(120):
    idx = torch.randint(0, len(train_text), (BATCH,))
    loss = caption_loss(lm(train_text[idx]), train_text[idx])
    lm_opt.zero_grad()
    loss.backward()
    lm_opt.step()
lm.eval()
with torch.no_grad():
    lm_loss = caption_loss(lm(test_text), test_text).item()
print(f"text-only LM caption loss {lm_loss:.4f} (uniform over {N_ATTR} words: {math.log(N_ATTR):.4f})")

# 2. freeze it and wrap it
lm.requires_grad_(False)
model = FlamingoLM(lm, IMG, DIM)
with torch.no_grad():
    same_at_init = torch.equal(model(test_text, test_media), lm(test_text))
n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
n_frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
print(f"trainable {n_train} frozen {n_frozen} | gated model == frozen LM at init: {same_at_init}")

optimizer = torch.optim.AdamW(filter(lambda p: p.requires_grad, model.parameters()), lr=3e-3)
for epoch in range(4):
    perm = torch.randperm(len(train_text))
    total = 0.0
    for i in range(0, len(train_text), BATCH):
        idx = perm[i:i + BATCH]
        loss = caption_loss(model(train_text[idx], train_media[idx]), train_text[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()
    gates = [round(blk.attn_gate.tanh().item(), 3) for blk in model.gated_xattn]
    print(f"epoch {epoch} loss {total / (len(train_text) // BATCH):.4f} tanh(attn_gate) {gates}")

model.eval()
with torch.no_grad():
    logits = model(test_text, test_media)
    flamingo_loss = caption_loss(logits, test_text).item()
    # media masking: a new second image changes nothing before its <image> token
    swapped = test_media.clone()
    swapped[:, 1] = test_media.flip(0)[:, 1]
    logits_swapped = model(test_text, swapped)
    second_image_at = int((test_text[0] == IMG).nonzero()[1])
    prefix_unchanged = torch.allclose(logits[:, :second_image_at], logits_swapped[:, :second_image_at],
                                      rtol=0, atol=1e-6)
    suffix_changed = (logits[:, second_image_at:] - logits_swapped[:, second_image_at:]).abs().max().item()
    # text before the first image gets no cross-attention at all
    block = model.gated_xattn[0].attn
    x0 = lm.embed(test_text)
    media = model.perceiver_resampler(model.to_media(test_media))
    xattn = block(x0, media, media_locations=test_text == IMG)
    no_media_zero = bool((xattn[:, 0] == 0).all())
    # greedy captions
    pred = logits[:, :-1].argmax(-1)
    labels = caption_targets(test_text)
    keep = labels != -100
    caption_acc = (pred[keep] == labels[keep]).float().mean().item()

print(f"prefix unchanged by the second image: {prefix_unchanged}  suffix max change {suffix_changed:.3f}  "
      f"BOS cross-attention zero: {no_media_zero}")
print(f"FINAL lm_loss={lm_loss:.4f} flamingo_loss={flamingo_loss:.4f} caption_acc={caption_acc:.4f} "
      f"init_equal={int(same_at_init)} prefix_unchanged={int(prefix_unchanged)} no_media_zero={int(no_media_zero)}")
