"""SSD (Liu et al., ECCV 2016) in the layout of amdegroot/ssd.pytorch (``layers/box_utils.py``,
``layers/functions/prior_box.py``, ``layers/modules/multibox_loss.py``, ``layers/modules/l2norm.py``,
``layers/functions/detection.py``, ``eval.py``) at a tiny size on synthetic 32x32 images of boxes.

Each image holds one to three axis-aligned rectangles of two classes (a filled red block or a hollow green
frame) on a noisy background. The model is a small VGG-like base whose first source goes through ``L2Norm``
(a learned per-channel scale initialised by ``init.constant_``), then ``extras``, with ``loc``/``conf`` 3x3
heads on three feature maps (8x8, 4x4, 2x2), ``permute(0, 2, 3, 1).contiguous()`` and ``torch.cat`` of the
flattened maps. ``PriorBox`` builds the default boxes with ``itertools.product``, ``sqrt(s_k * s_k')`` and
``clamp_(max=1, min=0)``.

``match`` uses ``jaccard`` over ``intersect`` (``torch.min(box_a[:, 2:].unsqueeze(1).expand(A, B, 2), ...)``),
``best_prior_overlap.max(1, keepdim=True)``, ``squeeze_``, ``index_fill_(0, best_prior_idx, 2)`` and the
``for j in range(best_prior_idx.size(0))`` forced match, then ``encode`` with the variances and ``torch.log``.
``MultiBoxLoss`` does hard negative mining: ``log_sum_exp`` by ``x.data.max()``, ``loss_c[pos] = 0``, the
double ``sort`` rank trick, ``torch.clamp(self.negpos_ratio * num_pos, max=pos.size(1) - 1)``, ``neg =
idx_rank < num_neg.expand_as(idx_rank)``, ``(pos_idx + neg_idx).gt(0)`` on bool masks,
``F.smooth_l1_loss(..., reduction='sum')`` and ``F.cross_entropy(..., reduction='sum')`` divided by ``N``.
``Detect`` decodes, thresholds per class and runs the hand-written ``nms`` (``scores.new(...).zero_().long()``,
``boxes.new()`` buffers filled by ``torch.index_select(x1, 0, idx, out=xx1)``, ``resize_as_``,
``idx[IoU.le(overlap)]``); mAP@0.5 is VOC's all-point ``voc_ap``.

Checked (second routes): ``jaccard`` against a per-pair Python loop; ``decode(encode(...))`` and
``center_size(point_form(...))`` round trips; ``nms`` against a plain greedy loop over a sorted list; hard
negatives are exactly ``negpos_ratio`` times the positives (clamped) and are the highest-loss negatives; and
the detector learns: train and test mAP@0.5.
"""

# ruff: noqa: UP004, UP008, UP031  (the repo's own spelling: super(Class, self), class PriorBox(object), % formats)

import os
from itertools import product
from math import sqrt

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.init as init
import torch.optim as optim
from torch.autograd import Variable

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

tiny = {
    'num_classes': 3,
    'feature_maps': [8, 4, 2],
    'min_dim': 32,
    'steps': [4, 8, 16],
    'min_sizes': [6, 12, 20],
    'max_sizes': [12, 20, 28],
    'aspect_ratios': [[2], [2], [2]],
    'variance': [0.1, 0.2],
    'clip': True,
    'name': 'TINY',
}
IMG = 32


# ----------------------------------------------------------------------------------- data
def make_images(n, rng):
    images = np.zeros((n, 3, IMG, IMG), dtype=np.float32)
    targets = []
    for k in range(n):
        images[k] = 0.15 * rng.rand(3, IMG, IMG)
        boxes = []
        for _ in range(rng.randint(1, 4)):
            w, h = rng.randint(7, 16), rng.randint(7, 16)
            x0, y0 = rng.randint(0, IMG - w + 1), rng.randint(0, IMG - h + 1)
            label = rng.randint(0, 2)
            if label == 0:  # filled red block
                images[k, 0, y0:y0 + h, x0:x0 + w] = 0.9
            else:  # hollow green frame
                images[k, 1, y0:y0 + h, x0:x0 + w] = 0.9
                images[k, 1, y0 + 2:y0 + h - 2, x0 + 2:x0 + w - 2] = 0.15
            boxes.append([x0 / IMG, y0 / IMG, (x0 + w) / IMG, (y0 + h) / IMG, label])
        targets.append(np.array(boxes, dtype=np.float32))
    return images, targets


