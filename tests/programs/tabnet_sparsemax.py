"""TabNet as dreamquark-ai/tabnet writes it (pytorch_tabnet/sparsemax.py and tab_network.py), on
a synthetic tabular task: ``Sparsemax`` as a custom ``torch.autograd.Function`` (``input -=
max_val`` in ``forward``, ``torch.sort(descending=True)``, ``cumsum``, the support by ``rhos *
input_srt > input_cumsum`` with ``_make_ix_like``'s ``view(...).transpose(0, dim)``, ``tau``
gathered at ``support_size - 1``, ``ctx.save_for_backward(supp_size, output)``, a backward with
``grad_input[output == 0] = 0`` and ``torch.where``), checked by ``gradcheck`` in float64;
entmax-1.5 by bisection (``torch.where`` on the sign of ``f_m * f_lo``); ``GBN`` ghost batch norm
by ``x.chunk(int(np.ceil(n / virtual_batch_size)), 0)``; ``GLU_Layer``/``GLU_Block`` with
``initialize_glu`` (``xavier_normal_`` with a NumPy gain), shared and step-specific blocks and the
``torch.sqrt(torch.FloatTensor([0.5]).to(x.device))`` residual scaling; the attentive transformer
multiplying by the prior scales, ``prior = torch.mul(self.gamma - M, prior)``; the sparsity
regulariser ``torch.mean(torch.sum(torch.mul(M, torch.log(M + self.epsilon)), dim=1))`` subtracted
with ``lambda_sparse``; ``forward_masks``' explanation matrix, and global feature importances by
``torch.einsum('bf,b->f', M, step_importance)`` (against the ``mul``/``sum`` spelling).

The data: twelve features of which only the first three decide the class; the importances should
find them. Smaller widths, batch and epochs than the library's defaults.
"""
# ruff: noqa: UP008, B007  (the library's own spelling: super(GBN, self), `for step in range(n_steps)` building modules)

import os

import numpy as np
import torch
from torch.autograd import Function
from torch.nn import BatchNorm1d, Linear, ReLU

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


def _make_ix_like(input, dim=0):
    d = input.size(dim)
    rho = torch.arange(1, d + 1, device=input.device, dtype=input.dtype)
    view = [1] * input.dim()
    view[0] = -1
    return rho.view(view).transpose(0, dim)


class SparsemaxFunction(Function):
    """
    An implementation of sparsemax (Martins & Astudillo, 2016). See
    :cite:`DBLP:journals/corr/MartinsA16` for detailed description.
    By Ben Peters and Vlad Niculae
    """

    @staticmethod
    def forward(ctx, input, dim=-1):
        ctx.dim = dim
        max_val, _ = input.max(dim=dim, keepdim=True)
        input -= max_val  # same numerical stability trick as for softmax
        tau, supp_size = SparsemaxFunction._threshold_and_support(input, dim=dim)
        output = torch.clamp(input - tau, min=0)
        ctx.save_for_backward(supp_size, output)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        supp_size, output = ctx.saved_tensors
        dim = ctx.dim
        grad_input = grad_output.clone()
        grad_input[output == 0] = 0

        v_hat = grad_input.sum(dim=dim) / supp_size.to(output.dtype).squeeze()
        v_hat = v_hat.unsqueeze(dim)
        grad_input = torch.where(output != 0, grad_input - v_hat, grad_input)
        return grad_input, None

    @staticmethod
    def _threshold_and_support(input, dim=-1):
        input_srt, _ = torch.sort(input, descending=True, dim=dim)
        input_cumsum = input_srt.cumsum(dim) - 1
        rhos = _make_ix_like(input, dim)
        support = rhos * input_srt > input_cumsum

        support_size = support.sum(dim=dim).unsqueeze(dim)
        tau = input_cumsum.gather(dim, support_size - 1)
        tau /= support_size.to(input.dtype)
        return tau, support_size


sparsemax = SparsemaxFunction.apply


class Sparsemax(torch.nn.Module):
    def __init__(self, dim=-1):
        self.dim = dim
        super(Sparsemax, self).__init__()

    def forward(self, input):
        return sparsemax(input, self.dim)


