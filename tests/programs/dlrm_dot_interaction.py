"""DLRM (Naumov et al. 2019; facebookresearch/dlrm dlrm_s_pytorch.py) at toy size on synthetic click logs.

The model is the repository's ``DLRM_Net``: ``create_emb`` builds one ``nn.EmbeddingBag(n, m, mode="sum",
sparse=True)`` per sparse feature with weights from ``np.random.uniform(low=-np.sqrt(1 / n), high=np.sqrt(1 /
n))`` assigned by ``EE.weight.data = torch.tensor(W, requires_grad=True)``; ``create_mlp`` builds the bottom and
top MLPs as ``nn.Sequential`` of ``nn.Linear`` with NumPy-normal weights, ``nn.ReLU`` and a final
``nn.Sigmoid`` at ``sigmoid_layer``; ``apply_emb`` calls each bag on ``(indices, offsets)``;
``interact_features`` does the ``"dot"`` interaction (``T = torch.cat([x] + ly, dim=1).view((batch_size, -1,
d))``, ``Z = torch.bmm(T, torch.transpose(T, 1, 2))``, the lower-triangle index lists ``li``/``lj`` by
``torch.tensor([i for i in range(ni) for j in range(i + offset)])``, ``Zflat = Z[:, li, lj]``, ``R =
torch.cat([x] + [Zflat], dim=1)``) or the ``"cat"`` one; the loss is ``torch.nn.BCELoss(reduction="mean")`` with
``loss_threshold`` clamping, the optimizer ``torch.optim.SGD`` over dense and sparse gradients together, and
accuracy is the script's ``np.round(Z.detach().cpu().numpy(), 0) == T.cpu().numpy()``. Batches come from the
repository's random-data layout: per-sample bag lengths, ``offsets`` as the exclusive cumsum, flat indices.

Checked: accuracy on held-out clicks rising for both interactions (the data's click logit is a per-row score
summed over every bag plus a dense-sparse dot product); the sparse
embedding gradients (``is_sparse``, ``coalesce()``, ``_nnz()``, ``to_dense()``) equal the gradients of the same
model built with ``sparse=False``; the bag sums equal ``F.embedding`` + a per-bag loop; and ``Zflat`` equals a
``torch.tril_indices`` gather.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

LN_EMB = np.array([40, 30, 50])     # rows per sparse feature table
M_SPA = 4                           # embedding dim == bottom MLP output
LN_BOT = np.array([6, 16, M_SPA])
DENSE = LN_BOT[0]


class DLRM_Net(nn.Module):
    def create_mlp(self, ln, sigmoid_layer):
        layers = nn.ModuleList()
        for i in range(0, ln.size - 1):
            n = ln[i]
            m = ln[i + 1]
            LL = nn.Linear(int(n), int(m), bias=True)
            mean = 0.0  # std_dev = np.sqrt(variance)
            std_dev = np.sqrt(2 / (m + n))  # np.sqrt(1 / m) # np.sqrt(1 / n)
            W = np.random.normal(mean, std_dev, size=(m, n)).astype(np.float32)
            std_dev = np.sqrt(1 / m)  # np.sqrt(2 / (m + 1))
            bt = np.random.normal(mean, std_dev, size=m).astype(np.float32)
            LL.weight.data = torch.tensor(W, requires_grad=True)
            LL.bias.data = torch.tensor(bt, requires_grad=True)
            layers.append(LL)
            if i == sigmoid_layer:
                layers.append(nn.Sigmoid())
            else:
                layers.append(nn.ReLU())
        return torch.nn.Sequential(*layers)

    def create_emb(self, m, ln, sparse=True):
        emb_l = nn.ModuleList()
        for i in range(0, ln.size):
            n = ln[i]
            EE = nn.EmbeddingBag(n, m, mode="sum", sparse=sparse)
            W = np.random.uniform(low=-np.sqrt(1 / n), high=np.sqrt(1 / n), size=(n, m)).astype(np.float32)
            EE.weight.data = torch.tensor(W, requires_grad=True)
            emb_l.append(EE)
        return emb_l

    def __init__(self, m_spa, ln_emb, ln_bot, ln_top, arch_interaction_op="dot", arch_interaction_itself=False,
                 sigmoid_bot=-1, sigmoid_top=-1, loss_threshold=0.0, sparse=True):
        super(DLRM_Net, self).__init__()  # noqa: UP008  (the repository's spelling)
        self.arch_interaction_op = arch_interaction_op
        self.arch_interaction_itself = arch_interaction_itself
        self.loss_threshold = loss_threshold
        self.emb_l = self.create_emb(m_spa, ln_emb, sparse=sparse)
        self.bot_l = self.create_mlp(ln_bot, sigmoid_bot)
        self.top_l = self.create_mlp(ln_top, sigmoid_top)
        self.loss_fn = torch.nn.BCELoss(reduction="mean")

    def apply_mlp(self, x, layers):
        return layers(x)

    def apply_emb(self, lS_o, lS_i, emb_l):
        ly = []
        for k, sparse_index_group_batch in enumerate(lS_i):
            sparse_offset_group_batch = lS_o[k]
            E = emb_l[k]
            V = E(sparse_index_group_batch, sparse_offset_group_batch, per_sample_weights=None)
            ly.append(V)
        return ly

    def interact_features(self, x, ly):
        if self.arch_interaction_op == "dot":
            # concatenate dense and sparse features
            (batch_size, d) = x.shape
            T = torch.cat([x] + ly, dim=1).view((batch_size, -1, d))
            # perform a dot product
            Z = torch.bmm(T, torch.transpose(T, 1, 2))
            # append dense feature with the interactions (into a row vector)
            _, ni, nj = Z.shape
            offset = 1 if self.arch_interaction_itself else 0
            li = torch.tensor([i for i in range(ni) for j in range(i + offset)])
            lj = torch.tensor([j for i in range(nj) for j in range(i + offset)])
            Zflat = Z[:, li, lj]
            # concatenate dense features and interactions
            R = torch.cat([x] + [Zflat], dim=1)
        elif self.arch_interaction_op == "cat":
            # concatenation features (into a row vector)
            R = torch.cat([x] + ly, dim=1)
        else:
            raise ValueError("ERROR: --arch-interaction-op=" + self.arch_interaction_op + " is not supported")
        return R

    def forward(self, dense_x, lS_o, lS_i):
        # process dense features (using bottom mlp), resulting in a row vector
        x = self.apply_mlp(dense_x, self.bot_l)
        # process sparse features(using embeddings), resulting in a list of row vectors
        ly = self.apply_emb(lS_o, lS_i, self.emb_l)
        # interact features (dense and sparse)
        z = self.interact_features(x, ly)
        # obtain probability of a click (using top mlp)
        p = self.apply_mlp(z, self.top_l)
        # clamp output if needed
        if 0.0 < self.loss_threshold and self.loss_threshold < 1.0:
            z = torch.clamp(p, min=self.loss_threshold, max=(1.0 - self.loss_threshold))
        else:
            z = p
        return z


def top_mlp_sizes(op, num_fea=LN_EMB.size + 1, m_den_out=M_SPA):
    if op == "dot":
        num_int = (num_fea * (num_fea - 1)) // 2 + m_den_out
    else:
        num_int = num_fea * m_den_out
    return np.array([num_int, 16, 1])


# ------------------------------------------------------------------ synthetic click logs
rs = np.random.RandomState(seed)
hidden = [rs.randn(n, 3).astype(np.float32) for n in LN_EMB]
dense_proj = rs.randn(DENSE, 3).astype(np.float32)


def generate_batch(n):
    X = rs.randn(n, DENSE).astype(np.float32)
    feats = [X @ dense_proj / np.sqrt(DENSE)]
    lS_o, lS_i = [], []
    for size, table in zip(LN_EMB, hidden):
        lengths = rs.randint(1, 4, size=n)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        indices = rs.randint(0, size, size=lengths.sum()).astype(np.int64)
        bag = np.add.reduceat(table[indices], offsets, axis=0)
        feats.append(bag)
        lS_o.append(torch.tensor(offsets))
        lS_i.append(torch.tensor(indices))
    logit = sum(f[:, 0] for f in feats[1:]) * 1.5 + (feats[0] * feats[1]).sum(1)
    T = (rs.rand(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return torch.tensor(X), lS_o, lS_i, torch.tensor(T).view(-1, 1)


train_batches = [generate_batch(64) for _ in range(40)]
test_X, test_o, test_i, test_T = generate_batch(1000)


def accuracy(model, X, lS_o, lS_i, T):
    with torch.no_grad():
        Z = model(X, lS_o, lS_i)
    A = np.sum((np.round(Z.detach().cpu().numpy(), 0) == T.cpu().numpy()).astype(np.uint8))
    return A / T.shape[0]


# ------------------------------------------------------------------ checks on a fresh dot model
dlrm = DLRM_Net(M_SPA, LN_EMB, LN_BOT, top_mlp_sizes("dot"), arch_interaction_op="dot",
                sigmoid_top=top_mlp_sizes("dot").size - 2)
print(dlrm.emb_l[0], "sparse:", dlrm.emb_l[0].sparse)
print(dlrm.top_l)

X, lS_o, lS_i, T = train_batches[0]
with torch.no_grad():
    x = dlrm.apply_mlp(X, dlrm.bot_l)
    ly = dlrm.apply_emb(lS_o, lS_i, dlrm.emb_l)
    bags_by_loop = []
    for k, E in enumerate(dlrm.emb_l):
        ends = torch.cat([lS_o[k][1:], torch.tensor([lS_i[k].numel()])])
        rows = F.embedding(lS_i[k], E.weight)
        bags_by_loop.append(torch.stack([rows[s:e].sum(0) for s, e in zip(lS_o[k].tolist(), ends.tolist())]))
    bag_ok = all(torch.allclose(a, b, atol=1e-6) for a, b in zip(ly, bags_by_loop))
    R = dlrm.interact_features(x, ly)
    T3 = torch.cat([x] + ly, dim=1).view((x.shape[0], -1, M_SPA))
    tri = torch.tril_indices(T3.shape[1], T3.shape[1], offset=-1)
    Zflat_tril = torch.bmm(T3, T3.transpose(1, 2))[:, tri[0], tri[1]]
    interact_ok = torch.allclose(R[:, M_SPA:], Zflat_tril, atol=1e-6)
print(f"interaction R {tuple(R.shape)}: bags == embedding loop {bag_ok}, Zflat == tril_indices gather {interact_ok}")

dense_twin = DLRM_Net(M_SPA, LN_EMB, LN_BOT, top_mlp_sizes("dot"), arch_interaction_op="dot",
                      sigmoid_top=top_mlp_sizes("dot").size - 2, sparse=False)
dense_twin.load_state_dict(dlrm.state_dict())
for net in (dlrm, dense_twin):
    net.zero_grad()
    loss = net.loss_fn(net(X, lS_o, lS_i), T)
    loss.backward()
grad_ok = True
for E, D in zip(dlrm.emb_l, dense_twin.emb_l):
    g = E.weight.grad
    c = g.coalesce()
    grad_ok &= g.is_sparse and not D.weight.grad.is_sparse and c.is_coalesced()
    grad_ok &= torch.allclose(c.to_dense(), D.weight.grad, atol=1e-6)
    rows_touched = int((D.weight.grad.abs().sum(1) > 0).sum())
    print(f"{tuple(g.shape)} sparse grad: nnz {g._nnz()} -> coalesced {c._nnz()} (rows touched {rows_touched}), "
          f"values {tuple(c.values().shape)}")
print(f"sparse grads == dense grads: {grad_ok}")


# ------------------------------------------------------------------ training, both interactions
def train(op):
    torch.manual_seed(seed)
    np.random.seed(seed)
    ln_top = top_mlp_sizes(op)
    model = DLRM_Net(M_SPA, LN_EMB, LN_BOT, ln_top, arch_interaction_op=op, sigmoid_top=ln_top.size - 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    acc0 = accuracy(model, test_X, test_o, test_i, test_T)
    for epoch in range(6):
        total_loss, total_acc = 0.0, 0
        for X, lS_o, lS_i, T in train_batches:
            Z = model(X, lS_o, lS_i)
            E = model.loss_fn(Z, T)
            optimizer.zero_grad()
            E.backward()
            optimizer.step()
            total_loss += E.detach().cpu().numpy() * T.shape[0]
            total_acc += np.sum((np.round(Z.detach().cpu().numpy(), 0) == T.cpu().numpy()).astype(np.uint8))
        n = len(train_batches) * 64
        print(f"[{op}] epoch {epoch}: loss {total_loss / n:.6f}, accuracy {100.0 * total_acc / n:3.3f} %")
    acc = accuracy(model, test_X, test_o, test_i, test_T)
    print(f"[{op}] test accuracy {acc0:.4f} -> {acc:.4f}")
    return acc0, acc


dot0, dot_acc = train("dot")
cat0, cat_acc = train("cat")
print(f"FINAL dot_acc={dot_acc:.4f} cat_acc={cat_acc:.4f} dot_gain={dot_acc - dot0:.4f} "
      f"grad_ok={int(grad_ok)} interact_ok={int(interact_ok and bag_ok)}")
