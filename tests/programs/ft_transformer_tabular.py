"""FT-Transformer (Gorishniy et al., "Revisiting Deep Learning Models for Tabular Data") as the rtdl
package writes it, on a synthetic regression table with numerical and categorical columns.

The feature tokenizer turns every column into a token: numerical columns by
``x[..., None] * self.weight + self.bias`` with a ``(n_features, d_token)`` weight and bias per
feature; categorical columns by one shared ``nn.Embedding(sum(cardinalities), d_token)`` read at
``x_cat + self.category_offsets[None]``, the offsets a buffer made by
``torch.tensor([0] + cardinalities[:-1]).cumsum(0)``, plus a per-feature bias; every parameter
initialised rtdl's way by ``nn.init.uniform_(w, -1 / math.sqrt(d), 1 / math.sqrt(d))``. A ``[CLS]``
token is appended by ``torch.cat([x, self.weight.view(1, 1, -1).expand(len(x), 1, -1)], dim=1)`` and
read back as ``x[:, -1]``. The backbone is ``nn.TransformerEncoder`` over
``nn.TransformerEncoderLayer(d, nhead, dim_feedforward, dropout, activation='gelu',
batch_first=True, norm_first=True)`` (its ``enable_nested_tensor`` warning about ``norm_first``
caught by ``warnings.catch_warnings(record=True)``), the head ``LayerNorm -> ReLU -> Linear``. AdamW
with two parameter groups, biases, norms, embeddings and tokenizers excluded from weight decay by
name, as rtdl's ``make_parameter_groups``; ``ReduceLROnPlateau`` on the validation loss;
early stopping with the best ``copy.deepcopy(model.state_dict())`` restored by
``load_state_dict``. The test RMSE (in the target's units, by the training mean/std) is compared
with a linear baseline on standardised numerical + one-hot (``F.one_hot``) categorical features,
fitted by ``torch.linalg.lstsq``.

The data: a NumPy table whose target has feature interactions and a category-dependent slope, so
that a linear model cannot fit it.
"""

import copy
import math
import os
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

N_NUM, CARDINALITIES = 5, [3, 6, 4]


def make_table(n):
    x_num = rng.normal(size=(n, N_NUM)).astype(np.float32)
    x_num[:, 4] = np.exp(x_num[:, 4])  # one skewed column
    x_cat = np.stack([rng.integers(0, c, size=n) for c in CARDINALITIES], axis=1)
    slope = np.array([-1.0, 0.5, 1.5])[x_cat[:, 0]]
    level = np.linspace(-1, 1, CARDINALITIES[1])[x_cat[:, 1]]
    y = (slope * x_num[:, 0] + np.sin(2 * x_num[:, 1]) + x_num[:, 2] * x_num[:, 3] + level
         + 0.3 * np.log(x_num[:, 4]) * (x_cat[:, 2] >= 2) + 0.1 * rng.normal(size=n))
    return torch.from_numpy(x_num), torch.from_numpy(x_cat), torch.from_numpy(y.astype(np.float32))


def initialize_uniform(tensor, d):
    d_sqrt_inv = 1 / math.sqrt(d)
    nn.init.uniform_(tensor, a=-d_sqrt_inv, b=d_sqrt_inv)


class NumericalFeatureTokenizer(nn.Module):
    def __init__(self, n_features, d_token):
        super().__init__()
        self.weight = nn.Parameter(torch.Tensor(n_features, d_token))
        self.bias = nn.Parameter(torch.Tensor(n_features, d_token))
        for parameter in [self.weight, self.bias]:
            initialize_uniform(parameter, d_token)

    def forward(self, x):
        return self.weight[None] * x[..., None] + self.bias[None]


class CategoricalFeatureTokenizer(nn.Module):
    def __init__(self, cardinalities, d_token):
        super().__init__()
        category_offsets = torch.tensor([0] + cardinalities[:-1]).cumsum(0)
        self.register_buffer("category_offsets", category_offsets, persistent=False)
        self.embeddings = nn.Embedding(sum(cardinalities), d_token)
        self.bias = nn.Parameter(torch.Tensor(len(cardinalities), d_token))
        for parameter in [self.embeddings.weight, self.bias]:
            initialize_uniform(parameter, d_token)

    def forward(self, x):
        return self.embeddings(x + self.category_offsets[None]) + self.bias[None]


class CLSToken(nn.Module):
    def __init__(self, d_token):
        super().__init__()
        self.weight = nn.Parameter(torch.Tensor(d_token))
        initialize_uniform(self.weight, d_token)

    def expand(self, *leading_dimensions):
        if not leading_dimensions:
            return self.weight
        new_dims = (1,) * (len(leading_dimensions) - 1)
        return self.weight.view(*new_dims, -1).expand(*leading_dimensions, -1)

    def forward(self, x):
        return torch.cat([x, self.expand(len(x), 1)], dim=1)


