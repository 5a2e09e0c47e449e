"""TSM: the Temporal Shift Module (Lin et al., ICCV 2019) in the layout of mit-han-lab/temporal-shift-module,
on synthetic clips of a moving bar whose class is its direction of motion.

Each clip has 8 frames of a 12x12 single-channel image: a bar (vertical for left/right, horizontal for
up/down) moving one pixel per frame, plus noise. Any single frame shows a bar at a uniform position, so a
2-D network that averages per-frame predictions (TSN consensus) can tell the bar's orientation but never
its direction: it cannot do better than one half on the four classes. TSM shifts a fold of the channels one
frame forwards and another one frame backwards inside each residual branch, which lets the 2-D convs see
motion at no extra cost.

The module is the repository's: ``TemporalShift(net, n_segment, n_div, inplace)`` wrapping a block's
``conv1`` (the 'blockres' place), its static ``shift(x, n_segment, fold_div=8)`` viewing ``(nt, c, h, w)``
as ``x.view(n_batch, n_segment, c, h, w)`` and filling ``out = torch.zeros_like(x)`` by the slice
assignments, and the in-place variant ``InplaceShift`` (a ``torch.autograd.Function`` that shifts
``input.data`` through a ``buffer = input.data.new(n, t, fold, h, w).zero_()`` and whose backward shifts the
gradient the other way, no ``save_for_backward``). The network is a tiny ResNet (``BasicBlock`` with
``nn.BatchNorm2d`` and an in-place ``out += identity``), ``nn.AdaptiveAvgPool2d(1)``, ``nn.Dropout`` before
the FC, and the TSN consensus ``base_out.view((-1, self.num_segments) + base_out.size()[1:]).mean(dim=1)``.
Training is the repository's: SGD with ``momentum=0.9, nesterov=True`` and weight decay, ``MultiStepLR``,
``clip_grad_norm_(model.parameters(), 20)``, ``AverageMeter``s and top-1 accuracy.

Checked: the in-place shift equals the out-of-place one forwards and backwards, its hand-written backward
passes ``torch.autograd.gradcheck`` in float64 (and the out-of-place shift's autograd passes too), and the
held-out accuracy of the TSM model against the same network without shifts.
"""

# ruff: noqa: UP004, UP008  (the repository's own spelling: class AverageMeter(object), super(Class, self))

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

NUM_SEGMENTS = 8
SIZE = 12
NUM_CLASS = 4  # right, left, down, up
DIRECTIONS = [(0, 1), (0, -1), (1, 0), (-1, 0)]


# ----------------------------------------------------------------------------------- data
def make_clips(n):
    clips = np.zeros((n, NUM_SEGMENTS, 1, SIZE, SIZE), dtype=np.float32)
    labels = rng.randint(0, NUM_CLASS, size=n)
    for i in range(n):
        dy, dx = DIRECTIONS[labels[i]]
        start = rng.randint(0, SIZE)
        width = rng.randint(1, 3)
        for t in range(NUM_SEGMENTS):
            pos = (start + t * (dy + dx)) % SIZE
            cols = [(pos + k) % SIZE for k in range(width)]
            if dx != 0:
                clips[i, t, 0][:, cols] = 1.0
            else:
                clips[i, t, 0][cols, :] = 1.0
    clips += 0.3 * rng.randn(*clips.shape).astype(np.float32)
    return torch.from_numpy(clips), torch.from_numpy(labels)


train_x, train_y = make_clips(192)
test_x, test_y = make_clips(128)


