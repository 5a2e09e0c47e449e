"""BigBird's block-sparse attention (Zaheer et al. 2020; google-research/bigbird and Hugging Face's
``BigBirdBlockSparseAttention``) on a toy long-sequence classification task.

The sequence (128 tokens) is cut into blocks of 16 by ``view(b, h, n_blocks, block, d)``. The first and
last query blocks are global: they attend to every key with ``torch.einsum('bhqd,bhkd->bhqk')``. Every
middle query block attends to the two global key blocks, a sliding window of three blocks built by
``torch.cat`` of the key blocks rolled by ``torch.roll`` one block either way, and ``r`` random blocks
per head drawn by ``torch.randperm`` from a seeded ``torch.Generator`` (``_bigbird_block_rand_mask``),
gathered for the keys by advanced indexing with ``torch.arange(h)[:, None, None]`` and for the values by
``torch.gather`` on a flattened block view (``torch_gather_b2``). A key block that a query block already
sees (a window neighbour that is also global, a short random row padded with the block itself) is
masked by ``masked_fill(~mask, torch.finfo(scores.dtype).min)`` so that nothing counts twice; the
probabilities come from ``F.softmax(..., dtype=torch.float32)``.

The task: a CLS token at position 0, one signal token (1 or 2) somewhere in the last quarter, noise
elsewhere; the label is the signal's kind, read a hundred tokens away. A two-layer
BigBird encoder reads the label from its CLS position (a global block); AdamW trains it.

Checked: with every key block selected (``r = n_blocks - 4``) the block route equals dense
``F.scaled_dot_product_attention``; with ``r = 2`` it equals dense attention under the equivalent boolean
mask (outputs and query gradients); accuracy above chance.
"""

import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

SEQ_LEN, BLOCK, HIDDEN, HEADS, VOCAB = 128, 16, 32, 2, 12
CLS, SIGNAL_A, SIGNAL_B = 0, 1, 2


def torch_gather_b2(blocked, indices):
    """Gathers blocks ``indices`` (h, m, r) of ``blocked`` (b, h, n, block, d) into (b, h, m, r * block, d)."""
    b, h, n, block, d = blocked.shape
    m, r = indices.shape[1], indices.shape[2]
    flat = blocked.reshape(b, h, n, block * d)
    index = indices.reshape(1, h, m * r, 1).expand(b, h, m * r, block * d)
    return torch.gather(flat, 2, index).view(b, h, m, r * block, d)


