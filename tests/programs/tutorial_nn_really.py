"""The "What is torch.nn really?" tutorial (pytorch.org, Jeremy Howard), step by step as a new user
runs it: logistic regression by hand (``torch.randn(784, 10) / math.sqrt(784)``,
``requires_grad_()``, a hand-written ``log_softmax`` and ``nll`` indexed by ``range``, the manual
SGD update under ``torch.no_grad()``), then each refactoring: ``F.cross_entropy``, ``nn.Module``
with ``nn.Parameter``, ``nn.Linear``, ``optim``, ``TensorDataset``, ``DataLoader``, validation,
``loss_batch``/``fit``/``get_data`` with ``zip(*[...])`` and ``np.sum(np.multiply(losses, nums))``,
the CNN with ``xb.view(-1, 1, 28, 28)``, ``nn.Sequential`` with a ``Lambda`` layer,
``WrappedDataLoader`` + ``nn.AdaptiveAvgPool2d(1)`` and the ``torch.device`` step. Synthetic
28x28 "digits" (a blurred template per class plus noise, made with NumPy) stand in for MNIST.
"""
# ruff: noqa: B007  (the tutorial's own loops: `for epoch in range(epochs)` with epoch unused)

import math
import os

import numpy as np
import torch

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# ten class templates, each a few bright strokes on a 28x28 canvas; samples add noise and a shift
rng = np.random.RandomState(7)
templates = np.zeros((10, 28, 28), "float32")
for k in range(10):
    for _ in range(3):
        r, c = rng.randint(4, 24, 2)
        if rng.rand() < 0.5:
            templates[k, r - 2:r + 2, max(c - 8, 0):c + 8] = 1.0
        else:
            templates[k, max(r - 8, 0):r + 8, c - 2:c + 2] = 1.0


def make_digits(count):
    labels = rng.randint(0, 10, count)
    images = templates[labels] + 0.3 * rng.rand(count, 28, 28).astype("float32")
    shifts = rng.randint(-1, 2, (count, 2))
    for i in range(count):
        images[i] = np.roll(images[i], tuple(shifts[i]), axis=(0, 1))
    return (images.reshape(count, 784) / images.max()).astype("float32"), labels.astype("int64")


x_train, y_train = make_digits(2048)
x_valid, y_valid = make_digits(512)

x_train, y_train, x_valid, y_valid = map(torch.tensor, (x_train, y_train, x_valid, y_valid))
n, c = x_train.shape
print(x_train.shape)
print(y_train.min(), y_train.max())

# -- neural net from scratch (no torch.nn)
weights = torch.randn(784, 10) / math.sqrt(784)
weights.requires_grad_()
bias = torch.zeros(10, requires_grad=True)


def log_softmax(x):
    return x - x.exp().sum(-1).log().unsqueeze(-1)


def model(xb):
    return log_softmax(xb @ weights + bias)


bs = 64  # batch size
xb = x_train[0:bs]  # a mini-batch from x
preds = model(xb)  # predictions
print(preds[0], preds.shape)


def nll(input, target):
    return -input[range(target.shape[0]), target].mean()


loss_func = nll
yb = y_train[0:bs]
print(loss_func(preds, yb))


def accuracy(out, yb):
    preds = torch.argmax(out, dim=1)
    return (preds == yb).float().mean()


print(accuracy(preds, yb))

lr = 0.5  # learning rate
epochs = 2  # how many epochs to train for

