"""Margin softmax heads for face recognition (ArcFace, CosFace, SphereFace) and center loss, in the layout
of ronghuaiyang/arcface-pytorch (``models/metrics.py``, ``test.py``), deepinsight/insightface
(``recognition/arcface_torch/losses.py``) and KaiyangZhou/pytorch-center-loss, on a synthetic embedding task.

Each identity is a random prototype in a 32-d "image feature" space; its samples are the prototype seen
through a random per-sample distortion plus noise. A small backbone (``Linear``/``BatchNorm1d``/``PReLU``
ending in a ``BatchNorm1d`` feature layer, as insightface's ``features``) is trained on 10 identities with
each head from the same initial weights:

* ``ArcMarginProduct``: ``F.linear(F.normalize(input), F.normalize(self.weight))``, ``sine =
  torch.sqrt((1.0 - torch.pow(cosine, 2)).clamp(0, 1))``, ``phi = cosine * cos_m - sine * sin_m``,
  ``torch.where(cosine > th, phi, cosine - mm)`` (and ``easy_margin``'s ``torch.where(cosine > 0, phi,
  cosine)``), ``one_hot = torch.zeros(cosine.size()); one_hot.scatter_(1, label.view(-1, 1).long(), 1)``,
  ``output *= self.s``, trained with the repository's ``FocalLoss(gamma=2)``;
* ``AddMarginProduct`` (CosFace) ``phi = cosine - self.m``;
* ``SphereProduct`` (A-Softmax): the ``mlambda`` Chebyshev table, ``(self.m * theta / 3.14159265).floor()``,
  ``((-1.0) ** k) * cos_m_theta - 2 * k``, ``torch.norm(input, 2, 1)`` and the annealed ``lamb``;
* a plain ``nn.Linear`` softmax with ``CenterLoss`` (``distmat.addmm_(x, self.centers.t(), beta=1,
  alpha=-2)``, ``labels.eq(classes.expand(...))``, ``clamp(min=1e-12, max=1e+12)``) on its own SGD whose
  gradients are rescaled by ``param.grad.data *= (1. / weight_cent)``.

The models are then evaluated as ``test.py`` does: features of held-out *unseen* identities, cosine
scores of same/different pairs, and ``cal_accuracy``'s threshold sweep.

Checked: verification accuracy of every head on unseen identities, computed in torch (a vectorised
threshold sweep over ``F.cosine_similarity`` scores, first best threshold by ``argmax``) and equal to the
NumPy loop over ``cosin_metric`` scores; insightface's ``ArcFace`` (logits ``clamp(-1, 1)``, target logits
picked by ``logits[index, labels[index].view(-1)]`` and written back in place) equal to
``ArcMarginProduct`` in output and in the gradient it sends back; the center loss's ``addmm_`` distances
equal ``torch.cdist(x, centers) ** 2``; the SphereFace table equal to ``torch.cos(m * torch.acos(x))``.
"""

# ruff: noqa: UP008  (the repositories' own spelling: super(Class, self))

import copy
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn import Parameter

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

IN_DIM, EMB_DIM = 32, 16
N_TRAIN_IDS, N_TEST_IDS = 10, 6
PER_ID = 40


# ---------------------------------------------------------------------------------- data
def make_identities(n_ids, per_id):
    protos = torch.randn(n_ids, IN_DIM)
    xs, ys = [], []
    for i in range(n_ids):
        distort = torch.eye(IN_DIM) + 0.35 * torch.randn(per_id, IN_DIM, IN_DIM) / math.sqrt(IN_DIM)
        x = torch.bmm(distort, protos[i].expand(per_id, IN_DIM).unsqueeze(-1)).squeeze(-1)
        xs.append(x + 0.6 * torch.randn(per_id, IN_DIM))
        ys.append(torch.full((per_id,), i, dtype=torch.long))
    return torch.cat(xs), torch.cat(ys)


train_x, train_y = make_identities(N_TRAIN_IDS, PER_ID)
test_x, test_y = make_identities(N_TEST_IDS, 20)


