"""MLP classifier on small synthetic 8x8 images: the first script of every tutorial.

Flattens with ``x.view(x.size(0), -1)``, trains with SGD + momentum on mini-batches from a
TensorDataset, evaluates under ``torch.no_grad()``.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# data: four class templates plus noise; the same images for every seed and framework
rng = np.random.RandomState(0)
templates = rng.randn(4, 1, 8, 8).astype(np.float32)


def make_images(n):
    labels = rng.randint(0, 4, size=n)
    images = templates[labels] + 3.0 * rng.randn(n, 1, 8, 8).astype(np.float32)
    return torch.from_numpy(images), torch.from_numpy(labels).long()


x_train, y_train = make_images(768)
x_test, y_test = make_images(512)


class MLP(nn.Module):
    def __init__(self, in_features=64, hidden=64, num_classes=4):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        x = x.view(x.size(0), -1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


model = MLP()
print(model)
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4)
train_loader = DataLoader(TensorDataset(x_train, y_train), batch_size=32, shuffle=True)


def evaluate():
    model.eval()
    correct = 0
    total_loss = 0.0
    with torch.no_grad():
        logits = model(x_test)
        total_loss = criterion(logits, y_test).item()
        correct = (logits.argmax(dim=1) == y_test).sum().item()
    model.train()
    return total_loss, correct / len(y_test)


for epoch in range(1, 7):
    running_loss = 0.0
    for inputs, targets in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(inputs), targets)
        loss.backward()
        optimizer.step()
        running_loss += loss.item() * inputs.size(0)
    test_loss, test_acc = evaluate()
    print(f"epoch {epoch} train_loss {running_loss / len(x_train):.4f} test_loss {test_loss:.4f} "
          f"test_acc {test_acc:.3f}")

print(f"FINAL loss={test_loss:.4f} acc={test_acc:.4f}")
