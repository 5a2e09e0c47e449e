"""GRU4Rec (Hidasi et al., ICLR 2016; Hidasi & Karatzoglou, CIKM 2018) in the layout of
hidasib/GRU4Rec_PyTorch and the common PyTorch port, on synthetic sessions with sequential item patterns.

Sessions follow a hidden item-to-item transition table (the next click is the current item's successor
most of the time, otherwise a popularity-skewed random item). Clicks are stored as one sorted array with
``click_offsets`` per session, and a ``SessionDataLoader`` serves session-parallel mini-batches: each
slot steps through its own session, finished slots are refilled with the next session, and their indices
come back as ``mask`` so the trainer zeroes those rows of the detached hidden state in place
(``hidden[:, mask, :] = 0``).

The model takes items through ``nn.Embedding`` or a one-hot buffer filled by ``scatter_``, runs ``nn.GRU``
one step at a time, and scores in-batch negatives with ``logit = F.linear(output, self.item_emb(target),
self.item_bias(target).squeeze(1))`` (the other targets of the batch are the negatives). Losses: TOP1,
BPR (``-torch.log(torch.mean(F.sigmoid(diff)))``) and BPR-max (softmax-weighted over the negatives, with
the ``bpreg`` score regulariser), built on ``torch.diag(logit)``; training uses ``Adagrad`` and
``clip_grad_norm_``. Evaluation scores every item, takes ``torch.topk(.., 20)`` and computes Recall@20 and
MRR@20 from ``(indices == targets.view(-1, 1)).nonzero()``.

Checked: Recall@20/MRR@20 of the BPR-max and TOP1 models against a most-popular baseline; the
session-parallel evaluation with in-place hidden resets must give the same scores as running each
session on its own from a zero state; the one-hot route equals the embedding route when the one-hot
model's GRU input weights are the embedding times the embedding model's.
"""

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

N_ITEMS = 150
N_TRAIN_SESSIONS, N_TEST_SESSIONS = 420, 120
BATCH_SIZE = 32
EMBEDDING, HIDDEN = 32, 48
EPOCHS = 3
K = 20

# ----------------------------------------------------------------------------------- data
successor = rng.permutation(N_ITEMS)
popularity = 1.0 / np.arange(1, N_ITEMS + 1) ** 0.8
popularity = popularity / popularity.sum()


def make_sessions(n):
    sessions = []
    for _ in range(n):
        length = rng.randint(3, 11)
        item = rng.choice(N_ITEMS, p=popularity)
        clicks = [item]
        for _ in range(length - 1):
            item = successor[item] if rng.rand() < 0.7 else rng.choice(N_ITEMS, p=popularity)
            clicks.append(item)
        sessions.append(clicks)
    return sessions


class SessionDataset:
    def __init__(self, sessions):
        self.item_idx = np.concatenate([np.asarray(s, dtype=np.int64) for s in sessions])
        self.click_offsets = np.zeros(len(sessions) + 1, dtype=np.int64)
        self.click_offsets[1:] = np.cumsum([len(s) for s in sessions])
        self.session_idx_arr = np.arange(len(sessions))


class SessionDataLoader:
    def __init__(self, dataset, batch_size=50):
        self.dataset = dataset
        self.batch_size = batch_size

    def __iter__(self):
        click_offsets = self.dataset.click_offsets
        session_idx_arr = self.dataset.session_idx_arr
        iters = np.arange(self.batch_size)
        maxiter = iters.max()
        start = click_offsets[session_idx_arr[iters]]
        end = click_offsets[session_idx_arr[iters] + 1]
        mask = []
        finished = False
        while not finished:
            minlen = (end - start).min()
            idx_target = self.dataset.item_idx[start]
            for i in range(minlen - 1):
                idx_input = idx_target
                idx_target = self.dataset.item_idx[start + i + 1]
                input = torch.LongTensor(idx_input)
                target = torch.LongTensor(idx_target)
                yield input, target, mask
                mask = []
            start = start + (minlen - 1)
            mask = np.arange(len(iters))[(end - start) <= 1]
            for idx in mask:
                maxiter += 1
                if maxiter >= len(click_offsets) - 1:
                    finished = True
                    break
                iters[idx] = maxiter
                start[idx] = click_offsets[session_idx_arr[maxiter]]
                end[idx] = click_offsets[session_idx_arr[maxiter] + 1]


train_sessions = make_sessions(N_TRAIN_SESSIONS)
test_sessions = make_sessions(N_TEST_SESSIONS)
train_data, test_data = SessionDataset(train_sessions), SessionDataset(test_sessions)
print(f"train clicks {len(train_data.item_idx)} sessions {N_TRAIN_SESSIONS}; test clicks {len(test_data.item_idx)}")


