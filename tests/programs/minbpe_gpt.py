"""Karpathy's minbpe (byte-level BPE) trained on a synthetic corpus, then a tiny GPT on its token ids.

The tokenizer as minbpe writes it: ``get_stats`` counting consecutive pairs into a dict,
``merge`` replacing a pair by a new id, a ``RegexTokenizer`` that splits text by GPT-4's split
pattern (with the ``regex`` module when it is installed, else a ``re``-only pattern), trains
``vocab_size - 256`` merges over the chunks' byte lists, ``encode_ordinary`` picking the pair with
the lowest merge index by ``min(stats, key=lambda p: self.merges.get(p, float("inf")))``, special
tokens split out by ``"(" + "|".join(re.escape(k) for k in special) + ")"`` with
``allowed_special="all"``, ``decode`` through ``bytes`` and ``errors="replace"``, and
``render_token`` escaping control characters by ``unicodedata.category``; the round trip checked on
the corpus and on unseen text with accents and an emoji. Then the token ids become
``torch.tensor(ids, dtype=torch.long)``, split 90/10, batches by ``torch.randint(len(data) -
block_size, (batch_size,))`` and ``torch.stack``, a GPT with fused ``c_attn`` projections,
``F.scaled_dot_product_attention(is_causal=True)``, pre-LayerNorm blocks and tied embeddings is
trained with AdamW and ``F.cross_entropy(logits.view(-1, V), y.view(-1))``, evaluated by an
``estimate_loss`` under ``torch.no_grad()`` with ``model.eval()``/``model.train()``, and samples
with temperature, ``torch.topk`` cut-off, ``torch.multinomial`` and ``torch.cat``, decoded back to
text.
"""

import math
import os
import unicodedata

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

try:
    import regex as re

    SPLIT_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""
except ImportError:  # the regex-free fallback: letters by their ASCII classes
    import re

    SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d{1,3}| ?[^\s\w]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)


# ----------------------------------------------------------------------------- minbpe helpers
def get_stats(ids, counts=None):
    counts = {} if counts is None else counts
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def merge(ids, pair, idx):
    newids = []
    i = 0
    while i < len(ids):
        if ids[i] == pair[0] and i < len(ids) - 1 and ids[i + 1] == pair[1]:
            newids.append(idx)
            i += 2
        else:
            newids.append(ids[i])
            i += 1
    return newids


def replace_control_characters(s: str) -> str:
    chars = []
    for ch in s:
        if unicodedata.category(ch)[0] != "C":
            chars.append(ch)
        else:
            chars.append(f"\\u{ord(ch):04x}")
    return "".join(chars)


def render_token(t: bytes) -> str:
    s = t.decode("utf-8", errors="replace")
    return replace_control_characters(s)


class RegexTokenizer:
    def __init__(self, pattern=None):
        self.pattern = SPLIT_PATTERN if pattern is None else pattern
        self.compiled_pattern = re.compile(self.pattern)
        self.merges = {}
        self.special_tokens = {}
        self.inverse_special_tokens = {}
        self.vocab = {idx: bytes([idx]) for idx in range(256)}

    def train(self, text, vocab_size, verbose=False):
        assert vocab_size >= 256
        num_merges = vocab_size - 256
        text_chunks = re.findall(self.compiled_pattern, text)
        ids = [list(ch.encode("utf-8")) for ch in text_chunks]
        merges = {}
        vocab = {idx: bytes([idx]) for idx in range(256)}
        for i in range(num_merges):
            stats = {}
            for chunk_ids in ids:
                get_stats(chunk_ids, stats)
            pair = max(stats, key=stats.get)
            idx = 256 + i
            ids = [merge(chunk_ids, pair, idx) for chunk_ids in ids]
            merges[pair] = idx
            vocab[idx] = vocab[pair[0]] + vocab[pair[1]]
            if verbose and (i + 1) % 32 == 0:
                print(f"merge {i + 1}/{num_merges}: {stats[pair]} occurrences")
        self.merges = merges
        self.vocab = vocab

    def register_special_tokens(self, special_tokens):
        self.special_tokens = special_tokens
        self.inverse_special_tokens = {v: k for k, v in special_tokens.items()}

    def decode(self, ids):
        part_bytes = []
        for idx in ids:
            if idx in self.vocab:
                part_bytes.append(self.vocab[idx])
            elif idx in self.inverse_special_tokens:
                part_bytes.append(self.inverse_special_tokens[idx].encode("utf-8"))
            else:
                raise ValueError(f"invalid token id: {idx}")
        text_bytes = b"".join(part_bytes)
        return text_bytes.decode("utf-8", errors="replace")

    def _encode_chunk(self, text_bytes):
        ids = list(text_bytes)
        while len(ids) >= 2:
            stats = get_stats(ids)
            pair = min(stats, key=lambda p: self.merges.get(p, float("inf")))
            if pair not in self.merges:
                break
            idx = self.merges[pair]
            ids = merge(ids, pair, idx)
        return ids

    def encode_ordinary(self, text):
        text_chunks = re.findall(self.compiled_pattern, text)
        ids = []
        for chunk in text_chunks:
            ids.extend(self._encode_chunk(chunk.encode("utf-8")))
        return ids

    def encode(self, text, allowed_special="none_raise"):
        if allowed_special == "all":
            special = self.special_tokens
        elif allowed_special == "none":
            special = {}
        elif allowed_special == "none_raise":
            special = {}
            assert all(token not in text for token in self.special_tokens)
        else:
            raise ValueError(f"allowed_special={allowed_special} not understood")
        if not special:
            return self.encode_ordinary(text)
        special_pattern = "(" + "|".join(re.escape(k) for k in special) + ")"
        special_chunks = re.split(special_pattern, text)
        ids = []
        for part in special_chunks:
            if part in special:
                ids.append(special[part])
            else:
                ids.extend(self.encode_ordinary(part))
        return ids


