"""GPTQ (Frantar et al., ICLR 2023) in the layout of IST-DASLab/gptq (gptq.py, quant.py, opt.py's
``opt_sequential``) at tiny sizes, on a per-token MLP classifier over synthetic "token" sequences.

A float model (three token-wise ``nn.Linear`` layers with ReLU, mean pooling over tokens, a head) is
trained with Adam; input feature 5 is always zero, so the first layer's Hessian has a dead column.
Calibration activations are collected layer by layer through ``register_forward_hook`` calling
``GPTQ.add_batch(inp[0].data, out.data)``: the running Hessian ``H *= n / (n + tmp)``,
``inp = math.sqrt(2 / n) * inp.float()``, ``H += inp.matmul(inp.t())`` on the ``(B, T, C)`` input
reshaped to ``(-1, C)`` (checked against ``2 X^T X / n`` in one matmul); each layer is quantised once
its hooks are removed, and the next layer's calibration inputs are recomputed through the quantised
layer, as ``opt_sequential`` does.

``fasterquant``: the repository's ``Quantizer`` (per-channel asymmetric min/max: ``torch.minimum(x.min(1)[0],
tmp)``, ``torch.round(-xmin / self.scale)``, the ``xmin == 0 & xmax == 0`` guard, ``reshape([-1, 1])``),
``quantize`` by ``torch.clamp(torch.round(x / scale) + zero, 0, maxq)``, dead columns
(``H[dead, dead] = 1``, ``W[:, dead] = 0``), act-order by ``torch.argsort(torch.diag(H), descending=True)``
and ``torch.argsort(perm)``, dampening ``H[diag, diag] += percdamp * torch.mean(torch.diag(H))``, the
inverse Hessian's upper Cholesky factor by ``torch.linalg.cholesky`` -> ``torch.cholesky_inverse`` ->
``torch.linalg.cholesky(H, upper=True)`` (checked against ``torch.linalg.inv``), and column-by-column
quantisation with error feedback in blocks (``W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))``,
the lazy batch update ``W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])``), also written with ``addr_``
(must agree with the matmul route).

Checked: on the same calibration inputs, GPTQ's layer output error ``||W X - Q X||`` is below
round-to-nearest's at 3 and 4 bits, for every layer; the quantised models' test accuracies stay near
the float model's (act-order's and round-to-nearest's reported beside); the hooked Hessian equals
``2 X^T X / n``, ``cholesky_inverse`` equals ``inv``, the upper factor reproduces it, and every quantised
row holds at most ``2 ** bits`` distinct values.
"""

# ruff: noqa: UP008  (the repository's own spelling: super(Quantizer, self))

import copy
import math
import os

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

DEV = torch.device("cpu")
N_TRAIN, N_TEST, N_CALIB = 768, 512, 128
T, C_IN, HIDDEN, N_CLASSES = 4, 24, 48, 4
DEAD = 5


# ----------------------------------------------------------------------------------- data
rng = np.random.RandomState(1234)
PROTOS = rng.randn(N_CLASSES, C_IN).astype(np.float32)
MIX = rng.randn(C_IN, C_IN).astype(np.float32) / math.sqrt(C_IN)


def make_split(n, r):
    y = r.randint(0, N_CLASSES, size=n)
    tokens = PROTOS[y][:, None, :] + 2.6 * r.randn(n, T, C_IN).astype(np.float32)
    tokens = np.tanh(tokens @ MIX) * 2.0 + 0.3 * r.randn(n, T, C_IN).astype(np.float32)
    tokens[:, :, DEAD] = 0.0
    return torch.from_numpy(tokens.astype(np.float32)), torch.from_numpy(y).long()


data_rng = np.random.RandomState(seed)
x_train, y_train = make_split(N_TRAIN, data_rng)
x_test, y_test = make_split(N_TEST, data_rng)
x_calib = x_train[torch.randperm(N_TRAIN)[:N_CALIB]]


class TokenMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList(
            [nn.Linear(C_IN, HIDDEN), nn.Linear(HIDDEN, HIDDEN), nn.Linear(HIDDEN, HIDDEN)]
        )
        self.act = nn.ReLU()
        self.head = nn.Linear(HIDDEN, N_CLASSES)

    def forward(self, x):
        for layer in self.layers:
            x = self.act(layer(x))
        return self.head(x.mean(1))


