"""Dive into Deep Learning (d2l.ai, PyTorch edition), chapters 6 and 7 as a student types them
without the ``d2l`` package: ``corr2d`` by Python loops writing ``Y[i, j]``, a ``Conv2D`` module of
``nn.Parameter(torch.rand(kernel_size))``, edge detection with ``K = torch.tensor([[1.0, -1.0]])``
and learning that kernel by ``nn.Conv2d(1, 1, kernel_size=(1, 2), bias=False)`` with
``conv2d.weight.data[:] -= lr * conv2d.weight.grad``, ``comp_conv2d`` (``X.reshape((1, 1) +
X.shape)``) over paddings and strides, ``corr2d_multi_in``/``corr2d_multi_in_out`` with ``sum`` over
``zip`` and ``torch.stack``, the 1x1 convolution as ``torch.matmul``, ``pool2d`` from scratch and
``nn.MaxPool2d`` with padding/stride, LeNet (``nn.Sigmoid``, ``nn.AvgPool2d``) trained by
``train_ch6`` (``try_gpu``, ``xavier_uniform_`` through ``apply``, ``Timer``,
``evaluate_accuracy_gpu``), small AlexNet / VGG (``vgg_block``) / NiN (``nin_block``,
``AdaptiveAvgPool2d((1, 1))``) / GoogLeNet ``Inception`` shape walks, batch normalisation from
scratch (``batch_norm`` with ``torch.is_grad_enabled()``, moving statistics kept as plain tensors
and ``.data``) and concise (``nn.BatchNorm2d``/``nn.BatchNorm1d``), ResNet's ``Residual`` with
``use_1x1conv`` and ``if self.conv3:``, and DenseNet's ``conv_block``/``DenseBlock`` with
``torch.cat((X, Y), dim=1)`` and ``transition_block``. Each network runs at a small size (fewer
channels, a smaller input) and prints the book's "output shape" walk; synthetic 28x28 "clothes"
stand in for Fashion-MNIST.
"""
# ruff: noqa: E741, E721, UP008, B007  (the book's own code: `l = loss(...)`, `type(m) == nn.Linear`,
# `super(Inception, self).__init__(**kwargs)`, `for i, (X, y) in enumerate(train_iter)`)

import os
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils import data

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# ---------------------------------------------------------------- 6.2 convolutions for images


def corr2d(X, K):
    """The 2-d cross-correlation."""
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y


X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
print(corr2d(X, K))


class Conv2D(nn.Module):
    def __init__(self, kernel_size):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(kernel_size))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return corr2d(x, self.weight) + self.bias


X = torch.ones((6, 8))
X[:, 2:6] = 0
print(X)
K = torch.tensor([[1.0, -1.0]])
Y = corr2d(X, K)
print(Y)
print(corr2d(X.t(), K).abs().sum())

own_conv = Conv2D((1, 2))
print(own_conv(X).shape, [p.shape for p in own_conv.parameters()])

# a 2-d convolution layer of 1 output channel and a (1, 2) kernel, no bias
conv2d = nn.Conv2d(1, 1, kernel_size=(1, 2), bias=False)

# the layer takes 4-d input and output: (batch size, channels, height, width)
X = X.reshape((1, 1, 6, 8))
Y = Y.reshape((1, 1, 6, 7))
lr = 3e-2  # learning rate

for i in range(10):
    Y_hat = conv2d(X)
    l = (Y_hat - Y) ** 2
    conv2d.zero_grad()
    l.sum().backward()
    # update the kernel
    conv2d.weight.data[:] -= lr * conv2d.weight.grad
    if (i + 1) % 2 == 0:
        print(f'epoch {i + 1}, loss {l.sum():.3f}')

learned_kernel = conv2d.weight.data.reshape((1, 2))
print('learned kernel', [round(v, 2) for v in learned_kernel[0].tolist()])
edge_kernel_error = float((learned_kernel - K).abs().max())
edge_loss = float(l.sum())

# ---------------------------------------------------------------- 6.3 padding and stride


def comp_conv2d(conv2d, X):
    # (1, 1) are the batch size and the number of channels
    X = X.reshape((1, 1) + X.shape)
    Y = conv2d(X)
    # drop the first two dimensions: batch size and channels
    return Y.reshape(Y.shape[2:])


