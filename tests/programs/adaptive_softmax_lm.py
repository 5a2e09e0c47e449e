"""A word-level language model with ``nn.AdaptiveLogSoftmaxWithLoss`` (Grave et al. 2016, "Efficient
softmax approximation for GPUs"), as fairseq's and the word_language_model forks write it, on a
synthetic Zipf-distributed vocabulary of 2,000 words.

The corpus: a word's successor is, with probability 0.6, its own fixed "collocate" (drawn from the
Zipf law too) and otherwise a fresh Zipf draw, so the true conditional entropy is known. An
``nn.Embedding`` + ``nn.LSTM(batch_first=True)`` model reads ``(batch, 20)`` windows and its hidden
states, ``reshape(-1, hidden)``, go into ``AdaptiveLogSoftmaxWithLoss(hidden, n_words,
cutoffs=[100, 600], div_value=4.0)``: its ``(output, loss)`` namedtuple (``out.loss``, ``out.output``,
``_fields``, unpacking), ``output`` against ``log_prob(h).gather(1, ...)``, ``log_prob`` rows summing
to 1 after ``exp`` (``torch.logsumexp``), ``predict`` against ``log_prob(...).argmax(1)``, the
parameter shapes of the head and the low-rank tail projections, 1-D input with a 0-d target, and the
error for a target out of range. Perplexity by ``math.exp`` of the token-weighted mean loss under
``torch.no_grad()``, against a full-softmax baseline (``nn.Linear`` + ``F.cross_entropy``) and a
``nn.GRU`` variant with ``head_bias=True``; Adam with ``clip_grad_norm_`` and ``StepLR``.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

N_WORDS, CUTOFFS, STAY = 2000, [100, 600], 0.6
EMBED, HIDDEN, BPTT, BATCH = 32, 48, 20, 16

ranks = np.arange(1, N_WORDS + 1)
unigram = 1.0 / ranks ** 1.1
unigram /= unigram.sum()
collocate = rng.choice(N_WORDS, size=N_WORDS, p=unigram)


def make_corpus(n_tokens):
    tokens = np.empty(n_tokens, dtype=np.int64)
    tokens[0] = rng.choice(N_WORDS, p=unigram)
    fresh = rng.choice(N_WORDS, size=n_tokens, p=unigram)
    stay = rng.random(n_tokens) < STAY
    for t in range(1, n_tokens):
        tokens[t] = collocate[tokens[t - 1]] if stay[t] else fresh[t]
    return torch.from_numpy(tokens)


def true_perplexity(tokens):
    prev, nxt = tokens[:-1].numpy(), tokens[1:].numpy()
    p = (1 - STAY) * unigram[nxt] + STAY * (collocate[prev] == nxt)
    return math.exp(-np.log(p).mean())


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    return data.view(bsz, -1).contiguous()


def get_batch(source, i):
    seq_len = min(BPTT, source.size(1) - 1 - i)
    return source[:, i:i + seq_len], source[:, i + 1:i + 1 + seq_len]


class RNNModel(nn.Module):
    def __init__(self, rnn_type="LSTM", adaptive=True, head_bias=False):
        super().__init__()
        self.encoder = nn.Embedding(N_WORDS, EMBED)
        self.rnn = getattr(nn, rnn_type)(EMBED, HIDDEN, batch_first=True)
        self.adaptive = adaptive
        if adaptive:
            self.crit = nn.AdaptiveLogSoftmaxWithLoss(HIDDEN, N_WORDS, cutoffs=CUTOFFS, div_value=4.0,
                                                      head_bias=head_bias)
        else:
            self.decoder = nn.Linear(HIDDEN, N_WORDS)

    def hidden_states(self, x):
        output, _ = self.rnn(self.encoder(x))
        return output.reshape(-1, HIDDEN)

    def forward(self, x, y):
        h = self.hidden_states(x)
        if self.adaptive:
            return self.crit(h, y.reshape(-1)).loss
        return F.cross_entropy(self.decoder(h), y.reshape(-1))

    def log_prob(self, x):
        h = self.hidden_states(x)
        return self.crit.log_prob(h) if self.adaptive else F.log_softmax(self.decoder(h), dim=1)


def evaluate(model, source):
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, source.size(1) - 1, BPTT):
            x, y = get_batch(source, i)
            total += model(x, y).item() * y.numel()
            count += y.numel()
    model.train()
    return math.exp(total / count)


train_tokens, test_tokens = make_corpus(19200), make_corpus(4800)
train_data, test_data = batchify(train_tokens, BATCH), batchify(test_tokens, BATCH)
in_head = (train_tokens < CUTOFFS[0]).float().mean().item()
in_tail = (train_tokens >= CUTOFFS[1]).float().mean().item()
oracle = true_perplexity(test_tokens)
print(f"corpus train {tuple(train_data.shape)} test {tuple(test_data.shape)} distinct {train_tokens.unique().numel()} "
      f"head share {in_head:.3f} last cluster share {in_tail:.3f}")
print(f"oracle perplexity {oracle:.2f} unigram perplexity {math.exp(-(unigram * np.log(unigram)).sum()):.2f}")

asm = nn.AdaptiveLogSoftmaxWithLoss(HIDDEN, N_WORDS, cutoffs=CUTOFFS, div_value=4.0)
print("head", tuple(asm.head.weight.shape), "bias", asm.head.bias, "tail",
      [tuple(p.shape) for p in asm.tail.parameters()], "n_clusters", asm.n_clusters,
      "shortlist", asm.shortlist_size, "cutoffs", asm.cutoffs)
h = torch.randn(6, HIDDEN, requires_grad=True)
target = torch.tensor([3, 150, 1999, 0, 700, 99])
out = asm(h, target)
output, loss = out
print("fields", out._fields, "output", tuple(output.shape), "loss", tuple(loss.shape),
      "grad_fn", type(out.output.grad_fn).__name__, out.loss.grad_fn.name())
full = asm.log_prob(h)
print("log_prob", tuple(full.shape), full.grad_fn.name(),
      "predict", asm.predict(h).tolist() == full.argmax(1).tolist())
print("output is log_prob gathered", torch.allclose(out.output, full.gather(1, target.unsqueeze(1)).squeeze(1), atol=1e-5),
      "loss is -output.mean()", torch.allclose(loss, -output.mean()),
      "rows sum to 1", torch.allclose(full.exp().sum(1), torch.ones(6), atol=1e-5),
      "logsumexp 0", torch.allclose(torch.logsumexp(full, dim=1), torch.zeros(6), atol=1e-5))
loss.backward()
print("grad", tuple(h.grad.shape), "head grad", asm.head.weight.grad is not None,
      "tail grads", [p.grad is not None for p in asm.tail.parameters()])
single = asm(h[1].detach(), target[1])
print("unbatched output", tuple(single.output.shape), "agrees", torch.allclose(single.output, out.output[1]))
try:
    asm(h.detach(), torch.tensor([0, 1, 2, 3, 4, 2000]))
except RuntimeError as err:
    print("out of range:", err)

EPOCHS = 2
results, agreement = {}, []
for name, rnn_type, adaptive, head_bias in [("adaptive_lstm", "LSTM", True, False),
                                           ("full_lstm", "LSTM", False, False),
                                           ("adaptive_gru_head_bias", "GRU", True, True)]:
    model = RNNModel(rnn_type, adaptive, head_bias)
    n_params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    print(f"[{name}] parameters {n_params} head bias {adaptive and model.crit.head.bias is not None}")
    for epoch in range(EPOCHS):
        total, steps = 0.0, 0
        for i in range(0, train_data.size(1) - 1, BPTT):
            x, y = get_batch(train_data, i)
            optimizer.zero_grad()
            loss = model(x, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            total += loss.item()
            steps += 1
        scheduler.step()
        print(f"[{name}] epoch {epoch + 1} steps {steps} train ppl {math.exp(total / steps):.2f} "
              f"test ppl {evaluate(model, test_data):.2f} lr {scheduler.get_last_lr()[0]:.5f}")
    results[name] = evaluate(model, test_data)
    if adaptive:
        model.eval()
        with torch.no_grad():
            x, y = get_batch(test_data, 0)
            hs = model.hidden_states(x)
            lp = model.crit.log_prob(hs)
            pred = model.crit.predict(hs)
            agree = (pred == lp.argmax(1)).float().mean().item()
            agreement.append(agree)
            acc = (pred == y.reshape(-1)).float().mean().item()
            mass = lp.exp().sum(1)
        print(f"[{name}] predict == log_prob.argmax {agree:.3f} next-word accuracy {acc:.3f} "
              f"prob mass in [{mass.min().item():.4f}, {mass.max().item():.4f}] dtype {pred.dtype}")

print("FINAL " + " ".join(f"ppl_{k}={v / oracle:.4f}" for k, v in results.items())
      + f" predict_agree={min(agreement):.4f}")
