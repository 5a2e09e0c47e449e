"""AlphaFold2's Evoformer pair stack at toy sizes, written the way openfold and lucidrains'
alphafold2 write it, on a distance-geometry task: predict the pairwise distance bins of random
3-D point clouds from an MSA of noisy coordinate copies and noisy pair features.

Pieces: ``OuterProductMean`` (``einsum('bsic,bsjd->bijcd') / S`` + ``flatten(-2)``),
``TriangleMultiplicationOutgoing``/``Incoming`` (gated ``a``/``b`` projections, ``einsum('bikc,bjkc->bijc')``
and ``'bkic,bkjc->bijc'``, ``LayerNorm`` + output gate), ``TriangleAttentionStartingNode``/``EndingNode``
(pair bias from ``Linear(c_z, heads, bias=False)`` permuted into the logits, the ending node by
``transpose(-2, -3)``), ``PairTransition``, openfold's ``DropoutRowwise``/``DropoutColumnwise``
(``Dropout`` on a ``new_ones`` mask with one dim of size 1, broadcast), ``torch.cdist`` targets binned
by ``torch.bucketize``, and the distogram head symmetrised by ``logits + logits.transpose(1, 2)``.

Checks: the incoming update equals the outgoing one run on the transposed pair tensor (with the
``a``/``b`` projections swapped), the symmetrised logits are exactly symmetric, the loss falls and
distogram accuracy rises.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

N_RES = 10          # points per cloud
N_SEQ = 4           # MSA depth: noisy copies of the coordinates
C_M, C_Z = 8, 16
N_BINS = 8
BOUNDARIES = torch.linspace(0.5, 3.5, N_BINS - 1)


def make_clouds(n, rng):
    coords = rng.randn(n, N_RES, 3).astype(np.float32)
    msa = coords[:, None] + 0.3 * rng.randn(n, N_SEQ, N_RES, 3).astype(np.float32)
    return torch.from_numpy(coords), torch.from_numpy(msa)


class Dropout(nn.Module):
    """openfold's shared dropout: one mask for every row (or column) of the pair tensor."""

    def __init__(self, r, batch_dim):
        super().__init__()
        self.r = r
        self.batch_dim = batch_dim
        self.dropout = nn.Dropout(self.r)

    def forward(self, x):
        shape = list(x.shape)
        shape[self.batch_dim] = 1
        mask = x.new_ones(shape)
        mask = self.dropout(mask)
        return x * mask


class DropoutRowwise(Dropout):
    def __init__(self, r):
        super().__init__(r, batch_dim=-3)


class DropoutColumnwise(Dropout):
    def __init__(self, r):
        super().__init__(r, batch_dim=-2)


class OuterProductMean(nn.Module):
    def __init__(self, c_m, c_z, c_hidden):
        super().__init__()
        self.layer_norm = nn.LayerNorm(c_m)
        self.linear_1 = nn.Linear(c_m, c_hidden)
        self.linear_2 = nn.Linear(c_m, c_hidden)
        self.linear_out = nn.Linear(c_hidden * c_hidden, c_z)

    def forward(self, m):
        m = self.layer_norm(m)
        a = self.linear_1(m)
        b = self.linear_2(m)
        outer = torch.einsum("bsic,bsjd->bijcd", a, b) / m.shape[1]
        outer = outer.flatten(-2)
        return self.linear_out(outer)


class TriangleMultiplicativeUpdate(nn.Module):
    def __init__(self, c_z, c_hidden, _outgoing=True):
        super().__init__()
        self._outgoing = _outgoing
        self.linear_a_p = nn.Linear(c_z, c_hidden)
        self.linear_a_g = nn.Linear(c_z, c_hidden)
        self.linear_b_p = nn.Linear(c_z, c_hidden)
        self.linear_b_g = nn.Linear(c_z, c_hidden)
        self.linear_g = nn.Linear(c_z, c_z)
        self.linear_z = nn.Linear(c_hidden, c_z)
        self.layer_norm_in = nn.LayerNorm(c_z)
        self.layer_norm_out = nn.LayerNorm(c_hidden)

    def _combine_projections(self, a, b):
        if self._outgoing:
            return torch.einsum("bikc,bjkc->bijc", a, b)
        return torch.einsum("bkic,bkjc->bijc", a, b)

    def forward(self, z, mask):
        mask = mask.unsqueeze(-1)
        z = self.layer_norm_in(z)
        a = mask * torch.sigmoid(self.linear_a_g(z)) * self.linear_a_p(z)
        b = mask * torch.sigmoid(self.linear_b_g(z)) * self.linear_b_p(z)
        x = self._combine_projections(a, b)
        x = self.layer_norm_out(x)
        x = self.linear_z(x)
        g = torch.sigmoid(self.linear_g(z))
        return x * g


