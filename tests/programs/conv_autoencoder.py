"""A convolutional autoencoder: strided Conv2d + BatchNorm2d down, ConvTranspose2d up,
``nn.Flatten`` / ``nn.Unflatten`` around a linear bottleneck, MSE reconstruction loss,
Adam with ``ReduceLROnPlateau`` on the validation loss.
"""

import os

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# images: sums of two random Gaussian blobs on a 16x16 grid
rng = np.random.RandomState(0)
grid = np.stack(np.meshgrid(np.arange(16), np.arange(16), indexing="ij"), -1).astype(np.float32)


def make_images(n):
    centers = rng.uniform(3, 13, size=(n, 2, 1, 1, 2)).astype(np.float32)
    blobs = np.exp(-((grid[None, None] - centers) ** 2).sum(-1) / 6.0).sum(1)
    return torch.from_numpy(blobs[:, None].astype(np.float32))


train_images, val_images = make_images(384), make_images(128)

model = nn.Sequential(
    nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),   # 8x8
    nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),  # 4x4
    nn.Flatten(), nn.Linear(16 * 4 * 4, 12), nn.ReLU(), nn.Linear(12, 16 * 4 * 4), nn.Unflatten(1, (16, 4, 4)),
    nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),  # 8x8
    nn.ConvTranspose2d(8, 1, 3, stride=2, padding=1, output_padding=1),  # 16x16
)
criterion = nn.MSELoss()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=1)

for epoch in range(1, 9):
    model.train()
    permutation = torch.randperm(len(train_images))
    for start in range(0, len(train_images), 32):
        batch = train_images[permutation[start:start + 32]]
        optimizer.zero_grad()
        loss = criterion(model(batch), batch)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        val_loss = criterion(model(val_images), val_images).item()
    scheduler.step(val_loss)
    print(f"epoch {epoch} train mse {loss.item():.5f} val mse {val_loss:.5f} lr {optimizer.param_groups[0]['lr']:.5f}")

with torch.no_grad():
    reconstruction = model(val_images[:2])
print("reconstruction:", reconstruction.shape, reconstruction.dtype)
print(f"FINAL loss={val_loss:.5f}")