data_rng = np.random.RandomState(4321 + seed)
train_images, train_targets = make_images(192, data_rng)
test_images, test_targets = make_images(64, data_rng)


# ----------------------------------------------------------------------------------- box utils
def point_form(boxes):
    """ Convert prior_boxes to (xmin, ymin, xmax, ymax) representation for comparison to point form ground truth data."""
    return torch.cat((boxes[:, :2] - boxes[:, 2:] / 2,     # xmin, ymin
                      boxes[:, :2] + boxes[:, 2:] / 2), 1)  # xmax, ymax


def center_size(boxes):
    """ Convert prior_boxes to (cx, cy, w, h) representation for comparison to center-size form ground truth data."""
    return torch.cat(((boxes[:, 2:] + boxes[:, :2]) / 2,  # cx, cy
                      boxes[:, 2:] - boxes[:, :2]), 1)  # w, h


def intersect(box_a, box_b):
    A = box_a.size(0)
    B = box_b.size(0)
    max_xy = torch.min(box_a[:, 2:].unsqueeze(1).expand(A, B, 2),
                       box_b[:, 2:].unsqueeze(0).expand(A, B, 2))
    min_xy = torch.max(box_a[:, :2].unsqueeze(1).expand(A, B, 2),
                       box_b[:, :2].unsqueeze(0).expand(A, B, 2))
    inter = torch.clamp((max_xy - min_xy), min=0)
    return inter[:, :, 0] * inter[:, :, 1]


def jaccard(box_a, box_b):
    inter = intersect(box_a, box_b)
    area_a = ((box_a[:, 2] - box_a[:, 0]) *
              (box_a[:, 3] - box_a[:, 1])).unsqueeze(1).expand_as(inter)  # [A,B]
    area_b = ((box_b[:, 2] - box_b[:, 0]) *
              (box_b[:, 3] - box_b[:, 1])).unsqueeze(0).expand_as(inter)  # [A,B]
    union = area_a + area_b - inter
    return inter / union  # [A,B]


def match(threshold, truths, priors, variances, labels, loc_t, conf_t, idx):
    # jaccard index
    overlaps = jaccard(
        truths,
        point_form(priors)
    )
    # [1,num_objects] best prior for each ground truth
    best_prior_overlap, best_prior_idx = overlaps.max(1, keepdim=True)
    # [1,num_priors] best ground truth for each prior
    best_truth_overlap, best_truth_idx = overlaps.max(0, keepdim=True)
    best_truth_idx.squeeze_(0)
    best_truth_overlap.squeeze_(0)
    best_prior_idx.squeeze_(1)
    best_prior_overlap.squeeze_(1)
    best_truth_overlap.index_fill_(0, best_prior_idx, 2)  # ensure best prior
    # ensure every gt matches with its prior of max overlap
    for j in range(best_prior_idx.size(0)):
        best_truth_idx[best_prior_idx[j]] = j
    matches = truths[best_truth_idx]          # Shape: [num_priors,4]
    conf = labels[best_truth_idx] + 1         # Shape: [num_priors]
    conf[best_truth_overlap < threshold] = 0  # label as background
    loc = encode(matches, priors, variances)
    loc_t[idx] = loc    # [num_priors,4] encoded offsets to learn
    conf_t[idx] = conf  # [num_priors] top class label for each prior


