"""LSTNet (Lai et al., SIGIR 2018) in the layout of laiguokun/LSTNet, on a synthetic multivariate series
with a "daily" and a "weekly" period.

The repo's pieces, at tiny sizes: ``Data_utility`` scales every column by its max absolute value
(``normalize = 2``), splits by ``range(P + h - 1, train)`` index sets, ``_batchify``-es windows into
``torch.zeros((n, P, m))`` by ``torch.from_numpy`` slices and yields batches through ``torch.randperm`` /
``torch.LongTensor(range(length))``; ``normal_std`` and ``rae`` of the scaled test targets normalise the
metrics. The ``Model``: ``nn.Conv2d(1, hidC, kernel_size=(Ck, m))`` over ``x.view(-1, 1, P, m)``,
``torch.squeeze(c, 3)``, ``nn.GRU`` over ``c.permute(2, 0, 1).contiguous()``, the skip-GRU over
``s.view(batch_size, hidC, pt, skip)`` permuted ``(2, 0, 3, 1)`` into ``view(pt, batch_size * skip, hidC)``,
the highway autoregressive part ``x[:, -hw:, :].permute(0, 2, 1).contiguous().view(-1, hw)``, and
``output_fun`` sigmoid / tanh / None. The ``Optim`` wrapper builds ``torch.optim`` from a method name and
clips with ``clip_grad_norm_`` (its returned norm must equal the repo's older hand-written
``math.pow(param.grad.data.norm(), 2)`` sum). Training uses ``nn.L1Loss(reduction='sum')`` on rescaled
outputs; ``evaluate`` reports RSE, RAE and CORR (by column, ``sigma_g != 0`` masking, in NumPy) as the
repo does, and RSE again in the later ports' tensor form ``(predict - Ytest).pow(2).sum() / normalize``.

Checked: LSTNet's test RSE against a last-value baseline; the two RSE routes and the two grad-norm routes
agree; the skip-GRU's permute/view layout equals gathering every ``skip``-th conv step by hand.
"""

# ruff: noqa: UP004, UP008, UP031, UP032, B020  (the repo's own spelling: class Data_utility(object), super(Model, self), % and .format strings, `for X, Y in data.get_batches(X, Y, ...)`)

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

# ---- synthetic "electricity": 6 meters, daily period 7 steps, weekly period 49 steps ----------------
T_STEPS, M = 420, 6
t = np.arange(T_STEPS)
phase = np.random.uniform(0, 2 * np.pi, size=M)
level = np.random.uniform(2.0, 6.0, size=M)
daily = np.sin(2 * np.pi * t[:, None] / 7 + phase[None, :])
weekly = 0.6 * np.sin(2 * np.pi * t[:, None] / 49 + phase[None, ::-1])
rawdat = level[None, :] * (1.2 + daily + weekly) + 0.15 * np.random.randn(T_STEPS, M)


def normal_std(x):
    return x.std() * np.sqrt((len(x) - 1.0) / (len(x)))


