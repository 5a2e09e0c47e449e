"""Transolver (Wu et al. 2024, thuml/Transolver `Physics_Attention_Irregular_Mesh`) as a PDE surrogate
on a synthetic irregular mesh.

Each sample is a cloud of random points in the unit square with a source field f; the target is a
Poisson-like response u = sum_j G(x_i, y_j) f_j (a smoothed Green's-function sum over the points).
The model is the repository's: a preprocess MLP, a stack of `Transolver_block`s (LayerNorm,
`Physics_Attention_Irregular_Mesh`, LayerNorm, MLP, residuals) and a last block projecting to one
output. Physics attention: `fx_mid` and `x_mid` from two linear maps `.reshape(B, N, heads,
dim_head).permute(0, 2, 1, 3).contiguous()`, slice weights
`self.softmax(self.in_project_slice(x_mid) / self.temperature)` with the learnable per-head
`nn.Parameter(torch.ones([1, heads, 1, 1]) * 0.5)` temperature, `in_project_slice` initialised by
`torch.nn.init.orthogonal_`, slice tokens `torch.einsum("bhnc,bhng->bhgc", fx_mid, slice_weights)`
normalised by `slice_norm[:, :, :, None] + 1e-5` with `slice_norm = slice_weights.sum(2)`, attention
among the slice tokens (`torch.matmul(q, k.transpose(-1, -2)) * self.scale`, `self.softmax`,
`self.dropout`; and `F.scaled_dot_product_attention`, which must agree), deslicing by
`torch.einsum("bhgc,bhng->bhnc", out_slice_token, slice_weights)` and `rearrange(out_x, 'b h n d ->
b n (h d)')` written as `permute` + `reshape`; `trunc_normal_` Linear init through `self.apply`,
AdamW + `OneCycleLR`, `clip_grad_norm_`; relative L2 error as the repository's `LpLoss`.

Checks: the einsum slicing and deslicing equal `torch.bmm` and a Python loop over slices (values and
gradients); slice weights sum to 1 over the slices; SDPA equals the explicit softmax attention.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.init import trunc_normal_

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

N_POINTS, N_TRAIN, N_TEST = 64, 128, 48
EPOCHS, BATCH = 10, 16


def make_data(n, rng):
    pos = rng.rand(n, N_POINTS, 2).astype(np.float32)
    centres = rng.rand(n, 2, 2)
    widths = rng.uniform(0.1, 0.25, (n, 2, 1))
    d = ((pos[:, None, :, :] - centres[:, :, None, :]) ** 2).sum(-1)
    f = (np.exp(-d / (2 * widths ** 2)) * np.array([1.0, -1.0])[None, :, None]).sum(1).astype(np.float32)
    r2 = ((pos[:, :, None, :] - pos[:, None, :, :]) ** 2).sum(-1)
    green = -np.log(np.sqrt(r2) + 0.05) / (2 * np.pi)
    u = (green @ f[..., None])[..., 0] / N_POINTS
    u = u - u.mean(1, keepdims=True)
    return torch.from_numpy(pos), torch.from_numpy(f[..., None]), torch.from_numpy(u[..., None].astype(np.float32))


class LpLoss:
    def __init__(self, p=2, size_average=True):
        self.p, self.size_average = p, size_average

    def rel(self, x, y):
        num_examples = x.size()[0]
        diff_norms = torch.norm(x.reshape(num_examples, -1) - y.reshape(num_examples, -1), self.p, 1)
        y_norms = torch.norm(y.reshape(num_examples, -1), self.p, 1)
        return torch.mean(diff_norms / y_norms) if self.size_average else torch.sum(diff_norms / y_norms)

    def __call__(self, x, y):
        return self.rel(x, y)


class MLP(nn.Module):
    def __init__(self, n_input, n_hidden, n_output, n_layers=1, act=nn.GELU, res=True):
        super().__init__()
        self.linear_pre = nn.Sequential(nn.Linear(n_input, n_hidden), act())
        self.linear_post = nn.Linear(n_hidden, n_output)
        self.linears = nn.ModuleList([nn.Sequential(nn.Linear(n_hidden, n_hidden), act()) for _ in range(n_layers)])
        self.res = res

    def forward(self, x):
        x = self.linear_pre(x)
        for layer in self.linears:
            x = layer(x) + x if self.res else layer(x)
        return self.linear_post(x)


class Physics_Attention_Irregular_Mesh(nn.Module):
    def __init__(self, dim, heads=4, dim_head=8, dropout=0.0, slice_num=8, use_sdpa=False):
        super().__init__()
        inner_dim = dim_head * heads
        self.dim_head, self.heads = dim_head, heads
        self.scale = dim_head ** -0.5
        self.softmax = nn.Softmax(dim=-1)
        self.dropout = nn.Dropout(dropout)
        self.temperature = nn.Parameter(torch.ones([1, heads, 1, 1]) * 0.5)
        self.use_sdpa = use_sdpa
        self.in_project_x = nn.Linear(dim, inner_dim)
        self.in_project_fx = nn.Linear(dim, inner_dim)
        self.in_project_slice = nn.Linear(dim_head, slice_num)
        for l in [self.in_project_slice]:
            torch.nn.init.orthogonal_(l.weight)
        self.to_q = nn.Linear(dim_head, dim_head, bias=False)
        self.to_k = nn.Linear(dim_head, dim_head, bias=False)
        self.to_v = nn.Linear(dim_head, dim_head, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner_dim, dim), nn.Dropout(dropout))

    def slice(self, x):
        B, N, C = x.shape
        fx_mid = self.in_project_fx(x).reshape(B, N, self.heads, self.dim_head).permute(0, 2, 1, 3).contiguous()
        x_mid = self.in_project_x(x).reshape(B, N, self.heads, self.dim_head).permute(0, 2, 1, 3).contiguous()
        slice_weights = self.softmax(self.in_project_slice(x_mid) / self.temperature)  # B H N G
        return fx_mid, slice_weights

    def forward(self, x):
        B, N, C = x.shape
        fx_mid, slice_weights = self.slice(x)
        slice_norm = slice_weights.sum(2)  # B H G
        slice_token = torch.einsum("bhnc,bhng->bhgc", fx_mid, slice_weights)
        slice_token = slice_token / ((slice_norm + 1e-5)[:, :, :, None].repeat(1, 1, 1, self.dim_head))

        q_slice_token = self.to_q(slice_token)
        k_slice_token = self.to_k(slice_token)
        v_slice_token = self.to_v(slice_token)
        if self.use_sdpa:
            out_slice_token = F.scaled_dot_product_attention(q_slice_token, k_slice_token, v_slice_token)
        else:
            dots = torch.matmul(q_slice_token, k_slice_token.transpose(-1, -2)) * self.scale
            attn = self.softmax(dots)
            attn = self.dropout(attn)
            out_slice_token = torch.matmul(attn, v_slice_token)

        out_x = torch.einsum("bhgc,bhng->bhnc", out_slice_token, slice_weights)
        out_x = out_x.permute(0, 2, 1, 3).reshape(B, N, self.heads * self.dim_head)
        return self.to_out(out_x)


class Transolver_block(nn.Module):
    def __init__(self, hidden_dim, num_heads, mlp_ratio=2, slice_num=8, last_layer=False, out_dim=1):
        super().__init__()
        self.last_layer = last_layer
        self.ln_1 = nn.LayerNorm(hidden_dim)
        self.Attn = Physics_Attention_Irregular_Mesh(hidden_dim, heads=num_heads, dim_head=hidden_dim // num_heads,
                                                     slice_num=slice_num)
        self.ln_2 = nn.LayerNorm(hidden_dim)
        self.mlp = MLP(hidden_dim, hidden_dim * mlp_ratio, hidden_dim, n_layers=0, res=False)
        if self.last_layer:
            self.ln_3 = nn.LayerNorm(hidden_dim)
            self.mlp2 = nn.Linear(hidden_dim, out_dim)

    def forward(self, fx):
        fx = self.Attn(self.ln_1(fx)) + fx
        fx = self.mlp(self.ln_2(fx)) + fx
        if self.last_layer:
            return self.mlp2(self.ln_3(fx))
        return fx


class Model(nn.Module):
    def __init__(self, space_dim=2, fun_dim=1, n_layers=2, n_hidden=32, n_head=4, slice_num=8, out_dim=1):
        super().__init__()
        self.preprocess = MLP(fun_dim + space_dim, n_hidden * 2, n_hidden, n_layers=0, res=False)
        self.blocks = nn.ModuleList([Transolver_block(n_hidden, n_head, slice_num=slice_num,
                                                      last_layer=(i == n_layers - 1), out_dim=out_dim)
                                     for i in range(n_layers)])
        self.placeholder = nn.Parameter((1 / n_hidden) * torch.rand(n_hidden, dtype=torch.float))
        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, (nn.LayerNorm, nn.BatchNorm1d)):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)

    def forward(self, x, fx):
        fx = self.preprocess(torch.cat((x, fx), -1)) + self.placeholder[None, None, :]
        for block in self.blocks:
            fx = block(fx)
        return fx


rng = np.random.RandomState(seed)
train_x, train_f, train_u = make_data(N_TRAIN, rng)
test_x, test_f, test_u = make_data(N_TEST, rng)
scale = train_u.std()
print(f"mesh {tuple(train_x.shape)} field {tuple(train_f.shape)} target {tuple(train_u.shape)}")

model = Model()
attn = model.blocks[0].Attn
fresh = Physics_Attention_Irregular_Mesh(32, heads=4, dim_head=8, slice_num=8).in_project_slice.weight
orth_err = (fresh @ fresh.T - torch.eye(8)).abs().max().item()
print(f"temperature {tuple(attn.temperature.shape)} fresh slice projection orthogonal err {orth_err:.1e}")

# --- check: einsum slicing/deslicing == bmm == loop over slices (values and gradients)
probe = torch.randn(2, 24, 32, requires_grad=True)
fx_mid, sw = attn.slice(probe)
tok_einsum = torch.einsum("bhnc,bhng->bhgc", fx_mid, sw)
B, H, Np, C = fx_mid.shape
G = sw.shape[-1]
tok_bmm = torch.bmm(sw.reshape(B * H, Np, G).transpose(1, 2), fx_mid.reshape(B * H, Np, C)).view(B, H, G, C)
tok_loop = torch.stack([(fx_mid * sw[..., g:g + 1]).sum(2) for g in range(G)], dim=2)
des_einsum = torch.einsum("bhgc,bhng->bhnc", tok_einsum, sw)
des_bmm = torch.bmm(sw.reshape(B * H, Np, G), tok_bmm.reshape(B * H, G, C)).view(B, H, Np, C)
(gx_e,) = torch.autograd.grad(des_einsum.pow(2).sum(), probe, retain_graph=True)
(gx_b,) = torch.autograd.grad(des_bmm.pow(2).sum(), probe, retain_graph=True)
slice_err = max((tok_einsum - tok_bmm).abs().max().item(), (tok_einsum - tok_loop).abs().max().item(),
                (des_einsum - des_bmm).abs().max().item(), (gx_e - gx_b).abs().max().item())
sum_err = (sw.sum(-1) - 1).abs().max().item()
sdpa_attn = Physics_Attention_Irregular_Mesh(32, heads=4, dim_head=8, use_sdpa=True)
sdpa_attn.load_state_dict(attn.state_dict())
sdpa_err = (sdpa_attn(probe) - attn(probe)).abs().max().item()
print(f"slice einsum/bmm/loop err {slice_err:.2e} weights sum err {sum_err:.2e} sdpa err {sdpa_err:.2e}")

myloss = LpLoss(size_average=False)
optimizer = torch.optim.AdamW(model.parameters(), lr=4e-3, weight_decay=1e-5)
steps_per_epoch = N_TRAIN // BATCH
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=4e-3, epochs=EPOCHS, steps_per_epoch=steps_per_epoch)


def evaluate():
    model.eval()
    with torch.no_grad():
        out = model(test_x, test_f) * scale
        return myloss(out, test_u).item() / N_TEST


rel_before = evaluate()
for ep in range(EPOCHS):
    model.train()
    perm = torch.randperm(N_TRAIN)
    train_loss = 0.0
    for i in range(steps_per_epoch):
        idx = perm[i * BATCH:(i + 1) * BATCH]
        out = model(train_x[idx], train_f[idx]) * scale
        loss = myloss(out, train_u[idx])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
        scheduler.step()
        train_loss += loss.item()
    if (ep + 1) % 5 == 0:
        print(f"epoch {ep + 1} train rel l2 {train_loss / N_TRAIN:.4f} test rel l2 {evaluate():.4f} "
              f"lr {scheduler.get_last_lr()[0]:.2e}")

rel_after = evaluate()
temps = torch.stack([b.Attn.temperature.detach().flatten() for b in model.blocks])
print(f"rel l2 before {rel_before:.4f} after {rel_after:.4f}; temperatures {temps.min().item():.3f}..{temps.max().item():.3f}")
print(f"FINAL rel_l2={rel_after:.4f} rel_l2_before={rel_before:.4f} temp_mean={temps.mean().item():.4f} "
      f"orth_err={orth_err:.2e} slice_err={slice_err:.2e} sum_err={sum_err:.2e} sdpa_err={sdpa_err:.2e}")