def encode(matched, priors, variances):
    # dist b/t match center and prior's center
    g_cxcy = (matched[:, :2] + matched[:, 2:]) / 2 - priors[:, :2]
    # encode variance
    g_cxcy /= (variances[0] * priors[:, 2:])
    # match wh / prior wh
    g_wh = (matched[:, 2:] - matched[:, :2]) / priors[:, 2:]
    g_wh = torch.log(g_wh) / variances[1]
    # return target for smooth_l1_loss
    return torch.cat([g_cxcy, g_wh], 1)  # [num_priors,4]


def decode(loc, priors, variances):
    boxes = torch.cat((
        priors[:, :2] + loc[:, :2] * variances[0] * priors[:, 2:],
        priors[:, 2:] * torch.exp(loc[:, 2:] * variances[1])), 1)
    boxes[:, :2] -= boxes[:, 2:] / 2
    boxes[:, 2:] += boxes[:, :2]
    return boxes


def log_sum_exp(x):
    x_max = x.data.max()
    return torch.log(torch.sum(torch.exp(x - x_max), 1, keepdim=True)) + x_max


def nms(boxes, scores, overlap=0.5, top_k=200):
    keep = scores.new(scores.size(0)).zero_().long()
    if boxes.numel() == 0:
        return keep, 0
    x1 = boxes[:, 0]
    y1 = boxes[:, 1]
    x2 = boxes[:, 2]
    y2 = boxes[:, 3]
    area = torch.mul(x2 - x1, y2 - y1)
    v, idx = scores.sort(0)  # sort in ascending order
    # I = I[v >= 0.01]
    idx = idx[-top_k:]  # indices of the top-k largest vals
    xx1 = boxes.new()
    yy1 = boxes.new()
    xx2 = boxes.new()
    yy2 = boxes.new()
    w = boxes.new()
    h = boxes.new()

    count = 0
    while idx.numel() > 0:
        i = idx[-1]  # index of current largest val
        keep[count] = i
        count += 1
        if idx.size(0) == 1:
            break
        idx = idx[:-1]  # remove kept element from view
        # load bboxes of next highest vals
        torch.index_select(x1, 0, idx, out=xx1)
        torch.index_select(y1, 0, idx, out=yy1)
        torch.index_select(x2, 0, idx, out=xx2)
        torch.index_select(y2, 0, idx, out=yy2)
        # store element-wise max with next highest score
        xx1 = torch.clamp(xx1, min=x1[i])
        yy1 = torch.clamp(yy1, min=y1[i])
        xx2 = torch.clamp(xx2, max=x2[i])
        yy2 = torch.clamp(yy2, max=y2[i])
        w.resize_as_(xx2)
        h.resize_as_(yy2)
        w = xx2 - xx1
        h = yy2 - yy1
        # check sizes of xx1 and xx2.. after each iteration
        w = torch.clamp(w, min=0.0)
        h = torch.clamp(h, min=0.0)
        inter = w * h
        # IoU = i / (area(a) + area(b) - i)
        rem_areas = torch.index_select(area, 0, idx)  # load remaining areas)
        union = (rem_areas - inter) + area[i]
        IoU = inter / union  # store result in iou
        # keep only elements with an IoU <= overlap
        idx = idx[IoU.le(overlap)]
    return keep, count


