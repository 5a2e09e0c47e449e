"""Dive into Deep Learning (d2l.ai, PyTorch edition), chapter 4 as a student types it without the
``d2l`` package: activation functions and their gradients (``y.backward(torch.ones_like(x),
retain_graph=True)``, ``x.grad.data.zero_()``), the MLP from scratch (``nn.Parameter(torch.randn(...)
* 0.01)``, ``relu`` by ``torch.max(X, a)`` with ``a = torch.zeros_like(X)``, ``X@W1 + b1``, a plain
function trained by ``torch.optim.SGD(params)``), the concise MLP, polynomial regression under- and
overfitting (``np.random.normal``, ``np.power``, ``math.gamma``, ``torch.tensor(x,
dtype=torch.float32)`` over NumPy arrays, ``nn.Linear(input_shape, 1, bias=False)``,
``evaluate_loss``), weight decay from scratch (``l2_penalty``, a ``lambda`` net, ``torch.norm(w).item()``)
and concise (``param.data.normal_()``, ``torch.optim.SGD([{"params": net[0].weight, 'weight_decay':
wd}, {"params": net[0].bias}], lr=lr)``), dropout from scratch (``dropout_layer`` with
``(torch.rand(X.shape) > dropout).float()``, a ``Net`` setting ``self.training`` itself) and
concise (``nn.Dropout``), and numerical stability (the vanishing ``torch.sigmoid`` gradient, a
product of 100 random matrices by ``torch.mm``). The helpers (``Accumulator``, ``accuracy``,
``evaluate_accuracy``, ``train_epoch_ch3``, ``train_ch3``, ``synthetic_data``, ``linreg``,
``squared_loss``, ``sgd``, ``load_array``) are written as the book defines them, the plots replaced
by printed lines. Synthetic 28x28 "clothes" stand in for Fashion-MNIST. Where the book prints a
tensor of random signs (which changes a line's padding with the seed) this prints a list or a norm.
"""
# ruff: noqa: E741, E712, E721, UP008, B007  (the book's own code: `l = loss(...)`, `if self.training == True`,
# `type(m) == nn.Linear`, `for i in range(100)` with i unused,
# `super(Net, self).__init__()`)

import math
import os

import numpy as np
import torch
from torch import nn
from torch.utils import data

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

# ---------------------------------------------------------------- the book's helpers (chapter 3)


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


def accuracy(y_hat, y):
    """The number of correct predictions."""
    if len(y_hat.shape) > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(axis=1)
    cmp = y_hat.type(y.dtype) == y
    return float(cmp.type(y.dtype).sum())


def evaluate_accuracy(net, data_iter):
    """The accuracy of a model on a data set."""
    if isinstance(net, torch.nn.Module):
        net.eval()
    metric = Accumulator(2)
    with torch.no_grad():
        for X, y in data_iter:
            metric.add(accuracy(net(X), y), y.numel())
    return metric[0] / metric[1]


def train_epoch_ch3(net, train_iter, loss, updater):
    """Train a model for one epoch (chapter 3)."""
    if isinstance(net, torch.nn.Module):
        net.train()
    metric = Accumulator(3)
    for X, y in train_iter:
        y_hat = net(X)
        l = loss(y_hat, y)
        if isinstance(updater, torch.optim.Optimizer):
            updater.zero_grad()
            l.mean().backward()
            updater.step()
        else:
            l.sum().backward()
            updater(X.shape[0])
        metric.add(float(l.sum()), accuracy(y_hat, y), y.numel())
    return metric[0] / metric[2], metric[1] / metric[2]


def train_ch3(net, train_iter, test_iter, loss, num_epochs, updater):
    """Train a model (chapter 3); a printed line per epoch instead of the book's Animator."""
    for epoch in range(num_epochs):
        train_metrics = train_epoch_ch3(net, train_iter, loss, updater)
        test_acc = evaluate_accuracy(net, test_iter)
        print(f'epoch {epoch + 1}, train loss {train_metrics[0]:.3f}, '
              f'train acc {train_metrics[1]:.3f}, test acc {test_acc:.3f}')
    return train_metrics[0], test_acc


def synthetic_data(w, b, num_examples):
    """Generate y = Xw + b + noise."""
    X = torch.normal(0, 1, (num_examples, len(w)))
    y = torch.matmul(X, w) + b
    y += torch.normal(0, 0.01, y.shape)
    return X, y.reshape((-1, 1))


def linreg(X, w, b):
    return torch.matmul(X, w) + b


def squared_loss(y_hat, y):
    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2


def sgd(params, lr, batch_size):
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad.zero_()


