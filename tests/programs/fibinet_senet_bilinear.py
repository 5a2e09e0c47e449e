"""FiBiNET (Huang et al., 2019) the way shenweichen/DeepCTR-Torch writes it, at tiny sizes on
synthetic click-through data: sparse fields through an ``nn.ModuleDict`` of ``nn.Embedding``s
initialised by ``nn.init.normal_(std=init_std)``, ``torch.cat(sparse_embedding_list, dim=1)``,
``SENETLayer`` (squeeze by ``torch.mean(inputs, dim=-1, out=None)``, excitation
``Linear -> ReLU -> Linear -> ReLU`` without bias, ``torch.mul(inputs, torch.unsqueeze(A, dim=2))``),
``BilinearInteraction`` of the ``all`` / ``each`` / ``interaction`` types over
``itertools.combinations`` of ``torch.split(inputs, 1, dim=1)`` and ``torch.cat(p, dim=1)``, the
``Linear`` logit (sparse weights by embedding size 1 + dense ``matmul``), ``combined_dnn_input`` by
``torch.flatten(torch.cat(...), start_dim=1)``, a ``DNN`` over an ``nn.ModuleList``, a bias-free
``dnn_linear``, ``PredictionLayer``'s bias, ``BCEWithLogitsLoss`` (against ``binary_cross_entropy`` of
the sigmoid), L2 on the embeddings, and AUC by the rank formula (against the pairwise count).

Checks: each bilinear type's per-pair loop equals a vectorised ``einsum`` over stacked weights in
values and gradients; the SENET weights are non-negative; the two losses and the two AUCs agree;
and the test AUC beats 0.5 by a margin after training.
"""

# ruff: noqa: UP008, UP031  (DeepCTR-Torch's own spelling: super(Class, self), "%d" % ...)

import itertools
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)