class TriangleMultiplicationOutgoing(TriangleMultiplicativeUpdate):
    def __init__(self, c_z, c_hidden):
        super().__init__(c_z, c_hidden, _outgoing=True)


class TriangleMultiplicationIncoming(TriangleMultiplicativeUpdate):
    def __init__(self, c_z, c_hidden):
        super().__init__(c_z, c_hidden, _outgoing=False)


class TriangleAttention(nn.Module):
    def __init__(self, c_in, c_hidden, no_heads, starting=True, inf=1e9):
        super().__init__()
        self.c_hidden = c_hidden
        self.no_heads = no_heads
        self.starting = starting
        self.inf = inf
        self.layer_norm = nn.LayerNorm(c_in)
        self.linear = nn.Linear(c_in, no_heads, bias=False)
        self.linear_q = nn.Linear(c_in, c_hidden * no_heads, bias=False)
        self.linear_k = nn.Linear(c_in, c_hidden * no_heads, bias=False)
        self.linear_v = nn.Linear(c_in, c_hidden * no_heads, bias=False)
        self.linear_g = nn.Linear(c_in, c_hidden * no_heads)
        self.linear_o = nn.Linear(c_hidden * no_heads, c_in)

    def _heads(self, t):
        # [B, I, J, H * C] -> [B, I, H, J, C]
        return t.view(t.shape[:-1] + (self.no_heads, self.c_hidden)).transpose(-2, -3)

    def forward(self, x, mask):
        if not self.starting:
            x = x.transpose(-2, -3)
            mask = mask.transpose(-1, -2)
        x = self.layer_norm(x)
        mask_bias = (self.inf * (mask - 1))[..., :, None, None, :]
        triangle_bias = self.linear(x).permute(0, 3, 1, 2).unsqueeze(1)
        q = self._heads(self.linear_q(x)) / math.sqrt(self.c_hidden)
        k = self._heads(self.linear_k(x))
        v = self._heads(self.linear_v(x))
        a = torch.matmul(q, k.transpose(-1, -2)) + mask_bias + triangle_bias
        a = torch.softmax(a, dim=-1)
        o = torch.matmul(a, v).transpose(-2, -3)
        g = torch.sigmoid(self.linear_g(x)).view(o.shape)
        o = (o * g).reshape(o.shape[:-2] + (-1,))
        o = self.linear_o(o)
        if not self.starting:
            o = o.transpose(-2, -3)
        return o


class PairTransition(nn.Module):
    def __init__(self, c_z, n):
        super().__init__()
        self.layer_norm = nn.LayerNorm(c_z)
        self.linear_1 = nn.Linear(c_z, n * c_z)
        self.relu = nn.ReLU()
        self.linear_2 = nn.Linear(n * c_z, c_z)

    def forward(self, z, mask):
        z = self.layer_norm(z)
        return self.linear_2(self.relu(self.linear_1(z))) * mask.unsqueeze(-1)


class PairStack(nn.Module):
    def __init__(self, c_z, c_hidden_mul=16, c_hidden_att=8, no_heads=2, dropout=0.1):
        super().__init__()
        self.tri_mul_out = TriangleMultiplicationOutgoing(c_z, c_hidden_mul)
        self.tri_mul_in = TriangleMultiplicationIncoming(c_z, c_hidden_mul)
        self.tri_att_start = TriangleAttention(c_z, c_hidden_att, no_heads, starting=True)
        self.tri_att_end = TriangleAttention(c_z, c_hidden_att, no_heads, starting=False)
        self.pair_transition = PairTransition(c_z, 2)
        self.dropout_row = DropoutRowwise(dropout)
        self.dropout_col = DropoutColumnwise(dropout)

    def forward(self, z, pair_mask):
        z = z + self.dropout_row(self.tri_mul_out(z, pair_mask))
        z = z + self.dropout_row(self.tri_mul_in(z, pair_mask))
        z = z + self.dropout_row(self.tri_att_start(z, pair_mask))
        z = z + self.dropout_col(self.tri_att_end(z, pair_mask))
        z = z + self.pair_transition(z, pair_mask)
        return z


class DistogramNet(nn.Module):
    def __init__(self, n_blocks=2):
        super().__init__()
        self.msa_embed = nn.Linear(3, C_M)
        self.pair_embed = nn.Linear(N_BINS, C_Z)
        self.outer_product_mean = OuterProductMean(C_M, C_Z, 4)
        self.blocks = nn.ModuleList([PairStack(C_Z) for _ in range(n_blocks)])
        self.distogram = nn.Linear(C_Z, N_BINS)

    def forward(self, msa, pair_feat, pair_mask):
        z = self.pair_embed(pair_feat) + self.outer_product_mean(self.msa_embed(msa))
        for block in self.blocks:
            z = block(z, pair_mask)
        logits = self.distogram(z)
        return logits + logits.transpose(1, 2), z


