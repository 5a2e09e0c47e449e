"""An RNN-Transducer (Graves 2012) trained with a hand-written loss on a synthetic speech-like task.

Each utterance is a short token sequence rendered as frames: every token holds for a random number
of frames, each frame a token prototype plus noise, so frames carry no explicit alignment. The model
is the transducer of the paper: an encoder ``nn.LSTM`` over the features, a prediction network
(``nn.Embedding`` with the blank as start symbol, stepped by ``nn.GRUCell``), and a joint network
``tanh(enc[:, :, None] + pred[:, None])`` -> ``nn.Linear`` giving (B, T, U+1, V) logits, then
``F.log_softmax``. The loss is the forward-variable dynamic program over the (T, U) grid,

    alpha[t, u] = logaddexp(alpha[t-1, u] + blank[t-1, u], alpha[t, u-1] + label[t, u-1]),

written twice: row by row over t (a Python loop over u inside, rows kept in a list and stacked) and
by anti-diagonals (``alpha[:, t, u] = torch.logaddexp(...)`` written in place into a ``-inf`` grid).
Both are checked on a tiny case against brute-force enumeration of every alignment. Variable
input and target lengths: the log-likelihood is read at (T_b - 1, U_b) by a boolean mask. Greedy
decoding steps the prediction network whenever the joint emits a label; reports loss and token
accuracy (1 - edit distance / length).
"""

import itertools
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

BLANK = 0
VOCAB = 6  # blank + 5 tokens
FEATURES = 8
HIDDEN = 32
PROTOTYPES = rng.normal(0.0, 1.0, size=(VOCAB, FEATURES)).astype(np.float32)


def make_utterances(n):
    """Token sequences of 2..4 tokens (no immediate repeats), each token held 2..4 frames."""
    feats, targets = [], []
    for _ in range(n):
        length = int(rng.integers(2, 5))
        tokens = [int(rng.integers(1, VOCAB))]
        while len(tokens) < length:
            token = int(rng.integers(1, VOCAB))
            if token != tokens[-1]:
                tokens.append(token)
        frames = []
        for token in tokens:
            for _ in range(int(rng.integers(2, 5))):
                frames.append(PROTOTYPES[token] + rng.normal(0.0, 0.4, size=FEATURES))
        frames.append(rng.normal(0.0, 0.4, size=FEATURES))  # a trailing silence frame
        feats.append(np.stack(frames).astype(np.float32))
        targets.append(tokens)
    return feats, targets


def collate(feats, targets):
    input_lengths = torch.tensor([len(f) for f in feats])
    target_lengths = torch.tensor([len(t) for t in targets])
    x = torch.zeros(len(feats), int(input_lengths.max()), FEATURES)
    y = torch.full((len(targets), int(target_lengths.max())), BLANK, dtype=torch.long)
    for i, (f, t) in enumerate(zip(feats, targets)):
        x[i, : len(f)] = torch.from_numpy(f)
        y[i, : len(t)] = torch.tensor(t)
    return x, y, input_lengths, target_lengths


class Transducer(nn.Module):
    def __init__(self, features=FEATURES, hidden=HIDDEN, vocab=VOCAB):
        super().__init__()
        self.encoder = nn.LSTM(features, hidden, batch_first=True)
        self.embed = nn.Embedding(vocab, hidden)
        self.predictor = nn.GRUCell(hidden, hidden)
        self.enc_proj = nn.Linear(hidden, hidden)
        self.pred_proj = nn.Linear(hidden, hidden, bias=False)
        self.out = nn.Linear(hidden, vocab)

    def encode(self, x):
        enc, _ = self.encoder(x)
        return self.enc_proj(enc)

    def predict(self, y):
        """Prediction network over [blank] + y: (B, U+1, H)."""
        batch = y.size(0)
        start = torch.full((batch, 1), BLANK, dtype=torch.long)
        emb = self.embed(torch.cat([start, y], dim=1))
        h = torch.zeros(batch, self.predictor.hidden_size)
        states = []
        for u in range(emb.size(1)):
            h = self.predictor(emb[:, u], h)
            states.append(h)
        return self.pred_proj(torch.stack(states, dim=1))

    def joint(self, enc, pred):
        return self.out(torch.tanh(enc.unsqueeze(2) + pred.unsqueeze(1)))

    def forward(self, x, y):
        return self.joint(self.encode(x), self.predict(y))


def split_log_probs(log_probs, y):
    """blank[b, t, u] and label[b, t, u] = log P(y_{u+1} | t, u) (the last column padded with -inf)."""
    blank = log_probs[..., BLANK]
    index = y[:, None, :, None].expand(-1, log_probs.size(1), -1, 1)
    label = torch.gather(log_probs[:, :, :-1, :], 3, index).squeeze(-1)
    return blank, label