# ----------------------------------------------------------------------------------- temporal shift
class InplaceShift(torch.autograd.Function):
    # Special thanks to @raoyongming for the help to this function
    @staticmethod
    def forward(ctx, input, fold):
        # not support higher order gradient
        # input = input.detach_()
        ctx.fold_ = fold
        n, t, c, h, w = input.size()
        buffer = input.data.new(n, t, fold, h, w).zero_()
        buffer[:, :-1] = input.data[:, 1:, :fold]
        input.data[:, :, :fold] = buffer
        buffer.zero_()
        buffer[:, 1:] = input.data[:, :-1, fold: 2 * fold]
        input.data[:, :, fold: 2 * fold] = buffer
        return input

    @staticmethod
    def backward(ctx, grad_output):
        # grad_output = grad_output.detach_()
        fold = ctx.fold_
        n, t, c, h, w = grad_output.size()
        buffer = grad_output.data.new(n, t, fold, h, w).zero_()
        buffer[:, 1:] = grad_output.data[:, :-1, :fold]
        grad_output.data[:, :, :fold] = buffer
        buffer.zero_()
        buffer[:, :-1] = grad_output.data[:, 1:, fold: 2 * fold]
        grad_output.data[:, :, fold: 2 * fold] = buffer
        return grad_output, None


class TemporalShift(nn.Module):
    def __init__(self, net, n_segment=3, n_div=8, inplace=False):
        super(TemporalShift, self).__init__()
        self.net = net
        self.n_segment = n_segment
        self.fold_div = n_div
        self.inplace = inplace

    def forward(self, x):
        x = self.shift(x, self.n_segment, fold_div=self.fold_div, inplace=self.inplace)
        return self.net(x)

    @staticmethod
    def shift(x, n_segment, fold_div=3, inplace=False):
        nt, c, h, w = x.size()
        n_batch = nt // n_segment
        x = x.view(n_batch, n_segment, c, h, w)

        fold = c // fold_div
        if inplace:
            # Due to some out of order error when performing parallel computing.
            # May need to write a CUDA kernel.
            out = InplaceShift.apply(x, fold)
        else:
            out = torch.zeros_like(x)
            out[:, :-1, :fold] = x[:, 1:, :fold]  # shift left
            out[:, 1:, fold: 2 * fold] = x[:, :-1, fold: 2 * fold]  # shift right
            out[:, :, 2 * fold:] = x[:, :, 2 * fold:]  # not shift

        return out.view(nt, c, h, w)


# ----------------------------------------------------------------------------------- shift checks
x = torch.randn(2 * NUM_SEGMENTS, 16, 3, 3, requires_grad=True)
w = torch.randn(2 * NUM_SEGMENTS, 16, 3, 3)
out_ref = TemporalShift.shift(x, NUM_SEGMENTS, fold_div=8)
(out_ref * w).sum().backward()
grad_ref = x.grad.clone()
x.grad = None
out_inp = TemporalShift.shift(x.clone(), NUM_SEGMENTS, fold_div=8, inplace=True)
(out_inp * w).sum().backward()
same_fwd = torch.equal(out_ref, out_inp)
same_bwd = torch.equal(grad_ref, x.grad)
moved = (out_ref.view(2, NUM_SEGMENTS, 16, 3, 3)[:, :-1, :2] == x.view(2, NUM_SEGMENTS, 16, 3, 3)[:, 1:, :2]).all()
print(f"shift {tuple(out_ref.shape)}: in-place == out-of-place forward {same_fwd}, backward {same_bwd}, "
      f"fold moved {bool(moved)}")

x64 = torch.randn(2 * 4, 8, 2, 2, dtype=torch.float64, requires_grad=True)
gc_inplace = torch.autograd.gradcheck(
    lambda t: InplaceShift.apply(t.clone().view(2, 4, 8, 2, 2), 2), (x64,), eps=1e-6, atol=1e-4)
gc_plain = torch.autograd.gradcheck(lambda t: TemporalShift.shift(t, 4, fold_div=4), (x64,), eps=1e-6, atol=1e-4)
print(f"gradcheck InplaceShift {gc_inplace}, out-of-place shift {gc_plain}")
shift_ok = int(bool(same_fwd and same_bwd and moved and gc_inplace and gc_plain))


# ----------------------------------------------------------------------------------- model
def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super(BasicBlock, self).__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out


