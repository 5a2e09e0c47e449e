"""SWAG (Maddox et al., NeurIPS 2019) as wjmaddox/swa_gaussians writes it, on a small noisy classification task.

An MLP with ``BatchNorm1d`` is trained by SGD into overfitting; then, at a constant learning rate from
``SWALR``, a snapshot of ``torch.nn.utils.parameters_to_vector(model.parameters())`` is collected after every
epoch into running first and second moments (``mean``, ``sq_mean``) and into a deviation matrix of the last
``K`` snapshots (``torch.stack`` of ``theta - mean``). The same snapshots feed a
``torch.optim.swa_utils.AveragedModel``, whose parameters must equal the SWAG mean.

Samples follow the repository's ``sample`` with ``scale=1``, low rank + diagonal::

    mean + var.clamp(1e-30).sqrt() * z1 / sqrt(2) + D.t() @ z2 / sqrt(2 * (K - 1))

written back by ``torch.nn.utils.vector_to_parameters``; BatchNorm statistics are recomputed for every
sample by ``update_bn(loader, model)``, and the softmax outputs of the samples are averaged (Bayesian model
averaging). NLL, accuracy and expected calibration error (ECE, 10 equal-width bins, the calibration loop of
the repository's ``utils``) of the last SGD iterate, of SWA and of SWAG are printed; SWAG's NLL must be below
the last SGD iterate's.
"""

import copy
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parameters_to_vector, vector_to_parameters
from torch.optim.swa_utils import SWALR, AveragedModel, update_bn
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

N_CLASSES, DIM = 4, 10


def make_data(n):
    centers = np.random.RandomState(123).randn(N_CLASSES, DIM) * 1.1
    labels = rng.randint(0, N_CLASSES, size=n)
    x = centers[labels] + rng.randn(n, DIM) * 1.2
    flip = rng.rand(n) < 0.2
    labels = np.where(flip, rng.randint(0, N_CLASSES, size=n), labels)
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(labels.astype(np.int64))


x_train, y_train = make_data(300)
x_test, y_test = make_data(1000)
loader = DataLoader(TensorDataset(x_train, y_train), batch_size=32, shuffle=True)


class MLP(nn.Module):
    def __init__(self, hidden=128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(DIM, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Linear(hidden, N_CLASSES),
        )

    def forward(self, x):
        return self.net(x)


class SWAG:
    """Flat-vector SWAG: running moments and the last ``max_num_models`` deviations."""

    def __init__(self, model, max_num_models=10, var_clamp=1e-30):
        self.max_num_models = max_num_models
        self.var_clamp = var_clamp
        num_params = parameters_to_vector(model.parameters()).numel()
        self.mean = torch.zeros(num_params)
        self.sq_mean = torch.zeros(num_params)
        self.n_models = 0
        self.cov_mat_sqrt = []

    @torch.no_grad()
    def collect_model(self, model):
        w = parameters_to_vector(model.parameters()).detach().clone()
        self.mean.mul_(self.n_models / (self.n_models + 1.0)).add_(w / (self.n_models + 1.0))
        self.sq_mean.mul_(self.n_models / (self.n_models + 1.0)).add_(w ** 2 / (self.n_models + 1.0))
        self.cov_mat_sqrt.append(w - self.mean)
        if len(self.cov_mat_sqrt) > self.max_num_models:
            self.cov_mat_sqrt.pop(0)
        self.n_models += 1

    def sample(self, scale=1.0):
        var = torch.clamp(self.sq_mean - self.mean ** 2, self.var_clamp)
        z1 = torch.randn_like(self.mean)
        deviations = torch.stack(self.cov_mat_sqrt)  # (K, num_params)
        K = deviations.size(0)
        z2 = torch.randn(K)
        sample = self.mean + scale ** 0.5 * var.sqrt() * z1 / math.sqrt(2.0)
        sample = sample + scale ** 0.5 * deviations.t() @ z2 / math.sqrt(2.0 * (K - 1))
        return sample


def nll_acc_ece(probs, labels, n_bins=10):
    nll = F.nll_loss(torch.log(probs.clamp_min(1e-12)), labels).item()
    confidences, predictions = probs.max(1)
    accuracies = predictions.eq(labels)
    acc = accuracies.float().mean().item()
    bin_boundaries = torch.linspace(0, 1, n_bins + 1)
    ece = torch.zeros(1)
    for bin_lower, bin_upper in zip(bin_boundaries[:-1], bin_boundaries[1:]):
        in_bin = confidences.gt(bin_lower.item()) * confidences.le(bin_upper.item())
        prop_in_bin = in_bin.float().mean()
        if prop_in_bin.item() > 0:
            accuracy_in_bin = accuracies[in_bin].float().mean()
            avg_confidence_in_bin = confidences[in_bin].mean()
            ece += torch.abs(avg_confidence_in_bin - accuracy_in_bin) * prop_in_bin
    return nll, acc, ece.item()


@torch.no_grad()
def predict(model):
    model.eval()
    return F.softmax(model(x_test), dim=1)


def train_epoch(model, optimizer):
    model.train()
    total = 0.0
    for inputs, targets in loader:
        loss = F.cross_entropy(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * inputs.size(0)
    return total / len(loader.dataset)


model = MLP()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
SWA_START, EPOCHS = 30, 50
swa_model = AveragedModel(model)
swa_scheduler = SWALR(optimizer, swa_lr=0.05, anneal_epochs=3, anneal_strategy="cos")
swag = SWAG(model, max_num_models=10)
for epoch in range(1, EPOCHS + 1):
    loss = train_epoch(model, optimizer)
    if epoch > SWA_START:
        swa_model.update_parameters(model)
        swag.collect_model(model)
        swa_scheduler.step()
    if epoch % 10 == 0:
        print(f"epoch {epoch} train loss {loss:.4f} lr {optimizer.param_groups[0]['lr']:.4f} "
              f"snapshots {swag.n_models}")

# the SWAG mean is the SWA average of the same snapshots
swa_vector = parameters_to_vector(swa_model.module.parameters()).detach()
mean_gap = (swa_vector - swag.mean).abs().max().item()
print(f"n_averaged {int(swa_model.n_averaged)} rank {len(swag.cov_mat_sqrt)} SWA vs SWAG mean gap small {mean_gap < 1e-4}")
assert mean_gap < 1e-4, mean_gap

update_bn(loader, swa_model)
results = {"sgd": nll_acc_ece(predict(model), y_test), "swa": nll_acc_ece(predict(swa_model), y_test)}

N_SAMPLES = 20
sample_model = copy.deepcopy(model)
bma_probs = torch.zeros(x_test.size(0), N_CLASSES)
for _ in range(N_SAMPLES):
    vector_to_parameters(swag.sample(scale=1.0), sample_model.parameters())
    update_bn(loader, sample_model)
    bma_probs += predict(sample_model) / N_SAMPLES
results["swag"] = nll_acc_ece(bma_probs, y_test)
for name, (nll, acc, ece) in results.items():
    print(f"{name:5s} nll {nll:.4f} acc {acc:.4f} ece {ece:.4f}")
assert results["swag"][0] < results["sgd"][0]

print(f"FINAL sgd_nll={results['sgd'][0]:.4f} swa_nll={results['swa'][0]:.4f} swag_nll={results['swag'][0]:.4f} "
      f"swag_acc={results['swag'][1]:.4f} sgd_ece={results['sgd'][2]:.4f} swag_ece={results['swag'][2]:.4f}")