class FTTransformer(nn.Module):
    def __init__(self, n_num, cardinalities, d_token=32, n_blocks=2, n_heads=4, ffn_factor=4 / 3, dropout=0.1):
        super().__init__()
        self.num_tokenizer = NumericalFeatureTokenizer(n_num, d_token)
        self.cat_tokenizer = CategoricalFeatureTokenizer(cardinalities, d_token)
        self.cls_token = CLSToken(d_token)
        layer = nn.TransformerEncoderLayer(d_token, n_heads, dim_feedforward=int(d_token * ffn_factor), dropout=dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.backbone = nn.TransformerEncoder(layer, num_layers=n_blocks)
        self.head = nn.Sequential(nn.LayerNorm(d_token), nn.ReLU(), nn.Linear(d_token, 1))

    def forward(self, x_num, x_cat):
        x = torch.cat([self.num_tokenizer(x_num), self.cat_tokenizer(x_cat)], dim=1)
        x = self.cls_token(x)
        x = self.backbone(x)
        return self.head(x[:, -1]).squeeze(-1)


def make_parameter_groups(model, weight_decay):
    def needs_wd(name):
        return all(marker not in name for marker in ["tokenizer", "norm", "bias", "cls_token", "head.0"])

    decay = [p for name, p in model.named_parameters() if needs_wd(name)]
    no_decay = [p for name, p in model.named_parameters() if not needs_wd(name)]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


train = make_table(512)
val = make_table(512)
test = make_table(512)
y_mean, y_std = train[2].mean(), train[2].std()
num_mean, num_std = train[0].mean(0), train[0].std(0)


def prepare(table):
    x_num, x_cat, y = table
    return (x_num - num_mean) / num_std, x_cat, (y - y_mean) / y_std


train, val, test = prepare(train), prepare(val), prepare(test)
print(f"train {tuple(train[0].shape)} numerical + {tuple(train[1].shape)} categorical, target std {y_std.item():.3f}")

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    model = FTTransformer(N_NUM, CARDINALITIES)
print("warnings at construction", len(caught), [w.category.__name__ for w in caught],
      "mention norm_first", all("norm_first" in str(w.message) for w in caught))
print("category offsets", model.cat_tokenizer.category_offsets.tolist(),
      "buffers in state_dict", "cat_tokenizer.category_offsets" in model.state_dict())
with torch.no_grad():
    tokens = model.cls_token(torch.cat([model.num_tokenizer(train[0][:4]), model.cat_tokenizer(train[1][:4])], dim=1))
print("tokens", tuple(tokens.shape), "cls last", torch.equal(tokens[:, -1], model.cls_token.weight.expand(4, -1)))

groups = make_parameter_groups(model, weight_decay=1e-4)
print("parameter groups", [len(g["params"]) for g in groups],
      "all covered", sum(len(g["params"]) for g in groups) == len(list(model.parameters())))
optimizer = torch.optim.AdamW(groups, lr=3e-3)
scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=2)

EPOCHS, BATCH, PATIENCE = 40, 64, 5
best_val, best_epoch, best_state, bad_epochs, lr_drops, epochs_run = float("inf"), -1, None, 0, 0, 0
generator = torch.Generator().manual_seed(seed)
for epoch in range(1, EPOCHS + 1):
    model.train()
    permutation = torch.randperm(len(train[2]), generator=generator)
    for start in range(0, len(permutation), BATCH):
        idx = permutation[start:start + BATCH]
        loss = F.mse_loss(model(train[0][idx], train[1][idx]), train[2][idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        val_loss = F.mse_loss(model(val[0], val[1]), val[2]).item()
    lr_before = optimizer.param_groups[0]["lr"]
    scheduler.step(val_loss)
    lr_drops += optimizer.param_groups[0]["lr"] < lr_before
    if val_loss < best_val:
        best_val, best_epoch, bad_epochs = val_loss, epoch, 0
        best_state = copy.deepcopy(model.state_dict())
    else:
        bad_epochs += 1
    epochs_run = epoch
    if epoch <= 4:
        print(f"epoch {epoch:2d} train loss {loss.item():.4f} val loss {val_loss:.4f} best {best_val:.4f}")
    if bad_epochs >= PATIENCE:
        break

model.load_state_dict(best_state)
model.eval()
with torch.no_grad():
    restored_val = F.mse_loss(model(val[0], val[1]), val[2]).item()
    test_pred = model(test[0], test[1])
print("restored best weights reproduce best val loss", math.isclose(restored_val, best_val, rel_tol=1e-5))
print("group lrs", [f"{g['lr']:.2e}" for g in optimizer.param_groups], "weight decays", [g["weight_decay"] for g in optimizer.param_groups])
ft_rmse = ((test_pred - test[2]) ** 2).mean().sqrt().item() * y_std.item()


def linear_design(x_num, x_cat):
    one_hot = [F.one_hot(x_cat[:, i], c)[:, 1:].float() for i, c in enumerate(CARDINALITIES)]
    return torch.cat([torch.ones(len(x_num), 1), x_num, *one_hot], dim=1)


coef = torch.linalg.lstsq(linear_design(train[0], train[1]), train[2].unsqueeze(1)).solution
linear_pred = (linear_design(test[0], test[1]) @ coef).squeeze(1)
linear_rmse = ((linear_pred - test[2]) ** 2).mean().sqrt().item() * y_std.item()
print(f"test rmse FT-Transformer {ft_rmse:.4f} linear {linear_rmse:.4f}")
print(f"FINAL ft_rmse={ft_rmse:.4f} linear_rmse={linear_rmse:.4f} best_val={best_val:.4f} "
      f"best_epoch={best_epoch} epochs_run={epochs_run} lr_drops={lr_drops}")