def featurize(coords, msa, gen):
    """Targets from the true distances, inputs from badly noisy ones (one-hot bins)."""
    dist = torch.cdist(coords, coords)
    target = torch.bucketize(dist, BOUNDARIES)
    noisy = coords + 0.6 * torch.randn(coords.shape, generator=gen)
    noisy_bins = torch.bucketize(torch.cdist(noisy, noisy), BOUNDARIES)
    pair_feat = F.one_hot(noisy_bins, N_BINS).float()
    pair_mask = coords.new_ones(coords.shape[:2] + (coords.shape[1],))
    return pair_feat, pair_mask, target


rng = np.random.RandomState(0)
train_coords, train_msa = make_clouds(256, rng)
test_coords, test_msa = make_clouds(64, rng)
gen = torch.Generator().manual_seed(1234)
train_pair, train_mask, train_target = featurize(train_coords, train_msa, gen)
test_pair, test_mask, test_target = featurize(test_coords, test_msa, gen)
print(f"clouds: train {tuple(train_coords.shape)} test {tuple(test_coords.shape)} msa {tuple(train_msa.shape)}")
print(f"bins: {N_BINS} target dtype {train_target.dtype} counts {torch.bincount(train_target.flatten(), minlength=N_BINS).shape[0]}")

# the incoming update is the outgoing one on the transposed pair tensor: einsum level ...
a = torch.randn(2, 5, 5, 3)
b = torch.randn(2, 5, 5, 3)
incoming = torch.einsum("bkic,bkjc->bijc", a, b)
outgoing_t = torch.einsum("bikc,bjkc->bijc", a.transpose(1, 2), b.transpose(1, 2))
einsum_err = (incoming - outgoing_t).abs().max().item()
# ... and module level, the outgoing module holding the incoming's weights with a and b swapped
tri_in = TriangleMultiplicationIncoming(C_Z, 8)
tri_out = TriangleMultiplicationOutgoing(C_Z, 8)
swap = {"linear_a_p": "linear_b_p", "linear_b_p": "linear_a_p",
        "linear_a_g": "linear_b_g", "linear_b_g": "linear_a_g"}
state = {}
for key, value in tri_in.state_dict().items():
    layer, param = key.split(".")
    state[f"{swap.get(layer, layer)}.{param}"] = value
tri_out.load_state_dict(state)
z0 = torch.randn(3, 6, 6, C_Z)
m0 = torch.ones(3, 6, 6)
m0[:, :, -1] = 0
m0[:, -1, :] = 0
with torch.no_grad():
    via_in = tri_in(z0, m0)
    via_out = tri_out(z0.transpose(1, 2), m0.transpose(1, 2)).transpose(1, 2)
tri_err = max(einsum_err, (via_in - via_out).abs().max().item())
print(f"incoming == outgoing on the transpose: {tri_err < 1e-5}")
assert tri_err < 1e-5, tri_err

model = DistogramNet()
n_params = sum(p.numel() for p in model.parameters())
print(f"parameters: {n_params}")
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)


def evaluate():
    model.eval()
    with torch.no_grad():
        logits, z = model(test_msa, test_pair, test_mask)
        loss = F.cross_entropy(logits.permute(0, 3, 1, 2), test_target)
        acc = (logits.argmax(-1) == test_target).float().mean()
        sym = (logits - logits.transpose(1, 2)).abs().max()
        z_asym = (z - z.transpose(1, 2)).norm() / z.norm()
    model.train()
    return loss.item(), acc.item(), sym.item(), z_asym.item()


loss0, acc0, _, _ = evaluate()
print(f"before: loss {loss0:.4f} acc {acc0:.4f}")
batch_size = 16
for epoch in range(3):
    perm = torch.randperm(train_coords.shape[0])
    total = 0.0
    for i in range(0, perm.numel(), batch_size):
        idx = perm[i:i + batch_size]
        logits, _ = model(train_msa[idx], train_pair[idx], train_mask[idx])
        loss = F.cross_entropy(logits.reshape(-1, N_BINS), train_target[idx].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        total += loss.item() * idx.numel()
    test_loss, test_acc, sym_err, z_asym = evaluate()
    print(f"epoch {epoch}: train {total / perm.numel():.4f} test {test_loss:.4f} acc {test_acc:.4f} pair asym {z_asym:.3f}")

assert sym_err == 0.0, sym_err
assert test_loss < loss0 and test_acc > acc0
print(f"FINAL loss={test_loss:.4f} acc={test_acc:.4f} acc_gain={test_acc - acc0:.4f} tri_err={tri_err:.2e}")
