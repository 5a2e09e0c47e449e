"""PGD adversarial training (Madry et al.) and TRADES (Zhang et al.) as their PyTorch repos write them,
on small synthetic images with pixels in [0, 1].

The attack is Madry's L-inf PGD: a random start ``x + torch.empty_like(x).uniform_(-eps, eps)``,
steps along ``torch.autograd.grad(loss, [x_adv])[0].sign()``, projection back into the eps-ball by
``torch.min(torch.max(x_adv, x - eps), x + eps)`` and into the image box by ``clamp(0.0, 1.0)``, with
``model.eval()`` during the attack (the model has BatchNorm) and ``model.train()`` after. TRADES
follows yaodongyu/TRADES's ``trades_loss``: ``nn.KLDivLoss(size_average=False)`` (the legacy
argument, with its warning), a start at ``x + 0.001 * torch.randn(x.shape).detach()``, the inner
maximisation under ``torch.enable_grad()`` of
``KL(F.log_softmax(model(x_adv), dim=1), F.softmax(model(x), dim=1))``, and the outer loss
``F.cross_entropy`` + ``beta`` times the batch-mean KL, checked against
``F.kl_div(..., reduction='batchmean')``. Evaluation adds locuslab/fast_adversarial's
``attack_pgd`` with restarts, which keeps each example's worst delta by
``max_delta[all_loss >= max_loss] = delta.detach()[all_loss >= max_loss]`` and only moves the
still-correct examples (``torch.where(output.max(1)[1] == y)``, ``delta.data[index[0], :, :, :] = d``).

The models: a standard one, a PGD-trained one and a TRADES-trained one; reported are their clean
and robust (PGD-10) test accuracies.

The data: four classes of 12x12 strokes (horizontal, vertical, diagonal, anti-diagonal) at random
offsets and brightness over uniform noise, made with NumPy.
"""

import os
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

SIZE, NUM_CLASSES = 12, 4
EPSILON, STEP_SIZE, TRAIN_STEPS, TEST_STEPS = 0.15, 0.04, 5, 10


def make_strokes(n):
    images = rng.uniform(0.0, 0.35, size=(n, 1, SIZE, SIZE)).astype(np.float32)
    labels = rng.integers(0, NUM_CLASSES, size=n)
    idx = np.arange(SIZE)
    for i, label in enumerate(labels):
        offset = int(rng.integers(-3, 4))
        brightness = rng.uniform(0.45, 0.65)
        if label == 0:
            images[i, 0, SIZE // 2 + offset, :] += brightness
        elif label == 1:
            images[i, 0, :, SIZE // 2 + offset] += brightness
        else:
            cols = (idx + offset) % SIZE if label == 2 else (SIZE - 1 - idx + offset) % SIZE
            images[i, 0, idx, cols] += brightness
    return torch.from_numpy(np.clip(images, 0.0, 1.0)), torch.from_numpy(labels)


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 3 * 3, 64), nn.ReLU(), nn.Linear(64, NUM_CLASSES))

    def forward(self, x):
        return self.classifier(self.features(x))


def pgd_attack(model, x, y, epsilon=EPSILON, step_size=STEP_SIZE, num_steps=TEST_STEPS):
    """Madry et al.'s L-inf PGD from a uniform random start, in eval mode."""
    model.eval()
    x_adv = x.detach() + torch.empty_like(x).uniform_(-epsilon, epsilon)
    x_adv = torch.clamp(x_adv, 0.0, 1.0)
    for _ in range(num_steps):
        x_adv.requires_grad_()
        with torch.enable_grad():
            loss = F.cross_entropy(model(x_adv), y)
        grad = torch.autograd.grad(loss, [x_adv])[0]
        x_adv = x_adv.detach() + step_size * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - epsilon), x + epsilon)
        x_adv = torch.clamp(x_adv, 0.0, 1.0)
    model.train()
    return x_adv.detach()


def clamp(X, lower_limit, upper_limit):
    return torch.max(torch.min(X, upper_limit), lower_limit)


def attack_pgd(model, X, y, epsilon, alpha, attack_iters, restarts):
    """locuslab/fast_adversarial's attack: restarts, the worst delta per example kept, and only
    the examples still classified correctly moved."""
    lower_limit, upper_limit = torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1)
    max_loss = torch.zeros(y.shape[0])
    max_delta = torch.zeros_like(X)
    for _ in range(restarts):
        delta = torch.zeros_like(X)
        for j in range(len(epsilon)):
            delta[:, j, :, :].uniform_(-epsilon[j][0][0].item(), epsilon[j][0][0].item())
        delta.data = clamp(delta, lower_limit - X, upper_limit - X)
        delta.requires_grad = True
        for _ in range(attack_iters):
            output = model(X + delta)
            index = torch.where(output.max(1)[1] == y)
            if len(index[0]) == 0:
                break
            loss = F.cross_entropy(output, y)
            loss.backward()
            grad = delta.grad.detach()
            d = delta[index[0], :, :, :]
            g = grad[index[0], :, :, :]
            d = clamp(d + alpha * torch.sign(g), -epsilon, epsilon)
            d = clamp(d, lower_limit - X[index[0], :, :, :], upper_limit - X[index[0], :, :, :])
            delta.data[index[0], :, :, :] = d
            delta.grad.zero_()
        all_loss = F.cross_entropy(model(X + delta), y, reduction='none').detach()
        max_delta[all_loss >= max_loss] = delta.detach()[all_loss >= max_loss]
        max_loss = torch.max(max_loss, all_loss)
    return max_delta


