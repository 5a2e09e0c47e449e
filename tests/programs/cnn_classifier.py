"""Small CNN on synthetic 12x12 "shape" images, written the way tutorials write it.

Device selection boilerplate, Conv2d/MaxPool2d, ``x.view(x.size(0), -1)`` after the conv stack,
Adam with StepLR, evaluation under ``model.eval()`` and ``torch.no_grad()``.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
print(f"Using device: {device}")

# data: a horizontal bar, a vertical bar, a diagonal or a square outline at a random place
rng = np.random.RandomState(0)


def make_images(n):
    images = 0.8 * rng.randn(n, 1, 12, 12).astype(np.float32)
    labels = rng.randint(0, 4, size=n)
    for image, label in zip(images, labels):
        r, c = rng.randint(1, 7, size=2)
        if label == 0:
            image[0, r + 2, c:c + 5] += 2.0
        elif label == 1:
            image[0, r:r + 5, c + 2] += 2.0
        elif label == 2:
            image[0, np.arange(5) + r, np.arange(5) + c] += 2.0
        else:
            image[0, r:r + 5, c] += 2.0
            image[0, r:r + 5, c + 4] += 2.0
    return torch.from_numpy(images), torch.from_numpy(labels)


train_set = TensorDataset(*make_images(512))
test_set = TensorDataset(*make_images(256))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1 = nn.Linear(16 * 3 * 3, 32)
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.view(x.size(0), -1)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


model = Net().to(device)
print(model)
optimizer = optim.Adam(model.parameters(), lr=5e-3)
scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=4, gamma=0.5)
train_loader = DataLoader(train_set, batch_size=32, shuffle=True)
test_loader = DataLoader(test_set, batch_size=128)


def test():
    model.eval()
    test_loss = 0.0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.cross_entropy(output, target, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
    test_loss /= len(test_loader.dataset)
    return test_loss, correct / len(test_loader.dataset)


for epoch in range(1, 9):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(data), target)
        loss.backward()
        optimizer.step()
        if batch_idx % 8 == 0:
            print(f"Train Epoch: {epoch} [{batch_idx * len(data)}/{len(train_loader.dataset)}]\tLoss: {loss.item():.6f}")
    scheduler.step()
    test_loss, accuracy = test()
    print(f"Test set: Average loss: {test_loss:.4f}, Accuracy: {accuracy:.3f}, lr {scheduler.get_last_lr()[0]:.5f}")

print(f"FINAL loss={test_loss:.4f} acc={accuracy:.4f}")
