"""Feature-interaction CTR models as DeepCTR-torch and rixwew/pytorch-fm write them, at tiny sizes on
synthetic click logs with sparse fields, one multi-hot field and dense features, and a label from a
planted cross term: DCN-v2's ``CrossNetwork`` (``x0 * self.kernels[i](xl) + xl``) and the
mixture-of-low-rank-experts ``CrossNetMix`` (per-expert ``torch.matmul`` loops with a gating
``softmax(1)``, against a batched ``torch.einsum``/``torch.bmm`` rewrite: must agree), xDeepFM's
``CIN`` (``torch.einsum('bhd,bmd->bhmd', x0, xk)`` reshaped to ``(B, H*M, D)``, ``nn.Conv1d(H*M, Hk,
1)``, ``torch.split`` half to the output, ``sum(dim=2)``; against the ``x0.unsqueeze(2) *
h.unsqueeze(1)`` broadcast), AutoInt's interacting layer on ``nn.MultiheadAttention(batch_first=True)``
against the same attention by hand from ``in_proj_weight.chunk(3)`` (outputs and head-averaged
weights must agree), ``nn.EmbeddingBag(mode='sum')`` with ``offsets`` and ``per_sample_weights``
for the multi-hot field (against ``index_add_`` of weighted rows), ``BCEWithLogitsLoss``, ``Adagrad``
on the embeddings + ``Adam`` on the dense parts, AUC by the rank statistic
``argsort().argsort()`` and log-loss, against a logistic regression on the raw features.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

# ---- synthetic click logs ----
FIELD_DIMS = [7, 5, 9, 6]
BAG_VOCAB, BAG_MAX = 11, 4
N_DENSE = 3
N_TRAIN, N_TEST = 1536, 512
N = N_TRAIN + N_TEST

sparse = np.stack([rng.randint(0, d, size=N) for d in FIELD_DIMS], axis=1).astype(np.int64)
dense = rng.randn(N, N_DENSE).astype(np.float32)
bag_len = rng.randint(1, BAG_MAX + 1, size=N)
bag_tokens = [rng.randint(0, BAG_VOCAB, size=n) for n in bag_len]
bag_weights = [rng.uniform(0.2, 1.0, size=n).astype(np.float32) for n in bag_len]
# planted effects: a field-by-field cross, a field-by-dense cross and a multi-hot-by-dense cross
u0 = rng.randn(FIELD_DIMS[0])
u1 = rng.randn(FIELD_DIMS[1])
u2 = rng.randn(FIELD_DIMS[2])
t_bag = rng.randn(BAG_VOCAB)
bag_score = np.array([np.sum(t_bag[t] * w) for t, w in zip(bag_tokens, bag_weights)])
logit = (1.6 * u0[sparse[:, 0]] * u1[sparse[:, 1]] + 1.2 * u2[sparse[:, 2]] * dense[:, 0]
         + 0.9 * bag_score * dense[:, 1] + 0.3 * dense[:, 2] - 0.2)
label = (rng.rand(N) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float32)
print(f"samples {N} train {N_TRAIN} fields {len(FIELD_DIMS)} bag vocab {BAG_VOCAB} dense {N_DENSE}")
print(f"click rate {label.mean():.4f}")

X_sparse = torch.from_numpy(sparse)
X_dense = torch.from_numpy(dense)
y = torch.from_numpy(label)
bag_flat = torch.from_numpy(np.concatenate(bag_tokens).astype(np.int64))
bag_w = torch.from_numpy(np.concatenate(bag_weights))
bag_offsets_np = np.concatenate([[0], np.cumsum(bag_len)]).astype(np.int64)


def get_bag(idx):
    """The multi-hot field of rows ``idx`` as EmbeddingBag's flat input, offsets and weights."""
    pieces = [np.arange(bag_offsets_np[i], bag_offsets_np[i + 1]) for i in idx.tolist()]
    lens = [len(p) for p in pieces]
    pos = torch.from_numpy(np.concatenate(pieces))
    offsets = torch.tensor([0] + list(np.cumsum(lens)[:-1]), dtype=torch.long)
    return bag_flat[pos], offsets, bag_w[pos]