class Data_utility(object):
    # train and valid is the ratio of training set and validation set. test = 1 - train - valid
    def __init__(self, rawdat, train, valid, horizon, window, normalize=2):
        self.P = window
        self.h = horizon
        self.rawdat = rawdat
        self.dat = np.zeros(self.rawdat.shape)
        self.n, self.m = self.dat.shape
        self.normalize = 2
        self.scale = np.ones(self.m)
        self._normalized(normalize)
        self._split(int(train * self.n), int((train + valid) * self.n), self.n)

        self.scale = torch.from_numpy(self.scale).float()
        tmp = self.test[1] * self.scale.expand(self.test[1].size(0), self.m)

        self.rse = normal_std(tmp)
        self.rae = torch.mean(torch.abs(tmp - torch.mean(tmp)))

    def _normalized(self, normalize):
        # normalized by the maximum value of each row(sensor).
        if normalize == 2:
            for i in range(self.m):
                self.scale[i] = np.max(np.abs(self.rawdat[:, i]))
                self.dat[:, i] = self.rawdat[:, i] / np.max(np.abs(self.rawdat[:, i]))

    def _split(self, train, valid, test):
        train_set = range(self.P + self.h - 1, train)
        valid_set = range(train, valid)
        test_set = range(valid, self.n)
        self.train = self._batchify(train_set, self.h)
        self.valid = self._batchify(valid_set, self.h)
        self.test = self._batchify(test_set, self.h)

    def _batchify(self, idx_set, horizon):
        n = len(idx_set)
        X = torch.zeros((n, self.P, self.m))
        Y = torch.zeros((n, self.m))
        for i in range(n):
            end = idx_set[i] - self.h + 1
            start = end - self.P
            X[i, :, :] = torch.from_numpy(self.dat[start:end, :])
            Y[i, :] = torch.from_numpy(self.dat[idx_set[i], :])
        return [X, Y]

    def get_batches(self, inputs, targets, batch_size, shuffle=True):
        length = len(inputs)
        if shuffle:
            index = torch.randperm(length)
        else:
            index = torch.LongTensor(range(length))
        start_idx = 0
        while start_idx < length:
            end_idx = min(length, start_idx + batch_size)
            excerpt = index[start_idx:end_idx]
            X = inputs[excerpt]
            Y = targets[excerpt]
            yield X, Y
            start_idx += batch_size


class Args(object):
    window = 28
    horizon = 3
    hidRNN = 16
    hidCNN = 12
    hidSkip = 4
    CNN_kernel = 4
    skip = 7
    highway_window = 7
    dropout = 0.1
    output_fun = "sigmoid"
    optim = "adam"
    lr = 0.005
    clip = 10.0
    batch_size = 32
    epochs = 25


class Model(nn.Module):
    def __init__(self, args, data):
        super(Model, self).__init__()
        self.P = args.window
        self.m = data.m
        self.hidR = args.hidRNN
        self.hidC = args.hidCNN
        self.hidS = args.hidSkip
        self.Ck = args.CNN_kernel
        self.skip = args.skip
        self.pt = int((self.P - self.Ck) / self.skip)
        self.hw = args.highway_window
        self.conv1 = nn.Conv2d(1, self.hidC, kernel_size=(self.Ck, self.m))
        self.GRU1 = nn.GRU(self.hidC, self.hidR)
        self.dropout = nn.Dropout(p=args.dropout)
        if self.skip > 0:
            self.GRUskip = nn.GRU(self.hidC, self.hidS)
            self.linear1 = nn.Linear(self.hidR + self.skip * self.hidS, self.m)
        else:
            self.linear1 = nn.Linear(self.hidR, self.m)
        if self.hw > 0:
            self.highway = nn.Linear(self.hw, 1)
        self.output = None
        if args.output_fun == "sigmoid":
            self.output = F.sigmoid
        if args.output_fun == "tanh":
            self.output = F.tanh

    def skip_input(self, c, batch_size):
        s = c[:, :, int(-self.pt * self.skip) :].contiguous()
        s = s.view(batch_size, self.hidC, self.pt, self.skip)
        s = s.permute(2, 0, 3, 1).contiguous()
        return s.view(self.pt, batch_size * self.skip, self.hidC)

    def forward(self, x):
        batch_size = x.size(0)

        # CNN
        c = x.view(-1, 1, self.P, self.m)
        c = F.relu(self.conv1(c))
        c = self.dropout(c)
        c = torch.squeeze(c, 3)

        # RNN
        r = c.permute(2, 0, 1).contiguous()
        _, r = self.GRU1(r)
        r = self.dropout(torch.squeeze(r, 0))

        # skip-rnn
        if self.skip > 0:
            s = self.skip_input(c, batch_size)
            _, s = self.GRUskip(s)
            s = s.view(batch_size, self.skip * self.hidS)
            s = self.dropout(s)
            r = torch.cat((r, s), 1)

        res = self.linear1(r)

        # highway
        if self.hw > 0:
            z = x[:, -self.hw :, :]
            z = z.permute(0, 2, 1).contiguous().view(-1, self.hw)
            z = self.highway(z)
            z = z.view(-1, self.m)
            res = res + z

        if self.output:
            res = self.output(res)
        return res