class BigBirdBlockSparseAttention(nn.Module):
    def __init__(self, hidden_size, num_attention_heads, block_size, num_random_blocks, seed=0):
        super().__init__()
        self.num_attention_heads = num_attention_heads
        self.attention_head_size = hidden_size // num_attention_heads
        self.block_size = block_size
        self.num_random_blocks = num_random_blocks
        self.seed = seed
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.generator = torch.Generator().manual_seed(seed)

    def transpose_for_scores(self, x):
        new_x_shape = x.size()[:-1] + (self.num_attention_heads, self.attention_head_size)
        return x.view(*new_x_shape).permute(0, 2, 1, 3)

    def _bigbird_block_rand_mask(self, n_blocks, generator):
        """Per head and middle query block, ``r`` random middle key blocks outside its window."""
        h, r = self.num_attention_heads, self.num_random_blocks
        rand_attn = torch.empty(h, n_blocks - 2, r, dtype=torch.long)
        for head in range(h):
            for i in range(1, n_blocks - 1):
                perm = torch.randperm(n_blocks - 2, generator=generator) + 1
                candidates = perm[(perm < i - 1) | (perm > i + 1)]
                # a row with fewer candidates than r is padded with its own block, masked later as a duplicate
                padding = torch.full((max(0, r - candidates.numel()),), i, dtype=torch.long)
                rand_attn[head, i - 1] = torch.cat([candidates[:r], padding])
        return rand_attn

    def key_block_ids(self, n_blocks, rand_attn):
        """The key block behind every slot a middle query block sees: globals, window, random."""
        h, m = rand_attn.shape[0], n_blocks - 2
        global_ids = torch.tensor([0, n_blocks - 1]).expand(h, m, 2)
        window_ids = (torch.arange(1, n_blocks - 1)[:, None] + torch.arange(-1, 2)[None, :]).expand(h, m, 3)
        return torch.cat([global_ids, window_ids, rand_attn], dim=-1)

    def bigbird_block_sparse_attention(self, query_layer, key_layer, value_layer, rand_attn):
        b, h, seq_len, d = query_layer.shape
        block = self.block_size
        n_blocks = seq_len // block
        rsqrt_d = 1 / math.sqrt(d)

        blocked_query = query_layer.view(b, h, n_blocks, block, d)
        blocked_key = key_layer.view(b, h, n_blocks, block, d)
        blocked_value = value_layer.view(b, h, n_blocks, block, d)

        # the first and last query blocks are global: plain attention over every key
        contexts = []
        for q_block in (blocked_query[:, :, 0], blocked_query[:, :, -1]):
            scores = torch.einsum("bhqd,bhkd->bhqk", q_block, key_layer) * rsqrt_d
            probs = F.softmax(scores, dim=-1, dtype=torch.float32)
            contexts.append(torch.einsum("bhqk,bhkd->bhqd", probs, value_layer))
        first_context, last_context = contexts

        # middle query blocks: global key blocks + sliding window (rolled blocks) + random blocks
        window_key = torch.cat([blocked_key.roll(1, dims=2), blocked_key, blocked_key.roll(-1, dims=2)], dim=3)
        window_value = torch.cat([blocked_value.roll(1, dims=2), blocked_value, blocked_value.roll(-1, dims=2)],
                                 dim=3)
        global_key = torch.cat([blocked_key[:, :, :1], blocked_key[:, :, -1:]], dim=3)
        global_value = torch.cat([blocked_value[:, :, :1], blocked_value[:, :, -1:]], dim=3)
        heads = torch.arange(h)[:, None, None]
        rand_key = blocked_key[:, heads, rand_attn].flatten(3, 4)
        rand_value = torch_gather_b2(blocked_value, rand_attn)
        m = n_blocks - 2
        middle_key = torch.cat([global_key.expand(b, h, m, 2 * block, d), window_key[:, :, 1:-1], rand_key], dim=3)
        middle_value = torch.cat([global_value.expand(b, h, m, 2 * block, d), window_value[:, :, 1:-1],
                                  rand_value], dim=3)

        scores = torch.einsum("bhnqd,bhnkd->bhnqk", blocked_query[:, :, 1:-1], middle_key) * rsqrt_d
        ids = self.key_block_ids(n_blocks, rand_attn)
        duplicate = (ids[..., :, None] == ids[..., None, :]).tril(-1).any(-1)
        mask = (~duplicate).repeat_interleave(block, dim=-1)[None, :, :, None, :]
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        probs = F.softmax(scores, dim=-1, dtype=torch.float32)
        middle_context = torch.einsum("bhnqk,bhnkd->bhnqd", probs, middle_value)

        context = torch.cat([first_context.unsqueeze(2), middle_context, last_context.unsqueeze(2)], dim=2)
        return context.view(b, h, seq_len, d)

    def dense_mask(self, n_blocks, rand_attn):
        """The (h, L, L) boolean mask of exactly the keys the block route lets each query see."""
        h = rand_attn.shape[0]
        block_mask = torch.zeros(h, n_blocks, n_blocks, dtype=torch.bool)
        block_mask[:, 0] = True
        block_mask[:, -1] = True
        ids = self.key_block_ids(n_blocks, rand_attn)
        rows = torch.arange(1, n_blocks - 1)[None, :, None]
        block_mask[torch.arange(h)[:, None, None], rows, ids] = True
        return block_mask.repeat_interleave(self.block_size, 1).repeat_interleave(self.block_size, 2)

    def forward(self, hidden_states):
        b, seq_len, hidden = hidden_states.shape
        n_blocks = seq_len // self.block_size
        if self.training:
            generator = self.generator
        else:
            # evaluation sees the same random blocks every call
            generator = torch.Generator().manual_seed(self.seed)
        rand_attn = self._bigbird_block_rand_mask(n_blocks, generator)
        query_layer = self.transpose_for_scores(self.query(hidden_states))
        key_layer = self.transpose_for_scores(self.key(hidden_states))
        value_layer = self.transpose_for_scores(self.value(hidden_states))
        context = self.bigbird_block_sparse_attention(query_layer, key_layer, value_layer, rand_attn)
        return context.permute(0, 2, 1, 3).reshape(b, seq_len, hidden)


class BigBirdLayer(nn.Module):
    def __init__(self, hidden, heads, block, num_random_blocks, seed):
        super().__init__()
        self.ln1 = nn.LayerNorm(hidden)
        self.attention = BigBirdBlockSparseAttention(hidden, heads, block, num_random_blocks, seed)
        self.output = nn.Linear(hidden, hidden)
        self.ln2 = nn.LayerNorm(hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, 4 * hidden), nn.GELU(), nn.Linear(4 * hidden, hidden))

    def forward(self, x):
        x = x + self.output(self.attention(self.ln1(x)))
        return x + self.mlp(self.ln2(x))


