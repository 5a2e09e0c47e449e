"""Memory and compression utilities as the PyTorch tutorials use them (the activation
checkpointing docs, the pruning tutorial, and the weight_norm/spectral_norm parametrizations):
``torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)`` inside ``forward`` and
``checkpoint_sequential(self.body, segments, x, use_reentrant=False)``, whose gradients must equal
the plain run's; ``prune.l1_unstructured(module, name="weight", amount=0.3)`` (``weight_orig`` +
``weight_mask`` buffer, a forward pre-hook), ``prune.global_unstructured`` over several layers with
``pruning_method=prune.L1Unstructured``, ``prune.is_pruned``, ``prune.remove`` making it permanent,
and sparsity counted with ``torch.sum(module.weight == 0)``; ``parametrizations.weight_norm``
(``original0``/``original1``) and ``parametrizations.spectral_norm`` (largest singular value ~ 1,
checked against ``torch.linalg.matrix_norm(ord=2)``). Data: a synthetic 3-class problem.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.prune as prune
from torch.nn.utils import parametrizations
from torch.utils.checkpoint import checkpoint, checkpoint_sequential

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc1 = nn.Linear(d, 2 * d)
        self.fc2 = nn.Linear(2 * d, d)
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        # dropout inside a checkpointed block: the recomputation must replay the same mask
        return x + self.fc2(self.drop(F.gelu(self.fc1(x))))


class Net(nn.Module):
    def __init__(self, d=32, n_blocks=4, use_checkpoint=False, segments=0):
        super().__init__()
        self.inp = nn.Linear(10, d)
        self.body = nn.Sequential(*[Block(d) for _ in range(n_blocks)])
        self.out = nn.Linear(d, 3)
        self.use_checkpoint = use_checkpoint
        self.segments = segments

    def forward(self, x):
        x = F.relu(self.inp(x))
        if self.segments:
            x = checkpoint_sequential(self.body, self.segments, x, use_reentrant=False)
        elif self.use_checkpoint:
            for block in self.body:
                x = checkpoint(block, x, use_reentrant=False)
        else:
            x = self.body(x)
        return self.out(x)


def make_data(n, rng):
    x = rng.randn(n, 10).astype(np.float32)
    y = (np.sin(2 * x[:, 0]) + x[:, 1] * x[:, 2] > 0).astype(np.int64) + (x[:, 3] > 1).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


def grads_of(model, x, y, rng_seed):
    model.zero_grad()
    torch.manual_seed(rng_seed)  # the same dropout masks for every variant
    F.cross_entropy(model(x), y).backward()
    return [p.grad.clone() for p in model.parameters()]


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    model.train()
    return acc


rng = np.random.RandomState(0)
x_train, y_train = make_data(1024, rng)
x_test, y_test = make_data(512, rng)

# 1. checkpointing changes memory, not numbers
plain = Net()
ckpt = Net(use_checkpoint=True)
seq = Net(segments=2)
ckpt.load_state_dict(plain.state_dict())
seq.load_state_dict(plain.state_dict())
g_plain = grads_of(plain, x_train[:64], y_train[:64], 1)
g_ckpt = grads_of(ckpt, x_train[:64], y_train[:64], 1)
g_seq = grads_of(seq, x_train[:64], y_train[:64], 1)
print('checkpoint grads equal plain:', all(torch.allclose(a, b, atol=1e-6) for a, b in zip(g_plain, g_ckpt)))
print('checkpoint_sequential grads equal plain:',
      all(torch.allclose(a, b, atol=1e-6) for a, b in zip(g_plain, g_seq)))

model = ckpt
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
for epoch in range(8):
    perm = torch.randperm(len(x_train))
    for i in range(0, len(x_train), 64):
        idx = perm[i:i + 64]
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
        loss.backward()
        optimizer.step()
    if epoch % 4 == 3:
        print(f'epoch {epoch} loss {loss.item():.4f}')
dense_acc = accuracy(model, x_test, y_test)

# 2. pruning: one layer by L1, then globally
module = model.inp
prune.l1_unstructured(module, name="weight", amount=0.3)
print('buffers after l1_unstructured:', [name for name, _ in module.named_buffers()])
print('parameters after l1_unstructured:', [name for name, _ in module.named_parameters()])
print('pre-hooks:', len(module._forward_pre_hooks), 'pruned:', prune.is_pruned(model))
print(f'sparsity in inp.weight: {100. * float(torch.sum(module.weight == 0)) / float(module.weight.nelement()):.2f}%')

parameters_to_prune = [(block.fc1, 'weight') for block in model.body] + [(block.fc2, 'weight') for block in model.body]
prune.global_unstructured(parameters_to_prune, pruning_method=prune.L1Unstructured, amount=0.5)
zeros = sum(torch.sum(m.weight == 0).item() for m, _ in parameters_to_prune)
total = sum(m.weight.nelement() for m, _ in parameters_to_prune)
print(f'global sparsity: {100. * zeros / total:.2f}%')
pruned_acc = accuracy(model, x_test, y_test)

# fine-tune with the masks in place: pruned weights stay zero
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for i in range(0, len(x_train), 64):
    optimizer.zero_grad()
    F.cross_entropy(model(x_train[i:i + 64]), y_train[i:i + 64]).backward()
    optimizer.step()
print('masks hold after fine-tuning:', all(torch.sum(m.weight == 0).item() >= 0.5 * m.weight.nelement() * 0.5
                                            for m, _ in parameters_to_prune))
for m, name in parameters_to_prune + [(model.inp, 'weight')]:
    prune.remove(m, name)
print('after remove:', [name for name, _ in model.inp.named_parameters()], 'pruned:', prune.is_pruned(model))
finetuned_acc = accuracy(model, x_test, y_test)

# 3. weight_norm and spectral_norm parametrizations
head = parametrizations.weight_norm(nn.Linear(32, 3))
print('weight_norm originals:', [tuple(head.parametrizations.weight.original0.shape),
                                 tuple(head.parametrizations.weight.original1.shape)])
norm_ok = torch.allclose(head.weight.norm(dim=1, keepdim=True), head.parametrizations.weight.original0)
print('weight_norm g equals the row norms:', norm_ok)
sn = parametrizations.spectral_norm(nn.Linear(32, 32))
for _ in range(20):
    sn(torch.randn(4, 32))  # each training-mode forward runs a power iteration
sigma = torch.linalg.matrix_norm(sn.weight.detach(), ord=2).item()
print('spectral_norm top singular value close to 1:', abs(sigma - 1) < 0.05)
print(f"FINAL dense_acc={dense_acc:.4f} pruned_acc={pruned_acc:.4f} finetuned_acc={finetuned_acc:.4f} sigma={sigma:.4f}")
