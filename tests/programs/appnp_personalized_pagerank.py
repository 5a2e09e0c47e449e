"""APPNP ("Predict then Propagate", Klicpera et al., ICLR 2019) as klicperajo/ppnp's PyTorch code and PyG's
``APPNP`` write it, on a synthetic stochastic-block-model graph with noisy node features.

ppnp's ``calc_A_hat`` (``A + I``, ``D^-1/2``) and ``calc_ppr_exact`` (``torch.linalg.inv``, ``PPRExact``'s
``self.dropout(self.mat[idx]) @ predictions``) become torch here: the adjacency with self loops as
``torch.sparse_coo_tensor(edge_index, values, (n, n)).coalesce()``, degrees by ``scatter_add_`` (and by
``index_add_``, must agree), ``deg.pow(-0.5)`` with the PyG ``masked_fill_(deg_inv_sqrt == float('inf'), 0)``
guard, the edge weights ``deg_inv_sqrt[row] * edge_weight * deg_inv_sqrt[col]``. ``PPRPowerIteration``
registers ``(1 - alpha) * A_hat`` as a sparse buffer and iterates ``preds = A_drop @ preds + self.alpha * local_preds`` (sparse @ dense); its
``MixedDropout``/``SparseDropout`` drop the adjacency's values by ``F.dropout(input_coal._values(), p,
self.training)`` and rebuild the sparse tensor from ``_indices()``. ``MixedLinear`` keeps ppnp's
transposed ``Parameter(torch.Tensor(in, out))`` with ``kaiming_uniform_(mode='fan_out', a=math.sqrt(5))``
and ``torch.addmm(self.bias, input, self.weight)``. PyG's route propagates with ``index_select`` +
``edge_weight.view(-1, 1) * x_j`` + ``index_add_``, then ``x * (1 - alpha) + alpha * h``.

Training follows ppnp's ``train_model``: ``TensorDataset(idx, labels)`` loaders per phase,
``torch.set_grad_enabled(phase == 'train')``, ``F.nll_loss`` on ``log_softmax`` plus ``reg_lambda / 2 *``
the L2 of the first layer (``model.reg_params``), Adam, early stopping on the validation loss with
``best_state = {key: value.cpu() ...}``.

Checked: the K-step power iteration converges to the closed form ``alpha (I - (1-alpha) A_hat)^-1 H``
by ``torch.linalg.solve`` (float64, dense), its error after K steps is within the ``(1-alpha)^K`` bound,
the sparse and the message-passing routes agree in values and gradients, and APPNP's test accuracy
beats the same MLP without propagation.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
np.random.seed(seed)
torch.manual_seed(seed)

# ---------------------------------------------------------------- data: a 3-block SBM graph
rng = np.random.RandomState(0)  # one graph for every seed; the seed moves init, dropout, batches
n_per_block, nclasses, nfeatures = 50, 3, 24
nnodes = n_per_block * nclasses
labels_np = np.repeat(np.arange(nclasses), n_per_block)
same = labels_np[:, None] == labels_np[None, :]
upper = np.triu(rng.rand(nnodes, nnodes) < np.where(same, 0.09, 0.008), 1)
adj_np = upper | upper.T
centers = rng.randn(nclasses, nfeatures)
attr_np = (0.35 * centers[labels_np] + rng.randn(nnodes, nfeatures)).astype(np.float32)
perm = rng.permutation(nnodes)
idx_np = {"train": np.sort(perm[:24]), "stopping": np.sort(perm[24:60]), "valtest": np.sort(perm[60:])}
row_np, col_np = np.nonzero(adj_np)
edge_index = torch.from_numpy(np.vstack((row_np, col_np)).astype(np.int64))
print(f"graph: {nnodes} nodes, {edge_index.size(1) // 2} edges, "
      f"{', '.join(f'{k} {len(v)}' for k, v in idx_np.items())}")


# ---------------------------------------------------------------- normalised adjacency
def add_self_loops(edge_index, num_nodes):
    loop_index = torch.arange(0, num_nodes, dtype=torch.long, device=edge_index.device)
    loop_index = loop_index.unsqueeze(0).repeat(2, 1)
    return torch.cat([edge_index, loop_index], dim=1)


def gcn_norm(edge_index, num_nodes, dtype=torch.float32):
    """PyG's gcn_norm: D^-1/2 (A + I) D^-1/2 as per-edge weights."""
    edge_index = add_self_loops(edge_index, num_nodes)
    edge_weight = torch.ones((edge_index.size(1),), dtype=dtype, device=edge_index.device)
    row, col = edge_index[0], edge_index[1]
    deg = torch.zeros(num_nodes, dtype=dtype).scatter_add_(0, col, edge_weight)
    deg_inv_sqrt = deg.pow(-0.5)
    deg_inv_sqrt.masked_fill_(deg_inv_sqrt == float('inf'), 0)
    return edge_index, deg_inv_sqrt[row] * edge_weight * deg_inv_sqrt[col]


