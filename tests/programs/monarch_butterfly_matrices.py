"""Monarch matrices (Dao et al. 2022, "Monarch: Expressive Structured Matrices for Efficient and
Accurate Training"), as HazyResearch/fly writes them (``blockdiag_butterfly_multiply.py``,
``monarch_linear.py``), used as the MLP of a tiny classifier.

``MonarchLinear`` holds two block-diagonal factors ``nn.Parameter(torch.empty(nblocks, q, p))``
initialised per block by ``nn.init.kaiming_uniform_(w[i], a=math.sqrt(5))``; inputs are padded to the
extended width by ``F.pad`` and outputs sliced back. The product is fly's ``BlockdiagButterflyMultiply``
forward: ``x.reshape(batch_dim, k, p).transpose(0, 1)``, ``torch.bmm(x, w1.transpose(-1, -2),
out=out1)`` into a transposed ``torch.empty`` (outside autograd), the permutation
``out1.transpose(0, 1).reshape(batch_dim, r, l).transpose(-1, -2).contiguous().transpose(0, 1)``, the
second ``bmm`` and ``permute(1, 2, 0).reshape(*batch_shape, s * l)``; and the reference ``einsum``
version (``'kqp,bkp->bkq'``, ``'lsr,blr->bsl'``).

The task: 4 classes given by a random teacher network on 64-d inputs; a Monarch MLP and a dense MLP
of the same width are trained by Adam. Reports parameter counts and accuracies.

Checks: the Monarch product equals multiplication by its materialised dense matrix (built by applying
it to ``torch.eye(n)``), the einsum and bmm routes agree (values and gradients), and the ``out=``
route equals the autograd one.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn import init

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

N, NBLOCKS, CLASSES = 64, 8, 4


def blockdiag_butterfly_multiply(x, w1_bfly, w2_bfly, out=False):
    batch_shape, n = x.shape[:-1], x.shape[-1]
    batch_dim = int(np.prod(batch_shape))
    k, q, p = w1_bfly.shape
    l, s, r = w2_bfly.shape
    assert k * p == n
    assert l * r == k * q
    x = x.reshape(batch_dim, k, p).transpose(0, 1)
    if out:
        out1 = torch.empty(batch_dim, k, q, dtype=x.dtype).transpose(0, 1)
        out1 = torch.bmm(x, w1_bfly.transpose(-1, -2), out=out1)
    else:
        out1 = torch.bmm(x, w1_bfly.transpose(-1, -2))
    out1 = out1.transpose(0, 1).reshape(batch_dim, r, l).transpose(-1, -2).contiguous().transpose(0, 1)
    out2 = torch.bmm(out1, w2_bfly.transpose(-1, -2))
    return out2.permute(1, 2, 0).reshape(*batch_shape, s * l)


def blockdiag_butterfly_multiply_reference(x, w1_bfly, w2_bfly):
    batch_shape, n = x.shape[:-1], x.shape[-1]
    batch_dim = int(np.prod(batch_shape))
    k, q, p = w1_bfly.shape
    l, s, r = w2_bfly.shape
    x_reshaped = x.reshape(batch_dim, k, p)
    out1 = torch.einsum('kqp,bkp->bkq', w1_bfly, x_reshaped)
    out1 = out1.reshape(batch_dim, k * q).reshape(batch_dim, r, l).transpose(-1, -2)
    out2 = torch.einsum('lsr,blr->bsl', w2_bfly, out1)
    return out2.reshape(batch_dim, s * l).reshape(*batch_shape, s * l)


class MonarchLinear(nn.Module):
    def __init__(self, in_features, out_features, nblocks=4, bias=True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        in_blksz = int(math.ceil(in_features / nblocks))
        out_blksz = int(math.ceil(out_features / nblocks))
        self.in_features_extended = in_blksz * nblocks
        self.out_features_extended = out_blksz * nblocks
        if self.in_features_extended < self.out_features_extended:
            self.blkdiag1 = nn.Parameter(torch.empty(nblocks, in_blksz, in_blksz))
            self.blkdiag2 = nn.Parameter(torch.empty(nblocks, out_blksz, in_blksz))
        else:
            self.blkdiag1 = nn.Parameter(torch.empty(nblocks, out_blksz, in_blksz))
            self.blkdiag2 = nn.Parameter(torch.empty(nblocks, out_blksz, out_blksz))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        for blkdiag in (self.blkdiag1, self.blkdiag2):
            for i in range(blkdiag.shape[0]):
                init.kaiming_uniform_(blkdiag[i], a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x, route="bmm"):
        if self.in_features_extended > self.in_features:
            x = F.pad(x, (0, self.in_features_extended - self.in_features))
        fn = blockdiag_butterfly_multiply if route == "bmm" else blockdiag_butterfly_multiply_reference
        out = fn(x, self.blkdiag1, self.blkdiag2)[..., :self.out_features]
        return out + self.bias if self.bias is not None else out


def mlp(linear):
    return nn.Sequential(linear(N, N), nn.GELU(), linear(N, N), nn.GELU(), nn.Linear(N, CLASSES))


# --- checks: the dense matrix, einsum vs bmm, out= vs autograd (also a padded, non-square layer)
check_err = 0.0
for fin, fout, nb in ((N, N, NBLOCKS), (20, 30, 4)):
    layer = MonarchLinear(fin, fout, nblocks=nb, bias=False).double()
    x = torch.randn(5, 3, fin, dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        dense = layer(torch.eye(fin, dtype=torch.float64)).t()  # (out, in)
    y_bmm = layer(x)
    y_ein = layer(x, route="einsum")
    dense_err = (y_bmm - x @ dense.t()).abs().max().item()
    w = torch.randn_like(y_bmm)
    params = [x, layer.blkdiag1, layer.blkdiag2]
    g_bmm = torch.autograd.grad((y_bmm * w).sum(), params)
    g_ein = torch.autograd.grad((y_ein * w).sum(), params)
    route_err = max([(y_bmm - y_ein).abs().max().item()] + [(a - b).abs().max().item() for a, b in zip(g_bmm, g_ein)])
    with torch.no_grad():
        xp = F.pad(x, (0, layer.in_features_extended - fin))
        y_out = blockdiag_butterfly_multiply(xp, layer.blkdiag1, layer.blkdiag2, out=True)[..., :fout]
    out_err = (y_out - y_bmm).abs().max().item()
    rank = torch.linalg.matrix_rank(dense).item()
    print(f"monarch {fin}->{fout} nblocks {nb}: dense {tuple(dense.shape)} rank {rank}, dense err {dense_err:.2e}, "
          f"einsum vs bmm err {route_err:.2e}, out= err {out_err:.2e}")
    check_err = max(check_err, dense_err, route_err, out_err)

# --- data from a random teacher
g = torch.Generator().manual_seed(1000 + seed)
teacher = (torch.randn(N, 32, generator=g) / math.sqrt(N), torch.randn(32, CLASSES, generator=g) / math.sqrt(32))


def make_data(n):
    x = torch.randn(n, N, generator=g)
    return x, (torch.tanh(x @ teacher[0]) @ teacher[1]).argmax(1)


train_x, train_y = make_data(2048)
test_x, test_y = make_data(1024)

results = {}
for name, linear in (("monarch", lambda i, o: MonarchLinear(i, o, nblocks=NBLOCKS)), ("dense", nn.Linear)):
    torch.manual_seed(seed)
    model = mlp(linear)
    n_params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(6):
        perm = torch.randperm(train_x.size(0))
        total = 0.0
        for i in range(0, train_x.size(0), 64):
            idx = perm[i:i + 64]
            loss = F.cross_entropy(model(train_x[idx]), train_y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * idx.numel()
        if epoch % 2 == 1:
            print(f"{name} epoch {epoch} loss {total / train_x.size(0):.4f}")
    with torch.no_grad():
        acc = (model(test_x).argmax(1) == test_y).float().mean().item()
    print(f"{name}: parameters {n_params}, test accuracy {acc:.4f}")
    results[name] = (n_params, acc)

print(f"FINAL monarch_acc={results['monarch'][1]:.4f} dense_acc={results['dense'][1]:.4f} "
      f"monarch_params={results['monarch'][0]} dense_params={results['dense'][0]} check_err={check_err:.3e}")
