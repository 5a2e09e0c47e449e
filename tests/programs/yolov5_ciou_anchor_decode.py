"""YOLOv5 (ultralytics/yolov5 models/yolo.py, utils/loss.py, utils/general.py, utils/metrics.py) at toy size.

Synthetic 32x32 images hold one to three filled rectangles, red (class 0) or green (class 1), on noise;
labels are YOLO rows ``[image, class, x, y, w, h]`` normalised to the image. The model is a small stack of
YOLOv5 ``Conv`` blocks (``nn.Conv2d(..., autopad(k), bias=False)`` + ``nn.BatchNorm2d`` + ``nn.SiLU``)
feeding a two-level ``Detect`` head (strides 4 and 8, three anchors each): strides found by a forward
pass of ``torch.zeros(1, ch, s, s)``, anchors divided by them, ``_initialize_biases`` on
``mi.bias.view(m.na, -1)``, ``Detect._make_grid`` (``torch.meshgrid(y, x, indexing='ij')``,
``torch.stack((xv, yv), 2).expand(shape) - 0.5``) and the decode ``xy, wh, conf =
x[i].sigmoid().split((2, 2, self.nc + 1), 4)``, ``(xy * 2 + grid) * stride``, ``(wh * 2) ** 2 *
anchor_grid``. ``ComputeLoss`` is the repository's: ``build_targets`` (anchor indices
``torch.arange(na).float().view(na, 1).repeat(1, nt)``, the ratio test ``torch.max(r, 1 / r).max(2)[0] <
anchor_t``, neighbour offsets from ``((gxy % 1 < g) & (gxy > 1)).T``, ``torch.stack((torch.ones_like(j),
j, k, l, m))``, ``t.repeat((5, 1, 1))[j]``, ``.long()``, ``clamp_``), ``bbox_iou(..., CIoU=True)`` with
``torch.atan`` and an ``alpha`` under ``torch.no_grad()``, objectness targets ``iou.detach().clamp(0).
type(tobj.dtype)``, ``BCEWithLogitsLoss(pos_weight=...)``, ``smooth_BCE`` class targets and per-level
``balance``. ``smart_optimizer`` splits parameters by ``nn.__dict__`` norm classes into Adam groups with
``add_param_group``; ``non_max_suppression`` uses ``xywh2xyxy`` and a greedy IoU NMS written in torch ops
(``box_iou``, ``argsort(descending=True)``) with the class-offset trick.

Checked: the training loss falls; the inference decode of every positive anchor equals the loss's decode
(``pxy.sigmoid() * 2 - 0.5`` + cell, times stride); CIoU of a box with itself is 1 and matches a NumPy
CIoU; torch NMS keeps the same boxes as a NumPy NMS; recall and precision at IoU 0.5 on held-out images.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

IMG = 32
NC = 2
ANCHORS = ([6, 6, 10, 7, 7, 10], [14, 14, 20, 12, 12, 20])
HYP = {"box": 0.05, "obj": 1.0, "cls": 0.5, "cls_pw": 1.0, "obj_pw": 1.0, "anchor_t": 4.0, "label_smoothing": 0.0}


def make_data(n):
    images = (0.2 * rng.randn(n, 3, IMG, IMG)).astype(np.float32)
    labels = []
    for i in range(n):
        for _ in range(rng.randint(1, 4)):
            c = rng.randint(0, NC)
            w, h = rng.randint(5, 17, size=2)
            x0, y0 = rng.randint(0, IMG - w + 1), rng.randint(0, IMG - h + 1)
            images[i, c, y0 : y0 + h, x0 : x0 + w] += 1.0
            labels.append([i, c, (x0 + w / 2) / IMG, (y0 + h / 2) / IMG, w / IMG, h / IMG])
    return torch.from_numpy(images), torch.tensor(labels, dtype=torch.float32)


# ------------------------------------------------------------------------------------------- models/common.py
def autopad(k, p=None, d=1):
    if d > 1:
        k = d * (k - 1) + 1 if isinstance(k, int) else [d * (x - 1) + 1 for x in k]
    if p is None:
        p = k // 2 if isinstance(k, int) else [x // 2 for x in k]
    return p


class Conv(nn.Module):
    default_act = nn.SiLU()

    def __init__(self, c1, c2, k=1, s=1, p=None, g=1, d=1, act=True):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, autopad(k, p, d), groups=g, dilation=d, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = self.default_act if act is True else act if isinstance(act, nn.Module) else nn.Identity()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


# --------------------------------------------------------------------------------------------- models/yolo.py
class Detect(nn.Module):
    stride = None
    dynamic = False

    def __init__(self, nc=80, anchors=(), ch=(), inplace=True):
        super().__init__()
        self.nc = nc
        self.no = nc + 5
        self.nl = len(anchors)
        self.na = len(anchors[0]) // 2
        self.grid = [torch.empty(0) for _ in range(self.nl)]
        self.anchor_grid = [torch.empty(0) for _ in range(self.nl)]
        self.register_buffer("anchors", torch.tensor(anchors).float().view(self.nl, -1, 2))
        self.m = nn.ModuleList(nn.Conv2d(x, self.no * self.na, 1) for x in ch)
        self.inplace = inplace

    def forward(self, x):
        z = []
        for i in range(self.nl):
            x[i] = self.m[i](x[i])
            bs, _, ny, nx = x[i].shape
            x[i] = x[i].view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()
            if not self.training:
                if self.dynamic or self.grid[i].shape[2:4] != x[i].shape[2:4]:
                    self.grid[i], self.anchor_grid[i] = self._make_grid(nx, ny, i)
                xy, wh, conf = x[i].sigmoid().split((2, 2, self.nc + 1), 4)
                xy = (xy * 2 + self.grid[i]) * self.stride[i]
                wh = (wh * 2) ** 2 * self.anchor_grid[i]
                y = torch.cat((xy, wh, conf), 4)
                z.append(y.view(bs, self.na * nx * ny, self.no))
        return x if self.training else (torch.cat(z, 1), x)

    def _make_grid(self, nx=20, ny=20, i=0):
        d = self.anchors[i].device
        t = self.anchors[i].dtype
        shape = 1, self.na, ny, nx, 2
        y, x = torch.arange(ny, device=d, dtype=t), torch.arange(nx, device=d, dtype=t)
        yv, xv = torch.meshgrid(y, x, indexing="ij")
        grid = torch.stack((xv, yv), 2).expand(shape) - 0.5  # add grid offset, i.e. y = 2.0 * x - 0.5
        anchor_grid = (self.anchors[i] * self.stride[i]).view((1, self.na, 1, 1, 2)).expand(shape)
        return grid, anchor_grid


def check_anchor_order(m):
    a = m.anchors.prod(-1).mean(-1).view(-1)
    da = a[-1] - a[0]
    ds = m.stride[-1] - m.stride[0]
    if da and (da.sign() != ds.sign()):
        m.anchors[:] = m.anchors.flip(0)


class DetectionModel(nn.Module):
    def __init__(self, ch=3, nc=NC, anchors=ANCHORS):
        super().__init__()
        self.b1 = nn.Sequential(Conv(ch, 16, 3, 2), Conv(16, 32, 3, 2), Conv(32, 32, 3, 1))  # P2/4
        self.b2 = nn.Sequential(Conv(32, 48, 3, 2), Conv(48, 48, 3, 1))  # P3/8
        self.model = nn.ModuleList([self.b1, self.b2, Detect(nc, anchors, (32, 48))])
        m = self.model[-1]
        s = 64
        m.inplace = True
        m.stride = torch.tensor([s / x.shape[-2] for x in self.forward(torch.zeros(1, ch, s, s))])
        check_anchor_order(m)
        m.anchors /= m.stride.view(-1, 1, 1)
        self.stride = m.stride
        self._initialize_biases()

    def forward(self, x):
        p2 = self.b1(x)
        p3 = self.b2(p2)
        return self.model[-1]([p2, p3])

    def _initialize_biases(self, cf=None):
        m = self.model[-1]
        for mi, s in zip(m.m, m.stride):
            b = mi.bias.view(m.na, -1)
            b.data[:, 4] += math.log(8 / (IMG / s) ** 2)  # obj (8 objects per image at the model's resolution)
            b.data[:, 5 : 5 + m.nc] += math.log(0.6 / (m.nc - 0.99999)) if cf is None else torch.log(cf / cf.sum())
            mi.bias = torch.nn.Parameter(b.view(-1), requires_grad=True)


# ------------------------------------------------------------------------------------ utils/metrics.py, loss.py
def bbox_iou(box1, box2, xywh=True, GIoU=False, DIoU=False, CIoU=False, eps=1e-7):
    if xywh:  # transform from xywh to xyxy
        (x1, y1, w1, h1), (x2, y2, w2, h2) = box1.chunk(4, -1), box2.chunk(4, -1)
        w1_, h1_, w2_, h2_ = w1 / 2, h1 / 2, w2 / 2, h2 / 2
        b1_x1, b1_x2, b1_y1, b1_y2 = x1 - w1_, x1 + w1_, y1 - h1_, y1 + h1_
        b2_x1, b2_x2, b2_y1, b2_y2 = x2 - w2_, x2 + w2_, y2 - h2_, y2 + h2_
    else:  # x1, y1, x2, y2 = box1
        b1_x1, b1_y1, b1_x2, b1_y2 = box1.chunk(4, -1)
        b2_x1, b2_y1, b2_x2, b2_y2 = box2.chunk(4, -1)
        w1, h1 = b1_x2 - b1_x1, (b1_y2 - b1_y1).clamp(eps)
        w2, h2 = b2_x2 - b2_x1, (b2_y2 - b2_y1).clamp(eps)

    inter = (b1_x2.minimum(b2_x2) - b1_x1.maximum(b2_x1)).clamp(0) * (b1_y2.minimum(b2_y2) - b1_y1.maximum(b2_y1)).clamp(0)
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    if CIoU or DIoU or GIoU:
        cw = b1_x2.maximum(b2_x2) - b1_x1.minimum(b2_x1)  # convex (smallest enclosing box) width
        ch = b1_y2.maximum(b2_y2) - b1_y1.minimum(b2_y1)  # convex height
        if CIoU or DIoU:
            c2 = cw**2 + ch**2 + eps  # convex diagonal squared
            rho2 = ((b2_x1 + b2_x2 - b1_x1 - b1_x2) ** 2 + (b2_y1 + b2_y2 - b1_y1 - b1_y2) ** 2) / 4
            if CIoU:
                v = (4 / math.pi**2) * (torch.atan(w2 / h2) - torch.atan(w1 / h1)).pow(2)
                with torch.no_grad():
                    alpha = v / (v - iou + (1 + eps))
                return iou - (rho2 / c2 + v * alpha)  # CIoU
            return iou - rho2 / c2  # DIoU
        c_area = cw * ch + eps  # convex area
        return iou - (c_area - union) / c_area  # GIoU
    return iou


def smooth_BCE(eps=0.1):
    return 1.0 - 0.5 * eps, 0.5 * eps


class ComputeLoss:
    sort_obj_iou = False

    def __init__(self, model, autobalance=False):
        device = next(model.parameters()).device
        h = model.hyp
        BCEcls = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([h["cls_pw"]], device=device))
        BCEobj = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([h["obj_pw"]], device=device))
        self.cp, self.cn = smooth_BCE(eps=h.get("label_smoothing", 0.0))
        m = model.model[-1]
        self.balance = {3: [4.0, 1.0, 0.4]}.get(m.nl, [4.0, 1.0, 0.25, 0.06, 0.02])
        self.ssi = list(m.stride).index(16) if autobalance else 0
        self.BCEcls, self.BCEobj, self.gr, self.hyp, self.autobalance = BCEcls, BCEobj, 1.0, h, autobalance
        self.na = m.na
        self.nc = m.nc
        self.nl = m.nl
        self.anchors = m.anchors
        self.device = device

    def __call__(self, p, targets):
        lcls = torch.zeros(1, device=self.device)
        lbox = torch.zeros(1, device=self.device)
        lobj = torch.zeros(1, device=self.device)
        tcls, tbox, indices, anchors = self.build_targets(p, targets)

        for i, pi in enumerate(p):
            b, a, gj, gi = indices[i]
            tobj = torch.zeros(pi.shape[:4], dtype=pi.dtype, device=self.device)
            n = b.shape[0]
            if n:
                pxy, pwh, _, pcls = pi[b, a, gj, gi].split((2, 2, 1, self.nc), 1)
                pxy = pxy.sigmoid() * 2 - 0.5
                pwh = (pwh.sigmoid() * 2) ** 2 * anchors[i]
                pbox = torch.cat((pxy, pwh), 1)
                iou = bbox_iou(pbox, tbox[i], CIoU=True).squeeze()
                lbox += (1.0 - iou).mean()
                iou = iou.detach().clamp(0).type(tobj.dtype)
                if self.sort_obj_iou:
                    j = iou.argsort()
                    b, a, gj, gi, iou = b[j], a[j], gj[j], gi[j], iou[j]
                if self.gr < 1:
                    iou = (1.0 - self.gr) + self.gr * iou
                tobj[b, a, gj, gi] = iou
                if self.nc > 1:
                    t = torch.full_like(pcls, self.cn, device=self.device)
                    t[range(n), tcls[i]] = self.cp
                    lcls += self.BCEcls(pcls, t)
            obji = self.BCEobj(pi[..., 4], tobj)
            lobj += obji * self.balance[i]

        lbox *= self.hyp["box"]
        lobj *= self.hyp["obj"]
        lcls *= self.hyp["cls"]
        bs = tobj.shape[0]
        return (lbox + lobj + lcls) * bs, torch.cat((lbox, lobj, lcls)).detach()

    def build_targets(self, p, targets):
        na, nt = self.na, targets.shape[0]
        tcls, tbox, indices, anch = [], [], [], []
        gain = torch.ones(7, device=self.device)
        ai = torch.arange(na, device=self.device).float().view(na, 1).repeat(1, nt)
        targets = torch.cat((targets.repeat(na, 1, 1), ai[..., None]), 2)  # append anchor indices

        g = 0.5  # bias
        off = torch.tensor([[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]], device=self.device).float() * g

        for i in range(self.nl):
            anchors, shape = self.anchors[i], p[i].shape
            gain[2:6] = torch.tensor(shape)[[3, 2, 3, 2]]  # xyxy gain
            t = targets * gain
            if nt:
                r = t[..., 4:6] / anchors[:, None]  # wh ratio
                j = torch.max(r, 1 / r).max(2)[0] < self.hyp["anchor_t"]
                t = t[j]  # filter
                gxy = t[:, 2:4]  # grid xy
                gxi = gain[[2, 3]] - gxy  # inverse
                j, k = ((gxy % 1 < g) & (gxy > 1)).T
                l, m = ((gxi % 1 < g) & (gxi > 1)).T
                j = torch.stack((torch.ones_like(j), j, k, l, m))
                t = t.repeat((5, 1, 1))[j]
                offsets = (torch.zeros_like(gxy)[None] + off[:, None])[j]
            else:
                t = targets[0]
                offsets = 0

            bc, gxy, gwh, a = t.chunk(4, 1)  # (image, class), grid xy, grid wh, anchors
            a, (b, c) = a.long().view(-1), bc.long().T
            gij = (gxy - offsets).long()
            gi, gj = gij.T  # grid indices

            indices.append((b, a, gj.clamp_(0, shape[2] - 1), gi.clamp_(0, shape[3] - 1)))
            tbox.append(torch.cat((gxy - gij, gwh), 1))
            anch.append(anchors[a])
            tcls.append(c)
        return tcls, tbox, indices, anch


# ----------------------------------------------------------------------------------------- utils/general.py
def xywh2xyxy(x):
    y = x.clone() if isinstance(x, torch.Tensor) else np.copy(x)
    y[..., 0] = x[..., 0] - x[..., 2] / 2  # top left x
    y[..., 1] = x[..., 1] - x[..., 3] / 2  # top left y
    y[..., 2] = x[..., 0] + x[..., 2] / 2  # bottom right x
    y[..., 3] = x[..., 1] + x[..., 3] / 2  # bottom right y
    return y


def box_iou(box1, box2, eps=1e-7):
    (a1, a2), (b1, b2) = box1.unsqueeze(1).chunk(2, 2), box2.unsqueeze(0).chunk(2, 2)
    inter = (torch.min(a2, b2) - torch.max(a1, b1)).clamp(0).prod(2)
    return inter / ((a2 - a1).prod(2) + (b2 - b1).prod(2) - inter + eps)


def nms(boxes, scores, iou_thres):
    order = scores.argsort(descending=True)
    keep = []
    while order.numel() > 0:
        i = order[0]
        keep.append(i)
        if order.numel() == 1:
            break
        iou = box_iou(boxes[i][None], boxes[order[1:]])[0]
        order = order[1:][iou <= iou_thres]
    return torch.stack(keep) if keep else torch.zeros(0, dtype=torch.long)


def nms_numpy(boxes, scores, iou_thres):
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        lt = np.maximum(boxes[i, :2], boxes[rest, :2])
        rb = np.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = np.clip(rb - lt, 0, None).prod(1)
        area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
        iou = inter / (area(boxes[i]) + area(boxes[rest]) - inter + 1e-7)
        order = rest[iou <= iou_thres]
    return keep


def non_max_suppression(prediction, conf_thres=0.25, iou_thres=0.45, agnostic=False, max_det=300, nm=0):
    bs = prediction.shape[0]  # batch size
    xc = prediction[..., 4] > conf_thres  # candidates
    max_wh = 7680  # (pixels) maximum box width and height
    max_nms = 30000
    mi = 5 + prediction.shape[2] - nm - 5  # mask start index
    output = [torch.zeros((0, 6 + nm), device=prediction.device)] * bs
    nms_agree = True
    for xi, x in enumerate(prediction):  # image index, image inference
        x = x[xc[xi]]  # confidence
        if not x.shape[0]:
            continue
        x[:, 5:] *= x[:, 4:5]  # conf = obj_conf * cls_conf
        box = xywh2xyxy(x[:, :4])
        mask = x[:, mi:]
        conf, j = x[:, 5:mi].max(1, keepdim=True)
        x = torch.cat((box, conf, j.float(), mask), 1)[conf.view(-1) > conf_thres]
        if not x.shape[0]:
            continue
        x = x[x[:, 4].argsort(descending=True)[:max_nms]]  # sort by confidence and remove excess boxes
        c = x[:, 5:6] * (0 if agnostic else max_wh)  # classes
        boxes, scores = x[:, :4] + c, x[:, 4]  # boxes (offset by class), scores
        i = nms(boxes, scores, iou_thres)
        nms_agree &= i.tolist() == nms_numpy(boxes.numpy().astype(np.float64), scores.numpy(), iou_thres)
        i = i[:max_det]
        output[xi] = x[i]
    return output, nms_agree


def smart_optimizer(model, name="Adam", lr=0.001, momentum=0.9, decay=1e-5):
    g = [], [], []  # optimizer parameter groups
    bn = tuple(v for k, v in nn.__dict__.items() if "Norm" in k)  # normalization layers, i.e. BatchNorm2d()
    for v in model.modules():
        for p_name, p in v.named_parameters(recurse=0):
            if p_name == "bias":  # bias (no decay)
                g[2].append(p)
            elif p_name == "weight" and isinstance(v, bn):  # weight (no decay)
                g[1].append(p)
            else:
                g[0].append(p)  # weight (with decay)
    if name == "Adam":
        optimizer = torch.optim.Adam(g[2], lr=lr, betas=(momentum, 0.999))  # adjust beta1 to momentum
    else:
        optimizer = torch.optim.SGD(g[2], lr=lr, momentum=momentum, nesterov=True)
    optimizer.add_param_group({"params": g[0], "weight_decay": decay})  # add g0 with weight_decay
    optimizer.add_param_group({"params": g[1], "weight_decay": 0.0})  # add g1 (BatchNorm2d weights)
    print(f"optimizer: {type(optimizer).__name__}(lr={lr}) with parameter groups {len(g[1])} weight(decay=0.0), {len(g[0])} weight(decay={decay}), {len(g[2])} bias")
    return optimizer


# ------------------------------------------------------------------------------------------------ checks
boxes_a = torch.tensor([[10.0, 12.0, 6.0, 9.0], [4.0, 4.0, 3.0, 2.0], [20.0, 5.0, 8.0, 8.0]], dtype=torch.float64)
boxes_b = torch.tensor([[11.0, 11.0, 7.0, 7.0], [5.0, 3.5, 2.0, 4.0], [30.0, 25.0, 2.0, 3.0]], dtype=torch.float64)
self_ciou = bbox_iou(boxes_a, boxes_a, CIoU=True).squeeze(-1)
ciou = bbox_iou(boxes_a, boxes_b, CIoU=True).squeeze(-1).numpy()
a, b = boxes_a.numpy(), boxes_b.numpy()
a1, a2, b1, b2 = a[:, :2] - a[:, 2:] / 2, a[:, :2] + a[:, 2:] / 2, b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2
inter = np.clip(np.minimum(a2, b2) - np.maximum(a1, b1), 0, None).prod(1)
iou_np = inter / (a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter + 1e-7)
c2 = ((np.maximum(a2, b2) - np.minimum(a1, b1)) ** 2).sum(1) + 1e-7
rho2 = ((a[:, :2] - b[:, :2]) ** 2).sum(1)
v = 4 / math.pi**2 * (np.arctan(b[:, 2] / b[:, 3]) - np.arctan(a[:, 2] / a[:, 3])) ** 2
ciou_np = iou_np - (rho2 / c2 + v * v / (v - iou_np + 1 + 1e-7))
ciou_ok = bool(torch.allclose(self_ciou, torch.ones(3, dtype=torch.float64)) and np.allclose(ciou, ciou_np, atol=1e-12))
print(f"CIoU self {self_ciou.tolist()}, vs NumPy max diff {np.abs(ciou - ciou_np).max():.1e}")

train_x, train_y = make_data(256)
val_x, val_y = make_data(64)
model = DetectionModel()
model.hyp = HYP
print(f"strides {model.stride.tolist()}, anchors (grid units) {model.model[-1].anchors.view(-1).tolist()}")
compute_loss = ComputeLoss(model)

# the inference decode of each positive anchor equals the loss's decode, at the initial weights
model.eval()
images, targets = train_x[:8], train_y[train_y[:, 0] < 8]
with torch.no_grad():
    decoded, raw = model(images)
    det = model.model[-1]
    tcls, tbox, indices, anch = compute_loss.build_targets(raw, targets)
    decode_diff = 0.0
    positives = []
    for i in range(det.nl):
        b, a, gj, gi = indices[i]
        positives.append(b.shape[0])
        ps = raw[i][b, a, gj, gi]
        pxy = ps[:, :2].sigmoid() * 2 - 0.5
        pwh = (ps[:, 2:4].sigmoid() * 2) ** 2 * anch[i]
        loss_box = (torch.cat((pxy + torch.stack((gi, gj), 1), pwh), 1)) * det.stride[i]
        ny, nx = raw[i].shape[2:4]
        offset = sum(det.na * raw[k].shape[2] * raw[k].shape[3] for k in range(i))
        infer_box = decoded[b, offset + (a * ny + gj) * nx + gi, :4]
        decode_diff = max(decode_diff, (loss_box - infer_box).abs().max().item())
print(f"build_targets positives per level {positives} for {len(targets)} targets, decode max diff {decode_diff:.1e}")
model.train()

optimizer = smart_optimizer(model, "Adam", lr=0.004, momentum=0.937, decay=5e-4)
epochs, batch_size = 5, 16
nb = len(train_x) // batch_size
lf = lambda x: (1 - x / epochs) * (1.0 - 0.1) + 0.1  # noqa: E731  (linear)
scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=lf)
first = None
for epoch in range(epochs):
    perm = torch.randperm(len(train_x))
    mloss = torch.zeros(3)
    for i in range(nb):
        idx = perm[i * batch_size : (i + 1) * batch_size]
        rows = [train_y[train_y[:, 0] == k] for k in idx.tolist()]
        targets = torch.cat([torch.cat((torch.full((len(r), 1), float(n)), r[:, 1:]), 1) for n, r in enumerate(rows)])
        pred = model(train_x[idx])
        loss, loss_items = compute_loss(pred, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        mloss = (mloss * i + loss_items) / (i + 1)
        if first is None:
            first = loss.item() / batch_size
    scheduler.step()
    print(f"{epoch}/{epochs - 1} box {mloss[0]:.4f} obj {mloss[1]:.4f} cls {mloss[2]:.4f} lr {scheduler.get_last_lr()[0]:.5f}")
last = mloss.sum().item()

model.eval()
with torch.no_grad():
    out, _ = model(val_x)
dets, nms_ok = non_max_suppression(out, conf_thres=0.25, iou_thres=0.45)
tp = n_det = 0
for si, d in enumerate(dets):
    labels = val_y[val_y[:, 0] == si]
    tboxes = xywh2xyxy(labels[:, 2:6] * IMG)
    n_det += d.shape[0]
    matched = torch.zeros(len(labels), dtype=torch.bool)
    for row in d:
        ious = box_iou(row[None, :4], tboxes)[0]
        ious[(labels[:, 1] != row[5]) | matched] = 0
        if len(ious) and ious.max() > 0.5:
            matched[ious.argmax()] = True
            tp += 1
recall = tp / len(val_y)
precision = tp / max(n_det, 1)
print(f"val: {len(val_y)} labels, {n_det} detections, recall@0.5 {recall:.4f}, precision@0.5 {precision:.4f}, torch NMS == NumPy NMS: {nms_ok}")
checks = int(ciou_ok and decode_diff < 1e-4 and nms_ok)
print(f"FINAL loss_first={first:.4f} loss_last={last:.4f} recall={recall:.4f} precision={precision:.4f} checks_ok={checks}")
