"""Stacked hourglass keypoints, the shape of princeton-vl/pytorch_stacked_hourglass (``models/layers.py``,
``models/posenet.py``, ``task/loss.py``, ``data/MPII/dp.py``, ``test.py``) at tiny sizes on synthetic
"stick figures" (a head, two hands told apart only by side, a foot, drawn as blobs on channels of an
NHWC image): ``Conv`` with optional ``bn``/``relu``, ``Residual`` (BN-ReLU 1x1/3x3/1x1 convs with a
``skip_layer`` when the widths differ, in-place ``out += residual``), the recursive
``Hourglass(n, f)`` (``nn.MaxPool2d(2, 2)``, ``nn.Upsample(scale_factor=2, mode='nearest')``,
``up1 + up2``), ``PoseNet`` taking ``imgs.permute(0, 3, 1, 2)`` with intermediate supervision
(``torch.stack(combined_hm_preds, 1)``, ``merge_preds``/``merge_features`` added back into ``x``),
``HeatmapLoss`` as ``((pred - gt)**2).mean(dim=3).mean(dim=2).mean(dim=1)`` stacked per hourglass,
``GenerateHeatmap`` drawing Gaussians with NumPy, decoding by ``argmax`` of ``view(b, k, -1)`` with
``// w`` and ``% w`` beside an integral soft-argmax (``F.softmax`` over the flattened map,
``torch.arange`` expectations), PCK, and the flip test (``torch.flip`` of the image, the heatmaps
flipped back and permuted by ``flip_ref``, averaged).
"""
# ruff: noqa: UP008  (the repository's own spelling: super(Cls, self))

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

INP_RES, OUT_RES, NUM_PARTS = 64, 16, 4
PARTS = ["head", "l_hand", "r_hand", "foot"]
flip_ref = [0, 2, 1, 3]  # left and right hands swap under a horizontal flip

Pool = nn.MaxPool2d