# ---- input layer ----
class FeatureInput(nn.Module):
    def __init__(self, field_dims, embedding_size):
        super().__init__()
        self.embedding_dict = nn.ModuleDict({
            f"C{i}": nn.Embedding(d, embedding_size) for i, d in enumerate(field_dims)
        })
        self.bag = nn.EmbeddingBag(BAG_VOCAB, embedding_size, mode="sum")
        self.dense_embedding = nn.Linear(N_DENSE, embedding_size, bias=False)
        for tensor in list(self.embedding_dict.values()) + [self.bag]:
            nn.init.normal_(tensor.weight, mean=0, std=0.1)
        self.num_fields = len(field_dims) + 2

    def forward(self, x_sparse, x_dense, bag):
        tokens, offsets, weights = bag
        embs = [self.embedding_dict[f"C{i}"](x_sparse[:, i]) for i in range(x_sparse.shape[1])]
        embs.append(self.bag(tokens, offsets, per_sample_weights=weights))
        embs.append(self.dense_embedding(x_dense))
        return torch.stack(embs, dim=1)  # (B, fields, k)


# ---- DCN-v2: CrossNetwork and CrossNetMix ----
class CrossNet(nn.Module):
    def __init__(self, in_features, layer_num=2):
        super().__init__()
        self.layer_num = layer_num
        self.kernels = nn.ModuleList([nn.Linear(in_features, in_features) for _ in range(layer_num)])

    def forward(self, inputs):
        x_0 = inputs
        x_l = x_0
        for i in range(self.layer_num):
            x_l = x_0 * self.kernels[i](x_l) + x_l
        return x_l


class CrossNetMix(nn.Module):
    def __init__(self, in_features, low_rank=4, num_experts=3, layer_num=2):
        super().__init__()
        self.layer_num = layer_num
        self.num_experts = num_experts
        # U: (in_features, low_rank)
        self.U_list = nn.Parameter(torch.Tensor(layer_num, num_experts, in_features, low_rank))
        # V: (in_features, low_rank)
        self.V_list = nn.Parameter(torch.Tensor(layer_num, num_experts, in_features, low_rank))
        # C: (low_rank, low_rank)
        self.C_list = nn.Parameter(torch.Tensor(layer_num, num_experts, low_rank, low_rank))
        self.gating = nn.ModuleList([nn.Linear(in_features, 1, bias=False) for _ in range(num_experts)])
        self.bias = nn.Parameter(torch.Tensor(layer_num, in_features, 1))
        for i in range(self.layer_num):
            nn.init.xavier_normal_(self.U_list[i])
            nn.init.xavier_normal_(self.V_list[i])
            nn.init.xavier_normal_(self.C_list[i])
        nn.init.zeros_(self.bias)

    def forward(self, inputs):
        x_0 = inputs.unsqueeze(2)  # (bs, in_features, 1)
        x_l = x_0
        for i in range(self.layer_num):
            output_of_experts = []
            gating_score_of_experts = []
            for expert_id in range(self.num_experts):
                gating_score_of_experts.append(self.gating[expert_id](x_l.squeeze(2)))
                v_x = torch.matmul(self.V_list[i][expert_id].t(), x_l)  # (bs, low_rank, 1)
                v_x = torch.tanh(v_x)
                v_x = torch.matmul(self.C_list[i][expert_id], v_x)
                v_x = torch.tanh(v_x)
                uv_x = torch.matmul(self.U_list[i][expert_id], v_x)  # (bs, in_features, 1)
                dot_ = uv_x + self.bias[i]
                dot_ = x_0 * dot_  # Hadamard-product
                output_of_experts.append(dot_.squeeze(2))
            output_of_experts = torch.stack(output_of_experts, 2)  # (bs, in_features, num_experts)
            gating_score_of_experts = torch.stack(gating_score_of_experts, 1)  # (bs, num_experts, 1)
            moe_out = torch.matmul(output_of_experts, gating_score_of_experts.softmax(1))
            x_l = moe_out + x_l  # (bs, in_features, 1)
        return x_l.squeeze()

    def forward_batched(self, inputs):
        """The same mixture with every expert at once: einsum projections, bmm over the experts."""
        x_0 = inputs
        x_l = x_0
        gate_w = torch.cat([g.weight for g in self.gating], dim=0)  # (E, D)
        B = inputs.shape[0]
        for i in range(self.layer_num):
            v_x = torch.tanh(torch.einsum("edr,bd->ber", self.V_list[i], x_l))
            C = self.C_list[i].unsqueeze(0).expand(B, -1, -1, -1).reshape(-1, *self.C_list.shape[-2:])
            v_x = torch.tanh(torch.bmm(C, v_x.reshape(-1, v_x.shape[-1], 1))).view(B, self.num_experts, -1)
            uv_x = torch.einsum("edr,ber->bde", self.U_list[i], v_x) + self.bias[i]
            experts = x_0.unsqueeze(2) * uv_x  # (B, D, E)
            gates = F.softmax(x_l @ gate_w.t(), dim=1)  # (B, E)
            x_l = torch.bmm(experts, gates.unsqueeze(2)).squeeze(2) + x_l
        return x_l


