"""Post-hoc calibration by temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", 2017).

As gpleiss/temperature_scaling writes it: ``ModelWithTemperature`` wraps a trained classifier with
``self.temperature = nn.Parameter(torch.ones(1) * 1.5)``, divides the logits by
``temperature.unsqueeze(1).expand(logits.size(0), logits.size(1))``, and ``set_temperature`` fits it
on held-out logits gathered under ``torch.no_grad()`` with ``optim.LBFGS([self.temperature], lr=0.01,
max_iter=50)`` and a closure returning ``nll_criterion(...)``. ``_ECELoss`` bins confidences by a loop
over ``torch.linspace(0, 1, n_bins + 1)`` boundaries (``gt``/``le`` masks); the vectorised ECE here
bins them with ``torch.bucketize`` into 15 bins and sums per bin with ``torch.zeros(15).scatter_add_``,
and the two must agree. Vector scaling (a per-class scale and bias) and matrix scaling (an
``nn.Linear(C, C)`` started at the identity) are fitted the same way. NLL, Brier score, ECE and
accuracy are reported before and after; temperature scaling must leave the accuracy unchanged.

The data: overlapping Gaussian classes with some flipped labels, made with NumPy; a wide MLP
trained long without regularisation on a small training set becomes over-confident.
"""

# ruff: noqa: UP031  (the repository's % formats)
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

NUM_CLASSES, DIM = 5, 8
# One fixed task for every seed (the seed draws the samples), so the bands measure training, not the task.
centres = np.random.default_rng(2017).normal(0.0, 1.3, size=(NUM_CLASSES, DIM)).astype(np.float32)


def make_split(n, flip=0.1):
    labels = rng.integers(0, NUM_CLASSES, size=n)
    x = centres[labels] + rng.normal(0.0, 1.0, size=(n, DIM)).astype(np.float32)
    flipped = rng.random(n) < flip
    labels[flipped] = rng.integers(0, NUM_CLASSES, size=int(flipped.sum()))
    return torch.from_numpy(x), torch.from_numpy(labels)


class _ECELoss(nn.Module):
    """gpleiss's loop over bins: (lower, upper] masks, |avg confidence - accuracy| weighted by the bin's share."""

    def __init__(self, n_bins=15):
        super().__init__()
        bin_boundaries = torch.linspace(0, 1, n_bins + 1)
        self.bin_lowers = bin_boundaries[:-1]
        self.bin_uppers = bin_boundaries[1:]

    def forward(self, logits, labels):
        softmaxes = F.softmax(logits, dim=1)
        confidences, predictions = torch.max(softmaxes, 1)
        accuracies = predictions.eq(labels)
        ece = torch.zeros(1, device=logits.device)
        for bin_lower, bin_upper in zip(self.bin_lowers, self.bin_uppers):
            in_bin = confidences.gt(bin_lower.item()) * confidences.le(bin_upper.item())
            prop_in_bin = in_bin.float().mean()
            if prop_in_bin.item() > 0:
                accuracy_in_bin = accuracies[in_bin].float().mean()
                avg_confidence_in_bin = confidences[in_bin].mean()
                ece += torch.abs(avg_confidence_in_bin - accuracy_in_bin) * prop_in_bin
        return ece


def binned_calibration(probs, labels, n_bins=15):
    """Per-bin counts, summed confidences and hits by bucketize + scatter_add_; returns (ece, counts, conf, acc)."""
    confidences, predictions = probs.max(dim=1)
    hits = predictions.eq(labels).float()
    inner_boundaries = torch.linspace(0, 1, n_bins + 1)[1:-1]
    bins = torch.bucketize(confidences, inner_boundaries)  # bin i holds (b_i, b_{i+1}], like the loop's gt/le
    counts = torch.zeros(n_bins).scatter_add_(0, bins, torch.ones_like(confidences))
    confidence_sums = torch.zeros(n_bins).scatter_add_(0, bins, confidences)
    hit_sums = torch.zeros(n_bins).scatter_add_(0, bins, hits)
    ece = (confidence_sums - hit_sums).abs().sum() / len(labels)
    return ece, counts, confidence_sums, hit_sums


