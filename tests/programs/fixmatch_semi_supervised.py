"""FixMatch (Sohn et al., 2020) with 16 labels, written as the popular PyTorch port
(kekmodel/FixMatch-pytorch) writes its training script, on small synthetic images.

Two datasets: the labelled one returns a weakly augmented image, the unlabelled one a
``(weak, strong)`` pair, augmented in ``__getitem__`` from torch's RNG: weak is a random horizontal
``flip(-1)`` and a one-pixel ``torch.roll`` shift; strong adds ``randn_like`` noise, a random contrast
and a cutout square by ``torch.where`` over a ``torch.meshgrid(indexing="ij")`` box. Two
``DataLoader``s draw through ``RandomSampler(replacement=True, num_samples=...)`` (``drop_last=True``),
and the loop cycles them by ``next(iter)`` with ``except StopIteration`` renewing the iterator. Each
step is one forward of the labelled, weak and strong batches ``torch.cat``-ed and interleaved (the
port's ``interleave``/``de_interleave`` by ``reshape`` + ``transpose(0, 1)``, so BatchNorm sees every
part in each slice), the logits cut back by ``[:batch_size]`` and ``split``; pseudo-labels by
``probs.max(dim=-1)`` of the weak view's softmax under ``torch.no_grad()``, the confidence mask
``max_prob.ge(threshold).float()``, the loss ``Lx + lambda_u * Lu`` with
``Lu = (F.cross_entropy(logits_u_s, pseudo, reduction='none') * mask).mean()``. SGD with Nesterov
momentum and two parameter groups (no weight decay on biases and BatchNorm), the port's cosine
decay with warm-up as a ``LambdaLR``, and its ``ModelEMA`` (a ``deepcopy`` updated through
``state_dict()`` ``copy_``, buffers copied) used for evaluation. Reported: test accuracy of the EMA
and the raw model, of a labelled-only run from the same start, the final mask rate and the
accuracy of the accepted pseudo-labels.

The data: 8x8 images of four shapes (a horizontal bar, a vertical bar, a plus, a hollow square) at
random places in Gaussian noise (std 0.3), made with NumPy; 4 labels per class, 480 unlabelled images.
"""

import copy
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader, Dataset, RandomSampler

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

NUM_CLASSES, SIZE = 4, 8


def make_images(n_per_class):
    images, labels = [], []
    for label in range(NUM_CLASSES):
        for _ in range(n_per_class):
            image = np.zeros((SIZE, SIZE), dtype=np.float32)
            r, c = rng.integers(2, SIZE - 2, size=2)
            if label == 0:
                image[r, c - 2:c + 3] = 1.0
            elif label == 1:
                image[r - 2:r + 3, c] = 1.0
            elif label == 2:
                image[r, c - 1:c + 2] = 1.0
                image[r - 1:r + 2, c] = 1.0
            else:
                image[r - 1:r + 2, c - 1:c + 2] = 1.0
                image[r, c] = 0.0
            images.append(image + rng.normal(0.0, 0.3, size=image.shape).astype(np.float32))
            labels.append(label)
    order = rng.permutation(len(labels))
    return torch.from_numpy(np.stack(images)[order]).unsqueeze(1), torch.tensor(labels)[order]


def weak_augment(x):
    if torch.rand(1) < 0.5:
        x = x.flip(-1)
    shift = torch.randint(-1, 2, (2,))
    return torch.roll(x, shifts=(int(shift[0]), int(shift[1])), dims=(-2, -1))


def strong_augment(x):
    x = weak_augment(x)
    x = x * torch.empty(1).uniform_(0.6, 1.4) + 0.3 * torch.randn_like(x)
    yy, xx = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    top, left = torch.randint(0, SIZE - 2, (2,)).tolist()
    box = (yy >= top) & (yy < top + 3) & (xx >= left) & (xx < left + 3)
    return torch.where(box, torch.zeros_like(x), x)


class LabeledDataset(Dataset):
    def __init__(self, images, targets):
        self.images, self.targets = images, targets

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return weak_augment(self.images[index]), self.targets[index]