# ----------------------------------------------------------------------------------- model
class GRU4REC(nn.Module):
    def __init__(self, n_items, hidden_size, embedding_dim=-1, batch_size=BATCH_SIZE):
        super().__init__()
        self.n_items = n_items
        self.hidden_size = hidden_size
        self.embedding_dim = embedding_dim
        self.batch_size = batch_size
        if self.embedding_dim != -1:
            self.look_up = nn.Embedding(n_items, self.embedding_dim)
            self.gru = nn.GRU(self.embedding_dim, self.hidden_size, 1)
        else:
            self.register_buffer("onehot_buffer", torch.zeros(batch_size, n_items), persistent=False)
            self.gru = nn.GRU(n_items, self.hidden_size, 1)
        self.item_emb = nn.Embedding(n_items, hidden_size)
        self.item_bias = nn.Embedding(n_items, 1)
        self.reset_parameters()

    def reset_parameters(self):
        for p in self.parameters():
            nn.init.uniform_(p, -0.1, 0.1)
        nn.init.zeros_(self.item_bias.weight)

    def onehot_encode(self, input):
        self.onehot_buffer.zero_()
        index = input.view(-1, 1)
        one_hot = self.onehot_buffer[: len(input)].scatter_(1, index, 1)
        return one_hot

    def forward(self, input, hidden):
        if self.embedding_dim == -1:
            embedded = self.onehot_encode(input).unsqueeze(0)
        else:
            embedded = self.look_up(input.unsqueeze(0))
        output, hidden = self.gru(embedded, hidden)
        return output.view(-1, output.size(-1)), hidden

    def score_targets(self, output, target):
        return F.linear(output, self.item_emb(target), self.item_bias(target).squeeze(1))

    def score_all(self, output):
        return F.linear(output, self.item_emb.weight, self.item_bias.weight.squeeze(1))

    def init_hidden(self, batch_size=None):
        return torch.zeros(1, batch_size or self.batch_size, self.hidden_size)


def reset_hidden(hidden, mask):
    if len(mask) != 0:
        hidden[:, mask, :] = 0
    return hidden


class TOP1Loss(nn.Module):
    def forward(self, logit):
        diff = -(torch.diag(logit).view(-1, 1).expand_as(logit) - logit)
        return torch.sigmoid(diff).mean() + torch.sigmoid(logit**2).mean()


class BPRLoss(nn.Module):
    def forward(self, logit):
        diff = torch.diag(logit).view(-1, 1).expand_as(logit) - logit
        return -torch.log(torch.mean(F.sigmoid(diff)))


class BPR_max(nn.Module):
    def __init__(self, bpreg=1.0):
        super().__init__()
        self.bpreg = bpreg

    def softmax_neg(self, X):
        hm = 1.0 - torch.eye(*X.shape, out=torch.empty_like(X))
        X = X * hm
        e_x = torch.exp(X - X.max(dim=1, keepdim=True)[0]) * hm
        return e_x / e_x.sum(dim=1, keepdim=True)

    def forward(self, logit):
        softmax_scores = self.softmax_neg(logit)
        target_scores = torch.diag(logit).view(-1, 1)
        loss = -torch.log(torch.sum(torch.sigmoid(target_scores - logit) * softmax_scores, dim=1) + 1e-24)
        loss = loss + self.bpreg * torch.sum((logit**2) * softmax_scores, dim=1)
        return torch.mean(loss)


LOSSES = {"top1": TOP1Loss(), "bpr": BPRLoss(), "bpr-max": BPR_max(bpreg=0.5)}


def train(loss_type, embedding_dim=EMBEDDING):
    model = GRU4REC(N_ITEMS, HIDDEN, embedding_dim)
    optimizer = torch.optim.Adagrad(model.parameters(), lr=0.1, eps=1e-6)
    loss_func = LOSSES[loss_type]
    for epoch in range(EPOCHS):
        model.train()
        hidden = model.init_hidden()
        losses = []
        for input, target, mask in SessionDataLoader(train_data, BATCH_SIZE):
            hidden = reset_hidden(hidden, mask).detach()
            output, hidden = model(input, hidden)
            logit = model.score_targets(output, target)
            loss = loss_func(logit)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            losses.append(loss.item())
        print(f"{loss_type} epoch {epoch + 1} steps {len(losses)} loss {np.mean(losses):.4f}")
    return model


def get_recall(indices, targets):
    targets = targets.view(-1, 1).expand_as(indices)
    hits = (targets == indices).nonzero()
    if len(hits) == 0:
        return 0
    n_hits = (targets == indices).nonzero()[:, :-1].size(0)
    return float(n_hits) / targets.size(0)


