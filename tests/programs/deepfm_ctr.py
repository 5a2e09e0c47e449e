"""Click-through prediction as rixwew/pytorch-fm writes it (torchfm/layer.py, model/fm.py,
model/dfm.py, examples/main.py), at tiny sizes on synthetic categorical logs: per-field offsets
``np.array((0, *np.cumsum(field_dims)[:-1]), dtype=np.int64)`` added by ``x + x.new_tensor(
self.offsets).unsqueeze(0)`` into one ``nn.Embedding(sum(field_dims), k)``, ``FeaturesLinear``
(``torch.sum(self.fc(x), dim=1) + self.bias``), the FM second-order term ``0.5 * (square_of_sum -
sum_of_square)`` summed with ``keepdim=True`` (against the explicit sum over field pairs),
``xavier_uniform_`` on ``embedding.weight.data``, the ``MultiLayerPerceptron`` of Linear +
``BatchNorm1d`` + ReLU + ``Dropout``, ``torch.sigmoid(x.squeeze(1))`` into ``nn.BCELoss`` on
``target.float()``, a ``TensorDataset`` split by ``random_split`` with
``torch.Generator().manual_seed(42)``, ``DataLoader(shuffle=True)``, Adam with weight decay, an
``EarlyStopper`` on validation AUC keeping the best ``state_dict`` by ``torch.save``/``torch.load``,
and AUC by hand from ``torch.argsort(stable=True)`` ranks (Mann-Whitney) against the pairwise
``pos[:, None] > neg[None, :]`` count and a ``cumsum`` ROC ``torch.trapz``.
"""
# ruff: noqa: UP004, B007  (pytorch-fm's own spelling: class EarlyStopper(object), the loop index read after the loop)

import os
import tempfile

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


# ---- torchfm/layer.py ----
class FeaturesLinear(torch.nn.Module):

    def __init__(self, field_dims, output_dim=1):
        super().__init__()
        self.fc = torch.nn.Embedding(sum(field_dims), output_dim)
        self.bias = torch.nn.Parameter(torch.zeros((output_dim,)))
        self.offsets = np.array((0, *np.cumsum(field_dims)[:-1]), dtype=np.int64)

    def forward(self, x):
        """
        :param x: Long tensor of size ``(batch_size, num_fields)``
        """
        x = x + x.new_tensor(self.offsets).unsqueeze(0)
        return torch.sum(self.fc(x), dim=1) + self.bias


class FeaturesEmbedding(torch.nn.Module):

    def __init__(self, field_dims, embed_dim):
        super().__init__()
        self.embedding = torch.nn.Embedding(sum(field_dims), embed_dim)
        self.offsets = np.array((0, *np.cumsum(field_dims)[:-1]), dtype=np.int64)
        torch.nn.init.xavier_uniform_(self.embedding.weight.data)

    def forward(self, x):
        """
        :param x: Long tensor of size ``(batch_size, num_fields)``
        """
        x = x + x.new_tensor(self.offsets).unsqueeze(0)
        return self.embedding(x)


class FactorizationMachine(torch.nn.Module):

    def __init__(self, reduce_sum=True):
        super().__init__()
        self.reduce_sum = reduce_sum

    def forward(self, x):
        """
        :param x: Float tensor of size ``(batch_size, num_fields, embed_dim)``
        """
        square_of_sum = torch.sum(x, dim=1) ** 2
        sum_of_square = torch.sum(x ** 2, dim=1)
        ix = square_of_sum - sum_of_square
        if self.reduce_sum:
            ix = torch.sum(ix, dim=1, keepdim=True)
        return 0.5 * ix


class MultiLayerPerceptron(torch.nn.Module):

    def __init__(self, input_dim, embed_dims, dropout, output_layer=True):
        super().__init__()
        layers = list()
        for embed_dim in embed_dims:
            layers.append(torch.nn.Linear(input_dim, embed_dim))
            layers.append(torch.nn.BatchNorm1d(embed_dim))
            layers.append(torch.nn.ReLU())
            layers.append(torch.nn.Dropout(p=dropout))
            input_dim = embed_dim
        if output_layer:
            layers.append(torch.nn.Linear(input_dim, 1))
        self.mlp = torch.nn.Sequential(*layers)

    def forward(self, x):
        """
        :param x: Float tensor of size ``(batch_size, embed_dim)``
        """
        return self.mlp(x)