def alpha_rows(log_probs, y):
    """Forward variables row by row: alpha[t] from alpha[t-1], then left to right along u."""
    blank, label = split_log_probs(log_probs, y)
    batch, T, U1 = blank.shape
    rows = []
    for t in range(T):
        row = []
        for u in range(U1):
            if t == 0 and u == 0:
                row.append(log_probs.new_zeros(batch))
                continue
            from_below = rows[t - 1][:, u] + blank[:, t - 1, u] if t > 0 else None
            from_left = row[u - 1] + label[:, t, u - 1] if u > 0 else None
            if from_below is None:
                row.append(from_left)
            elif from_left is None:
                row.append(from_below)
            else:
                row.append(torch.logaddexp(from_below, from_left))
        rows.append(torch.stack(row, dim=1))
    return torch.stack(rows, dim=1), blank


def alpha_diagonals(log_probs, y):
    """Forward variables by anti-diagonals t + u = n, each written in place into a -inf grid."""
    blank, label = split_log_probs(log_probs, y)
    batch, T, U1 = blank.shape
    alpha = log_probs.new_full((batch, T, U1), float("-inf"))
    alpha[:, 0, 0] = 0.0
    for n in range(1, T + U1 - 1):
        t = torch.arange(max(0, n - U1 + 1), min(n, T - 1) + 1)
        u = n - t
        below = torch.where(t > 0, alpha[:, (t - 1).clamp(min=0), u] + blank[:, (t - 1).clamp(min=0), u], float("-inf"))
        left = torch.where(u > 0, alpha[:, t, (u - 1).clamp(min=0)] + label[:, t, (u - 1).clamp(min=0)], float("-inf"))
        alpha[:, t, u] = torch.logaddexp(below, left)
    return alpha, blank


def rnnt_log_likelihood(alpha, blank, input_lengths, target_lengths):
    """log P(y | x) = alpha[T_b - 1, U_b] + blank[T_b - 1, U_b], read through a boolean mask."""
    T, U1 = alpha.shape[1:]
    at_end = (torch.arange(T)[None, :, None] == (input_lengths - 1)[:, None, None]) & (
        torch.arange(U1)[None, None, :] == target_lengths[:, None, None]
    )
    terminal = (alpha + blank).masked_fill(~at_end, float("-inf"))
    return terminal.logsumexp(dim=(1, 2))


def rnnt_loss(log_probs, y, input_lengths, target_lengths, method="diagonal"):
    alpha, blank = (alpha_diagonals if method == "diagonal" else alpha_rows)(log_probs, y)
    nll = -rnnt_log_likelihood(alpha, blank, input_lengths, target_lengths)
    return (nll / target_lengths).mean(), nll


def brute_force_log_likelihood(log_probs, y, T, U):
    """Sum over every path from (0, 0) to (T-1, U): choose which of the T-1+U moves emit labels."""
    scores = []
    for label_moves in itertools.combinations(range(T - 1 + U), U):
        t = u = 0
        score = log_probs.new_zeros(())
        for move in range(T - 1 + U):
            if move in label_moves:
                score = score + log_probs[t, u, y[u]]
                u += 1
            else:
                score = score + log_probs[t, u, BLANK]
                t += 1
        scores.append(score + log_probs[T - 1, U, BLANK])
    return torch.logsumexp(torch.stack(scores), dim=0), len(scores)


@torch.no_grad()
def greedy_decode(model, x, input_lengths, max_symbols=3):
    enc = model.encode(x)
    hyps = []
    for b in range(x.size(0)):
        h = model.predictor(model.embed(torch.tensor([BLANK])), torch.zeros(1, HIDDEN))
        hyp = []
        for t in range(int(input_lengths[b])):
            for _ in range(max_symbols):
                logits = model.joint(enc[b : b + 1, t : t + 1], model.pred_proj(h).unsqueeze(1))
                k = int(logits.argmax(dim=-1))
                if k == BLANK:
                    break
                hyp.append(k)
                h = model.predictor(model.embed(torch.tensor([k])), h)
        hyps.append(hyp)
    return hyps


def edit_distance(a, b):
    d = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, cb in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (ca != cb))
    return d[len(b)]


def token_accuracy(hyps, targets):
    errors = sum(edit_distance(h, t) for h, t in zip(hyps, targets))
    return 1.0 - errors / sum(len(t) for t in targets)