class Conv(nn.Module):
    def __init__(self, inp_dim, out_dim, kernel_size=3, stride=1, bn=False, relu=True):
        super(Conv, self).__init__()
        self.inp_dim = inp_dim
        self.conv = nn.Conv2d(inp_dim, out_dim, kernel_size, stride, padding=(kernel_size - 1) // 2, bias=True)
        self.relu = None
        self.bn = None
        if relu:
            self.relu = nn.ReLU()
        if bn:
            self.bn = nn.BatchNorm2d(out_dim)

    def forward(self, x):
        assert x.size()[1] == self.inp_dim, "{} {}".format(x.size()[1], self.inp_dim)  # noqa: UP032
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.relu is not None:
            x = self.relu(x)
        return x


class Residual(nn.Module):
    def __init__(self, inp_dim, out_dim):
        super(Residual, self).__init__()
        self.relu = nn.ReLU()
        self.bn1 = nn.BatchNorm2d(inp_dim)
        self.conv1 = Conv(inp_dim, int(out_dim / 2), 1, relu=False)
        self.bn2 = nn.BatchNorm2d(int(out_dim / 2))
        self.conv2 = Conv(int(out_dim / 2), int(out_dim / 2), 3, relu=False)
        self.bn3 = nn.BatchNorm2d(int(out_dim / 2))
        self.conv3 = Conv(int(out_dim / 2), out_dim, 1, relu=False)
        self.skip_layer = Conv(inp_dim, out_dim, 1, relu=False)
        if inp_dim == out_dim:
            self.need_skip = False
        else:
            self.need_skip = True

    def forward(self, x):
        if self.need_skip:
            residual = self.skip_layer(x)
        else:
            residual = x
        out = self.bn1(x)
        out = self.relu(out)
        out = self.conv1(out)
        out = self.bn2(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn3(out)
        out = self.relu(out)
        out = self.conv3(out)
        out += residual
        return out


class Hourglass(nn.Module):
    def __init__(self, n, f, bn=None, increase=0):
        super(Hourglass, self).__init__()
        nf = f + increase
        self.up1 = Residual(f, f)
        # Lower branch
        self.pool1 = Pool(2, 2)
        self.low1 = Residual(f, nf)
        self.n = n
        # Recursive hourglass
        if self.n > 1:
            self.low2 = Hourglass(n - 1, nf, bn=bn)
        else:
            self.low2 = Residual(nf, nf)
        self.low3 = Residual(nf, f)
        self.up2 = nn.Upsample(scale_factor=2, mode='nearest')

    def forward(self, x):
        up1 = self.up1(x)
        pool1 = self.pool1(x)
        low1 = self.low1(pool1)
        low2 = self.low2(low1)
        low3 = self.low3(low2)
        up2 = self.up2(low3)
        return up1 + up2


class Merge(nn.Module):
    def __init__(self, x_dim, y_dim):
        super(Merge, self).__init__()
        self.conv = Conv(x_dim, y_dim, 1, relu=False, bn=False)

    def forward(self, x):
        return self.conv(x)


class HeatmapLoss(torch.nn.Module):
    """
    loss for detection heatmap
    """
    def __init__(self):
        super(HeatmapLoss, self).__init__()

    def forward(self, pred, gt):
        l = ((pred - gt)**2)  # noqa: E741
        l = l.mean(dim=3).mean(dim=2).mean(dim=1)  # noqa: E741
        return l  # l of dim bsize


class PoseNet(nn.Module):
    def __init__(self, nstack, inp_dim, oup_dim, bn=False, increase=0, **kwargs):
        super(PoseNet, self).__init__()

        self.nstack = nstack
        self.pre = nn.Sequential(
            Conv(3, 8, 7, 2, bn=True, relu=True),
            Residual(8, 16),
            Pool(2, 2),
            Residual(16, 16),
            Residual(16, inp_dim)
        )

        self.hgs = nn.ModuleList([
            nn.Sequential(
                Hourglass(2, inp_dim, bn, increase),
            ) for i in range(nstack)])

        self.features = nn.ModuleList([
            nn.Sequential(
                Residual(inp_dim, inp_dim),
                Conv(inp_dim, inp_dim, 1, bn=True, relu=True)
            ) for i in range(nstack)])

        self.outs = nn.ModuleList([Conv(inp_dim, oup_dim, 1, relu=False, bn=False) for i in range(nstack)])
        self.merge_features = nn.ModuleList([Merge(inp_dim, inp_dim) for i in range(nstack - 1)])
        self.merge_preds = nn.ModuleList([Merge(oup_dim, inp_dim) for i in range(nstack - 1)])
        self.nstack = nstack
        self.heatmapLoss = HeatmapLoss()

    def forward(self, imgs):
        # our posenet
        x = imgs.permute(0, 3, 1, 2)  # x of size 1,3,inpdim,inpdim
        x = self.pre(x)
        combined_hm_preds = []
        for i in range(self.nstack):
            hg = self.hgs[i](x)
            feature = self.features[i](hg)
            preds = self.outs[i](feature)
            combined_hm_preds.append(preds)
            if i < self.nstack - 1:
                x = x + self.merge_preds[i](preds) + self.merge_features[i](feature)
        return torch.stack(combined_hm_preds, 1)

    def calc_loss(self, combined_hm_preds, heatmaps):
        combined_loss = []
        for i in range(self.nstack):
            combined_loss.append(self.heatmapLoss(combined_hm_preds[:, i], heatmaps))
        combined_loss = torch.stack(combined_loss, dim=1)
        return combined_loss


class GenerateHeatmap():  # noqa: UP039
    def __init__(self, output_res, num_parts, sigma=1.0):
        self.output_res = output_res
        self.num_parts = num_parts
        self.sigma = sigma
        size = 6 * sigma + 3
        x = np.arange(0, size, 1, float)
        y = x[:, np.newaxis]
        x0, y0 = 3 * sigma + 1, 3 * sigma + 1
        self.g = np.exp(- ((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma ** 2))

    def __call__(self, keypoints):
        hms = np.zeros(shape=(self.num_parts, self.output_res, self.output_res), dtype=np.float32)
        sigma = self.sigma
        for p in keypoints:
            for idx, pt in enumerate(p):
                if pt[0] > 0:
                    x, y = int(pt[0]), int(pt[1])
                    if x < 0 or y < 0 or x >= self.output_res or y >= self.output_res:
                        continue
                    ul = int(x - 3 * sigma - 1), int(y - 3 * sigma - 1)
                    br = int(x + 3 * sigma + 2), int(y + 3 * sigma + 2)

                    c, d = max(0, -ul[0]), min(br[0], self.output_res) - ul[0]
                    a, b = max(0, -ul[1]), min(br[1], self.output_res) - ul[1]

                    cc, dd = max(0, ul[0]), min(br[0], self.output_res)
                    aa, bb = max(0, ul[1]), min(br[1], self.output_res)
                    hms[idx, aa:bb, cc:dd] = np.maximum(hms[idx, aa:bb, cc:dd], self.g[a:b, c:d])
        return hms


def make_figures(n):
    """Keypoints in heatmap cells (x, y); the image draws each as a blob 4x larger, hands on one channel."""
    kps = np.zeros((n, NUM_PARTS, 2), dtype=np.int64)
    kps[:, 0] = np.stack([rng.randint(5, 11, n), rng.randint(1, 5, n)], 1)
    kps[:, 1] = np.stack([rng.randint(1, 6, n), rng.randint(5, 11, n)], 1)
    kps[:, 2] = np.stack([rng.randint(10, 15, n), rng.randint(5, 11, n)], 1)
    kps[:, 3] = np.stack([rng.randint(4, 12, n), rng.randint(11, 15, n)], 1)
    u = np.arange(INP_RES)[None, :]
    v = np.arange(INP_RES)[:, None]
    imgs = 0.15 * rng.randn(n, INP_RES, INP_RES, 3).astype(np.float32)
    channel = [0, 1, 1, 2]
    for i in range(n):
        for k in range(NUM_PARTS):
            cx, cy = kps[i, k] * 4 + 1.5
            imgs[i, :, :, channel[k]] += np.exp(-((u - cx) ** 2 + (v - cy) ** 2) / (2 * 2.5 ** 2))
    return torch.from_numpy(imgs), kps


generate = GenerateHeatmap(OUT_RES, NUM_PARTS)
imgs_train, kps_train = make_figures(192)
imgs_test, kps_test = make_figures(64)
hms_train = torch.from_numpy(np.stack([generate(k[None]) for k in kps_train]))
hms_test = torch.from_numpy(np.stack([generate(k[None]) for k in kps_test]))
# GenerateHeatmap treats x == 0 as a missing joint (`pt[0] > 0`), as the repository does: every x here is >= 1


def decode_argmax(hm):
    b, k, h, w = hm.shape
    idx = hm.view(b, k, -1).argmax(dim=-1)
    return torch.stack([idx % w, idx // w], dim=-1).float()


def decode_soft_argmax(hm, beta=20.0):
    b, k, h, w = hm.shape
    prob = F.softmax(hm.reshape(b, k, -1) * beta, dim=-1).view(b, k, h, w)
    xs = (prob.sum(dim=2) * torch.arange(w, dtype=hm.dtype)).sum(dim=-1)
    ys = (prob.sum(dim=3) * torch.arange(h, dtype=hm.dtype)).sum(dim=-1)
    return torch.stack([xs, ys], dim=-1)


def pck(pred, gt, thr=1.5):
    dist = torch.linalg.vector_norm(pred - gt, dim=-1)
    return (dist <= thr).float().mean().item()


gt_decode = decode_argmax(hms_test)
decode_exact = bool(torch.equal(gt_decode.long(), torch.from_numpy(kps_test)))
print(f"heatmaps {tuple(hms_train.shape)}, argmax of the drawn targets gives the keypoints: {decode_exact}")

net = PoseNet(nstack=2, inp_dim=16, oup_dim=NUM_PARTS)
print(f"PoseNet parameters {sum(p.numel() for p in net.parameters())}")
optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
batch_size = 16
first_loss = None
for epoch in range(6):
    net.train()
    perm = torch.randperm(imgs_train.shape[0])
    total, stack_losses, steps = 0.0, torch.zeros(2), 0
    for i in range(0, imgs_train.shape[0], batch_size):
        idx = perm[i:i + batch_size]
        combined_hm_preds = net(imgs_train[idx])
        combined_loss = net.calc_loss(combined_hm_preds, hms_train[idx])
        loss = torch.sum(torch.mean(combined_loss, dim=0))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()
        stack_losses += combined_loss.detach().mean(dim=0)
        steps += 1
    first_loss = total / steps if first_loss is None else first_loss
    print(f"epoch {epoch} loss {total / steps:.5f} per stack {(stack_losses / steps).tolist()}")

net.eval()
with torch.no_grad():
    preds = net(imgs_test)[:, -1]
    test_loss = HeatmapLoss()(preds, hms_test).mean().item()
    flipped = net(torch.flip(imgs_test, [2]))[:, -1]
    preds_flip = (preds + torch.flip(flipped, [3])[:, flip_ref]) / 2
hard = decode_argmax(preds)
soft = decode_soft_argmax(preds)
gt = torch.from_numpy(kps_test).float()
pck_argmax, pck_soft, pck_flip = pck(hard, gt), pck(soft, gt), pck(decode_argmax(preds_flip), gt)
hands_swapped = pck(decode_argmax(torch.flip(flipped, [3])), gt)
soft_vs_hard = torch.linalg.vector_norm(soft - hard, dim=-1).mean().item()
for k, name in enumerate(PARTS):
    print(f"  {name:7s} PCK {pck(hard[:, k], gt[:, k]):.4f}")
print(f"test heatmap loss {test_loss:.5f}; PCK argmax {pck_argmax:.4f}, soft-argmax {pck_soft:.4f}, "
      f"flip test {pck_flip:.4f}, flipped back without the permutation {hands_swapped:.4f}")
print(f"FINAL first_loss={first_loss:.5f} test_loss={test_loss:.5f} pck={pck_argmax:.4f} pck_soft={pck_soft:.4f} "
      f"pck_flip={pck_flip:.4f} pck_noperm={hands_swapped:.4f} soft_vs_hard={soft_vs_hard:.4f} "
      f"decode_exact={int(decode_exact)}")
