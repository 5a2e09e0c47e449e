"""Dive into Deep Learning (d2l.ai, PyTorch edition), chapter 11 (optimisation algorithms) as a
student types it without the ``d2l`` package: gradient descent in one dimension (``x -= eta *
f_grad(x)`` on floats, then on ``torch.cos(c * x)`` with ``c = torch.tensor(0.15 * np.pi)``),
Newton's method with ``torch.cosh``/``torch.sinh``, ``train_2d`` on ``f(x1, x2) = x1 ** 2 + 2 *
x2 ** 2`` (gradient descent, SGD with ``torch.normal(0.0, 1, (1,)).item()`` noise and constant,
exponential and polynomial learning rates, momentum), ``get_data_ch11`` (a standardised table by
``torch.from_numpy((data - data.mean(axis=0)) / data.std(axis=0))``), ``train_ch11`` with hand
optimisers over ``states`` (``p.data.sub_(hyperparams['lr'] * p.grad)``; momentum, AdaGrad,
RMSProp, Adadelta, Adam and Yogi by ``v[:] = ...``, ``s[:] += torch.square(p.grad)``,
``p[:] -= ...`` under ``torch.no_grad()`` and ``p.grad.data.zero_()``), ``train_concise_ch11``
with ``trainer_fn(net.parameters(), **hyperparams)`` for ``torch.optim.SGD``/``Adagrad``/
``RMSprop``/``Adadelta``/``Adam``, and learning-rate scheduling on a small LeNet (``train`` telling
``scheduler.__module__ == lr_scheduler.__name__`` from a callable, ``trainer.param_groups[0]["lr"]``,
``SquareRootScheduler``, ``FactorScheduler``, ``lr_scheduler.MultiStepLR`` with
``scheduler.get_last_lr()[0]``, ``CosineScheduler`` with warm-up). The airfoil table and
Fashion-MNIST are synthetic stand-ins of the same shapes, and the sizes are small.
"""
# ruff: noqa: E741, E721, E731, B007, F811  (the book's own code: `l = loss(...)`, `type(m) == nn.Linear`,
# `net, loss = lambda X: ...`, `for t in range(num_epochs)` with t unused, `f`/`f_grad` redefined per section)

import math
import os
import time

import numpy as np
import torch
from torch import nn
from torch.optim import lr_scheduler
from torch.utils import data

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# ---------------------------------------------------------------- 11.3 gradient descent


def f(x):  # the objective function
    return x ** 2


def f_grad(x):  # the objective's gradient (derivative)
    return 2 * x


def gd(eta, f_grad):
    x = 10.0
    results = [x]
    for i in range(10):
        x -= eta * f_grad(x)
        results.append(float(x))
    print(f'epoch 10, x: {x:f}')
    return results


results = gd(0.2, f_grad)
gd(0.05, f_grad)
gd(1.1, f_grad)

c = torch.tensor(0.15 * np.pi)


def f(x):  # the objective function
    return x * torch.cos(c * x)


def f_grad(x):  # the objective's gradient
    return torch.cos(c * x) - c * x * torch.sin(c * x)


nonconvex = gd(2, f_grad)
print(len(nonconvex), type(nonconvex[-1]).__name__)


def train_2d(trainer, steps=20, f_grad=None):
    """Optimise a 2-d objective with a custom trainer."""
    # s1 and s2 are state variables used later
    x1, x2, s1, s2 = -5, -2, 0, 0
    results = [(x1, x2)]
    for i in range(steps):
        if f_grad:
            x1, x2, s1, s2 = trainer(x1, x2, s1, s2, f_grad)
        else:
            x1, x2, s1, s2 = trainer(x1, x2, s1, s2)
        results.append((x1, x2))
    print(f'epoch {i + 1}, x1: {float(x1):f}, x2: {float(x2):f}')
    return results


def f_2d(x1, x2):  # the objective function
    return x1 ** 2 + 2 * x2 ** 2


def f_2d_grad(x1, x2):  # the objective's gradient
    return (2 * x1, 4 * x2)


def gd_2d(x1, x2, s1, s2, f_grad):
    g1, g2 = f_grad(x1, x2)
    return (x1 - eta * g1, x2 - eta * g2, 0, 0)


eta = 0.1
train_2d(gd_2d, f_grad=f_2d_grad)

# Newton's method on a convex and a nonconvex function
c = torch.tensor(0.5)


