"""gMLP and aMLP (lucidrains/g-mlp-pytorch, after Liu et al. "Pay Attention to MLPs") without einops.

The ``SpatialGatingUnit``: ``res, gate = x.chunk(2, dim=-1)``, ``nn.LayerNorm`` on the gate, the spatial
projection by ``einsum('b h n d, h m n -> b h m d', gate, weight)`` + ``bias`` with heads (against the older
single-head ``F.conv1d(gate, weight, bias)`` over the sequence as channels, which must agree), the causal
``torch.ones(n, n).triu_(1).bool()`` mask applied by ``weight.masked_fill(mask, 0.)`` (and by
``masked_fill(mask[..., None], 0.)`` on the conv weight), ``nn.init.uniform_(weight, -init_eps, init_eps)``
with ``init_eps /= dim_seq`` and ``torch.ones`` bias; aMLP's tiny single-head ``Attention`` (``to_qkv(x).chunk(3,
dim=-1)``, ``sim.masked_fill_(mask[None, ...], -torch.finfo(q.dtype).max)``) added to the gate; ``Residual(PreNorm
(...))`` blocks, ``dropout_layers`` by ``torch.zeros(n).uniform_(0., 1.) > prob_survival``; a causal toy LM
(gMLP and aMLP) whose logits up to t do not move when the tokens after t are perturbed (the non-causal model's
do), and ``gMLPVision`` on image patches by ``x.unfold(2, p, p).unfold(3, p, p)`` + ``permute`` (against
``F.unfold``) with a mean-pooled head, trained by Adam.
"""

import os
from random import randrange

import numpy as np
import torch
import torch.nn.functional as F
from torch import einsum, nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)
import random  # noqa: E402

random.seed(seed)


def exists(val):
    return val is not None


def dropout_layers(layers, prob_survival):
    if prob_survival == 1:
        return layers

    num_layers = len(layers)
    to_drop = torch.zeros(num_layers).uniform_(0., 1.) > prob_survival

    # make sure at least one layer makes it
    if all(to_drop):
        rand_index = randrange(num_layers)
        to_drop[rand_index] = False

    layers = [layer for (layer, drop) in zip(layers, to_drop) if not drop]
    return layers


class Residual(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x) + x


class PreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.fn = fn
        self.norm = nn.LayerNorm(dim)

    def forward(self, x, **kwargs):
        x = self.norm(x)
        return self.fn(x, **kwargs)


class Attention(nn.Module):
    def __init__(self, dim_in, dim_out, dim_inner, causal=False):
        super().__init__()
        self.scale = dim_inner ** -0.5
        self.causal = causal

        self.to_qkv = nn.Linear(dim_in, dim_inner * 3, bias=False)
        self.to_out = nn.Linear(dim_inner, dim_out)

    def forward(self, x):
        device = x.device
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        sim = einsum('b i d, b j d -> b i j', q, k) * self.scale

        if self.causal:
            mask = torch.ones(sim.shape[-2:], device=device).triu(1).bool()
            sim.masked_fill_(mask[None, ...], -torch.finfo(q.dtype).max)

        attn = sim.softmax(dim=-1)
        out = einsum('b i j, b j d -> b i d', attn, v)
        return self.to_out(out)


