"""A batched linear-chain CRF in the style of kmkurn/pytorch-crf, over a BiLSTM emitter, tagging
synthetic BIO entities in padded batches.

The ``CRF`` module as pytorch-crf lays it out: ``start_transitions``, ``end_transitions`` and
``transitions`` as ``nn.Parameter(torch.empty(...))`` reset by ``nn.init.uniform_(-0.1, 0.1)``;
sequence-first internals with ``batch_first`` inputs ``transpose(0, 1)``-ed; ``_validate``
raising ``ValueError`` on bad shapes and a first timestep that is masked; the gold score by
advanced indexing (``emissions[0, torch.arange(batch_size), tags[0]]``,
``self.transitions[tags[i - 1], tags[i]] * mask[i]``, the last tags at ``mask.long().sum(dim=0) -
1`` gathered by ``tags[seq_ends, torch.arange(batch_size)]``); the normaliser by the forward algorithm
``torch.logsumexp(score.unsqueeze(2) + self.transitions + emissions[i].unsqueeze(1), dim=1)`` with
``torch.where(mask[i].unsqueeze(1), next_score, score)``; ``reduction`` ``'none'``, ``'sum'``,
``'mean'`` and ``'token_mean'``; Viterbi with ``next_score.max(dim=1)`` backpointers followed from
each sequence's end by ``.item()``. Both are checked in float64 against brute-force enumeration of
every tag sequence (``itertools.product``). The emitter: ``nn.Embedding(padding_idx=0)``, a
bidirectional ``nn.LSTM(batch_first=True)`` over ``pack_padded_sequence(enforce_sorted=False)``
and ``pad_packed_sequence(total_length=...)``, ``nn.Dropout``, a ``Linear`` to tag scores; trained
by Adam on ``-crf(emissions, tags, mask=mask, reduction='mean')`` with ``clip_grad_norm_``,
evaluated by token accuracy and entity F1 on the decoded paths.
"""

import itertools
import os

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)


