"""ConvE (Dettmers et al., AAAI 2018) in the layout of TimDettmers/ConvE (model.py, evaluation.py, main.py), on a
synthetic knowledge graph with planted relations.

The graph: entities fall into clusters; each relation maps a cluster to another (a fixed permutation of the
clusters) and links every head to a few random tails in the target cluster. Reverse relations are added as in
the repo's preprocessing, and the triples are split into train and test. Training is 1-N scoring: every
``(e1, rel)`` of the training set against all entities at once, with a multi-hot target smoothed by
``((1.0 - label_smoothing) * e2_multi) + (1.0 / e2_multi.size(1))`` and ``nn.BCELoss`` on ``torch.sigmoid``.

The model is the repo's: ``Embedding(padding_idx=0)`` for entities and relations, ``xavier_normal_`` on
``weight.data``, the embeddings reshaped to 2-D images by ``view(-1, 1, emb_dim1, emb_dim2)`` and stacked by
``torch.cat([e1_embedded, rel_embedded], 2)``, ``BatchNorm2d(1)``, input ``Dropout``, ``Conv2d(1, 32, (3, 3), 1,
0, bias=True)``, ``BatchNorm2d``, ``F.relu``, feature-map ``Dropout2d``, ``view(x.shape[0], -1)``, ``Linear``,
hidden ``Dropout``, ``BatchNorm1d``, scoring by ``torch.mm(x, self.emb_e.weight.transpose(1, 0))`` and the
per-entity bias ``register_parameter('b', Parameter(torch.zeros(num_entities)))`` added by ``x +=
self.b.expand_as(x)``; Adam with ``weight_decay``.

Evaluation is the repo's filtered ranking: for each test triple the other known tails are filtered out,
``pred1[i][filter1] = 0.0`` then ``pred1[i][e2[i]] = target_value1``, ``torch.sort(pred1, 1,
descending=True)`` and ``np.where(argsort1[i] == e2[i, 0].item())[0][0]``, both directions (head prediction by
the reverse relation). A second route filters logits with ``scores[filter] = float('-inf')`` and counts the rank
by ``torch.argsort`` + ``nonzero``; the two must agree.

Checked: MRR rises above 1.5 times the untrained model's, Hits@1/10 rise, and the two ranking routes agree.
"""

# ruff: noqa: UP008  (the repo's own spelling: super(Class, self))

import os
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn import Parameter
from torch.nn.init import xavier_normal_

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)


class Args:
    embedding_dim = 200
    embedding_shape1 = 10
    input_drop = 0.2
    hidden_drop = 0.3
    feat_drop = 0.2
    use_bias = True
    hidden_size = 32 * 18 * 18  # conv output of the 20 x 20 stacked image
    label_smoothing = 0.1
    lr = 0.01
    l2 = 0.0
    batch_size = 32
    epochs = 16


args = Args()

