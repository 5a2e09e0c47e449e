"""nGPT, the normalized Transformer (Loshchilov et al. 2024), as NVIDIA/ngpt's ``model.py``/``train.py`` write
it, at tiny sizes on a character task, against the same code's baseline GPT (``use_nGPT = 0``).

Every hidden state lives on the unit hypersphere: ``justnorm`` by ``F.normalize(x, p=2, dim=-1)`` (against
the repository's ``x / x.norm(p=2, dim=-1, keepdim=True)``), the eigen learning rates ``attn_alpha`` /
``mlp_alpha`` stored with the scale trick (``nn.Parameter(scaling * torch.ones(n))`` read back as ``alpha *
(init_value / init_scaling)`` through ``torch.abs``), the update ``h = norm(A_norm + lr * (B_norm -
A_norm))``, ``sqk`` scaling normalised queries and keys (``view(1, 1, n_head, head_dim)``) with softmax scale
``sqrt(head_dim)`` instead of its inverse, ``suv`` scaling the SwiGLU input by ``sqrt(n_embd)`` before
``torch.chunk(uv, 2, dim=-1)``, ``sz`` scaling the logits; rotary embeddings from ``get_sinusoidal_embeddings``
(``sinusoidal_emb[:, 0::2] = torch.sin(...)``) and ``apply_rotary_position_embeddings`` (``chunk(2, dim=-1)``,
``torch.stack((-q[..., 1::2], q[..., ::2]), dim=-1)``, ``torch.reshape(..., q.shape[:-1] + (q.shape[-1] // 2,
2))``); ``nn.ModuleDict`` transformer, ``apply(self._init_weights)`` with ``base_scale = 1 / sqrt(n_embd)``,
no weight tying, no weight decay, no LayerNorm. After every optimiser step ``normalize_matrices`` puts each
embedding row back on the sphere under ``torch.no_grad()`` by ``W.copy_(F.normalize(W, dim=...))`` (``dim=1``
for the input-side matrices, ``dim=0`` for the output projections), checked against train.py's
``.data.copy_(justnorm(W.data, idim))`` on a copy of the model.

Checked: the largest deviation of any normalised row norm from 1 over all steps, of the hidden states'
norms (forward hooks on the blocks), the effective alphas at initialisation, and the validation loss of
nGPT and of the baseline GPT (RMSNorm, AdamW with weight decay) both falling well below the unigram entropy.
"""

import copy
import math
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


@dataclass
class GPTConfig:
    block_size: int = 16
    vocab_size: int = 32
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 32
    base_scale: float = 1.0 / (32.0 ** 0.5)  # 1 / sqrt(n_embd)
    use_nGPT: int = 1
    dropout: float = 0.0
    bias: bool = False


class RMSNorm(torch.nn.Module):
    def __init__(self, embdim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(embdim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        norm = torch.mean(x * x, dim=-1, keepdim=True)
        xnorm = x * torch.rsqrt(norm + self.eps)
        xnorm = xnorm.to(dtype=dtype)
        return xnorm * self.weight


def get_sinusoidal_embeddings(n_positions, dim):
    """Generate sinusoidal positional embeddings."""
    position = torch.arange(n_positions, dtype=torch.float).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2).float() * -(math.log(10000.0) / dim))
    sinusoidal_emb = torch.zeros((n_positions, dim))
    sinusoidal_emb[:, 0::2] = torch.sin(position * div_term)
    sinusoidal_emb[:, 1::2] = torch.cos(position * div_term)
    return sinusoidal_emb