def f(x):  # the objective function
    return torch.cosh(c * x)


def f_grad(x):  # the objective's gradient
    return c * torch.sinh(c * x)


def f_hess(x):  # the objective's Hessian
    return c**2 * torch.cosh(c * x)


def newton(eta=1):
    x = 10.0
    results = [x]
    for i in range(10):
        x -= eta * f_grad(x) / f_hess(x)
        results.append(float(x))
    print('epoch 10, x:', x)
    return results


newton()

c = torch.tensor(0.15 * np.pi)


def f(x):  # the objective function
    return x * torch.cos(c * x)


def f_grad(x):  # the objective's gradient
    return torch.cos(c * x) - c * x * torch.sin(c * x)


def f_hess(x):  # the objective's Hessian
    return - 2 * c * torch.sin(c * x) - x * c**2 * torch.cos(c * x)


newton()
newton(0.5)

# ---------------------------------------------------------------- 11.4 stochastic gradient descent


def sgd(x1, x2, s1, s2, f_grad):
    g1, g2 = f_grad(x1, x2)
    # simulate a noisy gradient
    g1 += torch.normal(0.0, 1, (1,)).item()
    g2 += torch.normal(0.0, 1, (1,)).item()
    eta_t = eta * lr()
    return (x1 - eta_t * g1, x2 - eta_t * g2, 0, 0)


def constant_lr():
    return 1


eta = 0.1
lr = constant_lr  # a constant learning rate
constant_trace = train_2d(sgd, steps=50, f_grad=f_2d_grad)


def exponential_lr():
    # a global variable outside this function, updated inside it
    global t
    t += 1
    return math.exp(-0.1 * t)


t = 1
lr = exponential_lr
train_2d(sgd, steps=1000, f_grad=f_2d_grad)


def polynomial_lr():
    # a global variable outside this function, updated inside it
    global t
    t += 1
    return (1 + 0.1 * t) ** (-0.5)


t = 1
lr = polynomial_lr
polynomial_trace = train_2d(sgd, steps=50, f_grad=f_2d_grad)
polynomial_f = f_2d(*polynomial_trace[-1])

# ---------------------------------------------------------------- 11.5 minibatch stochastic gradient descent
# the airfoil self-noise table (1503 rows: 5 features, the sound level last), synthesised
rng = np.random.RandomState(3)
features = rng.rand(1503, 5).astype(np.float32) * np.array([20000, 22, 0.7, 70, 0.06], np.float32)
level = (130 - 4e-4 * features[:, 0] - 0.4 * features[:, 1] - 25 * features[:, 2]
         + 0.08 * features[:, 3] - 150 * features[:, 4] + rng.randn(1503).astype(np.float32) * 2)
airfoil = np.concatenate([features, level[:, None]], axis=1).astype(np.float32)


def get_data_ch11(batch_size=10, n=500):
    data_array = airfoil
    data_array = torch.from_numpy((data_array - data_array.mean(axis=0)) / data_array.std(axis=0))
    data_iter = load_array((data_array[:n, :-1], data_array[:n, -1]),
                           batch_size, is_train=True)
    return data_iter, data_array.shape[1] - 1


def load_array(data_arrays, batch_size, is_train=True):
    dataset = data.TensorDataset(*data_arrays)
    return data.DataLoader(dataset, batch_size, shuffle=is_train)


def linreg(X, w, b):
    return torch.matmul(X, w) + b


def squared_loss(y_hat, y):
    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2


class Accumulator:
    def __init__(self, n):
        self.data = [0.0] * n

    def add(self, *args):
        self.data = [a + float(b) for a, b in zip(self.data, args)]

    def __getitem__(self, idx):
        return self.data[idx]


def evaluate_loss(net, data_iter, loss):
    metric = Accumulator(2)
    for X, y in data_iter:
        out = net(X)
        y = y.reshape(out.shape)
        l = loss(out, y)
        metric.add(l.sum(), l.numel())
    return metric[0] / metric[1]


class Timer:
    def __init__(self):
        self.times = []
        self.start()

    def start(self):
        self.tik = time.time()

    def stop(self):
        self.times.append(time.time() - self.tik)
        return self.times[-1]

    def avg(self):
        return sum(self.times) / len(self.times)

    def cumsum(self):
        return np.array(self.times).cumsum().tolist()