def trades_loss(model, x_natural, y, optimizer, step_size=STEP_SIZE, epsilon=EPSILON,
                perturb_steps=TRAIN_STEPS, beta=3.0):
    criterion_kl = nn.KLDivLoss(size_average=False)
    model.eval()
    batch_size = len(x_natural)
    x_adv = x_natural.detach() + 0.001 * torch.randn(x_natural.shape).detach()
    for _ in range(perturb_steps):
        x_adv.requires_grad_()
        with torch.enable_grad():
            loss_kl = criterion_kl(F.log_softmax(model(x_adv), dim=1), F.softmax(model(x_natural), dim=1))
        grad = torch.autograd.grad(loss_kl, [x_adv])[0]
        x_adv = x_adv.detach() + step_size * torch.sign(grad.detach())
        x_adv = torch.min(torch.max(x_adv, x_natural - epsilon), x_natural + epsilon)
        x_adv = torch.clamp(x_adv, 0.0, 1.0)
    model.train()
    x_adv = torch.clamp(x_adv, 0.0, 1.0).detach()
    optimizer.zero_grad()
    logits = model(x_natural)
    loss_natural = F.cross_entropy(logits, y)
    loss_robust = (1.0 / batch_size) * criterion_kl(F.log_softmax(model(x_adv), dim=1), F.softmax(model(x_natural), dim=1))
    loss = loss_natural + beta * loss_robust
    return loss, loss_robust


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(dim=1) == y).float().mean().item()


def robust_accuracy(model, x, y, batch_size=100):
    correct = 0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        x_adv = pgd_attack(model, xb, yb)
        model.eval()
        with torch.no_grad():
            correct += (model(x_adv).argmax(1) == yb).sum().item()
    return correct / len(x)


train_x, train_y = make_strokes(512)
test_x, test_y = make_strokes(200)
print(f"train {tuple(train_x.shape)} test {tuple(test_x.shape)} pixel range [{train_x.min().item():.1f}, {train_x.max().item():.1f}]")
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(train_x, train_y), batch_size=64, shuffle=True)

# the attack leaves the model in train mode and stays inside both boxes
probe_model = SmallCNN()
probe_adv = pgd_attack(probe_model, test_x[:32], test_y[:32], num_steps=3)
print(f"attack restores train mode {probe_model.training} "
      f"inside eps-ball {bool(((probe_adv - test_x[:32]).abs() <= EPSILON + 1e-6).all())} "
      f"inside [0, 1] {bool((probe_adv >= 0).all() and (probe_adv <= 1).all())}")

# TRADES's summed KL over the batch size is kl_div's 'batchmean'
logits_a, logits_b = probe_model(test_x[:32]), probe_model(probe_adv)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    summed = nn.KLDivLoss(size_average=False)(F.log_softmax(logits_b, 1), F.softmax(logits_a, 1)) / 32
print(f"KLDivLoss(size_average=False) warns {len(caught) > 0} "
      f"equals batchmean {torch.allclose(summed, F.kl_div(F.log_softmax(logits_b, 1), F.softmax(logits_a, 1), reduction='batchmean'))}")


def train(kind, epochs=5):
    torch.manual_seed(seed + 1)
    model = SmallCNN()
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    scheduler = optim.lr_scheduler.MultiStepLR(optimizer, milestones=[3], gamma=0.1)
    warnings.simplefilter("ignore")
    for epoch in range(1, epochs + 1):
        model.train()
        total, seen = 0.0, 0
        for data, target in loader:
            if kind == "standard":
                optimizer.zero_grad()
                loss = F.cross_entropy(model(data), target)
            elif kind == "pgd":
                x_adv = pgd_attack(model, data, target, num_steps=TRAIN_STEPS)
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x_adv), target)
            else:
                loss, _ = trades_loss(model, data, target, optimizer)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(data)
            seen += len(data)
        scheduler.step()
        if epoch in (1, epochs):
            print(f"{kind} epoch {epoch} loss {total / seen:.4f} lr {scheduler.get_last_lr()[0]:.4f}")
    return model


results = {}
for kind in ("standard", "pgd", "trades"):
    model = train(kind)
    clean, robust = accuracy(model, test_x, test_y), robust_accuracy(model, test_x, test_y)
    results[kind] = (clean, robust)
    print(f"{kind}: clean {clean:.3f} robust {robust:.3f}")

# locuslab's restarted, early-stopped attack on the TRADES model, beside a single PGD run on the same images
single_robust = robust_accuracy(model, test_x[:100], test_y[:100])
model.eval()
epsilon, alpha = torch.full((1, 1, 1), EPSILON), torch.full((1, 1, 1), STEP_SIZE)
delta = attack_pgd(model, test_x[:100], test_y[:100], epsilon, alpha, TEST_STEPS, restarts=2)
with torch.no_grad():
    restart_robust = (model(test_x[:100] + delta).argmax(1) == test_y[:100]).float().mean().item()
print(f"trades on 100 images: pgd robust {single_robust:.3f} attack_pgd(restarts=2) robust {restart_robust:.3f} "
      f"delta within eps {bool(delta.abs().max().item() <= EPSILON + 1e-6)}")

print("FINAL " + " ".join(f"{kind}_clean={clean:.4f} {kind}_robust={robust:.4f}" for kind, (clean, robust) in results.items())
      + f" trades_restart_robust={restart_robust:.4f}")
