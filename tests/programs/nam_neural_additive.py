"""Neural Additive Models (Agarwal et al., NeurIPS 2021) in the layout of the PyTorch ports
(AmrMKayid/nam, lemeln/nam), on synthetic tabular regression with known additive shape functions.

The target is ``y = f0(x0) + f1(x1) + f2(x2) + f3(x3) + noise`` with a sine, a square, a step-like
``tanh`` and a flat (irrelevant) feature. Each feature gets its own ``FeatureNN``: a first ``ExU`` layer
(``(x - bias) @ torch.exp(weights)``, ReLU-n by ``torch.clamp(out, 0, n)``, weights from
``nn.init.trunc_normal_(mean=4.0, std=0.5)``) or a ``LinReLU`` layer, then hidden ``LinReLU``s and a
linear output. The ``NAM`` splits its input by ``torch.split(x, 1, dim=-1)``/``x[:, i]`` columns, stacks
the per-feature outputs with ``torch.stack(..., dim=-1)``, applies feature dropout (``F.dropout``) and
sums them with a bias. The loss is MSE plus the output penalty ``torch.mean(torch.square(per_feature),
0).sum()`` and a weight decay written by hand over ``model.parameters()``. An ensemble of NAMs is
trained (Adam, ``ExponentialLR``) and averaged.

Checked: the ensemble's test RMSE against a linear model (closed form by ``torch.linalg.lstsq`` and
trained by SGD, which must agree), and the shape functions the ensemble recovers, evaluated on a
``torch.linspace`` grid and centred by their mean, compared with the true ones (mean correlation and
RMSE); the two column routes (``torch.split`` and ``x[:, i]``) must give the same outputs.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

N_TRAIN, N_TEST, N_FEATURES = 768, 256, 4
NUM_ENSEMBLE = 3
EPOCHS = 30
BATCH_SIZE = 64


def shape_functions(x):
    return [
        np.sin(2.5 * x[:, 0]),
        0.8 * x[:, 1] ** 2,
        np.tanh(4.0 * x[:, 2]),
        np.zeros_like(x[:, 3]),
    ]


def make_data(n):
    x = rng.uniform(-1.0, 1.0, size=(n, N_FEATURES)).astype(np.float32)
    y = sum(shape_functions(x)) + 0.1 * rng.randn(n)
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.float32))


X_train, y_train = make_data(N_TRAIN)
X_test, y_test = make_data(N_TEST)
print(f"train {tuple(X_train.shape)} test {tuple(X_test.shape)}")


# ----------------------------------------------------------------------------------- model
class ExU(nn.Module):
    """Exp-centred unit: h(x) = relu_n((x - b) * exp(w))."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weights = nn.Parameter(torch.Tensor(in_features, out_features))
        self.bias = nn.Parameter(torch.Tensor(in_features))
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.trunc_normal_(self.weights, mean=4.0, std=0.5)
        nn.init.trunc_normal_(self.bias, std=0.5)

    def forward(self, inputs, n=1):
        output = (inputs - self.bias) @ torch.exp(self.weights)
        output = F.relu(output)
        output = torch.clamp(output, 0, n)
        return output

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}"


