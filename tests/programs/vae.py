"""A variational autoencoder on binary 8x8 patterns, after the PyTorch examples' VAE.

Reparameterisation with ``randn_like``, ``binary_cross_entropy(reduction="sum")`` plus the
analytic KL term, Adam; the test ELBO is computed under ``torch.no_grad()``.
"""

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# data: one of six prototype patterns with 5% of its pixels flipped
rng = np.random.RandomState(0)
prototypes = (rng.rand(6, 64) < 0.4).astype(np.float32)


def make_patterns(n):
    patterns = prototypes[rng.randint(0, 6, size=n)]
    flips = (rng.rand(n, 64) < 0.05).astype(np.float32)
    return torch.from_numpy(np.abs(patterns - flips))


train_loader = DataLoader(TensorDataset(make_patterns(768)), batch_size=64, shuffle=True)
test_data = make_patterns(256)


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 48)
        self.fc21 = nn.Linear(48, 4)
        self.fc22 = nn.Linear(48, 4)
        self.fc3 = nn.Linear(4, 48)
        self.fc4 = nn.Linear(48, 64)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 64))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 64), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


model = VAE()
optimizer = optim.Adam(model.parameters(), lr=3e-3)

for epoch in range(1, 9):
    model.train()
    train_loss = 0.0
    for (data,) in train_loader:
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(data)
        loss = loss_function(recon_batch, data, mu, logvar)
        loss.backward()
        train_loss += loss.item()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        recon, mu, logvar = model(test_data)
        test_loss = loss_function(recon, test_data, mu, logvar).item() / len(test_data)
        reconstruction_error = ((recon > 0.5).float() != test_data).float().mean().item()
    print(f"====> Epoch: {epoch} Average loss: {train_loss / len(train_loader.dataset):.4f} "
          f"Test set loss: {test_loss:.4f}")

with torch.no_grad():
    sample = model.decode(torch.randn(16, 4))
print(f"sample shape {tuple(sample.shape)} range [{sample.min().item():.2f}, {sample.max().item():.2f}]")
print(f"FINAL loss={test_loss:.4f} pixel_error={reconstruction_error:.4f}")
