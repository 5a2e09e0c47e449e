"""davda54/sam as its example trains: ``SAM(torch.optim.Optimizer)`` (sam.py) around SGD with
momentum, ``bypass_bn`` (example/utility/bypass_bn.py) and ``smooth_crossentropy``
(example/model/smooth_cross_entropy.py) on a small BatchNorm CNN, against plain SGD.

sam.py's pieces: ``defaults = dict(rho=rho, adaptive=adaptive, **kwargs)``, ``self.base_optimizer =
base_optimizer(self.param_groups, **kwargs)`` shared back by ``self.param_groups =
self.base_optimizer.param_groups``, ``@torch.no_grad() first_step`` saving ``self.state[p]["old_p"]
= p.data.clone()`` and climbing by ``(torch.pow(p, 2) if group["adaptive"] else 1.0) * p.grad *
scale.to(p)``, ``_grad_norm`` by ``torch.norm(torch.stack([((torch.abs(p) if group["adaptive"] else
1.0) * p.grad).norm(p=2).to(shared_device) ...]), p=2)``, ``second_step`` restoring ``p.data =
self.state[p]["old_p"]``, ``step(closure)`` with ``torch.enable_grad()(closure)``, and the
``load_state_dict`` override re-sharing ``self.base_optimizer.param_groups``. The example's
training loop: ``enable_running_stats``/``disable_running_stats`` over ``model.apply`` setting the
``_BatchNorm`` ``momentum`` to 0 for the second pass (``backup_momentum``), ``one_hot =
torch.full_like(pred, ...)`` + ``scatter_(dim=1, index=gold.unsqueeze(1), value=1.0 - smoothing)``
into ``F.kl_div(reduction='none').sum(-1)``, its hand-written ``StepLR`` writing
``param_group["lr"]``, ``torch.argmax(predictions.data, 1) == targets`` accuracy. Also adaptive SAM
(ASAM) through ``step(closure)``, a checkpoint resumed through ``load_state_dict`` that must equal
the uninterrupted run, and a check that the second pass leaves BatchNorm's running stats alone.

The data: 4 classes of 3x8x8 images (class template plus noise) made with NumPy.
"""
# ruff: noqa: UP008, B023, E701  (sam.py's own super(SAM, self), one-line ifs; the README's closure)

import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


# --- sam.py -------------------------------------------------------------------------------------------
class SAM(torch.optim.Optimizer):
    def __init__(self, params, base_optimizer, rho=0.05, adaptive=False, **kwargs):
        assert rho >= 0.0, f"Invalid rho, should be non-negative: {rho}"

        defaults = dict(rho=rho, adaptive=adaptive, **kwargs)
        super(SAM, self).__init__(params, defaults)

        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)

    @torch.no_grad()
    def first_step(self, zero_grad=False):
        grad_norm = self._grad_norm()
        for group in self.param_groups:
            scale = group["rho"] / (grad_norm + 1e-12)

            for p in group["params"]:
                if p.grad is None: continue
                self.state[p]["old_p"] = p.data.clone()
                e_w = (torch.pow(p, 2) if group["adaptive"] else 1.0) * p.grad * scale.to(p)
                p.add_(e_w)  # climb to the local maximum "w + e(w)"

        if zero_grad: self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad=False):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None: continue
                p.data = self.state[p]["old_p"]  # get back to "w" from "w + e(w)"

        self.base_optimizer.step()  # do the actual "sharpness-aware" update

        if zero_grad: self.zero_grad()

    @torch.no_grad()
    def step(self, closure=None):
        assert closure is not None, "Sharpness Aware Minimization requires closure, but it was not provided"
        closure = torch.enable_grad()(closure)  # the closure should do a full forward-backward pass

        self.first_step(zero_grad=True)
        closure()
        self.second_step()

    def _grad_norm(self):
        shared_device = self.param_groups[0]["params"][0].device  # put everything on the same device, in case of model parallelism
        norm = torch.norm(
                    torch.stack([
                        ((torch.abs(p) if group["adaptive"] else 1.0) * p.grad).norm(p=2).to(shared_device)
                        for group in self.param_groups for p in group["params"]
                        if p.grad is not None
                    ]),
                    p=2
               )
        return norm

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self.base_optimizer.param_groups = self.param_groups


# --- example/utility/bypass_bn.py ---------------------------------------------------------------------
def disable_running_stats(model):
    def _disable(module):
        if isinstance(module, _BatchNorm):
            module.backup_momentum = module.momentum
            module.momentum = 0

    model.apply(_disable)


def enable_running_stats(model):
    def _enable(module):
        if isinstance(module, _BatchNorm) and hasattr(module, "backup_momentum"):
            module.momentum = module.backup_momentum

    model.apply(_enable)