class TinyResNet(nn.Module):
    def __init__(self, num_classes, width=16):
        super(TinyResNet, self).__init__()
        self.conv1 = nn.Conv2d(1, width, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = BasicBlock(width, width)
        downsample = nn.Sequential(nn.Conv2d(width, 2 * width, 1, stride=2, bias=False), nn.BatchNorm2d(2 * width))
        self.layer2 = BasicBlock(width, 2 * width, stride=2, downsample=downsample)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def features(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return torch.flatten(self.avgpool(x), 1)


def make_temporal_shift(net, n_segment, n_div=8, place="blockres"):
    assert place == "blockres"
    for layer in [net.layer1, net.layer2]:
        layer.conv1 = TemporalShift(layer.conv1, n_segment=n_segment, n_div=n_div)


class TSN(nn.Module):
    def __init__(self, num_class, num_segments, is_shift=True, shift_div=8, dropout=0.5):
        super(TSN, self).__init__()
        self.num_segments = num_segments
        self.base_model = TinyResNet(num_class)
        if is_shift:
            make_temporal_shift(self.base_model, num_segments, n_div=shift_div)
        feature_dim = self.base_model.fc.in_features
        self.base_model.fc = nn.Dropout(p=dropout)
        self.new_fc = nn.Linear(feature_dim, num_class)
        nn.init.normal_(self.new_fc.weight, 0, 0.001)
        nn.init.constant_(self.new_fc.bias, 0)

    def forward(self, input):
        sample_len = input.size(2)
        base_out = self.base_model.features(input.view((-1, sample_len) + input.size()[-2:]))
        base_out = self.base_model.fc(base_out)
        base_out = self.new_fc(base_out)
        base_out = base_out.view((-1, self.num_segments) + base_out.size()[1:])
        output = base_out.mean(dim=1, keepdim=True)  # ConsensusModule('avg')
        return output.squeeze(1)


class AverageMeter(object):
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


def accuracy(output, target, topk=(1,)):
    maxk = max(topk)
    batch_size = target.size(0)
    _, pred = output.topk(maxk, 1, True, True)
    pred = pred.t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    res = []
    for k in topk:
        correct_k = correct[:k].reshape(-1).float().sum(0)
        res.append(correct_k.mul_(100.0 / batch_size))
    return res


def train_and_eval(is_shift, tag, epochs=8, batch_size=16):
    model = TSN(NUM_CLASS, NUM_SEGMENTS, is_shift=is_shift)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), 0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[6, 7], gamma=0.1)
    for epoch in range(epochs):
        model.train()
        losses, top1 = AverageMeter(), AverageMeter()
        perm = torch.randperm(train_x.size(0))
        for i in range(0, train_x.size(0), batch_size):
            idx = perm[i:i + batch_size]
            input, target = train_x[idx], train_y[idx]
            output = model(input)
            loss = criterion(output, target)
            prec1, = accuracy(output.data, target, topk=(1,))
            losses.update(loss.item(), input.size(0))
            top1.update(prec1.item(), input.size(0))
            optimizer.zero_grad()
            loss.backward()
            total_norm = nn.utils.clip_grad_norm_(model.parameters(), 20)
            optimizer.step()
        scheduler.step()
        if epoch % 2 == 1:
            print(f"{tag} epoch {epoch}: loss {losses.avg:.4f} prec@1 {top1.avg:.2f} "
                  f"grad norm {float(total_norm):.3f} lr {scheduler.get_last_lr()[0]:.4f}")
    model.eval()
    with torch.no_grad():
        logits = model(test_x)
        test_loss = F.cross_entropy(logits, test_y).item()
        acc = (logits.argmax(1) == test_y).float().mean().item()
    print(f"{tag} test: {test_x.size(0)} clips, loss {test_loss:.4f}, accuracy {acc:.4f}")
    return acc


tsm_acc = train_and_eval(True, "TSM")
tsn_acc = train_and_eval(False, "TSN-2D")
print(f"FINAL tsm_acc={tsm_acc:.4f} tsn_acc={tsn_acc:.4f} shift_ok={shift_ok}")
