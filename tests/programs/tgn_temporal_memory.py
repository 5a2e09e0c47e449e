"""Temporal Graph Networks (Rossi et al. 2020) in the layout of twitter-research/tgn, on a synthetic
bipartite user-item interaction stream with repeat consumption (a user mostly returns to the items
it touched last, so per-node memory carries the signal) and a fixed taste for a group of items.

Modules as the repo writes them: ``TimeEncode`` (``nn.Linear(1, dim)`` with the fixed
``1 / 10 ** np.linspace(0, 9, dim)`` frequencies, ``torch.cos(self.w(t.unsqueeze(-1)))``), ``Memory``
(a ``memory`` tensor, ``last_update`` times and stored raw messages per node, ``detach_memory`` by
``memory.detach_()``), raw messages ``torch.cat([mem[src], mem[dst], edge_feat, time_enc], 1)``,
``LastMessageAggregator`` (here by ``torch.unique(..., return_inverse=True)`` + ``scatter_reduce(...,
'amax', include_self=False)`` on times and positions, checked against the repo's per-node list loop),
``GRUMemoryUpdater`` (``nn.GRUCell``), the JODIE-style time-projection embedding
``memory * (1 + self.embedding_layer(time_diffs.unsqueeze(1)))``, ``MergeLayer`` as the link
predictor, uniform negative destinations and ``F.binary_cross_entropy_with_logits``; each batch first
updates memory from the previous batch's messages (so the gradient reaches the GRU), then stores its
own. Evaluation: average precision computed in torch (sort + cumsum) against NumPy.
"""

# ruff: noqa: UP008  (the repo's own spelling: super(Class, self))

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

N_USERS, N_ITEMS = 20, 20
N_NODES = N_USERS + N_ITEMS
N_EVENTS, EDGE_DIM = 1600, 4
MEMORY_DIM, TIME_DIM = 16, 8
BATCH_SIZE = 100


# ----------------------------------------------------------------------------------- data
def make_stream(rng):
    src, dst, ts, feats = [], [], [], []
    recent = {u: list(rng.choice(N_ITEMS, 2, replace=False)) for u in range(N_USERS)}
    t = 0.0
    for _ in range(N_EVENTS):
        t += rng.exponential(1.0)
        u = rng.randint(N_USERS)
        r = rng.rand()
        if r < 0.6:
            item = recent[u][rng.randint(len(recent[u]))]
        else:  # a new item, mostly from the user's own group of four
            item = 4 * (u % 5) + rng.randint(4) if r < 0.9 else rng.randint(N_ITEMS)
            recent[u] = [recent[u][-1], item]
        src.append(u)
        dst.append(N_USERS + item)
        ts.append(t)
        feats.append(rng.randn(EDGE_DIM) * 0.5 + (item % 4 == 0))
    return (np.array(src), np.array(dst), np.array(ts, dtype=np.float32), np.array(feats, dtype=np.float32))


rng = np.random.RandomState(seed)
sources, destinations, timestamps, edge_features = make_stream(rng)
edge_features = torch.from_numpy(edge_features)
split = int(0.75 * N_EVENTS)
print(f"{N_EVENTS} interactions between {N_USERS} users and {N_ITEMS} items over t = {timestamps[-1]:.1f}")


# ----------------------------------------------------------------------------------- modules
class TimeEncode(torch.nn.Module):
    def __init__(self, dimension):
        super(TimeEncode, self).__init__()
        self.dimension = dimension
        self.w = torch.nn.Linear(1, dimension)
        self.w.weight = torch.nn.Parameter((torch.from_numpy(1 / 10 ** np.linspace(0, 9, dimension)))
                                           .float().reshape(dimension, -1))
        self.w.bias = torch.nn.Parameter(torch.zeros(dimension).float())

    def forward(self, t):
        return torch.cos(self.w(t.unsqueeze(-1)))


class Memory(nn.Module):
    def __init__(self, n_nodes, memory_dimension):
        super(Memory, self).__init__()
        self.n_nodes = n_nodes
        self.memory_dimension = memory_dimension
        self.__init_memory__()

    def __init_memory__(self):
        self.memory = torch.zeros((self.n_nodes, self.memory_dimension))
        self.last_update = torch.zeros(self.n_nodes)
        self.messages = None  # (node ids, messages, times) of the last batch

    def get_memory(self, node_idxs):
        return self.memory[node_idxs, :]

    def detach_memory(self):
        self.memory.detach_()
        if self.messages is not None:
            self.messages = tuple(m.detach() for m in self.messages)


