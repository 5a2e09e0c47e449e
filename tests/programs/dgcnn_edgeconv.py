"""DGCNN / EdgeConv point-cloud classification (WangYueFT/dgcnn pytorch/model.py, util.py, main.py) at tiny sizes.

``knn`` by ``-2 * torch.matmul(x.transpose(2, 1), x)`` and ``torch.sum(x ** 2, dim=1, keepdim=True)``
into a pairwise distance and ``.topk(k=k, dim=-1)[1]``; ``get_graph_feature`` with ``idx_base =
torch.arange(0, batch_size, device=device).view(-1, 1, 1) * num_points``, ``idx.view(-1)``,
``x.view(batch_size * num_points, -1)[idx, :]``, ``x.view(...).repeat(1, 1, k, 1)`` and
``torch.cat((feature - x, x), dim=3).permute(0, 3, 1, 2).contiguous()``; EdgeConv layers of
``nn.Conv2d(kernel_size=1, bias=False)`` + ``BatchNorm2d`` + ``nn.LeakyReLU(negative_slope=0.2)`` in
``nn.Sequential``s sharing the BatchNorm attributes, ``x.max(dim=-1, keepdim=False)[0]``, a ``Conv1d``
+ ``BatchNorm1d`` embedding, ``F.adaptive_max_pool1d`` + ``F.adaptive_avg_pool1d`` pooled by
``.view(batch_size, -1)``, ``F.leaky_relu`` heads with ``Dropout``; util.py's ``cal_loss`` with label
smoothing by ``torch.zeros_like(pred).scatter(1, gold.view(-1, 1), 1)``; main.py's loop: a ``Dataset``
that ``np.random.shuffle``s points and applies ``translate_pointcloud`` (``np.random.uniform`` scale and
shift), ``DataLoader(shuffle=True, drop_last=True)``, ``nn.DataParallel(model)``, ``data.permute(0, 2,
1)``, SGD with momentum and ``CosineAnnealingLR(opt, epochs, eta_min=lr)``, ``logits.max(dim=1)[1]``,
``np.concatenate`` of ``.cpu().numpy()`` batches, ``metrics.accuracy_score`` and
``metrics.balanced_accuracy_score``.

The data: point clouds of 64 points sampled from four surfaces (sphere, cube, cylinder, cone) with
jitter, made with NumPy.
"""
# ruff: noqa: UP031  (main.py's %-formatted log lines)

import os

import numpy as np
import sklearn.metrics as metrics
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import CosineAnnealingLR
from torch.utils.data import DataLoader, Dataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)
rng = np.random.default_rng(seed)

NUM_POINTS, NUM_CLASSES = 64, 4


def sample_surface(kind, n):
    if kind == 0:  # sphere
        p = rng.normal(size=(n, 3))
        p /= np.linalg.norm(p, axis=1, keepdims=True)
    elif kind == 1:  # cube surface
        p = rng.uniform(-1, 1, size=(n, 3))
        face = rng.integers(0, 3, size=n)
        p[np.arange(n), face] = np.sign(rng.uniform(-1, 1, size=n))
    elif kind == 2:  # cylinder
        theta = rng.uniform(0, 2 * np.pi, size=n)
        p = np.stack([np.cos(theta), np.sin(theta), rng.uniform(-1, 1, size=n)], axis=1)
    else:  # cone
        h = rng.uniform(0, 1, size=n)
        theta = rng.uniform(0, 2 * np.pi, size=n)
        p = np.stack([(1 - h) * np.cos(theta), (1 - h) * np.sin(theta), 2 * h - 1], axis=1)
    p += rng.normal(0.0, 0.03, size=p.shape)
    # a random rotation about the z axis
    a = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    return (p @ rot.T).astype('float32')


def load_data(n):
    labels = rng.integers(0, NUM_CLASSES, size=n)
    clouds = np.stack([sample_surface(kind, NUM_POINTS) for kind in labels])
    return clouds, labels.astype('int64')[:, None]


# --- data.py -------------------------------------------------------------------------------------------
def translate_pointcloud(pointcloud):
    xyz1 = np.random.uniform(low=2. / 3., high=3. / 2., size=[3])
    xyz2 = np.random.uniform(low=-0.2, high=0.2, size=[3])

    translated_pointcloud = np.add(np.multiply(pointcloud, xyz1), xyz2).astype('float32')
    return translated_pointcloud


class ModelNet40(Dataset):
    def __init__(self, num_points, partition='train', data=None):
        self.data, self.label = data
        self.num_points = num_points
        self.partition = partition

    def __getitem__(self, item):
        pointcloud = self.data[item][:self.num_points]
        label = self.label[item]
        if self.partition == 'train':
            pointcloud = translate_pointcloud(pointcloud)
            np.random.shuffle(pointcloud)
        return pointcloud, label

    def __len__(self):
        return self.data.shape[0]


