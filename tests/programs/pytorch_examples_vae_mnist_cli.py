"""pytorch/examples vae/main.py as it is written today, command line included: ``argparse`` with
``--batch-size``, ``--epochs``, ``--no-accel``, ``--seed``, ``--log-interval``; ``use_accel = not
args.no_accel and torch.accelerator.is_available()``, ``device =
torch.accelerator.current_accelerator()`` or ``torch.device("cpu")``, the ``kwargs = {'num_workers':
1, 'pin_memory': True} if use_accel else {}`` loader arguments, ``data.to(device)``, the 784-400-20
VAE with ``x.view(-1, 784)``, ``loss_function`` of ``F.binary_cross_entropy(recon_x, x.view(-1, 784),
reduction='sum')`` plus the KLD term, the ``Train Epoch: {} [{}/{} ({:.0f}%)]`` log lines, the test
loop's ``recon_batch.view(args.batch_size, 1, 28, 28)[:n]`` comparison and ``torch.randn(64,
20).to(device)`` samples decoded under ``torch.no_grad()`` (``save_image`` is torchvision's; its
grids are summarised instead).

MNIST is replaced by a ``torch.utils.data.Dataset`` subclass of binarised 28x28 images: one of ten
stroke prototypes per digit with a few pixels flipped, from a fixed NumPy seed. The command line
the script runs with is fixed (smaller batches, three epochs); ``--seed`` comes from PROGRAM_SEED.
"""
# ruff: noqa: UP008, UP032  (the example's own spelling: super(VAE, self), str.format log lines)

import argparse
import os

import numpy as np
import torch
import torch.utils.data
from torch import nn, optim
from torch.nn import functional as F

parser = argparse.ArgumentParser(description='VAE MNIST Example')
parser.add_argument('--batch-size', type=int, default=128, metavar='N',
                    help='input batch size for training (default: 128)')
parser.add_argument('--epochs', type=int, default=10, metavar='N',
                    help='number of epochs to train (default: 10)')
parser.add_argument('--no-accel', action='store_true',
                    help='disables accelerator')
parser.add_argument('--seed', type=int, default=1, metavar='S',
                    help='random seed (default: 1)')
parser.add_argument('--log-interval', type=int, default=10, metavar='N',
                    help='how many batches to wait before logging training status')
# the command line this corpus runs the example with
args = parser.parse_args(['--batch-size', '64', '--epochs', '3', '--log-interval', '4',
                          '--seed', os.environ.get("PROGRAM_SEED", "0")])

use_accel = not args.no_accel and torch.accelerator.is_available()

torch.manual_seed(args.seed)

if use_accel:
    device = torch.accelerator.current_accelerator()
else:
    device = torch.device("cpu")

print(f"Using device: {device.type}")


class BinarizedDigits(torch.utils.data.Dataset):
    """MNIST's shape and binarised pixels: each image one digit's strokes, 3% of pixels flipped."""

    def __init__(self, n, train=True):
        rng = np.random.RandomState(0 if train else 1)
        prototypes = np.zeros((10, 28, 28), dtype=np.float32)
        strokes = np.random.RandomState(42)
        for digit in range(10):
            for _ in range(3):
                r, c = strokes.randint(4, 20, size=2)
                if strokes.rand() < 0.5:
                    prototypes[digit, r:r + 3, c:c + 8] = 1.0
                else:
                    prototypes[digit, r:r + 8, c:c + 3] = 1.0
        self.targets = rng.randint(0, 10, size=n)
        flips = (rng.rand(n, 28, 28) < 0.03).astype(np.float32)
        self.data = np.abs(prototypes[self.targets] - flips)

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        return torch.from_numpy(self.data[index]).unsqueeze(0), int(self.targets[index])


kwargs = {'num_workers': 1, 'pin_memory': True} if use_accel else {}
train_loader = torch.utils.data.DataLoader(
    BinarizedDigits(640, train=True),
    batch_size=args.batch_size, shuffle=True, **kwargs)
test_loader = torch.utils.data.DataLoader(
    BinarizedDigits(256, train=False),
    batch_size=args.batch_size, shuffle=False, **kwargs)


class VAE(nn.Module):
    def __init__(self):
        super(VAE, self).__init__()

        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5*logvar)
        eps = torch.randn_like(std)
        return mu + eps*std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


model = VAE().to(device)
optimizer = optim.Adam(model.parameters(), lr=1e-3)


# Reconstruction + KL divergence losses summed over all elements and batch
def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction='sum')

    # see Appendix B from VAE paper:
    # Kingma and Welling. Auto-Encoding Variational Bayes. ICLR, 2014
    # https://arxiv.org/abs/1312.6114
    # 0.5 * sum(1 + log(sigma^2) - mu^2 - sigma^2)
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())

    return BCE + KLD


def train(epoch):
    model.train()
    train_loss = 0
    for batch_idx, (data, _) in enumerate(train_loader):
        data = data.to(device)
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(data)
        loss = loss_function(recon_batch, data, mu, logvar)
        loss.backward()
        train_loss += loss.item()
        optimizer.step()
        if batch_idx % args.log_interval == 0:
            print('Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.6f}'.format(
                epoch, batch_idx * len(data), len(train_loader.dataset),
                100. * batch_idx / len(train_loader),
                loss.item() / len(data)))

    print('====> Epoch: {} Average loss: {:.4f}'.format(
          epoch, train_loss / len(train_loader.dataset)))
    return train_loss / len(train_loader.dataset)


def test(epoch):
    model.eval()
    test_loss = 0
    with torch.no_grad():
        for i, (data, _) in enumerate(test_loader):
            data = data.to(device)
            recon_batch, mu, logvar = model(data)
            test_loss += loss_function(recon_batch, data, mu, logvar).item()
            if i == 0:
                n = min(data.size(0), 8)
                comparison = torch.cat([data[:n],
                                      recon_batch.view(args.batch_size, 1, 28, 28)[:n]])
                # save_image(comparison.cpu(), 'results/reconstruction_' + str(epoch) + '.png', nrow=n)
                pixel_error = ((comparison[n:] > 0.5).float() != comparison[:n]).float().mean().item()

    test_loss /= len(test_loader.dataset)
    print('====> Test set loss: {:.4f}'.format(test_loss))
    return test_loss, pixel_error


if __name__ == "__main__":
    for epoch in range(1, args.epochs + 1):
        train_loss = train(epoch)
        test_loss, pixel_error = test(epoch)
        with torch.no_grad():
            sample = torch.randn(64, 20).to(device)
            sample = model.decode(sample).cpu()
            # save_image(sample.view(64, 1, 28, 28), 'results/sample_' + str(epoch) + '.png')
            grid = sample.view(64, 1, 28, 28)
            print(f"sample grid {tuple(grid.shape)} mean {grid.mean().item():.4f}")
    print(f"FINAL train_loss={train_loss:.4f} test_loss={test_loss:.4f} "
          f"pixel_error={pixel_error:.4f} sample_mean={grid.mean().item():.4f}")