def apply_rotary_position_embeddings(sinusoidal_pos, q, k):
    # Split the sinusoidal_pos into sin and cos parts
    sin, cos = sinusoidal_pos.chunk(2, dim=-1)
    # Apply the rotary embeddings to the query and key
    q_rot = torch.stack((-q[..., 1::2], q[..., ::2]), dim=-1)
    k_rot = torch.stack((-k[..., 1::2], k[..., ::2]), dim=-1)
    q_rot = torch.reshape(q_rot, q.shape[:-1] + (q.shape[-1] // 2, 2)) * torch.stack((cos, sin), dim=-1)
    k_rot = torch.reshape(k_rot, k.shape[:-1] + (k.shape[-1] // 2, 2)) * torch.stack((cos, sin), dim=-1)
    q_rot = torch.reshape(q_rot, q.shape)
    k_rot = torch.reshape(k_rot, k.shape)
    return q_rot, k_rot


class Block(nn.Module):
    def __init__(self, config, iblock):
        super().__init__()
        self.config = config

        self.key = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.query = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.value = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.att_c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)

        self.c_fc = nn.Linear(config.n_embd, 2 * 4 * config.n_embd, bias=config.bias)
        self.silu = nn.SiLU()
        self.mlp_c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)

        if config.use_nGPT == 0:
            self.rmsnorm_att = RMSNorm(config.n_embd)
            self.rmsnorm_mlp = RMSNorm(config.n_embd)

        if config.use_nGPT == 1:
            self.attn_alpha_init_value = 0.05
            self.attn_alpha_init_scaling = config.base_scale
            self.attn_alpha = torch.nn.Parameter(self.attn_alpha_init_scaling * torch.ones(self.config.n_embd, dtype=torch.float32))

            self.mlp_alpha_init_value = 0.05
            self.mlp_alpha_init_scaling = config.base_scale
            self.mlp_alpha = torch.nn.Parameter(self.mlp_alpha_init_scaling * torch.ones(self.config.n_embd, dtype=torch.float32))

            self.sqk_init_value = 1.0
            self.sqk_init_scaling = config.base_scale
            self.sqk = torch.nn.Parameter(self.sqk_init_scaling * torch.ones(self.config.n_embd, dtype=torch.float32))

            self.suv_init_value = 1.0
            self.suv_init_scaling = 1.0
            self.suv = torch.nn.Parameter(self.suv_init_scaling * torch.ones(2 * 4 * config.n_embd, dtype=torch.float32))

    def justnorm(self, x):
        return F.normalize(x, p=2, dim=-1)

    def effective_alphas(self):
        attn = torch.abs(self.attn_alpha * (self.attn_alpha_init_value / self.attn_alpha_init_scaling))
        mlp = torch.abs(self.mlp_alpha * (self.mlp_alpha_init_value / self.mlp_alpha_init_scaling))
        return attn, mlp

    def forward(self, h):
        B, T, C = h.size()

        hin = h
        if self.config.use_nGPT == 0:
            hin = self.rmsnorm_att(h)

        q = self.query(hin)
        k = self.key(hin)
        v = self.value(hin)

        q = q.view(B, T, self.config.n_head, self.config.n_embd // self.config.n_head)
        k = k.view(B, T, self.config.n_head, self.config.n_embd // self.config.n_head)
        v = v.view(B, T, self.config.n_head, self.config.n_embd // self.config.n_head)

        sinusoidal_pos = get_sinusoidal_embeddings(T, self.config.n_embd // self.config.n_head).to(device=q.device)
        q, k = apply_rotary_position_embeddings(sinusoidal_pos, q.transpose(1, 2), k.transpose(1, 2))
        q = q.transpose(2, 1)
        k = k.transpose(2, 1)

        if self.config.use_nGPT == 1:
            sqk = (self.sqk * (self.sqk_init_value / self.sqk_init_scaling)).view(1, 1, self.config.n_head, self.config.n_embd // self.config.n_head)
            q = sqk * self.justnorm(q)
            k = sqk * self.justnorm(k)

        sqrt_head_dim = (self.config.n_embd / self.config.n_head) ** 0.5
        if self.config.use_nGPT == 0:
            softmax_scale = 1.0 / sqrt_head_dim
        if self.config.use_nGPT == 1:
            softmax_scale = sqrt_head_dim
        # flash_attn_func(q, k, v, softmax_scale=..., causal=True) takes (B, T, H, D)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                           dropout_p=0.0, is_causal=True, scale=softmax_scale)
        y = y.transpose(1, 2).to(dtype=q.dtype)
        y = y.contiguous().view(B, T, self.config.n_embd)

        h_att = self.att_c_proj(y)

        if self.config.use_nGPT == 0:
            h = h + h_att
        if self.config.use_nGPT == 1:
            lr = self.attn_alpha * (self.attn_alpha_init_value / self.attn_alpha_init_scaling)
            lr = torch.abs(lr)

            A_norm = self.justnorm(h)  # normally, normalization is not needed
            B_norm = self.justnorm(h_att)

            # res = (1.0 - lr) * A_norm + lr * B_norm
            res = A_norm + lr * (B_norm - A_norm)
            h = self.justnorm(res)

        hin = h
        if self.config.use_nGPT == 0:
            hin = self.rmsnorm_mlp(h)
        uv = self.c_fc(hin)
        if self.config.use_nGPT == 1:
            suv = (self.suv * ((self.suv_init_value / self.suv_init_scaling) * (self.config.n_embd ** 0.5)))
            uv = suv * uv
        u, v = torch.chunk(uv, 2, dim=-1)
        x_mlp = u * self.silu(v)
        h_mlp = self.mlp_c_proj(x_mlp)

        if self.config.use_nGPT == 0:
            h = h + h_mlp
        if self.config.use_nGPT == 1:
            lr = self.mlp_alpha * (self.mlp_alpha_init_value / self.mlp_alpha_init_scaling)
            lr = torch.abs(lr)

            A_norm = self.justnorm(h)  # normally, normalization is not needed
            B_norm = self.justnorm(h_mlp)

            # res = (1.0 - lr) * A_norm + lr * B_norm
            res = A_norm + lr * (B_norm - A_norm)
            h = self.justnorm(res)

        return h


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config, il) for il in range(config.n_layer)]),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # *we don't use it becuase in the nGPT paper there was no weight tying of weights*
        # self.transformer.wte.weight = self.lm_head.weight

        self.apply(self._init_weights)
        for pn, p in self.named_parameters():
            if pn.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=config.base_scale / math.sqrt(2 * config.n_layer))

        if config.use_nGPT == 1:
            self.sz_init_value = 1.00
            self.sz_init_scaling = config.base_scale
            self.sz = torch.nn.Parameter(self.sz_init_scaling * torch.ones(config.vocab_size, dtype=torch.float32))

        if config.use_nGPT == 0:
            self.rmsnorm_f = RMSNorm(config.n_embd)

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=self.config.base_scale)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=self.config.base_scale)

    def forward(self, idx, targets=None):
        tok_emb = self.transformer.wte(idx)
        x = self.transformer.drop(tok_emb)
        for block in self.transformer.h:
            x = block(x)
        if self.config.use_nGPT == 0:
            x = self.rmsnorm_f(x)
        logits = self.lm_head(x)
        if self.config.use_nGPT == 1:
            sz = self.sz * (self.sz_init_value / self.sz_init_scaling)
            logits = sz * logits
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return logits, loss


# ------------------------------------------------------------------------------- train.py helpers
def justnorm(x, idim=-1):
    dtype = x.dtype
    x = x.float()
    res = (x / x.norm(p=2, dim=idim, keepdim=True)).to(dtype=dtype)
    return res


def normalized_matrices(model):
    """(weight, dim) pairs normalize_matrices() keeps on the sphere."""
    transformer = model.transformer
    pairs = [(transformer.wte.weight, 1), (model.lm_head.weight, 1)]
    for layer_idx in range(0, model.config.n_layer):
        block = transformer["h"][layer_idx]
        pairs += [(block.query.weight, 1), (block.key.weight, 1), (block.value.weight, 1),
                  (block.att_c_proj.weight, 0), (block.c_fc.weight, 1), (block.mlp_c_proj.weight, 0)]
    return pairs


@torch.no_grad()
def normalize_matrices(model):
    for W, dim in normalized_matrices(model):
        W.copy_(F.normalize(W, dim=dim))


def normalize_matrices_data(model):
    # train.py as written: through .data, with its own justnorm
    for W, dim in normalized_matrices(model):
        W.data.copy_(justnorm(W.data, dim))


def max_row_norm_deviation(model):
    return max((W.detach().norm(p=2, dim=dim) - 1).abs().max().item() for W, dim in normalized_matrices(model))


# ------------------------------------------------------------------------------------------ data
words = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "to", "red", "big", "sun", "and", "hat"]
rng = np.random.RandomState(1234)
text = " ".join(words[i] for i in rng.randint(0, len(words), size=1400)) + " "
chars = sorted(set(text))
stoi = {ch: i for i, ch in enumerate(chars)}
data = np.array([stoi[c] for c in text], dtype=np.int64)
n_train = int(0.9 * len(data))
train_data, val_data = data[:n_train], data[n_train:]
counts = np.bincount(train_data, minlength=len(chars)).astype(np.float64)
unigram = float(-(counts / counts.sum() * np.log(counts / counts.sum() + 1e-12)).sum())
print(f"chars {len(chars)} train {len(train_data)} val {len(val_data)} unigram entropy {unigram:.4f}")

