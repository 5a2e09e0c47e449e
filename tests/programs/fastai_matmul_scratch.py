"""fast.ai course part 2, "from the foundations" (notebooks 01_matmul, 02_fully_connected,
03_backprop), as a student runs them: matrix multiplication with three Python loops on tiny
tensors, then the inner loop by an elementwise product + ``sum()``, by ``torch.dot``, by
broadcasting ``(a[i, :, None] * b).sum(dim=0)``, by ``torch.einsum('ik,kj->ij', a, b)`` and by
``a @ b``, each checked by a ``test_close`` on ``torch.allclose``; the broadcasting examples
(``c[None, :]``, ``c[:, None]``, ``unsqueeze``, ``expand_as``, ``stride()``, outer products and
comparisons); the 2-layer MLP's forward and hand-written backward with gradients stored as user
attributes ``.g`` on tensors (``lin_grad``: ``inp.g = out.g @ w.t()``,
``w.g = (inp.unsqueeze(-1) * out.g.unsqueeze(1)).sum(0)``), ``mse`` by
``(output.squeeze(-1) - targ).pow(2).mean()``, checked against autograd on
``x.clone().requires_grad_(True)`` copies; then the refactor into ``Relu``/``Lin``/``Mse`` classes
with ``__call__``/``backward``, into a ``Module`` base with ``forward``/``bwd``, and into
``nn.Module`` with ``F.mse_loss``, trained by the notebook's manual SGD loop. Synthetic "digits"
(a template per class plus noise, made with NumPy) stand in for MNIST, as regression targets.
"""
# ruff: noqa: F841  (the notebook's own `(ar, ac), (br, bc) = a.shape, b.shape` with some unused)

import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn, tensor

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# a small MNIST stand-in: 8x8 "digits", flattened, the label as the regression target
rng = np.random.RandomState(3)
templates = (rng.rand(10, 64) > 0.6).astype("float32")


def get_data(n):
    labels = rng.randint(0, 10, n)
    images = templates[labels] + 0.3 * rng.randn(n, 64).astype("float32")
    return images.astype("float32"), labels.astype("float32")


x_train, y_train = get_data(1000)
x_valid, y_valid = get_data(200)
x_train, y_train, x_valid, y_valid = map(tensor, (x_train, y_train, x_valid, y_valid))

# -- 01_matmul
weights = torch.randn(64, 10)
bias = torch.zeros(10)
m1 = x_valid[:5]
m2 = weights
print(m1.shape, m2.shape)


def test_close(a, b, eps=1e-3):
    assert torch.allclose(a, b, rtol=0, atol=eps), f"Not close: {a} vs {b}"


def matmul(a, b):
    (ar, ac), (br, bc) = a.shape, b.shape
    c = torch.zeros(ar, bc)
    for i in range(ar):
        for j in range(bc):
            for k in range(ac):
                c[i, j] += a[i, k] * b[k, j]
    return c


t1 = matmul(m1, m2)
print(t1.shape)
ar, ac = m1.shape
br, bc = m2.shape
print(ar * bc * ac, "multiply-adds by three loops")


def matmul(a, b):  # noqa: F811  (the notebook redefines matmul at each step)
    (ar, ac), (br, bc) = a.shape, b.shape
    c = torch.zeros(ar, bc)
    for i in range(ar):
        for j in range(bc):
            c[i, j] = (a[i, :] * b[:, j]).sum()
    return c


test_close(t1, matmul(m1, m2))


def matmul(a, b):  # noqa: F811
    (ar, ac), (br, bc) = a.shape, b.shape
    c = torch.zeros(ar, bc)
    for i in range(ar):
        for j in range(bc):
            c[i, j] = torch.dot(a[i, :], b[:, j])
    return c


test_close(t1, matmul(m1, m2))

# broadcasting
a = tensor([10.0, 6, -4])
b = tensor([2.0, 8, 7])
print(a + b, a < b, (a < b).float().mean())
m = tensor([[1.0, 2, 3], [4, 5, 6], [7, 8, 9]])
print((m * m).sum().sqrt(), m.pow(2).sum().sqrt())
print(a > 0, a + 1, 2 * m)
c = tensor([10.0, 20, 30])
print(m + c)
print(c + m)
t = c.expand_as(m)
print(t)
print(t.stride(), t.shape)
print(c.unsqueeze(0), c[None, :], c.unsqueeze(0).shape)
print(c.unsqueeze(1), c[:, None], c.unsqueeze(1).shape)
print(c.shape, c[None].shape, c[..., None].shape)
print(c[:, None].expand_as(m))
print(m + c[:, None])
print(c[None, :] * c[:, None])
print(c[None] > c[:, None])


