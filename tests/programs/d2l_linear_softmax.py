"""Dive into Deep Learning (d2l.ai, PyTorch edition), chapter 3 as a student types it without the
``d2l`` package: linear regression from scratch (``synthetic_data`` with ``torch.normal``,
``data_iter`` with ``random.shuffle`` and ``torch.tensor(indices[i: min(i + batch_size,
num_examples)])``, ``linreg``, ``squared_loss``, ``sgd`` with ``param -= lr * param.grad /
batch_size``), the concise version (``load_array`` over ``data.TensorDataset``,
``nn.Sequential(nn.Linear(2, 1))``, ``net[0].weight.data.normal_(0, 0.01)``,
``net[0].bias.data.fill_(0)``, ``nn.MSELoss()``, ``f'{l:f}'`` of a 0-d tensor), softmax regression
from scratch (``softmax`` with ``X_exp.sum(1, keepdim=True)``, ``cross_entropy`` by
``y_hat[range(len(y_hat)), y]``, ``accuracy`` with ``cmp = y_hat.type(y.dtype) == y``,
``Accumulator``, ``evaluate_accuracy``, ``train_epoch_ch3``/``train_ch3``, ``predict_ch3``) and the
concise softmax (``nn.Flatten()``, ``net.apply(init_weights)`` with ``nn.init.normal_(m.weight,
std=0.01)``, ``nn.CrossEntropyLoss(reduction='none')``). The helpers are written as the book
defines them. Synthetic 28x28 "clothes" (a NumPy template per class plus noise) stand in for
Fashion-MNIST; the book prints the estimation errors as tensors, here their absolute values, so
a printed line does not change its padding with the sign of a random number.
"""
# ruff: noqa: E741, E721, B007  (the book's own code: `l = loss(net(X), y)`, `type(m) == nn.Linear`,
# `for X, y in test_iter: break`)

import os
import random

import numpy as np
import torch
from torch import nn
from torch.utils import data

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
random.seed(seed)

# ---------------------------------------------------------------- 3.2 linear regression from scratch


def synthetic_data(w, b, num_examples):
    """Generate y = Xw + b + noise."""
    X = torch.normal(0, 1, (num_examples, len(w)))
    y = torch.matmul(X, w) + b
    y += torch.normal(0, 0.01, y.shape)
    return X, y.reshape((-1, 1))


true_w = torch.tensor([2, -3.4])
true_b = 4.2
features, labels = synthetic_data(true_w, true_b, 1000)
print('features:', features[0].shape, '\nlabel:', labels[0].shape, labels.dtype)


def data_iter(batch_size, features, labels):
    num_examples = len(features)
    indices = list(range(num_examples))
    # the examples are read at random, in no particular order
    random.shuffle(indices)
    for i in range(0, num_examples, batch_size):
        batch_indices = torch.tensor(indices[i: min(i + batch_size, num_examples)])
        yield features[batch_indices], labels[batch_indices]


batch_size = 10
for X, y in data_iter(batch_size, features, labels):
    print(X.shape, '\n', y.shape)
    break

w = torch.normal(0, 0.01, size=(2, 1), requires_grad=True)
b = torch.zeros(1, requires_grad=True)


def linreg(X, w, b):
    """The linear regression model."""
    return torch.matmul(X, w) + b


def squared_loss(y_hat, y):
    """Squared loss."""
    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2


def sgd(params, lr, batch_size):
    """Minibatch stochastic gradient descent."""
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad.zero_()


lr = 0.03
num_epochs = 3
net = linreg
loss = squared_loss

for epoch in range(num_epochs):
    for X, y in data_iter(batch_size, features, labels):
        l = loss(net(X, w, b), y)  # minibatch loss in X and y
        # l has shape (batch_size, 1), not a scalar: sum it, then take the gradient
        l.sum().backward()
        sgd([w, b], lr, batch_size)  # update the parameters by their gradient
    with torch.no_grad():
        train_l = loss(net(features, w, b), labels)
        print(f'epoch {epoch + 1}, loss {float(train_l.mean()):f}')

scratch_w_error = (true_w - w.reshape(true_w.shape)).abs()
print(f'error in estimating w: {scratch_w_error}')
print(f'error in estimating b: {(true_b - b).abs()}')
scratch_loss = float(train_l.mean())