def load_array(data_arrays, batch_size, is_train=True):
    dataset = data.TensorDataset(*data_arrays)
    return data.DataLoader(dataset, batch_size, shuffle=is_train)


# synthetic "clothes": per class a few bright bars, then noise and a shift of a pixel
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
    images = 0.8 * templates[classes] + 0.4 * rng.rand(count, 28, 28).astype("float32")
    shifts = rng.randint(-1, 2, (count, 2))
    for i in range(count):
        images[i] = np.roll(images[i], tuple(shifts[i]), axis=(0, 1))
    return torch.tensor(images / images.max()).unsqueeze(1), torch.tensor(classes)


def load_data_fashion_mnist(batch_size):
    mnist_train = data.TensorDataset(*make_clothes(2048))
    mnist_test = data.TensorDataset(*make_clothes(512))
    return (data.DataLoader(mnist_train, batch_size, shuffle=True),
            data.DataLoader(mnist_test, batch_size, shuffle=False))


batch_size = 256
train_iter, test_iter = load_data_fashion_mnist(batch_size)

# ---------------------------------------------------------------- 4.1 activation functions
x = torch.arange(-8.0, 8.0, 0.1, requires_grad=True)
y = torch.relu(x)
y.backward(torch.ones_like(x), retain_graph=True)
print('relu grad sum', x.grad.sum().item())
y = torch.sigmoid(x)
# clear the gradient of the previous backward first
x.grad.data.zero_()
y.backward(torch.ones_like(x), retain_graph=True)
print('sigmoid grad max', f'{x.grad.max().item():.4f}')
y = torch.tanh(x)
x.grad.data.zero_()
y.backward(torch.ones_like(x), retain_graph=True)
print('tanh grad max', f'{x.grad.max().item():.4f}')

# ---------------------------------------------------------------- 4.2 MLP from scratch
num_inputs, num_outputs, num_hiddens = 784, 10, 256

W1 = nn.Parameter(torch.randn(num_inputs, num_hiddens, requires_grad=True) * 0.01)
b1 = nn.Parameter(torch.zeros(num_hiddens, requires_grad=True))
W2 = nn.Parameter(torch.randn(num_hiddens, num_outputs, requires_grad=True) * 0.01)
b2 = nn.Parameter(torch.zeros(num_outputs, requires_grad=True))

params = [W1, b1, W2, b2]


def relu(X):
    a = torch.zeros_like(X)
    return torch.max(X, a)


def net(X):
    X = X.reshape((-1, num_inputs))
    H = relu(X@W1 + b1)  # "@" is matrix multiplication
    return (H@W2 + b2)


loss = nn.CrossEntropyLoss(reduction='none')
num_epochs, lr = 4, 0.1
updater = torch.optim.SGD(params, lr=lr)
mlp_loss, mlp_acc = train_ch3(net, train_iter, test_iter, loss, num_epochs, updater)

# ---------------------------------------------------------------- 4.3 concise MLP
net = nn.Sequential(nn.Flatten(),
                    nn.Linear(784, 256),
                    nn.ReLU(),
                    nn.Linear(256, 10))


def init_weights(m):
    if type(m) == nn.Linear:
        nn.init.normal_(m.weight, std=0.01)


net.apply(init_weights)
batch_size, lr, num_epochs = 256, 0.1, 4
loss = nn.CrossEntropyLoss(reduction='none')
trainer = torch.optim.SGD(net.parameters(), lr=lr)
concise_mlp_loss, concise_mlp_acc = train_ch3(net, train_iter, test_iter, loss, num_epochs, trainer)

# ---------------------------------------------------------------- 4.4 model selection, under- and overfitting
max_degree = 20  # the largest degree of the polynomial
n_train, n_test = 100, 100  # training and test set sizes
true_w = np.zeros(max_degree)  # room for the coefficients
true_w[0:4] = np.array([5, 1.2, -3.4, 5.6])

features = np.random.normal(size=(n_train + n_test, 1))
np.random.shuffle(features)
poly_features = np.power(features, np.arange(max_degree).reshape(1, -1))
for i in range(max_degree):
    poly_features[:, i] /= math.gamma(i + 1)  # gamma(n)=(n-1)!
# labels has shape (n_train+n_test,)
labels = np.dot(poly_features, true_w)
labels += np.random.normal(scale=0.1, size=labels.shape)

# NumPy ndarray to tensor
true_w, features, poly_features, labels = [torch.tensor(x, dtype=torch.float32) for x in [
    true_w, features, poly_features, labels]]
print(features[:2].shape, poly_features[:2, :].shape, labels[:2].dtype)