class Optim(object):
    def _makeOptimizer(self):
        if self.method == "sgd":
            self.optimizer = torch.optim.SGD(self.params, lr=self.lr)
        elif self.method == "adagrad":
            self.optimizer = torch.optim.Adagrad(self.params, lr=self.lr)
        elif self.method == "adadelta":
            self.optimizer = torch.optim.Adadelta(self.params, lr=self.lr)
        elif self.method == "adam":
            self.optimizer = torch.optim.Adam(self.params, lr=self.lr)
        else:
            raise RuntimeError("Invalid optim method: " + self.method)

    def __init__(self, params, method, lr, max_grad_norm, lr_decay=1, start_decay_at=None):
        self.params = list(params)  # careful: params may be a generator
        self.last_ppl = None
        self.lr = lr
        self.max_grad_norm = max_grad_norm
        self.method = method
        self.lr_decay = lr_decay
        self.start_decay_at = start_decay_at
        self.start_decay = False
        self._makeOptimizer()

    def step(self):
        # the repo's first version: the global norm by hand
        grad_norm = 0
        for param in self.params:
            grad_norm += math.pow(param.grad.data.norm(), 2)
        grad_norm = math.sqrt(grad_norm)
        total = torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
        self.optimizer.step()
        return grad_norm, float(total)

    # decay learning rate if val perf does not improve or we hit the start_decay_at limit
    def updateLearningRate(self, ppl, epoch):
        if self.start_decay_at is not None and epoch >= self.start_decay_at:
            self.start_decay = True
        if self.last_ppl is not None and ppl > self.last_ppl:
            self.start_decay = True
        if self.start_decay:
            self.lr = self.lr * self.lr_decay
            print("Decaying learning rate to %g" % self.lr)
        self.last_ppl = ppl
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr


def evaluate(data, X, Y, model, evaluateL2, evaluateL1, batch_size):
    model.eval()
    total_loss = 0
    total_loss_l1 = 0
    n_samples = 0
    predict = None
    test = None

    with torch.no_grad():
        for X, Y in data.get_batches(X, Y, batch_size, False):
            output = model(X)
            if predict is None:
                predict = output
                test = Y
            else:
                predict = torch.cat((predict, output))
                test = torch.cat((test, Y))

            scale = data.scale.expand(output.size(0), data.m)
            total_loss += evaluateL2(output * scale, Y * scale).item()
            total_loss_l1 += evaluateL1(output * scale, Y * scale).item()
            n_samples += output.size(0) * data.m
    rse = math.sqrt(total_loss / n_samples) / data.rse
    rae = (total_loss_l1 / n_samples) / data.rae

    # the later ports' tensor form of RSE over the whole set at once
    scale = data.scale.expand(predict.size(0), data.m)
    normalize = test.numel() * data.rse.pow(2)
    rse_tensor = torch.sqrt((predict * scale - test * scale).pow(2).sum() / normalize)

    predict = predict.data.cpu().numpy()
    Ytest = test.data.cpu().numpy()
    sigma_p = (predict).std(axis=0)
    sigma_g = (Ytest).std(axis=0)
    mean_p = predict.mean(axis=0)
    mean_g = Ytest.mean(axis=0)
    index = sigma_g != 0
    correlation = ((predict - mean_p) * (Ytest - mean_g)).mean(axis=0) / (sigma_p * sigma_g)
    correlation = (correlation[index]).mean()
    return rse, float(rae), correlation, float(rse_tensor)


def train(data, X, Y, model, criterion, optim, batch_size):
    model.train()
    total_loss = 0
    n_samples = 0
    worst_gap = 0.0
    for X, Y in data.get_batches(X, Y, batch_size, True):
        model.zero_grad()
        output = model(X)
        scale = data.scale.expand(output.size(0), data.m)
        loss = criterion(output * scale, Y * scale)
        loss.backward()
        by_hand, by_clip = optim.step()
        worst_gap = max(worst_gap, abs(by_hand - by_clip) / max(by_clip, 1e-12))
        total_loss += loss.item()
        n_samples += output.size(0) * data.m
    return total_loss / n_samples, worst_gap