# ---------------------------------------------------------------- 3.3 concise linear regression


def load_array(data_arrays, batch_size, is_train=True):
    """Construct a PyTorch data iterator."""
    dataset = data.TensorDataset(*data_arrays)
    return data.DataLoader(dataset, batch_size, shuffle=is_train)


batch_size = 10
data_iter = load_array((features, labels), batch_size)
print([t.shape for t in next(iter(data_iter))])

net = nn.Sequential(nn.Linear(2, 1))
net[0].weight.data.normal_(0, 0.01)
net[0].bias.data.fill_(0)
loss = nn.MSELoss()
trainer = torch.optim.SGD(net.parameters(), lr=0.03)

num_epochs = 3
for epoch in range(num_epochs):
    for X, y in data_iter:
        l = loss(net(X), y)
        trainer.zero_grad()
        l.backward()
        trainer.step()
    l = loss(net(features), labels)
    print(f'epoch {epoch + 1}, loss {l:f}')

w = net[0].weight.data
print('error in estimating w:', (true_w - w.reshape(true_w.shape)).abs())
b = net[0].bias.data
print('error in estimating b:', (true_b - b).abs())
concise_w_error = float((true_w - w.reshape(true_w.shape)).abs().max())
concise_loss = float(l)

# ---------------------------------------------------------------- 3.5 the image data set
# 28x28 grey "clothes": per class a few bright bars on a dark canvas, then noise and a shift

text_labels = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat',
               'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot']
rng = np.random.RandomState(11)
templates = np.zeros((10, 28, 28), "float32")
for k in range(10):
    for _ in range(3):
        r, c = rng.randint(4, 24, 2)
        if rng.rand() < 0.5:
            templates[k, r - 2:r + 2, max(c - 8, 0):c + 8] = 1.0
        else:
            templates[k, max(r - 8, 0):r + 8, c - 2:c + 2] = 1.0


def make_clothes(count):
    classes = rng.randint(0, 10, count)
    images = 0.7 * templates[classes] + 0.65 * rng.rand(count, 28, 28).astype("float32")
    shifts = rng.randint(-1, 2, (count, 2))
    for i in range(count):
        images[i] = np.roll(images[i], tuple(shifts[i]), axis=(0, 1))
    return torch.tensor(images / images.max()).unsqueeze(1), torch.tensor(classes)


def get_fashion_mnist_labels(labels):
    """Return the text labels of the data set."""
    return [text_labels[int(i)] for i in labels]


def load_data_fashion_mnist(batch_size):
    """Load the (stand-in) data set into memory, as the book's function returns it."""
    mnist_train = data.TensorDataset(*make_clothes(1536))
    mnist_test = data.TensorDataset(*make_clothes(512))
    return (data.DataLoader(mnist_train, batch_size, shuffle=True),
            data.DataLoader(mnist_test, batch_size, shuffle=False))


batch_size = 256
train_iter, test_iter = load_data_fashion_mnist(batch_size)
for X, y in train_iter:
    print(X.shape, X.dtype, y.shape, y.dtype)
    break

# ---------------------------------------------------------------- 3.6 softmax regression from scratch
num_inputs = 784
num_outputs = 10

W = torch.normal(0, 0.01, size=(num_inputs, num_outputs), requires_grad=True)
b = torch.zeros(num_outputs, requires_grad=True)

X = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
print(X.sum(0, keepdim=True), X.sum(1, keepdim=True))


def softmax(X):
    X_exp = torch.exp(X)
    partition = X_exp.sum(1, keepdim=True)
    return X_exp / partition  # broadcasting applies here


X = torch.normal(0, 1, (2, 5))
X_prob = softmax(X)
print(X_prob.shape, X_prob.sum(1))


def net(X):
    return softmax(torch.matmul(X.reshape((-1, W.shape[0])), W) + b)


