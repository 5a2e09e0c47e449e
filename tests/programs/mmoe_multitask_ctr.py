"""Multi-task CTR/CVR as shenweichen/DeepCTR-Torch writes it (deepctr_torch/models/multitask/
mmoe.py, ple.py, esmm.py; basemodel.py; layers/core.py), at tiny sizes on synthetic logs with a
shared and a task-specific signal: inputs as one float matrix cut by ``feature_index`` slices
into ``X[:, start:end].long()`` for ``nn.Embedding(vocab, dim, padding_idx=0)`` lookups (a
padded behaviour sequence mean-pooled under a ``seq != 0`` mask), ``combine_dnn_input`` by
``torch.flatten(torch.cat(list, dim=-1), start_dim=1)``, the ``DNN`` of Linear + ReLU + Dropout
with ``nn.init.normal_(std=init_std)``, MMoE shared experts as an ``nn.ModuleList`` stacked by
``torch.stack(expert_outs, 1)`` with per-task softmax gates applied by ``torch.matmul(gate.
softmax(1).unsqueeze(1), expert_outs)`` (against ``torch.einsum('bk,bkd->bd', ...)`` and
``torch.bmm``, values and gradients), ESMM towers with ``p_ctcvr = p_ctr * p_cvr``, PLE's
``CGC`` levels of task-specific and shared experts with a shared gate, the ``PredictionLayer``
sigmoid, ``F.binary_cross_entropy(y_pred[:, i], y[:, i], reduction='sum')`` per task, Adagrad
and Adam, and AUC by ``torch.argsort`` ranks on the held-out split.
"""
# ruff: noqa: UP008  (DeepCTR-Torch's own spelling: super(DNN, self).__init__())

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


# ---- synthetic two-task logs: user/item latent factors shared by both tasks, plus a click-only
# signal (the ad slot) and a conversion-only signal (the price band) ----
rng = np.random.RandomState(0)
num_users, num_items, num_slots, num_prices, hist_len = 40, 60, 4, 5, 6
n = 4000
user = rng.randint(1, num_users + 1, n)
item = rng.randint(1, num_items + 1, n)
slot = rng.randint(1, num_slots + 1, n)
price = rng.randint(1, num_prices + 1, n)
user_factor = rng.randn(num_users + 1, 3)
item_factor = rng.randn(num_items + 1, 3)
hist = rng.randint(1, num_items + 1, (n, hist_len))
hist_lengths = rng.randint(1, hist_len + 1, n)
hist[np.arange(hist_len)[None, :] >= hist_lengths[:, None]] = 0   # right-padded with 0
shared = (user_factor[user] * item_factor[item]).sum(1)
slot_effect = np.array([0.0, 1.2, 0.3, -0.6, -1.2])[slot]
price_effect = np.array([0.0, 1.5, 0.7, 0.0, -0.7, -1.5])[price]
click = (rng.rand(n) < 1 / (1 + np.exp(-(0.8 * shared + slot_effect - 0.5)))).astype(np.float32)
conversion = click * (rng.rand(n) < 1 / (1 + np.exp(-(0.8 * shared + price_effect)))).astype(np.float32)
x_np = np.concatenate([user[:, None], item[:, None], slot[:, None], price[:, None], hist],
                      axis=1).astype(np.float32)
y_np = np.stack([click, conversion], axis=1)   # (click, click-and-convert) as ESMM's labels
print(f"samples {n} ctr {click.mean():.4f} ctcvr {conversion.mean():.4f} "
      f"cvr {conversion.sum() / click.sum():.4f}")

sparse_features = [("user_id", num_users + 1), ("item_id", num_items + 1),
                   ("ad_slot", num_slots + 1), ("price_band", num_prices + 1)]
feature_index = {}
start = 0
for name, _ in sparse_features:
    feature_index[name] = (start, start + 1)
    start += 1
feature_index["hist_item_id"] = (start, start + hist_len)


# ---- deepctr_torch/layers/core.py ----
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
            output += self.bias
        if self.task == "binary":
            output = torch.sigmoid(output)
        return output


