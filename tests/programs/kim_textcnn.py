"""Kim (2014), "Convolutional Neural Networks for Sentence Classification", as the PyTorch ports
write it, on synthetic sentiment-like sentences.

Pretrained word vectors go in by ``nn.Embedding.from_pretrained(vectors, freeze=..., padding_idx=0)``
(words missing from the "pretrained" table drawn from U[-0.25, 0.25], as Kim does), the sentence
``(batch, len, dim)`` is ``transpose(1, 2)``-ed for parallel ``nn.Conv1d`` filters of widths 3, 4
and 5, each pooled max-over-time (``.max(dim=2).values`` and ``F.max_pool1d(x, x.size(2))``,
checked equal), concatenated, dropped out (p=0.5) and classified; Adadelta (rho=0.95) and Kim's
max-norm constraint on the last layer's rows, ``torch.renorm(w, 2, 0, 3)`` written back in place
under ``torch.no_grad()`` after every step. Four of Kim's variants: CNN-rand, CNN-static
(``freeze=True``), CNN-non-static (``freeze=False``) and CNN-multichannel (a static and a
non-static copy of the vectors concatenated along the channel axis).

The sentences: a template "the <noun> was [not] [very] <adjective> ..." with fillers; the label is
the adjective's polarity, flipped by a negator before it. The pretrained vectors carry polarity
along one direction, but (like word2vec's "good" ~ "bad") a few negative adjectives sit on the
positive side, which only the fine-tuned variants can correct.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

POSITIVE = ["good", "great", "fine", "superb", "lovely", "brilliant", "moving", "fresh", "witty", "solid"]
NEGATIVE = ["bad", "awful", "dull", "boring", "weak", "flat", "tedious", "clumsy", "bland", "messy"]
NEGATORS = ["not", "never", "hardly"]
INTENSIFIERS = ["very", "really", "truly", "quite"]
NOUNS = ["movie", "film", "plot", "story", "acting", "cast", "script", "ending", "score", "pacing"]
FILLERS = ["the", "was", "and", "it", "a", "bit", "overall", "i", "think", "so", "this", "is", "of", "in"]
# words the "pretrained" table never saw: Kim initialises them from U[-0.25, 0.25]
UNSEEN = ["zesty", "meh", "gripping", "limp"]

itos = ["<pad>", "<unk>"] + POSITIVE + NEGATIVE + NEGATORS + INTENSIFIERS + NOUNS + FILLERS + UNSEEN
stoi = {w: i for i, w in enumerate(itos)}
polarity = {w: 1 for w in POSITIVE + ["zesty", "gripping"]}
polarity.update({w: -1 for w in NEGATIVE + ["meh", "limp"]})
ADJECTIVES = sorted(polarity)
EMBED_DIM, MAX_LEN = 24, 16


def make_sentence():
    words = ["the", str(rng.choice(NOUNS)), "was"]
    negated = rng.random() < 0.35
    if negated:
        words.append(str(rng.choice(NEGATORS)))
    if rng.random() < 0.5:
        words.append(str(rng.choice(INTENSIFIERS)))
    adjective = str(rng.choice(ADJECTIVES))
    words.append(adjective)
    for _ in range(rng.integers(0, 5)):
        words.insert(int(rng.integers(0, len(words) + 1)) if rng.random() < 0.3 else len(words),
                     str(rng.choice(FILLERS)))
    label = polarity[adjective] * (-1 if negated else 1) > 0
    return words, int(label)


def make_dataset(n):
    ids = np.zeros((n, MAX_LEN), dtype=np.int64)
    labels = np.zeros(n, dtype=np.int64)
    for i in range(n):
        words, labels[i] = make_sentence()
        words = words[:MAX_LEN]
        ids[i, :len(words)] = [stoi.get(w, stoi["<unk>"]) for w in words]
    return torch.from_numpy(ids), torch.from_numpy(labels)


def pretrained_vectors():
    sentiment_axis = rng.normal(size=EMBED_DIM)
    sentiment_axis /= np.linalg.norm(sentiment_axis)
    vectors = rng.normal(0.0, 0.3, size=(len(itos), EMBED_DIM))
    for word, sign in polarity.items():
        vectors[stoi[word]] += 0.6 * sign * sentiment_axis
    # antonyms share contexts, so a distributional model puts them close together
    for word in ["bad", "dull", "weak"]:
        vectors[stoi[word]] = vectors[stoi["good"]] + rng.normal(0.0, 0.1, size=EMBED_DIM)
    for word in UNSEEN:
        vectors[stoi[word]] = rng.uniform(-0.25, 0.25, size=EMBED_DIM)
    vectors[0] = 0.0
    return torch.tensor(vectors, dtype=torch.float32)


class KimCNN(nn.Module):
    def __init__(self, mode, vectors, n_filters=32, widths=(3, 4, 5), n_classes=2, dropout=0.5):
        super().__init__()
        self.mode = mode
        vocab_size, dim = vectors.shape
        if mode == "rand":
            self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
        else:
            # from_pretrained wraps the tensor it is given (no copy): clone, or fine-tuning edits the table
            self.embedding = nn.Embedding.from_pretrained(vectors.clone(), freeze=(mode == "static"), padding_idx=0)
        in_channels = dim
        if mode == "multichannel":
            self.static_embedding = nn.Embedding.from_pretrained(vectors.clone(), freeze=True, padding_idx=0)
            in_channels = 2 * dim
        self.convs = nn.ModuleList([nn.Conv1d(in_channels, n_filters, k) for k in widths])
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(n_filters * len(widths), n_classes)

    def features(self, x):
        emb = self.embedding(x)
        if self.mode == "multichannel":
            emb = torch.cat([emb, self.static_embedding(x)], dim=2)
        return emb.transpose(1, 2)

    def forward(self, x):
        emb = self.features(x)
        pooled = [F.relu(conv(emb)).max(dim=2).values for conv in self.convs]
        return self.fc(self.dropout(torch.cat(pooled, dim=1)))

    def forward_max_pool1d(self, x):
        emb = self.features(x)
        pooled = []
        for conv in self.convs:
            h = F.relu(conv(emb))
            pooled.append(F.max_pool1d(h, h.size(2)).squeeze(2))
        return self.fc(self.dropout(torch.cat(pooled, dim=1)))


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        correct = (model(x).argmax(dim=1) == y).float().mean().item()
    model.train()
    return correct


train_x, train_y = make_dataset(640)
test_x, test_y = make_dataset(320)
vectors = pretrained_vectors()
print(f"vocab {len(itos)} train {tuple(train_x.shape)} positive {train_y.float().mean().item():.3f} "
      f"padding {(train_x == 0).float().mean().item():.3f}")
cosine = F.cosine_similarity(vectors[stoi["good"]], vectors[stoi["bad"]], dim=0)
print(f"pretrained cosine(good, bad) {cosine.item():.3f}")

shared = nn.Embedding.from_pretrained(vectors)
print("from_pretrained shares the tensor's storage", shared.weight.data_ptr() == vectors.data_ptr(),
      "requires_grad", shared.weight.requires_grad, "padding_idx", shared.padding_idx)

EPOCHS, BATCH, MAX_NORM = 12, 50, 3.0
results = {}
for mode in ["rand", "static", "non-static", "multichannel"]:
    model = KimCNN(mode, vectors)
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    print(f"[{mode}] embedding trainable {model.embedding.weight.requires_grad} parameters {n_trainable}")
    optimizer = torch.optim.Adadelta(trainable, lr=1.0, rho=0.95, eps=1e-6)
    for epoch in range(EPOCHS):
        perm = torch.randperm(len(train_x))
        total, clipped = 0.0, 0.0
        for start in range(0, len(train_x), BATCH):
            idx = perm[start:start + BATCH]
            loss = F.cross_entropy(model(train_x[idx]), train_y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                clipped += (model.fc.weight.norm(dim=1) > MAX_NORM).float().mean().item()
                # Kim's l2 constraint: rescale each output row whose norm exceeds s = 3
                model.fc.weight.copy_(torch.renorm(model.fc.weight, 2, 0, MAX_NORM))
            total += loss.item() * len(idx)
        if epoch % 4 == 3:
            print(f"[{mode}] epoch {epoch + 1} loss {total / len(train_x):.4f} rows over s {clipped:.2f} "
                  f"test acc {accuracy(model, test_x, test_y):.3f}")
    model.eval()
    with torch.no_grad():
        same = torch.allclose(model(test_x[:40]), model.forward_max_pool1d(test_x[:40]), atol=1e-6)
        row_norms = model.fc.weight.norm(dim=1)
        pad_norm = model.embedding.weight[0].norm().item()
        drift = (model.embedding.weight - vectors).norm().item() if mode != "rand" else float("nan")
        tuned = F.cosine_similarity(model.embedding.weight[stoi["good"]], model.embedding.weight[stoi["bad"]], dim=0)
    print(f"[{mode}] max-over-time agrees with max_pool1d {same} fc row norms max {row_norms.max().item():.3f} "
          f"padding row norm {pad_norm:.3f} drift {drift:.3f} cosine(good, bad) {tuned.item():.3f}")
    results[mode] = accuracy(model, test_x, test_y)
    print(f"[{mode}] test accuracy {results[mode]:.3f}")

w = torch.randn(5, 7) * 3
renormed = w.clone()
renormed.renorm_(p=2, dim=0, maxnorm=3)
print("renorm_ matches torch.renorm", torch.equal(renormed, torch.renorm(w, 2, 0, 3)),
      f"max row norm {renormed.norm(dim=1).max().item():.4f}")
print("FINAL " + " ".join(f"acc_{mode.replace('-', '')}={acc:.4f}" for mode, acc in results.items()))
