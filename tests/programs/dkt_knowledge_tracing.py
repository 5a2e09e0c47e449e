"""Deep Knowledge Tracing (Piech et al. 2015, chrispiech/DeepKnowledgeTracing) as its PyTorch ports
write it, with the DKT+ regulariser (Yeung & Yeung 2018, ckyeungac/deep-knowledge-tracing-plus), on
simulated students.

The students are simulated with NumPy: each has a latent ability, each skill a difficulty, and mastery
of a skill grows with practice, so whether the next answer is right depends on the student's history
(an item-response model with learning). Each interaction is encoded as ``skill + num_skills *
correct`` and one-hot encoded twice: by ``F.one_hot(...).float()`` and by an ``nn.Embedding`` holding
the identity (``from_pretrained(torch.eye(...))``); the two inputs must agree. The model is an
``nn.LSTM(batch_first=True)`` run over ``pack_padded_sequence(x, lengths.cpu(), batch_first=True,
enforce_sorted=False)`` and ``pad_packed_sequence(..., total_length=...)``, a linear layer and a
sigmoid giving, per step, the probability of answering each skill right. The prediction for the next
interaction is picked by ``torch.gather(pred, 2, next_skill.unsqueeze(-1)).squeeze(-1)``, valid steps
by ``masked_select``, the loss is ``F.binary_cross_entropy``; DKT+ adds the reconstruction of the
current answer and the waviness ``torch.norm(pred[:, 1:] - pred[:, :-1], p=1)`` (and its squared L2
form). Adam, ``clip_grad_norm_``; AUC by ranks under ``torch.no_grad()``.

Checked: the test AUC and accuracy of DKT and of DKT+ against a per-skill majority baseline; that the
one-hot and the embedding routes agree; that the packed LSTM equals the padded one on valid steps; that
DKT+ is smoother (lower waviness) than plain DKT.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

NUM_SKILLS = 8
MAX_STEPS = 24


# ----------------------------------------------------------------------------------- students
def simulate_students(n):
    difficulty = np.linspace(-1.0, 1.0, NUM_SKILLS)
    skills = np.zeros((n, MAX_STEPS), dtype=np.int64)
    correct = np.zeros((n, MAX_STEPS), dtype=np.int64)
    lengths = rng.randint(8, MAX_STEPS + 1, size=n)
    for i in range(n):
        ability = rng.randn()
        practice = np.zeros(NUM_SKILLS)
        skill = rng.randint(NUM_SKILLS)
        for t in range(lengths[i]):
            if rng.rand() < 0.4:  # students work on a skill for a while, then move on
                skill = rng.randint(NUM_SKILLS)
            logit = ability - difficulty[skill] + 0.6 * practice[skill] - 1.0
            answer = rng.rand() < 1.0 / (1.0 + np.exp(-logit))
            skills[i, t], correct[i, t] = skill, answer
            practice[skill] += 1.0
    return torch.from_numpy(skills), torch.from_numpy(correct), torch.from_numpy(lengths)


train_skills, train_correct, train_lengths = simulate_students(480)
test_skills, test_correct, test_lengths = simulate_students(160)
print(f"students: train {len(train_lengths)} test {len(test_lengths)} skills {NUM_SKILLS} "
      f"interactions {int(train_lengths.sum())}")


# ----------------------------------------------------------------------------------- model
class DKT(nn.Module):
    def __init__(self, num_skills, hidden_size=32, use_embedding=False):
        super().__init__()
        self.num_skills = num_skills
        self.use_embedding = use_embedding
        # the identity embedding: row (skill + num_skills * correct) is that one-hot vector
        self.interaction_emb = nn.Embedding.from_pretrained(torch.eye(2 * num_skills), freeze=True)
        self.lstm = nn.LSTM(2 * num_skills, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, num_skills)
        self.dropout = nn.Dropout(0.1)

    def encode(self, skills, correct):
        interactions = skills + self.num_skills * correct
        if self.use_embedding:
            return self.interaction_emb(interactions)
        return F.one_hot(interactions, num_classes=2 * self.num_skills).float()

    def forward(self, skills, correct, lengths):
        x = self.encode(skills, correct)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        output, _ = self.lstm(packed)
        output, _ = pad_packed_sequence(output, batch_first=True, total_length=skills.size(1))
        return torch.sigmoid(self.fc(self.dropout(output)))


def step_mask(lengths, steps):
    """valid (t -> t + 1) transitions: t + 1 < length"""
    return torch.arange(steps - 1).unsqueeze(0) < (lengths - 1).unsqueeze(1)


def dkt_loss(pred, skills, correct, lengths, lambda_r=0.0, lambda_w1=0.0, lambda_w2=0.0):
    mask = step_mask(lengths, skills.size(1))
    next_skill = skills[:, 1:]
    pred_next = torch.gather(pred[:, :-1], 2, next_skill.unsqueeze(-1)).squeeze(-1)
    p = torch.masked_select(pred_next, mask)
    target = torch.masked_select(correct[:, 1:], mask).float()
    loss = F.binary_cross_entropy(p, target)
    # DKT+: reconstruct the answer just given, and keep the predictions from wavering
    current = torch.gather(pred[:, :-1], 2, skills[:, :-1].unsqueeze(-1)).squeeze(-1)
    r = F.binary_cross_entropy(torch.masked_select(current, mask), torch.masked_select(correct[:, :-1], mask).float())
    diff = (pred[:, 1:] - pred[:, :-1]) * mask.unsqueeze(-1).float()
    total = mask.sum() * pred.size(-1)
    w1 = torch.norm(diff, p=1) / total
    w2 = torch.norm(diff, p=2) ** 2 / total
    return loss + lambda_r * r + lambda_w1 * w1 + lambda_w2 * w2, loss, w1


def auc_by_ranks(scores, labels):
    order = scores.argsort()
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, len(scores) + 1, dtype=scores.dtype)
    n_pos = labels.sum()
    n_neg = len(labels) - n_pos
    return ((ranks[labels.bool()].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)).item()


@torch.no_grad()
def evaluate(model):
    model.eval()
    pred = model(test_skills, test_correct, test_lengths)
    _, loss, w1 = dkt_loss(pred, test_skills, test_correct, test_lengths)
    mask = step_mask(test_lengths, MAX_STEPS)
    p = torch.masked_select(torch.gather(pred[:, :-1], 2, test_skills[:, 1:].unsqueeze(-1)).squeeze(-1), mask)
    target = torch.masked_select(test_correct[:, 1:], mask)
    auc = auc_by_ranks(p, target.float())
    acc = ((p > 0.5).long() == target).float().mean().item()
    model.train()
    return loss.item(), auc, acc, w1.item()


def train(model, lambda_r=0.0, lambda_w1=0.0, lambda_w2=0.0, epochs=6, batch_size=32, label="dkt"):
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    for epoch in range(1, epochs + 1):
        permutation = torch.randperm(len(train_lengths))
        total, batches = 0.0, 0
        for start in range(0, len(permutation), batch_size):
            index = permutation[start:start + batch_size]
            skills, correct, lengths = train_skills[index], train_correct[index], train_lengths[index]
            pred = model(skills, correct, lengths)
            loss, _, _ = dkt_loss(pred, skills, correct, lengths, lambda_r, lambda_w1, lambda_w2)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=5.0)
            optimizer.step()
            total += loss.item()
            batches += 1
        test_loss, auc, acc, w1 = evaluate(model)
        print(f"{label} epoch {epoch} train loss {total / batches:.4f} test loss {test_loss:.4f} "
              f"auc {auc:.4f} acc {acc:.4f} waviness {w1:.4f}")
    return evaluate(model)


# the one-hot and the identity-embedding encodings agree, and so do the models built on them
one_hot_model = DKT(NUM_SKILLS)
embedding_model = DKT(NUM_SKILLS, use_embedding=True)
embedding_model.load_state_dict(one_hot_model.state_dict())
one_hot_model.eval()
embedding_model.eval()
with torch.no_grad():
    encoding_equal = torch.equal(one_hot_model.encode(test_skills, test_correct),
                                 embedding_model.encode(test_skills, test_correct))
    route_diff = (one_hot_model(test_skills, test_correct, test_lengths)
                  - embedding_model(test_skills, test_correct, test_lengths)).abs().max().item()
    # the packed LSTM equals the padded one on the valid steps (a one-way LSTM does not look ahead)
    x = one_hot_model.encode(test_skills, test_correct)
    padded_out, _ = one_hot_model.lstm(x)
    packed_out, _ = one_hot_model.lstm(pack_padded_sequence(x, test_lengths.cpu(), batch_first=True, enforce_sorted=False))
    packed_out, out_lengths = pad_packed_sequence(packed_out, batch_first=True, total_length=MAX_STEPS)
    valid = torch.arange(MAX_STEPS).unsqueeze(0) < test_lengths.unsqueeze(1)
    packed_diff = (padded_out[valid] - packed_out[valid]).abs().max().item()
    pad_zero = packed_out[~valid].abs().max().item()
print(f"one-hot vs embedding: encodings equal {encoding_equal} output diff {route_diff:.2e}")
print(f"packed vs padded LSTM: max diff {packed_diff:.2e} padding {pad_zero:.1f} lengths equal {torch.equal(out_lengths, test_lengths)}")

# majority baseline: each skill's training success rate
mask = step_mask(train_lengths, MAX_STEPS)
skill_rate = torch.zeros(NUM_SKILLS).scatter_add_(0, train_skills[:, 1:][mask], train_correct[:, 1:][mask].float())
skill_rate = skill_rate / torch.bincount(train_skills[:, 1:][mask], minlength=NUM_SKILLS).float()
test_mask = step_mask(test_lengths, MAX_STEPS)
baseline_p = skill_rate[test_skills[:, 1:][test_mask]]
baseline_target = test_correct[:, 1:][test_mask]
baseline_auc = auc_by_ranks(baseline_p, baseline_target.float())
baseline_acc = ((baseline_p > 0.5).long() == baseline_target).float().mean().item()
print(f"per-skill baseline: auc {baseline_auc:.4f} acc {baseline_acc:.4f}")

dkt = DKT(NUM_SKILLS, use_embedding=True)
_, dkt_auc, dkt_acc, dkt_wav = train(dkt, label="dkt")
dkt_plus = DKT(NUM_SKILLS)
_, plus_auc, plus_acc, plus_wav = train(dkt_plus, lambda_r=0.1, lambda_w1=0.03, lambda_w2=3.0, label="dkt+")

checks = float(encoding_equal and route_diff < 1e-6 and packed_diff < 1e-5 and pad_zero == 0.0)
print(f"FINAL auc={dkt_auc:.4f} acc={dkt_acc:.4f} plus_auc={plus_auc:.4f} plus_acc={plus_acc:.4f} "
      f"auc_gain={dkt_auc - baseline_auc:.4f} waviness={dkt_wav:.4f} plus_waviness={plus_wav:.4f} checks={checks:.0f}")