def last_message_aggregate(node_ids, messages, times):
    """The newest message per node; among equal times the later one (the repo keeps messages[-1])."""
    unique_nodes, inverse = torch.unique(node_ids, return_inverse=True)
    last_t = torch.zeros(unique_nodes.numel()).scatter_reduce(0, inverse, times, "amax", include_self=False)
    position = torch.arange(node_ids.numel())
    candidates = torch.where(times == last_t[inverse], position, torch.full_like(position, -1))
    chosen = torch.zeros(unique_nodes.numel(), dtype=torch.long).scatter_reduce(0, inverse, candidates, "amax",
                                                                              include_self=False)
    return unique_nodes, messages[chosen], times[chosen]


def last_message_loop(node_ids, messages, times):
    """twitter-research/tgn's LastMessageAggregator: per-node lists, keep the last."""
    per_node = {}
    for i, node in enumerate(node_ids.tolist()):
        per_node.setdefault(node, []).append((messages[i], times[i]))
    nodes = sorted(per_node)
    return (torch.tensor(nodes), torch.stack([per_node[n][-1][0] for n in nodes]),
            torch.stack([per_node[n][-1][1] for n in nodes]))


class MergeLayer(torch.nn.Module):
    def __init__(self, dim1, dim2, dim3, dim4):
        super().__init__()
        self.fc1 = torch.nn.Linear(dim1 + dim2, dim3)
        self.fc2 = torch.nn.Linear(dim3, dim4)
        self.act = torch.nn.ReLU()
        torch.nn.init.xavier_normal_(self.fc1.weight)
        torch.nn.init.xavier_normal_(self.fc2.weight)

    def forward(self, x1, x2):
        x = torch.cat([x1, x2], dim=1)
        h = self.act(self.fc1(x))
        return self.fc2(h)


class TGN(nn.Module):
    def __init__(self):
        super(TGN, self).__init__()
        self.time_encoder = TimeEncode(TIME_DIM)
        self.memory = Memory(N_NODES, MEMORY_DIM)
        message_dim = 2 * MEMORY_DIM + EDGE_DIM + TIME_DIM
        self.memory_updater = nn.GRUCell(input_size=message_dim, hidden_size=MEMORY_DIM)
        self.node_features = nn.Embedding(N_NODES, MEMORY_DIM)
        self.embedding_layer = nn.Linear(1, MEMORY_DIM)
        self.embedding_layer.weight.data.normal_(0, 1.0 / np.sqrt(MEMORY_DIM))
        self.affinity_score = MergeLayer(MEMORY_DIM, MEMORY_DIM, MEMORY_DIM, 1)

    def update_memory(self):
        if self.memory.messages is None:
            return
        nodes, messages, times = last_message_aggregate(*self.memory.messages)
        updated = self.memory_updater(messages, self.memory.get_memory(nodes))
        memory = self.memory.memory.clone()
        memory[nodes] = updated
        self.memory.memory = memory
        self.memory.last_update[nodes] = times

    def store_messages(self, src, dst, t, feats):
        mem = self.memory.memory.detach()
        src_dt = t - self.memory.last_update[src]
        dst_dt = t - self.memory.last_update[dst]
        src_msg = torch.cat([mem[src], mem[dst], feats, self.time_encoder(src_dt)], 1)
        dst_msg = torch.cat([mem[dst], mem[src], feats, self.time_encoder(dst_dt)], 1)
        self.memory.messages = (torch.cat([src, dst]), torch.cat([src_msg, dst_msg]), torch.cat([t, t]))

    def embed(self, nodes, t):
        time_diffs = (t - self.memory.last_update[nodes]) / 10.0
        source = self.memory.get_memory(nodes) + self.node_features(nodes)
        return source * (1 + self.embedding_layer(time_diffs.unsqueeze(1)))

    def compute_edge_probabilities(self, src, dst, neg, t):
        self.update_memory()
        src_emb, dst_emb, neg_emb = self.embed(src, t), self.embed(dst, t), self.embed(neg, t)
        pos_score = self.affinity_score(src_emb, dst_emb).squeeze(dim=0)
        neg_score = self.affinity_score(src_emb, neg_emb).squeeze(dim=0)
        return pos_score, neg_score


def average_precision_torch(scores, labels):
    order = torch.argsort(scores, descending=True, stable=True)
    hits = labels[order]
    precision = torch.cumsum(hits, 0) / torch.arange(1, hits.numel() + 1, dtype=hits.dtype)
    return ((precision * hits).sum() / hits.sum()).item()


