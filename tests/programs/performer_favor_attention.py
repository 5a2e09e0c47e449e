"""Performer's FAVOR+ attention (Choromanski et al. 2021) as lucidrains' performer-pytorch writes it,
without einops.

Orthogonal random features are stacked from blocks ``torch.linalg.qr(torch.randn(d, d), mode='reduced')``
(``q.t()``), rescaled by ``torch.diag`` of chi-distributed row norms (``torch.randn(...).norm(dim=1)``);
``softmax_kernel`` projects by ``torch.einsum('...id,...jd->...ij', ...)`` against the projection
matrix ``expand``-ed over batch and heads, subtracts the ``diag_data`` term ``|x|^2 / 2`` and the
stabiliser ``torch.amax(data_dash, dim=-1, keepdim=True).detach()`` (``dim=(-1, -2)`` for keys),
``torch.exp`` + eps. Non-causal linear attention (``'...nd,...d->...n'`` normaliser,
``'...de,...nd,...n->...ne'`` with three operands) is measured against exact softmax attention as
the number of features grows, orthogonal against i.i.d. features; causal linear attention by
``cumsum`` prefix sums over ``chunk``-ed blocks is checked against the ``tril``-masked quadratic
form and against one chunk. Then a small Performer LM (pre-norm blocks, ``nn.ModuleList``, learned
positions) is trained on a copy task with Adam + ``clip_grad_norm_``, its projection matrices
redrawn every few steps by a ``ProjectionUpdater`` that finds each ``FastAttention`` by
``isinstance`` over ``model.modules()`` and calls ``redraw_projection_matrix``: a buffer
``copy_`` under ``@torch.no_grad()``. Evaluation under ``torch.no_grad()`` with ``.item()`` accuracy.
"""

import math
import os
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


def exists(val):
    return val is not None


def default(val, d):
    return val if exists(val) else d


def orthogonal_matrix_chunk(cols, device=None):
    unstructured_block = torch.randn((cols, cols), device=device)
    q, r = torch.linalg.qr(unstructured_block.cpu(), mode="reduced")
    q, r = map(lambda t: t.to(device), (q, r))
    return q.t()


def gaussian_orthogonal_random_matrix(nb_rows, nb_columns, scaling=0, device=None):
    nb_full_blocks = int(nb_rows / nb_columns)
    block_list = []
    for _ in range(nb_full_blocks):
        q = orthogonal_matrix_chunk(nb_columns, device=device)
        block_list.append(q)
    remaining_rows = nb_rows - nb_full_blocks * nb_columns
    if remaining_rows > 0:
        q = orthogonal_matrix_chunk(nb_columns, device=device)
        block_list.append(q[:remaining_rows])
    final_matrix = torch.cat(block_list)
    if scaling == 0:
        multiplier = torch.randn((nb_rows, nb_columns), device=device).norm(dim=1)
    elif scaling == 1:
        multiplier = math.sqrt(float(nb_columns)) * torch.ones((nb_rows,), device=device)
    else:
        raise ValueError(f"Invalid scaling {scaling}")
    return torch.diag(multiplier) @ final_matrix


def softmax_kernel(data, *, projection_matrix, is_query, normalize_data=True, eps=1e-4, device=None):
    b, h, *_ = data.shape
    data_normalizer = (data.shape[-1] ** -0.25) if normalize_data else 1.0
    ratio = projection_matrix.shape[0] ** -0.5
    projection = projection_matrix.expand(b, h, *projection_matrix.shape)
    projection = projection.type_as(data)
    data_dash = torch.einsum("...id,...jd->...ij", (data_normalizer * data), projection)
    diag_data = data ** 2
    diag_data = torch.sum(diag_data, dim=-1)
    diag_data = (diag_data / 2.0) * (data_normalizer ** 2)
    diag_data = diag_data.unsqueeze(dim=-1)
    if is_query:
        data_dash = ratio * (torch.exp(data_dash - diag_data - torch.amax(data_dash, dim=-1, keepdim=True).detach()) + eps)
    else:
        data_dash = ratio * (torch.exp(data_dash - diag_data - torch.amax(data_dash, dim=(-1, -2), keepdim=True).detach()) + eps)
    return data_dash.type_as(data)


def linear_attention(q, k, v):
    k_cumsum = k.sum(dim=-2)
    D_inv = 1.0 / torch.einsum("...nd,...d->...n", q, k_cumsum.type_as(q))
    context = torch.einsum("...nd,...ne->...de", k, v)
    out = torch.einsum("...de,...nd,...n->...ne", context, q, D_inv)
    return out


