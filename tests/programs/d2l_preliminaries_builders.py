"""Dive into Deep Learning (d2l.ai, PyTorch edition), chapter 2 (preliminaries) and chapter 5 (the
builders' guide) as a student types them: tensor creation, arithmetic, ``torch.cat``, broadcasting,
indexing and slicing assignments, ``id(Y)`` before and after ``Y = Y + X`` and ``Z[:] = X + Y``, the
NumPy round trip and ``a.item(), float(a), int(a)``; pandas preprocessing (``pd.read_csv``,
``fillna(inputs.mean(numeric_only=True))``, ``pd.get_dummies(dummy_na=True)``,
``torch.tensor(inputs.to_numpy(dtype=float))``); linear algebra (``A.T``, ``A.sum(axis=[0, 1])``,
``A.sum(axis=1, keepdims=True)``, ``A.cumsum(axis=0)``, ``torch.dot``/``mv``/``mm``/``norm``);
autograd (``requires_grad_(True)``, ``x.grad.zero_()``, ``detach``, Python control flow); probability
(``multinomial.Multinomial(10, fair_probs).sample((500,))``, ``cumsum``, ``sum(dim=1, keepdims=True)``);
then layers and blocks (``MySequential`` filling ``self._modules[str(idx)]``, ``FixedHiddenMLP`` with a
``while X.abs().sum() > 1`` loop, ``NestMLP``), parameter access (``net[2].state_dict()``,
``named_parameters``, ``net.state_dict()['2.bias'].data``, ``add_module(f'block {i}', ...)``),
initialisation (``nn.init.normal_``/``zeros_``/``constant_``/``xavier_uniform_``/``uniform_``,
``m.weight.data *= m.weight.data.abs() >= 5``), tied layers, ``nn.LazyLinear``, custom layers,
file I/O (``torch.save`` of a tensor, a list and a dict, a ``state_dict`` loaded into a clone) and the
``try_gpu``/``try_all_gpus`` helpers on a CPU machine.
"""
# ruff: noqa: E721, E731, B007  (the book's own code: `type(m) == nn.Linear`, `f = lambda ...`,
# `for i in range(4)` with i unused)

import os

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.distributions import multinomial
from torch.nn import functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# ---------------------------------------------------------------- 2.1 data manipulation
x = torch.arange(12)
print(x, x.shape, x.numel())
X = x.reshape(3, 4)
print(X)
print(torch.zeros((2, 3, 4)).shape, torch.ones((2, 3, 4)).dtype, torch.randn(3, 4).shape)
print(torch.tensor([[2, 1, 4, 3], [1, 2, 3, 4], [4, 3, 2, 1]]))
x = torch.tensor([1.0, 2, 4, 8])
y = torch.tensor([2, 2, 2, 2])
print(x + y, x - y, x * y, x / y, x ** y)
print(torch.exp(x))
X = torch.arange(12, dtype=torch.float32).reshape((3, 4))
Y = torch.tensor([[2.0, 1, 4, 3], [1, 2, 3, 4], [4, 3, 2, 1]])
print(torch.cat((X, Y), dim=0), torch.cat((X, Y), dim=1))
print(X == Y)
print(X.sum())
a = torch.arange(3).reshape((3, 1))
b = torch.arange(2).reshape((1, 2))
print(a + b)
print(X[-1], X[1:3])
X[1, 2] = 9
X[0:2, :] = 12
print(X)
before = id(Y)
Y = Y + X
print(id(Y) == before)
Z = torch.zeros_like(Y)
before = id(Z)
Z[:] = X + Y
print(id(Z) == before)
before = id(X)
X += Y
print(id(X) == before)
A = X.numpy()
B = torch.tensor(A)
print(type(A).__name__, type(B).__name__)
a = torch.tensor([3.5])
print(a, a.item(), float(a), int(a))

# ---------------------------------------------------------------- 2.2 data preprocessing
os.makedirs(os.path.join('.', 'data'), exist_ok=True)
data_file = os.path.join('.', 'data', 'house_tiny.csv')
with open(data_file, 'w') as f:
    f.write('NumRooms,Alley,Price\n')  # column names
    f.write('NA,Pave,127500\n')  # each row is one example
    f.write('2,NA,106000\n')
    f.write('4,NA,178100\n')
    f.write('NA,NA,140000\n')