y = torch.tensor([0, 2])
y_hat = torch.tensor([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
print(y_hat[[0, 1], y])


def cross_entropy(y_hat, y):
    return - torch.log(y_hat[range(len(y_hat)), y])


print(cross_entropy(y_hat, y))


def accuracy(y_hat, y):
    """The number of correct predictions."""
    if len(y_hat.shape) > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(axis=1)
    cmp = y_hat.type(y.dtype) == y
    return float(cmp.type(y.dtype).sum())


print(accuracy(y_hat, y) / len(y))


class Accumulator:
    """Sums over n variables."""

    def __init__(self, n):
        self.data = [0.0] * n

    def add(self, *args):
        self.data = [a + float(b) for a, b in zip(self.data, args)]

    def reset(self):
        self.data = [0.0] * len(self.data)

    def __getitem__(self, idx):
        return self.data[idx]


def evaluate_accuracy(net, data_iter):
    """The accuracy of a model on a data set."""
    if isinstance(net, torch.nn.Module):
        net.eval()  # evaluation mode
    metric = Accumulator(2)  # correct predictions, predictions
    with torch.no_grad():
        for X, y in data_iter:
            metric.add(accuracy(net(X), y), y.numel())
    return metric[0] / metric[1]


untrained = evaluate_accuracy(net, test_iter)
print(f'untrained accuracy {untrained:.3f}')


def train_epoch_ch3(net, train_iter, loss, updater):
    """Train a model for one epoch (chapter 3)."""
    if isinstance(net, torch.nn.Module):
        net.train()
    # training loss sum, training accuracy sum, sample count
    metric = Accumulator(3)
    for X, y in train_iter:
        y_hat = net(X)
        l = loss(y_hat, y)
        if isinstance(updater, torch.optim.Optimizer):
            # PyTorch's built-in optimizer and loss
            updater.zero_grad()
            l.mean().backward()
            updater.step()
        else:
            # the hand-written optimizer and loss
            l.sum().backward()
            updater(X.shape[0])
        metric.add(float(l.sum()), accuracy(y_hat, y), y.numel())
    return metric[0] / metric[2], metric[1] / metric[2]


def train_ch3(net, train_iter, test_iter, loss, num_epochs, updater):
    """Train a model (chapter 3); the book's Animator is replaced by a printed line per epoch."""
    for epoch in range(num_epochs):
        train_metrics = train_epoch_ch3(net, train_iter, loss, updater)
        test_acc = evaluate_accuracy(net, test_iter)
        print(f'epoch {epoch + 1}, train loss {train_metrics[0]:.3f}, '
              f'train acc {train_metrics[1]:.3f}, test acc {test_acc:.3f}')
    train_loss, train_acc = train_metrics
    assert train_loss < 0.5, train_loss
    assert train_acc <= 1 and train_acc > 0.7, train_acc
    assert test_acc <= 1 and test_acc > 0.7, test_acc
    return train_loss, test_acc


lr = 0.1


def updater(batch_size):
    return sgd([W, b], lr, batch_size)


num_epochs = 4
softmax_loss, softmax_acc = train_ch3(net, train_iter, test_iter, cross_entropy, num_epochs, updater)


def predict_ch3(net, test_iter, n=6):
    """Predict labels (the book shows the images with their titles)."""
    for X, y in test_iter:
        break
    trues = get_fashion_mnist_labels(y)
    preds = get_fashion_mnist_labels(net(X).argmax(axis=1))
    titles = [true == pred for true, pred in zip(trues, preds)]
    print('first predictions right:', sum(titles[0:n]), 'of', n)


predict_ch3(net, test_iter)

# ---------------------------------------------------------------- 3.7 concise softmax regression
# PyTorch does not reshape the inputs implicitly: a flatten layer goes before the linear layer
net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))


def init_weights(m):
    if type(m) == nn.Linear:
        nn.init.normal_(m.weight, std=0.01)


net.apply(init_weights)
loss = nn.CrossEntropyLoss(reduction='none')
trainer = torch.optim.SGD(net.parameters(), lr=0.1)
concise_softmax_loss, concise_softmax_acc = train_ch3(net, train_iter, test_iter, loss, num_epochs, trainer)

print(f"FINAL scratch_loss={scratch_loss:.6f} concise_loss={concise_loss:.6f} "
      f"w_error={concise_w_error:.4f} softmax_loss={softmax_loss:.4f} softmax_acc={softmax_acc:.4f} "
      f"concise_softmax_loss={concise_softmax_loss:.4f} concise_softmax_acc={concise_softmax_acc:.4f}")
