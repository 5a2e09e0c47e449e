"""fxia22/pointnet.pytorch (pointnet/model.py, utils/train_classification.py, dataset.py) on small
synthetic shapes: ``STN3d``/``STNkd`` with ``Conv1d(k, 64, 1)`` + ``BatchNorm1d``,
``torch.max(x, 2, keepdim=True)[0]``, ``x.view(-1, 1024)``, the identity added as
``torch.from_numpy(np.array([1,0,0,0,1,0,0,0,1]).astype(np.float32)).view(1, 9).repeat(batchsize, 1)``
inside ``Variable``, ``torch.bmm`` on ``x.transpose(2, 1)``, the feature-transform regulariser
``torch.mean(torch.norm(torch.bmm(trans, trans.transpose(2, 1)) - I, dim=(1, 2)))`` with
``I = torch.eye(d)[None, :, :]``, ``F.log_softmax(x, dim=1)`` + ``F.nll_loss``, ``pred.data.max(1)[1]``,
``pred_choice.eq(target.data).cpu().sum()``, ``target[:, 0]``, a dataset that centres, scales and
randomly rotates (about the up axis) and jitters each cloud in NumPy, ``StepLR``, and the
segmentation head's ``x.transpose(2, 1).contiguous()`` + ``log_softmax(x.view(-1, k), dim=-1)``.
"""

from __future__ import print_function  # noqa: UP010  (the repo's own line)

import os
import random

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.parallel
import torch.optim as optim
import torch.utils.data
from torch.autograd import Variable

manualSeed = int(os.environ.get("PROGRAM_SEED", "0"))
print("Random Seed: ", "set")
random.seed(manualSeed)
np.random.seed(manualSeed)
torch.manual_seed(manualSeed)

batchSize = 16
npoints = 64
nepoch = 5
feature_transform = True
SHAPES = ["sphere", "cube", "cone"]


# ---------------------------------------------------------------- model.py
class STN3d(nn.Module):
    def __init__(self):
        super(STN3d, self).__init__()  # noqa: UP008  (the repo's spelling)
        self.conv1 = torch.nn.Conv1d(3, 64, 1)
        self.conv2 = torch.nn.Conv1d(64, 128, 1)
        self.conv3 = torch.nn.Conv1d(128, 1024, 1)
        self.fc1 = nn.Linear(1024, 512)
        self.fc2 = nn.Linear(512, 256)
        self.fc3 = nn.Linear(256, 9)
        self.relu = nn.ReLU()

        self.bn1 = nn.BatchNorm1d(64)
        self.bn2 = nn.BatchNorm1d(128)
        self.bn3 = nn.BatchNorm1d(1024)
        self.bn4 = nn.BatchNorm1d(512)
        self.bn5 = nn.BatchNorm1d(256)

    def forward(self, x):
        batchsize = x.size()[0]
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        x = torch.max(x, 2, keepdim=True)[0]
        x = x.view(-1, 1024)

        x = F.relu(self.bn4(self.fc1(x)))
        x = F.relu(self.bn5(self.fc2(x)))
        x = self.fc3(x)

        iden = Variable(torch.from_numpy(np.array([1, 0, 0, 0, 1, 0, 0, 0, 1]).astype(np.float32))).view(1, 9).repeat(batchsize, 1)
        if x.is_cuda:
            iden = iden.cuda()
        x = x + iden
        x = x.view(-1, 3, 3)
        return x


class STNkd(nn.Module):
    def __init__(self, k=64):
        super(STNkd, self).__init__()  # noqa: UP008  (the repo's spelling)
        self.conv1 = torch.nn.Conv1d(k, 64, 1)
        self.conv2 = torch.nn.Conv1d(64, 128, 1)
        self.conv3 = torch.nn.Conv1d(128, 1024, 1)
        self.fc1 = nn.Linear(1024, 512)
        self.fc2 = nn.Linear(512, 256)
        self.fc3 = nn.Linear(256, k * k)
        self.relu = nn.ReLU()

        self.bn1 = nn.BatchNorm1d(64)
        self.bn2 = nn.BatchNorm1d(128)
        self.bn3 = nn.BatchNorm1d(1024)
        self.bn4 = nn.BatchNorm1d(512)
        self.bn5 = nn.BatchNorm1d(256)

        self.k = k

    def forward(self, x):
        batchsize = x.size()[0]
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        x = torch.max(x, 2, keepdim=True)[0]
        x = x.view(-1, 1024)

        x = F.relu(self.bn4(self.fc1(x)))
        x = F.relu(self.bn5(self.fc2(x)))
        x = self.fc3(x)

        iden = Variable(torch.from_numpy(np.eye(self.k).flatten().astype(np.float32))).view(1, self.k * self.k).repeat(batchsize, 1)
        if x.is_cuda:
            iden = iden.cuda()
        x = x + iden
        x = x.view(-1, self.k, self.k)
        return x