def causal_linear_attention_noncuda(q, k, v, chunk_size=128, eps=1e-6):
    last_k_cumsum = 0
    last_context_cumsum = 0
    outs = []
    for q, k, v in zip(*map(lambda t: t.chunk(chunk_size, dim=-2), (q, k, v))):  # noqa: B020
        k_cumsum = last_k_cumsum + k.cumsum(dim=-2)
        D_inv = 1.0 / torch.einsum("...nd,...nd->...n", q, k_cumsum.type_as(q) + eps)
        context = torch.einsum("...nd,...ne->...nde", k, v)
        context_cumsum = last_context_cumsum + context.cumsum(dim=-3)
        out = torch.einsum("...nde,...nd,...n->...ne", context_cumsum, q, D_inv)
        last_k_cumsum = k_cumsum[:, :, -1:]
        last_context_cumsum = context_cumsum[:, :, -1:]
        outs.append(out)
    return torch.cat(outs, dim=-2)


def quadratic_causal_attention(q, k, v, eps=1e-6):
    """The same causal attention in O(n^2): the features' kernel matrix masked below the diagonal."""
    n = q.shape[-2]
    A = q @ k.transpose(-2, -1)
    mask = torch.tril(torch.ones(n, n, dtype=torch.bool))
    A = A.masked_fill(~mask, 0.0)
    denominator = A.sum(dim=-1, keepdim=True) + eps * q.sum(dim=-1, keepdim=True)
    return (A @ v) / denominator


def exact_attention(q, k, v, causal=False):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        n = q.shape[-2]
        scores = scores.masked_fill(torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1), float("-inf"))
    return scores.softmax(dim=-1) @ v


class FastAttention(nn.Module):
    def __init__(self, dim_heads, nb_features=None, ortho_scaling=0, causal=False):
        super().__init__()
        nb_features = default(nb_features, int(dim_heads * math.log(dim_heads)))
        self.dim_heads = dim_heads
        self.nb_features = nb_features
        self.ortho_scaling = ortho_scaling
        self.create_projection = partial(gaussian_orthogonal_random_matrix, nb_rows=self.nb_features,
                                         nb_columns=dim_heads, scaling=ortho_scaling)
        projection_matrix = self.create_projection()
        self.register_buffer("projection_matrix", projection_matrix)
        self.causal = causal
        self.causal_linear_fn = partial(causal_linear_attention_noncuda, chunk_size=4)

    @torch.no_grad()
    def redraw_projection_matrix(self, device):
        projections = self.create_projection(device=device)
        self.projection_matrix.copy_(projections)
        del projections

    def forward(self, q, k, v):
        device = q.device
        create_kernel = partial(softmax_kernel, projection_matrix=self.projection_matrix, device=device)
        q = create_kernel(q, is_query=True)
        k = create_kernel(k, is_query=False)
        attn_fn = linear_attention if not self.causal else self.causal_linear_fn
        return attn_fn(q, k, v)


class SelfAttention(nn.Module):
    def __init__(self, dim, heads=4, dim_head=16, nb_features=32, causal=True):
        super().__init__()
        inner_dim = dim_head * heads
        self.heads = heads
        self.fast_attention = FastAttention(dim_head, nb_features, causal=causal)
        self.to_q = nn.Linear(dim, inner_dim, bias=False)
        self.to_k = nn.Linear(dim, inner_dim, bias=False)
        self.to_v = nn.Linear(dim, inner_dim, bias=False)
        self.to_out = nn.Linear(inner_dim, dim)

    def forward(self, x):
        b, n, _ = x.shape
        h = self.heads
        q, k, v = self.to_q(x), self.to_k(x), self.to_v(x)
        # rearrange 'b n (h d) -> b h n d'
        q, k, v = map(lambda t: t.view(b, n, h, -1).transpose(1, 2), (q, k, v))
        out = self.fast_attention(q, k, v)
        out = out.transpose(1, 2).reshape(b, n, -1)
        return self.to_out(out)


class FeedForward(nn.Module):
    def __init__(self, dim, mult=4):
        super().__init__()
        self.w1 = nn.Linear(dim, dim * mult)
        self.act = nn.GELU()
        self.w2 = nn.Linear(dim * mult, dim)

    def forward(self, x):
        return self.w2(self.act(self.w1(x)))


class PreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x, **kwargs):
        return self.fn(self.norm(x), **kwargs)


