"""karpathy/llama2.c's model.py and train.py loop at tiny sizes, with Meta's complex-number RoPE beside it.

``ModelArgs`` as a dataclass, ``RMSNorm`` by ``x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)``
on ``x.float()`` and back by ``.type_as(x)``, ``precompute_freqs_cis`` with ``torch.outer`` and
``torch.cos``/``torch.sin``, ``apply_rotary_emb`` by reshaping into pairs, ``unbind(-1)`` and
``torch.stack(...).flatten(3)``; Meta's llama version of the same rotation by ``torch.polar(
torch.ones_like(freqs), freqs)``, ``torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))``
and ``torch.view_as_real(...).flatten(3)`` (values and gradients checked against the real one);
``repeat_kv`` for grouped-query attention by ``x[:, :, :, None, :].expand(...).reshape(...)``,
``F.scaled_dot_product_attention(..., is_causal=True)`` and the manual path with a
``torch.full((1, 1, L, L), float("-inf"))`` + ``torch.triu(mask, diagonal=1)`` buffer (the two
must give the same logits), SwiGLU ``w2(F.silu(w1(x)) * w3(x))``, the tied embedding,
``apply(_init_weights)`` and the scaled init of ``w3.weight``/``wo.weight`` found by
``pn.endswith(...)`` over ``named_parameters()``, ``configure_optimizers``' two AdamW groups by
``p.dim() >= 2``, train.py's warmup + cosine ``get_lr``, gradient accumulation and
``clip_grad_norm_``, ``logits = self.output(h[:, [-1], :])`` at inference, and ``generate`` under
``@torch.inference_mode()`` with temperature and top-k (``torch.topk``, ``logits[logits < v[:,
[-1]]] = -float('Inf')``, ``torch.multinomial``).

The token stream is synthetic: an order-2 Markov chain over 16 tokens whose next token is a fixed
table's entry for the two before it, or with a 10% chance a random token.
"""
# ruff: noqa: UP045  (the repository's Optional[...] spelling)

import inspect
import math
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

VOCAB = 16


# an order-2 chain: the next token is TABLE[previous two], or with 10% chance a random token
TABLE = rng.integers(0, VOCAB, size=(VOCAB, VOCAB))


def token_stream(length):
    out = np.empty(length, dtype=np.int64)
    out[:2] = rng.integers(0, VOCAB, size=2)
    for t in range(2, length):
        if rng.random() < 0.1:
            out[t] = rng.integers(0, VOCAB)
        else:
            out[t] = TABLE[out[t - 2], out[t - 1]]
    return torch.from_numpy(out)


@dataclass
class ModelArgs:
    # default hyperparameters for the Llama 7B model
    dim: int = 4096
    n_layers: int = 32
    n_heads: int = 32
    n_kv_heads: Optional[int] = None
    vocab_size: int = 32000
    hidden_dim: Optional[int] = None
    multiple_of: int = 256  # MLP hidden layer size will be multiple of
    norm_eps: float = 1e-5
    max_seq_len: int = 2048
    dropout: float = 0.0