# a row and a column of padding on each side
conv2d = nn.Conv2d(1, 1, kernel_size=3, padding=1)
X = torch.rand(size=(8, 8))
print(comp_conv2d(conv2d, X).shape)
conv2d = nn.Conv2d(1, 1, kernel_size=(5, 3), padding=(2, 1))
print(comp_conv2d(conv2d, X).shape)
conv2d = nn.Conv2d(1, 1, kernel_size=3, padding=1, stride=2)
print(comp_conv2d(conv2d, X).shape)
conv2d = nn.Conv2d(1, 1, kernel_size=(3, 5), padding=(0, 1), stride=(3, 4))
print(comp_conv2d(conv2d, X).shape)

# ---------------------------------------------------------------- 6.4 multiple input and output channels


def corr2d_multi_in(X, K):
    # iterate over the 0th dimension (channels) of X and K, then add them up
    return sum(corr2d(x, k) for x, k in zip(X, K))


X = torch.tensor([[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]],
                  [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]])
K = torch.tensor([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])
print(corr2d_multi_in(X, K))


def corr2d_multi_in_out(X, K):
    # iterate over the 0th dimension of K, one cross-correlation per output channel; stack them
    return torch.stack([corr2d_multi_in(X, k) for k in K], 0)


K = torch.stack((K, K + 1, K + 2), 0)
print(K.shape)
print(corr2d_multi_in_out(X, K))


def corr2d_multi_in_out_1x1(X, K):
    c_i, h, w = X.shape
    c_o = K.shape[0]
    X = X.reshape((c_i, h * w))
    K = K.reshape((c_o, c_i))
    # a matrix multiplication in the fully connected layer
    Y = torch.matmul(K, X)
    return Y.reshape((c_o, h, w))


X = torch.normal(0, 1, (3, 3, 3))
K = torch.normal(0, 1, (2, 3, 1, 1))
Y1 = corr2d_multi_in_out_1x1(X, K)
Y2 = corr2d_multi_in_out(X, K)
assert float(torch.abs(Y1 - Y2).sum()) < 1e-6
print('1x1 convolution as matmul agrees')

# ---------------------------------------------------------------- 6.5 pooling


def pool2d(X, pool_size, mode='max'):
    p_h, p_w = pool_size
    Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            if mode == 'max':
                Y[i, j] = X[i: i + p_h, j: j + p_w].max()
            elif mode == 'avg':
                Y[i, j] = X[i: i + p_h, j: j + p_w].mean()
    return Y


X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
print(pool2d(X, (2, 2)))
print(pool2d(X, (2, 2), 'avg'))

X = torch.arange(16, dtype=torch.float32).reshape((1, 1, 4, 4))
print(X)
pool2d = nn.MaxPool2d(3)
print(pool2d(X))
pool2d = nn.MaxPool2d(3, padding=1, stride=2)
print(pool2d(X))
pool2d = nn.MaxPool2d((2, 3), stride=(2, 3), padding=(0, 1))
print(pool2d(X))
X = torch.cat((X, X + 1), 1)
print(X.shape)
pool2d = nn.MaxPool2d(3, padding=1, stride=2)
print(pool2d(X))

# ---------------------------------------------------------------- the book's training helpers


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


class Timer:
    """Record several running times."""

    def __init__(self):
        self.times = []
        self.start()

    def start(self):
        self.tik = time.time()

    def stop(self):
        self.times.append(time.time() - self.tik)
        return self.times[-1]

    def sum(self):
        return sum(self.times)


def accuracy(y_hat, y):
    if len(y_hat.shape) > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(axis=1)
    cmp = y_hat.type(y.dtype) == y
    return float(cmp.type(y.dtype).sum())


def try_gpu(i=0):
    """gpu(i) if it exists, else cpu()."""
    if torch.cuda.device_count() >= i + 1:
        return torch.device(f'cuda:{i}')
    return torch.device('cpu')


def evaluate_accuracy_gpu(net, data_iter, device=None):
    """The accuracy of a model on a data set, computed on a GPU."""
    if isinstance(net, nn.Module):
        net.eval()  # evaluation mode
        if not device:
            device = next(iter(net.parameters())).device
    # correct predictions, predictions
    metric = Accumulator(2)
    with torch.no_grad():
        for X, y in data_iter:
            if isinstance(X, list):
                X = [x.to(device) for x in X]
            else:
                X = X.to(device)
            y = y.to(device)
            metric.add(accuracy(net(X), y), y.numel())
    return metric[0] / metric[1]


