"""TENT: fully test-time adaptation by entropy minimisation (Wang et al., ICLR 2021), DequanWang/tent's tent.py.

A small CNN with ``nn.BatchNorm2d`` is trained on source images, then tested on a shifted domain
(contrast drop, brightness offset, extra noise). ``tent.configure_model`` sets ``model.train()``,
``model.requires_grad_(False)``, and for every ``nn.BatchNorm2d`` ``m.requires_grad_(True)``,
``m.track_running_stats = False``, ``m.running_mean = None``, ``m.running_var = None``;
``collect_params`` walks ``model.named_modules()`` and keeps the BN ``weight``/``bias``;
``check_model`` asserts the setup; the ``@torch.jit.script`` ``softmax_entropy(x) = -(x.softmax(1) * x.log_softmax(1)).sum(1)``;
``forward_and_adapt`` is decorated with ``@torch.enable_grad()`` (so it adapts even when the caller
is under ``torch.no_grad()``); the ``Tent`` wrapper keeps ``deepcopy(model.state_dict())`` and
``deepcopy(optimizer.state_dict())`` for ``reset()``; SGD with momentum on the affine parameters.

Checked: only the BN affine parameters change while adapting (every other tensor ``torch.equal``),
``reset()`` restores the model and the optimizer exactly, and accuracy on the shifted test set rises
from the source model's (eval-mode BN) to TENT's online accuracy.
"""

import os
from copy import deepcopy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

CLASSES = 4
SIZE = 12


def make_images(n, shift=False):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    labels = rng.randint(0, CLASSES, size=n)
    images = np.zeros((n, 1, SIZE, SIZE), dtype=np.float32)
    for i, label in enumerate(labels):
        phase = rng.uniform(0, 2 * np.pi)
        if label == 0:
            pattern = np.sin(0.9 * xx + phase)
        elif label == 1:
            pattern = np.sin(0.9 * yy + phase)
        elif label == 2:
            pattern = np.sin(0.65 * (xx + yy) + phase)
        else:
            pattern = np.sin(0.65 * (xx - yy) + phase)
        images[i, 0] = pattern + 0.6 * rng.randn(SIZE, SIZE)
    if shift:
        images = 0.45 * images + 0.9 + 0.5 * rng.randn(*images.shape).astype(np.float32)
    return torch.from_numpy(images.astype(np.float32)), torch.from_numpy(labels)


class Net(nn.Module):
    def __init__(self, num_classes=CLASSES):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


# ---- tent.py ----------------------------------------------------------------------------------------
class Tent(nn.Module):
    """Tent adapts a model by entropy minimization during testing.

    Once tented, a model adapts itself by updating on every forward.
    """

    def __init__(self, model, optimizer, steps=1, episodic=False):
        super().__init__()
        self.model = model
        self.optimizer = optimizer
        self.steps = steps
        assert steps > 0, "tent requires >= 1 step(s) to forward and update"
        self.episodic = episodic

        # note: if the model is never reset, like for continual adaptation,
        # then skipping the state copy would save memory
        self.model_state, self.optimizer_state = copy_model_and_optimizer(self.model, self.optimizer)

    def forward(self, x):
        if self.episodic:
            self.reset()

        for _ in range(self.steps):
            outputs = forward_and_adapt(x, self.model, self.optimizer)

        return outputs

    def reset(self):
        if self.model_state is None or self.optimizer_state is None:
            raise Exception("cannot reset without saved model/optimizer state")
        load_model_and_optimizer(self.model, self.optimizer, self.model_state, self.optimizer_state)


@torch.jit.script
def softmax_entropy(x: torch.Tensor) -> torch.Tensor:
    """Entropy of softmax distribution from logits."""
    return -(x.softmax(1) * x.log_softmax(1)).sum(1)


@torch.enable_grad()  # ensure grads in possible no grad context for testing
def forward_and_adapt(x, model, optimizer):
    """Forward and adapt model on batch of data.

    Measure entropy of the model prediction, take gradients, and update params.
    """
    # forward
    outputs = model(x)
    # adapt
    loss = softmax_entropy(outputs).mean(0)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return outputs


def collect_params(model):
    """Collect the affine scale + shift parameters from batch norms.

    Walk the model's modules and collect all batch normalization parameters.
    Return the parameters and their names.
    """
    params = []
    names = []
    for nm, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            for np_, p in m.named_parameters():
                if np_ in ["weight", "bias"]:  # weight is scale, bias is shift
                    params.append(p)
                    names.append(f"{nm}.{np_}")
    return params, names


def copy_model_and_optimizer(model, optimizer):
    """Copy the model and optimizer states for resetting after adaptation."""
    model_state = deepcopy(model.state_dict())
    optimizer_state = deepcopy(optimizer.state_dict())
    return model_state, optimizer_state