BLOCK, BATCH, STEPS = 16, 16, 100


def get_batch(split, gen):
    d = train_data if split == "train" else val_data
    ix = torch.randint(len(d) - BLOCK, (BATCH,), generator=gen)
    x = torch.stack([torch.from_numpy(d[i:i + BLOCK]) for i in ix.tolist()])
    y = torch.stack([torch.from_numpy(d[i + 1:i + 1 + BLOCK]) for i in ix.tolist()])
    return x, y


@torch.no_grad()
def estimate_loss(model, iters=8):
    model.eval()
    gen = torch.Generator().manual_seed(777)
    losses = torch.zeros(iters)
    for k in range(iters):
        X, Y = get_batch("val", gen)
        losses[k] = model(X, Y)[1].item()
    model.train()
    return losses.mean().item()


hidden_dev = []


def record_hidden_norm(module, inputs, output):
    hidden_dev.append((output.detach().norm(dim=-1) - 1).abs().max().item())


# ------------------------------------------------------------------------------------------ runs
results = {}
for use_ngpt in (1, 0):
    tag = "ngpt" if use_ngpt else "gpt"
    torch.manual_seed(seed)
    config = GPTConfig(vocab_size=len(chars), use_nGPT=use_ngpt)
    model = GPT(config)
    if use_ngpt:
        reference = copy.deepcopy(model)
        normalize_matrices(model)
        normalize_matrices_data(reference)
        same = max((a - b).abs().max().item() for a, b in zip(model.parameters(), reference.parameters()))
        print(f"F.normalize vs justnorm matrices: max|diff| {same:.2e}")
        assert same < 1e-6
        a0, m0 = model.transformer.h[0].effective_alphas()
        print(f"effective alphas at init: attn {a0.mean().item():.4f} mlp {m0.mean().item():.4f}")
        hooks = [blk.register_forward_hook(record_hidden_norm) for blk in model.transformer.h]
    weight_decay = 0.0 if use_ngpt else 0.1
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2 if use_ngpt else 3e-3, betas=(0.9, 0.95), weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * it / STEPS)))
    gen = torch.Generator().manual_seed(seed)
    init_loss = estimate_loss(model)
    max_dev = 0.0
    for it in range(STEPS):
        X, Y = get_batch("train", gen)
        logits, loss = model(X, Y)
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if use_ngpt:
            normalize_matrices(model)
            max_dev = max(max_dev, max_row_norm_deviation(model))
        if it % 25 == 0 or it == STEPS - 1:
            print(f"{tag} iter {it} loss {loss.item():.4f}")
    val = estimate_loss(model)
    results[tag] = (init_loss, val)
    print(f"{tag} val loss {init_loss:.4f} -> {val:.4f}")
    if use_ngpt:
        for hk in hooks:
            hk.remove()
        hidden = max(hidden_dev)
        a, m = model.transformer.h[-1].effective_alphas()
        print(f"max row-norm deviation {max_dev:.2e} hidden-norm deviation {hidden:.2e} "
              f"alphas attn {a.mean().item():.4f} mlp {m.mean().item():.4f}")
        assert max_dev < 1e-5 and hidden < 1e-5
        norm_dev = max_dev

ngpt_init, ngpt_val = results["ngpt"]
gpt_init, gpt_val = results["gpt"]
assert ngpt_val < 0.8 * unigram and gpt_val < 0.8 * unigram, (ngpt_val, gpt_val, unigram)
print(f"FINAL ngpt_val={ngpt_val:.4f} gpt_val={gpt_val:.4f} ngpt_drop={ngpt_init - ngpt_val:.4f} "
      f"max_norm_dev={norm_dev:.2e} hidden_norm_dev={hidden:.2e}")