class RMSNorm(torch.nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def _norm(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)

    def forward(self, x):
        output = self._norm(x.float()).type_as(x)
        return output * self.weight


def precompute_freqs_cis(dim: int, end: int, theta: float = 10000.0):
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: (dim // 2)].float() / dim))
    t = torch.arange(end, device=freqs.device)
    freqs = torch.outer(t, freqs).float()
    freqs_cos = torch.cos(freqs)  # real part
    freqs_sin = torch.sin(freqs)  # imaginary part
    return freqs_cos, freqs_sin


def reshape_for_broadcast(freqs_cis: torch.Tensor, x: torch.Tensor):
    ndim = x.ndim
    assert 0 <= 1 < ndim
    assert freqs_cis.shape == (x.shape[1], x.shape[-1])
    shape = [d if i == 1 or i == ndim - 1 else 1 for i, d in enumerate(x.shape)]
    return freqs_cis.view(shape)


def apply_rotary_emb(xq, xk, freqs_cos, freqs_sin):
    # reshape xq and xk to match the complex representation
    xq_r, xq_i = xq.float().reshape(xq.shape[:-1] + (-1, 2)).unbind(-1)
    xk_r, xk_i = xk.float().reshape(xk.shape[:-1] + (-1, 2)).unbind(-1)

    # reshape freqs_cos and freqs_sin for broadcasting
    freqs_cos = reshape_for_broadcast(freqs_cos, xq_r)
    freqs_sin = reshape_for_broadcast(freqs_sin, xq_r)

    # apply rotation using real numbers
    xq_out_r = xq_r * freqs_cos - xq_i * freqs_sin
    xq_out_i = xq_r * freqs_sin + xq_i * freqs_cos
    xk_out_r = xk_r * freqs_cos - xk_i * freqs_sin
    xk_out_i = xk_r * freqs_sin + xk_i * freqs_cos

    # flatten last two dimensions
    xq_out = torch.stack([xq_out_r, xq_out_i], dim=-1).flatten(3)
    xk_out = torch.stack([xk_out_r, xk_out_i], dim=-1).flatten(3)

    return xq_out.type_as(xq), xk_out.type_as(xk)


# Meta's llama/model.py spells the same rotation with complex numbers
def precompute_freqs_cis_complex(dim: int, end: int, theta: float = 10000.0):
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: (dim // 2)].float() / dim))
    t = torch.arange(end, device=freqs.device)
    freqs = torch.outer(t, freqs).float()
    freqs_cis = torch.polar(torch.ones_like(freqs), freqs)  # complex64
    return freqs_cis


def apply_rotary_emb_complex(xq, xk, freqs_cis):
    xq_ = torch.view_as_complex(xq.float().reshape(*xq.shape[:-1], -1, 2))
    xk_ = torch.view_as_complex(xk.float().reshape(*xk.shape[:-1], -1, 2))
    freqs_cis = reshape_for_broadcast(freqs_cis, xq_)
    xq_out = torch.view_as_real(xq_ * freqs_cis).flatten(3)
    xk_out = torch.view_as_real(xk_ * freqs_cis).flatten(3)
    return xq_out.type_as(xq), xk_out.type_as(xk)


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """torch.repeat_interleave(x, dim=2, repeats=n_rep)"""
    bs, slen, n_kv_heads, head_dim = x.shape
    if n_rep == 1:
        return x
    return (
        x[:, :, :, None, :]
        .expand(bs, slen, n_kv_heads, n_rep, head_dim)
        .reshape(bs, slen, n_kv_heads * n_rep, head_dim)
    )


class Attention(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.n_kv_heads = args.n_heads if args.n_kv_heads is None else args.n_kv_heads
        assert args.n_heads % self.n_kv_heads == 0
        model_parallel_size = 1
        self.n_local_heads = args.n_heads // model_parallel_size
        self.n_local_kv_heads = self.n_kv_heads // model_parallel_size
        self.n_rep = self.n_local_heads // self.n_local_kv_heads
        self.head_dim = args.dim // args.n_heads
        self.wq = nn.Linear(args.dim, args.n_heads * self.head_dim, bias=False)
        self.wk = nn.Linear(args.dim, self.n_kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(args.dim, self.n_kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(args.n_heads * self.head_dim, args.dim, bias=False)
        self.attn_dropout = nn.Dropout(args.dropout)
        self.resid_dropout = nn.Dropout(args.dropout)
        self.dropout = args.dropout

        # use flash attention or a manual implementation?
        self.flash = hasattr(torch.nn.functional, 'scaled_dot_product_attention')
        if not self.flash:
            print("WARNING: using slow attention. Flash Attention requires PyTorch >= 2.0")
            mask = torch.full((1, 1, args.max_seq_len, args.max_seq_len), float("-inf"))
            mask = torch.triu(mask, diagonal=1)
            self.register_buffer("mask", mask)

    def forward(self, x, freqs_cos, freqs_sin):
        bsz, seqlen, _ = x.shape

        # QKV
        xq, xk, xv = self.wq(x), self.wk(x), self.wv(x)
        xq = xq.view(bsz, seqlen, self.n_local_heads, self.head_dim)
        xk = xk.view(bsz, seqlen, self.n_local_kv_heads, self.head_dim)
        xv = xv.view(bsz, seqlen, self.n_local_kv_heads, self.head_dim)

        # RoPE relative positional embeddings
        xq, xk = apply_rotary_emb(xq, xk, freqs_cos, freqs_sin)

        # grouped multiquery attention: expand out keys and values
        xk = repeat_kv(xk, self.n_rep)  # (bs, seqlen, n_local_heads, head_dim)
        xv = repeat_kv(xv, self.n_rep)  # (bs, seqlen, n_local_heads, head_dim)

        # make heads into a batch dimension
        xq = xq.transpose(1, 2)  # (bs, n_local_heads, seqlen, head_dim)
        xk = xk.transpose(1, 2)
        xv = xv.transpose(1, 2)

        # flash implementation
        if self.flash:
            output = torch.nn.functional.scaled_dot_product_attention(
                xq, xk, xv, attn_mask=None, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        else:
            # manual implementation
            scores = torch.matmul(xq, xk.transpose(2, 3)) / math.sqrt(self.head_dim)
            assert hasattr(self, 'mask')
            scores = scores + self.mask[:, :, :seqlen, :seqlen]  # (bs, n_local_heads, seqlen, cache_len + seqlen)
            scores = F.softmax(scores.float(), dim=-1).type_as(xq)
            scores = self.attn_dropout(scores)
            output = torch.matmul(scores, xv)  # (bs, n_local_heads, seqlen, head_dim)

        # restore time as batch dimension and concat heads
        output = output.transpose(1, 2).contiguous().view(bsz, seqlen, -1)

        # final projection into the residual stream
        output = self.wo(output)
        output = self.resid_dropout(output)
        return output


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden_dim: int, multiple_of: int, dropout: float):
        super().__init__()
        if hidden_dim is None:
            hidden_dim = 4 * dim
            hidden_dim = int(2 * hidden_dim / 3)
            hidden_dim = multiple_of * ((hidden_dim + multiple_of - 1) // multiple_of)
        self.w1 = nn.Linear(dim, hidden_dim, bias=False)
        self.w2 = nn.Linear(hidden_dim, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden_dim, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.w2(F.silu(self.w1(x)) * self.w3(x)))


class TransformerBlock(nn.Module):
    def __init__(self, layer_id: int, args: ModelArgs):
        super().__init__()
        self.n_heads = args.n_heads
        self.dim = args.dim
        self.head_dim = args.dim // args.n_heads
        self.attention = Attention(args)
        self.feed_forward = FeedForward(
            dim=args.dim,
            hidden_dim=args.hidden_dim,
            multiple_of=args.multiple_of,
            dropout=args.dropout,
        )
        self.layer_id = layer_id
        self.attention_norm = RMSNorm(args.dim, eps=args.norm_eps)
        self.ffn_norm = RMSNorm(args.dim, eps=args.norm_eps)

    def forward(self, x, freqs_cos, freqs_sin):
        h = x + self.attention.forward(self.attention_norm(x), freqs_cos, freqs_sin)
        out = h + self.feed_forward.forward(self.ffn_norm(h))
        return out


class Transformer(nn.Module):
    last_loss: Optional[torch.Tensor]

    def __init__(self, params: ModelArgs):
        super().__init__()
        self.params = params
        self.vocab_size = params.vocab_size
        self.n_layers = params.n_layers

        self.tok_embeddings = nn.Embedding(params.vocab_size, params.dim)
        self.dropout = nn.Dropout(params.dropout)
        self.layers = torch.nn.ModuleList()
        for layer_id in range(params.n_layers):
            self.layers.append(TransformerBlock(layer_id, params))
        self.norm = RMSNorm(params.dim, eps=params.norm_eps)
        self.output = nn.Linear(params.dim, params.vocab_size, bias=False)

        # share the unembedding parameters with the embedding parameters
        self.tok_embeddings.weight = self.output.weight  # https://paperswithcode.com/method/weight-tying

        # some useful precompute for the RoPE relative positional embeddings
        freqs_cos, freqs_sin = precompute_freqs_cis(self.params.dim // self.params.n_heads, self.params.max_seq_len)
        self.register_buffer("freqs_cos", freqs_cos, persistent=False)
        self.register_buffer("freqs_sin", freqs_sin, persistent=False)

        # init all weights
        self.apply(self._init_weights)
        # apply special scaled init to the residual projections, per GPT-2 paper
        for pn, p in self.named_parameters():
            if pn.endswith('w3.weight') or pn.endswith('wo.weight'):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * params.n_layers))

        # Initialize attribute for the loss of the last forward call. This will be set if the forward
        # is called with a targets tensor.
        self.last_loss = None

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, tokens: torch.Tensor, targets: Optional[torch.Tensor] = None) -> torch.Tensor:
        _bsz, seqlen = tokens.shape
        h = self.tok_embeddings(tokens)
        h = self.dropout(h)
        freqs_cos = self.freqs_cos[:seqlen]
        freqs_sin = self.freqs_sin[:seqlen]

        for layer in self.layers:
            h = layer(h, freqs_cos, freqs_sin)
        h = self.norm(h)

        if targets is not None:
            # if we are given some desired targets also calculate the loss
            logits = self.output(h)
            self.last_loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        else:
            # inference-time mini-optimization: only forward the output on the very last position
            logits = self.output(h[:, [-1], :])  # note: using list [-1] to preserve the time dim
            self.last_loss = None

        return logits

    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type):
        # start with all of the candidate parameters
        param_dict = {pn: p for pn, p in self.named_parameters()}
        # filter out those that do not require grad
        param_dict = {pn: p for pn, p in param_dict.items() if p.requires_grad}
        # create optim groups. Any parameters that is 2D will be weight decayed, otherwise no.
        decay_params = [p for n, p in param_dict.items() if p.dim() >= 2]
        nodecay_params = [p for n, p in param_dict.items() if p.dim() < 2]
        optim_groups = [
            {'params': decay_params, 'weight_decay': weight_decay},
            {'params': nodecay_params, 'weight_decay': 0.0}
        ]
        num_decay_params = sum(p.numel() for p in decay_params)
        num_nodecay_params = sum(p.numel() for p in nodecay_params)
        print(f"num decayed parameter tensors: {len(decay_params)}, with {num_decay_params:,} parameters")
        print(f"num non-decayed parameter tensors: {len(nodecay_params)}, with {num_nodecay_params:,} parameters")
        # Create AdamW optimizer and use the fused version if it is available
        fused_available = 'fused' in inspect.signature(torch.optim.AdamW).parameters
        use_fused = fused_available and device_type == 'cuda'
        extra_args = dict(fused=True) if use_fused else dict()  # noqa: C408  (the repository's spelling)
        optimizer = torch.optim.AdamW(optim_groups, lr=learning_rate, betas=betas, **extra_args)
        print(f"using fused AdamW: {use_fused}")

        return optimizer

    @torch.inference_mode()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None):
        for _ in range(max_new_tokens):
            # if the sequence context is growing too long we must crop it at block_size
            idx_cond = idx if idx.size(1) <= self.params.max_seq_len else idx[:, -self.params.max_seq_len:]
            # forward the model to get the logits for the index in the sequence
            logits = self(idx_cond)
            logits = logits[:, -1, :]  # crop to just the final time step
            if temperature == 0.0:
                # "sample" the single most likely index
                _, idx_next = torch.topk(logits, k=1, dim=-1)
            else:
                # pluck the logits at the final step and scale by desired temperature
                logits = logits / temperature
                # optionally crop the logits to only the top k options
                if top_k is not None:
                    v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                    logits[logits < v[:, [-1]]] = -float('Inf')
                # apply softmax to convert logits to (normalized) probabilities
                probs = F.softmax(logits, dim=-1)
                idx_next = torch.multinomial(probs, num_samples=1)
            # append sampled index to the running sequence and continue
            idx = torch.cat((idx, idx_next), dim=1)

        return idx


# -----------------------------------------------------------------------------
# train.py, shrunk
batch_size = 16
max_seq_len = 16
gradient_accumulation_steps = 2
learning_rate = 1e-2
max_iters = 120
weight_decay = 1e-1
beta1, beta2 = 0.9, 0.95
grad_clip = 1.0
warmup_iters = 10
lr_decay_iters = max_iters
min_lr = 5e-4
device_type = "cpu"

model_args = dict(dim=32, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=VOCAB,  # noqa: C408
                  multiple_of=16, max_seq_len=max_seq_len, dropout=0.0)
gptconf = ModelArgs(**model_args)
model = Transformer(gptconf)
print(f"tied {model.output.weight is model.tok_embeddings.weight}, n_rep {model.layers[0].attention.n_rep}, "
      f"hidden {model.layers[0].feed_forward.w1.out_features}, freqs {tuple(model.freqs_cos.shape)}, "
      f"buffers in state_dict {sorted(k for k in model.state_dict() if 'freqs' in k)}")
wo_std = model.layers[0].attention.wo.weight.std().item()
wq_std = model.layers[0].attention.wq.weight.std().item()
print(f"scaled init: wo std / wq std = {wo_std / wq_std:.3f}")
optimizer = model.configure_optimizers(weight_decay, learning_rate, (beta1, beta2), device_type)

train_data = token_stream(4000)
val_data = token_stream(600)


def get_batch(split):
    data = train_data if split == "train" else val_data
    ix = torch.randint(len(data) - max_seq_len, (batch_size,))
    x = torch.stack([data[i:i + max_seq_len] for i in ix])
    y = torch.stack([data[i + 1:i + 1 + max_seq_len] for i in ix])
    return x, y


# learning rate decay scheduler (cosine with warmup)
def get_lr(it):
    # 1) linear warmup for warmup_iters steps
    if it < warmup_iters:
        return learning_rate * it / warmup_iters
    # 2) if it > lr_decay_iters, return min learning rate
    if it > lr_decay_iters:
        return min_lr
    # 3) in between, use cosine decay down to min learning rate
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    assert 0 <= decay_ratio <= 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))  # coeff ranges 0..1
    return min_lr + coeff * (learning_rate - min_lr)


@torch.no_grad()
def estimate_loss(eval_iters=4):
    out = {}
    model.eval()
    for split in ["train", "val"]:
        losses = torch.zeros(eval_iters)
        for k in range(eval_iters):
            X, Y = get_batch(split)
            _ = model(X, Y)
            losses[k] = model.last_loss.item()
        out[split] = losses.mean()
    model.train()
    return out


X, Y = get_batch("train")
for iter_num in range(max_iters + 1):
    lr = get_lr(iter_num)
    for param_group in optimizer.param_groups:
        param_group["lr"] = lr
    if iter_num % 40 == 0:
        losses = estimate_loss()
        print(f"step {iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}, lr {lr:.2e}")
    if iter_num == max_iters:
        break
    for micro_step in range(gradient_accumulation_steps):  # noqa: B007  (train.py's loop)
        logits = model(X, Y)
        loss = model.last_loss
        loss = loss / gradient_accumulation_steps
        X, Y = get_batch("train")
        loss.backward()
    if grad_clip != 0.0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)

