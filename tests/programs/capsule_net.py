"""A CapsNet in the style of gram-ai/capsule-networks, on synthetic 12x12 "digits".

``CapsuleLayer`` with both modes: primary capsules as a list of ``Conv2d``s whose outputs are
``view``-ed, ``torch.cat``-ed and ``squash``-ed (``squared_norm / (1 + squared_norm) * tensor /
torch.sqrt(squared_norm)``), and class capsules by dynamic routing over a ``route_weights``
``nn.Parameter``: the 5-d broadcast matmul ``x[None, :, :, None, :] @ self.route_weights[:, None, :, :, :]``,
``F.softmax(logits, dim=2)``, ``(probs * priors).sum(dim=2, keepdim=True)`` and the agreement
update.  ``CapsuleLoss``: margin loss with ``F.relu(0.9 - lengths) ** 2`` plus a reconstruction
decoder fed the capsules masked by ``torch.eye(n).index_select(dim=0, index=labels)``.
"""

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

BATCH_SIZE = 25
NUM_CLASSES = 4
NUM_EPOCHS = 10
NUM_ROUTING_ITERATIONS = 3


def softmax(input, dim=1):
    transposed_input = input.transpose(dim, len(input.size()) - 1)
    softmaxed_output = F.softmax(transposed_input.contiguous().view(-1, transposed_input.size(-1)), dim=-1)
    return softmaxed_output.view(*transposed_input.size()).transpose(dim, len(input.size()) - 1)


class CapsuleLayer(nn.Module):
    def __init__(self, num_capsules, num_route_nodes, in_channels, out_channels, kernel_size=None, stride=None,
                 num_iterations=NUM_ROUTING_ITERATIONS):
        super().__init__()

        self.num_route_nodes = num_route_nodes
        self.num_iterations = num_iterations

        self.num_capsules = num_capsules

        if num_route_nodes != -1:
            self.route_weights = nn.Parameter(torch.randn(num_capsules, num_route_nodes, in_channels, out_channels))
        else:
            self.capsules = nn.ModuleList(
                [nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, stride=stride, padding=0) for _ in
                 range(num_capsules)])

    def squash(self, tensor, dim=-1):
        squared_norm = (tensor ** 2).sum(dim=dim, keepdim=True)
        scale = squared_norm / (1 + squared_norm)
        return scale * tensor / torch.sqrt(squared_norm)

    def forward(self, x):
        if self.num_route_nodes != -1:
            priors = x[None, :, :, None, :] @ self.route_weights[:, None, :, :, :]

            logits = torch.zeros(*priors.size())
            for i in range(self.num_iterations):
                probs = softmax(logits, dim=2)
                outputs = self.squash((probs * priors).sum(dim=2, keepdim=True))

                if i != self.num_iterations - 1:
                    delta_logits = (priors * outputs).sum(dim=-1, keepdim=True)
                    logits = logits + delta_logits
        else:
            outputs = [capsule(x).view(x.size(0), -1, 1) for capsule in self.capsules]
            outputs = torch.cat(outputs, dim=-1)
            outputs = self.squash(outputs)

        return outputs


class CapsuleNet(nn.Module):
    def __init__(self):
        super().__init__()

        self.conv1 = nn.Conv2d(in_channels=1, out_channels=16, kernel_size=5, stride=1)
        self.primary_capsules = CapsuleLayer(num_capsules=4, num_route_nodes=-1, in_channels=16, out_channels=4,
                                             kernel_size=3, stride=2)
        self.digit_capsules = CapsuleLayer(num_capsules=NUM_CLASSES, num_route_nodes=4 * 3 * 3, in_channels=4,
                                           out_channels=8)

        self.decoder = nn.Sequential(
            nn.Linear(8 * NUM_CLASSES, 64),
            nn.ReLU(inplace=True),
            nn.Linear(64, 144),
            nn.Sigmoid()
        )

    def forward(self, x, y=None):
        x = F.relu(self.conv1(x), inplace=True)
        x = self.primary_capsules(x)
        x = self.digit_capsules(x).squeeze().transpose(0, 1)

        classes = (x ** 2).sum(dim=-1) ** 0.5
        classes = F.softmax(classes, dim=-1)

        if y is None:
            # In all batches, get the most active capsule.
            _, max_length_indices = classes.max(dim=1)
            y = torch.eye(NUM_CLASSES).index_select(dim=0, index=max_length_indices.data)

        reconstructions = self.decoder((x * y[:, :, None]).reshape(x.size(0), -1))

        return classes, reconstructions


