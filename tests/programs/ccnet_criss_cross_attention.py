"""CCNet's criss-cross attention (speedinghzl/CCNet, the pure-PyTorch version) segmenting toy masks.

``CrissCrossAttention`` as the repository writes it: query/key/value 1x1 convs,
``permute(0, 3, 1, 2).contiguous().view(b * w, -1, h)`` column and row reshapes, ``torch.bmm``
energies, the ``INF`` diagonal mask (``-torch.diag(torch.tensor(float("inf")).repeat(H), 0)
.unsqueeze(0).repeat(B * W, 1, 1)``), ``torch.cat([energy_H, energy_W], 3)`` + softmax over dim 3,
``gamma = nn.Parameter(torch.zeros(1))``; ``RCCAModule`` with recurrence 2, ``F.interpolate``
back to the input size with ``align_corners=True``, ``CrossEntropyLoss(ignore_index=255)``,
SGD with momentum and the poly learning rate, mIoU from a confusion matrix.
Checks: attention rows sum to 1, two passes reach every pixel from every other, mIoU rises.
"""

# ruff: noqa: UP008, B007  (the code's own spelling: super(CCNet, self), `for i in range(recurrence)`)

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn import Softmax

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
IGNORE_LABEL = 255
NUM_CLASSES = 3


def INF(B, H, W):
    return -torch.diag(torch.tensor(float("inf")).repeat(H), 0).unsqueeze(0).repeat(B * W, 1, 1)