def evaluate_loss(net, data_iter, loss):
    """The loss of a model on a data set."""
    metric = Accumulator(2)  # sum of losses, number of losses
    for X, y in data_iter:
        out = net(X)
        y = y.reshape(out.shape)
        l = loss(out, y)
        metric.add(l.sum(), l.numel())
    return metric[0] / metric[1]


def train(train_features, test_features, train_labels, test_labels, num_epochs=400):
    loss = nn.MSELoss(reduction='none')
    input_shape = train_features.shape[-1]
    # no bias: the polynomial's features already hold it
    net = nn.Sequential(nn.Linear(input_shape, 1, bias=False))
    batch_size = min(10, train_labels.shape[0])
    train_iter = load_array((train_features, train_labels.reshape(-1, 1)), batch_size)
    test_iter = load_array((test_features, test_labels.reshape(-1, 1)), batch_size, is_train=False)
    trainer = torch.optim.SGD(net.parameters(), lr=0.01)
    for epoch in range(num_epochs):
        train_epoch_ch3(net, train_iter, loss, trainer)
        if epoch == 0 or (epoch + 1) % 50 == 0:
            train_l, test_l = evaluate_loss(net, train_iter, loss), evaluate_loss(net, test_iter, loss)
            print(f'epoch {epoch + 1}, train loss {train_l:.4f}, test loss {test_l:.4f}')
    print('weight:', [round(v, 2) for v in net[0].weight.data.numpy()[0, :4].tolist()])
    return train_l, test_l, net[0].weight.data


# third-order polynomial (normal): the first four dimensions
_, normal_test, normal_w = train(poly_features[:n_train, :4], poly_features[n_train:, :4],
                                 labels[:n_train], labels[n_train:], num_epochs=200)
# linear (underfitting): the first two dimensions
_, under_test, _ = train(poly_features[:n_train, :2], poly_features[n_train:, :2],
                         labels[:n_train], labels[n_train:], num_epochs=100)
# high-order polynomial (overfitting): all dimensions
_, over_test, _ = train(poly_features[:n_train, :], poly_features[n_train:, :],
                        labels[:n_train], labels[n_train:], num_epochs=100)
poly_w_error = float((normal_w[0, :4] - true_w[:4]).abs().max())

# ---------------------------------------------------------------- 4.5 weight decay from scratch
n_train, n_test, num_inputs, batch_size = 20, 100, 200, 5
true_w, true_b = torch.ones((num_inputs, 1)) * 0.01, 0.05
train_data = synthetic_data(true_w, true_b, n_train)
train_iter = load_array(train_data, batch_size)
test_data = synthetic_data(true_w, true_b, n_test)
test_iter = load_array(test_data, batch_size, is_train=False)