@torch.no_grad()
def accuracy(model, x, y):
    model.eval()
    return (model(x).argmax(-1) == y).float().mean().item()


model = TokenMLP()
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
loss_fn = nn.CrossEntropyLoss()
for epoch in range(6):
    model.train()
    perm = torch.randperm(N_TRAIN)
    total = 0.0
    for i in range(0, N_TRAIN, 64):
        idx = perm[i:i + 64]
        loss = loss_fn(model(x_train[idx]), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
    if epoch % 2 == 1:
        print(f"epoch {epoch} train loss {total / N_TRAIN:.4f}")
float_acc = accuracy(model, x_test, y_test)
print(f"float model test acc {float_acc:.4f}")


# ----------------------------------------------------------------------------------- quant.py
def quantize(x, scale, zero, maxq):
    if maxq < 0:
        return (x > scale / 2).float() * scale + (x < zero / 2).float() * zero
    q = torch.clamp(torch.round(x / scale) + zero, 0, maxq)
    return scale * (q - zero)


class Quantizer(nn.Module):
    def __init__(self, shape=1):
        super(Quantizer, self).__init__()
        self.register_buffer("maxq", torch.tensor(0))
        self.register_buffer("scale", torch.zeros(shape))
        self.register_buffer("zero", torch.zeros(shape))

    def configure(self, bits, perchannel=False, sym=True):
        self.maxq = torch.tensor(2 ** bits - 1)
        self.perchannel = perchannel
        self.sym = sym

    def find_params(self, x, weight=False):
        dev = x.device
        self.maxq = self.maxq.to(dev)

        shape = x.shape
        if self.perchannel:
            if weight:
                x = x.flatten(1)
        else:
            x = x.flatten().unsqueeze(0)

        tmp = torch.zeros(x.shape[0], device=dev)
        xmin = torch.minimum(x.min(1)[0], tmp)
        xmax = torch.maximum(x.max(1)[0], tmp)

        if self.sym:
            xmax = torch.maximum(torch.abs(xmin), xmax)
            tmp = xmin < 0
            if torch.any(tmp):
                xmin[tmp] = -xmax[tmp]
        tmp = (xmin == 0) & (xmax == 0)
        xmin[tmp] = -1
        xmax[tmp] = +1

        self.scale = (xmax - xmin) / self.maxq
        if self.sym:
            self.zero = torch.full_like(self.scale, (self.maxq + 1) / 2)
        else:
            self.zero = torch.round(-xmin / self.scale)

        if weight:
            shape = [-1] + [1] * (len(shape) - 1)
            self.scale = self.scale.reshape(shape)
            self.zero = self.zero.reshape(shape)
            return

    def quantize(self, x):
        if self.ready():
            return quantize(x, self.scale, self.zero, self.maxq)
        return x

    def ready(self):
        return torch.all(self.scale != 0)


# ----------------------------------------------------------------------------------- gptq.py
class GPTQ:
    def __init__(self, layer):
        self.layer = layer
        self.dev = self.layer.weight.device
        W = layer.weight.data.clone()
        self.rows = W.shape[0]
        self.columns = W.shape[1]
        self.H = torch.zeros((self.columns, self.columns), device=self.dev)
        self.nsamples = 0
        self.inputs = []

    def add_batch(self, inp, out):
        self.inputs.append(inp.reshape(-1, inp.shape[-1]).clone())
        if len(inp.shape) == 2:
            inp = inp.unsqueeze(0)
        tmp = inp.shape[0]
        if isinstance(self.layer, nn.Linear):
            if len(inp.shape) == 3:
                inp = inp.reshape((-1, inp.shape[-1]))
            inp = inp.t()
        self.H *= self.nsamples / (self.nsamples + tmp)
        self.nsamples += tmp
        inp = math.sqrt(2 / self.nsamples) * inp.float()
        self.H += inp.matmul(inp.t())

    def fasterquant(self, blocksize=16, percdamp=0.01, actorder=False, use_addr=False):
        W = self.layer.weight.data.clone()
        W = W.float()

        if not self.quantizer.ready():
            self.quantizer.find_params(W, weight=True)

        H = self.H.clone()
        dead = torch.diag(H) == 0
        H[dead, dead] = 1
        W[:, dead] = 0

        if actorder:
            perm = torch.argsort(torch.diag(H), descending=True)
            W = W[:, perm]
            H = H[perm][:, perm]

        Losses = torch.zeros_like(W)
        Q = torch.zeros_like(W)

        damp = percdamp * torch.mean(torch.diag(H))
        diag = torch.arange(self.columns, device=self.dev)
        H[diag, diag] += damp
        H = torch.linalg.cholesky(H)
        H = torch.cholesky_inverse(H)
        H = torch.linalg.cholesky(H, upper=True)
        Hinv = H

        for i1 in range(0, self.columns, blocksize):
            i2 = min(i1 + blocksize, self.columns)
            count = i2 - i1

            W1 = W[:, i1:i2].clone()
            Q1 = torch.zeros_like(W1)
            Err1 = torch.zeros_like(W1)
            Losses1 = torch.zeros_like(W1)
            Hinv1 = Hinv[i1:i2, i1:i2]

            for i in range(count):
                w = W1[:, i]
                d = Hinv1[i, i]

                q = quantize(
                    w.unsqueeze(1), self.quantizer.scale, self.quantizer.zero, self.quantizer.maxq
                ).flatten()
                Q1[:, i] = q
                Losses1[:, i] = (w - q) ** 2 / d ** 2

                err1 = (w - q) / d
                if use_addr:
                    W1[:, i:].addr_(err1, Hinv1[i, i:], alpha=-1)
                else:
                    W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
                Err1[:, i] = err1

            Q[:, i1:i2] = Q1
            Losses[:, i1:i2] = Losses1 / 2

            W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])

        if actorder:
            invperm = torch.argsort(perm)
            Q = Q[:, invperm]

        self.layer.weight.data = Q.reshape(self.layer.weight.shape).to(self.layer.weight.data.dtype)
        return torch.sum(Losses).item()

    def free(self):
        self.H = None
        self.inputs = None