def sgd(params, states, hyperparams):
    for p in params:
        p.data.sub_(hyperparams['lr'] * p.grad)
        p.grad.data.zero_()


def train_ch11(trainer_fn, states, hyperparams, data_iter,
               feature_dim, num_epochs=2):
    # initialise the model
    w = torch.normal(mean=0.0, std=0.01, size=(feature_dim, 1),
                     requires_grad=True)
    b = torch.zeros((1), requires_grad=True)
    net, loss = lambda X: linreg(X, w, b), squared_loss
    # train the model; the book's Animator keeps the losses, here a list does
    losses = []
    n, timer = 0, Timer()
    for _ in range(num_epochs):
        for X, y in data_iter:
            l = loss(net(X), y).mean()
            l.backward()
            trainer_fn([w, b], states, hyperparams)
            n += X.shape[0]
            if n % 200 == 0:
                timer.stop()
                losses.append(evaluate_loss(net, data_iter, loss))
                timer.start()
    print(f'loss: {losses[-1]:.3f}, {timer.avg():.3f} sec/epoch')
    return timer.cumsum(), losses


def train_sgd(lr, batch_size, num_epochs=2):
    data_iter, feature_dim = get_data_ch11(batch_size)
    return train_ch11(
        sgd, None, {'lr': lr}, data_iter, feature_dim, num_epochs)


gd_res = train_sgd(1, 500, 10)
mini1_res = train_sgd(.4, 100)
mini2_res = train_sgd(.05, 10)


def train_concise_ch11(trainer_fn, hyperparams, data_iter, num_epochs=4):
    # initialise the model
    net = nn.Sequential(nn.Linear(5, 1))

    def init_weights(m):
        if type(m) == nn.Linear:
            torch.nn.init.normal_(m.weight, std=0.01)

    net.apply(init_weights)

    optimizer = trainer_fn(net.parameters(), **hyperparams)
    loss = nn.MSELoss(reduction='none')
    losses = []
    n, timer = 0, Timer()
    for _ in range(num_epochs):
        for X, y in data_iter:
            optimizer.zero_grad()
            out = net(X)
            y = y.reshape(out.shape)
            l = loss(out, y)
            l.mean().backward()
            optimizer.step()
            n += X.shape[0]
            if n % 200 == 0:
                timer.stop()
                # MSELoss has no factor 1/2 in its squared error
                losses.append(evaluate_loss(net, data_iter, loss) / 2)
                timer.start()
    print(f'loss: {losses[-1]:.3f}, {timer.avg():.3f} sec/epoch')
    return losses[-1]


data_iter, _ = get_data_ch11(10)
trainer = torch.optim.SGD
concise_sgd = train_concise_ch11(trainer, {'lr': 0.01}, data_iter, num_epochs=2)

# ---------------------------------------------------------------- 11.6 momentum


def momentum_2d(x1, x2, v1, v2):
    v1 = beta * v1 + 0.2 * x1
    v2 = beta * v2 + 4 * x2
    return x1 - eta * v1, x2 - eta * v2, v1, v2


eta, beta = 0.6, 0.5
train_2d(momentum_2d)


def init_momentum_states(feature_dim):
    v_w = torch.zeros((feature_dim, 1))
    v_b = torch.zeros(1)
    return (v_w, v_b)


def sgd_momentum(params, states, hyperparams):
    for p, v in zip(params, states):
        with torch.no_grad():
            v[:] = hyperparams['momentum'] * v + p.grad
            p[:] -= hyperparams['lr'] * v
        p.grad.data.zero_()


def train_momentum(lr, momentum, num_epochs=2):
    return train_ch11(sgd_momentum, init_momentum_states(feature_dim),
                      {'lr': lr, 'momentum': momentum}, data_iter,
                      feature_dim, num_epochs)


data_iter, feature_dim = get_data_ch11(batch_size=10)
momentum_res = train_momentum(0.02, 0.5)
trainer = torch.optim.SGD
concise_momentum = train_concise_ch11(trainer, {'lr': 0.005, 'momentum': 0.9}, data_iter, num_epochs=2)

# ---------------------------------------------------------------- 11.7 AdaGrad


def init_adagrad_states(feature_dim):
    s_w = torch.zeros((feature_dim, 1))
    s_b = torch.zeros(1)
    return (s_w, s_b)


