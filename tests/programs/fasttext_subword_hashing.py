"""fastText's supervised classifier with subword information, as facebookresearch/fastText's
``Dictionary`` and ``FastText`` and its PyTorch ports write it.

Words are wrapped in ``<`` and ``>`` and cut into character n-grams (``minn=3`` to ``maxn=5``), each hashed
by fastText's FNV-1a (``h ^= byte``, ``h *= 16777619``, kept to 32 bits with ``& 0xFFFFFFFF`` in Python
ints) into one of ``bucket`` rows after the word rows. A sentence is the bag of its word ids and their
n-gram ids, flattened with ``offsets`` into ``nn.EmbeddingBag(mode='mean')``, followed by a linear layer;
training uses ``optim.SGD`` with the learning rate decaying linearly to zero through ``LambdaLR``, and
``torch.nn.utils.clip_grad_norm_``. The synthetic classes are sets of invented words sharing a class
affix, so words never seen in training (no word id, only n-grams) are still classified through their
n-grams.

Checked: the ``mode='sum'`` bag with ``per_sample_weights = 1 / bag length`` equals the mean bag (values
and gradients), a padded 2-d input with ``padding_idx`` equals the ``offsets`` form, sentence accuracy on
held-out sentences, and accuracy on out-of-vocabulary words classified by their n-grams alone.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

MINN, MAXN, BUCKET = 3, 5, 2000
AFFIXES = ["zor", "kli", "mup", "wex"]
N_CLASSES = len(AFFIXES)
CONSONANTS, VOWELS = "bdfghjnprstv", "aeiou"


def invent_word(affix):
    stem = "".join(rng.choice(list(CONSONANTS)) + rng.choice(list(VOWELS)) for _ in range(rng.randint(1, 3)))
    return stem + affix if rng.rand() < 0.5 else affix + stem


# --------------------------------------------------------------------------- dictionary
def fnv1a_hash(word):
    """fastText's Dictionary::hash: FNV-1a over the UTF-8 bytes, as a 32-bit unsigned int."""
    h = 2166136261
    for byte in word.encode("utf-8"):
        h = (h ^ byte) & 0xFFFFFFFF
        h = (h * 16777619) & 0xFFFFFFFF
    return h


class Dictionary:
    def __init__(self, words, minn, maxn, bucket):
        self.words = sorted(set(words))
        self.word2int = {w: i for i, w in enumerate(self.words)}
        self.nwords = len(self.words)
        self.minn, self.maxn, self.bucket = minn, maxn, bucket
        self.pad = self.nwords + bucket  # one extra row, the padding index

    def compute_subwords(self, word):
        word = "<" + word + ">"
        ngrams = []
        for i in range(len(word)):
            for n in range(self.minn, self.maxn + 1):
                if i + n > len(word):
                    break
                if n == 1 and (i == 0 or i + n == len(word)):
                    continue
                ngrams.append(self.nwords + fnv1a_hash(word[i:i + n]) % self.bucket)
        return ngrams

    def get_line(self, words):
        ids = []
        for word in words:
            if word in self.word2int:
                ids.append(self.word2int[word])
            ids.extend(self.compute_subwords(word))
        return ids


vocabulary = {c: [invent_word(affix) for _ in range(12)] for c, affix in enumerate(AFFIXES)}
fillers = [invent_word("") for _ in range(10)]
oov_words = [(invent_word(AFFIXES[c]), c) for c in range(N_CLASSES) for _ in range(10)]
oov_words = [(w, c) for w, c in oov_words if all(w not in v for v in vocabulary.values())]
dictionary = Dictionary([w for ws in vocabulary.values() for w in ws] + fillers, MINN, MAXN, BUCKET)
print(f"dictionary: {dictionary.nwords} words, {BUCKET} buckets, hash('<zor>') = {fnv1a_hash('<zor>')}")


def make_sentences(n):
    sentences = []
    for _ in range(n):
        label = rng.randint(N_CLASSES)
        length = rng.randint(4, 9)
        words = [vocabulary[label][rng.randint(12)] if rng.rand() < 0.45 else fillers[rng.randint(10)]
                 for _ in range(length)]
        if rng.rand() < 0.15:  # some noise: a word of another class
            words[rng.randint(length)] = vocabulary[rng.randint(N_CLASSES)][rng.randint(12)]
        sentences.append((words, label))
    return sentences


train_sentences, test_sentences = make_sentences(600), make_sentences(200)


def to_bags(lines):
    """The flattened ids, the offsets of each bag, and the labels (the ports' collate_fn)."""
    ids, offsets, labels = [], [], []
    for words, label in lines:
        offsets.append(len(ids))
        ids.extend(dictionary.get_line(words))
        labels.append(label)
    return torch.tensor(ids, dtype=torch.long), torch.tensor(offsets, dtype=torch.long), torch.tensor(labels)