model.eval()
xv = torch.stack([val_data[i:i + max_seq_len] for i in range(0, 512, max_seq_len)])
yv = torch.stack([val_data[i + 1:i + 1 + max_seq_len] for i in range(0, 512, max_seq_len)])
with torch.no_grad():
    logits_flash = model(xv, yv)
    val_loss = model.last_loss.item()
    acc = (logits_flash[:, 1:].argmax(-1) == yv[:, 1:]).float().mean().item()
    last_only = model(xv)

# the manual attention path of the same weights must give the same logits
for layer in model.layers:
    attn = layer.attention
    attn.flash = False
    mask = torch.full((1, 1, gptconf.max_seq_len, gptconf.max_seq_len), float("-inf"))
    mask = torch.triu(mask, diagonal=1)
    attn.register_buffer("mask", mask)
with torch.no_grad():
    logits_manual = model(xv, yv)
manual_gap = (logits_manual - logits_flash).abs().max().item()
print(f"inference logits {tuple(last_only.shape)}, last position equal {torch.allclose(last_only[:, 0], logits_flash[:, -1], atol=1e-5)}, "
      f"manual attention agrees {manual_gap < 1e-4}, mask row 2 {model.layers[0].attention.mask[0, 0, 2, :4].tolist()}")

# Meta's complex rotation against llama2.c's real one, values and gradients
head_dim = gptconf.dim // gptconf.n_heads
xq = torch.randn(2, max_seq_len, gptconf.n_heads, head_dim, requires_grad=True)
xk = torch.randn(2, max_seq_len, gptconf.n_kv_heads, head_dim, requires_grad=True)
freqs_cis = precompute_freqs_cis_complex(head_dim, max_seq_len)
print(f"freqs_cis {freqs_cis.dtype} {tuple(freqs_cis.shape)}, |freqs_cis| = 1: "
      f"{torch.allclose(freqs_cis.abs(), torch.ones(1))}")