def adagrad(params, states, hyperparams):
    eps = 1e-6
    for p, s in zip(params, states):
        with torch.no_grad():
            s[:] += torch.square(p.grad)
            p[:] -= hyperparams['lr'] * p.grad / torch.sqrt(s + eps)
        p.grad.data.zero_()


adagrad_res = train_ch11(adagrad, init_adagrad_states(feature_dim),
                         {'lr': 0.1}, data_iter, feature_dim)
trainer = torch.optim.Adagrad
concise_adagrad = train_concise_ch11(trainer, {'lr': 0.1}, data_iter, num_epochs=2)

# ---------------------------------------------------------------- 11.8 RMSProp


def init_rmsprop_states(feature_dim):
    s_w = torch.zeros((feature_dim, 1))
    s_b = torch.zeros(1)
    return (s_w, s_b)


def rmsprop(params, states, hyperparams):
    gamma, eps = hyperparams['gamma'], 1e-6
    for p, s in zip(params, states):
        with torch.no_grad():
            s[:] = gamma * s + (1 - gamma) * torch.square(p.grad)
            p[:] -= hyperparams['lr'] * p.grad / torch.sqrt(s + eps)
        p.grad.data.zero_()


rmsprop_res = train_ch11(rmsprop, init_rmsprop_states(feature_dim),
                         {'lr': 0.01, 'gamma': 0.9}, data_iter, feature_dim)
trainer = torch.optim.RMSprop
concise_rmsprop = train_concise_ch11(trainer, {'lr': 0.01, 'alpha': 0.9}, data_iter, num_epochs=2)

# ---------------------------------------------------------------- 11.9 Adadelta


def init_adadelta_states(feature_dim):
    s_w, s_b = torch.zeros((feature_dim, 1)), torch.zeros(1)
    delta_w, delta_b = torch.zeros((feature_dim, 1)), torch.zeros(1)
    return ((s_w, delta_w), (s_b, delta_b))


def adadelta(params, states, hyperparams):
    rho, eps = hyperparams['rho'], 1e-5
    for p, (s, delta) in zip(params, states):
        with torch.no_grad():
            # in-place updates through [:]
            s[:] = rho * s + (1 - rho) * torch.square(p.grad)
            g = (torch.sqrt(delta + eps) / torch.sqrt(s + eps)) * p.grad
            p[:] -= g
            delta[:] = rho * delta + (1 - rho) * g * g
        p.grad.data.zero_()


adadelta_res = train_ch11(adadelta, init_adadelta_states(feature_dim),
                          {'rho': 0.9}, data_iter, feature_dim)
trainer = torch.optim.Adadelta
concise_adadelta = train_concise_ch11(trainer, {'rho': 0.9}, data_iter, num_epochs=2)

# ---------------------------------------------------------------- 11.10 Adam


def init_adam_states(feature_dim):
    v_w, v_b = torch.zeros((feature_dim, 1)), torch.zeros(1)
    s_w, s_b = torch.zeros((feature_dim, 1)), torch.zeros(1)
    return ((v_w, s_w), (v_b, s_b))


def adam(params, states, hyperparams):
    beta1, beta2, eps = 0.9, 0.999, 1e-6
    for p, (v, s) in zip(params, states):
        with torch.no_grad():
            v[:] = beta1 * v + (1 - beta1) * p.grad
            s[:] = beta2 * s + (1 - beta2) * torch.square(p.grad)
            v_bias_corr = v / (1 - beta1 ** hyperparams['t'])
            s_bias_corr = s / (1 - beta2 ** hyperparams['t'])
            p[:] -= hyperparams['lr'] * v_bias_corr / (torch.sqrt(s_bias_corr)
                                                       + eps)
        p.grad.data.zero_()
    hyperparams['t'] += 1


adam_res = train_ch11(adam, init_adam_states(feature_dim),
                      {'lr': 0.01, 't': 1}, data_iter, feature_dim)
trainer = torch.optim.Adam
concise_adam = train_concise_ch11(trainer, {'lr': 0.01}, data_iter, num_epochs=2)


def yogi(params, states, hyperparams):
    beta1, beta2, eps = 0.9, 0.999, 1e-3
    for p, (v, s) in zip(params, states):
        with torch.no_grad():
            v[:] = beta1 * v + (1 - beta1) * p.grad
            s[:] = s + (1 - beta2) * torch.sign(
                torch.square(p.grad) - s) * torch.square(p.grad)
            v_bias_corr = v / (1 - beta1 ** hyperparams['t'])
            s_bias_corr = s / (1 - beta2 ** hyperparams['t'])
            p[:] -= hyperparams['lr'] * v_bias_corr / (torch.sqrt(s_bias_corr)
                                                       + eps)
        p.grad.data.zero_()
    hyperparams['t'] += 1


