"""Module and tensor hooks, as used to inspect activations and gradients while training.

``register_forward_hook`` collects activation statistics, ``register_full_backward_hook``
collects gradient norms per layer, ``register_forward_pre_hook`` counts calls, a tensor
``register_hook`` rescales a gradient; handles are removed at the end and must stop firing.
"""

import os
from collections import defaultdict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

rng = np.random.RandomState(0)
features = torch.from_numpy(rng.randn(512, 10).astype(np.float32))
labels = (features @ torch.from_numpy(rng.randn(10, 3).astype(np.float32))).argmax(dim=1)

model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3))
activation_stats = defaultdict(list)
gradient_norms = defaultdict(list)
call_counts = defaultdict(int)
handles = []


def save_activation(name):
    def hook(module, input, output):
        activation_stats[name].append((output.detach().mean().item(), output.detach().std().item()))
    return hook


def save_gradient(name):
    def hook(module, grad_input, grad_output):
        gradient_norms[name].append(grad_output[0].norm().item())
    return hook


def count_calls(name):
    def hook(module, input):
        call_counts[name] += 1
    return hook


for name, module in model.named_modules():
    if isinstance(module, nn.Linear):
        handles.append(module.register_forward_hook(save_activation(name)))
        handles.append(module.register_full_backward_hook(save_gradient(name)))
        handles.append(module.register_forward_pre_hook(count_calls(name)))

optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
for step in range(1, 101):
    index = torch.randint(0, 512, (64,))
    inputs = features[index].requires_grad_()
    # halve the gradient that reaches the input, as a tensor hook would for gradient scaling
    inputs.register_hook(lambda grad: grad * 0.5)
    loss = F.cross_entropy(model(inputs), labels[index])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 25 == 0:
        print(f"step {step} loss {loss.item():.4f} input grad norm {inputs.grad.norm().item():.4f}")

for name in sorted(activation_stats):
    mean, std = activation_stats[name][-1]
    print(f"layer {name}: calls {call_counts[name]} act mean {mean:.3f} std {std:.3f} "
          f"grad norm {gradient_norms[name][-1]:.4f} ({len(gradient_norms[name])} backward calls)")

for handle in handles:
    handle.remove()
before = sum(len(v) for v in activation_stats.values())
with torch.no_grad():
    logits = model(features)
after = sum(len(v) for v in activation_stats.values())
print(f"hooks fired after removal: {after - before}")
accuracy = (logits.argmax(1) == labels).float().mean().item()
print(f"FINAL loss={F.cross_entropy(logits, labels).item():.4f} acc={accuracy:.4f}")