q_real, k_real = apply_rotary_emb(xq, xk, model.freqs_cos, model.freqs_sin)
q_cplx, k_cplx = apply_rotary_emb_complex(xq, xk, freqs_cis)
weights = torch.randn(q_real.shape)
g_real = torch.autograd.grad((q_real * weights).sum() + k_real.pow(2).sum(), (xq, xk))
g_cplx = torch.autograd.grad((q_cplx * weights).sum() + k_cplx.pow(2).sum(), (xq, xk))
rope_gap = max((q_real - q_cplx).abs().max().item(), (k_real - k_cplx).abs().max().item())
grad_gap = max((a - b).abs().max().item() for a, b in zip(g_real, g_cplx))
print(f"rotary: real and complex agree {rope_gap < 1e-5}, gradients agree {grad_gap < 1e-5}, "
      f"norms kept {torch.allclose(q_real.norm(dim=-1), xq.norm(dim=-1), atol=1e-5)}")

# generation: greedy (temperature 0) and top-k sampling
for layer in model.layers:
    layer.attention.flash = True
prompt = xv[:4, :4]
greedy = model.generate(prompt, 10, temperature=0.0)
sampled = model.generate(prompt, 10, temperature=0.8, top_k=3)


def follow_rate(seqs):
    hits = 0
    for row in seqs.tolist():
        for t in range(4, len(row)):
            hits += int(row[t] == TABLE[row[t - 2], row[t - 1]])
    return hits / (len(seqs) * (len(seqs[0]) - 4))


print(f"generated {tuple(greedy.shape)} greedy, {tuple(sampled.shape)} sampled, "
      f"inference tensors {greedy.is_inference()}")
print(f"FINAL val_loss={val_loss:.4f} acc={acc:.4f} greedy_follow={follow_rate(greedy):.4f} "
      f"topk_follow={follow_rate(sampled):.4f}")