# ----------------------------------------------------------------------------------- checks
def hessian_checks(gptq):
    X = torch.cat(gptq.inputs, 0)
    H_direct = 2 * X.t() @ X / gptq.nsamples  # nsamples counts sequences, X holds their tokens
    h_err = (gptq.H - H_direct).abs().max().item() / H_direct.abs().max().item()
    H = gptq.H.clone()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    H += 0.01 * torch.mean(torch.diag(H)) * torch.eye(H.shape[0])
    L = torch.linalg.cholesky(H)
    Hinv = torch.cholesky_inverse(L)
    inv_err = (Hinv - torch.linalg.inv(H)).abs().max().item() / Hinv.abs().max().item()
    U = torch.linalg.cholesky(Hinv, upper=True)
    chol_err = (U.t() @ U - Hinv).abs().max().item() / Hinv.abs().max().item()
    return h_err, inv_err, chol_err, int(dead.sum().item())


@torch.no_grad()
def rtn_quantize(model, bits):
    qmodel = copy.deepcopy(model)
    for layer in qmodel.layers:
        quantizer = Quantizer()
        quantizer.configure(bits, perchannel=True, sym=False)
        W = layer.weight.data
        quantizer.find_params(W, weight=True)
        layer.weight.data = quantizer.quantize(W).to(W.dtype)
    return qmodel