args = Args()
Data = Data_utility(rawdat, 0.6, 0.2, args.horizon, args.window)
print("train/valid/test windows:", Data.train[0].size(0), Data.valid[0].size(0), Data.test[0].size(0))
print("scale per column:", Data.scale.size(), "rse norm %.4f rae norm %.4f" % (Data.rse, Data.rae))

# output_fun variants all give (batch, m)
with torch.no_grad():
    for fun in ("sigmoid", "tanh", "None"):
        a = Args()
        a.output_fun = fun
        out = Model(a, Data).eval()(Data.train[0][:5])
        print("output_fun %-7s -> %s in [%.3f, %.3f]" % (fun, tuple(out.shape), out.min().item(), out.max().item()))

model = Model(args, Data)
nParams = sum([p.nelement() for p in model.parameters()])
print("* number of parameters: %d" % nParams)

# the skip layout: row b*skip + j of step p is conv position start + p*skip + j of sample b
with torch.no_grad():
    xb = Data.train[0][:4]
    c = torch.squeeze(F.relu(model.conv1(xb.view(-1, 1, model.P, model.m))), 3)
    s = model.skip_input(c, 4)
    start = c.size(2) - model.pt * model.skip
    by_hand = torch.stack(
        [
            torch.stack([c[b, :, start + p * model.skip + j] for b in range(4) for j in range(model.skip)])
            for p in range(model.pt)
        ]
    )
    skip_layout_ok = torch.equal(s, by_hand)
print("skip-GRU input", tuple(s.shape), "equals gathered steps:", skip_layout_ok)

criterion = nn.L1Loss(reduction="sum")
evaluateL2 = nn.MSELoss(reduction="sum")
evaluateL1 = nn.L1Loss(reduction="sum")
optim = Optim(model.parameters(), args.optim, args.lr, args.clip)

best_val = 10000000
best_state = None
worst_gap = 0.0
for epoch in range(1, args.epochs + 1):
    train_loss, gap = train(Data, Data.train[0], Data.train[1], model, criterion, optim, args.batch_size)
    worst_gap = max(worst_gap, gap)
    val_loss, val_rae, val_corr, _ = evaluate(Data, Data.valid[0], Data.valid[1], model, evaluateL2, evaluateL1, args.batch_size)
    if epoch % 5 == 0:
        print(
            "| end of epoch {:3d} | train_loss {:5.4f} | valid rse {:5.4f} | valid rae {:5.4f} | valid corr  {:5.4f}".format(
                epoch, train_loss, val_loss, val_rae, val_corr
            )
        )
    if val_loss < best_val:
        best_val = val_loss
        best_state = {k: v.clone() for k, v in model.state_dict().items()}

model.load_state_dict(best_state)
test_acc, test_rae, test_corr, test_rse_tensor = evaluate(
    Data, Data.test[0], Data.test[1], model, evaluateL2, evaluateL1, args.batch_size
)
print("test rse {:5.4f} | test rae {:5.4f} | test corr {:5.4f}".format(test_acc, test_rae, test_corr))


class LastValue(nn.Module):
    def forward(self, x):
        return x[:, -1, :]


base_rse, base_rae, base_corr, _ = evaluate(Data, Data.test[0], Data.test[1], LastValue(), evaluateL2, evaluateL1, args.batch_size)
print("last-value baseline: rse {:5.4f} | rae {:5.4f} | corr {:5.4f}".format(base_rse, base_rae, base_corr))
rse_routes_agree = abs(test_acc - test_rse_tensor) < 1e-4 * max(test_acc, 1.0)
print("RSE by summed MSE vs tensor form: %.5f vs %.5f" % (test_acc, test_rse_tensor))
print("grad norm by hand vs clip_grad_norm_: worst relative gap %.2e" % worst_gap)
checks = int(skip_layout_ok and rse_routes_agree and worst_gap < 1e-4)
print(
    f"FINAL test_rse={test_acc:.4f} test_rae={test_rae:.4f} test_corr={test_corr:.4f} "
    f"baseline_rse={base_rse:.4f} checks={checks}"
)
