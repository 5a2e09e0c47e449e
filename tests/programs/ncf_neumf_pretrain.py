"""Neural Collaborative Filtering (He et al., WWW 2017) in the layout of guoyang9/NCF (after
hexiangnan/neural_collaborative_filtering), on synthetic implicit feedback.

Users and items get hidden 4-d taste vectors (NumPy, fixed seed); each user has interacted with items drawn
with probability rising with the affinity and, to give popularity a signal too, with an item bias. The last
interaction of each user is held out (leave-one-out); the test list is that item followed by ``TEST_NG``
items the user never touched, as in the repo's ``test.negative`` file.

``NCF`` is the repo's one class for the three models: ``GMF`` (``embed_user_GMF * embed_item_GMF``), ``MLP``
(``torch.cat`` of the MLP embeddings through ``Dropout``/``Linear``/``ReLU`` towers halving the width) and
``NeuMF-pre``, which ``_init_weight_`` initialises from the two pretrained models by
``weight.data.copy_(...)`` and the predict layer from ``torch.cat([GMF.predict_layer.weight,
MLP.predict_layer.weight], dim=1)`` halved; otherwise ``nn.init.normal_(std=0.01)``,
``nn.init.xavier_uniform_``, ``nn.init.kaiming_uniform_(a=1, nonlinearity='sigmoid')`` and
``bias.data.zero_()``. ``NCFData`` redraws ``num_ng`` negatives per positive each epoch (``ng_sample``);
training uses ``nn.BCEWithLogitsLoss``, Adam for the towers and SGD for the fused model, as the repo does.
``metrics`` ranks each test list by ``torch.topk`` and maps back by ``torch.take`` for HR@10 / NDCG@10.

Checked: the freshly built NeuMF-pre's logits equal the mean of the GMF and MLP logits (``torch.allclose``),
and HR@10 / NDCG@10 of GMF, MLP and NeuMF against item popularity.
"""

# ruff: noqa: UP008, B007  (the repo's own spelling: super(Class, self), unused loop names)

import os

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
import torch.utils.data as data

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

USER_NUM, ITEM_NUM, LATENT = 48, 80, 4
PER_USER, TEST_NG, TOP_K = 10, 39, 10
FACTOR_NUM, NUM_LAYERS, NUM_NG = 8, 2, 3


# ----------------------------------------------------------------------------------- data
def load_all():
    user_taste = np.random.randn(USER_NUM, LATENT)
    item_taste = np.random.randn(ITEM_NUM, LATENT)
    item_pop = np.random.randn(ITEM_NUM) * 1.0
    logits = user_taste @ item_taste.T * 1.5 + item_pop[None, :]
    train_data, test_data = [], []
    train_mat = np.zeros((USER_NUM, ITEM_NUM), dtype=np.float32)
    for u in range(USER_NUM):
        p = np.exp(logits[u] - logits[u].max())
        p /= p.sum()
        items = np.random.choice(ITEM_NUM, size=PER_USER + 1, replace=False, p=p)
        for i in items[:-1]:
            train_data.append([u, int(i)])
            train_mat[u, i] = 1.0
        gt = int(items[-1])
        negatives = [j for j in np.random.permutation(ITEM_NUM) if j not in set(items)][:TEST_NG]
        test_data.append([u, gt])
        for j in negatives:
            test_data.append([u, int(j)])
    return train_data, test_data, train_mat


class NCFData(data.Dataset):
    def __init__(self, features, num_item, train_mat=None, num_ng=0, is_training=None):
        super(NCFData, self).__init__()
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
        assert self.is_training, "no need to sampling when testing"

        self.features_ng = []
        for x in self.features_ps:
            u = x[0]
            for t in range(self.num_ng):
                j = np.random.randint(self.num_item)
                while self.train_mat[u, j] > 0:
                    j = np.random.randint(self.num_item)
                self.features_ng.append([u, j])

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


# ----------------------------------------------------------------------------------- model
class NCF(nn.Module):
    def __init__(self, user_num, item_num, factor_num, num_layers, dropout, model, GMF_model=None, MLP_model=None):
        super(NCF, self).__init__()
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

        if self.model in ["MLP", "GMF"]:
            predict_size = factor_num
        else:
            predict_size = factor_num * 2
        self.predict_layer = nn.Linear(predict_size, 1)

        self._init_weight_()

    def _init_weight_(self):
        """ We leave the weights initialization here. """
        if not self.model == "NeuMF-pre":
            nn.init.normal_(self.embed_user_GMF.weight, std=0.01)
            nn.init.normal_(self.embed_user_MLP.weight, std=0.01)
            nn.init.normal_(self.embed_item_GMF.weight, std=0.01)
            nn.init.normal_(self.embed_item_MLP.weight, std=0.01)

            for m in self.MLP_layers:
                if isinstance(m, nn.Linear):
                    nn.init.xavier_uniform_(m.weight)
            nn.init.kaiming_uniform_(self.predict_layer.weight, a=1, nonlinearity="sigmoid")

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
            predict_weight = torch.cat([self.GMF_model.predict_layer.weight, self.MLP_model.predict_layer.weight], dim=1)
            precit_bias = self.GMF_model.predict_layer.bias + self.MLP_model.predict_layer.bias

            self.predict_layer.weight.data.copy_(0.5 * predict_weight)
            self.predict_layer.bias.data.copy_(0.5 * precit_bias)

    def forward(self, user, item):
        if not self.model == "MLP":
            embed_user_GMF = self.embed_user_GMF(user)
            embed_item_GMF = self.embed_item_GMF(item)
            output_GMF = embed_user_GMF * embed_item_GMF
        if not self.model == "GMF":
            embed_user_MLP = self.embed_user_MLP(user)
            embed_item_MLP = self.embed_item_MLP(item)
            interaction = torch.cat((embed_user_MLP, embed_item_MLP), -1)
            output_MLP = self.MLP_layers(interaction)

        if self.model == "GMF":
            concat = output_GMF
        elif self.model == "MLP":
            concat = output_MLP
        else:
            concat = torch.cat((output_GMF, output_MLP), -1)

        prediction = self.predict_layer(concat)
        return prediction.view(-1)