# ----------------------------------------------------------------------------------- data
N_CLUSTERS, PER_CLUSTER, N_REL, TAILS = 4, 10, 3, 4
num_entities = N_CLUSTERS * PER_CLUSTER + 1  # index 0 is the padding entity, as in the repo's vocab
cluster_of = {e: (e - 1) // PER_CLUSTER for e in range(1, num_entities)}
members = defaultdict(list)
for e, c in cluster_of.items():
    members[c].append(e)
triples = set()
for r in range(N_REL):
    perm = rng.permutation(N_CLUSTERS)
    for e1 in range(1, num_entities):
        for e2 in rng.choice(members[perm[cluster_of[e1]]], TAILS, replace=False):
            triples.add((e1, r + 1, int(e2)))  # relation 0 is padding too
triples = sorted(triples)
order = rng.permutation(len(triples))
n_test = len(triples) // 10
test_triples = [triples[i] for i in order[:n_test]]
train_triples = [triples[i] for i in order[n_test:]]
num_relations = 2 * N_REL + 1  # with reverse relations


def rel_reverse(r):
    return r + N_REL


all_tails = defaultdict(set)  # (e1, rel) -> every known e2, for filtering (train and test)
for e1, r, e2 in triples:
    all_tails[(e1, r)].add(e2)
    all_tails[(e2, rel_reverse(r))].add(e1)
train_tails = defaultdict(set)
for e1, r, e2 in train_triples:
    train_tails[(e1, r)].add(e2)
    train_tails[(e2, rel_reverse(r))].add(e1)
train_keys = sorted(train_tails)
print(f"graph: {num_entities - 1} entities, {N_REL} relations (+ reverse), {len(train_triples)} train / "
      f"{len(test_triples)} test triples, {len(train_keys)} (e1, rel) training queries")


# ----------------------------------------------------------------------------------- model
class ConvE(torch.nn.Module):
    def __init__(self, args, num_entities, num_relations):
        super(ConvE, self).__init__()
        self.emb_e = torch.nn.Embedding(num_entities, args.embedding_dim, padding_idx=0)
        self.emb_rel = torch.nn.Embedding(num_relations, args.embedding_dim, padding_idx=0)
        self.inp_drop = torch.nn.Dropout(args.input_drop)
        self.hidden_drop = torch.nn.Dropout(args.hidden_drop)
        self.feature_map_drop = torch.nn.Dropout2d(args.feat_drop)
        self.loss = torch.nn.BCELoss()
        self.emb_dim1 = args.embedding_shape1
        self.emb_dim2 = args.embedding_dim // self.emb_dim1

        self.conv1 = torch.nn.Conv2d(1, 32, (3, 3), 1, 0, bias=args.use_bias)
        self.bn0 = torch.nn.BatchNorm2d(1)
        self.bn1 = torch.nn.BatchNorm2d(32)
        self.bn2 = torch.nn.BatchNorm1d(args.embedding_dim)
        self.register_parameter("b", Parameter(torch.zeros(num_entities)))
        self.fc = torch.nn.Linear(args.hidden_size, args.embedding_dim)
        print(num_entities, num_relations)

    def init(self):
        xavier_normal_(self.emb_e.weight.data)
        xavier_normal_(self.emb_rel.weight.data)

    def forward(self, e1, rel):
        e1_embedded = self.emb_e(e1).view(-1, 1, self.emb_dim1, self.emb_dim2)
        rel_embedded = self.emb_rel(rel).view(-1, 1, self.emb_dim1, self.emb_dim2)

        stacked_inputs = torch.cat([e1_embedded, rel_embedded], 2)

        stacked_inputs = self.bn0(stacked_inputs)
        x = self.inp_drop(stacked_inputs)
        x = self.conv1(x)
        x = self.bn1(x)
        x = F.relu(x)
        x = self.feature_map_drop(x)
        x = x.view(x.shape[0], -1)
        x = self.fc(x)
        x = self.hidden_drop(x)
        x = self.bn2(x)
        x = F.relu(x)
        x = torch.mm(x, self.emb_e.weight.transpose(1, 0))
        x += self.b.expand_as(x)
        pred = torch.sigmoid(x)

        return pred


# ----------------------------------------------------------------------------------- evaluation
def ranking_and_hits(model, triples):
    """The repo's evaluation.py: filtered ranks of the tail (by rel) and of the head (by the reverse rel)."""
    hits = [[] for _ in range(10)]
    ranks = []
    e1 = torch.tensor([[t[0]] for t in triples])
    rel = torch.tensor([[t[1]] for t in triples])
    e2 = torch.tensor([[t[2]] for t in triples])
    rel_rev = rel + N_REL
    pred1 = model.forward(e1, rel)
    pred2 = model.forward(e2, rel_rev)
    pred1, pred2 = pred1.data, pred2.data
    for i in range(len(triples)):
        # these filters contain ALL labels
        filter1 = torch.tensor(sorted(all_tails[(e1[i, 0].item(), rel[i, 0].item())]), dtype=torch.long)
        filter2 = torch.tensor(sorted(all_tails[(e2[i, 0].item(), rel_rev[i, 0].item())]), dtype=torch.long)
        # save the prediction that is relevant
        target_value1 = pred1[i, e2[i, 0].item()].item()
        target_value2 = pred2[i, e1[i, 0].item()].item()
        # zero all known cases (this are not interesting)
        # this corresponds to the filtered setting
        pred1[i][filter1] = 0.0
        pred2[i][filter2] = 0.0
        # write base the saved values
        pred1[i][e2[i]] = target_value1
        pred2[i][e1[i]] = target_value2
    # sort and rank
    max_values, argsort1 = torch.sort(pred1, 1, descending=True)
    max_values, argsort2 = torch.sort(pred2, 1, descending=True)
    argsort1 = argsort1.cpu().numpy()
    argsort2 = argsort2.cpu().numpy()
    for i in range(len(triples)):
        # find the rank of the target entities
        rank1 = np.where(argsort1[i] == e2[i, 0].item())[0][0]
        rank2 = np.where(argsort2[i] == e1[i, 0].item())[0][0]
        # rank+1, since the lowest rank is rank 1 not rank 0
        ranks.append(rank1 + 1)
        ranks.append(rank2 + 1)
        for hits_level in range(10):
            if rank1 <= hits_level:
                hits[hits_level].append(1.0)
            else:
                hits[hits_level].append(0.0)
            if rank2 <= hits_level:
                hits[hits_level].append(1.0)
            else:
                hits[hits_level].append(0.0)
    return {
        "hits1": np.mean(hits[0]),
        "hits10": np.mean(hits[9]),
        "mr": np.mean(ranks),
        "mrr": np.mean(1.0 / np.array(ranks)),
        "ranks": ranks,
    }


def logit_ranks(model, triples):
    """A second route: the known tails other than the target filtered by -inf, ranks from argsort + nonzero."""
    e1 = torch.tensor([t[0] for t in triples]).view(-1, 1)
    rel = torch.tensor([t[1] for t in triples]).view(-1, 1)
    e2 = torch.tensor([t[2] for t in triples]).view(-1, 1)
    ranks = []
    for heads, rels, tails in ((e1, rel, e2), (e2, rel + N_REL, e1)):
        scores = model(heads, rels).clone()
        filt = torch.zeros_like(scores, dtype=torch.bool)
        for i in range(len(triples)):
            known = list(all_tails[(heads[i, 0].item(), rels[i, 0].item())] - {tails[i, 0].item()})
            filt[i, known] = True
        scores[filt] = float("-inf")
        order = torch.argsort(scores, dim=1, descending=True)
        ranks.append((order == tails).nonzero()[:, 1] + 1)
    return torch.stack(ranks, dim=1).flatten()


# ----------------------------------------------------------------------------------- training
model = ConvE(args, num_entities, num_relations)
model.init()
opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.l2)
params = [value.numel() for value in model.parameters()]
print(f"parameters: {np.sum(params)}")

