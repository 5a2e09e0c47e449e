"""kNN-LM (Khandelwal et al., ICLR 2020; urvashik/knnlm) on a tiny LSTM language model.

A small word-level LSTM LM is trained first on a synthetic corpus made of a few hundred "memorable"
phrases (random 6-token n-grams over a 40-word vocabulary, each repeated a few times) joined by filler
words drawn from a Zipf-ish unigram. Then a datastore of (context vector, next token) pairs is built over
the training text under ``torch.no_grad()`` -- the keys are the LM's final hidden states (the input to the
output projection, as fairseq's ``--save-knnlm-dstore`` stores them), the values the next tokens.

At test time each query is looked up by ``torch.cdist`` (squared L2 as faiss' ``IndexFlatL2`` returns it)
and ``topk(k, largest=False)``; the retrieved distances become ``log_softmax(-d / temperature)`` and are
aggregated per token with ``scatter_add_`` into a vocabulary-sized probability (and, in knnlm.py's style,
``torch.logsumexp`` over the neighbours matching the target); the LM and kNN distributions are mixed in log
space by ``torch.logsumexp(torch.stack([lm + log(1 - lmbda), knn + log(lmbda)]), dim=0)``.

Checked: the interpolated perplexity is below the LM's on held-out text that repeats training n-grams in
new filler contexts, the ``scatter_add_`` aggregation equals a one-hot matmul (``F.one_hot`` ``@``), the
target-probability route of knnlm.py equals gathering from the scattered distribution, and
``cdist`` squared distances equal the expanded ``|q|^2 - 2 q.k + |k|^2`` form.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

VOCAB, EMB, HID, BPTT = 40, 32, 64, 16
N_PHRASES, PHRASE_LEN = 60, 6


# ----------------------------------------------------------------------------------- corpus
phrases = [rng.randint(0, VOCAB, size=PHRASE_LEN) for _ in range(N_PHRASES)]
unigram = 1.0 / np.arange(1, VOCAB + 1)
unigram /= unigram.sum()


def make_text(n_segments, phrase_ids):
    out = []
    for _ in range(n_segments):
        out.extend(rng.choice(VOCAB, size=rng.randint(1, 4), p=unigram).tolist())
        out.extend(phrases[phrase_ids[rng.randint(len(phrase_ids))]].tolist())
    return torch.tensor(out, dtype=torch.long)


train_ids = make_text(300, list(range(N_PHRASES)))
valid_ids = make_text(60, list(range(N_PHRASES)))


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    return data.view(bsz, -1).t().contiguous()


def get_batch(source, i):
    seq_len = min(BPTT, len(source) - 1 - i)
    return source[i : i + seq_len], source[i + 1 : i + 1 + seq_len].reshape(-1)


# ----------------------------------------------------------------------------------- LM
class RNNModel(nn.Module):
    def __init__(self, ntoken, ninp, nhid):
        super().__init__()
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid)
        self.proj = nn.Linear(nhid, ninp)
        self.decoder = nn.Linear(ninp, ntoken)

    def features(self, input, hidden):
        output, hidden = self.rnn(self.encoder(input), hidden)
        return torch.tanh(self.proj(output)), hidden

    def forward(self, input, hidden):
        feats, hidden = self.features(input, hidden)
        return self.decoder(feats), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        return (weight.new_zeros(1, bsz, HID), weight.new_zeros(1, bsz, HID))


def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


model = RNNModel(VOCAB, EMB, HID)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
criterion = nn.CrossEntropyLoss()
train_data = batchify(train_ids, 8)
for epoch in range(6):
    model.train()
    hidden = model.init_hidden(8)
    total, count = 0.0, 0
    for i in range(0, train_data.size(0) - 1, BPTT):
        data, targets = get_batch(train_data, i)
        hidden = repackage_hidden(hidden)
        output, hidden = model(data, hidden)
        loss = criterion(output.view(-1, VOCAB), targets)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimizer.step()
        total += loss.item() * targets.numel()
        count += targets.numel()
    print(f"| epoch {epoch:3d} | train loss {total / count:5.2f} | ppl {math.exp(total / count):8.2f}")


# ----------------------------------------------------------------------------------- datastore
@torch.no_grad()
def run_stream(ids):
    """Context vectors and LM log-probs for predicting ids[1:] from ids[:-1], one long stream."""
    model.eval()
    feats, _ = model.features(ids[:-1].view(-1, 1), model.init_hidden(1))
    feats = feats.view(-1, EMB)
    lprobs = F.log_softmax(model.decoder(feats), dim=-1)
    return feats, lprobs, ids[1:]


with torch.no_grad():
    dstore_keys, _, dstore_vals = run_stream(train_ids)
    dstore_keys = dstore_keys.clone()
    dstore_vals = dstore_vals.clone()
assert not dstore_keys.requires_grad
print(f"datastore: {dstore_keys.size(0)} keys of dim {dstore_keys.size(1)}")


class KNN_Dstore:
    def __init__(self, keys, vals, k, temperature):
        self.keys, self.vals, self.k, self.temperature = keys, vals, k, temperature

    def get_knns(self, queries):
        dists = torch.cdist(queries, self.keys).pow(2)
        d, knns = dists.topk(self.k, dim=-1, largest=False)
        return d, knns

    def get_knn_log_prob(self, queries, tgt):
        dists, knns = self.get_knns(queries)
        probs = F.log_softmax(-dists / self.temperature, dim=-1)
        index_mask = torch.eq(self.vals[knns], tgt.unsqueeze(-1)).float()
        index_mask[index_mask == 0] = -10000  # for stability
        index_mask[index_mask == 1] = 0
        yhat_knn_prob = torch.logsumexp(probs + index_mask, dim=-1)
        return yhat_knn_prob

    def get_knn_distribution(self, queries):
        dists, knns = self.get_knns(queries)
        weights = F.softmax(-dists / self.temperature, dim=-1)
        p = torch.zeros(queries.size(0), VOCAB)
        p.scatter_add_(1, self.vals[knns], weights)
        return p, weights, knns


def combine_knn_and_vocab_probs(knn_p, vocab_p, coeff):
    combine_probs = torch.stack([vocab_p, knn_p], dim=0)
    coeffs = torch.ones_like(combine_probs)
    coeffs[0] = np.log(1 - coeff)
    coeffs[1] = np.log(coeff)
    return torch.logsumexp(combine_probs + coeffs, dim=0)


# ----------------------------------------------------------------------------------- evaluation
dstore = KNN_Dstore(dstore_keys, dstore_vals, k=16, temperature=1.0)
with torch.no_grad():
    q, lm_lprobs, tgt = run_stream(valid_ids)
    lm_tgt = lm_lprobs.gather(1, tgt.unsqueeze(1)).squeeze(1)
    knn_p, weights, knns = dstore.get_knn_distribution(q)
    knn_tgt = dstore.get_knn_log_prob(q, tgt)

# scatter_add_ aggregation against a one-hot matmul, and knnlm.py's target route against the gather
onehot = F.one_hot(dstore.vals[knns], VOCAB).float()  # n, k, V
knn_p_mm = (weights.unsqueeze(1) @ onehot).squeeze(1)
scatter_err = (knn_p - knn_p_mm).abs().max().item()
gathered = torch.log(knn_p.gather(1, tgt.unsqueeze(1)).squeeze(1).clamp_min(1e-30))
hit = knn_p.gather(1, tgt.unsqueeze(1)).squeeze(1) > 1e-6
target_err = (knn_tgt[hit] - gathered[hit]).abs().max().item()
# cdist squared against the expanded form
d_cdist = torch.cdist(q[:50], dstore_keys).pow(2)
d_exp = q[:50].pow(2).sum(1, keepdim=True) - 2 * q[:50] @ dstore_keys.t() + dstore_keys.pow(2).sum(1)
cdist_err = (d_cdist - d_exp).abs().max().item() / d_exp.abs().max().item()
agree = scatter_err < 1e-6 and target_err < 1e-4 and cdist_err < 1e-4
print(f"scatter_add_ vs one-hot matmul {scatter_err:.2e}, target route {target_err:.2e}, cdist {cdist_err:.2e} -> {agree}")

lm_ppl = math.exp(-lm_tgt.mean().item())
best = None
for lmbda in (0.1, 0.25, 0.5):
    interp = combine_knn_and_vocab_probs(knn_tgt, lm_tgt, lmbda)
    full = torch.logsumexp(torch.stack([lm_lprobs + math.log(1 - lmbda), torch.log(knn_p.clamp_min(1e-30)) + math.log(lmbda)]), 0)
    assert torch.allclose(full.exp().sum(-1), torch.ones(full.size(0)), atol=1e-4)
    ppl = math.exp(-interp.mean().item())
    print(f"lambda {lmbda:.2f}: kNN-LM ppl {ppl:.3f} (LM {lm_ppl:.3f})")
    if best is None or ppl < best[1]:
        best = (lmbda, ppl)
print(f"FINAL lm_ppl={lm_ppl:.4f} knnlm_ppl={best[1]:.4f} ppl_ratio={best[1] / lm_ppl:.4f} improved={int(best[1] < lm_ppl)} agree={int(agree)}")