class SENETLayer(nn.Module):
    def __init__(self, filed_size, reduction_ratio=3, seed=1024, device='cpu'):
        super(SENETLayer, self).__init__()
        self.seed = seed
        self.filed_size = filed_size
        self.reduction_size = max(1, filed_size // reduction_ratio)
        self.excitation = nn.Sequential(
            nn.Linear(self.filed_size, self.reduction_size, bias=False),
            nn.ReLU(),
            nn.Linear(self.reduction_size, self.filed_size, bias=False),
            nn.ReLU()
        )
        self.to(device)

    def forward(self, inputs):
        if len(inputs.shape) != 3:
            raise ValueError(
                "Unexpected inputs dimensions %d, expect to be 3 dimensions" % (len(inputs.shape)))
        Z = torch.mean(inputs, dim=-1, out=None)
        A = self.excitation(Z)
        self.last_A = A
        V = torch.mul(inputs, torch.unsqueeze(A, dim=2))
        return V


class BilinearInteraction(nn.Module):
    def __init__(self, filed_size, embedding_size, bilinear_type="interaction", seed=1024, device='cpu'):
        super(BilinearInteraction, self).__init__()
        self.bilinear_type = bilinear_type
        self.seed = seed
        self.bilinear = nn.ModuleList()
        if self.bilinear_type == "all":
            self.bilinear = nn.Linear(
                embedding_size, embedding_size, bias=False)
        elif self.bilinear_type == "each":
            for _ in range(filed_size):
                self.bilinear.append(
                    nn.Linear(embedding_size, embedding_size, bias=False))
        elif self.bilinear_type == "interaction":
            for _, _ in itertools.combinations(range(filed_size), 2):
                self.bilinear.append(
                    nn.Linear(embedding_size, embedding_size, bias=False))
        else:
            raise NotImplementedError
        self.to(device)

    def forward(self, inputs):
        if len(inputs.shape) != 3:
            raise ValueError(
                "Unexpected inputs dimensions %d, expect to be 3 dimensions" % (len(inputs.shape)))
        inputs = torch.split(inputs, 1, dim=1)
        if self.bilinear_type == "all":
            p = [torch.mul(self.bilinear(v_i), v_j)
                 for v_i, v_j in itertools.combinations(inputs, 2)]
        elif self.bilinear_type == "each":
            p = [torch.mul(self.bilinear[i](inputs[i]), inputs[j])
                 for i, j in itertools.combinations(range(len(inputs)), 2)]
        elif self.bilinear_type == "interaction":
            p = [torch.mul(bilinear(v[0]), v[1])
                 for v, bilinear in zip(itertools.combinations(inputs, 2), self.bilinear)]
        else:
            raise NotImplementedError
        return torch.cat(p, dim=1)

    def forward_vectorised(self, inputs):
        """All pairs at once: gather the left/right fields and apply stacked weights by einsum."""
        field_size = inputs.shape[1]
        pairs = torch.tensor(list(itertools.combinations(range(field_size), 2)))
        left, right = inputs[:, pairs[:, 0]], inputs[:, pairs[:, 1]]
        if self.bilinear_type == "all":
            return torch.matmul(left, self.bilinear.weight.t()) * right
        weights = torch.stack([layer.weight for layer in self.bilinear])
        if self.bilinear_type == "each":
            weights = weights[pairs[:, 0]]
        return torch.einsum('bpd,ped->bpe', left, weights) * right


class Linear(nn.Module):
    """DeepCTR's linear part: per-field weights as embeddings of size 1, dense weights by matmul."""

    def __init__(self, vocab_sizes, num_dense, init_std=0.0001):
        super(Linear, self).__init__()
        self.embedding_dict = nn.ModuleDict(
            {f"C{i}": nn.Embedding(v, 1) for i, v in enumerate(vocab_sizes)})
        for tensor in self.embedding_dict.values():
            nn.init.normal_(tensor.weight, mean=0, std=init_std)
        self.weight = nn.Parameter(torch.Tensor(num_dense, 1))
        torch.nn.init.normal_(self.weight, mean=0, std=init_std)

    def forward(self, X_sparse, X_dense):
        sparse_embedding_list = [self.embedding_dict[f"C{i}"](X_sparse[:, i:i + 1].long())
                                 for i in range(X_sparse.shape[1])]
        linear_logit = torch.zeros([X_sparse.shape[0], 1])
        sparse_feat_logit = torch.sum(torch.cat(sparse_embedding_list, dim=-1), dim=-1, keepdim=False)
        linear_logit += sparse_feat_logit
        dense_value_logit = X_dense.matmul(self.weight)
        linear_logit += dense_value_logit
        return linear_logit


class DNN(nn.Module):
    def __init__(self, inputs_dim, hidden_units, dropout_rate=0, init_std=0.0001):
        super(DNN, self).__init__()
        self.dropout = nn.Dropout(dropout_rate)
        hidden_units = [inputs_dim] + list(hidden_units)
        self.linears = nn.ModuleList(
            [nn.Linear(hidden_units[i], hidden_units[i + 1]) for i in range(len(hidden_units) - 1)])
        self.activation_layers = nn.ModuleList([nn.ReLU(inplace=True) for _ in range(len(hidden_units) - 1)])
        for name, tensor in self.linears.named_parameters():
            if 'weight' in name:
                nn.init.normal_(tensor, mean=0, std=init_std)

    def forward(self, inputs):
        deep_input = inputs
        for i in range(len(self.linears)):
            fc = self.linears[i](deep_input)
            fc = self.activation_layers[i](fc)
            fc = self.dropout(fc)
            deep_input = fc
        return deep_input


class PredictionLayer(nn.Module):
    def __init__(self, task='binary', use_bias=True):
        super(PredictionLayer, self).__init__()
        self.use_bias = use_bias
        self.task = task
        if self.use_bias:
            self.bias = nn.Parameter(torch.zeros((1,)))

    def forward(self, X):
        output = X
        if self.use_bias:
            output = output + self.bias
        return output  # logits; the sigmoid is in the loss (BCEWithLogitsLoss)


def combined_dnn_input(sparse_embedding_list, dense_value_list):
    sparse_dnn_input = torch.flatten(torch.cat(sparse_embedding_list, dim=-1), start_dim=1)
    dense_dnn_input = torch.flatten(torch.cat(dense_value_list, dim=-1), start_dim=1)
    return torch.cat([sparse_dnn_input, dense_dnn_input], dim=-1)


class FiBiNET(nn.Module):
    def __init__(self, vocab_sizes, num_dense, embedding_size=4, bilinear_type='interaction',
                 reduction_ratio=3, dnn_hidden_units=(32, 16), init_std=0.0001, l2_reg_embedding=1e-5):
        super(FiBiNET, self).__init__()
        self.field_size = len(vocab_sizes)
        self.embedding_dict = nn.ModuleDict(
            {f"C{i}": nn.Embedding(v, embedding_size) for i, v in enumerate(vocab_sizes)})
        for tensor in self.embedding_dict.values():
            nn.init.normal_(tensor.weight, mean=0, std=0.1)
        self.l2_reg_embedding = l2_reg_embedding
        self.linear_model = Linear(vocab_sizes, num_dense, init_std)
        self.SE = SENETLayer(self.field_size, reduction_ratio)
        self.Bilinear = BilinearInteraction(self.field_size, embedding_size, bilinear_type)
        num_pairs = self.field_size * (self.field_size - 1) // 2
        dnn_in = 2 * num_pairs * embedding_size + num_dense
        self.dnn = DNN(dnn_in, dnn_hidden_units, init_std=0.05)
        self.dnn_linear = nn.Linear(dnn_hidden_units[-1], 1, bias=False)
        self.out = PredictionLayer()

    def forward(self, X_sparse, X_dense):
        sparse_embedding_list = [self.embedding_dict[f"C{i}"](X_sparse[:, i:i + 1].long())
                                 for i in range(self.field_size)]
        sparse_embedding_input = torch.cat(sparse_embedding_list, dim=1)
        senet_output = self.SE(sparse_embedding_input)
        senet_bilinear_out = self.Bilinear(senet_output)
        bilinear_out = self.Bilinear(sparse_embedding_input)

        linear_logit = self.linear_model(X_sparse, X_dense)
        temp = torch.split(torch.cat((senet_bilinear_out, bilinear_out), dim=1), 1, dim=1)
        dnn_input = combined_dnn_input(temp, [X_dense])
        dnn_output = self.dnn(dnn_input)
        dnn_logit = self.dnn_linear(dnn_output)
        logit = linear_logit + dnn_logit
        return self.out(logit)

    def get_regularization_loss(self):
        return self.l2_reg_embedding * sum(torch.sum(e.weight ** 2) for e in self.embedding_dict.values())


def auc_rank(y_true, y_score):
    """ROC AUC by the Mann-Whitney rank formula (scores are tie-free here)."""
    n = y_score.shape[0]
    order = torch.argsort(y_score)
    ranks = torch.empty(n, dtype=torch.float64)
    ranks[order] = torch.arange(1, n + 1, dtype=torch.float64)
    pos = y_true == 1
    n_pos = pos.sum().item()
    n_neg = n - n_pos
    return ((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)).item()


def auc_pairs(y_true, y_score):
    pos, neg = y_score[y_true == 1], y_score[y_true == 0]
    return (pos[:, None] > neg[None, :]).double().mean().item()


# ---- synthetic CTR data: additive field effects, two crossed pairs and a dense term ----
VOCAB = [8, 6, 7, 5, 9, 4]
NUM_DENSE = 2
N_TRAIN, N_TEST = 2048, 1024
field_w = [rng.normal(0, 0.6, v) for v in VOCAB]
cross01 = rng.normal(0, 1.2, (VOCAB[0], VOCAB[1]))
cross23 = rng.normal(0, 1.2, (VOCAB[2], VOCAB[3]))
dense_w = np.array([0.8, -0.5])


def make_data(n):
    Xs = np.stack([rng.integers(0, v, n) for v in VOCAB], axis=1)
    Xd = rng.normal(0, 1, (n, NUM_DENSE))
    z = sum(field_w[i][Xs[:, i]] for i in range(len(VOCAB)))
    z = z + cross01[Xs[:, 0], Xs[:, 1]] + cross23[Xs[:, 2], Xs[:, 3]] + Xd @ dense_w - 0.3
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.float32)
    return (torch.from_numpy(Xs).long(), torch.from_numpy(Xd).float(), torch.from_numpy(y)[:, None])