def matmul(a, b):  # noqa: F811
    (ar, ac), (br, bc) = a.shape, b.shape
    c = torch.zeros(ar, bc)
    for i in range(ar):
        c[i] = (a[i, :, None] * b).sum(dim=0)
    return c


test_close(t1, matmul(m1, m2))
tr = matmul(x_train, weights)
print(tr.shape)


def matmul(a, b):  # noqa: F811
    return torch.einsum("ik,kj->ij", a, b)


test_close(tr, matmul(x_train, weights), eps=1e-3)
test_close(tr, x_train @ weights, eps=1e-3)
test_close(tr, torch.matmul(x_train, weights), eps=1e-3)
print("all matmuls agree:", torch.allclose(tr, x_train @ weights, atol=1e-3))
matmul_diff = (tr - x_train @ weights).abs().max().item()

# -- 02_fully_connected
train_mean, train_std = x_train.mean(), x_train.std()


def normalize(x, m, s):
    return (x - m) / s


x_train = normalize(x_train, train_mean, train_std)
x_valid = normalize(x_valid, train_mean, train_std)


def test_near_zero(a, tol=1e-3):
    assert a.abs() < tol, f"Near zero: {a}"


test_near_zero(x_train.mean())
test_near_zero(1 - x_train.std())
n, m = x_train.shape
c = y_train.max() + 1
print(n, m, c)

nh = 50
w1 = torch.randn(m, nh) * math.sqrt(2 / m)
b1 = torch.zeros(nh)
w2 = torch.randn(nh, 1) / math.sqrt(nh)
b2 = torch.zeros(1)


def lin(x, w, b):
    return x @ w + b


def relu(x):
    return x.clamp_min(0.0)


t = relu(lin(x_valid, w1, b1))
print(f"after relu: mean {t.mean():.2f} std {t.std():.2f}")


def model(xb):
    l1 = lin(xb, w1, b1)
    l2 = relu(l1)
    return lin(l2, w2, b2)


preds = model(x_train)
print(preds.shape, preds.squeeze(-1).shape)


def mse(output, targ):
    return (output.squeeze(-1) - targ).pow(2).mean()


print(f"mse {mse(preds, y_train):.2f}")

# -- 03_backprop: gradients by hand, stored on the tensors as .g


def lin_grad(inp, out, w, b):
    # grad of matmul with respect to input
    inp.g = out.g @ w.t()
    w.g = (inp.unsqueeze(-1) * out.g.unsqueeze(1)).sum(0)
    b.g = out.g.sum(0)


def forward_and_backward(inp, targ):
    # forward pass:
    l1 = lin(inp, w1, b1)
    l2 = relu(l1)
    out = lin(l2, w2, b2)
    diff = out[:, 0] - targ
    loss = diff.pow(2).mean()
    # backward pass:
    out.g = 2.0 * diff[:, None] / inp.shape[0]
    lin_grad(l2, out, w2, b2)
    l1.g = (l1 > 0).float() * l2.g
    lin_grad(inp, l1, w1, b1)
    return loss


loss = forward_and_backward(x_train, y_train)


def get_grad(x):
    return x.g.clone()


chks = w1, w2, b1, b2, x_train
grads = w1g, w2g, b1g, b2g, ig = tuple(map(get_grad, chks))
print([tuple(g.shape) for g in grads])


def mkgrad(x):
    return x.clone().requires_grad_(True)


ptgrads = w12, w22, b12, b22, xt2 = tuple(map(mkgrad, chks))


def forward(inp, targ):
    l1 = lin(inp, w12, b12)
    l2 = relu(l1)
    out = lin(l2, w22, b22)
    return mse(out, targ)


loss = forward(xt2, y_train)
loss.backward()
for a, b in zip(grads, ptgrads):
    test_close(a, b.grad, eps=0.01)
hand_vs_autograd = max((a - b.grad).abs().max().item() for a, b in zip(grads, ptgrads))
print("hand-written gradients match autograd:", hand_vs_autograd < 1e-4)
print(type(x_train.g).__name__, hasattr(w1, "g"), hasattr(xt2, "g"))


# refactor: layers as classes
class Relu:
    def __call__(self, inp):
        self.inp = inp
        self.out = inp.clamp_min(0.0)
        return self.out

    def backward(self):
        self.inp.g = (self.inp > 0).float() * self.out.g


class Lin:
    def __init__(self, w, b):
        self.w, self.b = w, b

    def __call__(self, inp):
        self.inp = inp
        self.out = lin(inp, self.w, self.b)
        return self.out

    def backward(self):
        self.inp.g = self.out.g @ self.w.t()
        self.w.g = self.inp.t() @ self.out.g
        self.b.g = self.out.g.sum(0)