def init_params():
    w = torch.normal(0, 1, size=(num_inputs, 1), requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    return [w, b]


def l2_penalty(w):
    return torch.sum(w.pow(2)) / 2


def train(lambd):
    w, b = init_params()
    net, loss = lambda X: linreg(X, w, b), squared_loss
    num_epochs, lr = 100, 0.003
    for epoch in range(num_epochs):
        for X, y in train_iter:
            # the L2 penalty term is added; broadcasting makes l2_penalty(w) a vector of batch_size
            l = loss(net(X), y) + lambd * l2_penalty(w)
            l.sum().backward()
            sgd([w, b], lr, batch_size)
        if (epoch + 1) % 25 == 0:
            print(f'epoch {epoch + 1}, train loss {evaluate_loss(net, train_iter, loss):.4f}, '
                  f'test loss {evaluate_loss(net, test_iter, loss):.4f}')
    print('L2 norm of w:', torch.norm(w).item())
    return torch.norm(w).item()


norm_no_decay = train(lambd=0)
norm_decay = train(lambd=3)


def train_concise(wd):
    net = nn.Sequential(nn.Linear(num_inputs, 1))
    for param in net.parameters():
        param.data.normal_()
    loss = nn.MSELoss(reduction='none')
    num_epochs, lr = 100, 0.003
    # the bias has no decay
    trainer = torch.optim.SGD([
        {"params": net[0].weight, 'weight_decay': wd},
        {"params": net[0].bias}], lr=lr)
    for epoch in range(num_epochs):
        for X, y in train_iter:
            trainer.zero_grad()
            l = loss(net(X), y)
            l.mean().backward()
            trainer.step()
        if (epoch + 1) % 25 == 0:
            print(f'epoch {epoch + 1}, train loss {evaluate_loss(net, train_iter, loss):.4f}, '
                  f'test loss {evaluate_loss(net, test_iter, loss):.4f}')
    print('L2 norm of w:', net[0].weight.norm().item())
    return net[0].weight.norm().item()


concise_norm_no_decay = train_concise(0)
concise_norm_decay = train_concise(3)

# ---------------------------------------------------------------- 4.6 dropout from scratch


def dropout_layer(X, dropout):
    assert 0 <= dropout <= 1
    # all elements dropped
    if dropout == 1:
        return torch.zeros_like(X)
    # all elements kept
    if dropout == 0:
        return X
    mask = (torch.rand(X.shape) > dropout).float()
    return mask * X / (1.0 - dropout)


X = torch.arange(16, dtype=torch.float32).reshape((2, 8))
print(X)
print(dropout_layer(X, 0.))
print(dropout_layer(X, 0.5).shape)
print(dropout_layer(X, 1.))

num_inputs, num_outputs, num_hiddens1, num_hiddens2 = 784, 10, 256, 256
dropout1, dropout2 = 0.2, 0.5


class Net(nn.Module):
    def __init__(self, num_inputs, num_outputs, num_hiddens1, num_hiddens2,
                 is_training=True):
        super(Net, self).__init__()
        self.num_inputs = num_inputs
        self.training = is_training
        self.lin1 = nn.Linear(num_inputs, num_hiddens1)
        self.lin2 = nn.Linear(num_hiddens1, num_hiddens2)
        self.lin3 = nn.Linear(num_hiddens2, num_outputs)
        self.relu = nn.ReLU()

    def forward(self, X):
        H1 = self.relu(self.lin1(X.reshape((-1, self.num_inputs))))
        # dropout only while training
        if self.training == True:
            # a dropout layer after the first fully connected layer
            H1 = dropout_layer(H1, dropout1)
        H2 = self.relu(self.lin2(H1))
        if self.training == True:
            # a dropout layer after the second fully connected layer
            H2 = dropout_layer(H2, dropout2)
        out = self.lin3(H2)
        return out


net = Net(num_inputs, num_outputs, num_hiddens1, num_hiddens2)

num_epochs, lr, batch_size = 4, 0.5, 256
loss = nn.CrossEntropyLoss(reduction='none')
train_iter, test_iter = load_data_fashion_mnist(batch_size)
trainer = torch.optim.SGD(net.parameters(), lr=lr)
dropout_loss, dropout_acc = train_ch3(net, train_iter, test_iter, loss, num_epochs, trainer)

net = nn.Sequential(nn.Flatten(),
                    nn.Linear(784, 256),
                    nn.ReLU(),
                    # a dropout layer after the first fully connected layer
                    nn.Dropout(dropout1),
                    nn.Linear(256, 256),
                    nn.ReLU(),
                    # a dropout layer after the second fully connected layer
                    nn.Dropout(dropout2),
                    nn.Linear(256, 10))
net.apply(init_weights)
trainer = torch.optim.SGD(net.parameters(), lr=lr)
concise_dropout_loss, concise_dropout_acc = train_ch3(net, train_iter, test_iter, loss, num_epochs, trainer)

# ---------------------------------------------------------------- 4.8 numerical stability
x = torch.arange(-8.0, 8.0, 0.1, requires_grad=True)
y = torch.sigmoid(x)
y.backward(torch.ones_like(x))
print('sigmoid gradient at -8, 0 and 7.9:', [f'{g:.6f}' for g in x.grad[[0, 80, 159]].tolist()])

M = torch.normal(0, 1, size=(4, 4))
print('a matrix', M.shape)
for i in range(100):
    M = torch.mm(M, torch.normal(0, 1, size=(4, 4)))
growth = math.log10(M.abs().max().item())
print(f'after multiplying 100 matrices the largest entry is 1e{growth:.1f}')

print(f"FINAL mlp_loss={mlp_loss:.4f} mlp_acc={mlp_acc:.4f} concise_mlp_loss={concise_mlp_loss:.4f} "
      f"concise_mlp_acc={concise_mlp_acc:.4f} poly_test={normal_test:.4f} poly_w_error={poly_w_error:.4f} "
      f"under_test={under_test:.3f} over_test={over_test:.4f} norm_no_decay={norm_no_decay:.3f} "
      f"norm_decay={norm_decay:.4f} concise_norm_no_decay={concise_norm_no_decay:.3f} "
      f"concise_norm_decay={concise_norm_decay:.4f} dropout_loss={dropout_loss:.4f} "
      f"dropout_acc={dropout_acc:.4f} concise_dropout_loss={concise_dropout_loss:.4f} "
      f"concise_dropout_acc={concise_dropout_acc:.4f} growth={growth:.2f}")
