"""Listwise and pairwise learning to rank (allRank / PT-Ranking style) on synthetic graded queries.

Queries hold 4..16 documents, padded to a fixed list length with a boolean padding mask; scores of
padding slots are pushed out of every softmax, sort and top-k by ``masked_fill(~mask, float('-inf'))``.

* ListNet: the cross-entropy between ``F.softmax`` of the relevances and of the scores (allRank's
  ``+ eps`` before ``torch.log``);
* ListMLE: ``torch.sort(relevance, descending=True, stable=True)``, the scores ``gather``-ed into
  that order, the Plackett-Luce likelihood by ``torch.logcumsumexp`` over the flipped list (against
  allRank's ``exp().flip().cumsum().flip()`` form, which must agree);
* LambdaRank: ranks from a double ``argsort``, ``torch.log2`` discounts, |delta NDCG| of every
  swapped pair, lambdas from pairwise ``torch.sigmoid`` differences pushed in by
  ``scores.backward(lambdas)`` (and the same gradient from the |delta NDCG|-weighted RankNet loss
  through autograd, which must agree);
* NDCG@k by ``topk`` of the masked scores + ``gather`` of the gains, against the ideal ``topk`` of
  the relevances.

The data: documents with NumPy features whose relevance grade 0..3 is a noisy function of them.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

LIST_LEN = 16
NUM_FEATURES = 10
PAD_RELEVANCE = -1.0
EPS = 1e-10

w_hidden = rng.normal(size=NUM_FEATURES)


def make_queries(n_queries):
    features = np.zeros((n_queries, LIST_LEN, NUM_FEATURES), dtype=np.float32)
    relevance = np.full((n_queries, LIST_LEN), PAD_RELEVANCE, dtype=np.float32)
    mask = np.zeros((n_queries, LIST_LEN), dtype=bool)
    for q in range(n_queries):
        n_docs = int(rng.integers(4, LIST_LEN + 1))
        x = rng.normal(size=(n_docs, NUM_FEATURES)) + rng.normal(scale=0.5, size=NUM_FEATURES)
        utility = x @ w_hidden + 0.5 * np.sin(2 * x[:, 0]) + rng.normal(scale=0.7, size=n_docs)
        utility -= utility.mean()
        grades = np.digitize(utility, [0.0, 1.5, 3.0])  # 0, 1, 2, 3
        features[q, :n_docs] = x
        relevance[q, :n_docs] = grades
        mask[q, :n_docs] = True
    return torch.from_numpy(features), torch.from_numpy(relevance), torch.from_numpy(mask)


class Scorer(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(NUM_FEATURES, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, x):
        return self.net(x).squeeze(-1)


def listnet_loss(scores, relevance, mask):
    scores = scores.masked_fill(~mask, float("-inf"))
    relevance = relevance.masked_fill(~mask, float("-inf"))
    preds_smax = F.softmax(scores, dim=1) + EPS
    true_smax = F.softmax(relevance, dim=1)
    return torch.mean(-torch.sum(true_smax * torch.log(preds_smax), dim=1))


def listmle_loss(scores, relevance, mask):
    _, order = torch.sort(relevance, dim=-1, descending=True, stable=True)
    scores_sorted = torch.gather(scores, 1, order)
    mask_sorted = torch.gather(mask, 1, order)
    scores_sorted = scores_sorted.masked_fill(~mask_sorted, float("-inf"))
    # log sum_{j >= i} exp(s_j): the reversed running log-sum-exp
    tail_lse = torch.logcumsumexp(scores_sorted.flip(-1), dim=-1).flip(-1)
    per_position = torch.where(mask_sorted, tail_lse - scores_sorted, torch.zeros_like(scores_sorted))
    return per_position.sum(-1).mean()


def listmle_loss_allrank(scores, relevance, mask):
    _, order = relevance.sort(descending=True, dim=-1, stable=True)
    preds_sorted = torch.gather(scores, dim=1, index=order)
    mask_sorted = torch.gather(mask, dim=1, index=order)
    preds_sorted = preds_sorted.masked_fill(~mask_sorted, float("-inf"))
    max_pred, _ = preds_sorted.max(dim=1, keepdim=True)
    shifted = preds_sorted - max_pred
    cumsums = torch.cumsum(shifted.exp().flip(dims=[1]), dim=1).flip(dims=[1])
    observation = torch.log(cumsums + EPS) - shifted
    observation = observation.masked_fill(~mask_sorted, 0.0)
    return torch.mean(torch.sum(observation, dim=1))


def gains_of(relevance, mask):
    return torch.where(mask, torch.pow(2.0, relevance) - 1.0, torch.zeros_like(relevance))


def ideal_dcg(relevance, mask, k=None):
    gains = gains_of(relevance, mask)
    k = gains.shape[1] if k is None else k
    ideal, _ = gains.topk(k, dim=1)
    discounts = 1.0 / torch.log2(torch.arange(k, dtype=torch.float32) + 2.0)
    return (ideal * discounts).sum(dim=1)


def ndcg_at_k(scores, relevance, mask, k):
    masked = scores.masked_fill(~mask, float("-inf"))
    _, top = masked.topk(k, dim=1)
    gains = torch.gather(gains_of(relevance, mask), 1, top)
    discounts = 1.0 / torch.log2(torch.arange(k, dtype=torch.float32) + 2.0)
    dcg = (gains * discounts).sum(dim=1)
    idcg = ideal_dcg(relevance, mask, k)
    return torch.where(idcg > 0, dcg / idcg.clamp(min=EPS), torch.ones_like(dcg)).mean()


def lambdarank_lambdas(scores, relevance, mask, sigma=1.0):
    """dC/ds of LambdaRank: for each pair i more relevant than j, -sigma * sigmoid(-sigma (s_i - s_j)) * |dNDCG|."""
    scores = scores.detach()
    order = scores.masked_fill(~mask, float("-inf")).argsort(dim=1, descending=True)
    ranks = order.argsort(dim=1) + 1
    discounts = 1.0 / torch.log2(ranks.float() + 1.0)
    gains = gains_of(relevance, mask)
    idcg = ideal_dcg(relevance, mask).clamp(min=EPS)
    delta_ndcg = torch.abs((gains[:, :, None] - gains[:, None, :]) * (discounts[:, :, None] - discounts[:, None, :]))
    delta_ndcg = delta_ndcg / idcg[:, None, None]
    pair_valid = (relevance[:, :, None] > relevance[:, None, :]) & mask[:, :, None] & mask[:, None, :]
    score_diff = scores[:, :, None] - scores[:, None, :]
    rho = torch.sigmoid(-sigma * score_diff)
    lambda_ij = torch.where(pair_valid, -sigma * rho * delta_ndcg, torch.zeros_like(rho))
    # i is pushed up by its pairs as the winner, down by its pairs as the loser
    lambdas = lambda_ij.sum(dim=2) - lambda_ij.sum(dim=1)
    return lambdas / scores.shape[0], delta_ndcg, pair_valid


def weighted_ranknet_loss(scores, delta_ndcg, pair_valid, sigma=1.0):
    score_diff = scores[:, :, None] - scores[:, None, :]
    pair_loss = F.softplus(-sigma * score_diff) * delta_ndcg
    return torch.where(pair_valid, pair_loss, torch.zeros_like(pair_loss)).sum() / scores.shape[0]


train_x, train_rel, train_mask = make_queries(160)
test_x, test_rel, test_mask = make_queries(80)
print(f"queries train {tuple(train_x.shape)} test {tuple(test_x.shape)} docs per query "
      f"{train_mask.sum(1).float().mean().item():.2f} grades {torch.bincount(train_rel[train_mask].long()).tolist()}")

probe = Scorer()
with torch.no_grad():
    s = probe(test_x[:8])
    a = listmle_loss(s, test_rel[:8], test_mask[:8]).item()
    b = listmle_loss_allrank(s, test_rel[:8], test_mask[:8]).item()
print(f"ListMLE logcumsumexp vs cumsum forms agree {abs(a - b) < 1e-4}")
rel_sorted, order = torch.sort(test_rel[:8], dim=-1, descending=True, stable=True)
ties_in_order = all(
    (order[q][rel_sorted[q] == g].diff() > 0).all().item()
    for q in range(8) for g in rel_sorted[q].unique().tolist()
)
print(f"stable sort keeps ties in index order {ties_in_order}")

probe_scores = probe(test_x[:8])
lambdas, delta_ndcg, pair_valid = lambdarank_lambdas(probe_scores, test_rel[:8], test_mask[:8])
auto = torch.autograd.grad(weighted_ranknet_loss(probe_scores, delta_ndcg, pair_valid), probe_scores)[0]
print(f"lambdas equal the weighted RankNet gradient {torch.allclose(lambdas, auto, atol=1e-6)} "
      f"pairs {int(pair_valid.sum())}")

EPOCHS, BATCH = 25, 32
results = {}
for method in ("listnet", "listmle", "lambdarank"):
    torch.manual_seed(seed + 1)
    model = Scorer()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(train_x))
        total = 0.0
        for start in range(0, len(train_x), BATCH):
            idx = perm[start:start + BATCH]
            x, rel, mask = train_x[idx], train_rel[idx], train_mask[idx]
            optimizer.zero_grad()
            scores = model(x)
            if method == "listnet":
                loss = listnet_loss(scores, rel, mask)
                loss.backward()
            elif method == "listmle":
                loss = listmle_loss(scores, rel, mask)
                loss.backward()
            else:
                lambdas, delta_ndcg, pair_valid = lambdarank_lambdas(scores, rel, mask)
                with torch.no_grad():
                    loss = weighted_ranknet_loss(scores, delta_ndcg, pair_valid)
                scores.backward(lambdas)
            optimizer.step()
            total += loss.item() * len(idx)
        if epoch % 8 == 0 or epoch == EPOCHS - 1:
            model.eval()
            with torch.no_grad():
                ndcg5 = ndcg_at_k(model(test_x), test_rel, test_mask, 5).item()
            print(f"{method} epoch {epoch:2d} loss {total / len(train_x):.4f} test NDCG@5 {ndcg5:.4f}")
    model.eval()
    with torch.no_grad():
        scores = model(test_x)
        results[method] = (ndcg_at_k(scores, test_rel, test_mask, 5).item(), ndcg_at_k(scores, test_rel, test_mask, 10).item())

with torch.no_grad():
    random_scores = torch.rand(test_x.shape[:2])
    random_ndcg5 = ndcg_at_k(random_scores, test_rel, test_mask, 5).item()
    oracle_ndcg5 = ndcg_at_k(test_rel, test_rel, test_mask, 5).item()
print(f"random NDCG@5 {random_ndcg5:.4f} oracle NDCG@5 {oracle_ndcg5:.4f}")
for method, (n5, n10) in results.items():
    print(f"{method} NDCG@5 {n5:.4f} NDCG@10 {n10:.4f}")
print("FINAL " + " ".join(f"ndcg5_{m}={r[0]:.4f} ndcg10_{m}={r[1]:.4f}" for m, r in results.items())
      + f" random_ndcg5={random_ndcg5:.4f}")