def train_ch6(net, train_iter, test_iter, num_epochs, lr, device):
    """Train a model on a GPU (chapter 6); a printed line per epoch instead of the Animator."""
    def init_weights(m):
        if type(m) == nn.Linear or type(m) == nn.Conv2d:
            nn.init.xavier_uniform_(m.weight)
    net.apply(init_weights)
    print('training on', device)
    net.to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    loss = nn.CrossEntropyLoss()
    timer, num_batches = Timer(), len(train_iter)
    for epoch in range(num_epochs):
        # training loss sum, training accuracy sum, sample count
        metric = Accumulator(3)
        net.train()
        for i, (X, y) in enumerate(train_iter):
            timer.start()
            optimizer.zero_grad()
            X, y = X.to(device), y.to(device)
            y_hat = net(X)
            l = loss(y_hat, y)
            l.backward()
            optimizer.step()
            with torch.no_grad():
                metric.add(l * X.shape[0], accuracy(y_hat, y), X.shape[0])
            timer.stop()
            train_l = metric[0] / metric[2]
            train_acc = metric[1] / metric[2]
        test_acc = evaluate_accuracy_gpu(net, test_iter)
        print(f'epoch {epoch + 1} of {num_batches} batches, loss {train_l:.3f}, '
              f'train acc {train_acc:.3f}, test acc {test_acc:.3f}')
    print(f'loss {train_l:.3f}, train acc {train_acc:.3f}, test acc {test_acc:.3f}')
    print(f'{metric[2] * num_epochs / timer.sum():.1f} examples/sec on {str(device)}')
    return train_l, test_acc


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
    mnist_train = data.TensorDataset(*make_clothes(768))
    mnist_test = data.TensorDataset(*make_clothes(256))
    return (data.DataLoader(mnist_train, batch_size, shuffle=True),
            data.DataLoader(mnist_test, batch_size, shuffle=False))


# ---------------------------------------------------------------- 6.6 LeNet
net = nn.Sequential(
    nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
    nn.AvgPool2d(kernel_size=2, stride=2),
    nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
    nn.AvgPool2d(kernel_size=2, stride=2),
    nn.Flatten(),
    nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
    nn.Linear(120, 84), nn.Sigmoid(),
    nn.Linear(84, 10))

X = torch.rand(size=(1, 1, 28, 28), dtype=torch.float32)
for layer in net:
    X = layer(X)
    print(layer.__class__.__name__, 'output shape: \t', X.shape)

batch_size = 64
train_iter, test_iter = load_data_fashion_mnist(batch_size=batch_size)
lr, num_epochs = 0.9, 3
lenet_loss, lenet_acc = train_ch6(net, train_iter, test_iter, num_epochs, lr, try_gpu())

# ---------------------------------------------------------------- 7.1 AlexNet (an eighth of the channels)
net = nn.Sequential(
    # an 11x11 window catches objects; stride 4 shrinks the output
    nn.Conv2d(1, 12, kernel_size=11, stride=4, padding=1), nn.ReLU(),
    nn.MaxPool2d(kernel_size=3, stride=2),
    # a smaller window, padding 2 keeps height and width, more output channels
    nn.Conv2d(12, 32, kernel_size=5, padding=2), nn.ReLU(),
    nn.MaxPool2d(kernel_size=3, stride=2),
    # three convolutions with smaller windows
    nn.Conv2d(32, 48, kernel_size=3, padding=1), nn.ReLU(),
    nn.Conv2d(48, 48, kernel_size=3, padding=1), nn.ReLU(),
    nn.Conv2d(48, 32, kernel_size=3, padding=1), nn.ReLU(),
    nn.MaxPool2d(kernel_size=3, stride=2),
    nn.Flatten(),
    # dropout against the fully connected layers' overfitting
    nn.Linear(800, 256), nn.ReLU(),
    nn.Dropout(p=0.5),
    nn.Linear(256, 256), nn.ReLU(),
    nn.Dropout(p=0.5),
    nn.Linear(256, 10))

