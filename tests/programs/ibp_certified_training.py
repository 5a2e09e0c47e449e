"""Interval bound propagation (Gowal et al., "On the Effectiveness of Interval Bound Propagation for
Training Verifiably Robust Models", 2018) written by hand as the deepmind/interval-bound-propagation
and auto_LiRPA ``simple_training.py`` examples do, on synthetic 8x8 stroke images.

Three classes of 8x8 images in [0, 1] (a horizontal bar, a vertical bar, a diagonal), at random offsets
and intensities with noise. The model is an ``nn.Sequential`` of ``nn.Conv2d(stride=2)``, ``nn.ReLU``,
``nn.Flatten`` and two ``nn.Linear`` layers. Bounds are propagated module by module in centre/radius
form: ``mu = (ub + lb) / 2``, ``r = (ub - lb) / 2``, ``F.linear(mu, W, b)`` and ``F.linear(r, W.abs())``,
``F.conv2d(mu, weight, bias, stride, padding)`` and ``F.conv2d(r, weight.abs(), None, ...)``, ReLU by
``F.relu`` of both ends, ``torch.flatten`` of both; the input box is ``(x - eps).clamp(0, 1)``, ``(x +
eps).clamp(0, 1)``. The last layer is elided with the specification matrix ``c = torch.eye(n)[labels]
.unsqueeze(1) - torch.eye(n).unsqueeze(0)`` with the true class's row dropped by ``c[I].view(...)``
(auto_LiRPA's), multiplied into ``W`` and ``b`` by ``torch.matmul``/``torch.bmm``. The robust loss is
``CrossEntropyLoss()(-lb_padded, fake_labels)`` on ``torch.cat((torch.zeros(...), lb), dim=1)``, mixed with
the nominal loss as ``kappa * nominal + (1 - kappa) * robust`` under the paper's schedule (epsilon ramped
linearly from 0 after a warm-up, kappa from 1 to 0.5), Adam with ``MultiStepLR``.

Checked: verified accuracy at the test epsilon rising from zero, clean accuracy; that every layer's
bounds contain the activations of random and vertex perturbations inside the box (no violation); that
the centre/radius route equals the ``W.clamp(min=0) @ ub + W.clamp(max=0) @ lb`` route; and that the
elided margin bounds are never looser than margins of the plain logit interval.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

NUM_CLASS = 3


def make_data(n):
    x = np.zeros((n, 1, 8, 8), dtype=np.float32)
    y = rng.randint(NUM_CLASS, size=n)
    for i in range(n):
        level = rng.uniform(0.6, 1.0)
        k = rng.randint(1, 7)
        if y[i] == 0:
            x[i, 0, k, 1:7] = level
        elif y[i] == 1:
            x[i, 0, 1:7, k] = level
        else:
            d = np.arange(1, 7)
            x[i, 0, d, np.clip(d + rng.randint(-1, 2), 0, 7)] = level
        x[i] += rng.uniform(0, 0.2, size=(1, 8, 8))
    return torch.from_numpy(np.clip(x, 0, 1)), torch.from_numpy(y)


def model_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 48),
        nn.ReLU(),
        nn.Linear(48, NUM_CLASS),
    )


def interval_layer(layer, lb, ub):
    """One module's interval in centre/radius form."""
    if isinstance(layer, nn.Linear):
        mu, r = (ub + lb) / 2, (ub - lb) / 2
        mu = F.linear(mu, layer.weight, layer.bias)
        r = F.linear(r, layer.weight.abs())
        return mu - r, mu + r
    if isinstance(layer, nn.Conv2d):
        mu, r = (ub + lb) / 2, (ub - lb) / 2
        mu = F.conv2d(mu, layer.weight, layer.bias, layer.stride, layer.padding, layer.dilation, layer.groups)
        r = F.conv2d(r, layer.weight.abs(), None, layer.stride, layer.padding, layer.dilation, layer.groups)
        return mu - r, mu + r
    if isinstance(layer, nn.ReLU):
        return F.relu(lb), F.relu(ub)
    if isinstance(layer, nn.Flatten):
        return torch.flatten(lb, 1), torch.flatten(ub, 1)
    raise NotImplementedError(type(layer).__name__)


def interval_layer_pos_neg(layer, lb, ub):
    """The same interval by splitting the weights into positive and negative parts."""
    if isinstance(layer, nn.Linear):
        w_pos, w_neg = layer.weight.clamp(min=0), layer.weight.clamp(max=0)
        lower = lb @ w_pos.t() + ub @ w_neg.t() + layer.bias
        upper = ub @ w_pos.t() + lb @ w_neg.t() + layer.bias
        return lower, upper
    if isinstance(layer, nn.Conv2d):
        w_pos, w_neg = layer.weight.clamp(min=0), layer.weight.clamp(max=0)
        conv = lambda inp, w: F.conv2d(inp, w, None, layer.stride, layer.padding)  # noqa: E731
        bias = layer.bias.view(1, -1, 1, 1)
        return conv(lb, w_pos) + conv(ub, w_neg) + bias, conv(ub, w_pos) + conv(lb, w_neg) + bias
    return interval_layer(layer, lb, ub)


def spec_matrix(labels):
    eye = torch.eye(NUM_CLASS).type_as(labels.float())
    c = eye[labels].unsqueeze(1) - eye.unsqueeze(0)
    I = ~(labels.data.unsqueeze(1) == torch.arange(NUM_CLASS).type_as(labels.data).unsqueeze(0))  # noqa: E741
    return c[I].view(labels.size(0), NUM_CLASS - 1, NUM_CLASS)