class PointNetfeat(nn.Module):
    def __init__(self, global_feat=True, feature_transform=False):
        super(PointNetfeat, self).__init__()  # noqa: UP008  (the repo's spelling)
        self.stn = STN3d()
        self.conv1 = torch.nn.Conv1d(3, 64, 1)
        self.conv2 = torch.nn.Conv1d(64, 128, 1)
        self.conv3 = torch.nn.Conv1d(128, 1024, 1)
        self.bn1 = nn.BatchNorm1d(64)
        self.bn2 = nn.BatchNorm1d(128)
        self.bn3 = nn.BatchNorm1d(1024)
        self.global_feat = global_feat
        self.feature_transform = feature_transform
        if self.feature_transform:
            self.fstn = STNkd(k=64)

    def forward(self, x):
        n_pts = x.size()[2]
        trans = self.stn(x)
        x = x.transpose(2, 1)
        x = torch.bmm(x, trans)
        x = x.transpose(2, 1)
        x = F.relu(self.bn1(self.conv1(x)))

        if self.feature_transform:
            trans_feat = self.fstn(x)
            x = x.transpose(2, 1)
            x = torch.bmm(x, trans_feat)
            x = x.transpose(2, 1)
        else:
            trans_feat = None

        pointfeat = x
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.bn3(self.conv3(x))
        x = torch.max(x, 2, keepdim=True)[0]
        x = x.view(-1, 1024)
        if self.global_feat:
            return x, trans, trans_feat
        else:
            x = x.view(-1, 1024, 1).repeat(1, 1, n_pts)
            return torch.cat([x, pointfeat], 1), trans, trans_feat


class PointNetCls(nn.Module):
    def __init__(self, k=2, feature_transform=False):
        super(PointNetCls, self).__init__()  # noqa: UP008  (the repo's spelling)
        self.feature_transform = feature_transform
        self.feat = PointNetfeat(global_feat=True, feature_transform=feature_transform)
        self.fc1 = nn.Linear(1024, 512)
        self.fc2 = nn.Linear(512, 256)
        self.fc3 = nn.Linear(256, k)
        self.dropout = nn.Dropout(p=0.3)
        self.bn1 = nn.BatchNorm1d(512)
        self.bn2 = nn.BatchNorm1d(256)
        self.relu = nn.ReLU()

    def forward(self, x):
        x, trans, trans_feat = self.feat(x)
        x = F.relu(self.bn1(self.fc1(x)))
        x = F.relu(self.bn2(self.dropout(self.fc2(x))))
        x = self.fc3(x)
        return F.log_softmax(x, dim=1), trans, trans_feat


class PointNetDenseCls(nn.Module):
    def __init__(self, k=2, feature_transform=False):
        super(PointNetDenseCls, self).__init__()  # noqa: UP008  (the repo's spelling)
        self.k = k
        self.feature_transform = feature_transform
        self.feat = PointNetfeat(global_feat=False, feature_transform=feature_transform)
        self.conv1 = torch.nn.Conv1d(1088, 512, 1)
        self.conv2 = torch.nn.Conv1d(512, 256, 1)
        self.conv3 = torch.nn.Conv1d(256, 128, 1)
        self.conv4 = torch.nn.Conv1d(128, self.k, 1)
        self.bn1 = nn.BatchNorm1d(512)
        self.bn2 = nn.BatchNorm1d(256)
        self.bn3 = nn.BatchNorm1d(128)

    def forward(self, x):
        batchsize = x.size()[0]
        n_pts = x.size()[2]
        x, trans, trans_feat = self.feat(x)
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        x = self.conv4(x)
        x = x.transpose(2, 1).contiguous()
        x = F.log_softmax(x.view(-1, self.k), dim=-1)
        x = x.view(batchsize, n_pts, self.k)
        return x, trans, trans_feat


def feature_transform_regularizer(trans):
    d = trans.size()[1]
    batchsize = trans.size()[0]  # noqa: F841  (the repo's own line)
    I = torch.eye(d)[None, :, :]
    if trans.is_cuda:
        I = I.cuda()
    loss = torch.mean(torch.norm(torch.bmm(trans, trans.transpose(2, 1)) - I, dim=(1, 2)))
    return loss


# ---------------------------------------------------------------- dataset.py
def sample_shape(rng, cls, n):
    """n points on the surface of a unit shape, stretched at random."""
    if cls == 0:  # sphere
        p = rng.normal(size=(n, 3))
        p /= np.linalg.norm(p, axis=1, keepdims=True)
    elif cls == 1:  # cube
        p = rng.uniform(-1, 1, size=(n, 3))
        face = rng.randint(0, 3, size=n)
        p[np.arange(n), face] = rng.choice([-1.0, 1.0], size=n)
    else:  # cone, apex up
        t = rng.uniform(0, 2 * np.pi, size=n)
        h = rng.uniform(0, 1, size=n)
        p = np.stack([(1 - h) * np.cos(t), 2 * h - 1, (1 - h) * np.sin(t)], axis=1)
    return p * rng.uniform(0.9, 1.1, size=(1, 3))