class UnlabeledDataset(Dataset):
    def __init__(self, images, hidden_targets):
        self.images, self.hidden_targets = images, hidden_targets

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        image = self.images[index]
        return (weak_augment(image), strong_augment(image)), self.hidden_targets[index]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.fc = nn.Linear(32, NUM_CLASSES)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.relu(self.bn2(self.conv2(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def interleave(x, size):
    s = list(x.shape)
    return x.reshape([-1, size] + s[1:]).transpose(0, 1).reshape([-1] + s[1:])


def de_interleave(x, size):
    s = list(x.shape)
    return x.reshape([size, -1] + s[1:]).transpose(0, 1).reshape([-1] + s[1:])


def get_cosine_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps, num_cycles=7. / 16., last_epoch=-1):
    def _lr_lambda(current_step):
        if current_step < num_warmup_steps:
            return float(current_step) / float(max(1, num_warmup_steps))
        no_progress = float(current_step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
        return max(0., math.cos(math.pi * num_cycles * no_progress))

    return LambdaLR(optimizer, _lr_lambda, last_epoch)


class ModelEMA:
    def __init__(self, model, decay):
        self.ema = copy.deepcopy(model)
        self.ema.eval()
        self.decay = decay
        self.param_keys = [k for k, _ in self.ema.named_parameters()]
        self.buffer_keys = [k for k, _ in self.ema.named_buffers()]
        for p in self.ema.parameters():
            p.requires_grad_(False)

    def update(self, model):
        with torch.no_grad():
            msd = model.state_dict()
            esd = self.ema.state_dict()
            for k in self.param_keys:
                model_v = msd[k].detach()
                ema_v = esd[k]
                esd[k].copy_(ema_v * self.decay + (1. - self.decay) * model_v)
            for k in self.buffer_keys:
                esd[k].copy_(msd[k])


def make_optimizer(model, lr, weight_decay=5e-4):
    no_decay = ["bias", "bn"]
    grouped_parameters = [
        {"params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)], "weight_decay": weight_decay},
        {"params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)], "weight_decay": 0.0},
    ]
    return torch.optim.SGD(grouped_parameters, lr=lr, momentum=0.9, nesterov=True)


@torch.no_grad()
def accuracy(model, images, targets):
    model.eval()
    return (model(images).argmax(1) == targets).float().mean().item()


labeled_x, labeled_y = make_images(4)
unlabeled_x, unlabeled_y = make_images(120)
test_x, test_y = make_images(100)
print(f"labelled {tuple(labeled_x.shape)} unlabelled {tuple(unlabeled_x.shape)} test {tuple(test_x.shape)}")

BATCH, MU, THRESHOLD, LAMBDA_U, LR = 8, 4, 0.9, 1.0, 0.1
EPOCHS, EVAL_STEP = 6, 20
TOTAL_STEPS = EPOCHS * EVAL_STEP

labeled_dataset = LabeledDataset(labeled_x, labeled_y)
unlabeled_dataset = UnlabeledDataset(unlabeled_x, unlabeled_y)
labeled_loader = DataLoader(labeled_dataset, batch_size=BATCH, drop_last=True,
                            sampler=RandomSampler(labeled_dataset, replacement=True, num_samples=EVAL_STEP * BATCH))
unlabeled_loader = DataLoader(unlabeled_dataset, batch_size=BATCH * MU, drop_last=True,
                              sampler=RandomSampler(unlabeled_dataset, replacement=True, num_samples=EVAL_STEP * BATCH * MU))
print(f"loaders {len(labeled_loader)} and {len(unlabeled_loader)} batches per epoch")
(probe_w, probe_s), _ = next(iter(unlabeled_loader))
print(f"views {tuple(probe_w.shape)} {tuple(probe_s.shape)} cutout zeros {(probe_s == 0).flatten(1).sum(1).min().item() >= 9}")
mixed = torch.arange(3 * 4).float().view(12, 1)
print(f"interleave round trip {torch.equal(de_interleave(interleave(mixed, 3), 3), mixed)}")

start = Net()
model = copy.deepcopy(start)
baseline = copy.deepcopy(start)
optimizer = make_optimizer(model, LR)
scheduler = get_cosine_schedule_with_warmup(optimizer, 0, TOTAL_STEPS)
ema_model = ModelEMA(model, decay=0.95)
baseline_optimizer = make_optimizer(baseline, LR)
baseline_scheduler = get_cosine_schedule_with_warmup(baseline_optimizer, 0, TOTAL_STEPS)
print(f"groups {[len(g['params']) for g in optimizer.param_groups]} decay {[g['weight_decay'] for g in optimizer.param_groups]}")

labeled_iter = iter(labeled_loader)
unlabeled_iter = iter(unlabeled_loader)
for epoch in range(EPOCHS):
    model.train()
    sums = {"loss_x": 0.0, "loss_u": 0.0, "mask": 0.0, "pseudo_right": 0.0}
    for _ in range(EVAL_STEP):
        try:
            inputs_x, targets_x = next(labeled_iter)
        except StopIteration:
            labeled_iter = iter(labeled_loader)
            inputs_x, targets_x = next(labeled_iter)
        try:
            (inputs_u_w, inputs_u_s), hidden_u = next(unlabeled_iter)
        except StopIteration:
            unlabeled_iter = iter(unlabeled_loader)
            (inputs_u_w, inputs_u_s), hidden_u = next(unlabeled_iter)

        batch_size = inputs_x.shape[0]
        inputs = interleave(torch.cat((inputs_x, inputs_u_w, inputs_u_s)), 2 * MU + 1)
        logits = model(inputs)
        logits = de_interleave(logits, 2 * MU + 1)
        logits_x = logits[:batch_size]
        logits_u_w, logits_u_s = logits[batch_size:].split(MU * batch_size)
        del logits

        Lx = F.cross_entropy(logits_x, targets_x, reduction="mean")
        with torch.no_grad():
            probs = torch.softmax(logits_u_w.detach(), dim=-1)
            max_prob, pseudo = probs.max(dim=-1)
            mask = max_prob.ge(THRESHOLD).float()
        Lu = (F.cross_entropy(logits_u_s, pseudo, reduction="none") * mask).mean()
        loss = Lx + LAMBDA_U * Lu

        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        ema_model.update(model)

        baseline.train()
        baseline_loss = F.cross_entropy(baseline(inputs_x), targets_x)
        baseline_optimizer.zero_grad()
        baseline_loss.backward()
        baseline_optimizer.step()
        baseline_scheduler.step()

        sums["loss_x"] += Lx.item()
        sums["loss_u"] += Lu.item()
        sums["mask"] += mask.mean().item()
        sums["pseudo_right"] += ((pseudo == hidden_u).float() * mask).sum().item() / max(mask.sum().item(), 1.0)
    means = {k: v / EVAL_STEP for k, v in sums.items()}
    print(f"epoch {epoch + 1} lr {scheduler.get_last_lr()[0]:.5f} loss_x {means['loss_x']:.4f} loss_u {means['loss_u']:.4f} "
          f"mask {means['mask']:.3f} pseudo_acc {means['pseudo_right']:.3f} "
          f"ema_acc {accuracy(ema_model.ema, test_x, test_y):.4f}")

ema_acc = accuracy(ema_model.ema, test_x, test_y)
model_acc = accuracy(model, test_x, test_y)
baseline_acc = accuracy(baseline, test_x, test_y)
print(f"ema bn buffers follow the model {torch.equal(ema_model.ema.bn1.running_mean, model.bn1.running_mean)} "
      f"batches tracked {int(ema_model.ema.bn2.num_batches_tracked)}")
print(f"FINAL ema_acc={ema_acc:.4f} model_acc={model_acc:.4f} labeled_only_acc={baseline_acc:.4f} "
      f"mask_rate={means['mask']:.4f} pseudo_acc={means['pseudo_right']:.4f}")