class Mse:
    def __call__(self, inp, targ):
        self.inp, self.targ = inp, targ
        self.out = mse(inp, targ)
        return self.out

    def backward(self):
        self.inp.g = 2.0 * (self.inp.squeeze() - self.targ).unsqueeze(-1) / self.targ.shape[0]


class Model:
    def __init__(self, w1, b1, w2, b2):
        self.layers = [Lin(w1, b1), Relu(), Lin(w2, b2)]
        self.loss = Mse()

    def __call__(self, x, targ):
        for layer in self.layers:
            x = layer(x)
        return self.loss(x, targ)

    def backward(self):
        self.loss.backward()
        for layer in reversed(self.layers):
            layer.backward()


model = Model(w1, b1, w2, b2)
loss = model(x_train, y_train)
model.backward()
test_close(w2g, w2.g, eps=0.01)
test_close(b2g, b2.g, eps=0.01)
test_close(w1g, w1.g, eps=0.01)
test_close(b1g, b1.g, eps=0.01)
test_close(ig, x_train.g, eps=0.01)
print("class refactor: gradients unchanged")


# refactor: a Module base with forward and bwd
class Module:
    def __call__(self, *args):
        self.args = args
        self.out = self.forward(*args)
        return self.out

    def forward(self):
        raise Exception("not implemented")

    def backward(self):
        self.bwd(self.out, *self.args)

    def bwd(self):
        raise Exception("not implemented")


class Relu(Module):  # noqa: F811
    def forward(self, inp):
        return inp.clamp_min(0.0)

    def bwd(self, out, inp):
        inp.g = (inp > 0).float() * out.g


class Lin(Module):  # noqa: F811
    def __init__(self, w, b):
        self.w, self.b = w, b

    def forward(self, inp):
        return inp @ self.w + self.b

    def bwd(self, out, inp):
        inp.g = self.out.g @ self.w.t()
        self.w.g = inp.t() @ self.out.g
        self.b.g = self.out.g.sum(0)


class Mse(Module):  # noqa: F811
    def forward(self, inp, targ):
        return (inp.squeeze() - targ).pow(2).mean()

    def bwd(self, out, inp, targ):
        inp.g = 2 * (inp.squeeze() - targ).unsqueeze(-1) / targ.shape[0]


model = Model(w1, b1, w2, b2)
loss = model(x_train, y_train)
model.backward()
test_close(w2g, w2.g, eps=0.01)
test_close(b2g, b2.g, eps=0.01)
test_close(w1g, w1.g, eps=0.01)
test_close(b1g, b1.g, eps=0.01)
test_close(ig, x_train.g, eps=0.01)
print("Module refactor: gradients unchanged")


# autograd: the same model as nn.Modules
class Linear(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.w = torch.randn(n_in, n_out).requires_grad_()
        self.b = torch.zeros(n_out).requires_grad_()

    def forward(self, inp):
        return inp @ self.w + self.b


class Model(nn.Module):  # noqa: F811
    def __init__(self, n_in, nh, n_out):
        super().__init__()
        self.layers = [Linear(n_in, nh), nn.ReLU(), Linear(nh, n_out)]

    def __call__(self, x, targ):
        for layer in self.layers:
            x = layer(x)
        return F.mse_loss(x, targ[:, None])


model = Model(m, nh, 1)
with torch.no_grad():
    model.layers[0].w.copy_(w1)
    model.layers[2].w.copy_(w2)
loss = model(x_train, y_train)
loss.backward()
l0 = model.layers[0]
test_close(w1g, l0.w.grad, eps=0.01)
test_close(b1g, l0.b.grad, eps=0.01)
print(f"nn.Module + F.mse_loss: loss {loss:.3f}, same gradients")

# training by hand: the notebook's minibatch SGD
model = Model(m, nh, 1)
with torch.no_grad():
    for layer in model.layers[::2]:
        layer.w.mul_(math.sqrt(2 / layer.w.shape[0]))
lr, epochs, bs = 0.05, 4, 50
for epoch in range(epochs):
    for i in range(0, n, bs):
        xb, yb = x_train[i:i + bs], y_train[i:i + bs]
        loss = model(xb, yb)
        loss.backward()
        with torch.no_grad():
            for layer in model.layers[::2]:
                layer.w -= layer.w.grad * lr
                layer.b -= layer.b.grad * lr
                layer.w.grad.zero_()
                layer.b.grad.zero_()
    with torch.no_grad():
        valid_loss = model(x_valid, y_valid)
    print(f"epoch {epoch} train {loss.item():.4f} valid {valid_loss.item():.4f}")

print(f"FINAL valid_mse={valid_loss.item():.4f} hand_vs_autograd={hand_vs_autograd:.6f} matmul_diff={matmul_diff:.6f}")
