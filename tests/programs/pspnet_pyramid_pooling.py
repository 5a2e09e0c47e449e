"""PSPNet (Zhao et al., CVPR 2017) in the hszhao/semseg layout, on synthetic segmentation images.

Images are 33x33 (the reference asserts ``(size - 1) % 8 == 0``) with a striped, noisy background and a
few squares and discs whose colour and texture identify their class; a two-pixel border is labelled 255
and ignored. The network keeps the reference's structure at toy width: ``layer0``..``layer2`` downsample
by 8 with strided ``nn.Conv2d`` + ``nn.BatchNorm2d`` + ``nn.ReLU(inplace=True)``, ``layer3``/``layer4`` are
dilated (``nn.Conv2d(..., dilation=2, padding=2)``); the Pyramid Pooling Module is a ``nn.ModuleList`` of
``nn.AdaptiveAvgPool2d(bin)`` + 1x1 conv-BN-ReLU for bins (1, 2, 3, 6), each upsampled by
``F.interpolate(f(x), x_size[2:], mode='bilinear', align_corners=True)`` and ``torch.cat(out, 1)``-ed; the
classifier has ``nn.Dropout2d``, the auxiliary head on ``layer3`` exists only ``if self.training`` at
construction, and ``forward(x, y)`` returns ``x.max(1)[1]``, the main and the auxiliary
``nn.CrossEntropyLoss(ignore_index=255)`` losses in training, the upsampled logits in eval. Training is
the reference's: ``loss = main_loss + 0.4 * aux_loss``, SGD with momentum and weight decay on parameter
groups (backbone at ``base_lr``, PPM/cls/aux at 10x), the "poly" policy ``base_lr * (1 - curr_iter /
max_iter) ** power`` written into each ``param_group['lr']``, ``AverageMeter``s, ``model.train()``/
``model.eval()``, and ``intersectionAndUnionGPU`` by ``torch.histc`` (against the NumPy
``intersectionAndUnion`` by ``np.histogram``) giving mIoU / mAcc / allAcc.

Checked: mIoU and allAcc on held-out images, and that bilinear ``align_corners=True`` upsampling maps a
1x1 map to a constant map and a linear ramp to the ramp's exact interpolation (``torch.allclose``).
"""

# ruff: noqa: UP004, UP008  (the reference's own spelling: class AverageMeter(object), super(Class, self))

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

CLASSES = 3  # background, square, disc
IGNORE = 255
SIZE = 33


def make_images(n):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    images = np.zeros((n, 3, SIZE, SIZE), dtype=np.float32)
    labels = np.zeros((n, SIZE, SIZE), dtype=np.int64)
    for i in range(n):
        angle = rng.uniform(0, np.pi)
        stripes = 0.3 * np.sin((np.cos(angle) * xx + np.sin(angle) * yy) * rng.uniform(0.4, 0.9))
        images[i] = stripes + 0.25 * rng.randn(3, SIZE, SIZE)
        for _ in range(rng.randint(1, 4)):
            cls = rng.randint(1, CLASSES)
            r = rng.randint(4, 8)
            cy, cx = rng.randint(r, SIZE - r, size=2)
            if cls == 1:
                region = (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r)
                colour = np.array([1.0, 0.2, -0.3])
            else:
                region = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
                colour = np.array([-0.2, 0.9, 0.5])
            images[i][:, region] = colour[:, None] + 0.25 * rng.randn(3, region.sum())
            labels[i][region] = cls
        labels[i, :2, :] = labels[i, -2:, :] = labels[i, :, :2] = labels[i, :, -2:] = IGNORE
    return torch.from_numpy(images), torch.from_numpy(labels)


def conv_bn(in_planes, planes, stride=1, dilation=1):
    return nn.Sequential(
        nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(planes),
        nn.ReLU(inplace=True),
    )


class PPM(nn.Module):
    def __init__(self, in_dim, reduction_dim, bins):
        super(PPM, self).__init__()
        self.features = []
        for bin in bins:
            self.features.append(nn.Sequential(
                nn.AdaptiveAvgPool2d(bin),
                nn.Conv2d(in_dim, reduction_dim, kernel_size=1, bias=False),
                nn.BatchNorm2d(reduction_dim),
                nn.ReLU(inplace=True),
            ))
        self.features = nn.ModuleList(self.features)

    def forward(self, x):
        x_size = x.size()
        out = [x]
        for f in self.features:
            out.append(F.interpolate(f(x), x_size[2:], mode="bilinear", align_corners=True))
        return torch.cat(out, 1)


