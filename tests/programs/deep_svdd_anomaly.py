"""Deep SVDD (Ruff et al., ICML 2018) in the layout of lukasruff/Deep-SVDD-PyTorch, on synthetic images.

The "normal" class is 16x16 images of a horizontal bar at a random height (with noise and random
intensity); anomalies are vertical bars, crosses and blobs. As in the repository, the network is a
bias-free LeNet-style encoder (``nn.Conv2d(..., bias=False)``, ``nn.BatchNorm2d(eps=1e-04,
affine=False)``, ``F.leaky_relu``, ``nn.MaxPool2d``, a bias-free ``nn.Linear`` to ``rep_dim``), so that the
hypersphere collapse to a constant is not available; its autoencoder twin decodes by ``F.interpolate(...,
scale_factor=2)`` and bias-free ``nn.ConvTranspose2d``. ``AETrainer`` pretrains the autoencoder on the
summed squared reconstruction error, ``init_network_weights_from_pretraining`` copies the encoder's
weights (``{k: v for k, v in ae_net_dict.items() if k in net_dict}``), and ``DeepSVDDTrainer`` runs the
one-class objective (``torch.mean(torch.sum((outputs - c) ** 2, dim=1))``) and the soft-boundary one
(``R ** 2 + (1 / nu) * torch.mean(torch.max(torch.zeros_like(scores), scores))`` with the radius updated
after warm-up from ``np.quantile(np.sqrt(dist.clone().data.cpu().numpy()), 1 - nu)``). The centre ``c``
is the mean initial representation with near-zero coordinates pushed out to +-eps
(``c[(abs(c) < eps) & (c < 0)] = -eps``). Optimisers are ``optim.Adam(..., weight_decay=1e-6,
amsgrad=True)`` with ``MultiStepLR``.

Checked: test ROC-AUC of both objectives and of the autoencoder's reconstruction error, computed in torch
from ``argsort`` ranks (the Mann-Whitney statistic) and equal to a NumPy pairwise-comparison
reference; the soft-boundary radius leaves about a fraction ``nu`` of training points outside.
"""

import logging
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader, Dataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

logging.basicConfig(level=logging.WARNING)
logger = logging.getLogger()

IMG = 16


# ---------------------------------------------------------------------------------- data
def make_images(n, kind, rng):
    x = np.zeros((n, 1, IMG, IMG), dtype=np.float32)
    for i in range(n):
        intensity = rng.uniform(0.6, 1.0)
        pos = rng.randint(3, IMG - 4)
        width = rng.randint(2, 4)
        if kind == "normal":
            x[i, 0, pos:pos + width, 2:IMG - 2] = intensity
        else:
            style = i % 3
            if style == 0:
                x[i, 0, 2:IMG - 2, pos:pos + width] = intensity
            elif style == 1:
                x[i, 0, pos:pos + 2, 2:IMG - 2] = intensity
                x[i, 0, 2:IMG - 2, pos:pos + 2] = intensity
            else:
                cy, cx = rng.randint(4, IMG - 4, size=2)
                yy, xx = np.mgrid[:IMG, :IMG]
                x[i, 0] = intensity * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 6.0)
    x += rng.normal(0.0, 0.05, size=x.shape).astype(np.float32)
    return np.clip(x, 0.0, 1.0)


class SyntheticBars(Dataset):
    """Returns (img, target, index) as the repository's MyMNIST does; target 1 marks an outlier."""

    def __init__(self, data, targets):
        self.data = torch.from_numpy(data)
        self.targets = torch.as_tensor(targets, dtype=torch.long)

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        return self.data[index], int(self.targets[index]), index


rng = np.random.RandomState(seed)
train_set = SyntheticBars(make_images(192, "normal", rng), np.zeros(192))
test_x = np.concatenate([make_images(90, "normal", rng), make_images(60, "anomaly", rng)])
test_set = SyntheticBars(test_x, np.r_[np.zeros(90), np.ones(60)])


# ------------------------------------------------------------------------------ networks
class BaseNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.logger = logging.getLogger(self.__class__.__name__)
        self.rep_dim = None

    def summary(self):
        net_parameters = filter(lambda p: p.requires_grad, self.parameters())
        params = sum([np.prod(p.size()) for p in net_parameters])
        return params