# ----------------------------------------------------------------------------------- layers
class PriorBox(object):
    """Compute priorbox coordinates in center-offset form for each source feature map."""

    def __init__(self, cfg):
        super(PriorBox, self).__init__()
        self.image_size = cfg['min_dim']
        self.num_priors = len(cfg['aspect_ratios'])
        self.variance = cfg['variance'] or [0.1]
        self.feature_maps = cfg['feature_maps']
        self.min_sizes = cfg['min_sizes']
        self.max_sizes = cfg['max_sizes']
        self.steps = cfg['steps']
        self.aspect_ratios = cfg['aspect_ratios']
        self.clip = cfg['clip']
        self.version = cfg['name']
        for v in self.variance:
            if v <= 0:
                raise ValueError('Variances must be greater than 0')

    def forward(self):
        mean = []
        for k, f in enumerate(self.feature_maps):
            for i, j in product(range(f), repeat=2):
                f_k = self.image_size / self.steps[k]
                # unit center x,y
                cx = (j + 0.5) / f_k
                cy = (i + 0.5) / f_k

                # aspect_ratio: 1
                # rel size: min_size
                s_k = self.min_sizes[k] / self.image_size
                mean += [cx, cy, s_k, s_k]

                # aspect_ratio: 1
                # rel size: sqrt(s_k * s_(k+1))
                s_k_prime = sqrt(s_k * (self.max_sizes[k] / self.image_size))
                mean += [cx, cy, s_k_prime, s_k_prime]

                # rest of aspect ratios
                for ar in self.aspect_ratios[k]:
                    mean += [cx, cy, s_k * sqrt(ar), s_k / sqrt(ar)]
                    mean += [cx, cy, s_k / sqrt(ar), s_k * sqrt(ar)]
        # back to torch land
        output = torch.Tensor(mean).view(-1, 4)
        if self.clip:
            output.clamp_(max=1, min=0)
        return output


class L2Norm(nn.Module):
    def __init__(self, n_channels, scale):
        super(L2Norm, self).__init__()
        self.n_channels = n_channels
        self.gamma = scale or None
        self.eps = 1e-10
        self.weight = nn.Parameter(torch.Tensor(self.n_channels))
        self.reset_parameters()

    def reset_parameters(self):
        init.constant_(self.weight, self.gamma)

    def forward(self, x):
        norm = x.pow(2).sum(dim=1, keepdim=True).sqrt() + self.eps
        # x /= norm
        x = torch.div(x, norm)
        out = self.weight.unsqueeze(0).unsqueeze(2).unsqueeze(3).expand_as(x) * x
        return out


class MultiBoxLoss(nn.Module):
    def __init__(self, num_classes, overlap_thresh, prior_for_matching, bkg_label, neg_mining, neg_pos,
                 neg_overlap, encode_target, use_gpu=True):
        super(MultiBoxLoss, self).__init__()
        self.use_gpu = use_gpu
        self.num_classes = num_classes
        self.threshold = overlap_thresh
        self.background_label = bkg_label
        self.encode_target = encode_target
        self.use_prior_for_matching = prior_for_matching
        self.do_neg_mining = neg_mining
        self.negpos_ratio = neg_pos
        self.neg_overlap = neg_overlap
        self.variance = tiny['variance']
        self.last_mining = None

    def forward(self, predictions, targets):
        loc_data, conf_data, priors = predictions
        num = loc_data.size(0)
        priors = priors[:loc_data.size(1), :]
        num_priors = (priors.size(0))

        # match priors (default boxes) and ground truth boxes
        loc_t = torch.Tensor(num, num_priors, 4)
        conf_t = torch.LongTensor(num, num_priors)
        for idx in range(num):
            truths = targets[idx][:, :-1].data
            labels = targets[idx][:, -1].data
            defaults = priors.data
            match(self.threshold, truths, defaults, self.variance, labels, loc_t, conf_t, idx)
        if self.use_gpu:
            loc_t = loc_t.cuda()
            conf_t = conf_t.cuda()
        # wrap targets
        loc_t = Variable(loc_t, requires_grad=False)
        conf_t = Variable(conf_t, requires_grad=False)

        pos = conf_t > 0
        num_pos = pos.sum(dim=1, keepdim=True)

        # Localization Loss (Smooth L1)
        # Shape: [batch,num_priors,4]
        pos_idx = pos.unsqueeze(pos.dim()).expand_as(loc_data)
        loc_p = loc_data[pos_idx].view(-1, 4)
        loc_t = loc_t[pos_idx].view(-1, 4)
        loss_l = F.smooth_l1_loss(loc_p, loc_t, reduction='sum')

        # Compute max conf across batch for hard negative mining
        batch_conf = conf_data.view(-1, self.num_classes)
        loss_c = log_sum_exp(batch_conf) - batch_conf.gather(1, conf_t.view(-1, 1))

        # Hard Negative Mining
        loss_c = loss_c.view(num, -1)
        loss_c[pos] = 0  # filter out pos boxes for now
        ranked = loss_c.detach().clone()
        _, loss_idx = loss_c.sort(1, descending=True)
        _, idx_rank = loss_idx.sort(1)
        num_pos = pos.long().sum(1, keepdim=True)
        num_neg = torch.clamp(self.negpos_ratio * num_pos, max=pos.size(1) - 1)
        neg = idx_rank < num_neg.expand_as(idx_rank)

        # Confidence Loss Including Positive and Negative Examples
        pos_idx = pos.unsqueeze(2).expand_as(conf_data)
        neg_idx = neg.unsqueeze(2).expand_as(conf_data)
        conf_p = conf_data[(pos_idx + neg_idx).gt(0)].view(-1, self.num_classes)
        targets_weighted = conf_t[(pos + neg).gt(0)]
        loss_c = F.cross_entropy(conf_p, targets_weighted, reduction='sum')

        # Sum of losses: L(x,c) = L(x,c) + L(x,c)
        N = num_pos.data.sum()
        loss_l /= N
        loss_c /= N
        self.last_mining = (pos, neg, num_pos, num_neg, ranked)
        return loss_l, loss_c