# --- example/model/smooth_cross_entropy.py ------------------------------------------------------------
def smooth_crossentropy(pred, gold, smoothing=0.1):
    n_class = pred.size(1)

    one_hot = torch.full_like(pred, fill_value=smoothing / (n_class - 1))
    one_hot.scatter_(dim=1, index=gold.unsqueeze(1), value=1.0 - smoothing)
    log_prob = F.log_softmax(pred, dim=1)

    return F.kl_div(input=log_prob, target=one_hot, reduction='none').sum(-1)


# --- example/utility/step_lr.py -----------------------------------------------------------------------
class StepLR:
    def __init__(self, optimizer, learning_rate: float, total_epochs: int):
        self.optimizer = optimizer
        self.total_epochs = total_epochs
        self.base = learning_rate

    def __call__(self, epoch):
        if epoch < self.total_epochs * 3/10:
            lr = self.base
        elif epoch < self.total_epochs * 6/10:
            lr = self.base * 0.2
        elif epoch < self.total_epochs * 8/10:
            lr = self.base * 0.2 ** 2
        else:
            lr = self.base * 0.2 ** 3

        for param_group in self.optimizer.param_groups:
            param_group["lr"] = lr

    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]


# --- the data and the model ---------------------------------------------------------------------------
rng = np.random.RandomState(0)
templates = rng.randn(4, 3, 8, 8).astype(np.float32)
labels_np = rng.randint(0, 4, size=320)
images_np = templates[labels_np] + 1.6 * rng.randn(320, 3, 8, 8).astype(np.float32)
x_all = torch.from_numpy(images_np)
y_all = torch.from_numpy(labels_np).long()
x_train, y_train, x_test, y_test = x_all[:256], y_all[:256], x_all[256:], y_all[256:]