def compute_bounds(model, x, eps, labels=None, layer_fn=interval_layer, collect=False):
    """IBP through all layers; with labels, the last Linear is elided into the margin specification."""
    lb, ub = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)
    layers = list(model.children())
    bounds = []
    for layer in layers[:-1]:
        lb, ub = layer_fn(layer, lb, ub)
        if collect:
            bounds.append((lb, ub))
    last = layers[-1]
    if labels is None:
        lb, ub = layer_fn(last, lb, ub)
        return (lb, ub, bounds) if collect else (lb, ub)
    c = spec_matrix(labels)
    w = torch.matmul(c, last.weight)  # (batch, n - 1, hidden)
    b = torch.matmul(c, last.bias)
    mu, r = (ub + lb) / 2, (ub - lb) / 2
    mu = torch.bmm(w, mu.unsqueeze(-1)).squeeze(-1) + b
    r = torch.bmm(w.abs(), r.unsqueeze(-1)).squeeze(-1)
    return mu - r, mu + r


def robust_ce(model, x, labels, eps):
    lb, _ = compute_bounds(model, x, eps, labels)
    lb_padded = torch.cat((torch.zeros(size=(lb.size(0), 1), dtype=lb.dtype, device=lb.device), lb), dim=1)
    fake_labels = torch.zeros(size=(lb.size(0),), dtype=torch.int64, device=lb.device)
    return nn.CrossEntropyLoss()(-lb_padded, fake_labels), lb


@torch.no_grad()
def evaluate(model, x, y, eps):
    model.eval()
    clean = (model(x).argmax(1) == y).float().mean().item()
    lb, _ = compute_bounds(model, x, eps, y)
    verified = (lb.min(1)[0] > 0).float().mean().item()
    model.train()
    return clean, verified


x_train, y_train = make_data(384)
x_test, y_test = make_data(128)
model = model_cnn()
optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[18, 22], gamma=0.3)

eps_train, eps_test = 0.12, 0.1
warmup, ramp, epochs, batch_size = 2, 8, 24, 32
clean0, verified0 = evaluate(model, x_test, y_test, eps_test)
print(f"before: clean {clean0:.3f}  verified {verified0:.3f}")
for epoch in range(epochs):
    perm = torch.randperm(len(x_train))
    total_nat, total_rob, steps = 0.0, 0.0, 0
    for start in range(0, len(perm), batch_size):
        step = epoch * (len(perm) // batch_size) + start // batch_size
        progress = min(max(step / (len(perm) // batch_size) - warmup, 0) / ramp, 1.0)
        eps = eps_train * progress
        kappa = 1.0 - 0.5 * progress
        idx = perm[start:start + batch_size]
        data, labels = x_train[idx], y_train[idx]
        nominal = F.cross_entropy(model(data), labels)
        robust, _ = robust_ce(model, data, labels, eps)
        loss = kappa * nominal + (1 - kappa) * robust
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total_nat += nominal.item()
        total_rob += robust.item()
        steps += 1
    scheduler.step()
    if epoch % 4 == 3:
        clean, verified = evaluate(model, x_test, y_test, eps_test)
        print(f"epoch {epoch}: eps {eps:.3f} kappa {kappa:.2f} nominal {total_nat / steps:.4f} "
              f"robust {total_rob / steps:.4f} clean {clean:.3f} verified {verified:.3f}")

clean, verified = evaluate(model, x_test, y_test, eps_test)
print(f"after: clean {clean:.3f}  verified {verified:.3f}")

# soundness: every layer's interval holds the activations of perturbed inputs
with torch.no_grad():
    model.eval()
    x, y = x_test[:16], y_test[:16]
    lb_logits, ub_logits, layer_bounds = compute_bounds(model, x, eps_test, collect=True)
    box_lb, box_ub = (x - eps_test).clamp(0, 1), (x + eps_test).clamp(0, 1)
    violations, samples = 0, 0
    for trial in range(40):
        if trial % 2 == 0:
            u = torch.rand_like(x)
        else:
            u = (torch.rand_like(x) > 0.5).float()  # vertices of the box
        h = box_lb + u * (box_ub - box_lb)
        for (lb, ub), layer in zip(layer_bounds, list(model.children())[:-1]):
            h = layer(h)
            violations += int(((h < lb - 1e-5) | (h > ub + 1e-5)).sum())
        logits = list(model.children())[-1](h)
        violations += int(((logits < lb_logits - 1e-5) | (logits > ub_logits + 1e-5)).sum())
        margin = logits.gather(1, y[:, None]) - logits
        spec_lb, _ = compute_bounds(model, x, eps_test, y)
        others = margin[~F.one_hot(y, NUM_CLASS).bool()].view(len(y), -1)
        violations += int((others < spec_lb - 1e-5).sum())
        samples += len(x)
    route_lb, route_ub = compute_bounds(model, x, eps_test, layer_fn=interval_layer_pos_neg)
    route_err = max((route_lb - lb_logits).abs().max().item(), (route_ub - ub_logits).abs().max().item())
    naive = (lb_logits.gather(1, y[:, None]) - ub_logits)[~F.one_hot(y, NUM_CLASS).bool()].view(len(y), -1)
    looser = int((spec_lb < naive - 1e-5).sum())
    tightening = (spec_lb - naive).mean().item()
print(f"soundness: {samples} perturbed inputs, {violations} violations; pos/neg route err {route_err:.1e}; "
      f"elision tighter by {tightening:.4f} on average, looser in {looser}")
agree = float(violations == 0 and looser == 0 and route_err < 1e-4)

print(f"FINAL clean={clean:.4f} verified={verified:.4f} verified_gain={verified - verified0:.4f} "
      f"tightening={tightening:.4f} agree={agree:.0f}")