@torch.no_grad()
def gptq_sequential(model, calib, bits, actorder=False, use_addr=False, report=False):
    qmodel = copy.deepcopy(model)
    qmodel.eval()
    inps = calib.clone()
    errors, losses, checks = [], [], []
    for li, layer in enumerate(qmodel.layers):
        subset = {f"layers.{li}": layer}
        gptq = {}
        for name in subset:
            gptq[name] = GPTQ(subset[name])
            gptq[name].quantizer = Quantizer()
            gptq[name].quantizer.configure(bits, perchannel=True, sym=False)

        def add_batch(name):
            def tmp(_, inp, out):
                gptq[name].add_batch(inp[0].data, out.data)  # noqa: B023  (opt.py: called before the loop moves on)
            return tmp

        handles = []
        for name in subset:
            handles.append(subset[name].register_forward_hook(add_batch(name)))
        for j in range(0, calib.shape[0], 32):
            layer(inps[j:j + 32])
        for h in handles:
            h.remove()
        if report:
            checks.append(hessian_checks(gptq[f"layers.{li}"]))

        W_float = layer.weight.data.clone()
        losses.append(gptq[f"layers.{li}"].fasterquant(percdamp=0.01, actorder=actorder, use_addr=use_addr))

        # ||W X - Q X|| on this layer's calibration inputs, against round-to-nearest on the same X
        X = torch.cat(gptq[f"layers.{li}"].inputs, 0)
        rtn = Quantizer()
        rtn.configure(bits, perchannel=True, sym=False)
        rtn.find_params(W_float, weight=True)
        W_rtn = rtn.quantize(W_float)
        ref = X @ W_float.t()
        err_gptq = torch.linalg.norm(ref - X @ layer.weight.data.t()).item()
        err_rtn = torch.linalg.norm(ref - X @ W_rtn.t()).item()
        errors.append((err_gptq, err_rtn))
        if report:
            print(f"  layer {li}: ||WX-QX|| gptq {err_gptq:.4f} rtn {err_rtn:.4f}")
        gptq[f"layers.{li}"].free()

        inps = qmodel.act(layer(inps))
    return qmodel, errors, losses, checks


results = {}
for bits in (4, 3):
    print(f"{bits}-bit GPTQ (blocksize 16, percdamp 0.01)")
    q_model, errors, losses, checks = gptq_sequential(model, x_calib, bits, report=(bits == 4))
    if checks:
        for li, check in enumerate(checks):
            print(f"  layer {li}: dead columns {check[3]}")
        h_err = max(c[0] for c in checks)
        inv_err = max(c[1] for c in checks)
        chol_err = max(c[2] for c in checks)
    a_model, a_errors, _, _ = gptq_sequential(model, x_calib, bits, actorder=True)
    r_model = rtn_quantize(model, bits)
    gptq_over_rtn = max(e[0] / e[1] for e in errors)
    results[bits] = dict(
        ratio=gptq_over_rtn,
        act_ratio=max(e[0] / e[1] for e in a_errors),
        acc_gptq=accuracy(q_model, x_test, y_test),
        acc_act=accuracy(a_model, x_test, y_test),
        acc_rtn=accuracy(r_model, x_test, y_test),
        loss=sum(losses),
    )
    print(
        f"  acc gptq {results[bits]['acc_gptq']:.4f} act-order {results[bits]['acc_act']:.4f} "
        f"rtn {results[bits]['acc_rtn']:.4f}"
    )

# the addr_ route of the inner update gives the matmul route's weights
m_model, _, _, _ = gptq_sequential(model, x_calib, 4)
d_model, _, _, _ = gptq_sequential(model, x_calib, 4, use_addr=True)
addr_diff = max(
    (a.weight - b.weight).abs().max().item() for a, b in zip(m_model.layers, d_model.layers)
)
n_levels = max(
    max(torch.unique(row).numel() for row in layer.weight.data) for layer in m_model.layers
)
print(f"addr_ vs matmul max weight diff {addr_diff:.2e}, levels per row <= {n_levels}")

print(
    f"FINAL float_acc={float_acc:.4f} gptq4_acc={results[4]['acc_gptq']:.4f} "
    f"gptq3_acc={results[3]['acc_gptq']:.4f} rtn3_acc={results[3]['acc_rtn']:.4f} "
    f"act3_acc={results[3]['acc_act']:.4f} "
    f"gptq_rtn_ratio4={results[4]['ratio']:.4f} gptq_rtn_ratio3={results[3]['ratio']:.4f} "
    f"act_rtn_ratio3={results[3]['act_ratio']:.4f} gptq3_below_rtn={int(results[3]['ratio'] < 1)} "
    f"gptq4_below_rtn={int(results[4]['ratio'] < 1)} hessian_err={h_err:.2e} inv_err={inv_err:.2e} "
    f"chol_err={chol_err:.2e} addr_diff={addr_diff:.2e} levels4={n_levels}"
)