for epoch in range(epochs):
    for i in range((n - 1) // bs + 1):
        start_i = i * bs
        end_i = start_i + bs
        xb = x_train[start_i:end_i]
        yb = y_train[start_i:end_i]
        pred = model(xb)
        loss = loss_func(pred, yb)

        loss.backward()
        with torch.no_grad():
            weights -= weights.grad * lr
            bias -= bias.grad * lr
            weights.grad.zero_()
            bias.grad.zero_()

scratch_loss, scratch_acc = loss_func(model(xb), yb), accuracy(model(xb), yb)
print(scratch_loss, scratch_acc)

# -- using torch.nn.functional: the same numbers from F.cross_entropy on the raw scores
import torch.nn.functional as F  # noqa: E402  (the tutorial imports each piece where it first uses it)

loss_func = F.cross_entropy


def model(xb):
    return xb @ weights + bias


functional_loss = loss_func(model(xb), yb)
print("functional", functional_loss.item(), accuracy(model(xb), yb).item())
print("same loss as by hand", abs(functional_loss.item() - scratch_loss.item()) < 1e-4)

# -- refactor using nn.Module
from torch import nn  # noqa: E402


class Mnist_Logistic(nn.Module):
    def __init__(self):
        super().__init__()
        self.weights = nn.Parameter(torch.randn(784, 10) / math.sqrt(784))
        self.bias = nn.Parameter(torch.zeros(10))

    def forward(self, xb):
        return xb @ self.weights + self.bias


model = Mnist_Logistic()
print("module before", loss_func(model(xb), yb).item())


def fit():
    for epoch in range(epochs):
        for i in range((n - 1) // bs + 1):
            start_i = i * bs
            end_i = start_i + bs
            xb = x_train[start_i:end_i]
            yb = y_train[start_i:end_i]
            pred = model(xb)
            loss = loss_func(pred, yb)

            loss.backward()
            with torch.no_grad():
                for p in model.parameters():
                    p -= p.grad * lr
                model.zero_grad()


fit()
print("module after", loss_func(model(xb), yb).item())


# -- refactor using nn.Linear
class Mnist_Logistic(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(784, 10)

    def forward(self, xb):
        return self.lin(xb)


model = Mnist_Logistic()
print("linear before", loss_func(model(xb), yb).item())
fit()
print("linear after", loss_func(model(xb), yb).item())

# -- refactor using optim
from torch import optim  # noqa: E402


def get_model():
    model = Mnist_Logistic()
    return model, optim.SGD(model.parameters(), lr=lr)


model, opt = get_model()
print("optim before", loss_func(model(xb), yb).item())

for epoch in range(epochs):
    for i in range((n - 1) // bs + 1):
        start_i = i * bs
        end_i = start_i + bs
        xb = x_train[start_i:end_i]
        yb = y_train[start_i:end_i]
        pred = model(xb)
        loss = loss_func(pred, yb)

        loss.backward()
        opt.step()
        opt.zero_grad()

print("optim after", loss_func(model(xb), yb).item())

# -- refactor using Dataset
from torch.utils.data import TensorDataset  # noqa: E402

train_ds = TensorDataset(x_train, y_train)
model, opt = get_model()

for epoch in range(epochs):
    for i in range((n - 1) // bs + 1):
        xb, yb = train_ds[i * bs: i * bs + bs]
        pred = model(xb)
        loss = loss_func(pred, yb)

        loss.backward()
        opt.step()
        opt.zero_grad()

print("dataset", loss_func(model(xb), yb).item())

# -- refactor using DataLoader
from torch.utils.data import DataLoader  # noqa: E402

train_ds = TensorDataset(x_train, y_train)
train_dl = DataLoader(train_ds, batch_size=bs)
model, opt = get_model()

for epoch in range(epochs):
    for xb, yb in train_dl:
        pred = model(xb)
        loss = loss_func(pred, yb)

        loss.backward()
        opt.step()
        opt.zero_grad()

print("dataloader", loss_func(model(xb), yb).item())

# -- add validation
train_ds = TensorDataset(x_train, y_train)
train_dl = DataLoader(train_ds, batch_size=bs, shuffle=True)

valid_ds = TensorDataset(x_valid, y_valid)
valid_dl = DataLoader(valid_ds, batch_size=bs * 2)

model, opt = get_model()

for epoch in range(epochs):
    model.train()
    for xb, yb in train_dl:
        pred = model(xb)
        loss = loss_func(pred, yb)

        loss.backward()
        opt.step()
        opt.zero_grad()

    model.eval()
    with torch.no_grad():
        valid_loss = sum(loss_func(model(xb), yb) for xb, yb in valid_dl)

    print(epoch, (valid_loss / len(valid_dl)).item())


# -- create fit() and get_data()
def loss_batch(model, loss_func, xb, yb, opt=None):
    loss = loss_func(model(xb), yb)

    if opt is not None:
        loss.backward()
        opt.step()
        opt.zero_grad()

    return loss.item(), len(xb)


def fit(epochs, model, loss_func, opt, train_dl, valid_dl):
    for epoch in range(epochs):
        model.train()
        for xb, yb in train_dl:
            loss_batch(model, loss_func, xb, yb, opt)

        model.eval()
        with torch.no_grad():
            losses, nums = zip(
                *[loss_batch(model, loss_func, xb, yb) for xb, yb in valid_dl]
            )
        val_loss = np.sum(np.multiply(losses, nums)) / np.sum(nums)

        print(epoch, val_loss)
    return val_loss


def get_data(train_ds, valid_ds, bs):
    return (
        DataLoader(train_ds, batch_size=bs, shuffle=True),
        DataLoader(valid_ds, batch_size=bs * 2),
    )


train_dl, valid_dl = get_data(train_ds, valid_ds, bs)
model, opt = get_model()
fit(epochs, model, loss_func, opt, train_dl, valid_dl)


# -- switch to CNN
class Mnist_CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(16, 16, kernel_size=3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(16, 10, kernel_size=3, stride=2, padding=1)

    def forward(self, xb):
        xb = xb.view(-1, 1, 28, 28)
        xb = F.relu(self.conv1(xb))
        xb = F.relu(self.conv2(xb))
        xb = F.relu(self.conv3(xb))
        xb = F.avg_pool2d(xb, 4)
        return xb.view(-1, xb.size(1))


lr = 0.1
model = Mnist_CNN()
opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
fit(epochs, model, loss_func, opt, train_dl, valid_dl)


# -- nn.Sequential with a custom Lambda layer
class Lambda(nn.Module):
    def __init__(self, func):
        super().__init__()
        self.func = func

    def forward(self, x):
        return self.func(x)


def preprocess(x):
    return x.view(-1, 1, 28, 28)


model = nn.Sequential(
    Lambda(preprocess),
    nn.Conv2d(1, 16, kernel_size=3, stride=2, padding=1),
    nn.ReLU(),
    nn.Conv2d(16, 16, kernel_size=3, stride=2, padding=1),
    nn.ReLU(),
    nn.Conv2d(16, 10, kernel_size=3, stride=2, padding=1),
    nn.ReLU(),
    nn.AvgPool2d(4),
    Lambda(lambda x: x.view(x.size(0), -1)),
)
opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
fit(epochs, model, loss_func, opt, train_dl, valid_dl)


# -- wrapping the DataLoader, and AdaptiveAvgPool2d for any input size
def preprocess(x, y):
    return x.view(-1, 1, 28, 28), y


class WrappedDataLoader:
    def __init__(self, dl, func):
        self.dl = dl
        self.func = func

    def __len__(self):
        return len(self.dl)

    def __iter__(self):
        batches = iter(self.dl)
        for b in batches:
            yield (self.func(*b))


train_dl, valid_dl = get_data(train_ds, valid_ds, bs)
train_dl = WrappedDataLoader(train_dl, preprocess)
valid_dl = WrappedDataLoader(valid_dl, preprocess)

model = nn.Sequential(
    nn.Conv2d(1, 16, kernel_size=3, stride=2, padding=1),
    nn.ReLU(),
    nn.Conv2d(16, 16, kernel_size=3, stride=2, padding=1),
    nn.ReLU(),
    nn.Conv2d(16, 10, kernel_size=3, stride=2, padding=1),
    nn.ReLU(),
    nn.AdaptiveAvgPool2d(1),
    Lambda(lambda x: x.view(x.size(0), -1)),
)
opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
fit(epochs, model, loss_func, opt, train_dl, valid_dl)

# -- using your GPU (the CPU here): the same model moved to a torch.device, trained on
dev = torch.device(
    "cuda") if torch.cuda.is_available() else torch.device("cpu")


def preprocess(x, y):
    return x.view(-1, 1, 28, 28).to(dev), y.to(dev)


train_dl, valid_dl = get_data(train_ds, valid_ds, bs)
train_dl = WrappedDataLoader(train_dl, preprocess)
valid_dl = WrappedDataLoader(valid_dl, preprocess)

model.to(dev)
opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
val_loss = fit(epochs, model, loss_func, opt, train_dl, valid_dl)

model.eval()
with torch.no_grad():
    correct = sum((model(xb).argmax(1) == yb).sum().item() for xb, yb in valid_dl)
print(f"FINAL scratch_loss={scratch_loss.item():.4f} val_loss={val_loss:.4f} "
      f"val_acc={correct / len(valid_ds):.4f}")