class CRF(nn.Module):
    """Conditional random field: the log-likelihood of tag sequences given emission scores."""

    def __init__(self, num_tags: int, batch_first: bool = False) -> None:
        if num_tags <= 0:
            raise ValueError(f"invalid number of tags: {num_tags}")
        super().__init__()
        self.num_tags = num_tags
        self.batch_first = batch_first
        self.start_transitions = nn.Parameter(torch.empty(num_tags))
        self.end_transitions = nn.Parameter(torch.empty(num_tags))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.uniform_(self.start_transitions, -0.1, 0.1)
        nn.init.uniform_(self.end_transitions, -0.1, 0.1)
        nn.init.uniform_(self.transitions, -0.1, 0.1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(num_tags={self.num_tags})"

    def forward(self, emissions, tags, mask=None, reduction="sum"):
        self._validate(emissions, tags=tags, mask=mask)
        if reduction not in ("none", "sum", "mean", "token_mean"):
            raise ValueError(f"invalid reduction: {reduction}")
        if mask is None:
            mask = torch.ones_like(tags, dtype=torch.uint8)
        if self.batch_first:
            emissions = emissions.transpose(0, 1)
            tags = tags.transpose(0, 1)
            mask = mask.transpose(0, 1)
        numerator = self._compute_score(emissions, tags, mask)
        denominator = self._compute_normalizer(emissions, mask)
        llh = numerator - denominator
        if reduction == "none":
            return llh
        if reduction == "sum":
            return llh.sum()
        if reduction == "mean":
            return llh.mean()
        assert reduction == "token_mean"
        return llh.sum() / mask.type_as(emissions).sum()

    def decode(self, emissions, mask=None):
        self._validate(emissions, mask=mask)
        if mask is None:
            mask = emissions.new_ones(emissions.shape[:2], dtype=torch.uint8)
        if self.batch_first:
            emissions = emissions.transpose(0, 1)
            mask = mask.transpose(0, 1)
        return self._viterbi_decode(emissions, mask)

    def _validate(self, emissions, tags=None, mask=None):
        if emissions.dim() != 3:
            raise ValueError(f"emissions must have dimension of 3, got {emissions.dim()}")
        if emissions.size(2) != self.num_tags:
            raise ValueError(f"expected last dimension of emissions is {self.num_tags}, got {emissions.size(2)}")
        if tags is not None and emissions.shape[:2] != tags.shape:
            raise ValueError("the first two dimensions of emissions and tags must match, "
                             f"got {tuple(emissions.shape[:2])} and {tuple(tags.shape)}")
        if mask is not None:
            if emissions.shape[:2] != mask.shape:
                raise ValueError("the first two dimensions of emissions and mask must match, "
                                 f"got {tuple(emissions.shape[:2])} and {tuple(mask.shape)}")
            no_empty_seq = not self.batch_first and mask[0].all()
            no_empty_seq_bf = self.batch_first and mask[:, 0].all()
            if not no_empty_seq and not no_empty_seq_bf:
                raise ValueError("mask of the first timestep must all be on")

    def _compute_score(self, emissions, tags, mask):
        seq_length, batch_size = tags.shape
        mask = mask.type_as(emissions)
        score = self.start_transitions[tags[0]]
        score = score + emissions[0, torch.arange(batch_size), tags[0]]
        for i in range(1, seq_length):
            score = score + self.transitions[tags[i - 1], tags[i]] * mask[i]
            score = score + emissions[i, torch.arange(batch_size), tags[i]] * mask[i]
        seq_ends = mask.long().sum(dim=0) - 1
        last_tags = tags[seq_ends, torch.arange(batch_size)]
        score = score + self.end_transitions[last_tags]
        return score

    def _compute_normalizer(self, emissions, mask):
        seq_length = emissions.size(0)
        score = self.start_transitions + emissions[0]
        for i in range(1, seq_length):
            broadcast_score = score.unsqueeze(2)
            broadcast_emissions = emissions[i].unsqueeze(1)
            next_score = broadcast_score + self.transitions + broadcast_emissions
            next_score = torch.logsumexp(next_score, dim=1)
            score = torch.where(mask[i].unsqueeze(1), next_score, score)
        score = score + self.end_transitions
        return torch.logsumexp(score, dim=1)

    def _viterbi_decode(self, emissions, mask):
        seq_length, batch_size = mask.shape
        score = self.start_transitions + emissions[0]
        history = []
        for i in range(1, seq_length):
            broadcast_score = score.unsqueeze(2)
            broadcast_emission = emissions[i].unsqueeze(1)
            next_score = broadcast_score + self.transitions + broadcast_emission
            next_score, indices = next_score.max(dim=1)
            score = torch.where(mask[i].unsqueeze(1), next_score, score)
            history.append(indices)
        score += self.end_transitions
        seq_ends = mask.long().sum(dim=0) - 1
        best_tags_list = []
        for idx in range(batch_size):
            _, best_last_tag = score[idx].max(dim=0)
            best_tags = [best_last_tag.item()]
            for hist in reversed(history[:seq_ends[idx]]):
                best_last_tag = hist[idx][best_tags[-1]]
                best_tags.append(best_last_tag.item())
            best_tags.reverse()
            best_tags_list.append(best_tags)
        return best_tags_list


# ----------------------------------------------------------------------------- checks by enumeration
def brute_force(crf, emissions, length):
    """log Z and the best path of one sequence (seq-first emissions, float64) by enumerating paths."""
    scores = {}
    for path in itertools.product(range(crf.num_tags), repeat=length):
        s = crf.start_transitions[path[0]] + emissions[0, path[0]] + crf.end_transitions[path[-1]]
        for i in range(1, length):
            s = s + crf.transitions[path[i - 1], path[i]] + emissions[i, path[i]]
        scores[path] = s
    stacked = torch.stack(list(scores.values()))
    best = max(scores, key=lambda p: scores[p].item())
    return torch.logsumexp(stacked, dim=0), list(best), scores


check_crf = CRF(4).double()
with torch.no_grad():
    check_crf.transitions.mul_(10)
lengths = [5, 3, 1]
check_emissions = torch.randn(5, 3, 4, dtype=torch.float64)
check_tags = torch.randint(4, (5, 3))
check_mask = torch.zeros(5, 3, dtype=torch.bool)
for b, n in enumerate(lengths):
    check_mask[:n, b] = True
with torch.no_grad():
    llh = check_crf(check_emissions, check_tags, mask=check_mask, reduction="none")
    paths = check_crf.decode(check_emissions, mask=check_mask)
    llh_ok, path_ok = True, True
    for b, n in enumerate(lengths):
        log_z, best, scores = brute_force(check_crf, check_emissions[:n, b], n)
        gold = scores[tuple(check_tags[:n, b].tolist())]
        llh_ok = llh_ok and torch.allclose(llh[b], gold - log_z)
        path_ok = path_ok and paths[b] == best
    total = check_crf(check_emissions, check_tags, mask=check_mask, reduction="sum")
    token_mean = check_crf(check_emissions, check_tags, mask=check_mask, reduction="token_mean")
    reductions_ok = torch.allclose(token_mean * sum(lengths), total) and torch.allclose(
        check_crf(check_emissions, check_tags, mask=check_mask, reduction="mean") * 3, total)
    bf = CRF(4, batch_first=True).double()
    bf.load_state_dict(check_crf.state_dict())
    bf_ok = torch.allclose(bf(check_emissions.transpose(0, 1), check_tags.t(), mask=check_mask.t()), total)
print(f"brute force: log-likelihood {llh_ok}, viterbi {path_ok}, reductions {reductions_ok}, batch_first {bf_ok}")
try:
    check_crf(check_emissions, check_tags, mask=check_mask.flip(0))
except ValueError as error:
    print(f"ValueError: {error}")
print(check_crf)


# ----------------------------------------------------------------------------- synthetic BIO tagging
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
PAD = 0
FILLER = list(range(1, 21))  # ordinary words
NAME_WORDS = list(range(21, 41))  # shared by people and places
MR, IN = 41, 42  # trigger words: "mr" before a person, "in" before a place
VOCAB = 43


def make_sentence():
    words, tags = [], []
    length = rng.randint(6, 14)
    while len(words) < length:
        r = rng.rand()
        if r < 0.55:
            words.append(FILLER[rng.randint(len(FILLER))])
            tags.append(0)
        else:
            person = r < 0.8
            words.append(MR if person else IN)
            tags.append(0)
            for j in range(rng.randint(1, 4)):
                words.append(NAME_WORDS[rng.randint(len(NAME_WORDS))])
                tags.append((1 if j == 0 else 2) if person else (3 if j == 0 else 4))
    return words, tags


def collate(batch):
    lengths = torch.tensor([len(w) for w, _ in batch])
    max_len = int(lengths.max())
    words = torch.full((len(batch), max_len), PAD, dtype=torch.long)
    tags = torch.zeros((len(batch), max_len), dtype=torch.long)
    for b, (w, t) in enumerate(batch):
        words[b, :len(w)] = torch.tensor(w)
        tags[b, :len(t)] = torch.tensor(t)
    return words, tags, words != PAD, lengths


class BiLSTMCRF(nn.Module):
    def __init__(self, vocab_size, num_tags, embedding_dim=24, hidden_dim=32, dropout=0.1):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim // 2, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.hidden2tag = nn.Linear(hidden_dim, num_tags)
        self.crf = CRF(num_tags, batch_first=True)

    def _emissions(self, words, lengths):
        embeds = self.dropout(self.embedding(words))
        packed = pack_padded_sequence(embeds, lengths, batch_first=True, enforce_sorted=False)
        output, _ = self.lstm(packed)
        output, _ = pad_packed_sequence(output, batch_first=True, total_length=words.size(1))
        return self.hidden2tag(self.dropout(output))

    def loss(self, words, tags, mask, lengths):
        return -self.crf(self._emissions(words, lengths), tags, mask=mask, reduction="mean")

    def forward(self, words, mask, lengths):
        return self.crf.decode(self._emissions(words, lengths), mask=mask)


def entities(tags):
    spans, start = set(), None
    for i, t in enumerate(list(tags) + [0]):
        if start is not None and t != start[1] + 1:
            spans.add((start[0], i, start[1]))
            start = None
        if t in (1, 3):
            start = (i, t)
    return spans


train_set = [make_sentence() for _ in range(512)]
test_set = [make_sentence() for _ in range(128)]
model = BiLSTMCRF(VOCAB, len(TAGS))
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
BATCH = 32
for epoch in range(1, 5):
    model.train()
    order = rng.permutation(len(train_set))
    total, count = 0.0, 0
    for start in range(0, len(order), BATCH):
        words, tags, mask, lengths = collate([train_set[i] for i in order[start:start + BATCH]])
        loss = model.loss(words, tags, mask, lengths)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        total += loss.item()
        count += 1
    print(f"epoch {epoch} nll {total / count:.4f}")

model.eval()
correct = tokens = tp = n_pred = n_gold = 0
with torch.no_grad():
    words, tags, mask, lengths = collate(test_set)
    test_nll = model.loss(words, tags, mask, lengths).item()
    predictions = model(words, mask, lengths)
for (_words, gold), pred in zip(test_set, predictions):
    assert len(pred) == len(gold)
    correct += sum(p == g for p, g in zip(pred, gold))
    tokens += len(gold)
    pred_spans, gold_spans = entities(pred), entities(gold)
    tp += len(pred_spans & gold_spans)
    n_pred += len(pred_spans)
    n_gold += len(gold_spans)
precision = tp / max(n_pred, 1)
recall = tp / max(n_gold, 1)
f1 = 2 * precision * recall / max(precision + recall, 1e-12)
transitions = model.crf.transitions.detach()
print(f"learned O->I-PER {transitions[0, 2].item():.3f}, B-PER->I-PER {transitions[1, 2].item():.3f}")
print(f"FINAL test_nll={test_nll:.4f} token_acc={correct / tokens:.4f} entity_f1={f1:.4f}")