data = pd.read_csv(data_file)
print(data.shape)
inputs, outputs = data.iloc[:, 0:2], data.iloc[:, 2]
inputs = inputs.fillna(inputs.mean(numeric_only=True))
inputs = pd.get_dummies(inputs, dummy_na=True)
print(list(inputs.columns))
X = torch.tensor(inputs.to_numpy(dtype=float))
y = torch.tensor(outputs.to_numpy(dtype=float))
print(X, y)

# ---------------------------------------------------------------- 2.3 linear algebra
x = torch.tensor(3.0)
y = torch.tensor(2.0)
print(x + y, x * y, x / y, x**y)
x = torch.arange(4)
print(x, x[3], len(x), x.shape)
A = torch.arange(20).reshape(5, 4)
print(A.T.shape)
B = torch.tensor([[1, 2, 3], [2, 0, 4], [3, 4, 5]])
print(B == B.T)
X = torch.arange(24).reshape(2, 3, 4)
print(X.shape)
A = torch.arange(20, dtype=torch.float32).reshape(5, 4)
B = A.clone()  # a new copy of A in new memory
print(A + B)
print(A * B)
a = 2
X = torch.arange(24).reshape(2, 3, 4)
print((a + X).shape, (a * X).shape)
x = torch.arange(4, dtype=torch.float32)
print(x, x.sum())
print(A.shape, A.sum())
A_sum_axis0 = A.sum(axis=0)
print(A_sum_axis0, A_sum_axis0.shape)
A_sum_axis1 = A.sum(axis=1)
print(A_sum_axis1, A_sum_axis1.shape)
print(A.sum(axis=[0, 1]))
print(A.mean(), A.sum() / A.numel())
print(A.mean(axis=0), A.sum(axis=0) / A.shape[0])
sum_A = A.sum(axis=1, keepdims=True)
print(sum_A)
print(A / sum_A)
print(A.cumsum(axis=0))
y = torch.ones(4, dtype=torch.float32)
print(x, y, torch.dot(x, y))
print(torch.sum(x * y))
print(A.shape, x.shape, torch.mv(A, x))
B = torch.ones(4, 3)
print(torch.mm(A, B))
u = torch.tensor([3.0, -4.0])
print(torch.norm(u))
print(torch.abs(u).sum())
print(torch.norm(torch.ones((4, 9))))

# ---------------------------------------------------------------- 2.5 automatic differentiation
x = torch.arange(4.0)
x.requires_grad_(True)  # the same as x = torch.arange(4.0, requires_grad=True)
print(x.grad)  # None by default
y = 2 * torch.dot(x, x)
print(y)
y.backward()
print(x.grad)
print(x.grad == 4 * x)
# PyTorch accumulates gradients: clear the previous ones
x.grad.zero_()
y = x.sum()
y.backward()
print(x.grad)
x.grad.zero_()
y = x * x
# the same as y.backward(torch.ones(len(x)))
y.sum().backward()
print(x.grad)
x.grad.zero_()
y = x * x
u = y.detach()
z = u * x
z.sum().backward()
print(x.grad == u)
x.grad.zero_()
y.sum().backward()
print(x.grad == 2 * x)


def f(a):
    b = a * 2
    while b.norm() < 1000:
        b = b * 2
    if b.sum() > 0:
        c = b
    else:
        c = 100 * b
    return c


a = torch.randn(size=(), requires_grad=True)
d = f(a)
d.backward()
# the book prints a.grad == d / a: exact when a > 0; a negative a takes the `100 * b` branch, whose
# rounding can make d / a differ from the gradient in the last bit
print(torch.isclose(a.grad, d / a))
control_flow_ratio = float(a.grad * a / d)

# ---------------------------------------------------------------- 2.6 probability
fair_probs = torch.ones([6]) / 6
print(multinomial.Multinomial(1, fair_probs).sample().sum())
print(multinomial.Multinomial(10, fair_probs).sample().sum())
counts = multinomial.Multinomial(1000, fair_probs).sample()
print((counts / 1000).shape, float((counts / 1000).sum()))
counts = multinomial.Multinomial(10, fair_probs).sample((500,))
cum_counts = counts.cumsum(dim=0)
estimates = cum_counts / cum_counts.sum(dim=1, keepdims=True)
print(estimates.shape, f'{float(estimates[-1].sum()):.4f}')
die_error = float((estimates[-1] - fair_probs).abs().max())