def calc_A_hat(edge_index, num_nodes, dtype=torch.float32):
    """ppnp's calc_A_hat on a torch sparse tensor: degrees by index_add_ of the coalesced values."""
    index = add_self_loops(edge_index, num_nodes)
    A = torch.sparse_coo_tensor(index, torch.ones(index.size(1), dtype=dtype), (num_nodes, num_nodes))
    A = A.coalesce()
    D_vec = torch.zeros(num_nodes, dtype=dtype).index_add_(0, A.indices()[0], A.values())
    D_vec_invsqrt_corr = 1 / torch.sqrt(D_vec)
    values = D_vec_invsqrt_corr[A.indices()[0]] * A.values() * D_vec_invsqrt_corr[A.indices()[1]]
    return torch.sparse_coo_tensor(A.indices(), values, A.shape).coalesce()


A_hat = calc_A_hat(edge_index, nnodes)
norm_index, norm_weight = gcn_norm(edge_index, nnodes)
dense_pyg = torch.zeros(nnodes, nnodes).index_put_((norm_index[0], norm_index[1]), norm_weight, accumulate=True)
deg_match = torch.allclose(A_hat.to_dense(), dense_pyg, atol=1e-6)
print(f"A_hat: nnz {A_hat._nnz()}, is_coalesced {A_hat.is_coalesced()}, "
      f"gcn_norm agrees {deg_match}, row sums in [{torch.sparse.sum(A_hat, 1).to_dense().min():.3f}, "
      f"{torch.sparse.sum(A_hat, 1).to_dense().max():.3f}]")


# ---------------------------------------------------------------- ppnp's pytorch_support
class SparseDropout(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, input):
        input_coal = input.coalesce()
        drop_val = F.dropout(input_coal._values(), self.p, self.training)
        return torch.sparse_coo_tensor(input_coal._indices(), drop_val, input.shape)


class MixedDropout(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.dense_dropout = nn.Dropout(p)
        self.sparse_dropout = SparseDropout(p)

    def forward(self, input):
        if input.is_sparse:
            return self.sparse_dropout(input)
        else:
            return self.dense_dropout(input)


class MixedLinear(nn.Module):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.Tensor(in_features, out_features))
        if bias:
            self.bias = nn.Parameter(torch.Tensor(out_features))
        else:
            self.register_parameter('bias', None)
        self.reset_parameters()

    def reset_parameters(self):
        # Our fan_in is interpreted by PyTorch as fan_out (swapped dimensions)
        nn.init.kaiming_uniform_(self.weight, mode='fan_out', a=math.sqrt(5))
        if self.bias is not None:
            _, fan_out = nn.init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_out)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        if input.is_sparse:
            if self.bias is None:
                res = torch.sparse.mm(input, self.weight)
            else:
                res = self.bias.expand(input.shape[0], self.weight.shape[1]).addmm(input, self.weight)
        else:
            if self.bias is None:
                res = input.matmul(self.weight)
            else:
                res = torch.addmm(self.bias, input, self.weight)
        return res

    def extra_repr(self):
        return 'in_features={}, out_features={}, bias={}'.format(  # noqa: UP032  (the repo's spelling)
            self.in_features, self.out_features, self.bias is not None)


# ---------------------------------------------------------------- propagation
class PPRPowerIteration(nn.Module):
    def __init__(self, A_hat, alpha, niter, drop_prob=None):
        super().__init__()
        self.alpha = alpha
        self.niter = niter
        self.register_buffer('A_hat', ((1 - alpha) * A_hat).coalesce())
        if drop_prob is None or drop_prob == 0:
            self.dropout = lambda x: x
        else:
            self.dropout = MixedDropout(drop_prob)

    def forward(self, local_preds, idx):
        preds = local_preds
        for _ in range(self.niter):
            A_drop = self.dropout(self.A_hat)
            preds = A_drop @ preds + self.alpha * local_preds
        return preds[idx]