# ---- deepctr_torch/models/basemodel.py (the embedding half) ----
class BaseModel(nn.Module):

    def __init__(self, embedding_dim=4, init_std=0.0001):
        super(BaseModel, self).__init__()
        self.embedding_dict = nn.ModuleDict(
            {name: nn.Embedding(vocab, embedding_dim, padding_idx=0) for name, vocab in sparse_features})
        for tensor in self.embedding_dict.values():
            nn.init.normal_(tensor.weight, mean=0, std=init_std)
            with torch.no_grad():
                tensor.weight[0].fill_(0)
        self.input_dim = embedding_dim * (len(sparse_features) + 1)

    def input_from_feature_columns(self, X):
        sparse_embedding_list = [
            self.embedding_dict[name](X[:, feature_index[name][0]:feature_index[name][1]].long())
            for name, _ in sparse_features]
        seq = X[:, feature_index["hist_item_id"][0]:feature_index["hist_item_id"][1]].long()
        seq_embed = self.embedding_dict["item_id"](seq)          # (B, T, E), zero rows at padding
        mask = (seq != 0).float().unsqueeze(-1)
        pooled = (seq_embed * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True).clamp(min=1)
        return sparse_embedding_list + [pooled]

    def combine_dnn_input(self, sparse_embedding_list):
        return torch.flatten(torch.cat(sparse_embedding_list, dim=-1), start_dim=1)


class MMOE(BaseModel):
    """MMoE with ESMM towers: the CVR tower is trained only through p_ctcvr = p_ctr * p_cvr."""

    def __init__(self, num_experts=3, expert_dnn_hidden_units=(32, 16), gate_dnn_hidden_units=(),
                 tower_dnn_hidden_units=(8,), dnn_dropout=0, init_std=0.0001):
        super(MMOE, self).__init__(init_std=init_std)
        self.num_tasks = 2
        self.num_experts = num_experts
        self.gate_dnn_hidden_units = gate_dnn_hidden_units
        self.expert_dnn = nn.ModuleList([DNN(self.input_dim, expert_dnn_hidden_units, dnn_dropout, init_std=0.1)
                                         for _ in range(self.num_experts)])
        self.gate_dnn_final_layer = nn.ModuleList(
            [nn.Linear(self.input_dim, self.num_experts, bias=False) for _ in range(self.num_tasks)])
        self.tower_dnn = nn.ModuleList([DNN(expert_dnn_hidden_units[-1], tower_dnn_hidden_units, dnn_dropout,
                                            init_std=0.1) for _ in range(self.num_tasks)])
        self.tower_dnn_final_layer = nn.ModuleList(
            [nn.Linear(tower_dnn_hidden_units[-1], 1, bias=False) for _ in range(self.num_tasks)])
        self.out = nn.ModuleList([PredictionLayer('binary') for _ in range(self.num_tasks)])

    def experts_and_gates(self, X):
        dnn_input = self.combine_dnn_input(self.input_from_feature_columns(X))
        expert_outs = []
        for i in range(self.num_experts):
            expert_out = self.expert_dnn[i](dnn_input)
            expert_outs.append(expert_out)
        expert_outs = torch.stack(expert_outs, 1)  # (bs, num_experts, dim)
        gates = [self.gate_dnn_final_layer[i](dnn_input).softmax(1) for i in range(self.num_tasks)]
        return expert_outs, gates

    def forward(self, X):
        expert_outs, gates = self.experts_and_gates(X)
        mmoe_outs = []
        for i in range(self.num_tasks):
            gate_mul_expert = torch.matmul(gates[i].unsqueeze(1), expert_outs)  # (bs, 1, dim)
            mmoe_outs.append(gate_mul_expert.squeeze(1))
        task_outs = []
        for i in range(self.num_tasks):
            tower_dnn_out = self.tower_dnn[i](mmoe_outs[i])
            tower_dnn_logit = self.tower_dnn_final_layer[i](tower_dnn_out)
            output = self.out[i](tower_dnn_logit)
            task_outs.append(output)
        ctr_pred, cvr_pred = task_outs
        ctcvr_pred = ctr_pred * cvr_pred  # ESMM: pCTCVR = pCTR * pCVR
        return torch.cat([ctr_pred, ctcvr_pred], -1)