def make_pairs(labels, n_pairs, rng):
    same, diff = [], []
    n = len(labels)
    while len(same) < n_pairs // 2 or len(diff) < n_pairs // 2:
        i, j = rng.randint(0, n, size=2)
        if i == j:
            continue
        if labels[i] == labels[j] and len(same) < n_pairs // 2:
            same.append((i, j, 1))
        elif labels[i] != labels[j] and len(diff) < n_pairs // 2:
            diff.append((i, j, 0))
    return same + diff


pairs = make_pairs(test_y.numpy(), 240, np.random.RandomState(seed))


# ------------------------------------------------------------------------------ backbone
class Backbone(nn.Module):
    def __init__(self):
        super(Backbone, self).__init__()
        self.body = nn.Sequential(
            nn.Linear(IN_DIM, 64, bias=False), nn.BatchNorm1d(64), nn.PReLU(64),
            nn.Linear(64, 64, bias=False), nn.BatchNorm1d(64), nn.PReLU(64),
        )
        self.fc = nn.Linear(64, EMB_DIM, bias=False)
        self.features = nn.BatchNorm1d(EMB_DIM, eps=1e-05)

    def forward(self, x):
        return self.features(self.fc(self.body(x)))


# ------------------------------------------------------------------- metrics.py heads
class ArcMarginProduct(nn.Module):
    r"""Implement of large margin arc distance: :
        Args:
            in_features: size of each input sample
            out_features: size of each output sample
            s: norm of input feature
            m: margin

            cos(theta + m)
        """

    def __init__(self, in_features, out_features, s=30.0, m=0.50, easy_margin=False):
        super(ArcMarginProduct, self).__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.s = s
        self.m = m
        self.weight = Parameter(torch.FloatTensor(out_features, in_features))
        nn.init.xavier_uniform_(self.weight)

        self.easy_margin = easy_margin
        self.cos_m = math.cos(m)
        self.sin_m = math.sin(m)
        self.th = math.cos(math.pi - m)
        self.mm = math.sin(math.pi - m) * m

    def forward(self, input, label):
        # --------------------------- cos(theta) & phi(theta) ---------------------------
        cosine = F.linear(F.normalize(input), F.normalize(self.weight))
        sine = torch.sqrt((1.0 - torch.pow(cosine, 2)).clamp(0, 1))
        phi = cosine * self.cos_m - sine * self.sin_m
        if self.easy_margin:
            phi = torch.where(cosine > 0, phi, cosine)
        else:
            phi = torch.where(cosine > self.th, phi, cosine - self.mm)
        # --------------------------- convert label to one-hot ---------------------------
        one_hot = torch.zeros(cosine.size())
        one_hot.scatter_(1, label.view(-1, 1).long(), 1)
        # -------------torch.where(out_i = {x_i if condition_i else y_i) -------------
        output = (one_hot * phi) + ((1.0 - one_hot) * cosine)
        output *= self.s
        return output


class AddMarginProduct(nn.Module):
    r"""Implement of large margin cosine distance: :
    Args:
        in_features: size of each input sample
        out_features: size of each output sample
        s: norm of input feature
        m: margin
        cos(theta) - m
    """

    def __init__(self, in_features, out_features, s=30.0, m=0.40):
        super(AddMarginProduct, self).__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.s = s
        self.m = m
        self.weight = Parameter(torch.FloatTensor(out_features, in_features))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, input, label):
        cosine = F.linear(F.normalize(input), F.normalize(self.weight))
        phi = cosine - self.m
        one_hot = torch.zeros(cosine.size())
        one_hot.scatter_(1, label.view(-1, 1).long(), 1)
        output = (one_hot * phi) + ((1.0 - one_hot) * cosine)
        output *= self.s
        return output

    def __repr__(self):
        return self.__class__.__name__ + '(' \
               + 'in_features=' + str(self.in_features) \
               + ', out_features=' + str(self.out_features) \
               + ', s=' + str(self.s) \
               + ', m=' + str(self.m) + ')'


