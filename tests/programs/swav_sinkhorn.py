"""SwAV (Caron et al.) as facebookresearch/swav's main_swav.py trains it, on synthetic clustered 16x16 images.

Multi-crop views: two large crops (12x12) and four small ones (6x6), cut by slicing at random
offsets, flipped at random, and brought to 12x12 and 6x6 by ``F.interpolate(mode="bilinear")``.
The model is a small conv backbone, a projection head whose output is ``F.normalize(dim=1, p=2)``-ed,
and prototypes as ``nn.Linear(feat_dim, n_prototypes, bias=False)`` whose weight is re-normalised at
the start of every step under ``torch.no_grad()`` by ``w = model.prototypes.weight.data.clone()``,
``w = F.normalize(w, dim=1, p=2)``, ``model.prototypes.weight.copy_(w)``.
Codes come from the reference ``distributed_sinkhorn`` without the all-reduces, in
``torch.no_grad()``: ``Q = torch.exp(out / epsilon).t()``, ``Q /= sum_Q``, then alternating
``Q /= sum_of_rows; Q /= K`` and ``Q /= torch.sum(Q, dim=0, keepdim=True); Q /= B``, ``Q *= B``.
The swapped prediction loss is ``-torch.mean(torch.sum(q * F.log_softmax(x / temperature, dim=1), dim=1))``
over every other crop; the prototypes stay frozen for the first iterations by
``if "prototypes" in name: p.grad = None`` before ``optimizer.step()``.

Reports a k-NN accuracy (cosine similarity, k = 10) and a linear probe on the frozen backbone.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

SIZE = 16
NUM_CLASSES = 4
NMB_CROPS = [2, 4]
SIZE_CROPS = [12, 6]
CROP_EXTENTS = [(11, 16), (5, 9)]  # the side of the cut, in pixels, before resizing (RandomResizedCrop's scale)
CROPS_FOR_ASSIGN = [0, 1]
EPSILON = 0.05
SINKHORN_ITERATIONS = 3
TEMPERATURE = 0.1
N_PROTOTYPES = 16
FREEZE_PROTOTYPES_NITERS = 20


def make_dataset(n):
    """Four clusters: a blob at a random place, in a colour of its class, under heavy noise."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    labels = rng.integers(0, NUM_CLASSES, size=n)
    colours = np.array([[0.8, 0.4, 0.4], [0.4, 0.8, 0.4], [0.4, 0.4, 0.8], [0.7, 0.7, 0.3]], dtype=np.float32)
    images = rng.normal(0.0, 0.9, size=(n, 3, SIZE, SIZE)).astype(np.float32)
    for i in range(n):
        cy, cx = rng.uniform(4, SIZE - 4, size=2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(2.0, 3.0) ** 2))
        images[i] += colours[labels[i]][:, None, None] * blob * 1.5
    return torch.from_numpy(images), torch.from_numpy(labels)


def multi_crop(images):
    """Random crops by slicing, random horizontal flips, resized by F.interpolate."""
    crops = []
    n = images.shape[0]
    for n_crops, size, (low, high) in zip(NMB_CROPS, SIZE_CROPS, CROP_EXTENTS):
        for _ in range(n_crops):
            extent = int(torch.randint(low, high + 1, (1,)))
            top = int(torch.randint(0, SIZE - extent + 1, (1,)))
            left = int(torch.randint(0, SIZE - extent + 1, (1,)))
            crop = images[:, :, top:top + extent, left:left + extent]
            flip = torch.rand(n) < 0.5
            crop = torch.where(flip[:, None, None, None], crop.flip(3), crop)
            crop = crop + 0.1 * torch.randn_like(crop)
            crops.append(F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False))
    return crops


class SwAVModel(nn.Module):
    def __init__(self, feat_dim=32, output_dim=16, n_prototypes=N_PROTOTYPES):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
            nn.Conv2d(16, feat_dim, 3, padding=1, stride=2), nn.BatchNorm2d(feat_dim), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
        )
        self.projection_head = nn.Sequential(
            nn.Linear(feat_dim, 64), nn.BatchNorm1d(64), nn.ReLU(inplace=True), nn.Linear(64, output_dim),
        )
        self.prototypes = nn.Linear(output_dim, n_prototypes, bias=False)

    def forward_head(self, x):
        x = self.projection_head(x)
        x = nn.functional.normalize(x, dim=1, p=2)
        return x, self.prototypes(x)

    def forward(self, inputs):
        # the reference groups crops of the same resolution into one backbone pass
        idx_crops = torch.cumsum(torch.unique_consecutive(
            torch.tensor([inp.shape[-1] for inp in inputs]), return_counts=True)[1], 0)
        start_idx, output = 0, None
        for end_idx in idx_crops:
            _out = self.backbone(torch.cat(inputs[start_idx:end_idx]))
            output = _out if start_idx == 0 else torch.cat((output, _out))
            start_idx = end_idx
        return self.forward_head(output)


