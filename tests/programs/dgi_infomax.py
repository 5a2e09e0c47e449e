"""Deep Graph Infomax (Velickovic et al., ICLR 2019) in the layout of PetarV-/DGI, on a synthetic stochastic
block model whose nodes carry noisy bag-of-words features.

The repo's pieces at tiny sizes: ``process.preprocess_features`` row-normalising the features,
``normalize_adj(adj + I)`` into a ``torch.sparse_coo_tensor`` from ``np.vstack((row, col))``; the ``GCN``
layer (``nn.Linear(bias=False)`` + a ``FloatTensor`` bias ``fill_(0.0)``, ``xavier_uniform_`` through
``self.modules()``, ``nn.PReLU``) with ``torch.unsqueeze(torch.spmm(adj, torch.squeeze(seq_fts, 0)), 0)``
on the sparse path and ``torch.bmm`` on the dense one (they must agree, ``torch.sparse.mm`` too);
``AvgReadout`` with a mask (``torch.sum(seq * msk, 1) / torch.sum(msk)``, equal to the mask-free mean);
``nn.Sigmoid`` on the summary; the ``Discriminator`` with ``nn.Bilinear(n_h, n_h, 1)``,
``torch.unsqueeze(c, 1).expand_as(h_pl)``, ``torch.squeeze(self.f_k(h_pl, c_x), 2)``,
``torch.cat((sc_1, sc_2), 1)``; corruption by ``features[:, idx, :]`` with ``torch.randperm``;
``nn.BCEWithLogitsLoss`` against ``torch.cat((lbl_1, lbl_2), 1)``; patience-based early stopping with
``torch.save(model.state_dict(), ...)`` of the best epoch into an ``io.BytesIO`` and ``torch.load`` back;
``model.embed`` returning ``detach()``-ed embeddings; then ``LogReg`` probes (Adam, ``CrossEntropyLoss``,
``torch.argmax``, ``torch.sum(preds == test_lbls).float() / test_lbls.shape[0]``, ``torch.stack(accs)``
``mean``/``std``) on the frozen embeddings and on the raw features.

Checked: the probe accuracy on DGI embeddings against raw features; the sparse and dense propagation, the
masked and unmasked readout, and the reloaded best state reproducing its loss.
"""

# ruff: noqa: UP008, UP031  (the repo's own spelling: super(GCN, self), % formats)

import io
import os

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


# ---- process.py --------------------------------------------------------------------------------------
def preprocess_features(features):
    """Row-normalize feature matrix and convert to tuple representation"""
    rowsum = np.array(features.sum(1))
    r_inv = np.power(rowsum, -1).flatten()
    r_inv[np.isinf(r_inv)] = 0.0
    features = r_inv[:, None] * features
    return features, None


def normalize_adj(adj):
    """Symmetrically normalize adjacency matrix."""
    rowsum = np.array(adj.sum(1))
    d_inv_sqrt = np.power(rowsum, -0.5).flatten()
    d_inv_sqrt[np.isinf(d_inv_sqrt)] = 0.0
    return adj * d_inv_sqrt[:, None] * d_inv_sqrt[None, :]


def sparse_mx_to_torch_sparse_tensor(sparse_mx):
    """Convert a dense-stored sparse matrix to a torch sparse tensor."""
    row, col = np.nonzero(sparse_mx)
    indices = torch.from_numpy(np.vstack((row, col)).astype(np.int64))
    values = torch.from_numpy(sparse_mx[row, col].astype(np.float32))
    shape = torch.Size(sparse_mx.shape)
    return torch.sparse_coo_tensor(indices, values, shape)


