"""The pytorch.org recipes on state and checkpoints, in turn, on the recipes' CIFAR ``Net``: "What is a
state_dict" (the model's tensors and sizes, the optimizer's ``state`` and ``param_groups`` printed
as they are), "Zeroing out gradients" (the ``'[%d, %5d] loss: %.3f'`` loop), "Saving and loading a
general checkpoint" (a dict of epoch/model/optimizer/loss by ``torch.save`` into a temporary
directory, ``torch.load(PATH, weights_only=True)`` into a fresh model and optimizer, ``model.eval()``
then resuming; the resumed run must equal the uninterrupted one), "Saving and loading multiple
models in one file", "Warmstarting model using parameters from a different model"
(``load_state_dict(strict=False)`` and its ``missing_keys``/``unexpected_keys``, the strict
``RuntimeError`` messages, a renamed-keys copy), "Tips for loading an nn.Module from a checkpoint"
(``torch.load(map_location='cpu', mmap=True, weights_only=True)``, a ``torch.device('meta')`` model
filled by ``load_state_dict(assign=True)``), gradient accumulation (``loss / accum_steps`` giving the
full batch's gradient) and "Reproducibility" (``torch.manual_seed``, ``random.seed``,
``np.random.seed``, ``torch.use_deterministic_algorithms(True)``, the ``torch.backends.cudnn``
flags, a ``seed_worker`` ``worker_init_fn`` and a seeded ``torch.Generator`` given to a
``DataLoader`` with workers: two runs must draw the same batches and augmentations). Synthetic
3x32x32 images (a colour pattern per class plus noise, made with NumPy) stand in for CIFAR-10.
"""

import os
import random
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader, Dataset, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

rng = np.random.RandomState(5)
patterns = rng.rand(10, 3, 32, 32).astype("float32")
labels_np = rng.randint(0, 10, 320)
images_np = (2 * (patterns[labels_np] - 0.5) + 0.5 * rng.randn(320, 3, 32, 32)).astype("float32")
images, labels = torch.from_numpy(images_np), torch.from_numpy(labels_np)


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()  # noqa: UP008  (the recipe's spelling)
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.view(-1, 16 * 5 * 5)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


# -- What is a state_dict
net = Net()
optimizer = optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
print("Model's state_dict:")
for param_tensor in net.state_dict():
    print(param_tensor, "\t", net.state_dict()[param_tensor].size())
print()
print("Optimizer's state_dict:")
for var_name in optimizer.state_dict():
    print(var_name, "\t", optimizer.state_dict()[var_name])

# -- Zeroing out gradients
trainloader = DataLoader(TensorDataset(images, labels), batch_size=4, shuffle=True)
criterion = nn.CrossEntropyLoss()
optimizer = optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
for epoch in range(3):
    running_loss = 0.0
    for i, data in enumerate(trainloader, 0):
        inputs, labels_b = data
        optimizer.zero_grad()
        outputs = net(inputs)
        loss = criterion(outputs, labels_b)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
        if i % 40 == 39:
            print("[%d, %5d] loss: %.3f" % (epoch + 1, i + 1, running_loss / 40))  # noqa: UP031
            running_loss = 0.0
print("Finished Training")
print("state after a step:", sorted(optimizer.state_dict()["state"])[:3], "...",
      list(optimizer.state_dict()["state"][0]))


def evaluate(model):
    with torch.no_grad():
        return (model(images).argmax(1) == labels).float().mean().item()


zeroing_acc = evaluate(net)
print(f"accuracy {zeroing_acc:.3f}")

tmp = tempfile.TemporaryDirectory()
# -- Saving and loading a general checkpoint
EPOCH = 3
PATH = os.path.join(tmp.name, "model.pt")
LOSS = loss.item()
torch.save({
    "epoch": EPOCH,
    "model_state_dict": net.state_dict(),
    "optimizer_state_dict": optimizer.state_dict(),
    "loss": LOSS,
}, PATH)
model = Net()
optimizer2 = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
checkpoint = torch.load(PATH, weights_only=True)
print(sorted(checkpoint), type(checkpoint["loss"]).__name__, checkpoint["epoch"])
model.load_state_dict(checkpoint["model_state_dict"])
optimizer2.load_state_dict(checkpoint["optimizer_state_dict"])
epoch = checkpoint["epoch"]
loss = checkpoint["loss"]
model.eval()
print("restored accuracy equal:", evaluate(model) == zeroing_acc, "training:", model.training)
model.train()

# resume: the same fixed batches from the same state give the same parameters
fixed_batches = [(images[i:i + 32], labels[i:i + 32]) for i in range(0, 128, 32)]


def run_epoch(model, optimizer):
    for xb, yb in fixed_batches:
        optimizer.zero_grad()
        criterion(model(xb), yb).backward()
        optimizer.step()


for _ in range(2):
    run_epoch(net, optimizer)
for _ in range(epoch, epoch + 2):
    run_epoch(model, optimizer2)
same = all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), model.state_dict().values()))
print("resumed run equals the uninterrupted one:", same)