def entmax15_bisect(X, dim=-1, n_iter=30):
    """alpha = 1.5 entmax: p = [(alpha - 1) X - tau]_+ ** (1 / (alpha - 1)), tau found by bisection."""
    alpha = 1.5
    d = X.shape[dim]
    X = X * (alpha - 1)
    max_val, _ = X.max(dim=dim, keepdim=True)
    tau_lo = max_val - 1.0
    tau_hi = max_val - (1 / d) ** (alpha - 1)
    f_lo = (torch.clamp(X - tau_lo, min=0) ** (1 / (alpha - 1))).sum(dim) - 1
    dm = tau_hi - tau_lo
    for _ in range(n_iter):
        dm = dm / 2
        tau_m = tau_lo + dm
        p_m = torch.clamp(X - tau_m, min=0) ** (1 / (alpha - 1))
        f_m = p_m.sum(dim) - 1
        mask = (f_m * f_lo >= 0).unsqueeze(dim)
        tau_lo = torch.where(mask, tau_m, tau_lo)
    return p_m / p_m.sum(dim=dim).unsqueeze(dim=dim)


class Entmax15(torch.nn.Module):
    def __init__(self, dim=-1):
        self.dim = dim
        super(Entmax15, self).__init__()

    def forward(self, input):
        return entmax15_bisect(input, self.dim)


def initialize_non_glu(module, input_dim, output_dim):
    gain_value = np.sqrt((input_dim + output_dim) / np.sqrt(4 * input_dim))
    torch.nn.init.xavier_normal_(module.weight, gain=gain_value)


def initialize_glu(module, input_dim, output_dim):
    gain_value = np.sqrt((input_dim + output_dim) / np.sqrt(input_dim))
    torch.nn.init.xavier_normal_(module.weight, gain=gain_value)


class GBN(torch.nn.Module):
    """
    Ghost Batch Normalization
    https://arxiv.org/abs/1705.08741
    """

    def __init__(self, input_dim, virtual_batch_size=128, momentum=0.01):
        super(GBN, self).__init__()

        self.input_dim = input_dim
        self.virtual_batch_size = virtual_batch_size
        self.bn = BatchNorm1d(self.input_dim, momentum=momentum)

    def forward(self, x):
        chunks = x.chunk(int(np.ceil(x.shape[0] / self.virtual_batch_size)), 0)
        res = [self.bn(x_) for x_ in chunks]

        return torch.cat(res, dim=0)


class GLU_Layer(torch.nn.Module):
    def __init__(self, input_dim, output_dim, fc=None, virtual_batch_size=128, momentum=0.02):
        super(GLU_Layer, self).__init__()

        self.output_dim = output_dim
        if fc:
            self.fc = fc
        else:
            self.fc = Linear(input_dim, 2 * output_dim, bias=False)
        initialize_glu(self.fc, input_dim, 2 * output_dim)

        self.bn = GBN(2 * output_dim, virtual_batch_size=virtual_batch_size, momentum=momentum)

    def forward(self, x):
        x = self.fc(x)
        x = self.bn(x)
        out = torch.mul(x[:, : self.output_dim], torch.sigmoid(x[:, self.output_dim:]))
        return out


class GLU_Block(torch.nn.Module):
    """
    Independent GLU block, specific to each step
    """

    def __init__(self, input_dim, output_dim, n_glu=2, first=False, shared_layers=None,
                 virtual_batch_size=128, momentum=0.02):
        super(GLU_Block, self).__init__()
        self.first = first
        self.shared_layers = shared_layers
        self.n_glu = n_glu
        self.glu_layers = torch.nn.ModuleList()

        params = {"virtual_batch_size": virtual_batch_size, "momentum": momentum}

        fc = shared_layers[0] if shared_layers else None
        self.glu_layers.append(GLU_Layer(input_dim, output_dim, fc=fc, **params))
        for glu_id in range(1, self.n_glu):
            fc = shared_layers[glu_id] if shared_layers else None
            self.glu_layers.append(GLU_Layer(output_dim, output_dim, fc=fc, **params))

    def forward(self, x):
        scale = torch.sqrt(torch.FloatTensor([0.5]).to(x.device))
        if self.first:  # the first layer of the block has no scale multiplication
            x = self.glu_layers[0](x)
            layers_left = range(1, self.n_glu)
        else:
            layers_left = range(self.n_glu)

        for glu_id in layers_left:
            x = torch.add(x, self.glu_layers[glu_id](x))
            x = x * scale
        return x