def load_data(nb_nodes=180, nb_classes=3, ft_size=60):
    """A stochastic block model: dense intra-community edges, sparse noisy features."""
    labels_int = np.repeat(np.arange(nb_classes), nb_nodes // nb_classes)
    same = labels_int[:, None] == labels_int[None, :]
    probs = np.where(same, 0.08, 0.005)
    upper = np.triu(np.random.rand(nb_nodes, nb_nodes) < probs, 1)
    adj = (upper | upper.T).astype(np.float64)
    word_probs = np.full((nb_classes, ft_size), 0.05)
    for k in range(nb_classes):
        word_probs[k, k * (ft_size // nb_classes) : (k + 1) * (ft_size // nb_classes)] = 0.15
    features = (np.random.rand(nb_nodes, ft_size) < word_probs[labels_int]).astype(np.float64)
    features[features.sum(1) == 0, 0] = 1.0
    labels = np.eye(nb_classes)[labels_int]
    perm = np.random.permutation(nb_nodes)
    idx_train, idx_val, idx_test = perm[:30], perm[30:60], perm[60:]
    return adj, features, labels, idx_train, idx_val, idx_test


# ---- layers ------------------------------------------------------------------------------------------
class GCN(nn.Module):
    def __init__(self, in_ft, out_ft, act, bias=True):
        super(GCN, self).__init__()
        self.fc = nn.Linear(in_ft, out_ft, bias=False)
        self.act = nn.PReLU() if act == "prelu" else act

        if bias:
            self.bias = nn.Parameter(torch.FloatTensor(out_ft))
            self.bias.data.fill_(0.0)
        else:
            self.register_parameter("bias", None)

        for m in self.modules():
            self.weights_init(m)

    def weights_init(self, m):
        if isinstance(m, nn.Linear):
            torch.nn.init.xavier_uniform_(m.weight.data)
            if m.bias is not None:
                m.bias.data.fill_(0.0)

    # Shape of seq: (batch, nodes, features)
    def forward(self, seq, adj, sparse=False):
        seq_fts = self.fc(seq)
        if sparse:
            out = torch.unsqueeze(torch.spmm(adj, torch.squeeze(seq_fts, 0)), 0)
        else:
            out = torch.bmm(adj, seq_fts)
        if self.bias is not None:
            out += self.bias

        return self.act(out)


# Applies an average on seq, of shape (batch, nodes, features)
# While taking into account the masking of msk
class AvgReadout(nn.Module):
    def __init__(self):
        super(AvgReadout, self).__init__()

    def forward(self, seq, msk):
        if msk is None:
            return torch.mean(seq, 1)
        else:
            msk = torch.unsqueeze(msk, -1)
            return torch.sum(seq * msk, 1) / torch.sum(msk)


class Discriminator(nn.Module):
    def __init__(self, n_h):
        super(Discriminator, self).__init__()
        self.f_k = nn.Bilinear(n_h, n_h, 1)

        for m in self.modules():
            self.weights_init(m)

    def weights_init(self, m):
        if isinstance(m, nn.Bilinear):
            torch.nn.init.xavier_uniform_(m.weight.data)
            if m.bias is not None:
                m.bias.data.fill_(0.0)

    def forward(self, c, h_pl, h_mi, s_bias1=None, s_bias2=None):
        c_x = torch.unsqueeze(c, 1)
        c_x = c_x.expand_as(h_pl)

        sc_1 = torch.squeeze(self.f_k(h_pl, c_x), 2)
        sc_2 = torch.squeeze(self.f_k(h_mi, c_x), 2)

        if s_bias1 is not None:
            sc_1 += s_bias1
        if s_bias2 is not None:
            sc_2 += s_bias2

        logits = torch.cat((sc_1, sc_2), 1)

        return logits


class DGI(nn.Module):
    def __init__(self, n_in, n_h, activation):
        super(DGI, self).__init__()
        self.gcn = GCN(n_in, n_h, activation)
        self.read = AvgReadout()

        self.sigm = nn.Sigmoid()

        self.disc = Discriminator(n_h)

    def forward(self, seq1, seq2, adj, sparse, msk, samp_bias1, samp_bias2):
        h_1 = self.gcn(seq1, adj, sparse)

        c = self.read(h_1, msk)
        c = self.sigm(c)

        h_2 = self.gcn(seq2, adj, sparse)

        ret = self.disc(c, h_1, h_2, samp_bias1, samp_bias2)

        return ret

    # Detach the return variables
    def embed(self, seq, adj, sparse, msk):
        h_1 = self.gcn(seq, adj, sparse)
        c = self.read(h_1, msk)

        return h_1.detach(), c.detach()


class LogReg(nn.Module):
    def __init__(self, ft_in, nb_classes):
        super(LogReg, self).__init__()
        self.fc = nn.Linear(ft_in, nb_classes)

        for m in self.modules():
            self.weights_init(m)

    def weights_init(self, m):
        if isinstance(m, nn.Linear):
            torch.nn.init.xavier_uniform_(m.weight.data)
            if m.bias is not None:
                m.bias.data.fill_(0.0)

    def forward(self, seq):
        ret = self.fc(seq)
        return ret


# ---- execute.py --------------------------------------------------------------------------------------
batch_size = 1
nb_epochs = 300
patience = 20
lr = 0.005
l2_coef = 0.0
hid_units = 64
sparse = True
nonlinearity = "prelu"  # special name to separate parameters

adj, features, labels, idx_train, idx_val, idx_test = load_data()
features, _ = preprocess_features(features)

nb_nodes = features.shape[0]
ft_size = features.shape[1]
nb_classes = labels.shape[1]

adj = normalize_adj(adj + np.eye(adj.shape[0]))
sp_adj = sparse_mx_to_torch_sparse_tensor(adj)
dense_adj = torch.FloatTensor(adj[np.newaxis])
print("graph:", nb_nodes, "nodes,", int((adj > 0).sum()), "nonzeros incl. self loops;", sp_adj.layout, sp_adj.shape)

features = torch.FloatTensor(features[np.newaxis])
labels = torch.FloatTensor(labels[np.newaxis])
idx_train = torch.LongTensor(idx_train)
idx_val = torch.LongTensor(idx_val)
idx_test = torch.LongTensor(idx_test)

model = DGI(ft_size, hid_units, nonlinearity)
optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=l2_coef)

with torch.no_grad():
    h_sparse = model.gcn(features, sp_adj, True)
    h_dense = model.gcn(features, dense_adj, False)
    h_sparse_mm = model.gcn.act(
        torch.sparse.mm(sp_adj, model.gcn.fc(features)[0]).unsqueeze(0) + model.gcn.bias
    )
    msk = torch.ones(batch_size, nb_nodes)
    c_masked, c_plain = model.read(h_sparse, msk), model.read(h_sparse, None)
propagation_ok = torch.allclose(h_sparse, h_dense, atol=1e-6) and torch.allclose(h_sparse, h_sparse_mm, atol=1e-6)
readout_ok = torch.allclose(c_masked, c_plain, atol=1e-6)
print("spmm == bmm == sparse.mm:", propagation_ok, "| masked readout == mean:", readout_ok, tuple(c_masked.shape))

b_xent = nn.BCEWithLogitsLoss()
xent = nn.CrossEntropyLoss()
cnt_wait = 0
best = 1e9
best_t = 0
best_buffer = None

for epoch in range(nb_epochs):
    model.train()
    optimiser.zero_grad()

    idx = torch.randperm(nb_nodes)
    shuf_fts = features[:, idx, :]

    lbl_1 = torch.ones(batch_size, nb_nodes)
    lbl_2 = torch.zeros(batch_size, nb_nodes)
    lbl = torch.cat((lbl_1, lbl_2), 1)

    logits = model(features, shuf_fts, sp_adj, sparse, msk, None, None)

    loss = b_xent(logits, lbl)
    if epoch == 0:
        print("Loss:", loss)
        print("logits", tuple(logits.shape), logits.dtype)

    if loss < best:
        best = loss
        best_t = epoch
        cnt_wait = 0
        best_buffer = io.BytesIO()
        torch.save(model.state_dict(), best_buffer)
        best_fts, best_lbl = shuf_fts, lbl
    else:
        cnt_wait += 1

    if cnt_wait == patience:
        break

    loss.backward()
    optimiser.step()

print("stopped after epoch", epoch, "best loss %.4f" % best.item())
best_buffer.seek(0)
model.load_state_dict(torch.load(best_buffer))
with torch.no_grad():
    reloaded = b_xent(model(features, best_fts, sp_adj, sparse, msk, None, None), best_lbl)
reload_ok = abs(reloaded.item() - best.item()) < 1e-5
print("Loading best epoch: reloaded loss equals best:", reload_ok)

embeds, _ = model.embed(features, sp_adj, sparse, None)
print("embeds", tuple(embeds.shape), "requires_grad", embeds.requires_grad)


def probe(embeds, n_runs=10):
    train_embs = embeds[0, idx_train]
    test_embs = embeds[0, idx_test]

    train_lbls = torch.argmax(labels[0, idx_train], dim=1)
    test_lbls = torch.argmax(labels[0, idx_test], dim=1)

    tot = torch.zeros(1)
    accs = []
    for _ in range(n_runs):
        log = LogReg(embeds.shape[-1], nb_classes)
        opt = torch.optim.Adam(log.parameters(), lr=0.01, weight_decay=0.0)

        for _ in range(100):
            log.train()
            opt.zero_grad()

            logits = log(train_embs)
            loss = xent(logits, train_lbls)

            loss.backward()
            opt.step()

        logits = log(test_embs)
        preds = torch.argmax(logits, dim=1)
        acc = torch.sum(preds == test_lbls).float() / test_lbls.shape[0]
        accs.append(acc * 100)
        tot += acc
    accs = torch.stack(accs)
    return (tot / n_runs).item(), accs.mean().item(), accs.std().item()


dgi_avg, dgi_mean, dgi_std = probe(embeds)
raw_avg, raw_mean, raw_std = probe(features * nb_nodes ** 0.5)
print("Average accuracy: DGI %.4f (%.2f +- %.2f), raw features %.4f" % (dgi_avg, dgi_mean, dgi_std, raw_avg))
checks = int(propagation_ok and readout_ok and reload_ok and abs(dgi_mean / 100 - dgi_avg) < 1e-5)
dgi_beats_raw = int(dgi_avg > raw_avg + 0.1)
print(f"FINAL dgi_acc={dgi_avg:.4f} raw_acc={raw_avg:.4f} best_loss={best.item():.4f} dgi_beats_raw={dgi_beats_raw} checks={checks}")