class SpatialGatingUnit(nn.Module):
    def __init__(self, dim, dim_seq, causal=False, act=nn.Identity(), heads=1, init_eps=1e-3):
        super().__init__()
        dim_out = dim // 2
        self.heads = heads
        self.causal = causal
        self.norm = nn.LayerNorm(dim_out)

        self.act = act

        shape = (heads, dim_seq, dim_seq)
        weight = torch.zeros(shape)

        self.weight = nn.Parameter(weight)
        init_eps /= dim_seq
        nn.init.uniform_(self.weight, -init_eps, init_eps)

        self.bias = nn.Parameter(torch.ones(heads, dim_seq))

    def forward(self, x, gate_res=None):
        device, n, h = x.device, x.shape[1], self.heads

        res, gate = x.chunk(2, dim=-1)
        gate = self.norm(gate)

        weight, bias = self.weight, self.bias

        if self.causal:
            weight, bias = weight[:, :n, :n], bias[:, :n]
            mask = torch.ones(weight.shape[-2:], device=device).triu_(1).bool()
            mask = mask[None, :, :]
            weight = weight.masked_fill(mask, 0.)

        b, _, hd = gate.shape
        gate = gate.view(b, n, h, hd // h).permute(0, 2, 1, 3)                 # b n (h d) -> b h n d
        gate = einsum('b h n d, h m n -> b h m d', gate, weight)
        gate = gate + bias[None, :, :, None]                                   # h n -> () h n ()
        gate = gate.permute(0, 2, 1, 3).reshape(b, n, hd)                      # b h n d -> b n (h d)

        if exists(gate_res):
            gate = gate + gate_res

        return self.act(gate) * res


class gMLPBlock(nn.Module):
    def __init__(self, *, dim, dim_ff, seq_len, heads=1, attn_dim=None, causal=False, act=nn.Identity()):
        super().__init__()
        self.proj_in = nn.Sequential(
            nn.Linear(dim, dim_ff),
            nn.GELU()
        )

        self.attn = Attention(dim, dim_ff // 2, attn_dim, causal) if exists(attn_dim) else None

        self.sgu = SpatialGatingUnit(dim_ff, seq_len, causal, act, heads)
        self.proj_out = nn.Linear(dim_ff // 2, dim)

    def forward(self, x):
        gate_res = self.attn(x) if exists(self.attn) else None
        x = self.proj_in(x)
        x = self.sgu(x, gate_res=gate_res)
        x = self.proj_out(x)
        return x


class gMLP(nn.Module):
    def __init__(self, *, num_tokens=None, dim, depth, seq_len, heads=1, ff_mult=4, attn_dim=None,
                 prob_survival=1., causal=False, act=nn.Identity()):
        super().__init__()
        assert (dim % heads) == 0, 'dimension must be divisible by number of heads'

        dim_ff = dim * ff_mult
        self.seq_len = seq_len
        self.prob_survival = prob_survival

        self.to_embed = nn.Embedding(num_tokens, dim) if exists(num_tokens) else nn.Identity()

        self.layers = nn.ModuleList([Residual(PreNorm(dim, gMLPBlock(dim=dim, heads=heads, dim_ff=dim_ff,
                                                                     seq_len=seq_len, attn_dim=attn_dim,
                                                                     causal=causal, act=act)))
                                     for i in range(depth)])

        self.to_logits = nn.Sequential(
            nn.LayerNorm(dim),
            nn.Linear(dim, num_tokens)
        ) if exists(num_tokens) else nn.Identity()

    def forward(self, x):
        x = self.to_embed(x)
        layers = self.layers if not self.training else dropout_layers(self.layers, self.prob_survival)
        out = nn.Sequential(*layers)(x)
        return self.to_logits(out)


def pair(val):
    return (val, val) if not isinstance(val, tuple) else val


class gMLPVision(nn.Module):
    def __init__(self, *, image_size, patch_size, num_classes, dim, depth, heads=1, ff_mult=4, channels=3,
                 attn_dim=None, prob_survival=1.):
        super().__init__()
        assert (dim % heads) == 0, 'dimension must be divisible by number of heads'

        image_height, image_width = pair(image_size)
        patch_height, patch_width = pair(patch_size)
        assert (image_height % patch_height) == 0 and (image_width % patch_width) == 0, \
            'image height and width must be divisible by patch size'
        num_patches = (image_height // patch_height) * (image_width // patch_width)

        dim_ff = dim * ff_mult
        self.patch_size = patch_size
        self.to_patch_linear = nn.Linear(channels * patch_height * patch_width, dim)

        self.prob_survival = prob_survival

        self.layers = nn.ModuleList([Residual(PreNorm(dim, gMLPBlock(dim=dim, heads=heads, dim_ff=dim_ff,
                                                                     seq_len=num_patches, attn_dim=attn_dim)))
                                     for i in range(depth)])

        self.to_logits = nn.Sequential(
            nn.LayerNorm(dim),
            nn.Linear(dim, num_classes)
        )

    def to_patches(self, x):
        # Rearrange('b c (h p1) (w p2) -> b (h w) (c p1 p2)')
        p = self.patch_size
        b, c = x.shape[:2]
        patches = x.unfold(2, p, p).unfold(3, p, p)                          # b c h w p1 p2
        return patches.permute(0, 2, 3, 1, 4, 5).reshape(b, -1, c * p * p)

    def forward(self, x):
        x = self.to_patch_linear(self.to_patches(x))
        layers = self.layers if not self.training else dropout_layers(self.layers, self.prob_survival)
        x = nn.Sequential(*layers)(x)
        x = self.to_logits[0](x).mean(dim=1)                                  # Reduce('b n d -> b d', 'mean')
        return self.to_logits[1](x)


# the einsum spatial projection against the conv1d form (sequence positions as channels), causal too
sgu = SpatialGatingUnit(16, 10, causal=True, heads=1)
with torch.no_grad():
    sgu.weight.uniform_(-0.5, 0.5)
    sgu.bias.normal_()
x = torch.randn(3, 10, 16)
res, gate = x.chunk(2, dim=-1)
mask = torch.ones(10, 10).triu_(1).bool()
conv_weight = sgu.weight[0].unsqueeze(-1).masked_fill(mask[..., None], 0.)
conv_out = F.conv1d(sgu.norm(gate), conv_weight, sgu.bias[0]) * res
conv_err = (sgu(x) - conv_out).abs().max().item()
print(f"sgu einsum vs conv1d: shape {tuple(conv_out.shape)}, err {conv_err:.2e}")

# two heads
sgu2 = SpatialGatingUnit(16, 10, heads=2)
print(f"two-head sgu: weight {tuple(sgu2.weight.shape)}, bias {tuple(sgu2.bias.shape)}, "
      f"init within eps {bool(sgu2.weight.abs().max() <= 1e-3 / 10)}, out {tuple(sgu2(x).shape)}")


# a causal toy LM: each sequence counts up by its own step modulo VOCAB
VOCAB, SEQ = 10, 12


def make_lm_batch(batch_size):
    start = rng.integers(0, VOCAB, size=(batch_size, 1))
    step = rng.integers(1, 4, size=(batch_size, 1))
    tokens = (start + step * np.arange(SEQ + 1)[None, :]) % VOCAB
    tokens = torch.from_numpy(tokens)
    return tokens[:, :-1], tokens[:, 1:]


def train_lm(model, steps=120):
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(1, steps + 1):
        inputs, targets = make_lm_batch(32)
        logits = model(inputs)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 40 == 0:
            print(f"  step {step}: loss {loss.item():.4f}")
    return model


@torch.no_grad()
def evaluate_lm(model):
    model.eval()
    inputs, targets = make_lm_batch(128)
    logits = model(inputs)
    loss = F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1)).item()
    # from the second token on, the step is known
    acc = (logits.argmax(-1)[:, 1:] == targets[:, 1:]).float().mean().item()
    model.train()
    return loss, acc


@torch.no_grad()
def future_leak(model, t=5):
    """How far the logits at positions <= t move when every token after t is replaced."""
    model.eval()
    inputs, _ = make_lm_batch(16)
    perturbed = inputs.clone()
    perturbed[:, t + 1:] = torch.from_numpy(rng.integers(0, VOCAB, size=(16, SEQ - t - 1)))
    leak = (model(inputs)[:, :t + 1] - model(perturbed)[:, :t + 1]).abs().max().item()
    changed = (model(inputs)[:, t + 1:] - model(perturbed)[:, t + 1:]).abs().max().item()
    model.train()
    return leak, changed


print("gMLP causal LM:")
gmlp_lm = train_lm(gMLP(num_tokens=VOCAB, dim=32, depth=2, seq_len=SEQ, causal=True))
gmlp_loss, gmlp_acc = evaluate_lm(gmlp_lm)
print("aMLP causal LM (tiny attention on the gate):")
amlp_lm = train_lm(gMLP(num_tokens=VOCAB, dim=32, depth=2, seq_len=SEQ, causal=True, attn_dim=16))
amlp_loss, amlp_acc = evaluate_lm(amlp_lm)
print(f"lm: gmlp loss {gmlp_loss:.4f} acc {gmlp_acc:.4f}, amlp loss {amlp_loss:.4f} acc {amlp_acc:.4f}")

gmlp_leak, gmlp_changed = future_leak(gmlp_lm)
amlp_leak, amlp_changed = future_leak(amlp_lm)
bidirectional = gMLP(num_tokens=VOCAB, dim=32, depth=2, seq_len=SEQ, causal=False, attn_dim=16)
with torch.no_grad():
    for layer in bidirectional.layers:
        layer.fn.fn.sgu.weight.uniform_(-0.1, 0.1)
bidir_leak, _ = future_leak(bidirectional)
print(f"causality: gmlp leak {gmlp_leak:.2e} (later logits moved {gmlp_changed > 0}), "
      f"amlp leak {amlp_leak:.2e} (later logits moved {amlp_changed > 0}), non-causal leaks {bidir_leak > 1e-4}")


# gMLPVision on 8x8 images: which quadrant holds the bright square
def make_images(batch_size):
    images = rng.normal(0.0, 0.3, size=(batch_size, 3, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 4, size=batch_size)
    for i, label in enumerate(labels):
        r, c = divmod(int(label), 2)
        images[i, :, 4 * r + 1:4 * r + 3, 4 * c + 1:4 * c + 3] += 1.5
    return torch.from_numpy(images), torch.from_numpy(labels)


vision = gMLPVision(image_size=8, patch_size=2, num_classes=4, dim=16, depth=2, prob_survival=0.9)
images, labels = make_images(4)
unfolded = F.unfold(images, kernel_size=2, stride=2).transpose(1, 2)
patch_err = (vision.to_patches(images) - unfolded).abs().max().item()
print(f"patches {tuple(unfolded.shape)}, unfold+permute vs F.unfold err {patch_err:.2e}")

optimizer = torch.optim.Adam(vision.parameters(), lr=3e-3)
for step in range(1, 81):
    images, labels = make_images(32)
    loss = F.cross_entropy(vision(images), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 40 == 0:
        print(f"  vision step {step}: loss {loss.item():.4f}")
vision.eval()
with torch.no_grad():
    images, labels = make_images(256)
    logits = vision(images)
    vision_loss = F.cross_entropy(logits, labels).item()
    vision_acc = (logits.argmax(1) == labels).float().mean().item()
print(f"vision: loss {vision_loss:.4f} acc {vision_acc:.4f}")
print(f"FINAL gmlp_loss={gmlp_loss:.4f} gmlp_acc={gmlp_acc:.4f} amlp_loss={amlp_loss:.4f} amlp_acc={amlp_acc:.4f} "
      f"vision_acc={vision_acc:.4f} leak={max(gmlp_leak, amlp_leak):.6f} conv_err={conv_err:.6f} "
      f"patch_err={patch_err:.6f}")