@torch.no_grad()
def sinkhorn(out):
    Q = torch.exp(out / EPSILON).t()  # Q is K-by-B for consistency with notations from the paper
    B = Q.shape[1]
    K = Q.shape[0]  # how many prototypes

    # make the matrix sums to 1
    sum_Q = torch.sum(Q)
    Q /= sum_Q

    for _ in range(SINKHORN_ITERATIONS):
        # normalize each row: total weight per prototype must be 1/K
        sum_of_rows = torch.sum(Q, dim=1, keepdim=True)
        Q /= sum_of_rows
        Q /= K

        # normalize each column: total weight per sample must be 1/B
        Q /= torch.sum(Q, dim=0, keepdim=True)
        Q /= B

    Q *= B  # the columns must sum to 1 so that Q is an assignment
    return Q.t()


train_x, train_y = make_dataset(384)
test_x, test_y = make_dataset(192)
model = SwAVModel()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-6)
batch_size = 64
epochs = 5
iters_per_epoch = len(train_x) // batch_size
print("crops", list(zip(NMB_CROPS, SIZE_CROPS)), "prototypes", tuple(model.prototypes.weight.shape))

it = 0
for epoch in range(epochs):
    model.train()
    perm = torch.randperm(len(train_x))
    total = 0.0
    for step in range(iters_per_epoch):
        images = train_x[perm[step * batch_size:(step + 1) * batch_size]]
        inputs = multi_crop(images)

        # normalize the prototypes
        with torch.no_grad():
            w = model.prototypes.weight.data.clone()
            w = nn.functional.normalize(w, dim=1, p=2)
            model.prototypes.weight.copy_(w)

        embedding, output = model(inputs)
        embedding = embedding.detach()
        bs = inputs[0].size(0)

        loss = 0
        for crop_id in CROPS_FOR_ASSIGN:
            with torch.no_grad():
                out = output[bs * crop_id: bs * (crop_id + 1)].detach()
                q = sinkhorn(out)[-bs:]

            # cluster assignment prediction
            subloss = 0
            for v in np.delete(np.arange(np.sum(NMB_CROPS)), crop_id):
                x = output[bs * v: bs * (v + 1)] / TEMPERATURE
                subloss -= torch.mean(torch.sum(q * F.log_softmax(x, dim=1), dim=1))
            loss += subloss / (np.sum(NMB_CROPS) - 1)
        loss /= len(CROPS_FOR_ASSIGN)

        optimizer.zero_grad()
        loss.backward()
        # cancel gradients for the prototypes
        if it < FREEZE_PROTOTYPES_NITERS:
            for name, p in model.named_parameters():
                if "prototypes" in name:
                    p.grad = None
        optimizer.step()
        it += 1
        total += loss.item()
    print(f"epoch {epoch + 1} loss {total / iters_per_epoch:.4f} prototype norms "
          f"{model.prototypes.weight.norm(dim=1).mean().item():.4f} code columns sum "
          f"{q.sum(1).mean().item():.4f}")

model.eval()
with torch.no_grad():
    train_feats = F.normalize(model.backbone(train_x), dim=1)
    test_feats = F.normalize(model.backbone(test_x), dim=1)
    similarity = test_feats @ train_feats.t()
    top_sim, top_idx = similarity.topk(10, dim=1)
    votes = F.one_hot(train_y[top_idx], NUM_CLASSES).float() * top_sim.unsqueeze(-1).exp()
    knn_pred = votes.sum(1).argmax(1)
    knn_acc = (knn_pred == test_y).float().mean().item()
    assignments = model(
        [F.interpolate(test_x[:, :, 2:14, 2:14], size=(12, 12), mode="bilinear", align_corners=False)])[1]
    used = torch.unique(assignments.argmax(1)).numel()

probe = nn.Linear(train_feats.shape[1], NUM_CLASSES)
probe_opt = torch.optim.Adam(probe.parameters(), lr=0.05)
for _ in range(100):
    probe_loss = F.cross_entropy(probe(train_feats), train_y)
    probe_opt.zero_grad()
    probe_loss.backward()
    probe_opt.step()
with torch.no_grad():
    probe_acc = (probe(test_feats).argmax(1) == test_y).float().mean().item()
print(f"prototypes in use {used} of {N_PROTOTYPES}")
print(f"FINAL loss={total / iters_per_epoch:.4f} knn_acc={knn_acc:.4f} probe_acc={probe_acc:.4f} "
      f"prototypes_used={used}")