class Bars_LeNet(BaseNet):
    def __init__(self):
        super().__init__()
        self.rep_dim = 16
        self.pool = nn.MaxPool2d(2, 2)
        self.conv1 = nn.Conv2d(1, 8, 5, bias=False, padding=2)
        self.bn1 = nn.BatchNorm2d(8, eps=1e-04, affine=False)
        self.conv2 = nn.Conv2d(8, 4, 5, bias=False, padding=2)
        self.bn2 = nn.BatchNorm2d(4, eps=1e-04, affine=False)
        self.fc1 = nn.Linear(4 * 4 * 4, self.rep_dim, bias=False)

    def forward(self, x):
        x = self.conv1(x)
        x = self.pool(F.leaky_relu(self.bn1(x)))
        x = self.conv2(x)
        x = self.pool(F.leaky_relu(self.bn2(x)))
        x = x.view(x.size(0), -1)
        x = self.fc1(x)
        return x


class Bars_LeNet_Autoencoder(BaseNet):
    def __init__(self):
        super().__init__()
        self.rep_dim = 16
        self.pool = nn.MaxPool2d(2, 2)
        # Encoder (must match the Deep SVDD network above)
        self.conv1 = nn.Conv2d(1, 8, 5, bias=False, padding=2)
        self.bn1 = nn.BatchNorm2d(8, eps=1e-04, affine=False)
        self.conv2 = nn.Conv2d(8, 4, 5, bias=False, padding=2)
        self.bn2 = nn.BatchNorm2d(4, eps=1e-04, affine=False)
        self.fc1 = nn.Linear(4 * 4 * 4, self.rep_dim, bias=False)
        # Decoder
        self.deconv1 = nn.ConvTranspose2d(1, 4, 5, bias=False, padding=2)
        self.bn3 = nn.BatchNorm2d(4, eps=1e-04, affine=False)
        self.deconv2 = nn.ConvTranspose2d(4, 8, 5, bias=False, padding=2)
        self.bn4 = nn.BatchNorm2d(8, eps=1e-04, affine=False)
        self.deconv3 = nn.ConvTranspose2d(8, 1, 5, bias=False, padding=2)

    def forward(self, x):
        x = self.conv1(x)
        x = self.pool(F.leaky_relu(self.bn1(x)))
        x = self.conv2(x)
        x = self.pool(F.leaky_relu(self.bn2(x)))
        x = x.view(x.size(0), -1)
        x = self.fc1(x)
        x = x.view(x.size(0), int(self.rep_dim / 16), 4, 4)
        x = F.interpolate(F.leaky_relu(x), scale_factor=2)
        x = self.deconv1(x)
        x = F.interpolate(F.leaky_relu(self.bn3(x)), scale_factor=2)
        x = self.deconv2(x)
        x = F.leaky_relu(self.bn4(x))
        x = self.deconv3(x)
        x = torch.sigmoid(x)
        return x


# ------------------------------------------------------------------------------- metrics
def roc_auc_torch(labels, scores):
    """Mann-Whitney U from argsort ranks (no ties among continuous scores)."""
    ranks = torch.empty_like(scores)
    ranks[scores.argsort()] = torch.arange(1, scores.numel() + 1, dtype=scores.dtype)
    pos = labels == 1
    n_pos = pos.sum().item()
    n_neg = labels.numel() - n_pos
    return ((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)).item()


def roc_auc_numpy(labels, scores):
    pos, neg = scores[labels == 1], scores[labels == 0]
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * ties)