Xs_train, Xd_train, y_train = make_data(N_TRAIN)
Xs_test, Xd_test, y_test = make_data(N_TEST)

# ---- 1. the per-pair loops against the vectorised bilinear, every type ----
emb = torch.randn(5, len(VOCAB), 4, requires_grad=True)
worst = 0.0
for bilinear_type in ["all", "each", "interaction"]:
    layer = BilinearInteraction(len(VOCAB), 4, bilinear_type)
    g = torch.randn(5, len(VOCAB) * (len(VOCAB) - 1) // 2, 4)
    params = [emb] + list(layer.parameters())
    loop = layer(emb)
    # "each" never uses the last field's weight: the loop leaves it out of the graph (zeros by
    # materialize_grads), the stacked route gives it a zero gradient through the indexing
    grads_loop = torch.autograd.grad((loop * g).sum(), params, allow_unused=True, materialize_grads=True)
    vec = layer.forward_vectorised(emb)
    grads_vec = torch.autograd.grad((vec * g).sum(), params)
    err = max([(loop - vec).abs().max().item()]
              + [(a - b).abs().max().item() for a, b in zip(grads_loop, grads_vec)])
    print(f"bilinear {bilinear_type:11s} out {tuple(loop.shape)}, {len(params) - 1} weight(s): loop vs einsum {err:.2e}")
    worst = max(worst, err)
assert worst < 1e-5

try:
    SENETLayer(3)(torch.randn(2, 3))
except ValueError as e:
    print("SENETLayer on 2-d input:", e)

# ---- 2. training ----
model = FiBiNET(VOCAB, NUM_DENSE, embedding_size=4, bilinear_type='interaction')
optim = torch.optim.Adam(model.parameters(), lr=0.01)
loss_func = nn.BCEWithLogitsLoss(reduction='sum')
train_loader = DataLoader(TensorDataset(Xs_train, Xd_train, y_train), shuffle=True, batch_size=128,
                          generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def predict(Xs, Xd):
    model.eval()
    out = torch.sigmoid(model(Xs, Xd)).squeeze()
    model.train()
    return out


auc_before = auc_rank(y_test.squeeze(), predict(Xs_test, Xd_test))
for epoch in range(6):
    total_loss = 0.0
    for xs, xd, y in train_loader:
        logit = model(xs, xd)
        loss = loss_func(logit.squeeze(), y.squeeze())
        check = F.binary_cross_entropy(torch.sigmoid(logit).squeeze(), y.squeeze(), reduction='sum')
        assert abs(loss.item() - check.item()) < 1e-3 * max(1.0, abs(loss.item()))
        reg_loss = model.get_regularization_loss()
        optim.zero_grad()
        (loss + reg_loss).backward()
        optim.step()
        total_loss += loss.item()
    pred = predict(Xs_test, Xd_test)
    print(f"Epoch {epoch + 1}/6 - loss: {total_loss / N_TRAIN:.4f} - test AUC: "
          f"{auc_rank(y_test.squeeze(), pred):.4f}")

pred = predict(Xs_test, Xd_test)
auc_after = auc_rank(y_test.squeeze(), pred)
auc_check = auc_pairs(y_test.squeeze(), pred)
A = model.SE.last_A
print(f"AUC {auc_before:.4f} -> {auc_after:.4f} (pairwise {auc_check:.4f}); "
      f"SENET weights min {A.min().item():.3f} mean {A.mean().item():.3f}")
assert abs(auc_after - auc_check) < 1e-9
assert A.min().item() >= 0
assert auc_after > 0.6

print(f"FINAL auc_before={auc_before:.4f} auc_after={auc_after:.4f} train_loss={total_loss / N_TRAIN:.4f}")