# ---- torchfm/model/fm.py and dfm.py ----
class FactorizationMachineModel(torch.nn.Module):

    def __init__(self, field_dims, embed_dim):
        super().__init__()
        self.embedding = FeaturesEmbedding(field_dims, embed_dim)
        self.linear = FeaturesLinear(field_dims)
        self.fm = FactorizationMachine(reduce_sum=True)

    def forward(self, x):
        x = self.linear(x) + self.fm(self.embedding(x))
        return torch.sigmoid(x.squeeze(1))


class DeepFactorizationMachineModel(torch.nn.Module):

    def __init__(self, field_dims, embed_dim, mlp_dims, dropout):
        super().__init__()
        self.linear = FeaturesLinear(field_dims)
        self.fm = FactorizationMachine(reduce_sum=True)
        self.embedding = FeaturesEmbedding(field_dims, embed_dim)
        self.embed_output_dim = len(field_dims) * embed_dim
        self.mlp = MultiLayerPerceptron(self.embed_output_dim, mlp_dims, dropout)

    def forward(self, x):
        embed_x = self.embedding(x)
        x = self.linear(x) + self.fm(embed_x) + self.mlp(embed_x.view(-1, self.embed_output_dim))
        return torch.sigmoid(x.squeeze(1))


# ---- synthetic click logs: a hidden logistic model with pairwise field interactions ----
rng = np.random.RandomState(0)
field_dims = [6, 9, 4, 12, 3, 7]
num_samples = 3000
fields_np = np.stack([rng.randint(0, d, num_samples) for d in field_dims], axis=1).astype(np.int64)
first_order = [rng.randn(d) * 0.6 for d in field_dims]
hidden = [rng.randn(d, 3) * 0.7 for d in field_dims]
logit = sum(first_order[f][fields_np[:, f]] for f in range(len(field_dims))) - 0.3
for a in range(len(field_dims)):
    for b in range(a + 1, len(field_dims)):
        logit = logit + (hidden[a][fields_np[:, a]] * hidden[b][fields_np[:, b]]).sum(1)
clicks_np = (rng.rand(num_samples) < 1 / (1 + np.exp(-logit))).astype(np.int64)
print(f"samples {num_samples} fields {len(field_dims)} features {sum(field_dims)} ctr {clicks_np.mean():.4f}")

dataset = TensorDataset(torch.from_numpy(fields_np), torch.from_numpy(clicks_np))
train_length = int(len(dataset) * 0.8)
valid_length = int(len(dataset) * 0.1)
test_length = len(dataset) - train_length - valid_length
train_dataset, valid_dataset, test_dataset = torch.utils.data.random_split(
    dataset, (train_length, valid_length, test_length), generator=torch.Generator().manual_seed(42))
print("split:", len(train_dataset), len(valid_dataset), len(test_dataset))
train_data_loader = DataLoader(train_dataset, batch_size=128, shuffle=True)
valid_data_loader = DataLoader(valid_dataset, batch_size=256)
test_data_loader = DataLoader(test_dataset, batch_size=256)