# ------------------------------------------------------------------------------ trainers
class AETrainer:
    def __init__(self, lr=0.001, n_epochs=150, lr_milestones=(), batch_size=128, weight_decay=1e-6):
        self.lr = lr
        self.n_epochs = n_epochs
        self.lr_milestones = lr_milestones
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.device = "cuda" if torch.cuda.is_available() else "cpu"

    def train(self, dataset, ae_net):
        ae_net = ae_net.to(self.device)
        train_loader = DataLoader(dataset, batch_size=self.batch_size, shuffle=True)
        optimizer = optim.Adam(ae_net.parameters(), lr=self.lr, weight_decay=self.weight_decay, amsgrad=True)
        scheduler = optim.lr_scheduler.MultiStepLR(optimizer, milestones=self.lr_milestones, gamma=0.1)
        ae_net.train()
        for epoch in range(self.n_epochs):
            loss_epoch = 0.0
            n_batches = 0
            epoch_start_time = time.time()
            for data in train_loader:
                inputs, _, _ = data
                inputs = inputs.to(self.device)
                optimizer.zero_grad()
                outputs = ae_net(inputs)
                scores = torch.sum((outputs - inputs) ** 2, dim=tuple(range(1, outputs.dim())))
                loss = torch.mean(scores)
                loss.backward()
                optimizer.step()
                loss_epoch += loss.item()
                n_batches += 1
            scheduler.step()
            logger.info(f"  Epoch {epoch + 1}/{self.n_epochs}\t Time: {time.time() - epoch_start_time:.3f}")
            if (epoch + 1) % 5 == 0:
                print(f"AE epoch {epoch + 1}/{self.n_epochs} loss {loss_epoch / n_batches:.4f} "
                      f"lr {scheduler.get_last_lr()[0]:.5f}")
        return ae_net

    def test(self, dataset, ae_net):
        test_loader = DataLoader(dataset, batch_size=self.batch_size, shuffle=False)
        idx_label_score = []
        ae_net.eval()
        with torch.no_grad():
            for data in test_loader:
                inputs, labels, idx = data
                outputs = ae_net(inputs.to(self.device))
                scores = torch.sum((outputs - inputs) ** 2, dim=tuple(range(1, outputs.dim())))
                idx_label_score += list(zip(idx.cpu().data.numpy().tolist(),
                                            labels.cpu().data.numpy().tolist(),
                                            scores.cpu().data.numpy().tolist()))
        return idx_label_score


class DeepSVDDTrainer:
    def __init__(self, objective, R, c, nu, lr=0.001, n_epochs=150, lr_milestones=(), batch_size=128,
                 weight_decay=1e-6):
        assert objective in ("one-class", "soft-boundary"), "Objective must be either 'one-class' or 'soft-boundary'."
        self.objective = objective
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.R = torch.tensor(R, device=self.device)
        self.c = torch.tensor(c, device=self.device) if c is not None else None
        self.nu = nu
        self.warm_up_n_epochs = 3
        self.lr = lr
        self.n_epochs = n_epochs
        self.lr_milestones = lr_milestones
        self.batch_size = batch_size
        self.weight_decay = weight_decay

    def train(self, dataset, net):
        net = net.to(self.device)
        train_loader = DataLoader(dataset, batch_size=self.batch_size, shuffle=True)
        optimizer = optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay, amsgrad=True)
        scheduler = optim.lr_scheduler.MultiStepLR(optimizer, milestones=self.lr_milestones, gamma=0.1)
        if self.c is None:
            self.c = self.init_center_c(train_loader, net)
        net.train()
        for epoch in range(self.n_epochs):
            loss_epoch = 0.0
            n_batches = 0
            for data in train_loader:
                inputs, _, _ = data
                inputs = inputs.to(self.device)
                optimizer.zero_grad()
                outputs = net(inputs)
                dist = torch.sum((outputs - self.c) ** 2, dim=1)
                if self.objective == "soft-boundary":
                    scores = dist - self.R ** 2
                    loss = self.R ** 2 + (1 / self.nu) * torch.mean(torch.max(torch.zeros_like(scores), scores))
                else:
                    loss = torch.mean(dist)
                loss.backward()
                optimizer.step()
                if (self.objective == "soft-boundary") and (epoch >= self.warm_up_n_epochs):
                    self.R.data = torch.tensor(get_radius(dist, self.nu), device=self.device)
                loss_epoch += loss.item()
                n_batches += 1
            scheduler.step()
            if epoch in scheduler.milestones:
                logger.info("  LR scheduler: new learning rate is %g" % float(scheduler.get_last_lr()[0]))  # noqa: UP031 (the repository's own spelling)
            if (epoch + 1) % 5 == 0:
                print(f"{self.objective} epoch {epoch + 1}/{self.n_epochs} loss {loss_epoch / n_batches:.5f} "
                      f"R {self.R.item():.4f}")
        return net

    def test(self, dataset, net):
        test_loader = DataLoader(dataset, batch_size=self.batch_size, shuffle=False)
        idx_label_score = []
        net.eval()
        with torch.no_grad():
            for data in test_loader:
                inputs, labels, idx = data
                outputs = net(inputs.to(self.device))
                dist = torch.sum((outputs - self.c) ** 2, dim=1)
                if self.objective == "soft-boundary":
                    scores = dist - self.R ** 2
                else:
                    scores = dist
                idx_label_score += list(zip(idx.cpu().data.numpy().tolist(),
                                            labels.cpu().data.numpy().tolist(),
                                            scores.cpu().data.numpy().tolist()))
        return idx_label_score

    def init_center_c(self, train_loader, net, eps=0.1):
        """Initialize hypersphere center c as the mean from an initial forward pass on the data."""
        n_samples = 0
        c = torch.zeros(net.rep_dim, device=self.device)
        net.eval()
        with torch.no_grad():
            for data in train_loader:
                inputs, _, _ = data
                outputs = net(inputs.to(self.device))
                n_samples += outputs.shape[0]
                c += torch.sum(outputs, dim=0)
        c /= n_samples
        # If c_i is too close to 0, set to +-eps. Reason: a zero unit can be trivially matched with zero weights.
        c[(abs(c) < eps) & (c < 0)] = -eps
        c[(abs(c) < eps) & (c > 0)] = eps
        return c


