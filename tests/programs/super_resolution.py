"""pytorch/examples super_resolution (ESPCN), shrunk: ``nn.PixelShuffle``, tuple-argument Conv2d
``(5, 5), (1, 1), (2, 2)``, ``init.orthogonal_(w, init.calculate_gain('relu'))``, MSE training with
Adam, PSNR as ``10 * log10(1 / mse)`` (both ``math.log10`` and ``torch.log10``), the
``torch.save(model, path)`` whole-model checkpoint loaded back with ``weights_only=False`` and used
to super-resolve, and a bicubic ``F.interpolate`` baseline. Images are synthetic smooth fields.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.init as init
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


class Net(nn.Module):
    def __init__(self, upscale_factor):
        super().__init__()

        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(1, 32, (5, 5), (1, 1), (2, 2))
        self.conv2 = nn.Conv2d(32, 32, (3, 3), (1, 1), (1, 1))
        self.conv3 = nn.Conv2d(32, 16, (3, 3), (1, 1), (1, 1))
        self.conv4 = nn.Conv2d(16, upscale_factor ** 2, (3, 3), (1, 1), (1, 1))
        self.pixel_shuffle = nn.PixelShuffle(upscale_factor)

        self._initialize_weights()

    def forward(self, x):
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        x = self.relu(self.conv3(x))
        x = self.pixel_shuffle(self.conv4(x))
        return x

    def _initialize_weights(self):
        init.orthogonal_(self.conv1.weight, init.calculate_gain('relu'))
        init.orthogonal_(self.conv2.weight, init.calculate_gain('relu'))
        init.orthogonal_(self.conv3.weight, init.calculate_gain('relu'))
        init.orthogonal_(self.conv4.weight)


def make_dataset(n, size, upscale, rng):
    """High-resolution targets: sums of a few random sinusoids in [0, 1]; inputs: block means."""
    yy, xx = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
    targets = np.zeros((n, 1, size, size))
    for i in range(n):
        for _ in range(3):
            fx, fy, phase = rng.uniform(1, 5), rng.uniform(1, 5), rng.uniform(0, 2 * np.pi)
            targets[i, 0] += np.sin(2 * np.pi * (fx * xx + fy * yy) + phase)
    targets = (targets - targets.min()) / (targets.max() - targets.min())
    low = targets.reshape(n, 1, size // upscale, upscale, size // upscale, upscale).mean(axis=(3, 5))
    return torch.from_numpy(low.astype(np.float32)), torch.from_numpy(targets.astype(np.float32))


upscale_factor = 2
rng = np.random.RandomState(0)
train_in, train_target = make_dataset(32, 24, upscale_factor, rng)
test_in, test_target = make_dataset(8, 24, upscale_factor, rng)
training_data_loader = DataLoader(TensorDataset(train_in, train_target), batch_size=8, shuffle=True)
testing_data_loader = DataLoader(TensorDataset(test_in, test_target), batch_size=4, shuffle=False)

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
model = Net(upscale_factor=upscale_factor).to(device)
criterion = nn.MSELoss()
optimizer = optim.Adam(model.parameters(), lr=3e-3)


def train(epoch):
    epoch_loss = 0
    for iteration, batch in enumerate(training_data_loader, 1):  # noqa: B007  (the count is printed after the loop)
        input, target = batch[0].to(device), batch[1].to(device)

        optimizer.zero_grad()
        loss = criterion(model(input), target)
        epoch_loss += loss.item()
        loss.backward()
        optimizer.step()
    print(f"===> Epoch {epoch} Complete: Avg. Loss: {epoch_loss / len(training_data_loader):.4f} "
          f"({iteration} iterations)")


def test(net):
    avg_psnr = 0
    with torch.no_grad():
        for batch in testing_data_loader:
            input, target = batch[0].to(device), batch[1].to(device)

            prediction = net(input)
            mse = criterion(prediction, target)
            psnr = 10 * math.log10(1 / mse.item())
            avg_psnr += psnr
    avg_psnr = avg_psnr / len(testing_data_loader)
    print(f"===> Avg. PSNR: {avg_psnr:.4f} dB")
    return avg_psnr


for epoch in range(1, 9):
    train(epoch)
    if epoch % 4 == 0:
        test(model)

model_out_path = f"model_epoch_{epoch}.pth"
torch.save(model, model_out_path)
print(f"Checkpoint saved to {model_out_path}")

# super_resolve.py: load the whole pickled model and upscale one image
loaded = torch.load(model_out_path, weights_only=False)
loaded.eval()
input = test_in[:1].to(device)
out = loaded(input)
out = out.cpu()
out_img_y = out[0].detach().numpy()
out_img_y *= 255.0
out_img_y = out_img_y.clip(0, 255)
print("super-resolved", out.shape, out_img_y.shape)
psnr_loaded = test(loaded)

with torch.no_grad():
    bicubic = F.interpolate(test_in, scale_factor=upscale_factor, mode="bicubic", align_corners=False)
    bicubic_mse = F.mse_loss(bicubic.clamp(0, 1), test_target)
    psnr_bicubic = (10 * torch.log10(1 / bicubic_mse)).item()
print(f"bicubic PSNR: {psnr_bicubic:.4f} dB")
print(f"FINAL psnr={psnr_loaded:.4f} bicubic_psnr={psnr_bicubic:.4f}")
