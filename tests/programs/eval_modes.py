"""Train / eval modes and gradient-free evaluation: BatchNorm and Dropout behave differently
in ``model.eval()``, ``torch.no_grad()`` stops graph building, ``@torch.no_grad()`` decorates an
evaluation function, ``torch.inference_mode()`` for prediction, and ``model.train()`` restores.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

rng = np.random.RandomState(0)
centers = rng.randn(3, 16).astype(np.float32) * 1.5
labels_np = rng.randint(0, 3, size=900)
features_np = centers[labels_np] + rng.randn(900, 16).astype(np.float32) * 3.0 + 5.0  # off-centre: BN matters
features = torch.from_numpy(features_np)
labels = torch.from_numpy(labels_np)
x_train, y_train = features[:600], labels[:600]
x_test, y_test = features[600:], labels[600:]


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(16, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.3),
            nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.3),
            nn.Linear(64, 3),
        )

    def forward(self, x):
        return self.net(x)


model = Classifier()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)


@torch.no_grad()
def evaluate(x, y):
    model.eval()
    logits = model(x)
    loss = F.cross_entropy(logits, y).item()
    accuracy = (logits.argmax(dim=1) == y).float().mean().item()
    model.train()
    return loss, accuracy, logits.requires_grad


for epoch in range(1, 9):
    permutation = torch.randperm(len(x_train))
    for start in range(0, len(x_train), 50):
        index = permutation[start:start + 50]
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x_train[index]), y_train[index])
        loss.backward()
        optimizer.step()
    test_loss, test_accuracy, graph_built = evaluate(x_test, y_test)
    print(f"epoch {epoch} train loss {loss.item():.4f} test loss {test_loss:.4f} acc {test_accuracy:.3f}")

print(f"graph built during evaluation: {graph_built}, still training: {model.training}")
bn = model.net[1]
print(f"running_mean mean {bn.running_mean.mean().item():.3f} batches tracked {int(bn.num_batches_tracked)}")

# dropout makes train-mode predictions random; eval-mode ones are repeatable
with torch.no_grad():
    first, second = model(x_test), model(x_test)
    model.eval()
    third, fourth = model(x_test), model(x_test)
print(f"train mode repeatable: {torch.equal(first, second)}, eval mode repeatable: {torch.equal(third, fourth)}")

with torch.inference_mode():
    predictions = model(x_test).argmax(dim=1)
print(f"inference mode requires_grad: {predictions.requires_grad}, grad enabled now: {torch.is_grad_enabled()}")
print(f"FINAL loss={test_loss:.4f} acc={test_accuracy:.4f}")