class SphereProduct(nn.Module):
    r"""Implement of large margin cosine distance: :
    Args:
        in_features: size of each input sample
        out_features: size of each output sample
        m: margin
        cos(m*theta)
    """

    def __init__(self, in_features, out_features, m=4):
        super(SphereProduct, self).__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.m = m
        self.base = 1000.0
        self.gamma = 0.12
        self.power = 1
        self.LambdaMin = 5.0
        self.iter = 0
        self.weight = Parameter(torch.FloatTensor(out_features, in_features))
        nn.init.xavier_uniform_(self.weight)

        # duplication formula
        self.mlambda = [
            lambda x: x ** 0,
            lambda x: x ** 1,
            lambda x: 2 * x ** 2 - 1,
            lambda x: 4 * x ** 3 - 3 * x,
            lambda x: 8 * x ** 4 - 8 * x ** 2 + 1,
            lambda x: 16 * x ** 5 - 20 * x ** 3 + 5 * x
        ]

    def forward(self, input, label):
        # lambda = max(lambda_min,base*(1+gamma*iteration)^(-power))
        self.iter += 1
        self.lamb = max(self.LambdaMin, self.base * (1 + self.gamma * self.iter) ** (-1 * self.power))

        # --------------------------- cos(theta) & phi(theta) ---------------------------
        cos_theta = F.linear(F.normalize(input), F.normalize(self.weight))
        cos_theta = cos_theta.clamp(-1, 1)
        cos_m_theta = self.mlambda[self.m](cos_theta)
        theta = cos_theta.data.acos()
        k = (self.m * theta / 3.14159265).floor()
        phi_theta = ((-1.0) ** k) * cos_m_theta - 2 * k
        NormOfFeature = torch.norm(input, 2, 1)

        # --------------------------- convert label to one-hot ---------------------------
        one_hot = torch.zeros(cos_theta.size())
        one_hot.scatter_(1, label.view(-1, 1), 1)

        # --------------------------- Calculate output ---------------------------
        output = (one_hot * (phi_theta - cos_theta) / (1 + self.lamb)) + cos_theta
        output *= NormOfFeature.view(-1, 1)
        return output


class FocalLoss(nn.Module):

    def __init__(self, gamma=0, eps=1e-7):
        super(FocalLoss, self).__init__()
        self.gamma = gamma
        self.eps = eps
        self.ce = torch.nn.CrossEntropyLoss()

    def forward(self, input, target):
        logp = self.ce(input, target)
        p = torch.exp(-logp)
        loss = (1 - p) ** self.gamma * logp
        return loss.mean()


# ---------------------------------------------------------------- insightface's ArcFace
class ArcFace(torch.nn.Module):
    """ArcFace (https://arxiv.org/pdf/1801.07698v1.pdf), applied to cosine logits."""

    def __init__(self, s=64.0, margin=0.5):
        super(ArcFace, self).__init__()
        self.scale = s
        self.margin = margin
        self.cos_m = math.cos(margin)
        self.sin_m = math.sin(margin)
        self.theta = math.cos(math.pi - margin)
        self.sinmm = math.sin(math.pi - margin) * margin
        self.easy_margin = False

    def forward(self, logits: torch.Tensor, labels: torch.Tensor):
        index = torch.where(labels != -1)[0]
        target_logit = logits[index, labels[index].view(-1)]

        sin_theta = torch.sqrt(1.0 - torch.pow(target_logit, 2))
        cos_theta_m = target_logit * self.cos_m - sin_theta * self.sin_m  # cos(target+margin)
        if self.easy_margin:
            final_target_logit = torch.where(target_logit > 0, cos_theta_m, target_logit)
        else:
            final_target_logit = torch.where(target_logit > self.theta, cos_theta_m, target_logit - self.sinmm)

        logits[index, labels[index].view(-1)] = final_target_logit
        logits = logits * self.scale
        return logits


