"""Magnitude pruning and fine-tuning, following the PyTorch Pruning tutorial on a LeNet.

Train a small LeNet, then the tutorial's steps: ``prune.random_unstructured`` on conv1's weight
(``weight_orig`` parameter, ``weight_mask`` buffer, the ``_forward_pre_hooks`` entry),
``prune.l1_unstructured(..., amount=3)`` on its bias, iterative pruning with
``prune.ln_structured(n=2, dim=0)`` (the ``PruningContainer`` history read off the hook),
``state_dict().keys()`` before and after ``prune.remove``, ``prune.global_unstructured(...,
pruning_method=prune.L1Unstructured, amount=0.6)`` across layers, sparsity reported with
``float(torch.sum(module.weight == 0)) / module.weight.nelement()``, a custom
``BasePruningMethod`` subclass, then fine-tuning the pruned network (the masks keep pruned
weights at zero through the optimizer's updates) and making the pruning permanent.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.prune as prune

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

N_CLASSES = 4


def make_data(n):
    """16x16 images of one of four oriented bars (horizontal, vertical, two diagonals) with noise."""
    images = rng.normal(0, 0.3, size=(n, 1, 16, 16)).astype(np.float32)
    labels = rng.integers(0, N_CLASSES, size=n)
    for i, label in enumerate(labels):
        off = int(rng.integers(2, 14))
        start = int(rng.integers(1, 6))
        idx = np.arange(start, start + 10)
        if label == 0:
            images[i, 0, off, idx] += 1.5
        elif label == 1:
            images[i, 0, idx, off] += 1.5
        elif label == 2:
            images[i, 0, idx, idx] += 1.5
        else:
            images[i, 0, idx, 15 - idx] += 1.5
    return torch.from_numpy(images), torch.from_numpy(labels)


class LeNet(nn.Module):
    def __init__(self):
        super(LeNet, self).__init__()  # noqa: UP008  (the tutorial's spelling)
        self.conv1 = nn.Conv2d(1, 6, 3)
        self.conv2 = nn.Conv2d(6, 16, 3)
        self.fc1 = nn.Linear(16 * 2 * 2, 32)
        self.fc2 = nn.Linear(32, 24)
        self.fc3 = nn.Linear(24, N_CLASSES)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(-1, int(x.nelement() / x.shape[0]))
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


def train(model, epochs, lr):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        perm = torch.randperm(len(x_train))
        for i in range(0, len(x_train), 32):
            idx = perm[i:i + 32]
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return loss.item()


@torch.no_grad()
def accuracy(model):
    return (model(x_test).argmax(1) == y_test).float().mean().item()


def sparsity(module):
    return 100. * float(torch.sum(module.weight == 0)) / float(module.weight.nelement())


x_train, y_train = make_data(512)
x_test, y_test = make_data(256)
x_train, y_train, x_test, y_test = (t.to(device) for t in (x_train, y_train, x_test, y_test))
model = LeNet().to(device=device)
train(model, 6, 3e-3)
dense_acc = accuracy(model)
print(f"dense accuracy measured; {sum(p.numel() for p in model.parameters())} parameters")

# --- pruning a module: random_unstructured on conv1.weight
module = model.conv1
print(list(name for name, _ in module.named_parameters()))
prune.random_unstructured(module, name="weight", amount=0.3)
print(list(name for name, _ in module.named_parameters()))
print(list(name for name, _ in module.named_buffers()))
assert torch.equal(module.weight, module.weight_orig * module.weight_mask)
print(f"forward pre-hooks: {len(module._forward_pre_hooks)}, mask kept: {int(module.weight_mask.sum())} of "
      f"{module.weight_mask.nelement()}")

# l1_unstructured with an integer amount on the bias
prune.l1_unstructured(module, name="bias", amount=3)
print(list(name for name, _ in module.named_buffers()), f"bias zeros: {int((module.bias == 0).sum())}")
print(f"forward pre-hooks: {len(module._forward_pre_hooks)}")

# iterative pruning: ln_structured over output channels on top of the random mask
prune.ln_structured(module, name="weight", amount=0.5, n=2, dim=0)
channels_zero = int((module.weight.abs().sum(dim=(1, 2, 3)) == 0).sum())
print(f"conv1 channels fully pruned: {channels_zero}")
for hook in module._forward_pre_hooks.values():
    if hook._tensor_name == "weight":  # select out the correct hook
        break
print(type(hook).__name__, [type(h).__name__ for h in hook])

# serialising a pruned model: the _orig/_mask pairs
print(sorted(model.state_dict().keys()))

# making the pruning permanent: weight is a plain Parameter again
prune.remove(module, 'weight')
print(list(name for name, _ in module.named_parameters()), list(name for name, _ in module.named_buffers()))
print(sorted(model.state_dict().keys()))


# a custom pruning method: remove every other entry
class FooBarPruningMethod(prune.BasePruningMethod):
    """Prune every other entry in a tensor"""
    PRUNING_TYPE = 'unstructured'

    def compute_mask(self, t, default_mask):
        mask = default_mask.clone()
        mask.view(-1)[::2] = 0
        return mask


def foobar_unstructured(module, name):
    FooBarPruningMethod.apply(module, name)
    return module


foobar_unstructured(model.fc3, name='bias')
print(f"fc3 bias mask: {model.fc3.bias_mask.tolist()}")

# --- global pruning across the conv and linear weights
parameters_to_prune = (
    (model.conv2, 'weight'),
    (model.fc1, 'weight'),
    (model.fc2, 'weight'),
    (model.fc3, 'weight'),
)
prune.global_unstructured(parameters_to_prune, pruning_method=prune.L1Unstructured, amount=0.6)
total_zero = 0
total = 0
for m, _ in parameters_to_prune:
    total_zero += float(torch.sum(m.weight == 0))
    total += float(m.weight.nelement())
print(f"Global sparsity: {100. * total_zero / total:.2f}%")
per_layer = [sparsity(m) for m, _ in parameters_to_prune]
print("per-layer sparsity: " + ", ".join(f"{s:.1f}%" for s in per_layer))
pruned_acc = accuracy(model)
print(f"is_pruned: {prune.is_pruned(model)}")

# --- fine-tune with the masks in place: the optimizer updates weight_orig, the hook re-masks
masks_before = {name: buf.clone() for name, buf in model.named_buffers() if name.endswith('_mask')}
final_loss = train(model, 4, 1e-3)
finetuned_acc = accuracy(model)
modules = dict(model.named_modules())
still_zero = True
for name, mask in masks_before.items():
    module_name, buffer_name = name.rsplit('.', 1)
    pruned = getattr(modules[module_name], buffer_name.removesuffix('_mask'))
    still_zero = still_zero and bool((pruned[mask == 0] == 0).all())
print(f"pruned entries still zero after fine-tuning: {still_zero}")

for m, name in parameters_to_prune:
    prune.remove(m, name)
prune.remove(model.fc3, 'bias')
print(f"is_pruned after remove: {prune.is_pruned(model)}")
print(sorted(model.state_dict().keys()))
global_sparsity = sum(float(torch.sum(m.weight == 0)) for m, _ in parameters_to_prune) / total
print(f"FINAL dense_acc={dense_acc:.4f} pruned_acc={pruned_acc:.4f} finetuned_acc={finetuned_acc:.4f} "
      f"sparsity={global_sparsity:.4f} loss={final_loss:.4f}")