def average_precision_numpy(scores, labels):
    order = np.argsort(-scores, kind="stable")
    hits = labels[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


# ----------------------------------------------------------------------------------- checks
ids = torch.tensor([5, 3, 5, 7, 3, 5, 9])
msgs = torch.randn(7, 3)
tms = torch.tensor([0.5, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0])  # a chronological batch, with ties
agg_a, agg_b = last_message_aggregate(ids, msgs, tms), last_message_loop(ids, msgs, tms)
aggregator_ok = all(torch.equal(a, b) for a, b in zip(agg_a, agg_b))
te = TimeEncode(TIME_DIM)
t_check = torch.tensor([[0.0, 1.5], [3.0, 100.0]])
time_ok = torch.allclose(te(t_check), torch.cos(t_check.unsqueeze(-1) * te.w.weight.view(-1)), atol=1e-6)
print(f"last-message aggregation scatter_reduce == loop: {aggregator_ok}; time encoding == cos(t w): {time_ok}")


# ----------------------------------------------------------------------------------- training
def batches(start, end):
    for s in range(start, end, BATCH_SIZE):
        e = min(end, s + BATCH_SIZE)
        yield (torch.from_numpy(sources[s:e]), torch.from_numpy(destinations[s:e]),
               torch.from_numpy(timestamps[s:e]), edge_features[s:e])


def sample_negatives(n, generator_rng):
    return torch.from_numpy(N_USERS + generator_rng.randint(0, N_ITEMS, n))


def run_eval(model, neg_rng):
    model.eval()
    scores, labels = [], []
    with torch.no_grad():
        for src, dst, t, feats in batches(split, N_EVENTS):
            neg = sample_negatives(src.numel(), neg_rng)
            pos_score, neg_score = model.compute_edge_probabilities(src, dst, neg, t)
            scores.append(torch.cat([pos_score, neg_score]).sigmoid().squeeze(1))
            labels.append(torch.cat([torch.ones(src.numel()), torch.zeros(src.numel())]))
            model.store_messages(src, dst, t, feats)
    model.train()
    scores, labels = torch.cat(scores), torch.cat(labels)
    return average_precision_torch(scores, labels), average_precision_numpy(scores.numpy(), labels.numpy())


def warm_up(model):
    """Memory state at the split point without learning (as tgn's evaluation follows training)."""
    model.memory.__init_memory__()
    with torch.no_grad():
        for src, dst, t, feats in batches(0, split):
            model.update_memory()
            model.store_messages(src, dst, t, feats)


tgn = TGN()
neg_rng = np.random.RandomState(seed + 1)
warm_up(tgn)
untrained_ap, _ = run_eval(tgn, np.random.RandomState(seed + 2))
optimizer = torch.optim.Adam(tgn.parameters(), lr=0.01)
criterion = torch.nn.BCELoss()
for epoch in range(8):
    tgn.memory.__init_memory__()
    total, n_batches = 0.0, 0
    for src, dst, t, feats in batches(0, split):
        optimizer.zero_grad()
        neg = sample_negatives(src.numel(), neg_rng)
        pos_score, neg_score = tgn.compute_edge_probabilities(src, dst, neg, t)
        loss = F.binary_cross_entropy_with_logits(pos_score, torch.ones_like(pos_score))
        loss = loss + F.binary_cross_entropy_with_logits(neg_score, torch.zeros_like(neg_score))
        loss.backward()
        optimizer.step()
        total += loss.item()
        n_batches += 1
        tgn.store_messages(src, dst, t, feats)
        tgn.memory.detach_memory()
    print(f"epoch {epoch + 1} mean loss {total / n_batches:.4f} memory norm {tgn.memory.memory.norm().item():.3f}")

trained_ap, trained_ap_np = run_eval(tgn, np.random.RandomState(seed + 2))
ap_agree = abs(trained_ap - trained_ap_np) < 1e-6
leaf_ok = tgn.memory.memory.grad_fn is None and not tgn.memory.memory.requires_grad
print(f"test AP untrained {untrained_ap:.4f} -> trained {trained_ap:.4f} (numpy {trained_ap_np:.4f}); memory detached: {leaf_ok}")
print(f"FINAL untrained_ap={untrained_ap:.4f} trained_ap={trained_ap:.4f} ap_agree={int(ap_agree)} "
      f"checks={int(aggregator_ok and time_ok and leaf_ok)}")