X = torch.randn(1, 1, 224, 224)
for layer in net:
    X = layer(X)
    print(layer.__class__.__name__, 'output shape:\t', X.shape)

# ---------------------------------------------------------------- 7.2 VGG (a sixteenth of the channels, 64x64 input)


def vgg_block(num_convs, in_channels, out_channels):
    layers = []
    for _ in range(num_convs):
        layers.append(nn.Conv2d(in_channels, out_channels,
                                kernel_size=3, padding=1))
        layers.append(nn.ReLU())
        in_channels = out_channels
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


conv_arch = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))


def vgg(conv_arch):
    conv_blks = []
    in_channels = 1
    # the convolutional part
    for (num_convs, out_channels) in conv_arch:
        conv_blks.append(vgg_block(num_convs, in_channels, out_channels))
        in_channels = out_channels

    return nn.Sequential(
        *conv_blks, nn.Flatten(),
        # the fully connected part
        nn.Linear(out_channels * 2 * 2, 256), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(256, 256), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(256, 10))


ratio = 16
small_conv_arch = [(pair[0], pair[1] // ratio) for pair in conv_arch]
net = vgg(small_conv_arch)
X = torch.randn(size=(1, 1, 64, 64))
for blk in net:
    X = blk(X)
    print(blk.__class__.__name__, 'output shape:\t', X.shape)

# ---------------------------------------------------------------- 7.3 NiN (an eighth of the channels)


def nin_block(in_channels, out_channels, kernel_size, strides, padding):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, strides, padding),
        nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU())


net = nn.Sequential(
    nin_block(1, 12, kernel_size=11, strides=4, padding=0),
    nn.MaxPool2d(3, stride=2),
    nin_block(12, 32, kernel_size=5, strides=1, padding=2),
    nn.MaxPool2d(3, stride=2),
    nin_block(32, 48, kernel_size=3, strides=1, padding=1),
    nn.MaxPool2d(3, stride=2),
    nn.Dropout(0.5),
    # ten label classes
    nin_block(48, 10, kernel_size=3, strides=1, padding=1),
    nn.AdaptiveAvgPool2d((1, 1)),
    # turn the 4-d output into a 2-d output of shape (batch size, 10)
    nn.Flatten())

X = torch.rand(size=(1, 1, 224, 224))
for layer in net:
    X = layer(X)
    print(layer.__class__.__name__, 'output shape:\t', X.shape)

# ---------------------------------------------------------------- 7.4 GoogLeNet's Inception block


class Inception(nn.Module):
    # c1--c4 are the output channels of each path
    def __init__(self, in_channels, c1, c2, c3, c4, **kwargs):
        super(Inception, self).__init__(**kwargs)
        # path 1: a single 1x1 convolution
        self.p1_1 = nn.Conv2d(in_channels, c1, kernel_size=1)
        # path 2: a 1x1 convolution, then a 3x3 convolution
        self.p2_1 = nn.Conv2d(in_channels, c2[0], kernel_size=1)
        self.p2_2 = nn.Conv2d(c2[0], c2[1], kernel_size=3, padding=1)
        # path 3: a 1x1 convolution, then a 5x5 convolution
        self.p3_1 = nn.Conv2d(in_channels, c3[0], kernel_size=1)
        self.p3_2 = nn.Conv2d(c3[0], c3[1], kernel_size=5, padding=2)
        # path 4: a 3x3 max pooling, then a 1x1 convolution
        self.p4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.p4_2 = nn.Conv2d(in_channels, c4, kernel_size=1)

    def forward(self, x):
        p1 = F.relu(self.p1_1(x))
        p2 = F.relu(self.p2_2(F.relu(self.p2_1(x))))
        p3 = F.relu(self.p3_2(F.relu(self.p3_1(x))))
        p4 = F.relu(self.p4_2(self.p4_1(x)))
        # concatenate the outputs along the channel dimension
        return torch.cat((p1, p2, p3, p4), dim=1)