class FeatTransformer(torch.nn.Module):
    def __init__(self, input_dim, output_dim, shared_layers, n_glu_independent,
                 virtual_batch_size=128, momentum=0.02):
        super(FeatTransformer, self).__init__()
        params = {"n_glu": len(shared_layers), "virtual_batch_size": virtual_batch_size, "momentum": momentum}
        self.shared = GLU_Block(input_dim, output_dim, first=True, shared_layers=shared_layers, **params)
        params["n_glu"] = n_glu_independent
        self.specifics = GLU_Block(output_dim, output_dim, first=False, **params)

    def forward(self, x):
        x = self.shared(x)
        x = self.specifics(x)
        return x


class AttentiveTransformer(torch.nn.Module):
    def __init__(self, input_dim, group_dim, virtual_batch_size=128, momentum=0.02, mask_type="sparsemax"):
        super(AttentiveTransformer, self).__init__()
        self.fc = Linear(input_dim, group_dim, bias=False)
        initialize_non_glu(self.fc, input_dim, group_dim)
        self.bn = GBN(group_dim, virtual_batch_size=virtual_batch_size, momentum=momentum)

        if mask_type == "sparsemax":
            # Sparsemax
            self.selector = Sparsemax(dim=-1)
        elif mask_type == "entmax":
            # Entmax
            self.selector = Entmax15(dim=-1)
        else:
            raise NotImplementedError("Please choose either sparsemax" + "or entmax as masktype")

    def forward(self, priors, processed_feat):
        x = self.fc(processed_feat)
        x = self.bn(x)
        x = torch.mul(x, priors)
        x = self.selector(x)
        return x


class TabNet(torch.nn.Module):
    def __init__(self, input_dim, output_dim, n_d=8, n_a=8, n_steps=3, gamma=1.3, n_independent=2,
                 n_shared=2, epsilon=1e-15, virtual_batch_size=128, momentum=0.02, mask_type="sparsemax"):
        super(TabNet, self).__init__()
        self.input_dim = input_dim
        self.n_d = n_d
        self.n_a = n_a
        self.n_steps = n_steps
        self.gamma = gamma
        self.epsilon = epsilon
        self.initial_bn = BatchNorm1d(self.input_dim, momentum=0.01)

        shared_feat_transform = torch.nn.ModuleList()
        for i in range(n_shared):
            if i == 0:
                shared_feat_transform.append(Linear(self.input_dim, 2 * (n_d + n_a), bias=False))
            else:
                shared_feat_transform.append(Linear(n_d + n_a, 2 * (n_d + n_a), bias=False))

        params = {"virtual_batch_size": virtual_batch_size, "momentum": momentum}
        self.initial_splitter = FeatTransformer(self.input_dim, n_d + n_a, shared_feat_transform,
                                                n_glu_independent=n_independent, **params)
        self.feat_transformers = torch.nn.ModuleList()
        self.att_transformers = torch.nn.ModuleList()
        for step in range(n_steps):
            self.feat_transformers.append(FeatTransformer(self.input_dim, n_d + n_a, shared_feat_transform,
                                                          n_glu_independent=n_independent, **params))
            self.att_transformers.append(AttentiveTransformer(n_a, self.input_dim, mask_type=mask_type, **params))
        self.final_mapping = Linear(n_d, output_dim, bias=False)
        initialize_non_glu(self.final_mapping, n_d, output_dim)

    def forward(self, x):
        x = self.initial_bn(x)
        prior = torch.ones(x.shape).to(x.device)
        M_loss = 0
        att = self.initial_splitter(x)[:, self.n_d:]
        steps_output = []
        for step in range(self.n_steps):
            M = self.att_transformers[step](prior, att)
            M_loss += torch.mean(torch.sum(torch.mul(M, torch.log(M + self.epsilon)), dim=1))
            # update prior
            prior = torch.mul(self.gamma - M, prior)
            # output
            masked_x = torch.mul(M, x)
            out = self.feat_transformers[step](masked_x)
            d = ReLU()(out[:, : self.n_d])
            steps_output.append(d)
            # update attention
            att = out[:, self.n_d:]
        M_loss /= self.n_steps
        res = torch.sum(torch.stack(steps_output, dim=0), dim=0)
        return self.final_mapping(res), M_loss

    def forward_masks(self, x):
        x = self.initial_bn(x)
        prior = torch.ones(x.shape).to(x.device)
        M_explain = torch.zeros(x.shape).to(x.device)
        att = self.initial_splitter(x)[:, self.n_d:]
        masks = {}
        importances = torch.zeros(x.shape[1])
        for step in range(self.n_steps):
            M = self.att_transformers[step](prior, att)
            masks[step] = M
            prior = torch.mul(self.gamma - M, prior)
            masked_x = torch.mul(M, x)
            out = self.feat_transformers[step](masked_x)
            d = ReLU()(out[:, : self.n_d])
            # explain
            step_importance = torch.sum(d, axis=1)
            M_explain += torch.mul(M, step_importance.unsqueeze(dim=1))
            importances += torch.einsum('bf,b->f', M, step_importance)
            att = out[:, self.n_d:]
        return M_explain, masks, importances