def roc_auc_score(targets, predicts):
    """AUC as the Mann-Whitney statistic: the chance a positive outranks a negative."""
    targets, predicts = torch.tensor(targets), torch.tensor(predicts)
    order = torch.argsort(predicts, stable=True)  # (tied scores, from repeated rows, keep their order)
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(1, len(predicts) + 1)
    n_pos = (targets == 1).sum().item()
    n_neg = len(targets) - n_pos
    return (ranks[targets == 1].sum().item() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def roc_auc_pairwise(targets, predicts):
    """The same chance over every (positive, negative) pair, a tie counting one half."""
    targets, predicts = torch.tensor(targets), torch.tensor(predicts)
    pos, neg = predicts[targets == 1], predicts[targets == 0]
    wins = (pos[:, None] > neg[None, :]).float().mean()
    ties = (pos[:, None] == neg[None, :]).float().mean()
    return (wins + 0.5 * ties).item()


def roc_auc_trapezoid(targets, predicts):
    targets, predicts = torch.tensor(targets, dtype=torch.float64), torch.tensor(predicts, dtype=torch.float64)
    order = torch.argsort(predicts, descending=True, stable=True)
    tps = torch.cumsum(targets[order], dim=0)
    fps = torch.cumsum(1 - targets[order], dim=0)
    tpr = torch.cat([torch.zeros(1, dtype=torch.float64), tps / tps[-1]])
    fpr = torch.cat([torch.zeros(1, dtype=torch.float64), fps / fps[-1]])
    return torch.trapz(tpr, fpr).item()


class EarlyStopper(object):

    def __init__(self, num_trials, save_path):
        self.num_trials = num_trials
        self.trial_counter = 0
        self.best_accuracy = 0
        self.save_path = save_path

    def is_continuable(self, model, accuracy):
        if accuracy > self.best_accuracy:
            self.best_accuracy = accuracy
            self.trial_counter = 0
            torch.save(model.state_dict(), self.save_path)
            return True
        elif self.trial_counter + 1 < self.num_trials:
            self.trial_counter += 1
            return True
        else:
            return False


def train(model, optimizer, data_loader, criterion):
    model.train()
    total_loss = 0
    for i, (fields, target) in enumerate(data_loader):
        y = model(fields)
        loss = criterion(y, target.float())
        model.zero_grad()
        loss.backward()
        optimizer.step()
        total_loss += loss.item()
    return total_loss / (i + 1)


def test(model, data_loader):
    model.eval()
    targets, predicts = list(), list()
    with torch.no_grad():
        for fields, target in data_loader:
            y = model(fields)
            targets.extend(target.tolist())
            predicts.extend(y.tolist())
    return targets, predicts


def main(model_name, model, epochs, save_dir):
    criterion = torch.nn.BCELoss()
    optimizer = torch.optim.Adam(params=model.parameters(), lr=0.01, weight_decay=1e-6)
    # (patience as long as the run, so every seed prints the same lines)
    early_stopper = EarlyStopper(num_trials=epochs, save_path=os.path.join(save_dir, f"{model_name}.pt"))
    for epoch_i in range(epochs):
        loss = train(model, optimizer, train_data_loader, criterion)
        auc = roc_auc_score(*test(model, valid_data_loader))
        print(f"{model_name} epoch: {epoch_i} train loss: {loss:.4f} validation: auc: {auc:.4f}")
        if not early_stopper.is_continuable(model, auc):
            break
    print(f"{model_name} validation: best auc: {early_stopper.best_accuracy:.4f}")
    model.load_state_dict(torch.load(early_stopper.save_path))
    targets, predicts = test(model, test_data_loader)
    auc = roc_auc_score(targets, predicts)
    pairwise = roc_auc_pairwise(targets, predicts)
    trapezoid = roc_auc_trapezoid(targets, predicts)
    # (they differ only by how the rare tied scores are counted)
    print(f"{model_name} test auc: {auc:.4f}, pairwise and trapezoid AUC within 0.01: "
          f"{abs(auc - pairwise) < 0.01 and abs(auc - trapezoid) < 0.01}")
    return auc, loss


# the FM identity: 0.5 * (square of sum - sum of squares) is the sum over field pairs of <v_i, v_j>
probe = FeaturesEmbedding(field_dims, 4)
with torch.no_grad():
    embed_x = probe(torch.from_numpy(fields_np[:5]))
    pairs = sum((embed_x[:, i] * embed_x[:, j]).sum(1, keepdim=True)
                for i in range(len(field_dims)) for j in range(i + 1, len(field_dims)))
    fm_gap = (FactorizationMachine()(embed_x) - pairs).abs().max().item()
print("FM term equals the pairwise sum:", fm_gap < 1e-5, tuple(FactorizationMachine()(embed_x).shape))

with tempfile.TemporaryDirectory() as save_dir:
    fm_auc, fm_loss = main("fm", FactorizationMachineModel(field_dims, embed_dim=4), 8, save_dir)
    dfm = DeepFactorizationMachineModel(field_dims, embed_dim=4, mlp_dims=(16, 16), dropout=0.2)
    print(dfm.mlp)
    dfm_auc, dfm_loss = main("dfm", dfm, 8, save_dir)

print(f"FINAL fm_auc={fm_auc:.4f} dfm_auc={dfm_auc:.4f} fm_loss={fm_loss:.4f} dfm_loss={dfm_loss:.4f}")
