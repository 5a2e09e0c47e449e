"""Matching Networks (Vinyals et al. 2016) with full-context embeddings, as the PyTorch ports write
them (BoyuanJiang/matching-networks-pytorch, oscarknagg/few-shot), on synthetic Omniglot-like
characters: each class a random 8x8 stroke glyph, each drawing it with pixel flips, a random
``torch.roll`` shift and noise; disjoint train and test alphabets.

Episodic N-way K-shot batches built with ``torch.randperm``; a conv embedding ``g'``; the support
set's full-context embedding by a bidirectional ``nn.LSTM(batch_first=True)`` added to ``g'`` (the
skip); the query's attention LSTM, an ``nn.LSTMCell`` unrolled for K steps on
``torch.cat([f'(x), r], dim=1)`` with ``h = h_hat + f'(x)``, the read-out
``r = softmax(h g^T) g`` by ``bmm``; the classifier's attention ``softmax(cosine)`` computed by
``F.cosine_similarity`` with broadcasting and by ``F.normalize`` + ``bmm`` (must agree), the
label read-out ``attn @ one_hot`` (``F.one_hot`` on the support labels, and the ``scatter`` of the
ports), ``torch.log(p + eps)`` into ``F.nll_loss``; Adam. Checks: the two cosine routes and the two
one-hot routes agree, and episode accuracy on unseen classes rises well above chance.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

rng = np.random.RandomState(5)
N_TRAIN_CLASSES, N_TEST_CLASSES, PER_CLASS = 100, 15, 8
glyphs = (rng.rand(N_TRAIN_CLASSES + N_TEST_CLASSES, 8, 8) < 0.35).astype(np.float32)


def draw(glyph, count):
    flips = rng.rand(count, 8, 8) < 0.06
    out = np.abs(glyph[None] - flips.astype(np.float32))
    out = out + 0.15 * rng.randn(count, 8, 8)
    return torch.from_numpy(out.astype(np.float32))


data = torch.stack([draw(g, PER_CLASS) for g in glyphs])  # (classes, PER_CLASS, 8, 8)
shifts = torch.from_numpy(rng.randint(-1, 2, size=(data.shape[0], PER_CLASS, 2)))
for c in range(data.shape[0]):
    for i in range(PER_CLASS):
        data[c, i] = torch.roll(data[c, i], shifts=tuple(shifts[c, i].tolist()), dims=(0, 1))
train_classes = torch.arange(N_TRAIN_CLASSES)
test_classes = torch.arange(N_TRAIN_CLASSES, N_TRAIN_CLASSES + N_TEST_CLASSES)

N_WAY, K_SHOT, Q_QUERY, EPISODES_PER_BATCH = 5, 1, 3, 8


def sample_episodes(classes, batch, generator=None):
    support_x, support_y, query_x, query_y = [], [], [], []
    for _ in range(batch):
        chosen = classes[torch.randperm(len(classes), generator=generator)[:N_WAY]]
        sx, sy, qx, qy = [], [], [], []
        for label, c in enumerate(chosen.tolist()):
            idx = torch.randperm(PER_CLASS, generator=generator)[:K_SHOT + Q_QUERY]
            sx.append(data[c, idx[:K_SHOT]])
            qx.append(data[c, idx[K_SHOT:]])
            sy += [label] * K_SHOT
            qy += [label] * Q_QUERY
        support_x.append(torch.cat(sx))
        query_x.append(torch.cat(qx))
        support_y.append(torch.tensor(sy))
        query_y.append(torch.tensor(qy))
    return (torch.stack(support_x).unsqueeze(2), torch.stack(support_y),
            torch.stack(query_x).unsqueeze(2), torch.stack(query_y))


def conv_block(in_channels, out_channels):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
    )


class Classifier(nn.Module):
    """g': the ports' four-block conv net, two blocks here."""

    def __init__(self, num_channels=1, hidden=16):
        super().__init__()
        self.layer1 = conv_block(num_channels, hidden)
        self.layer2 = conv_block(hidden, hidden)
        self.outSize = hidden * 2 * 2

    def forward(self, image_input):
        x = self.layer2(self.layer1(image_input))
        return x.view(x.size()[0], -1)


class BidirectionalLSTM(nn.Module):
    def __init__(self, vector_dim):
        super().__init__()
        self.lstm = nn.LSTM(input_size=vector_dim, hidden_size=vector_dim // 2, num_layers=1,
                            bidirectional=True, batch_first=True)

    def forward(self, inputs):
        output, (hn, cn) = self.lstm(inputs)
        return output + inputs  # g(x_i, S) = fwd + bwd hidden + g'(x_i)


class AttentionLSTM(nn.Module):
    def __init__(self, size, unrolling_steps):
        super().__init__()
        self.unrolling_steps = unrolling_steps
        self.cell = nn.LSTMCell(input_size=2 * size, hidden_size=size)

    def forward(self, support, queries):
        # support (B, S, D), queries (B, Q, D)
        batch, q, d = queries.shape
        flat_queries = queries.reshape(batch * q, d)
        h_hat = torch.zeros_like(flat_queries)
        c = torch.zeros(batch * q, d)
        readout = torch.zeros_like(flat_queries)
        for _ in range(self.unrolling_steps):
            h_hat, c = self.cell(torch.cat([flat_queries, readout], dim=1), (h_hat, c))
            h = h_hat + flat_queries
            attentions = torch.bmm(h.view(batch, q, d), support.transpose(1, 2)).softmax(dim=2)
            readout = torch.bmm(attentions, support).reshape(batch * q, d)
        return (h_hat + flat_queries).view(batch, q, d)


def cosine_broadcast(queries, support):
    return F.cosine_similarity(queries.unsqueeze(2), support.unsqueeze(1), dim=-1)


def cosine_normalize_bmm(queries, support):
    return torch.bmm(F.normalize(queries, dim=-1), F.normalize(support, dim=-1).transpose(1, 2))


class MatchingNetwork(nn.Module):
    def __init__(self, fce=True, unrolling_steps=K_SHOT * N_WAY):
        super().__init__()
        self.g = Classifier()
        self.fce = fce
        if fce:
            self.lstm = BidirectionalLSTM(self.g.outSize)
            self.attn_lstm = AttentionLSTM(self.g.outSize, unrolling_steps)

    def forward(self, support_x, support_y, query_x, cosine=cosine_broadcast):
        b, s = support_x.shape[:2]
        q = query_x.shape[1]
        embeddings = self.g(torch.cat([support_x.flatten(0, 1), query_x.flatten(0, 1)]))
        support = embeddings[:b * s].view(b, s, -1)
        queries = embeddings[b * s:].view(b, q, -1)
        if self.fce:
            support = self.lstm(support)
            queries = self.attn_lstm(support, queries)
        similarities = cosine(queries, support)  # (B, Q, S)
        softmax_similarities = F.softmax(similarities * 10.0, dim=-1)
        one_hot = F.one_hot(support_y, N_WAY).float()  # (B, S, N)
        return torch.bmm(softmax_similarities, one_hot), similarities


model = MatchingNetwork()
optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
eval_gen = torch.Generator().manual_seed(123)
eval_set = [sample_episodes(test_classes, EPISODES_PER_BATCH, eval_gen) for _ in range(4)]


def evaluate():
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for sx, sy, qx, qy in eval_set:
            probs, _ = model(sx, sy, qx)
            correct += (probs.argmax(-1) == qy).sum().item()
            total += qy.numel()
    model.train()
    return correct / total


acc_before = evaluate()
print(f"{N_WAY}-way {K_SHOT}-shot, {Q_QUERY} queries per class; test-class accuracy before {acc_before:.4f}")
eps = 1e-8
train_accs = []
for step in range(1, 121):
    sx, sy, qx, qy = sample_episodes(train_classes, EPISODES_PER_BATCH)
    probs, _ = model(sx, sy, qx)
    loss = F.nll_loss(torch.log(probs + eps).view(-1, N_WAY), qy.view(-1))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    train_accs.append((probs.argmax(-1) == qy).float().mean().item())
    if step % 30 == 0:
        print(f"step {step} loss {loss.item():.4f} train episode acc {np.mean(train_accs[-30:]):.4f}")
acc_after = evaluate()

# the two cosine routes and the two one-hot routes on one eval batch
model.eval()
with torch.no_grad():
    sx, sy, qx, qy = eval_set[0]
    p1, s1 = model(sx, sy, qx, cosine=cosine_broadcast)
    p2, s2 = model(sx, sy, qx, cosine=cosine_normalize_bmm)
    cosine_diff = max((s1 - s2).abs().max().item(), (p1 - p2).abs().max().item())
    y_onehot = torch.zeros(sy.shape[0], sy.shape[1], N_WAY).scatter(2, sy.unsqueeze(-1), 1)
    onehot_diff = (y_onehot - F.one_hot(sy, N_WAY).float()).abs().max().item()
print(f"cosine routes max diff {cosine_diff:.2e}, one-hot routes max diff {onehot_diff:.1f}")
early, late = float(np.mean(train_accs[:20])), float(np.mean(train_accs[-20:]))
print(f"train episode acc first 20 steps {early:.4f}, last 20 steps {late:.4f}")
checks_ok = float(cosine_diff < 1e-5 and onehot_diff == 0 and late > early + 0.1
                  and acc_after > acc_before + 0.1 and acc_after > 2.0 / N_WAY)
print(f"FINAL acc_before={acc_before:.4f} acc_after={acc_after:.4f} train_early={early:.4f} "
      f"train_late={late:.4f} checks_ok={checks_ok:.0f}")