# ---------------------------------------------------------------- 5.1 layers and blocks
net = nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10))
X = torch.rand(2, 20)
print(net(X).shape)


class MLP(nn.Module):
    # the layers with model parameters: two fully connected layers
    def __init__(self):
        # the parent class Module's constructor does the necessary initialisation
        super().__init__()
        self.hidden = nn.Linear(20, 256)  # hidden layer
        self.out = nn.Linear(256, 10)  # output layer

    # the forward propagation: the output for the input X
    def forward(self, X):
        # ReLU's functional version, from the nn.functional module
        return self.out(F.relu(self.hidden(X)))


net = MLP()
print(net(X).shape)


class MySequential(nn.Module):
    def __init__(self, *args):
        super().__init__()
        for idx, module in enumerate(args):
            # module is an instance of a Module subclass; _modules holds it, ordered
            self._modules[str(idx)] = module

    def forward(self, X):
        # an OrderedDict keeps the members in the order they were added
        for block in self._modules.values():
            X = block(X)
        return X


net = MySequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10))
print(net(X).shape, [name for name, _ in net.named_parameters()])


class FixedHiddenMLP(nn.Module):
    def __init__(self):
        super().__init__()
        # constant parameters that get no gradient: they stay fixed during training
        self.rand_weight = torch.rand((20, 20), requires_grad=False)
        self.linear = nn.Linear(20, 20)

    def forward(self, X):
        X = self.linear(X)
        # the constant parameters and the relu and mm functions
        X = F.relu(torch.mm(X, self.rand_weight) + 1)
        # reuse the fully connected layer: the two share parameters
        X = self.linear(X)
        # control flow
        while X.abs().sum() > 1:
            X /= 2
        return X.sum()


net = FixedHiddenMLP()
fixed_hidden = float(net(X))
print(net(X).shape)


class NestMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(20, 64), nn.ReLU(),
                                 nn.Linear(64, 32), nn.ReLU())
        self.linear = nn.Linear(32, 16)

    def forward(self, X):
        return self.linear(self.net(X))


chimera = nn.Sequential(NestMLP(), nn.Linear(16, 20), FixedHiddenMLP())
print(chimera(X).shape)

# ---------------------------------------------------------------- 5.2 parameter management
net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
X = torch.rand(size=(2, 4))
print(net(X).shape)
print(list(net[2].state_dict().keys()))
print(type(net[2].bias).__name__)
print(net[2].bias.shape)
print(net[2].bias.data.shape)
print(net[2].weight.grad is None)
print(*[(name, param.shape) for name, param in net[0].named_parameters()])
print(*[(name, param.shape) for name, param in net.named_parameters()])
print(net.state_dict()['2.bias'].data.shape)


def block1():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(),
                         nn.Linear(8, 4), nn.ReLU())


def block2():
    net = nn.Sequential()
    for i in range(4):
        # nest the blocks here
        net.add_module(f'block {i}', block1())
    return net


rgnet = nn.Sequential(block2(), nn.Linear(4, 1))
print(rgnet(X).shape)
print(rgnet)
print(rgnet[0][1][0].bias.data.shape)


def init_normal(m):
    if type(m) == nn.Linear:
        nn.init.normal_(m.weight, mean=0, std=0.01)
        nn.init.zeros_(m.bias)


net.apply(init_normal)
print(net[0].weight.data[0].shape, net[0].bias.data[0])


def init_constant(m):
    if type(m) == nn.Linear:
        nn.init.constant_(m.weight, 1)
        nn.init.zeros_(m.bias)


net.apply(init_constant)
print(net[0].weight.data[0], net[0].bias.data[0])


def init_xavier(m):
    if type(m) == nn.Linear:
        nn.init.xavier_uniform_(m.weight)


def init_42(m):
    if type(m) == nn.Linear:
        nn.init.constant_(m.weight, 42)


net[0].apply(init_xavier)
net[2].apply(init_42)
print(bool(net[0].weight.data.abs().max() <= (6 / 12) ** 0.5))
print(net[2].weight.data)


