"""fast.ai course part 2, initialisation and hooks (2019 notebooks 02a_why_sqrt5, 02b_initializing,
05b_early_stopping, 06_cuda_cnn_hooks_init, 07a_lsuv; 2022 miniai learner/activations): init
statistics of a deep ReLU stack with ``torch.randn(...) * 0.1`` against
``torch.randn(...) * math.sqrt(2 / m)``, ``nn.init.kaiming_normal_(w, mode='fan_out')``, the
``gain(a)`` of ``kaiming_uniform_``/``a=math.sqrt(5.)`` checked against ``init.calculate_gain``
and a hand-written ``kaiming2`` by ``x.data.uniform_(-bound, bound)``; then a CNN of
``conv_layer``s with ``GeneralRelu(leak, sub, maxv)`` (``F.leaky_relu(x, self.leak)``,
``x.sub_(self.sub)``, ``x.clamp_max_(self.maxv)``), ``init_cnn`` by ``kaiming_normal_(a=0.1)``,
``Hook``/``Hooks`` classes over ``register_forward_hook`` with ``remove()`` and ``__del__``,
``append_stats`` collecting ``outp.data.mean().cpu()``, ``outp.data.std().cpu()`` and
``outp.data.cpu().histc(40, 0, 10)``, the "dead activation" fraction
``h1[:2].sum(0) / h1.sum(0)``, a ``Learner`` whose callbacks cancel by ``CancelFitException``-style
exceptions, and LSUV initialisation (``m.bias -= h.mean`` through a ``bias`` property over
``GeneralRelu.sub``, ``m.weight.data /= h.std``). Synthetic 16x16 "digits" (a stroke pattern per
class plus noise, made with NumPy) stand in for MNIST.
"""
# ruff: noqa: B007, B020  (the notebooks' own `for i in range(50)` and miniai's `for self.epoch in self.epochs`)

import math
import os
from functools import partial
from operator import attrgetter

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn, optim
from torch.nn import init
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# -- 02b_initializing: why the scale of a random matrix matters
x = torch.randn(200, 100)
for i in range(50):
    x = x @ (torch.randn(100, 100) * 0.01)
print(f"50 layers at 0.01: mean {x.mean().item():.2f}, std {x.std().item():.2f}")


def relu(x):
    return x.clamp_min(0.0)


x = torch.randn(200, 100)
for i in range(50):
    x = relu(x @ (torch.randn(100, 100) * 0.1))
print(f"50 relu layers at 0.1: max {x.abs().max().item():.1e}")
x = torch.randn(200, 100)
for i in range(50):
    x = relu(x @ (torch.randn(100, 100) * math.sqrt(2 / 100)))
print(f"50 relu layers at sqrt(2/m): mean {x.mean().item():.2f} std {x.std().item():.2f}")
kaiming_std = x.std().item()

x = torch.randn(200, 100)
w1 = torch.zeros(100, 50)
b1 = torch.zeros(50)
init.kaiming_normal_(w1, mode="fan_out")
l1 = relu(x @ w1 + b1)
print(f"kaiming_normal_(fan_out) on (100, 50): mean {l1.mean().item():.2f} std {l1.std().item():.2f}")
w1 = torch.zeros(50, 100)
init.kaiming_normal_(w1, mode="fan_out")
l1 = relu(x @ w1.t() + b1)
print(f"kaiming_normal_(fan_out) on (50, 100) transposed: mean {l1.mean().item():.2f} std {l1.std().item():.2f}")

# -- 02a_why_sqrt5
rng = np.random.RandomState(11)
patterns = (rng.rand(10, 16, 16) > 0.75).astype("float32")


def make_data(n):
    labels = rng.randint(0, 10, n)
    images = patterns[labels] + 0.4 * rng.randn(n, 16, 16).astype("float32")
    images = (images - images.mean()) / images.std()
    return torch.tensor(images[:, None].astype("float32")), torch.tensor(labels.astype("int64"))


x_train, y_train = make_data(768)
x_valid, y_valid = make_data(256)
nh = 32


def stats(x):
    return x.mean(), x.std()


l1 = nn.Conv2d(1, nh, 5)
x = x_valid[:100]
print(tuple(l1.weight.shape), f"x stats {x.mean():.2f} {x.std():.2f}")
print(f"conv default init: out std {stats(l1(x))[1]:.2f}")
init.kaiming_normal_(l1.weight, a=1.0)
print(f"kaiming_normal_(a=1): out std {stats(l1(x))[1]:.2f}")


def f1(x, a=0):
    return F.leaky_relu(l1(x), a)