class Detect(object):
    def __init__(self, num_classes, bkg_label, top_k, conf_thresh, nms_thresh):
        self.num_classes = num_classes
        self.background_label = bkg_label
        self.top_k = top_k
        # Parameters used in nms.
        self.nms_thresh = nms_thresh
        if nms_thresh <= 0:
            raise ValueError('nms_threshold must be non negative.')
        self.conf_thresh = conf_thresh
        self.variance = tiny['variance']

    def forward(self, loc_data, conf_data, prior_data):
        num = loc_data.size(0)  # batch size
        num_priors = prior_data.size(0)
        output = torch.zeros(num, self.num_classes, self.top_k, 5)
        conf_preds = conf_data.view(num, num_priors, self.num_classes).transpose(2, 1)

        # Decode predictions into bboxes.
        for i in range(num):
            decoded_boxes = decode(loc_data[i], prior_data, self.variance)
            # For each class, perform nms
            conf_scores = conf_preds[i].clone()

            for cl in range(1, self.num_classes):
                c_mask = conf_scores[cl].gt(self.conf_thresh)
                scores = conf_scores[cl][c_mask]
                if scores.size(0) == 0:
                    continue
                l_mask = c_mask.unsqueeze(1).expand_as(decoded_boxes)
                boxes = decoded_boxes[l_mask].view(-1, 4)
                # idx of highest scoring and non-overlapping boxes per class
                ids, count = nms(boxes, scores, self.nms_thresh, self.top_k)
                count = min(count, self.top_k)
                output[i, cl, :count] = torch.cat((scores[ids[:count]].unsqueeze(1), boxes[ids[:count]]), 1)
        return output