class PerformerLM(nn.Module):
    def __init__(self, *, num_tokens, max_seq_len, dim, depth, heads, dim_head, nb_features):
        super().__init__()
        self.token_emb = nn.Embedding(num_tokens, dim)
        self.pos_emb = nn.Embedding(max_seq_len, dim)
        self.layers = nn.ModuleList([])
        for _ in range(depth):
            self.layers.append(nn.ModuleList([
                PreNorm(dim, SelfAttention(dim, heads=heads, dim_head=dim_head, nb_features=nb_features)),
                PreNorm(dim, FeedForward(dim)),
            ]))
        self.norm = nn.LayerNorm(dim)
        self.to_out = nn.Linear(dim, num_tokens)

    def forward(self, x):
        b, n = x.shape
        x = self.token_emb(x)
        x = x + self.pos_emb(torch.arange(n, device=x.device))
        for attn, ff in self.layers:
            x = attn(x) + x
            x = ff(x) + x
        return self.to_out(self.norm(x))


def find_modules(nn_module, type):
    return [module for module in nn_module.modules() if isinstance(module, type)]


class ProjectionUpdater(nn.Module):
    def __init__(self, instance, feature_redraw_interval):
        super().__init__()
        self.instance = instance
        self.feature_redraw_interval = feature_redraw_interval
        self.register_buffer("calls_since_last_redraw", torch.tensor(0))

    def redraw_projections(self):
        model = self.instance
        if not self.training:
            return 0
        if exists(self.feature_redraw_interval) and self.calls_since_last_redraw >= self.feature_redraw_interval:
            device = next(model.parameters()).device
            fast_attentions = find_modules(model, FastAttention)
            for fast_attention in fast_attentions:
                fast_attention.redraw_projection_matrix(device)
            self.calls_since_last_redraw.zero_()
            return len(fast_attentions)
        self.calls_since_last_redraw += 1
        return 0

    def forward(self, x):
        return self.instance(x)


# --- orthogonal random features ---
D_HEAD = 16
W = gaussian_orthogonal_random_matrix(40, D_HEAD)
blocks = W / W.norm(dim=1, keepdim=True)
gram = blocks[:D_HEAD] @ blocks[:D_HEAD].t()
print(f"projection {tuple(W.shape)}: first block orthogonal {torch.allclose(gram, torch.eye(D_HEAD), atol=1e-5)}, "
      f"rows of the remainder orthogonal {torch.allclose(blocks[32:] @ blocks[32:].t(), torch.eye(8), atol=1e-5)}")
W1 = gaussian_orthogonal_random_matrix(20, D_HEAD, scaling=1)
print(f"scaling=1 rows have norm sqrt(d) {torch.allclose(W1.norm(dim=1), torch.full((20,), 4.0))}")


# --- non-causal FAVOR+ against exact softmax attention ---
def favor_error(nb_features, orthogonal, trials=4, n=48):
    errors = []
    for _ in range(trials):
        q = torch.randn(2, 2, n, D_HEAD) * 0.5
        k = torch.randn(2, 2, n, D_HEAD) * 0.5
        v = torch.randn(2, 2, n, D_HEAD)
        if orthogonal:
            proj = gaussian_orthogonal_random_matrix(nb_features, D_HEAD)
        else:
            proj = torch.randn(nb_features, D_HEAD)
        q_prime = softmax_kernel(q, projection_matrix=proj, is_query=True, eps=0.0)
        k_prime = softmax_kernel(k, projection_matrix=proj, is_query=False, eps=0.0)
        approx = linear_attention(q_prime, k_prime, v)
        exact = exact_attention(q, k, v)
        errors.append(((approx - exact).norm() / exact.norm()).item())
    return sum(errors) / len(errors)


errors = {}
for m in (16, 64, 256):
    errors[m] = (favor_error(m, True), favor_error(m, False))
    print(f"features {m}: relative error orthogonal {errors[m][0]:.4f} iid {errors[m][1]:.4f}")
print(f"error falls with more features {errors[256][0] < errors[64][0] < errors[16][0]}")

# the features' kernel is an unbiased estimate of exp(q.k / sqrt(d)); the stabilisers are constants
# per query row, so the normalised attention weights match softmax
q1 = torch.randn(1, 1, 3, D_HEAD) * 0.3
k1 = torch.randn(1, 1, 5, D_HEAD) * 0.3
big = torch.randn(20000, D_HEAD)
qp = softmax_kernel(q1, projection_matrix=big, is_query=True, eps=0.0)
kp = softmax_kernel(k1, projection_matrix=big, is_query=False, eps=0.0)
estimate = qp @ kp.transpose(-1, -2)
weights = estimate / estimate.sum(dim=-1, keepdim=True)
softmax_weights = F.softmax(q1 @ k1.transpose(-1, -2) / math.sqrt(D_HEAD), dim=-1)
print(f"attention weights from 20000 features match softmax {torch.allclose(weights, softmax_weights, atol=0.01)}")