class PyGAPPNP(nn.Module):
    """torch_geometric.nn.APPNP's loop with the message passing spelled out."""

    def __init__(self, K, alpha, dropout=0.):
        super().__init__()
        self.K = K
        self.alpha = alpha
        self.dropout = dropout

    def propagate(self, edge_index, x, edge_weight):
        x_j = x.index_select(0, edge_index[0])
        msg = edge_weight.view(-1, 1) * x_j
        return torch.zeros_like(x).index_add_(0, edge_index[1], msg)

    def forward(self, x, edge_index, edge_weight):
        h = x
        for _ in range(self.K):
            if self.dropout > 0 and self.training:
                edge_weight = F.dropout(edge_weight, p=self.dropout)
            x = self.propagate(edge_index, x=x, edge_weight=edge_weight)
            x = x * (1 - self.alpha)
            x = x + self.alpha * h
        return x

    def __repr__(self):
        return f'{self.__class__.__name__}(K={self.K}, alpha={self.alpha})'


def calc_ppr_exact(A_hat_dense, alpha):
    nnodes = A_hat_dense.shape[0]
    A_inner = torch.eye(nnodes, dtype=A_hat_dense.dtype) - (1 - alpha) * A_hat_dense
    return alpha * torch.linalg.inv(A_inner)


class PPRExact(nn.Module):
    def __init__(self, A_hat_dense, alpha, drop_prob=None):
        super().__init__()
        ppr_mat = calc_ppr_exact(A_hat_dense, alpha)
        self.register_buffer('mat', ppr_mat)
        if drop_prob is None or drop_prob == 0:
            self.dropout = lambda x: x
        else:
            self.dropout = MixedDropout(drop_prob)

    def forward(self, predictions, idx):
        return self.dropout(self.mat[idx]) @ predictions


# ---------------------------------------------------------------- check 1: the closed form
alpha, niter = 0.1, 10
A_hat64 = calc_A_hat(edge_index, nnodes, dtype=torch.float64)
H = torch.randn(nnodes, nclasses, dtype=torch.float64)
exact = alpha * torch.linalg.solve(torch.eye(nnodes, dtype=torch.float64) - (1 - alpha) * A_hat64.to_dense(), H)
all_idx = torch.arange(nnodes)
exact_inv = PPRExact(A_hat64.to_dense(), alpha, drop_prob=0.5).eval()(H, all_idx)
errs = {}
for k in (niter, 50, 300):
    prop = PPRPowerIteration(A_hat64, alpha, k)
    errs[k] = (prop(H, all_idx) - exact).abs().max().item()
bound = (1 - alpha) ** niter * (H - exact).abs().max().item() * 1.0001
print(f"power iteration vs solve: K={niter} {errs[niter]:.2e} (bound {bound:.2e}), K=50 {errs[50]:.2e}, "
      f"K=300 {errs[300]:.2e}; inv vs solve {(exact_inv - exact).abs().max().item():.2e}")
closed_form_err = errs[300]
within_bound = float(errs[niter] <= bound and errs[50] < errs[niter])

# ---------------------------------------------------------------- check 2: two routes agree
pyg = PyGAPPNP(K=niter, alpha=alpha)
ppnp_prop = PPRPowerIteration(A_hat, alpha, niter)
Z = torch.randn(nnodes, nclasses, requires_grad=True)
out_sparse = ppnp_prop(Z, all_idx)
g_sparse, = torch.autograd.grad((out_sparse ** 2).sum(), Z)
out_mp = pyg(Z, norm_index, norm_weight)
g_mp, = torch.autograd.grad((out_mp ** 2).sum(), Z)
route_err = max((out_sparse - out_mp).abs().max().item(), (g_sparse - g_mp).abs().max().item())
print(f"sparse.mm vs index_add_ propagation: max diff {route_err:.2e} "
      f"(values and grads), {pyg}")


