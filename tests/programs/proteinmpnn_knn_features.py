"""ProteinMPNN (Dauparas et al. 2022): k-NN graph features and an MPNN sequence designer.

In the style of dauparas/ProteinMPNN (`protein_mpnn_utils.py`, `training/model_utils.py`) at toy size
on synthetic backbones (persistent random-walk CA traces with N, C, O placed in a local frame,
padded to a common length) whose residue labels are tied to the local geometry (the CA bend angle
and the neighbour count): `_dist` (`mask_2D = torch.unsqueeze(mask, 1) * torch.unsqueeze(mask, 2)`,
`D = mask_2D * torch.sqrt(torch.sum(dX**2, 3) + eps)`, `D_adjust = D + (1. - mask_2D) * D_max`,
`torch.topk(D_adjust, np.minimum(self.top_k, X.shape[1]), dim=-1, largest=False)`), `gather_edges`
and `gather_nodes` by `torch.gather` on expanded indices, `cat_neighbors_nodes`, the virtual CB from
`torch.cross(b, c, dim=-1)`, `_rbf` (`torch.linspace` centres, `torch.exp(-((D_expand - D_mu) /
D_sigma)**2)`) and `_get_rbf` for atom pairs, `PositionalEncodings` (`torch.clip(offset +
max_rel, 0, 2 * max_rel) * mask + (1 - mask) * (2 * max_rel + 1)` into `F.one_hot`), same-chain flags
`((chain_labels[:, :, None] - chain_labels[:, None, :]) == 0).long()`; `EncLayer` (node and edge
updates, `mask_attend.unsqueeze(-1) * h_message`, `torch.sum(h_message, -2) / self.scale`,
`LayerNorm`, `Dropout`, `PositionWiseFeedForward` with GELU) and `DecLayer`; the random decoding
order `torch.argsort((chain_M + 0.0001) * (torch.abs(randn)))`, permutation matrices by `F.one_hot`,
`torch.einsum('ij, biq, bjp->bqp', 1 - torch.triu(ones), P, P)`, `torch.gather(order_mask_backward,
2, E_idx)`, `mask_bw`/`mask_fw`; `loss_smoothed` (label-smoothed one-hot), `loss_nll` with
`NLLLoss(reduction='none')`; the `NoamOpt` wrapper over Adam(betas=(0.9, 0.98), eps=1e-9);
`xavier_uniform_` over `p.dim() > 1`. Reports teacher-forced sequence recovery and loss.
Check: `gather_edges`/`gather_nodes` equal Python loops, and the order mask is a strictly causal
mask under the decoding permutation (`P M P^T` equals the strictly lower triangle).
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


def gather_edges(edges, neighbor_idx):
    # Features [B,N,N,C] at Neighbor indices [B,N,K] => Neighbor features [B,N,K,C]
    neighbors = neighbor_idx.unsqueeze(-1).expand(-1, -1, -1, edges.size(-1))
    edge_features = torch.gather(edges, 2, neighbors)
    return edge_features


def gather_nodes(nodes, neighbor_idx):
    # Features [B,N,C] at Neighbor indices [B,N,K] => [B,N,K,C]
    # Flatten and expand indices per batch [B,N,K] => [B,NK] => [B,NK,C]
    neighbors_flat = neighbor_idx.view((neighbor_idx.shape[0], -1))
    neighbors_flat = neighbors_flat.unsqueeze(-1).expand(-1, -1, nodes.size(2))
    # Gather and re-pack
    neighbor_features = torch.gather(nodes, 1, neighbors_flat)
    neighbor_features = neighbor_features.view(list(neighbor_idx.shape)[:3] + [-1])
    return neighbor_features


def cat_neighbors_nodes(h_nodes, h_neighbors, E_idx):
    h_nodes = gather_nodes(h_nodes, E_idx)
    h_nn = torch.cat([h_neighbors, h_nodes], -1)
    return h_nn


class PositionWiseFeedForward(nn.Module):
    def __init__(self, num_hidden, num_ff):
        super(PositionWiseFeedForward, self).__init__()
        self.W_in = nn.Linear(num_hidden, num_ff, bias=True)
        self.W_out = nn.Linear(num_ff, num_hidden, bias=True)
        self.act = torch.nn.GELU()

    def forward(self, h_V):
        h = self.act(self.W_in(h_V))
        h = self.W_out(h)
        return h


class EncLayer(nn.Module):
    def __init__(self, num_hidden, num_in, dropout=0.1, num_heads=None, scale=30):
        super(EncLayer, self).__init__()
        self.num_hidden = num_hidden
        self.num_in = num_in
        self.scale = scale
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(num_hidden)
        self.norm2 = nn.LayerNorm(num_hidden)
        self.norm3 = nn.LayerNorm(num_hidden)

        self.W1 = nn.Linear(num_hidden + num_in, num_hidden, bias=True)
        self.W2 = nn.Linear(num_hidden, num_hidden, bias=True)
        self.W3 = nn.Linear(num_hidden, num_hidden, bias=True)
        self.W11 = nn.Linear(num_hidden + num_in, num_hidden, bias=True)
        self.W12 = nn.Linear(num_hidden, num_hidden, bias=True)
        self.W13 = nn.Linear(num_hidden, num_hidden, bias=True)
        self.act = torch.nn.GELU()
        self.dense = PositionWiseFeedForward(num_hidden, num_hidden * 4)

    def forward(self, h_V, h_E, E_idx, mask_V=None, mask_attend=None):
        """ Parallel computation of full transformer layer """

        h_EV = cat_neighbors_nodes(h_V, h_E, E_idx)
        h_V_expand = h_V.unsqueeze(-2).expand(-1, -1, h_EV.size(-2), -1)
        h_EV = torch.cat([h_V_expand, h_EV], -1)
        h_message = self.W3(self.act(self.W2(self.act(self.W1(h_EV)))))
        if mask_attend is not None:
            h_message = mask_attend.unsqueeze(-1) * h_message
        dh = torch.sum(h_message, -2) / self.scale
        h_V = self.norm1(h_V + self.dropout1(dh))

        dh = self.dense(h_V)
        h_V = self.norm2(h_V + self.dropout2(dh))
        if mask_V is not None:
            mask_V = mask_V.unsqueeze(-1)
            h_V = mask_V * h_V

        h_EV = cat_neighbors_nodes(h_V, h_E, E_idx)
        h_V_expand = h_V.unsqueeze(-2).expand(-1, -1, h_EV.size(-2), -1)
        h_EV = torch.cat([h_V_expand, h_EV], -1)
        h_message = self.W13(self.act(self.W12(self.act(self.W11(h_EV)))))
        h_E = self.norm3(h_E + self.dropout3(h_message))
        return h_V, h_E


class DecLayer(nn.Module):
    def __init__(self, num_hidden, num_in, dropout=0.1, num_heads=None, scale=30):
        super(DecLayer, self).__init__()
        self.num_hidden = num_hidden
        self.num_in = num_in
        self.scale = scale
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(num_hidden)
        self.norm2 = nn.LayerNorm(num_hidden)

        self.W1 = nn.Linear(num_hidden + num_in, num_hidden, bias=True)
        self.W2 = nn.Linear(num_hidden, num_hidden, bias=True)
        self.W3 = nn.Linear(num_hidden, num_hidden, bias=True)
        self.act = torch.nn.GELU()
        self.dense = PositionWiseFeedForward(num_hidden, num_hidden * 4)

    def forward(self, h_V, h_E, mask_V=None, mask_attend=None):
        """ Parallel computation of full transformer layer """

        # Concatenate h_V_i to h_E_ij
        h_V_expand = h_V.unsqueeze(-2).expand(-1, -1, h_E.size(-2), -1)
        h_EV = torch.cat([h_V_expand, h_E], -1)

        h_message = self.W3(self.act(self.W2(self.act(self.W1(h_EV)))))
        if mask_attend is not None:
            h_message = mask_attend.unsqueeze(-1) * h_message
        dh = torch.sum(h_message, -2) / self.scale

        h_V = self.norm1(h_V + self.dropout1(dh))

        # Position-wise feedforward
        dh = self.dense(h_V)
        h_V = self.norm2(h_V + self.dropout2(dh))

        if mask_V is not None:
            mask_V = mask_V.unsqueeze(-1)
            h_V = mask_V * h_V
        return h_V


class PositionalEncodings(nn.Module):
    def __init__(self, num_embeddings, max_relative_feature=32):
        super(PositionalEncodings, self).__init__()
        self.num_embeddings = num_embeddings
        self.max_relative_feature = max_relative_feature
        self.linear = nn.Linear(2 * max_relative_feature + 1 + 1, num_embeddings)

    def forward(self, offset, mask):
        d = torch.clip(offset + self.max_relative_feature, 0, 2 * self.max_relative_feature) * mask + \
            (1 - mask) * (2 * self.max_relative_feature + 1)
        d_onehot = torch.nn.functional.one_hot(d, 2 * self.max_relative_feature + 1 + 1)
        E = self.linear(d_onehot.float())
        return E


class ProteinFeatures(nn.Module):
    def __init__(self, edge_features, node_features, num_positional_embeddings=16,
                 num_rbf=8, top_k=12, augment_eps=0.):
        """ Extract protein features """
        super(ProteinFeatures, self).__init__()
        self.edge_features = edge_features
        self.node_features = node_features
        self.top_k = top_k
        self.augment_eps = augment_eps
        self.num_rbf = num_rbf
        self.num_positional_embeddings = num_positional_embeddings

        self.embeddings = PositionalEncodings(num_positional_embeddings, max_relative_feature=8)
        edge_in = num_positional_embeddings + num_rbf * 6
        self.edge_embedding = nn.Linear(edge_in, edge_features, bias=False)
        self.norm_edges = nn.LayerNorm(edge_features)

    def _dist(self, X, mask, eps=1E-6):
        mask_2D = torch.unsqueeze(mask, 1) * torch.unsqueeze(mask, 2)
        dX = torch.unsqueeze(X, 1) - torch.unsqueeze(X, 2)
        D = mask_2D * torch.sqrt(torch.sum(dX**2, 3) + eps)
        D_max, _ = torch.max(D, -1, keepdim=True)
        D_adjust = D + (1. - mask_2D) * D_max
        D_neighbors, E_idx = torch.topk(D_adjust, np.minimum(self.top_k, X.shape[1]), dim=-1, largest=False)
        return D_neighbors, E_idx

    def _rbf(self, D):
        device = D.device
        D_min, D_max, D_count = 2., 22., self.num_rbf
        D_mu = torch.linspace(D_min, D_max, D_count, device=device)
        D_mu = D_mu.view([1, 1, 1, -1])
        D_sigma = (D_max - D_min) / D_count
        D_expand = torch.unsqueeze(D, -1)
        RBF = torch.exp(-((D_expand - D_mu) / D_sigma)**2)
        return RBF

    def _get_rbf(self, A, B, E_idx):
        D_A_B = torch.sqrt(torch.sum((A[:, :, None, :] - B[:, None, :, :])**2, -1) + 1e-6)  # [B, L, L]
        D_A_B_neighbors = gather_edges(D_A_B[:, :, :, None], E_idx)[:, :, :, 0]  # [B,L,K]
        RBF_A_B = self._rbf(D_A_B_neighbors)
        return RBF_A_B

    def forward(self, X, mask, residue_idx, chain_labels):
        if self.training and self.augment_eps > 0:
            X = X + self.augment_eps * torch.randn_like(X)

        b = X[:, :, 1, :] - X[:, :, 0, :]
        c = X[:, :, 2, :] - X[:, :, 1, :]
        a = torch.cross(b, c, dim=-1)
        Cb = -0.58273431 * a + 0.56802827 * b - 0.54067466 * c + X[:, :, 1, :]
        Ca = X[:, :, 1, :]
        N = X[:, :, 0, :]
        C = X[:, :, 2, :]
        O = X[:, :, 3, :]

        D_neighbors, E_idx = self._dist(Ca, mask)

        RBF_all = []
        RBF_all.append(self._rbf(D_neighbors))  # Ca-Ca
        RBF_all.append(self._get_rbf(N, N, E_idx))  # N-N
        RBF_all.append(self._get_rbf(C, C, E_idx))  # C-C
        RBF_all.append(self._get_rbf(O, O, E_idx))  # O-O
        RBF_all.append(self._get_rbf(Cb, Cb, E_idx))  # Cb-Cb
        RBF_all.append(self._get_rbf(Ca, Cb, E_idx))  # Ca-Cb
        RBF_all = torch.cat(tuple(RBF_all), dim=-1)

        offset = residue_idx[:, :, None] - residue_idx[:, None, :]
        offset = gather_edges(offset[:, :, :, None], E_idx)[:, :, :, 0]  # [B, L, K]

        d_chains = ((chain_labels[:, :, None] - chain_labels[:, None, :]) == 0).long()  # find self vs non-self interaction
        E_chains = gather_edges(d_chains[:, :, :, None], E_idx)[:, :, :, 0]
        E_positional = self.embeddings(offset.long(), E_chains)
        E = torch.cat((E_positional, RBF_all), -1)
        E = self.edge_embedding(E)
        E = self.norm_edges(E)
        return E, E_idx


class ProteinMPNN(nn.Module):
    def __init__(self, num_letters=21, node_features=32, edge_features=32,
                 hidden_dim=32, num_encoder_layers=2, num_decoder_layers=2,
                 vocab=21, k_neighbors=12, augment_eps=0.05, dropout=0.1):
        super(ProteinMPNN, self).__init__()

        # Hyperparameters
        self.node_features = node_features
        self.edge_features = edge_features
        self.hidden_dim = hidden_dim

        self.features = ProteinFeatures(node_features, edge_features, top_k=k_neighbors, augment_eps=augment_eps)

        self.W_e = nn.Linear(edge_features, hidden_dim, bias=True)
        self.W_s = nn.Embedding(vocab, hidden_dim)

        # Encoder layers
        self.encoder_layers = nn.ModuleList([
            EncLayer(hidden_dim, hidden_dim * 2, dropout=dropout)
            for _ in range(num_encoder_layers)
        ])

        # Decoder layers
        self.decoder_layers = nn.ModuleList([
            DecLayer(hidden_dim, hidden_dim * 3, dropout=dropout)
            for _ in range(num_decoder_layers)
        ])
        self.W_out = nn.Linear(hidden_dim, num_letters, bias=True)

        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, X, S, mask, chain_M, residue_idx, chain_encoding_all, randn,
                use_input_decoding_order=False, decoding_order=None):
        """ Graph-conditioned sequence model """
        device = X.device
        # Prepare node and edge embeddings
        E, E_idx = self.features(X, mask, residue_idx, chain_encoding_all)
        h_V = torch.zeros((E.shape[0], E.shape[1], E.shape[-1]), device=E.device)
        h_E = self.W_e(E)

        # Encoder is unmasked self-attention
        mask_attend = gather_nodes(mask.unsqueeze(-1), E_idx).squeeze(-1)
        mask_attend = mask.unsqueeze(-1) * mask_attend
        for layer in self.encoder_layers:
            h_V, h_E = layer(h_V, h_E, E_idx, mask, mask_attend)

        # Concatenate sequence embeddings for autoregressive decoder
        h_S = self.W_s(S)
        h_ES = cat_neighbors_nodes(h_S, h_E, E_idx)

        # Build encoder embeddings
        h_EX_encoder = cat_neighbors_nodes(torch.zeros_like(h_S), h_E, E_idx)
        h_EXV_encoder = cat_neighbors_nodes(h_V, h_EX_encoder, E_idx)

        chain_M = chain_M * mask  # update chain_M to include missing regions
        if not use_input_decoding_order:
            decoding_order = torch.argsort((chain_M + 0.0001) * (torch.abs(randn)))  # [numbers will be smaller for places where chain_M = 0.0 and higher for places where chain_M = 1.0]
        mask_size = E_idx.shape[1]
        permutation_matrix_reverse = torch.nn.functional.one_hot(decoding_order, num_classes=mask_size).float()
        order_mask_backward = torch.einsum('ij, biq, bjp->bqp', (1 - torch.triu(torch.ones(mask_size, mask_size, device=device))), permutation_matrix_reverse, permutation_matrix_reverse)
        mask_attend = torch.gather(order_mask_backward, 2, E_idx).unsqueeze(-1)
        mask_1D = mask.view([mask.size(0), mask.size(1), 1, 1])
        mask_bw = mask_1D * mask_attend
        mask_fw = mask_1D * (1. - mask_attend)

        h_EXV_encoder_fw = mask_fw * h_EXV_encoder
        for layer in self.decoder_layers:
            # Masked positions attend to encoder information, unmasked see.
            h_ESV = cat_neighbors_nodes(h_V, h_ES, E_idx)
            h_ESV = mask_bw * h_ESV + h_EXV_encoder_fw
            h_V = layer(h_V, h_ESV, mask)

        logits = self.W_out(h_V)
        log_probs = F.log_softmax(logits, dim=-1)
        self.last_order = (decoding_order, order_mask_backward)
        return log_probs


def loss_nll(S, log_probs, mask):
    """ Negative log probabilities """
    criterion = torch.nn.NLLLoss(reduction='none')
    loss = criterion(
        log_probs.contiguous().view(-1, log_probs.size(-1)), S.contiguous().view(-1)
    ).view(S.size())
    S_argmaxed = torch.argmax(log_probs, -1)  # [B, L]
    true_false = (S == S_argmaxed).float()
    loss_av = torch.sum(loss * mask) / torch.sum(mask)
    return loss, loss_av, true_false


def loss_smoothed(S, log_probs, mask, weight=0.1):
    """ Negative log probabilities """
    S_onehot = torch.nn.functional.one_hot(S, 21).float()

    # Label smoothing
    S_onehot = S_onehot + weight / float(S_onehot.size(-1))
    S_onehot = S_onehot / S_onehot.sum(-1, keepdim=True)

    loss = -(S_onehot * log_probs).sum(-1)
    loss_av = torch.sum(loss * mask) / 2000.0  # fixed
    return loss, loss_av


class NoamOpt:
    "Optim wrapper that implements rate."
    def __init__(self, model_size, factor, warmup, optimizer, step):
        self.optimizer = optimizer
        self._step = step
        self.warmup = warmup
        self.factor = factor
        self.model_size = model_size
        self._rate = 0

    @property
    def param_groups(self):
        """Return param_groups."""
        return self.optimizer.param_groups

    def step(self):
        "Update parameters and rate"
        self._step += 1
        rate = self.rate()
        for p in self.optimizer.param_groups:
            p['lr'] = rate
        self._rate = rate
        self.optimizer.step()

    def rate(self, step=None):
        "Implement `lrate` above"
        if step is None:
            step = self._step
        return self.factor * \
            (self.model_size ** (-0.5) *
             min(step ** (-0.5), step * self.warmup ** (-1.5)))

    def zero_grad(self):
        self.optimizer.zero_grad()


def get_std_opt(parameters, d_model, step):
    return NoamOpt(
        d_model, 1, 30, torch.optim.Adam(parameters, lr=0, betas=(0.9, 0.98), eps=1e-9), step
    )


# --- synthetic backbones: persistent random walks; labels from bend angle and burial
L_max = 32


def make_backbone(L, rng):
    d = rng.randn(3)
    d /= np.linalg.norm(d)
    ca = [np.zeros(3)]
    for _ in range(L - 1):
        d = d + rng.uniform(0.2, 1.2) * rng.randn(3)
        d /= np.linalg.norm(d)
        ca.append(ca[-1] + 3.8 * d)
    ca = np.stack(ca)
    t = np.gradient(ca, axis=0)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    side = np.cross(t, np.roll(t, 1, axis=0)) + 1e-3 * rng.randn(L, 3)
    side /= np.linalg.norm(side, axis=1, keepdims=True)
    n_at = ca - 1.2 * t + 0.8 * side
    c_at = ca + 1.2 * t + 0.8 * side
    o_at = c_at + 1.23 * side
    X = np.stack([n_at, ca, c_at, o_at], 1).astype(np.float32)
    v1, v2 = ca[:-2] - ca[1:-1], ca[2:] - ca[1:-1]
    cos = np.einsum("ij,ij->i", v1, v2) / (np.linalg.norm(v1, axis=1) * np.linalg.norm(v2, axis=1))
    bend = np.concatenate([[0.0], cos, [0.0]])
    dist = np.linalg.norm(ca[:, None] - ca[None], axis=-1)
    burial = (dist < 10.0).sum(1) - 1
    S = 2 * np.digitize(bend, [-0.6, 0.0]) + (burial > np.median(burial)).astype(np.int64)
    return X, S.astype(np.int64)


def make_batch(n, rng):
    X = np.zeros((n, L_max, 4, 3), dtype=np.float32)
    S = np.zeros((n, L_max), dtype=np.int64)
    mask = np.zeros((n, L_max), dtype=np.float32)
    chain_enc = np.zeros((n, L_max), dtype=np.int64)
    residue_idx = np.full((n, L_max), -100 * np.ones(1, dtype=np.int64))
    for i in range(n):
        L = rng.randint(20, L_max + 1)
        X[i, :L], S[i, :L] = make_backbone(L, rng)
        mask[i, :L] = 1.0
        cut = rng.randint(8, L - 8)  # two chains: a gap of 100 in residue_idx, as tied_featurize does
        chain_enc[i, :cut], chain_enc[i, cut:L] = 1, 2
        residue_idx[i, :cut] = np.arange(cut)
        residue_idx[i, cut:L] = 100 + np.arange(cut, L)
    return (torch.from_numpy(X), torch.from_numpy(S), torch.from_numpy(mask),
            torch.from_numpy(residue_idx), torch.from_numpy(chain_enc))


rng = np.random.RandomState(seed)
train_batches = [make_batch(8, rng) for _ in range(12)]
valid = make_batch(32, rng)

model = ProteinMPNN(k_neighbors=12, augment_eps=0.05, dropout=0.1)

# --- checks: gathers against loops, and the decoding-order mask
X, S, mask, residue_idx, chain_enc = valid
feats = model.features
with torch.no_grad():
    Ca = X[:, :, 1, :]
    D_neighbors, E_idx = feats._dist(Ca, mask)
    D_full = torch.sqrt(torch.sum((Ca[:, :, None] - Ca[:, None]) ** 2, -1) + 1e-6)
    edges = torch.randn(4, L_max, L_max, 5)
    nodes = torch.randn(4, L_max, 7)
    ge = gather_edges(edges, E_idx[:4])
    gn = gather_nodes(nodes, E_idx[:4])
    gather_err = 0.0
    for b in range(4):
        for i in range(L_max):
            for k in range(E_idx.shape[-1]):
                j = E_idx[b, i, k].item()
                gather_err = max(gather_err, (ge[b, i, k] - edges[b, i, j]).abs().max().item(),
                                 (gn[b, i, k] - nodes[b, j]).abs().max().item())
    n_real = int(mask[0].sum().item())
    knn_ok = bool((E_idx[0, :n_real, :] < n_real).all().item())  # real residues pick real neighbours
    D_loop = torch.stack([D_full[0, i, E_idx[0, i]] for i in range(n_real)])
    dist_err = (D_loop - D_neighbors[0, :n_real]).abs().max().item()
    chain_M = mask.clone()
    randn = torch.randn(chain_M.shape)
    model.eval()
    model(X, S, mask, chain_M, residue_idx, chain_enc, randn)
    model.train()
    order, M = model.last_order
    P = F.one_hot(order, num_classes=L_max).float()
    causal = P @ M @ P.transpose(1, 2)  # row t, column s: s decoded before t
    order_err = (causal - torch.tril(torch.ones(L_max, L_max), -1)).abs().max().item()
    sym_err = (M + M.transpose(1, 2) + torch.eye(L_max) - 1).abs().max().item()
    pad_last = bool((order[:, -1:] >= 0).all().item()) and all(
        bool((mask[b, order[b, -int(mask[b].sum().item()):]] == 1).all().item()) for b in range(mask.shape[0]))
print(f"gather err {gather_err:.2e} knn real {knn_ok} dist err {dist_err:.2e} order err {order_err:.2e} "
      f"sym err {sym_err:.2e} padding decoded first {pad_last}")

optimizer = get_std_opt(model.parameters(), 32, 0)


def evaluate():
    model.eval()
    X, S, mask, residue_idx, chain_enc = valid
    with torch.no_grad():
        randn_1 = torch.randn(mask.shape, device=X.device)
        log_probs = model(X, S, mask, mask, residue_idx, chain_enc, randn_1)
        loss, loss_av, true_false = loss_nll(S, log_probs, mask)
        acc = torch.sum(true_false * mask).item() / torch.sum(mask).item()
    model.train()
    return loss_av.item(), acc


v_loss0, v_acc0 = evaluate()
print(f"before: valid loss {v_loss0:.4f} recovery {v_acc0:.4f}")
for epoch in range(10):
    train_sum, train_weights, train_acc = 0., 0., 0.
    for X, S, mask, residue_idx, chain_enc in train_batches:
        optimizer.zero_grad()
        mask_for_loss = mask * mask  # chain_M * mask: every chain designed
        randn_1 = torch.randn(mask.shape, device=X.device)
        log_probs = model(X, S, mask, mask, residue_idx, chain_enc, randn_1)
        _, loss_av_smoothed = loss_smoothed(S, log_probs, mask_for_loss)
        loss_av_smoothed.backward()
        optimizer.step()
        loss, loss_av, true_false = loss_nll(S, log_probs, mask_for_loss)
        train_sum += torch.sum(loss * mask_for_loss).cpu().data.numpy()
        train_acc += torch.sum(true_false * mask_for_loss).cpu().data.numpy()
        train_weights += torch.sum(mask_for_loss).cpu().data.numpy()
    if (epoch + 1) % 5 == 0:
        v_loss, v_acc = evaluate()
        train_loss = train_sum / train_weights
        print(f"epoch: {epoch + 1}, step: {optimizer._step}, train: {np.exp(train_loss):.3f}, "
              f"valid: {np.exp(v_loss):.3f}, train_acc: {train_acc / train_weights:.3f}, valid_acc: {v_acc:.3f}")

v_loss1, v_acc1 = evaluate()
print(f"after: valid loss {v_loss1:.4f} recovery {v_acc1:.4f}")
print(f"FINAL recovery={v_acc1:.4f} valid_loss={v_loss1:.4f} loss_drop={v_loss0 - v_loss1:.4f} "
      f"train_loss={train_sum / train_weights:.4f} gather_err={gather_err:.2e} dist_err={dist_err:.2e} "
      f"order_err={order_err:.2e} sym_err={sym_err:.2e}")
