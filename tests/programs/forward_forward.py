"""pytorch/examples mnist_forward_forward (Hinton's Forward-Forward), shrunk: each ``Layer``
subclasses ``nn.Linear`` (``super().__init__(in, out, bias, device, dtype)`` positionally), owns its
own Adam, and overrides ``train(x_pos, x_neg)``; inputs are normalised as
``x / (x.norm(2, 1, keepdim=True) + 1e-4)``, goodness is ``h.pow(2).mean(1)``, the loss is
``torch.log(1 + torch.exp(torch.cat([...]))).mean()``; labels are overlaid on the first pixels with
``x_[range(n), y] = x.max()``; negatives from ``torch.randperm``; prediction by ``argmax`` of the
summed goodness per label. Data: synthetic class prototypes plus noise, flattened.
"""

import os

import numpy as np
import torch
import torch.nn as nn
from torch.optim import Adam

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

NUM_CLASSES, DIM = 10, 40


def make_split(n, rng, prototypes):
    y = rng.randint(0, NUM_CLASSES, n)
    x = np.clip(prototypes[y] + 0.15 * rng.randn(n, DIM), 0, 1)
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)


def overlay_y_on_x(x, y):
    """Replace the first 10 pixels of data [x] with one-hot-encoded label [y]."""
    x_ = x.clone()
    x_[:, :10] *= 0.0
    x_[range(x.shape[0]), y] = x.max()
    return x_


class Net(torch.nn.Module):

    def __init__(self, dims):
        super().__init__()
        self.layers = []
        for d in range(len(dims) - 1):
            self.layers += [Layer(dims[d], dims[d + 1])]

    def predict(self, x):
        goodness_per_label = []
        for label in range(NUM_CLASSES):
            h = overlay_y_on_x(x, label)
            goodness = []
            for layer in self.layers:
                h = layer(h)
                goodness += [h.pow(2).mean(1)]
            goodness_per_label += [sum(goodness).unsqueeze(1)]
        goodness_per_label = torch.cat(goodness_per_label, 1)
        return goodness_per_label.argmax(1)

    def train(self, x_pos, x_neg):
        h_pos, h_neg = x_pos, x_neg
        for i, layer in enumerate(self.layers):
            print('training layer', i, '...')
            h_pos, h_neg = layer.train(h_pos, h_neg)


class Layer(nn.Linear):
    def __init__(self, in_features, out_features,
                 bias=True, device=None, dtype=None):
        super().__init__(in_features, out_features, bias, device, dtype)
        self.relu = torch.nn.ReLU()
        self.opt = Adam(self.parameters(), lr=0.06)
        self.threshold = 2.0
        self.num_epochs = 200

    def forward(self, x):
        x_direction = x / (x.norm(2, 1, keepdim=True) + 1e-4)
        return self.relu(
            torch.mm(x_direction, self.weight.T) +
            self.bias.unsqueeze(0))

    def train(self, x_pos, x_neg):
        for i in range(self.num_epochs):  # noqa: B007  (the example's own loop)
            g_pos = self.forward(x_pos).pow(2).mean(1)
            g_neg = self.forward(x_neg).pow(2).mean(1)
            # The following loss pushes pos (neg) samples to
            # values larger (smaller) than the self.threshold.
            loss = torch.log(1 + torch.exp(torch.cat([
                -g_pos + self.threshold,
                g_neg - self.threshold]))).mean()
            self.opt.zero_grad()
            # this backward just compute the derivative and hence
            # is not considered backpropagation.
            loss.backward()
            self.opt.step()
        print(f'    layer loss: {loss.item():.4f}')
        return self.forward(x_pos).detach(), self.forward(x_neg).detach()


if __name__ == "__main__":
    rng = np.random.RandomState(0)
    prototypes = (rng.rand(NUM_CLASSES, DIM) > 0.5) * 0.8 + 0.1
    prototypes[:, :10] = 0.0  # the label pixels carry no class information of their own
    x, y = make_split(400, rng, prototypes)
    x_te, y_te = make_split(200, rng, prototypes)

    net = Net([DIM, 100, 100])
    x_pos = overlay_y_on_x(x, y)
    rnd = torch.randperm(x.size(0))
    x_neg = overlay_y_on_x(x, y[rnd])

    net.train(x_pos, x_neg)

    train_error = 1.0 - net.predict(x).eq(y).float().mean().item()
    print('train error:', round(train_error, 4))
    test_error = 1.0 - net.predict(x_te).eq(y_te).float().mean().item()
    print('test error:', round(test_error, 4))
    # accuracies, not errors, in FINAL: the band's floor is relative to the mean, and errors sit near 0
    print(f"FINAL train_acc={1.0 - train_error:.4f} test_acc={1.0 - test_error:.4f}")
