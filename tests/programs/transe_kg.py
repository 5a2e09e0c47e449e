"""TransE knowledge-graph embeddings as mklimasz/TransE-PyTorch writes them, beside a shorter
OpenKE-like edition, on a synthetic graph made with NumPy (a 6x6 grid of places with
``right_of``/``above``/``two_right_of`` translations and a many-to-one ``in_region`` relation):
``nn.Embedding(count + 1, dim, padding_idx=count)`` tables with
``weight.data.uniform_(-6 / np.sqrt(dim), 6 / np.sqrt(dim))``, relations L1-normalised once by
``weight.data[:-1, :].div_(....norm(p=1, dim=1, keepdim=True))``, entities L2-renormalised in every
``forward`` the same way, ``(h + r - t).norm(p=self.norm, dim=1)``, corrupted triples by
``torch.randint(high=2, size=...)`` + ``torch.randint(high=n)`` + ``torch.where``,
``nn.MarginRankingLoss(margin=1.0, reduction='none')`` against ``torch.tensor([-1],
dtype=torch.long)``, ``loss.mean().backward()`` with SGD; the OpenKE edition renormalises by
``self.ent.weight.data = F.normalize(self.ent.weight.data, p=2, dim=1)``, scores by
``torch.norm(h + r - t, p=1, dim=1)`` and checks an ``nn.Embedding(max_norm=1.0)`` lookup against it;
evaluation all-entities by ``entity_ids.repeat`` + ``torch.stack(..., dim=2).reshape(-1, 3)``,
the repo's ``hit_at_k`` (``topk(largest=False)``, ``torch.where(indices == gt, one, zero)``) and
``mrr`` (``argsort``, ``(indices == gt).nonzero()[:, 1]``), and filtered mean rank / Hits@10 with
known triples ``masked_fill``-ed to ``float('inf')``.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils import data as torch_data

seed = int(os.environ.get("PROGRAM_SEED", "0"))
np.random.seed(seed)
torch.manual_seed(seed)
device = torch.device('cpu')

# ---- the graph: a 6x6 grid of places, three regions ----
side = 6
entity2id = {f"place_{x}_{y}": x * side + y for x in range(side) for y in range(side)}
for k in range(3):
    entity2id[f"region_{k}"] = side * side + k
relation2id = {"right_of": 0, "above": 1, "two_right_of": 2, "in_region": 3}
triples = []
for x in range(side):
    for y in range(side):
        e = x * side + y
        if x + 1 < side:
            triples.append((e, 0, (x + 1) * side + y))
        if y + 1 < side:
            triples.append((e, 1, x * side + y + 1))
        if x + 2 < side:
            triples.append((e, 2, (x + 2) * side + y))
        triples.append((e, 3, side * side + min(x // 2, 2)))
triples = np.array(triples)
rng = np.random.RandomState(seed)
perm = rng.permutation(len(triples))
n_test = 16
train_triples, test_triples = triples[perm[n_test:]], triples[perm[:n_test]]
print(f"entities {len(entity2id)} relations {len(relation2id)} train {len(train_triples)} test {len(test_triples)}")


class FB15KDataset(torch_data.Dataset):
    """Dataset implementation for handling FB15K and FB15K-237."""

    def __init__(self, triples):
        self.data = triples

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        head_id, relation_id, tail_id = self.data[index]
        return int(head_id), int(relation_id), int(tail_id)


class TransE(nn.Module):

    def __init__(self, entity_count, relation_count, device, norm=1, dim=100, margin=1.0):
        super(TransE, self).__init__()  # noqa: UP008  (the repo's own call)
        self.entity_count = entity_count
        self.relation_count = relation_count
        self.device = device
        self.norm = norm
        self.dim = dim
        self.entities_emb = self._init_enitity_emb()
        self.relations_emb = self._init_relation_emb()
        self.criterion = nn.MarginRankingLoss(margin=margin, reduction='none')

    def _init_enitity_emb(self):
        entities_emb = nn.Embedding(num_embeddings=self.entity_count + 1,
                                    embedding_dim=self.dim,
                                    padding_idx=self.entity_count)
        uniform_range = 6 / np.sqrt(self.dim)
        entities_emb.weight.data.uniform_(-uniform_range, uniform_range)
        return entities_emb

    def _init_relation_emb(self):
        relations_emb = nn.Embedding(num_embeddings=self.relation_count + 1,
                                     embedding_dim=self.dim,
                                     padding_idx=self.relation_count)
        uniform_range = 6 / np.sqrt(self.dim)
        relations_emb.weight.data.uniform_(-uniform_range, uniform_range)
        # -1 to avoid nan for OOV vector
        relations_emb.weight.data[:-1, :].div_(relations_emb.weight.data[:-1, :].norm(p=1, dim=1, keepdim=True))
        return relations_emb

    def forward(self, positive_triplets: torch.LongTensor, negative_triplets: torch.LongTensor):
        """Return model losses based on the input.

        :param positive_triplets: triplets of positives in Bx3 shape (B - batch, 3 - head, relation and tail)
        :param negative_triplets: triplets of negatives in Bx3 shape (B - batch, 3 - head, relation and tail)
        :return: tuple of the model loss, positive triplets loss component, negative triples loss component
        """
        # -1 to avoid nan for OOV vector
        self.entities_emb.weight.data[:-1, :].div_(self.entities_emb.weight.data[:-1, :].norm(p=2, dim=1, keepdim=True))

        assert positive_triplets.size()[1] == 3
        positive_distances = self._distance(positive_triplets)

        assert negative_triplets.size()[1] == 3
        negative_distances = self._distance(negative_triplets)

        return self.loss(positive_distances, negative_distances), positive_distances, negative_distances

    def predict(self, triplets: torch.LongTensor):
        """Calculated dissimilarity score for given triplets.

        :param triplets: triplets in Bx3 shape (B - batch, 3 - head, relation and tail)
        :return: dissimilarity score for given triplets
        """
        return self._distance(triplets)

    def loss(self, positive_distances, negative_distances):
        target = torch.tensor([-1], dtype=torch.long, device=self.device)
        return self.criterion(positive_distances, negative_distances, target)

    def _distance(self, triplets):
        """Triplets should have shape Bx3 where dim 3 are head id, relation id, tail id."""
        assert triplets.size()[1] == 3
        heads = triplets[:, 0]
        relations = triplets[:, 1]
        tails = triplets[:, 2]
        return (self.entities_emb(heads) + self.relations_emb(relations) - self.entities_emb(tails)).norm(p=self.norm,
                                                                                                          dim=1)


class TransEOpenKE(nn.Module):
    """The OpenKE-style edition: no padding rows, renormalisation by assignment, torch.norm."""

    def __init__(self, ent_tot, rel_tot, dim=20, p_norm=1, margin=1.0):
        super().__init__()
        self.ent = nn.Embedding(ent_tot, dim)
        self.rel = nn.Embedding(rel_tot, dim)
        bound = 6 / np.sqrt(dim)
        nn.init.uniform_(self.ent.weight, -bound, bound)
        nn.init.uniform_(self.rel.weight, -bound, bound)
        self.rel.weight.data = F.normalize(self.rel.weight.data, p=2, dim=1)
        self.p_norm = p_norm
        self.criterion = nn.MarginRankingLoss(margin=margin)

    def normalize_entities(self):
        self.ent.weight.data = F.normalize(self.ent.weight.data, p=2, dim=1)

    def score(self, h, r, t):
        return torch.norm(self.ent(h) + self.rel(r) - self.ent(t), p=self.p_norm, dim=1)

    def forward(self, pos, neg):
        p_score = self.score(pos[:, 0], pos[:, 1], pos[:, 2])
        n_score = self.score(neg[:, 0], neg[:, 1], neg[:, 2])
        return self.criterion(p_score, n_score, torch.tensor([-1])), p_score, n_score


# ---- metric.py ----
def hit_at_k(predictions: torch.Tensor, ground_truth_idx: torch.Tensor, device: torch.device, k: int = 10) -> int:
    """Calculates number of hits@k."""
    assert predictions.size(0) == ground_truth_idx.size(0)

    zero_tensor = torch.tensor([0], device=device)
    one_tensor = torch.tensor([1], device=device)
    _, indices = predictions.topk(k=k, largest=False)
    return torch.where(indices == ground_truth_idx, one_tensor, zero_tensor).sum().item()


def mrr(predictions: torch.Tensor, ground_truth_idx: torch.Tensor) -> float:
    """Calculates mean reciprocal rank (MRR) for given predictions and ground truth values."""
    indices = predictions.argsort()
    return (1.0 / (indices == ground_truth_idx).nonzero()[:, 1].float().add(1.0)).sum().item()


entities_count = len(entity2id)
all_triples = torch.from_numpy(triples)
known = torch.zeros(len(relation2id), entities_count, entities_count, dtype=torch.bool)
known[all_triples[:, 1], all_triples[:, 0], all_triples[:, 2]] = True


def test(predict, data_generator, device):
    examples_count = 0.0
    hits_at_1 = 0.0
    hits_at_10 = 0.0
    mrr_sum = 0.0
    filtered_ranks = []

    entity_ids = torch.arange(end=entities_count, device=device).unsqueeze(0)
    for head, relation, tail in data_generator:
        current_batch_size = head.size()[0]

        head, relation, tail = head.to(device), relation.to(device), tail.to(device)
        all_entities = entity_ids.repeat(current_batch_size, 1)
        heads = head.reshape(-1, 1).repeat(1, all_entities.size()[1])
        relations = relation.reshape(-1, 1).repeat(1, all_entities.size()[1])
        tails = tail.reshape(-1, 1).repeat(1, all_entities.size()[1])

        # Check all possible tails
        triplets = torch.stack((heads, relations, all_entities), dim=2).reshape(-1, 3)
        tails_predictions = predict(triplets).reshape(current_batch_size, -1)
        # Check all possible heads
        triplets = torch.stack((all_entities, relations, tails), dim=2).reshape(-1, 3)
        heads_predictions = predict(triplets).reshape(current_batch_size, -1)

        # Concat predictions
        predictions = torch.cat((tails_predictions, heads_predictions), dim=0)
        ground_truth_entity_id = torch.cat((tail.reshape(-1, 1), head.reshape(-1, 1)))

        hits_at_1 += hit_at_k(predictions, ground_truth_entity_id, device=device, k=1)
        hits_at_10 += hit_at_k(predictions, ground_truth_entity_id, device=device, k=10)
        mrr_sum += mrr(predictions, ground_truth_entity_id)
        examples_count += predictions.size()[0]

        # filtered: every other true answer is taken out of the ranking
        other_tails = known[relation, head].clone()
        other_tails[torch.arange(current_batch_size), tail] = False
        other_heads = known[relation, :, tail].clone()
        other_heads[torch.arange(current_batch_size), head] = False
        filtered = predictions.masked_fill(torch.cat((other_tails, other_heads), dim=0), float('inf'))
        order = filtered.argsort(dim=1)
        filtered_ranks.append((order == ground_truth_entity_id).nonzero()[:, 1] + 1)

    ranks = torch.cat(filtered_ranks).float()
    return (hits_at_1 / examples_count, hits_at_10 / examples_count, mrr_sum / examples_count,
            ranks.mean().item(), (ranks <= 10).float().mean().item())


def corrupt(local_heads, local_relations, local_tails):
    # Generate binary tensor to replace either head or tail. 1 means replace head, 0 means replace tail.
    head_or_tail = torch.randint(high=2, size=local_heads.size(), device=device)
    random_entities = torch.randint(high=len(entity2id), size=local_heads.size(), device=device)
    broken_heads = torch.where(head_or_tail == 1, random_entities, local_heads)
    broken_tails = torch.where(head_or_tail == 0, random_entities, local_tails)
    return torch.stack((broken_heads, local_relations, broken_tails), dim=1)


batch_size, epochs, learning_rate, dim = 32, 60, 0.5, 20
train_generator = torch_data.DataLoader(FB15KDataset(train_triples), batch_size=batch_size, shuffle=True)
test_generator = torch_data.DataLoader(FB15KDataset(test_triples), batch_size=64)

model = TransE(entity_count=len(entity2id), relation_count=len(relation2id), dim=dim, margin=1.0,
               device=device, norm=1)
optimizer = optim.SGD(model.parameters(), lr=learning_rate)
rel_norms = model.relations_emb.weight.data[:-1].norm(p=1, dim=1)
print(f"relations L1-normalised {torch.allclose(rel_norms, torch.ones(len(relation2id)))}")
with torch.no_grad():
    model.eval()
    start = test(model.predict, test_generator, device)

for epoch_id in range(1, epochs + 1):
    model.train()
    loss_impacting_samples_count = 0
    samples_count = 0
    total = 0.0
    for local_heads, local_relations, local_tails in train_generator:
        local_heads, local_relations, local_tails = (local_heads.to(device), local_relations.to(device),
                                                     local_tails.to(device))

        positive_triples = torch.stack((local_heads, local_relations, local_tails), dim=1)
        negative_triples = corrupt(local_heads, local_relations, local_tails)

        optimizer.zero_grad()

        loss, pd, nd = model(positive_triples, negative_triples)
        loss.mean().backward()

        loss = loss.data.cpu()
        loss_impacting_samples_count += loss.nonzero().size()[0]
        samples_count += loss.size()[0]
        total += loss.sum().item()

        optimizer.step()
    if epoch_id % 20 == 0:
        model.eval()
        with torch.no_grad():
            h1, h10, m, mean_rank, fh10 = test(model.predict, test_generator, device)
        print(f"epoch {epoch_id} loss {total / samples_count:.4f} loss impacting samples "
              f"{loss_impacting_samples_count / samples_count:.3f} hits@1 {h1:.3f} hits@10 {h10:.3f} mrr {m:.3f} "
              f"filtered mean rank {mean_rank:.2f} filtered hits@10 {fh10:.3f}")

print(f"padding rows get no gradient {model.entities_emb.weight.grad[-1].abs().sum().item() == 0.0} "
      f"{model.relations_emb.weight.grad[-1].abs().sum().item() == 0.0}")
with torch.no_grad():
    model(positive_triples, negative_triples)  # the forward renormalises the entity rows
entity_norms = model.entities_emb.weight.data[:-1].norm(p=2, dim=1)
print(f"entities renormalised by the forward {torch.allclose(entity_norms, torch.ones(len(entity2id)))}")
print(f"start filtered mean rank {start[3]:.2f}")

# ---- the OpenKE-style edition ----
openke = TransEOpenKE(len(entity2id), len(relation2id), dim=dim)
opt2 = optim.Adam(openke.parameters(), lr=0.01)
train_t = torch.from_numpy(train_triples)
for _epoch in range(1, 41):
    order = torch.randperm(len(train_t))
    for start_i in range(0, len(order), batch_size):
        pos = train_t[order[start_i:start_i + batch_size]]
        neg = corrupt(pos[:, 0], pos[:, 1], pos[:, 2])
        openke.normalize_entities()
        loss, _, _ = openke(pos, neg)
        opt2.zero_grad()
        loss.backward()
        opt2.step()
openke.normalize_entities()
clipped = nn.Embedding(len(entity2id), dim, max_norm=1.0)
clipped.weight.data.copy_(openke.ent.weight.data * 3)

# max_norm renormalises the rows it looks up to norm <= 1, in place, pointing the same way
looked_up = clipped(torch.arange(len(entity2id)))
same_direction = torch.allclose(F.normalize(looked_up, dim=1), openke.ent.weight.data, atol=1e-5)
print(f"max_norm rows at most 1 {bool((clipped.weight.data.norm(dim=1) <= 1 + 1e-5).all())} "
      f"same direction as F.normalize {same_direction}")
with torch.no_grad():
    o_h1, o_h10, o_mrr, o_mean_rank, o_fh10 = test(lambda t: openke.score(t[:, 0], t[:, 1], t[:, 2]),
                                                   test_generator, device)
print(f"openke hits@10 {o_h10:.3f} mrr {o_mrr:.3f} filtered mean rank {o_mean_rank:.2f} filtered hits@10 {o_fh10:.3f}")

print(f"FINAL hits10={h10:.4f} mrr={m:.4f} filtered_mean_rank={mean_rank:.3f} filtered_hits10={fh10:.4f} "
      f"start_mean_rank={start[3]:.3f} openke_filtered_mean_rank={o_mean_rank:.3f} openke_mrr={o_mrr:.4f}")
