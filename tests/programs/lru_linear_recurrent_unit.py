"""The Linear Recurrent Unit (Orvieto et al., 2023, "Resurrecting Recurrent Neural Networks for Long
Sequences") as the PyTorch ports of google-research's LRU write it, on a sequence-classification toy.

``LRU`` keeps the diagonal recurrence in exponential parameters: ``nu_log``/``theta_log`` drawn on a
ring between ``r_min`` and ``r_max`` (``torch.log(-0.5 * torch.log(u1 * (r_max ** 2 - r_min ** 2) +
r_min ** 2))``, ``torch.log(max_phase * u2)``), ``gamma_log`` from ``torch.sqrt(1 - |lambda| ** 2)``,
and ``B``/``C`` as complex ``nn.Parameter(torch.complex(re, im))`` made from two real tensors. Lambda is
built three ways that must agree: ``torch.exp(-torch.exp(nu_log) + 1j * torch.exp(theta_log))``,
``torch.polar(torch.exp(-torch.exp(nu_log)), torch.exp(theta_log))`` and ``torch.complex`` of the
cosine/sine parts. The recurrence ``x_k = lambda * x_{k-1} + gamma * B u_k`` runs as the port's
sequential loop and as a parallel associative scan by doubling (Hillis-Steele, the shifted operands made
by ``torch.cat`` with ones/zeros and by ``F.pad``), and the two must give the same ``(C x_k).real + D u_k``
outputs and the same gradients (complex ``B``/``C`` included). A two-block LRU classifier (pre-LayerNorm,
GELU + GLU mixing, mean pooling) trained with Adam on complex parameters learns whether the values at two
marked positions of a noisy sequence have a positive sum.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


class LRU(nn.Module):
    def __init__(self, in_features, out_features, state_features, r_min=0.0, r_max=1.0,
                 max_phase=6.283, scan="parallel"):
        super().__init__()
        self.out_features = out_features
        self.state_features = state_features
        self.scan = scan
        self.D = nn.Parameter(torch.randn([out_features, in_features]) / math.sqrt(in_features))
        u1 = torch.rand(state_features)
        u2 = torch.rand(state_features)
        self.nu_log = nn.Parameter(torch.log(-0.5 * torch.log(u1 * (r_max ** 2 - r_min ** 2) + r_min ** 2)))
        self.theta_log = nn.Parameter(torch.log(max_phase * u2))
        Lambda_mod = torch.exp(-torch.exp(self.nu_log))
        self.gamma_log = nn.Parameter(torch.log(torch.sqrt(torch.ones_like(Lambda_mod) - torch.square(Lambda_mod))))
        B_re = torch.randn([state_features, in_features]) / math.sqrt(2 * in_features)
        B_im = torch.randn([state_features, in_features]) / math.sqrt(2 * in_features)
        self.B = nn.Parameter(torch.complex(B_re, B_im))
        C_re = torch.randn([out_features, state_features]) / math.sqrt(state_features)
        C_im = torch.randn([out_features, state_features]) / math.sqrt(state_features)
        self.C = nn.Parameter(torch.complex(C_re, C_im))

    def lambdas(self):
        return torch.exp(-torch.exp(self.nu_log) + 1j * torch.exp(self.theta_log))

    def forward(self, input, state=None):
        # input: (batch, length, in_features)
        Lambda = self.lambdas()
        gammas = torch.exp(self.gamma_log).unsqueeze(-1)
        B_norm = self.B * gammas
        Bu = input.to(B_norm.dtype) @ B_norm.T  # (batch, length, state)
        if self.scan == "sequential":
            xs = sequential_scan(Lambda, Bu, state)
        elif self.scan == "pad":
            xs = parallel_scan_pad(Lambda, Bu, state)
        else:
            xs = parallel_scan(Lambda, Bu, state)
        y = (xs @ self.C.T).real + input @ self.D.T
        return y


def sequential_scan(Lambda, Bu, state=None):
    if state is None:
        state = torch.complex(torch.zeros(Bu.shape[0], Bu.shape[-1]), torch.zeros(Bu.shape[0], Bu.shape[-1]))
    states = []
    for i in range(Bu.shape[1]):
        state = Lambda * state + Bu[:, i]
        states.append(state)
    return torch.stack(states, dim=1)


def binary_operator(q_i, q_j):
    """(A_i, b_i) . (A_j, b_j) = (A_j A_i, A_j b_i + b_j)"""
    A_i, b_i = q_i
    A_j, b_j = q_j
    return A_j * A_i, A_j * b_i + b_j


def parallel_scan(Lambda, Bu, state=None):
    """Inclusive associative scan along dim 1 by recursive doubling; shifts made with torch.cat."""
    batch, length, n = Bu.shape
    A = Lambda.expand(batch, length, n)
    b = Bu
    if state is not None:
        b = torch.cat([(Lambda * state + Bu[:, 0]).unsqueeze(1), Bu[:, 1:]], dim=1)
    offset = 1
    while offset < length:
        A_prev = torch.cat([torch.ones_like(A[:, :offset]), A[:, :-offset]], dim=1)
        b_prev = torch.cat([torch.zeros_like(b[:, :offset]), b[:, :-offset]], dim=1)
        A, b = binary_operator((A_prev, b_prev), (A, b))
        offset *= 2
    return b


def parallel_scan_pad(Lambda, Bu, state=None):
    """The same scan on split real/imaginary parts with the shifts made by F.pad."""
    batch, length, n = Bu.shape
    a_re = Lambda.real.expand(batch, length, n)
    a_im = Lambda.imag.expand(batch, length, n)
    b_re, b_im = Bu.real, Bu.imag
    offset = 1
    while offset < length:
        pa_re = F.pad(a_re[:, :-offset], (0, 0, offset, 0), value=1.0)
        pa_im = F.pad(a_im[:, :-offset], (0, 0, offset, 0))
        pb_re = F.pad(b_re[:, :-offset], (0, 0, offset, 0))
        pb_im = F.pad(b_im[:, :-offset], (0, 0, offset, 0))
        b_re, b_im = a_re * pb_re - a_im * pb_im + b_re, a_re * pb_im + a_im * pb_re + b_im
        a_re, a_im = a_re * pa_re - a_im * pa_im, a_re * pa_im + a_im * pa_re
        offset *= 2
    return torch.complex(b_re, b_im)


class LRUBlock(nn.Module):
    def __init__(self, d_model, d_state, **lru_args):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.lru = LRU(d_model, d_model, d_state, **lru_args)
        self.out = nn.Linear(d_model, 2 * d_model)
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        z = self.lru(self.norm(x))
        z = F.glu(self.out(F.gelu(z)), dim=-1)
        return x + self.drop(z)


class LRUClassifier(nn.Module):
    def __init__(self, d_input, d_output, d_model=16, d_state=24, n_layers=2, **lru_args):
        super().__init__()
        self.encoder = nn.Linear(d_input, d_model)
        self.blocks = nn.ModuleList([LRUBlock(d_model, d_state, **lru_args) for _ in range(n_layers)])
        self.decoder = nn.Linear(d_model, d_output)

    def set_scan(self, scan):
        for block in self.blocks:
            block.lru.scan = scan

    def forward(self, x):
        x = self.encoder(x)
        for block in self.blocks:
            x = block(x)
        return self.decoder(x.mean(dim=1))


SEQ_LEN = 20


def make_data(n, rng):
    values = rng.uniform(-1.0, 1.0, size=(n, SEQ_LEN)).astype("float32")
    marks = torch.zeros(n, SEQ_LEN)
    first = rng.randint(0, SEQ_LEN // 2, size=n)
    second = rng.randint(SEQ_LEN // 2, SEQ_LEN, size=n)
    rows = torch.arange(n)
    marks[rows, torch.from_numpy(first)] = 1.0
    marks[rows, torch.from_numpy(second)] = 1.0
    values = torch.from_numpy(values)
    target = ((values * marks).sum(1) > 0).long()
    return torch.stack([values, marks], dim=-1), target


rng = np.random.RandomState(seed)
x_train, y_train = make_data(512, rng)
x_test, y_test = make_data(256, rng)

# lambda three ways: exp of a complex exponent, torch.polar, torch.complex of cos/sin
lru = LRU(3, 4, 8, r_min=0.4, r_max=0.99, max_phase=math.pi)
with torch.no_grad():
    mod = torch.exp(-torch.exp(lru.nu_log))
    theta = torch.exp(lru.theta_log)
    lam_exp = lru.lambdas()
    lam_polar = torch.polar(mod, theta)
    lam_complex = torch.complex(mod * torch.cos(theta), mod * torch.sin(theta))
    lam_gap = max((lam_exp - lam_polar).abs().max().item(), (lam_exp - lam_complex).abs().max().item())
    in_ring = bool(((lam_polar.abs() >= 0.4 - 1e-6) & (lam_polar.abs() <= 0.99 + 1e-6)).all())
print(f"lambda {lam_exp.dtype} {tuple(lam_exp.shape)}, B {lru.B.dtype} {tuple(lru.B.shape)}, "
      f"C {lru.C.dtype} {tuple(lru.C.shape)}, in ring: {in_ring}, three constructions agree: {lam_gap < 1e-6}")

# the parallel scans equal the sequential loop: outputs and gradients (complex B and C included)
u = torch.randn(2, 13, 3)
grads, outs = {}, {}
for scan in ("sequential", "parallel", "pad"):
    lru.zero_grad()
    lru.scan = scan
    y = lru(u)
    (y * torch.linspace(-1, 1, 4)).pow(2).sum().backward()
    outs[scan] = y.detach()
    grads[scan] = {name: p.grad.clone() for name, p in lru.named_parameters()}
scan_err = max((outs[s] - outs["sequential"]).abs().max().item() for s in ("parallel", "pad"))
grad_err = max((grads[s][k] - grads["sequential"][k]).abs().max().item()
               for s in ("parallel", "pad") for k in grads["sequential"])
print(f"scan outputs {tuple(outs['parallel'].shape)} {outs['parallel'].dtype}, max |scan - loop| small: {scan_err < 1e-4}")
print("grad dtypes: " + ", ".join(f"{k} {g.dtype}" for k, g in grads["parallel"].items()))
print(f"gradients agree: {grad_err < 1e-3}")

# with an initial state
state0 = torch.randn(2, 8, dtype=torch.cfloat)
with torch.no_grad():
    Bu = u.to(torch.cfloat) @ (lru.B * torch.exp(lru.gamma_log).unsqueeze(-1)).T
    st_gap = (parallel_scan(lru.lambdas(), Bu, state0) - sequential_scan(lru.lambdas(), Bu, state0)).abs().max().item()
print(f"initial-state scan agrees: {st_gap < 1e-4}")

model = LRUClassifier(2, 2, d_model=16, d_state=24, n_layers=2, r_min=0.9, r_max=0.999, max_phase=math.pi / 10)
n_complex = sum(p.numel() for p in model.parameters() if p.is_complex())
n_real = sum(p.numel() for p in model.parameters() if not p.is_complex())
print(f"model: {n_complex} complex and {n_real} real parameters")
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
criterion = nn.CrossEntropyLoss()


def evaluate():
    model.eval()
    with torch.no_grad():
        logits = model(x_test)
        acc = (logits.argmax(1) == y_test).float().mean().item()
        loss = criterion(logits, y_test).item()
    model.train()
    return loss, acc


_, acc_start = evaluate()
EPOCHS, BATCH = 8, 32
for epoch in range(EPOCHS):
    perm = torch.randperm(x_train.shape[0])
    total_loss, total = 0.0, 0
    for i in range(0, x_train.shape[0], BATCH):
        idx = perm[i:i + BATCH]
        optimizer.zero_grad()
        loss = criterion(model(x_train[idx]), y_train[idx])
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(idx)
        total += len(idx)
    if (epoch + 1) % 2 == 0:
        test_loss, test_acc = evaluate()
        print(f"epoch {epoch + 1}: train loss {total_loss / total:.4f}, test loss {test_loss:.4f}, acc {test_acc:.4f}")

test_loss, test_acc = evaluate()
# the trained model gives the same predictions with the sequential loop
model.eval()
with torch.no_grad():
    logits_par = model(x_test[:32])
    model.set_scan("sequential")
    logits_seq = model(x_test[:32])
    model.set_scan("parallel")
model_gap = (logits_par - logits_seq).abs().max().item()
lam_mod = model.blocks[0].lru.lambdas().abs().detach()
print(f"trained |lambda| in [{lam_mod.min().item():.3f}, {lam_mod.max().item():.3f}], loop agrees: {model_gap < 1e-3}")
print(f"FINAL scan_err={scan_err:.6f} grad_err={grad_err:.6f} acc_start={acc_start:.4f} test_acc={test_acc:.4f} "
      f"test_loss={test_loss:.4f} model_gap={model_gap:.6f}")