class PSPNet(nn.Module):
    def __init__(self, bins=(1, 2, 3, 6), dropout=0.1, classes=2, zoom_factor=8, use_ppm=True, criterion=nn.CrossEntropyLoss(ignore_index=255)):
        super(PSPNet, self).__init__()
        assert 2048 % len(bins) == 0
        assert classes > 1
        assert zoom_factor in [1, 2, 4, 8]
        self.zoom_factor = zoom_factor
        self.use_ppm = use_ppm
        self.criterion = criterion
        self.layer0 = conv_bn(3, 16, stride=2)
        self.layer1 = conv_bn(16, 24, stride=2)
        self.layer2 = conv_bn(24, 32, stride=2)
        self.layer3 = conv_bn(32, 32, dilation=2)
        self.layer4 = conv_bn(32, 48, dilation=2)
        fea_dim = 48
        if use_ppm:
            self.ppm = PPM(fea_dim, int(fea_dim / len(bins)), bins)
            fea_dim *= 2
        self.cls = nn.Sequential(
            nn.Conv2d(fea_dim, 32, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.Dropout2d(p=dropout),
            nn.Conv2d(32, classes, kernel_size=1),
        )
        if self.training:
            self.aux = nn.Sequential(
                nn.Conv2d(32, 16, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(16),
                nn.ReLU(inplace=True),
                nn.Dropout2d(p=dropout),
                nn.Conv2d(16, classes, kernel_size=1),
            )

    def forward(self, x, y=None):
        x_size = x.size()
        assert (x_size[2] - 1) % 8 == 0 and (x_size[3] - 1) % 8 == 0
        h = int((x_size[2] - 1) / 8 * self.zoom_factor + 1)
        w = int((x_size[3] - 1) / 8 * self.zoom_factor + 1)

        x = self.layer0(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x_tmp = self.layer3(x)
        x = self.layer4(x_tmp)
        if self.use_ppm:
            x = self.ppm(x)
        x = self.cls(x)
        if self.zoom_factor != 1:
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=True)

        if self.training:
            aux = self.aux(x_tmp)
            if self.zoom_factor != 1:
                aux = F.interpolate(aux, size=(h, w), mode="bilinear", align_corners=True)
            main_loss = self.criterion(x, y)
            aux_loss = self.criterion(aux, y)
            return x.max(1)[1], main_loss, aux_loss
        else:
            return x


class AverageMeter(object):
    """Computes and stores the average and current value"""

    def __init__(self):
        self.reset()

    def reset(self):
        self.val = 0
        self.avg = 0
        self.sum = 0
        self.count = 0

    def update(self, val, n=1):
        self.val = val
        self.sum += val * n
        self.count += n
        self.avg = self.sum / self.count


def poly_learning_rate(base_lr, curr_iter, max_iter, power=0.9):
    """poly learning rate policy"""
    lr = base_lr * (1 - float(curr_iter) / max_iter) ** power
    return lr


def intersectionAndUnion(output, target, K, ignore_index=255):
    # 'K' classes, output and target sizes are N or N * L or N * H * W, each value in range 0 to K - 1.
    assert output.ndim in [1, 2, 3]
    assert output.shape == target.shape
    output = output.reshape(output.size).copy()
    target = target.reshape(target.size)
    output[np.where(target == ignore_index)[0]] = ignore_index
    intersection = output[np.where(output == target)[0]]
    area_intersection, _ = np.histogram(intersection, bins=np.arange(K + 1))
    area_output, _ = np.histogram(output, bins=np.arange(K + 1))
    area_target, _ = np.histogram(target, bins=np.arange(K + 1))
    area_union = area_output + area_target - area_intersection
    return area_intersection, area_union, area_target


def intersectionAndUnionGPU(output, target, K, ignore_index=255):
    # 'K' classes, output and target sizes are N or N * L or N * H * W, each value in range 0 to K - 1.
    assert output.dim() in [1, 2, 3]
    assert output.shape == target.shape
    output = output.view(-1)
    target = target.view(-1)
    output[target == ignore_index] = ignore_index
    intersection = output[output == target]
    # histc has no integer kernel on the CPU
    area_intersection = torch.histc(intersection.float(), bins=K, min=0, max=K - 1)
    area_output = torch.histc(output.float(), bins=K, min=0, max=K - 1)
    area_target = torch.histc(target.float(), bins=K, min=0, max=K - 1)
    area_union = area_output + area_target - area_intersection
    return area_intersection, area_union, area_target


# ----------------------------------------------------------------------------------- training
train_x, train_y = make_images(128)
val_x, val_y = make_images(48)
print(f"images: {len(train_x)} train, {len(val_x)} val, {SIZE}x{SIZE}, class pixels {[int((train_y == c).sum()) > 0 for c in range(CLASSES)]}")

model = PSPNet(classes=CLASSES, zoom_factor=8)
base_lr, power, epochs, batch_size = 0.01, 0.9, 8, 16
modules_ori = [model.layer0, model.layer1, model.layer2, model.layer3, model.layer4]
modules_new = [model.ppm, model.cls, model.aux]
params_list = []
for module in modules_ori:
    params_list.append(dict(params=module.parameters(), lr=base_lr))
for module in modules_new:
    params_list.append(dict(params=module.parameters(), lr=base_lr * 10))
index_split = 5
optimizer = torch.optim.SGD(params_list, lr=base_lr, momentum=0.9, weight_decay=1e-4)
iters_per_epoch = len(train_x) // batch_size
max_iter = epochs * iters_per_epoch
print(f"param groups {len(optimizer.param_groups)}, max_iter {max_iter}")

for epoch in range(epochs):
    model.train()
    main_loss_meter, aux_loss_meter = AverageMeter(), AverageMeter()
    intersection_meter, union_meter, target_meter = AverageMeter(), AverageMeter(), AverageMeter()
    perm = torch.randperm(len(train_x))
    for i in range(iters_per_epoch):
        idx = perm[i * batch_size : (i + 1) * batch_size]
        input, target = train_x[idx], train_y[idx]
        output, main_loss, aux_loss = model(input, target)
        main_loss, aux_loss = torch.mean(main_loss), torch.mean(aux_loss)
        loss = main_loss + 0.4 * aux_loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

        n = input.size(0)
        intersection, union, target = intersectionAndUnionGPU(output, target, CLASSES, IGNORE)
        intersection_meter.update(intersection.numpy()), union_meter.update(union.numpy()), target_meter.update(target.numpy())
        main_loss_meter.update(main_loss.item(), n)
        aux_loss_meter.update(aux_loss.item(), n)

        current_iter = epoch * iters_per_epoch + i + 1
        current_lr = poly_learning_rate(base_lr, current_iter, max_iter, power=power)
        for index in range(0, index_split):
            optimizer.param_groups[index]["lr"] = current_lr
        for index in range(index_split, len(optimizer.param_groups)):
            optimizer.param_groups[index]["lr"] = current_lr * 10
    iou_class = intersection_meter.sum / (union_meter.sum + 1e-10)
    accuracy_class = intersection_meter.sum / (target_meter.sum + 1e-10)
    allAcc = sum(intersection_meter.sum) / (sum(target_meter.sum) + 1e-10)
    print(f"Train result at epoch [{epoch + 1}/{epochs}]: main {main_loss_meter.avg:.4f} aux {aux_loss_meter.avg:.4f} "
          f"mIoU/mAcc/allAcc {np.mean(iou_class):.4f}/{np.mean(accuracy_class):.4f}/{allAcc:.4f} lr {optimizer.param_groups[0]['lr']:.6f}")

model.eval()
intersection_meter, union_meter, target_meter = AverageMeter(), AverageMeter(), AverageMeter()
agree = True
with torch.no_grad():
    for i in range(0, len(val_x), batch_size):
        input, target = val_x[i : i + batch_size], val_y[i : i + batch_size]
        output = model(input)
        assert output.shape == (input.size(0), CLASSES, SIZE, SIZE)
        pred = output.max(1)[1]
        np_i, np_u, np_t = intersectionAndUnion(pred.numpy(), target.numpy(), CLASSES, IGNORE)
        intersection, union, target = intersectionAndUnionGPU(pred, target, CLASSES, IGNORE)
        agree &= bool(np.array_equal(intersection.numpy(), np_i) and np.array_equal(union.numpy(), np_u) and np.array_equal(target.numpy(), np_t))
        intersection_meter.update(intersection.numpy()), union_meter.update(union.numpy()), target_meter.update(target.numpy())
iou_class = intersection_meter.sum / (union_meter.sum + 1e-10)
accuracy_class = intersection_meter.sum / (target_meter.sum + 1e-10)
mIoU, mAcc = np.mean(iou_class), np.mean(accuracy_class)
allAcc = sum(intersection_meter.sum) / (sum(target_meter.sum) + 1e-10)
print(f"Val result: mIoU/mAcc/allAcc {mIoU:.4f}/{mAcc:.4f}/{allAcc:.4f}, histc == np.histogram: {agree}")
for c in range(CLASSES):
    print(f"Class_{c} Result: iou/accuracy {iou_class[c]:.4f}/{accuracy_class[c]:.4f}.")

# ----------------------------------------------------------------------------------- align_corners identities
one = torch.randn(2, 3, 1, 1)
constant = F.interpolate(one, size=(7, 9), mode="bilinear", align_corners=True)
constant_ok = torch.allclose(constant, one.expand(2, 3, 7, 9))
a, b, c0 = 0.7, -1.3, 0.25
ramp = a * torch.arange(4.0).view(4, 1) + b * torch.arange(5.0).view(1, 5) + c0
up = F.interpolate(ramp[None, None], size=(10, 13), mode="bilinear", align_corners=True)[0, 0]
exact = a * torch.linspace(0, 3, 10).view(10, 1) + b * torch.linspace(0, 4, 13).view(1, 13) + c0
ramp_ok = torch.allclose(up, exact, atol=1e-6)
corners_ok = torch.equal(up[[0, 0, -1, -1], [0, -1, 0, -1]], ramp[[0, 0, -1, -1], [0, -1, 0, -1]])
print(f"1x1 -> constant: {constant_ok}, ramp exact: {ramp_ok}, corners kept: {corners_ok}")
print(f"FINAL miou={mIoU:.4f} all_acc={allAcc:.4f} align_corners_ok={int(constant_ok and ramp_ok and corners_ok and agree)}")
