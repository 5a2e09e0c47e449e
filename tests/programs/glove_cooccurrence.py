"""GloVe (Pennington et al., 2014) as stanfordnlp/GloVe's ``cooccur``/``glove`` and its PyTorch ports write it.

A synthetic corpus with planted word classes (each sentence draws most of its words from one class, the
rest from shared function words) is scanned with a symmetric window; every (center, context) pair at
distance ``d`` adds ``1 / d`` to the co-occurrence matrix, accumulated as the ports do by
``torch.zeros(V, V).index_put_((i, j), w, accumulate=True)`` and again by ``Tensor.index_add_`` on the
flattened matrix (the two must be equal, and equal NumPy's ``np.add.at``). Training runs over the nonzero
entries from ``X.nonzero(as_tuple=True)``: ``nn.Embedding`` tables for the main and context vectors and
their biases, the weighting ``torch.where(x < x_max, (x / x_max) ** alpha, torch.ones_like(x))``, the
loss ``weights * (dot + b_i + b_j - torch.log(x)) ** 2`` and ``optim.Adagrad(lr=0.05)`` on shuffled
minibatches. The word vectors are ``W + W~`` (the paper's choice); neighbours by cosine similarity should
share their class.

Checked: the two accumulations agree, the weighted least-squares loss falls, the hand-written gradient of
the loss (``2 * f(x) * err * w~_j``) equals autograd's, and the fraction of each class word's nearest
neighbours from its own class, and the cosine gap between within-class and cross-class pairs.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# ------------------------------------------------------------------------------------ corpus
rng = np.random.RandomState(seed)
CLASSES, WORDS_PER_CLASS, FUNCTION_WORDS = 5, 6, 4
VOCAB_SIZE = CLASSES * WORDS_PER_CLASS + FUNCTION_WORDS
corpus = []
for _ in range(400):
    word_class = rng.randint(CLASSES)
    length = rng.randint(5, 10)
    words = word_class * WORDS_PER_CLASS + rng.randint(WORDS_PER_CLASS, size=length)
    function = CLASSES * WORDS_PER_CLASS + rng.randint(FUNCTION_WORDS, size=length)
    corpus.append(np.where(rng.rand(length) < 0.25, function, words))
print(f"corpus: {len(corpus)} sentences, {sum(len(s) for s in corpus)} tokens, vocabulary {VOCAB_SIZE}")


# ------------------------------------------------------------------------------ co-occurrence
def cooccurrence_pairs(corpus, window_size):
    """(center, context, 1/distance) for every pair within the window, both directions (symmetric=1)."""
    centers, contexts, weights = [], [], []
    for sentence in corpus:
        for pos, center in enumerate(sentence):
            for offset in range(1, window_size + 1):
                if pos - offset < 0:
                    break
                context = sentence[pos - offset]
                centers += [center, context]
                contexts += [context, center]
                weights += [1.0 / offset, 1.0 / offset]
    return (torch.tensor(centers, dtype=torch.long), torch.tensor(contexts, dtype=torch.long),
            torch.tensor(weights, dtype=torch.float))


WINDOW_SIZE = 3
i_idx, j_idx, increments = cooccurrence_pairs(corpus, WINDOW_SIZE)
cooccurrences = torch.zeros(VOCAB_SIZE, VOCAB_SIZE).index_put_((i_idx, j_idx), increments, accumulate=True)

flat = torch.zeros(VOCAB_SIZE * VOCAB_SIZE)
flat.index_add_(0, i_idx * VOCAB_SIZE + j_idx, increments)
by_index_add = flat.view(VOCAB_SIZE, VOCAB_SIZE)

reference = np.zeros((VOCAB_SIZE, VOCAB_SIZE), dtype=np.float64)
np.add.at(reference, (i_idx.numpy(), j_idx.numpy()), increments.numpy().astype(np.float64))

accumulate_diff = (cooccurrences - by_index_add).abs().max().item()
numpy_diff = np.abs(cooccurrences.numpy().astype(np.float64) - reference).max()
symmetric = torch.equal(cooccurrences, cooccurrences.t())
print(f"{len(i_idx)} increments; index_put_ vs index_add_ {accumulate_diff:.2e}, vs numpy {numpy_diff:.2e}, "
      f"symmetric {symmetric}")

rows, cols = cooccurrences.nonzero(as_tuple=True)
x_ij = cooccurrences[rows, cols]
print(f"nonzero entries: {len(x_ij)} of {VOCAB_SIZE * VOCAB_SIZE}")


# ------------------------------------------------------------------------------------- model
class GloveModel(nn.Module):
    def __init__(self, num_embeddings, embedding_dim):
        super().__init__()
        self.wi = nn.Embedding(num_embeddings, embedding_dim)
        self.wj = nn.Embedding(num_embeddings, embedding_dim)
        self.bi = nn.Embedding(num_embeddings, 1)
        self.bj = nn.Embedding(num_embeddings, 1)
        self.wi.weight.data.uniform_(-0.5 / embedding_dim, 0.5 / embedding_dim)
        self.wj.weight.data.uniform_(-0.5 / embedding_dim, 0.5 / embedding_dim)
        self.bi.weight.data.zero_()
        self.bj.weight.data.zero_()

    def forward(self, i_indices, j_indices):
        w_i = self.wi(i_indices)
        w_j = self.wj(j_indices)
        b_i = self.bi(i_indices).squeeze()
        b_j = self.bj(j_indices).squeeze()
        x = torch.sum(w_i * w_j, dim=1) + b_i + b_j
        return x


def weight_func(x, x_max, alpha):
    wx = torch.where(x < x_max, (x / x_max) ** alpha, torch.ones_like(x))
    return wx


def wmse_loss(weights, inputs, targets):
    loss = weights * F.mse_loss(inputs, targets, reduction="none")
    return torch.mean(loss)


EMBED_DIM, X_MAX, ALPHA = 10, 10.0, 0.75
BATCH_SIZE, N_EPOCHS = 128, 40
glove = GloveModel(VOCAB_SIZE, EMBED_DIM)
optimizer = optim.Adagrad(glove.parameters(), lr=0.05)

# the hand-written gradient of the per-pair loss with respect to w_i matches autograd's
with torch.no_grad():
    sample = torch.randperm(len(x_ij))[:16]
glove.zero_grad()
pred = glove(rows[sample], cols[sample])
f_x = weight_func(x_ij[sample], X_MAX, ALPHA)
per_pair = f_x * (pred - torch.log(x_ij[sample])) ** 2
dot = (glove.wi.weight[rows[sample]] * glove.wj.weight[cols[sample]]).sum(1)
err = dot + glove.bi.weight[rows[sample], 0] + glove.bj.weight[cols[sample], 0] - torch.log(x_ij[sample])
hand_grad = torch.zeros_like(glove.wi.weight).index_add_(
    0, rows[sample], (2 * f_x * err).detach().unsqueeze(1) * glove.wj.weight[cols[sample]].detach())
per_pair.sum().backward()
grad_diff = (glove.wi.weight.grad - hand_grad).abs().max().item()
print(f"hand-written gradient vs autograd: {grad_diff:.2e}")
glove.zero_grad()


def epoch_loss():
    with torch.no_grad():
        outputs = glove(rows, cols)
        return wmse_loss(weight_func(x_ij, X_MAX, ALPHA), outputs, torch.log(x_ij)).item()


initial_loss = epoch_loss()
n_batches = (len(x_ij) + BATCH_SIZE - 1) // BATCH_SIZE
for epoch in range(1, N_EPOCHS + 1):
    permutation = torch.randperm(len(x_ij))
    total = 0.0
    for b in range(n_batches):
        batch = permutation[b * BATCH_SIZE:(b + 1) * BATCH_SIZE]
        i_batch, j_batch, x_batch = rows[batch], cols[batch], x_ij[batch]
        optimizer.zero_grad()
        outputs = glove(i_batch, j_batch)
        weights_x = weight_func(x_batch, X_MAX, ALPHA)
        loss = wmse_loss(weights_x, outputs, torch.log(x_batch))
        loss.backward()
        optimizer.step()
        total += loss.item()
    if epoch % 10 == 0:
        print(f"epoch {epoch}: mean batch loss {total / n_batches:.4f}")
final_loss = epoch_loss()
print(f"weighted loss {initial_loss:.4f} -> {final_loss:.4f}")

# ----------------------------------------------------------------------- nearest neighbours
with torch.no_grad():
    vectors = glove.wi.weight + glove.wj.weight
    content = vectors[: CLASSES * WORDS_PER_CLASS]
    similarity = F.cosine_similarity(content.unsqueeze(1), content.unsqueeze(0), dim=-1)
    similarity.fill_diagonal_(-2.0)
    neighbours = similarity.topk(WORDS_PER_CLASS - 1, dim=1).indices
    class_of = torch.arange(CLASSES * WORDS_PER_CLASS) // WORDS_PER_CLASS
    same_class = (class_of[neighbours] == class_of.unsqueeze(1)).float().mean().item()
    block = (class_of.unsqueeze(0) == class_of.unsqueeze(1)).float() - torch.eye(len(class_of))
    within = (similarity * block).sum() / block.sum()
    cross_mask = (class_of.unsqueeze(0) != class_of.unsqueeze(1)).float()
    across = (similarity * cross_mask).sum() / cross_mask.sum()
print(f"neighbours sharing the class {same_class:.3f}, cosine within {within.item():.3f} across {across.item():.3f}")
print(f"FINAL loss={final_loss:.4f} loss_drop={initial_loss - final_loss:.4f} same_class={same_class:.4f} "
      f"cosine_gap={(within - across).item():.4f} accumulate_diff={accumulate_diff + numpy_diff:.6f} "
      f"grad_diff={grad_diff:.6f}")