def get_radius(dist: torch.Tensor, nu: float):
    """Optimally solve for radius R via the (1-nu)-quantile of distances."""
    return np.quantile(np.sqrt(dist.clone().data.cpu().numpy()), 1 - nu)


def init_network_weights_from_pretraining(net, ae_net):
    net_dict = net.state_dict()
    ae_net_dict = ae_net.state_dict()
    ae_net_dict = {k: v for k, v in ae_net_dict.items() if k in net_dict}
    net_dict.update(ae_net_dict)
    net.load_state_dict(net_dict)
    return list(ae_net_dict)


def evaluate(idx_label_score, name):
    _, labels, scores = zip(*idx_label_score)
    labels_t = torch.tensor(labels)
    scores_t = torch.tensor(scores, dtype=torch.float64)
    auc = roc_auc_torch(labels_t, scores_t)
    auc_np = roc_auc_numpy(np.array(labels), np.array(scores))
    print(f"{name} test AUC {100.0 * auc:.2f}% (NumPy {100.0 * auc_np:.2f}%)")
    return auc, abs(auc - auc_np) < 1e-12


# --------------------------------------------------------------------------------- main
ae_net = Bars_LeNet_Autoencoder()
print(f"autoencoder parameters: {ae_net.summary()}, BatchNorm affine: {ae_net.bn1.affine}")
ae_trainer = AETrainer(lr=0.003, n_epochs=15, lr_milestones=(10,), batch_size=32)
ae_net = ae_trainer.train(train_set, ae_net)
ae_auc, ae_agree = evaluate(ae_trainer.test(test_set, ae_net), "autoencoder")

results = {}
agree = ae_agree
for objective, nu in (("one-class", 0.1), ("soft-boundary", 0.1)):
    net = Bars_LeNet()
    copied = init_network_weights_from_pretraining(net, ae_net)
    if objective == "one-class":
        print(f"copied from the autoencoder: {copied}")
    trainer = DeepSVDDTrainer(objective, 0.0, None, nu, lr=0.001, n_epochs=15, lr_milestones=(10,), batch_size=32)
    net = trainer.train(train_set, net)
    auc, ok = evaluate(trainer.test(test_set, net), objective)
    agree = agree and ok
    results[objective] = auc
    if objective == "soft-boundary":
        net.eval()
        with torch.no_grad():
            dist = torch.sum((net(train_set.data) - trainer.c) ** 2, dim=1)
        outside = (dist > trainer.R ** 2).float().mean().item()
        print(f"radius R {trainer.R.item():.4f}; fraction of training data outside {outside:.3f} (nu = {nu})")
    else:
        print(f"centre |c| min {trainer.c.abs().min().item():.4f} (eps 0.1)")

print(
    f"FINAL ae_auc={ae_auc:.4f} oneclass_auc={results['one-class']:.4f} "
    f"soft_auc={results['soft-boundary']:.4f} soft_outside={outside:.4f} auc_agree={int(agree)}"
)