def load_model_and_optimizer(model, optimizer, model_state, optimizer_state):
    """Restore the model and optimizer states from copies."""
    model.load_state_dict(model_state, strict=True)
    optimizer.load_state_dict(optimizer_state)


def configure_model(model):
    """Configure model for use with tent."""
    # train mode, because tent optimizes the model to minimize entropy
    model.train()
    # disable grad, to (re-)enable only what tent updates
    model.requires_grad_(False)
    # configure norm for tent updates: enable grad + force batch statisics
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.requires_grad_(True)
            # force use of batch stats in train and eval modes
            m.track_running_stats = False
            m.running_mean = None
            m.running_var = None
    return model


def check_model(model):
    """Check model for compatability with tent."""
    is_training = model.training
    assert is_training, "tent needs train mode: call model.train()"
    param_grads = [p.requires_grad for p in model.parameters()]
    has_any_params = any(param_grads)
    has_all_params = all(param_grads)
    assert has_any_params, "tent needs params to update: check which require grad"
    assert not has_all_params, "tent should not update all params: check which require grad"
    has_bn = any([isinstance(m, nn.BatchNorm2d) for m in model.modules()])
    assert has_bn, "tent needs normalization for its optimization"


# ---- source training ---------------------------------------------------------------------------------
train_x, train_y = make_images(1024)
source_test_x, source_test_y = make_images(512)
target_x, target_y = make_images(512, shift=True)

model = Net()
optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
for epoch in range(4):
    model.train()
    perm = torch.randperm(train_x.shape[0])
    total = 0.0
    for i in range(0, train_x.shape[0], 64):
        idx = perm[i:i + 64]
        loss = F.cross_entropy(model(train_x[idx]), train_y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * idx.numel()
    print(f"source epoch {epoch}  loss {total / train_x.shape[0]:.4f}")


def accuracy(net, x, y, batch_size=128):
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            correct += (net(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum().item()
    return correct / x.shape[0]


model.eval()
source_acc = accuracy(model, source_test_x, source_test_y)
shifted_acc = accuracy(model, target_x, target_y)
with torch.no_grad():
    shifted_entropy = softmax_entropy(model(target_x)).mean().item()
print(f"source model: source acc {source_acc:.4f}  shifted acc {shifted_acc:.4f}  shifted entropy {shifted_entropy:.4f}")

# ---- tent --------------------------------------------------------------------------------------------
model = configure_model(model)
params, param_names = collect_params(model)
check_model(model)
print(f"tent params {len(params)}: {' '.join(param_names)}")
print(f"state_dict keys after configure {len(model.state_dict())}  running_mean is None {model.bn1.running_mean is None}")
tent_optimizer = optim.SGD(params, lr=0.01, momentum=0.9)
tented = Tent(model, tent_optimizer, steps=1, episodic=False)
before = {k: v.clone() for k, v in model.state_dict().items()}

correct = 0
entropies = []
for rnd in range(3):
    correct = 0
    for i in range(0, target_x.shape[0], 128):
        with torch.no_grad():
            outputs = tented(target_x[i:i + 128])
        correct += (outputs.argmax(1) == target_y[i:i + 128]).sum().item()
        entropies.append(softmax_entropy(outputs).mean().item())
    print(f"tent round {rnd}  online acc {correct / target_x.shape[0]:.4f}  last batch entropy {entropies[-1]:.4f}")
tent_acc = correct / target_x.shape[0]

after = model.state_dict()
changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
only_bn_affine = changed == sorted(param_names)
print(f"changed tensors {len(changed)}  only BN affine changed {only_bn_affine}")
trainable = [n for n, p in model.named_parameters() if p.requires_grad]
grads_none = trainable == param_names
print(f"requires_grad only on BN affine {grads_none}  optimizer state entries {len(tent_optimizer.state)}")

tented.reset()
restored = all(torch.equal(before[k], v) for k, v in model.state_dict().items())
print(f"reset restores model {restored}  optimizer state entries {len(tent_optimizer.state)}")

# BN with batch statistics alone (no entropy step): the "norm" baseline of the paper
reset_acc = accuracy(model, target_x, target_y)
print(f"after reset (batch-stat BN, no adaptation) acc {reset_acc:.4f}")

checks = int(only_bn_affine) + int(restored) + int(grads_none) + int(tent_acc > shifted_acc)
print(f"FINAL source_acc={source_acc:.4f} shifted_acc={shifted_acc:.4f} norm_acc={reset_acc:.4f} "
      f"tent_acc={tent_acc:.4f} gain={tent_acc - shifted_acc:.4f} checks={checks}")
