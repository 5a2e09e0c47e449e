"""LoRA fine-tuning, the shape of the "LoRA from scratch with parametrizations" tutorials
(e.g. hkproj/pytorch-lora and Sebastian Raschka's LoRA notes): pre-train a small classifier, then
freeze it (``param.requires_grad = False`` for every name without ``lora``) and add low-rank deltas with
``torch.nn.utils.parametrize.register_parametrization(layer, "weight", LoRAParametrization(...))``
whose ``forward(original_weights)`` returns ``original_weights + (B @ A).view(...) * scale``;
an ``enabled`` switch; the optimizer built from ``named_parameters()`` filtered on ``'lora' in name``;
``parametrize.is_parametrized``, ``layer.parametrizations.weight.original``; a ``state_dict`` holding
only the adapters (saved, loaded into a fresh copy with ``strict=False``); merging by
``parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)``. Data: two
synthetic tasks; fine-tuning on the second must help it while the frozen base stays bit-equal.
"""

import copy
import io
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.utils.parametrize as parametrize

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


class RichBoyNet(nn.Module):
    def __init__(self, hidden_size_1=64, hidden_size_2=64):
        super().__init__()
        self.linear1 = nn.Linear(16, hidden_size_1)
        self.linear2 = nn.Linear(hidden_size_1, hidden_size_2)
        self.linear3 = nn.Linear(hidden_size_2, 4)
        self.relu = nn.ReLU()

    def forward(self, img):
        x = img.view(-1, 16)
        x = self.relu(self.linear1(x))
        x = self.relu(self.linear2(x))
        x = self.linear3(x)
        return x


class LoRAParametrization(nn.Module):
    def __init__(self, features_in, features_out, rank=1, alpha=1, device='cpu'):
        super().__init__()
        # Section 4.1 of the paper:
        #   We use a random Gaussian initialization for A and zero for B, so deltaW = BA is zero at the beginning of training
        self.lora_A = nn.Parameter(torch.zeros((rank, features_out)).to(device))
        self.lora_B = nn.Parameter(torch.zeros((features_in, rank)).to(device))
        nn.init.normal_(self.lora_A, mean=0, std=1)

        # Section 4.1 of the paper:
        #   We then scale deltaW x by alpha / r , where alpha is a constant in r.
        self.scale = alpha / rank
        self.enabled = True

    def forward(self, original_weights):
        if self.enabled:
            # Return W + (B*A)*scale
            return original_weights + torch.matmul(self.lora_B, self.lora_A).view(original_weights.shape) * self.scale
        else:
            return original_weights


def linear_layer_parameterization(layer, device, rank=1, lora_alpha=1):
    # Only add the parameterization to the weight matrix, ignore the Bias

    # From section 4.2 of the paper:
    #   We limit our study to only adapting the attention weights for downstream tasks and freeze the MLP modules
    #   (so they are not trained in downstream tasks) both for simplicity and parameter-efficiency.
    #   [...]
    #   We leave the empirical investigation of [...], and biases to a future work.

    features_in, features_out = layer.weight.shape
    return LoRAParametrization(features_in, features_out, rank=rank, alpha=lora_alpha, device=device)


def make_task(rng, n, weights):
    x = rng.randn(n, 16).astype(np.float32)
    y = np.argmax(x @ weights, axis=1)
    return torch.from_numpy(x), torch.from_numpy(y)