# -------------------------------------------------------------------------------- model
class FastText(nn.Module):
    def __init__(self, num_embeddings, dim, num_classes, padding_idx):
        super().__init__()
        self.embedding = nn.EmbeddingBag(num_embeddings, dim, mode="mean", padding_idx=padding_idx)
        self.fc = nn.Linear(dim, num_classes)
        self.init_weights()

    def init_weights(self):
        initrange = 1.0 / self.embedding.embedding_dim
        self.embedding.weight.data.uniform_(-initrange, initrange)
        self.embedding.weight.data[self.embedding.padding_idx].zero_()
        self.fc.weight.data.zero_()
        self.fc.bias.data.zero_()

    def forward(self, text, offsets=None, per_sample_weights=None):
        if per_sample_weights is not None:
            embedded = F.embedding_bag(text, self.embedding.weight, offsets, mode="sum",
                                       per_sample_weights=per_sample_weights, padding_idx=self.embedding.padding_idx)
        else:
            embedded = self.embedding(text, offsets)
        return self.fc(embedded)


DIM = 16
model = FastText(dictionary.pad + 1, DIM, N_CLASSES, padding_idx=dictionary.pad)

# the sum bag weighted by 1 / length is the mean bag; a padded (B, L) input is the offsets form
with torch.no_grad():
    model.fc.weight.normal_(0, 0.1)
text, offsets, labels = to_bags(train_sentences[:8])
lengths = torch.diff(torch.cat([offsets, torch.tensor([len(text)])]))
weights = (1.0 / lengths.float()).repeat_interleave(lengths)
mean_out = model(text, offsets)
sum_out = model(text, offsets, per_sample_weights=weights)
(g_mean,) = torch.autograd.grad(F.cross_entropy(mean_out, labels), model.embedding.weight)
(g_sum,) = torch.autograd.grad(F.cross_entropy(sum_out, labels), model.embedding.weight)
padded = torch.full((len(lengths), int(lengths.max())), dictionary.pad, dtype=torch.long)
for b, (start, length) in enumerate(zip(offsets.tolist(), lengths.tolist())):
    padded[b, :length] = text[start:start + length]
padded_out = model(padded)
(g_padded,) = torch.autograd.grad(F.cross_entropy(padded_out, labels), model.embedding.weight)
bag_diff = max((mean_out - sum_out).abs().max().item(), (g_mean - g_sum).abs().max().item())
pad_diff = max((padded_out - mean_out).abs().max().item(), (g_padded - g_mean).abs().max().item())
print(f"mean vs weighted sum bag: {bag_diff:.2e}; padded vs offsets: {pad_diff:.2e}; "
      f"padding row gradient zero {bool((g_padded[dictionary.pad] == 0).all())}")
with torch.no_grad():
    model.fc.weight.zero_()

# ----------------------------------------------------------------------------- training
EPOCHS, BATCH_SIZE, LR = 5, 16, 5.0
n_batches = (len(train_sentences) + BATCH_SIZE - 1) // BATCH_SIZE
optimizer = optim.SGD(model.parameters(), lr=LR)
total_steps = EPOCHS * n_batches
scheduler = optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1.0 - step / total_steps))
criterion = nn.CrossEntropyLoss()


def evaluate(lines):
    model.eval()
    with torch.no_grad():
        text, offsets, labels = to_bags(lines)
        predicted = model(text, offsets).argmax(1)
    model.train()
    return (predicted == labels).float().mean().item()


for epoch in range(EPOCHS):
    order = torch.randperm(len(train_sentences)).tolist()
    total_loss = 0.0
    for b in range(n_batches):
        batch = [train_sentences[i] for i in order[b * BATCH_SIZE:(b + 1) * BATCH_SIZE]]
        text, offsets, labels = to_bags(batch)
        optimizer.zero_grad()
        loss = criterion(model(text, offsets), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        total_loss += loss.item()
    print(f"epoch {epoch + 1}: loss {total_loss / n_batches:.4f}, lr {scheduler.get_last_lr()[0]:.5f}, "
          f"test accuracy {evaluate(test_sentences):.3f}")

train_acc, test_acc = evaluate(train_sentences), evaluate(test_sentences)

# out-of-vocabulary words: no word id, only their hashed n-grams
with torch.no_grad():
    ids = [dictionary.get_line([w]) for w, _ in oov_words]
    oov_offsets = torch.tensor(np.cumsum([0] + [len(i) for i in ids[:-1]]), dtype=torch.long)
    oov_logits = model(torch.tensor([t for i in ids for t in i]), oov_offsets)
    oov_acc = (oov_logits.argmax(1) == torch.tensor([c for _, c in oov_words])).float().mean().item()
print(f"{len(oov_words)} out-of-vocabulary words classified by n-grams: {oov_acc:.3f}")
print(f"FINAL loss={total_loss / n_batches:.4f} train_acc={train_acc:.4f} test_acc={test_acc:.4f} "
      f"oov_acc={oov_acc:.4f} bag_diff={bag_diff:.6f} pad_diff={pad_diff:.6f}")