# --- model.py ------------------------------------------------------------------------------------------
def knn(x, k):
    inner = -2 * torch.matmul(x.transpose(2, 1), x)
    xx = torch.sum(x ** 2, dim=1, keepdim=True)
    pairwise_distance = -xx - inner - xx.transpose(2, 1)

    idx = pairwise_distance.topk(k=k, dim=-1)[1]   # (batch_size, num_points, k)
    return idx


def get_graph_feature(x, k=20, idx=None):
    batch_size = x.size(0)
    num_points = x.size(2)
    x = x.view(batch_size, -1, num_points)
    if idx is None:
        idx = knn(x, k=k)   # (batch_size, num_points, k)
    device = x.device

    idx_base = torch.arange(0, batch_size, device=device).view(-1, 1, 1) * num_points

    idx = idx + idx_base

    idx = idx.view(-1)

    _, num_dims, _ = x.size()

    x = x.transpose(2, 1).contiguous()   # (batch_size, num_points, num_dims)  -> (batch_size*num_points, num_dims) #   batch_size * num_points * k + range(0, batch_size*num_points)
    feature = x.view(batch_size * num_points, -1)[idx, :]
    feature = feature.view(batch_size, num_points, k, num_dims)
    x = x.view(batch_size, num_points, 1, num_dims).repeat(1, 1, k, 1)

    feature = torch.cat((feature - x, x), dim=3).permute(0, 3, 1, 2).contiguous()

    return feature


class DGCNN(nn.Module):
    def __init__(self, args, output_channels=40):
        super().__init__()
        self.args = args
        self.k = args.k

        self.bn1 = nn.BatchNorm2d(16)
        self.bn2 = nn.BatchNorm2d(16)
        self.bn3 = nn.BatchNorm2d(32)
        self.bn4 = nn.BatchNorm2d(32)
        self.bn5 = nn.BatchNorm1d(args.emb_dims)

        self.conv1 = nn.Sequential(nn.Conv2d(6, 16, kernel_size=1, bias=False),
                                   self.bn1,
                                   nn.LeakyReLU(negative_slope=0.2))
        self.conv2 = nn.Sequential(nn.Conv2d(16 * 2, 16, kernel_size=1, bias=False),
                                   self.bn2,
                                   nn.LeakyReLU(negative_slope=0.2))
        self.conv3 = nn.Sequential(nn.Conv2d(16 * 2, 32, kernel_size=1, bias=False),
                                   self.bn3,
                                   nn.LeakyReLU(negative_slope=0.2))
        self.conv4 = nn.Sequential(nn.Conv2d(32 * 2, 32, kernel_size=1, bias=False),
                                   self.bn4,
                                   nn.LeakyReLU(negative_slope=0.2))
        self.conv5 = nn.Sequential(nn.Conv1d(96, args.emb_dims, kernel_size=1, bias=False),
                                   self.bn5,
                                   nn.LeakyReLU(negative_slope=0.2))
        self.linear1 = nn.Linear(args.emb_dims * 2, 64, bias=False)
        self.bn6 = nn.BatchNorm1d(64)
        self.dp1 = nn.Dropout(p=args.dropout)
        self.linear2 = nn.Linear(64, 32)
        self.bn7 = nn.BatchNorm1d(32)
        self.dp2 = nn.Dropout(p=args.dropout)
        self.linear3 = nn.Linear(32, output_channels)

    def forward(self, x):
        batch_size = x.size(0)
        x = get_graph_feature(x, k=self.k)
        x = self.conv1(x)
        x1 = x.max(dim=-1, keepdim=False)[0]

        x = get_graph_feature(x1, k=self.k)
        x = self.conv2(x)
        x2 = x.max(dim=-1, keepdim=False)[0]

        x = get_graph_feature(x2, k=self.k)
        x = self.conv3(x)
        x3 = x.max(dim=-1, keepdim=False)[0]

        x = get_graph_feature(x3, k=self.k)
        x = self.conv4(x)
        x4 = x.max(dim=-1, keepdim=False)[0]

        x = torch.cat((x1, x2, x3, x4), dim=1)

        x = self.conv5(x)
        x1 = F.adaptive_max_pool1d(x, 1).view(batch_size, -1)
        x2 = F.adaptive_avg_pool1d(x, 1).view(batch_size, -1)
        x = torch.cat((x1, x2), 1)

        x = F.leaky_relu(self.bn6(self.linear1(x)), negative_slope=0.2)
        x = self.dp1(x)
        x = F.leaky_relu(self.bn7(self.linear2(x)), negative_slope=0.2)
        x = self.dp2(x)
        x = self.linear3(x)
        return x


# --- util.py -------------------------------------------------------------------------------------------
def cal_loss(pred, gold, smoothing=True):
    ''' Calculate cross entropy loss, apply label smoothing if needed. '''

    gold = gold.contiguous().view(-1)

    if smoothing:
        eps = 0.2
        n_class = pred.size(1)

        one_hot = torch.zeros_like(pred).scatter(1, gold.view(-1, 1), 1)
        one_hot = one_hot * (1 - eps) + (1 - one_hot) * eps / (n_class - 1)
        log_prb = F.log_softmax(pred, dim=1)

        loss = -(one_hot * log_prb).sum(dim=1).mean()
    else:
        loss = F.cross_entropy(pred, gold, reduction='mean')

    return loss