init.kaiming_normal_(l1.weight, a=0)
m, s = stats(f1(x))
print(f"kaiming_normal_(a=0) + relu: mean {m:.2f} std {s:.2f}")
rec_fs = l1.weight[0, 0].numel()
nf, ni, *_ = l1.weight.shape
fan_in = ni * rec_fs
fan_out = nf * rec_fs
print("receptive field", rec_fs, "fan_in", fan_in, "fan_out", fan_out)


def gain(a):
    return math.sqrt(2.0 / (1 + a**2))


for a in (1, 0, 0.01, 0.1, math.sqrt(5.0)):
    assert abs(gain(a) - init.calculate_gain("leaky_relu", a)) < 1e-12
print("gains", [round(gain(a), 4) for a in (1, 0, 0.01, 0.1, math.sqrt(5.0))])
print("calculate_gain", init.calculate_gain("relu"), init.calculate_gain("tanh"), init.calculate_gain("linear"))
u = torch.zeros(10000).uniform_(-1, 1)
print(f"uniform(-1, 1) std {u.std():.2f} vs 1/sqrt(3) {1 / math.sqrt(3.0):.2f}")


def kaiming2(x, a, use_fan_out=False):
    nf, ni, *_ = x.shape
    rec_fs = x[0, 0].shape.numel()
    fan = nf * rec_fs if use_fan_out else ni * rec_fs
    std = gain(a) / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    x.data.uniform_(-bound, bound)


kaiming2(l1.weight, a=0)
m0, s0 = stats(f1(x))
kaiming2(l1.weight, a=math.sqrt(5.0))
m5, s5 = stats(f1(x))
print(f"kaiming2 a=0: std {s0:.2f}; a=sqrt(5): std {s5:.2f} (torch's default)")
init.kaiming_uniform_(l1.weight, a=math.sqrt(5.0))
bound = gain(math.sqrt(5.0)) * math.sqrt(3.0 / fan_in)
print("kaiming_uniform_ within bound:", bool(l1.weight.abs().max() <= bound))


# -- 06_cuda_cnn_hooks_init: GeneralRelu, conv_layer, Hooks
class Lambda(nn.Module):
    def __init__(self, func):
        super().__init__()
        self.func = func

    def forward(self, x):
        return self.func(x)


def flatten(x):
    return x.view(x.shape[0], -1)


class GeneralRelu(nn.Module):
    def __init__(self, leak=None, sub=None, maxv=None):
        super().__init__()
        self.leak, self.sub, self.maxv = leak, sub, maxv

    def forward(self, x):
        x = F.leaky_relu(x, self.leak) if self.leak is not None else F.relu(x)
        if self.sub is not None:
            x.sub_(self.sub)
        if self.maxv is not None:
            x.clamp_max_(self.maxv)
        return x