# ---------------------------------------------------------------- ppnp's model and training
class PPNP(nn.Module):
    def __init__(self, nfeatures, nclasses, hiddenunits, drop_prob, propagation, bias=False):
        super().__init__()
        fcs = [MixedLinear(nfeatures, hiddenunits[0], bias=bias)]
        for i in range(1, len(hiddenunits)):
            fcs.append(nn.Linear(hiddenunits[i - 1], hiddenunits[i], bias=bias))
        fcs.append(nn.Linear(hiddenunits[-1], nclasses, bias=bias))
        self.fcs = nn.ModuleList(fcs)

        self.reg_params = list(self.fcs[0].parameters())

        if drop_prob == 0:
            self.dropout = lambda x: x
        else:
            self.dropout = MixedDropout(drop_prob)
        self.act_fn = nn.ReLU()

        self.propagation = propagation

    def _transform_features(self, attr_matrix):
        layer_inner = self.act_fn(self.fcs[0](self.dropout(attr_matrix)))
        for fc in self.fcs[1:-1]:
            layer_inner = self.act_fn(fc(layer_inner))
        res = self.fcs[-1](self.dropout(layer_inner))
        return res

    def forward(self, attr_matrix, idx):
        local_logits = self._transform_features(attr_matrix)
        if self.propagation is None:
            final_logits = local_logits.index_select(dim=-2, index=idx)
        else:
            final_logits = self.propagation(local_logits, idx)
        return F.log_softmax(final_logits, dim=-1)


def train_model(name, propagation, attr_mat_norm, labels_all, idx_np, reg_lambda=5e-3, lr=0.01,
                max_epochs=120, patience=30, batch_size=64):
    model = PPNP(nfeatures, nclasses, [32], drop_prob=0.5, propagation=propagation)
    reg_lambda = torch.tensor(reg_lambda)
    idx_all = {key: torch.LongTensor(val) for key, val in idx_np.items()}
    labels = {key: torch.LongTensor(labels_all[val]) for key, val in idx_np.items()}
    datasets = {phase: TensorDataset(idx_all[phase], labels[phase]) for phase in ("train", "stopping")}
    dataloaders = {phase: DataLoader(datasets[phase], batch_size=batch_size, shuffle=(phase == "train"))
                   for phase in datasets}
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    best_loss, best_epoch, epochs_left = math.inf, 0, patience
    best_state = {key: value.cpu() for key, value in model.state_dict().items()}
    for epoch in range(max_epochs):
        for phase in dataloaders.keys():
            if phase == 'train':
                model.train()
            else:
                model.eval()
            running_loss = 0
            running_corrects = 0
            for idx, batch_labels in dataloaders[phase]:
                optimizer.zero_grad()
                with torch.set_grad_enabled(phase == 'train'):
                    log_preds = model(attr_mat_norm, idx)
                    preds = torch.argmax(log_preds, dim=1)
                    cross_entropy_mean = F.nll_loss(log_preds, batch_labels)
                    l2_reg = sum(torch.sum(param ** 2) for param in model.reg_params)
                    loss = cross_entropy_mean + reg_lambda / 2 * l2_reg
                    if phase == 'train':
                        loss.backward()
                        optimizer.step()
                running_loss += loss.item() * idx.size(0)
                running_corrects += torch.sum(preds == batch_labels)
            epoch_loss = running_loss / len(dataloaders[phase].dataset)
            if phase == 'stopping':
                if epoch_loss < best_loss:
                    best_loss, best_epoch, epochs_left = epoch_loss, epoch, patience
                    best_state = {key: value.cpu() for key, value in model.state_dict().items()}
                else:
                    epochs_left -= 1
        if epochs_left == 0:
            break
    model.load_state_dict(best_state)
    model.eval()
    print(model)
    with torch.no_grad():
        log_preds = model(attr_mat_norm, idx_all["valtest"])
        acc = (log_preds.argmax(1) == labels["valtest"]).float().mean().item()
    print(f"{name}: stopped after {epoch + 1} epochs (best {best_epoch + 1}), best stopping loss {best_loss:.4f}, "
          f"test acc {acc:.4f}")
    return acc


attr_mat_norm = torch.FloatTensor(attr_np)
acc_mlp = train_model("MLP", None, attr_mat_norm, labels_np, idx_np)
acc_appnp = train_model("APPNP", PPRPowerIteration(A_hat, alpha, niter, drop_prob=0.5), attr_mat_norm,
                        labels_np, idx_np)
print(f"FINAL closed_form_err={closed_form_err:.3e} within_bound={within_bound:.0f} "
      f"route_err={route_err:.3e} deg_match={float(deg_match):.0f} acc_mlp={acc_mlp:.4f} "
      f"acc_appnp={acc_appnp:.4f} gain={acc_appnp - acc_mlp:.4f}")