yogi_res = train_ch11(yogi, init_adam_states(feature_dim),
                      {'lr': 0.01, 't': 1}, data_iter, feature_dim)

# ---------------------------------------------------------------- 11.11 learning-rate scheduling
rng_images = np.random.RandomState(11)
templates = np.zeros((10, 28, 28), "float32")
for k in range(10):
    for _ in range(3):
        r, col = rng_images.randint(4, 24, 2)
        if rng_images.rand() < 0.5:
            templates[k, r - 2:r + 2, max(col - 8, 0):col + 8] = 1.0
        else:
            templates[k, max(r - 8, 0):r + 8, col - 2:col + 2] = 1.0


def make_clothes(count):
    classes = rng_images.randint(0, 10, count)
    images = 0.8 * templates[classes] + 0.4 * rng_images.rand(count, 28, 28).astype("float32")
    return torch.tensor(images / images.max()).unsqueeze(1), torch.tensor(classes)


def load_data_fashion_mnist(batch_size):
    mnist_train = data.TensorDataset(*make_clothes(384))
    mnist_test = data.TensorDataset(*make_clothes(128))
    return (data.DataLoader(mnist_train, batch_size, shuffle=True),
            data.DataLoader(mnist_test, batch_size, shuffle=False))


def net_fn():
    model = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))

    return model


def accuracy(y_hat, y):
    if len(y_hat.shape) > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(axis=1)
    cmp = y_hat.type(y.dtype) == y
    return float(cmp.type(y.dtype).sum())


def evaluate_accuracy_gpu(net, data_iter, device=None):
    if isinstance(net, nn.Module):
        net.eval()
        if not device:
            device = next(iter(net.parameters())).device
    metric = Accumulator(2)
    with torch.no_grad():
        for X, y in data_iter:
            X, y = X.to(device), y.to(device)
            metric.add(accuracy(net(X), y), y.numel())
    return metric[0] / metric[1]


def try_gpu(i=0):
    if torch.cuda.device_count() >= i + 1:
        return torch.device(f'cuda:{i}')
    return torch.device('cpu')


loss = nn.CrossEntropyLoss()
device = try_gpu()

batch_size = 128
train_iter, test_iter = load_data_fashion_mnist(batch_size=batch_size)


# the code is almost the same as train_ch6 of the convolutional networks chapter
def train(net, train_iter, test_iter, num_epochs, loss, trainer, device,
          scheduler=None):
    net.to(device)
    for epoch in range(num_epochs):
        metric = Accumulator(3)  # train_loss, train_acc, num_examples
        for i, (X, y) in enumerate(train_iter):
            net.train()
            trainer.zero_grad()
            X, y = X.to(device), y.to(device)
            y_hat = net(X)
            l = loss(y_hat, y)
            l.backward()
            trainer.step()
            with torch.no_grad():
                metric.add(l * X.shape[0], accuracy(y_hat, y), X.shape[0])
            train_loss = metric[0] / metric[2]
            train_acc = metric[1] / metric[2]
        test_acc = evaluate_accuracy_gpu(net, test_iter)
        if scheduler:
            if scheduler.__module__ == lr_scheduler.__name__:
                # a scheduler built into PyTorch
                scheduler.step()
            else:
                # a scheduler of our own
                for param_group in trainer.param_groups:
                    param_group['lr'] = scheduler(epoch)
        print(f'epoch {epoch + 1}, lr {trainer.param_groups[0]["lr"]:.4f}')
    print(f'train loss {train_loss:.3f}, train acc {train_acc:.3f}, '
          f'test acc {test_acc:.3f}')
    return train_loss, test_acc


lr, num_epochs = 0.3, 5
net = net_fn()
trainer = torch.optim.SGD(net.parameters(), lr=lr)
constant_loss, constant_acc = train(net, train_iter, test_iter, num_epochs, loss, trainer, device)

lr = 0.1
trainer.param_groups[0]["lr"] = lr
print(f'learning rate is now {trainer.param_groups[0]["lr"]:.2f}')