def brier_score(probs, labels):
    return ((probs - F.one_hot(labels, NUM_CLASSES).float()) ** 2).sum(dim=1).mean()


class ModelWithTemperature(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model
        self.temperature = nn.Parameter(torch.ones(1) * 1.5)

    def forward(self, input):
        return self.temperature_scale(self.model(input))

    def temperature_scale(self, logits):
        temperature = self.temperature.unsqueeze(1).expand(logits.size(0), logits.size(1))
        return logits / temperature

    def set_temperature(self, valid_x, valid_y):
        nll_criterion = nn.CrossEntropyLoss()
        ece_criterion = _ECELoss()
        with torch.no_grad():
            logits = self.model(valid_x)
        before_nll = nll_criterion(logits, valid_y).item()
        before_ece = ece_criterion(logits, valid_y).item()
        print('Before temperature - NLL: %.3f, ECE: %.3f' % (before_nll, before_ece))

        optimizer = optim.LBFGS([self.temperature], lr=0.01, max_iter=50)

        def eval():
            optimizer.zero_grad()
            loss = nll_criterion(self.temperature_scale(logits), valid_y)
            loss.backward()
            return loss
        optimizer.step(eval)

        after_nll = nll_criterion(self.temperature_scale(logits), valid_y).item()
        after_ece = ece_criterion(self.temperature_scale(logits), valid_y).item()
        print('Optimal temperature: %.3f' % self.temperature.item())
        print('After temperature - NLL: %.3f, ECE: %.3f' % (after_nll, after_ece))
        return self


class VectorScaling(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(num_classes))
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def forward(self, logits):
        return logits * self.scale + self.bias


class MatrixScaling(nn.Linear):
    def __init__(self, num_classes):
        super().__init__(num_classes, num_classes)
        with torch.no_grad():
            self.weight.copy_(torch.eye(num_classes))
            self.bias.zero_()


def fit_calibrator(calibrator, logits, labels, weight_decay=0.0):
    optimizer = optim.LBFGS(calibrator.parameters(), lr=0.1, max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(calibrator(logits), labels)
        if weight_decay:
            loss = loss + weight_decay * sum((p ** 2).sum() for p in calibrator.parameters())
        loss.backward()
        return loss
    optimizer.step(closure)
    return calibrator


def report(name, logits, labels):
    probs = F.softmax(logits, dim=1)
    ece, counts, _, _ = binned_calibration(probs, labels)
    nll = F.cross_entropy(logits, labels).item()
    acc = (logits.argmax(1) == labels).float().mean().item()
    print(f"{name:>10}: NLL {nll:.4f} Brier {brier_score(probs, labels).item():.4f} ECE {ece.item():.4f} "
          f"acc {acc:.4f} mean confidence {probs.max(1).values.mean().item():.4f}")
    return nll, ece.item(), acc


train_x, train_y = make_split(300)
valid_x, valid_y = make_split(600)
test_x, test_y = make_split(1500)
print(f"train {tuple(train_x.shape)} valid {tuple(valid_x.shape)} test {tuple(test_x.shape)}")

model = nn.Sequential(nn.Linear(DIM, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, NUM_CLASSES))
optimizer = optim.Adam(model.parameters(), lr=2e-3)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(train_x, train_y), batch_size=50, shuffle=True)
for epoch in range(60):
    for xb, yb in loader:
        loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if epoch % 20 == 19:
        with torch.no_grad():
            train_acc = (model(train_x).argmax(1) == train_y).float().mean().item()
        print(f"epoch {epoch + 1} last batch loss {loss.item():.4f} train acc {train_acc:.3f}")
model.eval()

with torch.no_grad():
    test_logits = model(test_x)
    valid_logits = model(valid_x)
    loop_ece = _ECELoss()(test_logits, test_y).item()
    vector_ece, counts, confidence_sums, hit_sums = binned_calibration(F.softmax(test_logits, 1), test_y)
print(f"bucketize ECE {vector_ece.item():.5f} equals the loop's {abs(vector_ece.item() - loop_ece) < 1e-5}; "
      f"binned {int(counts.sum().item())} of {len(test_y)}")
occupied = counts > 0
print("reliability (bin, count, confidence, accuracy):",
      [(int(b), int(n), round(c, 3), round(a, 3)) for b, n, c, a in zip(
          occupied.nonzero().flatten().tolist()[-3:], counts[occupied].tolist()[-3:],
          (confidence_sums[occupied] / counts[occupied]).tolist()[-3:], (hit_sums[occupied] / counts[occupied]).tolist()[-3:])])

before_nll, before_ece, before_acc = report("uncalibrated", test_logits, test_y)

scaled_model = ModelWithTemperature(model)
scaled_model.set_temperature(valid_x, valid_y)
temperature = scaled_model.temperature.item()
with torch.no_grad():
    scaled_logits = scaled_model(test_x)
after_nll, after_ece, after_acc = report("temperature", scaled_logits, test_y)
assert after_acc == before_acc, "temperature scaling changed the accuracy"
assert torch.equal(scaled_logits.argmax(1), test_logits.argmax(1))
print(f"over-confident: temperature {temperature:.3f} > 1 {temperature > 1}")

temperature_param = nn.Parameter(torch.ones(1))
lbfgs = optim.LBFGS([temperature_param], lr=1, max_iter=100, line_search_fn="strong_wolfe")


def temperature_closure():
    lbfgs.zero_grad()
    loss = F.cross_entropy(valid_logits / temperature_param, valid_y)
    loss.backward()
    return loss


lbfgs.step(temperature_closure)
wolfe_temperature = temperature_param.item()
with torch.no_grad():
    wolfe_nll = F.cross_entropy(valid_logits / wolfe_temperature, valid_y).item()
    gpleiss_nll = F.cross_entropy(valid_logits / temperature, valid_y).item()
with torch.no_grad():
    wolfe_nll_test, wolfe_ece, wolfe_acc = report("wolfe", test_logits / wolfe_temperature, test_y)
assert wolfe_acc == before_acc, "temperature scaling changed the accuracy"
print(f"strong-Wolfe temperature {wolfe_temperature:.3f} (valid NLL {wolfe_nll:.4f}) against gpleiss's "
      f"lr=0.01, 50-iteration fit {temperature:.3f} (valid NLL {gpleiss_nll:.4f})")

vector = fit_calibrator(VectorScaling(NUM_CLASSES), valid_logits, valid_y)
matrix = fit_calibrator(MatrixScaling(NUM_CLASSES), valid_logits, valid_y, weight_decay=1e-3)
with torch.no_grad():
    vector_nll, vector_ece_value, vector_acc = report("vector", vector(test_logits), test_y)
    matrix_nll, matrix_ece_value, matrix_acc = report("matrix", matrix(test_logits), test_y)

print(f"FINAL temperature={temperature:.4f} temperature_wolfe={wolfe_temperature:.4f} ece_before={before_ece:.4f} ece_after={after_ece:.4f} "
      f"nll_before={before_nll:.4f} nll_after={after_nll:.4f} acc={after_acc:.4f} "
      f"ece_wolfe={wolfe_ece:.4f} nll_wolfe={wolfe_nll_test:.4f} ece_vector={vector_ece_value:.4f} ece_matrix={matrix_ece_value:.4f} nll_vector={vector_nll:.4f} "
      f"nll_matrix={matrix_nll:.4f} acc_matrix={matrix_acc:.4f}")
