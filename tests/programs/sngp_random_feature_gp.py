"""SNGP (Liu et al., NeurIPS 2020; google/uncertainty-baselines) in the layout of its PyTorch ports, on
two moons.

The feature extractor is the tutorial's ``DeepResNet``: an input projection (spectral-normalised by the
legacy hook ``nn.utils.spectral_norm``, which keeps ``weight_orig``/``weight_u``) followed by residual
blocks ``h = h + dropout(relu(layer(h)))`` whose Linears carry
``torch.nn.utils.parametrizations.spectral_norm`` and, chained after it on the same ``weight``, a
``parametrize.register_parametrization`` of the port's ``norm_multiplier`` (so the largest singular value
is bounded by 0.95, not 1). The output layer is the random-feature Gaussian process: an input
``nn.LayerNorm``, a frozen ``nn.Linear`` with ``normal_()`` weights and ``uniform_(0, 2 * math.pi)`` bias,
``cos`` features scaled by ``math.sqrt(2.0 / D)`` and a trainable ``beta`` Linear. In the last epoch the
Laplace precision matrix is accumulated under ``torch.no_grad()`` (the port's two branches: the plain sum
``precision += phi.T @ (p * (1 - p) * phi)`` when ``gp_cov_momentum < 0``, and the moving average
``momentum * precision + (1 - momentum) * ...`` otherwise, here only computed); the covariance is
``ridge * torch.linalg.inv(precision)``, and again by ``torch.cholesky_inverse(torch.linalg.cholesky(...))``
(must agree); the predictive variance is ``torch.sum(phi @ cov * phi, dim=-1)`` (against
``torch.diagonal(phi @ cov @ phi.T)``), and the mean-field logits ``logits / torch.sqrt(1 + math.pi / 8 *
var)``.

Checked: the spectral norms of the normalised weights by ``torch.linalg.matrix_norm(W, 2)`` against their
bounds (0.95 for the hidden layers, 1 for the input projection), the test accuracy, the two covariance and
variance routes agreeing, and distance awareness: the predictive variance on a ring of points far from the
moons exceeds the variance on the training points, and their mean-field confidence is lower.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.parametrize as parametrize
from torch.nn.utils.parametrizations import spectral_norm

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


def make_moons(n, noise=0.1):
    n_out = n // 2
    n_in = n - n_out
    outer = np.stack([np.cos(np.linspace(0, np.pi, n_out)), np.sin(np.linspace(0, np.pi, n_out))], 1)
    inner = np.stack([1 - np.cos(np.linspace(0, np.pi, n_in)), 1 - np.sin(np.linspace(0, np.pi, n_in)) - 0.5], 1)
    X = np.concatenate([outer, inner]) + noise * np.random.randn(n, 2)
    y = np.concatenate([np.zeros(n_out), np.ones(n_in)])
    return X.astype(np.float32), y.astype(np.int64)


X_train, y_train = make_moons(400)
X_test, y_test = make_moons(200)
X_train, y_train = torch.from_numpy(X_train), torch.from_numpy(y_train)
X_test, y_test = torch.from_numpy(X_test), torch.from_numpy(y_test)


class NormMultiplier(nn.Module):
    """Scales an already spectral-normalised weight to the port's ``norm_multiplier`` bound."""

    def __init__(self, norm_multiplier):
        super().__init__()
        self.norm_multiplier = norm_multiplier

    def forward(self, weight):
        return self.norm_multiplier * weight