class SmallCNN(nn.Module):
    def __init__(self, num_classes=4):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Linear(16, num_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def batches(epoch, batch_size=32):
    order = torch.randperm(x_train.size(0), generator=torch.Generator().manual_seed(1000 * seed + epoch))
    for start in range(0, x_train.size(0), batch_size):
        index = order[start:start + batch_size]
        yield x_train[index], y_train[index]


@torch.no_grad()
def evaluate(model):
    model.eval()
    predictions = model(x_test)
    loss = smooth_crossentropy(predictions, y_test).mean().item()
    accuracy = (torch.argmax(predictions, 1) == y_test).float().mean().item()
    model.train()
    return loss, accuracy


def train_sam(model, optimizer, scheduler, epochs, first_epoch=0):
    for epoch in range(first_epoch, epochs):
        model.train()
        total_loss, total_correct, seen = 0.0, 0, 0
        for inputs, targets in batches(epoch):
            # first forward-backward step
            enable_running_stats(model)
            predictions = model(inputs)
            loss = smooth_crossentropy(predictions, targets, smoothing=0.1)
            loss.mean().backward()
            optimizer.first_step(zero_grad=True)

            # second forward-backward step
            disable_running_stats(model)
            smooth_crossentropy(model(inputs), targets, smoothing=0.1).mean().backward()
            optimizer.second_step(zero_grad=True)

            with torch.no_grad():
                correct = torch.argmax(predictions.data, 1) == targets
                total_loss += loss.sum().item()
                total_correct += correct.sum().item()
                seen += targets.size(0)
                scheduler(epoch)
        if epoch % 3 == 0:
            print(f"sam epoch {epoch} lr {scheduler.lr():.4f} loss {total_loss / seen:.4f} "
                  f"acc {total_correct / seen:.3f}")


EPOCHS = 8

# --- SAM, as example/train.py --------------------------------------------------------------------------
model = SmallCNN()
initial_state = copy.deepcopy(model.state_dict())
base_optimizer = torch.optim.SGD
optimizer = SAM(model.parameters(), base_optimizer, rho=0.05, adaptive=False, lr=0.1, momentum=0.9,
                weight_decay=5e-4)
scheduler = StepLR(optimizer, 0.1, EPOCHS)
print(sorted(optimizer.defaults.keys()))
print(optimizer.param_groups is optimizer.base_optimizer.param_groups)

# the second pass must not move BatchNorm's running statistics
bn = model.features[1]
inputs, targets = next(batches(0))
enable_running_stats(model)
smooth_crossentropy(model(inputs), targets).mean().backward()
optimizer.first_step(zero_grad=True)
running_before = bn.running_mean.clone()
tracked_before = bn.num_batches_tracked.item()
disable_running_stats(model)
smooth_crossentropy(model(inputs), targets).mean().backward()
print("bypass_bn momentum", bn.momentum, "backup", bn.backup_momentum,
      "running_mean unchanged", torch.equal(bn.running_mean, running_before),
      "batches tracked", bn.num_batches_tracked.item() - tracked_before)
optimizer.second_step(zero_grad=True)
enable_running_stats(model)
print("restored momentum", bn.momentum, "old_p saved", len(optimizer.state),
      sorted(optimizer.state[bn.weight].keys()))
model.load_state_dict(initial_state)
optimizer = SAM(model.parameters(), base_optimizer, rho=0.05, adaptive=False, lr=0.1, momentum=0.9,
                weight_decay=5e-4)
scheduler = StepLR(optimizer, 0.1, EPOCHS)

train_sam(model, optimizer, scheduler, EPOCHS // 2)
# SAM's own state holds only "old_p": SGD's momentum buffers live in the base optimizer's state
checkpoint = {"model": copy.deepcopy(model.state_dict()), "optimizer": copy.deepcopy(optimizer.state_dict()),
              "base_optimizer": copy.deepcopy(optimizer.base_optimizer.state_dict())}
print(sorted(checkpoint["optimizer"]["param_groups"][0].keys()))
print(sorted(checkpoint["base_optimizer"]["state"][0].keys()))
print(len(checkpoint["optimizer"]["state"]), sorted(checkpoint["optimizer"]["state"][0].keys()))
train_sam(model, optimizer, scheduler, EPOCHS, first_epoch=EPOCHS // 2)
sam_loss, sam_acc = evaluate(model)
print(f"sam test_loss {sam_loss:.4f} test_acc {sam_acc:.3f}")

# resumed from the halfway checkpoint: the base optimizer's load replaces its param_groups, and
# SAM.load_state_dict shares SAM's back to it
resumed = SmallCNN()
resumed.load_state_dict(checkpoint["model"])
resumed_optimizer = SAM(resumed.parameters(), base_optimizer, rho=0.05, adaptive=False, lr=0.1, momentum=0.9,
                        weight_decay=5e-4)
resumed_optimizer.base_optimizer.load_state_dict(checkpoint["base_optimizer"])
print("shared after base load", resumed_optimizer.base_optimizer.param_groups is resumed_optimizer.param_groups)
resumed_optimizer.load_state_dict(checkpoint["optimizer"])
print("shared after load", resumed_optimizer.base_optimizer.param_groups is resumed_optimizer.param_groups)
train_sam(resumed, resumed_optimizer, StepLR(resumed_optimizer, 0.1, EPOCHS), EPOCHS, first_epoch=EPOCHS // 2)
resume_diff = max((a - b).abs().max().item() for a, b in zip(model.state_dict().values(),
                                                                resumed.state_dict().values()))
print(f"resume max difference {resume_diff:.1e}")

# --- ASAM through step(closure) ---------------------------------------------------------------------------
torch.manual_seed(seed)
asam_model = SmallCNN()
asam = SAM(asam_model.parameters(), torch.optim.SGD, rho=2.0, adaptive=True, lr=0.1, momentum=0.9)
for epoch in range(EPOCHS):
    for inputs, targets in batches(epoch):
        def closure():
            disable_running_stats(asam_model)
            loss = smooth_crossentropy(asam_model(inputs), targets).mean()
            loss.backward()
            return loss

        enable_running_stats(asam_model)
        loss = smooth_crossentropy(asam_model(inputs), targets).mean()
        loss.backward()
        asam.step(closure)
        asam.zero_grad()
    if epoch % 3 == 0:
        print(f"asam epoch {epoch} loss {loss.item():.4f}")
asam_loss, asam_acc = evaluate(asam_model)
print(f"asam test_loss {asam_loss:.4f} test_acc {asam_acc:.3f}")

# --- plain SGD from the same start ----------------------------------------------------------------------
sgd_model = SmallCNN()
sgd_model.load_state_dict(initial_state)
sgd = torch.optim.SGD(sgd_model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
sgd_scheduler = StepLR(sgd, 0.1, EPOCHS)
for epoch in range(EPOCHS):
    for inputs, targets in batches(epoch):
        sgd.zero_grad()
        loss = smooth_crossentropy(sgd_model(inputs), targets).mean()
        loss.backward()
        sgd.step()
        sgd_scheduler(epoch)
sgd_loss, sgd_acc = evaluate(sgd_model)
print(f"sgd test_loss {sgd_loss:.4f} test_acc {sgd_acc:.3f}")

print(f"FINAL sam_loss={sam_loss:.4f} sam_acc={sam_acc:.4f} asam_acc={asam_acc:.4f} sgd_loss={sgd_loss:.4f} "
      f"sgd_acc={sgd_acc:.4f} resume_diff={resume_diff:.6f}")