# -- Saving and loading multiple models in one file
netA, netB = Net(), Net()
optimizerA = optim.SGD(netA.parameters(), lr=0.001, momentum=0.9)
optimizerB = optim.SGD(netB.parameters(), lr=0.001, momentum=0.9)
PATH = os.path.join(tmp.name, "models.tar")
torch.save({
    "modelA_state_dict": netA.state_dict(),
    "modelB_state_dict": netB.state_dict(),
    "optimizerA_state_dict": optimizerA.state_dict(),
    "optimizerB_state_dict": optimizerB.state_dict(),
}, PATH)
modelA, modelB = Net(), Net()
optimModelA = optim.SGD(modelA.parameters(), lr=0.001, momentum=0.9)
optimModelB = optim.SGD(modelB.parameters(), lr=0.001, momentum=0.9)
checkpoint = torch.load(PATH, weights_only=True)
modelA.load_state_dict(checkpoint["modelA_state_dict"])
modelB.load_state_dict(checkpoint["modelB_state_dict"])
optimModelA.load_state_dict(checkpoint["optimizerA_state_dict"])
optimModelB.load_state_dict(checkpoint["optimizerB_state_dict"])
modelA.eval()
modelB.train()
print("A equal:", torch.equal(modelA.fc3.weight, netA.fc3.weight), "B equal:",
      torch.equal(modelB.conv1.bias, netB.conv1.bias), "A, B differ:", not torch.equal(modelA.fc1.weight, modelB.fc1.weight))


# -- Warmstarting model using parameters from a different model
class NetB(nn.Module):
    """Net with another head: fc3 gone, a wider fc4 instead."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc4 = nn.Linear(84, 20)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.fc4(F.relu(self.fc2(F.relu(self.fc1(x)))))


PATH = os.path.join(tmp.name, "netA.pth")
torch.save(net.state_dict(), PATH)
netB = NetB()
result = netB.load_state_dict(torch.load(PATH, weights_only=True), strict=False)
print(result)
print("missing:", result.missing_keys, "unexpected:", result.unexpected_keys)
print("warm-started conv1:", torch.equal(netB.conv1.weight, net.conv1.weight))
try:
    NetB().load_state_dict(torch.load(PATH, weights_only=True))
except RuntimeError as e:
    print(type(e).__name__ + ":", e)
wide = net.state_dict()
wide["fc3.weight"] = torch.zeros(20, 84)
try:
    Net().load_state_dict(wide)
except RuntimeError as e:
    print(type(e).__name__ + ":", e)
renamed = {k.replace("fc3", "fc4"): v for k, v in net.state_dict().items() if not k.startswith("fc3")}
print(NetB().load_state_dict(renamed, strict=False))

# -- Tips for loading an nn.Module from a checkpoint: mmap, meta device, assign=True
PATH = os.path.join(tmp.name, "checkpoint.pth")
torch.save(net.state_dict(), PATH)
state_dict = torch.load(PATH, map_location="cpu", mmap=True, weights_only=True)
with torch.device("meta"):
    meta_m = Net()
print("meta:", meta_m.fc1.weight.device, meta_m.fc1.weight.shape, meta_m.fc1.weight.is_meta)
meta_m.load_state_dict(state_dict, assign=True)
print("after assign:", meta_m.fc1.weight.device, type(meta_m.fc1.weight).__name__,
      meta_m.fc1.weight.requires_grad, torch.equal(meta_m.fc1.weight, net.fc1.weight))
print("outputs equal:", torch.equal(meta_m(images[:8]), net(images[:8])))

# -- gradient accumulation: accum_steps micro-batches of loss / accum_steps give the batch's gradient
accum_steps = 4
model = Net()
xb, yb = images[:64], labels[:64]
model.zero_grad()
criterion(model(xb), yb).backward()
full_grad = [p.grad.clone() for p in model.parameters()]
model.zero_grad()
for xm, ym in zip(xb.chunk(accum_steps), yb.chunk(accum_steps)):
    loss = criterion(model(xm), ym) / accum_steps
    loss.backward()
accum_diff = max((p.grad - g).abs().max().item() for p, g in zip(model.parameters(), full_grad))
print(f"accumulated gradient equals the batch's: {accum_diff < 1e-5}")


# -- Reproducibility
class NoisyImages(Dataset):
    """An augmenting dataset: its noise comes from NumPy's and Python's global RNGs, seeded per worker."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        noise = np.random.randn(*self.images[i].shape).astype("float32") * 0.1
        flip = random.random() < 0.5
        image = self.images[i] + torch.from_numpy(noise)
        return (image.flip(-1) if flip else image), self.labels[i]


def seed_worker(worker_id):
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def reproducible_run():
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    g = torch.Generator()
    g.manual_seed(seed)
    loader = DataLoader(NoisyImages(images[:128], labels[:128]), batch_size=32, shuffle=True,
                        num_workers=2, worker_init_fn=seed_worker, generator=g)
    model = Net()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    losses, first = [], None
    for xb, yb in loader:
        first = xb[0, 0, 0, :3].clone() if first is None else first
        opt.zero_grad()
        loss = criterion(model(xb), yb)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, first


torch.use_deterministic_algorithms(True)
torch.backends.cudnn.benchmark = False
torch.backends.cudnn.deterministic = True
print("deterministic:", torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
      torch.backends.cudnn.benchmark)
if __name__ == "__main__":
    losses1, first1 = reproducible_run()
    losses2, first2 = reproducible_run()
    print("runs identical:", losses1 == losses2, torch.equal(first1, first2), len(losses1), "batches")
    torch.use_deterministic_algorithms(False)
    tmp.cleanup()
    print(f"FINAL zeroing_acc={zeroing_acc:.4f} accum_diff={accum_diff:.6f} repro_loss={sum(losses1) / len(losses1):.4f}")
