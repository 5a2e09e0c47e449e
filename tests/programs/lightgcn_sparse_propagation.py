"""LightGCN (He et al., SIGIR 2020) in the layout of gusye1234/LightGCN-PyTorch, on a tiny synthetic
implicit-feedback data set (users and items in latent clusters, each user interacting mostly with items
of their own cluster).

The data loader builds the bipartite adjacency ``[[0, R], [R^T, 0]]`` in NumPy, normalises it as
``D^-1/2 A D^-1/2`` (``np.power(rowsum, -0.5)`` with ``d_inv[np.isinf(d_inv)] = 0.``) and turns it into the
repo's ``torch.sparse.FloatTensor(index, data, torch.Size(coo.shape))`` and into
``torch.sparse_coo_tensor(...)``, both ``.coalesce()``-d. The model is the repo's ``LightGCN``: two
``nn.Embedding`` tables with ``nn.init.normal_(std=0.1)``, ``computer()`` propagating by
``torch.sparse.mm(g_droped, all_emb)`` per layer, ``torch.stack(embs, dim=1)`` + ``torch.mean(embs,
dim=1)``, ``torch.split(light_out, [self.num_users, self.num_items])``; graph dropout by
``__dropout_x`` (``torch.rand(len(values)) + keep_prob``, ``random_index.int().bool()``, values divided by
``keep_prob``); ``bpr_loss`` by ``torch.mul`` + ``torch.sum(dim=1)``, ``torch.mean(F.softplus(neg_scores -
pos_scores))`` + the L2 of the ego embeddings ``(1/2) * norm(2).pow(2) / float(len(users))``; Adam;
``UniformSample_original`` by NumPy. Testing masks each user's train items with ``-(1 << 10)`` and
takes ``torch.topk`` for recall@20 and NDCG@20 (the repo's ``getLabel``/``RecallPrecision_ATk``/
``NDCGatK_r``).

Checked: sparse propagation equals a dense-adjacency propagation (``g.to_dense()`` + ``torch.mm``) in the
forward and in the gradients of the BPR loss w.r.t. both embedding tables; both sparse constructors give
the same graph; the trained model beats the untrained one and a popularity baseline on recall@20.
"""

import os
from time import time

import numpy as np
import torch
from torch import nn, optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
np.random.seed(seed)
torch.manual_seed(seed)

config = {
    "latent_dim_rec": 16,
    "lightGCN_n_layers": 3,
    "dropout": 1,
    "keep_prob": 0.8,
    "A_split": False,
    "lr": 0.01,
    "decay": 1e-4,
    "bpr_batch_size": 256,
    "topks": [20],
}
TRAIN_epochs = 30