class RandomFeatureGaussianProcess(nn.Module):
    def __init__(self, in_features, out_features, num_inducing=256, ridge_penalty=1.0, gp_cov_momentum=-1.0,
                 kernel_scale=1.0, gp_input_normalization=True):
        super().__init__()
        self.num_inducing = num_inducing
        self.ridge_penalty = ridge_penalty
        self.gp_cov_momentum = gp_cov_momentum
        self.gp_input_normalization = gp_input_normalization
        self._input_norm_layer = nn.LayerNorm(in_features)
        self._random_feature = nn.Linear(in_features, num_inducing)
        nn.init.normal_(self._random_feature.weight, std=1.0 / kernel_scale)
        nn.init.uniform_(self._random_feature.bias, 0, 2 * math.pi)
        self._random_feature.weight.requires_grad = False
        self._random_feature.bias.requires_grad = False
        self.beta = nn.Linear(num_inducing, out_features, bias=False)
        self.register_buffer("initial_precision_matrix", ridge_penalty * torch.eye(num_inducing))
        self.register_buffer("precision_matrix", self.initial_precision_matrix.clone())
        self.register_buffer("momentum_precision_matrix", self.initial_precision_matrix.clone())

    def reset_covariance_matrix(self):
        self.precision_matrix = self.initial_precision_matrix.clone()
        self.momentum_precision_matrix = self.initial_precision_matrix.clone()

    def gp_features(self, gp_inputs):
        if self.gp_input_normalization:
            gp_inputs = self._input_norm_layer(gp_inputs)
        return torch.cos(self._random_feature(gp_inputs)) * math.sqrt(2.0 / self.num_inducing)

    @torch.no_grad()
    def update_precision(self, gp_feature, logits):
        prob = torch.softmax(logits, dim=-1).max(dim=-1, keepdim=True)[0]
        prob_multiplier = prob * (1.0 - prob)
        batch_precision = gp_feature.t() @ (prob_multiplier * gp_feature)
        m = 0.999
        self.momentum_precision_matrix = m * self.momentum_precision_matrix + (1.0 - m) * batch_precision
        if self.gp_cov_momentum > 0:
            self.precision_matrix = (self.gp_cov_momentum * self.precision_matrix
                                     + (1.0 - self.gp_cov_momentum) * batch_precision)
        else:
            self.precision_matrix += batch_precision

    def compute_predictive_covariance(self):
        return torch.linalg.inv(self.precision_matrix) * self.ridge_penalty

    def forward(self, gp_inputs, update_cov=False, return_covmat=False):
        gp_feature = self.gp_features(gp_inputs)
        gp_output = self.beta(gp_feature)
        if update_cov:
            self.update_precision(gp_feature, gp_output.detach())
        if return_covmat:
            feature_cov = self.compute_predictive_covariance()
            gp_var = torch.sum(gp_feature @ feature_cov * gp_feature, dim=-1)
            return gp_output, gp_var
        return gp_output


class DeepResNet(nn.Module):
    def __init__(self, num_classes=2, num_layers=3, num_hidden=32, dropout_rate=0.1, spec_norm_bound=0.95):
        super().__init__()
        self.num_layers = num_layers
        self.input_layer = nn.utils.spectral_norm(nn.Linear(2, num_hidden))
        self.dense_layers = nn.ModuleList()
        for _ in range(num_layers):
            layer = spectral_norm(nn.Linear(num_hidden, num_hidden))
            parametrize.register_parametrization(layer, "weight", NormMultiplier(spec_norm_bound))
            self.dense_layers.append(layer)
        self.dropout = nn.Dropout(dropout_rate)
        self.classifier = RandomFeatureGaussianProcess(num_hidden, num_classes)

    def embed(self, inputs):
        hidden = self.input_layer(inputs)
        for i in range(self.num_layers):
            resid = self.dropout(F.relu(self.dense_layers[i](hidden)))
            hidden = hidden + resid
        return hidden

    def forward(self, inputs, update_cov=False, return_covmat=False):
        return self.classifier(self.embed(inputs), update_cov=update_cov, return_covmat=return_covmat)


def mean_field_logits(logits, variances, mean_field_factor=math.pi / 8.0):
    logits_scale = torch.sqrt(1.0 + variances * mean_field_factor)
    if mean_field_factor < 0:
        return logits
    return logits / logits_scale.unsqueeze(-1)


model = DeepResNet()
print(f"random features frozen: {not model.classifier._random_feature.weight.requires_grad}, "
      f"trainable tensors: {sum(1 for p in model.parameters() if p.requires_grad)}")
print(f"legacy spectral norm keeps {sorted(n for n, _ in model.input_layer.named_parameters())} "
      f"and {sorted(n for n, _ in model.input_layer.named_buffers())}")
