"""S5 (Smith, Warrington & Linderman 2023, "Simplified State Space Layers for Sequence Modeling"; the
PyTorch ports, e.g. i404788/s5-pytorch ``s5/s5_model.py`` + ``s5/jax_compat.py``) on a synthetic
long-range task: the sign of a sum of the first values of a noisy sequence, read at its end.

The HiPPO-N initialisation (``make_HiPPO``/``make_NPLR_HiPPO``/``make_DPLR_HiPPO``: the normal part
``S = A + P P^T``, ``torch.linalg.eigh(S * -1j)`` for the imaginary parts and the eigenvectors ``V``,
checked against ``torch.linalg.eig(S)``), conjugate symmetry keeping half the eigenvalues,
``Lambda = torch.complex(Lambda_re.clamp(max=-1e-4), Lambda_im)``, ``B`` and ``C`` stored as real
``(..., 2)`` parameters and read through ``torch.view_as_complex``, ``B_tilde = V^-1 B`` and
``C_tilde = C V`` at initialisation, a learnable ``log_step`` through ``torch.exp``, ZOH discretisation
(``Lambda_bar = torch.exp(Lambda * step)``, ``B_bar = (1 / Lambda * (Lambda_bar - Identity))[..., None]
* B_tilde``) and the bilinear one; the recurrence by jax_compat's recursive ``associative_scan`` (odd/even
strided slices, ``torch.addcmul`` on complex tensors, interleaving by ``torch.stack(...).flatten``), used in
training; by a Python loop; by log-depth doubling (``torch.cat`` of shifted products); and by the
Toeplitz form from ``torch.cumprod`` of ``Lambda_bar`` through a complex ``einsum``. Output
``y = 2 * (xs @ C_tilde.T).real + D * u``, GELU, the half-GLU ``out2(x) * torch.sigmoid(out2(x))``-style
gate, pre-LayerNorm and a BatchNorm1d variant on ``transpose(1, 2)``, AdamW with an SSM group (no
weight decay, its own lr).

Checks: the four scans agree (complex states, and the gradients to ``Lambda_re``/``Lambda_im``/
``log_step``/``B``), the conjugate-symmetric ``2 * Re`` output equals the full system's real output
(imaginary part ~0), ``gradcheck`` of the scan in float64, eigh vs eig eigenvalues, the trained
gradients reaching ``Lambda_re``/``Lambda_im``.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

SEQ_LEN, READ, H, P = 48, 6, 16, 16


# --- HiPPO-N initialisation (s5/init.py)
def make_HiPPO(N):
    P = torch.sqrt(1 + 2 * torch.arange(N, dtype=torch.float64))
    A = P[:, None] * P[None, :]
    A = torch.tril(A) - torch.diag(torch.arange(N, dtype=torch.float64))
    return -A


def make_NPLR_HiPPO(N):
    hippo = make_HiPPO(N)
    P = torch.sqrt(torch.arange(N, dtype=torch.float64) + 0.5)
    B = torch.sqrt(2 * torch.arange(N, dtype=torch.float64) + 1.0)
    return hippo, P, B


def make_DPLR_HiPPO(N):
    A, P, B = make_NPLR_HiPPO(N)
    S = A + P[:, None] * P[None, :]
    S_diag = torch.diagonal(S)
    Lambda_real = torch.mean(S_diag) * torch.ones_like(S_diag)
    Lambda_imag, V = torch.linalg.eigh(S * -1j)
    P = V.conj().T @ P.to(V.dtype)
    B_orig = B
    B = V.conj().T @ B.to(V.dtype)
    return torch.complex(Lambda_real, Lambda_imag), P, B, V, B_orig, S


# --- discretisation (s5/s5_model.py)
def discretize_zoh(Lambda, B_tilde, Delta):
    Identity = torch.ones(Lambda.shape[0], device=Lambda.device)
    Lambda_bar = torch.exp(Lambda * Delta)
    B_bar = (1 / Lambda * (Lambda_bar - Identity))[..., None] * B_tilde
    return Lambda_bar, B_bar


def discretize_bilinear(Lambda, B_tilde, Delta):
    Identity = torch.ones(Lambda.shape[0], device=Lambda.device)
    BL = 1 / (Identity - (Delta / 2.0) * Lambda)
    Lambda_bar = BL * (Identity + (Delta / 2.0) * Lambda)
    B_bar = (BL * Delta)[..., None] * B_tilde
    return Lambda_bar, B_bar


# --- scans over axis 1 of (batch, L, P) complex tensors
def binary_operator(q_i, q_j):
    A_i, b_i = q_i
    A_j, b_j = q_j
    return A_j * A_i, torch.addcmul(b_j, A_j, b_i)


def slicing(x, start, stop=None, step=None, axis=1):
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, stop, step)
    return x[tuple(index)]


def interleave(a, b, axis=1):
    """a[0], b[0], a[1], b[1], ... where a may be one longer than b (jax_compat._interleave)."""
    if a.shape[axis] == b.shape[axis] + 1:
        pad = torch.zeros_like(slicing(a, 0, 1, axis=axis))
        b = torch.cat([b, pad], dim=axis)
        out = torch.stack([a, b], dim=axis + 1).flatten(axis, axis + 1)
        return slicing(out, 0, -1, axis=axis)
    return torch.stack([a, b], dim=axis + 1).flatten(axis, axis + 1)


def associative_scan(fn, elems, axis=1):
    def _scan(elems):
        num_elems = elems[0].shape[axis]
        if num_elems < 2:
            return elems
        reduced = fn([slicing(e, 0, -1, 2, axis) for e in elems], [slicing(e, 1, None, 2, axis) for e in elems])
        odd_elems = _scan(reduced)
        if num_elems % 2 == 0:
            even_elems = fn([slicing(e, 0, -1, axis=axis) for e in odd_elems],
                            [slicing(e, 2, None, 2, axis) for e in elems])
        else:
            even_elems = fn(odd_elems, [slicing(e, 2, None, 2, axis) for e in elems])
        even_elems = [torch.cat([slicing(e, 0, 1, axis=axis), r], dim=axis) for e, r in zip(elems, even_elems)]
        return [interleave(e, o, axis) for e, o in zip(even_elems, odd_elems)]

    return _scan(elems)


def scan_associative(Lambda_bar, Bu):
    Lambda_elements = Lambda_bar.expand(Bu.shape[0], Bu.shape[1], -1)
    _, xs = associative_scan(binary_operator, [Lambda_elements, Bu])
    return xs


def scan_loop(Lambda_bar, Bu):
    x = torch.zeros_like(Bu[:, 0])
    xs = []
    for k in range(Bu.shape[1]):
        x = Lambda_bar * x + Bu[:, k]
        xs.append(x)
    return torch.stack(xs, dim=1)


def scan_doubling(Lambda_bar, Bu):
    A = Lambda_bar.expand(Bu.shape[0], Bu.shape[1], -1)
    b = Bu
    offset = 1
    while offset < Bu.shape[1]:
        b = torch.cat([b[:, :offset], torch.addcmul(b[:, offset:], A[:, offset:], b[:, :-offset])], dim=1)
        A = torch.cat([A[:, :offset], A[:, offset:] * A[:, :-offset]], dim=1)
        offset *= 2
    return b


def scan_cumprod(Lambda_bar, Bu):
    L = Bu.shape[1]
    powers = torch.cumprod(Lambda_bar.expand(L, -1), dim=0) / Lambda_bar  # Lambda_bar ** k, k = 0..L-1
    lag = torch.arange(L)[:, None] - torch.arange(L)[None, :]
    kernel = powers[lag.clamp(min=0)] * (lag >= 0)[..., None]
    return torch.einsum('kjp,bjp->bkp', kernel, Bu)


class S5SSM(nn.Module):
    def __init__(self, H, P, dt_min=0.01, dt_max=0.5, discretization='zoh', conj_sym=True, scan=scan_associative):
        super().__init__()
        self.H, self.scan, self.discretization, self.conj_sym = H, scan, discretization, conj_sym
        Lambda, _, _, V, _, _ = make_DPLR_HiPPO(P)
        local_P = P // 2 if conj_sym else P
        if conj_sym:
            Lambda, V = Lambda[:local_P], V[:, :local_P]
        Vinv = V.conj().T
        self.Lambda_re = nn.Parameter(Lambda.real.float())
        self.Lambda_im = nn.Parameter(Lambda.imag.float())
        B = torch.randn(P, H, dtype=torch.float64) / math.sqrt(H)  # lecun_normal
        VinvB = Vinv @ B.to(Vinv.dtype)
        self.B = nn.Parameter(torch.stack([VinvB.real, VinvB.imag], dim=-1).float())
        C = torch.randn(H, P, dtype=torch.float64) * math.sqrt(0.5)
        CV = C.to(V.dtype) @ V
        self.C = nn.Parameter(torch.stack([CV.real, CV.imag], dim=-1).float())
        self.D = nn.Parameter(torch.randn(H))
        self.log_step = nn.Parameter(torch.rand(local_P) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))

    def discrete(self):
        Lambda = torch.complex(self.Lambda_re.clamp(max=-1e-4), self.Lambda_im)
        B_tilde = torch.view_as_complex(self.B)
        step = torch.exp(self.log_step)
        if self.discretization == 'zoh':
            return discretize_zoh(Lambda, B_tilde, step)
        return discretize_bilinear(Lambda, B_tilde, step)

    def forward(self, u, return_states=False):  # u: (batch, L, H)
        Lambda_bar, B_bar = self.discrete()
        Bu = torch.einsum('ph,blh->blp', B_bar, u.to(B_bar.dtype))
        xs = self.scan(Lambda_bar, Bu)
        C_tilde = torch.view_as_complex(self.C)
        ys = (xs @ C_tilde.T).real
        if self.conj_sym:
            ys = 2 * ys
        y = ys + self.D * u
        if return_states:
            return y, xs
        return y


class S5Block(nn.Module):
    def __init__(self, H, P, norm='layer', dropout=0.0):
        super().__init__()
        self.seq = S5SSM(H, P)
        self.norm_kind = norm
        self.norm = nn.LayerNorm(H) if norm == 'layer' else nn.BatchNorm1d(H)
        self.out2 = nn.Linear(H, H)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        skip = x
        if self.norm_kind == 'layer':
            x = self.norm(x)
        else:
            x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        x = F.gelu(self.seq(x))
        x = x * torch.sigmoid(self.out2(x))  # S5's half_glu1
        return skip + self.drop(x)


class S5Classifier(nn.Module):
    def __init__(self, d_input=1, H=H, P=P, n_layers=2, n_classes=2):
        super().__init__()
        self.encoder = nn.Linear(d_input, H)
        self.layers = nn.ModuleList([S5Block(H, P, norm='layer' if i % 2 == 0 else 'batch')
                                     for i in range(n_layers)])
        self.decoder = nn.Linear(H, n_classes)

    def forward(self, x):
        x = self.encoder(x)
        for layer in self.layers:
            x = layer(x)
        return self.decoder(x[:, -READ:].mean(dim=1))


def make_task(n, rng):
    u = rng.standard_normal((n, SEQ_LEN, 1)).astype(np.float32)
    y = (u[:, :READ, 0].sum(1) > 0).astype(np.int64)
    return torch.from_numpy(u), torch.from_numpy(y)


rng = np.random.default_rng(seed)

# --- HiPPO: eigh of the normal part vs eig
Lambda_full, _, _, V_full, _, S = make_DPLR_HiPPO(P)
ev = torch.linalg.eig(S).eigenvalues
eig_err = max((torch.sort(ev.imag).values - torch.sort(Lambda_full.imag).values).abs().max().item(),
              (ev.real - Lambda_full.real).abs().max().item(),
              (V_full.conj().T @ V_full - torch.eye(P, dtype=V_full.dtype)).abs().max().item())
print(f"HiPPO-N {P}: Lambda real {Lambda_full.real[0].item():.2f}, eigh vs eig err {eig_err:.2e}")

# --- the four scans agree, in values and gradients
ssm = S5SSM(H, P)
u = torch.randn(3, 13, H)
params = [ssm.Lambda_re, ssm.Lambda_im, ssm.log_step, ssm.B]
scan_errs, grads = [], []
w = torch.randn(3, 13, H)
outs = []
for scan in (scan_associative, scan_loop, scan_doubling, scan_cumprod):
    ssm.scan = scan
    y, xs = ssm(u, return_states=True)
    outs.append((y, xs))
    grads.append(torch.autograd.grad((y * w).sum(), params))
for (y, xs), g in zip(outs[1:], grads[1:]):
    scan_errs.append((xs - outs[0][1]).abs().max().item())
    scan_errs.append((y - outs[0][0]).abs().max().item())
    scan_errs += [(a - b).abs().max().item() / (b.abs().max().item() + 1e-12) for a, b in zip(g, grads[0])]
scan_err = max(scan_errs)
print(f"scans associative/loop/doubling/cumprod states {tuple(outs[0][1].shape)} {outs[0][1].dtype}: err {scan_err:.2e}")
grad_norms = [g.norm().item() for g in grads[0]]
print("gradient norms Lambda_re {:.3f} Lambda_im {:.3f} log_step {:.3f} B {:.3f}".format(*grad_norms))

# --- conjugate symmetry: 2 * Re of the half system equals the full system's output
with torch.no_grad():
    Lambda_bar, B_bar = ssm.discrete()
    Bu = torch.einsum('ph,blh->blp', B_bar, u.to(B_bar.dtype))
    C_tilde = torch.view_as_complex(ssm.C)
    half = 2 * (scan_loop(Lambda_bar, Bu) @ C_tilde.T).real
    full_states = scan_loop(torch.cat([Lambda_bar, Lambda_bar.conj()]), torch.cat([Bu, Bu.conj()], dim=-1))
    full = full_states @ torch.cat([C_tilde, C_tilde.conj()], dim=1).T
    conj_err = max((full.real - half).abs().max().item(), full.imag.abs().max().item())
    ssm_bil = S5SSM(H, P, discretization='bilinear')
    Lb, _ = ssm_bil.discrete()
    stable = bool((Lambda_bar.abs() < 1).all()) and bool((Lb.abs() < 1).all())
print(f"conjugate-symmetric half vs full system: err {conj_err:.2e}, |Lambda_bar| < 1: {stable}")


# --- gradcheck of the scan in float64
def scan_fn(lre, lim, bu_re, bu_im):
    Lambda_bar = torch.exp(torch.complex(lre, lim) * 0.3)
    return torch.view_as_real(scan_associative(Lambda_bar, torch.complex(bu_re, bu_im)))


gc_inputs = (-torch.rand(3, dtype=torch.float64) - 0.1, torch.randn(3, dtype=torch.float64),
             torch.randn(2, 5, 3, dtype=torch.float64), torch.randn(2, 5, 3, dtype=torch.float64))
gc_inputs = tuple(t.requires_grad_() for t in gc_inputs)
gradcheck_ok = torch.autograd.gradcheck(scan_fn, gc_inputs)
print(f"gradcheck of the complex associative scan: {gradcheck_ok}")

# --- training
model = S5Classifier()
print(f"S5 parameters: {sum(p.numel() for p in model.parameters())}")
train_u, train_y = make_task(768, rng)
test_u, test_y = make_task(512, rng)
ssm_names = ('Lambda_re', 'Lambda_im', 'log_step', 'B')
ssm_params = [p for n, p in model.named_parameters() if n.split('.')[-1] in ssm_names]
other_params = [p for n, p in model.named_parameters() if n.split('.')[-1] not in ssm_names]
optimizer = torch.optim.AdamW([{'params': ssm_params, 'lr': 4e-3, 'weight_decay': 0.0},
                               {'params': other_params}], lr=8e-3, weight_decay=0.05)
EPOCHS, BATCH = 10, 64
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS * (train_u.shape[0] // BATCH))


@torch.no_grad()
def evaluate():
    model.eval()
    logits = model(test_u)
    model.train()
    return F.cross_entropy(logits, test_y).item(), (logits.argmax(1) == test_y).float().mean().item()


loss_start, acc_start = evaluate()
lambda_grad = 0.0
for epoch in range(EPOCHS):
    perm = torch.randperm(train_u.shape[0])
    total = 0.0
    for i in range(0, train_u.shape[0], BATCH):
        idx = perm[i:i + BATCH]
        loss = F.cross_entropy(model(train_u[idx]), train_y[idx])
        optimizer.zero_grad()
        loss.backward()
        lambda_grad += sum(l.seq.Lambda_re.grad.abs().sum().item() + l.seq.Lambda_im.grad.abs().sum().item()
                           for l in model.layers)
        optimizer.step()
        scheduler.step()
        total += loss.item() * idx.numel()
    if epoch % 3 == 2 or epoch == EPOCHS - 1:
        print(f"epoch {epoch} loss {total / train_u.shape[0]:.4f}")

loss_end, acc_end = evaluate()
steps = torch.exp(model.layers[0].seq.log_step.detach())
print(f"learned steps {steps.min().item():.4f} .. {steps.max().item():.4f}, Lambda grads seen {lambda_grad > 0}")
print(f"test loss {loss_start:.4f} -> {loss_end:.4f}, accuracy {acc_start:.4f} -> {acc_end:.4f}")
check_err = max(eig_err, scan_err, conj_err)
print(f"FINAL loss={loss_end:.4f} acc={acc_end:.4f} gradcheck={int(gradcheck_ok)} "
      f"lambda_grad={int(lambda_grad > 0)} check_err={check_err:.3e}")