def my_init(m):
    if type(m) == nn.Linear:
        print("Init", *[(name, param.shape)
                        for name, param in m.named_parameters()][0])
        nn.init.uniform_(m.weight, -10, 10)
        m.weight.data *= m.weight.data.abs() >= 5


net.apply(my_init)
print(bool(((net[0].weight == 0) | (net[0].weight.abs() >= 5)).all()))
net[0].weight.data[:] += 1
net[0].weight.data[0, 0] = 42
print(net[0].weight.data[0, 0])

# parameters are shared: give the shared layer a name to refer to it
shared = nn.Linear(8, 8)
net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(),
                    shared, nn.ReLU(),
                    shared, nn.ReLU(),
                    nn.Linear(8, 1))
net(X)
# check that the parameters are the same
print(net[2].weight.data[0] == net[4].weight.data[0])
net[2].weight.data[0, 0] = 100
# the same object, not merely equal values
print(net[2].weight.data[0] == net[4].weight.data[0])
print(len(list(net.parameters())))

# ---------------------------------------------------------------- 5.3 lazy initialisation
net = nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))
print(type(net[0].weight).__name__)
net(torch.rand(2, 20))
print(net[0].weight.shape, net)
lazy_out = float(net(torch.ones(2, 20)).abs().mean())

# ---------------------------------------------------------------- 5.4 custom layers


class CenteredLayer(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, X):
        return X - X.mean()


layer = CenteredLayer()
print(layer(torch.FloatTensor([1, 2, 3, 4, 5])))
net = nn.Sequential(nn.Linear(8, 128), CenteredLayer())
Y = net(torch.rand(4, 8))
print(bool(Y.mean().abs() < 1e-6))


class MyLinear(nn.Module):
    def __init__(self, in_units, units):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_units, units))
        self.bias = nn.Parameter(torch.randn(units,))

    def forward(self, X):
        linear = torch.matmul(X, self.weight.data) + self.bias.data
        return F.relu(linear)


linear = MyLinear(5, 3)
print(linear.weight.shape)
print(bool((linear(torch.rand(2, 5)) >= 0).all()))
net = nn.Sequential(MyLinear(64, 8), MyLinear(8, 1))
print(net(torch.rand(2, 64)).shape)

# ---------------------------------------------------------------- 5.5 file I/O
x = torch.arange(4)
torch.save(x, 'x-file')
x2 = torch.load('x-file')
print(x2)
y = torch.zeros(4)
torch.save([x, y], 'x-files')
x2, y2 = torch.load('x-files')
print(x2, y2)
mydict = {'x': x, 'y': y}
torch.save(mydict, 'mydict')
mydict2 = torch.load('mydict')
print(mydict2)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(20, 256)
        self.output = nn.Linear(256, 10)

    def forward(self, x):
        return self.output(F.relu(self.hidden(x)))


net = MLP()
X = torch.randn(size=(2, 20))
Y = net(X)
torch.save(net.state_dict(), 'mlp.params')
clone = MLP()
print(clone.load_state_dict(torch.load('mlp.params')))
print(clone.eval())
Y_clone = clone(X)
print(Y_clone == Y)

# ---------------------------------------------------------------- 5.6 GPUs (on a CPU machine)
print(torch.device('cpu'), torch.device('cuda'), torch.device('cuda:1'))
print(torch.cuda.device_count())


def try_gpu(i=0):
    """gpu(i) if it exists, else cpu()."""
    if torch.cuda.device_count() >= i + 1:
        return torch.device(f'cuda:{i}')
    return torch.device('cpu')


def try_all_gpus():
    """All available GPUs, or [cpu(),] without one."""
    devices = [torch.device(f'cuda:{i}')
               for i in range(torch.cuda.device_count())]
    return devices if devices else [torch.device('cpu')]


print(try_gpu(), try_gpu(10), try_all_gpus())
x = torch.tensor([1, 2, 3])
print(x.device)
X = torch.ones(2, 3, device=try_gpu())
print(X)
net = nn.Sequential(nn.Linear(3, 1))
net = net.to(device=try_gpu())
print(net(X).shape, net[0].weight.data.device)
print(np.asarray(net(X).detach()).shape)

print(f"FINAL control_flow_ratio={control_flow_ratio:.4f} die_error={die_error:.4f} "
      f"fixed_hidden={fixed_hidden:.4f} lazy_out={lazy_out:.4f}")