# --- the dynamic programs against brute force on a tiny case ---
tiny_T, tiny_U = 4, 2
tiny_log_probs = F.log_softmax(torch.randn(1, tiny_T, tiny_U + 1, VOCAB, dtype=torch.float64), dim=-1)
tiny_y = torch.tensor([[3, 1]])
tiny_lengths, tiny_target_lengths = torch.tensor([tiny_T]), torch.tensor([tiny_U])
brute, paths = brute_force_log_likelihood(tiny_log_probs[0], tiny_y[0], tiny_T, tiny_U)
for method in ("rows", "diagonal"):
    alpha, blank = (alpha_rows if method == "rows" else alpha_diagonals)(tiny_log_probs, tiny_y)
    dp = rnnt_log_likelihood(alpha, blank, tiny_lengths, tiny_target_lengths)[0]
    print(f"tiny {method}: {paths} alignments, dp {dp.item():.6f} brute force {brute.item():.6f} "
          f"agree {torch.allclose(dp, brute)}")
# every path's probabilities sum to one over all label sequences of length <= 1 when T = 1: P(blank)
one_frame = F.log_softmax(torch.randn(1, 1, 1, VOCAB, dtype=torch.float64), dim=-1)
alpha, blank = alpha_diagonals(one_frame, torch.zeros(1, 0, dtype=torch.long))
print(f"T=1, U=0 likelihood is the blank probability: "
      f"{torch.allclose(rnnt_log_likelihood(alpha, blank, torch.tensor([1]), torch.tensor([0])), one_frame[0, 0, 0, BLANK])}")

# --- data and model ---
train_feats, train_targets = make_utterances(96)
test_feats, test_targets = make_utterances(32)
print(f"train {len(train_feats)} utterances, frames {min(map(len, train_feats))}..{max(map(len, train_feats))}, "
      f"tokens {min(map(len, train_targets))}..{max(map(len, train_targets))}")

model = Transducer()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
x0, y0, il0, tl0 = collate(train_feats[:8], train_targets[:8])
log_probs0 = F.log_softmax(model(x0, y0), dim=-1)
print("joint logits", tuple(model(x0, y0).shape))
loss_rows, nll_rows = rnnt_loss(log_probs0, y0, il0, tl0, method="rows")
loss_diag, nll_diag = rnnt_loss(log_probs0, y0, il0, tl0, method="diagonal")
print(f"row-wise and diagonal losses agree {torch.allclose(nll_rows, nll_diag, atol=1e-4)}: {loss_diag.item():.4f}")
grads_rows = torch.autograd.grad(loss_rows, model.out.weight, retain_graph=True)[0]
grads_diag = torch.autograd.grad(loss_diag, model.out.weight)[0]
print(f"and their gradients agree {torch.allclose(grads_rows, grads_diag, atol=1e-5)}")

# padding beyond an utterance's lengths must not change its likelihood
x_pad = torch.cat([x0, torch.randn(8, 3, FEATURES)], dim=1)
y_pad = torch.cat([y0, torch.randint(1, VOCAB, (8, 2))], dim=1)
with torch.no_grad():
    _, nll_pad = rnnt_loss(F.log_softmax(model(x_pad, y_pad), dim=-1), y_pad, il0, tl0)
print(f"padded frames and labels leave the likelihood alone {torch.allclose(nll_pad, nll_diag, atol=1e-4)}")

BATCH = 16
EPOCHS = 10
x_test, y_test, il_test, tl_test = collate(test_feats, test_targets)
for epoch in range(EPOCHS):
    order = torch.randperm(len(train_feats)).tolist()
    total = 0.0
    for start in range(0, len(order), BATCH):
        idx = order[start : start + BATCH]
        x, y, il, tl = collate([train_feats[i] for i in idx], [train_targets[i] for i in idx])
        log_probs = F.log_softmax(model(x, y), dim=-1)
        loss, _ = rnnt_loss(log_probs, y, il, tl)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        total += loss.item() * len(idx)
    if epoch % 3 == 0 or epoch == EPOCHS - 1:
        with torch.no_grad():
            test_loss, _ = rnnt_loss(F.log_softmax(model(x_test, y_test), dim=-1), y_test, il_test, tl_test)
        print(f"epoch {epoch} train loss {total / len(order):.4f} test loss {test_loss.item():.4f}")

model.eval()
hyps = greedy_decode(model, x_test, il_test)
accuracy = token_accuracy(hyps, test_targets)
exact = sum(h == t for h, t in zip(hyps, test_targets)) / len(test_targets)
print(f"decoded {sum(map(len, hyps))} tokens against {sum(map(len, test_targets))} target tokens")
with torch.no_grad():
    final_loss, nll = rnnt_loss(F.log_softmax(model(x_test, y_test), dim=-1), y_test, il_test, tl_test)
print(f"test nll per utterance {nll.mean().item():.4f} perplexity per token {math.exp(final_loss.item()):.3f}")
print(f"FINAL loss={final_loss.item():.4f} token_acc={accuracy:.4f} exact={exact:.4f}")