b1 = nn.Sequential(nn.Conv2d(1, 8, kernel_size=7, stride=2, padding=3),
                   nn.ReLU(),
                   nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
b2 = nn.Sequential(nn.Conv2d(8, 8, kernel_size=1),
                   nn.ReLU(),
                   nn.Conv2d(8, 24, kernel_size=3, padding=1),
                   nn.ReLU(),
                   nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
b3 = nn.Sequential(Inception(24, 8, (12, 16), (2, 4), 4),
                   Inception(32, 16, (16, 24), (4, 12), 8),
                   nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
net = nn.Sequential(b1, b2, b3, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(60, 10))
X = torch.rand(size=(1, 1, 96, 96))
for layer in net:
    X = layer(X)
    print(layer.__class__.__name__, 'output shape:\t', X.shape)

# ---------------------------------------------------------------- 7.5 batch normalisation from scratch


def batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum):
    # torch.is_grad_enabled() tells training from prediction
    if not torch.is_grad_enabled():
        # in prediction, the moving mean and variance
        X_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)
    else:
        assert len(X.shape) in (2, 4)
        if len(X.shape) == 2:
            # a fully connected layer: mean and variance over the features
            mean = X.mean(dim=0)
            var = ((X - mean) ** 2).mean(dim=0)
        else:
            # a 2-d convolution: mean and variance per channel (axis=1), keeping X's shape
            # so that broadcasting works below
            mean = X.mean(dim=(0, 2, 3), keepdim=True)
            var = ((X - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
        # in training, the current mean and variance
        X_hat = (X - mean) / torch.sqrt(var + eps)
        # update the moving mean and variance
        moving_mean = momentum * moving_mean + (1.0 - momentum) * mean
        moving_var = momentum * moving_var + (1.0 - momentum) * var
    Y = gamma * X_hat + beta  # scale and shift
    return Y, moving_mean.data, moving_var.data


class BatchNorm(nn.Module):
    # num_features: outputs of a fully connected layer or output channels of a convolution;
    # num_dims: 2 for a fully connected layer, 4 for a convolution
    def __init__(self, num_features, num_dims):
        super().__init__()
        if num_dims == 2:
            shape = (1, num_features)
        else:
            shape = (1, num_features, 1, 1)
        # the scale and shift parameters, learned, start at 1 and 0
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        # non-parameters start at 0 and 1
        self.moving_mean = torch.zeros(shape)
        self.moving_var = torch.ones(shape)

    def forward(self, X):
        # if X is not in memory, copy moving_mean and moving_var to where X is
        if self.moving_mean.device != X.device:
            self.moving_mean = self.moving_mean.to(X.device)
            self.moving_var = self.moving_var.to(X.device)
        # keep the updated moving_mean and moving_var
        Y, self.moving_mean, self.moving_var = batch_norm(
            X, self.gamma, self.beta, self.moving_mean,
            self.moving_var, eps=1e-5, momentum=0.9)
        return Y


net = nn.Sequential(
    nn.Conv2d(1, 6, kernel_size=5), BatchNorm(6, num_dims=4), nn.Sigmoid(),
    nn.AvgPool2d(kernel_size=2, stride=2),
    nn.Conv2d(6, 16, kernel_size=5), BatchNorm(16, num_dims=4), nn.Sigmoid(),
    nn.AvgPool2d(kernel_size=2, stride=2), nn.Flatten(),
    nn.Linear(16 * 4 * 4, 120), BatchNorm(120, num_dims=2), nn.Sigmoid(),
    nn.Linear(120, 84), BatchNorm(84, num_dims=2), nn.Sigmoid(),
    nn.Linear(84, 10))

lr, num_epochs = 1.0, 3
bn_loss, bn_acc = train_ch6(net, train_iter, test_iter, num_epochs, lr, try_gpu())
print(net[1].gamma.reshape((-1,)).shape, net[1].beta.reshape((-1,)).shape)
bn_moving_var = float(net[1].moving_var.mean())

net = nn.Sequential(
    nn.Conv2d(1, 6, kernel_size=5), nn.BatchNorm2d(6), nn.Sigmoid(),
    nn.AvgPool2d(kernel_size=2, stride=2),
    nn.Conv2d(6, 16, kernel_size=5), nn.BatchNorm2d(16), nn.Sigmoid(),
    nn.AvgPool2d(kernel_size=2, stride=2), nn.Flatten(),
    nn.Linear(256, 120), nn.BatchNorm1d(120), nn.Sigmoid(),
    nn.Linear(120, 84), nn.BatchNorm1d(84), nn.Sigmoid(),
    nn.Linear(84, 10))
concise_bn_loss, concise_bn_acc = train_ch6(net, train_iter, test_iter, num_epochs, lr, try_gpu())
concise_bn_moving_var = float(net[1].running_var.mean())

# ---------------------------------------------------------------- 7.6 ResNet (a quarter of the channels, 96x96 input)


class Residual(nn.Module):
    def __init__(self, input_channels, num_channels,
                 use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.Conv2d(input_channels, num_channels,
                               kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.Conv2d(num_channels, num_channels,
                               kernel_size=3, padding=1)
        if use_1x1conv:
            self.conv3 = nn.Conv2d(input_channels, num_channels,
                                   kernel_size=1, stride=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.bn2 = nn.BatchNorm2d(num_channels)

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)


blk = Residual(3, 3)
X = torch.rand(4, 3, 6, 6)
Y = blk(X)
print(Y.shape)
blk = Residual(3, 6, use_1x1conv=True, strides=2)
print(blk(X).shape)

b1 = nn.Sequential(nn.Conv2d(1, 16, kernel_size=7, stride=2, padding=3),
                   nn.BatchNorm2d(16), nn.ReLU(),
                   nn.MaxPool2d(kernel_size=3, stride=2, padding=1))


def resnet_block(input_channels, num_channels, num_residuals,
                 first_block=False):
    blk = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.append(Residual(input_channels, num_channels,
                                use_1x1conv=True, strides=2))
        else:
            blk.append(Residual(num_channels, num_channels))
    return blk


b2 = nn.Sequential(*resnet_block(16, 16, 2, first_block=True))
b3 = nn.Sequential(*resnet_block(16, 32, 2))
b4 = nn.Sequential(*resnet_block(32, 64, 2))
b5 = nn.Sequential(*resnet_block(64, 128, 2))
net = nn.Sequential(b1, b2, b3, b4, b5,
                    nn.AdaptiveAvgPool2d((1, 1)),
                    nn.Flatten(), nn.Linear(128, 10))
X = torch.rand(size=(1, 1, 96, 96))
for layer in net:
    X = layer(X)
    print(layer.__class__.__name__, 'output shape:\t', X.shape)
resnet_out_abs = float(X.abs().mean())

# ---------------------------------------------------------------- 7.7 DenseNet


def conv_block(input_channels, num_channels):
    return nn.Sequential(
        nn.BatchNorm2d(input_channels), nn.ReLU(),
        nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1))


class DenseBlock(nn.Module):
    def __init__(self, num_convs, input_channels, num_channels):
        super(DenseBlock, self).__init__()
        layer = []
        for i in range(num_convs):
            layer.append(conv_block(
                num_channels * i + input_channels, num_channels))
        self.net = nn.Sequential(*layer)

    def forward(self, X):
        for blk in self.net:
            Y = blk(X)
            # concatenate each block's input and output along the channels
            X = torch.cat((X, Y), dim=1)
        return X


blk = DenseBlock(2, 3, 10)
X = torch.randn(4, 3, 8, 8)
Y = blk(X)
print(Y.shape)


def transition_block(input_channels, num_channels):
    return nn.Sequential(
        nn.BatchNorm2d(input_channels), nn.ReLU(),
        nn.Conv2d(input_channels, num_channels, kernel_size=1),
        nn.AvgPool2d(kernel_size=2, stride=2))


blk = transition_block(23, 10)
print(blk(Y).shape)
dense_out_abs = float(blk(Y).abs().mean())

print(f"FINAL edge_loss={edge_loss:.4f} edge_kernel_error={edge_kernel_error:.4f} lenet_loss={lenet_loss:.4f} "
      f"lenet_acc={lenet_acc:.4f} bn_loss={bn_loss:.4f} bn_acc={bn_acc:.4f} bn_moving_var={bn_moving_var:.4f} "
      f"concise_bn_loss={concise_bn_loss:.4f} concise_bn_acc={concise_bn_acc:.4f} "
      f"concise_bn_moving_var={concise_bn_moving_var:.4f} resnet_out_abs={resnet_out_abs:.4f} "
      f"dense_out_abs={dense_out_abs:.4f}")
