"""The small model zoo behind ``chainrule train`` and the examples, built from ``chainrule.nn``.

``build(name, input_shape)`` makes a logistic regression, an MLP, a CNN or a GRU for one
example's shape: (1, H, W) images (digits, MNIST) or (40,) sequences (MNIST-1D). For MNIST-1D the
MLP, CNN and GRU are exactly the paper's baselines (Greydanus, "Scaling down deep learning", 2020).
"""

from __future__ import annotations

import math

from . import nn
from .tensor import Tensor

__all__ = ["NAMES", "build", "Logistic", "MLP", "ImageCNN", "ImageGRU", "ConvBase", "SequenceGRU"]

NAMES = ("logistic", "mlp", "cnn", "gru")


class Logistic(nn.Module):
    """Multinomial logistic regression: one Linear layer over the flattened input."""

    def __init__(self, in_features: int, num_classes: int = 10) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x.reshape(x.shape[0], -1))


class MLP(nn.Module):
    """The MNIST-1D paper's MLP: Linear, ReLU, a residual ReLU(Linear), Linear."""

    def __init__(self, in_features: int, num_classes: int = 10, hidden: int = 100) -> None:
        super().__init__()
        self.linear1 = nn.Linear(in_features, hidden)
        self.linear2 = nn.Linear(hidden, hidden)
        self.linear3 = nn.Linear(hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.linear1(x.reshape(x.shape[0], -1)).relu()
        h = h + self.linear2(h).relu()
        return self.linear3(h)


class ConvBase(nn.Module):
    """The MNIST-1D paper's CNN: three Conv1d (25 channels; kernels 5, 3, 3; stride 2; padding 1)
    each followed by ReLU, then Linear(125, classes) over the flattened features."""

    def __init__(self, length: int = 40, num_classes: int = 10, channels: int = 25) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(1, channels, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        for kernel in (5, 3, 3):
            length = (length + 2 - kernel) // 2 + 1
        self.linear = nn.Linear(channels * length, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = x.reshape(x.shape[0], 1, x.shape[-1])
        h = self.conv1(h).relu()
        h = self.conv2(h).relu()
        h = self.conv3(h).relu()
        return self.linear(h.reshape(h.shape[0], -1))


class ImageCNN(nn.Module):
    """Two 3×3 conv blocks (ReLU, 2×2 max-pool after the last or after each for larger images),
    then a small classifier: a fast CNN for 8×8 digits and 28×28 MNIST."""

    def __init__(self, input_shape: tuple, num_classes: int = 10) -> None:
        super().__init__()
        channels, height, width = input_shape
        small = height <= 16
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(),
            *(() if small else (nn.MaxPool2d(2),)),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        pooled = 2 if small else 4
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(32 * (height // pooled) * (width // pooled), 64), nn.ReLU(),
            nn.Linear(64, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class SequenceGRU(nn.Module):
    """The MNIST-1D paper's GRU: a bidirectional GRU(1, 6) over the sequence, every step's outputs
    flattened into Linear(2 * 6 * steps, classes)."""

    def __init__(self, steps: int = 40, num_classes: int = 10, hidden: int = 6) -> None:
        super().__init__()
        self.rnn = nn.GRU(1, hidden, batch_first=True, bidirectional=True)
        self.linear = nn.Linear(2 * hidden * steps, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h, _ = self.rnn(x.reshape(x.shape[0], x.shape[-1], 1))
        return self.linear(h.reshape(h.shape[0], -1))


class ImageGRU(nn.Module):
    """A GRU reading an image row by row (rows are time steps); the last hidden state classifies."""

    def __init__(self, input_shape: tuple, num_classes: int = 10, hidden: int = 64) -> None:
        super().__init__()
        channels, height, width = input_shape
        self.rnn = nn.GRU(channels * width, hidden, batch_first=True)
        self.linear = nn.Linear(hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        rows = x.permute(0, 2, 1, 3).reshape(n, h, c * w)
        _, last = self.rnn(rows)
        return self.linear(last[-1])


def build(name: str, input_shape: tuple, num_classes: int = 10) -> nn.Module:
    """The model called ``name`` (one of ``NAMES``) for examples of ``input_shape``."""
    input_shape = tuple(input_shape)
    if name not in NAMES:
        raise ValueError(f"unknown model {name!r}: choose from {', '.join(NAMES)}")
    if len(input_shape) not in (1, 3):
        raise ValueError(f"models take (length,) sequences or (C, H, W) images, got input shape {input_shape}")
    features = math.prod(input_shape)
    if name == "logistic":
        return Logistic(features, num_classes)
    if name == "mlp":
        return MLP(features, num_classes)
    if name == "cnn":
        return ConvBase(input_shape[0], num_classes) if len(input_shape) == 1 else ImageCNN(input_shape, num_classes)
    return SequenceGRU(input_shape[0], num_classes) if len(input_shape) == 1 else ImageGRU(input_shape, num_classes)
