"""word2vec skip-gram with negative sampling, in the style of the popular PyTorch SGNS repositories.

Two ``nn.Embedding(sparse=False)`` tables initialised with ``uniform_``/``zero_``, a corpus of
synthetic "topic" sentences, (center, context) pairs within a window, negatives drawn with
``torch.multinomial`` from the unigram distribution raised to 3/4, the loss written with
``torch.bmm`` and ``F.logsigmoid``, ``optim.Adam`` (dense gradients) with a linearly decaying
learning rate set through ``param_groups``, and cosine-similarity nearest neighbours with
``F.normalize`` and ``topk``.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# corpus: 4 topics of 8 words each plus 4 function words; a sentence picks one topic and mixes its
# words with function words, so words of a topic share contexts
rng = np.random.RandomState(0)
TOPICS, WORDS_PER_TOPIC, FUNCTION_WORDS = 4, 8, 4
vocab_size = TOPICS * WORDS_PER_TOPIC + FUNCTION_WORDS
sentences = []
for _ in range(300):
    topic = rng.randint(TOPICS)
    length = rng.randint(6, 11)
    words = topic * WORDS_PER_TOPIC + rng.randint(WORDS_PER_TOPIC, size=length)
    function = TOPICS * WORDS_PER_TOPIC + rng.randint(FUNCTION_WORDS, size=length)
    sentences.append(np.where(rng.rand(length) < 0.3, function, words))
word_counts = np.bincount(np.concatenate(sentences), minlength=vocab_size)


class SkipGramPairs(Dataset):
    def __init__(self, sentences, window):
        pairs = []
        for sentence in sentences:
            for i, center in enumerate(sentence):
                for j in range(max(0, i - window), min(len(sentence), i + window + 1)):
                    if j != i:
                        pairs.append((center, sentence[j]))
        self.pairs = np.array(pairs, dtype=np.int64)

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, indices):
        # called with a whole batch of indices (a BatchSampler as the sampler, batch_size=None)
        batch = torch.from_numpy(self.pairs[indices])
        return batch[:, 0], batch[:, 1]


class SkipGramModel(nn.Module):
    def __init__(self, emb_size, emb_dimension):
        super().__init__()
        self.emb_dimension = emb_dimension
        self.u_embeddings = nn.Embedding(emb_size, emb_dimension, sparse=False)
        self.v_embeddings = nn.Embedding(emb_size, emb_dimension, sparse=False)
        initrange = 1.0 / self.emb_dimension
        nn.init.uniform_(self.u_embeddings.weight.data, -initrange, initrange)
        self.v_embeddings.weight.data.zero_()

    def forward(self, pos_u, pos_v, neg_v):
        emb_u = self.u_embeddings(pos_u)  # B, D
        emb_v = self.v_embeddings(pos_v)  # B, D
        emb_neg_v = self.v_embeddings(neg_v)  # B, K, D
        score = torch.sum(torch.mul(emb_u, emb_v), dim=1)
        score = torch.clamp(score, max=10, min=-10)
        score = -F.logsigmoid(score)
        neg_score = torch.bmm(emb_neg_v, emb_u.unsqueeze(2)).squeeze()
        neg_score = torch.clamp(neg_score, max=10, min=-10)
        neg_score = -torch.sum(F.logsigmoid(-neg_score), dim=1)
        return torch.mean(score + neg_score)


dataset = SkipGramPairs(sentences, window=2)
loader = DataLoader(dataset, sampler=BatchSampler(RandomSampler(dataset), batch_size=128, drop_last=False),
                    batch_size=None)
noise_distribution = torch.from_numpy(word_counts.astype(np.float64) ** 0.75)
noise_distribution /= noise_distribution.sum()
model = SkipGramModel(vocab_size, 12)
initial_lr = 0.05
optimizer = optim.Adam(model.parameters(), lr=initial_lr)
print(f"{len(sentences)} sentences, {vocab_size} words, {len(dataset)} pairs, {len(loader)} batches per epoch")

epochs = 3
total_batches = epochs * len(loader)
step = 0
for epoch in range(epochs):
    running_loss = 0.0
    for pos_u, pos_v in loader:
        neg_v = torch.multinomial(noise_distribution, pos_u.size(0) * 5, replacement=True).view(pos_u.size(0), 5)
        for group in optimizer.param_groups:
            group["lr"] = initial_lr * max(1e-4, 1.0 - step / total_batches)
        optimizer.zero_grad()
        loss = model(pos_u, pos_v, neg_v)
        loss.backward()
        optimizer.step()
        running_loss = running_loss * 0.9 + loss.item() * 0.1 if step else loss.item()
        step += 1
    print(f"epoch {epoch + 1}: smoothed loss {running_loss:.4f}, lr {optimizer.param_groups[0]['lr']:.5f}")

# nearest neighbours by cosine similarity: how many of a topic word's 5 neighbours share its topic
with torch.no_grad():
    embeddings = F.normalize(model.u_embeddings.weight[: TOPICS * WORDS_PER_TOPIC], dim=1)
    similarity = embeddings @ embeddings.t()
    similarity.fill_diagonal_(-2.0)
    neighbours = similarity.topk(5, dim=1).indices
    topic_of = torch.arange(TOPICS * WORDS_PER_TOPIC) // WORDS_PER_TOPIC
    same_topic = (topic_of[neighbours] == topic_of.unsqueeze(1)).float().mean().item()
    within = similarity.masked_fill(similarity < -1.5, 0.0)
    block = (topic_of.unsqueeze(0) == topic_of.unsqueeze(1)).float()
    gap = ((within * block).sum() / (block.sum() - len(block)) - (within * (1 - block)).sum() / (1 - block).sum())
print(f"neighbours sharing the topic {same_topic:.3f}")
print(f"FINAL loss={running_loss:.4f} same_topic={same_topic:.4f} similarity_gap={gap.item():.4f}")