# ----------------------------------------------------------------------------------- model
def vgg(cfg, i, batch_norm=False):
    layers = []
    in_channels = i
    for v in cfg:
        if v == 'M':
            layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
        elif v == 'C':
            layers += [nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True)]
        else:
            conv2d = nn.Conv2d(in_channels, v, kernel_size=3, padding=1)
            if batch_norm:
                layers += [conv2d, nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
            else:
                layers += [conv2d, nn.ReLU(inplace=True)]
            in_channels = v
    return layers


def add_extras(cfg, i, batch_norm=False):
    # Extra layers added to VGG for feature scaling
    layers = []
    in_channels = i
    flag = False
    for k, v in enumerate(cfg):
        if in_channels != 'S':
            if v == 'S':
                layers += [nn.Conv2d(in_channels, cfg[k + 1], kernel_size=(1, 3)[flag], stride=2, padding=1)]
            else:
                layers += [nn.Conv2d(in_channels, v, kernel_size=(1, 3)[flag])]
            flag = not flag
        in_channels = v
    return layers


def multibox(vgg_layers, extra_layers, mbox, num_classes):
    loc_layers = []
    conf_layers = []
    vgg_source = [-2]
    for k, v in enumerate(vgg_source):
        loc_layers += [nn.Conv2d(vgg_layers[v].out_channels, mbox[k] * 4, kernel_size=3, padding=1)]
        conf_layers += [nn.Conv2d(vgg_layers[v].out_channels, mbox[k] * num_classes, kernel_size=3, padding=1)]
    for k, v in enumerate(extra_layers[1::2], 1):
        loc_layers += [nn.Conv2d(v.out_channels, mbox[k] * 4, kernel_size=3, padding=1)]
        conf_layers += [nn.Conv2d(v.out_channels, mbox[k] * num_classes, kernel_size=3, padding=1)]
    return vgg_layers, extra_layers, (loc_layers, conf_layers)


class SSD(nn.Module):
    def __init__(self, phase, size, base, extras, head, num_classes):
        super(SSD, self).__init__()
        self.phase = phase
        self.num_classes = num_classes
        self.cfg = tiny
        self.priorbox = PriorBox(self.cfg)
        with torch.no_grad():
            self.priors = Variable(self.priorbox.forward())
        self.size = size

        self.vgg = nn.ModuleList(base)
        # Layer learns to scale the l2 normalized features from conv4_3
        self.L2Norm = L2Norm(base[-2].out_channels, 10)
        self.extras = nn.ModuleList(extras)

        self.loc = nn.ModuleList(head[0])
        self.conf = nn.ModuleList(head[1])

        if phase == 'test':
            self.softmax = nn.Softmax(dim=-1)
            self.detect = Detect(num_classes, 0, 50, 0.05, 0.45)

    def forward(self, x):
        sources = list()
        loc = list()
        conf = list()

        for k in range(len(self.vgg)):
            x = self.vgg[k](x)

        s = self.L2Norm(x)
        sources.append(s)

        for k, v in enumerate(self.extras):
            x = F.relu(v(x), inplace=True)
            if k % 2 == 1:
                sources.append(x)

        # apply multibox head to source layers
        for (x, l, c) in zip(sources, self.loc, self.conf):
            loc.append(l(x).permute(0, 2, 3, 1).contiguous())
            conf.append(c(x).permute(0, 2, 3, 1).contiguous())

        loc = torch.cat([o.view(o.size(0), -1) for o in loc], 1)
        conf = torch.cat([o.view(o.size(0), -1) for o in conf], 1)
        if self.phase == "test":
            output = self.detect.forward(
                loc.view(loc.size(0), -1, 4),                   # loc preds
                self.softmax(conf.view(conf.size(0), -1, self.num_classes)),  # conf preds
                self.priors.type(type(x.data))                  # default boxes
            )
        else:
            output = (
                loc.view(loc.size(0), -1, 4),
                conf.view(conf.size(0), -1, self.num_classes),
                self.priors
            )
        return output


def build_ssd(phase, size=32, num_classes=3):
    base_cfg = [16, 'M', 24, 'M', 32]
    extras_cfg = [16, 'S', 32, 16, 'S', 32]
    mbox = [4, 4, 4]
    base_, extras_, head_ = multibox(vgg(base_cfg, 3), add_extras(extras_cfg, 32), mbox, num_classes)
    return SSD(phase, size, base_, extras_, head_, num_classes)


def xavier(param):
    init.xavier_uniform_(param)


def weights_init(m):
    if isinstance(m, nn.Conv2d):
        xavier(m.weight.data)
        m.bias.data.zero_()


# ----------------------------------------------------------------------------------- second routes
priors = PriorBox(tiny).forward()
print("priors", tuple(priors.shape), "range [%.3f, %.3f]" % (priors.min().item(), priors.max().item()))

t0 = torch.from_numpy(train_targets[0][:, :4])
pf = point_form(priors)
iou = jaccard(t0, pf)
iou_loop = torch.zeros_like(iou)
for a in range(t0.size(0)):
    for b in range(pf.size(0)):
        ix = max(0.0, min(t0[a, 2].item(), pf[b, 2].item()) - max(t0[a, 0].item(), pf[b, 0].item()))
        iy = max(0.0, min(t0[a, 3].item(), pf[b, 3].item()) - max(t0[a, 1].item(), pf[b, 1].item()))
        inter = ix * iy
        ua = ((t0[a, 2] - t0[a, 0]) * (t0[a, 3] - t0[a, 1])).item() + ((pf[b, 2] - pf[b, 0]) * (pf[b, 3] - pf[b, 1])).item()
        iou_loop[a, b] = inter / (ua - inter)
jaccard_err = (iou - iou_loop).abs().max().item()

all_truths = torch.from_numpy(np.concatenate([t[:, :4] for t in train_targets[:8]]))
rt_priors = priors[torch.arange(all_truths.size(0)) * 7 % priors.size(0)]
roundtrip_err = max((decode(encode(all_truths, rt_priors, tiny['variance']), rt_priors, tiny['variance'])
                     - all_truths).abs().max().item(),
                    (center_size(point_form(priors)) - priors).abs().max().item())
print("jaccard vs loop max err %.2e, encode/decode and point_form/center_size round trip max err %.2e"
      % (jaccard_err, roundtrip_err))

g = torch.Generator().manual_seed(seed)
nms_boxes = torch.rand(60, 2, generator=g) * 0.7
nms_boxes = torch.cat((nms_boxes, nms_boxes + 0.1 + 0.2 * torch.rand(60, 2, generator=g)), 1)
nms_scores = torch.rand(60, generator=g)
keep, count = nms(nms_boxes, nms_scores, 0.45, 200)
order = sorted(range(60), key=lambda k: -nms_scores[k].item())
greedy = []
for k in order:
    if all(jaccard(nms_boxes[k:k + 1], nms_boxes[j:j + 1]).item() <= 0.45 for j in greedy):
        greedy.append(k)
nms_agree = keep[:count].tolist() == greedy
print("nms kept %d of 60, greedy loop agrees %s" % (count, nms_agree))


# ----------------------------------------------------------------------------------- training
ssd_net = build_ssd('train')
ssd_net.vgg.apply(weights_init)
ssd_net.extras.apply(weights_init)
ssd_net.loc.apply(weights_init)
ssd_net.conf.apply(weights_init)
net = ssd_net

optimizer = optim.Adam(net.parameters(), lr=2e-3, weight_decay=5e-4)
criterion = MultiBoxLoss(tiny['num_classes'], 0.5, True, 0, True, 3, 0.5, False, False)
adjust_at = (14,)


def adjust_learning_rate(optimizer, gamma, step):
    lr = 2e-3 * (gamma ** (step))
    for param_group in optimizer.param_groups:
        param_group['lr'] = lr


batch_size = 16
n_epochs = 18
step_index = 0
mining_ok = True
train_x = torch.from_numpy(train_images)
for epoch in range(n_epochs):
    if epoch in adjust_at:
        step_index += 1
        adjust_learning_rate(optimizer, 0.1, step_index)
    net.train()
    perm = np.random.permutation(len(train_images))
    loc_sum = conf_sum = 0.0
    for b in range(0, len(perm), batch_size):
        ids = perm[b:b + batch_size]
        images = train_x[ids]
        targets = [torch.FloatTensor(train_targets[k]) for k in ids]
        out = net(images)
        optimizer.zero_grad()
        loss_l, loss_c = criterion(out, targets)
        loss = loss_l + loss_c
        loss.backward()
        optimizer.step()
        loc_sum += loss_l.item()
        conf_sum += loss_c.item()
        pos, neg, num_pos, num_neg, ranked = criterion.last_mining
        # the hard negatives: as many as asked (3 per positive, clamped) and the highest of the ranked losses
        n_neg = neg.sum(1, keepdim=True)
        lowest_neg = ranked.masked_fill(~neg, float('inf')).min(1).values
        highest_rest = ranked.masked_fill(neg, float('-inf')).max(1).values
        mining_ok &= bool(torch.equal(n_neg, torch.clamp(3 * num_pos, max=pos.size(1) - 1))
                          and (lowest_neg >= highest_rest).all())
    n_b = len(perm) // batch_size
    if epoch % 3 == 2 or epoch == n_epochs - 1:
        print("epoch %d || loc loss: %.4f conf loss: %.4f" % (epoch, loc_sum / n_b, conf_sum / n_b))
print("hard negative mining: counts and ranks as asked %s" % mining_ok)


# ----------------------------------------------------------------------------------- eval (mAP@0.5)
def voc_ap(rec, prec):
    # correct AP calculation: first append sentinel values at the end
    mrec = np.concatenate(([0.], rec, [1.]))
    mpre = np.concatenate(([0.], prec, [0.]))
    # compute the precision envelope
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    # to calculate area under PR curve, look for points where X axis (recall) changes value
    i = np.where(mrec[1:] != mrec[:-1])[0]
    # and sum (\Delta recall) * prec
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def evaluate(images, targets):
    ssd_net.phase = 'test'
    ssd_net.softmax = nn.Softmax(dim=-1)
    ssd_net.detect = Detect(tiny['num_classes'], 0, 50, 0.05, 0.45)
    net.eval()
    with torch.no_grad():
        detections = net(torch.from_numpy(images)).data
    ssd_net.phase = 'train'
    aps = []
    for cl in range(1, tiny['num_classes']):
        dets = []  # (score, image, box)
        n_gt = 0
        gts = {}
        for i in range(len(images)):
            gt = targets[i][targets[i][:, 4] == cl - 1, :4]
            gts[i] = (torch.from_numpy(gt), [False] * len(gt))
            n_gt += len(gt)
            d = detections[i, cl]
            d = d[d[:, 0] > 0]
            for row in d:
                dets.append((row[0].item(), i, row[1:]))
        dets.sort(key=lambda t: -t[0])
        tp = np.zeros(len(dets))
        fp = np.zeros(len(dets))
        for k, (_, i, box) in enumerate(dets):
            gt, used = gts[i]
            if len(gt):
                ov, j = jaccard(box.unsqueeze(0), gt).max(1)
                if ov.item() >= 0.5 and not used[j.item()]:
                    used[j.item()] = True
                    tp[k] = 1
                    continue
            fp[k] = 1
        tp, fp = np.cumsum(tp), np.cumsum(fp)
        rec = tp / float(n_gt)
        prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        aps.append(voc_ap(rec, prec))
    return float(np.mean(aps)), aps


train_map, train_aps = evaluate(train_images[:64], train_targets[:64])
test_map, test_aps = evaluate(test_images, test_targets)
print("train mAP@0.5 %.4f (%s)" % (train_map, ", ".join("%.3f" % a for a in train_aps)))
print("test mAP@0.5 %.4f (%s)" % (test_map, ", ".join("%.3f" % a for a in test_aps)))
print("L2Norm scale mean %.3f (init 10)" % ssd_net.L2Norm.weight.mean().item())

print("FINAL loc_loss=%.4f conf_loss=%.4f train_map=%.4f test_map=%.4f jaccard_err=%.6f roundtrip_err=%.6f "
      "nms_agree=%d mining_ok=%d"
      % (loc_sum / n_b, conf_sum / n_b, train_map, test_map, jaccard_err, roundtrip_err, int(nms_agree),
         int(mining_ok)))