class CrissCrossAttention(nn.Module):
    """ Criss-Cross Attention Module"""

    def __init__(self, in_dim):
        super(CrissCrossAttention, self).__init__()
        self.query_conv = nn.Conv2d(in_channels=in_dim, out_channels=in_dim // 8, kernel_size=1)
        self.key_conv = nn.Conv2d(in_channels=in_dim, out_channels=in_dim // 8, kernel_size=1)
        self.value_conv = nn.Conv2d(in_channels=in_dim, out_channels=in_dim, kernel_size=1)
        self.softmax = Softmax(dim=3)
        self.INF = INF
        self.gamma = nn.Parameter(torch.zeros(1))
        self.attention_maps = []

    def forward(self, x):
        m_batchsize, _, height, width = x.size()
        proj_query = self.query_conv(x)
        proj_query_H = proj_query.permute(0, 3, 1, 2).contiguous().view(m_batchsize * width, -1, height).permute(0, 2, 1)
        proj_query_W = proj_query.permute(0, 2, 1, 3).contiguous().view(m_batchsize * height, -1, width).permute(0, 2, 1)
        proj_key = self.key_conv(x)
        proj_key_H = proj_key.permute(0, 3, 1, 2).contiguous().view(m_batchsize * width, -1, height)
        proj_key_W = proj_key.permute(0, 2, 1, 3).contiguous().view(m_batchsize * height, -1, width)
        proj_value = self.value_conv(x)
        proj_value_H = proj_value.permute(0, 3, 1, 2).contiguous().view(m_batchsize * width, -1, height)
        proj_value_W = proj_value.permute(0, 2, 1, 3).contiguous().view(m_batchsize * height, -1, width)
        energy_H = (torch.bmm(proj_query_H, proj_key_H) + self.INF(m_batchsize, height, width)).view(m_batchsize, width, height, height).permute(0, 2, 1, 3)
        energy_W = torch.bmm(proj_query_W, proj_key_W).view(m_batchsize, height, width, width)
        concate = self.softmax(torch.cat([energy_H, energy_W], 3))
        self.attention_maps.append(concate.detach())

        att_H = concate[:, :, :, 0:height].permute(0, 2, 1, 3).contiguous().view(m_batchsize * width, height, height)
        att_W = concate[:, :, :, height:height + width].contiguous().view(m_batchsize * height, width, width)
        out_H = torch.bmm(proj_value_H, att_H.permute(0, 2, 1)).view(m_batchsize, width, -1, height).permute(0, 2, 3, 1)
        out_W = torch.bmm(proj_value_W, att_W.permute(0, 2, 1)).view(m_batchsize, height, -1, width).permute(0, 2, 1, 3)
        return self.gamma * (out_H + out_W) + x


def conv_bn_relu(in_channels, out_channels, stride=1):
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class RCCAModule(nn.Module):
    def __init__(self, in_channels, out_channels, num_classes):
        super(RCCAModule, self).__init__()
        inter_channels = in_channels // 2
        self.conva = conv_bn_relu(in_channels, inter_channels)
        self.cca = CrissCrossAttention(inter_channels)
        self.convb = conv_bn_relu(inter_channels, inter_channels)
        self.bottleneck = nn.Sequential(
            nn.Conv2d(in_channels + inter_channels, out_channels, kernel_size=3, padding=1, dilation=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
            nn.Dropout2d(0.1),
            nn.Conv2d(out_channels, num_classes, kernel_size=1, stride=1, padding=0, bias=True),
        )

    def forward(self, x, recurrence=1):
        output = self.conva(x)
        for i in range(recurrence):
            output = self.cca(output)
        output = self.convb(output)
        output = self.bottleneck(torch.cat([x, output], 1))
        return output


class CCNet(nn.Module):
    def __init__(self, num_classes, recurrence=2):
        super(CCNet, self).__init__()
        self.recurrence = recurrence
        self.backbone = nn.Sequential(conv_bn_relu(3, 16, stride=2), conv_bn_relu(16, 32, stride=2),
                                      conv_bn_relu(32, 32))
        self.head = RCCAModule(32, 32, num_classes)

    def forward(self, x):
        x = self.backbone(x)
        return self.head(x, self.recurrence)


class CriterionDSN(nn.Module):
    def __init__(self, ignore_index=255):
        super(CriterionDSN, self).__init__()
        self.criterion = torch.nn.CrossEntropyLoss(ignore_index=ignore_index)

    def forward(self, preds, target):
        h, w = target.size(1), target.size(2)
        scale_pred = F.interpolate(input=preds, size=(h, w), mode="bilinear", align_corners=True)
        return self.criterion(scale_pred, target)


def make_scenes(n, rng):
    """32x32 RGB scenes: a rectangle (class 1) and a disc (class 2) on clutter; their rims are ignored."""
    ys, xs = np.mgrid[0:32, 0:32]
    images = np.zeros((n, 3, 32, 32), np.float32)
    labels = np.zeros((n, 32, 32), np.int64)
    for i in range(n):
        y0, x0 = rng.randint(0, 20, size=2)
        hh, ww = rng.randint(6, 12, size=2)
        rect = (ys >= y0) & (ys < y0 + hh) & (xs >= x0) & (xs < x0 + ww)
        cy, cx = rng.uniform(6, 26, size=2)
        r = rng.uniform(3, 6)
        dist = np.sqrt((ys - cy) ** 2 + (xs - cx) ** 2)
        disc = dist <= r
        labels[i][rect] = 1
        labels[i][disc] = 2
        labels[i][np.abs(dist - r) < 0.5] = IGNORE_LABEL
        images[i] = 0.6 * rng.randn(3, 32, 32)
        images[i, 0][rect] += 1.0
        images[i, 1][disc] += 1.0
        images[i, 2][rect | disc] -= 0.5
    return torch.from_numpy(images), torch.from_numpy(labels)


def get_confusion_matrix(gt_label, pred_label, class_num):
    index = (gt_label * class_num + pred_label).astype("int32")
    label_count = np.bincount(index)
    confusion_matrix = np.zeros((class_num, class_num))
    for i_label in range(class_num):
        for i_pred_label in range(class_num):
            cur_index = i_label * class_num + i_pred_label
            if cur_index < len(label_count):
                confusion_matrix[i_label, i_pred_label] = label_count[cur_index]
    return confusion_matrix


def lr_poly(base_lr, iter, max_iter, power):
    return base_lr * ((1 - float(iter) / max_iter) ** (power))


def adjust_learning_rate(optimizer, i_iter):
    lr = lr_poly(LEARNING_RATE, i_iter, NUM_STEPS, POWER)
    optimizer.param_groups[0]["lr"] = lr
    return lr


@torch.no_grad()
def evaluate(model, images, labels):
    model.eval()
    output = model(images)
    output = F.interpolate(output, size=labels.shape[1:], mode="bilinear", align_corners=True)
    seg_pred = np.asarray(np.argmax(output.cpu().numpy().transpose(0, 2, 3, 1), axis=3), dtype=np.uint8)
    seg_gt = np.asarray(labels.numpy(), dtype=np.int64)
    ignore_index = seg_gt != IGNORE_LABEL
    confusion = get_confusion_matrix(seg_gt[ignore_index], seg_pred[ignore_index], NUM_CLASSES)
    pos, res, tp = confusion.sum(1), confusion.sum(0), np.diag(confusion)
    IU_array = tp / np.maximum(1.0, pos + res - tp)
    model.train()
    return IU_array.mean(), IU_array


rng = np.random.RandomState(7)
train_images, train_labels = make_scenes(128, rng)
val_images, val_labels = make_scenes(48, rng)

LEARNING_RATE, POWER, BATCH_SIZE, EPOCHS = 0.05, 0.9, 16, 8
NUM_STEPS = EPOCHS * len(train_images) // BATCH_SIZE
model = CCNet(NUM_CLASSES, recurrence=2)
criterion = CriterionDSN(ignore_index=IGNORE_LABEL)
optimizer = torch.optim.SGD([{"params": filter(lambda p: p.requires_grad, model.parameters()), "lr": LEARNING_RATE}],
                            lr=LEARNING_RATE, momentum=0.9, weight_decay=5e-4)
optimizer.zero_grad()
ignored = (train_labels == IGNORE_LABEL).float().mean().item()
print(f"{len(train_images)} training scenes, {NUM_STEPS} steps, ignored pixel fraction {ignored:.4f}")

miou0, _ = evaluate(model, val_images, val_labels)
i_iter = 0
for epoch in range(EPOCHS):
    perm = torch.randperm(len(train_images))
    epoch_loss = 0.0
    for b in range(len(train_images) // BATCH_SIZE):
        idx = perm[b * BATCH_SIZE:(b + 1) * BATCH_SIZE]
        optimizer.zero_grad()
        lr = adjust_learning_rate(optimizer, i_iter)
        preds = model(train_images[idx])
        loss = criterion(preds, train_labels[idx])
        loss.backward()
        optimizer.step()
        model.head.cca.attention_maps.clear()
        epoch_loss += loss.item()
        i_iter += 1
    miou, ious = evaluate(model, val_images, val_labels)
    print(f"epoch {epoch} iter {i_iter} lr {lr:.5f} loss {epoch_loss / (len(train_images) // BATCH_SIZE):.4f} "
          f"gamma {model.head.cca.gamma.item():.4f} mIoU {miou:.4f} IoU {' '.join(f'{v:.3f}' for v in ious)}")

# The two passes' attention maps: each pixel's row over its column and row sums to 1, and the
# composed map of the two passes has full support (every pixel reaches every other).
model.head.cca.attention_maps.clear()
with torch.no_grad():
    model.eval()
    model(val_images[:2])
    first, second = model.head.cca.attention_maps
    b, h, w, _ = first.shape
    sum_err = max((att.sum(3) - 1).abs().max().item() for att in (first, second))
    assert first.shape == (2, 8, 8, 16)
    assert (first[:, torch.arange(h), :, torch.arange(h)] == 0).all()  # the INF diagonal


def dense_attention(att):
    """(b, h, w, h + w) criss-cross weights as a (b, h*w, h*w) matrix over flattened pixels."""
    b, h, w, _ = att.shape
    dense = torch.zeros(b, h, w, h, w, dtype=torch.float64)
    rows = torch.arange(h)
    cols = torch.arange(w)
    for i in range(h):
        for j in range(w):
            dense[:, i, j, rows, j] += att[:, i, j, :h].double()
            dense[:, i, j, i, cols] += att[:, i, j, h:].double()
    return dense.view(b, h * w, h * w)


one_pass = dense_attention(first)
composed = torch.bmm(dense_attention(second), one_pass)
reach_one = (one_pass > 0).double().mean().item()
assert reach_one < 0.5
assert (composed > 0).all(), "R=2 criss-cross attention must connect every pair of pixels"
row_err = (composed.sum(2) - 1).abs().max().item()
print(f"attention {tuple(first.shape)}: row-sum error {sum_err:.2e}, one-pass support {reach_one:.4f}, "
      f"two-pass support {(composed > 0).double().mean().item():.4f}, composed row-sum error {row_err:.2e}")
print(f"FINAL miou={miou:.4f} miou_gain={miou - miou0:.4f} loss={epoch_loss / (len(train_images) // BATCH_SIZE):.4f} "
      f"attn_sum_err={sum_err + row_err:.6f}")