print(f"parametrized: {[type(p).__name__ for p in model.dense_layers[0].parametrizations.weight]}")

optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=1e-4)
criterion = nn.CrossEntropyLoss()
EPOCHS, BATCH = 40, 64
for epoch in range(EPOCHS):
    model.train()
    last_epoch = epoch == EPOCHS - 1
    if last_epoch:
        model.classifier.reset_covariance_matrix()
    perm = torch.randperm(X_train.size(0))
    total, count = 0.0, 0
    for start in range(0, X_train.size(0), BATCH):
        idx = perm[start:start + BATCH]
        logits = model(X_train[idx], update_cov=last_epoch)
        loss = criterion(logits, y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * idx.numel()
        count += idx.numel()
    if epoch % 10 == 0 or last_epoch:
        print(f"epoch {epoch:2d} loss {total / count:.4f}")

# ----------------------------------------------------------------------------------- spectral norms
model.eval()
with torch.no_grad():
    sn_hidden = max(torch.linalg.matrix_norm(layer.weight, 2).item() for layer in model.dense_layers)
    sn_input = torch.linalg.matrix_norm(model.input_layer.weight, 2).item()
    sn_raw = max(torch.linalg.matrix_norm(layer.parametrizations.weight.original, 2).item()
                 for layer in model.dense_layers)
print(f"largest singular value: hidden {sn_hidden:.4f} (bound 0.95, unnormalised {sn_raw:.4f}), input {sn_input:.4f}")

# ----------------------------------------------------------------------------------- covariance
gp = model.classifier
with torch.no_grad():
    cov_inv = gp.compute_predictive_covariance()
    cov_chol = torch.cholesky_inverse(torch.linalg.cholesky(gp.precision_matrix)) * gp.ridge_penalty
    cov_agree = torch.allclose(cov_inv, cov_chol, rtol=1e-3, atol=1e-5)
    momentum_trace_ratio = (gp.momentum_precision_matrix.trace() / gp.precision_matrix.trace()).item()
print(f"precision {tuple(gp.precision_matrix.shape)} symmetric: "
      f"{torch.allclose(gp.precision_matrix, gp.precision_matrix.T, atol=1e-5)}, inv == cholesky_inverse: {cov_agree}")

with torch.no_grad():
    logits, var = model(X_test, return_covmat=True)
    feats = gp.gp_features(model.embed(X_test))
    var_diag = torch.diagonal(feats @ cov_inv @ feats.T)
    var_agree = torch.allclose(var, var_diag, rtol=1e-3, atol=1e-6)
    probs = F.softmax(mean_field_logits(logits, var), dim=-1)
    acc = (probs.argmax(-1) == y_test).float().mean().item()
    _, var_train = model(X_train, return_covmat=True)
    angles = torch.linspace(0, 2 * math.pi, 64)
    far = torch.stack([0.5 + 4.0 * torch.cos(angles), 0.25 + 4.0 * torch.sin(angles)], 1)
    far_logits, var_far = model(far, return_covmat=True)
    far_conf = F.softmax(mean_field_logits(far_logits, var_far), dim=-1).max(-1)[0].mean().item()
    in_conf = probs.max(-1)[0].mean().item()
far_over_near = (var_far.mean() / var_train.mean()).item()
distance_aware = far_over_near > 1.0 and far_conf < in_conf
sn_bounded = sn_hidden <= 0.95 * 1.01 and sn_input <= 1.01
print(f"variance: sum == diagonal {var_agree}, train mean {var_train.mean().item():.5f}, "
      f"far mean {var_far.mean().item():.5f}")
print(f"confidence: test {in_conf:.4f}, far {far_conf:.4f}; test accuracy {acc:.4f}")

print(f"FINAL acc={acc:.4f} sn_hidden={sn_hidden:.4f} sn_input={sn_input:.4f} "
      f"sn_bounded={int(sn_bounded)} log_var_ratio={math.log(far_over_near):.4f} distance_aware={int(distance_aware)} "
      f"agree={int(cov_agree and var_agree)} momentum_trace={momentum_trace_ratio:.4f}")
