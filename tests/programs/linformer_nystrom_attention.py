"""Efficient attention variants on a synthetic long-range copy task (sequence length 128), written the way
lucidrains/linformer, mlpen/Nystromformer and lucidrains/nystrom-attention write them.

The task: the first ``COPY`` positions hold random content tokens, the middle is blank, and the last
``COPY`` positions hold a query token; the model must output, at query position ``n - COPY + i``, the token
at position ``i`` (a dependency 120 positions long). Loss and accuracy are read at the query positions only.

The attentions, each in a pre-LayerNorm block with a feed-forward layer and learned position embeddings:

* full softmax attention through ``F.scaled_dot_product_attention`` (the reference), checked against the
  hand-written ``softmax(q @ k.transpose(-2, -1) * scale) @ v``;
* Linformer: keys and values projected along the sequence to ``k`` rows by ``E``/``F`` parameters initialised
  by ``init_`` (``uniform_(-std, std)``), either shared by the heads (``torch.einsum('bhnd,nk->bhkd', ...)``) or
  one per head (``torch.einsum('bhnd,hnk->bhkd', ...)``), and ``share_kv``;
* Nystromformer: landmarks by segment means (``reshape(b, h, m, n // m, d).mean(dim=-2)``), the three softmax
  kernels, the iterative Moore-Penrose pseudo-inverse (``z = x.transpose(-1, -2) / (torch.max(torch.sum(x.abs(),
  -2)) * torch.max(torch.sum(x.abs(), -1)))``, ``z = 0.25 * z @ (13 * I - xz @ (15 * I - xz @ (7 * I - xz)))``)
  checked against ``torch.linalg.pinv``, and the depthwise convolution residual on the values
  (``nn.Conv2d(h, h, (k, 1), padding=(k // 2, 0), groups=h, bias=False)``).

Checked: SDPA against the hand-written attention; the iterative pseudo-inverse against ``linalg.pinv`` (and
the Penrose identity ``A Z A = A``); Nystrom with one landmark per token and ``linalg.pinv`` equals full
attention; the approximation error of each variant against full attention at init (same q/k/v weights);
then the training curves and final copy accuracy of all of them.
"""

# ruff: noqa: UP031, B007  (the repos' % formats, for step in range(STEPS))

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

SEQ_LEN = 128
COPY = 8
VOCAB = 10  # 0 blank, 1..8 content, 9 query
BLANK, QUERY = 0, 9
DIM, HEADS = 32, 2
BATCH = 32
STEPS = 120


def make_batch(rng, batch=BATCH):
    content = rng.randint(1, 9, size=(batch, COPY))
    x = np.full((batch, SEQ_LEN), BLANK, dtype=np.int64)
    x[:, :COPY] = content
    x[:, -COPY:] = QUERY
    return torch.from_numpy(x), torch.from_numpy(content.astype(np.int64))


# ----------------------------------------------------------------------------------- attentions
def init_(tensor):
    dim = tensor.shape[-1]
    std = 1 / math.sqrt(dim)
    tensor.uniform_(-std, std)
    return tensor


class FullAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.dim_head = dim // heads
        self.to_qkv = nn.Linear(dim, dim * 3, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def split_heads(self, x):
        b, n, _ = x.shape
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        return [t.reshape(b, n, self.heads, self.dim_head).transpose(1, 2) for t in (q, k, v)]

    def attend(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)

    def forward(self, x):
        b, n, _ = x.shape
        q, k, v = self.split_heads(x)
        out = self.attend(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class LinformerAttention(FullAttention):
    def __init__(self, dim, heads, seq_len, k=32, headwise=False, share_kv=False):
        super().__init__(dim, heads)
        self.k = k
        self.headwise = headwise
        self.share_kv = share_kv
        shape = (heads, seq_len, k) if headwise else (seq_len, k)
        self.proj_k = nn.Parameter(init_(torch.zeros(shape)))
        if not share_kv:
            self.proj_v = nn.Parameter(init_(torch.zeros(shape)))

    def attend(self, q, k, v):
        eq = 'bhnd,hnk->bhkd' if self.headwise else 'bhnd,nk->bhkd'
        kv_projs = (self.proj_k, self.proj_v if not self.share_kv else self.proj_k)
        keys, values = (torch.einsum(eq, t, proj) for t, proj in zip((k, v), kv_projs))
        dots = torch.einsum('bhnd,bhkd->bhnk', q, keys) * (self.dim_head ** -0.5)
        attn = dots.softmax(dim=-1)
        return torch.einsum('bhnk,bhkd->bhnd', attn, values)


def moore_penrose_iter_pinv(x, iters=6):
    abs_x = torch.abs(x)
    col = abs_x.sum(dim=-1)
    row = abs_x.sum(dim=-2)
    z = x.transpose(-1, -2) / (torch.max(col) * torch.max(row))
    I = torch.eye(x.shape[-1], device=x.device)  # noqa: E741  (the repo's name)
    I = I.unsqueeze(0)  # noqa: E741
    for _ in range(iters):
        xz = x @ z
        z = 0.25 * z @ (13 * I - (xz @ (15 * I - (xz @ (7 * I - xz)))))
    return z


class NystromAttention(FullAttention):
    def __init__(self, dim, heads, num_landmarks=16, pinv_iterations=6, conv_kernel_size=33, use_conv=True,
                 exact_pinv=False):
        super().__init__(dim, heads)
        self.num_landmarks = num_landmarks
        self.pinv_iterations = pinv_iterations
        self.exact_pinv = exact_pinv
        self.scale = self.dim_head ** -0.5
        self.use_conv = use_conv
        if use_conv:
            self.conv = nn.Conv2d(heads, heads, (conv_kernel_size, 1), padding=(conv_kernel_size // 2, 0),
                                  groups=heads, bias=False)

    def attend(self, q, k, v):
        b, h, n, d = q.shape
        m = self.num_landmarks
        q = q * self.scale
        q_landmarks = q.reshape(b, h, m, n // m, d).mean(dim=-2)
        k_landmarks = k.reshape(b, h, m, n // m, d).mean(dim=-2)
        attn1 = torch.softmax(q @ k_landmarks.transpose(-1, -2), dim=-1)
        attn2 = torch.softmax(q_landmarks @ k_landmarks.transpose(-1, -2), dim=-1)
        attn3 = torch.softmax(q_landmarks @ k.transpose(-1, -2), dim=-1)
        if self.exact_pinv:
            attn2_inv = torch.linalg.pinv(attn2)
        else:
            attn2_inv = moore_penrose_iter_pinv(attn2, self.pinv_iterations)
        out = (attn1 @ attn2_inv) @ (attn3 @ v)
        if self.use_conv:
            out = out + self.conv(v)
        return out


class Block(nn.Module):
    def __init__(self, attn):
        super().__init__()
        self.ln1 = nn.LayerNorm(DIM)
        self.attn = attn
        self.ln2 = nn.LayerNorm(DIM)
        self.ff = nn.Sequential(nn.Linear(DIM, DIM * 2), nn.GELU(), nn.Linear(DIM * 2, DIM))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.ff(self.ln2(x))


class CopyModel(nn.Module):
    def __init__(self, attn):
        super().__init__()
        self.token_emb = nn.Embedding(VOCAB, DIM)
        self.pos_emb = nn.Parameter(torch.randn(1, SEQ_LEN, DIM) * 0.5)
        self.block = Block(attn)
        self.norm = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, VOCAB)

    def forward(self, x):
        h = self.token_emb(x) + self.pos_emb
        h = self.block(h)
        return self.head(self.norm(h[:, -COPY:]))


# ----------------------------------------------------------------------------------- checks at init
g = torch.Generator().manual_seed(seed)
q = torch.randn(2, HEADS, SEQ_LEN, DIM // HEADS, generator=g)
k = torch.randn(2, HEADS, SEQ_LEN, DIM // HEADS, generator=g)
v = torch.randn(2, HEADS, SEQ_LEN, DIM // HEADS, generator=g)
manual = torch.softmax(q @ k.transpose(-2, -1) * (DIM // HEADS) ** -0.5, dim=-1) @ v
sdpa = F.scaled_dot_product_attention(q, k, v)
sdpa_err = (manual - sdpa).abs().max().item()
print("SDPA vs hand-written attention: max abs err %.2e, allclose %s" % (sdpa_err, torch.allclose(manual, sdpa, atol=1e-5)))

landmarks = NystromAttention(DIM, HEADS, num_landmarks=16)
kl = k.reshape(2, HEADS, 16, SEQ_LEN // 16, DIM // HEADS).mean(dim=-2)
kernel = torch.softmax(kl @ kl.transpose(-1, -2), dim=-1)  # the landmarks' kernel with themselves
exact = torch.linalg.pinv(kernel)
pinv_errs = []
for iters in (2, 6, 12):
    approx = moore_penrose_iter_pinv(kernel, iters)
    pinv_errs.append(((approx - exact).norm() / exact.norm()).item())
    print("iterative pinv, %2d iterations: relative error vs linalg.pinv %.3e" % (iters, pinv_errs[-1]))
z = moore_penrose_iter_pinv(kernel, 12)
penrose_err = ((kernel @ z @ kernel - kernel).abs().max()).item()
print("Penrose identity A Z A = A: max abs err %.2e" % penrose_err)

x_check = torch.randn(2, SEQ_LEN, DIM, generator=g)
full = FullAttention(DIM, HEADS)
variants = {
    "linformer_shared": LinformerAttention(DIM, HEADS, SEQ_LEN, k=32),
    "linformer_headwise_kv": LinformerAttention(DIM, HEADS, SEQ_LEN, k=32, headwise=True, share_kv=True),
    "nystrom": NystromAttention(DIM, HEADS, num_landmarks=16, use_conv=False),
    "nystrom_conv": NystromAttention(DIM, HEADS, num_landmarks=16),
    "nystrom_all_landmarks": NystromAttention(DIM, HEADS, num_landmarks=SEQ_LEN, use_conv=False, exact_pinv=True),
}
approx_errs = {}
with torch.no_grad():
    reference = full(x_check)
    for name, attn in variants.items():
        attn.to_qkv.load_state_dict(full.to_qkv.state_dict())
        attn.to_out.load_state_dict(full.to_out.state_dict())
        out = attn(x_check)
        approx_errs[name] = ((out - reference).norm() / reference.norm()).item()
        print("%-22s relative error vs full attention at init %.4f" % (name, approx_errs[name]))


# ----------------------------------------------------------------------------------- training
def train(name, attn):
    torch.manual_seed(seed + 1)
    model = CopyModel(attn)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    rng = np.random.RandomState(seed + 7)
    curve = []
    for step in range(STEPS):
        x, y = make_batch(rng)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        curve.append(loss.item())
    model.eval()
    with torch.no_grad():
        x, y = make_batch(np.random.RandomState(seed + 99), batch=256)
        acc = (model(x).argmax(-1) == y).float().mean().item()
    first, last = np.mean(curve[:10]), np.mean(curve[-10:])
    print("%-9s loss %.4f -> %.4f (curve %s) copy accuracy %.3f"
          % (name, first, last, " ".join("%.2f" % np.mean(curve[i:i + 15]) for i in range(0, STEPS, 15)), acc))
    return last, acc


results = {
    "full": train("full", FullAttention(DIM, HEADS)),
    "linformer": train("linformer", LinformerAttention(DIM, HEADS, SEQ_LEN, k=32)),
    "nystrom": train("nystrom", NystromAttention(DIM, HEADS, num_landmarks=16)),
}

print("FINAL sdpa_err=%.6f pinv_err6=%.4f pinv_err12=%.6f penrose_err=%.6f err_linformer=%.4f err_linformer_hw=%.4f "
      "err_nystrom=%.4f err_nystrom_conv=%.4f err_nystrom_all=%.6f loss_full=%.4f loss_linformer=%.4f "
      "loss_nystrom=%.4f acc_full=%.4f acc_linformer=%.4f acc_nystrom=%.4f"
      % (sdpa_err, pinv_errs[1], pinv_errs[2], penrose_err, approx_errs["linformer_shared"],
         approx_errs["linformer_headwise_kv"], approx_errs["nystrom"], approx_errs["nystrom_conv"],
         approx_errs["nystrom_all_landmarks"], results["full"][0], results["linformer"][0], results["nystrom"][0],
         results["full"][1], results["linformer"][1], results["nystrom"][1]))