class PLE(BaseModel):
    """PLE: CGC levels of task-specific and shared experts; the last level gates per task only."""

    def __init__(self, shared_expert_num=1, specific_expert_num=1, num_levels=2,
                 expert_dnn_hidden_units=(16,), tower_dnn_hidden_units=(8,), init_std=0.0001):
        super(PLE, self).__init__(init_std=init_std)
        self.num_tasks = 2
        self.specific_expert_num = specific_expert_num
        self.shared_expert_num = shared_expert_num
        self.num_levels = num_levels
        self.expert_dnn_hidden_units = expert_dnn_hidden_units

        def multi_module_list(num_level, num_tasks, expert_num, inputs_dim_level0, inputs_dim_not_level0,
                              hidden_units):
            return nn.ModuleList(
                [nn.ModuleList([nn.ModuleList([DNN(inputs_dim_level0 if level_num == 0 else inputs_dim_not_level0,
                                                   hidden_units, init_std=0.1)
                                               for _ in range(expert_num)])
                                for _ in range(num_tasks)]) for level_num in range(num_level)])

        self.specific_experts = multi_module_list(self.num_levels, self.num_tasks, self.specific_expert_num,
                                                  self.input_dim, expert_dnn_hidden_units[-1],
                                                  expert_dnn_hidden_units)
        self.shared_experts = multi_module_list(self.num_levels, 1, self.shared_expert_num,
                                                self.input_dim, expert_dnn_hidden_units[-1],
                                                expert_dnn_hidden_units)
        specific_gate_output_dim = self.specific_expert_num + self.shared_expert_num
        self.specific_gate_dnn_final_layer = nn.ModuleList(
            [nn.ModuleList([nn.Linear(self.input_dim if level_num == 0 else expert_dnn_hidden_units[-1],
                                      specific_gate_output_dim, bias=False)
                            for _ in range(self.num_tasks)]) for level_num in range(self.num_levels)])
        shared_gate_output_dim = self.num_tasks * self.specific_expert_num + self.shared_expert_num
        self.shared_gate_dnn_final_layer = nn.ModuleList(
            [nn.Linear(self.input_dim if level_num == 0 else expert_dnn_hidden_units[-1],
                       shared_gate_output_dim, bias=False) for level_num in range(self.num_levels)])
        self.tower_dnn = nn.ModuleList([DNN(expert_dnn_hidden_units[-1], tower_dnn_hidden_units, init_std=0.1)
                                        for _ in range(self.num_tasks)])
        self.tower_dnn_final_layer = nn.ModuleList(
            [nn.Linear(tower_dnn_hidden_units[-1], 1, bias=False) for _ in range(self.num_tasks)])
        self.out = nn.ModuleList([PredictionLayer('binary') for _ in range(self.num_tasks)])

    def cgc_net(self, inputs, level_num):
        # inputs: [task1, task2, ..., taskn, shared task]
        specific_expert_outputs = []
        for i in range(self.num_tasks):
            for j in range(self.specific_expert_num):
                specific_expert_outputs.append(self.specific_experts[level_num][i][j](inputs[i]))
        shared_expert_outputs = []
        for k in range(self.shared_expert_num):
            shared_expert_outputs.append(self.shared_experts[level_num][0][k](inputs[-1]))

        cgc_outs = []
        for i in range(self.num_tasks):
            cur_experts_outputs = specific_expert_outputs[
                i * self.specific_expert_num:(i + 1) * self.specific_expert_num] + shared_expert_outputs
            cur_experts_outputs = torch.stack(cur_experts_outputs, 1)
            gate_dnn_out = self.specific_gate_dnn_final_layer[level_num][i](inputs[i])
            gate_mul_expert = torch.matmul(gate_dnn_out.softmax(1).unsqueeze(1), cur_experts_outputs)
            cgc_outs.append(gate_mul_expert.squeeze(1))
        if level_num != self.num_levels - 1:
            cur_experts_outputs = torch.stack(specific_expert_outputs + shared_expert_outputs, 1)
            gate_dnn_out = self.shared_gate_dnn_final_layer[level_num](inputs[-1])
            gate_mul_expert = torch.matmul(gate_dnn_out.softmax(1).unsqueeze(1), cur_experts_outputs)
            cgc_outs.append(gate_mul_expert.squeeze(1))
        return cgc_outs

    def forward(self, X):
        dnn_input = self.combine_dnn_input(self.input_from_feature_columns(X))
        ple_inputs = [dnn_input] * (self.num_tasks + 1)
        ple_outs = []
        for i in range(self.num_levels):
            ple_outs = self.cgc_net(inputs=ple_inputs, level_num=i)
            ple_inputs = ple_outs
        task_outs = []
        for ple_out, tower_dnn, tower_dnn_final_layer, out in zip(ple_outs, self.tower_dnn,
                                                                  self.tower_dnn_final_layer, self.out):
            tower_dnn_out = tower_dnn(ple_out)
            tower_dnn_logit = tower_dnn_final_layer(tower_dnn_out)
            task_outs.append(out(tower_dnn_logit))
        return torch.cat(task_outs, -1)