class LinReLU(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.weights = nn.Parameter(torch.Tensor(in_features, out_features))
        self.bias = nn.Parameter(torch.Tensor(in_features))
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.xavier_uniform_(self.weights)
        nn.init.trunc_normal_(self.bias, std=0.5)

    def forward(self, inputs):
        return F.relu((inputs - self.bias) @ self.weights)


class FeatureNN(nn.Module):
    def __init__(self, input_shape, feature_num, num_units, dropout, hidden_sizes=(32, 16), activation="exu"):
        super().__init__()
        self.feature_num = feature_num
        self.dropout = nn.Dropout(p=dropout)
        all_hidden_sizes = [num_units] + list(hidden_sizes)
        layers = []
        if activation == "exu":
            layers.append(ExU(in_features=input_shape, out_features=num_units))
        else:
            layers.append(LinReLU(in_features=input_shape, out_features=num_units))
        for in_f, out_f in zip(all_hidden_sizes, all_hidden_sizes[1:]):
            layers.append(LinReLU(in_f, out_f))
        layers.append(nn.Linear(in_features=all_hidden_sizes[-1], out_features=1, bias=False))
        self.model = nn.ModuleList(layers)

    def forward(self, inputs):
        outputs = inputs.unsqueeze(1)
        for layer in self.model:
            outputs = self.dropout(layer(outputs))
        return outputs


class NAM(nn.Module):
    def __init__(self, num_inputs, num_units, hidden_sizes, dropout, feature_dropout, activation):
        super().__init__()
        self.num_inputs = num_inputs
        self.feature_dropout = feature_dropout
        self.feature_nns = nn.ModuleList(
            [
                FeatureNN(1, i, num_units, dropout, hidden_sizes, activation if i % 2 == 0 else "relu")
                for i in range(num_inputs)
            ]
        )
        self._bias = torch.nn.Parameter(data=torch.zeros(1))

    def calc_outputs(self, inputs):
        return [self.feature_nns[i](inputs[:, i]) for i in range(self.num_inputs)]

    def calc_outputs_split(self, inputs):
        columns = torch.split(inputs, 1, dim=-1)
        return [fnn(col.squeeze(-1)) for fnn, col in zip(self.feature_nns, columns)]

    def forward(self, inputs):
        individual_outputs = self.calc_outputs(inputs)
        conc_out = torch.stack([out.squeeze(-1) for out in individual_outputs], dim=-1)
        dropout_out = F.dropout(conc_out, p=self.feature_dropout, training=self.training)
        out = torch.sum(dropout_out, dim=-1)
        return out + self._bias, dropout_out


def feature_output_regularization(model, fnn_out):
    return torch.mean(torch.square(fnn_out), 0).sum() / fnn_out.shape[-1]


def weight_decay(model):
    num_networks = len(model.feature_nns)
    l2_losses = [(x**2).sum() for x in model.parameters()]
    return sum(l2_losses) / num_networks


def penalized_loss(model, logits, targets, fnn_out, output_regularization, l2_regularization):
    loss = F.mse_loss(logits.view(-1), targets.view(-1))
    reg_loss = 0.0
    if output_regularization > 0:
        reg_loss = reg_loss + output_regularization * feature_output_regularization(model, fnn_out)
    if l2_regularization > 0:
        reg_loss = reg_loss + l2_regularization * weight_decay(model)
    return loss + reg_loss


config = dict(lr=0.01, decay_rate=0.97, output_regularization=0.001, l2_regularization=1e-6)


def train_nam(member):
    model = NAM(
        num_inputs=N_FEATURES, num_units=32, hidden_sizes=[16], dropout=0.0, feature_dropout=0.05, activation="exu"
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config["decay_rate"])
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(N_TRAIN)
        total = 0.0
        for start in range(0, N_TRAIN, BATCH_SIZE):
            idx = perm[start : start + BATCH_SIZE]
            features, targets = X_train[idx], y_train[idx]
            optimizer.zero_grad()
            logits, fnn_out = model(features)
            loss = penalized_loss(
                model, logits, targets, fnn_out, config["output_regularization"], config["l2_regularization"]
            )
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        scheduler.step()
        if (epoch + 1) % 10 == 0:
            print(f"member {member} epoch {epoch + 1} loss {total / N_TRAIN:.4f} lr {scheduler.get_last_lr()[0]:.5f}")
    return model


ensemble = [train_nam(m) for m in range(NUM_ENSEMBLE)]
print(ensemble[0].feature_nns[0].model[0])

with torch.no_grad():
    for model in ensemble:
        model.eval()
    preds = torch.stack([model(X_test)[0] for model in ensemble], dim=0).mean(0)
    nam_rmse = torch.sqrt(F.mse_loss(preds, y_test)).item()
    routes = [
        torch.allclose(torch.cat(m.calc_outputs(X_test), -1), torch.cat(m.calc_outputs_split(X_test), -1))
        for m in ensemble
    ]

# ----------------------------------------------------------------------------------- linear baseline
A = torch.cat([X_train, torch.ones(N_TRAIN, 1)], dim=1)
coef = torch.linalg.lstsq(A, y_train.unsqueeze(1)).solution
lin_pred = torch.cat([X_test, torch.ones(N_TEST, 1)], dim=1) @ coef
linear_rmse = torch.sqrt(F.mse_loss(lin_pred.squeeze(1), y_test)).item()

linear = nn.Linear(N_FEATURES, 1)
opt = torch.optim.SGD(linear.parameters(), lr=0.1)
for _ in range(500):
    opt.zero_grad()
    loss = F.mse_loss(linear(X_train).squeeze(1), y_train)
    loss.backward()
    opt.step()
with torch.no_grad():
    sgd_rmse = torch.sqrt(F.mse_loss(linear(X_test).squeeze(1), y_test)).item()
print(f"test RMSE: NAM ensemble {nam_rmse:.4f}, linear lstsq {linear_rmse:.4f}, linear SGD {sgd_rmse:.4f}")

# ----------------------------------------------------------------------------------- shape functions
grid = torch.linspace(-1, 1, steps=101)
grid_np = np.tile(grid.numpy()[:, None], (1, N_FEATURES))
true_shapes = [torch.from_numpy(np.asarray(f, dtype=np.float32)) for f in shape_functions(grid_np)]
with torch.no_grad():
    learned = torch.stack(
        [torch.stack([fnn(grid).squeeze(-1) for fnn in m.feature_nns], dim=-1) for m in ensemble], dim=0
    ).mean(0)
corrs, errs = [], []
for i in range(N_FEATURES):
    f_hat = learned[:, i] - learned[:, i].mean()
    f_true = true_shapes[i] - true_shapes[i].mean()
    errs.append(torch.sqrt(torch.mean((f_hat - f_true) ** 2)).item())
    if i < 3:
        corrs.append(torch.corrcoef(torch.stack([f_hat, f_true]))[0, 1].item())
    print(f"feature {i}: shape RMSE {errs[-1]:.4f} range {(f_hat.max() - f_hat.min()).item():.4f}")
shape_corr = float(np.mean(corrs))
shape_rmse = float(np.mean(errs))
print(f"mean shape correlation {shape_corr:.4f}")

print(
    f"FINAL nam_rmse={nam_rmse:.4f} linear_rmse={linear_rmse:.4f} sgd_gap={abs(sgd_rmse - linear_rmse):.4f} "
    f"shape_corr={shape_corr:.4f} shape_rmse={shape_rmse:.4f} routes_agree={int(all(routes))}"
)