class BigBirdClassifier(nn.Module):
    def __init__(self, vocab, hidden, heads, block, num_random_blocks, n_layers=2):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden)
        self.position_embeddings = nn.Embedding(SEQ_LEN, hidden)
        self.layers = nn.ModuleList(BigBirdLayer(hidden, heads, block, num_random_blocks, 1000 + i)
                                    for i in range(n_layers))
        self.ln_f = nn.LayerNorm(hidden)
        self.classifier = nn.Linear(hidden, 2)

    def forward(self, input_ids):
        positions = torch.arange(input_ids.size(1))
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)[None]
        for layer in self.layers:
            x = layer(x)
        return self.classifier(self.ln_f(x)[:, 0])


def make_batch(n):
    input_ids = torch.randint(3, VOCAB, (n, SEQ_LEN))
    input_ids[:, 0] = CLS
    where = torch.randint(3 * SEQ_LEN // 4, SEQ_LEN, (n,))
    kind = torch.randint(SIGNAL_A, SIGNAL_B + 1, (n,))
    input_ids[torch.arange(n), where] = kind
    return input_ids, (kind == SIGNAL_A).long()


# check 1: every key block selected -> plain dense attention
n_blocks = SEQ_LEN // BLOCK
full = BigBirdBlockSparseAttention(HIDDEN, HEADS, BLOCK, n_blocks - 4, seed=7)
rand_full = full._bigbird_block_rand_mask(n_blocks, torch.Generator().manual_seed(seed))
assert bool(full.dense_mask(n_blocks, rand_full).all()), "r = n_blocks - 4 must cover every key block"
q, k, v = torch.randn(3, 2, HEADS, SEQ_LEN, HIDDEN // HEADS).unbind(0)
sparse = full.bigbird_block_sparse_attention(q, k, v, rand_full)
dense = F.scaled_dot_product_attention(q, k, v)
full_err = (sparse - dense).abs().max().item()
print(f"all {n_blocks} key blocks selected: block route {tuple(sparse.shape)} vs dense sdpa, "
      f"max abs error {full_err:.2e}")

# check 2: r random blocks -> dense attention under the equivalent boolean mask
attn = BigBirdBlockSparseAttention(HIDDEN, HEADS, BLOCK, 2, seed=11)
rand_attn = attn._bigbird_block_rand_mask(n_blocks, torch.Generator().manual_seed(seed))
window = (torch.arange(1, n_blocks - 1)[:, None] + torch.arange(-1, 2)[None, :])
assert not bool((rand_attn[..., :, :, None] == window[None, :, None, :]).any()), "random blocks left the window"
assert bool(((rand_attn >= 1) & (rand_attn <= n_blocks - 2)).all()), "random blocks must be middle blocks"
mask = attn.dense_mask(n_blocks, rand_attn)
density = mask.float().mean().item()
q.requires_grad_(True)
sparse = attn.bigbird_block_sparse_attention(q, k, v, rand_attn)
dense = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[None])
mask_err = (sparse - dense).abs().max().item()
(grad_sparse,) = torch.autograd.grad(sparse.pow(2).sum(), q)
(grad_dense,) = torch.autograd.grad(dense.pow(2).sum(), q)
grad_err = (grad_sparse - grad_dense).abs().max().item()
print(f"2 random blocks per row: mask density {density:.3f}, max abs error {mask_err:.2e}, "
      f"query gradient error {grad_err:.2e}")

model = BigBirdClassifier(VOCAB, HIDDEN, HEADS, BLOCK, 2)
no_decay = ["bias", "LayerNorm.weight", "ln"]
groups = [
    {"params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)],
     "weight_decay": 0.01},
    {"params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)],
     "weight_decay": 0.0},
]
optimizer = torch.optim.AdamW(groups, lr=1e-2)
val_ids, val_labels = make_batch(256)
STEPS = 120
for step in range(1, STEPS + 1):
    model.train()
    input_ids, labels = make_batch(32)
    loss = F.cross_entropy(model(input_ids), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 30 == 0:
        print(f"step {step}: loss {loss.item():.4f}")

model.eval()
with torch.no_grad():
    logits = model(val_ids)
    val_loss = F.cross_entropy(logits, val_labels).item()
    acc = (logits.argmax(-1) == val_labels).float().mean().item()
print(f"validation on {val_ids.size(0)} sequences of {SEQ_LEN}: loss {val_loss:.4f}, accuracy {acc:.3f}")
print(f"FINAL val_loss={val_loss:.4f} acc={acc:.4f} full_err={full_err:.2e} mask_err={mask_err:.2e} "
      f"grad_err={grad_err:.2e}")