class ShapeDataset(torch.utils.data.Dataset):
    def __init__(self, size, npoints=2500, split='train', data_augmentation=True, seed=0):
        self.npoints = npoints
        self.split = split
        self.data_augmentation = data_augmentation
        rng = np.random.RandomState(seed)
        self.classes = dict(zip(SHAPES, range(len(SHAPES))))
        self.datapath = [(SHAPES[i % len(SHAPES)], sample_shape(rng, i % len(SHAPES), npoints * 2).astype(np.float32))
                         for i in range(size)]

    def __getitem__(self, index):
        fn = self.datapath[index]
        cls = self.classes[fn[0]]
        point_set = fn[1]

        choice = np.random.choice(len(point_set), self.npoints, replace=True)
        # resample
        point_set = point_set[choice, :]

        point_set = point_set - np.expand_dims(np.mean(point_set, axis=0), 0)  # center
        dist = np.max(np.sqrt(np.sum(point_set ** 2, axis=1)), 0)
        point_set = point_set / dist  # scale

        if self.data_augmentation:
            theta = np.random.uniform(0, np.pi * 2)
            rotation_matrix = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
            point_set[:, [0, 2]] = point_set[:, [0, 2]].dot(rotation_matrix)  # random rotation
            point_set += np.random.normal(0, 0.02, size=point_set.shape)  # random jitter

        point_set = torch.from_numpy(point_set.astype(np.float32))
        cls = torch.from_numpy(np.array([cls]).astype(np.int64))
        return point_set, cls

    def __len__(self):
        return len(self.datapath)


# ---------------------------------------------------------------- train_classification.py
dataset = ShapeDataset(size=96, npoints=npoints, seed=manualSeed)
test_dataset = ShapeDataset(size=48, npoints=npoints, split='test', data_augmentation=False, seed=manualSeed + 100)
dataloader = torch.utils.data.DataLoader(dataset, batch_size=batchSize, shuffle=True, num_workers=0)
testdataloader = torch.utils.data.DataLoader(test_dataset, batch_size=batchSize, shuffle=True, num_workers=0)

print(len(dataset), len(test_dataset))
num_classes = len(dataset.classes)
print('classes', num_classes)

classifier = PointNetCls(k=num_classes, feature_transform=feature_transform)
optimizer = optim.Adam(classifier.parameters(), lr=0.001, betas=(0.9, 0.999))
scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)

num_batch = len(dataset) / batchSize
print('parameters', sum(p.numel() for p in classifier.parameters()))

points, target = next(iter(dataloader))
print('batch', tuple(points.shape), points.dtype, tuple(target.shape), target.dtype)
with torch.no_grad():
    trans = classifier.feat.stn(points.transpose(2, 1))
print('stn', tuple(trans.shape), trans.dtype)

for epoch in range(nepoch):
    epoch_loss, epoch_correct = 0.0, 0
    for i, data in enumerate(dataloader, 0):
        points, target = data
        target = target[:, 0]
        points = points.transpose(2, 1)
        optimizer.zero_grad()
        classifier = classifier.train()
        pred, trans, trans_feat = classifier(points)
        loss = F.nll_loss(pred, target)
        if feature_transform:
            loss += feature_transform_regularizer(trans_feat) * 0.001
        loss.backward()
        optimizer.step()
        pred_choice = pred.data.max(1)[1]
        correct = pred_choice.eq(target.data).cpu().sum()
        epoch_loss += loss.item()
        epoch_correct += correct.item()
        if i == len(dataloader) - 1:
            print('[%d: %d/%d] train loss: %f accuracy: %f' % (epoch, i, num_batch, loss.item(), correct.item() / float(batchSize)))  # noqa: UP031
    scheduler.step()

total_correct = 0
total_testset = 0
test_loss = 0.0
classifier = classifier.eval()
for i, data in enumerate(testdataloader, 0):  # noqa: B007  (the script's own loop)
    points, target = data
    target = target[:, 0]
    points = points.transpose(2, 1)
    with torch.no_grad():
        pred, _, trans_feat = classifier(points)
    test_loss += F.nll_loss(pred, target, reduction='sum').item()
    pred_choice = pred.data.max(1)[1]
    correct = pred_choice.eq(target.data).cpu().sum()
    total_correct += correct.item()
    total_testset += points.size()[0]
reg = feature_transform_regularizer(trans_feat).item()
print("final accuracy {}".format(total_correct / float(total_testset)))  # noqa: UP032

# the segmentation head of the same repo, one forward pass
seg = PointNetDenseCls(k=3, feature_transform=True).eval()
with torch.no_grad():
    seg_pred, _, _ = seg(points)
print('seg', tuple(seg_pred.shape), 'probabilities sum to one',
      bool(torch.allclose(seg_pred.exp().sum(2), torch.ones(seg_pred.shape[:2]), atol=1e-5)))

print(f"FINAL train_loss={epoch_loss / len(dataloader):.4f} train_acc={epoch_correct / len(dataset):.4f} "
      f"test_acc={total_correct / float(total_testset):.4f} test_loss={test_loss / total_testset:.4f} reg={reg:.4f}")