def roc_auc_score(targets, predicts):
    order = torch.argsort(predicts)
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(1, len(predicts) + 1)
    n_pos = int((targets == 1).sum())
    n_neg = len(targets) - n_pos
    return (ranks[targets == 1].sum().item() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


x_all, y_all = torch.from_numpy(x_np), torch.from_numpy(y_np)
split = int(0.8 * n)
train_tensor_data = TensorDataset(x_all[:split], y_all[:split])
x_test, y_test = x_all[split:], y_all[split:]


def fit(model, optim, epochs, batch_size=256, name="model"):
    train_loader = DataLoader(dataset=train_tensor_data, shuffle=True, batch_size=batch_size)
    loss_func = [F.binary_cross_entropy, F.binary_cross_entropy]
    for epoch in range(epochs):
        model.train()
        loss_epoch = 0
        for x, y in train_loader:
            y_pred = model(x).squeeze()
            optim.zero_grad()
            loss = sum([loss_func[i](y_pred[:, i], y[:, i], reduction='sum') for i in range(model.num_tasks)])
            loss_epoch += loss.item()
            loss.backward()
            optim.step()
        model.eval()
        with torch.no_grad():
            pred = model(x_test)
        aucs = [roc_auc_score(y_test[:, i], pred[:, i]) for i in range(2)]
        print(f"{name} epoch {epoch + 1}/{epochs} loss {loss_epoch / split:.4f} "
              f"test ctr_auc {aucs[0]:.4f} ctcvr_auc {aucs[1]:.4f}")
    return aucs


mmoe = MMOE()
print("experts", len(mmoe.expert_dnn), "gates", len(mmoe.gate_dnn_final_layer),
      "padding rows zero", all(bool((e.weight[0] == 0).all()) for e in mmoe.embedding_dict.values()))
mmoe_aucs = fit(mmoe, torch.optim.Adagrad(mmoe.parameters(), lr=0.05), epochs=5, name="mmoe")

# the padding row got no gradient: still zero after training
padding_zero = all(bool((e.weight[0] == 0).all()) for e in mmoe.embedding_dict.values())
print("padding rows still zero", padding_zero)

# three routes of the gate-weighted expert sum agree, forward and backward
expert_outs, gates = mmoe.experts_and_gates(x_test[:64])
gate = gates[0]
routes = [
    torch.matmul(gate.unsqueeze(1), expert_outs).squeeze(1),
    torch.einsum('bk,bkd->bd', gate, expert_outs),
    torch.bmm(gate.unsqueeze(1), expert_outs).squeeze(1),
    (gate.unsqueeze(-1) * expert_outs).sum(1),
]
probe = torch.randn(routes[0].shape)
grads = [torch.autograd.grad((r * probe).sum(), [gate, expert_outs], retain_graph=True) for r in routes]
route_err = max((r - routes[0]).abs().max().item() for r in routes[1:])
route_grad_err = max(max((a - b).abs().max().item() for a, b in zip(g, grads[0])) for g in grads[1:])
print(f"gate routes agree: {route_err < 1e-5} grads agree: {route_grad_err < 1e-5}")
gate_entropy = -(gate * gate.log()).sum(1).mean().item()
print(f"gate rows sum to one: {bool(torch.allclose(gate.sum(1), torch.ones(64)))} "
      f"mean entropy {gate_entropy:.4f}")

# ESMM's constraint holds by construction: pCTCVR <= pCTR
with torch.no_grad():
    pred = mmoe(x_test)
print("ctcvr <= ctr everywhere", bool((pred[:, 1] <= pred[:, 0]).all()))

ple = PLE()
ple_aucs = fit(ple, torch.optim.Adam(ple.parameters(), lr=0.01), epochs=5, name="ple")

print(f"FINAL mmoe_ctr_auc={mmoe_aucs[0]:.4f} mmoe_ctcvr_auc={mmoe_aucs[1]:.4f} "
      f"ple_ctr_auc={ple_aucs[0]:.4f} ple_ctcvr_auc={ple_aucs[1]:.4f} "
      f"route_err={route_err:.2e} route_grad_err={route_grad_err:.2e} padding_zero={int(padding_zero)}")