class DCNMix(nn.Module):
    def __init__(self, field_dims, embedding_size=6, dnn_hidden_units=(32,)):
        super().__init__()
        self.inputs = FeatureInput(field_dims, embedding_size)
        dim = self.inputs.num_fields * embedding_size
        self.crossnet = CrossNetMix(dim)
        self.dnn = nn.Sequential(nn.Linear(dim, dnn_hidden_units[0]), nn.ReLU())
        self.dnn_linear = nn.Linear(dim + dnn_hidden_units[0], 1, bias=False)

    def forward(self, x_sparse, x_dense, bag):
        dnn_input = torch.flatten(self.inputs(x_sparse, x_dense, bag), start_dim=1)
        deep_out = self.dnn(dnn_input)
        cross_out = self.crossnet(dnn_input)
        stack_out = torch.cat((cross_out, deep_out), dim=-1)
        return self.dnn_linear(stack_out).squeeze(-1)


# ---- xDeepFM: CIN ----
class CIN(nn.Module):
    def __init__(self, field_size, layer_size=(8, 8), split_half=True):
        super().__init__()
        self.layer_size = layer_size
        self.field_nums = [field_size]
        self.split_half = split_half
        self.conv1ds = nn.ModuleList()
        for i, size in enumerate(self.layer_size):
            self.conv1ds.append(nn.Conv1d(self.field_nums[-1] * self.field_nums[0], size, 1))
            if self.split_half and i != len(self.layer_size) - 1:
                self.field_nums.append(size // 2)
            else:
                self.field_nums.append(size)

    def forward(self, inputs, broadcast=False):
        batch_size, _, dim = inputs.shape
        hidden_nn_layers = [inputs]
        final_result = []
        for i, size in enumerate(self.layer_size):
            # x^(k-1) * x^0
            if broadcast:
                x = hidden_nn_layers[0].unsqueeze(2) * hidden_nn_layers[-1].unsqueeze(1)
            else:
                x = torch.einsum("bhd,bmd->bhmd", hidden_nn_layers[0], hidden_nn_layers[-1])
            # x.shape = (batch_size , hi * m, dim)
            x = x.reshape(batch_size, hidden_nn_layers[0].shape[1] * hidden_nn_layers[-1].shape[1], dim)
            x = self.conv1ds[i](x)
            curr_out = F.relu(x)
            if self.split_half:
                if i != len(self.layer_size) - 1:
                    next_hidden, direct_connect = torch.split(curr_out, 2 * [size // 2], 1)
                else:
                    direct_connect = curr_out
                    next_hidden = 0
            else:
                direct_connect = curr_out
                next_hidden = curr_out
            final_result.append(direct_connect)
            hidden_nn_layers.append(next_hidden)
        result = torch.cat(final_result, dim=1)
        return torch.sum(result, -1)


class xDeepFM(nn.Module):
    def __init__(self, field_dims, embedding_size=6, cin_layer_size=(8, 8)):
        super().__init__()
        self.inputs = FeatureInput(field_dims, embedding_size)
        self.cin = CIN(self.inputs.num_fields, cin_layer_size)
        featuremap_num = sum(cin_layer_size[:-1]) // 2 + cin_layer_size[-1]
        self.cin_linear = nn.Linear(featuremap_num, 1, bias=False)
        dim = self.inputs.num_fields * embedding_size
        self.dnn = nn.Sequential(nn.Linear(dim, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, x_sparse, x_dense, bag):
        emb = self.inputs(x_sparse, x_dense, bag)
        cin_logit = self.cin_linear(self.cin(emb))
        dnn_logit = self.dnn(torch.flatten(emb, start_dim=1))
        return (cin_logit + dnn_logit).squeeze(-1)


# ---- AutoInt ----
class InteractingLayer(nn.Module):
    def __init__(self, embedding_size, head_num=2):
        super().__init__()
        self.att = nn.MultiheadAttention(embedding_size, head_num, batch_first=True)
        self.W_Res = nn.Linear(embedding_size, embedding_size, bias=False)

    def forward(self, inputs):
        out, _ = self.att(inputs, inputs, inputs, need_weights=False)
        return F.relu(out + self.W_Res(inputs))


def attention_by_hand(mha, x):
    """nn.MultiheadAttention's forward written out from its packed in_proj."""
    B, L, E = x.shape
    h = mha.num_heads
    w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
    b_q, b_k, b_v = mha.in_proj_bias.chunk(3)
    q = F.linear(x, w_q, b_q).view(B, L, h, E // h).transpose(1, 2)
    k = F.linear(x, w_k, b_k).view(B, L, h, E // h).transpose(1, 2)
    v = F.linear(x, w_v, b_v).view(B, L, h, E // h).transpose(1, 2)
    scores = torch.matmul(q, k.transpose(-2, -1)) / (E // h) ** 0.5
    attn = torch.softmax(scores, dim=-1)
    out = torch.matmul(attn, v).transpose(1, 2).reshape(B, L, E)
    return mha.out_proj(out), attn.mean(dim=1)


class AutoInt(nn.Module):
    def __init__(self, field_dims, embedding_size=8, att_layer_num=2):
        super().__init__()
        self.inputs = FeatureInput(field_dims, embedding_size)
        self.int_layers = nn.ModuleList([InteractingLayer(embedding_size) for _ in range(att_layer_num)])
        self.dnn_linear = nn.Linear(self.inputs.num_fields * embedding_size, 1)

    def forward(self, x_sparse, x_dense, bag):
        att_input = self.inputs(x_sparse, x_dense, bag)
        for layer in self.int_layers:
            att_input = layer(att_input)
        return self.dnn_linear(torch.flatten(att_input, start_dim=1)).squeeze(-1)


class LogisticRegression(nn.Module):
    def __init__(self, field_dims):
        super().__init__()
        self.inputs = FeatureInput(field_dims, 1)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x_sparse, x_dense, bag):
        return self.inputs(x_sparse, x_dense, bag).sum(dim=(1, 2)) + self.bias


# ---- metrics ----
def roc_auc(y_true, y_score):
    ranks = y_score.argsort().argsort().float() + 1
    n_pos = y_true.sum()
    n_neg = y_true.numel() - n_pos
    return ((ranks[y_true == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)).item()


def log_loss(y_true, y_logit):
    p = torch.sigmoid(y_logit).clamp(1e-7, 1 - 1e-7)
    return -(y_true * torch.log(p) + (1 - y_true) * torch.log(1 - p)).mean().item()


# ---- agreement checks ----
check_idx = torch.arange(16)
bag_check = get_bag(check_idx)
inputs = FeatureInput(FIELD_DIMS, 6)
bag_out = inputs.bag(*bag_check[:2], per_sample_weights=bag_check[2])
seg = torch.repeat_interleave(torch.arange(16), torch.diff(torch.cat([bag_check[1], torch.tensor([len(bag_check[0])])])))
bag_ref = torch.zeros(16, 6).index_add_(0, seg, inputs.bag.weight[bag_check[0]] * bag_check[2].unsqueeze(1))
bag_diff = (bag_out - bag_ref).abs().max().item()
print(f"EmbeddingBag(sum, per_sample_weights) vs index_add_: max diff {bag_diff:.2e}")

emb = inputs(X_sparse[check_idx], X_dense[check_idx], bag_check)
flat = torch.flatten(emb, start_dim=1)
mix = CrossNetMix(flat.shape[1])
with torch.no_grad():
    mix.bias.normal_(0, 0.1)
mix_diff = (mix(flat) - mix.forward_batched(flat)).abs().max().item()
g_loop = torch.autograd.grad(mix(flat).pow(2).sum(), mix.U_list)[0]
g_batched = torch.autograd.grad(mix.forward_batched(flat).pow(2).sum(), mix.U_list)[0]
mix_grad_diff = (g_loop - g_batched).abs().max().item()
print(f"CrossNetMix loop vs einsum/bmm: max diff {mix_diff:.2e} grad diff {mix_grad_diff:.2e}")
cross = CrossNet(flat.shape[1])
print(f"CrossNet output {tuple(cross(flat).shape)} CrossNetMix output {tuple(mix(flat).shape)}")

cin = CIN(emb.shape[1], (8, 8))
cin_out = cin(emb)
cin_diff = (cin_out - cin(emb, broadcast=True)).abs().max().item()
print(f"CIN einsum vs broadcast: shape {tuple(cin_out.shape)} max diff {cin_diff:.2e}")

mha = nn.MultiheadAttention(6, 2, batch_first=True)
out_m, w_m = mha(emb, emb, emb)
out_h, w_h = attention_by_hand(mha, emb)
mha_diff = max((out_m - out_h).abs().max().item(), (w_m - w_h).abs().max().item())
print(f"MultiheadAttention vs by hand: weights {tuple(w_m.shape)} max diff {mha_diff:.2e}")


# ---- training ----
def make_optimizers(model):
    sparse_params = [p for n, p in model.named_parameters() if "embedding_dict" in n or "bag" in n]
    dense_params = [p for n, p in model.named_parameters() if not ("embedding_dict" in n or "bag" in n)]
    return [torch.optim.Adagrad(sparse_params, lr=0.05), torch.optim.Adam(dense_params, lr=0.005)]


def evaluate(model, idx):
    model.eval()
    with torch.no_grad():
        logits = model(X_sparse[idx], X_dense[idx], get_bag(idx))
    model.train()
    return roc_auc(y[idx], logits), log_loss(y[idx], logits)


loss_func = nn.BCEWithLogitsLoss()
test_idx = torch.arange(N_TRAIN, N)
results = {}
for name, cls in [("lr", LogisticRegression), ("dcn", DCNMix), ("xdeepfm", xDeepFM), ("autoint", AutoInt)]:
    torch.manual_seed(seed + 1)
    model = cls(FIELD_DIMS)
    optims = make_optimizers(model)
    for epoch in range(6):
        perm = torch.randperm(N_TRAIN)
        total = 0.0
        for start in range(0, N_TRAIN, 128):
            idx = perm[start:start + 128]
            logits = model(X_sparse[idx], X_dense[idx], get_bag(idx))
            loss = loss_func(logits, y[idx])
            for opt in optims:
                opt.zero_grad()
            loss.backward()
            for opt in optims:
                opt.step()
            total += loss.item() * len(idx)
        if epoch % 2 == 1:
            print(f"{name} epoch {epoch + 1} train loss {total / N_TRAIN:.4f}")
    auc, ll = evaluate(model, test_idx)
    results[name] = (auc, ll)
    print(f"{name} test auc {auc:.4f} logloss {ll:.4f}")

best_gain = max(results[k][0] for k in ("dcn", "xdeepfm", "autoint")) - results["lr"][0]
print(f"best interaction model auc gain over logistic regression {best_gain:.4f}")
print("FINAL " + " ".join(f"auc_{k}={v[0]:.4f} logloss_{k}={v[1]:.4f}" for k, v in results.items())
      + f" gain={best_gain:.4f} bag_diff={bag_diff:.6f} mix_diff={mix_diff:.6f}"
      f" mix_grad_diff={mix_grad_diff:.6f} cin_diff={cin_diff:.6f} mha_diff={mha_diff:.6f}")