# ----------------------------------------------------------------------------------- dataloader
class SyntheticLoader:
    """The BasicDataset interface the repo's Procedure.py uses, on a clustered random data set."""

    def __init__(self, n_user=60, m_item=90, n_clusters=3):
        rng = np.random.RandomState(0)  # one data set; the seed moves init, sampling, dropout
        self.n_user, self.m_item = n_user, m_item
        user_c = rng.randint(n_clusters, size=n_user)
        item_c = np.arange(m_item) % n_clusters
        affinity = np.where(user_c[:, None] == item_c[None, :], 0.22, 0.02)
        inter = rng.rand(n_user, m_item) < affinity
        inter[np.arange(n_user), rng.randint(m_item // n_clusters, size=n_user) * n_clusters + user_c] = True
        test_mask = (rng.rand(n_user, m_item) < 0.25) & inter
        self.train_mat = (inter & ~test_mask).astype(np.float32)
        self.allPos = [np.nonzero(row)[0] for row in self.train_mat]
        self.testDict = {u: list(np.nonzero(test_mask[u])[0]) for u in range(n_user) if test_mask[u].any()}
        self.trainDataSize = int(self.train_mat.sum())
        self.Graph = None

    def _convert_sp_mat_to_sp_tensor(self, X):
        row, col = np.nonzero(X)
        row = torch.Tensor(row).long()
        col = torch.Tensor(col).long()
        index = torch.stack([row, col])
        data = torch.FloatTensor(X[np.nonzero(X)].astype(np.float32))
        return torch.sparse.FloatTensor(index, data, torch.Size(X.shape))

    def getSparseGraph(self):
        if self.Graph is None:
            s = time()
            n, m = self.n_user, self.m_item
            adj_mat = np.zeros((n + m, n + m), dtype=np.float32)
            R = self.train_mat
            adj_mat[:n, n:] = R
            adj_mat[n:, :n] = R.T
            rowsum = np.array(adj_mat.sum(axis=1))
            with np.errstate(divide="ignore"):
                d_inv = np.power(rowsum, -0.5).flatten()
            d_inv[np.isinf(d_inv)] = 0.
            norm_adj = d_inv[:, None] * adj_mat * d_inv[None, :]
            print(f"costing {time() - s >= 0}s, saved norm_mat...")
            self.Graph = self._convert_sp_mat_to_sp_tensor(norm_adj)
            self.Graph = self.Graph.coalesce()
            print("don't split the matrix")
        return self.Graph

    def getUserPosItems(self, users):
        return [self.allPos[user] for user in users]


def UniformSample_original(dataset):
    users = np.random.randint(0, dataset.n_user, dataset.trainDataSize)
    S = []
    for user in users:
        posForUser = dataset.allPos[user]
        if len(posForUser) == 0:
            continue
        posindex = np.random.randint(0, len(posForUser))
        positem = posForUser[posindex]
        while True:
            negitem = np.random.randint(0, dataset.m_item)
            if negitem in posForUser:
                continue
            break
        S.append([user, positem, negitem])
    return np.array(S)


def shuffle(*arrays):
    shuffle_indices = np.arange(len(arrays[0]))
    np.random.shuffle(shuffle_indices)
    return tuple(x[shuffle_indices] for x in arrays)


def minibatch(*tensors, batch_size):
    for i in range(0, len(tensors[0]), batch_size):
        yield tuple(x[i:i + batch_size] for x in tensors)


# ----------------------------------------------------------------------------------- model
class BasicModel(nn.Module):
    def __init__(self):
        super(BasicModel, self).__init__()  # noqa: UP008  (the repo's spelling)

    def getUsersRating(self, users):
        raise NotImplementedError


class LightGCN(BasicModel):
    def __init__(self, config, dataset):
        super(LightGCN, self).__init__()  # noqa: UP008
        self.config = config
        self.dataset = dataset
        self.__init_weight()

    def __init_weight(self):
        self.num_users = self.dataset.n_user
        self.num_items = self.dataset.m_item
        self.latent_dim = self.config["latent_dim_rec"]
        self.n_layers = self.config["lightGCN_n_layers"]
        self.keep_prob = self.config["keep_prob"]
        self.A_split = self.config["A_split"]
        self.embedding_user = torch.nn.Embedding(num_embeddings=self.num_users, embedding_dim=self.latent_dim)
        self.embedding_item = torch.nn.Embedding(num_embeddings=self.num_items, embedding_dim=self.latent_dim)
        nn.init.normal_(self.embedding_user.weight, std=0.1)
        nn.init.normal_(self.embedding_item.weight, std=0.1)
        print("use NORMAL distribution initilizer")
        self.f = nn.Sigmoid()
        self.Graph = self.dataset.getSparseGraph()
        print(f"lgn is already to go(dropout:{self.config['dropout']})")

    def __dropout_x(self, x, keep_prob):
        size = x.size()
        index = x.indices().t()
        values = x.values()
        random_index = torch.rand(len(values)) + keep_prob
        random_index = random_index.int().bool()
        index = index[random_index]
        values = values[random_index] / keep_prob
        g = torch.sparse.FloatTensor(index.t(), values, size)
        return g

    def __dropout(self, keep_prob):
        return self.__dropout_x(self.Graph, keep_prob)

    def computer(self, graph=None):
        users_emb = self.embedding_user.weight
        items_emb = self.embedding_item.weight
        all_emb = torch.cat([users_emb, items_emb])
        embs = [all_emb]
        if graph is not None:
            g_droped = graph
        elif self.config["dropout"] and self.training:
            g_droped = self.__dropout(self.keep_prob)
        else:
            g_droped = self.Graph
        for layer in range(self.n_layers):  # noqa: B007  (the repo's loop)
            if isinstance(g_droped, torch.Tensor) and g_droped.is_sparse:
                all_emb = torch.sparse.mm(g_droped, all_emb)
            else:
                all_emb = torch.mm(g_droped, all_emb)
            embs.append(all_emb)
        embs = torch.stack(embs, dim=1)
        light_out = torch.mean(embs, dim=1)
        users, items = torch.split(light_out, [self.num_users, self.num_items])
        return users, items

    def getUsersRating(self, users):
        all_users, all_items = self.computer()
        users_emb = all_users[users.long()]
        items_emb = all_items
        rating = self.f(torch.matmul(users_emb, items_emb.t()))
        return rating

    def getEmbedding(self, users, pos_items, neg_items, graph=None):
        all_users, all_items = self.computer(graph)
        users_emb = all_users[users]
        pos_emb = all_items[pos_items]
        neg_emb = all_items[neg_items]
        users_emb_ego = self.embedding_user(users)
        pos_emb_ego = self.embedding_item(pos_items)
        neg_emb_ego = self.embedding_item(neg_items)
        return users_emb, pos_emb, neg_emb, users_emb_ego, pos_emb_ego, neg_emb_ego

    def bpr_loss(self, users, pos, neg, graph=None):
        (users_emb, pos_emb, neg_emb,
         userEmb0, posEmb0, negEmb0) = self.getEmbedding(users.long(), pos.long(), neg.long(), graph)
        reg_loss = (1 / 2) * (userEmb0.norm(2).pow(2) +
                              posEmb0.norm(2).pow(2) +
                              negEmb0.norm(2).pow(2)) / float(len(users))
        pos_scores = torch.mul(users_emb, pos_emb)
        pos_scores = torch.sum(pos_scores, dim=1)
        neg_scores = torch.mul(users_emb, neg_emb)
        neg_scores = torch.sum(neg_scores, dim=1)
        loss = torch.mean(torch.nn.functional.softplus(neg_scores - pos_scores))
        return loss, reg_loss


class BPRLoss:
    def __init__(self, recmodel, config):
        self.model = recmodel
        self.weight_decay = config["decay"]
        self.lr = config["lr"]
        self.opt = optim.Adam(recmodel.parameters(), lr=self.lr)

    def stageOne(self, users, pos, neg):
        loss, reg_loss = self.model.bpr_loss(users, pos, neg)
        reg_loss = reg_loss * self.weight_decay
        loss = loss + reg_loss
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss.cpu().item()


# ----------------------------------------------------------------------------------- metrics
def getLabel(test_data, pred_data):
    r = []
    for i in range(len(test_data)):
        groundTrue = test_data[i]
        predictTopK = pred_data[i]
        pred = list(map(lambda x: x in groundTrue, predictTopK))
        pred = np.array(pred).astype("float")
        r.append(pred)
    return np.array(r).astype("float")


def RecallPrecision_ATk(test_data, r, k):
    right_pred = r[:, :k].sum(1)
    precis_n = k
    recall_n = np.array([len(test_data[i]) for i in range(len(test_data))])
    recall = np.sum(right_pred / recall_n)
    precis = np.sum(right_pred) / precis_n
    return {"recall": recall, "precision": precis}


def NDCGatK_r(test_data, r, k):
    assert len(r) == len(test_data)
    pred_data = r[:, :k]
    test_matrix = np.zeros((len(pred_data), k))
    for i, items in enumerate(test_data):
        length = k if k <= len(items) else len(items)
        test_matrix[i, :length] = 1
    max_r = test_matrix
    idcg = np.sum(max_r * 1. / np.log2(np.arange(2, k + 2)), axis=1)
    dcg = pred_data * (1. / np.log2(np.arange(2, k + 2)))
    dcg = np.sum(dcg, axis=1)
    idcg[idcg == 0.] = 1.
    ndcg = dcg / idcg
    ndcg[np.isnan(ndcg)] = 0.
    return np.sum(ndcg)


def Test(dataset, Recmodel, rating_fn=None):
    testDict = dataset.testDict
    max_K = max(config["topks"])
    Recmodel = Recmodel.eval()
    with torch.no_grad():
        users = list(testDict.keys())
        allPos = dataset.getUserPosItems(users)
        groundTrue = [testDict[u] for u in users]
        batch_users_gpu = torch.Tensor(users).long()
        rating = Recmodel.getUsersRating(batch_users_gpu) if rating_fn is None else rating_fn(batch_users_gpu)
        exclude_index = []
        exclude_items = []
        for range_i, items in enumerate(allPos):
            exclude_index.extend([range_i] * len(items))
            exclude_items.extend(items)
        rating[exclude_index, exclude_items] = -(1 << 10)
        _, rating_K = torch.topk(rating, k=max_K)
        r = getLabel(groundTrue, rating_K.cpu().numpy())
        k = config["topks"][0]
        ret = RecallPrecision_ATk(groundTrue, r, k)
        ndcg = NDCGatK_r(groundTrue, r, k)
    Recmodel.train()
    n = float(len(users))
    return ret["recall"] / n, ret["precision"] / n, ndcg / n


# ----------------------------------------------------------------------------------- checks
dataset = SyntheticLoader()
Recmodel = LightGCN(config, dataset)
Graph = Recmodel.Graph
print("graph", tuple(Graph.shape), "nnz", Graph._nnz(), "coalesced", Graph.is_coalesced(), Graph.layout)

# the same graph through the modern constructor
idx = Graph.indices()
g2 = torch.sparse_coo_tensor(idx, Graph.values(), torch.Size([Graph.shape[0], Graph.shape[1]])).coalesce()
same_graph = torch.equal(g2.indices(), Graph.indices()) and torch.equal(g2.values(), Graph.values())
print("sparse_coo_tensor graph equal:", same_graph)
dense_graph = Graph.to_dense()
deg_dense = (dense_graph > 0).sum(1)
print("isolated nodes:", int((deg_dense == 0).sum()), "symmetric:", torch.allclose(dense_graph, dense_graph.t()))

# forward: sparse vs dense propagation
Recmodel.eval()
u_sp, i_sp = Recmodel.computer()
u_de, i_de = Recmodel.computer(dense_graph)
fwd_diff = max((u_sp - u_de).abs().max().item(), (i_sp - i_de).abs().max().item())
print("forward sparse vs dense allclose:", torch.allclose(u_sp, u_de, atol=1e-6) and torch.allclose(i_sp, i_de, atol=1e-6))

# gradients of the BPR loss: sparse vs dense
S0 = UniformSample_original(dataset)[:64]
u0, p0, n0 = (torch.Tensor(S0[:, c]).long() for c in range(3))
grads = []
for graph in (None, dense_graph):
    Recmodel.zero_grad()
    loss, reg = Recmodel.bpr_loss(u0, p0, n0, graph)
    (loss + config["decay"] * reg).backward()
    grads.append([Recmodel.embedding_user.weight.grad.clone(), Recmodel.embedding_item.weight.grad.clone()])
grad_diff = max((a - b).abs().max().item() for a, b in zip(*grads))
print("grad sparse vs dense allclose:", all(torch.allclose(a, b, atol=1e-7) for a, b in zip(*grads)))
Recmodel.zero_grad()
Recmodel.train()

# graph dropout keeps about keep_prob of the edges and rescales them
dropped = Recmodel._LightGCN__dropout(config["keep_prob"])
kept = dropped._nnz() / Graph._nnz()
print("dropout kept fraction in (0.6, 1.0):", 0.6 < kept < 1.0, dropped.is_coalesced())

# baselines
recall0, _, ndcg0 = Test(dataset, Recmodel)
popularity = torch.from_numpy(dataset.train_mat.sum(0))
recall_pop, _, _ = Test(dataset, Recmodel, rating_fn=lambda users: popularity.expand(len(users), -1).clone())
print(f"untrained recall@20 {recall0:.4f} ndcg@20 {ndcg0:.4f}  popularity recall@20 {recall_pop:.4f}")

# ----------------------------------------------------------------------------------- training
bpr = BPRLoss(Recmodel, config)
for epoch in range(TRAIN_epochs):
    Recmodel.train()
    S = UniformSample_original(dataset)
    users = torch.Tensor(S[:, 0]).long()
    posItems = torch.Tensor(S[:, 1]).long()
    negItems = torch.Tensor(S[:, 2]).long()
    users, posItems, negItems = shuffle(users, posItems, negItems)
    total_batch = len(users) // config["bpr_batch_size"] + 1
    aver_loss = 0.
    for (batch_i, (batch_users, batch_pos, batch_neg)) in enumerate(  # noqa: B007
            minibatch(users, posItems, negItems, batch_size=config["bpr_batch_size"])):
        cri = bpr.stageOne(batch_users, batch_pos, batch_neg)
        aver_loss += cri
    aver_loss = aver_loss / total_batch
    if epoch % 10 == 9:
        recall, precision, ndcg = Test(dataset, Recmodel)
        print(f"EPOCH[{epoch + 1}/{TRAIN_epochs}] loss{aver_loss:.3f} recall {recall:.4f} ndcg {ndcg:.4f}")

recall, precision, ndcg = Test(dataset, Recmodel)
print("trained beats untrained:", recall > recall0, "beats popularity:", recall > recall_pop)
print(f"FINAL recall={recall:.4f} ndcg={ndcg:.4f} precision={precision:.4f} loss={aver_loss:.4f} "
      f"recall_gain={recall - recall0:.4f} graph_ok={float(same_graph)} fwd_diff={fwd_diff:.2e} "
      f"grad_diff={grad_diff:.2e}")
