"""Domain-adversarial training (DANN, Ganin & Lempitsky 2015) as the PyTorch ports write it.

The gradient reversal layer is a ``torch.autograd.Function``: identity forward by
``x.view_as(x)`` with ``ctx.alpha = alpha`` kept on the context, ``grad_output.neg() * ctx.alpha``
backward returning ``None`` for alpha; a module wrapper around ``ReverseLayerF.apply`` beside it,
checked against the function and against a plain ``-alpha`` gradient. One feature extractor is
shared by a label classifier (``F.cross_entropy``) and a domain classifier (one logit,
``F.binary_cross_entropy_with_logits`` against ``torch.ones``/``torch.zeros`` domain labels); the
reversal coefficient follows the paper's schedule ``2 / (1 + exp(-10 p)) - 1`` over training
progress ``p`` and the learning rate its annealing ``lr0 / (1 + 10 p) ** 0.75`` written into
``param_groups``. A source-only baseline (the same network, the domain loss left out) is trained on
the same batches; both are scored on the unlabelled target domain.

The data: two-moons made with NumPy; the target domain is the source rotated by 35 degrees and
shifted.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)


def two_moons(n, noise=0.1):
    half = n // 2
    outer = np.linspace(0, np.pi, half)
    inner = np.linspace(0, np.pi, n - half)
    x = np.concatenate([np.stack([np.cos(outer), np.sin(outer)], 1), np.stack([1 - np.cos(inner), 0.5 - np.sin(inner)], 1)])
    y = np.concatenate([np.zeros(half), np.ones(n - half)]).astype(np.int64)
    x = x + rng.normal(0.0, noise, size=x.shape)
    order = rng.permutation(n)
    return (x[order] - np.array([0.5, 0.25])).astype(np.float32), y[order]


def rotate(x, degrees, shift):
    theta = np.deg2rad(degrees)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]], dtype=np.float32)
    return (x @ rotation.T + np.asarray(shift, dtype=np.float32)).astype(np.float32)


source_x, source_y = two_moons(400)
target_x_np, target_y_np = two_moons(400)
target_x_np = rotate(target_x_np, 35.0, (0.3, -0.2))
source_x, source_y = torch.from_numpy(source_x), torch.from_numpy(source_y)
target_x, target_y = torch.from_numpy(target_x_np), torch.from_numpy(target_y_np)
print(f"source {tuple(source_x.shape)} target {tuple(target_x.shape)} classes {torch.bincount(source_y).tolist()}")


class ReverseLayerF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha):
        ctx.alpha = alpha
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output):
        output = grad_output.neg() * ctx.alpha
        return output, None


class GradientReversal(nn.Module):
    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        return ReverseLayerF.apply(x, self.alpha)


probe = torch.randn(5, 3, requires_grad=True)
weights = torch.randn(5, 3)
(ReverseLayerF.apply(probe, 0.3) * weights).sum().backward()
function_grad = probe.grad.clone()
probe.grad = None
(GradientReversal(0.3)(probe) * weights).sum().backward()
reversed_out = ReverseLayerF.apply(probe, 0.3)
print("reversal: forward identity", torch.equal(reversed_out, probe), "grad_fn", type(reversed_out.grad_fn).__name__)
print("reversal: grad is -alpha * upstream", torch.allclose(function_grad, -0.3 * weights),
      "module agrees", torch.equal(function_grad, probe.grad))


class DANN(nn.Module):
    def __init__(self, hidden=32, features=16):
        super().__init__()
        self.feature = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, features), nn.ReLU())
        self.class_classifier = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, 2))
        self.domain_classifier = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x, alpha):
        feature = self.feature(x)
        class_output = self.class_classifier(feature)
        reverse_feature = ReverseLayerF.apply(feature, alpha)
        domain_output = self.domain_classifier(reverse_feature).squeeze(1)
        return class_output, domain_output


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        class_output, _ = model(x, 0.0)
        pred = class_output.argmax(dim=1)
    model.train()
    return (pred == y).float().mean().item()


def domain_accuracy(model):
    model.eval()
    with torch.no_grad():
        _, s = model(source_x, 0.0)
        _, t = model(target_x, 0.0)
    model.train()
    return ((s > 0).float().mean().item() + (t <= 0).float().mean().item()) / 2


N_EPOCHS, BATCH, LR0 = 30, 40, 0.05
steps_per_epoch = len(source_x) // BATCH


def train(adversarial):
    torch.manual_seed(seed + 1)
    model = DANN()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR0, momentum=0.9)
    for epoch in range(N_EPOCHS):
        source_order = torch.randperm(len(source_x))
        target_order = torch.randperm(len(target_x))
        class_total = domain_total = 0.0
        for i in range(steps_per_epoch):
            p = float(i + epoch * steps_per_epoch) / N_EPOCHS / steps_per_epoch
            alpha = 2.0 / (1.0 + np.exp(-10 * p)) - 1
            for group in optimizer.param_groups:
                group["lr"] = LR0 / (1.0 + 10 * p) ** 0.75
            s_idx = source_order[i * BATCH:(i + 1) * BATCH]
            t_idx = target_order[i * BATCH:(i + 1) * BATCH]
            class_output, domain_source = model(source_x[s_idx], alpha)
            err_label = F.cross_entropy(class_output, source_y[s_idx])
            loss = err_label
            if adversarial:
                _, domain_target = model(target_x[t_idx], alpha)
                err_s_domain = F.binary_cross_entropy_with_logits(domain_source, torch.zeros(len(s_idx)))
                err_t_domain = F.binary_cross_entropy_with_logits(domain_target, torch.ones(len(t_idx)))
                loss = loss + err_s_domain + err_t_domain
                domain_total += (err_s_domain + err_t_domain).item()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            class_total += err_label.item()
        if epoch % 10 == 9:
            tag = "dann" if adversarial else "source-only"
            print(f"{tag} epoch {epoch + 1:2d} alpha {alpha:.3f} lr {optimizer.param_groups[0]['lr']:.5f} "
                  f"class loss {class_total / steps_per_epoch:.4f} domain loss {domain_total / steps_per_epoch:.4f} "
                  f"source acc {accuracy(model, source_x, source_y):.3f} target acc {accuracy(model, target_x, target_y):.3f}")
    return model


baseline = train(adversarial=False)
dann = train(adversarial=True)

baseline_source, baseline_target = accuracy(baseline, source_x, source_y), accuracy(baseline, target_x, target_y)
dann_source, dann_target = accuracy(dann, source_x, source_y), accuracy(dann, target_x, target_y)
print(f"source-only: source acc {baseline_source:.3f} target acc {baseline_target:.3f}")
print(f"dann:        source acc {dann_source:.3f} target acc {dann_target:.3f} domain acc {domain_accuracy(dann):.3f}")
print(f"final alpha {2.0 / (1.0 + math.exp(-10.0)) - 1:.6f}")
print(f"FINAL dann_target_acc={dann_target:.4f} source_only_target_acc={baseline_target:.4f} "
      f"dann_source_acc={dann_source:.4f} gain={dann_target - baseline_target:.4f}")