def conv_layer(ni, nf, ks=3, stride=2, **kwargs):
    return nn.Sequential(nn.Conv2d(ni, nf, ks, padding=ks // 2, stride=stride), GeneralRelu(**kwargs))


def get_cnn_layers(nfs, layer, **kwargs):
    nfs = [1] + nfs
    return [layer(nfs[i], nfs[i + 1], 5 if i == 0 else 3, **kwargs) for i in range(len(nfs) - 1)] + [
        nn.AdaptiveAvgPool2d(1), Lambda(flatten), nn.Linear(nfs[-1], 10)]


def get_cnn_model(nfs, layer, **kwargs):
    return nn.Sequential(*get_cnn_layers(nfs, layer, **kwargs))


def init_cnn(m, uniform=False):
    f = init.kaiming_uniform_ if uniform else init.kaiming_normal_
    for layer in m:
        if isinstance(layer, nn.Sequential):
            f(layer[0].weight, a=0.1)
            layer[0].bias.data.zero_()


class Hook:
    def __init__(self, m, f):
        self.hook = m.register_forward_hook(partial(f, self))

    def remove(self):
        self.hook.remove()

    def __del__(self):
        self.remove()


def append_stats(hook, mod, inp, outp):
    if not hasattr(hook, "stats"):
        hook.stats = ([], [], [])
    means, stds, hists = hook.stats
    means.append(outp.data.mean().cpu())
    stds.append(outp.data.std().cpu())
    hists.append(outp.data.cpu().histc(40, 0, 10))


class ListContainer:
    def __init__(self, items):
        self.items = list(items)

    def __getitem__(self, idx):
        return self.items[idx]

    def __len__(self):
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __setitem__(self, i, o):
        self.items[i] = o

    def __delitem__(self, i):
        del self.items[i]

    def __repr__(self):
        return f"{self.__class__.__name__} ({len(self)} items)"


class Hooks(ListContainer):
    def __init__(self, ms, f):
        super().__init__([Hook(m, f) for m in ms])

    def __enter__(self, *args):
        return self

    def __exit__(self, *args):
        self.remove()

    def __del__(self):
        self.remove()

    def __delitem__(self, i):
        self[i].remove()
        super().__delitem__(i)

    def remove(self):
        for h in self:
            h.remove()


def get_hist(h):
    return torch.stack(h.stats[2]).t().float().log1p()


def get_min(h):
    h1 = torch.stack(h.stats[2]).t().float()
    return h1[:2].sum(0) / h1.sum(0)


# -- the miniai Learner with callbacks and cancel exceptions
class CancelFitException(Exception):
    pass


class CancelBatchException(Exception):
    pass


class CancelEpochException(Exception):
    pass


class Callback:
    order = 0


def run_cbs(cbs, method_nm, learn=None):
    for cb in sorted(cbs, key=attrgetter("order")):
        method = getattr(cb, method_nm, None)
        if method is not None:
            method(learn)


class with_cbs:
    def __init__(self, nm):
        self.nm = nm

    def __call__(self, f):
        def _f(o, *args, **kwargs):
            try:
                o.callback(f"before_{self.nm}")
                f(o, *args, **kwargs)
                o.callback(f"after_{self.nm}")
            except globals()[f"Cancel{self.nm.title()}Exception"]:
                pass
            finally:
                o.callback(f"cleanup_{self.nm}")
        return _f


class Learner:
    def __init__(self, model, dls, loss_func=F.cross_entropy, lr=0.1, cbs=None, opt_func=optim.SGD):
        self.model, self.dls, self.loss_func, self.lr, self.opt_func = model, dls, loss_func, lr, opt_func
        self.cbs = list(cbs or [])

    @with_cbs("batch")
    def _one_batch(self):
        self.preds = self.model(self.batch[0])
        self.loss = self.loss_func(self.preds, self.batch[1])
        self.callback("after_loss")
        if self.training:
            self.loss.backward()
            self.opt.step()
            self.opt.zero_grad()

    @with_cbs("epoch")
    def _one_epoch(self):
        for self.iter, self.batch in enumerate(self.dl):
            self._one_batch()

    def one_epoch(self, training):
        self.model.train(training)
        self.dl = self.dls[0] if training else self.dls[1]
        self._one_epoch()

    @with_cbs("fit")
    def _fit(self, train, valid):
        for self.epoch in self.epochs:
            if train:
                self.one_epoch(True)
            if valid:
                torch.no_grad()(self.one_epoch)(False)

    def fit(self, n_epochs=1, train=True, valid=True):
        self.n_epochs = n_epochs
        self.epochs = range(n_epochs)
        self.opt = self.opt_func(self.model.parameters(), self.lr)
        self._fit(train, valid)

    def __getattr__(self, name):
        if name in ("before_fit", "before_epoch", "after_epoch", "after_fit"):
            return partial(self.callback, name)
        raise AttributeError(name)

    def callback(self, method_nm):
        run_cbs(self.cbs, method_nm, self)

    @property
    def training(self):
        return self.model.training


class MetricsCB(Callback):
    def before_epoch(self, learn):
        self.losses, self.correct, self.count = [], 0, 0

    def after_loss(self, learn):
        n = len(learn.batch[1])
        self.losses.append(learn.loss.item() * n)
        self.correct += (learn.preds.argmax(dim=1) == learn.batch[1]).float().sum().item()
        self.count += n

    def after_epoch(self, learn):
        learn.last = (sum(self.losses) / self.count, self.correct / self.count)
        print(f"epoch {learn.epoch} {'train' if learn.training else 'eval'} "
              f"loss {learn.last[0]:.3f} accuracy {learn.last[1]:.3f}")


class SingleBatchCB(Callback):
    order = 1

    def after_batch(self, learn):
        raise CancelFitException()


class CountCB(Callback):
    def before_fit(self, learn):
        self.batches, self.cleanups = 0, 0

    def after_batch(self, learn):
        self.batches += 1

    def cleanup_fit(self, learn):
        self.cleanups += 1


train_dl = DataLoader(TensorDataset(x_train, y_train), batch_size=64, shuffle=True)
valid_dl = DataLoader(TensorDataset(x_valid, y_valid), batch_size=128)
dls = (train_dl, valid_dl)
nfs = [8, 16, 32]

# one batch and stop: CancelFitException ends fit quietly, cleanup_fit still runs
count = CountCB()
model = get_cnn_model(nfs, conv_layer)
learn = Learner(model, dls, cbs=[count, SingleBatchCB()])
learn.fit(1)
print("single batch:", count.batches, "batch,", count.cleanups, "cleanup")

# the plain ReLU CNN with torch's default init, stats by hooks
model = get_cnn_model(nfs, conv_layer)
metrics = MetricsCB()
learn = Learner(model, dls, lr=0.4, cbs=[metrics])
with Hooks(model[:3], append_stats) as hooks:
    learn.fit(1)
    means = [torch.stack(h.stats[0]) for h in hooks]
    print("hooks", hooks, "batches seen", [len(m) for m in means])
    default_min = [get_min(h)[-3:].mean().item() for h in hooks]
print("after the with-block:", len(model[0]._forward_hooks), "forward hooks left")

# GeneralRelu(leak=0.1, sub=0.4, maxv=6.) + kaiming init: the 06 notebook's fix
torch.manual_seed(seed + 1)
model = get_cnn_model(nfs, conv_layer, leak=0.1, sub=0.4, maxv=6.0)
init_cnn(model)
for layer in model[:3]:
    print(f"{layer[0]}: weight std {layer[0].weight.std():.2f} bias sum {layer[0].bias.sum():.1f}")
learn = Learner(model, dls, lr=0.4, cbs=[metrics])
with Hooks(model[:3], append_stats) as hooks:
    learn.fit(2)
    hists = [get_hist(h) for h in hooks]
    print("histogram shapes", [tuple(hh.shape) for hh in hists])
    general_min = [get_min(h)[-3:].mean().item() for h in hooks]
    stds = [torch.stack(h.stats[1]) for h in hooks]
    print(f"first layer std, first batch {stds[0][0]:.2f}, last {stds[0][-1]:.2f}")
print("near-zero fraction, relu:", [f"{v:.2f}" for v in default_min])
print("near-zero fraction, GeneralRelu:", [f"{v:.2f}" for v in general_min])
abs_hist = model[0](x_valid[:64]).abs().histc(40, 0, 10)
print("abs histc total", int(abs_hist.sum().item()), "of", 64 * 8 * 8 * 8)
general_acc = learn.last[1]


# -- 07a_lsuv: a ConvLayer whose bias is GeneralRelu's sub
class ConvLayer(nn.Module):
    def __init__(self, ni, nf, ks=3, stride=2, sub=0.0, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(ni, nf, ks, padding=ks // 2, stride=stride, bias=True)
        self.relu = GeneralRelu(sub=sub, **kwargs)

    def forward(self, x):
        return self.relu(self.conv(x))

    @property
    def bias(self):
        return -self.relu.sub

    @bias.setter
    def bias(self, v):
        self.relu.sub = -v

    @property
    def weight(self):
        return self.conv.weight


torch.manual_seed(seed + 2)
model = get_cnn_model(nfs, ConvLayer, leak=0.1, maxv=6.0)
mods = [m for m in model.modules() if isinstance(m, ConvLayer)]
xb = next(iter(train_dl))[0]


def append_stat(hook, mod, inp, outp):
    d = outp.data
    hook.mean, hook.std = d.mean().item(), d.std().item()


def lsuv_module(m, xb):
    h = Hook(m, append_stat)
    while model(xb) is not None and abs(h.mean) > 1e-3:
        m.bias -= h.mean
    while model(xb) is not None and abs(h.std - 1) > 1e-3:
        m.weight.data /= h.std
    h.remove()
    return h.mean, h.std


with torch.no_grad():
    before = []
    for m in mods:
        h = Hook(m, append_stat)
        model(xb)
        before.append((h.mean, h.std))
        h.remove()
    after = [lsuv_module(m, xb) for m in mods]
print("before lsuv:", [f"{m_:.2f} {s_:.2f}" for m_, s_ in before])
print("after lsuv:", [f"{m_:.2f} {s_:.2f}" for m_, s_ in after])
lsuv_ok = all(abs(s_ - 1) <= 1e-3 for _, s_ in after)
print("lsuv reached unit std:", lsuv_ok)
learn = Learner(model, dls, lr=0.4, cbs=[metrics])
learn.fit(2)
lsuv_acc = learn.last[1]

print(f"FINAL kaiming_std={kaiming_std:.4f} general_acc={general_acc:.4f} lsuv_acc={lsuv_acc:.4f} "
      f"relu_min={sum(default_min) / 3:.4f} general_min={sum(general_min) / 3:.4f}")