class SquareRootScheduler:
    def __init__(self, lr=0.1):
        self.lr = lr

    def __call__(self, num_update):
        return self.lr * pow(num_update + 1.0, -0.5)


scheduler = SquareRootScheduler(lr=0.1)
print([f'{scheduler(t):.4f}' for t in range(num_epochs)])


class FactorScheduler:
    def __init__(self, factor=1, stop_factor_lr=1e-7, base_lr=0.1):
        self.factor = factor
        self.stop_factor_lr = stop_factor_lr
        self.base_lr = base_lr

    def __call__(self, num_update):
        self.base_lr = max(self.stop_factor_lr, self.base_lr * self.factor)
        return self.base_lr


scheduler = FactorScheduler(factor=0.9, stop_factor_lr=1e-2, base_lr=2.0)
print([f'{scheduler(t):.4f}' for t in range(50)][::10])

net = net_fn()
trainer = torch.optim.SGD(net.parameters(), lr=0.5)
scheduler = lr_scheduler.MultiStepLR(trainer, milestones=[15, 30], gamma=0.5)


def get_lr(trainer, scheduler):
    lr = scheduler.get_last_lr()[0]
    trainer.step()
    scheduler.step()
    return lr


print([get_lr(trainer, scheduler) for t in range(40)][::5])

net = net_fn()
trainer = torch.optim.SGD(net.parameters(), lr=0.5)
scheduler = lr_scheduler.MultiStepLR(trainer, milestones=[2, 4], gamma=0.5)
multistep_loss, multistep_acc = train(net, train_iter, test_iter, num_epochs, loss, trainer, device,
                                      scheduler)


class CosineScheduler:
    def __init__(self, max_update, base_lr=0.01, final_lr=0,
                 warmup_steps=0, warmup_begin_lr=0):
        self.base_lr_orig = base_lr
        self.max_update = max_update
        self.final_lr = final_lr
        self.warmup_steps = warmup_steps
        self.warmup_begin_lr = warmup_begin_lr
        self.max_steps = self.max_update - self.warmup_steps

    def get_warmup_lr(self, epoch):
        increase = (self.base_lr_orig - self.warmup_begin_lr) \
            * float(epoch) / float(self.warmup_steps)
        return self.warmup_begin_lr + increase

    def __call__(self, epoch):
        if epoch < self.warmup_steps:
            return self.get_warmup_lr(epoch)
        if epoch <= self.max_update:
            self.base_lr = self.final_lr + (
                self.base_lr_orig - self.final_lr) * (1 + math.cos(
                    math.pi * (epoch - self.warmup_steps) / self.max_steps)) / 2
        return self.base_lr


scheduler = CosineScheduler(max_update=20, base_lr=0.3, final_lr=0.01)
print([f'{scheduler(t):.4f}' for t in range(30)][::5])

scheduler = CosineScheduler(5, warmup_steps=2, base_lr=0.3, final_lr=0.01)
net = net_fn()
trainer = torch.optim.SGD(net.parameters(), lr=0.3)
cosine_loss, cosine_acc = train(net, train_iter, test_iter, num_epochs, loss, trainer, device,
                                scheduler)

print(f"FINAL gd={results[-1]:.6f} nonconvex={nonconvex[-1]:.4f} sgd_f={polynomial_f:.4f} "
      f"gd_loss={gd_res[1][-1]:.4f} mini1_loss={mini1_res[1][-1]:.4f} mini2_loss={mini2_res[1][-1]:.4f} "
      f"concise_sgd={concise_sgd:.4f} momentum={momentum_res[1][-1]:.4f} concise_momentum={concise_momentum:.4f} "
      f"adagrad={adagrad_res[1][-1]:.4f} concise_adagrad={concise_adagrad:.4f} rmsprop={rmsprop_res[1][-1]:.4f} "
      f"concise_rmsprop={concise_rmsprop:.4f} adadelta={adadelta_res[1][-1]:.4f} "
      f"concise_adadelta={concise_adadelta:.4f} adam={adam_res[1][-1]:.4f} concise_adam={concise_adam:.4f} "
      f"yogi={yogi_res[1][-1]:.4f} constant_loss={constant_loss:.4f} constant_acc={constant_acc:.4f} "
      f"multistep_loss={multistep_loss:.4f} multistep_acc={multistep_acc:.4f} cosine_loss={cosine_loss:.4f} "
      f"cosine_acc={cosine_acc:.4f}")