def get_mrr(indices, targets):
    tmp = targets.view(-1, 1)
    targets = tmp.expand_as(indices)
    hits = (targets == indices).nonzero()
    ranks = hits[:, -1] + 1
    ranks = ranks.float()
    rranks = torch.reciprocal(ranks)
    return torch.sum(rranks).data / targets.size(0)


@torch.no_grad()
def evaluate(model, batch_size=16):
    model.eval()
    recalls, mrrs, all_scores = [], [], []
    hidden = model.init_hidden(batch_size)
    for input, target, mask in SessionDataLoader(test_data, batch_size):
        hidden = reset_hidden(hidden, mask).detach()
        output, hidden = model(input, hidden)
        scores = model.score_all(output)
        _, indices = torch.topk(scores, K, -1)
        recalls.append(get_recall(indices, target))
        mrrs.append(get_mrr(indices, target).item())
        all_scores.append((input, target, scores))
    return float(np.mean(recalls)), float(np.mean(mrrs)), all_scores


@torch.no_grad()
def per_session_scores(model, sessions):
    table = {}
    for s in sessions:
        hidden = model.init_hidden(1)
        for a, b in zip(s[:-1], s[1:]):
            output, hidden = model(torch.tensor([a]), hidden)
            table.setdefault((a, b), []).append(model.score_all(output)[0])
    return table


bprmax_model = train("bpr-max")
top1_model = train("top1")

recall_bprmax, mrr_bprmax, parallel = evaluate(bprmax_model)
recall_top1, mrr_top1, _ = evaluate(top1_model)

# most-popular baseline: the same top-20 for every click
counts = torch.bincount(torch.from_numpy(train_data.item_idx), minlength=N_ITEMS)
_, pop_top = torch.topk(counts.float(), K)
pop_recalls, pop_mrrs = [], []
for _input, target, _mask in SessionDataLoader(test_data, 16):
    indices = pop_top.unsqueeze(0).expand(len(target), -1)
    pop_recalls.append(get_recall(indices, target))
    pop_mrrs.append(get_mrr(indices, target).item())
recall_pop, mrr_pop = float(np.mean(pop_recalls)), float(np.mean(pop_mrrs))
print(f"Recall@{K}: bpr-max {recall_bprmax:.4f} top1 {recall_top1:.4f} pop {recall_pop:.4f}")
print(f"MRR@{K}: bpr-max {mrr_bprmax:.4f} top1 {mrr_top1:.4f} pop {mrr_pop:.4f}")

# session-parallel evaluation == each session on its own from a zero state
table = per_session_scores(bprmax_model, test_sessions)
n_checked, n_equal = 0, 0
for input, target, scores in parallel[:40]:
    for a, b, row in zip(input.tolist(), target.tolist(), scores):
        n_checked += 1
        n_equal += int(any(torch.allclose(row, ref, atol=1e-5) for ref in table[(a, b)]))
print(f"session-parallel rows matched by a per-session run: {n_equal} of {n_checked}")

# BPR loss on one batch, and the one-hot route against the embedding route
with torch.no_grad():
    onehot_model = GRU4REC(N_ITEMS, HIDDEN, -1)
    onehot_model.item_emb.load_state_dict(bprmax_model.item_emb.state_dict())
    onehot_model.item_bias.load_state_dict(bprmax_model.item_bias.state_dict())
    gru_state = dict(bprmax_model.gru.state_dict())
    gru_state["weight_ih_l0"] = bprmax_model.look_up.weight @ bprmax_model.gru.weight_ih_l0.t()
    gru_state["weight_ih_l0"] = gru_state["weight_ih_l0"].t().contiguous()
    onehot_model.gru.load_state_dict(gru_state)
    input, target, _ = next(iter(SessionDataLoader(test_data, BATCH_SIZE)))
    h0 = torch.zeros(1, BATCH_SIZE, HIDDEN)
    out_emb, _ = bprmax_model(input, h0)
    out_onehot, _ = onehot_model(input, h0)
    routes_agree = torch.allclose(out_emb, out_onehot, atol=1e-5)
    logit = bprmax_model.score_targets(out_emb, target)
    batch_losses = {name: LOSSES[name](logit).item() for name in ("top1", "bpr", "bpr-max")}
print("batch losses " + " ".join(f"{k} {v:.4f}" for k, v in batch_losses.items()) + f"; one-hot == embedding: {routes_agree}")

print(
    f"FINAL recall_bprmax={recall_bprmax:.4f} mrr_bprmax={mrr_bprmax:.4f} recall_top1={recall_top1:.4f} "
    f"recall_pop={recall_pop:.4f} mrr_pop={mrr_pop:.4f} parallel_ok={int(n_equal == n_checked)} "
    f"routes_agree={int(routes_agree)}"
)