model.eval()
with torch.no_grad():
    before = ranking_and_hits(model, test_triples)
print(f"untrained: MRR {before['mrr']:.4f}  Hits@1 {before['hits1']:.4f}  Hits@10 {before['hits10']:.4f}  MR {before['mr']:.2f}")

for epoch in range(args.epochs):
    model.train()
    perm = torch.randperm(len(train_keys))
    total, n = 0.0, 0
    for start in range(0, len(train_keys), args.batch_size):
        batch = [train_keys[j] for j in perm[start:start + args.batch_size].tolist()]
        if len(batch) < 2:
            continue
        e1 = torch.tensor([[k[0]] for k in batch])
        rel = torch.tensor([[k[1]] for k in batch])
        e2_multi = torch.zeros(len(batch), num_entities)
        for i, k in enumerate(batch):
            e2_multi[i, list(train_tails[k])] = 1.0
        # label smoothing
        e2_multi = ((1.0 - args.label_smoothing) * e2_multi) + (1.0 / e2_multi.size(1))

        opt.zero_grad()
        pred = model.forward(e1, rel)
        loss = model.loss(pred, e2_multi)
        loss.backward()
        opt.step()
        total += loss.item() * len(batch)
        n += len(batch)
    if epoch % 3 == 0 or epoch == args.epochs - 1:
        print(f"epoch {epoch:2d}  train loss {total / n:.5f}")

model.eval()
with torch.no_grad():
    after = ranking_and_hits(model, test_triples)
    second = logit_ranks(model, test_triples)
print(f"trained:   MRR {after['mrr']:.4f}  Hits@1 {after['hits1']:.4f}  Hits@10 {after['hits10']:.4f}  MR {after['mr']:.2f}")
repo_ranks = torch.tensor(after["ranks"])
routes_agree = torch.equal(repo_ranks, second)
mismatches = int((repo_ranks != second).sum())
print(f"sort/np.where ranks == -inf/argsort ranks: {routes_agree} ({mismatches} differ)")

print(f"FINAL mrr_before={before['mrr']:.4f} mrr={after['mrr']:.4f} hits1={after['hits1']:.4f} "
      f"hits10={after['hits10']:.4f} rank_mismatches={mismatches} learned={int(after['mrr'] > 1.5 * before['mrr'])}")