# ---------------------------------------------------------------------------- center loss
class CenterLoss(nn.Module):
    """Center loss.

    Reference:
    Wen et al. A Discriminative Feature Learning Approach for Deep Face Recognition. ECCV 2016.
    """

    def __init__(self, num_classes=10, feat_dim=2):
        super(CenterLoss, self).__init__()
        self.num_classes = num_classes
        self.feat_dim = feat_dim
        self.centers = nn.Parameter(torch.randn(self.num_classes, self.feat_dim))

    def forward(self, x, labels):
        batch_size = x.size(0)
        distmat = torch.pow(x, 2).sum(dim=1, keepdim=True).expand(batch_size, self.num_classes) + \
            torch.pow(self.centers, 2).sum(dim=1, keepdim=True).expand(self.num_classes, batch_size).t()
        distmat.addmm_(x, self.centers.t(), beta=1, alpha=-2)

        classes = torch.arange(self.num_classes).long()
        labels = labels.unsqueeze(1).expand(batch_size, self.num_classes)
        mask = labels.eq(classes.expand(batch_size, self.num_classes))

        dist = distmat * mask.float()
        loss = dist.clamp(min=1e-12, max=1e+12).sum() / batch_size
        return loss, distmat


# -------------------------------------------------------------------------- test.py
def cosin_metric(x1, x2):
    return np.dot(x1, x2) / (np.linalg.norm(x1) * np.linalg.norm(x2))


def cal_accuracy(y_score, y_true):
    y_score = np.asarray(y_score)
    y_true = np.asarray(y_true)
    best_acc = 0
    best_th = 0
    for i in range(len(y_score)):
        th = y_score[i]
        y_test = (y_score >= th)
        acc = np.mean((y_test == y_true).astype(int))
        if acc > best_acc:
            best_acc = acc
            best_th = th
    return (best_acc, best_th)


def verification_torch(features, pairs):
    i = torch.tensor([p[0] for p in pairs])
    j = torch.tensor([p[1] for p in pairs])
    y_true = torch.tensor([p[2] for p in pairs], dtype=torch.bool)
    scores = F.cosine_similarity(features[i], features[j], dim=1)
    predictions = scores.unsqueeze(0) >= scores.unsqueeze(1)  # row t: threshold scores[t]
    accs = (predictions == y_true.unsqueeze(0)).double().mean(dim=1)
    best = torch.argmax(accs)
    return accs[best].item(), scores[best].item(), scores


def verification_numpy(features, pairs):
    fe = features.numpy().astype(np.float64)
    sims = [cosin_metric(fe[a], fe[b]) for a, b, _ in pairs]
    labels = [lab for _, _, lab in pairs]
    acc, th = cal_accuracy(sims, labels)
    return acc, th, np.asarray(sims)


# ------------------------------------------------------------------------------- checks
x_chk = torch.randn(12, EMB_DIM, requires_grad=True)
y_chk = torch.randint(0, N_TRAIN_IDS, (12,))
arc = ArcMarginProduct(EMB_DIM, N_TRAIN_IDS, s=64.0, m=0.5)
out_a = arc(x_chk, y_chk)
(ga,) = torch.autograd.grad((out_a * torch.linspace(-1, 1, N_TRAIN_IDS)).sum(), x_chk)
logits = F.linear(F.normalize(x_chk), F.normalize(arc.weight)).clamp(-1, 1)
out_b = ArcFace(s=64.0, margin=0.5)(logits, y_chk)
(gb,) = torch.autograd.grad((out_b * torch.linspace(-1, 1, N_TRAIN_IDS)).sum(), x_chk)
arcface_routes_agree = torch.allclose(out_a, out_b, atol=1e-4) and torch.allclose(ga, gb, rtol=1e-4, atol=1e-5)
sphere = SphereProduct(EMB_DIM, N_TRAIN_IDS, m=4)
c = torch.linspace(-1, 1, 41)
sphere_table_agrees = torch.allclose(sphere.mlambda[4](c), torch.cos(4 * torch.acos(c)), atol=1e-5)
print(f"insightface ArcFace == ArcMarginProduct (output and grad): {arcface_routes_agree}; "
      f"SphereFace cos(4 theta) table: {sphere_table_agrees}")
print(AddMarginProduct(EMB_DIM, N_TRAIN_IDS, s=30.0, m=0.35))