# ----------------------------------------------------------------------------- a synthetic corpus
NAMES = ["alice", "bob", "carol", "dave", "erin", "frank"]
VERBS = ["sees", "likes", "helps", "calls", "meets", "thanks"]
OBJECTS = ["the cat", "the dog", "a friend", "the teacher", "her brother", "his sister"]
PLACES = ["in the park", "at home", "near the river", "after school", "on monday"]


def make_document():
    sentences = []
    for _ in range(rng.randint(3, 6)):
        s = f"{NAMES[rng.randint(6)]} {VERBS[rng.randint(6)]} {OBJECTS[rng.randint(6)]}"
        if rng.rand() < 0.6:
            s += f" {PLACES[rng.randint(5)]}"
        if rng.rand() < 0.3:
            s += f", {rng.randint(100)} times"
        sentences.append(s.capitalize() + rng.choice([".", "!", "?"]))
    return " ".join(sentences)


documents = [make_document() for _ in range(120)]
text = "<|endoftext|>".join(documents)
print(f"corpus: {len(documents)} documents")

tokenizer = RegexTokenizer()
tokenizer.train(text.replace("<|endoftext|>", "\n"), vocab_size=256 + 96, verbose=True)
tokenizer.register_special_tokens({"<|endoftext|>": 256 + 96})
ids = tokenizer.encode(text, allowed_special="all")
assert tokenizer.decode(ids) == text
unseen = "Zoë sees the café 🐈 near the river, 7 times!\tOK"
assert tokenizer.decode(tokenizer.encode(unseen)) == unseen
longest = max(tokenizer.vocab.values(), key=len)
rendered = render_token(longest + b"\n")
assert rendered.endswith("\\u000a")
print(f"tokens: {len(ids)}, compression {len(text.encode('utf-8')) / len(ids):.3f}x, "
      f"longest merge {len(longest)} bytes")
print(f"round trip on unseen text: {tokenizer.decode(tokenizer.encode(unseen)) == unseen}")


# ----------------------------------------------------------------------------- a tiny GPT
vocab_size = 256 + 96 + 1
block_size = 32
batch_size = 16
n_embd, n_head, n_layer = 48, 4, 2
max_iters, eval_interval, eval_iters = 200, 50, 8
learning_rate = 3e-3

data = torch.tensor(ids, dtype=torch.long)
n = int(0.9 * len(data))
train_data = data[:n]
val_data = data[n:]


def get_batch(split):
    data = train_data if split == "train" else val_data
    ix = torch.randint(len(data) - block_size, (batch_size,))
    x = torch.stack([data[i:i + block_size] for i in ix])
    y = torch.stack([data[i + 1:i + block_size + 1] for i in ix])
    return x, y


class CausalSelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(n_embd, dim=2)
        k = k.view(B, T, n_head, C // n_head).transpose(1, 2)
        q = q.view(B, T, n_head, C // n_head).transpose(1, 2)
        v = v.view(B, T, n_head, C // n_head).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention()
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.token_embedding_table = nn.Embedding(vocab_size, n_embd)
        self.position_embedding_table = nn.Embedding(block_size, n_embd)
        self.blocks = nn.Sequential(*[Block() for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.token_embedding_table.weight = self.lm_head.weight
        self.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets=None):
        B, T = idx.shape
        tok_emb = self.token_embedding_table(idx)
        pos_emb = self.position_embedding_table(torch.arange(T, device=idx.device))
        x = self.blocks(tok_emb + pos_emb)
        logits = self.lm_head(self.ln_f(x))
        if targets is None:
            return logits, None
        B, T, V = logits.shape
        loss = F.cross_entropy(logits.view(-1, V), targets.view(-1))
        return logits, loss

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None):
        for _ in range(max_new_tokens):
            idx_cond = idx[:, -block_size:]
            logits, _ = self(idx_cond)
            logits = logits[:, -1, :] / temperature
            if top_k is not None:
                v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                logits[logits < v[:, [-1]]] = -float("Inf")
            probs = F.softmax(logits, dim=-1)
            idx_next = torch.multinomial(probs, num_samples=1)
            idx = torch.cat((idx, idx_next), dim=1)
        return idx


@torch.no_grad()
def estimate_loss():
    out = {}
    model.eval()
    for split in ["train", "val"]:
        losses = torch.zeros(eval_iters)
        for k in range(eval_iters):
            X, Y = get_batch(split)
            _, loss = model(X, Y)
            losses[k] = loss.item()
        out[split] = losses.mean()
    model.train()
    return out


model = GPT()
print(f"{sum(p.numel() for p in model.parameters())} parameters")
print(f"initial loss {math.log(vocab_size):.4f} expected")
optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
for it in range(max_iters + 1):
    if it % eval_interval == 0:
        losses = estimate_loss()
        print(f"step {it}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
    if it == max_iters:
        break
    xb, yb = get_batch("train")
    logits, loss = model(xb, yb)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()

context = torch.tensor([tokenizer.encode("Alice")], dtype=torch.long)
out = model.generate(context, max_new_tokens=40, temperature=0.8, top_k=20)[0].tolist()
sample = tokenizer.decode(out)
words = sample.replace(".", " ").replace("!", " ").replace("?", " ").replace(",", " ").split()
known = set(" ".join(NAMES + VERBS + OBJECTS + PLACES).split()) | {"times"}
known_frac = sum(w.lower() in known or w.isdigit() for w in words) / max(len(words), 1)
print(f"sample: {len(out)} tokens")
print(f"FINAL val_loss={losses['val']:.4f} train_loss={losses['train']:.4f} known_words={known_frac:.4f}")
