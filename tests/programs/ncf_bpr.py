"""Neural collaborative filtering and BPR as guoyang9's NCF / BPR-pytorch ports of the paper code
write them, on implicit feedback made with NumPy from latent user/item factors: an ``NCFData``
``Dataset`` whose ``ng_sample()`` draws negatives with ``torch.randint`` (collisions with the
training matrix redrawn through ``torch.where``), GMF and MLP towers with separate
``nn.Embedding``s (``factor_num * 2 ** (num_layers - 1)`` wide for the MLP), ``torch.cat`` of user
and item embeddings into ``Dropout``/``Linear``/``ReLU`` blocks, ``nn.init.normal_(std=0.01)``,
``xavier_uniform_``, ``kaiming_uniform_(a=1, nonlinearity='sigmoid')``, ``bias.data.zero_()``;
GMF trained by ``F.binary_cross_entropy(torch.sigmoid(pred), label)``, MLP by
``BCEWithLogitsLoss``, NeuMF-pre initialised from both (``weight.data.copy_``, the predict layers
``torch.cat``-ed ``dim=1`` and halved) and fine-tuned with SGD; BPR with ``-(pi - pj).sigmoid().log()
.sum()`` against ``-F.logsigmoid(pi - pj).mean()`` (Adam); HR@10 / NDCG@10 over 1 positive + 49 sampled
negatives per user, by the repo's ``torch.topk`` + ``torch.take`` + ``np.log2`` loop and batched by
``torch.isin``, ``(items == target).nonzero()`` and ``torch.log2`` (the two must agree).
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
import torch.utils.data as data

seed = int(os.environ.get("PROGRAM_SEED", "0"))
np.random.seed(seed)
torch.manual_seed(seed)

# ---- implicit feedback from latent factors ----
rng = np.random.RandomState(seed)
user_num, item_num, per_user = 64, 96, 20
test_num_ng, num_ng, top_k = 49, 4, 10
U = rng.normal(0, 1, (user_num, 4))
V = rng.normal(0, 1, (item_num, 4))
popularity = rng.normal(0, 0.3, item_num)
train_data, test_pos = [], []
train_mat = np.zeros((user_num, item_num), dtype=np.float32)
for u in range(user_num):
    score = U[u] @ V.T + popularity
    p = np.exp(3.0 * score - (3.0 * score).max())
    items = rng.choice(item_num, size=per_user, replace=False, p=p / p.sum())
    for i in items[:-1]:
        train_data.append([u, i])
        train_mat[u, i] = 1.0
    test_pos.append(items[-1])  # leave one out
test_data = []
for u in range(user_num):
    candidates = np.setdiff1d(np.arange(item_num), np.append(np.nonzero(train_mat[u])[0], test_pos[u]))
    negatives = rng.choice(candidates, size=test_num_ng, replace=False)
    test_data.append([u, test_pos[u]])
    test_data.extend([u, j] for j in negatives)
print(f"users {user_num} items {item_num} train interactions {len(train_data)} test rows {len(test_data)}")


class NCFData(data.Dataset):
    def __init__(self, features, num_item, train_mat=None, num_ng=0, is_training=None):
        super().__init__()
        """ Note that the labels are only useful when training, we thus
            add them in the ng_sample() function.
        """
        self.features_ps = features
        self.num_item = num_item
        self.train_mat = train_mat
        self.num_ng = num_ng
        self.is_training = is_training
        self.labels = [0 for _ in range(len(features))]

    def ng_sample(self):
        assert self.is_training, 'no need to sampling when testing'
        users = torch.tensor([x[0] for x in self.features_ps]).repeat_interleave(self.num_ng)
        negatives = torch.randint(0, self.num_item, (len(users),))
        seen = torch.from_numpy(self.train_mat)[users, negatives] > 0
        while seen.any():
            negatives = torch.where(seen, torch.randint(0, self.num_item, (len(users),)), negatives)
            seen = torch.from_numpy(self.train_mat)[users, negatives] > 0
        self.features_ng = torch.stack([users, negatives], dim=1).tolist()

        labels_ps = [1 for _ in range(len(self.features_ps))]
        labels_ng = [0 for _ in range(len(self.features_ng))]

        self.features_fill = self.features_ps + self.features_ng
        self.labels_fill = labels_ps + labels_ng

    def __len__(self):
        return (self.num_ng + 1) * len(self.labels)

    def __getitem__(self, idx):
        features = self.features_fill if self.is_training else self.features_ps
        labels = self.labels_fill if self.is_training else self.labels

        user = features[idx][0]
        item = features[idx][1]
        label = labels[idx]
        return user, item, label


class NCF(nn.Module):
    def __init__(self, user_num, item_num, factor_num, num_layers, dropout, model, GMF_model=None, MLP_model=None):
        super().__init__()
        """
        user_num: number of users;
        item_num: number of items;
        factor_num: number of predictive factors;
        num_layers: the number of layers in MLP model;
        dropout: dropout rate between fully connected layers;
        model: 'MLP', 'GMF', 'NeuMF-end', and 'NeuMF-pre';
        GMF_model: pre-trained GMF weights;
        MLP_model: pre-trained MLP weights.
        """
        self.dropout = dropout
        self.model = model
        self.GMF_model = GMF_model
        self.MLP_model = MLP_model

        self.embed_user_GMF = nn.Embedding(user_num, factor_num)
        self.embed_item_GMF = nn.Embedding(item_num, factor_num)
        self.embed_user_MLP = nn.Embedding(user_num, factor_num * (2 ** (num_layers - 1)))
        self.embed_item_MLP = nn.Embedding(item_num, factor_num * (2 ** (num_layers - 1)))

        MLP_modules = []
        for i in range(num_layers):
            input_size = factor_num * (2 ** (num_layers - i))
            MLP_modules.append(nn.Dropout(p=self.dropout))
            MLP_modules.append(nn.Linear(input_size, input_size // 2))
            MLP_modules.append(nn.ReLU())
        self.MLP_layers = nn.Sequential(*MLP_modules)

        if self.model in ['MLP', 'GMF']:
            predict_size = factor_num
        else:
            predict_size = factor_num * 2
        self.predict_layer = nn.Linear(predict_size, 1)

        self._init_weight_()

    def _init_weight_(self):
        """ We leave the weights initialization here. """
        if not self.model == 'NeuMF-pre':
            nn.init.normal_(self.embed_user_GMF.weight, std=0.01)
            nn.init.normal_(self.embed_user_MLP.weight, std=0.01)
            nn.init.normal_(self.embed_item_GMF.weight, std=0.01)
            nn.init.normal_(self.embed_item_MLP.weight, std=0.01)

            for m in self.MLP_layers:
                if isinstance(m, nn.Linear):
                    nn.init.xavier_uniform_(m.weight)
            nn.init.kaiming_uniform_(self.predict_layer.weight, a=1, nonlinearity='sigmoid')

            for m in self.modules():
                if isinstance(m, nn.Linear) and m.bias is not None:
                    m.bias.data.zero_()
        else:
            # embedding layers
            self.embed_user_GMF.weight.data.copy_(self.GMF_model.embed_user_GMF.weight)
            self.embed_item_GMF.weight.data.copy_(self.GMF_model.embed_item_GMF.weight)
            self.embed_user_MLP.weight.data.copy_(self.MLP_model.embed_user_MLP.weight)
            self.embed_item_MLP.weight.data.copy_(self.MLP_model.embed_item_MLP.weight)

            # mlp layers
            for (m1, m2) in zip(self.MLP_layers, self.MLP_model.MLP_layers):
                if isinstance(m1, nn.Linear) and isinstance(m2, nn.Linear):
                    m1.weight.data.copy_(m2.weight)
                    m1.bias.data.copy_(m2.bias)

            # predict layers
            predict_weight = torch.cat([self.GMF_model.predict_layer.weight,
                                        self.MLP_model.predict_layer.weight], dim=1)
            precit_bias = self.GMF_model.predict_layer.bias + self.MLP_model.predict_layer.bias

            self.predict_layer.weight.data.copy_(0.5 * predict_weight)
            self.predict_layer.bias.data.copy_(0.5 * precit_bias)

    def forward(self, user, item):
        if not self.model == 'MLP':
            embed_user_GMF = self.embed_user_GMF(user)
            embed_item_GMF = self.embed_item_GMF(item)
            output_GMF = embed_user_GMF * embed_item_GMF
        if not self.model == 'GMF':
            embed_user_MLP = self.embed_user_MLP(user)
            embed_item_MLP = self.embed_item_MLP(item)
            interaction = torch.cat((embed_user_MLP, embed_item_MLP), -1)
            output_MLP = self.MLP_layers(interaction)

        if self.model == 'GMF':
            concat = output_GMF
        elif self.model == 'MLP':
            concat = output_MLP
        else:
            concat = torch.cat((output_GMF, output_MLP), -1)

        prediction = self.predict_layer(concat)
        return prediction.view(-1)


class BPR(nn.Module):
    def __init__(self, user_num, item_num, factor_num):
        super().__init__()
        self.embed_user = nn.Embedding(user_num, factor_num)
        self.embed_item = nn.Embedding(item_num, factor_num)
        nn.init.normal_(self.embed_user.weight, std=0.01)
        nn.init.normal_(self.embed_item.weight, std=0.01)

    def forward(self, user, item_i, item_j):
        user = self.embed_user(user)
        item_i = self.embed_item(item_i)
        item_j = self.embed_item(item_j)
        prediction_i = (user * item_i).sum(dim=-1)
        prediction_j = (user * item_j).sum(dim=-1)
        return prediction_i, prediction_j


# ---- evaluate.py ----
def hit(gt_item, pred_items):
    if gt_item in pred_items:
        return 1
    return 0


def ndcg(gt_item, pred_items):
    if gt_item in pred_items:
        index = pred_items.index(gt_item)
        return np.reciprocal(np.log2(index + 2))
    return 0


def metrics(score_fn, test_loader, top_k):
    HR, NDCG = [], []
    for user, item, label in test_loader:  # noqa: B007  (the repo's own loop)
        predictions = score_fn(user, item)
        _, indices = torch.topk(predictions, top_k)
        recommends = torch.take(item, indices).cpu().numpy().tolist()
        gt_item = item[0].item()
        HR.append(hit(gt_item, recommends))
        NDCG.append(ndcg(gt_item, recommends))
    return np.mean(HR), np.mean(NDCG)


test_users = torch.tensor(test_data)[:, 0].view(user_num, test_num_ng + 1)
test_items = torch.tensor(test_data)[:, 1].view(user_num, test_num_ng + 1)


def metrics_batched(score_fn, top_k):
    """All users at once: the positive is column 0 of each row."""
    scores = score_fn(test_users.reshape(-1), test_items.reshape(-1)).view(user_num, -1)
    _, indices = torch.topk(scores, top_k, dim=1)
    recommends = torch.gather(test_items, 1, indices)
    target = test_items[:, :1]
    hits = (recommends == target).any(dim=1)
    rows, positions = (recommends == target).nonzero(as_tuple=True)
    ndcg_sum = (1.0 / torch.log2(positions.float() + 2)).sum()
    in_top = torch.stack([torch.isin(target[u], recommends[u]) for u in range(user_num)]).squeeze(1)
    assert torch.equal(hits, in_top) and len(rows) == int(hits.sum())
    return hits.float().mean().item(), (ndcg_sum / user_num).item()


test_dataset = NCFData(test_data, item_num, train_mat, 0, False)
test_loader = data.DataLoader(test_dataset, batch_size=test_num_ng + 1, shuffle=False, num_workers=0)
train_dataset = NCFData(train_data, item_num, train_mat, num_ng, True)
train_loader = data.DataLoader(train_dataset, batch_size=256, shuffle=True, num_workers=0)


def train_ncf(model, loss_function, optimizer, epochs, name):
    for epoch in range(epochs):
        model.train()  # Enable dropout (if have).
        train_loader.dataset.ng_sample()
        total, count = 0.0, 0
        for user, item, label in train_loader:
            label = label.float()
            model.zero_grad()
            prediction = model(user, item)
            loss = loss_function(prediction, label)
            loss.backward()
            optimizer.step()
            total += loss.item()
            count += 1
        model.eval()
        with torch.no_grad():
            HR, NDCG = metrics(model, test_loader, top_k)
        print(f"{name} epoch {epoch:03d} loss {total / count:.4f} HR {HR:.3f} NDCG {NDCG:.3f}")
    with torch.no_grad():
        hr_b, ndcg_b = metrics_batched(model, top_k)
    print(f"{name} batched metrics agree {abs(hr_b - HR) < 1e-6 and abs(ndcg_b - NDCG) < 1e-5}")
    return HR, NDCG


factor_num, num_layers, dropout = 8, 2, 0.0
results = {}

GMF_model = NCF(user_num, item_num, factor_num, num_layers, dropout, 'GMF')
results['GMF'] = train_ncf(GMF_model, lambda pred, label: F.binary_cross_entropy(torch.sigmoid(pred), label),
                           optim.Adam(GMF_model.parameters(), lr=0.01), 3, 'GMF')

MLP_model = NCF(user_num, item_num, factor_num, num_layers, dropout, 'MLP')
results['MLP'] = train_ncf(MLP_model, nn.BCEWithLogitsLoss(), optim.Adam(MLP_model.parameters(), lr=0.01), 3, 'MLP')

model = NCF(user_num, item_num, factor_num, num_layers, dropout, 'NeuMF-pre', GMF_model, MLP_model)
with torch.no_grad():
    model.eval()
    u, i = test_users[:, 0], test_items[:, 0]
    expected = 0.5 * (GMF_model(u, i) + MLP_model(u, i))
    print(f"NeuMF-pre starts at the average of its towers {torch.allclose(model(u, i), expected, atol=1e-5)}")
results['NeuMF-pre'] = train_ncf(model, nn.BCEWithLogitsLoss(), optim.SGD(model.parameters(), lr=0.05), 2, 'NeuMF-pre')

# ---- BPR ----
bpr = BPR(user_num, item_num, factor_num)
bpr_optimizer = optim.Adam(bpr.parameters(), lr=0.01)
pos_users = torch.tensor(train_data)[:, 0]
pos_items = torch.tensor(train_data)[:, 1]
for epoch in range(20):
    perm = torch.randperm(len(pos_users))
    neg_items = torch.randint(0, item_num, (len(pos_users),))
    total = 0.0
    for start in range(0, len(perm), 128):
        idx = perm[start:start + 128]
        prediction_i, prediction_j = bpr(pos_users[idx], pos_items[idx], neg_items[idx])
        if epoch == 0 and start == 0:
            loss_sum = - (prediction_i - prediction_j).sigmoid().log().sum()
            loss_mean = -F.logsigmoid(prediction_i - prediction_j).mean()
            print(f"BPR losses agree {torch.allclose(loss_sum / len(idx), loss_mean)}")
        loss = -F.logsigmoid(prediction_i - prediction_j).mean()
        bpr.zero_grad()
        loss.backward()
        bpr_optimizer.step()
        total += loss.item() * len(idx)
    if epoch % 10 == 9:
        with torch.no_grad():
            HR, NDCG = metrics(lambda u, i: bpr(u, i, i)[0], test_loader, top_k)
        print(f"BPR epoch {epoch:03d} loss {total / len(perm):.4f} HR {HR:.3f} NDCG {NDCG:.3f}")
results['BPR'] = (HR, NDCG)

# popularity baseline: rank the candidates by training counts
counts = torch.from_numpy(train_mat).sum(0)
pop_hr, pop_ndcg = metrics_batched(lambda u, i: counts[i] + 1e-3 * torch.rand(len(i)), top_k)
print(f"popularity HR {pop_hr:.3f} NDCG {pop_ndcg:.3f}")

print(f"FINAL hr_gmf={results['GMF'][0]:.4f} hr_mlp={results['MLP'][0]:.4f} hr_neumf={results['NeuMF-pre'][0]:.4f} "
      f"ndcg_neumf={results['NeuMF-pre'][1]:.4f} hr_bpr={results['BPR'][0]:.4f} hr_pop={pop_hr:.4f}")
