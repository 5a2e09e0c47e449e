"""GaLore (Zhao et al., ICML 2024: gradient low-rank projection) as jiaweizzhao/GaLore writes it
(``galore_torch/adamw.py``, ``galore_torch/galore_projector.py``, ``torchrun_main.py``'s parameter
groups), at tiny sizes, on a synthetic classification task with an MLP.

``AdamW`` is a ``torch.optim.Optimizer`` subclass (``defaults`` with ``correct_bias``, ``@torch.no_grad()``
``step(closure)``) whose GaLore parameter group carries ``rank``, ``update_proj_gap``, ``scale`` and
``proj_type``; each such parameter gets a ``GaLoreProjector`` in ``self.state[p]``, which every
``update_proj_gap`` steps recomputes its projector from ``torch.linalg.svd(matrix, full_matrices=False)``
(``U[:, :rank]`` on the left where the gradient is wide, ``Vh[:rank, :]`` on the right where it is
tall, ``proj_type='std'``; ``'left'``/``'right'``/``'reverse_std'`` too), projects the gradient, keeps
Adam's moments (``mul_``/``add_``/``addcmul_``) in the projected space, and projects the normalised
step back scaled by ``scale``; bias correction by ``math.sqrt(bias_correction2) / bias_correction1``,
decoupled weight decay by ``p.add_(p, alpha=-lr * wd)``. Parameters without ``rank`` (biases, the
first and last layers, chosen by ``named_modules`` + ``isinstance(module, nn.Linear)`` + a name filter
and ``id()``) get plain AdamW.

Checked: the optimiser's moment tensors are rank-sized (numel counted against full AdamW's), every
projector has orthonormal columns (or rows), ``project_back(project(G))`` at a refresh equals the
truncated SVD ``U_r diag(s_r) Vh_r`` of ``G`` and is the best rank-r approximation (its error equals
the tail singular values' norm) for every ``proj_type``, the plain group's step equals the written
formula (eps outside the bias correction, decay after the step, unlike ``torch.optim.AdamW``), and GaLore's training
loss and test accuracy stay within a band of full AdamW's (``torch.optim.AdamW``) on the same MLP.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim import Optimizer

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

D_IN, HIDDEN, N_CLASSES = 24, 96, 5
N_TRAIN, N_TEST = 1024, 512
EPOCHS, BATCH = 8, 64
RANK, GAP, SCALE = 8, 16, 0.25


# ----------------------------------------------------------------------------------- galore_projector.py
class GaLoreProjector:
    def __init__(self, rank, verbose=False, update_proj_gap=200, scale=1.0, proj_type="std"):
        self.rank = rank
        self.verbose = verbose
        self.update_proj_gap = update_proj_gap
        self.scale = scale
        self.ortho_matrix = None
        self.proj_type = proj_type
        self.refreshes = 0

    def project(self, full_rank_grad, iter):
        if self.proj_type == "std":
            if full_rank_grad.shape[0] >= full_rank_grad.shape[1]:
                if self.ortho_matrix is None or iter % self.update_proj_gap == 0:
                    self.ortho_matrix = self.get_orthogonal_matrix(full_rank_grad, self.rank, type="right")
                    self.refreshes += 1
                low_rank_grad = torch.matmul(full_rank_grad, self.ortho_matrix.t())
            else:
                if self.ortho_matrix is None or iter % self.update_proj_gap == 0:
                    self.ortho_matrix = self.get_orthogonal_matrix(full_rank_grad, self.rank, type="left")
                    self.refreshes += 1
                low_rank_grad = torch.matmul(self.ortho_matrix.t(), full_rank_grad)
        elif self.proj_type == "reverse_std":
            if full_rank_grad.shape[0] >= full_rank_grad.shape[1]:
                if self.ortho_matrix is None or iter % self.update_proj_gap == 0:
                    self.ortho_matrix = self.get_orthogonal_matrix(full_rank_grad, self.rank, type="left")
                    self.refreshes += 1
                low_rank_grad = torch.matmul(self.ortho_matrix.t(), full_rank_grad)
            else:
                if self.ortho_matrix is None or iter % self.update_proj_gap == 0:
                    self.ortho_matrix = self.get_orthogonal_matrix(full_rank_grad, self.rank, type="right")
                    self.refreshes += 1
                low_rank_grad = torch.matmul(full_rank_grad, self.ortho_matrix.t())
        elif self.proj_type == "right":
            if self.ortho_matrix is None or iter % self.update_proj_gap == 0:
                self.ortho_matrix = self.get_orthogonal_matrix(full_rank_grad, self.rank, type="right")
                self.refreshes += 1
            low_rank_grad = torch.matmul(full_rank_grad, self.ortho_matrix.t())
        elif self.proj_type == "left":
            if self.ortho_matrix is None or iter % self.update_proj_gap == 0:
                self.ortho_matrix = self.get_orthogonal_matrix(full_rank_grad, self.rank, type="left")
                self.refreshes += 1
            low_rank_grad = torch.matmul(self.ortho_matrix.t(), full_rank_grad)
        return low_rank_grad

    def project_back(self, low_rank_grad):
        if self.proj_type == "std":
            if low_rank_grad.shape[0] >= low_rank_grad.shape[1]:
                full_rank_grad = torch.matmul(low_rank_grad, self.ortho_matrix)
            else:
                full_rank_grad = torch.matmul(self.ortho_matrix, low_rank_grad)
        elif self.proj_type == "reverse_std":
            if low_rank_grad.shape[0] <= low_rank_grad.shape[1]:  # note this is different from std
                full_rank_grad = torch.matmul(self.ortho_matrix, low_rank_grad)
            else:
                full_rank_grad = torch.matmul(low_rank_grad, self.ortho_matrix)
        elif self.proj_type == "right":
            full_rank_grad = torch.matmul(low_rank_grad, self.ortho_matrix)
        elif self.proj_type == "left":
            full_rank_grad = torch.matmul(self.ortho_matrix, low_rank_grad)
        return full_rank_grad * self.scale

    # svd decomposition
    def get_orthogonal_matrix(self, weights, rank, type):
        module_params = weights

        if module_params.data.dtype != torch.float:
            float_data = False
            original_type = module_params.data.dtype
            original_device = module_params.data.device
            matrix = module_params.data.float()
        else:
            float_data = True
            matrix = module_params.data

        U, s, Vh = torch.linalg.svd(matrix, full_matrices=False)

        # make the smaller matrix always to be orthogonal matrix
        if type == "right":
            B = Vh[:rank, :]
            if not float_data:
                B = B.to(original_device).type(original_type)
            return B
        elif type == "left":
            A = U[:, :rank]
            if not float_data:
                A = A.to(original_device).type(original_type)
            return A
        else:
            raise ValueError("type should be left, right or full")


# ----------------------------------------------------------------------------------- adamw.py
class AdamW(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, correct_bias=True):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr} - should be >= 0.0")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter: {betas[0]} - should be in [0.0, 1.0)")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter: {betas[1]} - should be in [0.0, 1.0)")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps} - should be >= 0.0")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "correct_bias": correct_bias}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            loss = closure()

        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if grad.is_sparse:
                    raise RuntimeError("Adam does not support sparse gradients, please consider SparseAdam instead")

                state = self.state[p]

                if "step" not in state:
                    state["step"] = 0

                # GaLore Projection
                if "rank" in group:
                    if "projector" not in state:
                        state["projector"] = GaLoreProjector(group["rank"], update_proj_gap=group["update_proj_gap"],
                                                             scale=group["scale"], proj_type=group["proj_type"])
                    grad = state["projector"].project(grad, state["step"])

                # State initialization
                if "exp_avg" not in state:
                    # Exponential moving average of gradient values
                    state["exp_avg"] = torch.zeros_like(grad)
                    # Exponential moving average of squared gradient values
                    state["exp_avg_sq"] = torch.zeros_like(grad)

                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                beta1, beta2 = group["betas"]

                state["step"] += 1

                # Decay the first and second moment running average coefficient
                # In-place operations to update the averages at the same time
                exp_avg.mul_(beta1).add_(grad, alpha=(1.0 - beta1))
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                denom = exp_avg_sq.sqrt().add_(group["eps"])

                step_size = group["lr"]
                if group["correct_bias"]:  # No bias correction for Bert
                    bias_correction1 = 1.0 - beta1 ** state["step"]
                    bias_correction2 = 1.0 - beta2 ** state["step"]
                    step_size = step_size * math.sqrt(bias_correction2) / bias_correction1

                # compute norm gradient
                norm_grad = exp_avg / denom

                # GaLore Projection Back
                if "rank" in group:
                    norm_grad = state["projector"].project_back(norm_grad)

                p.add_(norm_grad, alpha=-step_size)

                # Just adding the square of the weights to the loss function is *not*
                # the correct way of using L2 regularization/weight decay with Adam,
                # since that will interact with the m and v parameters in strange ways.
                if group["weight_decay"] > 0.0:
                    p.add_(p, alpha=(-group["lr"] * group["weight_decay"]))

        return loss


# ----------------------------------------------------------------------------------- data and model
rng = np.random.RandomState(1234)
centers = rng.randn(N_CLASSES, 4).astype(np.float32) * 2.0
lift = rng.randn(4, D_IN).astype(np.float32)


def split(n):
    y = rng.randint(0, N_CLASSES, size=n)
    z = centers[y] + rng.randn(n, 4).astype(np.float32)
    x = np.tanh(z @ lift) + 0.3 * rng.randn(n, D_IN).astype(np.float32)
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y).long()


x_train, y_train = split(N_TRAIN)
x_test, y_test = split(N_TEST)


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.ln = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        return x + self.mlp(self.ln(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(D_IN, HIDDEN)
        self.blocks = nn.ModuleList([Block(HIDDEN) for _ in range(2)])
        self.head = nn.Linear(HIDDEN, N_CLASSES)

    def forward(self, x):
        x = self.embed(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def galore_param_groups(model, rank, update_proj_gap, scale, proj_type):
    galore_params = []
    target_modules_list = ["attn", "mlp"]
    for module_name, module in model.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        if not any(target_key in module_name for target_key in target_modules_list):
            continue
        galore_params.append(module.weight)
    id_galore_params = [id(p) for p in galore_params]
    # make parameters without "rank" to another group
    regular_params = [p for p in model.parameters() if id(p) not in id_galore_params]
    # then call galore_adamw
    return [{"params": regular_params},
            {"params": galore_params, "rank": rank, "update_proj_gap": update_proj_gap, "scale": scale,
             "proj_type": proj_type}], galore_params


def state_numel(optimizer):
    return sum(v.numel() for state in optimizer.state.values() for k, v in state.items()
               if k in ("exp_avg", "exp_avg_sq"))


def train(model, optimizer, log_name):
    g = torch.Generator().manual_seed(seed)
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(N_TRAIN, generator=g)
        total = 0.0
        for i in range(0, N_TRAIN, BATCH):
            idx = perm[i:i + BATCH]
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        if epoch % 4 == 3:
            print(f"{log_name} epoch {epoch} train loss {total / N_TRAIN:.4f}")
    model.eval()
    with torch.no_grad():
        logits = model(x_test)
        test_loss = F.cross_entropy(logits, y_test).item()
        acc = (logits.argmax(1) == y_test).float().mean().item()
    return total / N_TRAIN, test_loss, acc


init = Net()
init_state = {k: v.clone() for k, v in init.state_dict().items()}

# full AdamW (torch's) as the reference
full = Net()
full.load_state_dict(init_state)
full_opt = torch.optim.AdamW(full.parameters(), lr=3e-3, weight_decay=0.01)
full_train, full_test, full_acc = train(full, full_opt, "adamw")

# GaLore AdamW
model = Net()
model.load_state_dict(init_state)
param_groups, galore_params = galore_param_groups(model, RANK, GAP, SCALE, "std")
optimizer = AdamW(param_groups, lr=1e-2, weight_decay=0.01)
galore_train, galore_test, galore_acc = train(model, optimizer, "galore")

# memory: the GaLore group's moments are rank-sized
galore_numel = sum(optimizer.state[p]["exp_avg"].numel() for p in galore_params)
galore_full_numel = sum(p.numel() for p in galore_params)
rank_sized = all(
    optimizer.state[p]["exp_avg"].shape == ((p.shape[0], RANK) if p.shape[0] >= p.shape[1] else (RANK, p.shape[1]))
    for p in galore_params
)
print(f"galore params {len(galore_params)}: moments {galore_numel} numel per moment vs {galore_full_numel} full")
print(f"optimizer states: galore {state_numel(optimizer)} numel, adamw {sum(2 * p.numel() for p in full.parameters())}")
refreshes = [optimizer.state[p]["projector"].refreshes for p in galore_params]
steps = optimizer.state[galore_params[0]]["step"]
print(f"steps {steps}, projector refreshes per param {refreshes[0]}")

# orthonormal projectors
ortho_err = 0.0
for p in galore_params:
    P = optimizer.state[p]["projector"].ortho_matrix
    gram = P @ P.t() if P.shape[0] == RANK else P.t() @ P
    ortho_err = max(ortho_err, (gram - torch.eye(RANK)).abs().max().item())
print(f"projector orthonormality error {ortho_err:.2e}")

# project_back(project(G)) at a refresh is the truncated SVD, the best rank-r approximation
G = torch.randn(40, 24) @ torch.diag(torch.logspace(0, -2, 24)) @ torch.randn(24, 24)
recon_err, tail_err = 0.0, 0.0
for proj_type, matrix in (("std", G), ("std", G.t()), ("left", G), ("right", G), ("reverse_std", G)):
    projector = GaLoreProjector(6, update_proj_gap=GAP, scale=1.0, proj_type=proj_type)
    back = projector.project_back(projector.project(matrix, 0))
    U, s, Vh = torch.linalg.svd(matrix, full_matrices=False)
    truncated = U[:, :6] @ torch.diag(s[:6]) @ Vh[:6, :]
    recon_err = max(recon_err, (back - truncated).abs().max().item() / truncated.abs().max().item())
    tail = torch.sqrt((s[6:] ** 2).sum())
    tail_err = max(tail_err, abs(torch.linalg.norm(matrix - back).item() - tail.item()) / tail.item())
print(f"project_back(project(G)) vs truncated svd {recon_err:.2e}, residual vs tail norm {tail_err:.2e}")

# the plain group against the hand formula (eps outside the bias correction, decay after the step)
w = torch.randn(5, 3)
p = nn.Parameter(w.clone())
opt = AdamW([p], lr=0.1, weight_decay=0.1)
m, v, ref = torch.zeros(5, 3), torch.zeros(5, 3), w.clone()
for t in range(1, 4):
    g = torch.sin(t * ref) + 0.1 * t
    p.grad = torch.sin(t * p.detach()) + 0.1 * t
    opt.step()
    m = 0.9 * m + 0.1 * g
    v = 0.999 * v + 0.001 * g * g
    ref = ref - 0.1 * math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t) * m / (v.sqrt() + 1e-6)
    ref = ref - 0.1 * 0.1 * ref
plain_err = (p.detach() - ref).abs().max().item()
print(f"plain group vs formula {plain_err:.2e}")

print(f"adamw: train {full_train:.4f} test {full_test:.4f} acc {full_acc:.4f}")
print(f"galore: train {galore_train:.4f} test {galore_test:.4f} acc {galore_acc:.4f}")
print(
    f"FINAL adamw_train={full_train:.4f} adamw_test={full_test:.4f} adamw_acc={full_acc:.4f} "
    f"galore_train={galore_train:.4f} galore_test={galore_test:.4f} galore_acc={galore_acc:.4f} "
    f"acc_gap={full_acc - galore_acc:.4f} train_ratio={galore_train / full_train:.4f} moment_ratio={galore_numel / galore_full_numel:.4f} "
    f"rank_sized={int(rank_sized)} ortho_err={ortho_err:.2e} recon_err={recon_err:.2e} tail_err={tail_err:.2e} "
    f"plain_err={plain_err:.2e} refreshes={refreshes[0]}"
)