# the pieces first: sparsemax and entmax on a batch of scores
z = torch.randn(6, 10) * 2
p_sparse = Sparsemax(dim=-1)(z.clone())
p_entmax = Entmax15(dim=-1)(z)
print(f"sparsemax rows sum to one: {torch.allclose(p_sparse.sum(-1), torch.ones(6))}, "
      f"zeros {int((p_sparse == 0).sum())} of 60")
print(f"entmax-1.5 rows sum to one: {torch.allclose(p_entmax.sum(-1), torch.ones(6))}, "
      f"zeros {int((p_entmax == 0).sum())} of 60")
z64 = torch.randn(4, 7, dtype=torch.float64, requires_grad=True)
# the forward subtracts the row maximum from its input in place, so gradcheck sees a copy
print("sparsemax gradcheck:", torch.autograd.gradcheck(lambda t: sparsemax(t * 1.0, -1), (z64,)))
print("sparsemax on dim 0 matches the transposed rows:",
      torch.allclose(Sparsemax(dim=0)(z.t().clone()), p_sparse.t()))

# data: twelve features, the class decided by the first three
rng = np.random.RandomState(0)
n_features = 12


def make_data(n):
    X = rng.randn(n, n_features).astype(np.float32)
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0.0).astype(np.int64)
    return torch.from_numpy(X), torch.from_numpy(y)


X_train, y_train = make_data(1024)
X_valid, y_valid = make_data(512)

results = {}
for mask_type in ("sparsemax", "entmax"):
    model = TabNet(n_features, 2, n_d=8, n_a=8, n_steps=3, virtual_batch_size=32, mask_type=mask_type)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    loss_fn = torch.nn.functional.cross_entropy
    lambda_sparse = 1e-3
    batch_size = 128
    for epoch in range(8):
        model.train()
        perm = torch.randperm(X_train.shape[0])
        total = 0.0
        for i in range(0, X_train.shape[0], batch_size):
            idx = perm[i:i + batch_size]
            output, M_loss = model(X_train[idx])
            loss = loss_fn(output, y_train[idx])
            # Add the overall sparsity loss
            loss = loss - lambda_sparse * M_loss
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            total += loss.item() * len(idx)
        if epoch % 4 == 3:
            print(f"{mask_type} epoch {epoch} loss {total / X_train.shape[0]:.4f}")
    model.eval()
    with torch.no_grad():
        logits, M_loss = model(X_valid)
        accuracy = (logits.argmax(1) == y_valid).float().mean().item()
        M_explain, masks, importances = model.forward_masks(X_valid)
    feature_importances = M_explain.sum(dim=0)
    feature_importances = feature_importances / feature_importances.sum()
    print(f"{mask_type}: einsum importances agree with the mul/sum spelling: "
          f"{torch.allclose(importances / importances.sum(), feature_importances, atol=1e-5)}")
    top3 = feature_importances[:3].sum().item()
    mask_zeros = np.mean([(m == 0).float().mean().item() for m in masks.values()])
    print(f"{mask_type}: valid accuracy {accuracy:.4f}, importance of the informative features {top3:.4f}, "
          f"mask sparsity {mask_zeros:.4f}, M_loss {M_loss.item():.4f}")
    results[mask_type] = (accuracy, top3, mask_zeros)

print(f"FINAL sparsemax_acc={results['sparsemax'][0]:.4f} sparsemax_top3={results['sparsemax'][1]:.4f} "
      f"sparsemax_zeros={results['sparsemax'][2]:.4f} entmax_acc={results['entmax'][0]:.4f} "
      f"entmax_top3={results['entmax'][1]:.4f}")