def train(net, x, y, params, epochs, lr):
    optimizer = torch.optim.Adam(params, lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    for _epoch in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 32):
            idx = perm[i:i + 32]
            optimizer.zero_grad()
            loss = loss_fn(net(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
    return loss.item()


def accuracy(net, x, y):
    with torch.no_grad():
        return (net(x).argmax(1) == y).float().mean().item()


rng = np.random.RandomState(0)
w_a = rng.randn(16, 4)
w_b = w_a + 0.8 * rng.randn(16, 4)  # a related task: the base knows part of it
x_a, y_a = make_task(rng, 1024, w_a)
x_b, y_b = make_task(rng, 256, w_b)
x_b_test, y_b_test = make_task(rng, 512, w_b)

net = RichBoyNet()
train(net, x_a, y_a, net.parameters(), epochs=4, lr=3e-3)
print(f'base on task A: {accuracy(net, x_a, y_a):.3f}, on task B: {accuracy(net, x_b_test, y_b_test):.3f}')
base_acc_b = accuracy(net, x_b_test, y_b_test)

# Keep a copy of the original weights (cloning them) so we can prove that a fine-tuning with LoRA doesn't alter them
original_weights = {}
for name, param in net.named_parameters():
    original_weights[name] = param.clone().detach()

parametrize.register_parametrization(
    net.linear1, "weight", linear_layer_parameterization(net.linear1, "cpu", rank=2)
)
parametrize.register_parametrization(
    net.linear2, "weight", linear_layer_parameterization(net.linear2, "cpu", rank=2)
)
parametrize.register_parametrization(
    net.linear3, "weight", linear_layer_parameterization(net.linear3, "cpu", rank=2)
)


def enable_disable_lora(enabled=True):
    for layer in [net.linear1, net.linear2, net.linear3]:
        layer.parametrizations["weight"][0].enabled = enabled


total_parameters_original = 0
for _index, layer in enumerate([net.linear1, net.linear2, net.linear3]):
    total_parameters_original += layer.weight.nelement() + layer.bias.nelement()
total_parameters_lora = 0
for _index, layer in enumerate([net.linear1, net.linear2, net.linear3]):
    total_parameters_lora += layer.parametrizations["weight"][0].lora_A.nelement() + \
        layer.parametrizations["weight"][0].lora_B.nelement()
print(f'Total number of parameters (original): {total_parameters_original:,}')
print(f'Parameters introduced by LoRA: {total_parameters_lora:,}')
print('parametrized:', parametrize.is_parametrized(net.linear1), parametrize.is_parametrized(net.linear1, "bias"))

# Freeze the non-Lora parameters
for name, param in net.named_parameters():
    if 'lora' not in name:
        print(f'Freezing non-LoRA parameter {name}')
        param.requires_grad = False
lora_params = [p for n, p in net.named_parameters() if 'lora' in n]
loss = train(net, x_b, y_b, lora_params, epochs=15, lr=1e-2)
lora_acc_b = accuracy(net, x_b_test, y_b_test)
print(f'fine-tuned loss {loss:.4f}, task B accuracy {lora_acc_b:.3f}')

# Check that the frozen parameters are still unchanged by the finetuning
for layer in ("linear1", "linear2", "linear3"):
    module = getattr(net, layer)
    assert torch.all(module.parametrizations.weight.original == original_weights[f'{layer}.weight'])
    assert torch.all(module.bias == original_weights[f'{layer}.bias'])
    enable_disable_lora(enabled=True)
    # The new linear.weight is obtained by the "forward" function of our LoRA parametrization
    # The original weights have been moved to net.linear1.parametrizations.weight.original
    # More info here: https://pytorch.org/tutorials/intermediate/parametrizations.html#inspecting-a-parametrized-module
    lora = module.parametrizations.weight[0]
    expected = module.parametrizations.weight.original + (lora.lora_B @ lora.lora_A) * lora.scale
    assert torch.equal(module.weight, expected)
    enable_disable_lora(enabled=False)
    assert torch.equal(module.weight, original_weights[f'{layer}.weight'])
print('frozen base unchanged: True')
print(f'LoRA disabled, task B accuracy {accuracy(net, x_b_test, y_b_test):.3f}')
enable_disable_lora(enabled=True)

# only the adapters go to disk
adapters = {k: v for k, v in net.state_dict().items() if 'lora' in k}
print('adapter tensors saved:', len(adapters), sorted(adapters)[0])
buffer = io.BytesIO()
torch.save(adapters, buffer)
buffer.seek(0)
fresh = copy.deepcopy(net)
for layer in (fresh.linear1, fresh.linear2, fresh.linear3):
    nn.init.zeros_(layer.parametrizations.weight[0].lora_B)
result = fresh.load_state_dict(torch.load(buffer), strict=False)
print('missing keys after loading adapters:', len(result.missing_keys), 'unexpected:', len(result.unexpected_keys))
print('reloaded adapters agree:', torch.equal(fresh(x_b_test), net(x_b_test)))

# merge: the parametrized value becomes a plain weight
logits_before = net(x_b_test)
for layer in (net.linear1, net.linear2, net.linear3):
    parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)
print('merged:', not parametrize.is_parametrized(net.linear1), type(net.linear1.weight).__name__,
      sorted(net.state_dict())[:2])
print('merged model agrees:', torch.allclose(net(x_b_test), logits_before, atol=1e-5))
print(f"FINAL base_acc_b={base_acc_b:.4f} lora_acc_b={lora_acc_b:.4f}")