class CapsuleLoss(nn.Module):
    def __init__(self):
        super().__init__()
        self.reconstruction_loss = nn.MSELoss(reduction='sum')

    def forward(self, images, labels, classes, reconstructions):
        left = F.relu(0.9 - classes, inplace=True) ** 2
        right = F.relu(classes - 0.1, inplace=True) ** 2

        margin_loss = labels * left + 0.5 * (1. - labels) * right
        margin_loss = margin_loss.sum()

        assert torch.numel(images) == torch.numel(reconstructions)
        images = images.view(reconstructions.size()[0], -1)
        reconstruction_loss = self.reconstruction_loss(reconstructions, images)

        return (margin_loss + 0.0005 * reconstruction_loss) / images.size(0)


def make_images(n):
    """Four shapes on a 12x12 canvas: a horizontal bar, a vertical bar, a diagonal, a box; shifted and noisy."""
    images = np.zeros((n, 1, 12, 12), dtype=np.float32)
    labels = rng.integers(0, NUM_CLASSES, size=n)
    for k, c in enumerate(labels):
        dy, dx = rng.integers(-2, 3, size=2)
        canvas = np.zeros((12, 12), dtype=np.float32)
        if c == 0:
            canvas[6, 2:10] = 1
        elif c == 1:
            canvas[2:10, 6] = 1
        elif c == 2:
            canvas[np.arange(2, 10), np.arange(2, 10)] = 1
        else:
            canvas[3, 3:9] = canvas[8, 3:9] = canvas[3:9, 3] = canvas[3:9, 8] = 1
        images[k, 0] = np.roll(np.roll(canvas, dy, axis=0), dx, axis=1)
    images += 0.1 * rng.standard_normal(images.shape).astype(np.float32)
    return torch.from_numpy(np.clip(images, 0, 1)), torch.from_numpy(labels).long()


train_images, train_labels = make_images(200)
test_images, test_labels = make_images(100)

model = CapsuleNet()
print("# parameters:", sum(param.numel() for param in model.parameters()))
optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
capsule_loss = CapsuleLoss()

for epoch in range(1, NUM_EPOCHS + 1):
    model.train()
    total = 0.0
    for i in range(0, len(train_images), BATCH_SIZE):
        data = train_images[i:i + BATCH_SIZE]
        labels = torch.eye(NUM_CLASSES).index_select(dim=0, index=train_labels[i:i + BATCH_SIZE])
        optimizer.zero_grad()
        classes, reconstructions = model(data, labels)
        loss = capsule_loss(data, labels, classes, reconstructions)
        loss.backward()
        optimizer.step()
        total += loss.item()
    print(f"[Epoch {epoch}] Training Loss: {total / (len(train_images) // BATCH_SIZE):.4f}")

model.eval()
with torch.no_grad():
    classes, reconstructions = model(test_images)
    labels = torch.eye(NUM_CLASSES).index_select(dim=0, index=test_labels)
    test_loss = capsule_loss(test_images, labels, classes, reconstructions).item()
    accuracy = (classes.max(dim=1)[1] == test_labels).float().mean().item()
    recon_error = F.mse_loss(reconstructions, test_images.view(test_images.size(0), -1)).item()
print(f"[Test] Loss: {test_loss:.4f} Accuracy: {accuracy:.4f}")
print(f"FINAL loss={test_loss:.4f} acc={accuracy:.4f} recon={recon_error:.4f}")