# ----------------------------------------------------------------------------------- evaluate
def hit(gt_item, pred_items):
    if gt_item in pred_items:
        return 1
    return 0


def ndcg(gt_item, pred_items):
    if gt_item in pred_items:
        index = pred_items.index(gt_item)
        return np.reciprocal(np.log2(index + 2))
    return 0


def metrics(model, test_loader, top_k, scorer=None):
    HR, NDCG = [], []

    for user, item, label in test_loader:
        predictions = model(user, item) if scorer is None else scorer(user, item)
        _, indices = torch.topk(predictions, top_k)
        recommends = torch.take(item, indices).cpu().numpy().tolist()

        gt_item = item[0].item()
        HR.append(hit(gt_item, recommends))
        NDCG.append(ndcg(gt_item, recommends))

    return np.mean(HR), np.mean(NDCG)


# ----------------------------------------------------------------------------------- main
train_data, test_data, train_mat = load_all()
train_dataset = NCFData(train_data, ITEM_NUM, train_mat, NUM_NG, True)
test_dataset = NCFData(test_data, ITEM_NUM, train_mat, 0, False)
train_loader = data.DataLoader(train_dataset, batch_size=256, shuffle=True, num_workers=0)
test_loader = data.DataLoader(test_dataset, batch_size=TEST_NG + 1, shuffle=False, num_workers=0)

popularity = torch.from_numpy(train_mat.sum(0))
pop_hr, pop_ndcg = metrics(None, test_loader, TOP_K, scorer=lambda user, item: popularity[item] + 1e-3 * item.float())
print(f"popularity: HR={pop_hr:.3f}\tNDCG={pop_ndcg:.3f}")


def run(model, optimizer, epochs, name):
    loss_function = nn.BCEWithLogitsLoss()
    best_hr = 0.0
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
            HR, NDCG = metrics(model, test_loader, TOP_K)
        best_hr = max(best_hr, HR)
        if epoch % 3 == 2 or epoch == epochs - 1:
            print(f"{name} epoch {epoch:03d} loss {total / count:.4f} HR: {HR:.3f}\tNDCG: {NDCG:.3f}")
    return HR, NDCG


GMF_model = NCF(USER_NUM, ITEM_NUM, FACTOR_NUM, NUM_LAYERS, 0.0, "GMF")
gmf_hr, gmf_ndcg = run(GMF_model, optim.Adam(GMF_model.parameters(), lr=0.03), 10, "GMF")

MLP_model = NCF(USER_NUM, ITEM_NUM, FACTOR_NUM, NUM_LAYERS, 0.0, "MLP")
mlp_hr, mlp_ndcg = run(MLP_model, optim.Adam(MLP_model.parameters(), lr=0.03), 10, "MLP")

model = NCF(USER_NUM, ITEM_NUM, FACTOR_NUM, NUM_LAYERS, 0.0, "NeuMF-pre", GMF_model, MLP_model)
model.eval()
with torch.no_grad():
    user = torch.arange(USER_NUM).repeat_interleave(4)
    item = torch.randint(0, ITEM_NUM, (USER_NUM * 4,))
    fused = model(user, item)
    halves = 0.5 * (GMF_model(user, item) + MLP_model(user, item))
    agree = torch.allclose(fused, halves, atol=1e-6)
print(f"NeuMF-pre logits equal the mean of GMF and MLP: {agree} "
      f"(max diff {(fused - halves).abs().max().item():.1e})")
assert agree
print(f"predict layer {tuple(model.predict_layer.weight.shape)}, "
      f"MLP embedding {tuple(model.embed_user_MLP.weight.shape)}")
neumf_hr, neumf_ndcg = run(model, optim.SGD(model.parameters(), lr=0.05), 6, "NeuMF-pre")

print(f"FINAL pop_hr={pop_hr:.4f} gmf_hr={gmf_hr:.4f} mlp_hr={mlp_hr:.4f} neumf_hr={neumf_hr:.4f} "
      f"neumf_ndcg={neumf_ndcg:.4f} gain={neumf_hr - pop_hr:.4f}")