# --- causal linear attention: prefix sums against the masked quadratic form ---
fast = FastAttention(D_HEAD, nb_features=32, causal=True)
q = torch.randn(2, 3, 20, D_HEAD)
k = torch.randn(2, 3, 20, D_HEAD)
v = torch.randn(2, 3, 20, D_HEAD)
q_prime = softmax_kernel(q, projection_matrix=fast.projection_matrix, is_query=True)
k_prime = softmax_kernel(k, projection_matrix=fast.projection_matrix, is_query=False)
chunked = causal_linear_attention_noncuda(q_prime, k_prime, v, chunk_size=5)
single = causal_linear_attention_noncuda(q_prime, k_prime, v, chunk_size=1)
quadratic = quadratic_causal_attention(q_prime, k_prime, v)
print(f"causal: chunked == one chunk {torch.allclose(chunked, single, atol=1e-5)}, "
      f"== masked quadratic {torch.allclose(chunked, quadratic, rtol=1e-4, atol=1e-5)}, "
      f"module output {tuple(fast(q, k, v).shape)}")
# causality: changing the last value leaves every earlier output alone
v2 = v.clone()
v2[:, :, -1] += 1.0
after = causal_linear_attention_noncuda(q_prime, k_prime, v2, chunk_size=5)
print(f"causal outputs before the change unchanged {torch.equal(after[:, :, :-1], chunked[:, :, :-1])}, "
      f"last moved {not torch.equal(after[:, :, -1], chunked[:, :, -1])}")
causal_error = ((fast(q * 0.5, k * 0.5, v) - exact_attention(q * 0.5, k * 0.5, v, causal=True)).norm()
                / exact_attention(q * 0.5, k * 0.5, v, causal=True).norm()).item()
print(f"causal FAVOR+ against exact causal softmax: relative error {causal_error:.4f}")

# --- a small Performer LM on a copy task ---
VOCAB, HALF = 10, 6
SEP = VOCAB
SEQ_LEN = 2 * HALF + 1


def copy_batch(batch_size):
    body = torch.randint(0, VOCAB, (batch_size, HALF))
    sep = torch.full((batch_size, 1), SEP, dtype=torch.long)
    seq = torch.cat((body, sep, body), dim=1)
    return seq[:, :-1], seq[:, 1:]


model = PerformerLM(num_tokens=VOCAB + 1, max_seq_len=SEQ_LEN, dim=32, depth=2, heads=2, dim_head=16,
                    nb_features=32)
model = ProjectionUpdater(model, feature_redraw_interval=30)
n_params = sum(p.numel() for p in model.parameters())
n_buffers = sum(1 for name, _ in model.named_buffers() if name.endswith("projection_matrix"))
print(f"Performer LM: {n_params} parameters, {n_buffers} projection buffers")
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
first_projection = model.instance.layers[0][0].fn.fast_attention.projection_matrix.clone()
STEPS = 150
redraws = 0
model.train()
for step in range(1, STEPS + 1):
    inp, target = copy_batch(32)
    logits = model(inp)
    # only the copied half is predictable
    loss = F.cross_entropy(logits[:, HALF:].reshape(-1, VOCAB + 1), target[:, HALF:].reshape(-1))
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    optimizer.step()
    redraws += model.redraw_projections()
    if step % 50 == 0:
        print(f"step {step} loss {loss.item():.4f}")
moved = not torch.equal(first_projection, model.instance.layers[0][0].fn.fast_attention.projection_matrix)
print(f"projections redrawn in {redraws} modules, buffer changed {moved}, "
      f"counter {int(model.calls_since_last_redraw)}")

model.eval()
with torch.no_grad():
    inp, target = copy_batch(256)
    pred = model(inp).argmax(dim=-1)
    token_acc = (pred[:, HALF:] == target[:, HALF:]).float().mean().item()
    seq_acc = (pred[:, HALF:] == target[:, HALF:]).all(dim=1).float().mean().item()
    model.instance.layers[0][0].fn.fast_attention.redraw_projection_matrix(inp.device)
    redrawn_acc = (model(inp).argmax(dim=-1)[:, HALF:] == target[:, HALF:]).float().mean().item()
print(f"copy accuracy: token {token_acc:.3f} sequence {seq_acc:.3f}, after one more redraw {redrawn_acc:.3f}")
print(f"FINAL err_m16={errors[16][0]:.4f} err_m256={errors[256][0]:.4f} token_acc={token_acc:.4f} "
      f"redrawn_acc={redrawn_acc:.4f}")
