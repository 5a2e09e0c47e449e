"""MoCo v2 (facebookresearch/moco ``moco/builder.py`` + ``main_moco.py``) at tiny sizes, one process.

The ``MoCo`` module as the repo writes it: query and key encoders built by ``base_encoder(num_classes=
dim)`` with the v2 MLP head (``nn.Sequential(nn.Linear(dim_mlp, dim_mlp), nn.ReLU(),
self.encoder_q.fc)``), the key encoder initialised by ``param_k.data.copy_(param_q.data)`` and
frozen by ``param_k.requires_grad = False``, ``register_buffer("queue", torch.randn(dim, K))``
re-bound by ``self.queue = nn.functional.normalize(self.queue, dim=0)``,
``register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))``, the ``@torch.no_grad()``
momentum update ``param_k.data = param_k.data * self.m + param_q.data * (1. - self.m)``, the
shuffle-BN trick on one "GPU" (``torch.randperm``, ``torch.argsort(idx_shuffle)``,
``idx_shuffle.view(num_gpus, -1)[gpu_idx]``), ``torch.einsum('nc,nc->n', [q, k]).unsqueeze(-1)``
and ``torch.einsum('nc,ck->nk', [q, self.queue.clone().detach()])`` with operands in a list,
``logits /= self.T``, ``torch.zeros(logits.shape[0], dtype=torch.long)`` labels,
``_dequeue_and_enqueue`` (``int(self.queue_ptr)``, ``self.queue[:, ptr:ptr + batch_size] = keys.T``,
``self.queue_ptr[0] = ptr``); ``main_moco``'s SGD(momentum=0.9, weight_decay=1e-4) with the
cosine ``adjust_learning_rate``, ``AverageMeter``-style running loss and top-1/top-5 ``accuracy``
of the instance task; then a kNN probe (cosine similarity, ``topk``) and a frozen linear probe on
the query encoder's features. Data: 12x12 one-channel images of four shapes at random positions
and contrasts.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)


class MoCo(nn.Module):
    """
    Build a MoCo model with: a query encoder, a key encoder, and a queue
    https://arxiv.org/abs/1911.05722
    """
    def __init__(self, base_encoder, dim=128, K=65536, m=0.999, T=0.07, mlp=False):
        """
        dim: feature dimension (default: 128)
        K: queue size; number of negative keys (default: 65536)
        m: moco momentum of updating key encoder (default: 0.999)
        T: softmax temperature (default: 0.07)
        """
        super(MoCo, self).__init__()  # noqa: UP008 (the repo's spelling)

        self.K = K
        self.m = m
        self.T = T

        # create the encoders
        # num_classes is the output fc dimension
        self.encoder_q = base_encoder(num_classes=dim)
        self.encoder_k = base_encoder(num_classes=dim)

        if mlp:  # hack: brute-force replacement
            dim_mlp = self.encoder_q.fc.weight.shape[1]
            self.encoder_q.fc = nn.Sequential(nn.Linear(dim_mlp, dim_mlp), nn.ReLU(), self.encoder_q.fc)
            self.encoder_k.fc = nn.Sequential(nn.Linear(dim_mlp, dim_mlp), nn.ReLU(), self.encoder_k.fc)

        for param_q, param_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            param_k.data.copy_(param_q.data)  # initialize
            param_k.requires_grad = False  # not update by gradient

        # create the queue
        self.register_buffer("queue", torch.randn(dim, K))
        self.queue = nn.functional.normalize(self.queue, dim=0)

        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def _momentum_update_key_encoder(self):
        """
        Momentum update of the key encoder
        """
        for param_q, param_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            param_k.data = param_k.data * self.m + param_q.data * (1. - self.m)

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys):
        # gather keys before updating queue (one process: concat_all_gather is the identity)
        batch_size = keys.shape[0]

        ptr = int(self.queue_ptr)
        assert self.K % batch_size == 0  # for simplicity

        # replace the keys at ptr (dequeue and enqueue)
        self.queue[:, ptr:ptr + batch_size] = keys.T
        ptr = (ptr + batch_size) % self.K  # move pointer

        self.queue_ptr[0] = ptr

    @torch.no_grad()
    def _batch_shuffle_ddp(self, x):
        """
        Batch shuffle, for making use of BatchNorm.
        """
        # gather from all gpus (one here)
        batch_size_this = x.shape[0]
        x_gather = x
        batch_size_all = x_gather.shape[0]

        num_gpus = batch_size_all // batch_size_this

        # random shuffle index
        idx_shuffle = torch.randperm(batch_size_all)

        # index for restoring
        idx_unshuffle = torch.argsort(idx_shuffle)

        # shuffled index for this gpu
        gpu_idx = 0
        idx_this = idx_shuffle.view(num_gpus, -1)[gpu_idx]

        return x_gather[idx_this], idx_unshuffle

    @torch.no_grad()
    def _batch_unshuffle_ddp(self, x, idx_unshuffle):
        """
        Undo batch shuffle.
        """
        batch_size_this = x.shape[0]
        x_gather = x
        batch_size_all = x_gather.shape[0]

        num_gpus = batch_size_all // batch_size_this

        # restored index for this gpu
        gpu_idx = 0
        idx_this = idx_unshuffle.view(num_gpus, -1)[gpu_idx]

        return x_gather[idx_this]

    def forward(self, im_q, im_k):
        """
        Input:
            im_q: a batch of query images
            im_k: a batch of key images
        Output:
            logits, targets
        """

        # compute query features
        q = self.encoder_q(im_q)  # queries: NxC
        q = nn.functional.normalize(q, dim=1)

        # compute key features
        with torch.no_grad():  # no gradient to keys
            self._momentum_update_key_encoder()  # update the key encoder

            # shuffle for making use of BN
            im_k, idx_unshuffle = self._batch_shuffle_ddp(im_k)

            k = self.encoder_k(im_k)  # keys: NxC
            k = nn.functional.normalize(k, dim=1)

            # undo shuffle
            k = self._batch_unshuffle_ddp(k, idx_unshuffle)

        # compute logits
        # Einstein sum is more intuitive
        # positive logits: Nx1
        l_pos = torch.einsum('nc,nc->n', [q, k]).unsqueeze(-1)
        # negative logits: NxK
        l_neg = torch.einsum('nc,ck->nk', [q, self.queue.clone().detach()])

        # logits: Nx(1+K)
        logits = torch.cat([l_pos, l_neg], dim=1)

        # apply temperature
        logits /= self.T

        # labels: positive key indicators
        labels = torch.zeros(logits.shape[0], dtype=torch.long)

        # dequeue and enqueue
        self._dequeue_and_enqueue(k)

        return logits, labels


class SmallConvNet(nn.Module):
    """A torchvision-shaped backbone: features, then ``fc`` sized by ``num_classes``."""
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d((1, 1)))
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


def make_images(n):
    """12x12 images of four shapes (square, cross, ring, diagonal bar) at random places and contrasts."""
    yy, xx = np.mgrid[0:12, 0:12]
    y = rng.randint(0, 4, n)
    imgs = np.zeros((n, 1, 12, 12), dtype=np.float32)
    for i in range(n):
        cy, cx = rng.randint(4, 8, 2)
        if y[i] == 0:
            shape = (abs(yy - cy) <= 2) & (abs(xx - cx) <= 2)
        elif y[i] == 1:
            shape = ((abs(yy - cy) <= 3) & (xx == cx)) | ((abs(xx - cx) <= 3) & (yy == cy))
        elif y[i] == 2:
            r = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
            shape = (r > 1.5) & (r < 3.2)
        else:
            shape = (abs((yy - cy) - (xx - cx)) <= 0) & (abs(yy - cy) <= 3)
        imgs[i, 0] = rng.uniform(0.6, 1.4) * shape + 0.35 * rng.randn(12, 12)
    return torch.from_numpy(imgs), torch.from_numpy(y)


def two_crops(x):
    """TwoCropsTransform with tensor augmentations: random shift, horizontal flip, contrast, noise."""
    def aug(x):
        dy, dx = (int(v) for v in torch.randint(-2, 3, (2,)))
        x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
        flip = torch.rand(x.shape[0]) < 0.5
        x = torch.where(flip[:, None, None, None], torch.flip(x, dims=[3]), x)
        x = x * (0.8 + 0.4 * torch.rand(x.shape[0], 1, 1, 1))
        return x + 0.1 * torch.randn_like(x)
    return aug(x), aug(x)


def adjust_learning_rate(optimizer, epoch, lr, epochs):
    """Decay the learning rate based on schedule (args.cos)"""
    lr *= 0.5 * (1. + math.cos(math.pi * epoch / epochs))
    for param_group in optimizer.param_groups:
        param_group['lr'] = lr


def accuracy(output, target, topk=(1,)):
    """Computes the accuracy over the k top predictions for the specified values of k"""
    with torch.no_grad():
        maxk = max(topk)
        batch_size = target.size(0)

        _, pred = output.topk(maxk, 1, True, True)
        pred = pred.t()
        correct = pred.eq(target.view(1, -1).expand_as(pred))

        res = []
        for k in topk:
            correct_k = correct[:k].reshape(-1).float().sum(0, keepdim=True)
            res.append(correct_k.mul_(100.0 / batch_size))
        return res


x_train, y_train = make_images(384)
x_test, y_test = make_images(128)

model = MoCo(SmallConvNet, dim=16, K=128, m=0.99, T=0.2, mlp=True)
frozen = sum(not p.requires_grad for p in model.encoder_k.parameters())
queue_norms = model.queue.norm(dim=0)
print(f"key encoder parameters frozen: {frozen}  queue {tuple(model.queue.shape)} unit columns: "
      f"{bool(torch.allclose(queue_norms, torch.ones_like(queue_norms)))}  ptr dtype: {model.queue_ptr.dtype}")

criterion = nn.CrossEntropyLoss()
lr, epochs, batch_size = 0.06, 12, 32
optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr,
                            momentum=0.9, weight_decay=1e-4)
for epoch in range(epochs):
    adjust_learning_rate(optimizer, epoch, lr, epochs)
    model.train()
    perm = torch.randperm(len(x_train))
    losses, top1s, top5s = [], [], []
    for i in range(0, len(x_train), batch_size):
        im_q, im_k = two_crops(x_train[perm[i:i + batch_size]])
        output, target = model(im_q=im_q, im_k=im_k)
        loss = criterion(output, target)

        acc1, acc5 = accuracy(output, target, topk=(1, 5))
        losses.append(loss.item())
        top1s.append(acc1[0].item())
        top5s.append(acc5[0].item())

        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if epoch % 3 == 2:
        print(f"Epoch: [{epoch}]  Loss {np.mean(losses):.4f}  Acc@1 {np.mean(top1s):.2f}  "
              f"Acc@5 {np.mean(top5s):.2f}  queue_ptr {int(model.queue_ptr)}")

# the key encoder trails the query encoder
gap = sum((pq - pk).pow(2).sum() for pq, pk in zip(model.encoder_q.parameters(), model.encoder_k.parameters()))
print(f"key encoder drift from query encoder: {gap.item() > 0}")


@torch.no_grad()
def features(x):
    model.encoder_q.eval()
    return F.normalize(torch.flatten(model.encoder_q.features(x), 1), dim=1)


# kNN probe: cosine similarity to the training bank, vote of the 10 nearest
bank, test_f = features(x_train), features(x_test)
sim = test_f @ bank.T
_, nn_idx = sim.topk(10, dim=1)
votes = F.one_hot(y_train[nn_idx], 4).sum(1)
knn_acc = (votes.argmax(1) == y_test).float().mean().item()

probe = nn.Linear(bank.shape[1], 4)
probe_opt = torch.optim.Adam(probe.parameters(), lr=1e-2)
for _step in range(150):
    probe_opt.zero_grad()
    F.cross_entropy(probe(bank), y_train).backward()
    probe_opt.step()
probe_acc = (probe(test_f).argmax(1) == y_test).float().mean().item()
print(f"FINAL loss={np.mean(losses):.4f} top1={np.mean(top1s) / 100:.4f} knn_acc={knn_acc:.4f} probe_acc={probe_acc:.4f}")