# ----------------------------------------------------------------------------- training
base_backbone = Backbone()
heads = {
    "arcface": (ArcMarginProduct(EMB_DIM, N_TRAIN_IDS, s=30.0, m=0.5), FocalLoss(gamma=2)),
    "arcface_easy": (ArcMarginProduct(EMB_DIM, N_TRAIN_IDS, s=30.0, m=0.5, easy_margin=True), nn.CrossEntropyLoss()),
    "cosface": (AddMarginProduct(EMB_DIM, N_TRAIN_IDS, s=30.0, m=0.35), nn.CrossEntropyLoss()),
    "sphereface": (SphereProduct(EMB_DIM, N_TRAIN_IDS, m=4), nn.CrossEntropyLoss()),
    "softmax_center": (nn.Linear(EMB_DIM, N_TRAIN_IDS), nn.CrossEntropyLoss()),
}
weight_cent = 0.05
max_epoch, batch_size = 10, 40
results = {}
all_agree = arcface_routes_agree and sphere_table_agrees
for name, (metric_fc, criterion) in heads.items():
    model = copy.deepcopy(base_backbone)
    optimizer = torch.optim.SGD([{"params": model.parameters()}, {"params": metric_fc.parameters()}],
                                lr=0.1, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=7, gamma=0.1)
    if name == "softmax_center":
        criterion_cent = CenterLoss(num_classes=N_TRAIN_IDS, feat_dim=EMB_DIM)
        optimizer_centloss = torch.optim.SGD(criterion_cent.parameters(), lr=0.5)
    g = torch.Generator().manual_seed(seed)
    for epoch in range(max_epoch):
        model.train()
        perm = torch.randperm(len(train_x), generator=g)
        correct, total = 0, 0
        for start in range(0, len(train_x), batch_size):
            idx = perm[start:start + batch_size]
            data_input, label = train_x[idx], train_y[idx]
            feature = model(data_input)
            if name == "softmax_center":
                output = metric_fc(feature)
                loss_cent, distmat = criterion_cent(feature, label)
                loss = criterion(output, label) + weight_cent * loss_cent
                optimizer.zero_grad()
                optimizer_centloss.zero_grad()
                loss.backward()
                optimizer.step()
                # remove the impact of weight_cent in learning centers
                for param in criterion_cent.parameters():
                    param.grad.data *= (1. / weight_cent)
                optimizer_centloss.step()
            else:
                output = metric_fc(feature, label)
                loss = criterion(output, label)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            output = output.data.cpu().numpy()
            output = np.argmax(output, axis=1)
            correct += int(np.sum(output == label.data.cpu().numpy()))
            total += label.size(0)
        scheduler.step()
        if epoch == max_epoch // 2:
            print(f"{name} epoch {epoch} loss {loss.item():.4f} acc {correct / total:.3f}")
    train_acc = correct / total
    if name == "softmax_center":
        with torch.no_grad():
            _, distmat = criterion_cent(feature, label)
            cd = torch.cdist(feature, criterion_cent.centers) ** 2
        center_agree = torch.allclose(distmat.detach(), cd, rtol=1e-3, atol=1e-3)
        all_agree = all_agree and center_agree
        print(f"center loss addmm_ distances == cdist ** 2: {center_agree}")

    model.eval()
    with torch.no_grad():
        test_features = model(test_x)
    acc_t, th_t, scores_t = verification_torch(test_features, pairs)
    acc_n, th_n, scores_n = verification_numpy(test_features, pairs)
    agree = abs(acc_t - acc_n) < 1e-12 and abs(th_t - th_n) < 1e-5 and np.allclose(scores_t.numpy(), scores_n, atol=1e-5)
    all_agree = all_agree and agree
    results[name] = acc_t
    print(f"{name:15s} loss {loss.item():.4f} train acc {train_acc:.3f} lr {scheduler.get_last_lr()[0]:.4f} "
          f"verification acc {acc_t:.4f} (NumPy {acc_n:.4f}) threshold {th_t:.4f} (NumPy {th_n:.4f})")

print(
    "FINAL " + " ".join(f"{k}={v:.4f}" for k, v in results.items()) + f" routes_agree={int(all_agree)}"
)