# --- main.py, shrunk -----------------------------------------------------------------------------------
class Args:
    k = 8
    emb_dims = 64
    dropout = 0.5
    lr = 0.001
    momentum = 0.9
    epochs = 5
    batch_size = 16
    test_batch_size = 16


args = Args()

# the building blocks on a small batch first
probe = torch.randn(2, 3, 10)
idx = knn(probe, k=4)
dist = torch.cdist(probe.transpose(2, 1), probe.transpose(2, 1))
print(f"knn idx {tuple(idx.shape)} {idx.dtype}, self is the nearest {bool((idx[..., 0] == torch.arange(10)).all())}, "
      f"same sets as cdist {bool((idx.sort(-1)[0] == dist.topk(4, dim=-1, largest=False)[1].sort(-1)[0]).all())}")
graph = get_graph_feature(probe, k=4)
print(f"graph feature {tuple(graph.shape)}, centre half repeats x {torch.equal(graph[:, 3:, :, 0], probe)}, "
      f"contiguous {graph.is_contiguous()}")
pred_probe, gold_probe = torch.randn(6, NUM_CLASSES), torch.randint(0, NUM_CLASSES, (6,))
smoothed = cal_loss(pred_probe, gold_probe)
torch_smoothing = F.cross_entropy(pred_probe, gold_probe, label_smoothing=0.2 * NUM_CLASSES / (NUM_CLASSES - 1))
print(f"cal_loss equals cross_entropy with the matching label_smoothing {torch.allclose(smoothed, torch_smoothing, atol=1e-6)}")

train_loader = DataLoader(ModelNet40(partition='train', num_points=NUM_POINTS, data=load_data(160)),
                          num_workers=0, batch_size=args.batch_size, shuffle=True, drop_last=True)
test_loader = DataLoader(ModelNet40(partition='test', num_points=NUM_POINTS, data=load_data(64)),
                         num_workers=0, batch_size=args.test_batch_size, shuffle=True, drop_last=False)

device = torch.device("cpu")
model = DGCNN(args, output_channels=NUM_CLASSES).to(device)
model = nn.DataParallel(model)
print(f"Let's use {torch.cuda.device_count()} GPUs! wrapped {type(model.module).__name__}, "
      f"parameters {sum(p.numel() for p in model.parameters())}, first key {next(iter(model.state_dict()))}")

opt = optim.SGD(model.parameters(), lr=args.lr * 100, momentum=args.momentum, weight_decay=1e-4)
scheduler = CosineAnnealingLR(opt, args.epochs, eta_min=args.lr)
criterion = cal_loss

for epoch in range(args.epochs):
    ####################
    # Train
    ####################
    train_loss = 0.0
    count = 0.0
    model.train()
    train_pred = []
    train_true = []
    for data, label in train_loader:
        data, label = data.to(device), label.to(device).squeeze()
        data = data.permute(0, 2, 1)
        batch_size = data.size()[0]
        opt.zero_grad()
        logits = model(data)
        loss = criterion(logits, label)
        loss.backward()
        opt.step()
        preds = logits.max(dim=1)[1]
        count += batch_size
        train_loss += loss.item() * batch_size
        train_true.append(label.cpu().numpy())
        train_pred.append(preds.detach().cpu().numpy())
    scheduler.step()
    train_true = np.concatenate(train_true)
    train_pred = np.concatenate(train_pred)
    outstr = 'Train %d, loss: %.6f, train acc: %.6f, train avg acc: %.6f' % (
        epoch, train_loss * 1.0 / count, metrics.accuracy_score(train_true, train_pred),
        metrics.balanced_accuracy_score(train_true, train_pred))
    print(outstr)

    ####################
    # Test
    ####################
    test_loss = 0.0
    count = 0.0
    model.eval()
    test_pred = []
    test_true = []
    for data, label in test_loader:
        data, label = data.to(device), label.to(device).squeeze()
        data = data.permute(0, 2, 1)
        batch_size = data.size()[0]
        logits = model(data)
        loss = criterion(logits, label)
        preds = logits.max(dim=1)[1]
        count += batch_size
        test_loss += loss.item() * batch_size
        test_true.append(label.cpu().numpy())
        test_pred.append(preds.detach().cpu().numpy())
    test_true = np.concatenate(test_true)
    test_pred = np.concatenate(test_pred)
    test_acc = metrics.accuracy_score(test_true, test_pred)
    avg_per_class_acc = metrics.balanced_accuracy_score(test_true, test_pred)
    outstr = 'Test %d, loss: %.6f, test acc: %.6f, test avg acc: %.6f' % (
        epoch, test_loss * 1.0 / count, test_acc, avg_per_class_acc)
    print(outstr)

print(f"FINAL train_loss={train_loss * 1.0 / len(train_true):.4f} "
      f"test_loss={test_loss * 1.0 / count:.4f} test_acc={test_acc:.4f} test_avg_acc={avg_per_class_acc:.4f}")
